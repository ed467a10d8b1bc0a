//! The JSON of the inventory, the prefetch jobs and the pins, for scripts, the status
//! page and `regmirror prefetch`. Shapes (stable; fields may be added):
//!
//! ```text
//! GET /_regmirror/images            {"images":[IMAGE…],"pinned_bytes":N,"budget_bytes":N}
//! GET /_regmirror/images?image=REF  IMAGE (404 if the mirror does not know it by tag)
//! IMAGE = {"image":"docker.io/library/alpine:3.20","upstream":"docker.io",
//!          "repository":"library/alpine","tag":"3.20","digest":"sha256:…",
//!          "media_type":"…","platforms":["linux/amd64"],"index_platforms":[…],
//!          "size_bytes":N,"complete":true,"last_pulled_unix":N|null,"pulls":N,
//!          "pinned":true,"pinned_by":"keep"|"admin"|null}
//! GET /_regmirror/prefetch[?id=1,2] {"jobs":[JOB…]}
//! JOB = {"id":1,"image":"…","platforms":[…],"origin":"keep"|"admin"|"pin",
//!        "state":"queued"|"waiting"|"fetching"|"done"|"failed",
//!        "reason":"…"(waiting),"error":"…"(failed),"done_bytes":N,"total_bytes":N,
//!        "blobs_done":N,"blobs_total":N,"queued_unix":N,"finished_unix":N|null}
//! GET /_regmirror/allowance         {"upstreams":[ALLOWANCE…]} (those that sent one)
//! ALLOWANCE = {"upstream":"docker.io","who":"Docker Hub","limit":100,"window_secs":21600|null,
//!        "remaining":18,"seen_unix":N,"acted_on":true,"prefetch_holding":true,
//!        "prefetch_reserve_percent":20,"ttl_stretched":true,"stretch_below_percent":20,
//!        "tag_ttl_seconds":3600,"configured_tag_ttl_seconds":300}
//! GET /_regmirror/pins              {"pins":[{"image":"…","platforms":[…],"source":"keep"|"admin"}],
//!        "keep_file":"/etc/regmirror/keep.list"|null,"pinned_bytes":N,"budget_bytes":N}
//! ```

use crate::mirror::allowance::{PREFETCH_RESERVE_PERCENT, TTL_STRETCH_BELOW_PERCENT};
use crate::mirror::pins::PinSource;
use crate::mirror::pulls::unix;
use crate::mirror::{ImageInfo, Mirror, PrefetchJob, PrefetchState};
use serde_json::{json, Value};

/// One image.
pub fn image(mirror: &Mirror, i: &ImageInfo) -> Value {
    let pinned_by = mirror.pins().find(&i.reference()).map(|(_, s)| match s {
        PinSource::Keep => "keep",
        PinSource::Admin => "admin",
    });
    json!({
        "image": i.reference().to_string(),
        "upstream": i.upstream.as_str(),
        "repository": i.repo.as_str(),
        "tag": i.tag.as_str(),
        "digest": i.digest.to_string(),
        "media_type": i.media_type.as_str(),
        "platforms": i.platforms,
        "index_platforms": i.index_platforms,
        "size_bytes": i.size_bytes,
        "complete": i.complete,
        "last_pulled_unix": i.last_pulled.map(unix),
        "pulls": i.pulls,
        "pinned": i.pinned,
        "pinned_by": pinned_by,
    })
}

/// `GET /_regmirror/images`
pub fn images(mirror: &Mirror) -> String {
    let images: Vec<Value> = mirror
        .inventory()
        .iter()
        .map(|i| image(mirror, i))
        .collect();
    let c = mirror.cache.stats();
    json!({
        "images": images,
        "pinned_bytes": c.pinned,
        "budget_bytes": c.max,
    })
    .to_string()
}

/// One prefetch job.
pub fn job(j: &PrefetchJob) -> Value {
    let (mut done, mut total, mut bdone, mut btotal) = (0, 0, 0, 0);
    let mut v = json!({
        "id": j.id,
        "image": j.image.to_string(),
        "platforms": j.platforms.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "origin": j.origin.as_str(),
        "state": j.state.name(),
        "queued_unix": unix(j.queued_at),
        "finished_unix": j.finished_at.map(unix),
    });
    match &j.state {
        PrefetchState::Waiting { reason } => v["reason"] = json!(reason),
        PrefetchState::Failed(why) => v["error"] = json!(why),
        PrefetchState::Fetching {
            done_bytes,
            total_bytes,
            blobs_done,
            blobs_total,
        } => (done, total, bdone, btotal) = (*done_bytes, *total_bytes, *blobs_done, *blobs_total),
        PrefetchState::Done => {
            (done, total, bdone, btotal) =
                (j.total_bytes, j.total_bytes, j.blobs_total, j.blobs_total)
        }
        PrefetchState::Queued => {}
    }
    v["done_bytes"] = json!(done);
    v["total_bytes"] = json!(total);
    v["blobs_done"] = json!(bdone);
    v["blobs_total"] = json!(btotal);
    v
}

/// `GET /_regmirror/prefetch`, all jobs or those whose id is in `ids`.
pub fn jobs(mirror: &Mirror, ids: Option<&[u64]>) -> String {
    let jobs: Vec<Value> = mirror
        .prefetches()
        .iter()
        .filter(|j| ids.is_none_or(|ids| ids.contains(&j.id)))
        .map(job)
        .collect();
    json!({ "jobs": jobs }).to_string()
}

/// `GET /_regmirror/allowance`
pub fn allowances(mirror: &Mirror) -> String {
    let list: Vec<Value> = mirror
        .upstreams
        .all()
        .filter_map(|r| {
            let s = mirror.allowance(r.name())?;
            let a = &s.allowance;
            Some(json!({
                "upstream": r.name().as_str(),
                "who": a.who,
                "limit": a.limit,
                "window_secs": a.window_secs,
                "remaining": a.remaining,
                "seen_unix": unix(a.seen_at),
                "acted_on": s.acted_on,
                "prefetch_holding": s.prefetch_holding,
                "prefetch_reserve_percent": PREFETCH_RESERVE_PERCENT,
                "ttl_stretched": s.ttl_stretched,
                "stretch_below_percent": TTL_STRETCH_BELOW_PERCENT,
                "tag_ttl_seconds": s.tag_ttl.as_secs(),
                "configured_tag_ttl_seconds": mirror.tag_ttl.as_secs(),
            }))
        })
        .collect();
    json!({ "upstreams": list }).to_string()
}

/// `GET /_regmirror/pins`
pub fn pins(mirror: &Mirror) -> String {
    let list: Vec<Value> = mirror
        .pins()
        .entries()
        .iter()
        .map(|(e, source)| {
            json!({
                "image": e.image.to_string(),
                "platforms": e.platforms.iter().map(ToString::to_string).collect::<Vec<_>>(),
                "source": match source {
                    PinSource::Keep => "keep",
                    PinSource::Admin => "admin",
                },
            })
        })
        .collect();
    let c = mirror.cache.stats();
    json!({
        "pins": list,
        "keep_file": mirror.keep_file().map(|p| p.display().to_string()),
        "pinned_bytes": c.pinned,
        "budget_bytes": c.max,
    })
    .to_string()
}
