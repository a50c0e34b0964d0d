//! Every launcher and every poller: the address allowlist (on the kernel's
//! peer address), under a real xinetd and the `--listen` loop, over IPv4
//! and IPv6.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use inetd_health_testkit::activate::{
    activate_unit, exec_start, exec_start_parsed, expand_environment, socket_activate,
};
use inetd_health_testkit::client::{exchange, loopback};
use inetd_health_testkit::haproxy::{Haproxy, ServerState};
use inetd_health_testkit::http::Response;
use inetd_health_testkit::procs::{
    cmdline_of, read_or_empty, require_program, signal, status_kib, wait_until, ProcessGuard,
};
use inetd_health_testkit::run::{listening, run_with_input};
use inetd_health_testkit::tcpserver;
use inetd_health_testkit::tmp::TempDir;
use inetd_health_testkit::xinetd::Xinetd;

/// The binary under test, as Cargo built it for this package's tests.
const BIN: &str = env!("CARGO_BIN_EXE_inetd-health");

const IO_TIMEOUT: Duration = Duration::from_secs(10);
const GET: &[u8] = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";

/// An exec check that appends a line to `runs` each time it runs.
fn counting_check(dir: &TempDir) -> (String, std::path::PathBuf) {
    let runs = dir.join("runs");
    std::fs::write(&runs, "").unwrap();
    let script = dir.script("count", &format!("echo run >> {}", runs.display()));
    (script.to_str().unwrap().to_owned(), runs)
}

fn runs(path: &std::path::Path) -> usize {
    std::fs::read_to_string(path).unwrap().lines().count()
}

#[test]
fn allowlist_under_xinetd_uses_the_kernels_peer() {
    let dir = TempDir::new("allow");
    let (script, count) = counting_check(&dir);
    let allowed = Xinetd::start(BIN, &["--allow", "127.0.0.0/8", "exec", "--", &script]);
    let ex = exchange(allowed.port(), GET, IO_TIMEOUT);
    ex.assert_clean_close();
    assert_eq!(Response::parse(&ex.bytes).unwrap().status, 200);
    assert_eq!(runs(&count), 1);

    // Nobody on loopback is in 192.0.2.0/24: 403, and the check never runs.
    let denied = Xinetd::start(
        BIN,
        &[
            "--allow",
            "192.0.2.0/24,2001:db8::/32",
            "exec",
            "--",
            &script,
        ],
    );
    for _ in 0..5 {
        let ex = exchange(denied.port(), GET, IO_TIMEOUT);
        ex.assert_clean_close();
        let r = Response::parse(&ex.bytes).unwrap();
        assert_eq!(
            (r.status, r.body_text().as_str()),
            (403, "forbidden: this address may not ask\n")
        );
        r.assert_standard_headers();
    }
    assert_eq!(runs(&count), 1, "a denied peer ran the check");
    assert_eq!(denied.wait_for_exits(5, IO_TIMEOUT), [65; 5]);
}

#[test]
fn allowlist_cannot_be_fooled_by_the_environment_and_fails_closed_on_a_pipe() {
    // Over a pipe there is no peer to ask the kernel about: refused, even
    // with a launcher's variable naming an allowed address.
    let args: Vec<String> = ["--allow", "127.0.0.1", "exec", "--", "true"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let run = run_with_input(BIN, &args, GET);
    assert_eq!(run.response().status, 403);
    assert_eq!(run.code, Some(65));
    assert!(
        run.stderr
            .contains("reason=\"peer address unknown: not allowed\""),
        "{}",
        run.stderr
    );
    let out = Command::new(BIN)
        .args(&args)
        .env("REMOTE_HOST", "127.0.0.1")
        .env("TCPREMOTEIP", "127.0.0.1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            c.stdin.take().unwrap().write_all(GET)?;
            c.wait_with_output()
        })
        .unwrap();
    assert_eq!(Response::parse(&out.stdout).unwrap().status, 403);
}

/// A `--listen` process, killed and reaped when dropped (a failing test
/// leaves nothing behind).
struct Listener(Child);

impl Drop for Listener {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `--listen ADDR ARGS...`: the process and the address it listens on.
fn listen(addr: &str, args: &[&str]) -> (Listener, SocketAddr) {
    let mut child = Command::new(BIN)
        .args(["--listen", addr])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stderr.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    let bound = line
        .trim()
        .strip_prefix("inetd-health: listening on ")
        .unwrap_or_else(|| panic!("{line}"))
        .parse()
        .unwrap();
    (Listener(child), bound)
}

fn get_status(addr: SocketAddr) -> u16 {
    let mut s = TcpStream::connect_timeout(&addr, IO_TIMEOUT).unwrap();
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    s.write_all(GET).unwrap();
    let mut got = Vec::new();
    s.read_to_end(&mut got).unwrap();
    Response::parse(&got).unwrap().status
}

#[test]
fn allowlist_over_ipv6_matches_the_accepted_peer() {
    let (_six, addr) = listen("[::1]:0", &["--allow", "::1/128", "exec", "--", "true"]);
    assert_eq!(get_status(addr), 200);
    let (_four_only, addr4) = listen("[::1]:0", &["--allow", "127.0.0.1", "exec", "--", "true"]);
    assert_eq!(get_status(addr4), 403);
    let (_v4, addr_v4) = listen(
        "127.0.0.1:0",
        &["--allow", "127.0.0.0/8", "exec", "--", "true"],
    );
    assert_eq!(get_status(addr_v4), 200);
}

// --- systemd socket activation --------------------------------------------------

/// `systemd-socket-activate FLAGS... inetd-health ARGS...` on `ports`
/// loopback sockets (IPv4, then IPv6).
fn activate(
    dir: &TempDir,
    ports: usize,
    flags: &[&str],
    args: &[&str],
) -> (ProcessGuard, Vec<u16>) {
    let argv: Vec<&str> = std::iter::once(BIN).chain(args.iter().copied()).collect();
    socket_activate(dir, ports, flags, &argv)
}

/// What the check program sees of its descriptors and environment.
const SEE: &str = "if [ -e /proc/$$/fd/3 ]; then echo fd-3-inherited; else echo no-fd-3; fi; env | grep -E '^(LISTEN_|NOTIFY_SOCKET|WATCHDOG_)' || echo no-activation-variables";

fn get_body(addr: SocketAddr) -> (u16, String) {
    let mut s = TcpStream::connect_timeout(&addr, IO_TIMEOUT).unwrap();
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    s.write_all(GET).unwrap();
    let mut got = Vec::new();
    s.read_to_end(&mut got).unwrap();
    let r = Response::parse(&got)
        .unwrap_or_else(|e| panic!("{e}: {:?}", String::from_utf8_lossy(&got)));
    (r.status, r.body_text())
}

#[test]
fn accept_yes_with_the_connection_on_stdin_and_on_fd_3() {
    let dir = TempDir::new("activate");
    let see = dir.script("see", SEE);
    let see = see.to_str().unwrap();
    for flags in [&["--accept", "--inetd"][..], &["--accept"]] {
        let (_process, ports) = activate(&dir, 1, flags, &["--show-output", "exec", "--", see]);
        let (status, body) = get_body(loopback(ports[0]));
        assert_eq!(status, 200, "{flags:?}: {body}");
        let mut lines = body.lines().skip(1);
        assert_eq!(lines.next(), Some("no-fd-3"), "{flags:?}: {body}");
        assert_eq!(
            lines.next(),
            Some("no-activation-variables"),
            "{flags:?}: {body}"
        );
    }
}

#[test]
fn accept_no_serves_ipv4_and_ipv6_sockets_notifies_and_stops_on_sigterm() {
    let dir = TempDir::new("activate-no");
    let notify_path = dir.join("notify");
    let notify = std::os::unix::net::UnixDatagram::bind(&notify_path).unwrap();
    notify.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    let see = dir.script("see", SEE);
    let (mut process, ports) = activate(
        &dir,
        2,
        &[
            &format!("--setenv=NOTIFY_SOCKET={}", notify_path.display()),
            // A 200 ms watchdog: a ping every 100 ms.
            "--setenv=WATCHDOG_USEC=200000",
        ],
        &["--show-output", "exec", "--", see.to_str().unwrap()],
    );
    // systemd-socket-activate starts the program at the first connection.
    let (status, body) = get_body(loopback(ports[0]));
    let mut buf = [0u8; 256];
    let n = notify.recv(&mut buf).expect("READY=1 on the notify socket");
    assert_eq!(&buf[..n], b"READY=1");
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body.lines().skip(1).collect::<Vec<_>>(),
        ["no-fd-3", "no-activation-variables"],
        "{body}"
    );
    let v6: SocketAddr = format!("[::1]:{}", ports[1]).parse().unwrap();
    assert_eq!(get_body(v6).0, 200);
    // The watchdog is pinged while it runs.
    for _ in 0..2 {
        let n = notify.recv(&mut buf).expect("WATCHDOG=1");
        assert_eq!(&buf[..n], b"WATCHDOG=1");
    }

    signal(process.pid(), libc::SIGTERM);
    // Watchdog pings may come first.
    let stopping = (0..50).any(|_| {
        let n = notify.recv(&mut buf).expect("STOPPING=1");
        &buf[..n] == b"STOPPING=1"
    });
    assert!(stopping, "no STOPPING=1");
    let status = process.wait_exit(Duration::from_secs(5));
    assert!(status.is_some(), "still running after SIGTERM");
    assert_eq!(status.and_then(|s| s.code()), Some(0));
}

/// 200 requests at concurrency 16 while the process gets SIGTERM: every
/// connection it accepted is answered whole, none reset or empty, and it
/// exits 0.
#[test]
fn sigterm_under_load_answers_every_accepted_connection() {
    let dir = TempDir::new("restart");
    let (mut process, ports) = activate(
        &dir,
        1,
        &[],
        &["--max-connections", "16", "exec", "--", "sleep", "0.05"],
    );
    let addr = loopback(ports[0]);
    let sent = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let clients: Vec<_> = (0..16)
        .map(|_| {
            let sent = sent.clone();
            std::thread::spawn(move || {
                let mut answered = 0;
                let mut refused = 0;
                while sent.fetch_add(1, std::sync::atomic::Ordering::SeqCst) < 200 {
                    let Ok(mut s) = TcpStream::connect_timeout(&addr, IO_TIMEOUT) else {
                        // Not accepted: the process stopped listening.
                        refused += 1;
                        continue;
                    };
                    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
                    if s.write_all(GET).is_err() {
                        panic!("write failed on an accepted connection");
                    }
                    let mut got = Vec::new();
                    match s.read_to_end(&mut got) {
                        Ok(_) => {}
                        Err(e) => panic!("accepted connection broken: {e}"),
                    }
                    let r = Response::parse(&got)
                        .unwrap_or_else(|e| panic!("{e}: {:?}", String::from_utf8_lossy(&got)));
                    assert!(r.status == 200 || r.status == 503, "{r:?}");
                    answered += 1;
                }
                (answered, refused)
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    signal(process.pid(), libc::SIGTERM);
    let mut answered = 0;
    for c in clients {
        answered += c.join().expect("a client saw a reset or an empty reply").0;
    }
    assert!(answered >= 16, "only {answered} answered before the stop");
    let exited = process.wait_exit(Duration::from_secs(5));
    assert!(exited.is_some());
    assert_eq!(exited.and_then(|s| s.code()), Some(0));
}

/// 500 connections that send nothing do not make a poll wait: heads are
/// read by one loop, and only checks take one of the 64 slots.
#[test]
fn idle_connections_do_not_starve_polls() {
    let (listener, addr) = listen(
        "127.0.0.1:0",
        &["--read-timeout", "5s", "exec", "--", "true"],
    );
    let idle: Vec<TcpStream> = (0..500)
        .map(|_| TcpStream::connect_timeout(&addr, IO_TIMEOUT).unwrap())
        .collect();
    let mut took = Vec::new();
    for _ in 0..50 {
        let start = std::time::Instant::now();
        assert_eq!(get_status(addr), 200);
        took.push(start.elapsed());
    }
    took.sort();
    let p99 = took[took.len() * 99 / 100 - 1];
    let peak = status_kib(listener.0.id(), "VmHWM");
    eprintln!(
        "with 500 idle connections: p50 {:?}, p99 {p99:?}, peak RSS {peak:?} KiB",
        took[took.len() / 2]
    );
    assert!(p99 < Duration::from_millis(100), "p99 {p99:?}");
    drop(idle);
}

// --- HAProxy agent-check on the same port -------------------------------------------

/// The agent line, by hand: nothing sent (HAProxy's agent-check), a line
/// sent (`agent-send`), and HTTP on the same port unaffected; a TCP check
/// that connects and closes still runs nothing.
#[test]
fn agent_lines_on_the_same_port_as_http() {
    let dir = TempDir::new("agent");
    let (script, count) = counting_check(&dir);
    let xinetd = Xinetd::start(BIN, &["--agent", "exec", "--", &script]);
    let read_line = |send: &[u8]| {
        let mut s = TcpStream::connect(("127.0.0.1", xinetd.port())).unwrap();
        s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        s.write_all(send).unwrap();
        let mut got = Vec::new();
        s.read_to_end(&mut got).unwrap();
        String::from_utf8(got).unwrap()
    };
    assert_eq!(read_line(b""), "up ready 100%\n");
    assert_eq!(read_line(b"hello agent\n"), "up ready 100%\n");
    let ex = exchange(xinetd.port(), GET, IO_TIMEOUT);
    ex.assert_clean_close();
    assert_eq!(Response::parse(&ex.bytes).unwrap().status, 200);
    assert_eq!(runs(&count), 3);
    // Connect and close at once: nothing runs.
    drop(TcpStream::connect(("127.0.0.1", xinetd.port())).unwrap());
    xinetd.wait_for_exits(4, IO_TIMEOUT);
    assert_eq!(runs(&count), 3);
}

fn agent_is(want: impl Fn(&ServerState) -> bool) -> impl Fn(&ServerState) -> bool {
    move |s: &ServerState| want(s)
}

/// A real HAProxy polls `option httpchk` and `agent-check` on the same
/// port: the agent sets the weight for a warning, drains while the disable
/// file exists, takes the server down with the reason, and back.
#[test]
fn haproxy_follows_the_agent_on_the_http_port() {
    let dir = TempDir::new("agent-haproxy");
    let (state, check) = dir.switchable_check("state");
    let disable = dir.join("disable");
    // HTTP polls `/` (the application); the agent reports `/agent`, which
    // adds the operator's drain switch, so HAProxy drains the server
    // without its HTTP check failing.
    let config = dir.join("config.toml");
    std::fs::write(
        &config,
        format!(
            "agent = true\nagent-route = \"/agent\"\n\
             [checks.app]\nkind = \"exec\"\nnagios = true\ncommand = [\"{}\"]\n\
             [checks.drain]\nkind = \"exec\"\ncommand = [\"/bin/true\"]\ndisable-file = \"{}\"\n\
             [routes]\n\"/\" = [\"app\"]\n\"/agent\" = [\"app\", \"drain\"]\n",
            check.display(),
            disable.display()
        ),
    )
    .unwrap();
    let xinetd = Xinetd::start(BIN, &["--config", config.to_str().unwrap()]);
    let haproxy = Haproxy::start_with(
        xinetd.port(),
        &[],
        &format!(
            "weight 100 agent-check agent-port {} agent-inter 300ms",
            xinetd.port()
        ),
    );
    let wait = |what: &str, want: &dyn Fn(&ServerState) -> bool| {
        haproxy
            .wait_for_state(Duration::from_secs(10), |s| want(s))
            .unwrap_or_else(|e| panic!("{what}: {e}"))
    };
    let up = wait(
        "UP at full weight",
        &agent_is(|s| s.status == "UP" && s.weight == "100"),
    );
    assert_eq!(up.check_code, "200", "{up:?}");

    std::fs::write(&state, "warn").unwrap();
    let warned = wait("weight 50 on a warning", &agent_is(|s| s.weight == "50"));
    assert_eq!(warned.status, "UP", "{warned:?}");

    std::fs::write(&state, "ok").unwrap();
    wait(
        "weight back to 100",
        &agent_is(|s| s.weight == "100" && s.status == "UP"),
    );

    std::fs::write(&disable, "").unwrap();
    wait(
        "DRAIN while disabled",
        &agent_is(|s| s.status.starts_with("DRAIN")),
    );
    std::fs::remove_file(&disable).unwrap();
    wait("UP again", &agent_is(|s| s.status == "UP"));

    std::fs::write(&state, "crit").unwrap();
    let down = wait(
        "DOWN on a failure",
        &agent_is(|s| s.status.starts_with("DOWN")),
    );
    eprintln!("down: {down:?}");
    // What the agent says now, with the reason.
    let mut agent = TcpStream::connect(("127.0.0.1", xinetd.port())).unwrap();
    agent.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    let mut line = String::new();
    agent.read_to_string(&mut line).unwrap();
    assert_eq!(line, "down #app: CRIT - broken\n");
    std::fs::write(&state, "ok").unwrap();
    let back = wait(
        "UP after the failure",
        &agent_is(|s| s.status == "UP" && s.weight == "100"),
    );
    // The HTTP check kept working all along on the same port.
    assert_eq!(back.check_status, "L7OK", "{back:?}");
}

// --- tcpserver -----------------------------------------------------------------------

/// ucspi-tcp's `tcpserver -RHl0`: the connection on stdin/stdout, stderr
/// tcpserver's own; the peer from `TCPREMOTEIP`, logged on stderr; no reset.
#[test]
fn under_tcpserver() {
    let dir = TempDir::new("tcpserver");
    let down = dir.join("down");
    let test_down = format!("test ! -e {}", down.display());
    let (_process, port) = tcpserver::start(
        dir.path(),
        &[BIN, "exec", "--", "/bin/sh", "-c", &test_down],
    );
    let ex = exchange(port, GET, IO_TIMEOUT);
    ex.assert_clean_close();
    let r = Response::parse(&ex.bytes).unwrap();
    assert_eq!(
        (r.status, r.body_text().as_str()),
        (200, "healthy: exit status 0\n")
    );
    std::fs::write(&down, "").unwrap();
    let ex = exchange(port, b"OPTIONS / HTTP/1.0\r\n\r\n", IO_TIMEOUT);
    ex.assert_clean_close();
    assert_eq!(Response::parse(&ex.bytes).unwrap().status, 503);
    let logged = wait_until(Duration::from_secs(5), Duration::from_millis(20), || {
        let text = std::fs::read_to_string(dir.join("stderr")).unwrap_or_default();
        text.contains("inetd-health: peer=127.0.0.1 method=GET path=/ status=200 ")
            && text.contains("inetd-health: peer=127.0.0.1 method=OPTIONS path=/ status=503 ")
    });
    assert!(
        logged,
        "{}",
        std::fs::read_to_string(dir.join("stderr")).unwrap_or_default()
    );
}

// --- openbsd-inetd and ipsvd's tcpsvd ---------------------------------------------

/// A check script in `dir` that fails while `dir/down` exists.
fn down_switch(dir: &TempDir) -> String {
    let down = dir.join("down");
    let script = dir.script("check", &format!("test ! -e '{}'", down.display()));
    script.to_str().unwrap().to_owned()
}

/// Debian's inetd (openbsd-inetd) with the line `gen inetd` writes: 200,
/// then 503, each a clean close; the peer from the socket, logged through
/// syslog (fds 0, 1 and 2 are the socket, as under xinetd).
#[test]
fn under_openbsd_inetd_with_the_gen_line() {
    let dir = TempDir::new("inetd");
    let check = down_switch(&dir);
    let log = dir.join("log");
    let syslog = std::os::unix::net::UnixDatagram::bind(&log).unwrap();
    syslog.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    let (_inetd, port) = inetd_health_testkit::inetd::start_inetd(dir.path(), |port| {
        let out = Command::new(BIN)
            .args(["--syslog-socket", log.to_str().unwrap(), "gen", "inetd"])
            .args(["--user", "root", "--port", &port.to_string()])
            .args(["--", "exec", "--", &check])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        // The rate limit is raised on the line itself.
        assert!(text.contains(" stream tcp nowait.256 root:"), "{text}");
        text
    });
    let ex = exchange(port, GET, IO_TIMEOUT);
    ex.assert_clean_close();
    let r = Response::parse(&ex.bytes).unwrap();
    assert_eq!(
        (r.status, r.body_text().as_str()),
        (200, "healthy: exit status 0\n")
    );
    std::fs::write(dir.join("down"), "").unwrap();
    let ex = exchange(port, b"OPTIONS / HTTP/1.0\r\n\r\n", IO_TIMEOUT);
    ex.assert_clean_close();
    assert_eq!(Response::parse(&ex.bytes).unwrap().status, 503);
    for status in ["200", "503"] {
        let mut buf = [0u8; 2048];
        let n = syslog.recv(&mut buf).expect("a syslog line per connection");
        let line = String::from_utf8_lossy(&buf[..n]);
        assert!(
            line.contains("]: peer=127.0.0.1 ") && line.contains(&format!(" status={status} ")),
            "{line}"
        );
    }
}

/// ipsvd's `tcpsvd`: the connection on stdin/stdout, stderr tcpsvd's own
/// (the log line there), the peer from the socket; no reset.
#[test]
fn under_tcpsvd() {
    let dir = TempDir::new("tcpsvd");
    let check = down_switch(&dir);
    let (_process, port) =
        inetd_health_testkit::inetd::start_tcpsvd(dir.path(), &[BIN, "exec", "--", &check]);
    let ex = exchange(port, GET, IO_TIMEOUT);
    ex.assert_clean_close();
    let r = Response::parse(&ex.bytes).unwrap();
    assert_eq!(
        (r.status, r.body_text().as_str()),
        (200, "healthy: exit status 0\n")
    );
    std::fs::write(dir.join("down"), "").unwrap();
    let ex = exchange(port, b"OPTIONS / HTTP/1.0\r\n\r\n", IO_TIMEOUT);
    ex.assert_clean_close();
    assert_eq!(Response::parse(&ex.bytes).unwrap().status, 503);
    let stderr = || std::fs::read_to_string(dir.join("stderr")).unwrap_or_default();
    let logged = wait_until(Duration::from_secs(5), Duration::from_millis(20), || {
        let text = stderr();
        text.contains("inetd-health: peer=127.0.0.1 method=GET path=/ status=200 ")
            && text.contains("inetd-health: peer=127.0.0.1 method=OPTIONS path=/ status=503 ")
    });
    assert!(logged, "{}", stderr());
}

// --- Reload on SIGHUP -----------------------------------------------------------

/// The long-lived forms, which read their config again on SIGHUP.
#[derive(Clone, Copy, Debug)]
enum Form {
    /// `--listen 127.0.0.1:0`.
    Listen,
    /// systemd `Accept=no`: `systemd-socket-activate` with a notify socket.
    AcceptNo,
}

/// A long-lived inetd-health serving a config: its port, the pid a
/// reload is signalled to, its log, and under systemd the notify socket
/// it talks to.
struct Daemon {
    process: ProcessGuard,
    port: u16,
    log: std::path::PathBuf,
    notify: Option<std::os::unix::net::UnixDatagram>,
}

impl Daemon {
    /// `form` serving `config` (`--config`), up and answering; under
    /// systemd, its `READY=1` received.
    fn start(form: Form, dir: &TempDir, config: &std::path::Path) -> Daemon {
        let config = config.to_str().unwrap();
        let log = dir.join("stderr");
        match form {
            Form::Listen => {
                let (process, addr) = listening(BIN, &["--config", config], &log, IO_TIMEOUT);
                Daemon {
                    process,
                    port: addr.port(),
                    log,
                    notify: None,
                }
            }
            Form::AcceptNo => {
                let notify_path = dir.join("notify");
                let notify = std::os::unix::net::UnixDatagram::bind(&notify_path).unwrap();
                notify.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
                let (process, ports) = activate(
                    dir,
                    1,
                    &[&format!("--setenv=NOTIFY_SOCKET={}", notify_path.display())],
                    &["--config", config],
                );
                // systemd-socket-activate execs the program at the first
                // connection: from then on its pid is the service's.
                let first = exchange(ports[0], b"GET /metrics HTTP/1.0\r\n\r\n", IO_TIMEOUT);
                assert_eq!(
                    Response::parse(&first.bytes).map(|r| r.status),
                    Ok(200),
                    "{}",
                    first.text()
                );
                let mut buf = [0u8; 256];
                let n = notify.recv(&mut buf).expect("READY=1 on the notify socket");
                assert_eq!(&buf[..n], b"READY=1");
                let pid = process.pid();
                let command = cmdline_of(pid).unwrap_or_default();
                assert!(
                    command.starts_with(&format!("{BIN} --config ")),
                    "pid {pid} is not inetd-health: {command:?}"
                );
                Daemon {
                    process,
                    port: ports[0],
                    log,
                    notify: Some(notify),
                }
            }
        }
    }

    fn log(&self) -> String {
        read_or_empty(&self.log)
    }

    /// How many times the log says `what`.
    fn said(&self, what: &str) -> usize {
        self.log().matches(what).count()
    }

    /// Sends SIGHUP and waits for the log to say `what` for the `nth` time.
    fn sighup(&self, what: &str, nth: usize) {
        signal(self.process.pid(), libc::SIGHUP);
        assert!(
            wait_until(IO_TIMEOUT, Duration::from_millis(5), || self.said(what)
                >= nth),
            "no {what:?} (#{nth}) after SIGHUP: {}",
            self.log()
        );
    }

    /// The status of `GET path`.
    fn status(&self, path: &str) -> u16 {
        let ex = exchange(
            self.port,
            format!("GET {path} HTTP/1.0\r\n\r\n").as_bytes(),
            IO_TIMEOUT,
        );
        Response::parse(&ex.bytes)
            .unwrap_or_else(|e| panic!("GET {path}: {e}"))
            .status
    }

    /// What `/metrics` says of the last reload: whether it read the config
    /// (the gauge, 0 or 1), and when the config served was read (the
    /// timestamp as written: seconds with 3 decimals).
    fn reload_facts(&self) -> (u8, String) {
        let ex = exchange(self.port, b"GET /metrics HTTP/1.0\r\n\r\n", IO_TIMEOUT);
        let r = Response::parse(&ex.bytes).unwrap_or_else(|e| panic!("/metrics: {e}"));
        assert_eq!(r.status, 200, "{r:?}");
        let body = r.body_text();
        let value = |name: &str| {
            body.lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
                .unwrap_or_else(|| panic!("no {name} in /metrics:\n{body}"))
                .to_owned()
        };
        let ok = match value("inetd_health_config_last_reload_successful").as_str() {
            "1" => 1,
            "0" => 0,
            other => panic!("inetd_health_config_last_reload_successful {other}"),
        };
        let at = value("inetd_health_config_last_reload_success_timestamp_seconds");
        let three_decimals = at.split_once('.').is_some_and(|(s, ms)| {
            !s.is_empty()
                && s.bytes().chain(ms.bytes()).all(|b| b.is_ascii_digit())
                && ms.len() == 3
        });
        assert!(three_decimals, "success timestamp {at:?}");
        (ok, at)
    }

    /// The success timestamp once `/metrics` says `ok` for the last
    /// reload. The metric is set before the log line is written; it is
    /// still waited for (2 s at most), and a metric that never says `ok`
    /// fails.
    fn reload_said(&self, ok: bool, after: &str) -> String {
        let mut facts = (9, String::new());
        let said = wait_until(Duration::from_secs(2), Duration::from_millis(5), || {
            facts = self.reload_facts();
            facts.0 == u8::from(ok)
        });
        assert!(
            said,
            "after {after}: inetd_health_config_last_reload_successful {}, want {}",
            facts.0,
            u8::from(ok)
        );
        facts.1
    }

    /// SIGTERM, and its exit code once it exits.
    fn stop(&mut self) -> Option<i32> {
        signal(self.process.pid(), libc::SIGTERM);
        self.process.wait_exit(IO_TIMEOUT)?.code()
    }
}

/// Seconds since the epoch, as the success timestamp counts them.
fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// `CLOCK_MONOTONIC` in microseconds, as `MONOTONIC_USEC=` counts them.
fn monotonic_usec() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec we own.
    assert_eq!(
        unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) },
        0
    );
    ts.tv_sec as u64 * 1_000_000 + ts.tv_nsec as u64 / 1_000
}

/// The next `n` datagrams on `notify`, each within the socket's timeout.
/// Read as they come: a socket holds only `net.unix.max_dgram_qlen` of
/// them (10 by default), and the sender's next one waits.
fn receive(notify: &std::os::unix::net::UnixDatagram, n: usize) -> Vec<String> {
    let mut said = Vec::new();
    let mut buf = [0u8; 256];
    while said.len() < n {
        match notify.recv(&mut buf) {
            Ok(len) => said.push(String::from_utf8_lossy(&buf[..len]).into_owned()),
            Err(e) => panic!("{} of {n} datagrams, then {e}: {said:?}", said.len()),
        }
    }
    said
}

/// The datagrams that come on `notify` within 200 ms.
fn more(notify: &std::os::unix::net::UnixDatagram) -> Vec<String> {
    let mut said = Vec::new();
    let mut buf = [0u8; 256];
    notify
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    while let Ok(len) = notify.recv(&mut buf) {
        said.push(String::from_utf8_lossy(&buf[..len]).into_owned());
    }
    notify.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    said
}

/// A config serving `/a` and `extra` (more lines of `[routes]`) with one
/// check that passes.
fn reload_config(extra: &str) -> String {
    format!(
        "[checks.ok]\nkind = \"exec\"\ncommand = [\"/bin/true\"]\n[routes]\n\"/a\" = [\"ok\"]\n{extra}"
    )
}

/// `form` with a config, polled on `/a` by 16 clients while 20 SIGHUPs
/// land, the config replaced by rename before each: every other one
/// invalid (alternately not TOML, and a new route naming no check). No
/// poll fails; after a valid reload its new route is served and the last
/// one is gone, after an invalid one the last good config still serves
/// and says why; `/metrics` says which (the gauge 1 or 0, the success
/// timestamp moved to the reload or left alone). Under systemd, every
/// SIGHUP is `RELOADING=1` with the `MONOTONIC_USEC=` of the reload, then
/// `READY=1`.
fn reload_under_load(form: Form) {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    let began = std::time::Instant::now();
    let dir = TempDir::new("reload");
    let config = dir.join("config.toml");
    let write = |text: &str| {
        // Replaced by rename, as an editor, a deploy or git does.
        let tmp = dir.join("config.toml.new");
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, &config).unwrap();
    };
    write(&reload_config(""));
    let before_start = unix_now();
    let mut daemon = Daemon::start(form, &dir, &config);
    let port = daemon.port;
    // At the start: 1, and when the config was read.
    let (ok, mut read_at) = daemon.reload_facts();
    assert_eq!(ok, 1, "{form:?} at the start");
    let at: f64 = read_at.parse().unwrap();
    assert!(
        (before_start - 0.002..=unix_now() + 0.002).contains(&at),
        "{form:?}: the start's success timestamp {read_at}, started at {before_start}"
    );
    let stop = AtomicBool::new(false);
    // Set however the scope ends: a failed assertion stops the clients,
    // rather than waiting for them forever.
    struct Stop<'a>(&'a AtomicBool);
    impl Drop for Stop<'_> {
        fn drop(&mut self) {
            self.0.store(true, Ordering::Relaxed);
        }
    }
    let polls = AtomicUsize::new(0);
    let failures = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..16 {
            scope.spawn(|| {
                while !stop.load(Ordering::Relaxed) {
                    let ex = exchange(port, b"GET /a HTTP/1.0\r\n\r\n", IO_TIMEOUT);
                    match Response::parse(&ex.bytes) {
                        Ok(r) if r.status == 200 && !ex.reset => {}
                        other => failures
                            .lock()
                            .unwrap()
                            .push(format!("{other:?} reset={}", ex.reset)),
                    }
                    polls.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
        let _stop = Stop(&stop);
        for i in 0..20 {
            let valid_now = i % 2 == 0;
            let new_route = format!("\"/b{i}\" = [\"ok\"]\n");
            if valid_now {
                write(&reload_config(&new_route));
            } else if i % 4 == 1 {
                write("[checks.ok\nbroken");
            } else {
                write(&reload_config(&format!("\"/b{i}\" = [\"missing\"]\n")));
            }
            let (wall, mono) = (unix_now(), monotonic_usec());
            let (want, what) = if valid_now {
                ("SIGHUP: config reloaded", "a valid config")
            } else {
                ("SIGHUP: config not reloaded", "an invalid config")
            };
            // Each kind happened i/2 + 1 times, counting this one.
            daemon.sighup(want, i / 2 + 1);
            let after = format!("{form:?}: SIGHUP {i} ({what})");
            // Under systemd: RELOADING=1 with the monotonic time of the
            // reload (after the signal), then READY=1.
            if let Some(notify) = &daemon.notify {
                let said = receive(notify, 2);
                let usec = said[0]
                    .strip_prefix("RELOADING=1\nMONOTONIC_USEC=")
                    .unwrap_or_else(|| panic!("{after}: {said:?}"));
                assert!(
                    !usec.is_empty() && usec.bytes().all(|b| b.is_ascii_digit()),
                    "{after}: {said:?}"
                );
                let usec: u64 = usec.parse().unwrap();
                let now = monotonic_usec();
                assert!(
                    (mono..=now).contains(&usec),
                    "{after}: MONOTONIC_USEC={usec}, signalled at {mono}, now {now}"
                );
                assert_eq!(said[1], "READY=1", "{after}: {said:?}");
            }
            let at = daemon.reload_said(valid_now, &after);
            if valid_now {
                let (t, last): (f64, f64) = (at.parse().unwrap(), read_at.parse().unwrap());
                assert!(t > last, "{after}: success timestamp {at}, was {read_at}");
                assert!(
                    (wall - 0.002..=unix_now() + 0.002).contains(&t),
                    "{after}: success timestamp {at}, SIGHUP sent at {wall}"
                );
            } else {
                assert_eq!(at, read_at, "{after}: the success timestamp moved");
            }
            read_at = at;
            // The last good config's route, whichever this one was.
            let route = format!("/b{}", i - i % 2);
            assert_eq!(daemon.status(&route), 200, "{route} after {after}");
            if valid_now && i >= 2 {
                let gone = format!("/b{}", i - 2);
                assert_eq!(daemon.status(&gone), 404, "{gone} after {after}");
            }
            if !valid_now {
                let refused = format!("/b{i}");
                assert_eq!(daemon.status(&refused), 404, "{refused} after {after}");
            }
            std::thread::sleep(Duration::from_millis(30));
        }
    });
    let failures = failures.into_inner().unwrap();
    let polls = polls.load(Ordering::Relaxed);
    assert!(polls > 100, "{form:?}: {polls} polls");
    assert!(
        failures.is_empty(),
        "{form:?}: {} failed polls of {polls}: {:?}",
        failures.len(),
        &failures[..failures.len().min(3)]
    );
    let t = daemon.log();
    assert_eq!(t.matches("SIGHUP: config reloaded").count(), 10, "{t}");
    assert_eq!(
        t.matches("SIGHUP: config not reloaded, still serving the last good one: ")
            .count(),
        10,
        "{t}"
    );
    assert!(t.contains("no check named \"missing\""), "{t}");
    // Under systemd: nothing more than the 20 RELOADING=1, READY=1 pairs.
    if let Some(notify) = &daemon.notify {
        assert_eq!(more(notify), Vec::<String>::new());
    }
    // Still alive, and stops cleanly.
    assert_eq!(daemon.stop(), Some(0), "{form:?}: {}", daemon.log());
    if let Some(notify) = &daemon.notify {
        assert_eq!(receive(notify, 1), ["STOPPING=1"]);
    }
    eprintln!("{form:?}: {polls} polls, 20 SIGHUPs, {:?}", began.elapsed());
}

#[test]
fn sighup_reloads_the_config_without_dropping_a_poll() {
    reload_under_load(Form::Listen);
}

#[test]
fn accept_no_reloads_under_load_and_notifies_each_reload() {
    reload_under_load(Form::AcceptNo);
}

/// The config in a git repository, replaced by `git checkout` (which
/// unlinks the file and writes a new one) and by `mv`, is read anew on
/// each SIGHUP: the checked-out version's routes are served, the other's
/// are 404; a broken file moved in leaves the last good config serving
/// until `git checkout` puts a good one back.
#[test]
fn sighup_reads_a_config_replaced_by_git_checkout_and_by_mv() {
    let git_program = require_program("git");
    let dir = TempDir::new("reload-git");
    let repo = dir.join("repo");
    std::fs::create_dir(&repo).unwrap();
    let git = |args: &[&str]| -> String {
        let out = Command::new(&git_program)
            .current_dir(&repo)
            .args(["-c", "user.name=t", "-c", "user.email=t@t"])
            .args([
                "-c",
                "commit.gpgsign=false",
                "-c",
                "init.defaultBranch=main",
            ])
            .args(args)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    };
    // The versions differ in one route's name only: the same length, so
    // only reading the file tells them apart.
    let version = |route: &str| {
        format!("[checks.ok]\nkind = \"exec\"\ncommand = [\"/bin/true\"]\n[routes]\n\"{route}\" = [\"ok\"]\n")
    };
    let config = repo.join("config.toml");
    let on_disk = || std::fs::read_to_string(&config).unwrap();
    git(&["init", "-q"]);
    std::fs::write(&config, version("/a")).unwrap();
    git(&["add", "config.toml"]);
    git(&["commit", "-qm", "A"]);
    let a = git(&["rev-parse", "HEAD"]);
    std::fs::write(&config, version("/b")).unwrap();
    git(&["commit", "-qam", "B"]);
    let b = git(&["rev-parse", "HEAD"]);
    git(&["checkout", "-q", &a]);
    assert_eq!(on_disk(), version("/a"));

    let mut daemon = Daemon::start(Form::Listen, &dir, &config);
    let serves = |daemon: &Daemon, step: &str, yes: &str, no: &[&str]| {
        assert_eq!(daemon.status(yes), 200, "{yes} after {step}");
        for path in no {
            assert_eq!(daemon.status(path), 404, "{path} after {step}");
        }
    };
    serves(&daemon, "the start", "/a", &["/b", "/c"]);
    let reloaded = "SIGHUP: config reloaded";

    git(&["checkout", "-q", &b]);
    assert_eq!(on_disk(), version("/b"));
    daemon.sighup(reloaded, 1);
    serves(&daemon, "git checkout B", "/b", &["/a"]);
    daemon.reload_said(true, "git checkout B");

    git(&["checkout", "-q", &a]);
    assert_eq!(on_disk(), version("/a"));
    daemon.sighup(reloaded, 2);
    serves(&daemon, "git checkout A", "/a", &["/b"]);

    // mv(1) of a new file over the config.
    let mv = |text: &str| {
        let new = dir.join("config.toml.new");
        std::fs::write(&new, text).unwrap();
        let status = Command::new("mv").arg(&new).arg(&config).status().unwrap();
        assert!(status.success());
        assert_eq!(on_disk(), text);
    };
    mv(&version("/c"));
    daemon.sighup(reloaded, 3);
    serves(&daemon, "mv C", "/c", &["/a", "/b"]);

    // A broken file moved in: the last good config (C) still serves.
    mv("[checks.ok\nbroken");
    daemon.sighup("SIGHUP: config not reloaded", 1);
    daemon.reload_said(false, "mv of a broken config");
    serves(&daemon, "mv of a broken config", "/c", &["/a", "/b"]);

    // git puts B back over the local change.
    git(&["checkout", "-q", "-f", &b]);
    assert_eq!(on_disk(), version("/b"));
    daemon.sighup(reloaded, 4);
    daemon.reload_said(true, "git checkout -f B");
    serves(&daemon, "git checkout -f B", "/b", &["/a", "/c"]);

    assert_eq!(daemon.said(reloaded), 4, "{}", daemon.log());
    assert_eq!(daemon.stop(), Some(0), "{}", daemon.log());
}

/// systemd `Accept=no` with a config: SIGHUP (what `systemctl reload`
/// sends with `ExecReload=kill -HUP $MAINPID`) says `RELOADING=1` with
/// `MONOTONIC_USEC=` then `READY=1` on the notify socket, and the new
/// config's route is served.
#[test]
fn accept_no_reloads_on_sighup_and_notifies() {
    let dir = TempDir::new("activate-reload");
    let config = dir.join("config.toml");
    let write = |extra: &str| {
        let tmp = dir.join("config.toml.new");
        std::fs::write(
            &tmp,
            format!("[checks.ok]\nkind = \"exec\"\ncommand = [\"/bin/true\"]\n[routes]\n\"/a\" = [\"ok\"]\n{extra}"),
        )
        .unwrap();
        std::fs::rename(&tmp, &config).unwrap();
    };
    write("");
    let notify_path = dir.join("notify");
    let notify = std::os::unix::net::UnixDatagram::bind(&notify_path).unwrap();
    notify.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    let (process, ports) = activate(
        &dir,
        1,
        &[&format!("--setenv=NOTIFY_SOCKET={}", notify_path.display())],
        &["--config", config.to_str().unwrap()],
    );
    let status = |path: &str| {
        let ex = exchange(
            ports[0],
            format!("GET {path} HTTP/1.0\r\n\r\n").as_bytes(),
            IO_TIMEOUT,
        );
        Response::parse(&ex.bytes).unwrap().status
    };
    assert_eq!(status("/a"), 200);
    let mut buf = [0u8; 256];
    let n = notify.recv(&mut buf).expect("READY=1");
    assert_eq!(&buf[..n], b"READY=1");
    assert_eq!(status("/b"), 404);
    write("\"/b\" = [\"ok\"]\n");
    signal(process.pid(), libc::SIGHUP);
    let n = notify.recv(&mut buf).expect("RELOADING=1");
    let said = String::from_utf8_lossy(&buf[..n]).into_owned();
    let usec = said
        .strip_prefix("RELOADING=1\nMONOTONIC_USEC=")
        .unwrap_or_else(|| panic!("{said:?}"));
    assert!(usec.parse::<u64>().is_ok_and(|u| u > 0), "{said:?}");
    let n = notify.recv(&mut buf).expect("READY=1 after the reload");
    assert_eq!(&buf[..n], b"READY=1");
    assert_eq!(status("/b"), 200);
}

/// A notify socket nobody reads (systemd stalled) fills after ten
/// datagrams (`net.unix.max_dgram_qlen`); the loop that answers polls must
/// not wait on it: 30 SIGHUPs (60 datagrams) and every poll still answered.
#[test]
fn a_full_notify_socket_does_not_stop_the_answers() {
    let dir = TempDir::new("activate-notify-full");
    let config = dir.join("config.toml");
    std::fs::write(
        &config,
        "[checks.ok]\nkind = \"exec\"\ncommand = [\"/bin/true\"]\n[routes]\n\"/a\" = [\"ok\"]\n",
    )
    .unwrap();
    let notify_path = dir.join("notify");
    // Bound, never read.
    let _notify = std::os::unix::net::UnixDatagram::bind(&notify_path).unwrap();
    let (process, ports) = activate(
        &dir,
        1,
        &[&format!("--setenv=NOTIFY_SOCKET={}", notify_path.display())],
        &["--config", config.to_str().unwrap()],
    );
    let status = |path: &str| {
        let ex = exchange(
            ports[0],
            format!("GET {path} HTTP/1.0\r\n\r\n").as_bytes(),
            IO_TIMEOUT,
        );
        Response::parse(&ex.bytes).map(|r| r.status)
    };
    assert_eq!(status("/a").unwrap(), 200);
    let log = || std::fs::read_to_string(dir.join("stderr")).unwrap_or_default();
    for i in 0..30 {
        signal(process.pid(), libc::SIGHUP);
        let reloaded = wait_until(IO_TIMEOUT, Duration::from_millis(5), || {
            log().matches("SIGHUP: config reloaded").count() > i
        });
        assert!(reloaded, "SIGHUP {i} not handled: {}", log());
        assert_eq!(status("/a").ok(), Some(200), "after SIGHUP {i}");
    }
}

// --- docs/systemd.md, as written ------------------------------------------------

/// Where docs/systemd.md's units run the binary from.
const DOC_BIN: &str = "/usr/local/bin/inetd-health";

/// `text` with `from` replaced by `to`, which it must contain: a doc
/// block changed under its test fails here, not in what it tested.
fn replaced(text: &str, from: &str, to: &str) -> String {
    assert!(text.contains(from), "no {from:?} in:\n{text}");
    text.replace(from, to)
}

/// The unit of docs/systemd.md fenced as ```` ```ini NAME FORM ```` (FORM
/// `Accept=yes` or `Accept=no`).
fn doc_unit(name: &str, form: &str) -> String {
    inetd_health_testkit::docs::block("systemd.md", &format!("ini {name} {form}"))
}

/// The service unit of docs/systemd.md `name` in `form` (see
/// [`doc_unit`]), running the binary under test.
fn doc_service(name: &str, form: &str) -> String {
    replaced(&doc_unit(name, form), DOC_BIN, BIN)
}

/// `units` (file name, text) written to `dir/units/`: `systemd-analyze
/// verify` accepts them together, without a word. `User=` and `Group=`
/// stay as written: verify does not look the user up, and the command is
/// run below as the test's user, as systemd-socket-activate runs it.
fn verify_units(dir: &TempDir, units: &[(&str, &str)]) {
    let analyze = require_program("systemd-analyze");
    let units_dir = dir.join("units");
    std::fs::create_dir_all(&units_dir).unwrap();
    let mut verify = Command::new(&analyze);
    verify.arg("verify");
    for (name, text) in units {
        let path = units_dir.join(name);
        std::fs::write(&path, text).unwrap();
        verify.arg(path);
    }
    let out = verify.output().unwrap();
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "systemd-analyze verify {units:#?}:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The `ExecReload=` line of `unit_text`, run as systemd runs it for the
/// service whose main process is `main_pid`: its words as systemd reads
/// an `Exec*=` line, `$MAINPID` (or `${MAINPID}`) that pid. Its exit
/// status.
fn exec_reload(unit_text: &str, main_pid: u32) -> std::process::ExitStatus {
    let line = unit_text
        .lines()
        .find_map(|l| l.strip_prefix("ExecReload="))
        .unwrap_or_else(|| panic!("no ExecReload= in:\n{unit_text}"));
    let words: Vec<String> = exec_start_parsed(&format!("ExecStart={line}"))
        .iter()
        .map(|w| match w.as_str() {
            "$MAINPID" | "${MAINPID}" => main_pid.to_string(),
            _ => expand_environment(w),
        })
        .collect();
    Command::new(&words[0])
        .args(&words[1..])
        .status()
        .unwrap_or_else(|e| panic!("{words:?}: {e}"))
}

/// The status of `GET path` at `addr`.
fn status_at(addr: SocketAddr, path: &str) -> u16 {
    let mut s = TcpStream::connect_timeout(&addr, IO_TIMEOUT).unwrap();
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    s.write_all(format!("GET {path} HTTP/1.0\r\n\r\n").as_bytes())
        .unwrap();
    let mut got = Vec::new();
    s.read_to_end(&mut got).unwrap();
    Response::parse(&got)
        .unwrap_or_else(|e| {
            panic!(
                "GET {path} at {addr}: {e}: {:?}",
                String::from_utf8_lossy(&got)
            )
        })
        .status
}

/// docs/systemd.md's `Accept=no` units as written, the binary and the
/// config the test's: `systemd-analyze verify` accepts them; the
/// service's `ExecStart=` under systemd-socket-activate, on the socket's
/// two addresses (on ports of the test's) with a notify socket, serves
/// both and says `READY=1`; the config given a new route, the unit's own
/// `ExecReload=` (`$MAINPID` the service's pid) makes it say
/// `RELOADING=1` and `READY=1`, and the new route is served; SIGTERM (a
/// stop) says `STOPPING=1`, and it exits 0.
#[test]
fn docs_systemd_md_accept_no_units_work_as_written() {
    let dir = TempDir::new("doc-accept-no");
    let config = dir.join("config.toml");
    let write = |extra: &str| {
        let tmp = dir.join("config.toml.new");
        std::fs::write(&tmp, reload_config(extra)).unwrap();
        std::fs::rename(&tmp, &config).unwrap();
    };
    write("");
    let socket = doc_unit("app-health.socket", "Accept=no");
    let service = replaced(
        &doc_service("app-health.service", "Accept=no"),
        "--config /etc/inetd-health/config.toml",
        &format!("--config {}", config.display()),
    );
    verify_units(
        &dir,
        &[
            ("app-health.socket", &socket),
            ("app-health.service", &service),
        ],
    );
    // systemd-socket-activate listens on 127.0.0.1, then on [::1]: the
    // socket's addresses, in its order.
    let listen: Vec<&str> = socket
        .lines()
        .filter_map(|l| l.strip_prefix("ListenStream="))
        .collect();
    assert_eq!(listen, ["127.0.0.1:9200", "[::1]:9200"], "{socket}");
    let notify_path = dir.join("notify");
    let notify = std::os::unix::net::UnixDatagram::bind(&notify_path).unwrap();
    notify.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    let argv = exec_start(&service);
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let (mut process, ports) = socket_activate(
        &dir,
        listen.len(),
        &[&format!("--setenv=NOTIFY_SOCKET={}", notify_path.display())],
        &argv,
    );
    let v4 = loopback(ports[0]);
    let v6: SocketAddr = format!("[::1]:{}", ports[1]).parse().unwrap();
    // The first connection starts the service: from then on the process
    // is the service's main process.
    assert_eq!(status_at(v4, "/a"), 200);
    assert_eq!(receive(&notify, 1), ["READY=1"]);
    let pid = process.pid();
    let command = cmdline_of(pid).unwrap_or_default();
    assert!(
        command.starts_with(&format!("{BIN} ")),
        "pid {pid} is not inetd-health: {command:?}"
    );
    assert_eq!(status_at(v6, "/a"), 200);
    assert_eq!(status_at(v4, "/b"), 404);

    // `systemctl reload app-health`.
    write("\"/b\" = [\"ok\"]\n");
    let reload = exec_reload(&service, pid);
    assert!(reload.success(), "ExecReload=: {reload}");
    let said = receive(&notify, 2);
    let usec = said[0]
        .strip_prefix("RELOADING=1\nMONOTONIC_USEC=")
        .unwrap_or_else(|| panic!("{said:?}"));
    assert!(usec.parse::<u64>().is_ok_and(|u| u > 0), "{said:?}");
    assert_eq!(said[1], "READY=1", "{said:?}");
    assert_eq!(status_at(v4, "/b"), 200);
    assert_eq!(status_at(v6, "/b"), 200);

    // `systemctl stop app-health`.
    signal(pid, libc::SIGTERM);
    assert_eq!(receive(&notify, 1), ["STOPPING=1"]);
    let stopped = process.wait_exit(IO_TIMEOUT);
    assert!(stopped.is_some(), "still running after SIGTERM");
    assert_eq!(stopped.and_then(|s| s.code()), Some(0));
}

/// docs/systemd.md's `Accept=yes` units as written, the binary and the
/// check's target the test's: `systemd-analyze verify` accepts them; the
/// template's `ExecStart=`, each connection on its stdin
/// (`StandardInput=socket`), answers 200 while the target listens and 503
/// once it is gone.
#[test]
fn docs_systemd_md_accept_yes_units_work_as_written() {
    let dir = TempDir::new("doc-accept-yes");
    let target = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let socket = doc_unit("app-health.socket", "Accept=yes");
    let service = replaced(
        &doc_service("app-health@.service", "Accept=yes"),
        " tcp 127.0.0.1:8080",
        &format!(" tcp {}", target.local_addr().unwrap()),
    );
    verify_units(
        &dir,
        &[
            ("app-health.socket", &socket),
            ("app-health@.service", &service),
        ],
    );
    for line in ["Accept=yes", "ListenStream=127.0.0.1:9200"] {
        assert!(socket.lines().any(|l| l == line), "{line}: {socket}");
    }
    assert!(
        service.lines().any(|l| l == "StandardInput=socket"),
        "{service}"
    );
    let (mut process, port) = activate_unit(&dir, &service, &["--accept", "--inetd"]);
    assert_eq!(status_at(loopback(port), "/"), 200);
    drop(target);
    assert_eq!(status_at(loopback(port), "/"), 503);
    process.stop();
}
