//! Protocol identifiers — [`Repository`], [`Tag`], [`Reference`], [`UpstreamName`] (and
//! [`Digest`], from `digest.rs`) — parsed and validated once, at the edge.
//!
//! Everything downstream (cache paths, upstream URLs, log lines) takes these types, never a
//! raw string from the URL. The grammars are those of the OCI distribution spec; the checks
//! are written out by hand (no regex crate) and are strict enough that a valid value is also
//! a safe file-name component: no `/` in a tag, no `.`/`..` segment in a repository, only
//! lowercase hex in a digest.

pub use crate::digest::Digest;
use std::fmt;

/// Longest repository name the spec allows clients to rely on (distribution-spec: 255).
pub const MAX_REPOSITORY_LEN: usize = 255;

/// Longest tag: the spec's `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`.
pub const MAX_TAG_LEN: usize = 128;

/// Why an identifier was refused; `error.rs` maps each to a status and OCI error code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invalid {
    /// Not a repository name (`NAME_INVALID`).
    Name(&'static str),
    /// Not a tag: no manifest can have that name (`404 MANIFEST_UNKNOWN`, as the spec lists).
    Tag,
    /// Not a digest we can verify (`DIGEST_INVALID`).
    Digest,
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
    /// An error when the prefix would take the name past [`MAX_REPOSITORY_LEN`].
    pub fn with_library_prefix(self) -> Result<Repository, Invalid> {
        if self.0.contains('/') {
            Ok(self)
        } else {
            Repository::parse(&format!("library/{}", self.0))
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

/// Longest registry name accepted: a DNS name (253) plus `:port`.
pub const MAX_UPSTREAM_NAME_LEN: usize = 253 + 6;

/// A registry's name as clients write it in `?ns=` or a path prefix and as the operator
/// writes it in `--upstream NAME=URL`: `docker.io`, `ghcr.io`, `localhost:5000`.
///
/// Invariant: lowercase DNS labels (`[a-z0-9-]`, not starting or ending with `-`) with at
/// least one dot, or `localhost`; optionally `:port`. So it is a safe directory name (no
/// `/`, never `.` or `..`), and a path's first component that has this shape names a
/// registry rather than a repository (as Docker decides).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UpstreamName(String);

impl UpstreamName {
    /// Validates a registry name.
    pub fn parse(name: &str) -> Result<UpstreamName, Invalid> {
        let bad = Invalid::Name("not a registry name such as docker.io or ghcr.io");
        if name.len() > MAX_UPSTREAM_NAME_LEN {
            return Err(bad);
        }
        let (host, port) = match name.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (name, None),
        };
        let port_ok = |p: &str| p.bytes().all(|b| b.is_ascii_digit()) && p.parse::<u16>().is_ok();
        if port.is_some_and(|p| !port_ok(p)) {
            return Err(bad);
        }
        let labels_ok = !host.is_empty()
            && host.split('.').all(|l| {
                !l.is_empty()
                    && l.len() <= 63
                    && l.bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                    && !l.starts_with('-')
                    && !l.ends_with('-')
            });
        if labels_ok && (host.contains('.') || host == "localhost") {
            Ok(UpstreamName(name.to_owned()))
        } else {
            Err(bad)
        }
    }

    /// Docker Hub's name, the default upstream.
    pub fn docker_hub() -> UpstreamName {
        UpstreamName(DOCKER_HUB.to_owned())
    }

    /// Whether this is Docker Hub (whose single-segment names get `library/`).
    pub fn is_docker_hub(&self) -> bool {
        self.0 == DOCKER_HUB
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Docker Hub's name as clients write it.
pub const DOCKER_HUB: &str = "docker.io";

impl std::str::FromStr for UpstreamName {
    type Err = Invalid;
    fn from_str(s: &str) -> Result<UpstreamName, Invalid> {
        UpstreamName::parse(s)
    }
}

impl fmt::Display for UpstreamName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for UpstreamName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

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
        assert_eq!(r.unwrap().as_str(), "library/alpine");
        let r = Repository::parse("org/app").unwrap().with_library_prefix();
        assert_eq!(r.unwrap().as_str(), "org/app");
        let long = Repository::parse(&"a".repeat(MAX_REPOSITORY_LEN - 5)).unwrap();
        assert!(long.with_library_prefix().is_err());
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

    #[test]
    fn upstream_names() {
        for good in [
            "docker.io",
            "ghcr.io",
            "registry.k8s.io",
            "localhost",
            "localhost:5000",
            "my-reg.lan:443",
            "a-b.c",
        ] {
            assert!(UpstreamName::parse(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "alpine",
            "library",
            "..",
            "Docker.io",
            "../x",
            "a/b.c",
            "a..b",
            "-a.b",
            "a.b:",
            "a.b:99999",
            "a.b:+80",
            ".",
            &format!("{}.io", "a".repeat(64)),
        ] {
            assert!(UpstreamName::parse(bad).is_err(), "{bad}");
        }
        assert!(UpstreamName::docker_hub().is_docker_hub());
    }
}
