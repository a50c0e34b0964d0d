//! Running the binary under test once, over pipes: the request on stdin
//! (closed after it), stdout and stderr captured, bounded in time.
//!
//! The caller names the binary (`bin`): in the CLI package's tests,
//! `env!("CARGO_BIN_EXE_inetd-health")`.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::http::Response;
use crate::procs::{read_or_empty, wait_until, ProcessGuard};
use crate::tmp::TempDir;

/// The request most checks are run with.
pub const GET: &[u8] = b"GET /health HTTP/1.1\r\nHost: lb\r\n\r\n";

/// Bound on one run; far above any check's own deadline.
pub const RUN_TIMEOUT: Duration = Duration::from_secs(15);

/// One run of the binary.
pub struct Run {
    /// The arguments it ran with.
    pub args: Vec<String>,
    /// What it wrote to stdout (the response).
    pub stdout: Vec<u8>,
    /// What it wrote to stderr (the log line).
    pub stderr: String,
    /// Its exit code.
    pub code: Option<i32>,
    /// From start to exit.
    pub elapsed: Duration,
}

impl Run {
    /// The response, strictly parsed; panics (naming the run) if it is not one.
    pub fn response(&self) -> Response {
        Response::parse(&self.stdout)
            .unwrap_or_else(|e| panic!("{:?}: {e}\nstderr: {}", self.args, self.stderr))
    }

    /// The response's body as text.
    pub fn body(&self) -> String {
        self.response().body_text()
    }

    /// stdout as text.
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
}

/// Runs `bin ARGS` with `input` on stdin and no super-server variables in
/// the environment, bounded by [`RUN_TIMEOUT`].
pub fn run_with_input(bin: impl AsRef<Path>, args: &[String], input: &[u8]) -> Run {
    let bin = bin.as_ref();
    let mut child = Command::new(bin)
        .args(args)
        .env_remove("REMOTE_HOST")
        .env_remove("TCPREMOTEIP")
        .env_remove("REMOTE_ADDR")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawning {}: {e}", bin.display()));
    let start = Instant::now();
    let out = child.stdout.take().map(reader);
    let err = child.stderr.take().map(reader);
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(input);
    }
    let mut code = None;
    let finished = wait_until(RUN_TIMEOUT, Duration::from_millis(2), || {
        match child.try_wait() {
            Ok(Some(status)) => {
                code = status.code();
                true
            }
            Ok(None) => false,
            Err(_) => true,
        }
    });
    let elapsed = start.elapsed();
    if !finished {
        let _ = child.kill();
        let _ = child.wait();
    }
    let stdout = out.and_then(|h| h.join().ok()).unwrap_or_default();
    let stderr = err.and_then(|h| h.join().ok()).unwrap_or_default();
    let stderr = String::from_utf8_lossy(&stderr).into_owned();
    assert!(
        finished,
        "{} {args:?} still running after {RUN_TIMEOUT:?}; stderr: {stderr}",
        bin.display()
    );
    Run {
        args: args.to_vec(),
        stdout,
        stderr,
        code,
        elapsed,
    }
}

/// One HTTP check over pipes: [`GET`] on stdin.
pub fn check(bin: impl AsRef<Path>, args: &[String]) -> Run {
    run_with_input(bin, args, GET)
}

/// One request, `METHOD TARGET HTTP/1.0` and nothing else, as a
/// per-connection launcher hands it over.
pub fn ask(bin: impl AsRef<Path>, args: &[String], method: &str, target: &str) -> Run {
    let request = format!("{method} {target} HTTP/1.0\r\n\r\n");
    run_with_input(bin, args, request.as_bytes())
}

/// The status [`ask`] answers, the response strictly parsed (a HEAD's has
/// no body); panics with the log otherwise.
pub fn status(bin: impl AsRef<Path>, args: &[String], method: &str, target: &str) -> u16 {
    let run = ask(bin, args, method, target);
    let parsed = if method == "HEAD" {
        Response::parse_head(&run.stdout)
    } else {
        Response::parse(&run.stdout)
    };
    parsed
        .unwrap_or_else(|e| panic!("{method} {target}: {e}\nstderr: {}", run.stderr))
        .status
}

/// A config file (`inetd-health.toml`) in a directory of its own, and the
/// binary asked with it over pipes, one request a run, as a per-connection
/// launcher runs it.
pub struct Configured {
    // Removed after the runs that read the files in it.
    _dir: TempDir,
    /// The config file.
    pub config: PathBuf,
    bin: PathBuf,
}

impl Configured {
    /// `text` written to `dir/inetd-health.toml`, for `bin`.
    pub fn new(bin: impl AsRef<Path>, dir: TempDir, text: &str) -> Configured {
        let config = dir.join("inetd-health.toml");
        std::fs::write(&config, text).unwrap_or_else(|e| panic!("{}: {e}", config.display()));
        Configured {
            _dir: dir,
            config,
            bin: bin.as_ref().to_owned(),
        }
    }

    /// `--config FILE`.
    pub fn args(&self) -> Vec<String> {
        vec!["--config".into(), path_str(&self.config)]
    }

    /// One request over pipes ([`ask`]).
    pub fn ask(&self, method: &str, target: &str) -> Run {
        ask(&self.bin, &self.args(), method, target)
    }

    /// `GET target`: the status and the body.
    pub fn get(&self, target: &str) -> (u16, String) {
        let response = self.ask("GET", target).response();
        (response.status, response.body_text())
    }

    /// The status `method target` answers ([`status`]).
    pub fn status(&self, method: &str, target: &str) -> u16 {
        status(&self.bin, &self.args(), method, target)
    }
}

/// `bin --listen 127.0.0.1:0 ARGS…` with its stderr in `log`, once it
/// has said where it listens: the process and that address. Panics with
/// the log if it exits first or does not say within `timeout`.
pub fn listening(
    bin: impl AsRef<Path>,
    args: &[&str],
    log: &Path,
    timeout: Duration,
) -> (ProcessGuard, SocketAddr) {
    let mut process = ProcessGuard::spawn(
        "inetd-health --listen",
        Command::new(bin.as_ref())
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log).expect("creating the log")),
    )
    .expect("starting inetd-health --listen");
    let mut bound = None;
    wait_until(timeout, Duration::from_millis(10), || {
        bound = read_or_empty(log)
            .lines()
            .find_map(|l| l.strip_prefix("inetd-health: listening on "))
            .and_then(|a| a.trim().parse().ok());
        bound.is_some() || process.try_wait().is_some()
    });
    let addr = bound.unwrap_or_else(|| {
        panic!(
            "--listen {args:?} did not listen (exit {:?}):\n{}",
            process.try_wait(),
            read_or_empty(log)
        )
    });
    (process, addr)
}

/// Reads a pipe to its end on a thread (so stdout and stderr never block
/// each other).
pub fn reader(mut from: impl Read + Send + 'static) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = from.read_to_end(&mut bytes);
        bytes
    })
}

/// Owned arguments.
pub fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|a| a.to_string()).collect()
}

/// A path as an argument.
pub fn path_str(path: &Path) -> String {
    path.to_str().expect("utf-8 path").to_string()
}
