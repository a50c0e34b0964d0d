//! Private Redis 7 servers, replicas of them and Sentinels watching them,
//! each in a temporary directory, for the `redis` check.
//!
//! [`Redis::start`] writes a `redis.conf` and starts `redis-server` on it
//! (no daemonizing: the guard holds the server's own pid), listening on a
//! free port of 127.0.0.1 and on a unix socket in its directory, and waits
//! (bounded) until `PING` answers. [`Redis::start_replica`] starts one with
//! `replicaof` the primary (and `masterauth` its password) and waits until
//! its link is up. [`Sentinels::start`] starts `redis-sentinel` processes
//! monitoring a primary, each on its own port and its own copy of the
//! configuration (Sentinels rewrite their files), and waits until they
//! agree on it, know each other and its replicas.
//!
//! The fixture talks to the servers with a small RESP2 client of its own
//! ([`Redis::request`]; independent of the library's, which the tests check)
//! and offers `redis-cli` as operators use it ([`Redis::cli`]; passwords in
//! `REDISCLI_AUTH`, never on its command line).
//!
//! Layout of [`Redis::dir`]: `redis.conf` (rewritten on every start),
//! `redis.log` (the server's `logfile`, and its stdout and stderr), the
//! socket `redis.sock` (mode [`Options::socket_perm`], 0700 unless told);
//! the server's `dir` is the directory too (a replica's sync file goes
//! there). [`Sentinels::dir`] holds `sentinel-<i>.conf` and
//! `sentinel-<i>.log` for each.
//!
//! What the fixture's `redis.conf` sets, before [`Options::acl`] and
//! [`Options::config`] lines (which come after, so they win): `bind
//! 127.0.0.1`, `daemonize no`, `save ""` and `appendonly no` (nothing is
//! persisted: Redis refuses to shut down when a final save fails),
//! `shutdown-on-sigterm nosave now` (SIGTERM stops it at once, without
//! waiting for lagging replicas), `enable-debug-command local` (`DEBUG` from
//! loopback and the socket), `repl-diskless-sync-delay 0` (a replica syncs
//! at once), `repl-ping-replica-period 1` (a healthy link's age stays
//! under two seconds), and a `proc-title-template` that names the
//! configuration file, so that [`Redis::processes`] finds every process of
//! the server (a forked sync child too) by its title. `protected-mode` is
//! left on: it refuses only non-loopback clients.
//!
//! Sentinels: `sentinel down-after-milliseconds` 1000 and `sentinel
//! failover-timeout` 5000 (a failover within seconds), `sentinel auth-pass`
//! the primary's password. Sentinels follow a failover; the [`Redis`] guards
//! do not: [`Redis::start_again`] restarts a server as the fixture last made
//! it (a primary, or a replica of what [`Redis::start_replica`] or
//! [`Redis::replicaof`] named), so an old primary the Sentinels demoted
//! comes back as a master outside their view. Sentinels that still list it
//! as a replica turn it back into one about 8 seconds later (Sentinel's own
//! delay before it forces its view); [`Sentinels::reset`] makes them forget
//! it.
//!
//! Teardown: [`Redis::stop`] (and drop) sends SIGCONT and SIGTERM, waits
//! (bounded), then SIGKILL, reaps the server and kills (by pid) any process
//! still titled with its configuration file; the directory goes with the
//! guard. Every server also gets `PR_SET_PDEATHSIG` = SIGKILL: it dies with
//! the *thread* that started it (start fixtures in the test's own thread).
//! [`Sentinels`] stop the same way, one ([`Sentinels::stop`]) or all (drop).
//!
//! A missing program fails (never skips) with "... not found: run
//! scripts/test, which installs it".

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::client::{free_port, loopback};
use crate::procs::{
    cmdline_of, find_program, is_zombie, processes_matching, read_or_empty, run_with_stdin, signal,
    tail, wait_until,
};
use crate::tmp::TempDir;

/// The server program (Debian's `redis-server`).
pub const SERVER: &str = "redis-server";
/// The Sentinel program (Debian's `redis-sentinel`).
pub const SENTINEL: &str = "redis-sentinel";
/// The command-line client (Debian's `redis-tools`).
pub const CLI: &str = "redis-cli";

/// Bound on a server or Sentinel answering `PING` after it is started.
const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// Bound on SIGTERM (an immediate shutdown, as configured) before SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// Bound on one request or one run of `redis-cli`.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(10);
/// Bound on a replica linking up or catching up, Sentinels agreeing.
const SYNC_TIMEOUT: Duration = Duration::from_secs(30);
/// Bound on a failover, from `SENTINEL FAILOVER` to a majority naming the new primary.
pub const FAILOVER_TIMEOUT: Duration = Duration::from_secs(30);
/// How often bounded waits poll.
const POLL: Duration = Duration::from_millis(20);
/// Attempts with a new port, in case another process took the free port first.
const START_ATTEMPTS: usize = 3;
/// `sentinel down-after-milliseconds`.
pub const SENTINEL_DOWN_AFTER_MS: u64 = 1000;
/// `sentinel failover-timeout`.
pub const SENTINEL_FAILOVER_TIMEOUT_MS: u64 = 5000;

/// How a server is set up; [`Options::default`] is one without a password,
/// ACL users or extra lines, its socket mode 0700.
#[derive(Clone, Debug)]
pub struct Options {
    /// `requirepass`: the `default` user's password (what the fixture
    /// authenticates with, and a replica's `masterauth` of this primary).
    pub requirepass: Option<String>,
    /// ACL `user` lines of `redis.conf` (e.g. `user monitor on >pw +ping
    /// +info`), applied after `requirepass`.
    pub acl: Vec<String>,
    /// More `redis.conf` lines, after the fixture's (so they win).
    pub config: Vec<String>,
    /// `unixsocketperm`.
    pub socket_perm: u32,
    /// Whether [`Redis::start_replica`] waits until the replica's link is
    /// up. Off, it returns as soon as the server answers `PING` (with
    /// `PONG` or `-LOADING`): a replica still syncing or loading.
    pub wait_link: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            requirepass: None,
            acl: Vec::new(),
            config: Vec::new(),
            socket_perm: 0o700,
            wait_link: true,
        }
    }
}

impl Options {
    /// Sets [`Options::requirepass`].
    pub fn requirepass(mut self, password: &str) -> Options {
        self.requirepass = Some(password.to_string());
        self
    }

    /// Adds an ACL `user` line.
    pub fn acl(mut self, line: &str) -> Options {
        self.acl.push(line.to_string());
        self
    }

    /// Adds a `redis.conf` line.
    pub fn config(mut self, line: &str) -> Options {
        self.config.push(line.to_string());
        self
    }

    /// Sets [`Options::socket_perm`].
    pub fn socket_perm(mut self, mode: u32) -> Options {
        self.socket_perm = mode;
        self
    }

    /// Sets [`Options::wait_link`].
    pub fn wait_link(mut self, on: bool) -> Options {
        self.wait_link = on;
        self
    }
}

/// How a client reaches a server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Via {
    /// `127.0.0.1:<port>`.
    Tcp,
    /// The unix socket in the fixture's directory.
    Socket,
}

/// Who a client authenticates as: nobody, the `default` user (a password
/// only) or an ACL user.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Auth {
    /// The ACL user; `None` is `default`.
    pub user: Option<String>,
    /// The password; `None` sends no `AUTH`.
    pub password: Option<String>,
}

impl Auth {
    /// No `AUTH` at all.
    pub fn none() -> Auth {
        Auth::default()
    }

    /// `AUTH password` (the `default` user).
    pub fn password(password: &str) -> Auth {
        Auth {
            user: None,
            password: Some(password.to_string()),
        }
    }

    /// `AUTH user password` (an ACL user).
    pub fn user(user: &str, password: &str) -> Auth {
        Auth {
            user: Some(user.to_string()),
            password: Some(password.to_string()),
        }
    }
}

/// One RESP2 reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    /// `+...`
    Status(String),
    /// `-...`: the whole line, code first (`NOAUTH Authentication required.`).
    Error(String),
    /// `:...`
    Integer(i64),
    /// `$n` and its bytes.
    Bulk(Vec<u8>),
    /// `$-1` or `*-1`.
    Nil,
    /// `*n` and its elements.
    Array(Vec<Reply>),
}

impl Reply {
    /// A status or bulk reply's text (lossily), an integer's digits;
    /// `None` for the others.
    pub fn text(&self) -> Option<String> {
        match self {
            Reply::Status(s) => Some(s.clone()),
            Reply::Bulk(b) => Some(String::from_utf8_lossy(b).into_owned()),
            Reply::Integer(n) => Some(n.to_string()),
            _ => None,
        }
    }

    /// The error line, if this is an error reply.
    pub fn error(&self) -> Option<&str> {
        match self {
            Reply::Error(e) => Some(e),
            _ => None,
        }
    }

    /// An array of bulk/status pairs (`SENTINEL MASTER`, `CONFIG GET`) as a map.
    pub fn pairs(&self) -> BTreeMap<String, String> {
        let mut map = BTreeMap::new();
        if let Reply::Array(items) = self {
            for pair in items.chunks(2) {
                if let [k, v] = pair {
                    if let (Some(k), Some(v)) = (k.text(), v.text()) {
                        map.insert(k, v);
                    }
                }
            }
        }
        map
    }
}

/// A private `redis-server`; stopped by pid and its directory removed on drop.
#[derive(Debug)]
pub struct Redis {
    port: u16,
    opts: Options,
    /// The `default` user's password as the fixture last set it.
    password: Option<String>,
    /// What the fixture made it a replica of (not what Sentinels made it).
    replica_of: Option<SocketAddr>,
    masterauth: Option<String>,
    conf: PathBuf,
    log: PathBuf,
    socket: PathBuf,
    child: Option<Child>,
    pid: u32,
    // Last: removed after the server has stopped.
    dir: TempDir,
}

impl Redis {
    /// Starts a primary (bounded; a taken port is retried with a new one)
    /// and waits until `PING` answers `PONG` over TCP and the socket exists.
    /// With [`Options::requirepass`], its `masterauth` is the same password,
    /// as in a Sentinel deployment: demoted by a failover, it can follow a
    /// new primary that shares it.
    ///
    /// # Panics
    /// `redis-server` is missing, or the server did not start: the message
    /// has the tail of its log.
    pub fn start(opts: Options) -> Redis {
        let masterauth = opts.requirepass.clone();
        let mut server = Redis::prepare(opts, None, masterauth);
        server.launch_with_retries();
        server
    }

    /// Starts a replica of `primary` (`replicaof 127.0.0.1 <port>`, and
    /// `masterauth` the primary's password if it has one) and, unless
    /// [`Options::wait_link`] is off, waits until its `master_link_status`
    /// is `up` and the primary lists it `state=online`.
    ///
    /// # Panics
    /// As [`Redis::start`]; or the link stayed down.
    pub fn start_replica(primary: &Redis, opts: Options) -> Redis {
        let wait = opts.wait_link;
        let mut server = Redis::prepare(opts, Some(primary.addr()), primary.password.clone());
        server.launch_with_retries();
        if wait {
            server.wait_link("up");
            server.wait_online(primary);
        }
        server
    }

    fn prepare(opts: Options, replica_of: Option<SocketAddr>, masterauth: Option<String>) -> Redis {
        let _ = program(SERVER, "redis-server");
        let dir = TempDir::new("redis");
        Redis {
            port: 0,
            password: opts.requirepass.clone(),
            opts,
            replica_of,
            masterauth,
            conf: dir.join("redis.conf"),
            log: dir.join("redis.log"),
            socket: dir.join("redis.sock"),
            child: None,
            pid: 0,
            dir,
        }
    }

    /// The port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:<port>`, as Sentinels name it.
    pub fn addr(&self) -> SocketAddr {
        loopback(self.port)
    }

    /// The unix socket (`<dir>/redis.sock`).
    pub fn socket_path(&self) -> &Path {
        &self.socket
    }

    /// The fixture's temporary directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// `redis.conf`, as the fixture last wrote it (a Sentinel's
    /// `CONFIG REWRITE` may have changed it since).
    pub fn conf_path(&self) -> &Path {
        &self.conf
    }

    /// The server's log.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// The server's pid (0 once stopped).
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The options it was started with.
    pub fn options(&self) -> &Options {
        &self.opts
    }

    /// The `default` user's password, as the fixture last set it.
    pub fn password(&self) -> Option<&str> {
        self.password.as_deref()
    }

    /// What the fixture authenticates as: the `default` user with
    /// [`Redis::password`], or no `AUTH`.
    pub fn admin(&self) -> Auth {
        Auth {
            user: None,
            password: self.password.clone(),
        }
    }

    /// What the fixture made this server a replica of ([`Redis::start_replica`],
    /// [`Redis::replicaof`]), which [`Redis::start_again`] restores; not
    /// what Sentinels made it.
    pub fn replica_of(&self) -> Option<SocketAddr> {
        self.replica_of
    }

    /// The log's text.
    pub fn log_text(&self) -> String {
        read_or_empty(&self.log)
    }

    /// How many lines of the log contain `pattern`.
    pub fn log_lines_matching(&self, pattern: &str) -> usize {
        self.log_text()
            .lines()
            .filter(|line| line.contains(pattern))
            .count()
    }

    /// Live processes of this server, with their command lines: the server
    /// (while the guard holds it) and every process whose title names its
    /// `redis.conf` (a forked sync child, a server the guard lost).
    pub fn processes(&self) -> Vec<(u32, String)> {
        own_processes(self.pid, &self.conf)
    }

    /// Sends `args` (one command) as [`Redis::admin`] over TCP: the reply,
    /// an error reply included.
    ///
    /// # Errors
    /// No connection, `AUTH` refused, no reply within the bound, a protocol error.
    pub fn request(&self, args: &[&str]) -> Result<Reply, String> {
        self.request_as(Via::Tcp, &self.admin(), args)
    }

    /// Sends `args` as `auth` (an `AUTH` first if it has a password) over `via`.
    ///
    /// # Errors
    /// As [`Redis::request`]; a refused `AUTH` is `AUTH: <its error>`.
    pub fn request_as(&self, via: Via, auth: &Auth, args: &[&str]) -> Result<Reply, String> {
        let target = match via {
            Via::Tcp => Target::Tcp(self.addr()),
            Via::Socket => Target::Unix(self.socket.clone()),
        };
        request(&target, auth, args, CLIENT_TIMEOUT)
    }

    /// [`Redis::request`], panicking on a failure or an error reply (with
    /// the log's tail).
    pub fn command(&self, args: &[&str]) -> Reply {
        match self.request(args) {
            Ok(Reply::Error(e)) => panic!(
                "{args:?} on port {}: {e}\n{}",
                self.port,
                tail(&self.log_text(), 30)
            ),
            Ok(reply) => reply,
            Err(e) => panic!(
                "{args:?} on port {}: {e}\n{}",
                self.port,
                tail(&self.log_text(), 30)
            ),
        }
    }

    /// Runs `redis-cli` with `args` as [`Redis::admin`] over TCP: its
    /// output (raw: one line per element), trailing newlines removed.
    /// `redis-cli` exits 0 on an error reply, which comes back as text
    /// (`NOAUTH Authentication required.`): use [`Redis::request`] for typed
    /// replies.
    ///
    /// # Panics
    /// `redis-cli` failed (see [`Redis::try_cli_as`]).
    pub fn cli(&self, args: &[&str]) -> String {
        self.try_cli_as(Via::Tcp, &self.admin(), args)
            .unwrap_or_else(|e| panic!("redis-cli {args:?} on port {}: {e}", self.port))
    }

    /// Runs `redis-cli` (bounded) over `via` as `auth`: `--user` for an ACL
    /// user, the password in `REDISCLI_AUTH` (never on its command line),
    /// `--no-auth-warning`, a clean environment (no `~/.redisclirc`, no
    /// history).
    ///
    /// # Errors
    /// It exited non-zero, did not finish in time, or wrote to stderr (a
    /// refused `AUTH`: `AUTH failed: WRONGPASS ...`; a refused connection):
    /// its stderr and stdout.
    pub fn try_cli_as(&self, via: Via, auth: &Auth, args: &[&str]) -> Result<String, String> {
        let mut cmd = Command::new(program(CLI, "redis-tools"));
        cmd.env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("LC_ALL", "C")
            .env("HOME", self.dir.path())
            .env("REDISCLI_HISTFILE", "/dev/null")
            .current_dir(self.dir.path());
        match via {
            Via::Tcp => cmd.args(["-h", "127.0.0.1", "-p", &self.port.to_string()]),
            Via::Socket => cmd.arg("-s").arg(&self.socket),
        };
        cmd.arg("--no-auth-warning");
        if let Some(user) = &auth.user {
            cmd.args(["--user", user]);
        }
        if let Some(password) = &auth.password {
            cmd.env("REDISCLI_AUTH", password);
        }
        cmd.args(args);
        let (code, stdout, stderr) = run_with_stdin(&mut cmd, "", CLIENT_TIMEOUT)?;
        if code != Some(0) || !stderr.trim().is_empty() {
            return Err(format!(
                "redis-cli exited with {code:?}: {}{}",
                stderr.trim(),
                if stdout.trim().is_empty() {
                    String::new()
                } else {
                    format!(" (stdout: {})", stdout.trim())
                }
            ));
        }
        Ok(stdout.trim_end_matches(['\n', '\r']).to_string())
    }

    /// `INFO <section>` as a map (`role` → `master`, ...); `""` is the
    /// default sections.
    ///
    /// # Panics
    /// The server did not answer (with the log's tail).
    pub fn info(&self, section: &str) -> BTreeMap<String, String> {
        let args: &[&str] = if section.is_empty() {
            &["INFO"]
        } else {
            &["INFO", section]
        };
        parse_info(&self.command(args).text().unwrap_or_default())
    }

    /// `INFO replication`'s `role`: `master` or `slave`.
    pub fn role(&self) -> String {
        self.info("replication")
            .get("role")
            .cloned()
            .unwrap_or_default()
    }

    /// `CONFIG SET name value`.
    pub fn config_set(&self, name: &str, value: &str) {
        self.command(&["CONFIG", "SET", name, value]);
    }

    /// `CONFIG GET name`: the value, if the setting exists.
    pub fn config_get(&self, name: &str) -> Option<String> {
        self.command(&["CONFIG", "GET", name]).pairs().remove(name)
    }

    /// `CONFIG SET requirepass` (`None`: none), and the fixture
    /// authenticates with it from now on. Replicas' `masterauth` and
    /// Sentinels' `auth-pass` are not changed.
    pub fn set_password(&mut self, password: Option<&str>) {
        self.config_set("requirepass", password.unwrap_or(""));
        self.password = password.map(str::to_string);
    }

    /// `ACL SETUSER` with `line`'s words (e.g. `monitor on >pw +ping
    /// +info`; a password with a space cannot be said this way).
    pub fn acl_setuser(&self, line: &str) {
        let mut args = vec!["ACL", "SETUSER"];
        args.extend(line.split_whitespace());
        self.command(&args);
    }

    /// `REPLICAOF <host> <port>` or `REPLICAOF NO ONE`; remembered for
    /// [`Redis::start_again`]. Does not wait for the link (see
    /// [`Redis::wait_link`]); a primary with a password needs `masterauth`
    /// first ([`Redis::config_set`]).
    pub fn replicaof(&mut self, primary: Option<SocketAddr>) {
        match primary {
            Some(addr) => {
                let (host, port) = (addr.ip().to_string(), addr.port().to_string());
                self.command(&["REPLICAOF", &host, &port]);
            }
            None => {
                self.command(&["REPLICAOF", "NO", "ONE"]);
            }
        }
        self.replica_of = primary;
    }

    /// `CLIENT PAUSE <ms>` (all commands): for that long the server answers
    /// no client. Redis 7.0 still pings its replicas meanwhile: to age a
    /// replica's link, stop its primary ([`Redis::sigstop`]) instead.
    pub fn client_pause(&self, ms: u64) {
        self.command(&["CLIENT", "PAUSE", &ms.to_string()]);
    }

    /// `CLIENT UNPAUSE`.
    pub fn client_unpause(&self) {
        self.command(&["CLIENT", "UNPAUSE"]);
    }

    /// `DEBUG SLEEP <secs>` on a connection of its own: returns once the
    /// server is busy (a `PING` from another connection goes unanswered for
    /// 100 ms); the handle gives the reply once it has slept.
    pub fn debug_sleep(&self, duration: Duration) -> JoinHandle<Result<Reply, String>> {
        let target = Target::Tcp(self.addr());
        let auth = self.admin();
        let secs = format!("{:.3}", duration.as_secs_f64());
        let bound = duration + CLIENT_TIMEOUT;
        let handle =
            std::thread::spawn(move || request(&target, &auth, &["DEBUG", "SLEEP", &secs], bound));
        let asleep = wait_until(duration, Duration::from_millis(5), || {
            let target = Target::Tcp(self.addr());
            request(
                &target,
                &self.admin(),
                &["PING"],
                Duration::from_millis(100),
            )
            .is_err()
        });
        assert!(
            asleep,
            "port {}: the server kept answering PING during DEBUG SLEEP",
            self.port
        );
        handle
    }

    /// `DEBUG POPULATE <n>`: `n` keys `key:0`.. with values `value:0`..
    /// Not replicated (a debug command): a replica started afterwards gets
    /// them with its first sync, one already linked does not.
    pub fn populate(&self, n: u64) {
        self.command(&["DEBUG", "POPULATE", &n.to_string()]);
    }

    /// Sends SIGSTOP: connections are accepted by the kernel, never answered.
    pub fn sigstop(&self) {
        signal(self.pid, libc::SIGSTOP);
    }

    /// Sends SIGCONT.
    pub fn sigcont(&self) {
        signal(self.pid, libc::SIGCONT);
    }

    /// Waits (bounded) until `INFO replication`'s `master_link_status` is
    /// `status` (`up` or `down`).
    ///
    /// # Panics
    /// It was not, with the last answer and the log's tail.
    pub fn wait_link(&self, status: &str) {
        let mut last = Err(String::new());
        let done = wait_until(SYNC_TIMEOUT, POLL, || {
            last = self.try_info("replication");
            matches!(&last, Ok(info) if info.get("master_link_status").map(String::as_str) == Some(status))
        });
        assert!(
            done,
            "port {}: master_link_status not {status:?} after {SYNC_TIMEOUT:?}: {last:?}\n{}",
            self.port,
            tail(&self.log_text(), 30)
        );
    }

    /// Waits (bounded) until this replica has processed everything
    /// `primary` has written so far (`slave_repl_offset` reached the
    /// primary's `master_repl_offset`).
    pub fn catch_up(&self, primary: &Redis) {
        let target: u64 = offset(&primary.info("replication"), "master_repl_offset");
        let mut last = 0;
        let done = wait_until(SYNC_TIMEOUT, POLL, || {
            last = self
                .try_info("replication")
                .map(|info| offset(&info, "slave_repl_offset"))
                .unwrap_or(0);
            last >= target
        });
        assert!(
            done,
            "replica on port {} at offset {last}, not {target}, after {SYNC_TIMEOUT:?}\n{}",
            self.port,
            tail(&self.log_text(), 30)
        );
    }

    /// Waits (bounded) until `primary` lists this replica `state=online`
    /// (the sync over, its first acknowledgement received).
    fn wait_online(&self, primary: &Redis) {
        let me = format!("port={},state=online", self.port);
        let mut last = Err(String::new());
        let done = wait_until(SYNC_TIMEOUT, POLL, || {
            last = primary.try_info("replication");
            matches!(&last, Ok(info) if info.iter().any(|(k, v)| k.starts_with("slave") && v.contains(&me)))
        });
        assert!(
            done,
            "the primary on port {} does not list the replica on port {} online after \
             {SYNC_TIMEOUT:?}: {last:?}\n{}",
            primary.port,
            self.port,
            tail(&primary.log_text(), 30)
        );
    }

    fn try_info(&self, section: &str) -> Result<BTreeMap<String, String>, String> {
        match self.request(&["INFO", section])? {
            Reply::Error(e) => Err(e),
            reply => Ok(parse_info(&reply.text().unwrap_or_default())),
        }
    }

    /// Stops the server: SIGCONT and SIGTERM (an immediate shutdown, no
    /// save, no wait for replicas), a bounded wait, then SIGKILL; reaps it
    /// and kills (by pid) whatever of it is left ([`Redis::processes`]).
    /// Its socket is removed. Stopping a stopped server does nothing.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            stop_child(&mut child, "redis-server");
        }
        self.pid = 0;
        for (pid, _) in self.processes() {
            signal(pid, libc::SIGKILL);
        }
        let _ = std::fs::remove_file(&self.socket);
    }

    /// Stops it if it runs, then starts it again on the same port, socket
    /// and directory, as the fixture last made it: a replica of
    /// [`Redis::replica_of`], or a primary (an old primary the Sentinels
    /// demoted comes back a master outside their view). Waits as
    /// [`Redis::start`] does (not for a replica's link).
    ///
    /// # Panics
    /// It did not start.
    pub fn start_again(&mut self) {
        self.stop();
        self.launch()
            .unwrap_or_else(|e| panic!("restarting redis-server on port {}: {e}", self.port));
    }

    /// `redis.conf`: see the module docs.
    fn write_conf(&self) {
        let dir = self.dir.path().display().to_string();
        let mut conf = format!(
            "# inetd-health-testkit: rewritten on every start\n\
             bind 127.0.0.1\n\
             port {port}\n\
             unixsocket {socket}\n\
             unixsocketperm {perm:o}\n\
             daemonize no\n\
             dir {dir}\n\
             logfile {log}\n\
             save \"\"\n\
             appendonly no\n\
             shutdown-on-sigterm nosave now\n\
             shutdown-on-sigint nosave now\n\
             enable-debug-command local\n\
             repl-diskless-sync-delay 0\n\
             repl-ping-replica-period 1\n\
             proc-title-template \"{{title}} {{listen-addr}} {{server-mode}} {{config-file}}\"\n",
            port = self.port,
            socket = quote(&self.socket.display().to_string()),
            perm = self.opts.socket_perm,
            dir = quote(&dir),
            log = quote(&self.log.display().to_string()),
        );
        if let Some(password) = &self.password {
            conf.push_str(&format!("requirepass {}\n", quote(password)));
        }
        if let Some(primary) = self.replica_of {
            conf.push_str(&format!("replicaof {} {}\n", primary.ip(), primary.port()));
        }
        if let Some(password) = &self.masterauth {
            conf.push_str(&format!("masterauth {}\n", quote(password)));
        }
        for line in self.opts.acl.iter().chain(&self.opts.config) {
            conf.push_str(line);
            conf.push('\n');
        }
        write(&self.conf, &conf);
    }

    fn launch_with_retries(&mut self) {
        let mut errors = Vec::new();
        for attempt in 1..=START_ATTEMPTS {
            self.port = free_port();
            match self.launch() {
                Ok(()) => return,
                Err(e) => errors.push(format!("attempt {attempt} on port {}: {e}", self.port)),
            }
        }
        panic!("starting redis-server: {}", errors.join("\n"));
    }

    /// Writes `redis.conf`, spawns `redis-server` on it and waits until
    /// `PING` answers (`PONG`, or `-LOADING` on a replica loading its sync
    /// with [`Options::wait_link`] off) and the socket exists.
    fn launch(&mut self) -> Result<(), String> {
        self.write_conf();
        let since = log_len(&self.log);
        let mut child = spawn(
            SERVER,
            "redis-server",
            &self.conf,
            &self.log,
            self.dir.path(),
        )?;
        let loading_ok = self.replica_of.is_some() && !self.opts.wait_link;
        let target = Target::Tcp(self.addr());
        let admin = self.admin();
        wait_ready(&mut child, &self.log, since, || {
            match request(&target, &admin, &["PING"], CLIENT_TIMEOUT) {
                Ok(Reply::Status(s)) if s == "PONG" => Ok(self.socket.exists()),
                Ok(Reply::Error(e)) if loading_ok && e.starts_with("LOADING") => {
                    Ok(self.socket.exists())
                }
                Ok(Reply::Error(e)) if e.starts_with("LOADING") => Ok(false),
                Ok(other) => Err(format!("PING answered {other:?}")),
                Err(e) => {
                    if e.starts_with("AUTH") {
                        Err(e)
                    } else {
                        Ok(false)
                    }
                }
            }
        })?;
        self.pid = child.id();
        self.child = Some(child);
        Ok(())
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "--- redis-server (dir {}, port {}) log, last lines:\n{}",
                self.dir.path().display(),
                self.port,
                tail(&self.log_text(), 40)
            );
        }
        // The directory goes with `self.dir`, once the server is stopped.
        self.stop();
    }
}

/// Private `redis-sentinel` processes monitoring one primary as one master
/// group; stopped by pid and their directory removed on drop.
#[derive(Debug)]
pub struct Sentinels {
    name: String,
    quorum: usize,
    auth_pass: Option<String>,
    nodes: Vec<Node>,
    // Last: removed after the Sentinels have stopped.
    dir: TempDir,
}

#[derive(Debug)]
struct Node {
    port: u16,
    conf: PathBuf,
    log: PathBuf,
    child: Option<Child>,
    pid: u32,
}

impl Sentinels {
    /// Starts `n` Sentinels monitoring `primary` as `master_name` with
    /// `quorum` (`sentinel auth-pass` the primary's password), and waits
    /// (bounded) until each names the primary, knows the `n - 1` others and
    /// every replica the primary has connected, each refreshed: a failover
    /// can start at once.
    ///
    /// # Panics
    /// `redis-sentinel` is missing, a Sentinel did not start, or they did
    /// not agree: with their logs' tails.
    pub fn start(n: usize, primary: &Redis, master_name: &str, quorum: usize) -> Sentinels {
        let _ = program(SENTINEL, "redis-sentinel");
        let dir = TempDir::new("sentinel");
        let mut sentinels = Sentinels {
            name: master_name.to_string(),
            quorum,
            auth_pass: primary.password.clone(),
            nodes: Vec::new(),
            dir,
        };
        for i in 0..n {
            let node = Node {
                port: 0,
                conf: sentinels.dir.join(&format!("sentinel-{i}.conf")),
                log: sentinels.dir.join(&format!("sentinel-{i}.log")),
                child: None,
                pid: 0,
            };
            sentinels.nodes.push(node);
            let mut errors = Vec::new();
            for attempt in 1..=START_ATTEMPTS {
                sentinels.nodes[i].port = free_port();
                sentinels.write_conf(i, primary.addr());
                match sentinels.launch(i) {
                    Ok(()) => break,
                    Err(e) => errors.push(format!(
                        "attempt {attempt} on port {}: {e}",
                        sentinels.nodes[i].port
                    )),
                }
            }
            assert!(
                errors.len() < START_ATTEMPTS,
                "starting redis-sentinel {i}: {}",
                errors.join("\n")
            );
        }
        sentinels.wait_ready();
        sentinels
    }

    /// The master group's name.
    pub fn master_name(&self) -> &str {
        &self.name
    }

    /// The quorum they were started with.
    pub fn quorum(&self) -> usize {
        self.quorum
    }

    /// How many Sentinels there are (running or stopped).
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Their ports on 127.0.0.1, by index.
    pub fn ports(&self) -> Vec<u16> {
        self.nodes.iter().map(|n| n.port).collect()
    }

    /// Their addresses, `127.0.0.1:<port>`, by index.
    pub fn addrs(&self) -> Vec<SocketAddr> {
        self.nodes.iter().map(|n| loopback(n.port)).collect()
    }

    /// Sentinel `i`'s pid (0 once stopped).
    pub fn pid(&self, i: usize) -> u32 {
        self.nodes[i].pid
    }

    /// Whether Sentinel `i` runs (was not stopped).
    pub fn is_running(&self, i: usize) -> bool {
        self.nodes[i].child.is_some()
    }

    /// The fixture's directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Sentinel `i`'s configuration file (as it rewrote it).
    pub fn conf_path(&self, i: usize) -> &Path {
        &self.nodes[i].conf
    }

    /// Sentinel `i`'s log.
    pub fn log_text(&self, i: usize) -> String {
        read_or_empty(&self.nodes[i].log)
    }

    /// Live processes of these Sentinels (by their configuration files in
    /// titles and command lines), with their command lines.
    pub fn processes(&self) -> Vec<(u32, String)> {
        let mut found = Vec::new();
        for node in &self.nodes {
            for p in own_processes(node.pid, &node.conf) {
                if !found.contains(&p) {
                    found.push(p);
                }
            }
        }
        found
    }

    /// Sends `args` to Sentinel `i` (no `AUTH`: the Sentinels have no password).
    ///
    /// # Errors
    /// No connection or no reply within the bound.
    pub fn request(&self, i: usize, args: &[&str]) -> Result<Reply, String> {
        request(
            &Target::Tcp(loopback(self.nodes[i].port)),
            &Auth::none(),
            args,
            CLIENT_TIMEOUT,
        )
    }

    /// `SENTINEL get-master-addr-by-name` on Sentinel `i`: `None` if it
    /// does not answer, answers nil or an error.
    pub fn get_master_addr(&self, i: usize) -> Option<SocketAddr> {
        self.try_get_master_addr(i).ok().flatten()
    }

    /// `SENTINEL get-master-addr-by-name` on Sentinel `i`.
    ///
    /// # Errors
    /// No answer, an error reply, or one that is not an address.
    pub fn try_get_master_addr(&self, i: usize) -> Result<Option<SocketAddr>, String> {
        match self.request(i, &["SENTINEL", "get-master-addr-by-name", &self.name])? {
            Reply::Nil => Ok(None),
            Reply::Array(items) if items.len() == 2 => {
                let (Some(host), Some(port)) = (items[0].text(), items[1].text()) else {
                    return Err(format!("not an address: {items:?}"));
                };
                format!("{host}:{port}")
                    .parse()
                    .map(Some)
                    .map_err(|e| format!("{host}:{port}: {e}"))
            }
            other => Err(format!("unexpected answer {other:?}")),
        }
    }

    /// `SENTINEL MASTER <name>` on Sentinel `i`, as a map (`num-slaves`,
    /// `num-other-sentinels`, `flags`, `config-epoch`...).
    ///
    /// # Errors
    /// No answer or an error reply.
    pub fn master_info(&self, i: usize) -> Result<BTreeMap<String, String>, String> {
        match self.request(i, &["SENTINEL", "MASTER", &self.name])? {
            Reply::Error(e) => Err(e),
            reply => Ok(reply.pairs()),
        }
    }

    /// `SENTINEL REPLICAS <name>` on Sentinel `i`, one map per replica
    /// (`ip`, `port`, `flags`, `info-refresh`...).
    ///
    /// # Errors
    /// No answer or an error reply.
    pub fn replicas(&self, i: usize) -> Result<Vec<BTreeMap<String, String>>, String> {
        match self.request(i, &["SENTINEL", "REPLICAS", &self.name])? {
            Reply::Array(items) => Ok(items.iter().map(Reply::pairs).collect()),
            other => Err(format!("unexpected answer {other:?}")),
        }
    }

    /// What each Sentinel names as the primary, by index (`None`: stopped,
    /// silent, or no address).
    pub fn votes(&self) -> Vec<Option<SocketAddr>> {
        (0..self.nodes.len())
            .map(|i| {
                if self.is_running(i) {
                    self.get_master_addr(i)
                } else {
                    None
                }
            })
            .collect()
    }

    /// The address a majority of all the Sentinels (stopped ones count as
    /// not naming any) names, if any.
    pub fn majority(&self) -> Option<SocketAddr> {
        majority_of(&self.votes(), self.nodes.len())
    }

    /// Waits up to `timeout` until a majority of all the Sentinels name
    /// `addr`; how long that took.
    ///
    /// # Panics
    /// They did not: with each one's answer and their logs' tails.
    pub fn wait_master(&self, addr: SocketAddr, timeout: Duration) -> Duration {
        let start = Instant::now();
        let mut votes = Vec::new();
        let done = wait_until(timeout, POLL, || {
            votes = self.votes();
            majority_of(&votes, self.nodes.len()) == Some(addr)
        });
        assert!(
            done,
            "no majority of the Sentinels names {addr} after {timeout:?}: {votes:?}\n{}",
            self.logs_tail(20)
        );
        start.elapsed()
    }

    /// `SENTINEL FAILOVER <name>` on the first running Sentinel (retried,
    /// bounded, while it answers `-NOGOODSLAVE` or `-INPROG`), then waits
    /// until a majority names another primary: that primary.
    ///
    /// # Panics
    /// No majority named a primary first, the failover was refused to the
    /// end, or no majority named a new primary within [`FAILOVER_TIMEOUT`].
    pub fn failover(&self) -> SocketAddr {
        let old = self
            .majority()
            .unwrap_or_else(|| panic!("no majority before the failover: {:?}", self.votes()));
        let i = (0..self.nodes.len())
            .find(|&i| self.is_running(i))
            .expect("no Sentinel running");
        let mut last = Err(String::new());
        let sent = wait_until(FAILOVER_TIMEOUT, Duration::from_millis(200), || {
            last = self.request(i, &["SENTINEL", "FAILOVER", &self.name]);
            match &last {
                Ok(Reply::Status(s)) if s == "OK" => true,
                Ok(Reply::Error(e)) if e.starts_with("NOGOODSLAVE") || e.starts_with("INPROG") => {
                    false
                }
                _ => true,
            }
        });
        assert!(
            sent && matches!(&last, Ok(Reply::Status(s)) if s == "OK"),
            "SENTINEL FAILOVER {} on Sentinel {i}: {last:?}\n{}",
            self.name,
            self.logs_tail(20)
        );
        let mut votes = Vec::new();
        let mut new = None;
        let done = wait_until(FAILOVER_TIMEOUT, POLL, || {
            votes = self.votes();
            new = majority_of(&votes, self.nodes.len()).filter(|&a| a != old);
            new.is_some()
        });
        assert!(
            done,
            "no majority of the Sentinels names a primary other than {old} \
             {FAILOVER_TIMEOUT:?} after SENTINEL FAILOVER: {votes:?}\n{}",
            self.logs_tail(20)
        );
        new.unwrap()
    }

    /// `SENTINEL RESET <name>` on every running Sentinel (they forget the
    /// replicas and Sentinels they knew, a demoted old primary among them),
    /// then waits as [`Sentinels::start`] does until they have found again
    /// each other and the primary's connected replicas.
    pub fn reset(&self) {
        for i in (0..self.nodes.len()).filter(|&i| self.is_running(i)) {
            match self.request(i, &["SENTINEL", "RESET", &self.name]) {
                Ok(Reply::Integer(_)) => {}
                other => panic!("SENTINEL RESET on Sentinel {i}: {other:?}"),
            }
        }
        self.wait_ready();
    }

    /// Stops Sentinel `i` (SIGTERM, bounded, then SIGKILL; reaped).
    pub fn stop(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        if let Some(mut child) = node.child.take() {
            stop_child(&mut child, "redis-sentinel");
        }
        node.pid = 0;
        for (pid, _) in own_processes(0, &node.conf) {
            signal(pid, libc::SIGKILL);
        }
    }

    /// Starts a stopped Sentinel `i` again on its port and its own
    /// (rewritten) configuration: its identity, epoch and view as it left
    /// them. Waits until it answers `PING`, not for agreement.
    pub fn start_again(&mut self, i: usize) {
        self.stop(i);
        self.launch(i)
            .unwrap_or_else(|e| panic!("restarting redis-sentinel {i}: {e}"));
    }

    fn write_conf(&self, i: usize, primary: SocketAddr) {
        let node = &self.nodes[i];
        let name = &self.name;
        let mut conf = format!(
            "# inetd-health-testkit (the Sentinel rewrites this file)\n\
             bind 127.0.0.1\n\
             port {port}\n\
             daemonize no\n\
             dir {dir}\n\
             logfile {log}\n\
             proc-title-template \"{{title}} {{listen-addr}} {{server-mode}} {{config-file}}\"\n\
             sentinel monitor {name} {host} {pport} {quorum}\n\
             sentinel down-after-milliseconds {name} {SENTINEL_DOWN_AFTER_MS}\n\
             sentinel failover-timeout {name} {SENTINEL_FAILOVER_TIMEOUT_MS}\n\
             sentinel parallel-syncs {name} 1\n",
            port = node.port,
            dir = quote(&self.dir.path().display().to_string()),
            log = quote(&node.log.display().to_string()),
            host = primary.ip(),
            pport = primary.port(),
            quorum = self.quorum,
        );
        if let Some(password) = &self.auth_pass {
            conf.push_str(&format!("sentinel auth-pass {name} {}\n", quote(password)));
        }
        write(&node.conf, &conf);
    }

    fn launch(&mut self, i: usize) -> Result<(), String> {
        let node = &self.nodes[i];
        let since = log_len(&node.log);
        let mut child = spawn(
            SENTINEL,
            "redis-sentinel",
            &node.conf,
            &node.log,
            self.dir.path(),
        )?;
        let target = Target::Tcp(loopback(node.port));
        wait_ready(&mut child, &node.log, since, || {
            Ok(matches!(
                request(&target, &Auth::none(), &["PING"], CLIENT_TIMEOUT),
                Ok(Reply::Status(s)) if s == "PONG"
            ))
        })?;
        let node = &mut self.nodes[i];
        node.pid = child.id();
        node.child = Some(child);
        Ok(())
    }

    /// Waits (bounded) until every running Sentinel names the same primary,
    /// knows the other running ones, and knows (refreshed in the last 10
    /// seconds, not down) as many replicas as that primary has connected.
    fn wait_ready(&self) {
        let running: Vec<usize> = (0..self.nodes.len())
            .filter(|&i| self.is_running(i))
            .collect();
        let mut last = String::new();
        let done = wait_until(SYNC_TIMEOUT, Duration::from_millis(50), || {
            match self.ready_state(&running) {
                Ok(()) => true,
                Err(e) => {
                    last = e;
                    false
                }
            }
        });
        assert!(
            done,
            "Sentinels not ready after {SYNC_TIMEOUT:?}: {last}\n{}",
            self.logs_tail(20)
        );
    }

    fn ready_state(&self, running: &[usize]) -> Result<(), String> {
        let mut primary = None;
        for &i in running {
            let addr = self
                .try_get_master_addr(i)?
                .ok_or_else(|| format!("Sentinel {i} names no primary"))?;
            if primary.is_some_and(|p| p != addr) {
                return Err(format!("Sentinel {i} names {addr}, another {primary:?}"));
            }
            primary = Some(addr);
        }
        let Some(primary) = primary else {
            return Ok(());
        };
        let auth = Auth {
            user: None,
            password: self.auth_pass.clone(),
        };
        let info = match request(
            &Target::Tcp(primary),
            &auth,
            &["INFO", "replication"],
            CLIENT_TIMEOUT,
        )? {
            Reply::Error(e) => return Err(format!("INFO on the primary {primary}: {e}")),
            reply => parse_info(&reply.text().unwrap_or_default()),
        };
        let replicas = offset(&info, "connected_slaves") as usize;
        for &i in running {
            let master = self.master_info(i)?;
            let others: usize = master
                .get("num-other-sentinels")
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            if others + 1 < running.len() {
                return Err(format!(
                    "Sentinel {i} knows {others} other Sentinels, not {}",
                    running.len() - 1
                ));
            }
            let fresh = self
                .replicas(i)?
                .iter()
                .filter(|r| {
                    r.get("flags").map(String::as_str) == Some("slave")
                        && r.get("info-refresh")
                            .and_then(|n| n.parse::<u64>().ok())
                            .is_some_and(|ms| ms < 10_000)
                })
                .count();
            if fresh < replicas {
                return Err(format!(
                    "Sentinel {i} knows {fresh} sound replicas, the primary has {replicas}"
                ));
            }
        }
        Ok(())
    }

    fn logs_tail(&self, n: usize) -> String {
        (0..self.nodes.len())
            .map(|i| format!("--- sentinel {i}:\n{}", tail(&self.log_text(i), n)))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for Sentinels {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "--- Sentinels (dir {}) logs, last lines:\n{}",
                self.dir.path().display(),
                self.logs_tail(40)
            );
        }
        for i in 0..self.nodes.len() {
            self.stop(i);
        }
    }
}

/// `redis-server` or `redis-sentinel`, wherever it is; fails (never skips)
/// when it is missing.
pub fn program(name: &str, package: &str) -> PathBuf {
    find_program(name).unwrap_or_else(|| {
        panic!("{name} not found: run scripts/test, which installs it ({package})")
    })
}

/// Where a request goes.
enum Target {
    Tcp(SocketAddr),
    Unix(PathBuf),
}

/// One command as a RESP2 array of bulk strings.
fn encode(args: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Connects, sends `AUTH` (if `auth` has a password) and `args` in one
/// write, reads both replies: the command's.
fn request(
    target: &Target,
    auth: &Auth,
    args: &[&str],
    timeout: Duration,
) -> Result<Reply, String> {
    let mut bytes = Vec::new();
    if let Some(password) = &auth.password {
        match &auth.user {
            Some(user) => bytes.extend(encode(&["AUTH", user, password])),
            None => bytes.extend(encode(&["AUTH", password])),
        }
    }
    bytes.extend(encode(args));
    let stream: Box<dyn ReadWrite> = match target {
        Target::Tcp(addr) => {
            let s = TcpStream::connect_timeout(addr, timeout.min(Duration::from_secs(2)))
                .map_err(|e| format!("connecting to {addr}: {e}"))?;
            s.set_read_timeout(Some(timeout))
                .map_err(|e| e.to_string())?;
            s.set_write_timeout(Some(timeout))
                .map_err(|e| e.to_string())?;
            Box::new(s)
        }
        Target::Unix(path) => {
            let s = UnixStream::connect(path)
                .map_err(|e| format!("connecting to {}: {e}", path.display()))?;
            s.set_read_timeout(Some(timeout))
                .map_err(|e| e.to_string())?;
            s.set_write_timeout(Some(timeout))
                .map_err(|e| e.to_string())?;
            Box::new(s)
        }
    };
    let mut reader = BufReader::new(stream);
    reader
        .get_mut()
        .write_all(&bytes)
        .map_err(|e| format!("writing: {e}"))?;
    if auth.password.is_some() {
        if let Reply::Error(e) = read_reply(&mut reader)? {
            return Err(format!("AUTH: {e}"));
        }
    }
    read_reply(&mut reader)
}

trait ReadWrite: Read + Write {}
impl<T: Read + Write> ReadWrite for T {}

fn read_line(r: &mut impl BufRead) -> Result<String, String> {
    let mut line = Vec::new();
    r.read_until(b'\n', &mut line)
        .map_err(|e| format!("reading: {e}"))?;
    if !line.ends_with(b"\r\n") {
        return Err(format!(
            "connection closed mid-reply ({:?})",
            String::from_utf8_lossy(&line)
        ));
    }
    line.truncate(line.len() - 2);
    String::from_utf8(line).map_err(|e| format!("not UTF-8: {e}"))
}

fn read_reply(r: &mut impl BufRead) -> Result<Reply, String> {
    let line = read_line(r)?;
    let (kind, rest) = line.split_at(line.len().min(1));
    let number =
        || -> Result<i64, String> { rest.parse().map_err(|_| format!("not a length: {line:?}")) };
    match kind {
        "+" => Ok(Reply::Status(rest.to_string())),
        "-" => Ok(Reply::Error(rest.to_string())),
        ":" => Ok(Reply::Integer(number()?)),
        "$" => {
            let Ok(len) = usize::try_from(number()?) else {
                return Ok(Reply::Nil);
            };
            let mut bytes = vec![0; len + 2];
            r.read_exact(&mut bytes)
                .map_err(|e| format!("reading a bulk reply: {e}"))?;
            bytes.truncate(len);
            Ok(Reply::Bulk(bytes))
        }
        "*" => {
            let Ok(n) = usize::try_from(number()?) else {
                return Ok(Reply::Nil);
            };
            (0..n)
                .map(|_| read_reply(r))
                .collect::<Result<_, _>>()
                .map(Reply::Array)
        }
        _ => Err(format!("not a RESP2 reply: {line:?}")),
    }
}

/// `INFO`'s text as a map; section headers and blank lines skipped.
fn parse_info(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .map(|l| l.trim_end_matches('\r'))
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A numeric `INFO` field, 0 when absent.
fn offset(info: &BTreeMap<String, String>, field: &str) -> u64 {
    info.get(field).and_then(|v| v.parse().ok()).unwrap_or(0)
}

/// The address more than half of `total` votes name, if any.
fn majority_of(votes: &[Option<SocketAddr>], total: usize) -> Option<SocketAddr> {
    votes
        .iter()
        .flatten()
        .copied()
        .find(|addr| votes.iter().filter(|v| **v == Some(*addr)).count() * 2 > total)
}

/// A value in double quotes as `redis.conf` reads it (`\"`, `\\`, `\xHH`).
fn quote(value: &str) -> String {
    let mut out = String::from("\"");
    for b in value.bytes() {
        match b {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            0x20..=0x7e => out.push(b as char),
            _ => out.push_str(&format!("\\x{b:02x}")),
        }
    }
    out.push('"');
    out
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
}

fn log_len(log: &Path) -> usize {
    std::fs::metadata(log)
        .map(|m| m.len() as usize)
        .unwrap_or(0)
}

/// Spawns `<program> <conf>` in `dir`, stdout and stderr appended to
/// `log` (what it says before it opens its `logfile`), dying with the
/// calling thread.
fn spawn(name: &str, package: &str, conf: &Path, log: &Path, dir: &Path) -> Result<Child, String> {
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(|e| format!("opening {}: {e}", log.display()))?;
    let err = out.try_clone().map_err(|e| e.to_string())?;
    let mut cmd = Command::new(program(name, package));
    cmd.arg(conf)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("LC_ALL", "C")
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err);
    // SAFETY: prctl is async-signal-safe and touches no memory of ours.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong);
            Ok(())
        });
    }
    cmd.spawn().map_err(|e| format!("spawning {name}: {e}"))
}

/// Polls `ready` until it says yes, bounded; fails (killing the child) if
/// the child exits, `ready` errs, or time runs out: with the log since `since`.
fn wait_ready(
    child: &mut Child,
    log: &Path,
    since: usize,
    mut ready: impl FnMut() -> Result<bool, String>,
) -> Result<(), String> {
    let since_launch = || {
        let text = read_or_empty(log);
        tail(text.get(since..).unwrap_or(""), 30)
    };
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!(
                "exited ({status}) before it was ready\n{}",
                since_launch()
            ));
        }
        let state = ready();
        let fail = |why: String, child: &mut Child| {
            let _ = child.kill();
            let _ = child.wait();
            Err(format!("{why}\n{}", since_launch()))
        };
        match state {
            Ok(true) => return Ok(()),
            Err(e) => return fail(e, child),
            Ok(false) if Instant::now() >= deadline => {
                return fail(format!("not ready within {READY_TIMEOUT:?}"), child)
            }
            Ok(false) => std::thread::sleep(POLL),
        }
    }
}

/// SIGCONT and SIGTERM, up to [`STOP_TIMEOUT`], then SIGKILL; reaped.
fn stop_child(child: &mut Child, name: &str) {
    let pid = child.id();
    signal(pid, libc::SIGCONT);
    signal(pid, libc::SIGTERM);
    let exited = wait_until(STOP_TIMEOUT, Duration::from_millis(5), || {
        !matches!(child.try_wait(), Ok(None))
    });
    if !exited {
        eprintln!("{name} (pid {pid}) still running {STOP_TIMEOUT:?} after SIGTERM; SIGKILL");
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// `pid` (if running) and every live process whose command line or title
/// names `conf`.
fn own_processes(pid: u32, conf: &Path) -> Vec<(u32, String)> {
    let mut found = processes_matching(&conf.display().to_string());
    if pid != 0 && !is_zombie(pid) && !found.iter().any(|(p, _)| *p == pid) {
        if let Some(cmdline) = cmdline_of(pid) {
            found.insert(0, (pid, cmdline));
        }
    }
    found
}
