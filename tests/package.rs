//! The Debian package as an operator installs it: `scripts/package` (which
//! `scripts/test` runs first) builds target/debian/*.deb; this test
//! installs it with dpkg, runs the installed binary under a real xinetd and
//! from the installed units' `ExecStart=` lines (through
//! `systemd-socket-activate`), then removes it and checks that nothing but
//! the config file is left, and purges that.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use support::activate::{activate_unit, SERVICE_UNITS};
use support::client::exchange;
use support::http::Response;
use support::procs::stdout_of;
use support::tmp::TempDir;
use support::xinetd::Xinetd;

const IO_TIMEOUT: Duration = Duration::from_secs(10);
const GET: &[u8] = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
const CONFFILE: &str = "/etc/inetd-health/config.toml";

fn the_package() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/debian");
    let debs: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| {
            panic!(
                "{}: {e}: run scripts/package (scripts/test does)",
                dir.display()
            )
        })
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "deb"))
        .collect();
    assert_eq!(debs.len(), 1, "one package in {}: {debs:?}", dir.display());
    debs.into_iter().next().unwrap()
}

fn dpkg(args: &[&str]) -> String {
    let out = Command::new("dpkg").args(args).output().expect("dpkg");
    assert!(
        out.status.success(),
        "dpkg {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// One valid HTTP answer (200 or 503: the example config checks a port
/// that may be closed) on a clean close.
fn answers(port: u16) -> u16 {
    let ex = exchange(port, GET, IO_TIMEOUT);
    ex.assert_clean_close();
    let r = Response::parse(&ex.bytes).unwrap_or_else(|e| panic!("{e}: {:?}", ex.text()));
    assert!(r.status == 200 || r.status == 503, "{r:?}");
    r.status
}

#[test]
fn install_run_under_xinetd_and_the_units_then_remove() {
    let deb = the_package();
    dpkg(&["-i", deb.to_str().unwrap()]);
    let files: Vec<String> = dpkg(&["-L", "inetd-health"])
        .lines()
        .map(str::to_owned)
        .collect();
    for want in [
        "/usr/bin/inetd-health",
        "/usr/share/man/man1/inetd-health.1.gz",
        "/usr/share/bash-completion/completions/inetd-health",
        CONFFILE,
        "/lib/systemd/system/inetd-health.socket",
        "/lib/systemd/system/inetd-health@.service",
        "/lib/systemd/system/inetd-health-daemon.socket",
        "/lib/systemd/system/inetd-health-daemon.service",
        "/usr/lib/tmpfiles.d/inetd-health.conf",
        "/usr/share/doc/inetd-health/xinetd.example",
    ] {
        assert!(
            files.iter().any(|f| f == want),
            "{want} not installed: {files:?}"
        );
    }
    let installed = Path::new("/usr/bin/inetd-health");
    // The installed config is accepted as it is.
    stdout_of(Command::new(installed).args(["--config", CONFFILE, "--check-config"]));

    // Under xinetd, as the shipped stanza has it.
    let xinetd = Xinetd::start_server(installed, &["--config", CONFFILE]);
    answers(xinetd.port());
    drop(xinetd);

    // From the installed units' ExecStart lines.
    for (unit, flags) in SERVICE_UNITS {
        let text = std::fs::read_to_string(Path::new("/lib/systemd/system").join(unit)).unwrap();
        let dir = TempDir::new("package");
        let (mut process, port) = activate_unit(&dir, &text, flags);
        answers(port);
        answers(port);
        process.stop();
    }

    // Removal leaves nothing of the package but its conffile; purging
    // takes that too.
    dpkg(&["-r", "inetd-health"]);
    let left: Vec<&String> = files
        .iter()
        .filter(|f| Path::new(f).is_file() && f.as_str() != CONFFILE)
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
    assert!(
        Path::new(CONFFILE).exists(),
        "the conffile stays after dpkg -r"
    );
    dpkg(&["--purge", "inetd-health"]);
    assert!(!Path::new(CONFFILE).exists());
}
