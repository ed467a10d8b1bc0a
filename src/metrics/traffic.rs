//! What the status page charts and lists, kept in memory and bounded: the last 24 hours of
//! traffic in 5-minute buckets ([`Chart`]) and the most recent registry requests
//! ([`Recent`]). Nothing here is written to disk: after a restart the chart starts empty
//! (the counters in `/metrics` are for long-term history, in Prometheus).

use crate::http::Outcome;
use std::collections::VecDeque;
use std::time::{SystemTime, UNIX_EPOCH};

/// Width of one chart bucket: fine enough to see a burst of pulls, coarse enough that a
/// day is a few hundred points.
pub const BUCKET_SECS: u64 = 300;

/// Buckets kept: 24 h of [`BUCKET_SECS`] (288 × 32 bytes = 9 KiB at most).
pub const CHART_BUCKETS: usize = 288;

/// Registry requests the page lists: a screenful on a phone, and a bounded memory cost
/// (each target is cut to [`MAX_RECENT_TARGET`]).
pub const RECENT_REQUESTS: usize = 50;

/// Longest request target kept for the page's list; the rest is cut and marked `…`.
pub const MAX_RECENT_TARGET: usize = 160;

/// One 5-minute bucket.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Bucket {
    /// Unix time of its start, a multiple of [`BUCKET_SECS`].
    pub start: u64,
    /// Registry requests answered.
    pub requests: u64,
    /// Bytes sent to clients from the cache (HIT, STALE, COALESCED).
    pub cache_bytes: u64,
    /// Blob bytes received from upstreams.
    pub upstream_bytes: u64,
}

/// The last [`CHART_BUCKETS`] buckets that saw traffic, oldest first.
#[derive(Debug, Default)]
pub struct Chart {
    buckets: VecDeque<Bucket>,
}

fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

impl Chart {
    /// The bucket `now` falls in, created if needed; buckets older than 24 h go.
    fn at(&mut self, now: SystemTime) -> &mut Bucket {
        let start = unix(now) / BUCKET_SECS * BUCKET_SECS;
        let oldest = start.saturating_sub((CHART_BUCKETS as u64 - 1) * BUCKET_SECS);
        while self.buckets.front().is_some_and(|b| b.start < oldest) {
            self.buckets.pop_front();
        }
        // A clock set back (a Pi without RTC learning the time) files traffic in the
        // newest bucket rather than reordering the chart.
        if self.buckets.back().is_none_or(|b| b.start < start) {
            self.buckets.push_back(Bucket {
                start,
                ..Bucket::default()
            });
            while self.buckets.len() > CHART_BUCKETS {
                self.buckets.pop_front();
            }
        }
        self.buckets.back_mut().expect("just pushed")
    }

    /// Counts one request.
    pub fn request(&mut self, now: SystemTime) {
        let b = self.at(now);
        b.requests = b.requests.saturating_add(1);
    }

    /// Counts bytes sent from the cache.
    pub fn from_cache(&mut self, now: SystemTime, n: u64) {
        let b = self.at(now);
        b.cache_bytes = b.cache_bytes.saturating_add(n);
    }

    /// Counts bytes received from an upstream.
    pub fn from_upstream(&mut self, now: SystemTime, n: u64) {
        let b = self.at(now);
        b.upstream_bytes = b.upstream_bytes.saturating_add(n);
    }

    /// The [`CHART_BUCKETS`] buckets ending with the one `now` is in, oldest first, with
    /// the quiet ones as zeros.
    pub fn day(&self, now: SystemTime) -> Vec<Bucket> {
        let last = unix(now) / BUCKET_SECS * BUCKET_SECS;
        let first = last.saturating_sub((CHART_BUCKETS as u64 - 1) * BUCKET_SECS);
        let mut out: Vec<Bucket> = (0..CHART_BUCKETS as u64)
            .map(|i| Bucket {
                start: first + i * BUCKET_SECS,
                ..Bucket::default()
            })
            .collect();
        for b in &self.buckets {
            if b.start >= first && b.start <= last {
                out[((b.start - first) / BUCKET_SECS) as usize] = *b;
            }
        }
        out
    }
}

/// One registry request, as the page lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecentRequest {
    /// When it was answered.
    pub at: SystemTime,
    /// `GET`, `HEAD`.
    pub method: String,
    /// Path and query, cut to [`MAX_RECENT_TARGET`].
    pub target: String,
    /// The status sent.
    pub status: u16,
    /// HIT, MISS, …
    pub outcome: Outcome,
    /// Body bytes sent.
    pub bytes: u64,
    /// Time to answer, in milliseconds.
    pub millis: u64,
}

/// The last [`RECENT_REQUESTS`] registry requests, oldest first.
#[derive(Debug, Default)]
pub struct Recent {
    list: VecDeque<RecentRequest>,
}

impl Recent {
    /// Adds one, cutting its target, dropping the oldest past the bound.
    pub fn push(&mut self, mut r: RecentRequest) {
        if r.target.len() > MAX_RECENT_TARGET {
            let mut keep = MAX_RECENT_TARGET;
            while !r.target.is_char_boundary(keep) {
                keep -= 1;
            }
            r.target.truncate(keep);
            r.target.push('…');
        }
        self.list.push_back(r);
        while self.list.len() > RECENT_REQUESTS {
            self.list.pop_front();
        }
    }

    /// Newest first.
    pub fn newest_first(&self) -> Vec<RecentRequest> {
        self.list.iter().rev().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn t(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn a_day_of_buckets_bounded_with_quiet_ones_as_zeros() {
        let mut c = Chart::default();
        let day0 = 1_800_000_000 / BUCKET_SECS * BUCKET_SECS;
        c.request(t(day0));
        c.from_cache(t(day0 + 10), 100);
        c.from_upstream(t(day0 + BUCKET_SECS * 2), 7);
        let d = c.day(t(day0 + BUCKET_SECS * 2));
        assert_eq!(d.len(), CHART_BUCKETS);
        assert_eq!(d[CHART_BUCKETS - 1].upstream_bytes, 7);
        assert_eq!(
            d[CHART_BUCKETS - 2],
            Bucket {
                start: day0 + BUCKET_SECS,
                ..Bucket::default()
            }
        );
        assert_eq!(
            (
                d[CHART_BUCKETS - 3].requests,
                d[CHART_BUCKETS - 3].cache_bytes
            ),
            (1, 100)
        );
        // Two days of traffic in every bucket keep one day.
        for i in 0..2 * CHART_BUCKETS as u64 {
            c.request(t(day0 + i * BUCKET_SECS));
        }
        assert_eq!(c.buckets.len(), CHART_BUCKETS);
        let end = t(day0 + (2 * CHART_BUCKETS as u64 - 1) * BUCKET_SECS);
        assert!(c.day(end).iter().all(|b| b.requests == 1));
        // A clock set back counts into the newest bucket.
        c.request(t(day0));
        assert_eq!(c.buckets.back().unwrap().requests, 2);
        assert_eq!(c.buckets.len(), CHART_BUCKETS);
    }

    #[test]
    fn a_bucket_is_as_big_as_the_bound_says() {
        assert_eq!(std::mem::size_of::<Bucket>(), 32);
    }

    #[test]
    fn recent_requests_are_bounded_and_cut() {
        let mut r = Recent::default();
        for i in 0..RECENT_REQUESTS + 5 {
            r.push(RecentRequest {
                at: t(i as u64),
                method: "GET".into(),
                target: "é".repeat(200),
                status: 200,
                outcome: Outcome::Hit,
                bytes: i as u64,
                millis: 1,
            });
        }
        let list = r.newest_first();
        assert_eq!(list.len(), RECENT_REQUESTS);
        assert_eq!(list[0].bytes, (RECENT_REQUESTS + 4) as u64);
        assert!(list[0].target.len() <= MAX_RECENT_TARGET + '…'.len_utf8());
        assert!(list[0].target.ends_with('…'));
    }
}
