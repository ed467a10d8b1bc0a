//! The mirror end to end, in-process: `server::spawn` on port 0 in front of the fake
//! upstream of `tests/support`, driven with a plain HTTP client. Each test is one promise
//! the mirror makes to its users.

mod support;

use regmirror::config::{Config, UpstreamUrl};
use regmirror::server;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};
use support::client::{get, request};
use support::{FakeUpstream, TestImage};

/// A running mirror and its cache directory (deleted when dropped).
struct Mirror {
    addr: SocketAddr,
    dir: tempfile::TempDir,
}

impl Mirror {
    fn start(fake: &FakeUpstream) -> Mirror {
        Mirror::start_with(fake, |_| {})
    }

    fn start_with(fake: &FakeUpstream, tweak: impl FnOnce(&mut Config)) -> Mirror {
        let dir = tempfile::tempdir().unwrap();
        let mut c = Config::new(dir.path().to_path_buf());
        c.listen = "127.0.0.1:0".parse().unwrap();
        c.set_upstream("docker.io", UpstreamUrl::parse(&fake.url()).unwrap());
        c.upstream_timeout = Duration::from_secs(2);
        tweak(&mut c);
        let addr = server::spawn(c).expect("mirror starts");
        Mirror { addr, dir }
    }

    fn blob_file(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").unwrap();
        self.dir
            .path()
            .join("blobs/sha256")
            .join(&hex[..2])
            .join(hex)
    }

    fn cached_bytes(&self) -> u64 {
        dir_size(&self.dir.path().join("blobs"))
    }
}

fn dir_size(p: &Path) -> u64 {
    std::fs::read_dir(p)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| {
            let t = e.file_type().unwrap();
            if t.is_dir() {
                dir_size(&e.path())
            } else {
                e.metadata().unwrap().len()
            }
        })
        .sum()
}

/// Pulls an image like a client: manifest by tag, then config and layers; checks bytes.
fn pull(addr: SocketAddr, repo_path: &str, tag: &str, img: &TestImage) {
    let m = get(addr, &format!("/v2/{repo_path}/manifests/{tag}"));
    assert_eq!(m.status, 200, "{}", String::from_utf8_lossy(&m.body));
    assert_eq!(m.body, img.manifest);
    assert_eq!(
        m.header("docker-content-digest"),
        Some(img.manifest_digest().as_str())
    );
    for (digest, bytes) in std::iter::once((img.config_digest(), &img.config)).chain(
        img.layers
            .iter()
            .enumerate()
            .map(|(i, l)| (img.layer_digest(i), l)),
    ) {
        let b = get(addr, &format!("/v2/{repo_path}/blobs/{digest}"));
        assert_eq!(b.status, 200);
        assert_eq!(&b.body, bytes, "blob {digest}");
        assert_eq!(b.header("docker-content-digest"), Some(digest.as_str()));
    }
}

fn wait_until(what: &str, mut ok: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ok() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "timed out waiting: {what}"
        );
        thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_pulled_image_is_served_from_disk_the_second_time() {
    let fake = FakeUpstream::start();
    let img = TestImage::new(1, &[3000, 70_000]);
    fake.push_image("library/alpine", "latest", &img);
    let m = Mirror::start(&fake);
    pull(m.addr, "library/alpine", "latest", &img);
    for i in 0..2 {
        assert_eq!(fake.count("GET", &img.layer_digest(i)), 1);
    }
    fake.clear_log();
    pull(m.addr, "library/alpine", "latest", &img);
    pull(m.addr, "library/alpine", &img.manifest_digest(), &img);
    let blob_gets = fake
        .requests()
        .iter()
        .filter(|r| r.target.contains("/blobs/"))
        .count();
    assert_eq!(
        blob_gets,
        0,
        "warm pull fetched blobs: {:?}",
        fake.requests()
    );
}

#[test]
fn single_segment_docker_hub_names_get_library_and_ns_is_understood() {
    let fake = FakeUpstream::start();
    let img = TestImage::new(2, &[100]);
    fake.push_image("library/alpine", "3", &img);
    let m = Mirror::start(&fake);
    pull(m.addr, "alpine", "3", &img);
    let r = get(m.addr, "/v2/library/alpine/manifests/3?ns=docker.io");
    assert_eq!(r.status, 200);
    assert!(fake
        .requests()
        .iter()
        .all(|r| r.target.starts_with("/v2/library/alpine/") || r.target == "/v2/"));
}

#[test]
fn eight_simultaneous_cold_requests_cost_one_upstream_fetch() {
    let fake = FakeUpstream::start();
    let img = TestImage::new(3, &[4 << 20]);
    fake.push_image("library/big", "1", &img);
    fake.delay(Duration::from_millis(200)); // all eight arrive while the fill connects
    let m = Mirror::start(&fake);
    let path = format!("/v2/library/big/blobs/{}", img.layer_digest(0));
    let clients: Vec<_> = (0..8)
        .map(|_| {
            let (addr, path) = (m.addr, path.clone());
            thread::spawn(move || get(addr, &path))
        })
        .collect();
    for c in clients {
        let r = c.join().unwrap();
        assert_eq!(r.status, 200);
        assert!(r.body == img.layers[0], "a reader got wrong bytes");
    }
    assert_eq!(fake.count("GET", &img.layer_digest(0)), 1);
}

#[test]
fn the_fill_survives_the_client_that_started_it() {
    let fake = FakeUpstream::start();
    let img = TestImage::new(4, &[2 << 20]);
    fake.push_image("library/app", "1", &img);
    fake.delay(Duration::from_millis(300));
    let m = Mirror::start(&fake);
    let digest = img.layer_digest(0);
    {
        use std::io::Write;
        let mut s = std::net::TcpStream::connect(m.addr).unwrap();
        write!(
            s,
            "GET /v2/library/app/blobs/{digest} HTTP/1.1\r\nHost: x\r\n\r\n"
        )
        .unwrap();
        thread::sleep(Duration::from_millis(50));
    } // the client hangs up before the upstream even answered
    wait_until("blob committed", || m.blob_file(&digest).exists());
    assert_eq!(std::fs::read(m.blob_file(&digest)).unwrap(), img.layers[0]);
    assert_eq!(fake.count("GET", &digest), 1);
}

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
fn head_of_an_uncached_blob_downloads_nothing() {
    let fake = FakeUpstream::start();
    let img = TestImage::new(10, &[123_456]);
    fake.push_image("library/app", "1", &img);
    let m = Mirror::start(&fake);
    let digest = img.layer_digest(0);
    let r = request(
        m.addr,
        "HEAD",
        &format!("/v2/library/app/blobs/{digest}"),
        &[],
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-length"), Some("123456"));
    assert_eq!(r.header("docker-content-digest"), Some(digest.as_str()));
    assert_eq!(fake.count("GET", &digest), 0);
}

#[test]
fn ranges_of_cached_and_cold_blobs() {
    let fake = FakeUpstream::start();
    let img = TestImage::new(11, &[100_000]);
    fake.push_image("library/app", "1", &img);
    let m = Mirror::start(&fake);
    let path = format!("/v2/library/app/blobs/{}", img.layer_digest(0));
    for _ in 0..2 {
        // cold (served from the growing file), then cached
        let r = request(m.addr, "GET", &path, &[("Range", "bytes=10-19")]);
        assert_eq!(r.status, 206);
        assert_eq!(r.body, img.layers[0][10..20]);
        assert_eq!(r.header("content-range"), Some("bytes 10-19/100000"));
    }
    let r = request(m.addr, "GET", &path, &[("Range", "bytes=100000-")]);
    assert_eq!(r.status, 416);
    assert_eq!(r.header("content-range"), Some("bytes */100000"));
}

#[test]
fn the_byte_budget_is_never_exceeded_and_oversized_blobs_still_pull() {
    let fake = FakeUpstream::start();
    let budget = 1_000_000;
    let m = Mirror::start_with(&fake, |c| c.max_size = Some(budget));
    for seed in 0..6 {
        let img = TestImage::new(100 + seed, &[300_000]);
        let repo = format!("library/img{seed}");
        fake.push_image(&repo, "1", &img);
        pull(m.addr, &repo, "1", &img);
        assert!(
            m.cached_bytes() <= budget,
            "cache {} > budget {budget}",
            m.cached_bytes()
        );
    }
    let huge = TestImage::new(200, &[1_500_000]);
    fake.push_image("library/huge", "1", &huge);
    pull(m.addr, "library/huge", "1", &huge);
    assert!(
        !m.blob_file(&huge.layer_digest(0)).exists(),
        "a blob over the budget was cached"
    );
    assert!(m.cached_bytes() <= budget);
}

#[test]
fn bad_requests_get_oci_errors_and_never_reach_upstream() {
    let fake = FakeUpstream::start();
    let m = Mirror::start(&fake);
    let cases = [
        ("GET", "/v2/Alpine/manifests/latest", 400, "NAME_INVALID"),
        ("GET", "/v2/alpine/manifests/-bad", 400, "TAG_INVALID"),
        ("GET", "/v2/alpine/blobs/sha256:1234", 400, "DIGEST_INVALID"),
        ("GET", "/v2/alpine/blobs/md5:abc", 400, "DIGEST_INVALID"),
        ("GET", "/v2/a%2F..%2F..%2Fetc/manifests/x", 400, "NAME_INVALID"),
        ("GET", "/v2/alpine/manifests/x?ns=evil.example.com", 404, "NAME_UNKNOWN"),
        ("GET", "/v2/evil.example.com/alpine/manifests/x", 404, "NAME_UNKNOWN"),
        ("PUT", "/v2/alpine/manifests/latest", 405, "UNSUPPORTED"),
        ("DELETE", "/v2/alpine/blobs/sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", 405, "UNSUPPORTED"),
        ("POST", "/v2/alpine/blobs/uploads/", 405, "UNSUPPORTED"),
        ("GET", "/etc/passwd", 404, "NOT_FOUND"),
    ];
    for (method, path, status, code) in cases {
        let r = request(m.addr, method, path, &[]);
        assert_eq!(
            (r.status, r.error_code().as_str()),
            (status, code),
            "{method} {path}"
        );
    }
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
fn manifest_types_and_accept_negotiation() {
    let fake = FakeUpstream::start();
    let img = TestImage::new(12, &[10]);
    fake.push_image("library/app", "amd64", &img);
    let child = img.manifest_digest();
    let index = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.list.v2+json","manifests":[{{"mediaType":"application/vnd.docker.distribution.manifest.v2+json","digest":"{child}","size":{},"platform":{{"architecture":"amd64","os":"linux"}}}}]}}"#,
        img.manifest.len()
    );
    let list = "application/vnd.docker.distribution.manifest.list.v2+json";
    let index_digest = fake.add_manifest("library/app", "multi", index.as_bytes(), list);
    let m = Mirror::start(&fake);
    let r = request(
        m.addr,
        "GET",
        "/v2/library/app/manifests/multi",
        &[("Accept", list)],
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some(list));
    assert_eq!(
        r.header("docker-content-digest"),
        Some(index_digest.as_str())
    );
    assert_eq!(r.body, index.as_bytes(), "stored byte-exact");
    // A client that takes no lists gets the linux/amd64 manifest.
    let v2 = "application/vnd.docker.distribution.manifest.v2+json";
    let r = request(
        m.addr,
        "GET",
        "/v2/library/app/manifests/multi",
        &[("Accept", v2)],
    );
    assert_eq!(
        (r.status, r.header("docker-content-digest")),
        (200, Some(child.as_str()))
    );
    // HEAD carries the length and digest, no body.
    let r = request(m.addr, "HEAD", "/v2/library/app/manifests/multi", &[]);
    assert_eq!(
        r.header("content-length"),
        Some(index.len().to_string().as_str())
    );
    assert!(r.body.is_empty());
}

#[test]
fn tags_list_passes_through_and_falls_back_to_the_cache() {
    let fake = FakeUpstream::start();
    let img = TestImage::new(13, &[10]);
    fake.push_image("library/app", "1.0", &img);
    fake.push_image("library/app", "2.0", &img);
    let m = Mirror::start(&fake);
    let r = get(m.addr, "/v2/library/app/tags/list");
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["tags"], serde_json::json!(["1.0", "2.0"]));
    pull(m.addr, "library/app", "1.0", &img);
    fake.fail_with(503, None);
    let r = get(m.addr, "/v2/library/app/tags/list");
    assert_eq!(
        (r.status, r.json()["tags"].clone()),
        (200, serde_json::json!(["1.0"]))
    );
    let r = get(m.addr, "/v2/_catalog");
    assert_eq!(r.json()["repositories"], serde_json::json!(["library/app"]));
}

#[test]
fn status_and_metrics_tell_what_happened() {
    let fake = FakeUpstream::start();
    let img = TestImage::new(14, &[5000]);
    fake.push_image("library/app", "1", &img);
    fake.ratelimit_remaining("99;w=21600");
    let m = Mirror::start(&fake);
    pull(m.addr, "library/app", "1", &img);
    pull(m.addr, "library/app", "1", &img);
    let s = get(m.addr, "/_regmirror/status").json();
    assert_eq!(s["upstreams"][0]["ratelimit_remaining"], "99;w=21600");
    assert!(s["cache"]["bytes"].as_u64().unwrap() >= 5000);
    let metrics = String::from_utf8(get(m.addr, "/metrics").body).unwrap();
    assert!(
        metrics.contains("regmirror_requests_hit_total"),
        "{metrics}"
    );
    let log = String::from_utf8(get(m.addr, "/_regmirror/log").body).unwrap();
    assert!(
        log.contains("MISS") || log.is_empty(),
        "log ring holds access lines: {log}"
    );
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
    // when that fails: a refusal that waits out the header timeout costs every pull.
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
    assert!(
        answer.starts_with(b"HTTP/1.1 400"),
        "{:?}",
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
