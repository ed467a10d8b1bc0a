//! Docker Hub's pull allowance (`ratelimit-limit: 100;w=21600`, `ratelimit-remaining:
//! 76;w=21600`, as any upstream that sends them) and what the mirror does about it:
//!
//! - **Prefetch never spends the last [`PREFETCH_RESERVE_PERCENT`]**: before a manifest GET
//!   (what Hub counts; HEADs and blobs are free) a prefetch waits while spending one more
//!   pull would leave less than that share, says why in its state and the log, and looks
//!   again every recheck interval with a free `HEAD`, which brings fresh headers.
//! - **Freshness stretches**: below [`TTL_STRETCH_BELOW_PERCENT`] tags are revalidated
//!   [`TTL_STRETCH_FACTOR`] times less often — a revalidation that finds a new digest costs
//!   a pull, and the last pulls are better kept for images nobody has yet. Entering and
//!   leaving that state is logged once each; the page shows it ([`Mirror::allowance`]).
//!
//! An observation older than [`ALLOWANCE_SEEN_FRESH`] is not acted on: Hub's counter
//! recovers over its window, and the next answer will tell. Without `ratelimit-limit` there
//! is no fraction to compute and nothing is held back.

use super::Mirror;
use crate::upstream::{Registry, RegistryStatus};
use std::time::{Duration, SystemTime};

/// Prefetch keeps this share (percent) of the remaining allowance for clients' pulls.
pub const PREFETCH_RESERVE_PERCENT: u64 = 20;

/// Below this share (percent) of the allowance left, tag freshness is stretched.
pub const TTL_STRETCH_BELOW_PERCENT: u64 = 20;

/// How much longer a tag is trusted while the allowance is low: the default 5 min becomes
/// an hour, so an office pulling all day spends its last pulls on new images.
pub const TTL_STRETCH_FACTOR: u32 = 12;

/// An allowance seen longer ago than this is not acted on (see the module docs).
pub const ALLOWANCE_SEEN_FRESH: Duration = Duration::from_secs(3600);

/// How often a prefetch held back by the allowance looks again (with a free HEAD): Hub's
/// window is 6 h, so a few minutes is prompt enough and costs nothing.
pub const ALLOWANCE_RECHECK: Duration = Duration::from_secs(10 * 60);

/// An upstream's last seen allowance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allowance {
    /// The upstream's name for people: `Docker Hub`, or its registry name.
    pub who: String,
    /// Pulls per window.
    pub limit: u64,
    /// The window in seconds (`w=`), if given.
    pub window_secs: Option<u64>,
    /// Pulls left.
    pub remaining: u64,
    /// When `remaining` was seen.
    pub seen_at: SystemTime,
}

/// What the page shows of an upstream's allowance and what the mirror does about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowanceState {
    /// The allowance as last seen (possibly old: see `acted_on`).
    pub allowance: Allowance,
    /// Fresh enough to act on.
    pub acted_on: bool,
    /// Prefetch is holding back (spending one more would cross the reserve).
    pub prefetch_holding: bool,
    /// Tag freshness is stretched.
    pub ttl_stretched: bool,
    /// The tag TTL in effect for this upstream.
    pub tag_ttl: Duration,
}

/// `100;w=21600` → (100, Some(21600)); `76` → (76, None).
pub fn parse_count(v: &str) -> Option<(u64, Option<u64>)> {
    let mut parts = v.split(';').map(str::trim);
    let n = parts.next()?.parse().ok()?;
    let w = parts.find_map(|p| p.strip_prefix("w=")?.parse().ok());
    Some((n, w))
}

impl Allowance {
    /// The allowance in a registry's status, if it sent both headers.
    pub fn of(status: &RegistryStatus) -> Option<Allowance> {
        let (limit, window_secs) = parse_count(&status.ratelimit_limit.as_ref()?.value)?;
        let seen = status.ratelimit_remaining.as_ref()?;
        let (remaining, _) = parse_count(&seen.value)?;
        let who = if status.name == crate::reference::DOCKER_HUB {
            "Docker Hub".to_owned()
        } else {
            status.name.clone()
        };
        (limit > 0).then_some(Allowance {
            who,
            limit,
            window_secs,
            remaining,
            seen_at: seen.at,
        })
    }

    /// Seen recently enough to act on at `now`.
    pub fn is_fresh(&self, now: SystemTime) -> bool {
        now.duration_since(self.seen_at)
            .is_ok_and(|age| age < ALLOWANCE_SEEN_FRESH)
    }

    /// `remaining` is below `percent` % of `limit`.
    pub fn below(&self, percent: u64) -> bool {
        u128::from(self.remaining) * 100 < u128::from(self.limit) * u128::from(percent)
    }

    /// Spending one more pull would leave less than the prefetch reserve.
    pub fn holds_prefetch(&self) -> bool {
        u128::from(self.remaining.saturating_sub(1)) * 100
            < u128::from(self.limit) * u128::from(PREFETCH_RESERVE_PERCENT)
    }

    /// Why a prefetch waits: `Docker Hub allowance: 18 of 100 left, holding the last 20 %`.
    pub fn holding_reason(&self) -> String {
        format!(
            "{} allowance: {} of {} left, holding the last {PREFETCH_RESERVE_PERCENT} %",
            self.who, self.remaining, self.limit
        )
    }
}

impl Mirror {
    /// The allowance of `registry` if fresh enough to act on now.
    pub(super) fn live_allowance(&self, registry: &Registry) -> Option<Allowance> {
        Allowance::of(&registry.status()).filter(|a| a.is_fresh(SystemTime::now()))
    }

    /// How long tags of `registry` are trusted now: [`Mirror::tag_ttl`], stretched while
    /// its allowance is low (logged when that starts and ends).
    pub(super) fn tag_ttl_for(&self, registry: &Registry) -> Duration {
        let low = self
            .live_allowance(registry)
            .filter(|a| a.below(TTL_STRETCH_BELOW_PERCENT));
        let name = registry.name();
        let was = self.stretched.borrow().contains(name);
        let stretched = self.tag_ttl.saturating_mul(TTL_STRETCH_FACTOR);
        match (&low, was) {
            (Some(a), false) => {
                self.stretched.borrow_mut().insert(name.clone());
                log::warn!(
                    "{name}: {} of {} pulls left (below {TTL_STRETCH_BELOW_PERCENT} %): tags are \
                     revalidated every {} instead of {} until the allowance recovers",
                    a.remaining,
                    a.limit,
                    crate::config::human_duration(stretched),
                    crate::config::human_duration(self.tag_ttl)
                );
            }
            (None, true) => {
                self.stretched.borrow_mut().remove(name);
                log::info!(
                    "{name}: the allowance is no longer low; tags are revalidated every {} again",
                    crate::config::human_duration(self.tag_ttl)
                );
            }
            _ => {}
        }
        if low.is_some() {
            stretched
        } else {
            self.tag_ttl
        }
    }

    /// What the page shows of upstream `name`'s allowance, if it ever sent one.
    pub fn allowance(&self, name: &crate::reference::UpstreamName) -> Option<AllowanceState> {
        let registry = self.upstreams.get(name)?;
        let allowance = Allowance::of(&registry.status())?;
        let acted_on = allowance.is_fresh(SystemTime::now());
        let tag_ttl = self.tag_ttl_for(&registry);
        Some(AllowanceState {
            prefetch_holding: acted_on && allowance.holds_prefetch(),
            ttl_stretched: tag_ttl != self.tag_ttl,
            acted_on,
            allowance,
            tag_ttl,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::upstream::Seen;

    fn status(limit: Option<&str>, remaining: Option<&str>) -> RegistryStatus {
        let seen = |v: &str| Seen {
            value: v.into(),
            at: SystemTime::now(),
        };
        RegistryStatus {
            name: "docker.io".into(),
            url: String::new(),
            available: true,
            consecutive_failures: 0,
            last_failure: None,
            ratelimit_limit: limit.map(seen),
            ratelimit_remaining: remaining.map(seen),
        }
    }

    #[test]
    fn hub_headers_are_read_with_their_window() {
        assert_eq!(parse_count("100;w=21600"), Some((100, Some(21600))));
        assert_eq!(parse_count(" 76 "), Some((76, None)));
        assert_eq!(parse_count("x;w=1"), None);
        assert_eq!(parse_count("99999999999999999999999"), None);
        let a = Allowance::of(&status(Some("100;w=21600"), Some("76;w=21600"))).unwrap();
        assert_eq!(
            (a.limit, a.window_secs, a.remaining),
            (100, Some(21600), 76)
        );
        assert!(
            Allowance::of(&status(None, Some("76"))).is_none(),
            "no limit, no fraction"
        );
        assert!(Allowance::of(&status(Some("0"), Some("0"))).is_none());
    }

    #[test]
    fn prefetch_keeps_the_last_fifth_and_says_so() {
        let a = |left| Allowance::of(&status(Some("100;w=21600"), Some(left))).unwrap();
        assert!(!a("21").holds_prefetch(), "spending one leaves 20: allowed");
        assert!(a("20").holds_prefetch());
        assert!(a("0").holds_prefetch());
        assert_eq!(
            a("18").holding_reason(),
            "Docker Hub allowance: 18 of 100 left, holding the last 20 %"
        );
        assert!(a("19").below(TTL_STRETCH_BELOW_PERCENT));
        assert!(!a("20").below(TTL_STRETCH_BELOW_PERCENT));
        let mut old = a("1");
        assert!(old.is_fresh(SystemTime::now()));
        old.seen_at = SystemTime::now() - ALLOWANCE_SEEN_FRESH;
        assert!(!old.is_fresh(SystemTime::now()));
    }
}
