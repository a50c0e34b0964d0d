//! The `redis` check against real Redis 7 servers and Sentinels.
//!
//! Servers come from `inetd_health_testkit::redis`: a private primary per
//! test ([`Redis::start`]), replicas of it ([`Redis::start_replica`]) and
//! Sentinels watching it ([`Sentinels::start`]), on free loopback ports and
//! unix sockets in temporary directories, stopped by pid. A missing
//! `redis-server`, `redis-sentinel` or `redis-cli` fails the test (run
//! `scripts/test`, which installs them); nothing is skipped.
//!
//! The first section tests the fixtures themselves; the check's own system
//! tests follow it.

use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::Path;
use std::time::{Duration, Instant};

use inetd_health_testkit::procs::{processes_matching, wait_until};
use inetd_health_testkit::redis::{Auth, Options, Redis, Reply, Sentinels, Via};

// ===========================================================================
// The fixtures (inetd_health_testkit::redis) themselves.
// ===========================================================================

/// Bound on a failover, from the request (or the primary's stop) to a
/// majority of the Sentinels naming the replica.
const FIXTURE_FAILOVER: Duration = Duration::from_secs(20);

fn assert_gone(pids: &[(u32, String)]) {
    for (pid, cmdline) in pids {
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists(),
            "pid {pid} ({cmdline}) still there"
        );
    }
}

fn status(text: &str) -> Reply {
    Reply::Status(text.to_string())
}

fn bulk(text: &str) -> Reply {
    Reply::Bulk(text.as_bytes().to_vec())
}

#[test]
fn fixture_primary_answers_on_its_port_and_socket() {
    let redis = Redis::start(
        Options::default()
            .acl("user monitor on >monitor-pw +ping +info")
            .config("maxmemory 64mb"),
    );
    for via in [Via::Tcp, Via::Socket] {
        assert_eq!(
            redis.request_as(via, &Auth::none(), &["PING"]),
            Ok(status("PONG")),
            "{via:?}"
        );
        assert_eq!(
            redis.try_cli_as(via, &Auth::none(), &["PING"]).as_deref(),
            Ok("PONG")
        );
    }
    assert_eq!(redis.cli(&["SET", "k", "v"]), "OK");
    assert_eq!(redis.command(&["GET", "k"]), bulk("v"));
    assert_eq!(redis.command(&["GET", "missing"]), Reply::Nil);

    // Redis 7, as the fixture configured it.
    let server = redis.info("server");
    assert!(server["redis_version"].starts_with("7."), "{server:?}");
    assert_eq!(server["tcp_port"], redis.port().to_string());
    assert_eq!(server["process_id"], redis.pid().to_string());
    assert_eq!(redis.role(), "master");
    assert_eq!(redis.info("replication")["connected_slaves"], "0");
    assert_eq!(redis.config_get("save").as_deref(), Some(""));
    assert_eq!(redis.config_get("appendonly").as_deref(), Some("no"));
    assert_eq!(redis.config_get("maxmemory").as_deref(), Some("67108864"));
    assert_eq!(redis.config_get("bind").as_deref(), Some("127.0.0.1"));
    let socket = std::fs::metadata(redis.socket_path()).unwrap();
    assert!(socket.file_type().is_socket());
    assert_eq!(socket.permissions().mode() & 0o777, 0o700);
    assert!(redis.socket_path().starts_with(redis.dir()));
    assert!(redis.log_lines_matching("Ready to accept connections") > 0);
    assert!(redis.log_path().starts_with(redis.dir()));

    // The server and its title (naming its redis.conf) are found in /proc.
    let processes = redis.processes();
    assert_eq!(processes.len(), 1, "{processes:?}");
    assert_eq!(processes[0].0, redis.pid());
    assert!(processes[0].1.contains("redis-server"), "{processes:?}");

    // An ACL user from the config file, and one set at run time.
    let monitor = Auth::user("monitor", "monitor-pw");
    assert_eq!(
        redis.request_as(Via::Socket, &monitor, &["PING"]),
        Ok(status("PONG"))
    );
    let denied = redis.request_as(Via::Tcp, &monitor, &["GET", "k"]).unwrap();
    assert!(denied.error().unwrap().starts_with("NOPERM"), "{denied:?}");
    redis.acl_setuser("reader on >reader-pw ~* +get");
    let reader = Auth::user("reader", "reader-pw");
    assert_eq!(
        redis
            .try_cli_as(Via::Tcp, &reader, &["GET", "k"])
            .as_deref(),
        Ok("v")
    );
    let err = redis
        .try_cli_as(Via::Tcp, &Auth::user("reader", "wrong"), &["GET", "k"])
        .unwrap_err();
    assert!(err.contains("WRONGPASS"), "{err}");

    // DEBUG from loopback: POPULATE, and SLEEP (busy, then answering).
    redis.populate(1000);
    assert_eq!(redis.command(&["DBSIZE"]), Reply::Integer(1001));
    let sleeping = redis.debug_sleep(Duration::from_millis(500));
    assert!(redis.request_as(Via::Tcp, &Auth::none(), &["PING"]).is_ok());
    assert_eq!(sleeping.join().unwrap(), Ok(status("OK")));
}

#[test]
fn fixture_requirepass_refuses_without_it() {
    // A password a config file must quote (a space, a `#`, a quote).
    let password = "p#w \"d\" \\";
    let mut redis = Redis::start(Options::default().requirepass(password));
    assert_eq!(redis.password(), Some(password));
    for via in [Via::Tcp, Via::Socket] {
        let refused = redis.request_as(via, &Auth::none(), &["PING"]).unwrap();
        assert!(
            refused.error().unwrap().starts_with("NOAUTH"),
            "{refused:?}"
        );
        let wrong = redis
            .request_as(via, &Auth::password("wrong"), &["PING"])
            .unwrap_err();
        assert!(wrong.starts_with("AUTH: WRONGPASS"), "{wrong}");
        assert_eq!(
            redis.request_as(via, &Auth::password(password), &["PING"]),
            Ok(status("PONG"))
        );
    }
    // redis-cli says so: a NOAUTH reply (exit 0), a failed AUTH on stderr.
    let noauth = redis
        .try_cli_as(Via::Tcp, &Auth::none(), &["PING"])
        .unwrap();
    assert!(noauth.starts_with("NOAUTH"), "{noauth}");
    let err = redis
        .try_cli_as(Via::Socket, &Auth::password("wrong"), &["PING"])
        .unwrap_err();
    assert!(err.contains("AUTH failed: WRONGPASS"), "{err}");
    assert_eq!(redis.cli(&["PING"]), "PONG");
    // The password is never on redis-cli's command line, only in its
    // environment: a run that lasts (the server asleep) shows both in /proc.
    let sleeper = redis.debug_sleep(Duration::from_secs(2));
    std::thread::scope(|s| {
        let cli = s.spawn(|| redis.cli(&["PING"]));
        let mut clis = Vec::new();
        let seen = wait_until(
            Duration::from_millis(1500),
            Duration::from_millis(10),
            || {
                clis = processes_matching(&format!("-p {}", redis.port()));
                clis.iter().any(|(_, c)| c.contains("redis-cli"))
            },
        );
        assert!(seen, "{clis:?}");
        assert!(clis.iter().all(|(_, c)| !c.contains("p#w")), "{clis:?}");
        let (pid, _) = clis.iter().find(|(_, c)| c.contains("redis-cli")).unwrap();
        let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
        let want = format!("REDISCLI_AUTH={password}");
        assert!(
            environ.split(|&b| b == 0).any(|v| v == want.as_bytes()),
            "{:?}",
            String::from_utf8_lossy(&environ)
        );
        assert_eq!(cli.join().unwrap(), "PONG");
    });
    sleeper.join().unwrap().unwrap();

    // A new password: the old one is refused, the fixture follows.
    redis.set_password(Some("second"));
    assert!(redis
        .request_as(Via::Tcp, &Auth::password(password), &["PING"])
        .is_err());
    assert_eq!(redis.command(&["PING"]), status("PONG"));
    redis.set_password(None);
    assert_eq!(
        redis.request_as(Via::Tcp, &Auth::none(), &["PING"]),
        Ok(status("PONG"))
    );
}

#[test]
fn fixture_replica_links_up_and_replicates() {
    let primary = Redis::start(Options::default().requirepass("pw"));
    // Not replicated: a replica gets them with its first sync.
    primary.populate(100);
    let mut replica = Redis::start_replica(&primary, Options::default().requirepass("pw"));
    assert_ne!(replica.port(), primary.port());
    assert_eq!(replica.replica_of(), Some(primary.addr()));
    assert_eq!(replica.role(), "slave");
    let info = replica.info("replication");
    assert_eq!(info["master_link_status"], "up");
    assert_eq!(info["master_port"], primary.port().to_string());
    let info = primary.info("replication");
    assert_eq!(info["connected_slaves"], "1");
    assert!(
        info["slave0"].contains(&format!("port={},state=online", replica.port())),
        "{info:?}"
    );

    primary.command(&["SET", "key", "42"]);
    replica.catch_up(&primary);
    assert_eq!(replica.command(&["GET", "key"]), bulk("42"));
    assert_eq!(replica.command(&["DBSIZE"]), Reply::Integer(101));
    let readonly = replica.request(&["SET", "key", "1"]).unwrap();
    assert!(
        readonly.error().unwrap().starts_with("READONLY"),
        "{readonly:?}"
    );

    // A paused primary answers no client, yet still pings its replicas.
    primary.client_pause(1500);
    let paused = Instant::now();
    assert_eq!(
        primary.request_as(Via::Tcp, &Auth::password("pw"), &["PING"]),
        Ok(status("PONG"))
    );
    assert!(
        paused.elapsed() >= Duration::from_millis(1000),
        "{:?}",
        paused.elapsed()
    );
    let age = replica.info("replication")["master_last_io_seconds_ago"].clone();
    assert!(age == "0" || age == "1", "{age}");
    // A stopped primary sends nothing: the link's age grows (pings every
    // second), and is back under a second once it is continued.
    primary.sigstop();
    let aged = wait_until(Duration::from_secs(5), Duration::from_millis(50), || {
        replica.info("replication")["master_last_io_seconds_ago"]
            .parse::<u64>()
            .unwrap()
            >= 2
    });
    primary.sigcont();
    assert!(aged, "{:?}", replica.info("replication"));
    let fresh = wait_until(Duration::from_secs(5), Duration::from_millis(50), || {
        replica.info("replication")["master_last_io_seconds_ago"] == "0"
    });
    assert!(fresh, "{:?}", replica.info("replication"));
    assert_eq!(replica.info("replication")["master_link_status"], "up");

    // Detached, then attached again.
    replica.replicaof(None);
    assert_eq!(replica.role(), "master");
    assert_eq!(replica.replica_of(), None);
    replica.replicaof(Some(primary.addr()));
    replica.wait_link("up");
    assert_eq!(replica.role(), "slave");
}

#[test]
fn fixture_sentinels_agree_and_fail_over() {
    let primary = Redis::start(Options::default().requirepass("pw"));
    let replica = Redis::start_replica(&primary, Options::default().requirepass("pw"));
    let started = Instant::now();
    let mut sentinels = Sentinels::start(3, &primary, "mymaster", 2);
    eprintln!("3 Sentinels ready in {:?}", started.elapsed());
    assert_eq!(sentinels.len(), 3);
    assert_eq!(sentinels.master_name(), "mymaster");
    let ports = sentinels.ports();
    assert_eq!(ports.len(), 3);
    assert!(!ports.contains(&primary.port()) && !ports.contains(&replica.port()));
    for i in 0..3 {
        assert_eq!(sentinels.get_master_addr(i), Some(primary.addr()), "{i}");
        let master = sentinels.master_info(i).unwrap();
        assert_eq!(master["num-other-sentinels"], "2", "{master:?}");
        assert_eq!(master["quorum"], "2", "{master:?}");
        let replicas = sentinels.replicas(i).unwrap();
        assert_eq!(replicas.len(), 1, "{replicas:?}");
        assert_eq!(replicas[0]["port"], replica.port().to_string());
    }
    assert_eq!(sentinels.majority(), Some(primary.addr()));
    // An unknown group.
    assert_eq!(
        sentinels.request(0, &["SENTINEL", "get-master-addr-by-name", "other"]),
        Ok(Reply::Nil)
    );

    let failing_over = Instant::now();
    let new = sentinels.failover();
    let took = failing_over.elapsed();
    eprintln!("SENTINEL FAILOVER: a majority names the replica after {took:?}");
    assert_eq!(new, replica.addr());
    assert!(took < FIXTURE_FAILOVER, "{took:?}");
    assert_eq!(replica.role(), "master");
    // The old primary is made a replica of the new one.
    let demoted = wait_until(FIXTURE_FAILOVER, Duration::from_millis(50), || {
        primary.role() == "slave"
    });
    assert!(demoted, "{:?}", primary.info("replication"));
    primary.wait_link("up");
    sentinels.wait_master(replica.addr(), FIXTURE_FAILOVER);

    // One Sentinel stopped: the other two still name the new primary.
    let pid = sentinels.pid(1);
    sentinels.stop(1);
    assert!(!Path::new(&format!("/proc/{pid}")).exists());
    assert_eq!(sentinels.pid(1), 0);
    assert_eq!(sentinels.get_master_addr(1), None);
    assert!(sentinels.try_get_master_addr(1).is_err());
    assert_eq!(sentinels.majority(), Some(replica.addr()));
    // Two stopped: no majority.
    sentinels.stop(2);
    assert_eq!(sentinels.majority(), None);
    assert_eq!(sentinels.get_master_addr(0), Some(replica.addr()));
    // Back, with the view it left with.
    sentinels.start_again(1);
    assert_ne!(sentinels.pid(1), 0);
    sentinels.wait_master(replica.addr(), FIXTURE_FAILOVER);
}

#[test]
fn fixture_old_primary_restarts_as_a_master() {
    let mut primary = Redis::start(Options::default());
    let replica = Redis::start_replica(&primary, Options::default());
    let sentinels = Sentinels::start(3, &primary, "group", 2);
    let port = primary.port();
    let old_pid = primary.pid();
    primary.command(&["SET", "written", "before"]);
    replica.catch_up(&primary);

    // The primary stopped: the Sentinels fail over to the replica.
    let stopped = Instant::now();
    primary.stop();
    assert_eq!(primary.pid(), 0);
    assert!(!primary.socket_path().exists());
    let took = sentinels.wait_master(replica.addr(), FIXTURE_FAILOVER);
    eprintln!(
        "primary stopped: a majority names the replica after {took:?} ({:?} since the stop)",
        stopped.elapsed()
    );
    assert_eq!(replica.role(), "master");

    // Restarted on its port and directory, as a master outside their view.
    primary.start_again();
    assert_ne!(primary.pid(), old_pid);
    assert_eq!(primary.port(), port);
    assert_eq!(primary.role(), "master");
    assert_eq!(primary.info("replication")["connected_slaves"], "0");
    assert_eq!(primary.command(&["GET", "written"]), Reply::Nil);
    primary.command(&["SET", "written", "split"]);
    assert_eq!(sentinels.majority(), Some(replica.addr()));

    // Reset, the Sentinels forget it (no longer one of their replicas).
    sentinels.reset();
    for i in 0..3 {
        let replicas = sentinels.replicas(i).unwrap();
        assert!(
            replicas.iter().all(|r| r["port"] != port.to_string()),
            "{replicas:?}"
        );
    }
    assert_eq!(sentinels.majority(), Some(replica.addr()));
    assert_eq!(primary.role(), "master");
}

#[test]
fn fixture_stop_and_drop_leave_no_process() {
    let mut primary = Redis::start(Options::default());
    let replica = Redis::start_replica(&primary, Options::default());
    let mut sentinels = Sentinels::start(2, &primary, "leaks", 2);
    let primary_processes = primary.processes();
    let replica_processes = replica.processes();
    let sentinel_processes = sentinels.processes();
    assert_eq!(sentinel_processes.len(), 2, "{sentinel_processes:?}");
    assert!(
        sentinel_processes
            .iter()
            .all(|(_, c)| c.contains("redis-sentinel") && c.contains("sentinel")),
        "{sentinel_processes:?}"
    );
    assert!(replica_processes.iter().any(|(p, _)| *p == replica.pid()));

    // One Sentinel stopped by pid; then the rest with their guard.
    let dir = sentinels.dir().to_path_buf();
    sentinels.stop(0);
    assert_gone(&sentinel_processes[..1]);
    assert_eq!(sentinels.processes().len(), 1);
    drop(sentinels);
    assert_gone(&sentinel_processes);
    assert!(!dir.exists());

    let replica_dir = replica.dir().to_path_buf();
    drop(replica);
    assert_gone(&replica_processes);
    assert!(!replica_dir.exists());
    assert!(processes_matching(&replica_dir.display().to_string()).is_empty());

    // A stopped server is continued before it is told to stop, and a
    // second stop does nothing.
    let dir = primary.dir().to_path_buf();
    primary.sigstop();
    let stopping = Instant::now();
    primary.stop();
    assert!(
        stopping.elapsed() < Duration::from_secs(3),
        "{:?}",
        stopping.elapsed()
    );
    primary.stop();
    assert_gone(&primary_processes);
    assert!(primary.processes().is_empty());
    assert!(dir.exists(), "the directory stays until the guard goes");
    assert!(primary.log_lines_matching("Redis is now ready to exit") > 0);
    drop(primary);
    assert!(!dir.exists());
}
