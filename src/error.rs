//! The one error type of the request path, and its exhaustive mapping to an HTTP status, an
//! OCI error code and the side at fault.
//!
//! Every handler returns `Result<Reply, Error>`; `routes` turns an `Error` into an OCI error
//! response (`{"errors":[{"code":…,"message":…,"detail":…}]}`), so the HTTP layer never sees
//! an `Err` and never drops a connection without an answer.

use crate::reference::Invalid;
use std::fmt;

/// Who caused a failure: decides 4xx vs 5xx and how loudly we log it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// The client asked for something invalid or absent.
    Client,
    /// The upstream registry failed or misbehaved.
    Upstream,
    /// Our own disk or logic failed.
    Internal,
}

/// Failures talking to an upstream registry. Produced by `upstream`, consumed by the cache
/// (which decides whether to serve stale) and by [`Error`]'s mapping. `Clone` because a
/// failed fill hands the same error to every waiting client.
#[derive(Debug, Clone)]
pub enum UpstreamError {
    /// Upstream answered 404 for the manifest or blob.
    NotFound,
    /// Upstream rate-limited us (Docker Hub's pull limit); seconds to wait if it said.
    TooManyRequests {
        /// `Retry-After` in seconds.
        retry_after: Option<u64>,
    },
    /// Upstream still said 401 after the token flow (bad or missing credentials).
    Unauthorized,
    /// Upstream said 403.
    Denied,
    /// Any other unexpected status.
    Status(u16),
    /// Could not get an answer: DNS, connect, TLS, timeout, or the circuit breaker is open.
    Unavailable(String),
    /// The answer made no sense: malformed HTTP, bad redirect, missing headers.
    Protocol(String),
    /// The bytes were not what was asked for: wrong digest or length, or over a limit.
    BadContent(String),
}

impl fmt::Display for UpstreamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UpstreamError::NotFound => f.write_str("upstream: not found"),
            UpstreamError::TooManyRequests { .. } => f.write_str("upstream: too many requests"),
            UpstreamError::Unauthorized => f.write_str("upstream: authentication failed"),
            UpstreamError::Denied => f.write_str("upstream: access denied"),
            UpstreamError::Status(s) => write!(f, "upstream: unexpected status {s}"),
            UpstreamError::Unavailable(m) => write!(f, "upstream unavailable: {m}"),
            UpstreamError::Protocol(m) => write!(f, "upstream protocol error: {m}"),
            UpstreamError::BadContent(m) => write!(f, "upstream sent bad content: {m}"),
        }
    }
}

impl std::error::Error for UpstreamError {}

/// Everything that can go wrong while answering a request.
#[derive(Debug)]
pub enum Error {
    /// A repository name, tag or digest in the URL is malformed.
    Invalid(Invalid),
    /// `?ns=` or a path prefix names an upstream that is not configured (we never connect to
    /// hosts a client names: SSRF).
    UnknownUpstream(String),
    /// No such manifest (upstream 404, or offline and never cached).
    ManifestUnknown,
    /// No such blob.
    BlobUnknown,
    /// The manifest exists but in no media type the client's `Accept` allows.
    ManifestNotAcceptable(String),
    /// Push, delete, uploads, unknown methods: this is a pull-only mirror.
    Unsupported,
    /// A path outside the registry API.
    NotFound,
    /// The request could not be parsed as HTTP/1.1.
    Malformed(String),
    /// The request's headers exceed the server's limit.
    HeadersTooLarge,
    /// The client did not send its headers in time.
    HeaderTimeout,
    /// `Range` outside the blob.
    RangeNotSatisfiable {
        /// The blob's full length, for `Content-Range: bytes */len`.
        size: u64,
    },
    /// The upstream failed; see [`UpstreamError`].
    Upstream(UpstreamError),
    /// Local I/O failed.
    Internal(std::io::Error),
}

impl Error {
    /// The HTTP status.
    pub fn status(&self) -> u16 {
        match self {
            Error::Invalid(_) => 400,
            Error::UnknownUpstream(_) => 404,
            Error::ManifestUnknown | Error::BlobUnknown | Error::NotFound => 404,
            Error::ManifestNotAcceptable(_) => 404,
            Error::Unsupported => 405,
            Error::Malformed(_) => 400,
            Error::HeadersTooLarge => 431,
            Error::HeaderTimeout => 408,
            Error::RangeNotSatisfiable { .. } => 416,
            Error::Upstream(u) => match u {
                UpstreamError::NotFound => 404,
                UpstreamError::TooManyRequests { .. } => 429,
                UpstreamError::Unauthorized => 401,
                UpstreamError::Denied => 403,
                UpstreamError::Status(_)
                | UpstreamError::Protocol(_)
                | UpstreamError::BadContent(_) => 502,
                UpstreamError::Unavailable(_) => 503,
            },
            Error::Internal(_) => 500,
        }
    }

    /// The OCI distribution-spec error code.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Invalid(Invalid::Name(_)) => "NAME_INVALID",
            Error::Invalid(Invalid::Tag) => "TAG_INVALID",
            Error::Invalid(Invalid::Digest) => "DIGEST_INVALID",
            Error::UnknownUpstream(_) => "NAME_UNKNOWN",
            Error::ManifestUnknown | Error::ManifestNotAcceptable(_) => "MANIFEST_UNKNOWN",
            Error::BlobUnknown => "BLOB_UNKNOWN",
            Error::Unsupported
            | Error::Malformed(_)
            | Error::HeadersTooLarge
            | Error::HeaderTimeout => "UNSUPPORTED",
            Error::NotFound => "NOT_FOUND",
            Error::RangeNotSatisfiable { .. } => "RANGE_INVALID",
            Error::Upstream(u) => match u {
                UpstreamError::NotFound => "NAME_UNKNOWN",
                UpstreamError::TooManyRequests { .. } => "TOOMANYREQUESTS",
                UpstreamError::Unauthorized => "UNAUTHORIZED",
                UpstreamError::Denied => "DENIED",
                UpstreamError::Status(_)
                | UpstreamError::Unavailable(_)
                | UpstreamError::Protocol(_)
                | UpstreamError::BadContent(_) => "UNAVAILABLE",
            },
            Error::Internal(_) => "UNKNOWN",
        }
    }

    /// Which side is at fault.
    pub fn side(&self) -> Side {
        match self {
            Error::Invalid(_)
            | Error::UnknownUpstream(_)
            | Error::ManifestUnknown
            | Error::BlobUnknown
            | Error::ManifestNotAcceptable(_)
            | Error::Unsupported
            | Error::NotFound
            | Error::Malformed(_)
            | Error::HeadersTooLarge
            | Error::HeaderTimeout
            | Error::RangeNotSatisfiable { .. } => Side::Client,
            Error::Upstream(_) => Side::Upstream,
            Error::Internal(_) => Side::Internal,
        }
    }

    /// Seconds for a `Retry-After` header, when upstream gave one.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            Error::Upstream(UpstreamError::TooManyRequests { retry_after }) => *retry_after,
            _ => None,
        }
    }

    /// The OCI error body.
    pub fn to_json(&self) -> String {
        let error = serde_json::json!({
            "code": self.code(),
            "message": self.to_string(),
            "detail": serde_json::Value::Null,
        });
        serde_json::json!({ "errors": [error] }).to_string()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Invalid(Invalid::Name(why)) => write!(f, "invalid repository name: {why}"),
            Error::Invalid(Invalid::Tag) => f.write_str("invalid tag"),
            Error::Invalid(Invalid::Digest) => {
                f.write_str("invalid digest: expected sha256:<64 lowercase hex>")
            }
            Error::UnknownUpstream(ns) => write!(
                f,
                "upstream registry {ns:?} is not configured on this mirror"
            ),
            Error::ManifestUnknown => f.write_str("manifest unknown"),
            Error::BlobUnknown => f.write_str("blob unknown"),
            Error::ManifestNotAcceptable(t) => {
                write!(f, "manifest is {t}, which the Accept header excludes")
            }
            Error::Unsupported => {
                f.write_str("this registry is a read-only mirror: only GET and HEAD are supported")
            }
            Error::NotFound => f.write_str("not a registry API path"),
            Error::Malformed(m) => write!(f, "malformed HTTP request: {m}"),
            Error::HeadersTooLarge => f.write_str("request headers larger than 8 KiB"),
            Error::HeaderTimeout => f.write_str("request headers not received in time"),
            Error::RangeNotSatisfiable { size } => {
                write!(f, "range not satisfiable for a blob of {size} bytes")
            }
            Error::Upstream(u) => u.fmt(f),
            Error::Internal(e) => write!(f, "internal error: {e}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<Invalid> for Error {
    fn from(i: Invalid) -> Error {
        Error::Invalid(i)
    }
}

impl From<UpstreamError> for Error {
    fn from(u: UpstreamError) -> Error {
        Error::Upstream(u)
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Error {
        Error::Internal(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_faults_are_4xx_and_others_5xx_or_passthrough() {
        let cases: Vec<(Error, u16, &str)> = vec![
            (Error::Invalid(Invalid::Digest), 400, "DIGEST_INVALID"),
            (Error::Invalid(Invalid::Name("x")), 400, "NAME_INVALID"),
            (Error::Unsupported, 405, "UNSUPPORTED"),
            (Error::BlobUnknown, 404, "BLOB_UNKNOWN"),
            (Error::ManifestUnknown, 404, "MANIFEST_UNKNOWN"),
            (
                Error::UnknownUpstream("evil.example".into()),
                404,
                "NAME_UNKNOWN",
            ),
            (
                UpstreamError::TooManyRequests {
                    retry_after: Some(7),
                }
                .into(),
                429,
                "TOOMANYREQUESTS",
            ),
            (
                UpstreamError::Unavailable("timeout".into()).into(),
                503,
                "UNAVAILABLE",
            ),
            (
                UpstreamError::BadContent("digest".into()).into(),
                502,
                "UNAVAILABLE",
            ),
        ];
        for (e, status, code) in cases {
            assert_eq!((e.status(), e.code()), (status, code), "{e}");
            assert_eq!(e.side() == Side::Client, status < 429, "{e}");
        }
    }

    #[test]
    fn json_body_has_the_oci_shape() {
        let e: Error = UpstreamError::TooManyRequests {
            retry_after: Some(7),
        }
        .into();
        let v: serde_json::Value = serde_json::from_str(&e.to_json()).unwrap();
        assert_eq!(v["errors"][0]["code"], "TOOMANYREQUESTS");
        assert_eq!(e.retry_after(), Some(7));
    }
}
