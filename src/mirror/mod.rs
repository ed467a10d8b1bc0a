//! The pull logic: answer a manifest or blob request from the cache, from a fill in
//! progress, or from upstream — and decide when a tag must be revalidated and when a stale
//! answer beats an error.
//!
//! Freshness: digest-addressed content is immutable and never re-asked. A tag younger than
//! the TTL is answered from its record; an older one is revalidated with a `HEAD` (which
//! Docker Hub does not count against the pull limit) and the manifest body is fetched only
//! when the digest changed. If upstream fails in any way but a 404, the last known digest
//! is served (`STALE`). Concurrent requests for the same tag or manifest digest queue on
//! one lock, so a burst of cold pulls asks upstream once.
//!
//! `manifests.rs` answers manifests and tags, `blobs.rs` blobs; this file holds the shared
//! state and the per-reference lock that coalesces concurrent manifest work.

mod blobs;
mod manifests;

pub use blobs::{BlobOut, BlobSource};
pub use manifests::ManifestOut;

use crate::cache::Cache;
use crate::error::Error;
use crate::metrics::Metrics;
use crate::reference::{Repository, UpstreamName};
use crate::upstream::{Registry, Upstreams};
use smol::lock::Mutex;
use smol::LocalExecutor;
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

/// Which upstream and repository a request is about.
#[derive(Debug, Clone)]
pub struct Target {
    /// The upstream registry.
    pub registry: Rc<Registry>,
    /// The repository there (with `library/` already added for Docker Hub).
    pub repo: Repository,
}

/// The mirror: cache, upstreams, policy.
pub struct Mirror {
    /// The disk cache.
    pub cache: Rc<Cache>,
    /// The allowlisted upstreams.
    pub upstreams: Upstreams,
    /// How long a tag is trusted without asking upstream.
    pub tag_ttl: Duration,
    /// This mirror's counters.
    pub metrics: Rc<Metrics>,
    /// Runs fill tasks, detached from the request that started them.
    executor: Rc<LocalExecutor<'static>>,
    /// One lock per (upstream, repository, reference) being resolved: coalesces manifest
    /// fetches and tag revalidations. Entries are dropped when nobody holds them.
    locks: RefCell<HashMap<String, Arc<Mutex<()>>>>,
}

impl std::fmt::Debug for Mirror {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mirror")
            .field("cache", &self.cache)
            .field("tag_ttl", &self.tag_ttl)
            .finish()
    }
}

impl Mirror {
    /// A mirror spawning its fills on `executor`; `metrics` is what `cache` and `upstreams`
    /// count into too.
    pub fn new(
        cache: Cache,
        upstreams: Upstreams,
        tag_ttl: Duration,
        executor: Rc<LocalExecutor<'static>>,
        metrics: Rc<Metrics>,
    ) -> Mirror {
        Mirror {
            cache: Rc::new(cache),
            upstreams,
            tag_ttl,
            metrics,
            executor,
            locks: RefCell::new(HashMap::new()),
        }
    }

    async fn lock(&self, t: &Target, reference: &str) -> LockGuard<'_> {
        let key = format!("{}/{}@{reference}", t.registry.name(), t.repo);
        let mutex = self
            .locks
            .borrow_mut()
            .entry(key.clone())
            .or_default()
            .clone();
        let guard = mutex.lock_arc().await;
        LockGuard {
            mirror: self,
            key,
            _guard: guard,
        }
    }
}

/// Releases a per-key lock and drops the map entry when nobody else holds or waits on it.
struct LockGuard<'a> {
    mirror: &'a Mirror,
    key: String,
    _guard: smol::lock::MutexGuardArc<()>,
}

impl Drop for LockGuard<'_> {
    fn drop(&mut self) {
        let mut locks = self.mirror.locks.borrow_mut();
        // Two references: the map's and our guard's. More means someone waits.
        if locks
            .get(&self.key)
            .is_some_and(|m| Arc::strong_count(m) <= 2)
        {
            locks.remove(&self.key);
        }
    }
}

/// Looks up the upstream a request names (`?ns=`, a path prefix, or Docker Hub).
pub fn resolve_upstream(upstreams: &Upstreams, name: &UpstreamName) -> Result<Rc<Registry>, Error> {
    upstreams
        .get(name)
        .ok_or_else(|| Error::UnknownUpstream(name.to_string()))
}
