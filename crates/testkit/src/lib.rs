//! What the tests and benches of inetd-health share: the system fixtures
//! they start, and the clients and parsers they check answers with.
//!
//! A dev-dependency of `inetd-health-cli` (the integration tests in
//! `tests/` and the benches in `benches/`) and of `inetd-health` (its unit
//! tests read `/proc` with [`procs`]). It depends on std and libc only, never
//! on `inetd-health`, so the library's own tests can use it. It does not know
//! where the binary under test is: Cargo tells only the CLI package's tests
//! and benches (`env!("CARGO_BIN_EXE_inetd-health")`), so they pass the
//! path to what runs it ([`xinetd::Xinetd::start`], [`run::check`]).
//!
//! Everything here binds and connects on loopback only, bounds every wait,
//! and tears down what it starts (by pid) when its guard is dropped, so tests
//! stay independent and can run in parallel.
//!
//! - [`procs`]: a process guard (SIGTERM, then SIGKILL, then reap, with the
//!   rusage when asked), `/proc` scans, bounded polling, locating system
//!   programs.
//! - [`tmp`]: a temporary directory removed on drop.
//! - [`client`]: free ports and a raw TCP client that reports resets and timing.
//! - [`http`]: a strict parser for one HTTP/1.x response.
//! - [`run`]: the binary under test run once over pipes, or asked with a
//!   config of its own ([`run::Configured`]).
//! - [`xinetd`]: a private xinetd serving one service on a loopback port.
//! - [`activate`]: systemd-socket-activate on free ports, a unit's ExecStart line.
//! - [`haproxy`]: a private HAProxy health-checking one server.
//! - [`mariadb`]: a private MariaDB server.
//! - [`galera`]: a private single-node Galera cluster (a `mariadb` server with wsrep).
//! - [`replication`]: a private primary/replica pair of `mariadb` servers.
//! - [`postgres`]: a private PostgreSQL server and streaming replicas of it.
//! - [`netns`]: a private network namespace and its TCP abort counters.
//! - [`example`]: the six-check example config the bench measures.
//! - [`tcpserver`]: a private ucspi-tcp tcpserver on a free loopback port.
//! - [`docs`]: the fenced blocks of `docs/` that tests run as written.
//! - [`tls`]: a private CA issuing server and client certificates with the
//!   `openssl` command, and the real TLS clients (`curl`, `openssl s_client`).

#![warn(missing_docs)]

pub mod activate;
pub mod client;
pub mod docs;
pub mod example;
pub mod galera;
pub mod haproxy;
pub mod http;
pub mod inetd;
pub mod mariadb;
pub mod netns;
pub mod postgres;
pub mod procs;
pub mod prometheus;
pub mod redis;
pub mod replication;
pub mod run;
pub mod tcpserver;
pub mod tls;
pub mod tmp;
pub mod xinetd;
