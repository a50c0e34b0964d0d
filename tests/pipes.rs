//! The built binary driven through pipes and socket pairs.
//!
//! Under inetd, stdin and stdout *are* the connection, so a pipe or a
//! socket pair stands in for the super-server exactly: these tests see the
//! bytes a client would, the exit code a super-server would, and what lands
//! on stderr.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use inetd_health_testkit::http::Response;
use inetd_health_testkit::procs::{output_with_input, stdout_of};
use inetd_health_testkit::tmp::TempDir;

/// The binary under test, as Cargo built it for this package's tests.
const BIN: &str = env!("CARGO_BIN_EXE_inetd-health");

fn cmd(args: &[&str]) -> Command {
    let mut c = Command::new(BIN);
    c.args(args)
        .env_remove("REMOTE_HOST")
        .env_remove("TCPREMOTEIP")
        .env_remove("REMOTE_ADDR");
    c
}

/// Runs with `request` on a pipe as stdin (closed after it).
fn over_pipes(args: &[&str], request: &[u8]) -> Output {
    over_pipes_env(args, request, &[])
}

fn over_pipes_env(args: &[&str], request: &[u8], env: &[(&str, &str)]) -> Output {
    let mut c = cmd(args);
    c.envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    child.stdin.take().unwrap().write_all(request).unwrap();
    child.wait_with_output().unwrap()
}

/// Starts the binary the way xinetd does: fd 0, 1 and 2 all the same
/// socket. Returns the client's end.
fn as_xinetd(args: &[&str]) -> (Child, UnixStream) {
    let (client, server) = UnixStream::pair().unwrap();
    let fd = OwnedFd::from(server);
    let child = cmd(args)
        .stdin(fd.try_clone().unwrap())
        .stdout(fd.try_clone().unwrap())
        .stderr(fd)
        .spawn()
        .unwrap();
    (child, client)
}

fn read_all(mut s: &UnixStream, limit: Duration) -> Vec<u8> {
    s.set_read_timeout(Some(limit)).unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).expect("read to end of stream");
    out
}

fn wait_exit(child: &mut Child, limit: Duration) -> i32 {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code().expect("exited, not killed");
        }
        assert!(start.elapsed() < limit, "still running after {limit:?}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn stderr_text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn healthy_exec_over_pipes_is_200_and_logged_to_stderr() {
    let out = over_pipes(
        &["exec", "--", "true"],
        b"GET /health HTTP/1.1\r\nHost: lb\r\n\r\n",
    );
    let r = Response::parse(&out.stdout).unwrap();
    assert_eq!(r.status_line, "HTTP/1.1 200 OK");
    r.assert_standard_headers();
    assert_eq!(r.body_text(), "healthy: exit status 0\n");
    assert_eq!(out.status.code(), Some(0));
    let log = stderr_text(&out);
    assert_eq!(log.lines().count(), 1, "{log}");
    assert!(log.starts_with("inetd-health: peer=- method=GET path=/health status=200 reason=\"exit status 0\" duration="), "{log}");
}

#[test]
fn failing_exec_is_503_and_still_exit_0() {
    let out = over_pipes(
        &["exec", "--", "sh", "-c", "exit 2"],
        b"GET / HTTP/1.0\r\n\r\n",
    );
    let r = Response::parse(&out.stdout).unwrap();
    assert_eq!(r.status_line, "HTTP/1.1 503 Service Unavailable");
    assert_eq!(r.body_text(), "unhealthy: exit status 2\n");
    assert_eq!(out.status.code(), Some(0));
}

/// The migration trap of issue 8: `mysqladmin ping`, `grep -q`, `false`
/// exit 1 on failure, which the Nagios convention would call a warning and
/// serve as 200.
#[test]
fn exit_1_is_down_by_default() {
    let req = b"GET / HTTP/1.0\r\n\r\n";
    for args in [
        &["exec", "--", "false"][..],
        &["exec", "--", "grep", "-q", "absent", "/dev/null"],
        &["exec", "--", "sh", "-c", "exit 1"],
    ] {
        let out = over_pipes(args, req);
        let r = Response::parse(&out.stdout).unwrap();
        assert_eq!(
            (r.status, r.body_text().as_str()),
            (503, "unhealthy: exit status 1\n"),
            "{args:?}"
        );
    }
}

#[test]
fn nagios_warning_is_up_unless_told_otherwise() {
    let req = b"GET / HTTP/1.0\r\n\r\n";
    let warn = [
        "exec",
        "--nagios",
        "--",
        "sh",
        "-c",
        "echo 'LOAD WARNING - 9.1|load1=9.1;5;10;0'; exit 1",
    ];
    let r = Response::parse(&over_pipes(&warn, req).stdout).unwrap();
    assert_eq!(
        (r.status, r.body_text().as_str()),
        (200, "warning: LOAD WARNING - 9.1\n")
    );
    let mut strict = vec!["--warning-is-down"];
    strict.extend_from_slice(&warn);
    let r = Response::parse(&over_pipes(&strict, req).stdout).unwrap();
    assert_eq!(
        (r.status, r.body_text().as_str()),
        (503, "warning: LOAD WARNING - 9.1\n")
    );
    // UNKNOWN fails closed, whatever the warning policy.
    let unknown = [
        "exec",
        "--nagios",
        "--",
        "sh",
        "-c",
        "echo 'UNKNOWN - no idea'; exit 3",
    ];
    let r = Response::parse(&over_pipes(&unknown, req).stdout).unwrap();
    assert_eq!(
        (r.status, r.body_text().as_str()),
        (503, "unknown: UNKNOWN - no idea\n")
    );
}

#[test]
fn check_output_only_behind_show_output_and_always_in_the_log() {
    let args = ["exec", "--", "sh", "-c", "echo 'OK - db password=s3cret'"];
    let out = over_pipes(&args, b"GET / HTTP/1.0\r\n\r\n");
    let r = Response::parse(&out.stdout).unwrap();
    assert!(!r.body_text().contains("s3cret"), "{r:?}");
    let log = stderr_text(&out);
    assert!(
        log.contains(" reason=\"exit status 0\" ")
            && log
                .trim_end()
                .ends_with(" detail=\"OK - db password=s3cret\""),
        "{log}"
    );
    let mut shown = vec!["--show-output"];
    shown.extend_from_slice(&args);
    let r = Response::parse(&over_pipes(&shown, b"GET / HTTP/1.0\r\n\r\n").stdout).unwrap();
    assert_eq!(
        r.body_text(),
        "healthy: exit status 0\nOK - db password=s3cret\n"
    );
}

#[test]
fn tcp_check_up_and_down() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let out = over_pipes(&["tcp", &addr], b"GET / HTTP/1.0\r\n\r\n");
    let r = Response::parse(&out.stdout).unwrap();
    assert_eq!(r.body_text(), format!("healthy: connected to {addr}\n"));
    drop(listener);
    let out = over_pipes(&["tcp", &addr], b"GET / HTTP/1.0\r\n\r\n");
    let r = Response::parse(&out.stdout).unwrap();
    assert_eq!(r.status, 503);
    assert_eq!(
        r.body_text(),
        format!("unhealthy: {addr}: connection refused\n")
    );
}

/// Over pipes the kernel knows no peer: `peer=-`, and what the launcher's
/// variable says is logged as the launcher's, never as the peer.
#[test]
fn the_super_servers_peer_is_logged_as_the_launchers() {
    let req = b"GET / HTTP/1.0\r\n\r\n";
    for (var, value) in [
        ("REMOTE_HOST", "192.0.2.7"),
        ("TCPREMOTEIP", "192.0.2.8"),
        ("REMOTE_ADDR", "2001:db8::9"),
    ] {
        let out = over_pipes_env(&["exec", "--", "true"], req, &[(var, value)]);
        assert!(
            stderr_text(&out).starts_with(&format!("inetd-health: peer=- launcher_peer={value} ")),
            "{var}: {}",
            stderr_text(&out)
        );
    }
}

#[test]
fn peer_from_getpeername_when_no_environment() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().unwrap();
    let fd = OwnedFd::from(server);
    let child = cmd(&["exec", "--", "true"])
        .stdin(fd.try_clone().unwrap())
        .stdout(fd)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    client.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
    let mut got = Vec::new();
    client.read_to_end(&mut got).unwrap();
    assert_eq!(Response::parse(&got).unwrap().status, 200);
    let out = child.wait_with_output().unwrap();
    assert!(
        stderr_text(&out).starts_with("inetd-health: peer=127.0.0.1 "),
        "{}",
        stderr_text(&out)
    );
}

#[test]
fn under_xinetd_nothing_but_the_response_reaches_the_client() {
    let (mut child, client) = as_xinetd(&["exec", "--", "sh", "-c", "echo noise >&2; exit 0"]);
    (&client)
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let got = read_all(&client, Duration::from_secs(5));
    // Exactly one response: the log line went to syslog, the check's
    // stderr to its pipe.
    let r = Response::parse(&got).unwrap();
    assert_eq!(r.body_text(), "healthy: exit status 0\n");
    drop(client);
    assert_eq!(wait_exit(&mut child, Duration::from_secs(3)), 0);
}

#[test]
fn end_of_response_arrives_before_the_process_exits() {
    // The client keeps its side open: it still sees end of stream at once
    // (the write side was shut down), not when the drain gives up.
    let (mut child, client) = as_xinetd(&["exec", "--", "true"]);
    let start = Instant::now();
    (&client)
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let got = read_all(&client, Duration::from_secs(5));
    let took = start.elapsed();
    assert_eq!(Response::parse(&got).unwrap().status, 200);
    assert!(took < Duration::from_millis(400), "{took:?}");
    assert!(
        child.try_wait().unwrap().is_none(),
        "should still be draining"
    );
    // ... and it gives up draining by itself.
    assert_eq!(wait_exit(&mut child, Duration::from_secs(2)), 0);
}

#[test]
fn late_bytes_are_drained_not_reset() {
    let (mut child, client) = as_xinetd(&["exec", "--", "true"]);
    (&client)
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n")
        .unwrap();
    std::thread::sleep(Duration::from_millis(50));
    (&client)
        .write_all(b"0123456789GET / HTTP/1.1\r\n\r\n")
        .unwrap();
    let got = read_all(&client, Duration::from_secs(5));
    assert_eq!(Response::parse(&got).unwrap().status, 200);
    client.shutdown(Shutdown::Write).unwrap();
    assert_eq!(wait_exit(&mut child, Duration::from_secs(2)), 0);
}

#[test]
fn silent_client_runs_no_check_and_exits_0() {
    let dir = TempDir::new("silent");
    let marker = dir.join("ran");
    let script = format!("touch {}", marker.display());
    let (mut child, client) = as_xinetd(&["exec", "--", "sh", "-c", &script]);
    client.shutdown(Shutdown::Write).unwrap();
    let got = read_all(&client, Duration::from_secs(5));
    assert_eq!(got, b"");
    assert_eq!(wait_exit(&mut child, Duration::from_secs(2)), 0);
    assert!(
        !marker.exists(),
        "the check ran for a client that sent nothing"
    );
}

#[test]
fn slow_client_gets_408_at_the_read_deadline() {
    let (mut child, client) = as_xinetd(&["--read-timeout", "300ms", "exec", "--", "true"]);
    let start = Instant::now();
    (&client).write_all(b"GET / HTTP/1.1\r\n").unwrap();
    let got = read_all(&client, Duration::from_secs(5));
    let took = start.elapsed();
    let r = Response::parse(&got).unwrap();
    assert_eq!(r.status_line, "HTTP/1.1 408 Request Timeout");
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_millis(1000),
        "{took:?}"
    );
    drop(client);
    assert_eq!(wait_exit(&mut child, Duration::from_secs(2)), 65);
}

#[test]
fn bad_requests_get_their_status_and_exit_65() {
    let big = format!("GET / HTTP/1.1\r\nX-Pad: {}\r\n\r\n", "a".repeat(9000));
    for (request, status) in [
        (
            b"\x01\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n".as_slice(),
            400,
        ),
        (b"GET / HTTP/1.1\r\nHost: x", 400),
        (big.as_bytes(), 431),
        (b"POST / HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi", 405),
    ] {
        let out = over_pipes(&["exec", "--", "true"], request);
        let r = Response::parse(&out.stdout).unwrap();
        assert_eq!(r.status, status, "{r:?}");
        r.assert_standard_headers();
        assert_eq!(out.status.code(), Some(65));
        assert!(
            stderr_text(&out).contains(&format!("status={status} ")),
            "{}",
            stderr_text(&out)
        );
    }
}

/// An HTTPS client on a plaintext service: a TLS alert (handshake_failure),
/// no HTTP it could not read, exit 65, and the log says what it was.
#[test]
fn a_tls_handshake_gets_an_alert_and_exit_65() {
    let out = over_pipes(
        &["exec", "--", "true"],
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",
    );
    assert_eq!(out.stdout, [0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28]);
    assert_eq!(out.status.code(), Some(65));
    let log = stderr_text(&out);
    assert!(
        log.contains("reason=\"TLS handshake on a plaintext port"),
        "{log}"
    );
    assert!(log.contains(" status=- "), "{log}");
}

#[test]
fn hung_check_is_503_at_the_deadline() {
    let start = Instant::now();
    let out = over_pipes(
        &["--timeout", "300ms", "exec", "--", "sleep", "10"],
        b"GET / HTTP/1.0\r\n\r\n",
    );
    let took = start.elapsed();
    let r = Response::parse(&out.stdout).unwrap();
    assert_eq!(r.status, 503);
    assert!(
        r.body_text().starts_with("unhealthy: timed out after "),
        "{r:?}"
    );
    assert!(took < Duration::from_secs(2), "{took:?}");
}

#[test]
fn once_prints_the_outcome_with_nagios_codes() {
    for (args, code, start) in [
        (
            vec!["--once", "exec", "--", "true"],
            0,
            "OK: exit status 0 (",
        ),
        (
            vec!["--once", "exec", "--", "false"],
            2,
            "CRITICAL: exit status 1 (",
        ),
        (
            vec![
                "--once",
                "exec",
                "--nagios",
                "--",
                "sh",
                "-c",
                "echo 'W - x|a=1s;2'; exit 1",
            ],
            1,
            "WARNING: W - x (",
        ),
        (
            vec!["--once", "exec", "--", "sh", "-c", "exit 2"],
            2,
            "CRITICAL: exit status 2 (",
        ),
        (
            vec![
                "--once",
                "exec",
                "--nagios",
                "--",
                "sh",
                "-c",
                "echo U; exit 3",
            ],
            3,
            "UNKNOWN: U (",
        ),
        (
            vec![
                "--once",
                "--disable-file",
                "/etc/passwd/x",
                "exec",
                "--",
                "true",
            ],
            3,
            "UNKNOWN: cannot check the disable file (",
        ),
        (
            vec!["--once", "exec", "--", "/nonexistent/check"],
            3,
            "UNKNOWN: check could not run: cannot start the program (",
        ),
    ] {
        let out = cmd(&args).stdin(Stdio::null()).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.starts_with(start), "{args:?}: {text}");
        assert_eq!(out.status.code(), Some(code), "{args:?}");
        // Where the checker could not decide, the operator's terminal gets
        // the detail (which file, which program, the system's reason).
        if code == 3 && args.contains(&"true") {
            assert!(
                text.contains("disable file /etc/passwd/x: not a directory\n"),
                "{text}"
            );
        }
        if args.contains(&"/nonexistent/check") {
            assert!(
                text.contains("cannot start /nonexistent/check: no such file or directory"),
                "{text}"
            );
        }
    }
    // Performance data is printed after a `|`, as plugins print it.
    let out = cmd(&[
        "--once",
        "exec",
        "--nagios",
        "--",
        "sh",
        "-c",
        "echo 'OK - fine|'\\''a b'\\''=1.5s;2;3;0 x=7'",
    ])
    .stdin(Stdio::null())
    .output()
    .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("OK: OK - fine ("), "{text}");
    assert!(text.ends_with(") | 'a b'=1.5s;2;3;0 x=7\n"), "{text}");
}

#[test]
fn bad_usage_is_64_with_a_message() {
    for args in [
        vec!["exec"],
        vec!["tcp", "no-port"],
        vec!["--timeout", "soon", "exec", "true"],
        vec!["frobnicate"],
    ] {
        let out = cmd(&args).stdin(Stdio::null()).output().unwrap();
        assert_eq!(out.status.code(), Some(64), "{args:?}");
        assert!(!out.stderr.is_empty(), "{args:?}");
    }
    let help = cmd(&["--help"]).output().unwrap();
    assert_eq!(help.status.code(), Some(0));
    let help = String::from_utf8_lossy(&help.stdout);
    for code in ["64  bad usage", "65  bad client", "71  system failure"] {
        assert!(help.contains(code), "{help}");
    }
}

#[test]
fn bad_usage_under_xinetd_answers_500_not_a_usage_text() {
    let (mut child, client) = as_xinetd(&["--timeout", "soon", "exec", "--", "true"]);
    (&client).write_all(b"OPTIONS / HTTP/1.0\r\n\r\n").unwrap();
    let got = read_all(&client, Duration::from_secs(5));
    let r = Response::parse(&got).unwrap();
    assert_eq!(r.status_line, "HTTP/1.1 500 Internal Server Error");
    assert_eq!(
        r.body_text(),
        "inetd-health is misconfigured: see the system log\n"
    );
    drop(client);
    assert_eq!(wait_exit(&mut child, Duration::from_secs(2)), 64);
}

#[test]
fn listen_serves_concurrent_clients_with_the_same_code() {
    let mut child = cmd(&[
        "--listen",
        "127.0.0.1:0",
        "--max-connections",
        "4",
        "exec",
        "--",
        "true",
    ])
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let _guard = KillOnDrop(child.id());
    let mut stderr = child.stderr.take().unwrap();
    let mut first = Vec::new();
    let mut byte = [0u8];
    while !first.ends_with(b"\n") && first.len() < 200 {
        assert_eq!(stderr.read(&mut byte).unwrap(), 1, "listener exited");
        first.push(byte[0]);
    }
    let first = String::from_utf8(first).unwrap();
    let addr = first
        .trim()
        .strip_prefix("inetd-health: listening on ")
        .expect(&first)
        .to_owned();
    let clients: Vec<_> = (0..12)
        .map(|i| {
            let addr = addr.clone();
            std::thread::spawn(move || {
                let mut s = TcpStream::connect(&addr).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                let req = if i % 2 == 0 {
                    "GET / HTTP/1.1\r\nHost: x\r\n\r\n"
                } else {
                    "OPTIONS / HTTP/1.0\r\n\r\n"
                };
                s.write_all(req.as_bytes()).unwrap();
                let mut got = Vec::new();
                s.read_to_end(&mut got).unwrap();
                Response::parse(&got).unwrap()
            })
        })
        .collect();
    for c in clients {
        let r = c.join().unwrap();
        assert_eq!(r.body_text(), "healthy: exit status 0\n");
        r.assert_standard_headers();
    }
    assert!(child.try_wait().unwrap().is_none(), "listener died");
}

#[test]
fn listen_on_a_taken_address_is_a_system_failure() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = cmd(&["--listen", &addr, "exec", "--", "true"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(71));
    assert!(
        stderr_text(&out).contains(&format!("serving on {addr}")),
        "{}",
        stderr_text(&out)
    );
}

struct KillOnDrop(u32);
impl Drop for KillOnDrop {
    fn drop(&mut self) {
        // SAFETY: signalling our own child by pid.
        unsafe { libc::kill(self.0 as libc::pid_t, libc::SIGKILL) };
    }
}

/// `cmd` with descriptors `fds` closed in the child, as a broken launcher
/// (or `prog <&- >&-` in a shell) starts it.
fn with_closed(args: &[&str], fds: &'static [i32]) -> Command {
    use std::os::unix::process::CommandExt;
    let mut c = cmd(args);
    // SAFETY: close(2) is async-signal-safe; nothing else runs in the
    // child between fork and exec.
    unsafe {
        c.pre_exec(move || {
            for &fd in fds {
                libc::close(fd);
            }
            Ok(())
        });
    }
    c
}

#[test]
fn no_stdin_or_stdout_is_a_system_failure_71() {
    for closed in [&[0][..], &[1], &[0, 1]] {
        let mut c = with_closed(&["exec", "--", "true"], closed);
        if !closed.contains(&0) {
            c.stdin(Stdio::null());
        }
        if !closed.contains(&1) {
            c.stdout(Stdio::null());
        }
        let out = c.stderr(Stdio::piped()).output().unwrap();
        assert_eq!(out.status.code(), Some(71), "fds {closed:?} closed");
        assert!(
            stderr_text(&out).contains("no usable stdin/stdout"),
            "{}",
            stderr_text(&out)
        );
    }
}

/// With fd 2 closed, the first descriptor opened later (the check's output
/// pipe, its pidfd) would become fd 2 and take the log line; it is
/// reopened on /dev/null at start instead.
#[test]
fn a_closed_stderr_is_reopened_on_dev_null() {
    let out = output_with_input(
        &mut with_closed(
            &[
                "--show-output",
                "exec",
                "--",
                "sh",
                "-c",
                "readlink /proc/$PPID/fd/2",
            ],
            &[2],
        ),
        b"GET / HTTP/1.0\r\n\r\n",
    );
    let r = Response::parse(&out.stdout).unwrap();
    assert_eq!(r.body_text(), "healthy: exit status 0\n/dev/null\n");
    assert_eq!(out.status.code(), Some(0));
}

/// The man page and completions come from the clap definitions: the
/// generator writes them, `man` renders the page, and both carry what the
/// binary accepts.
#[test]
fn man_page_and_completions_are_generated_from_the_definitions() {
    let dir = TempDir::new("docs");
    stdout_of(Command::new(env!("CARGO_BIN_EXE_inetd-health-docs")).arg(dir.path()));
    let page = dir.join("man/inetd-health.1");
    // No hyphenation, no justification: words stay whole, one space apart.
    let rendered = Command::new("man")
        .args(["--nh", "--nj", "-l"])
        .arg(&page)
        .env("MANWIDTH", "100")
        .env("MANPAGER", "cat")
        .output()
        .expect("man (man-db) renders the page");
    assert!(rendered.status.success());
    let text = String::from_utf8_lossy(&rendered.stdout);
    for want in [
        "inetd-health - Answer HTTP health checks",
        "--config <FILE>",
        "--agent",
        "64  bad usage",
        "Config file (--config FILE, TOML",
        "inetd-health-exec(1)",
    ] {
        assert!(text.contains(want), "{want:?} not in the man page:\n{text}");
    }
    assert!(dir.join("man/inetd-health-galera.1").exists());
    let bash = std::fs::read_to_string(dir.join("completions/inetd-health.bash")).unwrap();
    assert!(
        bash.contains("--config") && bash.contains("--max-concurrent"),
        "{bash}"
    );
    assert!(dir.join("completions/_inetd-health").exists());
    assert!(dir.join("completions/inetd-health.fish").exists());
}
