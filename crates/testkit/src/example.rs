//! The example config: six checks and four routes, as a database host has
//! them. The bench (`benches/xinetd.rs`) measures a poll of its `/` (the
//! cost of reading a config of this size is in docs/performance.md and
//! docs/design.md), and a test polls the same file, so the bench never
//! measures a config the binary refuses.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// The file [`write_example_config`] writes in its directory.
pub const EXAMPLE_CONFIG: &str = "config6.toml";

/// Writes the example config to `dir/`[`EXAMPLE_CONFIG`], mode 0644 (the
/// binary refuses a config others may write), and returns its path.
///
/// Six checks (tcp on `tcp_target`, `exec /bin/true`, a Nagios disk check,
/// mariadb, galera, replica) and four routes; `/` runs the tcp check alone.
/// The database checks name `/etc/mysql/monitor.cnf`, which need not exist:
/// they are built only when a route that names them is polled, and a poll
/// of `/` never reads their files.
pub fn write_example_config(dir: &Path, tcp_target: &str) -> PathBuf {
    let text = format!(
        r#"[defaults]
timeout = "2s"

[checks.port]
kind = "tcp"
target = "{tcp_target}"

[checks.true]
kind = "exec"
command = ["/bin/true"]

[checks.disk]
kind = "exec"
command = ["/usr/lib/nagios/plugins/check_disk", "-w", "10%", "-p", "/"]
nagios = true

[checks.db]
kind = "mariadb"
defaults-extra-file = "/etc/mysql/monitor.cnf"

[checks.galera]
kind = "galera"
defaults-extra-file = "/etc/mysql/monitor.cnf"
cache-ttl = "1s"

[checks.replica]
kind = "replica"
defaults-extra-file = "/etc/mysql/monitor.cnf"
max-lag = 30

[routes]
"/" = ["port"]
"/live" = ["db"]
"/ready" = ["galera", "disk", "port"]
"/replica" = ["replica", "true"]
"#
    );
    let path = dir.join(EXAMPLE_CONFIG);
    std::fs::write(&path, text).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
    path
}
