//! The referrers API and OCI artifacts (issue 9) against an upstream without the API (it
//! answers 404, like distribution 2.8): the mirror answers from the tag schema
//! (`sha256-<hex>`) and from cached manifests whose `subject` is the digest — also while
//! the upstream is down — and the `artifactType` filter says it was applied. Artifacts
//! (a Helm chart, a cosign signature tag) pull through like images, byte for byte.

mod support;

use support::client::get;

use support::mirror::Mirror;
use support::{digest_of, FakeUpstream, TestImage};

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const EMPTY: &str = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";

/// An OCI 1.1 artifact manifest of `artifact_type` whose subject is `subject`.
fn referrer(artifact_type: &str, layer: &str, subject: &str, size: usize) -> Vec<u8> {
    serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": artifact_type,
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": EMPTY, "size": 2},
        "layers": [{"mediaType": artifact_type, "digest": layer, "size": 4}],
        "subject": {"mediaType": "application/vnd.docker.distribution.manifest.v2+json", "digest": subject, "size": size},
        "annotations": {"org.opencontainers.image.created": "2026-01-01T00:00:00Z"},
    })
    .to_string()
    .into_bytes()
}

fn listed(body: &serde_json::Value) -> Vec<(String, String)> {
    let mut v: Vec<_> = body["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["digest"].as_str().unwrap().to_owned(),
                d["artifactType"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn referrers_come_from_the_tag_schema_and_the_cache_also_when_upstream_is_down() {
    let fake = FakeUpstream::start();
    let img = TestImage::new(21, &[100]);
    let subject = fake.push_image("library/alpine", "latest", &img);
    let layer = fake.add_blob("library/alpine", b"sbom");
    fake.add_blob("library/alpine", b"{}");
    let sbom = referrer(
        "application/spdx+json",
        &layer,
        &subject,
        img.manifest.len(),
    );
    let sbom_d = digest_of(&sbom);
    let sig = referrer(
        "application/vnd.dev.sigstore.bundle.v0.3+json",
        &layer,
        &subject,
        img.manifest.len(),
    );
    let sig_d = digest_of(&sig);
    // Pushed as a client does to a registry without the referrers API: by digest, plus
    // the tag-schema index listing it. The signature is pushed by digest only.
    let hex = subject.strip_prefix("sha256:").unwrap();
    fake.add_manifest("library/alpine", &sbom_d, &sbom, OCI_MANIFEST);
    fake.add_manifest("library/alpine", &sig_d, &sig, OCI_MANIFEST);
    let index = serde_json::json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"mediaType": OCI_MANIFEST, "digest": sbom_d, "size": sbom.len(), "artifactType": "application/spdx+json"}
    ]});
    fake.add_manifest(
        "library/alpine",
        &format!("sha256-{hex}"),
        index.to_string().as_bytes(),
        OCI_INDEX,
    );
    let m = Mirror::start(&fake);

    let path = format!("/v2/library/alpine/referrers/{subject}");
    let r = get(m.addr, &path);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), Some(OCI_INDEX));
    assert_eq!(
        listed(&r.json()),
        [(sbom_d.clone(), "application/spdx+json".into())]
    );

    // A client fetches the signature by digest: now cached, with its subject noted.
    let got = get(m.addr, &format!("/v2/library/alpine/manifests/{sig_d}"));
    assert_eq!((got.status, got.body == sig), (200, true));
    let r = get(m.addr, &path);
    let mut want = vec![
        (sbom_d.clone(), "application/spdx+json".to_owned()),
        (
            sig_d.clone(),
            "application/vnd.dev.sigstore.bundle.v0.3+json".to_owned(),
        ),
    ];
    want.sort();
    assert_eq!(listed(&r.json()), want);

    // Upstream down: the same answer, from the cache.
    fake.fail_with(503, None);
    let r = get(m.addr, &path);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(listed(&r.json()), want);
    let r = get(
        m.addr,
        &format!("{path}?artifactType=application%2Fspdx%2Bjson"),
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.header("oci-filters-applied"), Some("artifactType"));
    assert_eq!(
        listed(&r.json()),
        [(sbom_d, "application/spdx+json".into())]
    );
    // A subject nothing refers to: an empty list, not an error.
    let r = get(
        m.addr,
        &format!("/v2/library/alpine/referrers/{}", digest_of(b"x")),
    );
    assert_eq!(r.status, 200);
    assert!(listed(&r.json()).is_empty());
}

#[test]
fn a_helm_chart_and_a_cosign_signature_tag_pull_through_byte_for_byte() {
    let fake = FakeUpstream::start();
    let chart = b"\x1f\x8b not really a tgz, but bytes are bytes".to_vec();
    let chart_d = fake.add_blob("charts/hello", &chart);
    let config = br#"{"apiVersion":"v2","name":"hello","version":"0.1.0"}"#;
    let config_d = fake.add_blob("charts/hello", config);
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "config": {"mediaType": "application/vnd.cncf.helm.config.v1+json", "digest": config_d, "size": config.len()},
        "layers": [{"mediaType": "application/vnd.cncf.helm.chart.content.v1.tar+gzip", "digest": chart_d, "size": chart.len()}],
    })
    .to_string();
    let manifest_d = fake.add_manifest("charts/hello", "0.1.0", manifest.as_bytes(), OCI_MANIFEST);
    let sig_tag = format!("sha256-{}.sig", "ab".repeat(32));
    let payload = br#"{"critical":{"type":"cosign container image signature"}}"#;
    let payload_d = fake.add_blob("library/alpine", payload);
    let sig = serde_json::json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_d, "size": config.len()},
        "layers": [{"mediaType": "application/vnd.dev.cosign.simplesigning.v1+json", "digest": payload_d,
                    "size": payload.len(), "annotations": {"dev.cosignproject.cosign/signature": "MEUCIQ=="}}],
    })
    .to_string();
    fake.add_manifest("library/alpine", &sig_tag, sig.as_bytes(), OCI_MANIFEST);
    let m = Mirror::start(&fake);

    let r = get(m.addr, "/v2/charts/hello/manifests/0.1.0");
    assert_eq!(r.status, 200);
    assert_eq!(r.body, manifest.as_bytes());
    assert_eq!(r.header("docker-content-digest"), Some(manifest_d.as_str()));
    assert_eq!(
        get(m.addr, &format!("/v2/charts/hello/blobs/{chart_d}")).body,
        chart
    );
    let r = get(m.addr, &format!("/v2/library/alpine/manifests/{sig_tag}"));
    assert_eq!((r.status, r.body == sig.as_bytes()), (200, true));
    assert_eq!(
        get(m.addr, &format!("/v2/library/alpine/blobs/{payload_d}")).body,
        payload
    );
}
