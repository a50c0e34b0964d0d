//! The `mariadb` check against real MariaDB servers (docs/mariadb.md says
//! what it does).
//!
//! Servers come from `inetd_health_testkit::mariadb`: one shared server for every test
//! that leaves it running and untouched ([`Mariadb::shared`], stopped at
//! process exit), and a private one for each test that stops it, pauses it
//! (SIGSTOP), or needs its counters and error log to itself. The binary is
//! driven over pipes (as tests/pipes.rs does: the response on stdout, the log
//! line on stderr) and under a real xinetd, with a real HAProxy for the
//! DOWN/UP test. A missing mariadbd, xinetd or haproxy fails the test (run
//! `scripts/test`, which installs them); nothing is skipped.

use std::os::unix::net::UnixListener;
use std::path::Path;
use std::time::{Duration, Instant};

use inetd_health_testkit::client::exchange;
use inetd_health_testkit::haproxy::{Haproxy, ServerState};
use inetd_health_testkit::http::Response;
use inetd_health_testkit::mariadb::{write_option_file_text, Mariadb, MONITOR_USER};
use inetd_health_testkit::procs::{
    all_pids, cmdline_of, processes_matching, require_program, unique_digits, wait_until,
};
use inetd_health_testkit::run::{check, path_str, run_with_input, strings, Run, GET};
use inetd_health_testkit::tmp::TempDir;
use inetd_health_testkit::xinetd::Xinetd;

/// The binary under test, as Cargo built it for this package's tests.
const BIN: &str = env!("CARGO_BIN_EXE_inetd-health");

/// Bound on one exchange with xinetd.
const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// "At once": a refused connection or a missing socket, answered well under
/// the default 2 s deadline (process start included, on a loaded machine).
const AT_ONCE: Duration = Duration::from_millis(1000);
/// The server bumps its counters and writes its error log when the
/// connection's thread ends, just after the client has gone.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(5);
/// HAProxy's check interval in support/haproxy.rs (`inter 200ms fall 2 rise 2`).
const HAPROXY_INTER: Duration = Duration::from_millis(200);
/// Slack on top of two check intervals: the check itself, HAProxy's
/// scheduling, and the 50 ms polling of its stats socket.
const HAPROXY_MARGIN: Duration = Duration::from_millis(600);

/// `[OPTIONS...] mariadb --socket S [--defaults-extra-file F]`.
fn over_socket(options: &[&str], db: &Mariadb, file: Option<&Path>) -> Vec<String> {
    let mut args = strings(options);
    args.extend(["mariadb".into(), "--socket".into(), path_str(db.socket())]);
    if let Some(file) = file {
        args.extend(["--defaults-extra-file".into(), path_str(file)]);
    }
    args
}

/// `[OPTIONS...] mariadb --host 127.0.0.1 --port P [--defaults-extra-file F]`.
fn over_tcp(options: &[&str], db: &Mariadb, file: Option<&Path>) -> Vec<String> {
    let mut args = strings(options);
    args.extend(strings(&["mariadb", "--host", "127.0.0.1", "--port"]));
    args.push(db.port().to_string());
    if let Some(file) = file {
        args.extend(["--defaults-extra-file".into(), path_str(file)]);
    }
    args
}

/// The monitor user's credentials in a 0600 option file.
fn monitor_file(db: &Mariadb, dir: &TempDir) -> std::path::PathBuf {
    db.write_option_file(dir.path(), MONITOR_USER, Some(db.monitor_password()), 0o600)
}

// --- Assertions ------------------------------------------------------------------

/// A 200 with exactly `body`, exit 0, and one log line saying status=200.
fn assert_200(run: &Run, body: &str) {
    let r = run.response();
    assert_eq!(
        r.status_line, "HTTP/1.1 200 OK",
        "{r:?}; stderr: {}",
        run.stderr
    );
    r.assert_standard_headers();
    assert_eq!(r.body_text(), body, "stderr: {}", run.stderr);
    assert_eq!(run.code, Some(0), "exit code; stderr: {}", run.stderr);
    assert_one_log_line(run, 200);
}

/// A 503 with exactly `body`, exit 0, and one log line saying status=503.
fn assert_503(run: &Run, body: &str) {
    let r = run.response();
    assert_eq!(
        r.status_line, "HTTP/1.1 503 Service Unavailable",
        "{r:?}; stderr: {}",
        run.stderr
    );
    r.assert_standard_headers();
    assert_eq!(r.body_text(), body, "stderr: {}", run.stderr);
    assert_eq!(run.code, Some(0), "exit code; stderr: {}", run.stderr);
    assert_one_log_line(run, 503);
}

fn assert_one_log_line(run: &Run, status: u16) {
    assert_eq!(run.stderr.lines().count(), 1, "log: {}", run.stderr);
    assert!(
        run.stderr
            .starts_with("inetd-health: peer=- method=GET path=/health ")
            && run.stderr.contains(&format!(" status={status} ")),
        "log: {}",
        run.stderr
    );
}

fn greeting_body(db: &Mariadb) -> String {
    format!("healthy: MariaDB {} is alive (greeting)\n", db.version())
}

fn ping_body(db: &Mariadb) -> String {
    format!(
        "healthy: MariaDB {} is alive (login and ping)\n",
        db.version()
    )
}

/// Waits (bounded) until `read` returns `want`; returns the last value read.
fn settle_at(want: u64, mut read: impl FnMut() -> u64) -> u64 {
    let mut last = read();
    wait_until(SETTLE_TIMEOUT, Duration::from_millis(50), || {
        last = read();
        last >= want
    });
    // Nothing more may arrive: look again a little later.
    std::thread::sleep(Duration::from_millis(200));
    read().max(last)
}

// --- The fixture -----------------------------------------------------------------

#[test]
fn fixture_serves_sql_as_root_and_the_monitor_user_exists() {
    let db = Mariadb::shared();
    let version = db.version();
    assert!(
        version.starts_with(|c: char| c.is_ascii_digit()) && version.contains("MariaDB"),
        "SELECT VERSION() gave {version:?}"
    );
    assert!(!version.starts_with("5.5.5-"), "{version}");
    let users = db.sql(&format!(
        "SELECT CONCAT(user, '@', host, ' ', plugin) FROM mysql.user \
         WHERE user = '{MONITOR_USER}' ORDER BY host;"
    ));
    assert_eq!(
        users.lines().collect::<Vec<_>>(),
        [
            "monitor@127.0.0.1 mysql_native_password",
            "monitor@localhost mysql_native_password"
        ],
        "{users}"
    );
    assert!(db.pid() > 0);
    assert!(db.error_log_lines_matching("ready for connections") >= 1);
    assert!(db.global_status("Connections") > 0);
}

// --- Alive -------------------------------------------------------------------------

#[test]
fn alive_without_credentials_over_the_socket_is_200_greeting() {
    let db = Mariadb::shared();
    assert_200(&check(BIN, &over_socket(&[], db, None)), &greeting_body(db));
}

#[test]
fn alive_without_credentials_over_tcp_is_200_greeting() {
    let db = Mariadb::shared();
    assert_200(&check(BIN, &over_tcp(&[], db, None)), &greeting_body(db));
}

#[test]
fn alive_with_credentials_over_the_socket_and_tcp_is_200_ping() {
    let db = Mariadb::shared();
    let dir = TempDir::new("mariadb-cnf");
    let file = monitor_file(db, &dir);
    let want = ping_body(db);
    assert_200(&check(BIN, &over_socket(&[], db, Some(&file))), &want);
    assert_200(&check(BIN, &over_tcp(&[], db, Some(&file))), &want);
}

#[test]
fn once_prints_ok_or_critical_with_the_nagios_exit_code() {
    let db = Mariadb::shared();
    let run = run_with_input(BIN, &over_socket(&["--once"], db, None), b"");
    let want = format!("OK: MariaDB {} is alive (greeting) (", db.version());
    assert!(
        run.stdout_text().starts_with(&want) && run.stdout_text().ends_with(")\n"),
        "{:?}",
        run.stdout_text()
    );
    assert_eq!(run.stdout_text().lines().count(), 1);
    assert_eq!(run.code, Some(0));

    let dir = TempDir::new("mariadb-once");
    let missing = dir.join("no.sock");
    let args = strings(&["--once", "mariadb", "--socket", &path_str(&missing)]);
    let run = run_with_input(BIN, &args, b"");
    let want = format!(
        "CRITICAL: {}: no such file or directory (",
        missing.display()
    );
    assert!(
        run.stdout_text().starts_with(&want),
        "{:?}",
        run.stdout_text()
    );
    assert_eq!(run.code, Some(2));
}

#[test]
fn alive_under_xinetd_with_and_without_credentials() {
    let db = Mariadb::shared();
    let dir = TempDir::new("mariadb-cnf");
    let file = monitor_file(db, &dir);
    let cases = [
        (over_socket(&[], db, None), greeting_body(db)),
        (over_tcp(&[], db, None), greeting_body(db)),
        (over_socket(&[], db, Some(&file)), ping_body(db)),
        (over_tcp(&[], db, Some(&file)), ping_body(db)),
    ];
    for (args, body) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let xinetd = Xinetd::start(BIN, &args);
        for _ in 0..3 {
            let ex = exchange(xinetd.port(), GET, IO_TIMEOUT);
            ex.assert_clean_close();
            let r = Response::parse(&ex.bytes).unwrap_or_else(|e| panic!("{args:?}: {e}"));
            assert_eq!(r.status_line, "HTTP/1.1 200 OK", "{args:?}: {r:?}");
            r.assert_standard_headers();
            assert_eq!(r.body_text(), body, "{args:?}");
        }
        assert_eq!(xinetd.wait_for_exits(3, IO_TIMEOUT), [0, 0, 0], "{args:?}");
    }
}

// --- Down ----------------------------------------------------------------------------

#[test]
fn stopped_server_is_503_at_once_and_200_after_restart() {
    let mut db = Mariadb::start();
    let dir = TempDir::new("mariadb-cnf");
    let file = monitor_file(&db, &dir);
    assert_200(
        &check(BIN, &over_socket(&[], &db, None)),
        &greeting_body(&db),
    );

    db.stop();
    assert!(!db.socket().exists(), "mariadbd left its socket behind");
    let gone = format!(
        "unhealthy: {}: no such file or directory\n",
        db.socket().display()
    );
    let refused = format!("unhealthy: 127.0.0.1:{}: connection refused\n", db.port());
    for (args, body) in [
        (over_socket(&[], &db, None), &gone),
        (over_socket(&[], &db, Some(&file)), &gone),
        (over_tcp(&[], &db, None), &refused),
        (over_tcp(&[], &db, Some(&file)), &refused),
    ] {
        let run = check(BIN, &args);
        eprintln!("stopped server, {args:?}: 503 after {:?}", run.elapsed);
        assert_503(&run, body);
        assert!(
            run.elapsed < AT_ONCE,
            "{args:?}: answered after {:?}, not at once",
            run.elapsed
        );
    }

    db.start_again();
    assert_200(
        &check(BIN, &over_socket(&[], &db, Some(&file))),
        &ping_body(&db),
    );
    assert_200(&check(BIN, &over_tcp(&[], &db, None)), &greeting_body(&db));
}

#[test]
fn socket_file_without_a_listener_is_connection_refused() {
    let dir = TempDir::new("mariadb-stale");
    let path = dir.join("stale.sock");
    drop(UnixListener::bind(&path).expect("binding a unix socket"));
    assert!(path.exists());
    let run = check(BIN, &strings(&["mariadb", "--socket", &path_str(&path)]));
    assert_503(
        &run,
        &format!("unhealthy: {}: connection refused\n", path.display()),
    );
    assert!(run.elapsed < AT_ONCE, "answered after {:?}", run.elapsed);
}

#[test]
fn hung_server_is_503_at_the_deadline() {
    let db = Mariadb::start();
    let dir = TempDir::new("mariadb-cnf");
    let file = monitor_file(&db, &dir);
    db.sigstop();
    let body = "unhealthy: timed out waiting for the server's greeting\n";
    for args in [
        over_socket(&["--timeout", "1s"], &db, None),
        over_tcp(&["--timeout", "1s"], &db, None),
        over_socket(&["--timeout", "1s"], &db, Some(&file)),
    ] {
        let run = check(BIN, &args);
        eprintln!("hung server, {args:?}: 503 after {:?}", run.elapsed);
        assert_503(&run, body);
        assert!(
            run.elapsed >= Duration::from_secs(1) && run.elapsed < Duration::from_secs(2),
            "{args:?}: answered after {:?}, not at the 1 s deadline",
            run.elapsed
        );
    }
    db.sigcont();
    assert_200(
        &check(BIN, &over_socket(&["--timeout", "1s"], &db, Some(&file))),
        &ping_body(&db),
    );
}

// --- Credentials ---------------------------------------------------------------------

#[test]
fn wrong_password_is_503_access_denied_and_the_password_is_not_shown() {
    let db = Mariadb::shared();
    let dir = TempDir::new("mariadb-cnf");
    let wrong = format!("wrong-pw-{}", unique_digits());
    let file = db.write_option_file(dir.path(), MONITOR_USER, Some(&wrong), 0o600);

    // The body is public: it says what is wrong, not whose account it is;
    // the server's words, with the account, go to the log line.
    for run in [
        check(BIN, &over_socket(&[], db, Some(&file))),
        check(BIN, &over_tcp(&[], db, Some(&file))),
    ] {
        assert_503(&run, "unhealthy: access denied\n");
        assert!(
            !run.stdout_text().contains(MONITOR_USER),
            "{}",
            run.stdout_text()
        );
        assert!(
            run.stderr.contains(" reason=\"access denied\" ")
                && run.stderr.contains(
                    " detail=\"server error 1045 (28000): Access denied for user 'monitor'@"
                ),
            "{}",
            run.stderr
        );
        assert!(!run.stdout_text().contains(&wrong), "{}", run.stdout_text());
        assert!(!run.stderr.contains(&wrong), "{}", run.stderr);
    }
    // Behind --show-output the operator sees the server's words.
    let run = check(BIN, &over_socket(&["--show-output"], db, Some(&file)));
    assert!(
        run.body().starts_with("unhealthy: access denied\nserver error 1045 (28000): Access denied for user 'monitor'@'localhost'"),
        "{}",
        run.body()
    );
}

#[test]
fn option_file_readable_by_others_is_refused_with_exit_64() {
    let db = Mariadb::shared();
    let dir = TempDir::new("mariadb-cnf");
    let pw = Some(db.monitor_password());
    for (mode, words) in [
        (0o644, "readable by others"),
        (0o604, "readable by others"),
        (0o620, "writable by"),
        (0o602, "writable by"),
    ] {
        let file = db.write_option_file(dir.path(), MONITOR_USER, pw, mode);
        let run = check(BIN, &over_socket(&[], db, Some(&file)));
        assert_eq!(run.code, Some(64), "mode {mode:o}: stderr {}", run.stderr);
        assert!(
            run.stderr.contains(&path_str(&file)) && run.stderr.contains(words),
            "mode {mode:o}: stderr {:?} should name {} and say {words:?}",
            run.stderr,
            file.display()
        );
        assert!(
            !run.stderr.contains(db.monitor_password()),
            "{}",
            run.stderr
        );
        assert!(
            !run.stdout_text().starts_with("HTTP/1.1 200"),
            "mode {mode:o}: {}",
            run.stdout_text()
        );
    }
}

#[test]
fn option_file_owned_by_another_user_is_refused() {
    let db = Mariadb::shared();
    let dir = TempDir::new("mariadb-cnf");
    let file = monitor_file(db, &dir);
    // nobody:nogroup; the tests run as root.
    std::os::unix::fs::chown(&file, Some(65534), Some(65534)).expect("chown to nobody");
    let run = check(BIN, &over_socket(&[], db, Some(&file)));
    assert_eq!(run.code, Some(64), "stderr {}", run.stderr);
    assert!(
        run.stderr.contains(&path_str(&file)) && run.stderr.contains("owned by"),
        "{}",
        run.stderr
    );
}

#[test]
fn option_file_0600_or_0640_works() {
    let db = Mariadb::shared();
    let dir = TempDir::new("mariadb-cnf");
    for mode in [0o600, 0o400, 0o640] {
        let file =
            db.write_option_file(dir.path(), MONITOR_USER, Some(db.monitor_password()), mode);
        let run = check(BIN, &over_socket(&[], db, Some(&file)));
        assert_200(&run, &ping_body(db));
    }
}

#[test]
fn refused_option_file_under_xinetd_is_500_misconfigured() {
    let db = Mariadb::shared();
    let dir = TempDir::new("mariadb-cnf");
    let file = db.write_option_file(dir.path(), MONITOR_USER, Some(db.monitor_password()), 0o644);
    let args = over_socket(&[], db, Some(&file));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let xinetd = Xinetd::start(BIN, &args);
    let ex = exchange(xinetd.port(), GET, IO_TIMEOUT);
    ex.assert_clean_close();
    let r = Response::parse(&ex.bytes).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.status_line, "HTTP/1.1 500 Internal Server Error", "{r:?}");
    assert_eq!(
        r.body_text(),
        "inetd-health is misconfigured: see the system log\n"
    );
    assert!(!ex.text().contains(db.monitor_password()));
    assert_eq!(xinetd.wait_for_exits(1, IO_TIMEOUT), [64]);
}

#[test]
fn unix_socket_auth_as_root_without_password() {
    let db = Mariadb::shared();
    let dir = TempDir::new("mariadb-cnf");
    let file = db.write_option_file(dir.path(), "root", None, 0o600);
    assert_200(
        &check(BIN, &over_socket(&[], db, Some(&file))),
        &ping_body(db),
    );
}

#[test]
fn option_file_says_where_to_connect() {
    let db = Mariadb::shared();
    let dir = TempDir::new("mariadb-cnf");
    let pw = db.monitor_password();
    let want = ping_body(db);

    // [client-mariadb], a quoted password, comments, the socket from the file.
    let text = format!(
        "# monitoring credentials\n[mysqld]\nuser=nobody\n\n[client-mariadb]\n\
         user = {MONITOR_USER}\npassword = \"{pw}\"  # quoted\nsocket = {}\n",
        db.socket().display()
    );
    let file = write_option_file_text(dir.path(), &text, 0o600);
    let args = strings(&["mariadb", "--defaults-extra-file", &path_str(&file)]);
    assert_200(&check(BIN, &args), &want);

    // host and port from the file: TCP.
    let text = format!(
        "[client]\nuser={MONITOR_USER}\npassword='{pw}'\nhost=127.0.0.1\nport={}\n",
        db.port()
    );
    let file = write_option_file_text(dir.path(), &text, 0o600);
    let args = strings(&["mariadb", "--defaults-extra-file", &path_str(&file)]);
    assert_200(&check(BIN, &args), &want);
}

// --- What a check costs the server -------------------------------------------------

/// Authenticated checks leave no trace; checks without credentials do, and
/// this measures what MariaDB does with them (printed; run with --nocapture).
#[test]
fn authenticated_checks_leave_no_trace_and_greeting_checks_cost_what_is_documented() {
    // Its own server: its counters and error log must move only with these checks.
    let db = Mariadb::start();
    let dir = TempDir::new("mariadb-cnf");
    let file = monitor_file(&db, &dir);
    let has_preauth = db.try_global_status("Aborted_connects_preauth").is_some();
    assert!(has_preauth, "MariaDB 10.11 has Aborted_connects_preauth");
    let counters = || {
        (
            db.global_status("Aborted_connects"),
            db.global_status("Aborted_connects_preauth"),
            db.error_log_line_count(),
        )
    };
    let (aborted0, preauth0, lines0) = counters();

    let started = Instant::now();
    for args in [
        over_socket(&[], &db, Some(&file)),
        over_tcp(&[], &db, Some(&file)),
    ] {
        // The figure: 1000 authenticated checks, half over each path.
        for i in 0..500 {
            let run = check(BIN, &args);
            let r = run.response();
            assert_eq!(r.status, 200, "check {i} of {args:?}: {r:?}");
        }
    }
    let authenticated = started.elapsed();
    std::thread::sleep(Duration::from_millis(300));
    let (aborted1, preauth1, lines1) = counters();
    assert_eq!(
        (aborted1 - aborted0, preauth1 - preauth0, lines1 - lines0),
        (0, 0, 0),
        "1000 authenticated checks moved (Aborted_connects, Aborted_connects_preauth, \
         error-log lines); new log lines:\n{}",
        db.error_log_text()
            .lines()
            .skip(lines0)
            .collect::<Vec<_>>()
            .join("\n")
    );

    // Without credentials, over the socket: greeting, then close.
    const N: u64 = 20;
    let aborted_lines0 = db.error_log_lines_matching("Aborted connection");
    let denied_lines0 = db.error_log_lines_matching("Access denied for user");
    for _ in 0..N {
        assert_eq!(
            check(BIN, &over_socket(&[], &db, None)).response().status,
            200
        );
    }
    let aborted2 = settle_at(aborted1 + N, || db.global_status("Aborted_connects"));
    let preauth2 = db.global_status("Aborted_connects_preauth");
    let aborted_lines2 = settle_at(aborted_lines0 as u64 + N, || {
        db.error_log_lines_matching("Aborted connection") as u64
    });
    let unauthenticated_lines = db.error_log_lines_matching("without authentication");
    eprintln!(
        "{N} socket checks without credentials: Aborted_connects +{}, \
         Aborted_connects_preauth +{}, 'Aborted connection' lines +{}",
        aborted2 - aborted1,
        preauth2 - preauth1,
        aborted_lines2 - aborted_lines0 as u64,
    );
    assert_eq!(
        aborted2 - aborted1,
        N,
        "Aborted_connects, socket, no credentials"
    );
    assert_eq!(preauth2 - preauth1, N, "Aborted_connects_preauth, socket");
    assert_eq!(
        aborted_lines2 - aborted_lines0 as u64,
        N,
        "log lines, socket"
    );
    assert_eq!(
        unauthenticated_lines as u64, N,
        "'without authentication' lines"
    );

    // Without credentials, over TCP: a handshake as a user that does not exist.
    let lines2 = db.error_log_line_count();
    for _ in 0..N {
        assert_eq!(check(BIN, &over_tcp(&[], &db, None)).response().status, 200);
    }
    let aborted3 = settle_at(aborted2 + N, || db.global_status("Aborted_connects"));
    let preauth3 = db.global_status("Aborted_connects_preauth");
    let denied_lines3 = settle_at(denied_lines0 as u64 + N, || {
        db.error_log_lines_matching("Access denied for user") as u64
    });
    let lines3 = db.error_log_line_count();
    eprintln!(
        "{N} TCP checks without credentials: Aborted_connects +{}, \
         Aborted_connects_preauth +{}, error-log lines +{} ('Access denied' +{}, \
         'Aborted connection' +{}); e.g. {:?}",
        aborted3 - aborted2,
        preauth3 - preauth2,
        lines3 - lines2,
        denied_lines3 - denied_lines0 as u64,
        db.error_log_lines_matching("Aborted connection") as u64 - aborted_lines2,
        db.error_log_text().lines().last().unwrap_or_default(),
    );
    assert_eq!(
        preauth3 - preauth2,
        0,
        "Aborted_connects_preauth, TCP: no handshake errors"
    );
    assert_eq!(
        aborted3 - aborted2,
        N,
        "Aborted_connects, TCP: authentication failures"
    );
    assert_eq!(
        db.error_log_lines_matching("Aborted connection") as u64,
        aborted_lines2,
        "no 'Aborted connection' lines over TCP"
    );
    assert_eq!(
        denied_lines3 - denied_lines0 as u64,
        N,
        "'Access denied' lines, TCP"
    );
    assert_eq!(lines3 - lines2, N as usize, "error-log lines, TCP");
    eprintln!(
        "1000 authenticated checks took {authenticated:?} ({:?} each)",
        authenticated / 1000
    );
}

// --- HAProxy ---------------------------------------------------------------------

fn is_up(state: &ServerState) -> bool {
    state.status == "UP" && state.check_status == "L7OK"
}

fn is_down(state: &ServerState) -> bool {
    state.status == "DOWN" && state.check_status == "L7STS" && state.check_code == "503"
}

#[test]
fn haproxy_sees_mariadb_go_down_and_come_back() {
    let mut db = Mariadb::start();
    let dir = TempDir::new("mariadb-cnf");
    let file = monitor_file(&db, &dir);
    let args = over_socket(&[], &db, Some(&file));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let xinetd = Xinetd::start(BIN, &args);
    let haproxy = Haproxy::start(xinetd.port(), &[]);
    let bound = 2 * HAPROXY_INTER + HAPROXY_MARGIN;

    haproxy
        .wait_for_state(Duration::from_secs(8), is_up)
        .unwrap_or_else(|e| panic!("UP at first: {e}"));

    let sigterm = Instant::now();
    db.stop();
    let stopped = Instant::now();
    let state = haproxy
        .wait_for_state(Duration::from_secs(8), is_down)
        .unwrap_or_else(|e| panic!("DOWN after the stop: {e}"));
    let down_after = stopped.elapsed();
    eprintln!(
        "DOWN {down_after:?} after mariadbd exited ({:?} after SIGTERM): {state:?}",
        sigterm.elapsed()
    );
    assert!(
        down_after <= bound,
        "DOWN {down_after:?} after mariadbd exited; want within {bound:?} \
         (fall 2, inter {HAPROXY_INTER:?})"
    );

    db.start_again();
    let restarted = Instant::now();
    haproxy
        .wait_for_state(Duration::from_secs(8), is_up)
        .unwrap_or_else(|e| panic!("UP after the restart: {e}"));
    let up_after = restarted.elapsed();
    eprintln!("UP {up_after:?} after mariadbd answered again");
    assert!(
        up_after <= bound,
        "UP {up_after:?} after the restart; want within {bound:?} (rise 2)"
    );
}

/// The seed's check, migrated as users do: `exec -- mysqladmin ping`.
/// `mysqladmin ping` exits 1 when the server is down, which the Nagios
/// convention would have served as a 200 warning; by default it is down.
#[test]
fn exec_mysqladmin_ping_is_503_and_haproxy_down_while_mariadb_is_stopped() {
    let mut db = Mariadb::start();
    let mysqladmin = require_program("mysqladmin");
    let socket = format!("--socket={}", db.socket().display());
    let xinetd = Xinetd::start(
        BIN,
        &[
            "exec",
            "--",
            mysqladmin.to_str().unwrap(),
            "--no-defaults",
            &socket,
            "--connect-timeout=1",
            "ping",
        ],
    );
    let get = || {
        let ex = exchange(xinetd.port(), GET, IO_TIMEOUT);
        ex.assert_clean_close();
        Response::parse(&ex.bytes).unwrap()
    };
    let r = get();
    assert_eq!(
        (r.status, r.body_text().as_str()),
        (200, "healthy: exit status 0\n")
    );
    let haproxy = Haproxy::start(xinetd.port(), &[]);
    haproxy
        .wait_for_state(Duration::from_secs(8), is_up)
        .unwrap_or_else(|e| panic!("UP while MariaDB runs: {e}"));

    db.stop();
    let r = get();
    assert_eq!(
        (r.status, r.body_text().as_str()),
        (503, "unhealthy: exit status 1\n")
    );
    haproxy
        .wait_for_state(Duration::from_secs(8), is_down)
        .unwrap_or_else(|e| panic!("DOWN while MariaDB is stopped: {e}"));

    db.start_again();
    haproxy
        .wait_for_state(Duration::from_secs(8), is_up)
        .unwrap_or_else(|e| panic!("UP after the restart: {e}"));
}

// --- Secrets -----------------------------------------------------------------------

/// While checks run under xinetd (held at a socket that never greets, so
/// they are there to be seen), no process has the password on its command
/// line or in its environment.
#[test]
fn password_is_never_on_argv_or_in_the_environment() {
    let dir = TempDir::new("mariadb-argv");
    let socket = dir.join("silent.sock");
    // Accepts (the kernel queues) but never greets.
    let _silent = UnixListener::bind(&socket).expect("binding a unix socket");
    let password = format!("argv-pw-{}", unique_digits());
    let text = format!("[client]\nuser={MONITOR_USER}\npassword={password}\n");
    let file = write_option_file_text(dir.path(), &text, 0o600);
    let (socket, file) = (path_str(&socket), path_str(&file));
    let xinetd = Xinetd::start(
        BIN,
        &[
            "--timeout",
            "2s",
            "mariadb",
            "--socket",
            &socket,
            "--defaults-extra-file",
            &file,
        ],
    );
    let port = xinetd.port();
    let clients: Vec<_> = (0..4)
        .map(|_| std::thread::spawn(move || exchange(port, GET, IO_TIMEOUT)))
        .collect();

    let mut seen_checks = 0;
    let mut scans = 0;
    let deadline = Instant::now() + Duration::from_millis(1500);
    while Instant::now() < deadline {
        scans += 1;
        for pid in all_pids() {
            let cmdline = cmdline_of(pid).unwrap_or_default();
            assert!(
                !cmdline.contains(&password),
                "pid {pid} has the password on its command line: {cmdline}"
            );
            let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
            assert!(
                !String::from_utf8_lossy(&environ).contains(&password),
                "pid {pid} ({cmdline}) has the password in its environment"
            );
        }
        seen_checks = seen_checks.max(processes_matching(&file).len());
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        seen_checks >= 1,
        "no check process seen in {scans} scans: the scan proves nothing"
    );
    for client in clients {
        let ex = client.join().expect("client thread");
        ex.assert_clean_close();
        let r = Response::parse(&ex.bytes).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            r.body_text(),
            "unhealthy: timed out waiting for the server's greeting\n"
        );
        assert!(!ex.text().contains(&password));
    }
}
