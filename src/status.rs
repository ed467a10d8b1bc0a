//! The mirror's own read-only endpoints: `/_regmirror/status` (JSON for people and
//! scripts; on a headless Pi this is the dashboard), `/metrics` (Prometheus), `/v2/_catalog`
//! (repositories in the cache).

use crate::mirror::Mirror;
use serde_json::json;

/// `/_regmirror/status`
pub fn status(mirror: &Mirror) -> String {
    let c = mirror.cache.stats();
    let m = &mirror.metrics;
    let upstreams: Vec<_> = mirror
        .upstreams
        .all()
        .map(|r| {
            let s = r.status();
            json!({
                "name": s.name,
                "url": s.url,
                "available": s.available,
                "consecutive_failures": s.consecutive_failures,
                "ratelimit_remaining": s.ratelimit_remaining.map(|r| r.value),
            })
        })
        .collect();
    json!({
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_seconds": m.uptime_seconds(),
        "cache": {
            "dir": mirror.cache.root().display().to_string(),
            "bytes": c.cached,
            "partial_bytes": c.partial,
            "index_complete": c.indexed,
            "reserved_bytes": c.reserved,
            "budget_bytes": c.max,
            "blobs": c.blobs,
            "fills_in_progress": c.fills,
        },
        "host": mirror.host_info.as_deref().map(crate::host_info::read),
        "tag_ttl_seconds": mirror.tag_ttl.as_secs(),
        "upstreams": upstreams,
        "requests": {
            "hit": m.requests_hit.get(),
            "miss": m.requests_miss.get(),
            "coalesced": m.requests_coalesced.get(),
            "stale": m.requests_stale.get(),
            "pass": m.requests_pass.get(),
            "error": m.requests_error.get(),
        },
        "upstream_bytes": m.upstream_bytes.get(),
        "sent_bytes": m.sent_bytes.get(),
    })
    .to_string()
}

/// `/metrics`
pub fn metrics(mirror: &Mirror) -> String {
    let c = mirror.cache.stats();
    let mut out = mirror.metrics.render(&[
        ("regmirror_cache_bytes", "bytes of cached blobs", c.cached),
        (
            "regmirror_cache_budget_bytes",
            "byte budget of the cache",
            c.max,
        ),
        ("regmirror_cache_blobs", "cached blobs", c.blobs as u64),
        (
            "regmirror_fills_in_progress",
            "upstream fills in progress",
            c.fills as u64,
        ),
    ]);
    out.push_str(
        "# HELP regmirror_upstream_available 1 while the upstream's circuit breaker is closed\n",
    );
    out.push_str("# TYPE regmirror_upstream_available gauge\n");
    for r in mirror.upstreams.all() {
        let s = r.status();
        out.push_str(&format!(
            "regmirror_upstream_available{{upstream=\"{}\"}} {}\n",
            s.name,
            u8::from(s.available)
        ));
    }
    out
}

/// `/v2/_catalog`: cached repositories (Docker Hub ones bare, others prefixed by upstream).
pub fn catalog(mirror: &Mirror) -> String {
    let repos: Vec<String> = mirror
        .cache
        .repositories()
        .into_iter()
        .map(|(up, repo)| {
            if up.is_docker_hub() {
                repo
            } else {
                format!("{up}/{repo}")
            }
        })
        .collect();
    json!({ "repositories": repos }).to_string()
}
