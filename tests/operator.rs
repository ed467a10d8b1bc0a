//! What an operator runs, as binaries: `regmirror prefetch` against a running `serve`
//! (progress, exit status), and `regmirror ls` on the cache directory once it stopped —
//! with the pull counters `serve` saved at shutdown.

mod support;

use std::path::Path;
use std::time::Duration;
use support::mirror::pull;
use support::process::{run, serve_args, Server};
use support::{FakeUpstream, TestImage};

const TOKEN: &str = "operator-token-0123456789";

fn serve(dir: &Path, fake: &FakeUpstream, extra: &[&str]) -> Server {
    let args = serve_args(dir, fake, extra);
    Server::start_args(dir, &args.iter().map(String::as_str).collect::<Vec<_>>())
}

#[test]
fn regmirror_prefetch_follows_each_image_and_exits_non_zero_when_one_cannot_be_fetched() {
    let fake = FakeUpstream::start();
    let img = TestImage::new(100, &[200_000, 3000]);
    fake.push_image("library/app", "1", &img);
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("admin.token");
    std::fs::write(&token, format!("{TOKEN}\n")).unwrap();
    let server = serve(
        dir.path(),
        &fake,
        &["--admin-token-file", token.to_str().unwrap()],
    );
    let mirror = format!("http://{}", server.addr);
    let prefetch = |images: &[&str]| {
        let mut args = vec![
            "prefetch",
            "--mirror",
            &mirror,
            "--admin-token-file",
            token.to_str().unwrap(),
        ];
        args.extend_from_slice(images);
        run(dir.path(), &args)
    };
    let r = prefetch(&["app:1", "missing:1"]);
    assert_eq!(r.code(), Some(1), "{r:?}");
    let done = r
        .stdout
        .lines()
        .find(|l| l.starts_with("docker.io/library/app:1 ") && l.ends_with("] done"));
    assert!(done.is_some(), "{r:?}");
    assert!(
        r.stdout
            .lines()
            .any(|l| l.starts_with("docker.io/library/missing:1")
                && l.contains("failed: upstream has no such tag")),
        "{r:?}"
    );
    assert!(
        r.stderr.contains("not every image could be fetched"),
        "{r:?}"
    );

    let r = prefetch(&["app:1"]);
    assert_eq!(r.code(), Some(0), "{r:?}");
    assert_eq!(fake.count("GET", &img.layer_digest(0)), 1, "fetched once");

    // The mirror refuses a wrong token, and prefetch says so.
    std::fs::write(&token, "not-the-right-token-at-all\n").unwrap();
    let r = prefetch(&["app:1"]);
    assert_eq!(r.code(), Some(1), "{r:?}");
    assert!(r.stderr.contains("wrong admin token"), "{r:?}");
}

#[test]
fn regmirror_prefetch_against_a_mirror_without_admin_actions_says_how_to_switch_them_on() {
    let fake = FakeUpstream::start();
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("admin.token");
    std::fs::write(&token, format!("{TOKEN}\n")).unwrap();
    let server = serve(dir.path(), &fake, &[]);
    let mirror = format!("http://{}", server.addr);
    let r = run(
        dir.path(),
        &[
            "prefetch",
            "--mirror",
            &mirror,
            "--admin-token-file",
            token.to_str().unwrap(),
            "a:1",
        ],
    );
    assert_eq!(r.code(), Some(1), "{r:?}");
    assert!(
        r.stderr.contains("start it with --admin-token-file"),
        "{r:?}"
    );
    let r = run(dir.path(), &["prefetch", "--mirror", &mirror]);
    assert_eq!(r.code(), Some(2), "no image named: {r:?}");
}

#[test]
fn regmirror_ls_lists_the_cache_with_the_counters_saved_at_shutdown() {
    let fake = FakeUpstream::start();
    let (a, b) = (TestImage::new(110, &[5000]), TestImage::new(111, &[7000]));
    fake.push_image("library/alpha", "3", &a);
    fake.push_image("org/beta", "v2", &b);
    let dir = tempfile::tempdir().unwrap();
    let keep = dir.path().join("keep.list");
    std::fs::write(&keep, "org/beta:v2\n").unwrap();
    let mut server = serve(dir.path(), &fake, &["--keep", keep.to_str().unwrap()]);
    assert!(server.wait_for_log(
        "keep list: docker.io/org/beta:v2 is on disk",
        Duration::from_secs(10)
    ));
    pull(server.addr, "library/alpha", "3", &a);
    pull(server.addr, "library/alpha", "3", &a);
    server.signal("TERM");
    assert_eq!(
        server
            .wait_exit(Duration::from_secs(10))
            .and_then(|s| s.code()),
        Some(0)
    );

    let cache = dir.path().join("cache");
    let r = run(dir.path(), &["ls", "--cache-dir", cache.to_str().unwrap()]);
    assert_eq!(r.code(), Some(0), "{r:?}");
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert!(
        lines[0].starts_with("IMAGE") && lines[0].contains("PULLS"),
        "{r:?}"
    );
    let cells = |l: &str| {
        l.split("  ")
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    let alpha = cells(lines[1]);
    assert_eq!(alpha[0], "docker.io/library/alpha:3");
    assert_eq!(alpha[1], format!("sha256:{}", &a.manifest_digest()[7..19]));
    assert_eq!(alpha[2], "linux/amd64");
    assert_eq!(alpha[4], "just now");
    assert_eq!(alpha[5..], ["2", "no", "yes"], "{r:?}");
    let beta = cells(lines[2]);
    assert_eq!(beta[0], "docker.io/org/beta:v2");
    assert_eq!(beta[4..], ["never", "0", "yes", "yes"], "{r:?}");
    assert_eq!(
        lines[3],
        format!(
            "2 images, {} (a layer shared by two images counts in each)",
            regmirror::config::human_size(
                (a.manifest.len()
                    + a.config.len()
                    + 5000
                    + b.manifest.len()
                    + b.config.len()
                    + 7000) as u64
            )
        )
    );
    let r = run(
        dir.path(),
        &["ls", "--cache-dir", dir.path().to_str().unwrap()],
    );
    assert_eq!(r.code(), Some(1));
    assert!(r.stderr.contains("not a regmirror cache"), "{r:?}");
}
