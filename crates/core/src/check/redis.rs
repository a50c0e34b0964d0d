//! `redis`: is this Redis (or Valkey) up, of the role asked, replicating,
//! and, with Sentinels named, the primary they agree on?
//!
//! One write carries the whole conversation (`AUTH`, `PING`, three `INFO`
//! sections, `QUIT`) and one read its replies: a round trip, where
//! HAProxy's `tcp-check` script makes one per line and cannot compare a
//! number. With Sentinels, each is asked `SENTINEL get-master-addr-by-name`
//! at the same time as the node, so the guard costs no extra round trip:
//! a primary is healthy only when a majority of the Sentinels that answer
//! name it, and fewer answers than a majority is no quorum. A restarted
//! old master that announces `role:master` to anyone who asks is not the
//! Sentinels' primary, and gets no writes from us.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::tcp::resolve;
use super::{Check, CheckError, Fact, Verdict};
use crate::redis::conn::Sent;
use crate::redis::info::Info;
use crate::redis::resp::{command, Value};
use crate::redis::{Conn, Endpoint, RedisError};
use crate::sys::{self, trust::Untrusted};
use crate::Deadline;

/// What the server must be for the check to pass.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Role {
    /// Up, primary or replica.
    #[default]
    Any,
    /// A primary (`role:master`).
    Primary,
    /// A replica (`role:slave`).
    Replica,
}

impl Role {
    /// The name, as the config and the command line spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Any => "any",
            Role::Primary => "primary",
            Role::Replica => "replica",
        }
    }

    /// Parses a role: `primary`/`master`, `replica`/`slave`, `any`.
    pub fn parse(text: &str) -> Option<Role> {
        Some(match text {
            "any" => Role::Any,
            "primary" | "master" => Role::Primary,
            "replica" | "slave" => Role::Replica,
            _ => return None,
        })
    }
}

/// The limits besides the role.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Limits {
    /// A primary needs at least this many online replicas.
    pub min_replicas: Option<u32>,
    /// A replica's last I/O with its primary at most this long ago.
    pub max_link_age: Option<Duration>,
    /// A replica's offset read from its primary minus the offset it
    /// applied, at most this.
    pub max_lag_bytes: Option<u64>,
    /// The server up at least this long (a restarted node waits).
    pub min_uptime: Option<Duration>,
}

/// The Sentinels that guard the primary role.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sentinels {
    /// Their addresses.
    pub addresses: Vec<(String, u16)>,
    /// The master group's name (`sentinel monitor NAME …`).
    pub master_name: String,
    /// This node's address as the Sentinels name it (`IP`, `PORT`).
    pub node: (String, u16),
}

/// An account: `AUTH [user] password`.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Credentials {
    /// An ACL user (Redis 6+), or none for `requirepass`.
    pub user: Option<String>,
    /// The password; none for a server without one (its Sentinels may
    /// still have theirs).
    pub password: Option<String>,
    /// The Sentinels' own password, if they ask for one.
    pub sentinel_user: Option<String>,
    /// See [`Credentials::sentinel_user`].
    pub sentinel_password: Option<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

/// Checks a Redis server.
#[derive(Debug)]
pub struct RedisCheck {
    endpoint: Endpoint,
    credentials: Option<Credentials>,
    role: Role,
    limits: Limits,
    sentinels: Option<Sentinels>,
}

/// The `INFO` sections read: `uptime_in_seconds` and the version,
/// `loading`, and the role with its replication fields.
const SECTIONS: [&str; 3] = ["server", "persistence", "replication"];

/// The `INFO` fields the check reads (and `slaveN`, a primary's replicas).
const FIELDS: [&str; 13] = [
    "redis_version",
    "valkey_version",
    "uptime_in_seconds",
    "loading",
    "role",
    "master_repl_offset",
    "master_host",
    "master_port",
    "master_link_status",
    "master_link_down_since_seconds",
    "master_last_io_seconds_ago",
    "master_sync_in_progress",
    "slave_repl_offset",
];

/// Whether the check reads `INFO`'s field `key`.
fn read(key: &str) -> bool {
    FIELDS.contains(&key)
        || key
            .strip_prefix("slave")
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// What one conversation read.
struct Facts {
    info: Info,
    /// A replica's primary's `master_repl_offset`, asked when a byte
    /// limit needs it, or why it could not be.
    primary_offset: Option<Result<i64, String>>,
}

impl RedisCheck {
    /// A check of the server at `endpoint`.
    pub fn new(endpoint: Endpoint, role: Role, limits: Limits) -> Self {
        RedisCheck {
            endpoint,
            credentials: None,
            role,
            limits,
            sentinels: None,
        }
    }

    /// Authenticates with `credentials`.
    pub fn with_credentials(mut self, credentials: Credentials) -> Self {
        self.credentials = Some(credentials);
        self
    }

    /// A primary must be the one a majority of these Sentinels name.
    pub fn with_sentinels(mut self, sentinels: Sentinels) -> Self {
        self.sentinels = Some(sentinels);
        self
    }

    fn converse(&self, addrs: &[SocketAddr], deadline: Deadline) -> Result<Verdict, RedisError> {
        Ok(match self.converse_facts(addrs, deadline)? {
            Ok(facts) => self.judge(&facts, None),
            Err(verdict) => verdict,
        })
    }

    fn judge(&self, facts_in: &Facts, guard: Option<&Guard>) -> Verdict {
        let info = &facts_in.info;
        let version = info
            .get("valkey_version")
            .map(|v| format!("Valkey {v}"))
            .or_else(|| info.get("redis_version").map(|v| format!("Redis {v}")))
            .unwrap_or_else(|| "Redis".to_owned());
        match info.int("loading") {
            Some(0) => {}
            Some(_) => return Verdict::unhealthy(format!("{version} is loading its dataset")),
            None => return Verdict::unknown("INFO persistence has no loading field"),
        }
        let primary = match info.get("role") {
            Some("master" | "primary") => true,
            Some("slave" | "replica") => false,
            Some(other) => {
                return Verdict::unknown(format!("unexpected role:{}", printable(other)));
            }
            None => return Verdict::unknown("INFO replication has no role"),
        };
        let mut facts = vec![Fact::RedisPrimary(primary)];
        let with = |facts: &Vec<Fact>, v: Verdict| Verdict {
            facts: facts.clone(),
            ..v
        };
        let uptime = info.int("uptime_in_seconds");
        if let (Some(min), Some(up)) = (self.limits.min_uptime, uptime) {
            if (up as f64) < min.as_secs_f64() {
                return with(
                    &facts,
                    Verdict::unhealthy(format!(
                        "up for {up}s, less than min-uptime {}",
                        super::human_duration(min)
                    )),
                );
            }
        } else if self.limits.min_uptime.is_some() {
            return with(
                &facts,
                Verdict::unknown("uptime unknown (no uptime_in_seconds)"),
            );
        }
        if primary {
            // A replica counts when it is online, acknowledged within
            // Redis's own min-replicas-max-lag (10 s) and, with a byte
            // limit, within it: a replica whose host died stays `online`
            // until repl-timeout.
            let master_offset = info.int("master_repl_offset");
            let behind = |r: &crate::redis::info::Replica| match (master_offset, r.offset) {
                (Some(m), Some(o)) => Some(m.saturating_sub(o).max(0) as u64),
                _ => None,
            };
            let replicas = info.replicas();
            let online = replicas
                .iter()
                .filter(|r| r.online && r.lag.is_some_and(|l| (0..=10).contains(&l)))
                .filter(|r| match self.limits.max_lag_bytes {
                    Some(max) => behind(r).is_some_and(|b| b <= max),
                    None => true,
                })
                .count() as u32;
            if let Some(most) = replicas
                .iter()
                .filter(|r| r.online)
                .filter_map(behind)
                .max()
            {
                facts.push(Fact::RedisReplicaLagBytes(most));
            }
            facts.push(Fact::RedisConnectedReplicas(online));
            if self.role == Role::Replica {
                return with(
                    &facts,
                    Verdict::unhealthy(format!("not a replica: {version} is a primary")),
                );
            }
            if let Some(min) = self.limits.min_replicas {
                if online < min {
                    return with(
                        &facts,
                        Verdict::unhealthy(format!(
                            "{online} replicas online and current, fewer than min-replicas {min}"
                        )),
                    );
                }
            }
            if let Some(guard) = guard {
                facts.push(Fact::RedisSentinelVotes(guard.votes));
                if let Some(refusal) = guard.refusal() {
                    return with(&facts, refusal);
                }
            }
            let mut reason = format!("{version} primary, {online} replicas online");
            if let Some(g) = guard {
                reason.push_str(&format!(", named by {} of {} sentinels", g.votes, g.asked));
            }
            return with(&facts, Verdict::healthy(reason));
        }
        if self.role == Role::Primary {
            return with(
                &facts,
                Verdict::unhealthy(format!("not a primary: {version} is a replica")),
            );
        }
        if info.int("master_sync_in_progress") == Some(1) {
            return with(
                &facts,
                Verdict::unhealthy("replica syncing with its primary"),
            );
        }
        let link = info.get("master_link_status").unwrap_or("unknown");
        if link != "up" {
            let since = info
                .int("master_link_down_since_seconds")
                .filter(|s| *s >= 0)
                .map(|s| format!(", down for {s}s"))
                .unwrap_or_default();
            return with(
                &facts,
                Verdict::unhealthy(format!("replica link {}{since}", printable(link))),
            );
        }
        let age = info.int("master_last_io_seconds_ago").filter(|s| *s >= 0);
        if let Some(a) = age {
            facts.push(Fact::RedisLinkAgeSeconds(a as u64));
        }
        // How far behind its primary: the primary's offset (asked when a
        // byte limit needs it) minus what this replica applied.
        let applied = info.int("slave_repl_offset");
        let lag = match (&facts_in.primary_offset, applied) {
            (Some(Ok(primary)), Some(applied)) => {
                Some(primary.saturating_sub(applied).max(0) as u64)
            }
            _ => None,
        };
        if let Some(l) = lag {
            facts.push(Fact::RedisReplicaLagBytes(l));
        }
        if let Some(max) = self.limits.max_link_age {
            match age {
                Some(a) if (a as f64) > max.as_secs_f64() => {
                    return with(
                        &facts,
                        Verdict::unhealthy(format!(
                            "replica link idle for {a}s, longer than max-link-age {}",
                            super::human_duration(max)
                        )),
                    )
                }
                Some(_) => {}
                None => {
                    return with(
                        &facts,
                        Verdict::unknown("replica link age unknown (master_last_io_seconds_ago)"),
                    )
                }
            }
        }
        if let Some(max) = self.limits.max_lag_bytes {
            match lag {
                Some(l) if l > max => {
                    return with(
                        &facts,
                        Verdict::unhealthy(format!(
                            "replica {} behind its primary, more than max-lag-bytes {}",
                            super::postgres::bytes(l),
                            super::postgres::bytes(max)
                        )),
                    )
                }
                Some(_) => {}
                None => {
                    let why = match &facts_in.primary_offset {
                        Some(Err(why)) => format!("replica lag unknown: primary not asked: {why}"),
                        _ => "replica lag unknown: no replication offsets to compare".to_owned(),
                    };
                    return with(&facts, Verdict::unknown(why));
                }
            }
        }
        let mut reason = format!("{version} replica, link up");
        if let Some(a) = age {
            reason.push_str(&format!(", last I/O {a}s ago"));
        }
        with(&facts, Verdict::healthy(reason))
    }
}

/// What the Sentinels said.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Guard {
    asked: u32,
    answered: u32,
    votes: u32,
    /// Sentinels that answered nil: they monitor no group of that name.
    strangers: u32,
}

impl Guard {
    fn refusal(&self) -> Option<Verdict> {
        let majority = self.asked / 2 + 1;
        if self.answered < majority {
            let strangers = match self.strangers {
                0 => String::new(),
                n => format!(" ({n} know no master group of that name: check master-name)"),
            };
            return Some(Verdict::unhealthy(format!(
                "no sentinel quorum: {} of {} sentinels answered{strangers}",
                self.answered, self.asked
            )));
        }
        // A majority of those listed, not of those that answered: with
        // five, two naming a node while two are silent is no majority,
        // and another node may be named by the other side.
        if self.votes < majority {
            return Some(Verdict::unhealthy(format!(
                "not the sentinels' primary: {} of {} sentinels name it",
                self.votes, self.asked
            )));
        }
        None
    }
}

/// What one Sentinel said of the master group.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Said {
    /// Its address, and who said it (`SENTINEL MYID`).
    Named(String, u16, String),
    /// Nil: it monitors no group of that name.
    Stranger,
}

/// Asks one Sentinel which address its master group has; `None` when it
/// did not answer (down, refused, timed out, garbled).
fn ask_sentinel(
    (host, port): &(String, u16),
    sentinels: &Sentinels,
    credentials: Option<&Credentials>,
    deadline: Deadline,
) -> Option<Said> {
    let addrs = resolve(host, *port, deadline).ok()?;
    let endpoint = Endpoint::Tcp {
        host: host.clone(),
        port: *port,
    };
    let mut conn = Conn::connect(&endpoint, &addrs, deadline).ok()?;
    let mut commands = Vec::with_capacity(3);
    let auth_first = credentials.and_then(|c| c.sentinel_password.as_deref().map(|p| (c, p)));
    if let Some((c, password)) = auth_first {
        commands.push(auth(c.sentinel_user.as_deref(), password));
    }
    commands.push(command(&[
        b"SENTINEL",
        b"get-master-addr-by-name",
        sentinels.master_name.as_bytes(),
    ]));
    // Who answers: one Sentinel listed twice (a name and an address, a
    // load-balanced name) votes once.
    commands.push(command(&[b"SENTINEL", b"MYID"]));
    // No QUIT: Sentinel (7.0) does not know it, answers an error and
    // leaves the connection open. Closing after the answer is as clean.
    let replies = conn.pipeline(&commands).ok()?;
    drop(conn);
    let at = usize::from(auth_first.is_some());
    let id = match replies.get(at + 1) {
        Some(v @ (Value::Simple(_) | Value::Bulk(Some(_)))) => v.text()?.to_owned(),
        // A Sentinel before 6.2 has no MYID: its address stands for it.
        _ => format!("{host}:{port}"),
    };
    match replies.get(at)? {
        Value::Array(Some(items)) if items.len() == 2 => {
            let ip = items[0].text()?.to_owned();
            let port = items[1].text()?.parse().ok()?;
            Some(Said::Named(ip, port, id))
        }
        Value::Array(None) | Value::Bulk(None) => Some(Said::Stranger),
        _ => None,
    }
}

/// Whether the address a Sentinel gave is this node's: IPs compared as
/// addresses (`::1` is `0:0::1`), names without regard to case.
fn is_node(ip: &str, port: u16, node: &(String, u16)) -> bool {
    if port != node.1 {
        return false;
    }
    match (
        ip.parse::<std::net::IpAddr>(),
        node.0.parse::<std::net::IpAddr>(),
    ) {
        (Ok(a), Ok(b)) => a == b,
        _ => ip.eq_ignore_ascii_case(&node.0),
    }
}

impl Check for RedisCheck {
    /// Asks the node (and its Sentinels, at once) by `deadline`.
    fn run(&self, deadline: Deadline) -> Result<Verdict, CheckError> {
        let addrs = match &self.endpoint {
            Endpoint::Tcp { host, port } => resolve(host, *port, deadline)?,
            Endpoint::Unix(_) => Vec::new(),
        };
        let Some(sentinels) = &self.sentinels else {
            return Ok(self
                .converse(&addrs, deadline)
                .unwrap_or_else(|e| Verdict::down(e.public_reason(), &e)));
        };
        // The Sentinels on threads of their own, reporting over a channel:
        // once a majority of those listed has named this node, or can no
        // longer, the rest are not waited for (a silent one would hold
        // every poll to its deadline). Threads left behind end at the
        // deadline.
        // The node's questions go out first: starting the Sentinels'
        // threads then overlaps its answer instead of delaying it.
        let asked_node = self.ask(&addrs, deadline);
        let (tx, rx) = std::sync::mpsc::channel();
        for address in &sentinels.addresses {
            let (sender, address, sentinels, credentials) = (
                tx.clone(),
                address.clone(),
                sentinels.clone(),
                self.credentials.clone(),
            );
            let spawned = std::thread::Builder::new().spawn(move || {
                let said = ask_sentinel(&address, &sentinels, credentials.as_ref(), deadline);
                let _ = sender.send(said);
            });
            if spawned.is_err() {
                // Not asked: it counts as not answering.
                let _ = tx.send(None);
            }
        }
        drop(tx);
        let node = asked_node.and_then(|started| self.answer(started, deadline));
        let asked = sentinels.addresses.len() as u32;
        let majority = asked / 2 + 1;
        let mut heard = 0u32;
        let mut votes = 0u32;
        let mut answerers: Vec<String> = Vec::new();
        let mut strangers = 0;
        // Once decided, the answers already on their way are still taken
        // (a few milliseconds) so that the reason and the votes count
        // them; a silent Sentinel is not waited for past that.
        const GRACE: Duration = Duration::from_millis(20);
        let mut decided: Option<std::time::Instant> = None;
        while heard < asked {
            let outstanding = asked - heard;
            if decided.is_none() && (votes >= majority || votes + outstanding < majority) {
                decided = Some(std::time::Instant::now());
            }
            let wait = match decided {
                Some(at) => match GRACE.checked_sub(at.elapsed()) {
                    Some(left) => left.min(deadline.remaining()),
                    None => break,
                },
                None => deadline.remaining(),
            };
            match rx.recv_timeout(wait) {
                Ok(said) => {
                    match said {
                        // A Sentinel is counted once, by its ID.
                        Some(Said::Named(ip, port, id)) if !answerers.contains(&id) => {
                            if is_node(&ip, port, &sentinels.node) {
                                votes += 1;
                            }
                            answerers.push(id);
                        }
                        Some(Said::Named(..)) => {}
                        Some(Said::Stranger) => strangers += 1,
                        None => {}
                    }
                    heard += 1;
                }
                Err(_) => break,
            }
        }
        let guard = Guard {
            asked,
            answered: answerers.len() as u32,
            votes,
            strangers,
        };
        Ok(match node {
            Ok(Ok(facts)) => self.judge(&facts, Some(&guard)),
            Ok(Err(verdict)) => verdict,
            Err(e) => Verdict::down(e.public_reason(), &e),
        })
    }
}

impl RedisCheck {
    /// The node's facts, or the verdict that ends the check before them.
    fn converse_facts(
        &self,
        addrs: &[SocketAddr],
        deadline: Deadline,
    ) -> Result<Result<Facts, Verdict>, RedisError> {
        let started = self.ask(addrs, deadline)?;
        self.answer(started, deadline)
    }

    /// Connects and sends the conversation: the replies are read by
    /// [`RedisCheck::answer`], so that Sentinels are asked while the node
    /// works.
    fn ask(&self, addrs: &[SocketAddr], deadline: Deadline) -> Result<(Conn, Sent), RedisError> {
        let mut conn = Conn::connect(&self.endpoint, addrs, deadline)?;
        let mut commands = Vec::with_capacity(6);
        if let Some((user, password)) = self.node_auth() {
            commands.push(auth(user, password));
        }
        commands.push(command(&[b"PING"]));
        // One section each: INFO takes several only from Redis 7.
        for section in SECTIONS {
            commands.push(command(&[b"INFO", section.as_bytes()]));
        }
        commands.push(command(&[b"QUIT"]));
        let sent = conn.send(&commands)?;
        Ok((conn, sent))
    }

    /// Reads the node's replies (and, for a byte limit on a replica, asks
    /// its primary).
    fn answer(
        &self,
        (mut conn, sent): (Conn, Sent),
        deadline: Deadline,
    ) -> Result<Result<Facts, Verdict>, RedisError> {
        let replies = conn.receive(sent)?;
        conn.close();
        let node_auth = self.node_auth();
        let mut facts = match read_replies(replies, node_auth.map(|(u, _)| u)) {
            Ok(f) => f,
            Err(verdict) => return Ok(Err(verdict)),
        };
        // Only where the verdict weighs it: a replica that is syncing or
        // whose link is down is judged before (and its primary is the one
        // least likely to answer, which would take the poll's whole time).
        let info = &facts.info;
        let weighed = matches!(info.get("role"), Some("slave" | "replica"))
            && info.int("master_sync_in_progress") != Some(1)
            && info.get("master_link_status") == Some("up");
        if weighed && self.limits.max_lag_bytes.is_some() && self.role != Role::Primary {
            facts.primary_offset = Some(self.primary_offset(info, deadline));
        }
        Ok(Ok(facts))
    }

    /// The user (if any) and password the node is given, if any.
    fn node_auth(&self) -> Option<(Option<&str>, &str)> {
        let c = self.credentials.as_ref()?;
        Some((c.user.as_deref(), c.password.as_deref()?))
    }

    /// The replica's primary's `master_repl_offset`, asked with the same
    /// credentials at the address the replica follows.
    fn primary_offset(&self, info: &Info, deadline: Deadline) -> Result<i64, String> {
        let host = info.get("master_host").ok_or("no master_host")?.to_owned();
        let port: u16 = info
            .get("master_port")
            .and_then(|p| p.parse().ok())
            .ok_or("no master_port")?;
        let addrs = resolve(&host, port, deadline).map_err(|e| e.public_reason().to_owned())?;
        let endpoint = Endpoint::Tcp { host, port };
        let mut conn = Conn::connect(&endpoint, &addrs, deadline).map_err(|e| e.public_reason())?;
        let mut commands = Vec::with_capacity(3);
        let node_auth = self.node_auth();
        if let Some((user, password)) = node_auth {
            commands.push(auth(user, password));
        }
        commands.push(command(&[b"INFO", b"replication"]));
        commands.push(command(&[b"QUIT"]));
        let replies = conn.pipeline(&commands).map_err(|e| e.public_reason())?;
        conn.close();
        let mut replies = replies.into_iter();
        if node_auth.is_some() {
            if let Some(v @ Value::Error(_)) = replies.next() {
                return Err(refused("AUTH", &v).reason);
            }
        }
        let text = replies
            .next()
            .and_then(|v| v.text().map(str::to_owned))
            .ok_or("no answer to INFO replication")?;
        Info::parse(&text)
            .int("master_repl_offset")
            .ok_or_else(|| "no master_repl_offset".to_owned())
    }
}

/// The node's replies, in the order sent: `AUTH` (when authenticating),
/// `PING`, three `INFO`s.
/// `auth` is `Some(user)` when an `AUTH` went first.
fn read_replies(replies: Vec<Value>, auth: Option<Option<&str>>) -> Result<Facts, Verdict> {
    let mut replies = replies.into_iter();
    if let Some(user) = auth {
        if let Some(v @ Value::Error(_)) = replies.next() {
            // The account only in the detail (the log's).
            let what = match user {
                Some(u) => format!("AUTH as {}", printable(u)),
                None => "AUTH".to_owned(),
            };
            return Err(refused_as("AUTH", &what, &v));
        }
    }
    match replies.next() {
        Some(Value::Simple(s)) if s == "PONG" => {}
        Some(v @ Value::Error(_)) => return Err(refused("PING", &v)),
        _ => return Err(Verdict::unhealthy("PING not answered PONG")),
    }
    let mut info = Info::default();
    for section in SECTIONS {
        match replies.next() {
            Some(v @ Value::Error(_)) => return Err(refused("INFO", &v)),
            Some(v) => match v.text() {
                Some(text) => info.extend_only(text, &read),
                None => {
                    return Err(Verdict::unknown(format!(
                        "unexpected answer to INFO {section}"
                    )))
                }
            },
            None => return Err(Verdict::unknown(format!("no answer to INFO {section}"))),
        }
    }
    Ok(Facts {
        info,
        primary_offset: None,
    })
}

fn auth(user: Option<&str>, password: &str) -> Vec<u8> {
    match user {
        Some(u) => command(&[b"AUTH", u.as_bytes(), password.as_bytes()]),
        None => command(&[b"AUTH", password.as_bytes()]),
    }
}

/// The verdict for the server's error to `what`: by its code, publicly;
/// the whole text (which may name the user) as the detail.
fn refused(what: &str, error: &Value) -> Verdict {
    refused_as(what, what, error)
}

/// [`refused`], the detail naming the command as `detail_what`.
fn refused_as(what: &str, detail_what: &str, error: &Value) -> Verdict {
    let code = error.error_code().unwrap_or("ERR");
    let text = match error {
        Value::Error(e) => e.clone(),
        _ => String::new(),
    };
    let lower = text.to_ascii_lowercase();
    let verdict = match code {
        "WRONGPASS" => Verdict::unhealthy("access denied"),
        "NOAUTH" => Verdict::unhealthy("access denied: the server needs a password"),
        "NOPERM" => Verdict::unknown(format!(
            "no permission for {what}: grant the check's user what docs/redis.md lists"
        )),
        "LOADING" => Verdict::unhealthy("the server is loading its dataset"),
        "MASTERDOWN" => Verdict::unhealthy("the replica's link to its primary is down"),
        // Redis 5: "ERR invalid password"; a password sent to a server
        // without one: "ERR AUTH <password> called without any password
        // configured".
        _ if what == "AUTH" && lower.contains("password") => Verdict::unhealthy("access denied"),
        _ => Verdict::unhealthy(format!("server error {} to {what}", printable(code))),
    };
    // A server that does not know AUTH echoes its arguments, the password
    // among them: for AUTH only the error's code is kept.
    let shown = if what == "AUTH" {
        code.to_owned()
    } else {
        text
    };
    verdict.with_detail(format!("{detail_what}: {}", printable(&shown)).into_bytes())
}

/// Server text in a reason: printable and bounded.
fn printable(text: &str) -> String {
    text.chars()
        .take(64)
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .collect()
}

/// Why a credentials file was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CredentialsError {
    /// It could not be opened or read.
    #[error("credentials-file {}: {}", path.display(), sys::io_reason(source))]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// It may not be trusted.
    #[error("credentials-file {}: refused: {why} (it holds a password: chmod 0600 it)", path.display())]
    Refused {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        why: Untrusted,
    },
    /// It is not the format.
    #[error("credentials-file {}: {why}", path.display())]
    Syntax {
        /// The file.
        path: PathBuf,
        /// What is wrong (never a value from the file).
        why: String,
    },
}

/// What a credentials file must be: as a PostgreSQL passfile (regular, at
/// most 64 KiB, the reader's or root's, no bit for group or others).
pub const CREDENTIALS_TRUST: sys::trust::Rules = super::postgres::PASSFILE_TRUST;

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawCredentials {
    user: Option<String>,
    password: Option<String>,
    sentinel_user: Option<String>,
    sentinel_password: Option<String>,
}

/// Reads a credentials file: TOML, `password = "…"` and for an ACL user
/// `user = "…"` (and `sentinel-password`, `sentinel-user` for Sentinels
/// that ask for one).
///
/// # Errors
/// [`CredentialsError`].
pub fn load_credentials(path: &Path) -> Result<Credentials, CredentialsError> {
    let text = sys::trust::read(path, &CREDENTIALS_TRUST).map_err(|e| match e {
        sys::trust::Unread::Io(source) => CredentialsError::Io {
            path: path.to_owned(),
            source,
        },
        sys::trust::Unread::Untrusted(why) => CredentialsError::Refused {
            path: path.to_owned(),
            why,
        },
    })?;
    let raw: RawCredentials = toml::from_str(&text).map_err(|e| CredentialsError::Syntax {
        path: path.to_owned(),
        // toml's message quotes the offending line, which may be the
        // password: only where it is, and what was expected.
        why: match e.span() {
            Some(span) => {
                let line = text[..span.start.min(text.len())].lines().count().max(1);
                format!("line {line}: expected password = \"…\" and optionally user = \"…\"")
            }
            None => "expected password = \"…\" and optionally user = \"…\"".into(),
        },
    })?;
    let refuse = |why: &str| CredentialsError::Syntax {
        path: path.to_owned(),
        why: why.to_owned(),
    };
    if raw.user.is_some() && raw.password.is_none() {
        return Err(refuse("user without password"));
    }
    if raw.sentinel_user.is_some() && raw.sentinel_password.is_none() {
        return Err(refuse("sentinel-user without sentinel-password"));
    }
    if raw.password.is_none() && raw.sentinel_password.is_none() {
        return Err(refuse("no password and no sentinel-password"));
    }
    Ok(Credentials {
        user: raw.user,
        password: raw.password,
        sentinel_user: raw.sentinel_user,
        sentinel_password: raw.sentinel_password,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::Health;

    fn info(text: &str) -> Facts {
        Facts {
            info: Info::parse(text),
            primary_offset: None,
        }
    }

    fn replica_of(primary_offset: i64) -> Facts {
        Facts {
            primary_offset: Some(Ok(primary_offset)),
            ..info(REPLICA)
        }
    }

    fn check(role: Role, limits: Limits) -> RedisCheck {
        RedisCheck::new(Endpoint::Unix("/x".into()), role, limits)
    }

    const PRIMARY: &str = "redis_version:7.0.15\nuptime_in_seconds:100\nloading:0\nrole:master\n\
        connected_slaves:1\nslave0:ip=127.0.0.1,port=7001,state=online,offset=10,lag=0\n";
    const REPLICA: &str = "redis_version:7.0.15\nuptime_in_seconds:100\nloading:0\nrole:slave\n\
        master_link_status:up\nmaster_last_io_seconds_ago:3\nmaster_sync_in_progress:0\n\
        slave_read_repl_offset:5000\nslave_repl_offset:1000\n";

    #[test]
    fn roles_and_limits() {
        let v = check(Role::Primary, Limits::default()).judge(&info(PRIMARY), None);
        assert_eq!(v.health, Health::Healthy, "{}", v.reason);
        assert_eq!(v.reason, "Redis 7.0.15 primary, 1 replicas online");
        assert!(v.facts.contains(&Fact::RedisConnectedReplicas(1)));
        let v = check(Role::Replica, Limits::default()).judge(&info(PRIMARY), None);
        assert_eq!(v.reason, "not a replica: Redis 7.0.15 is a primary");
        let v = check(Role::Primary, Limits::default()).judge(&info(REPLICA), None);
        assert_eq!(v.reason, "not a primary: Redis 7.0.15 is a replica");
        let v = check(Role::Replica, Limits::default()).judge(&info(REPLICA), None);
        assert_eq!(v.health, Health::Healthy, "{}", v.reason);
        assert!(v.facts.contains(&Fact::RedisLinkAgeSeconds(3)));
        // The lag against the primary's offset, when it was asked.
        let v = check(Role::Replica, Limits::default()).judge(&replica_of(5000), None);
        assert!(v.facts.contains(&Fact::RedisReplicaLagBytes(4000)));
        let strict = Limits {
            min_replicas: Some(2),
            max_link_age: Some(Duration::from_secs(2)),
            max_lag_bytes: Some(1024),
            min_uptime: Some(Duration::from_secs(300)),
        };
        let v = check(
            Role::Any,
            Limits {
                min_uptime: None,
                ..strict
            },
        )
        .judge(&info(PRIMARY), None);
        // (No master_repl_offset: the byte limit cannot be held, and the
        // replica does not count.)
        assert_eq!(
            v.reason,
            "0 replicas online and current, fewer than min-replicas 2"
        );
        let v = check(Role::Any, strict).judge(&info(PRIMARY), None);
        assert_eq!(v.reason, "up for 100s, less than min-uptime 300.00s");
        let v = check(
            Role::Any,
            Limits {
                min_uptime: None,
                ..strict
            },
        )
        .judge(&info(REPLICA), None);
        assert_eq!(
            v.reason,
            "replica link idle for 3s, longer than max-link-age 2.00s"
        );
        let v = check(
            Role::Any,
            Limits {
                min_uptime: None,
                max_link_age: None,
                ..strict
            },
        )
        .judge(&replica_of(5000), None);
        assert_eq!(
            v.reason,
            "replica 3.9 kB behind its primary, more than max-lag-bytes 1 kB"
        );
        // The primary could not be asked: unknown, with why.
        let lost = Facts {
            primary_offset: Some(Err("cannot connect: connection refused".into())),
            ..info(REPLICA)
        };
        let v = check(
            Role::Replica,
            Limits {
                max_lag_bytes: Some(1024),
                ..Limits::default()
            },
        )
        .judge(&lost, None);
        assert_eq!(v.health, Health::Unknown);
        assert_eq!(
            v.reason,
            "replica lag unknown: primary not asked: cannot connect: connection refused"
        );
        // On a primary, a byte limit holds its replicas: one 5 kB behind
        // does not count toward min-replicas.
        let far = format!("{PRIMARY}master_repl_offset:5010\n");
        let v = check(
            Role::Primary,
            Limits {
                min_replicas: Some(1),
                max_lag_bytes: Some(1024),
                ..Limits::default()
            },
        )
        .judge(&info(&far), None);
        assert_eq!(
            v.reason,
            "0 replicas online and current, fewer than min-replicas 1"
        );
        assert!(v.facts.contains(&Fact::RedisReplicaLagBytes(5000)));
        // Online, but not heard from for a minute: not counted.
        let silent = PRIMARY.replace(",lag=0", ",lag=60");
        let v = check(
            Role::Primary,
            Limits {
                min_replicas: Some(1),
                ..Limits::default()
            },
        )
        .judge(&info(&silent), None);
        assert_eq!(v.health, Health::Unhealthy);
        let no_loading = PRIMARY.replace("loading:0\n", "");
        let v = check(Role::Any, Limits::default()).judge(&info(&no_loading), None);
        assert_eq!(v.health, Health::Unknown);
        // Valkey's spellings.
        let valkey = "valkey_version:8.0.1\nloading:0\nrole:primary\nconnected_slaves:0\n";
        let v = check(Role::Primary, Limits::default()).judge(&info(valkey), None);
        assert_eq!(v.reason, "Valkey 8.0.1 primary, 0 replicas online");
    }

    #[test]
    fn what_is_never_healthy() {
        let loading = PRIMARY.replace("loading:0", "loading:1");
        let v = check(Role::Any, Limits::default()).judge(&info(&loading), None);
        assert_eq!(v.health, Health::Unhealthy);
        let syncing = REPLICA.replace("master_sync_in_progress:0", "master_sync_in_progress:1");
        let v = check(Role::Any, Limits::default()).judge(&info(&syncing), None);
        assert_eq!(v.reason, "replica syncing with its primary");
        let down = REPLICA.replace(
            "master_link_status:up",
            "master_link_status:down\nmaster_link_down_since_seconds:7",
        );
        let v = check(Role::Replica, Limits::default()).judge(&info(&down), None);
        assert_eq!(v.reason, "replica link down, down for 7s");
        let v = check(Role::Any, Limits::default()).judge(&info("role:sentinel\n"), None);
        assert_eq!(v.health, Health::Unknown);
        // No lag figure: a byte limit cannot be held.
        let old = REPLICA.replace("slave_repl_offset:1000\n", "");
        let v = check(
            Role::Replica,
            Limits {
                max_lag_bytes: Some(1),
                ..Limits::default()
            },
        )
        .judge(&info(&old), None);
        assert_eq!(v.health, Health::Unknown);
    }

    #[test]
    fn the_sentinels_guard() {
        let guard = |asked, answered, votes| Guard {
            asked,
            answered,
            votes,
            strangers: 0,
        };
        let judge =
            |g: Guard| check(Role::Primary, Limits::default()).judge(&info(PRIMARY), Some(&g));
        assert_eq!(judge(guard(3, 3, 3)).health, Health::Healthy);
        assert_eq!(judge(guard(3, 2, 2)).health, Health::Healthy);
        assert!(judge(guard(3, 3, 2)).reason.contains("named by 2 of 3"));
        assert_eq!(
            judge(guard(3, 3, 1)).reason,
            "not the sentinels' primary: 1 of 3 sentinels name it"
        );
        assert_eq!(
            judge(guard(3, 2, 1)).reason,
            "not the sentinels' primary: 1 of 3 sentinels name it"
        );
        // A majority of those listed: two of five is not one, however
        // many of the others are silent.
        assert_eq!(
            judge(guard(5, 3, 2)).reason,
            "not the sentinels' primary: 2 of 5 sentinels name it"
        );
        assert_eq!(judge(guard(5, 3, 3)).health, Health::Healthy);
        assert_eq!(
            judge(guard(3, 1, 1)).reason,
            "no sentinel quorum: 1 of 3 sentinels answered"
        );
        assert_eq!(judge(guard(3, 0, 0)).health, Health::Unhealthy);
        let v = judge(guard(3, 1, 1));
        assert!(v.facts.contains(&Fact::RedisSentinelVotes(1)));
        let v = judge(Guard {
            strangers: 3,
            ..guard(3, 0, 0)
        });
        assert_eq!(
            v.reason,
            "no sentinel quorum: 0 of 3 sentinels answered (3 know no master group of that name: check master-name)"
        );
    }

    #[test]
    fn refusals_by_code() {
        let e = |t: &str| Value::Error(t.into());
        let v = refused(
            "AUTH",
            &e("WRONGPASS invalid username-password pair or user is disabled."),
        );
        assert_eq!(v.reason, "access denied");
        assert_eq!(
            refused("AUTH", &e("ERR invalid password")).reason,
            "access denied"
        );
        assert_eq!(
            refused("PING", &e("NOAUTH Authentication required.")).reason,
            "access denied: the server needs a password"
        );
        let v = refused(
            "INFO",
            &e("NOPERM User monitor has no permissions to run the 'info' command"),
        );
        assert_eq!(v.health, Health::Unknown);
        assert!(!v.reason.contains("monitor"));
        assert!(String::from_utf8_lossy(v.detail.as_deref().unwrap()).contains("monitor"));
    }

    #[test]
    fn credentials_files() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("ih-redis-cred-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("c.toml");
        std::fs::write(&path, "user = \"monitor\"\npassword = \"p#w\"\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let c = load_credentials(&path).unwrap();
        assert_eq!(
            (c.user.as_deref(), c.password.as_deref()),
            (Some("monitor"), Some("p#w"))
        );
        assert!(!format!("{c:?}").contains("p#w"));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = load_credentials(&path).unwrap_err().to_string();
        assert!(e.contains("readable by others"), "{e}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::write(&path, "password = secret-unquoted\n").unwrap();
        let e = load_credentials(&path).unwrap_err().to_string();
        assert!(!e.contains("secret-unquoted"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
