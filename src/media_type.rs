//! [`MediaType`]: a content type such as `application/vnd.oci.image.index.v1+json`, validated
//! once where it comes in (an upstream's `Content-Type`, a stored manifest's `mediaType`, a
//! tag record) — and the four manifest types this mirror asks for and serves.

use std::borrow::Cow;
use std::fmt;

/// Longest `type/subtype` accepted: RFC 6838 caps each name at 127 characters.
pub const MAX_MEDIA_TYPE_LEN: usize = 255;

/// A media type without parameters, lowercase (media types compare case-insensitively).
///
/// Invariant: `type/subtype`, each part 1–127 of RFC 6838's restricted-name characters
/// (`A-Za-z0-9!#$&-^_.+`, first alphanumeric), so it is safe in a header and a file.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MediaType(Cow<'static, str>);

impl MediaType {
    /// OCI image index.
    pub const OCI_INDEX: MediaType =
        MediaType(Cow::Borrowed("application/vnd.oci.image.index.v1+json"));
    /// OCI image manifest.
    pub const OCI_MANIFEST: MediaType =
        MediaType(Cow::Borrowed("application/vnd.oci.image.manifest.v1+json"));
    /// Docker manifest list.
    pub const DOCKER_LIST: MediaType = MediaType(Cow::Borrowed(
        "application/vnd.docker.distribution.manifest.list.v2+json",
    ));
    /// Docker image manifest, schema 2.
    pub const DOCKER_MANIFEST: MediaType = MediaType(Cow::Borrowed(
        "application/vnd.docker.distribution.manifest.v2+json",
    ));
    /// Docker schema 1 manifest (unsigned), served as stored.
    pub const DOCKER_V1: MediaType = MediaType(Cow::Borrowed(
        "application/vnd.docker.distribution.manifest.v1+json",
    ));
    /// Docker schema 1 manifest (signed), served as stored.
    pub const DOCKER_V1_SIGNED: MediaType = MediaType(Cow::Borrowed(
        "application/vnd.docker.distribution.manifest.v1+prettyjws",
    ));
    /// Plain JSON (what old clients accept for everything).
    pub const JSON: MediaType = MediaType(Cow::Borrowed("application/json"));

    /// `Content-Type: application/vnd.oci.image.index.v1+json; charset=utf-8` → the type
    /// alone, lowercased; `None` if it is not a well-formed media type.
    pub fn parse(s: &str) -> Option<MediaType> {
        let t = s.split(';').next().unwrap_or("").trim();
        if t.len() > MAX_MEDIA_TYPE_LEN {
            return None;
        }
        let (ty, sub) = t.split_once('/')?;
        (restricted_name(ty) && restricted_name(sub))
            .then(|| MediaType(Cow::Owned(t.to_ascii_lowercase())))
    }

    /// The type as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A multi-platform index (OCI index or Docker manifest list).
    pub fn is_index(&self) -> bool {
        *self == MediaType::OCI_INDEX || *self == MediaType::DOCKER_LIST
    }

    /// One of the four types in [`MANIFEST_TYPES`].
    pub fn is_manifest(&self) -> bool {
        MANIFEST_TYPES.contains(self)
    }
}

/// The manifest media types we ask upstream for and serve, in preference order.
pub const MANIFEST_TYPES: [MediaType; 4] = [
    MediaType::OCI_INDEX,
    MediaType::OCI_MANIFEST,
    MediaType::DOCKER_LIST,
    MediaType::DOCKER_MANIFEST,
];

/// RFC 6838 §4.2 `restricted-name`.
fn restricted_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 127
        && b[0].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(c))
}

impl fmt::Display for MediaType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for MediaType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_go_and_case_folds() {
        let t = MediaType::parse("Application/VND.OCI.image.index.v1+json; charset=utf-8");
        assert_eq!(t, Some(MediaType::OCI_INDEX));
        assert!(t.unwrap().is_index());
        assert!(MediaType::DOCKER_MANIFEST.is_manifest());
        assert!(!MediaType::JSON.is_manifest());
    }

    #[test]
    fn malformed_types_are_refused() {
        for bad in [
            "",
            "application",
            "/json",
            "application/",
            "a/b/c",
            "text/ht ml",
            "text/html\r\nX: y",
            "tëxt/html",
            &format!("a/{}", "b".repeat(128)),
        ] {
            assert_eq!(MediaType::parse(bad), None, "{bad:?}");
        }
    }
}
