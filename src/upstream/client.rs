//! The HTTP client under every upstream call: one connection per request (host names
//! resolved on the `regmirror-dns` thread, TCP, TLS via rustls with the ring provider),
//! our own HTTP/1.1 (`wire.rs`), timeouts, redirects.
//!
//! There is no connection pool: a request costs a TCP (and TLS) handshake. Upstream
//! requests are rare next to cache hits (each blob is fetched once), so simplicity wins
//! over reuse here; every request says `Connection: close`.

use super::dns::Resolver;
use super::stream::{Conn, Idle};
use super::wire::{self, host_of, Response};
use crate::config::UpstreamUrl;
use crate::error::UpstreamError;
use crate::metrics::Metrics;
use futures_lite::future;
use futures_rustls::pki_types::{pem::PemObject, CertificateDer, ServerName};
use futures_rustls::rustls::{self, ClientConfig, RootCertStore};
use futures_rustls::TlsConnector;
use http_types::{url::Host, Method, Url};
use smol::net::TcpStream;
use smol::Timer;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Longest wait for name resolution, TCP connect and TLS handshake together. A reachable
/// registry answers in well under a second; five covers a slow link without making a dead
/// host cost much.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Redirects followed for one request. Docker Hub sends a blob GET to a CDN in one hop;
/// five allows a chain of CDNs and stops a loop.
pub(crate) const MAX_REDIRECTS: usize = 5;

/// Builds the TLS configuration: the built-in web PKI roots plus the certificates of the
/// optional PEM file (private registries, tests). An unreadable or empty file is an error.
pub(crate) fn tls_config(extra_ca: Option<&Path>) -> Result<Arc<ClientConfig>, String> {
    let mut roots = RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = extra_ca {
        let what = |e: &dyn fmt::Display| format!("upstream CA file {}: {e}", path.display());
        let mut added = 0;
        for cert in CertificateDer::pem_file_iter(path).map_err(|e| what(&e))? {
            roots
                .add(cert.map_err(|e| what(&e))?)
                .map_err(|e| what(&e))?;
            added += 1;
        }
        if added == 0 {
            return Err(what(&"no PEM certificate in it"));
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Sends requests; cheap to share (an `Arc` and `Rc`s inside).
#[derive(Clone)]
pub(crate) struct Client {
    tls: TlsConnector,
    /// Longest wait for response headers, and for any single read or write after that.
    timeout: Duration,
    /// The mirror's counters (upstream requests, failures, blob bytes).
    pub(crate) metrics: Rc<Metrics>,
    resolver: Resolver,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl Client {
    pub(crate) fn new(
        tls: Arc<ClientConfig>,
        timeout: Duration,
        metrics: Rc<Metrics>,
        resolver: Resolver,
    ) -> Client {
        Client {
            tls: TlsConnector::from(tls),
            timeout,
            metrics,
            resolver,
        }
    }

    /// One request, one connection, no redirects. `headers` values must be visible ASCII
    /// (checked). Transport failures become `Unavailable`, a malformed answer `Protocol`;
    /// any status is returned as it is. Errors name the host.
    pub(crate) async fn send(
        &self,
        method: Method,
        url: &Url,
        headers: &[(&str, &str)],
    ) -> Result<Response, UpstreamError> {
        self.metrics.upstream_requests.inc();
        let started = Instant::now();
        let result = self.exchange(method, url, headers).await;
        let ms = started.elapsed().as_millis();
        match &result {
            Ok(res) => {
                if res.status.is_server_error() {
                    self.metrics.upstream_failures.inc();
                }
                log::debug!("upstream {method} {} {} {ms}ms", loggable(url), res.status);
            }
            Err(e) => {
                self.metrics.upstream_failures.inc();
                log::debug!(
                    "upstream {method} {} failed after {ms}ms: {e}",
                    loggable(url)
                );
            }
        }
        result
    }

    async fn exchange(
        &self,
        method: Method,
        url: &Url,
        headers: &[(&str, &str)],
    ) -> Result<Response, UpstreamError> {
        let conn = self.connect(url).await?;
        let answer = wire::exchange(conn, method, url, headers);
        let deadline = async {
            Timer::after(self.timeout).await;
            Err(UpstreamError::Unavailable(format!(
                "{}: no response head within {:?}",
                host_of(url),
                self.timeout
            )))
        };
        future::or(answer, deadline).await
    }

    /// Name resolution, TCP connect (each address in turn) and the TLS handshake for
    /// `https`, all bounded by [`CONNECT_TIMEOUT`].
    async fn connect(&self, url: &Url) -> Result<Idle<Conn>, UpstreamError> {
        let host = host_of(url);
        let unavailable = |e: std::io::Error| UpstreamError::Unavailable(format!("{host}: {e}"));
        let https = match url.scheme() {
            "https" => true,
            "http" => false,
            other => {
                return Err(UpstreamError::Protocol(format!(
                    "{host}: unsupported scheme {other:?}"
                )))
            }
        };
        let port = url
            .port_or_known_default()
            .unwrap_or(if https { 443 } else { 80 });
        let (ip, name) = match url.host() {
            Some(Host::Domain(d)) => (None, d.to_owned()),
            Some(Host::Ipv4(ip)) => (Some(IpAddr::V4(ip)), String::new()),
            Some(Host::Ipv6(ip)) => (Some(IpAddr::V6(ip)), String::new()),
            None => return Err(UpstreamError::Protocol("URL without a host".into())),
        };
        let server_name = match ip {
            Some(ip) => Some(ServerName::IpAddress(ip.into())),
            None => ServerName::try_from(name.clone()).ok(),
        };
        let handshake = async {
            let addrs = match ip {
                // IP literals need no lookup (and no trip to the resolver thread).
                Some(ip) => vec![SocketAddr::new(ip, port)],
                None => self.resolver.resolve(&name, port).await?,
            };
            let tcp = connect_any(&addrs).await?;
            tcp.set_nodelay(true)?;
            if !https {
                return Ok(Conn::Plain(tcp));
            }
            let name = server_name.ok_or_else(|| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    "not a valid TLS server name",
                )
            })?;
            Ok(Conn::Tls(Box::new(self.tls.connect(name, tcp).await?)))
        };
        let deadline = async {
            Timer::after(CONNECT_TIMEOUT).await;
            Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("name lookup, connect and TLS handshake took over {CONNECT_TIMEOUT:?}"),
            ))
        };
        let conn = future::or(handshake, deadline).await.map_err(unavailable)?;
        Ok(Idle::new(conn, self.timeout))
    }

    /// [`Client::send`], following up to [`MAX_REDIRECTS`] redirects. `authorization` goes
    /// only to `origin` itself (same scheme, host and port), never to a host it redirects
    /// to (a CDN must not see our token); an https → http redirect is refused. The answer's
    /// `url` says which host gave it.
    pub(crate) async fn send_following(
        &self,
        method: Method,
        mut url: Url,
        headers: &[(&str, &str)],
        authorization: Option<&str>,
        origin: &UpstreamUrl,
    ) -> Result<Response, UpstreamError> {
        for hop in 0..=MAX_REDIRECTS {
            let mut all: Vec<(&str, &str)> = headers.to_vec();
            if let Some(auth) = authorization.filter(|_| same_origin(&url, origin)) {
                all.push(("authorization", auth));
            }
            let res = self.send(method, &url, &all).await?;
            if !res.status.is_redirect() {
                return Ok(res);
            }
            if hop == MAX_REDIRECTS {
                break;
            }
            let location = res.header("location").ok_or_else(|| {
                UpstreamError::Protocol(format!("{}: redirect without Location", host_of(&url)))
            })?;
            url = resolve_redirect(&url, location)?;
        }
        Err(UpstreamError::Protocol(format!(
            "{}: more than {MAX_REDIRECTS} redirects",
            origin.host
        )))
    }
}

/// Connects to the first of `addrs` that accepts; the last error if none does.
async fn connect_any(addrs: &[SocketAddr]) -> std::io::Result<TcpStream> {
    let mut last = None;
    for addr in addrs {
        match TcpStream::connect(*addr).await {
            Ok(tcp) => return Ok(tcp),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::other("no address to connect to")))
}

/// Where a redirect points: `location` may be absolute or relative to `from`. Refuses a
/// downgrade from https to http and anything that is not http(s) or carries user info.
pub(crate) fn resolve_redirect(from: &Url, location: &str) -> Result<Url, UpstreamError> {
    let protocol = |why: String| UpstreamError::Protocol(format!("{}: {why}", host_of(from)));
    let next = from
        .join(location.trim())
        .map_err(|e| protocol(format!("bad redirect Location: {e}")))?;
    match (from.scheme(), next.scheme()) {
        ("https", "http") => Err(protocol(format!(
            "refusing redirect from https to http ({})",
            host_of(&next)
        ))),
        (_, "http" | "https") if next.username().is_empty() && next.password().is_none() => {
            Ok(next)
        }
        _ => Err(protocol("redirect to an unsupported URL".into())),
    }
}

/// Is `url` on the configured upstream itself (scheme, host and port)?
pub(crate) fn same_origin(url: &Url, origin: &UpstreamUrl) -> bool {
    let scheme = if origin.https { "https" } else { "http" };
    same_host(url, origin)
        && url.scheme() == scheme
        && url.port_or_known_default() == Some(origin.port)
}

/// Is `url`'s host the configured upstream's host (any scheme or port)? Names compare
/// case-insensitively, IP literals as addresses; a name never equals an address.
pub(crate) fn same_host(url: &Url, origin: &UpstreamUrl) -> bool {
    match url.host() {
        Some(Host::Domain(d)) => d.eq_ignore_ascii_case(&origin.host),
        Some(Host::Ipv4(ip)) => origin.host.parse() == Ok(IpAddr::V4(ip)),
        Some(Host::Ipv6(ip)) => origin.host.parse() == Ok(IpAddr::V6(ip)),
        None => false,
    }
}

/// The URL without its query (which may carry signed CDN parameters), for logs.
fn loggable(url: &Url) -> String {
    let q = if url.query().is_some() { "?…" } else { "" };
    format!("{}://{}{}{q}", url.scheme(), host_of(url), url.path())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn authorization_only_for_the_upstream_itself() {
        let origin = UpstreamUrl::parse("https://registry.example:443").unwrap();
        assert!(same_origin(
            &url("https://registry.example/v2/x/blobs/y"),
            &origin
        ));
        assert!(same_origin(
            &url("https://REGISTRY.example:443/v2/"),
            &origin
        ));
        assert!(!same_origin(&url("https://cdn.example/blob"), &origin));
        assert!(!same_origin(
            &url("https://registry.example:8443/v2/"),
            &origin
        ));
        assert!(!same_origin(
            &url("http://registry.example:443/v2/"),
            &origin
        ));
        let local = UpstreamUrl::parse("http://127.0.0.1:5000").unwrap();
        assert!(same_origin(&url("http://127.0.0.1:5000/v2/"), &local));
        assert!(
            !same_origin(&url("http://localhost:5000/v2/"), &local),
            "another host name"
        );
        let v6 = UpstreamUrl::parse("http://[::1]:5000").unwrap();
        assert!(same_origin(&url("http://[::1]:5000/v2/"), &v6));
    }

    #[test]
    fn redirects_resolve_relative_and_absolute_and_refuse_downgrades() {
        let from = url("https://r.example/v2/a/blobs/sha256:00");
        let rel = resolve_redirect(&from, "/cdn/blob?sig=1").unwrap();
        assert_eq!(rel.as_str(), "https://r.example/cdn/blob?sig=1");
        let abs = resolve_redirect(&from, "https://cdn.example:8443/x").unwrap();
        assert_eq!(abs.as_str(), "https://cdn.example:8443/x");
        assert!(matches!(
            resolve_redirect(&from, "http://cdn.example/x"),
            Err(UpstreamError::Protocol(_))
        ));
        assert!(matches!(
            resolve_redirect(&from, "ftp://cdn.example/x"),
            Err(UpstreamError::Protocol(_))
        ));
        assert!(matches!(
            resolve_redirect(&from, "https://u:p@cdn.example/x"),
            Err(UpstreamError::Protocol(_))
        ));
        let plain = url("http://r.lan:5000/v2/");
        assert!(resolve_redirect(&plain, "http://other.lan/x").is_ok());
    }

    #[test]
    fn log_lines_never_show_query_strings() {
        let u = url("https://cdn.example/blob?X-Amz-Signature=secret");
        assert_eq!(loggable(&u), "https://cdn.example/blob?…");
    }

    #[test]
    fn an_extra_ca_file_must_hold_certificates() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        assert!(tls_config(Some(&empty))
            .unwrap_err()
            .contains("no PEM certificate"));
        assert!(tls_config(Some(&dir.path().join("missing.pem"))).is_err());
        assert!(tls_config(None).is_ok());
    }
}
