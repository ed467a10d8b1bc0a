//! `tags/list`: upstream's page passed through with its `Content-Type` and where the next
//! page is ([`NextPage`], from upstream's `Link`), or — when upstream fails in any way but
//! a 404 — the tags this cache has records for, paged the same way.
//!
//! The `Link` a client gets never repeats upstream's URL: it is rebuilt from the path the
//! client asked (so a Docker Hub short name, a path prefix or `?ns=` stays as it was) plus
//! the `last` and `n` parameters, each checked to be plain URL text.

use super::{Mirror, Target};
use crate::error::{Error, UpstreamError};
use crate::http::Outcome;
use crate::media_type::MediaType;
use crate::reference::UpstreamName;
use serde_json::json;

/// Longest `last` taken from an upstream `Link`: a tag is at most 128 characters, and
/// percent-encoding makes each at most three.
const MAX_LAST_LEN: usize = 3 * 128;

/// One page of `tags/list` for a client.
#[derive(Debug)]
pub struct TagsOut {
    /// The JSON body.
    pub body: Vec<u8>,
    /// Its `Content-Type`: upstream's when well-formed, else `application/json`.
    pub content_type: String,
    /// Where the next page starts, if there is one.
    pub next: Option<NextPage>,
    /// `PASS` from upstream, `STALE` from the cache.
    pub outcome: Outcome,
}

/// The query of the next page: `last=<tag>&n=<count>`. Both are plain URL text (letters,
/// digits, `-._~` and `%`-escapes), safe to put in a header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NextPage {
    last: String,
    n: Option<u32>,
}

impl NextPage {
    /// From an upstream `Link` header: the `rel="next"` target's `last` and `n`. `None`
    /// if there is no such link or its values are not plain.
    pub fn from_link(link: &str) -> Option<NextPage> {
        link.split(',').find_map(|entry| {
            let (target, params) = entry.trim().strip_prefix('<')?.split_once('>')?;
            let next = params.split(';').any(|p| {
                let p = p.trim().to_ascii_lowercase();
                p == "rel=\"next\"" || p == "rel=next"
            });
            next.then(|| NextPage::from_query(target.split_once('?')?.1))?
        })
    }

    fn from_query(query: &str) -> Option<NextPage> {
        let (mut last, mut n) = (None, None);
        for (k, v) in query.split('&').filter_map(|kv| kv.split_once('=')) {
            match k {
                "last" if plain(v) && v.len() <= MAX_LAST_LEN => last = Some(v.to_owned()),
                "n" => n = Some(v.parse().ok()?),
                _ => {}
            }
        }
        Some(NextPage { last: last?, n })
    }

    /// The `Link` header pointing the client at the next page on this mirror: `path` as
    /// the client asked it, and `ns` if it chose the upstream that way.
    pub fn link(&self, path: &str, ns: Option<&UpstreamName>) -> String {
        let mut target = format!("{path}?last={}", self.last);
        if let Some(n) = self.n {
            target.push_str(&format!("&n={n}"));
        }
        if let Some(ns) = ns {
            target.push_str(&format!("&ns={ns}"));
        }
        format!("<{target}>; rel=\"next\"")
    }
}

/// Unreserved URL characters and `%`-escapes only.
fn plain(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~%".contains(&b))
}

impl Mirror {
    /// `tags/list` for `t`; `query` is the client's (only `n` and `last` are used).
    pub async fn tags_list(&self, t: &Target, query: Option<&str>) -> Result<TagsOut, Error> {
        match t.registry.tags_list(&t.repo, query).await {
            Ok(page) => {
                let next = page.link.as_deref().and_then(|l| {
                    let next = NextPage::from_link(l);
                    if next.is_none() {
                        log::warn!("tags/list {}: ignoring upstream Link {l:?}", t.repo);
                    }
                    next
                });
                let plain_text = page
                    .content_type
                    .bytes()
                    .all(|b| b == b' ' || b.is_ascii_graphic());
                let content_type = match MediaType::parse(&page.content_type) {
                    Some(_) if plain_text => page.content_type,
                    _ => MediaType::JSON.to_string(),
                };
                Ok(TagsOut {
                    body: page.body,
                    content_type,
                    next,
                    outcome: Outcome::Pass,
                })
            }
            Err(UpstreamError::NotFound) => Err(Error::Upstream(UpstreamError::NotFound)),
            Err(e) => {
                let tags = self.cache.tag_names(t.registry.name(), &t.repo);
                if tags.is_empty() {
                    return Err(e.into());
                }
                log::warn!(
                    "tags/list {}: upstream failed ({e}); answering from cache",
                    t.repo
                );
                let (page, next) = paged(tags, query);
                Ok(TagsOut {
                    body: json!({ "name": t.repo.as_str(), "tags": page })
                        .to_string()
                        .into_bytes(),
                    content_type: MediaType::JSON.to_string(),
                    next,
                    outcome: Outcome::Stale,
                })
            }
        }
    }
}

/// The page of sorted `tags` the client's `last` and `n` ask for, and the next page if
/// more follow.
fn paged(tags: Vec<String>, query: Option<&str>) -> (Vec<String>, Option<NextPage>) {
    let param = |key: &str| {
        query?
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .find_map(|(k, v)| (k == key).then_some(v))
    };
    let n: Option<u32> = param("n").and_then(|n| n.parse().ok());
    let after = param("last");
    let mut rest: Vec<String> = tags
        .into_iter()
        .filter(|t| after.is_none_or(|last| t.as_str() > last))
        .collect();
    let limit = n.map_or(usize::MAX, |n| usize::try_from(n).unwrap_or(usize::MAX));
    if rest.len() <= limit {
        return (rest, None);
    }
    rest.truncate(limit);
    let next = rest.last().map(|last| NextPage {
        last: last.clone(),
        n,
    });
    (rest, next)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_link_is_read_from_relative_or_absolute_urls() {
        let want = NextPage {
            last: "3.1".into(),
            n: Some(100),
        };
        for link in [
            r#"</v2/library/alpine/tags/list?last=3.1&n=100>; rel="next""#,
            r#"<https://registry-1.docker.io/v2/library/alpine/tags/list?n=100&last=3.1>; rel="next""#,
            r#"</v2/x/tags/list?last=0.9>; rel="prev", </v2/x/tags/list?n=100&last=3.1>; REL=next"#,
        ] {
            assert_eq!(NextPage::from_link(link), Some(want.clone()), "{link}");
        }
        for bad in [
            r#"</v2/x/tags/list?last=3.1&n=100>; rel="prev""#,
            r#"</v2/x/tags/list?n=100>; rel="next""#,
            r#"</v2/x/tags/list?last=a"b&n=1>; rel="next""#,
            r#"</v2/x/tags/list?last=a&n=-1>; rel="next""#,
            r#"</v2/x/tags/list?last=a&n=99999999999>; rel="next""#,
            "garbage",
        ] {
            assert_eq!(NextPage::from_link(bad), None, "{bad}");
        }
        let long = format!("</x?last={}>; rel=\"next\"", "a".repeat(MAX_LAST_LEN + 1));
        assert_eq!(NextPage::from_link(&long), None);
    }

    #[test]
    fn the_link_a_client_gets_points_back_where_it_asked() {
        let next = NextPage {
            last: "v%2B1".into(),
            n: Some(2),
        };
        assert_eq!(
            next.link("/v2/alpine/tags/list", None),
            r#"</v2/alpine/tags/list?last=v%2B1&n=2>; rel="next""#
        );
        let ghcr: UpstreamName = "ghcr.io".parse().unwrap();
        assert_eq!(
            next.link("/v2/owner/app/tags/list", Some(&ghcr)),
            r#"</v2/owner/app/tags/list?last=v%2B1&n=2&ns=ghcr.io>; rel="next""#
        );
    }

    #[test]
    fn cached_tags_page_like_upstream() {
        let tags = || vec!["a".to_owned(), "b".into(), "c".into()];
        assert_eq!(paged(tags(), None), (tags(), None));
        let (page, next) = paged(tags(), Some("n=2"));
        assert_eq!(page, ["a", "b"]);
        assert_eq!(
            next,
            Some(NextPage {
                last: "b".into(),
                n: Some(2)
            })
        );
        assert_eq!(paged(tags(), Some("last=b&n=2")), (vec!["c".into()], None));
        assert_eq!(paged(tags(), Some("n=0")).0, Vec::<String>::new());
    }
}
