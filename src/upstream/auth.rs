//! Upstream authentication: parsing `WWW-Authenticate` challenges, the Bearer token flow
//! (GET the realm with `scope=repository:<repo>:pull`), Basic credentials, and the per-
//! repository token cache of one upstream.
//!
//! Where configured credentials may go: only in answer to a challenge of the configured
//! upstream itself (the caller refuses a 401 from a host it was redirected to), either to
//! that host (Basic) or to the token realm its challenge names. A realm over plain http on
//! another host gets the token request without them (they would travel in clear text); a
//! token request is never redirected. Tokens and passwords never reach a log line or a
//! `Debug` output.

use super::challenge::{basic_header, parse_challenge, Challenge};
use super::client::{same_host, Client};
use super::stream::read_limited;
use super::wire::host_of;
use crate::config::{Credentials, UpstreamUrl};
use crate::error::UpstreamError;
use crate::reference::Repository;
use http_types::{Method, Url};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::fmt;
use std::time::{Duration, Instant};

/// Token lifetime when the token server does not say (`expires_in` absent): the
/// distribution token spec's default.
pub(crate) const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(60);

/// A cached token is dropped this long before it expires, so a request never leaves with a
/// token that dies on the way (clock skew, slow links).
pub(crate) const TOKEN_EXPIRY_MARGIN: Duration = Duration::from_secs(10);

/// Largest token response read. Docker Hub's JSON is a few KiB; this bounds memory if a
/// token server misbehaves.
pub(crate) const MAX_TOKEN_RESPONSE_BYTES: usize = 64 << 10;

/// Tokens cached per upstream. One per repository pulled recently; past this many, the
/// expired ones are dropped, and if that is not enough, all (they are cheap to re-fetch).
pub(crate) const MAX_CACHED_TOKENS: usize = 1024;

/// A cached `Authorization` value and when to stop using it.
struct Cached {
    header: String,
    until: Instant,
}

/// The authentication state of one upstream. Lives in the executor's single thread
/// (`RefCell`/`Cell`); no borrow is held across an `.await`: tokens are fetched first and
/// inserted afterwards.
pub(crate) struct Auth {
    credentials: Option<Credentials>,
    /// `Authorization: Bearer …` per repository.
    tokens: RefCell<HashMap<Repository, Cached>>,
    /// The upstream answered with a Basic challenge once: send credentials up front.
    basic: Cell<bool>,
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Auth")
            .field("credentials", &self.credentials)
            .field("cached_tokens", &self.tokens.borrow().len())
            .field("basic", &self.basic.get())
            .finish()
    }
}

impl Auth {
    pub(crate) fn new(credentials: Option<Credentials>) -> Auth {
        Auth {
            credentials,
            tokens: RefCell::new(HashMap::new()),
            basic: Cell::new(false),
        }
    }

    /// The configured user name, if credentials are configured (never the password).
    pub(crate) fn user(&self) -> Option<&str> {
        self.credentials.as_ref().map(|c| c.user.as_str())
    }

    /// The `Authorization` to send up front for `repo`, if any is known.
    pub(crate) fn header_for(&self, repo: &Repository, now: Instant) -> Option<String> {
        if let Some(c) = self.tokens.borrow().get(repo).filter(|c| c.until > now) {
            return Some(c.header.clone());
        }
        match &self.credentials {
            Some(c) if self.basic.get() => Some(basic_header(c)),
            _ => None,
        }
    }

    /// Answers a 401's challenges (all `WWW-Authenticate` values) *of the configured
    /// upstream `origin` itself* with the `Authorization` to retry with: a fresh token
    /// (cached for `repo`) or Basic credentials.
    pub(crate) async fn answer(
        &self,
        client: &Client,
        origin: &UpstreamUrl,
        challenges: &[&str],
        repo: &Repository,
    ) -> Result<String, UpstreamError> {
        let parsed: Vec<Challenge> = challenges
            .iter()
            .filter_map(|v| parse_challenge(v))
            .collect();
        let bearer = parsed.iter().find_map(|c| match c {
            Challenge::Bearer { realm, service, .. } => Some((realm, service)),
            Challenge::Basic => None,
        });
        if let Some((realm, service)) = bearer {
            let (header, lifetime) = self
                .fetch_token(client, origin, realm, service.as_deref(), repo)
                .await?;
            self.remember(repo, &header, lifetime, Instant::now());
            return Ok(header);
        }
        match (&self.credentials, parsed.contains(&Challenge::Basic)) {
            (Some(c), true) => {
                self.basic.set(true);
                Ok(basic_header(c))
            }
            (None, true) => Err(UpstreamError::Unauthorized(format!(
                "{} asks for Basic credentials and none are configured",
                origin.host
            ))),
            _ => Err(UpstreamError::Unauthorized(format!(
                "{} answered 401 without a challenge we can answer",
                origin.host
            ))),
        }
    }

    /// GET `realm?service=…&scope=repository:<repo>:pull`, with Basic credentials if
    /// configured. Returns the `Authorization` value and how long to cache it.
    async fn fetch_token(
        &self,
        client: &Client,
        origin: &UpstreamUrl,
        realm: &str,
        service: Option<&str>,
        repo: &Repository,
    ) -> Result<(String, Duration), UpstreamError> {
        let mut url = token_url(realm, service, repo)?;
        let realm_host = host_of(&url);
        if origin.https && url.scheme() != "https" {
            // Credentials and tokens of an https upstream never travel in clear text.
            return Err(UpstreamError::Protocol(format!(
                "{}: token realm {realm_host} is not https",
                origin.host
            )));
        }
        url.set_fragment(None);
        let basic = match &self.credentials {
            Some(_) if url.scheme() == "http" && !same_host(&url, origin) => {
                log::warn!(
                    "upstream {}: token realm {realm_host} is plain http on another host; \
                     asking it without the configured credentials",
                    origin.host
                );
                None
            }
            c => c.as_ref().map(basic_header),
        };
        let headers: Vec<(&str, &str)> = basic
            .iter()
            .map(|b| ("authorization", b.as_str()))
            .collect();
        let res = client.send(Method::Get, &url, &headers).await?;
        match res.status.code() {
            200..=299 => {}
            401 | 403 => {
                return Err(UpstreamError::Unauthorized(format!(
                    "token server {realm_host} answered {} (credentials missing or refused)",
                    res.status
                )))
            }
            429 => {
                return Err(UpstreamError::TooManyRequests {
                    retry_after: super::response::retry_after(&res),
                    host: realm_host,
                })
            }
            _ => {
                return Err(UpstreamError::Unavailable(format!(
                    "token server {realm_host} answered {}",
                    res.status
                )))
            }
        }
        let body = read_limited(res, MAX_TOKEN_RESPONSE_BYTES).await?;
        parse_token(&body)
            .map_err(|why| UpstreamError::Protocol(format!("token server {realm_host}: {why}")))
    }

    fn remember(&self, repo: &Repository, header: &str, lifetime: Duration, now: Instant) {
        if lifetime.is_zero() {
            return;
        }
        let mut tokens = self.tokens.borrow_mut();
        if tokens.len() >= MAX_CACHED_TOKENS {
            tokens.retain(|_, c| c.until > now);
            if tokens.len() >= MAX_CACHED_TOKENS {
                tokens.clear();
            }
        }
        tokens.insert(
            repo.clone(),
            Cached {
                header: header.to_owned(),
                until: now + lifetime,
            },
        );
    }
}

/// The token request URL: the realm with `service` and our own pull scope appended.
pub(crate) fn token_url(
    realm: &str,
    service: Option<&str>,
    repo: &Repository,
) -> Result<Url, UpstreamError> {
    let bad = |why: String| UpstreamError::Protocol(format!("bad token realm {realm:?}: {why}"));
    let mut url = Url::parse(realm).map_err(|e| bad(e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") || !url.username().is_empty() {
        return Err(bad("not an http(s) URL".into()));
    }
    {
        let mut q = url.query_pairs_mut();
        if let Some(s) = service {
            q.append_pair("service", s);
        }
        q.append_pair("scope", &format!("repository:{repo}:pull"));
    }
    Ok(url)
}

/// `{"token": …}` or `{"access_token": …}`, `expires_in` seconds → (`Bearer …`, cache time).
/// The error says what is wrong with the response.
fn parse_token(body: &[u8]) -> Result<(String, Duration), String> {
    let bad = |why: &str| format!("token response: {why}");
    let json: serde_json::Value = serde_json::from_slice(body).map_err(|_| bad("not JSON"))?;
    let token = json
        .get("token")
        .or_else(|| json.get("access_token"))
        .and_then(|t| t.as_str())
        .filter(|t| !t.is_empty())
        .ok_or_else(|| bad("no token"))?;
    if !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(bad("token is not printable ASCII"));
    }
    let expires = json
        .get("expires_in")
        .and_then(|e| e.as_u64())
        .map_or(DEFAULT_TOKEN_LIFETIME, Duration::from_secs);
    Ok((format!("Bearer {token}"), cache_lifetime(expires)))
}

/// How long to use a token that lives `expires`: stop [`TOKEN_EXPIRY_MARGIN`] early, or at
/// half its life if it is shorter than twice the margin.
fn cache_lifetime(expires: Duration) -> Duration {
    if expires > TOKEN_EXPIRY_MARGIN * 2 {
        expires - TOKEN_EXPIRY_MARGIN
    } else {
        expires / 2
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_url_keeps_the_realm_query_and_adds_our_scope() {
        let repo = Repository::parse("library/alpine").unwrap();
        let u = token_url("https://auth.example/token?x=1", Some("reg ist"), &repo).unwrap();
        assert_eq!(
            u.as_str(),
            "https://auth.example/token?x=1&service=reg+ist&scope=repository%3Alibrary%2Falpine%3Apull"
        );
        assert!(token_url("file:///etc/passwd", None, &repo).is_err());
        assert!(token_url("not a url", None, &repo).is_err());
    }

    #[test]
    fn token_responses() {
        let (h, life) = parse_token(br#"{"token":"abc","expires_in":300}"#).unwrap();
        assert_eq!((h.as_str(), life), ("Bearer abc", Duration::from_secs(290)));
        let (h, life) = parse_token(br#"{"access_token":"xyz"}"#).unwrap();
        assert_eq!((h.as_str(), life), ("Bearer xyz", Duration::from_secs(50)));
        assert_eq!(
            parse_token(br#"{"token":"t","expires_in":10}"#).unwrap().1,
            Duration::from_secs(5)
        );
        for bad in [
            &br#"{"token":""}"#[..],
            b"{}",
            b"<html>",
            br#"{"token":"a b"}"#,
        ] {
            assert!(parse_token(bad).unwrap_err().starts_with("token response"));
        }
    }

    #[test]
    fn cached_tokens_expire_and_debug_shows_no_secrets() {
        let auth = Auth::new(Some(Credentials {
            user: "u".into(),
            password: "hunter2".into(),
        }));
        let repo = Repository::parse("a/b").unwrap();
        let t0 = Instant::now();
        auth.remember(&repo, "Bearer sekrit", Duration::from_secs(50), t0);
        assert_eq!(auth.header_for(&repo, t0).as_deref(), Some("Bearer sekrit"));
        assert_eq!(auth.header_for(&repo, t0 + Duration::from_secs(50)), None);
        let other = Repository::parse("a/c").unwrap();
        assert_eq!(
            auth.header_for(&other, t0),
            None,
            "tokens are per repository"
        );
        let dbg = format!("{auth:?}");
        assert!(!dbg.contains("hunter2") && !dbg.contains("sekrit"), "{dbg}");
    }
}
