//! Debian's classic super-servers, each private on a free loopback port:
//! openbsd-inetd (`/usr/sbin/inetd`) with an inetd.conf of the test's own,
//! and ipsvd's `tcpsvd`.

use std::ffi::OsStr;
use std::path::Path;
use std::process::Command;

use crate::client::free_port;
use crate::procs::{require_program, ProcessGuard};
use crate::tcpserver::spawn_named;

/// openbsd-inetd in the foreground (`-i`) with `dir/inetd.conf` holding
/// the line `line(port)` writes for a free port, its stderr in
/// `dir/stderr`: the process and the port. A port taken between choosing
/// and binding it is tried again, three times.
///
/// The program is `INETD_HEALTH_TEST_INETD` when set (`scripts/test` sets
/// it to openbsd-inetd's inetd unpacked from Debian's package, which
/// cannot be installed beside xinetd), else `inetd` on the path.
///
/// # Panics
/// inetd is missing, or does not start.
pub fn start_inetd(dir: &Path, line: impl Fn(u16) -> String) -> (ProcessGuard, u16) {
    let inetd = match std::env::var_os("INETD_HEALTH_TEST_INETD") {
        Some(path) => {
            let path = std::path::PathBuf::from(path);
            assert!(
                path.is_file(),
                "INETD_HEALTH_TEST_INETD={}: no such program (run scripts/test, which unpacks it)",
                path.display()
            );
            path
        }
        None => require_program("inetd"),
    };
    let conf = dir.join("inetd.conf");
    let mut last = String::new();
    for _ in 0..3 {
        let port = free_port();
        std::fs::write(&conf, line(port))
            .unwrap_or_else(|e| panic!("writing {}: {e}", conf.display()));
        let mut cmd = Command::new(&inetd);
        // -d: one line per connection on stderr (the test reads them); -i:
        // stay in the foreground, a child of the test, stopped by pid.
        cmd.arg("-d").arg("-i").arg(&conf);
        match spawn_named("inetd", &mut cmd, port, &dir.join("stderr")) {
            Ok(process) => return (process, port),
            Err(stderr) => last = stderr,
        }
    }
    panic!("inetd did not start: {last}");
}

/// ipsvd's `tcpsvd -v 127.0.0.1 PORT SERVER…` on a free port, its stderr
/// in `dir/stderr`: the process and the port.
///
/// # Panics
/// tcpsvd is missing (`scripts/test` installs ipsvd), or does not start.
pub fn start_tcpsvd<S: AsRef<OsStr>>(dir: &Path, server: &[S]) -> (ProcessGuard, u16) {
    let tcpsvd = require_program("tcpsvd");
    let mut last = String::new();
    for _ in 0..3 {
        let port = free_port();
        let mut cmd = Command::new(&tcpsvd);
        cmd.args(["-v", "127.0.0.1", &port.to_string()])
            .args(server);
        match spawn_named("tcpsvd", &mut cmd, port, &dir.join("stderr")) {
            Ok(process) => return (process, port),
            Err(stderr) => last = stderr,
        }
    }
    panic!("tcpsvd did not start: {last}");
}
