//! The status page's upstreams (reachable or breaker open with the cause of the last
//! failure, the pull allowance, the user name of the credentials in use) and the recent
//! registry requests, coloured by outcome.

use super::html::{ago, bytes, esc, num, percent, secs};
use crate::http::Outcome;
use crate::mirror::allowance::TTL_STRETCH_BELOW_PERCENT;
use crate::mirror::Mirror;
use std::fmt::Write as _;
use std::time::SystemTime;

/// One card per configured upstream.
pub fn section(mirror: &Mirror) -> String {
    let now = SystemTime::now();
    let mut out = String::from("<section id=\"upstreams\"><h2>Upstreams</h2>");
    for r in mirror.upstreams.all() {
        let s = r.status();
        let (state, word) = if s.available {
            ("up", "reachable")
        } else {
            ("down", "circuit open")
        };
        let _ = write!(
            out,
            "<div class=\"card {state}\" data-upstream=\"{name}\" data-available=\"{}\">\
             <h3>{name} <span class=\"tag {state}\">{word}</span></h3>\
             <p class=\"muted\">{}</p><dl class=\"kv\">",
            u8::from(s.available),
            esc(&s.url),
            name = esc(&s.name),
        );
        if !s.available || s.consecutive_failures > 0 {
            let _ = write!(
                out,
                "<dt>Failures in a row</dt><dd>{}</dd>",
                num(
                    "failures",
                    u64::from(s.consecutive_failures),
                    &s.consecutive_failures.to_string()
                )
            );
        }
        if let Some(f) = &s.last_failure {
            let _ = write!(
                out,
                "<dt>Last failure</dt><dd><span data-k=\"last-failure\">{}</span> \
                 <span class=\"muted\">{}</span></dd>",
                esc(&f.cause),
                ago(f.at, now)
            );
        }
        match mirror.allowance(r.name()) {
            Some(a) => {
                let al = &a.allowance;
                let window = al
                    .window_secs
                    .map_or(String::new(), |w| format!(" per {}", secs(w)));
                let pct = percent(al.remaining, al.limit);
                let cls = if pct < TTL_STRETCH_BELOW_PERCENT {
                    "warn"
                } else {
                    "ok"
                };
                let _ = write!(
                    out,
                    "<dt>{} allowance</dt><dd>{} of {}{window} left \
                     <span class=\"muted\">(seen {})</span>{}</dd>",
                    esc(&al.who),
                    num(
                        "ratelimit-remaining",
                        al.remaining,
                        &al.remaining.to_string()
                    ),
                    num("ratelimit-limit", al.limit, &al.limit.to_string()),
                    ago(al.seen_at, now),
                    super::html::bar(pct, cls, "allowance left"),
                );
                if a.ttl_stretched || a.prefetch_holding {
                    let _ = write!(
                        out,
                        "<dt>Saving pulls</dt><dd class=\"warnt\">{}{}</dd>",
                        if a.ttl_stretched {
                            format!(
                                "tags revalidated every {} instead of {}. ",
                                secs(a.tag_ttl.as_secs()),
                                secs(mirror.tag_ttl.as_secs())
                            )
                        } else {
                            String::new()
                        },
                        if a.prefetch_holding {
                            "Prefetch is waiting."
                        } else {
                            ""
                        }
                    );
                }
            }
            None if r.name().is_docker_hub() => {
                out.push_str("<dt>Allowance</dt><dd class=\"muted\">not seen yet</dd>")
            }
            None => {}
        }
        let _ = write!(
            out,
            "<dt>Credentials</dt><dd>{}</dd>",
            r.user().map_or("anonymous".into(), |u| format!(
                "user <b data-k=\"user\">{}</b>",
                esc(u)
            ))
        );
        let c = mirror.metrics.upstream(r.name());
        let _ = write!(
            out,
            "<dt>Served</dt><dd>{} from cache, {} fetched</dd></dl></div>",
            num("up-cache-bytes", c.cache_bytes, &bytes(c.cache_bytes)),
            num("up-fetched-bytes", c.fetched_bytes, &bytes(c.fetched_bytes)),
        );
    }
    out.push_str("</section>");
    out
}

/// The CSS class of an outcome (the page's colours).
fn class(o: Outcome, status: u16) -> &'static str {
    match o {
        _ if status >= 400 => "err",
        Outcome::Hit => "hit",
        Outcome::Miss => "miss",
        Outcome::Coalesced => "coal",
        Outcome::Stale => "stale",
        Outcome::Pass => "pass",
        Outcome::None => "none",
    }
}

/// Hex digits of a digest shown in the list of requests (the full target is the title).
const SHORT_DIGEST_HEX: usize = 12;

/// `target` with each `sha256:<64 hex>` cut to [`SHORT_DIGEST_HEX`] digits and `…`: a
/// request line that fits a phone.
pub fn shorten(target: &str) -> String {
    let mut out = String::with_capacity(target.len());
    let mut rest = target;
    while let Some(at) = rest.find("sha256:") {
        let (head, tail) = rest.split_at(at + 7);
        out.push_str(head);
        let hex = tail.bytes().take_while(u8::is_ascii_hexdigit).count();
        if hex == 64 {
            out.push_str(&tail[..SHORT_DIGEST_HEX]);
            out.push('…');
            rest = &tail[64..];
        } else {
            rest = tail;
        }
    }
    out.push_str(rest);
    out
}

/// The recent registry requests, newest first.
pub fn recent(mirror: &Mirror) -> String {
    let now = SystemTime::now();
    let list = mirror.metrics.recent();
    let mut out = String::from(
        "<section id=\"recent\"><h2>Recent requests</h2>\
         <p class=\"legend\"><span class=\"o hit\">HIT</span><span class=\"o miss\">MISS</span>\
         <span class=\"o coal\">COALESCED</span><span class=\"o stale\">STALE</span>\
         <span class=\"o pass\">PASS</span><span class=\"o err\">error</span> · full log: \
         <a href=\"/_regmirror/log\">/_regmirror/log</a></p>",
    );
    if list.is_empty() {
        out.push_str("<p class=\"muted\">No registry requests yet.</p></section>");
        return out;
    }
    out.push_str("<div class=\"scroll\"><table class=\"recent\"><tbody>");
    for r in &list {
        let _ = write!(
            out,
            "<tr data-k=\"req\" data-outcome=\"{o}\"><td><span class=\"o {cls}\">{o}</span></td>\
             <td>{}</td><td class=\"path\" title=\"{t}\">{} {}</td><td class=\"n\">{}</td>\
             <td class=\"n muted hide-s\">{}</td></tr>",
            r.status,
            esc(&r.method),
            esc(&shorten(&r.target)),
            esc(&bytes(r.bytes)),
            ago(r.at, now),
            o = r.outcome,
            cls = class(r.outcome, r.status),
            t = esc(&r.target),
        );
    }
    out.push_str("</tbody></table></div></section>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_in_request_lines_are_shortened() {
        let d = "ab".repeat(32);
        assert_eq!(
            shorten(&format!("/v2/library/alpine/blobs/sha256:{d}?ns=docker.io")),
            "/v2/library/alpine/blobs/sha256:abababababab…?ns=docker.io"
        );
        assert_eq!(
            shorten("/v2/a/manifests/sha256:abc"),
            "/v2/a/manifests/sha256:abc"
        );
        assert_eq!(shorten("sha256:"), "sha256:");
    }
}
