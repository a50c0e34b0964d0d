//! The JSON view: draft-inadarei-api-health-check's `health+json`, each
//! check's facts and performance data as measurements of their own.

use std::fmt::Write as _;

use crate::http::{rfc3339, Response};
use crate::outcome::{status, summary, worst, CheckResult, State, Statuses};

/// The content type of JSON bodies.
pub const HEALTH_JSON: &str = "application/health+json";

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
        json_number(&mut out, r.outcome.elapsed.as_secs_f64());
        if let Some(age) = verdict.cached_age {
            out.push_str(",\"cached\":true,\"cacheAge\":");
            json_number(&mut out, age.as_secs_f64());
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::check::{Fact, PluginOutput, Verdict};
    use crate::outcome::sample_result as result;
    use crate::render::tests::body;

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
}
