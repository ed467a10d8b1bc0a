//! Protocol identifiers — [`Digest`], [`Repository`], [`Tag`], [`Reference`] — parsed and
//! validated once, at the edge.
//!
//! Everything downstream (cache paths, upstream URLs, log lines) takes these types, never a
//! raw string from the URL. The grammars are those of the OCI distribution spec; the checks
//! are written out by hand (no regex crate) and are strict enough that a valid value is also
//! a safe file-name component: no `/` in a tag, no `.`/`..` segment in a repository, only
//! lowercase hex in a digest.

use std::fmt;

/// Longest repository name the spec allows clients to rely on (distribution-spec: 255).
pub const MAX_REPOSITORY_LEN: usize = 255;

/// Longest tag: the spec's `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`.
pub const MAX_TAG_LEN: usize = 128;

/// Why an identifier was refused; each maps to its own OCI error code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invalid {
    /// Not a repository name (`NAME_INVALID`).
    Name(&'static str),
    /// Not a tag (`TAG_INVALID`... the spec folds this into `MANIFEST_INVALID`; we say `TAG_INVALID`).
    Tag,
    /// Not a digest we can verify (`DIGEST_INVALID`).
    Digest,
}

/// A content digest. Only `sha256` exists in practice; other algorithms are refused
/// rather than stored unverified.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    /// The 32 raw bytes of the SHA-256.
    bytes: [u8; 32],
}

impl Digest {
    /// Parses `sha256:<64 lowercase hex>`.
    pub fn parse(s: &str) -> Result<Digest, Invalid> {
        let hex = s.strip_prefix("sha256:").ok_or(Invalid::Digest)?;
        Digest::from_hex(hex).ok_or(Invalid::Digest)
    }

    /// Parses 64 lowercase hex characters (a file name in the blob store).
    pub fn from_hex(hex: &str) -> Option<Digest> {
        let h = hex.as_bytes();
        if h.len() != 64 {
            return None;
        }
        let mut bytes = [0u8; 32];
        for (i, pair) in h.chunks_exact(2).enumerate() {
            bytes[i] = (nibble(pair[0])? << 4) | nibble(pair[1])?;
        }
        Some(Digest { bytes })
    }

    /// Wraps a finished SHA-256.
    pub fn from_sha256(bytes: [u8; 32]) -> Digest {
        Digest { bytes }
    }

    /// SHA-256 of `data`.
    pub fn of(data: &[u8]) -> Digest {
        use sha2::Digest as _;
        Digest::from_sha256(sha2::Sha256::digest(data).into())
    }

    /// The 64 lowercase hex characters, without the algorithm.
    pub fn hex(&self) -> String {
        let mut s = String::with_capacity(64);
        for b in self.bytes {
            s.push(char::from(HEX[usize::from(b >> 4)]));
            s.push(char::from(HEX[usize::from(b & 15)]));
        }
        s
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn nibble(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex())
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A repository name such as `library/alpine` or `myorg/team/app`.
///
/// Invariant: slash-separated components, each `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`, total
/// length ≤ [`MAX_REPOSITORY_LEN`]. So every component is a safe directory name.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Repository(String);

impl Repository {
    /// Validates a name against the distribution-spec grammar.
    pub fn parse(s: &str) -> Result<Repository, Invalid> {
        if s.is_empty() {
            return Err(Invalid::Name("empty repository name"));
        }
        if s.len() > MAX_REPOSITORY_LEN {
            return Err(Invalid::Name("repository name longer than 255 characters"));
        }
        for component in s.split('/') {
            if !valid_component(component) {
                return Err(Invalid::Name(
                    "repository name components are lowercase letters, digits and single separators",
                ));
            }
        }
        Ok(Repository(s.to_owned()))
    }

    /// Docker Hub's official images live under `library/`: `alpine` means `library/alpine`.
    pub fn with_library_prefix(self) -> Repository {
        if self.0.contains('/') {
            self
        } else {
            Repository(format!("library/{}", self.0))
        }
    }

    /// The name as sent upstream and shown in logs.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name's components, each a safe directory name.
    pub fn components(&self) -> impl Iterator<Item = &str> {
        self.0.split('/')
    }
}

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`
fn valid_component(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        // A separator run: ".", "_", "__" or "-+", always followed by an alphanumeric
        // (the last byte is alphanumeric, checked above).
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-');
        if !ok {
            return false;
        }
    }
    true
}

impl fmt::Display for Repository {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Repository {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

/// A tag: `[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`. Never `.` or `..` (first char rule).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tag(String);

impl Tag {
    /// Validates a tag.
    pub fn parse(s: &str) -> Result<Tag, Invalid> {
        let b = s.as_bytes();
        let first_ok = b
            .first()
            .is_some_and(|&c| c.is_ascii_alphanumeric() || c == b'_');
        let rest_ok = b
            .iter()
            .all(|&c| c.is_ascii_alphanumeric() || c == b'_' || c == b'.' || c == b'-');
        if !first_ok || !rest_ok || b.len() > MAX_TAG_LEN {
            return Err(Invalid::Tag);
        }
        Ok(Tag(s.to_owned()))
    }

    /// The tag text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

/// What a manifest URL names: a mutable tag or an immutable digest.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Reference {
    /// `…/manifests/latest`
    Tag(Tag),
    /// `…/manifests/sha256:…`
    Digest(Digest),
}

impl Reference {
    /// A reference with a `:` is a digest, anything else must be a tag.
    pub fn parse(s: &str) -> Result<Reference, Invalid> {
        if s.contains(':') {
            Digest::parse(s).map(Reference::Digest)
        } else {
            Tag::parse(s).map(Reference::Tag)
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reference::Tag(t) => t.fmt(f),
            Reference::Digest(d) => d.fmt(f),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn digest_round_trips_and_matches_sha256() {
        let d = Digest::parse(EMPTY).unwrap();
        assert_eq!(d.to_string(), EMPTY);
        assert_eq!(Digest::of(b""), d);
    }

    #[test]
    fn digest_refuses_other_forms() {
        for bad in [
            "sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
            "sha256:e3b0",
            "sha512:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "sha256:../../../../etc/passwd",
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        ] {
            assert_eq!(Digest::parse(bad), Err(Invalid::Digest), "{bad}");
        }
    }

    #[test]
    fn repository_grammar() {
        for good in [
            "alpine",
            "library/alpine",
            "myorg/team/app",
            "a.b_c__d--e/f-1",
            "0",
        ] {
            assert!(Repository::parse(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "Alpine",
            "../etc",
            "a/../b",
            "a//b",
            "/a",
            "a/",
            "a.",
            "a..b",
            "a___b",
            "a b",
            "a%2fb",
            &"a".repeat(256),
        ] {
            assert!(Repository::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn library_prefix_only_for_single_segment_names() {
        let r = Repository::parse("alpine").unwrap().with_library_prefix();
        assert_eq!(r.as_str(), "library/alpine");
        let r = Repository::parse("org/app").unwrap().with_library_prefix();
        assert_eq!(r.as_str(), "org/app");
    }

    #[test]
    fn tag_grammar() {
        for good in ["latest", "v1.2.3", "_x", "A-b_c.d", &"t".repeat(128)] {
            assert!(Tag::parse(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            ".",
            "..",
            "-x",
            ".hidden",
            "a/b",
            "a:b",
            &"t".repeat(129),
        ] {
            assert_eq!(Tag::parse(bad), Err(Invalid::Tag), "{bad}");
        }
    }

    #[test]
    fn reference_is_digest_when_it_has_a_colon() {
        assert!(matches!(Reference::parse(EMPTY), Ok(Reference::Digest(_))));
        assert!(matches!(Reference::parse("3.19"), Ok(Reference::Tag(_))));
        assert_eq!(Reference::parse("md5:abc"), Err(Invalid::Digest));
    }
}
