//! Tag → digest records on disk, so tags keep resolving when upstream is unreachable.
//!
//! `tags/<upstream>/<repo…>/_tags/<tag>` holds three lines: digest, media type, and the
//! Unix time it was last confirmed upstream. `_tags` can never be a repository component
//! (components start with a letter or digit), so a repository `a` and a repository `a/b`
//! never collide. Every path component comes from a validated type.
//!
//! Records are replaced by write-to-temp + rename (atomic) but not `fsync`ed: losing the
//! newest confirmation in a power cut only means one extra revalidation, and SD cards are
//! spared a flush per tag check.
//!
//! [`Cache`]'s tag methods are here too: the cache's face of these records.

use super::Cache;
use crate::media_type::MediaType;
use crate::reference::{Digest, Repository, Tag, UpstreamName};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// Name of the directory holding a repository's tag records.
const TAGS_DIR: &str = "_tags";

/// A tag record with what it is the record of: (upstream, repository, tag, record).
pub type TagEntry = (UpstreamName, Repository, Tag, TagRecord);

/// What we last learned about a tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagRecord {
    /// The manifest digest the tag pointed to.
    pub digest: Digest,
    /// The manifest's media type.
    pub media_type: MediaType,
    /// When upstream last confirmed it.
    pub checked: SystemTime,
}

/// The tag records under `<cache>/tags`.
#[derive(Debug)]
pub struct Tags {
    root: PathBuf,
}

impl Tags {
    /// Tag records under `root` (created on first write).
    pub fn new(root: PathBuf) -> Tags {
        Tags { root }
    }

    fn dir(&self, upstream: &UpstreamName, repo: &Repository) -> PathBuf {
        let mut p = self.root.join(upstream.as_str());
        p.extend(repo.components());
        p.join(TAGS_DIR)
    }

    /// The record for a tag, if one was saved and is readable.
    pub fn get(&self, upstream: &UpstreamName, repo: &Repository, tag: &Tag) -> Option<TagRecord> {
        let text = fs::read_to_string(self.dir(upstream, repo).join(tag.as_str())).ok()?;
        let mut lines = text.lines();
        let digest = Digest::parse(lines.next()?).ok()?;
        let media_type = MediaType::parse(lines.next()?)?;
        let secs: u64 = lines.next()?.parse().ok()?;
        Some(TagRecord {
            digest,
            media_type,
            checked: SystemTime::UNIX_EPOCH + Duration::from_secs(secs),
        })
    }

    /// Saves a record, replacing any older one atomically.
    pub fn put(
        &self,
        upstream: &UpstreamName,
        repo: &Repository,
        tag: &Tag,
        rec: &TagRecord,
    ) -> io::Result<()> {
        let dir = self.dir(upstream, repo);
        fs::create_dir_all(&dir)?;
        let secs = rec
            .checked
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let tmp = dir.join(format!(".{}.tmp", tag.as_str()));
        let written = fs::write(
            &tmp,
            format!("{}\n{}\n{secs}\n", rec.digest, rec.media_type),
        )
        .and_then(|()| fs::rename(&tmp, dir.join(tag.as_str())));
        if written.is_err() {
            // A half-written or unrenamable temp file must not stay behind.
            let _ = fs::remove_file(&tmp);
        }
        written
    }

    /// Forgets a tag upstream says no longer exists.
    pub fn remove(&self, upstream: &UpstreamName, repo: &Repository, tag: &Tag) {
        let _ = fs::remove_file(self.dir(upstream, repo).join(tag.as_str()));
    }

    /// Tags known for a repository, sorted (the offline fallback for `tags/list`).
    pub fn list(&self, upstream: &UpstreamName, repo: &Repository) -> Vec<String> {
        let mut tags: Vec<String> = fs::read_dir(self.dir(upstream, repo))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| Tag::parse(n).is_ok())
            .collect();
        tags.sort();
        tags
    }

    /// Every readable record: (upstream, repository, tag, record), sorted.
    pub fn all(&self) -> Vec<TagEntry> {
        let mut out = Vec::new();
        for (upstream, repo) in self.repositories() {
            let Ok(repo) = Repository::parse(&repo) else {
                continue;
            };
            for name in self.list(&upstream, &repo) {
                let Ok(tag) = Tag::parse(&name) else { continue };
                if let Some(rec) = self.get(&upstream, &repo, &tag) {
                    out.push((upstream.clone(), repo.clone(), tag, rec));
                }
            }
        }
        out
    }

    /// Every `(upstream, repository)` with at least one tag record, sorted (`_catalog`).
    pub fn repositories(&self) -> Vec<(UpstreamName, String)> {
        let mut out = Vec::new();
        for up in fs::read_dir(&self.root).into_iter().flatten().flatten() {
            let Some(name) = up
                .file_name()
                .to_str()
                .and_then(|n| UpstreamName::parse(n).ok())
            else {
                continue;
            };
            collect_repos(&up.path(), String::new(), &name, &mut out);
        }
        out.sort();
        out
    }
}

fn collect_repos(
    dir: &Path,
    prefix: String,
    upstream: &UpstreamName,
    out: &mut Vec<(UpstreamName, String)>,
) {
    for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !entry.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        if name == TAGS_DIR {
            if !prefix.is_empty() {
                out.push((upstream.clone(), prefix.clone()));
            }
        } else {
            let repo = if prefix.is_empty() {
                name
            } else {
                format!("{prefix}/{name}")
            };
            collect_repos(&entry.path(), repo, upstream, out);
        }
    }
}

/// The cache's tag records, through [`Cache`]: a tag whose digest or type changes counts
/// as a change of its contents ([`super::Changes`]).
impl Cache {
    /// The record for a tag, if one was saved and is readable.
    pub fn tag(&self, upstream: &UpstreamName, repo: &Repository, tag: &Tag) -> Option<TagRecord> {
        self.tags.get(upstream, repo, tag)
    }

    /// Saves a tag record, replacing any older one atomically.
    pub fn put_tag(
        &self,
        upstream: &UpstreamName,
        repo: &Repository,
        tag: &Tag,
        digest: &Digest,
        media_type: &MediaType,
    ) -> io::Result<()> {
        let rec = TagRecord {
            digest: *digest,
            media_type: media_type.clone(),
            checked: SystemTime::now(),
        };
        self.put_tag_record(upstream, repo, tag, &rec)
    }

    /// Saves a tag record as it is (tests, imports).
    pub fn put_tag_record(
        &self,
        upstream: &UpstreamName,
        repo: &Repository,
        tag: &Tag,
        rec: &TagRecord,
    ) -> io::Result<()> {
        // One small read, once per revalidation: a tag confirmed again changes nothing
        // derived from it.
        let moved = self
            .tags
            .get(upstream, repo, tag)
            .is_none_or(|old| old.digest != rec.digest || old.media_type != rec.media_type);
        let written = self.tags.put(upstream, repo, tag, rec);
        if moved {
            self.changed(|c| c.tags += 1);
        }
        written
    }

    /// Forgets a tag upstream says no longer exists (or an operator evicted).
    pub fn remove_tag(&self, upstream: &UpstreamName, repo: &Repository, tag: &Tag) {
        self.tags.remove(upstream, repo, tag);
        self.changed(|c| c.tags += 1);
    }

    /// Every tag record, sorted by upstream, repository and tag.
    pub fn tag_records(&self) -> Vec<TagEntry> {
        self.tags.all()
    }

    /// Tags known for a repository, sorted (the offline fallback for `tags/list`).
    pub fn tag_names(&self, upstream: &UpstreamName, repo: &Repository) -> Vec<String> {
        self.tags.list(upstream, repo)
    }

    /// Every `(upstream, repository)` with at least one tag record, sorted (`_catalog`).
    pub fn repositories(&self) -> Vec<(UpstreamName, String)> {
        self.tags.repositories()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hub() -> UpstreamName {
        UpstreamName::docker_hub()
    }

    #[test]
    fn put_get_list_and_catalog() {
        let dir = tempfile::tempdir().unwrap();
        let tags = Tags::new(dir.path().to_path_buf());
        let a = Repository::parse("library/a").unwrap();
        let ab = Repository::parse("library/a/b").unwrap();
        let rec = TagRecord {
            digest: Digest::of(b"m"),
            media_type: MediaType::OCI_INDEX,
            checked: SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
        };
        let latest = Tag::parse("latest").unwrap();
        tags.put(&hub(), &a, &latest, &rec).unwrap();
        tags.put(&hub(), &ab, &Tag::parse("v1").unwrap(), &rec)
            .unwrap();
        assert_eq!(tags.get(&hub(), &a, &latest), Some(rec.clone()));
        assert_eq!(tags.get(&"ghcr.io".parse().unwrap(), &a, &latest), None);
        assert_eq!(tags.list(&hub(), &a), vec!["latest"]);
        assert_eq!(
            tags.repositories(),
            vec![(hub(), "library/a".into()), (hub(), "library/a/b".into())]
        );
        tags.remove(&hub(), &a, &latest);
        assert_eq!(tags.get(&hub(), &a, &latest), None);
    }

    #[test]
    fn a_failed_write_leaves_no_temp_file() {
        // Issue 6, defect 23: the rename failed and `.t.tmp` stayed for good.
        let dir = tempfile::tempdir().unwrap();
        let tags = Tags::new(dir.path().to_path_buf());
        let a = Repository::parse("x").unwrap();
        let t = Tag::parse("t").unwrap();
        let blocked = dir.path().join("docker.io/x/_tags/t");
        fs::create_dir_all(blocked.join("in-the-way")).unwrap();
        let rec = TagRecord {
            digest: Digest::of(b"m"),
            media_type: MediaType::OCI_INDEX,
            checked: SystemTime::UNIX_EPOCH,
        };
        assert!(tags.put(&hub(), &a, &t, &rec).is_err());
        let left: Vec<_> = fs::read_dir(dir.path().join("docker.io/x/_tags"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(
            left,
            vec![std::ffi::OsString::from("t")],
            "only the blocking directory"
        );
    }

    #[test]
    fn garbage_record_reads_as_missing() {
        let dir = tempfile::tempdir().unwrap();
        let tags = Tags::new(dir.path().to_path_buf());
        let a = Repository::parse("x").unwrap();
        let t = Tag::parse("t").unwrap();
        let p = dir.path().join("docker.io/x/_tags");
        fs::create_dir_all(&p).unwrap();
        fs::write(p.join("t"), "not a digest\n").unwrap();
        assert_eq!(tags.get(&hub(), &a, &t), None);
    }
}
