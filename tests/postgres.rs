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
