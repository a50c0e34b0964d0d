//! Loopback ports and a raw TCP client that tells resets apart from clean closes.

use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

/// How long a connect may take on loopback before the test gives up.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// A port on 127.0.0.1 that was free a moment ago (bound to port 0, read, closed).
pub fn free_port() -> u16 {
    free_ports(1)[0]
}

/// `n` distinct ports of 127.0.0.1 free now (all bound at once, then
/// released; another process may still take one before it is used).
pub fn free_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<_> = (0..n)
        .map(|_| TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("binding 127.0.0.1:0"))
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().expect("local_addr").port())
        .collect()
}

/// `127.0.0.1:port`.
pub fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, port))
}

/// Whether something listens on 127.0.0.1:`port` over TCP, read from
/// `/proc/net/tcp` so that checking does not itself open a connection
/// (which under inetd would start a server).
pub fn is_listening(port: u16) -> bool {
    let want = format!("0100007F:{port:04X}");
    std::fs::read_to_string("/proc/thread-self/net/tcp")
        .map(|table| {
            table.lines().skip(1).any(|line| {
                let mut fields = line.split_whitespace();
                let local = fields.nth(1);
                let state = fields.nth(1);
                local == Some(want.as_str()) && state == Some("0A")
            })
        })
        .unwrap_or(false)
}

/// What happened on one connection.
#[derive(Debug)]
pub struct Exchange {
    /// Every byte received before EOF, reset, or timeout.
    pub bytes: Vec<u8>,
    /// The read ended in ECONNRESET (the peer closed with unread data, or aborted).
    pub reset: bool,
    /// The read did not end before the timeout.
    pub timed_out: bool,
    /// Another read error, if any.
    pub read_error: Option<std::io::Error>,
    /// Writing the request failed (e.g. EPIPE or ECONNRESET after an early close).
    pub write_error: Option<std::io::Error>,
    /// From the connection being established to the read ending.
    pub elapsed: Duration,
}

impl Exchange {
    /// The received bytes as text, lossily, for messages.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes).into_owned()
    }

    /// Panics unless the connection ended in a clean EOF, within the timeout,
    /// with the request fully written.
    pub fn assert_clean_close(&self) {
        assert!(
            !self.reset,
            "connection reset (ECONNRESET) after {:?}; received {:?}",
            self.elapsed,
            self.text()
        );
        assert!(
            !self.timed_out,
            "no EOF within the timeout ({:?}); received {:?}",
            self.elapsed,
            self.text()
        );
        assert!(
            self.read_error.is_none(),
            "read error {:?}; received {:?}",
            self.read_error,
            self.text()
        );
        assert!(
            self.write_error.is_none(),
            "write error {:?}; received {:?}",
            self.write_error,
            self.text()
        );
    }
}

/// How to behave on a connection.
#[derive(Clone, Copy, Debug)]
pub struct Plan<'a> {
    /// Bytes to send at once right after connecting (may be empty).
    pub send: &'a [u8],
    /// After a pause, bytes to send in a second write (if not empty): bytes
    /// that arrive while the server is busy, after it has read the first.
    pub later: (Duration, &'a [u8]),
    /// Half-close (shutdown write) after sending.
    pub shutdown_write: bool,
    /// Overall bound on reading to EOF.
    pub timeout: Duration,
}

/// Connects to 127.0.0.1:`port`, sends `request` in one write (if not
/// empty), keeps the write side open, and reads to EOF within `timeout`.
pub fn exchange(port: u16, request: &[u8], timeout: Duration) -> Exchange {
    run(
        port,
        Plan {
            send: request,
            later: (Duration::ZERO, b""),
            shutdown_write: false,
            timeout,
        },
    )
}

/// Like [`exchange`], but sends `first`, waits `pause`, then sends `second`
/// (keeping the write side open), then reads to EOF.
pub fn exchange_in_two_writes(
    port: u16,
    first: &[u8],
    pause: Duration,
    second: &[u8],
    timeout: Duration,
) -> Exchange {
    run(
        port,
        Plan {
            send: first,
            later: (pause, second),
            shutdown_write: false,
            timeout,
        },
    )
}

/// Like [`exchange`], but half-closes the connection after sending.
pub fn exchange_half_closed(port: u16, request: &[u8], timeout: Duration) -> Exchange {
    run(
        port,
        Plan {
            send: request,
            later: (Duration::ZERO, b""),
            shutdown_write: true,
            timeout,
        },
    )
}

/// Runs one connection according to `plan`.
pub fn run(port: u16, plan: Plan<'_>) -> Exchange {
    let mut stream = TcpStream::connect_timeout(&loopback(port), CONNECT_TIMEOUT)
        .unwrap_or_else(|e| panic!("connecting to 127.0.0.1:{port}: {e}"));
    let start = Instant::now();
    let _ = stream.set_nodelay(true);
    let mut write_error = None;
    stream
        .set_write_timeout(Some(plan.timeout))
        .expect("set_write_timeout");
    if !plan.send.is_empty() {
        if let Err(e) = stream.write_all(plan.send) {
            write_error = Some(e);
        }
    }
    let (pause, later) = plan.later;
    if !later.is_empty() && write_error.is_none() {
        std::thread::sleep(pause);
        if let Err(e) = stream.write_all(later) {
            write_error = Some(e);
        }
    }
    if plan.shutdown_write && write_error.is_none() {
        if let Err(e) = stream.shutdown(Shutdown::Write) {
            write_error = Some(e);
        }
    }
    let mut exchange = read_to_end(&mut stream, start, plan.timeout);
    exchange.write_error = write_error;
    exchange
}

fn read_to_end(stream: &mut TcpStream, start: Instant, timeout: Duration) -> Exchange {
    let deadline = start + timeout;
    let mut bytes = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    let mut reset = false;
    let mut timed_out = false;
    let mut read_error = None;
    // Bounded: each pass either makes progress, ends, or the deadline passes.
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            timed_out = true;
            break;
        }
        stream
            .set_read_timeout(Some(left))
            .expect("set_read_timeout");
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => bytes.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if e.kind() == ErrorKind::ConnectionReset => {
                reset = true;
                break;
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                timed_out = true;
                break;
            }
            Err(e) => {
                read_error = Some(e);
                break;
            }
        }
    }
    Exchange {
        bytes,
        reset,
        timed_out,
        read_error,
        write_error: None,
        elapsed: start.elapsed(),
    }
}

/// TCP sockets on 127.0.0.1 whose local port is `port`, as `(state, remote
/// port)` with the state as the kernel's hex code (`01` ESTABLISHED, `06`
/// TIME_WAIT, `08` CLOSE_WAIT, `0A` LISTEN...), from `/proc/net/tcp`.
pub fn tcp_sockets_on(port: u16) -> Vec<(String, u16)> {
    let want = format!("0100007F:{port:04X}");
    std::fs::read_to_string("/proc/thread-self/net/tcp")
        .unwrap_or_default()
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.len() < 4 || fields[1] != want {
                return None;
            }
            let remote = u16::from_str_radix(fields[2].rsplit(':').next()?, 16).ok()?;
            Some((fields[3].to_string(), remote))
        })
        .collect()
}

/// Server-side connections on 127.0.0.1:`port` that are still open: every
/// socket there but the listener and those in TIME_WAIT (which no process
/// holds any more).
pub fn open_connections_on(port: u16) -> Vec<(String, u16)> {
    tcp_sockets_on(port)
        .into_iter()
        .filter(|(state, _)| state != "0A" && state != "06")
        .collect()
}

/// Connections waiting in the accept queue of the listener on
/// 127.0.0.1:`port` (the `rx_queue` of its LISTEN line), if it listens.
pub fn accept_queue_len(port: u16) -> Option<usize> {
    let want = format!("0100007F:{port:04X}");
    let table = std::fs::read_to_string("/proc/thread-self/net/tcp").ok()?;
    table.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() < 5 || fields[1] != want || fields[3] != "0A" {
            return None;
        }
        let rx = fields[4].split(':').nth(1)?;
        usize::from_str_radix(rx, 16).ok()
    })
}

/// Reads from `stream` to EOF, a reset, or `timeout` (counted from now), as
/// [`exchange`] does after sending; for callers that drive the connection
/// themselves (e.g. write from another thread).
pub fn read_until_closed(stream: &mut TcpStream, timeout: Duration) -> Exchange {
    read_to_end(stream, Instant::now(), timeout)
}

/// Closes `stream` with a reset: `SO_LINGER` 0, then close, so the kernel
/// sends RST instead of FIN (a client that aborts).
pub fn abort(stream: TcpStream) {
    use std::os::fd::AsRawFd;
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: a valid descriptor and a pointer to a linger of the given size.
    let r = unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    assert_eq!(
        r,
        0,
        "setting SO_LINGER 0: {}",
        std::io::Error::last_os_error()
    );
    drop(stream);
}
