//! One log line per connection, to wherever is safe.
//!
//! Under xinetd, fd 2 is the client's socket like fd 0 and 1: a line on
//! stderr would be sent to the client in the middle of the HTTP response.
//! So when stderr is the same socket as stdin the line goes to syslog;
//! otherwise (systemd's journal, tcpserver's multilog, a terminal) to stderr.
//!
//! Syslog is written directly: one datagram `<PRI>inetd-health[PID]: line`
//! to `/dev/log`, without a timestamp. glibc's `syslog(3)` would first read
//! `/etc/localtime` to stamp the line, seven system calls per connection for
//! a field that rsyslog (`imuxsock`) and journald replace with the time they
//! received it anyway.

use std::io::{self, Write};
use std::net::IpAddr;
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::path::Path;
use std::time::Duration;

use inetd_health::check::human_duration;
use inetd_health::conn::same_socket;
use inetd_health::{Ending, Served};

/// Where log lines go.
#[derive(Clone, Copy, Debug)]
pub enum Log {
    Stderr,
    /// Datagrams to the syslog daemon's socket.
    Syslog(&'static Path),
}

pub use crate::args::SYSLOG_SOCKET;

impl Log {
    /// Chooses the sink for this process.
    pub fn for_this_process() -> Self {
        if same_socket(crate::std_fd(0), crate::std_fd(2)) {
            Log::Syslog(Path::new(SYSLOG_SOCKET))
        } else {
            Log::Stderr
        }
    }

    /// Sends syslog lines to `path` instead of `/dev/log` (a chroot, a
    /// container, a test that reads them).
    pub fn with_syslog_socket(self, path: &Path) -> Self {
        match self {
            // Leaked once per process: the log lives as long as it does.
            Log::Syslog(_) => Log::Syslog(Box::leak(path.to_path_buf().into_boxed_path())),
            log => log,
        }
    }

    /// Whether lines go to syslog, which means stderr is the client's socket.
    pub fn is_syslog(&self) -> bool {
        matches!(self, Log::Syslog(_))
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
    pub fn connection(&self, peer: &Peer, served: &Served, took: Duration) {
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

    /// Logs a warning.
    pub fn warning(&self, message: &str) {
        self.write(libc::LOG_WARNING, message);
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
            Log::Syslog(path) => {
                let line = syslog_line(level, std::process::id(), message);
                // No syslog daemon: the line is lost, as with syslog(3).
                let _ = send_to_syslog(path, line.as_bytes());
            }
        }
    }
}

/// An RFC 3164 line as local syslog daemons take it: facility daemon,
/// the given severity, tag and pid, no timestamp.
fn syslog_line(level: libc::c_int, pid: u32, message: &str) -> String {
    let priority = libc::LOG_DAEMON | level;
    let message = message.replace(['\0', '\n'], " ");
    format!("<{priority}>inetd-health[{pid}]: {message}")
}

fn send_to_syslog(path: &Path, line: &[u8]) -> io::Result<()> {
    match UnixDatagram::unbound()?.send_to(line, path) {
        // Some older daemons listen on a stream socket: one line, ended by
        // a NUL, as glibc sends it there.
        Err(e) if e.raw_os_error() == Some(libc::EPROTOTYPE) => {
            let mut stream = UnixStream::connect(path)?;
            stream.write_all(line)?;
            stream.write_all(b"\0")
        }
        other => other.map(drop),
    }
}

/// Who a connection came from, for the log.
#[derive(Debug, Default)]
pub struct Peer {
    /// The kernel's address of the client (`getpeername`, `accept`): the
    /// one access is decided on.
    pub kernel: Option<IpAddr>,
    /// What the launcher's environment says, where it says something else
    /// (or the kernel could not say).
    pub launcher: Option<String>,
}

impl Peer {
    /// The kernel's address, and the launcher's where it differs.
    pub fn new(kernel: Option<IpAddr>, launcher: Option<String>) -> Self {
        let unmapped = |ip: IpAddr| match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        let same = match (&kernel, &launcher) {
            (Some(k), Some(l)) => l
                .parse::<IpAddr>()
                .is_ok_and(|l| unmapped(l) == unmapped(*k)),
            _ => false,
        };
        Peer {
            kernel: kernel.map(unmapped),
            launcher: launcher.filter(|_| !same),
        }
    }

    /// The kernel's address alone (the long-lived forms accept it).
    pub fn kernel(ip: IpAddr) -> Self {
        Peer::new(Some(ip), None)
    }
}

/// `peer=… [launcher_peer=…] method=… path=… status=… reason="…"
/// duration=… [detail="…"]`
///
/// The detail (a check program's output, a server's message naming the
/// account) is logged, never sent: logs are the operator's, bodies anyone's.
pub fn connection_line(peer: &Peer, served: &Served, took: Duration) -> String {
    let method = served.method.as_ref().map_or("-", |m| m.as_str());
    let path = served
        .target
        .as_deref()
        .map_or_else(|| "-".to_owned(), |t| field(t, 200));
    let status = served
        .status
        .map_or_else(|| "-".to_owned(), |s| s.to_string());
    let kernel = peer
        .kernel
        .map_or_else(|| "-".to_owned(), |ip| ip.to_string());
    let launcher = peer
        .launcher
        .as_deref()
        .map(|l| format!(" launcher_peer={}", field(l, 64)))
        .unwrap_or_default();
    let mut line = format!(
        "peer={kernel}{launcher} method={} path={} status={} reason=\"{}\" duration={}",
        field(method, 16),
        path,
        status,
        quoted(&served.reason, 300),
        human_duration(took)
    );
    if let Some(handshake) = served.handshake {
        line.push_str(" tls=");
        line.push_str(handshake.as_str());
    }
    let details: Vec<String> = served
        .results
        .iter()
        .filter_map(|r| {
            let detail = r.outcome.verdict.detail.as_deref()?;
            let text = String::from_utf8_lossy(detail);
            let text = text.trim_end();
            (!text.is_empty()).then(|| match served.results.len() {
                1 => text.to_owned(),
                _ => format!("{}: {text}", r.name),
            })
        })
        .collect();
    if !details.is_empty() {
        line.push_str(&format!(" detail=\"{}\"", quoted(&details.join("; "), 300)));
    }
    line
}

/// A value inside `"…"`: printable, bounded, one line, no `"` to end it early.
fn quoted(text: &str, max: usize) -> String {
    escaped(text, max, |c| c.is_control()).replace('"', "'")
}

/// A bare value (request data among them): like [`quoted`], and a space
/// cannot split it into two fields.
fn field(text: &str, max: usize) -> String {
    escaped(text, max, |c| {
        c.is_control() || c.is_whitespace() || c == '"'
    })
}

fn escaped(text: &str, max: usize, escape: impl Fn(char) -> bool) -> String {
    let mut out = String::new();
    for c in text.chars().take(max) {
        if c == ' ' && escape(c) {
            // escape_default leaves a space as it is.
            out.push_str("\\u{20}");
        } else if escape(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    if text.chars().count() > max {
        out.push('…');
    }
    out
}

/// The client's address as the super-server reports it, for the log
/// beside the kernel's: xinetd sets `REMOTE_HOST`, tcpserver
/// `TCPREMOTEIP`, systemd `REMOTE_ADDR`. Anyone who starts the program
/// sets them as they like: never used to decide access, nor for `peer=`.
pub fn peer_from_environment() -> Option<String> {
    ["REMOTE_HOST", "TCPREMOTEIP", "REMOTE_ADDR"]
        .iter()
        .find_map(|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syslog_lines_reach_a_datagram_or_stream_daemon() {
        let dir = std::env::temp_dir().join(format!("inetd-health-log-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let line = syslog_line(libc::LOG_WARNING, 42, "status=503\nforged");
        assert_eq!(line, "<28>inetd-health[42]: status=503 forged");

        let dgram_path = dir.join("dgram");
        let daemon = UnixDatagram::bind(&dgram_path).unwrap();
        send_to_syslog(&dgram_path, line.as_bytes()).unwrap();
        let mut buf = [0u8; 256];
        let n = daemon.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], line.as_bytes());

        let stream_path = dir.join("stream");
        let listener = std::os::unix::net::UnixListener::bind(&stream_path).unwrap();
        send_to_syslog(&stream_path, line.as_bytes()).unwrap();
        let mut got = Vec::new();
        std::io::Read::read_to_end(&mut listener.accept().unwrap().0, &mut got).unwrap();
        assert_eq!(got, [line.as_bytes(), b"\0"].concat());

        assert!(send_to_syslog(&dir.join("absent"), b"x").is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_peer_is_the_kernels_and_the_launchers_only_beside_it() {
        let served = Served {
            method: None,
            target: None,
            status: Some(403),
            reason: "peer 127.0.0.1 not allowed".into(),
            ending: inetd_health::Ending::Rejected,
            results: Vec::new(),
            handshake: None,
        };
        let line = |peer: Peer| connection_line(&peer, &served, Duration::ZERO);
        let local: IpAddr = "127.0.0.1".parse().unwrap();
        assert!(line(Peer::new(Some(local), Some("10.9.9.9".into())))
            .starts_with("peer=127.0.0.1 launcher_peer=10.9.9.9 method=- "));
        // Where they agree (IPv4-mapped or not), one field.
        for same in ["127.0.0.1", "::ffff:127.0.0.1"] {
            assert!(line(Peer::new(Some(local), Some(same.into())))
                .starts_with("peer=127.0.0.1 method=- "));
        }
        let mapped: IpAddr = "::ffff:127.0.0.1".parse().unwrap();
        assert!(line(Peer::new(Some(mapped), None)).starts_with("peer=127.0.0.1 method=- "));
        // The kernel cannot say (a pipe): the launcher's value, as such.
        assert!(line(Peer::new(None, Some("a b".into())))
            .starts_with("peer=- launcher_peer=a\\u{20}b method=- "));
    }

    #[test]
    fn request_data_is_escaped_and_bounded() {
        assert_eq!(
            field("/a\r\nX: y\x1b[2J", 100),
            "/a\\r\\nX:\\u{20}y\\u{1b}[2J"
        );
        assert_eq!(field("a\"b\tc", 100), "a\\\"b\\tc");
        assert_eq!(field(&"x".repeat(5), 3), "xxx…");
        // Inside quotes spaces stay, and a quote cannot end the value.
        assert_eq!(
            quoted("exit status 2\n\"forged\" x", 100),
            "exit status 2\\n'forged' x"
        );
    }
}
