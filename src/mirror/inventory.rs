//! What the mirror holds, per image (`upstream/repository:tag`): derived from the tag
//! records and the manifests on disk — no database — with the per-image pull counters and
//! pins laid over it. [`Mirror::inventory`] and [`Mirror::image`] for the status page and
//! the JSON; [`derive`] for `regmirror ls`, which reads a cache directory with the mirror
//! stopped.
//!
//! Cost on a Pi: manifests are content-addressed, so each is read (at most
//! [`MAX_MANIFEST_BYTES`]) and parsed once and its structure kept ([`Manifests`]); a
//! single manifest's config is read once, for its platform. Sizes come from the cache's
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

use super::Mirror;
use crate::cache::tags::{TagEntry, TagRecord};
use crate::cache::{Cache, Changes};
use crate::image_ref::{ImageRef, Platform};
use crate::media_type::MediaType;
use crate::reference::{Digest, Repository, Tag, UpstreamName};
use crate::upstream::MAX_MANIFEST_BYTES;
use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
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

/// What the inventory reads: the running [`Cache`], or a cache directory (`regmirror ls`).
pub trait Disk {
    /// Every tag record, sorted.
    fn tag_records(&self) -> Vec<TagEntry>;
    /// A stored blob's bytes if it is at most `limit` bytes, without recording a use.
    fn read_small(&self, d: &Digest, limit: usize) -> Option<Vec<u8>>;
    /// The size of a cached blob.
    fn blob_size(&self, d: &Digest) -> Option<u64>;
}

impl Disk for Cache {
    fn tag_records(&self) -> Vec<TagEntry> {
        Cache::tag_records(self)
    }
    fn read_small(&self, d: &Digest, limit: usize) -> Option<Vec<u8>> {
        self.read_quietly(d, limit)
    }
    fn blob_size(&self, d: &Digest) -> Option<u64> {
        Cache::blob_size(self, d)
    }
}

/// Which of an index's platforms an image is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    /// Those whose manifest is on disk (what clients pulled).
    Present,
    /// Every platform the index lists but attestations (`unknown/unknown`).
    All,
    /// These (each must be found in the index).
    Only(Vec<Platform>),
}

/// One image's manifests and blobs as far as the manifests on disk tell.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Walk {
    /// The top manifest and the selected platforms' manifests (on disk or not).
    pub manifests: Vec<Digest>,
    /// Selected platforms' manifests not on disk: their blobs are not known yet.
    pub missing_manifests: Vec<Digest>,
    /// Configs and layers of the selected platforms whose manifest is on disk, each once,
    /// with the size their descriptor gives.
    pub blobs: Vec<(Digest, u64)>,
    /// Platforms selected whose manifest is on disk (for a single manifest: its config's).
    pub platforms: Vec<Platform>,
    /// Every platform the index lists, attestations left out.
    pub index_platforms: Vec<Platform>,
    /// Platforms of an [`Selection::Only`] that the index does not offer.
    pub unmatched: Vec<Platform>,
    /// The top manifest is on disk.
    pub top_present: bool,
}

impl Walk {
    /// Every digest of the image: what a pin protects.
    pub fn digests(&self) -> impl Iterator<Item = Digest> + '_ {
        self.manifests
            .iter()
            .copied()
            .chain(self.blobs.iter().map(|(d, _)| *d))
    }
}

/// An index entry.
#[derive(Debug, Clone)]
struct Child {
    digest: Digest,
    platform: Option<Platform>,
}

/// What a manifest on disk says, parsed once (its bytes never change).
#[derive(Debug, Clone)]
enum Parsed {
    Index(Vec<Child>),
    Image {
        /// Config first, then layers, each once, with descriptor sizes.
        blobs: Vec<(Digest, u64)>,
        config: Option<Digest>,
        /// From the config (or a schema 1 manifest); `None` until the config is cached.
        platform: Option<Platform>,
    },
    /// Not a manifest we can read (garbage, or a type without blobs we know).
    Unknown,
}

/// The parsed manifests, by digest: the cache of what never changes.
#[derive(Debug, Default)]
pub struct Manifests {
    parsed: HashMap<Digest, Parsed>,
}

impl Manifests {
    /// An empty cache.
    pub fn new() -> Manifests {
        Manifests::default()
    }

    /// Manifest `d` parsed; `None` when it is not on disk (not remembered: it may come).
    fn get(&mut self, disk: &dyn Disk, d: &Digest) -> Option<Parsed> {
        if let Some(p) = self.parsed.get_mut(d) {
            // A single manifest's platform is known once its config is on disk.
            if let Parsed::Image {
                config: Some(c),
                platform: platform @ None,
                ..
            } = p
            {
                *platform = config_platform(disk, c);
            }
            return Some(p.clone());
        }
        let bytes = disk.read_small(d, MAX_MANIFEST_BYTES)?;
        let parsed = parse(disk, &bytes);
        self.parsed.insert(*d, parsed.clone());
        Some(parsed)
    }

    /// Forgets every manifest but those in `keep` (no longer reachable from a tag).
    pub fn retain(&mut self, keep: &HashSet<Digest>) {
        self.parsed.retain(|d, _| keep.contains(d));
    }

    /// What the manifests on disk say of the image whose top manifest is `top`.
    pub fn walk(&mut self, disk: &dyn Disk, top: &Digest, sel: &Selection) -> Walk {
        let mut w = Walk {
            manifests: vec![*top],
            ..Walk::default()
        };
        let Some(parsed) = self.get(disk, top) else {
            return w;
        };
        w.top_present = true;
        let mut seen = HashSet::new();
        match parsed {
            Parsed::Image {
                blobs, platform, ..
            } => {
                add_blobs(&mut w, &mut seen, &blobs);
                w.platforms.extend(platform);
            }
            Parsed::Unknown => {}
            Parsed::Index(children) => {
                let listed = |c: &&Child| c.platform.as_ref().is_some_and(|p| !p.is_unknown());
                w.index_platforms = children
                    .iter()
                    .filter(listed)
                    .filter_map(|c| c.platform.clone())
                    .collect();
                let chosen: Vec<&Child> = match sel {
                    Selection::Present => children
                        .iter()
                        .filter(listed)
                        .filter(|c| disk.blob_size(&c.digest).is_some())
                        .collect(),
                    Selection::All => children.iter().filter(listed).collect(),
                    Selection::Only(wanted) => {
                        let mut chosen = Vec::new();
                        for p in wanted {
                            let found = children
                                .iter()
                                .find(|c| c.platform.as_ref().is_some_and(|f| p.selects(f)));
                            match found {
                                Some(c) => chosen.push(c),
                                None => w.unmatched.push(p.clone()),
                            }
                        }
                        chosen
                    }
                };
                for c in chosen {
                    if w.manifests.contains(&c.digest) {
                        continue;
                    }
                    w.manifests.push(c.digest);
                    match self.get(disk, &c.digest) {
                        Some(Parsed::Image { blobs, .. }) => {
                            add_blobs(&mut w, &mut seen, &blobs);
                            w.platforms.extend(c.platform.clone());
                        }
                        Some(_) => w.platforms.extend(c.platform.clone()),
                        None => w.missing_manifests.push(c.digest),
                    }
                }
            }
        }
        w
    }
}

fn add_blobs(w: &mut Walk, seen: &mut HashSet<Digest>, blobs: &[(Digest, u64)]) {
    for (d, size) in blobs {
        if seen.insert(*d) {
            w.blobs.push((*d, *size));
        }
    }
}

/// Parses manifest bytes: an index's entries, or an image's config and layers.
fn parse(disk: &dyn Disk, bytes: &[u8]) -> Parsed {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(bytes) else {
        return Parsed::Unknown;
    };
    let descriptor = |d: &serde_json::Value| -> Option<(Digest, u64)> {
        let digest = Digest::parse(d.get("digest")?.as_str()?).ok()?;
        Some((digest, d.get("size").and_then(|s| s.as_u64()).unwrap_or(0)))
    };
    if let Some(entries) = v.get("manifests").and_then(|m| m.as_array()) {
        let children = entries
            .iter()
            .filter_map(|e| {
                Some(Child {
                    digest: descriptor(e)?.0,
                    platform: e.get("platform").and_then(Platform::from_json),
                })
            })
            .collect();
        return Parsed::Index(children);
    }
    if let Some(fs_layers) = v.get("fsLayers").and_then(|l| l.as_array()) {
        // Schema 1: layers by `blobSum`, no sizes, the architecture in the manifest.
        let blobs = fs_layers
            .iter()
            .filter_map(|l| Digest::parse(l.get("blobSum")?.as_str()?).ok())
            .map(|d| (d, 0))
            .collect();
        let platform = v
            .get("architecture")
            .and_then(|a| a.as_str())
            .and_then(|a| Platform::parse(&format!("linux/{a}")).ok());
        return Parsed::Image {
            blobs,
            config: None,
            platform,
        };
    }
    let config = v.get("config").and_then(descriptor);
    let layers = v.get("layers").and_then(|l| l.as_array());
    if config.is_none() && layers.is_none() {
        return Parsed::Unknown;
    }
    let mut blobs: Vec<(Digest, u64)> = config.into_iter().collect();
    blobs.extend(layers.into_iter().flatten().filter_map(descriptor));
    let config = config.map(|c| c.0);
    Parsed::Image {
        blobs,
        platform: config.as_ref().and_then(|c| config_platform(disk, c)),
        config,
    }
}

/// The platform a cached image config names.
fn config_platform(disk: &dyn Disk, config: &Digest) -> Option<Platform> {
    let bytes = disk.read_small(config, MAX_MANIFEST_BYTES)?;
    let v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    Platform::from_json(&v)
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
    use std::cell::Cell;

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
