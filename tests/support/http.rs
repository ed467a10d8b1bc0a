//! The fake registry's wire: read requests off a connection, hand them to `registry.rs`,
//! write the answers (cut short or held open when a fault is scripted).

use super::registry::route;
use super::{Cut, Listener, Logged, Shared};
use futures_rustls::rustls;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::Ordering;
use std::thread;
use std::time::Duration;

/// How often a frozen connection checks whether its client left or the fake stopped.
const FROZEN_POLL: Duration = Duration::from_millis(50);

/// Chunk size of a chunked body.
const CHUNK: usize = 16 * 1024;

pub(super) struct Req {
    pub(super) method: String,
    pub(super) target: String,
    pub(super) headers: Vec<(String, String)>,
}

impl Req {
    pub(super) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub(super) fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }
    pub(super) fn query(&self, key: &str) -> Option<String> {
        let q = self.target.split_once('?')?.1;
        q.split('&').find_map(|kv| {
            let (k, v) = kv.split_once('=')?;
            (k == key).then(|| percent_decode(v))
        })
    }
}

/// One answer. `cut`: stop after that many body bytes, closing or stalling the connection.
/// `chunked`: send the body chunked, without `Content-Length`. `omit_length`: a HEAD
/// answer without `Content-Length`.
pub(super) struct Answer {
    pub(super) status: u16,
    pub(super) headers: Vec<(String, String)>,
    pub(super) body: Vec<u8>,
    pub(super) cut: Option<(usize, Cut)>,
    pub(super) chunked: bool,
    pub(super) omit_length: bool,
}

impl Answer {
    pub(super) fn new(status: u16, body: impl Into<Vec<u8>>) -> Answer {
        Answer {
            status,
            headers: Vec::new(),
            body: body.into(),
            cut: None,
            chunked: false,
            omit_length: false,
        }
    }
    pub(super) fn header(mut self, name: &str, value: impl Into<String>) -> Answer {
        self.headers.push((name.into(), value.into()));
        self
    }
    pub(super) fn error(status: u16, code: &str) -> Answer {
        let body = format!(r#"{{"errors":[{{"code":"{code}","message":"fake","detail":null}}]}}"#);
        Answer::new(status, body).header("Content-Type", "application/json")
    }
}

/// A connection the fake can serve: plain TCP or rustls over TCP.
pub(super) trait Wire: Read + Write {
    fn tcp(&self) -> &TcpStream;
}

impl Wire for TcpStream {
    fn tcp(&self) -> &TcpStream {
        self
    }
}

impl Wire for rustls::StreamOwned<rustls::ServerConnection, TcpStream> {
    fn tcp(&self) -> &TcpStream {
        &self.sock
    }
}

/// Serves one connection until the client closes it.
pub(super) fn serve<W: Wire>(conn: W, which: Listener, shared: &Shared) {
    let mut conn = BufReader::new(conn);
    loop {
        let Some(req) = read_request(&mut conn) else {
            return;
        };
        shared
            .log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Logged {
                listener: which,
                method: req.method.clone(),
                target: req.target.clone(),
                host: req.header("host").unwrap_or("").to_owned(),
                authorization: req.header("authorization").map(str::to_owned),
                range: req.header("range").map(str::to_owned),
                accept: req.header("accept").map(str::to_owned),
            });
        let (frozen, delay) = {
            let s = shared.state();
            (s.frozen, s.delay)
        };
        if frozen {
            return hold(conn.get_mut(), shared);
        }
        thread::sleep(delay);
        let answer = route(&req, which, shared);
        let head = req.method == "HEAD";
        let w = conn.get_mut();
        let written = write_answer(w, &answer, head);
        match (written, answer.cut) {
            (false, _) => return,
            (true, Some((_, Cut::Close))) if !head => {
                let _ = w.flush();
                let _ = w.tcp().shutdown(Shutdown::Both);
                return;
            }
            (true, Some((_, Cut::Stall))) if !head => return hold(w, shared),
            (true, _) => {}
        }
    }
}

/// Reads a request head (and discards any body). `None` at end of stream.
fn read_request<R: BufRead>(reader: &mut R) -> Option<Req> {
    let mut line = String::new();
    if reader.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let (method, target) = (parts.next()?.to_owned(), parts.next()?.to_owned());
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).ok()? == 0 {
            return None;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (n, v) = h.split_once(':')?;
        headers.push((n.trim().to_owned(), v.trim().to_owned()));
    }
    let req = Req {
        method,
        target,
        headers,
    };
    let len: u64 = req
        .header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    std::io::copy(&mut reader.by_ref().take(len), &mut std::io::sink()).ok()?;
    Some(req)
}

/// Never answers; returns when the client leaves or the fake stops.
fn hold<W: Wire>(conn: &mut W, shared: &Shared) {
    let _ = conn.tcp().set_read_timeout(Some(FROZEN_POLL));
    let mut buf = [0u8; 512];
    while !shared.stop.load(Ordering::SeqCst) {
        match conn.read(&mut buf) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return,
        }
    }
}

/// Writes an answer (up to the cut, if any); false on a write error.
fn write_answer<W: Write>(w: &mut W, a: &Answer, head: bool) -> bool {
    let mut out = format!("HTTP/1.1 {} {}\r\n", a.status, reason(a.status));
    for (n, v) in &a.headers {
        out.push_str(&format!("{n}: {v}\r\n"));
    }
    let chunked = a.chunked && a.status < 300;
    if chunked {
        out.push_str("Transfer-Encoding: chunked\r\n");
    } else if !(head && a.omit_length) {
        out.push_str(&format!("Content-Length: {}\r\n", a.body.len()));
    }
    out.push_str("\r\n");
    let mut bytes = out.into_bytes();
    if !head {
        let n = a.cut.map_or(a.body.len(), |(c, _)| c.min(a.body.len()));
        if chunked {
            for chunk in a.body[..n].chunks(CHUNK) {
                bytes.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
                bytes.extend_from_slice(chunk);
                bytes.extend_from_slice(b"\r\n");
            }
            if a.cut.is_none() {
                bytes.extend_from_slice(b"0\r\n\r\n");
            }
        } else {
            bytes.extend_from_slice(&a.body[..n]);
        }
    }
    w.write_all(&bytes).is_ok() && w.flush().is_ok()
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        206 => "Partial Content",
        307 => "Temporary Redirect",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        416 => "Range Not Satisfiable",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Whatever",
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = b
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (b[i], hex) {
            (b'%', Some(v)) => {
                out.push(v);
                i += 3;
            }
            (b'+', _) => {
                out.push(b' ');
                i += 1;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
