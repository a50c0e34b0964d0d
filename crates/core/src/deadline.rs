//! One deadline per connection, computed once and passed down.
//!
//! Every blocking step (reading the request, connecting, waiting for a child)
//! takes a [`Deadline`] rather than a timeout of its own, so the steps share one
//! budget and a slow first step leaves less time, not more, for the next.

use std::time::{Duration, Instant};

/// A point in time after which a step gives up.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Deadline {
    at: Instant,
}

impl Deadline {
    /// A deadline `budget` from now.
    ///
    /// A budget too large to represent is clamped to about a century, which
    /// every caller treats as "no practical limit".
    pub fn after(budget: Duration) -> Self {
        let now = Instant::now();
        let at = now
            .checked_add(budget)
            .unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 24 * 3600));
        Deadline { at }
    }

    /// A deadline at a given instant.
    pub fn at(at: Instant) -> Self {
        Deadline { at }
    }

    /// The instant this deadline falls at.
    pub fn instant(&self) -> Instant {
        self.at
    }

    /// Time left, zero once passed.
    pub fn remaining(&self) -> Duration {
        self.at.saturating_duration_since(Instant::now())
    }

    /// Whether the deadline has passed.
    pub fn expired(&self) -> bool {
        Instant::now() >= self.at
    }

    /// The earlier of two deadlines.
    pub fn min(self, other: Deadline) -> Deadline {
        if other.at < self.at {
            other
        } else {
            self
        }
    }

    /// Time left in milliseconds for `poll(2)`, rounded up so that a wait never
    /// ends just before the deadline and spins on a zero timeout.
    pub(crate) fn poll_timeout_ms(&self) -> libc::c_int {
        let left = self.remaining();
        if left.is_zero() {
            return 0;
        }
        let ms = left.as_nanos().div_ceil(1_000_000);
        ms.min(libc::c_int::MAX as u128) as libc::c_int
    }
}

/// Measures how long something took; the one other place that reads the clock.
#[derive(Clone, Copy, Debug)]
pub struct Stopwatch {
    start: Instant,
}

impl Stopwatch {
    /// Starts measuring now.
    pub fn start() -> Self {
        Stopwatch {
            start: Instant::now(),
        }
    }

    /// Time since [`Stopwatch::start`].
    pub fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remaining_is_zero_once_passed() {
        let d = Deadline::at(Instant::now() - Duration::from_millis(5));
        assert!(d.expired());
        assert_eq!(d.remaining(), Duration::ZERO);
        assert_eq!(d.poll_timeout_ms(), 0);
    }

    #[test]
    fn poll_timeout_rounds_up() {
        let d = Deadline::after(Duration::from_micros(1500));
        let ms = d.poll_timeout_ms();
        assert!((1..=2).contains(&ms), "{ms}");
    }

    #[test]
    fn huge_budget_does_not_overflow() {
        let d = Deadline::after(Duration::MAX);
        assert!(d.remaining() > Duration::from_secs(365 * 24 * 3600));
        assert_eq!(d.poll_timeout_ms(), libc::c_int::MAX);
    }

    #[test]
    fn min_picks_the_earlier() {
        let a = Deadline::after(Duration::from_secs(1));
        let b = Deadline::after(Duration::from_secs(10));
        assert_eq!(a.min(b), a);
        assert_eq!(b.min(a), a);
    }
}
