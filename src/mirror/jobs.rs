//! Prefetch jobs as the page, the JSON and `regmirror prefetch` see them: a bounded list
//! of [`PrefetchJob`]s, each with its [`PrefetchState`]. The work itself is `prefetch.rs`;
//! this is the bookkeeping it reports into.
//!
//! Progress is read, not pushed: a job fetching a blob holds that blob's fill, and
//! [`Jobs::snapshot`] asks the fill how far it is when someone looks — nothing is updated
//! per byte, nothing polls.

use crate::cache::fill::Fill;
use crate::image_ref::{ImageRef, Platform};
use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;
use std::time::SystemTime;

/// Most finished jobs remembered (the oldest are forgotten first); running and queued
/// jobs are never dropped, and there are at most as many of those as images were asked
/// for (the keep list's bound, or one admin request's).
pub const MAX_FINISHED_JOBS: usize = 64;

/// Who asked for a prefetch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// The keep list (`--keep`), at start, on `--keep-refresh` or SIGHUP.
    Keep,
    /// An operator: `POST /_regmirror/admin/prefetch` (`regmirror prefetch`).
    Admin,
    /// An operator pinned the image (`POST /_regmirror/admin/pin`).
    Pin,
}

impl Origin {
    /// `keep`, `admin`, `pin`: as the JSON says it.
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Keep => "keep",
            Origin::Admin => "admin",
            Origin::Pin => "pin",
        }
    }
}

/// Where a prefetch stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrefetchState {
    /// Behind other jobs.
    Queued,
    /// Not going on yet, and why: `Docker Hub allowance: 18 of 100 left, holding the last
    /// 20 %`.
    Waiting {
        /// What it waits for, in words.
        reason: String,
    },
    /// Resolving manifests (totals still 0) or fetching blobs.
    Fetching {
        /// Bytes of the image's blobs on disk (those already cached count as done).
        done_bytes: u64,
        /// Bytes of all its blobs, from the manifests' descriptors.
        total_bytes: u64,
        /// Blobs on disk.
        blobs_done: u64,
        /// Blobs in all.
        blobs_total: u64,
    },
    /// Every blob of the selected platforms is on disk.
    Done,
    /// Stopped; the message says why.
    Failed(String),
}

impl PrefetchState {
    /// `queued`, `waiting`, `fetching`, `done`, `failed`.
    pub fn name(&self) -> &'static str {
        match self {
            PrefetchState::Queued => "queued",
            PrefetchState::Waiting { .. } => "waiting",
            PrefetchState::Fetching { .. } => "fetching",
            PrefetchState::Done => "done",
            PrefetchState::Failed(_) => "failed",
        }
    }

    /// Done or failed.
    pub fn is_finished(&self) -> bool {
        matches!(self, PrefetchState::Done | PrefetchState::Failed(_))
    }
}

/// One prefetch of one image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrefetchJob {
    /// Unique in this run of the mirror, increasing.
    pub id: u64,
    /// The image.
    pub image: ImageRef,
    /// The platforms asked for; empty: all the index lists.
    pub platforms: Vec<Platform>,
    /// Who asked.
    pub origin: Origin,
    /// Where it stands.
    pub state: PrefetchState,
    /// When it was asked for.
    pub queued_at: SystemTime,
    /// When it finished.
    pub finished_at: Option<SystemTime>,
    /// Bytes of its blobs, once the manifests are known (kept when it is done).
    pub total_bytes: u64,
    /// Its blobs, once the manifests are known (kept when it is done).
    pub blobs_total: u64,
}

/// A job's live bookkeeping: its public face plus the fill it is following.
#[derive(Debug)]
struct Live {
    job: PrefetchJob,
    /// Bytes and blobs done before the blob being fetched now.
    progress: Option<Progress>,
    /// The fill of the blob being fetched now, asked how far it is when someone looks.
    current: Option<Rc<Fill>>,
}

#[derive(Debug, Clone, Copy)]
struct Progress {
    done_bytes: u64,
    total_bytes: u64,
    blobs_done: u64,
    blobs_total: u64,
}

/// Every job of this run, oldest first. Single-threaded; no borrow outlives a method.
#[derive(Debug, Default)]
pub struct Jobs {
    list: RefCell<VecDeque<Live>>,
    next_id: std::cell::Cell<u64>,
}

impl Jobs {
    /// Adds a queued job; returns its id.
    pub fn add(&self, image: ImageRef, platforms: Vec<Platform>, origin: Origin) -> u64 {
        let id = self.next_id.get() + 1;
        self.next_id.set(id);
        let mut list = self.list.borrow_mut();
        list.push_back(Live {
            job: PrefetchJob {
                id,
                image,
                platforms,
                origin,
                state: PrefetchState::Queued,
                queued_at: SystemTime::now(),
                finished_at: None,
                total_bytes: 0,
                blobs_total: 0,
            },
            progress: None,
            current: None,
        });
        // Forget the oldest finished jobs beyond the bound.
        let finished = list.iter().filter(|l| l.job.state.is_finished()).count();
        let mut extra = finished.saturating_sub(MAX_FINISHED_JOBS);
        list.retain(|l| {
            if extra > 0 && l.job.state.is_finished() {
                extra -= 1;
                false
            } else {
                true
            }
        });
        id
    }

    fn with(&self, id: u64, f: impl FnOnce(&mut Live)) {
        if let Some(l) = self.list.borrow_mut().iter_mut().find(|l| l.job.id == id) {
            f(l)
        }
    }

    /// The job waits, for `reason`.
    pub fn waiting(&self, id: u64, reason: String) {
        self.with(id, |l| l.job.state = PrefetchState::Waiting { reason });
    }

    /// The job is fetching: so much of so much is on disk, and `current` is being filled.
    pub fn fetching(
        &self,
        id: u64,
        (done_bytes, total_bytes): (u64, u64),
        (blobs_done, blobs_total): (u64, u64),
        current: Option<Rc<Fill>>,
    ) {
        self.with(id, |l| {
            l.progress = Some(Progress {
                done_bytes,
                total_bytes,
                blobs_done,
                blobs_total,
            });
            l.current = current;
            l.job.total_bytes = total_bytes;
            l.job.blobs_total = blobs_total;
            l.job.state = PrefetchState::Fetching {
                done_bytes,
                total_bytes,
                blobs_done,
                blobs_total,
            };
        });
    }

    /// The job ended: done (`Ok`) or failed with a message.
    pub fn finish(&self, id: u64, outcome: Result<(), String>) {
        self.with(id, |l| {
            l.current = None;
            l.job.finished_at = Some(SystemTime::now());
            l.job.state = match outcome {
                Ok(()) => PrefetchState::Done,
                Err(why) => PrefetchState::Failed(why),
            };
        });
    }

    /// Whether a job for `image` is queued or running (a keep refresh does not queue a
    /// second one).
    pub fn is_pending(&self, image: &ImageRef) -> bool {
        self.list
            .borrow()
            .iter()
            .any(|l| l.job.image == *image && !l.job.state.is_finished())
    }

    /// Every job, oldest first, with the bytes of blobs being filled right now.
    pub fn snapshot(&self) -> Vec<PrefetchJob> {
        self.list
            .borrow()
            .iter()
            .map(|l| {
                let mut job = l.job.clone();
                if let (Some(p), PrefetchState::Fetching { .. }) = (l.progress, &job.state) {
                    let filling = l.current.as_ref().map_or(0, |f| f.written());
                    job.state = PrefetchState::Fetching {
                        done_bytes: p.done_bytes.saturating_add(filling).min(p.total_bytes),
                        total_bytes: p.total_bytes,
                        blobs_done: p.blobs_done,
                        blobs_total: p.blobs_total,
                    };
                }
                job
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finished_jobs_are_forgotten_beyond_the_bound_and_pending_ones_never() {
        let jobs = Jobs::default();
        let img = ImageRef::parse("a").unwrap();
        let first = jobs.add(img.clone(), vec![], Origin::Admin);
        for _ in 0..MAX_FINISHED_JOBS + 5 {
            let id = jobs.add(ImageRef::parse("b").unwrap(), vec![], Origin::Admin);
            jobs.finish(id, Err("x".into()));
        }
        jobs.add(ImageRef::parse("c").unwrap(), vec![], Origin::Keep);
        let all = jobs.snapshot();
        assert_eq!(all.len(), MAX_FINISHED_JOBS + 2);
        assert_eq!(all[0].id, first, "the pending job stays");
        assert!(jobs.is_pending(&img));
        jobs.fetching(first, (10, 100), (1, 4), None);
        let s = &jobs.snapshot()[0].state;
        assert_eq!(
            *s,
            PrefetchState::Fetching {
                done_bytes: 10,
                total_bytes: 100,
                blobs_done: 1,
                blobs_total: 4
            }
        );
        jobs.finish(first, Ok(()));
        assert!(!jobs.is_pending(&img));
        assert!(jobs.snapshot()[0].finished_at.is_some());
    }
}
