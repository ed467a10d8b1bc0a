//! The mirror's own read-only endpoints: `/_regmirror/status` (JSON for people and
//! scripts; on a headless Pi this is the dashboard), `/metrics` (Prometheus), `/v2/_catalog`
//! (repositories in the cache), and `tags/list` with an offline fallback.

use crate::error::{Error, UpstreamError};
use crate::http::Outcome;
use crate::mirror::{Mirror, Target};
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
                "ratelimit_remaining": s.ratelimit_remaining,
            })
        })
        .collect();
    json!({
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_seconds": m.uptime_seconds(),
        "cache": {
            "dir": mirror.cache.store.root().display().to_string(),
            "bytes": c.cached,
            "reserved_bytes": c.reserved,
            "budget_bytes": c.max,
            "blobs": c.blobs,
            "fills_in_progress": c.fills,
        },
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
        .tags
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

/// `tags/list`: upstream's answer passed through; when upstream fails (not 404), the tags
/// this cache knows.
pub async fn tags_list(
    mirror: &Mirror,
    t: &Target,
    query: Option<&str>,
) -> Result<(Vec<u8>, Outcome), Error> {
    let query = query.map(|q| {
        q.split('&')
            .filter(|kv| !kv.starts_with("ns="))
            .collect::<Vec<_>>()
            .join("&")
    });
    let query = query.as_deref().filter(|q| !q.is_empty());
    match t.registry.tags_list(&t.repo, query).await {
        Ok((_, body)) => Ok((body, Outcome::Pass)),
        Err(UpstreamError::NotFound) => Err(Error::Upstream(UpstreamError::NotFound)),
        Err(e) => {
            let tags = mirror.cache.tags.list(t.registry.name(), &t.repo);
            if tags.is_empty() {
                return Err(e.into());
            }
            log::warn!(
                "tags/list {}: upstream failed ({e}); answering from cache",
                t.repo
            );
            Ok((
                json!({ "name": t.repo.as_str(), "tags": tags })
                    .to_string()
                    .into_bytes(),
                Outcome::Stale,
            ))
        }
    }
}
