//! Checks: one file per kind, behind one [`Check`] trait.
//!
//! A check answers "may this backend take traffic?" as a [`Verdict`]. An
//! unhealthy backend is an answer, not an error: `Err` is kept for a probe
//! that could not run at all (the program is missing, the address does not
//! resolve), and even that becomes a 503 with its own reason, through
//! [`run_check`].
//!
//! Whatever cannot be decided fails closed: a probe that could not run, a
//! disable file whose presence cannot be read, a state file we cannot use
//! are [`Health::Unknown`], answered 503 like a failing backend, but
//! reported as the checker's own failure (Nagios UNKNOWN, exit 3).
//!
//! A verdict's `reason` is public: it goes into the response body, which
//! anyone who can connect reads. What may name an account, a credential
//! file or hold a program's output goes into `detail`, which is logged and
//! shown in a body only when the operator asks (`--show-output`).
//!
//! The kinds: [`exec`] (a program, exit 0 or the Nagios convention),
//! [`tcp`] (a connect), [`mariadb`] (a server's greeting, or a login and a
//! ping), [`galera`] (a cluster node's state), [`replica`] (replication
//! threads and lag), [`postgres`] (a ping, or a login, the role and a
//! standby's lag), [`redis`] (the role, replication, and the Sentinels'
//! word on the primary); the wrappers: [`maintenance`] (the disable file),
//! [`shared`] (the cache and the concurrency cap).

use std::fmt;
use std::time::Duration;

use crate::deadline::Stopwatch;
use crate::Deadline;

pub mod exec;
pub mod galera;
pub mod maintenance;
pub mod mariadb;
pub mod nagios;
pub mod postgres;
pub mod redis;
pub mod replica;
pub mod shared;
pub mod tcp;

pub use exec::ExecCheck;
pub use galera::GaleraCheck;
pub use maintenance::Maintenance;
pub use mariadb::MariadbCheck;
pub use nagios::{PerfData, PluginOutput};
pub use postgres::PostgresCheck;
pub use redis::RedisCheck;
pub use replica::ReplicaCheck;
pub use shared::{Cached, Capped};
pub use tcp::TcpCheck;

/// The health a check reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Health {
    /// Take traffic.
    Healthy,
    /// Take traffic, but something deserves a look (a Nagios plugin's
    /// WARNING).
    Warning,
    /// Take no traffic: the backend is down.
    Unhealthy,
    /// Take no traffic: the checker could not decide (the probe could not
    /// run, our own files failed, a plugin said UNKNOWN). Fails closed like
    /// [`Health::Unhealthy`], but names the checker, not the backend.
    Unknown,
}

impl Health {
    /// The lowercase word used in bodies and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Healthy => "healthy",
            Health::Warning => "warning",
            Health::Unhealthy => "unhealthy",
            Health::Unknown => "unknown",
        }
    }

    /// Parses [`Health::as_str`]'s words.
    pub fn from_word(word: &str) -> Option<Health> {
        [
            Health::Healthy,
            Health::Warning,
            Health::Unhealthy,
            Health::Unknown,
        ]
        .into_iter()
        .find(|h| h.as_str() == word)
    }
}

impl fmt::Display for Health {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a check found.
#[derive(Clone, Debug, PartialEq)]
pub struct Verdict {
    /// The health found.
    pub health: Health,
    /// A short public reason, for bodies and logs: one line, no account
    /// names, no credential paths, no program output.
    pub reason: String,
    /// What may not be public (a program's output, a server's message
    /// naming the account): logged, and put in a body only when the
    /// operator asks.
    pub detail: Option<Vec<u8>>,
    /// Numbers the check measured (a Nagios plugin's performance data).
    pub perfdata: Vec<PerfData>,
    /// Facts of known meaning the check read (a replica's lag, a Galera
    /// node's state), for JSON and Prometheus.
    pub facts: Vec<Fact>,
    /// Set when the verdict was served from the cache: its age.
    pub cached_age: Option<Duration>,
    /// Set when the check was disabled by the operator (the disable file)
    /// and did not run.
    pub disabled: bool,
}

/// A number a check read, whose meaning is fixed: what JSON calls an
/// observed value and Prometheus a gauge of its own (the metric names are
/// the Prometheus view's, in `render/prometheus.rs`).
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub enum Fact {
    /// A replica's `Seconds_Behind_Master`.
    ReplicaLagSeconds(u64),
    /// A Galera node's `wsrep_local_state` (1 Joining, 2 Donor/Desynced,
    /// 3 Joined, 4 Synced).
    GaleraLocalState(u32),
    /// A PostgreSQL server is in recovery (a standby): `in_hot_standby`,
    /// or `pg_is_in_recovery()` before PostgreSQL 14.
    PgInRecovery(bool),
    /// A PostgreSQL standby's replay lag in bytes: received (or, with the
    /// primary's address, written there) minus replayed.
    PgReplayLagBytes(u64),
    /// A PostgreSQL standby's replay lag in seconds: 0 when everything
    /// received is replayed, however long the primary has been idle.
    PgReplayLagSeconds(f64),
    /// A PostgreSQL standby's WAL receiver is streaming.
    PgWalReceiverStreaming(bool),
    /// A Redis server's role is primary (`role:master`).
    RedisPrimary(bool),
    /// A Redis primary's online replicas.
    RedisConnectedReplicas(u32),
    /// A Redis replica's `master_last_io_seconds_ago`.
    RedisLinkAgeSeconds(u64),
    /// A Redis replica's offset read from its primary minus the offset it
    /// applied.
    RedisReplicaLagBytes(u64),
    /// How many Sentinels name this Redis node as their primary.
    RedisSentinelVotes(u32),
}

impl Fact {
    /// The measurement's name in JSON (`CHECK:NAME`).
    pub fn name(&self) -> &'static str {
        match self {
            Fact::ReplicaLagSeconds(_) => "lag",
            Fact::GaleraLocalState(_) => "localState",
            Fact::PgInRecovery(_) => "inRecovery",
            Fact::PgReplayLagBytes(_) => "replayLagBytes",
            Fact::PgReplayLagSeconds(_) => "replayLagSeconds",
            Fact::PgWalReceiverStreaming(_) => "walReceiverStreaming",
            Fact::RedisPrimary(_) => "primary",
            Fact::RedisConnectedReplicas(_) => "connectedReplicas",
            Fact::RedisLinkAgeSeconds(_) => "linkAge",
            Fact::RedisReplicaLagBytes(_) => "replicaLagBytes",
            Fact::RedisSentinelVotes(_) => "sentinelVotes",
        }
    }

    /// The unit, as JSON's `observedUnit` spells it (empty for none).
    pub fn unit(&self) -> &'static str {
        match self {
            Fact::ReplicaLagSeconds(_) => "s",
            Fact::GaleraLocalState(_) | Fact::PgInRecovery(_) | Fact::PgWalReceiverStreaming(_) => {
                ""
            }
            Fact::PgReplayLagBytes(_) | Fact::RedisReplicaLagBytes(_) => "B",
            Fact::PgReplayLagSeconds(_) | Fact::RedisLinkAgeSeconds(_) => "s",
            Fact::RedisPrimary(_)
            | Fact::RedisConnectedReplicas(_)
            | Fact::RedisSentinelVotes(_) => "",
        }
    }

    /// The value.
    pub fn value(&self) -> f64 {
        match *self {
            Fact::ReplicaLagSeconds(s) => s as f64,
            Fact::GaleraLocalState(n) => f64::from(n),
            Fact::PgInRecovery(b) | Fact::PgWalReceiverStreaming(b) => f64::from(u8::from(b)),
            // Lags beyond 2^53 bytes lose precision only in the gauge.
            Fact::PgReplayLagBytes(n) => n as f64,
            Fact::PgReplayLagSeconds(s) => s,
            Fact::RedisPrimary(b) => f64::from(u8::from(b)),
            Fact::RedisConnectedReplicas(n) | Fact::RedisSentinelVotes(n) => f64::from(n),
            Fact::RedisLinkAgeSeconds(n) | Fact::RedisReplicaLagBytes(n) => n as f64,
        }
    }

    /// `NAME=VALUE`, as state files keep it.
    pub fn encode(&self) -> String {
        match self {
            Fact::ReplicaLagSeconds(s) => format!("replica_lag_seconds={s}"),
            Fact::GaleraLocalState(n) => format!("galera_local_state={n}"),
            Fact::PgInRecovery(b) => format!("pg_in_recovery={}", u8::from(*b)),
            Fact::PgReplayLagBytes(n) => format!("pg_replay_lag_bytes={n}"),
            Fact::PgReplayLagSeconds(s) => format!("pg_replay_lag_seconds={s}"),
            Fact::PgWalReceiverStreaming(b) => {
                format!("pg_wal_receiver_streaming={}", u8::from(*b))
            }
            Fact::RedisPrimary(b) => format!("redis_primary={}", u8::from(*b)),
            Fact::RedisConnectedReplicas(n) => format!("redis_connected_replicas={n}"),
            Fact::RedisLinkAgeSeconds(n) => format!("redis_link_age_seconds={n}"),
            Fact::RedisReplicaLagBytes(n) => format!("redis_replica_lag_bytes={n}"),
            Fact::RedisSentinelVotes(n) => format!("redis_sentinel_votes={n}"),
        }
    }

    /// Parses [`Fact::encode`]'s form.
    pub fn decode(text: &str) -> Option<Fact> {
        let (name, value) = text.split_once('=')?;
        match name {
            "replica_lag_seconds" => value.parse().ok().map(Fact::ReplicaLagSeconds),
            "galera_local_state" => value.parse().ok().map(Fact::GaleraLocalState),
            "pg_in_recovery" => flag(value).map(Fact::PgInRecovery),
            "pg_replay_lag_bytes" => value.parse().ok().map(Fact::PgReplayLagBytes),
            "pg_replay_lag_seconds" => value
                .parse()
                .ok()
                .filter(|s: &f64| s.is_finite() && *s >= 0.0)
                .map(Fact::PgReplayLagSeconds),
            "pg_wal_receiver_streaming" => flag(value).map(Fact::PgWalReceiverStreaming),
            "redis_primary" => flag(value).map(Fact::RedisPrimary),
            "redis_connected_replicas" => value.parse().ok().map(Fact::RedisConnectedReplicas),
            "redis_link_age_seconds" => value.parse().ok().map(Fact::RedisLinkAgeSeconds),
            "redis_replica_lag_bytes" => value.parse().ok().map(Fact::RedisReplicaLagBytes),
            "redis_sentinel_votes" => value.parse().ok().map(Fact::RedisSentinelVotes),
            _ => None,
        }
    }
}

fn flag(value: &str) -> Option<bool> {
    match value {
        "0" => Some(false),
        "1" => Some(true),
        _ => None,
    }
}

impl Fact {
    /// The fact as Nagios performance data, for those a plugin would
    /// report (the lags); `None` for states.
    pub fn perfdata(&self) -> Option<PerfData> {
        let (label, value, unit) = match *self {
            Fact::PgReplayLagBytes(n) => ("replay_lag_bytes", n as f64, "B"),
            Fact::PgReplayLagSeconds(s) => ("replay_lag_seconds", s, "s"),
            Fact::RedisLinkAgeSeconds(n) => ("link_age", n as f64, "s"),
            Fact::RedisReplicaLagBytes(n) => ("replica_lag_bytes", n as f64, "B"),
            Fact::RedisConnectedReplicas(n) => ("connected_replicas", f64::from(n), ""),
            Fact::RedisSentinelVotes(n) => ("sentinel_votes", f64::from(n), ""),
            _ => return None,
        };
        Some(PerfData {
            label: label.to_owned(),
            value: Some(value),
            uom: unit.to_owned(),
            warn: None,
            crit: None,
            min: Some(0.0),
            max: None,
        })
    }
}

impl Verdict {
    /// A healthy verdict.
    pub fn healthy(reason: impl Into<String>) -> Self {
        Verdict::new(Health::Healthy, reason)
    }

    /// A warning verdict.
    pub fn warning(reason: impl Into<String>) -> Self {
        Verdict::new(Health::Warning, reason)
    }

    /// An unhealthy verdict.
    pub fn unhealthy(reason: impl Into<String>) -> Self {
        Verdict::new(Health::Unhealthy, reason)
    }

    /// A verdict of a checker that could not decide.
    pub fn unknown(reason: impl Into<String>) -> Self {
        Verdict::new(Health::Unknown, reason)
    }

    /// A verdict of `health`.
    pub fn new(health: Health, reason: impl Into<String>) -> Self {
        Verdict {
            health,
            reason: reason.into(),
            detail: None,
            perfdata: Vec::new(),
            facts: Vec::new(),
            cached_age: None,
            disabled: false,
        }
    }

    /// Adds a fact (see [`Verdict::facts`]).
    pub fn with_fact(mut self, fact: Fact) -> Self {
        self.facts.push(fact);
        self
    }

    /// The verdict for a conversation with a server that failed: the
    /// error's public reason, and the whole error (which may name the
    /// account or a path) as the detail when it says more.
    pub fn down(public: impl Into<String>, whole: &dyn fmt::Display) -> Self {
        let verdict = Verdict::unhealthy(public);
        let whole = whole.to_string();
        if whole == verdict.reason {
            verdict
        } else {
            verdict.with_detail(whole.into_bytes())
        }
    }

    /// Attaches detail (see [`Verdict::detail`]).
    pub fn with_detail(mut self, detail: Vec<u8>) -> Self {
        self.detail = Some(detail);
        self
    }
}

/// Why a probe could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CheckError {
    /// The check program could not be started or supervised.
    #[error(transparent)]
    Process(#[from] crate::process::ProcessError),
    /// The target is not of the form `HOST:PORT`.
    #[error("bad target {target:?}: expected HOST:PORT")]
    BadTarget {
        /// The target as given.
        target: String,
    },
    /// The host name did not resolve.
    #[error("cannot resolve {target}: {reason}")]
    Resolve {
        /// The target as given.
        target: String,
        /// What the resolver said.
        reason: String,
    },
}

impl CheckError {
    /// What a body or an agent line may say of this error: no program
    /// path, host name or system error text (those go to the log's detail,
    /// from the error's `Display`).
    pub fn public_reason(&self) -> &'static str {
        use crate::process::ProcessError;
        match self {
            CheckError::Process(ProcessError::NoProgram) => "no program given",
            CheckError::Process(ProcessError::Spawn { .. }) => "cannot start the program",
            CheckError::Process(_) => "cannot supervise the program",
            CheckError::BadTarget { .. } => "bad target: expected HOST:PORT",
            CheckError::Resolve { .. } => "cannot resolve the target",
        }
    }
}

/// A health check.
///
/// Implementations do their blocking work by `deadline` at the latest and
/// return an unhealthy verdict, not an error, when the thing checked is down.
pub trait Check {
    /// Runs the check once.
    ///
    /// # Errors
    /// [`CheckError`] when the probe itself cannot run.
    fn run(&self, deadline: Deadline) -> Result<Verdict, CheckError>;
}

impl<C: Check + ?Sized> Check for &C {
    fn run(&self, deadline: Deadline) -> Result<Verdict, CheckError> {
        (**self).run(deadline)
    }
}

impl<C: Check + ?Sized> Check for Box<C> {
    fn run(&self, deadline: Deadline) -> Result<Verdict, CheckError> {
        (**self).run(deadline)
    }
}

/// A check's result with the time it took.
#[derive(Debug)]
pub struct Outcome {
    /// The verdict; a probe that could not run is unhealthy, its reason the error.
    pub verdict: Verdict,
    /// The error, when the probe could not run.
    pub error: Option<CheckError>,
    /// How long the check took.
    pub elapsed: Duration,
}

impl Outcome {
    /// The health found.
    pub fn health(&self) -> Health {
        self.verdict.health
    }

    /// The reason found.
    pub fn reason(&self) -> &str {
        &self.verdict.reason
    }

    /// The Nagios plugin exit code of this outcome: 0 OK, 1 WARNING,
    /// 2 CRITICAL, 3 UNKNOWN (the checker could not decide).
    pub fn nagios_code(&self) -> i32 {
        nagios::exit_code_of(self.verdict.health)
    }
}

/// Runs a check, timing it and turning a probe error into an unknown
/// outcome.
pub fn run_check<C: Check + ?Sized>(check: &C, deadline: Deadline) -> Outcome {
    let clock = Stopwatch::start();
    let result = check.run(deadline);
    let elapsed = clock.elapsed();
    match result {
        Ok(verdict) => Outcome {
            verdict,
            error: None,
            elapsed,
        },
        Err(e) => Outcome {
            verdict: Verdict::unknown(format!("check could not run: {}", e.public_reason()))
                .with_detail(e.to_string().into_bytes()),
            error: Some(e),
            elapsed,
        },
    }
}

/// How a single check's outcome is answered ([`crate::serve_check`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Policy {
    /// Answer 503 for a warning (default: 200, as a warning still serves).
    pub warning_is_down: bool,
    /// Put the check's detail (a program's output, a server's message) in
    /// the body. Off by default: it may hold secrets or account names, and
    /// the body goes to anyone who can connect. (`--show-output`, and
    /// `show-output` in a config, as everywhere else.)
    pub show_output: bool,
}

/// Formats a duration for reasons and logs: `850ms`, `1.20s`.
pub fn human_duration(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{}ms", d.as_millis())
    } else {
        format!("{:.2}s", d.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed(Result<Verdict, ()>);
    impl Check for Fixed {
        fn run(&self, _: Deadline) -> Result<Verdict, CheckError> {
            self.0
                .clone()
                .map_err(|()| CheckError::BadTarget { target: "x".into() })
        }
    }

    fn outcome(v: Verdict) -> Outcome {
        run_check(&Fixed(Ok(v)), Deadline::after(Duration::from_secs(1)))
    }

    #[test]
    fn probe_error_is_a_503_with_its_reason() {
        let o = run_check(&Fixed(Err(())), Deadline::after(Duration::from_secs(1)));
        assert_eq!(o.health(), Health::Unknown);
        assert_eq!(o.nagios_code(), 3);
        assert_eq!(
            o.reason(),
            "check could not run: bad target: expected HOST:PORT"
        );
        // The target as written only in the detail (the log's).
        assert_eq!(
            o.verdict.detail.as_deref(),
            Some(&b"bad target \"x\": expected HOST:PORT"[..])
        );
    }

    #[test]
    fn nagios_codes() {
        assert_eq!(outcome(Verdict::healthy("a")).nagios_code(), 0);
        assert_eq!(outcome(Verdict::warning("a")).nagios_code(), 1);
        assert_eq!(outcome(Verdict::unhealthy("a")).nagios_code(), 2);
        assert_eq!(outcome(Verdict::unknown("a")).nagios_code(), 3);
    }

    #[test]
    fn health_words_round_trip() {
        for h in [
            Health::Healthy,
            Health::Warning,
            Health::Unhealthy,
            Health::Unknown,
        ] {
            assert_eq!(Health::from_word(h.as_str()), Some(h));
        }
        assert_eq!(Health::from_word("ok"), None);
    }

    #[test]
    fn durations() {
        assert_eq!(human_duration(Duration::from_millis(850)), "850ms");
        assert_eq!(human_duration(Duration::from_millis(1200)), "1.20s");
    }
}
