//! The keep list's syntax (`serve --keep FILE`): one image a line, optionally followed by
//! the platforms to keep, comma-separated. A pure parser, [`parse`], like `conffile.rs`;
//! reading the file (bounded) is [`read`].
//!
//! ```text
//! # Images this office needs even when the internet is down.
//! alpine:3.20
//! ghcr.io/org/app:1.4  linux/arm64,linux/amd64
//! debian:bookworm-slim linux/arm/v7
//! ```
//!
//! Blank lines and `#` lines are ignored; no platforms means every platform the image's
//! index lists (attestations left out). An image may appear once. The same format is what
//! the mirror writes for pins made through the admin API (`<cache>/state/pins`).

use crate::image_ref::{ImageRef, Platform};
use std::fmt;
use std::io::Read;
use std::path::Path;

/// Largest keep list read: a line per image, a few hundred images at the very most.
pub const MAX_KEEP_BYTES: usize = 64 * 1024;

/// Most images in a keep list: each is revalidated every `--keep-refresh` and held in
/// memory with its manifests' digests; far more than an office needs, a bound on the work.
pub const MAX_KEEP_ENTRIES: usize = 512;

/// Most platforms on one line (an index rarely lists more than a dozen).
pub const MAX_PLATFORMS: usize = 16;

/// One image to keep.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Entry {
    /// The image.
    pub image: ImageRef,
    /// The platforms to keep; empty: all the index lists.
    pub platforms: Vec<Platform>,
}

impl fmt::Display for Entry {
    /// The line as the file would hold it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.image)?;
        if !self.platforms.is_empty() {
            let ps: Vec<String> = self.platforms.iter().map(ToString::to_string).collect();
            write!(f, " {}", ps.join(","))?;
        }
        Ok(())
    }
}

impl fmt::Debug for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

/// Parses a platform list: `linux/arm64,linux/amd64`.
pub fn parse_platforms(s: &str) -> Result<Vec<Platform>, String> {
    let list: Vec<Platform> = s
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(Platform::parse)
        .collect::<Result<_, _>>()?;
    if list.len() > MAX_PLATFORMS {
        return Err(format!("more than {MAX_PLATFORMS} platforms"));
    }
    Ok(list)
}

/// Parses a keep list; an error is `line N: why`.
pub fn parse(text: &str) -> Result<Vec<Entry>, String> {
    let mut out: Vec<(usize, Entry)> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut words = line.split_whitespace();
        let image = ImageRef::parse(words.next().unwrap_or_default())
            .map_err(|e| format!("line {n}: {e}"))?;
        let platforms = match (words.next(), words.next()) {
            (None, _) => Vec::new(),
            (Some(p), None) => parse_platforms(p).map_err(|e| format!("line {n}: {e}"))?,
            (Some(_), Some(extra)) => {
                return Err(format!(
                    "line {n}: unexpected {extra:?}: platforms are one comma-separated list \
                     (linux/arm64,linux/amd64)"
                ))
            }
        };
        if let Some((first, _)) = out.iter().find(|(_, e)| e.image == image) {
            return Err(format!(
                "line {n}: {image} is already listed on line {first}"
            ));
        }
        if out.len() == MAX_KEEP_ENTRIES {
            return Err(format!(
                "line {n}: more than {MAX_KEEP_ENTRIES} images; is this really a keep list?"
            ));
        }
        out.push((n, Entry { image, platforms }));
    }
    Ok(out.into_iter().map(|(_, e)| e).collect())
}

/// Reads and parses the keep list at `path` (at most [`MAX_KEEP_BYTES`]); the error names
/// the file (and line).
pub fn read(path: &Path) -> Result<Vec<Entry>, String> {
    let p = path.display();
    let file = std::fs::File::open(path).map_err(|e| format!("keep list {p}: {e}"))?;
    let mut bytes = Vec::new();
    file.take(MAX_KEEP_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("keep list {p}: {e}"))?;
    if bytes.len() > MAX_KEEP_BYTES {
        return Err(format!(
            "keep list {p}: over {} KiB; is it really a keep list?",
            MAX_KEEP_BYTES / 1024
        ));
    }
    let text = String::from_utf8(bytes).map_err(|_| format!("keep list {p}: not UTF-8 text"))?;
    parse(&text).map_err(|e| format!("keep list {p}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_comments_and_platforms() {
        let list =
            parse("# office\n\nalpine:3.20\n  ghcr.io/org/app:1.4  linux/arm64,linux/amd64 \r\n")
                .unwrap();
        let lines: Vec<String> = list.iter().map(ToString::to_string).collect();
        assert_eq!(
            lines,
            [
                "docker.io/library/alpine:3.20",
                "ghcr.io/org/app:1.4 linux/arm64,linux/amd64"
            ]
        );
        // What the mirror writes reads back the same.
        assert_eq!(parse(&lines.join("\n")).unwrap(), list);
    }

    #[test]
    fn errors_name_the_line() {
        for (text, says) in [
            ("alpine\nAlpine\n", "line 2"),
            ("alpine linux\n", "platform"),
            ("alpine linux/amd64 linux/arm64\n", "comma-separated"),
            (
                "alpine\ndocker.io/library/alpine:latest\n",
                "already listed on line 1",
            ),
            ("x@sha256:00\n", "name a tag"),
        ] {
            let e = parse(text).unwrap_err();
            assert!(e.contains(says), "{text:?}: {e}");
        }
        let many: String = (0..=MAX_KEEP_ENTRIES).map(|i| format!("a{i}\n")).collect();
        assert!(parse(&many).unwrap_err().contains("more than"));
    }

    #[test]
    fn a_file_too_big_is_refused_unread() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("keep");
        std::fs::write(&p, "#".repeat(MAX_KEEP_BYTES + 1)).unwrap();
        assert!(read(&p).unwrap_err().contains("KiB"));
        assert!(read(&dir.path().join("none"))
            .unwrap_err()
            .contains("keep list"));
    }
}
