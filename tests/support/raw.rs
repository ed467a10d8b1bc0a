//! Raw bytes on a socket, for tests of what a hostile or unusual client sends: write any
//! bytes (in pieces, with pauses), read whatever comes back until the server closes or a
//! deadline passes, and split a byte stream into the HTTP/1.1 responses it holds (several,
//! for pipelining). Std only, every read bounded by a deadline.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// Long enough for any answer the mirror gives at once; far below the header timeout.
pub const AT_ONCE: Duration = Duration::from_secs(2);

/// A response as sent: status line, headers (names lower-cased), body.
#[derive(Debug, Clone)]
pub struct Raw {
    /// The whole status line, e.g. `HTTP/1.1 503 upstream unavailable: …`.
    pub status_line: String,
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Raw {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Connects with read and write timeouts of `deadline`.
pub fn connect(addr: SocketAddr, deadline: Duration) -> TcpStream {
    let s = TcpStream::connect(addr).expect("connect to the mirror");
    s.set_read_timeout(Some(deadline)).unwrap();
    s.set_write_timeout(Some(deadline)).unwrap();
    s
}

/// Reads until the server closes or `within` has passed since the call; returns what came.
pub fn read_until_close(s: &mut TcpStream, within: Duration) -> Vec<u8> {
    let end = Instant::now() + within;
    let mut out = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return out;
        }
        s.set_read_timeout(Some(left)).unwrap();
        match s.read(&mut buf) {
            Ok(0) => return out,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            // Timed out, or reset by the server: what arrived is the answer.
            Err(_) => return out,
        }
    }
}

/// Sends `bytes` in one write, then reads until close (or `within`).
pub fn exchange(addr: SocketAddr, bytes: &[u8], within: Duration) -> Vec<u8> {
    let mut s = connect(addr, within);
    let _ = s.write_all(bytes);
    read_until_close(&mut s, within)
}

/// Reads exactly one response from `s` (by `Content-Length`, chunked, or to close);
/// `None` if the connection closed or timed out before a whole head arrived.
pub fn read_response(s: &mut TcpStream, head_only: bool, within: Duration) -> Option<Raw> {
    let end = Instant::now() + within;
    let mut got = Vec::new();
    let mut byte = [0u8; 1];
    while !got.ends_with(b"\r\n\r\n") {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return None;
        }
        s.set_read_timeout(Some(left)).unwrap();
        match s.read(&mut byte) {
            Ok(1) => got.push(byte[0]),
            _ => return None,
        }
    }
    let mut all = got;
    let (mut r, _) = parse_head(&all)?;
    if head_only || r.status == 304 || r.status == 204 {
        return Some(r);
    }
    let rest = |s: &mut TcpStream, n: usize| -> Option<Vec<u8>> {
        let mut v = vec![0u8; n];
        s.set_read_timeout(Some(
            end.saturating_duration_since(Instant::now())
                .max(Duration::from_millis(1)),
        ))
        .unwrap();
        s.read_exact(&mut v).ok()?;
        Some(v)
    };
    if let Some(len) = r.header("content-length") {
        let len: usize = len.parse().ok()?;
        r.body = rest(s, len)?;
    } else if r.header("transfer-encoding") == Some("chunked") {
        loop {
            let mut line = Vec::new();
            while !line.ends_with(b"\r\n") {
                line.extend(rest(s, 1)?);
            }
            let size = usize::from_str_radix(std::str::from_utf8(&line).ok()?.trim(), 16).ok()?;
            let chunk = rest(s, size + 2)?;
            if size == 0 {
                break;
            }
            r.body.extend_from_slice(&chunk[..size]);
        }
    } else {
        all.clear();
        r.body = read_until_close(s, end.saturating_duration_since(Instant::now()));
    }
    Some(r)
}

/// Splits `bytes` into the responses it holds, in order (bodies by `Content-Length`;
/// a response without one takes the rest). Stops at the first incomplete one.
pub fn responses(bytes: &[u8]) -> Vec<Raw> {
    let mut out = Vec::new();
    let mut rest = bytes;
    while let Some((mut r, head_len)) = parse_head(rest) {
        rest = &rest[head_len..];
        let len = match r.header("content-length") {
            Some(l) => l.parse::<usize>().unwrap_or(usize::MAX),
            None => rest.len(),
        };
        if len > rest.len() {
            break;
        }
        r.body = rest[..len].to_vec();
        rest = &rest[len..];
        out.push(r);
    }
    out
}

/// Parses a response head at the start of `bytes`; returns it and the head's length.
fn parse_head(bytes: &[u8]) -> Option<(Raw, usize)> {
    let end = bytes.windows(4).position(|w| w == b"\r\n\r\n")?;
    let text = String::from_utf8_lossy(&bytes[..end]);
    let mut lines = text.split("\r\n");
    let status_line = lines.next()?.to_owned();
    let status = status_line.split(' ').nth(1)?.parse().ok()?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Some((
        Raw {
            status_line,
            status,
            headers,
            body: Vec::new(),
        },
        end + 4,
    ))
}
