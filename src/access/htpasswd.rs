//! `--htpasswd FILE`: bcrypt entries (`user:$2y$…`, as `htpasswd -B` writes them) and the
//! check of a request's `Authorization: Basic …`, with successful and failed checks
//! remembered for a while, so that a client sending its credentials on every request costs
//! one bcrypt check per [`REMEMBER_SUCCESS`], not one per request.
//!
//! Memory holds no plaintext: a remembered check is keyed by SHA-256 over a random
//! per-process key, the user and the password. bcrypt runs on the executor's thread (no
//! thread may start for a client, and one check blocks every connection for its duration:
//! ~1 ms at cost 5, `htpasswd -B`'s default, on a PC; a large fraction of a second at cost
//! 10+ on a Pi Zero), so at most [`MAX_CHECKS_PER_WINDOW`] run per [`CHECK_WINDOW`]; past
//! that a request with new credentials is answered 429 at once.

use crate::http::Request;
use base64::Engine as _;
use sha2::{Digest as _, Sha256};
use std::cell::RefCell;
use std::collections::HashMap;
use std::io::Read;
use std::path::Path;
use std::time::{Duration, Instant};

/// Largest htpasswd file read: one entry is ~70 bytes, so this is ~900 users — an office's
/// worth many times over; a bigger file is not an htpasswd file.
pub const MAX_FILE_BYTES: usize = 64 * 1024;

/// How long a successful check is remembered. A pull of a big image takes minutes and
/// containerd sends its credentials with every request: one bcrypt check per client per
/// quarter hour. A password removed from the file stops working at the next restart.
pub const REMEMBER_SUCCESS: Duration = Duration::from_secs(15 * 60);

/// How long a failed check is remembered: a client retrying the same wrong password (Docker
/// sends its Hub credentials to a mirror, moby#42022) costs one bcrypt check a minute.
pub const REMEMBER_FAILURE: Duration = Duration::from_secs(60);

/// Most remembered checks: bounds memory (~100 bytes each) against a client inventing
/// credentials; the oldest is forgotten first.
pub const MAX_REMEMBERED: usize = 256;

/// Most bcrypt checks per [`CHECK_WINDOW`]: each blocks the one thread, so a flood of new
/// credentials must not stall every pull (20 × ~0.3 s is 6 s of a minute on a Pi Zero at
/// cost 10).
pub const MAX_CHECKS_PER_WINDOW: u32 = 20;

/// See [`MAX_CHECKS_PER_WINDOW`].
pub const CHECK_WINDOW: Duration = Duration::from_secs(60);

/// Longest `Authorization` value looked at; Basic credentials are far shorter.
const MAX_AUTHORIZATION_BYTES: usize = 1024;

/// What a request's credentials amount to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// A user in the file with the right password.
    Valid,
    /// No `Authorization: Basic …` header (or a Bearer token, Docker's Hub one).
    Missing,
    /// Credentials that do not match the file.
    Wrong,
    /// New credentials while [`MAX_CHECKS_PER_WINDOW`] checks already ran: try later.
    Throttled,
}

/// The users and their bcrypt hashes, and the remembered checks.
pub struct Htpasswd {
    users: Vec<(String, String)>,
    key: [u8; 32],
    /// Remembered checks: key → (valid, until). At most [`MAX_REMEMBERED`]; when full, the
    /// one that expires first goes (a scan of a few hundred entries, only for a new key).
    remembered: RefCell<HashMap<[u8; 32], (bool, Instant)>>,
    window: RefCell<(Instant, u32)>,
}

impl std::fmt::Debug for Htpasswd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Htpasswd")
            .field("users", &self.users.len())
            .field("remembered", &self.remembered.borrow().len())
            .finish()
    }
}

impl Htpasswd {
    /// Reads `path`; every error is one line naming the file (and line).
    pub fn load(path: &Path) -> Result<Htpasswd, String> {
        let p = path.display();
        let file = std::fs::File::open(path).map_err(|e| format!("--htpasswd {p}: {e}"))?;
        let mut bytes = Vec::new();
        file.take(MAX_FILE_BYTES as u64 + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| format!("--htpasswd {p}: {e}"))?;
        if bytes.len() > MAX_FILE_BYTES {
            return Err(format!(
                "--htpasswd {p}: over {} KiB",
                MAX_FILE_BYTES / 1024
            ));
        }
        let text = String::from_utf8(bytes).map_err(|_| format!("--htpasswd {p}: not text"))?;
        Htpasswd::parse(&text).map_err(|e| format!("--htpasswd {p}: {e}"))
    }

    /// Parses `user:hash` lines (blank and `#` lines ignored); only bcrypt hashes.
    pub fn parse(text: &str) -> Result<Htpasswd, String> {
        let mut users: Vec<(String, String)> = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim_end_matches('\r');
            if line.trim().is_empty() || line.trim_start().starts_with('#') {
                continue;
            }
            let n = i + 1;
            let (user, hash) = line
                .split_once(':')
                .ok_or_else(|| format!("line {n}: expected USER:HASH"))?;
            if user.is_empty() || users.iter().any(|(u, _)| u == user) {
                return Err(format!("line {n}: an empty or repeated user name"));
            }
            let bcrypt = ["$2a$", "$2b$", "$2y$", "$2x$"]
                .iter()
                .any(|p| hash.starts_with(p));
            if !bcrypt || hash.len() != 60 {
                return Err(format!(
                    "line {n}: user {user:?} has no bcrypt hash; only bcrypt is accepted: \
                     create entries with `htpasswd -B FILE {user}`"
                ));
            }
            users.push((user.to_owned(), hash.to_owned()));
        }
        if users.is_empty() {
            return Err("no user in it; add one with `htpasswd -B FILE USER`".into());
        }
        Ok(Htpasswd {
            users,
            key: random_key(),
            remembered: RefCell::new(HashMap::with_capacity(MAX_REMEMBERED)),
            window: RefCell::new((Instant::now(), 0)),
        })
    }

    /// How many users the file has.
    pub fn users(&self) -> usize {
        self.users.len()
    }

    /// Checks `req`'s `Authorization` at time `now`.
    pub fn check(&self, req: &Request, now: Instant) -> Verdict {
        let Some((user, password)) = basic_credentials(req) else {
            return Verdict::Missing;
        };
        let key = self.key_of(&user, &password);
        if let Some(&(ok, until)) = self.remembered.borrow().get(&key) {
            if now < until {
                return if ok { Verdict::Valid } else { Verdict::Wrong };
            }
        }
        let Some((_, hash)) = self.users.iter().find(|(u, _)| *u == user) else {
            // Not logged: it may be someone's Docker Hub name.
            log::info!("credentials for a user not in the htpasswd file refused");
            self.remember(key, false, now);
            return Verdict::Wrong;
        };
        if !self.admit_check(now) {
            return Verdict::Throttled;
        }
        let ok = bcrypt::verify(&password, hash).unwrap_or(false);
        if !ok {
            log::info!("wrong password for htpasswd user {user:?}");
        }
        self.remember(key, ok, now);
        if ok {
            Verdict::Valid
        } else {
            Verdict::Wrong
        }
    }

    fn remember(&self, key: [u8; 32], ok: bool, now: Instant) {
        let ttl = if ok {
            REMEMBER_SUCCESS
        } else {
            REMEMBER_FAILURE
        };
        let mut m = self.remembered.borrow_mut();
        if m.len() >= MAX_REMEMBERED && !m.contains_key(&key) {
            let first = m
                .iter()
                .min_by_key(|(_, (_, until))| *until)
                .map(|(k, _)| *k);
            if let Some(first) = first {
                m.remove(&first);
            }
        }
        m.insert(key, (ok, now + ttl));
    }

    /// Counts one bcrypt check against the window; false if the window is full.
    fn admit_check(&self, now: Instant) -> bool {
        let mut w = self.window.borrow_mut();
        if now.duration_since(w.0) >= CHECK_WINDOW {
            *w = (now, 0);
        }
        if w.1 >= MAX_CHECKS_PER_WINDOW {
            return false;
        }
        w.1 += 1;
        true
    }

    fn key_of(&self, user: &str, password: &str) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(self.key);
        h.update(user.as_bytes());
        h.update([0]);
        h.update(password.as_bytes());
        h.finalize().into()
    }
}

/// `Authorization: Basic base64(user:password)` of `req`, decoded.
fn basic_credentials(req: &Request) -> Option<(String, String)> {
    let value = req.headers.get("authorization")?;
    if value.len() > MAX_AUTHORIZATION_BYTES {
        return None;
    }
    let (scheme, b64) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let (user, password) = text.split_once(':')?;
    // podman sends an empty `Basic Og==` when it has no credentials for a registry.
    if user.is_empty() && password.is_empty() {
        return None;
    }
    Some((user.to_owned(), password.to_owned()))
}

/// A per-process key for [`Htpasswd::key_of`]; from the kernel's random source, or, if that
/// cannot be read, from the clock and process id (the key only keeps a memory dump's hashes
/// from being looked up in a table).
fn random_key() -> [u8; 32] {
    let mut key = [0u8; 32];
    let read = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut key));
    if read.is_err() {
        let mut h = Sha256::new();
        h.update(format!(
            "{:?}{}",
            std::time::SystemTime::now(),
            std::process::id()
        ));
        key = h.finalize().into();
    }
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `htpasswd -Bbn alice secret` at cost 4 (fast tests).
    fn file() -> Htpasswd {
        let hash = bcrypt::hash_with_result("secret", 4)
            .unwrap()
            .format_for_version(bcrypt::Version::TwoY);
        Htpasswd::parse(&format!(
            "# users\nalice:{hash}\n\nbob:{}\n",
            bcrypt::hash("other", 4).unwrap()
        ))
        .unwrap()
    }

    fn with_auth(value: &str) -> Request {
        let head = format!("GET /v2/ HTTP/1.1\r\nHost: x\r\nAuthorization: {value}\r\n\r\n");
        match crate::http::parse_head(head.as_bytes()) {
            Ok(crate::http::Parsed::Complete { head, .. }) => head.request,
            _ => panic!("bad test head"),
        }
    }

    fn basic(user: &str, password: &str) -> Request {
        let b64 = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        with_auth(&format!("Basic {b64}"))
    }

    #[test]
    fn only_the_right_password_passes() {
        let h = file();
        let now = Instant::now();
        assert_eq!(h.users(), 2);
        assert_eq!(h.check(&basic("alice", "secret"), now), Verdict::Valid);
        assert_eq!(h.check(&basic("bob", "other"), now), Verdict::Valid);
        assert_eq!(h.check(&basic("alice", "Secret"), now), Verdict::Wrong);
        assert_eq!(h.check(&basic("carol", "secret"), now), Verdict::Wrong);
        assert_eq!(h.check(&Request::get("/v2/"), now), Verdict::Missing);
        assert_eq!(h.check(&with_auth("Bearer abc.def"), now), Verdict::Missing);
        assert_eq!(h.check(&with_auth("Basic !!!"), now), Verdict::Missing);
        assert_eq!(h.check(&basic("", ""), now), Verdict::Missing);
    }

    #[test]
    fn checks_are_remembered_then_redone() {
        let h = file();
        let t0 = Instant::now();
        assert_eq!(h.check(&basic("alice", "secret"), t0), Verdict::Valid);
        assert_eq!(h.window.borrow().1, 1);
        for _ in 0..10 {
            assert_eq!(h.check(&basic("alice", "secret"), t0), Verdict::Valid);
            assert_eq!(h.check(&basic("alice", "bad"), t0), Verdict::Wrong);
        }
        assert_eq!(h.window.borrow().1, 2, "one bcrypt check per credential");
        let later = t0 + REMEMBER_SUCCESS + Duration::from_secs(1);
        assert_eq!(h.check(&basic("alice", "secret"), later), Verdict::Valid);
        assert_eq!(h.window.borrow().1, 1, "a new window, one more check");
    }

    #[test]
    fn memory_holds_no_password_and_is_bounded() {
        let h = file();
        let now = Instant::now();
        for i in 0..MAX_REMEMBERED + 50 {
            h.check(&basic("carol", &format!("guess{i}")), now);
        }
        assert_eq!(h.remembered.borrow().len(), MAX_REMEMBERED);
        let dump = format!("{:?}", h.remembered.borrow().iter().collect::<Vec<_>>());
        assert!(!dump.contains("guess"), "only hashes are kept");
    }

    #[test]
    fn new_credentials_are_throttled_past_the_window() {
        let h = file();
        let now = Instant::now();
        for i in 0..MAX_CHECKS_PER_WINDOW {
            assert_eq!(
                h.check(&basic("alice", &format!("p{i}")), now),
                Verdict::Wrong
            );
        }
        assert_eq!(h.check(&basic("alice", "secret"), now), Verdict::Throttled);
        assert_eq!(
            h.check(&basic("alice", "p0"), now),
            Verdict::Wrong,
            "remembered: no check"
        );
        let next = now + CHECK_WINDOW;
        assert_eq!(h.check(&basic("alice", "secret"), next), Verdict::Valid);
    }

    #[test]
    fn files_without_bcrypt_are_refused_with_the_fix() {
        let e = Htpasswd::parse("alice:$apr1$abc$def\n").unwrap_err();
        assert!(e.contains("line 1") && e.contains("htpasswd -B"), "{e}");
        assert!(Htpasswd::parse("# nobody\n")
            .unwrap_err()
            .contains("no user"));
        assert!(Htpasswd::parse("alice\n")
            .unwrap_err()
            .contains("USER:HASH"));
        let h = bcrypt::hash("x", 4).unwrap();
        assert!(Htpasswd::parse(&format!("a:{h}\na:{h}\n"))
            .unwrap_err()
            .contains("line 2"));
    }
}
