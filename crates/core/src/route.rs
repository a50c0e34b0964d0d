//! Routing: which checks a request asks for, and how it wants the answer.
//!
//! Kubernetes' healthz is the model: a path names a route (`/ready`), which
//! runs its checks; `/ready/disk` runs one of them; `?verbose` lists every
//! check; `?exclude=NAME` (repeatable) leaves one out. `/metrics` serves
//! every check to Prometheus. Nothing of the request reaches a check: the
//! query string selects among configured checks, and that is all.

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
}

/// Why a request selects nothing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Miss {
    /// No such path: the body lists the paths there are.
    NotFound(String),
}

/// Selects the checks for `target` (the request target: path and query).
///
/// # Errors
/// [`Miss::NotFound`] for a path that names no route and no check of one.
pub fn select(routes: &Routes, names: &[String], target: &str) -> Result<Selection, Miss> {
    let (path, query) = split_target(target);
    let mut selection = Selection {
        checks: Vec::new(),
        verbose: false,
        format: None,
        metrics: false,
    };
    let mut exclude: Vec<&str> = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match key {
            "verbose" => selection.verbose = !matches!(value, "false" | "0"),
            "exclude" => exclude.push(value),
            "format" => selection.format = Some(value.to_owned()),
            _ => {}
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
