//! The admin token and the operator's actions. Every action is a `POST` with its
//! parameters in the query string (the server reads no request bodies) and the token from
//! `--admin-token-file` as `Authorization: Bearer <token>`:
//!
//! ```text
//! POST /_regmirror/admin/prefetch?image=REF[&image=REF…][&platform=linux/amd64,…]
//!      202 {"jobs":[1,2]}                       progress: GET /_regmirror/prefetch?id=1,2
//! POST /_regmirror/admin/pin?image=REF[&platform=…]
//!      202 {"pinned":"REF","job":3}             fetched like a prefetch; a pin whose image
//!                                               cannot fit the budget fails and is undone
//! POST /_regmirror/admin/unpin?image=REF       200 {"unpinned":"REF"}
//! POST /_regmirror/admin/evict?image=REF       200 {"evicted":"REF","freed_bytes":N}
//! ```
//!
//! Without `--admin-token-file` every action is refused (403 `DENIED`, saying how to switch
//! them on); without the token or with a wrong one, 401 `UNAUTHORIZED`. The token is read
//! at start and on SIGHUP, and compared in constant time: both sides are hashed and the
//! hashes compared byte by byte without an early exit, so neither the token's length nor
//! a matching prefix shows in the time an answer takes.

use crate::error::Error;
use crate::http::Request;
use sha2::{Digest as _, Sha256};
use std::cell::RefCell;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Shortest token accepted: 16 random characters are beyond guessing over a network.
pub const MIN_TOKEN_LEN: usize = 16;

/// Largest token file read: a token is a line; anything bigger is the wrong file.
pub const MAX_TOKEN_FILE_BYTES: u64 = 4096;

/// The admin token, if admin actions are switched on.
#[derive(Default)]
pub struct Admin {
    file: Option<PathBuf>,
    /// The token's SHA-256 (the token itself is not kept).
    hash: RefCell<Option<[u8; 32]>>,
}

impl std::fmt::Debug for Admin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admin")
            .field("file", &self.file)
            .field("on", &self.hash.borrow().is_some())
            .finish()
    }
}

fn hash(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// Reads a token file: its first line, trimmed, at least [`MIN_TOKEN_LEN`] characters.
fn read_token(path: &Path) -> Result<[u8; 32], String> {
    let p = path.display();
    let mut text = String::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_TOKEN_FILE_BYTES).read_to_string(&mut text))
        .map_err(|e| format!("--admin-token-file {p}: {e}"))?;
    let token = text.lines().next().unwrap_or("").trim();
    if token.chars().count() < MIN_TOKEN_LEN {
        return Err(format!(
            "--admin-token-file {p}: the token is shorter than {MIN_TOKEN_LEN} characters; \
             make one with: head -c 24 /dev/urandom | base64 > {p}"
        ));
    }
    Ok(hash(token.as_bytes()))
}

impl Admin {
    /// Admin actions switched off.
    pub fn off() -> Admin {
        Admin::default()
    }

    /// Admin actions with the token in `path` (an unreadable or short token is an error).
    pub fn from_file(path: &Path) -> Result<Admin, String> {
        Ok(Admin {
            file: Some(path.to_owned()),
            hash: RefCell::new(Some(read_token(path)?)),
        })
    }

    /// Whether admin actions are switched on.
    pub fn is_on(&self) -> bool {
        self.hash.borrow().is_some()
    }

    /// Reads the token file again (SIGHUP): what changed, in words, or why the old token
    /// stays.
    pub fn reload(&self) -> Result<Option<String>, String> {
        let Some(path) = &self.file else {
            return Ok(None);
        };
        let new = read_token(path)?;
        let changed = self.hash.borrow().is_none_or(|old| old != new);
        *self.hash.borrow_mut() = Some(new);
        Ok(changed.then(|| format!("admin token re-read from {}: changed", path.display())))
    }

    /// Admits `req` as an admin action, or says why not.
    pub fn check(&self, req: &Request) -> Result<(), Error> {
        self.check_authorization(req.headers.get("authorization"))
    }

    /// Admits an `Authorization` header value, or says why not.
    fn check_authorization(&self, value: Option<&str>) -> Result<(), Error> {
        let Some(want) = *self.hash.borrow() else {
            return Err(Error::AdminOff);
        };
        let given = value
            .and_then(|v| {
                let (scheme, token) = v.trim().split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
            })
            .ok_or(Error::AdminToken(false))?;
        let got = hash(given.as_bytes());
        let diff = want
            .iter()
            .zip(got.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        if diff == 0 {
            Ok(())
        } else {
            Err(Error::AdminToken(true))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_file_no_actions_and_only_the_right_token_passes() {
        assert!(matches!(
            Admin::off().check_authorization(Some("Bearer x")),
            Err(Error::AdminOff)
        ));
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("token");
        std::fs::write(&f, "correct-horse-battery\n").unwrap();
        let a = Admin::from_file(&f).unwrap();
        assert!(a
            .check_authorization(Some("Bearer correct-horse-battery"))
            .is_ok());
        assert!(a
            .check_authorization(Some("bearer  correct-horse-battery "))
            .is_ok());
        assert!(matches!(
            a.check_authorization(None),
            Err(Error::AdminToken(false))
        ));
        assert!(matches!(
            a.check_authorization(Some("Basic correct-horse-battery")),
            Err(Error::AdminToken(false))
        ));
        assert!(matches!(
            a.check_authorization(Some("Bearer correct-horse-batter")),
            Err(Error::AdminToken(true))
        ));
        std::fs::write(&f, "another-long-secret\n").unwrap();
        assert!(a.reload().unwrap().is_some());
        assert!(a
            .check_authorization(Some("Bearer another-long-secret"))
            .is_ok());
        std::fs::write(&f, "short\n").unwrap();
        assert!(a.reload().unwrap_err().contains("shorter"));
        assert!(
            a.check_authorization(Some("Bearer another-long-secret"))
                .is_ok(),
            "old one stays"
        );
    }
}
