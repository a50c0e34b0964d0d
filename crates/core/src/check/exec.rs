//! `exec`: run a program, read its exit status.
//!
//! By default exit 0 is healthy and anything else (any nonzero exit, a
//! signal, the deadline) is unhealthy, as Kubernetes exec probes, Docker's
//! `HEALTHCHECK` and systemd read it: `mysqladmin ping`, `grep -q`,
//! `test -f` and most scripts exit 1 on failure, and a check must never
//! send traffic to a backend its command called dead.
//!
//! [`Convention::Nagios`] opts into the plugin convention (0 OK, 1 WARNING,
//! 2 CRITICAL, 3 and anything else UNKNOWN), with the plugin's status text
//! as the reason and its performance data kept on the verdict.

use std::ffi::OsString;

use super::nagios::{health_of_exit_code, PluginOutput};
use super::{human_duration, Check, CheckError, Health, Verdict};
use crate::process::{self, Exit};
use crate::Deadline;

/// Output kept from a check program by default: enough for a plugin's status
/// line and some perfdata, little enough to never matter.
pub const DEFAULT_CAPTURE: usize = 4096;

/// How a program's exit is read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Convention {
    /// Exit 0 healthy, anything else unhealthy; the output is private
    /// detail.
    #[default]
    ExitZero,
    /// The Nagios plugin convention: 0 OK, 1 WARNING, 2 CRITICAL, anything
    /// else UNKNOWN; the first line of output (before `|`) is the public
    /// reason, the performance data is kept.
    Nagios,
}

/// Longest plugin status text put in a reason; a plugin that prints more
/// on its first line is cut (the whole output stays in the detail).
const MAX_STATUS_TEXT: usize = 200;

/// Runs a program by argv, without a shell.
#[derive(Clone, Debug)]
pub struct ExecCheck {
    argv: Vec<OsString>,
    capture_limit: usize,
    convention: Convention,
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
            convention: Convention::default(),
        })
    }

    /// Reads the program's exit as `convention` says.
    pub fn convention(mut self, convention: Convention) -> Self {
        self.convention = convention;
        self
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
        // Perfdata labels a plugin repeated: the log's detail says which
        // were dropped.
        let mut repeated = None;
        let verdict = match (done.exit, self.convention) {
            (Exit::Exited(0), Convention::ExitZero) => Verdict::healthy("exit status 0"),
            (Exit::Exited(n), Convention::ExitZero) => {
                Verdict::unhealthy(format!("exit status {n}"))
            }
            (Exit::Exited(n), Convention::Nagios) => {
                let (verdict, note) = plugin_verdict(n, &done.output);
                repeated = note;
                verdict
            }
            (Exit::Signaled(s), _) => Verdict::unhealthy(format!("killed by signal {s}")),
            (Exit::TimedOut, _) => Verdict::unhealthy(format!(
                "timed out after {}, check killed",
                human_duration(done.elapsed)
            )),
        };
        let mut detail = done.output;
        if done.truncated {
            detail.extend_from_slice(b"\n[output truncated]\n");
        }
        if let Some(repeated) = &repeated {
            detail.extend_from_slice(repeated.as_bytes());
        }
        Ok(verdict.with_detail(detail))
    }
}

/// A plugin's verdict: its exit code read the Nagios way, its status text
/// as the reason (one printable line, bounded), its performance data kept.
/// The second value notes the performance data labels that were repeated
/// (the later data dropped), for the detail.
fn plugin_verdict(code: i32, output: &[u8]) -> (Verdict, Option<String>) {
    let health = health_of_exit_code(code);
    let parsed = PluginOutput::parse(output);
    let text: String = parsed
        .text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MAX_STATUS_TEXT)
        .collect();
    let reason = match (health, text.is_empty()) {
        // A code the guidelines do not define says nothing the text can be
        // trusted for: name it.
        (Health::Unknown, false) if code != 3 => format!("exit status {code}: {text}"),
        (_, false) => text,
        (_, true) => format!("exit status {code}"),
    };
    let mut verdict = Verdict::new(health, reason);
    verdict.perfdata = parsed.perfdata;
    let note = (!parsed.repeated.is_empty()).then(|| {
        format!(
            "\n[performance data labels repeated, later values dropped: {}]\n",
            parsed.repeated.join(", ")
        )
    });
    (verdict, note)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::Health;
    use std::time::Duration;

    fn run(argv: &[&str], budget_ms: u64) -> Verdict {
        run_as(Convention::ExitZero, argv, budget_ms)
    }

    fn run_as(convention: Convention, argv: &[&str], budget_ms: u64) -> Verdict {
        ExecCheck::new(argv)
            .unwrap()
            .convention(convention)
            .run(Deadline::after(Duration::from_millis(budget_ms)))
            .unwrap()
    }

    #[test]
    fn any_failure_is_unhealthy_by_default() {
        assert_eq!(run(&["true"], 5000).health, Health::Healthy);
        for (argv, reason) in [
            (&["false"][..], "exit status 1"),
            (
                &["sh", "-c", "echo CRITICAL - disk full; exit 2"],
                "exit status 2",
            ),
            (&["sh", "-c", "exit 3"], "exit status 3"),
            (&["sh", "-c", "exit 255"], "exit status 255"),
            (&["sh", "-c", "kill -TERM $$"], "killed by signal 15"),
        ] {
            let v = run(argv, 5000);
            assert_eq!((v.health, v.reason.as_str()), (Health::Unhealthy, reason));
        }
        let v = run(&["sh", "-c", "echo CRITICAL - disk full; exit 2"], 5000);
        assert_eq!(
            v.detail.as_deref(),
            Some(b"CRITICAL - disk full\n".as_slice())
        );
        assert!(v.perfdata.is_empty());
    }

    #[test]
    fn nagios_convention_reads_codes_text_and_perfdata() {
        let nagios = |script: &str| run_as(Convention::Nagios, &["sh", "-c", script], 5000);
        for (script, health, reason) in [
            ("echo 'OK - fine|a=1'", Health::Healthy, "OK - fine"),
            ("echo 'WARN - meh'; exit 1", Health::Warning, "WARN - meh"),
            ("echo 'CRIT - bad'; exit 2", Health::Unhealthy, "CRIT - bad"),
            (
                "echo 'UNKNOWN - eh'; exit 3",
                Health::Unknown,
                "UNKNOWN - eh",
            ),
            ("echo 'odd'; exit 4", Health::Unknown, "exit status 4: odd"),
            ("exit 1", Health::Warning, "exit status 1"),
            ("printf 'a\\tb\\033[2J\\n'", Health::Healthy, "a b [2J"),
        ] {
            let v = nagios(script);
            assert_eq!((v.health, v.reason.as_str()), (health, reason), "{script}");
        }
        let v = nagios("echo 'OK|load1=0.5;1;2;0 '\\''x y'\\''=3MB'");
        assert_eq!(v.perfdata.len(), 2, "{v:?}");
        assert_eq!(v.perfdata[1].label, "x y");
        assert_eq!(v.perfdata[1].uom, "MB");
        let long = nagios("printf 'x%.0s' $(seq 1 500)");
        assert_eq!(long.reason.len(), MAX_STATUS_TEXT);
        // Signals and the deadline are critical under either convention.
        assert_eq!(nagios("kill -KILL $$").health, Health::Unhealthy);
        assert_eq!(
            run_as(Convention::Nagios, &["sleep", "5"], 100).health,
            Health::Unhealthy
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
