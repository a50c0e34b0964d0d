//! Shared helpers for the integration tests that drive the built binary.
//!
//! Everything here binds and connects on loopback only, bounds every wait,
//! and tears down what it starts (by pid) when its guard is dropped, so tests
//! stay independent and can run in parallel.
//!
//! - [`procs`]: a process guard (SIGTERM, then SIGKILL, then reap), `/proc`
//!   scans, bounded polling, locating system programs.
//! - [`tmp`]: a temporary directory removed on drop.
//! - [`activate`]: systemd-socket-activate on free ports, a unit's ExecStart line.
//! - [`client`]: free ports and a raw TCP client that reports resets and timing.
//! - [`http`]: a strict parser for one HTTP/1.x response.
//! - [`xinetd`]: a private xinetd serving one service on a loopback port.
//! - [`haproxy`]: a private HAProxy health-checking one server.
//! - [`mariadb`]: a private MariaDB server (self-contained: std and libc only).
//! - [`netns`]: a private network namespace and its TCP abort counters.
//! - [`galera`]: a private single-node Galera cluster (a `mariadb` server with wsrep).
//! - [`replication`]: a private primary/replica pair of `mariadb` servers.

// Each test crate that declares `mod support;` uses only part of it.
#![allow(dead_code)]

pub mod activate;
pub mod client;
pub mod galera;
pub mod haproxy;
pub mod http;
pub mod mariadb;
pub mod netns;
pub mod procs;
pub mod replication;
pub mod run;
pub mod tmp;
pub mod xinetd;

/// The binary under test, as built by Cargo for this package's tests.
pub fn inetd_health_bin() -> &'static str {
    env!("CARGO_BIN_EXE_inetd-health")
}
