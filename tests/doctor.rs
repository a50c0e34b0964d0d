//! `doctor` against what it is for: the seed's shell scripts under a real
//! xinetd (the reset, the wrong length), our own service (nothing wrong),
//! an xinetd with `cps = 5 10` and one with xinetd's compiled-in `cps`
//! (the shutdown), a body with a timestamp (the unstable digest), a service
//! answering 405 to OPTIONS, one with no `/` route (a 404 for HAProxy's
//! default `OPTIONS /`), a port nothing listens on.

use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use inetd_health_testkit::mariadb::{Mariadb, MONITOR_USER};
use inetd_health_testkit::tmp::TempDir;
use inetd_health_testkit::xinetd::{Settings, Xinetd};

/// The binary under test, as Cargo built it for this package's tests.
const BIN: &str = env!("CARGO_BIN_EXE_inetd-health");

fn doctor(port: u16, extra: &[&str]) -> Output {
    Command::new(BIN)
        .args(["doctor", &format!("127.0.0.1:{port}")])
        .args(extra)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn floor(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../benches/floor")
        .join(name)
}

#[test]
fn the_seeds_hello_script_resets_and_lies_about_its_length() {
    let xinetd = Xinetd::start(floor("hello-healthcheck.sh"), &[]);
    let out = doctor(xinetd.port(), &[]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(t.contains("Content-Length 15 but 16 body bytes"), "{t}");
    assert!(
        t.contains(
            "connection reset after the response: the server exits with unread request bytes"
        ),
        "{t}"
    );
}

#[test]
fn the_seeds_mysqladmin_script_resets() {
    let db = Mariadb::shared();
    let dir = TempDir::new("doctor-db");
    let file = db.write_option_file(dir.path(), MONITOR_USER, Some(db.monitor_password()), 0o600);
    let xinetd = Xinetd::start(
        floor("mariadb-healthcheck.sh"),
        &[db.socket().to_str().unwrap(), file.to_str().unwrap()],
    );
    let out = doctor(xinetd.port(), &["--json"]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(t.starts_with("{\"target\":\"127.0.0.1:"), "{t}");
    assert!(t.contains("\"ok\":false"), "{t}");
    assert!(t.contains("connection reset after the response"), "{t}");
}

#[test]
fn our_service_is_clean() {
    let xinetd = Xinetd::start(BIN, &["exec", "--", "/bin/true"]);
    let out = doctor(xinetd.port(), &[]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(t.ends_with("every poller would be satisfied\n"), "{t}");
    assert!(!t.contains("FAIL"), "{t}");
}

#[test]
fn a_body_with_a_timestamp_flaps_keepalived_digests() {
    let xinetd = Xinetd::start(BIN, &["--show-output", "exec", "--", "date", "+%s%N"]);
    let t = text(&doctor(xinetd.port(), &[]));
    assert!(
        t.contains("body differs between polls: keepalived digest will flap"),
        "{t}"
    );
}

#[test]
fn a_405_for_options_fails_haproxys_default_check() {
    let dir = TempDir::new("doctor-405");
    let script = dir.script(
        "only-get",
        "read line\n\
         case \"$line\" in\n\
         OPTIONS*) printf 'HTTP/1.1 405 Method Not Allowed\\r\\nContent-Length: 0\\r\\nConnection: close\\r\\n\\r\\n';;\n\
         *) printf 'HTTP/1.1 200 OK\\r\\nContent-Length: 3\\r\\nConnection: close\\r\\n\\r\\nok\\n';;\n\
         esac",
    );
    let xinetd = Xinetd::start_with(dir, &script, &[]);
    let out = doctor(xinetd.port(), &[]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(
        t.contains("405 for OPTIONS: HAProxy's default check will fail"),
        "{t}"
    );
}

/// A private xinetd serving `inetd-health exec -- /bin/true` on a free
/// loopback port, with `cps` as given: none at all (neither in `defaults`
/// nor in the service) leaves xinetd's compiled-in `cps = 50 10`.
fn xinetd_with_cps(dir: TempDir, cps: Option<&str>) -> Xinetd {
    let settings = Settings {
        cps: cps.map(str::to_string),
        instances: "UNLIMITED".to_string(),
        flags: "REUSE".to_string(),
        ..Settings::default()
    };
    let xinetd = Xinetd::try_start(dir, Path::new(BIN), &["exec", "--", "/bin/true"], &settings)
        .unwrap_or_else(|e| panic!("{e}"));
    let conf = std::fs::read_to_string(xinetd.dir().join("xinetd.conf")).unwrap();
    let cps_lines = conf
        .lines()
        .filter(|l| l.trim_start().starts_with("cps"))
        .count();
    assert_eq!(cps_lines, usize::from(cps.is_some()), "{conf}");
    xinetd
}

/// xinetd with `cps = 5 10`: the burst finds the service gone dark.
#[test]
fn a_low_cps_shuts_the_service_down_under_a_burst() {
    let xinetd = xinetd_with_cps(TempDir::new("doctor-cps"), Some("5 10"));
    let out = doctor(xinetd.port(), &[]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(
        t.contains("the service stopped answering after")
            && t.contains("this looks like xinetd's `cps` limit"),
        "{t}"
    );
    drop(xinetd);
}

/// xinetd's compiled-in `cps = 50 10` (no `cps` line anywhere): the burst
/// opens its 150 connections at once, as a fleet of pollers does; xinetd
/// answers 50, shuts the service down for 10 s, and doctor says so, waits
/// for it to come back, and polls on.
#[test]
fn xinetds_default_cps_shuts_the_service_down_under_a_burst() {
    let xinetd = xinetd_with_cps(TempDir::new("doctor-default-cps"), None);
    let out = doctor(xinetd.port(), &[]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(t.contains("FAIL burst: 150 connections at once"), "{t}");
    assert!(t.contains("this looks like xinetd's `cps` limit"), "{t}");
    assert!(
        t.contains("set `cps = 200 5` or larger, and `instances`"),
        "{t}"
    );
    // It came back within doctor's wait, and the pollers after the burst
    // were satisfied: only the burst failed.
    assert_eq!(t.matches("FAIL").count(), 1, "{t}");
    assert!(t.contains("refused connections for "), "{t}");
    drop(xinetd);
}

/// A port bound on 127.0.0.1 and not listening, held for the test: a
/// connection to it is refused, and no other test can take it meanwhile.
fn closed_port() -> (u16, OwnedFd) {
    // SAFETY: socket(2) with constant arguments; the descriptor is owned
    // at once.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
    assert!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
    // SAFETY: fd is a fresh descriptor of ours.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let sin = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: 0,
        sin_addr: libc::in_addr {
            s_addr: u32::from(Ipv4Addr::LOCALHOST).to_be(),
        },
        sin_zero: [0; 8],
    };
    // SAFETY: bind(2) with a valid sockaddr_in and its size.
    let rc = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&sin as *const libc::sockaddr_in).cast(),
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0, "bind: {}", std::io::Error::last_os_error());
    let mut bound: libc::sockaddr_in = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    // SAFETY: getsockname(2) into a sockaddr_in of the given size.
    let rc = unsafe {
        libc::getsockname(
            fd.as_raw_fd(),
            (&mut bound as *mut libc::sockaddr_in).cast(),
            &mut len,
        )
    };
    assert_eq!(rc, 0, "getsockname: {}", std::io::Error::last_os_error());
    let port = u16::from_be(bound.sin_port);
    let refused = TcpStream::connect_timeout(
        &SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
        Duration::from_secs(2),
    );
    assert!(
        refused
            .as_ref()
            .is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionRefused),
        "{refused:?}"
    );
    (port, fd)
}

/// Nothing listens: every poller says so, nothing blames `cps`, and no
/// digest of an empty body is printed.
#[test]
fn a_closed_port_is_nothing_listening() {
    let (port, _held) = closed_port();
    let out = doctor(port, &[]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    let nothing = format!("nothing listens on 127.0.0.1:{port} (connection refused)");
    let pollers = t.lines().filter(|l| l.starts_with("FAIL ")).count();
    assert_eq!(pollers, 6, "every poller fails:\n{t}");
    assert_eq!(t.matches(&nothing).count(), pollers, "each says why:\n{t}");
    assert!(!t.contains("cps"), "{t}");
    assert!(!t.contains("digest"), "{t}");
    assert!(!t.contains("d41d8cd98f00b204e9800998ecf8427e"), "{t}");
}

/// Our service with routes and no `/`: HAProxy's bare `option httpchk`
/// asks for `OPTIONS /` whatever PATH doctor was given, gets a 404, and
/// doctor says why it polled `/` and what to write instead.
#[test]
fn a_404_for_options_slash_is_explained_with_a_path() {
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new("doctor-404");
    let config = dir.join("config.toml");
    std::fs::write(
        &config,
        "[checks.ok]\nkind = \"exec\"\ncommand = [\"/bin/true\"]\n\n\
         [routes]\n\"/live\" = [\"ok\"]\n\"/ready\" = [\"ok\"]\n",
    )
    .unwrap();
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o644)).unwrap();
    let config = config.to_str().unwrap().to_owned();
    let xinetd = Xinetd::start_with(dir, BIN, &["--config", &config]);
    let out = doctor(xinetd.port(), &["/ready"]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    let default_check = t
        .split("\nok   ")
        .next()
        .filter(|l| l.starts_with("FAIL haproxy default (OPTIONS / HTTP/1.0): 404"))
        .unwrap_or_else(|| panic!("the default check's lines first:\n{t}"));
    for said in [
        "note: polls OPTIONS /, not /ready: HAProxy's bare `option httpchk` sends OPTIONS /",
        "404 for OPTIONS: HAProxy's default check will fail",
        "HAProxy's bare `option httpchk` sends OPTIONS /; this endpoint answers 404 there: \
         use `http-check send meth GET uri /ready`",
    ] {
        assert!(default_check.contains(said), "{said:?} in:\n{t}");
    }
    // Every poller that asks for /ready is satisfied.
    assert_eq!(t.matches("FAIL").count(), 1, "{t}");
}
