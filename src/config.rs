//! The validated configuration every other module reads, and the parsers for its values
//! (sizes, durations, listen addresses, upstream URLs). Built once by `cli` and `settings`;
//! nothing else reads flags, the configuration file or env.

use crate::access::cidr::Cidr;
use crate::reference::{Repository, UpstreamName};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

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

/// Every size unit [`parse_size`] accepts, as its messages list them.
pub const SIZE_UNITS: &str = "B, kB, MB, GB, TB (powers of 1000), KiB, MiB, GiB, TiB or K, M, G, T (powers of 1024); case does not matter";

/// Digits after the decimal point a size may have (`1.5G`, `0.25TB`): more precision than
/// any budget needs, and few enough that the fraction's arithmetic stays in `u64`.
pub const MAX_SIZE_FRACTION_DIGITS: usize = 6;

/// Parses `500MB`, `20GiB`, `1.5G`, `1048576`. SI units (`kB`, `MB`, `GB`, `TB`) are powers
/// of 1000; IEC units (`KiB`…) and bare `K`/`M`/`G`/`T` are powers of 1024. Integer
/// arithmetic, checked: a value that does not fit in 64 bits is an error, never rounded.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let not_a_size =
        || format!("{s:?}: expected a size such as 500MB or 20GiB (units: {SIZE_UNITS})");
    let (int, frac) = num.split_once('.').unwrap_or((num, ""));
    if int.is_empty() && frac.is_empty() || frac.contains('.') {
        return Err(not_a_size());
    }
    if frac.len() > MAX_SIZE_FRACTION_DIGITS {
        return Err(format!(
            "{s:?}: at most {MAX_SIZE_FRACTION_DIGITS} digits after the decimal point"
        ));
    }
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" => 1000,
        "mb" => 1000_u64.pow(2),
        "gb" => 1000_u64.pow(3),
        "tb" => 1000_u64.pow(4),
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        "t" | "tib" => 1 << 40,
        _ => return Err(format!("{s:?}: unknown size unit; use {SIZE_UNITS}")),
    };
    let too_big = || format!("{s:?}: size out of range");
    let whole: u64 = if int.is_empty() {
        0
    } else {
        int.parse().map_err(|_| too_big())?
    };
    // frac digits as a fraction of 10^len: (frac * mult) / 10^len, exact for whole bytes.
    let frac_value: u64 = if frac.is_empty() {
        0
    } else {
        let digits: u64 = frac.parse().map_err(|_| not_a_size())?;
        let scale = 10_u64.pow(frac.len() as u32);
        let part = u128::from(digits) * u128::from(mult) / u128::from(scale);
        u64::try_from(part).map_err(|_| too_big())?
    };
    whole
        .checked_mul(mult)
        .and_then(|w| w.checked_add(frac_value))
        .ok_or_else(too_big)
}

/// A duration for people, in the largest whole unit: `5m`, `1h`, `90s`, `250ms` (what
/// [`parse_duration`] reads).
pub fn human_duration(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0 => format!("{}ms", d.as_millis()),
        s if s % 3600 == 0 => format!("{}h", s / 3600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

/// A byte count for people: `0 B`, `512 B`, `1.5 KiB`, `23.3 GiB` (powers of 1024, one
/// decimal). [`parse_size`] reads the result back to within the rounding.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut unit = 0;
    let mut scaled = bytes as f64;
    while scaled >= 1024.0 && unit < UNITS.len() - 1 {
        scaled /= 1024.0;
        unit += 1;
    }
    format!("{scaled:.1} {}", UNITS[unit])
}

/// Parses a `--listen` address: `0.0.0.0:5000`, `:5000` (every IPv4 interface, like the
/// default), `localhost:5000` (127.0.0.1), `[::]:5000` (every interface, IPv6 and — unless
/// the system says otherwise — IPv4), `[::1]:5000`, `192.168.1.10:5000`. Other host names
/// are refused rather than looked up: a name can resolve to another machine's address.
pub fn parse_listen(s: &str) -> Result<SocketAddr, String> {
    let t = s.trim();
    let fix = "expected ADDRESS:PORT such as 0.0.0.0:5000, :5000 (every interface), localhost:5000 or [::]:5000";
    if let Ok(a) = t.parse::<SocketAddr>() {
        return Ok(a);
    }
    let Some((host, port)) = t.rsplit_once(':') else {
        return Err(if t.parse::<u16>().is_ok() {
            format!("{s:?}: a port alone is not an address; write :{t} for every interface")
        } else {
            format!("{s:?}: {fix}")
        });
    };
    let port: u16 = port
        .parse()
        .map_err(|_| format!("{s:?}: the port must be a number from 0 to 65535; {fix}"))?;
    let ip: IpAddr = match host {
        "" | "*" => Ipv4Addr::UNSPECIFIED.into(),
        h if h.eq_ignore_ascii_case("localhost") => Ipv4Addr::LOCALHOST.into(),
        h if h.contains(':') && !h.starts_with('[') => {
            return Err(format!(
                "{s:?}: write an IPv6 address in brackets, e.g. [::]:{port}"
            ))
        }
        _ => {
            return Err(format!(
                "{s:?}: {fix} (host names other than localhost are not looked up)"
            ))
        }
    };
    Ok(SocketAddr::new(ip, port))
}

/// Parses `0s`, `90s`, `5m`, `1h`, `1d`, `1h30m`. A unit is required: `300` is ambiguous.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let err = || format!("{s:?}: expected a duration such as 0s, 90s, 5m, 1h or 1h30m");
    let mut total: u64 = 0;
    let mut rest = s.trim();
    if rest.is_empty() {
        return Err(err());
    }
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).ok_or_else(err)?;
        if digits == 0 {
            return Err(err());
        }
        let n: u64 = rest[..digits].parse().map_err(|_| err())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let secs = match &rest[..unit_len] {
            "ms" => {
                total = total.checked_add(n / 1000).ok_or_else(err)?;
                rest = &rest[unit_len..];
                continue;
            }
            "s" => 1,
            "m" => 60,
            "h" => 3600,
            "d" => 86400,
            _ => return Err(err()),
        };
        total = n
            .checked_mul(secs)
            .and_then(|x| total.checked_add(x))
            .ok_or_else(err)?;
        rest = &rest[unit_len..];
    }
    Ok(Duration::from_secs(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("500MB"), Ok(500_000_000));
        assert_eq!(parse_size("20GiB"), Ok(20 << 30));
        assert_eq!(parse_size("1.5G"), Ok(3 << 29));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("10 kB"), Ok(10_000));
        assert_eq!(parse_size("0.25TB"), Ok(250_000_000_000));
        assert_eq!(parse_size(".5k"), Ok(512));
        assert_eq!(parse_size("16T"), Ok(16 << 40));
        assert_eq!(parse_size("18446744073709551615"), Ok(u64::MAX));
        for bad in ["ten", "5XB", "", ".", "1.2.3G", "-5G", "1.0000001G"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
        // Out of range is an error, never a rounded or wrapped number.
        for huge in [
            "18446744073709551616",
            "16777216T",
            "99999999999999999999999G",
        ] {
            let e = parse_size(huge).unwrap_err();
            assert!(e.contains("out of range"), "{huge}: {e}");
        }
    }

    #[test]
    fn size_errors_list_every_unit() {
        for bad in ["5XB", "lots"] {
            let e = parse_size(bad).unwrap_err();
            for unit in [
                "B", "kB", "MB", "GB", "TB", "KiB", "MiB", "GiB", "TiB", "K", "M", "G", "T",
            ] {
                assert!(
                    e.split(|c: char| !c.is_ascii_alphabetic())
                        .any(|w| w == unit),
                    "{bad}: {unit} missing from {e}"
                );
            }
        }
        // …and every unit listed is accepted, in any case.
        for unit in [
            "B", "kB", "MB", "GB", "TB", "KiB", "MiB", "GiB", "TiB", "K", "M", "G", "T",
        ] {
            assert!(parse_size(&format!("1{unit}")).is_ok(), "{unit}");
            assert!(
                parse_size(&format!("1{}", unit.to_lowercase())).is_ok(),
                "{unit}"
            );
        }
    }

    #[test]
    fn human_sizes() {
        assert_eq!(human_size(0), "0 B");
        assert_eq!(human_size(1023), "1023 B");
        assert_eq!(human_size(1536), "1.5 KiB");
        assert_eq!(human_size(500_000_000), "476.8 MiB");
        assert_eq!(human_size(25 << 30), "25.0 GiB");
        assert_eq!(human_size(u64::MAX), "16384.0 PiB");
        let back = parse_size(&human_size(25 << 30).replace(' ', "")).unwrap();
        assert_eq!(back, 25 << 30);
    }

    #[test]
    fn listen_addresses() {
        let ok = |s: &str| parse_listen(s).map(|a| a.to_string());
        assert_eq!(ok("0.0.0.0:5000").as_deref(), Ok("0.0.0.0:5000"));
        assert_eq!(ok(":5000").as_deref(), Ok("0.0.0.0:5000"));
        assert_eq!(ok("*:5000").as_deref(), Ok("0.0.0.0:5000"));
        assert_eq!(ok("localhost:5000").as_deref(), Ok("127.0.0.1:5000"));
        assert_eq!(ok("LOCALHOST:80").as_deref(), Ok("127.0.0.1:80"));
        assert_eq!(ok("[::]:5000").as_deref(), Ok("[::]:5000"));
        assert_eq!(ok("[::1]:0").as_deref(), Ok("[::1]:0"));
        assert_eq!(ok("192.168.1.10:5000").as_deref(), Ok("192.168.1.10:5000"));
        let e = parse_listen("5000").unwrap_err();
        assert!(e.contains(":5000"), "{e}");
        let e = parse_listen("::5000").unwrap_err();
        assert!(e.contains("brackets"), "{e}");
        for bad in ["nowhere", "pi.local:5000", ":http", ":65536", "", "[::]"] {
            let e = parse_listen(bad).unwrap_err();
            assert!(!e.contains('\n'), "{e}");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("2d"), Ok(Duration::from_secs(172_800)));
        for bad in ["", "300", "5x", "m", "1h 5m", "-1s"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn upstream_urls() {
        let u = UpstreamUrl::parse("http://127.0.0.1:5000").unwrap();
        assert_eq!(
            (u.https, u.host.as_str(), u.port),
            (false, "127.0.0.1", 5000)
        );
        let u = UpstreamUrl::parse("https://ghcr.io/").unwrap();
        assert_eq!((u.https, u.host.as_str(), u.port), (true, "ghcr.io", 443));
        let u = UpstreamUrl::parse("http://[::1]:8080").unwrap();
        assert_eq!(u.authority(), "[::1]:8080");
        let u = UpstreamUrl::parse("http://central:5000/ghcr.io/").unwrap();
        assert_eq!(u.prefix.as_ref().map(|p| p.as_str()), Some("ghcr.io"));
        assert_eq!(
            (u.origin(), u.to_string()),
            (
                "http://central:5000".into(),
                "http://central:5000/ghcr.io".into()
            )
        );
        let u = UpstreamUrl::parse("https://harbor.example/proxy/hub").unwrap();
        assert_eq!(u.prefix.unwrap().as_str(), "proxy/hub");
        for bad in [
            "ftp://x",
            "https://",
            "https://h/Path",
            "https://h/../x",
            "https://h/a?ns=b",
            "http://u:p@h",
            "http://h:port",
        ] {
            assert!(UpstreamUrl::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn credentials_debug_is_redacted() {
        let c = Credentials {
            user: "bob".into(),
            password: "hunter2".into(),
        };
        assert!(!format!("{c:?}").contains("hunter2"));
    }
}
