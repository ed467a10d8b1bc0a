//! `serve`'s settings from its two sources — the configuration file (`--config FILE`,
//! syntax in `conffile.rs`) and the command line — merged and validated into one
//! [`Config`]. Both sources go through the same checks, and every error names where the bad
//! value came from: `--max-size` or `/etc/regmirror/regmirror.conf: line 12: max-size`.
//!
//! Precedence: a flag overrides the file's line for the same setting; for the repeatable
//! `upstream` and `upstream-auth`, flags for a registry NAME replace the file's lines for that
//! NAME, and the file's other lines stay. Within one source a NAME may appear only once.
//! `allow` flags replace every `allow` line of the file (`--allow private --allow
//! 203.0.113.0/24` extends the default rather than replacing it).

use crate::conffile::{self, Key, MAX_FILE_BYTES};
use crate::config::{self, Config, Credentials, UpstreamUrl};
use crate::reference::UpstreamName;
use std::io::Read;
use std::path::{Path, PathBuf};

/// The smallest `--max-size` accepted. One Debian base image is ~50 MB and a typical
/// application image several hundred: below this, nearly every layer streams through
/// uncached, which is never what someone wanted (usually a missing unit: `--max-size 20`
/// is 20 bytes).
pub const MIN_MAX_SIZE: u64 = 100_000_000;

/// The shortest `--keep-refresh`: a round asks upstream about every kept image (HEADs,
/// free on Docker Hub but not nothing), and a tag rarely moves more often than this.
pub const MIN_KEEP_REFRESH: std::time::Duration = std::time::Duration::from_secs(60);

/// One value and where it came from.
#[derive(Debug, Clone)]
struct Sourced {
    key: Key,
    value: String,
    /// The file's line, or `None` for the command line.
    line: Option<usize>,
}

/// Settings gathered from the file and the flags, not yet validated.
#[derive(Debug, Default)]
pub struct Settings {
    file: Option<PathBuf>,
    entries: Vec<Sourced>,
}

impl Settings {
    /// Settings from the configuration file at `path`.
    pub fn from_file(path: &Path) -> Result<Settings, String> {
        let text = read_text(path)?;
        let entries = conffile::parse(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(Settings {
            file: Some(path.to_owned()),
            entries: entries
                .into_iter()
                .map(|e| Sourced {
                    key: e.key,
                    value: e.value,
                    line: Some(e.line),
                })
                .collect(),
        })
    }

    /// Adds a command-line flag's value.
    pub fn flag(&mut self, key: Key, value: impl Into<String>) {
        self.entries.push(Sourced {
            key,
            value: value.into(),
            line: None,
        });
    }

    /// Where `s` came from, as an error message starts: `--tag-ttl` or `FILE: line 3: tag-ttl`.
    fn at(&self, s: &Sourced) -> String {
        match (s.line, &self.file) {
            (Some(n), Some(f)) => format!("{}: line {n}: {}", f.display(), s.key),
            _ => format!("--{}", s.key),
        }
    }

    /// The value of a once-only setting: the flag if given, else the file's line.
    fn single(&self, key: Key) -> Option<&Sourced> {
        let of_key = || self.entries.iter().filter(move |e| e.key == key);
        of_key()
            .rfind(|e| e.line.is_none())
            .or_else(|| of_key().next_back())
    }

    /// The values of a repeatable `NAME=…` setting, merged as the module doc says; each item
    /// is (NAME, rest, where it came from).
    fn by_name(&self, key: Key, shape: &str) -> Result<Vec<(String, String, &Sourced)>, String> {
        let mut from_file: Vec<(String, String, &Sourced)> = Vec::new();
        let mut from_flags: Vec<(String, String, &Sourced)> = Vec::new();
        for e in self.entries.iter().filter(|e| e.key == key) {
            let (name, rest) = e
                .value
                .split_once('=')
                .ok_or_else(|| format!("{} {:?}: expected {shape}", self.at(e), e.value))?;
            let list = if e.line.is_some() {
                &mut from_file
            } else {
                &mut from_flags
            };
            if let Some((_, _, first)) = list.iter().find(|(n, _, _)| n == name) {
                let first = match first.line {
                    Some(n) => format!("line {n}"),
                    None => format!("--{key} {:?}", first.value),
                };
                return Err(format!(
                    "{} {:?}: {name} is already given ({first}); give each registry once",
                    self.at(e),
                    e.value
                ));
            }
            list.push((name.to_owned(), rest.to_owned(), e));
        }
        from_file.retain(|(n, _, _)| !from_flags.iter().any(|(f, _, _)| f == n));
        from_file.extend(from_flags);
        Ok(from_file)
    }

    /// Validates everything into a [`Config`]; the error is one line naming the setting.
    pub fn into_config(self) -> Result<Config, String> {
        let cache_dir = match self.single(Key::CacheDir) {
            Some(s) => PathBuf::from(&s.value),
            None => config::DEFAULT_CACHE_DIR.into(),
        };
        let mut c = Config::new(cache_dir);
        c.config_file = self.file.clone();
        if let Some(s) = self.single(Key::Listen) {
            c.listen = config::parse_listen(&s.value).map_err(|e| format!("{} {e}", self.at(s)))?;
        }
        if let Some(s) = self.single(Key::MaxSize) {
            let bytes = config::parse_size(&s.value).map_err(|e| format!("{} {e}", self.at(s)))?;
            if bytes < MIN_MAX_SIZE {
                return Err(format!(
                    "{} {:?} is {}, below the floor of {}: a budget that small caches almost \
                     nothing (a unit missing? sizes read like 500MB or 20GiB)",
                    self.at(s),
                    s.value,
                    config::human_size(bytes),
                    config::human_size(MIN_MAX_SIZE),
                ));
            }
            c.max_size = Some(bytes);
        }
        for (name, url, s) in self.by_name(Key::Upstream, "NAME=URL")? {
            let name = UpstreamName::parse(&name).map_err(|_| {
                format!(
                    "{} {:?}: {name:?} is not a registry name like docker.io or ghcr.io",
                    self.at(s),
                    s.value
                )
            })?;
            let url = UpstreamUrl::parse(&url).map_err(|e| format!("{} {e}", self.at(s)))?;
            c.set_upstream(name, url);
        }
        for (name, rest, s) in self.by_name(Key::UpstreamAuth, "NAME=USER:PASSWORD_FILE")? {
            let at = self.at(s);
            let (user, file) = rest
                .split_once(':')
                .ok_or_else(|| format!("{at} {:?}: expected NAME=USER:PASSWORD_FILE", s.value))?;
            let password = std::fs::read_to_string(file)
                .map_err(|e| format!("{at} {name}: cannot read password file {file:?}: {e}"))?;
            let upstream = c
                .upstreams
                .iter_mut()
                .find(|u| u.name.as_str() == name)
                .ok_or_else(|| {
                    let how = match s.line {
                        Some(_) => "an `upstream =` line",
                        None => "--upstream",
                    };
                    format!("{at} {name}: no such upstream (add it with {how})")
                })?;
            upstream.credentials = Some(Credentials {
                user: user.into(),
                password: password.trim_end_matches(['\r', '\n']).into(),
            });
        }
        c.upstream_ca = self
            .single(Key::UpstreamCa)
            .map(|s| PathBuf::from(&s.value));
        if let Some(s) = self.single(Key::TagTtl) {
            c.tag_ttl =
                config::parse_duration(&s.value).map_err(|e| format!("{} {e}", self.at(s)))?;
        }
        if let Some(s) = self.single(Key::UpstreamTimeout) {
            let at = self.at(s);
            c.upstream_timeout =
                config::parse_duration(&s.value).map_err(|e| format!("{at} {e}"))?;
            if c.upstream_timeout.is_zero() {
                return Err(format!("{at} must be more than 0s"));
            }
        }
        if let Some(s) = self.single(Key::MaxConnections) {
            let at = self.at(s);
            let n: usize = s
                .value
                .parse()
                .map_err(|_| format!("{at} {:?}: expected a whole number such as 128", s.value))?;
            if n == 0 {
                return Err(format!("{at} must be at least 1"));
            }
            c.max_connections = n;
        }
        let allow: Vec<&Sourced> = self
            .entries
            .iter()
            .filter(|e| e.key == Key::Allow)
            .collect();
        let from_flags = allow.iter().any(|e| e.line.is_none());
        let allow: Vec<&Sourced> = allow
            .into_iter()
            .filter(|e| e.line.is_none() == from_flags)
            .collect();
        if !allow.is_empty() {
            c.allow.clear();
            for s in allow {
                let ranges = crate::access::cidr::parse_list(&s.value)
                    .map_err(|e| format!("{} {e}", self.at(s)))?;
                c.allow.extend(ranges);
            }
        }
        c.htpasswd = self.single(Key::Htpasswd).map(|s| PathBuf::from(&s.value));
        c.tls_cert = self.single(Key::TlsCert).map(|s| PathBuf::from(&s.value));
        c.tls_key = self.single(Key::TlsKey).map(|s| PathBuf::from(&s.value));
        c.keep = self.single(Key::Keep).map(|s| PathBuf::from(&s.value));
        if let Some(s) = self.single(Key::KeepRefresh) {
            let at = self.at(s);
            c.keep_refresh = config::parse_duration(&s.value).map_err(|e| format!("{at} {e}"))?;
            if c.keep_refresh < MIN_KEEP_REFRESH {
                return Err(format!(
                    "{at} {:?}: at least {}: each round asks upstream about every image kept",
                    s.value,
                    config::human_duration(MIN_KEEP_REFRESH)
                ));
            }
        }
        c.admin_token_file = self
            .single(Key::AdminTokenFile)
            .map(|s| PathBuf::from(&s.value));
        c.host_info = self.single(Key::HostInfo).map(|s| PathBuf::from(&s.value));
        if let Some(s) = self.single(Key::Verbose) {
            c.verbose = self.yes_no(s)?;
        }
        if let Some(s) = self.single(Key::ReadAhead) {
            c.read_ahead = self.yes_no(s)?;
        }
        Ok(c)
    }
}

impl Settings {
    /// A `yes`/`no` setting's value; the error names where it was given.
    fn yes_no(&self, s: &Sourced) -> Result<bool, String> {
        parse_bool(&s.value).ok_or_else(|| {
            format!(
                "{} {:?}: expected yes or no (also true/false, on/off, 1/0)",
                self.at(s),
                s.value
            )
        })
    }
}

/// `yes`/`no` and the usual synonyms, in any case.
fn parse_bool(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "yes" | "true" | "on" | "1" => Some(true),
        "no" | "false" | "off" | "0" => Some(false),
        _ => None,
    }
}

/// The file's text, read up to one byte past [`MAX_FILE_BYTES`] (so a huge file or a device
/// is never read whole), as UTF-8.
fn read_text(path: &Path) -> Result<String, String> {
    let p = path.display();
    let file =
        std::fs::File::open(path).map_err(|e| format!("--config {p}: cannot open it: {e}"))?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("--config {p}: cannot read it: {e}"))?;
    if bytes.len() > MAX_FILE_BYTES {
        return Err(format!(
            "--config {p}: over {} KiB; is it really a regmirror configuration file?",
            MAX_FILE_BYTES / 1024
        ));
    }
    String::from_utf8(bytes).map_err(|e| {
        let line = 1 + e.as_bytes()[..e.utf8_error().valid_up_to()]
            .iter()
            .filter(|&&b| b == b'\n')
            .count();
        format!("{p}: line {line}: not UTF-8 text")
    })
}

#[cfg(test)]
mod tests;
