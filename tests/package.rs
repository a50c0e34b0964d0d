//! The Debian package as an operator installs it: `scripts/package` (which
//! `scripts/test` runs first) builds target/debian/*.deb; these tests check
//! it with lintian, install it with dpkg (which creates the system user
//! `inetd-health`), check the units and files it installs, run the
//! installed binary under a real xinetd with the shipped stanza and from
//! the installed units' `ExecStart=` lines (through
//! `systemd-socket-activate`, as the units' user), then remove it and check
//! that nothing but the config file is left, and purge that and the user.

use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use inetd_health_testkit::activate::{exec_start, socket_activate, SERVICE_UNITS};
use inetd_health_testkit::client::{exchange, free_port};
use inetd_health_testkit::http::Response;
use inetd_health_testkit::procs::{all_pids, cmdline_of, require_program, stdout_of, wait_until};
use inetd_health_testkit::tmp::TempDir;
use inetd_health_testkit::xinetd::run_config;

const IO_TIMEOUT: Duration = Duration::from_secs(10);
const GET: &[u8] = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
const CONFFILE: &str = "/etc/inetd-health/config.toml";
/// The package's system user and group.
const USER: &str = "inetd-health";
/// Its state directory, shared by the units and the xinetd stanza.
const STATE_DIR: &str = "/run/inetd-health";
const UNIT_DIR: &str = "/lib/systemd/system";
const UNITS: [&str; 4] = [
    "inetd-health.socket",
    "inetd-health@.service",
    "inetd-health-daemon.socket",
    "inetd-health-daemon.service",
];
const STANZA: &str = "/usr/share/doc/inetd-health/xinetd.example";

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

/// What `dpkg args` printed on stdout, once it has succeeded; what it and
/// the maintainer scripts printed on stderr goes to the test's stderr.
fn dpkg(args: &[&str]) -> String {
    let out = Command::new("dpkg").args(args).output().expect("dpkg");
    assert!(
        out.status.success(),
        "dpkg {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprint!("{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The fields of `key`'s entry in the `database` (passwd, group), or
/// `None` when there is none.
fn getent(database: &str, key: &str) -> Option<Vec<String>> {
    let out = Command::new("getent")
        .args([database, key])
        .output()
        .expect("getent");
    out.status.success().then(|| {
        String::from_utf8_lossy(&out.stdout)
            .trim_end()
            .split(':')
            .map(str::to_owned)
            .collect()
    })
}

/// Runs a program that must succeed (userdel, groupdel).
fn run(program: &str, args: &[&str]) {
    stdout_of(Command::new(require_program(program)).args(args));
}

/// The processes running as `uid` (zombies too: userdel counts them).
fn processes_of(uid: u32) -> Vec<(u32, String)> {
    all_pids()
        .into_iter()
        .filter(|pid| std::fs::metadata(format!("/proc/{pid}")).is_ok_and(|m| m.uid() == uid))
        .map(|pid| (pid, cmdline_of(pid).unwrap_or_default()))
        .collect()
}

/// Whether `text` (a unit file) has the line `line`, white space around it
/// aside.
fn has_line(text: &str, line: &str) -> bool {
    text.lines().any(|l| l.trim() == line)
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

/// The package passes Debian's own checker: no error and no warning
/// (what it flags and the package intends is overridden, with the reason,
/// in packaging/lintian-overrides).
#[test]
fn lintian_reports_no_error_or_warning() {
    let deb = the_package();
    let out = Command::new(require_program("lintian"))
        .args(["--fail-on", "error,warning"])
        .arg(&deb)
        .output()
        .expect("lintian");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let flagged: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("E:") || l.starts_with("W:"))
        .collect();
    assert!(
        out.status.success() && flagged.is_empty(),
        "lintian {} ({}): {flagged:#?}\n{text}",
        deb.display(),
        out.status
    );
}

/// Start from a machine without the package or its user, so that what the
/// test finds after `dpkg -i` is the package's doing: a leftover install
/// is purged, and a user of that name that something else created
/// (tests/gen.rs creates it as the postinst would) is removed, and so is
/// a state directory left behind.
fn without_package_or_user() {
    let installed = Command::new("dpkg-query")
        .args(["-W", "-f=${db:Status-Status}", "inetd-health"])
        .output()
        .expect("dpkg-query");
    if !String::from_utf8_lossy(&installed.stdout).trim().is_empty() {
        dpkg(&["--purge", "inetd-health"]);
    }
    if getent("passwd", USER).is_some() {
        run("userdel", &[USER]);
    }
    if getent("group", USER).is_some() {
        run("groupdel", &[USER]);
    }
    if Path::new(STATE_DIR).exists() {
        std::fs::remove_dir_all(STATE_DIR).unwrap();
    }
}

#[test]
fn install_run_under_xinetd_and_the_units_then_remove() {
    let deb = the_package();
    without_package_or_user();
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
        STANZA,
        "/usr/share/doc/inetd-health/changelog.Debian.gz",
        "/usr/share/lintian/overrides/inetd-health",
    ] {
        assert!(
            files.iter().any(|f| f == want),
            "{want} not installed: {files:?}"
        );
    }
    let installed = Path::new("/usr/bin/inetd-health");

    // The binary is stripped: no symbol table, no debug sections.
    let sections = stdout_of(Command::new(require_program("readelf")).args([
        "-S",
        "--wide",
        installed.to_str().unwrap(),
    ]));
    assert!(
        !sections.contains(" .symtab ") && !sections.contains(" .debug_"),
        "{} is not stripped:\n{sections}",
        installed.display()
    );

    // The package created its system user and group.
    let user = getent("passwd", USER).unwrap_or_else(|| panic!("no user {USER} after dpkg -i"));
    let uid: u32 = user[2].parse().unwrap();
    assert!(
        (1..1000).contains(&uid),
        "{USER} is not a system user: {user:?}"
    );
    let group = getent("group", USER).unwrap_or_else(|| panic!("no group {USER} after dpkg -i"));
    assert_eq!(
        user[3], group[2],
        "{USER}'s primary group: {user:?} {group:?}"
    );
    assert!(user[6].ends_with("nologin"), "{USER} has a shell: {user:?}");

    // Its state directory, private to it.
    let state = std::fs::metadata(STATE_DIR).unwrap_or_else(|e| panic!("{STATE_DIR}: {e}"));
    assert!(
        state.is_dir() && state.uid() == uid && state.mode() & 0o7777 == 0o700,
        "{STATE_DIR}: uid {} mode {:o}",
        state.uid(),
        state.mode()
    );

    // The config is the user's to read, and no one's but root's to write.
    let conf = std::fs::metadata(CONFFILE).unwrap();
    assert_eq!(
        conf.permissions().mode() & 0o022,
        0,
        "{CONFFILE} writable by group or others"
    );
    let read = stdout_of(
        Command::new(require_program("runuser")).args(["-u", USER, "--", "cat", CONFFILE]),
    );
    assert_eq!(read, std::fs::read_to_string(CONFFILE).unwrap());
    // And it is accepted as it is, by that user.
    stdout_of(Command::new(require_program("runuser")).args([
        "-u",
        USER,
        "--",
        installed.to_str().unwrap(),
        "--config",
        CONFFILE,
        "--check-config",
    ]));

    // The units run as that user (never a DynamicUser, whose uid changes
    // from one instance to the next), the long-lived one restarts on
    // failure, the sockets queue as many connections as the kernel allows;
    // systemd finds nothing wrong with them (verified while installed:
    // it refuses a User= that does not exist).
    let analyze = require_program("systemd-analyze");
    for unit in UNITS {
        let path = Path::new(UNIT_DIR).join(unit);
        let text = std::fs::read_to_string(&path).unwrap();
        if unit.ends_with(".service") {
            assert!(
                has_line(&text, &format!("User={USER}"))
                    && has_line(&text, &format!("Group={USER}"))
                    && !text.lines().any(|l| l.trim().starts_with("DynamicUser=")),
                "{unit}:\n{text}"
            );
        } else {
            assert!(has_line(&text, "Backlog=4096"), "{unit}:\n{text}");
        }
        if unit == "inetd-health-daemon.service" {
            assert!(has_line(&text, "Restart=on-failure"), "{unit}:\n{text}");
        }
        let out = Command::new(&analyze)
            .args(["verify", path.to_str().unwrap()])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && err.trim().is_empty(),
            "systemd-analyze verify {unit}: {err}"
        );
    }

    // Under xinetd, with the shipped stanza as it is but for disable and
    // the port: it runs as the package's user.
    let stanza = std::fs::read_to_string(STANZA).unwrap();
    let port = free_port();
    let mut service = String::new();
    let mut runs_as = None;
    for line in stanza.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["disable", "=", _] => service.push_str("\tdisable = no\n"),
            ["port", "=", _] => service.push_str(&format!("\tport = {port}\n")),
            rest => {
                if let ["user", "=", name] = rest {
                    runs_as = Some(name.to_string());
                }
                service.push_str(line);
                service.push('\n');
            }
        }
    }
    assert_eq!(runs_as.as_deref(), Some(USER), "{STANZA}:\n{stanza}");
    let dir = TempDir::new("package");
    let conf = format!(
        "defaults\n{{\n\tlog_type = FILE {}\n\tlog_on_success = PID EXIT\n}}\n{service}",
        dir.join("xinetd.log").display()
    );
    let mut xinetd = run_config(&dir, &conf, port);
    answers(port);
    xinetd.stop();

    // From the installed units' ExecStart lines, as their User= and with
    // their RuntimeDirectory=.
    for (unit, flags) in SERVICE_UNITS {
        let text = std::fs::read_to_string(Path::new(UNIT_DIR).join(unit)).unwrap();
        let dir = TempDir::new("package");
        let as_user = [
            format!("--reuid={USER}"),
            format!("--regid={USER}"),
            "--init-groups".to_owned(),
        ];
        let setpriv = require_program("setpriv");
        let argv: Vec<String> = [setpriv.to_str().unwrap().to_owned()]
            .into_iter()
            .chain(as_user)
            .chain(exec_start(&text))
            .collect();
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        let env = format!("--setenv=RUNTIME_DIRECTORY={STATE_DIR}");
        let flags: Vec<&str> = flags.iter().copied().chain([env.as_str()]).collect();
        let (mut process, ports) = socket_activate(&dir, 1, &flags, &argv);
        answers(ports[0]);
        answers(ports[0]);
        process.stop();
    }

    // Removal leaves nothing of the package but its conffile (and the
    // user); purging takes that too, and the user, its group and its
    // state directory.
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
    assert!(getent("passwd", USER).is_some(), "dpkg -r removed {USER}");
    // The servers started above have exited (each connection's within its
    // drain), as they have once prerm stopped the units: userdel refuses a
    // user that a process runs as.
    let idle = wait_until(Duration::from_secs(10), Duration::from_millis(20), || {
        processes_of(uid).is_empty()
    });
    assert!(idle, "still running as {USER}: {:?}", processes_of(uid));
    dpkg(&["--purge", "inetd-health"]);
    assert!(!Path::new(CONFFILE).exists());
    assert_eq!(getent("passwd", USER), None, "{USER} left after purge");
    assert_eq!(getent("group", USER), None, "group {USER} left after purge");
    assert!(
        !Path::new(STATE_DIR).exists(),
        "{STATE_DIR} left after purge"
    );
}
