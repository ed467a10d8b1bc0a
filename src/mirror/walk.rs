//! Reading an image's structure from the manifests on disk: which manifests and blobs an
//! image (a top manifest, possibly an index) consists of for a [`Selection`] of
//! platforms — the [`Walk`] the inventory, the pins and a prefetch all start from.
//!
//! Manifests are content-addressed: each is read (at most [`MAX_MANIFEST_BYTES`]) and
//! parsed once, and its structure kept in [`Manifests`]; a single manifest's config is read
//! once, for its platform. A manifest not on disk is not remembered (it may come).

use crate::cache::Cache;
use crate::image_ref::Platform;
use crate::media_type::MediaType;
use crate::reference::Digest;
use crate::upstream::MAX_MANIFEST_BYTES;
use std::collections::{HashMap, HashSet};
/// What the inventory reads: the running [`Cache`], or a cache directory (`regmirror ls`).
pub trait Disk {
    /// Every tag record, sorted.
    fn tag_records(&self) -> Vec<crate::cache::tags::TagEntry>;
    /// A stored blob's bytes if it is at most `limit` bytes, without recording a use.
    fn read_small(&self, d: &Digest, limit: usize) -> Option<Vec<u8>>;
    /// The size of a cached blob.
    fn blob_size(&self, d: &Digest) -> Option<u64>;
}

impl Disk for Cache {
    fn tag_records(&self) -> Vec<crate::cache::tags::TagEntry> {
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
        if !self.parsed.contains_key(d) {
            let bytes = disk.read_small(d, MAX_MANIFEST_BYTES)?;
            self.parsed.insert(*d, parse(&bytes));
        }
        let p = self.parsed.get_mut(d)?;
        // A single manifest's platform is known once its config is on disk.
        if let Parsed::Image {
            config: Some(c),
            platform: platform @ None,
            ..
        } = p
        {
            *platform = config_platform(disk, c);
        }
        Some(p.clone())
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

/// The config and layers an image manifest names, config first, each once, with their
/// descriptors' sizes (0 where a schema 1 manifest gives none); `None` for an index (by
/// shape or by its declared `mediaType`: what a client is served it as) or anything else.
pub fn image_blobs(bytes: &[u8]) -> Option<Vec<(Digest, u64)>> {
    let v = serde_json::from_slice::<serde_json::Value>(bytes).ok()?;
    let declared = v.get("mediaType").and_then(|m| m.as_str());
    if v.get("manifests").is_some()
        || declared
            .and_then(MediaType::parse)
            .is_some_and(|t| t.is_index())
    {
        return None;
    }
    match parse_value(&v) {
        Parsed::Image { blobs, .. } => {
            let mut seen = HashSet::new();
            Some(blobs.into_iter().filter(|(d, _)| seen.insert(*d)).collect())
        }
        Parsed::Index(_) | Parsed::Unknown => None,
    }
}

/// Parses manifest bytes: an index's entries, or an image's config and layers (a schema 2
/// image's platform is left for [`Manifests::get`] to read from its config).
fn parse(bytes: &[u8]) -> Parsed {
    match serde_json::from_slice::<serde_json::Value>(bytes) {
        Ok(v) => parse_value(&v),
        Err(_) => Parsed::Unknown,
    }
}

/// [`parse`] of a JSON value.
fn parse_value(v: &serde_json::Value) -> Parsed {
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
    Parsed::Image {
        blobs,
        config: config.map(|c| c.0),
        platform: None,
    }
}

/// The platform a cached image config names.
fn config_platform(disk: &dyn Disk, config: &Digest) -> Option<Platform> {
    let bytes = disk.read_small(config, MAX_MANIFEST_BYTES)?;
    let v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    Platform::from_json(&v)
}

#[cfg(test)]
mod tests {
    use super::image_blobs;

    #[test]
    fn image_blobs_are_the_config_then_the_layers_once_and_an_index_has_none() {
        let (a, b) = (
            format!("sha256:{}", "a".repeat(64)),
            format!("sha256:{}", "b".repeat(64)),
        );
        let image = format!(
            r#"{{"schemaVersion":2,"config":{{"digest":"{a}","size":7}},"layers":[{{"digest":"{b}","size":9}},{{"digest":"{a}","size":7}},{{"digest":"bad","size":1}}]}}"#
        );
        let got: Vec<(String, u64)> = image_blobs(image.as_bytes())
            .unwrap()
            .into_iter()
            .map(|(d, s)| (d.to_string(), s))
            .collect();
        assert_eq!(got, vec![(a.clone(), 7), (b, 9)]);
        let index = format!(r#"{{"schemaVersion":2,"manifests":[{{"digest":"{a}","size":7}}]}}"#);
        assert_eq!(image_blobs(index.as_bytes()), None);
        let declared = image.replace(
            r#""schemaVersion":2,"#,
            r#""schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","#,
        );
        assert_eq!(image_blobs(declared.as_bytes()), None, "served as an index");
        assert_eq!(image_blobs(b"not json"), None);
    }
}
