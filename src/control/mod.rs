//! The mirror's control surface beside the registry API: what it holds and what it is
//! doing, as JSON (`json.rs`), and the operator's actions (prefetch, pin, unpin, evict),
//! which need the admin token (`admin.rs`).
//!
//! ```text
//! GET  /_regmirror/images[?image=REF]          the inventory (json.rs has the shapes)
//! GET  /_regmirror/prefetch[?id=1,2]           prefetch jobs and their progress
//! GET  /_regmirror/allowance                   upstreams' pull allowance and what it changes
//! GET  /_regmirror/pins                        pinned images (keep list and operator pins)
//! POST /_regmirror/admin/{prefetch,pin,unpin,evict}?image=REF…   (admin.rs)
//! ```

pub mod actions;
pub mod admin;
pub mod json;

use crate::error::Error;
use crate::http::{Method, Reply, Request, Status};
use crate::image_ref::ImageRef;
use crate::mirror::Mirror;
use actions::Action;

/// A control path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `/_regmirror/images`
    Images,
    /// `/_regmirror/prefetch`
    Prefetches,
    /// `/_regmirror/allowance`
    Allowance,
    /// `/_regmirror/pins`
    Pins,
    /// `/_regmirror/admin/<action>`
    Admin(Action),
    /// `/_regmirror/admin/<something else>`
    UnknownAdmin,
}

impl Route {
    /// An admin action: needs the token, and POST.
    pub fn is_admin(&self) -> bool {
        matches!(self, Route::Admin(_) | Route::UnknownAdmin)
    }
}

/// The control route `path` names, if any.
pub fn parse(path: &str) -> Option<Route> {
    match path.trim_end_matches('/') {
        "/_regmirror/images" => Some(Route::Images),
        "/_regmirror/prefetch" => Some(Route::Prefetches),
        "/_regmirror/allowance" => Some(Route::Allowance),
        "/_regmirror/pins" => Some(Route::Pins),
        p => {
            let action = p.strip_prefix("/_regmirror/admin/")?;
            Some(Action::parse(action).map_or(Route::UnknownAdmin, Route::Admin))
        }
    }
}

/// Answers a control request.
pub fn handle(mirror: &Mirror, req: &Request, route: &Route) -> Result<Reply, Error> {
    // The token was checked with the rest of access (`access::check`).
    if route.is_admin() && req.method != Method::Other("POST".into()) {
        return Err(Error::AdminMethod);
    }
    match route {
        Route::Admin(action) => actions::run(mirror, req, *action),
        Route::UnknownAdmin => Err(Error::NotFound),
        Route::Allowance => Ok(Reply::json(Status::OK, json::allowances(mirror))),
        Route::Pins => Ok(Reply::json(Status::OK, json::pins(mirror))),
        Route::Images => match req.query_param("image") {
            None => Ok(Reply::json(Status::OK, json::images(mirror))),
            Some(raw) => {
                let r = image_param(raw)?;
                let i = mirror
                    .image(&r.upstream, &r.repo, &r.tag)
                    .ok_or(Error::ManifestUnknown)?;
                Ok(Reply::json(Status::OK, json::image(mirror, &i).to_string()))
            }
        },
        Route::Prefetches => {
            let ids = match req.query_param("id") {
                None => None,
                Some(list) => Some(
                    list.split(',')
                        .map(|n| n.parse::<u64>())
                        .collect::<Result<Vec<u64>, _>>()
                        .map_err(|_| Error::Malformed("id: expected numbers like 1,2".into()))?,
                ),
            };
            Ok(Reply::json(Status::OK, json::jobs(mirror, ids.as_deref())))
        }
    }
}

/// Longest query parameter value decoded: an image reference with a platform list fits
/// many times over.
const MAX_PARAM_BYTES: usize = 1024;

/// A query parameter's value, percent-decoded (`%2F` → `/`, `+` → space).
pub fn decode(raw: &str) -> Result<String, Error> {
    let bad = |why: &str| Error::Malformed(format!("query parameter: {why}"));
    if raw.len() > MAX_PARAM_BYTES {
        return Err(bad("too long"));
    }
    let b = raw.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let hex = raw.get(i + 1..i + 3).ok_or_else(|| bad("bad %-escape"))?;
                out.push(u8::from_str_radix(hex, 16).map_err(|_| bad("bad %-escape"))?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| bad("not UTF-8"))
}

/// An `image=` parameter as an image reference.
fn image_param(raw: &str) -> Result<ImageRef, Error> {
    ImageRef::parse(&decode(raw)?).map_err(Error::Malformed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_are_percent_decoded_and_bounded() {
        assert_eq!(
            decode("ghcr.io%2Forg%2Fapp%3A1.4").unwrap(),
            "ghcr.io/org/app:1.4"
        );
        assert_eq!(decode("a+b").unwrap(), "a b");
        assert!(decode("%zz").is_err());
        assert!(decode("%4").is_err());
        assert!(decode("%ff").is_err(), "not UTF-8");
        assert!(decode(&"a".repeat(MAX_PARAM_BYTES + 1)).is_err());
    }
}
