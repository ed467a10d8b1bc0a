//! One upstream fetch per cold blob, however many clients ask: the in-flight [`Fill`], the
//! fill task that writes it, and the [`FillProgress`] its readers follow the file by.
//!
//! The first request for an uncached digest creates a `Fill` and spawns [`run`] as a task of
//! its own — not tied to that client's connection, so the client leaving does not cancel
//! it. The task GETs upstream, reserves the size in the index (evicting first), and writes
//! `tmp/<name>` while hashing. Every request for the digest, the first included, is sent
//! the temp file by `sendfile` as far as [`FillProgress`] allows, sleeping on the fill's
//! [`Event`] when it has caught up (no polling). At the end the task checks length and
//! digest, `fsync`s, renames into `blobs/`, and wakes everyone. A dropped upstream
//! connection is resumed with `Range`.
//!
//! Shared state is behind a `Mutex` although everything runs on one thread: it is never
//! contended and never held across an `.await`.
//!
//! File I/O here is plain blocking `pread`/`pwrite` of at most [`FILL_BUF`] bytes on the
//! executor thread: on a page-cached local file that is microseconds, cheaper than handing
//! each chunk to a thread pool (which the design card rules out anyway).

use super::Cache;
use crate::error::{Error, UpstreamError};
use crate::http::Progress;
use crate::reference::{Digest, Repository};
use crate::upstream::Registry;
use event_listener::{Event, EventListener};
use futures_lite::AsyncReadExt;
use sha2::{Digest as _, Sha256};
use std::fs::File;
use std::future::Future;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

/// Bytes moved per upstream read / disk write, and per reader `pread`. A few tens of KiB
/// per connection keeps 32 parallel clients far under the Pi Zero's memory.
pub const FILL_BUF: usize = 64 * 1024;

/// Times a fill resumes with `Range` after the upstream connection drops, before giving up.
pub const MAX_RESUMES: u32 = 3;

/// Why a fill ended without a blob. Cloned to every waiting reader.
#[derive(Debug, Clone)]
pub enum FillFailure {
    /// The upstream refused, failed, or sent wrong bytes.
    Upstream(UpstreamError),
    /// Our disk failed (ENOSPC, I/O error).
    Local(String),
}

impl From<FillFailure> for Error {
    fn from(f: FillFailure) -> Error {
        match f {
            FillFailure::Upstream(UpstreamError::NotFound) => Error::BlobUnknown,
            FillFailure::Upstream(u) => Error::Upstream(u),
            FillFailure::Local(m) => Error::Internal(io::Error::other(m)),
        }
    }
}

/// Where a fill stands.
#[derive(Debug, Clone)]
pub enum Phase {
    /// Waiting for upstream's response headers.
    Connecting,
    /// Bytes are arriving in the temp file (or, once `committed`, all are in the blob).
    Writing {
        /// The blob's full length.
        total: u64,
        /// The temp file, later the committed blob (same inode after the rename).
        file: Arc<File>,
    },
    /// Finished and verified.
    Committed {
        /// The blob's full length.
        total: u64,
        /// The committed blob.
        file: Arc<File>,
    },
    /// Ended without a blob.
    Failed(FillFailure),
    /// Will not be cached (no room, no length): each client streams from upstream itself.
    Pass,
}

#[derive(Debug)]
struct State {
    phase: Phase,
    /// Bytes written and hashed so far: readers may read `[0, written)`.
    written: u64,
}

/// A fill in progress, shared by the fill task and every reader of the digest.
#[derive(Debug)]
pub struct Fill {
    state: Mutex<State>,
    /// Notified whenever `state` changes.
    changed: Event,
}

impl Fill {
    pub(super) fn new() -> Fill {
        Fill {
            state: Mutex::new(State {
                phase: Phase::Connecting,
                written: 0,
            }),
            changed: Event::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Poisoning needs a panic while locked; with panic=abort there is none to recover.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn set(&self, f: impl FnOnce(&mut State)) {
        f(&mut self.lock());
        self.changed.notify(usize::MAX);
    }

    fn is_finished(&self) -> bool {
        matches!(
            self.lock().phase,
            Phase::Committed { .. } | Phase::Failed(_) | Phase::Pass
        )
    }

    /// Waits until the fill is past `Connecting`, and returns its phase.
    pub async fn ready(&self) -> Phase {
        loop {
            let listener = self.changed.listen();
            let phase = self.lock().phase.clone();
            if !matches!(phase, Phase::Connecting) {
                return phase;
            }
            listener.await;
        }
    }
}

/// How far a reader may go in the file a fill is writing: the server's reply writer asks
/// it before each `sendfile` (see [`Progress`]), and sleeps on the fill's [`Event`] when it
/// has caught up (no polling).
#[derive(Debug)]
pub struct FillProgress {
    fill: Arc<Fill>,
    listener: Option<EventListener>,
}

impl FillProgress {
    /// Follows `fill`.
    pub fn new(fill: Arc<Fill>) -> FillProgress {
        FillProgress {
            fill,
            listener: None,
        }
    }
}

impl Progress for FillProgress {
    fn poll_readable(&mut self, pos: u64, cx: &mut Context<'_>) -> Poll<io::Result<u64>> {
        loop {
            {
                let state = self.fill.lock();
                if let Phase::Failed(f) = &state.phase {
                    return Poll::Ready(Err(io::Error::other(format!(
                        "upstream fill failed: {f:?}"
                    ))));
                }
                if state.written > pos {
                    return Poll::Ready(Ok(state.written));
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

/// Marks the fill failed if the task ends without finishing it (dropped executor, early
/// return), so readers never wait on a fill nobody writes.
struct Finisher {
    cache: Rc<Cache>,
    digest: Digest,
    fill: Arc<Fill>,
    reserved: u64,
    temp: Option<PathBuf>,
}

impl Finisher {
    fn fail(&mut self, f: FillFailure) {
        match &f {
            // The client asked for something upstream doesn't have: its 404 says enough.
            FillFailure::Upstream(UpstreamError::NotFound) => {
                log::debug!("fill {}: not found upstream", self.digest)
            }
            _ => log::warn!("fill {} failed: {f:?}", self.digest),
        }
        self.fill.set(|s| s.phase = Phase::Failed(f));
    }
}

impl Drop for Finisher {
    fn drop(&mut self) {
        if !self.fill.is_finished() {
            self.fail(FillFailure::Local("fill abandoned".into()));
        }
        if let Some(temp) = self.temp.take() {
            let _ = std::fs::remove_file(temp);
        }
        self.cache.index.borrow_mut().release(self.reserved);
        self.cache.end_fill(&self.digest);
    }
}

/// The fill task: fetch `digest` from `registry` into the cache, feeding `fill`'s readers.
pub async fn run(
    cache: Rc<Cache>,
    registry: Rc<Registry>,
    repo: Repository,
    digest: Digest,
    fill: Arc<Fill>,
) {
    let mut fin = Finisher {
        cache,
        digest,
        fill,
        reserved: 0,
        temp: None,
    };
    if let Err(f) = fetch(&mut fin, &registry, &repo).await {
        fin.fail(f);
    }
}

async fn fetch(
    fin: &mut Finisher,
    registry: &Registry,
    repo: &Repository,
) -> Result<(), FillFailure> {
    let digest = fin.digest;
    let mut stream = registry
        .blob(repo, &digest, 0)
        .await
        .map_err(FillFailure::Upstream)?;
    let Some(total) = stream.total.filter(|_| stream.offset == 0) else {
        fin.fill.set(|s| s.phase = Phase::Pass);
        return Ok(());
    };
    let Some(evict) = fin.cache.admit(total) else {
        log::info!("{digest} ({total} bytes) does not fit the budget: streaming it uncached");
        fin.fill.set(|s| s.phase = Phase::Pass);
        return Ok(());
    };
    fin.reserved = total;
    fin.cache.evict(&evict);
    let local = |e: io::Error| FillFailure::Local(e.to_string());
    let (path, file) = fin.cache.store.new_temp().map_err(local)?;
    fin.temp = Some(path.clone());
    let file = Arc::new(file);
    fin.fill.set(|s| {
        s.phase = Phase::Writing {
            total,
            file: file.clone(),
        }
    });

    let mut buf = vec![0u8; FILL_BUF];
    let mut hasher = Sha256::new();
    let mut written = 0u64;
    let mut skip = 0u64;
    let mut resumes = 0;
    while written < total {
        let read = match stream.body.read(&mut buf).await {
            Ok(0) => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "upstream closed early",
            )),
            other => other,
        };
        let n = match read {
            Ok(n) => n,
            Err(e) => {
                resumes += 1;
                if resumes > MAX_RESUMES {
                    let msg = format!("connection lost {resumes} times, last: {e}");
                    return Err(FillFailure::Upstream(UpstreamError::Unavailable(msg)));
                }
                log::warn!(
                    "fill {digest}: upstream read failed at {written}/{total} ({e}); resuming"
                );
                stream = registry
                    .blob(repo, &digest, written)
                    .await
                    .map_err(FillFailure::Upstream)?;
                skip = match stream.offset {
                    o if o == written => 0,
                    0 => written, // upstream ignored Range: discard what we have
                    o => return Err(bad(format!("resume asked for {written}, got {o}"))),
                };
                if stream.total.is_some_and(|t| t != total) {
                    return Err(bad("blob length changed during resume".into()));
                }
                continue;
            }
        };
        let mut chunk = &buf[..n];
        let skipped = skip.min(n as u64) as usize;
        skip -= skipped as u64;
        chunk = &chunk[skipped..];
        if written + chunk.len() as u64 > total {
            return Err(bad(format!("more bytes than the announced {total}")));
        }
        if let Err(e) = file.write_all_at(chunk, written) {
            if e.kind() == io::ErrorKind::StorageFull {
                fin.cache.index.borrow_mut().shrink_to_fit();
            }
            return Err(local(e));
        }
        hasher.update(chunk);
        written += chunk.len() as u64;
        fin.fill.set(|s| s.written = written);
    }
    if Digest::from_sha256(hasher.finalize().into()) != digest {
        return Err(bad("content does not match its digest".into()));
    }
    file.sync_all().map_err(local)?;
    fin.cache.store.commit(&path, &digest).map_err(local)?;
    fin.temp = None;
    fin.cache.committed(digest, total);
    fin.fill.set(|s| s.phase = Phase::Committed { total, file });
    Ok(())
}

fn bad(msg: String) -> FillFailure {
    FillFailure::Upstream(UpstreamError::BadContent(msg))
}
