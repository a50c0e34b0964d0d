//! The text view (`text/plain`): the single-check answer, or a summary
//! and a line per check. Its marks and words are the Nagios view's too.

use std::fmt::Write as _;

use crate::check::Health;
use crate::http::Response;
use crate::outcome::{status, summary, CheckResult, State, Statuses};

/// A check's mark at the start of its line: `[+]`, `[!]`, `[-]`.
pub(super) fn mark(state: State) -> &'static str {
    match state {
        State::Pass => "[+]",
        State::Warn => "[!]",
        State::Disabled | State::Fail => "[-]",
    }
}

/// A check's word on its line: `ok`, `warning`, `disabled`, `failed`,
/// `unknown`.
pub(super) fn word(result: &CheckResult) -> &'static str {
    let verdict = &result.outcome.verdict;
    match verdict.health {
        _ if verdict.disabled => "disabled",
        Health::Healthy => "ok",
        Health::Warning => "warning",
        Health::Unhealthy => "failed",
        Health::Unknown => "unknown",
    }
}

fn push_detail(body: &mut String, result: &CheckResult, indent: &str) {
    if !result.show_output {
        return;
    }
    if let Some(detail) = &result.outcome.verdict.detail {
        for line in String::from_utf8_lossy(detail).lines() {
            let _ = writeln!(body, "{indent}{line}");
        }
    }
}

/// The text body. One check, not verbose: `<health>: <reason>` (and the
/// detail if shown), as the single-check command always answered. Verbose:
/// a line per check (`[+]db ok: …`, `[-]disk failed: …`) then the
/// summary. Several checks, not verbose: the summary, then a line for each
/// check that did not pass.
pub fn text(results: &[CheckResult], verbose: bool, statuses: &Statuses) -> Response {
    let mut body = String::new();
    match results {
        [one] if !verbose => {
            let verdict = &one.outcome.verdict;
            let _ = writeln!(body, "{}: {}", verdict.health, verdict.reason);
            push_detail(&mut body, one, "");
        }
        _ => {
            if !verbose {
                let _ = writeln!(body, "{}", summary(results));
            }
            for r in results {
                if verbose || r.state() != State::Pass {
                    let _ = writeln!(
                        body,
                        "{}{} {}: {}",
                        mark(r.state()),
                        r.name,
                        word(r),
                        one_line(&r.outcome.verdict.reason)
                    );
                    push_detail(&mut body, r, "    ");
                }
            }
            if verbose {
                let _ = writeln!(body, "{}", summary(results));
            }
        }
    }
    Response::text(status(results, statuses), body)
}

/// `text` on one line: line breaks become spaces.
pub(super) fn one_line(text: &str) -> String {
    text.replace(['\r', '\n'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::Verdict;
    use crate::outcome::sample_result as result;
    use crate::render::tests::body;

    #[test]
    fn one_check_text_is_the_single_check_answer() {
        let r = text(
            &[result("db", Verdict::unhealthy("access denied"))],
            false,
            &Statuses::default(),
        );
        assert_eq!(
            (r.status(), body(&r).as_str()),
            (503, "unhealthy: access denied\n")
        );
        let mut shown = result(
            "x",
            Verdict::healthy("exit status 0").with_detail(b"out\n".to_vec()),
        );
        assert_eq!(
            body(&text(&[shown], false, &Statuses::default())),
            "healthy: exit status 0\n"
        );
        shown = CheckResult {
            show_output: true,
            ..result(
                "x",
                Verdict::healthy("exit status 0").with_detail(b"out\n".to_vec()),
            )
        };
        assert_eq!(
            body(&text(&[shown], false, &Statuses::default())),
            "healthy: exit status 0\nout\n"
        );
    }

    #[test]
    fn several_checks_in_text() {
        let results = [
            result("galera", Verdict::healthy("synced")),
            result(
                "disk",
                Verdict::unhealthy("DISK CRITICAL - free space: / 1%"),
            ),
            result("port", Verdict::warning("slow\nsecond line")),
        ];
        let r = text(&results, false, &Statuses::default());
        assert_eq!(
            (r.status(), body(&r).as_str()),
            (
                503,
                "unhealthy: 1 of 3 checks failed\n\
                 [-]disk failed: DISK CRITICAL - free space: / 1%\n\
                 [!]port warning: slow second line\n"
            )
        );
        let r = text(&results, true, &Statuses::default());
        assert_eq!(
            body(&r),
            "[+]galera ok: synced\n\
             [-]disk failed: DISK CRITICAL - free space: / 1%\n\
             [!]port warning: slow second line\n\
             unhealthy: 1 of 3 checks failed\n"
        );
        let fine = [
            result("a", Verdict::healthy("x")),
            result("b", Verdict::healthy("y")),
        ];
        assert_eq!(
            body(&text(&fine, false, &Statuses::default())),
            "healthy: 2 checks passed\n"
        );
        let unknown = [
            result("a", Verdict::healthy("x")),
            result("b", Verdict::unknown("checker failure: z")),
        ];
        assert_eq!(
            body(&text(&unknown, false, &Statuses::default())),
            "unknown: 1 of 2 checks failed\n[-]b unknown: checker failure: z\n"
        );
    }
}
