//! [`Metrics`] as Prometheus text (format 0.0.4): counters end in `_total`, byte amounts
//! in `_bytes`, durations in `_seconds`; per-upstream families carry an `upstream` label
//! (only configured upstreams, so the label set is bounded).

use super::{Counter, Metrics, FILL_SECONDS_BUCKETS, OUTCOMES};
use std::fmt::Write as _;

/// Escapes a label value (`\`, `"` and newlines, as the format requires).
pub fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Writes one family: its `# HELP` and `# TYPE` lines, then a sample per row (`labels` is
/// the text inside `{}`, empty for none).
pub fn family(out: &mut String, name: &str, kind: &str, help: &str, rows: &[(String, u64)]) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    for (labels, v) in rows {
        if labels.is_empty() {
            let _ = writeln!(out, "{name} {v}");
        } else {
            let _ = writeln!(out, "{name}{{{labels}}} {v}");
        }
    }
}

impl Metrics {
    /// Prometheus text of every counter, the per-upstream families and the fill
    /// histogram, plus the given unlabelled gauges.
    pub fn render(&self, gauges: &[(&str, &str, u64)]) -> String {
        let counters: [(&str, &str, &Counter); 15] = [
            ("regmirror_requests_hit_total", "requests served from cache", &self.requests_hit),
            ("regmirror_requests_miss_total", "requests that started an upstream fill", &self.requests_miss),
            ("regmirror_requests_coalesced_total", "requests that joined a fill in progress", &self.requests_coalesced),
            ("regmirror_requests_stale_total", "tags served from cache because upstream failed", &self.requests_stale),
            ("regmirror_requests_pass_total", "requests streamed without caching", &self.requests_pass),
            ("regmirror_requests_error_total", "requests answered with an error", &self.requests_error),
            ("regmirror_sent_bytes_total", "response body bytes sent to clients", &self.sent_bytes),
            ("regmirror_saved_bytes_total", "bytes sent to clients from the cache (HIT, STALE, COALESCED): upstream traffic saved", &self.saved_bytes),
            ("regmirror_upstream_requests_total", "requests sent to upstreams", &self.upstream_requests),
            ("regmirror_upstream_failures_total", "upstream requests that failed", &self.upstream_failures),
            ("regmirror_upstream_bytes_total", "blob bytes received from upstreams", &self.upstream_bytes),
            ("regmirror_evictions_total", "blobs evicted to stay under the budget", &self.evictions),
            ("regmirror_evicted_bytes_total", "bytes freed by evictions", &self.evicted_bytes),
            ("regmirror_read_ahead_blobs_total", "blobs fetched ahead of the client, once it had their image's manifest", &self.read_ahead_blobs),
            ("regmirror_read_ahead_bytes_total", "bytes those fetches kept", &self.read_ahead_bytes),
        ];
        let mut out = String::new();
        for (name, help, c) in counters {
            family(&mut out, name, "counter", help, &[(String::new(), c.get())]);
        }
        let per = self.per_upstream();
        let rows =
            |f: &dyn Fn(&super::UpstreamCounts) -> Vec<(String, u64)>| -> Vec<(String, u64)> {
                per.iter()
                    .flat_map(|(up, c)| {
                        f(c).into_iter().map(move |(extra, v)| {
                            let up = label(up.as_str());
                            let l = if extra.is_empty() {
                                format!("upstream=\"{up}\"")
                            } else {
                                format!("upstream=\"{up}\",{extra}")
                            };
                            (l, v)
                        })
                    })
                    .collect()
            };
        family(
            &mut out,
            "regmirror_requests_total",
            "counter",
            "registry requests by upstream and outcome (hit ratio: hit+stale+coalesced over all)",
            &rows(&|c| {
                OUTCOMES
                    .iter()
                    .zip(c.requests)
                    .map(|(o, n)| (format!("outcome=\"{o}\""), n))
                    .collect()
            }),
        );
        family(
            &mut out,
            "regmirror_served_bytes_total",
            "counter",
            "bytes sent to clients by upstream and where they came from (cache or upstream)",
            &rows(&|c| {
                vec![
                    ("source=\"cache\"".into(), c.cache_bytes),
                    ("source=\"upstream\"".into(), c.relayed_bytes),
                ]
            }),
        );
        family(
            &mut out,
            "regmirror_fetched_bytes_total",
            "counter",
            "blob bytes received from each upstream",
            &rows(&|c| vec![(String::new(), c.fetched_bytes)]),
        );
        let (cumulative, sum) = self.fill_seconds.cumulative();
        let name = "regmirror_fill_duration_seconds";
        let _ = writeln!(
            out,
            "# HELP {name} time from a fill's start to its commit\n# TYPE {name} histogram"
        );
        let bounds = FILL_SECONDS_BUCKETS.iter().map(|b| b.to_string());
        for (le, n) in bounds.chain(["+Inf".to_owned()]).zip(&cumulative) {
            let _ = writeln!(out, "{name}_bucket{{le=\"{le}\"}} {n}");
        }
        let count = cumulative.last().copied().unwrap_or(0);
        let _ = writeln!(out, "{name}_sum {sum}\n{name}_count {count}");
        for (name, help, v) in gauges {
            family(&mut out, name, "gauge", help, &[(String::new(), *v)]);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::Outcome;
    use crate::reference::UpstreamName;
    use std::time::Duration;

    #[test]
    fn labelled_families_and_the_histogram_carry_the_values() {
        let m = Metrics::new();
        let hub = UpstreamName::docker_hub();
        m.count_request(Some(&hub), Outcome::Hit, false);
        m.count_request(Some(&hub), Outcome::Hit, false);
        m.count_request(Some(&hub), Outcome::Miss, false);
        m.count_sent(Some(&hub), Outcome::Hit, 300);
        m.count_fetched(&hub, 42);
        m.fill_seconds.observe(Duration::from_millis(300));
        m.count_eviction(77);
        let text = m.render(&[("regmirror_pinned_bytes", "pinned", 5)]);
        for line in [
            "regmirror_requests_total{upstream=\"docker.io\",outcome=\"hit\"} 2",
            "regmirror_requests_total{upstream=\"docker.io\",outcome=\"miss\"} 1",
            "regmirror_requests_total{upstream=\"docker.io\",outcome=\"error\"} 0",
            "regmirror_served_bytes_total{upstream=\"docker.io\",source=\"cache\"} 300",
            "regmirror_fetched_bytes_total{upstream=\"docker.io\"} 42",
            "regmirror_saved_bytes_total 300",
            "regmirror_evicted_bytes_total 77",
            "regmirror_evictions_total 1",
            "regmirror_fill_duration_seconds_bucket{le=\"0.1\"} 0",
            "regmirror_fill_duration_seconds_bucket{le=\"0.5\"} 1",
            "regmirror_fill_duration_seconds_bucket{le=\"+Inf\"} 1",
            "regmirror_fill_duration_seconds_count 1",
            "regmirror_fill_duration_seconds_sum 0.3",
            "# TYPE regmirror_pinned_bytes gauge",
            "regmirror_pinned_bytes 5",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
