//! The long-lived forms: `--listen ADDR`, and systemd `Accept=no` (one
//! process on the listening sockets systemd passes). The same
//! per-connection code as one connection on stdin/stdout, behind one event
//! loop.
//!
//! Waiting for a request head costs a few hundred bytes and no thread: the
//! loop reads the heads of every connection at once, with `poll(2)`, and
//! hands a connection to a thread only when its head is complete (or can
//! never be: garbage, too large, too slow). Only those threads are capped
//! (`--max-connections`), so a crowd of idle clients cannot make a poll
//! wait for a slot.
//!
//! SIGTERM or SIGINT stops checking: connections already accepted are
//! answered within their deadlines, those still arriving are answered 503
//! "shutting down" at once (for at most five seconds), and the process
//! exits 0 when none is left. A second signal exits at once. Under systemd, `READY=1` is sent once listening,
//! `STOPPING=1` at the first signal, `WATCHDOG=1` every half watchdog
//! interval.
//!
//! SIGHUP reloads: the config read again by its path and every check
//! built; a service that builds is swapped in for the connections started
//! after it (those in flight finish on the old one), one that does not is
//! logged and the old one kept. Under systemd, `RELOADING=1` with
//! `MONOTONIC_USEC=` before, `READY=1` after.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Mutex};
use std::time::Instant;

use inetd_health::agent::classify;
use inetd_health::http::{HeadReader, ReadError, RequestHead};
use inetd_health::serve::{refuse_plaintext, serve_over_tls, serve_tls_head};
use inetd_health::sys::{self, PollFd, SignalFd};
use inetd_health::{
    serve_agent, serve_agent_line, serve_head, serve_service_head, Options, Response, Service,
};
use rustls::ServerConnection;

use crate::log::{Log, Peer};
use crate::notify::Notifier;

/// Reads the config again (by its path: a file replaced by rename or by
/// git is read anew) and builds every check of it: the service to swap
/// in, or why the file cannot be served.
pub type Reload<'r> = &'r dyn Fn() -> Result<Service<'static>, String>;

/// What SIGHUP does: read the config again, and say how it went on
/// `/metrics`.
#[derive(Clone)]
pub struct Reloading<'r> {
    /// Reads and builds the config.
    pub reload: Reload<'r>,
    /// The last reload's outcome, shown by every service swapped in.
    pub facts: std::sync::Arc<ReloadFacts>,
}

/// What the loop answers with.
#[derive(Clone, Copy)]
pub enum Serving<'a> {
    /// The service's checks.
    Service(&'a Service<'static>),
    /// A service that could not be set up: every request gets a 500 with
    /// this body (systemd `Accept=no` with a bad config), and no check runs.
    Misconfigured(&'static str),
}

impl Serving<'_> {
    fn tls(&self) -> Option<&std::sync::Arc<inetd_health::tls::Tls>> {
        match self {
            Serving::Service(service) => service.tls(),
            Serving::Misconfigured(_) => None,
        }
    }

    fn agent_wait(&self) -> Option<std::time::Duration> {
        match self {
            Serving::Service(service) => service.agent().map(|a| a.wait),
            // Whether the config meant to answer agents is unknown: a
            // silent connection may be HAProxy's agent-check, and it must
            // hear `down`, not a 408 it cannot read (HAProxy keeps an
            // agent's last state on a reply it cannot parse).
            Serving::Misconfigured(_) => Some(inetd_health::agent::AgentSettings::default().wait),
        }
    }
}

/// The last reload's outcome, on `/metrics` as Prometheus shows its own
/// (`prometheus_config_last_reload_successful`): an operator alerts on a
/// config that stopped being read, while the old one still serves.
pub struct ReloadFacts {
    /// Whether the last reload (or the start) read the config, and when
    /// the config was last read (seconds since the epoch).
    last: Mutex<(bool, f64)>,
}

impl ReloadFacts {
    /// The facts of a process that just read its config.
    pub fn new() -> std::sync::Arc<ReloadFacts> {
        std::sync::Arc::new(ReloadFacts {
            last: Mutex::new((true, now_seconds())),
        })
    }

    fn record(&self, ok: bool) {
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        last.0 = ok;
        if ok {
            last.1 = now_seconds();
        }
    }
}

fn now_seconds() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

impl inetd_health::service::ProcessFacts for ReloadFacts {
    fn metrics(&self) -> String {
        let (ok, at) = *self.last.lock().unwrap_or_else(|p| p.into_inner());
        use inetd_health::render::process_gauge as gauge;
        gauge(
            "inetd_health_config_last_reload_successful",
            "Whether the last reload (SIGHUP) read the config; 0 while the last good one still serves.",
            u8::from(ok),
        ) + &gauge(
            "inetd_health_config_last_reload_success_timestamp_seconds",
            "When the config served was read.",
            format!("{at:.3}"),
        )
    }
}

/// How often the certificate files are looked at for a renewal.
const TLS_LOOK: std::time::Duration = std::time::Duration::from_secs(1);

/// The agent's line for a service that could not be set up.
pub const MISCONFIGURED_AGENT: &str = "down #inetd-health is misconfigured\n";

/// A connection whose head is still arriving.
struct Pending {
    stream: TcpStream,
    peer: SocketAddr,
    head: HeadReader,
    deadline: Instant,
    accepted: Instant,
    /// Accepted after the stop signal: answered 503 without a check.
    late: bool,
    /// With --agent: when a connection still silent is an agent's.
    agent_at: Option<Instant>,
    /// The service's TLS, when it has a certificate.
    tls: Option<std::sync::Arc<inetd_health::tls::Tls>>,
    /// Once the first byte said TLS: the session, whose handshake this
    /// loop drives as it reads the head.
    session: Option<Box<ServerConnection>>,
}

/// What a connection asked for.
enum Job {
    /// An HTTP request: its head, or why there is none.
    Http(Result<RequestHead, ReadError>),
    /// An HTTP request over TLS (or why none came).
    Https(Box<ServerConnection>, Result<RequestHead, ReadError>),
    /// Plaintext HTTP on a port that serves HTTPS only.
    Plaintext(RequestHead),
    /// HAProxy's agent-check: one line.
    Agent,
}

/// A connection ready for a worker.
struct Ready {
    stream: TcpStream,
    peer: SocketAddr,
    job: Job,
    accepted: Instant,
    late: bool,
}

/// After the stop signal, how long connections still arriving are answered
/// (503, "shutting down") rather than left in the backlog, where closing
/// the socket would reset them. Past it the socket is closed regardless.
const STOP_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// The longest listen queue the kernel grants (`net.core.somaxconn`; a
/// larger `listen(2)` backlog is cut to it), 4096 where it cannot be read
/// (Linux's default since 5.4).
pub fn system_backlog() -> u32 {
    std::fs::read_to_string("/proc/sys/net/core/somaxconn")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .filter(|&n: &u32| n > 0)
        .unwrap_or(4096)
}

/// Binds `addr` (`--listen`) with a queue of `backlog` connections (the
/// system's maximum by default) and serves it.
///
/// # Errors
/// The address cannot be bound, or serving fails for good.
pub fn bind_and_run(
    addr: SocketAddr,
    backlog: Option<u32>,
    max_connections: u32,
    service: &Service<'static>,
    options: &Options,
    log: &Log,
    reload: Option<Reloading<'_>>,
) -> io::Result<i32> {
    let listener = TcpListener::bind(addr)?;
    let service = Serving::Service(service);
    // std listens with a queue of 128: a crowd of pollers opening their
    // connections at once overflows it, the kernel drops their SYNs, and
    // each waits a second for the retransmit. Linux takes a second
    // listen(2) on a listening socket as a new queue length.
    let backlog = backlog.unwrap_or_else(system_backlog);
    inetd_health::conn::set_backlog(listener.as_fd(), backlog)?;
    run(
        vec![listener],
        max_connections,
        service,
        options,
        log,
        None,
        reload,
    )
}

/// Serves `listeners` until a signal stops it; returns the exit code.
///
/// # Errors
/// Setting up the signal descriptor, or polling, failing.
pub fn run(
    listeners: Vec<TcpListener>,
    max_connections: u32,
    service: Serving<'_>,
    options: &Options,
    log: &Log,
    notifier: Option<Notifier>,
    reload: Option<Reloading<'_>>,
) -> io::Result<i32> {
    // SIGTERM and SIGINT (stop) and SIGHUP (reload) as a descriptor the
    // loop polls: blocked for every thread (the workers started later
    // inherit the mask), read here. SIGHUP's default would kill the
    // process mid-poll.
    let signals = SignalFd::new(&[libc::SIGTERM, libc::SIGINT, libc::SIGHUP])?;
    // The service a reload swapped in; each connection takes the one
    // current when its worker starts it, so a request in flight finishes
    // on the service it began with.
    let reloaded: std::sync::RwLock<Option<std::sync::Arc<Service<'static>>>> =
        std::sync::RwLock::new(None);
    for l in &listeners {
        l.set_nonblocking(true)?;
        log.info(&format!("listening on {}", l.local_addr()?));
    }
    let mut listeners = listeners;
    // Workers say they are done by a byte here, which wakes the loop to
    // start the next ready connection.
    let (wake_rx, wake_tx) = UnixStream::pair()?;
    wake_rx.set_nonblocking(true)?;
    if let Some(n) = &notifier {
        n.send("READY=1");
    }
    let max = max_connections.max(1) as usize;
    let mut pending: Vec<Pending> = Vec::new();
    let mut ready: VecDeque<Ready> = VecDeque::new();
    let mut in_flight = 0usize;
    let mut stopping: Option<Instant> = None;
    let mut next_tls_look = Instant::now() + TLS_LOOK;
    let mut next_ping = notifier
        .as_ref()
        .and_then(|n| n.watchdog)
        .map(|every| Instant::now() + every);

    let (jobs_tx, jobs_rx) = mpsc::channel::<Ready>();
    let jobs_rx = Mutex::new(jobs_rx);
    let idle = AtomicUsize::new(0);
    let queued = AtomicUsize::new(0);
    let mut workers = 0usize;

    std::thread::scope(|scope| -> io::Result<i32> {
        let jobs_tx = jobs_tx;
        loop {
            while in_flight < max {
                let Some(job) = ready.pop_front() else { break };
                // Workers stay for the next connection (starting and joining a
                // thread took 150 µs on this project's VMs); a new one starts
                // only when the idle ones are fewer than the jobs waiting.
                if idle.load(Ordering::SeqCst) <= queued.load(Ordering::SeqCst) && workers < max {
                    workers += 1;
                    let (jobs, idle, queued, reloaded) = (&jobs_rx, &idle, &queued, &reloaded);
                    let wake = wake_tx.try_clone()?;
                    scope.spawn(move || loop {
                        let next = {
                            let jobs = jobs.lock().unwrap_or_else(|p| p.into_inner());
                            idle.fetch_add(1, Ordering::SeqCst);
                            let next = jobs.recv();
                            idle.fetch_sub(1, Ordering::SeqCst);
                            next
                        };
                        let Ok(job) = next else { break };
                        queued.fetch_sub(1, Ordering::SeqCst);
                        with_current(reloaded, service, |current| {
                            give_back_slot(&wake, || work(job, options, current, log))
                        });
                    });
                }
                in_flight += 1;
                queued.fetch_add(1, Ordering::SeqCst);
                if jobs_tx.send(job).is_err() {
                    in_flight -= 1;
                    queued.fetch_sub(1, Ordering::SeqCst);
                }
            }
            if let Some(since) = stopping {
                let done = pending.is_empty() && ready.is_empty() && in_flight == 0;
                if (done && !listeners.iter().any(backlog_waiting)) || since.elapsed() > STOP_GRACE
                {
                    if done {
                        // Workers see the channel closed and end; the
                        // scope joins them.
                        drop(jobs_tx);
                        return Ok(inetd_health::exit::OK);
                    }
                    // Still answering past the grace: stop taking more.
                    listeners.clear();
                }
            }

            let now = Instant::now();
            let mut fds = vec![
                PollFd::input(signals.as_raw_fd()),
                PollFd::input(wake_rx.as_raw_fd()),
            ];
            let listeners_at = fds.len();
            fds.extend(listeners.iter().map(|l| PollFd::input(l.as_raw_fd())));
            let pending_at = fds.len();
            // A TLS flight larger than the socket's send buffer waits for
            // room: those connections are woken by it too.
            fds.extend(pending.iter().map(|p| {
                let fd = p.stream.as_raw_fd();
                match &p.session {
                    Some(s) if s.wants_write() => PollFd::input_output(fd),
                    _ => PollFd::input(fd),
                }
            }));
            let mut wait = pending
                .iter()
                .map(|p| {
                    let until = p
                        .agent_at
                        .filter(|_| p.head.received() == 0)
                        .unwrap_or(p.deadline);
                    until.min(p.deadline).saturating_duration_since(now)
                })
                .min();
            if let Some(at) = next_ping {
                let until = at.saturating_duration_since(now);
                wait = Some(wait.map_or(until, |w| w.min(until)));
            }
            if with_current(&reloaded, service, |s| s.tls().is_some()) {
                let until = next_tls_look.saturating_duration_since(now);
                wait = Some(wait.map_or(until, |w| w.min(until)));
            }
            let timeout = wait.map_or(-1, |w| {
                // Round up: waking a millisecond early would spin.
                w.as_millis().min(60_000) as libc::c_int + 1
            });
            match sys::poll(&mut fds, timeout) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
                Ok(_) => {}
            }

            if fds[0].ready() {
                if let Some(signo) = signals.read() {
                    if signo == libc::SIGHUP {
                        if !reload_now(reload.as_ref(), &reloaded, notifier.as_ref(), log) {
                            // The config stays; its certificate is still
                            // read again, as a SIGHUP promises.
                            with_current(&reloaded, service, |s| look_at_certificate(s, log));
                        }
                        next_tls_look = Instant::now() + TLS_LOOK;
                        continue;
                    }
                    if stopping.is_some() {
                        log.info(&format!("signal {signo} again: exiting now"));
                        // Threads still answering are cut off: the operator asked.
                        std::process::exit(128 + signo);
                    }
                    stopping = Some(Instant::now());
                    log.info(&format!(
                        "signal {signo}: stopping; answering the {} connections accepted",
                        pending.len() + ready.len() + in_flight
                    ));
                    if let Some(n) = &notifier {
                        n.send("STOPPING=1");
                    }
                    continue;
                }
            }
            if fds[1].ready() {
                let mut done = [0u8; 64];
                while let Ok(k) = (&wake_rx).read(&mut done) {
                    if k == 0 {
                        break;
                    }
                    in_flight = in_flight.saturating_sub(k);
                }
            }
            // After the stop signal connections are still taken from the
            // backlog, and answered 503 without a check: closing a socket
            // resets whatever waits in its backlog, and a poller must see
            // an answer, not a reset. (Under systemd the socket stays open
            // in systemd, and nothing would be lost; with --listen, or a
            // launcher that execs us, it would.)
            for (i, l) in listeners.iter().enumerate() {
                if fds[listeners_at + i].ready() {
                    with_current(&reloaded, service, |serving| {
                        accept_all(l, &mut pending, options, log, stopping.is_some(), serving)
                    });
                }
            }
            // Heads: read what arrived, hand over what is complete, time out
            // what is late. Walk backwards so removals keep indices valid.
            let now = Instant::now();
            for i in (0..pending.len()).rev() {
                let readable = fds.get(pending_at + i).is_some_and(PollFd::ready);
                let outcome = if readable {
                    read_some(&mut pending[i])
                } else {
                    None
                };
                let p = &mut pending[i];
                let outcome = outcome.or_else(|| {
                    let silent_agent =
                        p.head.received() == 0 && p.agent_at.is_some_and(|at| at <= now);
                    if silent_agent {
                        Some(Some(Job::Agent))
                    } else {
                        (p.deadline <= now).then(|| Some(timed_out(p)))
                    }
                });
                match outcome {
                    None => {}
                    // The client closed without a byte (a TCP check), or the
                    // connection broke: nothing to answer.
                    Some(None) => {
                        pending.swap_remove(i);
                    }
                    Some(Some(job)) => {
                        let p = pending.swap_remove(i);
                        ready.push_back(Ready {
                            stream: p.stream,
                            peer: p.peer,
                            job,
                            accepted: p.accepted,
                            late: p.late,
                        });
                    }
                }
            }
            if Instant::now() >= next_tls_look {
                with_current(&reloaded, service, |s| look_at_certificate(s, log));
                next_tls_look = Instant::now() + TLS_LOOK;
            }
            if let (Some(at), Some(n)) = (next_ping, &notifier) {
                if Instant::now() >= at {
                    n.send("WATCHDOG=1");
                    next_ping = n.watchdog.map(|every| Instant::now() + every);
                }
            }
        }
    })
}

/// `f` of the service a reload swapped in, else of the one started with.
fn with_current<R>(
    reloaded: &std::sync::RwLock<Option<std::sync::Arc<Service<'static>>>>,
    first: Serving<'_>,
    f: impl FnOnce(Serving<'_>) -> R,
) -> R {
    let fresh = reloaded.read().unwrap_or_else(|p| p.into_inner()).clone();
    match &fresh {
        Some(s) => f(Serving::Service(s)),
        None => f(first),
    }
}

/// Runs `job` and then gives its slot back (a byte on `wake`), whatever
/// happens to it: a panic in a check (a bug) must not leave the loop
/// counting a connection in flight for ever, which after
/// `--max-connections` of them would stop all answers. The panic is
/// logged (the panic hook) and the worker lives on; in the release build
/// (`panic = "abort"`) a panic ends the process instead, and systemd's
/// `Restart=on-failure` starts it again (docs/systemd.md).
fn give_back_slot(wake: &UnixStream, job: impl FnOnce()) {
    struct Slot<'a>(&'a UnixStream);
    impl Drop for Slot<'_> {
        fn drop(&mut self) {
            let _ = (&*self.0).write_all(&[1]);
        }
    }
    let _slot = Slot(wake);
    // The connection is dropped (closed) by the unwind; the worker stays.
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
}

/// SIGHUP: the config read and built again, and swapped in; a config
/// that cannot be served leaves the current one serving, and says why.
fn reload_now(
    reload: Option<&Reloading<'_>>,
    reloaded: &std::sync::RwLock<Option<std::sync::Arc<Service<'static>>>>,
    notifier: Option<&Notifier>,
    log: &Log,
) -> bool {
    let Some(Reloading { reload, facts }) = reload else {
        log.info("SIGHUP: nothing to reload (no usable config was served); restart to read it");
        return false;
    };
    if let Some(n) = notifier {
        let usec = inetd_health::sys::monotonic_usec();
        n.send(&format!("RELOADING=1\nMONOTONIC_USEC={usec}"));
    }
    let ok = match reload() {
        Ok(service) => {
            let service = service.with_process_facts(facts.clone());
            *reloaded.write().unwrap_or_else(|p| p.into_inner()) =
                Some(std::sync::Arc::new(service));
            facts.record(true);
            log.info("SIGHUP: config reloaded");
            true
        }
        Err(why) => {
            // The metric first: whoever reads the log line and then
            // /metrics sees them agree.
            facts.record(false);
            log.error(&format!(
                "SIGHUP: config not reloaded, still serving the last good one: {why}"
            ));
            false
        }
    };
    if let Some(n) = notifier {
        n.send("READY=1");
    }
    ok
}

/// Reads the certificate files again if they changed; a set that cannot
/// be served is said once and the last good one kept.
fn look_at_certificate(service: Serving<'_>, log: &Log) {
    let Some(tls) = service.tls() else { return };
    match tls.refresh() {
        inetd_health::tls::Refreshed::Unchanged => {}
        inetd_health::tls::Refreshed::Renewed => log.info(&format!(
            "TLS: certificate files changed: serving them ({})",
            tls.settings().cert.display()
        )),
        inetd_health::tls::Refreshed::Failed(why) => log.error(&format!(
            "TLS: certificate files changed but cannot be served, still serving the last good ones: {why}"
        )),
    }
}

/// Answers one connection on a worker thread, and logs it.
fn work(job: Ready, options: &Options, service: Serving<'_>, log: &Log) {
    let Ready {
        stream,
        peer,
        job,
        accepted,
        late,
    } = job;
    let _ = stream.set_nonblocking(false);
    let service = match service {
        Serving::Service(service) => service,
        Serving::Misconfigured(body) => {
            let served = match job {
                Job::Http(head) => serve_head(&mut &stream, &mut &stream, options, head, |_| {
                    Response::text(500, body)
                }),
                Job::Plaintext(head) => {
                    serve_head(&mut &stream, &mut &stream, options, Ok(head), |_| {
                        Response::text(500, body)
                    })
                }
                // A misconfigured service has no certificate: never here.
                Job::Https(..) => {
                    drop(stream);
                    return;
                }
                Job::Agent => {
                    serve_agent_line(&mut &stream, &mut &stream, options, MISCONFIGURED_AGENT)
                }
            };
            drop(stream);
            log.connection(&Peer::kernel(peer.ip()), &served, accepted.elapsed());
            return;
        }
    };
    let served = match job {
        // After the stop signal, as HTTP's 503: no check runs.
        Job::Agent if late => {
            serve_agent_line(&mut &stream, &mut &stream, options, "down #shutting down\n")
        }
        Job::Agent => serve_agent(
            &mut &stream,
            &mut &stream,
            options,
            service,
            Some(peer.ip()),
        ),
        Job::Http(head) if late => serve_head(&mut &stream, &mut &stream, options, head, |_| {
            Response::text(503, "unhealthy: shutting down\n")
        }),
        Job::Plaintext(head) => refuse_plaintext(&mut &stream, &mut &stream, options, head),
        Job::Https(mut session, head) if late => serve_over_tls(
            &mut &stream,
            &mut &stream,
            options,
            &mut session,
            head,
            |i, o, head| {
                serve_head(i, o, options, head, |_| {
                    Response::text(503, "unhealthy: shutting down\n")
                })
            },
        ),
        Job::Https(mut session, head) => serve_tls_head(
            &mut &stream,
            &mut &stream,
            options,
            service,
            Some(peer.ip()),
            &mut session,
            head,
        ),
        Job::Http(head) => serve_service_head(
            &mut &stream,
            &mut &stream,
            options,
            service,
            Some(peer.ip()),
            head,
        ),
    };
    drop(stream);
    log.connection(&Peer::kernel(peer.ip()), &served, accepted.elapsed());
}

/// Accepts every connection waiting on `listener`.
fn accept_all(
    listener: &TcpListener,
    pending: &mut Vec<Pending>,
    options: &Options,
    log: &Log,
    late: bool,
    service: Serving<'_>,
) {
    loop {
        match listener.accept() {
            Ok((stream, peer)) => {
                if stream.set_nonblocking(true).is_err() {
                    continue;
                }
                let now = Instant::now();
                pending.push(Pending {
                    stream,
                    peer,
                    head: HeadReader::new(options.limits),
                    deadline: now + options.limits.read_timeout,
                    accepted: now,
                    late,
                    agent_at: service.agent_wait().map(|wait| now + wait),
                    tls: service.tls().cloned(),
                    session: None,
                });
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
            Err(e) if transient(&e) => {
                // Out of descriptors: the connections stay in the backlog
                // until some close.
                log.error(&format!("accept: {e}"));
                return;
            }
            Err(e) => {
                log.error(&format!("accept: {e}"));
                return;
            }
        }
    }
}

/// Reads what arrived on a pending connection. `None`: nothing decided
/// yet; `Some(None)`: nothing to answer (closed silently, broken);
/// `Some(Some(job))`: hand it over.
fn read_some(p: &mut Pending) -> Option<Option<Job>> {
    if p.session.is_some() {
        return read_tls(p);
    }
    loop {
        let space = match p.head.space() {
            Ok(space) => space,
            Err(too_large) => return Some(Some(Job::Http(Err(too_large)))),
        };
        match (&p.stream).read(space) {
            Ok(0) => match p.head.filled(0) {
                Some(Err(ReadError::Silent)) | None => return Some(None),
                Some(done) => return Some(Some(Job::Http(done))),
            },
            Ok(n) => {
                p.head.add(n);
                if let Some(tls) = &p.tls {
                    if p.head.bytes().first() == Some(&inetd_health::tls::HANDSHAKE) {
                        return start_tls(p, tls.clone());
                    }
                }
                // An agent's agent-send line is not an HTTP request line.
                if p.agent_at.is_some() && classify(p.head.bytes()) == Some(false) {
                    return Some(Some(Job::Agent));
                }
                match p.head.parse() {
                    Some(Ok(head)) if p.tls.as_ref().is_some_and(|t| !t.settings().plaintext) => {
                        return Some(Some(Job::Plaintext(head)))
                    }
                    Some(done) => return Some(Some(Job::Http(done))),
                    None => continue,
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return None,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return Some(None),
        }
    }
}

/// The head did not arrive in time: over TLS, said on the session.
fn timed_out(p: &mut Pending) -> Job {
    let late = p.head.timed_out();
    match p.session.take() {
        Some(session) => Job::Https(session, Err(late)),
        None => Job::Http(Err(late)),
    }
}

/// The first bytes were a TLS handshake: a session takes them, and the
/// head is read through it from now on.
fn start_tls(p: &mut Pending, tls: std::sync::Arc<inetd_health::tls::Tls>) -> Option<Option<Job>> {
    let mut session = match tls.accept() {
        Ok(session) => Box::new(session),
        Err(_) => return Some(None),
    };
    let limits = p.head.limits();
    let first = std::mem::replace(&mut p.head, HeadReader::new(limits));
    let fed = inetd_health::tls::TlsStream::new(&mut &p.stream, &mut &p.stream, &mut session)
        .received(first.bytes());
    // Past the first bytes, a TLS client is no agent.
    p.agent_at = None;
    if let Err(e) = fed {
        return Some(Some(Job::Https(session, Err(ReadError::Io(e)))));
    }
    p.session = Some(session);
    read_tls(p)
}

/// Reads the head through the TLS session, driving its handshake.
fn read_tls(p: &mut Pending) -> Option<Option<Job>> {
    let session = p.session.as_mut()?;
    let (mut input, mut output) = (&p.stream, &p.stream);
    let mut stream = inetd_health::tls::TlsStream::new(&mut input, &mut output, session);
    // What did not fit in the send buffer last time (a long chain).
    if stream.flush().is_err() {
        // The connection broke: nobody to answer.
        return Some(None);
    }
    let head = loop {
        let space = match p.head.space() {
            Ok(space) => space,
            Err(too_large) => break Err(too_large),
        };
        match stream.read(space) {
            Ok(n) => match p.head.filled(n) {
                // A handshake and no request (a TLS check that only
                // connects): nothing to answer.
                Some(Err(ReadError::Silent)) => return Some(None),
                Some(done) => break done,
                None => continue,
            },
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return None,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => break Err(ReadError::Io(e)),
        }
    };
    let session = p.session.take()?;
    Some(Some(Job::Https(session, head)))
}

/// Whether a connection waits in `listener`'s backlog, without taking it.
fn backlog_waiting(listener: &TcpListener) -> bool {
    // A zero timeout only looks.
    sys::poll(&mut [PollFd::input(listener.as_raw_fd())], 0).is_ok_and(|n| n > 0)
}

/// Errors after which accepting again later makes sense.
fn transient(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(
            libc::EMFILE
                | libc::ENFILE
                | libc::ENOBUFS
                | libc::ENOMEM
                | libc::ECONNABORTED
                | libc::EINTR
                | libc::EPROTO
        )
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A job that panics (a bug in a check) still gives its slot back: the
    /// loop would otherwise count it in flight for ever, and after
    /// --max-connections of them answer nothing more.
    #[test]
    fn a_panicking_job_gives_its_slot_back() {
        let (loop_end, worker_end) = UnixStream::pair().unwrap();
        loop_end.set_nonblocking(true).unwrap();
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        give_back_slot(&worker_end, || panic!("a bug in a check"));
        give_back_slot(&worker_end, || {});
        std::panic::set_hook(previous);
        let mut got = [0u8; 8];
        let n = (&loop_end).read(&mut got).unwrap();
        assert_eq!(&got[..n], [1, 1]);
    }

    #[test]
    fn the_system_backlog_is_somaxconn() {
        let want: u32 = std::fs::read_to_string("/proc/sys/net/core/somaxconn")
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert_eq!(system_backlog(), want);
    }
}
