//! `galera`: may this Galera node take traffic? The clustercheck question.
//!
//! One authenticated connection, one query (one round trip) for
//! `wsrep_on`, `wsrep_local_state`, `wsrep_cluster_status`, `wsrep_ready`,
//! `wsrep_reject_queries` and `read_only`, then a clean quit. Every way to be
//! down has its own reason, so an authentication mistake never looks like a
//! cluster problem.

use super::mariadb::{addresses, session, Credentials};
use super::{Check, CheckError, Fact, Verdict};
use crate::mysql::{Endpoint, MysqlError, ResultSet};
use crate::Deadline;

/// The one query, one round trip: the status variables come from one scan
/// of `information_schema.GLOBAL_STATUS` (a scan materializes every status
/// variable, so one scan rather than one per variable: about 0.6 ms less
/// server time per check), the system variables are appended as rows.
/// Status rows are absent while wsrep is off. Any account can read all of
/// it, so the monitoring user needs no privilege.
pub const STATE_QUERY: &str = "SELECT LOWER(VARIABLE_NAME), VARIABLE_VALUE \
FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME IN \
('WSREP_LOCAL_STATE', 'WSREP_LOCAL_STATE_COMMENT', 'WSREP_CLUSTER_STATUS', 'WSREP_READY') \
UNION ALL SELECT 'wsrep_on', @@global.wsrep_on \
UNION ALL SELECT 'read_only', @@global.read_only \
UNION ALL SELECT 'wsrep_reject_queries', @@global.wsrep_reject_queries";

/// The unknown-variable error: a server built without wsrep.
const UNKNOWN_VARIABLE: u16 = 1193;

/// What makes a node available, beyond being synced.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GaleraPolicy {
    /// A donor (or desynced node, state 2) takes traffic too, as with
    /// clustercheck's `AVAILABLE_WHEN_DONOR=1`.
    pub available_when_donor: bool,
    /// A read-only node is down (clustercheck's `AVAILABLE_WHEN_READONLY=0`);
    /// by default it is available, as in clustercheck.
    pub read_only_is_down: bool,
}

/// The node's state as read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GaleraState {
    /// `@@wsrep_on`.
    pub wsrep_on: bool,
    /// `@@read_only`.
    pub read_only: bool,
    /// `@@wsrep_reject_queries` (`NONE`, `ALL`, `ALL_KILL`).
    pub reject_queries: String,
    /// `wsrep_local_state` (1 joining, 2 donor/desynced, 3 joined, 4 synced).
    pub local_state: Option<u32>,
    /// `wsrep_local_state_comment`.
    pub state_comment: Option<String>,
    /// `wsrep_cluster_status` (`Primary`, `non-Primary`, `Disconnected`).
    pub cluster_status: Option<String>,
    /// `wsrep_ready`.
    pub ready: bool,
}

impl GaleraState {
    /// Reads the state from [`STATE_QUERY`]'s rows of (name, value).
    pub fn from_result(set: &ResultSet) -> GaleraState {
        let get = |name: &str| {
            set.rows.iter().find_map(|row| match row.as_slice() {
                [Some(n), value] if n.eq_ignore_ascii_case(name) => value.as_deref(),
                _ => None,
            })
        };
        let on = |name| matches!(get(name), Some(v) if v == "1" || v.eq_ignore_ascii_case("ON"));
        GaleraState {
            wsrep_on: on("wsrep_on"),
            read_only: on("read_only"),
            reject_queries: get("wsrep_reject_queries").unwrap_or("NONE").to_owned(),
            local_state: get("wsrep_local_state").and_then(|v| v.trim().parse().ok()),
            state_comment: get("wsrep_local_state_comment").map(str::to_owned),
            cluster_status: get("wsrep_cluster_status").map(str::to_owned),
            ready: on("wsrep_ready"),
        }
    }

    /// The verdict for this state under `policy`. The order is the order of
    /// what an operator must fix first: no wsrep, no primary component,
    /// not ready, the node's own state, rejected queries, read-only.
    pub fn verdict(&self, policy: &GaleraPolicy) -> Verdict {
        let verdict = self.judge(policy);
        match self.local_state {
            Some(n) if self.wsrep_on => verdict.with_fact(Fact::GaleraLocalState(n)),
            _ => verdict,
        }
    }

    fn judge(&self, policy: &GaleraPolicy) -> Verdict {
        if !self.wsrep_on {
            return Verdict::unhealthy("wsrep not enabled (wsrep_on is OFF): not a Galera node");
        }
        let cluster = self.cluster_status.as_deref().unwrap_or("unknown");
        if cluster != "Primary" {
            return Verdict::unhealthy(format!("non-primary: cluster status {cluster}"));
        }
        if !self.ready {
            return Verdict::unhealthy("not ready (wsrep_ready is OFF)");
        }
        let comment = self.state_comment.as_deref().unwrap_or("");
        let state = match self.local_state {
            Some(4) => "synced",
            Some(2) if policy.available_when_donor => "donor/desynced, available when donor",
            Some(2) => return Verdict::unhealthy(format!("donor/desynced (state 2: {comment})")),
            Some(1) => return Verdict::unhealthy(format!("joining (state 1: {comment})")),
            Some(3) => {
                return Verdict::unhealthy(format!("joined, not yet synced (state 3: {comment})"))
            }
            Some(n) => return Verdict::unhealthy(format!("not synced (state {n}: {comment})")),
            None => return Verdict::unhealthy("not synced (wsrep_local_state unknown)"),
        };
        if !self.reject_queries.eq_ignore_ascii_case("NONE") {
            return Verdict::unhealthy(format!(
                "rejecting queries (wsrep_reject_queries = {})",
                self.reject_queries
            ));
        }
        if self.read_only && policy.read_only_is_down {
            return Verdict::unhealthy("read-only (read_only is ON)");
        }
        let read_only = if self.read_only { ", read-only" } else { "" };
        Verdict::healthy(format!("{state}{read_only}"))
    }
}

/// The Galera node check.
#[derive(Clone, Debug)]
pub struct GaleraCheck {
    endpoint: Endpoint,
    credentials: Credentials,
    policy: GaleraPolicy,
}

impl GaleraCheck {
    /// A check of the node at `endpoint`, logging in as `credentials`.
    pub fn new(endpoint: Endpoint, credentials: Credentials, policy: GaleraPolicy) -> Self {
        GaleraCheck {
            endpoint,
            credentials,
            policy,
        }
    }
}

impl Check for GaleraCheck {
    fn run(&self, deadline: Deadline) -> Result<Verdict, CheckError> {
        let addrs = addresses(&self.endpoint, deadline)?;
        let read = session(
            &self.endpoint,
            &addrs,
            &self.credentials,
            deadline,
            |conn| conn.query(STATE_QUERY),
        );
        Ok(match read {
            Ok((sets, _)) => match sets.first() {
                Some(set) if !set.rows.is_empty() => {
                    GaleraState::from_result(set).verdict(&self.policy)
                }
                _ => Verdict::unhealthy("the state query returned no row"),
            },
            Err(MysqlError::Server(e)) if e.code == UNKNOWN_VARIABLE => {
                Verdict::unhealthy(format!("wsrep not enabled ({})", e.public_reason()))
                    .with_detail(e.to_string().into_bytes())
            }
            Err(e) => Verdict::down(e.public_reason(), &e),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::Health;

    fn synced() -> GaleraState {
        GaleraState {
            wsrep_on: true,
            read_only: false,
            reject_queries: "NONE".into(),
            local_state: Some(4),
            state_comment: Some("Synced".into()),
            cluster_status: Some("Primary".into()),
            ready: true,
        }
    }

    fn verdict(state: GaleraState, policy: GaleraPolicy) -> (Health, String) {
        let v = state.verdict(&policy);
        (v.health, v.reason)
    }

    #[test]
    fn clustercheck_table() {
        let p = GaleraPolicy::default();
        let donor_ok = GaleraPolicy {
            available_when_donor: true,
            ..p
        };
        let ro_down = GaleraPolicy {
            read_only_is_down: true,
            ..p
        };
        let with = |f: fn(&mut GaleraState)| {
            let mut s = synced();
            f(&mut s);
            s
        };
        use Health::*;
        assert_eq!(verdict(synced(), p), (Healthy, "synced".into()));
        let donor = with(|s| {
            s.local_state = Some(2);
            s.state_comment = Some("Donor/Desynced".into());
        });
        assert_eq!(
            verdict(donor.clone(), p),
            (Unhealthy, "donor/desynced (state 2: Donor/Desynced)".into())
        );
        assert_eq!(
            verdict(donor, donor_ok),
            (Healthy, "donor/desynced, available when donor".into())
        );
        let joining = with(|s| s.local_state = Some(1));
        assert!(verdict(joining, donor_ok).1.starts_with("joining"));
        let joined = with(|s| s.local_state = Some(3));
        assert!(verdict(joined, donor_ok).1.starts_with("joined"));
        let np = with(|s| s.cluster_status = Some("non-Primary".into()));
        assert_eq!(
            verdict(np, p),
            (Unhealthy, "non-primary: cluster status non-Primary".into())
        );
        let not_ready = with(|s| s.ready = false);
        assert_eq!(verdict(not_ready, p).1, "not ready (wsrep_ready is OFF)");
        let rejecting = with(|s| s.reject_queries = "ALL".into());
        assert_eq!(
            verdict(rejecting, p).1,
            "rejecting queries (wsrep_reject_queries = ALL)"
        );
        let ro = with(|s| s.read_only = true);
        assert_eq!(
            verdict(ro.clone(), p),
            (Healthy, "synced, read-only".into())
        );
        assert_eq!(
            verdict(ro, ro_down),
            (Unhealthy, "read-only (read_only is ON)".into())
        );
        let off = GaleraState::default();
        assert!(verdict(off, p).1.starts_with("wsrep not enabled"));
    }

    fn rows(pairs: &[(&str, Option<&str>)]) -> ResultSet {
        ResultSet {
            columns: vec!["lower(VARIABLE_NAME)".into(), "VARIABLE_VALUE".into()],
            rows: pairs
                .iter()
                .map(|(n, v)| vec![Some(n.to_string()), v.map(String::from)])
                .collect(),
        }
    }

    #[test]
    fn state_from_a_plain_mariadb() {
        // wsrep off: no status rows at all, only the variables.
        let set = rows(&[
            ("wsrep_on", Some("0")),
            ("read_only", Some("0")),
            ("wsrep_reject_queries", Some("NONE")),
        ]);
        let state = GaleraState::from_result(&set);
        assert!(!state.wsrep_on);
        assert_eq!(state.local_state, None);
    }

    #[test]
    fn state_from_a_synced_node() {
        let set = rows(&[
            ("wsrep_local_state_comment", Some("Synced")),
            ("wsrep_cluster_status", Some("Primary")),
            ("wsrep_local_state", Some("4")),
            ("wsrep_ready", Some("ON")),
            ("wsrep_on", Some("1")),
            ("read_only", Some("1")),
            ("wsrep_reject_queries", Some("NONE")),
        ]);
        assert_eq!(
            GaleraState::from_result(&set),
            GaleraState {
                read_only: true,
                ..synced()
            }
        );
    }
}
