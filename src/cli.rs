//! Command-line flags (argh) and their translation into a validated [`Config`]. The only
//! module that reads argv; bad flags become one-line errors and exit status 2. `serve`'s
//! flags and its configuration file (`--config`) meet in `settings.rs`.

use crate::conffile::Key;
use crate::config::{self, Config};
use crate::settings::Settings;
use argh::FromArgs;
use std::path::PathBuf;

/// A pull-through Docker/OCI registry mirror for small boards.
#[derive(FromArgs, Debug)]
#[argh(help_triggers("-h", "--help", "help"))]
pub struct Args {
    /// print the version and exit
    #[argh(switch, short = 'V')]
    pub version: bool,
    /// what to do
    #[argh(subcommand)]
    pub command: Option<Command>,
}

/// Subcommands.
#[derive(FromArgs, Debug)]
#[argh(subcommand)]
// Built once per run from argv; boxing would only make the argh derive harder to read.
#[allow(clippy::large_enum_variant)]
pub enum Command {
    /// Run the mirror.
    Serve(ServeArgs),
    /// Re-hash every cached blob.
    Verify(VerifyArgs),
    /// TLS set-up: `tls init`.
    Tls(TlsArgs),
    /// List what a cache holds.
    Ls(LsArgs),
    /// Ask a running mirror to fetch images now.
    Prefetch(PrefetchArgs),
}

/// List what a cache directory holds, one image a line (works with the mirror stopped).
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "ls", help_triggers("-h", "--help", "help"))]
pub struct LsArgs {
    /// cache directory (default ./regmirror-cache)
    #[argh(option)]
    pub cache_dir: Option<PathBuf>,
}

impl LsArgs {
    /// The cache directory to list.
    pub fn cache_dir(&self) -> PathBuf {
        self.cache_dir
            .clone()
            .unwrap_or_else(|| config::DEFAULT_CACHE_DIR.into())
    }
}

/// Where `regmirror prefetch` finds the token by default: where the package's
/// configuration file suggests keeping it.
pub const DEFAULT_ADMIN_TOKEN_FILE: &str = "/etc/regmirror/admin.token";

/// Ask a running mirror to fetch images now, with a progress bar per image; exit 1 if any could not be fetched.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "prefetch", help_triggers("-h", "--help", "help"))]
pub struct PrefetchArgs {
    /// the mirror, e.g. http://127.0.0.1:5000 (the default)
    #[argh(option, default = "String::from(\"http://127.0.0.1:5000\")")]
    pub mirror: String,
    /// the file holding the mirror's admin token (default /etc/regmirror/admin.token)
    #[argh(option, default = "PathBuf::from(DEFAULT_ADMIN_TOKEN_FILE)")]
    pub admin_token_file: PathBuf,
    /// platforms to fetch, e.g. linux/arm64,linux/amd64 (default: all the image offers)
    #[argh(option)]
    pub platform: Option<String>,
    /// images: alpine:3.20, ghcr.io/org/app:1.4
    #[argh(positional)]
    pub images: Vec<String>,
}

/// TLS set-up.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "tls", help_triggers("-h", "--help", "help"))]
pub struct TlsArgs {
    /// what to do
    #[argh(subcommand)]
    pub command: TlsCommand,
}

/// `tls` subcommands.
#[derive(FromArgs, Debug)]
#[argh(subcommand)]
pub enum TlsCommand {
    /// Make a local CA and a server certificate.
    Init(TlsInitArgs),
}

/// Make a small local CA (kept if it exists) and a server certificate for this box's names and addresses, and print where each client must put the CA.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "init", help_triggers("-h", "--help", "help"))]
pub struct TlsInitArgs {
    /// directory for ca.crt, ca.key, server.crt, server.key (default ./regmirror-tls)
    #[argh(option, default = "PathBuf::from(\"regmirror-tls\")")]
    pub dir: PathBuf,
    /// a DNS name clients use for this box, e.g. pi.local; repeatable
    #[argh(option)]
    pub name: Vec<String>,
    /// an address clients use for this box, e.g. 192.168.1.50; repeatable
    #[argh(option)]
    pub ip: Vec<String>,
    /// the port regmirror serves on, for the client paths printed (default 5000)
    #[argh(option, default = "5000")]
    pub port: u16,
}

impl TlsInitArgs {
    /// The validated request; a bad address is one line naming it.
    pub fn into_request(self) -> Result<crate::tls_init::Request, String> {
        let ips = self
            .ip
            .iter()
            .map(|s| {
                s.trim_start_matches('[')
                    .trim_end_matches(']')
                    .parse()
                    .map_err(|_| format!("--ip {s:?}: not an IPv4 or IPv6 address"))
            })
            .collect::<Result<_, _>>()?;
        Ok(crate::tls_init::Request {
            dir: self.dir,
            names: self.name,
            ips,
            port: self.port,
        })
    }
}

/// What `regmirror ARGS` asks for.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // one per run, like `Command`
pub enum Parsed {
    /// A command to run.
    Run(Command),
    /// Text to print on stdout, then exit 0 (`--help`, `--version`).
    Print(String),
}

/// Run the mirror.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "serve", help_triggers("-h", "--help", "help"))]
// Doc comments here are argh's `--help` text, where a bare URL reads best.
#[allow(rustdoc::bare_urls)]
pub struct ServeArgs {
    /// read settings from FILE: `key = value` lines named like these flags (the package's is /etc/regmirror/regmirror.conf); flags given here override it
    #[argh(option)]
    pub config: Option<PathBuf>,
    /// address to listen on: 0.0.0.0:5000 (the default), :5000, localhost:5000, [::]:5000
    #[argh(option)]
    pub listen: Option<String>,
    /// cache directory (default ./regmirror-cache)
    #[argh(option)]
    pub cache_dir: Option<String>,
    /// byte budget for the cache, at least 100MB, e.g. 500MB, 20GiB (default: the free space of the cache's filesystem plus what the cache holds, minus a reserve; at most 80% of the free space if that is the root filesystem)
    #[argh(option)]
    pub max_size: Option<String>,
    /// an allowlisted upstream NAME=URL, repeatable, each NAME once; docker.io=https://registry-1.docker.io is always present unless overridden
    #[argh(option)]
    pub upstream: Vec<String>,
    /// PEM file of extra CA certificates trusted for upstream TLS
    #[argh(option)]
    pub upstream_ca: Option<String>,
    /// credentials for an upstream: NAME=USER:PASSWORD_FILE (the password is read from the file), repeatable
    #[argh(option)]
    pub upstream_auth: Vec<String>,
    /// how long a tag is served before revalidating it upstream, e.g. 0s, 90s, 5m, 1h (default 5m)
    #[argh(option)]
    pub tag_ttl: Option<String>,
    /// upstream header and idle-read timeout (default 15s); connecting (TCP and TLS) is always capped at 5s
    #[argh(option)]
    pub upstream_timeout: Option<String>,
    /// most client connections served at once (default 128)
    #[argh(option)]
    pub max_connections: Option<String>,
    /// client addresses that may pull, repeatable: ranges such as 192.168.0.0/16 or fd00::/8, single addresses, `private` (the default: loopback, RFC 1918, ULA, link-local, CGNAT 100.64/10) or `any`; others get 403
    #[argh(option)]
    pub allow: Vec<String>,
    /// bcrypt htpasswd FILE (from htpasswd in bcrypt mode): the registry API then needs one of its users (Basic auth; containerd, podman, k3s and skopeo can send it, Docker cannot)
    #[argh(option)]
    pub htpasswd: Option<String>,
    /// PEM certificate chain to serve TLS with, on the same port as plain HTTP (see `regmirror tls init`); needs --tls-key
    #[argh(option)]
    pub tls_cert: Option<String>,
    /// PEM private key of --tls-cert
    #[argh(option)]
    pub tls_key: Option<String>,
    /// debug logging
    #[argh(switch, short = 'v')]
    pub verbose: bool,
    /// keep list: a file naming one image a line, optionally with platforms (ghcr.io/org/app:1.4 linux/arm64,linux/amd64); each is fetched at start, revalidated, never evicted; re-read on SIGHUP
    #[argh(option)]
    pub keep: Option<String>,
    /// how often the keep list is revalidated upstream by HEAD, e.g. 30m, 6h (default 6h)
    #[argh(option)]
    pub keep_refresh: Option<String>,
    /// file holding a secret token (at least 16 characters) that switches on the admin actions (prefetch, pin, unpin, evict) for requests sending it as Authorization: Bearer TOKEN; re-read on SIGHUP
    #[argh(option)]
    pub admin_token_file: Option<String>,
    /// a JSON file in which the host states its name and addresses (the SD-card OS writes /run/regmirror-os/network.json), shown in /_regmirror/status; re-read on every request
    #[argh(option)]
    pub host_info: Option<String>,
    /// once a client GETs an image manifest, fetch the config and layers it names that are not cached, one at a time, so the next blob it asks for is ready: yes (the default) or no
    #[argh(option)]
    pub read_ahead: Option<String>,
}

/// Re-hash every cached blob, delete the bad ones, report; exit 1 if any were bad.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "verify", help_triggers("-h", "--help", "help"))]
pub struct VerifyArgs {
    /// cache directory (default ./regmirror-cache)
    #[argh(option)]
    pub cache_dir: Option<PathBuf>,
}

impl VerifyArgs {
    /// The cache directory to verify.
    pub fn cache_dir(&self) -> PathBuf {
        self.cache_dir
            .clone()
            .unwrap_or_else(|| config::DEFAULT_CACHE_DIR.into())
    }
}

impl ServeArgs {
    /// Reads `--config` if given, lays the flags over it, and validates everything; the
    /// error is one line naming the flag (or the file and line).
    pub fn into_config(self) -> Result<Config, String> {
        let mut s = match &self.config {
            Some(path) => Settings::from_file(path)?,
            None => Settings::default(),
        };
        let once = [
            (Key::Listen, self.listen),
            (Key::CacheDir, self.cache_dir),
            (Key::MaxSize, self.max_size),
            (Key::UpstreamCa, self.upstream_ca),
            (Key::TagTtl, self.tag_ttl),
            (Key::UpstreamTimeout, self.upstream_timeout),
            (Key::MaxConnections, self.max_connections),
            (Key::Htpasswd, self.htpasswd),
            (Key::TlsCert, self.tls_cert),
            (Key::TlsKey, self.tls_key),
            (Key::Keep, self.keep),
            (Key::KeepRefresh, self.keep_refresh),
            (Key::AdminTokenFile, self.admin_token_file),
            (Key::HostInfo, self.host_info),
            (Key::ReadAhead, self.read_ahead),
        ];
        for (key, value) in once {
            if let Some(v) = value {
                s.flag(key, v);
            }
        }
        for u in self.upstream {
            s.flag(Key::Upstream, u);
        }
        for a in self.upstream_auth {
            s.flag(Key::UpstreamAuth, a);
        }
        for a in self.allow {
            s.flag(Key::Allow, a);
        }
        if self.verbose {
            s.flag(Key::Verbose, "yes");
        }
        s.into_config()
    }
}

/// Parses argv (without the program name): a command, or text to print and exit 0
/// (`--help`, `--version`); a bad command line is `Err` with one line for stderr, exit 2.
pub fn parse(program: &str, args: &[&str]) -> Result<Parsed, String> {
    let args = Args::from_args(&[program], args).map_err(|early| match early.status {
        Ok(()) => Ok(early.output),
        Err(()) => {
            // argh's message is a line, sometimes followed by the choices it wants
            // ("One of the following subcommands must be present:" and a list): one line.
            let mut lines = early
                .output
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty());
            let mut msg = lines.next().unwrap_or("bad arguments").to_owned();
            if msg.ends_with(':') {
                let choices: Vec<&str> =
                    lines.filter_map(|l| l.split_whitespace().next()).collect();
                msg = format!("{msg} {}", choices.join(", "));
            }
            Err(format!("{program}: {msg}; see {program} --help"))
        }
    });
    let args = match args {
        Ok(a) => a,
        Err(Ok(help)) => return Ok(Parsed::Print(help)),
        Err(Err(line)) => return Err(line),
    };
    if args.version {
        return Ok(Parsed::Print(format!(
            "{program} {}\n",
            env!("CARGO_PKG_VERSION")
        )));
    }
    match args.command {
        Some(c) => Ok(Parsed::Run(c)),
        None => Err(format!(
            "{program}: no command given: serve (run the mirror), verify (check the cache) or tls init (make certificates); see {program} --help"
        )),
    }
}

#[cfg(test)]
mod tests;
