//! A private HAProxy health-checking one server, read through its stats socket.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::client::{free_port, is_listening};
use crate::procs::{require_program, wait_until, ProcessGuard};
use crate::tmp::TempDir;

/// How long HAProxy gets to start, per attempt.
const START_TIMEOUT: Duration = Duration::from_secs(5);
/// Attempts with a new port, in case another process took the free port first.
const START_ATTEMPTS: usize = 3;
/// The proxy and server names in the generated config.
pub const PROXY: &str = "health";
/// See [`PROXY`].
pub const SERVER: &str = "s1";

/// One server's state from `show stat`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServerState {
    /// `status`: `UP`, `DOWN`, `UP 1/2`, `NOLB`, ...
    pub status: String,
    /// `check_status`: `L7OK`, `L7STS`, `L4CON`, `INI`, ... (without the
    /// leading `* ` HAProxy adds while a check is running)
    pub check_status: String,
    /// `check_code`: the HTTP status of the last layer-7 check, if any.
    pub check_code: String,
    /// `last_chk`: HAProxy's description of the last check.
    pub last_chk: String,
    /// `weight`: the server's effective weight.
    pub weight: String,
    /// `agent_status`: the last agent check's status (`L7OK`, …).
    pub agent_status: String,
    /// `last_agt`: what the last agent check said.
    pub last_agt: String,
}

/// `haproxy -f CFG -db` in the foreground, with a `listen` section on a free
/// loopback port whose one server is health-checked. Stopped (SIGTERM, then
/// SIGKILL) and its directory removed on drop.
pub struct Haproxy {
    process: ProcessGuard,
    port: u16,
    // Dropped after `process`.
    dir: TempDir,
}

impl Haproxy {
    /// Starts HAProxy checking `127.0.0.1:server_port` every 200 ms
    /// (`fall 2 rise 2`), with `option httpchk` followed by `check_lines`
    /// (extra lines for the `listen` section, e.g. an `http-check send`).
    pub fn start(server_port: u16, check_lines: &[&str]) -> Haproxy {
        Haproxy::start_with(server_port, check_lines, "")
    }

    /// Like [`Haproxy::start`], with `server_options` added to the server
    /// line (e.g. `agent-check agent-port P agent-inter 500ms`).
    pub fn start_with(server_port: u16, check_lines: &[&str], server_options: &str) -> Haproxy {
        let extra: String = check_lines.iter().map(|l| format!("    {l}\n")).collect();
        Haproxy::start_sections(|port| {
            format!(
                "listen {PROXY}
    bind 127.0.0.1:{port}
    option httpchk
{extra}    server {SERVER} 127.0.0.1:{server_port} check inter 200ms fall 2 rise 2 {server_options}
"
            )
        })
    }

    /// HAProxy with the stats socket and the defaults of [`Haproxy::start`],
    /// and the `listen`/`backend` sections `sections` writes for the
    /// frontend port it is given (the first section should bind it, so
    /// that start-up can be told). Read each server with
    /// [`Haproxy::state_of`].
    pub fn start_sections(sections: impl Fn(u16) -> String) -> Haproxy {
        let haproxy = require_program("haproxy");
        let dir = TempDir::new("haproxy");
        let mut last_error = String::new();
        for attempt in 1..=START_ATTEMPTS {
            let port = free_port();
            let cfg = dir.join("haproxy.cfg");
            std::fs::write(&cfg, config(dir.path(), &sections(port)))
                .unwrap_or_else(|e| panic!("writing {}: {e}", cfg.display()));
            let output = std::fs::File::create(dir.join("haproxy.out")).expect("output file");
            let errors = output.try_clone().expect("output file");
            let mut process = ProcessGuard::spawn(
                "haproxy",
                Command::new(&haproxy)
                    .arg("-f")
                    .arg(&cfg)
                    .arg("-db")
                    .stdin(Stdio::null())
                    .stdout(output)
                    .stderr(errors),
            )
            .unwrap_or_else(|e| panic!("starting {}: {e}", haproxy.display()));
            let ready = wait_until(START_TIMEOUT, Duration::from_millis(20), || {
                process.try_wait().is_some()
                    || (is_listening(port) && stats(&dir.join("haproxy.sock")).is_ok())
            });
            if ready && process.try_wait().is_none() {
                return Haproxy { process, port, dir };
            }
            let status = process.stop();
            last_error = format!(
                "attempt {attempt}: haproxy on port {port} not ready within {START_TIMEOUT:?} \
                 (exit: {status:?})\noutput: {}\nconfig:\n{}",
                read(&dir.join("haproxy.out")),
                read(&cfg),
            );
        }
        panic!("{last_error}");
    }

    /// The frontend port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `show stat` from the stats socket (CSV with a `# ` header line).
    pub fn show_stat(&self) -> Result<String, String> {
        stats(&self.dir.join("haproxy.sock"))
    }

    /// The checked server's state now.
    pub fn server_state(&self) -> Result<ServerState, String> {
        let csv = self.show_stat()?;
        parse_server_state(&csv, PROXY, SERVER)
            .ok_or_else(|| format!("no row for {PROXY}/{SERVER} in show stat:\n{csv}"))
    }

    /// The state of `server` in `proxy` now.
    pub fn state_of(&self, proxy: &str, server: &str) -> Result<ServerState, String> {
        let csv = self.show_stat()?;
        parse_server_state(&csv, proxy, server)
            .ok_or_else(|| format!("no row for {proxy}/{server} in show stat:\n{csv}"))
    }

    /// Waits (bounded) until `want` holds for the server's state; returns the
    /// state that satisfied it, or the last state seen.
    pub fn wait_for_state(
        &self,
        timeout: Duration,
        want: impl Fn(&ServerState) -> bool,
    ) -> Result<ServerState, String> {
        let mut last = Err("never read".to_string());
        let ok = wait_until(timeout, Duration::from_millis(50), || {
            last = self.server_state();
            matches!(&last, Ok(state) if want(state))
        });
        match last {
            Ok(state) if ok => Ok(state),
            Ok(state) => Err(format!("after {timeout:?} the state is still {state:?}")),
            Err(e) => Err(e),
        }
    }

    /// HAProxy's own output (warnings, alerts).
    pub fn output(&self) -> String {
        read(&self.dir.join("haproxy.out"))
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "--- haproxy on 127.0.0.1:{}\n--- output:\n{}\n--- config:\n{}",
                self.port,
                self.output(),
                read(&self.dir.join("haproxy.cfg")),
            );
        }
        self.process.stop();
    }
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

fn stats(socket: &Path) -> Result<String, String> {
    let mut stream =
        UnixStream::connect(socket).map_err(|e| format!("{}: {e}", socket.display()))?;
    let timeout = Some(Duration::from_secs(2));
    stream
        .set_read_timeout(timeout)
        .map_err(|e| e.to_string())?;
    stream
        .set_write_timeout(timeout)
        .map_err(|e| e.to_string())?;
    stream
        .write_all(b"show stat\n")
        .map_err(|e| format!("writing to the stats socket: {e}"))?;
    let mut out = String::new();
    stream
        .read_to_string(&mut out)
        .map_err(|e| format!("reading the stats socket: {e}"))?;
    Ok(out)
}

/// Finds the `proxy`/`server` row in `show stat` CSV.
pub fn parse_server_state(csv: &str, proxy: &str, server: &str) -> Option<ServerState> {
    let mut lines = csv.lines();
    let header: Vec<&str> = lines
        .next()?
        .trim_start_matches('#')
        .trim()
        .split(',')
        .collect();
    let column = |name: &str| header.iter().position(|h| *h == name);
    let (px, sv) = (column("pxname")?, column("svname")?);
    let (status, check_status) = (column("status")?, column("check_status")?);
    let (check_code, last_chk) = (column("check_code")?, column("last_chk"));
    let (weight, agent_status, last_agt) =
        (column("weight"), column("agent_status"), column("last_agt"));
    lines.find_map(|line| {
        let fields: Vec<&str> = line.split(',').collect();
        let get = |i: usize| fields.get(i).copied().unwrap_or_default().to_string();
        (get(px) == proxy && get(sv) == server).then(|| ServerState {
            status: get(status),
            check_status: get(check_status).trim_start_matches("* ").to_string(),
            check_code: get(check_code),
            last_chk: last_chk.map(get).unwrap_or_default(),
            weight: weight.map(get).unwrap_or_default(),
            agent_status: agent_status
                .map(get)
                .unwrap_or_default()
                .trim_start_matches("* ")
                .to_string(),
            last_agt: last_agt.map(get).unwrap_or_default(),
        })
    })
}

fn config(dir: &Path, sections: &str) -> String {
    format!(
        "global
    stats socket {sock} level admin
    stats timeout 10s

defaults
    mode http
    timeout connect 2s
    timeout client 5s
    timeout server 5s
    timeout check 3s

{sections}",
        sock = dir.join("haproxy.sock").display(),
    )
}
