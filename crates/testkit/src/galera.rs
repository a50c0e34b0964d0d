//! A private single-node Galera cluster: one `mariadbd` with wsrep on,
//! started by [`crate::mariadb`] (so it is torn down the same way).
//!
//! Debian's `galera-4` package provides the provider library. The node
//! bootstraps a new cluster (`wsrep_cluster_address=gcomm://`), listens for
//! group communication on a free port of 127.0.0.1 (`gmcast.listen_addr`),
//! with the IST and SST receive addresses on other free ports of 127.0.0.1
//! (unused by one node, but never the defaults 4567/4568/4444, which another
//! node on the machine may hold), and a 16 MiB gcache in its data directory.
//! [`start_galera`] returns once the node is Synced (`wsrep_local_state` 4)
//! in the Primary component with `wsrep_ready` ON, before the monitor user is
//! created (a CREATE USER needs a ready node).
//!
//! A missing provider fails (never skips): "... run scripts/test, which
//! installs galera-4".

use std::path::{Path, PathBuf};

use crate::client::free_ports;
use crate::mariadb::Mariadb;

/// Where Debian's galera-4 puts the provider (the first that exists wins).
const PROVIDERS: [&str; 2] = [
    "/usr/lib/galera/libgalera_smm.so",
    "/usr/lib/libgalera_smm.so",
];

/// The Galera provider library; panics if galera-4 is not installed.
pub fn provider() -> PathBuf {
    PROVIDERS
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!("no Galera provider at {PROVIDERS:?}: run scripts/test, which installs galera-4")
        })
}

/// Starts a single-node Galera cluster and waits (bounded) until it is
/// Synced and Primary (see the module docs).
pub fn start_galera() -> Mariadb {
    let provider = provider();
    Mariadb::start_with(&|_| galera_args(&provider), synced)
}

/// The `mariadbd` arguments of a one-node cluster on fresh ports (gcache
/// and the saved view go to the data directory, Galera's default).
fn galera_args(provider: &Path) -> Vec<String> {
    let ports = free_ports(3);
    let (gcomm, ist, sst) = (ports[0], ports[1], ports[2]);
    vec![
        "--wsrep-on=ON".into(),
        format!("--wsrep-provider={}", provider.display()),
        "--wsrep-cluster-address=gcomm://".into(),
        "--wsrep-cluster-name=inetd-health-test".into(),
        format!("--wsrep-node-address=127.0.0.1:{gcomm}"),
        format!("--wsrep-sst-receive-address=127.0.0.1:{sst}"),
        format!(
            "--wsrep-provider-options=gmcast.listen_addr=tcp://127.0.0.1:{gcomm};\
             ist.recv_addr=127.0.0.1:{ist};gcache.size=16M"
        ),
        "--binlog-format=ROW".into(),
        "--innodb-autoinc-lock-mode=2".into(),
    ]
}

/// The wsrep status the galera check reads, as `name -> value`.
pub fn wsrep_status(db: &Mariadb) -> Result<Vec<(String, String)>, String> {
    let out = db.try_sql(
        "SHOW GLOBAL STATUS WHERE Variable_name IN \
         ('wsrep_local_state', 'wsrep_local_state_comment', 'wsrep_cluster_status', \
          'wsrep_ready', 'wsrep_cluster_size');",
    )?;
    Ok(out
        .lines()
        .filter_map(|line| line.split_once('\t'))
        .map(|(n, v)| (n.to_ascii_lowercase(), v.trim().to_string()))
        .collect())
}

/// One wsrep status variable (lower-case name), or "" when absent.
pub fn wsrep_value(status: &[(String, String)], name: &str) -> String {
    status
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.clone())
        .unwrap_or_default()
}

/// `Ok` when the node is Synced (state 4), Primary and ready.
pub fn synced(db: &Mariadb) -> Result<(), String> {
    let status = wsrep_status(db)?;
    let get = |name| wsrep_value(&status, name);
    if get("wsrep_local_state") == "4"
        && get("wsrep_cluster_status") == "Primary"
        && get("wsrep_ready") == "ON"
    {
        Ok(())
    } else {
        Err(format!("wsrep status {status:?}"))
    }
}
