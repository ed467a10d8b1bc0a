//! The mirror binary resolves upstream host names on its one `regmirror-dns` thread, started
//! at start-up: pulls through an upstream named `localhost:PORT` start no thread (smol's
//! `connect("host:port")` would start the `blocking` pool's `blocking-N` threads).

mod support;

use std::collections::BTreeMap;
use std::fs;
use std::thread;
use std::time::{Duration, Instant};
use support::mirror::pull;
use support::process::{Server, START_WITHIN};
use support::{FakeUpstream, TestImage};

/// Images pulled (each a manifest, a config and two layers from upstream), and tag lists
/// asked for (each passed through to upstream).
const PULLS: u8 = 8;

/// Thread name → how many threads have it, from `/proc/PID/task/*/comm`.
fn threads(pid: u32) -> BTreeMap<String, usize> {
    let mut names = BTreeMap::new();
    for task in fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
        let comm = task.unwrap().path().join("comm");
        if let Ok(name) = fs::read_to_string(comm) {
            *names.entry(name.trim().to_owned()).or_default() += 1;
        }
    }
    names
}

#[test]
fn pulls_through_a_named_upstream_start_no_thread() {
    let fake = FakeUpstream::start();
    let images: Vec<TestImage> = (0..PULLS)
        .map(|i| TestImage::new(10 + u64::from(i), &[2000, 30_000]))
        .collect();
    for (i, img) in images.iter().enumerate() {
        fake.push_image(&format!("library/app{i}"), "latest", img);
    }
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let upstream = format!("docker.io=http://localhost:{}", fake.addr().port());
    // Docker Hub is this upstream (each registry may be given once, so not Server::start,
    // which names its own closed-port Docker Hub).
    let server = Server::start_args(
        dir.path(),
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--cache-dir",
            cache.to_str().unwrap(),
            "--upstream",
            &upstream,
        ],
    );
    let deadline = Instant::now() + START_WITHIN;
    while server.get("/v2/").status != 200 {
        assert!(Instant::now() < deadline, "{}", server.stderr());
        thread::sleep(Duration::from_millis(20));
    }
    let before = threads(server.pid());
    assert_eq!(
        before.get(regmirror::upstream::DNS_THREAD_NAME),
        Some(&1),
        "the resolver thread runs from start-up: {before:?}"
    );

    for (i, img) in images.iter().enumerate() {
        pull(server.addr, &format!("app{i}"), "latest", img);
        let tags = server.get(&format!("/v2/app{i}/tags/list"));
        assert_eq!(tags.status, 200, "{}", tags.text());
    }
    assert!(
        fake.requests().len() >= usize::from(PULLS) * 5,
        "every pull reached the upstream by name: {}",
        fake.requests().len()
    );
    assert!(fake
        .requests()
        .iter()
        .all(|r| r.host.starts_with("localhost:")));
    let after = threads(server.pid());
    assert_eq!(
        after,
        before,
        "threads after the pulls; log:\n{}",
        server.stderr()
    );
}
