//! `tcp`: can a TCP connection be opened to HOST:PORT by the deadline?

use std::io;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::sync::mpsc;

use super::{Check, CheckError, Verdict};
use crate::conn::connect_any;
use crate::sys::io_reason;
use crate::Deadline;

/// Connects to an address, then closes.
#[derive(Clone, Debug)]
pub struct TcpCheck {
    target: String,
    host: String,
    port: u16,
}

impl TcpCheck {
    /// A check of `HOST:PORT` (`[v6]:PORT` for IPv6 literals).
    ///
    /// # Errors
    /// [`CheckError::BadTarget`] when the target has no valid port.
    pub fn new(target: &str) -> Result<Self, CheckError> {
        let bad = || CheckError::BadTarget {
            target: target.to_owned(),
        };
        let (host, port) = target.rsplit_once(':').ok_or_else(bad)?;
        let port: u16 = port.parse().map_err(|_| bad())?;
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        if host.is_empty() || port == 0 {
            return Err(bad());
        }
        Ok(TcpCheck {
            target: target.to_owned(),
            host: host.to_owned(),
            port,
        })
    }
}

/// Resolves `host` (an IP literal needs no lookup) by `deadline`.
///
/// getaddrinfo has no timeout of its own, so it runs on a thread that is
/// abandoned at the deadline (it ends when the resolver gives up).
pub(crate) fn resolve(
    host: &str,
    port: u16,
    deadline: Deadline,
) -> Result<Vec<SocketAddr>, CheckError> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let (tx, rx) = mpsc::channel();
    let owned = host.to_owned();
    std::thread::spawn(move || {
        let _ = tx.send((owned.as_str(), port).to_socket_addrs().map(Vec::from_iter));
    });
    let resolve_error = |reason: String| CheckError::Resolve {
        target: format!("{host}:{port}"),
        reason,
    };
    match rx.recv_timeout(deadline.remaining()) {
        Ok(Ok(addrs)) if !addrs.is_empty() => Ok(addrs),
        Ok(Ok(_)) => Err(resolve_error("no addresses".into())),
        Ok(Err(e)) => Err(resolve_error(io_reason(&e))),
        Err(_) => Err(resolve_error("timed out".into())),
    }
}

impl Check for TcpCheck {
    fn run(&self, deadline: Deadline) -> Result<Verdict, CheckError> {
        let addrs = resolve(&self.host, self.port, deadline)?;
        let last = match connect_any(&addrs, deadline) {
            Ok((_stream, addr)) => return Ok(Verdict::healthy(format!("connected to {addr}"))),
            Err(last) => last,
        };
        Ok(Verdict::unhealthy(match last {
            Some((addr, e)) if e.kind() == io::ErrorKind::TimedOut => {
                format!("{addr}: timed out connecting")
            }
            Some((addr, e)) => format!("{addr}: {}", io_reason(&e)),
            None => format!("{}: timed out", self.target),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::Health;
    use std::net::TcpListener;
    use std::time::Duration;

    fn check(target: &str) -> Verdict {
        TcpCheck::new(target)
            .unwrap()
            .run(Deadline::after(Duration::from_secs(2)))
            .unwrap()
    }

    #[test]
    fn open_port_is_healthy() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let v = check(&addr.to_string());
        assert_eq!(v.health, Health::Healthy);
        assert_eq!(v.reason, format!("connected to {addr}"));
    }

    #[test]
    fn closed_port_is_refused() {
        let addr = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let v = check(&addr.to_string());
        assert_eq!(v.health, Health::Unhealthy);
        assert_eq!(v.reason, format!("{addr}: connection refused"));
    }

    #[test]
    fn localhost_resolves() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        assert_eq!(check(&format!("localhost:{port}")).health, Health::Healthy);
    }

    #[test]
    fn bad_targets() {
        for t in [
            "localhost",
            "localhost:",
            ":80",
            "host:99999",
            "host:0",
            "[::1]",
        ] {
            assert!(
                matches!(TcpCheck::new(t), Err(CheckError::BadTarget { .. })),
                "{t}"
            );
        }
        assert_eq!(TcpCheck::new("[::1]:80").unwrap().host, "::1");
    }
}
