//! An operator evicting one image: its tag record goes, and so do its manifests and blobs
//! that no other tag's image uses. A pinned image is refused (unpin it first).

use super::inventory::Selection;
use super::pins::PinSource;
use super::Mirror;
use crate::image_ref::ImageRef;
use std::collections::HashSet;

/// Why an image was not evicted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotEvicted {
    /// The mirror does not know the image by tag.
    Unknown,
    /// It is pinned, by the keep list or an operator.
    Pinned(PinSource),
}

impl Mirror {
    /// Evicts `image` (see the module docs); the bytes freed.
    pub fn evict_image(&self, image: &ImageRef) -> Result<u64, NotEvicted> {
        if let Some((_, source)) = self.pins.find(image) {
            return Err(NotEvicted::Pinned(source));
        }
        let rec = self
            .cache
            .tag(&image.upstream, &image.repo, &image.tag)
            .ok_or(NotEvicted::Unknown)?;
        let mine = self.inventory_walk(&rec.digest, &Selection::All);
        let mut others = HashSet::new();
        for (u, r, t, other) in self.cache.tag_records() {
            if u == image.upstream && r == image.repo && t == image.tag {
                continue;
            }
            others.extend(
                self.inventory_walk(&other.digest, &Selection::All)
                    .digests(),
            );
        }
        self.cache
            .remove_tag(&image.upstream, &image.repo, &image.tag);
        self.pulls.forget(&image.upstream, &image.repo, &image.tag);
        let victims: Vec<_> = mine.digests().filter(|d| !others.contains(d)).collect();
        let freed = self.cache.remove_blobs(&victims);
        log::info!(
            "evicted {image} on request: {} blobs, {} bytes",
            victims.len(),
            freed
        );
        Ok(freed)
    }
}
