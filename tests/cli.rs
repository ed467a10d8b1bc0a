//! The `regmirror` binary as an operator meets it: flags, exit codes, start-up errors,
//! what `serve` does to its cache directory on start, its own endpoints, and `verify`.
//!
//! Every test runs the real executable in its own temporary directory. Nothing here reaches
//! the network: each `serve` listens on `127.0.0.1:0` (or a port the test holds) and has
//! Docker Hub replaced by `http://127.0.0.1:9`, a closed port. Every child is killed and
//! reaped when its test ends, pass or fail.

use sha2::{Digest as _, Sha256};
use std::collections::BTreeSet;
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_regmirror");

/// Docker Hub's replacement in every `serve`: a port nothing listens on.
const NO_UPSTREAM: &str = "docker.io=http://127.0.0.1:9";

/// Longest a command that should exit at once (bad flag, start-up error, `verify`) may run.
const EXIT_WITHIN: Duration = Duration::from_secs(10);

/// Longest a `serve` may take to start listening.
const START_WITHIN: Duration = Duration::from_secs(5);

// ---------------------------------------------------------------------------------------
// Helpers: running the binary to completion, a running server, a tiny HTTP client.
// ---------------------------------------------------------------------------------------

/// A finished run of the binary.
struct Finished {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

impl Finished {
    fn code(&self) -> Option<i32> {
        self.status.code()
    }

    /// The non-empty lines of stderr.
    fn stderr_lines(&self) -> Vec<&str> {
        self.stderr
            .lines()
            .filter(|l| !l.trim().is_empty())
            .collect()
    }
}

impl std::fmt::Debug for Finished {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.status.code(),
            self.stdout,
            self.stderr
        )
    }
}

/// Kills and reaps a child when dropped, so no test leaves a process behind.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs `regmirror ARGS` in `cwd` and waits for it to exit; panics (after killing it) if it
/// is still running after [`EXIT_WITHIN`] — a bad flag must never leave a server running.
fn run(cwd: &Path, args: &[&str]) -> Finished {
    let child = Command::new(BIN)
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start regmirror");
    let mut child = Reaped(child);
    // Read both pipes on threads so a chatty child can never block on a full pipe.
    let stdout = drain(child.0.stdout.take().expect("piped stdout"));
    let stderr = drain(child.0.stderr.take().expect("piped stderr"));
    let deadline = Instant::now() + EXIT_WITHIN;
    let status = loop {
        if let Some(status) = child.0.try_wait().expect("wait for regmirror") {
            break status;
        }
        if Instant::now() > deadline {
            drop(child);
            panic!(
                "regmirror {args:?} still running after {EXIT_WITHIN:?}; stderr so far:\n{}",
                stderr.join().unwrap_or_default()
            );
        }
        thread::sleep(Duration::from_millis(20));
    };
    Finished {
        status,
        stdout: stdout.join().expect("stdout reader"),
        stderr: stderr.join().expect("stderr reader"),
    }
}

/// Reads a pipe to its end on a thread.
fn drain(mut pipe: impl Read + Send + 'static) -> JoinHandle<String> {
    thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

/// A running `regmirror serve`: its address and everything it has written to stderr so far.
/// Dropping it kills and reaps the process.
struct Server {
    child: Option<Reaped>,
    stderr: Arc<Mutex<String>>,
    reader: Option<JoinHandle<()>>,
    addr: SocketAddr,
}

impl Server {
    /// Starts `regmirror serve --listen 127.0.0.1:0 --upstream docker.io=http://127.0.0.1:9
    /// EXTRA…` in `cwd`, and waits for its start-up line to say where it listens.
    fn start(cwd: &Path, extra: &[&str]) -> Server {
        let mut args = vec![
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--upstream",
            NO_UPSTREAM,
        ];
        args.extend_from_slice(extra);
        let child = Command::new(BIN)
            .args(&args)
            .current_dir(cwd)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start regmirror serve");
        let mut child = Reaped(child);
        let pipe = child.0.stderr.take().expect("piped stderr");
        let stderr = Arc::new(Mutex::new(String::new()));
        let reader = {
            let stderr = stderr.clone();
            thread::spawn(move || {
                for line in BufReader::new(pipe).lines() {
                    let Ok(line) = line else { break };
                    let mut all = stderr.lock().unwrap();
                    all.push_str(&line);
                    all.push('\n');
                }
            })
        };
        let mut server = Server {
            child: Some(child),
            stderr,
            reader: Some(reader),
            addr: "127.0.0.1:0".parse().unwrap(),
        };
        let deadline = Instant::now() + START_WITHIN;
        loop {
            if let Some(addr) = listening_address(&server.stderr()) {
                server.addr = addr;
                return server;
            }
            let exited = server.child.as_mut().unwrap().0.try_wait().unwrap();
            if exited.is_some() || Instant::now() > deadline {
                let log = server.stop();
                panic!("regmirror serve did not start ({exited:?}); stderr:\n{log}");
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Everything written to stderr so far.
    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Waits until stderr contains `needle`; false if it does not within `within`.
    fn wait_for_log(&self, needle: &str, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if self.stderr().contains(needle) {
                return true;
            }
            thread::sleep(Duration::from_millis(20));
        }
        self.stderr().contains(needle)
    }

    /// `GET path` against the server.
    fn get(&self, path: &str) -> Response {
        request(self.addr, "GET", path)
    }

    /// Kills the server and returns all it wrote to stderr.
    fn stop(&mut self) -> String {
        drop(self.child.take());
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
        self.stderr()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The address in the start-up line `… listening on 127.0.0.1:PORT; …`.
fn listening_address(stderr: &str) -> Option<SocketAddr> {
    let rest = &stderr[stderr.find("listening on ")? + "listening on ".len()..];
    let end = rest.find(|c: char| c == ';' || c.is_whitespace())?;
    rest[..end].parse().ok()
}

/// An HTTP response: status, headers (names lower-cased) and body.
struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// One HTTP/1.1 request on a fresh connection; reads the body by `Content-Length` (or
/// chunked, or to the end). Panics after 5 s without an answer.
fn request(addr: SocketAddr, method: &str, path: &str) -> Response {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader
        .read_line(&mut line)
        .unwrap_or_else(|e| panic!("{method} {path}: no status line: {e}"));
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{method} {path}: bad status line {line:?}"));
    let mut headers = Vec::new();
    loop {
        line.clear();
        reader.read_line(&mut line).unwrap();
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        let (name, value) = l.split_once(':').expect("header line has a colon");
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
    }
    let find = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    let mut body = Vec::new();
    if method == "HEAD" {
        // No body.
    } else if let Some(len) = find("content-length") {
        let len: usize = len.parse().expect("numeric Content-Length");
        body.resize(len, 0);
        reader.read_exact(&mut body).unwrap();
    } else if find("transfer-encoding").is_some_and(|t| t.eq_ignore_ascii_case("chunked")) {
        loop {
            line.clear();
            reader.read_line(&mut line).unwrap();
            let size = line.trim().split(';').next().unwrap_or("");
            let size = usize::from_str_radix(size, 16).expect("chunk size");
            let mut chunk = vec![0; size + 2];
            reader.read_exact(&mut chunk).unwrap();
            if size == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..size]);
        }
    } else {
        reader.read_to_end(&mut body).unwrap();
    }
    Response {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

/// The status JSON as a value.
fn status_json(server: &Server) -> serde_json::Value {
    let r = server.get("/_regmirror/status");
    assert_eq!(r.status, 200, "status endpoint: {}", r.body);
    serde_json::from_str(&r.body).unwrap_or_else(|e| panic!("status is not JSON ({e}): {}", r.body))
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

/// The flags in README.md's `regmirror serve` table, e.g. `--listen`, `-v`, `--verbose`.
fn readme_flags() -> BTreeSet<String> {
    let readme = fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
        .expect("read README.md");
    let section = readme
        .split("\n## ")
        .find(|s| s.starts_with("`regmirror serve` flags"))
        .expect("README.md has a `regmirror serve` flags section");
    let mut flags = BTreeSet::new();
    for row in section.lines().filter(|l| l.starts_with("| `")) {
        let first_cell = row.split('|').nth(1).unwrap_or("");
        for (i, quoted) in first_cell.split('`').enumerate() {
            let word = quoted.split_whitespace().next().unwrap_or("");
            if i % 2 == 1 && word.starts_with('-') {
                flags.insert(word.to_owned());
            }
        }
    }
    flags
}

/// The words of a help text that look like flags (`--upstream-ca`, `-v`).
fn flag_words(text: &str) -> BTreeSet<&str> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
        .filter(|w| w.starts_with('-') && w.len() > 1)
        .collect()
}

// ---------------------------------------------------------------------------------------
// Flags and help.
// ---------------------------------------------------------------------------------------

#[test]
fn bad_flags_print_one_line_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let cache = cache.to_str().unwrap();
    // Each case would otherwise be a complete, harmless `serve` (loopback, no real
    // upstream), so only the bad flag can explain the exit.
    let safe = ["--cache-dir", cache, "--upstream", NO_UPSTREAM];
    let listen = ["--listen", "127.0.0.1:0"];
    let cases: Vec<Vec<&str>> = vec![
        vec!["--bogus"],
        vec!["--max-size", "lots"],
        vec!["--max-size", "5XB"],
        vec!["--tag-ttl", "300"],
        vec!["--upstream-timeout", "soon"],
        vec!["--upstream-timeout", "0s"],
        vec!["--max-connections", "0"],
        vec!["--max-connections", "many"],
        vec!["--upstream", "docker.io"],
        vec!["--upstream", "evil=http://x"],
        vec!["--upstream", "ghcr.io=ftp://ghcr.io"],
        vec!["--upstream", "ghcr.io=https://ghcr.io/some/path"],
        vec!["--upstream-auth", "docker.io=bob:/nonexistent"],
        vec!["--upstream-auth", "docker.io"],
        vec!["--listen"],
    ];
    let mut runs: Vec<Vec<&str>> = cases
        .into_iter()
        .map(|bad| {
            let mut args = vec!["serve"];
            args.extend_from_slice(&listen);
            args.extend_from_slice(&safe);
            args.extend(bad);
            args
        })
        .collect();
    let mut listen_nowhere = vec!["serve", "--listen", "nowhere"];
    listen_nowhere.extend_from_slice(&safe);
    runs.push(listen_nowhere);
    runs.push(vec![]);
    runs.push(vec!["--bogus"]);
    runs.push(vec!["frobnicate"]);
    runs.push(vec!["verify", "--bogus"]);
    runs.push(vec!["verify", "--cache-dir"]);

    for args in &runs {
        let r = run(dir.path(), args);
        assert_eq!(r.code(), Some(2), "regmirror {args:?}: {r:?}");
        let lines = r.stderr_lines();
        assert_eq!(lines.len(), 1, "regmirror {args:?}: one line wanted: {r:?}");
        assert!(
            lines[0].starts_with("regmirror"),
            "regmirror {args:?}: the line names the program: {r:?}"
        );
        assert_eq!(r.stdout, "", "regmirror {args:?}: {r:?}");
    }
    assert!(
        !Path::new(cache).exists() && !dir.path().join("regmirror-cache").exists(),
        "a rejected command line must not create a cache directory"
    );
}

#[test]
fn bad_flag_errors_name_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    for (flag, value) in [
        ("--max-size", "lots"),
        ("--tag-ttl", "300"),
        ("--upstream", "evil=http://x"),
        ("--listen", "nowhere"),
        ("--upstream-auth", "docker.io=bob:/nonexistent"),
    ] {
        let mut args = vec!["serve", "--upstream", NO_UPSTREAM, flag, value];
        if flag != "--listen" {
            args.extend(["--listen", "127.0.0.1:0"]);
        }
        let r = run(dir.path(), &args);
        assert_eq!(r.code(), Some(2), "{flag} {value}: {r:?}");
        assert!(r.stderr.contains(flag), "{flag} {value}: {r:?}");
    }
}

#[test]
fn help_exits_0_and_lists_every_flag() {
    let dir = tempfile::tempdir().unwrap();
    let documented = readme_flags();
    assert!(
        documented.len() >= 10 && documented.contains("--listen") && documented.contains("-v"),
        "could not read the flag table from README.md: {documented:?}"
    );

    let r = run(dir.path(), &["serve", "--help"]);
    assert_eq!(r.code(), Some(0), "{r:?}");
    assert_eq!(r.stderr, "", "help goes to stdout: {r:?}");
    let offered = flag_words(&r.stdout);
    let missing: Vec<_> = documented
        .iter()
        .filter(|f| !offered.contains(f.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "README.md documents {missing:?}, `serve --help` does not:\n{}",
        r.stdout
    );
    let undocumented: Vec<_> = offered
        .iter()
        .filter(|f| !documented.contains(**f) && **f != "--help")
        .collect();
    assert!(
        undocumented.is_empty(),
        "`serve --help` offers {undocumented:?}, README.md's table does not document them"
    );

    let r = run(dir.path(), &["--help"]);
    assert_eq!(r.code(), Some(0), "{r:?}");
    assert!(
        r.stdout.contains("serve") && r.stdout.contains("verify"),
        "top-level help names both commands: {r:?}"
    );

    let r = run(dir.path(), &["verify", "--help"]);
    assert_eq!(r.code(), Some(0), "{r:?}");
    assert!(flag_words(&r.stdout).contains("--cache-dir"), "{r:?}");
}

// ---------------------------------------------------------------------------------------
// Start-up errors: one clear line, exit 1.
// ---------------------------------------------------------------------------------------

#[test]
fn port_in_use_is_a_clear_startup_error() {
    let dir = tempfile::tempdir().unwrap();
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let cache = dir.path().join("cache");
    let started = Instant::now();
    let r = run(
        dir.path(),
        &[
            "serve",
            "--listen",
            &addr,
            "--upstream",
            NO_UPSTREAM,
            "--cache-dir",
            cache.to_str().unwrap(),
        ],
    );
    assert!(started.elapsed() < Duration::from_secs(5), "{r:?}");
    assert_eq!(r.code(), Some(1), "{r:?}");
    let lines = r.stderr_lines();
    assert_eq!(lines.len(), 1, "one clear line: {r:?}");
    assert!(
        lines[0].contains("cannot listen") && lines[0].contains(&addr),
        "{r:?}"
    );
    drop(taken);
}

#[test]
fn unwritable_cache_dir_is_a_clear_startup_error() {
    let dir = tempfile::tempdir().unwrap();
    // A regular file where the directory should be: fails even for root, unlike modes.
    let file = dir.path().join("not-a-directory");
    fs::write(&file, b"").unwrap();
    let r = run(
        dir.path(),
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--upstream",
            NO_UPSTREAM,
            "--cache-dir",
            file.to_str().unwrap(),
        ],
    );
    assert_eq!(r.code(), Some(1), "{r:?}");
    let lines = r.stderr_lines();
    assert_eq!(lines.len(), 1, "one clear line: {r:?}");
    assert!(lines[0].contains(file.to_str().unwrap()), "{r:?}");
    assert_eq!(fs::read(&file).unwrap(), b"", "the file is left alone");
}

#[test]
fn unreadable_upstream_ca_is_a_clear_startup_error() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-ca.pem");
    let not_pem = dir.path().join("not-pem.pem");
    fs::write(&not_pem, b"this is not a certificate\n").unwrap();
    for ca in [&missing, &not_pem] {
        let r = run(
            dir.path(),
            &[
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--upstream",
                NO_UPSTREAM,
                "--cache-dir",
                dir.path().join("cache").to_str().unwrap(),
                "--upstream-ca",
                ca.to_str().unwrap(),
            ],
        );
        assert_eq!(r.code(), Some(1), "{r:?}");
        let lines = r.stderr_lines();
        assert_eq!(lines.len(), 1, "one clear line: {r:?}");
        assert!(lines[0].contains(ca.to_str().unwrap()), "{r:?}");
    }
}

// ---------------------------------------------------------------------------------------
// A running server.
// ---------------------------------------------------------------------------------------

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
    assert_eq!(v2.status, 200, "{}", v2.body);
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
    let metrics = server.get("/metrics");
    assert_eq!(metrics.status, 200);
    assert!(
        metrics.body.contains("regmirror_requests_hit_total"),
        "{}",
        metrics.body
    );

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
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body.as_bytes(), content);
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
    assert_eq!(r.status, 503, "{}", r.body);
    assert!(r.body.contains("\"errors\""), "{}", r.body);
}

#[test]
fn push_is_refused_with_405() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let server = Server::start(dir.path(), &["--cache-dir", cache.to_str().unwrap()]);
    let r = request(server.addr, "POST", "/v2/library/alpine/blobs/uploads/");
    assert_eq!(r.status, 405, "{}", r.body);
    assert!(r.body.contains("UNSUPPORTED"), "{}", r.body);
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
