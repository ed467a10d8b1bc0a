//! A connection's input: the one head buffer ([`Input`], [`MAX_HEAD_BYTES`], allocated
//! only while a head is read or pipelined bytes wait), reads bounded by a deadline and by
//! the server closing ([`bounded`]), and the client bytes we drop: a refused request's body
//! ([`discard`]) and what still arrives while we linger before closing ([`linger`]).

use crate::http::MAX_HEAD_BYTES;
use crate::server::conn::Conn;
use crate::server::slots::Closing;
use futures_lite::{future, AsyncReadExt};
use smol::Timer;
use std::future::Future;
use std::io;
use std::time::{Duration, Instant};

/// After refusing a request whose bytes we did not all read, how long we go on reading
/// (and dropping) them after our FIN, so that the close does not reset the connection
/// before the client has read our answer.
const LINGER: Duration = Duration::from_secs(1);

/// At most this many bytes are read (and dropped) while lingering.
const LINGER_BYTES: usize = 64 * 1024;

/// The bytes a client has sent that are not consumed yet: one buffer of
/// [`MAX_HEAD_BYTES`], empty (and unallocated) between requests.
pub(super) struct Input {
    buf: Vec<u8>,
    pub(super) filled: usize,
}

impl Input {
    pub(super) fn new() -> Input {
        Input {
            buf: Vec::new(),
            filled: 0,
        }
    }

    pub(super) fn data(&self) -> &[u8] {
        &self.buf[..self.filled]
    }

    pub(super) fn is_empty(&self) -> bool {
        self.filled == 0
    }

    /// Drops the first `n` bytes; frees the buffer when nothing is left.
    pub(super) fn consume(&mut self, n: usize) {
        let n = n.min(self.filled);
        self.buf.copy_within(n..self.filled, 0);
        self.filled -= n;
        if self.filled == 0 {
            self.buf = Vec::new();
        }
    }

    /// Reads what the socket has, into the free end of the buffer; 0 at the end of the
    /// stream (or when full, which the head parser has refused before).
    pub(super) async fn fill(&mut self, conn: &mut Conn) -> io::Result<usize> {
        if self.buf.is_empty() {
            self.buf = vec![0; MAX_HEAD_BYTES];
        }
        let n = conn.read(&mut self.buf[self.filled..]).await?;
        self.filled += n;
        Ok(n)
    }
}

/// Why a bounded wait ended early.
pub(super) enum Cut {
    TimedOut,
    Closing,
    Io,
}

/// Runs `f` until it finishes, `deadline` passes, or the connection is told to close.
pub(super) async fn bounded<T>(
    f: impl Future<Output = io::Result<T>>,
    deadline: Instant,
    closing: &Closing,
) -> Result<T, Cut> {
    let f = async { f.await.map_err(|_| Cut::Io) };
    let timer = async {
        Timer::at(deadline).await;
        Err(Cut::TimedOut)
    };
    let closed = async {
        closing.wait().await;
        Err(Cut::Closing)
    };
    future::or(f, future::or(timer, closed)).await
}

/// Reads and drops `n` body bytes: first those already buffered, then from the socket.
pub(super) async fn discard(
    conn: &mut Conn,
    input: &mut Input,
    mut n: u64,
    deadline: Instant,
    closing: &Closing,
) -> Result<(), Cut> {
    loop {
        let have = (input.filled as u64).min(n);
        input.consume(have as usize);
        n -= have;
        if n == 0 {
            return Ok(());
        }
        if bounded(input.fill(conn), deadline, closing).await? == 0 {
            return Err(Cut::Io);
        }
    }
}

/// Sends our FIN, then reads and drops what the client still sends, for at most
/// [`LINGER`] and [`LINGER_BYTES`], so the close resets nothing the client has not read.
pub(super) async fn linger(conn: &mut Conn, input: &mut Input) {
    if conn.shutdown_write().is_err() {
        return;
    }
    let deadline = Instant::now() + LINGER;
    let never = Closing::default();
    let mut dropped = 0;
    while dropped < LINGER_BYTES {
        input.consume(input.filled);
        match bounded(input.fill(conn), deadline, &never).await {
            Ok(n) if n > 0 => dropped += n,
            _ => return,
        }
    }
}
