//! The upstream client against the fake registry of `tests/support`: manifests and digest
//! checks, error statuses, timeouts, the circuit breaker (fed by bodies that stall, too),
//! what the status shows, ranges and cut connections. (Auth, redirects and TLS are in
//! `upstream_auth.rs`; byte-level misbehaviour in `upstream_wire.rs`.) Each test reads as a
//! statement of behaviour.

mod support;

use futures_lite::AsyncReadExt;
use regmirror::error::UpstreamError;
use regmirror::http::Status;
use regmirror::media_type::MANIFEST_TYPES;
use regmirror::reference::{Digest, Reference};
use std::time::{Duration, Instant, SystemTime};
use support::raw_upstream::{RawUpstream, Step};
use support::upstream::*;
use support::DOCKER_MANIFEST_V2;

#[test]
fn manifest_by_tag_and_by_digest_is_verified_and_typed() {
    let (fake, img) = with_image();
    let r = registry(&fake);
    let alpine = repo("library/alpine");
    run(async {
        let m = r.manifest(&alpine, &tag("latest"), false).await.unwrap();
        assert_eq!(m.digest.to_string(), img.manifest_digest());
        assert_eq!(m.media_type.as_str(), DOCKER_MANIFEST_V2);
        assert_eq!(m.length, img.manifest.len() as u64);
        assert_eq!(m.body.as_deref(), Some(&img.manifest[..]));

        let by_digest = Reference::Digest(digest(&img.manifest_digest()));
        let m2 = r.manifest(&alpine, &by_digest, false).await.unwrap();
        assert_eq!(m2, m);

        let head = r.manifest(&alpine, &tag("latest"), true).await.unwrap();
        assert_eq!(
            (head.digest, head.length, head.body),
            (m.digest, m.length, None)
        );
    });
    let asked = fake.requests();
    let accept = asked[0].accept.as_deref().unwrap();
    assert!(
        MANIFEST_TYPES.iter().all(|t| accept.contains(t.as_str())),
        "{accept}"
    );
    assert_eq!(fake.count("HEAD", "/manifests/latest"), 1);
}

#[test]
fn wrong_manifest_bytes_are_bad_content_by_tag_and_by_digest() {
    let (fake, img) = with_image();
    fake.corrupt(true);
    let r = registry(&fake);
    let alpine = repo("library/alpine");
    run(async {
        let by_tag = r.manifest(&alpine, &tag("latest"), false).await;
        assert!(
            matches!(by_tag, Err(UpstreamError::BadContent(_))),
            "{by_tag:?}"
        );
        let by_digest = Reference::Digest(digest(&img.manifest_digest()));
        let by_digest = r.manifest(&alpine, &by_digest, false).await;
        assert!(
            matches!(by_digest, Err(UpstreamError::BadContent(_))),
            "{by_digest:?}"
        );
        // Blob bodies are not checked here: the caller hashes while streaming.
        let layer = digest(&img.layer_digest(0));
        let bytes = read_all(r.blob(&alpine, &layer, 0, None).await.unwrap())
            .await
            .unwrap();
        assert_ne!(bytes, img.layers[0]);
        assert_eq!(bytes.len(), img.layers[0].len());
    });
    assert!(r.status().available, "bad content is not an outage");
}

#[test]
fn unknown_manifests_and_blobs_are_not_found() {
    let (fake, _) = with_image();
    let r = registry(&fake);
    run(async {
        let m = r
            .manifest(&repo("library/alpine"), &tag("nope"), false)
            .await;
        assert!(matches!(m, Err(UpstreamError::NotFound)), "{m:?}");
        let b = r
            .blob(&repo("library/alpine"), &Digest::of(b"x"), 0, None)
            .await;
        assert!(matches!(b, Err(UpstreamError::NotFound)), "{b:?}");
        let h = r.blob_head(&repo("other/repo"), &Digest::of(b"x")).await;
        assert!(matches!(h, Err(UpstreamError::NotFound)), "{h:?}");
    });
    assert_eq!(r.status().consecutive_failures, 0);
}

#[test]
fn too_many_requests_carries_retry_after_and_is_not_an_outage() {
    let (fake, _) = with_image();
    fake.fail_with(429, Some(7));
    let r = registry(&fake);
    for _ in 0..4 {
        let e = run(r.manifest(&repo("library/alpine"), &tag("latest"), true));
        assert!(
            matches!(
                e,
                Err(UpstreamError::TooManyRequests {
                    retry_after: Some(7),
                    ..
                })
            ),
            "{e:?}"
        );
    }
    assert!(r.status().available);
    assert_eq!(r.status().consecutive_failures, 0);
}

#[test]
fn server_errors_count_and_open_the_breaker_which_then_fails_fast() {
    let (fake, _) = with_image();
    fake.fail_with(500, None);
    let r = registry(&fake);
    let alpine = repo("library/alpine");
    for n in 1..=3 {
        let e = run(r.manifest(&alpine, &tag("latest"), false));
        assert!(
            matches!(&e, Err(UpstreamError::Status(s, host)) if *s == Status::INTERNAL_SERVER_ERROR && fake.url().ends_with(host.as_str())),
            "{e:?}"
        );
        assert_eq!(r.status().consecutive_failures, n);
    }
    let s = r.status();
    assert!(!s.available);
    let last = s.last_failure.expect("why the breaker opened");
    assert!(last.cause.contains("500"), "{}", last.cause);
    assert!(
        last.cause.contains(&fake.addr().to_string()),
        "{}",
        last.cause
    );
    let e = run(r.manifest(&alpine, &tag("latest"), false));
    assert!(
        matches!(&e, Err(UpstreamError::Unavailable(m)) if m.contains("circuit open") && m.contains("500")),
        "the open breaker says why: {e:?}"
    );
    assert_eq!(fake.requests().len(), 3, "the open breaker sent nothing");
}

#[test]
fn frozen_upstream_times_out_and_the_fourth_call_fails_fast() {
    let (fake, img) = with_image();
    fake.freeze();
    let r = registry(&fake);
    let alpine = repo("library/alpine");
    for _ in 0..3 {
        let started = Instant::now();
        let e = run(r.blob_head(&alpine, &digest(&img.layer_digest(0))));
        let took = started.elapsed();
        assert!(matches!(e, Err(UpstreamError::Unavailable(_))), "{e:?}");
        assert!(
            took >= TIMEOUT - Duration::from_millis(50) && took < TIMEOUT * 4,
            "{took:?}"
        );
    }
    let started = Instant::now();
    let e = run(r.manifest(&alpine, &tag("latest"), false));
    assert!(
        matches!(&e, Err(UpstreamError::Unavailable(m)) if m.contains("circuit open")),
        "{e:?}"
    );
    assert!(started.elapsed() < TIMEOUT / 5, "{:?}", started.elapsed());
}

#[test]
fn range_requests_report_offset_and_total() {
    let (fake, img) = with_image();
    let r = registry(&fake);
    let alpine = repo("library/alpine");
    let layer = digest(&img.layer_digest(1));
    let len = img.layers[1].len() as u64;
    run(async {
        let b = r.blob(&alpine, &layer, 1000, None).await.unwrap();
        assert_eq!((b.offset, b.total), (1000, Some(len)));
        assert_eq!(read_all(b).await.unwrap(), img.layers[1][1000..]);

        fake.ignore_range(true);
        let b = r.blob(&alpine, &layer, 1000, None).await.unwrap();
        assert_eq!(
            (b.offset, b.total),
            (0, Some(len)),
            "whole blob: the caller skips"
        );
        assert_eq!(read_all(b).await.unwrap(), img.layers[1]);
    });
    let ranges: Vec<_> = fake.requests().into_iter().map(|q| q.range).collect();
    assert_eq!(
        ranges,
        [
            Some("bytes=1000-".to_owned()),
            Some("bytes=1000-".to_owned())
        ]
    );
}

#[test]
fn a_connection_cut_mid_body_is_a_read_error_and_resumes_with_range() {
    let (fake, img) = with_image();
    fake.cut_next_blob_after(20_000);
    let r = registry(&fake);
    let alpine = repo("library/alpine");
    let layer = digest(&img.layer_digest(1));
    run(async {
        let mut b = r.blob(&alpine, &layer, 0, None).await.unwrap();
        let mut got = Vec::new();
        let err = b.body.read_to_end(&mut got).await.unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::UnexpectedEof, "{err}");
        assert_eq!(got.len(), 20_000);
        let rest = r
            .blob(&alpine, &layer, got.len() as u64, None)
            .await
            .unwrap();
        assert_eq!(rest.offset, 20_000);
        got.extend(read_all(rest).await.unwrap());
        assert_eq!(got, img.layers[1]);
    });
}

#[test]
fn ratelimit_limit_and_remaining_are_tracked_with_when_seen() {
    let (fake, _) = with_image();
    fake.ratelimit_remaining("97;w=21600");
    fake.extra_header("ratelimit-limit", "100;w=21600");
    let r = registry(&fake);
    assert_eq!(r.status().ratelimit_remaining, None);
    assert_eq!(r.status().ratelimit_limit, None);
    let before = SystemTime::now();
    run(r.manifest(&repo("library/alpine"), &tag("latest"), true)).unwrap();
    let after = SystemTime::now();
    let s = r.status();
    let (limit, remaining) = (s.ratelimit_limit.unwrap(), s.ratelimit_remaining.unwrap());
    assert_eq!(remaining.value, "97;w=21600");
    assert_eq!(limit.value, "100;w=21600");
    for at in [limit.at, remaining.at] {
        assert!(before <= at && at <= after);
    }
    assert_eq!((s.name.as_str(), s.url), (NAME, fake.url()));
}

#[test]
fn bodies_that_stall_after_their_heads_open_the_breaker() {
    // Heads arrive at once, then silence: each fetch costs the idle timeout, and after the
    // threshold the breaker opens, so the next one fails at once instead of waiting again.
    let raw = RawUpstream::start(|_| {
        vec![
            Step::send("HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n"),
            Step::Hold,
        ]
    });
    let r = registry_at(&raw.url(), None);
    let layer = digest(&support::digest_of(b"never sent"));
    let alpine = repo("library/alpine");
    for n in 1..=3 {
        let err = run(async {
            let b = r.blob(&alpine, &layer, 0, None).await.unwrap();
            read_all(b).await.unwrap_err()
        });
        assert_eq!(err.kind(), std::io::ErrorKind::TimedOut, "{err}");
        assert!(
            err.to_string().contains(&raw.url()[7..]),
            "names the host: {err}"
        );
        assert_eq!(r.status().consecutive_failures, n);
    }
    let s = r.status();
    assert!(!s.available);
    let cause = s.last_failure.unwrap().cause;
    assert!(cause.contains("sent nothing"), "{cause}");
    let started = Instant::now();
    let e = run(r.blob(&alpine, &layer, 0, None));
    assert!(
        matches!(&e, Err(UpstreamError::Unavailable(m)) if m.contains("circuit open")),
        "{e:?}"
    );
    assert!(started.elapsed() < TIMEOUT / 5, "{:?}", started.elapsed());
    assert_eq!(raw.requests().len(), 3);
}

#[test]
fn tags_list_passes_only_n_and_last() {
    let (fake, img) = with_image();
    fake.push_image("library/alpine", "3.19", &img);
    let r = registry(&fake);
    let page = run(r.tags_list(&repo("library/alpine"), Some("n=1&evil=%0d%0aX:1"))).unwrap();
    assert_eq!(page.content_type, "application/json; charset=utf-8");
    assert_eq!(
        page.link.as_deref(),
        Some(r#"</v2/library/alpine/tags/list?last=latest&n=1>; rel="next""#)
    );
    let v: serde_json::Value = serde_json::from_slice(&page.body).unwrap();
    assert_eq!(v["tags"], serde_json::json!(["latest"]));
    assert_eq!(
        fake.requests()[0].target,
        "/v2/library/alpine/tags/list?n=1"
    );
}

#[test]
fn a_body_that_stalls_fails_after_the_idle_timeout() {
    let (fake, img) = with_image();
    fake.stall_next_blob_after(10_000);
    let r = registry(&fake);
    let layer = digest(&img.layer_digest(1));
    run(async {
        let mut b = r
            .blob(&repo("library/alpine"), &layer, 0, None)
            .await
            .unwrap();
        let mut got = Vec::new();
        let started = Instant::now();
        let err = b.body.read_to_end(&mut got).await.unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::TimedOut, "{err}");
        assert_eq!(got.len(), 10_000);
        let took = started.elapsed();
        assert!(
            took >= TIMEOUT - Duration::from_millis(50) && took < TIMEOUT * 4,
            "{took:?}"
        );
    });
    let s = r.status();
    assert_eq!(
        s.consecutive_failures, 1,
        "bytes flowed (a success), then the stall (a failure)"
    );
    assert!(s.available);
    assert!(s.last_failure.is_some());
}

#[test]
fn non_ascii_response_headers_do_not_crash_the_client() {
    let (fake, _) = with_image();
    fake.extra_header("x-filename", "caf\u{e9}.tar");
    let r = registry(&fake);
    let m = run(r.manifest(&repo("library/alpine"), &tag("latest"), false));
    assert!(m.is_ok(), "{m:?}");
}
