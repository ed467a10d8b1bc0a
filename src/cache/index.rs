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

    /// An entry of `size` bytes last used at `used`, next in the use order.
    fn new_entry(&mut self, size: u64, used: SystemTime) -> Entry {
        let t = secs(used);
        Entry {
            size,
            used: t,
            touched: t,
            seq: self.next_use(),
        }
    }

    /// Records a blob committed now, or found by a hit before the scan reached it.
    /// Re-inserting a known blob only refreshes it.
    pub fn insert(&mut self, d: Digest, size: u64, used: SystemTime) {
        let entry = self.new_entry(size, used);
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
        let entry = self.new_entry(size, used);
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
mod tests;
