//! The long-lived form (`--listen`, the same loop as systemd `Accept=no`)
//! against adnanh's `webhook` (Debian's `webhook`), both running
//! `/bin/true` for every request, side by side in one run: CPU per request
//! (the server's and its children's, from `/proc/PID/stat`) and latency.
//!
//! Run: `cargo bench -p inetd-health-cli --bench longlived`
//!
//! The bar (issue 10): at most 0.6x webhook's CPU per request. The binary
//! measured is the shipped one, built by `scripts/build-static`.
//! `BENCH_REQUESTS` (default 2000) per candidate per round, `BENCH_ROUNDS`
//! (default 3). Only 127.0.0.1 is used.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use inetd_health_testkit::client::{free_port, is_listening, loopback};
use inetd_health_testkit::procs::{cpu_times, find_program, wait_until, CpuTimes};
use inetd_health_testkit::tmp::TempDir;

const IO_TIMEOUT: Duration = Duration::from_secs(5);
const CPU_BAR: f64 = 0.6;

struct Server {
    name: &'static str,
    child: Child,
    addr: SocketAddr,
    path: &'static str,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!(
            "long-lived benchmark: run it with `cargo bench -p inetd-health-cli --bench longlived`"
        );
        return;
    }
    let requests: usize = env_or("BENCH_REQUESTS", 2000);
    let rounds: usize = env_or("BENCH_ROUNDS", 3);
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let status = Command::new(root.join("scripts/build-static"))
        .status()
        .expect("running scripts/build-static");
    assert!(status.success(), "scripts/build-static failed");
    let ours = root.join("target/static/inetd-health");
    let webhook = find_program("webhook").expect("webhook not found: apt-get install webhook");
    let dir = TempDir::new("longlived");

    let mut results: Vec<(&str, Vec<(Duration, Duration)>)> = Vec::new();
    for round in 0..rounds {
        for which in [0, 1] {
            let server = if (which + round) % 2 == 0 {
                start_ours(&ours)
            } else {
                start_webhook(&webhook, dir.path())
            };
            let (cpu, p50) = measure(&server, requests);
            match results.iter_mut().find(|(n, _)| *n == server.name) {
                Some((_, r)) => r.push((cpu, p50)),
                None => results.push((server.name, vec![(cpu, p50)])),
            }
        }
        eprint!("round {}/{rounds} done\r", round + 1);
    }
    eprintln!();
    drop(dir);
    println!("{requests} sequential requests per round, {rounds} rounds, each server running /bin/true per request");
    println!("{:<28} {:>12} {:>10}", "server", "CPU/req", "p50");
    let mut medians = Vec::new();
    for (name, runs) in &results {
        let mut cpu: Vec<Duration> = runs.iter().map(|r| r.0).collect();
        let mut p50: Vec<Duration> = runs.iter().map(|r| r.1).collect();
        cpu.sort();
        p50.sort();
        let (c, p) = (cpu[cpu.len() / 2], p50[p50.len() / 2]);
        println!("{name:<28} {:>10}µs {:>8}µs", c.as_micros(), p.as_micros());
        medians.push((*name, c, p));
    }
    if let [(_, ours_cpu, ours_p50), (_, hook_cpu, hook_p50)] = medians[..] {
        let cpu = ours_cpu.as_secs_f64() / hook_cpu.as_secs_f64();
        let p50 = ours_p50.as_secs_f64() / hook_p50.as_secs_f64();
        println!(
            "inetd-health --listen vs webhook: CPU {cpu:.3}x, p50 {p50:.3}x; CPU bar <= {CPU_BAR}x: {}",
            if cpu <= CPU_BAR { "met" } else { "MISSED" }
        );
    }
}

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn start_ours(bin: &Path) -> Server {
    let mut child = Command::new(bin)
        .args(["--listen", "127.0.0.1:0", "exec", "--", "/bin/true"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting inetd-health");
    let mut line = String::new();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    stderr.read_line(&mut line).unwrap();
    let addr = line
        .trim()
        .strip_prefix("inetd-health: listening on ")
        .expect("the listening line")
        .parse()
        .unwrap();
    // The log lines (one per request) must not fill the pipe.
    std::thread::spawn(move || {
        let mut sink = Vec::new();
        let _ = stderr.read_to_end(&mut sink);
    });
    Server {
        name: "inetd-health --listen",
        child,
        addr,
        path: "/",
    }
}

fn start_webhook(bin: &Path, dir: &Path) -> Server {
    let hooks = dir.join("hooks.json");
    std::fs::write(
        &hooks,
        r#"[{"id": "true", "execute-command": "/bin/true", "include-command-output-in-response": true}]"#,
    )
    .unwrap();
    let port = free_port();
    let child = Command::new(bin)
        .args([
            "-hooks",
            hooks.to_str().unwrap(),
            "-ip",
            "127.0.0.1",
            "-port",
            &port.to_string(),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting webhook");
    let up = wait_until(Duration::from_secs(5), Duration::from_millis(20), || {
        is_listening(port)
    });
    assert!(up, "webhook did not start");
    Server {
        name: "webhook",
        child,
        addr: loopback(port),
        path: "/hooks/true",
    }
}

/// The server's CPU (its own and its reaped children's) per request, and
/// the median latency, over `n` sequential requests after 100 unmeasured.
fn measure(server: &Server, n: usize) -> (Duration, Duration) {
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        server.path
    );
    let one = || {
        let start = Instant::now();
        let mut s = TcpStream::connect(server.addr).expect("connect");
        s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        s.write_all(request.as_bytes()).unwrap();
        let mut got = Vec::new();
        let _ = s.read_to_end(&mut got);
        assert!(
            got.starts_with(b"HTTP/1.1 200"),
            "{}: {:?}",
            server.name,
            String::from_utf8_lossy(&got)
        );
        start.elapsed()
    };
    for _ in 0..100 {
        one();
    }
    let before = cpu_of(server.child.id());
    let split_before = cpu_split(server.child.id());
    let mut times: Vec<Duration> = (0..n).map(|_| one()).collect();
    // Children are counted once reaped; give the last one a moment.
    std::thread::sleep(Duration::from_millis(100));
    let after = cpu_of(server.child.id());
    let split_after = cpu_split(server.child.id());
    eprintln!(
        "{}: own {}µs, children {}µs per request",
        server.name,
        ((split_after.own - split_before.own) / n as u32).as_micros(),
        ((split_after.children - split_before.children) / n as u32).as_micros()
    );
    times.sort();
    ((after - before) / n as u32, times[n / 2])
}

/// utime + stime + cutime + cstime of `pid`.
fn cpu_of(pid: u32) -> Duration {
    let times = cpu_split(pid);
    times.own + times.children
}

/// `pid`'s own CPU (utime + stime) and its reaped children's (cutime +
/// cstime).
fn cpu_split(pid: u32) -> CpuTimes {
    cpu_times(pid).expect("the server's /proc/PID/stat")
}
