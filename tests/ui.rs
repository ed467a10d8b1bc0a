//! The status page in a real browser: issue 7's scripted session, then Debian's headless
//! `chromium` reads the page (`--dump-dom`), its numbers are checked against the JSON and
//! `/metrics` (`support/session.rs`), and screenshots are saved (their paths printed).
//! Ignored by a plain `cargo test`: `tests/ui/run.sh` (tests/all.sh's `ui` stage) installs
//! chromium and runs it inside a network namespace with only loopback.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use support::client::get;
use support::session::{check_page, session};

/// Headless Chromium (Debian's `chromium`), if installed.
fn chromium() -> Option<PathBuf> {
    ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

fn browse(chrome: &Path, profile: &Path, args: &[&str], url: &str) -> String {
    let out = Command::new(chrome)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-default-apps",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(url)
        .output()
        .expect("run chromium");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
#[ignore = "needs chromium; tests/all.sh's ui stage runs it in a network namespace"]
fn the_page_in_headless_chromium_matches_the_json_after_a_scripted_session() {
    let chrome = chromium().expect("chromium is installed (apt-get install chromium)");
    let s = session();
    let profile = tempfile::tempdir().unwrap();
    let url = format!("http://{}/", s.m.addr);
    let served = get(s.m.addr, "/").body.len();
    const VIEWS: u32 = 50;
    let t0 = std::time::Instant::now();
    for _ in 0..VIEWS {
        assert_eq!(get(s.m.addr, "/").status, 200);
    }
    println!(
        "status page: {served} bytes as served, {:.1} ms per view ({VIEWS} views, this build)",
        t0.elapsed().as_secs_f64() * 1000.0 / f64::from(VIEWS)
    );
    let dom = browse(&chrome, profile.path(), &["--dump-dom"], &url);
    assert!(dom.contains("</html>"), "{dom}");
    check_page(&s, &dom);
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("ui");
    std::fs::create_dir_all(&out).unwrap();
    for (file, size) in [
        ("status.png", "1100,2300"),
        ("status-phone.png", "390,2600"),
    ] {
        let png = out.join(file);
        let _ = std::fs::remove_file(&png);
        browse(
            &chrome,
            profile.path(),
            &[
                &format!("--screenshot={}", png.display()),
                &format!("--window-size={size}"),
            ],
            &url,
        );
        let bytes = std::fs::read(&png).expect("a screenshot");
        assert!(
            bytes.starts_with(b"\x89PNG") && bytes.len() > 10_000,
            "{}",
            png.display()
        );
        println!("screenshot: {}", png.display());
    }
}
