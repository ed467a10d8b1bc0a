//! Faults end to end, in-process against the fake upstream: an upstream that fails,
//! lies, stalls or rate-limits, and clients that send garbage, stall or speak TLS. Each
//! test is one promise the mirror keeps anyway.

mod support;

use std::thread;
use std::time::{Duration, Instant};
use support::client::{get, request};
use support::mirror::{pull, wait_until, Mirror};
use support::{FakeUpstream, TestImage};

#[test]
fn a_dropped_upstream_connection_is_resumed_with_range() {
    let fake = FakeUpstream::start();
    let img = TestImage::new(5, &[1 << 20]);
    fake.push_image("library/app", "1", &img);
    fake.cut_next_blob_after(300_000);
    let m = Mirror::start(&fake);
    let digest = img.layer_digest(0);
    let r = get(m.addr, &format!("/v2/library/app/blobs/{digest}"));
    assert_eq!(r.status, 200);
    assert!(r.body == img.layers[0]);
    let ranges: Vec<_> = fake
        .requests()
        .into_iter()
        .filter(|q| q.target.contains(&digest))
        .map(|q| q.range)
        .collect();
    assert_eq!(ranges.len(), 2, "{ranges:?}");
    let resumed_at: u64 = ranges[1]
        .as_deref()
        .unwrap()
        .trim_start_matches("bytes=")
        .trim_end_matches('-')
        .parse()
        .unwrap();
    assert!(resumed_at > 0 && resumed_at <= 300_000, "{ranges:?}");
}

#[test]
fn wrong_bytes_from_upstream_are_never_committed() {
    let fake = FakeUpstream::start();
    let img = TestImage::new(6, &[200_000]);
    fake.push_image("library/app", "1", &img);
    fake.corrupt(true);
    let m = Mirror::start(&fake);
    let digest = img.layer_digest(0);
    let r = get(m.addr, &format!("/v2/library/app/blobs/{digest}"));
    assert!(
        r.status != 200 || r.body != img.layers[0],
        "corrupt bytes passed as good"
    );
    wait_until("fill finished", || fake.count("GET", &digest) >= 1);
    thread::sleep(Duration::from_millis(200));
    assert!(
        !m.blob_file(&digest).exists(),
        "a corrupt blob was committed"
    );
    fake.corrupt(false);
    let r = get(m.addr, &format!("/v2/library/app/blobs/{digest}"));
    assert_eq!((r.status, r.body == img.layers[0]), (200, true));
    assert!(m.blob_file(&digest).exists());
}

#[test]
fn bearer_tokens_and_a_cdn_redirect_without_authorization() {
    let fake = FakeUpstream::start();
    let img = TestImage::new(7, &[50_000]);
    fake.push_image("library/app", "1", &img);
    fake.require_bearer(None);
    fake.redirect_blobs(true);
    let m = Mirror::start(&fake);
    pull(m.addr, "library/app", "1", &img);
    assert_eq!(fake.token_requests(), 1, "one token per repository, reused");
    let cdn: Vec<_> = fake
        .requests()
        .into_iter()
        .filter(|r| r.listener == support::Listener::Cdn)
        .collect();
    assert!(!cdn.is_empty(), "blobs came through the CDN");
    assert!(
        cdn.iter().all(|r| r.authorization.is_none()),
        "Authorization leaked to another host"
    );
}

#[test]
fn upstream_429_is_passed_on_with_retry_after() {
    let fake = FakeUpstream::start();
    fake.fail_with(429, Some(42));
    let m = Mirror::start(&fake);
    let r = get(m.addr, "/v2/library/nope/manifests/latest");
    assert_eq!(r.status, 429);
    assert_eq!(r.error_code(), "TOOMANYREQUESTS");
    assert_eq!(r.header("retry-after"), Some("42"));
}

#[test]
fn unknown_manifests_and_blobs_are_404_with_oci_codes() {
    let fake = FakeUpstream::start();
    let m = Mirror::start(&fake);
    let r = get(m.addr, "/v2/library/nope/manifests/latest");
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (404, "MANIFEST_UNKNOWN")
    );
    let d = support::digest_of(b"nothing");
    let r = get(m.addr, &format!("/v2/library/nope/blobs/{d}"));
    assert_eq!((r.status, r.error_code().as_str()), (404, "BLOB_UNKNOWN"));
}

#[test]
fn tags_are_revalidated_with_head_and_served_stale_when_upstream_fails() {
    let fake = FakeUpstream::start();
    let v1 = TestImage::new(8, &[1000]);
    fake.push_image("library/app", "latest", &v1);
    let m = Mirror::start_with(&fake, |c| c.tag_ttl = Duration::ZERO);
    pull(m.addr, "library/app", "latest", &v1);
    // Unchanged: a HEAD, no manifest GET.
    fake.clear_log();
    assert_eq!(
        get(m.addr, "/v2/library/app/manifests/latest").body,
        v1.manifest
    );
    assert_eq!(fake.count("HEAD", "/manifests/latest"), 1);
    assert_eq!(fake.count("GET", "/manifests/"), 0);
    // Changed upstream: the new digest is fetched once.
    let v2 = TestImage::new(9, &[1000]);
    fake.push_image("library/app", "latest", &v2);
    assert_eq!(
        get(m.addr, "/v2/library/app/manifests/latest").body,
        v2.manifest
    );
    // Upstream broken in each way: the last known digest is still served.
    fake.fail_with(503, None);
    assert_eq!(
        get(m.addr, "/v2/library/app/manifests/latest").body,
        v2.manifest
    );
    fake.fail_with(429, Some(5));
    assert_eq!(
        get(m.addr, "/v2/library/app/manifests/latest").body,
        v2.manifest
    );
    fake.heal();
    fake.freeze();
    let t = Instant::now();
    let r = get(m.addr, "/v2/library/app/manifests/latest");
    assert_eq!((r.status, r.body == v2.manifest), (200, true));
    assert!(
        t.elapsed() < Duration::from_secs(10),
        "stale answer took {:?}",
        t.elapsed()
    );
    // A tag never seen has nothing to fall back to.
    let r = get(m.addr, "/v2/library/other/manifests/latest");
    assert_eq!(r.status, 503);
}

#[test]
fn bad_requests_get_oci_errors_and_never_reach_upstream() {
    let fake = FakeUpstream::start();
    let m = Mirror::start(&fake);
    let cases = [
        ("GET", "/v2/Alpine/manifests/latest", 400, "NAME_INVALID"),
        // distribution-spec 1.1 lists only 404 MANIFEST_UNKNOWN for a manifest GET/HEAD.
        ("GET", "/v2/alpine/manifests/-bad", 404, "MANIFEST_UNKNOWN"),
        ("GET", "/v2/alpine/blobs/sha256:1234", 400, "DIGEST_INVALID"),
        ("GET", "/v2/alpine/blobs/md5:abc", 400, "DIGEST_INVALID"),
        ("GET", "/v2/a%2F..%2F..%2Fetc/manifests/x", 400, "NAME_INVALID"),
        ("GET", "/v2/alpine/manifests/x?ns=evil.example.com", 404, "NAME_UNKNOWN"),
        ("GET", "/v2/evil.example.com/alpine/manifests/x", 404, "NAME_UNKNOWN"),
        ("PUT", "/v2/alpine/manifests/latest", 405, "UNSUPPORTED"),
        ("DELETE", "/v2/alpine/blobs/sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", 405, "UNSUPPORTED"),
        ("POST", "/v2/alpine/blobs/uploads/", 405, "UNSUPPORTED"),
        ("GET", "/etc/passwd", 404, "UNSUPPORTED"),
    ];
    for (method, path, status, code) in cases {
        let r = request(m.addr, method, path, &[]);
        assert_eq!(
            (r.status, r.error_code().as_str()),
            (status, code),
            "{method} {path}"
        );
    }
    let head = request(m.addr, "HEAD", "/v2/alpine/manifests/-bad", &[]);
    assert_eq!(head.status, 404);
    let big = "a".repeat(9000);
    let r = request(m.addr, "GET", "/v2/", &[("X-Big", big.as_str())]);
    assert_eq!(r.status, 431);
    assert!(
        fake.requests().is_empty(),
        "upstream saw {:?}",
        fake.requests()
    );
    assert_eq!(get(m.addr, "/v2/").status, 200, "still alive");
}

#[test]
fn a_client_too_slow_to_send_headers_gets_408() {
    use std::io::{Read, Write};
    let fake = FakeUpstream::start();
    let m = Mirror::start_with(&fake, |c| c.header_timeout = Duration::from_millis(500));
    let mut s = std::net::TcpStream::connect(m.addr).unwrap();
    s.write_all(b"GET /v2/ HTTP/1.1\r\nHost: x\r\n").unwrap(); // and never the blank line
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer:?}");
}

#[test]
fn a_client_that_stops_reading_is_dropped_and_frees_its_slot() {
    use std::io::Write;
    let fake = FakeUpstream::start();
    let img = TestImage::new(15, &[16 << 20]);
    fake.push_image("library/app", "1", &img);
    let m = Mirror::start_with(&fake, |c| {
        c.max_connections = 1;
        c.client_write_timeout = Duration::from_millis(500);
    });
    pull(m.addr, "library/app", "1", &img); // cached: the reply below is pure disk → socket
    let mut idle = std::net::TcpStream::connect(m.addr).unwrap();
    write!(
        idle,
        "GET /v2/library/app/blobs/{} HTTP/1.1\r\nHost: x\r\n\r\n",
        img.layer_digest(0)
    )
    .unwrap();
    thread::sleep(Duration::from_millis(100)); // it holds the only slot, reading nothing
    let t = Instant::now();
    assert_eq!(get(m.addr, "/v2/").status, 200);
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "waited {:?}",
        t.elapsed()
    );
    drop(idle);
}

#[test]
fn a_tls_handshake_on_the_plain_port_is_refused_at_once() {
    use std::io::{Read, Write};
    // skopeo and podman try https first on an insecure mirror and fall back to http only
    // when that fails: a refusal that waits out the header timeout costs every pull. The
    // refusal is a TLS alert (issue 9: no HTTP 400 and no log line per pull).
    let fake = FakeUpstream::start();
    let m = Mirror::start(&fake);
    let mut s = std::net::TcpStream::connect(m.addr).unwrap();
    s.write_all(&[
        0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03,
    ])
    .unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let t = Instant::now();
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer);
    assert_eq!(
        answer,
        [0x15, 0x03, 0x01, 0x00, 0x02, 0x02, 0x28],
        "a fatal handshake_failure alert, got {:?}",
        String::from_utf8_lossy(&answer)
    );
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "took {:?}",
        t.elapsed()
    );
}

#[test]
fn a_frozen_upstream_costs_a_cached_tag_seconds_not_the_upstream_timeout() {
    let fake = FakeUpstream::start();
    let img = TestImage::new(16, &[1000]);
    fake.push_image("library/app", "latest", &img);
    let m = Mirror::start_with(&fake, |c| {
        c.tag_ttl = Duration::ZERO;
        c.upstream_timeout = Duration::from_secs(60);
    });
    pull(m.addr, "library/app", "latest", &img);
    fake.freeze();
    for _ in 0..2 {
        let t = Instant::now();
        let r = get(m.addr, "/v2/library/app/manifests/latest");
        assert_eq!((r.status, r.body == img.manifest), (200, true));
        let waited = t.elapsed();
        assert!(
            waited < Duration::from_secs(6),
            "stale answer took {waited:?}"
        );
    }
    fake.heal();
}
