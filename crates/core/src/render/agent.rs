//! The agent view: the one line HAProxy's agent-check reads, which sets
//! the server's weight and state (`up ready 100%`, a warning's weight,
//! `drain`, `down #REASON`). Telling an agent from an HTTP client is
//! [`agent`](crate::agent)'s.

use crate::agent::AgentSettings;
use crate::outcome::{worst, CheckResult, State, NO_CHECK};

/// The agent's line for `results` (the route's checks): a failure wins,
/// then a disabled check, then a warning. `up` only when checks ran and
/// passed: no check is `down`.
pub fn line(results: &[CheckResult], settings: &AgentSettings) -> String {
    if results.is_empty() {
        return format!("down #{NO_CHECK}\n");
    }
    match worst(results) {
        State::Pass => "up ready 100%\n".into(),
        State::Warn => format!("up ready {}%\n", settings.warning_weight.clamp(1, 100)),
        State::Disabled => "drain\n".into(),
        State::Fail => {
            let reasons: Vec<String> = results
                .iter()
                .filter(|r| r.state() == State::Fail)
                .map(|r| match results.len() {
                    1 => r.outcome.reason().to_owned(),
                    _ => format!("{}: {}", r.name, r.outcome.reason()),
                })
                .collect();
            format!("down #{}\n", description(&reasons.join("; ")))
        }
    }
}

/// A reason as HAProxy's agent description: one line of printable ASCII
/// (it ends at the line's end, and `#` starts it), at most 120 characters.
fn description(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .take(120)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::Verdict;
    use crate::outcome::sample_result as result;

    #[test]
    fn lines_for_each_state() {
        let s = AgentSettings::default();
        assert_eq!(
            line(&[result("a", Verdict::healthy("ok"))], &s),
            "up ready 100%\n"
        );
        assert_eq!(
            line(&[result("a", Verdict::warning("meh"))], &s),
            "up ready 50%\n"
        );
        let custom = AgentSettings {
            warning_weight: 25,
            ..s.clone()
        };
        assert_eq!(
            line(&[result("a", Verdict::warning("meh"))], &custom),
            "up ready 25%\n"
        );
        let disabled = Verdict {
            disabled: true,
            ..Verdict::unhealthy("disabled by operator (x exists)")
        };
        assert_eq!(line(&[result("a", disabled.clone())], &s), "drain\n");
        // Up only when checks ran: none is down.
        assert_eq!(line(&[], &s), "down #no check selected\n");
        assert_eq!(
            line(&[result("a", Verdict::unhealthy("exit status 2"))], &s),
            "down #exit status 2\n"
        );
        // Down beats drain; the reason cannot break the line.
        assert_eq!(
            line(
                &[
                    result("a", disabled),
                    result("b", Verdict::unhealthy("bad\nup 100%\r# é"))
                ],
                &s
            ),
            "down #b: bad?up 100%?# ?\n"
        );
    }
}
