//! Prefetch: fetching an image before anyone pulls it, through the same paths a client's
//! pull takes — manifests through the shared manifest flights, blobs through
//! [`Cache::lookup`](crate::cache::Cache::lookup) and the fill task — so a prefetched image
//! is exactly what a pull would have cached, and a prefetch and a client pulling the same
//! image at once cost one upstream fetch.
//!
//! One image in two steps, so a keep list can be sized before any layer is fetched:
//! [`Mirror::resolve`] asks where the tag points with a `HEAD` (free on Docker Hub) and
//! fetches only the manifests not on disk — each GET held back while the allowance is low
//! (`allowance.rs`) — and records the tag; [`Mirror::fetch_blobs`] then fills the
//! selected platforms' configs and layers one after the other. When the upstream cannot be
//! reached, an image whose tag record and manifests are on disk is checked from the disk.
//!
//! Operators' requests go through one queue, worked by one task: prefetches are
//! background work, and one at a time keeps a Pi's link and disk for its clients.

use super::flight::Role;
use super::inventory::Walk;
use super::jobs::Origin;
use super::manifests::{settled, Fetched};
use super::{fill, pins, Mirror, Target};
use crate::cache::fill::{FillFailure, Phase};
use crate::cache::Lookup;
use crate::error::UpstreamError;
use crate::keep::Entry;
use crate::manifest;
use crate::reference::{Digest, Reference};
use std::rc::Rc;

/// Most operator prefetches queued and not yet finished: each is one image an operator
/// named; beyond this a request is refused (it is a script gone wrong, not an office).
pub const MAX_QUEUED: usize = 256;

/// Lookups of one blob at most: the first, and again after a fill it followed was
/// abandoned or asked through another repository (as a client's request does).
const MAX_LOOKUPS: u32 = 3;

/// An image whose manifests are known.
#[derive(Debug)]
pub(super) struct Resolved {
    pub(super) target: Target,
    pub(super) digest: Digest,
    pub(super) walk: Walk,
}

impl Mirror {
    /// Queues a prefetch of `entry` for the worker; returns its job id, or `None` when
    /// [`MAX_QUEUED`] are already waiting.
    pub fn queue_prefetch(&self, entry: Entry, origin: Origin) -> Option<u64> {
        if self.queue.borrow().len() >= MAX_QUEUED {
            return None;
        }
        let id = self
            .jobs
            .add(entry.image.clone(), entry.platforms.clone(), origin);
        self.queue.borrow_mut().push_back((id, entry, origin));
        self.queued.notify(1);
        Some(id)
    }

    /// The worker: takes queued prefetches one at a time, for as long as the mirror lives.
    pub(super) async fn prefetch_worker(self: Rc<Self>) {
        loop {
            let (id, entry, origin) = super::next_queued(&self.queue, &self.queued).await;
            let outcome = self.prefetch_one(id, &entry, origin).await;
            if let Err(why) = &outcome {
                log::warn!("prefetch of {}: {why}", entry.image);
            } else {
                log::info!("prefetched {entry}");
            }
            self.jobs.finish(id, outcome);
        }
    }

    /// One operator prefetch (or pin) from start to end.
    async fn prefetch_one(&self, id: u64, entry: &Entry, origin: Origin) -> Result<(), String> {
        let resolved = self.resolve(id, entry).await?;
        if origin == Origin::Pin {
            self.cache.index_ready().await;
            if let Err(why) = self.pinned_fit(false) {
                // The pin was made before its size was known: take it back.
                let _ = self.pins.unpin(&entry.image);
                self.apply_pins();
                return Err(format!("not pinned: {why}"));
            }
        }
        if self.is_pinned(&entry.image) {
            self.apply_pins(); // its blobs are known now: none may be evicted
        }
        let fetched = self.fetch_blobs(id, &resolved).await;
        if self.is_pinned(&entry.image) {
            self.apply_pins();
        }
        fetched
    }

    /// Where `entry`'s tag points and its manifests, fetched if not on disk; the tag is
    /// recorded as a pull would record it (see the module docs).
    pub(super) async fn resolve(&self, id: u64, entry: &Entry) -> Result<Resolved, String> {
        let image = &entry.image;
        let registry = self.upstreams.get(&image.upstream).ok_or_else(|| {
            format!(
                "{} is not an upstream of this mirror (add it with --upstream)",
                image.upstream
            )
        })?;
        let t = Target {
            registry,
            repo: image.repo.clone(),
        };
        self.jobs.fetching(id, (0, 0), (0, 0), None);
        let work = self.work(&t);
        let tag = Reference::Tag(image.tag.clone());
        let (digest, offline) = match t.registry.manifest(&t.repo, &tag, true).await {
            Ok(head) => (head.digest, None),
            Err(UpstreamError::NotFound) => return Err("upstream has no such tag".into()),
            Err(e) => match self.cache.tag(&image.upstream, &image.repo, &image.tag) {
                Some(rec) => (rec.digest, Some(e)),
                None => return Err(e.to_string()),
            },
        };
        let bytes = match (work.read(&digest), &offline) {
            (Some(bytes), _) => bytes,
            (None, Some(e)) => return Err(e.to_string()),
            (None, None) => {
                self.gate(id, &t, entry).await;
                let (flight, _) = work.digest(digest);
                let f = settled(flight.wait().await).map_err(|e| e.to_string())?;
                f.bytes.clone()
            }
        };
        if let Some(e) = &offline {
            log::warn!("prefetch of {image}: {e}; checking what is on disk");
        } else {
            let fetched = Fetched {
                digest,
                media_type: manifest::sniff(&bytes),
                bytes,
                from_upstream: false,
            };
            work.remember(&image.tag, &fetched);
        }
        let sel = pins::selection(entry);
        let mut walk = self.inventory_walk(&digest, &sel);
        if !walk.unmatched.is_empty() {
            let has: Vec<String> = walk.index_platforms.iter().map(|p| p.to_string()).collect();
            let missing: Vec<String> = walk.unmatched.iter().map(|p| p.to_string()).collect();
            return Err(format!(
                "the image has no {} (it has {})",
                missing.join(", "),
                has.join(", ")
            ));
        }
        if !walk.missing_manifests.is_empty() {
            if let Some(e) = offline {
                return Err(e.to_string());
            }
            for m in walk.missing_manifests.clone() {
                self.gate(id, &t, entry).await;
                let (flight, _): (_, Role) = work.digest(m);
                settled(flight.wait().await).map_err(|e| e.to_string())?;
            }
            walk = self.inventory_walk(&digest, &sel);
        }
        Ok(Resolved {
            target: t,
            digest,
            walk,
        })
    }

    /// Waits while a manifest GET would spend the last of the upstream's allowance, saying
    /// so in the job's state, and looks again with a free HEAD every recheck interval.
    async fn gate(&self, id: u64, t: &Target, entry: &Entry) {
        let recheck = self
            .settings
            .get()
            .map_or(super::allowance::ALLOWANCE_RECHECK, |s| s.allowance_recheck);
        let mut said = false;
        while let Some(a) = self
            .live_allowance(&t.registry)
            .filter(|a| a.holds_prefetch())
        {
            let reason = a.holding_reason();
            if !said {
                log::info!("prefetch of {} waits: {reason}", entry.image);
                said = true;
            }
            self.jobs.waiting(id, reason);
            smol::Timer::after(recheck).await;
            let tag = Reference::Tag(entry.image.tag.clone());
            let _ = t.registry.manifest(&t.repo, &tag, true).await;
        }
        if said {
            log::info!("prefetch of {} goes on", entry.image);
            self.jobs.fetching(id, (0, 0), (0, 0), None);
        }
    }

    /// Fills every config and layer of a resolved image not on disk, one at a time.
    pub(super) async fn fetch_blobs(&self, id: u64, r: &Resolved) -> Result<(), String> {
        let blobs = &r.walk.blobs;
        let total_bytes = blobs.iter().map(|b| b.1).fold(0u64, u64::saturating_add);
        let total = blobs.len() as u64;
        let present = |d: &Digest| self.cache.blob_size(d).is_some();
        let (mut done_bytes, mut done) = (0u64, 0u64);
        for (_, size) in blobs.iter().filter(|(d, _)| present(d)) {
            done_bytes = done_bytes.saturating_add(*size);
            done += 1;
        }
        self.jobs
            .fetching(id, (done_bytes, total_bytes), (done, total), None);
        for (d, size) in blobs {
            if present(d) {
                continue;
            }
            self.fetch_blob(id, &r.target, d, (done_bytes, total_bytes), (done, total))
                .await
                .map_err(|why| format!("blob {d}: {why}"))?;
            done_bytes = done_bytes.saturating_add(*size);
            done += 1;
            self.jobs
                .fetching(id, (done_bytes, total_bytes), (done, total), None);
        }
        if r.walk.blobs.is_empty() {
            return Err(format!("{} names no blobs this mirror can read", r.digest));
        }
        Ok(())
    }

    /// One blob, as a pull would get it: cached, by following the fill in progress, or by
    /// leading one.
    async fn fetch_blob(
        &self,
        id: u64,
        t: &Target,
        d: &Digest,
        bytes: (u64, u64),
        blobs: (u64, u64),
    ) -> Result<(), String> {
        for attempt in 1..=MAX_LOOKUPS {
            let fill = match self.cache.lookup(d).map_err(|e| e.to_string())? {
                Lookup::Hit(..) => return Ok(()),
                Lookup::Follow(f) => f,
                Lookup::Lead(permit) => {
                    let f = permit.fill();
                    self.executor.spawn(fill::run(permit, t.clone())).detach();
                    f
                }
            };
            self.jobs.fetching(id, bytes, blobs, Some(fill.clone()));
            match fill.wait(Phase::is_final).await {
                Phase::Committed { .. } => return Ok(()),
                Phase::Failed(f) if attempt < MAX_LOOKUPS && may_retry(&f, t) => {}
                Phase::Failed(FillFailure::NotFound { .. }) => {
                    return Err("upstream does not have it".into())
                }
                Phase::Failed(FillFailure::Upstream(e)) => return Err(e.to_string()),
                Phase::Failed(FillFailure::Local(e)) => return Err(e),
                Phase::Failed(FillFailure::Abandoned) => {
                    return Err("the fetch was abandoned".into())
                }
                Phase::Pass(_) | Phase::Streamed { .. } => {
                    return Err("it does not fit the cache's budget now".into())
                }
                Phase::Connecting | Phase::Writing { .. } => {
                    return Err("the fetch ended early".into())
                }
            }
        }
        Err("the fetch failed again and again".into())
    }
}

/// Whether a failed fill another request led may succeed when asked again through `t`.
fn may_retry(f: &FillFailure, t: &Target) -> bool {
    match f {
        FillFailure::NotFound { upstream, repo } => {
            upstream != t.registry.name() || *repo != t.repo
        }
        FillFailure::Abandoned => true,
        FillFailure::Upstream(_) | FillFailure::Local(_) => false,
    }
}
