//! The `regmirror` command line as an operator meets it: flags, `--help` against the
//! README's flag table, exit codes, one-line start-up errors, the `--listen` forms. The
//! byte budget's flags are `max_size.rs`, the configuration file `config_file.rs`. The real
//! executable runs in a temporary directory for each test (see `support/process.rs`).

mod support;

use std::collections::BTreeSet;
use std::fs;
use std::net::TcpListener;
use std::path::Path;
use std::time::{Duration, Instant};
use support::process::{flag_words, run, Server, NO_UPSTREAM};

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

// ---------------------------------------------------------------------------------------
// Flags and help.
// ---------------------------------------------------------------------------------------

/// `serve` on `listen` with `cache`, Docker Hub replaced by a closed port, then `extra`.
fn serve_args<'a>(listen: &'a str, cache: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "serve",
        "--listen",
        listen,
        "--upstream",
        NO_UPSTREAM,
        "--cache-dir",
        cache,
    ];
    args.extend_from_slice(extra);
    args
}

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
        vec!["--upstream", "ghcr.io=https://ghcr.io/Not/A/Prefix?x=1"],
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
        .filter(|f| !documented.contains(**f) && !["--help", "-h"].contains(*f))
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
    let r = run(dir.path(), &serve_args(&addr, cache.to_str().unwrap(), &[]));
    assert!(started.elapsed() < Duration::from_secs(5), "{r:?}");
    assert_eq!(r.code(), Some(1), "{r:?}");
    let lines = r.stderr_lines();
    assert_eq!(lines.len(), 1, "one clear line: {r:?}");
    assert!(
        lines[0].contains("cannot listen") && lines[0].contains(&addr),
        "{r:?}"
    );
    assert!(
        lines[0].contains("another regmirror") && lines[0].contains("--listen"),
        "the error names the likely cause and the fix: {r:?}"
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
        &serve_args("127.0.0.1:0", file.to_str().unwrap(), &[]),
    );
    assert_eq!(r.code(), Some(1), "{r:?}");
    let lines = r.stderr_lines();
    assert_eq!(lines.len(), 1, "one clear line: {r:?}");
    assert!(lines[0].contains(file.to_str().unwrap()), "{r:?}");
    assert!(
        lines[0].contains("--cache-dir"),
        "the error names the fix: {r:?}"
    );
    assert_eq!(fs::read(&file).unwrap(), b"", "the file is left alone");
}

#[test]
fn unreadable_upstream_ca_is_a_clear_startup_error() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-ca.pem");
    let not_pem = dir.path().join("not-pem.pem");
    fs::write(&not_pem, b"this is not a certificate\n").unwrap();
    for ca in [&missing, &not_pem] {
        let cache = dir.path().join("cache");
        let extra = ["--upstream-ca", ca.to_str().unwrap()];
        let r = run(
            dir.path(),
            &serve_args("127.0.0.1:0", cache.to_str().unwrap(), &extra),
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
fn port_in_use_leaves_the_running_mirrors_downloads_alone() {
    // A second regmirror started by mistake on the same cache: it must fail on the port
    // before it opens the cache, because opening empties tmp/ — the first one's downloads.
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    fs::create_dir_all(cache.join("tmp")).unwrap();
    fs::write(cache.join("tmp/fill-in-progress"), b"half a layer").unwrap();
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let r = run(dir.path(), &serve_args(&addr, cache.to_str().unwrap(), &[]));
    assert_eq!(r.code(), Some(1), "{r:?}");
    assert!(
        cache.join("tmp/fill-in-progress").exists(),
        "the running mirror's download was deleted: {r:?}"
    );
}

#[test]
fn version_and_short_help() {
    let dir = tempfile::tempdir().unwrap();
    for flag in ["--version", "-V"] {
        let r = run(dir.path(), &[flag]);
        assert_eq!(r.code(), Some(0), "{r:?}");
        assert_eq!(
            r.stdout,
            format!("regmirror {}\n", env!("CARGO_PKG_VERSION"))
        );
    }
    for args in [vec!["-h"], vec!["serve", "-h"], vec!["verify", "-h"]] {
        let r = run(dir.path(), &args);
        assert_eq!(r.code(), Some(0), "{args:?}: {r:?}");
        assert!(r.stdout.starts_with("Usage: regmirror"), "{args:?}: {r:?}");
    }
    let r = run(dir.path(), &["serve", "-h"]);
    assert!(flag_words(&r.stdout).contains("--config"), "{r:?}");
}

// ---------------------------------------------------------------------------------------
// --listen forms.
// ---------------------------------------------------------------------------------------

/// `serve --listen LISTEN` with a cache in `dir`, Docker Hub replaced by a closed port.
fn serve_on(dir: &Path, listen: &str, wrapper: &[&str]) -> Server {
    let cache = dir.join("cache");
    let args = serve_args(listen, cache.to_str().unwrap(), &[]);
    Server::start_wrapped(dir, wrapper, &args)
}

#[test]
fn listen_localhost_and_ipv6_loopback_serve() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve_on(dir.path(), "localhost:0", &[]);
    assert_eq!(server.addr.ip().to_string(), "127.0.0.1");
    assert_eq!(server.get("/v2/").status, 200);
    drop(server);
    let server = serve_on(dir.path(), "[::1]:0", &[]);
    assert_eq!(server.addr.ip().to_string(), "::1");
    assert_eq!(server.get("/v2/").status, 200);
}

#[test]
fn listen_port_only_and_ipv6_any_bind_every_interface() {
    // Every interface — so in a network namespace of its own (unshare), which has none
    // but a loopback that is down: the start-up line shows what was bound.
    let dir = tempfile::tempdir().unwrap();
    for (listen, bound) in [(":0", "0.0.0.0"), ("[::]:0", "::")] {
        let server = serve_on(dir.path(), listen, &["unshare", "--net", "--map-root-user"]);
        assert_eq!(server.addr.ip().to_string(), bound, "{listen}");
        assert_ne!(server.addr.port(), 0, "{listen}");
    }
}

#[test]
fn listen_errors_show_the_accepted_forms() {
    let dir = tempfile::tempdir().unwrap();
    for (bad, hint) in [
        ("nowhere", ":5000"),
        ("5000", ":5000"),
        ("::5000", "brackets"),
        ("pi.local:5000", "localhost"),
    ] {
        let r = run(dir.path(), &["serve", "--listen", bad]);
        assert_eq!(r.code(), Some(2), "{bad}: {r:?}");
        assert!(r.stderr.contains(hint), "{bad}: {r:?}");
    }
}

// ---------------------------------------------------------------------------------------
// Upstreams.
// ---------------------------------------------------------------------------------------

#[test]
fn an_upstream_given_twice_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let r = run(
        dir.path(),
        &[
            "serve",
            "--upstream",
            "ghcr.io=https://a.example",
            "--upstream",
            "ghcr.io=https://b.example",
        ],
    );
    assert_eq!(r.code(), Some(2), "{r:?}");
    assert_eq!(r.stderr_lines().len(), 1, "{r:?}");
    assert!(
        r.stderr.contains("--upstream")
            && r.stderr.contains("ghcr.io")
            && r.stderr.contains("already"),
        "{r:?}"
    );
}
