//! The validated configuration every other module reads, with its upstream URLs and
//! credentials. Built once by `cli` and `settings`; nothing else reads flags, the
//! configuration file or env. The parsers for sizes, durations and listen addresses are
//! `config/values.rs`.

use crate::access::cidr::Cidr;
use crate::reference::{Repository, UpstreamName};
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

mod values;
pub use values::{
    human_duration, human_size, parse_duration, parse_listen, parse_size, MAX_SIZE_FRACTION_DIGITS,
    SIZE_UNITS,
};

/// Where Docker Hub's registry API lives (`docker.io` itself is only the name).
pub const DOCKER_HUB_URL: &str = "https://registry-1.docker.io";

/// Listen on every interface: the office's machines must reach the board.
pub const DEFAULT_LISTEN: &str = "0.0.0.0:5000";

/// Cache in the working directory unless told otherwise, so a first run needs no set-up.
pub const DEFAULT_CACHE_DIR: &str = "regmirror-cache";

/// A tag is trusted this long before a revalidating `HEAD`: minutes, not seconds, so a
/// burst of pulls costs one upstream check, and a pushed `latest` shows up soon enough.
pub const DEFAULT_TAG_TTL: Duration = Duration::from_secs(5 * 60);

/// Longest wait for an upstream to send response headers (and for each later read of a
/// body). Long enough for a slow token server; short because Docker falls back to the
/// origin when a mirror errors, but waits forever on one that hangs.
pub const DEFAULT_UPSTREAM_TIMEOUT: Duration = Duration::from_secs(15);

/// Time a client gets to send a request's headers. Slow-loris connections are cut after
/// this; real clients send headers in milliseconds.
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// A client that accepts no bytes of a reply for this long is dropped, freeing its
/// connection slot. A real client on a slow link drains its socket buffer well within it;
/// waiting on our upstream does not count (then we are the ones not writing).
pub const DEFAULT_CLIENT_WRITE_TIMEOUT: Duration = Duration::from_secs(60);

/// Concurrent client connections. Each costs at most a few tens of KiB of buffers; 128
/// keeps a Pi Zero (512 MB, shared with the OS) far from trouble while serving an office.
pub const DEFAULT_MAX_CONNECTIONS: usize = 128;

/// The keep list is revalidated this often: by HEAD, which Docker Hub does not count, so
/// the cost is a request per image; 6 h is Hub's allowance window.
pub const DEFAULT_KEEP_REFRESH: Duration = Duration::from_secs(6 * 3600);

/// Everything `serve` needs, validated.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Root of the on-disk cache.
    pub cache_dir: PathBuf,
    /// Byte budget for cached blobs; `None` derives it from the filesystem's free space.
    pub max_size: Option<u64>,
    /// Allowlisted upstreams; the first is never special, `docker.io` is the default one.
    pub upstreams: Vec<UpstreamConfig>,
    /// Extra PEM CA certificates trusted for upstream TLS (added to the built-in roots).
    pub upstream_ca: Option<PathBuf>,
    /// How long a tag → digest mapping is served without asking upstream.
    pub tag_ttl: Duration,
    /// Upstream header and idle-read timeout.
    pub upstream_timeout: Duration,
    /// Concurrent client connections accepted.
    pub max_connections: usize,
    /// Time a client gets to send request headers.
    pub header_timeout: Duration,
    /// Time a client may accept no bytes of a reply before it is dropped.
    pub client_write_timeout: Duration,
    /// Debug logging.
    pub verbose: bool,
    /// The configuration file the settings were read from (`serve --config`), if any.
    pub config_file: Option<PathBuf>,
    /// Client addresses that may use the mirror (`--allow`; default loopback and the
    /// private ranges).
    pub allow: Vec<Cidr>,
    /// bcrypt htpasswd file whose users the registry API requires (`--htpasswd`).
    pub htpasswd: Option<PathBuf>,
    /// PEM certificate chain (the server's own first) to serve TLS with (`--tls-cert`).
    /// Start-up refuses one of `tls_cert` and `tls_key` without the other.
    pub tls_cert: Option<PathBuf>,
    /// Its PEM private key (PKCS#8, SEC1 or PKCS#1; `--tls-key`).
    pub tls_key: Option<PathBuf>,
    /// The keep list (`--keep FILE`): images fetched at start, revalidated, never evicted.
    pub keep: Option<PathBuf>,
    /// How often the keep list is revalidated upstream (`--keep-refresh`).
    pub keep_refresh: Duration,
    /// The file holding the admin token (`--admin-token-file`); `None`: admin actions off.
    pub admin_token_file: Option<PathBuf>,
    /// The host's name and addresses as a JSON file (`--host-info`), for the status.
    pub host_info: Option<PathBuf>,
    /// Once a client GETs an image manifest, fill the blobs it names that are not cached
    /// (`--read-ahead`; see `mirror::read_ahead`).
    pub read_ahead: bool,
    /// How often a prefetch held back by the upstream's allowance looks again (not a flag;
    /// tests shorten it). See `mirror::allowance::ALLOWANCE_RECHECK`.
    pub allowance_recheck: Duration,
    /// How often the pull counters are saved when they changed (not a flag: the SD card's
    /// sake decides it; tests shorten it). See `mirror::pulls::SAVE_INTERVAL`.
    pub state_save_interval: Duration,
}

impl Config {
    /// Defaults for everything but the cache directory: what tests start from.
    pub fn new(cache_dir: PathBuf) -> Config {
        Config {
            listen: DEFAULT_LISTEN.parse().expect("valid default"),
            cache_dir,
            max_size: None,
            upstreams: vec![UpstreamConfig {
                name: UpstreamName::docker_hub(),
                url: UpstreamUrl::parse(DOCKER_HUB_URL).expect("valid default"),
                credentials: None,
            }],
            upstream_ca: None,
            tag_ttl: DEFAULT_TAG_TTL,
            upstream_timeout: DEFAULT_UPSTREAM_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            header_timeout: DEFAULT_HEADER_TIMEOUT,
            client_write_timeout: DEFAULT_CLIENT_WRITE_TIMEOUT,
            verbose: false,
            config_file: None,
            allow: crate::access::cidr::private(),
            htpasswd: None,
            tls_cert: None,
            tls_key: None,
            keep: None,
            keep_refresh: DEFAULT_KEEP_REFRESH,
            admin_token_file: None,
            host_info: None,
            read_ahead: true,
            allowance_recheck: crate::mirror::allowance::ALLOWANCE_RECHECK,
            state_save_interval: crate::mirror::pulls::SAVE_INTERVAL,
        }
    }

    /// Adds or replaces the upstream called `name`.
    pub fn set_upstream(&mut self, name: UpstreamName, url: UpstreamUrl) {
        self.upstreams.retain(|u| u.name != name);
        self.upstreams.push(UpstreamConfig {
            name,
            url,
            credentials: None,
        });
    }
}

/// One allowlisted upstream registry.
#[derive(Debug, Clone)]
pub struct UpstreamConfig {
    /// The registry's name as clients say it: `docker.io`, `ghcr.io`, `localhost:5000`.
    pub name: UpstreamName,
    /// Where its API is.
    pub url: UpstreamUrl,
    /// Basic credentials (used directly or to get a Bearer token).
    pub credentials: Option<Credentials>,
}

/// `http(s)://host[:port][/prefix]` — no user info, no query.
///
/// The optional path is a repository prefix, for a central mirror that keeps each
/// registry under its own namespace (chained mirrors): `http://central:5000/ghcr.io`
/// sends `owner/app` as `/v2/ghcr.io/owner/app/…` — another regmirror's path prefix, a
/// Harbor proxy-cache project (`https://harbor/ghcr-proxy`), a zot `sync` destination
/// prefix. Token scopes name the prefixed repository, as that registry knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamUrl {
    /// TLS or not.
    pub https: bool,
    /// Host name or IP literal (IPv6 without brackets).
    pub host: String,
    /// Port, defaulted from the scheme.
    pub port: u16,
    /// Repository prefix on that registry, validated like a repository name.
    pub prefix: Option<Repository>,
}

impl UpstreamUrl {
    /// Parses `http://127.0.0.1:5000` or `https://ghcr.io`.
    pub fn parse(s: &str) -> Result<UpstreamUrl, String> {
        let (https, rest) = if let Some(r) = s.strip_prefix("https://") {
            (true, r)
        } else if let Some(r) = s.strip_prefix("http://") {
            (false, r)
        } else {
            return Err(format!(
                "{s:?}: upstream URL must start with http:// or https://"
            ));
        };
        let rest = rest.trim_end_matches('/');
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        if authority.is_empty() || authority.contains(['@', '?', '#']) || path.contains(['?', '#'])
        {
            return Err(format!(
                "{s:?}: upstream URL must be scheme://host[:port], optionally with a repository \
                 prefix such as /ghcr.io (no user, query or fragment)"
            ));
        }
        let prefix = match path {
            "" => None,
            p => Some(Repository::parse(p).map_err(|_| {
                format!(
                    "{s:?}: the path {p:?} is not a repository prefix (lower-case names \
                     separated by /, like ghcr.io or my-project)"
                )
            })?),
        };
        let default_port = if https { 443 } else { 80 };
        let (host, port) = split_host_port(authority)
            .filter(|(host, _)| valid_host(host, authority.starts_with('[')))
            .ok_or_else(|| format!("{s:?}: bad host or port"))?;
        Ok(UpstreamUrl {
            https,
            host: host.to_owned(),
            port: port.unwrap_or(default_port),
            prefix,
        })
    }

    /// `scheme://host:port`, without the prefix: where the API's `/v2/` is.
    pub fn origin(&self) -> String {
        let scheme = if self.https { "https" } else { "http" };
        format!("{scheme}://{}", self.authority())
    }

    /// `host:port` for connecting (IPv6 literals bracketed).
    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

impl fmt::Display for UpstreamUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.origin())?;
        match &self.prefix {
            Some(p) => write!(f, "/{p}"),
            None => Ok(()),
        }
    }
}

/// Longest DNS name (RFC 1035 §2.3.4) and label.
const MAX_HOST_NAME_LEN: usize = 253;
const MAX_HOST_LABEL_LEN: usize = 63;

/// An upstream host we can connect to and name in TLS: an IPv6 address (it was in
/// brackets), or a DNS name or IPv4 address — dot-separated labels of letters, digits, `-`
/// (not at either end) and `_` (seen in internal names).
fn valid_host(host: &str, bracketed: bool) -> bool {
    if bracketed {
        return host.parse::<std::net::Ipv6Addr>().is_ok();
    }
    host.len() <= MAX_HOST_NAME_LEN
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= MAX_HOST_LABEL_LEN
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// Splits `host`, `host:port`, `[v6]:port`; `None` if the port is not a number.
fn split_host_port(a: &str) -> Option<(&str, Option<u16>)> {
    if let Some(rest) = a.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        return match after {
            "" => Some((host, None)),
            p => Some((host, Some(p.strip_prefix(':')?.parse().ok()?))),
        };
    }
    match a.rsplit_once(':') {
        Some((h, p)) if !h.is_empty() => Some((h, Some(p.parse().ok()?))),
        Some(_) => None,
        None => Some((a, None)),
    }
}

/// Upstream credentials. `Debug` never shows the password.
#[derive(Clone)]
pub struct Credentials {
    /// User name.
    pub user: String,
    /// Password or access token (read from a file, never from argv).
    pub password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Credentials {{ user: {:?}, password: <redacted> }}",
            self.user
        )
    }
}

#[cfg(test)]
mod tests;
