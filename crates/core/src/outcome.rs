//! What the checks of an answer came to, as data: one [`CheckResult`] per
//! check, the [`State`] each counts as, and what they add up to (the
//! [`worst`] state, the [`status`] code, the [`summary`] line). The
//! formats in [`render`](crate::render) and the agent's line are views of
//! these; nothing here knows a format.
//!
//! The outcome nouns, from the check outwards:
//! - [`Verdict`](crate::Verdict): what a check says: its health, a public reason, the
//!   detail for the log, its facts and performance data.
//! - [`Outcome`]: a verdict with the time the check took, and the error
//!   when the probe could not run at all ([`run_check`](crate::run_check)
//!   makes one).
//! - [`CheckResult`]: an outcome of a named check, as the answer needs it:
//!   when it finished, and what its spec says of warnings and output.
//! - [`Answer`](crate::Answer): what to send for a request (status,
//!   headers, body), with its public reason and the check results
//!   ([`Service::answer`](crate::Service::answer) makes one).
//! - [`Served`](crate::Served): what a connection did, for
//!   the log: the request, the status sent, the reason, how it ended, and
//!   the check results.

use std::time::SystemTime;

use crate::check::{Health, Outcome};

/// One check's outcome, with what the answer needs to know of its spec.
#[derive(Debug)]
pub struct CheckResult {
    /// The check's name.
    pub name: String,
    /// What it found.
    pub outcome: Outcome,
    /// When it finished.
    pub at: SystemTime,
    /// A warning takes the backend out.
    pub warning_is_down: bool,
    /// The detail may go into bodies.
    pub show_output: bool,
}

/// How a check's outcome counts toward the answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum State {
    /// Healthy.
    Pass,
    /// A warning that still takes traffic.
    Warn,
    /// Disabled by the operator (the disable file).
    Disabled,
    /// Down, undecided, or a warning that counts as down.
    Fail,
}

impl CheckResult {
    /// How this outcome counts.
    pub fn state(&self) -> State {
        let verdict = &self.outcome.verdict;
        match verdict.health {
            _ if verdict.disabled => State::Disabled,
            Health::Healthy => State::Pass,
            Health::Warning if !self.warning_is_down => State::Warn,
            Health::Warning | Health::Unhealthy | Health::Unknown => State::Fail,
        }
    }
}

/// The status codes a poller reads, where there is a choice.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Statuses {
    /// For a warning that takes traffic: 200, or 429 (Consul's warning).
    pub warning: u16,
    /// For a disabled check: 503, or 404 (HAProxy's `http-check
    /// disable-on-404` drains without marking the server down).
    pub disabled: u16,
}

impl Default for Statuses {
    fn default() -> Self {
        Statuses {
            warning: 200,
            disabled: 503,
        }
    }
}

/// What an answer that ran no check says: nothing was decided, so nothing
/// is healthy (`?exclude=` left no check of the route).
pub const NO_CHECK: &str = "no check selected";

/// The worst state of `results`; `Fail` for none: a selection that ran no
/// check has decided nothing, and must never read as healthy.
pub fn worst(results: &[CheckResult]) -> State {
    results
        .iter()
        .map(CheckResult::state)
        .max()
        .unwrap_or(State::Fail)
}

/// The status code: 503 when any check fails (or none ran), else the
/// disabled status when any is disabled, else the warning status when any
/// warns, else 200.
pub fn status(results: &[CheckResult], statuses: &Statuses) -> u16 {
    match worst(results) {
        State::Pass => 200,
        State::Warn => statuses.warning,
        State::Disabled => statuses.disabled,
        State::Fail => 503,
    }
}

/// The summary of several checks, as the first (or last) line of a body.
pub fn summary(results: &[CheckResult]) -> String {
    let n = results.len();
    if n == 0 {
        return format!("unknown: {NO_CHECK}");
    }
    let count = |s: State| results.iter().filter(|r| r.state() == s).count();
    let checks = if n == 1 { "check" } else { "checks" };
    match worst(results) {
        State::Pass => format!("healthy: {n} {checks} passed"),
        State::Warn => format!(
            "warning: {n} {checks} passed, {} with a warning",
            count(State::Warn)
        ),
        State::Disabled => format!(
            "disabled: {} of {n} {checks} disabled by operator",
            count(State::Disabled)
        ),
        State::Fail => {
            let failed: Vec<&CheckResult> = results
                .iter()
                .filter(|r| r.state() == State::Fail)
                .collect();
            // Undecided only when nothing is known down.
            let word = if failed.iter().all(|r| r.outcome.health() == Health::Unknown) {
                "unknown"
            } else {
                "unhealthy"
            };
            format!("{word}: {} of {n} {checks} failed", failed.len())
        }
    }
}

/// A result of `verdict` for unit tests: 12 ms, at a fixed time.
#[cfg(test)]
pub(crate) fn sample_result(name: &str, verdict: crate::check::Verdict) -> CheckResult {
    use std::time::Duration;
    CheckResult {
        name: name.into(),
        outcome: Outcome {
            verdict,
            error: None,
            elapsed: Duration::from_millis(12),
        },
        at: std::time::UNIX_EPOCH + Duration::from_secs(784_111_777),
        warning_is_down: false,
        show_output: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::Verdict;

    fn result(name: &str, verdict: Verdict) -> CheckResult {
        sample_result(name, verdict)
    }

    #[test]
    fn status_follows_the_worst_check() {
        let s = Statuses::default();
        let consul = Statuses {
            warning: 429,
            disabled: 404,
        };
        let ok = || result("a", Verdict::healthy("ok"));
        let warn = || result("b", Verdict::warning("meh"));
        let down = || result("c", Verdict::unhealthy("down"));
        let disabled = || {
            result(
                "d",
                Verdict {
                    disabled: true,
                    ..Verdict::unhealthy("disabled by operator (x exists)")
                },
            )
        };
        assert_eq!(status(&[ok()], &s), 200);
        // A selection that ran nothing is not healthy.
        assert_eq!(status(&[], &s), 503);
        assert_eq!(status(&[], &consul), 503);
        assert_eq!(status(&[ok(), warn()], &s), 200);
        assert_eq!(status(&[ok(), warn()], &consul), 429);
        assert_eq!(status(&[ok(), disabled()], &s), 503);
        assert_eq!(status(&[warn(), disabled()], &consul), 404);
        // Down beats drained: a node that is down must not only drain.
        assert_eq!(status(&[down(), disabled()], &consul), 503);
        let strict = CheckResult {
            warning_is_down: true,
            ..warn()
        };
        assert_eq!(status(&[ok(), strict], &consul), 503);
        assert_eq!(status(&[result("u", Verdict::unknown("?"))], &consul), 503);
    }
}
