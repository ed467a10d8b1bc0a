//! Writing a [`Reply`] to the client: the status line and headers, then the body — a cached
//! blob range by `sendfile(2)`, a growing or upstream stream through one fixed buffer, or
//! bytes in memory. Ours rather than async-h1's encoder, which copies every body through
//! 8 KiB buffers: on a Pi's small CPU the copy is the cost of serving.

use super::conn::Conn;
use crate::http::{Body, Reply};
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use std::io;
use std::time::SystemTime;

/// Buffer for streamed bodies (fills in progress, uncached pass-through): allocated per
/// reply, so 32 parallel cold downloads cost 2 MiB.
pub const STREAM_BUF: usize = 64 * 1024;

/// Sends `reply`; `head_only` for HEAD; `close` adds `Connection: close`. Returns the body
/// bytes sent, with the error that cut the reply short, if any.
pub async fn send(
    conn: &mut Conn,
    reply: Reply,
    head_only: bool,
    close: bool,
) -> (u64, io::Result<()>) {
    let len = match &reply.body {
        Body::Empty => reply.head_len.unwrap_or(0),
        Body::Bytes(b) => b.len() as u64,
        Body::File { len, .. } | Body::Stream(_, len) => *len,
    };
    let mut head = format!("HTTP/1.1 {} {}\r\n", reply.status, reason(reply.status));
    for (name, value) in &reply.headers {
        // Values may come from upstream (Content-Type): never let them split the response.
        let value: String = value.chars().filter(|c| *c != '\r' && *c != '\n').collect();
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str(&format!(
        "Content-Length: {len}\r\nDate: {}\r\n",
        http_date(SystemTime::now())
    ));
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
        Body::Bytes(b) => conn.write_all(&b).await.map(|()| sent = len),
        Body::File { file, start, len } => {
            conn.send_file(&file, start, len).await.map(|()| sent = len)
        }
        Body::Stream(mut reader, len) => {
            let mut buf = vec![0u8; STREAM_BUF];
            loop {
                let n = match reader.read(&mut buf).await {
                    Ok(0) if sent < len => break Err(io::ErrorKind::UnexpectedEof.into()),
                    Ok(0) => break Ok(()),
                    Ok(n) => n,
                    Err(e) => break Err(e),
                };
                if let Err(e) = conn.write_all(&buf[..n]).await {
                    break Err(e);
                }
                sent += n as u64;
                // Loopback and LAN sockets rarely block: let the other connections run.
                futures_lite::future::yield_now().await;
            }
        }
    };
    (sent, result.and(conn.flush().await))
}

/// The reason phrase for the statuses we send.
pub fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        206 => "Partial Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        416 => "Range Not Satisfiable",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Status",
    }
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
