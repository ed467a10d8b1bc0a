//! The running binary: what `serve` does to its cache directory at start, its own
//! endpoints, failing fast without an upstream, and `verify`. The real executable runs in a
//! temporary directory for each test (see `support/process.rs`).

mod support;

use sha2::{Digest as _, Sha256};
use std::fs;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};
use support::client::request;
use support::process::{run, Server, START_WITHIN};

/// The status JSON as a value.
fn status_json(server: &Server) -> serde_json::Value {
    let r = server.get("/_regmirror/status");
    assert_eq!(r.status, 200, "status endpoint: {}", r.text());
    serde_json::from_slice(&r.body)
        .unwrap_or_else(|e| panic!("status is not JSON ({e}): {}", r.text()))
}

/// Lower-case hex SHA-256 of `bytes`, computed independently of the crate.
fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Writes `content` as the blob named `hex` in the cache at `cache`, as `serve` lays it out.
fn put_blob(cache: &Path, hex: &str, content: &[u8]) -> PathBuf {
    let dir = cache.join("blobs/sha256").join(&hex[..2]);
    fs::create_dir_all(&dir).unwrap();
    let path = dir.join(hex);
    fs::write(&path, content).unwrap();
    path
}

#[test]
fn serve_starts_empties_tmp_and_answers_v2() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    fs::create_dir_all(cache.join("tmp")).unwrap();
    fs::write(cache.join("tmp/leftover"), b"half a layer").unwrap();

    let server = Server::start(dir.path(), &["--cache-dir", cache.to_str().unwrap()]);

    // `/v2/` is what every client asks first.
    let deadline = Instant::now() + START_WITHIN;
    let v2 = loop {
        let r = server.get("/v2/");
        if r.status == 200 || Instant::now() > deadline {
            break r;
        }
        thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(v2.status, 200, "{}", v2.text());
    assert_eq!(
        v2.header("docker-distribution-api-version"),
        Some("registry/2.0")
    );

    // Interrupted downloads are discarded at start; the layout is in place.
    assert!(!cache.join("tmp/leftover").exists(), "tmp/ is emptied");
    assert!(cache.join("tmp").is_dir());
    assert!(cache.join("blobs/sha256").is_dir());

    // Status and metrics.
    let status = status_json(&server);
    assert!(
        status["cache"]["budget_bytes"]
            .as_u64()
            .is_some_and(|b| b > 0),
        "{status}"
    );
    assert_eq!(status["cache"]["blobs"], 0, "{status}");
    assert_eq!(
        status["upstreams"][0]["url"], "http://127.0.0.1:9",
        "--upstream replaced Docker Hub: {status}"
    );
    // The process's own memory, as /proc/PID/status has it for the binary.
    let proc_status = std::fs::read_to_string(format!("/proc/{}/status", server.pid())).unwrap();
    let rss = |text: &str| -> u64 {
        let line = text.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
        line[6..]
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse::<u64>()
            .unwrap()
            * 1024
    };
    let mem = &status["memory"];
    let resident = mem["resident_bytes"]
        .as_u64()
        .expect("memory.resident_bytes");
    let outside = rss(&proc_status);
    assert!(
        resident.abs_diff(outside) <= 1 << 20,
        "status says {resident} B resident, /proc says {outside}: {mem}"
    );
    let (anon, file) = (mem["anonymous_bytes"].as_u64(), mem["file_bytes"].as_u64());
    assert!(anon.unwrap() > 0 && file.unwrap() > 0, "{mem}");
    assert!(mem["peak_bytes"].as_u64() >= Some(resident), "{mem}");
    let page = server.get("/").text();
    assert!(
        page.contains("<dt>Memory</dt><dd><span data-k=\"resident-bytes\""),
        "{page}"
    );
    let metrics = server.get("/metrics");
    assert_eq!(metrics.status, 200);
    for name in [
        "regmirror_requests_hit_total",
        "process_resident_memory_bytes ",
        "regmirror_resident_anonymous_bytes ",
        "regmirror_resident_peak_bytes ",
    ] {
        assert!(metrics.text().contains(name), "{name}: {}", metrics.text());
    }

    // Every request gets an access-log line on stderr.
    assert!(
        server.wait_for_log("GET /v2/ 200", Duration::from_secs(2)),
        "no access-log line for GET /v2/:\n{}",
        server.stderr()
    );
}

#[test]
fn max_size_and_tag_ttl_are_reported_in_status() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let server = Server::start(
        dir.path(),
        &[
            "--cache-dir",
            cache.to_str().unwrap(),
            "--max-size",
            "500MB",
            "--tag-ttl",
            "1h30m",
        ],
    );
    let status = status_json(&server);
    assert_eq!(status["cache"]["budget_bytes"], 500_000_000, "{status}");
    assert_eq!(status["tag_ttl_seconds"], 5400, "{status}");
}

#[test]
fn serve_without_cache_dir_uses_regmirror_cache_in_the_working_directory() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    assert_eq!(server.get("/v2/").status, 200);
    assert!(dir.path().join("regmirror-cache/blobs/sha256").is_dir());
}

#[test]
fn serve_finds_blobs_already_in_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let content = b"a layer cached by an earlier run";
    let hex = sha256_hex(content);
    put_blob(&cache, &hex, content);
    let server = Server::start(dir.path(), &["--cache-dir", cache.to_str().unwrap()]);
    let status = status_json(&server);
    assert_eq!(status["cache"]["blobs"], 1, "{status}");
    assert_eq!(status["cache"]["bytes"], content.len(), "{status}");
    // And serves it, though no upstream is reachable.
    let r = server.get(&format!("/v2/library/alpine/blobs/sha256:{hex}"));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.body.as_slice(), content);
}

#[test]
fn unreachable_upstream_fails_fast_with_a_registry_error() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let server = Server::start(dir.path(), &["--cache-dir", cache.to_str().unwrap()]);
    let started = Instant::now();
    let r = server.get("/v2/library/alpine/manifests/latest");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "Docker falls back to Docker Hub only if the mirror answers"
    );
    assert_eq!(r.status, 503, "{}", r.text());
    assert!(r.text().contains("\"errors\""), "{}", r.text());
}

#[test]
fn push_is_refused_with_405() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let server = Server::start(dir.path(), &["--cache-dir", cache.to_str().unwrap()]);
    let r = request(
        server.addr,
        "POST",
        "/v2/library/alpine/blobs/uploads/",
        &[],
    );
    assert_eq!(r.status, 405, "{}", r.text());
    assert!(r.text().contains("UNSUPPORTED"), "{}", r.text());
}

// ---------------------------------------------------------------------------------------
// verify
// ---------------------------------------------------------------------------------------

#[test]
fn verify_reports_and_deletes_corrupt_blobs() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("regmirror-cache");
    let good_hex = sha256_hex(b"hello");
    let good = put_blob(&cache, &good_hex, b"hello");
    let bad_hex = sha256_hex(b"what the blob should hold");
    let bad = put_blob(&cache, &bad_hex, b"what the SD card returned");
    // A download in progress belongs to a running server: verify leaves tmp/ alone.
    fs::create_dir_all(cache.join("tmp")).unwrap();
    fs::write(cache.join("tmp/fill-1-0"), b"partial").unwrap();

    let r = run(
        dir.path(),
        &["verify", "--cache-dir", cache.to_str().unwrap()],
    );
    assert_eq!(r.code(), Some(1), "a bad blob makes verify fail: {r:?}");
    assert!(
        r.stdout.contains(&bad_hex),
        "the bad digest is named: {r:?}"
    );
    assert!(
        !r.stdout.contains(&good_hex),
        "the good blob is not reported bad: {r:?}"
    );
    assert!(!bad.exists(), "the bad blob is deleted");
    assert_eq!(fs::read(&good).unwrap(), b"hello", "the good blob is kept");
    assert!(cache.join("tmp/fill-1-0").exists(), "tmp/ is not touched");

    // Now clean; and the default --cache-dir is ./regmirror-cache.
    let r = run(dir.path(), &["verify"]);
    assert_eq!(r.code(), Some(0), "{r:?}");
    assert!(good.exists());
}

#[test]
fn verify_leaves_files_that_are_not_blobs_alone() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let hex = sha256_hex(b"hello");
    put_blob(&cache, &hex, b"hello");
    let stray = cache.join("blobs/sha256").join(&hex[..2]).join("notes.txt");
    fs::write(&stray, b"not a blob").unwrap();

    let r = run(
        dir.path(),
        &["verify", "--cache-dir", cache.to_str().unwrap()],
    );
    assert_eq!(r.code(), Some(0), "a stray is not a bad blob: {r:?}");
    assert!(
        r.stdout.contains("notes.txt"),
        "the stray is reported: {r:?}"
    );
    assert_eq!(fs::read(&stray).unwrap(), b"not a blob");
}

#[test]
fn verify_of_a_missing_cache_fails_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-cache-here");
    let r = run(
        dir.path(),
        &["verify", "--cache-dir", missing.to_str().unwrap()],
    );
    assert_eq!(r.code(), Some(1), "{r:?}");
    let lines = r.stderr_lines();
    assert_eq!(lines.len(), 1, "one clear line: {r:?}");
    assert!(lines[0].contains(missing.to_str().unwrap()), "{r:?}");
    assert!(!missing.exists(), "verify does not create a cache");
}

// ---------------------------------------------------------------------------------------
// Signals and what a failing upstream tells the client
// ---------------------------------------------------------------------------------------

#[test]
fn sigterm_finishes_the_reply_in_flight_logs_one_line_and_exits_0() {
    use std::io::{Read, Write};
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    // A cached blob far larger than the socket buffers: its reply is still being written
    // when the signal comes, because the client reads nothing until then.
    let content: Vec<u8> = (0..(32u32 << 20)).map(|i| (i % 251) as u8).collect();
    let hex = sha256_hex(&content);
    put_blob(&cache, &hex, &content);
    let mut server = Server::start(dir.path(), &["--cache-dir", cache.to_str().unwrap()]);
    let mut busy = std::net::TcpStream::connect(server.addr).unwrap();
    write!(
        busy,
        "GET /v2/library/a/blobs/sha256:{hex} HTTP/1.1\r\nHost: x\r\n\r\n"
    )
    .unwrap();
    let mut idle = std::net::TcpStream::connect(server.addr).unwrap();
    thread::sleep(Duration::from_millis(300));

    server.signal("TERM");
    // The idle connection is closed at once.
    idle.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let t = Instant::now();
    let mut b = [0u8; 1];
    assert!(matches!(idle.read(&mut b), Ok(0)), "idle connection closed");
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    // The reply in flight is finished.
    busy.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut reply = Vec::new();
    let _ = busy.read_to_end(&mut reply);
    let body_at = reply.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    assert_eq!(reply.len() - body_at, content.len(), "the whole blob");
    assert!(reply[body_at..] == content[..]);

    let status = server.wait_exit(Duration::from_secs(10));
    let log = server.stop();
    assert_eq!(status.and_then(|s| s.code()), Some(0), "{log}");
    let lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("shutting down"))
        .collect();
    assert_eq!(lines.len(), 1, "one shutdown line:\n{log}");
    assert!(lines[0].contains("SIGTERM"), "{log}");
}

#[test]
fn sigint_stops_an_idle_server_at_once_with_exit_0() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path(), &[]);
    server.signal("INT");
    let status = server.wait_exit(Duration::from_secs(3));
    let log = server.stop();
    assert_eq!(status.and_then(|s| s.code()), Some(0), "{log}");
    assert!(
        log.contains("shutting down") && log.contains("SIGINT"),
        "{log}"
    );
}

#[test]
fn sighup_is_logged_and_does_not_stop_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path(), &[]);
    server.signal("HUP");
    assert!(
        server.wait_for_log("SIGHUP", Duration::from_secs(3)),
        "{}",
        server.stderr()
    );
    assert_eq!(server.get("/v2/").status, 200);
    assert!(server.wait_exit(Duration::from_millis(100)).is_none());
}

#[test]
fn the_status_line_of_an_upstream_failure_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let server = Server::start(dir.path(), &["--cache-dir", cache.to_str().unwrap()]);
    let answer = support::raw::exchange(
        server.addr,
        b"GET /v2/library/alpine/manifests/latest HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        Duration::from_secs(10),
    );
    let text = String::from_utf8_lossy(&answer);
    let status_line = text.lines().next().unwrap_or_default();
    // containers/image (skopeo, podman) and Docker print the status line.
    assert!(status_line.starts_with("HTTP/1.1 503 "), "{status_line}");
    assert!(
        status_line.contains("127.0.0.1:9") && status_line.len() > "HTTP/1.1 503 ".len() + 20,
        "the cause is in the reason phrase: {status_line}"
    );
    assert!(status_line.is_ascii() && !status_line.contains('\r'));
}
