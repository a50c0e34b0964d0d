//! Rendering: outcomes are data, formats are views of them.
//!
//! Every answer is made here from a list of [`CheckResult`]s (the data, in
//! [`outcome`](crate::outcome)): the status code ([`status`]), and the
//! body as text ([`text()`]), JSON in the shape of
//! draft-inadarei-api-health-check ([`json()`]), the Prometheus text
//! exposition format 0.0.4 ([`prometheus()`]), or a Nagios plugin's output
//! for `--once` ([`nagios()`]); HAProxy's agent-check gets a line
//! ([`agent_line`]). Which body a client gets is
//! [`negotiate`]d from `?format=` or its `Accept` header, and [`render()`]
//! and [`render_metrics`] make it.
//!
//! One file per view: `text.rs`, `json.rs`, `prometheus.rs` (the only
//! place with metric names), `nagios.rs`, `agent.rs`.
//!
//! Only public reasons reach a body; a check's detail (program output,
//! server messages) only where its spec says `show-output`.

use crate::http::Response;
use crate::outcome::{status, CheckResult, Statuses};

pub(crate) mod agent;
mod json;
mod nagios;
mod prometheus;
mod text;

/// HAProxy's agent line for a route's results (`up ready 100%`, `drain`,
/// `down #REASON`).
pub use agent::line as agent_line;
pub use json::{json, HEALTH_JSON};
pub use nagios::nagios;
pub use prometheus::{perfdata_in_base_units, process_gauge, prometheus, PROMETHEUS_TEXT};
pub use text::text;

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
        Format::Prometheus => prometheus::with_status(results, status(results, statuses)),
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
    render(format, results, verbose, statuses).with_status(200)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::Verdict;
    use crate::outcome::sample_result as result;

    /// A response's body as text, for the views' tests.
    pub(super) fn body(r: &Response) -> String {
        String::from_utf8(r.body().to_vec()).unwrap()
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
}
