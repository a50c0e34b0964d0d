//! sd_notify(3), in the few lines it takes: one datagram per state to the
//! socket `$NOTIFY_SOCKET` names (a path, or `@name` in the abstract
//! namespace). Written here rather than taken from a crate: the protocol is
//! a datagram of `KEY=VALUE` lines, and libsystemd is not linked statically.

use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::Duration;

/// Where systemd listens for our state, if it does.
pub struct Notifier {
    socket: UnixDatagram,
    address: SocketAddr,
    /// Half the watchdog interval, when systemd wants pings.
    pub watchdog: Option<Duration>,
}

impl Notifier {
    /// From `$NOTIFY_SOCKET` and `$WATCHDOG_USEC` (with `$WATCHDOG_PID` ours
    /// or unset); the variables are removed so check programs do not
    /// inherit them. `None` when not run by systemd.
    pub fn from_environment() -> Option<Notifier> {
        let path = std::env::var_os("NOTIFY_SOCKET");
        let usec = std::env::var("WATCHDOG_USEC").ok();
        let pid = std::env::var("WATCHDOG_PID").ok();
        // Only what is there: unsetting scans the whole environment, and
        // every poll under inetd would pay it for nothing.
        for (name, present) in [
            ("NOTIFY_SOCKET", path.is_some()),
            ("WATCHDOG_USEC", usec.is_some()),
            ("WATCHDOG_PID", pid.is_some()),
        ] {
            if present {
                std::env::remove_var(name);
            }
        }
        let path = path?;
        let bytes = std::os::unix::ffi::OsStrExt::as_bytes(path.as_os_str());
        let address = match bytes.strip_prefix(b"@") {
            Some(name) => {
                use std::os::linux::net::SocketAddrExt;
                SocketAddr::from_abstract_name(name).ok()?
            }
            None => SocketAddr::from_pathname(&path).ok()?,
        };
        let ours = pid.is_none_or(|p| p.parse::<u32>().ok() == Some(std::process::id()));
        let watchdog = usec
            .and_then(|u| u.parse::<u64>().ok())
            .filter(|&u| u > 0 && ours)
            .map(|u| Duration::from_micros(u / 2));
        let socket = UnixDatagram::unbound().ok()?;
        // A full queue (systemd stalled: ten datagrams by default,
        // net.unix.max_dgram_qlen) must not stop the loop that answers
        // polls: the datagram is dropped instead, as sd_notify does.
        socket.set_nonblocking(true).ok()?;
        Some(Notifier {
            socket,
            address,
            watchdog,
        })
    }

    /// Sends `state` (`READY=1`, `STOPPING=1`, `WATCHDOG=1`, …); a lost
    /// datagram is systemd's to notice.
    pub fn send(&self, state: &str) {
        let _ = self.socket.send_to_addr(state.as_bytes(), &self.address);
    }
}
