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
//! `fill.rs` how a cold blob is fetched (`source.rs` its upstream stream); `flight.rs` is
//! the shared in-flight work. What the mirror holds and how it is kept: `inventory.rs`
//! (images by tag, derived from disk), `walk.rs` (an image's manifests and blobs as the
//! manifests on disk tell, parsed once), `pulls.rs` (per-image pull counters, saved
//! rarely), `pins.rs` (the keep list and operator pins → digests never evicted),
//! `jobs.rs` (prefetch jobs and their progress), `prefetch.rs` (fetching an image before
//! anyone pulls it), `read_ahead.rs` (filling an image's other blobs once a client has its
//! manifest), `keeper.rs` (the keep list's rounds, SIGHUP), `allowance.rs` (Docker
//! Hub's allowance: prefetch holds back, freshness stretches), `evict.rs` (an operator
//! evicting one image). This file holds the mirror's state.

pub mod allowance;
mod blobs;
pub mod evict;
mod fill;
mod flight;
pub mod inventory;
pub mod jobs;
pub mod keeper;
mod manifests;
pub mod pins;
pub mod prefetch;
pub mod pulls;
pub mod read_ahead;
mod referrers;
mod source;
mod tags;
mod tags_list;
pub mod walk;

pub use blobs::{BlobOut, BlobSource};
pub use inventory::ImageInfo;
pub use jobs::{PrefetchJob, PrefetchState};
pub use manifests::ManifestOut;
pub use referrers::ReferrersOut;
pub use tags::REVALIDATE_PATIENCE;
pub use tags_list::{NextPage, TagsOut};

use crate::access::Access;
use crate::cache::Cache;
use crate::error::Error;
use crate::keep::Entry;
use crate::metrics::Metrics;
use crate::reference::{Digest, Repository, UpstreamName};
use crate::upstream::{Registry, Upstreams};
use event_listener::Event;
use flight::Flights;
use manifests::{Fetch, FlightKey};
use smol::LocalExecutor;
use std::cell::{OnceCell, RefCell};
use std::collections::{HashSet, VecDeque};
use std::path::PathBuf;
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
    /// The address it listens on (the status page's fallback for a bad `Host`).
    pub listen: Option<std::net::SocketAddr>,
    /// The port speaks TLS too (the status page's snippets say `https`).
    pub tls: bool,
    /// The host's own account of its name and addresses (`--host-info`), shown in the
    /// status; set by start-up.
    pub host_info: Option<PathBuf>,
    /// Runs fills and flights, detached from the request that started them.
    executor: Rc<LocalExecutor<'static>>,
    /// Manifest fetches and tag resolutions in flight, by (upstream, repository,
    /// reference): every request for the same reference while one runs shares its outcome.
    manifests: Rc<Flights<FlightKey, Fetch>>,
    /// What is derived from disk for the inventory, kept between page views.
    inventory: inventory::Inventory,
    /// Per-image pull counters.
    pulls: pulls::Pulls,
    /// Pinned images.
    pins: pins::Pins,
    /// Prefetch jobs of this run.
    jobs: jobs::Jobs,
    /// Operator prefetches waiting for the worker: (job id, image, who asked).
    queue: RefCell<VecDeque<(u64, Entry, jobs::Origin)>>,
    /// Notified when one is queued.
    queued: Event,
    /// Blobs waiting to be read ahead (`read_ahead.rs`): through which target, digest, size.
    ahead: RefCell<VecDeque<(Target, Digest, u64)>>,
    /// Notified when some are queued.
    ahead_queued: Event,
    /// Upstreams whose tag freshness is stretched now (their allowance is low).
    stretched: RefCell<HashSet<UpstreamName>>,
    /// A start-up check made after start failed (the keep list cannot fit): why.
    fatal: RefCell<Option<String>>,
    /// Notified when `fatal` is set.
    fatal_event: Event,
    /// What the background work was started with.
    settings: OnceCell<Background>,
}

/// What runs beside the requests, as configured (see [`Mirror::start_background`]).
#[derive(Debug, Clone)]
pub struct Background {
    /// How often changed pull counters are saved.
    pub save_every: Duration,
    /// The keep list's file (`--keep`), re-read on SIGHUP.
    pub keep_file: Option<PathBuf>,
    /// How often the keep list is revalidated (`--keep-refresh`).
    pub keep_refresh: Duration,
    /// How often a prefetch held back by the allowance looks again.
    pub allowance_recheck: Duration,
    /// Fill an image's other blobs once a client has its manifest (`--read-ahead`).
    pub read_ahead: bool,
}

impl Background {
    /// The background settings `config` asks for.
    pub fn from(config: &crate::config::Config) -> Background {
        Background {
            save_every: config.state_save_interval,
            keep_file: config.keep.clone(),
            keep_refresh: config.keep_refresh,
            allowance_recheck: config.allowance_recheck,
            read_ahead: config.read_ahead,
        }
    }
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
            pulls: pulls::Pulls::load(cache.root()),
            pins: pins::Pins::load(cache.root()),
            cache,
            upstreams,
            tag_ttl,
            metrics,
            access: Access::default(),
            listen: None,
            tls: false,
            host_info: None,
            executor,
            manifests: Rc::new(Flights::new()),
            inventory: inventory::Inventory::default(),
            jobs: jobs::Jobs::default(),
            queue: RefCell::new(VecDeque::new()),
            queued: Event::new(),
            ahead: RefCell::new(VecDeque::new()),
            ahead_queued: Event::new(),
            stretched: RefCell::new(HashSet::new()),
            fatal: RefCell::new(None),
            fatal_event: Event::new(),
            settings: OnceCell::new(),
        }
    }

    /// Starts what runs beside the requests, before the executor runs anything (so the
    /// pins are in the index before the start-up scan may evict): the pins as the disk has
    /// them (`keep`: the keep list, read and checked at start), the task saving the pull
    /// counters, the prefetch and read-ahead workers and the rounds over the pinned images.
    pub fn start_background(self: &Rc<Self>, settings: Background, keep: Vec<Entry>) {
        self.pins.set_keep(keep);
        self.apply_pins();
        let save_every = settings.save_every;
        let refresh = settings.keep_refresh;
        let read_ahead = settings.read_ahead;
        let _ = self.settings.set(settings);
        let this = Rc::downgrade(self);
        self.executor
            .spawn(async move {
                loop {
                    smol::Timer::after(save_every).await;
                    match this.upgrade() {
                        Some(m) => m.save_state(),
                        None => return,
                    }
                }
            })
            .detach();
        self.executor.spawn(self.clone().prefetch_worker()).detach();
        if read_ahead {
            self.executor
                .spawn(self.clone().read_ahead_worker())
                .detach();
        }
        // Keeps the keep list and the operator pins (a round with no pins does nothing).
        self.executor.spawn(self.clone().keeper(refresh)).detach();
    }

    /// The keep list's file, if there is one (`--keep`).
    pub fn keep_file(&self) -> Option<&std::path::Path> {
        self.settings.get()?.keep_file.as_deref()
    }

    /// The pinned images.
    pub fn pins(&self) -> &pins::Pins {
        &self.pins
    }

    /// Every prefetch job of this run (the finished ones up to a bound), oldest first.
    pub fn prefetches(&self) -> Vec<PrefetchJob> {
        self.jobs.snapshot()
    }

    /// Writes what is kept in memory and saved rarely (the pull counters): at shutdown,
    /// and every [`pulls::SAVE_INTERVAL`].
    pub fn save_state(&self) {
        if let Err(e) = self.pulls.save() {
            log::warn!("could not save the pull counters: {e}");
        }
    }
}

/// The first item of a worker's `queue`, waiting while it is empty (`queued` is notified
/// after every push).
async fn next_queued<T>(queue: &RefCell<VecDeque<T>>, queued: &Event) -> T {
    loop {
        let next = queue.borrow_mut().pop_front();
        if let Some(item) = next {
            return item;
        }
        let listener = queued.listen();
        if queue.borrow().is_empty() {
            listener.await;
        }
    }
}

/// Looks up the upstream a request names (`?ns=`, a path prefix, or Docker Hub).
pub fn resolve_upstream(upstreams: &Upstreams, name: &UpstreamName) -> Result<Rc<Registry>, Error> {
    upstreams
        .get(name)
        .ok_or_else(|| Error::UnknownUpstream(name.to_string()))
}
