//! The mirror's own read-only endpoints: `/_regmirror/status` (JSON for scripts; the
//! status page at `/` shows the same numbers, `page/`), `/metrics` (Prometheus),
//! `/v2/_catalog` (repositories in the cache).

use crate::metrics::render::{family, label};
use crate::mirror::allowance::Allowance;
use crate::mirror::pulls::unix;
use crate::mirror::Mirror;
use serde_json::json;

/// Free bytes on the cache's filesystem, if it can be measured.
pub fn disk_free(mirror: &Mirror) -> Option<u64> {
    crate::budget::space(mirror.cache.root())
        .ok()
        .map(|s| s.avail)
}

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
                "ratelimit_remaining": s.ratelimit_remaining.as_ref().map(|r| &r.value),
                "ratelimit_limit": s.ratelimit_limit.as_ref().map(|r| &r.value),
                "ratelimit_seen_unix": s.ratelimit_remaining.as_ref().map(|r| unix(r.at)),
                "last_failure": s.last_failure.as_ref().map(|f| &f.cause),
                "last_failure_unix": s.last_failure.as_ref().map(|f| unix(f.at)),
                "user": r.user(),
                "requests": m.upstream(r.name()).requests,
                "cache_bytes": m.upstream(r.name()).cache_bytes,
                "fetched_bytes": m.upstream(r.name()).fetched_bytes,
            })
        })
        .collect();
    let fills: Vec<_> = mirror
        .cache
        .fills_in_progress()
        .iter()
        .map(|f| {
            json!({
                "digest": f.digest().to_string(),
                "written_bytes": f.written(),
                "total_bytes": f.total(),
                "followers": f.followers(),
                "seconds": f.started().elapsed().as_secs_f64(),
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
            "pinned_bytes": c.pinned,
            "disk_free_bytes": disk_free(mirror),
        },
        "fills": fills,
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
        "saved_bytes": m.saved_bytes.get(),
        "evictions": m.evictions.get(),
        "evicted_bytes": m.evicted_bytes.get(),
        "read_ahead": {
            "enabled": mirror.read_ahead_enabled(),
            "queued": mirror.read_ahead_queued(),
            "blobs": m.read_ahead_blobs.get(),
            "bytes": m.read_ahead_bytes.get(),
        },
        "memory": crate::memory::now().map(|mem| json!({
            "resident_bytes": mem.resident,
            "anonymous_bytes": mem.anonymous,
            "file_bytes": mem.file,
            "peak_bytes": mem.peak,
        })),
    })
    .to_string()
}

/// `/metrics`
pub fn metrics(mirror: &Mirror) -> String {
    let c = mirror.cache.stats();
    let mem = crate::memory::now().unwrap_or_default();
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
        (
            "regmirror_pinned_bytes",
            "bytes of pinned images (never evicted; counted against the budget)",
            c.pinned,
        ),
        (
            "regmirror_partial_bytes",
            "bytes of partial blobs kept for a resume",
            c.partial,
        ),
        (
            "regmirror_disk_free_bytes",
            "free bytes on the cache's filesystem",
            disk_free(mirror).unwrap_or(0),
        ),
        (
            "process_resident_memory_bytes",
            "resident memory (VmRSS)",
            mem.resident,
        ),
        (
            "regmirror_resident_anonymous_bytes",
            "of the resident memory, anonymous pages: heap and stacks (the rest is the binary's code, shared with the page cache)",
            mem.anonymous,
        ),
        (
            "regmirror_resident_peak_bytes",
            "the most resident memory so far (VmHWM)",
            mem.peak,
        ),
    ]);
    let mut available = Vec::new();
    let (mut limit, mut remaining, mut window) = (Vec::new(), Vec::new(), Vec::new());
    for r in mirror.upstreams.all() {
        let s = r.status();
        let up = format!("upstream=\"{}\"", label(&s.name));
        available.push((up.clone(), u64::from(s.available)));
        if let Some(a) = Allowance::of(&s) {
            limit.push((up.clone(), a.limit));
            remaining.push((up.clone(), a.remaining));
            if let Some(w) = a.window_secs {
                window.push((up, w));
            }
        }
    }
    family(
        &mut out,
        "regmirror_upstream_available",
        "gauge",
        "1 while the upstream's circuit breaker is closed",
        &available,
    );
    family(
        &mut out,
        "regmirror_upstream_ratelimit_limit",
        "gauge",
        "pulls allowed per window, as the upstream last said (ratelimit-limit)",
        &limit,
    );
    family(
        &mut out,
        "regmirror_upstream_ratelimit_remaining",
        "gauge",
        "pulls left in the window, as the upstream last said (ratelimit-remaining)",
        &remaining,
    );
    family(
        &mut out,
        "regmirror_upstream_ratelimit_window_seconds",
        "gauge",
        "the allowance's window (w= of ratelimit-limit)",
        &window,
    );
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
