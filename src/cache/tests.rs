//! The cache's promises, tested without an upstream: lookups, permits that settle their
//! fill however they end, budgets, partial blobs, the background index.

use super::fill::{FillFailure, Phase};
use super::permit::{self, NoRoom};
use super::store::Origin;
use super::*;
use crate::http::Progress;
use crate::reference::{Repository, UpstreamName};
use futures_lite::future;
use std::task::{Context, Poll};

fn open(dir: &Path, max: Option<u64>) -> Rc<Cache> {
    let cache = Rc::new(Cache::open(dir, max, Default::default()).unwrap());
    future::block_on(cache.clone().rebuild_index());
    cache
}

fn origin(total: Option<u64>) -> Origin {
    Origin {
        upstream: UpstreamName::docker_hub(),
        repo: Repository::parse("library/app").unwrap(),
        total,
    }
}

fn lead(cache: &Rc<Cache>, d: &Digest) -> Permit {
    match cache.lookup(d).unwrap() {
        Lookup::Lead(p) => p,
        other => panic!("expected Lead, got {other:?}"),
    }
}

/// Leads a fill of `d` and begins it for `n` bytes with room to keep it.
fn begun(cache: &Rc<Cache>, d: &Digest, n: u64) -> Permit {
    let mut permit = lead(cache, d);
    future::block_on(permit.begin(Some(n), &origin(Some(n))))
        .unwrap()
        .unwrap();
    permit
}

/// Fails a fill as a cut upstream connection does (its partial file is kept).
fn cut(permit: Permit) {
    permit.fail(FillFailure::Upstream(
        crate::error::UpstreamError::Unavailable("cut".into()),
    ));
}

/// A blob of `len` bytes cycling through `0..period`, and its digest.
fn patterned(len: u64, period: u64) -> (Vec<u8>, Digest) {
    let blob: Vec<u8> = (0..len).map(|i| (i % period) as u8).collect();
    let d = Digest::of(&blob);
    (blob, d)
}

fn follow(cache: &Rc<Cache>, d: &Digest) -> Rc<Fill> {
    match cache.lookup(d).unwrap() {
        Lookup::Follow(f) => f,
        other => panic!("expected Follow, got {other:?}"),
    }
}

/// Polls a reader's progress once, without a real waker.
fn readable(p: &mut fill::FillProgress, pos: u64) -> Poll<io::Result<u64>> {
    let waker =
        futures_lite::future::block_on(future::poll_fn(|cx| Poll::Ready(cx.waker().clone())));
    p.poll_readable(pos, &mut Context::from_waker(&waker))
}

#[test]
fn one_lookup_answers_lead_then_follow_then_hit() {
    let dir = tempfile::tempdir().unwrap();
    let cache = open(dir.path(), Some(1 << 20));
    let blob = b"a blob of some bytes".to_vec();
    let d = Digest::of(&blob);
    let mut permit = lead(&cache, &d);
    let fill = follow(&cache, &d);
    assert!(Rc::ptr_eq(&fill, &permit.fill()));
    future::block_on(permit.begin(Some(blob.len() as u64), &origin(None)))
        .unwrap()
        .unwrap();
    let mut reader = fill.follow().unwrap();
    permit.write(&blob[..10]).unwrap();
    assert!(matches!(readable(&mut reader, 0), Poll::Ready(Ok(9))));
    permit.write(&blob[10..]).unwrap();
    let n = blob.len() as u64;
    assert!(
        matches!(readable(&mut reader, n - 1), Poll::Pending),
        "the last byte waits for the digest"
    );
    permit.verify().unwrap();
    assert!(
        matches!(readable(&mut reader, n - 1), Poll::Ready(Ok(x)) if x == n),
        "before the fsync"
    );
    permit.commit().unwrap();
    assert!(
        matches!(readable(&mut reader, n), Poll::Ready(Ok(x)) if x == n),
        "the end"
    );
    assert!(matches!(fill.phase(), Phase::Committed { .. }));
    match cache.lookup(&d).unwrap() {
        Lookup::Hit(_, size) => assert_eq!(size, n),
        other => panic!("{other:?}"),
    }
    let s = cache.stats();
    assert_eq!((s.blobs, s.cached, s.reserved, s.fills), (1, n, 0, 0));
}

#[test]
fn a_dropped_permit_fails_its_waiters_and_frees_the_digest() {
    let dir = tempfile::tempdir().unwrap();
    let cache = open(dir.path(), Some(1 << 20));
    let d = Digest::of(b"never written");
    // Dropped before it began: the waiter is woken with a failure, not left hanging.
    let permit = lead(&cache, &d);
    let fill = follow(&cache, &d);
    let waiter = fill.clone();
    let ex = smol::LocalExecutor::new();
    let waited = ex.spawn(async move { waiter.wait(Phase::is_final).await });
    future::block_on(ex.run(async {
        future::yield_now().await;
        drop(permit);
        let phase = waited.await;
        assert!(
            matches!(phase, Phase::Failed(FillFailure::Abandoned)),
            "{phase:?}"
        );
    }));
    // And the next request leads a new fill.
    let mut permit = lead(&cache, &d);
    future::block_on(permit.begin(Some(100), &origin(None)))
        .unwrap()
        .unwrap();
    permit.write(b"some").unwrap();
    let fill = permit.fill();
    let mut reader = fill.follow().unwrap();
    assert_eq!(cache.stats().reserved, 100);
    drop(permit); // dropped while writing
    assert!(matches!(readable(&mut reader, 0), Poll::Ready(Err(_))));
    let s = cache.stats();
    assert_eq!((s.reserved, s.fills, s.partial), (0, 0, 0), "{s:?}");
    assert_eq!(
        fs_count(&dir.path().join("tmp")),
        0,
        "a tiny partial is not kept"
    );
}

#[test]
fn a_permit_in_a_task_that_is_dropped_fails_its_waiters() {
    let dir = tempfile::tempdir().unwrap();
    let cache = open(dir.path(), Some(1 << 20));
    let d = Digest::of(b"x");
    let permit = lead(&cache, &d);
    let fill = follow(&cache, &d);
    {
        let ex = smol::LocalExecutor::new();
        // A fill task that never ends (an upstream that never answers) …
        ex.spawn(async move {
            let _permit = permit;
            future::pending::<()>().await
        })
        .detach();
        future::block_on(ex.tick());
    } // … and its executor goes away.
    assert!(matches!(
        fill.phase(),
        Phase::Failed(FillFailure::Abandoned)
    ));
    assert!(matches!(cache.lookup(&d).unwrap(), Lookup::Lead(_)));
}

#[test]
fn a_blob_over_the_budget_gets_no_room() {
    let dir = tempfile::tempdir().unwrap();
    let cache = open(dir.path(), Some(1000));
    let mut permit = lead(&cache, &Digest::of(b"big"));
    let begun = future::block_on(permit.begin(Some(1001), &origin(None))).unwrap();
    assert_eq!(begun, Err(NoRoom));
    assert_eq!(cache.stats().reserved, 0);
}

#[test]
fn a_digest_mismatch_restarts_in_a_new_file_and_cuts_old_readers() {
    let dir = tempfile::tempdir().unwrap();
    let cache = open(dir.path(), Some(1 << 20));
    let blob = b"the right bytes".to_vec();
    let d = Digest::of(&blob);
    let n = blob.len() as u64;
    let mut permit = begun(&cache, &d, n);
    let fill = permit.fill();
    let mut early = fill.follow().unwrap();
    permit.write(b"the wrong bytes").unwrap();
    assert!(matches!(readable(&mut early, 0), Poll::Ready(Ok(_))));
    let why = permit.verify().unwrap_err();
    assert!(matches!(why, permit::Finish::Mismatch(_)), "{why:?}");
    permit.restart(&origin(Some(n))).unwrap();
    assert!(
        matches!(readable(&mut early, 3), Poll::Ready(Err(_))),
        "old reader cut"
    );
    let mut late = fill.follow().unwrap();
    permit.write(&blob).unwrap();
    permit.verify().unwrap();
    permit.commit().unwrap();
    assert!(matches!(readable(&mut late, 0), Poll::Ready(Ok(x)) if x == n));
    assert_eq!(std::fs::read(cache.blob_path(&d)).unwrap(), blob);
}

#[test]
fn a_partial_blob_is_kept_counted_and_resumed_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (blob, d) = patterned(3 * permit::KEEP_PARTIAL_MIN, 7);
    let n = blob.len() as u64;
    let half = (n / 2) as usize;
    {
        let cache = open(dir.path(), Some(10 * n));
        let mut permit = begun(&cache, &d, n);
        permit.write(&blob[..half]).unwrap();
        cut(permit);
        assert_eq!(cache.stats().partial, half as u64, "kept and counted");
    }
    let cache = open(dir.path(), Some(10 * n));
    assert_eq!(
        cache.stats().partial,
        half as u64,
        "counted after a restart"
    );
    let found = cache.take_found_partials();
    assert_eq!((found.len(), found[0].len), (1, half as u64));
    let mut permit = lead(&cache, &d);
    assert_eq!(permit.resume_from(), half as u64);
    future::block_on(async {
        permit
            .begin(Some(n), &origin(Some(n)))
            .await
            .unwrap()
            .unwrap();
        permit.rehash().await.unwrap();
    });
    assert_eq!(permit.written(), half as u64);
    let s = cache.stats();
    assert_eq!((s.partial, s.reserved), (0, n), "{s:?}");
    permit.write(&blob[half..]).unwrap();
    permit.verify().unwrap();
    permit.commit().unwrap();
    assert_eq!(std::fs::read(cache.blob_path(&d)).unwrap(), blob);
    assert_eq!(fs_count(&dir.path().join("tmp")), 0);
}

/// Disk blocks a file holds (not its length).
fn allocated(path: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).unwrap().blocks() * 512
}

#[test]
fn a_fill_preallocates_its_blob_and_a_kept_partial_holds_only_its_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let (blob, d) = patterned(8 * permit::KEEP_PARTIAL_MIN, 11);
    let (n, half) = (blob.len() as u64, blob.len() / 2);
    let part = dir.path().join("tmp").join(format!("{}.part", d.hex()));
    // A kept partial may hold a page or so more than its bytes.
    let slack = 64 * 1024;
    {
        let cache = open(dir.path(), Some(10 * n));
        let mut permit = begun(&cache, &d, n);
        permit.write(&blob[..half]).unwrap();
        if allocated(&part) < n {
            eprintln!("this filesystem does not preallocate: nothing to check");
            return;
        }
        assert_eq!(std::fs::metadata(&part).unwrap().len(), half as u64);
        cut(permit);
        assert_eq!(cache.stats().partial, half as u64, "kept");
        assert!(
            allocated(&part) <= half as u64 + slack,
            "a kept partial gives back its preallocation: {} bytes on disk",
            allocated(&part)
        );
        // Resumed, preallocated again; then the process dies without a word (kill -9).
        let permit = begun(&cache, &d, n);
        assert!(allocated(&part) >= n);
        std::mem::forget(permit);
    }
    let cache = open(dir.path(), Some(10 * n));
    assert_eq!(cache.stats().partial, half as u64, "found at start");
    assert!(
        allocated(&part) <= half as u64 + slack,
        "a partial found at start gives back its preallocation: {} bytes on disk",
        allocated(&part)
    );
}

#[test]
fn hits_are_answered_before_the_index_is_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    {
        let cache = open(dir.path(), Some(1 << 20));
        for i in 0..(3 * SCAN_BATCH as u32) {
            let b = i.to_le_bytes();
            cache.put_manifest(&Digest::of(&b), &b).unwrap();
        }
    }
    let cache = Rc::new(Cache::open(dir.path(), Some(1 << 20), Default::default()).unwrap());
    assert!(!cache.stats().indexed);
    let d = Digest::of(&7u32.to_le_bytes());
    assert!(matches!(cache.lookup(&d).unwrap(), Lookup::Hit(_, 4)));
    let ex = smol::LocalExecutor::new();
    let rebuilt = ex.spawn(cache.clone().rebuild_index());
    future::block_on(ex.tick());
    let s = cache.stats();
    assert!(
        !s.indexed && s.blobs < 3 * SCAN_BATCH,
        "the scan yields: {s:?}"
    );
    future::block_on(ex.run(rebuilt));
    let s = cache.stats();
    assert!(s.indexed, "{s:?}");
    assert_eq!(
        (s.blobs, s.cached),
        (3 * SCAN_BATCH, 12 * SCAN_BATCH as u64),
        "each once"
    );
}

#[test]
fn reopen_enforces_a_smaller_budget_once_indexed() {
    let dir = tempfile::tempdir().unwrap();
    let blobs: Vec<Vec<u8>> = (0..4u8).map(|i| vec![i; 300]).collect();
    {
        let cache = open(dir.path(), Some(1000));
        for b in &blobs {
            cache.put_manifest(&Digest::of(b), b).unwrap();
        }
        let s = cache.stats();
        assert!(s.cached <= 1000 && s.blobs == 3, "{s:?}");
        // Uses recorded a second apart, oldest first.
        for (i, b) in blobs.iter().enumerate() {
            let when = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000 + i as u64);
            let _ = cache.store.touch(&Digest::of(b), when);
        }
    }
    let cache = open(dir.path(), Some(400));
    let s = cache.stats();
    assert!(s.cached <= 400, "{s:?}");
    assert!(cache.store.has_blob(&Digest::of(&blobs[3])), "newest kept");
}

#[test]
fn derived_budget_is_positive_and_below_free_space() {
    let dir = tempfile::tempdir().unwrap();
    let avail = || {
        let st = rustix::fs::statvfs(dir.path()).unwrap();
        st.f_bavail * st.f_frsize
    };
    // Other processes may write to this filesystem meanwhile: the budget was derived from
    // the free space at some moment between these two readings.
    let before = avail();
    let cache = open(dir.path(), None);
    let after = avail();
    let s = cache.stats();
    assert!(s.max > 0 && s.max <= before.max(after), "{s:?}");
}

#[test]
fn a_layer_is_never_read_as_a_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let cache = open(dir.path(), Some(1 << 20));
    let layer = vec![0u8; 5000];
    let d = Digest::of(&layer);
    cache.put_manifest(&d, &layer).unwrap();
    assert_eq!(
        cache.read_manifest(&d, 4096).unwrap(),
        Some(Err(NotAManifest { len: 5000 }))
    );
    assert_eq!(cache.read_manifest(&Digest::of(b"no"), 4096).unwrap(), None);
}

fn fs_count(dir: &Path) -> usize {
    std::fs::read_dir(dir).unwrap().count()
}
