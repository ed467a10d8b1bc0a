//! Tags and manifests end to end, in-process against the fake upstream: when a tag is
//! trusted, revalidated or served stale, what a by-digest request may be answered with,
//! how `tags/list` pages, and that concurrent requests share one upstream answer. Each test
//! is one promise; the issue-6 defect it pins is named beside it.

mod support;

use regmirror::mirror::REVALIDATE_PATIENCE;
use std::path::PathBuf;
use std::thread;
use std::time::{Duration, Instant, SystemTime};
use support::client::{get, request, Resp};
use support::mirror::{pull, wait_until, Mirror};
use support::{FakeUpstream, TestImage};

const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
const DOCKER_V2: &str = "application/vnd.docker.distribution.manifest.v2+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// What the mirror's status page counts as served stale.
fn stale_count(m: &Mirror) -> u64 {
    get(m.addr, "/_regmirror/status").json()["requests"]["stale"]
        .as_u64()
        .unwrap()
}

/// The on-disk record of a Docker Hub tag (`tags/<upstream>/<repo>/_tags/<tag>`).
fn tag_record(m: &Mirror, repo: &str, tag: &str) -> PathBuf {
    m.dir
        .path()
        .join("tags/docker.io")
        .join(repo)
        .join("_tags")
        .join(tag)
}

fn manifest(m: &Mirror, path: &str) -> Resp {
    get(m.addr, &format!("/v2/{path}"))
}

// Defect 8: HEAD is free on Docker Hub, GET counts against the pull limit. A tag that
// moved while the GET is refused is answered with what we had.
#[test]
fn a_moved_tag_whose_manifest_get_is_rate_limited_is_served_stale() {
    let fake = FakeUpstream::start();
    let v1 = TestImage::new(40, &[100]);
    fake.push_image("library/app", "latest", &v1);
    let m = Mirror::start_with(&fake, |c| c.tag_ttl = Duration::ZERO);
    pull(m.addr, "library/app", "latest", &v1);
    let v2 = TestImage::new(41, &[100]);
    fake.push_image("library/app", "latest", &v2);
    fake.fail_gets_with(429, Some(60));
    fake.clear_log();
    let r = manifest(&m, "library/app/manifests/latest");
    assert_eq!(
        (r.status, r.body == v1.manifest),
        (200, true),
        "{}",
        r.text()
    );
    assert_eq!(
        r.header("docker-content-digest"),
        Some(v1.manifest_digest().as_str())
    );
    assert_eq!(stale_count(&m), 1);
    assert_eq!(fake.count("HEAD", "/manifests/latest"), 1);
    // Once the limit lifts, the new manifest is fetched.
    fake.heal();
    let r = manifest(&m, "library/app/manifests/latest");
    assert_eq!((r.status, r.body == v2.manifest), (200, true));
}

// Defect 9: a revalidation that answers after the patience is not thrown away.
#[test]
fn a_revalidation_that_answers_after_the_patience_still_updates_the_tag() {
    let fake = FakeUpstream::start();
    let v1 = TestImage::new(42, &[100]);
    fake.push_image("library/app", "latest", &v1);
    let m = Mirror::start_with(&fake, |c| {
        c.tag_ttl = Duration::ZERO;
        c.upstream_timeout = Duration::from_secs(30);
    });
    pull(m.addr, "library/app", "latest", &v1);
    let v2 = TestImage::new(43, &[100]);
    fake.push_image("library/app", "latest", &v2);
    fake.delay(REVALIDATE_PATIENCE + Duration::from_secs(1));
    let t = Instant::now();
    let r = manifest(&m, "library/app/manifests/latest");
    assert_eq!(
        (r.status, r.body == v1.manifest),
        (200, true),
        "stale first"
    );
    assert!(t.elapsed() < REVALIDATE_PATIENCE + Duration::from_millis(900));
    // The late HEAD says the tag moved: the new manifest is fetched and recorded.
    let record = tag_record(&m, "library/app", "latest");
    wait_until("the late answer is recorded", || {
        std::fs::read_to_string(&record).is_ok_and(|r| r.starts_with(&v2.manifest_digest()))
    });
    fake.delay(Duration::ZERO);
    fake.freeze();
    let r = manifest(&m, "library/app/manifests/latest");
    assert_eq!(
        (r.status, r.body == v2.manifest),
        (200, true),
        "{}",
        r.text()
    );
    fake.heal();
}

// Defect 10: by digest, a client gets exactly that manifest or nothing; only a tag may be
// answered with the default platform's manifest (what distribution 2.8 does).
#[test]
fn a_manifest_asked_by_digest_is_never_substituted() {
    let fake = FakeUpstream::start();
    let img = TestImage::new(44, &[10]);
    let child = fake.push_image("library/app", "amd64", &img);
    let index = |media_type: &str| {
        format!(
            r#"{{"schemaVersion":2,"mediaType":"{media_type}","manifests":[{{"mediaType":"{DOCKER_V2}","digest":"{child}","size":{},"platform":{{"architecture":"amd64","os":"linux"}}}}]}}"#,
            img.manifest.len()
        )
    };
    let (list, oci) = (index(DOCKER_LIST), index(OCI_INDEX));
    let list_digest = fake.add_manifest("library/app", "multi", list.as_bytes(), DOCKER_LIST);
    let oci_digest = fake.add_manifest("library/app", "oci", oci.as_bytes(), OCI_INDEX);
    let m = Mirror::start(&fake);
    let v2_only = [("Accept", DOCKER_V2)];
    let ask = |reference: &str| {
        let path = format!("/v2/library/app/manifests/{reference}");
        request(m.addr, "GET", &path, &v2_only)
    };
    // By tag: the default platform, as before.
    let r = ask("multi");
    assert_eq!(
        (r.status, r.header("docker-content-digest")),
        (200, Some(child.as_str()))
    );
    // By digest, a Docker list: the list itself (distribution ignores Accept here).
    let r = ask(&list_digest);
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("docker-content-digest"),
        Some(list_digest.as_str())
    );
    assert_eq!(r.header("content-type"), Some(DOCKER_LIST));
    assert_eq!(r.body, list.as_bytes());
    // By digest, an OCI index the client does not accept: 404, never another manifest.
    let r = ask(&oci_digest);
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (404, "MANIFEST_UNKNOWN")
    );
    assert_eq!(r.header("docker-content-digest"), None);
    // …and once cached, the same answers.
    assert_eq!(ask(&list_digest).body, list.as_bytes());
    assert_eq!(ask(&oci_digest).status, 404);
}

/// Follows `Link: <…>; rel="next"` from `first` on; returns every tag and the links seen.
fn all_pages(m: &Mirror, first: &str) -> (Vec<String>, Vec<String>) {
    let (mut tags, mut links) = (Vec::new(), Vec::new());
    let mut next = Some(first.to_owned());
    while let Some(path) = next.take() {
        assert!(links.len() < 10, "too many pages: {links:?}");
        let r = get(m.addr, &path);
        assert_eq!(r.status, 200, "{path}: {}", r.text());
        assert_eq!(
            r.header("content-type"),
            Some("application/json; charset=utf-8")
        );
        for t in r.json()["tags"].as_array().unwrap() {
            tags.push(t.as_str().unwrap().to_owned());
        }
        if let Some(link) = r.header("link") {
            let target = link
                .strip_prefix('<')
                .and_then(|l| l.split_once(">; rel=\"next\""))
                .map(|(t, _)| t.to_owned())
                .unwrap_or_else(|| panic!("not a next link: {link}"));
            links.push(target.clone());
            next = Some(target);
        }
    }
    (tags, links)
}

// Defect 13: pagination passes through; every link leads back to the mirror, by the way
// the client named the repository.
#[test]
fn tags_list_pages_follow_links_that_point_at_the_mirror() {
    let fake = FakeUpstream::start();
    let img = TestImage::new(45, &[10]);
    let names = ["1.0", "1.1", "2.0", "2.1", "3.0"];
    for tag in names {
        fake.push_image("library/app", tag, &img);
        fake.push_image("owner/app", tag, &img);
    }
    let m = Mirror::start_with(&fake, |c| {
        c.set_upstream(
            "ghcr.io".parse().unwrap(),
            regmirror::config::UpstreamUrl::parse(&fake.url()).unwrap(),
        )
    });
    let cases = [
        ("/v2/app/tags/list?n=2", "/v2/app/tags/list?"),
        (
            "/v2/library/app/tags/list?n=2",
            "/v2/library/app/tags/list?",
        ),
        (
            "/v2/owner/app/tags/list?n=2&ns=ghcr.io",
            "/v2/owner/app/tags/list?",
        ),
        (
            "/v2/ghcr.io/owner/app/tags/list?n=2",
            "/v2/ghcr.io/owner/app/tags/list?",
        ),
    ];
    for (first, prefix) in cases {
        let (tags, links) = all_pages(&m, first);
        assert_eq!(tags, names, "{first}");
        assert_eq!(links.len(), 2, "{first}: {links:?}");
        for link in &links {
            assert!(link.starts_with(prefix), "{first}: {link}");
            assert!(link.contains("n=2"), "{link}");
            assert_eq!(link.contains("ns=ghcr.io"), first.contains("ns="), "{link}");
        }
    }
    // Upstream saw n and last, nothing else.
    let asked: Vec<String> = fake
        .requests()
        .into_iter()
        .filter(|r| r.target.contains("/tags/list"))
        .map(|r| r.target)
        .collect();
    assert!(
        asked.contains(&"/v2/owner/app/tags/list?last=1.1&n=2".to_owned()),
        "{asked:?}"
    );
    // Offline, the tags the cache knows page the same way.
    pull(m.addr, "library/app", "1.0", &img);
    pull(m.addr, "library/app", "2.0", &img);
    pull(m.addr, "library/app", "3.0", &img);
    fake.fail_with(503, None);
    let r = get(m.addr, "/v2/app/tags/list?n=2");
    assert_eq!(r.json()["tags"], serde_json::json!(["1.0", "2.0"]));
    let link = r.header("link").expect("a next link from the cache");
    assert_eq!(link, r#"</v2/app/tags/list?last=2.0&n=2>; rel="next""#);
    let r = get(m.addr, "/v2/app/tags/list?last=2.0&n=2");
    assert_eq!(r.json()["tags"], serde_json::json!(["3.0"]));
    assert_eq!(r.header("link"), None);
}

// Defect 17: followers of a revalidation in progress are answered together, within the
// patience, not each after the one before.
#[test]
fn ten_pulls_of_a_stale_tag_behind_a_frozen_upstream_are_answered_together() {
    let fake = FakeUpstream::start();
    let img = TestImage::new(46, &[100]);
    fake.push_image("library/app", "latest", &img);
    let m = Mirror::start_with(&fake, |c| {
        c.tag_ttl = Duration::ZERO;
        c.upstream_timeout = Duration::from_secs(60);
    });
    pull(m.addr, "library/app", "latest", &img);
    fake.freeze();
    fake.clear_log();
    let clients: Vec<_> = (0..10)
        .map(|_| {
            let addr = m.addr;
            thread::spawn(move || {
                let t = Instant::now();
                let r = get(addr, "/v2/library/app/manifests/latest");
                (r, t.elapsed())
            })
        })
        .collect();
    let mut waits = Vec::new();
    for c in clients {
        let (r, waited) = c.join().unwrap();
        assert_eq!((r.status, r.body == img.manifest), (200, true));
        waits.push(waited);
    }
    let slowest = waits.iter().max().unwrap();
    assert!(
        *slowest < REVALIDATE_PATIENCE + Duration::from_millis(1500),
        "waits: {waits:?}"
    );
    assert_eq!(
        fake.count("HEAD", "/manifests/latest"),
        1,
        "one shared HEAD"
    );
    fake.heal();
}

// Defect 23: a revalidating HEAD needs only Docker-Content-Digest.
#[test]
fn a_revalidating_head_needs_only_docker_content_digest() {
    let fake = FakeUpstream::start();
    let v1 = TestImage::new(47, &[100]);
    fake.push_image("library/app", "latest", &v1);
    let m = Mirror::start_with(&fake, |c| c.tag_ttl = Duration::ZERO);
    pull(m.addr, "library/app", "latest", &v1);
    fake.omit_on_head("Content-Type");
    fake.omit_on_head("Content-Length");
    let v2 = TestImage::new(48, &[100]);
    fake.push_image("library/app", "latest", &v2);
    let r = manifest(&m, "library/app/manifests/latest");
    assert_eq!(
        (r.status, r.body == v2.manifest),
        (200, true),
        "{}",
        r.text()
    );
    assert_eq!(stale_count(&m), 0);
}

// Defect 23: a record stamped in the future (the Pi's clock jumped back before SNTP set
// it) is expired, not fresh for as long as the clock is behind.
#[test]
fn a_tag_record_stamped_in_the_future_counts_as_expired() {
    let fake = FakeUpstream::start();
    let v1 = TestImage::new(49, &[100]);
    fake.push_image("library/app", "latest", &v1);
    let m = Mirror::start_with(&fake, |c| c.tag_ttl = Duration::from_secs(3600));
    pull(m.addr, "library/app", "latest", &v1);
    let record = tag_record(&m, "library/app", "latest");
    let text = std::fs::read_to_string(&record).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    assert_eq!(lines.len(), 3, "digest, media type, checked: {text:?}");
    let tomorrow = SystemTime::now() + Duration::from_secs(86_400);
    let secs = tomorrow.duration_since(SystemTime::UNIX_EPOCH).unwrap();
    lines[2] = secs.as_secs().to_string();
    std::fs::write(&record, lines.join("\n") + "\n").unwrap();
    let v2 = TestImage::new(50, &[100]);
    fake.push_image("library/app", "latest", &v2);
    fake.clear_log();
    let r = manifest(&m, "library/app/manifests/latest");
    assert_eq!((r.status, r.body == v2.manifest), (200, true));
    assert_eq!(fake.count("HEAD", "/manifests/latest"), 1);
    // The new record is stamped now: fresh, no more upstream requests.
    let r = manifest(&m, "library/app/manifests/latest");
    assert_eq!(r.body, v2.manifest);
    assert_eq!(fake.requests().len(), 2, "{:?}", fake.requests());
}

// Coalescing: concurrent cold requests for one tag, or one digest, ask upstream once.
#[test]
fn concurrent_cold_requests_for_a_tag_or_a_digest_ask_upstream_once() {
    let fake = FakeUpstream::start();
    let a = TestImage::new(51, &[10]);
    let b = TestImage::new(52, &[10]);
    fake.push_image("library/app", "a", &a);
    let b_digest = fake.push_image("library/app", "b", &b);
    fake.delay(Duration::from_millis(300)); // all eight arrive while the first waits
    let m = Mirror::start(&fake);
    for (path, wanted) in [
        ("/v2/library/app/manifests/a".to_owned(), &a.manifest),
        (format!("/v2/library/app/manifests/{b_digest}"), &b.manifest),
    ] {
        let clients: Vec<_> = (0..8)
            .map(|_| {
                let (addr, path) = (m.addr, path.clone());
                thread::spawn(move || get(addr, &path))
            })
            .collect();
        for c in clients {
            let r = c.join().unwrap();
            assert_eq!((r.status, &r.body), (200, wanted), "{path}");
        }
    }
    assert_eq!(fake.count("GET", "/manifests/a"), 1);
    assert_eq!(fake.count("GET", &format!("/manifests/{b_digest}")), 1);
    assert_eq!(fake.count("HEAD", "/manifests/"), 0);
}
