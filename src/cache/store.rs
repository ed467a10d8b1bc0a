//! The cache's files: layout, crash-safe commit, the start-up scan, re-hashing for
//! `verify`. Partial blobs kept for a resume are `partial.rs`.
//!
//! ```text
//! <root>/blobs/sha256/<2 hex>/<64 hex>   verified content (layers, configs, manifests)
//! <root>/tmp/<64 hex>.part               bytes [0, n) of a blob being fetched, kept across
//!                                        a restart so the fetch resumes with `Range`
//! <root>/tmp/<64 hex>.from               where that blob comes from: upstream, repository,
//!                                        length (a `.part` without it is deleted at start)
//! <root>/tmp/<anything else>             scratch files of manifest writes; deleted at start
//! <root>/tags/…                          see `tags.rs`
//! ```
//! A blob file appears only by `rename` after its bytes were hashed and `fsync`ed, and
//! the directory is `fsync`ed after the rename (and its parent after a new `<2 hex>`
//! directory is made): after a power cut a blob is complete and verified, or absent.
//! A `.part` is *not* trusted: a resumed fill re-hashes it and checks the whole blob's
//! digest at the end, retrying from zero once on a mismatch (a power cut may leave
//! garbage in its tail). Paths are built only from [`Digest`]s, never from request
//! strings. All calls here block; each is small (one `open`, one `rename`, one directory
//! batch) and made on purpose on the executor thread — see `permit.rs` for why.

pub use super::partial::{Origin, Partial};
use crate::reference::Digest;
use sha2::{Digest as _, Sha256};
use std::fs::{self, File, ReadDir};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

/// Buffer for hashing a blob in `verify`: large enough for sequential reads on an SD card,
/// small enough to be nothing on a Pi Zero.
const VERIFY_BUF: usize = 64 * 1024;

/// The on-disk cache directory.
#[derive(Debug)]
pub struct Store {
    root: PathBuf,
    blobs: PathBuf,
    /// `tmp/`: partial blobs (`partial.rs`) and scratch files.
    pub(super) tmp: PathBuf,
    /// Directories `fsync`ed, in order (tests check that a new directory is made durable).
    #[cfg(test)]
    synced: std::cell::RefCell<Vec<PathBuf>>,
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

/// A small blob read whole (a manifest), or why not.
#[derive(Debug, PartialEq, Eq)]
pub enum Small {
    /// Not cached.
    Missing,
    /// Cached, but longer than the limit: not read.
    TooBig(u64),
    /// Its bytes.
    Bytes(Vec<u8>),
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

/// Whether an error says the filesystem is full.
pub fn is_full(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::StorageFull || e.kind() == io::ErrorKind::QuotaExceeded
}

impl Store {
    /// Opens (creating if needed) the cache at `root`, cleans `tmp/` — scratch files and
    /// partial blobs older than `partial_max_age` or without an origin are deleted — and
    /// checks the directory is writable, so a bad `--cache-dir` fails at start. A *full*
    /// filesystem is usable: what is cached can be served and eviction makes room.
    /// Returns the partial blobs kept.
    pub fn open(root: &Path, partial_max_age: Duration) -> io::Result<(Store, Vec<Partial>)> {
        let store = Store::at(root);
        fs::create_dir_all(&store.blobs)?;
        fs::create_dir_all(&store.tmp)?;
        let probe = store.tmp.join("write-probe");
        let probed = File::create(&probe).and_then(|mut f| f.write_all(b"ok"));
        let _ = fs::remove_file(&probe);
        match probed {
            Err(e) if is_full(&e) => log::warn!(
                "cache filesystem {} is full: serving what is cached, evicting to make room",
                root.display()
            ),
            other => other?,
        }
        let partials = store.clean_tmp(SystemTime::now(), partial_max_age)?;
        Ok((store, partials))
    }

    /// Opens an existing cache for `verify` without touching `tmp/`.
    pub fn open_existing(root: &Path) -> io::Result<Store> {
        let store = Store::at(root);
        if !store.blobs.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!(
                    "{} is not a regmirror cache (no blobs/sha256)",
                    root.display()
                ),
            ));
        }
        Ok(store)
    }

    fn at(root: &Path) -> Store {
        Store {
            root: root.to_path_buf(),
            blobs: root.join("blobs").join("sha256"),
            tmp: root.join("tmp"),
            #[cfg(test)]
            synced: Default::default(),
        }
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

    /// Reads a cached blob whole if it is at most `limit` bytes; never reads more than
    /// that into memory, whatever the file holds.
    pub fn read_small(&self, d: &Digest, limit: usize) -> io::Result<Small> {
        let Some((file, len)) = self.open_blob(d)? else {
            return Ok(Small::Missing);
        };
        if len > limit as u64 {
            return Ok(Small::TooBig(len));
        }
        let mut bytes = Vec::with_capacity(len as usize);
        file.take(limit as u64 + 1).read_to_end(&mut bytes)?;
        if bytes.len() > limit {
            return Ok(Small::TooBig(bytes.len() as u64)); // grew after the stat
        }
        Ok(Small::Bytes(bytes))
    }

    /// Creates a new, uniquely named scratch file in `tmp/` (deleted at the next start
    /// if left behind).
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

    /// Makes a fully written, hashed and `fsync`ed file the blob `d`: rename into place,
    /// then `fsync` the directory so the rename survives a power cut. A `<2 hex>` directory
    /// made for it is made durable first (its parent is `fsync`ed), or the blob could vanish
    /// with it.
    pub fn commit(&self, tmp: &Path, d: &Digest) -> io::Result<()> {
        let dest = self.blob_path(d);
        let dir = dest.parent().expect("blob path has a parent");
        if !dir.is_dir() {
            match fs::create_dir(dir) {
                Err(e) if e.kind() != io::ErrorKind::AlreadyExists => return Err(e),
                _ => {}
            }
            self.sync_dir(&self.blobs)?;
        }
        fs::rename(tmp, &dest)?;
        self.sync_dir(dir)
    }

    pub(super) fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        #[cfg(test)]
        self.synced.borrow_mut().push(dir.to_path_buf());
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

    /// The blobs on disk, one at a time, in directory order (the index does not need them
    /// sorted): for a start-up scan that yields to the executor between batches.
    pub fn scan(&self) -> io::Result<Scan> {
        Ok(Scan {
            top: fs::read_dir(&self.blobs)?,
            prefix: None,
        })
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
                let digest = blob_digest(&entry, pname.to_str());
                f(&entry.path(), digest)?;
            }
        }
        Ok(())
    }
}

/// The digest a directory entry under `<2 hex>/` names, if it is a well-formed blob.
fn blob_digest(entry: &fs::DirEntry, prefix: Option<&str>) -> Option<Digest> {
    let name = entry.file_name();
    name.to_str()
        .and_then(Digest::from_hex)
        .filter(|d| Some(&d.hex()[..2]) == prefix)
        .filter(|_| entry.file_type().is_ok_and(|t| t.is_file()))
}

/// The start-up scan in progress: an iterator over the blobs on disk. Files that are not
/// `<2 hex>/<64 hex>` with a matching prefix are skipped (and reported by `verify`);
/// entries that vanish or cannot be read while the scan runs are skipped too.
#[derive(Debug)]
pub struct Scan {
    top: ReadDir,
    prefix: Option<(ReadDir, String)>,
}

impl Iterator for Scan {
    type Item = Found;

    fn next(&mut self) -> Option<Found> {
        loop {
            if let Some((dir, name)) = &mut self.prefix {
                match dir.next() {
                    Some(Ok(entry)) => {
                        let Some(digest) = blob_digest(&entry, Some(name)) else {
                            continue;
                        };
                        let Ok(meta) = entry.metadata() else { continue };
                        return Some(Found {
                            digest,
                            size: meta.len(),
                            used: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                        });
                    }
                    Some(Err(_)) => continue,
                    None => self.prefix = None,
                }
            }
            let entry = match self.top.next()? {
                Ok(e) => e,
                Err(_) => continue,
            };
            if !entry.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            if let Ok(dir) = fs::read_dir(entry.path()) {
                self.prefix = Some((dir, name));
            }
        }
    }
}

#[cfg(test)]
mod tests;
