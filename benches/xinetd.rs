//! What a health check costs when xinetd starts one process per connection,
//! measured against "the floor": minimal static C handlers doing the same job
//! (benches/floor/*.c), under the same real xinetd, side by side.
//!
//! Run: `cargo bench -p inetd-health-cli --bench xinetd`
//!
//! Environment:
//! - `BENCH_REQUESTS` (default 2000): measured requests per candidate, split
//!   over the rounds.
//! - `BENCH_WARMUP` (default 100): unmeasured requests per candidate, also
//!   split over the rounds (each round starts a fresh xinetd).
//! - `BENCH_ROUNDS` (default 5): candidates alternate round by round, since
//!   this machine is noisy and a slow minute should hit all of them alike.
//! - `BENCH_ONLY` (`hello`, `tcp`, `exec`, `mariadb`, `galera`, `replica`,
//!   `postgres` or `redis`): run only the candidates of that floor.
//! - `BENCH_EXTRA` (`label=/path/to/binary arg...;label2@tcp=...`): more
//!   handlers, e.g. other builds of the same program. `@hello` (the default),
//!   `@tcp`, `@exec`, `@mariadb`, `@postgres` or `@redis` picks the C floor
//!   they are compared with;
//!   `{tcp}` in the arguments becomes the address of the listener the tcp
//!   checks use, `{config6}` and `{config4}` the paths of the bench's
//!   six-check and four-check configs (an older build measured on the same
//!   configs), `{socket}`, `{mariadb-port}` and `{option-file}` the
//!   bench's MariaDB socket, its port on 127.0.0.1 and the monitor's option
//!   file; `{pg-host}`, `{pg-port}`, `{pg-passfile}`, `{pg-state-dir}`,
//!   `{pg-replica-host}` and `{pg-replica-port}` the PostgreSQL primary's
//!   socket directory and port, the `monitor` role's password file, the
//!   state directory the SCRAM candidates keep their keys in, and the
//!   streaming replica's socket directory and port; `{redis-port}`,
//!   `{redis-replica-port}`, `{redis-credentials}`, `{redis-password-file}`
//!   and `{sentinel-0}`..`{sentinel-2}` the Redis primary's and replica's
//!   ports on 127.0.0.1, the credentials file (TOML) and the bare password
//!   file the script reads, and the three Sentinels' `127.0.0.1:PORT`.
//! - The binaries under test are built by `scripts/build-static`, the build
//!   that ships; compare another build by naming it in `BENCH_EXTRA`.
//! - `XINETD` (default `/usr/sbin/xinetd`), `CC` (default `gcc`).
//!
//! The `mariadb` kind starts a private MariaDB server (mariadbd on a
//! temporary data directory, a unix socket and a loopback port, with a
//! `monitor` user: `inetd_health_testkit::mariadb`) and stops it at the end. It
//! compares `inetd-health mariadb` without credentials with a C handler
//! reading the same greeting (benches/floor/mariadb.c), and the
//! authenticated check with the seed's `mysqladmin ping` script
//! (benches/floor/mariadb-healthcheck.sh). It also counts the server's
//! error-log lines and `Aborted_connects` per candidate.
//!
//! The `postgres` kind starts a private PostgreSQL 15 primary and a
//! streaming replica of it (`inetd_health_testkit::postgres`, run as the OS
//! user `postgres`; SCRAM on the socket, and a `trust` line for the role
//! `trustuser`) with the roles `monitor` (SCRAM, `pg_monitor`) and
//! `trustuser`. It compares the ping (`inetd-health postgres` without a
//! user) with a C handler sending the same startup message
//! (benches/floor/postgres.c) and with `pg_isready` run by an exec check;
//! the SCRAM login (keys kept in the state directory) with the classic
//! `pgsqlchk` script (benches/floor/pgsqlchk.sh: bash + psql) and with a
//! `trust` login; and a replica check (role replica, lag limits) on the
//! replica with the ping. It also counts each server's CPU (the postmaster
//! and the backends it reaped) and log lines per candidate.
//!
//! The `redis` kind starts a private Redis 7 primary with a password, a
//! replica of it and three Sentinels monitoring it as `mymaster`
//! (`inetd_health_testkit::redis`). It compares the role check
//! (`inetd-health redis --role primary`, AUTH from a credentials file) with
//! a C handler sending the same pipelined commands and reading the replies
//! (benches/floor/redis.c) and with a bash + redis-cli script
//! (benches/floor/redis-check.sh); and the check guarded by the three
//! Sentinels with the same check without them. It also counts the node's
//! and the Sentinels' CPU and log lines per candidate.
//!
//! Needs root (xinetd's `user = root`), xinetd, and gcc with a static libc;
//! the `mariadb` kind also mariadbd, mariadb-install-db, mariadb and
//! mysqladmin; the `postgres` kind Debian's postgresql-15 and
//! postgresql-client-15; the `redis` kind Debian's redis-server,
//! redis-sentinel and redis-tools (scripts/test installs them). It only ever binds
//! and connects to 127.0.0.1 and to unix sockets in its temporary
//! directories.
//!
//! What it starts (xinetd, the MariaDB, PostgreSQL and Redis servers) and its
//! temporary directory come from `inetd_health_testkit`, as the tests' do;
//! what is here measures.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use inetd_health_testkit::client::loopback;
use inetd_health_testkit::example::write_example_config;
use inetd_health_testkit::procs::cpu_times;
use inetd_health_testkit::tmp::TempDir;
use inetd_health_testkit::xinetd::{Settings, Xinetd};
use inetd_health_testkit::{galera, mariadb, postgres, redis, replication};

const REQUEST: &[u8] = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Longer than any handler's own deadlines (2 s read, 2 s check, 1 s drain),
/// so a slow handler shows up as slow rather than as a client timeout.
const IO_TIMEOUT: Duration = Duration::from_secs(6);
const HANDLERS_EXIT_TIMEOUT: Duration = Duration::from_secs(3);

fn main() {
    // `cargo test --all-targets` runs bench binaries too, without `--bench`;
    // the benchmark takes minutes and is not a test, so it only runs when
    // asked for by `cargo bench`.
    if !std::env::args().any(|a| a == "--bench") {
        println!("xinetd benchmark: run it with `cargo bench -p inetd-health-cli --bench xinetd`");
        return;
    }
    let cfg = Config::from_env();
    let xinetd =
        PathBuf::from(std::env::var_os("XINETD").unwrap_or_else(|| "/usr/sbin/xinetd".into()));
    if !xinetd.exists() {
        println!("xinetd benchmark skipped: {} not found", xinetd.display());
        return;
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        println!("xinetd benchmark skipped: needs root (the service runs with `user = root`)");
        return;
    }

    let work = TempDir::new("bench");
    let floors = match compile_floors(work.path()) {
        Ok(f) => Some(f),
        Err(e) => {
            println!("C floor not built ({e}); Rust candidates get no ratio");
            None
        }
    };
    let rust = build_rust();
    let listener = BackgroundListener::start().expect("start the tcp check's listener");
    let tcp_target = listener.addr.to_string();
    let db = if cfg.only.is_none_or(|k| k == Kind::Mariadb) {
        Db::start(
            work.path(),
            mariadb::Mariadb::start,
            "mariadb-healthcheck.sh",
            &MARIADBD_PID,
        )
    } else {
        None
    };
    let gdb = if cfg.only.is_none_or(|k| k == Kind::Galera) {
        Db::start(
            work.path(),
            galera::start_galera,
            "galera-check.sh",
            &GALERA_PID,
        )
    } else {
        None
    };
    let pair = if cfg.only.is_none_or(|k| k == Kind::Replica) {
        ReplicaPair::start()
    } else {
        None
    };
    let pg = if cfg.only.is_none_or(|k| k == Kind::Postgres) {
        PgSetup::start(work.path())
    } else {
        None
    };
    // On this thread: the fixture's servers die with the thread that
    // started them.
    let rd = if cfg.only.is_none_or(|k| k == Kind::Redis) {
        RedisSetup::start(work.path())
    } else {
        None
    };

    let (f, cli, tcp) = (floors.as_ref(), rust.cli.as_ref(), tcp_target.as_str());
    let config6 = write_example_config(work.path(), tcp).display().to_string();
    let config4 = write_route_of_four(work.path(), tcp).expect("writing the route of four");
    let mut candidates: Vec<Candidate> = [
        candidate("C hello", Kind::Hello, true, f.map(|f| &f.hello), &[]),
        candidate(
            "example hello",
            Kind::Hello,
            false,
            rust.hello.as_ref(),
            &[],
        ),
        candidate(
            "seed hello script",
            Kind::Hello,
            false,
            Some(&workspace_root().join("benches/floor/hello-healthcheck.sh")),
            &[],
        ),
        candidate("C tcp", Kind::Tcp, true, f.map(|f| &f.tcp), &[tcp]),
        candidate("inetd-health tcp", Kind::Tcp, false, cli, &["tcp", tcp]),
        candidate(
            CONFIG_ONE_OF_SIX,
            Kind::Tcp,
            false,
            cli,
            &["--config", &config6],
        ),
        candidate(TCP_AGENT, Kind::Tcp, false, cli, &["--agent", "tcp", tcp]),
        candidate(
            "C exec /bin/true",
            Kind::Exec,
            true,
            f.map(|f| &f.exec),
            &["/bin/true"],
        ),
        candidate(
            "inetd-health exec",
            Kind::Exec,
            false,
            cli,
            &["exec", "--", "/bin/true"],
        ),
        candidate(CONFIG_FOUR, Kind::Exec, false, cli, &["--config", &config4]),
    ]
    .into_iter()
    .flatten()
    .collect();
    if let Some(db) = &db {
        let sock = db.socket.as_str();
        let port = db.port.as_str();
        let file = db.option_file.as_str();
        candidates.extend(
            [
                candidate(
                    MARIADB_FLOOR,
                    Kind::Mariadb,
                    true,
                    f.map(|f| &f.mariadb),
                    &[sock],
                ),
                candidate(
                    MARIADB_GREETING,
                    Kind::Mariadb,
                    false,
                    cli,
                    &["mariadb", "--socket", sock],
                ),
                candidate(
                    MARIADB_AUTH,
                    Kind::Mariadb,
                    false,
                    cli,
                    &["mariadb", "--socket", sock, "--defaults-extra-file", file],
                ),
                candidate(
                    MARIADB_AUTH_TCP,
                    Kind::Mariadb,
                    false,
                    cli,
                    &[
                        "mariadb",
                        "--host",
                        "127.0.0.1",
                        "--port",
                        port,
                        "--defaults-extra-file",
                        file,
                    ],
                ),
                candidate(
                    MARIADB_SCRIPT,
                    Kind::Mariadb,
                    false,
                    Some(&db.script),
                    &[sock, file],
                ),
                candidate(
                    MARIADB_CACHED,
                    Kind::Mariadb,
                    false,
                    cli,
                    &[
                        "--cache-ttl",
                        "1s",
                        "--state-dir",
                        &work.path().display().to_string(),
                        "mariadb",
                        "--socket",
                        sock,
                        "--defaults-extra-file",
                        file,
                    ],
                ),
            ]
            .into_iter()
            .flatten(),
        );
    }
    if let Some(g) = &gdb {
        let (sock, file) = (g.socket.as_str(), g.option_file.as_str());
        candidates.extend(
            [
                candidate(
                    GALERA_SCRIPT,
                    Kind::Galera,
                    true,
                    Some(&g.script),
                    &[sock, file],
                ),
                candidate(
                    GALERA_CHECK,
                    Kind::Galera,
                    false,
                    cli,
                    &["galera", "--socket", sock, "--defaults-extra-file", file],
                ),
            ]
            .into_iter()
            .flatten(),
        );
    }
    if let Some(pair) = &pair {
        candidates.extend(candidate(
            REPLICA_CHECK,
            Kind::Replica,
            false,
            cli,
            &[
                "replica",
                "--socket",
                &pair.socket,
                "--defaults-extra-file",
                &pair.option_file,
                "--max-lag",
                "10",
            ],
        ));
    }
    if let Some(pg) = &pg {
        candidates.extend(pg.candidates(f, cli));
    }
    if let Some(rd) = &rd {
        candidates.extend(rd.candidates(f, cli));
    }
    candidates.extend(cfg.extra.iter().map(|extra| {
        let (sock, port, file) = db.as_ref().map_or(("", "", ""), |db| {
            (
                db.socket.as_str(),
                db.port.as_str(),
                db.option_file.as_str(),
            )
        });
        Candidate {
            name: extra.name.clone(),
            kind: extra.kind,
            is_floor: false,
            server: extra.server.clone(),
            args: extra
                .args
                .iter()
                .map(|a| {
                    a.replace("{tcp}", &tcp_target)
                        .replace("{config6}", &config6)
                        .replace("{config4}", &config4)
                        .replace("{socket}", sock)
                        .replace("{mariadb-port}", port)
                        .replace("{option-file}", file)
                })
                .map(|a| match &pg {
                    Some(pg) => pg.substitute(&a),
                    None => a,
                })
                .map(|a| match &rd {
                    Some(rd) => rd.substitute(&a),
                    None => a,
                })
                .collect(),
        }
    }));
    candidates.retain(|c| cfg.only.is_none_or(|k| k == c.kind));
    if db.is_none() {
        candidates.retain(|c| c.kind != Kind::Mariadb);
    }
    if gdb.is_none() {
        candidates.retain(|c| c.kind != Kind::Galera);
    }
    if pair.is_none() {
        candidates.retain(|c| c.kind != Kind::Replica);
    }
    if pg.is_none() {
        candidates.retain(|c| c.kind != Kind::Postgres);
    }
    if rd.is_none() {
        candidates.retain(|c| c.kind != Kind::Redis);
    }
    if candidates.is_empty() {
        println!("nothing to measure");
        return;
    }

    println!(
        "{} rounds x ({} warm-up + {} measured) requests per candidate, sequential, via xinetd on 127.0.0.1",
        cfg.rounds, cfg.warmup_per_round, cfg.requests_per_round
    );
    let settings = Settings {
        program: Some(xinetd),
        // Logging per connection is off: the per-connection work left to
        // xinetd (accept, fork, exec, reap) is the same for every candidate.
        log_connections: false,
        instances: "UNLIMITED".to_string(),
        flags: "REUSE".to_string(),
        ..Settings::default()
    };
    let mut results: Vec<Vec<Round>> = candidates.iter().map(|_| Vec::new()).collect();
    for round in 0..cfg.rounds {
        // Rotate the order too, so no candidate always runs right after the
        // same neighbour (page cache, CPU frequency, TIME_WAIT build-up).
        for i in 0..candidates.len() {
            let idx = (i + round) % candidates.len();
            let c = &candidates[idx];
            let server = match c.kind {
                Kind::Mariadb => db.as_ref().map(|d| Watched::Mariadb(&d.server)),
                Kind::Galera => gdb.as_ref().map(|d| Watched::Mariadb(&d.server)),
                Kind::Postgres => pg.as_ref().map(|p| Watched::Postgres(p.server_of(c))),
                Kind::Redis => rd
                    .as_ref()
                    .map(|r| Watched::Redis(r.node_of(c), &r.sentinels)),
                _ => None,
            };
            match run_round(&settings, c, &cfg, server) {
                Ok(r) => results[idx].push(r),
                Err(e) => println!("round {} of {}: {e}", round + 1, c.name),
            }
        }
        eprint!("round {}/{} done\r", round + 1, cfg.rounds);
    }
    eprintln!();
    // Each handler's own peak memory: run it once more, directly on a
    // socket pair, and read its rusage (xinetd's only gives the largest
    // process, xinetd itself).
    let rss: Vec<Option<i64>> = match &floors {
        Some(f) => candidates
            .iter()
            .map(|c| handler_rss_kib(&f.rss, work.path(), c))
            .collect(),
        None => candidates.iter().map(|_| None).collect(),
    };
    listener.stop();
    print_table(&candidates, &results, &rss);
    print_config(&candidates, &results);
    if let Some(db) = db {
        print_mariadb(&candidates, &results, &db);
        db.stop();
    }
    if let Some(g) = gdb {
        print_galera(&candidates, &results, &g);
        g.stop();
    }
    drop(pair);
    if let Some(pg) = pg {
        print_postgres(&candidates, &results, &pg);
    }
    if let Some(rd) = rd {
        print_redis(&candidates, &results, &rd);
    }
}

/// The largest resident set of one connection's handler (its process
/// tree, for scripts), in KiB: the maximum over three runs, each started
/// directly on a socket pair with the benchmark's request, through the
/// small static launcher `rss` (see benches/floor/rss.c for why).
fn handler_rss_kib(launcher: &Path, dir: &Path, c: &Candidate) -> Option<i64> {
    use std::os::fd::OwnedFd;
    use std::os::unix::net::UnixStream;
    let report = dir.join("rss.out");
    let mut peak = None;
    for _ in 0..3 {
        let _ = fs::remove_file(&report);
        let (mut client, server) = UnixStream::pair().ok()?;
        let fd = OwnedFd::from(server);
        let mut child = Command::new(launcher)
            .arg(&report)
            .arg(&c.server)
            .args(&c.args)
            .stdin(fd.try_clone().ok()?)
            .stdout(fd.try_clone().ok()?)
            .stderr(fd)
            .spawn()
            .ok()?;
        let _ = client.set_read_timeout(Some(IO_TIMEOUT));
        let _ = client.write_all(REQUEST);
        let mut sink = Vec::new();
        let _ = client.read_to_end(&mut sink);
        drop(client);
        let _ = child.wait();
        if let Some(kib) = fs::read_to_string(&report)
            .ok()
            .and_then(|t| t.trim().parse::<i64>().ok())
        {
            peak = Some(peak.unwrap_or(0).max(kib));
        }
    }
    peak
}

/// The primary/replica pair the `replica` candidate checks.
struct ReplicaPair {
    pair: replication::Replication,
    socket: String,
    option_file: String,
}

impl ReplicaPair {
    fn start() -> Option<ReplicaPair> {
        let pair = match std::panic::catch_unwind(replication::Replication::start) {
            Ok(pair) => pair,
            Err(_) => {
                println!("skipping the replica candidate: the pair did not start (see above)");
                return None;
            }
        };
        let replica = &pair.replica;
        let option_file = replica.write_option_file(
            replica.dir(),
            mariadb::MONITOR_USER,
            Some(replica.monitor_password()),
            0o600,
        );
        Some(ReplicaPair {
            socket: replica.socket().display().to_string(),
            option_file: option_file.display().to_string(),
            pair,
        })
    }
}

impl Drop for ReplicaPair {
    fn drop(&mut self) {
        self.pair.primary.stop();
        self.pair.replica.stop();
    }
}

const CONFIG_ONE_OF_SIX: &str = "config: tcp, 1 of 6 checks";
const TCP_AGENT: &str = "inetd-health --agent tcp";
const TCP_ALONE: &str = "inetd-health tcp";
/// Issue 10's bar: answering agents on the same port adds at most 2 % to an
/// HTTP request's p50.
const AGENT_BAR: f64 = 1.02;
const CONFIG_FOUR: &str = "config: route of 4 checks";
const EXEC_ALONE: &str = "inetd-health exec";
/// Issue 9's bars: a route of one tcp check from a config of six checks and
/// four routes at most 1.10x the C tcp floor (p50 and CPU); a route of four
/// checks at most 1.15x its slowest check served alone (p50).
const CONFIG_FLOOR_BAR: f64 = 1.10;
const CONFIG_ROUTE_BAR: f64 = 1.15;

/// The route of four checks at `/` (`exec /bin/true` and three tcp
/// checks), whose slowest, `exec /bin/true`, is also a candidate on its
/// own; written into `dir`. The other config candidate serves the testkit's
/// example config (six checks, four routes; `/` the tcp check alone).
fn write_route_of_four(dir: &Path, tcp: &str) -> io::Result<String> {
    // A readiness route as hosts have them: one program (the slowest
    // check, measured alone as `inetd-health exec`) and three checks made
    // in-process.
    let four = format!(
        r#"[checks.true]
kind = "exec"
command = ["/bin/true"]

[checks.port]
kind = "tcp"
target = "{tcp}"

[checks.port2]
kind = "tcp"
target = "{tcp}"

[checks.port3]
kind = "tcp"
target = "{tcp}"
"#
    );
    let path = dir.join("config4.toml");
    fs::write(&path, four)?;
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644))?;
    Ok(path.display().to_string())
}

fn print_config(candidates: &[Candidate], results: &[Vec<Round>]) {
    let summary = |name: &str| summary_of(candidates, results, name);
    if let (Some(config), Some(floor)) = (summary(CONFIG_ONE_OF_SIX), summary("C tcp")) {
        if let (Some(p50), Some(cpu)) = (
            fraction(config.p50, floor.p50),
            fraction(config.cpu_per_request, floor.cpu_per_request),
        ) {
            println!(
                "(config) {CONFIG_ONE_OF_SIX} vs C tcp: p50 {p50:.3}x, CPU {cpu:.3}x; bar <= {CONFIG_FLOOR_BAR}x: {}",
                if p50 <= CONFIG_FLOOR_BAR && cpu <= CONFIG_FLOOR_BAR { "met" } else { "MISSED" }
            );
        }
    }
    if let (Some(agent), Some(plain)) = (summary(TCP_AGENT), summary(TCP_ALONE)) {
        if let Some(p50) = fraction(agent.p50, plain.p50) {
            println!(
                "(agent) {TCP_AGENT} vs {TCP_ALONE}: p50 {p50:.3}x; bar <= {AGENT_BAR}x: {}",
                if p50 <= AGENT_BAR { "met" } else { "MISSED" }
            );
        }
    }
    if let (Some(four), Some(alone)) = (summary(CONFIG_FOUR), summary(EXEC_ALONE)) {
        if let Some(p50) = fraction(four.p50, alone.p50) {
            println!(
                "(config) {CONFIG_FOUR} vs its slowest check alone ({EXEC_ALONE}): p50 {p50:.3}x; bar <= {CONFIG_ROUTE_BAR}x: {}",
                if p50 <= CONFIG_ROUTE_BAR { "met" } else { "MISSED" }
            );
        }
    }
}

/// The bar of the Galera check (issue 4): at most 1/5 of the CPU per request
/// of a correct shell + mysql client check of the same state.
const GALERA_CPU_BAR: f64 = 1.0 / 5.0;

fn print_galera(candidates: &[Candidate], results: &[Vec<Round>], g: &Db) {
    println!();
    println!(
        "Galera node: MariaDB {} with wsrep, single-node cluster (pid {}, socket {})",
        g.version,
        g.server.pid(),
        g.socket
    );
    let summary = |name: &str| summary_of(candidates, results, name);
    if let (Some(rust), Some(script)) = (summary(GALERA_CHECK), summary(GALERA_SCRIPT)) {
        if let (Some(cpu), Some(p50)) = (
            fraction(rust.cpu_per_request, script.cpu_per_request),
            fraction(rust.p50, script.p50),
        ) {
            println!(
                "(galera) {GALERA_CHECK} vs {GALERA_SCRIPT}: CPU {cpu:.3}x (1/{:.1}), p50 {p50:.3}x (1/{:.1}); CPU bar <= 1/5: {}",
                1.0 / cpu,
                1.0 / p50,
                if cpu <= GALERA_CPU_BAR { "met" } else { "MISSED" }
            );
        }
    }
}

const PG_FLOOR: &str = "C postgres ping";
const PG_PING: &str = "pgping";
const PG_ISREADY: &str = "exec pg_isready";
const PG_SCRIPT: &str = "pgsqlchk script";
/// The same script calling Debian's `/usr/bin/psql` (a Perl wrapper that
/// picks the cluster's version, then execs psql), as a copy that calls
/// plain `psql` does on Debian. Informative only: the bar is held against
/// the script calling psql itself.
const PG_SCRIPT_WRAPPER: &str = "pgsqlchk, psql on PATH";
const PG_WRAPPER: &str = "/usr/bin/psql";
const PG_SCRAM: &str = "pg scram role=primary";
const PG_TRUST: &str = "pg trust role=primary";
const PG_REPLICA: &str = "pg replica+lag";
/// The same checks from a config file (no clap: the form a config of
/// several checks serves).
const PG_PING_CONFIG: &str = "pgping (config)";
const PG_SCRAM_CONFIG: &str = "pg scram (config)";
const PG_REPLICA_CONFIG: &str = "pg replica+lag (config)";
/// The roles the bench creates: `monitor` logs in with SCRAM (and has
/// `pg_monitor`, for the replica's WAL receiver), `trustuser` is let in by
/// a `trust` line.
const PG_MONITOR: &str = "monitor";
const PG_TRUST_USER: &str = "trustuser";
const PG_PASSWORD: &str = "bench-monitor-secret";
/// Issue 16's bars: the ping at most 1.15x the C floor (p50 and CPU); the
/// SCRAM role check at most 1/20 of pgsqlchk's CPU; the ping at most 0.3x
/// pg_isready's CPU; SCRAM at most 1.2x trust; the replica check at most
/// 1.3x the ping.
const PG_PING_BAR: f64 = 1.15;
const PG_SCRIPT_CPU_BAR: f64 = 1.0 / 20.0;
const PG_ISREADY_CPU_BAR: f64 = 0.3;
const PG_SCRAM_BAR: f64 = 1.2;
const PG_REPLICA_BAR: f64 = 1.3;

/// The PostgreSQL primary and streaming replica the `postgres` candidates
/// check, and what they are given to check them.
struct PgSetup {
    primary: postgres::Postgres,
    replica: postgres::Postgres,
    /// The primary's socket directory and port (libpq's `host`, `port`).
    host: String,
    port: String,
    replica_host: String,
    replica_port: String,
    /// `*:*:*:monitor:PASSWORD`, mode 0600, owned by the bench's user (the
    /// handlers run as root too).
    passfile: String,
    /// Where the SCRAM candidates keep their derived keys.
    state_dir: String,
    /// benches/floor/pgsqlchk.sh, executable.
    script: PathBuf,
    /// One-check configs: the ping, the SCRAM login, the replica check.
    config_ping: String,
    config_scram: String,
    config_replica: String,
    version: String,
}

impl PgSetup {
    /// Starts both servers, or None (with a note) when they cannot be.
    fn start(work: &Path) -> Option<PgSetup> {
        let opts = postgres::Options::default()
            .log_connections(false)
            // The ping's user gets a SCRAM request it never answers (no log
            // line), as docs/postgres.md sets it up; the monitor role logs
            // in with SCRAM; trustuser by trust.
            .hba("local all inetd-health-probe scram-sha-256")
            .hba(&format!("local all {PG_MONITOR} scram-sha-256"))
            .hba(&format!("local all {PG_TRUST_USER} trust"));
        let started = std::panic::catch_unwind(|| {
            let primary = postgres::Postgres::start(opts.clone());
            primary.create_role(PG_MONITOR, Some(PG_PASSWORD), postgres::Encryption::Scram);
            primary.psql(&format!("GRANT pg_monitor TO {PG_MONITOR};"));
            primary.create_role(PG_TRUST_USER, None, postgres::Encryption::Scram);
            let replica = postgres::Postgres::start_replica(&primary, opts.clone());
            replica.wait_wal_receiver("streaming");
            replica.catch_up(&primary);
            (primary, replica)
        });
        let Ok((primary, replica)) = started else {
            println!("skipping the postgres candidates: PostgreSQL did not start (see above)");
            return None;
        };
        let passfile = work.join("pgpass");
        // A given state directory must exist (the binary creates only its
        // default one), private to the handlers' user.
        let state_dir = work.join("pg-state");
        let script = work.join("pgsqlchk.sh");
        let source = workspace_root().join("benches/floor/pgsqlchk.sh");
        let written = fs::write(&passfile, format!("*:*:*:{PG_MONITOR}:{PG_PASSWORD}\n"))
            .and_then(|()| fs::set_permissions(&passfile, fs::Permissions::from_mode(0o600)))
            .and_then(|()| fs::DirBuilder::new().mode(0o700).create(&state_dir))
            .and_then(|()| fs::copy(&source, &script))
            .and_then(|_| fs::set_permissions(&script, fs::Permissions::from_mode(0o755)));
        if let Err(e) = written {
            println!("skipping the postgres candidates: {e}");
            return None;
        }
        let host = primary.socket_dir().display().to_string();
        let port = primary.port().to_string();
        let replica_host = replica.socket_dir().display().to_string();
        let replica_port = replica.port().to_string();
        let (state, pass) = (state_dir.display(), passfile.display());
        let login = |host: &str, port: &str, role: &str, more: &str| {
            format!(
                "state-dir = \"{state}\"\n\n[checks.pg]\nkind = \"postgres\"\nhost = \"{host}\"\nport = {port}\n\
                 user = \"{PG_MONITOR}\"\ndbname = \"postgres\"\npassfile = \"{pass}\"\nrole = \"{role}\"\n{more}"
            )
        };
        let configs = [
            (
                "pg-ping.toml",
                format!("[checks.pg]\nkind = \"postgres\"\nhost = \"{host}\"\nport = {port}\n"),
            ),
            ("pg-scram.toml", login(&host, &port, "primary", "")),
            (
                "pg-replica.toml",
                login(
                    &replica_host,
                    &replica_port,
                    "replica",
                    "max-lag-bytes = \"16MB\"\nmax-lag = \"30s\"\n",
                ),
            ),
        ];
        let mut paths = Vec::new();
        for (name, text) in configs {
            let path = work.join(name);
            // The binary refuses a config others may write.
            if let Err(e) = fs::write(&path, text)
                .and_then(|()| fs::set_permissions(&path, fs::Permissions::from_mode(0o644)))
            {
                println!("skipping the postgres candidates: {}: {e}", path.display());
                return None;
            }
            paths.push(path.display().to_string());
        }
        let [config_ping, config_scram, config_replica] =
            <[String; 3]>::try_from(paths).expect("three configs");
        let version = primary.psql("SHOW server_version;");
        Some(PgSetup {
            host,
            port,
            replica_host,
            replica_port,
            passfile: passfile.display().to_string(),
            state_dir: state_dir.display().to_string(),
            script,
            config_ping,
            config_scram,
            config_replica,
            version,
            primary,
            replica,
        })
    }

    /// The server a candidate's checks talk to.
    fn server_of(&self, c: &Candidate) -> &postgres::Postgres {
        if c.name == PG_REPLICA || c.name == PG_REPLICA_CONFIG {
            &self.replica
        } else {
            &self.primary
        }
    }

    fn candidates(&self, f: Option<&Floors>, cli: Option<&PathBuf>) -> Vec<Candidate> {
        let (host, port) = (self.host.as_str(), self.port.as_str());
        let socket = self.primary.socket_path().display().to_string();
        let isready = postgres::program("pg_isready").display().to_string();
        // The login candidates: global options, then the subcommand's.
        let login = |host: &str, port: &str, user: &str, role: &str, more: &[&str]| {
            let mut args = vec![
                "--state-dir",
                &self.state_dir,
                "postgres",
                "--host",
                host,
                "--port",
                port,
                "--user",
                user,
                "--dbname",
                "postgres",
                "--role",
                role,
            ];
            if user == PG_MONITOR {
                args.extend(["--passfile", &self.passfile]);
            }
            args.extend(more);
            args.into_iter().map(str::to_owned).collect::<Vec<String>>()
        };
        let scram = login(host, port, PG_MONITOR, "primary", &[]);
        let trust = login(host, port, PG_TRUST_USER, "primary", &[]);
        let replica = login(
            &self.replica_host,
            &self.replica_port,
            PG_MONITOR,
            "replica",
            &["--max-lag-bytes", "16MB", "--max-lag", "30s"],
        );
        fn refs(v: &[String]) -> Vec<&str> {
            v.iter().map(String::as_str).collect()
        }
        [
            candidate(
                PG_FLOOR,
                Kind::Postgres,
                true,
                f.map(|f| &f.postgres),
                &[&socket],
            ),
            candidate(
                PG_PING,
                Kind::Postgres,
                false,
                cli,
                &["postgres", "--host", host, "--port", port],
            ),
            candidate(
                PG_ISREADY,
                Kind::Postgres,
                false,
                cli,
                &[
                    "exec",
                    "--",
                    &isready,
                    "-q",
                    "-h",
                    host,
                    "-p",
                    port,
                    "-U",
                    "inetd-health-probe",
                    "-d",
                    "postgres",
                ],
            ),
            candidate(
                PG_SCRIPT,
                Kind::Postgres,
                false,
                Some(&self.script),
                &[host, port, &self.passfile],
            ),
            if Path::new(PG_WRAPPER).exists() {
                candidate(
                    PG_SCRIPT_WRAPPER,
                    Kind::Postgres,
                    false,
                    Some(&self.script),
                    &[host, port, &self.passfile, PG_WRAPPER],
                )
            } else {
                None
            },
            candidate(PG_SCRAM, Kind::Postgres, false, cli, &refs(&scram)),
            candidate(PG_TRUST, Kind::Postgres, false, cli, &refs(&trust)),
            candidate(PG_REPLICA, Kind::Postgres, false, cli, &refs(&replica)),
            candidate(
                PG_PING_CONFIG,
                Kind::Postgres,
                false,
                cli,
                &["--config", &self.config_ping],
            ),
            candidate(
                PG_SCRAM_CONFIG,
                Kind::Postgres,
                false,
                cli,
                &["--config", &self.config_scram],
            ),
            candidate(
                PG_REPLICA_CONFIG,
                Kind::Postgres,
                false,
                cli,
                &["--config", &self.config_replica],
            ),
        ]
        .into_iter()
        .flatten()
        .collect()
    }

    /// `BENCH_EXTRA`'s `{pg-…}` placeholders.
    fn substitute(&self, arg: &str) -> String {
        arg.replace("{pg-host}", &self.host)
            .replace("{pg-port}", &self.port)
            .replace("{pg-passfile}", &self.passfile)
            .replace("{pg-state-dir}", &self.state_dir)
            .replace("{pg-replica-host}", &self.replica_host)
            .replace("{pg-replica-port}", &self.replica_port)
    }
}

impl Drop for PgSetup {
    fn drop(&mut self) {
        self.replica.stop();
        self.primary.stop();
    }
}

/// The PostgreSQL section: each server's side of every candidate, and
/// issue 16's bars.
fn print_postgres(candidates: &[Candidate], results: &[Vec<Round>], pg: &PgSetup) {
    let rows: Vec<(&Candidate, &Vec<Round>)> = candidates
        .iter()
        .zip(results)
        .filter(|(c, _)| c.kind == Kind::Postgres)
        .collect();
    if rows.is_empty() {
        return;
    }
    println!();
    println!(
        "PostgreSQL {}: primary (pid {}, socket directory {}, port {}), streaming replica (pid {}, {}, port {})",
        pg.version,
        pg.primary.pid(),
        pg.host,
        pg.port,
        pg.replica.pid(),
        pg.replica_host,
        pg.replica_port
    );
    println!(
        "{:<28} {:>7} {:>14} {:>16}",
        "candidate", "checks", "server CPU/req", "log lines/1000"
    );
    for (c, rounds) in &rows {
        let checks: usize = rounds.iter().map(|r| r.requests).sum();
        let server: Vec<&ServerSnapshot> =
            rounds.iter().filter_map(|r| r.server.as_ref()).collect();
        let lines: usize = server.iter().map(|s| s.log_lines).sum();
        // Pooled, not a median of rounds: a round is only a few 10 ms ticks.
        let server_cpu: Duration = server.iter().map(|s| s.cpu).sum();
        let (cpu, lines) = if checks == 0 || server.is_empty() {
            ("-".to_owned(), "-".to_owned())
        } else {
            (
                format!("{:.0}µs", server_cpu.as_secs_f64() * 1e6 / checks as f64),
                format!("{:.1}", lines as f64 * 1000.0 / checks as f64),
            )
        };
        println!("{:<28} {:>7} {:>14} {:>16}", c.name, checks, cpu, lines);
    }
    println!(
        "server CPU/req: the postmaster's and its reaped backends' user+sys CPU during the rounds"
    );
    println!(
        "(10 ms ticks) / requests, pooled; the replica's for the replica+lag candidates, else the primary's;"
    );
    println!("not included in CPU/req above, which is xinetd and the handlers.");

    println!();
    print_bars(
        "pg",
        candidates,
        results,
        &[
            Bar::new("a", PG_PING, PG_FLOOR, PG_PING_BAR, Held::Both),
            Bar::new("a", PG_PING_CONFIG, PG_FLOOR, PG_PING_BAR, Held::Both),
            Bar::new("b", PG_SCRAM, PG_SCRIPT, PG_SCRIPT_CPU_BAR, Held::Cpu),
            Bar::new(
                "b",
                PG_SCRAM_CONFIG,
                PG_SCRIPT,
                PG_SCRIPT_CPU_BAR,
                Held::Cpu,
            ),
            Bar::new(
                "b, informative",
                PG_SCRAM,
                PG_SCRIPT_WRAPPER,
                PG_SCRIPT_CPU_BAR,
                Held::Cpu,
            ),
            Bar::new("c", PG_PING, PG_ISREADY, PG_ISREADY_CPU_BAR, Held::Cpu),
            Bar::new(
                "c",
                PG_PING_CONFIG,
                PG_ISREADY,
                PG_ISREADY_CPU_BAR,
                Held::Cpu,
            ),
            Bar::new("d", PG_SCRAM, PG_TRUST, PG_SCRAM_BAR, Held::Both),
            Bar::new("e", PG_REPLICA, PG_PING, PG_REPLICA_BAR, Held::Both),
            Bar::new(
                "e",
                PG_REPLICA_CONFIG,
                PG_PING_CONFIG,
                PG_REPLICA_BAR,
                Held::Both,
            ),
        ],
    );
    // What xinetd's fork and exec of any handler cost against the script:
    // no check under xinetd can do better than the C floor's fraction.
    if let (Some(floor), Some(script)) = (
        summary_of(candidates, results, PG_FLOOR),
        summary_of(candidates, results, PG_SCRIPT),
    ) {
        if let Some(cpu) = fraction(floor.cpu_per_request, script.cpu_per_request) {
            println!(
                "(pg b, for scale) {PG_FLOOR} vs {PG_SCRIPT}: CPU {cpu:.3}x (1/{:.1}) (a static C handler that only pings: no handler under xinetd spends less)",
                1.0 / cpu
            );
        }
    }
}

const REDIS_FLOOR: &str = "C redis role";
const REDIS_ROLE: &str = "redis role=primary";
const REDIS_SCRIPT: &str = "redis-cli script";
const REDIS_GUARD: &str = "redis + 3 sentinels";
/// Informative: the replica's check (its link's age), no bar.
const REDIS_REPLICA: &str = "redis role=replica";
/// The same checks from a config file (no clap).
const REDIS_ROLE_CONFIG: &str = "redis role=primary (config)";
const REDIS_GUARD_CONFIG: &str = "redis + 3 sentinels (config)";
const REDIS_REPLICA_CONFIG: &str = "redis role=replica (config)";
const REDIS_MASTER_NAME: &str = "mymaster";
const REDIS_PASSWORD: &str = "bench-redis-secret";
/// Issue 17's bars: the role check at most 1.15x the C floor (p50 and
/// CPU); at most 1/10 of the redis-cli script's CPU; with three Sentinels,
/// p50 at most 1.3x the check without them.
const REDIS_FLOOR_BAR: f64 = 1.15;
const REDIS_SCRIPT_CPU_BAR: f64 = 1.0 / 10.0;
const REDIS_GUARD_BAR: f64 = 1.3;

/// The Redis primary, its replica and the three Sentinels the `redis`
/// candidates check, and what they are given to check them.
struct RedisSetup {
    // Stopped in this order by Drop: the Sentinels, the replica, the
    // primary.
    sentinels: redis::Sentinels,
    replica: redis::Redis,
    primary: redis::Redis,
    port: String,
    replica_port: String,
    /// `127.0.0.1:PORT` of each Sentinel.
    sentinel_addrs: Vec<String>,
    /// `password = "…"`, mode 0600 (the check's and the C floor's).
    credentials: String,
    /// The bare password, mode 0600 (the script's REDISCLI_AUTH).
    password_file: String,
    /// benches/floor/redis-check.sh, executable.
    script: PathBuf,
    /// One-check configs: the role check, guarded, the replica's.
    config_role: String,
    config_guard: String,
    config_replica: String,
    version: String,
    /// Measured once before the rounds, from this process: the median wall
    /// time of one `SENTINEL get-master-addr-by-name` on a new connection
    /// (what each of the guard's threads waits for), and of one `AUTH` +
    /// `PING` on a new connection to the node.
    sentinel_ask: Option<Duration>,
    node_ask: Option<Duration>,
}

impl RedisSetup {
    /// Starts the servers, or None (with a note) when they cannot be.
    fn start(work: &Path) -> Option<RedisSetup> {
        let started = std::panic::catch_unwind(|| {
            let opts = redis::Options::default().requirepass(REDIS_PASSWORD);
            let primary = redis::Redis::start(opts.clone());
            let replica = redis::Redis::start_replica(&primary, opts);
            let sentinels = redis::Sentinels::start(3, &primary, REDIS_MASTER_NAME, 2);
            (primary, replica, sentinels)
        });
        let Ok((primary, replica, sentinels)) = started else {
            println!("skipping the redis candidates: Redis did not start (see above)");
            return None;
        };
        let credentials = work.join("redis-credentials.toml");
        let password_file = work.join("redis-password");
        let script = work.join("redis-check.sh");
        let source = workspace_root().join("benches/floor/redis-check.sh");
        let private = |path: &Path, text: String| {
            fs::write(path, text)
                .and_then(|()| fs::set_permissions(path, fs::Permissions::from_mode(0o600)))
        };
        let written = private(&credentials, format!("password = \"{REDIS_PASSWORD}\"\n"))
            .and_then(|()| private(&password_file, format!("{REDIS_PASSWORD}\n")))
            .and_then(|()| fs::copy(&source, &script).map(drop))
            .and_then(|()| fs::set_permissions(&script, fs::Permissions::from_mode(0o755)));
        if let Err(e) = written {
            println!("skipping the redis candidates: {e}");
            return None;
        }
        let port = primary.port().to_string();
        let replica_port = replica.port().to_string();
        let sentinel_addrs: Vec<String> = sentinels.addrs().iter().map(|a| a.to_string()).collect();
        let creds = credentials.display();
        let check = |port: &str, role: &str, more: &str| {
            format!(
                "[checks.redis]\nkind = \"redis\"\nhost = \"127.0.0.1\"\nport = {port}\n\
                 credentials-file = \"{creds}\"\nrole = \"{role}\"\n{more}"
            )
        };
        let listed: Vec<String> = sentinel_addrs.iter().map(|a| format!("\"{a}\"")).collect();
        let configs = [
            ("redis-role.toml", check(&port, "primary", "")),
            (
                "redis-guard.toml",
                check(
                    &port,
                    "primary",
                    &format!(
                        "sentinels = [{}]\nmaster-name = \"{REDIS_MASTER_NAME}\"\naddress = \"127.0.0.1:{port}\"\n",
                        listed.join(", ")
                    ),
                ),
            ),
            (
                "redis-replica.toml",
                check(&replica_port, "replica", "max-link-age = \"15s\"\n"),
            ),
        ];
        let mut paths = Vec::new();
        for (name, text) in configs {
            let path = work.join(name);
            // The binary refuses a config others may write.
            if let Err(e) = fs::write(&path, text)
                .and_then(|()| fs::set_permissions(&path, fs::Permissions::from_mode(0o644)))
            {
                println!("skipping the redis candidates: {}: {e}", path.display());
                return None;
            }
            paths.push(path.display().to_string());
        }
        let [config_role, config_guard, config_replica] =
            <[String; 3]>::try_from(paths).expect("three configs");
        let version = primary
            .info("server")
            .get("redis_version")
            .cloned()
            .unwrap_or_default();
        let median_of = |mut f: Box<dyn FnMut() -> bool + '_>| {
            let mut times: Vec<Duration> = (0..200)
                .filter_map(|_| {
                    let start = Instant::now();
                    f().then(|| start.elapsed())
                })
                .collect();
            median(&mut times)
        };
        let sentinel_ask = median_of(Box::new(|| sentinels.get_master_addr(0).is_some()));
        let node_ask = median_of(Box::new(|| primary.request(&["PING"]).is_ok()));
        Some(RedisSetup {
            port,
            replica_port,
            sentinel_addrs,
            credentials: credentials.display().to_string(),
            password_file: password_file.display().to_string(),
            script,
            config_role,
            config_guard,
            config_replica,
            version,
            sentinel_ask,
            node_ask,
            sentinels,
            replica,
            primary,
        })
    }

    /// The node a candidate's checks talk to.
    fn node_of(&self, c: &Candidate) -> &redis::Redis {
        if c.name == REDIS_REPLICA || c.name == REDIS_REPLICA_CONFIG {
            &self.replica
        } else {
            &self.primary
        }
    }

    fn candidates(&self, f: Option<&Floors>, cli: Option<&PathBuf>) -> Vec<Candidate> {
        let node = |port: &str, role: &str| -> Vec<String> {
            [
                "redis",
                "--host",
                "127.0.0.1",
                "--port",
                port,
                "--credentials-file",
                &self.credentials,
                "--role",
                role,
            ]
            .map(str::to_owned)
            .to_vec()
        };
        let role = node(&self.port, "primary");
        let mut guard = role.clone();
        for address in &self.sentinel_addrs {
            guard.extend(["--sentinel".to_owned(), address.clone()]);
        }
        guard.extend(
            [
                "--master-name",
                REDIS_MASTER_NAME,
                "--address",
                &format!("127.0.0.1:{}", self.port),
            ]
            .map(str::to_owned),
        );
        let mut replica = node(&self.replica_port, "replica");
        replica.extend(["--max-link-age".to_owned(), "15s".to_owned()]);
        fn refs(v: &[String]) -> Vec<&str> {
            v.iter().map(String::as_str).collect()
        }
        let addr = format!("127.0.0.1:{}", self.port);
        [
            candidate(
                REDIS_FLOOR,
                Kind::Redis,
                true,
                f.map(|f| &f.redis),
                &[&addr, &self.credentials],
            ),
            candidate(REDIS_ROLE, Kind::Redis, false, cli, &refs(&role)),
            candidate(
                REDIS_SCRIPT,
                Kind::Redis,
                false,
                Some(&self.script),
                &["127.0.0.1", &self.port, &self.password_file],
            ),
            candidate(REDIS_GUARD, Kind::Redis, false, cli, &refs(&guard)),
            candidate(REDIS_REPLICA, Kind::Redis, false, cli, &refs(&replica)),
            candidate(
                REDIS_ROLE_CONFIG,
                Kind::Redis,
                false,
                cli,
                &["--config", &self.config_role],
            ),
            candidate(
                REDIS_GUARD_CONFIG,
                Kind::Redis,
                false,
                cli,
                &["--config", &self.config_guard],
            ),
            candidate(
                REDIS_REPLICA_CONFIG,
                Kind::Redis,
                false,
                cli,
                &["--config", &self.config_replica],
            ),
        ]
        .into_iter()
        .flatten()
        .collect()
    }

    /// `BENCH_EXTRA`'s `{redis-…}` and `{sentinel-…}` placeholders.
    fn substitute(&self, arg: &str) -> String {
        let mut arg = arg
            .replace("{redis-port}", &self.port)
            .replace("{redis-replica-port}", &self.replica_port)
            .replace("{redis-credentials}", &self.credentials)
            .replace("{redis-password-file}", &self.password_file);
        for (i, address) in self.sentinel_addrs.iter().enumerate() {
            arg = arg.replace(&format!("{{sentinel-{i}}}"), address);
        }
        arg
    }
}

impl Drop for RedisSetup {
    fn drop(&mut self) {
        for i in 0..self.sentinels.len() {
            self.sentinels.stop(i);
        }
        self.replica.stop();
        self.primary.stop();
    }
}

/// The Redis section: the node's and the Sentinels' side of every
/// candidate, and issue 17's bars.
fn print_redis(candidates: &[Candidate], results: &[Vec<Round>], rd: &RedisSetup) {
    let rows: Vec<(&Candidate, &Vec<Round>)> = candidates
        .iter()
        .zip(results)
        .filter(|(c, _)| c.kind == Kind::Redis)
        .collect();
    if rows.is_empty() {
        return;
    }
    println!();
    println!(
        "Redis {}: primary (pid {}, 127.0.0.1:{}), replica (pid {}, 127.0.0.1:{}), Sentinels {} ({REDIS_MASTER_NAME}, quorum 2)",
        rd.version,
        rd.primary.pid(),
        rd.port,
        rd.replica.pid(),
        rd.replica_port,
        rd.sentinel_addrs.join(" ")
    );
    let show_us = |d: Option<Duration>| {
        d.map_or_else(
            || "-".to_owned(),
            |d| format!("{:.0}µs", d.as_secs_f64() * 1e6),
        )
    };
    println!(
        "from this process, on a new connection each (median of 200): one SENTINEL get-master-addr-by-name {}, one AUTH + PING to the node {}",
        show_us(rd.sentinel_ask),
        show_us(rd.node_ask)
    );
    println!(
        "{:<30} {:>7} {:>14} {:>17} {:>16}",
        "candidate", "checks", "node CPU/req", "sentinels CPU/req", "log lines/1000"
    );
    for (c, rounds) in &rows {
        let checks: usize = rounds.iter().map(|r| r.requests).sum();
        let server: Vec<&ServerSnapshot> =
            rounds.iter().filter_map(|r| r.server.as_ref()).collect();
        let lines: usize = server.iter().map(|s| s.log_lines).sum();
        // Pooled, not a median of rounds: a round is only a few 10 ms ticks.
        let node: Duration = server.iter().map(|s| s.cpu).sum();
        let watchers: Duration = server.iter().map(|s| s.sentinel_cpu).sum();
        let per_check = |d: Duration| {
            if checks == 0 || server.is_empty() {
                "-".to_owned()
            } else {
                format!("{:.0}µs", d.as_secs_f64() * 1e6 / checks as f64)
            }
        };
        let lines = if checks == 0 || server.is_empty() {
            "-".to_owned()
        } else {
            format!("{:.1}", lines as f64 * 1000.0 / checks as f64)
        };
        println!(
            "{:<30} {:>7} {:>14} {:>17} {:>16}",
            c.name,
            checks,
            per_check(node),
            per_check(watchers),
            lines
        );
    }
    println!(
        "node CPU/req: the checked redis-server's user+sys CPU during the rounds (10 ms ticks) / requests, pooled"
    );
    println!(
        "(the replica's for the role=replica candidates, else the primary's); sentinels CPU/req: the three Sentinels' alike,"
    );
    println!(
        "for every candidate (what they spend anyway is in all rows); neither is in CPU/req above."
    );
    println!();
    print_bars(
        "redis",
        candidates,
        results,
        &[
            Bar::new("a", REDIS_ROLE, REDIS_FLOOR, REDIS_FLOOR_BAR, Held::Both),
            Bar::new(
                "a",
                REDIS_ROLE_CONFIG,
                REDIS_FLOOR,
                REDIS_FLOOR_BAR,
                Held::Both,
            ),
            Bar::new(
                "b",
                REDIS_ROLE,
                REDIS_SCRIPT,
                REDIS_SCRIPT_CPU_BAR,
                Held::Cpu,
            ),
            Bar::new(
                "b",
                REDIS_ROLE_CONFIG,
                REDIS_SCRIPT,
                REDIS_SCRIPT_CPU_BAR,
                Held::Cpu,
            ),
            Bar::new("c", REDIS_GUARD, REDIS_ROLE, REDIS_GUARD_BAR, Held::P50),
            Bar::new(
                "c",
                REDIS_GUARD_CONFIG,
                REDIS_ROLE_CONFIG,
                REDIS_GUARD_BAR,
                Held::P50,
            ),
        ],
    );
    // What the guard adds to the time of a poll, against one Sentinel's
    // round trip measured from here.
    for (guard, alone) in [
        (REDIS_GUARD, REDIS_ROLE),
        (REDIS_GUARD_CONFIG, REDIS_ROLE_CONFIG),
    ] {
        let (Some(g), Some(a)) = (
            summary_of(candidates, results, guard),
            summary_of(candidates, results, alone),
        ) else {
            continue;
        };
        let (Some(gp), Some(ap), Some(gc), Some(ac)) =
            (g.p50, a.p50, g.cpu_per_request, a.cpu_per_request)
        else {
            continue;
        };
        let diff = |x: Duration, y: Duration| (x.as_secs_f64() - y.as_secs_f64()) * 1e6;
        println!(
            "(redis c, for scale) {guard} over {alone}: p50 {:+.0}µs, CPU {:+.0}µs a poll; one Sentinel's answer from here: {}",
            diff(gp, ap),
            diff(gc, ac),
            show_us(rd.sentinel_ask)
        );
    }
    if let (Some(floor), Some(script)) = (
        summary_of(candidates, results, REDIS_FLOOR),
        summary_of(candidates, results, REDIS_SCRIPT),
    ) {
        if let Some(cpu) = fraction(floor.cpu_per_request, script.cpu_per_request) {
            println!(
                "(redis b, for scale) {REDIS_FLOOR} vs {REDIS_SCRIPT}: CPU {cpu:.3}x (1/{:.1}) (no handler under xinetd spends less than the C floor)",
                1.0 / cpu
            );
        }
    }
}

/// What a bar holds a candidate to against its comparison.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Held {
    /// p50 and CPU per poll.
    Both,
    /// CPU per poll only.
    Cpu,
    /// p50 only.
    P50,
}

/// One bar: `name`'s ratio to `vs` at most `bar`. A tag containing
/// "informative" is printed with its ratios but no verdict.
struct Bar<'a> {
    tag: &'a str,
    name: &'a str,
    vs: &'a str,
    bar: f64,
    held: Held,
}

impl<'a> Bar<'a> {
    fn new(tag: &'a str, name: &'a str, vs: &'a str, bar: f64, held: Held) -> Bar<'a> {
        Bar {
            tag,
            name,
            vs,
            bar,
            held,
        }
    }
}

/// One line per bar whose two candidates ran: both ratios, the bar and
/// the verdict.
fn print_bars(prefix: &str, candidates: &[Candidate], results: &[Vec<Round>], bars: &[Bar<'_>]) {
    for b in bars {
        let (Some(a), Some(v)) = (
            summary_of(candidates, results, b.name),
            summary_of(candidates, results, b.vs),
        ) else {
            continue;
        };
        let (Some(p50), Some(cpu)) = (
            fraction(a.p50, v.p50),
            fraction(a.cpu_per_request, v.cpu_per_request),
        ) else {
            continue;
        };
        let show = |r: f64| {
            if r < 0.5 {
                format!("{r:.3}x (1/{:.1})", 1.0 / r)
            } else {
                format!("{r:.3}x")
            }
        };
        let bar = b.bar;
        let bar_text = if bar < 0.2 {
            format!("1/{:.0}", 1.0 / bar)
        } else {
            format!("{bar}x")
        };
        let (met, held) = match b.held {
            Held::Both => (p50 <= bar && cpu <= bar, "p50 and CPU"),
            Held::Cpu => (cpu <= bar, "CPU"),
            Held::P50 => (p50 <= bar, "p50"),
        };
        let verdict = match (b.tag.contains("informative"), met) {
            (true, _) => "not the bar's baseline",
            (false, true) => "met",
            (false, false) => "MISSED",
        };
        println!(
            "({prefix} {}) {} vs {}: p50 {}, CPU {}; bar <= {bar_text} ({held}): {verdict}",
            b.tag,
            b.name,
            b.vs,
            show(p50),
            show(cpu),
        );
    }
}

fn fraction(a: Option<Duration>, b: Option<Duration>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if !b.is_zero() => Some(a.as_secs_f64() / b.as_secs_f64()),
        _ => None,
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Hello,
    Tcp,
    Exec,
    Mariadb,
    Galera,
    Replica,
    Postgres,
    Redis,
}

impl Kind {
    fn parse(s: &str) -> Option<Kind> {
        match s {
            "hello" => Some(Kind::Hello),
            "tcp" => Some(Kind::Tcp),
            "exec" => Some(Kind::Exec),
            "mariadb" => Some(Kind::Mariadb),
            "galera" => Some(Kind::Galera),
            "replica" => Some(Kind::Replica),
            "postgres" => Some(Kind::Postgres),
            "redis" => Some(Kind::Redis),
            _ => None,
        }
    }
}

struct Candidate {
    name: String,
    kind: Kind,
    /// The C handler that the other candidates of its kind are compared with.
    is_floor: bool,
    server: PathBuf,
    args: Vec<String>,
}

/// A built-in candidate, or None (and a note why) when its binary is missing.
fn candidate(
    name: &str,
    kind: Kind,
    is_floor: bool,
    server: Option<&PathBuf>,
    args: &[&str],
) -> Option<Candidate> {
    let Some(server) = server else {
        let why = if is_floor {
            "the C floor was not built"
        } else {
            "binary not built (see the cargo output above)"
        };
        println!("skipping {name}: {why}");
        return None;
    };
    Some(Candidate {
        name: name.to_owned(),
        kind,
        is_floor,
        server: server.clone(),
        args: args.iter().map(|a| (*a).to_owned()).collect(),
    })
}

struct Config {
    rounds: usize,
    requests_per_round: usize,
    warmup_per_round: usize,
    only: Option<Kind>,
    extra: Vec<Extra>,
}

/// A candidate named in `BENCH_EXTRA`.
struct Extra {
    name: String,
    kind: Kind,
    server: PathBuf,
    args: Vec<String>,
}

impl Config {
    fn from_env() -> Config {
        let num = |name: &str, default: usize| -> usize {
            match std::env::var(name) {
                Ok(v) => v
                    .trim()
                    .parse()
                    .unwrap_or_else(|_| panic!("{name}={v:?} is not a number")),
                Err(_) => default,
            }
        };
        let rounds = num("BENCH_ROUNDS", 5).max(1);
        let requests = num("BENCH_REQUESTS", 2000).max(1);
        let warmup = num("BENCH_WARMUP", 100);
        let only = std::env::var("BENCH_ONLY").ok().map(|v| {
            Kind::parse(v.trim()).unwrap_or_else(|| {
                panic!("BENCH_ONLY={v:?}: expected hello, tcp, exec, mariadb, galera, replica, postgres or redis")
            })
        });
        let extra = std::env::var("BENCH_EXTRA")
            .unwrap_or_default()
            .split(';')
            .filter(|s| !s.trim().is_empty())
            .map(|entry| {
                let bad = || -> ! {
                    panic!("BENCH_EXTRA entry {entry:?}: expected label[@hello|@tcp|@exec|@mariadb|@postgres|@redis]=/path/to/binary [args]")
                };
                let (label, cmd) = entry.split_once('=').unwrap_or_else(|| bad());
                let (name, kind) = match label.trim().rsplit_once('@') {
                    Some((name, kind)) => (name, Kind::parse(kind).unwrap_or_else(|| bad())),
                    None => (label.trim(), Kind::Hello),
                };
                let mut words = cmd.split_whitespace().map(str::to_owned);
                let server = PathBuf::from(words.next().unwrap_or_else(|| bad()));
                Extra { name: name.to_owned(), kind, server, args: words.collect() }
            })
            .collect();
        Config {
            rounds,
            requests_per_round: requests.div_ceil(rounds),
            warmup_per_round: warmup.div_ceil(rounds),
            only,
            extra,
        }
    }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

struct Floors {
    hello: PathBuf,
    tcp: PathBuf,
    exec: PathBuf,
    mariadb: PathBuf,
    postgres: PathBuf,
    redis: PathBuf,
    /// Not a floor: the launcher that measures a handler's peak RSS.
    rss: PathBuf,
}

/// Static, so the floor pays no dynamic loading: that is the best a C
/// handler can do, and what the Rust binaries are held to.
fn compile_floors(dir: &Path) -> Result<Floors, String> {
    let src = workspace_root().join("benches/floor");
    let cc = std::env::var("CC").unwrap_or_else(|_| "gcc".to_owned());
    let compile = |name: &str| -> Result<PathBuf, String> {
        let out = dir.join(format!("floor-{name}"));
        let status = Command::new(&cc)
            .args(["-O2", "-static", "-Wall", "-o"])
            .arg(&out)
            .arg(src.join(format!("{name}.c")))
            .arg(src.join("floor.c"))
            .status()
            .map_err(|e| format!("{cc}: {e}"))?;
        if status.success() {
            Ok(out)
        } else {
            Err(format!("{cc} failed on {name}.c: {status}"))
        }
    };
    let rss = dir.join("rss");
    let status = Command::new(&cc)
        .args(["-O2", "-static", "-Wall", "-o"])
        .arg(&rss)
        .arg(src.join("rss.c"))
        .status()
        .map_err(|e| format!("{cc}: {e}"))?;
    if !status.success() {
        return Err(format!("{cc} failed on rss.c: {status}"));
    }
    Ok(Floors {
        hello: compile("hello")?,
        tcp: compile("tcp")?,
        exec: compile("exec")?,
        mariadb: compile("mariadb")?,
        postgres: compile("postgres")?,
        redis: compile("redis")?,
        rss,
    })
}

#[derive(Default)]
struct RustBinaries {
    cli: Option<PathBuf>,
    hello: Option<PathBuf>,
}

/// Builds the binaries under test the way they ship: `scripts/build-static`
/// (static, non-PIE, release profile), which leaves them in `target/static/`.
/// A failed build leaves them None rather than measuring stale files.
fn build_rust() -> RustBinaries {
    let root = workspace_root();
    let status = Command::new("bash")
        .arg(root.join("scripts/build-static"))
        .current_dir(&root)
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit())
        .status();
    match status {
        Ok(s) if s.success() => {
            let dir = root.join("target/static");
            RustBinaries {
                cli: Some(dir.join("inetd-health")),
                hello: Some(dir.join("hello")),
            }
        }
        other => {
            println!("scripts/build-static failed ({other:?}); only the C floor is measured");
            RustBinaries::default()
        }
    }
}

const MARIADB_FLOOR: &str = "C mariadb greeting";
const MARIADB_GREETING: &str = "inetd-health mariadb";
const MARIADB_AUTH: &str = "inetd-health mariadb auth";
const MARIADB_AUTH_TCP: &str = "inetd-health mariadb auth tcp";
const MARIADB_SCRIPT: &str = "seed mysqladmin script";
const GALERA_SCRIPT: &str = "shell + mysql galera check";
const GALERA_CHECK: &str = "inetd-health galera";
const MARIADB_CACHED: &str = "inetd-health mariadb cached";
const REPLICA_CHECK: &str = "inetd-health replica";
/// The bars of the MariaDB check (issue 3): greeting at most 1.25x the C
/// floor; authenticated at most 1/6 of the seed script's CPU.
const GREETING_BAR: f64 = 1.25;
const AUTH_CPU_BAR: f64 = 1.0 / 6.0;

/// The bench's mariadbd and Galera node, for the panic hook (0: none running).
static MARIADBD_PID: AtomicU32 = AtomicU32::new(0);
static GALERA_PID: AtomicU32 = AtomicU32::new(0);

/// The private MariaDB server the `mariadb` candidates check, and what they
/// are given to check it.
struct Db {
    server: mariadb::Mariadb,
    socket: String,
    port: String,
    /// `[client]` user and password of the monitor user, mode 0600.
    option_file: String,
    /// The seed's `mysqladmin ping` script, executable.
    script: PathBuf,
    version: String,
    max_connections: String,
    log_lines_at_start: usize,
    pid_slot: &'static AtomicU32,
}

impl Db {
    /// Starts the server, or None (with a note) when it cannot be started.
    fn start(
        work: &Path,
        start: fn() -> mariadb::Mariadb,
        script_name: &str,
        pid_slot: &'static AtomicU32,
    ) -> Option<Db> {
        let server = match std::panic::catch_unwind(start) {
            Ok(server) => server,
            Err(_) => {
                println!("skipping the mariadb candidates: mariadbd did not start (see above)");
                return None;
            }
        };
        pid_slot.store(server.pid(), Ordering::SeqCst);
        // A panic from here on stops the server by pid. Unwinding then reaps
        // it in Mariadb's Drop; were the bench aborted instead, the server's
        // parent-death signal (set by the fixture) would still end it.
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            previous(info);
            if let Ok(pid) = libc::pid_t::try_from(pid_slot.swap(0, Ordering::SeqCst)) {
                if pid > 0 {
                    // SAFETY: kill(2) on the pid of our own child.
                    unsafe {
                        libc::kill(pid, libc::SIGCONT);
                        libc::kill(pid, libc::SIGTERM);
                    }
                }
            }
        }));
        let option_file = server.write_option_file(
            server.dir(),
            mariadb::MONITOR_USER,
            Some(server.monitor_password()),
            0o600,
        );
        let script = work.join(script_name);
        let source = workspace_root().join("benches/floor").join(script_name);
        if let Err(e) = fs::copy(&source, &script)
            .and_then(|_| fs::set_permissions(&script, fs::Permissions::from_mode(0o755)))
        {
            println!("skipping the mariadb candidates: {}: {e}", source.display());
            return None;
        }
        let max_connections = server.sql("SELECT @@max_connections;").trim().to_owned();
        Some(Db {
            socket: server.socket().display().to_string(),
            port: server.port().to_string(),
            option_file: option_file.display().to_string(),
            script,
            version: server.version(),
            max_connections,
            log_lines_at_start: server.error_log_line_count(),
            server,
            pid_slot,
        })
    }

    /// Stops the server (SIGTERM to its pid, bounded wait, SIGKILL) and
    /// removes its directory.
    fn stop(self) {
        self.pid_slot.store(0, Ordering::SeqCst);
        let pid = self.server.pid();
        let mut server = self.server;
        server.stop();
        println!("mariadbd (pid {pid}) stopped");
    }
}

/// The server's counters around one round.
#[derive(Clone, Copy)]
struct ServerSnapshot {
    log_lines: usize,
    aborted_connects: u64,
    /// User+sys CPU of mariadbd (all threads), from /proc/PID/stat.
    cpu: Duration,
    /// For Redis: the Sentinels' user+sys CPU (all three, whichever
    /// candidate: the guard's share is the difference).
    sentinel_cpu: Duration,
}

/// The database server a candidate's checks talk to.
#[derive(Clone, Copy)]
enum Watched<'a> {
    Mariadb(&'a mariadb::Mariadb),
    Postgres(&'a postgres::Postgres),
    /// The node checked, and the Sentinels watching the primary.
    Redis(&'a redis::Redis, &'a redis::Sentinels),
}

impl ServerSnapshot {
    fn take(server: Watched<'_>) -> ServerSnapshot {
        match server {
            Watched::Mariadb(server) => ServerSnapshot {
                log_lines: server.error_log_line_count(),
                aborted_connects: server.try_global_status("Aborted_connects").unwrap_or(0),
                cpu: cpu_times(server.pid()).unwrap_or_default().own,
                sentinel_cpu: Duration::ZERO,
            },
            // A backend per connection, reaped by the postmaster: its CPU
            // is in the postmaster's children's times once it has exited.
            Watched::Postgres(server) => ServerSnapshot {
                log_lines: server.log_lines(),
                aborted_connects: 0,
                cpu: cpu_times(server.pid())
                    .map(|t| t.own + t.children)
                    .unwrap_or_default(),
                sentinel_cpu: Duration::ZERO,
            },
            // One process each (no save, so no forked child).
            Watched::Redis(node, sentinels) => ServerSnapshot {
                log_lines: node.log_text().lines().count()
                    + (0..sentinels.len())
                        .map(|i| sentinels.log_text(i).lines().count())
                        .sum::<usize>(),
                aborted_connects: 0,
                cpu: cpu_times(node.pid()).unwrap_or_default().own,
                sentinel_cpu: (0..sentinels.len())
                    .filter_map(|i| cpu_times(sentinels.pid(i)))
                    .map(|t| t.own)
                    .sum(),
            },
        }
    }

    fn since(self, before: ServerSnapshot) -> ServerSnapshot {
        ServerSnapshot {
            log_lines: self.log_lines.saturating_sub(before.log_lines),
            aborted_connects: self
                .aborted_connects
                .saturating_sub(before.aborted_connects),
            cpu: self.cpu.saturating_sub(before.cpu),
            sentinel_cpu: self.sentinel_cpu.saturating_sub(before.sentinel_cpu),
        }
    }
}

/// What the `tcp` candidates check: accepts and drops connections until
/// stopped.
struct BackgroundListener {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: thread::JoinHandle<()>,
}

impl BackgroundListener {
    fn start() -> io::Result<BackgroundListener> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                // Errors (e.g. EMFILE) are transient here; the check sees
                // them as a failed connect and the table reports the 503s.
                let _ = listener.accept();
            }
        });
        Ok(BackgroundListener { addr, stop, thread })
    }

    fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wake the blocked accept so the thread sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, CONNECT_TIMEOUT);
        let _ = self.thread.join();
    }
}

/// One candidate's results under one xinetd instance.
struct Round {
    /// Connect to EOF, measured requests only.
    latencies: Vec<Duration>,
    /// xinetd's and all its handlers' user+sys CPU, over every request
    /// including the warm-up (they all ran under this xinetd).
    cpu: Duration,
    requests: usize,
    /// Largest resident set among xinetd and its handlers, KiB.
    max_rss_kib: i64,
    /// Minor page faults of xinetd and its handlers. Their cost per fault
    /// varies a lot between machines (a VM without nested paging pays far
    /// more), so the count tells what the CPU ratio hides.
    minor_faults: i64,
    statuses: BTreeMap<u16, usize>,
    /// The first response other than 200 (status line and body), so the
    /// table's non200 column can say why.
    first_not_ok: Option<String>,
    resets: usize,
    failures: usize,
    /// For the database candidates: what the server logged, counted and
    /// spent during the round.
    server: Option<ServerSnapshot>,
}

fn run_round(
    settings: &Settings,
    c: &Candidate,
    cfg: &Config,
    db: Option<Watched<'_>>,
) -> Result<Round, String> {
    let before = db.map(ServerSnapshot::take);
    let args: Vec<&str> = c.args.iter().map(String::as_str).collect();
    let mut daemon = Xinetd::try_start(TempDir::new("bench-xinetd"), &c.server, &args, settings)?;

    let addr = loopback(daemon.port());
    let mut round = Round {
        latencies: Vec::with_capacity(cfg.requests_per_round),
        cpu: Duration::ZERO,
        requests: cfg.warmup_per_round + cfg.requests_per_round,
        max_rss_kib: 0,
        minor_faults: 0,
        statuses: BTreeMap::new(),
        first_not_ok: None,
        resets: 0,
        failures: 0,
        server: None,
    };
    for i in 0..round.requests {
        let outcome = one_request(addr);
        if outcome.reset {
            round.resets += 1;
        }
        match outcome.status {
            Some(code) => {
                *round.statuses.entry(code).or_default() += 1;
                if code != 200 && round.first_not_ok.is_none() {
                    round.first_not_ok = Some(outcome.summary.clone());
                }
                if i >= cfg.warmup_per_round {
                    round.latencies.push(outcome.latency);
                }
            }
            None => round.failures += 1,
        }
    }

    // Every handler must have exited and been reaped by xinetd before it
    // stops, or its CPU would be missing from xinetd's rusage.
    if !daemon.wait_reaped(HANDLERS_EXIT_TIMEOUT) {
        println!(
            "{}: handlers still running after {HANDLERS_EXIT_TIMEOUT:?}; CPU undercounted",
            c.name
        );
    }
    let usage = daemon
        .stop_with_usage()
        .ok_or("xinetd exited before it was stopped")?;
    round.cpu = usage.cpu;
    round.max_rss_kib = usage.max_rss_kib;
    round.minor_faults = usage.minor_faults;
    if let (Some(db), Some(before)) = (db, before) {
        // The server logs an aborted connection when its thread sees the
        // close, a moment after the handler exits.
        thread::sleep(Duration::from_millis(100));
        round.server = Some(ServerSnapshot::take(db).since(before));
    }
    Ok(round)
}

struct Outcome {
    latency: Duration,
    /// None when no status line arrived (connect failed, timeout, reset
    /// before any byte).
    status: Option<u16>,
    reset: bool,
    /// For a response other than 200: its status line and body, on one line.
    summary: String,
}

fn one_request(addr: SocketAddr) -> Outcome {
    let start = Instant::now();
    let mut outcome = Outcome {
        latency: Duration::ZERO,
        status: None,
        reset: false,
        summary: String::new(),
    };
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT) else {
        return outcome;
    };
    let _ = stream.set_read_timeout(Some(IO_TIMEOUT));
    let _ = stream.set_write_timeout(Some(IO_TIMEOUT));
    if stream.write_all(REQUEST).is_err() {
        return outcome;
    }
    let mut response = Vec::with_capacity(512);
    let mut buf = [0u8; 2048];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => response.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                outcome.reset = e.kind() == io::ErrorKind::ConnectionReset;
                break;
            }
        }
    }
    outcome.latency = start.elapsed();
    outcome.status = parse_status(&response);
    if outcome.status != Some(200) {
        outcome.summary = summarize_response(&response);
    }
    outcome
}

/// The status line and the body of a response, on one line.
fn summarize_response(response: &[u8]) -> String {
    let text = String::from_utf8_lossy(response);
    let status = text.lines().next().unwrap_or("").trim_end();
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    format!(
        "{status}: {}",
        body.split_whitespace().collect::<Vec<_>>().join(" ")
    )
}

fn parse_status(response: &[u8]) -> Option<u16> {
    let rest = response.strip_prefix(b"HTTP/1.1 ")?;
    std::str::from_utf8(rest.get(..3)?).ok()?.parse().ok()
}

struct Summary {
    p50: Option<Duration>,
    p99: Option<Duration>,
    cpu_per_request: Option<Duration>,
    max_rss_kib: i64,
    faults_per_request: f64,
    resets: usize,
    failures: usize,
    not_ok: usize,
    rounds: usize,
}

/// The summary of the candidate called `name`, when it was run.
fn summary_of(candidates: &[Candidate], results: &[Vec<Round>], name: &str) -> Option<Summary> {
    candidates
        .iter()
        .zip(results)
        .find(|(c, _)| c.name == name)
        .map(|(_, r)| summarize(r))
}

/// p50 is the median of the rounds' p50s and CPU the median of the rounds'
/// CPU per request, so one disturbed round does not move them; p99 pools all
/// samples, since a single round has too few for a stable tail.
fn summarize(rounds: &[Round]) -> Summary {
    let mut p50s: Vec<Duration> = rounds
        .iter()
        .filter_map(|r| percentile(&r.latencies, 50.0))
        .collect();
    let all: Vec<Duration> = rounds
        .iter()
        .flat_map(|r| r.latencies.iter().copied())
        .collect();
    let mut cpus: Vec<Duration> = rounds
        .iter()
        .map(|r| r.cpu / r.requests.max(1) as u32)
        .collect();
    Summary {
        p50: median(&mut p50s),
        p99: percentile(&all, 99.0),
        cpu_per_request: median(&mut cpus),
        max_rss_kib: rounds.iter().map(|r| r.max_rss_kib).max().unwrap_or(0),
        faults_per_request: rounds.iter().map(|r| r.minor_faults as f64).sum::<f64>()
            / rounds.iter().map(|r| r.requests).sum::<usize>().max(1) as f64,
        resets: rounds.iter().map(|r| r.resets).sum(),
        failures: rounds.iter().map(|r| r.failures).sum(),
        not_ok: rounds
            .iter()
            .flat_map(|r| r.statuses.iter())
            .filter(|(code, _)| **code != 200)
            .map(|(_, n)| n)
            .sum(),
        rounds: rounds.len(),
    }
}

fn percentile(samples: &[Duration], p: f64) -> Option<Duration> {
    if samples.is_empty() {
        return None;
    }
    let mut sorted = samples.to_vec();
    sorted.sort_unstable();
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

fn median(values: &mut [Duration]) -> Option<Duration> {
    values.sort_unstable();
    values.get(values.len().checked_sub(1)? / 2).copied()
}

fn print_table(candidates: &[Candidate], results: &[Vec<Round>], rss: &[Option<i64>]) {
    let summaries: Vec<Summary> = results.iter().map(|r| summarize(r)).collect();
    let us = |d: Option<Duration>| {
        d.map_or_else(
            || "-".to_owned(),
            |d| format!("{:.0}µs", d.as_secs_f64() * 1e6),
        )
    };
    let ratio = |a: Option<Duration>, b: Option<Duration>| match (a, b) {
        (Some(a), Some(b)) if !b.is_zero() => format!("{:.2}x", a.as_secs_f64() / b.as_secs_f64()),
        _ => "-".to_owned(),
    };
    println!();
    println!(
        "{:<28} {:>8} {:>8} {:>9} {:>8} {:>9} {:>9} {:>6} {:>6} {:>6} {:>7} {:>9} {:>9}",
        "candidate",
        "p50",
        "p99",
        "CPU/req",
        "faults",
        "RSS/conn",
        "max RSS",
        "non200",
        "resets",
        "failed",
        "rounds",
        "p50 ratio",
        "CPU ratio"
    );
    for ((c, s), rss) in candidates.iter().zip(&summaries).zip(rss) {
        // Each candidate is compared with the C floor of its kind.
        let floor = candidates
            .iter()
            .zip(&summaries)
            .find(|(f, _)| f.is_floor && f.kind == c.kind)
            .map(|(_, s)| s);
        let (p50_ratio, cpu_ratio) = match floor {
            Some(f) if !c.is_floor => (
                ratio(s.p50, f.p50),
                ratio(s.cpu_per_request, f.cpu_per_request),
            ),
            _ => ("-".to_owned(), "-".to_owned()),
        };
        println!(
            "{:<28} {:>8} {:>8} {:>9} {:>8.0} {:>9} {:>8}K {:>6} {:>6} {:>6} {:>7} {:>9} {:>9}",
            c.name,
            us(s.p50),
            us(s.p99),
            us(s.cpu_per_request),
            s.faults_per_request,
            rss.map_or_else(|| "-".to_owned(), |k| format!("{k}K")),
            s.max_rss_kib,
            s.not_ok,
            s.resets,
            s.failures,
            s.rounds,
            p50_ratio,
            cpu_ratio
        );
    }
    println!();
    println!("p50: median of per-round p50s (connect to EOF); p99: all measured requests pooled;");
    println!("CPU/req: xinetd + handlers user+sys CPU (wait4 rusage) / requests incl. warm-up, median of rounds;");
    println!("faults: minor page faults of xinetd + handlers per request; RSS/conn: one handler's peak resident set");
    println!("(its process tree; run directly on a socket pair); max RSS: largest process under xinetd (xinetd itself);");
    println!("ratios are against the C floor of the same kind.");
    for (c, rounds) in candidates.iter().zip(results) {
        if let Some(first) = rounds.iter().find_map(|r| r.first_not_ok.as_deref()) {
            println!("{}: first response other than 200: {first}", c.name);
        }
    }
}

/// The MariaDB section: the server's side of each candidate, and the bars.
fn print_mariadb(candidates: &[Candidate], results: &[Vec<Round>], db: &Db) {
    let rows: Vec<(&Candidate, &Vec<Round>)> = candidates
        .iter()
        .zip(results)
        .filter(|(c, _)| c.kind == Kind::Mariadb)
        .collect();
    if rows.is_empty() {
        return;
    }
    println!();
    println!(
        "MariaDB {} (pid {}, socket {}, 127.0.0.1:{}, max_connections {})",
        db.version,
        db.server.pid(),
        db.socket,
        db.port,
        db.max_connections
    );
    println!(
        "error log: {} lines before the rounds, {} after",
        db.log_lines_at_start,
        db.server.error_log_line_count()
    );
    println!(
        "{:<28} {:>7} {:>14} {:>16} {:>16}",
        "candidate", "checks", "server CPU/req", "log lines/1000", "Aborted_c./1000"
    );
    for (c, rounds) in &rows {
        let checks: usize = rounds.iter().map(|r| r.requests).sum();
        let server: Vec<&ServerSnapshot> =
            rounds.iter().filter_map(|r| r.server.as_ref()).collect();
        let lines: usize = server.iter().map(|s| s.log_lines).sum();
        let aborted: u64 = server.iter().map(|s| s.aborted_connects).sum();
        // Pooled, not a median of rounds: a round is only a few 10 ms ticks.
        let server_cpu: Duration = server.iter().map(|s| s.cpu).sum();
        let per_1000 = |n: f64| {
            if checks == 0 {
                "-".to_owned()
            } else {
                format!("{:.1}", n * 1000.0 / checks as f64)
            }
        };
        println!(
            "{:<28} {:>7} {:>14} {:>16} {:>16}",
            c.name,
            checks,
            if checks == 0 || server.is_empty() {
                "-".to_owned()
            } else {
                format!("{:.0}µs", server_cpu.as_secs_f64() * 1e6 / checks as f64)
            },
            per_1000(lines as f64),
            per_1000(aborted as f64),
        );
    }
    println!("server CPU/req: mariadbd's user+sys CPU during the rounds (10 ms ticks) / requests, all rounds pooled;");
    println!("not included in CPU/req above, which is xinetd and the handlers.");

    let summary = |name: &str| {
        rows.iter()
            .find(|(c, _)| c.name == name)
            .map(|(_, r)| summarize(r))
    };
    let ratio = |a: Option<Duration>, b: Option<Duration>| match (a, b) {
        (Some(a), Some(b)) if !b.is_zero() => Some(a.as_secs_f64() / b.as_secs_f64()),
        _ => None,
    };
    let verdict = |met: bool| if met { "met" } else { "MISSED" };
    println!();
    if let (Some(rust), Some(floor)) = (summary(MARIADB_GREETING), summary(MARIADB_FLOOR)) {
        if let (Some(p50), Some(cpu)) = (
            ratio(rust.p50, floor.p50),
            ratio(rust.cpu_per_request, floor.cpu_per_request),
        ) {
            println!(
                "(a) {MARIADB_GREETING} (socket, no credentials) vs {MARIADB_FLOOR}: p50 {p50:.2}x, CPU {cpu:.2}x; bar <= {GREETING_BAR}x: {}",
                verdict(p50 <= GREETING_BAR && cpu <= GREETING_BAR)
            );
        }
    }
    if let Some(script) = summary(MARIADB_SCRIPT) {
        for name in [MARIADB_AUTH, MARIADB_AUTH_TCP] {
            let Some(rust) = summary(name) else { continue };
            let (Some(cpu), Some(p50)) = (
                ratio(rust.cpu_per_request, script.cpu_per_request),
                ratio(rust.p50, script.p50),
            ) else {
                continue;
            };
            println!(
                "(b) {name} vs {MARIADB_SCRIPT}: CPU {cpu:.3}x (1/{:.1}), p50 {p50:.3}x (1/{:.1}); CPU bar <= 1/6: {}",
                1.0 / cpu,
                1.0 / p50,
                verdict(cpu <= AUTH_CPU_BAR)
            );
        }
    }
}
