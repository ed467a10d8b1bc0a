//! Blobs: from the cache (`HIT`), by joining a fill in progress (`COALESCED`), by starting
//! one (`MISS`), or streamed uncached when it cannot fit (`PASS`).

use super::{Mirror, Target};
use crate::cache::fill::{self, FillProgress, Phase};
use crate::error::{Error, UpstreamError};
use crate::http::{ByteRange, Growing, Outcome};
use crate::reference::Digest;
use futures_lite::AsyncRead;
use std::fs::File;
use std::sync::Arc;

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
    /// A file a fill is still writing.
    Growing(Growing),
    /// An upstream stream (not cached).
    Stream(Box<dyn AsyncRead + Unpin>),
}

impl std::fmt::Debug for BlobSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            BlobSource::File(_) => "File",
            BlobSource::Growing(_) => "Growing",
            BlobSource::Stream(_) => "Stream",
        })
    }
}

impl Mirror {
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
                    BlobSource::Growing(Growing {
                        file,
                        start,
                        len: Some(end - start),
                        progress: Box::new(FillProgress::new(fill.clone())),
                    })
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

fn blob_error(e: UpstreamError) -> Error {
    match e {
        UpstreamError::NotFound => Error::BlobUnknown,
        e => Error::Upstream(e),
    }
}
