//! The Prometheus view: the text exposition format 0.0.4. The only place
//! that names metrics: the per-check families, a family for each kind of
//! [`Fact`], and the performance data's families by unit.

use std::fmt::Write as _;

use crate::check::nagios::exit_code_of;
use crate::check::{Fact, PerfData};
use crate::http::Response;
use crate::outcome::{CheckResult, State};

/// The content type of Prometheus bodies.
pub const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A fact's metric family and its help text.
fn family_of(fact: &Fact) -> (&'static str, &'static str) {
    match fact {
        Fact::ReplicaLagSeconds(_) => (
            "inetd_health_replica_lag_seconds",
            "Replication lag (Seconds_Behind_Master) of the replica.",
        ),
        Fact::GaleraLocalState(_) => (
            "inetd_health_galera_local_state",
            "wsrep_local_state of the Galera node: 1 Joining, 2 Donor/Desynced, 3 Joined, 4 Synced.",
        ),
        Fact::PgInRecovery(_) => (
            "inetd_health_postgres_in_recovery",
            "1 when the PostgreSQL server is in recovery (a standby), else 0.",
        ),
        Fact::PgReplayLagBytes(_) => (
            "inetd_health_postgres_replay_lag_bytes",
            "WAL the PostgreSQL standby has received (or the primary written) and not yet replayed, in bytes.",
        ),
        Fact::PgReplayLagSeconds(_) => (
            "inetd_health_postgres_replay_lag_seconds",
            "Age of the last replayed transaction while WAL is left to replay; 0 when all is replayed.",
        ),
        Fact::PgWalReceiverStreaming(_) => (
            "inetd_health_postgres_wal_receiver_streaming",
            "1 when the PostgreSQL standby's WAL receiver is streaming, else 0.",
        ),
        Fact::RedisPrimary(_) => (
            "inetd_health_redis_primary",
            "1 when the Redis server's role is primary (master), 0 for a replica.",
        ),
        Fact::RedisConnectedReplicas(_) => (
            "inetd_health_redis_connected_replicas",
            "Replicas the Redis primary lists online.",
        ),
        Fact::RedisLinkAgeSeconds(_) => (
            "inetd_health_redis_link_age_seconds",
            "Seconds since the Redis replica's last I/O with its primary (master_last_io_seconds_ago).",
        ),
        Fact::RedisReplicaLagBytes(_) => (
            "inetd_health_redis_replica_lag_bytes",
            "Replication stream the Redis replica has read and not yet applied, in bytes.",
        ),
        Fact::RedisSentinelVotes(_) => (
            "inetd_health_redis_sentinel_votes",
            "Sentinels that name this Redis node as their primary.",
        ),
    }
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

/// One gauge of the process rather than of a check (no `check` label),
/// with its HELP and TYPE: what [`crate::service::ProcessFacts`] and the
/// certificate's expiry show after the checks' families. `value` as it is
/// to be written (a timestamp's precision is the caller's).
pub fn process_gauge(name: &str, help: &str, value: impl std::fmt::Display) -> String {
    format!("# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}\n")
}

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
    with_status(results, 200)
}

pub(super) fn with_status(results: &[CheckResult], status: u16) -> Response {
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
            |r| r.outcome.elapsed.as_secs_f64(),
        ),
        (
            "inetd_health_check_cached",
            "Whether the outcome was served from the shared cache (1) or run now (0).",
            |r| f64::from(u8::from(r.outcome.verdict.cached_age.is_some())),
        ),
        (
            "inetd_health_check_cache_age_seconds",
            "Age of the cached outcome served; 0 when the check ran now.",
            |r| r.outcome.verdict.cached_age.map_or(0.0, |age| age.as_secs_f64()),
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
            r.outcome.verdict.facts.iter().map(move |f| {
                let (metric, help) = family_of(f);
                (metric, help, r.name.as_str(), f.value())
            })
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::{PluginOutput, Verdict};
    use crate::outcome::sample_result as result;
    use crate::render::tests::body;

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
}
