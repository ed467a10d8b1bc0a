//! The HTTP server: listening socket, accept loop with a connection limit, the header
//! timeout, request parsing (async-h1's decoder — the only place the serving side names
//! async-h1 or http-types), and the access log line once a reply is out.
//!
//! `conn.rs` is the client socket (read counter, write timeout, `sendfile`); `reply.rs`
//! writes replies. Requests are parsed by async-h1, which enforces an 8 KiB head
//! (`MAX_HEAD_BYTES`); replies are written by us (see `reply.rs` for why).

mod conn;
mod reply;

use crate::cache::Cache;
use crate::config::Config;
use crate::error::Error;
use crate::http::{Method, Reply, Request};
use crate::metrics::Metrics;
use crate::mirror::Mirror;
use crate::routes;
use crate::upstream::Upstreams;
use conn::Conn;
use futures_lite::FutureExt;
use smol::lock::Semaphore;
use smol::{Async, LocalExecutor, Timer};
use std::net::{SocketAddr, TcpListener};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Largest request head, enforced by async-h1's decoder itself (`MAX_HEAD_LENGTH`, against
/// CVE-2018-12121-style memory exhaustion); named here because its error becomes our 431.
pub const MAX_HEAD_BYTES: usize = 8 * 1024;

/// First byte of a TLS record carrying a handshake (a ClientHello).
const TLS_HANDSHAKE: u8 = 0x16;

/// Pause after a failed `accept` (e.g. out of file descriptors) so the loop doesn't spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

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

/// The bound socket.
pub type Listener = Async<TcpListener>;

/// Opens the cache, builds the upstream clients and binds the socket: every start-up
/// failure surfaces here, as one clear sentence.
pub fn start(
    config: &Config,
    executor: Rc<LocalExecutor<'static>>,
) -> Result<(Listener, Rc<Mirror>), String> {
    let dir = config.cache_dir.display();
    let metrics = Rc::new(Metrics::new());
    let cache = Cache::open(&config.cache_dir, config.max_size, metrics.clone())
        .map_err(|e| format!("cache directory {dir} is not usable: {e}"))?;
    let upstreams = Upstreams::new(config, metrics.clone())?;
    let listener = Async::<TcpListener>::bind(config.listen)
        .map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
    let stats = cache.stats();
    log::info!(
        "regmirror {} listening on {}; cache {dir}: {} blobs, {} of {} bytes budget",
        env!("CARGO_PKG_VERSION"),
        listener
            .get_ref()
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
    let mirror = Mirror::new(cache, upstreams, config.tag_ttl, executor, metrics);
    Ok((listener, Rc::new(mirror)))
}

/// Accepts connections forever, at most `max_connections` at once (the rest wait in the
/// kernel's backlog).
pub async fn serve(
    listener: Listener,
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
        let _ = stream.get_ref().set_nodelay(true);
        let mirror = mirror.clone();
        executor
            .spawn(async move {
                connection(
                    Conn::new(stream, limits.write_timeout),
                    peer,
                    mirror,
                    limits,
                )
                .await;
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
                let _ = tx.send(listener.get_ref().local_addr().map_err(|e| e.to_string()));
                let limits = Limits::from(&config);
                smol::block_on(executor.run(serve(listener, mirror, limits, executor.clone())));
            }
            Err(e) => {
                let _ = tx.send(Err(e));
            }
        }
    });
    rx.recv().map_err(|e| e.to_string())?
}

/// Serves one connection: requests in sequence (keep-alive) until the client closes, a
/// header timeout, a request we cannot read, or a reply cut short.
async fn connection(mut conn: Conn, peer: SocketAddr, mirror: Rc<Mirror>, limits: Limits) {
    // skopeo, podman and cri-o try https first on an `insecure` mirror and fall back to
    // http when that fails: fail it at once rather than wait out the header timeout.
    let first = conn.peek_byte().or(async {
        Timer::after(limits.header_timeout).await;
        Ok(None) // nothing sent in time: an idle connection, closed silently
    });
    match first.await {
        Ok(Some(TLS_HANDSHAKE)) => {
            let e = Error::Malformed("TLS handshake on a plain-HTTP port".into());
            return refuse(&mut conn, peer, e).await;
        }
        Ok(Some(_)) => {}
        Ok(None) | Err(_) => return,
    }
    loop {
        let read_before = conn.bytes_read();
        let timeout = async {
            Timer::after(limits.header_timeout).await;
            Err(None)
        };
        let decoded = async { async_h1::server::decode(conn.clone()).await.map_err(Some) }
            .or(timeout)
            .await;
        let req = match decoded {
            Ok(Some((req, _unread_body))) => req,
            Ok(None) => return, // the client closed the connection
            // Timed out: answer a client that sent part of a request; an idle connection
            // (keep-alive, or a spare one Go clients open) just closes.
            Err(None) => {
                if conn.bytes_read() > read_before {
                    refuse(&mut conn, peer, Error::HeaderTimeout).await;
                }
                return;
            }
            Err(Some(e)) => {
                let msg = e.to_string();
                let err = if msg.contains("Head byte length") {
                    Error::HeadersTooLarge
                } else {
                    Error::Malformed(msg)
                };
                refuse(&mut conn, peer, err).await;
                return;
            }
        };
        let started = Instant::now();
        // We never read request bodies (pull-only): after one, the connection can't be reused.
        let close = wants_close(&req) || has_body(&req);
        let ours = translate(&req);
        drop(req);
        let reply = routes::handle(&mirror, &ours).await;
        let (status, outcome) = (reply.status, reply.outcome);
        let head = ours.method == Method::Head;
        let (sent, result) = reply::send(&mut conn, reply, head, close).await;
        let target = match &ours.query {
            Some(q) => format!("{}?{q}", ours.path),
            None => ours.path.clone(),
        };
        mirror.metrics.sent_bytes.add(sent);
        let cut = match &result {
            Ok(()) => String::new(),
            Err(e) => format!(" INCOMPLETE ({e})"),
        };
        log::info!(
            target: "regmirror::access",
            "{} {} {target} {status} {sent} {}ms {outcome}{cut}",
            peer.ip(),
            ours.method,
            started.elapsed().as_millis(),
        );
        if result.is_err() || close {
            return;
        }
    }
}

/// Answers a request async-h1 could not parse (or that never finished), then closes.
async fn refuse(conn: &mut Conn, peer: SocketAddr, e: Error) {
    log::info!(target: "regmirror::access", "{} - - {} 0 0ms - ({e})", peer.ip(), e.status().code());
    let reply: Reply = routes::error_reply(e, crate::error::Subject::Other);
    let _ = reply::send(conn, reply, false, true).await;
}

fn wants_close(req: &http_types::Request) -> bool {
    req.header("Connection")
        .is_some_and(|v| v.iter().any(|x| x.as_str().eq_ignore_ascii_case("close")))
}

fn has_body(req: &http_types::Request) -> bool {
    let length = req
        .header("Content-Length")
        .map(|v| v.last().as_str().trim() != "0");
    length.unwrap_or(false) || req.header("Transfer-Encoding").is_some()
}

/// async-h1's request → ours.
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
