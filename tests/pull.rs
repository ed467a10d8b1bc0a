//! The pull path end to end, in-process against the fake upstream: what a healthy
//! upstream and well-behaved clients get. Each test is one promise the mirror makes.

mod support;

use std::thread;
use std::time::Duration;
use support::client::{get, request};
use support::mirror::{pull, wait_until, Mirror};
use support::{FakeUpstream, TestImage};

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
fn status_and_metrics_count_exactly_what_happened() {
    let fake = FakeUpstream::start();
    let img = TestImage::new(14, &[5000]);
    fake.push_image("library/app", "1", &img);
    fake.ratelimit_remaining("99;w=21600");
    let m = Mirror::start(&fake);
    pull(m.addr, "library/app", "1", &img);
    pull(m.addr, "library/app", "1", &img);
    let s = get(m.addr, "/_regmirror/status").json();
    assert_eq!(s["upstreams"][0]["ratelimit_remaining"], "99;w=21600");
    let blob_bytes = (img.config.len() + img.layers[0].len()) as u64;
    let manifest_bytes = img.manifest.len() as u64;
    assert_eq!(s["cache"]["bytes"], blob_bytes + manifest_bytes);
    // Each blob crossed the wire once and is counted once (it was counted twice).
    assert_eq!(s["upstream_bytes"], blob_bytes);
    // First pull: manifest, config and layer missed; second pull: all three hit.
    assert_eq!(s["requests"]["miss"], 3, "{s}");
    assert_eq!(s["requests"]["hit"], 3, "{s}");
    assert_eq!(s["requests"]["error"], 0, "{s}");
    let sent = 2 * (blob_bytes + manifest_bytes);
    assert_eq!(s["sent_bytes"], sent, "{s}");
    let metrics = String::from_utf8(get(m.addr, "/metrics").body).unwrap();
    for line in [
        "regmirror_requests_hit_total 3".to_string(),
        "regmirror_requests_miss_total 3".to_string(),
        format!("regmirror_upstream_bytes_total {blob_bytes}"),
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line} in {metrics}");
    }
}

#[test]
fn the_status_shows_what_the_host_says_of_its_name_and_addresses() {
    let fake = FakeUpstream::start();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("network.json");
    std::fs::write(
        &file,
        r#"{"hostname":"pi","mdns_name":"pi.local","mode":"dhcp",
           "addresses":[{"interface":"eth0","address":"192.168.1.5/24"}]}"#,
    )
    .unwrap();
    let path = file.clone();
    let m = Mirror::start_with(&fake, |c| c.host_info = Some(path));
    let host = &get(m.addr, "/_regmirror/status").json()["host"];
    assert_eq!(host["mdns_name"], "pi.local", "{host}");
    assert_eq!(host["addresses"][0]["address"], "192.168.1.5/24", "{host}");
    // Re-read on every request: a new DHCP lease shows without a restart.
    std::fs::write(&file, r#"{"addresses":[{"address":"10.0.0.9/8"}]}"#).unwrap();
    let host = &get(m.addr, "/_regmirror/status").json()["host"];
    assert_eq!(host["addresses"][0]["address"], "10.0.0.9/8", "{host}");
    std::fs::remove_file(&file).unwrap();
    let host = &get(m.addr, "/_regmirror/status").json()["host"];
    assert!(
        host["error"].as_str().unwrap().contains("network.json"),
        "{host}"
    );
    // Without the flag there is no such key's value.
    let plain = Mirror::start(&fake);
    assert!(get(plain.addr, "/_regmirror/status").json()["host"].is_null());
}
