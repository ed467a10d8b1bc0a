//! Unit and property tests of [`parse_head`]: examples of each rule, then random bytes and
//! random mutations of valid heads, which must never panic and must never give a head
//! longer than the input or than [`MAX_HEAD_BYTES`].

use super::*;

fn complete(bytes: &[u8]) -> (Head, usize) {
    match parse_head(bytes) {
        Ok(Parsed::Complete { head, len }) => (*head, len),
        other => panic!("{:?} → {other:?}", String::from_utf8_lossy(bytes)),
    }
}

fn refused(bytes: &[u8]) -> HeadError {
    match parse_head(bytes) {
        Err(e) => e,
        other => panic!("{:?} → {other:?}", String::from_utf8_lossy(bytes)),
    }
}

#[test]
fn a_plain_get() {
    let bytes = b"GET /v2/x/manifests/1?ns=ghcr.io HTTP/1.1\r\nHost: pi:5000\r\nAccept: a, b\r\n\
          Accept: c\r\nRange: bytes=0-1\r\n\r\nGET /next";
    let (h, len) = complete(bytes);
    assert_eq!(len, bytes.len() - b"GET /next".len());
    assert_eq!(h.request.method, Method::Get);
    assert_eq!(h.request.path, "/v2/x/manifests/1");
    assert_eq!(h.request.query.as_deref(), Some("ns=ghcr.io"));
    assert_eq!(h.request.host.as_deref(), Some("pi:5000"));
    assert_eq!(h.request.accept, ["a, b", "c"]);
    assert_eq!(h.request.range.as_deref(), Some("bytes=0-1"));
    assert!(h.keep_alive && !h.http10);
    assert_eq!(h.body, BodyLength::None);
}

#[test]
fn partial_heads_ask_for_more_until_the_limit() {
    for cut in 0..40 {
        let full = b"GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n";
        let prefix = &full[..cut.min(full.len() - 1)];
        assert!(matches!(parse_head(prefix), Ok(Parsed::Partial)), "{cut}");
    }
    let mut long = b"GET /".to_vec();
    long.resize(MAX_HEAD_BYTES, b'a');
    assert_eq!(refused(&long), HeadError::TooLarge);
    long.truncate(MAX_HEAD_BYTES - 1);
    assert!(matches!(parse_head(&long), Ok(Parsed::Partial)));
    let many: String = (0..=MAX_HEADERS).map(|i| format!("X-{i}: 1\r\n")).collect();
    let head = format!("GET / HTTP/1.1\r\nHost: x\r\n{many}\r\n");
    assert_eq!(refused(head.as_bytes()), HeadError::TooLarge);
}

#[test]
fn http10_keep_alive_only_when_asked_and_connection_close() {
    let (h, _) = complete(b"GET /v2/ HTTP/1.0\r\n\r\n");
    assert!(h.http10 && !h.keep_alive && h.request.host.is_none());
    let (h, _) = complete(b"GET /v2/ HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n");
    assert!(h.keep_alive);
    let (h, _) = complete(b"GET /v2/ HTTP/1.1\r\nHost: x\r\nConnection: foo, close\r\n\r\n");
    assert!(!h.keep_alive);
}

#[test]
fn methods_are_case_sensitive_tokens() {
    let (h, _) = complete(b"get / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(h.request.method, Method::Other("get".into()));
    let (h, _) = complete(b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(h.request.method, Method::Head);
}

#[test]
fn targets_route_by_path_alone() {
    let (h, _) = complete(b"GET http://Other:80/v2/?a=b HTTP/1.1\r\nHost: pi\r\n\r\n");
    assert_eq!(
        (h.request.path.as_str(), h.request.query.as_deref()),
        ("/v2/", Some("a=b"))
    );
    assert_eq!(h.request.host.as_deref(), Some("Other:80"));
    let (h, _) = complete(b"GET https://pi HTTP/1.1\r\nHost: pi\r\n\r\n");
    assert_eq!(h.request.path, "/");
    let (h, _) = complete(b"OPTIONS * HTTP/1.1\r\nHost: pi\r\n\r\n");
    assert_eq!(h.request.path, "*");
    for bad in [
        &b"GET v2/ HTTP/1.1\r\nHost: x\r\n\r\n"[..],
        b"GET * HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET http://u@h/ HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET http:///v2/ HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /v2/#frag HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /caf\xc3\xa9 HTTP/1.1\r\nHost: x\r\n\r\n",
        b"CONNECT pi:443 HTTP/1.1\r\nHost: pi\r\n\r\n",
    ] {
        assert!(matches!(refused(bad), HeadError::Malformed(_)), "{bad:?}");
    }
}

#[test]
fn host_rules() {
    for bad in [
        &b"GET / HTTP/1.1\r\n\r\n"[..],
        b"GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: e/v2/library/x/manifests/1?\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: u@h\r\n\r\n",
    ] {
        assert!(matches!(refused(bad), HeadError::Malformed(_)), "{bad:?}");
    }
    let (h, _) = complete(b"GET / HTTP/1.1\r\nHost: [::1]:5000\r\n\r\n");
    assert_eq!(h.request.host.as_deref(), Some("[::1]:5000"));
}

#[test]
fn bodies_are_framed_one_way_only() {
    let (h, _) = complete(b"PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: 12\r\n\r\n");
    assert_eq!(h.body, BodyLength::Length(12));
    let (h, _) = complete(b"PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n");
    assert_eq!(h.body, BodyLength::None);
    let (h, _) = complete(
        b"PUT / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\nExpect: 100-Continue\r\n\r\n",
    );
    assert_eq!(h.body, BodyLength::Chunked);
    assert!(h.expect_continue);
    for bad in [
        &b"PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"[..],
        b"PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: +1\r\n\r\n",
        b"PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: 1, 1\r\n\r\n",
        b"PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n\r\n",
        b"PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"PUT / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
        b"PUT / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
    ] {
        assert!(matches!(refused(bad), HeadError::Malformed(_)), "{bad:?}");
    }
}

#[test]
fn bare_lf_is_refused_even_before_the_head_is_complete() {
    assert!(matches!(
        refused(b"GET / HTTP/1.1\n"),
        HeadError::Malformed(_)
    ));
    assert!(matches!(
        refused(b"GET / HTTP/1.1\r\nHost: x\n\r\n"),
        HeadError::Malformed(_)
    ));
    // A bare LF in what follows a complete head is the next request's business.
    let (_, len) = complete(b"GET / HTTP/1.1\r\nHost: x\r\n\r\nA\nB");
    assert_eq!(len, 27);
}

#[test]
fn obs_text_values_are_kept_as_bytes_and_read_only_as_text() {
    let (h, _) = complete(b"GET / HTTP/1.1\r\nHost: x\r\nUser-Agent: caf\xc3\xa9 \xff\r\n\r\n");
    assert_eq!(h.request.headers.get("user-agent"), None, "not UTF-8");
    let (h, _) = complete(b"GET / HTTP/1.1\r\nHost: x\r\nX-Name: caf\xc3\xa9\r\n\r\n");
    assert_eq!(h.request.headers.get("x-name"), Some("café"));
}

#[test]
fn credentials_do_not_show_in_debug() {
    let (h, _) = complete(b"GET / HTTP/1.1\r\nHost: x\r\nAuthorization: Basic c2VjcmV0\r\n\r\n");
    assert_eq!(
        h.request.headers.get("authorization"),
        Some("Basic c2VjcmV0")
    );
    assert!(!format!("{h:?}").contains("c2VjcmV0"));
}

/// xorshift64: deterministic, so a failure names its seed.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// The invariants any answer keeps: a complete head is a prefix of the input within the
/// limit, its path starts with `/` (or is `*`), and a refusal is never "partial".
fn check(bytes: &[u8]) {
    match parse_head(bytes) {
        Ok(Parsed::Complete { head, len }) => {
            assert!(len <= bytes.len() && len <= MAX_HEAD_BYTES);
            assert!(bytes[..len].ends_with(b"\r\n\r\n") || bytes[..len].ends_with(b"\n\n"));
            let p = &head.request.path;
            assert!(p.starts_with('/') || p == "*", "{p:?}");
            assert!(!head.request.host.as_deref().unwrap_or("").contains('/'));
        }
        Ok(Parsed::Partial) => assert!(bytes.len() < MAX_HEAD_BYTES),
        Err(_) => {}
    }
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for _ in 0..20_000 {
        let len = rng.below(600);
        let bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        check(&bytes);
    }
}

#[test]
fn mutated_valid_heads_never_panic() {
    const PIECES: [&[u8]; 12] = [
        b"GET ",
        b"HEAD ",
        b"/v2/",
        b"http://h",
        b" HTTP/1.1",
        b" HTTP/1.0",
        b"\r\n",
        b"Host: h",
        b"Content-Length: 5",
        b"Transfer-Encoding: chunked",
        b"\n",
        b"\xff",
    ];
    let valid = b"GET /v2/a/blobs/x?ns=h HTTP/1.1\r\nHost: h\r\nRange: bytes=0-\r\n\r\n";
    let mut rng = Rng(42);
    for _ in 0..20_000 {
        let mut bytes = valid.to_vec();
        for _ in 0..1 + rng.below(4) {
            let at = rng.below(bytes.len());
            match rng.below(3) {
                0 => bytes[at] = rng.next() as u8,
                1 => {
                    let piece = PIECES[rng.below(PIECES.len())];
                    bytes.splice(at..at, piece.iter().copied());
                }
                _ => {
                    bytes.remove(at);
                }
            }
        }
        check(&bytes);
        // Every prefix too: what a slow client has sent so far.
        check(&bytes[..rng.below(bytes.len())]);
    }
}
