//! The byte streams under and over async-h1: a plain-or-TLS connection ([`Conn`]), the
//! idle-timeout wrapper that also keeps response heads ASCII ([`Idle`]), and the body
//! reader that notices a response cut short ([`BodyReader`]).

use crate::error::UpstreamError;
use crate::metrics::Metrics;
use futures_lite::{io, AsyncRead, AsyncReadExt, AsyncWrite};
use http_types::{Body, Response};
use smol::net::TcpStream;
use smol::Timer;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

/// Reads a whole response body of at most `limit` bytes (`BadContent` beyond it).
pub(crate) async fn read_limited(
    res: &mut Response,
    limit: usize,
) -> Result<Vec<u8>, UpstreamError> {
    let too_big =
        || UpstreamError::BadContent(format!("response body over the {limit}-byte limit"));
    if res.len().is_some_and(|n| n > limit) {
        return Err(too_big());
    }
    let mut buf = Vec::new();
    BodyReader::new(res.take_body(), None)
        .take(limit as u64 + 1)
        .read_to_end(&mut buf)
        .await
        .map_err(|e| UpstreamError::Unavailable(format!("reading the response body: {e}")))?;
    if buf.len() > limit {
        return Err(too_big());
    }
    Ok(buf)
}

/// A response body that fails with `UnexpectedEof` when the connection ends before
/// `Content-Length` bytes (async-h1 would report a clean end), and optionally counts the
/// bytes into the mirror's `upstream_bytes` (the one place blob bytes from upstream are
/// counted). Read errors (reset, idle timeout) pass through as they are.
pub(crate) struct BodyReader {
    inner: Body,
    /// Bytes still promised by `Content-Length`; `None` for chunked bodies.
    remaining: Option<u64>,
    count: Option<Rc<Metrics>>,
}

impl BodyReader {
    pub(crate) fn new(inner: Body, count: Option<Rc<Metrics>>) -> BodyReader {
        let remaining = inner.len().map(|n| n as u64);
        BodyReader {
            inner,
            remaining,
            count,
        }
    }
}

impl AsyncRead for BodyReader {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let n = match Pin::new(&mut self.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(n)) => n,
            other => return other,
        };
        match self.remaining {
            Some(left) if n == 0 && left > 0 && !buf.is_empty() => {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!(
                        "upstream closed the connection {left} bytes before the end of the body"
                    ),
                )));
            }
            Some(left) => self.remaining = Some(left.saturating_sub(n as u64)),
            None => {}
        }
        if let Some(m) = &self.count {
            m.upstream_bytes.add(n as u64);
        }
        Poll::Ready(Ok(n))
    }
}

/// A plain or TLS connection.
pub(crate) enum Conn {
    Plain(TcpStream),
    Tls(Box<futures_rustls::client::TlsStream<TcpStream>>),
}

macro_rules! conn_dispatch {
    ($self:ident, $s:ident => $e:expr) => {
        match $self.get_mut() {
            Conn::Plain($s) => {
                let $s = Pin::new($s);
                $e
            }
            Conn::Tls($s) => {
                let $s = Pin::new(&mut **$s);
                $e
            }
        }
    };
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        conn_dispatch!(self, s => s.poll_read(cx, buf))
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        conn_dispatch!(self, s => s.poll_write(cx, buf))
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        conn_dispatch!(self, s => s.poll_flush(cx))
    }
    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        conn_dispatch!(self, s => s.poll_close(cx))
    }
}

/// A stream that fails with `TimedOut` when a read or write makes no progress for `limit`
/// (so a frozen upstream cannot hang a fill), and that keeps the response head ASCII.
///
/// The head rewrite exists because async-h1 *panics* on a header value that is valid
/// UTF-8 but not ASCII (http-types unwraps the conversion); upstream bytes must never be
/// able to crash the process. Bytes ≥ 0x80 before the end of the head become `?`.
pub(crate) struct Idle<S> {
    inner: S,
    limit: Duration,
    timer: Timer,
    /// The timer runs for the operation now pending; re-armed after any progress.
    armed: bool,
    /// The end of the response head (blank line) has gone by: pass bytes through.
    head_done: bool,
    /// The last four bytes of the head seen so far, to find its end across reads.
    tail: u32,
}

impl<S> Idle<S> {
    pub(crate) fn new(inner: S, limit: Duration) -> Idle<S> {
        Idle {
            inner,
            limit,
            timer: Timer::never(),
            armed: false,
            head_done: false,
            tail: 0,
        }
    }

    fn progress<T>(
        &mut self,
        cx: &mut Context<'_>,
        poll: Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        if poll.is_ready() {
            self.armed = false;
            return poll;
        }
        if !self.armed {
            self.timer.set_after(self.limit);
            self.armed = true;
        }
        match Pin::new(&mut self.timer).poll(cx) {
            Poll::Ready(_) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("upstream sent nothing for {:?}", self.limit),
            ))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn sanitize_head(&mut self, bytes: &mut [u8]) {
        for b in bytes.iter_mut() {
            if self.head_done {
                return;
            }
            self.tail = (self.tail << 8) | u32::from(*b);
            if !b.is_ascii() {
                *b = b'?';
            }
            self.head_done = self.tail == 0x0d0a_0d0a || self.tail & 0xffff == 0x0a0a;
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Idle<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(n)) = poll {
            this.sanitize_head(&mut buf[..n]);
        }
        this.progress(cx, poll)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Idle<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.progress(cx, poll)
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.inner).poll_flush(cx);
        this.progress(cx, poll)
    }
    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.inner).poll_close(cx);
        this.progress(cx, poll)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_bytes_are_made_ascii_but_the_body_is_untouched() {
        let mut idle = Idle::new((), Duration::from_secs(1));
        let mut first = b"HTTP/1.1 200 OK\r\nx-name: caf\xc3\xa9\r\n".to_vec();
        idle.sanitize_head(&mut first);
        assert_eq!(first, b"HTTP/1.1 200 OK\r\nx-name: caf??\r\n");
        let mut second = b"\r\n\xc3\xa9body".to_vec();
        idle.sanitize_head(&mut second);
        assert_eq!(second, b"\r\n\xc3\xa9body");
    }
}
