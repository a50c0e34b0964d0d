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
//! Credentials stay in option files (`defaults-extra-file`), password
//! files (`passfile`) and credentials files (`credentials-file`).

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::Read as _;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Deserializer};
use toml::Spanned;

use crate::check::postgres::{self as pg, Lagging, Role};
use crate::check::redis::Role as RedisRole;
use crate::outcome::Statuses;
use crate::route::{Route, Routes, METRICS};
use crate::spec::{
    split_host_port, Kind, PgServer, RedisServer, Server, Spec, SpecError, DEFAULT_TIMEOUT,
};
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
    /// `tls-cert`, `tls-key` and the rest: HTTPS on the check port.
    #[cfg(feature = "tls")]
    pub tls: Option<crate::tls::TlsSettings>,
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
    /// `--tls-cert` and the rest: replace the file's TLS settings whole.
    #[cfg(feature = "tls")]
    pub tls: Option<crate::tls::TlsSettings>,
    /// One process serves many connections (`--listen`, systemd
    /// `Accept=no`): TLS sessions resume from this process's memory, not
    /// from a ticket key kept in the state directory.
    pub long_lived: bool,
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
            #[cfg(feature = "tls")]
            tls: None,
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
        #[cfg(feature = "tls")]
        let state_dir_for_tickets = state_dir.clone();
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
        #[cfg(feature = "tls")]
        if let Some(settings) = overrides.tls.clone().or(self.tls) {
            let tickets = if overrides.long_lived {
                crate::tls::Tickets::Process
            } else {
                crate::tls::Tickets::Kept(state_dir_for_tickets)
            };
            let tls = crate::tls::Tls::load(settings, tickets).map_err(|e| e.to_string())?;
            service = service.with_tls(std::sync::Arc::new(tls));
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
        // A role serves the kinds that take it; one that none takes is
        // wrong whichever checks there are.
        if let Some(role) = &d.role {
            if pg_role(role).is_err() && redis_role(role).is_err() {
                return Err(at(
                    role.span(),
                    format!(
                        "role {:?}: use primary, replica or any (and read-write or read-only for postgres, master or slave for redis)",
                        role.get_ref()
                    ),
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
    let tls = tls_settings(&raw).map_err(|(span, why)| at(span, why))?;
    #[cfg(not(feature = "tls"))]
    if let Some(span) = tls {
        return Err(at(span, "this build has no TLS (the tls feature)".into()));
    }
    Ok(Config {
        #[cfg(feature = "tls")]
        tls,
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

/// `tls-cert`, `tls-key`, `tls-client-ca`, `tls-client-auth`,
/// `tls-plaintext`: all or nothing of the certificate and key, and the
/// rest only with them.
#[cfg(feature = "tls")]
fn tls_settings(
    raw: &RawConfig,
) -> Result<Option<crate::tls::TlsSettings>, (std::ops::Range<usize>, String)> {
    let (cert, key) = match (&raw.tls_cert, &raw.tls_key) {
        (Some(cert), Some(key)) => (cert, key),
        (None, None) => {
            let stray = [
                raw.tls_client_ca.as_ref().map(Spanned::span),
                raw.tls_client_auth.as_ref().map(Spanned::span),
                raw.tls_plaintext.as_ref().map(Spanned::span),
            ];
            return match stray.into_iter().flatten().next() {
                Some(span) => Err((span, "TLS settings without tls-cert and tls-key".into())),
                None => Ok(None),
            };
        }
        (Some(one), None) | (None, Some(one)) => {
            return Err((
                one.span(),
                "tls-cert and tls-key go together (the certificate and its private key)".into(),
            ))
        }
    };
    let client_auth = match &raw.tls_client_auth {
        None => crate::tls::ClientAuth::Required,
        Some(v) if raw.tls_client_ca.is_none() => {
            return Err((v.span(), "tls-client-auth without tls-client-ca".into()))
        }
        Some(v) => crate::tls::ClientAuth::parse(v.get_ref()).ok_or_else(|| {
            (
                v.span(),
                "tls-client-auth is \"required\" or \"optional\"".to_owned(),
            )
        })?,
    };
    if let (Some(plain), Some(_)) = (&raw.tls_plaintext, &raw.tls_client_ca) {
        if *plain.get_ref() {
            return Err((
                plain.span(),
                "tls-plaintext with tls-client-ca: plaintext HTTP would serve clients without a certificate".into(),
            ));
        }
    }
    Ok(Some(crate::tls::TlsSettings {
        cert: PathBuf::from(cert.get_ref()),
        key: PathBuf::from(key.get_ref()),
        client_ca: raw
            .tls_client_ca
            .as_ref()
            .map(|p| PathBuf::from(p.get_ref())),
        client_auth,
        plaintext: raw.tls_plaintext.as_ref().is_some_and(|p| *p.get_ref()),
    }))
}

/// Without the tls feature: where a TLS setting is written, to refuse it.
#[cfg(not(feature = "tls"))]
fn tls_settings(
    raw: &RawConfig,
) -> Result<Option<std::ops::Range<usize>>, (std::ops::Range<usize>, String)> {
    Ok([
        raw.tls_cert.as_ref().map(Spanned::span),
        raw.tls_key.as_ref().map(Spanned::span),
        raw.tls_client_ca.as_ref().map(Spanned::span),
        raw.tls_client_auth.as_ref().map(Spanned::span),
        raw.tls_plaintext.as_ref().map(Spanned::span),
    ]
    .into_iter()
    .flatten()
    .next())
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

/// The kinds, as messages list them.
const KINDS: &str = "exec, tcp, mariadb, galera, replica, postgres or redis";

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
            format!("check {name:?} has no kind ({KINDS})"),
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
        "postgres" => &[
            "host",
            "port",
            "user",
            "dbname",
            "passfile",
            "application_name",
            "role",
            "max-lag-bytes",
            "max-lag",
            "streaming",
            "primary",
            "lagging",
        ],
        "redis" => &[
            "host",
            "port",
            "socket",
            "credentials-file",
            "role",
            "min-replicas",
            "max-link-age",
            "max-lag-bytes",
            "min-uptime",
            "sentinels",
            "master-name",
            "address",
        ],
        other => {
            return Err(at(
                kind_name.span(),
                format!("unknown kind {other:?}: use {KINDS}"),
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
    // The same, spanned: for a value whose refusal points at it.
    macro_rules! spanned {
        ($field:ident) => {
            c.$field
                .as_ref()
                .or_else(|| defaults.and_then(|d| d.$field.as_ref()))
        };
    }
    let port = || match spanned!(port) {
        Some(p) if *p.get_ref() == 0 => Err(at(p.span(), "port 0 is not a port".into())),
        p => Ok(p.map(|p| *p.get_ref())),
    };
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
            port: port()?,
            defaults_extra_file: get!(defaults_extra_file).map(PathBuf::from),
        })
    };
    let pg_server = || -> Result<PgServer, ConfigError> {
        let nonempty = |value: Option<&Spanned<String>>, key: &str, why: &str| match value {
            Some(v) if v.get_ref().is_empty() => {
                Err(at(v.span(), format!("{key} is empty: {why}")))
            }
            v => Ok(v.map(|v| v.get_ref().clone())),
        };
        let server = PgServer {
            host: get!(host),
            port: port()?,
            user: nonempty(
                spanned!(user),
                "user",
                "name a role, or leave user out to ping",
            )?,
            dbname: nonempty(
                spanned!(dbname),
                "dbname",
                "name a database, or leave dbname out for the user's",
            )?,
            passfile: get!(passfile).map(PathBuf::from),
            application_name: get!(application_name),
            role: match spanned!(role) {
                Some(role) => pg_role(role).map_err(|why| at(role.span(), why))?,
                None => Role::default(),
            },
            max_lag_bytes: get!(max_lag_bytes).map(|b| b.0),
            max_lag: match spanned!(max_lag) {
                Some(lag) => Some(
                    lag.get_ref()
                        .duration()
                        .map_err(|why| at(lag.span(), why))?,
                ),
                None => None,
            },
            streaming: get!(streaming),
            primary: get!(primary),
            lagging: get!(lagging).map_or(Lagging::default(), |l| l.0),
        };
        if let Some(primary) = spanned!(primary) {
            let port = server.port.unwrap_or(pg::DEFAULT_PORT);
            if pg::primary_endpoint(primary.get_ref(), port).is_none() {
                return Err(at(
                    primary.span(),
                    format!(
                        "bad primary {:?}: expected HOST, HOST:PORT, [V6]:PORT or a socket directory",
                        primary.get_ref()
                    ),
                ));
            }
        }
        // Without a user the build reads no file (it would only ping), so
        // the spec's own rule of what needs a login can be asked here,
        // where the setting's line and column are known.
        if server.user.is_none() {
            if let Err(SpecError::PgNeedsUser(key)) = server.build(&StateDir::given(PathBuf::new()))
            {
                let span = match key {
                    "role" => spanned!(role).map(Spanned::span),
                    "max-lag-bytes" => spanned!(max_lag_bytes).map(Spanned::span),
                    "max-lag" => spanned!(max_lag).map(Spanned::span),
                    "primary" => spanned!(primary).map(Spanned::span),
                    "streaming" => spanned!(streaming).map(Spanned::span),
                    "passfile" => spanned!(passfile).map(Spanned::span),
                    _ => None,
                };
                return Err(at(
                    span.unwrap_or(check.span()),
                    format!("{key} needs a login: give user (and passfile if the server asks for a password)"),
                ));
            }
        }
        Ok(server)
    };
    let redis_server = || -> Result<RedisServer, ConfigError> {
        let nonempty = |value: Option<&Spanned<String>>, key: &str, why: &str| match value {
            Some(v) if v.get_ref().is_empty() => {
                Err(at(v.span(), format!("{key} is empty: {why}")))
            }
            v => Ok(v.map(|v| v.get_ref().clone())),
        };
        if let Some(s) = &c.socket {
            if c.host.is_some() || c.port.is_some() {
                return Err(at(
                    s.span(),
                    "socket and host/port exclude each other".into(),
                ));
            }
        }
        // The check's own endpoint wins over [defaults]' (whose socket may
        // be MySQL's, for the database checks): its host or port over a
        // default socket, its socket over a default host and port.
        let own_tcp = c.host.is_some() || c.port.is_some();
        let socket = match &c.socket {
            Some(s) => Some(s),
            None if own_tcp => None,
            None => defaults.and_then(|d| d.socket.as_ref()),
        };
        let port = port()?;
        let host = nonempty(
            spanned!(host),
            "host",
            "name the server, or leave host out for 127.0.0.1",
        )?;
        let (host, port) = match socket {
            Some(_) => (None, None),
            None => (host, port),
        };
        let min_replicas = match spanned!(min_replicas) {
            Some(n) => Some(u32::try_from(*n.get_ref()).map_err(|_| {
                at(
                    n.span(),
                    format!(
                        "min-replicas {}: a number of replicas, 0 or more",
                        n.get_ref()
                    ),
                )
            })?),
            None => None,
        };
        let sentinels = match spanned!(sentinels) {
            None => None,
            Some(list) if list.get_ref().is_empty() => return Err(at(
                list.span(),
                "sentinels is empty: list each Sentinel's \"HOST:PORT\", or leave sentinels out"
                    .into(),
            )),
            Some(list) => {
                let mut seen = Vec::new();
                for sentinel in list.get_ref() {
                    let Some(address) = split_host_port(sentinel.get_ref()) else {
                        return Err(at(
                            sentinel.span(),
                            format!("bad sentinel {:?}: expected HOST:PORT", sentinel.get_ref()),
                        ));
                    };
                    // Each Sentinel votes once: a second listing would
                    // count its word twice towards the majority.
                    if seen.contains(&address) {
                        return Err(at(
                            sentinel.span(),
                            format!("sentinel {:?} is listed twice", sentinel.get_ref()),
                        ));
                    }
                    seen.push(address);
                }
                Some(list)
            }
        };
        let master_name = nonempty(
            spanned!(master_name),
            "master-name",
            "the name the Sentinels know the primary by (sentinel monitor NAME ...)",
        )?;
        let address = spanned!(address);
        if let Some(a) = address {
            if split_host_port(a.get_ref()).is_none() {
                return Err(at(
                    a.span(),
                    format!("bad address {:?}: expected IP:PORT", a.get_ref()),
                ));
            }
        }
        // What the build would refuse, refused here at the setting.
        match (sentinels, &master_name) {
            (Some(list), None) => {
                return Err(at(
                    list.span(),
                    "sentinels need master-name (the group's name in sentinel monitor)".into(),
                ))
            }
            (None, Some(_)) => {
                return Err(at(
                    spanned!(master_name).map_or(check.span(), Spanned::span),
                    "master-name without sentinels: list them (sentinels = [\"HOST:PORT\", ...]), or leave master-name out".into(),
                ))
            }
            _ => {}
        }
        match (sentinels, address, socket) {
            (None, Some(a), _) => {
                return Err(at(
                    a.span(),
                    "address without sentinels: it is this node as the Sentinels name it; list them, or leave address out".into(),
                ))
            }
            (Some(list), None, Some(_)) => {
                return Err(at(
                    list.span(),
                    crate::spec::SENTINELS_NEED_ADDRESS_WITH_SOCKET.into(),
                ))
            }
            // The Sentinels name a node by the IP it announces: a loopback
            // address, a name or no host at all never matches it.
            (Some(list), None, None) if !host.as_deref().is_some_and(crate::spec::announced_ip) => {
                return Err(at(list.span(), crate::spec::SENTINELS_NEED_ADDRESS.into()))
            }
            _ => {}
        }
        Ok(RedisServer {
            host,
            port,
            socket: socket.map(|s| PathBuf::from(s.get_ref())),
            credentials_file: nonempty(
                spanned!(credentials_file),
                "credentials-file",
                "name the file, or leave credentials-file out for a server without a password",
            )?
            .map(PathBuf::from),
            role: match spanned!(role) {
                Some(role) => redis_role(role).map_err(|why| at(role.span(), why))?,
                None => RedisRole::default(),
            },
            min_replicas,
            max_link_age: get!(max_link_age).map(|d| d.0),
            max_lag_bytes: get!(max_lag_bytes).map(|b| b.0),
            min_uptime: get!(min_uptime).map(|d| d.0),
            sentinels: sentinels.map_or(Vec::new(), |list| {
                list.get_ref().iter().map(|s| s.get_ref().clone()).collect()
            }),
            master_name,
            address: address.map(|a| a.get_ref().clone()),
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
        "replica" => {
            let server = server()?;
            if server.defaults_extra_file.is_none() {
                return Err(need(
                    "defaults-extra-file (it reads the replica's state over a login)",
                ));
            }
            let max_lag = match spanned!(max_lag) {
                None => return Err(need("max-lag = SECONDS")),
                Some(lag) => lag.get_ref().seconds().map_err(|why| at(lag.span(), why))?,
            };
            Kind::Replica {
                server,
                max_lag,
                connection_name: get!(connection_name),
            }
        }
        "postgres" => Kind::Postgres(Box::new(pg_server()?)),
        _ => Kind::Redis(Box::new(redis_server()?)),
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
    tls_cert: Option<Spanned<String>>,
    tls_key: Option<Spanned<String>>,
    tls_client_ca: Option<Spanned<String>>,
    tls_client_auth: Option<Spanned<String>>,
    tls_plaintext: Option<Spanned<bool>>,
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
    max_lag: Option<Spanned<Lag>>,
    connection_name: Option<Spanned<String>>,
    // postgres (and host, port, max-lag above)
    user: Option<Spanned<String>>,
    dbname: Option<Spanned<String>>,
    passfile: Option<Spanned<String>>,
    // libpq's spelling, and ours.
    #[serde(alias = "application_name")]
    application_name: Option<Spanned<String>>,
    // Each kind reads it its own way (`pg_role`, `redis_role`).
    role: Option<Spanned<String>>,
    max_lag_bytes: Option<Spanned<Size>>,
    streaming: Option<Spanned<bool>>,
    primary: Option<Spanned<String>>,
    lagging: Option<Spanned<PgLagging>>,
    // redis (and host, port, socket, role, max-lag-bytes above)
    credentials_file: Option<Spanned<String>>,
    min_replicas: Option<Spanned<i64>>,
    max_link_age: Option<Spanned<Dur>>,
    min_uptime: Option<Spanned<Dur>>,
    sentinels: Option<Spanned<Vec<Spanned<String>>>>,
    master_name: Option<Spanned<String>>,
    address: Option<Spanned<String>>,
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
            connection_name => "connection-name",
            user => "user",
            dbname => "dbname",
            passfile => "passfile",
            application_name => "application_name",
            role => "role",
            max_lag_bytes => "max-lag-bytes",
            streaming => "streaming",
            primary => "primary",
            lagging => "lagging",
            credentials_file => "credentials-file",
            min_replicas => "min-replicas",
            max_link_age => "max-link-age",
            min_uptime => "min-uptime",
            sentinels => "sentinels",
            master_name => "master-name",
            address => "address"
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

/// `max-lag` as written: whole seconds (`30`), as a replica check takes
/// it, or a duration (`"30s"`), which a postgres check takes too.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Lag {
    Seconds(i64),
    Text(String),
}

impl Lag {
    /// A replica check's lag: whole seconds, as it has always been.
    fn seconds(&self) -> Result<u64, String> {
        match self {
            Lag::Seconds(n) => {
                u64::try_from(*n).map_err(|_| format!("max-lag {n}: seconds, 0 or more"))
            }
            Lag::Text(text) => Err(format!(
                "max-lag {text:?}: a replica check takes whole seconds, unquoted (max-lag = 30)"
            )),
        }
    }

    /// A postgres check's lag: a duration, a bare number being seconds as
    /// in any duration (so that a `[defaults]` max-lag serves both kinds).
    fn duration(&self) -> Result<Duration, String> {
        match self {
            Lag::Seconds(n) => parse_duration(&n.to_string()),
            Lag::Text(text) => parse_duration(text),
        }
    }
}

impl<'de> Deserialize<'de> for Lag {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Lag;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("whole seconds (30) or a duration (\"30s\")")
            }
            fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<Lag, E> {
                Ok(Lag::Seconds(n))
            }
            fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<Lag, E> {
                i64::try_from(n)
                    .map(Lag::Seconds)
                    .map_err(|_| E::custom(format!("max-lag {n} is out of range")))
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Lag, E> {
                Ok(Lag::Text(text.to_owned()))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// `max-lag-bytes`: bytes (`16777216`), or a size with PostgreSQL's units
/// (`"16MB"`, [`parse_size`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Size(u64);

impl<'de> Deserialize<'de> for Size {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        const WANT: &str = "bytes (16777216), or a number and a unit of B, kB, MB, GB or TB (1024-based) without a space (\"16MB\")";
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Size;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str(WANT)
            }
            fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<Size, E> {
                u64::try_from(n)
                    .map(Size)
                    .map_err(|_| E::custom(format!("{n} is not a size: {WANT}")))
            }
            fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<Size, E> {
                Ok(Size(n))
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Size, E> {
                parse_size(text)
                    .map(Size)
                    .ok_or_else(|| E::custom(format!("{text:?} is not a size: {WANT}")))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// A postgres check's `role`.
fn pg_role(text: &Spanned<String>) -> Result<Role, String> {
    let text = text.get_ref();
    Role::parse(text)
        .ok_or_else(|| format!("role {text:?}: use primary, replica, read-write, read-only or any"))
}

/// A redis check's `role`: Redis's own words (master, slave) are read
/// too.
fn redis_role(text: &Spanned<String>) -> Result<RedisRole, String> {
    let text = text.get_ref();
    RedisRole::parse(text).ok_or_else(|| {
        format!("role {text:?}: a redis check takes primary (or master), replica (or slave) or any")
    })
}

/// A postgres check's `lagging`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct PgLagging(Lagging);

impl<'de> Deserialize<'de> for PgLagging {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Lagging::parse(&text).map(PgLagging).ok_or_else(|| {
            serde::de::Error::custom(format!("lagging {text:?}: use down or warning"))
        })
    }
}

/// Parses a size as PostgreSQL and Patroni write one: digits, then at
/// most a unit of `B`, `kB` (or `KB`), `MB`, `GB` or `TB`, 1024-based, as
/// PostgreSQL's memory units are: `1048576`, `512kB`, `16MB`. Nothing
/// else: no space, sign, decimal point or other unit, and nothing beyond
/// 2^64 bytes.
///
/// The grammar of Patroni's `?lag=` ([`crate::route::parse_lag`]), so
/// that a limit reads the same in the file, on the command line and in a
/// query.
pub fn parse_size(text: &str) -> Option<u64> {
    crate::route::parse_lag(text)
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

    #[cfg(feature = "tls")]
    #[test]
    fn tls_settings_go_together_or_are_refused() {
        let check = "[checks.a]\nkind = \"tcp\"\ntarget = \"x:1\"\n";
        let c = parsed(&format!(
            "tls-cert = \"c.pem\"\ntls-key = \"k.pem\"\ntls-client-ca = \"ca.pem\"\ntls-client-auth = \"optional\"\n{check}"
        ))
        .unwrap();
        let tls = c.tls.unwrap();
        assert_eq!(tls.client_auth, crate::tls::ClientAuth::Optional);
        assert!(!tls.plaintext);
        assert_eq!(parsed(check).unwrap().tls, None);
        for (text, want) in [
            ("tls-cert = \"c.pem\"\n", "x.toml:1:12: tls-cert and tls-key go together"),
            ("tls-key = \"k.pem\"\n", "x.toml:1:11: tls-cert and tls-key go together"),
            (
                "tls-plaintext = true\n",
                "x.toml:1:17: TLS settings without tls-cert and tls-key",
            ),
            (
                "tls-cert = \"c\"\ntls-key = \"k\"\ntls-client-auth = \"optional\"\n",
                "x.toml:3:19: tls-client-auth without tls-client-ca",
            ),
            (
                "tls-cert = \"c\"\ntls-key = \"k\"\ntls-client-ca = \"a\"\ntls-client-auth = \"maybe\"\n",
                "x.toml:4:19: tls-client-auth is \"required\" or \"optional\"",
            ),
            (
                "tls-cert = \"c\"\ntls-key = \"k\"\ntls-client-ca = \"a\"\ntls-plaintext = true\n",
                "x.toml:4:17: tls-plaintext with tls-client-ca",
            ),
        ] {
            let e = parsed(&format!("{text}{check}")).unwrap_err();
            assert!(e.starts_with(want), "{text}: {e}");
        }
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
                "x.toml:1:1: check \"a\" has no kind (exec, tcp, mariadb, galera, replica, postgres or redis)",
            ),
            (
                "[checks.a]\nkind = \"tcpp\"\n",
                "x.toml:2:8: unknown kind \"tcpp\": use exec, tcp, mariadb, galera, replica, postgres or redis",
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

    /// The one postgres check of `text` (after a `[checks.pg]` header and
    /// its kind), or the error.
    fn pg(text: &str) -> Result<PgServer, String> {
        let c = parsed(&format!("[checks.pg]\nkind = \"postgres\"\n{text}"))?;
        match &c.checks[0].1.kind {
            Kind::Postgres(server) => Ok((**server).clone()),
            other => panic!("{other:?}"),
        }
    }

    /// `pg`'s error (line 3 is the first line after the kind).
    fn pg_refused(text: &str) -> String {
        pg(text).unwrap_err()
    }

    #[test]
    fn postgres_takes_libpqs_names() {
        let server = pg("host = \"db1.example\"\nport = 5433\nuser = \"monitor\"\n\
             dbname = \"postgres\"\npassfile = \"/etc/inetd-health/pgpass\"\n\
             application_name = \"lb-check\"\nrole = \"replica\"\nmax-lag-bytes = \"16MB\"\n\
             max-lag = \"30s\"\nstreaming = false\nprimary = \"db0.example:5434\"\n\
             lagging = \"warning\"\n")
        .unwrap();
        assert_eq!(
            server,
            PgServer {
                host: Some("db1.example".into()),
                port: Some(5433),
                user: Some("monitor".into()),
                dbname: Some("postgres".into()),
                passfile: Some(PathBuf::from("/etc/inetd-health/pgpass")),
                application_name: Some("lb-check".into()),
                role: Role::Replica,
                max_lag_bytes: Some(16 << 20),
                max_lag: Some(Duration::from_secs(30)),
                streaming: Some(false),
                primary: Some("db0.example:5434".into()),
                lagging: Lagging::Warning,
            }
        );
        // Nothing but the kind: a ping of the default socket.
        assert_eq!(pg("").unwrap(), PgServer::default());
        // A socket directory is a host, as libpq has it.
        assert_eq!(
            pg("host = \"/run/postgresql\"\n").unwrap().host.as_deref(),
            Some("/run/postgresql")
        );
        // Our spelling of application_name too, but not both.
        assert_eq!(
            pg("application-name = \"x\"\n")
                .unwrap()
                .application_name
                .as_deref(),
            Some("x")
        );
        let e = pg_refused("application_name = \"x\"\napplication-name = \"y\"\n");
        assert!(e.contains("duplicate field `application-name`"), "{e}");
        // Settings the kinds share come from [defaults]; the MariaDB
        // kinds ignore the postgres ones there.
        let c = parsed(
            "[defaults]\nhost = \"db1\"\nuser = \"monitor\"\nrole = \"primary\"\n\
             [checks.pg]\nkind = \"postgres\"\n[checks.my]\nkind = \"mariadb\"\n",
        )
        .unwrap();
        let Kind::Postgres(server) = &c.checks[1].1.kind else {
            panic!("{:?}", c.checks[1])
        };
        assert_eq!(
            (server.host.as_deref(), server.user.as_deref(), server.role),
            (Some("db1"), Some("monitor"), Role::Primary)
        );
        assert!(
            matches!(&c.checks[0].1.kind, Kind::Mariadb(s) if s.host.as_deref() == Some("db1"))
        );
    }

    #[test]
    fn postgres_roles_and_lagging() {
        for (text, role) in [
            ("primary", Role::Primary),
            ("replica", Role::Replica),
            ("any", Role::Any),
            ("read-write", Role::ReadWrite),
            ("read-only", Role::ReadOnly),
        ] {
            let server = pg(&format!("user = \"u\"\nrole = \"{text}\"\n")).unwrap();
            assert_eq!(server.role, role, "{text}");
        }
        assert_eq!(
            pg_refused("user = \"u\"\nrole = \"leader\"\n"),
            "x.toml:4:8: role \"leader\": use primary, replica, read-write, read-only or any"
        );
        assert_eq!(pg("lagging = \"down\"\n").unwrap().lagging, Lagging::Down);
        assert_eq!(
            pg("lagging = \"warning\"\n").unwrap().lagging,
            Lagging::Warning
        );
        assert_eq!(
            pg_refused("lagging = \"warn\"\n"),
            "x.toml:3:11: lagging \"warn\": use down or warning"
        );
        assert_eq!(
            pg("user = \"u\"\nstreaming = true\n").unwrap().streaming,
            Some(true)
        );
    }

    #[test]
    fn postgres_lag_in_bytes_and_in_time() {
        let bytes = |v: &str| pg(&format!("user = \"u\"\nmax-lag-bytes = {v}\n"));
        assert_eq!(bytes("1048576").unwrap().max_lag_bytes, Some(1 << 20));
        assert_eq!(bytes("\"512kB\"").unwrap().max_lag_bytes, Some(512 << 10));
        assert_eq!(bytes("\"1GB\"").unwrap().max_lag_bytes, Some(1 << 30));
        assert_eq!(bytes("0").unwrap().max_lag_bytes, Some(0));
        for bad in ["\"16 MB\"", "\"16mb\"", "\"1.5GB\"", "-1", "\"\"", "1.5"] {
            let e = bytes(bad).unwrap_err();
            assert!(e.starts_with("x.toml:4:17: "), "{bad}: {e}");
        }
        assert_eq!(
            bytes("\"16 MB\"").unwrap_err(),
            "x.toml:4:17: \"16 MB\" is not a size: bytes (16777216), or a number and a unit of \
             B, kB, MB, GB or TB (1024-based) without a space (\"16MB\")"
        );

        let time = |v: &str| pg(&format!("user = \"u\"\nmax-lag = {v}\n"));
        assert_eq!(
            time("\"30s\"").unwrap().max_lag,
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            time("\"500ms\"").unwrap().max_lag,
            Some(Duration::from_millis(500))
        );
        // A bare number is seconds, as in any duration.
        assert_eq!(time("30").unwrap().max_lag, Some(Duration::from_secs(30)));
        assert_eq!(
            time("\"30 weeks\"").unwrap_err(),
            "x.toml:4:11: \"30 weeks\": unknown unit \" weeks\" (use ms, s or m)"
        );
        assert_eq!(
            time("0").unwrap_err(),
            "x.toml:4:11: \"0\" is out of range (1ms to 24h)"
        );
    }

    /// `max-lag` is a replica's whole seconds exactly as before the
    /// postgres kind shared the key.
    #[test]
    fn a_replicas_max_lag_is_still_whole_seconds() {
        let replica = |v: &str| {
            parsed(&format!(
                "[checks.r]\nkind = \"replica\"\ndefaults-extra-file = \"/m.cnf\"\nmax-lag = {v}\n"
            ))
        };
        for (v, want) in [("30", 30), ("0", 0)] {
            let c = replica(v).unwrap();
            assert!(
                matches!(c.checks[0].1.kind, Kind::Replica { max_lag, .. } if max_lag == want),
                "{v}"
            );
        }
        assert_eq!(
            replica("\"30s\"").unwrap_err(),
            "x.toml:4:11: max-lag \"30s\": a replica check takes whole seconds, unquoted (max-lag = 30)"
        );
        assert_eq!(
            replica("-1").unwrap_err(),
            "x.toml:4:11: max-lag -1: seconds, 0 or more"
        );
        assert!(replica("1.5").unwrap_err().starts_with("x.toml:4:11: "));
        // From [defaults], for both kinds.
        let c = parsed(
            "[defaults]\nmax-lag = 30\n[checks.r]\nkind = \"replica\"\ndefaults-extra-file = \"/m.cnf\"\n\
             [checks.pg]\nkind = \"postgres\"\nuser = \"u\"\n",
        )
        .unwrap();
        let Kind::Postgres(server) = &c.checks[0].1.kind else {
            panic!()
        };
        assert_eq!(server.max_lag, Some(Duration::from_secs(30)));
        assert!(matches!(
            c.checks[1].1.kind,
            Kind::Replica { max_lag: 30, .. }
        ));
    }

    #[test]
    fn a_postgres_primary_must_be_an_address() {
        for good in ["db0", "db0:5433", "[::1]:5433", "::1", "/run/postgresql"] {
            let server = pg(&format!("user = \"u\"\nprimary = \"{good}\"\n")).unwrap();
            assert_eq!(server.primary.as_deref(), Some(good));
        }
        for bad in ["", "db0:0", "db0:x", "[::1", ":5432"] {
            assert_eq!(
                pg_refused(&format!("user = \"u\"\nprimary = \"{bad}\"\n")),
                format!(
                    "x.toml:4:11: bad primary {bad:?}: expected HOST, HOST:PORT, [V6]:PORT or a socket directory"
                )
            );
        }
    }

    /// What only a login can tell is refused without a user, at the
    /// setting: the check would otherwise quietly ping.
    #[test]
    fn what_needs_a_login_needs_a_user() {
        for (text, key) in [
            ("role = \"primary\"\n", "role"),
            ("max-lag-bytes = \"16MB\"\n", "max-lag-bytes"),
            ("max-lag = \"30s\"\n", "max-lag"),
            ("primary = \"db0\"\n", "primary"),
            ("streaming = true\n", "streaming"),
            // Never read without a user: a missing file is not the reason.
            ("passfile = \"/nonexistent/pgpass\"\n", "passfile"),
        ] {
            assert_eq!(
                pg_refused(text),
                format!(
                    "x.toml:3:{}: {key} needs a login: give user (and passfile if the server asks for a password)",
                    text.find('=').unwrap() + 3
                ),
                "{text}"
            );
        }
        // From [defaults], where it is written.
        assert!(
            parsed("[defaults]\nrole = \"replica\"\n[checks.pg]\nkind = \"postgres\"\n")
                .unwrap_err()
                .starts_with("x.toml:2:8: role needs a login")
        );
        // What a ping can do.
        pg("role = \"any\"\nstreaming = false\nport = 5433\n").unwrap();
        for (text, column) in [("user = \"\"\n", 8), ("user = \"u\"\ndbname = \"\"\n", 10)] {
            let e = pg_refused(text);
            assert!(
                e.contains(&format!(":{column}: ")) && e.contains(" is empty: "),
                "{e}"
            );
        }
        assert_eq!(pg_refused("port = 0\n"), "x.toml:3:8: port 0 is not a port");
    }

    #[test]
    fn settings_of_other_kinds_are_refused() {
        for (kind, key) in [
            ("postgres", "socket = \"/run/mysqld/mysqld.sock\""),
            ("postgres", "defaults-extra-file = \"/etc/m.cnf\""),
            ("postgres", "connection-name = \"a\""),
            ("mariadb", "user = \"u\""),
            ("mariadb", "passfile = \"/p\""),
            ("replica", "role = \"replica\""),
            ("galera", "max-lag-bytes = 1"),
            ("tcp", "primary = \"db0\""),
            ("exec", "application_name = \"x\""),
            ("exec", "application-name = \"x\""),
            ("redis", "user = \"u\""),
            ("redis", "passfile = \"/p\""),
            ("redis", "defaults-extra-file = \"/etc/m.cnf\""),
            ("redis", "max-lag = 30"),
            ("redis", "primary = \"db0\""),
            ("redis", "target = \"x:1\""),
            ("postgres", "credentials-file = \"/c\""),
            ("postgres", "min-replicas = 1"),
            ("mariadb", "sentinels = [\"s:26379\"]"),
            ("galera", "master-name = \"m\""),
            ("replica", "max-link-age = \"10s\""),
            ("tcp", "address = \"10.0.0.1:6379\""),
            ("exec", "min-uptime = \"1m\""),
            ("mariadb", "role = \"primary\""),
        ] {
            let name = key
                .split(' ')
                .next()
                .unwrap()
                .replace("application-name", "application_name");
            assert_eq!(
                parsed(&format!("[checks.a]\nkind = \"{kind}\"\n{key}\n")).unwrap_err(),
                format!(
                    "x.toml:3:{}: {name} is not a setting of a {kind} check",
                    key.find('=').unwrap() + 3
                ),
            );
        }
    }

    #[test]
    fn sizes_as_postgresql_writes_them() {
        for (text, want) in [
            ("0", Some(0)),
            ("100", Some(100)),
            ("100B", Some(100)),
            ("512kB", Some(512 << 10)),
            ("512KB", Some(512 << 10)),
            ("16MB", Some(16 << 20)),
            ("1GB", Some(1 << 30)),
            ("2TB", Some(2 << 40)),
            ("18446744073709551615", Some(u64::MAX)),
            ("16777216TB", None),
            ("18446744073709551616", None),
            ("", None),
            ("MB", None),
            ("16 MB", None),
            (" 16MB", None),
            ("16MB ", None),
            ("16mb", None),
            ("16Mb", None),
            ("16kb", None),
            ("16MiB", None),
            ("16PB", None),
            ("1.5GB", None),
            ("-1", None),
            ("+1", None),
            ("0x10", None),
        ] {
            assert_eq!(parse_size(text), want, "{text:?}");
        }
    }

    /// The one redis check of `text` (after a `[checks.r]` header and its
    /// kind), or the error.
    fn redis(text: &str) -> Result<RedisServer, String> {
        let c = parsed(&format!("[checks.r]\nkind = \"redis\"\n{text}"))?;
        match &c.checks[0].1.kind {
            Kind::Redis(server) => Ok((**server).clone()),
            other => panic!("{other:?}"),
        }
    }

    /// `redis`'s error (line 3 is the first line after the kind).
    fn redis_refused(text: &str) -> String {
        redis(text).unwrap_err()
    }

    #[test]
    fn redis_takes_a_redis_operators_names() {
        let server = redis(
            "host = \"10.0.0.5\"\nport = 6380\ncredentials-file = \"/etc/inetd-health/redis.toml\"\n\
             role = \"primary\"\nmin-replicas = 1\nmax-link-age = \"10s\"\nmax-lag-bytes = \"1MB\"\n\
             min-uptime = \"30s\"\nsentinels = [\"10.0.0.7:26379\", \"[fd00::8]:26379\", \"s3:26379\"]\n\
             master-name = \"mymaster\"\naddress = \"10.0.0.5:6380\"\n",
        )
        .unwrap();
        assert_eq!(
            server,
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
                sentinels: vec![
                    "10.0.0.7:26379".into(),
                    "[fd00::8]:26379".into(),
                    "s3:26379".into()
                ],
                master_name: Some("mymaster".into()),
                address: Some("10.0.0.5:6380".into()),
            }
        );
        // Nothing set: a ping of 127.0.0.1:6379, any role.
        assert_eq!(redis("").unwrap(), RedisServer::default());
        assert_eq!(
            redis("max-lag-bytes = 1048576\nmin-replicas = 0\n").unwrap(),
            RedisServer {
                max_lag_bytes: Some(1 << 20),
                min_replicas: Some(0),
                ..RedisServer::default()
            }
        );
        let socket = redis("socket = \"/run/redis/redis-server.sock\"\n").unwrap();
        assert_eq!(
            socket.socket.as_deref(),
            Some(Path::new("/run/redis/redis-server.sock"))
        );
    }

    #[test]
    fn redis_roles_in_redis_words() {
        for (text, role) in [
            ("primary", RedisRole::Primary),
            ("master", RedisRole::Primary),
            ("replica", RedisRole::Replica),
            ("slave", RedisRole::Replica),
            ("any", RedisRole::Any),
        ] {
            let server = redis(&format!("role = \"{text}\"\n")).unwrap();
            assert_eq!(server.role, role, "{text}");
        }
        // Postgres's roles are not Redis's.
        for bad in [
            "read-write",
            "read-only",
            "standby",
            "leader",
            "Primary",
            "",
        ] {
            assert_eq!(
                redis_refused(&format!("role = \"{bad}\"\n")),
                format!(
                    "x.toml:3:8: role {bad:?}: a redis check takes primary (or master), replica (or slave) or any"
                )
            );
        }
        // Nor Redis's postgres's.
        assert_eq!(
            pg_refused("user = \"u\"\nrole = \"slave\"\n"),
            "x.toml:4:8: role \"slave\": use primary, replica, read-write, read-only or any"
        );
        // A [defaults] role serves both kinds, refused where a kind cannot
        // take it, and whatever the checks when no kind can.
        let c = parsed(
            "[defaults]\nrole = \"replica\"\nuser = \"u\"\n[checks.r]\nkind = \"redis\"\n\
             [checks.pg]\nkind = \"postgres\"\n",
        )
        .unwrap();
        assert!(matches!(&c.checks[0].1.kind, Kind::Postgres(s) if s.role == Role::Replica));
        assert!(matches!(&c.checks[1].1.kind, Kind::Redis(s) if s.role == RedisRole::Replica));
        assert_eq!(
            parsed(
                "[defaults]\nrole = \"slave\"\nuser = \"u\"\n[checks.pg]\nkind = \"postgres\"\n"
            )
            .unwrap_err(),
            "x.toml:2:8: role \"slave\": use primary, replica, read-write, read-only or any"
        );
        assert_eq!(
            parsed("[defaults]\nrole = \"read-only\"\n[checks.r]\nkind = \"redis\"\n").unwrap_err(),
            "x.toml:2:8: role \"read-only\": a redis check takes primary (or master), replica (or slave) or any"
        );
        assert_eq!(
            parsed("[defaults]\nrole = \"leader\"\n[checks.a]\nkind = \"tcp\"\ntarget = \"x:1\"\n")
                .unwrap_err(),
            "x.toml:2:8: role \"leader\": use primary, replica or any (and read-write or read-only for postgres, master or slave for redis)"
        );
    }

    #[test]
    fn redis_limits_are_checked_at_the_setting() {
        for (text, want) in [
            (
                "min-replicas = -1\n",
                "x.toml:3:16: min-replicas -1: a number of replicas, 0 or more",
            ),
            (
                "min-replicas = 4294967296\n",
                "x.toml:3:16: min-replicas 4294967296: a number of replicas, 0 or more",
            ),
            (
                "min-replicas = \"1\"\n",
                "x.toml:3:16: invalid type: string",
            ),
            (
                "max-link-age = \"10 s\"\n",
                "x.toml:3:16: \"10 s\": unknown unit \" s\" (use ms, s or m)",
            ),
            ("max-link-age = 10\n", "x.toml:3:16: invalid type: integer"),
            (
                "min-uptime = \"2d\"\n",
                "x.toml:3:14: \"2d\": unknown unit \"d\" (use ms, s or m)",
            ),
            (
                "max-lag-bytes = \"1 MB\"\n",
                "x.toml:3:17: \"1 MB\" is not a size: bytes (16777216)",
            ),
            (
                "max-lag-bytes = -1\n",
                "x.toml:3:17: -1 is not a size: bytes (16777216)",
            ),
            ("port = 0\n", "x.toml:3:8: port 0 is not a port"),
            (
                "host = \"\"\n",
                "x.toml:3:8: host is empty: name the server, or leave host out for 127.0.0.1",
            ),
            (
                "credentials-file = \"\"\n",
                "x.toml:3:20: credentials-file is empty: name the file",
            ),
            (
                "socket = \"/run/redis.sock\"\nport = 6379\n",
                "x.toml:3:10: socket and host/port exclude each other",
            ),
            (
                "host = \"h\"\nsocket = \"/run/redis.sock\"\n",
                "x.toml:4:10: socket and host/port exclude each other",
            ),
        ] {
            let got = redis_refused(text);
            assert!(
                got.starts_with(want),
                "{text:?}:\n got {got:?}\nwant {want:?}"
            );
        }
    }

    /// What `RedisServer::build` refuses of the Sentinels is refused as
    /// the file is read, at the setting; what the file accepts, the build
    /// does.
    #[test]
    fn redis_sentinels_are_checked_at_the_setting() {
        let named = "master-name = \"mymaster\"\n";
        for (text, want) in [
            (
                format!("sentinels = [\"s1:26379\", \"s2\", \"s3:26379\"]\n{named}"),
                "x.toml:3:26: bad sentinel \"s2\": expected HOST:PORT",
            ),
            (
                format!("sentinels = [\"s1:0\"]\n{named}"),
                "x.toml:3:14: bad sentinel \"s1:0\": expected HOST:PORT",
            ),
            (
                format!("sentinels = [\"s1:26379\", \"s2:26379\", \"[::1]:26379\", \"[::1]:26379\"]\n{named}"),
                "x.toml:3:53: sentinel \"[::1]:26379\" is listed twice",
            ),
            (
                format!("sentinels = [\"s1:26379\"]\n{named}"),
                "x.toml:3:13: sentinels need address (this node's IP:PORT as the sentinels name it) unless host is that IP",
            ),
            (
                format!("host = \"127.0.0.1\"\nsentinels = [\"s1:26379\"]\n{named}"),
                "x.toml:4:13: sentinels need address",
            ),
            (
                // An IPv6 address takes brackets: not host "::1", port 26379.
                format!("sentinels = [\"::1:26379\"]\n{named}"),
                "x.toml:3:14: bad sentinel \"::1:26379\": expected HOST:PORT",
            ),
            (
                format!("sentinels = []\n{named}"),
                "x.toml:3:13: sentinels is empty: list each Sentinel's \"HOST:PORT\", or leave sentinels out",
            ),
            (
                format!("sentinels = \"s1:26379\"\n{named}"),
                "x.toml:3:13: invalid type: string \"s1:26379\", expected a sequence",
            ),
            (
                "sentinels = [\"s1:26379\"]\n".into(),
                "x.toml:3:13: sentinels need master-name (the group's name in sentinel monitor)",
            ),
            (
                named.into(),
                "x.toml:3:15: master-name without sentinels: list them (sentinels = [\"HOST:PORT\", ...]), or leave master-name out",
            ),
            (
                "sentinels = [\"s1:26379\"]\nmaster-name = \"\"\n".into(),
                "x.toml:4:15: master-name is empty: the name the Sentinels know the primary by",
            ),
            (
                "address = \"10.0.0.5:6379\"\n".into(),
                "x.toml:3:11: address without sentinels: it is this node as the Sentinels name it; list them, or leave address out",
            ),
            (
                format!("sentinels = [\"s1:26379\"]\n{named}address = \"10.0.0.5\"\n"),
                "x.toml:5:11: bad address \"10.0.0.5\": expected IP:PORT",
            ),
            (
                format!("socket = \"/run/redis.sock\"\nsentinels = [\"s1:26379\"]\n{named}"),
                "x.toml:4:13: with a socket, sentinels need address (this node's IP:PORT as the sentinels name it)",
            ),
        ] {
            let got = redis_refused(&text);
            assert!(got.starts_with(want), "{text:?}:\n got {got:?}\nwant {want:?}");
        }
        // From [defaults], where it is written.
        assert_eq!(
            parsed("[defaults]\nsentinels = [\"s1:26379\"]\n[checks.r]\nkind = \"redis\"\n")
                .unwrap_err(),
            "x.toml:2:13: sentinels need master-name (the group's name in sentinel monitor)"
        );
        // What the file takes, the build does.
        for text in [
            String::new(),
            format!("sentinels = [\"s1:26379\", \"s2:26379\", \"s3:26379\"]\n{named}address = \"10.0.0.5:6379\"\n"),
            format!("host = \"10.0.0.5\"\nsentinels = [\"s1:26379\"]\n{named}"),
            format!("socket = \"/run/redis.sock\"\nsentinels = [\"s1:26379\"]\n{named}address = \"10.0.0.5:6379\"\n"),
            "socket = \"/run/redis.sock\"\nrole = \"master\"\nmin-replicas = 2\n".into(),
        ] {
            let server = redis(&text).unwrap_or_else(|e| panic!("{text:?}: {e}"));
            server
                .build()
                .unwrap_or_else(|e| panic!("{text:?}: the build refuses it: {e}"));
        }
    }

    /// Keys redis shares with other kinds keep their meaning there, and a
    /// [defaults] socket (a MySQL one, say) does not override a redis
    /// check's own host or port.
    #[test]
    fn redis_shares_keys_with_the_other_kinds() {
        let c = parsed(
            "[defaults]\nsocket = \"/run/mysqld/mysqld.sock\"\ndefaults-extra-file = \"/etc/m.cnf\"\n\
             max-lag-bytes = \"16MB\"\nuser = \"u\"\n\
             [checks.db]\nkind = \"mariadb\"\n\
             [checks.pg]\nkind = \"postgres\"\nhost = \"/run/postgresql\"\nport = 5433\n\
             [checks.r1]\nkind = \"redis\"\nport = 6380\n\
             [checks.r2]\nkind = \"redis\"\n\
             [checks.r3]\nkind = \"redis\"\nsocket = \"/run/redis.sock\"\n",
        )
        .unwrap();
        let kinds: Vec<&Kind> = c.checks.iter().map(|(_, s)| &s.kind).collect();
        assert!(matches!(kinds[0], Kind::Mariadb(s)
            if s.socket.as_deref() == Some(Path::new("/run/mysqld/mysqld.sock"))));
        assert!(matches!(kinds[1], Kind::Postgres(s)
            if s.host.as_deref() == Some("/run/postgresql") && s.port == Some(5433)
                && s.max_lag_bytes == Some(16 << 20)));
        let Kind::Redis(r1) = kinds[2] else { panic!() };
        assert_eq!((r1.socket.as_deref(), r1.port), (None, Some(6380)));
        assert_eq!(r1.max_lag_bytes, Some(16 << 20));
        let Kind::Redis(r2) = kinds[3] else { panic!() };
        assert_eq!(
            r2.socket.as_deref(),
            Some(Path::new("/run/mysqld/mysqld.sock"))
        );
        let Kind::Redis(r3) = kinds[4] else { panic!() };
        assert_eq!(r3.socket.as_deref(), Some(Path::new("/run/redis.sock")));
        // A check's own socket wins over a default host.
        let server = parsed(
            "[defaults]\nhost = \"db1\"\nport = 3307\n[checks.r]\nkind = \"redis\"\nsocket = \"/run/redis.sock\"\n",
        )
        .unwrap();
        let Kind::Redis(r) = &server.checks[0].1.kind else {
            panic!()
        };
        assert_eq!((r.host.as_deref(), r.port), (None, None));
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
