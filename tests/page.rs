//! The status page as served, in-process against the fake upstream: after issue 7's scripted
//! session its numbers are those of the JSON, `/metrics` and `regmirror ls`
//! (`support/session.rs`); the table sorts, each image has a page, fills show their progress,
//! and the snippets use the `Host` the browser used — a hostile one injects nothing. The same
//! checks on what headless Chromium renders are in `tests/ui.rs`.

mod support;

use std::time::Duration;
use support::client::{exchange, get};
use support::mirror::{pull, wait_until, Mirror};
use support::session::{check_ls, check_page, session, value};
use support::{FakeUpstream, TestImage};

#[test]
fn the_page_shows_what_the_json_ls_and_metrics_say_after_a_scripted_session() {
    let s = session();
    let page = get(s.m.addr, "/");
    assert_eq!(page.status, 200);
    assert_eq!(
        page.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    let html = page.text();
    check_page(&s, &html);
    check_ls(&s);
    // The same page at /_regmirror/, small enough for a Pi Zero and a phone.
    assert_eq!(get(s.m.addr, "/_regmirror/").status, 200);
    assert!(html.len() < 48 * 1024, "{} bytes", html.len());
    assert!(
        !html.contains("<script") && !html.contains("src=\"http"),
        "no script, no external asset"
    );
    // The pinned image survived the outage: served from disk.
    s.fake.clear_log();
    pull(s.m.addr, "library/alpine", "1", &s.kept);
    assert_eq!(s.fake.count("GET", "/blobs/"), 0);
}

#[test]
fn the_table_sorts_on_the_server_and_each_image_has_a_page() {
    let s = session();
    let html = get(s.m.addr, "/?sort=pulls").text();
    let first = html.find("<tr data-image=").unwrap();
    assert!(
        html[first..].starts_with("<tr data-image=\"docker.io/library/alpine:1\""),
        "most pulled first"
    );
    let by_name = get(s.m.addr, "/").text();
    let first = by_name.find("<tr data-image=").unwrap();
    assert!(by_name[first..].starts_with("<tr data-image=\"docker.io/library/alpine:1\""));
    let busybox = by_name
        .find("data-image=\"docker.io/library/busybox:1\"")
        .unwrap();
    let redis = by_name
        .find("data-image=\"docker.io/library/redis:1\"")
        .unwrap();
    assert!(busybox < redis, "by name");
    let page = get(
        s.m.addr,
        "/_regmirror/image?image=docker.io%2Flibrary%2Falpine%3A1",
    );
    assert_eq!(page.status, 200);
    let p = page.text();
    let json = get(s.m.addr, "/_regmirror/images?image=alpine:1").json();
    assert!(p.contains(&format!(
        "<code data-k=\"digest\">{}</code>",
        json["digest"].as_str().unwrap()
    )));
    assert_eq!(value(&p, "size"), json["size_bytes"].as_u64().unwrap());
    assert_eq!(value(&p, "pulls"), json["pulls"].as_u64().unwrap());
    assert!(p.contains("pinned by an operator"));
    assert_eq!(get(s.m.addr, "/_regmirror/image?image=nope:1").status, 404);
}

#[test]
fn snippets_use_the_host_the_browser_used_and_a_hostile_host_injects_nothing() {
    let fake = FakeUpstream::start();
    let m = Mirror::start(&fake);
    let with_host = |host: &str| {
        let s = std::net::TcpStream::connect(m.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        exchange(s, host, "GET", "/", &[])
    };
    let r = with_host("pi.local:5000");
    let html = r.text();
    assert!(html.contains("&quot;registry-mirrors&quot;: [&quot;http://pi.local:5000&quot;]"));
    assert!(html.contains("[host.&quot;http://pi.local:5000&quot;]"));
    assert!(html.contains("location = &quot;pi.local:5000&quot;"));
    // Characters the request parser lets through in a Host, used to break out of markup.
    let hostile = "x'onmouseover=alert(1)&y";
    let r = with_host(hostile);
    assert_eq!(r.status, 200);
    let html = r.text();
    assert!(
        !html.contains("onmouseover"),
        "a hostile Host is not repeated"
    );
    assert!(
        html.contains(&format!("http://{}", m.addr)),
        "the listen address instead"
    );
    // A hostile image name in the query gets the JSON error, never an HTML page.
    let r = get(m.addr, "/_regmirror/image?image=%3Cscript%3E");
    assert_eq!(r.status, 400);
    assert_eq!(r.header("content-type"), Some("application/json"));
}

#[test]
fn a_fill_in_progress_shows_its_bytes_total_and_followers_as_the_json_does() {
    let fake = FakeUpstream::start();
    let img = TestImage::new(90, &[300_000]);
    fake.push_image("library/big", "1", &img);
    let m = Mirror::start_with(&fake, |c| c.upstream_timeout = Duration::from_secs(4));
    fake.stall_next_blob_after(100_000);
    let addr = m.addr;
    let layer = img.layer_digest(0);
    let path = format!("/v2/library/big/blobs/{layer}");
    let client = std::thread::spawn(move || get(addr, &path));
    let mut fill = serde_json::Value::Null;
    wait_until("the fill has stalled at 100 kB", || {
        fill = get(addr, "/_regmirror/status").json()["fills"][0].clone();
        fill["written_bytes"] == 100_000
    });
    assert_eq!(fill["digest"], layer.as_str());
    assert_eq!(fill["total_bytes"], 300_000);
    assert_eq!(fill["followers"], 1);
    let html = get(addr, "/").text();
    assert!(html.contains(&format!("data-digest=\"{layer}\"")));
    assert_eq!(value(&html, "fill-written"), 100_000);
    assert_eq!(value(&html, "fill-followers"), 1);
    assert!(html.contains("of 300 kB"));
    assert!(html.contains("aria-valuenow=\"33\""), "a third done");
    assert!(
        html.contains("http-equiv=\"refresh\""),
        "follows itself while work runs"
    );
    // The fill resumes after the stall and the client gets the whole blob.
    let r = client.join().unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.body, img.layers[0]);
    let html = get(addr, "/").text();
    assert!(html.contains("None right now."));
    assert!(!html.contains("http-equiv=\"refresh\""));
    pull(addr, "library/big", "1", &img);
}

#[test]
fn every_metric_the_sample_grafana_dashboard_uses_is_exported() {
    let fake = FakeUpstream::start();
    fake.extra_header("ratelimit-limit", "100;w=21600");
    fake.ratelimit_remaining("70");
    let img = TestImage::new(91, &[1000]);
    fake.push_image("library/a", "1", &img);
    let m = Mirror::start(&fake);
    pull(m.addr, "library/a", "1", &img);
    let metrics = get(m.addr, "/metrics").text();
    let dashboard = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/docs/grafana-dashboard.json"
    ))
    .unwrap();
    let d: serde_json::Value = serde_json::from_str(&dashboard).unwrap();
    let mut used = 0;
    for p in d["panels"].as_array().unwrap() {
        for t in p["targets"].as_array().unwrap() {
            let expr = t["expr"].as_str().unwrap();
            for (at, _) in expr.match_indices("regmirror_") {
                let name: String = expr[at..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                let family = name.strip_suffix("_bucket").unwrap_or(&name);
                assert!(
                    metrics.contains(&format!("# TYPE {family} ")),
                    "{name} (panel {}) is not in /metrics",
                    p["title"]
                );
                assert!(
                    metrics
                        .lines()
                        .any(|l| l.starts_with(&name) && !l.starts_with('#')),
                    "{name} has no sample"
                );
                used += 1;
            }
        }
    }
    assert!(used >= 12, "{used}");
}

#[test]
fn the_page_says_what_the_host_calls_itself_escaped() {
    let fake = FakeUpstream::start();
    let dir = tempfile::tempdir().unwrap();
    let info = dir.path().join("network.json");
    std::fs::write(
        &info,
        r#"{"hostname":"pi","mdns_name":"regmirror.local","addresses":[
            {"interface":"eth0","address":"192.168.1.20"},
            {"interface":"wlan0","address":"<img src=x onerror=alert(1)>"}]}"#,
    )
    .unwrap();
    let m = Mirror::start_with(&fake, |c| c.host_info = Some(info.clone()));
    let html = get(m.addr, "/").text();
    assert!(
        html.contains(
            "This box: <b>regmirror.local</b> (192.168.1.20, &lt;img src=x onerror=alert(1)&gt;)"
        ),
        "{html}"
    );
    assert!(!html.contains("<img"));
}
