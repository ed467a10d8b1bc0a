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
//! Reservations and the choice of victims are `index/evict.rs`.
//!
//! Pins: the blobs of pinned images ([`Index::set_pins`], decided by the mirror) are never
//! victims, and their bytes count against the budget like any other; a reservation that
//! would fit only by evicting pinned bytes is refused.

use crate::reference::Digest;
use std::collections::{HashMap, HashSet};
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

    fn next_use(&mut self) -> u64 {
        self.uses = self.uses.wrapping_add(1);
        self.uses
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

mod evict;
#[cfg(test)]
mod tests;
