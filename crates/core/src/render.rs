//! Rendering: outcomes are data, formats are views of them.
//!
//! Every answer is made here from a list of [`CheckResult`]s: the status
//! code ([`status`]), and the body as text ([`text`]), JSON in the shape of
//! draft-inadarei-api-health-check ([`json`]), the Prometheus text
//! exposition format 0.0.4 ([`prometheus`]), or a Nagios plugin's output
//! for `--once` ([`nagios`]). Which one a client gets is [`negotiate`]d
//! from `?format=` or its `Accept` header.
//!
//! Only public reasons reach a body; a check's detail (program output,
//! server messages) only where its spec says `show-output`.

use std::fmt::Write as _;
use std::time::{Duration, SystemTime};

use crate::check::nagios::{exit_code_of, word_of};
use crate::check::{human_duration, Health, Outcome, PerfData};
use crate::http::{rfc3339, Response};

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

/// A body format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// `text/plain`: one line per check or a summary.
    Text,
    /// draft-inadarei-api-health-check, as `application/health+json` or,
    /// when that is what the client asked for, `application/json`.
    Json {
        /// Label the body `application/json`.
        plain: bool,
    },
    /// Prometheus text exposition format 0.0.4.
    Prometheus,
}

/// The content type of JSON bodies.
pub const HEALTH_JSON: &str = "application/health+json";
/// The content type of Prometheus bodies.
pub const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Chooses the format: `?format=` wins; then the `Accept` header's most
/// preferred type that we serve (by `q`, then by order); text by default.
///
/// # Errors
/// An unknown `?format=` value, with what is known.
pub fn negotiate(query: Option<&str>, accept: Option<&str>) -> Result<Format, String> {
    if let Some(f) = query {
        return match f {
            "text" => Ok(Format::Text),
            "json" => Ok(Format::Json { plain: false }),
            "prometheus" | "metrics" => Ok(Format::Prometheus),
            other => Err(format!(
                "unknown format {other:?}: use format=text, json or prometheus"
            )),
        };
    }
    let Some(accept) = accept else {
        return Ok(Format::Text);
    };
    let mut best: Option<(f32, Format)> = None;
    for item in accept.split(',') {
        let mut parts = item.split(';').map(str::trim);
        let media = parts.next().unwrap_or("").to_ascii_lowercase();
        let (mut q, mut version) = (1.0f32, None);
        for param in parts {
            if let Some((k, v)) = param.split_once('=') {
                match k.trim().to_ascii_lowercase().as_str() {
                    "q" => q = v.trim().parse().unwrap_or(0.0),
                    "version" => version = Some(v.trim().trim_matches('"').to_owned()),
                    _ => {}
                }
            }
        }
        let format = match media.as_str() {
            "application/health+json" => Format::Json { plain: false },
            "application/json" => Format::Json { plain: true },
            "application/openmetrics-text" => Format::Prometheus,
            "text/plain" if version.as_deref() == Some("0.0.4") => Format::Prometheus,
            "text/plain" | "text/*" | "*/*" => Format::Text,
            _ => continue,
        };
        if q > 0.0 && best.is_none_or(|(b, _)| q > b) {
            best = Some((q, format));
        }
    }
    Ok(best.map_or(Format::Text, |(_, f)| f))
}

/// Renders `results` in `format`, with the route's status whatever the
/// format: a poller that asks a health route for Prometheus text still
/// reads 503 when a check fails. Only `/metrics` is always 200
/// ([`render_metrics`]).
pub fn render(
    format: Format,
    results: &[CheckResult],
    verbose: bool,
    statuses: &Statuses,
) -> Response {
    match format {
        Format::Text => text(results, verbose, statuses),
        Format::Json { plain } => json(results, statuses, plain),
        Format::Prometheus => prometheus_with_status(results, status(results, statuses)),
    }
}

/// Renders `results` for `/metrics`: 200 in every format, since
/// Prometheus counts any other status as a failed scrape and would lose
/// the very series that say what failed.
pub fn render_metrics(
    format: Format,
    results: &[CheckResult],
    verbose: bool,
    statuses: &Statuses,
) -> Response {
    match format {
        Format::Prometheus => prometheus(results),
        other => render(other, results, verbose, statuses).with_status(200),
    }
}

fn mark(state: State) -> &'static str {
    match state {
        State::Pass => "[+]",
        State::Warn => "[!]",
        State::Disabled | State::Fail => "[-]",
    }
}

fn word(result: &CheckResult) -> &'static str {
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

fn one_line(text: &str) -> String {
    text.replace(['\r', '\n'], " ")
}

fn json_status(state: State) -> &'static str {
    match state {
        State::Pass => "pass",
        State::Warn => "warn",
        State::Disabled | State::Fail => "fail",
    }
}

/// A JSON string literal.
fn json_str(out: &mut String, text: &str) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            // The rest of C0, DEL and the line separators some parsers
            // (JavaScript before ES2019) choke on.
            c if c < ' ' || c == '\u{7f}' || c == '\u{2028}' || c == '\u{2029}' => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// A JSON number; JSON has no NaN or infinity, so those are `null`.
fn json_number(out: &mut String, v: f64) {
    if v.is_finite() {
        let _ = write!(out, "{v}");
    } else {
        out.push_str("null");
    }
}

fn seconds(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// The JSON body, draft-inadarei-api-health-check's shape: `status`
/// (`pass`, `warn`, `fail`), `output` when not passing, and `checks` keyed
/// by check name, each an array of one object with `status`, `output` (the
/// public reason), `time` (RFC 3339), `duration` (seconds, ours) and, when
/// served from the cache, `cached` and `cacheAge` (seconds). A check's
/// numbers are keys of their own, `NAME:MEASUREMENT` (`replica:lag`,
/// `disk:/`), with `observedValue` and `observedUnit`.
pub fn json(results: &[CheckResult], statuses: &Statuses, plain: bool) -> Response {
    let mut out = String::from("{\"status\":");
    let overall = worst(results);
    json_str(&mut out, json_status(overall));
    if overall != State::Pass {
        out.push_str(",\"output\":");
        json_str(&mut out, &summary(results));
    }
    out.push_str(",\"checks\":{");
    let mut first = true;
    let mut key = |out: &mut String, name: &str| {
        if !std::mem::take(&mut first) {
            out.push(',');
        }
        json_str(out, name);
        out.push_str(":[{");
    };
    for r in results {
        let verdict = &r.outcome.verdict;
        let status = json_status(r.state());
        let time = rfc3339(r.at);
        key(&mut out, &r.name);
        out.push_str("\"status\":");
        json_str(&mut out, status);
        out.push_str(",\"output\":");
        json_str(&mut out, &verdict.reason);
        out.push_str(",\"time\":");
        json_str(&mut out, &time);
        out.push_str(",\"duration\":");
        json_number(&mut out, seconds(r.outcome.elapsed));
        if let Some(age) = verdict.cached_age {
            out.push_str(",\"cached\":true,\"cacheAge\":");
            json_number(&mut out, seconds(age));
        }
        if r.show_output {
            if let Some(detail) = &verdict.detail {
                out.push_str(",\"detail\":");
                json_str(&mut out, &String::from_utf8_lossy(detail));
            }
        }
        out.push_str("}]");
        let mut measurement = |name: &str, value: Option<f64>, unit: &str| {
            key(&mut out, &format!("{}:{name}", r.name));
            out.push_str("\"status\":");
            json_str(&mut out, status);
            out.push_str(",\"observedValue\":");
            match value {
                Some(v) => json_number(&mut out, v),
                None => out.push_str("null"),
            }
            if !unit.is_empty() {
                out.push_str(",\"observedUnit\":");
                json_str(&mut out, unit);
            }
            out.push_str(",\"time\":");
            json_str(&mut out, &time);
            out.push_str("}]");
        };
        for fact in &verdict.facts {
            measurement(fact.name(), Some(fact.value()), fact.unit());
        }
        for p in &verdict.perfdata {
            measurement(&p.label, p.value, &p.uom);
        }
    }
    out.push_str("}}\n");
    let content_type = if plain {
        "application/json"
    } else {
        HEALTH_JSON
    };
    Response::with_body(status(results, statuses), content_type, out.into_bytes())
}

/// A Prometheus label value: `\`, `"` and newlines escaped, as the text
/// format requires.
fn label(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// A sample value: Go's float syntax, which Prometheus parses (`NaN`,
/// `+Inf`, `-Inf` included).
fn sample_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        format!("{v}")
    }
}

/// A performance datum in base units: its family's suffix and the value.
/// Seconds for time, bytes for sizes (the guidelines' KB, MB, GB, TB as
/// plugins print them: powers of 1024), a ratio for percentages, a
/// `_total` counter for `c`; unknown units stay as they are, named in a
/// `uom` label.
pub fn perfdata_in_base_units(p: &PerfData) -> Option<(&'static str, f64)> {
    let v = p.value?;
    // Divided rather than multiplied by a fraction: 150 ms is 0.15 s, not
    // 0.15000000000000002.
    let (suffix, factor, divisor) = match p.uom.as_str() {
        "s" => ("_seconds", 1.0, 1.0),
        "ms" => ("_seconds", 1.0, 1e3),
        "us" => ("_seconds", 1.0, 1e6),
        "%" => ("_ratio", 1.0, 100.0),
        "B" => ("_bytes", 1.0, 1.0),
        "KB" => ("_bytes", 1024.0, 1.0),
        "MB" => ("_bytes", 1024.0 * 1024.0, 1.0),
        "GB" => ("_bytes", 1024.0 * 1024.0 * 1024.0, 1.0),
        "TB" => ("_bytes", 1024.0 * 1024.0 * 1024.0 * 1024.0, 1.0),
        "c" => ("_total", 1.0, 1.0),
        _ => ("", 1.0, 1.0),
    };
    Some((suffix, v * factor / divisor))
}

/// A per-check gauge's value.
type Gauge = fn(&CheckResult) -> f64;

/// The Prometheus body (text exposition format 0.0.4): one gauge family per
/// fact, each with HELP and TYPE, every series labelled `check="NAME"`:
/// success, status (the Nagios code), duration, cached and cache age,
/// disabled; the checks' facts (replica lag, Galera state); and their
/// performance data by unit (`inetd_health_perfdata`, `…_seconds`,
/// `…_bytes`, `…_ratio`, counters `…_total`), the datum's name in a
/// `label` label. Always 200, as `/metrics` answers: Prometheus counts
/// any other status as a failed scrape and would lose the very series that
/// say what failed.
pub fn prometheus(results: &[CheckResult]) -> Response {
    prometheus_with_status(results, 200)
}

fn prometheus_with_status(results: &[CheckResult], status: u16) -> Response {
    let mut out = String::new();
    let family = |out: &mut String, name: &str, help: &str, kind: &str| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    };
    let series = |out: &mut String, name: &str, check: &str, extra: &[(&str, &str)], v: f64| {
        let _ = write!(out, "{name}{{check=\"");
        label(out, check);
        out.push('"');
        for (k, val) in extra {
            let _ = write!(out, ",{k}=\"");
            label(out, val);
            out.push('"');
        }
        let _ = writeln!(out, "}} {}", sample_value(v));
    };
    let per_check: [(&str, &str, Gauge); 6] = [
        (
            "inetd_health_check_success",
            "Whether the check passed (1) or not (0); a warning passes unless the check says warning-is-down.",
            |r| f64::from(u8::from(matches!(r.state(), State::Pass | State::Warn))),
        ),
        (
            "inetd_health_check_status",
            "The check's health as a Nagios code: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.",
            |r| f64::from(exit_code_of(r.outcome.health())),
        ),
        (
            "inetd_health_check_duration_seconds",
            "How long the check took.",
            |r| seconds(r.outcome.elapsed),
        ),
        (
            "inetd_health_check_cached",
            "Whether the outcome was served from the shared cache (1) or run now (0).",
            |r| f64::from(u8::from(r.outcome.verdict.cached_age.is_some())),
        ),
        (
            "inetd_health_check_cache_age_seconds",
            "Age of the cached outcome served; 0 when the check ran now.",
            |r| r.outcome.verdict.cached_age.map_or(0.0, seconds),
        ),
        (
            "inetd_health_check_disabled",
            "Whether the check is disabled by the operator's disable file.",
            |r| f64::from(u8::from(r.outcome.verdict.disabled)),
        ),
    ];
    for (name, help, value) in per_check {
        family(&mut out, name, help, "gauge");
        for r in results {
            series(&mut out, name, &r.name, &[], value(r));
        }
    }
    // Facts, one family each, in a fixed order.
    let mut facts: Vec<(&str, &str, &str, f64)> = results
        .iter()
        .flat_map(|r| {
            r.outcome
                .verdict
                .facts
                .iter()
                .map(move |f| (f.metric(), f.help(), r.name.as_str(), f.value()))
        })
        .collect();
    facts.sort_by(|a, b| a.0.cmp(b.0));
    let mut last = "";
    for (metric, help, check, value) in facts {
        if metric != last {
            family(&mut out, metric, help, "gauge");
            last = metric;
        }
        series(&mut out, metric, check, &[], value);
    }
    // Performance data, grouped by family.
    let mut perf: Vec<(&'static str, &str, &PerfData, f64)> = results
        .iter()
        .flat_map(|r| {
            r.outcome.verdict.perfdata.iter().filter_map(move |p| {
                let (suffix, v) = perfdata_in_base_units(p)?;
                Some((suffix, r.name.as_str(), p, v))
            })
        })
        .collect();
    perf.sort_by(|a, b| a.0.cmp(b.0));
    let mut last = None;
    for (suffix, check, p, v) in perf {
        let name = format!("inetd_health_perfdata{suffix}");
        if last != Some(suffix) {
            let (help, kind) = match suffix {
                "_seconds" => ("Nagios plugin performance data measured in time, in seconds.", "gauge"),
                "_bytes" => ("Nagios plugin performance data measured in bytes (KB, MB, GB, TB as powers of 1024).", "gauge"),
                "_ratio" => ("Nagios plugin performance data in percent, as a ratio (0 to 1).", "gauge"),
                "_total" => ("Nagios plugin performance data that are counters.", "counter"),
                _ => ("Nagios plugin performance data without a unit (or with one named in uom).", "gauge"),
            };
            family(&mut out, &name, help, kind);
            last = Some(suffix);
        }
        let known = perfdata_unit_known(&p.uom);
        let mut labels = vec![("label", p.label.as_str())];
        if !known {
            labels.push(("uom", p.uom.as_str()));
        }
        series(&mut out, &name, check, &labels, v);
    }
    Response::with_body(status, PROMETHEUS_TEXT, out.into_bytes())
}

fn perfdata_unit_known(uom: &str) -> bool {
    matches!(
        uom,
        "" | "s" | "ms" | "us" | "%" | "B" | "KB" | "MB" | "GB" | "TB" | "c"
    )
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
            perfdata.extend(one.outcome.verdict.perfdata.iter().map(ToString::to_string));
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
                perfdata.extend(r.outcome.verdict.perfdata.iter().map(|p| {
                    PerfData {
                        label: format!("{}:{}", r.name, p.label),
                        ..p.clone()
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

/// A result of `verdict` for unit tests: 12 ms, at a fixed time.
#[cfg(test)]
pub(crate) fn sample_result(name: &str, verdict: crate::check::Verdict) -> CheckResult {
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
    use crate::check::{Fact, PluginOutput, Verdict};

    fn result(name: &str, verdict: Verdict) -> CheckResult {
        sample_result(name, verdict)
    }

    fn body(r: &Response) -> String {
        String::from_utf8(r.body().to_vec()).unwrap()
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

    #[test]
    fn no_check_selected_is_never_healthy_in_any_format() {
        let s = Statuses::default();
        let text = render(Format::Text, &[], false, &s);
        assert_eq!(
            (text.status(), body(&text).as_str()),
            (503, "unknown: no check selected\n")
        );
        let verbose = render(Format::Text, &[], true, &s);
        assert_eq!(
            (verbose.status(), body(&verbose).as_str()),
            (503, "unknown: no check selected\n")
        );
        assert_eq!(render(Format::Prometheus, &[], false, &s).status(), 503);
        assert_eq!(
            render(Format::Json { plain: false }, &[], false, &s).status(),
            503
        );
        // /metrics alone is 200 whatever it holds.
        assert_eq!(
            render_metrics(Format::Prometheus, &[], false, &s).status(),
            200
        );
        assert_eq!(nagios(&[]).1, 3);
    }

    #[test]
    fn a_health_route_keeps_its_status_in_every_format() {
        let s = Statuses::default();
        let down = [result("a", Verdict::unhealthy("down"))];
        for format in [
            Format::Text,
            Format::Json { plain: true },
            Format::Prometheus,
        ] {
            assert_eq!(render(format, &down, false, &s).status(), 503, "{format:?}");
            assert_eq!(
                render_metrics(format, &down, false, &s).status(),
                200,
                "{format:?}"
            );
        }
        let prom = render(Format::Prometheus, &down, false, &s);
        assert!(body(&prom).contains("inetd_health_check_success{check=\"a\"} 0\n"));
        assert_eq!(
            body(&prom),
            body(&render_metrics(Format::Prometheus, &down, false, &s))
        );
    }

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

    #[test]
    fn negotiation() {
        let n = |q: Option<&str>, a: Option<&str>| negotiate(q, a).unwrap();
        assert_eq!(n(None, None), Format::Text);
        assert_eq!(n(None, Some("*/*")), Format::Text);
        assert_eq!(
            n(None, Some("application/health+json")),
            Format::Json { plain: false }
        );
        assert_eq!(
            n(None, Some("application/json")),
            Format::Json { plain: true }
        );
        assert_eq!(
            n(None, Some("text/plain; version=0.0.4")),
            Format::Prometheus
        );
        assert_eq!(
            n(None, Some("application/openmetrics-text")),
            Format::Prometheus
        );
        // What Prometheus 2 sends.
        assert_eq!(
            n(None, Some("application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1")),
            Format::Prometheus
        );
        // A browser's.
        assert_eq!(
            n(
                None,
                Some("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8")
            ),
            Format::Text
        );
        assert_eq!(
            n(None, Some("text/plain;q=0.5, application/json")),
            Format::Json { plain: true }
        );
        assert_eq!(n(None, Some("application/json;q=0")), Format::Text);
        assert_eq!(n(None, Some("image/png")), Format::Text);
        assert_eq!(
            n(Some("json"), Some("text/plain")),
            Format::Json { plain: false }
        );
        assert_eq!(n(Some("prometheus"), None), Format::Prometheus);
        assert!(negotiate(Some("xml"), None).is_err());
    }

    #[test]
    fn json_exact_bytes() {
        let mut replica = result(
            "replica",
            Verdict::healthy("replicating, lag 3s (max 30s)").with_fact(Fact::ReplicaLagSeconds(3)),
        );
        replica.outcome.verdict.cached_age = Some(Duration::from_millis(250));
        let mut disk = result("disk", Verdict::warning("DISK WARNING - \"free\"\u{1}"));
        disk.outcome.verdict.perfdata = PluginOutput::parse(b"|/=2643MB;5948;5958;0;5968").perfdata;
        let r = json(&[replica, disk], &Statuses::default(), false);
        assert_eq!(r.status(), 200);
        assert_eq!(
            body(&r),
            "{\"status\":\"warn\",\"output\":\"warning: 2 checks passed, 1 with a warning\",\"checks\":{\
             \"replica\":[{\"status\":\"pass\",\"output\":\"replicating, lag 3s (max 30s)\",\"time\":\"1994-11-06T08:49:37.000Z\",\"duration\":0.012,\"cached\":true,\"cacheAge\":0.25}],\
             \"replica:lag\":[{\"status\":\"pass\",\"observedValue\":3,\"observedUnit\":\"s\",\"time\":\"1994-11-06T08:49:37.000Z\"}],\
             \"disk\":[{\"status\":\"warn\",\"output\":\"DISK WARNING - \\\"free\\\"\\u0001\",\"time\":\"1994-11-06T08:49:37.000Z\",\"duration\":0.012}],\
             \"disk:/\":[{\"status\":\"warn\",\"observedValue\":2643,\"observedUnit\":\"MB\",\"time\":\"1994-11-06T08:49:37.000Z\"}]}}\n"
        );
        let head = String::from_utf8(r.encode(true, None)).unwrap();
        assert!(
            head.contains("\r\nContent-Type: application/health+json\r\n"),
            "{head}"
        );
        // No check ran: nothing passed (`?exclude=` of every check).
        let plain = json(&[], &Statuses::default(), true);
        assert_eq!(plain.status(), 503);
        assert_eq!(
            body(&plain),
            "{\"status\":\"fail\",\"output\":\"unknown: no check selected\",\"checks\":{}}\n"
        );
        let head = String::from_utf8(plain.encode(true, None)).unwrap();
        assert!(
            head.contains("\r\nContent-Type: application/json\r\n"),
            "{head}"
        );
    }

    #[test]
    fn prometheus_exact_bytes_and_hostile_names() {
        let mut load = result("load", Verdict::healthy("LOAD OK"));
        load.outcome.verdict.perfdata =
            PluginOutput::parse(b"|load1=0.5;5;10;0 'a\"b\\c'=150ms /=2MB used=50% x=3foo n=7c")
                .perfdata;
        let galera = result(
            "gal\"era\n",
            Verdict::unhealthy("donor").with_fact(Fact::GaleraLocalState(2)),
        );
        let r = prometheus(&[load, galera]);
        assert_eq!(r.status(), 200);
        let text = body(&r);
        let want = [
            "inetd_health_check_success{check=\"load\"} 1",
            "inetd_health_check_success{check=\"gal\\\"era\\n\"} 0",
            "inetd_health_check_status{check=\"gal\\\"era\\n\"} 2",
            "inetd_health_check_duration_seconds{check=\"load\"} 0.012",
            "inetd_health_check_cached{check=\"load\"} 0",
            "# TYPE inetd_health_galera_local_state gauge",
            "inetd_health_galera_local_state{check=\"gal\\\"era\\n\"} 2",
            "inetd_health_perfdata{check=\"load\",label=\"load1\"} 0.5",
            "inetd_health_perfdata{check=\"load\",label=\"x\",uom=\"foo\"} 3",
            "inetd_health_perfdata_seconds{check=\"load\",label=\"a\\\"b\\\\c\"} 0.15",
            "inetd_health_perfdata_bytes{check=\"load\",label=\"/\"} 2097152",
            "inetd_health_perfdata_ratio{check=\"load\",label=\"used\"} 0.5",
            "# TYPE inetd_health_perfdata_total counter",
            "inetd_health_perfdata_total{check=\"load\",label=\"n\"} 7",
        ];
        for line in want {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
        // Every family has HELP and TYPE once, before its samples.
        let mut seen = std::collections::HashSet::new();
        for l in text.lines() {
            if let Some(rest) = l.strip_prefix("# TYPE ") {
                assert!(
                    seen.insert(rest.split(' ').next().unwrap().to_owned()),
                    "{l}"
                );
            } else if !l.starts_with('#') {
                let family = l.split('{').next().unwrap();
                assert!(seen.contains(family), "{l} before its TYPE");
            }
        }
    }

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
