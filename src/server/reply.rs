//! Writing a [`Reply`] to the client: the status line and headers, then the body — a cached
//! blob range, or a file a fill is still writing, by `sendfile(2)`; an upstream stream
//! through one fixed buffer; or bytes in memory. Ours rather than async-h1's encoder,
//! which copies every body through 8 KiB buffers: on a Pi's small CPU the copy is the cost
//! of serving. HTTP/1.0 gets no chunked coding: a body of unknown length ends with the
//! connection.

use super::conn::Conn;
use crate::http::{Body, Growing, Reply};
use futures_lite::{future, AsyncRead, AsyncReadExt, AsyncWriteExt};
use std::io;
use std::time::SystemTime;

/// Buffer for streamed bodies (uncached pass-through): allocated per reply, so 32 parallel
/// uncached downloads cost 2 MiB.
pub const STREAM_BUF: usize = 64 * 1024;

/// How a reply is framed on this connection.
#[derive(Debug, Clone, Copy)]
pub struct Framing {
    /// HEAD: headers only.
    pub head_only: bool,
    /// Close the connection after this reply (`Connection: close`).
    pub close: bool,
    /// The request was HTTP/1.0: no chunked coding (a body of unknown length is ended by
    /// closing the connection), and `Connection: keep-alive` when the connection stays.
    pub http10: bool,
}

impl Framing {
    /// Whether the connection must close after `reply`: asked for, or an HTTP/1.0 body
    /// whose end only the close can mark.
    pub fn closes_after(&self, reply: &Reply) -> bool {
        self.close || (self.http10 && !self.head_only && reply.body.len().is_none())
    }
}

/// The status line and headers of `reply`, framed as `framing` says.
pub fn head(reply: &Reply, framing: Framing) -> String {
    let len = match reply.body {
        Body::Empty => reply.head_len.or(Some(0)),
        _ => reply.body.len(),
    };
    let status = reply.status;
    let reason = reply.reason.as_deref().unwrap_or(status.reason());
    let mut head = format!("HTTP/1.1 {} {reason}\r\n", status.code());
    for (name, value) in &reply.headers {
        // Values may come from upstream (Content-Type): never let them split the response.
        let value: String = value.chars().filter(|c| *c != '\r' && *c != '\n').collect();
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    match len {
        Some(len) => head.push_str(&format!("Content-Length: {len}\r\n")),
        None if framing.http10 => {}
        None => head.push_str("Transfer-Encoding: chunked\r\n"),
    }
    head.push_str(&format!("Date: {}\r\n", http_date(SystemTime::now())));
    if framing.closes_after(reply) {
        head.push_str("Connection: close\r\n");
    } else if framing.http10 {
        head.push_str("Connection: keep-alive\r\n");
    }
    head.push_str("\r\n");
    head
}

/// Sends `reply` framed as `framing` says. Returns the body bytes sent, with the error
/// that cut the reply short, if any. A body of unknown length is sent chunked (HTTP/1.1)
/// or ended by closing (HTTP/1.0; see [`Framing::closes_after`]).
pub async fn send(conn: &mut Conn, reply: Reply, framing: Framing) -> (u64, io::Result<()>) {
    let head = head(&reply, framing);
    if let Err(e) = conn.write_all(head.as_bytes()).await {
        return (0, Err(e));
    }
    if framing.head_only {
        return (0, conn.flush().await);
    }
    let chunked = !framing.http10;
    let mut sent = 0;
    let result = match reply.body {
        Body::Empty => Ok(()),
        Body::Bytes(b) => conn.write_all(&b).await.map(|()| sent = b.len() as u64),
        Body::File { file, start, len } => {
            conn.send_file(&file, start, len).await.map(|()| sent = len)
        }
        Body::Growing(g) => send_growing(conn, g, chunked, &mut sent).await,
        Body::Stream(reader, len) => send_stream(conn, reader, len, chunked, &mut sent).await,
    };
    (sent, result.and(conn.flush().await))
}

/// A file a fill is still writing: `sendfile` as far as its progress allows, then wait.
/// `chunked` applies only when the length is unknown.
async fn send_growing(
    conn: &mut Conn,
    mut g: Growing,
    chunked: bool,
    sent: &mut u64,
) -> io::Result<()> {
    let end = g.len.map(|len| g.start.saturating_add(len));
    let mut pos = g.start;
    let chunked = chunked && end.is_none();
    while end.is_none_or(|end| pos < end) {
        let readable = future::poll_fn(|cx| g.progress.poll_readable(pos, cx)).await?;
        if readable <= pos {
            if end.is_some() {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "blob ended before its length",
                ));
            }
            break;
        }
        let upto = end.map_or(readable, |end| readable.min(end));
        let n = upto - pos;
        if chunked {
            conn.write_all(format!("{n:x}\r\n").as_bytes()).await?;
        }
        conn.send_file(&g.file, pos, n).await?;
        if chunked {
            conn.write_all(b"\r\n").await?;
        }
        pos = upto;
        *sent += n;
    }
    if chunked {
        conn.write_all(b"0\r\n\r\n").await?;
    }
    Ok(())
}

/// Bytes from elsewhere, through one fixed buffer; chunked (if `chunked`) when the length
/// is unknown.
async fn send_stream(
    conn: &mut Conn,
    mut reader: Box<dyn AsyncRead + Unpin>,
    len: Option<u64>,
    chunked: bool,
    sent: &mut u64,
) -> io::Result<()> {
    let chunked = chunked && len.is_none();
    let mut buf = vec![0u8; STREAM_BUF];
    loop {
        let n = reader.read(&mut buf).await?;
        if n == 0 {
            if len.is_some_and(|len| *sent < len) {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            break;
        }
        if chunked {
            conn.write_all(format!("{n:x}\r\n").as_bytes()).await?;
        }
        conn.write_all(&buf[..n]).await?;
        if chunked {
            conn.write_all(b"\r\n").await?;
        }
        *sent += n as u64;
        // Loopback and LAN sockets rarely block: let the other connections run.
        futures_lite::future::yield_now().await;
    }
    if chunked {
        conn.write_all(b"0\r\n\r\n").await?;
    }
    Ok(())
}

/// `Sun, 22 Nov 2026 16:04:06 GMT` (RFC 9110 IMF-fixdate).
pub fn http_date(t: SystemTime) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let days = secs / 86400;
    let (y, m, d) = crate::logger::civil_from_days(days as i64);
    let rem = secs % 86400;
    format!(
        "{}, {d:02} {} {y} {:02}:{:02}:{:02} GMT",
        DAYS[(days % 7) as usize],
        MONTHS[(m - 1) as usize],
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn framing(http10: bool, close: bool) -> Framing {
        Framing {
            head_only: false,
            close,
            http10,
        }
    }

    #[test]
    fn http10_gets_no_chunked_coding_and_keep_alive_only_when_it_stays() {
        let unknown = || {
            let body = Body::Stream(Box::new(futures_lite::io::empty()), None);
            Reply::new(crate::http::Status::OK, body)
        };
        let h = head(&unknown(), framing(true, false));
        assert!(!h.contains("Transfer-Encoding") && h.contains("Connection: close\r\n"));
        assert!(framing(true, false).closes_after(&unknown()));
        let h = head(&unknown(), framing(false, false));
        assert!(h.contains("Transfer-Encoding: chunked\r\n") && !h.contains("Connection"));
        let known = Reply::new(crate::http::Status::OK, Body::Bytes(b"{}".to_vec()));
        let h = head(&known, framing(true, false));
        assert!(h.contains("Content-Length: 2\r\n") && h.contains("Connection: keep-alive"));
        let h = head(&known.reason("upstream down"), framing(false, true));
        assert!(h.starts_with("HTTP/1.1 200 upstream down\r\n") && h.contains("Connection: close"));
    }

    #[test]
    fn dates_are_imf_fixdate() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_363_446);
        assert_eq!(http_date(t), "Sun, 22 Nov 2026 16:04:06 GMT");
        assert_eq!(
            http_date(SystemTime::UNIX_EPOCH),
            "Thu, 01 Jan 1970 00:00:00 GMT"
        );
    }
}
