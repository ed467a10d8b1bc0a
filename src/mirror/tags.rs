//! Tags: how fresh a tag record is, the one revalidation every request for a tag shares,
//! and when the last known digest beats an error (`STALE`).
//!
//! A record younger than the TTL (and not stamped in the future) is answered from disk.
//! Otherwise one flight per tag asks upstream: a `HEAD` when the tag is known (free on
//! Docker Hub), then a GET of the new digest only if it is not on disk; a GET by tag when
//! it is not. Requests with a stale answer on disk wait for that flight until
//! [`REVALIDATE_PATIENCE`] after it started — together, not in turn — and then get the
//! stale answer; the flight carries on and records whatever upstream finally says. Any
//! failure but a 404 from the `HEAD` (or the GET by tag) is answered stale when it can be.

use super::flight::{Flight, Role};
use super::manifests::{manifest_error, settled, Fetch, Fetched, ManifestOut, Work};
use super::{Mirror, Target};
use crate::cache::tags::TagRecord;
use crate::error::{Error, UpstreamError};
use crate::http::Outcome;
use crate::manifest;
use crate::reference::{Reference, Tag};
use futures_lite::FutureExt;
use smol::Timer;
use std::rc::Rc;
use std::time::{Duration, SystemTime};

/// Longest a client waits for upstream to confirm a cached tag before it gets the cached
/// answer (`STALE`): a frozen or crawling upstream must not cost every pull a full upstream
/// timeout. Healthy registries answer a HEAD in well under a second. Counted from the
/// start of the revalidation, so every request that joins it is answered by then.
pub const REVALIDATE_PATIENCE: Duration = Duration::from_secs(3);

impl Mirror {
    /// The manifest `tag` points to: from its record while fresh, else from the tag's
    /// flight, or stale when upstream fails or is slow.
    pub(super) async fn manifest_by_tag(
        &self,
        t: &Target,
        tag: &Tag,
    ) -> Result<ManifestOut, Error> {
        let known = self.cache.tag(t.registry.name(), &t.repo, tag);
        let on_disk = match &known {
            Some(rec) => self.cached_manifest(&rec.digest, Outcome::Hit)?,
            None => None,
        };
        if let (Some(rec), Some(out)) = (&known, on_disk) {
            if is_fresh(
                rec.checked,
                SystemTime::now(),
                self.tag_ttl_for(&t.registry),
            ) {
                return Ok(out);
            }
            let (flight, role) = self.work(t).tag(tag, true);
            return self.revalidated(t, tag, rec, out, &flight, role).await;
        }
        // Nothing to fall back on: wait for upstream (bounded by its own timeouts).
        let (flight, role) = self.work(t).tag(tag, known.is_some());
        let fetched = settled(flight.wait().await).map_err(manifest_error)?;
        Ok(fetched.out(role))
    }

    /// The revalidation's answer, if it comes within the patience; else `stale`.
    async fn revalidated(
        &self,
        t: &Target,
        tag: &Tag,
        rec: &TagRecord,
        stale: ManifestOut,
        flight: &Flight<Fetch>,
        role: Role,
    ) -> Result<ManifestOut, Error> {
        let deadline = flight.started() + REVALIDATE_PATIENCE;
        let answer = async { Some(settled(flight.wait().await)) }
            .or(async {
                Timer::at(deadline).await;
                None
            })
            .await;
        let why = match answer {
            Some(Ok(fetched)) => return Ok(fetched.out(role)),
            Some(Err(UpstreamError::NotFound)) => return Err(Error::ManifestUnknown),
            Some(Err(e)) => e.to_string(),
            None => format!(
                "no answer within {} s; it will be recorded when it comes",
                REVALIDATE_PATIENCE.as_secs()
            ),
        };
        log::warn!(
            "{}/{}:{tag}: serving last known {} ({why})",
            t.registry.name(),
            t.repo,
            rec.digest
        );
        Ok(ManifestOut {
            outcome: Outcome::Stale,
            ..stale
        })
    }
}

impl Work {
    /// The flight resolving `tag` upstream (`known`: we have a record, so `HEAD` first).
    fn tag(&self, tag: &Tag, known: bool) -> (Rc<Flight<Fetch>>, Role) {
        let key = self.key(Reference::Tag(tag.clone()));
        let (work, tag) = (self.clone(), tag.clone());
        self.flights
            .join(key, &self.executor, move || work.resolve(tag, known))
    }

    /// Asks upstream where `tag` points now, fetches that manifest if it is not on disk,
    /// and records the tag — however long after the requests that asked gave up waiting.
    async fn resolve(self, tag: Tag, known: bool) -> Fetch {
        let reference = Reference::Tag(tag.clone());
        if !known {
            let m = self
                .registry
                .manifest(&self.repo, &reference, false)
                .await?;
            let bytes = m.body.unwrap_or_default();
            self.keep(&m.digest, &bytes);
            let fetched = Fetched {
                digest: m.digest,
                media_type: m.media_type,
                bytes,
                from_upstream: true,
            };
            self.remember(&tag, &fetched);
            return Ok(Rc::new(fetched));
        }
        let digest = match self.registry.manifest(&self.repo, &reference, true).await {
            Ok(head) => head.digest,
            Err(UpstreamError::NotFound) => {
                self.cache
                    .remove_tag(self.registry.name(), &self.repo, &tag);
                return Err(UpstreamError::NotFound);
            }
            Err(e) => return Err(e),
        };
        let fetched = match self.read(&digest) {
            Some(bytes) => Rc::new(Fetched {
                digest,
                media_type: manifest::sniff(&bytes),
                bytes,
                from_upstream: false,
            }),
            // Moved to something we don't have: fetch exactly that digest. Its 404 means
            // upstream contradicts itself, not that the tag is gone: answered stale.
            None => {
                let (flight, _) = self.digest(digest);
                settled(flight.wait().await).map_err(|e| match e {
                    UpstreamError::NotFound => UpstreamError::Protocol(format!(
                        "the tag points to {digest}, which upstream does not have"
                    )),
                    e => e,
                })?
            }
        };
        self.remember(&tag, &fetched);
        Ok(fetched)
    }

    /// Records that `tag` points to `fetched`, confirmed now.
    pub(super) fn remember(&self, tag: &Tag, fetched: &Fetched) {
        let rec = TagRecord {
            digest: fetched.digest,
            media_type: fetched.media_type.clone(),
            checked: SystemTime::now(),
        };
        if let Err(e) = self
            .cache
            .put_tag_record(self.registry.name(), &self.repo, tag, &rec)
        {
            log::warn!("could not record tag {}:{tag}: {e}", self.repo);
        }
    }
}

/// A record confirmed at `checked` may be trusted at `now`: younger than `ttl`. A stamp in
/// the future (the clock was wrong when it was written, or is now) is not trusted.
fn is_fresh(checked: SystemTime, now: SystemTime, ttl: Duration) -> bool {
    now.duration_since(checked).is_ok_and(|age| age < ttl)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_is_fresh_only_from_its_stamp_to_the_ttl() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let ttl = Duration::from_secs(600);
        let at = |secs_ago: i64| match secs_ago {
            s if s >= 0 => now - Duration::from_secs(s as u64),
            s => now + Duration::from_secs(s.unsigned_abs()),
        };
        assert!(is_fresh(at(0), now, ttl));
        assert!(is_fresh(at(599), now, ttl));
        assert!(!is_fresh(at(600), now, ttl));
        assert!(!is_fresh(at(-1), now, ttl), "stamped in the future");
        assert!(!is_fresh(at(-86_400), now, ttl));
        assert!(!is_fresh(at(0), now, Duration::ZERO));
    }
}
