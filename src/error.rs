//! The one error type of the request path, and its exhaustive mapping to an HTTP status, an
//! OCI error code and the side at fault.
//!
//! Every handler returns `Result<Reply, Error>`; `routes` turns an `Error` into an OCI error
//! response (`{"errors":[{"code":…,"message":…,"detail":…}]}`), so the HTTP layer never sees
//! an `Err` and never drops a connection without an answer.

use crate::http::Status;
use crate::media_type::MediaType;
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
///
/// Every message names the host that failed (`host[:port]`, the upstream or a host it sent
/// us to) and the cause: it reaches the client's error message. Only `NotFound` carries
/// none: the mirror answers it with its own "unknown" error for the object asked for.
#[derive(Debug, Clone)]
pub enum UpstreamError {
    /// Upstream answered 404 for the manifest or blob.
    NotFound,
    /// Upstream rate-limited us (Docker Hub's pull limit); seconds to wait if it said.
    TooManyRequests {
        /// `Retry-After` in seconds.
        retry_after: Option<u64>,
        /// Who said so.
        host: String,
    },
    /// Upstream still said 401 after the token flow (bad or missing credentials), or a host
    /// we were redirected to asked for credentials (it gets none). Says who and why.
    Unauthorized(String),
    /// Upstream (or its token server) said 403. Says who.
    Denied(String),
    /// Any other unexpected status, and the host that answered it.
    Status(Status, String),
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
            UpstreamError::TooManyRequests { retry_after, host } => {
                write!(f, "upstream {host}: too many requests (rate limited)")?;
                match retry_after {
                    Some(s) => write!(f, ", retry after {s}s"),
                    None => Ok(()),
                }
            }
            UpstreamError::Unauthorized(m) => write!(f, "upstream authentication failed: {m}"),
            UpstreamError::Denied(m) => write!(f, "upstream access denied: {m}"),
            UpstreamError::Status(s, host) => write!(f, "upstream {host}: unexpected status {s}"),
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
    ManifestNotAcceptable(MediaType),
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
    /// A method RFC 9110 does not define (methods are case-sensitive: `get` is one).
    NotImplemented(String),
    /// Every connection slot is writing a reply; the client may retry at once.
    Busy,
    /// `Range` outside the blob.
    RangeNotSatisfiable {
        /// The blob's full length, for `Content-Range: bytes */len`.
        size: u64,
    },
    /// The upstream failed; see [`UpstreamError`].
    Upstream(UpstreamError),
    /// Local I/O failed.
    Internal(std::io::Error),
    /// The client's address is outside `--allow`.
    AddressDenied(std::net::IpAddr),
    /// `--htpasswd` is set and the request has no valid Basic credentials (`true`: it had
    /// credentials, and they are wrong). Answered with a Basic challenge.
    Unauthenticated(bool),
    /// New credentials while the bcrypt checks of this minute are used up.
    AuthThrottled,
    /// An admin action, but the mirror was started without `--admin-token-file`.
    AdminOff,
    /// An admin action without the admin token (`false`) or with a wrong one (`true`).
    AdminToken(bool),
    /// An admin action with a method other than POST.
    AdminMethod,
    /// An admin action the mirror's state refuses (evicting a pinned image, unpinning one
    /// the keep list holds, a full queue); the message says what to do instead.
    AdminRefused(String),
}

/// What a request was about: names the OCI code of a failure that is not the client's
/// (upstream unreachable, our disk failed). The distribution spec lists no code for those,
/// so the reply says which object is unavailable and the status and message say why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Subject {
    /// A manifest (by tag or digest).
    Manifest,
    /// A blob.
    Blob,
    /// A repository (`tags/list`, referrers).
    Repository,
    /// Anything else (the mirror's own pages, a request we could not parse).
    Other,
}

impl Error {
    /// The HTTP status.
    pub fn status(&self) -> Status {
        match self {
            Error::Invalid(Invalid::Tag) => Status::NOT_FOUND,
            Error::Invalid(_) => Status::BAD_REQUEST,
            Error::UnknownUpstream(_) => Status::NOT_FOUND,
            Error::ManifestUnknown | Error::BlobUnknown | Error::NotFound => Status::NOT_FOUND,
            Error::ManifestNotAcceptable(_) => Status::NOT_FOUND,
            Error::Unsupported => Status::METHOD_NOT_ALLOWED,
            Error::Malformed(_) => Status::BAD_REQUEST,
            Error::HeadersTooLarge => Status::HEADERS_TOO_LARGE,
            Error::HeaderTimeout => Status::REQUEST_TIMEOUT,
            Error::NotImplemented(_) => Status::NOT_IMPLEMENTED,
            Error::Busy => Status::SERVICE_UNAVAILABLE,
            Error::RangeNotSatisfiable { .. } => Status::RANGE_NOT_SATISFIABLE,
            Error::Upstream(u) => match u {
                UpstreamError::NotFound => Status::NOT_FOUND,
                UpstreamError::TooManyRequests { .. } => Status::TOO_MANY_REQUESTS,
                UpstreamError::Unauthorized(_) => Status::UNAUTHORIZED,
                UpstreamError::Denied(_) => Status::FORBIDDEN,
                UpstreamError::Status(..)
                | UpstreamError::Protocol(_)
                | UpstreamError::BadContent(_) => Status::BAD_GATEWAY,
                UpstreamError::Unavailable(_) => Status::SERVICE_UNAVAILABLE,
            },
            Error::Internal(_) => Status::INTERNAL_SERVER_ERROR,
            Error::AddressDenied(_) => Status::FORBIDDEN,
            Error::Unauthenticated(_) => Status::UNAUTHORIZED,
            Error::AuthThrottled => Status::TOO_MANY_REQUESTS,
            Error::AdminOff => Status::FORBIDDEN,
            Error::AdminToken(_) => Status::UNAUTHORIZED,
            Error::AdminMethod => Status::METHOD_NOT_ALLOWED,
            Error::AdminRefused(_) => Status::CONFLICT,
        }
    }

    /// The OCI error code: one of the distribution spec's list, for a request about
    /// `subject`.
    pub fn code(&self, subject: Subject) -> &'static str {
        let unavailable = match subject {
            Subject::Manifest => "MANIFEST_UNKNOWN",
            Subject::Blob => "BLOB_UNKNOWN",
            Subject::Repository => "NAME_UNKNOWN",
            Subject::Other => "UNSUPPORTED",
        };
        match self {
            Error::Invalid(Invalid::Name(_)) => "NAME_INVALID",
            // distribution-spec 1.1 lists only 404 for a manifest that cannot be found, and
            // a malformed tag names no manifest.
            Error::Invalid(Invalid::Tag) => "MANIFEST_UNKNOWN",
            Error::Invalid(Invalid::Digest) => "DIGEST_INVALID",
            Error::UnknownUpstream(_) => "NAME_UNKNOWN",
            Error::ManifestUnknown | Error::ManifestNotAcceptable(_) => "MANIFEST_UNKNOWN",
            Error::BlobUnknown => "BLOB_UNKNOWN",
            Error::Unsupported
            | Error::NotFound
            | Error::Malformed(_)
            | Error::HeadersTooLarge
            | Error::HeaderTimeout
            | Error::NotImplemented(_)
            | Error::RangeNotSatisfiable { .. } => "UNSUPPORTED",
            Error::Busy => "TOOMANYREQUESTS",
            Error::Upstream(u) => match u {
                UpstreamError::NotFound => unavailable,
                UpstreamError::TooManyRequests { .. } => "TOOMANYREQUESTS",
                UpstreamError::Unauthorized(_) => "UNAUTHORIZED",
                UpstreamError::Denied(_) => "DENIED",
                UpstreamError::Status(..)
                | UpstreamError::Unavailable(_)
                | UpstreamError::Protocol(_)
                | UpstreamError::BadContent(_) => unavailable,
            },
            Error::Internal(_) => unavailable,
            Error::AddressDenied(_) => "DENIED",
            Error::Unauthenticated(_) => "UNAUTHORIZED",
            Error::AuthThrottled => "TOOMANYREQUESTS",
            Error::AdminOff | Error::AdminRefused(_) => "DENIED",
            Error::AdminToken(_) => "UNAUTHORIZED",
            Error::AdminMethod => "UNSUPPORTED",
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
            | Error::NotImplemented(_)
            | Error::RangeNotSatisfiable { .. }
            | Error::AddressDenied(_)
            | Error::Unauthenticated(_) => Side::Client,
            // Our own throttle, like Busy: worth a warning.
            Error::AuthThrottled => Side::Internal,
            Error::AdminOff
            | Error::AdminToken(_)
            | Error::AdminMethod
            | Error::AdminRefused(_) => Side::Client,
            Error::Upstream(_) => Side::Upstream,
            Error::Busy => Side::Internal,
            Error::Internal(_) => Side::Internal,
        }
    }

    /// Seconds for a `Retry-After` header, when upstream gave one.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            Error::Upstream(UpstreamError::TooManyRequests { retry_after, .. }) => *retry_after,
            Error::Busy => Some(1),
            Error::AuthThrottled => Some(htpasswd_retry_secs()),
            _ => None,
        }
    }

    /// The OCI error body for a request about `subject`.
    pub fn to_json(&self, subject: Subject) -> String {
        let error = serde_json::json!({
            "code": self.code(subject),
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
            Error::NotImplemented(m) => write!(
                f,
                "method {m:.32} is not implemented (methods are case-sensitive)"
            ),
            Error::Busy => f.write_str("every connection is busy; retry"),
            Error::RangeNotSatisfiable { size } => {
                write!(f, "range not satisfiable for a blob of {size} bytes")
            }
            Error::Upstream(u) => u.fmt(f),
            Error::Internal(e) => write!(f, "internal error: {e}"),
            Error::AddressDenied(ip) => write!(
                f,
                "{ip} may not use this mirror: only addresses in --allow may (by default \
                 loopback and private ones); to admit it, start regmirror with \
                 --allow private --allow {ip} (or an `allow =` line in its configuration file)"
            ),
            Error::Unauthenticated(false) => {
                f.write_str("authentication required: this mirror needs a user and password")
            }
            Error::Unauthenticated(true) => {
                f.write_str("authentication failed: wrong user or password for this mirror")
            }
            Error::AuthThrottled => {
                f.write_str("too many new credentials to check right now; retry in a minute")
            }
            Error::AdminOff => f.write_str(
                "admin actions are switched off on this mirror: start it with \
                 --admin-token-file FILE (FILE holding a secret of at least 16 characters, \
                 readable only by regmirror) and send that secret as \
                 Authorization: Bearer <secret>",
            ),
            Error::AdminToken(false) => f.write_str(
                "admin actions need the secret in the mirror's --admin-token-file, sent as \
                 Authorization: Bearer <secret>",
            ),
            Error::AdminToken(true) => f.write_str(
                "wrong admin token: send the secret in the mirror's --admin-token-file as \
                 Authorization: Bearer <secret>",
            ),
            Error::AdminMethod => f.write_str("admin actions are POST requests"),
            Error::AdminRefused(why) => f.write_str(why),
        }
    }
}

impl std::error::Error for Error {}

/// `Retry-After` for [`Error::AuthThrottled`]: the throttle's window.
fn htpasswd_retry_secs() -> u64 {
    crate::access::htpasswd::CHECK_WINDOW.as_secs()
}

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
mod tests;
