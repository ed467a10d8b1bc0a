//! Which images are pinned — the keep list (`--keep FILE`, re-read on SIGHUP) and the pins
//! an operator made through the admin API (kept in `<cache>/state/pins`, so they survive a
//! restart) — and turning them into the set of digests the cache's index never evicts.
//!
//! The digests of a pinned image are those its manifests on disk name: the top manifest,
//! the selected platforms' manifests, their configs and layers (also the ones not fetched
//! yet, so a fill for them is never an eviction victim later). The set is computed again
//! whenever it may have grown: pins changed, or a pinned image's manifests arrived
//! ([`Mirror::apply_pins`]). When a pinned tag moves, the digest it pointed to while it was
//! complete stays pinned until the new one is complete too: an image half-fetched when the
//! internet went down never costs the one that was whole.
//!
//! `<cache>/state/keep` is a copy of the keep list in effect, for `regmirror ls` (which
//! runs without the serve flags); both files use the keep list's format (`keep.rs`).

use super::inventory::Selection;
use super::pulls::{write_atomically, STATE_DIR};
use super::Mirror;
use crate::image_ref::ImageRef;
use crate::keep::{self, Entry};
use crate::reference::Digest;
use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

/// The file of operator pins, inside [`STATE_DIR`].
pub const PINS_FILE: &str = "pins";

/// The copy of the keep list in effect, inside [`STATE_DIR`].
pub const KEEP_COPY_FILE: &str = "keep";

/// Why an image is pinned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PinSource {
    /// It is in the keep list.
    Keep,
    /// An operator pinned it.
    Admin,
}

/// The pinned images. Single-threaded; no borrow outlives a method.
#[derive(Debug)]
pub struct Pins {
    dir: PathBuf,
    keep: RefCell<Vec<Entry>>,
    admin: RefCell<Vec<Entry>>,
    /// Bumped whenever the entries change (the inventory's `pinned` flags depend on them).
    generation: Cell<u64>,
    /// For each pinned image, the last digest it pointed to while complete.
    held: RefCell<HashMap<ImageRef, Digest>>,
}

impl Pins {
    /// The operator pins saved under the cache at `root`; no keep list yet.
    pub fn load(root: &Path) -> Pins {
        let dir = root.join(STATE_DIR);
        let path = dir.join(PINS_FILE);
        let admin = if path.exists() {
            keep::read(&path).unwrap_or_else(|e| {
                log::warn!("{e}; the pins made through the admin API are not restored");
                Vec::new()
            })
        } else {
            Vec::new()
        };
        Pins {
            dir,
            keep: RefCell::new(Vec::new()),
            admin: RefCell::new(admin),
            generation: Cell::new(0),
            held: RefCell::new(HashMap::new()),
        }
    }

    /// Every pinned image, keep list first.
    pub fn entries(&self) -> Vec<(Entry, PinSource)> {
        let keep = self.keep.borrow();
        let admin = self.admin.borrow();
        keep.iter()
            .map(|e| (e.clone(), PinSource::Keep))
            .chain(
                admin
                    .iter()
                    .filter(|a| !keep.iter().any(|k| k.image == a.image))
                    .map(|e| (e.clone(), PinSource::Admin)),
            )
            .collect()
    }

    /// The pin of `image`, if it is pinned.
    pub fn find(&self, image: &ImageRef) -> Option<(Entry, PinSource)> {
        self.entries().into_iter().find(|(e, _)| e.image == *image)
    }

    /// The keep list in effect.
    pub fn keep_list(&self) -> Vec<Entry> {
        self.keep.borrow().clone()
    }

    /// Replaces the keep list (at start, on SIGHUP) and saves its copy for `regmirror ls`.
    pub fn set_keep(&self, entries: Vec<Entry>) {
        let text: String = entries.iter().map(|e| format!("{e}\n")).collect();
        let copy = self.dir.join(KEEP_COPY_FILE);
        // Written only when it changed (and not at all without a keep list): SD wear.
        let same = match std::fs::read_to_string(&copy) {
            Ok(old) => old == text,
            Err(_) => text.is_empty(),
        };
        if !same {
            if let Err(e) = write_atomically(&copy, text.as_bytes()) {
                log::warn!("could not save the keep list's copy for regmirror ls: {e}");
            }
        }
        *self.keep.borrow_mut() = entries;
        self.bump();
    }

    /// Adds or replaces an operator pin, saved at once.
    pub fn pin(&self, entry: Entry) -> std::io::Result<()> {
        {
            let mut admin = self.admin.borrow_mut();
            admin.retain(|e| e.image != entry.image);
            admin.push(entry);
        }
        self.bump();
        self.save_admin()
    }

    /// Removes an operator pin; `false` if there was none.
    pub fn unpin(&self, image: &ImageRef) -> std::io::Result<bool> {
        let removed = {
            let mut admin = self.admin.borrow_mut();
            let before = admin.len();
            admin.retain(|e| e.image != *image);
            admin.len() != before
        };
        if removed {
            self.held.borrow_mut().remove(image);
            self.bump();
            self.save_admin()?;
        }
        Ok(removed)
    }

    /// The pin generation: changes whenever the entries do.
    pub fn generation(&self) -> u64 {
        self.generation.get()
    }

    fn bump(&self) {
        self.generation.set(self.generation.get() + 1);
    }

    fn save_admin(&self) -> std::io::Result<()> {
        let text: String = self
            .admin
            .borrow()
            .iter()
            .map(|e| format!("{e}\n"))
            .collect();
        write_atomically(&self.dir.join(PINS_FILE), text.as_bytes())
    }
}

/// Which platforms of a pinned image count.
pub fn selection(entry: &Entry) -> Selection {
    if entry.platforms.is_empty() {
        Selection::All
    } else {
        Selection::Only(entry.platforms.clone())
    }
}

impl Mirror {
    /// Whether `image` is pinned (keep list or operator).
    pub fn is_pinned(&self, image: &ImageRef) -> bool {
        self.pins.find(image).is_some()
    }

    /// Which platforms count for `image` in the inventory: its pin's, else those on disk.
    pub(super) fn selection_for(&self, image: &ImageRef) -> Selection {
        match self.pins.find(image) {
            Some((e, _)) => selection(&e),
            None => Selection::Present,
        }
    }

    pub(super) fn pins_generation(&self) -> u64 {
        self.pins.generation()
    }

    /// The digests of every pinned image, as far as the manifests on disk tell; each
    /// image's last complete digest is remembered (see the module docs).
    pub(super) fn pinned_digests(&self) -> HashSet<Digest> {
        let mut all = HashSet::new();
        let mut held = self.pins.held.borrow_mut();
        let entries = self.pins.entries();
        held.retain(|image, _| entries.iter().any(|(e, _)| e.image == *image));
        for (entry, _) in &entries {
            let sel = selection(entry);
            let Some((rec, walk)) = self.walk_cached(&entry.image, &sel) else {
                continue;
            };
            all.extend(walk.digests());
            let complete = walk.top_present
                && walk.missing_manifests.is_empty()
                && walk
                    .blobs
                    .iter()
                    .all(|(d, _)| self.cache.blob_size(d).is_some());
            if complete {
                held.insert(entry.image.clone(), rec.digest);
            } else if let Some(old) = held.get(&entry.image).filter(|d| **d != rec.digest) {
                let walk = self.inventory_walk(old, &sel);
                all.extend(walk.digests());
            }
        }
        all
    }

    /// Gives the cache the pinned digests as they stand now.
    pub fn apply_pins(&self) {
        let digests = self.pinned_digests();
        self.cache.set_pins(digests);
    }
}
