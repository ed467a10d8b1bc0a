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

use crate::cache::fill::{self, BlobReader, Phase};
use crate::cache::tags::TagRecord;
use crate::cache::Cache;
use crate::error::{Error, UpstreamError};
use crate::http::{ByteRange, Outcome};
use crate::manifest::{self, Accept};
use crate::reference::{Digest, Reference, Repository, Tag};
use crate::upstream::{Registry, Upstreams};
use futures_lite::AsyncRead;
use smol::lock::Mutex;
use smol::LocalExecutor;
use std::cell::RefCell;
use std::collections::HashMap;
use std::fs::File;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// Which upstream and repository a request is about.
#[derive(Debug, Clone)]
pub struct Target {
    /// The upstream registry.
    pub registry: Rc<Registry>,
    /// The repository there (with `library/` already added for Docker Hub).
    pub repo: Repository,
}

/// A manifest ready to send.
#[derive(Debug)]
pub struct ManifestOut {
    /// Digest of `bytes`.
    pub digest: Digest,
    /// Its media type (`Content-Type`).
    pub media_type: String,
    /// The exact bytes.
    pub bytes: Vec<u8>,
    /// How it was obtained.
    pub outcome: Outcome,
}

/// A blob (or part of one) ready to stream.
pub struct BlobOut {
    /// The blob's full length.
    pub total: u64,
    /// The part being sent; `None` for all of it.
    pub range: Option<ByteRange>,
    /// Where the bytes come from; `None` for HEAD.
    pub body: Option<BlobSource>,
    /// How it was obtained.
    pub outcome: Outcome,
}

impl std::fmt::Debug for BlobOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "BlobOut {{ total: {}, range: {:?}, outcome: {} }}",
            self.total, self.range, self.outcome
        )
    }
}

/// Where a blob's bytes come from.
pub enum BlobSource {
    /// A complete cached file (served with `sendfile`).
    File(Arc<File>),
    /// A file a fill is still writing, or an upstream stream.
    Stream(Box<dyn AsyncRead + Unpin>),
}

impl std::fmt::Debug for BlobSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            BlobSource::File(_) => "File",
            BlobSource::Stream(_) => "Stream",
        })
    }
}

/// The mirror: cache, upstreams, policy.
pub struct Mirror {
    /// The disk cache.
    pub cache: Rc<Cache>,
    /// The allowlisted upstreams.
    pub upstreams: Upstreams,
    /// How long a tag is trusted without asking upstream.
    pub tag_ttl: Duration,
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
    /// A mirror spawning its fills on `executor`.
    pub fn new(
        cache: Cache,
        upstreams: Upstreams,
        tag_ttl: Duration,
        executor: Rc<LocalExecutor<'static>>,
    ) -> Mirror {
        Mirror {
            cache: Rc::new(cache),
            upstreams,
            tag_ttl,
            executor,
            locks: RefCell::new(HashMap::new()),
        }
    }

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
        if manifest::is_index(&out.media_type) {
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
            // Revalidate: a HEAD costs no pull on Docker Hub and no body anywhere.
            match t
                .registry
                .manifest(&t.repo, &Reference::Tag(tag.clone()), true)
                .await
            {
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

    fn remember(&self, t: &Target, tag: &Tag, digest: &Digest, media_type: &str) {
        let rec = TagRecord {
            digest: *digest,
            media_type: media_type.to_owned(),
            checked: SystemTime::now(),
        };
        if let Err(e) = self.cache.tags.put(t.registry.name(), &t.repo, tag, &rec) {
            log::warn!("could not record tag {}:{tag}: {e}", t.repo);
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

    /// A blob, or the `range` part of it; `head` answers without a body.
    ///
    /// Cached → `HIT`. A fill in progress → follow it (`COALESCED`). Otherwise start one
    /// (`MISS`); a HEAD of an uncached blob asks upstream's HEAD instead, downloading nothing.
    pub async fn blob(
        &self,
        t: &Target,
        d: &Digest,
        range: Option<&str>,
        head: bool,
    ) -> Result<BlobOut, Error> {
        if let Some((file, total)) = self.cache.lookup(d)? {
            return complete(file, total, range, head, Outcome::Hit);
        }
        let existing = self.cache.fill(d);
        if head && existing.is_none() {
            return upstream_head(t, d).await;
        }
        let (fill, outcome) = match existing {
            Some(f) => (f, Outcome::Coalesced),
            None => {
                let f = self.cache.start_fill(*d);
                let task = fill::run(
                    self.cache.clone(),
                    t.registry.clone(),
                    t.repo.clone(),
                    *d,
                    f.clone(),
                );
                self.executor.spawn(task).detach();
                (f, Outcome::Miss)
            }
        };
        match fill.ready().await {
            Phase::Committed { total, file } => complete(file, total, range, head, outcome),
            Phase::Writing { total, file } => {
                let part = resolve_range(range, total)?;
                let (start, end) = part.map_or((0, total), |r| (r.start, r.end));
                let body = (!head).then(|| {
                    BlobSource::Stream(Box::new(BlobReader::following(
                        fill.clone(),
                        file,
                        start,
                        end,
                    )))
                });
                Ok(BlobOut {
                    total,
                    range: part,
                    body,
                    outcome,
                })
            }
            Phase::Failed(f) => Err(f.into()),
            Phase::Pass | Phase::Connecting => self.pass_through(t, d, head).await,
        }
    }

    /// Streams a blob from upstream without caching it (it cannot fit the budget).
    async fn pass_through(&self, t: &Target, d: &Digest, head: bool) -> Result<BlobOut, Error> {
        if head {
            return upstream_head(t, d).await;
        }
        let s = t.registry.blob(&t.repo, d, 0).await.map_err(blob_error)?;
        let total = s
            .total
            .ok_or_else(|| UpstreamError::Protocol("blob without a length".into()))?;
        Ok(BlobOut {
            total,
            range: None,
            body: Some(BlobSource::Stream(s.body)),
            outcome: Outcome::Pass,
        })
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

/// Answers a HEAD of an uncached blob with upstream's HEAD: nothing is downloaded.
async fn upstream_head(t: &Target, d: &Digest) -> Result<BlobOut, Error> {
    let total = t.registry.blob_head(&t.repo, d).await.map_err(blob_error)?;
    Ok(BlobOut {
        total,
        range: None,
        body: None,
        outcome: Outcome::Pass,
    })
}

fn complete(
    file: Arc<File>,
    total: u64,
    range: Option<&str>,
    head: bool,
    outcome: Outcome,
) -> Result<BlobOut, Error> {
    let part = resolve_range(range, total)?;
    let body = (!head).then_some(BlobSource::File(file));
    Ok(BlobOut {
        total,
        range: part,
        body,
        outcome,
    })
}

fn resolve_range(range: Option<&str>, total: u64) -> Result<Option<ByteRange>, Error> {
    use crate::http::{parse_range, RangeAnswer};
    match parse_range(range, total) {
        RangeAnswer::Full => Ok(None),
        RangeAnswer::Partial(r) => Ok(Some(r)),
        RangeAnswer::Unsatisfiable => Err(Error::RangeNotSatisfiable { size: total }),
    }
}

fn manifest_error(e: UpstreamError) -> Error {
    match e {
        UpstreamError::NotFound => Error::ManifestUnknown,
        e => Error::Upstream(e),
    }
}

fn blob_error(e: UpstreamError) -> Error {
    match e {
        UpstreamError::NotFound => Error::BlobUnknown,
        e => Error::Upstream(e),
    }
}

/// Looks up the upstream a request names (`?ns=`, a path prefix, or Docker Hub).
pub fn resolve_upstream(upstreams: &Upstreams, name: &str) -> Result<Rc<Registry>, Error> {
    upstreams
        .get(name)
        .ok_or_else(|| Error::UnknownUpstream(name.to_owned()))
}
