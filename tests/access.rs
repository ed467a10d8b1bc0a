//! Who may pull (issue 9): `--allow` refuses other addresses with 403 DENIED and says how to
//! admit them; `--htpasswd` makes the registry API answer 401 with a Basic challenge until
//! a client sends a user of the file, while the status page and `/metrics` follow `--allow`
//! only; a client's `Authorization` never reaches the upstream.

mod support;

use support::client::{get, request};
use support::mirror::{pull, Mirror};
use support::{FakeUpstream, TestImage};

fn basic(user: &str, password: &str) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Basic {b64}")
}

#[test]
fn an_address_outside_allow_gets_403_denied_with_the_fix() {
    let fake = FakeUpstream::start();
    fake.push_image("library/alpine", "latest", &TestImage::new(1, &[100]));
    // The test's client is 127.0.0.1: outside this list.
    let m = Mirror::start_with(&fake, |c| {
        c.allow = regmirror::access::cidr::parse_list("10.0.0.0/8").unwrap()
    });
    for path in [
        "/v2/",
        "/v2/library/alpine/manifests/latest",
        "/metrics",
        "/_regmirror/status",
        "/",
        "/v2/_catalog",
    ] {
        let r = get(m.addr, path);
        assert_eq!(r.status, 403, "{path}");
        assert_eq!(r.error_code(), "DENIED", "{path}");
        let msg = r.json()["errors"][0]["message"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(
            msg.contains("127.0.0.1") && msg.contains("--allow"),
            "{msg}"
        );
    }
    assert_eq!(
        fake.requests().len(),
        0,
        "nothing asked upstream for a refused client"
    );
}

#[test]
fn loopback_is_allowed_by_default_and_pulls() {
    let fake = FakeUpstream::start();
    let img = TestImage::new(2, &[1000]);
    fake.push_image("library/alpine", "latest", &img);
    let m = Mirror::start(&fake);
    pull(m.addr, "library/alpine", "latest", &img);
}

#[test]
fn htpasswd_challenges_then_serves_a_user_of_the_file() {
    let fake = FakeUpstream::start();
    let img = TestImage::new(3, &[1000, 2000]);
    fake.push_image("library/alpine", "latest", &img);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("htpasswd");
    let hash = bcrypt::hash("s3cret", 4).unwrap();
    std::fs::write(&file, format!("alice:{hash}\n")).unwrap();
    let m = Mirror::start_with(&fake, |c| c.htpasswd = Some(file.clone()));

    for path in ["/v2/", "/v2/library/alpine/manifests/latest"] {
        let r = get(m.addr, path);
        assert_eq!(r.status, 401, "{path}");
        assert_eq!(r.error_code(), "UNAUTHORIZED");
        let challenge = r.header("www-authenticate").unwrap_or_default();
        assert!(challenge.starts_with("Basic realm="), "{challenge}");
    }
    let wrong = basic("alice", "guess");
    let r = request(m.addr, "GET", "/v2/", &[("Authorization", &wrong)]);
    assert_eq!(r.status, 401);
    // Docker sends its Hub token to a mirror (moby#42022): refused, and not passed on.
    let r = request(
        m.addr,
        "GET",
        "/v2/library/alpine/manifests/latest",
        &[("Authorization", "Bearer hub-token-of-someone")],
    );
    assert_eq!(r.status, 401);
    assert_eq!(
        fake.requests().len(),
        0,
        "refused requests never reach upstream"
    );

    let ok = basic("alice", "s3cret");
    let auth = [("Authorization", ok.as_str())];
    assert_eq!(request(m.addr, "GET", "/v2/", &auth).status, 200);
    let r = request(m.addr, "GET", "/v2/library/alpine/manifests/latest", &auth);
    assert_eq!(r.status, 200);
    assert_eq!(r.body, img.manifest);
    for d in [
        img.config_digest(),
        img.layer_digest(0),
        img.layer_digest(1),
    ] {
        let r = request(
            m.addr,
            "GET",
            &format!("/v2/library/alpine/blobs/{d}"),
            &auth,
        );
        assert_eq!(r.status, 200, "{d}");
    }
    let sent: Vec<_> = fake
        .requests()
        .into_iter()
        .filter_map(|r| r.authorization)
        .collect();
    assert!(
        sent.is_empty(),
        "the client's credentials went upstream: {sent:?}"
    );

    // The pages follow --allow only.
    assert_eq!(get(m.addr, "/metrics").status, 200);
    assert_eq!(get(m.addr, "/_regmirror/status").status, 200);
    assert_eq!(get(m.addr, "/").status, 200);
}

#[test]
fn a_docker_clients_hub_credentials_are_never_passed_upstream() {
    // After `docker login`, Docker sends its Docker Hub credentials to a mirror (moby#42022).
    let fake = FakeUpstream::start();
    let img = TestImage::new(4, &[500]);
    fake.push_image("library/alpine", "latest", &img);
    let m = Mirror::start(&fake);
    let hub = basic("someone", "their-hub-password");
    let auth = [("Authorization", hub.as_str())];
    let r = request(m.addr, "GET", "/v2/library/alpine/manifests/latest", &auth);
    assert_eq!(r.status, 200);
    let layer = img.layer_digest(0);
    let r = request(
        m.addr,
        "GET",
        &format!("/v2/library/alpine/blobs/{layer}"),
        &auth,
    );
    assert_eq!(r.status, 200);
    assert!(!fake.requests().is_empty());
    let sent: Vec<_> = fake
        .requests()
        .into_iter()
        .filter_map(|r| r.authorization)
        .collect();
    assert!(sent.is_empty(), "forwarded upstream: {sent:?}");
}
