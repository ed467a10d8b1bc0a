//! A client connection's socket: gives up on a client that accepts no bytes for the write
//! timeout, and sends file ranges with `sendfile(2)`. Reads are plain (the request reader
//! in `connection.rs` bounds them in time and size).

use futures_lite::{AsyncRead, AsyncWrite, FutureExt};
use smol::{Async, Timer};
use std::fs::File;
use std::future::Future;
use std::io;
use std::net::{Shutdown, TcpStream};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

/// Most bytes one `sendfile` call may move before the connection yields to the others: a
/// cached blob to a fast client must not monopolise the one thread.
const SENDFILE_CHUNK: usize = 1 << 20;

/// A client socket and its write timer.
pub struct Conn {
    inner: Async<TcpStream>,
    write_timeout: Duration,
    /// Armed while a write is pending.
    stalled: Option<Timer>,
}

impl Conn {
    /// Wraps an accepted socket.
    pub fn new(inner: Async<TcpStream>, write_timeout: Duration) -> Conn {
        Conn {
            inner,
            write_timeout,
            stalled: None,
        }
    }

    /// Resolves when bytes (or the end of the stream) can be read.
    pub async fn readable(&self) -> io::Result<()> {
        self.inner.readable().await
    }

    /// Sends our FIN: the client sees the end of the reply while we still drain its
    /// unread bytes (closing with unread bytes would send a reset that can destroy the
    /// reply in the client's receive buffer).
    pub fn shutdown_write(&self) -> io::Result<()> {
        self.inner.get_ref().shutdown(Shutdown::Write)
    }

    /// Sends `len` bytes of `file` starting at `offset`, kernel to socket without a copy
    /// through our memory. Fails if the client accepts nothing for the write timeout.
    pub async fn send_file(&mut self, file: &File, mut offset: u64, len: u64) -> io::Result<()> {
        let end = offset.checked_add(len).ok_or(io::ErrorKind::InvalidInput)?;
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

impl AsyncRead for Conn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Conn {
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
                let timeout = this.write_timeout;
                let timer = this.stalled.get_or_insert_with(|| Timer::after(timeout));
                match Pin::new(timer).poll(cx) {
                    Poll::Ready(_) => Poll::Ready(Err(stalled())),
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
