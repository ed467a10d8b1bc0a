//! The configuration file as an operator meets it (`serve --config FILE`): settings apply
//! and flags override them, errors name the file and line, and the packaged
//! `pkg/regmirror.conf` and man page keep up with `serve --help`. The real executable runs
//! in a temporary directory for each test (see `support/process.rs`).

mod support;

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;
use support::process::{flag_words, run, Server};

/// The package's configuration file.
fn packaged_conf() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("pkg/regmirror.conf")
}

#[test]
fn config_file_settings_apply_and_flags_override_them() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let conf = dir.path().join("regmirror.conf");
    fs::write(
        &conf,
        format!(
            "# test\nlisten = 127.0.0.1:1\ncache-dir = {}\nmax-size = 500MB\ntag-ttl = 1h30m\n\
             upstream = docker.io=https://registry-1.docker.io\n",
            cache.display()
        ),
    )
    .unwrap();
    // Server::start puts --listen 127.0.0.1:0 and --upstream docker.io=… on the command
    // line: they win over the file's lines.
    let server = Server::start(dir.path(), &["--config", conf.to_str().unwrap()]);
    let status = server.get("/_regmirror/status").json();
    assert_eq!(status["cache"]["budget_bytes"], 500_000_000, "{status}");
    assert_eq!(status["tag_ttl_seconds"], 5400, "{status}");
    assert_eq!(
        status["upstreams"][0]["url"], "http://127.0.0.1:9",
        "{status}"
    );
    assert!(
        cache.join("blobs").is_dir(),
        "cache-dir from the file is used"
    );
    let log = server.stderr();
    assert!(
        log.contains(&format!("settings from {}", conf.display())),
        "{log}"
    );
}

#[test]
fn config_file_errors_name_the_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("regmirror.conf");
    let c = conf.to_str().unwrap();
    for (text, want) in [
        (
            "# x\n\nlisen = :5000\n",
            "line 3: unknown setting `lisen`; did you mean `listen`?",
        ),
        ("max-size = lots\n", "line 1: max-size \"lots\""),
        (
            "tag-ttl = 5m\ntag-ttl = 6m\n",
            "line 2: `tag-ttl` is already set on line 1",
        ),
        (
            "tag-ttl = 5m # five\n",
            "line 1: `tag-ttl`: a comment after a value",
        ),
        (
            "upstream = a.io=https://a.io\nupstream = a.io=https://b.io\n",
            "line 2: upstream",
        ),
        ("max-size = 10MB\n", "floor"),
    ] {
        fs::write(&conf, text).unwrap();
        let r = run(dir.path(), &["serve", "--config", c]);
        assert_eq!(r.code(), Some(2), "{text:?}: {r:?}");
        let lines = r.stderr_lines();
        assert_eq!(lines.len(), 1, "{text:?}: {r:?}");
        assert!(lines[0].contains(c), "the file is named: {r:?}");
        assert!(lines[0].contains(want), "{text:?}: wanted {want:?}: {r:?}");
    }
    let r = run(
        dir.path(),
        &["serve", "--config", "/nonexistent/regmirror.conf"],
    );
    assert_eq!(r.code(), Some(2), "{r:?}");
    assert!(
        r.stderr.contains("--config /nonexistent/regmirror.conf"),
        "{r:?}"
    );
    assert!(
        !dir.path().join("regmirror-cache").exists(),
        "a rejected configuration must not create a cache directory"
    );
}

#[test]
fn packaged_config_file_offers_every_serve_flag() {
    let dir = tempfile::tempdir().unwrap();
    let text = fs::read_to_string(packaged_conf()).unwrap();
    let keys: BTreeSet<String> = text
        .lines()
        .map(|l| l.trim_start_matches('#').trim())
        .filter_map(|l| l.split_once(" = "))
        .filter(|(k, _)| !k.is_empty() && k.bytes().all(|b| b.is_ascii_lowercase() || b == b'-'))
        .map(|(k, _)| format!("--{k}"))
        .collect();
    let r = run(dir.path(), &["serve", "--help"]);
    let offered: BTreeSet<String> = flag_words(&r.stdout)
        .into_iter()
        .filter(|f| f.starts_with("--") && !["--help", "--config"].contains(f))
        .map(str::to_owned)
        .collect();
    let missing: Vec<_> = offered.difference(&keys).collect();
    assert!(missing.is_empty(), "pkg/regmirror.conf lacks {missing:?}");
    let unknown: Vec<_> = keys.difference(&offered).collect();
    assert!(
        unknown.is_empty(),
        "pkg/regmirror.conf offers {unknown:?}, serve does not"
    );
}

#[test]
fn packaged_config_file_and_each_example_in_it_are_valid() {
    let text = fs::read_to_string(packaged_conf()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    // As shipped (with our test's port, cache and upstream on the command line).
    let cache = dir.path().join("cache");
    let conf = packaged_conf();
    let server = Server::start(
        dir.path(),
        &[
            "--config",
            conf.to_str().unwrap(),
            "--cache-dir",
            cache.to_str().unwrap(),
        ],
    );
    assert_eq!(server.get("/v2/").status, 200);
    drop(server);
    // Each commented example, switched on alone (those naming files get real files).
    let pem = dir.path().join("ca.pem");
    fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/tls/ca.pem"),
        &pem,
    )
    .ok();
    let token = dir.path().join("token");
    fs::write(&token, "secret\n").unwrap();
    let mut n = 0;
    for line in text.lines() {
        let Some(example) = line.strip_prefix('#') else {
            continue;
        };
        if !example.contains(" = ") || example.starts_with(' ') {
            continue;
        }
        let example = example
            .replace("/etc/regmirror/ca.pem", pem.to_str().unwrap())
            .replace("/etc/regmirror/docker-hub.token", token.to_str().unwrap());
        let path = dir.path().join("one.conf");
        fs::write(&path, format!("{example}\n")).unwrap();
        let settings = regmirror::settings::Settings::from_file(&path)
            .unwrap_or_else(|e| panic!("{example:?}: {e}"));
        settings
            .into_config()
            .unwrap_or_else(|e| panic!("{example:?}: {e}"));
        n += 1;
    }
    assert!(n >= 10, "only {n} examples found");
}

#[test]
fn man_page_documents_every_serve_flag() {
    let dir = tempfile::tempdir().unwrap();
    let man = fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("pkg/regmirror.1"))
        .unwrap()
        .replace("\\-", "-");
    let r = run(dir.path(), &["serve", "--help"]);
    let missing: Vec<_> = flag_words(&r.stdout)
        .into_iter()
        .filter(|f| !man.contains(f))
        .collect();
    assert!(missing.is_empty(), "pkg/regmirror.1 lacks {missing:?}");
}
