//! A client's request head (src/http/head.rs) and everything read from it on the way to a
//! route: the target's path and query (src/routes.rs, src/control/), `Accept`, `Range`,
//! the access check. Properties: a complete head is no longer than the input or the limit,
//! parses the same on its own and is the first blank line (no shorter prefix completes);
//! "need more" only below the limit; the header count stays under its limit; a route's
//! repository and tag are valid ones; every `Range` answer lies within the blob.
#![no_main]

use libfuzzer_sys::fuzz_target;
use regmirror::access::{self, Access};
use regmirror::http::{parse_head, parse_range, Parsed, RangeAnswer, MAX_HEADERS, MAX_HEAD_BYTES};
use regmirror::manifest::Accept;
use regmirror::reference::{Repository, Tag};
use regmirror::routes::{self, Route};

fuzz_target!(|data: &[u8]| {
    let (head, len) = match parse_head(data) {
        Ok(Parsed::Partial) => {
            assert!(
                data.len() < MAX_HEAD_BYTES,
                "Partial at {} bytes",
                data.len()
            );
            return;
        }
        Ok(Parsed::Complete { head, len }) => (head, len),
        Err(_) => return,
    };
    assert!(
        len <= data.len() && len <= MAX_HEAD_BYTES,
        "head of {len} bytes"
    );
    match parse_head(&data[..len]) {
        Ok(Parsed::Complete { len: again, .. }) => assert_eq!(again, len),
        other => panic!("the head alone parses as {other:?}"),
    }
    for cut in [len - 1, len / 2] {
        assert!(
            !matches!(parse_head(&data[..cut]), Ok(Parsed::Complete { .. })),
            "a prefix of {cut} bytes is a complete head too"
        );
    }
    let req = &head.request;
    assert!(req.headers.len() <= MAX_HEADERS);
    for key in ["ns", "n", "last", "artifactType"] {
        let _ = req.query_param(key);
    }
    let route = routes::parse(req);
    match &route {
        Ok(Route::Manifest(name, r)) => {
            assert_eq!(
                Repository::parse(name.repo.as_str()).as_ref(),
                Ok(&name.repo)
            );
            if let regmirror::reference::Reference::Tag(t) = r {
                assert_eq!(Tag::parse(t.as_str()).as_ref(), Ok(t));
            }
        }
        Ok(Route::Blob(name, _) | Route::TagsList(name) | Route::Referrers(name, _, _)) => {
            assert_eq!(
                Repository::parse(name.repo.as_str()).as_ref(),
                Ok(&name.repo)
            );
        }
        _ => {}
    }
    let mut req = req.clone();
    for peer in ["127.0.0.1:1", "203.0.113.5:1"] {
        req.peer = Some(peer.parse().unwrap());
        let _ = access::check(&Access::default(), &req, route.as_ref().ok());
    }
    let _ = Accept::parse(&req.accept);
    for total in [0, 1, 4096, u64::MAX] {
        if let RangeAnswer::Partial(r) = parse_range(req.range.as_deref(), total) {
            assert!(r.start < r.end && r.end <= total, "{r:?} of {total}");
        }
    }
});
