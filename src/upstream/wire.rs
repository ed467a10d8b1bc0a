//! HTTP/1.1 on one upstream connection: writing the request head, reading the response
//! head (capped at [`MAX_RESPONSE_HEAD_BYTES`] while it is read, 1xx heads skipped), and the
//! [`Body`] that reads what follows as its framing says (length, chunked, until close).
//!
//! Our own code rather than async-h1's client: its decoder buffers a header line without
//! bound and unwraps on header and trailer bytes it does not like (a panic, with
//! `panic = "abort"` the end of the process). Parsing is in `head.rs` and `chunked.rs`, pure
//! functions over bytes; this file only moves bytes. The request head is ours too: a few
//! lines, every value checked, `Connection: close` since connections are not reused.

use super::chunked::Decoder;
use super::head::{framing, head_end, parse_head, Framing, Head, Headers, MAX_RESPONSE_HEAD_BYTES};
use super::stream::{Conn, Idle};
use crate::error::UpstreamError;
use crate::http::Status;
use futures_lite::{io, AsyncRead, AsyncReadExt, AsyncWriteExt};
use http_types::{Method, Url};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{ready, Context, Poll};

/// Interim (1xx) answers skipped before the final one. Servers send one or two
/// (`100 Continue`, `103 Early Hints`); more is a server that never gets to the point.
pub(crate) const MAX_INTERIM_RESPONSES: usize = 8;

/// Bytes asked of the connection per read while reading a head. A head usually arrives in
/// one read; the cap is [`MAX_RESPONSE_HEAD_BYTES`], not this.
const HEAD_READ_BYTES: usize = 4 << 10;

/// Read buffer of a chunked body (the framing must be parsed, so bytes pass through it;
/// other bodies are read straight into the caller's buffer).
const CHUNKED_READ_BYTES: usize = 16 << 10;

/// Sent on every request so upstream operators can tell a mirror from a client.
const USER_AGENT: &str = concat!("regmirror/", env!("CARGO_PKG_VERSION"));

/// An upstream's answer: status, headers, the body still on the connection, and the URL
/// that gave it (a redirect target's, after redirects).
pub(crate) struct Response {
    pub(crate) status: Status,
    pub(crate) headers: Headers,
    pub(crate) body: Body,
    pub(crate) url: Url,
}

impl Response {
    /// The last value of header `name` (lower case).
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name)
    }
}

/// `host[:port]` of a URL, for messages.
pub(crate) fn host_of(url: &Url) -> String {
    match (url.host_str(), url.port()) {
        (Some(h), Some(p)) => format!("{h}:{p}"),
        (Some(h), None) => h.to_owned(),
        _ => "?".to_owned(),
    }
}

/// The request head: `METHOD target HTTP/1.1`, `Host`, our `User-Agent`, `Connection:
/// close`, `Accept-Encoding: identity` (blob bytes must arrive as they are, to hash), then
/// `headers`. Values must be visible ASCII or spaces; the target comes from a parsed `Url`,
/// so it is percent-encoded already (checked anyway).
pub(crate) fn request_head(
    method: Method,
    url: &Url,
    headers: &[(&str, &str)],
) -> Result<String, String> {
    let mut target = url.path().to_owned();
    if let Some(q) = url.query() {
        target.push('?');
        target.push_str(q);
    }
    if target.is_empty() || !target.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(format!("request target {target:?} is not plain ASCII"));
    }
    let host = url.host_str().ok_or("URL without a host")?;
    let host = match url.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_owned(),
    };
    let mut head = format!(
        "{method} {target} HTTP/1.1\r\nhost: {host}\r\nuser-agent: {USER_AGENT}\r\n\
         connection: close\r\naccept-encoding: identity\r\n"
    );
    for (name, value) in headers {
        let name_ok =
            !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if !name_ok || !value.bytes().all(|b| b.is_ascii_graphic() || b == b' ') {
            return Err(format!("{name} header is not plain ASCII"));
        }
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    Ok(head)
}

/// Writes the request head and reads the final response head. Timeouts are the caller's
/// (the connection's idle timeout and an overall deadline for the head).
pub(crate) async fn exchange(
    mut conn: Idle<Conn>,
    method: Method,
    url: &Url,
    headers: &[(&str, &str)],
) -> Result<Response, UpstreamError> {
    let host: Rc<str> = host_of(url).into();
    let protocol = |why: &dyn std::fmt::Display| UpstreamError::Protocol(format!("{host}: {why}"));
    let unavailable =
        |why: &dyn std::fmt::Display| UpstreamError::Unavailable(format!("{host}: {why}"));
    let head = request_head(method, url, headers).map_err(|e| protocol(&e))?;
    conn.write_all(head.as_bytes())
        .await
        .map_err(|e| unavailable(&e))?;
    conn.flush().await.map_err(|e| unavailable(&e))?;

    let mut buf = Vec::with_capacity(HEAD_READ_BYTES);
    let mut searched = 0;
    let mut interim = 0;
    let head: Head = loop {
        if let Some(end) = head_end(&buf, searched) {
            let head = parse_head(&buf[..end]).map_err(|e| protocol(&e))?;
            buf.drain(..end);
            searched = 0;
            match head.status.code() {
                101 => return Err(protocol(&"unexpected 101 Switching Protocols")),
                100..=199 if interim < MAX_INTERIM_RESPONSES => interim += 1,
                100..=199 => {
                    return Err(protocol(&format!(
                        "more than {MAX_INTERIM_RESPONSES} interim 1xx answers"
                    )))
                }
                _ => break head,
            }
            continue;
        }
        searched = buf.len();
        if buf.len() >= MAX_RESPONSE_HEAD_BYTES {
            return Err(protocol(&format!(
                "response head over the {MAX_RESPONSE_HEAD_BYTES}-byte limit"
            )));
        }
        let old = buf.len();
        buf.resize((old + HEAD_READ_BYTES).min(MAX_RESPONSE_HEAD_BYTES), 0);
        let n = conn
            .read(&mut buf[old..])
            .await
            .map_err(|e| unavailable(&e))?;
        buf.truncate(old + n);
        if n == 0 {
            return Err(unavailable(
                &"connection closed before the end of the response head",
            ));
        }
    };
    let framing = framing(&head, method == Method::Head).map_err(|e| protocol(&e))?;
    Ok(Response {
        status: head.status,
        headers: head.headers,
        body: Body::new(conn, buf, framing, host),
        url: url.clone(),
    })
}

/// Where a body's reading is.
enum Reading {
    /// This many bytes still to come.
    Length(u64),
    Chunked(Decoder),
    UntilClose,
    /// Every byte is through; the connection is closed.
    Done,
}

/// A response body on its connection. Fails with `UnexpectedEof` when the connection ends
/// before `Content-Length` bytes or the last chunk, `InvalidData` for malformed chunked
/// framing, and passes the connection's errors (reset, `TimedOut`) through; every message
/// names the host. A clean end (`Ok(0)`) means the whole body arrived.
pub(crate) struct Body {
    conn: Option<Idle<Conn>>,
    /// Bytes read past the head (or for the chunked decoder), from `pos` on still unused.
    buf: Vec<u8>,
    pos: usize,
    reading: Reading,
    host: Rc<str>,
}

impl Body {
    fn new(conn: Idle<Conn>, leftover: Vec<u8>, framing: Framing, host: Rc<str>) -> Body {
        let reading = match framing {
            Framing::Empty | Framing::Length(0) => Reading::Done,
            Framing::Length(n) => Reading::Length(n),
            Framing::Chunked => Reading::Chunked(Decoder::new()),
            Framing::UntilClose => Reading::UntilClose,
        };
        let mut body = Body {
            conn: Some(conn),
            buf: leftover,
            pos: 0,
            reading,
            host,
        };
        if matches!(body.reading, Reading::Done) {
            body.finish();
        }
        body
    }

    /// The length announced by `Content-Length`, if any.
    pub(crate) fn len(&self) -> Option<u64> {
        match self.reading {
            Reading::Length(n) => Some(n),
            _ => None,
        }
    }

    fn finish(&mut self) {
        self.reading = Reading::Done;
        self.conn = None;
        self.buf = Vec::new();
        self.pos = 0;
    }

    fn error(&self, kind: io::ErrorKind, why: &dyn std::fmt::Display) -> io::Error {
        io::Error::new(kind, format!("{}: {why}", self.host))
    }

    /// Reads from the connection into `out` (after the leftover bytes are used up).
    fn poll_conn(&mut self, cx: &mut Context<'_>, out: &mut [u8]) -> Poll<io::Result<usize>> {
        let Some(conn) = self.conn.as_mut() else {
            return Poll::Ready(Ok(0));
        };
        match ready!(Pin::new(conn).poll_read(cx, out)) {
            Ok(n) => Poll::Ready(Ok(n)),
            Err(e) => Poll::Ready(Err(self.error(e.kind(), &e))),
        }
    }

    /// Copies leftover bytes into `out`; how many. Frees the buffer once it is used up:
    /// only a chunked body needs one after the leftovers, and that one refills it.
    fn take_leftover(&mut self, out: &mut [u8]) -> usize {
        let n = (self.buf.len() - self.pos).min(out.len());
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        if self.pos == self.buf.len() && self.buf.capacity() > 0 {
            self.buf = Vec::new();
            self.pos = 0;
        }
        n
    }
}

impl AsyncRead for Body {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if out.is_empty() {
            return Poll::Ready(Ok(0));
        }
        match this.reading {
            Reading::Done => Poll::Ready(Ok(0)),
            Reading::Length(left) => {
                let room = usize::try_from(left).unwrap_or(usize::MAX).min(out.len());
                let out = &mut out[..room];
                let n = match this.take_leftover(out) {
                    0 => ready!(this.poll_conn(cx, out))?,
                    n => n,
                };
                if n == 0 {
                    let why = format!("connection closed {left} bytes before the end of the body");
                    return Poll::Ready(Err(this.error(io::ErrorKind::UnexpectedEof, &why)));
                }
                let left = left - n as u64;
                this.reading = Reading::Length(left);
                if left == 0 {
                    this.finish();
                }
                Poll::Ready(Ok(n))
            }
            Reading::UntilClose => {
                let n = match this.take_leftover(out) {
                    0 => ready!(this.poll_conn(cx, out))?,
                    n => n,
                };
                if n == 0 {
                    this.finish();
                }
                Poll::Ready(Ok(n))
            }
            Reading::Chunked(_) => this.poll_chunked(cx, out),
        }
    }
}

impl Body {
    fn poll_chunked(&mut self, cx: &mut Context<'_>, out: &mut [u8]) -> Poll<io::Result<usize>> {
        loop {
            if self.pos < self.buf.len() {
                let Reading::Chunked(decoder) = &mut self.reading else {
                    return Poll::Ready(Ok(0));
                };
                let decoded = decoder.decode(&self.buf[self.pos..], out);
                let done = decoder.is_done();
                let (used, wrote) =
                    decoded.map_err(|e| self.error(io::ErrorKind::InvalidData, &e))?;
                self.pos += used;
                if done {
                    self.finish();
                }
                if wrote > 0 || done {
                    return Poll::Ready(Ok(wrote));
                }
                continue;
            }
            // Refill: the buffer is used up.
            let mut buf = std::mem::take(&mut self.buf);
            buf.resize(CHUNKED_READ_BYTES, 0);
            let polled = self.poll_conn(cx, &mut buf);
            let n = match polled {
                Poll::Ready(Ok(n)) => n,
                other => {
                    buf.clear();
                    self.buf = buf;
                    self.pos = 0;
                    return other;
                }
            };
            buf.truncate(n);
            self.buf = buf;
            self.pos = 0;
            if n == 0 {
                let why = "connection closed before the last chunk";
                return Poll::Ready(Err(self.error(io::ErrorKind::UnexpectedEof, &why)));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_heads_are_plain_and_checked() {
        let url = Url::parse("https://r.example:8443/v2/a/blobs/sha256:00?x=1&y=%20").unwrap();
        let head = request_head(Method::Get, &url, &[("range", "bytes=5-")]).unwrap();
        assert_eq!(
            head,
            format!(
                "GET /v2/a/blobs/sha256:00?x=1&y=%20 HTTP/1.1\r\nhost: r.example:8443\r\n\
                 user-agent: {USER_AGENT}\r\nconnection: close\r\naccept-encoding: identity\r\n\
                 range: bytes=5-\r\n\r\n"
            )
        );
        let v6 = Url::parse("http://[::1]/v2/").unwrap();
        assert!(request_head(Method::Head, &v6, &[])
            .unwrap()
            .starts_with("HEAD /v2/ HTTP/1.1\r\nhost: [::1]\r\n"));
        for bad in [
            ("x", "a\r\nb: c"),
            ("x", "caf\u{e9}"),
            ("x y", "1"),
            ("", "1"),
        ] {
            assert!(request_head(Method::Get, &url, &[bad]).is_err(), "{bad:?}");
        }
    }
}
