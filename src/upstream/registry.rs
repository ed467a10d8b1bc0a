//! One upstream registry ([`Registry`]): manifest, blob and tag-list requests with the
//! token flow, status mapping, digest checks, circuit breaker and rate-limit tracking.

use super::answers::{BlobStream, Manifest, RegistryStatus};
use super::auth::Auth;
use super::breaker::{Breaker, FAILURE_THRESHOLD, OPEN_WINDOW};
use super::client::Client;
use super::response::{
    body_media_type, check_status, content_length, header, parse_content_range, protocol, status_of,
};
use super::stream::{read_limited, BodyReader};
use super::MAX_MANIFEST_BYTES;
use crate::config::{UpstreamConfig, UpstreamUrl};
use crate::error::UpstreamError;
use crate::http::Status;
use crate::media_type::{MediaType, MANIFEST_TYPES};
use crate::reference::{Digest, Reference, Repository, UpstreamName};
use http_types::{Method, Response, Url};
use std::cell::RefCell;
use std::fmt;
use std::time::Instant;

/// Largest `tags/list` answer passed through: the same bound as a manifest (the body is
/// held in memory whole). Paginated lists stay far below it.
const MAX_TAGS_LIST_BYTES: usize = MAX_MANIFEST_BYTES;

/// One upstream registry. Its state (token cache, breaker, rate-limit figure) is
/// single-threaded (`RefCell`) and never borrowed across an `.await`.
pub struct Registry {
    name: UpstreamName,
    url: UpstreamUrl,
    client: Client,
    auth: Auth,
    breaker: RefCell<Breaker>,
    ratelimit_remaining: RefCell<Option<String>>,
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registry")
            .field("name", &self.name)
            .field("url", &self.url.to_string())
            .field("auth", &self.auth)
            .field("breaker", &self.breaker.borrow())
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
            breaker: RefCell::new(Breaker::new()),
            ratelimit_remaining: RefCell::new(None),
        }
    }

    /// The upstream's name as configured (`docker.io`).
    pub fn name(&self) -> &UpstreamName {
        &self.name
    }

    /// GET or HEAD a manifest, asking for every type in [`MANIFEST_TYPES`]. A GET's
    /// body (≤ [`MAX_MANIFEST_BYTES`]) must hash to the digest asked for, or to
    /// `Docker-Content-Digest` when asked by tag (`BadContent` otherwise).
    pub async fn manifest(
        &self,
        repo: &Repository,
        reference: &Reference,
        head: bool,
    ) -> Result<Manifest, UpstreamError> {
        let url = self.api_url(repo, &format!("manifests/{reference}"))?;
        let accept = MANIFEST_TYPES.map(|t| t.to_string()).join(", ");
        let method = if head { Method::Head } else { Method::Get };
        let mut res = self.call(method, url, &[("accept", &accept)], repo).await?;
        let announced = match header(&res, "docker-content-digest") {
            Some(d) => {
                Some(Digest::parse(d.trim()).map_err(|_| protocol("bad Docker-Content-Digest"))?)
            }
            None => None,
        };
        let expected = match reference {
            Reference::Digest(asked) if announced.is_some_and(|a| a != *asked) => {
                return Err(UpstreamError::BadContent(format!(
                    "asked for {asked}, upstream announced {}",
                    announced.unwrap_or(*asked)
                )));
            }
            Reference::Digest(asked) => Some(*asked),
            Reference::Tag(_) => announced,
        };
        let content_type = header(&res, "content-type").and_then(MediaType::parse);
        if head {
            return Ok(Manifest {
                digest: expected
                    .ok_or_else(|| protocol("manifest HEAD without Docker-Content-Digest"))?,
                media_type: content_type
                    .ok_or_else(|| protocol("manifest without Content-Type"))?,
                length: content_length(&res)
                    .ok_or_else(|| protocol("manifest HEAD without Content-Length"))?,
                body: None,
            });
        }
        let body = read_limited(&mut res, MAX_MANIFEST_BYTES).await?;
        let digest = Digest::of(&body);
        if let Some(e) = expected.filter(|e| *e != digest) {
            return Err(UpstreamError::BadContent(format!(
                "manifest {repo}:{reference} hashes to {digest}, expected {e}"
            )));
        }
        let media_type = match content_type {
            Some(t) if t.is_manifest() => t,
            other => body_media_type(&body)
                .or(other)
                .ok_or_else(|| protocol("manifest without a media type"))?,
        };
        Ok(Manifest {
            digest,
            media_type,
            length: body.len() as u64,
            body: Some(body),
        })
    }

    /// GET a blob from `offset` on (`Range: bytes=<offset>-` when > 0), following redirects.
    /// See [`BlobStream`] for what its body reports.
    pub async fn blob(
        &self,
        repo: &Repository,
        digest: &Digest,
        offset: u64,
    ) -> Result<BlobStream, UpstreamError> {
        let url = self.api_url(repo, &format!("blobs/{digest}"))?;
        let range = format!("bytes={offset}-");
        let headers: &[(&str, &str)] = if offset > 0 {
            &[("range", &range)]
        } else {
            &[]
        };
        let mut res = self.call(Method::Get, url, headers, repo).await?;
        let (offset, total) = if status_of(&res) == Status::PARTIAL_CONTENT {
            let range = header(&res, "content-range")
                .ok_or_else(|| protocol("206 without Content-Range"))?;
            let (start, total) =
                parse_content_range(range).ok_or_else(|| protocol("bad Content-Range"))?;
            if start != offset {
                return Err(protocol(&format!(
                    "asked for bytes from {offset}, got from {start}"
                )));
            }
            (start, total)
        } else {
            (0, content_length(&res))
        };
        let counted = Some(self.client.metrics.clone());
        let body = Box::new(BodyReader::new(res.take_body(), counted));
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
        let url = self.api_url(repo, &format!("blobs/{digest}"))?;
        let res = match self.call(Method::Head, url.clone(), &[], repo).await {
            Err(UpstreamError::Denied | UpstreamError::Status(Status::METHOD_NOT_ALLOWED)) => {
                let one_byte = [("range", "bytes=0-0")];
                let res = self.call(Method::Get, url, &one_byte, repo).await?;
                if status_of(&res) == Status::PARTIAL_CONTENT {
                    let range = header(&res, "content-range").unwrap_or_default();
                    return parse_content_range(range)
                        .and_then(|(_, total)| total)
                        .ok_or_else(|| protocol("bad Content-Range"));
                }
                res
            }
            other => other?,
        };
        content_length(&res).ok_or_else(|| protocol("blob HEAD without Content-Length"))
    }

    /// GET `tags/list`, passing on only the `n` and `last` parameters of `query`. Returns
    /// the content type and the body (≤ 4 MiB).
    pub async fn tags_list(
        &self,
        repo: &Repository,
        query: Option<&str>,
    ) -> Result<(String, Vec<u8>), UpstreamError> {
        let mut url = self.api_url(repo, "tags/list")?;
        if let Some(q) = query.filter(|q| !q.is_empty()) {
            let parsed = Url::parse(&format!("http://x/?{q}"))
                .map_err(|_| protocol("bad tags/list query"))?;
            let kept: Vec<(String, String)> = parsed
                .query_pairs()
                .filter(|(k, _)| k == "n" || k == "last")
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect();
            if !kept.is_empty() {
                url.query_pairs_mut().extend_pairs(kept);
            }
        }
        let mut res = self
            .call(Method::Get, url, &[("accept", "application/json")], repo)
            .await?;
        let content_type = header(&res, "content-type")
            .unwrap_or("application/json")
            .to_owned();
        let body = read_limited(&mut res, MAX_TAGS_LIST_BYTES).await?;
        Ok((content_type, body))
    }

    /// Breaker state, failure count and the last rate-limit figure.
    pub fn status(&self) -> RegistryStatus {
        let breaker = self.breaker.borrow();
        RegistryStatus {
            name: self.name.to_string(),
            url: self.url.to_string(),
            available: breaker.is_closed(),
            consecutive_failures: breaker.consecutive_failures(),
            ratelimit_remaining: self.ratelimit_remaining.borrow().clone(),
        }
    }

    /// `<upstream>/v2/<repo>/<rest>`; `repo` and `rest` are validated identifiers.
    fn api_url(&self, repo: &Repository, rest: &str) -> Result<Url, UpstreamError> {
        Url::parse(&format!("{}/v2/{repo}/{rest}", self.url))
            .map_err(|e| protocol(&format!("building URL: {e}")))
    }

    /// One logical request through the breaker: auth (token flow and one retry on 401),
    /// redirects, status mapping. Only a 2xx comes back as `Ok`.
    async fn call(
        &self,
        method: Method,
        url: Url,
        headers: &[(&str, &str)],
        repo: &Repository,
    ) -> Result<Response, UpstreamError> {
        let admitted = self.breaker.borrow_mut().admit(Instant::now());
        if let Err(left) = admitted {
            return Err(UpstreamError::Unavailable(format!(
                "{}: circuit open after {FAILURE_THRESHOLD} consecutive failures, next try in {}s",
                self.name,
                left.as_secs() + 1
            )));
        }
        let result = self.authorized(method, url, headers, repo).await;
        self.record(&result);
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
        if status_of(&res) == Status::UNAUTHORIZED {
            let challenges: Vec<String> = res
                .header("www-authenticate")
                .map(|v| v.iter().map(|h| h.as_str().to_owned()).collect())
                .unwrap_or_default();
            let challenges: Vec<&str> = challenges.iter().map(String::as_str).collect();
            let auth = self
                .auth
                .answer(&self.client, &self.url, &challenges, repo)
                .await?;
            res = self.send(method, url, headers, Some(&auth)).await?;
        }
        check_status(res)
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
        if let Some(v) = header(&res, "ratelimit-remaining") {
            *self.ratelimit_remaining.borrow_mut() = Some(v.to_owned());
        }
        Ok(res)
    }

    /// Feeds the breaker: no answer or a 5xx is a failure; any other answer a success.
    fn record(&self, result: &Result<Response, UpstreamError>) {
        let failed = match result {
            Err(UpstreamError::Unavailable(_)) => true,
            Err(UpstreamError::Status(s)) => s.is_server_error(),
            _ => false,
        };
        let mut breaker = self.breaker.borrow_mut();
        if !failed {
            breaker.success();
        } else if breaker.failure(Instant::now()) {
            let why = result
                .as_ref()
                .err()
                .map(ToString::to_string)
                .unwrap_or_default();
            log::warn!(
                "upstream {}: {} consecutive failures (last: {why}); circuit open, no requests for {}s",
                self.name,
                breaker.consecutive_failures(),
                OPEN_WINDOW.as_secs()
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::upstream::Upstreams;

    #[test]
    fn urls_are_built_from_validated_parts() {
        let mut config = Config::new("/nonexistent".into());
        config.set_upstream(
            "r.example".parse().unwrap(),
            UpstreamUrl::parse("https://r.example:8443").unwrap(),
        );
        let ups = Upstreams::new(&config, Default::default()).unwrap();
        let r = ups.get(&"r.example".parse().unwrap()).unwrap();
        let repo = Repository::parse("org/app").unwrap();
        let digest = Digest::of(b"");
        let url = r.api_url(&repo, &format!("blobs/{digest}")).unwrap();
        assert_eq!(
            url.as_str(),
            format!("https://r.example:8443/v2/org/app/blobs/{digest}")
        );
        assert!(ups.get(&"evil.example".parse().unwrap()).is_none());
        assert_eq!(ups.all().count(), 2, "docker.io plus ours");
        let s = r.status();
        assert!(s.available && s.consecutive_failures == 0 && s.ratelimit_remaining.is_none());
    }
}
