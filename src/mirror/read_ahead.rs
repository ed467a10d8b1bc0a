//! Read-ahead: when a client GETs an image manifest, the config and layers it names that
//! are neither cached nor being fetched are filled in the background, one at a time, in
//! the manifest's order. A client asks for its blobs a few at a time (skopeo's `dir:` copy
//! one after another, Docker three at once); with read-ahead the next one is already
//! cached or on its way when it asks, so the mirror's fill overlaps the client's own work
//! (unpacking, hashing, writing) instead of adding to it.
//!
//! What it costs: a blob the client did not need (a layer it already had) is fetched
//! anyway — once, into the cache the next machine of the office pulls from. It never
//! costs a Docker Hub pull (blob GETs are not counted) and never a second upstream GET:
//! the fills are the same [`Cache::lookup`](crate::cache::Cache::lookup) permits a
//! client's request leads or follows. Off with `read-ahead = no`.
//!
//! Bounds: one read-ahead fill at a time (one fill buffer and one upstream connection
//! besides the clients' own), at most [`MAX_READ_AHEAD_QUEUED`] blobs waiting, and a
//! blob whose descriptor says it cannot fit the budget is left for a client to stream.
//!
//! Counted: `regmirror_read_ahead_blobs_total` and `_bytes_total` on `/metrics`, `read_ahead`
//! in `/_regmirror/status` (with what is waiting).

use super::{fill, Mirror, Target};
use crate::cache::fill::Phase;
use crate::cache::Lookup;
use std::rc::Rc;

/// Most blobs waiting to be read ahead. An image has at most 127 layers (Docker's limit)
/// plus its config; twice that lets two large images be pulled at once, and beyond it a
/// burst of manifest GETs only costs the reads the clients make themselves.
pub const MAX_READ_AHEAD_QUEUED: usize = 256;

impl Mirror {
    /// Whether read-ahead is on (`--read-ahead`, once start-up set the background up).
    pub fn read_ahead_enabled(&self) -> bool {
        self.settings.get().is_some_and(|s| s.read_ahead)
    }

    /// Blobs waiting to be read ahead.
    pub fn read_ahead_queued(&self) -> usize {
        self.ahead.borrow().len()
    }

    /// Queues, for the read-ahead worker, the blobs of the image manifest `bytes` (served
    /// to a client through `t`) that are not cached; an index or anything else is ignored.
    pub fn read_ahead(&self, t: &Target, bytes: &[u8]) {
        if !self.read_ahead_enabled() {
            return;
        }
        let Some(blobs) = super::walk::image_blobs(bytes) else {
            return;
        };
        let mut queue = self.ahead.borrow_mut();
        let before = queue.len();
        for (d, size) in blobs {
            if queue.len() >= MAX_READ_AHEAD_QUEUED {
                log::debug!(
                    "read-ahead: {MAX_READ_AHEAD_QUEUED} blobs waiting; {d} is left to its client"
                );
                break;
            }
            let waiting = queue.iter().any(|(_, q, _)| *q == d);
            if !waiting && self.cache.blob_size(&d).is_none() {
                queue.push_back((t.clone(), d, size));
            }
        }
        if queue.len() > before {
            self.ahead_queued.notify(1);
        }
    }

    /// The worker: fills the queued blobs one at a time, for as long as the mirror lives.
    pub(super) async fn read_ahead_worker(self: Rc<Self>) {
        loop {
            let (t, d, size) = super::next_queued(&self.ahead, &self.ahead_queued).await;
            if self.cache.blob_size(&d).is_some() || !self.cache.could_keep(size) {
                continue;
            }
            match self.cache.lookup(&d) {
                Ok(Lookup::Lead(permit)) => {
                    log::debug!("read-ahead: {d} ({size} bytes) through {}", t.repo);
                    self.metrics.read_ahead_blobs.inc();
                    let f = permit.fill();
                    self.executor.spawn(fill::run(permit, t)).detach();
                    match f.wait(Phase::is_final).await {
                        Phase::Committed { total, .. } => self.metrics.read_ahead_bytes.add(total),
                        // A client asking for it leads a fill of its own and gets the error.
                        why => log::debug!("read-ahead of {d} did not keep it: {why:?}"),
                    }
                }
                // Cached meanwhile, or a client's request is filling it already.
                Ok(Lookup::Hit(..) | Lookup::Follow(_)) => {}
                Err(e) => log::warn!("read-ahead: cannot look up {d}: {e}"),
            }
        }
    }
}
