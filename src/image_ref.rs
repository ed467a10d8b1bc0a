//! What an operator names an image by — [`ImageRef`] (`ghcr.io/org/app:1.4`, `alpine`) —
//! and a platform ([`Platform`], `linux/arm64/v8`): parsed and validated once, where they
//! come in (the keep list, an admin request, `regmirror prefetch`).
//!
//! The rules are Docker's: a first path component with a dot or a port, or `localhost`, is
//! a registry, anything else is a Docker Hub repository (single names get `library/`); no
//! tag means `latest`. Only tags are accepted (an image by digest cannot go stale, so there
//! is nothing to keep fresh; pull it by digest through the mirror instead).

use crate::reference::{Invalid, Repository, Tag, UpstreamName};
use std::fmt;

/// Docker Hub's other spellings, which name the same registry as `docker.io`.
const DOCKER_HUB_ALIASES: [&str; 2] = ["index.docker.io", "registry-1.docker.io"];

/// An image by tag on an upstream: `docker.io/library/alpine:3.20`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ImageRef {
    /// The registry (`docker.io`).
    pub upstream: UpstreamName,
    /// The repository there (`library/` added for Docker Hub).
    pub repo: Repository,
    /// The tag.
    pub tag: Tag,
}

impl ImageRef {
    /// Parses `[registry/]repository[:tag]`; the error says what is wrong in words.
    pub fn parse(s: &str) -> Result<ImageRef, String> {
        if s.contains('@') {
            return Err(format!(
                "{s:?}: name a tag (repository:tag); an image by digest never changes, so \
                 there is nothing to keep or refresh"
            ));
        }
        let (first, rest) = match s.split_once('/') {
            Some((first, rest)) => (Some(first), rest),
            None => (None, s),
        };
        let registry = first.filter(|f| f.contains(['.', ':']) || *f == "localhost");
        let (upstream, path) = match registry {
            Some(name) if DOCKER_HUB_ALIASES.contains(&name) => (UpstreamName::docker_hub(), rest),
            Some(name) => (
                UpstreamName::parse(name)
                    .map_err(|_| format!("{s:?}: {name:?} is not a registry name"))?,
                rest,
            ),
            None => (UpstreamName::docker_hub(), s),
        };
        let (name, tag) = match path.rsplit_once(':') {
            Some((name, tag)) if !tag.contains('/') => (name, tag),
            _ => (path, "latest"),
        };
        let bad_name = |e| match e {
            Invalid::Name(why) => format!("{s:?}: {why}"),
            _ => format!("{s:?}: not a repository name"),
        };
        let mut repo = Repository::parse(name).map_err(bad_name)?;
        if upstream.is_docker_hub() {
            repo = repo.with_library_prefix().map_err(bad_name)?;
        }
        let tag = Tag::parse(tag).map_err(|_| {
            format!("{s:?}: {tag:?} is not a tag (letters, digits, _ . -, at most 128)")
        })?;
        Ok(ImageRef {
            upstream,
            repo,
            tag,
        })
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}:{}", self.upstream, self.repo, self.tag)
    }
}

impl fmt::Debug for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

/// Longest part of a platform (`os`, `architecture`, `variant`): real ones are a few
/// characters; the bound keeps a hostile manifest's strings out of the inventory.
const MAX_PLATFORM_PART: usize = 32;

/// `os/architecture[/variant]`, lowercase: `linux/amd64`, `linux/arm/v7`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Platform {
    /// `linux`
    pub os: String,
    /// `arm64`
    pub arch: String,
    /// `v8`, if given.
    pub variant: Option<String>,
}

impl Platform {
    /// Parses `linux/arm64` or `linux/arm64/v8`.
    pub fn parse(s: &str) -> Result<Platform, String> {
        let mut parts = s.split('/');
        let (os, arch, variant) = (parts.next(), parts.next(), parts.next());
        let ok = |p: &str| {
            !p.is_empty()
                && p.len() <= MAX_PLATFORM_PART
                && p.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        };
        match (os, arch, variant, parts.next()) {
            (Some(os), Some(arch), variant, None)
                if ok(os) && ok(arch) && variant.is_none_or(ok) =>
            {
                Ok(Platform {
                    os: os.into(),
                    arch: arch.into(),
                    variant: variant.map(Into::into),
                })
            }
            _ => Err(format!(
                "{s:?} is not a platform like linux/amd64 or linux/arm/v7"
            )),
        }
    }

    /// The platform of an index entry's or a config's JSON (`os`, `architecture`,
    /// `variant`), if it has a sane one.
    pub fn from_json(v: &serde_json::Value) -> Option<Platform> {
        let s = |k: &str| v.get(k).and_then(|x| x.as_str());
        let mut text = format!("{}/{}", s("os")?, s("architecture")?);
        if let Some(variant) = s("variant").filter(|x| !x.is_empty()) {
            text = format!("{text}/{variant}");
        }
        Platform::parse(&text).ok()
    }

    /// Whether `self`, as an operator wrote it, selects `found` (a manifest's): os and
    /// architecture equal, and the variant too when one was written (`arm64` without a
    /// variant is `v8`, as containerd normalises it).
    pub fn selects(&self, found: &Platform) -> bool {
        let variant = |p: &Platform| match (p.arch.as_str(), p.variant.as_deref()) {
            ("arm64", None) => Some("v8".to_owned()),
            (_, v) => v.map(str::to_owned),
        };
        self.os == found.os
            && self.arch == found.arch
            && (self.variant.is_none() || variant(self) == variant(found))
    }

    /// `unknown/unknown`: what BuildKit puts on attestation manifests, which are not images.
    pub fn is_unknown(&self) -> bool {
        self.os == "unknown"
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.arch)?;
        match &self.variant {
            Some(v) => write!(f, "/{v}"),
            None => Ok(()),
        }
    }
}

impl fmt::Debug for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(s: &str) -> String {
        ImageRef::parse(s)
            .map(|r| r.to_string())
            .unwrap_or_else(|e| e)
    }

    #[test]
    fn references_read_as_docker_reads_them() {
        assert_eq!(r("alpine"), "docker.io/library/alpine:latest");
        assert_eq!(r("alpine:3.20"), "docker.io/library/alpine:3.20");
        assert_eq!(r("bitnami/redis:7"), "docker.io/bitnami/redis:7");
        assert_eq!(r("docker.io/alpine:3"), "docker.io/library/alpine:3");
        assert_eq!(
            r("index.docker.io/library/alpine"),
            "docker.io/library/alpine:latest"
        );
        assert_eq!(r("ghcr.io/org/app:1.4"), "ghcr.io/org/app:1.4");
        assert_eq!(r("localhost:5000/app"), "localhost:5000/app:latest");
        assert_eq!(r("localhost/app:v1"), "localhost/app:v1");
    }

    #[test]
    fn bad_references_say_why() {
        for (s, says) in [
            ("alpine@sha256:abcd", "name a tag"),
            ("Alpine", "lowercase"),
            ("alpine:-x", "not a tag"),
            ("ghcr.io/", "empty"),
            ("../etc/passwd", "registry name"),
        ] {
            let e = ImageRef::parse(s).unwrap_err();
            assert!(e.contains(says), "{s}: {e}");
        }
    }

    #[test]
    fn platforms_and_what_they_select() {
        let p = |s| Platform::parse(s).unwrap();
        assert_eq!(p("linux/arm/v7").to_string(), "linux/arm/v7");
        assert!(Platform::parse("linux").is_err());
        assert!(Platform::parse("linux/amd64/v2/x").is_err());
        assert!(Platform::parse("Linux/amd64").is_err());
        assert!(p("linux/arm64").selects(&p("linux/arm64/v8")));
        assert!(p("linux/arm64/v8").selects(&p("linux/arm64")));
        assert!(!p("linux/arm/v7").selects(&p("linux/arm/v6")));
        assert!(p("linux/arm").selects(&p("linux/arm/v6")));
        assert!(!p("linux/amd64").selects(&p("linux/arm64")));
        let v: serde_json::Value =
            serde_json::from_str(r#"{"os":"linux","architecture":"arm","variant":"v7"}"#).unwrap();
        assert_eq!(Platform::from_json(&v), Some(p("linux/arm/v7")));
    }
}
