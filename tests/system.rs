//! System tests: the built binary under a real xinetd and a real HAProxy.
//!
//! Every test starts its own xinetd (and HAProxy) on free loopback ports with
//! its own temporary directory, and stops them by pid when done, so tests run
//! in parallel. A missing xinetd or haproxy fails the test (run
//! `scripts/test`, which installs them); nothing is skipped.

use std::path::Path;
use std::time::Duration;

use inetd_health_testkit::client::{
    exchange, exchange_half_closed, exchange_in_two_writes, free_port, Exchange,
};
use inetd_health_testkit::haproxy::{Haproxy, ServerState};
use inetd_health_testkit::http::Response;
use inetd_health_testkit::netns::{in_private_network, Aborts};
use inetd_health_testkit::procs::{processes_matching, unique_digits, wait_until};
use inetd_health_testkit::tmp::TempDir;
use inetd_health_testkit::xinetd::Xinetd;

/// The binary under test, as Cargo built it for this package's tests.
const BIN: &str = env!("CARGO_BIN_EXE_inetd-health");

/// Bound on any one exchange that is expected to finish promptly.
const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// Bound on waiting for xinetd to reap servers or for processes to go.
const REAP_TIMEOUT: Duration = Duration::from_secs(5);
/// Bound on waiting for HAProxy to settle on a server state (checks every 200 ms).
const HAPROXY_TIMEOUT: Duration = Duration::from_secs(8);

const GET: &[u8] = b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n";

/// Parses exactly one response (nothing before it, nothing after its body)
/// from a connection that closed cleanly.
fn one_response(ex: &Exchange) -> Response {
    ex.assert_clean_close();
    Response::parse(&ex.bytes).unwrap_or_else(|e| panic!("{e}"))
}

/// Like [`one_response`], for a response to HEAD.
fn one_head_response(ex: &Exchange) -> Response {
    ex.assert_clean_close();
    Response::parse_head(&ex.bytes).unwrap_or_else(|e| panic!("{e}"))
}

fn assert_healthy(response: &Response) {
    assert_eq!(response.status_line, "HTTP/1.1 200 OK", "{response:?}");
    response.assert_standard_headers();
    assert!(
        response.body_text().starts_with("healthy: ") && response.body_text().ends_with('\n'),
        "body of {response:?}"
    );
}

fn assert_unhealthy(response: &Response) {
    assert_eq!(
        response.status_line, "HTTP/1.1 503 Service Unavailable",
        "{response:?}"
    );
    response.assert_standard_headers();
    assert!(
        response.body_text().starts_with("unhealthy: ") && response.body_text().ends_with('\n'),
        "body of {response:?}"
    );
}

/// Starts xinetd serving `inetd-health OPTIONS... exec -- <script>`, the
/// script being `body` in a `#!/bin/sh` file (xinetd cannot quote
/// `server_args`, so shell code must live in a file).
fn xinetd_with_script(options: &[&str], body: &str) -> Xinetd {
    let dir = TempDir::new("xinetd");
    let script = dir.script("check.sh", body);
    let script = script.to_str().expect("utf-8 temp path").to_string();
    let mut args = options.to_vec();
    args.extend(["exec", "--", script.as_str()]);
    Xinetd::start_with(dir, BIN, &args)
}

/// Waits for `n` servers to have exited and asserts their exit statuses.
fn assert_exit_statuses(xinetd: &Xinetd, want: &[i32]) {
    let got = xinetd.wait_for_exits(want.len(), REAP_TIMEOUT);
    assert_eq!(got, want, "exit statuses of the servers xinetd ran");
}

// --- 1. No connection reset --------------------------------------------------

/// Runs `body` in a network namespace of its own and asserts that the
/// kernel aborted no connection there: none closed with unread data
/// (TCPAbortOnClose, the shell scripts' reset) or reset after close
/// (TCPAbortOnData). A client that got its whole response before a
/// close-without-drain reset would not notice; these counters do.
fn without_aborts(body: impl FnOnce() + Send) {
    in_private_network(|| {
        let before = Aborts::now();
        body();
        let after = Aborts::now();
        assert_eq!(after, before, "the kernel aborted connections");
    });
}

#[test]
fn no_reset_over_300_sequential_requests() {
    without_aborts(no_reset_over_300_sequential_requests_body);
}

fn no_reset_over_300_sequential_requests_body() {
    let xinetd = Xinetd::start(BIN, &["exec", "--", "/bin/true"]);
    let mut resets = 0;
    for i in 0..300 {
        let ex = exchange(xinetd.port(), GET, IO_TIMEOUT);
        if ex.reset {
            resets += 1;
            continue;
        }
        let response = one_response(&ex);
        assert_healthy(&response);
        assert_eq!(
            response.content_length(),
            Some(response.body.len()),
            "request {i}"
        );
    }
    assert_eq!(resets, 0, "connections reset out of 300");
    assert_exit_statuses(&xinetd, &[0; 300]);
}

/// The classic bug of shell-script checks under xinetd: the server writes
/// its response and exits without reading what the client sent, the kernel
/// answers the unread bytes with RST, and the client (HAProxy) loses the
/// response. Here the client sends a second, pipelined request with the first.
#[test]
fn shell_script_reset_on_unread_request() {
    without_aborts(|| {
        let xinetd = Xinetd::start(BIN, &["exec", "--", "/bin/true"]);
        let pipelined = [GET, GET].concat();
        for _ in 0..50 {
            let ex = exchange(xinetd.port(), &pipelined, IO_TIMEOUT);
            assert_healthy(&one_response(&ex));
        }
        assert_exit_statuses(&xinetd, &[0; 50]);
    });
}

/// Same bug, with bytes that arrive after the server has read the head,
/// while the check runs (as a pipelining or impatient client sends them):
/// no single read of the head could have taken them in.
#[test]
fn reset_on_request_bytes_arriving_during_the_check() {
    without_aborts(|| {
        let xinetd = xinetd_with_script(&[], "sleep 0.3");
        for _ in 0..5 {
            let ex = exchange_in_two_writes(
                xinetd.port(),
                GET,
                Duration::from_millis(100),
                GET,
                IO_TIMEOUT,
            );
            assert_healthy(&one_response(&ex));
        }
        assert_exit_statuses(&xinetd, &[0; 5]);
    });
}

/// Same bug, with a request body the server has no use for, larger than
/// any read buffer sized for an 8 KiB head.
#[test]
fn reset_on_unread_request_body() {
    without_aborts(|| {
        let xinetd = Xinetd::start(BIN, &["exec", "--", "/bin/true"]);
        let body = vec![b'x'; 16 * 1024];
        let request = [
            b"GET /health HTTP/1.1\r\nHost: localhost\r\nContent-Length: 16384\r\n\r\n".as_slice(),
            &body,
        ]
        .concat();
        for _ in 0..50 {
            let ex = exchange(xinetd.port(), &request, IO_TIMEOUT);
            assert_healthy(&one_response(&ex));
        }
        assert_exit_statuses(&xinetd, &[0; 50]);
    });
}

// --- 2. HEAD ----------------------------------------------------------------

#[test]
fn head_gets_headers_only() {
    let xinetd = Xinetd::start(BIN, &["exec", "--", "/bin/true"]);
    let ex = exchange(
        xinetd.port(),
        b"HEAD / HTTP/1.1\r\nHost: localhost\r\n\r\n",
        IO_TIMEOUT,
    );
    let response = one_head_response(&ex);
    assert_eq!(response.status_line, "HTTP/1.1 200 OK", "{response:?}");
    response.assert_standard_headers();
    assert!(
        response.content_length().unwrap_or(0) > 0,
        "HEAD should announce the length of the body GET would get: {response:?}"
    );
    assert!(response.body.is_empty());
}

#[test]
fn head_of_failing_check_gets_503_headers_only() {
    let xinetd = xinetd_with_script(&[], "exit 2");
    let ex = exchange(xinetd.port(), b"HEAD /health HTTP/1.0\r\n\r\n", IO_TIMEOUT);
    let response = one_head_response(&ex);
    assert_eq!(
        response.status_line, "HTTP/1.1 503 Service Unavailable",
        "{response:?}"
    );
    response.assert_standard_headers();
    assert!(response.content_length().unwrap_or(0) > 0, "{response:?}");
}

// --- 3. HAProxy's default check request, and other accepted requests --------

#[test]
fn options_http10_without_host_is_200() {
    let xinetd = Xinetd::start(BIN, &["exec", "--", "/bin/true"]);
    let ex = exchange(xinetd.port(), b"OPTIONS / HTTP/1.0\r\n\r\n", IO_TIMEOUT);
    assert_healthy(&one_response(&ex));
    assert_exit_statuses(&xinetd, &[0]);
}

#[test]
fn get_any_path_http10_or_11_with_or_without_host_is_200() {
    let xinetd = Xinetd::start(BIN, &["exec", "--", "/bin/true"]);
    let requests: [&[u8]; 4] = [
        b"GET /health HTTP/1.0\r\n\r\n",
        b"GET /some/deep/path?x=1&y=2 HTTP/1.1\r\nHost: example.test\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nUser-Agent: test\r\nAccept: */*\r\nConnection: keep-alive\r\n\r\n",
        b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n",
    ];
    for request in requests {
        let ex = exchange(xinetd.port(), request, IO_TIMEOUT);
        let response = one_response(&ex);
        assert_eq!(
            response.status_line,
            "HTTP/1.1 200 OK",
            "request {:?} got {response:?}",
            String::from_utf8_lossy(request)
        );
    }
    assert_exit_statuses(&xinetd, &[0; 4]);
}

// --- 4. Bad requests ----------------------------------------------------------

#[test]
fn garbage_is_400() {
    let xinetd = Xinetd::start(BIN, &["exec", "--", "/bin/true"]);
    let ex = exchange(
        xinetd.port(),
        b"this is not http at all\r\n\r\n",
        IO_TIMEOUT,
    );
    let response = one_response(&ex);
    assert_eq!(
        response.status_line, "HTTP/1.1 400 Bad Request",
        "{response:?}"
    );
    response.assert_standard_headers();
    assert_exit_statuses(&xinetd, &[65]);
}

/// A TLS client talking to the plain-HTTP port: a ClientHello, with no
/// CRLFCRLF ever coming. Its first byte says what it is, so the answer is
/// a TLS alert at once (which a TLS client can read, unlike an HTTP 400),
/// not a 408 at the deadline.
#[test]
fn tls_client_hello_gets_an_alert_without_waiting_for_the_read_deadline() {
    let xinetd = Xinetd::start(BIN, &["--read-timeout", "5s", "exec", "--", "/bin/true"]);
    let hello = [
        0x16, 0x03, 0x01, 0x00, 0x2f, 0x01, 0x00, 0x00, 0x2b, 0x03, 0x03, 0x00, 0xff, 0x10, 0x80,
    ];
    let ex = exchange(xinetd.port(), &hello, IO_TIMEOUT);
    assert!(!ex.reset, "{ex:?}");
    assert_eq!(
        ex.bytes,
        [0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28],
        "{ex:?}"
    );
    assert!(
        ex.elapsed < Duration::from_secs(3),
        "took {:?}: the server waited for more of a request that was already invalid",
        ex.elapsed
    );
    assert_exit_statuses(&xinetd, &[65]);
}

#[test]
fn head_over_8_kib_is_431() {
    let xinetd = Xinetd::start(BIN, &["exec", "--", "/bin/true"]);
    let request = format!(
        "GET / HTTP/1.1\r\nHost: localhost\r\nX-Padding: {}\r\n\r\n",
        "a".repeat(9 * 1024)
    );
    let ex = exchange(xinetd.port(), request.as_bytes(), IO_TIMEOUT);
    let response = one_response(&ex);
    assert_eq!(
        response.status_line, "HTTP/1.1 431 Request Header Fields Too Large",
        "{response:?}"
    );
    response.assert_standard_headers();
    assert_exit_statuses(&xinetd, &[65]);
}

#[test]
fn more_than_64_headers_is_431() {
    let xinetd = Xinetd::start(BIN, &["exec", "--", "/bin/true"]);
    let mut request = String::from("GET / HTTP/1.1\r\nHost: localhost\r\n");
    for i in 0..70 {
        request.push_str(&format!("X-H{i}: {i}\r\n"));
    }
    request.push_str("\r\n");
    assert!(
        request.len() < 4096,
        "stays well under the 8 KiB head limit"
    );
    let ex = exchange(xinetd.port(), request.as_bytes(), IO_TIMEOUT);
    let response = one_response(&ex);
    assert_eq!(
        response.status_line, "HTTP/1.1 431 Request Header Fields Too Large",
        "{response:?}"
    );
    assert_exit_statuses(&xinetd, &[65]);
}

#[test]
fn delete_is_405_with_allow() {
    let xinetd = Xinetd::start(BIN, &["exec", "--", "/bin/true"]);
    for request in [
        b"DELETE / HTTP/1.1\r\nHost: localhost\r\n\r\n".as_slice(),
        b"POST /health HTTP/1.0\r\nContent-Length: 0\r\n\r\n".as_slice(),
    ] {
        let ex = exchange(xinetd.port(), request, IO_TIMEOUT);
        let response = one_response(&ex);
        assert_eq!(
            response.status_line, "HTTP/1.1 405 Method Not Allowed",
            "{response:?}"
        );
        response.assert_standard_headers();
        assert_eq!(
            response.header("Allow"),
            Some("GET, HEAD, OPTIONS"),
            "{response:?}"
        );
    }
    assert_exit_statuses(&xinetd, &[65, 65]);
}

// --- 5. Silent client ---------------------------------------------------------

#[test]
fn silent_client_gets_408_after_read_timeout() {
    let xinetd = Xinetd::start(BIN, &["--read-timeout", "1s", "exec", "--", "/bin/true"]);
    let ex = exchange(xinetd.port(), b"", IO_TIMEOUT);
    let response = one_response(&ex);
    assert_eq!(
        response.status_line, "HTTP/1.1 408 Request Timeout",
        "{response:?}"
    );
    response.assert_standard_headers();
    assert!(
        ex.elapsed >= Duration::from_millis(950) && ex.elapsed <= Duration::from_millis(2500),
        "closed after {:?}; want about 1 s (the read deadline)",
        ex.elapsed
    );
    assert_exit_statuses(&xinetd, &[65]);
}

/// A client that sends part of a head and then stalls is also cut off at the
/// read deadline; the deadline is for the whole head, not per read.
#[test]
fn slow_partial_head_gets_408_at_the_read_deadline() {
    let xinetd = Xinetd::start(BIN, &["--read-timeout", "1s", "exec", "--", "/bin/true"]);
    let ex = exchange(xinetd.port(), b"GET / HTTP/1.1\r\nHost: x\r\n", IO_TIMEOUT);
    let response = one_response(&ex);
    assert_eq!(
        response.status_line, "HTTP/1.1 408 Request Timeout",
        "{response:?}"
    );
    assert!(
        ex.elapsed >= Duration::from_millis(950) && ex.elapsed <= Duration::from_millis(2500),
        "closed after {:?}; want about 1 s",
        ex.elapsed
    );
}

/// A client that sends a byte every 0.4 s never lets a per-read idle timer
/// fire; the read deadline is for the whole head, so it still gets its 408
/// at the deadline.
#[test]
fn byte_every_400ms_gets_408_at_the_whole_head_deadline() {
    use std::io::{Read, Write};
    use std::sync::atomic::{AtomicBool, Ordering};
    let xinetd = Xinetd::start(BIN, &["--read-timeout", "1s", "exec", "--", "/bin/true"]);
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", xinetd.port())).expect("connect");
    stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    let mut writer = stream.try_clone().unwrap();
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let start = std::time::Instant::now();
    let dripping = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            // A head that never ends: one byte at a time, well within any
            // per-read timeout.
            let head = b"GET / HTTP/1.1\r\nHost: x\r\nX-Pad: "
                .iter()
                .chain(std::iter::repeat(&b'a'));
            for &byte in head.take(25) {
                if stop.load(Ordering::SeqCst) || writer.write_all(&[byte]).is_err() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(400));
            }
        })
    };
    let mut first = [0u8; 1];
    let got = stream.read(&mut first);
    let took = start.elapsed();
    stop.store(true, Ordering::SeqCst);
    let mut rest = Vec::new();
    let _ = stream.read_to_end(&mut rest);
    dripping.join().unwrap();
    assert_eq!(got.ok(), Some(1), "no response");
    let response = Response::parse(&[&first[..], &rest].concat()).expect("one response");
    assert_eq!(response.status_line, "HTTP/1.1 408 Request Timeout");
    assert!(
        took >= Duration::from_millis(950) && took < Duration::from_millis(1400),
        "answered after {took:?}; want the 1 s deadline, not a per-read timer"
    );
}

// --- 6. Client that closes without a byte ------------------------------------

#[test]
fn client_closing_without_a_byte_gets_nothing_and_leaves_no_process() {
    let dir = TempDir::new("xinetd");
    let ran = dir.join("check-ran");
    let check = dir.script("check.sh", &format!("touch {}", ran.display()));
    let check = check.to_str().expect("utf-8 path").to_string();
    let xinetd = Xinetd::start_with(dir, BIN, &["exec", "--", &check]);
    for _ in 0..20 {
        let ex = exchange_half_closed(xinetd.port(), b"", IO_TIMEOUT);
        ex.assert_clean_close();
        assert!(ex.bytes.is_empty(), "got {:?}", ex.text());
    }
    assert_exit_statuses(&xinetd, &[0; 20]);
    let left = xinetd.wait_for_no_children(REAP_TIMEOUT);
    assert!(left.is_empty(), "processes left under xinetd: {left:?}");
    assert!(
        !ran.exists(),
        "the check ran for a client that sent no request"
    );
}

// --- 7. Hung check --------------------------------------------------------------

#[test]
fn hung_check_is_503_at_the_deadline_and_leaves_no_process() {
    let marker = unique_digits();
    let dir = TempDir::new("xinetd");
    // xinetd cannot quote server_args, so the shell code lives in a script.
    // Both sleeps carry the marker in their command lines; the first is a
    // background grandchild that only a process-group kill reaches.
    let hang = dir.script(
        "hang.sh",
        &format!("sleep 61.{marker} &\nexec sleep 62.{marker}"),
    );
    let hang = hang.to_str().expect("utf-8 path").to_string();
    let xinetd = Xinetd::start_with(
        dir,
        BIN,
        &["--timeout", "1s", "exec", "--", "/bin/sh", &hang],
    );
    let ex = exchange(xinetd.port(), GET, IO_TIMEOUT);
    let response = one_response(&ex);
    assert_unhealthy(&response);
    assert!(
        response.body_text().contains("timed out"),
        "body should say the check timed out: {response:?}"
    );
    assert!(
        ex.elapsed >= Duration::from_millis(950) && ex.elapsed <= Duration::from_millis(2250),
        "503 after {:?}; want at the 1 s deadline",
        ex.elapsed
    );
    let gone = wait_until(REAP_TIMEOUT, Duration::from_millis(20), || {
        processes_matching(&marker).is_empty()
    });
    assert!(
        gone,
        "check processes outlived the deadline: {:?}",
        processes_matching(&marker)
    );
    assert_exit_statuses(&xinetd, &[0]);
}

// --- 8. Nothing but the response on the wire ------------------------------------

/// Under xinetd fds 0, 1 and 2 are all the socket: a log line written to
/// stderr would reach the client after (or before) the response. The line
/// is written after the write side is shut down, where a line on stderr
/// would only fail, so the wire alone cannot show where it went: the test
/// owns the syslog socket and reads one line per connection there.
#[test]
fn log_line_never_reaches_the_wire() {
    let dir = TempDir::new("syslog");
    let socket = dir.join("log");
    let syslog =
        std::os::unix::net::UnixDatagram::bind(&socket).expect("binding the syslog socket");
    syslog.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    let socket = socket.to_str().unwrap();
    let up = Xinetd::start(BIN, &["--syslog-socket", socket, "exec", "--", "/bin/true"]);
    let down = xinetd_with_script(&["--syslog-socket", socket], "echo the-detail; exit 2");
    let cases: [(&Xinetd, &[u8], &str, &str); 5] = [
        (&up, GET, "HTTP/1.1 200 OK", "<30>"),
        (&down, GET, "HTTP/1.1 503 Service Unavailable", "<28>"),
        (
            &up,
            b"BREW / HTTP/1.1\r\nHost: x\r\n\r\n",
            "HTTP/1.1 405 Method Not Allowed",
            "<28>",
        ),
        (
            &up,
            b"\x01\x02\x03\r\n\r\n",
            "HTTP/1.1 400 Bad Request",
            "<28>",
        ),
        (
            &up,
            b"OPTIONS / HTTP/1.0\r\n\r\n",
            "HTTP/1.1 200 OK",
            "<30>",
        ),
    ];
    for (xinetd, request, status_line, priority) in cases {
        let ex = exchange(xinetd.port(), request, IO_TIMEOUT);
        assert!(
            ex.bytes.starts_with(status_line.as_bytes()),
            "the first bytes on the wire must be the status line {status_line:?}: {:?}",
            ex.text()
        );
        // Strict parse: exactly head + Content-Length bytes, nothing after.
        let response = one_response(&ex);
        assert_eq!(response.status_line, status_line);
        // ... and the connection's line went to syslog.
        let mut buf = [0u8; 2048];
        let n = syslog
            .recv(&mut buf)
            .expect("a syslog line for the connection");
        let line = String::from_utf8_lossy(&buf[..n]);
        let status = &status_line[9..12];
        assert!(
            line.starts_with(&format!("{priority}inetd-health["))
                && line.contains("]: peer=127.0.0.1 ")
                && line.contains(&format!(" status={status} ")),
            "{line}"
        );
        if status == "503" {
            assert!(line.ends_with(" detail=\"the-detail\""), "{line}");
            assert!(!ex.text().contains("the-detail"), "{}", ex.text());
        }
    }
}

/// The check program's stdout and stderr are not the client's socket either.
#[test]
fn check_output_never_reaches_the_wire() {
    let xinetd = xinetd_with_script(
        &[],
        "echo noisy-stdout-line\necho noisy-stderr-line >&2\nexit 3",
    );
    let ex = exchange(xinetd.port(), GET, IO_TIMEOUT);
    let response = one_response(&ex);
    assert_unhealthy(&response);
    assert!(
        !ex.text().contains("noisy-"),
        "check output reached the client without --show-output: {:?}",
        ex.text()
    );
}

#[test]
fn show_output_puts_check_output_in_the_body() {
    let xinetd = xinetd_with_script(&["--show-output"], "echo disk-almost-full\nexit 2");
    let response = one_response(&exchange(xinetd.port(), GET, IO_TIMEOUT));
    assert_unhealthy(&response);
    assert!(
        response.body_text().contains("disk-almost-full"),
        "{response:?}"
    );
}

// --- Check outcomes as a load balancer sees them --------------------------------

#[test]
fn failing_check_is_503_with_exit_status_in_body() {
    let xinetd = xinetd_with_script(&[], "exit 2");
    let response = one_response(&exchange(xinetd.port(), GET, IO_TIMEOUT));
    assert_unhealthy(&response);
    assert_eq!(response.body_text(), "unhealthy: exit status 2\n");
    // 503 is a response sent: exit 0.
    assert_exit_statuses(&xinetd, &[0]);
}

#[test]
fn killed_check_is_503() {
    let xinetd = xinetd_with_script(&[], "kill -9 $$");
    assert_unhealthy(&one_response(&exchange(xinetd.port(), GET, IO_TIMEOUT)));
}

/// /bin/false exits 1, as do most scripts and commands that fail: down.
#[test]
fn exit_1_is_503_by_default() {
    let down = Xinetd::start(BIN, &["exec", "--", "/bin/false"]);
    let response = one_response(&exchange(down.port(), GET, IO_TIMEOUT));
    assert_unhealthy(&response);
    assert_eq!(response.body_text(), "unhealthy: exit status 1\n");
}

#[test]
fn tcp_check_is_200_when_port_open_and_503_when_closed() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let open = listener.local_addr().expect("addr").port();
    let closed = free_port();
    let up = Xinetd::start(BIN, &["tcp", &format!("127.0.0.1:{open}")]);
    let down = Xinetd::start(BIN, &["tcp", &format!("127.0.0.1:{closed}")]);
    assert_healthy(&one_response(&exchange(up.port(), GET, IO_TIMEOUT)));
    assert_unhealthy(&one_response(&exchange(down.port(), GET, IO_TIMEOUT)));
    drop(listener);
}

// --- 9. HAProxy -------------------------------------------------------------------

/// HAProxy's `http-check` lines for a GET of /health over HTTP/1.1 with a Host.
const GET_HEALTH_CHECK: &[&str] = &["http-check send meth GET uri /health ver HTTP/1.1 hdr Host x"];

/// A passing check.
const PASSING: &[&str] = &["exec", "--", "/bin/true"];
/// A failing check: /bin/false exits 1.
const FAILING: &[&str] = &["exec", "--", "/bin/false"];

fn is_up(state: &ServerState) -> bool {
    state.status == "UP" && state.check_status == "L7OK" && state.check_code == "200"
}

fn is_down_503(state: &ServerState) -> bool {
    state.status == "DOWN" && state.check_status == "L7STS" && state.check_code == "503"
}

/// Serves `inetd-health ARGS` under xinetd, health-checks it with HAProxy
/// (`option httpchk` plus `check_lines`), and waits for the state `want`.
fn haproxy_sees(args: &[&str], check_lines: &[&str], want: fn(&ServerState) -> bool) {
    let xinetd = Xinetd::start(BIN, args);
    let haproxy = Haproxy::start(xinetd.port(), check_lines);
    let state = haproxy.wait_for_state(HAPROXY_TIMEOUT, want);
    assert!(
        state.is_ok(),
        "HAProxy checking `inetd-health {}`: {state:?}",
        args.join(" ")
    );
    let settled = state.map(|s| s.status).unwrap_or_default();
    // It stays there over a few more checks (no flapping on a reset or a
    // lost response). While a check runs HAProxy blanks check_code, so only
    // the server's status is compared here.
    for _ in 0..20 {
        std::thread::sleep(Duration::from_millis(50));
        let now = haproxy.server_state();
        assert!(
            matches!(&now, Ok(s) if s.status == settled),
            "HAProxy's view changed after settling on {settled}: {now:?}"
        );
    }
    let statuses = xinetd.exit_statuses();
    assert!(
        !statuses.is_empty() && statuses.iter().all(|&s| s == 0),
        "every HAProxy check should be answered 200/503 (exit 0): {statuses:?}"
    );
}

#[test]
fn haproxy_default_httpchk_sees_up_when_check_passes() {
    haproxy_sees(PASSING, &[], is_up);
}

#[test]
fn haproxy_default_httpchk_sees_down_when_check_fails() {
    haproxy_sees(FAILING, &[], is_down_503);
}

#[test]
fn haproxy_get_health_http11_sees_up_when_check_passes() {
    haproxy_sees(PASSING, GET_HEALTH_CHECK, is_up);
}

#[test]
fn haproxy_get_health_http11_sees_down_when_check_fails() {
    haproxy_sees(FAILING, GET_HEALTH_CHECK, is_down_503);
}

/// Under `--nagios`, exit 1 is a warning: the server keeps its traffic
/// unless `--warning-is-down` says otherwise.
#[test]
fn haproxy_keeps_a_nagios_warning_up() {
    haproxy_sees(&["exec", "--nagios", "--", "/bin/false"], &[], is_up);
}

#[test]
fn haproxy_takes_a_nagios_warning_down_with_warning_is_down() {
    haproxy_sees(
        &["--warning-is-down", "exec", "--nagios", "--", "/bin/false"],
        &[],
        is_down_503,
    );
}

/// Exit 2 (a Nagios CRITICAL; `ls` of a missing path exits 2) is down
/// either way.
#[test]
fn haproxy_default_httpchk_sees_down_for_a_critical_check() {
    haproxy_sees(
        &["exec", "--", "/bin/ls", "/nonexistent/inetd-health"],
        &[],
        is_down_503,
    );
    haproxy_sees(
        &[
            "exec",
            "--nagios",
            "--",
            "/bin/ls",
            "/nonexistent/inetd-health",
        ],
        &[],
        is_down_503,
    );
}

// --- The examples under xinetd ---------------------------------------------------

/// An example built next to the binary under test, by `cargo build
/// --examples` (scripts/test runs it): `cargo test` alone builds examples
/// only as test harnesses.
fn example(name: &str) -> std::path::PathBuf {
    let bin = Path::new(BIN);
    let path = bin.parent().unwrap().join("examples").join(name);
    assert!(
        path.exists(),
        "example {name} not built at {}: run `cargo build --workspace --examples` first (scripts/test does)",
        path.display()
    );
    path
}

/// The seed's hello script sent `Content-Length: 15` for a 16-byte body and
/// reset every connection.
#[test]
fn hello_example_exact_length_and_no_reset() {
    let hello = example("hello");
    without_aborts(|| {
        let xinetd = Xinetd::start(&hello, &[]);
        for request in [GET, b"OPTIONS / HTTP/1.0\r\n\r\n".as_slice()] {
            for _ in 0..50 {
                let ex = exchange(xinetd.port(), request, IO_TIMEOUT);
                let r = one_response(&ex);
                assert_eq!(r.status_line, "HTTP/1.1 200 OK");
                r.assert_standard_headers();
                assert_eq!(r.body_text(), "Hello, World\n");
                assert_eq!(r.content_length(), Some(13));
            }
        }
        let ex = exchange(xinetd.port(), b"DELETE / HTTP/1.1\r\n\r\n", IO_TIMEOUT);
        assert_eq!(one_response(&ex).status, 405);
        let left = xinetd.wait_for_no_children(REAP_TIMEOUT);
        assert!(left.is_empty(), "servers still running: {left:?}");
    });
}

/// The seed's echo (`while read i; do echo -e ${i}; done`) answered `hello`
/// with `-e hello` where /bin/sh is dash, and mangled backslashes and spaces.
#[test]
fn echo_example_sends_every_line_back_byte_for_byte() {
    let xinetd = Xinetd::start(example("echo"), &[]);
    let lines: &[u8] =
        b"hello\n-e not an option\nback\\slash \\n  two  spaces\n\ttab\nno newline at the end";
    let ex = exchange_half_closed(xinetd.port(), lines, IO_TIMEOUT);
    ex.assert_clean_close();
    assert_eq!(
        String::from_utf8_lossy(&ex.bytes),
        String::from_utf8_lossy(lines)
    );
}
