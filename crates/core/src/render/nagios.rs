//! The Nagios view: a plugin's output and exit code, for `--once`.

use std::fmt::Write as _;

use super::text::{mark, one_line, word};
use crate::check::nagios::{exit_code_of, word_of};
use crate::check::{human_duration, Health, PerfData};
use crate::outcome::{summary, CheckResult, State};

/// A check's performance data: a plugin's, then the facts a plugin
/// would report (a standby's lags).
fn own_perfdata(r: &CheckResult) -> impl Iterator<Item = PerfData> + '_ {
    let verdict = &r.outcome.verdict;
    verdict
        .perfdata
        .iter()
        .cloned()
        .chain(verdict.facts.iter().filter_map(|f| f.perfdata()))
}

/// `--once`: the Nagios plugin output for `results` and the exit code, the
/// worst of them. One check: `WORD: reason (time)`; several: the summary
/// first, then a line per check. Performance data follows ` | ` on the
/// first line, each datum's label prefixed `CHECK:` when there are several
/// checks.
pub fn nagios(results: &[CheckResult]) -> (String, i32) {
    let code_of = |r: &CheckResult| match r.state() {
        State::Pass => 0,
        State::Warn => 1,
        // A disabled check is down, a warning that counts as down critical.
        State::Disabled => 2,
        State::Fail => exit_code_of(r.outcome.health()).max(2),
    };
    // No check decided nothing: UNKNOWN.
    let code = results.iter().map(code_of).max().unwrap_or(3);
    let worst_word = word_of(match code {
        0 => Health::Healthy,
        1 => Health::Warning,
        2 => Health::Unhealthy,
        _ => Health::Unknown,
    });
    let mut perfdata: Vec<String> = Vec::new();
    let mut out = String::new();
    match results {
        [one] => {
            perfdata.extend(own_perfdata(one).map(|p| p.to_string()));
            let _ = write!(
                out,
                "{}: {} ({})",
                word_of(one.outcome.health()),
                one.outcome.reason(),
                human_duration(one.outcome.elapsed)
            );
        }
        _ => {
            for r in results {
                perfdata.extend(own_perfdata(r).map(|p| {
                    PerfData {
                        label: format!("{}:{}", r.name, p.label),
                        ..p
                    }
                    .to_string()
                }));
            }
            let summary = summary(results);
            let text = summary
                .split_once(": ")
                .map_or(summary.as_str(), |(_, t)| t);
            let _ = write!(out, "{worst_word}: {text}");
        }
    }
    if !perfdata.is_empty() {
        let _ = write!(out, " | {}", perfdata.join(" "));
    }
    out.push('\n');
    if results.len() > 1 {
        for r in results {
            let _ = writeln!(
                out,
                "{}{} {}: {} ({})",
                mark(r.state()),
                r.name,
                word(r),
                one_line(r.outcome.reason()),
                human_duration(r.outcome.elapsed)
            );
        }
    }
    (out, code)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::{PluginOutput, Verdict};
    use crate::outcome::sample_result as result;

    #[test]
    fn nagios_output_for_one_and_for_several() {
        let mut disk = result("disk", Verdict::unhealthy("DISK CRITICAL"));
        disk.outcome.verdict.perfdata = PluginOutput::parse(b"|/=1B").perfdata;
        let (out, code) = nagios(&[disk]);
        assert_eq!(
            (out.as_str(), code),
            ("CRITICAL: DISK CRITICAL (12ms) | /=1B\n", 2)
        );
        let mut disk = result("disk", Verdict::unhealthy("DISK CRITICAL"));
        disk.outcome.verdict.perfdata = PluginOutput::parse(b"|/=1B").perfdata;
        let (out, code) = nagios(&[result("db", Verdict::healthy("alive")), disk]);
        assert_eq!(
            (out.as_str(), code),
            (
                "CRITICAL: 1 of 2 checks failed | disk:/=1B\n[+]db ok: alive (12ms)\n[-]disk failed: DISK CRITICAL (12ms)\n",
                2
            )
        );
        let (_, code) = nagios(&[
            result("a", Verdict::unknown("x")),
            result("b", Verdict::warning("y")),
        ]);
        assert_eq!(code, 3);
    }
}
