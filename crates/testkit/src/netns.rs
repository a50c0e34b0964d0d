//! A private network namespace for one test, and the kernel's TCP abort
//! counters in it.
//!
//! The counters of `/proc/net/netstat` are per network namespace and count
//! every socket in it: in the host's namespace other tests (HAProxy closes
//! its checks with a reset on purpose, the abuse tests reset on purpose)
//! would move them. In a namespace of its own a test's xinetd, its servers
//! and its clients are alone, so a counter that moves was moved by them.
//!
//! A namespace belongs to a thread: [`in_private_network`] runs the test's
//! body on a new thread that has unshared its network namespace; the
//! processes it starts (xinetd and its servers) and the threads it spawns
//! inherit it. The host's other tests are untouched.

use std::io;

/// Runs `body` on a thread of its own in a new network namespace whose
/// loopback interface is up. Needs root (CAP_SYS_ADMIN), as the suite has.
pub fn in_private_network<T: Send>(body: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                // SAFETY: unshare affects only this thread's namespaces.
                if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
                    panic!(
                        "unshare(CLONE_NEWNET): {} (the system tests run as root)",
                        io::Error::last_os_error()
                    );
                }
                loopback_up().unwrap_or_else(|e| panic!("bringing lo up: {e}"));
                body()
            })
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

/// `ip link set lo up`, for this thread's namespace.
fn loopback_up() -> io::Result<()> {
    // SAFETY: a plain datagram socket, closed below.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: an all-zero ifreq is valid; the name and flags are set below.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
        *dst = *src as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS and SIOCSIFFLAGS read and write `req`, which
    // lives through both calls; `fd` is ours.
    let result = unsafe {
        if libc::ioctl(fd, libc::SIOCGIFFLAGS, &mut req) != 0 {
            Err(io::Error::last_os_error())
        } else {
            req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
            if libc::ioctl(fd, libc::SIOCSIFFLAGS, &req) != 0 {
                Err(io::Error::last_os_error())
            } else {
                Ok(())
            }
        }
    };
    // SAFETY: closing the socket opened above.
    unsafe { libc::close(fd) };
    result
}

/// The TCP abort counters of this thread's network namespace: sockets
/// closed with unread data (`TCPAbortOnClose`, which sends the reset every
/// shell-script check suffers from) and closed with `SO_LINGER` 0 or data
/// arriving after close (`TCPAbortOnData`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Aborts {
    /// `TcpExt: TCPAbortOnClose`.
    pub on_close: u64,
    /// `TcpExt: TCPAbortOnData`.
    pub on_data: u64,
}

impl Aborts {
    /// Reads the counters now.
    pub fn now() -> Aborts {
        // thread-self, not self: /proc/self/net is the namespace of the
        // process's main thread, not of this one.
        let text = std::fs::read_to_string("/proc/thread-self/net/netstat")
            .expect("reading /proc/thread-self/net/netstat");
        let get = |name| counter(&text, "TcpExt:", name).expect(name);
        Aborts {
            on_close: get("TCPAbortOnClose"),
            on_data: get("TCPAbortOnData"),
        }
    }
}

/// A counter from `/proc/net/netstat`: pairs of lines, names then values,
/// each starting with `prefix`.
fn counter(text: &str, prefix: &str, name: &str) -> Option<u64> {
    let mut lines = text.lines().filter(|l| l.starts_with(prefix));
    while let (Some(names), Some(values)) = (lines.next(), lines.next()) {
        let at = names.split_whitespace().position(|n| n == name);
        if let Some(at) = at {
            return values.split_whitespace().nth(at)?.parse().ok();
        }
    }
    None
}
