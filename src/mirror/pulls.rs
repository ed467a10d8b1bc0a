//! Per-image pull counters — how many times clients asked for a tag, and when last — kept
//! in memory and written to `<cache>/state/pulls` rarely: at most every
//! [`SAVE_INTERVAL`] (when something changed) and at shutdown. An SD card is spared a
//! write per pull; a power cut loses at most one interval of counts.
//!
//! A pull is a manifest request *by tag* that was answered (GET or HEAD): every client
//! resolves the tag once per pull (Docker and skopeo GET it, containerd HEADs it and then
//! fetches by digest), so each pull counts once whatever the client.
//!
//! File format, one image a line: `upstream repository tag pulls last-pull-unix-seconds`.
//! Every field is a validated identifier (no blanks), so a line splits on blanks; a line
//! that does not parse is skipped. Written to a temp file, `fsync`ed, renamed.

use crate::reference::{Repository, Tag, UpstreamName};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// How often changed counters are written: rarely, for the SD card (one small file per
/// interval at most), often enough that a power cut costs little.
pub const SAVE_INTERVAL: Duration = Duration::from_secs(15 * 60);

/// Most images counted. Each has a tag record on disk too (only answered tags count), so
/// this is far beyond any real cache; it bounds memory and the file.
pub const MAX_COUNTED: usize = 100_000;

/// Largest counters file read: [`MAX_COUNTED`] lines of at most ~400 bytes.
const MAX_FILE_BYTES: u64 = (MAX_COUNTED as u64) * 400;

/// The directory of the mirror's own state files inside the cache directory.
pub const STATE_DIR: &str = "state";

/// The counters file's name inside [`STATE_DIR`].
pub const PULLS_FILE: &str = "pulls";

type Key = (UpstreamName, Repository, Tag);

/// The counters. Single-threaded (the executor's); no borrow outlives a method.
#[derive(Debug)]
pub struct Pulls {
    path: PathBuf,
    counts: RefCell<HashMap<Key, (u64, SystemTime)>>,
    /// Changed since the last save.
    dirty: Cell<bool>,
}

impl Pulls {
    /// The counters saved under the cache at `root` (none if there is no file yet).
    pub fn load(root: &Path) -> Pulls {
        let path = root.join(STATE_DIR).join(PULLS_FILE);
        let counts = read(&path).unwrap_or_else(|e| {
            if e.kind() != io::ErrorKind::NotFound {
                log::warn!("pull counters {}: {e}; counting from zero", path.display());
            }
            HashMap::new()
        });
        Pulls {
            path,
            counts: RefCell::new(counts),
            dirty: Cell::new(false),
        }
    }

    /// Counts a pull of `upstream/repo:tag` at `now`.
    pub fn count(&self, upstream: &UpstreamName, repo: &Repository, tag: &Tag, now: SystemTime) {
        let mut counts = self.counts.borrow_mut();
        let key = (upstream.clone(), repo.clone(), tag.clone());
        let full = counts.len() >= MAX_COUNTED;
        match counts.get_mut(&key) {
            Some((n, last)) => {
                *n = n.saturating_add(1);
                *last = now;
            }
            None if !full => {
                counts.insert(key, (1, now));
            }
            None => return,
        }
        self.dirty.set(true);
    }

    /// Pulls and the last pull of an image, if it was ever counted.
    pub fn get(
        &self,
        upstream: &UpstreamName,
        repo: &Repository,
        tag: &Tag,
    ) -> Option<(u64, SystemTime)> {
        let key = (upstream.clone(), repo.clone(), tag.clone());
        self.counts.borrow().get(&key).copied()
    }

    /// Forgets an image (evicted by an operator).
    pub fn forget(&self, upstream: &UpstreamName, repo: &Repository, tag: &Tag) {
        let key = (upstream.clone(), repo.clone(), tag.clone());
        if self.counts.borrow_mut().remove(&key).is_some() {
            self.dirty.set(true);
        }
    }

    /// Writes the counters if they changed since the last save.
    pub fn save(&self) -> io::Result<()> {
        if !self.dirty.get() {
            return Ok(());
        }
        let mut lines: Vec<String> = self
            .counts
            .borrow()
            .iter()
            .map(|((u, r, t), (n, last))| format!("{u} {r} {t} {n} {}\n", unix(*last)))
            .collect();
        lines.sort();
        write_atomically(&self.path, lines.concat().as_bytes())?;
        self.dirty.set(false);
        Ok(())
    }
}

/// Seconds since the epoch (0 before it).
pub fn unix(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

/// Reads a counters file (for `regmirror ls` too).
pub fn read(path: &Path) -> io::Result<HashMap<Key, (u64, SystemTime)>> {
    let mut text = String::new();
    fs::File::open(path)?
        .take(MAX_FILE_BYTES)
        .read_to_string(&mut text)?;
    let mut out = HashMap::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split(' ').collect();
        let [u, r, t, n, last] = f[..] else { continue };
        let parsed = (
            UpstreamName::parse(u),
            Repository::parse(r),
            Tag::parse(t),
            n.parse::<u64>(),
            last.parse::<u64>(),
        );
        if let (Ok(u), Ok(r), Ok(t), Ok(n), Ok(last)) = parsed {
            if out.len() < MAX_COUNTED {
                let at = SystemTime::UNIX_EPOCH + Duration::from_secs(last);
                out.insert((u, r, t), (n, at));
            }
        }
    }
    Ok(out)
}

/// Replaces `path` with `bytes`: temp file, `fsync`, rename (making the directory first).
pub fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path.parent().expect("state files live in a directory");
    fs::create_dir_all(dir)?;
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("state");
    let tmp = dir.join(format!(".{name}.tmp"));
    let written = fs::File::create(&tmp)
        .and_then(|mut f| f.write_all(bytes).and_then(|()| f.sync_all()))
        .and_then(|()| fs::rename(&tmp, path));
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_survive_a_save_and_a_load_and_saving_is_only_done_when_needed() {
        let dir = tempfile::tempdir().unwrap();
        let p = Pulls::load(dir.path());
        let (u, r, t) = (
            UpstreamName::docker_hub(),
            Repository::parse("library/alpine").unwrap(),
            Tag::parse("3").unwrap(),
        );
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        p.count(&u, &r, &t, at);
        p.count(&u, &r, &t, at + Duration::from_secs(5));
        p.save().unwrap();
        let file = dir.path().join("state/pulls");
        assert_eq!(
            fs::read_to_string(&file).unwrap(),
            "docker.io library/alpine 3 2 1800000005\n"
        );
        fs::remove_file(&file).unwrap();
        p.save().unwrap();
        assert!(!file.exists(), "nothing changed: nothing written");
        p.count(&u, &r, &t, at);
        p.save().unwrap();
        let again = Pulls::load(dir.path());
        assert_eq!(again.get(&u, &r, &t), Some((3, at)));
    }

    #[test]
    fn bad_lines_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("state/pulls");
        write_atomically(
            &file,
            b"docker.io library/a 1 4 10\ngarbage\ndocker.io ../x t 1 1\nghcr.io o/a v 2 3\n",
        )
        .unwrap();
        assert_eq!(read(&file).unwrap().len(), 2);
    }
}
