//! The upstream client's credentials and transport against the fake registry: the Bearer
//! token flow, Basic challenges, redirects to another host (no `Authorization` there, and no
//! credentials for a realm a redirect target names), credentials never in clear text to
//! another host, a CDN that refuses HEAD, and TLS through an extra CA.

mod support;

use regmirror::error::UpstreamError;
use regmirror::upstream::Upstreams;
use support::raw_upstream::{RawRequest, RawUpstream, Step};
use support::upstream::*;
use support::{FakeUpstream, Listener, TestImage};

const MANIFEST: &str = r#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{},"layers":[]}"#;

/// `alice:s3cret` as a Basic `Authorization` value.
const ALICE: &str = "Basic YWxpY2U6czNjcmV0";

fn answer(status: &str, headers: &[(&str, &str)], body: &str) -> Vec<Step> {
    let mut head = format!("HTTP/1.1 {status}\r\n");
    for (n, v) in headers {
        head.push_str(&format!("{n}: {v}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    vec![Step::send(head)]
}

/// A token server that hands out `token` to anyone and remembers who asked with what.
fn token_server(token: &'static str) -> RawUpstream {
    RawUpstream::start(move |_| answer("200 OK", &[], &format!(r#"{{"token":"{token}"}}"#)))
}

fn authorizations(requests: &[RawRequest]) -> Vec<Option<String>> {
    requests
        .iter()
        .map(|r| r.header("authorization").map(str::to_owned))
        .collect()
}

#[test]
fn bearer_token_is_fetched_once_per_repository_and_reused() {
    let (fake, img) = with_image();
    fake.push_image("library/busybox", "1", &TestImage::new(2, &[100]));
    fake.require_bearer(None);
    let ups = upstreams(&fake, None);
    let r = ups.get(&name()).unwrap();
    let alpine = repo("library/alpine");
    run(async {
        r.manifest(&alpine, &tag("latest"), false).await.unwrap();
        assert_eq!(fake.token_requests(), 1);
        r.manifest(&alpine, &tag("latest"), true).await.unwrap();
        let layer = digest(&img.layer_digest(1));
        assert_eq!(
            read_all(r.blob(&alpine, &layer, 0, None).await.unwrap())
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
    let r = ups.get(&name()).unwrap();
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
        matches!(denied, Err(UpstreamError::Unauthorized(_))),
        "{denied:?}"
    );
    let wrong = upstreams(&fake, Some(("alice", "guess")))
        .get(&name())
        .unwrap();
    let denied = run(wrong.manifest(&repo("library/alpine"), &tag("latest"), false));
    assert!(
        matches!(denied, Err(UpstreamError::Unauthorized(_))),
        "{denied:?}"
    );
}

#[test]
fn basic_challenge_is_answered_with_configured_credentials() {
    let (fake, _) = with_image();
    fake.require_basic("bob", "pw");
    let r = upstreams(&fake, Some(("bob", "pw"))).get(&name()).unwrap();
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
    assert!(
        matches!(none, Err(UpstreamError::Unauthorized(_))),
        "{none:?}"
    );
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
        let b = r.blob(&alpine, &layer, 0, None).await.unwrap();
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
fn tls_upstream_is_trusted_through_the_extra_ca_and_redirects_keep_tls() {
    let fake = FakeUpstream::start_tls();
    let img = TestImage::new(3, &[4096]);
    fake.push_image("org/app", "v1", &img);
    fake.require_bearer(None);
    fake.redirect_blobs(true);
    let mut cfg = config(&fake, None);
    cfg.upstream_ca = Some(support::test_ca_path());
    let r = Upstreams::new(&cfg, Default::default())
        .unwrap()
        .get(&name())
        .unwrap();
    assert!(r.status().url.starts_with("https://127.0.0.1:"));
    run(async {
        let m = r
            .manifest(&repo("org/app"), &tag("v1"), false)
            .await
            .unwrap();
        assert_eq!(m.digest.to_string(), img.manifest_digest());
        let layer = digest(&img.layer_digest(0));
        let b = r.blob(&repo("org/app"), &layer, 0, None).await.unwrap();
        assert_eq!(read_all(b).await.unwrap(), img.layers[0]);
    });
    assert_eq!(
        fake.count("GET", "/cdn/"),
        1,
        "followed to https://localhost"
    );

    let untrusted = upstreams(&fake, None).get(&name()).unwrap();
    let e = run(untrusted.manifest(&repo("org/app"), &tag("v1"), true));
    assert!(
        matches!(&e, Err(UpstreamError::Unavailable(m)) if m.contains("certificate")),
        "{e:?}"
    );
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

#[test]
fn credentials_never_go_to_a_realm_named_by_a_redirect_target() {
    // The registry wants alice's Basic credentials and redirects the blob to a "CDN" on
    // another host, which answers 401 with a Bearer realm of its own (a third server).
    let thief = token_server("stolen");
    let realm = format!("{}/token", thief.url());
    let cdn = RawUpstream::start(move |_| {
        let challenge = format!(r#"Bearer realm="{realm}",service="cdn""#);
        answer("401 Unauthorized", &[("WWW-Authenticate", &challenge)], "")
    });
    let location = format!("{}/blob?sig=1", cdn.localhost_url());
    let registry = RawUpstream::start(move |req| match req.header("authorization") {
        Some(ALICE) => answer("307 Temporary Redirect", &[("Location", &location)], ""),
        _ => answer(
            "401 Unauthorized",
            &[("WWW-Authenticate", r#"Basic realm="registry""#)],
            "",
        ),
    });
    let r = registry_at(&registry.url(), Some(("alice", "s3cret")));
    let layer = digest(&support::digest_of(b"layer"));
    let cdn_host = cdn.localhost_url().replace("http://", "");
    // The first fetch learns that the registry wants Basic; the second sends it up front,
    // so the CDN's 401 is the first one that fetch meets.
    for _ in 0..2 {
        let e = run(r.blob(&repo("org/app"), &layer, 0, None));
        assert!(
            matches!(&e, Err(UpstreamError::Unauthorized(m)) if m.contains(&cdn_host)),
            "a 401 from a redirect target fails the fetch, naming it: {e:?}"
        );
    }
    assert!(
        thief.requests().is_empty(),
        "the CDN's realm was asked: {:?}",
        authorizations(&thief.requests())
    );
    assert_eq!(authorizations(&cdn.requests()), [None, None]);
    let alice = Some(ALICE.to_owned());
    assert_eq!(
        authorizations(&registry.requests()),
        [None, alice.clone(), alice],
        "the registry itself gets the credentials it asked for"
    );
}

#[test]
fn credentials_never_travel_in_clear_text_to_another_host() {
    // A plain-http upstream whose Bearer realm is plain http on another host name: the
    // token is asked for without alice's credentials. A realm on the upstream's own host
    // (another port) is the configured upstream: it gets them.
    for (realm_host, expect_credentials) in [("localhost", false), ("127.0.0.1", true)] {
        let tokens = token_server("t");
        let realm = format!(
            "http://{realm_host}:{}/token",
            tokens.url().rsplit(':').next().unwrap()
        );
        let registry = RawUpstream::start(move |req| match req.header("authorization") {
            Some("Bearer t") => answer(
                "200 OK",
                &[(
                    "Content-Type",
                    "application/vnd.docker.distribution.manifest.v2+json",
                )],
                MANIFEST,
            ),
            _ => {
                let challenge = format!(r#"Bearer realm="{realm}",service="reg""#);
                answer("401 Unauthorized", &[("WWW-Authenticate", &challenge)], "")
            }
        });
        let r = registry_at(&registry.url(), Some(("alice", "s3cret")));
        let m = run(r.manifest(&repo("org/app"), &tag("v1"), false));
        assert!(m.is_ok(), "{realm_host}: {m:?}");
        let expected = expect_credentials.then(|| ALICE.to_owned());
        assert_eq!(
            authorizations(&tokens.requests()),
            [expected],
            "{realm_host}"
        );
        assert!(
            registry
                .requests()
                .iter()
                .all(|q| q.header("authorization") != Some(ALICE)),
            "the registry asked for a token, not for Basic credentials"
        );
    }
}
