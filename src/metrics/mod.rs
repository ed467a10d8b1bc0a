//! The mirror's counters — one [`Metrics`] per running mirror, shared as `Rc<Metrics>` on the
//! executor thread: totals, the same per upstream, the fill-duration histogram, and the
//! status page's chart and recent requests (`traffic.rs`). `render.rs` writes them as
//! Prometheus text for `/metrics`.
//!
//! An instance rather than process statics: two mirrors in one process (the integration
//! tests) each count their own traffic, so a test can assert exact values.
//!
//! Where bytes sent to a client came from, by the request's outcome: HIT, STALE and
//! COALESCED from the cache (upstream bytes saved: a coalesced reader follows a fill
//! another request paid for), MISS and PASS from the upstream.

pub mod render;
pub mod traffic;

use crate::http::Outcome;
use crate::reference::UpstreamName;
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, Instant, SystemTime};
use traffic::{Chart, Recent, RecentRequest};

/// Upper bounds (seconds) of the fill-duration histogram's buckets: a small layer on a LAN
/// takes a fraction of a second, a 1 GB one on a slow line half an hour.
pub const FILL_SECONDS_BUCKETS: [f64; 9] = [0.1, 0.5, 1.0, 2.5, 5.0, 15.0, 60.0, 300.0, 1800.0];

/// The outcomes requests are counted by, as `/metrics` labels them.
pub const OUTCOMES: [&str; 6] = ["hit", "miss", "coalesced", "stale", "pass", "error"];

/// One upstream's share of the traffic.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UpstreamCounts {
    /// Requests by outcome, in [`OUTCOMES`] order.
    pub requests: [u64; 6],
    /// Bytes sent to clients from the cache.
    pub cache_bytes: u64,
    /// Bytes sent to clients as they came from the upstream.
    pub relayed_bytes: u64,
    /// Blob bytes received from the upstream.
    pub fetched_bytes: u64,
}

/// One answered request, as the server saw it after sending the reply.
#[derive(Debug)]
pub struct Answered<'a> {
    /// The configured upstream it was about.
    pub upstream: Option<&'a UpstreamName>,
    /// A registry API request (`/v2/…`): the status page lists those.
    pub registry: bool,
    /// Its method.
    pub method: &'a crate::http::Method,
    /// Its path and query.
    pub target: &'a str,
    /// The status sent.
    pub status: u16,
    /// Its cache outcome.
    pub outcome: Outcome,
    /// Body bytes sent.
    pub sent: u64,
    /// From the request's head to the reply's last byte.
    pub took: Duration,
}

/// A histogram with [`FILL_SECONDS_BUCKETS`].
#[derive(Debug, Default)]
pub struct Histogram {
    /// Observations per bucket (not cumulative), the last one past the highest bound.
    counts: RefCell<[u64; FILL_SECONDS_BUCKETS.len() + 1]>,
    sum: Cell<f64>,
}

impl Histogram {
    /// Records one observation.
    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        let i = FILL_SECONDS_BUCKETS
            .iter()
            .position(|&b| secs <= b)
            .unwrap_or(FILL_SECONDS_BUCKETS.len());
        let mut c = self.counts.borrow_mut();
        c[i] = c[i].saturating_add(1);
        self.sum.set(self.sum.get() + secs);
    }

    /// Cumulative counts per bound (the last is `+Inf`, the total), and the sum.
    pub fn cumulative(&self) -> (Vec<u64>, f64) {
        let mut total = 0u64;
        let counts = self
            .counts
            .borrow()
            .iter()
            .map(|c| {
                total = total.saturating_add(*c);
                total
            })
            .collect();
        (counts, self.sum.get())
    }
}

/// A monotonically increasing counter (single-threaded: the executor's).
#[derive(Default)]
pub struct Counter(Cell<u64>);

impl Counter {
    /// Adds `n`.
    pub fn add(&self, n: u64) {
        self.0.set(self.0.get().saturating_add(n));
    }
    /// Adds one.
    pub fn inc(&self) {
        self.add(1);
    }
    /// Current value.
    pub fn get(&self) -> u64 {
        self.0.get()
    }
}

impl fmt::Debug for Counter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.get())
    }
}

/// Every counter of one mirror.
#[derive(Debug)]
pub struct Metrics {
    started: Instant,
    /// Requests served from cache.
    pub requests_hit: Counter,
    /// Requests that started an upstream fill.
    pub requests_miss: Counter,
    /// Requests that joined a fill in progress.
    pub requests_coalesced: Counter,
    /// Requests served from cache because upstream failed.
    pub requests_stale: Counter,
    /// Requests streamed from upstream without caching.
    pub requests_pass: Counter,
    /// Requests answered with an error.
    pub requests_error: Counter,
    /// Response body bytes sent to clients.
    pub sent_bytes: Counter,
    /// Requests sent upstream (all kinds, including token requests and redirects).
    pub upstream_requests: Counter,
    /// Upstream requests that failed (network, timeout, 5xx).
    pub upstream_failures: Counter,
    /// Blob body bytes received from upstreams.
    pub upstream_bytes: Counter,
    /// Blobs evicted to stay under the byte budget (or by an operator).
    pub evictions: Counter,
    /// Bytes those evictions freed.
    pub evicted_bytes: Counter,
    /// Bytes sent to clients from the cache: upstream traffic saved.
    pub saved_bytes: Counter,
    /// Blobs read ahead: fills started because a client GET their image's manifest.
    pub read_ahead_blobs: Counter,
    /// Bytes those fills kept.
    pub read_ahead_bytes: Counter,
    /// How long fills took, from their start to their commit.
    pub fill_seconds: Histogram,
    /// The traffic per configured upstream.
    per_upstream: RefCell<BTreeMap<UpstreamName, UpstreamCounts>>,
    /// The status page's last 24 hours.
    chart: RefCell<Chart>,
    /// The status page's last requests.
    recent: RefCell<Recent>,
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics::new()
    }
}

impl Metrics {
    /// All counters at zero; uptime counts from now.
    pub fn new() -> Metrics {
        Metrics {
            started: Instant::now(),
            requests_hit: Counter::default(),
            requests_miss: Counter::default(),
            requests_coalesced: Counter::default(),
            requests_stale: Counter::default(),
            requests_pass: Counter::default(),
            requests_error: Counter::default(),
            sent_bytes: Counter::default(),
            upstream_requests: Counter::default(),
            upstream_failures: Counter::default(),
            upstream_bytes: Counter::default(),
            evictions: Counter::default(),
            evicted_bytes: Counter::default(),
            saved_bytes: Counter::default(),
            read_ahead_blobs: Counter::default(),
            read_ahead_bytes: Counter::default(),
            fill_seconds: Histogram::default(),
            per_upstream: RefCell::new(BTreeMap::new()),
            chart: RefCell::new(Chart::default()),
            recent: RefCell::new(Recent::default()),
        }
    }

    /// Seconds since this mirror started.
    pub fn uptime_seconds(&self) -> u64 {
        self.started.elapsed().as_secs()
    }

    /// Counts one answered request by its status and cache outcome; `upstream` is the
    /// configured upstream it was about, if any (never a name a client made up: labels
    /// must stay few).
    pub fn count_request(&self, upstream: Option<&UpstreamName>, outcome: Outcome, failed: bool) {
        let (counter, i) = match outcome {
            _ if failed => (&self.requests_error, 5),
            Outcome::Hit => (&self.requests_hit, 0),
            Outcome::Miss => (&self.requests_miss, 1),
            Outcome::Coalesced => (&self.requests_coalesced, 2),
            Outcome::Stale => (&self.requests_stale, 3),
            Outcome::Pass => (&self.requests_pass, 4),
            Outcome::None => return,
        };
        counter.inc();
        if let Some(up) = upstream {
            self.with_upstream(up, |c| c.requests[i] = c.requests[i].saturating_add(1));
            self.chart.borrow_mut().request(SystemTime::now());
        }
    }

    /// Counts `bytes` sent to a client by where they came from (see the module docs).
    pub fn count_sent(&self, upstream: Option<&UpstreamName>, outcome: Outcome, bytes: u64) {
        let cached = match outcome {
            Outcome::Hit | Outcome::Stale | Outcome::Coalesced => true,
            Outcome::Miss | Outcome::Pass => false,
            Outcome::None => return,
        };
        if cached {
            self.saved_bytes.add(bytes);
            self.chart.borrow_mut().from_cache(SystemTime::now(), bytes);
        }
        if let Some(up) = upstream {
            self.with_upstream(up, |c| {
                let n = if cached {
                    &mut c.cache_bytes
                } else {
                    &mut c.relayed_bytes
                };
                *n = n.saturating_add(bytes);
            });
        }
    }

    /// Counts a request's sent bytes (in total, and by where they came from) and
    /// remembers a registry request for the status page.
    pub fn answered(&self, a: Answered<'_>) {
        self.sent_bytes.add(a.sent);
        self.count_sent(a.upstream, a.outcome, a.sent);
        if a.registry {
            self.remember(RecentRequest {
                at: SystemTime::now(),
                method: a.method.to_string(),
                target: a.target.to_owned(),
                status: a.status,
                outcome: a.outcome,
                bytes: a.sent,
                millis: a.took.as_millis().try_into().unwrap_or(u64::MAX),
            });
        }
    }

    /// Counts blob bytes received from `upstream`.
    pub fn count_fetched(&self, upstream: &UpstreamName, bytes: u64) {
        self.upstream_bytes.add(bytes);
        self.with_upstream(upstream, |c| {
            c.fetched_bytes = c.fetched_bytes.saturating_add(bytes)
        });
        self.chart
            .borrow_mut()
            .from_upstream(SystemTime::now(), bytes);
    }

    /// Counts one evicted blob of `bytes`.
    pub fn count_eviction(&self, bytes: u64) {
        self.evictions.inc();
        self.evicted_bytes.add(bytes);
    }

    /// Remembers a registry request for the status page.
    pub fn remember(&self, r: RecentRequest) {
        self.recent.borrow_mut().push(r);
    }

    /// The last registry requests, newest first.
    pub fn recent(&self) -> Vec<RecentRequest> {
        self.recent.borrow().newest_first()
    }

    /// The last 24 hours in 5-minute buckets, oldest first.
    pub fn day(&self) -> Vec<traffic::Bucket> {
        self.chart.borrow().day(SystemTime::now())
    }

    /// Each upstream's counts (those that saw traffic).
    pub fn per_upstream(&self) -> Vec<(UpstreamName, UpstreamCounts)> {
        self.per_upstream
            .borrow()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// One upstream's counts (zeros if it saw none).
    pub fn upstream(&self, name: &UpstreamName) -> UpstreamCounts {
        self.per_upstream
            .borrow()
            .get(name)
            .cloned()
            .unwrap_or_default()
    }

    fn with_upstream(&self, up: &UpstreamName, f: impl FnOnce(&mut UpstreamCounts)) {
        let mut map = self.per_upstream.borrow_mut();
        match map.get_mut(up) {
            Some(c) => f(c),
            None => f(map.entry(up.clone()).or_default()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instances_count_apart() {
        let (a, b) = (Metrics::new(), Metrics::new());
        let hub = UpstreamName::docker_hub();
        a.count_request(Some(&hub), Outcome::Hit, false);
        a.count_request(None, Outcome::Miss, true);
        a.count_request(None, Outcome::None, false);
        assert_eq!(
            (
                a.requests_hit.get(),
                a.requests_error.get(),
                a.requests_miss.get()
            ),
            (1, 1, 0)
        );
        assert_eq!(b.requests_hit.get(), 0);
        assert_eq!(a.upstream(&hub).requests, [1, 0, 0, 0, 0, 0]);
        assert_eq!(b.upstream(&hub), UpstreamCounts::default());
    }

    #[test]
    fn bytes_are_counted_by_where_they_came_from() {
        let m = Metrics::new();
        let hub = UpstreamName::docker_hub();
        m.count_sent(Some(&hub), Outcome::Hit, 100);
        m.count_sent(Some(&hub), Outcome::Coalesced, 10);
        m.count_sent(Some(&hub), Outcome::Stale, 1);
        m.count_sent(Some(&hub), Outcome::Miss, 1000);
        m.count_sent(None, Outcome::None, 5000);
        m.count_fetched(&hub, 1000);
        let c = m.upstream(&hub);
        assert_eq!(
            (c.cache_bytes, c.relayed_bytes, c.fetched_bytes),
            (111, 1000, 1000)
        );
        assert_eq!((m.saved_bytes.get(), m.upstream_bytes.get()), (111, 1000));
        let today = m.day();
        let last = today.last().unwrap();
        assert_eq!((last.cache_bytes, last.upstream_bytes), (111, 1000));
    }

    #[test]
    fn the_fill_histogram_is_cumulative() {
        let h = Histogram::default();
        h.observe(Duration::from_millis(50));
        h.observe(Duration::from_secs(2));
        h.observe(Duration::from_secs(4000));
        let (c, sum) = h.cumulative();
        assert_eq!(c.len(), FILL_SECONDS_BUCKETS.len() + 1);
        assert_eq!((c[0], c[2], c[3], c[8], c[9]), (1, 1, 2, 2, 3));
        assert!((sum - 4002.05).abs() < 1e-6);
    }
}
