//! The keep list's life — and the operator pins', which are kept the same way: every
//! pinned image is resolved at start, the whole list is sized against the budget before a
//! layer is fetched, pinned, and fetched; then revalidated every `--keep-refresh` (by
//! `HEAD`, free on Docker Hub — fetched again only when a digest changed), sooner
//! ([`KEEP_RETRY`]) after a round in which an image could not be resolved. SIGHUP re-reads
//! the file ([`Mirror::reload`]).
//!
//! A keep list that cannot fit the budget at start stops the mirror with a start-up error
//! (exit status 2, like a bad configuration file: restarting cannot help). Operator pins
//! that no longer fit (a smaller `--max-size`) are only logged — the mirror must run for
//! them to be unpinned.

use super::jobs::Origin;
use super::pins;
use super::Mirror;
use crate::config::human_size;
use crate::keep::Entry;
use crate::upstream::Upstreams;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

/// After a keep round in which an image could not be resolved (the internet was down at
/// start), the next round comes after this rather than a whole `--keep-refresh`.
pub const KEEP_RETRY: Duration = Duration::from_secs(10 * 60);

/// Checks that every image of a keep list names a configured upstream.
pub fn check_upstreams(entries: &[Entry], upstreams: &Upstreams) -> Result<(), String> {
    for e in entries {
        let u = &e.image.upstream;
        if upstreams.get(u).is_none() {
            return Err(format!(
                "{}: {u} is not an upstream of this mirror; add it with --upstream {u}=https://{u}",
                e.image
            ));
        }
    }
    Ok(())
}

impl Mirror {
    /// Keeps the keep list: a first round now, then one every `refresh` (see the module
    /// docs). Run as a task of its own.
    pub(super) async fn keeper(self: Rc<Self>, refresh: Duration) {
        let mut first = true;
        loop {
            let all_resolved = self.keep_round(first).await;
            if first && self.failure().is_some() {
                return;
            }
            first = false;
            let next = if all_resolved {
                refresh
            } else {
                refresh.min(KEEP_RETRY)
            };
            smol::Timer::after(next).await;
        }
    }

    /// One round over the keep list; `false` if an image could not be resolved.
    pub(super) async fn keep_round(&self, first: bool) -> bool {
        let mut jobs = Vec::new();
        for (e, source) in self.pins.entries() {
            if !self.jobs.is_pending(&e.image) {
                let origin = match source {
                    pins::PinSource::Keep => Origin::Keep,
                    pins::PinSource::Admin => Origin::Pin,
                };
                let id = self.jobs.add(e.image.clone(), e.platforms.clone(), origin);
                jobs.push((id, e));
            }
        }
        if jobs.is_empty() {
            return true;
        }
        let mut resolved = Vec::new();
        let mut all = true;
        for (id, e) in jobs {
            match self.resolve(id, &e).await {
                Ok(r) => resolved.push((id, e, r)),
                Err(why) => {
                    log::warn!("keep list: {}: {why}", e.image);
                    self.jobs.finish(id, Err(why));
                    all = false;
                }
            }
        }
        self.cache.index_ready().await;
        let fits = match self.pinned_fit(true) {
            Ok(_) => self
                .pinned_fit(false)
                .map_err(|why| format!("{why}; unpin some with POST /_regmirror/admin/unpin")),
            Err(why) if first => {
                for (id, _, _) in &resolved {
                    self.jobs.finish(*id, Err(why.clone()));
                }
                self.fail_start(why);
                return all;
            }
            Err(why) => Err(why),
        };
        if let Err(why) = fits {
            for (id, _, _) in &resolved {
                self.jobs.finish(*id, Err(why.clone()));
            }
            log::error!("{why}; what was pinned before stays pinned");
            return all;
        }
        self.apply_pins();
        for (id, e, r) in resolved {
            let outcome = self.fetch_blobs(id, &r).await;
            self.apply_pins();
            match &outcome {
                Ok(()) => log::info!("keep list: {e} is on disk"),
                Err(why) => log::warn!("keep list: {}: {why}", e.image),
            }
            self.jobs.finish(id, outcome);
        }
        all
    }

    /// Whether every pinned image — of the keep list only, with `keep_only` — fits the
    /// budget together (shared blobs counted once, sizes from the manifests); the error
    /// says how much each needs and what to do.
    pub(super) fn pinned_fit(&self, keep_only: bool) -> Result<u64, String> {
        let mut sizes: HashMap<_, u64> = HashMap::new();
        let mut each = Vec::new();
        for (entry, source) in self.pins.entries() {
            if keep_only && source != pins::PinSource::Keep {
                continue;
            }
            let Some((_, walk)) = self.walk_cached(&entry.image, &pins::selection(&entry)) else {
                continue;
            };
            let mut own = 0u64;
            for d in &walk.manifests {
                let size = self.cache.blob_size(d).unwrap_or(0);
                own = own.saturating_add(size);
                sizes.insert(*d, size);
            }
            for (d, size) in &walk.blobs {
                own = own.saturating_add(*size);
                sizes.insert(*d, *size);
            }
            each.push((entry, own));
        }
        let total = sizes.values().fold(0u64, |a, b| a.saturating_add(*b));
        let budget = self.cache.stats().max;
        if total <= budget {
            return Ok(total);
        }
        each.sort_by_key(|(_, size)| std::cmp::Reverse(*size));
        let list: Vec<String> = each
            .iter()
            .take(5)
            .map(|(e, size)| format!("{} {}", e.image, human_size(*size)))
            .collect();
        let more = if each.len() > 5 { ", …" } else { "" };
        Err(format!(
            "the pinned images need {} ({}{more}) but the cache's budget is {}: raise \
             --max-size, or keep fewer images or platforms (--keep, or unpin)",
            human_size(total),
            list.join(", "),
            human_size(budget),
        ))
    }

    /// A check that could only be made after start failed: the mirror stops with `why`.
    fn fail_start(&self, why: String) {
        log::error!("{why}");
        *self.fatal.borrow_mut() = Some(why);
        self.fatal_event.notify(usize::MAX);
    }

    /// The start-up error found after start, if any (the process exits non-zero with it).
    pub fn failure(&self) -> Option<String> {
        self.fatal.borrow().clone()
    }

    /// Resolves when a start-up check made after start failed ([`Mirror::failure`]).
    pub async fn failed(&self) {
        loop {
            let listener = self.fatal_event.listen();
            if self.fatal.borrow().is_some() {
                return;
            }
            listener.await;
        }
    }

    /// SIGHUP: re-reads the keep list (a list that does not parse is logged and the old
    /// one kept) and the admin token file, and starts a keep round for what is new.
    pub fn reload(self: &Rc<Self>) {
        let Some(settings) = self.settings.get() else {
            return;
        };
        if let Some(path) = &settings.keep_file {
            let read = crate::keep::read(path)
                .and_then(|list| check_upstreams(&list, &self.upstreams).map(|()| list));
            match read {
                Ok(list) => {
                    log::info!(
                        "SIGHUP: keep list {} re-read: {} images",
                        path.display(),
                        list.len()
                    );
                    self.pins.set_keep(list);
                    self.apply_pins();
                    let this = self.clone();
                    self.executor
                        .spawn(async move {
                            this.keep_round(false).await;
                        })
                        .detach();
                }
                Err(e) => log::error!("SIGHUP: {e}; the keep list in effect stays"),
            }
        }
        match self.access.admin.reload() {
            Ok(Some(what)) => log::info!("SIGHUP: {what}"),
            Ok(None) => {}
            Err(e) => log::error!("SIGHUP: {e}; the admin token in effect stays"),
        }
    }
}
