//! The byte budget: every blob and partial blob on disk with its size and last use, plus
//! bytes reserved by fills in progress. The index *decides* what to evict; the store
//! deletes it.
//!
//! Budget rule: a fill reserves its full size before it writes a byte. If the reservation
//! would cross the budget, least-recently-used entries are evicted until the cached,
//! reserved and new bytes fit under the low watermark, so the next few fills need no eviction. A blob that
//! cannot fit even in an empty cache is refused (the caller streams it through).
//!
//! Memory: one hash-map entry per blob (32-byte digest + 24 bytes), nothing else — no list
//! links, no second copy of the start-up scan. Recency is a last-use time in seconds, so
//! the scan can insert blobs in directory order and the order is still right; uses within
//! the same second are ordered by a use counter, so that a pull's reservation for its
//! layer never evicts the manifest it committed a moment before in favour of an older
//! image's blob that happened to share the second. Choosing
//! victims walks the map (a few ms at 100 000 blobs), which happens once per low-watermark
//! pass, not per fill. Eviction is refused until the start-up scan has seen every blob
//! ([`Index::set_complete`]): before that the index does not know what is oldest, nor how
//! much is cached.
//!
//! Pins: the blobs of pinned images ([`Index::set_pins`], decided by the mirror) are never
//! victims, and their bytes count against the budget like any other; a reservation that
//! would fit only by evicting pinned bytes is refused.

use crate::reference::Digest;
use std::collections::{BinaryHeap, HashMap, HashSet};
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
    /// Last use, seconds since the Unix epoch.
    used: u32,
    /// When the mtime on disk was last set, seconds since the Unix epoch.
    touched: u32,
    /// The index's use counter at the last use: orders uses within one second.
    seq: u64,
}

/// What an eviction deletes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Victim {
    /// A verified blob in `blobs/`.
    Blob(Digest),
    /// The partial file of a fill that did not finish (`tmp/`).
    Partial(Digest),
}

/// Byte accounting and recency of the cache.
#[derive(Debug)]
pub struct Index {
    blobs: HashMap<Digest, Entry>,
    /// Partial blobs kept for a resume: few, evictable like blobs.
    partials: HashMap<Digest, Entry>,
    /// Bytes of `blobs` and `partials`.
    cached: u64,
    /// Bytes promised to fills in progress.
    reserved: u64,
    /// The budget.
    max: u64,
    /// The start-up scan has inserted every blob on disk.
    complete: bool,
    /// Digests never evicted (present or not yet fetched).
    pins: HashSet<Digest>,
    /// Bytes of `blobs` whose digest is in `pins`.
    pinned: u64,
    /// Counts inserts and hits (see [`Entry::seq`]).
    uses: u64,
}

/// A granted reservation: what must be deleted first to honour it.
#[derive(Debug)]
#[must_use = "the victims must be deleted from disk"]
pub struct Admission {
    /// Entries to delete from disk (already removed from the index).
    pub evict: Vec<Victim>,
}

/// Seconds since the epoch, saturating into `u32` (good until 2106).
pub fn secs(t: SystemTime) -> u32 {
    let s = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    u32::try_from(s).unwrap_or(u32::MAX)
}

impl Index {
    /// An empty index with budget `max` bytes, waiting for the start-up scan.
    pub fn new(max: u64) -> Index {
        Index {
            blobs: HashMap::new(),
            partials: HashMap::new(),
            cached: 0,
            reserved: 0,
            max,
            complete: false,
            pins: HashSet::new(),
            pinned: 0,
            uses: 0,
        }
    }

    /// Replaces the set of pinned digests: they are never evicted from now on, and the
    /// ones on disk count as pinned bytes.
    pub fn set_pins(&mut self, pins: HashSet<Digest>) {
        self.pinned = pins
            .iter()
            .filter_map(|d| self.blobs.get(d))
            .map(|e| e.size)
            .sum();
        self.pins = pins;
    }

    /// Whether `d` is pinned.
    pub fn is_pinned(&self, d: &Digest) -> bool {
        self.pins.contains(d)
    }

    /// Bytes of pinned blobs on disk.
    pub fn pinned_bytes(&self) -> u64 {
        self.pinned
    }

    /// The size of blob `d`, if the index knows it.
    pub fn size_of(&self, d: &Digest) -> Option<u64> {
        self.blobs.get(d).map(|e| e.size)
    }

    /// Records a blob committed now, or found by a hit before the scan reached it.
    /// Re-inserting a known blob only refreshes it.
    pub fn insert(&mut self, d: Digest, size: u64, used: SystemTime) {
        let t = secs(used);
        let entry = Entry {
            size,
            used: t,
            touched: t,
            seq: self.next_use(),
        };
        if let Some(old) = self.blobs.insert(d, entry) {
            self.cached -= old.size;
            if self.pins.contains(&d) {
                self.pinned -= old.size;
            }
        }
        self.cached += size;
        if self.pins.contains(&d) {
            self.pinned += size;
        }
    }

    /// Records a blob the start-up scan found. A blob already known (hit or committed
    /// meanwhile) keeps its more recent use.
    pub fn insert_found(&mut self, d: Digest, size: u64, used: SystemTime) {
        if !self.blobs.contains_key(&d) {
            self.insert(d, size, used);
        }
    }

    /// Records a partial blob kept for a later resume.
    pub fn insert_partial(&mut self, d: Digest, size: u64, used: SystemTime) {
        let t = secs(used);
        let entry = Entry {
            size,
            used: t,
            touched: t,
            seq: self.next_use(),
        };
        if let Some(old) = self.partials.insert(d, entry) {
            self.cached -= old.size;
        }
        self.cached += size;
    }

    /// Takes a partial blob out of the index (a fill resumes it, or it is deleted): its
    /// size, if it was known.
    pub fn take_partial(&mut self, d: &Digest) -> Option<u64> {
        let e = self.partials.remove(d)?;
        self.cached -= e.size;
        Some(e.size)
    }

    /// Marks a hit. Returns `true` when the on-disk mtime is due a refresh, which the
    /// caller then does.
    #[must_use]
    pub fn hit(&mut self, d: &Digest, now: SystemTime) -> bool {
        let now = secs(now);
        let seq = self.next_use();
        match self.blobs.get_mut(d) {
            Some(e) => {
                if now >= e.used {
                    e.seq = seq;
                }
                e.used = e.used.max(now);
                if now.saturating_sub(e.touched) as u64 >= TOUCH_INTERVAL.as_secs() {
                    e.touched = now;
                    return true;
                }
                false
            }
            None => false,
        }
    }

    /// Whether the index knows blob `d`.
    pub fn contains(&self, d: &Digest) -> bool {
        self.blobs.contains_key(d)
    }

    /// Forgets a blob that vanished from disk.
    pub fn remove(&mut self, d: &Digest) {
        if let Some(e) = self.blobs.remove(d) {
            self.cached -= e.size;
            if self.pins.contains(d) {
                self.pinned -= e.size;
            }
        }
    }

    /// The start-up scan has seen every blob: eviction may choose among them now.
    pub fn set_complete(&mut self) {
        self.complete = true;
    }

    /// Whether the start-up scan has finished.
    pub fn is_complete(&self) -> bool {
        self.complete
    }

    /// Sets the budget (derived from free space once the scan knows what is cached).
    pub fn set_max(&mut self, max: u64) {
        self.max = max;
    }

    /// Reserves `size` bytes for a fill, choosing entries to evict first. `None` if it can
    /// never fit: bigger than the budget, or the other fills' reservations leave no room.
    /// Must not be called before the scan is complete (it could not choose victims).
    pub fn reserve(&mut self, size: u64) -> Option<Admission> {
        debug_assert!(self.complete, "reserve before the index is complete");
        // Every cached entry but the pinned ones is evictable, so the request fits iff it
        // fits beside the other reservations and the pinned bytes. Decide that first:
        // never evict for a request then refused.
        let kept = self.reserved.saturating_add(self.pinned);
        if kept.saturating_add(size) > self.max {
            return None;
        }
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

    fn next_use(&mut self) -> u64 {
        self.uses = self.uses.wrapping_add(1);
        self.uses
    }

    fn low_watermark(&self) -> u64 {
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

    /// Bytes of blobs and partial blobs on disk.
    pub fn cached_bytes(&self) -> u64 {
        self.cached
    }

    /// Bytes of partial blobs kept for a resume.
    pub fn partial_bytes(&self) -> u64 {
        self.partials.values().map(|e| e.size).sum()
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
        self.blobs.len()
    }

    /// Whether no blob is cached.
    pub fn is_empty(&self) -> bool {
        self.blobs.is_empty()
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

#[cfg(test)]
mod tests {
    use super::*;

    fn d(n: u8) -> Digest {
        Digest::of(&[n])
    }
    fn t(s: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000 + s)
    }
    fn complete(max: u64) -> Index {
        let mut ix = Index::new(max);
        ix.set_complete();
        ix
    }

    #[test]
    fn reserve_within_budget_evicts_nothing() {
        let mut ix = complete(1000);
        ix.insert(d(1), 300, t(0));
        let a = ix.reserve(600).unwrap();
        assert!(a.evict.is_empty());
        assert_eq!(ix.reserved_bytes(), 600);
    }

    #[test]
    fn eviction_goes_to_the_low_watermark_in_lru_order() {
        let mut ix = complete(1000);
        for n in 1..=5 {
            ix.insert(d(n), 200, t(n.into())); // 1000 bytes, blob 1 oldest
        }
        let _ = ix.hit(&d(1), t(10)); // 1 is now the most recent
        let a = ix.reserve(100).unwrap();
        // Low watermark 900: need cached ≤ 800 → evict 2 (LRU), leaving 800.
        assert_eq!(a.evict, vec![Victim::Blob(d(2))]);
        assert_eq!(ix.cached_bytes(), 800);
        ix.release(100);
        ix.insert(d(9), 100, t(11));
        assert!(ix.cached_bytes() <= ix.max_bytes());
    }

    #[test]
    fn within_one_second_the_first_used_goes_first() {
        // An image's manifest, config and layer arrive within a second of the older
        // images' last use: the reservation for its layer must not evict its own manifest,
        // whatever the digests' order.
        for (older, newer) in [(d(9), d(1)), (d(1), d(9))] {
            let mut ix = complete(1000);
            ix.insert(older, 300, t(0)); // an older image, same second
            ix.insert(newer, 300, t(0)); // the new image's manifest, just committed
            let _ = ix.hit(&older, t(0));
            let _ = ix.hit(&newer, t(0)); // and used again after the older one
            let a = ix.reserve(600).unwrap();
            assert_eq!(a.evict, vec![Victim::Blob(older)]);
            assert!(ix.contains(&newer));
        }
    }

    #[test]
    fn the_scan_may_insert_in_any_order() {
        let mut ix = complete(1000);
        for (n, age) in [(3u8, 30u64), (1, 10), (4, 40), (2, 20), (5, 50)] {
            ix.insert_found(d(n), 200, t(age));
        }
        let a = ix.reserve(300).unwrap();
        // 1000 + 300 over budget; watermark 900 - 300 = 600: evict the two oldest.
        assert_eq!(a.evict, vec![Victim::Blob(d(1)), Victim::Blob(d(2))]);
    }

    #[test]
    fn a_hit_before_the_scan_is_not_counted_twice_nor_aged() {
        let mut ix = Index::new(1000);
        ix.insert(d(1), 100, t(100)); // served while the scan ran
        ix.insert_found(d(1), 100, t(0)); // the scan gets there later
        assert_eq!((ix.len(), ix.cached_bytes()), (1, 100));
        ix.insert_found(d(2), 100, t(50));
        ix.set_complete();
        ix.set_max(200);
        let a = ix.reserve(100).unwrap();
        assert_eq!(
            a.evict[0],
            Victim::Blob(d(2)),
            "the scan's older use goes first"
        );
    }

    #[test]
    fn too_big_for_the_budget_is_refused() {
        let mut ix = complete(1000);
        assert!(ix.reserve(1001).is_none());
        let _ = ix.reserve(700).unwrap();
        // 700 reserved by another fill: 400 more can never fit now.
        assert!(ix.reserve(400).is_none());
        assert_eq!(ix.reserved_bytes(), 700);
    }

    #[test]
    fn hit_asks_for_a_touch_at_most_hourly() {
        let mut ix = complete(1000);
        ix.insert(d(1), 1, t(0));
        assert!(!ix.hit(&d(1), t(60)));
        assert!(ix.hit(&d(1), t(TOUCH_INTERVAL.as_secs())));
        assert!(!ix.hit(&d(1), t(TOUCH_INTERVAL.as_secs() + 1)));
    }

    #[test]
    fn partials_count_and_are_evicted_like_blobs() {
        let mut ix = complete(1000);
        ix.insert_partial(d(1), 500, t(0));
        ix.insert(d(2), 400, t(5));
        assert_eq!((ix.cached_bytes(), ix.partial_bytes()), (900, 500));
        let a = ix.reserve(300).unwrap();
        assert_eq!(a.evict, vec![Victim::Partial(d(1))]);
        assert_eq!(ix.take_partial(&d(1)), None);
    }

    #[test]
    fn pinned_blobs_are_never_victims_and_count_against_the_budget() {
        let mut ix = complete(1000);
        for n in 1..=4 {
            ix.insert(d(n), 200, t(n.into())); // 800 bytes, blob 1 oldest
        }
        ix.set_pins([d(1), d(2), d(9)].into_iter().collect());
        assert_eq!(ix.pinned_bytes(), 400, "only what is on disk");
        let a = ix.reserve(300).unwrap();
        // Over budget: the oldest unpinned (3) goes, never 1 or 2.
        assert_eq!(a.evict, vec![Victim::Blob(d(3))]);
        ix.release(300);
        // 400 pinned + 700 can never fit a 1000-byte budget, whatever is evicted.
        assert!(ix.reserve(700).is_none());
        assert!(ix.contains(&d(4)), "nothing evicted for a refused request");
        ix.insert(d(9), 100, t(9)); // the pinned blob arrives
        assert_eq!(ix.pinned_bytes(), 500);
        ix.remove(&d(1));
        assert_eq!(ix.pinned_bytes(), 300);
        let evict = ix.disk_full(0);
        assert!(
            evict.iter().all(|v| *v == Victim::Blob(d(4))),
            "a full disk spares the pins too: {evict:?}"
        );
    }

    #[test]
    fn pins_heavier_than_the_watermark_still_leave_room_under_the_budget() {
        let mut ix = complete(1000);
        ix.insert(d(1), 850, t(1));
        ix.insert(d(2), 100, t(2));
        ix.insert(d(3), 40, t(3));
        ix.set_pins([d(1)].into_iter().collect());
        let a = ix.reserve(100).unwrap();
        // 850 pinned + 100 is over the 900 watermark: evict to 1000, not everything.
        assert_eq!(a.evict, vec![Victim::Blob(d(2))]);
        assert!(ix.contains(&d(3)));
    }

    #[test]
    fn disk_full_excludes_the_unwritten_reservation_and_evicts() {
        // Issue 6, defect 12: a 1000-byte budget on a disk that holds 600. Blob 1 (300)
        // is cached; a fill reserved 400 and wrote 300 when the disk said ENOSPC.
        let mut ix = complete(1000);
        ix.insert(d(1), 300, t(0));
        let _ = ix.reserve(400).unwrap();
        let evict = ix.disk_full(100);
        assert_eq!(
            ix.max_bytes(),
            600,
            "what the disk held: 300 cached + 300 written"
        );
        assert_eq!(evict, vec![Victim::Blob(d(1))], "room made for the rest");
        // A retry of the same blob after the failure no longer "fits" without eviction.
        ix.release(400);
        ix.insert(d(3), 300, t(1));
        let a = ix.reserve(400).unwrap();
        assert_eq!(a.evict, vec![Victim::Blob(d(3))]);
    }
}
