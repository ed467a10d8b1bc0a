//! Unit tests of the error mapping: only codes the spec lists, the status by side at fault, the
//! OCI JSON body.

use super::*;

/// Every code the distribution spec (v1.1) lists for error responses.
const SPEC_CODES: [&str; 14] = [
    "BLOB_UNKNOWN",
    "BLOB_UPLOAD_INVALID",
    "BLOB_UPLOAD_UNKNOWN",
    "DIGEST_INVALID",
    "MANIFEST_BLOB_UNKNOWN",
    "MANIFEST_INVALID",
    "MANIFEST_UNKNOWN",
    "NAME_INVALID",
    "NAME_UNKNOWN",
    "SIZE_INVALID",
    "UNAUTHORIZED",
    "DENIED",
    "UNSUPPORTED",
    "TOOMANYREQUESTS",
];

fn every_error() -> Vec<Error> {
    let upstream = [
        UpstreamError::NotFound,
        UpstreamError::TooManyRequests {
            retry_after: None,
            host: "x".into(),
        },
        UpstreamError::Unauthorized("x".into()),
        UpstreamError::Denied("x".into()),
        UpstreamError::Status(Status::new(418).unwrap(), "x".into()),
        UpstreamError::Unavailable("x".into()),
        UpstreamError::Protocol("x".into()),
        UpstreamError::BadContent("x".into()),
    ];
    let mut all = vec![
        Error::Invalid(Invalid::Name("x")),
        Error::Invalid(Invalid::Tag),
        Error::Invalid(Invalid::Digest),
        Error::UnknownUpstream("x".into()),
        Error::ManifestUnknown,
        Error::BlobUnknown,
        Error::ManifestNotAcceptable(MediaType::OCI_INDEX),
        Error::Unsupported,
        Error::NotFound,
        Error::Malformed("x".into()),
        Error::HeadersTooLarge,
        Error::HeaderTimeout,
        Error::NotImplemented("get".into()),
        Error::Busy,
        Error::RangeNotSatisfiable { size: 1 },
        Error::Internal(std::io::Error::other("x")),
        Error::AddressDenied("203.0.113.1".parse().unwrap()),
        Error::Unauthenticated(false),
        Error::Unauthenticated(true),
        Error::AuthThrottled,
        Error::AdminOff,
        Error::AdminToken(false),
        Error::AdminToken(true),
        Error::AdminMethod,
        Error::AdminRefused("x".into()),
    ];
    all.extend(upstream.into_iter().map(Error::Upstream));
    all
}

#[test]
fn only_codes_the_spec_lists() {
    let subjects = [
        Subject::Manifest,
        Subject::Blob,
        Subject::Repository,
        Subject::Other,
    ];
    for e in every_error() {
        for s in subjects {
            assert!(SPEC_CODES.contains(&e.code(s)), "{e} → {}", e.code(s));
        }
    }
}

#[test]
fn client_faults_are_4xx_and_others_5xx_or_passthrough() {
    let cases: Vec<(Error, u16, &str)> = vec![
        (Error::Invalid(Invalid::Digest), 400, "DIGEST_INVALID"),
        (Error::Invalid(Invalid::Name("x")), 400, "NAME_INVALID"),
        (Error::Invalid(Invalid::Tag), 404, "MANIFEST_UNKNOWN"),
        (Error::Unsupported, 405, "UNSUPPORTED"),
        (Error::BlobUnknown, 404, "BLOB_UNKNOWN"),
        (
            Error::AddressDenied("8.8.8.8".parse().unwrap()),
            403,
            "DENIED",
        ),
        (Error::Unauthenticated(true), 401, "UNAUTHORIZED"),
        (Error::AuthThrottled, 429, "TOOMANYREQUESTS"),
        (Error::ManifestUnknown, 404, "MANIFEST_UNKNOWN"),
        (
            Error::UnknownUpstream("evil.example".into()),
            404,
            "NAME_UNKNOWN",
        ),
        (
            UpstreamError::TooManyRequests {
                retry_after: Some(7),
                host: "x".into(),
            }
            .into(),
            429,
            "TOOMANYREQUESTS",
        ),
        (
            UpstreamError::Unavailable("timeout".into()).into(),
            503,
            "MANIFEST_UNKNOWN",
        ),
        (
            UpstreamError::BadContent("digest".into()).into(),
            502,
            "MANIFEST_UNKNOWN",
        ),
    ];
    for (e, status, code) in cases {
        assert_eq!(
            (e.status().code(), e.code(Subject::Manifest)),
            (status, code),
            "{e}"
        );
        assert_eq!(e.side() == Side::Client, status < 429, "{e}");
    }
    let down: Error = UpstreamError::Unavailable("timeout".into()).into();
    assert_eq!(down.code(Subject::Blob), "BLOB_UNKNOWN");
}

#[test]
fn json_body_has_the_oci_shape() {
    let e: Error = UpstreamError::TooManyRequests {
        retry_after: Some(7),
        host: "x".into(),
    }
    .into();
    let v: serde_json::Value = serde_json::from_str(&e.to_json(Subject::Blob)).unwrap();
    assert_eq!(v["errors"][0]["code"], "TOOMANYREQUESTS");
    assert_eq!(e.retry_after(), Some(7));
}
