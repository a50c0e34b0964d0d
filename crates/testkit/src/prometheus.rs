//! A private Prometheus scraping one target every second, read through its
//! HTTP API.

use std::io::Write as _;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::client::{free_port, is_listening};
use crate::procs::{require_program, wait_until, ProcessGuard};
use crate::tmp::TempDir;

/// Attempts with a new port, in case another process took the free port first.
const START_ATTEMPTS: usize = 3;
/// How long Prometheus gets to listen, per attempt.
const START_TIMEOUT: Duration = Duration::from_secs(15);

/// `prometheus` scraping `127.0.0.1:target` (job `inetd-health`, every
/// second), stopped by pid and its directory removed on drop.
pub struct Prometheus {
    process: ProcessGuard,
    port: u16,
    // Dropped after `process`.
    dir: TempDir,
}

impl Prometheus {
    /// Starts Prometheus scraping `127.0.0.1:target_port` at `path`
    /// (`/metrics` is Prometheus' own default).
    pub fn start(target_port: u16, path: &str) -> Prometheus {
        let prometheus = require_program("prometheus");
        let dir = TempDir::new("prom");
        std::fs::write(
            dir.join("prometheus.yml"),
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 900ms\n\
                 scrape_configs:\n  - job_name: inetd-health\n    metrics_path: '{path}'\n    \
                 static_configs:\n      - targets: ['127.0.0.1:{target_port}']\n"
            ),
        )
        .expect("writing prometheus.yml");
        let mut last = String::new();
        for _ in 0..START_ATTEMPTS {
            let port = free_port();
            let log = std::fs::File::create(dir.join("prometheus.log")).expect("log file");
            let mut process = ProcessGuard::spawn(
                "prometheus",
                Command::new(&prometheus)
                    .arg(format!(
                        "--config.file={}",
                        dir.join("prometheus.yml").display()
                    ))
                    .arg(format!(
                        "--storage.tsdb.path={}",
                        dir.join("data").display()
                    ))
                    .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(log),
            )
            .expect("starting prometheus");
            let up = wait_until(START_TIMEOUT, Duration::from_millis(50), || {
                is_listening(port) || process.try_wait().is_some()
            });
            if up && process.try_wait().is_none() {
                return Prometheus { process, port, dir };
            }
            process.stop();
            last = std::fs::read_to_string(dir.join("prometheus.log")).unwrap_or_default();
        }
        panic!("prometheus did not start: {last}");
    }

    /// `GET /api/v1/query?query=Q`: the body (JSON), or what went wrong.
    pub fn query(&self, query: &str) -> String {
        api_query(self.port, query)
    }

    /// Waits (bounded) until the target has been scraped and is `up`.
    pub fn wait_scraped(&self, timeout: Duration) -> Result<(), String> {
        let mut seen = String::new();
        let scraped = wait_until(timeout, Duration::from_millis(250), || {
            seen = self.query("up");
            seen.contains("\"value\":[") && seen.contains("\"1\"]")
        });
        if scraped {
            Ok(())
        } else {
            Err(format!("up never 1: {seen}"))
        }
    }

    /// The value of the one series `query` selects, as Prometheus prints it.
    pub fn value(&self, query: &str) -> Option<String> {
        let answer = self.query(query);
        let at = answer.find("\"value\":[")?;
        let rest = &answer[at..];
        let (_, tail) = rest.split_once(",\"")?;
        tail.split_once('"').map(|(v, _)| v.to_owned())
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "--- prometheus log:\n{}",
                std::fs::read_to_string(self.dir.join("prometheus.log")).unwrap_or_default()
            );
        }
        self.process.stop();
    }
}

/// GET /api/v1/query?query=Q on Prometheus at 127.0.0.1:port; the body.
pub fn api_query(port: u16, query: &str) -> String {
    let mut encoded = String::new();
    for b in query.bytes() {
        if b.is_ascii_alphanumeric() || b"_-.".contains(&b) {
            encoded.push(b as char);
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    let request = format!(
        "GET /api/v1/query?query={encoded} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    );
    let mut stream = match std::net::TcpStream::connect(("127.0.0.1", port)) {
        Ok(s) => s,
        Err(e) => return format!("connect: {e}"),
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = stream.write_all(request.as_bytes());
    let mut got = Vec::new();
    let _ = std::io::Read::read_to_end(&mut stream, &mut got);
    String::from_utf8_lossy(&got).into_owned()
}
