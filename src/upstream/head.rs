//! An upstream answer's head, from bytes: where it ends, its status line and header fields
//! (parsed with httparse), and how its body is framed (RFC 9112 §6.3). Pure functions over
//! bytes, no I/O, so that they can be fuzzed; `wire.rs` does the reading.
//!
//! Any byte sequence gives a [`Head`] or a [`HeadError`], never a panic: header values may
//! hold any bytes httparse accepts (obs-text included) and are kept as lossy UTF-8.

use crate::http::Status;
use std::fmt;

/// Largest response head read, 1xx heads each counted alone. Registries and CDNs send heads
/// of 0.5–4 KiB (S3 and CloudFront are the longest); 32 KiB is far above any real one and
/// bounds what a broken or hostile upstream (or a redirect target) makes us hold per request.
pub const MAX_RESPONSE_HEAD_BYTES: usize = 32 << 10;

/// Most header lines in one response head (httparse parses into a fixed array). Real heads
/// carry 10–30.
pub(crate) const MAX_RESPONSE_HEADERS: usize = 128;

/// A parsed response head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Head {
    pub(crate) status: Status,
    pub(crate) headers: Headers,
}

/// Header fields in arrival order: names lower-cased, values trimmed and lossy UTF-8.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Headers(Vec<(String, String)>);

impl Headers {
    /// The last value of `name` (lower case).
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `name` (lower case), in order.
    pub(crate) fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    #[cfg(test)]
    pub(crate) fn from_pairs(pairs: &[(&str, &str)]) -> Headers {
        Headers(
            pairs
                .iter()
                .map(|(n, v)| (n.to_ascii_lowercase(), (*v).to_owned()))
                .collect(),
        )
    }
}

/// Why a head could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HeadError {
    /// Not HTTP/1.x: httparse's reason.
    Malformed(&'static str),
    /// More than [`MAX_RESPONSE_HEADERS`] lines.
    TooManyHeaders,
    /// A status code outside 100–599.
    BadStatus(u16),
}

impl fmt::Display for HeadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HeadError::Malformed(why) => write!(f, "malformed response head ({why})"),
            HeadError::TooManyHeaders => write!(
                f,
                "more than {MAX_RESPONSE_HEADERS} header lines in the response head"
            ),
            HeadError::BadStatus(c) => write!(f, "malformed response head (status {c})"),
        }
    }
}

/// The length of the head at the start of `buf` (up to and including its blank line), if
/// `buf` holds all of it. `searched` bytes were already looked at without finding the end,
/// so a head arriving in small reads is scanned once, not once per read.
pub(crate) fn head_end(buf: &[u8], searched: usize) -> Option<usize> {
    let from = searched.saturating_sub(2).min(buf.len());
    let mut i = from;
    while let Some(off) = buf[i..].iter().position(|&b| b == b'\n') {
        let lf = i + off;
        match buf.get(lf + 1..) {
            Some([b'\n', ..]) => return Some(lf + 2),
            Some([b'\r', b'\n', ..]) => return Some(lf + 3),
            _ => i = lf + 1,
        }
    }
    None
}

/// Parses a whole head (`head_end` bytes of it). Header names are lower-cased.
pub(crate) fn parse_head(bytes: &[u8]) -> Result<Head, HeadError> {
    let mut slots = [httparse::EMPTY_HEADER; MAX_RESPONSE_HEADERS];
    let mut res = httparse::Response::new(&mut slots);
    match res.parse(bytes) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => return Err(HeadError::Malformed("incomplete")),
        Err(e) => {
            return Err(match e {
                httparse::Error::TooManyHeaders => HeadError::TooManyHeaders,
                httparse::Error::HeaderName => HeadError::Malformed("invalid header name"),
                httparse::Error::HeaderValue => HeadError::Malformed("invalid header value"),
                httparse::Error::NewLine => HeadError::Malformed("invalid line end"),
                httparse::Error::Status => HeadError::Malformed("invalid status"),
                httparse::Error::Token => HeadError::Malformed("invalid token"),
                httparse::Error::Version => HeadError::Malformed("not HTTP/1.x"),
            })
        }
    }
    let code = res.code.unwrap_or(0);
    let status = Status::new(code).ok_or(HeadError::BadStatus(code))?;
    let headers = res
        .headers
        .iter()
        .map(|h| {
            let value = String::from_utf8_lossy(h.value);
            (h.name.to_ascii_lowercase(), value.trim().to_owned())
        })
        .collect();
    Ok(Head {
        status,
        headers: Headers(headers),
    })
}

/// How an answer's body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    /// No body (an answer to HEAD, 204, 304).
    Empty,
    /// Exactly this many bytes.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Until the connection closes (no length given; HTTP/1.0 style).
    UntilClose,
}

/// The framing of an answer to a request that was (`head`) or was not a HEAD, per RFC 9112
/// §6.3. A transfer coding other than plain `chunked` (we ask for none) and conflicting or
/// malformed `Content-Length` values are errors: either would make us misread the body.
pub(crate) fn framing(head: &Head, request_was_head: bool) -> Result<Framing, String> {
    let s = head.status.code();
    if request_was_head || s < 200 || s == 204 || s == 304 {
        return Ok(Framing::Empty);
    }
    let codings: Vec<&str> = head
        .headers
        .all("transfer-encoding")
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect();
    if !codings.is_empty() {
        return match codings[..] {
            [c] if c.eq_ignore_ascii_case("chunked") => Ok(Framing::Chunked),
            _ => Err(format!(
                "unsupported Transfer-Encoding {:?}",
                codings.join(", ")
            )),
        };
    }
    let mut length = None;
    for v in head
        .headers
        .all("content-length")
        .flat_map(|v| v.split(','))
    {
        let n = parse_decimal(v.trim()).ok_or_else(|| format!("bad Content-Length {v:?}"))?;
        if length.is_some_and(|l| l != n) {
            return Err("conflicting Content-Length values".into());
        }
        length = Some(n);
    }
    Ok(length.map_or(Framing::UntilClose, Framing::Length))
}

/// `1*DIGIT` as a u64 with checked arithmetic: no sign, no spaces, no overflow.
pub(crate) fn parse_decimal(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.bytes().try_fold(0u64, |n, b| {
        n.checked_mul(10)?.checked_add(u64::from(b - b'0'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::upstream::testing::Rng;

    fn head(bytes: &[u8]) -> Result<Head, HeadError> {
        let end = head_end(bytes, 0).expect("a whole head");
        parse_head(&bytes[..end])
    }

    #[test]
    fn heads_end_at_the_first_blank_line_crlf_or_bare_lf() {
        assert_eq!(head_end(b"HTTP/1.1 200 OK\r\n\r\nbody", 0), Some(19));
        assert_eq!(head_end(b"HTTP/1.1 200 OK\n\nbody", 0), Some(17));
        assert_eq!(head_end(b"HTTP/1.1 200 OK\r\nA: b\r\n", 0), None);
        assert_eq!(head_end(b"", 0), None);
        // Found across reads: the first read ended inside the blank line.
        let whole = b"HTTP/1.1 200 OK\r\nA: b\r\n\r\n";
        for split in 0..whole.len() {
            assert_eq!(head_end(&whole[..split], 0), None, "{split}");
            assert_eq!(head_end(whole, split), Some(whole.len()), "{split}");
        }
    }

    #[test]
    fn status_and_headers_with_any_value_bytes() {
        let h = head(b"HTTP/1.1 206 Partial\r\nContent-Range:  bytes 0-1/2 \r\nX-Name: caf\xc3\xa9\r\nX-Bin: \xff\r\n\r\n").unwrap();
        assert_eq!(h.status, Status::PARTIAL_CONTENT);
        assert_eq!(h.headers.get("content-range"), Some("bytes 0-1/2"));
        assert_eq!(h.headers.get("x-name"), Some("caf\u{e9}"));
        assert_eq!(h.headers.get("x-bin"), Some("\u{fffd}"));
        assert!(head(b"HTTP/1.0 200 OK\n\n").is_ok());
    }

    #[test]
    fn malformed_heads_are_errors() {
        for bad in [
            &b"SSH-2.0-x\r\n\r\n"[..],
            b"HTTP/1.1 2000 OK\r\n\r\n",
            b"HTTP/1.1 099 Low\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nNo colon\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nX: a\x00b\r\n\r\n",
            b"HTTP/2 200\r\n\r\n",
            b"\r\n\r\n",
        ] {
            assert!(head(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
        let mut many = b"HTTP/1.1 200 OK\r\n".to_vec();
        for _ in 0..=MAX_RESPONSE_HEADERS {
            many.extend(b"A: b\r\n");
        }
        many.extend(b"\r\n");
        assert_eq!(head(&many), Err(HeadError::TooManyHeaders));
    }

    fn framing_of(status: u16, pairs: &[(&str, &str)]) -> Result<Framing, String> {
        let head = Head {
            status: Status::new(status).unwrap(),
            headers: Headers::from_pairs(pairs),
        };
        framing(&head, false)
    }

    #[test]
    fn framing_follows_rfc_9112() {
        assert_eq!(framing_of(200, &[]), Ok(Framing::UntilClose));
        assert_eq!(
            framing_of(204, &[("content-length", "5")]),
            Ok(Framing::Empty)
        );
        assert_eq!(framing_of(304, &[]), Ok(Framing::Empty));
        assert_eq!(
            framing_of(200, &[("content-length", "5"), ("content-length", "5, 5")]),
            Ok(Framing::Length(5))
        );
        assert_eq!(
            framing_of(
                200,
                &[("transfer-encoding", "Chunked"), ("content-length", "5")]
            ),
            Ok(Framing::Chunked),
            "Transfer-Encoding wins"
        );
        let ok = Head {
            status: Status::OK,
            headers: Headers::from_pairs(&[("content-length", "5")]),
        };
        assert_eq!(framing(&ok, true), Ok(Framing::Empty), "answer to HEAD");
        for bad in [
            ("content-length", "-1"),
            ("content-length", "+5"),
            ("content-length", "5 5"),
            ("content-length", ""),
            ("content-length", "18446744073709551616"),
            ("transfer-encoding", "gzip, chunked"),
            ("transfer-encoding", "chunked, chunked"),
            ("transfer-encoding", "identity"),
        ] {
            assert!(framing_of(200, &[bad]).is_err(), "{bad:?}");
        }
        assert!(framing_of(200, &[("content-length", "1"), ("content-length", "2")]).is_err());
        assert_eq!(
            framing_of(200, &[("content-length", "18446744073709551615")]),
            Ok(Framing::Length(u64::MAX))
        );
    }

    /// Property: any bytes give a head or an error, never a panic; a found end is within
    /// the input and no earlier than any other search start finds.
    #[test]
    fn random_bytes_never_panic_the_head_parser() {
        let mut rng = Rng::new(0x5eed_0001);
        let valid = b"HTTP/1.1 200 OK\r\nContent-Length: 12\r\nX-A: b\r\n\r\n".to_vec();
        for round in 0..20_000 {
            let bytes = if round % 2 == 0 {
                rng.bytes_upto(200, b"HTTP/1.0 2:\r\n \t\x80\xff;chunked")
            } else {
                rng.mutate(&valid)
            };
            if let Some(end) = head_end(&bytes, 0) {
                assert!(end <= bytes.len());
                // Resuming a search where a shorter read found nothing finds the same end.
                let searched = rng.below(end);
                assert_eq!(head_end(&bytes[..searched], 0), None);
                assert_eq!(head_end(&bytes, searched), Some(end));
                if let Ok(h) = parse_head(&bytes[..end]) {
                    let _ = framing(&h, false);
                }
            }
            let _ = parse_head(&bytes);
        }
    }
}
