//! A private PostgreSQL 15 server in a temporary directory, and streaming
//! replicas of it, for the `postgres` check.
//!
//! [`Postgres::start`] runs `initdb` (superuser `postgres`, UTF8, the C
//! locale, no fsync), writes the fixture's settings and the test's
//! `pg_hba.conf` lines, starts `postgres -D DIR` itself (no `pg_ctl` fork: the
//! guard holds the postmaster's pid) on a unix socket in the fixture's
//! directory and on a free port of 127.0.0.1, and waits (bounded) until
//! `pg_isready` says it accepts connections. [`Postgres::start_replica`]
//! takes a base backup of a running server (`pg_basebackup -R`, over the
//! primary's socket) and starts it the same way on its own port and socket,
//! a hot standby or not ([`Options::hot_standby`]), and waits until its WAL
//! receiver streams.
//!
//! PostgreSQL refuses to run as root, so every server program (`initdb`,
//! `postgres`, `pg_basebackup`, `pg_ctl`) and the fixture's own `psql` run as
//! the OS user `postgres` (which Debian's package creates), with a cleared
//! environment; the fixture's directory is chowned to it. The binaries are
//! Debian's, in [`BIN_DIR`] (not on `PATH`).
//!
//! Layout of [`Postgres::dir`]: `data/` (the data directory, its
//! `fixture.conf` included from `postgresql.conf`), the socket
//! `.s.PGSQL.<port>`, the server's log `postgres.log` (its stderr:
//! `logging_collector = off`), `initdb.log` or `basebackup.log`.
//!
//! `pg_hba.conf` is the fixture's, first match wins:
//! `local all postgres trust` and the replication lines (`local replication
//! all trust`, `host replication all 127.0.0.1/32 trust`) come first, so the
//! fixture can always administer the server and stream from it; then
//! [`Options::hba`] in order; then `local all all` [`Options::auth_local`]
//! and `host all all 127.0.0.1/32` [`Options::auth_host`].
//!
//! Teardown: [`Postgres::stop`] (and drop) sends SIGCONT and SIGINT (fast
//! shutdown), waits (bounded), then SIGQUIT (immediate shutdown), then
//! SIGKILL, and reaps the postmaster; the directory goes with the guard. The
//! postmaster also gets `PR_SET_PDEATHSIG` = SIGKILL: it dies with the
//! *thread* that started it (its children follow when they see it gone).
//!
//! Every child of a server shows the fixture's unique `cluster_name` in its
//! title (`postgres: <cluster_name>: checkpointer`):
//! [`Postgres::processes`] lists them and the postmaster.
//!
//! A missing program or a missing `postgres` user fails (never skips) with
//! "... not found: run scripts/test, which installs it".

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::client::free_port;
use crate::procs::{
    cmdline_of, is_zombie, processes_matching, read_or_empty, run_to_file, run_with_stdin, signal,
    tail, wait_until,
};
use crate::tmp::TempDir;

/// A psql process kept logged in (see [`Postgres::session`]); killed
/// when dropped.
pub struct PsqlSession {
    child: Child,
    stdin: std::process::ChildStdin,
    lines: std::sync::mpsc::Receiver<String>,
}

impl PsqlSession {
    /// Runs `sql` and returns its rows, one line each; panics when psql
    /// fails or does not answer within the client timeout.
    pub fn run(&mut self, sql: &str) -> Vec<String> {
        const DONE: &str = "inetd-health-session-done";
        writeln!(self.stdin, "{sql}\nSELECT '{DONE}';")
            .unwrap_or_else(|e| panic!("writing {sql:?} to psql: {e}"));
        self.stdin.flush().unwrap();
        let mut rows = Vec::new();
        loop {
            match self.lines.recv_timeout(CLIENT_TIMEOUT) {
                Ok(line) if line == DONE => return rows,
                Ok(line) => rows.push(line),
                Err(e) => panic!("psql gave no answer to {sql:?} ({e}); rows so far {rows:?}"),
            }
        }
    }
}

impl Drop for PsqlSession {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Where Debian's `postgresql-15` and `postgresql-client-15` put the programs.
pub const BIN_DIR: &str = "/usr/lib/postgresql/15/bin";
/// The OS user the servers run as (created by the `postgresql-15` package).
pub const OS_USER: &str = "postgres";
/// The database superuser `initdb` creates.
pub const SUPERUSER: &str = "postgres";
/// The table [`Postgres::write_bytes`] fills.
pub const FILL_TABLE: &str = "inetd_health_fill";

/// Bound on `initdb`.
const INITDB_TIMEOUT: Duration = Duration::from_secs(60);
/// Bound on `pg_basebackup`.
const BASEBACKUP_TIMEOUT: Duration = Duration::from_secs(60);
/// Bound on the server accepting connections after it is started.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// Bound on a fast shutdown (SIGINT) before an immediate one (SIGQUIT).
const STOP_TIMEOUT: Duration = Duration::from_secs(20);
/// Bound on an immediate shutdown before SIGKILL.
const QUIT_TIMEOUT: Duration = Duration::from_secs(5);
/// Bound on one run of `psql`, `pg_isready` or `pg_ctl`.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(30);
/// Bound on a replica streaming, catching up, pausing, resuming, promoting.
const SYNC_TIMEOUT: Duration = Duration::from_secs(30);
/// How often bounded waits poll.
const POLL: Duration = Duration::from_millis(20);
/// Attempts with a new port, in case another process took the free port first.
const START_ATTEMPTS: usize = 3;

/// How a server is set up; [`Options::default`] is a primary with
/// `trust` on the socket and SCRAM on TCP.
#[derive(Clone, Debug)]
pub struct Options {
    /// `initdb --auth-local` and the last `local all all` line of `pg_hba.conf`.
    pub auth_local: String,
    /// `initdb --auth-host` and the last `host all all 127.0.0.1/32` line.
    pub auth_host: String,
    /// `pg_hba.conf` lines, after the fixture's own and before the catch-all
    /// ones (e.g. `local all monitor_peer peer map=monitor`).
    pub hba: Vec<String>,
    /// `pg_ident.conf` lines (e.g. `monitor root monitor_peer`).
    pub ident: Vec<String>,
    /// `hot_standby` (matters on a replica: off, it answers every connection
    /// with 57P03 "Hot standby mode is disabled").
    pub hot_standby: bool,
    /// `log_connections` and `log_disconnections`. On, every connection
    /// leaves a `connection received` line in the log, even one that never
    /// sends a startup packet: a test that counts lines a check must not
    /// cause wants them off.
    pub log_connections: bool,
    /// More `postgresql.conf` lines, after the fixture's (so they win).
    pub settings: Vec<String>,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            auth_local: "trust".into(),
            auth_host: "scram-sha-256".into(),
            hba: Vec::new(),
            ident: Vec::new(),
            hot_standby: true,
            log_connections: true,
            settings: Vec::new(),
        }
    }
}

impl Options {
    /// Adds a `pg_hba.conf` line.
    pub fn hba(mut self, line: &str) -> Options {
        self.hba.push(line.to_string());
        self
    }

    /// Adds a `pg_ident.conf` line.
    pub fn ident(mut self, line: &str) -> Options {
        self.ident.push(line.to_string());
        self
    }

    /// Adds a `postgresql.conf` line.
    pub fn setting(mut self, line: &str) -> Options {
        self.settings.push(line.to_string());
        self
    }

    /// Sets [`Options::hot_standby`].
    pub fn hot_standby(mut self, on: bool) -> Options {
        self.hot_standby = on;
        self
    }

    /// Sets [`Options::log_connections`].
    pub fn log_connections(mut self, on: bool) -> Options {
        self.log_connections = on;
        self
    }
}

/// How a role's password is stored (`password_encryption` when it is set).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encryption {
    /// `md5`.
    Md5,
    /// `scram-sha-256`.
    Scram,
}

impl Encryption {
    fn setting(self) -> &'static str {
        match self {
            Encryption::Md5 => "md5",
            Encryption::Scram => "scram-sha-256",
        }
    }
}

/// Where a client connects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Via {
    /// The unix socket in [`Postgres::socket_dir`].
    Socket,
    /// 127.0.0.1:[`Postgres::port`].
    Tcp,
}

/// A WAL position, as a byte count (`pg_lsn`'s `X/Y` is its two 32-bit halves).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Lsn(pub u64);

impl Lsn {
    /// Parses `pg_lsn`'s text form, `X/Y` in hex.
    pub fn parse(text: &str) -> Option<Lsn> {
        let (hi, lo) = text.trim().split_once('/')?;
        let hi = u64::from_str_radix(hi, 16).ok()?;
        let lo = u64::from_str_radix(lo, 16).ok()?;
        (hi <= u64::from(u32::MAX) && lo <= u64::from(u32::MAX)).then_some(Lsn(hi << 32 | lo))
    }
}

impl std::fmt::Display for Lsn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:X}/{:X}", self.0 >> 32, self.0 & 0xffff_ffff)
    }
}

/// What `pg_isready` said.
#[derive(Clone, Debug)]
pub struct Isready {
    /// Its exit code: 0 accepting, 1 rejecting (57P03), 2 no response, 3
    /// no attempt; `None` if it was killed.
    pub code: Option<i32>,
    /// Its stdout, e.g. `/tmp/...:5432 - rejecting connections`.
    pub output: String,
}

/// A running (or, after [`Postgres::stop`], stopped) private server.
pub struct Postgres {
    dir: TempDir,
    data: PathBuf,
    log: PathBuf,
    port: u16,
    cluster_name: String,
    opts: Options,
    child: Option<Child>,
    pid: u32,
}

impl Postgres {
    /// Initialises a data directory and starts a primary on it (see the
    /// module docs).
    pub fn start(opts: Options) -> Postgres {
        let mut server = Postgres::prepare(opts);
        let initdb_log = server.dir.join("initdb.log");
        let mut initdb = server.command(&program("initdb"));
        initdb
            .arg("-D")
            .arg(&server.data)
            .args(["-U", SUPERUSER, "-E", "UTF8", "--no-locale", "--no-sync"])
            .arg(format!("--auth-local={}", server.opts.auth_local))
            .arg(format!("--auth-host={}", server.opts.auth_host));
        let status = run_to_file(&mut initdb, &initdb_log, INITDB_TIMEOUT);
        if status != Some(0) {
            panic!(
                "initdb failed ({status:?}) in {} (its parents must be searchable by the \
                 user {OS_USER}):\n{}",
                server.dir.path().display(),
                read_or_empty(&initdb_log)
            );
        }
        append(
            &server.data.join("postgresql.conf"),
            "\n# inetd-health-testkit\ninclude 'fixture.conf'\n",
        );
        server.write_auth_files();
        server.launch_with_retries();
        server
    }

    /// A streaming replica of `primary` (see the module docs): a base
    /// backup with `pg_basebackup -R`, started with `opts` (its own
    /// `pg_hba.conf` and settings) on its own port and socket. Returns once
    /// it accepts connections (a hot standby) or rejects them with "Hot
    /// standby mode is disabled", and its WAL receiver streams.
    pub fn start_replica(primary: &Postgres, opts: Options) -> Postgres {
        let mut server = Postgres::prepare(opts);
        let log = server.dir.join("basebackup.log");
        let mut backup = server.command(&program("pg_basebackup"));
        backup
            .arg("-D")
            .arg(&server.data)
            .arg("-h")
            .arg(primary.socket_dir())
            .arg("-p")
            .arg(primary.port.to_string())
            .args([
                "-U",
                SUPERUSER,
                "-R",
                "-X",
                "stream",
                "--checkpoint=fast",
                "--no-sync",
            ]);
        let status = run_to_file(&mut backup, &log, BASEBACKUP_TIMEOUT);
        if status != Some(0) {
            panic!(
                "pg_basebackup of the primary on port {} failed ({status:?}):\n{}",
                primary.port,
                read_or_empty(&log)
            );
        }
        server.write_auth_files();
        server.launch_with_retries();
        server.wait_streaming();
        server
    }

    /// The fixture's directory, chowned to [`OS_USER`], the data directory
    /// not yet created.
    fn prepare(opts: Options) -> Postgres {
        let _ = program("postgres");
        let (uid, gid) = os_user_ids();
        // Short: the socket path inside must stay under ~100 bytes.
        let dir = TempDir::new("pg");
        std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid))
            .unwrap_or_else(|e| panic!("chown {} to {OS_USER}: {e}", dir.path().display()));
        // Other users (a check run as `nobody`) reach the socket.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
            .unwrap_or_else(|e| panic!("chmod {}: {e}", dir.path().display()));
        let cluster_name = dir
            .path()
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("inetd-health-pg")
            .to_string();
        Postgres {
            data: dir.join("data"),
            log: dir.join("postgres.log"),
            port: 0,
            cluster_name,
            opts,
            child: None,
            pid: 0,
            dir,
        }
    }

    /// The server's port on 127.0.0.1 (and its socket's name, `.s.PGSQL.<port>`).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The directory of its unix socket (libpq's `host` for it).
    pub fn socket_dir(&self) -> &Path {
        self.dir.path()
    }

    /// The socket itself, `<socket_dir>/.s.PGSQL.<port>`.
    pub fn socket_path(&self) -> PathBuf {
        self.dir.join(&format!(".s.PGSQL.{}", self.port))
    }

    /// The fixture's temporary directory (passfiles may go here; it is
    /// owned by [`OS_USER`], mode 0755).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data
    }

    /// The server's log (its stderr).
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// `pg_hba.conf`.
    pub fn hba_path(&self) -> PathBuf {
        self.data.join("pg_hba.conf")
    }

    /// The `cluster_name` every child of this server shows in its title
    /// (the fixture directory's name).
    pub fn cluster_name(&self) -> &str {
        &self.cluster_name
    }

    /// The postmaster's pid (0 once stopped).
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The options it was started with.
    pub fn options(&self) -> &Options {
        &self.opts
    }

    /// The log's text.
    pub fn log_text(&self) -> String {
        read_or_empty(&self.log)
    }

    /// How many lines the log has.
    pub fn log_lines(&self) -> usize {
        self.log_text().lines().count()
    }

    /// How many lines of the log contain `pattern`.
    pub fn log_lines_matching(&self, pattern: &str) -> usize {
        self.log_text()
            .lines()
            .filter(|line| line.contains(pattern))
            .count()
    }

    /// Live processes of this server, with their command lines: the
    /// postmaster (while the guard holds it) and every process titled
    /// `postgres: <cluster_name>: ...` (its children, orphans included).
    pub fn processes(&self) -> Vec<(u32, String)> {
        let mut found = processes_matching(&format!("postgres: {}: ", self.cluster_name));
        if self.pid != 0 && !is_zombie(self.pid) {
            if let Some(cmdline) = cmdline_of(self.pid) {
                found.insert(0, (self.pid, cmdline));
            }
        }
        found
    }

    /// Runs `sql` (statements on psql's stdin) as the superuser over the
    /// socket, as the OS user [`OS_USER`]; returns the rows (`-A -t`: one
    /// line each, columns `|`-separated, no command tags), the trailing
    /// newline removed. Panics with psql's stderr on failure.
    pub fn psql(&self, sql: &str) -> String {
        self.try_psql(sql)
            .unwrap_or_else(|e| panic!("running SQL {sql:?} on port {}: {e}", self.port))
    }

    /// Like [`Postgres::psql`], returning the failure (psql's stderr) instead
    /// of panicking.
    pub fn try_psql(&self, sql: &str) -> Result<String, String> {
        let mut cmd = self.command(&program("psql"));
        cmd.arg("-h")
            .arg(self.socket_dir())
            .args(["-U", SUPERUSER, "-d", "postgres"]);
        self.run_psql(cmd, sql)
    }

    /// A psql session as the superuser over the socket, logged in before
    /// any SQL is sent: for a statement that must land at a moment, with
    /// no process start-up and login in between.
    pub fn session(&self) -> PsqlSession {
        let mut cmd = self.command(&program("psql"));
        cmd.arg("-h")
            .arg(self.socket_dir())
            .args(["-U", SUPERUSER, "-d", "postgres", "-p"])
            .arg(self.port.to_string())
            .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"])
            .env("PGCONNECT_TIMEOUT", "5")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("starting psql: {e}"));
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead as _;
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut session = PsqlSession {
            child,
            stdin,
            lines,
        };
        // Logged in once it answers.
        session.run("SELECT 1;");
        session
    }

    /// Runs `sql` as `user` (password, if any, in `PGPASSWORD`; never
    /// prompted) over the socket or TCP, as the OS user of the test
    /// process (what `peer` sees); returns the rows as [`Postgres::psql`]
    /// does, or psql's stderr.
    pub fn try_login(
        &self,
        via: Via,
        user: &str,
        password: Option<&str>,
        sql: &str,
    ) -> Result<String, String> {
        let mut cmd = Command::new(program("psql"));
        clean_env(&mut cmd, self.dir.path());
        cmd.arg("-h")
            .arg(self.host(via))
            .args(["-U", user, "-d", "postgres", "-w"]);
        if let Some(password) = password {
            cmd.env("PGPASSWORD", password);
        }
        self.run_psql(cmd, sql)
    }

    fn run_psql(&self, mut cmd: Command, sql: &str) -> Result<String, String> {
        cmd.arg("-p")
            .arg(self.port.to_string())
            .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"])
            .env("PGCONNECT_TIMEOUT", "5");
        let (code, stdout, stderr) = run_with_stdin(&mut cmd, sql, CLIENT_TIMEOUT)?;
        if code == Some(0) {
            Ok(stdout.trim_end_matches('\n').to_string())
        } else {
            Err(format!("psql exited with {code:?}: {}", stderr.trim()))
        }
    }

    /// `pg_isready` (as the test's OS user) against the socket or TCP.
    pub fn isready(&self, via: Via) -> Isready {
        pg_isready(&self.host(via), self.port)
    }

    fn host(&self, via: Via) -> String {
        match via {
            Via::Socket => self.socket_dir().display().to_string(),
            Via::Tcp => "127.0.0.1".to_string(),
        }
    }

    /// `CREATE ROLE name LOGIN [PASSWORD 'password']`, the password stored
    /// as `encryption` says (ignored without one). No privileges.
    pub fn create_role(&self, name: &str, password: Option<&str>, encryption: Encryption) {
        let password = password
            .map(|p| format!(" PASSWORD {}", quote_literal(p)))
            .unwrap_or_default();
        self.psql(&format!(
            "SET password_encryption = '{}';\nCREATE ROLE {} LOGIN{password};",
            encryption.setting(),
            quote_ident(name)
        ));
    }

    /// `ALTER ROLE name PASSWORD 'password'`, stored as `encryption` says
    /// (SCRAM with a new salt each time).
    pub fn set_password(&self, name: &str, password: &str, encryption: Encryption) {
        self.psql(&format!(
            "SET password_encryption = '{}';\nALTER ROLE {} PASSWORD {};",
            encryption.setting(),
            quote_ident(name),
            quote_literal(password)
        ));
    }

    /// Reloads the configuration (`pg_reload_conf()`) and waits (bounded)
    /// until the postmaster has logged that it reloaded.
    pub fn reload(&self) {
        const RELOADED: &str = "received SIGHUP, reloading configuration files";
        let before = self.log_lines_matching(RELOADED);
        self.psql("SELECT pg_reload_conf();");
        let done = wait_until(SYNC_TIMEOUT, POLL, || {
            self.log_lines_matching(RELOADED) > before
        });
        assert!(done, "no reload logged within {SYNC_TIMEOUT:?}");
    }

    /// `pg_is_in_recovery()`.
    pub fn is_in_recovery(&self) -> bool {
        match self.psql("SELECT pg_is_in_recovery();").as_str() {
            "t" => true,
            "f" => false,
            other => panic!("pg_is_in_recovery() gave {other:?}"),
        }
    }

    /// `pg_stat_wal_receiver`'s status (`streaming`, `waiting`, ...), empty
    /// when there is no WAL receiver.
    pub fn wal_receiver_status(&self) -> String {
        self.psql("SELECT status FROM pg_stat_wal_receiver;")
    }

    /// Waits (bounded) until [`Postgres::wal_receiver_status`] is `status`;
    /// panics with the log's tail otherwise.
    pub fn wait_wal_receiver(&self, status: &str) {
        let mut last = String::new();
        let done = wait_until(SYNC_TIMEOUT, POLL, || {
            last = self.wal_receiver_status();
            last == status
        });
        assert!(
            done,
            "WAL receiver on port {} still {last:?}, not {status:?}, after {SYNC_TIMEOUT:?}\n{}",
            self.port,
            tail(&self.log_text(), 30)
        );
    }

    /// `pg_current_wal_lsn()` (a primary's).
    pub fn current_wal_lsn(&self) -> Lsn {
        self.lsn("pg_current_wal_lsn()")
            .expect("pg_current_wal_lsn() is never NULL")
    }

    /// `pg_last_wal_receive_lsn()` (a standby's; `None` on a primary).
    pub fn receive_lsn(&self) -> Option<Lsn> {
        self.lsn("pg_last_wal_receive_lsn()")
    }

    /// `pg_last_wal_replay_lsn()` (a standby's; `None` on a primary).
    pub fn replay_lsn(&self) -> Option<Lsn> {
        self.lsn("pg_last_wal_replay_lsn()")
    }

    fn lsn(&self, function: &str) -> Option<Lsn> {
        let text = self.psql(&format!("SELECT {function};"));
        if text.is_empty() {
            return None;
        }
        Some(Lsn::parse(&text).unwrap_or_else(|| panic!("{function} gave {text:?}")))
    }

    /// Writes at least `n` bytes of WAL on a primary (rows of ~1 KB,
    /// incompressible, into [`FILL_TABLE`]); returns how many it wrote
    /// (a little more than `n`). 20 MB take about 0.1 s.
    pub fn write_bytes(&self, n: u64) -> u64 {
        self.psql(&format!(
            "CREATE TABLE IF NOT EXISTS {FILL_TABLE} (b text);"
        ));
        let start = self.current_wal_lsn();
        loop {
            let written = self.current_wal_lsn().0.saturating_sub(start.0);
            if written >= n {
                return written;
            }
            // Each row is 960 bytes of text and ~1040 bytes of WAL.
            let rows = ((n - written) / 1000 + 1).min(1_000_000);
            self.psql(&format!(
                "INSERT INTO {FILL_TABLE} SELECT repeat(md5(random()::text), 30) \
                 FROM generate_series(1, {rows});"
            ));
        }
    }

    /// Waits (bounded) until this standby has replayed up to `lsn`.
    pub fn wait_replayed(&self, lsn: Lsn) {
        let mut last = None;
        let done = wait_until(SYNC_TIMEOUT, POLL, || {
            last = self.replay_lsn();
            last >= Some(lsn)
        });
        assert!(
            done,
            "standby on port {} replayed up to {last:?}, not {lsn}, after {SYNC_TIMEOUT:?}\n{}",
            self.port,
            tail(&self.log_text(), 30)
        );
    }

    /// Waits (bounded) until this standby has received up to `lsn` (replayed or not).
    pub fn wait_received(&self, lsn: Lsn) {
        let mut last = None;
        let done = wait_until(SYNC_TIMEOUT, POLL, || {
            last = self.receive_lsn();
            last >= Some(lsn)
        });
        assert!(
            done,
            "standby on port {} received up to {last:?}, not {lsn}, after {SYNC_TIMEOUT:?}\n{}",
            self.port,
            tail(&self.log_text(), 30)
        );
    }

    /// Waits (bounded) until this standby has replayed everything `primary`
    /// has written so far.
    pub fn catch_up(&self, primary: &Postgres) {
        self.wait_replayed(primary.current_wal_lsn());
    }

    /// `pg_get_wal_replay_pause_state()`: `not paused`, `pause requested`
    /// or `paused`.
    pub fn replay_pause_state(&self) -> String {
        self.psql("SELECT pg_get_wal_replay_pause_state();")
    }

    /// `pg_wal_replay_pause()`, then waits (bounded) until replay is
    /// `paused`. The WAL receiver keeps receiving.
    pub fn pause_replay(&self) {
        self.psql("SELECT pg_wal_replay_pause();");
        self.wait_pause_state("paused");
    }

    /// `pg_wal_replay_resume()`, then waits (bounded) until replay is `not paused`.
    pub fn resume_replay(&self) {
        self.psql("SELECT pg_wal_replay_resume();");
        self.wait_pause_state("not paused");
    }

    fn wait_pause_state(&self, want: &str) {
        let mut last = String::new();
        let done = wait_until(SYNC_TIMEOUT, POLL, || {
            last = self.replay_pause_state();
            last == want
        });
        assert!(
            done,
            "replay on port {} still {last:?}, not {want:?}, after {SYNC_TIMEOUT:?}",
            self.port
        );
    }

    /// Promotes this standby (`pg_ctl promote -w`, as `pg_ctl` users do;
    /// works with `hot_standby = off` too) and waits (bounded) until it
    /// accepts connections and is out of recovery.
    pub fn promote(&self) {
        let mut cmd = self.command(&program("pg_ctl"));
        cmd.arg("promote")
            .arg("-D")
            .arg(&self.data)
            .args(["-w", "-t", "30"]);
        match run_with_stdin(&mut cmd, "", CLIENT_TIMEOUT) {
            Ok((Some(0), _, _)) => {}
            Ok((code, out, err)) => panic!(
                "pg_ctl promote on port {} exited with {code:?}: {out}{err}\n{}",
                self.port,
                tail(&self.log_text(), 30)
            ),
            Err(e) => panic!("pg_ctl promote: {e}"),
        }
        let mut last = Ok(String::new());
        let done = wait_until(SYNC_TIMEOUT, POLL, || {
            last = self.try_psql("SELECT pg_is_in_recovery();");
            last.as_deref() == Ok("f")
        });
        assert!(
            done,
            "port {} not out of recovery {SYNC_TIMEOUT:?} after promotion ({last:?})\n{}",
            self.port,
            tail(&self.log_text(), 30)
        );
    }

    /// Sends SIGSTOP to the postmaster: new connections are queued by the
    /// kernel, never answered (running backends go on).
    pub fn sigstop(&self) {
        signal(self.pid, libc::SIGSTOP);
    }

    /// Sends SIGCONT to the postmaster.
    pub fn sigcont(&self) {
        signal(self.pid, libc::SIGCONT);
    }

    /// Stops the server: SIGCONT and SIGINT (fast shutdown), a bounded
    /// wait, then SIGQUIT (immediate shutdown), then SIGKILL; reaps the
    /// postmaster. After a fast or immediate shutdown its children are
    /// gone too (the postmaster waits for them) and so is the socket.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let pid = child.id();
            signal(pid, libc::SIGCONT);
            signal(pid, libc::SIGINT);
            if !wait_exit(&mut child, STOP_TIMEOUT) {
                eprintln!(
                    "postgres (pid {pid}) still running {STOP_TIMEOUT:?} after SIGINT; SIGQUIT"
                );
                signal(pid, libc::SIGQUIT);
                if !wait_exit(&mut child, QUIT_TIMEOUT) {
                    eprintln!("postgres (pid {pid}) still running after SIGQUIT; SIGKILL");
                    let _ = child.kill();
                    let _ = child.wait();
                }
            }
        }
        self.pid = 0;
    }

    /// Starts the server again on the same data directory, socket and port
    /// (a promoted replica as a primary), and waits (bounded) until it
    /// accepts connections (or, a standby with `hot_standby = off`, rejects
    /// them with that reason).
    pub fn start_again(&mut self) {
        self.stop();
        self.launch()
            .unwrap_or_else(|e| panic!("restarting postgres: {e}"));
    }

    /// Runs `program` as [`OS_USER`] in the fixture's directory, with a
    /// clean environment.
    fn command(&self, program: &Path) -> Command {
        let (uid, gid) = os_user_ids();
        let mut cmd = Command::new(program);
        clean_env(&mut cmd, self.dir.path());
        cmd.uid(uid).gid(gid);
        cmd
    }

    /// `pg_hba.conf` (see the module docs) and `pg_ident.conf`.
    fn write_auth_files(&self) {
        let mut hba = String::from(
            "# inetd-health-testkit: the fixture's own lines\n\
             local all postgres trust\n\
             local replication all trust\n\
             host replication all 127.0.0.1/32 trust\n\
             # the test's\n",
        );
        for line in &self.opts.hba {
            hba.push_str(line);
            hba.push('\n');
        }
        hba.push_str(&format!(
            "# the catch-all ones\nlocal all all {}\nhost all all 127.0.0.1/32 {}\n",
            self.opts.auth_local, self.opts.auth_host
        ));
        write(&self.hba_path(), &hba);
        let mut ident = String::from("# inetd-health-testkit\n");
        for line in &self.opts.ident {
            ident.push_str(line);
            ident.push('\n');
        }
        write(&self.data.join("pg_ident.conf"), &ident);
    }

    /// `data/fixture.conf`, included from `postgresql.conf` (a replica's
    /// copy of its primary's is overwritten).
    fn write_settings(&self) {
        let on = |b: bool| if b { "on" } else { "off" };
        let mut conf = format!(
            "# inetd-health-testkit: rewritten on every start\n\
             cluster_name = '{name}'\n\
             listen_addresses = '127.0.0.1'\n\
             port = {port}\n\
             unix_socket_directories = '{dir}'\n\
             unix_socket_permissions = 0777\n\
             log_destination = 'stderr'\n\
             logging_collector = off\n\
             log_connections = {log}\n\
             log_disconnections = {log}\n\
             log_checkpoints = off\n\
             fsync = off\n\
             shared_buffers = '32MB'\n\
             wal_level = replica\n\
             max_wal_senders = 10\n\
             wal_keep_size = '256MB'\n\
             wal_retrieve_retry_interval = '500ms'\n\
             hot_standby = {hot}\n",
            name = self.cluster_name,
            port = self.port,
            dir = self.dir.path().display(),
            log = on(self.opts.log_connections),
            hot = on(self.opts.hot_standby),
        );
        for line in &self.opts.settings {
            conf.push_str(line);
            conf.push('\n');
        }
        write(&self.data.join("fixture.conf"), &conf);
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
        panic!("starting postgres: {}", errors.join("\n"));
    }

    /// Spawns `postgres -D data` and waits until it is ready: accepting
    /// connections, or (a standby with `hot_standby = off`) rejecting them
    /// with "Hot standby mode is disabled".
    fn launch(&mut self) -> Result<(), String> {
        self.write_settings();
        let log_start = std::fs::metadata(&self.log).map(|m| m.len()).unwrap_or(0);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .map_err(|e| format!("opening {}: {e}", self.log.display()))?;
        let err = log.try_clone().map_err(|e| e.to_string())?;
        let mut cmd = self.command(&program("postgres"));
        cmd.arg("-D")
            .arg(&self.data)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err);
        // SAFETY: prctl is async-signal-safe and touches no memory of ours.
        // (It runs after the uid change, which would clear it.)
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong);
                Ok(())
            });
        }
        let mut child = cmd.spawn().map_err(|e| format!("spawning postgres: {e}"))?;
        let standby_off = self.data.join("standby.signal").exists() && !self.opts.hot_standby;
        let since_launch = || {
            let text = self.log_text();
            text.get(log_start as usize..).unwrap_or("").to_string()
        };
        let deadline = Instant::now() + READY_TIMEOUT;
        let mut last = String::new();
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!(
                    "postgres exited ({status}) before it was ready\n{}",
                    tail(&since_launch(), 30)
                ));
            }
            if self.socket_path().exists() {
                let ready = if standby_off {
                    match self.try_psql("SELECT 1;") {
                        Err(e) if e.contains("Hot standby mode is disabled") => true,
                        Err(e) => {
                            last = e;
                            false
                        }
                        Ok(out) => {
                            return Err(format!("hot_standby = off, yet it answered {out:?}"))
                        }
                    }
                } else {
                    let isready = self.isready(Via::Socket);
                    last = isready.output;
                    isready.code == Some(0)
                };
                if ready {
                    break;
                }
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "not ready within {READY_TIMEOUT:?} ({last})\n{}",
                    tail(&since_launch(), 30)
                ));
            }
            std::thread::sleep(POLL);
        }
        self.pid = child.id();
        self.child = Some(child);
        Ok(())
    }

    /// Waits (bounded) until the WAL receiver streams: from
    /// `pg_stat_wal_receiver` on a hot standby, from the log otherwise.
    fn wait_streaming(&self) {
        if self.opts.hot_standby {
            self.wait_wal_receiver("streaming");
        } else {
            let done = wait_until(SYNC_TIMEOUT, POLL, || {
                self.log_lines_matching("started streaming WAL from primary") > 0
            });
            assert!(
                done,
                "standby on port {} not streaming after {SYNC_TIMEOUT:?}\n{}",
                self.port,
                tail(&self.log_text(), 30)
            );
        }
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "--- postgres (socket dir {}, port {}) log, last lines:\n{}",
                self.dir.path().display(),
                self.port,
                tail(&self.log_text(), 40)
            );
        }
        // The directory goes with `self.dir`, once the server is stopped.
        self.stop();
    }
}

/// `pg_isready -h host -p port` (as the test's OS user, bounded).
pub fn pg_isready(host: &str, port: u16) -> Isready {
    let mut cmd = Command::new(program("pg_isready"));
    clean_env(&mut cmd, Path::new("/"));
    cmd.args(["-h", host, "-p", &port.to_string(), "-t", "5"]);
    match run_with_stdin(&mut cmd, "", CLIENT_TIMEOUT) {
        Ok((code, stdout, stderr)) => Isready {
            code,
            output: format!("{}{}", stdout.trim(), stderr.trim()),
        },
        Err(e) => Isready {
            code: None,
            output: e,
        },
    }
}

/// `BIN_DIR/name`; fails (never skips) when it is missing.
pub fn program(name: &str) -> PathBuf {
    let path = Path::new(BIN_DIR).join(name);
    let ok = std::fs::metadata(&path)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false);
    assert!(
        ok,
        "{} not found: run scripts/test, which installs it (postgresql-15)",
        path.display()
    );
    path
}

/// The uid and gid of [`OS_USER`], from `/etc/passwd`.
pub fn os_user_ids() -> (u32, u32) {
    let passwd = read_or_empty(Path::new("/etc/passwd"));
    passwd
        .lines()
        .find_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            if fields.len() < 4 || fields[0] != OS_USER {
                return None;
            }
            Some((fields[2].parse().ok()?, fields[3].parse().ok()?))
        })
        .unwrap_or_else(|| {
            panic!("user {OS_USER} not found: run scripts/test, which installs it (postgresql-15)")
        })
}

/// `"name"`, quoted as an SQL identifier.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `'text'`, quoted as an SQL string literal (standard_conforming_strings).
pub fn quote_literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// Nothing from the test's environment (`PG*` variables, locale) reaches
/// the programs: English messages, no service file, no passfile.
fn clean_env(cmd: &mut Command, home: &Path) {
    cmd.env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("LC_ALL", "C")
        .env("HOME", home)
        .current_dir(home);
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
}

fn append(path: &Path, text: &str) {
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .unwrap_or_else(|e| panic!("opening {}: {e}", path.display()));
    file.write_all(text.as_bytes())
        .unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
}

/// Waits up to `timeout` for `child` to exit (reaping it); whether it did.
fn wait_exit(child: &mut Child, timeout: Duration) -> bool {
    wait_until(timeout, Duration::from_millis(5), || {
        !matches!(child.try_wait(), Ok(None))
    })
}
