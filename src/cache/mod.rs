//! The disk cache: [`Cache`] ties the store (files), the index (byte budget, LRU), the
//! in-flight fills and the tag records together.
//!
//! `store.rs` owns paths and crash-safe commits, `index.rs` decides evictions, `fill.rs`
//! fetches a cold blob once for all readers, `tags.rs` remembers tag → digest. The `Cache`
//! is shared as `Rc<Cache>` on the executor thread; its `RefCell`s are never borrowed across
//! an `.await` (every method here is synchronous).

pub mod fill;
pub mod index;
pub mod store;
pub mod tags;

use crate::metrics::Metrics;
use crate::reference::Digest;
use fill::Fill;
use index::Index;
use std::cell::RefCell;
use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::path::Path;
use std::rc::Rc;
use std::sync::Arc;
use std::time::SystemTime;
use store::Store;
use tags::Tags;

/// The cache: blobs on disk under a byte budget, fills in progress, tag records.
#[derive(Debug)]
pub struct Cache {
    /// Files on disk.
    pub store: Store,
    /// LRU order and byte accounting.
    pub index: RefCell<Index>,
    /// Tag → digest records.
    pub tags: Tags,
    /// Fills in progress, by digest: the coalescing point for cold blobs.
    fills: RefCell<HashMap<Digest, Arc<Fill>>>,
    /// The mirror's counters (evictions).
    metrics: Rc<Metrics>,
}

/// Numbers for `/_regmirror/status` and `/metrics`.
#[derive(Debug, Clone, Copy)]
pub struct CacheStats {
    /// Bytes of cached blobs.
    pub cached: u64,
    /// Bytes reserved by fills in progress.
    pub reserved: u64,
    /// The budget.
    pub max: u64,
    /// Cached blobs.
    pub blobs: usize,
    /// Fills in progress.
    pub fills: usize,
}

impl Cache {
    /// Opens the cache at `root`: empties `tmp/`, rebuilds the index from the blobs on disk
    /// (oldest use first), and sets the budget — `max_size`, or derived from free space.
    /// If the disk already holds more than the budget, the oldest blobs are evicted now.
    pub fn open(root: &Path, max_size: Option<u64>, metrics: Rc<Metrics>) -> io::Result<Cache> {
        let store = Store::open(root)?;
        let found = store.scan()?;
        let cached: u64 = found.iter().map(|f| f.size).sum();
        let max = match max_size {
            Some(m) => m,
            None => default_budget(root, cached)?,
        };
        let mut index = Index::new(max);
        for f in &found {
            index.insert(f.digest, f.size, f.used);
        }
        let cache = Cache {
            tags: Tags::new(root.join("tags")),
            store,
            index: RefCell::new(index),
            fills: RefCell::new(HashMap::new()),
            metrics,
        };
        if cached > max {
            let evict = cache
                .index
                .borrow_mut()
                .reserve(0)
                .map(|a| a.evict)
                .unwrap_or_default();
            cache.evict(&evict);
        }
        Ok(cache)
    }

    /// A cached blob, opened, with its size; records the hit for LRU.
    pub fn lookup(&self, d: &Digest) -> io::Result<Option<(Arc<File>, u64)>> {
        let Some((file, size)) = self.store.open_blob(d)? else {
            self.index.borrow_mut().remove(d);
            return Ok(None);
        };
        let now = SystemTime::now();
        let mut index = self.index.borrow_mut();
        if index.hit(d, now) {
            if let Err(e) = self.store.touch(d, now) {
                log::debug!("could not record use of {d}: {e}");
            }
        } else if !index.contains(d) {
            index.insert(*d, size, now);
        }
        Ok(Some((Arc::new(file), size)))
    }

    /// The fill in progress for `d`, if any.
    pub fn fill(&self, d: &Digest) -> Option<Arc<Fill>> {
        self.fills.borrow().get(d).cloned()
    }

    /// Registers a new fill for `d`; the caller spawns [`fill::run`] for it.
    pub fn start_fill(&self, d: Digest) -> Arc<Fill> {
        let fill = Arc::new(Fill::new());
        self.fills.borrow_mut().insert(d, fill.clone());
        fill
    }

    /// Stores a verified manifest if the budget allows (evicting first). A manifest that
    /// cannot fit is still served, just not kept.
    pub fn put_manifest(&self, d: &Digest, bytes: &[u8]) -> io::Result<()> {
        if self.store.has_blob(d) {
            return Ok(());
        }
        let size = bytes.len() as u64;
        let Some(evict) = self.admit(size) else {
            return Ok(());
        };
        self.evict(&evict);
        let result = self.store.put_small(d, bytes);
        self.index.borrow_mut().release(size);
        if result.is_ok() {
            self.committed(*d, size);
        }
        result
    }

    /// A manifest's bytes from disk.
    pub fn read_manifest(&self, d: &Digest) -> io::Result<Option<Vec<u8>>> {
        let bytes = self.store.read_blob(d)?;
        if bytes.is_some() {
            self.index.borrow_mut().hit(d, SystemTime::now());
        }
        Ok(bytes)
    }

    /// Current numbers.
    pub fn stats(&self) -> CacheStats {
        let ix = self.index.borrow();
        CacheStats {
            cached: ix.cached_bytes(),
            reserved: ix.reserved_bytes(),
            max: ix.max_bytes(),
            blobs: ix.len(),
            fills: self.fills.borrow().len(),
        }
    }

    /// Reserves room for `size` bytes; the blobs to delete first, or `None` if it can't fit.
    fn admit(&self, size: u64) -> Option<Vec<Digest>> {
        self.index.borrow_mut().reserve(size).map(|a| a.evict)
    }

    /// Deletes blobs the index chose to evict.
    fn evict(&self, digests: &[Digest]) {
        for d in digests {
            match self.store.remove_blob(d) {
                Ok(()) => {
                    self.metrics.evictions.inc();
                    log::info!("evicted {d}");
                }
                Err(e) => log::warn!("could not evict {d}: {e}"),
            }
        }
    }

    fn committed(&self, d: Digest, size: u64) {
        self.index.borrow_mut().insert(d, size, SystemTime::now());
    }

    fn end_fill(&self, d: &Digest) {
        self.fills.borrow_mut().remove(d);
    }
}

/// The default budget for the filesystem `root` is on (the rule is `crate::budget`'s).
fn default_budget(root: &Path, cached: u64) -> io::Result<u64> {
    Ok(crate::budget::derived(&crate::budget::space(root)?, cached))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reopen_rebuilds_the_index_and_enforces_a_smaller_budget() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path(), Some(1000), Default::default()).unwrap();
        let blobs: Vec<Vec<u8>> = (0..4u8).map(|i| vec![i; 300]).collect();
        for b in &blobs {
            cache.put_manifest(&Digest::of(b), b).unwrap();
        }
        // Four 300-byte blobs in a 1000-byte budget: at most three fit.
        let s = cache.stats();
        assert!(s.cached <= 1000 && s.blobs == 3, "{s:?}");
        assert!(
            !cache.store.has_blob(&Digest::of(&blobs[0])),
            "oldest evicted"
        );
        drop(cache);
        let cache = Cache::open(dir.path(), Some(400), Default::default()).unwrap();
        let s = cache.stats();
        assert!(s.cached <= 400, "{s:?}");
        assert!(cache.store.has_blob(&Digest::of(&blobs[3])), "newest kept");
    }

    #[test]
    fn derived_budget_is_positive_and_below_free_space() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path(), None, Default::default()).unwrap();
        let st = rustix::fs::statvfs(dir.path()).unwrap();
        let s = cache.stats();
        assert!(s.max > 0 && s.max <= st.f_bavail * st.f_frsize, "{s:?}");
    }
}
