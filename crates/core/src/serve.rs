//! One connection, as bytes: read the request head (or tell HAProxy's
//! agent-check from HTTP), ask the [`Service`] for the answer, send it in
//! one write, close politely, and say what happened for the log
//! ([`Served`]).
//!
//! [`serve_service`] does that for a service; [`serve_check`] serves one
//! check (a one-entry service) on every path; [`serve`] takes any handler.
//! What to answer is decided in [`crate::service`], as plain values.

use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use crate::agent::{sniff, Sniffed};
use crate::check::{Check, Policy};
use crate::conn::{close_politely, Input, Output};
use crate::exit;
use crate::http::{read_head, read_head_with, Limits, Method, ReadError, RequestHead, Response};
use crate::outcome::CheckResult;
pub use crate::service::{Answer, Refusal, Service, ALLOW};
use crate::Deadline;

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
    /// Over TLS: how the session began.
    pub handshake: Option<Handshake>,
}

/// How a TLS session began, for the log: a poller that should resume and
/// does not pays a full handshake every poll.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Handshake {
    /// Certificates exchanged and verified.
    Full,
    /// Resumed from a session ticket.
    Resumed,
}

impl Handshake {
    /// `full` or `resumed`.
    pub fn as_str(self) -> &'static str {
        match self {
            Handshake::Full => "full",
            Handshake::Resumed => "resumed",
        }
    }
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
        handshake: None,
    };
    send(input, output, options, &response, head_only, &mut served);
    served
}

/// Serves one connection by running `check` for each valid request (under
/// `options.check_timeout`) and answering as `policy` says: a service of
/// this one check, named `check`, on every path. It answers as a config's
/// route does: `/metrics` is its Prometheus view (always 200), `?format=`
/// and `Accept` choose text, health+json or Prometheus (an unknown
/// `?format=` is a 400), `?verbose` lists the check, and `?exclude=check`
/// runs nothing and answers 503 `no check selected`.
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
    C: Check + Sync,
{
    let service = Service::single(
        "check",
        check,
        options.check_timeout,
        policy.warning_is_down,
        policy.show_output,
    )
    .with_clock(options.clock);
    serve_service(input, output, options, &service, None)
}

/// Serves one connection for `service`: the request selects a route (or
/// one check of it, `/metrics`, …), its checks run concurrently, and the
/// answer is rendered in the format asked for ([`Service::answer`]).
/// `peer` is the client's address as the kernel knows it (`getpeername`,
/// `accept`): with an allowlist, a peer outside it (or one that cannot be
/// told) gets 403 and runs nothing. With the agent on, a connection that
/// stays silent (or whose first line is not HTTP) is HAProxy's
/// agent-check.
pub fn serve_service<I, O>(
    input: &mut I,
    output: &mut O,
    options: &Options,
    service: &Service<'_>,
    peer: Option<IpAddr>,
) -> Served
where
    I: Input + ?Sized,
    O: Output + ?Sized,
{
    let deadline = Deadline::after(options.limits.read_timeout);
    let sniffed = match service.agent() {
        #[cfg(feature = "tls")]
        None if service.tls().is_some() => first_bytes(input, &options.limits, deadline),
        None => {
            let head = read_head(input, &options.limits, deadline);
            return serve_service_head(input, output, options, service, peer, head);
        }
        Some(settings) => sniff(input, &options.limits, settings, deadline),
    };
    let head = match sniffed {
        Sniffed::Http(head) => {
            #[cfg(feature = "tls")]
            if let Some(tls) = service.tls() {
                return tls_port(input, output, options, service, peer, tls, head, deadline);
            }
            read_head_with(input, head, deadline)
        }
        Sniffed::Agent => return serve_agent(input, output, options, service, peer),
        Sniffed::Silent => Err(ReadError::Silent),
        Sniffed::Broken => Err(ReadError::Io(std::io::ErrorKind::ConnectionReset.into())),
    };
    serve_service_head(input, output, options, service, peer, head)
}

/// The first bytes of a connection, enough to tell TLS from plaintext.
#[cfg(feature = "tls")]
fn first_bytes<I: Input + ?Sized>(input: &mut I, limits: &Limits, deadline: Deadline) -> Sniffed {
    let mut head = crate::http::HeadReader::new(*limits);
    let Ok(space) = head.space() else {
        return Sniffed::Http(head);
    };
    match crate::conn::read_before(input, space, deadline) {
        // Nothing by the deadline: HTTP's 408, as on a plaintext port.
        Ok(None) => Sniffed::Http(head),
        Ok(Some(0)) => Sniffed::Silent,
        Ok(Some(n)) => {
            head.add(n);
            Sniffed::Http(head)
        }
        Err(_) => Sniffed::Broken,
    }
}

/// A connection on a TLS port that is not an agent's: a handshake is
/// served over TLS; plaintext HTTP as the settings say.
#[cfg(feature = "tls")]
#[allow(clippy::too_many_arguments)]
fn tls_port<I, O>(
    input: &mut I,
    output: &mut O,
    options: &Options,
    service: &Service<'_>,
    peer: Option<IpAddr>,
    tls: &crate::tls::Tls,
    head: crate::http::HeadReader,
    deadline: Deadline,
) -> Served
where
    I: Input + ?Sized,
    O: Output + ?Sized,
{
    if head.bytes().first() != Some(&crate::tls::HANDSHAKE) {
        let head = read_head_with(input, head, deadline);
        return match head {
            Ok(head) if !tls.settings().plaintext => refuse_plaintext(input, output, options, head),
            head => serve_service_head(input, output, options, service, peer, head),
        };
    }
    let mut conn = match tls.accept() {
        Ok(conn) => conn,
        Err(e) => {
            return refuse(
                input,
                output,
                options,
                ReadError::Io(std::io::Error::other(format!("TLS: {e}"))),
            )
        }
    };
    let head = {
        let mut stream = crate::tls::TlsStream::new(input, output, &mut conn);
        match stream.received(head.bytes()) {
            Ok(()) => read_head(&mut stream, &options.limits, deadline),
            Err(e) => Err(ReadError::Io(e)),
        }
    };
    serve_tls_head(input, output, options, service, peer, &mut conn, head)
}

/// Answers a request read over TLS (or why none came), on `conn`.
#[cfg(feature = "tls")]
pub fn serve_tls_head<I, O>(
    input: &mut I,
    output: &mut O,
    options: &Options,
    service: &Service<'_>,
    peer: Option<IpAddr>,
    conn: &mut rustls::ServerConnection,
    head: Result<RequestHead, ReadError>,
) -> Served
where
    I: Input + ?Sized,
    O: Output + ?Sized,
{
    // Client certificates required: a session without one (resumed from
    // a ticket issued elsewhere, were tickets not bound to their rules)
    // gets no answer. Checked on what rustls holds, whatever the path.
    let required = service.tls().is_some_and(|t| {
        let s = t.settings();
        s.client_ca.is_some() && s.client_auth == crate::tls::ClientAuth::Required
    });
    if required && !conn.is_handshaking() && conn.peer_certificates().is_none() {
        let mut served = serve_over_tls(input, output, options, conn, head, |i, o, head| {
            serve_head(i, o, options, head, |_| {
                Response::text(403, "forbidden: a client certificate is required\n")
            })
        });
        served.ending = Ending::Rejected;
        served.reason = "TLS: a session without a client certificate, which is required".into();
        return served;
    }
    let mut served = serve_over_tls(input, output, options, conn, head, |i, o, head| {
        serve_service_head(i, o, options, service, peer, head)
    });
    // A handshake that failed for our own key (parsed at the first full
    // handshake, one process per connection) says why.
    if served.handshake.is_none() {
        if let Some(why) = service.tls().and_then(|t| t.key_error()) {
            served.reason = format!("{}; {why}", served.reason);
        }
    }
    served
}

/// Answers over TLS with `answer`, which gets the session's two halves
/// and the head read through it; a handshake that failed or never ended
/// gets no answer (there is no session to send one on).
#[cfg(feature = "tls")]
pub fn serve_over_tls<I, O, F>(
    input: &mut I,
    output: &mut O,
    options: &Options,
    conn: &mut rustls::ServerConnection,
    head: Result<RequestHead, ReadError>,
    answer: F,
) -> Served
where
    I: Input + ?Sized,
    O: Output + ?Sized,
    F: FnOnce(&mut dyn Input, &mut dyn Output, Result<RequestHead, ReadError>) -> Served,
{
    let failed = match head {
        // The handshake failed (an alert was sent): no HTTP to answer
        // with.
        Err(ReadError::Io(e)) if e.kind() == std::io::ErrorKind::InvalidData => Err(e.to_string()),
        Err(e) if conn.is_handshaking() => Err(format!("TLS handshake not completed: {e}")),
        head => Ok(head),
    };
    let mut served = match failed {
        Err(reason) => {
            // The raw socket is shut and drained, so the client sees the
            // alert rather than a reset.
            let _ = close_politely(input, output, options.drain);
            Served {
                method: None,
                target: None,
                status: None,
                reason,
                ending: Ending::Rejected,
                results: Vec::new(),
                handshake: None,
            }
        }
        Ok(head) => {
            let stream = std::cell::RefCell::new(crate::tls::TlsStream::new(input, output, conn));
            let (mut i, mut o) = crate::tls::halves(&stream);
            answer(&mut i, &mut o, head)
        }
    };
    if !conn.is_handshaking() {
        served.handshake = Some(match conn.handshake_kind() {
            Some(rustls::HandshakeKind::Resumed) => Handshake::Resumed,
            _ => Handshake::Full,
        });
    }
    served
}

/// Plaintext HTTP on a port that serves HTTPS only: a 400 that says so
/// (HAProxy shows it as the check's status, curl prints it), no check run.
pub fn refuse_plaintext<I, O>(
    input: &mut I,
    output: &mut O,
    options: &Options,
    head: RequestHead,
) -> Served
where
    I: Input + ?Sized,
    O: Output + ?Sized,
{
    let response = Response::text(
        400,
        "this port speaks HTTPS: use https:// (plaintext HTTP is not served here)\n",
    );
    let head_only = head.method == Method::Head;
    let mut served = Served {
        method: Some(head.method),
        target: Some(head.target),
        status: Some(400),
        reason: "plaintext HTTP on a TLS port".into(),
        ending: Ending::Rejected,
        results: Vec::new(),
        handshake: None,
    };
    send(input, output, options, &response, head_only, &mut served);
    served
}

/// Answers an agent-check ([`Service::answer_agent`]): one line, then a
/// polite close. A peer outside the allowlist gets nothing.
pub fn serve_agent<I, O>(
    input: &mut I,
    output: &mut O,
    options: &Options,
    service: &Service<'_>,
    peer: Option<IpAddr>,
) -> Served
where
    I: Input + ?Sized,
    O: Output + ?Sized,
{
    let agent = service.answer_agent(peer);
    let Some(line) = agent.line else {
        let _ = close_politely(input, output, options.drain);
        return Served {
            ending: Ending::Rejected,
            ..agent_served(agent.reason, agent.results)
        };
    };
    send_agent_line(
        input,
        output,
        options,
        &line,
        agent_served(agent.reason, agent.results),
    )
}

/// Answers an agent-check with a `line` no check decides (`down
/// #shutting down`, a service that cannot be set up), and closes politely.
pub fn serve_agent_line<I, O>(
    input: &mut I,
    output: &mut O,
    options: &Options,
    line: &str,
) -> Served
where
    I: Input + ?Sized,
    O: Output + ?Sized,
{
    let served = agent_served(line.trim_end().to_owned(), Vec::new());
    send_agent_line(input, output, options, line, served)
}

fn agent_served(reason: String, results: Vec<CheckResult>) -> Served {
    Served {
        method: None,
        target: Some("agent".into()),
        status: None,
        reason,
        ending: Ending::Answered,
        results,
        handshake: None,
    }
}

fn send_agent_line<I, O>(
    input: &mut I,
    output: &mut O,
    options: &Options,
    line: &str,
    mut served: Served,
) -> Served
where
    I: Input + ?Sized,
    O: Output + ?Sized,
{
    if let Err(e) = output.write_all(line.as_bytes()) {
        served.ending = Ending::Broken;
        served.reason = format!("{}; writing the agent line: {e}", served.reason);
        return served;
    }
    let _ = close_politely(input, output, options.drain);
    served
}

/// [`serve_service`] for a connection whose head was read already (or
/// failed to arrive).
pub fn serve_service_head<I, O>(
    input: &mut I,
    output: &mut O,
    options: &Options,
    service: &Service<'_>,
    peer: Option<IpAddr>,
    head: Result<RequestHead, ReadError>,
) -> Served
where
    I: Input + ?Sized,
    O: Output + ?Sized,
{
    let head = match head {
        Ok(head) => head,
        Err(e) => return refuse(input, output, options, e),
    };
    let answer = service.answer(&head, peer);
    let head_only = head.method == Method::Head;
    let mut served = Served {
        method: Some(head.method),
        status: Some(answer.response.status()),
        reason: answer.reason,
        ending: match answer.refused {
            None => Ending::Answered,
            Some(_) => Ending::Rejected,
        },
        results: answer.results,
        handshake: None,
        target: Some(head.target),
    };
    send(
        input,
        output,
        options,
        &answer.response,
        head_only,
        &mut served,
    );
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
        handshake: None,
    };
    match e.status() {
        None if matches!(e, ReadError::Silent) => {}
        None if matches!(e, ReadError::TlsOnPlaintext) => {
            served.ending = Ending::Rejected;
            // A fatal handshake_failure alert: the client says "alert
            // handshake failure" rather than a bare end of file.
            if output.write_all(&TLS_HANDSHAKE_FAILURE).is_ok() {
                let _ = close_politely(input, output, options.drain);
            }
        }
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

/// A TLS record: a fatal alert (level 2), handshake_failure (40).
const TLS_HANDSHAKE_FAILURE: [u8; 7] = [0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28];

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
    use std::io::Write;
    use std::sync::atomic::{AtomicU32, Ordering};
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
        runs: &'a AtomicU32,
        verdict: Verdict,
    }
    impl Check for Counting<'_> {
        fn run(&self, _: Deadline) -> Result<Verdict, CheckError> {
            self.runs.fetch_add(1, Ordering::SeqCst);
            Ok(self.verdict.clone())
        }
    }

    fn exchange_with(request: &[u8], verdict: Verdict, policy: &Policy) -> (String, Served, u32) {
        let runs = AtomicU32::new(0);
        let check = Counting {
            runs: &runs,
            verdict,
        };
        let mut input = request;
        let mut output = Vec::new();
        let served = serve_check(&mut input, &mut output, &options(), &check, policy);
        (
            String::from_utf8(output).unwrap(),
            served,
            runs.load(Ordering::SeqCst),
        )
    }

    fn exchange(request: &[u8], verdict: Verdict) -> (String, Served, u32) {
        exchange_with(request, verdict, &Policy::default())
    }

    #[test]
    fn detail_only_when_asked_and_warning_as_the_policy_says() {
        let warning =
            || Verdict::warning("exit status 1").with_detail(b"WARN - password=hunter2".to_vec());
        let request = b"GET / HTTP/1.0\r\n\r\n";
        let (out, ..) = exchange(request, warning());
        assert!(out.starts_with("HTTP/1.1 200 OK\r\n"), "{out}");
        assert!(out.ends_with("\r\n\r\nwarning: exit status 1\n"), "{out}");
        let shown = Policy {
            show_output: true,
            ..Policy::default()
        };
        let (out, ..) = exchange_with(request, warning(), &shown);
        assert!(
            out.ends_with("\r\n\r\nwarning: exit status 1\nWARN - password=hunter2\n"),
            "{out}"
        );
        let strict = Policy {
            warning_is_down: true,
            ..Policy::default()
        };
        let (out, ..) = exchange_with(request, warning(), &strict);
        assert!(
            out.starts_with("HTTP/1.1 503 Service Unavailable\r\n"),
            "{out}"
        );
        // Unknown is 503 whatever the policy.
        let (out, ..) = exchange(request, Verdict::unknown("?"));
        assert!(out.starts_with("HTTP/1.1 503 "), "{out}");
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
                b"\x01\x03\x01\x00\xa5\x01\x00".as_slice(),
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
    fn a_tls_handshake_on_a_plaintext_port_gets_an_alert_not_http() {
        let (out, served, runs) = exchange(b"\x16\x03\x01\x00\xa5\x01\x00", Verdict::healthy("ok"));
        assert_eq!(runs, 0);
        assert_eq!(out.as_bytes(), TLS_HANDSHAKE_FAILURE);
        assert_eq!(served.ending, Ending::Rejected);
        assert!(
            served.reason.contains("TLS handshake on a plaintext port"),
            "{}",
            served.reason
        );
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
