//! Failing closed, under a real xinetd and real tools: Nagios plugins from
//! Debian's monitoring-plugins-basic, a service running as `nobody`, the
//! default state directory, and systemd's socket activation (where the log
//! line goes to stderr, not syslog).
//!
//! Whatever the checker cannot decide is a 503 with its reason; nothing a
//! check prints reaches a body unless the operator asks.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use inetd_health_testkit::activate::socket_activate;
use inetd_health_testkit::client::{exchange, Exchange};
use inetd_health_testkit::http::Response;
use inetd_health_testkit::procs::{copy_executable, output_with_input, wait_until};
use inetd_health_testkit::tmp::TempDir;
use inetd_health_testkit::xinetd::Xinetd;

/// The binary under test, as Cargo built it for this package's tests.
const BIN: &str = env!("CARGO_BIN_EXE_inetd-health");

const IO_TIMEOUT: Duration = Duration::from_secs(10);
const GET: &[u8] = b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n";

/// Where Debian's monitoring-plugins-basic puts its plugins.
const PLUGINS: &str = "/usr/lib/nagios/plugins";

fn plugin(name: &str) -> String {
    let path = Path::new(PLUGINS).join(name);
    assert!(
        path.exists(),
        "{} not found: run scripts/test, which installs monitoring-plugins-basic",
        path.display()
    );
    path.to_str().unwrap().to_owned()
}

fn one_response(ex: &Exchange) -> Response {
    ex.assert_clean_close();
    Response::parse(&ex.bytes).unwrap_or_else(|e| panic!("{e}: {:?}", ex.text()))
}

fn get(xinetd: &Xinetd) -> Response {
    one_response(&exchange(xinetd.port(), GET, IO_TIMEOUT))
}

/// A directory other users may enter, for a service that runs as `nobody`.
fn open_dir(label: &str) -> TempDir {
    let dir = TempDir::new(label);
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

/// A copy of the binary under test that `nobody` can run, wherever the
/// build directory is (a CI clone may live under a private directory).
fn binary_in(dir: &TempDir) -> PathBuf {
    let copy = dir.join("inetd-health");
    copy_executable(Path::new(BIN), &copy);
    copy
}

fn uid_of(user: &str) -> u32 {
    let name = std::ffi::CString::new(user).unwrap();
    // getpwnam_r (through sys), not getpwnam: the tests run on parallel
    // threads, and getpwnam's one static record let the `nobody` test read
    // root's uid when the `root` test looked its user up at the same moment.
    match inetd_health::sys::user_ids(&name) {
        Ok(Some((uid, _))) => uid,
        other => panic!("no user {user}: {other:?}"),
    }
}

// --- Nagios plugins ------------------------------------------------------------------

/// Real plugins under `exec --nagios`: the status text is the reason, OK
/// and WARNING take traffic, CRITICAL does not, and `--warning-is-down`
/// takes a WARNING out. Without `--nagios` a WARNING's exit 1 is down.
#[test]
fn real_nagios_plugins_under_xinetd() {
    let disk = plugin("check_disk");
    let load = plugin("check_load");
    // Thresholds that cannot be met or cannot be missed, whatever the disk.
    let disk_ok = ["-w", "0%", "-c", "0%", "-p", "/"];
    let disk_warning = ["-w", "100%", "-c", "0%", "-p", "/"];
    let disk_critical = ["-w", "100%", "-c", "100%", "-p", "/"];
    let load_ok = ["-w", "1000,1000,1000", "-c", "2000,2000,2000"];
    let serve = |options: &[&str], plugin: &str, args: &[&str]| {
        let all: Vec<&str> = options
            .iter()
            .copied()
            .chain(["--", plugin])
            .chain(args.iter().copied())
            .collect();
        Xinetd::start(BIN, &all)
    };
    let nagios = ["exec", "--nagios"];
    let cases = [
        (
            serve(&nagios, &disk, &disk_ok),
            200,
            "healthy: DISK OK - free space: / ",
        ),
        (
            serve(&nagios, &load, &load_ok),
            200,
            "healthy: LOAD OK - total load average: ",
        ),
        (
            serve(&nagios, &disk, &disk_warning),
            200,
            "warning: DISK WARNING - free space: / ",
        ),
        (
            serve(
                &["--warning-is-down", "exec", "--nagios"],
                &disk,
                &disk_warning,
            ),
            503,
            "warning: DISK WARNING - free space: / ",
        ),
        (
            serve(&nagios, &disk, &disk_critical),
            503,
            "unhealthy: DISK CRITICAL - free space: / ",
        ),
        (
            serve(&["exec"], &disk, &disk_warning),
            503,
            "unhealthy: exit status 1",
        ),
    ];
    for (xinetd, status, body) in &cases {
        let r = get(xinetd);
        assert_eq!(r.status, *status, "{r:?}");
        r.assert_standard_headers();
        let text = r.body_text();
        assert!(text.starts_with(body), "{text:?}");
        // One line: the performance data is not part of the reason.
        assert_eq!(text.lines().count(), 1, "{text:?}");
        assert!(!text.contains('|'), "{text:?}");
    }

    // --once prints the status text and the performance data, and exits
    // with the plugin's code.
    let out = Command::new(BIN)
        .args(["--once", "exec", "--nagios", "--", &load])
        .args(load_ok)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with("OK: LOAD OK - total load average: "),
        "{text}"
    );
    assert!(text.contains(") | load1="), "{text}");
    assert_eq!(out.status.code(), Some(0));
}

// --- The service's user cannot see ------------------------------------------------

/// The disable file lives in a directory the service's user (`nobody`)
/// cannot search: its presence cannot be decided, so the node is out,
/// with the reason, never silently in.
#[test]
fn disable_file_that_the_service_user_cannot_see_is_503_with_the_reason() {
    let dir = open_dir("disable");
    let bin = binary_in(&dir);
    let private = dir.join("private");
    std::fs::create_dir(&private).unwrap();
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o700)).unwrap();
    let disable = private.join("disable");
    let disable_str = disable.to_str().unwrap();
    let args = ["--disable-file", disable_str, "exec", "--", "/bin/true"];

    let as_nobody = Xinetd::start_as(dir, "nobody", &bin, &args);
    let as_root = Xinetd::start_as(TempDir::new("disable-root"), "root", &bin, &args);
    let r = get(&as_nobody);
    // Which file and why go to the log, never to the client.
    assert_eq!(
        (r.status, r.body_text().as_str()),
        (503, "unknown: cannot check the disable file\n")
    );
    // root can look: absent, so healthy; present, so disabled.
    assert_eq!(get(&as_root).status, 200);
    std::fs::write(&disable, "").unwrap();
    let r = get(&as_root);
    assert_eq!(
        (r.status, r.body_text()),
        (
            503,
            format!("unhealthy: disabled by operator ({disable_str} exists)\n")
        )
    );
    assert_eq!(get(&as_nobody).status, 503);
}

// --- The default state directory ---------------------------------------------------

/// `--cache-ttl 1s` with no `--state-dir` under xinetd (no
/// `$RUNTIME_DIRECTORY` there): every poll answered 200, the check run
/// about once a second, the state kept in a private directory of the
/// service user's.
fn cache_without_a_state_dir(user: &str) {
    let uid = uid_of(user);
    let dir = open_dir("cache");
    let bin = binary_in(&dir);
    let runs = dir.join("runs");
    std::fs::write(&runs, "").unwrap();
    std::fs::set_permissions(&runs, std::fs::Permissions::from_mode(0o666)).unwrap();
    let script = dir.script("count", &format!("echo run >> {}", runs.display()));
    let script = script.to_str().unwrap().to_owned();
    let args = ["--cache-ttl", "1s", "exec", "--", &script];
    let xinetd = Xinetd::start_as(dir, user, &bin, &args);

    let start = Instant::now();
    let mut polls = 0;
    while start.elapsed() < Duration::from_millis(3200) {
        let r = get(&xinetd);
        assert_eq!(r.status, 200, "{r:?}");
        polls += 1;
        std::thread::sleep(Duration::from_millis(100));
    }
    let checks = std::fs::read_to_string(&runs).unwrap().lines().count();
    assert!(polls >= 20, "{polls} polls");
    assert!(
        (3..=5).contains(&checks),
        "{checks} checks for {polls} polls in 3.2 s with a 1 s TTL"
    );

    let state_dir = if uid == 0 {
        PathBuf::from("/run/inetd-health")
    } else {
        PathBuf::from(format!("/tmp/inetd-health-{uid}"))
    };
    let meta = std::fs::symlink_metadata(&state_dir)
        .unwrap_or_else(|e| panic!("{}: {e}", state_dir.display()));
    assert!(meta.is_dir());
    assert_eq!(meta.mode() & 0o777, 0o700, "{}", state_dir.display());
    assert_eq!(meta.uid(), uid);
    // The file is named after the check's identity, as the binary does.
    let spec = inetd_health::spec::Spec::new(inetd_health::spec::Kind::Exec {
        command: vec![script.clone().into()],
        nagios: false,
    });
    let file = state_dir.join(format!("inetd-health-{}.state", spec.identity()));
    let meta = std::fs::symlink_metadata(&file).unwrap_or_else(|e| {
        let there: Vec<_> = std::fs::read_dir(&state_dir)
            .map(|d| d.flatten().map(|e| e.file_name()).collect())
            .unwrap_or_default();
        panic!("{}: {e}; the directory holds {there:?}", file.display())
    });
    assert_eq!((meta.mode() & 0o777, meta.uid()), (0o600, uid));
    std::fs::remove_file(&file).unwrap();
}

#[test]
fn cache_ttl_without_state_dir_under_xinetd_as_root() {
    cache_without_a_state_dir("root");
}

#[test]
fn cache_ttl_without_state_dir_under_xinetd_as_nobody() {
    cache_without_a_state_dir("nobody");
}

// --- systemd's socket activation: the log goes to stderr -------------------------

/// Under `systemd-socket-activate --inetd` (what `Accept=yes` with
/// `StandardInput=socket` does) stderr is not the client's socket: the
/// connection's line goes there, and only the response goes on the wire.
#[test]
fn under_systemd_socket_activation_the_log_line_goes_to_stderr() {
    let dir = TempDir::new("activate");
    let stderr_path = dir.join("stderr");
    let (_process, ports) = socket_activate(
        &dir,
        1,
        &["--inetd", "--accept"],
        &[BIN, "exec", "--", "sh", "-c", "echo private-output; exit 2"],
    );
    let r = one_response(&exchange(ports[0], GET, IO_TIMEOUT));
    assert_eq!(
        (r.status, r.body_text().as_str()),
        (503, "unhealthy: exit status 2\n")
    );
    let want = "inetd-health: peer=127.0.0.1 method=GET path=/ status=503 reason=\"exit status 2\" duration=";
    let logged = wait_until(Duration::from_secs(5), Duration::from_millis(20), || {
        std::fs::read_to_string(&stderr_path)
            .unwrap_or_default()
            .contains(want)
    });
    let text = std::fs::read_to_string(&stderr_path).unwrap_or_default();
    assert!(logged, "stderr: {text}");
    assert!(text.contains(" detail=\"private-output\""), "{text}");
}

// --- The state files' owner ---------------------------------------------------------

/// `--cache-ttl 60s --state-dir D` over a check that fails and counts its
/// runs. A healthy record, fresh, mode 0600, at the very path of the
/// service's state file but owned by another user (65534) is not served:
/// whoever owns the file could write any verdict into it. It is ignored:
/// the check runs (uncached) and the poll answers what the backend is,
/// 503 `exit status 1` (the log's detail names the refusal), and the file
/// is left as it is. Handed back to the service's user, the same bytes are
/// served: the record is one the cache takes, and only its owner kept it
/// out.
#[test]
fn a_healthy_record_planted_by_another_user_is_not_served_under_xinetd() {
    let dir = TempDir::new("planted");
    let runs = dir.join("runs");
    std::fs::write(&runs, "").unwrap();
    let script = dir.script("down", &format!("echo run >> {}\nexit 1", runs.display()));
    let state_dir = dir.join("state");
    std::fs::create_dir(&state_dir).unwrap();
    std::fs::set_permissions(&state_dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    let args = [
        "--cache-ttl",
        "60s",
        "--state-dir",
        state_dir.to_str().unwrap(),
        "exec",
        "--",
        script.to_str().unwrap(),
    ];
    let xinetd = Xinetd::start_with(dir, BIN, &args);
    let run_count = || std::fs::read_to_string(&runs).unwrap().lines().count();

    // The first poll runs the check and leaves the state file, named by
    // the check's identity.
    let r = get(&xinetd);
    assert_eq!(
        (r.status, r.body_text().as_str()),
        (503, "unhealthy: exit status 1\n")
    );
    assert_eq!(run_count(), 1);
    let files: Vec<PathBuf> = std::fs::read_dir(&state_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let file = &files[0];
    assert!(
        file.to_str().unwrap().ends_with(".state"),
        "{}",
        file.display()
    );

    // Replaced by another user's healthy record, written as the cache
    // writes its own (crates/core/src/check/shared.rs, `encode`).
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    let record = format!(
        "inetd-health-state 2\n{}.{:09}\nhealthy\nplanted\n\n\n-\n",
        now.as_secs(),
        now.subsec_nanos()
    );
    std::fs::remove_file(file).unwrap();
    std::fs::write(file, &record).unwrap();
    std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::os::unix::fs::chown(file, Some(65534), Some(65534)).unwrap();

    for n in 2..=3 {
        let r = get(&xinetd);
        r.assert_standard_headers();
        assert_eq!(
            (r.status, r.body_text().as_str()),
            (503, "unhealthy: exit status 1\n")
        );
        assert_eq!(run_count(), n, "the check did not run");
    }
    // Why, in the log's detail: over a pipe (the same service, so the same
    // state file) the log line goes to stderr.
    let poll = output_with_input(Command::new(BIN).args(args), GET);
    assert!(
        poll.stdout.starts_with(b"HTTP/1.1 503 "),
        "{}",
        String::from_utf8_lossy(&poll.stdout)
    );
    let log = String::from_utf8_lossy(&poll.stderr);
    assert!(
        log.contains(" status=503 reason=\"exit status 1\" ")
            && log.contains(&format!(
                " detail=\"[state file {}: refused: owned by another user: ignored, the check ran uncached]\"",
                file.display()
            )),
        "{log}"
    );
    assert_eq!(run_count(), 4, "the check did not run");
    let meta = std::fs::symlink_metadata(file).unwrap();
    assert_eq!((meta.mode() & 0o7777, meta.uid()), (0o600, 65534));
    assert_eq!(std::fs::read_to_string(file).unwrap(), record);

    // The same bytes owned by the service's user (root here) are served:
    // the planted record was valid and fresh, refused for its owner alone.
    std::os::unix::fs::chown(file, Some(0), Some(0)).unwrap();
    let r = get(&xinetd);
    assert_eq!(r.status, 200, "{r:?}");
    assert!(
        r.body_text().starts_with("healthy: planted (cached, "),
        "{r:?}"
    );
    assert_eq!(run_count(), 4);
}
