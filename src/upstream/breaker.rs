//! The circuit breaker of one upstream: after a run of failures, calls fail at once for a
//! while instead of each waiting for a timeout, so the cache can answer (stale) right away.
//!
//! Pure logic: every method takes `now`, so the transitions are unit-tested without sleeping.
//!
//! States: *closed* (fewer than [`FAILURE_THRESHOLD`] consecutive failures) lets every call
//! through. *Open* (`open_until` in the future) rejects calls. When the window has passed,
//! the next call is the *trial*: it goes through and the window is pushed on by another
//! [`OPEN_WINDOW`], so concurrent calls are still rejected while it runs, and a trial that
//! never reports (its future was dropped) only costs one more window. A success closes the
//! breaker; a failure keeps it open for a new window.

use std::time::{Duration, Instant};

/// Consecutive failures (network error, timeout, 5xx) that open the breaker. Three: one
/// failure is often a blip (a reset connection), three in a row mean the upstream is down.
pub(crate) const FAILURE_THRESHOLD: u32 = 3;

/// How long an open breaker rejects calls before letting a trial through. Long enough that
/// a down upstream costs one timeout per half-minute rather than one per client request;
/// short enough that a recovered upstream is used again soon.
pub(crate) const OPEN_WINDOW: Duration = Duration::from_secs(30);

/// Failure bookkeeping for one upstream.
#[derive(Debug, Default)]
pub(crate) struct Breaker {
    /// Failures since the last success.
    consecutive_failures: u32,
    /// While `Some` and in the future, calls are rejected. `Some` means "not closed".
    open_until: Option<Instant>,
}

impl Breaker {
    /// A closed breaker.
    pub(crate) fn new() -> Breaker {
        Breaker::default()
    }

    /// May a call go out now? `Err` carries how long the breaker stays open.
    pub(crate) fn admit(&mut self, now: Instant) -> Result<(), Duration> {
        match self.open_until {
            None => Ok(()),
            Some(until) if now < until => Err(until - now),
            Some(_) => {
                // Half-open: this call is the trial; others wait for its outcome.
                self.open_until = Some(now + OPEN_WINDOW);
                Ok(())
            }
        }
    }

    /// A call got an answer: the upstream works.
    pub(crate) fn success(&mut self) {
        self.consecutive_failures = 0;
        self.open_until = None;
    }

    /// A call failed. Returns true when this failure opened the breaker (for a warning).
    pub(crate) fn failure(&mut self, now: Instant) -> bool {
        self.consecutive_failures = self.consecutive_failures.saturating_add(1);
        if self.consecutive_failures < FAILURE_THRESHOLD {
            return false;
        }
        let was_closed = self.open_until.is_none();
        self.open_until = Some(now + OPEN_WINDOW);
        was_closed
    }

    /// Closed: calls go through without restriction.
    pub(crate) fn is_closed(&self) -> bool {
        self.open_until.is_none()
    }

    /// Failures since the last success.
    pub(crate) fn consecutive_failures(&self) -> u32 {
        self.consecutive_failures
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fail_n(b: &mut Breaker, now: Instant, n: u32) -> Vec<bool> {
        (0..n).map(|_| b.failure(now)).collect()
    }

    #[test]
    fn opens_after_threshold_consecutive_failures() {
        let t0 = Instant::now();
        let mut b = Breaker::new();
        assert_eq!(fail_n(&mut b, t0, 3), [false, false, true]);
        assert!(!b.is_closed());
        assert_eq!(b.consecutive_failures(), 3);
        assert_eq!(
            b.admit(t0 + Duration::from_secs(1)),
            Err(Duration::from_secs(29))
        );
    }

    #[test]
    fn a_success_resets_the_count() {
        let t0 = Instant::now();
        let mut b = Breaker::new();
        fail_n(&mut b, t0, 2);
        b.success();
        fail_n(&mut b, t0, 2);
        assert!(b.is_closed());
        assert!(b.admit(t0).is_ok());
    }

    #[test]
    fn after_the_window_one_trial_goes_through_and_success_closes() {
        let t0 = Instant::now();
        let mut b = Breaker::new();
        fail_n(&mut b, t0, 3);
        let later = t0 + OPEN_WINDOW;
        assert!(b.admit(later).is_ok(), "the trial");
        assert!(b.admit(later).is_err(), "others wait for the trial");
        b.success();
        assert!(b.is_closed());
        assert_eq!(b.consecutive_failures(), 0);
        assert!(b.admit(later).is_ok());
    }

    #[test]
    fn a_failed_trial_reopens_for_a_new_window_without_a_new_warning() {
        let t0 = Instant::now();
        let mut b = Breaker::new();
        fail_n(&mut b, t0, 3);
        let later = t0 + OPEN_WINDOW + Duration::from_secs(5);
        assert!(b.admit(later).is_ok());
        assert!(!b.failure(later), "already open: no second warning");
        assert!(b
            .admit(later + OPEN_WINDOW - Duration::from_millis(1))
            .is_err());
        assert!(b.admit(later + OPEN_WINDOW).is_ok());
    }

    #[test]
    fn a_lost_trial_costs_one_more_window() {
        let t0 = Instant::now();
        let mut b = Breaker::new();
        fail_n(&mut b, t0, 3);
        assert!(b.admit(t0 + OPEN_WINDOW).is_ok()); // never reports back
        assert!(b
            .admit(t0 + OPEN_WINDOW * 2 - Duration::from_millis(1))
            .is_err());
        assert!(b.admit(t0 + OPEN_WINDOW * 2).is_ok());
    }
}
