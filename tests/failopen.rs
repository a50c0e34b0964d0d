//! Issue 14's fail-open holes, each pinned on the wire: a request that
//! selects no check, an agent route that does not exist, a status that
//! depends on the format, a bad config under every launcher, the listen
//! queue, the peer in the log, public reasons.
//!
//! Each test asserts what a user would notice: the status and body a
//! poller reads, a real HAProxy's verdict, a reset the kernel counts in a
//! network namespace of the test's own, how long a poll waits, the log line
//! an operator reads.

use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use inetd_health_testkit::activate::socket_activate;
use inetd_health_testkit::client::{exchange, read_until_closed, Exchange};
use inetd_health_testkit::haproxy::{Haproxy, ServerState};
use inetd_health_testkit::http::Response;
use inetd_health_testkit::netns::{in_private_network, Aborts};
use inetd_health_testkit::procs::{
    cmdline_of, require_program, signal, wait_bounded, wait_until, ProcessGuard,
};
use inetd_health_testkit::run::{listening, reader, run_with_input, Run};
use inetd_health_testkit::tcpserver;
use inetd_health_testkit::tmp::TempDir;
use inetd_health_testkit::xinetd::Xinetd;

/// The binary under test, as Cargo built it for this package's tests.
const BIN: &str = env!("CARGO_BIN_EXE_inetd-health");

const IO_TIMEOUT: Duration = Duration::from_secs(10);
const MISCONFIGURED: &str = "inetd-health is misconfigured: see the system log\n";
const PROMETHEUS: &str = "text/plain; version=0.0.4; charset=utf-8";

// --- helpers -------------------------------------------------------------------------

/// Writes `text` as `name` in `dir`, mode 0644 (a config others may not
/// write), and returns its path.
fn config_file(dir: &TempDir, name: &str, text: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    let tmp = dir.join(&format!(".{name}.tmp"));
    std::fs::write(&tmp, text).unwrap();
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o644)).unwrap();
    // Renamed into place: a process reading the file on a poll never sees
    // it half written.
    std::fs::rename(&tmp, &path).unwrap();
    path
}

fn path_str(p: &Path) -> String {
    p.to_str().expect("utf-8 path").to_owned()
}

/// One request over pipes (stdin the request, then closed).
fn over_pipes(args: &[&str], request: &str) -> Run {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    run_with_input(BIN, &args, request.as_bytes())
}

/// The response of a run over pipes, strictly parsed.
fn response_of(run: &Run) -> Response {
    run.response()
}

/// What one connection served by the binary on a TCP socket saw.
struct Served {
    /// The client's side: bytes, reset, timeout.
    exchange: Exchange,
    /// The binary's stderr (its log line, as under tcpserver or systemd).
    stderr: String,
    /// How it exited.
    code: Option<i32>,
}

/// Runs the binary as a launcher that hands it an accepted TCP connection
/// on stdin/stdout would (tcpserver, `Accept=yes` with `StandardInput=socket`),
/// stderr a pipe, with `env` added to an environment without any launcher's
/// variables; the client (from 127.0.0.1) sends `request` and reads to EOF.
fn over_tcp(args: &[&str], env: &[(&str, &str)], request: &[u8]) -> Served {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().unwrap();
    let fd = OwnedFd::from(server);
    let mut child = Command::new(BIN)
        .args(args)
        .env_remove("REMOTE_HOST")
        .env_remove("TCPREMOTEIP")
        .env_remove("REMOTE_ADDR")
        .envs(env.iter().copied())
        .stdin(fd.try_clone().unwrap())
        .stdout(fd)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawning {BIN}: {e}"));
    let stderr = reader(child.stderr.take().unwrap());
    client.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    let write_error = client.write_all(request).err();
    let mut exchange = read_until_closed(&mut client, IO_TIMEOUT);
    exchange.write_error = write_error;
    drop(client);
    let status = wait_bounded(&mut child, IO_TIMEOUT);
    let (exited, code) = (status.is_some(), status.and_then(|s| s.code()));
    let stderr = String::from_utf8_lossy(&stderr.join().unwrap_or_default()).into_owned();
    assert!(
        exited,
        "{args:?} still running after {IO_TIMEOUT:?}: {stderr}"
    );
    Served {
        exchange,
        stderr,
        code,
    }
}

/// The one response of an exchange that ended in a clean EOF.
fn clean_response(ex: &Exchange, what: &str) -> Response {
    assert!(
        !ex.reset,
        "{what}: connection reset after {:?}; received {:?}",
        ex.elapsed,
        ex.text()
    );
    ex.assert_clean_close();
    Response::parse(&ex.bytes).unwrap_or_else(|e| panic!("{what}: {e}"))
}

/// The value of `key="..."` in a log line (quoted values turn `"` into
/// `'`, so the first `"` after the opening one ends it).
fn quoted_value<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let at = line.find(&format!(" {key}=\""))? + key.len() + 3;
    let rest = &line[at..];
    Some(&rest[..rest.find('"')?])
}

/// The log line (the one with `status=`) in a run's stderr.
fn log_line(stderr: &str) -> &str {
    stderr
        .lines()
        .find(|l| l.contains(" status="))
        .unwrap_or_else(|| panic!("no log line in stderr: {stderr:?}"))
}

/// Runs `body` in a network namespace of its own and asserts the kernel
/// aborted no connection there (no reset sent for unread data, none after
/// close): a client that got its bytes before a reset would not notice,
/// these counters do.
fn without_aborts(body: impl FnOnce() + Send) {
    in_private_network(|| {
        let before = Aborts::now();
        body();
        let after = Aborts::now();
        assert_eq!(
            after, before,
            "the kernel aborted connections (TCPAbortOnClose/TCPAbortOnData moved)"
        );
    });
}

/// A `TcpExt:` counter of this thread's network namespace.
fn tcp_ext(name: &str) -> u64 {
    let text = std::fs::read_to_string("/proc/thread-self/net/netstat").unwrap();
    let mut lines = text.lines().filter(|l| l.starts_with("TcpExt:"));
    while let (Some(names), Some(values)) = (lines.next(), lines.next()) {
        if let Some(at) = names.split_whitespace().position(|n| n == name) {
            return values.split_whitespace().nth(at).unwrap().parse().unwrap();
        }
    }
    panic!("no TcpExt {name} in /proc/thread-self/net/netstat")
}

/// A config whose route `/ready` names a check that does not exist (a typo).
fn typo_config(dir: &TempDir) -> PathBuf {
    config_file(
        dir,
        "config.toml",
        "[checks.ok]\nkind = \"exec\"\ncommand = [\"/bin/true\"]\n\
         [routes]\n\"/\" = [\"ok\"]\n\"/ready\" = [\"ok\", \"okk\"]\n",
    )
}

/// Polls `GET /ready` on `port` and asserts the misconfiguration answer,
/// ending in a clean close.
fn assert_misconfigured_answer(port: u16, what: &str) {
    let ex = exchange(port, b"GET /ready HTTP/1.1\r\nHost: lb\r\n\r\n", IO_TIMEOUT);
    let r = clean_response(&ex, what);
    assert_eq!(
        (r.status_line.as_str(), r.body_text().as_str()),
        ("HTTP/1.1 500 Internal Server Error", MISCONFIGURED),
        "{what}: {r:?}"
    );
    r.assert_standard_headers();
}

// --- 1. Nothing healthy without a check ------------------------------------------------

/// Excluding the only check leaves nothing to vouch for the server: 503,
/// not "healthy: 0 checks passed".
#[test]
fn excluding_the_only_check_is_503_no_check_selected() {
    let run = over_pipes(
        &["exec", "--", "/bin/false"],
        "GET /?exclude=exec HTTP/1.0\r\n\r\n",
    );
    let r = response_of(&run);
    assert_eq!(
        (r.status, r.body_text().as_str()),
        (503, "unknown: no check selected\n"),
        "{r:?}\nstderr: {}",
        run.stderr
    );
    r.assert_standard_headers();
}

/// Excluding every check of a route: 503 in text and in JSON (by query and
/// by `Accept`), the JSON saying `fail` with no checks.
#[test]
fn excluding_every_check_of_a_route_is_503_in_every_format() {
    let dir = TempDir::new("fo-exclude");
    let config = config_file(
        &dir,
        "config.toml",
        "[checks.a]\nkind = \"exec\"\ncommand = [\"/bin/true\"]\n\
         [checks.b]\nkind = \"exec\"\ncommand = [\"/bin/true\"]\n\
         [routes]\n\"/ready\" = [\"a\", \"b\"]\n",
    );
    let config = path_str(&config);
    let args = ["--config", config.as_str()];

    // Both checks pass when asked: the route itself is healthy.
    let run = over_pipes(&args, "GET /ready HTTP/1.0\r\n\r\n");
    assert_eq!(response_of(&run).status, 200, "{}", run.stdout_text());

    let run = over_pipes(&args, "GET /ready?exclude=a&exclude=b HTTP/1.0\r\n\r\n");
    let r = response_of(&run);
    assert_eq!(r.status, 503, "text: {r:?}");
    assert!(r.body_text().contains("no check selected"), "text: {r:?}");

    for (what, request) in [
        (
            "?format=json",
            "GET /ready?exclude=a&exclude=b&format=json HTTP/1.0\r\n\r\n",
        ),
        (
            "Accept: application/health+json",
            "GET /ready?exclude=a&exclude=b HTTP/1.0\r\nAccept: application/health+json\r\n\r\n",
        ),
    ] {
        let run = over_pipes(&args, request);
        let r = response_of(&run);
        let body = r.body_text();
        assert_eq!(r.status, 503, "{what}: {r:?}");
        assert!(body.contains(r#""status":"fail""#), "{what}: {body}");
        assert!(body.contains(r#""checks":{}"#), "{what}: {body}");
        assert!(body.contains("no check selected"), "{what}: {body}");
    }
}

/// `agent = true` with no route `/` (the default agent route): the whole
/// config is refused. `--check-config` says why; under xinetd every HTTP
/// poll is a 500 and an agent connection never hears `up`.
#[test]
fn agent_route_that_is_not_a_route_refuses_the_config() {
    let dir = TempDir::new("fo-agent-route");
    let config = config_file(
        &dir,
        "config.toml",
        "agent = true\n\
         [checks.down]\nkind = \"exec\"\ncommand = [\"/bin/false\"]\n\
         [routes]\n\"/ready\" = [\"down\"]\n",
    );
    let config = path_str(&config);

    let out = Command::new(BIN)
        .args(["--config", &config, "--check-config"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(64), "--check-config said: {said}");
    assert!(
        said.contains(r#"agent-route "/" is not a route"#),
        "--check-config said: {said}"
    );

    let xinetd = Xinetd::start(BIN, &["--config", &config]);
    let ex = exchange(
        xinetd.port(),
        b"GET /ready HTTP/1.1\r\nHost: lb\r\n\r\n",
        IO_TIMEOUT,
    );
    let r = clean_response(&ex, "GET /ready");
    assert_eq!(
        (r.status, r.body_text().as_str()),
        (500, MISCONFIGURED),
        "{r:?}"
    );

    // HAProxy's agent-check: connect, send nothing, read. HAProxy takes
    // any word `up` or `ready` of the reply's first line for the server
    // being up.
    let agent = exchange(xinetd.port(), b"", Duration::from_secs(5));
    let said = agent.text();
    let first_line = said.lines().next().unwrap_or_default();
    assert!(
        !first_line
            .split(|c: char| c.is_whitespace() || c == ',')
            .any(|word| word.eq_ignore_ascii_case("up") || word.eq_ignore_ascii_case("ready")),
        "an agent connection was told {said:?} by a refused config"
    );
    // Said in words HAProxy acts on (it keeps an agent's last state on a
    // reply it cannot read, such as an HTTP 408).
    assert_eq!(said, MISCONFIGURED_AGENT, "the agent was told {said:?}");
}

/// What HAProxy's agent-check hears from a service that cannot be set up.
const MISCONFIGURED_AGENT: &str = "down #inetd-health is misconfigured\n";

/// `--agent-route` with a query is refused on the command line, as the
/// file's `agent-route` is.
#[test]
fn agent_route_with_a_query_is_refused() {
    let dir = TempDir::new("fo-agent-query");
    let config = config_file(
        &dir,
        "config.toml",
        "[checks.down]\nkind = \"exec\"\ncommand = [\"/bin/false\"]\n\
         [routes]\n\"/\" = [\"down\"]\n\"/ready\" = [\"down\"]\n",
    );
    let config = path_str(&config);
    let out = Command::new(BIN)
        .args([
            "--agent",
            "--agent-route",
            "/ready?x=1",
            "--config",
            &config,
        ])
        .env_remove("REMOTE_HOST")
        .env_remove("TCPREMOTEIP")
        .env_remove("REMOTE_ADDR")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "stderr: {stderr}");
    assert!(stderr.contains("agent-route"), "stderr: {stderr}");

    // The file's form, for comparison.
    let in_file = config_file(
        &dir,
        "in-file.toml",
        "agent = true\nagent-route = \"/ready?x=1\"\n\
         [checks.down]\nkind = \"exec\"\ncommand = [\"/bin/false\"]\n\
         [routes]\n\"/\" = [\"down\"]\n\"/ready\" = [\"down\"]\n",
    );
    let out = Command::new(BIN)
        .args(["--config", &path_str(&in_file), "--check-config"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(64),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn agent_config(ready: &str) -> String {
    format!(
        "agent = true\nagent-route = \"/ready\"\n\
         [checks.ok]\nkind = \"exec\"\ncommand = [\"/bin/true\"]\n\
         [checks.down]\nkind = \"exec\"\ncommand = [\"/bin/false\"]\n\
         [routes]\n\"/\" = [\"ok\"]\n\"/ready\" = [\"{ready}\"]\n"
    )
}

/// A real HAProxy polls HTTP on `/` (which passes) and the agent on the
/// same port: the agent reports `/ready`, so the server goes DOWN while
/// `/ready` fails and UP once it passes.
#[test]
fn haproxy_agent_check_follows_the_agent_route() {
    let dir = TempDir::new("fo-agent-haproxy");
    let config = config_file(&dir, "config.toml", &agent_config("down"));
    let xinetd = Xinetd::start(BIN, &["--config", &path_str(&config)]);
    let haproxy = Haproxy::start_with(
        xinetd.port(),
        &[],
        &format!(
            "weight 100 agent-check agent-port {} agent-inter 300ms",
            xinetd.port()
        ),
    );
    let wait = |what: &str, want: fn(&ServerState) -> bool| {
        haproxy
            .wait_for_state(Duration::from_secs(10), want)
            .unwrap_or_else(|e| panic!("{what}: {e}"))
    };
    let down = wait("DOWN while the agent route fails", |s| {
        s.status.starts_with("DOWN")
    });
    // The HTTP check of `/` passes: DOWN is the agent's doing.
    assert_eq!(down.check_code, "200", "{down:?}");

    config_file(&dir, "config.toml", &agent_config("ok"));
    wait("UP once the agent route passes", |s| {
        s.status == "UP" && s.weight == "100"
    });
}

// --- 2. A route's status never depends on the format ---------------------------------

/// `/ready` fails: 503 whether the poller asks for text, JSON or
/// Prometheus; only `/metrics` (a scrape) is always 200.
#[test]
fn a_routes_status_does_not_depend_on_the_format() {
    let dir = TempDir::new("fo-format");
    let config = config_file(
        &dir,
        "config.toml",
        "[checks.ok]\nkind = \"exec\"\ncommand = [\"/bin/true\"]\n\
         [checks.down]\nkind = \"exec\"\ncommand = [\"/bin/false\"]\n\
         [routes]\n\"/\" = [\"ok\"]\n\"/ready\" = [\"down\"]\n",
    );
    let config = path_str(&config);
    let args = ["--config", config.as_str()];
    let gauge = r#"inetd_health_check_success{check="down"} 0"#;

    for (what, request) in [
        (
            "Accept: application/openmetrics-text",
            "GET /ready HTTP/1.0\r\nAccept: application/openmetrics-text\r\n\r\n",
        ),
        (
            "Accept: text/plain; version=0.0.4",
            "GET /ready HTTP/1.0\r\nAccept: text/plain; version=0.0.4\r\n\r\n",
        ),
        (
            "?format=prometheus",
            "GET /ready?format=prometheus HTTP/1.0\r\n\r\n",
        ),
    ] {
        let r = response_of(&over_pipes(&args, request));
        assert_eq!(r.status, 503, "{what}: {r:?}");
        assert_eq!(r.header("Content-Type"), Some(PROMETHEUS), "{what}: {r:?}");
        assert!(
            r.body_text().lines().any(|l| l == gauge),
            "{what}: no {gauge:?} in {r:?}"
        );
    }
    for (what, request) in [
        ("text", "GET /ready HTTP/1.0\r\n\r\n"),
        ("?format=json", "GET /ready?format=json HTTP/1.0\r\n\r\n"),
    ] {
        let r = response_of(&over_pipes(&args, request));
        assert_eq!(r.status, 503, "{what}: {r:?}");
    }

    let r = response_of(&over_pipes(&args, "GET /metrics HTTP/1.0\r\n\r\n"));
    assert_eq!(r.status, 200, "/metrics: {r:?}");
    assert_eq!(
        r.header("Content-Type"),
        Some(PROMETHEUS),
        "/metrics: {r:?}"
    );
    assert!(
        r.body_text().lines().any(|l| l == gauge),
        "/metrics: no {gauge:?} in {r:?}"
    );
}

/// The single-check command line is a config of one check named `exec`:
/// `/metrics` is its scrape (200, Prometheus), every other path the check.
#[test]
fn single_check_form_has_metrics_and_fails_everywhere_else() {
    let args = ["exec", "--", "/bin/false"];
    let r = response_of(&over_pipes(&args, "GET /metrics HTTP/1.0\r\n\r\n"));
    assert_eq!(r.status, 200, "/metrics: {r:?}");
    assert_eq!(
        r.header("Content-Type"),
        Some(PROMETHEUS),
        "/metrics: {r:?}"
    );
    let gauge = r#"inetd_health_check_success{check="exec"} 0"#;
    assert!(
        r.body_text().lines().any(|l| l == gauge),
        "/metrics: no {gauge:?} in {r:?}"
    );

    let r = response_of(&over_pipes(&args, "GET / HTTP/1.0\r\n\r\n"));
    assert_eq!(
        (r.status, r.body_text().as_str()),
        (503, "unhealthy: exit status 1\n"),
        "/: {r:?}"
    );
    r.assert_standard_headers();
}

// --- 3. Every launcher gets an answer --------------------------------------------------

/// ucspi-tcp's tcpserver (stdin/stdout the connection, stderr tcpserver's):
/// a config with a typo is a 500 with the reason in the log, closed without
/// a reset.
#[test]
fn bad_config_under_tcpserver_is_500_without_reset() {
    let dir = TempDir::new("fo-tcpserver");
    let config = path_str(&typo_config(&dir));
    without_aborts(|| {
        let (_process, port) = tcpserver::start(dir.path(), &[BIN, "--config", &config]);
        for i in 0..2 {
            assert_misconfigured_answer(port, &format!("tcpserver, poll {i}"));
        }
        let logged = wait_until(Duration::from_secs(5), Duration::from_millis(20), || {
            std::fs::read_to_string(dir.join("stderr"))
                .unwrap_or_default()
                .contains("okk")
        });
        assert!(
            logged,
            "the log does not name the mistake: {}",
            std::fs::read_to_string(dir.join("stderr")).unwrap_or_default()
        );
    });
}

/// systemd-socket-activate with `flags`, running the binary on a config
/// with a typo, in a network namespace of its own: every poll is a 500,
/// none reset. Returns nothing; `check` sees the process between polls.
fn bad_config_under_socket_activation(
    flags: &[&str],
    mut check: impl FnMut(&mut ProcessGuard) + Send,
) {
    let dir = TempDir::new("fo-activate");
    let config = path_str(&typo_config(&dir));
    without_aborts(|| {
        let (mut process, ports) = socket_activate(&dir, 1, flags, &[BIN, "--config", &config]);
        for i in 0..3 {
            assert_misconfigured_answer(ports[0], &format!("{flags:?}, poll {i}"));
            check(&mut process);
        }
        // HAProxy's agent-check (connect, say nothing) hears `down`.
        let agent = exchange(ports[0], b"", Duration::from_secs(5));
        assert_eq!(agent.text(), MISCONFIGURED_AGENT, "{flags:?}: the agent");
        check(&mut process);
        let stderr = std::fs::read_to_string(dir.join("stderr")).unwrap_or_default();
        assert!(
            stderr.contains("okk"),
            "{flags:?}: the log does not name the mistake: {stderr}"
        );
        drop(process);
    });
}

/// `Accept=yes` with `StandardInput=socket`: the connection on stdin.
#[test]
fn bad_config_under_socket_activation_accept_inetd_is_500_without_reset() {
    bad_config_under_socket_activation(&["--accept", "--inetd"], |_| {});
}

/// `Accept=yes` without `StandardInput=socket`: the connection on fd 3.
#[test]
fn bad_config_under_socket_activation_accept_fd3_is_500_without_reset() {
    bad_config_under_socket_activation(&["--accept"], |_| {});
}

/// `Accept=no`: one long-lived process on the listening socket (fd 3).
/// Every poll gets the 500, and the process is still there afterwards (it
/// does not exit after the first and leave the socket to nobody).
#[test]
fn bad_config_under_socket_activation_accept_no_answers_every_poll() {
    let mut pid = None;
    bad_config_under_socket_activation(&[], |process| {
        assert!(
            process.try_wait().is_none(),
            "the Accept=no process exited after a poll: {:?}",
            process.try_wait()
        );
        let now = process.pid();
        assert_eq!(*pid.get_or_insert(now), now, "another process");
        // systemd-socket-activate execs the service in its own place: the
        // pid it started as is inetd-health now, still the same process.
        let cmdline = cmdline_of(now).unwrap_or_default();
        assert!(
            cmdline.starts_with(&format!("{BIN} --config ")),
            "pid {now} runs {cmdline:?}, not inetd-health"
        );
    });
}

// --- 4. The listen queue ---------------------------------------------------------------

/// Raises this process's soft limit of open files (children inherit it).
fn raise_nofile(want: u64) {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit write or read the struct we pass.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim), 0);
        if lim.rlim_cur < want as libc::rlim_t {
            lim.rlim_cur = (want as libc::rlim_t).min(lim.rlim_max);
            assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &lim), 0);
        }
    }
}

/// `inetd-health --listen 127.0.0.1:0 ARGS...` with stderr to `dir/stderr`, once
/// it says where it listens.
fn listen(dir: &TempDir, args: &[&str]) -> (ProcessGuard, SocketAddr) {
    listening(BIN, args, &dir.join("stderr"), Duration::from_secs(5))
}

/// The listen queue of the socket listening on `port`, as `ss` shows it
/// (Send-Q of a listening socket).
fn listen_queue(port: u16) -> Option<u32> {
    let out = Command::new("ss")
        .args(["-Hltn", &format!("sport = :{port}")])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|l| l.split_whitespace().nth(2)?.parse().ok())
}

/// A TCP target for the `tcp` check that accepts (and drops) everything,
/// with a long queue of its own. Stopped when dropped.
struct Target {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Target {
    fn start() -> Target {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        // SAFETY: listen(2) again on our listening socket: a new queue length.
        assert_eq!(unsafe { libc::listen(listener.as_raw_fd(), 4096) }, 0);
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::spawn(move || {
            while let Ok((conn, _)) = listener.accept() {
                drop(conn);
                if stopping.load(Ordering::SeqCst) {
                    break;
                }
            }
        });
        Target {
            addr,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Reads every stream to its end as its bytes arrive (as pollers do, each
/// reading its own connection), closing each at its EOF, within `timeout`.
/// Returns how many got a complete `HTTP/1.1 200` response closed cleanly,
/// and a description of the others.
fn read_all_as_they_come(streams: Vec<TcpStream>, timeout: Duration) -> (usize, Vec<String>) {
    use std::io::{ErrorKind, Read};
    let deadline = Instant::now() + timeout;
    let mut open: Vec<(TcpStream, Vec<u8>)> = streams
        .into_iter()
        .map(|s| {
            s.set_nonblocking(true).unwrap();
            (s, Vec::new())
        })
        .collect();
    let mut ok = 0;
    let mut bad = Vec::new();
    let mut judge = |bytes: &[u8], how: &str| match Response::parse(bytes) {
        Ok(r) if how.is_empty() && r.status_line.starts_with("HTTP/1.1 200 ") => ok += 1,
        _ => bad.push(format!("{:?}{how}", String::from_utf8_lossy(bytes))),
    };
    let mut buf = [0u8; 4096];
    while !open.is_empty() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            for (_, bytes) in &open {
                judge(bytes, " (no EOF before the deadline)");
            }
            break;
        }
        let mut fds: Vec<libc::pollfd> = open
            .iter()
            .map(|(s, _)| libc::pollfd {
                fd: s.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            })
            .collect();
        let ms = left.as_millis().clamp(1, 1000) as libc::c_int;
        // SAFETY: `fds` is a valid array of `fds.len()` pollfds.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
        if n <= 0 {
            continue;
        }
        let mut done = Vec::new();
        for (i, fd) in fds.iter().enumerate() {
            if fd.revents == 0 {
                continue;
            }
            let (stream, bytes) = &mut open[i];
            loop {
                match stream.read(&mut buf) {
                    Ok(0) => {
                        done.push((i, ""));
                        break;
                    }
                    Ok(n) => bytes.extend_from_slice(&buf[..n]),
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(e) if e.kind() == ErrorKind::ConnectionReset => {
                        done.push((i, " (reset)"));
                        break;
                    }
                    Err(_) => {
                        done.push((i, " (read error)"));
                        break;
                    }
                }
            }
        }
        for (i, how) in done.into_iter().rev() {
            let (_stream, bytes) = open.swap_remove(i);
            judge(&bytes, how);
        }
    }
    (ok, bad)
}

/// The process `pid` stopped (SIGSTOP) until dropped (SIGCONT).
struct Stopped(u32);

impl Stopped {
    fn new(pid: u32) -> Stopped {
        signal(pid, libc::SIGSTOP);
        Stopped(pid)
    }
}

impl Drop for Stopped {
    fn drop(&mut self) {
        signal(self.0, libc::SIGCONT);
    }
}

/// 1000 connections opened at once on `--listen` (a crowd of pollers):
/// every one is answered 200, none waits for a SYN retransmit (the kernel
/// drops no connection attempt), and a poll in the middle of the burst is
/// answered within 200 ms.
///
/// The burst arrives while the server is off the CPU (stopped for at most
/// 100 ms, as a busy host may leave it): what absorbs a burst is the
/// kernel's listen queue, not how fast the loop happens to accept, so the
/// test does not depend on the race between this client and the loop. A
/// queue of 128 (std's) drops the SYNs past it, and their connections wait
/// for the retransmit a second later.
#[test]
fn listen_queue_takes_a_burst_of_1000_connections() {
    const CONNECTIONS: usize = 1000;
    const THREADS: usize = 10;
    raise_nofile(8192);
    in_private_network(|| {
        let dir = TempDir::new("fo-burst");
        let target = Target::start();
        let (server, addr) = listen(&dir, &["tcp", &target.addr.to_string()]);
        let queue = listen_queue(addr.port());
        // One poll first: the process is past its start-up.
        let ex = exchange(addr.port(), b"GET / HTTP/1.0\r\n\r\n", IO_TIMEOUT);
        assert_eq!(clean_response(&ex, "the first poll").status, 200);
        let overflows_before = tcp_ext("ListenOverflows");

        let stopped = Stopped::new(server.pid());
        let opened = Arc::new(AtomicUsize::new(0));
        let start = Instant::now();
        let workers: Vec<_> = (0..THREADS)
            .map(|_| {
                let opened = opened.clone();
                std::thread::spawn(move || {
                    let mut streams = Vec::new();
                    let mut slowest = Duration::ZERO;
                    for _ in 0..CONNECTIONS / THREADS {
                        let t = Instant::now();
                        let mut s = TcpStream::connect_timeout(&addr, IO_TIMEOUT)
                            .unwrap_or_else(|e| panic!("connecting to {addr}: {e}"));
                        slowest = slowest.max(t.elapsed());
                        opened.fetch_add(1, Ordering::SeqCst);
                        s.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
                        streams.push(s);
                    }
                    let all_open = start.elapsed();
                    let (ok, bad) = read_all_as_they_come(streams, IO_TIMEOUT);
                    (ok, slowest, all_open, bad)
                })
            })
            .collect();

        // A poller that arrives in the middle of the burst.
        let poller = {
            let opened = opened.clone();
            std::thread::spawn(move || {
                wait_until(Duration::from_secs(5), Duration::from_micros(200), || {
                    opened.load(Ordering::SeqCst) >= CONNECTIONS / 2
                });
                let poll_start = Instant::now();
                let poll = exchange(addr.port(), b"GET / HTTP/1.0\r\n\r\n", IO_TIMEOUT);
                (poll, poll_start, Instant::now())
            })
        };
        wait_until(
            Duration::from_millis(100),
            Duration::from_micros(200),
            || opened.load(Ordering::SeqCst) >= CONNECTIONS,
        );
        let opened_while_stopped = opened.load(Ordering::SeqCst);
        let stopped_for = start.elapsed();
        drop(stopped);
        let resumed = Instant::now();

        let (poll, poll_start, poll_end) = poller.join().expect("the mid-burst poller failed");
        // Counted from when the poll was made or the server resumed,
        // whichever came later: the time the test itself held the server
        // stopped is not the server's.
        let poll_took = poll_end.saturating_duration_since(poll_start.max(resumed));
        let mut ok = 0;
        let mut slowest = Duration::ZERO;
        let mut all_open = Duration::ZERO;
        let mut bad = Vec::new();
        for w in workers {
            let (n, s, open, b) = w.join().expect("a client thread failed");
            ok += n;
            slowest = slowest.max(s);
            all_open = all_open.max(open);
            bad.extend(b);
        }
        let overflows = tcp_ext("ListenOverflows") - overflows_before;
        let summary = format!(
            "listen queue {queue:?}; {opened_while_stopped} connections opened in the \
             {stopped_for:?} the server was stopped, all {CONNECTIONS} in {all_open:?}, \
             slowest connect {slowest:?}; mid-burst poll {poll_took:?}; \
             {overflows} listen queue overflows"
        );
        eprintln!("{summary}");
        assert_eq!(
            ok,
            CONNECTIONS,
            "{summary}; first failures: {:?}",
            &bad[..bad.len().min(3)]
        );
        let r = clean_response(&poll, "the mid-burst poll");
        assert_eq!(r.status, 200, "{r:?}");
        assert!(
            slowest < Duration::from_millis(900),
            "a connection waited {slowest:?} to be accepted (a dropped SYN is \
             retransmitted after 1 s): {summary}"
        );
        assert_eq!(overflows, 0, "the kernel dropped connections: {summary}");
        assert!(
            poll_took < Duration::from_millis(200),
            "the mid-burst poll took {poll_took:?}: {summary}"
        );
    });
}

/// `--backlog N` is taken, and is the queue the socket gets.
#[test]
fn backlog_option_sets_the_listen_queue() {
    in_private_network(|| {
        let dir = TempDir::new("fo-backlog");
        let (_server, addr) = listen(&dir, &["--backlog", "16", "exec", "--", "/bin/true"]);
        assert_eq!(listen_queue(addr.port()), Some(16));
        let ex = exchange(addr.port(), b"GET / HTTP/1.0\r\n\r\n", IO_TIMEOUT);
        assert_eq!(clean_response(&ex, "GET /").status, 200);
    });
}

// --- 5. Public reasons only --------------------------------------------------------------

/// A program that cannot start: the body says so without the path (it
/// goes to anyone who can connect); the log's detail names it.
#[test]
fn a_program_that_cannot_start_keeps_its_path_out_of_the_body() {
    let served = over_tcp(
        &["exec", "--", "/nonexistent/prog"],
        &[],
        b"GET / HTTP/1.0\r\n\r\n",
    );
    let r = clean_response(&served.exchange, "GET /");
    assert_eq!(
        (r.status, r.body_text().as_str()),
        (
            503,
            "unknown: check could not run: cannot start the program\n"
        ),
        "{r:?}\nstderr: {}",
        served.stderr
    );
    let line = log_line(&served.stderr);
    let detail = quoted_value(line, "detail")
        .unwrap_or_else(|| panic!("no detail=\"…\" in the log line {line:?}"));
    assert!(
        detail.contains("/nonexistent/prog"),
        "the detail does not name the program: {line:?}"
    );
    assert_eq!(served.code, Some(0), "{}", served.stderr);
}

// --- 6. The log's peer is the kernel's ---------------------------------------------------

/// A launcher's variable (xinetd's `REMOTE_HOST`) is logged as what the
/// launcher said; `peer=` is the address the kernel gives, which `--allow`
/// also judges.
#[test]
fn the_logged_peer_is_the_kernels_and_the_launchers_is_apart() {
    let served = over_tcp(
        &["exec", "--", "/bin/true"],
        &[("REMOTE_HOST", "10.9.9.9")],
        b"GET / HTTP/1.0\r\n\r\n",
    );
    let r = clean_response(&served.exchange, "GET /");
    assert_eq!(r.status, 200, "{r:?}");
    let line = log_line(&served.stderr);
    let fields: Vec<&str> = line.split_whitespace().collect();
    assert!(fields.contains(&"peer=127.0.0.1"), "{line:?}");
    assert!(fields.contains(&"launcher_peer=10.9.9.9"), "{line:?}");

    // The allowlist says 10.0.0.0/8, the launcher's variable says 10.9.9.9,
    // the kernel says 127.0.0.1: refused, and logged as the kernel says.
    let served = over_tcp(
        &["--allow", "10.0.0.0/8", "exec", "--", "/bin/true"],
        &[("REMOTE_HOST", "10.9.9.9")],
        b"GET / HTTP/1.0\r\n\r\n",
    );
    let r = clean_response(&served.exchange, "GET / from outside --allow");
    assert_eq!(r.status, 403, "{r:?}");
    let line = log_line(&served.stderr);
    let fields: Vec<&str> = line.split_whitespace().collect();
    assert!(fields.contains(&"peer=127.0.0.1"), "{line:?}");
    assert!(!fields.contains(&"peer=10.9.9.9"), "{line:?}");
    assert_eq!(served.code, Some(65), "{}", served.stderr);
}

// --- 7. the cache's trust: a service as nobody is warned ------------------------------

/// A cache or a cap trusts every program of the service's uid: run as
/// `nobody` (which other daemons share), `--check-config` says so; as a
/// user of its own, or without shared state, it says nothing.
#[test]
fn a_cache_run_as_nobody_is_warned_about() {
    let setpriv = require_program("setpriv");
    let dir = TempDir::new("failopen-nobody");
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let cached = config_file(
        &dir,
        "cached.toml",
        "[checks.a]\nkind = \"exec\"\ncommand = [\"/bin/true\"]\ncache-ttl = \"1s\"\n",
    );
    let plain = config_file(
        &dir,
        "plain.toml",
        "[checks.a]\nkind = \"exec\"\ncommand = [\"/bin/true\"]\n",
    );
    let check = |as_nobody: bool, config: &Path| {
        let mut cmd = if as_nobody {
            let mut c = Command::new(&setpriv);
            c.args(["--reuid=65534", "--regid=65534", "--clear-groups", BIN]);
            c
        } else {
            Command::new(BIN)
        };
        let out = cmd
            .args(["--config", &path_str(config), "--check-config"])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{out:?}");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let warning = "warning: running as nobody with a cache or cap: any program running as nobody can forge this service's cached verdicts";
    let stderr = check(true, &cached);
    assert!(stderr.contains(warning), "{stderr}");
    assert!(!check(false, &cached).contains("warning"));
    assert!(!check(true, &plain).contains("warning"));
}
