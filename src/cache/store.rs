//! The cache's files: layout, crash-safe commit, the start-up scan, re-hashing for `verify`.
//!
//! ```text
//! <root>/blobs/sha256/<2 hex>/<64 hex>   verified content (layers, configs, manifests)
//! <root>/tmp/                            fills in progress; emptied at start
//! <root>/tags/…                          see `tags.rs`
//! ```
//! A blob file appears only by `rename` from `tmp/` after its bytes were hashed and
//! `fsync`ed, and the directory is `fsync`ed after the rename: after a power cut a blob is
//! complete and verified, or absent. Paths are built only from [`Digest`]s, never from
//! request strings. All calls here block; each is small (one `open`, one `rename`, one
//! 64 KiB read) and made on purpose on the executor thread — see `fill.rs` for why.

use crate::reference::Digest;
use sha2::{Digest as _, Sha256};
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

/// Buffer for hashing a blob in `verify`: large enough for sequential reads on an SD card,
/// small enough to be nothing on a Pi Zero.
const VERIFY_BUF: usize = 64 * 1024;

/// The on-disk cache directory.
#[derive(Debug)]
pub struct Store {
    root: PathBuf,
    blobs: PathBuf,
    tmp: PathBuf,
}

/// A blob found by the start-up scan.
#[derive(Debug, Clone, Copy)]
pub struct Found {
    /// Its digest (from the file name).
    pub digest: Digest,
    /// Its size in bytes.
    pub size: u64,
    /// Last recorded use (mtime, refreshed rarely).
    pub used: SystemTime,
}

/// Outcome of [`Store::verify_all`].
#[derive(Debug, Default)]
pub struct VerifyReport {
    /// Blobs whose content matched their name.
    pub good: u64,
    /// Blobs deleted because their content did not match.
    pub bad: Vec<Digest>,
    /// Bytes hashed.
    pub bytes: u64,
    /// Files in the blob tree that are not blobs (left alone).
    pub strays: Vec<PathBuf>,
}

impl Store {
    /// Opens (creating if needed) the cache at `root`, empties `tmp/` (fills interrupted by a
    /// crash), and checks the directory is writable, so a bad `--cache-dir` fails at start.
    pub fn open(root: &Path) -> io::Result<Store> {
        let store = Store {
            root: root.to_path_buf(),
            blobs: root.join("blobs").join("sha256"),
            tmp: root.join("tmp"),
        };
        fs::create_dir_all(&store.blobs)?;
        if store.tmp.exists() {
            fs::remove_dir_all(&store.tmp)?;
        }
        fs::create_dir_all(&store.tmp)?;
        let probe = store.tmp.join("write-probe");
        File::create(&probe)?.write_all(b"ok")?;
        fs::remove_file(&probe)?;
        Ok(store)
    }

    /// Opens an existing cache for `verify` without touching `tmp/`.
    pub fn open_existing(root: &Path) -> io::Result<Store> {
        let blobs = root.join("blobs").join("sha256");
        if !blobs.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!(
                    "{} is not a regmirror cache (no blobs/sha256)",
                    root.display()
                ),
            ));
        }
        Ok(Store {
            root: root.to_path_buf(),
            blobs,
            tmp: root.join("tmp"),
        })
    }

    /// The cache's root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where a verified blob lives.
    pub fn blob_path(&self, d: &Digest) -> PathBuf {
        let hex = d.hex();
        self.blobs.join(&hex[..2]).join(hex)
    }

    /// Opens a cached blob with its size, or `None` if it is not cached.
    pub fn open_blob(&self, d: &Digest) -> io::Result<Option<(File, u64)>> {
        match File::open(self.blob_path(d)) {
            Ok(f) => {
                let len = f.metadata()?.len();
                Ok(Some((f, len)))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Whether a blob is cached.
    pub fn has_blob(&self, d: &Digest) -> bool {
        self.blob_path(d).is_file()
    }

    /// Reads a small cached blob (a manifest) whole.
    pub fn read_blob(&self, d: &Digest) -> io::Result<Option<Vec<u8>>> {
        match fs::read(self.blob_path(d)) {
            Ok(v) => Ok(Some(v)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Creates a new, uniquely named temp file for a fill.
    pub fn new_temp(&self) -> io::Result<(PathBuf, File)> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = self.tmp.join(format!("fill-{}-{n}", std::process::id()));
        let file = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)?;
        Ok((path, file))
    }

    /// Makes a fully written, hashed and `fsync`ed temp file the blob `d`: rename into
    /// place, then `fsync` the directory so the rename survives a power cut.
    pub fn commit(&self, tmp: &Path, d: &Digest) -> io::Result<()> {
        let dest = self.blob_path(d);
        let dir = dest.parent().expect("blob path has a parent");
        fs::create_dir_all(dir)?;
        fs::rename(tmp, &dest)?;
        File::open(dir)?.sync_all()
    }

    /// Writes a small blob (a manifest whose bytes are already verified) crash-safely.
    pub fn put_small(&self, d: &Digest, bytes: &[u8]) -> io::Result<()> {
        let (path, mut file) = self.new_temp()?;
        let result = file
            .write_all(bytes)
            .and_then(|_| file.sync_all())
            .and_then(|_| self.commit(&path, d));
        if result.is_err() {
            let _ = fs::remove_file(&path);
        }
        result
    }

    /// Deletes a blob (eviction, or `verify` found it bad). Open handles keep reading.
    pub fn remove_blob(&self, d: &Digest) -> io::Result<()> {
        match fs::remove_file(self.blob_path(d)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// Records a use of `d` in its mtime, so LRU order survives a restart. Called rarely
    /// (see `index::TOUCH_INTERVAL`): every write wears the SD card.
    pub fn touch(&self, d: &Digest, when: SystemTime) -> io::Result<()> {
        File::options()
            .write(true)
            .open(self.blob_path(d))?
            .set_modified(when)
    }

    /// Every blob on disk, oldest use first. Files that are not `<2 hex>/<64 hex>` with a
    /// matching prefix are ignored (and reported by `verify`).
    pub fn scan(&self) -> io::Result<Vec<Found>> {
        let mut found = Vec::new();
        self.walk(|path, digest| {
            if let Some(digest) = digest {
                let meta = fs::metadata(path)?;
                let used = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
                found.push(Found {
                    digest,
                    size: meta.len(),
                    used,
                });
            }
            Ok(())
        })?;
        found.sort_by_key(|f| f.used);
        Ok(found)
    }

    /// Re-hashes every blob; deletes those whose content does not match their name.
    pub fn verify_all(&self) -> io::Result<VerifyReport> {
        let mut report = VerifyReport::default();
        let mut buf = vec![0u8; VERIFY_BUF];
        self.walk(|path, digest| {
            let Some(digest) = digest else {
                report.strays.push(path.to_path_buf());
                return Ok(());
            };
            let mut file = File::open(path)?;
            let mut hasher = Sha256::new();
            loop {
                let n = file.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                hasher.update(&buf[..n]);
                report.bytes += n as u64;
            }
            if Digest::from_sha256(hasher.finalize().into()) == digest {
                report.good += 1;
            } else {
                fs::remove_file(path)?;
                report.bad.push(digest);
            }
            Ok(())
        })?;
        Ok(report)
    }

    /// Calls `f` for every file under `blobs/sha256/`, with its digest if the path is a
    /// well-formed blob path.
    fn walk(&self, mut f: impl FnMut(&Path, Option<Digest>) -> io::Result<()>) -> io::Result<()> {
        for prefix in fs::read_dir(&self.blobs)? {
            let prefix = prefix?;
            if !prefix.file_type()?.is_dir() {
                f(&prefix.path(), None)?;
                continue;
            }
            let pname = prefix.file_name();
            for entry in fs::read_dir(prefix.path())? {
                let entry = entry?;
                let name = entry.file_name();
                let digest = name
                    .to_str()
                    .and_then(Digest::from_hex)
                    .filter(|d| Some(&d.hex()[..2]) == pname.to_str());
                let digest = digest.filter(|_| entry.file_type().is_ok_and(|t| t.is_file()));
                f(&entry.path(), digest)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_then_scan_and_verify() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let d = Digest::of(b"hello");
        store.put_small(&d, b"hello").unwrap();
        assert!(store.has_blob(&d));
        assert_eq!(store.read_blob(&d).unwrap().unwrap(), b"hello");
        let found = store.scan().unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!((found[0].digest, found[0].size), (d, 5));
        // Nothing left behind in tmp/.
        assert_eq!(fs::read_dir(dir.path().join("tmp")).unwrap().count(), 0);
        let r = store.verify_all().unwrap();
        assert_eq!((r.good, r.bad.len()), (1, 0));
    }

    #[test]
    fn verify_deletes_corrupt_blobs() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let d = Digest::of(b"hello");
        store.put_small(&d, b"hello").unwrap();
        fs::write(store.blob_path(&d), b"jello").unwrap();
        let r = store.verify_all().unwrap();
        assert_eq!(r.bad, vec![d]);
        assert!(!store.has_blob(&d));
    }

    #[test]
    fn open_empties_tmp_and_ignores_strays() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let (tmp, _f) = store.new_temp().unwrap();
        fs::write(dir.path().join("blobs/sha256/zz"), b"x").unwrap();
        drop(store);
        let store = Store::open(dir.path()).unwrap();
        assert!(!tmp.exists());
        assert!(store.scan().unwrap().is_empty());
    }

    #[test]
    fn open_fails_clearly_on_unwritable_dir() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("not-a-dir");
        fs::write(&file, b"").unwrap();
        assert!(Store::open(&file).is_err());
    }
}
