//! Writing HTML safely: every piece of text that did not come from this crate's own string
//! literals goes through [`esc`] (image names, tags, upstream errors, the `Host` header, log
//! targets), and numbers shown to people carry their exact value in `data-v` so that tests
//! (and scripts scraping the page) read the same number the JSON has.

use std::fmt::Write as _;
use std::time::SystemTime;

/// `s` with `& < > " '` replaced by entities: safe in element content and in quoted
/// attribute values alike.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `s` percent-encoded for a query parameter value (unreserved characters and `/ :` kept).
pub fn query_value(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/:".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// A number for people with its exact value for machines:
/// `<span data-k="KEY" data-v="VALUE" title="VALUE">TEXT</span>` (`key` is ours, `text` is
/// escaped).
pub fn num(key: &str, value: u64, text: &str) -> String {
    format!(
        "<span data-k=\"{key}\" data-v=\"{value}\" title=\"{value}\">{}</span>",
        esc(text)
    )
}

/// `1234567` → `1.2 MB` (powers of 1000, as `docker images` shows sizes).
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["kB", "MB", "GB", "TB", "PB"];
    if n < 1000 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1000.0;
    let mut unit = UNITS[0];
    for u in &UNITS[1..] {
        if v < 1000.0 {
            break;
        }
        v /= 1000.0;
        unit = u;
    }
    if v < 10.0 {
        format!("{v:.1} {unit}")
    } else {
        format!("{v:.0} {unit}")
    }
}

/// `part / whole` as a whole percentage (0 when `whole` is 0), at most 100.
pub fn percent(part: u64, whole: u64) -> u64 {
    if whole == 0 {
        return 0;
    }
    (u128::from(part) * 100 / u128::from(whole)).min(100) as u64
}

/// How long ago `t` was at `now`: `12 s ago`, `5 min ago`, `3 h ago`, `2 d ago`.
pub fn ago(t: SystemTime, now: SystemTime) -> String {
    let Ok(d) = now.duration_since(t) else {
        return "just now".into();
    };
    let s = d.as_secs();
    match s {
        0..=59 => format!("{s} s ago"),
        60..=3599 => format!("{} min ago", s / 60),
        3600..=172_799 => format!("{} h ago", s / 3600),
        _ => format!("{} d ago", s / 86400),
    }
}

/// A duration in seconds for people: `45 s`, `6 h`, `20 min`.
pub fn secs(s: u64) -> String {
    match s {
        0..=119 => format!("{s} s"),
        120..=7199 => format!("{} min", s / 60),
        _ => format!("{} h", s / 3600),
    }
}

/// A horizontal bar: `pct` % filled with class `cls` (ours), labelled for screen readers.
pub fn bar(pct: u64, cls: &str, label: &str) -> String {
    format!(
        "<div class=\"bar\" role=\"meter\" aria-valuenow=\"{pct}\" aria-valuemin=\"0\" \
         aria-valuemax=\"100\" aria-label=\"{}\"><i class=\"{cls}\" style=\"width:{pct}%\"></i></div>",
        esc(label)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn escaping_leaves_no_markup() {
        let hostile = r#"<script>alert('x')</script>" onload="x" &amp;"#;
        let e = esc(hostile);
        assert_eq!(
            e,
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&quot; onload=&quot;x&quot; &amp;amp;"
        );
        for c in ['<', '>', '"', '\''] {
            assert!(!e.contains(c), "{c} left in {e}");
        }
        assert_eq!(
            esc("docker.io/library/alpine:3.20"),
            "docker.io/library/alpine:3.20"
        );
        assert_eq!(esc("é ü"), "é ü");
    }

    #[test]
    fn numbers_keep_their_exact_value_and_escape_their_text() {
        assert_eq!(
            num("cache", 1234, "1.2 kB"),
            "<span data-k=\"cache\" data-v=\"1234\" title=\"1234\">1.2 kB</span>"
        );
        assert!(num("k", 1, "<b>").contains("&lt;b&gt;"));
    }

    #[test]
    fn query_values_are_percent_encoded() {
        assert_eq!(
            query_value("docker.io/library/alpine:3.20"),
            "docker.io/library/alpine:3.20"
        );
        assert_eq!(query_value("a&b=c d\"<"), "a%26b%3Dc%20d%22%3C");
    }

    #[test]
    fn sizes_percentages_and_ages_for_people() {
        assert_eq!(bytes(999), "999 B");
        assert_eq!(bytes(1234), "1.2 kB");
        assert_eq!(bytes(56_700_000), "57 MB");
        assert_eq!(bytes(u64::MAX), "18447 PB");
        assert_eq!(percent(1, 3), 33);
        assert_eq!(percent(5, 0), 0);
        assert_eq!(percent(u64::MAX, 1), 100);
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        assert_eq!(ago(now - Duration::from_secs(5), now), "5 s ago");
        assert_eq!(ago(now - Duration::from_secs(600), now), "10 min ago");
        assert_eq!(ago(now - Duration::from_secs(7200), now), "2 h ago");
        assert_eq!(ago(now - Duration::from_secs(3 * 86400), now), "3 d ago");
        assert_eq!(ago(now + Duration::from_secs(5), now), "just now");
        assert_eq!(secs(21600), "6 h");
    }
}
