//! A private MariaDB server in a temporary directory, for the `mariadb` check.
//!
//! [`Mariadb::start`] initialises a data directory with
//! `mariadb-install-db`, starts `mariadbd` on a unix socket in that directory
//! and on a free port of 127.0.0.1, waits (bounded) until `SELECT 1` answers,
//! and creates the user `monitor` (`'monitor'@'localhost'` and
//! `'monitor'@'127.0.0.1'`, `mysql_native_password`, a random password,
//! no privileges beyond USAGE). `root` logs in over the socket with
//! `unix_socket` authentication (the tests run as OS root).
//!
//! [`Mariadb::start_with`] does the same with extra `mariadbd` arguments
//! (Galera, replication: see [`crate::galera`] and [`crate::replication`])
//! and waits, after `SELECT 1`, for a readiness condition of the caller's
//! (e.g. a Galera node Synced) before creating the users.
//!
//! Teardown: dropping a [`Mariadb`] sends SIGCONT and SIGTERM, waits
//! (bounded), then SIGKILL, and removes the directory. [`Mariadb::shared`] is
//! one server for a whole test process, stopped the same way by an `atexit`
//! handler ([`Mariadb::shared_in`] and [`stop_at_exit`] do the same for other
//! shared servers). Every server also gets `PR_SET_PDEATHSIG` = SIGKILL, so a test
//! process killed outright does not leave a `mariadbd` behind: a server dies
//! with the *thread* that started it (the shared one is started from a thread
//! that lives as long as the process).
//!
//! Statements go to the `mariadb` client on its stdin, never on its argv, so
//! the monitor password is on no process's command line.
//!
//! A missing `mariadbd`, `mariadb-install-db` or `mariadb` fails (never skips)
//! with "... not found: run scripts/test, which installs it".

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Mutex, Once, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::client::free_port;
use crate::procs::{read_or_empty, require_program, run_to_file, run_with_stdin, signal, tail};
use crate::tmp::TempDir;

/// Bound on `mariadb-install-db`.
const INSTALL_TIMEOUT: Duration = Duration::from_secs(60);
/// Bound on `mariadbd` answering `SELECT 1` after it is started.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// Bound on `mariadbd` exiting after SIGTERM before it gets SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(20);
/// Bound on one run of the `mariadb` client.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(15);
/// Attempts with a new port, in case another process took the free port first.
const START_ATTEMPTS: usize = 3;
/// The monitoring user [`Mariadb::start`] creates.
pub const MONITOR_USER: &str = "monitor";

/// Extra `mariadbd` arguments for [`Mariadb::start_with`], given the
/// fixture's directory. Called once per start attempt (so it may pick free
/// ports); the arguments are kept for [`Mariadb::start_again`].
pub type ExtraArgs<'a> = &'a dyn Fn(&Path) -> Vec<String>;

/// A readiness condition for [`Mariadb::start_with`], polled after `SELECT 1`
/// answers: `Ok(())` when ready, else `Err(what is still missing)`.
pub type Ready = fn(&Mariadb) -> Result<(), String>;

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A running (or, after [`Mariadb::stop`], stopped) private MariaDB server.
pub struct Mariadb {
    dir: TempDir,
    datadir: PathBuf,
    socket: PathBuf,
    error_log: PathBuf,
    pid_file: PathBuf,
    port: u16,
    monitor_password: String,
    mariadbd: PathBuf,
    client: PathBuf,
    child: Mutex<Option<Child>>,
    pid: AtomicU32,
    extra_args: Vec<String>,
    ready: Ready,
}

impl Mariadb {
    /// Initialises a data directory and starts a server on it (see the module docs).
    pub fn start() -> Mariadb {
        Mariadb::start_with(&|_| Vec::new(), |_| Ok(()))
    }

    /// Like [`Mariadb::start`], with `extra_args` after the fixture's own
    /// `mariadbd` arguments (a later option wins, e.g. `--log-bin=...`
    /// after `--skip-log-bin`), and waiting (bounded) until `ready` holds
    /// before the monitor user is created.
    pub fn start_with(extra_args: ExtraArgs<'_>, ready: Ready) -> Mariadb {
        let mariadbd = require_program("mariadbd");
        let install_db = require_program("mariadb-install-db");
        let client = require_program("mariadb");
        // Short: the socket path inside must stay under ~100 bytes.
        let dir = TempDir::new("mariadb");
        let datadir = dir.join("data");
        // Each server's own tmpdir: bootstraps running at the same time with
        // the default /tmp crash (SIGSEGV in ha_maria::drop_table freeing an
        // Aria temporary table) about one time in five on 10.11.
        let tmpdir = dir.join("tmp");
        std::fs::create_dir_all(&tmpdir)
            .unwrap_or_else(|e| panic!("creating {}: {e}", tmpdir.display()));
        let install_log = dir.join("install-db.log");
        let mut install = Command::new(&install_db);
        install
            .arg("--no-defaults")
            .arg(format!("--datadir={}", datadir.display()))
            .arg(format!("--tmpdir={}", tmpdir.display()))
            .arg("--user=root")
            .arg("--auth-root-authentication-method=socket")
            .arg("--skip-test-db")
            .arg("--innodb-log-file-size=16M")
            .arg("--innodb-buffer-pool-size=16M");
        let status = run_to_file(&mut install, &install_log, INSTALL_TIMEOUT);
        if status != Some(0) {
            let log = read_or_empty(&install_log);
            panic!("{} failed ({status:?}):\n{log}", install_db.display());
        }
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let server = Mariadb {
            socket: dir.join("mysqld.sock"),
            error_log: dir.join("error.log"),
            pid_file: dir.join("mariadbd.pid"),
            datadir,
            dir,
            port: 0,
            monitor_password: format!("monitor-pw-{}{nanos}", std::process::id()),
            mariadbd,
            client,
            child: Mutex::new(None),
            pid: AtomicU32::new(0),
            extra_args: Vec::new(),
            ready,
        };
        let mut server = server;
        let mut last_error = String::new();
        for attempt in 1..=START_ATTEMPTS {
            server.port = free_port();
            server.extra_args = extra_args(server.dir.path());
            match server.launch() {
                Ok(()) => {
                    last_error.clear();
                    break;
                }
                Err(e) => last_error = format!("attempt {attempt} on port {}: {e}", server.port),
            }
        }
        if !last_error.is_empty() {
            panic!("starting mariadbd: {last_error}");
        }
        let pw = &server.monitor_password;
        server.sql(&format!(
            "CREATE USER '{MONITOR_USER}'@'localhost' IDENTIFIED VIA mysql_native_password USING PASSWORD('{pw}');
             CREATE USER '{MONITOR_USER}'@'127.0.0.1' IDENTIFIED VIA mysql_native_password USING PASSWORD('{pw}');"
        ));
        server
    }

    /// One server shared by every caller in this process, started on first
    /// use. It cannot be stopped or paused (those take `&mut self`); it is
    /// stopped at process exit by an `atexit` handler (SIGTERM, bounded
    /// wait, SIGKILL) that also removes its directory.
    pub fn shared() -> &'static Mariadb {
        static SHARED: OnceLock<Mariadb> = OnceLock::new();
        Mariadb::shared_in(&SHARED, Mariadb::start)
    }

    /// The server in `cell`, started with `start` on first use, from a
    /// thread that lives as long as the process (so the server's
    /// parent-death signal fires only when the process goes), and stopped
    /// at process exit (see [`stop_at_exit`]).
    pub fn shared_in(cell: &'static OnceLock<Mariadb>, start: fn() -> Mariadb) -> &'static Mariadb {
        let server = cell.get_or_init(|| on_lasting_thread(start));
        stop_at_exit(server);
        server
    }

    /// The server's unix socket.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// The server's port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's error log.
    pub fn error_log(&self) -> &Path {
        &self.error_log
    }

    /// The server's pid (0 once stopped).
    pub fn pid(&self) -> u32 {
        self.pid.load(Ordering::SeqCst)
    }

    /// The fixture's temporary directory (option files may go here).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The `mariadbd` arguments [`Mariadb::start_with`] added.
    pub fn extra_args(&self) -> &[String] {
        &self.extra_args
    }

    /// The monitor user's password.
    pub fn monitor_password(&self) -> &str {
        &self.monitor_password
    }

    /// Runs `statements` as root over the socket (`mariadb -N -B`, the
    /// statements on stdin) and returns the output; panics on failure.
    pub fn sql(&self, statements: &str) -> String {
        self.try_sql(statements)
            .unwrap_or_else(|e| panic!("running SQL {statements:?}: {e}"))
    }

    /// Like [`Mariadb::sql`], returning the failure instead of panicking.
    pub fn try_sql(&self, statements: &str) -> Result<String, String> {
        self.client(statements, &["-N"])
    }

    /// The first row of the last result of `statements` (run as root, as
    /// [`Mariadb::sql`]) as `(column, value)` pairs, NULL as "NULL"; empty
    /// when there is no row. Panics on failure.
    pub fn sql_row(&self, statements: &str) -> Vec<(String, String)> {
        let out = self
            .client(statements, &[])
            .unwrap_or_else(|e| panic!("running SQL {statements:?}: {e}"));
        // Batch mode: a tab-separated header, then rows (tabs and newlines
        // inside values are escaped).
        let mut lines = out.lines();
        let (Some(header), Some(row)) = (lines.next(), lines.next()) else {
            return Vec::new();
        };
        header
            .split('\t')
            .zip(row.split('\t'))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// Runs the `mariadb` client as root over the socket in batch mode with
    /// `extra` options, `statements` on its stdin.
    fn client(&self, statements: &str, extra: &[&str]) -> Result<String, String> {
        let mut cmd = Command::new(&self.client);
        cmd.arg("--no-defaults")
            .arg("-S")
            .arg(&self.socket)
            .args(["-u", "root", "-B", "--connect-timeout=5"])
            .args(extra);
        let (status, stdout, stderr) = run_with_stdin(&mut cmd, statements, CLIENT_TIMEOUT)?;
        if status == Some(0) {
            Ok(stdout)
        } else {
            Err(format!(
                "{} exited with {status:?}: {}",
                self.client.display(),
                stderr.trim()
            ))
        }
    }

    /// `SELECT VERSION()`.
    pub fn version(&self) -> String {
        self.sql("SELECT VERSION();").trim().to_string()
    }

    /// A global status variable, or `None` if the server has no such variable.
    pub fn try_global_status(&self, name: &str) -> Option<u64> {
        let out = self.sql(&format!("SHOW GLOBAL STATUS LIKE '{name}';"));
        out.lines().find_map(|line| {
            let (n, v) = line.split_once('\t')?;
            n.eq_ignore_ascii_case(name)
                .then(|| v.trim().parse().ok())?
        })
    }

    /// A global status variable (e.g. `Aborted_connects`); panics if absent.
    pub fn global_status(&self, name: &str) -> u64 {
        self.try_global_status(name)
            .unwrap_or_else(|| panic!("no global status variable {name}"))
    }

    /// The error log's text.
    pub fn error_log_text(&self) -> String {
        read_or_empty(&self.error_log)
    }

    /// How many lines of the error log contain `pattern`.
    pub fn error_log_lines_matching(&self, pattern: &str) -> usize {
        self.error_log_text()
            .lines()
            .filter(|line| line.contains(pattern))
            .count()
    }

    /// How many lines the error log has.
    pub fn error_log_line_count(&self) -> usize {
        self.error_log_text().lines().count()
    }

    /// Writes a `[client]` option file in `dir` with `user` and, if given,
    /// `password`, with permission bits `mode`; returns its path.
    pub fn write_option_file(
        &self,
        dir: &Path,
        user: &str,
        password: Option<&str>,
        mode: u32,
    ) -> PathBuf {
        let mut body = format!("[client]\nuser={user}\n");
        if let Some(password) = password {
            body.push_str(&format!("password={password}\n"));
        }
        write_option_file_text(dir, &body, mode)
    }

    /// Stops the server: SIGCONT, SIGTERM, a bounded wait, then SIGKILL.
    /// The socket file is gone afterwards (mariadbd removes it on shutdown).
    pub fn stop(&mut self) {
        let child = self
            .child
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(mut child) = child {
            let pid = child.id();
            signal(pid, libc::SIGCONT);
            signal(pid, libc::SIGTERM);
            let deadline = Instant::now() + STOP_TIMEOUT;
            loop {
                match child.try_wait() {
                    Ok(Some(_)) => break,
                    Ok(None) if Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(10))
                    }
                    _ => {
                        eprintln!(
                            "mariadbd (pid {pid}) still running after {STOP_TIMEOUT:?}; SIGKILL"
                        );
                        let _ = child.kill();
                        let _ = child.wait();
                        break;
                    }
                }
            }
        }
        self.pid.store(0, Ordering::SeqCst);
    }

    /// Starts the server again on the same data directory, socket and port,
    /// and waits (bounded) until it answers.
    pub fn start_again(&mut self) {
        self.stop();
        self.launch()
            .unwrap_or_else(|e| panic!("restarting mariadbd: {e}"));
    }

    /// Sends SIGSTOP: the server hangs (connections are queued by the
    /// kernel, never greeted).
    pub fn sigstop(&self) {
        signal(self.pid(), libc::SIGSTOP);
    }

    /// Sends SIGCONT.
    pub fn sigcont(&self) {
        signal(self.pid(), libc::SIGCONT);
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new(&self.mariadbd);
        cmd.arg("--no-defaults")
            .arg(format!("--datadir={}", self.datadir.display()))
            .arg(format!("--socket={}", self.socket.display()))
            .arg(format!("--port={}", self.port))
            .arg("--bind-address=127.0.0.1")
            .arg("--user=root")
            .arg(format!("--log-error={}", self.error_log.display()))
            .arg(format!("--pid-file={}", self.pid_file.display()))
            .arg(format!("--tmpdir={}", self.dir.join("tmp").display()))
            .args([
                "--innodb-buffer-pool-size=16M",
                "--innodb-log-file-size=16M",
                "--skip-log-bin",
                "--performance-schema=OFF",
                "--max-connections=300",
            ])
            .args(&self.extra_args);
        cmd
    }

    /// Spawns mariadbd and waits until `SELECT 1` answers over the socket.
    fn launch(&self) -> Result<(), String> {
        let out = std::fs::File::create(self.dir.join("mariadbd.out"))
            .map_err(|e| format!("creating mariadbd.out: {e}"))?;
        let err = out.try_clone().map_err(|e| e.to_string())?;
        let mut cmd = self.command();
        cmd.stdin(Stdio::null()).stdout(out).stderr(err);
        // SAFETY: prctl is async-signal-safe and touches no memory of ours.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong);
                Ok(())
            });
        }
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("spawning {}: {e}", self.mariadbd.display()))?;
        let pid = child.id();
        let deadline = Instant::now() + READY_TIMEOUT;
        let mut last = String::new();
        let mut answered = false;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!(
                    "mariadbd exited ({status}) before answering\nerror log:\n{}\noutput:\n{}",
                    tail(&self.error_log_text(), 30),
                    read_or_empty(&self.dir.join("mariadbd.out"))
                ));
            }
            if answered {
                match (self.ready)(self) {
                    Ok(()) => break,
                    Err(e) => last = format!("answers SELECT 1, not ready: {e}"),
                }
            } else if self.socket.exists() {
                match self.try_sql("SELECT 1;") {
                    Ok(out) if out.trim() == "1" => answered = true,
                    Ok(out) => last = format!("SELECT 1 gave {out:?}"),
                    Err(e) => last = e,
                }
                if answered {
                    continue;
                }
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "mariadbd did not answer within {READY_TIMEOUT:?} ({last})\nerror log:\n{}",
                    tail(&self.error_log_text(), 30)
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        *self.child.lock().unwrap_or_else(|e| e.into_inner()) = Some(child);
        self.pid.store(pid, Ordering::SeqCst);
        Ok(())
    }

    /// Stops the server by pid without touching the `Child` (for `atexit`).
    fn shutdown_by_pid(&self) {
        let pid = self.pid.swap(0, Ordering::SeqCst);
        let Ok(pid) = libc::pid_t::try_from(pid) else {
            return;
        };
        if pid <= 0 {
            return;
        }
        // SAFETY: kill(2) and waitpid(2) have no memory-safety preconditions
        // beyond a valid status pointer.
        unsafe {
            libc::kill(pid, libc::SIGCONT);
            libc::kill(pid, libc::SIGTERM);
            let deadline = Instant::now() + STOP_TIMEOUT;
            let mut status = 0;
            while Instant::now() < deadline {
                if libc::waitpid(pid, &mut status, libc::WNOHANG) != 0 {
                    return;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            libc::kill(pid, libc::SIGKILL);
            libc::waitpid(pid, &mut status, 0);
        }
    }
}

impl Drop for Mariadb {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "--- mariadbd (socket {}, port {}) error log, last lines:\n{}",
                self.socket.display(),
                self.port,
                tail(&self.error_log_text(), 40)
            );
        }
        // The directory goes with `self.dir`, once the server is stopped.
        self.stop();
    }
}

/// Runs `start` on a new thread that then stays parked for the life of the
/// process, and returns its result (a panic in `start` is resumed here).
/// Servers started there get their parent-death signal only when the
/// process ends.
pub fn on_lasting_thread<T: Send + 'static>(start: fn() -> T) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("lasting-mariadbd".into())
        .spawn(move || {
            let result = std::panic::catch_unwind(start);
            let _ = tx.send(result);
            // Parked for the life of the process (wakes only spuriously).
            loop {
                std::thread::park();
            }
        })
        .expect("spawning a thread for shared servers");
    match rx.recv() {
        Ok(Ok(value)) => value,
        Ok(Err(panic)) => std::panic::resume_unwind(panic),
        Err(_) => panic!("the server thread ended without a result"),
    }
}

/// Servers [`stop_at_exit`] stops.
static AT_EXIT: Mutex<Vec<&'static Mariadb>> = Mutex::new(Vec::new());

/// Stops `server` at process exit (SIGTERM, bounded wait, SIGKILL) and
/// removes its directory, from an `atexit` handler. Registering a server
/// twice is harmless.
pub fn stop_at_exit(server: &'static Mariadb) {
    static REGISTER: Once = Once::new();
    extern "C" fn stop_all() {
        let servers = std::mem::take(&mut *AT_EXIT.lock().unwrap_or_else(|e| e.into_inner()));
        // All shut down at once, then each waited for.
        for server in &servers {
            signal(server.pid(), libc::SIGCONT);
            signal(server.pid(), libc::SIGTERM);
        }
        for server in servers {
            server.shutdown_by_pid();
            // A static is never dropped: its directory is removed here.
            let _ = std::fs::remove_dir_all(server.dir());
        }
    }
    let mut servers = AT_EXIT.lock().unwrap_or_else(|e| e.into_inner());
    if !servers.iter().any(|s| std::ptr::eq(*s, server)) {
        servers.push(server);
    }
    REGISTER.call_once(|| {
        // SAFETY: registers a plain extern "C" function with no arguments.
        unsafe {
            libc::atexit(stop_all);
        }
    });
}

/// Writes `text` to a new file in `dir` with permission bits `mode` (set
/// explicitly, whatever the umask); returns its path.
pub fn write_option_file_text(dir: &Path, text: &str, mode: u32) -> PathBuf {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let path = dir.join(format!("client-{n}.cnf"));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .unwrap_or_else(|e| panic!("creating {}: {e}", path.display()));
    file.write_all(text.as_bytes())
        .unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
    path
}
