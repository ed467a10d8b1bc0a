//! What one upstream's calls have shown about it: the circuit breaker (fed by answers and
//! by blob bodies that fail mid-way), the last failure's cause, and Docker Hub's rate-limit
//! headers — with when each was seen, for `/_regmirror/status`.
//!
//! Shared as `Rc<Health>` by the [`Registry`](super::Registry) and the bodies of the blob
//! streams it hands out, so that a body that times out or is cut reports back after the
//! call that opened it has returned. Single-threaded (`RefCell`); no borrow outlives a
//! method.

use super::answers::{Failure, RegistryStatus, Seen};
use super::breaker::{Breaker, FAILURE_THRESHOLD, OPEN_WINDOW};
use super::head::Headers;
use crate::error::UpstreamError;
use crate::reference::UpstreamName;
use std::cell::RefCell;
use std::fmt;
use std::time::{Instant, SystemTime};

/// The state behind [`Health`]'s `RefCell`.
#[derive(Debug, Default)]
struct State {
    breaker: Breaker,
    last_failure: Option<Failure>,
    ratelimit_limit: Option<Seen>,
    ratelimit_remaining: Option<Seen>,
}

/// One upstream's health. See the module docs.
pub(crate) struct Health {
    name: UpstreamName,
    state: RefCell<State>,
}

impl fmt::Debug for Health {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Health")
            .field("name", &self.name)
            .field("state", &self.state.borrow())
            .finish()
    }
}

impl Health {
    pub(crate) fn new(name: UpstreamName) -> Health {
        Health {
            name,
            state: RefCell::new(State {
                breaker: Breaker::new(),
                ..State::default()
            }),
        }
    }

    /// The upstream's name.
    pub(crate) fn name(&self) -> &UpstreamName {
        &self.name
    }

    /// May a call go out now? `Unavailable` while the breaker is open, saying why it opened.
    pub(crate) fn admit(&self) -> Result<(), UpstreamError> {
        let mut s = self.state.borrow_mut();
        let Err(left) = s.breaker.admit(Instant::now()) else {
            return Ok(());
        };
        let last = s
            .last_failure
            .as_ref()
            .map_or(String::new(), |f| format!("; last: {}", f.cause));
        Err(UpstreamError::Unavailable(format!(
            "{}: circuit open after {FAILURE_THRESHOLD} consecutive failures, next try in {}s{last}",
            self.name,
            left.as_secs() + 1
        )))
    }

    /// The upstream answered (or a body is flowing).
    pub(crate) fn success(&self) {
        self.state.borrow_mut().breaker.success();
    }

    /// A call or a body failed for an outage-like `cause` (no answer, timeout, reset, 5xx).
    pub(crate) fn failure(&self, cause: &str) {
        let mut s = self.state.borrow_mut();
        s.last_failure = Some(Failure {
            cause: cause.to_owned(),
            at: SystemTime::now(),
        });
        if s.breaker.failure(Instant::now()) {
            log::warn!(
                "upstream {}: {} consecutive failures (last: {cause}); circuit open, no requests for {}s",
                self.name,
                s.breaker.consecutive_failures(),
                OPEN_WINDOW.as_secs()
            );
        }
    }

    /// Feeds the breaker with a call's outcome: no answer or a 5xx is a failure, any other
    /// answer a success.
    pub(crate) fn record<T>(&self, result: &Result<T, UpstreamError>) {
        match result {
            Err(e) if is_outage(e) => self.failure(&e.to_string()),
            _ => self.success(),
        }
    }

    /// Remembers Docker Hub's `ratelimit-limit` and `ratelimit-remaining`, if present.
    pub(crate) fn saw(&self, headers: &Headers) {
        let now = SystemTime::now();
        let seen = |name| {
            headers.get(name).map(|v| Seen {
                value: v.to_owned(),
                at: now,
            })
        };
        let (limit, remaining) = (seen("ratelimit-limit"), seen("ratelimit-remaining"));
        let mut s = self.state.borrow_mut();
        if limit.is_some() {
            s.ratelimit_limit = limit;
        }
        if remaining.is_some() {
            s.ratelimit_remaining = remaining;
        }
    }

    /// What the status page shows of the upstream at `url`.
    pub(crate) fn status(&self, url: String) -> RegistryStatus {
        let s = self.state.borrow();
        RegistryStatus {
            name: self.name.to_string(),
            url,
            available: s.breaker.is_closed(),
            consecutive_failures: s.breaker.consecutive_failures(),
            last_failure: s.last_failure.clone(),
            ratelimit_limit: s.ratelimit_limit.clone(),
            ratelimit_remaining: s.ratelimit_remaining.clone(),
        }
    }
}

/// Does this error say the upstream is down (rather than that it answered)?
pub(crate) fn is_outage(e: &UpstreamError) -> bool {
    match e {
        UpstreamError::Unavailable(_) => true,
        UpstreamError::Status(s, _) => s.is_server_error(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_are_remembered_with_their_cause_and_open_the_breaker() {
        let h = Health::new("r.example".parse().unwrap());
        assert!(h.admit().is_ok());
        for i in 0..FAILURE_THRESHOLD {
            h.failure(&format!("reset {i}"));
        }
        let s = h.status(String::new());
        assert!(!s.available);
        assert_eq!(s.consecutive_failures, FAILURE_THRESHOLD);
        assert_eq!(s.last_failure.unwrap().cause, "reset 2");
        let e = h.admit().unwrap_err().to_string();
        assert!(
            e.contains("r.example") && e.contains("last: reset 2"),
            "{e}"
        );
        h.success();
        let s = h.status(String::new());
        assert!(s.available && s.consecutive_failures == 0);
        assert!(
            s.last_failure.is_some(),
            "the last cause stays for the status page"
        );
    }

    #[test]
    fn answers_that_are_not_outages_count_as_successes() {
        let h = Health::new("r.example".parse().unwrap());
        h.failure("timeout");
        h.record::<()>(&Err(UpstreamError::NotFound));
        assert_eq!(h.status(String::new()).consecutive_failures, 0);
        h.record::<()>(&Err(UpstreamError::Status(
            crate::http::Status::BAD_GATEWAY,
            "r.example".into(),
        )));
        assert_eq!(h.status(String::new()).consecutive_failures, 1);
    }

    #[test]
    fn rate_limit_headers_are_kept_until_replaced() {
        let h = Health::new("docker.io".parse().unwrap());
        h.saw(&Headers::from_pairs(&[
            ("ratelimit-limit", "100;w=21600"),
            ("ratelimit-remaining", "76;w=21600"),
        ]));
        h.saw(&Headers::from_pairs(&[(
            "ratelimit-remaining",
            "75;w=21600",
        )]));
        h.saw(&Headers::default());
        let s = h.status(String::new());
        assert_eq!(s.ratelimit_limit.unwrap().value, "100;w=21600");
        assert_eq!(s.ratelimit_remaining.unwrap().value, "75;w=21600");
    }
}
