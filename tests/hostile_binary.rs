//! Hostile clients against the real binary (issue 6), so that the threads and the global
//! logger are the binary's, not this test process's (`support/process.rs`): no request of
//! any kind starts a thread, and log lines and the log ring stay bounded.

mod support;

use std::thread;
use std::time::Duration;
use support::client::{get, request};
use support::process::Server;
use support::raw::{exchange, AT_ONCE};
use support::{FakeUpstream, TestImage};

/// The names of the process's threads (`/proc/PID/task/*/comm`).
fn threads(pid: u32) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/task"))
        .expect("the process is running")
        .flatten()
        .map(|t| {
            std::fs::read_to_string(t.path().join("comm"))
                .unwrap_or_default()
                .trim()
                .to_owned()
        })
        .collect();
    names.sort();
    names
}

/// The threads `src/lib.rs` says exist: the main thread running the executor, async-io's
/// reactor thread, and the upstream DNS thread.
const DOCUMENTED_THREADS: [&str; 3] = ["regmirror", "async-io", "regmirror-dns"];

#[test]
fn no_request_of_any_kind_starts_a_thread() {
    let fake = FakeUpstream::start();
    let img = TestImage::new(63, &[200_000]);
    fake.push_image("team/app", "1", &img);
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let upstream = format!("fake.local={}", fake.url());
    let server = Server::start(
        dir.path(),
        &[
            "--cache-dir",
            cache.to_str().unwrap(),
            "--upstream",
            &upstream,
        ],
    );
    let addr = server.addr;
    assert_eq!(get(addr, "/v2/").status, 200);
    let before = threads(server.pid());
    assert!(
        before
            .iter()
            .all(|t| DOCUMENTED_THREADS.contains(&t.as_str())),
        "undocumented threads at start: {before:?}"
    );

    let blob = img.layer_digest(0);
    let q = "?ns=fake.local";
    let paths = [
        "/v2/".to_owned(),
        format!("/v2/team/app/manifests/1{q}"),
        format!("/v2/team/app/manifests/{}{q}", img.manifest_digest()),
        format!("/v2/team/app/blobs/{blob}{q}"),
        format!("/v2/team/app/blobs/{}{q}", img.config_digest()),
        format!("/v2/team/app/tags/list{q}"),
        format!("/v2/team/app/manifests/nope{q}"),
        "/v2/team/app/manifests/1?ns=other.example".to_owned(),
        "/v2/_catalog".to_owned(),
        "/metrics".to_owned(),
        "/_regmirror/status".to_owned(),
        "/_regmirror/log".to_owned(),
        "/_regmirror/images".to_owned(),
        "/_regmirror/images?image=team%2Fapp%3A1".to_owned(),
        "/_regmirror/prefetch?id=1,2".to_owned(),
        "/_regmirror/pins".to_owned(),
        "/_regmirror/allowance".to_owned(),
        "/".to_owned(),
        "/?sort=size".to_owned(),
        "/_regmirror/".to_owned(),
        "/_regmirror/image?image=team%2Fapp%3A1".to_owned(),
        "/nowhere".to_owned(),
    ];
    for p in &paths {
        for method in ["GET", "HEAD"] {
            request(addr, method, p, &[]);
        }
    }
    request(
        addr,
        "GET",
        &format!("/v2/team/app/blobs/{blob}{q}"),
        &[("Range", "bytes=10-99")],
    );
    let raw_requests: Vec<Vec<u8>> = vec![
        b"GET /v2/ HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n\r\n".to_vec(),
        b"PUT /v2/a/manifests/1 HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 10\r\n\r\n".to_vec(),
        b"POST /v2/a/blobs/uploads/ HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n".to_vec(),
        b"PATCH /v2/a/blobs/uploads/1 HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc".to_vec(),
        vec![0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03],
        b"GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\nGET /metrics HTTP/1.1\r\nHost: x\r\n\r\nGET /v2/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".to_vec(),
        b"POST /_regmirror/admin/prefetch?image=alpine HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer x\r\nContent-Length: 4\r\n\r\nbody".to_vec(),
        b"GET /v2/ HTTP/1.0\r\n\r\n".to_vec(),
        b"get /v2/ HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        b"GET /v2/ HTTP/1.1\nHost: x\n\n".to_vec(),
        b"\x00\x01\x02garbage\r\n\r\n".to_vec(),
        [b"GET /".as_slice(), &[b'a'; 10_000]].concat(),
        b"GET /v2/ HTTP/1.1\r\nHost: x\r\nUser-Agent: caf\xc3\xa9 \xff\r\n\r\n".to_vec(),
    ];
    for bytes in &raw_requests {
        exchange(addr, bytes, AT_ONCE);
    }
    assert_eq!(get(addr, "/v2/").status, 200, "still running");
    thread::sleep(Duration::from_millis(300));
    let after = threads(server.pid());
    assert_eq!(before, after, "threads before and after the requests");
}

#[test]
fn log_lines_and_the_log_ring_are_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let server = Server::start(dir.path(), &["--cache-dir", cache.to_str().unwrap()]);
    let long = format!("/v2/{}", "a".repeat(8000));
    for _ in 0..600 {
        request(server.addr, "GET", &long, &[]);
    }
    let log = server.get("/_regmirror/log");
    assert_eq!(log.status, 200);
    // Named limits in src/logger.rs: 1 KiB a line, 256 KiB a ring.
    assert!(
        log.body.len() <= 256 * 1024,
        "log ring holds {} bytes",
        log.body.len()
    );
    let text = log.text();
    let longest = text.lines().map(str::len).max().unwrap_or(0);
    assert!(longest <= 1024, "a line of {longest} bytes");
    assert!(
        text.contains("aaaa"),
        "the requests are logged: {text:.300}"
    );
    assert!(text.contains('…'), "the cut is marked");
    let stderr_longest = server.stderr().lines().map(str::len).max().unwrap_or(0);
    assert!(
        stderr_longest <= 1024,
        "a stderr line of {stderr_longest} bytes"
    );
}
