//! The byte budget as an operator sets it: `--max-size` below the floor or beyond the
//! filesystem, unit errors, the default budget's room for the system, and the start-up
//! line in human units. The real executable runs in a temporary directory for each test
//! (see `support/process.rs`).

mod support;

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use support::process::{run, Server};

/// `serve` with a cache in `dir/cache` and `--max-size max_size`; the server and its cache.
fn serve_with_max_size(dir: &Path, max_size: &str) -> (Server, PathBuf) {
    let cache = dir.join("cache");
    let server = Server::start(
        dir,
        &[
            "--cache-dir",
            cache.to_str().unwrap(),
            "--max-size",
            max_size,
        ],
    );
    (server, cache)
}

#[test]
fn max_size_below_the_floor_is_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    for small in ["10", "99MB", "64MiB"] {
        let r = run(dir.path(), &["serve", "--max-size", small]);
        assert_eq!(r.code(), Some(2), "{small}: {r:?}");
        assert!(
            r.stderr.contains("floor") && r.stderr.contains("--max-size"),
            "{small}: {r:?}"
        );
    }
    let (server, _) = serve_with_max_size(dir.path(), "100MB");
    assert_eq!(server.get("/v2/").status, 200);
}

#[test]
fn max_size_beyond_the_filesystem_starts_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let (server, _) = serve_with_max_size(dir.path(), "1000000TB");
    assert_eq!(server.get("/v2/").status, 200);
    let log = server.stderr();
    assert!(
        log.contains("WARN") && log.contains("whole filesystem"),
        "no warning about a budget the disk cannot hold:\n{log}"
    );
}

#[test]
fn size_unit_errors_list_every_accepted_unit() {
    let dir = tempfile::tempdir().unwrap();
    let r = run(dir.path(), &["serve", "--max-size", "5XB"]);
    assert_eq!(r.code(), Some(2), "{r:?}");
    let words: BTreeSet<&str> = r.stderr.split(|c: char| !c.is_ascii_alphabetic()).collect();
    for unit in [
        "B", "kB", "MB", "GB", "TB", "KiB", "MiB", "GiB", "TiB", "K", "M", "G", "T",
    ] {
        assert!(words.contains(unit), "{unit} is not listed: {r:?}");
    }
}

#[test]
fn default_budget_leaves_the_system_room() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    fs::create_dir_all(&cache).unwrap();
    let before = regmirror::budget::space(&cache).unwrap();
    let server = Server::start(dir.path(), &["--cache-dir", cache.to_str().unwrap()]);
    let status = server.get("/_regmirror/status").json();
    let after = regmirror::budget::space(&cache).unwrap();
    let budget = status["cache"]["budget_bytes"].as_u64().unwrap();
    // Other programs write to this disk meanwhile: allow for what changed.
    let avail = before.avail.max(after.avail);
    let slack = before.avail.abs_diff(after.avail) + (64 << 20);
    let limit = if before.root_fs {
        avail / 100 * regmirror::budget::ROOT_FS_SHARE_PERCENT
    } else {
        avail - before.total / 20
    };
    assert!(
        budget > 0 && budget <= limit + slack,
        "budget {budget} > {limit} (free {avail}, root filesystem: {})",
        before.root_fs
    );
    let log = server.stderr();
    let why = if before.root_fs {
        "80 % of the free space"
    } else {
        "5 % reserve"
    };
    assert!(log.contains(why), "the start-up line says why:\n{log}");
}

#[test]
fn startup_line_names_the_cache_and_the_budget_in_human_units() {
    let dir = tempfile::tempdir().unwrap();
    let (server, cache) = serve_with_max_size(dir.path(), "500MB");
    let log = server.stderr();
    let real = fs::canonicalize(&cache).unwrap();
    let want = format!("cache {}: a 476.8 MiB budget (--max-size)", real.display());
    assert!(log.contains(&want), "wanted {want:?} in:\n{log}");
    // A relative --cache-dir is shown as the absolute path it is.
    let server = Server::start(dir.path(), &["--cache-dir", "rel"]);
    let real = fs::canonicalize(dir.path().join("rel")).unwrap();
    let log = server.stderr();
    assert!(
        log.contains(&format!("cache {}: ", real.display())),
        "{log}"
    );
    assert!(
        log.lines()
            .next()
            .is_some_and(|l| [" KiB ", " MiB ", " GiB ", " TiB "]
                .iter()
                .any(|u| l.contains(u))),
        "the default budget is in human units:\n{log}"
    );
}
