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

// ===========================================================================
// The check, as an operator runs it: a config file, over pipes, under
// xinetd, polled by HAProxy and Prometheus.
// ===========================================================================

mod checks {
    use super::*;
    use std::path::PathBuf;

    use inetd_health_testkit::client::exchange;
    use inetd_health_testkit::haproxy::Haproxy;
    use inetd_health_testkit::http::Response;
    use inetd_health_testkit::run::{path_str, run_with_input, Configured};
    use inetd_health_testkit::tmp::TempDir;
    use inetd_health_testkit::xinetd::Xinetd;

    /// The binary under test, as Cargo built it for this package's tests.
    const BIN: &str = env!("CARGO_BIN_EXE_inetd-health");
    const PASSWORD: &str = "p#ss word";
    /// Bound on a failover, a link noticed down.
    const SETTLE: Duration = Duration::from_secs(30);
    const GROUP: &str = "mymaster";

    /// A credentials file (mode 0600) in `dir`.
    pub fn credentials(dir: &TempDir, user: Option<&str>, password: &str) -> PathBuf {
        let path = dir.join(&format!("redis-{}.toml", user.unwrap_or("default")));
        let mut text = String::new();
        if let Some(u) = user {
            text.push_str(&format!("user = \"{u}\"\n"));
        }
        text.push_str(&format!("password = \"{password}\"\n"));
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        path
    }

    /// A config for `redis` with `/primary` (guarded by `sentinels` when
    /// given) and `/replica` routes; `extra` goes into each check.
    pub struct Node(Configured);

    impl std::ops::Deref for Node {
        type Target = Configured;
        fn deref(&self) -> &Configured {
            &self.0
        }
    }

    impl Node {
        pub fn new(redis: &Redis, sentinels: Option<&Sentinels>, extra: &str) -> Node {
            let dir = TempDir::new("redis-node");
            let cred = credentials(&dir, None, PASSWORD);
            let guard = match sentinels {
                Some(s) => format!(
                    "sentinels = [{}]\nmaster-name = \"{GROUP}\"\naddress = \"127.0.0.1:{}\"\n",
                    s.ports()
                        .iter()
                        .map(|p| format!("\"127.0.0.1:{p}\""))
                        .collect::<Vec<_>>()
                        .join(", "),
                    redis.port()
                ),
                None => String::new(),
            };
            let check = |name: &str, role: &str, more: &str| {
                format!(
                    "[checks.{name}]\nkind = \"redis\"\nhost = \"127.0.0.1\"\nport = {}\n\
                     credentials-file = \"{}\"\nrole = \"{role}\"\n{more}{extra}\n",
                    redis.port(),
                    cred.display()
                )
            };
            let text = format!(
                "{}{}[routes]\n\"/primary\" = [\"primary\"]\n\"/replica\" = [\"replica\"]\n",
                check("primary", "primary", &guard),
                check("replica", "replica", "")
            );
            Node::with_config(dir, &text)
        }

        pub fn with_config(dir: TempDir, text: &str) -> Node {
            Node(Configured::new(BIN, dir, text))
        }
    }

    fn server() -> Options {
        Options::default().requirepass(PASSWORD)
    }

    /// Polls until `node`'s `target` answers `want`; the last answer.
    fn until(node: &Node, target: &str, want: u16) -> (u16, String) {
        let mut last = (0, String::new());
        let ok = wait_until(SETTLE, Duration::from_millis(200), || {
            last = node.get(target);
            last.0 == want
        });
        assert!(ok, "{target} never answered {want}: last {last:?}");
        last
    }

    #[test]
    fn roles_a_failover_and_haproxy_following_it() {
        let primary = Redis::start(server());
        let replica = Redis::start_replica(&primary, server());
        let sentinels = Sentinels::start(3, &primary, GROUP, 2);
        let nodes = [
            Node::new(&primary, Some(&sentinels), ""),
            Node::new(&replica, Some(&sentinels), ""),
        ];
        let (status, body) = nodes[0].get("/primary");
        assert_eq!(status, 200, "{body}");
        // Two of three suffice: the third is not waited for.
        assert!(
            body.contains("named by 2 of 3 sentinels")
                || body.contains("named by 3 of 3 sentinels"),
            "{body}"
        );
        assert_eq!(nodes[0].status("GET", "/replica"), 503);
        let (status, body) = nodes[1].get("/primary");
        assert_eq!(status, 503, "{body}");
        assert!(body.contains("not a primary"), "{body}");
        assert_eq!(nodes[1].status("GET", "/replica"), 200);
        // Nothing of the account or its file in a body.
        for (_, body) in [nodes[0].get("/primary"), nodes[1].get("/primary")] {
            assert!(
                !body.contains(PASSWORD) && !body.contains(".toml"),
                "{body}"
            );
        }
        let xinetds: Vec<Xinetd> = nodes
            .iter()
            .map(|n| {
                let args = n.args();
                Xinetd::start(BIN, &[args[0].as_str(), args[1].as_str()])
            })
            .collect();
        let ports = [primary.port(), replica.port()];
        let haproxy = Haproxy::start_sections(|port| {
            let mut text = format!(
                "listen redis\n    bind 127.0.0.1:{port}\n    mode tcp\n    \
                 option httpchk GET /primary\n    http-check expect status 200\n    \
                 default-server inter 200ms fall 2 rise 2 on-marked-down shutdown-sessions\n"
            );
            for (i, x) in xinetds.iter().enumerate() {
                text.push_str(&format!(
                    "    server redis{i} 127.0.0.1:{} check port {}\n",
                    ports[i],
                    x.port()
                ));
            }
            text
        });
        let expect = |want: [&str; 2]| {
            let mut last = String::new();
            let ok = wait_until(SETTLE, Duration::from_millis(100), || {
                last.clear();
                (0..2).all(|i| {
                    let state = haproxy.state_of("redis", &format!("redis{i}"));
                    last.push_str(&format!("redis{i}: {state:?}\n"));
                    matches!(&state, Ok(s) if s.status == want[i])
                })
            });
            assert!(ok, "HAProxy never showed {want:?}:\n{last}");
        };
        expect(["UP", "DOWN"]);
        let new = sentinels.failover();
        assert_eq!(new, replica.addr());
        until(&nodes[1], "/primary", 200);
        until(&nodes[0], "/replica", 200);
        assert_eq!(nodes[0].status("GET", "/primary"), 503);
        expect(["DOWN", "UP"]);
        drop(haproxy);
        drop(xinetds);
    }

    /// Split brain: the old primary back as a master the Sentinels do not
    /// name is no primary of ours; too few Sentinels answering is no
    /// quorum.
    #[test]
    fn split_brain_and_no_quorum() {
        let mut primary = Redis::start(server());
        let replica = Redis::start_replica(&primary, server());
        let mut sentinels = Sentinels::start(3, &primary, GROUP, 2);
        let old = Node::new(&primary, Some(&sentinels), "");
        let new = Node::new(&replica, Some(&sentinels), "");
        // Without the guard the old primary would pass.
        let unguarded = Node::new(&primary, None, "");
        primary.stop();
        sentinels.wait_master(replica.addr(), SETTLE);
        primary.start_again();
        assert_eq!(primary.role(), "master");
        let (status, body) = old.get("/primary");
        assert_eq!(status, 503, "{body}");
        assert!(
            body.contains("not the sentinels' primary: 0 of 3 sentinels name it"),
            "{body}"
        );
        assert_eq!(unguarded.status("GET", "/primary"), 200);
        let (status, body) = new.get("/primary");
        assert_eq!(status, 200, "{body}");
        // The guard holds whatever the role asked: role any on the old
        // primary is no healthier.
        let any_node = Node::new(&primary, Some(&sentinels), "");
        let any = any_node.config.clone();
        let text = std::fs::read_to_string(&any)
            .unwrap()
            .replace("role = \"primary\"", "role = \"any\"");
        std::fs::write(&any, text).unwrap();
        assert_eq!(
            run_with_input(
                BIN,
                &["--config".into(), path_str(&any)],
                b"GET /primary HTTP/1.0\r\n\r\n"
            )
            .response()
            .status,
            503
        );
        // A Sentinel that hangs is not waited for once two have answered.
        let hung = sentinels.pid(2);
        let signal = |sig: &str| {
            let ok = std::process::Command::new("kill")
                .args([sig, &hung.to_string()])
                .status()
                .unwrap()
                .success();
            assert!(ok);
        };
        signal("-STOP");
        let started = Instant::now();
        let (status, body) = new.get("/primary");
        let took = started.elapsed();
        signal("-CONT");
        assert_eq!(status, 200, "{body}");
        assert!(
            took < Duration::from_millis(1500),
            "{took:?}: waited for the hung Sentinel"
        );
        // Two of three Sentinels stopped: no quorum, even for the primary
        // they named.
        sentinels.stop(1);
        sentinels.stop(2);
        let (status, body) = new.get("/primary");
        assert_eq!(status, 503, "{body}");
        assert!(
            body.contains("no sentinel quorum: 1 of 3 sentinels answered"),
            "{body}"
        );
        let (_, metrics) = new.get("/metrics");
        assert!(
            metrics
                .lines()
                .any(|l| l == "inetd_health_redis_sentinel_votes{check=\"primary\"} 1"),
            "{metrics}"
        );
    }

    /// A replica whose link is down, its primary hung (stopped: a connect
    /// to it is accepted and never answered), checked with max-lag-bytes:
    /// it is answered 503 at once, the primary not asked for an offset the
    /// verdict would not weigh (asked, it kept the poll for its timeout).
    #[test]
    fn a_replica_with_its_link_down_does_not_wait_for_its_hung_primary() {
        let primary = Redis::start(server());
        let replica = Redis::start_replica(&primary, server());
        replica.config_set("repl-timeout", "2");
        let bytes = Node::new(&replica, None, "max-lag-bytes = \"1MB\"\ntimeout = \"5s\"");
        assert_eq!(bytes.status("GET", "/replica"), 200);
        primary.sigstop();
        replica.wait_link("down");
        let started = Instant::now();
        let (status, body) = bytes.get("/replica");
        let took = started.elapsed();
        primary.sigcont();
        assert_eq!(status, 503, "{body}");
        assert!(body.contains("replica link down"), "{body}");
        assert!(
            took < Duration::from_secs(1),
            "{took:?}: waited for the hung primary"
        );
    }

    /// A replica whose link goes quiet past max-link-age, then down; and a
    /// replica still loading its dataset.
    #[test]
    fn link_age_link_down_and_loading() {
        let mut primary = Redis::start(server());
        let replica = Redis::start_replica(&primary, server());
        let node = Node::new(&replica, None, "max-link-age = \"3s\"");
        assert_eq!(node.status("GET", "/replica"), 200);
        // A byte limit asks the primary for its offset.
        let bytes = Node::new(&replica, None, "max-lag-bytes = \"1MB\"");
        let (status, body) = bytes.get("/replica?format=json");
        assert_eq!(status, 200, "{body}");
        assert!(body.contains("replica:replicaLagBytes"), "{body}");
        primary.sigstop();
        let (_, body) = until(&node, "/replica", 503);
        assert!(body.contains("replica link idle for"), "{body}");
        assert!(body.contains("longer than max-link-age 3.00s"), "{body}");
        primary.sigcont();
        until(&node, "/replica", 200);
        primary.stop();
        let (_, body) = until(&node, "/replica", 503);
        assert!(
            body.contains("replica link down") || body.contains("replica link idle"),
            "{body}"
        );
        primary.start_again();
        until(&node, "/replica", 200);
        // A new replica loading 30,000 keys, slowly (the restart, without
        // a save, emptied the primary).
        primary.populate(30_000);
        let loading = Redis::start_replica(
            &primary,
            // Events between keys, so that it answers while it loads (by
            // default it answers only every 2 MB loaded).
            server()
                .config("key-load-delay 100")
                .config("loading-process-events-interval-bytes 1024")
                .wait_link(false),
        );
        let node = Node::new(&loading, None, "");
        let mut seen = String::new();
        let saw = wait_until(SETTLE, Duration::from_millis(20), || {
            let (status, body) = node.get("/replica");
            seen = body;
            status == 503 && seen.contains("loading")
        });
        assert!(saw, "never seen loading: {seen}");
        until(&node, "/replica", 200);
    }

    #[test]
    fn a_password_an_acl_user_a_wrong_password_and_a_loose_file() {
        let redis = Redis::start(server().acl("user monitor on >monitor-pw -@all +ping +info"));
        let dir = TempDir::new("redis-auth");
        let args = |file: &Path, extra: &[&str]| {
            let mut a = vec![
                "redis".to_string(),
                "--port".into(),
                redis.port().to_string(),
                "--credentials-file".into(),
                path_str(file),
            ];
            a.extend(extra.iter().map(|s| s.to_string()));
            a
        };
        let get = |a: &[String]| run_with_input(BIN, a, b"GET / HTTP/1.0\r\n\r\n");
        for file in [
            credentials(&dir, None, PASSWORD),
            credentials(&dir, Some("monitor"), "monitor-pw"),
        ] {
            let run = get(&args(&file, &[]));
            assert_eq!(run.response().status, 200, "{}\n{}", run.body(), run.stderr);
            // Over the socket too.
            let mut a = args(&file, &[]);
            a.splice(
                1..3,
                ["--socket".to_string(), path_str(redis.socket_path())],
            );
            let run = get(&a);
            assert_eq!(run.response().status, 200, "{}\n{}", run.body(), run.stderr);
        }
        redis.command(&["ACL", "LOG", "RESET"]);
        let before = redis.info("stats");
        for (user, password) in [(None, "wrong"), (Some("monitor"), "wrong")] {
            let file = credentials(&dir, user, password);
            let run = get(&args(&file, &[]));
            let body = run.body();
            assert_eq!(run.response().status, 503, "{body}");
            assert!(body.contains("access denied"), "{body}");
            assert!(
                !body.contains("monitor") && !body.contains("wrong"),
                "{body}"
            );
            if let Some(u) = user {
                assert!(run.stderr.contains(u), "{u} not in the log: {}", run.stderr);
            }
        }
        // Polls that were refused are no storm: each one connection, and
        // no connection rejected.
        let after = redis.info("stats");
        // The two refusals, each once (ACL LOG counts failed AUTHs): no
        // retry storm.
        let failed_auths: u64 = match redis.command(&["ACL", "LOG"]) {
            Reply::Array(entries) => entries
                .iter()
                .map(Reply::pairs)
                .filter(|e| e.get("reason").map(String::as_str) == Some("auth"))
                .map(|e| e["count"].parse::<u64>().unwrap())
                .sum(),
            other => panic!("{other:?}"),
        };
        assert_eq!(failed_auths, 2);
        assert_eq!(after["rejected_connections"], "0");
        let connections = |s: &std::collections::BTreeMap<String, String>| {
            s["total_connections_received"].parse::<u64>().unwrap()
        };
        assert!(
            connections(&after) - connections(&before) <= 3,
            "{before:?} {after:?}"
        );
        // No password at all where one is required.
        let run = run_with_input(
            BIN,
            &["redis".into(), "--port".into(), redis.port().to_string()],
            b"GET / HTTP/1.0\r\n\r\n",
        );
        assert_eq!(run.response().status, 503);
        assert!(
            run.body()
                .contains("access denied: the server needs a password"),
            "{}",
            run.body()
        );
        // A credentials file others can read is refused: over a pipe, a
        // usage error with the fix.
        let loose = credentials(&dir, None, PASSWORD);
        std::fs::set_permissions(&loose, std::fs::Permissions::from_mode(0o644)).unwrap();
        let run = get(&args(&loose, &[]));
        assert_eq!(run.code, Some(64), "{}", run.stderr);
        assert!(run.stdout.is_empty());
        assert!(run.stderr.contains("readable by others"), "{}", run.stderr);
        assert!(!run.stderr.contains(PASSWORD), "{}", run.stderr);
    }

    #[test]
    fn once_exit_codes_perfdata_and_a_prometheus_scrape() {
        use inetd_health_testkit::prometheus::Prometheus;
        let primary = Redis::start(server().acl("user noinfo on >pw -@all +ping"));
        let replica = Redis::start_replica(&primary, server());
        let dir = TempDir::new("redis-once");
        let cred = credentials(&dir, None, PASSWORD);
        let once = |redis: &Redis, file: &Path, role: &str| {
            run_with_input(
                BIN,
                &[
                    "--once".into(),
                    "redis".into(),
                    "--port".into(),
                    redis.port().to_string(),
                    "--credentials-file".into(),
                    path_str(file),
                    "--role".into(),
                    role.into(),
                ],
                b"",
            )
        };
        let run = once(&primary, &cred, "primary");
        assert_eq!(run.code, Some(0), "{}", run.stdout_text());
        assert!(
            run.stdout_text().contains("connected_replicas=1"),
            "{}",
            run.stdout_text()
        );
        let run = once(&replica, &cred, "primary");
        assert_eq!(run.code, Some(2), "{}", run.stdout_text());
        let run = once(&replica, &cred, "replica");
        assert_eq!(run.code, Some(0), "{}", run.stdout_text());
        assert!(
            run.stdout_text().contains("link_age="),
            "{}",
            run.stdout_text()
        );
        // A user without +info: the checker cannot decide, UNKNOWN.
        let noinfo = credentials(&dir, Some("noinfo"), "pw");
        let run = once(&primary, &noinfo, "primary");
        assert_eq!(run.code, Some(3), "{}", run.stdout_text());
        assert!(
            run.stdout_text().contains("no permission for INFO"),
            "{}",
            run.stdout_text()
        );

        let node = Node::with_config(
            TempDir::new("redis-prom"),
            &format!(
                "[checks.primary]\nkind = \"redis\"\nport = {}\ncredentials-file = \"{}\"\nrole = \"primary\"\n\
                 [checks.replica]\nkind = \"redis\"\nport = {}\ncredentials-file = \"{}\"\nrole = \"replica\"\n\
                 [routes]\n\"/\" = [\"primary\", \"replica\"]\n",
                primary.port(),
                cred.display(),
                replica.port(),
                cred.display()
            ),
        );
        let args = node.args();
        let xinetd = Xinetd::start(BIN, &[args[0].as_str(), args[1].as_str()]);
        let scrape = exchange(
            xinetd.port(),
            b"GET /metrics HTTP/1.0\r\n\r\n",
            Duration::from_secs(10),
        );
        let body = Response::parse(&scrape.bytes).unwrap().body_text();
        for line in [
            "inetd_health_redis_primary{check=\"primary\"} 1",
            "inetd_health_redis_primary{check=\"replica\"} 0",
            "inetd_health_redis_connected_replicas{check=\"primary\"} 1",
        ] {
            assert!(body.lines().any(|l| l == line), "no {line:?} in:\n{body}");
        }
        assert!(
            body.contains("inetd_health_redis_link_age_seconds{check=\"replica\"}"),
            "{body}"
        );
        let prometheus = Prometheus::start(xinetd.port(), "/metrics");
        prometheus.wait_scraped(Duration::from_secs(20)).unwrap();
        for (q, want) in [
            ("inetd_health_redis_primary{check=\"replica\"}", "0"),
            (
                "inetd_health_redis_connected_replicas{check=\"primary\"}",
                "1",
            ),
            ("inetd_health_check_success{check=\"primary\"}", "1"),
        ] {
            assert_eq!(
                prometheus.value(q).as_deref(),
                Some(want),
                "{q}: {}",
                prometheus.query(q)
            );
        }
    }

    fn doc_block(info: &str) -> String {
        inetd_health_testkit::docs::block("redis.md", info)
    }

    /// docs/redis.md as an operator follows it: its ACL user, its
    /// credentials file, its config with three Sentinels and its HAProxy
    /// backend, on a primary and a replica.
    #[test]
    fn docs_redis_md_works_as_written() {
        let acl = doc_block("text redis-acl");
        let acl = acl.trim();
        let setuser: Vec<&str> = acl
            .strip_prefix("ACL SETUSER ")
            .expect("an ACL SETUSER line")
            .split_whitespace()
            .collect();
        let primary = Redis::start(server());
        let replica = Redis::start_replica(&primary, server());
        // ACL users are not replicated: the doc says to create it on each.
        for redis in [&primary, &replica] {
            let mut args = vec!["ACL", "SETUSER"];
            args.extend(&setuser);
            assert_eq!(redis.command(&args).text().as_deref(), Some("OK"));
        }
        let sentinels = Sentinels::start(3, &primary, GROUP, 2);
        let ports = sentinels.ports();
        let nodes: Vec<Node> = [&primary, &replica]
            .iter()
            .map(|redis| {
                let dir = TempDir::new("redis-doc");
                let cred = dir.join("redis.toml");
                std::fs::write(&cred, doc_block("toml redis-credentials")).unwrap();
                std::fs::set_permissions(&cred, std::fs::Permissions::from_mode(0o600)).unwrap();
                let config = doc_block("toml redis-checks")
                    .replace("127.0.0.1:26379", &format!("127.0.0.1:{}", ports[0]))
                    .replace("127.0.0.1:26380", &format!("127.0.0.1:{}", ports[1]))
                    .replace("127.0.0.1:26381", &format!("127.0.0.1:{}", ports[2]))
                    .replace("127.0.0.1:6379", &format!("127.0.0.1:{}", redis.port()))
                    .replace("port = 6379", &format!("port = {}", redis.port()))
                    .replace("/etc/inetd-health/redis.toml", &path_str(&cred))
                    // The doc's 10 s, for a server the test just started.
                    .replace("min-uptime = \"10s\"", "min-uptime = \"1s\"");
                Node::with_config(dir, &config)
            })
            .collect();
        for node in &nodes {
            let mut args = node.args();
            args.push("--check-config".into());
            let run = run_with_input(BIN, &args, b"");
            assert_eq!(run.code, Some(0), "{}{}", run.stdout_text(), run.stderr);
        }
        std::thread::sleep(Duration::from_millis(1100));
        let paths = ["/", "/primary", "/replica"];
        let statuses = |n: &Node| paths.iter().map(|p| n.status("GET", p)).collect::<Vec<_>>();
        assert_eq!(statuses(&nodes[0]), [200, 200, 503]);
        assert_eq!(statuses(&nodes[1]), [503, 503, 200]);
        let xinetds: Vec<Xinetd> = nodes
            .iter()
            .map(|n| {
                let args = n.args();
                Xinetd::start(BIN, &[args[0].as_str(), args[1].as_str()])
            })
            .collect();
        let haproxy = Haproxy::start_sections(|port| {
            let mut text = doc_block("haproxy redis-backend")
                .replace("bind *:6390", &format!("bind 127.0.0.1:{port}"));
            for (i, redis) in [&primary, &replica].iter().enumerate() {
                text = text.replace(
                    &format!("10.0.0.2{}:6379 check port 8009", i + 1),
                    &format!(
                        "127.0.0.1:{} check port {}",
                        redis.port(),
                        xinetds[i].port()
                    ),
                );
            }
            text
        });
        let mut last = String::new();
        let ok = wait_until(SETTLE, Duration::from_millis(100), || {
            last.clear();
            [("redis1", "UP"), ("redis2", "DOWN")]
                .iter()
                .all(|(server, want)| {
                    let state = haproxy.state_of("redis", server);
                    last.push_str(&format!("{server}: {state:?}\n"));
                    matches!(&state, Ok(s) if s.status == *want)
                })
        });
        assert!(ok, "HAProxy never showed redis1 UP, redis2 DOWN:\n{last}");
        // Through HAProxy's listen, a client reaches the primary.
        let mut client = std::net::TcpStream::connect(("127.0.0.1", haproxy.port())).unwrap();
        client
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        std::io::Write::write_all(
            &mut client,
            format!("AUTH {PASSWORD}\r\nROLE\r\n")
                .replace(PASSWORD, "\"p#ss word\"")
                .as_bytes(),
        )
        .unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 512];
        let seen = wait_until(Duration::from_secs(5), Duration::from_millis(10), || {
            if let Ok(n) = std::io::Read::read(&mut client, &mut buf) {
                got.extend_from_slice(&buf[..n]);
            }
            String::from_utf8_lossy(&got).contains("master")
        });
        assert!(seen, "{}", String::from_utf8_lossy(&got));
    }
}
