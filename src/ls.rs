//! `regmirror ls`: what a cache directory holds, one image a line, read from the directory
//! itself — tag records, manifests, the pull counters and pins the mirror saved — so it
//! works with the mirror stopped (and shows what the mirror last saved while it runs).
//! The same derivation as the status page's (`mirror::inventory`).

use crate::cache::store::{Small, Store};
use crate::cache::tags::{TagEntry, Tags};
use crate::config::human_size;
use crate::image_ref::ImageRef;
use crate::keep::{self, Entry};
use crate::mirror::inventory::{derive, Disk, ImageInfo, Manifests, Selection};
use crate::mirror::pins::{selection, KEEP_COPY_FILE, PINS_FILE};
use crate::mirror::pulls::{self, PULLS_FILE, STATE_DIR};
use crate::reference::Digest;
use std::path::Path;
use std::time::SystemTime;

/// A cache directory read directly.
struct CacheDir {
    store: Store,
    tags: Tags,
}

impl Disk for CacheDir {
    fn tag_records(&self) -> Vec<TagEntry> {
        self.tags.all()
    }
    fn read_small(&self, d: &Digest, limit: usize) -> Option<Vec<u8>> {
        match self.store.read_small(d, limit) {
            Ok(Small::Bytes(b)) => Some(b),
            _ => None,
        }
    }
    fn blob_size(&self, d: &Digest) -> Option<u64> {
        std::fs::metadata(self.store.blob_path(d))
            .ok()
            .map(|m| m.len())
    }
}

/// The pins the mirror saved: its keep list's copy and the operator pins.
fn saved_pins(root: &Path) -> Vec<Entry> {
    let dir = root.join(STATE_DIR);
    [KEEP_COPY_FILE, PINS_FILE]
        .iter()
        .map(|f| dir.join(f))
        .filter(|p| p.exists())
        .flat_map(|p| keep::read(&p).unwrap_or_default())
        .collect()
}

/// The images of the cache at `root`, with counters and pins as last saved.
pub fn images(root: &Path) -> Result<Vec<ImageInfo>, String> {
    let store = Store::open_existing(root).map_err(|e| e.to_string())?;
    let disk = CacheDir {
        store,
        tags: Tags::new(root.join("tags")),
    };
    let pins = saved_pins(root);
    let pin_of = |r: &ImageRef| pins.iter().find(|e| e.image == *r);
    let mut list = derive(&disk, &mut Manifests::new(), |r| {
        pin_of(r).map_or(Selection::Present, selection)
    });
    let counts = pulls::read(&root.join(STATE_DIR).join(PULLS_FILE)).unwrap_or_default();
    for i in &mut list {
        i.pinned = pin_of(&i.reference()).is_some();
        let key = (i.upstream.clone(), i.repo.clone(), i.tag.clone());
        if let Some((n, last)) = counts.get(&key) {
            i.pulls = *n;
            i.last_pulled = Some(*last);
        }
    }
    Ok(list)
}

/// How long ago, for people: `3m ago`, `5h ago`, `12d ago`.
fn ago(t: SystemTime, now: SystemTime) -> String {
    let s = now.duration_since(t).unwrap_or_default().as_secs();
    match s {
        s if s < 60 => "just now".into(),
        s if s < 3600 => format!("{}m ago", s / 60),
        s if s < 86400 => format!("{}h ago", s / 3600),
        s => format!("{}d ago", s / 86400),
    }
}

/// The table `regmirror ls` prints.
pub fn table(images: &[ImageInfo], now: SystemTime) -> String {
    let header = [
        "IMAGE",
        "DIGEST",
        "PLATFORMS",
        "SIZE",
        "LAST PULL",
        "PULLS",
        "PINNED",
        "COMPLETE",
    ];
    let rows: Vec<[String; 8]> = images
        .iter()
        .map(|i| {
            let hex = i.digest.hex();
            [
                i.reference().to_string(),
                format!("sha256:{}", &hex[..12]),
                if i.platforms.is_empty() {
                    "-".into()
                } else {
                    i.platforms.join(",")
                },
                human_size(i.size_bytes),
                i.last_pulled.map_or("never".into(), |t| ago(t, now)),
                i.pulls.to_string(),
                if i.pinned { "yes" } else { "no" }.into(),
                if i.complete { "yes" } else { "no" }.into(),
            ]
        })
        .collect();
    let mut width = header.map(str::len);
    for r in &rows {
        for (w, cell) in width.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(width)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        format!("{}\n", padded.join("  ").trim_end())
    };
    let mut out = line(header.to_vec());
    for r in &rows {
        out.push_str(&line(r.iter().map(String::as_str).collect()));
    }
    let total: u64 = images.iter().map(|i| i.size_bytes).sum();
    out.push_str(&format!(
        "{} images, {} (a layer shared by two images counts in each)\n",
        images.len(),
        human_size(total)
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn relative_times() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let at = |s| now - Duration::from_secs(s);
        assert_eq!(ago(at(5), now), "just now");
        assert_eq!(ago(at(300), now), "5m ago");
        assert_eq!(ago(at(7200), now), "2h ago");
        assert_eq!(ago(at(3 * 86400), now), "3d ago");
        assert_eq!(ago(now + Duration::from_secs(9), now), "just now");
    }

    #[test]
    fn an_empty_cache_is_a_header_and_a_total() {
        let t = table(&[], SystemTime::now());
        assert!(t.starts_with("IMAGE  DIGEST"), "{t}");
        assert!(t.ends_with("0 images, 0 B (a layer shared by two images counts in each)\n"));
    }
}
