//! A private xinetd serving one service on a free loopback port: the one
//! launcher the system tests and the bench share.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::client::{free_port, is_listening};
use crate::procs::{child_pids, children_of, require_program, wait_until, ProcessGuard, Usage};
use crate::tmp::TempDir;

/// How long xinetd gets to start listening, per attempt.
const START_TIMEOUT: Duration = Duration::from_secs(5);
/// Attempts with a new port, in case another process took the free port first.
const START_ATTEMPTS: usize = 3;

/// A running `xinetd -dontfork` with one `UNLISTED` TCP service on
/// 127.0.0.1:[`Xinetd::port`]. Stopped (SIGTERM, then SIGKILL) and its
/// directory removed on drop; if the test is failing, its log is printed first.
pub struct Xinetd {
    process: ProcessGuard,
    port: u16,
    server: PathBuf,
    args: Vec<String>,
    // Dropped after `process`: xinetd is stopped before its files go.
    dir: TempDir,
}

/// How xinetd runs the service: what [`Xinetd::start_as`] and the other
/// constructors fix, open to a caller that needs otherwise (the bench, a
/// test of xinetd's own limits). [`Settings::default`] is what they use.
#[derive(Clone, Debug)]
pub struct Settings {
    /// The xinetd program; `None` finds `xinetd` on `PATH` or in the
    /// system directories (see [`require_program`]).
    pub program: Option<PathBuf>,
    /// `user =`: who the service runs as. The server and anything it runs
    /// must be reachable by that user.
    pub user: String,
    /// Log each connection's end (`log_on_success = PID EXIT DURATION`),
    /// which [`Xinetd::exit_statuses`] reads; without it xinetd logs nothing
    /// per connection (the bench: its per-connection work is then the same
    /// for every server it measures).
    pub log_connections: bool,
    /// The service's `cps =`; `None` writes no `cps` line at all (nor in
    /// `defaults`), leaving xinetd's compiled-in `50 10`.
    pub cps: Option<String>,
    /// The service's `instances =`: how many servers may run at once.
    pub instances: String,
    /// The service's `flags =`.
    pub flags: String,
}

impl Default for Settings {
    /// Root, connections logged, `cps = 10000 1` (xinetd's default of 50 a
    /// second would shut the service down in a busy test), 500 instances,
    /// `flags = REUSE NOLIBWRAP`.
    fn default() -> Settings {
        Settings {
            program: None,
            user: "root".to_string(),
            log_connections: true,
            cps: Some("10000 1".to_string()),
            instances: "500".to_string(),
            flags: "REUSE NOLIBWRAP".to_string(),
        }
    }
}

impl Xinetd {
    /// Serves `server` (the binary under test, a C floor, a script) with
    /// `server_args = args`.
    ///
    /// xinetd splits `server_args` on whitespace and knows no quoting, so no
    /// argument may contain whitespace: put shell code in a script instead
    /// (see [`TempDir::script`] and [`Xinetd::start_with`]).
    pub fn start(server: impl AsRef<Path>, args: &[&str]) -> Xinetd {
        Xinetd::start_with(TempDir::new("xinetd"), server, args)
    }

    /// Like [`Xinetd::start`], using `dir` (which may already hold
    /// scripts the service runs) for xinetd's files.
    pub fn start_with(dir: TempDir, server: impl AsRef<Path>, args: &[&str]) -> Xinetd {
        Xinetd::start_as(dir, "root", server, args)
    }

    /// Like [`Xinetd::start_with`], with the service running as `user`
    /// (xinetd's `user =`): the server and anything it runs must be
    /// reachable by that user.
    pub fn start_as(dir: TempDir, user: &str, server: impl AsRef<Path>, args: &[&str]) -> Xinetd {
        let settings = Settings {
            user: user.to_string(),
            ..Settings::default()
        };
        Xinetd::try_start(dir, server.as_ref(), args, &settings).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Starts xinetd with `settings` in `dir`, serving `server` with
    /// `server_args = args`, on a free port (another is tried if it was
    /// taken meanwhile). Waits (bounded) until the port listens, read from
    /// `/proc` so that no connection, and so no server, is started. The
    /// failure is returned, with xinetd's logs, rather than panicking.
    pub fn try_start(
        dir: TempDir,
        server: &Path,
        args: &[&str],
        settings: &Settings,
    ) -> Result<Xinetd, String> {
        let xinetd = match &settings.program {
            Some(program) => program.clone(),
            None => require_program("xinetd"),
        };
        if let Some(arg) = args
            .iter()
            .find(|arg| arg.is_empty() || arg.chars().any(char::is_whitespace))
        {
            return Err(format!(
                "xinetd cannot pass the argument {arg:?}: server_args is split on whitespace"
            ));
        }
        let mut last_error = String::new();
        for attempt in 1..=START_ATTEMPTS {
            let port = free_port();
            let conf = dir.join("xinetd.conf");
            std::fs::write(&conf, config(dir.path(), port, server, args, settings))
                .map_err(|e| format!("writing {}: {e}", conf.display()))?;
            let file = |name: &str| {
                std::fs::File::create(dir.join(name))
                    .map_err(|e| format!("creating {name} in {}: {e}", dir.path().display()))
            };
            let (stdout, stderr) = (file("xinetd.stdout")?, file("xinetd.stderr")?);
            let mut process = ProcessGuard::spawn(
                "xinetd",
                command(&xinetd, &conf)
                    .arg("-pidfile")
                    .arg(dir.join("xinetd.pid"))
                    .arg("-filelog")
                    .arg(dir.join("xinetd-daemon.log"))
                    .stdout(stdout)
                    .stderr(stderr),
            )
            .map_err(|e| format!("starting {}: {e}", xinetd.display()))?;
            let listening = wait_until(START_TIMEOUT, Duration::from_millis(20), || {
                is_listening(port) || process.try_wait().is_some()
            }) && is_listening(port);
            if listening && process.try_wait().is_none() {
                return Ok(Xinetd {
                    process,
                    port,
                    server: server.to_path_buf(),
                    args: args.iter().map(|a| a.to_string()).collect(),
                    dir,
                });
            }
            let status = process.stop();
            last_error = format!(
                "attempt {attempt}: xinetd on port {port} did not start listening within \
                 {START_TIMEOUT:?} (exit: {status:?})\nstderr: {}\ndaemon log: {}\nlog: {}",
                read(&dir.join("xinetd.stderr")),
                read(&dir.join("xinetd-daemon.log")),
                read(&dir.join("xinetd.log")),
            );
        }
        Err(last_error)
    }

    /// The service's port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// xinetd's pid.
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// The directory holding xinetd's config, log and any scripts.
    pub fn dir(&self) -> &TempDir {
        &self.dir
    }

    /// xinetd's service log (START and EXIT lines).
    pub fn log(&self) -> String {
        read(&self.dir.join("xinetd.log"))
    }

    /// Exit statuses of the servers xinetd has reaped, in order, from its
    /// `EXIT: <service> status=N` log lines.
    pub fn exit_statuses(&self) -> Vec<i32> {
        self.log()
            .lines()
            .filter(|line| line.contains(" EXIT: "))
            .filter_map(|line| {
                let rest = &line[line.find("status=")? + "status=".len()..];
                rest.split_whitespace().next()?.parse().ok()
            })
            .collect()
    }

    /// Waits (bounded) until at least `n` servers have exited; returns all
    /// exit statuses seen so far.
    pub fn wait_for_exits(&self, n: usize, timeout: Duration) -> Vec<i32> {
        wait_until(timeout, Duration::from_millis(20), || {
            self.exit_statuses().len() >= n
        });
        self.exit_statuses()
    }

    /// Live servers xinetd has started and not yet reaped.
    pub fn children(&self) -> Vec<(u32, String)> {
        children_of(self.pid())
    }

    /// Waits (bounded) for xinetd to have no live children; returns those left.
    pub fn wait_for_no_children(&self, timeout: Duration) -> Vec<(u32, String)> {
        wait_until(timeout, Duration::from_millis(20), || {
            self.children().is_empty()
        });
        self.children()
    }

    /// Waits (bounded) until xinetd has reaped every server it started
    /// (zombies count as not yet reaped, unlike in
    /// [`Xinetd::wait_for_no_children`]), so that [`Xinetd::stop_with_usage`]
    /// counts them all. Whether it got there.
    pub fn wait_reaped(&self, timeout: Duration) -> bool {
        let pid = self.pid();
        wait_until(timeout, Duration::from_millis(5), || {
            child_pids(pid).is_empty()
        })
    }

    /// Stops xinetd (see [`ProcessGuard::stop_with_usage`]) and returns
    /// what it and every server it reaped used; `None` if it had already
    /// exited.
    pub fn stop_with_usage(&mut self) -> Option<Usage> {
        self.process.stop_with_usage()
    }
}

impl Drop for Xinetd {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "--- xinetd on 127.0.0.1:{} serving {} {:?}\n--- xinetd.log:\n{}\n--- xinetd daemon log:\n{}\n--- xinetd stderr:\n{}",
                self.port,
                self.server.display(),
                self.args,
                self.log(),
                read(&self.dir.join("xinetd-daemon.log")),
                read(&self.dir.join("xinetd.stderr")),
            );
        }
        self.process.stop();
    }
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

fn config(dir: &Path, port: u16, server: &Path, args: &[&str], settings: &Settings) -> String {
    let server_args = if args.is_empty() {
        String::new()
    } else {
        format!("\tserver_args     = {}\n", args.join(" "))
    };
    let log_on_success = if settings.log_connections {
        "PID EXIT DURATION"
    } else {
        ""
    };
    let cps = settings
        .cps
        .as_ref()
        .map_or_else(String::new, |cps| format!("\tcps             = {cps}\n"));
    format!(
        "defaults
{{
\tlog_type        = FILE {log}
\tlog_on_success  = {log_on_success}
\tlog_on_failure  = HOST
\tinstances       = UNLIMITED
}}

service inetd-health-test
{{
\ttype            = UNLISTED
\tport            = {port}
\tbind            = 127.0.0.1
\tsocket_type     = stream
\tprotocol        = tcp
\twait            = no
\tuser            = {user}
\tserver          = {server}
{server_args}{cps}\tinstances       = {instances}
\tper_source      = UNLIMITED
\tflags           = {flags}
\tdisable         = no
}}
",
        log = dir.join("xinetd.log").display(),
        server = server.display(),
        user = settings.user,
        instances = settings.instances,
        flags = settings.flags,
    )
}

/// `xinetd -dontfork -f conf`, in the foreground so its pid is the one to
/// stop, with no stdin.
fn command(xinetd: &Path, conf: &Path) -> Command {
    let mut cmd = Command::new(xinetd);
    cmd.arg("-dontfork")
        .arg("-f")
        .arg(conf)
        // The servers' defaults (the state directory) must not depend on
        // the environment the tests were started in.
        .env_remove("RUNTIME_DIRECTORY")
        .env_remove("XDG_RUNTIME_DIR")
        .stdin(Stdio::null());
    cmd
}

/// `xinetd -dontfork` on a config of the caller's (`text`, written to
/// `dir/xinetd.conf`), once it listens on 127.0.0.1:`port`: for stanzas the
/// test did not write itself (`gen`'s, the package's).
pub fn run_config(dir: &TempDir, text: &str, port: u16) -> ProcessGuard {
    let xinetd = require_program("xinetd");
    let conf = dir.join("xinetd.conf");
    std::fs::write(&conf, text).unwrap_or_else(|e| panic!("writing {}: {e}", conf.display()));
    let mut process = ProcessGuard::spawn(
        "xinetd",
        command(&xinetd, &conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    )
    .unwrap_or_else(|e| panic!("starting {}: {e}", xinetd.display()));
    let up = wait_until(START_TIMEOUT, Duration::from_millis(20), || {
        is_listening(port) || process.try_wait().is_some()
    });
    assert!(
        up && process.try_wait().is_none(),
        "xinetd did not start listening on {port}:\n{text}"
    );
    process
}
