//! A client connection's socket: counts the bytes read from it (to tell a slow request
//! from an idle connection when the header timeout fires), gives up on a client that
//! accepts no bytes for the write timeout, and sends file ranges with `sendfile(2)`.

use futures_lite::{AsyncRead, AsyncWrite, FutureExt};
use smol::{Async, Timer};
use std::fs::File;
use std::future::Future;
use std::io;
use std::net::TcpStream;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

/// Most bytes one `sendfile` call may move before the connection yields to the others: a
/// cached blob to a fast client must not monopolise the one thread.
const SENDFILE_CHUNK: usize = 1 << 20;

/// A client socket. `Clone` + `Send` + `Sync` as async-h1's request decoder needs; the
/// write timer belongs to the clone that writes.
pub struct Conn {
    inner: Arc<Async<TcpStream>>,
    read: Arc<AtomicU64>,
    write_timeout: Duration,
    /// Armed while a write is pending.
    stalled: Option<Timer>,
}

impl Conn {
    /// Wraps an accepted socket.
    pub fn new(inner: Async<TcpStream>, write_timeout: Duration) -> Conn {
        Conn {
            inner: Arc::new(inner),
            read: Arc::new(AtomicU64::new(0)),
            write_timeout,
            stalled: None,
        }
    }

    /// The first byte the client will send, without consuming it; `None` if it closed.
    pub async fn peek_byte(&self) -> io::Result<Option<u8>> {
        let mut b = [0u8; 1];
        let n = self.inner.peek(&mut b).await?;
        Ok((n == 1).then_some(b[0]))
    }

    /// Bytes read from the client so far.
    pub fn bytes_read(&self) -> u64 {
        self.read.load(Ordering::Relaxed)
    }

    /// Sends `len` bytes of `file` starting at `offset`, kernel to socket without a copy
    /// through our memory. Fails if the client accepts nothing for the write timeout.
    pub async fn send_file(&mut self, file: &File, mut offset: u64, len: u64) -> io::Result<()> {
        let end = offset + len;
        while offset < end {
            let count = (end - offset).min(SENDFILE_CHUNK as u64) as usize;
            match rustix::fs::sendfile(self.inner.get_ref(), file, Some(&mut offset), count) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "file shorter than expected",
                    ))
                }
                Ok(_) => futures_lite::future::yield_now().await,
                Err(rustix::io::Errno::AGAIN) => self.writable().await?,
                Err(rustix::io::Errno::INTR) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    async fn writable(&self) -> io::Result<()> {
        let timeout = self.write_timeout;
        self.inner
            .writable()
            .or(async move {
                Timer::after(timeout).await;
                Err(stalled())
            })
            .await
    }
}

fn stalled() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "client accepted no data in time")
}

impl Clone for Conn {
    fn clone(&self) -> Conn {
        Conn {
            inner: self.inner.clone(),
            read: self.read.clone(),
            write_timeout: self.write_timeout,
            stalled: None,
        }
    }
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut &*self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(n)) = poll {
            self.read.fetch_add(n as u64, Ordering::Relaxed);
        }
        poll
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        match Pin::new(&mut &*this.inner).poll_write(cx, buf) {
            Poll::Ready(r) => {
                this.stalled = None;
                Poll::Ready(r)
            }
            Poll::Pending => {
                let timeout = this.write_timeout;
                let timer = this.stalled.get_or_insert_with(|| Timer::after(timeout));
                match Pin::new(timer).poll(cx) {
                    Poll::Ready(_) => Poll::Ready(Err(stalled())),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut &*self.inner).poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut &*self.inner).poll_close(cx)
    }
}
