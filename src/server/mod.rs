//! The HTTP server (start-up is `app.rs`): the listening socket type, the accept loop with its
//! connection slots and the shutdown (`accept.rs`, `slots.rs`), one connection's requests
//! (`connection.rs`: our own head reader on `httparse`, see `http::parse_head`),
//! the client socket (`conn.rs`: plain or TLS, write timeout, `sendfile`), TLS on the same
//! port (`tls.rs`: why one port, the first byte that decides), writing replies
//! (`reply.rs`), and the signals that stop it or reload its keep list and admin token
//! (`signals.rs`).
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
pub mod tls;

pub use accept::{serve, SHUTDOWN_GRACE};
pub use connection::{MAX_DISCARDED_BODY, MAX_LOGGED_TARGET};
pub use slots::per_address_limit;

use crate::config::Config;
use futures_rustls::TlsAcceptor;
use smol::Async;
use std::io;
use std::net::{SocketAddr, TcpListener};
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

/// The bound socket, and the TLS configuration its connections may use.
pub struct Listener {
    socket: Async<TcpListener>,
    tls: Option<TlsAcceptor>,
}

impl std::fmt::Debug for Listener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Listener")
            .field("addr", &self.local_addr().ok())
            .field("tls", &self.tls.is_some())
            .finish()
    }
}

impl Listener {
    /// Binds `addr`: plain HTTP only until [`Listener::with_tls`].
    pub fn bind(addr: SocketAddr) -> io::Result<Listener> {
        Ok(Listener {
            socket: Async::<TcpListener>::bind(addr)?,
            tls: None,
        })
    }

    /// Serves TLS too, on the same port (see `tls.rs`).
    pub fn with_tls(self, tls: Option<TlsAcceptor>) -> Listener {
        Listener { tls, ..self }
    }

    /// Whether TLS is served.
    pub fn tls(&self) -> bool {
        self.tls.is_some()
    }

    /// The bound address (port 0 resolved).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.get_ref().local_addr()
    }
}
