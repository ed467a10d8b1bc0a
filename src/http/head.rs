//! Reading a request head: [`parse_head`] is a pure function from the bytes a client has sent
//! so far to a complete [`Head`], "need more", or a [`HeadError`] — no I/O, no allocation
//! beyond the parsed result, never a panic on any input (the fuzz target's contract).
//!
//! Strict where leniency lets one request be read two ways (request smuggling), lenient
//! nowhere else: CRLF line ends only (a bare LF is refused at once, not waited on), exactly
//! one `Host` in HTTP/1.1 holding a host and nothing else (RFC 9112 §3.2), one
//! `Content-Length` of digits or a `Transfer-Encoding` ending in `chunked` but never both
//! (§6.3), methods case-sensitive (RFC 9110 §9.1). Header values may carry any bytes
//! HTTP allows, obs-text included; they are kept as bytes and read as text only where
//! valid UTF-8.

use super::{Method, Request};
use std::fmt;

/// Largest request head: request line and headers with their CRLFs, enforced on the bytes
/// buffered, so a head that never ends costs at most this (CVE-2018-12121-style memory
/// exhaustion). Registry clients send well under 2 KiB, a Bearer token included.
pub const MAX_HEAD_BYTES: usize = 8 * 1024;

/// Most header lines in one head. Real clients send about ten; past this is 431.
pub const MAX_HEADERS: usize = 64;

/// A request head that was read whole.
#[derive(Debug, Clone)]
pub struct Head {
    /// The request as routes see it (its `peer` unset: the server knows the socket).
    pub request: Request,
    /// `HTTP/1.0` rather than `HTTP/1.1`: no chunked replies, no keep-alive unless asked.
    pub http10: bool,
    /// Whether the client lets the connection be reused after this request.
    pub keep_alive: bool,
    /// The body that follows the head.
    pub body: BodyLength,
    /// `Expect: 100-continue`: the client waits before it sends the body.
    pub expect_continue: bool,
}

/// How long the request body after a head is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyLength {
    /// No body.
    None,
    /// `Content-Length` bytes.
    Length(u64),
    /// `Transfer-Encoding: chunked`: known only by reading it.
    Chunked,
}

/// What the bytes so far hold.
#[derive(Debug)]
pub enum Parsed {
    /// The head is not complete yet: read more (unless [`MAX_HEAD_BYTES`] are buffered).
    Partial,
    /// A whole head, `len` bytes long; anything after it is the body or the next request.
    Complete {
        /// The head (boxed: it is large, and `Partial` is the common answer).
        head: Box<Head>,
        /// Its length in bytes.
        len: usize,
    },
}

/// Why a head is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeadError {
    /// Over [`MAX_HEAD_BYTES`] or [`MAX_HEADERS`]: 431.
    TooLarge,
    /// Not an HTTP/1.x request head we accept: 400, with the reason.
    Malformed(&'static str),
}

impl fmt::Display for HeadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HeadError::TooLarge => f.write_str("request head too large"),
            HeadError::Malformed(why) => f.write_str(why),
        }
    }
}

/// Parses the head at the start of `buf`. `Partial` for a prefix of a valid head that is
/// shorter than [`MAX_HEAD_BYTES`]; `TooLarge` once that many bytes hold no complete head.
pub fn parse_head(buf: &[u8]) -> Result<Parsed, HeadError> {
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut slots);
    let len = match req.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => {
            no_bare_lf(buf)?;
            return if buf.len() >= MAX_HEAD_BYTES {
                Err(HeadError::TooLarge)
            } else {
                Ok(Parsed::Partial)
            };
        }
        Err(httparse::Error::TooManyHeaders) => return Err(HeadError::TooLarge),
        Err(e) => {
            no_bare_lf(buf)?;
            return Err(HeadError::Malformed(match e {
                httparse::Error::Version => "not HTTP/1.0 or HTTP/1.1",
                httparse::Error::Token => "invalid method",
                httparse::Error::HeaderName => "invalid header name",
                httparse::Error::HeaderValue => "invalid header value",
                _ => "malformed request line or header",
            }));
        }
    };
    if len > MAX_HEAD_BYTES {
        return Err(HeadError::TooLarge);
    }
    no_bare_lf(&buf[..len])?;
    let (Some(method), Some(target), Some(version)) = (req.method, req.path, req.version) else {
        return Err(HeadError::Malformed("incomplete request line"));
    };
    let http10 = version == 0;
    let method = match method {
        "GET" => Method::Get,
        "HEAD" => Method::Head,
        other => Method::Other(other.to_owned()),
    };
    let target = Target::parse(target, &method)?;

    let mut headers = Headers::default();
    let (mut host, mut hosts) = (None, 0);
    let (mut length, mut chunked, mut close, mut keep) = (None, false, false, false);
    let mut expect_continue = false;
    for h in req.headers.iter() {
        let name = h.name.to_ascii_lowercase();
        let value = trim(h.value);
        match name.as_str() {
            "host" => {
                hosts += 1;
                host = Some(valid_host(value)?);
            }
            "content-length" => {
                let n = content_length(value)?;
                if length.is_some_and(|l| l != n) {
                    return Err(HeadError::Malformed("conflicting Content-Length"));
                }
                length = Some(n);
            }
            "transfer-encoding" => {
                if http10 {
                    return Err(HeadError::Malformed("Transfer-Encoding in HTTP/1.0"));
                }
                // Any coding list must end in chunked (RFC 9112 §6.1); a later header line
                // continues the list.
                chunked = last_token(value).is_some_and(|t| t.eq_ignore_ascii_case(b"chunked"));
                if !chunked {
                    return Err(HeadError::Malformed(
                        "Transfer-Encoding not ending in chunked",
                    ));
                }
            }
            "connection" => {
                for token in tokens(value) {
                    close |= token.eq_ignore_ascii_case(b"close");
                    keep |= token.eq_ignore_ascii_case(b"keep-alive");
                }
            }
            "expect" => expect_continue |= value.eq_ignore_ascii_case(b"100-continue"),
            _ => {}
        }
        headers.0.push((name, value.to_vec()));
    }
    if hosts > 1 {
        return Err(HeadError::Malformed("more than one Host header"));
    }
    if hosts == 0 && !http10 {
        return Err(HeadError::Malformed("HTTP/1.1 request without Host"));
    }
    if chunked && length.is_some() {
        return Err(HeadError::Malformed(
            "both Content-Length and Transfer-Encoding",
        ));
    }
    let body = match (chunked, length) {
        (true, _) => BodyLength::Chunked,
        (false, Some(n)) if n > 0 => BodyLength::Length(n),
        _ => BodyLength::None,
    };
    let request = Request {
        method,
        path: target.path,
        query: target.query,
        accept: headers.get_all("accept").map(str::to_owned).collect(),
        range: single(&headers, "range"),
        host: target.authority.or(host),
        headers,
        peer: None,
    };
    let keep_alive = if http10 { keep && !close } else { !close };
    Ok(Parsed::Complete {
        head: Box::new(Head {
            request,
            http10,
            keep_alive,
            body,
            expect_continue,
        }),
        len,
    })
}

/// Header fields as sent: names lower-cased, values as bytes (trimmed of spaces). Bounded
/// by the head they came in ([`MAX_HEAD_BYTES`]). `Debug` hides credentials.
#[derive(Clone, Default)]
pub struct Headers(Vec<(String, Vec<u8>)>);

impl Headers {
    /// The value of the only `name` header (lower-case name), if there is exactly one and it
    /// is text.
    pub fn get(&self, name: &str) -> Option<&str> {
        let mut all = self.0.iter().filter(|(n, _)| n == name);
        let (_, v) = all.next()?;
        if all.next().is_some() {
            return None;
        }
        std::str::from_utf8(v).ok()
    }

    /// Every `name` header's value that is text, in order.
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(n, _)| n == name)
            .filter_map(|(_, v)| std::str::from_utf8(v).ok())
    }

    /// How many header lines there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Headers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut m = f.debug_map();
        for (name, value) in &self.0 {
            let secret = matches!(
                name.as_str(),
                "authorization" | "proxy-authorization" | "cookie"
            );
            if secret {
                m.entry(name, &"<redacted>");
            } else {
                m.entry(name, &String::from_utf8_lossy(value));
            }
        }
        m.finish()
    }
}

fn single(headers: &Headers, name: &str) -> Option<String> {
    headers.get(name).map(str::to_owned)
}

/// The request target split into what routes read: origin form `/p?q`, absolute form
/// `http://host/p?q` (its authority becomes the host; the route is still only the path),
/// or `*` for OPTIONS.
struct Target {
    path: String,
    query: Option<String>,
    authority: Option<String>,
}

impl Target {
    fn parse(target: &str, method: &Method) -> Result<Target, HeadError> {
        if !target.is_ascii() || target.contains('#') {
            return Err(HeadError::Malformed("invalid request target"));
        }
        if target == "*" && *method == Method::Other("OPTIONS".into()) {
            return Ok(Target {
                path: "*".into(),
                query: None,
                authority: None,
            });
        }
        let (origin, authority) = if target.starts_with('/') {
            (target, None)
        } else {
            let lower = target.get(..8).unwrap_or(target).to_ascii_lowercase();
            let rest = if lower.starts_with("http://") {
                &target[7..]
            } else if lower.starts_with("https://") {
                &target[8..]
            } else {
                return Err(HeadError::Malformed("invalid request target"));
            };
            let end = rest.find(['/', '?']).unwrap_or(rest.len());
            let authority = valid_host(&rest.as_bytes()[..end])?;
            if authority.is_empty() {
                return Err(HeadError::Malformed("invalid request target"));
            }
            (&rest[end..], Some(authority))
        };
        let (path, query) = match origin.split_once('?') {
            Some((p, q)) => (p, Some(q.to_owned())),
            None => (origin, None),
        };
        let path = if path.is_empty() { "/" } else { path };
        if !path.starts_with('/') {
            return Err(HeadError::Malformed("invalid request target"));
        }
        Ok(Target {
            path: path.to_owned(),
            query,
            authority,
        })
    }
}

/// `uri-host [ ":" port ]` (RFC 3986 reg-name or IP literal): no path, no user info.
fn valid_host(value: &[u8]) -> Result<String, HeadError> {
    let ok = value
        .iter()
        .all(|&b| b.is_ascii_alphanumeric() || b"-._~%!$&'()*+,;=:[]".contains(&b));
    match std::str::from_utf8(value) {
        Ok(s) if ok => Ok(s.to_owned()),
        _ => Err(HeadError::Malformed("invalid Host")),
    }
}

fn content_length(value: &[u8]) -> Result<u64, HeadError> {
    let bad = HeadError::Malformed("invalid Content-Length");
    if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
        return Err(bad);
    }
    value.iter().try_fold(0u64, |n, &d| {
        n.checked_mul(10)
            .and_then(|n| n.checked_add(u64::from(d - b'0')))
            .ok_or(bad)
    })
}

/// Every line must end in CRLF: a bare LF is read differently by different parsers.
fn no_bare_lf(bytes: &[u8]) -> Result<(), HeadError> {
    let bare = bytes
        .iter()
        .enumerate()
        .any(|(i, &b)| b == b'\n' && (i == 0 || bytes[i - 1] != b'\r'));
    if bare {
        Err(HeadError::Malformed("line ending without CR"))
    } else {
        Ok(())
    }
}

fn trim(v: &[u8]) -> &[u8] {
    let start = v
        .iter()
        .position(|b| !matches!(b, b' ' | b'\t'))
        .unwrap_or(v.len());
    let end = v
        .iter()
        .rposition(|b| !matches!(b, b' ' | b'\t'))
        .map_or(start, |e| e + 1);
    &v[start..end]
}

fn tokens(v: &[u8]) -> impl Iterator<Item = &[u8]> {
    v.split(|&b| b == b',').map(trim).filter(|t| !t.is_empty())
}

fn last_token(v: &[u8]) -> Option<&[u8]> {
    tokens(v).last()
}

#[cfg(test)]
mod tests;
