//! Manifests: the entry point for a manifest request, by digest (immutable: from disk, or
//! fetched once for every request waiting on it) and the `Accept` rules of [`negotiate`].
//! Tags are resolved in `tags.rs`.
//!
//! Upstream work runs as a [`Flight`] keyed by (upstream, repository, reference) — see
//! `flight.rs` — with a [`Work`]: what the task needs, cloned out of the `Mirror` so that
//! it outlives the request that started it.

use super::flight::{Flight, Flights, Role};
use super::{Mirror, Target};
use crate::cache::Cache;
use crate::error::{Error, UpstreamError};
use crate::http::Outcome;
use crate::manifest::{self, negotiate, Accept, Negotiated};
use crate::media_type::MediaType;
use crate::reference::{Digest, Reference, Repository, UpstreamName};
use crate::upstream::{Registry, MAX_MANIFEST_BYTES};
use smol::LocalExecutor;
use std::rc::Rc;

/// A manifest ready to send.
#[derive(Debug)]
pub struct ManifestOut {
    /// Digest of `bytes`.
    pub digest: Digest,
    /// Its media type (`Content-Type`).
    pub media_type: MediaType,
    /// The exact bytes.
    pub bytes: Vec<u8>,
    /// How it was obtained.
    pub outcome: Outcome,
}

/// What a flight is about: (upstream, repository, tag or digest).
pub(super) type FlightKey = (UpstreamName, Repository, Reference);

/// A flight's outcome, shared by everyone waiting on it.
pub(super) type Fetch = Result<Rc<Fetched>, UpstreamError>;

/// A manifest a flight fetched from upstream or found on disk.
#[derive(Debug)]
pub(super) struct Fetched {
    pub(super) digest: Digest,
    pub(super) media_type: MediaType,
    pub(super) bytes: Vec<u8>,
    /// The body came from upstream (`MISS` / `COALESCED`), not from disk (`HIT`).
    pub(super) from_upstream: bool,
}

impl Fetched {
    /// The answer for a request that had `role` in the flight.
    pub(super) fn out(&self, role: Role) -> ManifestOut {
        let outcome = match (self.from_upstream, role) {
            (false, _) => Outcome::Hit,
            (true, Role::Leader) => Outcome::Miss,
            (true, Role::Follower) => Outcome::Coalesced,
        };
        ManifestOut {
            digest: self.digest,
            media_type: self.media_type.clone(),
            bytes: self.bytes.clone(),
            outcome,
        }
    }
}

impl Mirror {
    /// A manifest by tag or digest, in a type the client accepts (see [`negotiate`]).
    pub async fn manifest(
        &self,
        t: &Target,
        reference: &Reference,
        accept: &Accept,
    ) -> Result<ManifestOut, Error> {
        let out = match reference {
            Reference::Digest(d) => self.manifest_by_digest(t, d).await?,
            Reference::Tag(tag) => self.manifest_by_tag(t, tag).await?,
        };
        if let Reference::Tag(tag) = reference {
            // Every client resolves the tag once per pull (see `pulls.rs`).
            let now = std::time::SystemTime::now();
            self.pulls.count(t.registry.name(), &t.repo, tag, now);
        }
        let by_tag = matches!(reference, Reference::Tag(_));
        match negotiate(&out.media_type, &out.bytes, by_tag, accept) {
            Negotiated::Serve => Ok(out),
            Negotiated::DefaultPlatform(child) => self.manifest_by_digest(t, &child).await,
            Negotiated::Refuse => Err(Error::ManifestNotAcceptable(out.media_type)),
        }
    }

    /// From disk, else from the one upstream GET every request for `d` shares.
    async fn manifest_by_digest(&self, t: &Target, d: &Digest) -> Result<ManifestOut, Error> {
        if let Some(out) = self.cached_manifest(d, Outcome::Hit)? {
            return Ok(out);
        }
        let (flight, role) = self.work(t).digest(*d);
        let fetched = settled(flight.wait().await).map_err(manifest_error)?;
        Ok(fetched.out(role))
    }

    /// What upstream work for `t` needs.
    pub(super) fn work(&self, t: &Target) -> Work {
        Work {
            cache: self.cache.clone(),
            executor: self.executor.clone(),
            flights: self.manifests.clone(),
            registry: t.registry.clone(),
            repo: t.repo.clone(),
        }
    }

    /// Manifest `d` from disk, answered as `outcome`.
    pub(super) fn cached_manifest(
        &self,
        d: &Digest,
        outcome: Outcome,
    ) -> Result<Option<ManifestOut>, Error> {
        Ok(
            stored(&self.cache, d)?.map(|(bytes, media_type)| ManifestOut {
                digest: *d,
                media_type,
                bytes,
                outcome,
            }),
        )
    }
}

/// Manifest `d` from disk with its type; `Ok(None)` when not cached. A stored blob that is
/// not a manifest — larger than any manifest may be (then never read into memory), or not
/// JSON of a manifest type — is `MANIFEST_UNKNOWN` (issue 6, defect 5: a layer asked for
/// here was read whole and served as one).
fn stored(cache: &Cache, d: &Digest) -> Result<Option<(Vec<u8>, MediaType)>, Error> {
    let bytes = match cache.read_manifest(d, MAX_MANIFEST_BYTES)? {
        None => return Ok(None),
        Some(Err(_too_big)) => return Err(Error::ManifestUnknown),
        Some(Ok(bytes)) => bytes,
    };
    let media_type = manifest::stored_type(&bytes).ok_or(Error::ManifestUnknown)?;
    Ok(Some((bytes, media_type)))
}

/// What manifest work for one repository needs, cloned into the tasks that outlive the
/// request which started them.
#[derive(Clone)]
pub(super) struct Work {
    pub(super) cache: Rc<Cache>,
    pub(super) executor: Rc<LocalExecutor<'static>>,
    pub(super) flights: Rc<Flights<FlightKey, Fetch>>,
    pub(super) registry: Rc<Registry>,
    pub(super) repo: Repository,
}

impl Work {
    /// The flight fetching manifest `d`: joined if one runs, else started.
    pub(super) fn digest(&self, d: Digest) -> (Rc<Flight<Fetch>>, Role) {
        let key = self.key(Reference::Digest(d));
        let work = self.clone();
        self.flights
            .join(key, &self.executor, move || work.fetch_digest(d))
    }

    async fn fetch_digest(self, d: Digest) -> Fetch {
        // A request may have been answered from disk while this flight was queued.
        if let Some(bytes) = self.read(&d) {
            let media_type = manifest::sniff(&bytes);
            return Ok(Rc::new(Fetched {
                digest: d,
                media_type,
                bytes,
                from_upstream: false,
            }));
        }
        let m = self
            .registry
            .manifest(&self.repo, &Reference::Digest(d), false)
            .await?;
        let bytes = m.body.unwrap_or_default();
        self.keep(&d, &bytes);
        Ok(Rc::new(Fetched {
            digest: d,
            media_type: m.media_type,
            bytes,
            from_upstream: true,
        }))
    }

    pub(super) fn key(&self, reference: Reference) -> FlightKey {
        (self.registry.name().clone(), self.repo.clone(), reference)
    }

    /// Manifest `d` from disk; a read error, or a stored blob that is not a manifest,
    /// counts as absent (and is logged).
    pub(super) fn read(&self, d: &Digest) -> Option<Vec<u8>> {
        stored(&self.cache, d)
            .unwrap_or_else(|e| {
                log::warn!("could not read manifest {d}: {e}");
                None
            })
            .map(|(bytes, _)| bytes)
    }

    /// Keeps verified manifest bytes on disk, if the budget allows; a manifest with a
    /// `subject` is also noted as its referrer (`referrers.rs`).
    pub(super) fn keep(&self, d: &Digest, bytes: &[u8]) {
        match self.cache.put_manifest(d, bytes) {
            Ok(()) => super::referrers::note(&self.cache, d, bytes),
            Err(e) => log::warn!("could not cache manifest {d}: {e}"),
        }
    }
}

/// A flight's outcome, an abandoned flight (its task dropped) counting as unavailable.
pub(super) fn settled(outcome: Option<Fetch>) -> Fetch {
    outcome.unwrap_or_else(|| {
        Err(UpstreamError::Unavailable(
            "the upstream request was abandoned".into(),
        ))
    })
}

/// An upstream failure as the error of a manifest request: 404 is `MANIFEST_UNKNOWN`.
pub(super) fn manifest_error(e: UpstreamError) -> Error {
    match e {
        UpstreamError::NotFound => Error::ManifestUnknown,
        e => Error::Upstream(e),
    }
}
