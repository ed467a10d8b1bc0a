//! A client connection's socket, plain TCP or TLS (see `tls.rs` for which): gives up on a
//! client that accepts no bytes for the write timeout, and sends file ranges with
//! `sendfile(2)` — or, through TLS, by reading them into one [`TLS_COPY_BUF`] buffer. Reads
//! are plain (the request reader in `connection.rs` bounds them in time and size).

use super::tls::{TLS_COPY_BUF, TLS_SEND_BUFFER};
use futures_lite::{AsyncRead, AsyncWrite, AsyncWriteExt, FutureExt};
use futures_rustls::server::TlsStream;
use futures_rustls::TlsAcceptor;
use smol::{Async, Timer};
use std::fs::File;
use std::future::Future;
use std::io;
use std::net::{Shutdown, TcpStream};
use std::os::unix::fs::FileExt;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

/// Most bytes one `sendfile` call may move before the connection yields to the others: a
/// cached blob to a fast client must not monopolise the one thread.
const SENDFILE_CHUNK: usize = 1 << 20;

/// The socket under a connection.
enum Socket {
    Plain(Async<TcpStream>),
    /// Boxed: rustls's connection state is large, and most connections are plain.
    Tls(Box<TlsStream<Async<TcpStream>>>),
}

impl Socket {
    fn tcp(&self) -> &Async<TcpStream> {
        match self {
            Socket::Plain(s) => s,
            Socket::Tls(t) => t.get_ref().0,
        }
    }
}

/// A client socket and its write timer.
pub struct Conn {
    inner: Socket,
    write_timeout: Duration,
    /// Armed while a write is pending.
    stalled: Option<Timer>,
}

impl Conn {
    /// Wraps an accepted socket.
    pub fn new(inner: Async<TcpStream>, write_timeout: Duration) -> Conn {
        Conn {
            inner: Socket::Plain(inner),
            write_timeout,
            stalled: None,
        }
    }

    /// Whether this connection is TLS.
    pub fn is_tls(&self) -> bool {
        matches!(self.inner, Socket::Tls(_))
    }

    /// The first byte the client sent, without consuming it; `None` at the end of the
    /// stream. (Before TLS: the byte that tells TLS from plain HTTP.)
    pub async fn peek_byte(&self) -> io::Result<Option<u8>> {
        let mut b = [0u8; 1];
        let n = self.inner.tcp().peek(&mut b).await?;
        Ok((n == 1).then_some(b[0]))
    }

    /// Runs the TLS handshake on a plain connection (the caller bounds it in time).
    pub async fn into_tls(self, acceptor: &TlsAcceptor) -> io::Result<Conn> {
        let Socket::Plain(tcp) = self.inner else {
            return Ok(self);
        };
        let tls = acceptor
            .accept_with(tcp, |c| c.set_buffer_limit(Some(TLS_SEND_BUFFER)))
            .await?;
        Ok(Conn {
            inner: Socket::Tls(Box::new(tls)),
            write_timeout: self.write_timeout,
            stalled: None,
        })
    }

    /// Resolves when bytes (or the end of the stream) can be read — at once when rustls
    /// holds decrypted bytes not read yet (or the peer's close_notify), which the socket
    /// would not announce.
    pub async fn readable(&self) -> io::Result<()> {
        if let Socket::Tls(t) = &self.inner {
            if !t.get_ref().1.wants_read() {
                return Ok(());
            }
        }
        self.inner.tcp().readable().await
    }

    /// Sends our FIN: the client sees the end of the reply while we still drain its
    /// unread bytes (closing with unread bytes would send a reset that can destroy the
    /// reply in the client's receive buffer). TLS too: replies are framed by length, so
    /// no close_notify is needed to mark their end.
    pub fn shutdown_write(&self) -> io::Result<()> {
        self.inner.tcp().get_ref().shutdown(Shutdown::Write)
    }

    /// Writes raw bytes on a plain socket before anything else was sent (a TLS alert); one
    /// write to a fresh socket's empty buffer never blocks.
    pub fn send_raw(&self, bytes: &[u8]) -> io::Result<()> {
        use std::io::Write;
        self.inner.tcp().get_ref().write_all(bytes)
    }

    /// Sends `len` bytes of `file` starting at `offset`, kernel to socket without a copy
    /// through our memory (through TLS: via one [`TLS_COPY_BUF`] buffer). Fails if the
    /// client accepts nothing for the write timeout.
    pub async fn send_file(&mut self, file: &File, offset: u64, len: u64) -> io::Result<()> {
        match self.inner {
            Socket::Plain(_) => self.sendfile(file, offset, len).await,
            Socket::Tls(_) => self.copy_file(file, offset, len).await,
        }
    }

    async fn copy_file(&mut self, file: &File, mut offset: u64, len: u64) -> io::Result<()> {
        let end = offset.checked_add(len).ok_or(io::ErrorKind::InvalidInput)?;
        let mut buf = vec![0u8; TLS_COPY_BUF];
        while offset < end {
            let want = (end - offset).min(TLS_COPY_BUF as u64) as usize;
            let n = file.read_at(&mut buf[..want], offset)?;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "file shorter than expected",
                ));
            }
            self.write_all(&buf[..n]).await?;
            offset += n as u64;
        }
        Ok(())
    }

    async fn sendfile(&mut self, file: &File, mut offset: u64, len: u64) -> io::Result<()> {
        let end = offset.checked_add(len).ok_or(io::ErrorKind::InvalidInput)?;
        while offset < end {
            let count = (end - offset).min(SENDFILE_CHUNK as u64) as usize;
            match rustix::fs::sendfile(self.inner.tcp().get_ref(), file, Some(&mut offset), count) {
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
            .tcp()
            .writable()
            .or(async move {
                Timer::after(timeout).await;
                Err(stalled())
            })
            .await
    }
}

impl Conn {
    /// A write or flush that is ready ends the stall; one still pending starts the write
    /// timeout (or goes on with the one running), and fails when it fires.
    fn within_write_timeout<T>(
        &mut self,
        poll: Poll<io::Result<T>>,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<T>> {
        match poll {
            Poll::Ready(r) => {
                self.stalled = None;
                Poll::Ready(r)
            }
            Poll::Pending => {
                let timeout = self.write_timeout;
                let timer = self.stalled.get_or_insert_with(|| Timer::after(timeout));
                match Pin::new(timer).poll(cx) {
                    Poll::Ready(_) => Poll::Ready(Err(stalled())),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
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
        match &mut self.inner {
            Socket::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Socket::Tls(t) => Pin::new(t.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let written = match &mut this.inner {
            Socket::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Socket::Tls(t) => Pin::new(t.as_mut()).poll_write(cx, buf),
        };
        this.within_write_timeout(written, cx)
    }

    /// A TLS flush may wait for the client to take queued records: the write timeout
    /// applies to it as to a write.
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let flushed = match &mut this.inner {
            Socket::Plain(s) => return Pin::new(s).poll_flush(cx),
            Socket::Tls(t) => Pin::new(t.as_mut()).poll_flush(cx),
        };
        this.within_write_timeout(flushed, cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.inner {
            Socket::Plain(s) => Pin::new(s).poll_close(cx),
            Socket::Tls(t) => Pin::new(t.as_mut()).poll_close(cx),
        }
    }
}
