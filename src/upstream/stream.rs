//! The byte streams under and over the HTTP code: a plain-or-TLS connection ([`Conn`]),
//! the idle-timeout wrapper ([`Idle`]), and the reader callers get for a body
//! ([`BodyReader`]: counts blob bytes, reports to the upstream's health).

use super::health::Health;
use super::wire::{Body, Response};
use crate::error::UpstreamError;
use crate::metrics::Metrics;
use futures_lite::{io, AsyncRead, AsyncReadExt, AsyncWrite};
use smol::net::TcpStream;
use smol::Timer;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

/// Reads a whole response body of at most `limit` bytes (`BadContent` beyond it). A body
/// cut short or silent is `Unavailable`, malformed framing `Protocol`; the messages name
/// the host.
pub(crate) async fn read_limited(res: Response, limit: usize) -> Result<Vec<u8>, UpstreamError> {
    let host = super::wire::host_of(&res.url);
    let too_big =
        || UpstreamError::BadContent(format!("{host}: response body over the {limit}-byte limit"));
    if res.body.len().is_some_and(|n| n > limit as u64) {
        return Err(too_big());
    }
    let mut buf = Vec::new();
    res.body
        .take(limit as u64 + 1)
        .read_to_end(&mut buf)
        .await
        .map_err(|e| match e.kind() {
            io::ErrorKind::InvalidData => UpstreamError::Protocol(e.to_string()),
            _ => UpstreamError::Unavailable(format!("reading the body: {e}")),
        })?;
    if buf.len() > limit {
        return Err(too_big());
    }
    Ok(buf)
}

/// A blob body as callers read it: counts its bytes into the mirror's `upstream_bytes`,
/// per upstream too (the one place blob bytes from upstream are counted) and a read error into
/// `upstream_failures`, and tells the upstream's
/// [`Health`] how it went — its first bytes or a clean end are a success, its first read
/// error a failure (except `InvalidData`: a malformed body is not an outage), so that a
/// stalled or resetting upstream opens the breaker although its heads arrive. A body that
/// flowed and then stalled reports both, in that order.
pub(crate) struct BodyReader {
    inner: Body,
    metrics: Rc<Metrics>,
    health: Rc<Health>,
    /// The success was reported.
    flowed: bool,
    /// The failure was reported; later reads report nothing more.
    failed: bool,
}

impl BodyReader {
    pub(crate) fn new(inner: Body, metrics: Rc<Metrics>, health: Rc<Health>) -> BodyReader {
        BodyReader {
            inner,
            metrics,
            health,
            flowed: false,
            failed: false,
        }
    }
}

impl AsyncRead for BodyReader {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        match &polled {
            Poll::Ready(Ok(n)) => {
                this.metrics.count_fetched(this.health.name(), *n as u64);
                if !this.flowed && !this.failed && (*n > 0 || !buf.is_empty()) {
                    this.flowed = true;
                    this.health.success();
                }
            }
            Poll::Ready(Err(e)) if !this.failed => {
                this.failed = true;
                this.metrics.upstream_failures.inc();
                if e.kind() != io::ErrorKind::InvalidData {
                    this.health.failure(&format!("reading a blob body: {e}"));
                }
            }
            _ => {}
        }
        polled
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
/// (so a frozen upstream cannot hang a fill).
pub(crate) struct Idle<S> {
    inner: S,
    limit: Duration,
    timer: Timer,
    /// The timer runs for the operation now pending; re-armed after any progress.
    armed: bool,
}

impl<S> Idle<S> {
    pub(crate) fn new(inner: S, limit: Duration) -> Idle<S> {
        Idle {
            inner,
            limit,
            timer: Timer::never(),
            armed: false,
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
}

impl<S: AsyncRead + Unpin> AsyncRead for Idle<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.inner).poll_read(cx, buf);
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
