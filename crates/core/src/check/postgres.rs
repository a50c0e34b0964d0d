//! `postgres`: is the server up, and is it what this route wants (a
//! primary, a streaming replica close enough)? Natively, over the v3
//! protocol ([`crate::postgres`]): no libpq, no `psql`.
//!
//! Without a user the check pings as `pg_isready` does: a startup message
//! and one reply, then a silent close that leaves no line in the server's
//! log. With a user it logs in (trust, peer, md5 or SCRAM, the password
//! from a `.pgpass`-format file) and reads the role from what the server
//! reports at login (`in_hot_standby`, PostgreSQL 14+); a standby, or an
//! older server, gets one query for its role, WAL receiver and lag.
//!
//! Replay lag in seconds is 0 when everything received is replayed: the
//! age of the last replayed transaction is a lag only while WAL is waiting
//! to be replayed, or an idle primary would make every replica "late".

use std::fmt::Write as _;
use std::fs::File;
use std::io::{Read as _, Write as _};
use std::net::SocketAddr;
use std::os::fd::AsFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::tcp::resolve;
use super::{human_duration, Check, CheckError, Fact, Health, Verdict};
use crate::hash::{hex, sha256};
use crate::postgres::error::public_server_reason;
use crate::postgres::passfile::{self, Target};
use crate::postgres::scram::{Challenge, Keys};
use crate::postgres::{Conn, Endpoint, Login, PgError, Ping};
use crate::state::{self, StateDir};
use crate::sys::{self, trust::Untrusted};
use crate::Deadline;

/// The socket directory when no host is given (Debian's, libpq's
/// default there).
pub const DEFAULT_SOCKET_DIR: &str = "/var/run/postgresql";

/// The port when none is given.
pub const DEFAULT_PORT: u16 = 5432;

/// The user a ping names (it never logs in): a `pg_hba.conf` line for it
/// with `scram-sha-256` keeps pings out of the server's log.
pub const PROBE_USER: &str = "inetd-health-probe";

/// The `application_name` sent unless another is given.
pub const APPLICATION_NAME: &str = "inetd-health";

/// What the server must be for the check to pass.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Role {
    /// Up and accepting logins, primary or standby.
    #[default]
    Any,
    /// Not in recovery.
    Primary,
    /// In recovery (a standby), streaming unless told otherwise.
    Replica,
    /// libpq's `target_session_attrs=read-write`: not in recovery and
    /// `default_transaction_read_only` off.
    ReadWrite,
    /// libpq's `read-only`: in recovery, or `default_transaction_read_only`
    /// on.
    ReadOnly,
}

impl Role {
    /// The role's name, as the config and the command line spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Any => "any",
            Role::Primary => "primary",
            Role::Replica => "replica",
            Role::ReadWrite => "read-write",
            Role::ReadOnly => "read-only",
        }
    }

    /// Parses [`Role::as_str`]'s names (`master` and `standby` too, as
    /// Patroni and libpq say them).
    pub fn parse(text: &str) -> Option<Role> {
        Some(match text {
            "any" => Role::Any,
            "primary" | "master" => Role::Primary,
            "replica" | "standby" => Role::Replica,
            "read-write" => Role::ReadWrite,
            "read-only" => Role::ReadOnly,
            _ => return None,
        })
    }
}

/// What a standby must show besides its role.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Limits {
    /// Largest replay lag in bytes.
    pub max_lag_bytes: Option<u64>,
    /// Largest replay lag in time.
    pub max_lag: Option<Duration>,
    /// The WAL receiver must be streaming.
    pub streaming: bool,
    /// What a lag beyond the limits is: [`Health::Unhealthy`] (down, the
    /// default) or [`Health::Warning`] (HTTP's warning status, and a lower
    /// weight for HAProxy's agent: traffic eases off rather than stops).
    pub lagging: Lagging,
}

/// What a standby beyond its lag limits is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Lagging {
    /// Down: 503, and `down` to the agent.
    #[default]
    Down,
    /// A warning: the warning status (200 unless `warning-is-down`), and
    /// the agent's warning weight.
    Warning,
}

impl Lagging {
    /// The name, as the config spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Lagging::Down => "down",
            Lagging::Warning => "warning",
        }
    }

    /// Parses [`Lagging::as_str`]'s names.
    pub fn parse(text: &str) -> Option<Lagging> {
        match text {
            "down" => Some(Lagging::Down),
            "warning" => Some(Lagging::Warning),
            _ => None,
        }
    }

    fn health(self) -> Health {
        match self {
            Lagging::Down => Health::Unhealthy,
            Lagging::Warning => Health::Warning,
        }
    }
}

/// How to log in: the account, and where its password comes from.
#[derive(Clone, Debug)]
pub struct Account {
    /// The role.
    pub user: String,
    /// The database (the user's name unless given, as libpq does).
    pub database: String,
    /// `application_name`.
    pub application_name: String,
    /// The password file's entries (`.pgpass` format), read at build.
    pub passwords: Vec<passfile::Entry>,
    /// The password file's path, which names the kept SCRAM keys with the
    /// server and the user (two checks with their own files keep their
    /// own keys).
    pub passfile: Option<PathBuf>,
}

impl Account {
    fn password(&self, endpoint: &Endpoint) -> Option<&str> {
        passfile::find(
            &self.passwords,
            &Target {
                host: endpoint.passfile_host(),
                port: endpoint.port(),
                database: &self.database,
                user: &self.user,
            },
        )
    }

    fn login<'a>(&'a self, endpoint: &Endpoint) -> Login<'a> {
        Login {
            user: &self.user,
            database: &self.database,
            application_name: &self.application_name,
            password: self.password(endpoint),
        }
    }
}

/// Checks a PostgreSQL server.
#[derive(Debug)]
pub struct PostgresCheck {
    endpoint: Endpoint,
    account: Option<Account>,
    role: Role,
    limits: Limits,
    primary: Option<Endpoint>,
    keys: Option<KeyCache>,
}

impl PostgresCheck {
    /// A ping of the server at `endpoint` (no login).
    pub fn ping(endpoint: Endpoint) -> Self {
        PostgresCheck {
            endpoint,
            account: None,
            role: Role::Any,
            limits: Limits::default(),
            primary: None,
            keys: None,
        }
    }

    /// Logs in as `account`, and passes when the server is `role` within
    /// `limits`.
    pub fn login(endpoint: Endpoint, account: Account, role: Role, limits: Limits) -> Self {
        PostgresCheck {
            endpoint,
            account: Some(account),
            role,
            limits,
            primary: None,
            keys: None,
        }
    }

    /// Measures a standby's byte lag against this primary's current WAL
    /// position (logging in there with the same account).
    pub fn with_primary(mut self, primary: Endpoint) -> Self {
        self.primary = Some(primary);
        self
    }

    /// Keeps SCRAM's derived keys in `dir`, so that PBKDF2 is paid once
    /// per salt rather than on every poll.
    pub fn with_key_cache(mut self, dir: StateDir) -> Self {
        self.keys = Some(KeyCache { dir });
        self
    }

    /// Where it connects.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    fn ping_verdict(&self, addrs: &[SocketAddr], deadline: Deadline) -> Result<Verdict, PgError> {
        let conn = Conn::connect(&self.endpoint, addrs, deadline)?;
        let login = Login {
            user: PROBE_USER,
            database: "postgres",
            application_name: APPLICATION_NAME,
            password: None,
        };
        Ok(match conn.ping(&login)? {
            Ping::Accepting => Verdict::healthy("PostgreSQL accepts connections (ping)"),
            Ping::Rejecting(f) => Verdict::unhealthy(public_server_reason(&f))
                .with_detail(format!("{}: {}", f.code, f.message).into_bytes()),
        })
    }

    fn login_verdict(
        &self,
        account: &Account,
        addrs: &[SocketAddr],
        deadline: Deadline,
    ) -> Result<Verdict, PgError> {
        let conn = Conn::connect(&self.endpoint, addrs, deadline)?;
        let keys = self.key_source(&self.endpoint, account);
        let mut session = match conn.login(&account.login(&self.endpoint), &keys) {
            Ok(s) => s,
            Err(e) => {
                keys.forget_after(&e);
                return Err(e);
            }
        };
        let version = session
            .parameters
            .get("server_version")
            .map(|v| v.split_whitespace().next().unwrap_or("").to_owned())
            .unwrap_or_default();
        let hot_standby = session.parameters.get("in_hot_standby").map(|v| v == "on");
        let reported_read_only = session
            .parameters
            .get("default_transaction_read_only")
            .map(|v| v == "on");
        // The query below uses PostgreSQL 10's names.
        let major: u32 = version
            .split(|c: char| !c.is_ascii_digit())
            .next()
            .and_then(|m| m.parse().ok())
            .unwrap_or(0);
        if hot_standby.is_none() && major < 10 {
            session.terminate();
            return Ok(Verdict::unknown(format!(
                "PostgreSQL {version} is not supported: 10 or later"
            )));
        }
        let wants_standby_state = matches!(self.role, Role::Any | Role::Replica | Role::ReadOnly);
        let needs_read_only = matches!(self.role, Role::ReadWrite | Role::ReadOnly);
        let state = match hot_standby {
            // What the login did not report is read.
            _ if needs_read_only && reported_read_only.is_none() => {
                Some(read_standby(&mut session)?)
            }
            // A primary, known from the login: no query at all.
            Some(false) => None,
            // A standby whose state this role does not need.
            Some(true) if !wants_standby_state => None,
            _ => Some(read_standby(&mut session)?),
        };
        let state = match state {
            // Only a role that judges the standby waits for its replay.
            Some(s) if wants_standby_state => Some(settle(&mut session, s, deadline)?),
            s => s,
        };
        session.terminate();
        let in_recovery = match (&state, hot_standby) {
            (Some(s), _) => s.in_recovery,
            (None, h) => h.unwrap_or(false),
        };
        let read_only = match (reported_read_only, &state) {
            (Some(r), _) => r,
            (None, Some(s)) => s.read_only,
            // Neither reported nor read: only for a role that does not
            // ask (read-write and read-only read it above).
            (None, None) => false,
        };
        let server = if version.is_empty() {
            "PostgreSQL".to_owned()
        } else {
            format!("PostgreSQL {version}")
        };
        let mut verdict = self.judge(&server, in_recovery, read_only, state.as_ref(), deadline);
        verdict.facts.insert(0, Fact::PgInRecovery(in_recovery));
        Ok(verdict)
    }

    fn judge(
        &self,
        server: &str,
        in_recovery: bool,
        read_only: bool,
        state: Option<&StandbyState>,
        deadline: Deadline,
    ) -> Verdict {
        let what = if in_recovery { "standby" } else { "primary" };
        match self.role {
            Role::Primary if in_recovery => {
                return Verdict::unhealthy(format!("not a primary: {server} is a standby"))
            }
            Role::ReadWrite if in_recovery => {
                return Verdict::unhealthy(format!("not read-write: {server} is a standby"))
            }
            Role::ReadWrite if read_only => {
                return Verdict::unhealthy(format!(
                    "not read-write: default_transaction_read_only is on on {server}"
                ))
            }
            Role::Replica if !in_recovery => {
                return Verdict::unhealthy(format!("not a replica: {server} is a primary"))
            }
            Role::ReadOnly if !in_recovery && !read_only => {
                return Verdict::unhealthy(format!(
                    "not read-only: {server} is a read-write primary"
                ))
            }
            _ => {}
        }
        let Some(state) = state.filter(|_| in_recovery) else {
            return Verdict::healthy(format!("{server} {what}"));
        };
        self.judge_standby(server, state, deadline)
    }

    fn judge_standby(&self, server: &str, state: &StandbyState, deadline: Deadline) -> Verdict {
        let mut facts = Vec::new();
        let hidden = state.receiver.as_deref() == Some(HIDDEN);
        let streaming = state.receiver.as_deref() == Some("streaming");
        if !hidden {
            facts.push(Fact::PgWalReceiverStreaming(streaming));
        }
        // Where the WAL ends as far as this standby knows: what it
        // received, or what the primary last said it had sent. Only a
        // streaming receiver keeps that current: a receiver that stopped
        // leaves its last position behind, and received − replayed would
        // read 0 however far the primary has gone.
        let known_end = state.known_end();
        let local = |end: Option<u64>| match (end, state.replayed) {
            (Some(e), Some(r)) if streaming => Some(e.saturating_sub(r)),
            _ => None,
        };
        let mut unknown_why = if hidden {
            "the WAL receiver's state is hidden: grant pg_monitor to the check's role".to_owned()
        } else if !streaming {
            "not streaming, and no primary measured".to_owned()
        } else {
            "nothing received and replayed to compare".to_owned()
        };
        // The byte lag: against the primary's position when it is given,
        // the way Patroni measures against its leader; it fails closed
        // when the primary cannot be asked (the moment a standby is cut
        // off is the moment its own figures say least).
        let lag_bytes = match (&self.primary, &self.account) {
            (Some(primary), Some(account)) => {
                // Half of what is left: a primary that hangs must not
                // take the whole poll with it.
                let share = Deadline::after(deadline.remaining() / 2);
                match self.primary_lsn(primary, account, share) {
                    Ok(lsn) => state.replayed.map(|r| lsn.saturating_sub(r)),
                    Err(e) => {
                        unknown_why = format!("primary not measured: {}", e.public_reason());
                        None
                    }
                }
            }
            _ => local(known_end),
        };
        // The seconds lag from this standby's own figures only: nothing
        // left to replay is no lag, however old the last transaction (an
        // idle primary sends none).
        let lag_seconds = match local(known_end) {
            Some(gap) if gap < WAL_PAGE => Some(0.0),
            Some(_) => state.replay_pace.or(state.replay_age),
            None => None,
        };
        if let Some(b) = lag_bytes {
            facts.push(Fact::PgReplayLagBytes(b));
        }
        if let Some(s) = lag_seconds {
            facts.push(Fact::PgReplayLagSeconds(s));
        }
        let with = |v: Verdict| Verdict {
            facts: facts.clone(),
            ..v
        };
        if hidden && self.limits.streaming {
            return with(Verdict::unknown(
                "cannot read the WAL receiver's state: grant pg_monitor to the check's role",
            ));
        }
        if self.limits.streaming && !streaming {
            let reason = match state.receiver.as_deref() {
                None => "not streaming: no WAL receiver (cut off from the primary, or replaying from the archive)".to_owned(),
                Some(s) => format!("not streaming: WAL receiver is {s}"),
            };
            return with(Verdict::unhealthy(reason));
        }
        if let Some(max) = self.limits.max_lag_bytes {
            match lag_bytes {
                Some(b) if b > max => {
                    return with(Verdict::new(
                        self.limits.lagging.health(),
                        format!(
                            "replay lag {} exceeds max-lag-bytes {}",
                            bytes(b),
                            bytes(max)
                        ),
                    ))
                }
                Some(_) => {}
                None => {
                    return with(Verdict::unknown(format!(
                        "replay lag unknown: {unknown_why}"
                    )))
                }
            }
        }
        if let Some(max) = self.limits.max_lag {
            match lag_seconds {
                Some(s) if s > max.as_secs_f64() => {
                    return with(Verdict::new(
                        self.limits.lagging.health(),
                        format!(
                            "replay lag {} exceeds max-lag {}",
                            seconds(s),
                            human_duration(max)
                        ),
                    ))
                }
                Some(_) => {}
                None => {
                    // The seconds lag is the standby's own figure, whatever
                    // the primary said.
                    let why = if hidden {
                        "the WAL receiver's state is hidden: grant pg_monitor to the check's role"
                    } else if !streaming {
                        "not streaming"
                    } else {
                        "no transaction replayed since the standby started, or clocks disagree"
                    };
                    return with(Verdict::unknown(format!("replay lag unknown: {why}")));
                }
            }
        }
        let mut reason = format!("{server} standby");
        match state.receiver.as_deref() {
            Some(s) if s == HIDDEN => {}
            Some(s) => {
                let _ = write!(reason, ", WAL receiver {s}");
            }
            None => reason.push_str(", no WAL receiver"),
        }
        match (lag_bytes, lag_seconds) {
            (Some(b), Some(s)) => {
                let _ = write!(reason, ", replay lag {} / {}", bytes(b), seconds(s));
            }
            (Some(b), None) => {
                let _ = write!(reason, ", replay lag {}", bytes(b));
            }
            (None, Some(s)) => {
                let _ = write!(reason, ", replay lag {}", seconds(s));
            }
            (None, None) => {}
        }
        if self.primary.is_some() && lag_bytes.is_some() {
            reason.push_str(" (bytes against the primary)");
        } else if self.primary.is_some() {
            let _ = write!(reason, " ({unknown_why})");
        }
        with(Verdict::healthy(reason))
    }

    fn primary_lsn(
        &self,
        primary: &Endpoint,
        account: &Account,
        deadline: Deadline,
    ) -> Result<u64, PgError> {
        let addrs = match primary {
            Endpoint::Tcp { host, port } => {
                resolve(host, *port, deadline).map_err(|e| PgError::Connect {
                    endpoint: primary.describe(),
                    source: std::io::Error::other(e.public_reason()),
                })?
            }
            Endpoint::Unix { .. } => Vec::new(),
        };
        let conn = Conn::connect(primary, &addrs, deadline)?;
        let keys = self.key_source(primary, account);
        let mut session = conn
            .login(&account.login(primary), &keys)
            .inspect_err(|e| {
                keys.forget_after(e);
            })?;
        let rows = session.query("SELECT pg_current_wal_lsn()")?;
        session.terminate();
        first_lsn(&rows, "pg_current_wal_lsn() on the primary")
    }

    fn key_source<'a>(&'a self, endpoint: &Endpoint, account: &Account) -> Kept<'a> {
        Kept {
            cache: self.keys.as_ref(),
            name: format!(
                "inetd-health-scram-{}",
                state::key(
                    format!(
                        "{}\0{}\0{}",
                        endpoint.describe(),
                        account.user,
                        account
                            .passfile
                            .as_deref()
                            .map(|p| p.display().to_string())
                            .unwrap_or_default()
                    )
                    .as_bytes()
                )
            ),
        }
    }
}

impl Check for PostgresCheck {
    /// Pings, or logs in and reads the role (and a standby's state), by
    /// `deadline`. A server that is down, starting, refusing or of the
    /// wrong role is an unhealthy verdict whose reason says which.
    fn run(&self, deadline: Deadline) -> Result<Verdict, CheckError> {
        let addrs = match &self.endpoint {
            Endpoint::Tcp { host, port } => resolve(host, *port, deadline)?,
            Endpoint::Unix { .. } => Vec::new(),
        };
        let result = match &self.account {
            None => self.ping_verdict(&addrs, deadline),
            Some(account) => self.login_verdict(account, &addrs, deadline),
        };
        Ok(result.unwrap_or_else(|e| Verdict::down(e.public_reason(), &e)))
    }
}

/// The WAL receiver's status when the role may not read it (its row shows
/// only the pid without `pg_read_all_stats`).
const HIDDEN: &str = "?";

/// The one query for a standby (and, before PostgreSQL 14, for the role):
/// recovery, the WAL receiver's status, what was received and replayed,
/// the age of the last replayed transaction, the end of WAL the primary
/// last reported sending, and whether the session is read-only (which
/// PostgreSQL reports at login only from 14).
pub const STANDBY_QUERY: &str = "SELECT pg_is_in_recovery(), \
     (SELECT coalesce(status, '?') FROM pg_stat_wal_receiver), \
     pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn(), \
     extract(epoch FROM now() - pg_last_xact_replay_timestamp()), \
     (SELECT latest_end_lsn FROM pg_stat_wal_receiver), \
     current_setting('transaction_read_only')";

/// What [`STANDBY_QUERY`] read.
#[derive(Clone, Debug, PartialEq)]
struct StandbyState {
    in_recovery: bool,
    receiver: Option<String>,
    received: Option<u64>,
    replayed: Option<u64>,
    replay_age: Option<f64>,
    latest_end: Option<u64>,
    read_only: bool,
    /// Seconds the replay, at the pace [`settle`] saw, needs for what is
    /// left: set when it moved and had not finished.
    replay_pace: Option<f64>,
}

/// PostgreSQL's WAL page (`XLOG_BLCKSZ`). The primary sends WAL up to
/// whole pages while a record is still being written, so a streaming
/// standby's received WAL often ends in part of a record it cannot replay
/// until the rest comes: less than a page left is a record in flight, not
/// a lag.
const WAL_PAGE: u64 = 8192;

/// How often, and how many times, a standby with WAL left to replay is
/// asked again how far its replay has come.
const SETTLE_EVERY: Duration = Duration::from_millis(10);
const SETTLE_TRIES: u32 = 3;

/// How long, from the first ask, a replay that has not moved in
/// [`SETTLE_TRIES`] asks is given to finish what is left: a startup
/// process that a busy machine has not scheduled for 30 ms is not a stuck
/// replay, and judging it by its last transaction would read minutes of
/// lag on a quiet primary. A paused or blocked replay pays this once per
/// poll.
const STALL_PATIENCE: Duration = Duration::from_millis(250);

/// A streaming standby with WAL received and not yet replayed, asked
/// again how far its replay has come. What is left is a lag only if the replay is not
/// getting through it: WAL that is no transaction (checkpoints, the
/// snapshots of running transactions, logical messages, a segment switch)
/// arrives and is replayed within milliseconds, and while WAL streams in,
/// its last record is often only partly received, so received is ahead of
/// replayed at almost every instant. The age of the last replayed
/// transaction, minutes on a quiet primary, would read as the lag. A
/// replay that moves is judged by its pace: what is left, over the rate
/// it was replayed at. One that does not move is given
/// [`STALL_PATIENCE`] to finish; if it does not, it is as late as its
/// last transaction, even if it moved meanwhile (a rate measured across
/// a stall says nothing: one burst after a long wait would read as a
/// fast replay, and a short wait before a fast one as a slow replay).
fn settle(
    session: &mut crate::postgres::Session,
    mut state: StandbyState,
    deadline: Deadline,
) -> Result<StandbyState, PgError> {
    let streaming = state.receiver.as_deref() == Some("streaming");
    let end = state.known_end();
    let (Some(end), Some(first), true) = (end, state.replayed, streaming && state.in_recovery)
    else {
        return Ok(state);
    };
    let started = std::time::Instant::now();
    // Never more than a quarter of what is left of the poll.
    let patience = STALL_PATIENCE.min(deadline.remaining() / 4);
    let mut stalled = false;
    let mut last = first;
    for tries in 0.. {
        if end.saturating_sub(last) < WAL_PAGE || deadline.remaining() < SETTLE_EVERY * 4 {
            break;
        }
        if tries >= SETTLE_TRIES {
            if last > first && !stalled {
                break;
            }
            stalled = true;
            if started.elapsed() >= patience {
                break;
            }
        }
        std::thread::sleep(SETTLE_EVERY);
        let rows = session.query("SELECT pg_last_wal_replay_lsn()")?;
        last = last.max(first_lsn(&rows, "pg_last_wal_replay_lsn()")?);
    }
    state.replayed = Some(last);
    if !stalled && last > first && last < end {
        let rate = (last - first) as f64 / started.elapsed().as_secs_f64().max(1e-3);
        state.replay_pace = Some((end - last) as f64 / rate);
    }
    Ok(state)
}

/// The LSN in the first column of the first row, or a bad answer to `what`.
fn first_lsn(rows: &[Vec<Option<String>>], what: &'static str) -> Result<u64, PgError> {
    rows.first()
        .and_then(|r| r.first())
        .and_then(|v| v.as_deref())
        .and_then(parse_lsn)
        .ok_or(PgError::BadAnswer { what })
}

fn read_standby(session: &mut crate::postgres::Session) -> Result<StandbyState, PgError> {
    let rows = session.query(STANDBY_QUERY)?;
    parse_standby(rows.first().map(Vec::as_slice).unwrap_or(&[])).ok_or(PgError::BadAnswer {
        what: "the standby query",
    })
}

impl StandbyState {
    /// Where the WAL ends as far as the standby knows: what it received,
    /// or what the primary last said it had sent, whichever is further.
    fn known_end(&self) -> Option<u64> {
        match (self.received, self.latest_end) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        }
    }
}

fn parse_standby(row: &[Option<String>]) -> Option<StandbyState> {
    let [recovery, receiver, received, replayed, age, latest_end, read_only] = row else {
        return None;
    };
    let flag = |v: &Option<String>, yes: &str, no: &str| match v.as_deref()? {
        t if t == yes => Some(true),
        t if t == no => Some(false),
        _ => None,
    };
    let lsn = |v: &Option<String>| -> Option<Option<u64>> {
        match v {
            None => Some(None),
            Some(t) => parse_lsn(t).map(Some),
        }
    };
    Some(StandbyState {
        in_recovery: flag(recovery, "t", "f")?,
        receiver: receiver.clone(),
        received: lsn(received)?,
        replayed: lsn(replayed)?,
        replay_age: match age {
            None => None,
            Some(t) => {
                let age = t.parse::<f64>().ok().filter(|s| s.is_finite())?;
                // A little behind the primary's clock reads as no age; more
                // is clocks that disagree, and an age that cannot be told.
                (age >= -1.0).then_some(age.max(0.0))
            }
        },
        latest_end: lsn(latest_end)?,
        read_only: flag(read_only, "on", "off")?,
        replay_pace: None,
    })
}

/// Parses an LSN, `16/B374D848`, into its 64-bit position.
pub fn parse_lsn(text: &str) -> Option<u64> {
    let (hi, lo) = text.split_once('/')?;
    let part = |t: &str| {
        (!t.is_empty() && t.len() <= 8 && t.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| u32::from_str_radix(t, 16).ok())
            .flatten()
    };
    Some(u64::from(part(hi)?) << 32 | u64::from(part(lo)?))
}

/// A size for reasons, in PostgreSQL's units: `512 B`, `20 MB`.
pub fn bytes(n: u64) -> String {
    const UNITS: [(&str, u64); 4] = [
        ("TB", 1 << 40),
        ("GB", 1 << 30),
        ("MB", 1 << 20),
        ("kB", 1 << 10),
    ];
    for (unit, size) in UNITS {
        if n >= size {
            let whole = n as f64 / size as f64;
            return if n.is_multiple_of(size) {
                format!("{} {unit}", n / size)
            } else {
                format!("{whole:.1} {unit}")
            };
        }
    }
    format!("{n} B")
}

fn seconds(s: f64) -> String {
    if s == 0.0 {
        "0s".into()
    } else {
        human_duration(Duration::from_secs_f64(s))
    }
}

/// Where SCRAM's derived keys are kept between polls.
#[derive(Clone, Debug)]
struct KeyCache {
    dir: StateDir,
}

/// The key source of one login: the cache file for this server and user.
struct Kept<'a> {
    cache: Option<&'a KeyCache>,
    name: String,
}

impl Kept<'_> {
    fn path(&self) -> Option<PathBuf> {
        self.cache.map(|c| c.dir.file(&self.name))
    }

    fn forget(&self) {
        if let Some(path) = self.path() {
            let _ = std::fs::remove_file(path);
        }
    }

    /// Drops the kept keys when a login with them failed as wrong keys
    /// would make it fail: the server refused the proof (28P01) or could
    /// not prove it knows the password (a kept server key that is not the
    /// role's). The next poll derives them again from the password file,
    /// so a spoiled file costs one poll, not every poll until it is found.
    fn forget_after(&self, e: &PgError) {
        if matches!(e, PgError::Server(f) if f.code == "28P01") || matches!(e, PgError::Scram(_)) {
            self.forget();
        }
    }
}

/// What a kept-keys file is tied to: the password, the salt and the
/// iteration count. A new salt (`ALTER ROLE … PASSWORD`), a new password
/// in the file or new iterations give another tag, and the keys are
/// derived again.
fn tag(password: &str, challenge: &Challenge) -> String {
    let mut input = Vec::with_capacity(password.len() + challenge.salt.len() + 16);
    input.extend_from_slice(b"inetd-health scram keys v1\0");
    input.extend_from_slice(password.as_bytes());
    input.push(0);
    input.extend_from_slice(&challenge.salt);
    input.push(0);
    input.extend_from_slice(&challenge.iterations.to_be_bytes());
    hex(&sha256(&input))
}

impl crate::postgres::conn::KeySource for Kept<'_> {
    fn keys(&self, password: &str, challenge: &Challenge) -> Keys {
        let Some(cache) = self.cache else {
            return Keys::derive(password, &challenge.salt, challenge.iterations);
        };
        let path = cache.dir.file(&self.name);
        let tag = tag(password, challenge);
        // Keys are read only from a directory that is ours alone, as the
        // cache's records are. Keeping them is an optimisation: a
        // directory or file we cannot use costs a derivation, nothing else.
        let usable = cache.dir.prepare().is_ok();
        if let Some(keys) = read_keys(&path, &tag).filter(|_| usable) {
            return keys;
        }
        let keys = Keys::derive(password, &challenge.salt, challenge.iterations);
        if usable {
            let _ = write_keys(&path, &tag, &keys);
        }
        keys
    }
}

fn read_keys(path: &Path, tag: &str) -> Option<Keys> {
    // O_NONBLOCK: a FIFO planted at this name would block the open
    // (past any deadline) before its type could be checked; regular files
    // ignore the flag.
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
        .open(path)
        .ok()?;
    // Only a file we would have written: ours, mode 0600.
    let st = sys::fstat(file.as_fd()).ok()?;
    if let Err(Untrusted::NotRegular | Untrusted::Owner { .. } | Untrusted::Mode { .. }) =
        state::TRUST.check(&st, sys::euid())
    {
        return None;
    }
    let mut text = String::new();
    std::io::Read::by_ref(&mut file)
        .take(512)
        .read_to_string(&mut text)
        .ok()?;
    let mut words = text.split_whitespace();
    if words.next()? != tag {
        return None;
    }
    let key = |w: Option<&str>| -> Option<[u8; 32]> {
        let w = w?;
        if w.len() != 64 {
            return None;
        }
        let mut out = [0u8; 32];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = u8::from_str_radix(w.get(2 * i..2 * i + 2)?, 16).ok()?;
        }
        Some(out)
    };
    Some(Keys {
        client_key: key(words.next())?,
        server_key: key(words.next())?,
    })
}

/// Writes the keys to a new private file and renames it into place, so a
/// reader sees the old file or the new one, never half of one.
fn write_keys(path: &Path, tag: &str, keys: &Keys) -> std::io::Result<()> {
    sweep_temps(path);
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let result = (|| {
        let mut file: File = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&tmp)?;
        let text = format!(
            "{tag} {} {}\n",
            hex(&keys.client_key),
            hex(&keys.server_key)
        );
        file.write_all(text.as_bytes())?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Removes this file's temp files a killed writer left (they hold keys as
/// good as the password) once they are a minute old: younger ones may be
/// another writer's, about to be renamed.
fn sweep_temps(path: &Path) {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return;
    };
    let prefix = format!("{}.tmp", name.to_string_lossy());
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > Duration::from_secs(60));
        if old && entry.file_name().to_string_lossy().starts_with(&prefix) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Where to connect, as libpq reads `host` and `port`: no host is the
/// default socket directory; a host that starts with `/` is a socket
/// directory; anything else an address or name over TCP.
pub fn endpoint(host: Option<&str>, port: Option<u16>) -> Endpoint {
    let port = port.unwrap_or(DEFAULT_PORT);
    match host {
        None | Some("") => Endpoint::Unix {
            dir: PathBuf::from(DEFAULT_SOCKET_DIR),
            port,
        },
        Some(h) if h.starts_with('/') => Endpoint::Unix {
            dir: PathBuf::from(h),
            port,
        },
        Some(h) => Endpoint::Tcp {
            host: h.trim_start_matches('[').trim_end_matches(']').to_owned(),
            port,
        },
    }
}

/// The primary's address as the config gives it: `HOST`, `HOST:PORT`,
/// `[V6]:PORT`, or a socket directory (`/run/postgresql` or
/// `/run/postgresql:5433`); the port defaults to `port`.
pub fn primary_endpoint(text: &str, port: u16) -> Option<Endpoint> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    let (host, p) = if let Some(rest) = text.strip_prefix('[') {
        let (h, after) = rest.split_once(']')?;
        match after {
            "" => (h, None),
            a => (h, Some(a.strip_prefix(':')?)),
        }
    } else if text.matches(':').count() > 1 {
        // A bare IPv6 address.
        (text, None)
    } else {
        match text.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (text, None),
        }
    };
    let port = match p {
        Some(p) => p.parse().ok().filter(|&p| p != 0)?,
        None => port,
    };
    if host.is_empty() {
        return None;
    }
    Some(endpoint(Some(host), Some(port)))
}

/// Why a password file was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PassfileError {
    /// It could not be opened or read.
    #[error("passfile {}: {}", path.display(), sys::io_reason(source))]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// It may not be trusted.
    #[error("passfile {}: refused: {why}{}", path.display(), fix(why))]
    Refused {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        why: Untrusted,
    },
}

fn fix(why: &Untrusted) -> &'static str {
    match why {
        Untrusted::ReadableByOthers { .. } | Untrusted::WritableByOthers { .. } => {
            " (libpq ignores such a file too: chmod 0600 it)"
        }
        _ => "",
    }
}

/// What a password file must be: a regular file of at most 64 KiB, owned
/// by the user that reads it or root, neither readable nor writable by
/// group or others (libpq's rule).
pub const PASSFILE_TRUST: sys::trust::Rules = sys::trust::Rules {
    max_size: Some(64 << 10),
    secret: true,
    secret_from_group: true,
    owner_writes_only: true,
    owners: sys::trust::Owners::UsOrRoot,
    mode: None,
};

/// Reads a password file, refusing one others could read or write.
///
/// # Errors
/// [`PassfileError`].
pub fn load_passfile(path: &Path) -> Result<Vec<passfile::Entry>, PassfileError> {
    let text = sys::trust::read(path, &PASSFILE_TRUST).map_err(|e| match e {
        sys::trust::Unread::Io(source) => PassfileError::Io {
            path: path.to_owned(),
            source,
        },
        sys::trust::Unread::Untrusted(why) => PassfileError::Refused {
            path: path.to_owned(),
            why,
        },
    })?;
    Ok(passfile::parse(&text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passfiles_as_libpq_takes_them() {
        let file = |mode: u32| sys::Stat {
            mode: libc::S_IFREG | mode,
            uid: 1000,
            gid: 1000,
            size: 10,
            dev: 0,
            ino: 0,
        };
        for ok in [0o600, 0o400] {
            assert_eq!(PASSFILE_TRUST.check(&file(ok), 1000), Ok(()), "{ok:o}");
        }
        for (bad, said) in [
            (0o644, "readable by others (mode 0644)"),
            (0o640, "readable by its group (mode 0640)"),
            (0o610, "open to group or others (mode 0610)"),
            (0o601, "open to group or others (mode 0601)"),
        ] {
            let refused = PASSFILE_TRUST.check(&file(bad), 1000).unwrap_err();
            assert_eq!(refused.to_string(), said);
        }
        // Root's own file, for a service running as root.
        assert_eq!(
            PASSFILE_TRUST.check(&file(0o600), 0),
            Err(Untrusted::Owner {
                uid: 1000,
                owners: sys::trust::Owners::UsOrRoot
            })
        );
    }

    #[test]
    fn lsns() {
        assert_eq!(parse_lsn("0/0"), Some(0));
        assert_eq!(parse_lsn("16/B374D848"), Some(0x16_B374_D848));
        assert_eq!(parse_lsn("FFFFFFFF/FFFFFFFF"), Some(u64::MAX));
        for bad in ["", "0", "/0", "0/", "x/0", "1/2/3", "100000000/0", "-1/0"] {
            assert_eq!(parse_lsn(bad), None, "{bad}");
        }
    }

    #[test]
    fn sizes() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(1023), "1023 B");
        assert_eq!(bytes(16 << 20), "16 MB");
        assert_eq!(bytes((20 << 20) + (1 << 19)), "20.5 MB");
    }

    #[test]
    fn endpoints_as_libpq_reads_them() {
        assert_eq!(
            endpoint(None, None).describe(),
            "/var/run/postgresql/.s.PGSQL.5432"
        );
        assert_eq!(
            endpoint(Some("/tmp/pg"), Some(5433)).describe(),
            "/tmp/pg/.s.PGSQL.5433"
        );
        assert_eq!(endpoint(Some("db1"), None).describe(), "db1:5432");
        assert_eq!(endpoint(Some("::1"), Some(6)).describe(), "[::1]:6");
        let p = |t| primary_endpoint(t, 5432).map(|e| e.describe());
        assert_eq!(p("db1").as_deref(), Some("db1:5432"));
        assert_eq!(p("db1:5433").as_deref(), Some("db1:5433"));
        assert_eq!(p("[::1]:5433").as_deref(), Some("[::1]:5433"));
        assert_eq!(p("::1").as_deref(), Some("[::1]:5432"));
        assert_eq!(
            p("/run/postgresql").as_deref(),
            Some("/run/postgresql/.s.PGSQL.5432")
        );
        for bad in ["", "db1:", "db1:0", "db1:x", "[::1", ":5432"] {
            assert_eq!(p(bad), None, "{bad}");
        }
    }

    fn row(values: &[Option<&str>]) -> Vec<Option<String>> {
        values.iter().map(|v| v.map(String::from)).collect()
    }

    fn standby(limits: Limits, state: &StandbyState) -> Verdict {
        let account = Account {
            user: "monitor".into(),
            database: "postgres".into(),
            application_name: "x".into(),
            passwords: Vec::new(),
            passfile: None,
        };
        PostgresCheck::login(endpoint(None, None), account, Role::Replica, limits).judge(
            "PostgreSQL 15.4",
            true,
            true,
            Some(state),
            Deadline::after(Duration::from_secs(1)),
        )
    }

    #[test]
    fn standby_states() {
        let streaming = Limits {
            streaming: true,
            max_lag_bytes: Some(16 << 20),
            max_lag: Some(Duration::from_secs(30)),
            lagging: Lagging::Down,
        };
        let caught_up = parse_standby(&row(&[
            Some("t"),
            Some("streaming"),
            Some("0/3000060"),
            Some("0/3000060"),
            Some("3600.5"),
            Some("0/3000060"),
            Some("off"),
        ]))
        .unwrap();
        let v = standby(streaming, &caught_up);
        assert_eq!(v.health, Health::Healthy, "{}", v.reason);
        // An idle primary: an hour since the last transaction, nothing
        // left to replay, no lag.
        assert!(v.facts.contains(&Fact::PgReplayLagSeconds(0.0)));
        assert!(v.facts.contains(&Fact::PgReplayLagBytes(0)));
        assert_eq!(
            v.reason,
            "PostgreSQL 15.4 standby, WAL receiver streaming, replay lag 0 B / 0s"
        );
        // Part of a record in flight, on a quiet primary: no lag.
        let in_flight = StandbyState {
            received: Some(0x3000060 + 1456),
            ..caught_up.clone()
        };
        let v = standby(streaming, &in_flight);
        assert_eq!(v.health, Health::Healthy, "{}", v.reason);
        assert!(v.facts.contains(&Fact::PgReplayLagSeconds(0.0)));
        assert!(v.facts.contains(&Fact::PgReplayLagBytes(1456)));
        // A replay that moves is judged by its pace, not the last
        // transaction's age.
        let moving = StandbyState {
            received: Some(0x3000060 + (20 << 20)),
            replay_pace: Some(0.5),
            ..caught_up.clone()
        };
        let v = standby(
            Limits {
                max_lag_bytes: None,
                ..streaming
            },
            &moving,
        );
        assert_eq!(v.health, Health::Healthy, "{}", v.reason);
        assert!(v.facts.contains(&Fact::PgReplayLagSeconds(0.5)));
        let behind = StandbyState {
            received: Some(0x3000060 + (20 << 20)),
            replay_age: Some(12.0),
            ..caught_up.clone()
        };
        let v = standby(streaming, &behind);
        assert_eq!(v.health, Health::Unhealthy);
        assert_eq!(v.reason, "replay lag 20 MB exceeds max-lag-bytes 16 MB");
        let eased = Limits {
            lagging: Lagging::Warning,
            ..streaming
        };
        assert_eq!(standby(eased, &behind).health, Health::Warning);
        // Not streaming is down whatever `lagging` says.
        let cut_off = StandbyState {
            receiver: None,
            ..behind.clone()
        };
        assert_eq!(standby(eased, &cut_off).health, Health::Unhealthy);
        let v = standby(
            Limits {
                max_lag_bytes: None,
                max_lag: Some(Duration::from_secs(10)),
                ..streaming
            },
            &behind,
        );
        assert_eq!(v.reason, "replay lag 12.00s exceeds max-lag 10.00s");
        let archive = StandbyState {
            receiver: None,
            received: None,
            ..caught_up.clone()
        };
        let v = standby(streaming, &archive);
        assert_eq!(v.health, Health::Unhealthy);
        assert!(
            v.reason.starts_with("not streaming: no WAL receiver"),
            "{}",
            v.reason
        );
        assert!(v.facts.contains(&Fact::PgWalReceiverStreaming(false)));
        // Not required to stream, but a byte limit it cannot be held to:
        // a receiver that stopped left its last position, and received −
        // replayed would say 0.
        let loose = Limits {
            streaming: false,
            ..streaming
        };
        for state in [&archive, &cut_off] {
            let v = standby(loose, state);
            assert_eq!(v.health, Health::Unknown);
            assert_eq!(
                v.reason,
                "replay lag unknown: not streaming, and no primary measured"
            );
            assert!(!v
                .facts
                .iter()
                .any(|f| matches!(f, Fact::PgReplayLagBytes(_))));
        }
        // The primary said it sent more than was received: that counts.
        let sent = StandbyState {
            latest_end: Some(0x3000060 + (20 << 20)),
            replay_age: Some(1.0),
            ..caught_up.clone()
        };
        assert_eq!(
            standby(streaming, &sent).reason,
            "replay lag 20 MB exceeds max-lag-bytes 16 MB"
        );
        // Nothing replayed since the start (no timestamp) with WAL to
        // replay: the seconds lag cannot be told.
        let fresh = StandbyState {
            replay_age: None,
            ..behind.clone()
        };
        let v = standby(
            Limits {
                max_lag_bytes: None,
                ..streaming
            },
            &fresh,
        );
        assert_eq!(v.health, Health::Unknown);
        assert!(v.reason.contains("clocks disagree"), "{}", v.reason);
        let hidden = StandbyState {
            receiver: Some(HIDDEN.into()),
            ..caught_up
        };
        let v = standby(streaming, &hidden);
        assert_eq!(v.health, Health::Unknown);
        assert!(v.reason.contains("pg_monitor"));
    }

    #[test]
    fn standby_rows_are_parsed_strictly() {
        let parse = |values: &[Option<&str>]| parse_standby(&row(values));
        let off = Some("off");
        assert!(parse(&[Some("t"), None, None, None, None, None, off]).is_some());
        assert!(parse(&[Some("yes"), None, None, None, None, None, off]).is_none());
        assert!(parse(&[Some("t"), None, Some("zz"), None, None, None, off]).is_none());
        assert!(parse(&[Some("t"), None, None, None, Some("NaN"), None, off]).is_none());
        assert!(parse(&[Some("t"), None, None, None, None, Some("x"), off]).is_none());
        assert!(parse(&[Some("t"), None, None, None, None, None, None]).is_none());
        assert!(parse(&[Some("t"), None, None, None, None, None]).is_none());
        assert!(
            parse(&[Some("f"), None, None, None, None, None, Some("on")])
                .unwrap()
                .read_only
        );
        // A little behind the primary's clock is no age; more is clocks
        // that disagree.
        let age = |t| {
            parse(&[Some("t"), None, None, None, Some(t), None, off])
                .unwrap()
                .replay_age
        };
        assert_eq!(age("-0.5"), Some(0.0));
        assert_eq!(age("-3.5"), None);
        assert_eq!(age("2.25"), Some(2.25));
    }

    #[test]
    fn roles() {
        for r in [
            Role::Any,
            Role::Primary,
            Role::Replica,
            Role::ReadWrite,
            Role::ReadOnly,
        ] {
            assert_eq!(Role::parse(r.as_str()), Some(r));
        }
        assert_eq!(Role::parse("master"), Some(Role::Primary));
        assert_eq!(Role::parse("leader"), None);
        let account = Account {
            user: "m".into(),
            database: "postgres".into(),
            application_name: "x".into(),
            passwords: Vec::new(),
            passfile: None,
        };
        let judge = |role, in_recovery, read_only| {
            PostgresCheck::login(
                endpoint(None, None),
                account.clone(),
                role,
                Limits::default(),
            )
            .judge(
                "PostgreSQL 15.4",
                in_recovery,
                read_only,
                None,
                Deadline::after(Duration::from_secs(1)),
            )
            .health
        };
        use Health::*;
        assert_eq!(judge(Role::Primary, false, false), Healthy);
        assert_eq!(judge(Role::Primary, true, true), Unhealthy);
        assert_eq!(judge(Role::Replica, false, false), Unhealthy);
        assert_eq!(judge(Role::ReadWrite, false, true), Unhealthy);
        assert_eq!(judge(Role::ReadOnly, false, true), Healthy);
        assert_eq!(judge(Role::ReadOnly, false, false), Unhealthy);
        assert_eq!(judge(Role::Any, true, true), Healthy);
    }

    #[test]
    fn kept_keys_are_tied_to_password_salt_and_iterations() {
        let dir = std::env::temp_dir().join(format!("ih-scram-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let cache = KeyCache {
            dir: StateDir::private(&dir),
        };
        let kept = Kept {
            cache: Some(&cache),
            name: "k".into(),
        };
        use crate::postgres::conn::KeySource as _;
        let challenge = Challenge {
            nonce: "n".into(),
            salt: b"salt".to_vec(),
            iterations: 4096,
        };
        let derived = kept.keys("pw", &challenge);
        assert_eq!(derived, Keys::derive("pw", b"salt", 4096));
        let path = dir.join("k");
        assert!(read_keys(&path, &tag("pw", &challenge)).is_some());
        // Planted keys under the right tag are what a later poll uses:
        // proof that it reads them instead of deriving.
        let planted = Keys {
            client_key: [1; 32],
            server_key: [2; 32],
        };
        std::fs::remove_file(&path).unwrap();
        write_keys(&path, &tag("pw", &challenge), &planted).unwrap();
        assert_eq!(kept.keys("pw", &challenge), planted);
        // Another salt, password or count: derived again.
        let salted = Challenge {
            salt: b"pepper".to_vec(),
            ..challenge.clone()
        };
        assert_eq!(
            kept.keys("pw", &salted),
            Keys::derive("pw", b"pepper", 4096)
        );
        assert_eq!(
            kept.keys("pw2", &salted),
            Keys::derive("pw2", b"pepper", 4096)
        );
        // A loose mode is not ours: ignored.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(read_keys(&path, &tag("pw2", &salted)).is_none());
        kept.forget();
        assert!(!path.exists());
        // A FIFO planted at the name: refused at once, not waited on.
        let made = std::process::Command::new("mkfifo")
            .arg("-m600")
            .arg(&path)
            .status()
            .unwrap();
        assert!(made.success());
        let started = std::time::Instant::now();
        assert_eq!(
            kept.keys("pw2", &salted),
            Keys::derive("pw2", b"pepper", 4096)
        );
        assert!(started.elapsed() < Duration::from_secs(2));
        // A refused proof, or a server that cannot prove it knows the
        // password: the kept keys go.
        write_keys(&dir.join("k2"), "t", &planted).unwrap();
        let other = Kept {
            cache: Some(&cache),
            name: "k2".into(),
        };
        other.forget_after(&PgError::Scram(
            crate::postgres::scram::ScramError::Signature,
        ));
        assert!(!dir.join("k2").exists());
        write_keys(&dir.join("k2"), "t", &planted).unwrap();
        other.forget_after(&PgError::NoPassword);
        assert!(dir.join("k2").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
