//! One description of a check, whoever wrote it: the command line and the
//! config file both produce [`Spec`]s, and [`Spec::build`] turns one into
//! the runnable check with its wrappers, always in the same order.
//!
//! Adding a kind of check is one file under `check/` and one arm of
//! [`Kind`].

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::time::Duration;

use crate::check::exec::Convention;
use crate::check::galera::GaleraPolicy;
use crate::check::mariadb::{choose_endpoint, credentials_from, Credentials};
use crate::check::postgres::{self as pg, PassfileError, PostgresCheck, Role as PgRole};
use crate::check::redis::{
    Limits as RedisLimits, RedisCheck, Role as RedisRole, Sentinels as RedisSentinels,
};
use crate::check::{
    Cached, Capped, Check, ExecCheck, GaleraCheck, Maintenance, MariadbCheck, ReplicaCheck,
    TcpCheck,
};
use crate::mysql::Endpoint;
use crate::option_file::{self, ClientOptions, OptionFileError};
use crate::redis::Endpoint as RedisEndpoint;
use crate::state::{self, StateDir};

/// The deadline of a check unless its spec says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);

/// What is checked, and how.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Kind {
    /// Run a program without a shell (see [`crate::check::exec`]).
    Exec {
        /// The program and its arguments.
        command: Vec<OsString>,
        /// Read its exit as a Nagios plugin's.
        nagios: bool,
    },
    /// Open a TCP connection to `HOST:PORT`.
    Tcp {
        /// Where to connect.
        target: String,
    },
    /// A MariaDB server's greeting, or a login and a ping.
    Mariadb(Server),
    /// A Galera node's state.
    Galera {
        /// The node.
        server: Server,
        /// A donor takes traffic too.
        available_when_donor: bool,
        /// A read-only node does not.
        read_only_is_down: bool,
    },
    /// An asynchronous replica's threads and lag.
    Replica {
        /// The replica.
        server: Server,
        /// Largest acceptable lag, in seconds.
        max_lag: u64,
        /// A multi-source connection's name.
        connection_name: Option<String>,
    },
    /// A PostgreSQL server: a ping, or a login, its role and a standby's
    /// lag.
    Postgres(Box<PgServer>),
    /// A Redis (or Valkey) server: its role, replication, and the
    /// Sentinels' word on the primary.
    Redis(Box<RedisServer>),
}

impl Kind {
    /// The kind's name, as the command line and the config file spell it.
    pub fn name(&self) -> &'static str {
        match self {
            Kind::Exec { .. } => "exec",
            Kind::Tcp { .. } => "tcp",
            Kind::Mariadb(_) => "mariadb",
            Kind::Galera { .. } => "galera",
            Kind::Replica { .. } => "replica",
            Kind::Postgres(_) => "postgres",
            Kind::Redis(_) => "redis",
        }
    }
}

/// Where a database server is, and the option file with the account.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Server {
    /// The unix socket.
    pub socket: Option<PathBuf>,
    /// A host to reach over TCP.
    pub host: Option<String>,
    /// The TCP port.
    pub port: Option<u16>,
    /// A MySQL option file (`[client]` user, password, socket, host, port).
    pub defaults_extra_file: Option<PathBuf>,
}

/// A PostgreSQL server, the account that logs in and what the server must
/// be: libpq's names (`host`, `port`, `user`, `dbname`, `passfile`,
/// `application_name`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PgServer {
    /// An address or name over TCP, or a socket directory (starting with
    /// `/`); the default socket directory when none.
    pub host: Option<String>,
    /// The port (5432).
    pub port: Option<u16>,
    /// The role that logs in; without one, the check pings.
    pub user: Option<String>,
    /// The database (the user's name, as libpq defaults it).
    pub dbname: Option<String>,
    /// A password file in `.pgpass` format.
    pub passfile: Option<PathBuf>,
    /// `application_name` (`inetd-health`).
    pub application_name: Option<String>,
    /// What the server must be.
    pub role: PgRole,
    /// A standby's largest replay lag in bytes.
    pub max_lag_bytes: Option<u64>,
    /// A standby's largest replay lag in time.
    pub max_lag: Option<Duration>,
    /// A standby's WAL receiver must be streaming (default: for `replica`).
    pub streaming: Option<bool>,
    /// The primary, to measure a standby's byte lag against (`HOST[:PORT]`
    /// or a socket directory).
    pub primary: Option<String>,
    /// What a standby beyond its lag limits is (down, or a warning).
    pub lagging: pg::Lagging,
}

impl PgServer {
    fn identity(&self, put: &mut impl FnMut(&[u8])) {
        let opt = |v: &Option<String>| v.clone().unwrap_or_default();
        for part in [
            opt(&self.host),
            self.port.map(|p| p.to_string()).unwrap_or_default(),
            opt(&self.user),
            opt(&self.dbname),
            self.passfile
                .as_deref()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            opt(&self.application_name),
            self.role.as_str().to_owned(),
            self.max_lag_bytes
                .map(|n| n.to_string())
                .unwrap_or_default(),
            self.max_lag
                .map(|d| d.as_nanos().to_string())
                .unwrap_or_default(),
            self.streaming.map(|b| b.to_string()).unwrap_or_default(),
            opt(&self.primary),
            self.lagging.as_str().to_owned(),
        ] {
            put(part.as_bytes());
        }
    }

    /// Whether it logs in (a user is given) rather than pings.
    pub fn logs_in(&self) -> bool {
        self.user.is_some()
    }

    /// Builds the check (reading the password file).
    ///
    /// # Errors
    /// What needs a login without a user; a refused password file; a bad
    /// primary address.
    pub fn build(&self, state_dir: &StateDir) -> Result<PostgresCheck, SpecError> {
        let endpoint = pg::endpoint(self.host.as_deref(), self.port);
        let Some(user) = &self.user else {
            let needs = if self.role != PgRole::Any {
                Some("role")
            } else if self.max_lag_bytes.is_some() {
                Some("max-lag-bytes")
            } else if self.max_lag.is_some() {
                Some("max-lag")
            } else if self.primary.is_some() {
                Some("primary")
            } else if self.streaming == Some(true) {
                Some("streaming")
            } else if self.passfile.is_some() {
                Some("passfile")
            } else {
                None
            };
            return match needs {
                Some(what) => Err(SpecError::PgNeedsUser(what)),
                None => Ok(PostgresCheck::ping(endpoint)),
            };
        };
        let passwords = match &self.passfile {
            Some(path) => pg::load_passfile(path)?,
            None => Vec::new(),
        };
        let account = pg::Account {
            user: user.clone(),
            database: self.dbname.clone().unwrap_or_else(|| user.clone()),
            application_name: self
                .application_name
                .clone()
                .unwrap_or_else(|| pg::APPLICATION_NAME.to_owned()),
            passwords,
            passfile: self.passfile.clone(),
        };
        let limits = pg::Limits {
            max_lag_bytes: self.max_lag_bytes,
            max_lag: self.max_lag,
            streaming: self.streaming.unwrap_or(self.role == PgRole::Replica),
            lagging: self.lagging,
        };
        let mut check = PostgresCheck::login(endpoint.clone(), account, self.role, limits)
            .with_key_cache(state_dir.clone());
        if let Some(primary) = &self.primary {
            let primary = pg::primary_endpoint(primary, endpoint.port())
                .ok_or_else(|| SpecError::PgBadPrimary(primary.clone()))?;
            check = check.with_primary(primary);
        }
        Ok(check)
    }
}

/// A Redis server, the credentials file and what the server must be:
/// the names a Redis operator knows.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RedisServer {
    /// Host over TCP (`127.0.0.1` unless a socket is given).
    pub host: Option<String>,
    /// Port (6379).
    pub port: Option<u16>,
    /// A unix socket instead of TCP.
    pub socket: Option<PathBuf>,
    /// A TOML file: `password = "…"`, for an ACL user `user = "…"`.
    pub credentials_file: Option<PathBuf>,
    /// What the server must be.
    pub role: RedisRole,
    /// A primary needs this many online replicas.
    pub min_replicas: Option<u32>,
    /// A replica's last I/O with its primary at most this long ago.
    pub max_link_age: Option<Duration>,
    /// A replica's unapplied replication stream at most this many bytes.
    pub max_lag_bytes: Option<u64>,
    /// Up at least this long.
    pub min_uptime: Option<Duration>,
    /// Sentinels (`HOST:PORT`) that must name a primary.
    pub sentinels: Vec<String>,
    /// The Sentinels' master group name.
    pub master_name: Option<String>,
    /// This node's address as the Sentinels name it (`IP:PORT`; default
    /// `host:port`).
    pub address: Option<String>,
}

/// The default Redis port.
pub const REDIS_PORT: u16 = 6379;

impl RedisServer {
    fn identity(&self, put: &mut impl FnMut(&[u8])) {
        let opt = |v: &Option<String>| v.clone().unwrap_or_default();
        let path = |p: &Option<PathBuf>| {
            p.as_deref()
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        };
        let dur = |d: Option<Duration>| d.map(|d| d.as_nanos().to_string()).unwrap_or_default();
        for part in [
            opt(&self.host),
            self.port.map(|p| p.to_string()).unwrap_or_default(),
            path(&self.socket),
            path(&self.credentials_file),
            self.role.as_str().to_owned(),
            self.min_replicas.map(|n| n.to_string()).unwrap_or_default(),
            dur(self.max_link_age),
            self.max_lag_bytes
                .map(|n| n.to_string())
                .unwrap_or_default(),
            dur(self.min_uptime),
            self.sentinels.join(","),
            opt(&self.master_name),
            opt(&self.address),
        ] {
            put(part.as_bytes());
        }
    }

    /// Builds the check (reading the credentials file).
    ///
    /// # Errors
    /// A refused credentials file; Sentinels without a master name, with a
    /// bad address, or without this node's address.
    pub fn build(&self) -> Result<RedisCheck, SpecError> {
        let port = self.port.unwrap_or(REDIS_PORT);
        let endpoint = match (&self.socket, &self.host) {
            (Some(path), _) => RedisEndpoint::Unix(path.clone()),
            (None, host) => RedisEndpoint::Tcp {
                host: host.clone().unwrap_or_else(|| "127.0.0.1".into()),
                port,
            },
        };
        let limits = RedisLimits {
            min_replicas: self.min_replicas,
            max_link_age: self.max_link_age,
            max_lag_bytes: self.max_lag_bytes,
            min_uptime: self.min_uptime,
        };
        let mut check = RedisCheck::new(endpoint, self.role, limits);
        if let Some(path) = &self.credentials_file {
            check = check.with_credentials(crate::check::redis::load_credentials(path)?);
        }
        if !self.sentinels.is_empty() {
            let master_name = self.master_name.clone().ok_or(SpecError::Redis(
                "sentinels need master-name (the group's name in sentinel monitor)".into(),
            ))?;
            let addresses = self
                .sentinels
                .iter()
                .map(|a| {
                    split_host_port(a).ok_or_else(|| {
                        SpecError::Redis(format!("bad sentinel {a:?}: expected HOST:PORT"))
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            let node = match (&self.address, &self.socket, &self.host) {
                (Some(a), _, _) => split_host_port(a).ok_or_else(|| {
                    SpecError::Redis(format!("bad address {a:?}: expected IP:PORT"))
                })?,
                // The Sentinels name this node by the IP it announces: only
                // a host that is such an IP can stand for it.
                (None, None, Some(host)) if announced_ip(host) => (host.clone(), port),
                (None, Some(_), _) => {
                    return Err(SpecError::Redis(SENTINELS_NEED_ADDRESS_WITH_SOCKET.into()))
                }
                (None, None, _) => return Err(SpecError::Redis(SENTINELS_NEED_ADDRESS.into())),
            };
            check = check.with_sentinels(RedisSentinels {
                addresses,
                master_name,
                node,
            });
        } else if self.master_name.is_some() {
            return Err(SpecError::Redis("master-name without sentinels".into()));
        }
        Ok(check)
    }
}

/// `HOST:PORT` or `[V6]:PORT`.
pub fn split_host_port(text: &str) -> Option<(String, u16)> {
    let (host, port) = text.trim().rsplit_once(':')?;
    let host = match host.strip_prefix('[') {
        Some(h) => h.strip_suffix(']')?,
        // `fd00::8` is not host `fd00:` and port 8: an IPv6 address takes
        // brackets.
        None if host.contains(':') => return None,
        None => host,
    };
    let port: u16 = port.parse().ok().filter(|&p| p != 0)?;
    (!host.is_empty() && !host.contains(|c: char| c.is_whitespace()))
        .then(|| (host.to_owned(), port))
}

/// The description of one check: its kind and every wrapper around it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Spec {
    /// What is checked.
    pub kind: Kind,
    /// The check's deadline, from when the request has been read.
    pub timeout: Duration,
    /// A warning takes the backend out (503).
    pub warning_is_down: bool,
    /// Put the check's detail (program output, server messages) in bodies.
    pub show_output: bool,
    /// While this file exists, the check is disabled and does not run.
    pub disable_file: Option<PathBuf>,
    /// Share outcomes between processes for this long.
    pub cache_ttl: Option<Duration>,
    /// Never serve a shared outcome older than this (default: the TTL plus
    /// the timeout).
    pub max_stale: Option<Duration>,
    /// At most this many of this check run at once, host-wide.
    pub max_concurrent: Option<u32>,
}

impl Spec {
    /// A spec of `kind` with every wrapper off and the default timeout.
    pub fn new(kind: Kind) -> Self {
        Spec {
            kind,
            timeout: DEFAULT_TIMEOUT,
            warning_is_down: false,
            show_output: false,
            disable_file: None,
            cache_ttl: None,
            max_stale: None,
            max_concurrent: None,
        }
    }

    /// A stable identity: the same for the same check, different for
    /// different ones, across processes and versions of this program's
    /// arguments. State files are named after it, so each check has its
    /// own cache and slots, and two services running the same check share
    /// them. What only shapes the answer (timeout, policy, the disable
    /// file, which wraps the cache) is left out; what changes the result
    /// is in.
    pub fn identity(&self) -> String {
        let mut id: Vec<u8> = Vec::new();
        let mut put = |part: &[u8]| {
            id.extend_from_slice(part);
            id.push(0);
        };
        put(self.kind.name().as_bytes());
        match &self.kind {
            Kind::Exec { command, nagios } => {
                put(if *nagios { b"nagios" } else { b"exit-zero" });
                for arg in command {
                    put(arg.as_bytes());
                }
            }
            Kind::Tcp { target } => put(target.as_bytes()),
            Kind::Mariadb(server) => server.identity(&mut put),
            Kind::Galera {
                server,
                available_when_donor,
                read_only_is_down,
            } => {
                server.identity(&mut put);
                put(&[
                    u8::from(*available_when_donor),
                    u8::from(*read_only_is_down),
                ]);
            }
            Kind::Replica {
                server,
                max_lag,
                connection_name,
            } => {
                server.identity(&mut put);
                put(max_lag.to_string().as_bytes());
                put(connection_name.as_deref().unwrap_or("").as_bytes());
            }
            Kind::Postgres(server) => server.identity(&mut put),
            Kind::Redis(server) => server.identity(&mut put),
        }
        state::key(&id)
    }

    /// Builds the check: the kind, then the cap (only checks that would
    /// touch the server count), the cache (a fresh result touches nothing)
    /// and the maintenance switch (it touches nothing at all), outermost
    /// last. Option files are read here.
    ///
    /// # Errors
    /// [`SpecError`] for what cannot be built: an empty command, a bad
    /// target, an option file that is refused or malformed, a database
    /// check that needs an account and has none.
    pub fn build(&self, state_dir: &StateDir) -> Result<Box<dyn Check + Send + Sync>, SpecError> {
        let mut check: Box<dyn Check + Send + Sync> = match &self.kind {
            Kind::Exec { command, nagios } => {
                let convention = if *nagios {
                    Convention::Nagios
                } else {
                    Convention::ExitZero
                };
                let check = ExecCheck::new(command.clone()).map_err(|_| SpecError::NoProgram)?;
                Box::new(check.convention(convention))
            }
            Kind::Tcp { target } => {
                Box::new(TcpCheck::new(target).map_err(|_| SpecError::BadTarget(target.clone()))?)
            }
            Kind::Mariadb(server) => {
                let (endpoint, credentials) = server.resolve()?;
                let check = MariadbCheck::new(endpoint);
                Box::new(match credentials {
                    Some(c) => check.with_credentials(c),
                    None => check,
                })
            }
            Kind::Galera {
                server,
                available_when_donor,
                read_only_is_down,
            } => {
                let (endpoint, credentials) = server.resolve_with_account("galera")?;
                let policy = GaleraPolicy {
                    available_when_donor: *available_when_donor,
                    read_only_is_down: *read_only_is_down,
                };
                Box::new(GaleraCheck::new(endpoint, credentials, policy))
            }
            Kind::Replica {
                server,
                max_lag,
                connection_name,
            } => {
                let (endpoint, credentials) = server.resolve_with_account("replica")?;
                Box::new(
                    ReplicaCheck::new(endpoint, credentials, *max_lag, connection_name.clone())
                        .map_err(|e| SpecError::BadConnectionName(e.0))?,
                )
            }
            Kind::Postgres(server) => Box::new(server.build(state_dir)?),
            Kind::Redis(server) => Box::new(server.build()?),
        };
        if self.cache_ttl.is_some() || self.max_concurrent.is_some() {
            let name = format!("inetd-health-{}", self.identity());
            if let Some(n) = self.max_concurrent {
                check = Box::new(Capped::new(check, state_dir.clone(), &name, n));
            }
            if let Some(ttl) = self.cache_ttl {
                let max_stale = self.max_stale.unwrap_or(ttl + self.timeout);
                let file = format!("{name}.state");
                check = Box::new(Cached::new(check, state_dir.clone(), &file, ttl, max_stale));
            }
        }
        if let Some(path) = &self.disable_file {
            check = Box::new(Maintenance::new(path, check));
        }
        Ok(check)
    }
}

impl Server {
    fn identity(&self, put: &mut impl FnMut(&[u8])) {
        put(self
            .socket
            .as_deref()
            .map_or(&[][..], |p| p.as_os_str().as_bytes()));
        put(self.host.as_deref().unwrap_or("").as_bytes());
        put(self
            .port
            .map(|p| p.to_string())
            .unwrap_or_default()
            .as_bytes());
        put(self
            .defaults_extra_file
            .as_deref()
            .map_or(&[][..], |p| p.as_os_str().as_bytes()));
    }

    /// Where to connect and the account, the option file read.
    ///
    /// # Errors
    /// The option file is refused or malformed, or names a password
    /// without a user.
    pub fn resolve(&self) -> Result<(Endpoint, Option<Credentials>), SpecError> {
        let file = match &self.defaults_extra_file {
            Some(path) => option_file::load(path)?,
            None => ClientOptions::default(),
        };
        let endpoint = choose_endpoint(
            self.socket.as_deref(),
            self.host.as_deref(),
            self.port,
            &file,
        );
        let credentials = credentials_from(&file).map_err(SpecError::Account)?;
        Ok((endpoint, credentials))
    }

    fn resolve_with_account(
        &self,
        kind: &'static str,
    ) -> Result<(Endpoint, Credentials), SpecError> {
        match self.resolve()? {
            (endpoint, Some(credentials)) => Ok((endpoint, credentials)),
            (_, None) => Err(SpecError::NeedsAccount(kind)),
        }
    }
}

/// Why a spec could not be built. The messages may name files: they are
/// for the operator (the log, the terminal), never a response body.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SpecError {
    /// `exec` without a program.
    #[error("exec: no program given")]
    NoProgram,
    /// A `tcp` target that is not `HOST:PORT`.
    #[error("tcp: bad target {0:?}: expected HOST:PORT")]
    BadTarget(String),
    /// The option file could not be used.
    #[error("defaults-extra-file: {0}")]
    OptionFile(#[from] OptionFileError),
    /// The option file's account is incomplete.
    #[error("defaults-extra-file: {0}")]
    Account(&'static str),
    /// A state check without an account.
    #[error(
        "{0} reads the node's state over a login: give defaults-extra-file with a [client] user"
    )]
    NeedsAccount(&'static str),
    /// A replication connection name that cannot go into a statement.
    #[error(
        "replica: bad connection name {0:?}: use letters, digits, '_', '-' or '.', at most 64"
    )]
    BadConnectionName(String),
    /// The password file could not be used.
    #[error("postgres: {0}")]
    Passfile(#[from] PassfileError),
    /// An option that needs a login, without a user.
    #[error(
        "postgres: {0} needs a login: give user (and passfile if the server asks for a password)"
    )]
    PgNeedsUser(&'static str),
    /// The redis credentials file could not be used.
    #[error("redis: {0}")]
    RedisCredentials(#[from] crate::check::redis::CredentialsError),
    /// A redis setting that cannot be used.
    #[error("redis: {0}")]
    Redis(String),
    /// A primary address that is not `HOST[:PORT]`.
    #[error(
        "postgres: bad primary {0:?}: expected HOST, HOST:PORT, [V6]:PORT or a socket directory"
    )]
    PgBadPrimary(String),
}

/// Whether `host` can stand for the node where the Sentinels name it: they
/// name a node by the IP it announces, which a loopback or unspecified
/// address, or a name, never is.
pub(crate) fn announced_ip(host: &str) -> bool {
    host.parse::<std::net::IpAddr>()
        .is_ok_and(|ip| !ip.is_loopback() && !ip.is_unspecified())
}

/// The refusal of sentinels with a socket and no address.
pub(crate) const SENTINELS_NEED_ADDRESS_WITH_SOCKET: &str =
    "with a socket, sentinels need address (this node's IP:PORT as the sentinels name it)";

/// The refusal of sentinels with neither an address nor a host that is
/// the node's IP.
pub(crate) const SENTINELS_NEED_ADDRESS: &str = "sentinels need address (this node's IP:PORT as the sentinels name it) unless host is that IP: a loopback address or a name never matches what they answer";

#[cfg(test)]
mod tests {
    use super::*;

    fn exec(args: &[&str]) -> Kind {
        Kind::Exec {
            command: args.iter().map(OsString::from).collect(),
            nagios: false,
        }
    }

    #[test]
    fn identity_is_stable_and_tells_checks_apart() {
        let a = Spec::new(exec(&["check", "a b"]));
        assert_eq!(a.identity(), Spec::new(exec(&["check", "a b"])).identity());
        assert_eq!(a.identity().len(), 16);
        // Argument boundaries count: "a b" is not "a", "b".
        assert_ne!(
            a.identity(),
            Spec::new(exec(&["check", "a", "b"])).identity()
        );
        let nagios = Spec::new(Kind::Exec {
            command: vec!["check".into(), "a b".into()],
            nagios: true,
        });
        assert_ne!(a.identity(), nagios.identity());
        // What only shapes the answer does not split the cache.
        let slower = Spec {
            timeout: Duration::from_secs(9),
            warning_is_down: true,
            ..a.clone()
        };
        assert_eq!(a.identity(), slower.identity());
        let tcp = |t: &str| Spec::new(Kind::Tcp { target: t.into() }).identity();
        assert_ne!(tcp("a:1"), tcp("a:2"));
        let replica = |lag| {
            Spec::new(Kind::Replica {
                server: Server::default(),
                max_lag: lag,
                connection_name: None,
            })
            .identity()
        };
        assert_ne!(replica(5), replica(6));
    }

    #[test]
    fn build_errors_say_what_to_fix() {
        let dir = StateDir::given(std::env::temp_dir());
        let err = |kind| Spec::new(kind).build(&dir).err().unwrap().to_string();
        assert_eq!(err(exec(&[])), "exec: no program given");
        assert_eq!(
            err(Kind::Tcp {
                target: "nope".into()
            }),
            "tcp: bad target \"nope\": expected HOST:PORT"
        );
        assert_eq!(
            err(Kind::Galera {
                server: Server::default(),
                available_when_donor: false,
                read_only_is_down: false
            }),
            "galera reads the node's state over a login: give defaults-extra-file with a [client] user"
        );
        assert!(Spec::new(exec(&["true"])).build(&dir).is_ok());
    }
}
