//! What one process serves, and the answer to a request, as plain values.
//!
//! A [`Service`] is named checks, the routes to them, the status codes in
//! use and who may ask. [`Service::answer`] turns a request head (and the
//! peer's address) into an [`Answer`]: allowlist, route, format, the
//! route's checks run at once, Patroni's `?lag=` and `?replication_state=`
//! applied to what they found, rendering. [`Service::answer_agent`] does
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
use crate::check::postgres::bytes;
use crate::check::{run_check, Check, Fact, Health, Outcome, Verdict};
use crate::http::{Method, RequestHead, Response};
use crate::outcome::{self, CheckResult, State, Statuses};
use crate::render::{self, Format};
use crate::route::{self, Miss, ReplicationState, Routes, Selection};
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
    #[cfg(feature = "tls")]
    tls: Option<std::sync::Arc<crate::tls::Tls>>,
    facts: Option<std::sync::Arc<dyn ProcessFacts>>,
}

/// Facts of the serving process, not of a check, that `/metrics` shows
/// beside the checks': a long-lived server's last reload, say. Each line
/// is a whole family in the text exposition format.
pub trait ProcessFacts: Send + Sync {
    /// The families, HELP and TYPE lines included, each line ending in
    /// `\n`.
    fn metrics(&self) -> String;
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
    /// `?lag=` or `?replication_state=` is not one we serve, or is given
    /// twice (400).
    BadQuery,
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
            #[cfg(feature = "tls")]
            tls: None,
            facts: None,
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
            #[cfg(feature = "tls")]
            tls: None,
            facts: None,
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

    /// Serves HTTPS (and, as its settings say, plaintext) on its port.
    #[cfg(feature = "tls")]
    pub fn with_tls(mut self, tls: std::sync::Arc<crate::tls::Tls>) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Its TLS side, if it serves HTTPS.
    #[cfg(feature = "tls")]
    pub fn tls(&self) -> Option<&std::sync::Arc<crate::tls::Tls>> {
        self.tls.as_ref()
    }

    /// The families of the process beside the checks': the served
    /// certificate's expiry, and what [`Service::with_process_facts`] adds.
    fn process_metrics(&self) -> String {
        #[allow(unused_mut)]
        let mut out = String::new();
        #[cfg(feature = "tls")]
        if let Some(at) = self.tls.as_ref().and_then(|t| t.not_after()) {
            out.push_str(&render::process_gauge(
                "inetd_health_tls_cert_expiry_timestamp_seconds",
                "When the certificate served on this port expires (notAfter).",
                at,
            ));
        }
        if let Some(facts) = &self.facts {
            out.push_str(&facts.metrics());
        }
        out
    }

    /// Shows `facts` on `/metrics` after the checks' families.
    pub fn with_process_facts(mut self, facts: std::sync::Arc<dyn ProcessFacts>) -> Self {
        self.facts = Some(facts);
        self
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
            Err(Miss::BadQuery(body)) => {
                let response = Response::text(400, body);
                return Answer::refused(Refusal::BadQuery, response, "bad query");
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
        let mut results = self.run(&selection.checks);
        judge_postgres(&mut results, &selection);
        let response = if selection.metrics {
            render::render_metrics(format, &results, selection.verbose, &self.statuses)
        } else {
            render::render(format, &results, selection.verbose, &self.statuses)
        };
        let response = match format {
            Format::Prometheus => response.extended(self.process_metrics().as_bytes()),
            _ => response,
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

/// Patroni's `?lag=` and `?replication_state=`, applied to what the
/// PostgreSQL checks found (their facts), after they ran: a result from the
/// cache keeps its facts, and is judged alike. Only a passing result can
/// be taken down, keeping its detail and facts; one that fails already,
/// or that the operator disabled, is left as it is.
///
/// As in Patroni (api.py: the parameters go only into the replica's status
/// code, and `/read-only` passes a primary before looking at it), they
/// judge standbys only: a primary passes both, `?replication_state=` too.
/// Whether a primary may answer is the check's role to say (`replica`
/// takes it out, `any` and `read-only` let it in), as Patroni's path does.
///
/// Results without PostgreSQL facts (exec, tcp, mariadb, a postgres ping)
/// are not judged where another result carries them. Where Patroni knows
/// the lag always, we know it only from a postgres check that logs in, and
/// what cannot be told fails closed: a standby whose lag or WAL receiver
/// was not read is down, and where no result carries PostgreSQL's role at
/// all (a ping, no postgres check) and none fails, the passing results are
/// taken out as unknown, or a threshold copied from a Patroni config would
/// pass every lagging standby in silence. (A failed login has no facts
/// either, but the answer is a 503 already: the others keep their word.)
fn judge_postgres(results: &mut [CheckResult], selection: &Selection) {
    if !selection.judges_postgres() {
        return;
    }
    let mut judged = false;
    for result in results.iter_mut() {
        let facts = &result.outcome.verdict.facts;
        let Some(in_recovery) = facts.iter().find_map(|f| match f {
            Fact::PgInRecovery(b) => Some(*b),
            _ => None,
        }) else {
            continue;
        };
        judged = true;
        if !in_recovery || !passes(result) {
            continue;
        }
        if let Some(reason) = standby_fails(facts, selection) {
            take_down(result, Health::Unhealthy, reason);
        }
    }
    if !judged && results.iter().all(|r| r.state() != State::Fail) {
        let given = match (selection.lag, selection.replication_state) {
            (Some(_), Some(_)) => "?lag= and ?replication_state= need",
            (Some(_), None) => "?lag= needs",
            (None, _) => "?replication_state= needs",
        };
        let reason =
            format!("{given} a postgres check that logs in: no check here read the server's role");
        for result in results.iter_mut().filter(|r| passes(r)) {
            take_down(result, Health::Unknown, reason.clone());
        }
    }
}

fn passes(result: &CheckResult) -> bool {
    matches!(result.state(), State::Pass | State::Warn)
}

/// Why a standby with `facts` fails the query's thresholds, if it does.
fn standby_fails(facts: &[Fact], selection: &Selection) -> Option<String> {
    if selection.replication_state == Some(ReplicationState::Streaming) {
        let streaming = facts.iter().find_map(|f| match f {
            Fact::PgWalReceiverStreaming(b) => Some(*b),
            _ => None,
        });
        match streaming {
            Some(true) => {}
            Some(false) => return Some("not streaming (?replication_state=streaming)".into()),
            None => {
                return Some(
                    "WAL receiver state unknown (?replication_state=streaming): grant pg_monitor to the check's role".into(),
                )
            }
        }
    }
    if let Some(max) = selection.lag {
        let lag = facts.iter().find_map(|f| match f {
            Fact::PgReplayLagBytes(n) => Some(*n),
            _ => None,
        });
        match lag {
            Some(n) if n > max => {
                // A limit that is no whole unit would read rounded ("20 MB
                // exceeds 20.0 MB"): both in bytes then.
                let (n, max) = if bytes(max).contains('.') {
                    (format!("{n} B"), format!("{max} B"))
                } else {
                    (bytes(n), bytes(max))
                };
                return Some(format!("replay lag {n} exceeds ?lag= {max}"));
            }
            Some(_) => {}
            None => return Some(format!("replay lag unknown (?lag= {})", bytes(max))),
        }
    }
    None
}

fn take_down(result: &mut CheckResult, health: Health, reason: String) {
    let verdict = &mut result.outcome.verdict;
    verdict.health = health;
    verdict.reason = reason;
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

    /// A PostgreSQL standby as the postgres check reports one: its lag in
    /// bytes and its WAL receiver when they were read.
    fn standby(lag: Option<u64>, streaming: Option<bool>) -> Verdict {
        let mut v = Verdict::healthy("PostgreSQL 16.4 standby")
            .with_detail(b"the check's own detail".to_vec())
            .with_fact(Fact::PgInRecovery(true));
        if let Some(s) = streaming {
            v = v.with_fact(Fact::PgWalReceiverStreaming(s));
        }
        if let Some(n) = lag {
            v = v
                .with_fact(Fact::PgReplayLagBytes(n))
                .with_fact(Fact::PgReplayLagSeconds(1.5));
        }
        v
    }

    fn primary() -> Verdict {
        Verdict::healthy("PostgreSQL 16.4 primary").with_fact(Fact::PgInRecovery(false))
    }

    /// The status of `target`, and the reason and health of the second
    /// check (the postgres one).
    fn judged(service: &Service<'_>, target: &str) -> (u16, String, Health) {
        let a = service.answer(&get(target, None), None);
        assert!(a.refused.is_none(), "{target}: {a:?}");
        let pg = &a.results[1].outcome.verdict;
        (a.response.status(), pg.reason.clone(), pg.health)
    }

    const MB: u64 = 1 << 20;

    #[test]
    fn patroni_lag_takes_a_standby_beyond_it_out() {
        let exec = fixed(Verdict::healthy("fine"));
        let pg = fixed(standby(Some(20 * MB), Some(true)));
        let service = two(&exec, &pg);
        let over = |reason: &str| (503, reason.to_owned(), Health::Unhealthy);
        let under = (200, "PostgreSQL 16.4 standby".to_owned(), Health::Healthy);
        for (query, expect) in [
            ("", under.clone()),
            ("lag=16MB", over("replay lag 20 MB exceeds ?lag= 16 MB")),
            ("lag=19MB", over("replay lag 20 MB exceeds ?lag= 19 MB")),
            ("lag=20MB", under.clone()),
            ("lag=20971520", under.clone()),
            (
                "lag=20971519",
                over("replay lag 20971520 B exceeds ?lag= 20971519 B"),
            ),
            ("lag=20971520B", under.clone()),
            (
                "lag=20479kB",
                over("replay lag 20971520 B exceeds ?lag= 20970496 B"),
            ),
            ("lag=20480KB", under.clone()),
            ("lag=1GB", under.clone()),
            ("lag=1TB", under.clone()),
            ("lag=0", over("replay lag 20 MB exceeds ?lag= 0 B")),
        ] {
            assert_eq!(
                judged(&service, &format!("/ready?{query}")),
                expect,
                "?{query}"
            );
        }
        let a = service.answer(&get("/ready?lag=16MB&verbose", None), None);
        // The check's detail and facts stay: the log and the views keep them.
        let pg_verdict = &a.results[1].outcome.verdict;
        assert_eq!(
            pg_verdict.detail.as_deref(),
            Some(&b"the check's own detail"[..])
        );
        assert!(pg_verdict.facts.contains(&Fact::PgReplayLagBytes(20 * MB)));
        assert_eq!(
            body(&a),
            "[+]ok ok: fine\n[-]down failed: replay lag 20 MB exceeds ?lag= 16 MB\nunhealthy: 1 of 2 checks failed\n"
        );
        // A check without PostgreSQL facts is not judged.
        assert_eq!(
            (a.results[0].outcome.reason(), a.results[0].outcome.health()),
            ("fine", Health::Healthy)
        );
        // A standby easing off with a warning goes down beyond ?lag= too.
        let warning = fixed(Verdict {
            health: Health::Warning,
            ..standby(Some(20 * MB), Some(true))
        });
        assert_eq!(
            judged(&two(&exec, &warning), "/ready?lag=16MB"),
            over("replay lag 20 MB exceeds ?lag= 16 MB")
        );
    }

    #[test]
    fn patroni_replication_state_streaming_takes_a_standby_not_streaming_out() {
        let exec = fixed(Verdict::healthy("fine"));
        for (streaming, expect) in [
            (Some(true), (200, "PostgreSQL 16.4 standby", Health::Healthy)),
            (
                Some(false),
                (
                    503,
                    "not streaming (?replication_state=streaming)",
                    Health::Unhealthy,
                ),
            ),
            (
                None,
                (
                    503,
                    "WAL receiver state unknown (?replication_state=streaming): grant pg_monitor to the check's role",
                    Health::Unhealthy,
                ),
            ),
        ] {
            let pg = fixed(standby(Some(0), streaming));
            let service = two(&exec, &pg);
            let (status, reason, health) =
                judged(&service, "/ready?replication_state=streaming");
            assert_eq!((status, reason.as_str(), health), expect, "{streaming:?}");
            // Without the parameter, the check's word stands.
            assert_eq!(judged(&service, "/ready").0, 200);
        }
        // Both given: the receiver first, as the check itself judges.
        let pg = fixed(standby(Some(20 * MB), Some(false)));
        assert_eq!(
            judged(
                &two(&exec, &pg),
                "/ready?lag=16MB&replication_state=streaming"
            )
            .1,
            "not streaming (?replication_state=streaming)"
        );
        let pg = fixed(standby(Some(20 * MB), Some(true)));
        assert_eq!(
            judged(
                &two(&exec, &pg),
                "/ready?lag=16MB&replication_state=streaming"
            )
            .1,
            "replay lag 20 MB exceeds ?lag= 16 MB"
        );
    }

    #[test]
    fn patroni_thresholds_pass_a_primary() {
        let exec = fixed(Verdict::healthy("fine"));
        let pg = fixed(primary());
        let service = two(&exec, &pg);
        for query in [
            "lag=0",
            "replication_state=streaming",
            "lag=0&replication_state=streaming",
        ] {
            assert_eq!(
                judged(&service, &format!("/ready?{query}")),
                (200, "PostgreSQL 16.4 primary".to_owned(), Health::Healthy),
                "?{query}"
            );
        }
    }

    #[test]
    fn patroni_lag_unknown_is_down() {
        let exec = fixed(Verdict::healthy("fine"));
        let pg = fixed(standby(None, Some(true)));
        let service = two(&exec, &pg);
        assert_eq!(
            judged(&service, "/ready?lag=16MB"),
            (
                503,
                "replay lag unknown (?lag= 16 MB)".to_owned(),
                Health::Unhealthy
            )
        );
        assert_eq!(
            judged(&service, "/ready?replication_state=streaming").0,
            200
        );
    }

    #[test]
    fn patroni_thresholds_leave_a_failing_check_its_own_reason() {
        let exec = fixed(Verdict::healthy("fine"));
        let pg = fixed(Verdict {
            health: Health::Unhealthy,
            reason: "not a primary: PostgreSQL 16.4 is a standby".into(),
            ..standby(Some(20 * MB), Some(false))
        });
        assert_eq!(
            judged(
                &two(&exec, &pg),
                "/ready?lag=16MB&replication_state=streaming"
            ),
            (
                503,
                "not a primary: PostgreSQL 16.4 is a standby".to_owned(),
                Health::Unhealthy
            )
        );
    }

    #[test]
    fn patroni_thresholds_with_no_postgresql_facts_fail_closed() {
        let (a, b) = (
            fixed(Verdict::healthy("fine")),
            fixed(Verdict::healthy("PostgreSQL accepts connections (ping)")),
        );
        let service = two(&a, &b);
        for (query, reason) in [
            ("lag=16MB", "?lag= needs"),
            ("replication_state=streaming", "?replication_state= needs"),
            (
                "lag=16MB&replication_state=streaming",
                "?lag= and ?replication_state= need",
            ),
        ] {
            let answer = service.answer(&get(&format!("/ready?{query}"), None), None);
            assert_eq!(answer.response.status(), 503, "?{query}");
            let reason = format!(
                "{reason} a postgres check that logs in: no check here read the server's role"
            );
            for r in &answer.results {
                assert_eq!(
                    (r.outcome.reason(), r.outcome.health()),
                    (reason.as_str(), Health::Unknown)
                );
            }
        }
        assert_eq!(
            service.answer(&get("/ready", None), None).response.status(),
            200
        );
        // A failed login has no facts either, but the answer is down
        // already: the others keep their word.
        let (a, b) = (
            fixed(Verdict::healthy("fine")),
            fixed(Verdict::unhealthy("connection refused")),
        );
        let answer = two(&a, &b).answer(&get("/ready?lag=16MB", None), None);
        assert_eq!(answer.response.status(), 503);
        assert_eq!(
            (
                answer.results[0].outcome.reason(),
                answer.results[1].outcome.reason()
            ),
            ("fine", "connection refused")
        );
    }

    #[test]
    fn patroni_thresholds_on_metrics_options_head_and_json() {
        let exec = fixed(Verdict::healthy("fine"));
        let pg = fixed(standby(Some(20 * MB), Some(true)));
        let service = two(&exec, &pg);
        // /metrics stays 200 for Prometheus; the gauge says down.
        let metrics = service.answer(&get("/metrics?lag=16MB", None), None);
        assert_eq!(metrics.response.status(), 200);
        assert!(
            body(&metrics).contains("inetd_health_check_success{check=\"down\"} 0\n"),
            "{}",
            body(&metrics)
        );
        let metrics = service.answer(&get("/metrics?lag=32MB", None), None);
        assert!(body(&metrics).contains("inetd_health_check_success{check=\"down\"} 1\n"));
        // Patroni answers OPTIONS and HEAD as GET, status only: HAProxy's
        // `option httpchk OPTIONS /replica?lag=16MB` reads the same.
        for method in [Method::Options, Method::Head] {
            let a = service.answer(&head(method.clone(), "/ready?lag=16MB", None), None);
            assert_eq!(a.response.status(), 503, "{method:?}");
            let a = service.answer(&head(method.clone(), "/ready?lag=32MB", None), None);
            assert_eq!(a.response.status(), 200, "{method:?}");
        }
        let json = service.answer(&get("/ready?lag=16MB&format=json", None), None);
        assert_eq!(json.response.status(), 503);
        assert!(
            body(&json).contains("replay lag 20 MB exceeds ?lag= 16 MB"),
            "{}",
            body(&json)
        );
    }

    #[test]
    fn patroni_thresholds_judge_a_cached_verdict_alike() {
        let d = std::env::temp_dir().join(format!("ih-service-cached-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        let exec = fixed(Verdict::healthy("fine"));
        let pg = fixed(standby(Some(20 * MB), Some(true)));
        let cached = crate::check::Cached::new(
            &pg,
            StateDir::given(&d),
            "pg.state",
            Duration::from_secs(3600),
            Duration::from_secs(3600),
        );
        let service = two(&exec, &cached);
        assert_eq!(judged(&service, "/ready?lag=32MB").0, 200);
        let (status, reason, _) = judged(&service, "/ready?lag=16MB");
        let a = service.answer(&get("/ready?lag=16MB", None), None);
        assert!(a.results[1].outcome.verdict.cached_age.is_some());
        assert_eq!(
            (status, reason.as_str(), pg.runs()),
            (503, "replay lag 20 MB exceeds ?lag= 16 MB", 1)
        );
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn a_bad_threshold_is_400_and_runs_nothing() {
        let exec = fixed(Verdict::healthy("fine"));
        let pg = fixed(standby(Some(20 * MB), Some(true)));
        let service = two(&exec, &pg);
        for query in [
            "lag=16XB",
            "lag=-1",
            "lag=1.5MB",
            "lag=99999999999999999999",
            "lag=16MB&lag=1MB",
            "replication_state=stopped",
        ] {
            for method in [Method::Get, Method::Head, Method::Options] {
                let a = service.answer(
                    &head(method.clone(), &format!("/ready?{query}"), None),
                    None,
                );
                assert_eq!(
                    (a.response.status(), a.refused, a.reason.as_str(), a.ran()),
                    (400, Some(Refusal::BadQuery), "bad query", false),
                    "{method:?} ?{query}"
                );
                assert!(body(&a).starts_with("bad query: ?"), "{}", body(&a));
            }
        }
        assert_eq!(
            (exec.runs(), pg.runs()),
            (0, 0),
            "a refused query ran a check"
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
