//! The admin actions (prefetch, pin, unpin, evict) behind `--admin-token-file`, and what
//! Docker Hub's allowance changes: a prefetch that waits, tags revalidated less often.

mod support;

use std::net::SocketAddr;
use std::time::Duration;
use support::client::{get, request, Resp};
use support::mirror::{pull, spawn_in, wait_until, Mirror};
use support::{FakeUpstream, TestImage};

const TOKEN: &str = "s3cret-admin-token-for-tests";

fn with_token(dir: &std::path::Path) -> std::path::PathBuf {
    let p = dir.join("admin.token");
    std::fs::write(&p, format!("{TOKEN}\n")).unwrap();
    p
}

fn post(addr: SocketAddr, path: &str, token: Option<&str>) -> Resp {
    let auth = token.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("Authorization", a.as_str())).collect();
    request(addr, "POST", path, &headers)
}

fn job(addr: SocketAddr, id: u64) -> serde_json::Value {
    get(addr, &format!("/_regmirror/prefetch?id={id}")).json()["jobs"][0].clone()
}

fn wait_job(addr: SocketAddr, id: u64) -> serde_json::Value {
    let mut j = serde_json::Value::Null;
    wait_until("the job finishes", || {
        j = job(addr, id);
        j["state"] == "done" || j["state"] == "failed"
    });
    j
}

fn message(r: &Resp) -> String {
    r.json()["errors"][0]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn admin_actions_are_refused_without_a_token_file_and_without_the_right_token() {
    let fake = FakeUpstream::start();
    let off = Mirror::start(&fake);
    for action in ["prefetch", "pin", "unpin", "evict"] {
        let r = post(
            off.addr,
            &format!("/_regmirror/admin/{action}?image=alpine"),
            Some(TOKEN),
        );
        assert_eq!(
            (r.status, r.error_code()),
            (403, "DENIED".into()),
            "{action}"
        );
        assert!(message(&r).contains("--admin-token-file"), "{}", r.text());
    }
    let dir = tempfile::tempdir().unwrap();
    let token = with_token(dir.path());
    let on = Mirror::start_with(&fake, |c| c.admin_token_file = Some(token.clone()));
    let path = "/_regmirror/admin/prefetch?image=alpine";
    let r = post(on.addr, path, None);
    assert_eq!((r.status, r.error_code()), (401, "UNAUTHORIZED".into()));
    assert!(message(&r).contains("--admin-token-file"), "{}", r.text());
    let r = post(on.addr, path, Some("s3cret-admin-token-for-test"));
    assert_eq!(r.status, 401);
    assert!(message(&r).contains("wrong admin token"), "{}", r.text());
    let r = request(
        on.addr,
        "GET",
        path,
        &[("Authorization", &format!("Bearer {TOKEN}"))],
    );
    assert_eq!(r.status, 405, "a GET never acts");
    assert!(get(on.addr, "/_regmirror/prefetch").json()["jobs"]
        .as_array()
        .unwrap()
        .is_empty());
    let r = post(on.addr, "/_regmirror/admin/reboot", Some(TOKEN));
    assert_eq!(r.status, 404);
    let r = post(on.addr, "/_regmirror/admin/prefetch", Some(TOKEN));
    assert_eq!(r.status, 400, "no image named");
    let r = post(
        on.addr,
        "/_regmirror/admin/prefetch?image=quay.io%2Fx%3A1",
        Some(TOKEN),
    );
    assert_eq!(r.status, 404, "not an upstream here: {}", r.text());
    // A short token file is a start-up error.
    std::fs::write(&token, "short\n").unwrap();
    let e = spawn_in(&fake, &dir.path().join("c"), |c| {
        c.admin_token_file = Some(token.clone())
    })
    .unwrap_err();
    assert!(e.contains("shorter than 16"), "{e}");
}

#[test]
fn a_prefetch_fetches_what_a_pull_would_and_reports_its_progress() {
    let fake = FakeUpstream::start();
    let img = TestImage::new(50, &[300_000, 40_000]);
    fake.push_image("library/app", "2", &img);
    let dir = tempfile::tempdir().unwrap();
    let token = with_token(dir.path());
    let m = Mirror::start_with(&fake, |c| {
        c.admin_token_file = Some(token.clone());
        c.upstream_timeout = Duration::from_secs(1);
    });
    // The big layer stalls half-way once: the job shows bytes done of the total meanwhile.
    fake.stall_next_blob_after(100_000);
    let r = post(
        m.addr,
        "/_regmirror/admin/prefetch?image=app:2&image=nothing:1",
        Some(TOKEN),
    );
    assert_eq!(r.status, 202, "{}", r.text());
    let ids: Vec<u64> = r.json()["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    let total = (img.config.len() + 340_000) as u64;
    let mut seen_partway = false;
    wait_until("the job is part-way", || {
        let j = job(m.addr, ids[0]);
        let done = j["done_bytes"].as_u64().unwrap_or(0);
        seen_partway = j["state"] == "fetching" && done >= 100_000 && done < total;
        seen_partway || j["state"] == "done"
    });
    assert!(seen_partway, "progress was visible while the layer came");
    let j = wait_job(m.addr, ids[0]);
    assert_eq!(j["state"], "done", "{j}");
    assert_eq!(
        (j["done_bytes"].as_u64(), j["total_bytes"].as_u64()),
        (Some(total), Some(total))
    );
    assert_eq!(
        (j["blobs_done"].as_u64(), j["blobs_total"].as_u64()),
        (Some(3), Some(3))
    );
    let missing = wait_job(m.addr, ids[1]);
    assert_eq!(missing["state"], "failed");
    assert!(
        missing["error"].as_str().unwrap().contains("no such tag"),
        "{missing}"
    );
    // What a pull would have cached: the next pull fetches nothing.
    fake.clear_log();
    pull(m.addr, "library/app", "2", &img);
    assert!(
        fake.requests()
            .iter()
            .all(|r| !r.target.contains("/blobs/")),
        "{:?}",
        fake.requests()
    );
    let i = &get(m.addr, "/_regmirror/images").json()["images"][0];
    assert_eq!(i["complete"], true);
    assert_eq!(i["pinned"], false, "a prefetch does not pin");
}

#[test]
fn a_prefetch_and_a_client_pulling_the_same_image_at_once_cost_one_fetch_per_blob() {
    let fake = FakeUpstream::start();
    let img = TestImage::new(55, &[2 << 20, 3 << 20]);
    fake.push_image("library/big", "1", &img);
    fake.delay(Duration::from_millis(150)); // both are asking while the first fetch connects
    let dir = tempfile::tempdir().unwrap();
    let token = with_token(dir.path());
    let m = Mirror::start_with(&fake, |c| c.admin_token_file = Some(token.clone()));
    let r = post(
        m.addr,
        "/_regmirror/admin/prefetch?image=big:1",
        Some(TOKEN),
    );
    let id = r.json()["jobs"][0].as_u64().unwrap();
    let addr = m.addr;
    let client = {
        let img = img.clone();
        std::thread::spawn(move || pull(addr, "library/big", "1", &img))
    };
    client.join().unwrap();
    assert_eq!(wait_job(m.addr, id)["state"], "done");
    for d in [
        img.config_digest(),
        img.layer_digest(0),
        img.layer_digest(1),
    ] {
        assert_eq!(fake.count("GET", &d), 1, "{d}");
    }
}

#[test]
fn pin_unpin_and_evict_one_image() {
    let fake = FakeUpstream::start();
    let (a, b) = (TestImage::new(60, &[10_000]), TestImage::new(61, &[20_000]));
    fake.push_image("library/a", "1", &a);
    fake.push_image("library/b", "1", &b);
    let dir = tempfile::tempdir().unwrap();
    let token = with_token(dir.path());
    let m = Mirror::start_with(&fake, |c| c.admin_token_file = Some(token.clone()));
    pull(m.addr, "library/b", "1", &b);
    let r = post(m.addr, "/_regmirror/admin/pin?image=a:1", Some(TOKEN));
    assert_eq!(r.status, 202, "{}", r.text());
    assert_eq!(r.json()["pinned"], "docker.io/library/a:1");
    let j = wait_job(m.addr, r.json()["job"].as_u64().unwrap());
    assert_eq!(
        (j["state"].as_str(), j["origin"].as_str()),
        (Some("done"), Some("pin"))
    );
    let r = post(m.addr, "/_regmirror/admin/evict?image=a:1", Some(TOKEN));
    assert_eq!(r.status, 409);
    assert!(message(&r).contains("unpin it first"), "{}", r.text());

    // The pin survives a restart (a second mirror on the same directory).
    let again = spawn_in(&fake, m.dir.path(), |c| {
        c.admin_token_file = Some(token.clone())
    })
    .unwrap();
    let images = get(again, "/_regmirror/images").json();
    assert_eq!(images["images"][0]["pinned_by"], "admin", "{images}");

    let r = post(m.addr, "/_regmirror/admin/unpin?image=a:1", Some(TOKEN));
    assert_eq!(r.status, 200, "{}", r.text());
    let r = post(m.addr, "/_regmirror/admin/unpin?image=a:1", Some(TOKEN));
    assert_eq!(r.status, 409, "not pinned any more");
    let r = post(m.addr, "/_regmirror/admin/evict?image=a:1", Some(TOKEN));
    assert_eq!(r.status, 200, "{}", r.text());
    let freed = r.json()["freed_bytes"].as_u64().unwrap();
    assert_eq!(
        freed,
        (a.manifest.len() + a.config.len() + a.layers[0].len()) as u64
    );
    assert!(!m.blob_file(&a.layer_digest(0)).exists());
    assert!(
        m.blob_file(&b.layer_digest(0)).exists(),
        "the other image is untouched"
    );
    let images = get(m.addr, "/_regmirror/images").json();
    let names: Vec<&str> = images["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["image"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["docker.io/library/b:1"]);
    let r = post(m.addr, "/_regmirror/admin/evict?image=a:1", Some(TOKEN));
    assert_eq!(r.status, 404);
}

#[test]
fn a_pin_that_cannot_fit_the_budget_fails_and_is_undone() {
    let fake = FakeUpstream::start();
    let img = TestImage::new(70, &[400_000]);
    fake.push_image("library/huge", "1", &img);
    let dir = tempfile::tempdir().unwrap();
    let token = with_token(dir.path());
    let m = Mirror::start_with(&fake, |c| {
        c.admin_token_file = Some(token.clone());
        c.max_size = Some(300_000);
    });
    let r = post(m.addr, "/_regmirror/admin/pin?image=huge:1", Some(TOKEN));
    let j = wait_job(m.addr, r.json()["job"].as_u64().unwrap());
    assert_eq!(j["state"], "failed");
    assert!(j["error"].as_str().unwrap().contains("budget"), "{j}");
    assert!(get(m.addr, "/_regmirror/pins").json()["pins"]
        .as_array()
        .unwrap()
        .is_empty());
    assert_eq!(
        fake.count("GET", &img.layer_digest(0)),
        0,
        "sized before fetched"
    );
}

#[test]
fn a_prefetch_waits_while_the_hub_allowance_is_low_and_says_why() {
    let fake = FakeUpstream::start();
    let img = TestImage::new(80, &[5000]);
    fake.push_image("library/app", "1", &img);
    fake.extra_header("ratelimit-limit", "100;w=21600");
    fake.ratelimit_remaining("18;w=21600");
    let dir = tempfile::tempdir().unwrap();
    let token = with_token(dir.path());
    let m = Mirror::start_with(&fake, |c| {
        c.admin_token_file = Some(token.clone());
        c.allowance_recheck = Duration::from_millis(200);
    });
    let r = post(
        m.addr,
        "/_regmirror/admin/prefetch?image=app:1",
        Some(TOKEN),
    );
    let id = r.json()["jobs"][0].as_u64().unwrap();
    wait_until("the job waits", || job(m.addr, id)["state"] == "waiting");
    let j = job(m.addr, id);
    assert_eq!(
        j["reason"],
        "Docker Hub allowance: 18 of 100 left, holding the last 20 %"
    );
    let heads = fake.count("HEAD", "/manifests/1");
    wait_until("it looks again with a free HEAD", || {
        fake.count("HEAD", "/manifests/1") > heads
    });
    assert_eq!(fake.count("GET", "/manifests/"), 0, "no pull was spent");
    let a = &get(m.addr, "/_regmirror/allowance").json()["upstreams"][0];
    assert_eq!(
        (a["remaining"].as_u64(), a["limit"].as_u64()),
        (Some(18), Some(100))
    );
    assert_eq!(a["prefetch_holding"], true);
    fake.ratelimit_remaining("90;w=21600");
    assert_eq!(wait_job(m.addr, id)["state"], "done");
}

#[test]
fn tags_are_revalidated_less_often_while_the_allowance_is_low() {
    regmirror::logger::init(false); // the ring behind /_regmirror/log (process-wide)
    let fake = FakeUpstream::start();
    let img = TestImage::new(90, &[1000]);
    fake.push_image("library/app", "1", &img);
    fake.extra_header("ratelimit-limit", "100;w=21600");
    fake.ratelimit_remaining("90;w=21600");
    let m = Mirror::start_with(&fake, |c| c.tag_ttl = Duration::from_millis(300));
    let manifest = "/v2/library/app/manifests/1";
    let heads = || fake.count("HEAD", "/manifests/1");
    assert_eq!(get(m.addr, manifest).status, 200);
    assert!(!get(m.addr, "/").text().contains("Saving pulls"));
    std::thread::sleep(Duration::from_millis(400));
    fake.ratelimit_remaining("10;w=21600");
    assert_eq!(get(m.addr, manifest).status, 200);
    assert_eq!(heads(), 1, "revalidated after the TTL; saw 10 left");
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(get(m.addr, manifest).status, 200);
    assert_eq!(heads(), 1, "the TTL is stretched now");
    let a = &get(m.addr, "/_regmirror/allowance").json()["upstreams"][0];
    assert_eq!(a["ttl_stretched"], true);
    // 300 ms × 12
    assert_eq!(a["tag_ttl_seconds"], 3, "{a}");
    // The status page says so too, beside the allowance.
    let page = get(m.addr, "/").text();
    assert!(
        page.contains("Saving pulls") && page.contains("tags revalidated every"),
        "{page}"
    );
    let log = get(m.addr, "/_regmirror/log").text();
    assert!(
        log.contains("10 of 100 pulls left (below 20 %): tags are revalidated every"),
        "{log}"
    );
}
