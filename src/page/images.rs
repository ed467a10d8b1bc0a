//! What is cached, per image: the table on the status page (sorted on the server by
//! `?sort=`, so it works without script) and the page of one image.

use super::html::{ago, bytes, esc, num, query_value};
use crate::mirror::pins::PinSource;
use crate::mirror::{ImageInfo, Mirror};
use std::fmt::Write as _;
use std::time::SystemTime;

/// Images listed on the page; past this the page says how many more there are and points
/// at the JSON, so that a cache of thousands of tags still gives a small page.
pub const PAGE_IMAGES: usize = 200;

/// How the table is sorted (`?sort=`); anything else is [`Sort::Name`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sort {
    /// By `upstream/repository:tag`.
    Name,
    /// Biggest first.
    Size,
    /// Most pulled first.
    Pulls,
    /// Most recently pulled first.
    Last,
    /// Pinned first, then by name.
    Pinned,
}

impl Sort {
    /// Every sort with its `?sort=` value and column title.
    const ALL: [(Sort, &'static str, &'static str); 5] = [
        (Sort::Name, "name", "Image"),
        (Sort::Size, "size", "Size"),
        (Sort::Last, "last", "Last pulled"),
        (Sort::Pulls, "pulls", "Pulls"),
        (Sort::Pinned, "pinned", "Pinned"),
    ];

    /// The sort a `?sort=` value names.
    pub fn parse(v: Option<&str>) -> Sort {
        Sort::ALL
            .iter()
            .find(|(_, k, _)| Some(*k) == v)
            .map_or(Sort::Name, |(s, ..)| *s)
    }

    fn apply(self, list: &mut [ImageInfo]) {
        let name = |i: &ImageInfo| i.reference().to_string();
        match self {
            Sort::Name => list.sort_by_cached_key(name),
            Sort::Size => list.sort_by_key(|i| std::cmp::Reverse(i.size_bytes)),
            Sort::Pulls => list.sort_by_key(|i| std::cmp::Reverse(i.pulls)),
            Sort::Last => list.sort_by_key(|i| std::cmp::Reverse(i.last_pulled)),
            Sort::Pinned => list.sort_by_cached_key(|i| (!i.pinned, name(i))),
        }
    }
}

/// The `href` of an image's page.
pub fn href(i: &ImageInfo) -> String {
    format!(
        "/_regmirror/image?image={}",
        query_value(&i.reference().to_string())
    )
}

fn short(d: &crate::reference::Digest) -> String {
    d.to_string()[..19].to_owned()
}

/// The table of images.
pub fn table(mirror: &Mirror, sort: Sort) -> String {
    let mut list = mirror.inventory();
    sort.apply(&mut list);
    let now = SystemTime::now();
    let total: u64 = list
        .iter()
        .map(|i| i.size_bytes)
        .fold(0, u64::saturating_add);
    let mut out = String::new();
    let _ = write!(
        out,
        "<section id=\"images\"><h2>What is cached</h2><p class=\"muted\">{} images by tag, \
         {} (a layer shared by two images counts in each) · \
         <a href=\"/_regmirror/images\">JSON</a></p>",
        num("images", list.len() as u64, &list.len().to_string()),
        esc(&bytes(total)),
    );
    if list.is_empty() {
        out.push_str(
            "<p class=\"muted\">Nothing yet: pull an image through the mirror.</p></section>",
        );
        return out;
    }
    out.push_str("<div class=\"scroll\"><table class=\"images\"><thead><tr>");
    for (s, key, title) in Sort::ALL {
        let cls = if s == sort { " class=\"sorted\"" } else { "" };
        let _ = write!(
            out,
            "<th{cls}><a href=\"/?sort={key}#images\">{title}</a></th>"
        );
    }
    out.push_str("<th class=\"hide-s\">Platforms</th></tr></thead><tbody>");
    for i in list.iter().take(PAGE_IMAGES) {
        let name = i.reference().to_string();
        let _ = write!(
            out,
            "<tr data-image=\"{n}\" data-size=\"{}\" data-pulls=\"{}\" data-pinned=\"{}\" \
             data-complete=\"{}\"><td><a href=\"{}\">{n}</a><br><code class=\"muted\">{}</code>{}</td>\
             <td class=\"n\">{}</td><td>{}</td><td class=\"n\">{}</td><td>{}</td><td class=\"hide-s\">{}</td></tr>",
            i.size_bytes,
            i.pulls,
            u8::from(i.pinned),
            u8::from(i.complete),
            esc(&href(i)),
            short(&i.digest),
            if i.complete { "" } else { " <span class=\"tag warn\">incomplete</span>" },
            esc(&bytes(i.size_bytes)),
            i.last_pulled.map_or("never".into(), |t| ago(t, now)),
            i.pulls,
            if i.pinned { "<span class=\"tag pin\">pinned</span>" } else { "" },
            esc(&i.platforms.join(", ")),
            n = esc(&name),
        );
    }
    out.push_str("</tbody></table></div>");
    if list.len() > PAGE_IMAGES {
        let _ = write!(
            out,
            "<p class=\"muted\">…and {} more: see <a href=\"/_regmirror/images\">the JSON</a> or \
             <code>regmirror ls</code>.</p>",
            list.len() - PAGE_IMAGES
        );
    }
    out.push_str("</section>");
    out
}

/// The page of one image: everything the inventory knows, and how to pull it.
pub fn detail(mirror: &Mirror, i: &ImageInfo, host: &str) -> String {
    let now = SystemTime::now();
    let name = i.reference().to_string();
    let pinned_by = match mirror.pins().find(&i.reference()).map(|(_, s)| s) {
        Some(PinSource::Keep) => "pinned by the keep list",
        Some(PinSource::Admin) => "pinned by an operator",
        None => "not pinned",
    };
    let hub_path = if i.upstream.is_docker_hub() {
        i.repo
            .as_str()
            .strip_prefix("library/")
            .unwrap_or(i.repo.as_str())
            .to_owned()
    } else {
        format!("{}/{}", i.upstream, i.repo)
    };
    let mut out = String::new();
    let _ = write!(
        out,
        "<p><a href=\"/#images\">← all images</a></p><section data-image=\"{n}\"><h2>{n}</h2>\
         <dl class=\"kv\"><dt>Digest</dt><dd><code data-k=\"digest\">{}</code></dd>\
         <dt>Type</dt><dd>{}</dd><dt>Platforms on disk</dt><dd data-k=\"platforms\">{}</dd>\
         <dt>Platforms offered</dt><dd>{}</dd><dt>Size on disk</dt><dd>{}</dd>\
         <dt>Complete</dt><dd>{}</dd><dt>Last pulled</dt><dd>{}</dd><dt>Pulls</dt><dd>{}</dd>\
         <dt>Pinned</dt><dd data-k=\"pinned\" data-v=\"{}\">{pinned_by}</dd></dl>",
        i.digest,
        esc(i.media_type.as_str()),
        esc(&i.platforms.join(", ")),
        esc(&if i.index_platforms.is_empty() {
            "(a single manifest)".into()
        } else {
            i.index_platforms.join(", ")
        }),
        num("size", i.size_bytes, &bytes(i.size_bytes)),
        if i.complete {
            "yes: every blob is on disk"
        } else {
            "no: some blobs are not on disk (evicted, or never pulled)"
        },
        i.last_pulled.map_or("never".into(), |t| format!(
            "{} ({})",
            ago(t, now),
            crate::logger::timestamp(t)
        )),
        num("pulls", i.pulls, &i.pulls.to_string()),
        u8::from(i.pinned),
        n = esc(&name),
    );
    let _ = write!(
        out,
        "<h3>Pull it through this mirror</h3><pre>{}</pre>\
         <p class=\"muted\"><a href=\"/_regmirror/images?image={}\">this image as JSON</a></p></section>",
        esc(&format!("docker pull {host}/{hub_path}:{}", i.tag)),
        esc(&query_value(&name)),
    );
    out
}
