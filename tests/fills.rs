//! Cold blobs end to end, in-process against the fake upstream (and, for a restart, the
//! real binary): one upstream GET however many clients ask, also for blobs that cannot be
//! kept; fills that resume, verify and give up in time. Each test is one promise.

mod support;

use std::fs;
use std::thread;
use std::time::{Duration, Instant};
use support::client::{get, request};
use support::mirror::{pull, wait_until, Mirror};
use support::process::Server;
use support::{pseudo_random_bytes, FakeUpstream, TestImage};

/// Blob GETs (not HEADs) the fake received for `digest`.
fn gets(fake: &FakeUpstream, digest: &str) -> Vec<Option<String>> {
    fake.requests()
        .into_iter()
        .filter(|r| r.method == "GET" && r.target.contains(digest))
        .map(|r| r.range)
        .collect()
}

/// `n` clients GET `path` at once; returns their answers.
fn at_once(addr: std::net::SocketAddr, path: &str, n: usize) -> Vec<support::client::Resp> {
    let clients: Vec<_> = (0..n)
        .map(|_| {
            let path = path.to_owned();
            thread::spawn(move || get(addr, &path))
        })
        .collect();
    clients.into_iter().map(|c| c.join().unwrap()).collect()
}

#[test]
fn n_clients_of_a_blob_too_big_to_keep_cost_one_upstream_get() {
    // Issue 11: it cost 1 + N GETs (the fill opened the stream, dropped it, and every
    // client fetched again).
    let fake = FakeUpstream::start();
    let img = TestImage::new(40, &[6 << 20]);
    fake.push_image("library/big", "1", &img);
    fake.delay(Duration::from_millis(300)); // all six arrive while the fill connects
    let m = Mirror::start_with(&fake, |c| c.max_size = Some(1 << 20));
    let digest = img.layer_digest(0);
    let answers = at_once(m.addr, &format!("/v2/library/big/blobs/{digest}"), 6);
    for r in &answers {
        assert_eq!(r.status, 200);
        assert!(r.body == img.layers[0], "a reader got wrong bytes");
    }
    assert_eq!(
        gets(&fake, &digest),
        vec![None],
        "one upstream GET for six clients"
    );
    assert!(!m.blob_file(&digest).exists(), "over the budget: not kept");
}

#[test]
fn a_range_of_a_blob_that_cannot_be_kept_is_forwarded_as_a_range() {
    let fake = FakeUpstream::start();
    let img = TestImage::new(41, &[3 << 20]);
    fake.push_image("library/big", "1", &img);
    let m = Mirror::start_with(&fake, |c| c.max_size = Some(1 << 20));
    let digest = img.layer_digest(0);
    let r = request(
        m.addr,
        "GET",
        &format!("/v2/library/big/blobs/{digest}"),
        &[("Range", "bytes=1000000-1000099")],
    );
    assert_eq!(r.status, 206);
    assert_eq!(r.body, img.layers[0][1_000_000..1_000_100]);
    assert_eq!(
        r.header("content-range"),
        Some(format!("bytes 1000000-1000099/{}", 3 << 20).as_str())
    );
    let ranges = gets(&fake, &digest);
    assert!(
        ranges.contains(&Some("bytes=1000000-1000099".into())),
        "{ranges:?}"
    );
}

#[test]
fn a_404_through_one_repository_does_not_fail_a_reader_of_another() {
    // The same digest may be readable through another repository: its reader retries.
    let fake = FakeUpstream::start();
    let img = TestImage::new(42, &[2 << 20]);
    fake.push_image("library/has", "1", &img);
    fake.delay(Duration::from_millis(300));
    let m = Mirror::start(&fake);
    let digest = img.layer_digest(0);
    let addr = m.addr;
    let lacks = {
        let path = format!("/v2/library/lacks/blobs/{digest}");
        thread::spawn(move || get(addr, &path))
    };
    thread::sleep(Duration::from_millis(100)); // joins the fill the first one leads
    let has = get(addr, &format!("/v2/library/has/blobs/{digest}"));
    let lacks = lacks.join().unwrap();
    assert_eq!(
        (lacks.status, lacks.error_code().as_str()),
        (404, "BLOB_UNKNOWN")
    );
    assert_eq!(has.status, 200, "{}", has.text());
    assert!(has.body == img.layers[0]);
}

#[test]
fn a_blob_upstream_sends_chunked_is_cached_and_verified() {
    // Issue 6, defect 11: no Content-Length meant 502 for ever.
    let fake = FakeUpstream::start();
    let img = TestImage::new(43, &[3 << 20, 5000]);
    fake.push_image("library/app", "1", &img);
    fake.chunked_blobs(true);
    let m = Mirror::start(&fake);
    for i in 0..2 {
        let digest = img.layer_digest(i);
        let path = format!("/v2/library/app/blobs/{digest}");
        let r = get(m.addr, &path);
        assert_eq!(r.status, 200, "{}", r.text());
        assert!(r.body == img.layers[i], "layer {i}");
        wait_until("committed", || m.blob_file(&digest).exists());
        assert_eq!(get(m.addr, &path).body, img.layers[i]);
        assert_eq!(gets(&fake, &digest).len(), 1);
    }
    // And wrong chunked bytes are not kept.
    let other = pseudo_random_bytes(44, 2 << 20);
    let digest = fake.add_blob("library/app", &other);
    fake.corrupt(true);
    let r = get(m.addr, &format!("/v2/library/app/blobs/{digest}"));
    assert!(r.status != 200 || r.body != other);
    thread::sleep(Duration::from_millis(300));
    assert!(!m.blob_file(&digest).exists());
}

#[test]
fn a_small_blob_with_wrong_bytes_is_fetched_again_before_the_first_byte() {
    // A config's client gets the right bytes even when upstream sent a wrong copy once.
    let fake = FakeUpstream::start();
    let img = TestImage::new(45, &[100_000]);
    fake.push_image("library/app", "1", &img);
    fake.corrupt_next_blob();
    let m = Mirror::start(&fake);
    let digest = img.config_digest();
    let r = get(m.addr, &format!("/v2/library/app/blobs/{digest}"));
    assert_eq!(r.status, 200);
    assert!(r.body == img.config, "the client saw the wrong copy");
    assert_eq!(gets(&fake, &digest).len(), 2);
    // A large one streams, and its client never gets the wrong copy whole.
    fake.corrupt_next_blob();
    let layer = img.layer_digest(0);
    let r = get(m.addr, &format!("/v2/library/app/blobs/{layer}"));
    assert!(r.body != img.layers[0] || gets(&fake, &layer).len() == 2);
    assert!(r.body.len() < img.layers[0].len() || r.body == img.layers[0]);
}

#[test]
fn a_stalled_upstream_costs_a_fill_two_timeouts_not_one_per_resume() {
    // Issue 6, defect 18: headers, then silence, cost 4 × the timeout per blob.
    let fake = FakeUpstream::start();
    let img = TestImage::new(46, &[4 << 20]);
    fake.push_image("library/app", "1", &img);
    fake.stall_blobs_after(100_000);
    let m = Mirror::start_with(&fake, |c| c.upstream_timeout = Duration::from_secs(1));
    let digest = img.layer_digest(0);
    let t = Instant::now();
    let r = get(m.addr, &format!("/v2/library/app/blobs/{digest}"));
    let took = t.elapsed();
    assert!(
        r.body.len() < img.layers[0].len(),
        "a stalled blob cannot be whole"
    );
    assert!(took < Duration::from_millis(3500), "gave up after {took:?}");
    assert_eq!(
        gets(&fake, &digest).len(),
        2,
        "one resume after the first stall"
    );
    fake.heal();
    let r = get(m.addr, &format!("/v2/library/app/blobs/{digest}"));
    assert!(r.status == 200 && r.body == img.layers[0]);
}

#[test]
fn a_layer_asked_for_as_a_manifest_is_manifest_unknown() {
    // Issue 6, defect 5: it was read whole into memory and served as a manifest.
    let fake = FakeUpstream::start();
    let img = TestImage::new(47, &[5 << 20, 3000]);
    fake.push_image("library/app", "1", &img);
    let m = Mirror::start(&fake);
    pull(m.addr, "library/app", "1", &img);
    for digest in [
        img.layer_digest(0),
        img.layer_digest(1),
        img.config_digest(),
    ] {
        wait_until("cached", || m.blob_file(&digest).exists());
        let r = get(m.addr, &format!("/v2/library/app/manifests/{digest}"));
        assert_eq!(
            r.status,
            404,
            "{digest} answered with {} bytes",
            r.body.len()
        );
        assert_eq!(r.error_code(), "MANIFEST_UNKNOWN");
    }
    let r = get(
        m.addr,
        &format!("/v2/library/app/manifests/{}", img.manifest_digest()),
    );
    assert_eq!((r.status, r.body == img.manifest), (200, true));
}

#[test]
fn a_fill_killed_halfway_resumes_with_range_after_a_restart() {
    // Issue 11: a half-fetched big layer is continued from the bytes on disk.
    let fake = FakeUpstream::start();
    let img = TestImage::new(48, &[8 << 20]);
    fake.push_image("library/app", "1", &img);
    let half = 3 << 20;
    fake.stall_next_blob_after(half);
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let upstream = format!("docker.io={}", fake.url());
    let args = [
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--cache-dir",
        cache.to_str().unwrap(),
        "--upstream",
        upstream.as_str(),
    ];
    let digest = img.layer_digest(0);
    let path = format!("/v2/library/app/blobs/{digest}");
    let part = cache
        .join("tmp")
        .join(format!("{}.part", digest.trim_start_matches("sha256:")));
    {
        let server = Server::start_args(dir.path(), &args);
        let addr = server.addr;
        let p = path.clone();
        let client = thread::spawn(move || get(addr, &p));
        wait_until("half the layer on disk", || {
            fs::metadata(&part).is_ok_and(|m| m.len() == half as u64)
        });
        drop(server); // SIGKILL, mid-fill
        let _ = client.join();
    }
    assert!(part.exists(), "the partial blob survives the kill");
    fake.clear_log();
    let server = Server::start_args(dir.path(), &args);
    let r = server.get(&path);
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.body == img.layers[0], "resumed bytes are right");
    assert_eq!(
        gets(&fake, &digest),
        vec![Some(format!("bytes={half}-"))],
        "only the rest was fetched"
    );
    wait_until("committed", || {
        cache
            .join("blobs/sha256")
            .join(&digest["sha256:".len().."sha256:".len() + 2])
            .join(&digest["sha256:".len()..])
            .exists()
    });
    assert!(!part.exists());
}

#[test]
fn a_partial_blob_upstream_no_longer_has_is_deleted_at_start_and_others_resume() {
    let fake = FakeUpstream::start();
    let kept = pseudo_random_bytes(50, 3 << 20);
    let kept_digest = fake.add_blob("library/app", &kept);
    let gone_digest = support::digest_of(b"a layer upstream deleted");
    let dir = tempfile::tempdir().unwrap();
    let tmp = dir.path().join("tmp");
    fs::create_dir_all(&tmp).unwrap();
    let part = |d: &str| tmp.join(format!("{}.part", d.trim_start_matches("sha256:")));
    let from = |d: &str| tmp.join(format!("{}.from", d.trim_start_matches("sha256:")));
    for (d, len) in [(&kept_digest, 3 << 20), (&gone_digest, 2 << 20)] {
        fs::write(part(d), &kept[..1 << 20]).unwrap();
        fs::write(from(d), format!("docker.io\nlibrary/app\n{len}\n")).unwrap();
    }
    let cache = dir.path().to_path_buf();
    let m = Mirror::start_with(&fake, move |c| c.cache_dir = cache);
    wait_until("the stale partial deleted", || !part(&gone_digest).exists());
    assert!(!from(&gone_digest).exists());
    assert!(part(&kept_digest).exists(), "upstream still has this one");
    let s = get(m.addr, "/_regmirror/status").json();
    assert_eq!(s["cache"]["partial_bytes"], 1 << 20, "{s}");
    let r = get(m.addr, &format!("/v2/library/app/blobs/{kept_digest}"));
    assert!(r.status == 200 && r.body == kept);
    assert_eq!(
        gets(&fake, &kept_digest),
        vec![Some(format!("bytes={}-", 1 << 20))]
    );
}
