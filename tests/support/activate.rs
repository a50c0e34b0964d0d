//! systemd's socket activation without systemd: `systemd-socket-activate`
//! on free loopback ports, and the `ExecStart=` line of a unit file.

use std::process::{Command, Stdio};
use std::time::Duration;

use super::client::{free_port, is_listening};
use super::procs::{require_program, wait_until, ProcessGuard};
use super::tmp::TempDir;

/// `systemd-socket-activate` listening on `ports` loopback sockets (the
/// first on 127.0.0.1, the others on [::1]) with `flags`, running `argv`;
/// its stderr in `dir/stderr`. Retried on new ports if another process
/// took one first. Returns the process and its ports.
pub fn socket_activate(
    dir: &TempDir,
    ports: usize,
    flags: &[&str],
    argv: &[&str],
) -> (ProcessGuard, Vec<u16>) {
    let activate = require_program("systemd-socket-activate");
    let mut last = String::new();
    for _ in 0..3 {
        let chosen: Vec<u16> = (0..ports).map(|_| free_port()).collect();
        let mut cmd = Command::new(&activate);
        for (i, port) in chosen.iter().enumerate() {
            let host = if i == 0 { "127.0.0.1" } else { "[::1]" };
            cmd.arg(format!("--listen={host}:{port}"));
        }
        cmd.args(flags)
            .args(argv)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("stderr")).unwrap());
        let mut process = ProcessGuard::spawn("systemd-socket-activate", &mut cmd)
            .expect("starting systemd-socket-activate");
        let up = wait_until(Duration::from_secs(5), Duration::from_millis(20), || {
            is_listening(chosen[0]) || process.try_wait().is_some()
        });
        if up && process.try_wait().is_none() {
            return (process, chosen);
        }
        last = std::fs::read_to_string(dir.join("stderr")).unwrap_or_default();
    }
    panic!("systemd-socket-activate did not start: {last}");
}

/// The command of a unit's `ExecStart=` line, split on white space, its
/// `-` prefix (failure ignored) dropped.
pub fn exec_start(unit_text: &str) -> Vec<String> {
    let line = unit_text
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .unwrap_or_else(|| panic!("no ExecStart= in:\n{unit_text}"));
    line.trim_start_matches('-')
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

/// The service units `gen systemd` writes and the package installs, each
/// with the `systemd-socket-activate` flags that stand in for its socket
/// unit: `Accept=yes` with the connection on stdin for the template, a
/// listening socket on fd 3 for the daemon.
pub const SERVICE_UNITS: [(&str, &[&str]); 2] = [
    ("inetd-health@.service", &["--accept", "--inetd"]),
    ("inetd-health-daemon.service", &[]),
];

/// Runs the `ExecStart=` command of `unit_text` as systemd would for a
/// socket on one loopback port, with `flags` (from [`SERVICE_UNITS`]).
pub fn activate_unit(dir: &TempDir, unit_text: &str, flags: &[&str]) -> (ProcessGuard, u16) {
    let argv = exec_start(unit_text);
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let (process, ports) = socket_activate(dir, 1, flags, &argv);
    (process, ports[0])
}
