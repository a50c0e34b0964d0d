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
