//! An upstream that answers with exact bytes: for tests of what the mirror's HTTP client
//! does with answers no well-behaved registry sends (chunked trailers with any bytes,
//! overflowing chunk sizes, heads after a 1xx, endless header lines, bodies that stop).
//!
//! Each connection's request head is read and logged, then a test-supplied script says what
//! to send back, step by step ([`Step`]); the connection is closed after the last step. std
//! only, one thread per connection, like the fake registry.
//!
//! ```no_run
//! mod support;
//! use support::raw_upstream::{RawUpstream, Step};
//! let raw = RawUpstream::start(|_req| vec![Step::send("HTTP/1.1 204 No Content\r\n\r\n")]);
//! // … point an UpstreamUrl at raw.url() …
//! assert_eq!(raw.requests().len(), 0);
//! ```

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

/// How often a held connection checks whether its client left or the server stopped.
const HOLD_POLL: Duration = Duration::from_millis(50);

/// Largest run written by one `write` call of [`Step::Repeat`].
const REPEAT_CHUNK: usize = 64 << 10;

/// One request as received.
#[derive(Clone, Debug)]
pub struct RawRequest {
    pub method: String,
    /// Path and query, as sent.
    pub target: String,
    /// Names as sent; values trimmed.
    pub headers: Vec<(String, String)>,
}

impl RawRequest {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// What to do next on a connection.
#[derive(Clone, Debug)]
pub enum Step {
    /// Write these bytes.
    Send(Vec<u8>),
    /// Write `byte` this many times (a header line without end, a long body).
    Repeat { byte: u8, count: usize },
    /// Wait.
    Pause(Duration),
    /// Send nothing more, keep the connection open until the client leaves.
    Hold,
}

impl Step {
    /// [`Step::Send`] of a string or byte string.
    pub fn send(bytes: impl AsRef<[u8]>) -> Step {
        Step::Send(bytes.as_ref().to_vec())
    }
}

type Script = dyn Fn(&RawRequest) -> Vec<Step> + Send + Sync;

struct Shared {
    script: Box<Script>,
    log: Mutex<Vec<RawRequest>>,
    /// Bytes written to all clients so far.
    written: AtomicU64,
    stop: AtomicBool,
}

/// A running raw upstream on `127.0.0.1:0`. Dropping it stops the listener; held
/// connections end within [`HOLD_POLL`].
pub struct RawUpstream {
    shared: Arc<Shared>,
    addr: SocketAddr,
}

impl RawUpstream {
    /// Starts answering every request with the steps `script` returns for it.
    pub fn start(script: impl Fn(&RawRequest) -> Vec<Step> + Send + Sync + 'static) -> RawUpstream {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind raw upstream");
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared {
            script: Box::new(script),
            log: Mutex::new(Vec::new()),
            written: AtomicU64::new(0),
            stop: AtomicBool::new(false),
        });
        let accepting = Arc::clone(&shared);
        thread::spawn(move || {
            for conn in listener.incoming() {
                if accepting.stop.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(conn) = conn else { continue };
                let shared = Arc::clone(&accepting);
                thread::spawn(move || serve(conn, &shared));
            }
        });
        RawUpstream { shared, addr }
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `http://localhost:PORT`: the same listener under a host name (another host).
    pub fn localhost_url(&self) -> String {
        format!("http://localhost:{}", self.addr.port())
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<RawRequest> {
        self.shared
            .log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Bytes written to clients so far (a client that stops reading stops this growing).
    pub fn bytes_written(&self) -> u64 {
        self.shared.written.load(Ordering::SeqCst)
    }
}

impl Drop for RawUpstream {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
    }
}

/// Reads one request head, plays the script for it, and closes the connection (one answer
/// per connection, as the mirror's client expects: it sends `Connection: close`).
fn serve(conn: TcpStream, shared: &Shared) {
    let mut reader = BufReader::new(conn);
    if let Some(req) = read_head(&mut reader) {
        shared
            .log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(req.clone());
        let steps = (shared.script)(&req);
        let conn = reader.get_mut();
        for step in steps {
            let ok = match step {
                Step::Send(bytes) => write(conn, &bytes, shared),
                Step::Repeat { byte, count } => {
                    let run = vec![byte; REPEAT_CHUNK.min(count)];
                    let mut left = count;
                    let mut ok = true;
                    while ok && left > 0 {
                        let n = left.min(run.len());
                        ok = write(conn, &run[..n], shared);
                        left -= n;
                    }
                    ok
                }
                Step::Pause(d) => {
                    thread::sleep(d);
                    true
                }
                Step::Hold => return hold(conn, shared),
            };
            if !ok {
                return;
            }
        }
    }
}

fn write(conn: &mut TcpStream, bytes: &[u8], shared: &Shared) -> bool {
    let ok = conn.write_all(bytes).is_ok() && conn.flush().is_ok();
    if ok {
        shared
            .written
            .fetch_add(bytes.len() as u64, Ordering::SeqCst);
    }
    ok
}

/// Reads one request head (any body is ignored: the mirror sends none). `None` at EOF.
fn read_head<R: BufRead>(reader: &mut R) -> Option<RawRequest> {
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
        headers.push((n.to_owned(), v.trim().to_owned()));
    }
    Some(RawRequest {
        method,
        target,
        headers,
    })
}

/// Sends nothing; returns when the client leaves or the server stops.
fn hold(conn: &mut TcpStream, shared: &Shared) {
    let _ = conn.set_read_timeout(Some(HOLD_POLL));
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
