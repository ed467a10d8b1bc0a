//! A full disk, for real: each test mounts a small tmpfs as the cache directory (it needs
//! root, as the test machines run; without it the test says so and does nothing). ENOSPC
//! must lead to eviction, never to a blob that fails for ever, and a disk full at start is
//! not a reason to refuse to serve what is cached.

mod support;

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use support::client::get;
use support::mirror::Mirror;
use support::{pseudo_random_bytes, FakeUpstream};

/// A tmpfs of `size` mounted on a fresh directory; unmounted when dropped.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    /// `None` (after saying why) if this process may not mount.
    fn mount(size: &str) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            eprintln!("SKIPPED: cannot mount a tmpfs here (needs root)");
            return None;
        }
        Some(Tmpfs { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

fn mirror_on(fake: &FakeUpstream, cache: &Path) -> Mirror {
    let cache = cache.to_path_buf();
    Mirror::start_with(fake, move |c| {
        c.cache_dir = cache;
        c.max_size = Some(100 << 20); // far more than the disk: only ENOSPC says no
    })
}

fn blob_path(cache: &Path, digest: &str) -> PathBuf {
    let hex = digest.trim_start_matches("sha256:");
    cache.join("blobs/sha256").join(&hex[..2]).join(hex)
}

#[test]
fn enospc_evicts_and_the_same_blob_succeeds() {
    // Issue 6, defect 12: on a 2 MiB tmpfs every retry was a 500 — the shrunken budget
    // still counted the failed fill's unwritten reservation, so nothing was evicted.
    let Some(disk) = Tmpfs::mount("2m") else {
        return;
    };
    let fake = FakeUpstream::start();
    let a = pseudo_random_bytes(60, 1_200_000);
    let b = pseudo_random_bytes(61, 1_200_000);
    let da = fake.add_blob("library/app", &a);
    let db = fake.add_blob("library/app", &b);
    let m = mirror_on(&fake, disk.path());
    for (digest, bytes) in [(&da, &a), (&db, &b), (&da, &a), (&db, &b)] {
        let r = get(m.addr, &format!("/v2/library/app/blobs/{digest}"));
        assert_eq!(r.status, 200, "{digest}: {}", r.text());
        assert!(r.body == *bytes, "{digest}");
        support::mirror::wait_until("committed", || blob_path(disk.path(), digest).exists());
    }
    let s = get(m.addr, "/_regmirror/status").json();
    assert!(
        s["cache"]["budget_bytes"].as_u64().unwrap() <= 2 << 20,
        "{s}"
    );
}

#[test]
fn a_blob_larger_than_the_disk_still_reaches_its_reader() {
    // Issue 6, defect 12: a running fill that hits ENOSPC with nothing left to evict turns
    // into a pass-through for its readers instead of failing them.
    let Some(disk) = Tmpfs::mount("2m") else {
        return;
    };
    let fake = FakeUpstream::start();
    let big = pseudo_random_bytes(62, 5 << 20);
    let digest = fake.add_blob("library/app", &big);
    let m = mirror_on(&fake, disk.path());
    let r = get(m.addr, &format!("/v2/library/app/blobs/{digest}"));
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.body == big, "got {} of {} bytes", r.body.len(), big.len());
    assert!(!blob_path(disk.path(), &digest).exists());
    // The disk is usable afterwards.
    let small = pseudo_random_bytes(63, 300_000);
    let d = fake.add_blob("library/app", &small);
    let r = get(m.addr, &format!("/v2/library/app/blobs/{d}"));
    assert!(r.status == 200 && r.body == small);
}

#[test]
fn a_disk_full_at_start_serves_what_is_cached_and_evicts_for_more() {
    // Issue 6, defect 19: with 0 bytes free it refused to start ("not usable: No space
    // left on device"), so nothing cached could be served.
    let Some(disk) = Tmpfs::mount("2m") else {
        return;
    };
    let cached = pseudo_random_bytes(64, 600_000);
    let dc = support::digest_of(&cached);
    let path = blob_path(disk.path(), &dc);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::create_dir_all(disk.path().join("tmp")).unwrap();
    fs::write(&path, &cached).unwrap();
    // Fill every byte that is left.
    let mut filler = fs::File::create(disk.path().join("filler")).unwrap();
    while filler.write_all(&[0u8; 4096]).is_ok() {}
    drop(filler);

    let fake = FakeUpstream::start();
    let fresh = pseudo_random_bytes(65, 400_000);
    let df = fake.add_blob("library/app", &fresh);
    let m = mirror_on(&fake, disk.path());
    let r = get(m.addr, &format!("/v2/library/app/blobs/{dc}"));
    assert!(r.status == 200 && r.body == cached, "{}", r.text());
    let r = get(m.addr, &format!("/v2/library/app/blobs/{df}"));
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.body == fresh);
}
