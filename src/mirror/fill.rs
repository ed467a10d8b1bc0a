//! How a cold blob is fetched: the fill task that runs a cache [`Permit`] — its upstream
//! stream (a [`Source`], which resumes itself within the fill's patience), one retry from
//! zero after a digest mismatch, a full disk — and the pump that feeds a pass-through
//! relay when the blob cannot be kept. The cache below only knows files and budgets; this
//! is the policy above it.
//!
//! A fill runs as a task of its own, not tied to the client that started it: the client
//! leaving does not cancel it. Its permit's `Drop` settles the fill whatever way the task
//! ends, so no reader can be left waiting.
//!
//! Resuming: a fill that finds a partial file of the blob (left by a failed fill, or by a
//! run that was killed) asks upstream for `Range: bytes=<len>-`, re-hashes the bytes on
//! disk to rebuild the hasher, and continues. If the whole then does not match the digest
//! (a power cut can leave garbage in a partial's tail), it starts over from zero once.

use super::source::{bad, Source};
use super::Target;
use crate::cache::fill::FillFailure;
use crate::cache::permit::{Finish, Permit, WriteError};
use crate::cache::relay::{Relay, Room};
use crate::cache::store::Origin;
use crate::cache::Cache;
use crate::error::UpstreamError;
use crate::upstream::Upstreams;
use futures_lite::FutureExt;
use smol::{LocalExecutor, Timer};
use std::rc::Rc;
use std::time::Duration;

/// Bytes moved per upstream read and disk write: one buffer per fill (not per reader), so
/// it may be larger than a connection's; large enough that the per-chunk costs (a `pwrite`,
/// a `sendfile` per reader, a yield) are small next to hashing, small enough to stay in a
/// Pi's L2 cache between the read, the hash and the write (1 MiB measured ~8 % less CPU on
/// a desktop x86 with a larger L2).
pub const FILL_BUF: usize = 256 * 1024;

/// A fill from an upstream that is always ready lets the reactor look at the other
/// sockets after this many bytes: a request arriving meanwhile waits for at most about
/// this much of one fill's work (a few milliseconds).
pub const IO_EVERY: usize = 1 << 20;

/// Blobs up to this size (configs, small layers) are verified before their first byte is
/// sent: readers wait for the commit, and a digest mismatch is fetched once more before
/// anyone is answered. Larger blobs stream as they arrive (last byte held back).
pub const SMALL_BLOB_BYTES: u64 = 1 << 20;

/// Longest a pass-through pump waits for a reader to make room in its window before it
/// gives up on them: the same bound a client gets to accept bytes of a reply.
pub const RELAY_PATIENCE: Duration = Duration::from_secs(60);

/// Longest a fill short of disk waits for its readers to read (and so free) bytes.
pub const DRAIN_PATIENCE: Duration = Duration::from_secs(60);

/// The fill task: fetches `permit`'s blob through `t` into the cache — or, if it cannot be
/// kept, into a relay its readers share.
pub(super) async fn run(mut permit: Permit, t: Target) {
    let d = permit.digest();
    let from = permit.resume_from();
    let mut src = match Source::open(&t, d, from).await {
        Ok(s) => s,
        Err(f) => return permit.fail(f),
    };
    if src.pos() != from || src.total().is_some_and(|total| from >= total) {
        permit.discard_partial();
        if src.pos() != 0 {
            src = match Source::open(&t, d, 0).await {
                Ok(s) => s,
                Err(f) => return permit.fail(f),
            };
        }
    } else if from > 0 {
        log::info!("fill {d}: resuming from byte {from} of {:?}", src.total());
    }
    let origin = Origin {
        upstream: t.registry.name().clone(),
        repo: t.repo.clone(),
        total: src.total(),
    };
    match permit.begin(src.total(), &origin).await {
        Err(e) => return permit.fail(FillFailure::Local(e.to_string())),
        Ok(Err(_no_room)) => {
            if src.pos() != 0 {
                src = match Source::open(&t, d, 0).await {
                    Ok(s) => s,
                    Err(f) => return permit.fail(f),
                };
            }
            log::info!(
                "{d} ({:?} bytes) does not fit the budget: streaming it uncached",
                src.total()
            );
            return pass(permit, src).await;
        }
        Ok(Ok(())) => {}
    }
    if let Err(e) = permit.rehash().await {
        return permit.fail(FillFailure::Local(e.to_string()));
    }
    if permit.written() != src.pos() {
        // The partial file was shorter than it looked: continue from what is there.
        if let Err(f) = src.reopen(permit.written()).await {
            return permit.fail(f);
        }
    }
    let mut retried = false;
    let mut buf = vec![0u8; FILL_BUF];
    loop {
        if let Err(f) = copy(&mut permit, &mut src, &mut buf).await {
            return permit.fail(f);
        }
        match permit.verify() {
            Ok(()) => {
                // Let the readers send the last byte before the fsync holds the thread.
                futures_lite::future::yield_now().await;
                if let Err(e) = permit.commit() {
                    permit.fail(FillFailure::Local(format!("verified, but not kept: {e}")));
                }
                return;
            }
            Err(Finish::Mismatch(m)) if !retried && !permit.is_draining() => {
                log::warn!(
                    "fill {d}: {} bytes hash to {}; fetching it once more from zero",
                    m.len,
                    m.got
                );
                retried = true;
                if let Err(e) = permit.restart(&origin) {
                    return permit.fail(FillFailure::Local(e.to_string()));
                }
                src = match Source::open(&t, d, 0).await {
                    Ok(s) => s,
                    Err(f) => return permit.fail(f),
                };
            }
            Err(Finish::Mismatch(m)) => {
                let why = format!("{} bytes hash to {}, not {d}", m.len, m.got);
                return permit.fail(bad(why));
            }
            Err(Finish::Short { len, total }) => {
                return permit.fail(bad(format!("upstream sent {len} of {total} bytes")));
            }
        }
    }
}

/// Upstream → temp file until the end of the stream.
async fn copy(permit: &mut Permit, src: &mut Source, buf: &mut [u8]) -> Result<(), FillFailure> {
    let mut since_io = 0;
    loop {
        let n = src.read(buf).await?;
        if n == 0 {
            return Ok(());
        }
        write(permit, &buf[..n]).await?;
        // A fast upstream never makes the read wait: let the readers send what arrived,
        // and now and then the reactor see the other connections.
        since_io += n;
        if since_io >= IO_EVERY {
            since_io = 0;
            crate::cache::let_io_in().await;
        } else {
            futures_lite::future::yield_now().await;
        }
    }
}

/// Writes one chunk, making room when the disk is full: evict and write again; if nothing
/// is left to evict, stop keeping the blob and free what the readers have read.
async fn write(permit: &mut Permit, bytes: &[u8]) -> Result<(), FillFailure> {
    loop {
        match permit.write(bytes) {
            Ok(()) => return Ok(()),
            Err(WriteError::Io(e)) => return Err(FillFailure::Local(e.to_string())),
            Err(WriteError::OverBudget) => permit.drain(),
            Err(WriteError::Full) => {
                if !permit.is_draining() {
                    if permit.make_room() {
                        continue;
                    }
                    permit.drain();
                }
                if !permit.has_readers() {
                    return Err(FillFailure::Local(
                        "disk full, and nobody is reading".into(),
                    ));
                }
                let moved = permit.listen_moved();
                match permit.free_read_bytes() {
                    Ok(true) => {}
                    Ok(false) => {
                        let waited = async {
                            moved.await;
                            true
                        }
                        .or(async {
                            Timer::after(DRAIN_PATIENCE).await;
                            false
                        });
                        if !waited.await {
                            return Err(FillFailure::Local(
                                "disk full, and the readers stopped reading".into(),
                            ));
                        }
                    }
                    Err(e) => return Err(FillFailure::Local(format!("disk full: {e}"))),
                }
            }
        }
    }
}

/// The blob cannot be kept: its readers share `src` through a relay.
async fn pass(mut permit: Permit, src: Source) {
    let relay = Relay::new(permit.digest(), src.total());
    permit.pass(relay.clone());
    // The requests waiting on the fill were just woken: let them attach before bytes flow.
    futures_lite::future::yield_now().await;
    pump(&relay, src).await;
    drop(permit); // findable until the stream is over: later requests may still join
}

/// Upstream → relay until the end, or until every reader has left.
async fn pump(relay: &Relay, mut src: Source) {
    let mut buf = vec![0u8; FILL_BUF];
    loop {
        let moved = relay.listen_moved();
        let want = match relay.room(buf.len()) {
            Room::Push(n) => n,
            Room::Deserted => {
                relay.fail("nobody is reading".into());
                return;
            }
            Room::Wait => {
                let waited = async {
                    moved.await;
                    true
                }
                .or(async {
                    Timer::after(RELAY_PATIENCE).await;
                    false
                });
                if !waited.await {
                    relay.fail("readers stopped reading".into());
                    return;
                }
                continue;
            }
        };
        match src.read(&mut buf[..want]).await {
            Ok(0) => {
                if let Err(why) = relay.finish() {
                    log::warn!("pass-through {}: {why}", src.digest());
                }
                return;
            }
            Ok(n) => relay.push(&buf[..n]),
            Err(f) => {
                log::warn!("pass-through {} failed: {f:?}", src.digest());
                relay.fail(format!("{f:?}"));
                return;
            }
        }
    }
}

/// At start: the index is rebuilt in the background, and partial blobs left by an earlier
/// run are checked against their upstream — one it no longer has (or that is no longer
/// configured) is deleted; one that cannot be checked now is kept.
pub(super) fn spawn_startup(
    cache: &Rc<Cache>,
    upstreams: &Upstreams,
    executor: &LocalExecutor<'static>,
) {
    executor.spawn(cache.clone().rebuild_index()).detach();
    for p in cache.take_found_partials() {
        let Some(registry) = upstreams.get(&p.origin.upstream) else {
            cache.forget_partial(&p.digest);
            continue;
        };
        let cache = cache.clone();
        executor
            .spawn(async move {
                match registry.blob_head(&p.origin.repo, &p.digest).await {
                    Err(UpstreamError::NotFound) => cache.forget_partial(&p.digest),
                    Ok(len) if p.origin.total.is_some_and(|t| t != len) => {
                        cache.forget_partial(&p.digest)
                    }
                    _ => {}
                }
            })
            .detach();
    }
}
