//! Manifest media types: recognising a stored manifest's type from its bytes, `Accept`
//! negotiation, and picking the default platform from an index for clients that cannot
//! take one.
//!
//! Manifests are kept byte-exact (their digest is their identity); we only read them.

use crate::reference::Digest;
use crate::upstream::MANIFEST_MEDIA_TYPES;

/// OCI image index.
pub const OCI_INDEX: &str = MANIFEST_MEDIA_TYPES[0];
/// OCI image manifest.
pub const OCI_MANIFEST: &str = MANIFEST_MEDIA_TYPES[1];
/// Docker manifest list.
pub const DOCKER_LIST: &str = MANIFEST_MEDIA_TYPES[2];
/// Docker image manifest, schema 2.
pub const DOCKER_MANIFEST: &str = MANIFEST_MEDIA_TYPES[3];

/// The platform served to clients that cannot take an index: what distribution does for
/// old Docker clients.
const DEFAULT_PLATFORM: (&str, &str) = ("linux", "amd64");

/// The media type of stored manifest bytes: the `mediaType` field when present (always for
/// Docker types, usually for OCI), else inferred from the shape as the OCI spec allows.
pub fn sniff(bytes: &[u8]) -> String {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(bytes) else {
        return OCI_MANIFEST.into();
    };
    if let Some(mt) = v.get("mediaType").and_then(|m| m.as_str()) {
        return mt.to_owned();
    }
    if v.get("manifests").is_some() {
        OCI_INDEX.into()
    } else if v.get("schemaVersion").and_then(|s| s.as_u64()) == Some(1) {
        if v.get("signatures").is_some() {
            "application/vnd.docker.distribution.manifest.v1+prettyjws".into()
        } else {
            "application/vnd.docker.distribution.manifest.v1+json".into()
        }
    } else {
        OCI_MANIFEST.into()
    }
}

/// A client's `Accept` list.
#[derive(Debug, Clone, Default)]
pub struct Accept(Vec<String>);

impl Accept {
    /// From raw header values (each possibly a comma list with parameters).
    pub fn parse(values: &[String]) -> Accept {
        Accept(
            values
                .iter()
                .flat_map(|v| v.split(','))
                .map(|t| {
                    t.split(';')
                        .next()
                        .unwrap_or("")
                        .trim()
                        .to_ascii_lowercase()
                })
                .filter(|t| !t.is_empty())
                .collect(),
        )
    }

    /// Whether `media_type` may be sent. No `Accept`, `*/*` or `application/*` allows all;
    /// `application/json` is what old clients send for everything.
    pub fn allows(&self, media_type: &str) -> bool {
        self.0.is_empty()
            || self.0.iter().any(|t| {
                t == media_type || t == "*/*" || t == "application/*" || t == "application/json"
            })
    }
}

/// Whether a media type is a multi-platform index.
pub fn is_index(media_type: &str) -> bool {
    media_type == OCI_INDEX || media_type == DOCKER_LIST
}

/// For an index the client refuses: the digest of the default platform's manifest, if the
/// client accepts that manifest's type and the index has the platform.
pub fn default_platform(bytes: &[u8], accept: &Accept) -> Option<Digest> {
    let v: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    v.get("manifests")?.as_array()?.iter().find_map(|m| {
        let p = m.get("platform")?;
        let ok = p.get("os")?.as_str()? == DEFAULT_PLATFORM.0
            && p.get("architecture")?.as_str()? == DEFAULT_PLATFORM.1
            && accept.allows(m.get("mediaType")?.as_str()?);
        ok.then(|| Digest::parse(m.get("digest")?.as_str()?).ok())?
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const INDEX: &str = r#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.list.v2+json","manifests":[
      {"mediaType":"application/vnd.docker.distribution.manifest.v2+json","digest":"sha256:1111111111111111111111111111111111111111111111111111111111111111","size":1,"platform":{"architecture":"arm64","os":"linux"}},
      {"mediaType":"application/vnd.docker.distribution.manifest.v2+json","digest":"sha256:2222222222222222222222222222222222222222222222222222222222222222","size":1,"platform":{"architecture":"amd64","os":"linux"}}]}"#;

    #[test]
    fn sniffs_declared_and_inferred_types() {
        assert_eq!(sniff(INDEX.as_bytes()), DOCKER_LIST);
        assert_eq!(sniff(br#"{"schemaVersion":2,"manifests":[]}"#), OCI_INDEX);
        assert_eq!(
            sniff(br#"{"schemaVersion":2,"config":{},"layers":[]}"#),
            OCI_MANIFEST
        );
    }

    #[test]
    fn accept_lists() {
        let a = Accept::parse(&[format!("{DOCKER_MANIFEST}; q=0.9, {OCI_MANIFEST}")]);
        assert!(a.allows(DOCKER_MANIFEST) && a.allows(OCI_MANIFEST));
        assert!(!a.allows(OCI_INDEX));
        assert!(Accept::parse(&[]).allows(OCI_INDEX));
        assert!(Accept::parse(&["*/*".into()]).allows(OCI_INDEX));
    }

    #[test]
    fn default_platform_is_linux_amd64_in_an_accepted_type() {
        let a = Accept::parse(&[DOCKER_MANIFEST.into()]);
        let d = default_platform(INDEX.as_bytes(), &a).unwrap();
        assert!(d.to_string().ends_with("2222"));
        let oci_only = Accept::parse(&[OCI_MANIFEST.into()]);
        assert_eq!(default_platform(INDEX.as_bytes(), &oci_only), None);
    }
}
