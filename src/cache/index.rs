//! The byte budget: an LRU of cached blobs weighted by size, plus bytes reserved by fills in
//! progress. The index *decides* what to evict; the store deletes it.
//!
//! Budget rule: a fill reserves its full size before it writes a byte. If the reservation
//! would cross the budget, least-recently-used blobs are evicted until cached + reserved +
//! new fits under the low watermark, so the next few fills need no eviction. A blob that
//! cannot fit even in an empty cache is refused (the caller streams it through).

use crate::reference::Digest;
use lru::LruCache;
use std::time::{Duration, SystemTime};

/// Evict down to this fraction of the budget (percent) once eviction is needed: one
/// eviction pass makes room for several fills instead of one pass per fill.
pub const LOW_WATERMARK_PERCENT: u64 = 90;

/// A hit refreshes the blob's on-disk mtime at most this often. Recency survives a
/// restart approximately; SD cards are spared a metadata write per hit.
pub const TOUCH_INTERVAL: Duration = Duration::from_secs(3600);

#[derive(Debug, Clone, Copy)]
struct Entry {
    size: u64,
    /// When the mtime on disk was last set.
    touched: SystemTime,
}

/// LRU order and byte accounting of the cache.
#[derive(Debug)]
pub struct Index {
    lru: LruCache<Digest, Entry>,
    /// Bytes of committed blobs in `lru`.
    cached: u64,
    /// Bytes promised to fills in progress.
    reserved: u64,
    /// The budget.
    max: u64,
}

/// A granted reservation: what must be deleted first to honour it.
#[derive(Debug)]
pub struct Admission {
    /// Blobs to delete from disk (already removed from the index).
    pub evict: Vec<Digest>,
}

impl Index {
    /// An empty index with budget `max` bytes.
    pub fn new(max: u64) -> Index {
        Index {
            lru: LruCache::unbounded(),
            cached: 0,
            reserved: 0,
            max,
        }
    }

    /// Records a blob on disk as most recently used (scan in oldest-first order, or a
    /// finished fill). Re-inserting a known blob only refreshes it.
    pub fn insert(&mut self, d: Digest, size: u64, touched: SystemTime) {
        if let Some(old) = self.lru.put(d, Entry { size, touched }) {
            self.cached -= old.size;
        }
        self.cached += size;
    }

    /// Marks a hit. Returns `true` when the on-disk mtime is due a refresh (and assumes the
    /// caller does it).
    pub fn hit(&mut self, d: &Digest, now: SystemTime) -> bool {
        match self.lru.get_mut(d) {
            Some(e) if now.duration_since(e.touched).unwrap_or_default() >= TOUCH_INTERVAL => {
                e.touched = now;
                true
            }
            _ => false,
        }
    }

    /// Whether the index knows `d`.
    pub fn contains(&self, d: &Digest) -> bool {
        self.lru.contains(d)
    }

    /// Forgets a blob that vanished from disk.
    pub fn remove(&mut self, d: &Digest) {
        if let Some(e) = self.lru.pop(d) {
            self.cached -= e.size;
        }
    }

    /// Reserves `size` bytes for a fill, choosing blobs to evict first. `None` if the blob
    /// can never fit: it is bigger than the budget, or everything evictable is gone and the
    /// other fills' reservations still leave no room.
    pub fn reserve(&mut self, size: u64) -> Option<Admission> {
        // Every cached blob is evictable, so the request fits iff it fits beside the
        // other reservations. Decide that first: never evict for a request then refused.
        if self.reserved + size > self.max {
            return None;
        }
        let mut evict = Vec::new();
        if self.cached + self.reserved + size > self.max {
            let low = self.max / 100 * LOW_WATERMARK_PERCENT;
            let target = low.saturating_sub(size);
            while self.cached + self.reserved > target {
                let Some((d, e)) = self.lru.pop_lru() else {
                    break;
                };
                self.cached -= e.size;
                evict.push(d);
            }
        }
        self.reserved += size;
        Some(Admission { evict })
    }

    /// Ends a reservation (the fill committed, failed, or was abandoned).
    pub fn release(&mut self, size: u64) {
        self.reserved = self.reserved.saturating_sub(size);
    }

    /// Lowers the budget to what the disk could actually hold (after `ENOSPC`): later fills
    /// evict instead of failing again.
    pub fn shrink_to_fit(&mut self) {
        self.max = self.max.min(self.cached + self.reserved);
    }

    /// Bytes of committed blobs.
    pub fn cached_bytes(&self) -> u64 {
        self.cached
    }

    /// Bytes reserved by fills in progress.
    pub fn reserved_bytes(&self) -> u64 {
        self.reserved
    }

    /// The byte budget.
    pub fn max_bytes(&self) -> u64 {
        self.max
    }

    /// Number of cached blobs.
    pub fn len(&self) -> usize {
        self.lru.len()
    }

    /// Whether no blob is cached.
    pub fn is_empty(&self) -> bool {
        self.lru.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(n: u8) -> Digest {
        Digest::of(&[n])
    }
    const T0: SystemTime = SystemTime::UNIX_EPOCH;

    #[test]
    fn reserve_within_budget_evicts_nothing() {
        let mut ix = Index::new(1000);
        ix.insert(d(1), 300, T0);
        let a = ix.reserve(600).unwrap();
        assert!(a.evict.is_empty());
        assert_eq!(ix.reserved_bytes(), 600);
    }

    #[test]
    fn eviction_goes_to_the_low_watermark_in_lru_order() {
        let mut ix = Index::new(1000);
        for n in 1..=5 {
            ix.insert(d(n), 200, T0); // 1000 bytes, blob 1 oldest
        }
        ix.hit(&d(1), T0); // 1 is now the most recent
        let a = ix.reserve(100).unwrap();
        // Low watermark 900: need cached ≤ 800 → evict 2 (LRU), leaving 800.
        assert_eq!(a.evict, vec![d(2)]);
        assert_eq!(ix.cached_bytes(), 800);
        ix.release(100);
        ix.insert(d(9), 100, T0);
        assert!(ix.cached_bytes() <= ix.max_bytes());
    }

    #[test]
    fn too_big_for_the_budget_is_refused() {
        let mut ix = Index::new(1000);
        assert!(ix.reserve(1001).is_none());
        ix.reserve(700).unwrap();
        // 700 reserved by another fill: 400 more can never fit now.
        assert!(ix.reserve(400).is_none());
        assert_eq!(ix.reserved_bytes(), 700);
    }

    #[test]
    fn hit_asks_for_a_touch_at_most_hourly() {
        let mut ix = Index::new(1000);
        ix.insert(d(1), 1, T0);
        assert!(!ix.hit(&d(1), T0 + Duration::from_secs(60)));
        assert!(ix.hit(&d(1), T0 + TOUCH_INTERVAL));
        assert!(!ix.hit(&d(1), T0 + TOUCH_INTERVAL + Duration::from_secs(1)));
    }

    #[test]
    fn shrink_after_enospc() {
        let mut ix = Index::new(1000);
        ix.insert(d(1), 300, T0);
        ix.shrink_to_fit();
        assert_eq!(ix.max_bytes(), 300);
        let a = ix.reserve(200).unwrap();
        assert_eq!(a.evict, vec![d(1)]);
    }
}
