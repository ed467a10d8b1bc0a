//! Manifests by digest and by tag: the tag freshness policy (TTL, `HEAD` revalidation,
//! stale answers when upstream fails) and `Accept` negotiation.

use super::{Mirror, Target};
use crate::cache::tags::TagRecord;
use crate::error::{Error, UpstreamError};
use crate::http::Outcome;
use crate::manifest::{self, Accept};
use crate::media_type::MediaType;
use crate::reference::{Digest, Reference, Tag};
use futures_lite::FutureExt;
use smol::Timer;
use std::time::{Duration, SystemTime};

/// Longest a client waits for upstream to confirm a cached tag before it gets the cached
/// answer (`STALE`): a frozen or crawling upstream must not cost every pull a full upstream
/// timeout. Healthy registries answer a HEAD in well under a second.
pub const REVALIDATE_PATIENCE: Duration = Duration::from_secs(3);

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

impl Mirror {
    /// A manifest by tag or digest, in a type the client accepts.
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
        if accept.allows(&out.media_type) {
            return Ok(out);
        }
        if out.media_type.is_index() {
            if let Some(child) = manifest::default_platform(&out.bytes, accept) {
                return self.manifest_by_digest(t, &child).await;
            }
        }
        Err(Error::ManifestNotAcceptable(out.media_type))
    }

    async fn manifest_by_digest(&self, t: &Target, d: &Digest) -> Result<ManifestOut, Error> {
        if let Some(out) = self.cached_manifest(d, Outcome::Hit)? {
            return Ok(out);
        }
        let _guard = self.lock(t, &d.to_string()).await;
        if let Some(out) = self.cached_manifest(d, Outcome::Coalesced)? {
            return Ok(out);
        }
        let m = t
            .registry
            .manifest(&t.repo, &Reference::Digest(*d), false)
            .await
            .map_err(manifest_error)?;
        let bytes = m.body.unwrap_or_default();
        self.keep_manifest(d, &bytes);
        Ok(ManifestOut {
            digest: *d,
            media_type: m.media_type,
            bytes,
            outcome: Outcome::Miss,
        })
    }

    async fn manifest_by_tag(&self, t: &Target, tag: &Tag) -> Result<ManifestOut, Error> {
        let _guard = self.lock(t, tag.as_str()).await;
        let upstream = t.registry.name();
        let known = self.cache.tags.get(upstream, &t.repo, tag);
        let now = SystemTime::now();
        if let Some(rec) = &known {
            let age = now.duration_since(rec.checked).unwrap_or_default();
            if age < self.tag_ttl {
                if let Some(out) = self.cached_manifest(&rec.digest, Outcome::Hit)? {
                    return Ok(out);
                }
            }
            // Revalidate: a HEAD costs no pull on Docker Hub and no body anywhere. It runs
            // as its own task: if upstream is slow we answer stale after a short wait and
            // let the HEAD finish anyway, so its outcome still feeds the circuit breaker.
            let (registry, repo) = (t.registry.clone(), t.repo.clone());
            let reference = Reference::Tag(tag.clone());
            let mut head = self
                .executor
                .spawn(async move { registry.manifest(&repo, &reference, true).await });
            let patience = async {
                Timer::after(REVALIDATE_PATIENCE).await;
                None
            };
            let Some(answer) = async { Some((&mut head).await) }.or(patience).await else {
                head.detach();
                let slow = format!("no answer within {} s", REVALIDATE_PATIENCE.as_secs());
                return self.stale(t, tag, rec, UpstreamError::Unavailable(slow));
            };
            match answer {
                Ok(head) => {
                    if let Some(out) = self.cached_manifest(&head.digest, Outcome::Hit)? {
                        self.remember(t, tag, &out.digest, &out.media_type);
                        return Ok(out);
                    }
                    // Changed to something we don't have: fetch exactly that digest.
                    let out = self.manifest_by_digest(t, &head.digest).await?;
                    self.remember(t, tag, &out.digest, &out.media_type);
                    return Ok(out);
                }
                Err(UpstreamError::NotFound) => {
                    self.cache.tags.remove(upstream, &t.repo, tag);
                    return Err(Error::ManifestUnknown);
                }
                Err(e) => return self.stale(t, tag, rec, e),
            }
        }
        let m = t
            .registry
            .manifest(&t.repo, &Reference::Tag(tag.clone()), false)
            .await
            .map_err(manifest_error)?;
        let bytes = m.body.unwrap_or_default();
        self.keep_manifest(&m.digest, &bytes);
        self.remember(t, tag, &m.digest, &m.media_type);
        Ok(ManifestOut {
            digest: m.digest,
            media_type: m.media_type,
            bytes,
            outcome: Outcome::Miss,
        })
    }

    /// Upstream failed while revalidating `tag`: serve what we last knew, if we still have it.
    fn stale(
        &self,
        t: &Target,
        tag: &Tag,
        rec: &TagRecord,
        e: UpstreamError,
    ) -> Result<ManifestOut, Error> {
        match self.cached_manifest(&rec.digest, Outcome::Stale)? {
            Some(out) => {
                log::warn!(
                    "{}/{}:{tag}: serving last known {} ({e})",
                    t.registry.name(),
                    t.repo,
                    rec.digest
                );
                Ok(out)
            }
            None => Err(e.into()),
        }
    }

    fn cached_manifest(&self, d: &Digest, outcome: Outcome) -> Result<Option<ManifestOut>, Error> {
        Ok(self.cache.read_manifest(d)?.map(|bytes| ManifestOut {
            digest: *d,
            media_type: manifest::sniff(&bytes),
            bytes,
            outcome,
        }))
    }

    fn keep_manifest(&self, d: &Digest, bytes: &[u8]) {
        if let Err(e) = self.cache.put_manifest(d, bytes) {
            log::warn!("could not cache manifest {d}: {e}");
        }
    }

    fn remember(&self, t: &Target, tag: &Tag, digest: &Digest, media_type: &MediaType) {
        let rec = TagRecord {
            digest: *digest,
            media_type: media_type.clone(),
            checked: SystemTime::now(),
        };
        if let Err(e) = self.cache.tags.put(t.registry.name(), &t.repo, tag, &rec) {
            log::warn!("could not record tag {}:{tag}: {e}", t.repo);
        }
    }
}

fn manifest_error(e: UpstreamError) -> Error {
    match e {
        UpstreamError::NotFound => Error::ManifestUnknown,
        e => Error::Upstream(e),
    }
}
