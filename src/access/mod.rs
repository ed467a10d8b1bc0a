//! Who may use the mirror: [`check`] is the one place every request passes before it is
//! answered. Registry API routes need a client address in `--allow` (default: loopback
//! and the private ranges, [`cidr::PRIVATE`]) and, with `--htpasswd`, valid Basic
//! credentials (`401` with a Basic challenge otherwise). The mirror's own pages — the
//! status page, `/metrics`, the log, the inventory and prefetch JSON — follow `--allow`
//! only. Admin actions (`/_regmirror/admin/…`) need `--allow` and the admin token
//! (`--admin-token-file`, see `control/admin.rs`); the htpasswd users are not asked for.
//!
//! Never logged or forwarded: a client's `Authorization`. Docker sends its Docker Hub
//! credentials to a mirror after `docker login` (moby#42022); they are checked against the
//! htpasswd file and go nowhere else — upstream requests are built from the configured
//! `--upstream-auth` only, and `Request`'s `Debug` hides the header.
//!
//! `cidr.rs`: address ranges; `htpasswd.rs`: the file, bcrypt, remembered checks.

pub mod cidr;
pub mod htpasswd;

use crate::config::Config;
use crate::control::admin::Admin;
use crate::error::Error;
use crate::http::Request;
use crate::routes::Route;
use cidr::Cidr;
use htpasswd::{Htpasswd, Verdict};
use std::time::Instant;

/// The access policy of one running mirror.
#[derive(Debug)]
pub struct Access {
    allow: Vec<Cidr>,
    htpasswd: Option<Htpasswd>,
    /// The admin token (off without `--admin-token-file`); re-read on SIGHUP.
    pub admin: Admin,
}

impl Default for Access {
    /// Loopback and the private ranges, no credentials: the default of `serve`.
    fn default() -> Access {
        Access {
            allow: cidr::private(),
            htpasswd: None,
            admin: Admin::off(),
        }
    }
}

impl Access {
    /// The policy `config` asks for; reads the htpasswd and admin token files (errors
    /// name them).
    pub fn from_config(config: &Config) -> Result<Access, String> {
        let htpasswd = match &config.htpasswd {
            Some(p) => Some(Htpasswd::load(p)?),
            None => None,
        };
        let admin = match &config.admin_token_file {
            Some(p) => Admin::from_file(p)?,
            None => Admin::off(),
        };
        Ok(Access {
            allow: config.allow.clone(),
            htpasswd,
            admin,
        })
    }

    /// One line for the start-up log.
    pub fn describe(&self) -> String {
        let ranges: Vec<String> = self.allow.iter().map(ToString::to_string).collect();
        let who = if ranges == cidr::PRIVATE {
            "loopback and private addresses (the default)".to_owned()
        } else {
            ranges.join(", ")
        };
        let admin = if self.admin.is_on() {
            "; admin actions on (--admin-token-file)"
        } else {
            ""
        };
        match &self.htpasswd {
            Some(h) => format!(
                "clients allowed from {who}; credentials of {} htpasswd users required{admin}",
                h.users()
            ),
            None => format!("clients allowed from {who}{admin}"),
        }
    }
}

/// What a route is, for access.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    /// The registry API (`/v2/…`), and anything we could not route.
    Registry,
    /// The mirror's own read-only pages: status, metrics, log, the control JSON.
    Pages,
    /// The operator's actions: the admin token.
    Admin,
}

fn class(route: Option<&Route>) -> Class {
    match route {
        Some(Route::Control(c)) if c.is_admin() => Class::Admin,
        Some(Route::Status | Route::Metrics | Route::Log | Route::Control(_) | Route::Page(_)) => {
            Class::Pages
        }
        _ => Class::Registry,
    }
}

/// May `req` (about `route`, `None` if its path routes nowhere) be answered? `Err` is the
/// refusal to send: `403 DENIED` for an address outside `--allow`, `401` with a challenge
/// for missing or wrong credentials, `429` while bcrypt checks are throttled; for an admin
/// action `403` when they are off, `401` without the right token.
pub fn check(access: &Access, req: &Request, route: Option<&Route>) -> Result<(), Error> {
    if let Some(peer) = req.peer {
        let ip = peer.ip().to_canonical();
        if !access.allow.iter().any(|c| c.contains(ip)) {
            return Err(Error::AddressDenied(ip));
        }
    }
    match (class(route), &access.htpasswd) {
        (Class::Admin, _) => access.admin.check(req),
        (Class::Pages, _) | (_, None) => Ok(()),
        (Class::Registry, Some(h)) => match h.check(req, Instant::now()) {
            Verdict::Valid => Ok(()),
            Verdict::Missing => Err(Error::Unauthenticated(false)),
            Verdict::Wrong => Err(Error::Unauthenticated(true)),
            Verdict::Throttled => Err(Error::AuthThrottled),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;

    fn from(peer: &str, path: &str) -> Request {
        let mut r = Request::get(path);
        r.peer = Some(peer.parse::<SocketAddr>().unwrap());
        r
    }

    fn route(r: &Request) -> Option<Route> {
        crate::routes::parse(r).ok()
    }

    #[test]
    fn public_addresses_are_denied_everything_private_ones_nothing() {
        let a = Access::default();
        for path in [
            "/v2/",
            "/v2/alpine/manifests/latest",
            "/metrics",
            "/_regmirror/status",
            "/nowhere",
        ] {
            let r = from("203.0.113.5:4000", path);
            let e = check(&a, &r, route(&r).as_ref()).unwrap_err();
            assert!(matches!(e, Error::AddressDenied(_)), "{path}: {e}");
            assert_eq!(e.status().code(), 403);
            let r = from("192.168.1.20:4000", path);
            assert!(check(&a, &r, route(&r).as_ref()).is_ok(), "{path}");
            let r = from("[::ffff:10.0.0.7]:4000", path);
            assert!(check(&a, &r, route(&r).as_ref()).is_ok(), "{path}");
        }
        let e = Error::AddressDenied("203.0.113.5".parse().unwrap()).to_string();
        assert!(e.contains("--allow") && e.contains("203.0.113.5"), "{e}");
    }

    #[test]
    fn htpasswd_guards_the_registry_api_not_the_pages() {
        let hash = bcrypt::hash("pw", 4).unwrap();
        let a = Access {
            allow: cidr::private(),
            htpasswd: Some(Htpasswd::parse(&format!("u:{hash}\n")).unwrap()),
            admin: Admin::off(),
        };
        let r = from("127.0.0.1:1", "/v2/alpine/manifests/latest");
        let e = check(&a, &r, route(&r).as_ref()).unwrap_err();
        assert!(matches!(e, Error::Unauthenticated(false)), "{e}");
        assert_eq!(e.status().code(), 401);
        let r = from("127.0.0.1:1", "/metrics");
        assert!(check(&a, &r, route(&r).as_ref()).is_ok());
        let r = from("127.0.0.1:1", "/_regmirror/status");
        assert!(check(&a, &r, route(&r).as_ref()).is_ok());
        let r = from("127.0.0.1:1", "/_regmirror/images");
        assert!(check(&a, &r, route(&r).as_ref()).is_ok());
    }

    #[test]
    fn admin_actions_need_the_allowed_address_and_the_token() {
        let a = Access::default();
        let r = from("127.0.0.1:1", "/_regmirror/admin/pin?image=a");
        let e = check(&a, &r, route(&r).as_ref()).unwrap_err();
        assert!(matches!(e, Error::AdminOff), "{e}");
        let r = from("203.0.113.5:1", "/_regmirror/admin/pin?image=a");
        let e = check(&a, &r, route(&r).as_ref()).unwrap_err();
        assert!(
            matches!(e, Error::AddressDenied(_)),
            "the address first: {e}"
        );
    }
}
