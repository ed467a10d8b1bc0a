//! The top of the status page: the cache against its budget, the traffic saved with its
//! 24-hour chart (an inline SVG), fills in progress and prefetch jobs with their progress.

use super::html::{ago, bar, bytes, esc, num, percent};
use crate::metrics::traffic::Bucket;
use crate::mirror::{Mirror, PrefetchState};
use std::fmt::Write as _;
use std::time::SystemTime;

/// Cache, disk, traffic and chart.
pub fn summary(mirror: &Mirror) -> String {
    let c = mirror.cache.stats();
    let m = &mirror.metrics;
    let mut out = String::from("<section id=\"cache\"><h2>Cache</h2>");
    let used = c.cached;
    let pct = percent(used, c.max);
    let _ = write!(
        out,
        "<p class=\"big\">{} <span class=\"muted\">of {} budget ({pct} %)</span></p>{}",
        num("cache-bytes", used, &bytes(used)),
        num("budget-bytes", c.max, &bytes(c.max)),
        bar(
            pct,
            if pct >= 95 { "warn" } else { "ok" },
            "cache use against the budget"
        ),
    );
    let free = crate::status::disk_free(mirror);
    out.push_str("<dl class=\"grid\">");
    let _ = write!(
        out,
        "<div><dt>Free disk</dt><dd>{}</dd></div>\
         <div><dt>Blobs</dt><dd>{}</dd></div>\
         <div><dt>Pinned</dt><dd>{}</dd></div>\
         <div><dt>Partial fills</dt><dd>{}</dd></div>",
        free.map_or("unknown".into(), |f| num("disk-free-bytes", f, &bytes(f))),
        num("blobs", c.blobs as u64, &c.blobs.to_string()),
        num("pinned-bytes", c.pinned, &bytes(c.pinned)),
        num("partial-bytes", c.partial, &bytes(c.partial)),
    );
    if let Some(mem) = crate::memory::now() {
        let _ = write!(
            out,
            "<div><dt>Memory</dt><dd>{} <span class=\"muted\">({} heap and stacks)</span></dd></div>",
            num("resident-bytes", mem.resident, &bytes(mem.resident)),
            bytes(mem.anonymous),
        );
    }
    if !c.indexed {
        out.push_str("<div><dt>Index</dt><dd>still reading the disk…</dd></div>");
    }
    out.push_str("</dl></section>");

    let served = [
        m.requests_hit.get(),
        m.requests_stale.get(),
        m.requests_coalesced.get(),
    ]
    .iter()
    .fold(0u64, |a, b| a.saturating_add(*b));
    let all = served
        .saturating_add(m.requests_miss.get())
        .saturating_add(m.requests_pass.get());
    let saved = m.saved_bytes.get();
    let fetched = m.upstream_bytes.get();
    let ratio = percent(served, all);
    let _ = write!(
        out,
        "<section id=\"traffic\"><h2>Traffic saved</h2>\
         <dl class=\"grid\">\
         <div><dt>From cache</dt><dd class=\"hit\">{}</dd></div>\
         <div><dt>From upstream</dt><dd class=\"miss\">{}</dd></div>\
         <div><dt>Hit ratio</dt><dd>{} <span class=\"muted\">of {} requests</span></dd></div>\
         <div><dt>Evicted</dt><dd>{} <span class=\"muted\">({} blobs)</span></dd></div>\
         </dl>",
        num("saved-bytes", saved, &bytes(saved)),
        num("upstream-bytes", fetched, &bytes(fetched)),
        num("hit-ratio", ratio, &format!("{ratio} %")),
        num("requests", all, &all.to_string()),
        num(
            "evicted-bytes",
            m.evicted_bytes.get(),
            &bytes(m.evicted_bytes.get())
        ),
        num(
            "evictions",
            m.evictions.get(),
            &m.evictions.get().to_string()
        ),
    );
    if mirror.read_ahead_enabled() {
        let (n, b) = (m.read_ahead_blobs.get(), m.read_ahead_bytes.get());
        let _ = write!(
            out,
            "<p class=\"muted\">Read ahead of the clients: {} in {} blobs (<code>--read-ahead</code>)</p>",
            num("read-ahead-bytes", b, &bytes(b)),
            num("read-ahead-blobs", n, &n.to_string()),
        );
    }
    out.push_str(&chart(&m.day()));
    out.push_str("</section>");
    out
}

/// Chart height in SVG units (its width is one unit per bucket, times [`BAR_W`]).
const CHART_H: u64 = 60;
/// Width of one bucket's bar in SVG units.
const BAR_W: usize = 2;

/// The last 24 hours: bytes from cache (green) stacked on bytes from upstream (blue), one
/// bar per 5 minutes, and the requests as a line; scaled to the busiest bucket.
pub fn chart(day: &[Bucket]) -> String {
    let top = day
        .iter()
        .map(|b| b.cache_bytes.saturating_add(b.upstream_bytes))
        .max()
        .unwrap_or(0)
        .max(1);
    let top_req = day.iter().map(|b| b.requests).max().unwrap_or(0).max(1);
    let w = day.len() * BAR_W;
    let h = CHART_H;
    let scale = |v: u64, max: u64| (u128::from(v) * u128::from(h) / u128::from(max)) as u64;
    let mut bars = String::new();
    let mut line = String::new();
    for (i, b) in day.iter().enumerate() {
        let x = i * BAR_W;
        // Each is at most `h` and together they are too (both scaled down from `top`).
        let up = scale(b.upstream_bytes, top);
        let cached = scale(b.cache_bytes, top).min(h - up);
        if up > 0 {
            let _ = write!(
                bars,
                "<rect class=\"u\" x=\"{x}\" y=\"{}\" width=\"{BAR_W}\" height=\"{up}\"/>",
                h - up
            );
        }
        if cached > 0 {
            let _ = write!(
                bars,
                "<rect class=\"c\" x=\"{x}\" y=\"{}\" width=\"{BAR_W}\" height=\"{cached}\"/>",
                h - up - cached
            );
        }
        if b.requests > 0 || !line.is_empty() {
            let _ = write!(
                line,
                "{},{} ",
                x + BAR_W / 2,
                h - scale(b.requests, top_req)
            );
        }
    }
    let total_req: u64 = day.iter().map(|b| b.requests).sum();
    // A line every 6 hours.
    let grid: String = (1..4)
        .map(|q| {
            let x = w * q / 4;
            format!("<line class=\"g\" x1=\"{x}\" y1=\"0\" x2=\"{x}\" y2=\"{h}\"/>")
        })
        .collect();
    format!(
        "<figure><svg viewBox=\"0 0 {w} {h}\" preserveAspectRatio=\"none\" role=\"img\" \
         aria-label=\"traffic of the last 24 hours\" data-k=\"chart\" data-v=\"{total_req}\">\
         <rect class=\"bg\" width=\"{w}\" height=\"{h}\"/>{grid}{bars}\
         <polyline class=\"r\" points=\"{}\"/></svg>\
         <figcaption><div class=\"axis\"><span>24 h ago</span><span>18 h</span><span>12 h</span>\
         <span>6 h</span><span>now</span></div><div><i class=\"sw c\"></i> from cache \
         <i class=\"sw u\"></i> from upstream <i class=\"sw r\"></i> requests \
         · peaks per 5 min: {}, {top_req} requests</div></figcaption></figure>",
        line.trim_end(),
        esc(&bytes(if top == 1 { 0 } else { top })),
    )
}

/// Fills in progress and prefetch jobs that are not finished (or finished lately).
pub fn work(mirror: &Mirror) -> String {
    let fills = mirror.cache.fills_in_progress();
    let mut out = String::from("<section id=\"fills\"><h2>Fills in progress</h2>");
    if fills.is_empty() {
        out.push_str("<p class=\"muted\">None right now.</p>");
    }
    for f in &fills {
        let written = f.written();
        let secs = f.started().elapsed().as_secs_f64().max(0.001);
        let rate = (written as f64 / secs) as u64;
        let (pct, of) = match f.total() {
            Some(t) => (percent(written, t), format!(" of {}", bytes(t))),
            None => (0, String::new()),
        };
        let _ = write!(
            out,
            "<div class=\"fill\" data-k=\"fill\" data-digest=\"{d}\"><code>{short}</code> \
             {}{of} · {}/s · {} following{}</div>",
            num("fill-written", written, &bytes(written)),
            esc(&bytes(rate)),
            num(
                "fill-followers",
                f.followers() as u64,
                &f.followers().to_string()
            ),
            bar(pct, "ok", "fill progress"),
            d = f.digest(),
            short = esc(&f.digest().to_string()[..19]),
        );
    }
    out.push_str("</section>");
    let jobs = mirror.prefetches();
    if jobs.is_empty() {
        return out;
    }
    out.push_str("<section id=\"prefetch\"><h2>Prefetch and pins</h2><ul class=\"jobs\">");
    let now = SystemTime::now();
    for j in jobs.iter().rev() {
        let (detail, pct) = match &j.state {
            PrefetchState::Fetching {
                done_bytes,
                total_bytes,
                ..
            } => (
                format!("{} of {}", bytes(*done_bytes), bytes(*total_bytes)),
                Some(percent(*done_bytes, *total_bytes)),
            ),
            PrefetchState::Waiting { reason } => (reason.clone(), None),
            PrefetchState::Failed(why) => (why.clone(), None),
            PrefetchState::Done => (format!("{} fetched", bytes(j.total_bytes)), None),
            PrefetchState::Queued => ("queued".into(), None),
        };
        let when = j
            .finished_at
            .map_or(String::new(), |t| format!(" · {}", ago(t, now)));
        let _ = write!(
            out,
            "<li class=\"job {state}\" data-k=\"job\" data-state=\"{state}\"><b>{}</b> \
             <span class=\"tag\">{state}</span> <span class=\"muted\">{} ({}){when}</span>{}</li>",
            esc(&j.image.to_string()),
            esc(&detail),
            j.origin.as_str(),
            pct.map_or(String::new(), |p| bar(p, "ok", "prefetch progress")),
            state = j.state.name(),
        );
    }
    out.push_str("</ul></section>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chart_stacks_cache_on_upstream_scaled_to_the_busiest_bucket() {
        let mut day = vec![Bucket::default(); 4];
        day[1] = Bucket {
            start: 300,
            requests: 2,
            cache_bytes: 300,
            upstream_bytes: 100,
        };
        day[3] = Bucket {
            start: 900,
            requests: 4,
            cache_bytes: 100,
            upstream_bytes: 100,
        };
        let svg = chart(&day);
        // Bucket 1 is the busiest (400 bytes = the full 60): 15 upstream, 45 cache above it.
        assert!(
            svg.contains("<rect class=\"u\" x=\"2\" y=\"45\" width=\"2\" height=\"15\"/>"),
            "{svg}"
        );
        assert!(
            svg.contains("<rect class=\"c\" x=\"2\" y=\"0\" width=\"2\" height=\"45\"/>"),
            "{svg}"
        );
        assert!(svg.contains("<rect class=\"u\" x=\"6\" y=\"45\" width=\"2\" height=\"15\"/>"));
        // Requests: the line starts at the first busy bucket, 4 is the top.
        assert!(svg.contains("points=\"3,30 5,60 7,0\""), "{svg}");
        assert!(svg.contains("data-k=\"chart\" data-v=\"6\""));
        assert!(svg.contains("peaks per 5 min: 400 B, 4 requests"));
        // A quiet day draws no bars.
        assert!(!chart(&[Bucket::default(); 3]).contains("<rect class=\"u\""));
    }
}
