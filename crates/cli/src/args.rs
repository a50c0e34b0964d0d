//! Command-line arguments.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use inetd_health::check::exec::Convention;
use inetd_health::check::galera::GaleraPolicy;
use inetd_health::check::mariadb::{choose_endpoint, credentials_from, Credentials};
use inetd_health::check::{Cached, Capped, GaleraCheck, Maintenance, ReplicaCheck};
use inetd_health::mysql::Endpoint;
use inetd_health::option_file::{self, ClientOptions};
use inetd_health::state::{self, StateDir};
use inetd_health::{exit, Check, ExecCheck, Limits, MariadbCheck, Options, Policy, TcpCheck};

const EXAMPLES: &str = "\
Examples:
  inetd-health exec -- mysqladmin --defaults-extra-file=/etc/mysql/monitor.cnf ping
  inetd-health exec --nagios -- /usr/lib/nagios/plugins/check_disk -w 10% -p /
  inetd-health --timeout 500ms tcp 127.0.0.1:5432
  inetd-health --listen 127.0.0.1:9200 exec -- true
  inetd-health --once tcp localhost:22
  inetd-health mariadb --defaults-extra-file /etc/mysql/monitor.cnf
  inetd-health galera --defaults-extra-file /etc/mysql/monitor.cnf
  inetd-health replica --defaults-extra-file /etc/mysql/monitor.cnf --max-lag 30";

/// Answer one HTTP health check on stdin/stdout, as started by xinetd,
/// systemd (Accept=yes) or tcpserver: 200 when the check passes, 503 when not.
#[derive(Debug, Parser)]
#[command(name = "inetd-health", version, after_help = after_help())]
pub struct Cli {
    /// Deadline for the check; a check still running then is killed and
    /// answered 503
    #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = parse_duration)]
    pub timeout: Duration,

    /// Deadline for the client's request head (408 past it)
    #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = parse_duration)]
    pub read_timeout: Duration,

    /// Answer 503, not 200, when the check warns (a Nagios plugin's
    /// WARNING, with exec --nagios)
    #[arg(long)]
    pub warning_is_down: bool,

    /// Put the check's detail in the response body: a program's output, a
    /// server's message (it may hold secrets or account names: anyone who
    /// can connect reads it). It is always in the log line
    #[arg(long)]
    pub show_output: bool,

    /// Serve on this TCP address instead of stdin/stdout, e.g. 127.0.0.1:9200
    #[arg(long, value_name = "ADDR", conflicts_with = "once")]
    pub listen: Option<SocketAddr>,

    /// With --listen: connections served at once; more wait in the backlog
    #[arg(long, value_name = "N", default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub max_connections: u32,

    /// While this file exists, answer 503 "disabled by operator" without
    /// running the check (keep it where only operators can write)
    #[arg(long, value_name = "PATH")]
    pub disable_file: Option<PathBuf>,

    /// Share the last outcome between this service's processes for this long:
    /// within it a poll is answered from the state file without touching the
    /// server; past it one process runs the check while the others wait
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub cache_ttl: Option<Duration>,

    /// Never serve a cached outcome older than this [default: the TTL plus
    /// --timeout]
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, requires = "cache_ttl")]
    pub max_stale: Option<Duration>,

    /// At most N checks of this service touch the server at once, host-wide;
    /// a poll over the cap is answered 503 "checker saturated" at once
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub max_concurrent: Option<u32>,

    /// Directory for the state and slot files of --cache-ttl and
    /// --max-concurrent [default: $RUNTIME_DIRECTORY as systemd sets it,
    /// else /run/inetd-health for root, $XDG_RUNTIME_DIR/inetd-health, or
    /// /tmp/inetd-health-UID, created mode 0700]
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,

    /// Where syslog lines go when stderr is the client's socket (xinetd)
    #[arg(long, value_name = "PATH", default_value = crate::log::SYSLOG_SOCKET)]
    pub syslog_socket: PathBuf,

    /// Run the check once, print the outcome and exit with the Nagios code
    /// (0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN)
    #[arg(long)]
    pub once: bool,

    #[command(subcommand)]
    pub check: CheckCommand,
}

/// The check to run.
#[derive(Debug, Subcommand)]
pub enum CheckCommand {
    /// Run PROGRAM without a shell: exit 0 healthy, any other exit, a
    /// signal or the deadline unhealthy (503)
    Exec {
        /// Read the exit as a Nagios plugin's: 0 OK, 1 WARNING (200 unless
        /// --warning-is-down), 2 CRITICAL, 3 UNKNOWN (503); the first line
        /// of output is the reason, its performance data is kept
        #[arg(long)]
        nagios: bool,
        /// The program and its arguments (put `--` before them)
        #[arg(
            required = true,
            trailing_var_arg = true,
            allow_hyphen_values = true,
            value_name = "PROGRAM [ARGS]..."
        )]
        argv: Vec<OsString>,
    },
    /// Open a TCP connection to HOST:PORT
    Tcp {
        /// Where to connect, e.g. 127.0.0.1:3306 or [::1]:3306
        #[arg(value_name = "HOST:PORT")]
        target: String,
    },
    /// Check a MariaDB or MySQL server natively: the greeting proves it
    /// alive; with credentials, log in, ping and quit cleanly
    Mariadb {
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Check a Galera node (clustercheck): 200 when Synced, in the Primary
    /// component, ready and accepting queries
    Galera {
        #[command(flatten)]
        server: ServerArgs,
        /// A donor (or desynced node) takes traffic too
        #[arg(long)]
        available_when_donor: bool,
        /// A read-only node is down (by default it serves, as in clustercheck)
        #[arg(long)]
        read_only_is_down: bool,
    },
    /// Check an asynchronous replica: both replication threads running and
    /// Seconds_Behind_Master at most --max-lag
    Replica {
        #[command(flatten)]
        server: ServerArgs,
        /// Largest acceptable lag, in seconds
        #[arg(long, value_name = "SECONDS")]
        max_lag: u64,
        /// A MariaDB multi-source replication connection's name
        #[arg(long, value_name = "NAME")]
        connection_name: Option<String>,
    },
}

/// Where the database server is, and the account to use.
#[derive(Debug, clap::Args)]
pub struct ServerArgs {
    /// The server's unix socket [default: the option file's, else
    /// /run/mysqld/mysqld.sock]
    #[arg(long, value_name = "PATH", conflicts_with_all = ["host", "port"])]
    socket: Option<PathBuf>,
    /// Connect over TCP to this host
    #[arg(long, value_name = "HOST")]
    host: Option<String>,
    /// TCP port [default: the option file's, else 3306]
    #[arg(long, value_name = "PORT", value_parser = clap::value_parser!(u16).range(1..))]
    port: Option<u16>,
    /// MySQL option file with the monitoring account: its [client]
    /// group's user, password, socket, host, port. Refused if others can
    /// read it
    #[arg(long, value_name = "FILE")]
    defaults_extra_file: Option<PathBuf>,
}

impl ServerArgs {
    fn resolve(&self) -> anyhow::Result<(Endpoint, Option<Credentials>)> {
        let file = match &self.defaults_extra_file {
            Some(path) => option_file::load(path).context("--defaults-extra-file")?,
            None => ClientOptions::default(),
        };
        let endpoint = choose_endpoint(
            self.socket.as_deref(),
            self.host.as_deref(),
            self.port,
            &file,
        );
        let credentials = credentials_from(&file)
            .map_err(anyhow::Error::msg)
            .context("--defaults-extra-file")?;
        Ok((endpoint, credentials))
    }

    /// For the state checks, which need an account.
    fn resolve_with_account(&self, check: &str) -> anyhow::Result<(Endpoint, Credentials)> {
        match self.resolve()? {
            (endpoint, Some(credentials)) => Ok((endpoint, credentials)),
            (_, None) => anyhow::bail!(
                "{check} reads the node's state over a login: give --defaults-extra-file with a [client] user"
            ),
        }
    }
}

impl CheckCommand {
    fn build_check(&self) -> anyhow::Result<Box<dyn Check + Send + Sync>> {
        Ok(match self {
            CheckCommand::Exec { nagios, argv } => {
                let convention = if *nagios {
                    Convention::Nagios
                } else {
                    Convention::ExitZero
                };
                Box::new(
                    ExecCheck::new(argv.clone())
                        .context("exec")?
                        .convention(convention),
                )
            }
            CheckCommand::Tcp { target } => Box::new(TcpCheck::new(target).context("tcp")?),
            CheckCommand::Mariadb { server } => {
                let (endpoint, credentials) = server.resolve().context("mariadb")?;
                let check = MariadbCheck::new(endpoint);
                Box::new(match credentials {
                    Some(c) => check.with_credentials(c),
                    None => check,
                })
            }
            CheckCommand::Galera {
                server,
                available_when_donor,
                read_only_is_down,
            } => {
                let (endpoint, credentials) =
                    server.resolve_with_account("galera").context("galera")?;
                let policy = GaleraPolicy {
                    available_when_donor: *available_when_donor,
                    read_only_is_down: *read_only_is_down,
                };
                Box::new(GaleraCheck::new(endpoint, credentials, policy))
            }
            CheckCommand::Replica {
                server,
                max_lag,
                connection_name,
            } => {
                let (endpoint, credentials) =
                    server.resolve_with_account("replica").context("replica")?;
                Box::new(
                    ReplicaCheck::new(endpoint, credentials, *max_lag, connection_name.clone())
                        .context("replica")?,
                )
            }
        })
    }
}

impl Cli {
    /// The check to run, wrapped as the options say: the maintenance switch
    /// first (it touches nothing), then the cache (a fresh result touches
    /// nothing), then the cap (only checks that would touch the server count).
    ///
    /// The state files live in --state-dir, `$RUNTIME_DIRECTORY` or a
    /// private directory of our own ([`state::default_dir`]), named after
    /// the command line (two services sharing a directory must not share
    /// results); all are looked at only when a shared option asks.
    pub fn build(&self) -> anyhow::Result<Box<dyn Check + Send + Sync>> {
        let mut check = self.check.build_check()?;
        if self.cache_ttl.is_some() || self.max_concurrent.is_some() {
            let dir = match self.state_dir.clone().or_else(runtime_directory) {
                Some(dir) => StateDir::given(dir),
                None => state::default_dir(
                    // SAFETY: geteuid has no preconditions.
                    unsafe { libc::geteuid() },
                    std::env::var_os("XDG_RUNTIME_DIR").as_deref(),
                ),
            };
            let identity = std::env::args_os().skip(1).fold(Vec::new(), |mut acc, a| {
                acc.extend_from_slice(a.as_bytes());
                acc.push(0);
                acc
            });
            let name = format!("inetd-health-{}", state::key(&identity));
            if let Some(n) = self.max_concurrent {
                check = Box::new(Capped::new(check, dir.clone(), &name, n));
            }
            if let Some(ttl) = self.cache_ttl {
                let max_stale = self.max_stale.unwrap_or(ttl + self.timeout);
                let file = format!("{name}.state");
                check = Box::new(Cached::new(check, dir, &file, ttl, max_stale));
            }
        }
        if let Some(path) = &self.disable_file {
            check = Box::new(Maintenance::new(path, check));
        }
        Ok(check)
    }

    /// Connection settings.
    pub fn options(&self) -> Options {
        Options {
            limits: Limits {
                read_timeout: self.read_timeout,
                ..Limits::default()
            },
            check_timeout: self.timeout,
            ..Options::default()
        }
    }

    /// How outcomes are answered.
    pub fn policy(&self) -> Policy {
        Policy {
            warning_is_down: self.warning_is_down,
            show_detail: self.show_output,
        }
    }
}

/// `$RUNTIME_DIRECTORY`, as systemd sets it for `RuntimeDirectory=`; it may
/// list several directories separated by ':', the first is ours.
fn runtime_directory() -> Option<PathBuf> {
    let value = std::env::var_os("RUNTIME_DIRECTORY")?;
    let first = value.as_bytes().split(|&b| b == b':').next()?;
    (!first.is_empty()).then(|| PathBuf::from(std::ffi::OsStr::from_bytes(first)))
}

fn after_help() -> String {
    format!("{}\n\n{EXAMPLES}", exit::TABLE)
}

/// Parses `500ms`, `2s`, `1.5s`, `1m`, or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration (try 500ms, 2s, 1m)"))?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "" | "s" => value,
        "m" => value * 60.0,
        _ => return Err(format!("{text:?}: unknown unit {unit:?} (use ms, s or m)")),
    };
    if !seconds.is_finite() || !(0.001..=86_400.0).contains(&seconds) {
        return Err(format!("{text:?} is out of range (1ms to 24h)"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("2"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
        for bad in ["", "s", "2h", "-1s", "0", "1e9", "1..2s", "100000"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_documented_forms_parse() {
        let cli = Cli::try_parse_from([
            "inetd-health",
            "--timeout",
            "1s",
            "exec",
            "--",
            "check_x",
            "-w",
            "5",
        ])
        .unwrap();
        assert_eq!(cli.timeout, Duration::from_secs(1));
        match cli.check {
            CheckCommand::Exec { nagios, argv } => {
                assert!(!nagios);
                assert_eq!(argv, ["check_x", "-w", "5"]);
            }
            other => panic!("{other:?}"),
        }
        let cli = Cli::try_parse_from([
            "inetd-health",
            "exec",
            "--nagios",
            "--",
            "check_x",
            "--nagios",
        ])
        .unwrap();
        match cli.check {
            CheckCommand::Exec { nagios, argv } => {
                assert!(nagios);
                assert_eq!(argv, ["check_x", "--nagios"]);
            }
            other => panic!("{other:?}"),
        }
        let cli = Cli::try_parse_from(["inetd-health", "tcp", "127.0.0.1:3306"]).unwrap();
        assert!(
            matches!(cli.check, CheckCommand::Tcp { ref target } if target == "127.0.0.1:3306")
        );
        assert!(Cli::try_parse_from(["inetd-health", "exec"]).is_err());
        assert!(Cli::try_parse_from([
            "inetd-health",
            "--once",
            "--listen",
            "127.0.0.1:1",
            "tcp",
            "a:1"
        ])
        .is_err());
    }

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
