//! Fills as permits: the cache's side of "one upstream fetch per cold blob, however many
//! clients ask". pingora-cache's cache lock is the model.
//!
//! `Cache::lookup` answers `Hit`, `Follow` (an in-flight [`Fill`] to read behind) or
//! `Lead` (a [`Permit`] to fill). The permit is the only writer of its fill; whatever
//! happens to it — the fetch fails, the task is dropped, the executor goes away — its
//! `Drop` settles the fill (failed, unless it committed or passed), removes it from the
//! in-flight map and releases its reservation, so no reader can wait on a fill nobody
//! writes. *How* to fetch (upstream, resumes, retries, patience) is decided above the
//! cache, in `mirror/fill.rs`; the permit only knows files, bytes and the budget.
//!
//! File I/O is plain blocking `pwrite`/`pread` of one chunk on the executor thread: on a
//! page-cached local file that is microseconds, cheaper than handing each chunk to a
//! thread pool (which the design rules out anyway). The `fsync` at the commit is not
//! microseconds: it comes after the readers have been let send the last byte.
//!
//! How a permit ends — verify and commit, pass, fail, or `Drop` — is `permit/settle.rs`.

use super::fill::{Fill, Phase};
use super::index::{Index, Victim};
use super::store::{self, Origin, Store};
use crate::reference::Digest;
use event_listener::EventListener;
use std::cell::RefMut;
use std::fmt;
use std::fs::File;
use std::future::Future;
use std::io;
use std::os::unix::fs::FileExt;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;

mod settle;
pub use settle::Finish;

/// A failed fill keeps its partial file for a later resume (across a restart too) only if
/// it holds at least this much: below it, fetching again is cheaper than a second request.
pub const KEEP_PARTIAL_MIN: u64 = 1 << 20;

/// A fill of unknown length (chunked upstream answer) reserves budget in steps of this.
pub const UNKNOWN_LENGTH_STEP: u64 = 16 << 20;

/// Bytes of a partial file re-hashed per step on resume, between yields to the executor.
const REHASH_CHUNK: usize = 256 * 1024;

/// A write that could not be done.
#[derive(Debug)]
pub enum WriteError {
    /// The disk is full: see [`Permit::make_room`] and [`Permit::drain`].
    Full,
    /// The blob's length was unknown and the budget allows no more of it: see
    /// [`Permit::drain`].
    OverBudget,
    /// Any other I/O error.
    Io(io::Error),
}

/// The budget has no room for the blob: stream it uncached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NoRoom;

/// The right, and the duty, to fill one digest. See the module docs.
pub struct Permit {
    books: Rc<dyn Books>,
    fill: Rc<Fill>,
    /// Bytes of a kept partial file this fill took over (resume from there).
    partial: u64,
    /// The temp file, once [`Permit::begin`] made or opened it.
    file: Option<Arc<File>>,
    /// The blob's length, if known.
    total: Option<u64>,
    /// Budget reserved by this fill (includes the taken-over partial's bytes).
    reserved: u64,
    /// The disk could not hold the blob: it goes through the file and is not kept.
    draining: bool,
    /// The file became the blob.
    committed: bool,
}

impl fmt::Debug for Permit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Permit({}, partial {}, reserved {}, draining {})",
            self.fill.digest(),
            self.partial,
            self.reserved,
            self.draining
        )
    }
}

impl Permit {
    /// A permit for `fill`, registered in the cache's map by the caller. A partial file
    /// the index kept for this digest is taken over (and counted as reserved).
    fn new(books: Rc<dyn Books>, fill: Rc<Fill>) -> Permit {
        let partial = {
            let mut index = books.index();
            let partial = index.take_partial(&fill.digest()).unwrap_or(0);
            index.add_reserved(partial);
            partial
        };
        Permit {
            books,
            fill,
            partial,
            file: None,
            total: None,
            reserved: partial,
            draining: false,
            committed: false,
        }
    }

    /// The fill readers follow.
    pub fn fill(&self) -> Rc<Fill> {
        self.fill.clone()
    }

    /// The blob being filled.
    pub fn digest(&self) -> Digest {
        self.fill.digest()
    }

    /// Bytes of a partial file on disk to resume from (0: start from scratch).
    pub fn resume_from(&self) -> u64 {
        self.partial
    }

    /// Gives up the partial file (upstream ignored `Range`, or the blob's length changed):
    /// the fill starts from byte 0.
    pub fn discard_partial(&mut self) {
        if self.partial > 0 {
            self.books.store().remove_partial(&self.fill.digest());
            self.release(self.partial);
            self.partial = 0;
        }
    }

    /// Reserves the budget for `total` bytes (evicting first) once the index is complete,
    /// opens the temp file — the kept partial, or a new one recording `origin` — and lets
    /// readers follow it. [`NoRoom`]: the blob cannot be kept; stream it instead.
    pub async fn begin(
        &mut self,
        total: Option<u64>,
        origin: &Origin,
    ) -> io::Result<Result<(), NoRoom>> {
        self.books.index_ready().await;
        let want = match total {
            Some(t) => t.saturating_sub(self.partial),
            None => UNKNOWN_LENGTH_STEP,
        };
        let Some(admission) = self.books.index().reserve(want) else {
            self.discard_partial();
            return Ok(Err(NoRoom));
        };
        self.reserved += want;
        self.books.evict(&admission.evict);
        let file = match self.open_file(origin) {
            Err(e) if store::is_full(&e) => {
                // Not even room for the file (a disk full at start): evict, then try once
                // more; with nothing to evict, the blob cannot be kept.
                let victims = self.books.disk_full();
                self.books.evict(&victims);
                match self.open_file(origin) {
                    Err(e) if store::is_full(&e) => {
                        self.discard_partial();
                        self.release(self.reserved);
                        return Ok(Err(NoRoom));
                    }
                    other => other?,
                }
            }
            other => other?,
        };
        if let Some(t) = total {
            Store::preallocate(&file, t);
        }
        let file = Arc::new(file);
        self.file = Some(file.clone());
        self.total = total;
        self.fill.update(|s| {
            s.checked.reset();
            s.phase = Phase::Writing { total, file };
        });
        Ok(Ok(()))
    }

    /// The kept partial file to continue, or a new one recording `origin`.
    fn open_file(&mut self, origin: &Origin) -> io::Result<File> {
        let store = self.books.store();
        match store.open_partial(&self.fill.digest())? {
            Some((f, len)) if self.partial > 0 && len == self.partial => Ok(f),
            _ => {
                self.partial = 0;
                store.create_partial(&self.fill.digest(), origin)
            }
        }
    }

    /// Hashes the bytes of the taken-over partial file (rebuilding the hasher's state),
    /// publishing them to readers as it goes and yielding between chunks. Afterwards
    /// [`Permit::written`] is where the fetch resumes.
    pub async fn rehash(&mut self) -> io::Result<()> {
        let Some(file) = self.file.clone() else {
            return Ok(());
        };
        let mut buf = vec![0u8; REHASH_CHUNK];
        let mut pos = self.fill.written();
        while pos < self.partial {
            let want = (self.partial - pos).min(buf.len() as u64) as usize;
            let n = file.read_at(&mut buf[..want], pos)?;
            if n == 0 {
                break; // shorter than it said: resume from what is there
            }
            self.fill.update(|s| s.checked.update(&buf[..n]));
            pos += n as u64;
            futures_lite::future::yield_now().await;
        }
        Ok(())
    }

    /// Bytes written (and hashed) so far: where the upstream stream must continue.
    pub fn written(&self) -> u64 {
        self.fill.written()
    }

    /// Appends the blob's next bytes to the temp file and publishes them to readers.
    pub fn write(&mut self, bytes: &[u8]) -> Result<(), WriteError> {
        let Some(file) = &self.file else {
            return Err(WriteError::Io(io::Error::other("write before begin")));
        };
        let at = self.fill.written();
        let end = at + bytes.len() as u64;
        if self.total.is_some_and(|t| end > t) {
            return Err(WriteError::Io(io::Error::other(
                "more bytes than the announced length",
            )));
        }
        if self.total.is_none() && !self.draining && end > self.reserved {
            let grant = self.books.index().reserve(UNKNOWN_LENGTH_STEP);
            match grant {
                Some(a) => {
                    self.reserved += UNKNOWN_LENGTH_STEP;
                    self.books.evict(&a.evict);
                }
                None => return Err(WriteError::OverBudget),
            }
        }
        match file.write_all_at(bytes, at) {
            Ok(()) => {}
            Err(e) if store::is_full(&e) => return Err(WriteError::Full),
            Err(e) => return Err(WriteError::Io(e)),
        }
        self.fill.update(|s| s.checked.update(bytes));
        Ok(())
    }

    /// After [`WriteError::Full`]: tells the index what the disk really held and deletes
    /// what it then evicts. `true` if anything was deleted (write again); `false` if there
    /// is nothing left to evict (see [`Permit::drain`]).
    pub fn make_room(&mut self) -> bool {
        if self.draining {
            return false;
        }
        let victims: Vec<Victim> = self.books.disk_full();
        self.books.evict(&victims);
        !victims.is_empty()
    }

    /// The disk cannot hold this blob: keep feeding the readers already following it
    /// through the temp file, but give up keeping it. The fill leaves the in-flight map (a
    /// new request starts its own fetch, which will find no room and pass through), its
    /// reservation is released, and from now on a full disk is answered by freeing the
    /// bytes every reader has already read ([`Permit::free_read_bytes`]).
    pub fn drain(&mut self) {
        if self.draining {
            return;
        }
        log::warn!(
            "{}: the disk cannot hold it; streaming it to its readers uncached",
            self.fill.digest()
        );
        self.draining = true;
        self.books.end_fill(&self.fill);
        self.books.store().remove_partial(&self.fill.digest());
        self.release(self.reserved);
    }

    /// Whether [`Permit::drain`] was called.
    pub fn is_draining(&self) -> bool {
        self.draining
    }

    /// A draining fill on a full disk: punches out of the temp file the bytes every reader
    /// has read (they are sent; nobody else may start). `Ok(false)` if no byte can be freed
    /// now — wait for [`Permit::listen_moved`] — or no reader is left.
    pub fn free_read_bytes(&mut self) -> io::Result<bool> {
        let Some(file) = &self.file else {
            return Ok(false);
        };
        let Some(slowest) = self.fill.slowest_reader() else {
            return Ok(false);
        };
        /// Holes are punched in whole pages; a partial page stays allocated.
        const PAGE: u64 = 4096;
        let upto = slowest / PAGE * PAGE;
        if upto == 0 {
            return Ok(false);
        }
        let flags = rustix::fs::FallocateFlags::PUNCH_HOLE | rustix::fs::FallocateFlags::KEEP_SIZE;
        rustix::fs::fallocate(&**file, flags, 0, upto)?;
        self.fill.state.borrow_mut().floor = upto;
        Ok(true)
    }

    /// Whether any reader still follows the fill.
    pub fn has_readers(&self) -> bool {
        self.fill.has_audience()
    }

    /// Notified when a reader advances or leaves: take it *before* looking at the readers
    /// ([`Permit::free_read_bytes`]), then await it.
    pub fn listen_moved(&self) -> EventListener {
        self.fill.moved.listen()
    }

    /// Starts over from byte 0 in a fresh file (a digest mismatch): readers already sent
    /// bytes of the old one are cut; readers still waiting will read the new one.
    pub fn restart(&mut self, origin: &Origin) -> io::Result<()> {
        let file = Arc::new(
            self.books
                .store()
                .create_partial(&self.fill.digest(), origin)?,
        );
        if let Some(t) = self.total {
            Store::preallocate(&file, t);
        }
        self.partial = 0;
        self.file = Some(file.clone());
        let total = self.total;
        self.fill.update(|s| {
            s.generation += 1;
            s.checked.reset();
            s.phase = Phase::Writing { total, file };
        });
        Ok(())
    }

    fn release(&mut self, n: u64) {
        let n = n.min(self.reserved);
        self.reserved -= n;
        self.books.index().release(n);
    }
}

/// A fresh fill for `d` and its permit; the caller registers the fill in the map.
pub(super) fn lead(books: Rc<dyn Books>, d: Digest) -> (Rc<Fill>, Permit) {
    let fill = Rc::new(Fill::new(d));
    let permit = Permit::new(books, fill.clone());
    (fill, permit)
}

/// What a permit needs from the cache that issued it: its files, its budget, and its map
/// of fills in progress. `Cache` implements it; a trait so that this file, which `mod.rs`
/// builds on, does not in turn depend on `mod.rs`.
pub(super) trait Books {
    /// The files.
    fn store(&self) -> &Store;
    /// The budget, borrowed for one call (never across an `.await`).
    fn index(&self) -> RefMut<'_, Index>;
    /// Waits until the start-up scan is done (eviction needs the whole index).
    fn index_ready(&self) -> Pin<Box<dyn Future<Output = ()> + '_>>;
    /// Deletes what the index chose to evict.
    fn evict(&self, victims: &[Victim]);
    /// The disk is full: what to evict (see `Index::disk_full`).
    fn disk_full(&self) -> Vec<Victim>;
    /// A blob was committed.
    fn committed(&self, d: Digest, size: u64);
    /// Removes `fill` from the in-flight map, if it is still the one there.
    fn end_fill(&self, fill: &Rc<Fill>);
}
