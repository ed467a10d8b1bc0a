//! Process-wide counters, rendered as Prometheus text at `/metrics`.
//!
//! Plain atomics: bodies streamed by async-h1 must be `Send + Sync`, so counters they touch
//! cannot live in the executor's `Rc` state. Relaxed ordering: these are statistics.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// A monotonically increasing counter.
#[derive(Debug)]
pub struct Counter(AtomicU64);

impl Counter {
    const fn new() -> Counter {
        Counter(AtomicU64::new(0))
    }
    /// Adds `n`.
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Relaxed);
    }
    /// Adds one.
    pub fn inc(&self) {
        self.add(1);
    }
    /// Current value.
    pub fn get(&self) -> u64 {
        self.0.load(Relaxed)
    }
}

/// Client requests answered, by cache outcome.
pub static REQUESTS_HIT: Counter = Counter::new();
/// … filled from upstream by this request.
pub static REQUESTS_MISS: Counter = Counter::new();
/// … joined another request's fill.
pub static REQUESTS_COALESCED: Counter = Counter::new();
/// … served from cache because upstream failed.
pub static REQUESTS_STALE: Counter = Counter::new();
/// … streamed from upstream without caching.
pub static REQUESTS_PASS: Counter = Counter::new();
/// … answered with an error.
pub static REQUESTS_ERROR: Counter = Counter::new();
/// Bytes sent to clients (response bodies).
pub static BYTES_SENT: Counter = Counter::new();
/// Requests sent upstream (all kinds, including token requests and redirects).
pub static UPSTREAM_REQUESTS: Counter = Counter::new();
/// Upstream requests that failed (network, timeout, 5xx).
pub static UPSTREAM_FAILURES: Counter = Counter::new();
/// Blob bytes received from upstream.
pub static UPSTREAM_BYTES: Counter = Counter::new();
/// Blobs evicted to stay under the byte budget.
pub static EVICTIONS: Counter = Counter::new();

/// Prometheus text exposition of every counter plus the given gauges.
pub fn render(gauges: &[(&str, &str, u64)]) -> String {
    let counters: [(&str, &str, &Counter); 11] = [
        (
            "regmirror_requests_hit_total",
            "requests served from cache",
            &REQUESTS_HIT,
        ),
        (
            "regmirror_requests_miss_total",
            "requests that started an upstream fill",
            &REQUESTS_MISS,
        ),
        (
            "regmirror_requests_coalesced_total",
            "requests that joined a fill in progress",
            &REQUESTS_COALESCED,
        ),
        (
            "regmirror_requests_stale_total",
            "tags served from cache because upstream failed",
            &REQUESTS_STALE,
        ),
        (
            "regmirror_requests_pass_total",
            "requests streamed without caching",
            &REQUESTS_PASS,
        ),
        (
            "regmirror_requests_error_total",
            "requests answered with an error",
            &REQUESTS_ERROR,
        ),
        (
            "regmirror_sent_bytes_total",
            "response body bytes sent to clients",
            &BYTES_SENT,
        ),
        (
            "regmirror_upstream_requests_total",
            "requests sent to upstreams",
            &UPSTREAM_REQUESTS,
        ),
        (
            "regmirror_upstream_failures_total",
            "upstream requests that failed",
            &UPSTREAM_FAILURES,
        ),
        (
            "regmirror_upstream_bytes_total",
            "blob bytes received from upstreams",
            &UPSTREAM_BYTES,
        ),
        (
            "regmirror_evictions_total",
            "blobs evicted to stay under the budget",
            &EVICTIONS,
        ),
    ];
    let mut out = String::new();
    for (name, help, c) in counters {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
            c.get()
        );
    }
    for (name, help, v) in gauges {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
    }
    out
}
