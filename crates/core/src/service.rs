//! What one process serves, and the answer to a request, as plain values.
//!
//! A [`Service`] is named checks, the routes to them, the status codes in
//! use and who may ask. [`Service::answer`] turns a request head (and the
//! peer's address) into an [`Answer`]: allowlist, route, format, the
//! route's checks run at once, rendering. [`Service::answer_agent`] does
//! the same for HAProxy's agent-check. No socket is in sight: the bytes are
//! [`serve`](mod@crate::serve)'s, and tests hand a head in and read the answer out.
//!
//! A single check (the command line's, an embedder's [`crate::serve_check`])
//! is a one-entry service that answers every path.

use std::net::IpAddr;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use crate::agent::AgentSettings;
use crate::allow::Allowlist;
use crate::check::{run_check, Check, Outcome, Verdict};
use crate::http::{Method, RequestHead, Response};
use crate::outcome::{self, CheckResult, Statuses};
use crate::render::{self, Format};
use crate::route::{self, Miss, Routes};
use crate::spec::{Kind, Spec};
use crate::state::StateDir;
use crate::Deadline;

/// The methods answered, as sent in `Allow`.
pub const ALLOW: &str = "GET, HEAD, OPTIONS";

/// Named checks and the routes to them: what one process serves. `'c` is
/// how long checks handed in already built live (`'static` for a service
/// of [`Spec`]s).
pub struct Service<'c> {
    entries: Vec<Entry<'c>>,
    routes: Routes,
    statuses: Statuses,
    state_dir: StateDir,
    allow: Option<Allowlist>,
    agent: Option<AgentSettings>,
    clock: fn() -> SystemTime,
}

/// A check that cannot be built (an option file refused, say): its error.
type Built = Result<Box<dyn Check + Send + Sync>, String>;

struct Entry<'c> {
    name: String,
    timeout: Duration,
    warning_is_down: bool,
    show_output: bool,
    source: Source<'c>,
}

enum Source<'c> {
    // Built on first use: a request runs only its route's checks, so only
    // those read their option files; a long-lived process builds each once.
    Spec(Box<Spec>, OnceLock<Built>),
    Given(&'c (dyn Check + Sync)),
}

impl Entry<'_> {
    fn is_program(&self) -> bool {
        matches!(&self.source, Source::Spec(spec, _) if matches!(spec.kind, Kind::Exec { .. }))
    }
}

impl std::fmt::Debug for Service<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.entries.iter().map(|e| e.name.as_str()).collect();
        f.debug_struct("Service")
            .field("checks", &names)
            .field("routes", &self.routes)
            .field("statuses", &self.statuses)
            .field("state_dir", &self.state_dir)
            .field("allow", &self.allow)
            .field("agent", &self.agent)
            .finish()
    }
}

/// Why a request was refused rather than answered by its checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Refusal {
    /// A method other than GET, HEAD or OPTIONS (405).
    Method,
    /// The peer is outside the allowlist, or unknown while there is one
    /// (403).
    NotAllowed,
    /// No route, and no check of one, at that path (404).
    NoSuchPath,
    /// `?format=` names no format we serve (400).
    UnknownFormat,
}

/// The answer to one request, as values: what to send and what the log
/// says of it.
#[derive(Debug)]
pub struct Answer {
    /// The response: status, headers and body (a HEAD's body is left out
    /// when it is sent).
    pub response: Response,
    /// The public reason: the check's reason, the route's summary, or why
    /// the request was refused.
    pub reason: String,
    /// The checks that ran, with their outcomes (empty when none ran).
    pub results: Vec<CheckResult>,
    /// Why the request was refused, if it was.
    pub refused: Option<Refusal>,
}

impl Answer {
    /// Whether any check ran.
    pub fn ran(&self) -> bool {
        !self.results.is_empty()
    }

    fn refused(refusal: Refusal, response: Response, reason: impl Into<String>) -> Answer {
        Answer {
            response,
            reason: reason.into(),
            results: Vec::new(),
            refused: Some(refusal),
        }
    }
}

/// The answer to HAProxy's agent-check.
#[derive(Debug)]
pub struct AgentLine {
    /// The line to send (`up ready 100%`, `drain`, `down #REASON`…), with
    /// its line end; `None` when the peer may not ask (nothing is sent).
    pub line: Option<String>,
    /// What the log says: the line, or why nothing was sent.
    pub reason: String,
    /// The checks that ran.
    pub results: Vec<CheckResult>,
}

impl<'c> Service<'c> {
    /// A service of `checks` (name and spec) reached by `routes`, keeping
    /// shared state in `state_dir`.
    pub fn new(
        checks: Vec<(String, Spec)>,
        routes: Routes,
        statuses: Statuses,
        state_dir: StateDir,
    ) -> Self {
        let entries = checks
            .into_iter()
            .map(|(name, spec)| Entry {
                name,
                timeout: spec.timeout,
                warning_is_down: spec.warning_is_down,
                show_output: spec.show_output,
                source: Source::Spec(Box::new(spec), OnceLock::new()),
            })
            .collect();
        Service {
            entries,
            routes,
            statuses,
            state_dir,
            allow: None,
            agent: None,
            clock: SystemTime::now,
        }
    }

    /// One check, built already, named `name` and served on every path
    /// under `timeout`; `warning_is_down` and `show_output` as the
    /// command line's flags.
    pub fn single(
        name: impl Into<String>,
        check: &'c (dyn Check + Sync),
        timeout: Duration,
        warning_is_down: bool,
        show_output: bool,
    ) -> Self {
        Service {
            entries: vec![Entry {
                name: name.into(),
                timeout,
                warning_is_down,
                show_output,
                source: Source::Given(check),
            }],
            routes: Routes::Any(vec![0]),
            statuses: Statuses::default(),
            // A check handed in built keeps no state of ours: the
            // directory is never used.
            state_dir: StateDir::given(std::path::PathBuf::new()),
            allow: None,
            agent: None,
            clock: SystemTime::now,
        }
    }

    /// Answers HAProxy's agent-check on the same port (see
    /// [`crate::agent`]).
    pub fn with_agent(mut self, agent: AgentSettings) -> Self {
        self.agent = Some(agent);
        self
    }

    /// Serves only peers in `allow`; the others get 403 and run nothing.
    pub fn with_allowlist(mut self, allow: Allowlist) -> Self {
        self.allow = Some(allow);
        self
    }

    /// These status codes for a warning and a disabled check.
    pub fn with_statuses(mut self, statuses: Statuses) -> Self {
        self.statuses = statuses;
        self
    }

    /// Reads the time of each check's result from `clock` (tests pin it).
    pub fn with_clock(mut self, clock: fn() -> SystemTime) -> Self {
        self.clock = clock;
        self
    }

    /// The agent's settings, if it answers agents.
    pub fn agent(&self) -> Option<&AgentSettings> {
        self.agent.as_ref()
    }

    /// The longest timeout of its checks.
    pub fn longest_timeout(&self) -> Duration {
        self.entries
            .iter()
            .map(|e| e.timeout)
            .max()
            .unwrap_or_default()
    }

    /// Whether any check keeps state shared between processes (a cache or
    /// a cap), which every program running as the service's user could
    /// forge (docs/resilience.md).
    pub fn shares_state(&self) -> bool {
        self.entries.iter().any(|e| match &e.source {
            Source::Spec(spec, _) => spec.cache_ttl.is_some() || spec.max_concurrent.is_some(),
            Source::Given(_) => false,
        })
    }

    /// The check names, in order.
    pub fn names(&self) -> Vec<String> {
        self.entries.iter().map(|e| e.name.clone()).collect()
    }

    /// The specs of the checks, in order (`None` for a check handed in
    /// built).
    pub fn specs(&self) -> impl Iterator<Item = (&str, Option<&Spec>)> {
        self.entries.iter().map(|e| {
            let spec = match &e.source {
                Source::Spec(spec, _) => Some(&**spec),
                Source::Given(_) => None,
            };
            (e.name.as_str(), spec)
        })
    }

    /// The status codes in use.
    pub fn statuses(&self) -> &Statuses {
        &self.statuses
    }

    /// The routes.
    pub fn routes(&self) -> &Routes {
        &self.routes
    }

    /// Builds every check now (reading their option files), as `--check-config`
    /// and the single-check command line do before serving.
    ///
    /// # Errors
    /// The first check that cannot be built: its name and why.
    pub fn build_all(&self) -> Result<(), (String, String)> {
        for e in &self.entries {
            if let Err(why) = self.check_of(e) {
                return Err((e.name.clone(), why));
            }
        }
        Ok(())
    }

    fn check_of<'e>(&self, e: &'e Entry<'c>) -> Result<&'e (dyn Check + Sync), String> {
        match &e.source {
            Source::Given(check) => Ok(*check),
            Source::Spec(spec, built) => built
                .get_or_init(|| spec.build(&self.state_dir).map_err(|err| err.to_string()))
                .as_ref()
                .map(|check| &**check as &(dyn Check + Sync))
                .map_err(Clone::clone),
        }
    }

    /// Answers one request: who may ask, which route, which format, the
    /// route's checks run at once, the body rendered. `peer` is the
    /// client's address as the kernel knows it (`getpeername`, `accept`):
    /// with an allowlist, a peer outside it (or one that cannot be told)
    /// gets 403 and runs nothing.
    pub fn answer(&self, head: &RequestHead, peer: Option<IpAddr>) -> Answer {
        let mut answer = self.decide(head, peer);
        // OPTIONS (HAProxy's default check) learns the methods whatever
        // the answer: refused, missing or run.
        if head.method == Method::Options && !answer.response.has_header("Allow") {
            answer.response = answer.response.header("Allow", ALLOW);
        }
        answer
    }

    fn decide(&self, head: &RequestHead, peer: Option<IpAddr>) -> Answer {
        if !matches!(head.method, Method::Get | Method::Head | Method::Options) {
            let response = Response::text(405, format!("method not allowed: use {ALLOW}\n"))
                .header("Allow", ALLOW);
            return Answer::refused(Refusal::Method, response, "method not allowed");
        }
        if let Some(allow) = &self.allow {
            if !allow.allows(peer) {
                let reason = match peer {
                    Some(ip) => format!("peer {} not allowed", crate::allow::unmapped(ip)),
                    None => "peer address unknown: not allowed".into(),
                };
                let response = Response::text(403, "forbidden: this address may not ask\n");
                return Answer::refused(Refusal::NotAllowed, response, reason);
            }
        }
        let selection = match route::select(&self.routes, &self.names(), &head.target) {
            Ok(s) => s,
            Err(Miss::NotFound(body)) => {
                let response = Response::text(404, body);
                return Answer::refused(Refusal::NoSuchPath, response, "no such path");
            }
        };
        let query_format = selection.format.as_deref();
        let format = if selection.metrics && query_format.is_none() {
            Format::Prometheus
        } else {
            match render::negotiate(query_format, head.accept.as_deref()) {
                Ok(f) => f,
                Err(why) => {
                    let response = Response::text(400, format!("{why}\n"));
                    return Answer::refused(Refusal::UnknownFormat, response, "unknown format");
                }
            }
        };
        let results = self.run(&selection.checks);
        let response = if selection.metrics {
            render::render_metrics(format, &results, selection.verbose, &self.statuses)
        } else {
            render::render(format, &results, selection.verbose, &self.statuses)
        };
        Answer {
            response,
            reason: reason_of(&results),
            results,
            refused: None,
        }
    }

    /// Answers an agent-check: the agent route's checks, one line. A peer
    /// outside the allowlist gets nothing. A route that selects nothing
    /// (refused when the service is put together, see
    /// [`crate::agent::check_route`]) runs nothing, and no check is `down`.
    pub fn answer_agent(&self, peer: Option<IpAddr>) -> AgentLine {
        if let Some(allow) = &self.allow {
            if !allow.allows(peer) {
                return AgentLine {
                    line: None,
                    reason: "agent check from a peer not allowed".into(),
                    results: Vec::new(),
                };
            }
        }
        let settings = self.agent.clone().unwrap_or_default();
        let checks = match route::select(&self.routes, &self.names(), &settings.route) {
            Ok(selection) => selection.checks,
            Err(_) => Vec::new(),
        };
        let results = self.run(&checks);
        let line = render::agent_line(&results, &settings);
        AgentLine {
            reason: line.trim_end().to_owned(),
            line: Some(line),
            results,
        }
    }

    /// Runs the checks `indices` at once, each under its own timeout, and
    /// returns their results in the same order. A check that cannot be
    /// built is unknown, its reason public and its error in the detail.
    pub fn run(&self, indices: &[usize]) -> Vec<CheckResult> {
        let clock = self.clock;
        let result = |e: &Entry<'c>, outcome: Outcome| CheckResult {
            name: e.name.clone(),
            outcome,
            at: clock(),
            warning_is_down: e.warning_is_down,
            show_output: e.show_output,
        };
        let run_one = |i: usize| {
            let e = &self.entries[i];
            let outcome = match self.check_of(e) {
                Ok(check) => run_check(check, Deadline::after(e.timeout)),
                Err(why) => unknown(
                    Verdict::unknown("checker failure: check misconfigured, see the log")
                        .with_detail(why.into_bytes()),
                ),
            };
            result(e, outcome)
        };
        // A thread that could not start, or that panicked (a bug), fails
        // closed.
        let failed = |i: usize| {
            let verdict = Verdict::unknown("checker failure: the check's thread failed");
            result(&self.entries[i], unknown(verdict))
        };
        // A program first, on the calling thread: starting it is the
        // slowest part of most routes.
        let here = indices
            .iter()
            .position(|&i| self.entries[i].is_program())
            .unwrap_or(0);
        crate::schedule::run_all(indices, here, run_one, failed)
    }
}

fn unknown(verdict: Verdict) -> Outcome {
    Outcome {
        verdict,
        error: None,
        elapsed: Duration::ZERO,
    }
}

/// The public reason of an answer: nothing selected, the one check's
/// reason, or the route's summary.
fn reason_of(results: &[CheckResult]) -> String {
    match results {
        [] => outcome::NO_CHECK.to_owned(),
        [one] => one.outcome.reason().to_owned(),
        several => outcome::summary(several),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::CheckError;
    use crate::route::Route;
    use std::time::UNIX_EPOCH;

    fn fixed_clock() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(784_111_777)
    }

    /// A check that says `verdict`, counting its runs.
    struct Fixed(Verdict, std::sync::atomic::AtomicU32);
    fn fixed(verdict: Verdict) -> Fixed {
        Fixed(verdict, std::sync::atomic::AtomicU32::new(0))
    }
    impl Fixed {
        fn runs(&self) -> u32 {
            self.1.load(std::sync::atomic::Ordering::SeqCst)
        }
    }
    impl Check for Fixed {
        fn run(&self, _: Deadline) -> Result<Verdict, CheckError> {
            self.1.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Ok(self.0.clone())
        }
    }

    fn head(method: Method, target: &str, accept: Option<&str>) -> RequestHead {
        RequestHead {
            method,
            target: target.into(),
            minor_version: 1,
            host: None,
            accept: accept.map(Into::into),
            head_len: 0,
        }
    }

    fn get(target: &str, accept: Option<&str>) -> RequestHead {
        head(Method::Get, target, accept)
    }

    fn body(answer: &Answer) -> String {
        String::from_utf8(answer.response.body().to_vec()).unwrap()
    }

    /// Two checks behind `/ready`, the first alone behind `/live`, with the
    /// agent on `/ready`.
    fn two<'c>(ok: &'c (dyn Check + Sync), down: &'c (dyn Check + Sync)) -> Service<'c> {
        let mut service = Service::single("ok", ok, Duration::from_secs(1), false, false);
        service.entries.push(Entry {
            name: "down".into(),
            timeout: Duration::from_secs(1),
            warning_is_down: false,
            show_output: false,
            source: Source::Given(down),
        });
        service.routes = Routes::Table(vec![
            Route {
                path: "/live".into(),
                checks: vec![0],
            },
            Route {
                path: "/ready".into(),
                checks: vec![0, 1],
            },
        ]);
        service.with_clock(fixed_clock).with_agent(AgentSettings {
            route: "/ready".into(),
            ..AgentSettings::default()
        })
    }

    #[test]
    fn each_format_from_a_head_with_no_socket() {
        let (ok, down) = (
            fixed(Verdict::healthy("fine")),
            fixed(Verdict::unhealthy("gone")),
        );
        let service = two(&ok, &down);

        let live = service.answer(&get("/live", None), None);
        assert_eq!(
            (
                live.response.status(),
                body(&live).as_str(),
                live.reason.as_str()
            ),
            (200, "healthy: fine\n", "fine")
        );
        assert!(live.ran() && live.refused.is_none());

        let text = service.answer(&get("/ready", None), None);
        assert_eq!(text.response.status(), 503);
        assert_eq!(
            body(&text),
            "unhealthy: 1 of 2 checks failed\n[-]down failed: gone\n"
        );
        assert_eq!(text.reason, "unhealthy: 1 of 2 checks failed");
        assert_eq!(text.results.len(), 2);

        let json = service.answer(&get("/ready", Some("application/health+json")), None);
        assert_eq!(json.response.status(), 503);
        assert!(
            body(&json).starts_with(
                "{\"status\":\"fail\",\"output\":\"unhealthy: 1 of 2 checks failed\",\"checks\":{\"ok\":[{\"status\":\"pass\""
            ),
            "{}",
            body(&json)
        );

        let prom = service.answer(&get("/ready?format=prometheus", None), None);
        assert_eq!(prom.response.status(), 503);
        assert!(body(&prom).contains("inetd_health_check_success{check=\"down\"} 0\n"));

        let metrics = service.answer(&get("/metrics", None), None);
        assert_eq!(metrics.response.status(), 200);
        // The same view but for the status (and the checks' durations).
        let timeless = |a: &Answer| -> Vec<String> {
            body(a)
                .lines()
                .filter(|l| !l.starts_with("inetd_health_check_duration_seconds{"))
                .map(str::to_owned)
                .collect()
        };
        assert_eq!(timeless(&metrics), timeless(&prom));

        // OPTIONS (HAProxy's default) runs the route and lists the methods.
        let options = service.answer(&head(Method::Options, "/live", None), None);
        assert_eq!(options.response.status(), 200);
        assert!(options.response.has_header("Allow"));
    }

    #[test]
    fn refusals_run_nothing() {
        let (ok, down) = (
            fixed(Verdict::healthy("fine")),
            fixed(Verdict::unhealthy("gone")),
        );
        let local: IpAddr = "127.0.0.1".parse().unwrap();
        let service =
            two(&ok, &down).with_allowlist(Allowlist::new(vec!["10.0.0.0/8".parse().unwrap()]));
        for (request, peer, status, refusal, reason) in [
            (
                head(Method::Other("POST".into()), "/live", None),
                Some(local),
                405,
                Refusal::Method,
                "method not allowed",
            ),
            (
                get("/live", None),
                Some(local),
                403,
                Refusal::NotAllowed,
                "peer 127.0.0.1 not allowed",
            ),
            (
                get("/live", None),
                None,
                403,
                Refusal::NotAllowed,
                "peer address unknown: not allowed",
            ),
            (
                get("/nope", None),
                Some("10.1.2.3".parse().unwrap()),
                404,
                Refusal::NoSuchPath,
                "no such path",
            ),
            (
                get("/live?format=xml", None),
                Some("10.1.2.3".parse().unwrap()),
                400,
                Refusal::UnknownFormat,
                "unknown format",
            ),
        ] {
            let a = service.answer(&request, peer);
            assert_eq!(
                (a.response.status(), a.refused, a.reason.as_str(), a.ran()),
                (status, Some(refusal), reason, false)
            );
        }
        assert_eq!(
            (ok.runs(), down.runs()),
            (0, 0),
            "a refused request ran a check"
        );
        // HAProxy's default check, refused, still learns the methods.
        for (target, peer) in [
            ("/live", Some(local)),
            ("/nope", Some("10.1.2.3".parse().unwrap())),
        ] {
            let a = service.answer(&head(Method::Options, target, None), peer);
            assert!(a.refused.is_some());
            assert!(a.response.has_header("Allow"), "OPTIONS {target}: {a:?}");
        }
    }

    #[test]
    fn nothing_selected_is_not_healthy() {
        let (ok, down) = (
            fixed(Verdict::healthy("fine")),
            fixed(Verdict::healthy("also fine")),
        );
        let service = two(&ok, &down);
        let a = service.answer(&get("/ready?exclude=ok&exclude=down", None), None);
        assert_eq!(
            (
                a.response.status(),
                body(&a).as_str(),
                a.reason.as_str(),
                a.ran()
            ),
            (
                503,
                "unknown: no check selected\n",
                "no check selected",
                false
            )
        );
    }

    #[test]
    fn the_agent_from_no_socket() {
        let (ok, down) = (
            fixed(Verdict::healthy("fine")),
            fixed(Verdict::unhealthy("gone")),
        );
        let service = two(&ok, &down);
        let a = service.answer_agent(None);
        assert_eq!(a.line.as_deref(), Some("down #down: gone\n"));
        assert_eq!(a.results.len(), 2);
        let up = fixed(Verdict::healthy("back"));
        let service = two(&ok, &up);
        assert_eq!(
            service.answer_agent(None).line.as_deref(),
            Some("up ready 100%\n")
        );
        // Outside the allowlist: nothing said, nothing run.
        let service = service.with_allowlist(Allowlist::new(vec!["10.0.0.0/8".parse().unwrap()]));
        let before = (ok.runs(), up.runs());
        let refused = service.answer_agent(Some("127.0.0.1".parse().unwrap()));
        assert_eq!((refused.line, refused.results.len()), (None, 0));
        assert_eq!(
            (ok.runs(), up.runs()),
            before,
            "a refused agent ran a check"
        );
    }

    #[test]
    fn a_check_that_cannot_be_built_is_unknown_with_its_error_in_the_detail() {
        let spec = Spec::new(Kind::Mariadb(crate::spec::Server {
            defaults_extra_file: Some("/nonexistent/monitor.cnf".into()),
            ..Default::default()
        }));
        let service = Service::new(
            vec![("db".into(), spec)],
            Routes::Any(vec![0]),
            Statuses::default(),
            StateDir::given(std::env::temp_dir()),
        );
        let a = service.answer(&get("/", None), None);
        assert_eq!(
            (a.response.status(), body(&a).as_str()),
            (
                503,
                "unknown: checker failure: check misconfigured, see the log\n"
            )
        );
        let detail = a.results[0].outcome.verdict.detail.as_deref().unwrap();
        assert!(
            String::from_utf8_lossy(detail).contains("/nonexistent/monitor.cnf"),
            "{}",
            String::from_utf8_lossy(detail)
        );
        assert!(service.build_all().is_err());
    }
}
