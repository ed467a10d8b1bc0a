//! The fake registry's behaviour: route a request, check auth, and answer manifests, blobs,
//! tags and tokens from the shared state, with whatever misbehaviour is scripted.

use super::http::{Answer, Req};
use super::{image::base64, Cut, Listener, Shared, State};

pub(super) fn route(req: &Req, which: Listener, shared: &Shared) -> Answer {
    let path = req.path().to_owned();
    if which == Listener::Cdn {
        if req.method == "HEAD" && shared.state().cdn_refuses_head {
            return Answer::error(403, "DENIED");
        }
        return match path
            .strip_prefix("/cdn/")
            .and_then(|p| p.rsplit_once("/blobs/"))
        {
            Some((repo, digest)) => blob(req, &mut shared.state(), repo, digest),
            None => Answer::error(404, "NOT_FOUND"),
        };
    }
    if path == "/token" {
        return token(req, &mut shared.state());
    }
    let mut s = shared.state();
    let mut answer = registry(req, &path, &mut s, shared);
    if let Some(v) = &s.ratelimit_remaining {
        answer = answer.header("ratelimit-remaining", v.clone());
    }
    for (n, v) in &s.extra_headers {
        answer = answer.header(n, v.clone());
    }
    if req.method == "HEAD" {
        let omitted = |n: &str| s.omit_on_head.iter().any(|o| o.eq_ignore_ascii_case(n));
        answer.headers.retain(|(n, _)| !omitted(n));
        answer.omit_length = omitted("Content-Length");
    }
    answer
}

fn registry(req: &Req, path: &str, s: &mut State, shared: &Shared) -> Answer {
    let get_failure = s.get_failure.filter(|_| req.method == "GET");
    if let Some((status, retry_after)) = s.failure.or(get_failure) {
        let a = Answer::error(
            status,
            if status == 429 {
                "TOOMANYREQUESTS"
            } else {
                "UNAVAILABLE"
            },
        );
        return match retry_after {
            Some(secs) => a.header("Retry-After", secs.to_string()),
            None => a,
        };
    }
    let Some(rest) = path.strip_prefix("/v2/") else {
        return Answer::error(404, "NOT_FOUND");
    };
    let (repo, kind, arg) = if let Some((r, t)) = rest.rsplit_once("/manifests/") {
        (r, "manifests", t)
    } else if let Some((r, d)) = rest.rsplit_once("/blobs/") {
        (r, "blobs", d)
    } else if let Some(r) = rest.strip_suffix("/tags/list") {
        (r, "tags", "")
    } else {
        ("", "base", "")
    };
    if let Some(denied) = check_auth(req, s, shared, repo) {
        return denied;
    }
    match kind {
        "manifests" => manifest(s, repo, arg),
        "blobs" if s.redirect_blobs => {
            let to = format!(
                "{}://localhost:{}/cdn/{repo}/blobs/{arg}?sig=s3cr3t",
                shared.scheme(),
                shared.cdn.port()
            );
            Answer::new(307, Vec::new()).header("Location", to)
        }
        "blobs" => blob(req, s, repo, arg),
        "tags" => match s.tags.get(repo) {
            Some(tags) => tags_list(req, repo, tags),
            None => Answer::error(404, "NAME_UNKNOWN"),
        },
        _ if rest.is_empty() => Answer::new(200, "{}").header("Content-Type", "application/json"),
        _ => Answer::error(404, "NOT_FOUND"),
    }
}

/// `tags/list` in insertion order: `last` starts after that tag, `n` limits the page, and a
/// page followed by more tags links to the next one as Docker Hub does
/// (`Link: </v2/<repo>/tags/list?last=<tag>&n=<n>>; rel="next"`).
fn tags_list(req: &Req, repo: &str, tags: &[String]) -> Answer {
    let from = req
        .query("last")
        .and_then(|last| tags.iter().position(|t| *t == last))
        .map_or(0, |i| i + 1);
    let n: Option<usize> = req.query("n").and_then(|n| n.parse().ok());
    let rest = &tags[from.min(tags.len())..];
    let page = &rest[..n.unwrap_or(usize::MAX).min(rest.len())];
    let list: Vec<String> = page.iter().map(|t| format!("\"{t}\"")).collect();
    let body = format!(r#"{{"name":"{repo}","tags":[{}]}}"#, list.join(","));
    // distribution's Content-Type, parameter included.
    let json = "application/json; charset=utf-8";
    let mut answer = Answer::new(200, body).header("Content-Type", json);
    if let (Some(n), Some(last)) = (n, page.last().filter(|_| page.len() < rest.len())) {
        let next = format!(r#"</v2/{repo}/tags/list?last={last}&n={n}>; rel="next""#);
        answer = answer.header("Link", next);
    }
    answer
}

/// `None` when the request may proceed; else the 401.
fn check_auth(req: &Req, s: &State, shared: &Shared, repo: &str) -> Option<Answer> {
    let given = req.header("authorization");
    if s.bearer.is_some() {
        let scope = format!("repository:{repo}:pull");
        let ok = given
            .and_then(|g| g.strip_prefix("Bearer "))
            .and_then(|t| s.tokens.get(t))
            .is_some_and(|sc| repo.is_empty() || *sc == scope);
        if ok {
            return None;
        }
        let realm = format!("{}://{}/token", shared.scheme(), shared.registry);
        let challenge =
            format!(r#"Bearer realm="{realm}",service="fake-registry",scope="{scope}""#);
        return Some(Answer::error(401, "UNAUTHORIZED").header("WWW-Authenticate", challenge));
    }
    if let Some((u, p)) = &s.basic {
        if given == Some(basic(u, p).as_str()) {
            return None;
        }
        return Some(
            Answer::error(401, "UNAUTHORIZED").header("WWW-Authenticate", r#"Basic realm="fake""#),
        );
    }
    None
}

fn basic(user: &str, password: &str) -> String {
    format!("Basic {}", base64(format!("{user}:{password}").as_bytes()))
}

fn token(req: &Req, s: &mut State) -> Answer {
    let Some(mode) = &s.bearer else {
        return Answer::error(404, "NOT_FOUND");
    };
    if let Some((u, p)) = &mode.credentials {
        if req.header("authorization") != Some(basic(u, p).as_str()) {
            return Answer::error(401, "UNAUTHORIZED");
        }
    }
    let expires = mode
        .expires_in
        .map_or(String::new(), |e| format!(r#","expires_in":{e}"#));
    let token = format!("tok{}", s.tokens.len() + 1);
    s.tokens
        .insert(token.clone(), req.query("scope").unwrap_or_default());
    Answer::new(200, format!(r#"{{"token":"{token}"{expires}}}"#))
        .header("Content-Type", "application/json")
}

fn manifest(s: &State, repo: &str, reference: &str) -> Answer {
    let Some((bytes, media_type)) = s.manifests.get(&(repo.to_owned(), reference.to_owned()))
    else {
        return Answer::error(404, "MANIFEST_UNKNOWN");
    };
    let digest = super::digest_of(bytes);
    let mut body = bytes.clone();
    if s.corrupt {
        flip(&mut body);
    }
    Answer::new(200, body)
        .header("Content-Type", media_type.clone())
        .header("Docker-Content-Digest", digest)
}

fn blob(req: &Req, s: &mut State, repo: &str, digest: &str) -> Answer {
    let Some(bytes) = s.blobs.get(&(repo.to_owned(), digest.to_owned())) else {
        return Answer::error(404, "BLOB_UNKNOWN");
    };
    let mut body = bytes.clone();
    if s.corrupt || (req.method == "GET" && std::mem::take(&mut s.corrupt_next_blob)) {
        flip(&mut body);
    }
    let total = body.len();
    // `bytes=N-` or `bytes=N-M`; anything else is ignored (whole blob).
    let range = req
        .header("range")
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.split_once('-'))
        .and_then(|(a, b)| Some((a.parse::<usize>().ok()?, b.parse::<usize>().ok())))
        .filter(|_| !s.ignore_range);
    let mut answer = match range {
        Some((start, _)) if start >= total => {
            return Answer::error(416, "RANGE_INVALID")
                .header("Content-Range", format!("bytes */{total}"));
        }
        Some((start, end)) => {
            let end = end.map_or(total - 1, |e| e.min(total - 1)).max(start);
            Answer::new(206, body[start..=end].to_vec())
                .header("Content-Range", format!("bytes {start}-{end}/{total}"))
        }
        None => Answer::new(200, body),
    };
    answer = answer
        .header("Content-Type", "application/octet-stream")
        .header("Docker-Content-Digest", digest)
        .header("Accept-Ranges", "bytes");
    if req.method == "GET" {
        // A one-shot cut waits for a blob long enough to be cut part-way, so that which blob
        // a client fetches first (a 50-byte config or the layer) does not decide the test.
        let long_enough = s.cut.is_some_and(|(n, _)| n < answer.body.len());
        let once = if long_enough { s.cut.take() } else { None };
        answer.cut = once.or(s.stall_blobs.map(|n| (n, Cut::Stall)));
    }
    answer.chunked = s.chunked_blobs;
    answer
}

fn flip(bytes: &mut [u8]) {
    if let Some(b) = bytes.last_mut() {
        *b ^= 0x01;
    }
}
