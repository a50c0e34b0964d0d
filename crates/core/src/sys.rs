//! The system and C library calls std does not wrap, each behind one safe
//! function with its invariant in a `// SAFETY:` comment: the only `unsafe`
//! of this crate, and what the `inetd-health` binary calls instead of its
//! own. Beside them, what goes with them: [`io_reason`] (an OS error as a
//! reason), [`Stat`] (what `fstat` says of a file) and [`trust`] (when a
//! file may be trusted).
//!
//! The library itself never touches process globals; the functions under
//! "The process" below are for a program's `main` to call.

use std::ffi::CStr;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

pub mod trust;

/// An I/O error as a reason: the OS's text, lowercase, without Rust's
/// " (os error N)" suffix ("connection refused", "no such file or directory").
pub fn io_reason(e: &io::Error) -> String {
    let text = e.to_string();
    let text = text
        .find(" (os error")
        .map_or(text.as_str(), |i| &text[..i]);
    text.to_lowercase()
}

// --- Files ---------------------------------------------------------------

/// What `fstat(2)` (or [`std::fs::metadata`]) says of a file, as far as
/// this crate asks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stat {
    /// `st_mode`: the file's type and permission bits.
    pub mode: u32,
    /// The owner's uid.
    pub uid: u32,
    /// The group's gid.
    pub gid: u32,
    /// The size in bytes.
    pub size: u64,
    /// The device it is on.
    pub dev: u64,
    /// Its inode number on that device.
    pub ino: u64,
}

impl Stat {
    /// Whether it is a regular file.
    pub fn is_regular(&self) -> bool {
        self.mode & libc::S_IFMT == libc::S_IFREG
    }

    /// Whether it is a socket.
    pub fn is_socket(&self) -> bool {
        self.mode & libc::S_IFMT == libc::S_IFSOCK
    }

    /// The permission bits (`mode & 0o7777`).
    pub fn permissions(&self) -> u32 {
        self.mode & 0o7777
    }
}

impl From<&std::fs::Metadata> for Stat {
    fn from(meta: &std::fs::Metadata) -> Stat {
        Stat {
            mode: meta.mode(),
            uid: meta.uid(),
            gid: meta.gid(),
            size: meta.size(),
            dev: meta.dev(),
            ino: meta.ino(),
        }
    }
}

/// `fstat(2)` of an open descriptor: checks made on what was opened leave
/// no window between the check and the use.
///
/// # Errors
/// What `fstat` says (`fd` is not open).
pub fn fstat(fd: BorrowedFd<'_>) -> io::Result<Stat> {
    // SAFETY: an all-zero stat (integers only) is a valid value to be
    // overwritten by fstat.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: fd is a live descriptor (borrowed); st is a valid, writable
    // stat for the kernel to fill.
    if unsafe { libc::fstat(fd.as_raw_fd(), &mut st) } == 0 {
        Ok(Stat {
            mode: st.st_mode,
            uid: st.st_uid,
            gid: st.st_gid,
            size: st.st_size as u64,
            dev: st.st_dev,
            ino: st.st_ino,
        })
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The effective user id.
pub fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// A `flock(2)` operation; taking a lock never waits (`LOCK_NB`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flock {
    /// A shared lock if no one holds an exclusive one now.
    TryShared,
    /// An exclusive lock if no one holds any now.
    TryExclusive,
    /// Releases what this descriptor holds.
    Unlock,
}

/// `flock(2)` on an open file.
///
/// # Errors
/// What `flock` says: `EWOULDBLOCK` when the lock is held by someone else,
/// `EINTR` when a signal came first.
pub fn flock(fd: BorrowedFd<'_>, op: Flock) -> io::Result<()> {
    let op = match op {
        Flock::TryShared => libc::LOCK_SH | libc::LOCK_NB,
        Flock::TryExclusive => libc::LOCK_EX | libc::LOCK_NB,
        Flock::Unlock => libc::LOCK_UN,
    };
    // SAFETY: flock takes a descriptor (live: borrowed) and flags; no
    // pointers.
    if unsafe { libc::flock(fd.as_raw_fd(), op) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

// --- Descriptors ---------------------------------------------------------

/// `read(2)` straight from a descriptor, no buffer in between.
///
/// # Errors
/// What `read` says (`EINTR`, `EAGAIN` on a non-blocking descriptor,
/// `ECONNRESET`…).
pub fn read(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: buf is valid for writes of buf.len() bytes, and the kernel
    // writes at most that many; fd is live (borrowed).
    let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// `write(2)` straight to a descriptor, no buffer in between.
///
/// # Errors
/// What `write` says (`EPIPE` when the peer has gone: SIGPIPE is the
/// program's to ignore, see [`ignore_sigpipe`]).
pub fn write(fd: BorrowedFd<'_>, buf: &[u8]) -> io::Result<usize> {
    // SAFETY: buf is valid for reads of buf.len() bytes, and the kernel
    // reads at most that many; fd is live (borrowed).
    let n = unsafe { libc::write(fd.as_raw_fd(), buf.as_ptr().cast(), buf.len()) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// One entry of a [`poll`] set: a descriptor waited on for input, and
/// whether anything came.
#[derive(Clone, Copy, Debug)]
#[repr(transparent)]
pub struct PollFd(libc::pollfd);

impl PollFd {
    /// Waits for `fd` to be readable (`POLLIN`). A negative `fd` is an
    /// entry `poll` skips. A number that is no open descriptor is no
    /// danger: `poll` reports it (`POLLNVAL`), it reads nothing.
    pub fn input(fd: RawFd) -> PollFd {
        PollFd(libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        })
    }

    /// Waits for `fd` to be readable or writable (`POLLIN | POLLOUT`).
    pub fn input_output(fd: RawFd) -> PollFd {
        PollFd(libc::pollfd {
            fd,
            events: libc::POLLIN | libc::POLLOUT,
            revents: 0,
        })
    }

    /// Whether `poll` reported anything: readable, or hung up, or an error
    /// (the read that follows reports end of stream or the error itself).
    pub fn ready(&self) -> bool {
        self.0.revents != 0
    }
}

/// `poll(2)`: waits until an entry of `fds` is ready or `timeout_ms`
/// passes (`-1`: no limit). Returns how many entries are ready.
///
/// # Errors
/// What `poll` says (`EINTR` when a signal came first).
pub fn poll(fds: &mut [PollFd], timeout_ms: i32) -> io::Result<usize> {
    // SAFETY: PollFd is repr(transparent) over libc::pollfd, so fds is
    // fds.len() valid, writable pollfd entries; the kernel writes only
    // their revents.
    let n = unsafe {
        libc::poll(
            fds.as_mut_ptr().cast::<libc::pollfd>(),
            fds.len() as libc::nfds_t,
            timeout_ms,
        )
    };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// Sets `FD_CLOEXEC` on `fd`.
///
/// # Errors
/// `fd` is not open.
pub fn set_cloexec(fd: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: F_GETFD on a live descriptor (borrowed) reads its flags; no
    // pointers.
    let flags = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFD) };
    // SAFETY: F_SETFD on the same descriptor with an integer argument.
    if flags < 0
        || unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFD, flags | libc::FD_CLOEXEC) } < 0
    {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Sets `O_NONBLOCK` on `fd` (std does it for sockets only, not pipes).
///
/// # Errors
/// `fd` is not open.
pub fn set_nonblocking(fd: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: F_GETFL then F_SETFL on a live descriptor (borrowed), with
    // integer arguments only.
    let r = unsafe {
        let flags = libc::fcntl(fd.as_raw_fd(), libc::F_GETFL);
        libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, flags | libc::O_NONBLOCK)
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

// --- Sockets -------------------------------------------------------------

/// Whether `fd` is a socket that listens (`SO_ACCEPTCONN`).
///
/// # Errors
/// `fd` is not a socket, or not open.
pub fn accepts_connections(fd: BorrowedFd<'_>) -> io::Result<bool> {
    let mut value: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: value and len are valid out pointers, len holding value's
    // size, so the kernel writes at most that many bytes.
    let r = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_ACCEPTCONN,
            (&mut value as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    if r == 0 {
        Ok(value != 0)
    } else {
        Err(io::Error::last_os_error())
    }
}

/// `listen(2)` with a queue of `backlog` connections; on a socket that
/// listens already, Linux takes it as the new queue length.
///
/// # Errors
/// What `listen` says.
pub fn listen(fd: BorrowedFd<'_>, backlog: u32) -> io::Result<()> {
    let backlog = libc::c_int::try_from(backlog).unwrap_or(libc::c_int::MAX);
    // SAFETY: listen on a live descriptor (borrowed); no pointers.
    if unsafe { libc::listen(fd.as_raw_fd(), backlog) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// `shutdown(fd, SHUT_WR)`: end-of-stream (a TCP FIN) to the peer, the
/// read side left open.
///
/// # Errors
/// What `shutdown` says (`ENOTCONN` when the peer is gone already,
/// `ENOTSOCK`).
pub fn shutdown_write(fd: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: shutdown on a live descriptor (borrowed); no pointers.
    if unsafe { libc::shutdown(fd.as_raw_fd(), libc::SHUT_WR) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// `TCP_NODELAY` on a TCP socket; anything else (a unix socket, or no
/// socket at all: a pipe, a file) refuses it, and is left as it is.
pub fn set_nodelay(fd: BorrowedFd<'_>) {
    let on: libc::c_int = 1;
    // SAFETY: setsockopt on a live descriptor (borrowed), with a pointer
    // to an int that outlives the call and its size.
    unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_NODELAY,
            (&on as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}

/// `SO_LINGER` with a zero timeout: closing the socket then sends a reset
/// (RST), not an orderly FIN, as HAProxy closes its checks.
///
/// # Errors
/// What `setsockopt` says.
pub fn reset_on_close(fd: BorrowedFd<'_>) -> io::Result<()> {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: linger is a valid linger struct and the length given is its
    // size; the kernel only reads it.
    let r = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The address of the socket's peer, from `getpeername(2)`.
///
/// `None` for anything but a connected IPv4 or IPv6 socket (a pipe, a unix
/// socket). An IPv4 peer on an IPv6 socket is reported as IPv4.
pub fn peer_address(fd: BorrowedFd<'_>) -> Option<SocketAddr> {
    // SAFETY: an all-zero sockaddr_storage (integers and byte arrays) is
    // valid.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: storage is large enough for any address and len says how
    // large, so the kernel writes within it.
    let r = unsafe {
        libc::getpeername(
            fd.as_raw_fd(),
            (&mut storage as *mut libc::sockaddr_storage).cast(),
            &mut len,
        )
    };
    if r != 0 {
        return None;
    }
    match storage.ss_family as libc::c_int {
        libc::AF_INET => {
            // SAFETY: for AF_INET the kernel wrote a sockaddr_in, which
            // sockaddr_storage is large and aligned enough to hold.
            let sin: libc::sockaddr_in =
                unsafe { *(&storage as *const _ as *const libc::sockaddr_in) };
            let ip = Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr));
            Some(SocketAddr::V4(SocketAddrV4::new(
                ip,
                u16::from_be(sin.sin_port),
            )))
        }
        libc::AF_INET6 => {
            // SAFETY: for AF_INET6 the kernel wrote a sockaddr_in6, which
            // sockaddr_storage is large and aligned enough to hold.
            let sin6: libc::sockaddr_in6 =
                unsafe { *(&storage as *const _ as *const libc::sockaddr_in6) };
            let ip = Ipv6Addr::from(sin6.sin6_addr.s6_addr);
            let port = u16::from_be(sin6.sin6_port);
            match ip.to_ipv4_mapped() {
                Some(v4) => Some(SocketAddr::V4(SocketAddrV4::new(v4, port))),
                None => Some(SocketAddr::V6(SocketAddrV6::new(
                    ip,
                    port,
                    sin6.sin6_flowinfo,
                    sin6.sin6_scope_id,
                ))),
            }
        }
        _ => None,
    }
}

/// The address of a unix socket in the file system, for [`connect_unix`].
#[derive(Clone, Copy)]
pub struct UnixAddr(libc::sockaddr_un);

impl UnixAddr {
    /// The address of the socket at `path`.
    ///
    /// # Errors
    /// `InvalidInput`, "socket path too long", when the path does not fit
    /// (108 bytes on Linux, its terminating NUL included).
    pub fn new(path: &Path) -> io::Result<UnixAddr> {
        use std::os::unix::ffi::OsStrExt;
        let bytes = path.as_os_str().as_bytes();
        // SAFETY: an all-zero sockaddr_un (integers and a byte array) is
        // valid.
        let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
        if bytes.len() >= addr.sun_path.len() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "socket path too long",
            ));
        }
        addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
        for (dst, &src) in addr.sun_path.iter_mut().zip(bytes) {
            *dst = src as libc::c_char;
        }
        Ok(UnixAddr(addr))
    }
}

/// A new unix stream socket, non-blocking and close-on-exec.
///
/// # Errors
/// What `socket(2)` says (`EMFILE`…).
pub fn unix_stream_nonblocking() -> io::Result<OwnedFd> {
    // SAFETY: socket takes integers only and returns a new descriptor or -1.
    let fd = unsafe {
        libc::socket(
            libc::AF_UNIX,
            libc::SOCK_STREAM | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
            0,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd was just created, is open, and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `connect(2)` of a unix socket to `addr`, once: on a non-blocking socket
/// a full listen queue is `EAGAIN`, and retrying is the caller's choice.
///
/// # Errors
/// What `connect` says (`ENOENT`, `ECONNREFUSED`, `EAGAIN`, `EINTR`…).
pub fn connect_unix(fd: BorrowedFd<'_>, addr: &UnixAddr) -> io::Result<()> {
    // SAFETY: addr.0 is a valid sockaddr_un and the length given is its
    // size; the kernel only reads it.
    let r = unsafe {
        libc::connect(
            fd.as_raw_fd(),
            (&addr.0 as *const libc::sockaddr_un).cast(),
            std::mem::size_of::<libc::sockaddr_un>() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

// --- Child processes -----------------------------------------------------

/// A descriptor that becomes readable when the process `pid` exits
/// (`pidfd_open(2)`, Linux 5.3 and later); `None` where the kernel has no
/// such call, or `pid` is gone.
pub fn pidfd_open(pid: u32) -> Option<OwnedFd> {
    let pid = libc::pid_t::try_from(pid).ok()?;
    // SAFETY: pidfd_open takes a pid and flags, no pointers, and returns a
    // new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return None;
    }
    // SAFETY: the descriptor was just created, is open, and nothing else
    // owns it.
    Some(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// Whether our child `pid` has exited, leaving it unreaped (`waitid` with
/// `WNOWAIT`): its pid cannot be reused until it is reaped.
///
/// # Errors
/// What `waitid` says (`ECHILD`: not our child).
pub fn has_exited(pid: u32) -> io::Result<bool> {
    // SAFETY: an all-zero siginfo_t (integers and a union of them) is
    // valid; waitid fills it.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: a valid id type and pid, and info a valid, writable
    // siginfo_t.
    let r = unsafe {
        libc::waitid(
            libc::P_PID,
            pid as libc::id_t,
            &mut info,
            libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: waitid filled the struct (or left it zeroed): si_pid is read
    // from the fields it wrote, and is 0 when nothing has exited.
    Ok(unsafe { info.si_pid() } != 0)
}

/// SIGKILL to every process of the group `pgid`. Gone already (`ESRCH`) is
/// fine; 0 (which would be our own group) is ignored.
pub fn kill_group(pgid: u32) {
    let Ok(pgid) = libc::pid_t::try_from(pgid) else {
        return;
    };
    if pgid == 0 {
        return;
    }
    // SAFETY: kill takes integers only; signalling a group has no effect
    // on this process's memory.
    unsafe {
        libc::kill(-pgid, libc::SIGKILL);
    }
}

// --- The process ---------------------------------------------------------

/// Ignores SIGPIPE, so that writing to a peer that has left is an error
/// (`EPIPE`), not the death of the process.
pub fn ignore_sigpipe() {
    // SAFETY: SIG_IGN installs no handler code; signal takes integers only.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
}

/// Tells glibc's malloc to keep one arena (`M_ARENA_MAX` 1) rather than
/// one per thread that allocates. Call it before any thread exists. With
/// another C library, nothing.
pub fn one_malloc_arena() {
    #[cfg(target_env = "gnu")]
    {
        // SAFETY: mallopt takes integers only and sets a tunable under
        // malloc's own lock.
        unsafe { libc::mallopt(libc::M_ARENA_MAX, 1) };
    }
}

/// Whether fd `fd` is open (`fcntl(F_GETFD)` does not fail with `EBADF`).
fn is_open(fd: RawFd) -> bool {
    // SAFETY: F_GETFD only reads a descriptor's flags; any number may be
    // asked about.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
    flags != -1 || io::Error::last_os_error().raw_os_error() != Some(libc::EBADF)
}

/// Reopens on `/dev/null` each of fds 0, 1 and 2 the launcher left closed,
/// and says which they were (bit N for fd N).
///
/// std's own `main` does this, and a program without it (`no_main`)
/// skips it. Without it the first file or pipe opened later (a state file,
/// a check's output pipe) would take the lowest free number, 2 say, and
/// receive log lines meant for stderr. The cost is one `fcntl` per fd when
/// they are open.
pub fn reopen_closed_std_fds() -> u32 {
    let mut closed = 0;
    for fd in 0..3 {
        if !is_open(fd) {
            closed |= 1 << fd;
            // SAFETY: open on a constant, NUL-terminated path; the result
            // is left open on purpose: the lowest free number is `fd`, as
            // the lower ones are open by now, and it is what fd `fd` is
            // from here on. Nothing to do if it fails: the fd stays
            // closed, as the launcher left it.
            unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDWR) };
        }
    }
    closed
}

/// Fd 0, 1 or 2, borrowed for the life of the process. Not through std's
/// `stdin()`/`stdout()`: their first use allocates a buffer (8 KiB for
/// stdin) that a connection is never read or written through, and every
/// fresh page costs a poll 2–3 µs.
///
/// # Panics
/// When `fd` is not 0, 1 or 2.
pub fn std_fd(fd: RawFd) -> BorrowedFd<'static> {
    assert!((0..3).contains(&fd), "fd {fd} is not a standard descriptor");
    // SAFETY: fds 0-2 belong to the process for its whole life, as std
    // assumes for `io::stdin().as_fd()`: nothing closes them (a program
    // without std's start-up reopens closed ones first with
    // reopen_closed_std_fds).
    unsafe { BorrowedFd::borrow_raw(fd) }
}

/// Signals as a descriptor to poll: they are blocked for the thread that
/// makes it (threads it starts later inherit the mask), and read here.
#[derive(Debug)]
pub struct SignalFd(OwnedFd);

impl SignalFd {
    /// Blocks `signals` and opens a `signalfd(2)` for them, close-on-exec
    /// and non-blocking. Make it before starting any thread.
    ///
    /// # Errors
    /// What `pthread_sigmask` or `signalfd` say.
    pub fn new(signals: &[libc::c_int]) -> io::Result<SignalFd> {
        // SAFETY: an all-zero sigset_t (integers) is valid; sigemptyset
        // makes it a proper empty set.
        let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
        // SAFETY: set is a valid, writable sigset_t; an unknown signal
        // number is EINVAL, not a write outside it.
        unsafe {
            libc::sigemptyset(&mut set);
            for &signal in signals {
                libc::sigaddset(&mut set, signal);
            }
        }
        // SAFETY: set is a valid sigset_t; no old mask is asked for (null).
        let rc = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
        if rc != 0 {
            return Err(io::Error::from_raw_os_error(rc));
        }
        // SAFETY: -1 asks for a new descriptor; set is a valid sigset_t.
        let fd = unsafe { libc::signalfd(-1, &set, libc::SFD_CLOEXEC | libc::SFD_NONBLOCK) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fd was just created, is open, and nothing else owns it.
        Ok(SignalFd(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    /// The signal received, if any (the descriptor does not block).
    pub fn read(&self) -> Option<i32> {
        // SAFETY: an all-zero signalfd_siginfo (integers) is valid.
        let mut info: libc::signalfd_siginfo = unsafe { std::mem::zeroed() };
        let size = std::mem::size_of::<libc::signalfd_siginfo>();
        // SAFETY: info is valid for writes of `size` bytes, and the kernel
        // writes at most that many.
        let n = unsafe {
            libc::read(
                self.0.as_raw_fd(),
                (&mut info as *mut libc::signalfd_siginfo).cast(),
                size,
            )
        };
        (n as usize == size).then_some(info.ssi_signo as i32)
    }
}

impl AsFd for SignalFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}

impl AsRawFd for SignalFd {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }
}

// --- Users and groups ----------------------------------------------------

/// The uid and primary gid of the user `name` (`getpwnam_r`), or `None` if
/// there is no such user.
///
/// # Errors
/// The lookup failed (not "no such user").
pub fn user_ids(name: &CStr) -> io::Result<Option<(u32, u32)>> {
    let mut buf = vec![0 as libc::c_char; 4096];
    loop {
        // SAFETY: all-zero bytes are a valid passwd (integers, null
        // pointers).
        let mut record: libc::passwd = unsafe { std::mem::zeroed() };
        let mut found: *mut libc::passwd = std::ptr::null_mut();
        // SAFETY: name is NUL-terminated, record and found are valid out
        // pointers, and buf is as long as said; only the integers of the
        // record are read afterwards.
        let rc = unsafe {
            libc::getpwnam_r(
                name.as_ptr(),
                &mut record,
                buf.as_mut_ptr(),
                buf.len(),
                &mut found,
            )
        };
        match rc {
            0 if found.is_null() => return Ok(None),
            0 => return Ok(Some((record.pw_uid, record.pw_gid))),
            libc::ERANGE if buf.len() < 1 << 20 => buf.resize(buf.len() * 4, 0),
            _ => return Err(io::Error::from_raw_os_error(rc)),
        }
    }
}

/// The groups the user `name` runs with (primary `gid` first), as
/// `initgroups` would set them (`getgrouplist`); `None` when they cannot
/// be listed.
pub fn group_list(name: &CStr, gid: u32) -> Option<Vec<u32>> {
    let mut groups: Vec<libc::gid_t> = vec![0; 64];
    loop {
        let mut count = groups.len() as libc::c_int;
        // SAFETY: name is NUL-terminated; groups has room for `count`
        // entries, and getgrouplist writes at most that many and says how
        // many there are.
        let rc = unsafe { libc::getgrouplist(name.as_ptr(), gid, groups.as_mut_ptr(), &mut count) };
        if rc >= 0 {
            groups.truncate(count.max(0) as usize);
            return Some(groups);
        }
        if count as usize <= groups.len() || groups.len() >= 1 << 16 {
            return None;
        }
        groups.resize(count as usize, 0);
    }
}

/// A user's name by uid (`getpwuid_r`), if it has one.
pub fn user_name(uid: u32) -> Option<String> {
    let mut buf = vec![0 as libc::c_char; 16384];
    // SAFETY: all-zero bytes are a valid passwd (integers, null pointers).
    let mut record: libc::passwd = unsafe { std::mem::zeroed() };
    let mut found: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: record and found are valid out pointers and buf is as long
    // as said; pw_name points into buf, which outlives its use.
    let rc = unsafe { libc::getpwuid_r(uid, &mut record, buf.as_mut_ptr(), buf.len(), &mut found) };
    if rc == 0 && !found.is_null() && !record.pw_name.is_null() {
        // SAFETY: a NUL-terminated string in buf, alive until the end of
        // this function.
        Some(owned(unsafe { CStr::from_ptr(record.pw_name) }))
    } else {
        None
    }
}

/// A group's name by gid (`getgrgid_r`), if it has one.
pub fn group_name(gid: u32) -> Option<String> {
    let mut buf = vec![0 as libc::c_char; 65536];
    // SAFETY: all-zero bytes are a valid group (integers, null pointers).
    let mut record: libc::group = unsafe { std::mem::zeroed() };
    let mut found: *mut libc::group = std::ptr::null_mut();
    // SAFETY: record and found are valid out pointers and buf is as long
    // as said; gr_name points into buf, which outlives its use.
    let rc = unsafe { libc::getgrgid_r(gid, &mut record, buf.as_mut_ptr(), buf.len(), &mut found) };
    if rc == 0 && !found.is_null() && !record.gr_name.is_null() {
        // SAFETY: a NUL-terminated string in buf, alive until the end of
        // this function.
        Some(owned(unsafe { CStr::from_ptr(record.gr_name) }))
    } else {
        None
    }
}

fn owned(name: &CStr) -> String {
    name.to_string_lossy().into_owned()
}

/// `CLOCK_MONOTONIC` in microseconds: what systemd's `MONOTONIC_USEC=`
/// (sent with `RELOADING=1`) compares with its own clock.
pub fn monotonic_usec() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec we own; CLOCK_MONOTONIC
    // is always available on Linux.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    if rc != 0 {
        return 0;
    }
    (ts.tv_sec as u64) * 1_000_000 + (ts.tv_nsec as u64) / 1_000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_reasons_are_the_os_text_alone() {
        let e = io::Error::from_raw_os_error(libc::ECONNREFUSED);
        assert_eq!(io_reason(&e), "connection refused");
        let e = io::Error::new(io::ErrorKind::InvalidInput, "Socket path too long");
        assert_eq!(io_reason(&e), "socket path too long");
    }

    #[test]
    #[should_panic(expected = "fd 3 is not a standard descriptor")]
    fn only_std_fds_are_borrowed_for_ever() {
        assert_eq!(std_fd(2).as_raw_fd(), 2);
        std_fd(3);
    }
}
