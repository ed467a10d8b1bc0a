//! Request path → [`Route`], dispatch to the mirror, and every `Error` turned into an OCI
//! error reply: [`handle`] cannot fail.
//!
//! Which upstream a registry path means: `?ns=<name>` (containerd), else a first path
//! component that is a registry name (`/v2/ghcr.io/owner/app/…`), else Docker Hub, where
//! single-segment names get `library/`. Only configured upstreams are ever contacted.

use crate::access;
use crate::error::{Error, Subject};
use crate::http::{Body, Method, Reply, Request, Status};
use crate::manifest::Accept;
use crate::mirror::{resolve_upstream, BlobSource, Mirror, Target};
use crate::reference::{Digest, Reference, Repository, UpstreamName};
use crate::status;

/// What a request asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum Route {
    /// `/v2/`: API version check.
    Base,
    /// `/v2/_catalog`: repositories in the cache.
    Catalog,
    /// `/v2/<name>/manifests/<reference>`
    Manifest(Name, Reference),
    /// `/v2/<name>/blobs/<digest>`
    Blob(Name, Digest),
    /// `/v2/<name>/tags/list`
    TagsList(Name),
    /// `/v2/<name>/referrers/<digest>`, with the `artifactType` filter if given.
    Referrers(Name, Digest, Option<String>),
    /// `/v2/<name>/blobs/uploads/…` and other write paths.
    Write,
    /// `/metrics`
    Metrics,
    /// `/_regmirror/status`
    Status,
    /// `/_regmirror/log`
    Log,
    /// The inventory, prefetch jobs and admin actions (`control/`).
    Control(crate::control::Route),
    /// The status page and the image pages (`page/`).
    Page(crate::page::Route),
}

impl Route {
    /// The upstream and repository a registry route names.
    pub fn name(&self) -> Option<&Name> {
        match self {
            Route::Manifest(n, _)
            | Route::Blob(n, _)
            | Route::TagsList(n)
            | Route::Referrers(n, ..) => Some(n),
            _ => None,
        }
    }

    /// What the route is about, for the OCI code of a failure that is not the client's.
    pub fn subject(&self) -> Subject {
        match self {
            Route::Manifest(..) => Subject::Manifest,
            Route::Blob(..) => Subject::Blob,
            Route::TagsList(_) | Route::Referrers(..) => Subject::Repository,
            _ => Subject::Other,
        }
    }
}

/// An upstream name and a repository on it.
#[derive(Debug, PartialEq, Eq)]
pub struct Name {
    /// Upstream registry name (`docker.io`, `ghcr.io`, …), not yet checked against config.
    pub upstream: UpstreamName,
    /// Repository there.
    pub repo: Repository,
}

/// Parses a request's path (and `ns` query) into a route.
pub fn parse(req: &Request) -> Result<Route, Error> {
    let path = req.path.as_str();
    match path {
        "/v2" | "/v2/" => return Ok(Route::Base),
        "/v2/_catalog" => return Ok(Route::Catalog),
        "/metrics" => return Ok(Route::Metrics),
        "/_regmirror/status" | "/_regmirror/status/" => return Ok(Route::Status),
        "/_regmirror/log" | "/_regmirror/log/" => return Ok(Route::Log),
        _ => {}
    }
    if let Some(p) = crate::page::parse(path) {
        return Ok(Route::Page(p));
    }
    if let Some(c) = crate::control::parse(path) {
        return Ok(Route::Control(c));
    }
    let rest = path.strip_prefix("/v2/").ok_or(Error::NotFound)?;
    let segs: Vec<&str> = rest.split('/').collect();
    if segs.windows(2).any(|w| w == ["blobs", "uploads"]) {
        return Ok(Route::Write);
    }
    let n = segs.len();
    if n < 3 {
        return Err(Error::NotFound);
    }
    let name_of = |end: usize| name(&segs[..end], req.query_param("ns"));
    match (segs[n - 2], segs[n - 1]) {
        ("manifests", r) => Ok(Route::Manifest(name_of(n - 2)?, Reference::parse(r)?)),
        ("blobs", d) => Ok(Route::Blob(name_of(n - 2)?, Digest::parse(d)?)),
        ("tags", "list") => Ok(Route::TagsList(name_of(n - 2)?)),
        ("referrers", d) => Ok(Route::Referrers(
            name_of(n - 2)?,
            Digest::parse(d)?,
            artifact_type(req)?,
        )),
        _ => Err(Error::NotFound),
    }
}

/// The `artifactType` query parameter, percent-decoded, if it is a media type.
fn artifact_type(req: &Request) -> Result<Option<String>, Error> {
    let Some(raw) = req.query_param("artifactType") else {
        return Ok(None);
    };
    let bad = || Error::Malformed("artifactType is not a media type".into());
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = raw.get(i + 1..i + 3).ok_or_else(bad)?;
                out.push(u8::from_str_radix(hex, 16).map_err(|_| bad())?);
                i += 3;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    let t = String::from_utf8(out).map_err(|_| bad())?;
    let t = crate::media_type::MediaType::parse(&t).ok_or_else(bad)?;
    Ok(Some(t.as_str().to_owned()))
}

fn name(segs: &[&str], ns: Option<&str>) -> Result<Name, Error> {
    let prefix = segs.first().and_then(|s| UpstreamName::parse(s).ok());
    let (upstream, repo_segs) = match (ns, prefix) {
        (Some(ns), _) => {
            let name =
                UpstreamName::parse(ns).map_err(|_| Error::UnknownUpstream(ns.to_owned()))?;
            (name, segs)
        }
        (None, Some(name)) if segs.len() > 1 => (name, &segs[1..]),
        (None, _) => (UpstreamName::docker_hub(), segs),
    };
    let mut repo = Repository::parse(&repo_segs.join("/"))?;
    if upstream.is_docker_hub() {
        repo = repo.with_library_prefix()?;
    }
    Ok(Name { upstream, repo })
}

/// Answers a request. Never fails: errors become OCI error replies.
pub async fn handle(mirror: &Mirror, req: &Request) -> Reply {
    let head = req.method == Method::Head;
    let route = parse(req);
    // Only a configured upstream is a label (a client may name any).
    let upstream = route
        .as_ref()
        .ok()
        .and_then(Route::name)
        .and_then(|n| mirror.upstreams.get(&n.upstream))
        .map(|r| r.name().clone());
    let allowed = access::check(&mirror.access, req, route.as_ref().ok());
    let (reply, subject) = match (&req.method, allowed.and(route)) {
        (_, Err(e)) => (Err(e), Subject::Other),
        // Admin actions are POSTs (their token was checked with the access above).
        (_, Ok(Route::Control(c))) if c.is_admin() => {
            (crate::control::handle(mirror, req, &c), Subject::Other)
        }
        (_, Ok(Route::Write)) | (Method::Other(_), Ok(_)) => {
            (Err(Error::Unsupported), Subject::Other)
        }
        (_, Ok(route)) => {
            let subject = route.subject();
            (dispatch(mirror, req, route).await, subject)
        }
    };
    let reply = reply.unwrap_or_else(|e| error_reply(e, subject));
    let mut reply = reply.header("Docker-Distribution-API-Version", "registry/2.0");
    let failed = reply.status.is_client_error() || reply.status.is_server_error();
    mirror
        .metrics
        .count_request(upstream.as_ref(), reply.outcome, failed);
    reply.upstream = upstream;
    if head {
        reply.into_head()
    } else {
        reply
    }
}

async fn dispatch(mirror: &Mirror, req: &Request, route: Route) -> Result<Reply, Error> {
    let target = |n: Name| -> Result<Target, Error> {
        Ok(Target {
            registry: resolve_upstream(&mirror.upstreams, &n.upstream)?,
            repo: n.repo,
        })
    };
    match route {
        Route::Base => Ok(Reply::json(Status::OK, "{}".into())),
        Route::Catalog => Ok(Reply::json(Status::OK, status::catalog(mirror))),
        Route::Metrics => Ok(Reply::new(
            Status::OK,
            Body::Bytes(status::metrics(mirror).into_bytes()),
        )
        .header("Content-Type", "text/plain; version=0.0.4")),
        Route::Status => Ok(Reply::json(Status::OK, status::status(mirror))),
        Route::Log => Ok(Reply::new(
            Status::OK,
            Body::Bytes(crate::logger::recent().into_bytes()),
        )
        .header("Content-Type", "text/plain; charset=utf-8")),
        Route::Control(c) => crate::control::handle(mirror, req, &c),
        Route::Page(p) => crate::page::handle(mirror, req, &p),
        Route::Manifest(n, reference) => {
            let t = target(n)?;
            let m = mirror
                .manifest(&t, &reference, &Accept::parse(&req.accept))
                .await?;
            if req.method == Method::Get {
                mirror.read_ahead(&t, &m.bytes);
            }
            Ok(Reply::new(Status::OK, Body::Bytes(m.bytes))
                .header("Content-Type", m.media_type.to_string())
                .header("Docker-Content-Digest", m.digest.to_string())
                .header("Etag", format!("\"{}\"", m.digest))
                .outcome(m.outcome))
        }
        Route::Blob(n, digest) => {
            let t = target(n)?;
            let head = req.method == Method::Head;
            let b = mirror.blob(&t, &digest, req.range.as_deref(), head).await?;
            let (status, len) = match b.range {
                Some(r) => (Status::PARTIAL_CONTENT, Some(r.end - r.start)),
                None => (Status::OK, b.total), // `None`: a fill of unknown length, chunked
            };
            let start = b.range.map_or(0, |r| r.start);
            let body = match b.body {
                Some(BlobSource::File(file)) => Body::File {
                    file,
                    start,
                    len: len.unwrap_or(0),
                },
                Some(BlobSource::Growing(g)) => Body::Growing(g),
                Some(BlobSource::Stream(r)) => Body::Stream(r, len),
                None => Body::Empty,
            };
            let mut reply = Reply::new(status, body)
                .header("Content-Type", "application/octet-stream")
                .header("Docker-Content-Digest", digest.to_string())
                .header("Accept-Ranges", "bytes")
                .header("Etag", format!("\"{digest}\""))
                .header("Cache-Control", "max-age=31536000")
                .outcome(b.outcome);
            reply.head_len = len;
            if let (Some(r), Some(total)) = (b.range, b.total) {
                reply = reply.header(
                    "Content-Range",
                    format!("bytes {}-{}/{total}", r.start, r.end - 1),
                );
            }
            Ok(reply)
        }
        Route::TagsList(n) => {
            let t = target(n)?;
            let page = mirror.tags_list(&t, req.query.as_deref()).await?;
            let mut reply = Reply::new(Status::OK, Body::Bytes(page.body))
                .header("Content-Type", page.content_type)
                .outcome(page.outcome);
            if let Some(next) = page.next {
                // Back to this mirror, the way this client named the repository.
                let ns = req.query_param("ns").and_then(|ns| ns.parse().ok());
                reply = reply.header("Link", next.link(&req.path, ns.as_ref()));
            }
            Ok(reply)
        }
        Route::Referrers(n, digest, artifact_type) => {
            let t = target(n)?;
            let r = mirror
                .referrers(&t, &digest, artifact_type.as_deref())
                .await?;
            let mut reply = Reply::new(Status::OK, Body::Bytes(r.body))
                .header("Content-Type", r.content_type)
                .outcome(r.outcome);
            if let Some(f) = r.filters_applied {
                reply = reply.header("OCI-Filters-Applied", f);
            }
            Ok(reply)
        }
        Route::Write => Err(Error::Unsupported),
    }
}

/// The OCI error reply for `e`, which failed a request about `subject`.
pub fn error_reply(e: Error, subject: Subject) -> Reply {
    match e.side() {
        crate::error::Side::Client => log::debug!("{e}"),
        _ => log::warn!("{e}"),
    }
    // The cause goes in the reason phrase too: the status line is what skopeo, podman
    // and Docker print.
    let mut reply = Reply::json(e.status(), e.to_json(subject)).reason(&e.to_string());
    if let Some(secs) = e.retry_after() {
        reply = reply.header("Retry-After", secs.to_string());
    }
    if let Error::RangeNotSatisfiable { size } = e {
        reply = reply.header("Content-Range", format!("bytes */{size}"));
    }
    if let Error::Unauthenticated(_) = e {
        reply = reply.header(
            "WWW-Authenticate",
            "Basic realm=\"regmirror\", charset=\"UTF-8\"",
        );
    }
    if let Error::Unsupported = e {
        reply = reply.header("Allow", "GET, HEAD");
    }
    reply
}

#[cfg(test)]
mod tests;
