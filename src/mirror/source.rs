//! [`Source`]: a cold blob's upstream stream, as a fill reads it — it resumes itself with
//! `Range` when the connection drops or stalls, within the fill's patience
//! ([`MAX_RESUMES`], [`MAX_STALLS`]), and discards what it already has when upstream
//! ignores `Range`.

use super::Target;
use crate::cache::fill::FillFailure;
use crate::error::UpstreamError;
use crate::reference::Digest;
use crate::upstream::Registry;
use futures_lite::{AsyncRead, AsyncReadExt};
use std::io;
use std::rc::Rc;

/// Times a fill resumes with `Range` after the upstream connection drops, before giving up.
pub const MAX_RESUMES: u32 = 3;

/// Upstream timeouts (silence for the whole upstream timeout) a fill accepts, across all
/// its resumes, before it gives up: a stalled upstream costs a blob at most this many
/// timeouts, not one per resume.
pub const MAX_STALLS: u32 = 2;

/// An upstream blob stream that resumes itself with `Range` when the connection drops, up
/// to the fill's patience.
pub(super) struct Source {
    registry: Rc<Registry>,
    target: Target,
    digest: Digest,
    body: Box<dyn AsyncRead + Unpin>,
    /// Blob offset of the next byte [`Source::read`] returns.
    pos: u64,
    /// Bytes of `body` to discard first (upstream ignored `Range`).
    skip: u64,
    /// The blob's length, if upstream said.
    total: Option<u64>,
    resumes: u32,
    stalls: u32,
}

impl Source {
    /// GETs the blob from `from` on. The stream may start earlier ([`Source::pos`]) if
    /// upstream ignored `Range`.
    pub(super) async fn open(t: &Target, d: Digest, from: u64) -> Result<Source, FillFailure> {
        let s = t
            .registry
            .blob(&t.repo, &d, from, None)
            .await
            .map_err(|e| failure(t, e))?;
        Ok(Source {
            registry: t.registry.clone(),
            target: t.clone(),
            digest: d,
            body: s.body,
            pos: s.offset,
            skip: 0,
            total: s.total,
            resumes: 0,
            stalls: 0,
        })
    }

    /// The blob.
    pub(super) fn digest(&self) -> Digest {
        self.digest
    }

    /// Where the next byte read is in the blob.
    pub(super) fn pos(&self) -> u64 {
        self.pos
    }

    /// The blob's length, if upstream said.
    pub(super) fn total(&self) -> Option<u64> {
        self.total
    }

    /// Continues the stream from `pos` (the writer has exactly those bytes).
    pub(super) async fn reopen(&mut self, pos: u64) -> Result<(), FillFailure> {
        let s = self
            .registry
            .blob(&self.target.repo, &self.digest, pos, None)
            .await
            .map_err(|e| failure(&self.target, e))?;
        self.skip = match s.offset {
            o if o == pos => 0,
            0 => pos, // upstream ignored Range: discard what we have
            o => return Err(bad(format!("resume asked for {pos}, got {o}"))),
        };
        if self.total.is_some() && s.total.is_some() && s.total != self.total {
            return Err(bad("blob length changed during resume".into()));
        }
        self.body = s.body;
        self.pos = pos;
        Ok(())
    }

    /// The next bytes (`Ok(0)` at the end); resumes after a dropped connection.
    pub(super) async fn read(&mut self, buf: &mut [u8]) -> Result<usize, FillFailure> {
        loop {
            let read = match self.body.read(buf).await {
                Ok(0) if self.total.is_some_and(|t| self.pos < t) => Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "upstream closed early",
                )),
                other => other,
            };
            match read {
                Ok(n) => {
                    let skipped = self.skip.min(n as u64) as usize;
                    self.skip -= skipped as u64;
                    if skipped == n && n > 0 {
                        continue;
                    }
                    buf.copy_within(skipped..n, 0);
                    let n = n - skipped;
                    if self.total.is_some_and(|t| self.pos + n as u64 > t) {
                        return Err(bad("more bytes than the announced length".into()));
                    }
                    self.pos += n as u64;
                    return Ok(n);
                }
                Err(e) => {
                    if e.kind() == io::ErrorKind::TimedOut {
                        self.stalls += 1;
                    } else {
                        self.resumes += 1;
                    }
                    let at = (self.pos, self.total);
                    if self.stalls >= MAX_STALLS || self.resumes > MAX_RESUMES {
                        let msg = format!(
                            "{} stalls and {} drops, giving up at {at:?}; last: {e}",
                            self.stalls, self.resumes
                        );
                        return Err(FillFailure::Upstream(UpstreamError::Unavailable(msg)));
                    }
                    log::warn!(
                        "fill {}: upstream read failed at {at:?} ({e}); resuming",
                        self.digest
                    );
                    self.reopen(self.pos).await?;
                }
            }
        }
    }
}

/// An upstream failure, as the fill's readers see it: a 404 names the repository asked.
pub(super) fn failure(t: &Target, e: UpstreamError) -> FillFailure {
    match e {
        UpstreamError::NotFound => FillFailure::NotFound {
            upstream: t.registry.name().clone(),
            repo: t.repo.clone(),
        },
        e => FillFailure::Upstream(e),
    }
}

pub(super) fn bad(msg: String) -> FillFailure {
    FillFailure::Upstream(UpstreamError::BadContent(msg))
}
