//! A private ucspi-tcp `tcpserver` on a free loopback port, started and
//! waited for the same way by every test that runs one.

use std::ffi::OsStr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::client::{free_port, is_listening};
use crate::procs::{read_or_empty, require_program, wait_until, ProcessGuard};

/// Spawns `cmd` (a tcpserver command line that listens on `port`), its
/// stderr in `stderr`, and waits until the port listens.
///
/// # Errors
/// tcpserver exited, or did not listen within 5 s: what it said on stderr.
pub fn spawn(cmd: &mut Command, port: u16, stderr: &Path) -> Result<ProcessGuard, String> {
    spawn_named("tcpserver", cmd, port, stderr)
}

/// [`spawn`] for any super-server that listens on `port`, named `name` in
/// messages (inetd, tcpsvd).
///
/// # Errors
/// It exited, or did not listen within 5 s: what it said on stderr.
pub fn spawn_named(
    name: &str,
    cmd: &mut Command,
    port: u16,
    stderr: &Path,
) -> Result<ProcessGuard, String> {
    let file = std::fs::File::create(stderr)
        .unwrap_or_else(|e| panic!("creating {}: {e}", stderr.display()));
    let mut process = ProcessGuard::spawn(
        name,
        cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(file),
    )
    .map_err(|e| format!("spawning {name}: {e}"))?;
    let up = wait_until(Duration::from_secs(5), Duration::from_millis(20), || {
        is_listening(port) || process.try_wait().is_some()
    });
    if up && process.try_wait().is_none() {
        Ok(process)
    } else {
        Err(read_or_empty(stderr))
    }
}

/// `tcpserver -RHl0 127.0.0.1 PORT SERVER…` on a free port, its stderr in
/// `dir/stderr`: the process and the port. A port taken between choosing
/// and binding it is tried again, three times.
///
/// # Panics
/// tcpserver is missing, or does not start.
pub fn start<S: AsRef<OsStr>>(dir: &Path, server: &[S]) -> (ProcessGuard, u16) {
    let tcpserver = require_program("tcpserver");
    let mut last = String::new();
    for _ in 0..3 {
        let port = free_port();
        let mut cmd = Command::new(&tcpserver);
        cmd.args(["-RHl0", "127.0.0.1", &port.to_string()])
            .args(server);
        match spawn(&mut cmd, port, &dir.join("stderr")) {
            Ok(process) => return (process, port),
            Err(stderr) => last = stderr,
        }
    }
    panic!("tcpserver did not start: {last}");
}
