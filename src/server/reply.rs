//! Writing a [`Reply`] to the client: the status line and headers, then the body — a cached
//! blob range, or a file a fill is still writing, by `sendfile(2)`; an upstream stream
//! through one fixed buffer; or bytes in memory. Ours rather than async-h1's encoder, which copies every body through
//! 8 KiB buffers: on a Pi's small CPU the copy is the cost of serving.

use super::conn::Conn;
use crate::http::{Body, Growing, Reply};
use futures_lite::{future, AsyncRead, AsyncReadExt, AsyncWriteExt};
use std::io;
use std::time::SystemTime;

/// Buffer for streamed bodies (uncached pass-through): allocated per reply, so 32 parallel
/// uncached downloads cost 2 MiB.
pub const STREAM_BUF: usize = 64 * 1024;

/// Sends `reply`; `head_only` for HEAD; `close` adds `Connection: close`. Returns the body
/// bytes sent, with the error that cut the reply short, if any. A body of unknown length
/// is sent chunked.
pub async fn send(
    conn: &mut Conn,
    reply: Reply,
    head_only: bool,
    close: bool,
) -> (u64, io::Result<()>) {
    let len = match reply.body {
        Body::Empty => reply.head_len.or(Some(0)),
        _ => reply.body.len(),
    };
    let status = reply.status;
    let mut head = format!("HTTP/1.1 {} {}\r\n", status.code(), status.reason());
    for (name, value) in &reply.headers {
        // Values may come from upstream (Content-Type): never let them split the response.
        let value: String = value.chars().filter(|c| *c != '\r' && *c != '\n').collect();
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    match len {
        Some(len) => head.push_str(&format!("Content-Length: {len}\r\n")),
        None => head.push_str("Transfer-Encoding: chunked\r\n"),
    }
    head.push_str(&format!("Date: {}\r\n", http_date(SystemTime::now())));
    if close {
        head.push_str("Connection: close\r\n");
    }
    head.push_str("\r\n");
    if let Err(e) = conn.write_all(head.as_bytes()).await {
        return (0, Err(e));
    }
    if head_only {
        return (0, conn.flush().await);
    }
    let mut sent = 0;
    let result = match reply.body {
        Body::Empty => Ok(()),
        Body::Bytes(b) => conn.write_all(&b).await.map(|()| sent = b.len() as u64),
        Body::File { file, start, len } => {
            conn.send_file(&file, start, len).await.map(|()| sent = len)
        }
        Body::Growing(g) => send_growing(conn, g, &mut sent).await,
        Body::Stream(reader, len) => send_stream(conn, reader, len, &mut sent).await,
    };
    (sent, result.and(conn.flush().await))
}

/// A file a fill is still writing: `sendfile` as far as its progress allows, then wait.
async fn send_growing(conn: &mut Conn, mut g: Growing, sent: &mut u64) -> io::Result<()> {
    let end = g.len.map(|len| g.start.saturating_add(len));
    let mut pos = g.start;
    let chunked = end.is_none();
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

/// Bytes from elsewhere, through one fixed buffer; chunked when the length is unknown.
async fn send_stream(
    conn: &mut Conn,
    mut reader: Box<dyn AsyncRead + Unpin>,
    len: Option<u64>,
    sent: &mut u64,
) -> io::Result<()> {
    let mut buf = vec![0u8; STREAM_BUF];
    loop {
        let n = reader.read(&mut buf).await?;
        if n == 0 {
            if len.is_some_and(|len| *sent < len) {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            break;
        }
        if len.is_none() {
            conn.write_all(format!("{n:x}\r\n").as_bytes()).await?;
        }
        conn.write_all(&buf[..n]).await?;
        if len.is_none() {
            conn.write_all(b"\r\n").await?;
        }
        *sent += n as u64;
        // Loopback and LAN sockets rarely block: let the other connections run.
        futures_lite::future::yield_now().await;
    }
    if len.is_none() {
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
