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
//! ```

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
