//! The referrers API, `GET /v2/<name>/referrers/<digest>` (distribution-spec 1.1): which
//! manifests (signatures, SBOMs, attestations) name a digest as their `subject`.
//!
//! Upstream first: a registry that has the API is relayed byte for byte. One without it
//! (distribution 2.8 answers 404), or one that is down, gets the answer built here, as an
//! OCI image index of descriptors from two sources:
//! - the tag schema, `sha256-<hex>`: the index a client that pushed a referrer to a
//!   registry without the API keeps under that tag (the spec's fallback). It is fetched and
//!   cached like any tag, so while upstream is down its last known version is used;
//! - manifests in the cache whose `subject` is the digest. Each manifest stored in the
//!   cache with a `subject` leaves a marker, `<cache>/referrers/<subject hex>/<manifest
//!   hex>` (an empty file, so the stored manifest bytes stay exactly as upstream sent
//!   them); a marker whose manifest was evicted is skipped and removed.
//!
//! So a client gets one answer either way and never needs the tag-schema fallback itself;
//! and the answer survives the upstream going away. Markers are kept by digest, not by
//! repository: a digest names the same content everywhere (the cache itself is by digest).

use super::{Mirror, Target};
use crate::cache::Cache;
use crate::digest::Digest;
use crate::error::{Error, UpstreamError};
use crate::http::Outcome;
use crate::manifest::Accept;
use crate::media_type::MediaType;
use crate::reference::{Reference, Tag};
use serde_json::{json, Value};
use std::path::PathBuf;

/// Directory under the cache root holding the subject → referrer markers.
pub const DIR: &str = "referrers";

/// Most referrers listed from the cache for one subject: bounds the answer (each
/// descriptor is a few hundred bytes) and the manifests read to build it.
pub const MAX_CACHED_REFERRERS: usize = 512;

/// A referrers answer ready to send.
#[derive(Debug)]
pub struct ReferrersOut {
    /// `Content-Type`.
    pub content_type: String,
    /// `OCI-Filters-Applied`, when the `artifactType` filter was applied.
    pub filters_applied: Option<String>,
    /// The image index.
    pub body: Vec<u8>,
    /// `PASS` (relayed), `HIT` (built; upstream has no referrers API), `STALE` (built;
    /// upstream failed).
    pub outcome: Outcome,
}

impl Mirror {
    /// The referrers of `subject` in `t`, filtered by `artifact_type` if given.
    pub async fn referrers(
        &self,
        t: &Target,
        subject: &Digest,
        artifact_type: Option<&str>,
    ) -> Result<ReferrersOut, Error> {
        let outcome = match t.registry.referrers(&t.repo, subject, artifact_type).await {
            Ok(page) => {
                return Ok(ReferrersOut {
                    content_type: page.content_type,
                    filters_applied: page.filters_applied,
                    body: page.body,
                    outcome: Outcome::Pass,
                })
            }
            Err(e @ (UpstreamError::Unauthorized(_) | UpstreamError::Denied(_))) => {
                return Err(Error::Upstream(e))
            }
            Err(UpstreamError::NotFound) => Outcome::Hit,
            Err(e) => {
                log::warn!(
                    "referrers of {subject} in {}: {e}; answering from the cache",
                    t.repo
                );
                Outcome::Stale
            }
        };
        let mut found = self.tag_schema(t, subject).await;
        for d in cached_referrers(&self.cache, subject) {
            if found
                .iter()
                .any(|f| f["digest"].as_str() == Some(&d.to_string()))
            {
                continue;
            }
            match self.cached_manifest(&d, Outcome::Hit) {
                Ok(Some(m)) => found.extend(descriptor(&d, &m.bytes, &m.media_type)),
                _ => forget(&self.cache, subject, &d),
            }
        }
        let filters_applied = artifact_type.map(|want| {
            found.retain(|f| f["artifactType"].as_str() == Some(want));
            "artifactType".to_owned()
        });
        let index = json!({
            "schemaVersion": 2,
            "mediaType": MediaType::OCI_INDEX.as_str(),
            "manifests": found,
        });
        Ok(ReferrersOut {
            content_type: MediaType::OCI_INDEX.to_string(),
            filters_applied,
            body: index.to_string().into_bytes(),
            outcome,
        })
    }

    /// The descriptors of the tag-schema index `sha256-<hex>`, if there is one (from
    /// upstream, or the cache when upstream is down).
    async fn tag_schema(&self, t: &Target, subject: &Digest) -> Vec<Value> {
        let Ok(tag) = Tag::parse(&format!("sha256-{}", subject.hex())) else {
            return Vec::new();
        };
        let accept = Accept::parse(&[MediaType::OCI_INDEX.to_string()]);
        match self.manifest(t, &Reference::Tag(tag), &accept).await {
            Ok(m) => serde_json::from_slice::<Value>(&m.bytes)
                .ok()
                .and_then(|v| v.get("manifests").and_then(Value::as_array).cloned())
                .unwrap_or_default()
                .into_iter()
                .filter(|d| {
                    d["digest"]
                        .as_str()
                        .is_some_and(|s| Digest::parse(s).is_ok())
                })
                .collect(),
            Err(e) => {
                log::debug!("no tag-schema referrers index for {subject}: {e}");
                Vec::new()
            }
        }
    }
}

/// The descriptor of cached manifest `d` for a referrers list: its media type, size,
/// `artifactType` (the config's media type when the manifest has none, as the spec says)
/// and annotations.
fn descriptor(d: &Digest, bytes: &[u8], media_type: &MediaType) -> Option<Value> {
    let v: Value = serde_json::from_slice(bytes).ok()?;
    let artifact_type = v
        .get("artifactType")
        .or_else(|| v.get("config").and_then(|c| c.get("mediaType")))
        .and_then(Value::as_str);
    let mut desc = json!({
        "mediaType": media_type.as_str(),
        "digest": d.to_string(),
        "size": bytes.len(),
    });
    if let Some(t) = artifact_type {
        desc["artifactType"] = json!(t);
    }
    if let Some(a) = v.get("annotations").filter(|a| a.is_object()) {
        desc["annotations"] = a.clone();
    }
    Some(desc)
}

/// The subject of a manifest, if it names one.
fn subject_of(bytes: &[u8]) -> Option<Digest> {
    // Most manifests have none: skip parsing those.
    if !bytes.windows(9).any(|w| w == b"\"subject\"") {
        return None;
    }
    let v: Value = serde_json::from_slice(bytes).ok()?;
    Digest::parse(v.get("subject")?.get("digest")?.as_str()?).ok()
}

fn dir_of(cache: &Cache, subject: &Digest) -> PathBuf {
    cache.root().join(DIR).join(subject.hex())
}

/// Leaves the marker for manifest `d` (just stored in the cache) if it has a subject.
/// Best effort: a marker lost (disk full, power cut) only drops it from cache answers.
pub(super) fn note(cache: &Cache, d: &Digest, bytes: &[u8]) {
    let Some(subject) = subject_of(bytes) else {
        return;
    };
    let dir = dir_of(cache, &subject);
    let made = std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(dir.join(d.hex()), b""));
    if let Err(e) = made {
        log::warn!("could not note {d} as a referrer of {subject}: {e}");
    }
}

/// The cached manifests noted as referrers of `subject`, at most [`MAX_CACHED_REFERRERS`].
fn cached_referrers(cache: &Cache, subject: &Digest) -> Vec<Digest> {
    let Ok(entries) = std::fs::read_dir(dir_of(cache, subject)) else {
        return Vec::new();
    };
    let mut out: Vec<Digest> = entries
        .flatten()
        .filter_map(|e| Digest::from_hex(e.file_name().to_str()?))
        .take(MAX_CACHED_REFERRERS)
        .collect();
    out.sort_by_key(|d| d.hex());
    out
}

fn forget(cache: &Cache, subject: &Digest, d: &Digest) {
    let _ = std::fs::remove_file(dir_of(cache, subject).join(d.hex()));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptors_say_what_the_referrer_is() {
        let sbom = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","artifactType":"application/spdx+json","config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[],"subject":{"mediaType":"application/vnd.oci.image.index.v1+json","digest":"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855","size":2},"annotations":{"org.example":"x"}}"#;
        let d = Digest::of(sbom);
        let desc = descriptor(&d, sbom, &MediaType::OCI_MANIFEST).unwrap();
        assert_eq!(desc["artifactType"], "application/spdx+json");
        assert_eq!(desc["size"], sbom.len());
        assert_eq!(desc["annotations"]["org.example"], "x");
        assert_eq!(
            desc["mediaType"],
            "application/vnd.oci.image.manifest.v1+json"
        );
        assert_eq!(subject_of(sbom), Some(Digest::of(b"")));
        let sig = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.dev.cosign.artifact.sig.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[]}"#;
        let desc = descriptor(&Digest::of(sig), sig, &MediaType::OCI_MANIFEST).unwrap();
        assert_eq!(
            desc["artifactType"],
            "application/vnd.dev.cosign.artifact.sig.v1+json"
        );
        assert_eq!(subject_of(sig), None);
    }
}
