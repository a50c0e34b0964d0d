//! Routing: which checks a request asks for, and how it wants the answer.
//!
//! Kubernetes' healthz is the model: a path names a route (`/ready`), which
//! runs its checks; `/ready/disk` runs one of them; `?verbose` lists every
//! check; `?exclude=NAME` (repeatable) leaves one out. `/metrics` serves
//! every check to Prometheus.
//!
//! Patroni's REST API is the model for two thresholds, so that an HAProxy
//! config written for it works unchanged: `?lag=16MB` (the most replay lag
//! a standby may have) and `?replication_state=streaming`. They are parsed
//! strictly, a value we cannot read refused with a 400 (Patroni ignores
//! one, and a typo would quietly pass every lagging standby), and the
//! service applies them to what the PostgreSQL checks found after they ran.
//!
//! Nothing of the request reaches a check: the query string selects among
//! configured checks and sets thresholds on their verdicts, and that is
//! all.

use std::fmt::Write as _;

/// The path Prometheus scrapes: every check, in its text format.
pub const METRICS: &str = "/metrics";

/// How paths map to checks (by index into the service's checks).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Routes {
    /// Every path runs these checks: the single-check command line, which
    /// has always answered any path.
    Any(Vec<usize>),
    /// Named routes; any other path is a 404 that lists them.
    Table(Vec<Route>),
}

/// One route.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    /// The path, `/` or `/NAME[/NAME…]` without a trailing slash.
    pub path: String,
    /// The checks it runs, in order.
    pub checks: Vec<usize>,
}

/// What a request asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Selection {
    /// The checks to run, in order.
    pub checks: Vec<usize>,
    /// `?verbose`: a line per check.
    pub verbose: bool,
    /// `?format=`, as given.
    pub format: Option<String>,
    /// The request was for `/metrics`: Prometheus unless `?format=` says
    /// otherwise.
    pub metrics: bool,
    /// `?lag=`: the most replay lag, in bytes, a PostgreSQL standby may
    /// have (Patroni's `/replica?lag=`).
    pub lag: Option<u64>,
    /// `?replication_state=`: what a PostgreSQL standby's WAL receiver must
    /// be doing.
    pub replication_state: Option<ReplicationState>,
}

impl Selection {
    /// Whether the query sets a threshold for PostgreSQL standbys.
    pub fn judges_postgres(&self) -> bool {
        self.lag.is_some() || self.replication_state.is_some()
    }
}

/// The `?replication_state=` values served.
///
/// Patroni also knows `in archive recovery` (no receiver, but a
/// `restore_command`); our checks do not read the `restore_command`, so
/// only `streaming`, the one Patroni's docs recommend, is accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplicationState {
    /// The WAL receiver is streaming from the primary.
    Streaming,
}

/// Why a request selects nothing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Miss {
    /// No such path: the body lists the paths there are.
    NotFound(String),
    /// A query parameter we cannot read: the body names it and says what
    /// it takes.
    BadQuery(String),
}

/// Selects the checks for `target` (the request target: path and query).
///
/// # Errors
/// [`Miss::BadQuery`] for a `?lag=` or `?replication_state=` that is not
/// one we serve, or that is given twice; [`Miss::NotFound`] for a path
/// that names no route and no check of one.
pub fn select(routes: &Routes, names: &[String], target: &str) -> Result<Selection, Miss> {
    let (path, query) = split_target(target);
    let mut selection = Selection {
        checks: Vec::new(),
        verbose: false,
        format: None,
        metrics: false,
        lag: None,
        replication_state: None,
    };
    let mut exclude: Vec<&str> = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match key {
            "verbose" => selection.verbose = !matches!(value, "false" | "0"),
            "exclude" => exclude.push(value),
            "format" => selection.format = Some(value.to_owned()),
            "lag" => {
                let lag = parse_lag(value).ok_or_else(|| {
                    bad_query(
                        key,
                        value,
                        "a size in bytes, or with a unit of B, kB, MB, GB or TB (1024-based), like 16MB",
                    )
                })?;
                once(&mut selection.lag, lag, key)?;
            }
            "replication_state" => {
                let state = match value {
                    "streaming" => ReplicationState::Streaming,
                    _ => return Err(bad_query(key, value, "only streaming is served")),
                };
                once(&mut selection.replication_state, state, key)?;
            }
            // A threshold misspelt would pass every lagging standby: the
            // near misses of the two are refused, not ignored.
            _ => {
                if let Some(meant) = near_threshold(key) {
                    return Err(Miss::BadQuery(format!(
                        "bad query: ?{}=: did you mean ?{meant}=?\n",
                        printable(key)
                    )));
                }
            }
        }
    }
    selection.checks = match routes {
        Routes::Any(checks) => {
            // Any path runs the check, and /metrics serves it to
            // Prometheus, as a config's /metrics does.
            selection.metrics = normalise(path) == METRICS;
            checks.clone()
        }
        Routes::Table(table) => {
            let path = normalise(path);
            if let Some(route) = table.iter().find(|r| r.path == path) {
                route.checks.clone()
            } else if path == METRICS {
                selection.metrics = true;
                (0..names.len()).collect()
            } else if let Some(one) = one_check(table, names, &path) {
                vec![one]
            } else {
                return Err(Miss::NotFound(not_found(table, &path)));
            }
        }
    };
    selection
        .checks
        .retain(|&i| !exclude.contains(&names[i].as_str()));
    Ok(selection)
}

/// Parses a `?lag=` value as Patroni's docs write them (`1048576`,
/// `1024kB`, `16MB`, `1GB`): digits, then at most a unit, 1024-based. The
/// rest of what Patroni's `parse_int` takes (spaces, signs, hex and octal,
/// decimals rounded) is refused, and so is a size beyond 2^64 bytes: a
/// threshold we read differently from its writer is worse than none.
pub fn parse_lag(text: &str) -> Option<u64> {
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    let (number, unit) = text.split_at(digits);
    let shift = match unit {
        "" | "B" => 0,
        // PostgreSQL spells it kB; KB is the common slip.
        "kB" | "KB" => 10,
        "MB" => 20,
        "GB" => 30,
        "TB" => 40,
        _ => return None,
    };
    number.parse::<u64>().ok()?.checked_mul(1 << shift)
}

/// Sets a parameter given once; Patroni reads the first of several, a
/// proxy or a hand-edited config might mean the last: neither is guessed.
fn once<T>(slot: &mut Option<T>, value: T, key: &str) -> Result<(), Miss> {
    if slot.is_some() {
        return Err(Miss::BadQuery(format!(
            "bad query: ?{key}= given more than once: give it once\n"
        )));
    }
    *slot = Some(value);
    Ok(())
}

/// The threshold a query key almost names (`Lag`, `max_lag`,
/// `replication-state`…), if any.
fn near_threshold(key: &str) -> Option<&'static str> {
    let folded: String = key
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect();
    if folded.ends_with("lag") || folded == "maxlag" || folded == "lagbytes" {
        Some("lag")
    } else if folded.contains("replicationstate") || folded == "replstate" {
        Some("replication_state")
    } else {
        None
    }
}

fn bad_query(key: &str, value: &str, wants: &str) -> Miss {
    Miss::BadQuery(format!("bad query: ?{key}={}: {wants}\n", printable(value)))
}

/// `/ROUTE/NAME` (or `/NAME` under the root route): one check of a route.
fn one_check(table: &[Route], names: &[String], path: &str) -> Option<usize> {
    let (route_path, name) = path.rsplit_once('/')?;
    let route_path = if route_path.is_empty() {
        "/"
    } else {
        route_path
    };
    let route = table.iter().find(|r| r.path == route_path)?;
    route.checks.iter().copied().find(|&i| names[i] == name)
}

fn not_found(table: &[Route], path: &str) -> String {
    let mut body = format!("no such path: {}\npaths:", printable(path));
    for route in table {
        let _ = write!(body, " {}", route.path);
    }
    if !table.iter().any(|r| r.path == METRICS) {
        let _ = write!(body, " {METRICS}");
    }
    body.push_str(" (and ROUTE/CHECK for one check of a route)\n");
    body
}

/// Request data in a body: printable and bounded.
fn printable(text: &str) -> String {
    text.chars()
        .take(200)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// The path and the query of a request target; an absolute-form target
/// (`http://host/path`, which a proxy may send) is reduced to its path.
fn split_target(target: &str) -> (&str, &str) {
    let target = match target.split_once("://") {
        Some((_, rest)) => rest.find('/').map_or("/", |i| &rest[i..]),
        None => target,
    };
    let target = target.split_once('#').map_or(target, |(t, _)| t);
    target.split_once('?').unwrap_or((target, ""))
}

/// `/ready/` is `/ready`; `*` (the `OPTIONS *` form) and the empty path
/// are `/`.
fn normalise(path: &str) -> String {
    let trimmed = path.trim_end_matches('/');
    if trimmed.is_empty() || path == "*" {
        "/".to_owned()
    } else {
        trimmed.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> Vec<String> {
        ["db", "galera", "port", "disk"].map(String::from).to_vec()
    }

    fn table() -> Routes {
        Routes::Table(vec![
            Route {
                path: "/".into(),
                checks: vec![1],
            },
            Route {
                path: "/live".into(),
                checks: vec![0],
            },
            Route {
                path: "/ready".into(),
                checks: vec![1, 3, 2],
            },
        ])
    }

    fn checks(target: &str) -> Vec<usize> {
        select(&table(), &names(), target).unwrap().checks
    }

    #[test]
    fn routes_and_one_check_of_a_route() {
        assert_eq!(checks("/"), [1]);
        assert_eq!(checks("/live"), [0]);
        assert_eq!(checks("/live/"), [0]);
        assert_eq!(checks("/ready"), [1, 3, 2]);
        assert_eq!(checks("/ready/disk"), [3]);
        assert_eq!(checks("/galera"), [1]);
        assert_eq!(checks("*"), [1]);
        assert_eq!(checks("http://lb.example/ready?verbose"), [1, 3, 2]);
        let s = select(&table(), &names(), "/metrics").unwrap();
        assert!(s.metrics);
        assert_eq!(s.checks, [0, 1, 2, 3]);
    }

    #[test]
    fn query_selects_format_verbosity_and_exclusions() {
        let s = select(
            &table(),
            &names(),
            "/ready?verbose&exclude=disk&exclude=port&format=json",
        )
        .unwrap();
        assert_eq!(s.checks, [1]);
        assert!(s.verbose);
        assert_eq!(s.format.as_deref(), Some("json"));
        assert!(
            !select(&table(), &names(), "/ready?verbose=false")
                .unwrap()
                .verbose
        );
        // An exclusion names a check or nothing; it never adds one.
        assert_eq!(checks("/live?exclude=nope"), [0]);
    }

    #[test]
    fn patroni_lag_in_bytes_or_with_a_unit() {
        for (value, bytes) in [
            ("0", 0),
            ("1048576", 1_048_576),
            ("512B", 512),
            ("1024kB", 1 << 20),
            ("16KB", 16 << 10),
            ("16MB", 16 << 20),
            ("00016MB", 16 << 20),
            ("1GB", 1 << 30),
            ("2TB", 2 << 40),
            ("18446744073709551615", u64::MAX),
            ("16777215TB", 16_777_215 << 40),
        ] {
            let s = select(&table(), &names(), &format!("/ready?lag={value}")).unwrap();
            assert_eq!((s.lag, s.checks.as_slice()), (Some(bytes), &[1, 3, 2][..]));
            assert!(s.judges_postgres(), "{value}");
        }
        let s = select(&table(), &names(), "/ready?verbose").unwrap();
        assert_eq!((s.lag, s.replication_state), (None, None));
        assert!(!s.judges_postgres());
    }

    #[test]
    fn patroni_replication_state_streaming() {
        for target in [
            "/ready?replication_state=streaming",
            "/ready?lag=16MB&replication_state=streaming&format=json",
            "/metrics?replication_state=streaming",
        ] {
            let s = select(&table(), &names(), target).unwrap();
            assert_eq!(s.replication_state, Some(ReplicationState::Streaming));
            assert!(s.judges_postgres());
        }
        let any = Routes::Any(vec![0]);
        let s = select(
            &any,
            &names(),
            "/replica?lag=1GB&replication_state=streaming",
        )
        .unwrap();
        assert_eq!(
            (s.lag, s.replication_state),
            (Some(1 << 30), Some(ReplicationState::Streaming))
        );
    }

    #[test]
    fn a_threshold_we_cannot_read_or_given_twice_is_400_naming_it() {
        let lag =
            "a size in bytes, or with a unit of B, kB, MB, GB or TB (1024-based), like 16MB\n";
        for (query, said) in [
            ("lag=16XB", format!("?lag=16XB: {lag}")),
            ("lag=-1", format!("?lag=-1: {lag}")),
            ("lag=+1", format!("?lag=+1: {lag}")),
            ("lag=1.5MB", format!("?lag=1.5MB: {lag}")),
            (
                "lag=99999999999999999999",
                format!("?lag=99999999999999999999: {lag}"),
            ),
            ("lag=16777216TB", format!("?lag=16777216TB: {lag}")),
            ("lag=16mb", format!("?lag=16mb: {lag}")),
            ("lag=16%20MB", format!("?lag=16%20MB: {lag}")),
            ("lag=0x10", format!("?lag=0x10: {lag}")),
            ("lag=MB", format!("?lag=MB: {lag}")),
            ("lag=", format!("?lag=: {lag}")),
            ("lag", format!("?lag=: {lag}")),
            ("lag=16\x1b[2J", format!("?lag=16?[2J: {lag}")),
            (
                "lag=16MB&lag=1MB",
                "?lag= given more than once: give it once\n".into(),
            ),
            (
                "replication_state=stopped",
                "?replication_state=stopped: only streaming is served\n".into(),
            ),
            (
                "replication_state=",
                "?replication_state=: only streaming is served\n".into(),
            ),
            (
                "replication_state=streaming&replication_state=streaming",
                "?replication_state= given more than once: give it once\n".into(),
            ),
            ("Lag=16MB", "?Lag=: did you mean ?lag=?\n".into()),
            ("max_lag=16MB", "?max_lag=: did you mean ?lag=?\n".into()),
            ("max-lag=1", "?max-lag=: did you mean ?lag=?\n".into()),
            (
                "replication-state=streaming",
                "?replication-state=: did you mean ?replication_state=?\n".into(),
            ),
            (
                "Replication_State=streaming",
                "?Replication_State=: did you mean ?replication_state=?\n".into(),
            ),
        ] {
            for path in ["/ready", "/metrics", "/ready/disk"] {
                let target = format!("{path}?{query}");
                assert_eq!(
                    select(&table(), &names(), &target),
                    Err(Miss::BadQuery(format!("bad query: {said}"))),
                    "{target}"
                );
            }
        }
    }

    #[test]
    fn unknown_paths_are_404_naming_the_paths_there_are() {
        for target in ["/nope", "/ready/db", "/live/db/x", "/db", "/\x1b[2J"] {
            let Err(Miss::NotFound(body)) = select(&table(), &names(), target) else {
                panic!("{target} found");
            };
            assert!(
                body.ends_with(
                    "paths: / /live /ready /metrics (and ROUTE/CHECK for one check of a route)\n"
                ),
                "{body}"
            );
            assert!(!body.contains('\x1b'), "{body}");
        }
    }

    #[test]
    fn the_single_check_answers_every_path() {
        let any = Routes::Any(vec![0]);
        for target in ["/", "/anything/at/all", "/metrics", "*"] {
            assert_eq!(select(&any, &names(), target).unwrap().checks, [0]);
        }
        // /metrics runs it too, for Prometheus: as a config's does.
        assert!(select(&any, &names(), "/metrics").unwrap().metrics);
        assert!(select(&any, &names(), "/metrics/").unwrap().metrics);
        assert!(!select(&any, &names(), "/").unwrap().metrics);
    }
}
