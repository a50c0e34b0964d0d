//! One log line per connection, to wherever is safe.
//!
//! Under xinetd, fd 2 is the client's socket like fd 0 and 1: a line on
//! stderr would be sent to the client in the middle of the HTTP response.
//! So when stderr is the same socket as stdin the line goes to syslog;
//! otherwise (systemd's journal, tcpserver's multilog, a terminal) to stderr.

use std::ffi::CString;
use std::io::{self, Write};
use std::os::fd::AsFd;
use std::time::Duration;

use inetd_health::check::human_duration;
use inetd_health::conn::{peer_address, same_socket};
use inetd_health::{Ending, Served};

/// Where log lines go.
#[derive(Clone, Copy, Debug)]
pub enum Log {
    Stderr,
    Syslog,
}

impl Log {
    /// Chooses the sink for this process.
    pub fn for_this_process() -> Self {
        if same_socket(io::stdin().as_fd(), io::stderr().as_fd()) {
            // SAFETY: the ident is a static C string; openlog keeps the pointer.
            unsafe { libc::openlog(c"inetd-health".as_ptr(), libc::LOG_PID, libc::LOG_DAEMON) };
            Log::Syslog
        } else {
            Log::Stderr
        }
    }

    /// Whether lines go to syslog, which means stderr is the client's socket.
    pub fn is_syslog(&self) -> bool {
        matches!(self, Log::Syslog)
    }

    /// Sends a panic's message to the log too: Rust prints it on stderr,
    /// which under xinetd is the client's socket.
    pub fn route_panics(self) {
        if self.is_syslog() {
            std::panic::set_hook(Box::new(move |info| self.error(&format!("panic: {info}"))));
        }
    }

    /// Logs a served connection, except a silent one: a plain TCP check
    /// every second would otherwise fill the log with nothing.
    pub fn connection(&self, peer: Option<&str>, served: &Served, took: Duration) {
        if served.ending == Ending::Silent {
            return;
        }
        let line = connection_line(peer, served, took);
        let level = match served.status {
            Some(200..=399) => libc::LOG_INFO,
            _ => libc::LOG_WARNING,
        };
        self.write(level, &line);
    }

    /// Logs an informational line.
    pub fn info(&self, message: &str) {
        self.write(libc::LOG_INFO, message);
    }

    /// Logs an error.
    pub fn error(&self, message: &str) {
        self.write(libc::LOG_ERR, message);
    }

    fn write(&self, level: libc::c_int, message: &str) {
        match self {
            Log::Stderr => {
                // One write per line, so lines from concurrent connections
                // (--listen) never interleave.
                let line = format!("inetd-health: {message}\n");
                let _ = io::stderr().lock().write_all(line.as_bytes());
            }
            Log::Syslog => {
                let Ok(text) = CString::new(message.replace('\0', " ")) else {
                    return;
                };
                // SAFETY: constant format string with one %s and a valid C string.
                unsafe { libc::syslog(level, c"%s".as_ptr(), text.as_ptr()) };
            }
        }
    }
}

/// `peer=… method=… path=… status=… reason="…" duration=…`
pub fn connection_line(peer: Option<&str>, served: &Served, took: Duration) -> String {
    let method = served.method.as_ref().map_or("-", |m| m.as_str());
    let path = served
        .target
        .as_deref()
        .map_or_else(|| "-".to_owned(), |t| clean(t, 200));
    let status = served
        .status
        .map_or_else(|| "-".to_owned(), |s| s.to_string());
    format!(
        "peer={} method={} path={} status={} reason=\"{}\" duration={}",
        clean(peer.unwrap_or("-"), 64),
        clean(method, 16),
        path,
        status,
        clean(&served.reason, 300).replace('"', "'"),
        human_duration(took)
    )
}

/// Request data in a log line: printable, bounded, one line.
fn clean(text: &str, max: usize) -> String {
    let mut out: String = text
        .chars()
        .take(max)
        .flat_map(|c| {
            if c.is_control() || c == ' ' {
                c.escape_default().collect::<Vec<_>>()
            } else {
                vec![c]
            }
        })
        .collect();
    if text.chars().count() > max {
        out.push('…');
    }
    out
}

/// The client's address as the super-server reports it: xinetd sets
/// `REMOTE_HOST`, tcpserver `TCPREMOTEIP`, systemd `REMOTE_ADDR`; failing
/// those, the socket itself is asked.
pub fn peer_from_environment() -> Option<String> {
    ["REMOTE_HOST", "TCPREMOTEIP", "REMOTE_ADDR"]
        .iter()
        .find_map(|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
        .or_else(|| peer_address(io::stdin().as_fd()).map(|a| a.ip().to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_data_is_escaped_and_bounded() {
        assert_eq!(clean("/a\r\nX: y\x1b[2J", 100), "/a\\r\\nX: y\\u{1b}[2J");
        assert_eq!(clean(&"x".repeat(5), 3), "xxx…");
    }
}
