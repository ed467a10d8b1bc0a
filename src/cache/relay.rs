//! A blob that cannot be kept (larger than the budget, no room), shared by every reader
//! waiting for it through one bounded window in memory: one upstream GET for N clients.
//!
//! A pump (in `mirror/`) pushes the upstream bytes in; each [`RelayReader`] is an
//! `AsyncRead` over the window from its own position. The window holds at most
//! [`RELAY_WINDOW`] bytes: bytes every reader has read are dropped; while a reader lags
//! the pump waits — unless another reader has caught up and is starving, in which case the
//! oldest bytes are dropped anyway and the laggard, finding its position gone, continues
//! from there on a ranged request of its own. So a slow client never slows the others and
//! is never cut: it costs one extra (ranged) upstream GET instead, which is what a cut
//! client's retry would cost too, and it keeps its progress. Cutting it would make it start
//! over from byte 0.
//!
//! As for fills, the last byte is held back until the digest is checked ([`Checked`]).
//! A reader on its own ranged stream gets upstream's bytes as they come (its client checks
//! the digest, as for any range).

use super::checked::Checked;
use crate::reference::Digest;
use event_listener::{Event, EventListener};
use futures_lite::AsyncRead;
use std::cell::RefCell;
use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

/// Bytes of one uncached blob held in memory for its readers: enough for readers a few
/// socket buffers apart to share the stream, small beside a Pi Zero's 512 MB even with
/// several pass-throughs at once.
pub const RELAY_WINDOW: usize = 2 << 20;

/// Opens a reader's own upstream stream from a position (when it fell out of the window).
pub type Reopen = Box<dyn FnOnce(u64) -> OwnStream>;

/// A reader's own stream, being opened.
pub type OwnStream = Pin<Box<dyn Future<Output = io::Result<Box<dyn AsyncRead + Unpin>>>>>;

/// What the pump may do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Room {
    /// Push up to this many bytes.
    Push(usize),
    /// Wait for a reader to move ([`Relay::listen_moved`]).
    Wait,
    /// Every reader has left, or none came: stop (and [`Relay::fail`] it, so that nobody
    /// joins a stream that is not read any more).
    Deserted,
}

#[derive(Debug)]
struct State {
    /// Bytes `[base, base + ring.len())` of the blob.
    ring: VecDeque<u8>,
    base: u64,
    /// Every byte pushed, hashed: `checked.len() == base + ring.len()`.
    checked: Checked,
    total: Option<u64>,
    /// `Some(Ok)`: all bytes are in and verified; `Some(Err)`: the stream failed.
    end: Option<Result<(), String>>,
    /// (id, position) of each reader reading from the window.
    readers: Vec<(u64, u64)>,
    next_id: u64,
    attached: bool,
}

/// See the module docs.
pub struct Relay {
    digest: Digest,
    state: RefCell<State>,
    /// Bytes arrived, or the stream ended.
    changed: Event,
    /// A reader advanced, arrived or left.
    moved: Event,
}

impl fmt::Debug for Relay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.state.borrow();
        write!(
            f,
            "Relay({}, [{}, {}), {} readers)",
            self.digest,
            s.base,
            s.checked.len(),
            s.readers.len()
        )
    }
}

impl Relay {
    /// An empty relay for `digest` of `total` bytes (if known).
    pub fn new(digest: Digest, total: Option<u64>) -> Rc<Relay> {
        Rc::new(Relay {
            digest,
            state: RefCell::new(State {
                ring: VecDeque::new(),
                base: 0,
                checked: Checked::new(digest),
                total,
                end: None,
                readers: Vec::new(),
                next_id: 0,
                attached: false,
            }),
            changed: Event::new(),
            moved: Event::new(),
        })
    }

    /// The blob's length, if upstream said.
    pub fn total(&self) -> Option<u64> {
        self.state.borrow().total
    }

    /// A reader from byte 0 — `None` if the window has moved past it (or the stream
    /// failed): then the caller needs a stream of its own. `reopen` opens one from a
    /// position, should this reader fall behind later.
    pub fn attach(self: &Rc<Self>, reopen: Reopen) -> Option<RelayReader> {
        let id = {
            let mut s = self.state.borrow_mut();
            if s.base > 0 || matches!(s.end, Some(Err(_))) {
                return None;
            }
            let id = s.next_id;
            s.next_id += 1;
            s.readers.push((id, 0));
            s.attached = true;
            id
        };
        self.moved.notify(usize::MAX);
        Some(RelayReader {
            relay: self.clone(),
            id,
            pos: 0,
            listener: None,
            reopen: Some(reopen),
            own: Own::None,
        })
    }

    /// Bytes pushed so far: where the upstream stream continues.
    pub fn len(&self) -> u64 {
        self.state.borrow().checked.len()
    }

    /// Whether nothing was pushed yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Makes room for up to `want` bytes by dropping what no reader needs — or, when a
    /// reader is starving at the head, what laggards still need (they reopen).
    pub fn room(&self, want: usize) -> Room {
        let mut s = self.state.borrow_mut();
        // Everyone left — or nobody came while a whole window arrived (the request that
        // led wanted a range of its own): reading on would be for nobody.
        if s.readers.is_empty() && (s.attached || s.ring.len() == RELAY_WINDOW) {
            return Room::Deserted;
        }
        let free = RELAY_WINDOW - s.ring.len();
        if free >= want {
            return Room::Push(want);
        }
        let short = want - free;
        let slowest = s.readers.iter().map(|r| r.1).min().unwrap_or(s.base);
        let read_by_all = (slowest.saturating_sub(s.base) as usize).min(s.ring.len());
        let readable = s.checked.readable();
        let starving = s.readers.iter().any(|r| r.1 >= readable);
        let drop = if read_by_all >= short || !starving {
            read_by_all
        } else {
            short
        };
        s.ring.drain(..drop);
        s.base += drop as u64;
        let free = RELAY_WINDOW - s.ring.len();
        if free == 0 {
            Room::Wait
        } else {
            Room::Push(free.min(want))
        }
    }

    /// Appends the blob's next bytes (at most what [`Relay::room`] allowed).
    pub fn push(&self, bytes: &[u8]) {
        {
            let mut s = self.state.borrow_mut();
            debug_assert!(s.ring.len() + bytes.len() <= RELAY_WINDOW);
            s.ring.extend(bytes);
            s.checked.update(bytes);
        }
        self.changed.notify(usize::MAX);
    }

    /// The stream ended cleanly: checks length and digest; readers get the last byte only
    /// if both are right.
    pub fn finish(&self) -> Result<(), String> {
        let result = {
            let mut s = self.state.borrow_mut();
            let len = s.checked.len();
            let result = match s.total {
                Some(t) if t != len => Err(format!("upstream sent {len} of {t} bytes")),
                _ => s
                    .checked
                    .verify()
                    .map_err(|m| format!("{len} bytes hash to {}, not {}", m.got, self.digest)),
            };
            s.end = Some(result.clone());
            result
        };
        self.changed.notify(usize::MAX);
        result
    }

    /// The stream failed: readers still in the window get an error.
    pub fn fail(&self, why: String) {
        self.state.borrow_mut().end = Some(Err(why));
        self.changed.notify(usize::MAX);
    }

    /// Notified when a reader advances, arrives or leaves: take it *before* asking for
    /// [`Relay::room`], then await it.
    pub fn listen_moved(&self) -> EventListener {
        self.moved.listen()
    }
}

enum Own {
    None,
    Opening(OwnStream),
    Open(Box<dyn AsyncRead + Unpin>),
}

/// One client's view of a [`Relay`]: reads the window from its position, or its own
/// ranged stream once it fell out of the window.
pub struct RelayReader {
    relay: Rc<Relay>,
    id: u64,
    pos: u64,
    listener: Option<EventListener>,
    reopen: Option<Reopen>,
    own: Own,
}

impl fmt::Debug for RelayReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RelayReader({:?} at {})", self.relay, self.pos)
    }
}

impl RelayReader {
    fn leave(&self) {
        self.relay
            .state
            .borrow_mut()
            .readers
            .retain(|r| r.0 != self.id);
        self.relay.moved.notify(usize::MAX);
    }
}

impl AsyncRead for RelayReader {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        loop {
            match &mut this.own {
                Own::Open(stream) => return Pin::new(stream).poll_read(cx, buf),
                Own::Opening(fut) => match fut.as_mut().poll(cx) {
                    Poll::Ready(Ok(stream)) => {
                        this.own = Own::Open(stream);
                        continue;
                    }
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                    Poll::Pending => return Poll::Pending,
                },
                Own::None => {}
            }
            {
                let mut s = this.relay.state.borrow_mut();
                if this.pos < s.base {
                    drop(s);
                    this.leave();
                    let Some(reopen) = this.reopen.take() else {
                        return Poll::Ready(Err(io::Error::other("fell behind twice")));
                    };
                    log::info!(
                        "{}: a reader fell {} bytes behind the shared stream; it continues on its own",
                        this.relay.digest,
                        RELAY_WINDOW
                    );
                    this.own = Own::Opening(reopen(this.pos));
                    continue;
                }
                let readable = s.checked.readable();
                if this.pos < readable {
                    let at = (this.pos - s.base) as usize;
                    let n = (readable - this.pos).min(buf.len() as u64) as usize;
                    let (a, b) = s.ring.as_slices();
                    copy_out(a, b, at, &mut buf[..n]);
                    this.pos += n as u64;
                    let (id, pos) = (this.id, this.pos);
                    if let Some(r) = s.readers.iter_mut().find(|r| r.0 == id) {
                        r.1 = pos;
                    }
                    drop(s);
                    this.relay.moved.notify(usize::MAX);
                    return Poll::Ready(Ok(n));
                }
                match &s.end {
                    Some(Ok(())) => return Poll::Ready(Ok(0)),
                    Some(Err(e)) => return Poll::Ready(Err(io::Error::other(e.clone()))),
                    None => {}
                }
            }
            match &mut this.listener {
                None => this.listener = Some(this.relay.changed.listen()),
                Some(l) => match Pin::new(l).poll(cx) {
                    Poll::Ready(()) => this.listener = None,
                    Poll::Pending => return Poll::Pending,
                },
            }
        }
    }
}

impl Drop for RelayReader {
    fn drop(&mut self) {
        self.leave();
    }
}

/// Copies `out.len()` bytes starting at `at` of the concatenation `a ++ b`.
fn copy_out(a: &[u8], b: &[u8], at: usize, out: &mut [u8]) {
    let n = out.len();
    if at >= a.len() {
        let at = at - a.len();
        out.copy_from_slice(&b[at..at + n]);
    } else {
        let first = (a.len() - at).min(n);
        out[..first].copy_from_slice(&a[at..at + first]);
        out[first..].copy_from_slice(&b[..n - first]);
    }
}

#[cfg(test)]
mod tests;
