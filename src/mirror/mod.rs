//! The pull logic: answer a manifest or blob request from the cache, from work in
//! progress, or from upstream — and decide when a tag must be revalidated and when a stale
//! answer beats an error.
//!
//! Freshness: digest-addressed content is immutable and never re-asked. A tag younger than
//! the TTL is answered from its record; an older one is revalidated with a `HEAD` (which
//! Docker Hub does not count against the pull limit) and the manifest body is fetched only
//! when the digest changed. If upstream fails in any way but a 404, or is slower than
//! [`REVALIDATE_PATIENCE`], the last known digest is served (`STALE`) while the
//! revalidation carries on and records what upstream finally says. Concurrent requests for
//! the same tag or manifest digest share one flight, so a burst of pulls asks upstream
//! once and followers are answered together.
//!
//! `manifests.rs` answers manifests (by digest, and the `Accept` rules), `tags.rs` tags
//! (freshness, revalidation, stale), `tags_list.rs` `tags/list`, `referrers.rs` the
//! referrers API (relayed, or built from the tag schema and the cache), `blobs.rs` blobs and
//! `fill.rs` how a cold blob is fetched (`source.rs` its upstream stream); `flight.rs` is the
//! shared in-flight work; this file holds the mirror's state.

mod blobs;
mod fill;
mod flight;
mod manifests;
mod referrers;
mod source;
mod tags;
mod tags_list;

pub use blobs::{BlobOut, BlobSource};
pub use manifests::ManifestOut;
pub use referrers::ReferrersOut;
pub use tags::REVALIDATE_PATIENCE;
pub use tags_list::{NextPage, TagsOut};

use crate::access::Access;
use crate::cache::Cache;
use crate::error::Error;
use crate::metrics::Metrics;
use crate::reference::{Repository, UpstreamName};
use crate::upstream::{Registry, Upstreams};
use flight::Flights;
use manifests::{Fetch, FlightKey};
use smol::LocalExecutor;
use std::rc::Rc;
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
    /// Who may use it (`routes` asks [`crate::access::check`] for every request); the
    /// default until start-up sets the configured one.
    pub access: Access,
    /// Runs fills and flights, detached from the request that started them.
    executor: Rc<LocalExecutor<'static>>,
    /// Manifest fetches and tag resolutions in flight, by (upstream, repository,
    /// reference): every request for the same reference while one runs shares its outcome.
    manifests: Rc<Flights<FlightKey, Fetch>>,
}

impl std::fmt::Debug for Mirror {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mirror")
            .field("cache", &self.cache)
            .field("tag_ttl", &self.tag_ttl)
            .field("manifest_flights", &self.manifests.len())
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
        let cache = Rc::new(cache);
        fill::spawn_startup(&cache, &upstreams, &executor);
        Mirror {
            cache,
            upstreams,
            tag_ttl,
            metrics,
            access: Access::default(),
            executor,
            manifests: Rc::new(Flights::new()),
        }
    }
}

/// Looks up the upstream a request names (`?ns=`, a path prefix, or Docker Hub).
pub fn resolve_upstream(upstreams: &Upstreams, name: &UpstreamName) -> Result<Rc<Registry>, Error> {
    upstreams
        .get(name)
        .ok_or_else(|| Error::UnknownUpstream(name.to_string()))
}
