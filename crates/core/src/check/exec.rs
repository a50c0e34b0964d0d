//! `exec`: run a program, read its exit status the Nagios way.
//!
//! Exit 0 is healthy, 1 a warning, anything else (2 critical, 3 unknown, a
//! crash, the deadline) unhealthy: the plugin convention, so the many Nagios
//! and Icinga plugins already on a host work as checks unchanged.

use std::ffi::OsString;

use super::{human_duration, Check, CheckError, Verdict};
use crate::process::{self, Ending};
use crate::Deadline;

/// Output kept from a check program by default: enough for a plugin's status
/// line and some perfdata, little enough to never matter.
pub const DEFAULT_CAPTURE: usize = 4096;

/// Runs a program by argv, without a shell.
#[derive(Clone, Debug)]
pub struct ExecCheck {
    argv: Vec<OsString>,
    capture_limit: usize,
}

impl ExecCheck {
    /// A check running `argv[0]` with the rest as its arguments.
    ///
    /// # Errors
    /// [`CheckError::Process`] when `argv` is empty.
    pub fn new<I, S>(argv: I) -> Result<Self, CheckError>
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        let argv: Vec<OsString> = argv.into_iter().map(Into::into).collect();
        if argv.is_empty() {
            return Err(process::ProcessError::NoProgram.into());
        }
        Ok(ExecCheck {
            argv,
            capture_limit: DEFAULT_CAPTURE,
        })
    }

    /// Keeps at most `limit` bytes of the program's output.
    pub fn capture_limit(mut self, limit: usize) -> Self {
        self.capture_limit = limit;
        self
    }
}

impl Check for ExecCheck {
    fn run(&self, deadline: Deadline) -> Result<Verdict, CheckError> {
        let done = process::run(&self.argv, deadline, self.capture_limit)?;
        let verdict = match done.ending {
            Ending::Exited(0) => Verdict::healthy("exit status 0"),
            Ending::Exited(1) => Verdict::warning("exit status 1"),
            Ending::Exited(n) => Verdict::unhealthy(format!("exit status {n}")),
            Ending::Signaled(s) => Verdict::unhealthy(format!("killed by signal {s}")),
            Ending::TimedOut => Verdict::unhealthy(format!(
                "timed out after {}, check killed",
                human_duration(done.elapsed)
            )),
        };
        let mut detail = done.output;
        if done.truncated {
            detail.extend_from_slice(b"\n[output truncated]\n");
        }
        Ok(verdict.with_detail(detail))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::Health;
    use std::time::Duration;

    fn run(argv: &[&str], budget_ms: u64) -> Verdict {
        ExecCheck::new(argv)
            .unwrap()
            .run(Deadline::after(Duration::from_millis(budget_ms)))
            .unwrap()
    }

    #[test]
    fn nagios_convention() {
        assert_eq!(run(&["true"], 5000).health, Health::Healthy);
        assert_eq!(run(&["false"], 5000).health, Health::Warning);
        let v = run(&["sh", "-c", "echo CRITICAL - disk full; exit 2"], 5000);
        assert_eq!(
            (v.health, v.reason.as_str()),
            (Health::Unhealthy, "exit status 2")
        );
        assert_eq!(
            v.detail.as_deref(),
            Some(b"CRITICAL - disk full\n".as_slice())
        );
        assert_eq!(run(&["sh", "-c", "exit 3"], 5000).health, Health::Unhealthy);
        assert_eq!(
            run(&["sh", "-c", "kill -TERM $$"], 5000).reason,
            "killed by signal 15"
        );
    }

    #[test]
    fn deadline_is_unhealthy_with_a_reason() {
        let v = run(&["sleep", "5"], 200);
        assert_eq!(v.health, Health::Unhealthy);
        assert!(v.reason.starts_with("timed out after "), "{}", v.reason);
    }

    #[test]
    fn no_shell_means_metacharacters_are_arguments() {
        let v = run(&["echo", "$(id)", ";", "|"], 5000);
        assert_eq!(v.detail.as_deref(), Some(b"$(id) ; |\n".as_slice()));
    }

    #[test]
    fn truncation_is_marked() {
        let v = ExecCheck::new(["sh", "-c", "seq 1 1000"])
            .unwrap()
            .capture_limit(4)
            .run(Deadline::after(Duration::from_secs(5)))
            .unwrap();
        assert_eq!(
            v.detail.as_deref(),
            Some(b"1\n2\n\n[output truncated]\n".as_slice())
        );
    }

    #[test]
    fn empty_argv_is_refused() {
        assert!(ExecCheck::new(Vec::<String>::new()).is_err());
    }
}
