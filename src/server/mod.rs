//! The HTTP server (start-up is `app.rs`): the listening socket type, the accept loop with its
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

use crate::config::Config;
use smol::Async;
use std::net::TcpListener;
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
