//! The upstream client against the fake registry of `tests/support`: manifests and digest
//! checks, the token flow, redirects, error statuses, timeouts, the circuit breaker, ranges
//! and cut connections. Each test reads as a statement of behaviour.

mod support;

use futures_lite::AsyncReadExt;
use regmirror::config::{Config, Credentials, UpstreamUrl};
use regmirror::error::UpstreamError;
use regmirror::reference::{Digest, Reference, Repository};
use regmirror::upstream::{BlobStream, Registry, Upstreams, MANIFEST_MEDIA_TYPES};
use std::future::Future;
use std::rc::Rc;
use std::time::{Duration, Instant};
use support::{FakeUpstream, Listener, TestImage, DOCKER_MANIFEST_V2};

const NAME: &str = "fake.local";

/// Short, so that timeout tests are quick.
const TIMEOUT: Duration = Duration::from_millis(500);

fn config(fake: &FakeUpstream, credentials: Option<(&str, &str)>) -> Config {
    let mut config = Config::new(std::env::temp_dir());
    config.upstream_timeout = TIMEOUT;
    config.set_upstream(NAME, UpstreamUrl::parse(&fake.url()).unwrap());
    let ours = config
        .upstreams
        .iter_mut()
        .find(|u| u.name == NAME)
        .unwrap();
    ours.credentials = credentials.map(|(user, password)| Credentials {
        user: user.into(),
        password: password.into(),
    });
    config
}

fn upstreams(fake: &FakeUpstream, credentials: Option<(&str, &str)>) -> Upstreams {
    Upstreams::new(&config(fake, credentials)).unwrap()
}

fn registry(fake: &FakeUpstream) -> Rc<Registry> {
    upstreams(fake, None).get(NAME).unwrap()
}

/// Runs a test body on a `LocalExecutor`, as the server does.
fn run<T>(f: impl Future<Output = T>) -> T {
    let ex = smol::LocalExecutor::new();
    smol::block_on(ex.run(f))
}

fn repo(s: &str) -> Repository {
    Repository::parse(s).unwrap()
}

fn tag(s: &str) -> Reference {
    Reference::parse(s).unwrap()
}

fn digest(s: &str) -> Digest {
    Digest::parse(s).unwrap()
}

async fn read_all(mut b: BlobStream) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    b.body.read_to_end(&mut out).await?;
    Ok(out)
}

/// A fake holding one image at `library/alpine:latest`.
fn with_image() -> (FakeUpstream, TestImage) {
    let fake = FakeUpstream::start();
    let img = TestImage::new(1, &[3000, 50_000]);
    fake.push_image("library/alpine", "latest", &img);
    (fake, img)
}

#[test]
fn manifest_by_tag_and_by_digest_is_verified_and_typed() {
    let (fake, img) = with_image();
    let r = registry(&fake);
    let alpine = repo("library/alpine");
    run(async {
        let m = r.manifest(&alpine, &tag("latest"), false).await.unwrap();
        assert_eq!(m.digest.to_string(), img.manifest_digest());
        assert_eq!(m.media_type, DOCKER_MANIFEST_V2);
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
        MANIFEST_MEDIA_TYPES.iter().all(|t| accept.contains(t)),
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
        let bytes = read_all(r.blob(&alpine, &layer, 0).await.unwrap())
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
        let b = r.blob(&repo("library/alpine"), &Digest::of(b"x"), 0).await;
        assert!(matches!(b, Err(UpstreamError::NotFound)), "{b:?}");
        let h = r.blob_head(&repo("other/repo"), &Digest::of(b"x")).await;
        assert!(matches!(h, Err(UpstreamError::NotFound)), "{h:?}");
    });
    assert_eq!(r.status().consecutive_failures, 0);
}

#[test]
fn bearer_token_is_fetched_once_per_repository_and_reused() {
    let (fake, img) = with_image();
    fake.push_image("library/busybox", "1", &TestImage::new(2, &[100]));
    fake.require_bearer(None);
    let ups = upstreams(&fake, None);
    let r = ups.get(NAME).unwrap();
    let alpine = repo("library/alpine");
    run(async {
        r.manifest(&alpine, &tag("latest"), false).await.unwrap();
        assert_eq!(fake.token_requests(), 1);
        r.manifest(&alpine, &tag("latest"), true).await.unwrap();
        let layer = digest(&img.layer_digest(1));
        assert_eq!(
            read_all(r.blob(&alpine, &layer, 0).await.unwrap())
                .await
                .unwrap(),
            img.layers[1]
        );
        assert_eq!(fake.token_requests(), 1, "cached for the repository");
        r.manifest(&repo("library/busybox"), &tag("1"), false)
            .await
            .unwrap();
        assert_eq!(
            fake.token_requests(),
            2,
            "another repository, another scope"
        );
    });
    let tokens: Vec<_> = fake
        .requests()
        .into_iter()
        .filter(|q| q.target.starts_with("/token"))
        .collect();
    assert!(
        tokens[0]
            .target
            .contains("scope=repository%3Alibrary%2Falpine%3Apull"),
        "{}",
        tokens[0].target
    );
    assert!(tokens[0].target.contains("service=fake-registry"));
    assert_eq!(
        tokens[0].authorization, None,
        "anonymous: no credentials configured"
    );
    let debug = format!("{ups:?}");
    assert!(!debug.contains("tok1"), "tokens never in Debug: {debug}");
}

#[test]
fn basic_credentials_go_to_the_token_endpoint_only() {
    let (fake, _) = with_image();
    fake.require_bearer(Some(("alice", "s3cret")));
    let ups = upstreams(&fake, Some(("alice", "s3cret")));
    let r = ups.get(NAME).unwrap();
    run(async {
        r.manifest(&repo("library/alpine"), &tag("latest"), false)
            .await
            .unwrap()
    });
    for q in fake.requests() {
        let auth = q.authorization.unwrap_or_default();
        if q.target.starts_with("/token") {
            assert_eq!(auth, "Basic YWxpY2U6czNjcmV0");
        } else {
            assert!(!auth.starts_with("Basic"), "{} got {auth}", q.target);
        }
    }
    assert!(!format!("{ups:?}").contains("s3cret"));

    let anonymous = registry(&fake);
    let denied = run(anonymous.manifest(&repo("library/alpine"), &tag("latest"), false));
    assert!(
        matches!(denied, Err(UpstreamError::Unauthorized)),
        "{denied:?}"
    );
    let wrong = upstreams(&fake, Some(("alice", "guess")))
        .get(NAME)
        .unwrap();
    let denied = run(wrong.manifest(&repo("library/alpine"), &tag("latest"), false));
    assert!(
        matches!(denied, Err(UpstreamError::Unauthorized)),
        "{denied:?}"
    );
}

#[test]
fn basic_challenge_is_answered_with_configured_credentials() {
    let (fake, _) = with_image();
    fake.require_basic("bob", "pw");
    let r = upstreams(&fake, Some(("bob", "pw"))).get(NAME).unwrap();
    run(async {
        r.manifest(&repo("library/alpine"), &tag("latest"), false)
            .await
            .unwrap();
        r.manifest(&repo("library/alpine"), &tag("latest"), true)
            .await
            .unwrap();
    });
    assert_eq!(
        fake.requests().len(),
        3,
        "401, retry, then credentials sent up front"
    );
    let none = run(registry(&fake).manifest(&repo("library/alpine"), &tag("latest"), false));
    assert!(matches!(none, Err(UpstreamError::Unauthorized)), "{none:?}");
}

#[test]
fn blob_redirect_to_another_host_carries_no_authorization() {
    let (fake, img) = with_image();
    fake.require_bearer(None);
    fake.redirect_blobs(true);
    let r = registry(&fake);
    let alpine = repo("library/alpine");
    let layer = digest(&img.layer_digest(1));
    run(async {
        let b = r.blob(&alpine, &layer, 0).await.unwrap();
        assert_eq!((b.offset, b.total), (0, Some(img.layers[1].len() as u64)));
        assert_eq!(read_all(b).await.unwrap(), img.layers[1]);
        assert_eq!(
            r.blob_head(&alpine, &layer).await.unwrap(),
            img.layers[1].len() as u64
        );
    });
    let cdn: Vec<_> = fake
        .requests()
        .into_iter()
        .filter(|q| q.listener == Listener::Cdn)
        .collect();
    assert_eq!(cdn.len(), 2, "GET and HEAD both followed");
    for q in &cdn {
        assert!(q.host.starts_with("localhost:"), "{}", q.host);
        assert_eq!(q.authorization, None, "the CDN must not see our token");
    }
    let on_registry = fake
        .requests()
        .into_iter()
        .filter(|q| q.listener == Listener::Registry);
    let blob_auth: Vec<_> = on_registry
        .filter(|q| q.target.contains("/blobs/"))
        .map(|q| q.authorization)
        .collect();
    let bearer = Some("Bearer tok1".to_owned());
    assert_eq!(
        blob_auth,
        [None, bearer.clone(), bearer],
        "401, retry with token, HEAD with token"
    );
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
                    retry_after: Some(7)
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
        assert!(matches!(e, Err(UpstreamError::Status(500))), "{e:?}");
        assert_eq!(r.status().consecutive_failures, n);
    }
    assert!(!r.status().available);
    let e = run(r.manifest(&alpine, &tag("latest"), false));
    assert!(
        matches!(&e, Err(UpstreamError::Unavailable(m)) if m.contains("circuit open")),
        "{e:?}"
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
        let b = r.blob(&alpine, &layer, 1000).await.unwrap();
        assert_eq!((b.offset, b.total), (1000, Some(len)));
        assert_eq!(read_all(b).await.unwrap(), img.layers[1][1000..]);

        fake.ignore_range(true);
        let b = r.blob(&alpine, &layer, 1000).await.unwrap();
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
        let mut b = r.blob(&alpine, &layer, 0).await.unwrap();
        let mut got = Vec::new();
        let err = b.body.read_to_end(&mut got).await.unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::UnexpectedEof, "{err}");
        assert_eq!(got.len(), 20_000);
        let rest = r.blob(&alpine, &layer, got.len() as u64).await.unwrap();
        assert_eq!(rest.offset, 20_000);
        got.extend(read_all(rest).await.unwrap());
        assert_eq!(got, img.layers[1]);
    });
}

#[test]
fn ratelimit_remaining_is_tracked() {
    let (fake, _) = with_image();
    fake.ratelimit_remaining("97;w=21600");
    let r = registry(&fake);
    assert_eq!(r.status().ratelimit_remaining, None);
    run(r.manifest(&repo("library/alpine"), &tag("latest"), true)).unwrap();
    let s = r.status();
    assert_eq!(s.ratelimit_remaining.as_deref(), Some("97;w=21600"));
    assert_eq!((s.name.as_str(), s.url), (NAME, fake.url()));
}

#[test]
fn tags_list_passes_only_n_and_last() {
    let (fake, img) = with_image();
    fake.push_image("library/alpine", "3.19", &img);
    let r = registry(&fake);
    let (content_type, body) =
        run(r.tags_list(&repo("library/alpine"), Some("n=1&evil=%0d%0aX:1"))).unwrap();
    assert_eq!(content_type, "application/json");
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
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
        let mut b = r.blob(&repo("library/alpine"), &layer, 0).await.unwrap();
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
}

#[test]
fn tls_upstream_is_trusted_through_the_extra_ca_and_redirects_keep_tls() {
    let fake = FakeUpstream::start_tls();
    let img = TestImage::new(3, &[4096]);
    fake.push_image("org/app", "v1", &img);
    fake.require_bearer(None);
    fake.redirect_blobs(true);
    let mut cfg = config(&fake, None);
    cfg.upstream_ca = Some(support::test_ca_path());
    let r = Upstreams::new(&cfg).unwrap().get(NAME).unwrap();
    assert!(r.status().url.starts_with("https://127.0.0.1:"));
    run(async {
        let m = r
            .manifest(&repo("org/app"), &tag("v1"), false)
            .await
            .unwrap();
        assert_eq!(m.digest.to_string(), img.manifest_digest());
        let layer = digest(&img.layer_digest(0));
        let b = r.blob(&repo("org/app"), &layer, 0).await.unwrap();
        assert_eq!(read_all(b).await.unwrap(), img.layers[0]);
    });
    assert_eq!(
        fake.count("GET", "/cdn/"),
        1,
        "followed to https://localhost"
    );

    let untrusted = upstreams(&fake, None).get(NAME).unwrap();
    let e = run(untrusted.manifest(&repo("org/app"), &tag("v1"), true));
    assert!(
        matches!(&e, Err(UpstreamError::Unavailable(m)) if m.contains("certificate")),
        "{e:?}"
    );
}

#[test]
fn non_ascii_response_headers_do_not_crash_the_client() {
    let (fake, _) = with_image();
    fake.extra_header("x-filename", "caf\u{e9}.tar");
    let r = registry(&fake);
    let m = run(r.manifest(&repo("library/alpine"), &tag("latest"), false));
    assert!(m.is_ok(), "{m:?}");
}

#[test]
fn blob_head_refused_by_a_get_only_cdn_falls_back_to_a_one_byte_get() {
    let (fake, img) = with_image();
    fake.redirect_blobs(true);
    fake.cdn_refuses_head(true);
    let r = registry(&fake);
    let layer = digest(&img.layer_digest(1));
    let len = run(r.blob_head(&repo("library/alpine"), &layer)).unwrap();
    assert_eq!(len, img.layers[1].len() as u64);
    let cdn: Vec<_> = fake
        .requests()
        .into_iter()
        .filter(|q| q.listener == Listener::Cdn)
        .map(|q| (q.method, q.range))
        .collect();
    assert_eq!(
        cdn,
        [
            ("HEAD".into(), None),
            ("GET".into(), Some("bytes=0-0".into()))
        ]
    );
}
