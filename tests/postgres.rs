//! The `postgres` check against real PostgreSQL 15 servers.
//!
//! Servers come from `inetd_health_testkit::postgres`: a private primary per
//! test ([`Postgres::start`]) and streaming replicas of it
//! ([`Postgres::start_replica`]), on free loopback ports and unix sockets in
//! temporary directories, run as the OS user `postgres`, stopped by pid. A
//! missing PostgreSQL fails the test (run `scripts/test`, which installs
//! it); nothing is skipped.
//!
//! The first section tests the fixtures themselves; the check's own system
//! tests follow it.

use std::path::Path;
use std::time::Duration;

use inetd_health_testkit::postgres::{
    os_user_ids, pg_isready, Encryption, Lsn, Options, Postgres, Via,
};
use inetd_health_testkit::procs::wait_until;

// ===========================================================================
// The fixtures (inetd_health_testkit::postgres) themselves.
// ===========================================================================

/// Bound on a server settling (a disconnection logged, a WAL receiver gone).
const FIXTURE_SETTLE: Duration = Duration::from_secs(10);

/// The real uid of `pid`, from `/proc/<pid>/status`.
fn uid_of(pid: u32) -> Option<u32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("Uid:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn assert_gone(pids: &[(u32, String)]) {
    for (pid, cmdline) in pids {
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists(),
            "pid {pid} ({cmdline}) still there"
        );
    }
}

#[test]
fn fixture_primary_answers_on_its_socket_and_port() {
    let pg = Postgres::start(Options::default());
    assert_eq!(pg.psql("select 1"), "1");
    assert_eq!(pg.psql("show port"), pg.port().to_string());
    assert_eq!(
        pg.psql("select current_setting('server_version_num')::int / 10000"),
        "15"
    );
    assert_eq!(pg.psql("select 1; select 2"), "1\n2");
    assert!(!pg.is_in_recovery());
    assert!(pg.socket_path().exists());
    assert!(pg.socket_path().starts_with(pg.socket_dir()));
    assert!(pg.data_dir().join("PG_VERSION").exists());
    for via in [Via::Socket, Via::Tcp] {
        let ready = pg.isready(via);
        assert_eq!(ready.code, Some(0), "{via:?}: {ready:?}");
        assert!(ready.output.contains("accepting connections"), "{ready:?}");
    }
    // The module-level form, with the socket directory as libpq's host.
    let host = pg.socket_dir().to_str().unwrap();
    assert_eq!(pg_isready(host, pg.port()).code, Some(0));

    // The guard holds the postmaster itself, running as `postgres`.
    let postmaster_pid = std::fs::read_to_string(pg.data_dir().join("postmaster.pid")).unwrap();
    assert_eq!(
        postmaster_pid.lines().next(),
        Some(pg.pid().to_string().as_str())
    );
    assert_eq!(uid_of(pg.pid()), Some(os_user_ids().0));
    let processes = pg.processes();
    assert!(
        processes.iter().any(|(pid, _)| *pid == pg.pid()),
        "{processes:?}"
    );
    assert!(
        processes.len() > 3,
        "postmaster and children: {processes:?}"
    );

    // log_connections: one connection, three lines (received, authorized,
    // and disconnection, logged once the backend has gone).
    assert!(pg.log_lines() > 0);
    let before = pg.log_lines();
    pg.psql("select 1");
    assert!(wait_until(
        FIXTURE_SETTLE,
        Duration::from_millis(20),
        || pg.log_lines() >= before + 3
    ));
    assert_eq!(pg.log_lines(), before + 3, "{}", pg.log_text());
    assert!(pg.log_lines_matching("connection authorized: user=postgres database=postgres") > 0);
    assert_eq!(pg.log_lines(), pg.log_text().lines().count());
    assert!(pg.log_path().starts_with(pg.socket_dir()));
}

#[test]
fn fixture_quiet_server_logs_no_connection() {
    let pg = Postgres::start(Options::default().log_connections(false));
    let before = pg.log_lines();
    for _ in 0..3 {
        assert_eq!(pg.psql("select 1"), "1");
        assert_eq!(pg.isready(Via::Tcp).code, Some(0));
    }
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(pg.log_lines(), before, "{}", pg.log_text());
}

#[test]
fn fixture_roles_and_hba_lines() {
    let pg = Postgres::start(
        Options::default()
            .hba("local all monitor_peer peer map=monitor")
            .ident("monitor /^.*$ monitor_peer")
            .hba("local all monitor_reject reject")
            .hba("host all monitor_trust 127.0.0.1/32 trust")
            .hba("host all monitor_md5 127.0.0.1/32 md5")
            .hba("host all monitor_scram 127.0.0.1/32 scram-sha-256"),
    );
    pg.create_role("monitor_md5", Some("md5 'pw'"), Encryption::Md5);
    pg.create_role("monitor_scram", Some("scram-pw"), Encryption::Scram);
    pg.create_role("monitor_trust", None, Encryption::Scram);
    pg.create_role("monitor_peer", None, Encryption::Scram);
    pg.create_role("monitor_reject", None, Encryption::Scram);
    let stored = |role: &str| {
        pg.psql(&format!(
            "select coalesce(rolpassword, 'NULL') from pg_authid where rolname = '{role}'"
        ))
    };
    assert!(stored("monitor_md5").starts_with("md5"));
    let scram = stored("monitor_scram");
    assert!(scram.starts_with("SCRAM-SHA-256$4096:"), "{scram}");
    assert_eq!(stored("monitor_trust"), "NULL");

    let who = "select current_user";
    let login = |via, user, password| pg.try_login(via, user, password, who);
    assert_eq!(
        login(Via::Tcp, "monitor_md5", Some("md5 'pw'")).as_deref(),
        Ok("monitor_md5")
    );
    assert_eq!(
        login(Via::Tcp, "monitor_scram", Some("scram-pw")).as_deref(),
        Ok("monitor_scram")
    );
    assert_eq!(
        login(Via::Tcp, "monitor_trust", None).as_deref(),
        Ok("monitor_trust")
    );
    assert_eq!(
        login(Via::Socket, "monitor_peer", None).as_deref(),
        Ok("monitor_peer")
    );
    for (user, password) in [("monitor_md5", "wrong"), ("monitor_scram", "wrong")] {
        let err = login(Via::Tcp, user, Some(password)).unwrap_err();
        assert!(err.contains("password authentication failed"), "{err}");
        assert!(
            pg.log_lines_matching(&format!(
                "FATAL:  password authentication failed for user \"{user}\""
            )) > 0
        );
    }
    // The test's lines come before the catch-all ones.
    let err = login(Via::Socket, "monitor_reject", None).unwrap_err();
    assert!(err.contains("rejects connection"), "{err}");
    assert!(pg.log_lines_matching("host all monitor_md5 127.0.0.1/32 md5") > 0);
    // The catch-all host line: SCRAM, and no password given.
    assert!(login(Via::Tcp, "monitor_peer", None).is_err());

    // A new password, with a new salt.
    pg.set_password("monitor_scram", "scram-pw-2", Encryption::Scram);
    assert_ne!(stored("monitor_scram"), scram);
    assert!(login(Via::Tcp, "monitor_scram", Some("scram-pw")).is_err());
    assert_eq!(
        login(Via::Tcp, "monitor_scram", Some("scram-pw-2")).as_deref(),
        Ok("monitor_scram")
    );
    pg.reload();
}

#[test]
fn fixture_replica_streams_and_replays_with_a_pause() {
    let primary = Postgres::start(Options::default());
    let replica = Postgres::start_replica(&primary, Options::default());
    assert_ne!(replica.port(), primary.port());
    assert_ne!(replica.socket_dir(), primary.socket_dir());
    assert!(replica.is_in_recovery());
    assert!(!primary.is_in_recovery());
    assert_eq!(replica.wal_receiver_status(), "streaming");
    assert_eq!(primary.wal_receiver_status(), "");
    assert_eq!(primary.receive_lsn(), None);
    for via in [Via::Socket, Via::Tcp] {
        assert_eq!(replica.isready(via).code, Some(0));
    }
    assert_eq!(
        primary.psql("select count(*) from pg_stat_replication where state = 'streaming'"),
        "1"
    );

    // A write on the primary reaches the replica.
    primary.psql("create table t (v int); insert into t values (42);");
    replica.catch_up(&primary);
    assert_eq!(replica.psql("select v from t"), "42");
    assert!(replica.try_psql("insert into t values (1)").is_err());

    // Replay paused: 20 MB received, not replayed.
    replica.pause_replay();
    assert_eq!(replica.replay_pause_state(), "paused");
    let written = primary.write_bytes(20 << 20);
    assert!((20 << 20..30 << 20).contains(&written), "{written}");
    let target = primary.current_wal_lsn();
    replica.wait_received(target);
    assert_eq!(replica.wal_receiver_status(), "streaming");
    let received = replica.receive_lsn().unwrap();
    let replayed = replica.replay_lsn().unwrap();
    assert!(received.0 - replayed.0 >= 20 << 20, "{received} {replayed}");
    let lag = replica.psql(
        "select pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn())::bigint",
    );
    assert_eq!(lag, (received.0 - replayed.0).to_string());
    assert_eq!(Lsn::parse(&received.to_string()), Some(received));

    replica.resume_replay();
    replica.wait_replayed(target);
    assert_eq!(
        replica.psql(
            "select pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn())::bigint"
        ),
        "0"
    );
    assert_eq!(
        replica.psql("select count(*) > 20000 from inetd_health_fill"),
        "t"
    );
}

#[test]
fn fixture_replica_promotes_after_the_primary_stops() {
    let mut primary = Postgres::start(Options::default());
    let mut replica = Postgres::start_replica(&primary, Options::default());
    let primary_processes = primary.processes();
    let socket = primary.socket_path();
    primary.stop();
    assert_eq!(primary.pid(), 0);
    assert_gone(&primary_processes);
    assert!(primary.processes().is_empty());
    assert!(!socket.exists());
    assert_eq!(pg_isready("127.0.0.1", primary.port()).code, Some(2));
    let lost = wait_until(FIXTURE_SETTLE, Duration::from_millis(20), || {
        replica.wal_receiver_status() != "streaming"
    });
    assert!(lost, "the replica still streams from a stopped primary");
    assert!(replica.is_in_recovery());

    replica.promote();
    assert!(!replica.is_in_recovery());
    assert_eq!(replica.wal_receiver_status(), "");
    replica.psql("create table after_promotion (v int)");
    let lsn = replica.current_wal_lsn();
    assert!(lsn > Lsn(0));

    // Restarted, a promoted replica stays a primary.
    let old_pid = replica.pid();
    replica.start_again();
    assert_ne!(replica.pid(), old_pid);
    assert!(!replica.is_in_recovery());
    assert_eq!(replica.isready(Via::Tcp).code, Some(0));
}

#[test]
fn fixture_standby_without_hot_standby_rejects_connections() {
    let primary = Postgres::start(Options::default());
    let standby = Postgres::start_replica(&primary, Options::default().hot_standby(false));
    for via in [Via::Socket, Via::Tcp] {
        let ready = standby.isready(via);
        assert_eq!(ready.code, Some(1), "{via:?}: {ready:?}");
        assert!(ready.output.contains("rejecting connections"), "{ready:?}");
    }
    let err = standby.try_psql("select 1").unwrap_err();
    assert!(
        err.contains("the database system is not accepting connections")
            && err.contains("Hot standby mode is disabled"),
        "{err}"
    );
    assert!(standby.log_lines_matching("started streaming WAL from primary") > 0);
    // The primary sees it stream.
    assert_eq!(
        primary.psql("select count(*) from pg_stat_replication where state = 'streaming'"),
        "1"
    );

    standby.promote();
    assert_eq!(standby.isready(Via::Tcp).code, Some(0));
    assert!(!standby.is_in_recovery());
}

#[test]
fn fixture_stop_and_drop_leave_no_process() {
    let mut primary = Postgres::start(Options::default());
    let replica = Postgres::start_replica(&primary, Options::default());
    let uid = os_user_ids().0;
    let replica_processes = replica.processes();
    let primary_processes = primary.processes();
    for (pid, cmdline) in replica_processes.iter().chain(&primary_processes) {
        assert_eq!(uid_of(*pid), Some(uid), "{pid} {cmdline}");
    }
    // Each server's walsender / walreceiver is its own.
    assert!(
        primary_processes
            .iter()
            .any(|(_, cmdline)| cmdline.contains("walsender")),
        "{primary_processes:?}"
    );
    assert!(
        replica_processes
            .iter()
            .any(|(_, cmdline)| cmdline.contains("walreceiver")),
        "{replica_processes:?}"
    );
    let replica_dir = replica.dir().to_path_buf();
    drop(replica);
    assert_gone(&replica_processes);
    assert!(!replica_dir.exists());

    let dir = primary.dir().to_path_buf();
    // A stopped postmaster is continued before it is told to shut down.
    primary.sigstop();
    let stopping = std::time::Instant::now();
    primary.stop();
    assert!(
        stopping.elapsed() < Duration::from_secs(5),
        "{:?}",
        stopping.elapsed()
    );
    primary.stop();
    assert_gone(&primary_processes);
    assert!(dir.exists(), "the directory stays until the guard goes");
    assert!(primary.log_lines_matching("database system is shut down") > 0);
    drop(primary);
    assert!(!dir.exists());
}

// ===========================================================================
// The protocol (inetd_health::postgres) against real servers: what the
// `postgres` check is built on.
// ===========================================================================

mod protocol {
    use super::*;
    use inetd_health::postgres::conn::Derive;
    use inetd_health::postgres::error::cannot_connect_now;
    use inetd_health::postgres::{Conn, Endpoint, Login, PgError, Ping};
    use inetd_health::Deadline;
    use std::net::SocketAddr;

    fn socket(pg: &Postgres) -> Endpoint {
        Endpoint::Unix {
            dir: pg.socket_dir().to_owned(),
            port: pg.port(),
        }
    }

    fn tcp(pg: &Postgres) -> (Endpoint, Vec<SocketAddr>) {
        let addr: SocketAddr = format!("127.0.0.1:{}", pg.port()).parse().unwrap();
        (
            Endpoint::Tcp {
                host: "127.0.0.1".into(),
                port: pg.port(),
            },
            vec![addr],
        )
    }

    fn deadline() -> Deadline {
        Deadline::after(Duration::from_secs(5))
    }

    fn login<'a>(user: &'a str, password: Option<&'a str>) -> Login<'a> {
        Login {
            user,
            database: "postgres",
            application_name: "inetd-health-test",
            password,
        }
    }

    /// A server with one role per method: trust (socket), peer (socket, as
    /// any OS user), md5 and SCRAM (TCP); connections not logged.
    fn server() -> Postgres {
        let pg = Postgres::start(
            Options::default()
                .log_connections(false)
                .hba("local all monitor_trust trust")
                .hba("local all monitor_peer peer map=monitor")
                .ident("monitor /^.*$ monitor_peer")
                .hba("host all monitor_md5 127.0.0.1/32 md5")
                .hba("host all monitor_scram 127.0.0.1/32 scram-sha-256"),
        );
        pg.create_role("monitor_trust", None, Encryption::Scram);
        pg.create_role("monitor_peer", None, Encryption::Scram);
        pg.create_role("monitor_md5", Some("md5-secret"), Encryption::Md5);
        pg.create_role("monitor_scram", Some("scram-secret"), Encryption::Scram);
        pg
    }

    #[test]
    fn every_auth_method_logs_in_and_reads_the_role_without_a_query() {
        let pg = server();
        let (tcp, addrs) = tcp(&pg);
        for (endpoint, addrs, user, password) in [
            (socket(&pg), vec![], "monitor_trust", None),
            (socket(&pg), vec![], "monitor_peer", None),
            (
                tcp.clone(),
                addrs.clone(),
                "monitor_md5",
                Some("md5-secret"),
            ),
            (
                tcp.clone(),
                addrs.clone(),
                "monitor_scram",
                Some("scram-secret"),
            ),
        ] {
            let conn = Conn::connect(&endpoint, &addrs, deadline()).unwrap();
            let mut session = conn
                .login(&login(user, password), &Derive)
                .unwrap_or_else(|e| panic!("{user}: {e}"));
            // PostgreSQL 14+ reports these right after login.
            assert_eq!(
                session.parameters.get("in_hot_standby").map(String::as_str),
                Some("off"),
                "{user}: {:?}",
                session.parameters
            );
            assert_eq!(
                session
                    .parameters
                    .get("default_transaction_read_only")
                    .map(String::as_str),
                Some("off")
            );
            let rows = session
                .query("select pg_is_in_recovery(), current_user")
                .unwrap();
            assert_eq!(
                rows,
                vec![vec![Some("f".to_owned()), Some(user.to_owned())]]
            );
            session.terminate();
        }
    }

    #[test]
    fn a_wrong_password_is_access_denied_and_names_the_account_only_in_the_error() {
        let pg = server();
        let (tcp, addrs) = tcp(&pg);
        for user in ["monitor_md5", "monitor_scram"] {
            let conn = Conn::connect(&tcp, &addrs, deadline()).unwrap();
            let e = conn
                .login(&login(user, Some("wrong")), &Derive)
                .unwrap_err();
            assert!(
                matches!(&e, PgError::Server(f) if f.code == "28P01"),
                "{user}: {e}"
            );
            assert_eq!(e.public_reason(), "access denied");
            assert!(e.to_string().contains(user), "{e}");
            // No password at all where one is asked for.
            let conn = Conn::connect(&tcp, &addrs, deadline()).unwrap();
            let e = conn.login(&login(user, None), &Derive).unwrap_err();
            assert!(matches!(e, PgError::NoPassword), "{e}");
        }
    }

    #[test]
    fn a_ping_leaves_no_line_in_the_servers_log() {
        let pg = server();
        let (tcp, addrs) = tcp(&pg);
        // Let start-up's own lines settle first.
        std::thread::sleep(Duration::from_millis(300));
        let before = pg.log_lines();
        for i in 0..1000 {
            // Over TCP the server asks for a password and we leave; over
            // the socket it lets the trust role in and we leave.
            let (endpoint, addrs, user) = if i % 2 == 0 {
                (tcp.clone(), addrs.clone(), "monitor_scram")
            } else {
                (socket(&pg), vec![], "monitor_trust")
            };
            let conn = Conn::connect(&endpoint, &addrs, deadline()).unwrap();
            assert_eq!(conn.ping(&login(user, None)).unwrap(), Ping::Accepting);
        }
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(
            pg.log_lines(),
            before,
            "lines logged by 1000 pings:\n{}",
            pg.log_text()
        );
    }

    #[test]
    fn a_standby_with_hot_standby_off_is_rejecting_with_its_reason() {
        let primary = Postgres::start(Options::default());
        let standby = Postgres::start_replica(&primary, Options::default().hot_standby(false));
        let conn = Conn::connect(&socket(&standby), &[], deadline()).unwrap();
        match conn.ping(&login("postgres", None)).unwrap() {
            Ping::Rejecting(f) => {
                assert_eq!(f.code, "57P03");
                assert_eq!(
                    cannot_connect_now(&f),
                    "not accepting connections: hot standby is off"
                );
            }
            other => panic!("{other:?}"),
        }
        // The primary answers.
        let conn = Conn::connect(&socket(&primary), &[], deadline()).unwrap();
        assert_eq!(
            conn.ping(&login("postgres", None)).unwrap(),
            Ping::Accepting
        );
    }

    #[test]
    fn a_streaming_replica_says_in_hot_standby_at_login() {
        let primary = Postgres::start(Options::default());
        let replica = Postgres::start_replica(&primary, Options::default());
        let conn = Conn::connect(&socket(&replica), &[], deadline()).unwrap();
        let mut session = conn.login(&login("postgres", None), &Derive).unwrap();
        assert_eq!(
            session.parameters.get("in_hot_standby").map(String::as_str),
            Some("on")
        );
        assert_eq!(
            session.query("select pg_is_in_recovery()").unwrap(),
            vec![vec![Some("t".to_owned())]]
        );
        session.terminate();
    }

    #[test]
    fn nothing_listening_and_a_silent_server_fail_by_the_deadline() {
        // A closed port: refused at once.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let endpoint = Endpoint::Tcp {
            host: "127.0.0.1".into(),
            port: addr.port(),
        };
        let e = Conn::connect(&endpoint, &[addr], deadline()).unwrap_err();
        assert!(matches!(e, PgError::Connect { .. }), "{e}");
        // A listener that never answers the startup message.
        let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = silent.local_addr().unwrap();
        let endpoint = Endpoint::Tcp {
            host: "127.0.0.1".into(),
            port: addr.port(),
        };
        let started = std::time::Instant::now();
        let conn = Conn::connect(
            &endpoint,
            &[addr],
            Deadline::after(Duration::from_millis(300)),
        )
        .unwrap();
        let e = conn.ping(&login("postgres", None)).unwrap_err();
        assert!(matches!(e, PgError::TimedOut { .. }), "{e}");
        let took = started.elapsed();
        assert!(
            took >= Duration::from_millis(250) && took < Duration::from_secs(2),
            "{took:?}"
        );
    }
}

// ===========================================================================
// The check, as an operator runs it: a config file, over pipes, under
// xinetd, polled by HAProxy and Prometheus.
// ===========================================================================

mod checks {
    use super::*;
    use std::path::PathBuf;
    use std::time::Instant;

    use inetd_health_testkit::client::exchange;
    use inetd_health_testkit::haproxy::Haproxy;
    use inetd_health_testkit::http::Response;
    use inetd_health_testkit::run::{path_str, run_with_input, Configured, Run};
    use inetd_health_testkit::tmp::TempDir;
    use inetd_health_testkit::xinetd::Xinetd;

    /// The binary under test, as Cargo built it for this package's tests.
    const BIN: &str = env!("CARGO_BIN_EXE_inetd-health");
    /// The monitoring role docs/postgres.md creates.
    pub const MONITOR: &str = "inetd_health";
    const PASSWORD: &str = "monitor-secret";
    /// Bound on a replica noticing, catching up, promoting.
    const SETTLE: Duration = Duration::from_secs(30);

    /// Connections not logged, and docs/postgres.md's lines: the ping's
    /// user and the monitoring role with SCRAM, on the socket and on TCP,
    /// before the fixture's catch-all `trust`.
    pub fn options() -> Options {
        Options::default()
            .log_connections(false)
            .hba("local all inetd-health-probe scram-sha-256")
            .hba("local all inetd_health scram-sha-256")
            .hba("host all inetd-health-probe 127.0.0.1/32 scram-sha-256")
            .hba("host all inetd_health 127.0.0.1/32 scram-sha-256")
    }

    /// A primary with the monitoring role and its one grant.
    pub fn primary() -> Postgres {
        let pg = Postgres::start(options());
        pg.create_role(MONITOR, Some(PASSWORD), Encryption::Scram);
        pg.psql("GRANT pg_monitor TO inetd_health");
        pg
    }

    /// A primary and a streaming replica of it.
    pub fn pair() -> (Postgres, Postgres) {
        let primary = primary();
        let replica = Postgres::start_replica(&primary, options());
        replica.wait_wal_receiver("streaming");
        (primary, replica)
    }

    /// A directory with a passfile (mode 0600) for the monitoring role and
    /// a config that answers like Patroni for `pg`: `/primary`,
    /// `/read-write`, `/replica`, `/read-only`, `/health`, `/`. `extra` is
    /// added to each check.
    pub struct Node(Configured);

    impl std::ops::Deref for Node {
        type Target = Configured;
        fn deref(&self) -> &Configured {
            &self.0
        }
    }

    pub fn passfile(dir: &TempDir) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let path = dir.join("pgpass");
        std::fs::write(
            &path,
            format!("# the monitoring role\n*:*:*:{MONITOR}:{PASSWORD}\n"),
        )
        .unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        path
    }

    pub fn check_section(name: &str, pg: &Postgres, passfile: &Path, body: &str) -> String {
        format!(
            "[checks.{name}]\nkind = \"postgres\"\nhost = \"{}\"\nport = {}\nuser = \"{MONITOR}\"\n\
             dbname = \"postgres\"\npassfile = \"{}\"\n{body}\n",
            pg.socket_dir().display(),
            pg.port(),
            passfile.display()
        )
    }

    impl Node {
        pub fn new(pg: &Postgres, extra: &str) -> Node {
            let dir = TempDir::new("pg-node");
            let pass = passfile(&dir);
            let mut text = format!("state-dir = \"{}\"\n\n", dir.join("state").display());
            for (name, role) in [
                ("primary", "primary"),
                ("replica", "replica"),
                ("running", "any"),
            ] {
                text.push_str(&check_section(
                    name,
                    pg,
                    &pass,
                    &format!("role = \"{role}\"\n{extra}"),
                ));
            }
            text.push_str(
                "[routes]\n\"/\" = [\"primary\"]\n\"/primary\" = [\"primary\"]\n\
                 \"/read-write\" = [\"primary\"]\n\"/replica\" = [\"replica\"]\n\
                 \"/read-only\" = [\"running\"]\n\"/health\" = [\"running\"]\n",
            );
            Node::with_config(dir, &text)
        }

        pub fn with_config(dir: TempDir, text: &str) -> Node {
            // A state directory the operator names is used as it is: it
            // must exist for the SCRAM keys to be kept.
            let _ = std::fs::create_dir(dir.join("state"));
            Node(Configured::new(BIN, dir, text))
        }
    }

    fn statuses(node: &Node, targets: &[&str]) -> Vec<u16> {
        targets.iter().map(|t| node.status("GET", t)).collect()
    }

    const PATRONI: [&str; 6] = [
        "/primary",
        "/read-write",
        "/replica",
        "/read-only",
        "/health",
        "/",
    ];

    #[test]
    fn patroni_routes_on_a_primary_and_a_streaming_replica() {
        let (primary, replica) = pair();
        let p = Node::new(&primary, "");
        let r = Node::new(&replica, "");
        assert_eq!(statuses(&p, &PATRONI), [200, 200, 503, 200, 200, 200]);
        assert_eq!(statuses(&r, &PATRONI), [503, 503, 200, 200, 200, 503]);
        // HAProxy's OPTIONS and HEAD get the same status, no body for HEAD.
        for method in ["OPTIONS", "HEAD"] {
            assert_eq!(p.status(method, "/primary"), 200, "{method}");
            assert_eq!(p.status(method, "/replica"), 503, "{method}");
            assert_eq!(r.status(method, "/primary"), 503, "{method}");
            assert_eq!(r.status(method, "/replica"), 200, "{method}");
        }
        // The reasons say what the server is, and nothing of the account.
        let (_, body) = r.get("/primary");
        assert!(body.contains("not a primary"), "{body}");
        let (_, body) = p.get("/replica");
        assert!(body.contains("not a replica"), "{body}");
        let (_, body) = r.get("/replica");
        assert!(body.contains("WAL receiver streaming"), "{body}");
        for (_, body) in [p.get("/replica"), r.get("/replica")] {
            assert!(
                !body.contains(MONITOR) && !body.contains("pgpass"),
                "{body}"
            );
        }
        // Patroni's query parameters, strictly parsed.
        assert_eq!(r.status("GET", "/replica?lag=16MB"), 200);
        assert_eq!(
            r.status("OPTIONS", "/replica?lag=16MB&replication_state=streaming"),
            200
        );
        assert_eq!(r.status("GET", "/replica?replication_state=streaming"), 200);
        for bad in [
            "/replica?lag=16XB",
            "/replica?lag=-1",
            "/replica?lag=1.5MB",
            "/replica?replication_state=stopped",
        ] {
            assert_eq!(r.status("GET", bad), 400, "{bad}");
        }
    }

    #[test]
    fn haproxy_follows_a_promotion_and_the_replica_reports_its_lost_receiver() {
        let (mut primary, replica) = pair();
        let nodes = [Node::new(&primary, ""), Node::new(&replica, "")];
        let xinetds: Vec<Xinetd> = nodes
            .iter()
            .map(|n| {
                let args = n.args();
                Xinetd::start(BIN, &[args[0].as_str(), args[1].as_str()])
            })
            .collect();
        let pg_ports = [primary.port(), replica.port()];
        let haproxy = Haproxy::start_sections(|port| {
            let mut text = String::new();
            for (proxy, path, bind) in [
                ("pg_primary", "/primary", port),
                ("pg_replicas", "/replica", 0),
            ] {
                text.push_str(&format!("listen {proxy}\n"));
                if bind != 0 {
                    text.push_str(&format!("    bind 127.0.0.1:{bind}\n"));
                }
                text.push_str(&format!(
                    "    option httpchk OPTIONS {path}\n    http-check expect status 200\n    \
                     default-server inter 200ms fall 2 rise 2 on-marked-down shutdown-sessions\n"
                ));
                for (i, x) in xinetds.iter().enumerate() {
                    text.push_str(&format!(
                        "    server node{i} 127.0.0.1:{} check port {}\n",
                        pg_ports[i],
                        x.port()
                    ));
                }
            }
            text
        });
        let expect = |want: [(&str, &str, &str); 4]| {
            let mut last = String::new();
            let ok = wait_until(SETTLE, Duration::from_millis(100), || {
                last.clear();
                want.iter().all(|(proxy, server, status)| {
                    let state = haproxy.state_of(proxy, server);
                    last.push_str(&format!("{proxy}/{server}: {state:?}\n"));
                    matches!(&state, Ok(s) if s.status == *status)
                })
            });
            assert!(ok, "HAProxy's stats never showed {want:?}:\n{last}");
        };
        expect([
            ("pg_primary", "node0", "UP"),
            ("pg_primary", "node1", "DOWN"),
            ("pg_replicas", "node0", "DOWN"),
            ("pg_replicas", "node1", "UP"),
        ]);
        // The primary stops: the replica's WAL receiver goes, and with it
        // the replica's 200 (streaming is required).
        primary.stop();
        let r = &nodes[1];
        let mut last = (0, String::new());
        let gone = wait_until(SETTLE, Duration::from_millis(200), || {
            last = r.get("/replica");
            last.0 == 503
        });
        assert!(
            gone,
            "the replica still answers {last:?} with its primary stopped"
        );
        assert!(last.1.contains("not streaming"), "{}", last.1);
        // Still a standby, still readable.
        assert_eq!(r.status("GET", "/read-only"), 200);
        expect([
            ("pg_primary", "node0", "DOWN"),
            ("pg_primary", "node1", "DOWN"),
            ("pg_replicas", "node0", "DOWN"),
            ("pg_replicas", "node1", "DOWN"),
        ]);
        replica.promote();
        assert_eq!(statuses(r, &PATRONI), [200, 200, 503, 200, 200, 200]);
        expect([
            ("pg_primary", "node0", "DOWN"),
            ("pg_primary", "node1", "UP"),
            ("pg_replicas", "node0", "DOWN"),
            ("pg_replicas", "node1", "DOWN"),
        ]);
        drop(haproxy);
        drop(xinetds);
    }

    #[test]
    fn replay_lag_in_bytes_and_seconds_and_an_idle_primary() {
        let (primary, replica) = pair();
        let r = Node::new(&replica, "");
        replica.pause_replay();
        let written = primary.write_bytes(20 << 20);
        replica.wait_received(primary.current_wal_lsn());
        assert!(written >= 20 << 20, "{written}");
        let (status, body) = r.get("/replica?lag=16MB");
        assert_eq!(status, 503, "{body}");
        assert!(body.contains("16 MB"), "{body}");
        assert_eq!(r.status("GET", "/replica?lag=64MB"), 200);
        assert_eq!(r.status("OPTIONS", "/replica?lag=16777216"), 503);
        // The same as a check's own limit, and as JSON facts.
        let limited = Node::new(&replica, "max-lag-bytes = \"16MB\"");
        let (status, body) = limited.get("/replica");
        assert_eq!(status, 503, "{body}");
        assert!(body.contains("exceeds max-lag-bytes 16 MB"), "{body}");
        let (_, json) = r.get("/replica?format=json");
        let lag: u64 = json
            .split("\"replica:replayLagBytes\":[{\"status\":\"pass\",\"observedValue\":")
            .nth(1)
            .and_then(|rest| rest.split(',').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no replayLagBytes in {json}"));
        assert!(lag >= 20 << 20, "{lag}: {json}");
        // lagging = "warning": the same replica eases off for HAProxy's
        // agent (a lower weight) and keeps serving HTTP, unless ?lag= asks.
        let eased = {
            let dir = TempDir::new("pg-eased");
            let pass = passfile(&dir);
            let text = format!(
                "state-dir = \"{}\"\nagent = true\nagent-route = \"/replica\"\n\
                 agent-warning-weight = 25\n\n{}[routes]\n\"/replica\" = [\"replica\"]\n",
                dir.join("state").display(),
                check_section(
                    "replica",
                    &replica,
                    &pass,
                    "role = \"replica\"\nmax-lag-bytes = \"16MB\"\nlagging = \"warning\"",
                )
            );
            Node::with_config(dir, &text)
        };
        let args = eased.args();
        let xinetd = Xinetd::start(BIN, &[args[0].as_str(), args[1].as_str()]);
        let agent = || exchange(xinetd.port(), b"", Duration::from_secs(10)).text();
        assert_eq!(agent(), "up ready 25%\n");
        let (status, body) = eased.get("/replica");
        assert_eq!(status, 200, "{body}");
        assert!(body.contains("exceeds max-lag-bytes 16 MB"), "{body}");
        assert_eq!(eased.status("GET", "/replica?lag=16MB"), 503);
        replica.resume_replay();
        replica.catch_up(&primary);
        assert_eq!(r.status("GET", "/replica?lag=16MB"), 200);
        assert_eq!(limited.status("GET", "/replica"), 200);
        assert_eq!(agent(), "up ready 100%\n");
        drop(xinetd);
        // Idle: the last replayed transaction grows old, the lag does not.
        let strict = Node::new(&replica, "max-lag = \"5s\"");
        assert_eq!(strict.status("GET", "/replica"), 200);
        std::thread::sleep(Duration::from_secs(15));
        let (status, body) = strict.get("/replica?format=json");
        assert_eq!(status, 200, "{body}");
        assert!(
            body.contains(
                "\"replica:replayLagSeconds\":[{\"status\":\"pass\",\"observedValue\":0,"
            ),
            "{body}"
        );
        let (status, body) = strict.get("/replica");
        assert_eq!(status, 200, "{body}");
        assert!(body.contains("/ 0s"), "{body}");
    }

    #[test]
    fn a_standby_without_hot_standby_answers_its_reason() {
        let primary = primary();
        let standby = Postgres::start_replica(&primary, options().hot_standby(false));
        let run = run_with_input(
            BIN,
            &[
                "postgres".into(),
                "--host".into(),
                path_str(standby.socket_dir()),
                "--port".into(),
                standby.port().to_string(),
            ],
            b"OPTIONS / HTTP/1.0\r\n\r\n",
        );
        let response = run.response();
        assert_eq!(response.status, 503, "{}", run.stderr);
        assert!(
            response
                .body_text()
                .contains("not accepting connections: hot standby is off"),
            "{}",
            response.body_text()
        );
        // The primary's ping passes.
        let run = run_with_input(
            BIN,
            &[
                "postgres".into(),
                "--host".into(),
                path_str(primary.socket_dir()),
                "--port".into(),
                primary.port().to_string(),
            ],
            b"GET / HTTP/1.0\r\n\r\n",
        );
        assert_eq!(run.response().status, 200, "{}", run.stderr);
    }

    /// `inetd-health postgres ARGS` over pipes with `request`, its state in
    /// `dir`.
    fn cli(dir: &TempDir, args: &[&str], request: &str) -> Run {
        // The service's flags come before the check's subcommand.
        let mut all: Vec<String> = vec!["--state-dir".into(), path_str(&dir.join("state"))];
        if args.contains(&"--once") {
            all.push("--once".into());
        }
        all.push("postgres".into());
        all.extend(
            args.iter()
                .filter(|a| **a != "--once")
                .map(|a| a.to_string()),
        );
        run_with_input(BIN, &all, request.as_bytes())
    }

    fn socket_args(pg: &Postgres) -> Vec<String> {
        vec![
            "--host".into(),
            path_str(pg.socket_dir()),
            "--port".into(),
            pg.port().to_string(),
        ]
    }

    #[test]
    fn each_auth_method_logs_in_and_a_wrong_password_is_access_denied() {
        use std::os::unix::fs::PermissionsExt;
        let pg = Postgres::start(
            options()
                .hba("local all mon_trust trust")
                .hba("local all mon_peer peer map=monitor")
                .ident("monitor /^.*$ mon_peer")
                .hba("host all mon_md5 127.0.0.1/32 md5"),
        );
        pg.create_role(MONITOR, Some(PASSWORD), Encryption::Scram);
        pg.create_role("mon_trust", None, Encryption::Scram);
        pg.create_role("mon_peer", None, Encryption::Scram);
        pg.create_role("mon_md5", Some("md5-secret"), Encryption::Md5);
        let dir = TempDir::new("pg-auth");
        let good = dir.join("good");
        std::fs::write(
            &good,
            format!("127.0.0.1:*:*:mon_md5:md5-secret\nlocalhost:*:*:{MONITOR}:{PASSWORD}\n"),
        )
        .unwrap();
        let wrong = dir.join("wrong");
        std::fs::write(
            &wrong,
            format!("*:*:*:mon_md5:nope\n*:*:*:{MONITOR}:nope\n"),
        )
        .unwrap();
        for f in [&good, &wrong] {
            std::fs::set_permissions(f, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        let socket = socket_args(&pg);
        let tcp = [
            "--host".to_string(),
            "127.0.0.1".into(),
            "--port".into(),
            pg.port().to_string(),
        ];
        let get = "GET / HTTP/1.0\r\n\r\n";
        for (via, user, file) in [
            (&socket[..], "mon_trust", None),
            (&socket[..], "mon_peer", None),
            (&tcp[..], "mon_md5", Some(&good)),
            (&socket[..], MONITOR, Some(&good)),
        ] {
            let mut args: Vec<String> = via.to_vec();
            args.extend([
                "--user".into(),
                user.into(),
                "--dbname".into(),
                "postgres".into(),
            ]);
            if let Some(f) = file {
                args.extend(["--passfile".into(), path_str(f)]);
            }
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let run = cli(&dir, &args, get);
            let response = run.response();
            assert_eq!(
                response.status,
                200,
                "{user}: {}\n{}",
                response.body_text(),
                run.stderr
            );
            assert!(
                response.body_text().contains("primary"),
                "{}",
                response.body_text()
            );
        }
        for (via, user) in [(&tcp[..], "mon_md5"), (&socket[..], MONITOR)] {
            let mut args: Vec<String> = via.to_vec();
            args.extend([
                "--user".into(),
                user.into(),
                "--dbname".into(),
                "postgres".into(),
                "--passfile".into(),
                path_str(&wrong),
            ]);
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let run = cli(&dir, &args, get);
            let response = run.response();
            let body = response.body_text();
            assert_eq!(response.status, 503, "{user}: {body}");
            assert!(body.contains("access denied"), "{body}");
            // The account and the file only in the log.
            assert!(!body.contains(user) && !body.contains("wrong"), "{body}");
            assert!(
                run.stderr.contains(user),
                "{user} not in the log: {}",
                run.stderr
            );
        }
        // A passfile others can read is refused, as libpq refuses it.
        for mode in [0o644, 0o640] {
            std::fs::set_permissions(&good, std::fs::Permissions::from_mode(mode)).unwrap();
            let mut args = socket.clone();
            args.extend([
                "--user".into(),
                MONITOR.into(),
                "--passfile".into(),
                path_str(&good),
            ]);
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            // Over a pipe, a usage error: exit 64 and the reason with the
            // fix, nothing healthy on stdout.
            let run = cli(&dir, &args, get);
            assert_eq!(run.code, Some(64), "mode {mode:o}: {}", run.stderr);
            assert!(run.stdout.is_empty(), "{}", run.stdout_text());
            let readable = if mode & 0o004 != 0 {
                "readable by others"
            } else {
                "readable by its group"
            };
            assert!(
                run.stderr.contains(readable),
                "mode {mode:o}: {}",
                run.stderr
            );
            assert!(run.stderr.contains("chmod 0600"), "{}", run.stderr);
        }
    }

    /// A check built as the config builds it, run in this process.
    fn built(
        server: inetd_health::spec::PgServer,
        state: &Path,
    ) -> Box<dyn inetd_health::check::Check + Send + Sync> {
        inetd_health::spec::Spec::new(inetd_health::spec::Kind::Postgres(Box::new(server)))
            .build(&inetd_health::state::StateDir::given(state))
            .unwrap_or_else(|e| panic!("{e}"))
    }

    fn run_once(check: &dyn inetd_health::check::Check) -> inetd_health::check::Verdict {
        check
            .run(inetd_health::Deadline::after(Duration::from_secs(10)))
            .unwrap()
    }

    #[test]
    fn a_thousand_pings_and_a_thousand_logins_leave_no_line_in_the_log() {
        use inetd_health::check::Health;
        let pg = primary();
        let dir = TempDir::new("pg-quiet");
        std::fs::create_dir(dir.join("state")).unwrap();
        let pass = passfile(&dir);
        let ping = built(
            inetd_health::spec::PgServer {
                host: Some(path_str(pg.socket_dir())),
                port: Some(pg.port()),
                ..Default::default()
            },
            &dir.join("state"),
        );
        let tcp_ping = built(
            inetd_health::spec::PgServer {
                host: Some("127.0.0.1".into()),
                port: Some(pg.port()),
                ..Default::default()
            },
            &dir.join("state"),
        );
        let login = built(
            inetd_health::spec::PgServer {
                host: Some(path_str(pg.socket_dir())),
                port: Some(pg.port()),
                user: Some(MONITOR.into()),
                dbname: Some("postgres".into()),
                passfile: Some(pass),
                role: inetd_health::check::postgres::Role::Primary,
                ..Default::default()
            },
            &dir.join("state"),
        );
        std::thread::sleep(Duration::from_millis(300));
        let before = pg.log_lines();
        for i in 0..1000 {
            let check = if i % 2 == 0 { &ping } else { &tcp_ping };
            let v = run_once(&**check);
            assert_eq!(v.health, Health::Healthy, "ping {i}: {}", v.reason);
            let v = run_once(&*login);
            assert_eq!(v.health, Health::Healthy, "login {i}: {}", v.reason);
        }
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(
            pg.log_lines(),
            before,
            "lines logged by 1000 pings and 1000 logins:\n{}",
            pg.log_text()
        );
    }

    /// The role's SCRAM secret as PostgreSQL stores it, for `password`
    /// with `salt` and `iterations`: what `ALTER ROLE … PASSWORD` takes
    /// pre-hashed (PostgreSQL 15 always uses 4096 iterations itself).
    fn scram_secret(password: &str, salt: &[u8], iterations: u32) -> String {
        use inetd_health::postgres::scram::{base64_encode, Keys};
        let keys = Keys::derive(password, salt, iterations);
        format!(
            "SCRAM-SHA-256${iterations}:{}${}:{}",
            base64_encode(salt),
            base64_encode(&inetd_health::hash::sha256(&keys.client_key)),
            base64_encode(&keys.server_key)
        )
    }

    #[test]
    fn scram_keys_are_derived_once_per_salt() {
        use inetd_health::check::Health;
        let pg = primary();
        let dir = TempDir::new("pg-scram");
        std::fs::create_dir(dir.join("state")).unwrap();
        // Many iterations, so that a derivation shows in the time a poll
        // takes.
        const ITERATIONS: u32 = 25_000;
        let started = Instant::now();
        let secret = scram_secret(PASSWORD, b"first-salt-0001", ITERATIONS);
        let derivation = started.elapsed();
        pg.psql(&format!("ALTER ROLE {MONITOR} PASSWORD '{secret}'"));
        let check = built(
            inetd_health::spec::PgServer {
                host: Some("127.0.0.1".into()),
                port: Some(pg.port()),
                user: Some(MONITOR.into()),
                dbname: Some("postgres".into()),
                passfile: Some(passfile(&dir)),
                ..Default::default()
            },
            &dir.join("state"),
        );
        let timed = || {
            let started = Instant::now();
            let v = run_once(&*check);
            assert_eq!(v.health, Health::Healthy, "{}", v.reason);
            started.elapsed()
        };
        let first = timed();
        let kept: Vec<_> = std::fs::read_dir(dir.join("state"))
            .unwrap()
            .flatten()
            .collect();
        assert_eq!(kept.len(), 1, "{kept:?}");
        let second = timed();
        let third = timed();
        assert!(
            first >= derivation / 2,
            "first {first:?}, a derivation {derivation:?}"
        );
        assert!(
            second < derivation / 4 && third < derivation / 4,
            "polls with kept keys took {second:?} and {third:?}; a derivation {derivation:?}"
        );
        // A new salt (the password set again): derived again, still 200.
        let before = std::fs::read(kept[0].path()).unwrap();
        pg.psql(&format!(
            "ALTER ROLE {MONITOR} PASSWORD '{}'",
            scram_secret(PASSWORD, b"second-salt-002", ITERATIONS)
        ));
        let after_change = timed();
        assert!(
            after_change >= derivation / 2,
            "{after_change:?}: not derived again?"
        );
        assert_ne!(std::fs::read(kept[0].path()).unwrap(), before);
        assert!(timed() < derivation / 4);
        // The server's own ALTER ROLE (a fresh salt, 4096 iterations).
        pg.set_password(MONITOR, PASSWORD, Encryption::Scram);
        timed();
    }

    #[test]
    fn prometheus_scrapes_both_servers() {
        use inetd_health_testkit::prometheus::Prometheus;
        let (primary, replica) = pair();
        let dir = TempDir::new("pg-prom");
        let pass = passfile(&dir);
        let mut text = format!("state-dir = \"{}\"\n\n", dir.join("state").display());
        text.push_str(&check_section(
            "primary",
            &primary,
            &pass,
            "role = \"primary\"",
        ));
        text.push_str(&check_section(
            "replica",
            &replica,
            &pass,
            "role = \"replica\"",
        ));
        text.push_str("[routes]\n\"/\" = [\"primary\", \"replica\"]\n");
        let node = Node::with_config(dir, &text);
        let args = node.args();
        let xinetd = Xinetd::start(BIN, &[args[0].as_str(), args[1].as_str()]);
        let scrape = exchange(
            xinetd.port(),
            b"GET /metrics HTTP/1.0\r\n\r\n",
            Duration::from_secs(10),
        );
        let body = Response::parse(&scrape.bytes).unwrap().body_text();
        for line in [
            "inetd_health_postgres_in_recovery{check=\"primary\"} 0",
            "inetd_health_postgres_in_recovery{check=\"replica\"} 1",
            "inetd_health_postgres_wal_receiver_streaming{check=\"replica\"} 1",
            "inetd_health_postgres_replay_lag_bytes{check=\"replica\"} 0",
            "inetd_health_postgres_replay_lag_seconds{check=\"replica\"} 0",
        ] {
            assert!(body.lines().any(|l| l == line), "no {line:?} in:\n{body}");
        }
        let prometheus = Prometheus::start(xinetd.port(), "/metrics");
        prometheus.wait_scraped(Duration::from_secs(20)).unwrap();
        for (q, want) in [
            ("inetd_health_postgres_in_recovery{check=\"replica\"}", "1"),
            ("inetd_health_postgres_in_recovery{check=\"primary\"}", "0"),
            (
                "inetd_health_postgres_wal_receiver_streaming{check=\"replica\"}",
                "1",
            ),
            ("inetd_health_check_success{check=\"replica\"}", "1"),
        ] {
            assert_eq!(
                prometheus.value(q).as_deref(),
                Some(want),
                "{q}: {}",
                prometheus.query(q)
            );
        }
    }

    #[test]
    fn once_exit_codes_and_perfdata() {
        let (primary, replica) = pair();
        let dir = TempDir::new("pg-once");
        let pass = passfile(&dir);
        let once = |pg: &Postgres, role: &str| {
            let mut args = socket_args(pg);
            args.extend([
                "--user".into(),
                MONITOR.into(),
                "--dbname".into(),
                "postgres".into(),
                "--passfile".into(),
                path_str(&pass),
                "--role".into(),
                role.into(),
                "--once".into(),
            ]);
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            cli(&dir, &args, "")
        };
        let run = once(&primary, "primary");
        assert_eq!(run.code, Some(0), "{}", run.stdout_text());
        assert!(
            run.stdout_text().starts_with("OK: "),
            "{}",
            run.stdout_text()
        );
        let run = once(&replica, "primary");
        assert_eq!(run.code, Some(2), "{}", run.stdout_text());
        let run = once(&replica, "replica");
        assert_eq!(run.code, Some(0), "{}", run.stdout_text());
        let out = run.stdout_text();
        assert!(
            out.contains("| replay_lag_bytes=0B;;;0 replay_lag_seconds=0s;;;0"),
            "{out}"
        );
        // Nothing listening: CRITICAL.
        let mut args = vec![
            "--host".to_string(),
            path_str(&dir.join("nowhere")),
            "--once".into(),
        ];
        args.extend(["--port".into(), "5432".into()]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let run = cli(&dir, &args, "");
        assert_eq!(run.code, Some(2), "{}", run.stdout_text());
    }

    fn doc_block(info: &str) -> String {
        inetd_health_testkit::docs::block("postgres.md", info)
    }

    /// docs/postgres.md as an operator follows it: its pg_hba.conf lines,
    /// its grants, its passfile, its Patroni-compatible config and its
    /// HAProxy backends, on a primary and a streaming replica.
    #[test]
    fn docs_postgres_md_works_as_written() {
        let hba: Vec<String> = doc_block("text pg_hba")
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
            .map(String::from)
            .collect();
        assert!(hba.len() >= 4, "{hba:?}");
        let options = hba
            .iter()
            .fold(Options::default().log_connections(false), |o, l| o.hba(l));
        let primary = Postgres::start(options.clone());
        primary.psql(&doc_block("sql grants"));
        let replica = Postgres::start_replica(&primary, options);
        replica.wait_wal_receiver("streaming");
        let nodes: Vec<Node> = [&primary, &replica]
            .iter()
            .map(|pg| {
                use std::os::unix::fs::PermissionsExt;
                let dir = TempDir::new("pg-doc");
                let pass = dir.join("pgpass");
                // The file names the standard port; the servers here have
                // their own.
                std::fs::write(&pass, doc_block("text pgpass").replace(":5432:", ":*:")).unwrap();
                std::fs::set_permissions(&pass, std::fs::Permissions::from_mode(0o600)).unwrap();
                let config = format!(
                    "state-dir = \"{}\"\n{}",
                    dir.join("state").display(),
                    doc_block("toml patroni-8008")
                        .replace(
                            "host = \"/var/run/postgresql\"",
                            &format!(
                                "host = \"{}\"\nport = {}",
                                pg.socket_dir().display(),
                                pg.port()
                            ),
                        )
                        .replace("/etc/inetd-health/pgpass", &path_str(&pass))
                );
                Node::with_config(dir, &config)
            })
            .collect();
        for node in &nodes {
            let mut args = node.args();
            args.push("--check-config".into());
            let run = run_with_input(BIN, &args, b"");
            assert_eq!(run.code, Some(0), "{}{}", run.stdout_text(), run.stderr);
        }
        let paths = [
            "/primary",
            "/master",
            "/read-write",
            "/replica",
            "/read-only",
            "/health",
            "/",
        ];
        assert_eq!(
            statuses(&nodes[0], &paths),
            [200, 200, 200, 503, 200, 200, 200]
        );
        assert_eq!(
            statuses(&nodes[1], &paths),
            [503, 503, 503, 200, 200, 200, 503]
        );
        assert_eq!(nodes[1].status("OPTIONS", "/replica?lag=16MB"), 200);
        let before = [primary.log_lines(), replica.log_lines()];
        let xinetds: Vec<Xinetd> = nodes
            .iter()
            .map(|n| {
                let args = n.args();
                Xinetd::start(BIN, &[args[0].as_str(), args[1].as_str()])
            })
            .collect();
        let replicas_port = inetd_health_testkit::client::free_port();
        let haproxy = Haproxy::start_sections(|port| {
            let mut text = doc_block("haproxy pg-backends")
                .replace("bind *:5000", &format!("bind 127.0.0.1:{port}"))
                .replace("bind *:5001", &format!("bind 127.0.0.1:{replicas_port}"))
                // Faster than production, to keep the test short.
                .replace("inter 3s", "inter 300ms");
            for (i, pg) in [&primary, &replica].iter().enumerate() {
                let line = format!("10.0.0.1{}:5432 maxconn 100 check port 8008", i + 1);
                text = text.replace(
                    &line,
                    &format!(
                        "127.0.0.1:{} maxconn 100 check port {}",
                        pg.port(),
                        xinetds[i].port()
                    ),
                );
            }
            text
        });
        let want = [
            ("primary", "pg1", "UP"),
            ("primary", "pg2", "DOWN"),
            ("replicas", "pg1", "DOWN"),
            ("replicas", "pg2", "UP"),
        ];
        let mut last = String::new();
        let ok = wait_until(SETTLE, Duration::from_millis(100), || {
            last.clear();
            want.iter().all(|(proxy, server, status)| {
                let state = haproxy.state_of(proxy, server);
                last.push_str(&format!("{proxy}/{server}: {state:?}\n"));
                matches!(&state, Ok(s) if s.status == *status)
            })
        });
        assert!(ok, "HAProxy's stats never showed {want:?}:\n{last}");
        // HAProxy's polls and the pings left nothing in the servers' logs.
        assert_eq!(
            [primary.log_lines(), replica.log_lines()],
            before,
            "{}\n{}",
            primary.log_text(),
            replica.log_text()
        );
    }

    /// `primary` set: the byte lag against the primary's position, when
    /// the standby's own figures cannot tell (its receiver stopped); an
    /// unreachable or silent primary fails closed, within the deadline.
    #[test]
    fn byte_lag_against_the_primary_and_a_primary_that_cannot_be_asked() {
        let (primary, replica) = pair();
        // Cut the standby off: its receiver stops, its last received
        // position stays behind.
        replica.psql("ALTER SYSTEM SET primary_conninfo = 'host=127.0.0.1 port=1'");
        replica.reload();
        let stopped = wait_until(SETTLE, Duration::from_millis(100), || {
            replica.wal_receiver_status() != "streaming"
        });
        assert!(stopped, "{}", replica.wal_receiver_status());
        primary.write_bytes(20 << 20);
        let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let node = |extra: &str| {
            Node::new(
                &replica,
                &format!("streaming = false\nmax-lag-bytes = \"16MB\"\ntimeout = \"2s\"\n{extra}"),
            )
        };
        let measured = node(&format!("primary = \"127.0.0.1:{}\"", primary.port()));
        let (status, body) = measured.get("/read-only");
        assert_eq!(status, 503, "{body}");
        assert!(body.contains("exceeds max-lag-bytes 16 MB"), "{body}");
        // Its own figures say 0: without the primary it cannot tell.
        let alone = node("");
        let (status, body) = alone.get("/read-only");
        assert_eq!(status, 503, "{body}");
        assert!(
            body.contains("replay lag unknown: not streaming, and no primary measured"),
            "{body}"
        );
        assert_eq!(alone.status("GET", "/read-only?lag=16MB"), 503);
        let refused = node("primary = \"127.0.0.1:1\"");
        let (status, body) = refused.get("/read-only");
        assert_eq!(status, 503, "{body}");
        assert!(
            body.contains("primary not measured: cannot connect"),
            "{body}"
        );
        let hung = node(&format!(
            "primary = \"127.0.0.1:{}\"",
            silent.local_addr().unwrap().port()
        ));
        let started = Instant::now();
        let (status, body) = hung.get("/read-only");
        let took = started.elapsed();
        assert_eq!(status, 503, "{body}");
        assert!(body.contains("primary not measured: timed out"), "{body}");
        assert!(took < Duration::from_millis(2500), "{took:?}");
        // Reconnected and caught up: 200, measured against the primary.
        replica.psql(&format!(
            "ALTER SYSTEM SET primary_conninfo = 'host={} port={} user=postgres'",
            primary.socket_dir().display(),
            primary.port()
        ));
        replica.reload();
        replica.wait_wal_receiver("streaming");
        replica.catch_up(&primary);
        let (status, body) = measured.get("/read-only");
        assert_eq!(status, 200, "{body}");
        assert!(body.contains("(bytes against the primary)"), "{body}");
    }

    /// A role without pg_monitor on a real standby: the WAL receiver's
    /// state is hidden, so a replica that must stream is UNKNOWN (exit 3)
    /// naming the grant, while role any still passes.
    #[test]
    fn a_role_without_pg_monitor_on_a_standby() {
        let primary = Postgres::start(options().hba("local all inetd_nomon scram-sha-256"));
        primary.create_role("inetd_nomon", Some(PASSWORD), Encryption::Scram);
        let replica = Postgres::start_replica(
            &primary,
            options().hba("local all inetd_nomon scram-sha-256"),
        );
        replica.wait_wal_receiver("streaming");
        let dir = TempDir::new("pg-nomon");
        let pass = dir.join("pgpass");
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::write(&pass, format!("*:*:*:inetd_nomon:{PASSWORD}\n")).unwrap();
            std::fs::set_permissions(&pass, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        let once = |role: &str| {
            let mut args = socket_args(&replica);
            args.extend([
                "--user".into(),
                "inetd_nomon".into(),
                "--dbname".into(),
                "postgres".into(),
                "--passfile".into(),
                path_str(&pass),
                "--role".into(),
                role.into(),
                "--once".into(),
            ]);
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            cli(&dir, &args, "")
        };
        let run = once("replica");
        assert_eq!(run.code, Some(3), "{}", run.stdout_text());
        assert!(
            run.stdout_text().contains("grant pg_monitor"),
            "{}",
            run.stdout_text()
        );
        let run = once("any");
        assert_eq!(run.code, Some(0), "{}", run.stdout_text());
    }

    /// read-write and read-only as libpq's target_session_attrs mean them:
    /// a primary whose transactions default to read-only is read-only.
    #[test]
    fn read_write_and_read_only_roles() {
        let (primary, replica) = pair();
        let dir = TempDir::new("pg-rw");
        let pass = passfile(&dir);
        let mut text = format!("state-dir = \"{}\"\n\n", dir.join("state").display());
        for (name, pg, role) in [
            ("p-rw", &primary, "read-write"),
            ("p-ro", &primary, "read-only"),
            ("r-rw", &replica, "read-write"),
            ("r-ro", &replica, "read-only"),
        ] {
            text.push_str(&check_section(
                name,
                pg,
                &pass,
                &format!("role = \"{role}\""),
            ));
        }
        text.push_str(
            "[routes]\n\"/p-rw\" = [\"p-rw\"]\n\"/p-ro\" = [\"p-ro\"]\n\
             \"/r-rw\" = [\"r-rw\"]\n\"/r-ro\" = [\"r-ro\"]\n",
        );
        let node = Node::with_config(dir, &text);
        let paths = ["/p-rw", "/p-ro", "/r-rw", "/r-ro"];
        assert_eq!(statuses(&node, &paths), [200, 503, 503, 200]);
        primary.psql("ALTER SYSTEM SET default_transaction_read_only = on");
        primary.reload();
        assert_eq!(statuses(&node, &paths), [503, 200, 503, 200]);
        let (_, body) = node.get("/p-rw");
        assert!(
            body.contains("default_transaction_read_only is on"),
            "{body}"
        );
    }

    /// The cache and the cap, as for the other kinds: a cached standby's
    /// verdict keeps its facts, so ?lag= and the metrics still judge it.
    #[test]
    fn a_cached_and_capped_standby_keeps_its_facts() {
        let (primary, replica) = pair();
        let r = Node::new(&replica, "cache-ttl = \"30s\"\nmax-concurrent = 1");
        replica.pause_replay();
        primary.write_bytes(20 << 20);
        replica.wait_received(primary.current_wal_lsn());
        let (status, first) = r.get("/replica");
        assert_eq!(status, 200, "{first}");
        assert!(!first.contains("cached"), "{first}");
        // Within the TTL: the kept verdict, judged by each request's ?lag=.
        let (status, body) = r.get("/replica?lag=64MB");
        assert_eq!(status, 200, "{body}");
        assert!(body.contains("cached"), "{body}");
        let (status, body) = r.get("/replica?lag=16MB");
        assert_eq!(status, 503, "{body}");
        assert!(body.contains("exceeds ?lag= 16 MB"), "{body}");
        let (_, metrics) = r.get("/metrics");
        assert!(
            metrics
                .lines()
                .any(|l| l == "inetd_health_postgres_wal_receiver_streaming{check=\"replica\"} 1"),
            "{metrics}"
        );
        replica.resume_replay();
    }

    /// 40 kB of WAL that is no transaction (20 logical messages), as
    /// checkpoints, the running-xacts snapshots and segment switches are.
    const NO_TRANSACTION_WAL: &str =
        "SELECT count(pg_logical_emit_message(false, 'inetd-health', repeat('x', 2000))) \
         FROM generate_series(1, 20)";

    /// The replica check of `replica` with `max-lag = 2s`, as the monitoring
    /// role, its state in `dir/state`.
    fn max_lag_check(
        replica: &Postgres,
        dir: &TempDir,
    ) -> Box<dyn inetd_health::check::Check + Send + Sync> {
        std::fs::create_dir(dir.join("state")).unwrap();
        built(
            inetd_health::spec::PgServer {
                host: Some(path_str(replica.socket_dir())),
                port: Some(replica.port()),
                user: Some(MONITOR.into()),
                dbname: Some("postgres".into()),
                passfile: Some(passfile(dir)),
                role: inetd_health::check::postgres::Role::Replica,
                max_lag: Some(Duration::from_secs(2)),
                ..Default::default()
            },
            &dir.join("state"),
        )
    }

    /// WAL that is no transaction arriving on a quiet primary's replica
    /// (here pg_logical_emit_message, as checkpoints, the running-xacts
    /// snapshots and segment switches do): a poll that lands between its
    /// arrival and its replay must not read the age of the last
    /// transaction as the lag.
    #[test]
    fn wal_without_transactions_is_no_lag_on_a_quiet_primary() {
        use inetd_health::check::Health;
        let (primary, replica) = pair();
        let dir = TempDir::new("pg-quiet-wal");
        let check = max_lag_check(&replica, &dir);
        // The last transaction grows older than max-lag.
        std::thread::sleep(Duration::from_secs(3));
        let stop = std::sync::atomic::AtomicBool::new(false);
        let failures = std::thread::scope(|scope| {
            let writer = scope.spawn(|| {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    primary.psql(NO_TRANSACTION_WAL);
                }
            });
            let mut failures = Vec::new();
            for _ in 0..200 {
                let v = run_once(&*check);
                if v.health != Health::Healthy {
                    failures.push(v.reason);
                }
            }
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            writer.join().unwrap();
            failures
        });
        assert!(
            failures.is_empty(),
            "{} of 200 polls down: {:?}",
            failures.len(),
            &failures[..failures.len().min(5)]
        );
    }

    /// A replay that stands still for a moment with WAL waiting (what a
    /// busy machine does to the startup process, here a pause of ~0.1 s)
    /// is not a stuck one: the poll waits for it to move instead of
    /// judging the standby by its last transaction (here none since it
    /// started, which would be unknown: a 503 on a healthy replica).
    #[test]
    fn a_replay_that_stands_still_for_a_moment_is_not_judged_stuck() {
        use inetd_health::check::Health;
        let (primary, replica) = pair();
        let dir = TempDir::new("pg-stall");
        let check = max_lag_check(&replica, &dir);
        // Replay paused, with WAL received that is no transaction.
        let wal_waiting = || {
            replica.pause_replay();
            primary.psql(NO_TRANSACTION_WAL);
            replica.wait_received(primary.current_wal_lsn());
        };
        wal_waiting();
        // Logged in beforehand, so that the resume lands ~0.1 s into the
        // poll however busy the machine.
        let mut resumer = replica.session();
        let verdict = std::thread::scope(|scope| {
            scope.spawn(|| {
                std::thread::sleep(Duration::from_millis(100));
                resumer.run("SELECT pg_wal_replay_resume();");
            });
            run_once(&*check)
        });
        assert_eq!(verdict.health, Health::Healthy, "{}", verdict.reason);
        assert!(verdict.reason.contains("replay lag"), "{}", verdict.reason);
        // Paused for good, the standby is judged by its last transaction
        // (none: unknown) after a quarter of a second, not at the timeout.
        wal_waiting();
        let started = Instant::now();
        let verdict = run_once(&*check);
        let took = started.elapsed();
        assert_eq!(verdict.health, Health::Unknown, "{}", verdict.reason);
        assert!(
            verdict
                .reason
                .contains("replay lag unknown: no transaction replayed"),
            "{}",
            verdict.reason
        );
        assert!(took < Duration::from_secs(2), "{took:?}");
        replica.resume_replay();
    }
}
