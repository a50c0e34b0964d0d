//! The `galera` and `replica` checks and `--disable-file` against real
//! servers (docs/clustercheck.md says what they do): a single-node Galera cluster and a
//! primary/replica pair on loopback, driven over pipes and under a real
//! xinetd, with a real HAProxy following a node's state.
//!
//! Servers: one shared Galera node for every test that restores its state
//! (those tests take [`galera`]'s lock, since they change its global state),
//! one shared replication pair the same way ([`replication`]), the shared
//! plain server of `inetd_health_testkit::mariadb`, and a private Galera node for the
//! test that SIGSTOPs it. Shared servers stop at process exit. A missing
//! mariadbd, galera-4, xinetd or haproxy fails the test (run `scripts/test`,
//! which installs them); nothing is skipped.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use inetd_health_testkit::client::exchange;
use inetd_health_testkit::galera::{start_galera, synced, wsrep_status, wsrep_value};
use inetd_health_testkit::haproxy::{Haproxy, ServerState};
use inetd_health_testkit::http::Response;
use inetd_health_testkit::mariadb::{on_lasting_thread, stop_at_exit, Mariadb, MONITOR_USER};
use inetd_health_testkit::procs::wait_until;
use inetd_health_testkit::replication::{Replication, NO_GRANT_USER};
use inetd_health_testkit::run::{check, path_str, reader, strings, Run, GET, RUN_TIMEOUT};
use inetd_health_testkit::tmp::TempDir;
use inetd_health_testkit::xinetd::Xinetd;

/// The binary under test, as Cargo built it for this package's tests.
const BIN: &str = env!("CARGO_BIN_EXE_inetd-health");

/// Bound on one exchange with xinetd.
const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// "At once": no server involved, or a local one answering, well under the
/// default 2 s deadline (process start included, on a loaded machine).
const AT_ONCE: Duration = Duration::from_millis(1000);
/// Bound on a Galera node getting back to Synced, a replica catching up, a
/// server noticing a closed connection.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(10);
/// HAProxy's check interval in support/haproxy.rs (`inter 200ms fall 2 rise 2`).
const HAPROXY_INTER: Duration = Duration::from_millis(200);
/// Slack on top of two check intervals: the check itself, HAProxy's
/// scheduling, and the 50 ms polling of its stats socket.
const HAPROXY_MARGIN: Duration = Duration::from_millis(600);

// --- Shared servers ----------------------------------------------------------------

/// The shared Galera node, Synced, with its global state as started
/// (wsrep_desync OFF, read_only OFF, wsrep_reject_queries NONE), and the
/// lock that serialises the tests that use it.
fn galera() -> (MutexGuard<'static, ()>, &'static Mariadb) {
    static LOCK: Mutex<()> = Mutex::new(());
    static NODE: OnceLock<Mariadb> = OnceLock::new();
    let guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let node = Mariadb::shared_in(&NODE, start_galera);
    // A test that failed half-way may have left its change behind.
    node.sql(
        "SET GLOBAL wsrep_reject_queries = NONE; SET GLOBAL read_only = OFF; \
         SET GLOBAL wsrep_desync = OFF;",
    );
    wait_synced(node);
    (guard, node)
}

/// The shared primary/replica pair, replicating and in sync, and the lock
/// that serialises the tests that use it.
fn replication() -> (MutexGuard<'static, ()>, &'static Replication) {
    static LOCK: Mutex<()> = Mutex::new(());
    static PAIR: OnceLock<Replication> = OnceLock::new();
    let guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let pair = PAIR.get_or_init(|| on_lasting_thread(Replication::start));
    stop_at_exit(&pair.primary);
    stop_at_exit(&pair.replica);
    // A test that failed half-way may have left its change behind.
    if pair.slave_status("").is_empty() {
        let _ = pair
            .replica
            .try_sql("STOP ALL SLAVES; RESET SLAVE 'east' ALL;");
        pair.connect("");
    }
    if pair.slave_value("", "SQL_Delay") != "0" {
        pair.replica
            .sql("STOP SLAVE; CHANGE MASTER TO MASTER_DELAY = 0;");
    }
    pair.replica.sql("START SLAVE;");
    pair.wait_in_sync("");
    (guard, pair)
}

/// Waits (bounded) until `node` is Synced and Primary again.
fn wait_synced(node: &Mariadb) {
    let mut last = Ok(());
    let ok = wait_until(SETTLE_TIMEOUT, Duration::from_millis(20), || {
        last = synced(node);
        last.is_ok()
    });
    assert!(ok, "not Synced after {SETTLE_TIMEOUT:?}: {last:?}");
}

/// How a check reaches a server.
#[derive(Clone, Copy, Debug)]
enum Via {
    Socket,
    Tcp,
}

const BOTH: [Via; 2] = [Via::Socket, Via::Tcp];

/// `[OPTIONS...] CHECK --socket S | --host 127.0.0.1 --port P
/// --defaults-extra-file F [CHECK_ARGS...]`.
fn args(
    options: &[&str],
    check: &str,
    db: &Mariadb,
    via: Via,
    file: &Path,
    check_args: &[&str],
) -> Vec<String> {
    let mut args = strings(options);
    args.push(check.into());
    match via {
        Via::Socket => args.extend(["--socket".into(), path_str(db.socket())]),
        Via::Tcp => args.extend([
            "--host".into(),
            "127.0.0.1".into(),
            "--port".into(),
            db.port().to_string(),
        ]),
    }
    args.extend(["--defaults-extra-file".into(), path_str(file)]);
    args.extend(strings(check_args));
    args
}

/// `user`'s credentials (the monitor's password unless given) in a 0600 option file.
fn option_file(db: &Mariadb, dir: &TempDir, user: &str, password: Option<&str>) -> PathBuf {
    let password = password.unwrap_or(db.monitor_password());
    db.write_option_file(dir.path(), user, Some(password), 0o600)
}

fn monitor_file(db: &Mariadb, dir: &TempDir) -> PathBuf {
    option_file(db, dir, MONITOR_USER, None)
}

// --- Assertions ------------------------------------------------------------------

/// A 200 with exactly `body`, exit 0, and one log line saying status=200.
fn assert_200(run: &Run, body: &str) {
    assert_status(run, "HTTP/1.1 200 OK", 200, body);
}

/// A 503 with exactly `body`, exit 0, and one log line saying status=503.
fn assert_503(run: &Run, body: &str) {
    assert_status(run, "HTTP/1.1 503 Service Unavailable", 503, body);
}

fn assert_status(run: &Run, status_line: &str, status: u16, body: &str) {
    let r = run.response();
    assert_eq!(
        r.status_line, status_line,
        "{:?}: {r:?}; stderr: {}",
        run.args, run.stderr
    );
    r.assert_standard_headers();
    assert_eq!(
        r.body_text(),
        body,
        "{:?}; stderr: {}",
        run.args,
        run.stderr
    );
    assert_eq!(
        run.code,
        Some(0),
        "{:?}: exit code; stderr: {}",
        run.args,
        run.stderr
    );
    assert_eq!(run.stderr.lines().count(), 1, "log: {}", run.stderr);
    assert!(
        run.stderr
            .starts_with("inetd-health: peer=- method=GET path=/health ")
            && run.stderr.contains(&format!(" status={status} ")),
        "log: {}",
        run.stderr
    );
}

/// Runs the check over the socket and over TCP; each must give `status`
/// (200 or 503) with exactly `body`.
fn assert_both(
    status: u16,
    body: &str,
    options: &[&str],
    name: &str,
    db: &Mariadb,
    file: &Path,
    check_args: &[&str],
) {
    for via in BOTH {
        let run = check(BIN, &args(options, name, db, via, file, check_args));
        match status {
            200 => assert_200(&run, body),
            _ => assert_503(&run, body),
        }
    }
}

// --- galera ----------------------------------------------------------------------

#[test]
fn fixture_galera_node_is_a_synced_one_node_primary_cluster() {
    let (_lock, node) = galera();
    let status = wsrep_status(node).expect("wsrep status");
    let get = |name| wsrep_value(&status, name);
    assert_eq!(get("wsrep_local_state"), "4", "{status:?}");
    assert_eq!(get("wsrep_local_state_comment"), "Synced", "{status:?}");
    assert_eq!(get("wsrep_cluster_status"), "Primary", "{status:?}");
    assert_eq!(get("wsrep_cluster_size"), "1", "{status:?}");
    assert_eq!(get("wsrep_ready"), "ON", "{status:?}");
}

#[test]
fn galera_synced_then_desynced_is_down_unless_available_when_donor() {
    let (_lock, node) = galera();
    let dir = TempDir::new("ha-cnf");
    let file = monitor_file(node, &dir);
    assert_both(200, "healthy: synced\n", &[], "galera", node, &file, &[]);

    node.sql("SET GLOBAL wsrep_desync = ON;");
    // What wsrep_desync does to a lone node: state 2, still Primary and ready.
    let status = wsrep_status(node).expect("wsrep status");
    assert_eq!(wsrep_value(&status, "wsrep_local_state"), "2", "{status:?}");
    assert_eq!(
        wsrep_value(&status, "wsrep_local_state_comment"),
        "Donor/Desynced",
        "{status:?}"
    );
    let donor = "unhealthy: donor/desynced (state 2: Donor/Desynced)\n";
    assert_both(503, donor, &[], "galera", node, &file, &[]);
    assert_both(
        200,
        "healthy: donor/desynced, available when donor\n",
        &[],
        "galera",
        node,
        &file,
        &["--available-when-donor"],
    );

    node.sql("SET GLOBAL wsrep_desync = OFF;");
    wait_synced(node);
    assert_both(200, "healthy: synced\n", &[], "galera", node, &file, &[]);
    assert_both(
        200,
        "healthy: synced\n",
        &[],
        "galera",
        node,
        &file,
        &["--available-when-donor"],
    );
}

#[test]
fn galera_read_only_serves_unless_read_only_is_down() {
    let (_lock, node) = galera();
    let dir = TempDir::new("ha-cnf");
    let file = monitor_file(node, &dir);
    node.sql("SET GLOBAL read_only = ON;");
    assert_both(
        200,
        "healthy: synced, read-only\n",
        &[],
        "galera",
        node,
        &file,
        &[],
    );
    assert_both(
        503,
        "unhealthy: read-only (read_only is ON)\n",
        &[],
        "galera",
        node,
        &file,
        &["--read-only-is-down"],
    );
    node.sql("SET GLOBAL read_only = OFF;");
    assert_both(
        200,
        "healthy: synced\n",
        &[],
        "galera",
        node,
        &file,
        &["--read-only-is-down"],
    );
}

/// On a lone node `wsrep_reject_queries` does what it says to an ordinary
/// account's table queries (error 1047), while the check's query (system
/// variables, information_schema) still runs and reports it.
#[test]
fn galera_rejecting_queries_is_down() {
    let (_lock, node) = galera();
    let dir = TempDir::new("ha-cnf");
    let file = monitor_file(node, &dir);
    node.sql(&format!(
        "CREATE DATABASE IF NOT EXISTS ha; CREATE TABLE IF NOT EXISTS ha.t (id INT PRIMARY KEY);
         GRANT SELECT ON ha.* TO '{MONITOR_USER}'@'localhost';"
    ));
    let as_monitor = |sql: &str| client_as(node, &file, sql);
    assert_eq!(
        as_monitor("SELECT COUNT(*) FROM ha.t;"),
        Ok("0".to_string())
    );

    for mode in ["ALL", "ALL_KILL"] {
        node.sql(&format!("SET GLOBAL wsrep_reject_queries = {mode};"));
        let rejected = as_monitor("SELECT COUNT(*) FROM ha.t;");
        assert!(
            matches!(&rejected, Err(e) if e.contains("ERROR 1047")),
            "{mode}: an ordinary table query gave {rejected:?}"
        );
        assert_both(
            503,
            &format!("unhealthy: rejecting queries (wsrep_reject_queries = {mode})\n"),
            &[],
            "galera",
            node,
            &file,
            &["--available-when-donor"],
        );
        node.sql("SET GLOBAL wsrep_reject_queries = NONE;");
    }
    assert_eq!(
        as_monitor("SELECT COUNT(*) FROM ha.t;"),
        Ok("0".to_string())
    );
    assert_both(200, "healthy: synced\n", &[], "galera", node, &file, &[]);
}

/// `mariadb --defaults-extra-file=FILE -S SOCKET -N -B` with `sql` on stdin:
/// its trimmed output, or its error output.
fn client_as(db: &Mariadb, file: &Path, sql: &str) -> Result<String, String> {
    let mut child = Command::new("mariadb")
        .arg(format!("--defaults-extra-file={}", file.display()))
        .arg("-S")
        .arg(db.socket())
        .args(["-N", "-B", "--connect-timeout=5"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawning mariadb");
    let out = child.stdout.take().map(reader);
    let err = child.stderr.take().map(reader);
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(sql.as_bytes());
    }
    let mut status = None;
    let finished = wait_until(RUN_TIMEOUT, Duration::from_millis(5), || {
        status = child.try_wait().ok().flatten();
        status.is_some()
    });
    if !finished {
        let _ = child.kill();
        let _ = child.wait();
    }
    let text = |h: Option<std::thread::JoinHandle<Vec<u8>>>| {
        String::from_utf8_lossy(&h.and_then(|h| h.join().ok()).unwrap_or_default())
            .trim()
            .to_string()
    };
    let (out, err) = (text(out), text(err));
    match status {
        Some(s) if s.success() => Ok(out),
        _ => Err(err),
    }
}

#[test]
fn galera_wrong_password_is_its_own_reason() {
    let (_lock, node) = galera();
    let dir = TempDir::new("ha-cnf");
    let file = option_file(node, &dir, MONITOR_USER, Some("not-the-password"));
    let run = check(BIN, &args(&[], "galera", node, Via::Socket, &file, &[]));
    assert_503(&run, "unhealthy: access denied\n");
    assert!(
        run.stderr.contains(
            "detail=\"server error 1045 (28000): Access denied for user 'monitor'@'localhost'"
        ),
        "{}",
        run.stderr
    );
    let run = check(BIN, &args(&[], "galera", node, Via::Tcp, &file, &[]));
    assert_503(&run, "unhealthy: access denied\n");
    for body in [
        run.body(),
        String::from_utf8_lossy(&run.stdout).into_owned(),
    ] {
        assert!(!body.contains("not-the-password"), "{body:?}");
    }
}

#[test]
fn galera_check_of_a_plain_mariadb_says_wsrep_is_not_enabled() {
    let db = Mariadb::shared();
    let dir = TempDir::new("ha-cnf");
    let file = monitor_file(db, &dir);
    assert_eq!(db.sql("SELECT @@wsrep_on;").trim(), "0");
    assert_both(
        503,
        "unhealthy: wsrep not enabled (wsrep_on is OFF): not a Galera node\n",
        &[],
        "galera",
        db,
        &file,
        &["--available-when-donor"],
    );
}

/// A hung node (SIGSTOP): 503 at the deadline, and once it runs again the
/// check has left nothing on it.
#[test]
fn galera_sigstopped_node_is_down_at_the_deadline_and_left_clean() {
    let node = start_galera();
    let dir = TempDir::new("ha-cnf");
    let file = monitor_file(&node, &dir);
    assert_both(200, "healthy: synced\n", &[], "galera", &node, &file, &[]);

    node.sigstop();
    for via in BOTH {
        let run = check(
            BIN,
            &args(&["--timeout", "1s"], "galera", &node, via, &file, &[]),
        );
        eprintln!("SIGSTOPped node, {via:?}: answered after {:?}", run.elapsed);
        assert_503(
            &run,
            "unhealthy: timed out waiting for the server's greeting\n",
        );
        assert!(
            run.elapsed >= Duration::from_secs(1) && run.elapsed < Duration::from_millis(1700),
            "{via:?}: answered after {:?}; want at the 1 s deadline",
            run.elapsed
        );
    }
    node.sigcont();
    wait_synced(&node);

    // The server accepts the queued connections late, finds them closed,
    // and ends them: none is left, and none ever logged in as the monitor.
    let count = || {
        node.sql(&format!(
            "SELECT COUNT(*) FROM information_schema.PROCESSLIST \
             WHERE USER IN ('{MONITOR_USER}', 'unauthenticated user');"
        ))
        .trim()
        .to_string()
    };
    let mut last = count();
    let gone = wait_until(SETTLE_TIMEOUT, Duration::from_millis(50), || {
        last = count();
        last == "0"
    });
    assert!(
        gone,
        "connections from the checks still on the server: {last}"
    );
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(count(), "0");
    assert_both(200, "healthy: synced\n", &[], "galera", &node, &file, &[]);
}

#[test]
fn disable_file_answers_503_without_touching_the_server() {
    let (_lock, node) = galera();
    let dir = TempDir::new("ha-cnf");
    let file = monitor_file(node, &dir);
    let switch = dir.join("maintenance");
    let switch_arg = path_str(&switch);
    let options = ["--disable-file", switch_arg.as_str()];
    assert_both(
        200,
        "healthy: synced\n",
        &options,
        "galera",
        node,
        &file,
        &[],
    );

    std::fs::write(&switch, "").expect("creating the disable file");
    let disabled = format!("unhealthy: disabled by operator ({switch_arg} exists)\n");
    // Connections counts every connection attempt, the reading client's
    // own included: between two reads, only the second reader's.
    let before = node.global_status("Connections");
    for via in BOTH {
        let run = check(BIN, &args(&options, "galera", node, via, &file, &[]));
        assert_503(&run, &disabled);
        assert!(
            run.elapsed < AT_ONCE,
            "{via:?}: answered after {:?}",
            run.elapsed
        );
    }
    let after = node.global_status("Connections");
    assert_eq!(
        after - before,
        1,
        "the server saw a connection from a disabled check"
    );

    std::fs::remove_file(&switch).expect("removing the disable file");
    assert_both(
        200,
        "healthy: synced\n",
        &options,
        "galera",
        node,
        &file,
        &[],
    );
    assert!(node.global_status("Connections") > after + 1);
}

fn is_up(s: &ServerState) -> bool {
    s.status == "UP"
}

fn is_down(s: &ServerState) -> bool {
    s.status == "DOWN"
}

/// Under a real xinetd, HAProxy takes a desynced node out within two check
/// intervals of the SET, and puts it back as fast once it is resynced.
#[test]
fn haproxy_follows_wsrep_desync_under_xinetd() {
    let (_lock, node) = galera();
    let dir = TempDir::new("ha-cnf");
    let file = monitor_file(node, &dir);
    let args = args(&[], "galera", node, Via::Socket, &file, &[]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let xinetd = Xinetd::start(BIN, &args);

    // What HAProxy will see, first by hand.
    let ex = exchange(xinetd.port(), GET, IO_TIMEOUT);
    ex.assert_clean_close();
    let r = Response::parse(&ex.bytes).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.status_line, "HTTP/1.1 200 OK", "{r:?}");
    r.assert_standard_headers();
    assert_eq!(r.body_text(), "healthy: synced\n");
    assert_eq!(xinetd.wait_for_exits(1, IO_TIMEOUT), [0]);

    let haproxy = Haproxy::start(xinetd.port(), &[]);
    let bound = 2 * HAPROXY_INTER + HAPROXY_MARGIN;
    haproxy
        .wait_for_state(Duration::from_secs(8), is_up)
        .unwrap_or_else(|e| panic!("UP at first: {e}"));

    node.sql("SET GLOBAL wsrep_desync = ON;");
    let set = Instant::now();
    let state = haproxy
        .wait_for_state(Duration::from_secs(8), is_down)
        .unwrap_or_else(|e| panic!("DOWN after wsrep_desync = ON: {e}"));
    let down_after = set.elapsed();
    eprintln!("DOWN {down_after:?} after wsrep_desync = ON: {state:?}");
    assert_eq!(state.check_code, "503", "{state:?}");
    assert!(
        down_after <= bound,
        "DOWN {down_after:?} after the SET; want within {bound:?} (fall 2, inter {HAPROXY_INTER:?})"
    );

    node.sql("SET GLOBAL wsrep_desync = OFF;");
    let set = Instant::now();
    let state = haproxy
        .wait_for_state(Duration::from_secs(8), is_up)
        .unwrap_or_else(|e| panic!("UP after wsrep_desync = OFF: {e}"));
    let up_after = set.elapsed();
    eprintln!("UP {up_after:?} after wsrep_desync = OFF: {state:?}");
    assert!(
        up_after <= bound,
        "UP {up_after:?} after the SET; want within {bound:?} (rise 2, inter {HAPROXY_INTER:?})"
    );
    // Every check HAProxy had answered by now exited 0.
    let statuses = xinetd.exit_statuses();
    drop(haproxy);
    assert!(
        !statuses.is_empty() && statuses.iter().all(|s| *s == 0),
        "exit statuses under xinetd: {statuses:?}"
    );
}

// --- replica ---------------------------------------------------------------------

fn replicating(lag: u64, max: u64) -> String {
    format!("healthy: replicating, lag {lag}s (max {max}s)\n")
}

#[test]
fn replica_in_sync_is_up_and_a_stopped_thread_is_down() {
    let (_lock, pair) = replication();
    let db = &pair.replica;
    let dir = TempDir::new("ha-cnf");
    let file = monitor_file(db, &dir);
    let max = ["--max-lag", "5"];
    assert_both(200, &replicating(0, 5), &[], "replica", db, &file, &max);

    pair.write_row();
    pair.wait_in_sync("");
    assert_both(200, &replicating(0, 5), &[], "replica", db, &file, &max);

    db.sql("STOP SLAVE SQL_THREAD;");
    assert_both(
        503,
        "unhealthy: replication SQL thread not running (Slave_SQL_Running = No)\n",
        &[],
        "replica",
        db,
        &file,
        &max,
    );
    db.sql("START SLAVE; STOP SLAVE IO_THREAD;");
    assert_both(
        503,
        "unhealthy: replication IO thread not running (Slave_IO_Running = No)\n",
        &[],
        "replica",
        db,
        &file,
        &max,
    );
    db.sql("START SLAVE;");
    pair.wait_in_sync("");
    assert_both(200, &replicating(0, 5), &[], "replica", db, &file, &max);
}

/// Real lag: the replica applies with MASTER_DELAY = 5, so a row written on
/// the primary leaves Seconds_Behind_Master growing to 5 before it is
/// applied; over the limit of 1 s the check says so, and it is up again by
/// itself once the row is applied.
#[test]
fn replica_lag_over_the_limit_is_down_until_it_catches_up() {
    let (_lock, pair) = replication();
    let db = &pair.replica;
    let dir = TempDir::new("ha-cnf");
    let file = monitor_file(db, &dir);
    let max = ["--max-lag", "1"];
    db.sql("STOP SLAVE; CHANGE MASTER TO MASTER_DELAY = 5; START SLAVE;");
    pair.wait_in_sync("");
    assert_both(200, &replicating(0, 1), &[], "replica", db, &file, &max);

    pair.write_row();
    let written = Instant::now();
    let mut seen = Vec::new();
    let mut lagging = None;
    while written.elapsed() < Duration::from_secs(15) {
        let run = check(BIN, &args(&[], "replica", db, Via::Socket, &file, &max));
        let body = run.body();
        seen.push(format!("{:?}: {body:?}", written.elapsed()));
        if body.starts_with("unhealthy: ") {
            lagging = Some((run, body));
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let Some((run, body)) = lagging else {
        panic!("never down while lagging; seen: {seen:#?}");
    };
    let lag: u64 = body
        .strip_prefix("unhealthy: lag ")
        .and_then(|rest| rest.strip_suffix("s exceeds the limit of 1s\n"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{body:?}; seen: {seen:#?}"));
    assert!((2..=6).contains(&lag), "{body:?}");
    assert_503(&run, &body);
    eprintln!(
        "lag {lag}s reported {:?} after the write",
        written.elapsed()
    );

    // Up again by itself once the delayed row is applied.
    let mut last = String::new();
    let caught_up = wait_until(SETTLE_TIMEOUT, Duration::from_millis(100), || {
        last = check(BIN, &args(&[], "replica", db, Via::Socket, &file, &max)).body();
        last == replicating(0, 1)
    });
    assert!(
        caught_up,
        "still {last:?} {:?} after the write",
        written.elapsed()
    );
    eprintln!("up again {:?} after the write", written.elapsed());

    db.sql("STOP SLAVE; CHANGE MASTER TO MASTER_DELAY = 0; START SLAVE;");
    pair.wait_in_sync("");
}

/// MariaDB's multi-source replication: `--connection-name` checks that
/// connection. (MariaDB refuses two connections to one primary, error 1934,
/// so for this test the replica's one connection is renamed 'east'.)
#[test]
fn replica_named_connection_and_a_missing_one() {
    let (_lock, pair) = replication();
    let db = &pair.replica;
    let dir = TempDir::new("ha-cnf");
    let file = monitor_file(db, &dir);
    let default = ["--max-lag", "5"];
    let east = ["--max-lag", "5", "--connection-name", "east"];
    let west = ["--max-lag", "5", "--connection-name", "west"];
    pair.disconnect("");
    pair.connect("east");
    pair.wait_in_sync("east");
    assert_both(200, &replicating(0, 5), &[], "replica", db, &file, &east);
    assert_both(
        503,
        "unhealthy: not a replica (SHOW SLAVE STATUS is empty)\n",
        &[],
        "replica",
        db,
        &file,
        &default,
    );
    assert_both(
        503,
        "unhealthy: server error 1617: no such replication connection\n",
        &[],
        "replica",
        db,
        &file,
        &west,
    );

    db.sql("STOP SLAVE 'east';");
    assert_both(
        503,
        "unhealthy: replication IO thread not running (Slave_IO_Running = No)\n",
        &[],
        "replica",
        db,
        &file,
        &east,
    );

    pair.disconnect("east");
    assert_both(
        503,
        "unhealthy: server error 1617: no such replication connection\n",
        &[],
        "replica",
        db,
        &file,
        &east,
    );
    pair.connect("");
    pair.wait_in_sync("");
    assert_both(200, &replicating(0, 5), &[], "replica", db, &file, &default);
}

#[test]
fn replica_monitor_without_slave_monitor_gets_the_1227_reason() {
    let (_lock, pair) = replication();
    let db = &pair.replica;
    let dir = TempDir::new("ha-cnf");
    let file = option_file(db, &dir, NO_GRANT_USER, None);
    let run = check(
        BIN,
        &args(&[], "replica", db, Via::Socket, &file, &["--max-lag", "5"]),
    );
    let body = "unhealthy: server error 1227: permission denied for the check's query\n";
    assert_503(&run, body);
    assert!(
        run.stderr
            .contains("detail=\"server error 1227 (42000): Access denied; you need ")
            && run.stderr.contains("SLAVE MONITOR"),
        "{}",
        run.stderr
    );
    assert_both(503, body, &[], "replica", db, &file, &["--max-lag", "5"]);
}

#[test]
fn replica_check_of_the_primary_says_it_is_not_a_replica() {
    let (_lock, pair) = replication();
    let db = &pair.primary;
    let dir = TempDir::new("ha-cnf");
    let file = monitor_file(db, &dir);
    assert_both(
        503,
        "unhealthy: not a replica (SHOW SLAVE STATUS is empty)\n",
        &[],
        "replica",
        db,
        &file,
        &["--max-lag", "5"],
    );
}

/// Under xinetd, the replica check answers the same as over pipes.
#[test]
fn replica_under_xinetd() {
    let (_lock, pair) = replication();
    let db = &pair.replica;
    let dir = TempDir::new("ha-cnf");
    let file = monitor_file(db, &dir);
    let args = args(&[], "replica", db, Via::Tcp, &file, &["--max-lag", "5"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let xinetd = Xinetd::start(BIN, &args);
    let get = || {
        let ex = exchange(xinetd.port(), GET, IO_TIMEOUT);
        ex.assert_clean_close();
        Response::parse(&ex.bytes).unwrap_or_else(|e| panic!("{e}"))
    };
    let r = get();
    assert_eq!(r.status_line, "HTTP/1.1 200 OK", "{r:?}");
    assert_eq!(r.body_text(), replicating(0, 5));
    db.sql("STOP SLAVE SQL_THREAD;");
    let r = get();
    assert_eq!(r.status_line, "HTTP/1.1 503 Service Unavailable", "{r:?}");
    assert_eq!(
        r.body_text(),
        "unhealthy: replication SQL thread not running (Slave_SQL_Running = No)\n"
    );
    db.sql("START SLAVE;");
    pair.wait_in_sync("");
    assert_eq!(xinetd.wait_for_exits(2, IO_TIMEOUT), [0, 0]);
}

// --- Many checks from a config file ------------------------------------------------

/// The config of the issue that brought config files, against the real
/// servers: `db` a plain MariaDB, `galera` the Galera node (cached), `disk`
/// an exec check, three routes; under a real xinetd.
#[test]
fn config_of_mariadb_galera_and_exec_checks_on_three_routes_under_xinetd() {
    let (_lock, node) = galera();
    let db = Mariadb::shared();
    let dir = TempDir::new("ha-config");
    let db_file = monitor_file(db, &dir);
    let node_dir = TempDir::new("ha-config-node");
    let node_file = monitor_file(node, &node_dir);
    let disk_fails = dir.join("disk-fails");
    let disk = dir.script(
        "disk.sh",
        &format!(
            "if [ -e {} ]; then echo 'DISK CRITICAL - free space: / 1%'; exit 2; fi; echo 'DISK OK'",
            disk_fails.display()
        ),
    );
    let config = dir.join("config.toml");
    std::fs::write(
        &config,
        format!(
            r#"[defaults]
timeout = "2s"

[checks.db]
kind = "mariadb"
socket = "{db_socket}"
defaults-extra-file = "{db_file}"

[checks.galera]
kind = "galera"
socket = "{node_socket}"
defaults-extra-file = "{node_file}"
cache-ttl = "1s"
state-dir-is-not-a-check-setting = false
"#,
            db_socket = db.socket().display(),
            db_file = db_file.display(),
            node_socket = node.socket().display(),
            node_file = node_file.display(),
        ),
    )
    .unwrap();
    // First, a mistake: refused with its line and column, under xinetd a 500.
    let xinetd = Xinetd::start(BIN, &["--config", config.to_str().unwrap()]);
    let ex = exchange(xinetd.port(), GET, IO_TIMEOUT);
    let r = Response::parse(&ex.bytes).unwrap_or_else(|e| panic!("{e}: {:?}", ex.text()));
    assert_eq!(r.status, 500, "{r:?}");
    drop(xinetd);

    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("state-dir-is-not-a-check-setting = false\n", "")
        + &format!(
            r#"
[checks.disk]
kind = "exec"
command = ["{disk}"]
nagios = true

[routes]
"/" = ["galera"]
"/live" = ["db"]
"/ready" = ["galera", "disk", "db"]
"#,
            disk = disk.display()
        );
    std::fs::write(&config, text).unwrap();
    let xinetd = Xinetd::start(BIN, &["--config", config.to_str().unwrap()]);
    let get = |target: &str| {
        let request = format!("GET {target} HTTP/1.1\r\nHost: x\r\n\r\n");
        let ex = exchange(xinetd.port(), request.as_bytes(), IO_TIMEOUT);
        ex.assert_clean_close();
        let r = Response::parse(&ex.bytes).unwrap_or_else(|e| panic!("{e}: {:?}", ex.text()));
        if !target.contains("format=") && target != "/metrics" {
            r.assert_standard_headers();
        }
        (r.status, r.body_text())
    };
    assert_eq!(get("/"), (200, "healthy: synced\n".to_owned()));
    let (status, body) = get("/live");
    assert_eq!(status, 200);
    assert!(
        body.starts_with("healthy: MariaDB ") && body.ends_with(" is alive (login and ping)\n"),
        "{body}"
    );
    assert_eq!(
        get("/ready"),
        (200, "healthy: 3 checks passed\n".to_owned())
    );
    let (_, verbose) = get("/ready?verbose");
    let lines: Vec<&str> = verbose.lines().collect();
    assert_eq!(lines.len(), 4, "{verbose}");
    assert!(lines[0].starts_with("[+]galera ok: synced"), "{verbose}");
    assert_eq!(lines[1], "[+]disk ok: DISK OK");
    assert!(lines[2].starts_with("[+]db ok: MariaDB "), "{verbose}");

    // The node desyncs: / and /ready fail (once the 1 s cache is stale),
    // /live does not; the JSON says which and why.
    node.sql("SET GLOBAL wsrep_desync = ON;");
    let mut last = (0, String::new());
    let down = wait_until(Duration::from_secs(5), Duration::from_millis(100), || {
        last = get("/ready");
        last.0 == 503
    });
    assert!(down, "{last:?}");
    assert!(
        last.1.starts_with("unhealthy: 1 of 3 checks failed\n[-]galera failed: donor/desynced (state 2: Donor/Desynced)"),
        "{}",
        last.1
    );
    assert_eq!(get("/live").0, 200);
    let (status, json) = get("/ready?format=json");
    assert_eq!(status, 503);
    for part in [
        "\"status\":\"fail\"",
        "\"galera\":[{\"status\":\"fail\",\"output\":\"donor/desynced (state 2: Donor/Desynced)",
        "\"galera:localState\":[{\"status\":\"fail\",\"observedValue\":2,",
        "\"disk\":[{\"status\":\"pass\",\"output\":\"DISK OK\"",
    ] {
        assert!(json.contains(part), "{part} not in {json}");
    }
    let (status, metrics) = get("/metrics");
    assert_eq!(status, 200);
    for line in [
        "inetd_health_check_success{check=\"galera\"} 0",
        "inetd_health_check_success{check=\"db\"} 1",
        "inetd_health_galera_local_state{check=\"galera\"} 2",
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "{line} not in\n{metrics}"
        );
    }
    node.sql("SET GLOBAL wsrep_desync = OFF;");
    wait_synced(node);
    std::fs::write(&disk_fails, "").unwrap();
    let up = wait_until(Duration::from_secs(5), Duration::from_millis(100), || {
        get("/").0 == 200
    });
    assert!(up, "galera not back");
    let (status, body) = get("/ready/disk");
    assert_eq!(
        (status, body.as_str()),
        (503, "unhealthy: DISK CRITICAL - free space: / 1%\n")
    );
}
