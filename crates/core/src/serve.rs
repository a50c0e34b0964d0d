//! One connection, read forward: read the request, route it, run the
//! checks, render the answer, send it, close.
//!
//! [`serve_service`] is that pipeline for a [`Service`] (named checks and
//! routes, from a config file or a command line); [`serve_check`] serves one
//! check on every path; [`serve`] takes any handler. Each step is a function
//! with plain inputs and outputs: [`crate::route::select`],
//! [`Service::run`], [`crate::render::render`].

use std::net::IpAddr;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use crate::agent::{sniff, AgentSettings, Sniffed};
use crate::allow::Allowlist;
use crate::check::{run_check, Check, Outcome, Policy, Verdict};
use crate::conn::{close_politely, Input, Output};
use crate::exit;
use crate::http::{read_head, read_head_with, Limits, Method, ReadError, RequestHead, Response};
use crate::render::{self, CheckResult, Format, Statuses};
use crate::route::{self, Miss, Routes};
use crate::spec::{Kind, Spec};
use crate::state::StateDir;
use crate::Deadline;

/// The methods answered, as sent in `Allow`.
pub const ALLOW: &str = "GET, HEAD, OPTIONS";

/// How one connection is served.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// Bounds on the request head, its read deadline included.
    pub limits: Limits,
    /// Budget for the check, counted from when the request has been read.
    pub check_timeout: Duration,
    /// How long to keep reading (and discarding) after the response, waiting
    /// for the client to close first; see [`close_politely`].
    pub drain: Duration,
    /// The clock for the `Date` header; replaced in tests for exact bytes.
    pub clock: fn() -> SystemTime,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            limits: Limits::default(),
            check_timeout: Duration::from_secs(2),
            // Well-behaved clients close within a round trip of our FIN; this
            // only bounds the others, and keeps every handler's life within
            // read deadline + check deadline + half a second.
            drain: Duration::from_millis(500),
            clock: SystemTime::now,
        }
    }
}

/// How a connection ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Ending {
    /// The request was answered (a check's 200 or 503 among others).
    Answered,
    /// The request was refused with a 4xx: the client sent something wrong.
    Rejected,
    /// The client closed without a byte (a plain TCP check); nothing was
    /// run or sent.
    Silent,
    /// The connection broke (a reset, a failed write) before the response
    /// was out.
    Broken,
}

/// What happened on a connection: everything the log line needs.
#[derive(Debug)]
pub struct Served {
    /// The request method, once a head was read.
    pub method: Option<Method>,
    /// The request target, once a head was read.
    pub target: Option<String>,
    /// The status sent, if a response went out.
    pub status: Option<u16>,
    /// Why: the check's reason, or what was wrong with the request.
    pub reason: String,
    /// How the connection ended.
    pub ending: Ending,
    /// The checks that ran, with their outcomes.
    pub results: Vec<CheckResult>,
}

impl Served {
    /// The process exit code for this connection (see [`crate::exit`]).
    pub fn exit_code(&self) -> i32 {
        match self.ending {
            Ending::Answered | Ending::Silent => exit::OK,
            Ending::Rejected | Ending::Broken => exit::BAD_CLIENT,
        }
    }
}

/// Serves one connection with `handler` answering valid GET, HEAD and
/// OPTIONS requests; the protocol's own failures (400, 405, 408, 431) are
/// answered here.
///
/// The handler's response is sent whole in one write; for HEAD its body is
/// left out. The connection is then closed politely.
pub fn serve<I, O, F>(input: &mut I, output: &mut O, options: &Options, handler: F) -> Served
where
    I: Input + ?Sized,
    O: Output + ?Sized,
    F: FnOnce(&RequestHead) -> Response,
{
    let deadline = Deadline::after(options.limits.read_timeout);
    let head = read_head(input, &options.limits, deadline);
    serve_head(input, output, options, head, handler)
}

/// [`serve`] for a connection whose request head was read already (or
/// failed to arrive): an event loop reads heads of many connections at
/// once, and hands each complete one over.
pub fn serve_head<I, O, F>(
    input: &mut I,
    output: &mut O,
    options: &Options,
    head: Result<RequestHead, ReadError>,
    handler: F,
) -> Served
where
    I: Input + ?Sized,
    O: Output + ?Sized,
    F: FnOnce(&RequestHead) -> Response,
{
    let head = match head {
        Ok(head) => head,
        Err(e) => return refuse(input, output, options, e),
    };
    let (response, ending) = match head.method {
        Method::Get | Method::Head | Method::Options => (handler(&head), Ending::Answered),
        _ => (
            Response::text(405, format!("method not allowed: use {ALLOW}\n"))
                .header("Allow", ALLOW),
            Ending::Rejected,
        ),
    };
    let response = if head.method == Method::Options && !response.has_header("Allow") {
        response.header("Allow", ALLOW)
    } else {
        response
    };
    let reason = if ending == Ending::Rejected {
        "method not allowed".to_owned()
    } else {
        String::new()
    };
    let head_only = head.method == Method::Head;
    let mut served = Served {
        method: Some(head.method),
        target: Some(head.target),
        status: Some(response.status()),
        reason,
        ending,
        results: Vec::new(),
    };
    send(input, output, options, &response, head_only, &mut served);
    served
}

/// Serves one connection by running `check` for each valid request (under
/// `options.check_timeout`) and answering as `policy` says.
pub fn serve_check<I, O, C>(
    input: &mut I,
    output: &mut O,
    options: &Options,
    check: &C,
    policy: &Policy,
) -> Served
where
    I: Input + ?Sized,
    O: Output + ?Sized,
    C: Check + ?Sized,
{
    let mut outcome = None;
    let mut served = serve(input, output, options, |_| {
        let o = run_check(check, Deadline::after(options.check_timeout));
        let response = policy.response(&o);
        outcome = Some(o);
        response
    });
    if let Some(o) = outcome {
        served.reason = o.reason().to_owned();
        served.results.push(CheckResult {
            name: "check".into(),
            outcome: o,
            at: (options.clock)(),
            warning_is_down: policy.warning_is_down,
            show_output: policy.show_detail,
        });
    }
    served
}

/// The stack of a check's thread: checks are shallow (the deepest is the
/// MySQL client's), and a smaller mapping is less to set up per poll.
const CHECK_STACK: usize = 256 * 1024;

/// Named checks and the routes to them: what one process serves.
#[derive(Debug)]
pub struct Service {
    entries: Vec<Entry>,
    routes: Routes,
    statuses: Statuses,
    state_dir: StateDir,
    allow: Option<Allowlist>,
    agent: Option<AgentSettings>,
}

struct Entry {
    name: String,
    spec: Spec,
    // Built on first use: a request runs only its route's checks, so only
    // those read their option files; a long-lived process builds each once.
    built: OnceLock<Result<Box<dyn Check + Send + Sync>, String>>,
}

impl std::fmt::Debug for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Entry")
            .field("name", &self.name)
            .field("spec", &self.spec)
            .field("built", &self.built.get().map(|b| b.is_ok()))
            .finish()
    }
}

impl Service {
    /// A service of `checks` (name and spec) reached by `routes`, keeping
    /// shared state in `state_dir`.
    pub fn new(
        checks: Vec<(String, Spec)>,
        routes: Routes,
        statuses: Statuses,
        state_dir: StateDir,
    ) -> Self {
        Service {
            entries: checks
                .into_iter()
                .map(|(name, spec)| Entry {
                    name,
                    spec,
                    built: OnceLock::new(),
                })
                .collect(),
            routes,
            statuses,
            state_dir,
            allow: None,
            agent: None,
        }
    }

    /// Answers HAProxy's agent-check on the same port (see
    /// [`crate::agent`]).
    pub fn with_agent(mut self, agent: AgentSettings) -> Self {
        self.agent = Some(agent);
        self
    }

    /// The agent's settings, if it answers agents.
    pub fn agent(&self) -> Option<&AgentSettings> {
        self.agent.as_ref()
    }

    /// Serves only peers in `allow`; the others get 403 and run nothing.
    pub fn with_allowlist(mut self, allow: Allowlist) -> Self {
        self.allow = Some(allow);
        self
    }

    /// The longest timeout of its checks.
    pub fn longest_timeout(&self) -> Duration {
        self.entries
            .iter()
            .map(|e| e.spec.timeout)
            .max()
            .unwrap_or_default()
    }

    /// Whether any check keeps state shared between processes (a cache or
    /// a cap), which every program running as the service's user could
    /// forge (docs/resilience.md).
    pub fn shares_state(&self) -> bool {
        self.entries
            .iter()
            .any(|e| e.spec.cache_ttl.is_some() || e.spec.max_concurrent.is_some())
    }

    /// The check names, in order.
    pub fn names(&self) -> Vec<String> {
        self.entries.iter().map(|e| e.name.clone()).collect()
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
            if let Err(why) = self.built(e) {
                return Err((e.name.clone(), why.clone()));
            }
        }
        Ok(())
    }

    fn built<'a>(&self, e: &'a Entry) -> &'a Result<Box<dyn Check + Send + Sync>, String> {
        e.built
            .get_or_init(|| e.spec.build(&self.state_dir).map_err(|err| err.to_string()))
    }

    /// Runs the checks `indices` at once, each under its own timeout, and
    /// returns their results in the same order. A check that cannot be
    /// built is unknown, its reason public and its error in the detail.
    pub fn run(&self, indices: &[usize], clock: fn() -> SystemTime) -> Vec<CheckResult> {
        let run_one = |i: usize| {
            let e = &self.entries[i];
            let outcome = match self.built(e) {
                Ok(check) => run_check(&**check, Deadline::after(e.spec.timeout)),
                Err(why) => Outcome {
                    verdict: Verdict::unknown("checker failure: check misconfigured, see the log")
                        .with_detail(why.clone().into_bytes()),
                    error: None,
                    elapsed: Duration::ZERO,
                },
            };
            CheckResult {
                name: e.name.clone(),
                outcome,
                at: clock(),
                warning_is_down: e.spec.warning_is_down,
                show_output: e.spec.show_output,
            }
        };
        let failed = |i: usize| {
            // A thread that could not start, or that panicked (a bug),
            // fails closed.
            let e = &self.entries[i];
            CheckResult {
                name: e.name.clone(),
                outcome: Outcome {
                    verdict: Verdict::unknown("checker failure: the check's thread failed"),
                    error: None,
                    elapsed: Duration::ZERO,
                },
                at: clock(),
                warning_is_down: e.spec.warning_is_down,
                show_output: e.spec.show_output,
            }
        };
        match indices {
            [] => return Vec::new(),
            [one] => return vec![run_one(*one)],
            _ => {}
        }
        // One check runs here, at once: a program if the route has one
        // (starting a process is the slowest part of most routes). The
        // others run on threads that a helper thread starts, so that
        // starting them, which is slow on some machines (150 us a thread
        // was measured on one), is not on this check's path. A route takes
        // as long as its slowest check, not the sum.
        let here = indices
            .iter()
            .position(|&i| matches!(self.entries[i].spec.kind, Kind::Exec { .. }))
            .unwrap_or(0);
        let others: Vec<usize> = indices
            .iter()
            .enumerate()
            .filter(|&(at, _)| at != here)
            .map(|(_, &i)| i)
            .collect();
        let thread = || std::thread::Builder::new().stack_size(CHECK_STACK);
        let (run_one, failed, others) = (&run_one, &failed, &others);
        let mut by_index: Vec<(usize, CheckResult)> = std::thread::scope(|scope| {
            let helper = thread().spawn_scoped(scope, move || {
                let Some((first, rest)) = others.split_first() else {
                    return Vec::new();
                };
                let handles: Vec<_> = rest
                    .iter()
                    .map(|&i| (i, thread().spawn_scoped(scope, move || run_one(i))))
                    .collect();
                // The helper runs one check itself: one thread fewer.
                let mut results = vec![(*first, run_one(*first))];
                for (i, handle) in handles {
                    let joined = handle.map_err(drop).and_then(|h| h.join().map_err(drop));
                    results.push((i, joined.unwrap_or_else(|()| failed(i))));
                }
                results
            });
            let mut results = vec![(indices[here], run_one(indices[here]))];
            match helper.map_err(drop).and_then(|h| h.join().map_err(drop)) {
                Ok(theirs) => results.extend(theirs),
                Err(()) => results.extend(others.iter().map(|&i| (i, failed(i)))),
            }
            results
        });
        // Back in the route's order.
        by_index.sort_by_key(|(i, _)| indices.iter().position(|j| j == i));
        by_index.into_iter().map(|(_, r)| r).collect()
    }
}

/// Serves one connection for `service`: the request selects a route (or
/// one check of it, `/metrics`, …), its checks run concurrently, and the
/// answer is rendered in the format asked for. `peer` is the client's
/// address as the kernel knows it (`getpeername`, `accept`): with an
/// allowlist, a peer outside it (or one that cannot be told) gets 403 and
/// runs nothing.
pub fn serve_service<I, O>(
    input: &mut I,
    output: &mut O,
    options: &Options,
    service: &Service,
    peer: Option<IpAddr>,
) -> Served
where
    I: Input + ?Sized,
    O: Output + ?Sized,
{
    let deadline = Deadline::after(options.limits.read_timeout);
    let head = match &service.agent {
        None => read_head(input, &options.limits, deadline),
        Some(settings) => match sniff(input, &options.limits, settings, deadline) {
            Sniffed::Http(head) => read_head_with(input, head, deadline),
            Sniffed::Agent => return answer_agent(input, output, options, service, peer),
            Sniffed::Silent => Err(ReadError::Silent),
            Sniffed::Broken => Err(ReadError::Io(std::io::ErrorKind::ConnectionReset.into())),
        },
    };
    serve_service_head(input, output, options, service, peer, head)
}

/// Answers an agent-check: the agent route's checks, one line, close.
/// A peer outside the allowlist gets nothing.
pub fn answer_agent<I, O>(
    input: &mut I,
    output: &mut O,
    options: &Options,
    service: &Service,
    peer: Option<IpAddr>,
) -> Served
where
    I: Input + ?Sized,
    O: Output + ?Sized,
{
    let mut served = Served {
        method: None,
        target: Some("agent".into()),
        status: None,
        reason: String::new(),
        ending: Ending::Answered,
        results: Vec::new(),
    };
    if let Some(allow) = &service.allow {
        if !allow.allows(peer) {
            served.ending = Ending::Rejected;
            served.reason = "agent check from a peer not allowed".into();
            let _ = close_politely(input, output, options.drain);
            return served;
        }
    }
    let settings = service.agent.clone().unwrap_or_default();
    let names = service.names();
    // A route that selects nothing (refused at load, see
    // agent::check_route) runs nothing, and no check is a `down` line.
    let checks = match route::select(&service.routes, &names, &settings.route) {
        Ok(selection) => selection.checks,
        Err(_) => Vec::new(),
    };
    served.results = service.run(&checks, options.clock);
    let line = crate::agent::line(&served.results, &settings);
    served.reason = line.trim_end().to_owned();
    if let Err(e) = output.write_all(line.as_bytes()) {
        served.ending = Ending::Broken;
        served.reason = format!("{}; writing the agent line: {e}", served.reason);
        return served;
    }
    let _ = close_politely(input, output, options.drain);
    served
}

/// [`serve_service`] for a connection whose head was read already.
pub fn serve_service_head<I, O>(
    input: &mut I,
    output: &mut O,
    options: &Options,
    service: &Service,
    peer: Option<IpAddr>,
    head: Result<RequestHead, ReadError>,
) -> Served
where
    I: Input + ?Sized,
    O: Output + ?Sized,
{
    let names = service.names();
    let mut results = Vec::new();
    let mut denied = false;
    let mut served = serve_head(input, output, options, head, |head| {
        if let Some(allow) = &service.allow {
            if !allow.allows(peer) {
                denied = true;
                return Response::text(403, "forbidden: this address may not ask\n");
            }
        }
        let selection = match route::select(&service.routes, &names, &head.target) {
            Ok(s) => s,
            Err(Miss::NotFound(body)) => return Response::text(404, body),
        };
        let query_format = selection.format.as_deref();
        let format = if selection.metrics && query_format.is_none() {
            Format::Prometheus
        } else {
            match render::negotiate(query_format, head.accept.as_deref()) {
                Ok(f) => f,
                Err(why) => return Response::text(400, format!("{why}\n")),
            }
        };
        results = service.run(&selection.checks, options.clock);
        if selection.metrics {
            render::render_metrics(format, &results, selection.verbose, &service.statuses)
        } else {
            render::render(format, &results, selection.verbose, &service.statuses)
        }
    });
    if denied {
        served.ending = Ending::Rejected;
        served.reason = match peer {
            Some(ip) => format!("peer {} not allowed", crate::allow::unmapped(ip)),
            None => "peer address unknown: not allowed".into(),
        };
    } else if served.ending == Ending::Answered && served.status == Some(404) {
        served.ending = Ending::Rejected;
        served.reason = "no such path".into();
    } else if served.ending == Ending::Answered && served.status == Some(400) {
        served.ending = Ending::Rejected;
        served.reason = "unknown format".into();
    } else if served.ending == Ending::Answered {
        served.reason = match results.as_slice() {
            [] => render::NO_CHECK.to_owned(),
            [one] => one.outcome.reason().to_owned(),
            several => render::summary(several),
        };
    }
    served.results = results;
    served
}

fn refuse<I, O>(input: &mut I, output: &mut O, options: &Options, e: ReadError) -> Served
where
    I: Input + ?Sized,
    O: Output + ?Sized,
{
    let mut served = Served {
        method: None,
        target: None,
        status: None,
        reason: e.to_string(),
        ending: Ending::Silent,
        results: Vec::new(),
    };
    match e.status() {
        None if matches!(e, ReadError::Silent) => {}
        None => served.ending = Ending::Broken,
        Some(status) => {
            served.ending = Ending::Rejected;
            served.status = Some(status);
            let response = Response::text(status, format!("{e}\n"));
            send(input, output, options, &response, false, &mut served);
        }
    }
    served
}

fn send<I, O>(
    input: &mut I,
    output: &mut O,
    options: &Options,
    response: &Response,
    head_only: bool,
    served: &mut Served,
) where
    I: Input + ?Sized,
    O: Output + ?Sized,
{
    let bytes = response.encode(head_only, Some((options.clock)()));
    if let Err(e) = output.write_all(&bytes) {
        served.ending = Ending::Broken;
        served.reason = format!("{}; writing the response: {e}", served.reason);
        return;
    }
    // The response is out; a failure to shut down or drain now only means
    // the client left first, which changes nothing it will see.
    let _ = close_politely(input, output, options.drain);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::{CheckError, Health, Verdict};
    use std::cell::Cell;
    use std::io::Write;
    use std::time::UNIX_EPOCH;

    fn fixed_clock() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(784_111_777)
    }

    fn options() -> Options {
        Options {
            clock: fixed_clock,
            ..Options::default()
        }
    }

    struct Counting<'a> {
        runs: &'a Cell<u32>,
        verdict: Verdict,
    }
    impl Check for Counting<'_> {
        fn run(&self, _: Deadline) -> Result<Verdict, CheckError> {
            self.runs.set(self.runs.get() + 1);
            Ok(self.verdict.clone())
        }
    }

    fn exchange(request: &[u8], verdict: Verdict) -> (String, Served, u32) {
        let runs = Cell::new(0);
        let check = Counting {
            runs: &runs,
            verdict,
        };
        let mut input = request;
        let mut output = Vec::new();
        let served = serve_check(
            &mut input,
            &mut output,
            &options(),
            &check,
            &Policy::default(),
        );
        (String::from_utf8(output).unwrap(), served, runs.get())
    }

    const DATE: &str = "Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n";

    #[test]
    fn healthy_get_exact_bytes() {
        let (out, served, runs) = exchange(
            b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n",
            Verdict::healthy("exit status 0"),
        );
        assert_eq!(
            out,
            format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 23\r\n\
                 Connection: close\r\nCache-Control: no-store\r\n{DATE}\r\nhealthy: exit status 0\n"
            )
        );
        assert_eq!(runs, 1);
        assert_eq!(served.ending, Ending::Answered);
        assert_eq!(served.reason, "exit status 0");
        assert_eq!(served.target.as_deref(), Some("/health"));
        assert_eq!(served.exit_code(), 0);
    }

    #[test]
    fn unhealthy_is_503_and_exit_0() {
        let (out, served, _) = exchange(
            b"GET / HTTP/1.0\r\n\r\n",
            Verdict::unhealthy("exit status 2"),
        );
        assert!(
            out.starts_with("HTTP/1.1 503 Service Unavailable\r\n"),
            "{out}"
        );
        assert!(out.ends_with("\r\n\r\nunhealthy: exit status 2\n"), "{out}");
        assert_eq!(served.status, Some(503));
        assert_eq!(served.exit_code(), 0);
    }

    #[test]
    fn haproxy_options_runs_the_check_and_lists_allow() {
        let (out, served, runs) = exchange(b"OPTIONS / HTTP/1.0\r\n\r\n", Verdict::healthy("ok"));
        assert_eq!(runs, 1);
        assert!(out.starts_with("HTTP/1.1 200 OK\r\n"));
        assert!(out.contains("\r\nAllow: GET, HEAD, OPTIONS\r\n"), "{out}");
        assert!(out.ends_with("\r\n\r\nhealthy: ok\n"));
        assert_eq!(served.method, Some(Method::Options));
    }

    #[test]
    fn head_gets_headers_only() {
        let (out, _, runs) = exchange(
            b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n",
            Verdict::healthy("ok"),
        );
        assert_eq!(runs, 1);
        assert!(out.contains("Content-Length: 12\r\n"), "{out}");
        assert!(out.ends_with("\r\n\r\n"), "{out}");
    }

    #[test]
    fn other_methods_get_405_without_running_the_check() {
        for m in ["POST", "DELETE", "PUT", "get", "PRI"] {
            let req = format!("{m} / HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc");
            let (out, served, runs) = exchange(req.as_bytes(), Verdict::healthy("ok"));
            assert_eq!(runs, 0, "{m}");
            assert!(
                out.starts_with("HTTP/1.1 405 Method Not Allowed\r\n"),
                "{out}"
            );
            assert!(out.contains("\r\nAllow: GET, HEAD, OPTIONS\r\n"), "{out}");
            assert_eq!(served.exit_code(), exit::BAD_CLIENT);
        }
    }

    #[test]
    fn protocol_failures_are_answered_without_running_the_check() {
        let big = format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(9000));
        for (req, status) in [
            (
                b"\x16\x03\x01\x00\xa5\x01\x00".as_slice(),
                "400 Bad Request",
            ),
            (b"GET / HTTP/1.1\r\nHost: x\r\n", "400 Bad Request"),
            (big.as_bytes(), "431 Request Header Fields Too Large"),
        ] {
            let (out, served, runs) = exchange(req, Verdict::healthy("ok"));
            assert_eq!(runs, 0);
            assert!(out.starts_with(&format!("HTTP/1.1 {status}\r\n")), "{out}");
            let body = out.split("\r\n\r\n").nth(1).unwrap();
            assert!(
                out.contains(&format!("Content-Length: {}\r\n", body.len())),
                "{out}"
            );
            assert_eq!(served.ending, Ending::Rejected);
            assert_eq!(served.exit_code(), exit::BAD_CLIENT);
        }
    }

    #[test]
    fn silent_client_gets_nothing_and_runs_nothing() {
        let (out, served, runs) = exchange(b"", Verdict::healthy("ok"));
        assert_eq!(out, "");
        assert_eq!(runs, 0);
        assert_eq!(served.ending, Ending::Silent);
        assert_eq!(served.exit_code(), 0);
    }

    #[test]
    fn write_failure_is_broken() {
        struct Gone;
        impl Write for Gone {
            fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
                Err(std::io::ErrorKind::BrokenPipe.into())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        impl Output for Gone {
            fn close_write(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let mut input: &[u8] = b"GET / HTTP/1.1\r\n\r\n";
        let served = serve(&mut input, &mut Gone, &options(), |_| {
            Response::text(200, "x")
        });
        assert_eq!(served.ending, Ending::Broken);
        assert_eq!(served.exit_code(), exit::BAD_CLIENT);
        assert!(
            served.reason.contains("writing the response"),
            "{}",
            served.reason
        );
    }

    #[test]
    fn outcome_is_kept_for_the_log() {
        let (_, served, _) = exchange(b"GET / HTTP/1.1\r\n\r\n", Verdict::warning("exit status 1"));
        assert_eq!(served.results[0].outcome.health(), Health::Warning);
    }
}
