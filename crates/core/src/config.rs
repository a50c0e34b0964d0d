//! The config file: many checks, routes, and the service's settings, in
//! TOML, with the command line's names.
//!
//! ```toml
//! [defaults]
//! timeout = "2s"
//!
//! [checks.db]
//! kind = "mariadb"
//! defaults-extra-file = "/etc/mysql/monitor.cnf"
//!
//! [checks.disk]
//! kind = "exec"
//! command = ["/usr/lib/nagios/plugins/check_disk", "-w", "10%", "-p", "/"]
//! nagios = true
//!
//! [routes]
//! "/live" = ["db"]
//! "/ready" = ["db", "disk"]
//! ```
//!
//! Everything that is wrong is refused at start with the file, line and
//! column: unknown keys, an option the check's kind does not take, a check
//! without a kind, a route naming no check, a bad duration. The file names
//! programs we run, so one that group or others may write is refused.
//! Credentials stay in option files (`defaults-extra-file`).

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::Read as _;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Deserializer};
use toml::Spanned;

use crate::outcome::Statuses;
use crate::route::{Route, Routes, METRICS};
use crate::spec::{Kind, Server, Spec, DEFAULT_TIMEOUT};
use crate::state::StateDir;
use crate::sys::trust::{Owners, Rules, Untrusted};
use crate::sys::{self, Stat};

/// Largest config file read.
const MAX_SIZE: u64 = 1 << 20;

/// What a config file must be ([`load`]): a regular file, at most 1 MiB,
/// not writable by group or others, owned by the user that reads it or
/// root.
pub const TRUST: Rules = Rules {
    max_size: Some(MAX_SIZE),
    secret: false,
    secret_from_group: false,
    owner_writes_only: true,
    owners: Owners::UsOrRoot,
    mode: None,
};

/// A config, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// The checks by name, in name order.
    pub checks: Vec<(String, Spec)>,
    /// The routes; without a `[routes]` table, `/` runs every check.
    pub routes: Routes,
    /// `read-timeout`, if set.
    pub read_timeout: Option<Duration>,
    /// `state-dir`, if set.
    pub state_dir: Option<PathBuf>,
    /// `warning-status` and `disabled-status`.
    pub statuses: Statuses,
    /// `allow`: the networks whose peers are served, if set.
    pub allow: Option<Vec<ipnet::IpNet>>,
    /// `agent = true` and its settings: answer HAProxy's agent-check.
    pub agent: Option<crate::agent::AgentSettings>,
}

/// What the command line (or an embedder) says over a config: each `Some`
/// wins over the file's setting.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    /// `--read-timeout`.
    pub read_timeout: Option<Duration>,
    /// `--state-dir`.
    pub state_dir: Option<PathBuf>,
    /// The state directory when neither the command line nor the file
    /// names one: systemd's `$RUNTIME_DIRECTORY`, else the user's default
    /// ([`crate::state::default_dir`]). The library reads no environment:
    /// the caller works it out. `None`: the user's default without
    /// `XDG_RUNTIME_DIR` (`/run/inetd-health` for root, else
    /// `/tmp/inetd-health-UID`).
    pub fallback_state_dir: Option<StateDir>,
    /// `--warning-status`.
    pub warning_status: Option<u16>,
    /// `--disabled-status`.
    pub disabled_status: Option<u16>,
    /// `--allow` (all of them): replaces the file's `allow`.
    pub allow: Option<Vec<ipnet::IpNet>>,
    /// `--agent` and its settings: the file's agent settings, with these
    /// over them.
    pub agent: Option<AgentOverrides>,
}

/// `--agent-route`, `--agent-wait`, `--agent-warning-weight`.
#[derive(Clone, Debug, Default)]
pub struct AgentOverrides {
    /// The route whose checks the agent reports.
    pub route: Option<String>,
    /// How long a silent connection is waited for.
    pub wait: Option<Duration>,
    /// The weight announced for a warning, percent.
    pub warning_weight: Option<u8>,
}

impl Config {
    /// A config of one check, served on every path (the command line's
    /// single check): named after its kind.
    pub fn single(spec: Spec) -> Config {
        Config {
            checks: vec![(spec.kind.name().to_owned(), spec)],
            routes: Routes::Any(vec![0]),
            read_timeout: None,
            state_dir: None,
            statuses: Statuses::default(),
            allow: None,
            agent: None,
        }
    }

    /// The service this config describes, with `overrides` over it, and
    /// the settings of its connections. Every rule of precedence is here:
    /// the command line over the file, the file over the environment's
    /// fallback, and the defaults last.
    ///
    /// # Errors
    /// An agent route that names no route (or carries a query): the agent
    /// would answer `down` for ever, or `up` for nothing.
    pub fn service(
        self,
        overrides: &Overrides,
    ) -> Result<(crate::Service<'static>, crate::Options), String> {
        let statuses = Statuses {
            warning: overrides.warning_status.unwrap_or(self.statuses.warning),
            disabled: overrides.disabled_status.unwrap_or(self.statuses.disabled),
        };
        // The command line's directory wins over the file's, the file's
        // over systemd's and the default.
        let state_dir = match (&overrides.state_dir, self.state_dir) {
            (Some(dir), _) => StateDir::given(dir.clone()),
            (None, Some(dir)) => StateDir::given(dir),
            (None, None) => overrides.fallback_state_dir.clone().unwrap_or_else(|| {
                // The user's own default, without the environment's say
                // (XDG_RUNTIME_DIR): /run/inetd-health for root, else
                // /tmp/inetd-health-UID, never a name others could
                // take first.
                crate::state::default_dir(crate::sys::euid(), None)
            }),
        };
        let options = crate::Options {
            limits: crate::Limits {
                read_timeout: overrides
                    .read_timeout
                    .or(self.read_timeout)
                    .unwrap_or(DEFAULT_TIMEOUT),
                ..crate::Limits::default()
            },
            ..crate::Options::default()
        };
        let mut service = crate::Service::new(self.checks, self.routes, statuses, state_dir);
        if let Some(nets) = overrides.allow.clone().or(self.allow) {
            service = service.with_allowlist(crate::allow::Allowlist::new(nets));
        }
        let agent = match (&overrides.agent, self.agent) {
            (None, agent) => agent,
            (Some(over), from_file) => {
                let mut settings = from_file.unwrap_or_default();
                if let Some(route) = &over.route {
                    settings.route = route.clone();
                }
                if let Some(wait) = over.wait {
                    settings.wait = wait;
                }
                if let Some(weight) = over.warning_weight {
                    settings.warning_weight = weight;
                }
                Some(settings)
            }
        };
        if let Some(settings) = agent {
            // The file's route was checked as it was read; an override's,
            // or the default `/` with the file's routes, here.
            crate::agent::check_route(service.routes(), &service.names(), &settings.route)?;
            service = service.with_agent(settings);
        }
        Ok((service, options))
    }
}

/// Why a config was refused. Its message starts with the file (and where
/// in it), as compilers say it, so an editor can jump there.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read, or may not be trusted.
    #[error("{}: {why}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
    /// Something in it is wrong.
    #[error("{}:{line}:{column}: {message}", path.display())]
    At {
        /// The file.
        path: PathBuf,
        /// The line, from 1.
        line: usize,
        /// The column, from 1, in characters.
        column: usize,
        /// What is wrong.
        message: String,
    },
}

/// Reads, checks and parses the config file at `path`.
///
/// The checks ([`TRUST`]) are made on the opened file: a regular file, at
/// most 1 MiB, not writable by group or others, owned by the effective user
/// or root.
///
/// # Errors
/// [`ConfigError`], naming the file and, for what is inside, the line and
/// column.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let (file, st) = open_trusted(path)?;
    parse(&read_text(file, &st, path)?, path)
}

/// Opens the config file and makes the checks [`load`] describes on it.
fn open_trusted(path: &Path) -> Result<(std::fs::File, Stat), ConfigError> {
    let refuse = |why: String| ConfigError::File {
        path: path.to_owned(),
        why,
    };
    let file = std::fs::File::open(path).map_err(|e| refuse(sys::io_reason(&e)))?;
    let st = sys::fstat(file.as_fd()).map_err(|e| refuse(sys::io_reason(&e)))?;
    TRUST.check(&st, sys::euid()).map_err(|refusal| {
        refuse(match refusal {
            Untrusted::WritableByOthers { .. } => {
                format!("refused: {refusal}, and it names programs to run; chmod go-w it")
            }
            _ => format!("refused: {refusal}"),
        })
    })?;
    Ok((file, st))
}

/// The text of the opened file, in one read for the size `fstat` gave.
fn read_text(file: std::fs::File, st: &Stat, path: &Path) -> Result<String, ConfigError> {
    let mut text = String::with_capacity(st.size as usize + 1);
    file.take(MAX_SIZE)
        .read_to_string(&mut text)
        .map_err(|e| ConfigError::File {
            path: path.to_owned(),
            why: sys::io_reason(&e),
        })?;
    Ok(text)
}

/// Parses config text; `path` is only for messages.
///
/// # Errors
/// [`ConfigError::At`] with the line and column of what is wrong.
pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
    let at = |span: std::ops::Range<usize>, message: String| {
        let (line, column) = line_and_column(text, span.start);
        ConfigError::At {
            path: path.to_owned(),
            line,
            column,
            message,
        }
    };
    let raw: RawConfig = toml::from_str(text).map_err(|e| {
        let message = e.message().trim().to_owned();
        at(e.span().unwrap_or(0..0), message)
    })?;

    let defaults = raw.defaults.as_ref().map(|d| d.get_ref());
    if let Some(d) = defaults {
        for (key, span) in [
            ("kind", d.kind.as_ref().map(Spanned::span)),
            ("command", d.command.as_ref().map(Spanned::span)),
            ("target", d.target.as_ref().map(Spanned::span)),
        ] {
            if let Some(span) = span {
                return Err(at(
                    span,
                    format!("{key} names one check: it goes in a [checks.NAME] table, not in [defaults]"),
                ));
            }
        }
    }

    let mut checks = Vec::new();
    for (name, check) in &raw.checks {
        if !valid_name(name.get_ref()) {
            return Err(at(
                name.span(),
                format!(
                    "bad check name {:?}: use letters, digits, '-' and '_', at most 64",
                    name.get_ref()
                ),
            ));
        }
        let spec = spec_of(name.get_ref(), check, defaults, &at)?;
        checks.push((name.get_ref().clone(), spec));
    }
    if checks.is_empty() {
        return Err(at(0..0, "no checks: add a [checks.NAME] table".into()));
    }

    let index = |name: &Spanned<String>| {
        checks
            .iter()
            .position(|(n, _)| n == name.get_ref())
            .ok_or_else(|| {
                let known: Vec<&str> = checks.iter().map(|(n, _)| n.as_str()).collect();
                at(
                    name.span(),
                    format!(
                        "no check named {:?} (the checks are: {})",
                        name.get_ref(),
                        known.join(", ")
                    ),
                )
            })
    };
    let routes = match &raw.routes {
        None => vec![Route {
            path: "/".into(),
            checks: (0..checks.len()).collect(),
        }],
        Some(table) if table.is_empty() => {
            // Every path would be a 404, the `/` that pollers and `gen`
            // point at included.
            let span = text.find("[routes]").map_or(0..0, |at| at..at + 8);
            return Err(at(
                span,
                "an empty [routes] table serves nothing: add a route, or remove the table (then / runs every check)".into(),
            ));
        }
        Some(table) => {
            let mut routes = Vec::new();
            for (path, names) in table {
                check_route_path(path.get_ref()).map_err(|why| at(path.span(), why))?;
                if names.get_ref().is_empty() {
                    return Err(at(names.span(), "a route runs at least one check".into()));
                }
                let mut indices = Vec::new();
                for name in names.get_ref() {
                    let i = index(name)?;
                    if indices.contains(&i) {
                        return Err(at(
                            name.span(),
                            format!("{:?} is listed twice", name.get_ref()),
                        ));
                    }
                    indices.push(i);
                }
                routes.push(Route {
                    path: path.get_ref().clone(),
                    checks: indices,
                });
            }
            routes
        }
    };

    let status =
        |value: &Option<Spanned<u16>>, allowed: [u16; 2], default: u16, key: &str| match value {
            None => Ok(default),
            Some(v) if allowed.contains(v.get_ref()) => Ok(*v.get_ref()),
            Some(v) => Err(at(
                v.span(),
                format!("{key} is {} or {}", allowed[0], allowed[1]),
            )),
        };
    let allow = match &raw.allow {
        None => None,
        Some(list) => Some(
            list.iter()
                .map(|entry| {
                    crate::allow::parse_net(entry.get_ref()).map_err(|why| at(entry.span(), why))
                })
                .collect::<Result<Vec<_>, _>>()?,
        ),
    };
    let agent_settings =
        raw.agent_route.is_some() || raw.agent_wait.is_some() || raw.agent_warning_weight.is_some();
    let agent = match raw.agent.as_ref().map(|a| *a.get_ref()) {
        Some(true) => {
            let mut settings = crate::agent::AgentSettings::default();
            // The route written, or the default `/`, must exist.
            let span = match &raw.agent_route {
                Some(route) => {
                    settings.route = route.get_ref().clone();
                    route.span()
                }
                None => raw.agent.as_ref().map_or(0..0, Spanned::span),
            };
            let names: Vec<String> = checks.iter().map(|(n, _)| n.clone()).collect();
            crate::agent::check_route(&Routes::Table(routes.clone()), &names, &settings.route)
                .map_err(|why| at(span, why))?;
            if let Some(wait) = &raw.agent_wait {
                settings.wait = wait.get_ref().0;
            }
            if let Some(weight) = &raw.agent_warning_weight {
                if !(1..=100).contains(weight.get_ref()) {
                    return Err(at(
                        weight.span(),
                        "agent-warning-weight is 1 to 100 (percent)".into(),
                    ));
                }
                settings.warning_weight = *weight.get_ref();
            }
            Some(settings)
        }
        _ if agent_settings => {
            let span = raw
                .agent_route
                .as_ref()
                .map(Spanned::span)
                .or(raw.agent_wait.as_ref().map(Spanned::span))
                .or(raw.agent_warning_weight.as_ref().map(Spanned::span))
                .unwrap_or(0..0);
            return Err(at(span, "agent settings without agent = true".into()));
        }
        _ => None,
    };
    Ok(Config {
        agent,
        allow,
        checks,
        routes: Routes::Table(routes),
        read_timeout: raw.read_timeout.map(|d| d.into_inner().0),
        state_dir: raw.state_dir.map(|d| PathBuf::from(d.into_inner())),
        statuses: Statuses {
            warning: status(&raw.warning_status, [200, 429], 200, "warning-status")?,
            disabled: status(&raw.disabled_status, [503, 404], 503, "disabled-status")?,
        },
    })
}

/// Check names go into URLs (`/ready/NAME`), metric labels and logs.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

fn check_route_path(path: &str) -> Result<(), String> {
    let ok = path.starts_with('/')
        && path.len() <= 200
        && (path == "/" || !path.ends_with('/'))
        && !path.contains("//")
        && path
            .chars()
            .all(|c| c.is_ascii_graphic() && !matches!(c, '?' | '#' | '%'));
    if !ok {
        return Err(format!(
            "bad route {path:?}: a path like /ready (no query, no trailing slash, no spaces)"
        ));
    }
    if path == METRICS {
        return Err(format!(
            "{METRICS} is where Prometheus reads every check; choose another path"
        ));
    }
    Ok(())
}

/// The 1-based line and character column of byte `offset` in `text`.
fn line_and_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

type At<'a> = dyn Fn(std::ops::Range<usize>, String) -> ConfigError + 'a;

/// The spec of check `name`, its own settings over `defaults`.
fn spec_of(
    name: &str,
    check: &Spanned<RawCheck>,
    defaults: Option<&RawCheck>,
    at: &At<'_>,
) -> Result<Spec, ConfigError> {
    let c = check.get_ref();
    let Some(kind_name) = &c.kind else {
        return Err(at(
            check.span(),
            format!("check {name:?} has no kind (exec, tcp, mariadb, galera or replica)"),
        ));
    };
    // Settings a kind does not take are an error in its own table (a typo,
    // or a check of another kind in mind) and ignored in [defaults], which
    // serve checks of every kind.
    let takes: &[&str] = match kind_name.get_ref().as_str() {
        "exec" => &["command", "nagios"],
        "tcp" => &["target"],
        "mariadb" => &["socket", "host", "port", "defaults-extra-file"],
        "galera" => &[
            "socket",
            "host",
            "port",
            "defaults-extra-file",
            "available-when-donor",
            "read-only-is-down",
        ],
        "replica" => &[
            "socket",
            "host",
            "port",
            "defaults-extra-file",
            "max-lag",
            "connection-name",
        ],
        other => {
            return Err(at(
                kind_name.span(),
                format!("unknown kind {other:?}: use exec, tcp, mariadb, galera or replica"),
            ))
        }
    };
    for (key, span) in c.kind_settings() {
        if !takes.contains(&key) {
            return Err(at(
                span,
                format!("{key} is not a setting of a {} check", kind_name.get_ref()),
            ));
        }
    }
    // The check's own value, else the default's.
    macro_rules! get {
        ($field:ident) => {
            c.$field
                .as_ref()
                .or_else(|| defaults.and_then(|d| d.$field.as_ref()))
                .map(|v| v.get_ref().clone())
        };
    }
    let server = || -> Result<Server, ConfigError> {
        let socket = get!(socket);
        if let Some(s) = &c.socket {
            if c.host.is_some() || c.port.is_some() {
                return Err(at(
                    s.span(),
                    "socket and host/port exclude each other".into(),
                ));
            }
        }
        Ok(Server {
            socket: socket.map(PathBuf::from),
            host: get!(host),
            port: match get!(port) {
                Some(0) => {
                    let span = c.port.as_ref().map_or(check.span(), Spanned::span);
                    return Err(at(span, "port 0 is not a port".into()));
                }
                p => p,
            },
            defaults_extra_file: get!(defaults_extra_file).map(PathBuf::from),
        })
    };
    let need = |key: &str| {
        at(
            check.span(),
            format!("a {} check needs {key}", kind_name.get_ref()),
        )
    };
    let kind = match kind_name.get_ref().as_str() {
        "exec" => {
            let command = c
                .command
                .as_ref()
                .ok_or_else(|| need("command = [\"PROGRAM\", \"ARG\"…]"))?;
            if command.get_ref().is_empty() || command.get_ref()[0].is_empty() {
                return Err(at(
                    command.span(),
                    "command names at least a program".into(),
                ));
            }
            Kind::Exec {
                command: command.get_ref().iter().map(OsString::from).collect(),
                nagios: get!(nagios).unwrap_or(false),
            }
        }
        "tcp" => {
            let target = c
                .target
                .as_ref()
                .ok_or_else(|| need("target = \"HOST:PORT\""))?;
            if crate::check::TcpCheck::new(target.get_ref()).is_err() {
                return Err(at(
                    target.span(),
                    format!("bad target {:?}: expected HOST:PORT", target.get_ref()),
                ));
            }
            Kind::Tcp {
                target: target.get_ref().clone(),
            }
        }
        "mariadb" => Kind::Mariadb(server()?),
        "galera" => {
            let server = server()?;
            if server.defaults_extra_file.is_none() {
                return Err(need(
                    "defaults-extra-file (it reads the node's state over a login)",
                ));
            }
            Kind::Galera {
                server,
                available_when_donor: get!(available_when_donor).unwrap_or(false),
                read_only_is_down: get!(read_only_is_down).unwrap_or(false),
            }
        }
        _ => {
            let server = server()?;
            if server.defaults_extra_file.is_none() {
                return Err(need(
                    "defaults-extra-file (it reads the replica's state over a login)",
                ));
            }
            let max_lag = get!(max_lag).ok_or_else(|| need("max-lag = SECONDS"))?;
            Kind::Replica {
                server,
                max_lag,
                connection_name: get!(connection_name),
            }
        }
    };
    let max_concurrent = get!(max_concurrent);
    if let Some(n) = max_concurrent {
        if !(1..=1024).contains(&n) {
            let span = c
                .max_concurrent
                .as_ref()
                .or(defaults.and_then(|d| d.max_concurrent.as_ref()))
                .map_or(check.span(), Spanned::span);
            return Err(at(span, "max-concurrent is 1 to 1024".into()));
        }
    }
    Ok(Spec {
        kind,
        timeout: get!(timeout).map_or(DEFAULT_TIMEOUT, |d| d.0),
        warning_is_down: get!(warning_is_down).unwrap_or(false),
        show_output: get!(show_output).unwrap_or(false),
        disable_file: get!(disable_file).map(PathBuf::from),
        cache_ttl: get!(cache_ttl).map(|d| d.0),
        max_stale: get!(max_stale).map(|d| d.0),
        max_concurrent,
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawConfig {
    read_timeout: Option<Spanned<Dur>>,
    state_dir: Option<Spanned<String>>,
    warning_status: Option<Spanned<u16>>,
    disabled_status: Option<Spanned<u16>>,
    allow: Option<Vec<Spanned<String>>>,
    agent: Option<Spanned<bool>>,
    agent_route: Option<Spanned<String>>,
    agent_wait: Option<Spanned<Dur>>,
    agent_warning_weight: Option<Spanned<u8>>,
    defaults: Option<Spanned<RawCheck>>,
    #[serde(default)]
    checks: BTreeMap<Spanned<String>, Spanned<RawCheck>>,
    routes: Option<BTreeMap<Spanned<String>, Spanned<Names>>>,
}

/// A route's check names, each with where it is written.
type Names = Vec<Spanned<String>>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawCheck {
    kind: Option<Spanned<String>>,
    // exec
    command: Option<Spanned<Vec<String>>>,
    nagios: Option<Spanned<bool>>,
    // tcp
    target: Option<Spanned<String>>,
    // mariadb, galera, replica
    socket: Option<Spanned<String>>,
    host: Option<Spanned<String>>,
    port: Option<Spanned<u16>>,
    defaults_extra_file: Option<Spanned<String>>,
    available_when_donor: Option<Spanned<bool>>,
    read_only_is_down: Option<Spanned<bool>>,
    max_lag: Option<Spanned<u64>>,
    connection_name: Option<Spanned<String>>,
    // every kind
    timeout: Option<Spanned<Dur>>,
    warning_is_down: Option<Spanned<bool>>,
    show_output: Option<Spanned<bool>>,
    disable_file: Option<Spanned<String>>,
    cache_ttl: Option<Spanned<Dur>>,
    max_stale: Option<Spanned<Dur>>,
    max_concurrent: Option<Spanned<u32>>,
}

impl RawCheck {
    /// The kind-specific settings present, with where they are.
    fn kind_settings(&self) -> Vec<(&'static str, std::ops::Range<usize>)> {
        let mut present = Vec::new();
        macro_rules! note {
            ($($field:ident => $key:literal),*) => {$(
                if let Some(v) = &self.$field {
                    present.push(($key, v.span()));
                }
            )*};
        }
        note!(
            command => "command",
            nagios => "nagios",
            target => "target",
            socket => "socket",
            host => "host",
            port => "port",
            defaults_extra_file => "defaults-extra-file",
            available_when_donor => "available-when-donor",
            read_only_is_down => "read-only-is-down",
            max_lag => "max-lag",
            connection_name => "connection-name"
        );
        present
    }
}

/// A duration as the command line writes it (`500ms`, `2s`, `1m`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Dur(Duration);

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        parse_duration(&text)
            .map(Dur)
            .map_err(serde::de::Error::custom)
    }
}

/// Parses `500ms`, `2s`, `1.5s`, `1m`, or a bare number of seconds; from
/// 1 ms to 24 h.
///
/// # Errors
/// What is wrong, and the forms that are right.
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

    pub(super) const EXAMPLE: &str = r#"
[defaults]
timeout = "2s"

[checks.db]
kind = "mariadb"
defaults-extra-file = "/etc/mysql/monitor.cnf"

[checks.galera]
kind = "galera"
defaults-extra-file = "/etc/mysql/monitor.cnf"
cache-ttl = "1s"

[checks.port]
kind = "tcp"
target = "127.0.0.1:3306"

[checks.disk]
kind = "exec"
command = ["/usr/lib/nagios/plugins/check_disk", "-w", "10%", "-p", "/"]
nagios = true

[routes]
"/" = ["galera"]
"/live" = ["db"]
"/ready" = ["galera", "disk", "port"]
"#;

    fn parsed(text: &str) -> Result<Config, String> {
        parse(text, Path::new("x.toml")).map_err(|e| e.to_string())
    }

    #[test]
    fn the_issue_example() {
        let c = parsed(EXAMPLE).unwrap();
        let names: Vec<&str> = c.checks.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["db", "disk", "galera", "port"]);
        let (_, galera) = &c.checks[2];
        assert_eq!(galera.cache_ttl, Some(Duration::from_secs(1)));
        assert_eq!(galera.timeout, Duration::from_secs(2));
        assert!(matches!(
            &c.checks[1].1.kind,
            Kind::Exec { nagios: true, command } if command.len() == 5
        ));
        let Routes::Table(routes) = &c.routes else {
            panic!()
        };
        let r: Vec<(&str, &[usize])> = routes
            .iter()
            .map(|r| (r.path.as_str(), r.checks.as_slice()))
            .collect();
        assert_eq!(
            r,
            [("/", &[2][..]), ("/live", &[0]), ("/ready", &[2, 1, 3])]
        );
        assert_eq!(c.statuses, Statuses::default());
    }

    #[test]
    fn no_routes_means_every_check_at_the_root() {
        let c = parsed("[checks.a]\nkind = \"tcp\"\ntarget = \"x:1\"\n[checks.b]\nkind = \"tcp\"\ntarget = \"x:2\"\n").unwrap();
        assert_eq!(
            c.routes,
            Routes::Table(vec![Route {
                path: "/".into(),
                checks: vec![0, 1]
            }])
        );
    }

    #[test]
    fn defaults_apply_where_the_kind_takes_them() {
        let c = parsed(
            "warning-status = 429\ndisabled-status = 404\nread-timeout = \"1s\"\nstate-dir = \"/run/x\"\n\
             [defaults]\ntimeout = \"500ms\"\ndefaults-extra-file = \"/etc/m.cnf\"\nwarning-is-down = true\n\
             [checks.db]\nkind = \"mariadb\"\ntimeout = \"3s\"\n\
             [checks.port]\nkind = \"tcp\"\ntarget = \"h:1\"\n",
        )
        .unwrap();
        let (db, port) = (&c.checks[0].1, &c.checks[1].1);
        assert_eq!(db.timeout, Duration::from_secs(3));
        assert_eq!(port.timeout, Duration::from_millis(500));
        assert!(db.warning_is_down && port.warning_is_down);
        assert!(
            matches!(&db.kind, Kind::Mariadb(s) if s.defaults_extra_file.as_deref() == Some(Path::new("/etc/m.cnf")))
        );
        assert_eq!(
            c.statuses,
            Statuses {
                warning: 429,
                disabled: 404
            }
        );
        assert_eq!(c.read_timeout, Some(Duration::from_secs(1)));
        assert_eq!(c.state_dir.as_deref(), Some(Path::new("/run/x")));
        assert_eq!(c.allow, None);
        let c = parsed(
            "allow = [\"127.0.0.0/8\", \"::1\"]\n[checks.a]\nkind = \"tcp\"\ntarget = \"x:1\"\n",
        )
        .unwrap();
        assert_eq!(c.allow.unwrap().len(), 2);
        let e = parsed(
            "allow = [\"127.0.0.0/8\", \"lan\"]\n[checks.a]\nkind = \"tcp\"\ntarget = \"x:1\"\n",
        )
        .unwrap_err();
        assert!(
            e.starts_with("x.toml:1:25: \"lan\" is not an address or a network"),
            "{e}"
        );
    }

    #[test]
    fn errors_name_the_line_and_column() {
        for (text, want) in [
            (
                "[checks.a]\nkind = \"tcp\"\ntarget = \"x:1\"\ntimout = \"2s\"\n",
                "x.toml:4:1: unknown field `timout`",
            ),
            (
                "[checks.a]\ntarget = \"x:1\"\n",
                "x.toml:1:1: check \"a\" has no kind (exec, tcp, mariadb, galera or replica)",
            ),
            (
                "[checks.a]\nkind = \"tcpp\"\n",
                "x.toml:2:8: unknown kind \"tcpp\": use exec, tcp, mariadb, galera or replica",
            ),
            (
                "[checks.a]\nkind = \"tcp\"\ntarget = \"x:1\"\ntimeout = \"2 weeks\"\n",
                "x.toml:4:11: \"2 weeks\": unknown unit \" weeks\" (use ms, s or m)",
            ),
            (
                "[checks.a]\nkind = \"tcp\"\ntarget = \"x:1\"\nmax-lag = 3\n",
                "x.toml:4:11: max-lag is not a setting of a tcp check",
            ),
            (
                "[checks.a]\nkind = \"tcp\"\ntarget = \"x:1\"\n[routes]\n\"/ready\" = [\"a\", \"b\"]\n",
                "x.toml:5:18: no check named \"b\" (the checks are: a)",
            ),
            (
                "[checks.a]\nkind = \"exec\"\n",
                "x.toml:1:1: a exec check needs command = [\"PROGRAM\", \"ARG\"…]",
            ),
            (
                "[checks.a]\nkind = \"tcp\"\ntarget = \"nohost\"\n",
                "x.toml:3:10: bad target \"nohost\": expected HOST:PORT",
            ),
            (
                "[checks.a]\nkind = \"tcp\"\ntarget = \"x:1\"\n[routes]\n\"/metrics\" = [\"a\"]\n",
                "x.toml:5:1: /metrics is where Prometheus reads every check; choose another path",
            ),
            (
                "[checks.\"a b\"]\nkind = \"tcp\"\ntarget = \"x:1\"\n",
                "x.toml:1:9: bad check name \"a b\": use letters, digits, '-' and '_', at most 64",
            ),
            (
                "[defaults]\nkind = \"tcp\"\n[checks.a]\nkind = \"tcp\"\ntarget = \"x:1\"\n",
                "x.toml:2:8: kind names one check: it goes in a [checks.NAME] table, not in [defaults]",
            ),
            (
                "warning-status = 500\n[checks.a]\nkind = \"tcp\"\ntarget = \"x:1\"\n",
                "x.toml:1:18: warning-status is 200 or 429",
            ),
            (
                "[checks.a]\nkind = \"galera\"\n",
                "x.toml:1:1: a galera check needs defaults-extra-file (it reads the node's state over a login)",
            ),
            ("", "x.toml:1:1: no checks: add a [checks.NAME] table"),
            (
                "[checks.a]\nkind = \"tcp\"\ntarget = \"x:1\"\n[routes]\n",
                "x.toml:4:1: an empty [routes] table serves nothing: add a route, or remove the table (then / runs every check)",
            ),
            // The agent's default route must exist as much as a written one.
            (
                "agent = true\n[checks.a]\nkind = \"tcp\"\ntarget = \"x:1\"\n[routes]\n\"/ready\" = [\"a\"]\n",
                "x.toml:1:9: agent-route \"/\" is not a route (the routes are: /ready): set agent-route to one",
            ),
            (
                "agent = true\nagent-route = \"/live\"\n[checks.a]\nkind = \"tcp\"\ntarget = \"x:1\"\n[routes]\n\"/ready\" = [\"a\"]\n",
                "x.toml:2:15: agent-route \"/live\" is not a route (the routes are: /ready): set agent-route to one",
            ),
            (
                "agent = true\nagent-route = \"/ready?x=1\"\n[checks.a]\nkind = \"tcp\"\ntarget = \"x:1\"\n[routes]\n\"/ready\" = [\"a\"]\n",
                "x.toml:2:15: agent-route \"/ready?x=1\": a path like /ready, without a query",
            ),
            ("[checks.a\n", "x.toml:1:10: "),
        ] {
            let got = parsed(text).unwrap_err();
            assert!(got.starts_with(want), "{text:?}:\n got {got:?}\nwant {want:?}");
        }
    }

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
    fn a_file_others_can_write_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("ih-config-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("c.toml");
        std::fs::write(&file, "[checks.a]\nkind = \"tcp\"\ntarget = \"x:1\"\n").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(load(&file).unwrap().checks.len(), 1);
        for mode in [0o664, 0o646] {
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode)).unwrap();
            let e = load(&file).unwrap_err().to_string();
            assert!(e.contains("refused: writable by group or others"), "{e}");
        }
        assert!(load(&dir.join("missing.toml"))
            .unwrap_err()
            .to_string()
            .ends_with("missing.toml: no such file or directory"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
