//! The index's reservations and evictions: whether a fill's bytes fit the budget, which
//! least-recently-used entries make room for them (down to the low watermark), and what a
//! full disk gives up. The index only decides; the store deletes (see `index.rs`).

use super::{Admission, Index, Victim, LOW_WATERMARK_PERCENT};
use std::collections::BinaryHeap;

impl Index {
    /// Whether [`Index::reserve`] would admit `size` bytes now (without choosing victims).
    pub fn could_reserve(&self, size: u64) -> bool {
        self.reserved
            .saturating_add(self.pinned)
            .saturating_add(size)
            <= self.max
    }

    /// Reserves `size` bytes for a fill, choosing entries to evict first. `None` if it can
    /// never fit: bigger than the budget, or the other fills' reservations leave no room.
    /// Must not be called before the scan is complete (it could not choose victims).
    pub fn reserve(&mut self, size: u64) -> Option<Admission> {
        debug_assert!(self.complete, "reserve before the index is complete");
        // Every cached entry but the pinned ones is evictable, so the request fits iff it
        // fits beside the other reservations and the pinned bytes. Decide that first:
        // never evict for a request then refused.
        if !self.could_reserve(size) {
            return None;
        }
        let kept = self.reserved.saturating_add(self.pinned);
        let mut evict = Vec::new();
        if self.cached + self.reserved + size > self.max {
            // Down to the low watermark — or, when the pins leave no room for that, just
            // under the budget (evicting everything else would not reach the watermark).
            let target = if kept + size <= self.low_watermark() {
                self.low_watermark() - size
            } else {
                self.max - size
            };
            evict = self.evict_until(target);
        }
        self.reserved += size;
        Some(Admission { evict })
    }

    /// Adds bytes already on disk to the reserved ones (a partial blob a fill takes over).
    pub fn add_reserved(&mut self, size: u64) {
        self.reserved += size;
    }

    /// Ends a reservation (the fill committed, failed, or was abandoned), or part of one.
    pub fn release(&mut self, size: u64) {
        self.reserved = self.reserved.saturating_sub(size);
    }

    /// The disk filled up (`ENOSPC`) with `unwritten` reserved bytes not yet on disk: the
    /// budget becomes what the disk really held — cached plus written, *not* the unwritten
    /// reservations, which would make every retry "fit" and evict nothing — and entries are
    /// evicted down to the low watermark of that. Empty when nothing is left to evict.
    pub fn disk_full(&mut self, unwritten: u64) -> Vec<Victim> {
        let on_disk = (self.cached + self.reserved).saturating_sub(unwritten);
        self.max = self.max.min(on_disk);
        if !self.complete {
            return Vec::new();
        }
        let mut evict = self.evict_until(self.low_watermark());
        if evict.is_empty() {
            // Already under the watermark by the books, yet the disk is full (others
            // share it): give up the oldest entry anyway, if there is one.
            evict = self.evict_until((self.cached + self.reserved).saturating_sub(1));
        }
        evict
    }

    pub(super) fn low_watermark(&self) -> u64 {
        self.max / 100 * LOW_WATERMARK_PERCENT
    }

    /// Removes least-recently-used entries until `cached + reserved <= target` (or
    /// nothing is left), and returns them. One pass over the map keeps a heap of just
    /// enough of the oldest entries.
    fn evict_until(&mut self, target: u64) -> Vec<Victim> {
        let need = (self.cached + self.reserved).saturating_sub(target);
        if need == 0 {
            return Vec::new();
        }
        // Max-heap on (used, seq, …): the newest of the chosen is on top and leaves first
        // once the others already cover `need`.
        let mut chosen: BinaryHeap<((u32, u64), Victim, u64)> = BinaryHeap::new();
        let mut covered = 0u64;
        let pins = &self.pins;
        let all = self
            .blobs
            .iter()
            .map(|(d, e)| ((e.used, e.seq), Victim::Blob(*d), e.size))
            .chain(
                self.partials
                    .iter()
                    .map(|(d, e)| ((e.used, e.seq), Victim::Partial(*d), e.size)),
            )
            .filter(|(_, v, _)| match v {
                Victim::Blob(d) | Victim::Partial(d) => !pins.contains(d),
            });
        for (used, victim, size) in all {
            if covered >= need && chosen.peek().is_some_and(|top| top.0 <= used) {
                continue;
            }
            chosen.push((used, victim, size));
            covered += size;
            while let Some(top) = chosen.peek() {
                if covered - top.2 >= need {
                    covered -= top.2;
                    chosen.pop();
                } else {
                    break;
                }
            }
        }
        let mut victims: Vec<((u32, u64), Victim, u64)> = chosen.into_vec();
        victims.sort_by_key(|v| v.0);
        victims
            .into_iter()
            .map(|(_, v, _)| {
                match v {
                    Victim::Blob(d) => self.remove(&d),
                    Victim::Partial(d) => {
                        self.take_partial(&d);
                    }
                }
                v
            })
            .collect()
    }
}

impl PartialOrd for Victim {
    fn partial_cmp(&self, other: &Victim) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Victim {
    fn cmp(&self, other: &Victim) -> std::cmp::Ordering {
        let key = |v: &Victim| match v {
            Victim::Blob(d) => (0, *d),
            Victim::Partial(d) => (1, *d),
        };
        key(self).cmp(&key(other))
    }
}
