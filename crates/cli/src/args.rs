//! Command-line arguments.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};
use inetd_health::allow::Allowlist;
use inetd_health::check::postgres::{self as pg, Lagging, Role};
use inetd_health::check::redis::Role as RedisRole;
use inetd_health::config::{self, parse_duration, parse_size, AgentOverrides, Config, Overrides};
use inetd_health::spec::{
    split_host_port, Kind, PgServer, RedisServer, Server, Spec, DEFAULT_TIMEOUT,
};
use inetd_health::state::{self, StateDir};
use inetd_health::{exit, Options, Service};

const EXAMPLES: &str = "\
Examples:
  inetd-health --config /etc/inetd-health/config.toml
  inetd-health --config /etc/inetd-health/config.toml --check-config
  inetd-health exec -- mysqladmin --defaults-extra-file=/etc/mysql/monitor.cnf ping
  inetd-health exec --nagios -- /usr/lib/nagios/plugins/check_disk -w 10% -p /
  inetd-health --timeout 500ms tcp 127.0.0.1:5432
  inetd-health --listen 127.0.0.1:9200 exec -- true
  inetd-health --once tcp localhost:22
  inetd-health mariadb --defaults-extra-file /etc/mysql/monitor.cnf
  inetd-health galera --defaults-extra-file /etc/mysql/monitor.cnf
  inetd-health replica --defaults-extra-file /etc/mysql/monitor.cnf --max-lag 30
  inetd-health postgres --host /run/postgresql
  inetd-health postgres --user monitor --passfile /etc/inetd-health/pgpass --role primary
  inetd-health postgres --user monitor --passfile /etc/inetd-health/pgpass --role replica --max-lag-bytes 16MB
  inetd-health redis --credentials-file /etc/inetd-health/redis.toml --role replica --max-link-age 10s
  inetd-health redis --role primary --master-name mymaster --sentinel 10.0.0.7:26379 \\
      --sentinel 10.0.0.8:26379 --sentinel 10.0.0.9:26379 --address 10.0.0.5:6379";

const DEFAULT_MAX_CONNECTIONS: u32 = 64;

/// Where the syslog daemon listens, unless `--syslog-socket` says otherwise.
pub const SYSLOG_SOCKET: &str = "/dev/log";

/// Answer HTTP health checks on stdin/stdout, as started by xinetd,
/// systemd (Accept=yes) or tcpserver: 200 when the checks pass, 503 when
/// not. One check from the command line, or many on routes from --config.
#[derive(Debug, Parser)]
// The long after-help text (exit codes, the config in brief, examples) is
// added only when help is asked for (`command`): formatting it cost every
// poll a few thousand instructions.
#[command(name = "inetd-health", version)]
pub struct Cli {
    /// Serve the checks and routes of this TOML file (see docs/config.md)
    /// instead of one check named on the command line
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// With --config: check the file (and every option file it names),
    /// say what is wrong with line and column, and exit (0 or 64)
    #[arg(long, requires = "config")]
    pub check_config: bool,

    /// Deadline for the check; a check still running then is killed and
    /// answered 503 [default: 2s]
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub timeout: Option<Duration>,

    /// Deadline for the client's request head (408 past it) [default: 2s]
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub read_timeout: Option<Duration>,

    /// Answer 503, not 200, when the check warns (a Nagios plugin's
    /// WARNING, with exec --nagios)
    #[arg(long)]
    pub warning_is_down: bool,

    /// Put the check's detail in the response body: a program's output, a
    /// server's message (it may hold secrets or account names: anyone who
    /// can connect reads it). It is always in the log line
    #[arg(long)]
    pub show_output: bool,

    /// Status for a warning that takes traffic: 200, or 429 (Consul's
    /// warning) [default: 200]
    #[arg(long, value_name = "CODE", value_parser = status_of(&[200, 429]))]
    pub warning_status: Option<u16>,

    /// Status for a check disabled by its disable file: 503, or 404
    /// (HAProxy's http-check disable-on-404 drains the server) [default: 503]
    #[arg(long, value_name = "CODE", value_parser = status_of(&[503, 404]))]
    pub disabled_status: Option<u16>,

    /// Serve only clients whose address (as the kernel reports it) is in
    /// one of these networks; others get 403 and run nothing. Repeatable,
    /// and over the config file's `allow`
    #[arg(long, value_name = "CIDR[,CIDR...]", value_parser = parse_allow)]
    pub allow: Vec<AllowArg>,

    /// Answer HAProxy's agent-check on the same port: a connection silent
    /// for --agent-wait, or whose first line is not HTTP, gets one line
    /// (up ready 100%, up ready 50% for a warning, drain while disabled,
    /// down #REASON) for the checks of --agent-route
    #[arg(long)]
    pub agent: bool,

    /// With --agent: the route whose checks the agent reports [default: /]
    #[arg(long, value_name = "PATH", requires = "agent")]
    pub agent_route: Option<String>,

    /// With --agent: how long a silent connection is waited for before it
    /// is taken for an agent [default: 100ms]
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, requires = "agent")]
    pub agent_wait: Option<Duration>,

    /// With --agent: the weight announced while a check warns, in percent
    /// [default: 50]
    #[arg(long, value_name = "PERCENT", value_parser = clap::value_parser!(u8).range(1..=100), requires = "agent")]
    pub agent_warning_weight: Option<u8>,

    /// Serve HTTPS with this certificate chain (PEM, the server's first);
    /// with --tls-key. HAProxy's agent-check (plaintext) is still answered
    /// on the same port; plaintext HTTP gets a 400 unless --tls-plaintext
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// The private key of --tls-cert (PEM: PKCS#8, SEC1 or PKCS#1; RSA,
    /// ECDSA or Ed25519), refused when others may read it
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// With --tls-cert: require client certificates signed by these CAs
    /// (PEM) [mutual TLS]
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_client_ca: Option<PathBuf>,

    /// With --tls-client-ca: whether a client without a certificate is
    /// refused (required) or served (optional) [default: required]
    #[arg(long, value_name = "WHEN", value_parser = ["required", "optional"], requires = "tls_client_ca")]
    pub tls_client_auth: Option<String>,

    /// With --tls-cert: serve plaintext HTTP on the same port too
    #[arg(long, requires = "tls_cert", conflicts_with = "tls_client_ca")]
    pub tls_plaintext: bool,

    /// One process serves many connections (systemd `Accept=no`, found
    /// at start-up; --listen says so itself).
    #[arg(skip)]
    pub long_lived: bool,

    /// Serve on this TCP address instead of stdin/stdout, e.g. 127.0.0.1:9200
    #[arg(long, value_name = "ADDR", conflicts_with_all = ["once", "check_config"])]
    pub listen: Option<SocketAddr>,

    /// Length of the listening socket's queue of connections not yet
    /// accepted, for --listen [default: the system's maximum,
    /// net.core.somaxconn]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=65535))]
    pub backlog: Option<u32>,

    /// With --listen: connections served at once; more wait in the backlog
    /// [default: 64]
    // No clap default: filling in defaults is paid by every poll's parse.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub max_connections: Option<u32>,

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
    /// --max-concurrent, and for the postgres check's derived SCRAM keys
    /// (PBKDF2 paid once per salt, not on every poll; as secret as the
    /// password file) [default: $RUNTIME_DIRECTORY as systemd sets it,
    /// else /run/inetd-health for root, $XDG_RUNTIME_DIR/inetd-health, or
    /// /tmp/inetd-health-UID, created mode 0700]
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,

    /// Where syslog lines go when stderr is the client's socket (xinetd)
    /// [default: /dev/log]
    #[arg(long, value_name = "PATH")]
    pub syslog_socket: Option<PathBuf>,

    /// Run the checks once, print them as a Nagios plugin does and exit
    /// with its code (0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN)
    #[arg(long)]
    pub once: bool,

    #[command(subcommand)]
    pub check: Option<CheckCommand>,
}

/// The check to run.
///
/// `defer`: a subcommand's options are defined only when it is the one
/// given. Every poll of the single-check form parses its command line, and
/// building the definitions of every subcommand (gen's and doctor's
/// included) cost about 70,000 instructions a poll (callgrind).
#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub enum CheckCommand {
    /// With --config: write the glue for a launcher or poller (xinetd,
    /// systemd, tcpserver, haproxy, keepalived, k8s), sized for the pollers
    Gen(crate::gen::GenArgs),
    /// Poll a health endpoint (any, ours or not) as HAProxy, keepalived,
    /// Kubernetes and an agent-check do, and a burst; say what each poller
    /// would see and what is wrong. Exit 0 when every poller is satisfied,
    /// 1 when one is not
    Doctor(crate::doctor::DoctorArgs),
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
    /// Check a PostgreSQL server natively: without --user, a ping (as
    /// pg_isready); with one, a login, its role (--role) and a standby's
    /// lag
    Postgres(PgArgs),
    /// Check a Redis or Valkey server natively: its role, its replication
    /// and, with --sentinel, the Sentinels' word on the primary
    Redis(RedisArgs),
}

// Where the database server is, and the account to use. (A plain comment: a doc comment would become
// the subcommand's about text, set after the variant's since the
// subcommands are deferred.)
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

// A PostgreSQL server, libpq's names, and what it must be. (A plain
// comment, as for ServerArgs.) No password option: a command line is
// visible to every user of the host; the password is in --passfile.
#[derive(Debug, clap::Args)]
pub struct PgArgs {
    /// An address or name to reach over TCP, or a socket directory (a path
    /// starting with /) [default: /var/run/postgresql]
    #[arg(long, value_name = "HOST|DIR")]
    host: Option<String>,
    /// The TCP port, or the socket's number [default: 5432]
    #[arg(long, value_name = "PORT", value_parser = clap::value_parser!(u16).range(1..))]
    port: Option<u16>,
    /// The role to log in as; without one, ping without logging in
    #[arg(long, value_name = "NAME")]
    user: Option<String>,
    /// The database to log in to [default: the user's name]
    #[arg(long, value_name = "NAME")]
    dbname: Option<String>,
    /// A password file in .pgpass format; refused if group or others can
    /// read it
    #[arg(long, value_name = "FILE")]
    passfile: Option<PathBuf>,
    /// The application_name the server shows for the check's sessions
    /// [default: inetd-health]
    #[arg(long, value_name = "NAME")]
    application_name: Option<String>,
    /// What the server must be: primary, replica (a standby), read-write,
    /// read-only (libpq's target_session_attrs) or any [default: any]
    #[arg(long, value_name = "ROLE", value_parser = parse_role)]
    role: Option<Role>,
    /// A standby's largest replay lag: bytes, or a size with B, kB, MB,
    /// GB or TB (1024-based), e.g. 16MB
    #[arg(long, value_name = "SIZE", value_parser = parse_size_arg)]
    max_lag_bytes: Option<u64>,
    /// A standby's largest replay lag in time, e.g. 30s
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    max_lag: Option<Duration>,
    /// Whether a standby's WAL receiver must be streaming [default: true
    /// with --role replica, else false]
    #[arg(long, value_name = "BOOL", value_parser = clap::value_parser!(bool))]
    streaming: Option<bool>,
    /// Measure a standby's byte lag against this primary: HOST, HOST:PORT,
    /// [V6]:PORT or a socket directory (the port defaults to --port)
    #[arg(long, value_name = "HOST[:PORT]", value_parser = parse_primary)]
    primary: Option<String>,
    /// A standby beyond its lag limits is down (503), or a warning (the
    /// warning status, and the agent's warning weight) [default: down]
    #[arg(long, value_name = "down|warning", value_parser = parse_lagging)]
    lagging: Option<Lagging>,
}

impl PgArgs {
    /// The server as the spec describes it.
    pub fn server(&self) -> PgServer {
        PgServer {
            host: self.host.clone(),
            port: self.port,
            user: self.user.clone(),
            dbname: self.dbname.clone(),
            passfile: self.passfile.clone(),
            application_name: self.application_name.clone(),
            role: self.role.unwrap_or_default(),
            max_lag_bytes: self.max_lag_bytes,
            max_lag: self.max_lag,
            streaming: self.streaming,
            primary: self.primary.clone(),
            lagging: self.lagging.unwrap_or_default(),
        }
    }
}

// A Redis server, the names a Redis operator knows, and what it must be.
// (A plain comment, as for ServerArgs.) No password option: a command
// line is visible to every user of the host; the password is in
// --credentials-file.
#[derive(Debug, clap::Args)]
pub struct RedisArgs {
    /// Connect over TCP to this host [default: 127.0.0.1]
    #[arg(long, value_name = "HOST")]
    host: Option<String>,
    /// TCP port [default: 6379]
    #[arg(long, value_name = "PORT", value_parser = clap::value_parser!(u16).range(1..))]
    port: Option<u16>,
    /// The server's unix socket instead of TCP
    #[arg(long, value_name = "PATH", conflicts_with_all = ["host", "port"])]
    socket: Option<PathBuf>,
    /// A TOML file: password = "...", and user = "..." for an ACL user;
    /// refused if group or others can read it
    #[arg(long, value_name = "FILE")]
    credentials_file: Option<PathBuf>,
    /// What the server must be: primary (master), replica (slave) or any
    /// [default: any]
    #[arg(long, value_name = "ROLE", value_parser = parse_redis_role)]
    role: Option<RedisRole>,
    /// A primary needs at least this many replicas online
    #[arg(long, value_name = "N")]
    min_replicas: Option<u32>,
    /// A replica's last I/O with its primary at most this long ago, e.g. 10s
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    max_link_age: Option<Duration>,
    /// A replica's stream read but not yet applied, at most: bytes, or a
    /// size with B, kB, MB, GB or TB (1024-based), e.g. 1MB
    #[arg(long, value_name = "SIZE", value_parser = parse_size_arg)]
    max_lag_bytes: Option<u64>,
    /// Up at least this long (a restarted node waits), e.g. 30s
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    min_uptime: Option<Duration>,
    /// A Sentinel (repeat for each): a primary is healthy only when a
    /// majority of those answering name it
    #[arg(long = "sentinel", value_name = "HOST:PORT", value_parser = parse_sentinel, requires = "master_name")]
    sentinels: Vec<String>,
    /// The Sentinels' name for the primary (sentinel monitor NAME ...)
    #[arg(long, value_name = "NAME", requires = "sentinels")]
    master_name: Option<String>,
    /// This node as the Sentinels name it [default: HOST:PORT]
    #[arg(long, value_name = "IP:PORT", value_parser = parse_address, requires = "sentinels")]
    address: Option<String>,
}

impl RedisArgs {
    /// The server as the spec describes it.
    pub fn server(&self) -> RedisServer {
        RedisServer {
            host: self.host.clone(),
            port: self.port,
            socket: self.socket.clone(),
            credentials_file: self.credentials_file.clone(),
            role: self.role.unwrap_or_default(),
            min_replicas: self.min_replicas,
            max_link_age: self.max_link_age,
            max_lag_bytes: self.max_lag_bytes,
            min_uptime: self.min_uptime,
            sentinels: self.sentinels.clone(),
            master_name: self.master_name.clone(),
            address: self.address.clone(),
        }
    }

    /// What clap cannot say of the options together: each Sentinel votes
    /// once, and one named twice would count twice towards the majority.
    fn refuse_twice_named_sentinels(&self) -> anyhow::Result<()> {
        let mut seen = Vec::new();
        for sentinel in &self.sentinels {
            let address = split_host_port(sentinel);
            if seen.contains(&address) {
                anyhow::bail!("--sentinel {sentinel} is given twice: each Sentinel votes once");
            }
            seen.push(address);
        }
        Ok(())
    }
}

fn parse_redis_role(text: &str) -> Result<RedisRole, String> {
    RedisRole::parse(text)
        .ok_or_else(|| "use primary (or master), replica (or slave) or any".into())
}

fn parse_sentinel(text: &str) -> Result<String, String> {
    match split_host_port(text) {
        Some(_) => Ok(text.to_owned()),
        None => Err("expected HOST:PORT (or [V6]:PORT)".into()),
    }
}

fn parse_address(text: &str) -> Result<String, String> {
    match split_host_port(text) {
        Some(_) => Ok(text.to_owned()),
        None => Err("expected IP:PORT, this node as the Sentinels name it".into()),
    }
}

fn parse_role(text: &str) -> Result<Role, String> {
    Role::parse(text).ok_or_else(|| "use primary, replica, read-write, read-only or any".into())
}

fn parse_lagging(text: &str) -> Result<Lagging, String> {
    Lagging::parse(text).ok_or_else(|| "use down or warning".into())
}

fn parse_size_arg(text: &str) -> Result<u64, String> {
    parse_size(text).ok_or_else(|| {
        "bytes, or a number and a unit of B, kB, MB, GB or TB (1024-based) without a space, like 16MB"
            .into()
    })
}

/// Checked with the default port: --port, given or not, only fills in a
/// port the value leaves out.
fn parse_primary(text: &str) -> Result<String, String> {
    match pg::primary_endpoint(text, pg::DEFAULT_PORT) {
        Some(_) => Ok(text.to_owned()),
        None => Err("expected HOST, HOST:PORT, [V6]:PORT or a socket directory".into()),
    }
}

impl ServerArgs {
    fn server(&self) -> Server {
        Server {
            socket: self.socket.clone(),
            host: self.host.clone(),
            port: self.port,
            defaults_extra_file: self.defaults_extra_file.clone(),
        }
    }
}

impl CheckCommand {
    fn kind(&self) -> Kind {
        match self {
            // plan() never asks (gen and doctor serve nothing); a
            // harmless answer.
            CheckCommand::Gen(_) | CheckCommand::Doctor(_) => Kind::Tcp {
                target: String::new(),
            },
            CheckCommand::Exec { nagios, argv } => Kind::Exec {
                command: argv.clone(),
                nagios: *nagios,
            },
            CheckCommand::Tcp { target } => Kind::Tcp {
                target: target.clone(),
            },
            CheckCommand::Mariadb { server } => Kind::Mariadb(server.server()),
            CheckCommand::Galera {
                server,
                available_when_donor,
                read_only_is_down,
            } => Kind::Galera {
                server: server.server(),
                available_when_donor: *available_when_donor,
                read_only_is_down: *read_only_is_down,
            },
            CheckCommand::Replica {
                server,
                max_lag,
                connection_name,
            } => Kind::Replica {
                server: server.server(),
                max_lag: *max_lag,
                connection_name: connection_name.clone(),
            },
            CheckCommand::Postgres(pg) => Kind::Postgres(Box::new(pg.server())),
            CheckCommand::Redis(redis) => Kind::Redis(Box::new(redis.server())),
        }
    }
}

/// What was asked for, checked: the service to run and the settings of the
/// connection.
pub struct Plan {
    pub service: Service<'static>,
    pub options: Options,
    /// Built and checked in full before serving: the single check of the
    /// command line (a mistake in it is answered 500 to every poll), and
    /// --check-config.
    pub eager: bool,
}

impl Cli {
    /// Parses the command line. `inetd-health --config FILE`, what a
    /// super-server runs on every poll, is read without clap: clap builds
    /// the definition of every option before it looks at an argument,
    /// about 100,000 instructions per start, a third of a whole poll. Any
    /// other command line goes to clap, errors and `--help` included.
    ///
    /// # Errors
    /// What clap says of the command line.
    pub fn parse_args() -> Result<Cli, clap::Error> {
        let args: Vec<OsString> = std::env::args_os().skip(1).collect();
        if let Some(cli) = Cli::config_only(&args) {
            return Ok(cli);
        }
        let asks_help = args
            .iter()
            .any(|a| a == "-h" || a == "--help" || a == "help");
        if asks_help {
            use clap::FromArgMatches as _;
            let mut matches = command().try_get_matches()?;
            return Cli::from_arg_matches_mut(&mut matches);
        }
        Cli::try_parse()
    }

    /// `--max-connections`, or its default.
    pub fn max_connections(&self) -> u32 {
        self.max_connections.unwrap_or(DEFAULT_MAX_CONNECTIONS)
    }

    /// `--syslog-socket`, or `/dev/log`.
    pub fn syslog_socket(&self) -> &std::path::Path {
        self.syslog_socket
            .as_deref()
            .unwrap_or(std::path::Path::new(SYSLOG_SOCKET))
    }

    /// `--config FILE` or `--config=FILE`, and nothing else.
    fn config_only(args: &[OsString]) -> Option<Cli> {
        let file = match args {
            [flag, file] if flag == "--config" => file.clone(),
            [one] => OsString::from(std::ffi::OsStr::from_bytes(
                one.as_bytes().strip_prefix(b"--config=")?,
            )),
            _ => return None,
        };
        // What clap would take for an option, or refuse, it should see.
        if file.is_empty() || file.as_bytes().starts_with(b"-") {
            return None;
        }
        Some(Cli {
            config: Some(PathBuf::from(file)),
            check_config: false,
            timeout: None,
            read_timeout: None,
            warning_is_down: false,
            show_output: false,
            warning_status: None,
            disabled_status: None,
            listen: None,
            max_connections: None,
            backlog: None,
            disable_file: None,
            cache_ttl: None,
            max_stale: None,
            max_concurrent: None,
            state_dir: None,
            syslog_socket: None,
            allow: Vec::new(),
            agent: false,
            agent_route: None,
            agent_wait: None,
            agent_warning_weight: None,
            tls_cert: None,
            tls_key: None,
            tls_client_ca: None,
            tls_client_auth: None,
            tls_plaintext: false,
            long_lived: false,
            once: false,
            check: None,
        })
    }

    /// The service: from --config, or the one check of the command line
    /// served on every path.
    ///
    /// # Errors
    /// Neither or both of --config and a check; a check option given with
    /// --config (it belongs in the file); a config file that is refused.
    pub fn plan(&self) -> anyhow::Result<Plan> {
        let (config, eager) = match (&self.config, &self.check) {
            (Some(_), Some(command)) if !matches!(command, CheckCommand::Gen(_)) => anyhow::bail!(
                "give either --config FILE or a check (exec, tcp, mariadb, galera, replica, postgres, redis), not both"
            ),
            (None, Some(CheckCommand::Gen(_))) => {
                anyhow::bail!("gen writes the glue for a config: give --config FILE")
            }
            (None, None) => anyhow::bail!(
                "give a check (exec, tcp, mariadb, galera, replica, postgres, redis) or --config FILE; see --help"
            ),
            (None, Some(command)) => {
                if let CheckCommand::Redis(redis) = command {
                    redis.refuse_twice_named_sentinels()?;
                }
                let spec = Spec {
                    timeout: self.timeout.unwrap_or(DEFAULT_TIMEOUT),
                    warning_is_down: self.warning_is_down,
                    show_output: self.show_output,
                    disable_file: self.disable_file.clone(),
                    cache_ttl: self.cache_ttl,
                    max_stale: self.max_stale,
                    max_concurrent: self.max_concurrent,
                    ..Spec::new(command.kind())
                };
                (Config::single(spec), true)
            }
            (Some(path), _) => {
                self.refuse_check_options_with_config(path)?;
                (config::load(path)?, self.check_config)
            }
        };
        let (service, options) = config
            .service(&self.overrides())
            .map_err(|why| anyhow::anyhow!("{why}"))?;
        Ok(Plan {
            service,
            options,
            eager,
        })
    }

    /// The command line's say over a config: flags become overrides, and
    /// the environment's state directory the fallback.
    fn overrides(&self) -> Overrides {
        let fallback = match runtime_directory() {
            Some(dir) => StateDir::given(dir),
            None => state::default_dir(
                inetd_health::sys::euid(),
                std::env::var_os("XDG_RUNTIME_DIR").as_deref(),
            ),
        };
        Overrides {
            read_timeout: self.read_timeout,
            state_dir: self.state_dir.clone(),
            fallback_state_dir: Some(fallback),
            warning_status: self.warning_status,
            disabled_status: self.disabled_status,
            allow: (!self.allow.is_empty()).then(|| {
                self.allow
                    .iter()
                    .flat_map(|a| a.0.iter().copied())
                    .collect()
            }),
            agent: self.agent.then(|| AgentOverrides {
                route: self.agent_route.clone(),
                wait: self.agent_wait,
                warning_weight: self.agent_warning_weight,
            }),
            tls: self
                .tls_cert
                .clone()
                .zip(self.tls_key.clone())
                .map(|(cert, key)| inetd_health::tls::TlsSettings {
                    cert,
                    key,
                    client_ca: self.tls_client_ca.clone(),
                    // clap took only the two values.
                    client_auth: self
                        .tls_client_auth
                        .as_deref()
                        .and_then(inetd_health::tls::ClientAuth::parse)
                        .unwrap_or_default(),
                    plaintext: self.tls_plaintext,
                }),
            long_lived: self.serves_many(),
        }
    }

    /// One process serves many connections: `--listen`, or the sockets
    /// systemd passes (`Accept=no`, [`Cli::long_lived`]).
    pub fn serves_many(&self) -> bool {
        self.listen.is_some() || self.long_lived
    }

    /// With --config a check's settings live in the file: a flag could not
    /// say which check it meant.
    fn refuse_check_options_with_config(&self, path: &std::path::Path) -> anyhow::Result<()> {
        let given = [
            ("--timeout", self.timeout.is_some()),
            ("--warning-is-down", self.warning_is_down),
            ("--show-output", self.show_output),
            ("--disable-file", self.disable_file.is_some()),
            ("--cache-ttl", self.cache_ttl.is_some()),
            ("--max-stale", self.max_stale.is_some()),
            ("--max-concurrent", self.max_concurrent.is_some()),
        ];
        if let Some((flag, _)) = given.iter().find(|(_, given)| *given) {
            anyhow::bail!(
                "{flag} sets a check's behaviour: with --config, set {} in {}'s [defaults] or in the check's table",
                &flag[2..],
                path.display()
            );
        }
        Ok(())
    }
}

/// `$RUNTIME_DIRECTORY`, as systemd sets it for `RuntimeDirectory=`; it may
/// list several directories separated by ':', the first is ours.
fn runtime_directory() -> Option<PathBuf> {
    let value = std::env::var_os("RUNTIME_DIRECTORY")?;
    let first = value.as_bytes().split(|&b| b == b':').next()?;
    (!first.is_empty()).then(|| PathBuf::from(std::ffi::OsStr::from_bytes(first)))
}

/// The config file in brief, for `--help` and the man page.
const CONFIG: &str = "\
Config file (--config FILE, TOML; docs/config.md has it all):
  read-timeout, state-dir, allow = [CIDR...], warning-status = 200|429,
  disabled-status = 503|404, agent = true, agent-route, agent-wait,
  agent-warning-weight
  [defaults]        any check setting below but kind, command, target
  [checks.NAME]     kind = exec|tcp|mariadb|galera|replica|postgres|redis,
                    and its settings:
                    exec: command = [PROGRAM, ARG...], nagios
                    tcp: target = \"HOST:PORT\"
                    mariadb, galera, replica: socket, host, port,
                      defaults-extra-file; galera: available-when-donor,
                      read-only-is-down; replica: max-lag, connection-name
                    postgres: host, port, user, dbname, passfile,
                      application_name, role, max-lag-bytes, max-lag,
                      streaming, primary, lagging
                    redis: host, port, socket, credentials-file, role,
                      min-replicas, max-link-age, max-lag-bytes,
                      min-uptime, sentinels = [\"HOST:PORT\"...],
                      master-name, address
                    every kind: timeout, warning-is-down, show-output,
                      disable-file, cache-ttl, max-stale, max-concurrent
  [routes]          \"/PATH\" = [NAME...]   (none: \"/\" runs every check)
Requests: GET /ROUTE, /ROUTE/CHECK, /metrics (Prometheus); ?verbose,
  ?exclude=NAME, ?format=text|json|prometheus, or Accept:
  application/health+json, text/plain; version=0.0.4";

fn after_help() -> String {
    format!("{}\n\n{CONFIG}\n\n{EXAMPLES}", exit::TABLE)
}

/// The whole command, `--help`'s long text included: for `--help`, the man
/// page and the completions.
pub fn command() -> clap::Command {
    use clap::CommandFactory as _;
    Cli::command().after_help(after_help())
}

/// The networks of one `--allow`.
#[derive(Clone, Debug)]
pub struct AllowArg(pub Vec<ipnet::IpNet>);

fn parse_allow(text: &str) -> Result<AllowArg, String> {
    Allowlist::parse_list(text).map(AllowArg)
}

/// A status code out of `allowed`.
fn status_of(allowed: &'static [u16]) -> impl Fn(&str) -> Result<u16, String> + Clone {
    move |text| match text.parse::<u16>() {
        Ok(code) if allowed.contains(&code) => Ok(code),
        _ => Err(format!("use {} or {}", allowed[0], allowed[1])),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

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
        assert_eq!(cli.timeout, Some(Duration::from_secs(1)));
        match cli.check.unwrap() {
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
        match cli.check.unwrap() {
            CheckCommand::Exec { nagios, argv } => {
                assert!(nagios);
                assert_eq!(argv, ["check_x", "--nagios"]);
            }
            other => panic!("{other:?}"),
        }
        let cli = Cli::try_parse_from(["inetd-health", "tcp", "127.0.0.1:3306"]).unwrap();
        assert!(
            matches!(cli.check, Some(CheckCommand::Tcp { ref target }) if target == "127.0.0.1:3306")
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
    fn postgres_takes_libpqs_names() {
        let parse = |args: &[&str]| {
            Cli::try_parse_from(["inetd-health", "postgres"].iter().chain(args))
                .map(|cli| match cli.check {
                    Some(CheckCommand::Postgres(pg)) => pg.server(),
                    other => panic!("{other:?}"),
                })
                .map_err(|e| e.to_string())
        };
        assert_eq!(
            parse(&[
                "--host",
                "db1",
                "--port",
                "5433",
                "--user",
                "monitor",
                "--dbname",
                "postgres",
                "--passfile",
                "/etc/inetd-health/pgpass",
                "--application-name",
                "lb",
                "--role",
                "replica",
                "--max-lag-bytes",
                "16MB",
                "--max-lag",
                "30s",
                "--streaming",
                "false",
                "--primary",
                "db0:5434",
                "--lagging",
                "warning",
            ])
            .unwrap(),
            PgServer {
                host: Some("db1".into()),
                port: Some(5433),
                user: Some("monitor".into()),
                dbname: Some("postgres".into()),
                passfile: Some(PathBuf::from("/etc/inetd-health/pgpass")),
                application_name: Some("lb".into()),
                role: Role::Replica,
                max_lag_bytes: Some(16 << 20),
                max_lag: Some(Duration::from_secs(30)),
                streaming: Some(false),
                primary: Some("db0:5434".into()),
                lagging: Lagging::Warning,
            }
        );
        assert_eq!(parse(&[]).unwrap(), PgServer::default());
        assert_eq!(
            parse(&["--max-lag-bytes", "1048576"])
                .unwrap()
                .max_lag_bytes,
            Some(1 << 20)
        );
        for (args, says) in [
            (
                &["--role", "leader"][..],
                "use primary, replica, read-write, read-only or any",
            ),
            (&["--max-lag-bytes", "16 MB"], "without a space, like 16MB"),
            (&["--max-lag-bytes", "16mb"], "without a space, like 16MB"),
            (&["--max-lag", "30 weeks"], "unknown unit"),
            (&["--streaming", "yes"], "[possible values: true, false]"),
            (&["--primary", "db0:0"], "expected HOST, HOST:PORT"),
            (&["--lagging", "warn"], "use down or warning"),
            (&["--port", "0"], "--port"),
            // A command line is for every user of the host to read.
            (&["--password", "x"], "unexpected argument '--password'"),
        ] {
            let e = parse(args).unwrap_err();
            assert!(e.contains(says), "{args:?}: {e}");
        }
    }

    /// What needs a login is refused without a user before serving (the
    /// single check is built eagerly), not quietly turned into a ping.
    #[test]
    fn a_postgres_check_that_needs_a_login_needs_a_user() {
        let cli = Cli::try_parse_from(["inetd-health", "postgres", "--max-lag", "30s"]).unwrap();
        let plan = cli.plan().unwrap();
        assert!(plan.eager);
        let (_, why) = plan.service.build_all().err().unwrap();
        assert!(why.contains("max-lag needs a login: give user"), "{why}");
    }

    #[test]
    fn redis_takes_a_redis_operators_names() {
        let parse = |args: &[&str]| {
            Cli::try_parse_from(["inetd-health", "redis"].iter().chain(args))
                .map(|cli| match cli.check {
                    Some(CheckCommand::Redis(redis)) => redis.server(),
                    other => panic!("{other:?}"),
                })
                .map_err(|e| e.to_string())
        };
        assert_eq!(
            parse(&[
                "--host",
                "10.0.0.5",
                "--port",
                "6380",
                "--credentials-file",
                "/etc/inetd-health/redis.toml",
                "--role",
                "master",
                "--min-replicas",
                "1",
                "--max-link-age",
                "10s",
                "--max-lag-bytes",
                "1MB",
                "--min-uptime",
                "30s",
                "--sentinel",
                "10.0.0.7:26379",
                "--sentinel",
                "[fd00::8]:26379",
                "--master-name",
                "mymaster",
                "--address",
                "10.0.0.5:6380",
            ])
            .unwrap(),
            RedisServer {
                host: Some("10.0.0.5".into()),
                port: Some(6380),
                socket: None,
                credentials_file: Some(PathBuf::from("/etc/inetd-health/redis.toml")),
                role: RedisRole::Primary,
                min_replicas: Some(1),
                max_link_age: Some(Duration::from_secs(10)),
                max_lag_bytes: Some(1 << 20),
                min_uptime: Some(Duration::from_secs(30)),
                sentinels: vec!["10.0.0.7:26379".into(), "[fd00::8]:26379".into()],
                master_name: Some("mymaster".into()),
                address: Some("10.0.0.5:6380".into()),
            }
        );
        assert_eq!(parse(&[]).unwrap(), RedisServer::default());
        for (role, want) in [
            ("primary", RedisRole::Primary),
            ("replica", RedisRole::Replica),
            ("slave", RedisRole::Replica),
            ("any", RedisRole::Any),
        ] {
            assert_eq!(parse(&["--role", role]).unwrap().role, want);
        }
        assert_eq!(
            parse(&["--socket", "/run/redis/redis-server.sock"])
                .unwrap()
                .socket,
            Some(PathBuf::from("/run/redis/redis-server.sock"))
        );
        for (args, says) in [
            (
                &["--role", "read-write"][..],
                "use primary (or master), replica (or slave) or any",
            ),
            (
                &["--min-replicas=-1"],
                "invalid value '-1' for '--min-replicas <N>'",
            ),
            (&["--min-replicas", "one"], "invalid value 'one'"),
            (&["--max-link-age", "10 weeks"], "unknown unit"),
            (&["--min-uptime", "1d"], "unknown unit"),
            (&["--max-lag-bytes", "1 MB"], "without a space, like 16MB"),
            (
                &["--sentinel", "s1", "--master-name", "m"],
                "expected HOST:PORT",
            ),
            (
                &["--sentinel", "s1:26379"],
                "the following required arguments were not provided",
            ),
            (
                &["--master-name", "m"],
                "the following required arguments were not provided",
            ),
            (
                &["--address", "10.0.0.5:6379"],
                "the following required arguments were not provided",
            ),
            (
                &[
                    "--sentinel",
                    "s1:26379",
                    "--master-name",
                    "m",
                    "--address",
                    "10.0.0.5",
                ],
                "expected IP:PORT",
            ),
            // An IPv6 address takes brackets.
            (
                &["--sentinel", "::1:26379", "--master-name", "m"],
                "expected HOST:PORT",
            ),
            (&["--socket", "/s", "--host", "h"], "cannot be used with"),
            (&["--socket", "/s", "--port", "6379"], "cannot be used with"),
            (&["--port", "0"], "--port"),
            // A command line is for every user of the host to read.
            (&["--password", "x"], "unexpected argument '--password'"),
            (&["--pass", "x"], "unexpected argument '--pass'"),
            (&["-a", "x"], "unexpected argument '-a'"),
        ] {
            let e = parse(args).unwrap_err();
            assert!(e.contains(says), "{args:?}: {e}");
        }
    }

    /// What clap cannot say of the options together is refused before
    /// serving: a Sentinel named twice (it would vote twice), and over a
    /// socket Sentinels without this node's address (the build's rule).
    #[test]
    fn a_redis_check_that_cannot_run_is_refused_before_serving() {
        let plan = |args: &[&str]| {
            Cli::try_parse_from(["inetd-health", "redis"].iter().chain(args))
                .unwrap()
                .plan()
        };
        let twice = [
            "--sentinel",
            "[::1]:26379",
            "--sentinel",
            "[::1]:26379",
            "--master-name",
            "m",
        ];
        let e = plan(&twice).err().unwrap().to_string();
        assert_eq!(
            e,
            "--sentinel [::1]:26379 is given twice: each Sentinel votes once"
        );
        let socket = [
            "--socket",
            "/run/redis.sock",
            "--sentinel",
            "s1:26379",
            "--master-name",
            "m",
        ];
        let built = plan(&socket).unwrap();
        assert!(built.eager);
        let (_, why) = built.service.build_all().err().unwrap();
        assert!(
            why.contains("with a socket, sentinels need address"),
            "{why}"
        );
        let with_address = [&socket[..], &["--address", "10.0.0.5:6379"]].concat();
        plan(&with_address).unwrap().service.build_all().unwrap();
    }

    #[test]
    fn the_config_fast_path_reads_what_clap_reads() {
        for args in [
            &["--config", "/etc/inetd-health/config.toml"][..],
            &["--config=/etc/x.toml"],
        ] {
            let fast = Cli::config_only(&args.iter().map(OsString::from).collect::<Vec<_>>())
                .expect("the fast path takes it");
            let clap =
                Cli::try_parse_from(std::iter::once("inetd-health").chain(args.iter().copied()))
                    .unwrap();
            assert_eq!(format!("{fast:?}"), format!("{clap:?}"));
        }
        // Anything else goes to clap (which may refuse it).
        for args in [
            &["--config"][..],
            &["--config", "-"],
            &["--config", ""],
            &["--config", "x", "--once"],
            &["--help"],
            &["tcp", "x:1"],
            &["--configx=1"],
        ] {
            let args: Vec<OsString> = args.iter().map(OsString::from).collect();
            assert!(Cli::config_only(&args).is_none(), "{args:?}");
        }
    }

    /// Deferred subcommands keep their own about text (a flattened
    /// struct's doc comment once replaced it) and all their options.
    #[test]
    fn deferred_subcommands_keep_their_about_and_options() {
        let mut cmd = Cli::command();
        cmd.build();
        for (name, about, option) in [
            ("mariadb", "Check a MariaDB", "defaults_extra_file"),
            ("galera", "Check a Galera node", "read_only_is_down"),
            ("replica", "Check an asynchronous replica", "max_lag"),
            ("postgres", "Check a PostgreSQL server", "max_lag_bytes"),
            ("redis", "Check a Redis or Valkey server", "sentinels"),
            ("gen", "With --config: write the glue", "pollers"),
            ("doctor", "Poll a health endpoint", "burst"),
            ("exec", "Run PROGRAM without a shell", "nagios"),
        ] {
            let sub = cmd.find_subcommand(name).unwrap();
            let text = sub.get_about().map(ToString::to_string).unwrap_or_default();
            assert!(text.starts_with(about), "{name}: {text:?}");
            assert!(
                sub.get_arguments().any(|a| a.get_id() == option),
                "{name} has no {option}"
            );
        }
    }

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
