//! Which launcher started us, and with which sockets: one function.
//!
//! - No `LISTEN_FDS` for us: stdin/stdout are the connection (xinetd,
//!   systemd `Accept=yes` with `StandardInput=socket`, tcpserver).
//! - `LISTEN_FDS=1` and fd 3 a connected socket: systemd `Accept=yes`
//!   without `StandardInput=socket` (`LISTEN_FDNAMES=connection`).
//! - `LISTEN_FDS=N` listening sockets from fd 3: systemd `Accept=no`, one
//!   long-lived process serving them all (IPv4 and IPv6 alike).
//!
//! `LISTEN_PID` must be our pid (the variables are inherited by children
//! that are not meant to use them), the adopted fds are made
//! close-on-exec and the variables removed, so check programs inherit
//! neither (sd_listen_fds(3) with `unset_environment`).

use std::net::TcpListener;
use std::os::fd::{BorrowedFd, FromRawFd, OwnedFd, RawFd};

use inetd_health::conn::{is_listening, set_cloexec};

/// The first descriptor systemd passes (`SD_LISTEN_FDS_START`).
const FIRST: RawFd = 3;

/// How we were started.
pub enum Launch {
    /// The connection is stdin and stdout.
    Stdio,
    /// The connection is this descriptor (fd 3).
    Connection(OwnedFd),
    /// Accept connections on these listening sockets.
    Listeners(Vec<TcpListener>),
}

/// Why the passed descriptors cannot be used.
#[derive(Debug)]
pub struct BadActivation(pub String);

/// Reads the socket-activation variables, adopts what they name and
/// removes them. Must run before any thread exists (it changes the
/// environment).
pub fn detect() -> Result<Launch, BadActivation> {
    let pid = std::env::var("LISTEN_PID").ok();
    let fds = std::env::var("LISTEN_FDS").ok();
    if pid.is_none() && fds.is_none() {
        return Ok(Launch::Stdio);
    }
    for name in ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"] {
        std::env::remove_var(name);
    }
    let ours = pid.and_then(|p| p.parse::<u32>().ok()) == Some(std::process::id());
    if !ours {
        // Meant for another process (our parent, passing its environment
        // on): not ours to take.
        return Ok(Launch::Stdio);
    }
    let n: RawFd = fds
        .as_deref()
        .and_then(|n| n.parse().ok())
        .filter(|&n| (1..=64).contains(&n))
        .ok_or_else(|| BadActivation(format!("LISTEN_FDS={fds:?}: expected 1 to 64")))?;
    let mut listeners = Vec::new();
    let mut connection = None;
    // The program's only `unsafe` outside `inetd_health::sys` (two blocks,
    // one borrow and one take of each fd): that fds
    // 3..3+n are ours to take is a fact about how this process started
    // (LISTEN_PID is our pid, nothing has opened a file yet), which no safe
    // library function could check for its caller.
    for fd in FIRST..FIRST + n {
        // SAFETY: systemd passed fds 3..3+n to this pid, which nothing has
        // opened over since start (fds 0-2 were reopened, nothing else).
        let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
        set_cloexec(borrowed).map_err(|e| BadActivation(format!("fd {fd}: {e}")))?;
        let listening = is_listening(borrowed)
            .map_err(|e| BadActivation(format!("fd {fd} is not a socket: {e}")))?;
        // SAFETY: as above; from here on the fd is owned once.
        let owned = unsafe { OwnedFd::from_raw_fd(fd) };
        if listening {
            listeners.push(TcpListener::from(owned));
        } else {
            connection = Some(owned);
        }
    }
    match (connection, listeners.is_empty()) {
        (Some(c), true) if n == 1 => Ok(Launch::Connection(c)),
        (None, false) => Ok(Launch::Listeners(listeners)),
        _ => Err(BadActivation(format!(
            "LISTEN_FDS={n}: expected one connection (Accept=yes) or listening sockets (Accept=no), not a mix"
        ))),
    }
}
