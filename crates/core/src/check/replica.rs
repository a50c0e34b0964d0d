//! `replica`: is this asynchronous replica replicating, and close enough?
//!
//! Healthy when both replication threads run and `Seconds_Behind_Master` is
//! a number no larger than the limit, compared as numbers (the shell
//! scripts' string comparison passes `10 < 5`). NULL lag is down: it means
//! the SQL thread is not applying, whatever else the row says.

use super::mariadb::{addresses, session, Credentials};
use super::{Check, CheckError, Fact, Verdict};
use crate::mysql::{Endpoint, ResultSet};
use crate::Deadline;

/// The replica check.
#[derive(Clone, Debug)]
pub struct ReplicaCheck {
    endpoint: Endpoint,
    credentials: Credentials,
    max_lag: u64,
    connection: Option<String>,
}

/// Why a connection name was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("bad replication connection name {0:?}: use letters, digits, '_', '-' or '.', at most 64")]
pub struct BadConnectionName(pub String);

impl ReplicaCheck {
    /// A check of the replica at `endpoint`, allowing `max_lag` seconds.
    /// `connection` names one of MariaDB's multi-source connections.
    ///
    /// # Errors
    /// A connection name that could not be put in the statement safely.
    pub fn new(
        endpoint: Endpoint,
        credentials: Credentials,
        max_lag: u64,
        connection: Option<String>,
    ) -> Result<Self, BadConnectionName> {
        if let Some(name) = &connection {
            let ok = !name.is_empty()
                && name.len() <= 64
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c));
            if !ok {
                return Err(BadConnectionName(name.clone()));
            }
        }
        Ok(ReplicaCheck {
            endpoint,
            credentials,
            max_lag,
            connection,
        })
    }

    /// The statement: MariaDB's multi-source form when a connection is named.
    pub fn statement(&self) -> String {
        match &self.connection {
            Some(name) => format!("SHOW SLAVE '{name}' STATUS"),
            None => "SHOW SLAVE STATUS".to_owned(),
        }
    }
}

/// The verdict for a `SHOW SLAVE STATUS` result.
pub fn replica_verdict(set: &ResultSet, max_lag: u64) -> Verdict {
    if set.rows.is_empty() {
        return Verdict::unhealthy("not a replica (SHOW SLAVE STATUS is empty)");
    }
    let get = |name: &str| -> &str { set.get(0, name).unwrap_or("") };
    // The last error's number is public; its text names the replication
    // account and the primary's address, so it is detail.
    let stopped = |what: &str, errno: &str, error: &str| {
        let text = get(error);
        if text.is_empty() {
            return Verdict::unhealthy(what);
        }
        let number = get(errno);
        Verdict::unhealthy(format!("{what}: error {number}"))
            .with_detail(format!("error {number}: {text}").into_bytes())
    };
    let io = get("Slave_IO_Running");
    if io != "Yes" {
        return stopped(
            &format!("replication IO thread not running (Slave_IO_Running = {io})"),
            "Last_IO_Errno",
            "Last_IO_Error",
        );
    }
    let sql = get("Slave_SQL_Running");
    if sql != "Yes" {
        return stopped(
            &format!("replication SQL thread not running (Slave_SQL_Running = {sql})"),
            "Last_SQL_Errno",
            "Last_SQL_Error",
        );
    }
    let Some(lag) = set.get(0, "Seconds_Behind_Master") else {
        return Verdict::unhealthy("lag unknown (Seconds_Behind_Master is NULL)");
    };
    match lag.trim().parse::<u64>() {
        Ok(lag) if lag <= max_lag => {
            Verdict::healthy(format!("replicating, lag {lag}s (max {max_lag}s)"))
                .with_fact(Fact::ReplicaLagSeconds(lag))
        }
        Ok(lag) => Verdict::unhealthy(format!("lag {lag}s exceeds the limit of {max_lag}s"))
            .with_fact(Fact::ReplicaLagSeconds(lag)),
        Err(_) => Verdict::unhealthy(format!("lag unreadable (Seconds_Behind_Master = {lag:?})")),
    }
}

impl Check for ReplicaCheck {
    fn run(&self, deadline: Deadline) -> Result<Verdict, CheckError> {
        let addrs = addresses(&self.endpoint, deadline)?;
        let statement = self.statement();
        let read = session(
            &self.endpoint,
            &addrs,
            &self.credentials,
            deadline,
            |conn| conn.query(&statement),
        );
        Ok(match read {
            Ok((sets, _)) => match sets.first() {
                Some(set) => replica_verdict(set, self.max_lag),
                None => Verdict::unhealthy("SHOW SLAVE STATUS returned nothing"),
            },
            Err(e) => Verdict::down(e.public_reason(), &e),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::Health;
    use crate::option_file::Password;

    fn status(io: &str, sql: &str, lag: Option<&str>) -> ResultSet {
        ResultSet {
            columns: [
                "Slave_IO_Running",
                "Slave_SQL_Running",
                "Seconds_Behind_Master",
                "Last_SQL_Errno",
                "Last_SQL_Error",
            ]
            .map(String::from)
            .to_vec(),
            rows: vec![vec![
                Some(io.into()),
                Some(sql.into()),
                lag.map(String::from),
                Some("1062".into()),
                Some(
                    if sql == "Yes" {
                        ""
                    } else {
                        "Duplicate entry '1' for key 'PRIMARY'"
                    }
                    .into(),
                ),
            ]],
        }
    }

    fn v(set: ResultSet, max: u64) -> (Health, String) {
        let v = replica_verdict(&set, max);
        (v.health, v.reason)
    }

    #[test]
    fn lag_is_compared_as_a_number() {
        use Health::*;
        assert_eq!(
            v(status("Yes", "Yes", Some("0")), 5),
            (Healthy, "replicating, lag 0s (max 5s)".into())
        );
        assert_eq!(v(status("Yes", "Yes", Some("5")), 5).0, Healthy);
        // The shell scripts' string comparison says "10" < "5".
        assert_eq!(
            v(status("Yes", "Yes", Some("10")), 5),
            (Unhealthy, "lag 10s exceeds the limit of 5s".into())
        );
        assert_eq!(
            v(status("Yes", "Yes", None), 5),
            (
                Unhealthy,
                "lag unknown (Seconds_Behind_Master is NULL)".into()
            )
        );
    }

    #[test]
    fn threads_and_errors() {
        assert_eq!(
            v(status("Yes", "No", None), 5).1,
            "replication SQL thread not running (Slave_SQL_Running = No): error 1062"
        );
        assert_eq!(
            replica_verdict(&status("Yes", "No", None), 5)
                .detail
                .as_deref(),
            Some(b"error 1062: Duplicate entry '1' for key 'PRIMARY'".as_slice())
        );
        assert_eq!(
            v(status("Connecting", "Yes", None), 5).1,
            "replication IO thread not running (Slave_IO_Running = Connecting)"
        );
        assert_eq!(
            v(ResultSet::default(), 5).1,
            "not a replica (SHOW SLAVE STATUS is empty)"
        );
    }

    #[test]
    fn connection_names() {
        let creds = Credentials {
            user: "monitor".into(),
            password: Password::new("x"),
        };
        let check = |name: Option<&str>| {
            ReplicaCheck::new(
                Endpoint::default_socket(),
                creds.clone(),
                5,
                name.map(String::from),
            )
        };
        assert_eq!(check(None).unwrap().statement(), "SHOW SLAVE STATUS");
        assert_eq!(
            check(Some("east-1")).unwrap().statement(),
            "SHOW SLAVE 'east-1' STATUS"
        );
        assert!(check(Some("x' STATUS; DROP TABLE t; --")).is_err());
        assert!(check(Some("")).is_err());
    }
}
