//! The keep list (`--keep`): fetched at start, revalidated by HEAD only, fetched again only
//! when a digest changed, never evicted — under eviction pressure and through an upstream
//! outage — and a list that cannot fit the budget is a start-up error.

mod support;

use std::path::Path;
use std::time::Duration;
use support::client::get;
use support::mirror::{pull, spawn_in, wait_until, Mirror};
use support::process::{run, serve_args, Server};
use support::{FakeUpstream, TestImage};

fn keep_file(dir: &Path, text: &str) -> std::path::PathBuf {
    let p = dir.join("keep.list");
    std::fs::write(&p, text).unwrap();
    p
}

/// Waits until every prefetch job has finished; returns them.
fn jobs_done(addr: std::net::SocketAddr) -> Vec<serde_json::Value> {
    let mut jobs = Vec::new();
    wait_until("the prefetch jobs finish", || {
        jobs = get(addr, "/_regmirror/prefetch").json()["jobs"]
            .as_array()
            .unwrap()
            .clone();
        !jobs.is_empty()
            && jobs
                .iter()
                .all(|j| j["state"] == "done" || j["state"] == "failed")
    });
    jobs
}

fn on_disk(m: &Mirror, img: &TestImage) -> bool {
    std::iter::once(img.config_digest())
        .chain((0..img.layers.len()).map(|i| img.layer_digest(i)))
        .chain(std::iter::once(img.manifest_digest()))
        .all(|d| m.blob_file(&d).exists())
}

#[test]
fn the_keep_list_is_fetched_at_start_revalidated_by_head_and_refetched_only_when_it_moved() {
    let fake = FakeUpstream::start();
    let v1 = TestImage::new(10, &[20_000, 30_000]);
    fake.push_image("library/app", "stable", &v1);
    let dir = tempfile::tempdir().unwrap();
    let keep = keep_file(dir.path(), "# the office's app\napp:stable\n");
    let m = Mirror::start_with(&fake, |c| {
        c.keep = Some(keep.clone());
        c.keep_refresh = Duration::from_millis(300);
    });
    let jobs = jobs_done(m.addr);
    assert_eq!(jobs[0]["state"], "done", "{jobs:?}");
    assert_eq!(jobs[0]["origin"], "keep");
    assert_eq!(jobs[0]["image"], "docker.io/library/app:stable");
    assert_eq!(jobs[0]["total_bytes"], 50_000 + v1.config.len() as u64);
    assert!(
        on_disk(&m, &v1),
        "fetched at start, before any client asked"
    );
    let gets = |d: &str| fake.count("GET", d);
    assert_eq!(gets(&v1.manifest_digest()), 1);
    assert_eq!(gets(&v1.layer_digest(0)), 1);

    // Rounds go by: a HEAD each, nothing fetched again.
    let heads = || fake.count("HEAD", "/manifests/stable");
    let first = heads();
    wait_until("two more rounds", || heads() >= first + 2);
    assert_eq!(gets("/manifests/"), 1, "{:?}", fake.requests());
    assert_eq!(gets(&v1.layer_digest(0)), 1);

    // The tag moves: the new image is fetched, and only its new blobs.
    let v2 = TestImage::new(11, &[25_000]);
    fake.push_image("library/app", "stable", &v2);
    wait_until("the new digest is fetched", || on_disk(&m, &v2));
    let images = get(m.addr, "/_regmirror/images").json();
    let app = &images["images"][0];
    assert_eq!(app["digest"], v2.manifest_digest());
    assert_eq!(app["pinned"], true);
    assert_eq!(app["pinned_by"], "keep");
    assert_eq!(gets(&v1.layer_digest(0)), 1);
    let pins = get(m.addr, "/_regmirror/pins").json();
    assert_eq!(pins["pins"][0]["source"], "keep");
    assert_eq!(pins["keep_file"], keep.display().to_string());
}

#[test]
fn a_pinned_image_survives_eviction_pressure_and_an_upstream_outage() {
    let fake = FakeUpstream::start();
    let kept = TestImage::new(20, &[150_000]);
    fake.push_image("library/kept", "1", &kept);
    let others: Vec<TestImage> = (0..5).map(|i| TestImage::new(30 + i, &[150_000])).collect();
    for (i, img) in others.iter().enumerate() {
        fake.push_image(&format!("library/other{i}"), "1", img);
    }
    let dir = tempfile::tempdir().unwrap();
    let keep = keep_file(dir.path(), "kept:1\n");
    let m = Mirror::start_with(&fake, |c| {
        c.keep = Some(keep.clone());
        c.max_size = Some(500_000); // the pinned image and two others
        c.tag_ttl = Duration::ZERO; // every pull asks upstream
    });
    jobs_done(m.addr);
    assert!(on_disk(&m, &kept));
    for (i, img) in others.iter().enumerate() {
        pull(m.addr, &format!("library/other{i}"), "1", img);
    }
    assert!(on_disk(&m, &kept), "never a victim");
    assert!(!on_disk(&m, &others[0]), "the oldest others were evicted");
    let status = get(m.addr, "/_regmirror/status").json();
    assert!(status["cache"]["bytes"].as_u64().unwrap() <= 500_000);
    let images = get(m.addr, "/_regmirror/images").json();
    let pinned = images["pinned_bytes"].as_u64().unwrap();
    assert_eq!(
        pinned,
        (kept.manifest.len() + kept.config.len() + kept.layers[0].len()) as u64
    );

    fake.fail_with(503, None);
    fake.clear_log();
    pull(m.addr, "library/kept", "1", &kept);
    assert!(
        fake.requests()
            .iter()
            .all(|r| !r.target.contains("/blobs/")),
        "served from disk"
    );
}

#[test]
fn a_keep_list_that_does_not_parse_or_names_an_unknown_upstream_is_a_start_up_error() {
    let fake = FakeUpstream::start();
    let dir = tempfile::tempdir().unwrap();
    let keep = keep_file(dir.path(), "alpine\nAlpine:3\n");
    let e = spawn_in(&fake, &dir.path().join("c1"), |c| {
        c.keep = Some(keep.clone())
    })
    .unwrap_err();
    assert!(e.contains("keep.list") && e.contains("line 2"), "{e}");
    let keep = keep_file(dir.path(), "quay.io/org/app:1\n");
    let e = spawn_in(&fake, &dir.path().join("c2"), |c| {
        c.keep = Some(keep.clone())
    })
    .unwrap_err();
    assert!(e.contains("--upstream quay.io="), "{e}");
}

fn never_sent(size: u64) -> String {
    support::digest_of(format!("never sent {size}").as_bytes())
}

/// A manifest whose layer claims to be `size` bytes (never fetched: sizing comes first).
fn huge_manifest(size: u64) -> Vec<u8> {
    let config = br#"{"architecture":"amd64","os":"linux"}"#;
    format!(
        r#"{{"schemaVersion":2,"mediaType":"{}","config":{{"mediaType":"application/vnd.docker.container.image.v1+json","size":{},"digest":"{}"}},"layers":[{{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","size":{size},"digest":"{}"}}]}}"#,
        support::DOCKER_MANIFEST_V2,
        config.len(),
        support::digest_of(config),
        never_sent(size),
    )
    .into_bytes()
}

#[test]
fn a_keep_list_too_big_for_the_budget_stops_the_mirror_with_a_start_up_error() {
    let fake = FakeUpstream::start();
    let big = huge_manifest(150_000_000);
    fake.add_manifest("library/big", "1", &big, support::DOCKER_MANIFEST_V2);
    fake.add_manifest(
        "library/bigger",
        "1",
        &huge_manifest(90_000_000),
        support::DOCKER_MANIFEST_V2,
    );
    let dir = tempfile::tempdir().unwrap();
    let keep = keep_file(dir.path(), "big:1\nbigger:1\n");
    let args = serve_args(
        dir.path(),
        &fake,
        &["--max-size", "200MB", "--keep", keep.to_str().unwrap()],
    );
    let r = run(
        dir.path(),
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    assert_eq!(r.code(), Some(2), "a configuration that cannot work: {r:?}");
    let last = r
        .stderr_lines()
        .last()
        .copied()
        .unwrap_or_default()
        .to_owned();
    assert!(
        last.contains("need 228.9 MiB")
            && last.contains("docker.io/library/big:1 143.1 MiB")
            && last.contains("190.7 MiB")
            && last.contains("--max-size"),
        "{r:?}"
    );
    assert_eq!(
        fake.count("GET", &never_sent(150_000_000)),
        0,
        "sized before fetched"
    );
}

#[test]
fn sighup_rereads_the_keep_list() {
    let fake = FakeUpstream::start();
    let (a, b) = (TestImage::new(40, &[1000]), TestImage::new(41, &[2000]));
    fake.push_image("library/a", "1", &a);
    fake.push_image("library/b", "1", &b);
    let dir = tempfile::tempdir().unwrap();
    let keep = keep_file(dir.path(), "a:1\n");
    let args = serve_args(dir.path(), &fake, &["--keep", keep.to_str().unwrap()]);
    let server = Server::start_args(
        dir.path(),
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    assert!(server.wait_for_log(
        "keep list: docker.io/library/a:1 is on disk",
        Duration::from_secs(10)
    ));
    std::fs::write(&keep, "a:1\nb:1 linux/amd64\nnot a list\n").unwrap();
    server.signal("HUP");
    assert!(server.wait_for_log("the keep list in effect stays", Duration::from_secs(5)));
    std::fs::write(&keep, "b:1\n").unwrap();
    server.signal("HUP");
    assert!(
        server.wait_for_log(
            "keep list: docker.io/library/b:1 is on disk",
            Duration::from_secs(10)
        ),
        "{}",
        server.stderr()
    );
    let pins = server.get("/_regmirror/pins").json();
    assert_eq!(pins["pins"].as_array().unwrap().len(), 1, "{pins}");
    assert_eq!(pins["pins"][0]["image"], "docker.io/library/b:1");
    assert!(!server.stderr().contains("not supported"));
}
