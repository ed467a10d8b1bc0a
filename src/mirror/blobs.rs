//! Blobs: from the cache (`HIT`), by following a fill in progress (`COALESCED`), by leading
//! one (`MISS`), or streamed uncached when it cannot be kept (`PASS`) — through the one
//! relay its readers share, or, for a `Range` or a late reader, a request of its own.
//!
//! One [`Cache::lookup`](crate::cache::Cache::lookup) per attempt. A reader that has not
//! been sent a byte looks up again when the fill it waited for failed in a way that may
//! not be its own: abandoned, or a 404 from another repository than the one it asked
//! through (the same digest may be readable there). At most [`MAX_LOOKUPS`] attempts.

use super::fill::{self, SMALL_BLOB_BYTES};
use super::{Mirror, Target};
use crate::cache::fill::{FillFailure, Phase};
use crate::cache::relay::{OwnStream, Relay, Reopen};
use crate::cache::Lookup;
use crate::error::{Error, UpstreamError};
use crate::http::{ByteRange, Growing, Outcome};
use crate::reference::Digest;
use futures_lite::{AsyncRead, AsyncReadExt};
use std::fs::File;
use std::io;
use std::sync::Arc;

/// Lookups one request makes at most (the first, and retries after another request's
/// fill failed in a way that may not hold for this one).
pub const MAX_LOOKUPS: u32 = 3;

/// A blob (or part of one) ready to stream.
pub struct BlobOut {
    /// The blob's full length; `None` while a fill of unknown length is running.
    pub total: Option<u64>,
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
            "BlobOut {{ total: {:?}, range: {:?}, outcome: {} }}",
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
    /// Cached → `HIT`. A fill in progress → follow it (`COALESCED`). Otherwise lead one
    /// (`MISS`); a HEAD of an uncached blob asks upstream's HEAD instead, downloading
    /// nothing. Blobs up to [`SMALL_BLOB_BYTES`] are answered once verified and committed.
    pub async fn blob(
        &self,
        t: &Target,
        d: &Digest,
        range: Option<&str>,
        head: bool,
    ) -> Result<BlobOut, Error> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let found = if head {
                self.cache.peek(d)?
            } else {
                Some(self.cache.lookup(d)?)
            };
            let (fill, outcome) = match found {
                None => return upstream_head(t, d).await,
                Some(Lookup::Hit(file, total)) => {
                    return complete(file, total, range, head, Outcome::Hit)
                }
                Some(Lookup::Follow(f)) => (f, Outcome::Coalesced),
                Some(Lookup::Lead(permit)) => {
                    let f = permit.fill();
                    self.executor.spawn(fill::run(permit, t.clone())).detach();
                    (f, Outcome::Miss)
                }
            };
            let phase = fill.wait(|p| may_answer(p, head)).await;
            match phase {
                Phase::Committed { total, file } => {
                    return complete(file, total, range, head, outcome)
                }
                Phase::Writing { total, file } => {
                    let part = match total {
                        Some(total) => resolve_range(range, total)?,
                        None => None, // unknown length: the whole blob (200), chunked
                    };
                    let (start, len) = match (part, total) {
                        (Some(r), _) => (r.start, Some(r.end - r.start)),
                        (None, total) => (0, total),
                    };
                    let body = match (head, fill.follow()) {
                        (true, _) => None,
                        (false, Some(progress)) => Some(BlobSource::Growing(Growing {
                            file,
                            start,
                            len,
                            progress: Box::new(progress),
                        })),
                        // Bytes were freed from a fill short of disk: too late for it.
                        (false, None) if attempt < MAX_LOOKUPS => continue,
                        (false, None) => return Err(gone()),
                    };
                    return Ok(BlobOut {
                        total,
                        range: part,
                        body,
                        outcome,
                    });
                }
                Phase::Pass(relay) => return self.pass_through(t, d, &relay, range, head).await,
                Phase::Failed(f) if attempt < MAX_LOOKUPS && retry_after(&f, t) => {
                    log::debug!("{d}: the fill this request waited for failed ({f:?}); again");
                }
                Phase::Failed(f) => return Err(f.into()),
                // Went through without being kept, and nobody new may start on it.
                Phase::Streamed { .. } if attempt < MAX_LOOKUPS => {}
                Phase::Streamed { .. } | Phase::Connecting => return Err(gone()),
            }
        }
    }

    /// Streams a blob that cannot be kept: through the shared relay from byte 0 if it
    /// still starts there; a `Range` (or a reader too late for the relay) as a request of
    /// its own, forwarded as a range.
    async fn pass_through(
        &self,
        t: &Target,
        d: &Digest,
        relay: &std::rc::Rc<Relay>,
        range: Option<&str>,
        head: bool,
    ) -> Result<BlobOut, Error> {
        let total = relay.total();
        let part = match total {
            Some(total) => resolve_range(range, total)?,
            None => None,
        };
        let out = |body, part| BlobOut {
            total,
            range: part,
            body,
            outcome: Outcome::Pass,
        };
        if head {
            return Ok(out(None, part));
        }
        if let Some(r) = part {
            let len = r.end - r.start;
            let body = own_stream(t, *d, r.start, Some(r.end - 1)).await?;
            return Ok(out(
                Some(BlobSource::Stream(Box::new(body.take(len)))),
                part,
            ));
        }
        if let Some(reader) = relay.attach(reopen(t, *d)) {
            return Ok(out(Some(BlobSource::Stream(Box::new(reader))), None));
        }
        let body = own_stream(t, *d, 0, None).await?;
        Ok(out(Some(BlobSource::Stream(body)), None))
    }
}

/// A fill this request could not join any more, three times in a row.
fn gone() -> Error {
    Error::Upstream(UpstreamError::Unavailable(
        "the blob could not be kept and went by".into(),
    ))
}

/// Whether a waiting request can be answered in `phase`: a small blob (and a HEAD of one
/// of unknown length) only once it is over, anything else once bytes may flow.
fn may_answer(phase: &Phase, head: bool) -> bool {
    match phase {
        Phase::Connecting => false,
        Phase::Writing { total: Some(t), .. } => head || *t > SMALL_BLOB_BYTES,
        Phase::Writing { total: None, .. } => !head,
        _ => true,
    }
}

/// Whether a request through `t` should look up again after a fill failed with `f`.
fn retry_after(f: &FillFailure, t: &Target) -> bool {
    match f {
        FillFailure::NotFound { upstream, repo } => {
            upstream != t.registry.name() || *repo != t.repo
        }
        FillFailure::Abandoned => true,
        FillFailure::Upstream(_) | FillFailure::Local(_) => false,
    }
}

/// This request's own upstream stream of the blob from `start` (to `end`, inclusive),
/// positioned exactly there even if upstream ignores `Range`.
async fn own_stream(
    t: &Target,
    d: Digest,
    start: u64,
    end: Option<u64>,
) -> Result<Box<dyn AsyncRead + Unpin>, Error> {
    let s = t
        .registry
        .blob(&t.repo, &d, start, end)
        .await
        .map_err(blob_error)?;
    let mut body = s.body;
    if s.offset == 0 && start > 0 {
        // Upstream ignored `Range` and sent the whole blob.
        skip(&mut body, start)
            .await
            .map_err(|e| Error::Upstream(UpstreamError::Unavailable(e.to_string())))?;
    }
    Ok(body)
}

/// How a relay reader that fell out of the window continues: its own ranged request.
fn reopen(t: &Target, d: Digest) -> Reopen {
    let t = t.clone();
    Box::new(move |pos| -> OwnStream {
        Box::pin(async move {
            own_stream(&t, d, pos, None)
                .await
                .map_err(|e| io::Error::other(e.to_string()))
        })
    })
}

/// Reads and discards `n` bytes.
async fn skip(body: &mut Box<dyn AsyncRead + Unpin>, mut n: u64) -> io::Result<()> {
    let mut buf = vec![0u8; 64 * 1024];
    while n > 0 {
        let want = n.min(buf.len() as u64) as usize;
        let got = body.read(&mut buf[..want]).await?;
        if got == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        n -= got as u64;
    }
    Ok(())
}

/// Answers a HEAD of an uncached blob with upstream's HEAD: nothing is downloaded.
async fn upstream_head(t: &Target, d: &Digest) -> Result<BlobOut, Error> {
    let total = t.registry.blob_head(&t.repo, d).await.map_err(blob_error)?;
    Ok(BlobOut {
        total: Some(total),
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
        total: Some(total),
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
