//! The status page: `/` (also `/_regmirror/`) and one page per image
//! (`/_regmirror/image?image=REF`), server-rendered HTML with inline CSS and SVG and no
//! script or external asset — it works offline, on a phone, and on a Pi Zero (a page is a
//! few tens of KB, built from numbers already in memory plus one `statvfs`).
//!
//! The numbers are those of the JSON (`/_regmirror/status`, `/images`, …) and of
//! `/metrics`; each carries its exact value in `data-v` (see `html.rs`). Everything from
//! outside — image names, upstream errors, the `Host` header — is escaped.
//!
//! `overview.rs`: cache, traffic, chart, fills, prefetch; `upstreams.rs`: upstreams and the
//! recent requests; `images.rs`: the table and the image page; `connect.rs`: the client
//! snippets; `html.rs`: escaping and formatting.

pub mod connect;
pub mod html;
pub mod images;
pub mod overview;
pub mod upstreams;

use crate::error::Error;
use crate::http::{Body, Reply, Request, Status};
use crate::mirror::Mirror;
use html::esc;

/// A page path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `/` and `/_regmirror/`
    Home,
    /// `/_regmirror/image?image=REF`
    Image,
}

/// The page `path` names, if any.
pub fn parse(path: &str) -> Option<Route> {
    match path {
        "/" | "/_regmirror" | "/_regmirror/" | "/index.html" => Some(Route::Home),
        "/_regmirror/image" | "/_regmirror/image/" => Some(Route::Image),
        _ => None,
    }
}

/// The stylesheet, inline: small, no web fonts, dark mode by the system's choice.
const CSS: &str = "\
:root{--bg:#f6f7f9;--fg:#1d2330;--mu:#667085;--card:#fff;--line:#e3e6ec;--ok:#2e9d5b;--up:#3b72d9;\
--warn:#d98a1c;--err:#d64545;--coal:#1c9aa0;--pin:#7a4fd1}\
@media(prefers-color-scheme:dark){:root{--bg:#12151b;--fg:#e6e9ef;--mu:#98a2b3;--card:#1b2029;--line:#2c3340}}\
*{box-sizing:border-box}body{margin:0;background:var(--bg);color:var(--fg);\
font:15px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif}\
header{background:#1f2a44;color:#fff;padding:.8rem 1rem}header h1{margin:0;font-size:1.2rem}\
header small{opacity:.75}main{max-width:64rem;margin:0 auto;padding:.5rem .8rem 2rem}\
section{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:.6rem 1rem;margin:.8rem 0}\
h2{font-size:1.05rem;margin:.2rem 0 .5rem}h3{font-size:.95rem;margin:.6rem 0 .3rem}\
.muted{color:var(--mu)}.big{font-size:1.5rem;margin:.2rem 0}.big .muted{font-size:.95rem}\
.bar{height:.7rem;background:var(--line);border-radius:6px;overflow:hidden;margin:.3rem 0}\
.bar i{display:block;height:100%;background:var(--ok)}.bar i.warn{background:var(--warn)}\
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(9rem,1fr));gap:.4rem;margin:.5rem 0}\
.grid div{background:var(--bg);border-radius:8px;padding:.4rem .6rem}dt{font-size:.8rem;color:var(--mu)}\
dd{margin:0;font-weight:600}.kv{display:grid;grid-template-columns:max-content 1fr;gap:.2rem .8rem}\
.kv dd{font-weight:400;overflow-wrap:anywhere}.hit{color:var(--ok)}.miss{color:var(--up)}\
figure{margin:.4rem 0}svg{width:100%;height:90px;display:block}svg .bg{fill:var(--bg)}\
svg .g{stroke:var(--line);stroke-width:1;vector-effect:non-scaling-stroke}svg .c{fill:var(--ok)}svg .u{fill:var(--up)}svg .r{fill:none;stroke:var(--warn);stroke-width:1;\
vector-effect:non-scaling-stroke}figcaption{font-size:.75rem;color:var(--mu)}\
.axis{display:flex;justify-content:space-between;margin-bottom:.2rem}.sw{display:inline-block;width:.7rem;height:.7rem;\
border-radius:2px;vertical-align:-1px}.sw.c{background:var(--ok)}.sw.u{background:var(--up)}\
.sw.r{background:var(--warn)}.card{border-left:4px solid var(--ok);padding:.1rem .8rem;margin:.5rem 0}\
.card.down{border-left-color:var(--err)}.tag{font-size:.75rem;border-radius:10px;padding:.05rem .45rem;\
background:var(--line);font-weight:600}.tag.up{background:var(--ok);color:#fff}\
.tag.down,.tag.failed{background:var(--err);color:#fff}.tag.warn,.tag.waiting{background:var(--warn);color:#fff}\
.tag.pin{background:var(--pin);color:#fff}.warnt{color:var(--warn)}\
.scroll{overflow-x:auto}table{border-collapse:collapse;width:100%;font-size:.88rem}\
td,th{padding:.3rem .4rem;border-bottom:1px solid var(--line);text-align:left;vertical-align:top}\
th a{color:inherit}th.sorted a{text-decoration:none}th.sorted a::after{content:' ▾'}\
.n{text-align:right;white-space:nowrap}td.path{overflow-wrap:anywhere;font-family:ui-monospace,monospace;\
font-size:.8rem}.o{display:inline-block;min-width:5.5rem;text-align:center;border-radius:4px;color:#fff;\
font-size:.72rem;font-weight:700;padding:.05rem .3rem;margin-right:.2rem}.o.hit{background:var(--ok)}\
.o.miss{background:var(--up)}.o.coal{background:var(--coal)}.o.stale{background:var(--warn)}\
.o.pass{background:#8a8f99}.o.err{background:var(--err)}.o.none{background:#b0b5bf}\
.legend .o{min-width:auto}pre{background:var(--bg);border:1px solid var(--line);border-radius:6px;\
padding:.5rem;overflow-x:auto;font-size:.8rem}code{font-family:ui-monospace,monospace;font-size:.85em}\
summary{cursor:pointer;font-weight:600;margin:.4rem 0}.jobs{list-style:none;padding:0;margin:0}\
.jobs li{padding:.3rem 0;border-bottom:1px solid var(--line)}.fill{padding:.3rem 0}\
a{color:var(--up)}@media(max-width:40rem){.hide-s{display:none}body{font-size:14px}main{padding:.3rem .4rem 1rem}section{padding:.5rem .6rem}.o{min-width:4.4rem}}";

/// Wraps a page's sections in the document.
fn document(title: &str, body: &str, refresh: bool) -> String {
    let refresh = if refresh {
        // Work in progress: follow it without a script.
        "<meta http-equiv=\"refresh\" content=\"5\">"
    } else {
        ""
    };
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">{refresh}\
         <title>{}</title><style>{CSS}</style></head><body><header><h1>regmirror \
         <small>{}</small></h1></header><main>{body}</main></body></html>",
        esc(title),
        env!("CARGO_PKG_VERSION"),
    )
}

/// Where clients reach this mirror, for the snippets and pull commands.
fn host(mirror: &Mirror, req: &Request) -> String {
    connect::mirror_host(req.host.as_deref(), mirror.listen)
}

/// Answers a page request.
pub fn handle(mirror: &Mirror, req: &Request, route: &Route) -> Result<Reply, Error> {
    let html = match route {
        Route::Home => home(mirror, req),
        Route::Image => {
            let raw = req
                .query_param("image")
                .ok_or_else(|| Error::Malformed("image: missing (?image=REF)".into()))?;
            let r = crate::image_ref::ImageRef::parse(&crate::control::decode(raw)?)
                .map_err(Error::Malformed)?;
            let i = mirror
                .image(&r.upstream, &r.repo, &r.tag)
                .ok_or(Error::ManifestUnknown)?;
            document(
                &format!("{} · regmirror", r),
                &images::detail(mirror, &i, &host(mirror, req)),
                false,
            )
        }
    };
    Ok(Reply::new(Status::OK, Body::Bytes(html.into_bytes()))
        .header("Content-Type", "text/html; charset=utf-8")
        .header("Cache-Control", "no-store")
        // Nothing but what the page inlines, and no script at all.
        .header(
            "Content-Security-Policy",
            "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'",
        )
        .header("X-Content-Type-Options", "nosniff"))
}

/// "This box: NAME (ADDRESSES)" from `--host-info`, if given and readable.
fn this_box(mirror: &Mirror) -> String {
    let Some(info) = mirror.host_info.as_deref().map(crate::host_info::read) else {
        return String::new();
    };
    let text = |k: &str| info[k].as_str().map(str::to_owned);
    let Some(name) = text("mdns_name").or_else(|| text("hostname")) else {
        return String::new();
    };
    let addresses: Vec<&str> = info["addresses"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| a["address"].as_str())
        .collect();
    format!(
        "<p class=\"muted\" data-k=\"this-box\">This box: <b>{}</b> {}</p>",
        esc(&name),
        esc(&format!("({})", addresses.join(", ")))
    )
}

/// The status page.
pub fn home(mirror: &Mirror, req: &Request) -> String {
    let sort = images::Sort::parse(req.query_param("sort"));
    let names: Vec<_> = mirror.upstreams.all().map(|r| r.name().clone()).collect();
    let scheme = if mirror.tls { "https" } else { "http" };
    let busy = mirror.cache.stats().fills > 0
        || mirror.prefetches().iter().any(|j| !j.state.is_finished());
    let mut body = String::with_capacity(32 * 1024);
    body.push_str(&this_box(mirror));
    body.push_str(&overview::summary(mirror));
    body.push_str(&overview::work(mirror));
    body.push_str(&upstreams::section(mirror));
    body.push_str(&images::table(mirror, sort));
    body.push_str(&connect::section(&host(mirror, req), scheme, &names));
    body.push_str(&upstreams::recent(mirror));
    body.push_str(
        "<p class=\"muted\">For scripts: <a href=\"/_regmirror/status\">status</a> · \
         <a href=\"/_regmirror/images\">images</a> · <a href=\"/_regmirror/prefetch\">prefetch</a> · \
         <a href=\"/_regmirror/allowance\">allowance</a> · <a href=\"/_regmirror/pins\">pins</a> · \
         <a href=\"/metrics\">metrics</a> · <a href=\"/_regmirror/log\">log</a></p>",
    );
    document("regmirror", &body, busy)
}
