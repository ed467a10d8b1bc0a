//! What upstream calls return: [`Manifest`], [`BlobStream`], [`RegistryStatus`].

use crate::media_type::MediaType;
use crate::reference::Digest;
use futures_lite::AsyncRead;
use std::fmt;
use std::time::SystemTime;

/// A manifest as upstream described it.
#[derive(Clone, PartialEq, Eq)]
pub struct Manifest {
    /// Its digest: verified against the body on GET; from `Docker-Content-Digest` on HEAD.
    pub digest: Digest,
    /// `Content-Type` without parameters.
    pub media_type: MediaType,
    /// Body length in bytes.
    pub length: u64,
    /// The raw bytes (GET), `None` for HEAD.
    pub body: Option<Vec<u8>>,
}

impl fmt::Debug for Manifest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Manifest")
            .field("digest", &self.digest)
            .field("media_type", &self.media_type)
            .field("length", &self.length)
            .field(
                "body",
                &self.body.as_ref().map(|b| format!("<{} bytes>", b.len())),
            )
            .finish()
    }
}

/// A blob body on its way from upstream.
///
/// `body` fails with an `io::Error` when the connection resets, when upstream is silent for
/// the upstream timeout (`TimedOut`), when it ends before `Content-Length` bytes or before
/// the last chunk (`UnexpectedEof`), or when its chunked framing is malformed
/// (`InvalidData`); a clean end of stream means every promised byte arrived. Each message
/// names the host. The digest is not checked here: the reader of the stream hashes it.
///
/// The body reports to its upstream's circuit breaker by itself: its first bytes (or a
/// clean end) count as a success, its first read error (other than `InvalidData`) as a
/// failure, so a caller needs to do nothing for a stalled upstream to open the breaker.
pub struct BlobStream {
    /// Position in the blob of the first body byte: the asked offset on 206, 0 when
    /// upstream ignored `Range` and sent the whole blob (200).
    pub offset: u64,
    /// The whole blob's length, if upstream said (`Content-Length` on 200, the total of
    /// `Content-Range` on 206).
    pub total: Option<u64>,
    /// The bytes from `offset` on.
    pub body: Box<dyn AsyncRead + Unpin>,
}

impl fmt::Debug for BlobStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlobStream")
            .field("offset", &self.offset)
            .field("total", &self.total)
            .finish()
    }
}

/// What `/_regmirror/status` and the logs show about an upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryStatus {
    /// Its name (`docker.io`).
    pub name: String,
    /// Where it is (`https://registry-1.docker.io:443`).
    pub url: String,
    /// The circuit breaker is closed: requests go out.
    pub available: bool,
    /// Failures since the last success.
    pub consecutive_failures: u32,
    /// The most recent failure that counted against the breaker (no answer, timeout,
    /// reset, 5xx, a blob body cut or stalled): why the circuit is open, when it is. Kept
    /// after a success, so the page can say what went wrong last.
    pub last_failure: Option<Failure>,
    /// The last `ratelimit-limit` header seen (Docker Hub: `"100;w=21600"`) and when.
    pub ratelimit_limit: Option<Seen>,
    /// The last `ratelimit-remaining` header seen (Docker Hub: `"76;w=21600"`) and when.
    pub ratelimit_remaining: Option<Seen>,
}

/// A failure of an upstream: what happened (the error's message, naming the host) and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The error message.
    pub cause: String,
    /// When it happened (wall clock, for display).
    pub at: SystemTime,
}

/// A header value an upstream sent and when it was last seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    /// The value as sent.
    pub value: String,
    /// When it was received (wall clock, for display).
    pub at: SystemTime,
}
