//! The HTTP server: listening socket and start-up (`start`), the accept loop with its
//! connection slots and the shutdown (`accept.rs`, `slots.rs`), one connection's requests
//! (`connection.rs`: our own head reader on `httparse`, see `http::parse_head`),
//! the client socket (`conn.rs`: write timeout, `sendfile`), writing replies (`reply.rs`),
//! and the signals that stop it (`signals.rs`).
//!
//! Neither async-h1 nor http-types serves clients: their decoder panicked on obs-text
//! header values, lost pipelined requests, buffered a head without a newline before its
//! limit, and started async-global-executor's threads for `Expect: 100-continue`.

mod accept;
mod conn;
mod connection;
mod reply;
pub mod signals;
mod slots;

pub use accept::{serve, SHUTDOWN_GRACE};
pub use connection::{MAX_DISCARDED_BODY, MAX_LOGGED_TARGET};
pub use slots::per_address_limit;

use crate::cache::Cache;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::mirror::Mirror;
use crate::upstream::Upstreams;
use smol::{Async, LocalExecutor};
use std::net::{SocketAddr, TcpListener};
use std::rc::Rc;
use std::time::Duration;

/// Largest request head (see [`crate::http::MAX_HEAD_BYTES`]); over it is 431.
pub use crate::http::MAX_HEAD_BYTES;

/// Per-connection limits from the config.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Connections served at once (see `slots.rs` for who is closed when they are all
    /// taken, and [`per_address_limit`] for one address's share).
    pub max_connections: usize,
    /// Time a client gets to send a request head from its first byte, and the longest a
    /// connection may sit idle between requests.
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
                let forever = std::future::pending();
                smol::block_on(executor.run(serve(
                    listener,
                    mirror,
                    limits,
                    executor.clone(),
                    forever,
                )));
            }
            Err(e) => {
                let _ = tx.send(Err(e));
            }
        }
    });
    rx.recv().map_err(|e| e.to_string())?
}
