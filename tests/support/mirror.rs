//! The mirror under test, in-process: `app::spawn` on port 0 in front of a
//! [`FakeUpstream`], with its cache in a temporary directory and read-ahead off, plus the client-side steps
//! the integration tests share (pull an image and check every byte).

use super::client::get;
use super::{FakeUpstream, TestImage};
use regmirror::app;
use regmirror::config::{Config, UpstreamUrl};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

/// A running mirror and its cache directory (deleted when dropped).
pub struct Mirror {
    pub addr: SocketAddr,
    pub dir: tempfile::TempDir,
}

impl Mirror {
    pub fn start(fake: &FakeUpstream) -> Mirror {
        Mirror::start_with(fake, |_| {})
    }

    pub fn start_with(fake: &FakeUpstream, tweak: impl FnOnce(&mut Config)) -> Mirror {
        let dir = tempfile::tempdir().unwrap();
        let addr = spawn_in(fake, dir.path(), tweak).expect("mirror starts");
        Mirror { addr, dir }
    }
}

/// Starts another mirror on an existing cache directory (a restart, as far as the disk
/// can tell): in front of `fake`, on port 0.
pub fn spawn_in(
    fake: &FakeUpstream,
    dir: &Path,
    tweak: impl FnOnce(&mut Config),
) -> Result<SocketAddr, String> {
    let mut c = Config::new(dir.to_path_buf());
    c.listen = "127.0.0.1:0".parse().unwrap();
    c.set_upstream(
        "docker.io".parse().unwrap(),
        UpstreamUrl::parse(&fake.url()).unwrap(),
    );
    c.upstream_timeout = Duration::from_secs(2);
    // Off unless a test turns it on (tests/read_ahead.rs): every other test's upstream log
    // then shows only what its own requests caused.
    c.read_ahead = false;
    tweak(&mut c);
    app::spawn(c)
}

impl Mirror {
    pub fn blob_file(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").unwrap();
        self.dir
            .path()
            .join("blobs/sha256")
            .join(&hex[..2])
            .join(hex)
    }

    pub fn cached_bytes(&self) -> u64 {
        dir_size(&self.dir.path().join("blobs"))
    }
}

fn dir_size(p: &Path) -> u64 {
    std::fs::read_dir(p)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| {
            let t = e.file_type().unwrap();
            if t.is_dir() {
                dir_size(&e.path())
            } else {
                e.metadata().unwrap().len()
            }
        })
        .sum()
}

/// Pulls an image like a client: manifest by tag, then config and layers; checks bytes.
pub fn pull(addr: SocketAddr, repo_path: &str, tag: &str, img: &TestImage) {
    let m = get(addr, &format!("/v2/{repo_path}/manifests/{tag}"));
    assert_eq!(m.status, 200, "{}", String::from_utf8_lossy(&m.body));
    assert_eq!(m.body, img.manifest);
    assert_eq!(
        m.header("docker-content-digest"),
        Some(img.manifest_digest().as_str())
    );
    for (digest, bytes) in std::iter::once((img.config_digest(), &img.config)).chain(
        img.layers
            .iter()
            .enumerate()
            .map(|(i, l)| (img.layer_digest(i), l)),
    ) {
        let b = get(addr, &format!("/v2/{repo_path}/blobs/{digest}"));
        assert_eq!(b.status, 200);
        assert_eq!(&b.body, bytes, "blob {digest}");
        assert_eq!(b.header("docker-content-digest"), Some(digest.as_str()));
    }
}

pub fn wait_until(what: &str, mut ok: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ok() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "timed out waiting: {what}"
        );
        thread::sleep(Duration::from_millis(20));
    }
}
