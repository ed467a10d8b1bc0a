//! The mirror's counters — one [`Metrics`] per running mirror, shared as `Rc<Metrics>` on the
//! executor thread — and their Prometheus text for `/metrics`.
//!
//! An instance rather than process statics: two mirrors in one process (the integration
//! tests) each count their own traffic, so a test can assert exact values.

use crate::http::Outcome;
use std::cell::Cell;
use std::fmt::{self, Write as _};
use std::time::Instant;

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
    /// Blobs evicted to stay under the byte budget.
    pub evictions: Counter,
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
        }
    }

    /// Seconds since this mirror started.
    pub fn uptime_seconds(&self) -> u64 {
        self.started.elapsed().as_secs()
    }

    /// Counts one answered request by its status and cache outcome.
    pub fn count_request(&self, outcome: Outcome, failed: bool) {
        let counter = match outcome {
            _ if failed => &self.requests_error,
            Outcome::Hit => &self.requests_hit,
            Outcome::Miss => &self.requests_miss,
            Outcome::Coalesced => &self.requests_coalesced,
            Outcome::Stale => &self.requests_stale,
            Outcome::Pass => &self.requests_pass,
            Outcome::None => return,
        };
        counter.inc();
    }

    /// Prometheus text exposition of every counter plus the given gauges.
    pub fn render(&self, gauges: &[(&str, &str, u64)]) -> String {
        let counters: [(&str, &str, &Counter); 11] = [
            (
                "regmirror_requests_hit_total",
                "requests served from cache",
                &self.requests_hit,
            ),
            (
                "regmirror_requests_miss_total",
                "requests that started an upstream fill",
                &self.requests_miss,
            ),
            (
                "regmirror_requests_coalesced_total",
                "requests that joined a fill in progress",
                &self.requests_coalesced,
            ),
            (
                "regmirror_requests_stale_total",
                "tags served from cache because upstream failed",
                &self.requests_stale,
            ),
            (
                "regmirror_requests_pass_total",
                "requests streamed without caching",
                &self.requests_pass,
            ),
            (
                "regmirror_requests_error_total",
                "requests answered with an error",
                &self.requests_error,
            ),
            (
                "regmirror_sent_bytes_total",
                "response body bytes sent to clients",
                &self.sent_bytes,
            ),
            (
                "regmirror_upstream_requests_total",
                "requests sent to upstreams",
                &self.upstream_requests,
            ),
            (
                "regmirror_upstream_failures_total",
                "upstream requests that failed",
                &self.upstream_failures,
            ),
            (
                "regmirror_upstream_bytes_total",
                "blob bytes received from upstreams",
                &self.upstream_bytes,
            ),
            (
                "regmirror_evictions_total",
                "blobs evicted to stay under the budget",
                &self.evictions,
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instances_count_apart() {
        let (a, b) = (Metrics::new(), Metrics::new());
        a.count_request(Outcome::Hit, false);
        a.count_request(Outcome::Miss, true);
        a.count_request(Outcome::None, false);
        assert_eq!(
            (
                a.requests_hit.get(),
                a.requests_error.get(),
                a.requests_miss.get()
            ),
            (1, 1, 0)
        );
        assert_eq!(b.requests_hit.get(), 0);
        assert!(a.render(&[]).contains("\nregmirror_requests_hit_total 1\n"));
    }
}
