//! The cache's side of a fill (what `permit::Books` asks of it): the store and index a
//! permit writes through, eviction of what the index chose, the commit of a verified blob
//! into the index, and the end of a fill.

use super::fill::Fill;
use super::index::{Index, Victim};
use super::permit::Books;
use super::store::Store;
use super::Cache;
use crate::reference::Digest;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::time::SystemTime;

impl Cache {
    /// Deletes what the index chose to evict.
    pub(super) fn evict(&self, victims: &[Victim]) {
        for v in victims {
            // The index has already forgotten the size: the file still knows it.
            let (d, size, result) = match v {
                Victim::Blob(d) => {
                    let size = std::fs::metadata(self.store.blob_path(d)).map_or(0, |m| m.len());
                    (d, size, self.store.remove_blob(d))
                }
                Victim::Partial(d) => {
                    self.store.remove_partial(d);
                    (d, 0, Ok(()))
                }
            };
            match result {
                Ok(()) => {
                    self.metrics.count_eviction(size);
                    log::info!("evicted {d}");
                }
                Err(e) => log::warn!("could not evict {d}: {e}"),
            }
        }
        if !victims.is_empty() {
            self.changed(|c| c.blobs += 1);
        }
    }

    pub(super) fn committed(&self, d: Digest, size: u64) {
        if let Some(fill) = self.fills.borrow().get(&d) {
            self.metrics.fill_seconds.observe(fill.started().elapsed());
        }
        self.index.borrow_mut().insert(d, size, SystemTime::now());
        self.changed(|c| c.blobs += 1);
    }
}

impl Books for Cache {
    fn store(&self) -> &Store {
        &self.store
    }

    fn index(&self) -> std::cell::RefMut<'_, Index> {
        self.index.borrow_mut()
    }

    fn index_ready(&self) -> Pin<Box<dyn Future<Output = ()> + '_>> {
        Box::pin(Cache::index_ready(self))
    }

    /// The disk is full: the index learns what it really held (cached plus what the fills
    /// wrote), and picks victims.
    fn disk_full(&self) -> Vec<Victim> {
        let written: u64 = self.fills.borrow().values().map(|f| f.written()).sum();
        let mut index = self.index.borrow_mut();
        let unwritten = index.reserved_bytes().saturating_sub(written);
        index.disk_full(unwritten)
    }

    fn evict(&self, victims: &[Victim]) {
        Cache::evict(self, victims)
    }

    fn committed(&self, d: Digest, size: u64) {
        Cache::committed(self, d, size)
    }

    fn end_fill(&self, fill: &Rc<Fill>) {
        let mut fills = self.fills.borrow_mut();
        if fills
            .get(&fill.digest())
            .is_some_and(|f| Rc::ptr_eq(f, fill))
        {
            fills.remove(&fill.digest());
        }
    }
}
