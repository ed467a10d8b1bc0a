//! The scripted session of issue 7's "done when" — pull three images, pin one, fill the
//! budget so that others are evicted, take the upstream down — and the checks of the status
//! page against the JSON, `/metrics` and `regmirror ls` that `tests/page.rs` (the page as
//! served) and `tests/ui.rs` (the page as headless Chromium renders it) share.

use super::client::{get, request};
use super::mirror::{pull, wait_until, Mirror};
use super::process::run;
use super::{FakeUpstream, TestImage};
use regmirror::config::Credentials;
use std::time::Duration;

const TOKEN: &str = "page-admin-token-0123456789";

/// The session's end state.
pub struct Session {
    pub fake: FakeUpstream,
    pub m: Mirror,
    pub kept: TestImage,
    /// Blob GETs the upstream answered (each a fill).
    pub blob_gets: usize,
}

/// Pull three images, pin one, fill the budget, take the upstream down.
pub fn session() -> Session {
    let fake = FakeUpstream::start();
    fake.extra_header("ratelimit-limit", "100;w=21600");
    fake.ratelimit_remaining("76;w=21600");
    let imgs: Vec<TestImage> = (0..5).map(|i| TestImage::new(70 + i, &[150_000])).collect();
    let names = ["alpine", "busybox", "nginx", "redis", "postgres"];
    for (img, name) in imgs.iter().zip(names) {
        fake.push_image(&format!("library/{name}"), "1", img);
    }
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("admin.token");
    std::fs::write(&token, format!("{TOKEN}\n")).unwrap();
    let m = Mirror::start_with(&fake, |c| {
        c.admin_token_file = Some(token.clone());
        c.max_size = Some(500_000); // the pinned image and two others
        c.tag_ttl = Duration::ZERO; // every pull asks upstream
        c.state_save_interval = Duration::from_millis(50); // for `regmirror ls`
        c.upstreams[0].credentials = Some(Credentials {
            user: "pi-office".into(),
            password: "hunter2-secret".into(),
        });
    });
    for (img, name) in imgs.iter().zip(names).take(3) {
        pull(m.addr, &format!("library/{name}"), "1", img);
    }
    let auth = format!("Bearer {TOKEN}");
    let r = request(
        m.addr,
        "POST",
        "/_regmirror/admin/pin?image=alpine:1",
        &[("Authorization", &auth)],
    );
    assert_eq!(r.status, 202, "{}", r.text());
    wait_until("the pin's job is done", || {
        get(m.addr, "/_regmirror/prefetch").json()["jobs"][0]["state"] == "done"
    });
    for (img, name) in imgs.iter().zip(names).skip(3) {
        pull(m.addr, &format!("library/{name}"), "1", img);
    }
    let blob_gets = fake.count("GET", "/blobs/");
    fake.fail_with(503, None);
    // Revalidations fail: served stale, until the breaker opens.
    wait_until("the breaker opens", || {
        pull(m.addr, "library/alpine", "1", &imgs[0]);
        get(m.addr, "/_regmirror/status").json()["upstreams"][0]["available"] == false
    });
    let kept = imgs.into_iter().next().unwrap();
    Session {
        fake,
        m,
        kept,
        blob_gets,
    }
}

/// The `data-v` of the first `data-k="key"` in `html`.
pub fn value(html: &str, key: &str) -> u64 {
    let at = html
        .find(&format!("data-k=\"{key}\" data-v=\""))
        .unwrap_or_else(|| panic!("no {key} on the page"));
    let rest = &html[at + key.len() + 18..];
    rest[..rest.find('"').unwrap()].parse().unwrap()
}

/// The attributes of the image row `name`: (size, pulls, pinned, complete).
pub fn row(html: &str, name: &str) -> (u64, u64, u64, u64) {
    let at = html
        .find(&format!("<tr data-image=\"{name}\""))
        .unwrap_or_else(|| panic!("no row for {name}"));
    let tag = &html[at..at + html[at..].find('>').unwrap()];
    let attr = |a: &str| -> u64 {
        let s = &tag[tag.find(&format!("{a}=\"")).unwrap() + a.len() + 2..];
        s[..s.find('"').unwrap()].parse().unwrap()
    };
    (
        attr("data-size"),
        attr("data-pulls"),
        attr("data-pinned"),
        attr("data-complete"),
    )
}

/// A sample's value in Prometheus text.
pub fn sample(metrics: &str, series: &str) -> u64 {
    let line = metrics
        .lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .unwrap_or_else(|| panic!("no {series} in\n{metrics}"));
    line[series.len() + 1..].parse().unwrap()
}

/// Every check of the page against the JSON and `/metrics`.
pub fn check_page(s: &Session, html: &str) {
    let addr = s.m.addr;
    let status = get(addr, "/_regmirror/status").json();
    let images = get(addr, "/_regmirror/images").json();
    let metrics = get(addr, "/metrics").text();
    let c = &status["cache"];
    assert_eq!(value(html, "cache-bytes"), c["bytes"].as_u64().unwrap());
    assert_eq!(value(html, "budget-bytes"), 500_000);
    assert_eq!(value(html, "blobs"), c["blobs"].as_u64().unwrap());
    let pinned = images["pinned_bytes"].as_u64().unwrap();
    let k = &s.kept;
    assert_eq!(
        pinned,
        (k.manifest.len() + k.config.len() + k.layers[0].len()) as u64
    );
    assert_eq!(value(html, "pinned-bytes"), pinned);
    assert_eq!(
        value(html, "saved-bytes"),
        status["saved_bytes"].as_u64().unwrap()
    );
    assert_eq!(
        value(html, "upstream-bytes"),
        status["upstream_bytes"].as_u64().unwrap()
    );
    let evicted = status["evicted_bytes"].as_u64().unwrap();
    assert!(evicted >= 150_000, "the budget made room: {status}");
    assert_eq!(value(html, "evicted-bytes"), evicted);
    assert_eq!(
        value(html, "evictions"),
        status["evictions"].as_u64().unwrap()
    );

    // What is cached: every image of the JSON, with its numbers.
    let list = images["images"].as_array().unwrap();
    assert_eq!(list.len(), 5);
    assert_eq!(value(html, "images"), 5);
    for i in list {
        let name = i["image"].as_str().unwrap();
        let want = (
            i["size_bytes"].as_u64().unwrap(),
            i["pulls"].as_u64().unwrap(),
            u64::from(i["pinned"] == true),
            u64::from(i["complete"] == true),
        );
        assert_eq!(row(html, name), want, "{name}");
    }
    let find = |n: &str| list.iter().find(|i| i["image"] == n).unwrap();
    assert_eq!(find("docker.io/library/alpine:1")["pinned"], true);
    assert_eq!(
        find("docker.io/library/alpine:1")["complete"],
        true,
        "pinned: never evicted"
    );
    // The least recently used went whole; the newest images are whole (none lost its
    // manifest to the reservation of its own layer).
    for (name, complete) in [
        ("busybox", false),
        ("nginx", false),
        ("redis", true),
        ("postgres", true),
    ] {
        let i = find(&format!("docker.io/library/{name}:1"));
        assert_eq!(i["complete"], complete, "{name}: {i}");
    }

    // The upstream is down, with why; its allowance and user name (never the password).
    let up = &status["upstreams"][0];
    assert_eq!(up["available"], false);
    assert!(html.contains("data-upstream=\"docker.io\" data-available=\"0\""));
    assert!(html.contains("circuit open"));
    let cause = up["last_failure"].as_str().unwrap();
    assert!(cause.contains("503"), "{cause}");
    assert!(html.contains(&format!("<span data-k=\"last-failure\">{cause}</span>")));
    assert_eq!(value(html, "ratelimit-remaining"), 76);
    assert_eq!(value(html, "ratelimit-limit"), 100);
    assert!(
        html.contains("6 h left") || html.contains("per 6 h"),
        "the window"
    );
    assert!(html.contains("<b data-k=\"user\">pi-office</b>"));
    assert!(!html.contains("hunter2"));
    assert!(!metrics.contains("hunter2"));
    // Recent requests, coloured by outcome: the stale answers of the outage.
    assert!(html.contains("data-outcome=\"STALE\"><td><span class=\"o stale\">STALE</span>"));
    assert!(html.contains("data-outcome=\"MISS\""));

    // /metrics says the same.
    assert_eq!(sample(&metrics, "regmirror_evicted_bytes_total"), evicted);
    assert_eq!(sample(&metrics, "regmirror_pinned_bytes"), pinned);
    assert_eq!(
        sample(&metrics, "regmirror_saved_bytes_total"),
        status["saved_bytes"].as_u64().unwrap()
    );
    assert_eq!(
        sample(
            &metrics,
            "regmirror_served_bytes_total{upstream=\"docker.io\",source=\"cache\"}"
        ),
        status["saved_bytes"].as_u64().unwrap()
    );
    assert_eq!(
        sample(
            &metrics,
            "regmirror_fetched_bytes_total{upstream=\"docker.io\"}"
        ),
        status["upstream_bytes"].as_u64().unwrap()
    );
    let r = &status["requests"];
    for o in ["hit", "miss", "stale", "coalesced", "pass", "error"] {
        assert_eq!(
            sample(
                &metrics,
                &format!("regmirror_requests_total{{upstream=\"docker.io\",outcome=\"{o}\"}}")
            ),
            r[o].as_u64().unwrap(),
            "{o}"
        );
    }
    assert!(r["stale"].as_u64().unwrap() >= 3);
    assert_eq!(
        sample(
            &metrics,
            "regmirror_upstream_available{upstream=\"docker.io\"}"
        ),
        0
    );
    assert_eq!(
        sample(
            &metrics,
            "regmirror_upstream_ratelimit_limit{upstream=\"docker.io\"}"
        ),
        100
    );
    assert_eq!(
        sample(
            &metrics,
            "regmirror_upstream_ratelimit_remaining{upstream=\"docker.io\"}"
        ),
        76
    );
    assert_eq!(
        sample(
            &metrics,
            "regmirror_upstream_ratelimit_window_seconds{upstream=\"docker.io\"}"
        ),
        21600
    );
    assert_eq!(
        sample(&metrics, "regmirror_fill_duration_seconds_count"),
        s.blob_gets as u64,
        "one fill per blob fetched"
    );
    assert_eq!(
        sample(
            &metrics,
            "regmirror_fill_duration_seconds_bucket{le=\"+Inf\"}"
        ),
        s.blob_gets as u64
    );
}

/// `regmirror ls` on the cache directory lists the same images with the same pulls.
pub fn check_ls(s: &Session) {
    let images = get(s.m.addr, "/_regmirror/images").json();
    let dir = s.m.dir.path();
    let mut out = String::new();
    wait_until("regmirror ls shows the saved pull counters", || {
        let r = run(dir, &["ls", "--cache-dir", dir.to_str().unwrap()]);
        assert_eq!(r.code(), Some(0), "{r:?}");
        out = r.stdout.clone();
        images["images"].as_array().unwrap().iter().all(|i| {
            out.lines().any(|l| {
                let cells: Vec<&str> = l
                    .split("  ")
                    .map(str::trim)
                    .filter(|c| !c.is_empty())
                    .collect();
                cells.first() == i["image"].as_str().as_ref()
                    && cells[cells.len() - 3].parse::<u64>().ok() == i["pulls"].as_u64()
                    && cells[cells.len() - 2] == if i["pinned"] == true { "yes" } else { "no" }
            })
        })
    });
    assert!(out.lines().next().unwrap().starts_with("IMAGE"), "{out}");
}
