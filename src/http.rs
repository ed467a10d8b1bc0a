//! Our own request and reply types, so that only `server.rs` (and `upstream/`) know async-h1
//! and http-types — both unmaintained, both replaceable without touching the pull logic.
//! Also the `Range` header parser.

use futures_lite::AsyncRead;
use std::fmt;
use std::fs::File;
use std::sync::Arc;

/// Request methods we tell apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Method {
    /// GET
    Get,
    /// HEAD
    Head,
    /// Anything else (all refused on registry paths: this mirror is pull-only).
    Other(String),
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
    /// The `Range` header.
    pub range: Option<String>,
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
    /// A streamed body of known length (a fill in progress, an uncached pass-through).
    Stream(Box<dyn AsyncRead + Unpin>, u64),
}

impl fmt::Debug for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Body::Empty => f.write_str("Empty"),
            Body::Bytes(b) => write!(f, "Bytes({})", b.len()),
            Body::File { start, len, .. } => write!(f, "File({start}+{len})"),
            Body::Stream(_, n) => write!(f, "Stream({n})"),
        }
    }
}

/// A reply, before the server encodes it.
#[derive(Debug)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// Headers besides `Content-Length`, which the server derives from the body.
    pub headers: Vec<(&'static str, String)>,
    /// The body.
    pub body: Body,
    /// For HEAD: the length the GET would have, sent as `Content-Length`.
    pub head_len: Option<u64>,
    /// Cache outcome for the log.
    pub outcome: Outcome,
}

impl Reply {
    /// A reply with a status and body, no extra headers.
    pub fn new(status: u16, body: Body) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body,
            head_len: None,
            outcome: Outcome::None,
        }
    }

    /// A JSON reply.
    pub fn json(status: u16, json: String) -> Reply {
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
        let len = match &self.body {
            Body::Empty => 0,
            Body::Bytes(b) => b.len() as u64,
            Body::File { len, .. } | Body::Stream(_, len) => *len,
        };
        self.head_len = Some(self.head_len.unwrap_or(len));
        self.body = Body::Empty;
        self
    }
}

/// A satisfiable byte range, `end` exclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    /// First byte.
    pub start: u64,
    /// One past the last byte.
    pub end: u64,
}

/// What a `Range` header asks of a blob of `total` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeAnswer {
    /// Send everything with 200 (no header, or one we don't honour, like multiple ranges).
    Full,
    /// Send this part with 206.
    Partial(ByteRange),
    /// 416.
    Unsatisfiable,
}

/// Parses `bytes=a-b`, `bytes=a-`, `bytes=-n` against a blob of `total` bytes.
pub fn parse_range(header: Option<&str>, total: u64) -> RangeAnswer {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return RangeAnswer::Full;
    };
    if spec.contains(',') {
        return RangeAnswer::Full;
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return RangeAnswer::Full;
    };
    let (a, b) = (a.trim(), b.trim());
    let range = if a.is_empty() {
        // Suffix: the last n bytes.
        let Ok(n) = b.parse::<u64>() else {
            return RangeAnswer::Full;
        };
        if n == 0 || total == 0 {
            return RangeAnswer::Unsatisfiable;
        }
        ByteRange {
            start: total.saturating_sub(n),
            end: total,
        }
    } else {
        let Ok(start) = a.parse::<u64>() else {
            return RangeAnswer::Full;
        };
        let end = match b {
            "" => total,
            b => match b.parse::<u64>() {
                Ok(last) if last >= start => (last + 1).min(total),
                _ => return RangeAnswer::Full,
            },
        };
        if start >= total {
            return RangeAnswer::Unsatisfiable;
        }
        ByteRange { start, end }
    };
    RangeAnswer::Partial(range)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(start: u64, end: u64) -> RangeAnswer {
        RangeAnswer::Partial(ByteRange { start, end })
    }

    #[test]
    fn ranges() {
        assert_eq!(parse_range(None, 100), RangeAnswer::Full);
        assert_eq!(parse_range(Some("bytes=0-9"), 100), part(0, 10));
        assert_eq!(parse_range(Some("bytes=90-"), 100), part(90, 100));
        assert_eq!(parse_range(Some("bytes=90-500"), 100), part(90, 100));
        assert_eq!(parse_range(Some("bytes=-10"), 100), part(90, 100));
        assert_eq!(parse_range(Some("bytes=-500"), 100), part(0, 100));
        assert_eq!(
            parse_range(Some("bytes=100-"), 100),
            RangeAnswer::Unsatisfiable
        );
        assert_eq!(
            parse_range(Some("bytes=-0"), 100),
            RangeAnswer::Unsatisfiable
        );
        assert_eq!(parse_range(Some("bytes=5-3"), 100), RangeAnswer::Full);
        assert_eq!(parse_range(Some("bytes=0-1,5-6"), 100), RangeAnswer::Full);
        assert_eq!(parse_range(Some("items=0-1"), 100), RangeAnswer::Full);
    }

    #[test]
    fn query_params() {
        let r = Request::get("/v2/x/manifests/y?ns=docker.io&n=3");
        assert_eq!(r.query_param("ns"), Some("docker.io"));
        assert_eq!(r.query_param("n"), Some("3"));
        assert_eq!(r.query_param("last"), None);
        assert_eq!(r.path, "/v2/x/manifests/y");
    }
}
