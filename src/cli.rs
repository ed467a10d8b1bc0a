//! Command-line flags (argh) and their translation into a validated [`Config`]. The only
//! module that reads argv; bad flags become one-line errors and exit status 2.

use crate::config::{self, Config, Credentials, UpstreamUrl};
use crate::reference::UpstreamName;
use argh::FromArgs;
use std::path::PathBuf;

/// A pull-through Docker/OCI registry mirror for small boards.
#[derive(FromArgs, Debug)]
pub struct Args {
    /// what to do
    #[argh(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(FromArgs, Debug)]
#[argh(subcommand)]
pub enum Command {
    /// Run the mirror.
    Serve(ServeArgs),
    /// Re-hash every cached blob.
    Verify(VerifyArgs),
}

/// Run the mirror.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "serve")]
// Doc comments here are argh's `--help` text, where a bare URL reads best.
#[allow(rustdoc::bare_urls)]
pub struct ServeArgs {
    /// address to listen on (default 0.0.0.0:5000)
    #[argh(option)]
    pub listen: Option<String>,
    /// cache directory (default ./regmirror-cache)
    #[argh(option)]
    pub cache_dir: Option<PathBuf>,
    /// byte budget for the cache, e.g. 500MB, 20GiB (default: free space of the cache's filesystem, minus a reserve)
    #[argh(option)]
    pub max_size: Option<String>,
    /// an allowlisted upstream NAME=URL, repeatable; docker.io=https://registry-1.docker.io is always present unless overridden
    #[argh(option)]
    pub upstream: Vec<String>,
    /// PEM file of extra CA certificates trusted for upstream TLS
    #[argh(option)]
    pub upstream_ca: Option<PathBuf>,
    /// credentials for an upstream: NAME=USER:PASSWORD_FILE (the password is read from the file), repeatable
    #[argh(option)]
    pub upstream_auth: Vec<String>,
    /// how long a tag is served before revalidating it upstream, e.g. 0s, 90s, 5m, 1h (default 5m)
    #[argh(option)]
    pub tag_ttl: Option<String>,
    /// upstream header and idle-read timeout (default 15s)
    #[argh(option)]
    pub upstream_timeout: Option<String>,
    /// most client connections served at once (default 128)
    #[argh(option)]
    pub max_connections: Option<usize>,
    /// debug logging
    #[argh(switch, short = 'v')]
    pub verbose: bool,
}

/// Re-hash every cached blob, delete the bad ones, report; exit 1 if any were bad.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "verify")]
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
    /// Validates every flag; the error is one line naming the flag.
    pub fn into_config(self) -> Result<Config, String> {
        let mut c = Config::new(
            self.cache_dir
                .unwrap_or_else(|| config::DEFAULT_CACHE_DIR.into()),
        );
        if let Some(l) = self.listen {
            c.listen = l.parse().map_err(|_| {
                format!("--listen {l:?}: expected ADDRESS:PORT such as 0.0.0.0:5000")
            })?;
        }
        if let Some(s) = self.max_size {
            c.max_size = Some(config::parse_size(&s).map_err(|e| format!("--max-size {e}"))?);
        }
        for u in &self.upstream {
            let (name, url) = u
                .split_once('=')
                .ok_or_else(|| format!("--upstream {u:?}: expected NAME=URL"))?;
            let name = UpstreamName::parse(name).map_err(|_| {
                format!(
                    "--upstream {u:?}: {name:?} is not a registry name like docker.io or ghcr.io"
                )
            })?;
            c.set_upstream(
                name,
                UpstreamUrl::parse(url).map_err(|e| format!("--upstream {e}"))?,
            );
        }
        for a in &self.upstream_auth {
            let bad = || format!("--upstream-auth {a:?}: expected NAME=USER:PASSWORD_FILE");
            let (name, rest) = a.split_once('=').ok_or_else(bad)?;
            let (user, file) = rest.split_once(':').ok_or_else(bad)?;
            let password = std::fs::read_to_string(file).map_err(|e| {
                format!("--upstream-auth {name}: cannot read password file {file:?}: {e}")
            })?;
            let upstream = c
                .upstreams
                .iter_mut()
                .find(|u| u.name.as_str() == name)
                .ok_or_else(|| {
                    format!("--upstream-auth {name}: no such upstream (add it with --upstream)")
                })?;
            upstream.credentials = Some(Credentials {
                user: user.into(),
                password: password.trim_end_matches(['\r', '\n']).into(),
            });
        }
        c.upstream_ca = self.upstream_ca;
        if let Some(t) = self.tag_ttl {
            c.tag_ttl = config::parse_duration(&t).map_err(|e| format!("--tag-ttl {e}"))?;
        }
        if let Some(t) = self.upstream_timeout {
            c.upstream_timeout =
                config::parse_duration(&t).map_err(|e| format!("--upstream-timeout {e}"))?;
            if c.upstream_timeout.is_zero() {
                return Err("--upstream-timeout must be more than 0s".into());
            }
        }
        if let Some(n) = self.max_connections {
            if n == 0 {
                return Err("--max-connections must be at least 1".into());
            }
            c.max_connections = n;
        }
        c.verbose = self.verbose;
        Ok(c)
    }
}

/// Parses argv (without the program name) into `Args`, or the text to print and the exit
/// status: `--help` → (help, 0), a bad flag → (one line, 2).
pub fn parse(program: &str, args: &[&str]) -> Result<Args, (String, i32)> {
    Args::from_args(&[program], args).map_err(|early| match early.status {
        Ok(()) => (early.output, 0),
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
            (format!("{program}: {msg}; see {program} --help"), 2)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn serve(args: &[&str]) -> Result<Config, String> {
        let mut all = vec!["serve"];
        all.extend_from_slice(args);
        match parse("regmirror", &all).map_err(|e| e.0)?.command {
            Command::Serve(s) => s.into_config(),
            Command::Verify(_) => unreachable!(),
        }
    }

    #[test]
    fn defaults() {
        let c = serve(&[]).unwrap();
        assert_eq!(c.listen.to_string(), "0.0.0.0:5000");
        assert_eq!(c.cache_dir, PathBuf::from("regmirror-cache"));
        assert_eq!(c.upstreams.len(), 1);
        assert_eq!(
            c.upstreams[0].url.to_string(),
            "https://registry-1.docker.io:443"
        );
        assert_eq!(c.max_size, None);
    }

    #[test]
    fn upstream_override_and_extra() {
        let c = serve(&[
            "--upstream",
            "docker.io=http://127.0.0.1:5000",
            "--upstream",
            "ghcr.io=https://ghcr.io",
        ])
        .unwrap();
        let names: Vec<_> = c
            .upstreams
            .iter()
            .map(|u| (u.name.as_str(), u.url.to_string()))
            .collect();
        assert_eq!(
            names,
            [
                ("docker.io", "http://127.0.0.1:5000".into()),
                ("ghcr.io", "https://ghcr.io:443".into())
            ]
        );
    }

    #[test]
    fn bad_flags_are_one_line_exit_2() {
        for args in [
            vec!["serve", "--max-size", "lots"],
            vec!["serve", "--tag-ttl", "300"],
            vec!["serve", "--upstream", "docker.io"],
            vec!["serve", "--listen", "nowhere"],
        ] {
            let err = match parse("regmirror", &args) {
                Ok(Args {
                    command: Command::Serve(s),
                }) => s.into_config().unwrap_err(),
                _ => panic!("{args:?}"),
            };
            assert!(!err.contains('\n'), "{err}");
        }
        let (msg, code) = parse("regmirror", &["serve", "--bogus"]).unwrap_err();
        assert_eq!(code, 2);
        assert!(!msg.trim_end().contains('\n'), "{msg}");
        let (_, code) = parse("regmirror", &["--help"]).unwrap_err();
        assert_eq!(code, 0);
    }

    #[test]
    fn credentials_come_from_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let pw = dir.path().join("pw");
        std::fs::write(&pw, "s3cret\n").unwrap();
        let auth = format!("docker.io=bob:{}", pw.display());
        let c = serve(&["--upstream-auth", &auth]).unwrap();
        let creds = c.upstreams[0].credentials.as_ref().unwrap();
        assert_eq!(
            (creds.user.as_str(), creds.password.as_str()),
            ("bob", "s3cret")
        );
        assert!(serve(&["--upstream-auth", "docker.io=bob:/nonexistent"]).is_err());
    }
}
