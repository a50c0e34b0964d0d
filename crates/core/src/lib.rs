//! Answer HTTP health checks over an inetd-style connection.
//!
//! # The model
//!
//! A super-server (xinetd, systemd `Accept=yes`, tcpserver) accepts a TCP
//! connection and starts a program with the socket as its stdin and stdout.
//! The program reads one request, runs its check under one deadline, writes
//! one response, closes politely and exits. [`serve_check`] is that whole
//! program body, over any [`Input`] and [`Output`]: the process's own
//! descriptors ([`Fd`]), a `TcpStream` from an accept loop, or byte buffers
//! in tests.
//!
//! What it gets right that the shell scripts it replaces do not:
//! - the request is read (bounded: 8 KiB, 64 headers, a deadline), so the
//!   kernel never resets the connection for unread bytes;
//! - the response is exact HTTP/1.1 (reason phrase, `Content-Length`,
//!   `Connection: close`) and leaves in one write;
//! - the close is polite: the write side is shut down, late input drained;
//! - a check runs under a deadline, and a check program that hangs is
//!   killed with all its descendants;
//! - it fails closed: whatever cannot be decided is a 503 with its reason,
//!   and a body carries a public reason only (account names and program
//!   output stay in the log).
//!
//! ```
//! use std::time::Duration;
//! use inetd_health::{serve_check, ExecCheck, Options, Policy};
//!
//! let check = ExecCheck::new(["true"]).unwrap();
//! let mut request: &[u8] = b"OPTIONS / HTTP/1.0\r\n\r\n";
//! let mut response = Vec::new();
//! let served = serve_check(&mut request, &mut response, &Options::default(), &check, &Policy::default());
//! assert!(response.starts_with(b"HTTP/1.1 200 OK\r\n"));
//! assert_eq!(served.exit_code(), 0);
//! ```
//!
//! # Layout
//!
//! - [`service`]: what one process serves ([`Service`]: named checks,
//!   routes, who may ask) and the answer to a request as values:
//!   [`Service::answer`] (head and peer in, [`Answer`] out: allowlist,
//!   route, format, the checks at once, render) and
//!   [`Service::answer_agent`].
//! - [`serve`](mod@serve): one connection as bytes: read the head (or tell
//!   the agent-check), ask the service, send, close politely; [`Served`]
//!   for the log.
//! - `schedule` (private): a route's checks run at once.
//! - [`spec`]: one description of a check ([`spec::Spec`]): the command line
//!   and the config file both produce it; it builds the check with its
//!   wrappers and names its state files.
//! - [`config`]: the TOML config file, checked with line and column.
//! - [`allow`]: the address allowlist, on the kernel's peer address.
//! - [`agent`]: HAProxy's agent-check on the same port: telling an agent
//!   from an HTTP client (its one-line answer is a view in `render`).
//! - [`route`]: which checks a request asks for (`/ready`, `/ready/disk`,
//!   `?verbose`, `?exclude=`, `/metrics`).
//! - [`outcome`]: what a route's checks came to, as data: a
//!   [`CheckResult`](outcome::CheckResult) per check, the worst state, the
//!   status code, the summary; the glossary of the outcome nouns.
//! - [`render`]: the views of outcomes, one file per format: text,
//!   health+json, Prometheus (the only place with metric names), Nagios,
//!   the agent's line; and which format a request gets.
//! - [`http`]: the request head (pure parse, bounded read) and the response.
//! - [`conn`]: the socket edge: deadline reads, half-close and drain, the
//!   peer's address.
//! - [`check`]: the [`Check`] trait, outcomes, the checks (`exec`, `tcp`,
//!   `mariadb`, `galera`, `replica`), the wrappers (maintenance switch,
//!   cache, concurrency cap) and the Nagios plugin convention.
//! - [`mysql`]: the MariaDB/MySQL client protocol, as much as a check needs.
//! - [`postgres`]: the PostgreSQL protocol, as much as a check needs
//!   (messages, SCRAM-SHA-256, the password file, the connection).
//! - [`option_file`]: MySQL option files, where credentials come from.
//! - [`hash`]: the one place hashes come from (SHA-1, SHA-256, MD5, HMAC,
//!   PBKDF2; RustCrypto's crates): MySQL's native password, PostgreSQL's
//!   SCRAM and md5, keepalived's digest.
//! - [`process`]: child processes: run, capture, kill (the calls in `sys`).
//! - [`state`]: the directory and files shared by a service's processes
//!   (cache, slots) and their locks.
//! - [`sys`]: every libc call and `unsafe` block, one safe wrapper each
//!   (files and [`sys::Stat`], descriptors and poll, sockets, child
//!   processes, users and groups, a `main`'s set-up), [`sys::io_reason`],
//!   and the one trusted-file check ([`sys::trust`]) that config files,
//!   option files and state files are held to.
//! - [`deadline`]: the one [`Deadline`] passed down.
//! - [`exit`]: exit codes.
//!
//! The nouns of an outcome, from the check out: a [`Verdict`] is what a
//! check says; an [`Outcome`] is a verdict with its time and the probe's
//! error; a [`CheckResult`](outcome::CheckResult) is a named check's
//! outcome as an answer needs it; an [`Answer`] is what to send for a
//! request; [`Served`] is what a connection did, for the log.
//!
//! The crate never touches process globals (stdin, the environment, the exit
//! code, signals): the caller hands it descriptors and settings. (`sys`
//! offers a binary's `main` its set-up, SIGPIPE and fds 0-2; the library
//! never calls those.)

#![deny(missing_docs)]

pub mod agent;
pub mod allow;
pub mod check;
pub mod config;
pub mod conn;
pub mod deadline;
pub mod exit;
pub mod hash;
pub mod http;
pub mod mysql;
pub mod option_file;
pub mod outcome;
pub mod postgres;
pub mod process;
pub mod redis;
pub mod render;
pub mod route;
mod schedule;
pub mod serve;
pub mod service;
pub mod spec;
pub mod state;
pub mod sys;
#[cfg(feature = "tls")]
pub mod tls;

pub use check::{
    run_check, Check, CheckError, ExecCheck, Health, MariadbCheck, Outcome, PerfData, Policy,
    TcpCheck, Verdict,
};
pub use conn::{close_politely, Fd, Input, Output};
pub use deadline::Deadline;
pub use http::{Limits, Method, RequestHead, Response};
pub use serve::{
    serve, serve_agent, serve_agent_line, serve_check, serve_head, serve_service,
    serve_service_head, Ending, Options, Served,
};
pub use service::{AgentLine, Answer, Refusal, Service};

/// The README's Rust examples, compiled as doctests so that what it shows
/// an embedder keeps building.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
struct ReadmeExamples;
