//! The syntax of the configuration file `serve --config FILE` reads (the package installs
//! `/etc/regmirror/regmirror.conf`): one `key = value` per line, each key a long `serve`
//! flag without its dashes. A pure function of the text, [`parse`], so it can be tested and
//! fuzzed on its own; what a value means is checked later, the same way as for a flag
//! (`settings.rs`).
//!
//! ```text
//! # A comment: the whole line, after optional blanks.
//! listen = :5000
//! cache-dir = /var/cache/regmirror
//! upstream = ghcr.io=https://ghcr.io      <- not allowed: no comments after a value
//! upstream = quay.io=https://quay.io
//! verbose = yes
//! ```
//!
//! Rules: blank lines and `#` lines are ignored; a value is the rest of the line after the
//! first `=`, blanks around it trimmed, optionally wrapped in one pair of double quotes (no
//! escapes); a trailing `\r` is dropped (files written on Windows). Only `upstream`,
//! `upstream-auth` and `allow` may appear more than once. The file is outside bytes: its size, line length
//! and number of settings have named limits, and every error names its line.

use std::fmt;

/// Largest configuration file read. Every setting with a paragraph of comments is about
/// 6 KiB; a file far bigger than that is not a configuration file (a log or a binary given
/// by mistake), and reading it whole would only cost memory.
pub const MAX_FILE_BYTES: usize = 64 * 1024;

/// Longest line. A value is at most a path or a URL, and Linux paths stop at 4096 bytes.
pub const MAX_LINE_BYTES: usize = 4096;

/// Most settings in one file. One line per upstream and per credential: a few dozen at the
/// very most; the limit bounds the work a hostile file can cause.
pub const MAX_ENTRIES: usize = 256;

/// A setting the file may hold: the long flags of `serve`, less `--config` itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    /// `listen`
    Listen,
    /// `cache-dir`
    CacheDir,
    /// `max-size`
    MaxSize,
    /// `upstream` (repeatable)
    Upstream,
    /// `upstream-ca`
    UpstreamCa,
    /// `upstream-auth` (repeatable)
    UpstreamAuth,
    /// `tag-ttl`
    TagTtl,
    /// `upstream-timeout`
    UpstreamTimeout,
    /// `max-connections`
    MaxConnections,
    /// `verbose`
    Verbose,
    /// `allow` (repeatable)
    Allow,
    /// `htpasswd`
    Htpasswd,
    /// `tls-cert`
    TlsCert,
    /// `tls-key`
    TlsKey,
    /// `keep`
    Keep,
    /// `keep-refresh`
    KeepRefresh,
    /// `admin-token-file`
    AdminTokenFile,
    /// `host-info`
    HostInfo,
    /// `read-ahead`
    ReadAhead,
}

impl Key {
    /// Every key, in the order `serve --help` lists the flags.
    pub const ALL: [Key; 19] = [
        Key::Listen,
        Key::CacheDir,
        Key::MaxSize,
        Key::Upstream,
        Key::UpstreamCa,
        Key::UpstreamAuth,
        Key::TagTtl,
        Key::UpstreamTimeout,
        Key::MaxConnections,
        Key::Allow,
        Key::Htpasswd,
        Key::TlsCert,
        Key::TlsKey,
        Key::Verbose,
        Key::Keep,
        Key::KeepRefresh,
        Key::AdminTokenFile,
        Key::HostInfo,
        Key::ReadAhead,
    ];

    /// The key as written in the file, which is also the flag without its `--`.
    pub fn name(self) -> &'static str {
        match self {
            Key::Listen => "listen",
            Key::CacheDir => "cache-dir",
            Key::MaxSize => "max-size",
            Key::Upstream => "upstream",
            Key::UpstreamCa => "upstream-ca",
            Key::UpstreamAuth => "upstream-auth",
            Key::TagTtl => "tag-ttl",
            Key::UpstreamTimeout => "upstream-timeout",
            Key::MaxConnections => "max-connections",
            Key::Verbose => "verbose",
            Key::Allow => "allow",
            Key::Htpasswd => "htpasswd",
            Key::TlsCert => "tls-cert",
            Key::TlsKey => "tls-key",
            Key::Keep => "keep",
            Key::KeepRefresh => "keep-refresh",
            Key::AdminTokenFile => "admin-token-file",
            Key::HostInfo => "host-info",
            Key::ReadAhead => "read-ahead",
        }
    }

    /// May the key appear more than once?
    pub fn repeatable(self) -> bool {
        matches!(self, Key::Upstream | Key::UpstreamAuth | Key::Allow)
    }

    fn from_name(name: &str) -> Option<Key> {
        Key::ALL.into_iter().find(|k| k.name() == name)
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One `key = value` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// 1-based line number, for messages about the value.
    pub line: usize,
    /// Which setting.
    pub key: Key,
    /// The value: trimmed, quotes removed, never empty, no control characters.
    pub value: String,
}

/// Why a file was refused; `line` is 1-based (0: the file as a whole).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    /// Where.
    pub line: usize,
    /// What.
    pub kind: ErrorKind,
}

/// What is wrong with a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorKind {
    /// Over [`MAX_FILE_BYTES`].
    TooBig,
    /// Over [`MAX_ENTRIES`] settings.
    TooManyEntries,
    /// A line over [`MAX_LINE_BYTES`].
    LineTooLong,
    /// A line that is neither blank, a comment, nor `key = value`.
    NotKeyValue,
    /// `--listen = …`: a flag's spelling.
    Dashes(String),
    /// A key we do not know; the closest known one, if any is close.
    UnknownKey(String, Option<Key>),
    /// `config = …` inside a configuration file.
    Nested,
    /// `key =` with nothing after it.
    EmptyValue(Key),
    /// `value # comment`.
    InlineComment(Key),
    /// A control character (other than tab) in a value.
    ControlCharacter(Key),
    /// `"value` without its closing quote, or a quote inside a quoted value.
    BadQuotes(Key),
    /// A key that may appear once, again; the line of the first one.
    Repeated(Key, usize),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line > 0 {
            write!(f, "line {}: ", self.line)?;
        }
        match &self.kind {
            ErrorKind::TooBig => write!(
                f,
                "the file is over {} KiB; is it really a regmirror configuration file?",
                MAX_FILE_BYTES / 1024
            ),
            ErrorKind::TooManyEntries => write!(f, "more than {MAX_ENTRIES} settings"),
            ErrorKind::LineTooLong => write!(f, "longer than {MAX_LINE_BYTES} bytes"),
            ErrorKind::NotKeyValue => write!(
                f,
                "expected `key = value` (or a comment starting with #); keys are: {}",
                key_list()
            ),
            ErrorKind::Dashes(k) => write!(f, "write `{k} = …`, without the dashes"),
            ErrorKind::UnknownKey(k, Some(near)) => {
                write!(f, "unknown setting `{k}`; did you mean `{near}`?")
            }
            ErrorKind::UnknownKey(k, None) => {
                write!(f, "unknown setting `{k}`; settings are: {}", key_list())
            }
            ErrorKind::Nested => write!(
                f,
                "`config` cannot be set inside a configuration file (give --config on the command line)"
            ),
            ErrorKind::EmptyValue(k) => write!(
                f,
                "`{k}` has no value; delete the line (or put # in front) to use the default"
            ),
            ErrorKind::InlineComment(k) => write!(
                f,
                "`{k}`: a comment after a value is not supported; put it on a line of its own"
            ),
            ErrorKind::ControlCharacter(k) => {
                write!(f, "`{k}`: the value contains a control character")
            }
            ErrorKind::BadQuotes(k) => write!(
                f,
                "`{k}`: a quoted value needs one \" at each end and none inside"
            ),
            ErrorKind::Repeated(k, first) => write!(
                f,
                "`{k}` is already set on line {first}; only `upstream` and `upstream-auth` may be given more than once"
            ),
        }
    }
}

impl std::error::Error for Error {}

fn key_list() -> String {
    Key::ALL.map(Key::name).join(", ")
}

/// Parses a configuration file's text into its settings, in file order.
pub fn parse(text: &str) -> Result<Vec<Entry>, Error> {
    if text.len() > MAX_FILE_BYTES {
        return Err(Error {
            line: 0,
            kind: ErrorKind::TooBig,
        });
    }
    let mut entries: Vec<Entry> = Vec::new();
    for (i, raw) in text.split('\n').enumerate() {
        let line = i + 1;
        let err = |kind| Error { line, kind };
        if raw.len() > MAX_LINE_BYTES {
            return Err(err(ErrorKind::LineTooLong));
        }
        let content = raw.strip_suffix('\r').unwrap_or(raw).trim();
        if content.is_empty() || content.starts_with('#') {
            continue;
        }
        let Some((name, value)) = content.split_once('=') else {
            return Err(err(ErrorKind::NotKeyValue));
        };
        let name = name.trim();
        if let Some(undashed) = name.strip_prefix("--") {
            return Err(err(ErrorKind::Dashes(undashed.to_owned())));
        }
        if name == "config" {
            return Err(err(ErrorKind::Nested));
        }
        let key = match Key::from_name(name) {
            Some(k) => k,
            None if name.is_empty() || name.contains(char::is_whitespace) => {
                return Err(err(ErrorKind::NotKeyValue))
            }
            None => return Err(err(ErrorKind::UnknownKey(name.to_owned(), closest(name)))),
        };
        let value = unquote(key, value.trim()).map_err(err)?;
        if !key.repeatable() {
            if let Some(first) = entries.iter().find(|e| e.key == key) {
                return Err(err(ErrorKind::Repeated(key, first.line)));
            }
        }
        if entries.len() == MAX_ENTRIES {
            return Err(err(ErrorKind::TooManyEntries));
        }
        entries.push(Entry {
            line,
            key,
            value: value.to_owned(),
        });
    }
    Ok(entries)
}

/// The value without its optional quotes, checked for what a value may not hold.
fn unquote(key: Key, v: &str) -> Result<&str, ErrorKind> {
    if v.chars().any(|c| c.is_control() && c != '\t') {
        return Err(ErrorKind::ControlCharacter(key));
    }
    let inner = if let Some(rest) = v.strip_prefix('"') {
        match rest.strip_suffix('"') {
            Some(inner) if !inner.contains('"') => inner,
            _ => return Err(ErrorKind::BadQuotes(key)),
        }
    } else {
        if v.contains(" #") || v.contains("\t#") {
            return Err(ErrorKind::InlineComment(key));
        }
        v
    };
    if inner.trim().is_empty() {
        return Err(ErrorKind::EmptyValue(key));
    }
    Ok(inner)
}

/// The known key within two edits of `name` (a typo), if there is one.
fn closest(name: &str) -> Option<Key> {
    Key::ALL
        .into_iter()
        .map(|k| (edit_distance(name, k.name()), k))
        .filter(|(d, _)| *d <= 2)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// Levenshtein distance over bytes; both sides are at most a line long (bounded above), and
/// only called for an unknown key.
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, &ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1];
        for (j, &cb) in b.iter().enumerate() {
            let replace = prev[j] + usize::from(ca != cb);
            cur.push(replace.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests;
