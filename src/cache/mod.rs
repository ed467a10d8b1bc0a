//! The disk cache: [`Cache`] ties the store (files), the index (byte budget, recency), the
//! in-flight fills and the tag records together, behind methods.
//!
//! `store.rs` owns paths and crash-safe commits, `partial.rs` the partial blobs kept for a
//! resume, `index.rs` decides evictions (`index/evict.rs` which), `permit.rs` is the permit a fill writes through
//! (`books.rs`: what the cache does for it — eviction, commit, the end of a fill),
//! `fill.rs` the fill its readers follow, `checked.rs` the hash that decides how far they
//! may read, `relay.rs` the bounded window through which readers share a stream that
//! cannot be kept, `tags.rs` remembers tag → digest (and holds the cache's tag methods). How a blob is fetched is not the
//! cache's business (`mirror/fill.rs`); the cache never talks to an upstream.
//!
//! Start-up does not grow with the cache: [`Cache::open`] makes the directories and lists
//! `tmp/`; the index is rebuilt by [`Cache::rebuild_index`] (`rebuild.rs`), a task that
//! scans `blobs/` in batches and yields between them. Hits need no index (a blob is found by its path), so
//! they are answered at once; fills wait for the index only when they reserve budget.
//!
//! The `Cache` is shared as `Rc<Cache>` on the executor thread; its `RefCell`s are never
//! borrowed across an `.await`.

mod books;
pub mod checked;
pub mod fill;
pub mod index;
pub mod partial;
pub mod permit;
pub mod rebuild;
pub mod relay;
pub mod store;
pub mod tags;

use crate::metrics::Metrics;
use crate::reference::Digest;
use event_listener::Event;
use fill::Fill;
use index::Index;
use permit::Permit;
pub use rebuild::{let_io_in, SCAN_BATCH, SCAN_SLICE};
use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use store::{Partial, Small, Store};
use tags::Tags;

/// A partial blob older than this is deleted at start instead of resumed: a layer nobody
/// asked for in a week is unlikely to be wanted, and its upstream may have moved on.
pub const PARTIAL_MAX_AGE: Duration = Duration::from_secs(7 * 86400);

/// The cache: blobs on disk under a byte budget, fills in progress, tag records.
#[derive(Debug)]
pub struct Cache {
    store: Store,
    /// Byte accounting and recency; complete once the start-up scan has run.
    index: RefCell<Index>,
    /// Notified when the index becomes complete.
    indexed: Event,
    /// `--max-size`, or `None` to derive the budget from free space once indexed.
    max_size: Option<u64>,
    tags: Tags,
    /// Fills in progress, by digest: the coalescing point for cold blobs.
    fills: RefCell<HashMap<Digest, Rc<Fill>>>,
    /// Partial blobs found at start, for the mirror to check upstream.
    found_partials: RefCell<Vec<Partial>>,
    /// The mirror's counters (evictions).
    metrics: Rc<Metrics>,
    /// Bumped whenever what is derived from the cache's contents may change: see
    /// [`Changes`].
    changes: Cell<Changes>,
}

/// Counts of changes to the cache's contents, for whoever derives something from them
/// (the inventory) and wants to know whether to derive it again.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Changes {
    /// A blob (or manifest) was committed, evicted or found missing.
    pub blobs: u64,
    /// A tag record was added, removed, or now points elsewhere (a re-confirmation of the
    /// same digest does not count).
    pub tags: u64,
}

/// What [`Cache::lookup`] found for a digest.
#[derive(Debug)]
pub enum Lookup {
    /// Cached: the complete file and its size.
    Hit(Arc<File>, u64),
    /// Being filled: read behind it.
    Follow(Rc<Fill>),
    /// Neither: the caller holds the permit to fill it (and must run or drop it).
    Lead(Permit),
}

/// Numbers for `/_regmirror/status` and `/metrics`.
#[derive(Debug, Clone, Copy)]
pub struct CacheStats {
    /// Bytes of cached blobs and partial blobs.
    pub cached: u64,
    /// Bytes of partial blobs kept for a resume (part of `cached`).
    pub partial: u64,
    /// Bytes reserved by fills in progress.
    pub reserved: u64,
    /// Bytes of pinned blobs on disk (part of `cached`; never evicted).
    pub pinned: u64,
    /// The budget (provisional until the index is complete, when derived).
    pub max: u64,
    /// Cached blobs (so far, while the index is rebuilt).
    pub blobs: usize,
    /// Fills in progress.
    pub fills: usize,
    /// The start-up scan has finished.
    pub indexed: bool,
}

impl Cache {
    /// Opens the cache at `root`: makes its directories, keeps the partial blobs in `tmp/`
    /// that may be resumed (and deletes the rest). The index starts empty: spawn
    /// [`Cache::rebuild_index`] to fill it. The budget is `max_size`, or derived from free
    /// space when the index is complete.
    pub fn open(root: &Path, max_size: Option<u64>, metrics: Rc<Metrics>) -> io::Result<Cache> {
        let (store, partials) = Store::open(root, PARTIAL_MAX_AGE)?;
        let provisional = match max_size {
            Some(m) => m,
            None => default_budget(root, 0)?,
        };
        let mut index = Index::new(provisional);
        for p in &partials {
            index.insert_partial(p.digest, p.len, p.modified);
        }
        Ok(Cache {
            tags: Tags::new(root.join("tags")),
            store,
            index: RefCell::new(index),
            indexed: Event::new(),
            max_size,
            fills: RefCell::new(HashMap::new()),
            found_partials: RefCell::new(partials),
            metrics,
            changes: Cell::new(Changes::default()),
        })
    }

    /// The one lookup of a blob request: the cached file (recording the hit), the fill in
    /// progress, or a permit to fill it.
    pub fn lookup(self: &Rc<Self>, d: &Digest) -> io::Result<Lookup> {
        if let Some(found) = self.peek(d)? {
            return Ok(found);
        }
        let (fill, permit) = permit::lead(self.clone(), *d);
        self.fills.borrow_mut().insert(*d, fill);
        Ok(Lookup::Lead(permit))
    }

    /// Like [`Cache::lookup`] but never leads: `None` when the blob is neither cached nor
    /// being filled (a `HEAD` asks upstream instead of downloading).
    pub fn peek(&self, d: &Digest) -> io::Result<Option<Lookup>> {
        if let Some((file, size)) = self.store.open_blob(d)? {
            self.record_hit(d, size);
            return Ok(Some(Lookup::Hit(Arc::new(file), size)));
        }
        let known = self.index.borrow().contains(d);
        if known {
            self.index.borrow_mut().remove(d); // vanished from disk
            self.changed(|c| c.blobs += 1);
        }
        Ok(self.fills.borrow().get(d).cloned().map(Lookup::Follow))
    }

    fn record_hit(&self, d: &Digest, size: u64) {
        let now = SystemTime::now();
        let mut index = self.index.borrow_mut();
        if !index.contains(d) {
            index.insert(*d, size, now); // before the scan got to it, or after a crash
        } else if index.hit(d, now) {
            if let Err(e) = self.store.touch(d, now) {
                log::debug!("could not record use of {d}: {e}");
            }
        }
    }

    /// Stores a verified manifest if the budget allows (evicting first). A manifest that
    /// cannot fit is still served, just not kept. Before the index is complete it is kept
    /// without eviction (a few KiB over the budget until the scan ends and evicts).
    pub fn put_manifest(&self, d: &Digest, bytes: &[u8]) -> io::Result<()> {
        if self.store.has_blob(d) {
            return Ok(());
        }
        let size = bytes.len() as u64;
        let complete = self.index.borrow().is_complete();
        if complete {
            let Some(admission) = self.index.borrow_mut().reserve(size) else {
                return Ok(());
            };
            self.evict(&admission.evict);
        }
        let result = self.store.put_small(d, bytes);
        if complete {
            self.index.borrow_mut().release(size);
        }
        if result.is_ok() {
            self.committed(*d, size);
        }
        result
    }

    /// A stored manifest's bytes, read only if it is at most `limit` bytes: a layer asked
    /// for through the manifests endpoint is never read into memory. `Ok(None)` when not
    /// cached; `Err(NotAManifest)` when cached but too big.
    pub fn read_manifest(
        &self,
        d: &Digest,
        limit: usize,
    ) -> io::Result<Option<Result<Vec<u8>, NotAManifest>>> {
        let small = self.store.read_small(d, limit)?;
        if !matches!(small, Small::Missing) {
            let _ = self.index.borrow_mut().hit(d, SystemTime::now());
        }
        Ok(match small {
            Small::Missing => None,
            Small::TooBig(len) => Some(Err(NotAManifest { len })),
            Small::Bytes(b) => Some(Ok(b)),
        })
    }

    /// A stored blob's bytes if it is at most `limit` bytes, *without* recording a use: for
    /// what the mirror derives about its contents (the inventory), which must not make an
    /// image look recently pulled. `None` when not cached, too big, or unreadable.
    pub fn read_quietly(&self, d: &Digest, limit: usize) -> Option<Vec<u8>> {
        match self.store.read_small(d, limit) {
            Ok(Small::Bytes(b)) => Some(b),
            _ => None,
        }
    }

    /// The size of cached blob `d`: from the index, or (while the start-up scan has not
    /// got to it) from the file. `None` when not cached.
    pub fn blob_size(&self, d: &Digest) -> Option<u64> {
        let ix = self.index.borrow();
        match ix.size_of(d) {
            Some(size) => Some(size),
            None if ix.is_complete() => None,
            None => std::fs::metadata(self.store.blob_path(d))
                .ok()
                .map(|m| m.len()),
        }
    }

    /// Whether a blob of `size` bytes could be kept now: it fits the budget beside the
    /// pinned bytes and the other fills' reservations (evicting the rest as needed).
    pub fn could_keep(&self, size: u64) -> bool {
        self.index.borrow().could_reserve(size)
    }

    /// Replaces the set of pinned digests (the blobs of pinned images, on disk or not):
    /// never evicted, and counted against the budget.
    pub fn set_pins(&self, pins: HashSet<Digest>) {
        self.index.borrow_mut().set_pins(pins);
    }

    /// Deletes cached blobs on request (an operator evicting one image), except pinned ones
    /// and ones being filled; returns the bytes freed.
    pub fn remove_blobs(&self, digests: &[Digest]) -> u64 {
        let mut freed = 0;
        for d in digests {
            let size = {
                let ix = self.index.borrow();
                if ix.is_pinned(d) || self.fills.borrow().contains_key(d) {
                    continue;
                }
                ix.size_of(d)
            };
            match self.store.remove_blob(d) {
                Ok(()) => {
                    self.index.borrow_mut().remove(d);
                    freed += size.unwrap_or(0);
                    self.metrics.count_eviction(size.unwrap_or(0));
                    log::info!("evicted {d} on request");
                }
                Err(e) => log::warn!("could not evict {d}: {e}"),
            }
        }
        self.changed(|c| c.blobs += 1);
        freed
    }

    /// How often the contents changed (see [`Changes`]).
    pub fn changes(&self) -> Changes {
        self.changes.get()
    }

    fn changed(&self, f: impl FnOnce(&mut Changes)) {
        let mut c = self.changes.get();
        f(&mut c);
        self.changes.set(c);
    }

    /// The cache's root directory.
    pub fn root(&self) -> &Path {
        self.store.root()
    }

    /// Where blob `d` is (or would be) stored.
    pub fn blob_path(&self, d: &Digest) -> PathBuf {
        self.store.blob_path(d)
    }

    /// The partial blobs found at start (handed out once, for the mirror to check that
    /// upstream still has them).
    pub fn take_found_partials(&self) -> Vec<Partial> {
        std::mem::take(&mut *self.found_partials.borrow_mut())
    }

    /// Deletes a kept partial blob (upstream no longer has it), unless a fill took it.
    pub fn forget_partial(&self, d: &Digest) {
        if self.index.borrow_mut().take_partial(d).is_some() {
            self.store.remove_partial(d);
            log::info!("deleted the partial blob {d}: upstream no longer has it");
        }
    }

    /// Current numbers.
    pub fn stats(&self) -> CacheStats {
        let ix = self.index.borrow();
        CacheStats {
            cached: ix.cached_bytes(),
            partial: ix.partial_bytes(),
            reserved: ix.reserved_bytes(),
            pinned: ix.pinned_bytes(),
            max: ix.max_bytes(),
            blobs: ix.len(),
            fills: self.fills.borrow().len(),
            indexed: ix.is_complete(),
        }
    }

    /// The fills in progress, oldest first.
    pub fn fills_in_progress(&self) -> Vec<Rc<Fill>> {
        let mut v: Vec<Rc<Fill>> = self.fills.borrow().values().cloned().collect();
        v.sort_by_key(|f| f.started());
        v
    }
}

/// A stored blob asked for as a manifest is larger than any manifest may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotAManifest {
    /// Its length.
    pub len: u64,
}

/// The default budget for the filesystem `root` is on (the rule is `crate::budget`'s).
fn default_budget(root: &Path, cached: u64) -> io::Result<u64> {
    Ok(crate::budget::derived(&crate::budget::space(root)?, cached))
}

#[cfg(test)]
mod tests;
