//! Manifest bytes (from an upstream, or read back from disk) and a client's `Accept`
//! (src/manifest.rs, src/media_type.rs): sniffing the media type, deciding whether stored
//! bytes are a manifest at all, and negotiation. The input is `ACCEPT\0BYTES` (no NUL: all
//! bytes are the manifest and `Accept` is empty). Properties: a stored manifest's type is
//! one of the four we serve or a Docker schema 1 type; a media type is lowercase, within
//! its limit and parses to itself; negotiation serves whatever `Accept` allows, refuses only what it does not,
//! substitutes only for an index asked for by tag, and by digest serves anything but the two
//! OCI types; the blobs read-ahead takes from it (src/mirror/walk.rs) are each named once and
//! an index has none.
#![no_main]

use libfuzzer_sys::fuzz_target;
use regmirror::manifest::{self, negotiate, Accept, Negotiated};
use regmirror::media_type::{MediaType, MANIFEST_TYPES, MAX_MEDIA_TYPE_LEN};

fuzz_target!(|data: &[u8]| {
    let (accept, bytes) = match data.iter().position(|&b| b == 0) {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (&[][..], data),
    };
    let accept_text = String::from_utf8_lossy(accept);
    if let Some(mt) = MediaType::parse(&accept_text) {
        assert!(mt.as_str().len() <= MAX_MEDIA_TYPE_LEN);
        assert_eq!(mt.as_str(), mt.as_str().to_ascii_lowercase());
        assert_eq!(MediaType::parse(mt.as_str()).as_ref(), Some(&mt));
    }
    let accept = Accept::parse(&[accept_text.into_owned()]);
    let sniffed = manifest::sniff(bytes);
    if let Some(stored) = manifest::stored_type(bytes) {
        // Docker schema 1 carries no `mediaType`: known by its shape, served as stored.
        let v1 = [MediaType::DOCKER_V1, MediaType::DOCKER_V1_SIGNED];
        assert!(
            stored.is_manifest() || v1.contains(&stored),
            "stored type {stored}"
        );
    }
    let _ = manifest::default_platform(bytes, &accept);
    // What read-ahead fetches for a manifest a client GETs: each blob once, nothing for an index.
    if let Some(blobs) = regmirror::mirror::walk::image_blobs(bytes) {
        let unique: std::collections::HashSet<_> = blobs.iter().map(|b| b.0).collect();
        assert_eq!(unique.len(), blobs.len(), "a blob named twice");
        assert!(!sniffed.is_index(), "an index has no blobs of its own");
    }
    let oci = [MediaType::OCI_INDEX, MediaType::OCI_MANIFEST];
    for mt in MANIFEST_TYPES.iter().chain([&sniffed]) {
        for by_tag in [true, false] {
            let answer = negotiate(mt, bytes, by_tag, &accept);
            match &answer {
                Negotiated::Serve => assert!(
                    accept.allows(mt) || (!by_tag && !oci.contains(mt)),
                    "{mt} served against {accept:?}"
                ),
                Negotiated::Refuse => assert!(!accept.allows(mt)),
                Negotiated::DefaultPlatform(_) => {
                    assert!(by_tag && mt.is_index() && !accept.allows(mt))
                }
            }
        }
    }
});
