//! Read-ahead (issue 11: the fill overlaps the client's work), in-process against the fake
//! upstream: a GET of an image manifest fills the blobs it names, once each, before the
//! client asks; a HEAD, an index, `read-ahead = no` and a blob that cannot fit read nothing.

mod support;

use std::thread;
use std::time::Duration;
use support::client::{get, request};
use support::mirror::{pull, wait_until, Mirror};
use support::{FakeUpstream, TestImage};

/// Blob GETs the fake received.
fn blob_gets(fake: &FakeUpstream) -> Vec<String> {
    fake.requests()
        .into_iter()
        .filter(|r| r.method == "GET" && r.target.contains("/blobs/"))
        .map(|r| r.target)
        .collect()
}

/// A counter from `/metrics` (0 when absent).
fn counter(addr: std::net::SocketAddr, name: &str) -> u64 {
    get(addr, "/metrics")
        .text()
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0)
}

fn all_digests(img: &TestImage) -> Vec<String> {
    std::iter::once(img.config_digest())
        .chain((0..img.layers.len()).map(|i| img.layer_digest(i)))
        .collect()
}

#[test]
fn a_manifest_get_fills_every_blob_once_before_the_client_asks() {
    let fake = FakeUpstream::start();
    let img = TestImage::new(70, &[300_000, 2 << 20, 50_000]);
    fake.push_image("library/app", "1", &img);
    let m = Mirror::start_with(&fake, |c| c.read_ahead = true);
    let r = get(m.addr, "/v2/library/app/manifests/1");
    assert_eq!(r.status, 200);
    for d in all_digests(&img) {
        wait_until(&format!("{d} read ahead"), || m.blob_file(&d).exists());
    }
    // The client's own GETs are all answered from disk: one upstream GET per blob.
    pull(m.addr, "library/app", "1", &img);
    for d in all_digests(&img) {
        assert_eq!(fake.count("GET", &d), 1, "{d}: {:?}", blob_gets(&fake));
    }
    assert_eq!(
        counter(m.addr, "regmirror_requests_hit_total"),
        5,
        "the manifest again and every blob: HITs"
    );
    let kept: u64 = std::iter::once(img.config.len())
        .chain(img.layers.iter().map(Vec::len))
        .map(|n| n as u64)
        .sum();
    assert_eq!(counter(m.addr, "regmirror_read_ahead_blobs_total"), 4);
    assert_eq!(counter(m.addr, "regmirror_read_ahead_bytes_total"), kept);
    let status = get(m.addr, "/_regmirror/status").json();
    assert_eq!(
        status["read_ahead"],
        serde_json::json!({"enabled": true, "queued": 0, "blobs": 4, "bytes": kept})
    );
    let page = get(m.addr, "/").text();
    assert!(
        page.contains(&format!("data-k=\"read-ahead-bytes\" data-v=\"{kept}\""))
            && page.contains("data-k=\"read-ahead-blobs\" data-v=\"4\""),
        "the page says what was read ahead"
    );
    assert_eq!(
        counter(m.addr, "regmirror_requests_miss_total"),
        1,
        "the manifest only"
    );
}

#[test]
fn a_client_asking_while_the_read_ahead_fills_follows_it() {
    let fake = FakeUpstream::start();
    let img = TestImage::new(71, &[4 << 20]);
    fake.push_image("library/app", "2", &img);
    let m = Mirror::start_with(&fake, |c| c.read_ahead = true);
    assert_eq!(get(m.addr, "/v2/library/app/manifests/2").status, 200);
    fake.stall_blobs_after(1 << 20); // the read-ahead's layer fill hangs mid-way...
    let layer = img.layer_digest(0);
    wait_until("the read-ahead asks for the layer", || {
        fake.count("GET", &layer) == 1
    });
    let (addr, path) = (m.addr, format!("/v2/library/app/blobs/{layer}"));
    let client = thread::spawn(move || get(addr, &path));
    thread::sleep(Duration::from_millis(200));
    fake.heal(); // ...and the fill resumes it (a Range of its own), the client behind it
    let r = client.join().unwrap();
    assert_eq!(r.status, 200);
    assert!(r.body == img.layers[0], "wrong bytes");
    assert_eq!(counter(m.addr, "regmirror_requests_coalesced_total"), 1);
    let full_gets = fake
        .requests()
        .into_iter()
        .filter(|q| q.method == "GET" && q.target.contains(&layer) && q.range.is_none())
        .count();
    assert_eq!(
        full_gets,
        1,
        "the client did not fetch again: {:?}",
        blob_gets(&fake)
    );
}

#[test]
fn a_head_an_index_and_read_ahead_no_fetch_no_blob() {
    let fake = FakeUpstream::start();
    let img = TestImage::new(72, &[100_000]);
    fake.push_image("library/app", "3", &img);
    let index = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{{"mediaType":"application/vnd.docker.distribution.manifest.v2+json","digest":"{}","size":{},"platform":{{"architecture":"amd64","os":"linux"}}}}]}}"#,
        img.manifest_digest(),
        img.manifest.len()
    );
    fake.add_manifest(
        "library/app",
        "multi",
        index.as_bytes(),
        "application/vnd.oci.image.index.v1+json",
    );
    let on = Mirror::start_with(&fake, |c| c.read_ahead = true);
    let head = request(on.addr, "HEAD", "/v2/library/app/manifests/3", &[]);
    assert_eq!(head.status, 200);
    let accept = [(
        "Accept",
        "application/vnd.oci.image.index.v1+json,application/vnd.docker.distribution.manifest.v2+json",
    )];
    let r = request(on.addr, "GET", "/v2/library/app/manifests/multi", &accept);
    assert_eq!(r.status, 200);
    assert_eq!(r.body, index.as_bytes(), "the index itself was served");
    let off = Mirror::start_with(&fake, |c| c.read_ahead = false);
    assert_eq!(get(off.addr, "/v2/library/app/manifests/3").status, 200);
    let status = get(off.addr, "/_regmirror/status").json();
    assert_eq!(status["read_ahead"]["enabled"], false);
    thread::sleep(Duration::from_millis(500));
    assert_eq!(blob_gets(&fake), Vec::<String>::new());
    // The platform's manifest GET (what a client asks next) does read ahead.
    let r = get(
        on.addr,
        &format!("/v2/library/app/manifests/{}", img.manifest_digest()),
    );
    assert_eq!(r.status, 200);
    wait_until("the layer read ahead", || {
        on.blob_file(&img.layer_digest(0)).exists()
    });
}

#[test]
fn a_blob_that_cannot_fit_the_budget_is_left_to_its_client() {
    let fake = FakeUpstream::start();
    let img = TestImage::new(73, &[50_000, 3 << 20]);
    fake.push_image("library/app", "4", &img);
    let m = Mirror::start_with(&fake, |c| {
        c.read_ahead = true;
        c.max_size = Some(1 << 20);
    });
    assert_eq!(get(m.addr, "/v2/library/app/manifests/4").status, 200);
    wait_until("the small layer read ahead", || {
        m.blob_file(&img.layer_digest(0)).exists()
    });
    thread::sleep(Duration::from_millis(300));
    assert_eq!(
        fake.count("GET", &img.layer_digest(1)),
        0,
        "streamed to nobody: {:?}",
        blob_gets(&fake)
    );
    // The client still gets it, streamed through (one GET).
    pull(m.addr, "library/app", "4", &img);
    assert_eq!(fake.count("GET", &img.layer_digest(1)), 1);
}
