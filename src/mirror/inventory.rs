//! What the mirror holds, per image (`upstream/repository:tag`): derived from the tag
//! records and the manifests on disk — no database — with the per-image pull counters and
//! pins laid over it. [`Mirror::inventory`] and [`Mirror::image`] for the status page and
//! the JSON; [`derive`] for `regmirror ls`, which reads a cache directory with the mirror
//! stopped.
//!
//! Cost on a Pi: manifests are content-addressed, so each is read (bounded) and parsed once
//! and its structure kept ([`Manifests`], `walk.rs`); a single manifest's config is read
//! once, for its platform. Sizes come from the cache's
//! index, not from the disk. The tag records are read again only when one was added,
//! removed or moved, and the whole list is derived again only when the cache's contents
//! changed ([`Changes`]) or the pins did — a page view in between costs a copy.
//!
//! What an image's numbers mean:
//! - `platforms`: for an index, the platforms whose manifest is on disk (what was pulled
//!   or prefetched; `index_platforms` lists all the index offers); for a single manifest,
//!   its config's platform once the config is cached.
//! - `size_bytes`: bytes on disk of the manifests, configs and layers of those platforms;
//!   a layer shared by two images counts in each.
//! - `complete`: every blob of every platform counted is on disk — for a pinned image with
//!   a platform list, of the platforms listed, each of which must be there.

pub use super::walk::{Disk, Manifests, Selection, Walk};
use super::Mirror;
use crate::cache::tags::{TagEntry, TagRecord};
use crate::cache::Changes;
use crate::image_ref::ImageRef;
use crate::media_type::MediaType;
use crate::reference::{Digest, Repository, Tag, UpstreamName};
use std::cell::RefCell;
use std::collections::HashSet;
use std::time::SystemTime;

/// One image the mirror knows by tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageInfo {
    /// The registry (`docker.io`).
    pub upstream: UpstreamName,
    /// The repository there (`library/alpine`).
    pub repo: Repository,
    /// The tag.
    pub tag: Tag,
    /// The manifest (or index) the tag points to.
    pub digest: Digest,
    /// Its media type.
    pub media_type: MediaType,
    /// Platforms on disk: `linux/amd64`, `linux/arm64/v8` (see the module docs).
    pub platforms: Vec<String>,
    /// Every platform the index lists (attestations left out); empty for a single manifest.
    pub index_platforms: Vec<String>,
    /// Bytes on disk for this image: manifests + configs + layers present.
    pub size_bytes: u64,
    /// Every blob of every platform counted is on disk.
    pub complete: bool,
    /// When a client last asked for the tag (persisted rarely; see `pulls.rs`).
    pub last_pulled: Option<SystemTime>,
    /// How many times clients asked for the tag.
    pub pulls: u64,
    /// Never evicted: in the keep list or pinned by an operator.
    pub pinned: bool,
}

impl ImageInfo {
    /// `docker.io/library/alpine:3.20`
    pub fn reference(&self) -> ImageRef {
        ImageRef {
            upstream: self.upstream.clone(),
            repo: self.repo.clone(),
            tag: self.tag.clone(),
        }
    }
}

/// The inventory's numbers for one image from its [`Walk`] (counters and pin not set).
pub fn info_from(disk: &dyn Disk, (upstream, repo, tag, rec): &TagEntry, w: &Walk) -> ImageInfo {
    let size_bytes = w
        .digests()
        .filter_map(|d| disk.blob_size(&d))
        .fold(0u64, u64::saturating_add);
    let blobs_present = w.blobs.iter().all(|(d, _)| disk.blob_size(d).is_some());
    // An index none of whose platforms is on disk, or a manifest we cannot read, has no
    // blobs to speak of: not complete.
    let complete = w.top_present
        && w.missing_manifests.is_empty()
        && w.unmatched.is_empty()
        && !w.blobs.is_empty()
        && blobs_present;
    ImageInfo {
        upstream: upstream.clone(),
        repo: repo.clone(),
        tag: tag.clone(),
        digest: rec.digest,
        media_type: rec.media_type.clone(),
        platforms: w.platforms.iter().map(ToString::to_string).collect(),
        index_platforms: w.index_platforms.iter().map(ToString::to_string).collect(),
        size_bytes,
        complete,
        last_pulled: None,
        pulls: 0,
        pinned: false,
    }
}

/// Every image of `disk` by tag, sorted; `selection` says which platforms count for an
/// image (its pin's list, else [`Selection::Present`]). For `regmirror ls`.
pub fn derive(
    disk: &dyn Disk,
    manifests: &mut Manifests,
    selection: impl Fn(&ImageRef) -> Selection,
) -> Vec<ImageInfo> {
    let records = disk.tag_records();
    derive_from(disk, manifests, &records, selection)
}

fn derive_from(
    disk: &dyn Disk,
    manifests: &mut Manifests,
    records: &[TagEntry],
    selection: impl Fn(&ImageRef) -> Selection,
) -> Vec<ImageInfo> {
    let mut reachable = HashSet::new();
    let out = records
        .iter()
        .map(|entry| {
            let r = ImageRef {
                upstream: entry.0.clone(),
                repo: entry.1.clone(),
                tag: entry.2.clone(),
            };
            let w = manifests.walk(disk, &entry.3.digest, &selection(&r));
            reachable.extend(w.manifests.iter().copied());
            info_from(disk, entry, &w)
        })
        .collect();
    manifests.retain(&reachable);
    out
}

/// A derived list and what it was derived from: (cache changes, pin generation).
type Derived = ((Changes, u64), Vec<ImageInfo>);

/// The mirror's inventory state: what is kept between page views (see the module docs).
#[derive(Debug, Default)]
pub(super) struct Inventory {
    manifests: RefCell<Manifests>,
    /// The tag records, as of `Changes::tags`.
    records: RefCell<Option<(u64, Vec<TagEntry>)>>,
    /// The derived list (without counters), as of these changes and pin generation.
    derived: RefCell<Option<Derived>>,
}

impl Mirror {
    /// Every image the mirror knows by tag, sorted by upstream, repository and tag.
    pub fn inventory(&self) -> Vec<ImageInfo> {
        let changes = self.cache.changes();
        let pins_generation = self.pins_generation();
        let key = (changes, pins_generation);
        let inv = &self.inventory;
        let fresh = inv
            .derived
            .borrow()
            .as_ref()
            .is_some_and(|(k, _)| *k == key);
        if !fresh {
            let mut records = inv.records.borrow_mut();
            if records.as_ref().is_none_or(|(t, _)| *t != changes.tags) {
                *records = Some((changes.tags, self.cache.tag_records()));
            }
            let list = records.as_ref().map(|(_, r)| r.as_slice()).unwrap_or(&[]);
            let mut manifests = inv.manifests.borrow_mut();
            let mut images = derive_from(&*self.cache, &mut manifests, list, |r| {
                self.selection_for(r)
            });
            for i in &mut images {
                i.pinned = self.is_pinned(&i.reference());
            }
            *inv.derived.borrow_mut() = Some((key, images));
        }
        let derived = inv.derived.borrow();
        let mut images = derived.as_ref().map(|(_, i)| i.clone()).unwrap_or_default();
        for i in &mut images {
            if let Some((pulls, last)) = self.pulls.get(&i.upstream, &i.repo, &i.tag) {
                i.pulls = pulls;
                i.last_pulled = Some(last);
            }
        }
        images
    }

    /// One image of the inventory.
    pub fn image(
        &self,
        upstream: &UpstreamName,
        repo: &Repository,
        tag: &Tag,
    ) -> Option<ImageInfo> {
        self.inventory()
            .into_iter()
            .find(|i| i.upstream == *upstream && i.repo == *repo && i.tag == *tag)
    }

    /// What the manifests on disk say of the image whose top manifest is `top`.
    pub(super) fn inventory_walk(&self, top: &Digest, sel: &Selection) -> Walk {
        self.inventory
            .manifests
            .borrow_mut()
            .walk(&*self.cache, top, sel)
    }

    /// What the manifests on disk say of `r` now (its record's digest), or `None` when no
    /// tag record exists.
    pub(super) fn walk_cached(&self, r: &ImageRef, sel: &Selection) -> Option<(TagRecord, Walk)> {
        let rec = self.cache.tag(&r.upstream, &r.repo, &r.tag)?;
        let w = self
            .inventory
            .manifests
            .borrow_mut()
            .walk(&*self.cache, &rec.digest, sel);
        Some((rec, w))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image_ref::Platform;
    use std::cell::Cell;
    use std::collections::HashMap;

    /// Blobs in memory, counting reads.
    #[derive(Default)]
    struct Mem {
        blobs: HashMap<Digest, Vec<u8>>,
        tags: Vec<TagEntry>,
        reads: Cell<usize>,
    }

    impl Disk for Mem {
        fn tag_records(&self) -> Vec<TagEntry> {
            self.tags.clone()
        }
        fn read_small(&self, d: &Digest, limit: usize) -> Option<Vec<u8>> {
            self.reads.set(self.reads.get() + 1);
            self.blobs.get(d).filter(|b| b.len() <= limit).cloned()
        }
        fn blob_size(&self, d: &Digest) -> Option<u64> {
            self.blobs.get(d).map(|b| b.len() as u64)
        }
    }

    impl Mem {
        fn put(&mut self, bytes: impl Into<Vec<u8>>) -> Digest {
            let bytes = bytes.into();
            let d = Digest::of(&bytes);
            self.blobs.insert(d, bytes);
            d
        }
        fn tag(&mut self, repo: &str, tag: &str, d: Digest, mt: MediaType) {
            self.tags.push((
                UpstreamName::docker_hub(),
                Repository::parse(repo).unwrap(),
                Tag::parse(tag).unwrap(),
                TagRecord {
                    digest: d,
                    media_type: mt,
                    checked: SystemTime::UNIX_EPOCH,
                },
            ));
        }
    }

    fn desc(d: &Digest, size: usize) -> String {
        format!(r#"{{"mediaType":"x/y","digest":"{d}","size":{size}}}"#)
    }

    /// An image manifest for `arch` with one layer; `store` says which blobs to keep.
    fn image(m: &mut Mem, arch: &str, layer: &[u8], store_layer: bool) -> (Digest, usize) {
        let config = format!(r#"{{"os":"linux","architecture":"{arch}"}}"#);
        let c = m.put(config.clone());
        let l = Digest::of(layer);
        if store_layer {
            m.put(layer.to_vec());
        }
        let manifest = format!(
            r#"{{"schemaVersion":2,"config":{},"layers":[{}]}}"#,
            desc(&c, config.len()),
            desc(&l, layer.len())
        );
        let len = manifest.len();
        (m.put(manifest), len)
    }

    #[test]
    fn a_multi_platform_image_counts_the_platforms_on_disk() {
        let mut m = Mem::default();
        let (amd, amd_len) = image(&mut m, "amd64", &[1; 100], true);
        let arm_manifest_missing = Digest::of(b"not stored");
        let index = format!(
            r#"{{"schemaVersion":2,"manifests":[
              {{"digest":"{amd}","size":{amd_len},"platform":{{"os":"linux","architecture":"amd64"}}}},
              {{"digest":"{arm_manifest_missing}","size":5,"platform":{{"os":"linux","architecture":"arm64","variant":"v8"}}}},
              {{"digest":"{amd}","size":1,"platform":{{"os":"unknown","architecture":"unknown"}}}}]}}"#
        );
        let idx = m.put(index.clone());
        m.tag("library/a", "1", idx, MediaType::OCI_INDEX);
        let mut ms = Manifests::new();
        let all = derive(&m, &mut ms, |_| Selection::Present);
        let i = &all[0];
        assert_eq!(i.platforms, ["linux/amd64"]);
        assert_eq!(i.index_platforms, ["linux/amd64", "linux/arm64/v8"]);
        assert!(i.complete, "what was pulled is all there");
        let config_len = r#"{"os":"linux","architecture":"amd64"}"#.len() as u64;
        assert_eq!(
            i.size_bytes,
            index.len() as u64 + amd_len as u64 + config_len + 100
        );
        // Pinned for both platforms: the arm64 manifest is missing.
        let both = Selection::Only(vec![
            Platform::parse("linux/amd64").unwrap(),
            Platform::parse("linux/arm64").unwrap(),
        ]);
        let i = &derive(&m, &mut ms, |_| both.clone())[0];
        assert!(!i.complete);
        let w = ms.walk(&m, &idx, &Selection::All);
        assert_eq!(w.missing_manifests, vec![arm_manifest_missing]);
    }

    #[test]
    fn a_missing_layer_makes_an_image_incomplete_and_manifests_are_read_once() {
        let mut m = Mem::default();
        let (d, _) = image(&mut m, "arm64", &[7; 10], false);
        m.tag("library/b", "x", d, MediaType::DOCKER_MANIFEST);
        let mut ms = Manifests::new();
        let i = &derive(&m, &mut ms, |_| Selection::Present)[0];
        assert_eq!(i.platforms, ["linux/arm64"]);
        assert!(!i.complete);
        let reads = m.reads.get();
        derive(&m, &mut ms, |_| Selection::Present);
        assert_eq!(m.reads.get(), reads, "parsed manifests are kept");
        m.put(vec![7; 10]);
        assert!(derive(&m, &mut ms, |_| Selection::Present)[0].complete);
    }

    #[test]
    fn a_tag_whose_manifest_is_gone_is_listed_empty_and_garbage_is_not_an_image() {
        let mut m = Mem::default();
        m.tag(
            "library/c",
            "gone",
            Digest::of(b"x"),
            MediaType::OCI_MANIFEST,
        );
        let junk = m.put(b"\x00\x01 not json".to_vec());
        m.tag("library/c", "junk", junk, MediaType::OCI_MANIFEST);
        let all = derive(&m, &mut Manifests::new(), |_| Selection::Present);
        assert!(all.iter().all(|i| !i.complete && i.platforms.is_empty()));
        assert_eq!(all[0].size_bytes, 0);
    }
}
