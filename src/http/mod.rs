//! Our own request and reply types, so that routes and the pull logic never see the wire.
//! `head.rs` reads a request head from bytes ([`parse_head`], pure, for fuzzing),
//! `status.rs` holds the [`Status`] type, `range.rs` the `Range` header parser.

mod head;
mod range;
mod status;

pub use head::{
    parse_head, BodyLength, Head, HeadError, Headers, Parsed, MAX_HEADERS, MAX_HEAD_BYTES,
};
pub use range::{parse_range, ByteRange, RangeAnswer};
pub use status::Status;

use futures_lite::AsyncRead;
use std::fmt;
use std::fs::File;
use std::io;
use std::sync::Arc;
use std::task::{Context, Poll};

/// Request methods we tell apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Method {
    /// GET
    Get,
    /// HEAD
    Head,
    /// Anything else, exactly as sent (methods are case-sensitive: `get` is not GET). All
    /// refused: this mirror is pull-only.
    Other(String),
}

impl Method {
    /// Whether RFC 9110 (§9) or RFC 5789 (PATCH) defines the method: a known method we do
    /// not allow is 405, an unknown one 501 (RFC 9110 §9.1).
    pub fn is_known(&self) -> bool {
        match self {
            Method::Get | Method::Head => true,
            Method::Other(m) => matches!(
                m.as_str(),
                "POST" | "PUT" | "DELETE" | "CONNECT" | "OPTIONS" | "TRACE" | "PATCH"
            ),
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Other(m) => m,
        })
    }
}

/// A client request, reduced to what the mirror reads.
#[derive(Debug, Clone)]
pub struct Request {
    /// The method.
    pub method: Method,
    /// The percent-encoded path, e.g. `/v2/library/alpine/manifests/latest`.
    pub path: String,
    /// The raw query string without `?`, if any.
    pub query: Option<String>,
    /// Every `Accept` header value, split at commas.
    pub accept: Vec<String>,
    /// The `Range` header (none if it was sent twice or is not text).
    pub range: Option<String>,
    /// The host the client addressed: an absolute-form target's authority, else `Host`.
    /// Validated as a host (no path); never used for routing.
    pub host: Option<String>,
    /// Every header as sent (bounded by the head limit), e.g. `Authorization`.
    pub headers: Headers,
    /// The client's address, set by the server.
    pub peer: Option<std::net::SocketAddr>,
}

impl Request {
    /// A GET of `path_and_query` with no headers (tests, internal use).
    pub fn get(path_and_query: &str) -> Request {
        let (path, query) = match path_and_query.split_once('?') {
            Some((p, q)) => (p.to_owned(), Some(q.to_owned())),
            None => (path_and_query.to_owned(), None),
        };
        Request {
            method: Method::Get,
            path,
            query,
            accept: Vec::new(),
            range: None,
            host: None,
            headers: Headers::default(),
            peer: None,
        }
    }

    /// The value of query parameter `key` (no percent-decoding: our keys' values are
    /// registry names, which never need it).
    pub fn query_param(&self, key: &str) -> Option<&str> {
        self.query
            .as_deref()?
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v)
    }
}

/// How a request was served, for the access log and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// From the cache.
    Hit,
    /// Fetched from upstream by this request.
    Miss,
    /// Joined a fetch another request started.
    Coalesced,
    /// From the cache because upstream failed.
    Stale,
    /// Streamed or relayed from upstream without caching.
    Pass,
    /// Not a cached object (API base, status, errors).
    None,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Outcome::Hit => "HIT",
            Outcome::Miss => "MISS",
            Outcome::Coalesced => "COALESCED",
            Outcome::Stale => "STALE",
            Outcome::Pass => "PASS",
            Outcome::None => "-",
        })
    }
}

/// A reply body.
pub enum Body {
    /// No body; `Content-Length: 0` (or the given length for HEAD, see [`Reply::head_len`]).
    Empty,
    /// A small body in memory (JSON, manifests).
    Bytes(Vec<u8>),
    /// A range of a complete file on disk (a cached blob): sent with `sendfile`.
    File {
        /// The open file.
        file: Arc<File>,
        /// First byte.
        start: u64,
        /// Bytes to send.
        len: u64,
    },
    /// A file a fill is still writing: sent with `sendfile` as its bytes become readable.
    Growing(Growing),
    /// Bytes from elsewhere (an uncached pass-through); `None` length: sent chunked.
    Stream(Box<dyn AsyncRead + Unpin>, Option<u64>),
}

/// A part of a file that is still being written, and how to learn how far it may be read.
pub struct Growing {
    /// The file (a fill's temp file; the same inode once committed).
    pub file: Arc<File>,
    /// First byte to send.
    pub start: u64,
    /// Bytes to send; `None` when the blob's length is not known yet (sent chunked).
    pub len: Option<u64>,
    /// Where the writer stands.
    pub progress: Box<dyn Progress>,
}

impl fmt::Debug for Growing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Growing({}+{:?})", self.start, self.len)
    }
}

/// The writer's side of a [`Growing`] body, as its reader sees it.
pub trait Progress {
    /// How far the file may be read from `pos`: `Ready(Ok(end))` with `end > pos` once
    /// bytes past `pos` may be sent; `Ready(Ok(pos))` when the content ends at `pos`;
    /// `Ready(Err(_))` when the writer failed. Otherwise registers `cx` for a wake-up and
    /// returns `Pending`.
    fn poll_readable(&mut self, pos: u64, cx: &mut Context<'_>) -> Poll<io::Result<u64>>;
}

impl Body {
    /// The body's length, when known before it is sent.
    pub fn len(&self) -> Option<u64> {
        match self {
            Body::Empty => Some(0),
            Body::Bytes(b) => Some(b.len() as u64),
            Body::File { len, .. } => Some(*len),
            Body::Growing(g) => g.len,
            Body::Stream(_, len) => *len,
        }
    }

    /// Whether the body is known to be empty.
    pub fn is_empty(&self) -> bool {
        self.len() == Some(0)
    }
}

impl fmt::Debug for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Body::Empty => f.write_str("Empty"),
            Body::Bytes(b) => write!(f, "Bytes({})", b.len()),
            Body::File { start, len, .. } => write!(f, "File({start}+{len})"),
            Body::Growing(g) => g.fmt(f),
            Body::Stream(_, n) => write!(f, "Stream({n:?})"),
        }
    }
}

/// A reply, before the server encodes it.
#[derive(Debug)]
pub struct Reply {
    /// HTTP status.
    pub status: Status,
    /// Headers besides `Content-Length`, which the server derives from the body.
    pub headers: Vec<(&'static str, String)>,
    /// The body.
    pub body: Body,
    /// For HEAD: the length the GET would have, sent as `Content-Length`.
    pub head_len: Option<u64>,
    /// Cache outcome for the log.
    pub outcome: Outcome,
    /// The configured upstream the request was about, for the per-upstream counters.
    pub upstream: Option<crate::reference::UpstreamName>,
    /// Reason phrase for the status line instead of the standard one: error replies carry
    /// their cause there, because that line is what skopeo, podman and Docker print.
    pub reason: Option<String>,
}

/// Longest reason phrase we send: a status line stays one readable line in a client's error.
pub const MAX_REASON_BYTES: usize = 160;

impl Reply {
    /// A reply with a status and body, no extra headers.
    pub fn new(status: Status, body: Body) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body,
            head_len: None,
            outcome: Outcome::None,
            upstream: None,
            reason: None,
        }
    }

    /// Sets the reason phrase: printable ASCII only (anything else becomes `?`, so no byte
    /// can end the status line), cut at [`MAX_REASON_BYTES`].
    pub fn reason(mut self, text: &str) -> Reply {
        let mut r: String = text
            .chars()
            .map(|c| {
                if c == ' ' || c.is_ascii_graphic() {
                    c
                } else {
                    '?'
                }
            })
            .take(MAX_REASON_BYTES)
            .collect();
        r.truncate(r.trim_end().len());
        self.reason = (!r.is_empty()).then_some(r);
        self
    }

    /// A JSON reply.
    pub fn json(status: Status, json: String) -> Reply {
        Reply::new(status, Body::Bytes(json.into_bytes()))
            .header("Content-Type", "application/json")
    }

    /// Adds a header.
    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Reply {
        self.headers.push((name, value.into()));
        self
    }

    /// Sets the outcome.
    pub fn outcome(mut self, o: Outcome) -> Reply {
        self.outcome = o;
        self
    }

    /// Turns a GET reply into its HEAD form: same headers and length, no body.
    pub fn into_head(mut self) -> Reply {
        self.head_len = self.head_len.or(self.body.len());
        self.body = Body::Empty;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_params() {
        let r = Request::get("/v2/x/manifests/y?ns=docker.io&n=3");
        assert_eq!(r.query_param("ns"), Some("docker.io"));
        assert_eq!(r.query_param("n"), Some("3"));
        assert_eq!(r.query_param("last"), None);
        assert_eq!(r.path, "/v2/x/manifests/y");
    }

    #[test]
    fn reason_phrases_are_one_printable_line() {
        let r = Reply::new(Status::BAD_GATEWAY, Body::Empty)
            .reason("upstream: bad\r\nX-Injected: 1\u{e9}");
        assert_eq!(r.reason.as_deref(), Some("upstream: bad??X-Injected: 1?"));
        let long = "x".repeat(1000);
        let r = Reply::new(Status::BAD_GATEWAY, Body::Empty).reason(&long);
        assert_eq!(r.reason.map(|r| r.len()), Some(MAX_REASON_BYTES));
    }

    #[test]
    fn known_and_unknown_methods() {
        assert!(Method::Other("PUT".into()).is_known());
        assert!(!Method::Other("get".into()).is_known());
        assert!(!Method::Other("FOO".into()).is_known());
    }
}
