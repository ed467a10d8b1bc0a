//! A fill in progress as its readers see it: the [`Fill`] every request for a cold digest
//! shares, its [`Phase`], and the [`FillProgress`] a reader follows the temp file with.
//! The writing side is the [`Permit`](super::permit::Permit) (`permit.rs`).
//!
//! The server's reply writer asks a `FillProgress` how far it may `sendfile` and sleeps on
//! the fill's event when it has caught up (no polling). How far is
//! [`Checked::readable`]: every written byte but the last until the digest is verified. A
//! fill that starts over (a digest mismatch after a resume) writes a new inode and bumps
//! its generation: readers of the old bytes get an error, not a mix.
//!
//! Shared state is `Rc` + `RefCell` on the executor thread; no borrow is held across an
//! `.await`.

use super::checked::Checked;
use super::relay::Relay;
use crate::error::{Error, UpstreamError};
use crate::http::Progress;
use crate::reference::{Digest, Repository, UpstreamName};
use event_listener::{Event, EventListener};
use std::cell::{Ref, RefCell};
use std::fmt;
use std::fs::File;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll};

/// Why a fill ended without a blob. Cloned to every waiting reader.
#[derive(Debug, Clone)]
pub enum FillFailure {
    /// Upstream has no such blob in the repository the fill asked through. A reader who
    /// asked through another repository retries with its own.
    NotFound {
        /// The upstream asked.
        upstream: UpstreamName,
        /// The repository asked through.
        repo: Repository,
    },
    /// The upstream refused, failed, or sent wrong bytes.
    Upstream(UpstreamError),
    /// Our disk failed (I/O error).
    Local(String),
    /// The permit was dropped before the fill finished (its task ended): readers who have
    /// not been sent a byte yet look up again.
    Abandoned,
}

impl FillFailure {
    /// Whether the bytes fetched so far are worth keeping for a resume.
    pub(super) fn keeps_partial(&self) -> bool {
        match self {
            FillFailure::NotFound { .. } | FillFailure::Local(_) => false,
            FillFailure::Upstream(UpstreamError::BadContent(_) | UpstreamError::NotFound) => false,
            FillFailure::Upstream(_) | FillFailure::Abandoned => true,
        }
    }
}

impl From<FillFailure> for Error {
    fn from(f: FillFailure) -> Error {
        match f {
            FillFailure::NotFound { .. } | FillFailure::Upstream(UpstreamError::NotFound) => {
                Error::BlobUnknown
            }
            FillFailure::Upstream(u) => Error::Upstream(u),
            FillFailure::Local(m) => Error::Internal(io::Error::other(m)),
            FillFailure::Abandoned => Error::Internal(io::Error::other("fill abandoned")),
        }
    }
}

/// Where a fill stands.
#[derive(Debug, Clone)]
pub enum Phase {
    /// Waiting for upstream's answer, the budget, or a resumed partial to be re-hashed.
    Connecting,
    /// Bytes are arriving in the temp file: follow it with [`Fill::follow`].
    Writing {
        /// The blob's full length; `None` for an upstream answer without one (chunked).
        total: Option<u64>,
        /// The temp file.
        file: Arc<File>,
    },
    /// Finished, verified and committed.
    Committed {
        /// The blob's full length.
        total: u64,
        /// The committed blob (the temp file's inode, renamed).
        file: Arc<File>,
    },
    /// Every byte went through the temp file and was verified, but the disk had no room to
    /// keep it: readers following it finish; nobody new can start on it.
    Streamed {
        /// The blob's full length.
        total: u64,
    },
    /// Will not be cached (no room): readers share one upstream stream through a relay.
    Pass(Rc<Relay>),
    /// Ended without a blob.
    Failed(FillFailure),
}

impl Phase {
    /// Whether the fill is over for its readers (nothing more will be written).
    pub fn is_final(&self) -> bool {
        !matches!(self, Phase::Connecting | Phase::Writing { .. })
    }
}

#[derive(Debug)]
pub(super) struct State {
    pub(super) phase: Phase,
    /// The bytes written so far, hashed: how far readers may go.
    pub(super) checked: Checked,
    /// Bumped when the fill starts over in a new file: readers of an older generation
    /// are cut (they were sent bytes that are no longer the file's).
    pub(super) generation: u32,
    /// Where each reader stands (by id), so a fill short of disk knows which bytes nobody
    /// needs any more.
    readers: Vec<(u64, u64)>,
    next_reader: u64,
    /// Requests waiting in [`Fill::wait`]: they may still start reading from byte 0.
    waiting: u32,
    /// Bytes before this were punched out of the file (a draining fill): nobody may
    /// start reading any more.
    pub(super) floor: u64,
}

/// A fill in progress, shared by its permit and every reader of the digest.
pub struct Fill {
    digest: Digest,
    /// When the fill started (for its duration and rate).
    started: std::time::Instant,
    pub(super) state: RefCell<State>,
    /// Notified whenever the phase or the readable limit changes.
    changed: Event,
    /// Notified when a reader advances or leaves (a fill short of disk waits on it).
    pub(super) moved: Event,
}

impl fmt::Debug for Fill {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fill({}, {:?})", self.digest, self.state.borrow())
    }
}

impl Fill {
    pub(super) fn new(digest: Digest) -> Fill {
        Fill {
            digest,
            started: std::time::Instant::now(),
            state: RefCell::new(State {
                phase: Phase::Connecting,
                checked: Checked::new(digest),
                generation: 0,
                readers: Vec::new(),
                next_reader: 0,
                waiting: 0,
                floor: 0,
            }),
            changed: Event::new(),
            moved: Event::new(),
        }
    }

    pub(super) fn state(&self) -> Ref<'_, State> {
        self.state.borrow()
    }

    /// Changes the state and wakes everyone waiting on it.
    pub(super) fn update<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        let out = f(&mut self.state.borrow_mut());
        self.changed.notify(usize::MAX);
        out
    }

    /// The blob being filled.
    pub fn digest(&self) -> Digest {
        self.digest
    }

    /// The current phase.
    pub fn phase(&self) -> Phase {
        self.state().phase.clone()
    }

    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.state().checked.len()
    }

    /// When the fill started.
    pub fn started(&self) -> std::time::Instant {
        self.started
    }

    /// The blob's length, once upstream said.
    pub fn total(&self) -> Option<u64> {
        match &self.state().phase {
            Phase::Writing { total, .. } => *total,
            Phase::Committed { total, .. } | Phase::Streamed { total } => Some(*total),
            Phase::Pass(relay) => relay.total(),
            Phase::Connecting | Phase::Failed(_) => None,
        }
    }

    /// Requests reading the fill or waiting to.
    pub fn followers(&self) -> usize {
        let s = self.state();
        s.readers.len() + s.waiting as usize
    }

    /// Waits until `ready` accepts the phase (checked at once, then after every change),
    /// and returns it.
    pub async fn wait(&self, ready: impl Fn(&Phase) -> bool) -> Phase {
        /// Counts a request as waiting while it waits, however the wait ends.
        struct Waiting<'a>(&'a Fill);
        impl Drop for Waiting<'_> {
            fn drop(&mut self) {
                self.0.state.borrow_mut().waiting -= 1;
                self.0.moved.notify(usize::MAX);
            }
        }
        self.state.borrow_mut().waiting += 1;
        let _waiting = Waiting(self);
        loop {
            let listener = self.changed.listen();
            let phase = self.phase();
            if ready(&phase) {
                return phase;
            }
            listener.await;
        }
    }

    /// A reader of the temp file from byte 0 in its current generation — `None` once
    /// bytes were punched out of it (a draining fill: look up again).
    pub fn follow(self: &Rc<Self>) -> Option<FillProgress> {
        let (id, generation) = {
            let mut s = self.state.borrow_mut();
            if s.floor > 0 {
                return None;
            }
            let id = s.next_reader;
            s.next_reader += 1;
            s.readers.push((id, 0));
            (id, s.generation)
        };
        self.moved.notify(usize::MAX);
        Some(FillProgress {
            fill: self.clone(),
            id,
            generation,
            listener: None,
        })
    }

    /// The lowest position of any reader; `None` without readers, or while a request
    /// waiting on the fill may still start from byte 0.
    pub(super) fn slowest_reader(&self) -> Option<u64> {
        let s = self.state();
        if s.waiting > 0 {
            return Some(0);
        }
        s.readers.iter().map(|r| r.1).min()
    }

    /// Whether anyone reads or may still read the fill.
    pub(super) fn has_audience(&self) -> bool {
        let s = self.state();
        s.waiting > 0 || !s.readers.is_empty()
    }
}

/// How far a reader may go in the file a fill is writing: the server's reply writer asks
/// it before each `sendfile` (see [`Progress`]), and sleeps on the fill's event when it
/// has caught up (no polling).
pub struct FillProgress {
    fill: Rc<Fill>,
    id: u64,
    generation: u32,
    listener: Option<EventListener>,
}

impl fmt::Debug for FillProgress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FillProgress({}, reader {})", self.fill.digest, self.id)
    }
}

impl Progress for FillProgress {
    fn poll_readable(&mut self, pos: u64, cx: &mut Context<'_>) -> Poll<io::Result<u64>> {
        loop {
            {
                let mut state = self.fill.state.borrow_mut();
                if state.generation != self.generation {
                    return Poll::Ready(Err(io::Error::other(
                        "the fill started over after bytes were sent",
                    )));
                }
                if let Phase::Failed(f) = &state.phase {
                    return Poll::Ready(Err(io::Error::other(format!("fill failed: {f:?}"))));
                }
                if let Some(r) = state.readers.iter_mut().find(|r| r.0 == self.id) {
                    if r.1 != pos {
                        r.1 = pos;
                        self.fill.moved.notify(usize::MAX);
                    }
                }
                let readable = state.checked.readable();
                if readable > pos {
                    return Poll::Ready(Ok(readable));
                }
                if state.checked.is_verified() {
                    return Poll::Ready(Ok(pos)); // the end: nothing follows a verdict
                }
            }
            match &mut self.listener {
                // Register first, then look again: a notification between the check above
                // and `listen` would otherwise be lost.
                None => self.listener = Some(self.fill.changed.listen()),
                Some(l) => match Pin::new(l).poll(cx) {
                    Poll::Ready(()) => self.listener = None,
                    Poll::Pending => return Poll::Pending,
                },
            }
        }
    }
}

impl Drop for FillProgress {
    fn drop(&mut self) {
        self.fill
            .state
            .borrow_mut()
            .readers
            .retain(|r| r.0 != self.id);
        self.fill.moved.notify(usize::MAX);
    }
}
