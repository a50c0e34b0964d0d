//! Every launcher and every poller: the address allowlist (on the kernel's
//! peer address), under a real xinetd and the `--listen` loop, over IPv4
//! and IPv6.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use support::client::exchange;
use support::http::Response;
use support::run::run_with_input;
use support::tmp::TempDir;
use support::xinetd::Xinetd;

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
    let allowed = Xinetd::start(&["--allow", "127.0.0.0/8", "exec", "--", &script]);
    let ex = exchange(allowed.port(), GET, IO_TIMEOUT);
    ex.assert_clean_close();
    assert_eq!(Response::parse(&ex.bytes).unwrap().status, 200);
    assert_eq!(runs(&count), 1);

    // Nobody on loopback is in 192.0.2.0/24: 403, and the check never runs.
    let denied = Xinetd::start(&[
        "--allow",
        "192.0.2.0/24,2001:db8::/32",
        "exec",
        "--",
        &script,
    ]);
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
    let run = run_with_input(&args, GET);
    assert_eq!(run.response().status, 403);
    assert_eq!(run.code, Some(65));
    assert!(
        run.stderr
            .contains("reason=\"peer address unknown: not allowed\""),
        "{}",
        run.stderr
    );
    let out = Command::new(support::inetd_health_bin())
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
    let mut child = Command::new(support::inetd_health_bin())
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
