//! One upstream registry ([`Registry`]): manifest and blob requests with the token flow,
//! status mapping, digest checks, and its [`Health`] (circuit breaker, last failure,
//! rate-limit headers). Its listing pages (`tags/list`, `referrers`) are
//! `registry/pages.rs`.

use super::answers::{BlobStream, Manifest, RegistryStatus};
use super::auth::Auth;
use super::client::{same_origin, Client};
use super::health::{is_outage, Health};
use super::response::{
    body_media_type, check_status, content_length, header, parse_content_range, protocol,
};
use super::stream::{read_limited, BodyReader};
use super::wire::{host_of, Response};
use super::MAX_MANIFEST_BYTES;
use crate::config::{UpstreamConfig, UpstreamUrl};
use crate::error::UpstreamError;
use crate::http::Status;
use crate::media_type::{MediaType, MANIFEST_TYPES};
use crate::reference::{Digest, Reference, Repository, UpstreamName};
use http_types::{Method, Url};
use std::fmt;
use std::rc::Rc;
use std::time::Instant;

mod pages;
pub use pages::{ReferrersPage, TagsPage};

/// Whether a call's success is known when its head arrives.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// The answer is the outcome: record it.
    AtHead,
    /// A 2xx answer's body is streamed to the caller: the body reports (its first bytes
    /// are the success, a stall or reset the failure).
    ByBody,
}

/// One upstream registry. Its state (token cache, health) is single-threaded (`RefCell`)
/// and never borrowed across an `.await`.
pub struct Registry {
    name: UpstreamName,
    url: UpstreamUrl,
    client: Client,
    auth: Auth,
    /// Shared with the bodies of the blob streams handed out.
    health: Rc<Health>,
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registry")
            .field("name", &self.name)
            .field("url", &self.url.to_string())
            .field("auth", &self.auth)
            .field("health", &self.health)
            .finish()
    }
}

impl Registry {
    pub(super) fn new(config: &UpstreamConfig, client: Client) -> Registry {
        Registry {
            name: config.name.clone(),
            url: config.url.clone(),
            client,
            auth: Auth::new(config.credentials.clone()),
            health: Rc::new(Health::new(config.name.clone())),
        }
    }

    /// The upstream's name as configured (`docker.io`).
    pub fn name(&self) -> &UpstreamName {
        &self.name
    }

    /// GET or HEAD a manifest, asking for every type in [`MANIFEST_TYPES`]. A GET's
    /// body (≤ [`MAX_MANIFEST_BYTES`]) must hash to the digest asked for, or to
    /// `Docker-Content-Digest` when asked by tag (`BadContent` otherwise). A HEAD needs
    /// only `Docker-Content-Digest`: without `Content-Type` its `media_type` reads
    /// `application/json`, without `Content-Length` its `length` 0.
    pub async fn manifest(
        &self,
        repo: &Repository,
        reference: &Reference,
        head: bool,
    ) -> Result<Manifest, UpstreamError> {
        let repo = &self.remote(repo)?;
        let url = self.api_url(repo, &format!("manifests/{reference}"))?;
        let accept = MANIFEST_TYPES.map(|t| t.to_string()).join(", ");
        let method = if head { Method::Head } else { Method::Get };
        let res = self
            .call(method, url, &[("accept", &accept)], repo, Outcome::AtHead)
            .await?;
        let host = host_of(&res.url);
        let announced = match header(&res, "docker-content-digest") {
            Some(d) => Some(
                Digest::parse(d.trim()).map_err(|_| protocol(&res, "bad Docker-Content-Digest"))?,
            ),
            None => None,
        };
        let expected = match reference {
            Reference::Digest(asked) if announced.is_some_and(|a| a != *asked) => {
                return Err(UpstreamError::BadContent(format!(
                    "{host}: asked for {asked}, upstream announced {}",
                    announced.unwrap_or(*asked)
                )));
            }
            Reference::Digest(asked) => Some(*asked),
            Reference::Tag(_) => announced,
        };
        let content_type = header(&res, "content-type").and_then(MediaType::parse);
        if head {
            // A revalidation needs the digest alone; registries differ on the rest.
            return Ok(Manifest {
                digest: expected
                    .ok_or_else(|| protocol(&res, "manifest HEAD without Docker-Content-Digest"))?,
                media_type: content_type.unwrap_or(MediaType::JSON),
                length: content_length(&res).unwrap_or(0),
                body: None,
            });
        }
        let body = self.read_body(res, MAX_MANIFEST_BYTES).await?;
        let digest = Digest::of(&body);
        if let Some(e) = expected.filter(|e| *e != digest) {
            return Err(UpstreamError::BadContent(format!(
                "{host}: manifest {repo}:{reference} hashes to {digest}, expected {e}"
            )));
        }
        let media_type = match content_type {
            Some(t) if t.is_manifest() => t,
            other => body_media_type(&body).or(other).ok_or_else(|| {
                UpstreamError::Protocol(format!("{host}: manifest without a media type"))
            })?,
        };
        Ok(Manifest {
            digest,
            media_type,
            length: body.len() as u64,
            body: Some(body),
        })
    }

    /// GET a blob from `offset` on, to `end` (inclusive) if given — `Range:
    /// bytes=<offset>-[<end>]` unless that is the whole blob — following redirects. See
    /// [`BlobStream`] for what its body reports.
    pub async fn blob(
        &self,
        repo: &Repository,
        digest: &Digest,
        offset: u64,
        end: Option<u64>,
    ) -> Result<BlobStream, UpstreamError> {
        let repo = &self.remote(repo)?;
        let url = self.api_url(repo, &format!("blobs/{digest}"))?;
        let last = end.map_or(String::new(), |e| e.to_string());
        let range = format!("bytes={offset}-{last}");
        let headers: &[(&str, &str)] = if offset > 0 || end.is_some() {
            &[("range", &range)]
        } else {
            &[]
        };
        let res = self
            .call(Method::Get, url, headers, repo, Outcome::ByBody)
            .await?;
        let (offset, total) = if res.status == Status::PARTIAL_CONTENT {
            let range = header(&res, "content-range")
                .ok_or_else(|| protocol(&res, "206 without Content-Range"))?;
            let (start, total) =
                parse_content_range(range).ok_or_else(|| protocol(&res, "bad Content-Range"))?;
            if start != offset {
                return Err(protocol(
                    &res,
                    &format!("asked for bytes from {offset}, got from {start}"),
                ));
            }
            (start, total)
        } else {
            (0, res.body.len())
        };
        let body = Box::new(BodyReader::new(
            res.body,
            self.client.metrics.clone(),
            self.health.clone(),
        ));
        Ok(BlobStream {
            offset,
            total,
            body,
        })
    }

    /// HEAD a blob: its length. Follows redirects. A HEAD refused with 403 or 405 is asked
    /// again as `GET` of one byte: CDNs behind a redirect often sign URLs for GET only.
    pub async fn blob_head(
        &self,
        repo: &Repository,
        digest: &Digest,
    ) -> Result<u64, UpstreamError> {
        let repo = &self.remote(repo)?;
        let url = self.api_url(repo, &format!("blobs/{digest}"))?;
        let head = self
            .call(Method::Head, url.clone(), &[], repo, Outcome::AtHead)
            .await;
        let res = match head {
            Err(
                UpstreamError::Denied(_) | UpstreamError::Status(Status::METHOD_NOT_ALLOWED, _),
            ) => {
                let one_byte = [("range", "bytes=0-0")];
                let res = self
                    .call(Method::Get, url, &one_byte, repo, Outcome::AtHead)
                    .await?;
                if res.status == Status::PARTIAL_CONTENT {
                    let range = header(&res, "content-range").unwrap_or_default();
                    return parse_content_range(range)
                        .and_then(|(_, total)| total)
                        .ok_or_else(|| protocol(&res, "bad Content-Range"));
                }
                res
            }
            other => other?,
        };
        content_length(&res).ok_or_else(|| protocol(&res, "blob HEAD without Content-Length"))
    }

    /// The user name of the configured credentials, if any (the password stays inside).
    pub fn user(&self) -> Option<&str> {
        self.auth.user()
    }

    /// Where the upstream is (`https://registry-1.docker.io`).
    pub fn url(&self) -> String {
        self.url.to_string()
    }

    /// Breaker state, failure count, the last failure's cause, the rate-limit headers.
    pub fn status(&self) -> RegistryStatus {
        self.health.status(self.url.to_string())
    }

    /// The repository as the upstream names it: behind its prefix, if it has one (a
    /// central mirror's namespace for this registry, see `UpstreamUrl`).
    /// Fails only when the prefixed name is longer than a repository name may be.
    fn remote(&self, repo: &Repository) -> Result<Repository, UpstreamError> {
        match &self.url.prefix {
            Some(p) => Repository::parse(&format!("{p}/{repo}")).map_err(|_| {
                UpstreamError::Protocol(format!(
                    "{}: {p}/{repo} is too long for a repository name",
                    self.url.host
                ))
            }),
            None => Ok(repo.clone()),
        }
    }

    /// `<upstream>/v2/<repo>/<rest>`; `repo` (already [`Registry::remote`]) and `rest` are
    /// validated identifiers.
    fn api_url(&self, repo: &Repository, rest: &str) -> Result<Url, UpstreamError> {
        Url::parse(&format!("{}/v2/{repo}/{rest}", self.url.origin()))
            .map_err(|e| UpstreamError::Protocol(format!("{}: building URL: {e}", self.url.host)))
    }

    /// Reads a body we hold whole (manifest, tag list). A read that fails (cut, stalled,
    /// malformed; not one over the limit) counts as an upstream failure; one that fails
    /// like an outage also counts against the breaker, as a blob body's does.
    async fn read_body(&self, res: Response, limit: usize) -> Result<Vec<u8>, UpstreamError> {
        let read = read_limited(res, limit).await;
        if let Err(e) = &read {
            if !matches!(e, UpstreamError::BadContent(_)) {
                self.client.metrics.upstream_failures.inc();
            }
            if is_outage(e) {
                self.health.failure(&e.to_string());
            }
        }
        read
    }

    /// One logical request through the breaker: auth (token flow and one retry on 401),
    /// redirects, status mapping. Only a 2xx comes back as `Ok`. `outcome` says who feeds
    /// the breaker with a 2xx: this call, or the body it hands out.
    async fn call(
        &self,
        method: Method,
        url: Url,
        headers: &[(&str, &str)],
        repo: &Repository,
        outcome: Outcome,
    ) -> Result<Response, UpstreamError> {
        self.health.admit()?;
        let result = self.authorized(method, url, headers, repo).await;
        if result.is_err() || outcome == Outcome::AtHead {
            self.health.record(&result);
        }
        result
    }

    async fn authorized(
        &self,
        method: Method,
        url: Url,
        headers: &[(&str, &str)],
        repo: &Repository,
    ) -> Result<Response, UpstreamError> {
        let auth = self.auth.header_for(repo, Instant::now());
        let mut res = self
            .send(method, url.clone(), headers, auth.as_deref())
            .await?;
        if res.status == Status::UNAUTHORIZED {
            self.refuse_redirect_target(&res)?;
            let challenges: Vec<String> = res
                .headers
                .all("www-authenticate")
                .map(str::to_owned)
                .collect();
            let challenges: Vec<&str> = challenges.iter().map(String::as_str).collect();
            let auth = self
                .auth
                .answer(&self.client, &self.url, &challenges, repo)
                .await?;
            res = self.send(method, url, headers, Some(&auth)).await?;
            if res.status == Status::UNAUTHORIZED {
                self.refuse_redirect_target(&res)?;
            }
        }
        check_status(res)
    }

    /// A 401 from a host we were redirected to (a CDN): that fetch has failed. The host
    /// gets no credentials, and nor does any token realm it names.
    fn refuse_redirect_target(&self, res: &Response) -> Result<(), UpstreamError> {
        if same_origin(&res.url, &self.url) {
            return Ok(());
        }
        Err(UpstreamError::Unauthorized(format!(
            "{} (reached by redirect from {}) answered 401; credentials go only to {}",
            host_of(&res.url),
            self.url.host,
            self.url.host
        )))
    }

    async fn send(
        &self,
        method: Method,
        url: Url,
        headers: &[(&str, &str)],
        auth: Option<&str>,
    ) -> Result<Response, UpstreamError> {
        let res = self
            .client
            .send_following(method, url, headers, auth, &self.url)
            .await?;
        self.health.saw(&res.headers);
        Ok(res)
    }
}

#[cfg(test)]
mod tests;
