//! What HTTPS on the check port costs, side by side in one run under a real
//! xinetd, the shipped static build, ECDSA P-256:
//!
//! - a plaintext poll of this build against the same poll of a build from
//!   before TLS (a service without a certificate touches none of its
//!   code: the bar is within 2 %);
//! - an HTTPS poll resumed from the session-ticket key kept in the state
//!   directory, and one with a full handshake, against the plaintext poll
//!   (bars: at most 1.3x and 1.8x its CPU);
//! - the long-lived form (`--listen`) serving HTTPS against the
//!   per-connection form (bar: at least 5x the requests per CPU-second),
//!   for full handshakes and for resumed ones.
//!
//! Run: `cargo bench -p inetd-health-cli --bench tls`
//!
//! CPU per poll is the server's: xinetd's rusage of the handlers it reaped
//! (each round a fresh xinetd), or the `--listen` process's own time from
//! `/proc`. The client (rustls in this process, sessions cached in memory
//! for the resumed candidates) is not counted. Every poll is a `tcp` check
//! against a listener in this process.
//!
//! Environment: `BENCH_REQUESTS` (default 1000) measured polls per
//! candidate, split over `BENCH_ROUNDS` (default 5) rounds that alternate
//! the candidates; `BENCH_BASELINE` a static binary from before TLS to
//! compare the plaintext poll with; without it, the commit
//! `BENCH_BASELINE_REV` (default: the last one before TLS) is checked out
//! in a git worktree under target/ and built there by its own
//! scripts/build-static (minutes, once). Needs root, xinetd, openssl, git.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use inetd_health_testkit::client::{free_port, is_listening, loopback};
use inetd_health_testkit::procs::{cpu_times, wait_until};
use inetd_health_testkit::tls::{KeyKind, Pki};
use inetd_health_testkit::tmp::TempDir;
use inetd_health_testkit::xinetd::{Settings, Xinetd};
use rustls::client::Resumption;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore};

const REQUEST: &[u8] = b"GET / HTTP/1.0\r\n\r\n";
const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// The last commit before TLS: its plaintext poll is the baseline.
const BASELINE_REV: &str = "150049d";

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Client {
    Plain,
    Full,
    Resumed,
}

struct Candidate {
    name: &'static str,
    server: PathBuf,
    tls: bool,
    client: Client,
}

#[derive(Default, Clone)]
struct Tally {
    cpu: Duration,
    polls: usize,
    wall: Duration,
    not_ok: usize,
    resumed: usize,
}

impl Tally {
    fn add(&mut self, other: &Tally) {
        self.cpu += other.cpu;
        self.polls += other.polls;
        self.wall += other.wall;
        self.not_ok += other.not_ok;
        self.resumed += other.resumed;
    }
    fn cpu_per_poll_us(&self) -> f64 {
        self.cpu.as_secs_f64() * 1e6 / self.polls.max(1) as f64
    }
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("TLS benchmark: run it with `cargo bench -p inetd-health-cli --bench tls`");
        return;
    }
    let requests: usize = env_or("BENCH_REQUESTS", 1000);
    let rounds: usize = env_or("BENCH_ROUNDS", 5).max(1);
    let per_round = requests.div_ceil(rounds);
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    run_script(&root, "scripts/build-static", &[]);
    let ours = root.join("target/static/inetd-health");
    let baseline = match std::env::var_os("BENCH_BASELINE") {
        Some(path) => PathBuf::from(path),
        None => build_baseline(&root),
    };

    let dir = TempDir::new("bench-tls");
    let pki = Pki::new(&dir.join("pki"), "bench-ca");
    let (cert, key) = pki.server("server", KeyKind::EcdsaP256, 30);
    let state = dir.join("state");
    std::fs::create_dir_all(&state).unwrap();
    let target = spawn_target();
    let tcp = target.to_string();
    let full = client_config(&pki.ca_cert, false);
    let resumed = client_config(&pki.ca_cert, true);

    let candidates = [
        Candidate {
            name: "plaintext, before TLS",
            server: baseline.clone(),
            tls: false,
            client: Client::Plain,
        },
        Candidate {
            name: "plaintext",
            server: ours.clone(),
            tls: false,
            client: Client::Plain,
        },
        Candidate {
            name: "HTTPS resumed",
            server: ours.clone(),
            tls: true,
            client: Client::Resumed,
        },
        Candidate {
            name: "HTTPS full handshake",
            server: ours.clone(),
            tls: true,
            client: Client::Full,
        },
    ];
    let settings = Settings {
        log_connections: false,
        instances: "UNLIMITED".to_string(),
        flags: "REUSE".to_string(),
        ..Settings::default()
    };
    let mut per_connection: Vec<Tally> = vec![Tally::default(); candidates.len()];
    let mut long_lived = [Tally::default(), Tally::default()];
    for round in 0..rounds {
        for i in 0..candidates.len() {
            let c = &candidates[(i + round) % candidates.len()];
            let mut args = vec!["--state-dir".to_string(), state.display().to_string()];
            if c.tls {
                args.extend([
                    "--tls-cert".to_string(),
                    cert.display().to_string(),
                    "--tls-key".to_string(),
                    key.display().to_string(),
                ]);
            }
            args.extend(["tcp".to_string(), tcp.clone()]);
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let mut xinetd = Xinetd::try_start(
                TempDir::new("bench-tls-xinetd"),
                &c.server,
                &args,
                &settings,
            )
            .expect("xinetd");
            let addr = loopback(xinetd.port());
            let config = match c.client {
                Client::Plain => None,
                Client::Full => Some(&full),
                Client::Resumed => Some(&resumed),
            };
            // Warm-up (unmeasured by the tally, but in xinetd's rusage:
            // counted in polls too).
            let tally = polls(addr, config, per_round + 10);
            assert!(
                xinetd.wait_reaped(Duration::from_secs(10)),
                "handlers still running"
            );
            let usage = xinetd.stop_with_usage().expect("xinetd usage");
            let idx = candidates.iter().position(|x| x.name == c.name).unwrap();
            per_connection[idx].add(&Tally {
                cpu: usage.cpu,
                ..tally
            });
        }
        for (k, config) in [&full, &resumed].into_iter().enumerate() {
            long_lived[k].add(&listen_round(&ours, &cert, &key, &tcp, config, per_round));
        }
    }

    println!(
        "\nper connection under xinetd ({} polls each, {rounds} rounds):",
        per_round * rounds
    );
    println!(
        "{:<24} {:>12} {:>12} {:>8} {:>8}",
        "candidate", "CPU/poll µs", "wall/poll µs", "not 200", "resumed"
    );
    for (c, t) in candidates.iter().zip(&per_connection) {
        println!(
            "{:<24} {:>12.1} {:>12.1} {:>8} {:>8}",
            c.name,
            t.cpu_per_poll_us(),
            t.wall.as_secs_f64() * 1e6 / t.polls.max(1) as f64,
            t.not_ok,
            t.resumed
        );
    }
    let cpu = |i: usize| per_connection[i].cpu_per_poll_us();
    let ratio = |a: f64, b: f64| a / b;
    println!("\nratios (bar in brackets):");
    println!(
        "  plaintext / plaintext before TLS   {:.3}  [<= 1.02]",
        ratio(cpu(1), cpu(0))
    );
    println!(
        "  HTTPS resumed / plaintext          {:.3}  [<= 1.3]",
        ratio(cpu(2), cpu(1))
    );
    println!(
        "  HTTPS full / plaintext             {:.3}  [<= 1.8]",
        ratio(cpu(3), cpu(1))
    );
    println!("\nlong-lived (--listen) HTTPS, a new connection per poll:");
    for (k, name, pc) in [(0, "full handshake", 3), (1, "resumed", 2)] {
        let t = &long_lived[k];
        let rps = t.polls as f64 / t.cpu.as_secs_f64().max(1e-9);
        let rps_pc = per_connection[pc].polls as f64 / per_connection[pc].cpu.as_secs_f64();
        println!(
            "  {name:<15} {:>8.1} µs CPU/poll, {:>9.0} polls per CPU-second; per connection {:>7.0}: {:.1}x [>= 5x] (not 200: {}, resumed: {})",
            t.cpu_per_poll_us(),
            rps,
            rps_pc,
            rps / rps_pc,
            t.not_ok,
            t.resumed
        );
    }
}

/// `n` polls, one connection each; over TLS with `config`.
fn polls(addr: SocketAddr, config: Option<&Arc<ClientConfig>>, n: usize) -> Tally {
    let mut tally = Tally::default();
    let start = Instant::now();
    for _ in 0..n {
        let (status, resumed) = match config {
            None => plain_poll(addr),
            Some(config) => https_poll(addr, config),
        };
        if status != Some(200) {
            tally.not_ok += 1;
        }
        tally.resumed += usize::from(resumed);
        tally.polls += 1;
    }
    tally.wall = start.elapsed();
    tally
}

fn plain_poll(addr: SocketAddr) -> (Option<u16>, bool) {
    let Ok(mut s) = TcpStream::connect_timeout(&addr, IO_TIMEOUT) else {
        return (None, false);
    };
    let _ = s.set_read_timeout(Some(IO_TIMEOUT));
    if s.write_all(REQUEST).is_err() {
        return (None, false);
    }
    let mut response = Vec::new();
    let _ = s.read_to_end(&mut response);
    (status_of(&response), false)
}

fn https_poll(addr: SocketAddr, config: &Arc<ClientConfig>) -> (Option<u16>, bool) {
    let Ok(mut sock) = TcpStream::connect_timeout(&addr, IO_TIMEOUT) else {
        return (None, false);
    };
    let _ = sock.set_read_timeout(Some(IO_TIMEOUT));
    let name = ServerName::IpAddress(addr.ip().into());
    let mut conn = ClientConnection::new(config.clone(), name).expect("client");
    let mut response = Vec::new();
    {
        let mut tls = rustls::Stream::new(&mut conn, &mut sock);
        if tls.write_all(REQUEST).is_err() {
            return (None, false);
        }
        let mut buf = [0u8; 4096];
        loop {
            match tls.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => response.extend_from_slice(&buf[..n]),
            }
        }
    }
    let resumed = conn.handshake_kind() == Some(rustls::HandshakeKind::Resumed);
    (status_of(&response), resumed)
}

fn status_of(response: &[u8]) -> Option<u16> {
    let text = std::str::from_utf8(response.get(..12)?).ok()?;
    text.strip_prefix("HTTP/1.1 ")?.parse().ok()
}

fn client_config(ca: &Path, resume: bool) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).expect("CA file") {
        roots.add(cert.expect("CA PEM")).expect("CA");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocols")
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.resumption = if resume {
        Resumption::in_memory_sessions(64)
    } else {
        Resumption::disabled()
    };
    Arc::new(config)
}

/// One round of `n` HTTPS polls of `--listen`, its own CPU counted.
fn listen_round(
    bin: &Path,
    cert: &Path,
    key: &Path,
    tcp: &str,
    config: &Arc<ClientConfig>,
    n: usize,
) -> Tally {
    let port = free_port();
    let addr = loopback(port);
    let mut child = Command::new(bin)
        .args(["--listen", &addr.to_string(), "--tls-cert"])
        .arg(cert)
        .arg("--tls-key")
        .arg(key)
        .args(["tcp", tcp])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("--listen");
    assert!(
        wait_until(IO_TIMEOUT, Duration::from_millis(5), || is_listening(port)),
        "--listen did not listen"
    );
    // Warm-up: the first handshake fills the client's session cache.
    polls(addr, Some(config), 10);
    let before = cpu_times(child.id()).expect("cpu").own;
    let mut tally = polls(addr, Some(config), n);
    tally.cpu = cpu_times(child.id()).expect("cpu").own - before;
    let _ = child.kill();
    let _ = child.wait();
    tally
}

/// A listener the `tcp` checks connect to: accepted and closed.
fn spawn_target() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            drop(stream);
        }
    });
    addr
}

/// The static binary of the last commit before TLS, built once in a git
/// worktree under target/.
fn build_baseline(root: &Path) -> PathBuf {
    let rev = std::env::var("BENCH_BASELINE_REV").unwrap_or_else(|_| BASELINE_REV.into());
    let tree = root.join(format!("target/bench-baseline-{rev}"));
    let bin = tree.join("target/static/inetd-health");
    if bin.exists() {
        return bin;
    }
    if !tree.exists() {
        let ok = Command::new("git")
            .arg("-C")
            .arg(root)
            .args(["worktree", "add", "--detach"])
            .arg(&tree)
            .arg(&rev)
            .status()
            .expect("git worktree")
            .success();
        assert!(ok, "git worktree add {rev} failed");
    }
    run_script(&tree, "scripts/build-static", &[]);
    bin
}

fn run_script(dir: &Path, script: &str, args: &[&str]) {
    let ok = Command::new(dir.join(script))
        .args(args)
        .current_dir(dir)
        .status()
        .unwrap_or_else(|e| panic!("{script}: {e}"))
        .success();
    assert!(ok, "{script} failed in {}", dir.display());
}

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}
