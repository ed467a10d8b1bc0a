//! Manifest media types: recognising a stored manifest's type from its bytes, `Accept`
//! negotiation ([`negotiate`]: what distribution 2.8 answers), and picking the default
//! platform from an index for clients that cannot take one.
//!
//! Manifests are kept byte-exact (their digest is their identity); we only read them.

use crate::media_type::MediaType;
use crate::reference::Digest;

/// The platform served to clients that cannot take an index: what distribution does for
/// old Docker clients.
const DEFAULT_PLATFORM: (&str, &str) = ("linux", "amd64");

/// The media type of stored manifest bytes: the `mediaType` field when present (always for
/// Docker types, usually for OCI), else inferred from the shape as the OCI spec allows.
pub fn sniff(bytes: &[u8]) -> MediaType {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(bytes) else {
        return MediaType::OCI_MANIFEST;
    };
    if let Some(mt) = v
        .get("mediaType")
        .and_then(|m| m.as_str())
        .and_then(MediaType::parse)
    {
        return mt;
    }
    if v.get("manifests").is_some() {
        MediaType::OCI_INDEX
    } else if v.get("schemaVersion").and_then(|s| s.as_u64()) == Some(1) {
        if v.get("signatures").is_some() {
            MediaType::DOCKER_V1_SIGNED
        } else {
            MediaType::DOCKER_V1
        }
    } else {
        MediaType::OCI_MANIFEST
    }
}

/// The media type of stored bytes if they are a manifest at all: a JSON object whose
/// `mediaType` is a manifest type, or without one, shaped like a manifest (`manifests`, or
/// `schemaVersion` with `layers`/`config`/`fsLayers`). A layer or a config asked for through
/// the manifests endpoint is not.
pub fn stored_type(bytes: &[u8]) -> Option<MediaType> {
    let v: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    let obj = v.as_object()?;
    match obj.get("mediaType").and_then(|m| m.as_str()) {
        Some(m) => MediaType::parse(m).filter(MediaType::is_manifest),
        None => {
            let shaped = obj.contains_key("manifests")
                || (obj.contains_key("schemaVersion")
                    && ["layers", "config", "fsLayers"]
                        .iter()
                        .any(|k| obj.contains_key(*k)));
            shaped.then(|| sniff(bytes))
        }
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
    pub fn allows(&self, media_type: &MediaType) -> bool {
        self.0.is_empty()
            || self.0.iter().any(|t| {
                t == media_type.as_str()
                    || t == "*/*"
                    || t == "application/*"
                    || t == MediaType::JSON.as_str()
            })
    }
}

/// What to answer a client whose `Accept` may exclude the manifest it asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Negotiated {
    /// Send the manifest as it is.
    Serve,
    /// Send this manifest instead: the default platform's, from the index asked for.
    DefaultPlatform(Digest),
    /// 404 `MANIFEST_UNKNOWN`: nothing the client accepts.
    Refuse,
}

/// The rules distribution 2.8 applies (`registry/handlers/manifests.go`, `GetManifest`),
/// checked against Debian's `docker-registry` 2.8.2:
/// - a type the client accepts is served;
/// - an OCI manifest or index the client does not accept is refused, by tag or digest;
/// - by digest, a Docker type is served whatever `Accept` says: the client named those
///   exact bytes, and nothing else has that digest;
/// - by tag, an index is replaced by its default platform's manifest when the client
///   accepts that one (distribution does this for Docker lists only; we do it for OCI
///   indexes too, as a tag names no particular bytes); else refused.
pub fn negotiate(
    media_type: &MediaType,
    bytes: &[u8],
    by_tag: bool,
    accept: &Accept,
) -> Negotiated {
    if accept.allows(media_type) {
        return Negotiated::Serve;
    }
    if by_tag && media_type.is_index() {
        return default_platform(bytes, accept)
            .map_or(Negotiated::Refuse, Negotiated::DefaultPlatform);
    }
    let oci = *media_type == MediaType::OCI_INDEX || *media_type == MediaType::OCI_MANIFEST;
    if by_tag || oci {
        Negotiated::Refuse
    } else {
        Negotiated::Serve
    }
}

/// For an index the client refuses: the digest of the default platform's manifest, if the
/// client accepts that manifest's type and the index has the platform.
pub fn default_platform(bytes: &[u8], accept: &Accept) -> Option<Digest> {
    let v: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    v.get("manifests")?.as_array()?.iter().find_map(|m| {
        let p = m.get("platform")?;
        let ok = p.get("os")?.as_str()? == DEFAULT_PLATFORM.0
            && p.get("architecture")?.as_str()? == DEFAULT_PLATFORM.1
            && accept.allows(&MediaType::parse(m.get("mediaType")?.as_str()?)?);
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
        assert_eq!(sniff(INDEX.as_bytes()), MediaType::DOCKER_LIST);
        assert_eq!(
            sniff(br#"{"schemaVersion":2,"manifests":[]}"#),
            MediaType::OCI_INDEX
        );
        assert_eq!(
            sniff(br#"{"schemaVersion":2,"config":{},"layers":[]}"#),
            MediaType::OCI_MANIFEST
        );
    }

    #[test]
    fn accept_lists() {
        let (dm, om) = (MediaType::DOCKER_MANIFEST, MediaType::OCI_MANIFEST);
        let a = Accept::parse(&[format!("{dm}; q=0.9, {om}")]);
        assert!(a.allows(&dm) && a.allows(&om));
        assert!(!a.allows(&MediaType::OCI_INDEX));
        assert!(Accept::parse(&[]).allows(&MediaType::OCI_INDEX));
        assert!(Accept::parse(&["*/*".into()]).allows(&MediaType::OCI_INDEX));
    }

    #[test]
    fn only_a_tag_is_answered_with_another_manifest() {
        let v2_only = Accept::parse(&[MediaType::DOCKER_MANIFEST.to_string()]);
        let list = MediaType::DOCKER_LIST;
        let child = default_platform(INDEX.as_bytes(), &v2_only).unwrap();
        let n = |mt: &MediaType, by_tag| negotiate(mt, INDEX.as_bytes(), by_tag, &v2_only);
        assert_eq!(n(&list, true), Negotiated::DefaultPlatform(child));
        assert_eq!(n(&list, false), Negotiated::Serve, "the list asked for");
        assert_eq!(
            n(&MediaType::OCI_INDEX, true),
            Negotiated::DefaultPlatform(child)
        );
        assert_eq!(n(&MediaType::OCI_INDEX, false), Negotiated::Refuse);
        assert_eq!(n(&MediaType::OCI_MANIFEST, false), Negotiated::Refuse);
        assert_eq!(n(&MediaType::DOCKER_MANIFEST, false), Negotiated::Serve);
        let oci_only = Accept::parse(&[MediaType::OCI_MANIFEST.to_string()]);
        let dm = MediaType::DOCKER_MANIFEST;
        assert_eq!(negotiate(&dm, b"{}", false, &oci_only), Negotiated::Serve);
        assert_eq!(negotiate(&dm, b"{}", true, &oci_only), Negotiated::Refuse);
        assert_eq!(
            negotiate(&list, INDEX.as_bytes(), true, &oci_only),
            Negotiated::Refuse
        );
    }

    #[test]
    fn default_platform_is_linux_amd64_in_an_accepted_type() {
        let a = Accept::parse(&[MediaType::DOCKER_MANIFEST.to_string()]);
        let d = default_platform(INDEX.as_bytes(), &a).unwrap();
        assert!(d.to_string().ends_with("2222"));
        let oci_only = Accept::parse(&[MediaType::OCI_MANIFEST.to_string()]);
        assert_eq!(default_platform(INDEX.as_bytes(), &oci_only), None);
    }
}
