//! The HTTP server: listening socket, accept loop with a connection limit, our header
//! timeout, and the translation between async-h1/http-types and our own
//! [`Request`]/[`Reply`] — the only place that names those crates on the serving side.
//! Also writes the access log line, when a reply's body is finished (or abandoned), so it
//! carries the real byte count and duration.

use crate::cache::Cache;
use crate::config::Config;
use crate::error::Error;
use crate::http::{Body, Method, Outcome, Reply, Request};
use crate::metrics;
use crate::mirror::Mirror;
use crate::routes;
use crate::upstream::Upstreams;
use futures_lite::io::{AsyncBufRead, AsyncRead, AsyncWrite, AsyncWriteExt, Cursor};
use futures_lite::FutureExt;
use smol::lock::Semaphore;
use smol::net::{TcpListener, TcpStream};
use smol::{LocalExecutor, Timer};
use std::cell::Cell;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// Largest request head, enforced by async-h1 itself (`MAX_HEAD_LENGTH`, 8 KiB, against
/// CVE-2018-12121-style memory exhaustion); named here because its error becomes our 431.
pub const MAX_HEAD_BYTES: usize = 8 * 1024;

/// Pause after a failed `accept` (e.g. out of file descriptors) so the loop doesn't spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Opens the cache, builds the upstream clients and binds the socket: every start-up
/// failure surfaces here, as one clear sentence.
pub fn start(
    config: &Config,
    executor: Rc<LocalExecutor<'static>>,
) -> Result<(TcpListener, Rc<Mirror>), String> {
    let dir = config.cache_dir.display();
    let cache = Cache::open(&config.cache_dir, config.max_size)
        .map_err(|e| format!("cache directory {dir} is not usable: {e}"))?;
    let upstreams = Upstreams::new(config)?;
    let listener = std::net::TcpListener::bind(config.listen)
        .map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
    let listener = TcpListener::try_from(listener)
        .map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
    let stats = cache.stats();
    log::info!(
        "regmirror {} listening on {}; cache {dir}: {} blobs, {} of {} bytes budget",
        env!("CARGO_PKG_VERSION"),
        listener
            .local_addr()
            .map(|a| a.to_string())
            .unwrap_or_default(),
        stats.blobs,
        stats.cached,
        stats.max
    );
    for u in &config.upstreams {
        let auth = if u.credentials.is_some() {
            " (with credentials)"
        } else {
            ""
        };
        log::info!("upstream {} = {}{auth}", u.name, u.url);
    }
    crate::status::mark_start();
    let mirror = Mirror::new(cache, upstreams, config.tag_ttl, executor);
    Ok((listener, Rc::new(mirror)))
}

/// Per-connection limits from the config.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Connections served at once.
    pub max_connections: usize,
    /// Time a client gets to send request headers.
    pub header_timeout: Duration,
    /// Time a client may accept no bytes before it is dropped.
    pub write_timeout: Duration,
}

impl Limits {
    /// The limits `config` asks for.
    pub fn from(config: &Config) -> Limits {
        Limits {
            max_connections: config.max_connections,
            header_timeout: config.header_timeout,
            write_timeout: config.client_write_timeout,
        }
    }
}

/// Accepts connections forever, at most `max_connections` at once (the rest wait in the
/// kernel's backlog).
pub async fn serve(
    listener: TcpListener,
    mirror: Rc<Mirror>,
    limits: Limits,
    executor: Rc<LocalExecutor<'static>>,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    loop {
        let permit = slots.acquire_arc().await;
        let (stream, peer) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                log::warn!("accept failed: {e}");
                Timer::after(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let mirror = mirror.clone();
        executor
            .spawn(async move {
                connection(stream, peer, mirror, limits).await;
                drop(permit);
            })
            .detach();
    }
}

/// Runs a server on its own thread and executor; returns its address once it listens.
/// For tests and embedding: the product runs `start` + `serve` on the main thread.
pub fn spawn(config: Config) -> Result<SocketAddr, String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let executor = Rc::new(LocalExecutor::new());
        match start(&config, executor.clone()) {
            Ok((listener, mirror)) => {
                let _ = tx.send(listener.local_addr().map_err(|e| e.to_string()));
                smol::block_on(executor.run(serve(
                    listener,
                    mirror,
                    Limits::from(&config),
                    executor.clone(),
                )));
            }
            Err(e) => {
                let _ = tx.send(Err(e));
            }
        }
    });
    rx.recv().map_err(|e| e.to_string())?
}

/// Serves one connection: requests in sequence (keep-alive) until the client closes, a
/// header timeout, or an error.
async fn connection(stream: TcpStream, peer: SocketAddr, mirror: Rc<Mirror>, limits: Limits) {
    let stream = Client::new(stream, limits.write_timeout);
    loop {
        let read_before = stream.read.load(Ordering::Relaxed);
        // Set when async-h1 hands us a parsed request: from then on the header timeout no
        // longer applies, and an error is the body's, not a malformed request's.
        let dispatched = Rc::new(Cell::new(false));
        let endpoint = {
            let (mirror, dispatched) = (mirror.clone(), dispatched.clone());
            move |req: http_types::Request| {
                let (mirror, dispatched) = (mirror.clone(), dispatched.clone());
                async move {
                    dispatched.set(true);
                    Ok(respond(&mirror, req, peer).await)
                }
            }
        };
        let mut server = async_h1::server::Server::new(stream.clone(), endpoint);
        let timeout = {
            let dispatched = dispatched.clone();
            async move {
                Timer::after(limits.header_timeout).await;
                if dispatched.get() {
                    std::future::pending::<()>().await;
                }
                Err(None)
            }
        };
        let result = async { server.accept_one().await.map_err(Some) }
            .or(timeout)
            .await;
        match result {
            Ok(async_h1::server::ConnectionStatus::KeepAlive) => {}
            Ok(async_h1::server::ConnectionStatus::Close) => return,
            // Timed out waiting for headers: answer a client that sent part of a request;
            // an idle connection (keep-alive, or a spare one Go clients open) just closes.
            Err(None) => {
                if stream.read.load(Ordering::Relaxed) > read_before {
                    refuse(&stream.inner, peer, Error::HeaderTimeout).await;
                }
                return;
            }
            Err(Some(e)) if !dispatched.get() => {
                let msg = e.to_string();
                let err = if msg.contains("Head byte length") {
                    Error::HeadersTooLarge
                } else {
                    Error::Malformed(msg)
                };
                refuse(&stream.inner, peer, err).await;
                return;
            }
            Err(Some(e)) => {
                log::debug!("{peer}: connection ended: {e}");
                return;
            }
        }
    }
}

/// Writes an error reply by hand for a request async-h1 could not parse, then closes.
async fn refuse(stream: &TcpStream, peer: SocketAddr, e: Error) {
    log::info!("{peer} - - {} 0 0ms - ({e})", e.status());
    let reply = routes::error_reply(e);
    let Body::Bytes(body) = &reply.body else {
        return;
    };
    let mut head = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        reply.status,
        reason(reply.status),
        body.len()
    )
    .into_bytes();
    head.extend_from_slice(body);
    let mut stream = stream.clone();
    let _ = stream.write_all(&head).await;
    let _ = stream.close().await;
}

fn reason(status: u16) -> &'static str {
    http_types::StatusCode::try_from(status).map_or("Error", |s| s.canonical_reason())
}

/// async-h1 request → our `Request` → routes → our `Reply` → http-types response.
async fn respond(
    mirror: &Mirror,
    req: http_types::Request,
    peer: SocketAddr,
) -> http_types::Response {
    let started = Instant::now();
    let ours = translate(&req);
    let reply = routes::handle(mirror, &ours).await;
    let target = match &ours.query {
        Some(q) => format!("{}?{q}", ours.path),
        None => ours.path.clone(),
    };
    let line = AccessLine {
        peer,
        method: ours.method.clone(),
        target,
        status: reply.status,
        outcome: reply.outcome,
        started,
    };
    encode(reply, line)
}

fn translate(req: &http_types::Request) -> Request {
    let method = match req.method() {
        http_types::Method::Get => Method::Get,
        http_types::Method::Head => Method::Head,
        m => Method::Other(m.to_string()),
    };
    let values = |name: &str| -> Vec<String> {
        req.header(name)
            .map(|v| v.iter().map(|x| x.as_str().to_owned()).collect())
            .unwrap_or_default()
    };
    Request {
        method,
        path: req.url().path().to_owned(),
        query: req.url().query().map(str::to_owned),
        accept: values("Accept"),
        range: values("Range").into_iter().next(),
    }
}

fn encode(reply: Reply, line: AccessLine) -> http_types::Response {
    let status = http_types::StatusCode::try_from(reply.status)
        .unwrap_or(http_types::StatusCode::InternalServerError);
    let mut res = http_types::Response::new(status);
    for (name, value) in &reply.headers {
        res.append_header(*name, value.as_str());
    }
    let (reader, len): (Box<dyn AsyncBufRead + Unpin + Send + Sync>, u64) = match reply.body {
        Body::Empty => (
            Box::new(futures_lite::io::empty()),
            reply.head_len.unwrap_or(0),
        ),
        Body::Bytes(b) => {
            let n = b.len() as u64;
            (Box::new(Cursor::new(b)), n)
        }
        Body::Stream(r, n) => (r, n),
    };
    let expected = if line.method == Method::Head { 0 } else { len };
    let logged = Logged {
        inner: reader,
        sent: 0,
        expected,
        line,
    };
    res.set_body(http_types::Body::from_reader(logged, Some(len as usize)));
    if let Some((_, ct)) = reply.headers.iter().find(|(n, _)| *n == "Content-Type") {
        res.insert_header("Content-Type", ct.as_str());
    }
    res
}

/// A client socket that counts the bytes read from it (to tell a slow request from an
/// idle connection when the header timeout fires) and gives up on a client that accepts no
/// bytes for `write_timeout`. `Clone` + `Send` + `Sync` as async-h1 needs; the
/// write timer belongs to one clone (async-h1 writes through one).
struct Client {
    inner: TcpStream,
    read: Arc<AtomicU64>,
    write_timeout: Duration,
    /// Armed while a write is pending.
    stalled: Option<Timer>,
}

impl Client {
    fn new(inner: TcpStream, write_timeout: Duration) -> Client {
        Client {
            inner,
            read: Arc::new(AtomicU64::new(0)),
            write_timeout,
            stalled: None,
        }
    }
}

impl Clone for Client {
    fn clone(&self) -> Client {
        Client {
            inner: self.inner.clone(),
            read: self.read.clone(),
            write_timeout: self.write_timeout,
            stalled: None,
        }
    }
}

impl AsyncRead for Client {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(n)) = poll {
            self.read.fetch_add(n as u64, Ordering::Relaxed);
        }
        poll
    }
}

impl AsyncWrite for Client {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_write(cx, buf) {
            Poll::Ready(r) => {
                this.stalled = None;
                Poll::Ready(r)
            }
            Poll::Pending => {
                let timer = this
                    .stalled
                    .get_or_insert_with(|| Timer::after(this.write_timeout));
                match Pin::new(timer).poll(cx) {
                    Poll::Ready(_) => Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "client accepted no data in time",
                    ))),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_close(cx)
    }
}

/// What the access log says about a request, filled in when its body is done.
struct AccessLine {
    peer: SocketAddr,
    method: Method,
    target: String,
    status: u16,
    outcome: Outcome,
    started: Instant,
}

/// A reply body that counts what it hands out and writes the access log line when dropped
/// — after the last byte went out, or when the client went away.
struct Logged {
    inner: Box<dyn AsyncBufRead + Unpin + Send + Sync>,
    sent: u64,
    expected: u64,
    line: AccessLine,
}

impl AsyncRead for Logged {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(n)) = poll {
            self.sent += n as u64;
        }
        poll
    }
}

impl AsyncBufRead for Logged {
    fn poll_fill_buf(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<&[u8]>> {
        Pin::new(&mut self.get_mut().inner).poll_fill_buf(cx)
    }

    fn consume(mut self: Pin<&mut Self>, amt: usize) {
        self.sent += amt as u64;
        Pin::new(&mut self.inner).consume(amt);
    }
}

impl Drop for Logged {
    fn drop(&mut self) {
        let l = &self.line;
        metrics::BYTES_SENT.add(self.sent);
        let cut = if self.sent < self.expected {
            " INCOMPLETE"
        } else {
            ""
        };
        log::info!(
            target: "regmirror::access",
            "{} {} {} {} {} {}ms {}{cut}",
            l.peer.ip(),
            l.method,
            l.target,
            l.status,
            self.sent,
            l.started.elapsed().as_millis(),
            l.outcome,
        );
    }
}
