//! A private primary/replica pair on loopback, for the `replica` check.
//!
//! Two servers from [`crate::mariadb`]: the primary with `server_id=1` and
//! a binary log, the replica with `server_id=2`. The primary gets a user `repl` with
//! REPLICATION SLAVE (on 127.0.0.1, a random password); the replica's
//! default connection replicates from the primary's TCP port with
//! `MASTER_USE_GTID=slave_pos`, starting after the monitor users each
//! fixture created (those are not replayed) and before a table `ha.t` for
//! [`Replication::write_row`].
//! On both servers the monitor user gets `GRANT SLAVE MONITOR ON *.*` (what
//! `SHOW SLAVE STATUS` needs on 10.11); on the replica a second user,
//! [`NO_GRANT_USER`] (the monitor's password), has no privilege at all.
//!
//! [`Replication::start`] returns once both threads run and the replica has
//! applied everything the primary has written.

use std::time::{Duration, Instant};

use crate::mariadb::{Mariadb, MONITOR_USER};

/// A user on the replica without SLAVE MONITOR (same password as `monitor`).
pub const NO_GRANT_USER: &str = "nogrant";
/// The replication user on the primary.
const REPL_USER: &str = "repl";
/// Bound on the replica catching up.
const SYNC_TIMEOUT: Duration = Duration::from_secs(20);

/// The pair. Dropping it stops both servers.
pub struct Replication {
    /// server_id 1, binary log on.
    pub primary: Mariadb,
    /// server_id 2, replicating from [`Replication::primary`].
    pub replica: Mariadb,
    repl_password: String,
}

impl Replication {
    /// Starts both servers and replication (see the module docs).
    pub fn start() -> Replication {
        // One after the other on this thread: a server gets SIGKILL when the
        // thread that started it ends (PR_SET_PDEATHSIG).
        let primary = Mariadb::start_with(
            &|dir| {
                vec![
                    "--server-id=1".into(),
                    format!("--log-bin={}", dir.join("binlog").display()),
                    "--binlog-format=ROW".into(),
                ]
            },
            |_| Ok(()),
        );
        let replica = Mariadb::start_with(&|_| vec!["--server-id=2".into()], |_| Ok(()));
        // Replication starts here: after the monitor users each fixture
        // created for itself, before what follows (the replica needs the
        // table; replaying the user and grants is harmless).
        let start_pos = primary.sql("SELECT @@gtid_binlog_pos;").trim().to_string();
        let repl_password = format!("{}-repl", primary.monitor_password());
        primary.sql(&format!(
            "CREATE USER '{REPL_USER}'@'127.0.0.1' IDENTIFIED BY '{repl_password}';
             GRANT REPLICATION SLAVE ON *.* TO '{REPL_USER}'@'127.0.0.1';
             GRANT SLAVE MONITOR ON *.* TO '{MONITOR_USER}'@'localhost';
             CREATE DATABASE ha;
             CREATE TABLE ha.t (id INT AUTO_INCREMENT PRIMARY KEY, at TIMESTAMP(6) DEFAULT NOW(6));"
        ));
        let pw = replica.monitor_password();
        replica.sql(&format!(
            "GRANT SLAVE MONITOR ON *.* TO '{user}'@'localhost';
             GRANT SLAVE MONITOR ON *.* TO '{user}'@'127.0.0.1';
             CREATE USER '{NO_GRANT_USER}'@'localhost' IDENTIFIED BY '{pw}';",
            user = MONITOR_USER,
        ));
        let pair = Replication {
            primary,
            replica,
            repl_password,
        };
        pair.replica
            .sql(&format!("SET GLOBAL gtid_slave_pos = '{start_pos}';"));
        pair.connect("");
        pair.wait_in_sync("");
        pair
    }

    /// `CHANGE MASTER ['name'] TO` the primary (GTID, from the replica's
    /// `gtid_slave_pos`), then `START SLAVE ['name']`.
    pub fn connect(&self, name: &str) {
        self.replica.sql(&format!(
            "CHANGE MASTER '{name}' TO MASTER_HOST = '127.0.0.1', MASTER_PORT = {port},
               MASTER_USER = '{REPL_USER}', MASTER_PASSWORD = '{pw}',
               MASTER_USE_GTID = slave_pos, MASTER_CONNECT_RETRY = 1;
             START SLAVE '{name}';",
            port = self.primary.port(),
            pw = self.repl_password,
        ));
    }

    /// Removes connection `name` (STOP SLAVE, RESET SLAVE ALL); the
    /// replica's `gtid_slave_pos` stays, so [`Replication::connect`] resumes.
    pub fn disconnect(&self, name: &str) {
        self.replica
            .sql(&format!("STOP SLAVE '{name}'; RESET SLAVE '{name}' ALL;"));
    }

    /// `SHOW SLAVE ['name'] STATUS` as `(column, value)` pairs (empty if
    /// there is no such connection's row).
    pub fn slave_status(&self, name: &str) -> Vec<(String, String)> {
        self.replica
            .sql_row(&format!("SHOW SLAVE '{name}' STATUS;"))
    }

    /// One column of `SHOW SLAVE ['name'] STATUS` ("" if absent).
    pub fn slave_value(&self, name: &str, column: &str) -> String {
        self.slave_status(name)
            .into_iter()
            .find(|(k, _)| k == column)
            .map(|(_, v)| v)
            .unwrap_or_default()
    }

    /// Writes a row on the primary.
    pub fn write_row(&self) {
        self.primary.sql("INSERT INTO ha.t () VALUES ();");
    }

    /// Waits (bounded) until connection `name` runs both threads and the
    /// replica has applied the primary's whole binary log; panics with the
    /// slave status otherwise.
    pub fn wait_in_sync(&self, name: &str) {
        let deadline = Instant::now() + SYNC_TIMEOUT;
        loop {
            let want = self.primary.sql("SELECT @@gtid_binlog_pos;");
            let have = self.replica.sql("SELECT @@gtid_slave_pos;");
            let io = self.slave_value(name, "Slave_IO_Running");
            let sql = self.slave_value(name, "Slave_SQL_Running");
            let lag = self.slave_value(name, "Seconds_Behind_Master");
            if want.trim() == have.trim() && io == "Yes" && sql == "Yes" && lag == "0" {
                return;
            }
            if Instant::now() >= deadline {
                panic!(
                    "replica connection '{name}' not in sync after {SYNC_TIMEOUT:?}: primary at \
                     {want:?}, replica at {have:?}\n{:#?}\nreplica error log:\n{}",
                    self.slave_status(name),
                    self.replica.error_log_text()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}
