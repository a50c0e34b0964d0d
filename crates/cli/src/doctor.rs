//! `doctor HOST:PORT [PATH]`: polls any health endpoint (ours or not) the
//! way each real poller does, and says, per poller, what it saw and what is
//! wrong, in the operator's words. Exit 0 only when every poller would be
//! satisfied.
//!
//! The pollers run in this order: HAProxy's default check, HAProxy's
//! `http-check`, a Kubernetes probe, the burst (and, when the service stops
//! listening after it, a bounded wait for it to come back), keepalived's
//! three polls a second apart, an agent-check connection. The burst comes
//! early on purpose: xinetd's `cps` counts connections from the first one of
//! its window (as long as its first number, in seconds) and compares their
//! average per second with the limit, so a burst trips it near the start of
//! that window and not seconds later.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::os::fd::AsFd;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use inetd_health::hash;

/// Connections the burst opens at once by default: three times xinetd's
/// compiled-in `cps = 50 10`, about what a few load balancers' and
/// monitors' checks of one node add up to.
pub const DEFAULT_BURST: u32 = 150;

/// How long one burst connection may take, connect included: long enough
/// for the SYN retransmissions (1 s, 3 s) a full listen queue causes.
const BURST_TIMEOUT: Duration = Duration::from_secs(5);

/// How long doctor waits for a service that stopped listening after the
/// burst to listen again (xinetd's default `cps` wait is 10 s).
const RECOVERY_BOUND: Duration = Duration::from_secs(15);

// `doctor`'s arguments. (A plain comment: a doc comment would become
// the subcommand's about text, set after the variant's since the
// subcommands are deferred.)
#[derive(Debug, clap::Args)]
pub struct DoctorArgs {
    /// The endpoint, e.g. 127.0.0.1:9200
    #[arg(value_name = "HOST:PORT")]
    pub target: String,
    /// The path the pollers ask for (HAProxy's default check asks for
    /// `OPTIONS /` whatever it is, as HAProxy does)
    #[arg(default_value = "/")]
    pub path: String,
    /// Say it in JSON, for machines
    #[arg(long)]
    pub json: bool,
    /// Connections the burst opens at once, as a fleet of pollers does
    #[arg(long, value_name = "N", default_value_t = DEFAULT_BURST,
          value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub burst: u32,
}

/// One poller's verdict.
struct Verdict {
    poller: &'static str,
    ok: bool,
    status: Option<u16>,
    /// What is wrong (any makes the poller unsatisfied).
    findings: Vec<String>,
    /// What the operator should know about how it polled.
    remarks: Vec<String>,
    note: String,
}

impl Verdict {
    fn new(poller: &'static str, ok: bool, note: String) -> Verdict {
        Verdict {
            poller,
            ok,
            status: None,
            findings: Vec::new(),
            remarks: Vec::new(),
            note,
        }
    }
}

/// What one connection brought back.
struct Exchanged {
    bytes: Vec<u8>,
    /// The connection was established (something listens).
    connected: bool,
    reset: bool,
    timed_out: bool,
    refused: bool,
    /// A connect error other than refused, reset or timed out.
    error: Option<String>,
    elapsed: Duration,
}

fn exchange(addr: SocketAddr, request: &[u8], timeout: Duration, reset_after: bool) -> Exchanged {
    let start = Instant::now();
    let mut out = Exchanged {
        bytes: Vec::new(),
        connected: false,
        reset: false,
        timed_out: false,
        refused: false,
        error: None,
        elapsed: Duration::ZERO,
    };
    let mut stream = match TcpStream::connect_timeout(&addr, timeout) {
        Ok(s) => s,
        Err(e) => {
            match e.kind() {
                ErrorKind::ConnectionRefused => out.refused = true,
                ErrorKind::ConnectionReset => out.reset = true,
                ErrorKind::TimedOut | ErrorKind::WouldBlock => out.timed_out = true,
                _ => out.error = Some(e.to_string()),
            }
            out.elapsed = start.elapsed();
            return out;
        }
    };
    out.connected = true;
    let _ = stream.set_read_timeout(Some(timeout.saturating_sub(start.elapsed()).max(
        // A read timeout of zero is refused; a connection that took the
        // whole timeout to establish still gets a moment to answer.
        Duration::from_millis(100),
    )));
    if !request.is_empty() && stream.write_all(request).is_err() {
        out.reset = true;
    }
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.bytes.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => {
                out.reset = true;
                break;
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                out.timed_out = true;
                break;
            }
            Err(_) => {
                out.reset = true;
                break;
            }
        }
        if out.bytes.len() > 1 << 20 {
            break;
        }
    }
    if reset_after {
        // HAProxy closes its checks with a reset (SO_LINGER 0).
        let _ = inetd_health::sys::reset_on_close(stream.as_fd());
    }
    out.elapsed = start.elapsed();
    out
}

/// A response's status, and what is wrong with its framing. A refused
/// connection is "connection refused" here; [`Doctor::poll`] says more.
fn examine(ex: &Exchanged, http10_client: bool) -> (Option<u16>, Vec<u8>, Vec<String>) {
    let mut findings = Vec::new();
    if ex.refused {
        findings.push("connection refused".into());
        return (None, Vec::new(), findings);
    }
    if let Some(e) = &ex.error {
        findings.push(format!("cannot connect: {e}"));
        return (None, Vec::new(), findings);
    }
    if ex.bytes.is_empty() {
        findings.push(if ex.reset {
            "connection reset before any response".into()
        } else if ex.timed_out {
            format!("no response within {:.1}s", ex.elapsed.as_secs_f64())
        } else {
            "connection closed without a response".into()
        });
        return (None, Vec::new(), findings);
    }
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut response = httparse::Response::new(&mut headers);
    let head_len = match response.parse(&ex.bytes) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => {
            findings.push("the response head never ended".into());
            return (response.code, Vec::new(), findings);
        }
        Err(e) => {
            findings.push(format!("not an HTTP response ({e})"));
            return (None, Vec::new(), findings);
        }
    };
    let status = response.code;
    let header = |name: &str| {
        response
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| String::from_utf8_lossy(h.value).trim().to_owned())
    };
    let body = ex.bytes[head_len..].to_vec();
    match header("content-length").map(|v| v.parse::<usize>()) {
        Some(Ok(length)) if length != body.len() && !ex.timed_out => findings.push(format!(
            "Content-Length {length} but {} body bytes",
            body.len()
        )),
        Some(Err(_)) => findings.push("a Content-Length that is not a number".into()),
        None if !http10_client
            && !header("connection").is_some_and(|c| c.eq_ignore_ascii_case("close")) =>
        {
            findings.push("no Content-Length and no close".into())
        }
        _ => {}
    }
    if ex.reset {
        findings.push(
            "connection reset after the response: the server exits with unread request bytes"
                .into(),
        );
    }
    if ex.timed_out {
        findings.push(format!(
            "the connection stayed open for {:.1}s after the response",
            ex.elapsed.as_secs_f64()
        ));
    }
    (status, body, findings)
}

fn good(status: Option<u16>) -> bool {
    status.is_some_and(|s| (200..400).contains(&s))
}

/// The endpoint, and whether it has ever taken a connection in this run.
struct Doctor {
    addr: SocketAddr,
    listened: bool,
}

impl Doctor {
    fn exchange(&mut self, request: &[u8], timeout: Duration, reset_after: bool) -> Exchanged {
        let ex = exchange(self.addr, request, timeout, reset_after);
        self.listened |= ex.connected;
        ex
    }

    /// What a refused connection means, given what came before it.
    fn refused(&self) -> String {
        refusal(self.addr, self.listened)
    }

    fn poll(
        &mut self,
        poller: &'static str,
        request: &str,
        timeout: Duration,
        reset_after: bool,
    ) -> (Verdict, Vec<u8>) {
        let refusal = self.refused();
        let ex = self.exchange(request.as_bytes(), timeout, reset_after);
        let http10 = request.contains(" HTTP/1.0\r\n");
        let (status, body, mut findings) = examine(&ex, http10);
        if ex.refused {
            findings = vec![refusal];
        }
        if !good(status) {
            if let Some(s) = status {
                findings.insert(0, format!("status {s}"));
            }
        }
        let ok = good(status) && findings.is_empty();
        let note = format!(
            "{} in {} ms",
            status.map_or_else(|| "no status".to_owned(), |s| s.to_string()),
            ex.elapsed.as_millis()
        );
        let mut verdict = Verdict::new(poller, ok, note);
        verdict.status = status;
        verdict.findings = findings;
        (verdict, body)
    }
}

/// A refused connection: before anything took one, nothing listens;
/// after, the service stopped listening.
fn refusal(addr: SocketAddr, listened: bool) -> String {
    if listened {
        format!(
            "connection refused: {addr} took connections earlier in this run and no longer does"
        )
    } else {
        format!("nothing listens on {addr} (connection refused)")
    }
}

/// HAProxy's default check: what to say about the `OPTIONS /` it sends,
/// and about a 404, 405 or 501 for it.
fn haproxy_default(v: &mut Verdict, path: &str) {
    if path != "/" {
        v.remarks.push(format!(
            "polls OPTIONS /, not {path}: HAProxy's bare `option httpchk` sends OPTIONS / whatever \
             you check; {path} is polled only with `http-check send meth GET uri {path}` (the http-check line)"
        ));
    }
    if let Some(code @ (404 | 405 | 501)) = v.status {
        let uri = if path == "/" && code == 404 {
            "PATH` (PATH: the path your checks answer on)".to_owned()
        } else {
            format!("{path}`")
        };
        v.findings.retain(|f| *f != format!("status {code}"));
        v.findings.insert(
            0,
            format!("{code} for OPTIONS: HAProxy's default check will fail"),
        );
        v.findings.insert(
            1,
            format!(
                "HAProxy's bare `option httpchk` sends OPTIONS /; this endpoint answers {code} \
                 there: use `http-check send meth GET uri {uri}"
            ),
        );
    }
}

/// What the burst's connections came to.
#[derive(Debug, Default, Clone, PartialEq)]
struct Burst {
    /// Connections asked for.
    asked: u32,
    /// Connections opened (one thread each; fewer when threads ran out).
    opened: u32,
    /// Connections established (something listened).
    connected: u32,
    answered: u32,
    refused: u32,
    /// Reset before any response.
    reset: u32,
    /// Closed (or failed) without a response.
    closed: u32,
    /// No response within [`BURST_TIMEOUT`].
    timed_out: u32,
    slowest: Duration,
}

impl Burst {
    fn count(&mut self, ex: &Exchanged) {
        self.connected += u32::from(ex.connected);
        if ex.refused {
            self.refused += 1;
        } else if !ex.bytes.is_empty() {
            self.answered += 1;
            self.slowest = self.slowest.max(ex.elapsed);
        } else if ex.reset {
            self.reset += 1;
        } else if ex.timed_out {
            self.timed_out += 1;
        } else {
            self.closed += 1;
        }
    }

    fn unanswered(&self) -> u32 {
        self.closed + self.timed_out
    }
}

/// Opens `n` connections at once (threads released together, each
/// connecting, sending `request` and reading to the end) and counts what
/// became of them.
fn burst(addr: SocketAddr, request: &[u8], n: u32) -> Burst {
    let gate = RwLock::new(());
    let held = gate.write().unwrap_or_else(|e| e.into_inner());
    let results: Vec<Exchanged> = std::thread::scope(|s| {
        let mut handles = Vec::new();
        for _ in 0..n {
            let gate = &gate;
            let spawned = std::thread::Builder::new()
                .stack_size(256 << 10)
                .spawn_scoped(s, move || {
                    // Every connection waits here until all are ready.
                    drop(gate.read());
                    exchange(addr, request, BURST_TIMEOUT, false)
                });
            match spawned {
                Ok(h) => handles.push(h),
                Err(_) => break,
            }
        }
        drop(held);
        handles.into_iter().filter_map(|h| h.join().ok()).collect()
    });
    let mut b = Burst {
        asked: n,
        opened: results.len() as u32,
        ..Burst::default()
    };
    for ex in &results {
        b.count(ex);
    }
    b
}

/// Whether the endpoint listens after the burst.
#[derive(Debug, Clone, Copy, PartialEq)]
enum After {
    /// Not probed: nothing ever listened.
    Unprobed,
    /// It took a connection right after the burst.
    Listening,
    /// Refused right after the burst, took one shortly after.
    Blip(Duration),
    /// Refused right after the burst and shortly after, listened again
    /// after this long.
    Down(Duration),
    /// Still refused after this long ([`RECOVERY_BOUND`]).
    Gone(Duration),
}

/// Whether `addr` refuses a connection now (connected, then closed at
/// once without a byte: our service runs nothing for that).
fn refuses(addr: SocketAddr) -> bool {
    matches!(
        TcpStream::connect_timeout(&addr, Duration::from_secs(1)),
        Err(e) if e.kind() == ErrorKind::ConnectionRefused
    )
}

/// Probes the endpoint right after the burst, then every 250 ms while it
/// refuses, for at most [`RECOVERY_BOUND`].
fn after_burst(addr: SocketAddr) -> After {
    let start = Instant::now();
    std::thread::sleep(Duration::from_millis(100));
    if !refuses(addr) {
        return After::Listening;
    }
    let mut probes = 1;
    loop {
        std::thread::sleep(Duration::from_millis(250));
        let refused = refuses(addr);
        probes += 1;
        match (refused, probes) {
            (false, 2) => return After::Blip(start.elapsed()),
            (false, _) => return After::Down(start.elapsed()),
            (true, _) if start.elapsed() >= RECOVERY_BOUND => return After::Gone(start.elapsed()),
            (true, _) => {}
        }
    }
}

/// The burst's line: its note, and its findings given whether the first
/// polls found something listening and what the probes after it found.
fn burst_verdict(b: &Burst, addr: SocketAddr, listened_before: bool, after: After) -> Verdict {
    let mut note = format!(
        "{} connections at once: {} answered, {} refused, {} reset, {} unanswered",
        b.opened,
        b.answered,
        b.refused,
        b.reset,
        b.unanswered()
    );
    if b.answered > 0 {
        note.push_str(&format!(
            " (slowest answer in {:.2} s)",
            b.slowest.as_secs_f64()
        ));
    }
    let mut v = Verdict::new("burst", false, note);
    if b.opened < b.asked {
        v.remarks.push(format!(
            "only {} of {} connections could be opened (no more threads)",
            b.opened, b.asked
        ));
    }
    if b.opened == 0 {
        v.findings
            .push("no connection could be opened (no threads)".into());
        return v;
    }
    if !listened_before && b.connected == 0 && b.refused == b.opened {
        v.findings.push(refusal(addr, false));
        return v;
    }
    let mut resets_explained = false;
    let cps_fix = "set `cps = 200 5` or larger, and `instances`, in the service's xinetd stanza, \
                   as `inetd-health gen xinetd` writes them";
    match after {
        After::Down(d) | After::Gone(d) if listened_before || b.connected > 0 => {
            let (how_long, what) = match after {
                After::Down(_) => (
                    format!("refused connections for {:.1} s after it", d.as_secs_f64()),
                    "this looks like xinetd's `cps` limit (compiled in: `cps = 50 10`, \
                     a service shut down for 10 s past 50 connections a second)",
                ),
                _ => (
                    format!(
                        "still refused connections {:.0} s after it",
                        d.as_secs_f64()
                    ),
                    "this looks like xinetd's `cps` limit with a long wait (`cps = N SECONDS`), \
                     or the listener is gone (a crash, systemd's `TriggerLimitBurst=`)",
                ),
            };
            v.findings.push(format!(
                "the service stopped answering after {} of {} connections opened at once \
                 ({} refused, {} reset), and {addr} {how_long}, while the first polls worked",
                b.answered, b.opened, b.refused, b.reset
            ));
            v.findings.push(format!("{what}: {cps_fix}"));
            resets_explained = true;
        }
        After::Blip(d) => v.findings.push(format!(
            "{addr} refused connections for {:.1} s right after the burst (its listener was \
             closed and opened again)",
            d.as_secs_f64()
        )),
        _ => {
            if b.refused > 0 {
                v.findings.push(format!(
                    "{} of {} connections refused while {addr} kept listening (a full listen \
                     queue with `net.ipv4.tcp_abort_on_overflow = 1`?)",
                    b.refused, b.opened
                ));
            }
        }
    }
    if b.reset > 0 && !resets_explained {
        v.findings.push(format!(
            "{} of {} connections reset before any response",
            b.reset, b.opened
        ));
    }
    if b.closed > 0 {
        v.findings.push(format!(
            "{} of {} connections closed without a response: a connection limit (xinetd \
             `per_source`, systemd `MaxConnections=`)",
            b.closed, b.opened
        ));
    }
    if b.timed_out > 0 {
        v.findings.push(format!(
            "{} of {} connections got no response within {} s: the service cannot take that \
             many at once (xinetd `instances`, a slow check)",
            b.timed_out,
            b.opened,
            BURST_TIMEOUT.as_secs()
        ));
    }
    v.ok = v.findings.is_empty() && b.opened > 0 && b.answered == b.opened;
    v
}

/// Runs every poller against `args.target`; returns the exit code.
pub fn run(args: &DoctorArgs) -> i32 {
    let addr = match args
        .target
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
    {
        Some(a) => a,
        None => {
            eprintln!("inetd-health: doctor: {:?} is not HOST:PORT", args.target);
            return inetd_health::exit::USAGE;
        }
    };
    let host = args.target.clone();
    let path = &args.path;
    let slow = Duration::from_secs(5);
    let mut doctor = Doctor {
        addr,
        listened: false,
    };
    let mut verdicts = Vec::new();

    // HAProxy's default check (bare `option httpchk`): OPTIONS / HTTP/1.0,
    // then a reset.
    let (mut v, _) = doctor.poll(
        "haproxy default (OPTIONS / HTTP/1.0)",
        "OPTIONS / HTTP/1.0\r\n\r\n",
        slow,
        true,
    );
    haproxy_default(&mut v, path);
    verdicts.push(v);
    // HAProxy's http-check with GET and a Host.
    let (v, _) = doctor.poll(
        "haproxy http-check (GET, HTTP/1.1)",
        &format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n"),
        slow,
        true,
    );
    verdicts.push(v);
    // Kubernetes (or curl) with a 1 s timeout.
    let (v, _) = doctor.poll(
        "kubernetes httpGet (1 s timeout)",
        &format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: kube-probe/1.30\r\nAccept: */*\r\nConnection: close\r\n\r\n"),
        Duration::from_secs(1),
        false,
    );
    verdicts.push(v);
    // A burst: N connections at once, as a fleet of pollers opens them.
    let listened_before = doctor.listened;
    let b = burst(
        addr,
        format!("GET {path} HTTP/1.0\r\n\r\n").as_bytes(),
        args.burst,
    );
    doctor.listened |= b.connected > 0;
    let after = if doctor.listened {
        after_burst(addr)
    } else {
        After::Unprobed
    };
    verdicts.push(burst_verdict(&b, addr, listened_before, after));
    // keepalived HTTP_GET: HTTP/1.0, no Host, read to the end, MD5 of the
    // body as genhash prints it, three times a second apart. A digest is
    // only said of a body that came with a 2xx.
    let keepalived = format!("GET {path} HTTP/1.0\r\nUser-Agent: KeepAliveClient\r\n\r\n");
    let mut digests = Vec::new();
    let mut kv: Option<Verdict> = None;
    for i in 0..3 {
        if i > 0 {
            std::thread::sleep(Duration::from_millis(1100));
        }
        let (v, body) = doctor.poll("keepalived HTTP_GET", &keepalived, slow, false);
        let two_hundred = v.status.is_some_and(|s| (200..300).contains(&s));
        digests.push((two_hundred && !body.is_empty()).then(|| hash::hex(&hash::md5(&body))));
        if kv.as_ref().is_none_or(|k| k.ok && !v.ok) {
            kv = Some(v);
        }
    }
    if let Some(mut v) = kv {
        if digests.iter().all(Option::is_some) {
            if digests.windows(2).any(|w| w[0] != w[1]) {
                v.ok = false;
                v.findings
                    .push("body differs between polls: keepalived digest will flap".into());
            }
            if let Some(Some(d)) = digests.first() {
                v.note = format!("{}, digest {d}", v.note);
            }
        }
        verdicts.push(v);
    }
    // HAProxy agent-check: connect, send nothing, read a line.
    let refusal = doctor.refused();
    let ex = doctor.exchange(b"", Duration::from_secs(3), false);
    let line = String::from_utf8_lossy(&ex.bytes)
        .lines()
        .next()
        .unwrap_or("")
        .to_owned();
    let agent_words = ["up", "down", "ready", "drain", "maint", "stopped", "fail"];
    let is_agent = line
        .split([' ', ',', '\t'])
        .any(|w| agent_words.contains(&w.to_ascii_lowercase().as_str()) || w.ends_with('%'));
    let mut agent = Verdict::new(
        "haproxy agent-check (nothing sent)",
        // Informational: an endpoint need not answer agents; but nothing
        // listening is never fine.
        !ex.refused,
        if is_agent {
            format!("agent says {line:?}")
        } else if ex.refused {
            "no answer".into()
        } else {
            "no agent answer (fine unless HAProxy has agent-check on this port)".into()
        },
    );
    if ex.refused {
        agent.findings.push(refusal);
    }
    verdicts.push(agent);

    let ok = verdicts.iter().all(|v| v.ok);
    if args.json {
        print!("{}", json(&args.target, path, ok, &verdicts));
    } else {
        for v in &verdicts {
            println!(
                "{} {}: {}",
                if v.ok { "ok  " } else { "FAIL" },
                v.poller,
                v.note
            );
            for r in &v.remarks {
                println!("       note: {r}");
            }
            for f in &v.findings {
                println!("       {f}");
            }
        }
        println!(
            "{}",
            if ok {
                "every poller would be satisfied"
            } else {
                "some pollers would not be satisfied"
            }
        );
    }
    if ok {
        0
    } else {
        1
    }
}

fn json(target: &str, path: &str, ok: bool, verdicts: &[Verdict]) -> String {
    let s = |t: &str| {
        let mut out = String::from("\"");
        for c in t.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                c if c < ' ' => out.push_str(&format!("\\u{:04x}", u32::from(c))),
                c => out.push(c),
            }
        }
        out.push('"');
        out
    };
    let list = |items: &[String]| items.iter().map(|i| s(i)).collect::<Vec<_>>().join(",");
    let pollers: Vec<String> = verdicts
        .iter()
        .map(|v| {
            format!(
                "{{\"poller\":{},\"ok\":{},\"status\":{},\"note\":{},\"findings\":[{}],\"remarks\":[{}]}}",
                s(v.poller),
                v.ok,
                v.status.map_or("null".to_owned(), |c| c.to_string()),
                s(&v.note),
                list(&v.findings),
                list(&v.remarks)
            )
        })
        .collect();
    format!(
        "{{\"target\":{},\"path\":{},\"ok\":{ok},\"pollers\":[{}]}}\n",
        s(target),
        s(path),
        pollers.join(",")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr() -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], 9200))
    }

    #[test]
    fn burst_verdicts() {
        let burst = |connected, answered, refused, reset, closed| Burst {
            asked: 150,
            opened: 150,
            connected,
            answered,
            refused,
            reset,
            closed,
            timed_out: 0,
            slowest: Duration::from_millis(190),
        };
        // Nothing listens: no `cps` blame.
        let v = burst_verdict(&burst(0, 0, 150, 0, 0), addr(), false, After::Unprobed);
        assert!(!v.ok);
        assert_eq!(
            v.findings,
            ["nothing listens on 127.0.0.1:9200 (connection refused)"]
        );
        // xinetd's cps: refused and reset in the burst, refused after it.
        let v = burst_verdict(
            &burst(67, 47, 83, 20, 0),
            addr(),
            true,
            After::Down(Duration::from_millis(9400)),
        );
        assert!(!v.ok);
        assert_eq!(v.findings.len(), 2, "{:?}", v.findings);
        assert!(
            v.findings[0].starts_with("the service stopped answering after 47 of 150")
                && v.findings[0].contains("refused connections for 9.4 s after it"),
            "{:?}",
            v.findings
        );
        assert!(
            v.findings[1].starts_with("this looks like xinetd's `cps` limit")
                && v.findings[1].contains("`cps = 200 5` or larger, and `instances`"),
            "{:?}",
            v.findings
        );
        // The same burst, the service back at once: no `cps` blame.
        let v = burst_verdict(&burst(67, 47, 83, 20, 0), addr(), true, After::Listening);
        assert!(!v.ok);
        assert!(
            v.findings.iter().all(|f| !f.contains("cps")),
            "{:?}",
            v.findings
        );
        // Closed without a response: a connection limit.
        let v = burst_verdict(&burst(150, 100, 0, 0, 50), addr(), true, After::Listening);
        assert!(!v.ok);
        assert!(v.findings[0].starts_with("50 of 150 connections closed without a response"));
        // All answered.
        let v = burst_verdict(&burst(150, 150, 0, 0, 0), addr(), true, After::Listening);
        assert!(v.ok && v.findings.is_empty(), "{:?}", v.findings);
        assert_eq!(
            v.note,
            "150 connections at once: 150 answered, 0 refused, 0 reset, 0 unanswered \
             (slowest answer in 0.19 s)"
        );
    }

    #[test]
    fn haproxys_default_check_is_explained() {
        let verdict = |status| {
            let mut v = Verdict::new("haproxy default", false, String::new());
            v.status = Some(status);
            v.findings = vec![format!("status {status}")];
            v
        };
        let mut v = verdict(404);
        haproxy_default(&mut v, "/ready");
        assert_eq!(v.remarks.len(), 1);
        assert!(v.remarks[0].starts_with("polls OPTIONS /, not /ready"));
        assert_eq!(
            v.findings,
            [
                "404 for OPTIONS: HAProxy's default check will fail",
                "HAProxy's bare `option httpchk` sends OPTIONS /; this endpoint answers 404 \
                 there: use `http-check send meth GET uri /ready`"
            ]
        );
        let mut v = verdict(501);
        haproxy_default(&mut v, "/");
        assert!(v.remarks.is_empty());
        assert!(v.findings[1].ends_with("answers 501 there: use `http-check send meth GET uri /`"));
        let mut v = verdict(200);
        v.findings.clear();
        haproxy_default(&mut v, "/");
        assert!(v.findings.is_empty() && v.remarks.is_empty());
    }

    #[test]
    fn framing_findings() {
        let ex = |bytes: &[u8], reset: bool| Exchanged {
            bytes: bytes.to_vec(),
            connected: true,
            error: None,
            reset,
            timed_out: false,
            refused: false,
            elapsed: Duration::from_millis(1),
        };
        let (status, _, f) = examine(
            &ex(
                b"HTTP/1.1 200 OK\r\nContent-Length: 15\r\n\r\nHello, World\r\n\r\n",
                true,
            ),
            false,
        );
        assert_eq!(status, Some(200));
        assert_eq!(
            f,
            [
                "Content-Length 15 but 16 body bytes",
                "connection reset after the response: the server exits with unread request bytes"
            ]
        );
        let (_, _, f) = examine(&ex(b"HTTP/1.1 200 OK\r\n\r\nok", false), false);
        assert_eq!(f, ["no Content-Length and no close"]);
        let (_, _, f) = examine(
            &ex(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", false),
            false,
        );
        assert!(f.is_empty());
    }
}
