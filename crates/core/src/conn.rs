//! The socket edge: reading against a deadline, half-closing, draining, and
//! asking the kernel who the peer is.
//!
//! A super-server hands the connection over as file descriptors, so the
//! connection is whatever implements [`Input`] and [`Output`]: the process's
//! own descriptors through [`Fd`], a `TcpStream` from an accept loop, or plain
//! byte buffers in tests.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use crate::sys::{self, PollFd};
use crate::Deadline;

/// A byte source that can wait for data until a deadline.
///
/// `Read` alone cannot be bounded in time: a silent client would hold the
/// process forever. Implementations for descriptors wait with `poll(2)`;
/// in-memory sources are always ready.
pub trait Input: Read {
    /// Waits until a read would not block or the deadline passes.
    ///
    /// Returns `Ok(false)` when the deadline passed first.
    ///
    /// # Errors
    /// The error `poll(2)` reported.
    fn wait_readable(&mut self, deadline: Deadline) -> io::Result<bool>;
}

/// A byte sink that can tell the peer no more data is coming.
pub trait Output: Write {
    /// Sends end-of-stream (a TCP FIN) while the read side stays open.
    ///
    /// A no-op where there is no such thing (a pipe, a buffer).
    ///
    /// # Errors
    /// The error `shutdown(2)` reported, except `ENOTCONN` (the peer is gone
    /// already, which is no failure of ours).
    fn close_write(&mut self) -> io::Result<()>;

    /// Sends each write at once, not held back for an acknowledgement
    /// (`TCP_NODELAY`): TLS ends a response with a second small record,
    /// `close_notify`, which Nagle's algorithm would hold until the client
    /// acknowledges the first (40 ms of delayed ACK, for a client that
    /// reads to the end). A no-op where there is no such thing.
    fn send_at_once(&mut self) {}
}

/// Reads once, waiting at most until `deadline`.
///
/// Returns `Ok(None)` when the deadline passed with nothing to read,
/// `Ok(Some(0))` at end of stream.
///
/// # Errors
/// Errors from the read itself, other than `EINTR` and spurious `EAGAIN`.
pub fn read_before<I: Input + ?Sized>(
    input: &mut I,
    buf: &mut [u8],
    deadline: Deadline,
) -> io::Result<Option<usize>> {
    loop {
        if !input.wait_readable(deadline)? {
            return Ok(None);
        }
        match input.read(buf) {
            Ok(n) => return Ok(Some(n)),
            Err(e)
                if e.kind() == io::ErrorKind::Interrupted
                    || e.kind() == io::ErrorKind::WouldBlock =>
            {
                // poll said readable; a spurious wake-up is retried until the
                // deadline, which poll itself enforces.
                if deadline.expired() {
                    return Ok(None);
                }
            }
            Err(e) => return Err(e),
        }
    }
}

/// Ends a connection without a reset: half-close, then drain.
///
/// Linux answers with RST instead of FIN when a socket is closed with unread
/// bytes in its receive buffer (RFC 2525 §2.17), and a client that gets RST
/// may lose the response it has not read yet. So the write side is shut down
/// first (the client sees the end of the response at once), and whatever the
/// client still sends is read and discarded until it closes its side or
/// `drain` runs out.
///
/// Returns the number of bytes discarded.
///
/// # Errors
/// A failed flush or shutdown. A reset from the peer while draining is not an
/// error: the response is out and the peer has left.
pub fn close_politely<I, O>(input: &mut I, output: &mut O, drain: Duration) -> io::Result<u64>
where
    I: Input + ?Sized,
    O: Output + ?Sized,
{
    output.flush()?;
    output.close_write()?;
    let deadline = Deadline::after(drain);
    let mut scratch = [0u8; 4096];
    let mut discarded = 0u64;
    loop {
        match read_before(input, &mut scratch, deadline) {
            Ok(Some(0)) | Ok(None) => return Ok(discarded),
            Ok(Some(n)) => discarded += n as u64,
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return Ok(discarded),
            Err(e) => return Err(e),
        }
    }
}

/// Connects to the first of `addrs` that accepts, each try bounded by what
/// is left of `deadline`.
///
/// # Errors
/// The last address tried and why it failed; `None` when the deadline
/// passed before any try (or there was no address).
pub fn connect_any(
    addrs: &[SocketAddr],
    deadline: Deadline,
) -> Result<(TcpStream, SocketAddr), Option<(SocketAddr, io::Error)>> {
    let mut last = None;
    for &addr in addrs {
        let left = deadline.remaining();
        if left.is_zero() {
            break;
        }
        match TcpStream::connect_timeout(&addr, left) {
            Ok(stream) => return Ok((stream, addr)),
            Err(e) => last = Some((addr, e)),
        }
    }
    Err(last)
}

/// A client's connection to a server (a database the checks talk to): a
/// unix socket or TCP, connected by a deadline, read and written as one
/// stream whatever it is.
#[derive(Debug)]
pub enum ServerStream {
    /// Over a unix socket.
    Unix(UnixStream),
    /// Over TCP.
    Tcp(TcpStream),
}

/// Why [`ServerStream`] could not connect.
#[derive(Debug)]
pub enum ConnectFailure {
    /// The deadline passed (or came before any try).
    TimedOut,
    /// A unix socket's listen queue stayed full until the deadline (a
    /// stopped server's: nothing to poll for).
    QueueFull,
    /// The system said no (refused, no such file, unreachable…).
    Failed(io::Error),
}

impl ServerStream {
    /// Connects to the unix socket at `path` without blocking: a stopped
    /// server's full listen queue makes a blocking `connect(2)` on a unix
    /// socket wait forever, which is how hung checks pile up.
    ///
    /// # Errors
    /// [`ConnectFailure`].
    pub fn connect_unix(
        path: &std::path::Path,
        deadline: Deadline,
    ) -> Result<Self, ConnectFailure> {
        let addr = sys::UnixAddr::new(path).map_err(ConnectFailure::Failed)?;
        let fd = sys::unix_stream_nonblocking().map_err(ConnectFailure::Failed)?;
        while let Err(e) = sys::connect_unix(fd.as_fd(), &addr) {
            match e.raw_os_error() {
                Some(libc::EINTR) => continue,
                // The listen queue is full: nothing to poll for, so retry.
                Some(libc::EAGAIN) if !deadline.expired() => {
                    std::thread::sleep(deadline.remaining().min(Duration::from_millis(5)));
                }
                Some(libc::EAGAIN) => return Err(ConnectFailure::QueueFull),
                _ => return Err(ConnectFailure::Failed(e)),
            }
        }
        let stream = UnixStream::from(fd);
        stream
            .set_nonblocking(false)
            .map_err(ConnectFailure::Failed)?;
        Ok(ServerStream::Unix(stream).writes_by(deadline))
    }

    /// Connects to the first of `addrs` that accepts ([`connect_any`]).
    ///
    /// # Errors
    /// [`ConnectFailure`]: the last address's error, or the deadline.
    pub fn connect_tcp(addrs: &[SocketAddr], deadline: Deadline) -> Result<Self, ConnectFailure> {
        match connect_any(addrs, deadline) {
            Ok((stream, _)) => {
                // Nagle would hold our small messages back for the
                // server's ACK.
                let _ = stream.set_nodelay(true);
                Ok(ServerStream::Tcp(stream).writes_by(deadline))
            }
            Err(Some((_, e))) if e.kind() != io::ErrorKind::TimedOut => {
                Err(ConnectFailure::Failed(e))
            }
            Err(_) => Err(ConnectFailure::TimedOut),
        }
    }

    /// A check's messages are a few hundred bytes into an empty socket
    /// buffer, so writes do not block; the timeout is a backstop.
    fn writes_by(self, deadline: Deadline) -> Self {
        let left = deadline.remaining().max(Duration::from_millis(1));
        let _ = match &self {
            ServerStream::Unix(s) => s.set_write_timeout(Some(left)),
            ServerStream::Tcp(s) => s.set_write_timeout(Some(left)),
        };
        self
    }

    /// Reads what has arrived, waiting at most until `deadline`
    /// ([`read_before`]).
    ///
    /// # Errors
    /// The read failed.
    pub fn read_before(&mut self, buf: &mut [u8], deadline: Deadline) -> io::Result<Option<usize>> {
        match self {
            ServerStream::Unix(s) => read_before(s, buf, deadline),
            ServerStream::Tcp(s) => read_before(s, buf, deadline),
        }
    }

    /// Writes all of `bytes` (bounded by the write timeout set at connect).
    ///
    /// # Errors
    /// The write failed or timed out.
    pub fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        match self {
            ServerStream::Unix(s) => s.write_all(bytes),
            ServerStream::Tcp(s) => s.write_all(bytes),
        }
    }

    /// Waits at most `wait` for the server to close first (after a
    /// goodbye), so that our side does not linger in TIME_WAIT.
    pub fn await_close(&mut self, wait: Duration) {
        let mut sink = [0u8; 64];
        let _ = match self {
            ServerStream::Unix(s) => s
                .set_read_timeout(Some(wait))
                .and_then(|()| s.read(&mut sink)),
            ServerStream::Tcp(s) => s
                .set_read_timeout(Some(wait))
                .and_then(|()| s.read(&mut sink)),
        };
    }
}

impl AsFd for ServerStream {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            ServerStream::Unix(s) => s.as_fd(),
            ServerStream::Tcp(s) => s.as_fd(),
        }
    }
}

fn poll_fd(fd: BorrowedFd<'_>, deadline: Deadline) -> io::Result<bool> {
    loop {
        let mut pfd = [PollFd::input(fd.as_raw_fd())];
        match sys::poll(&mut pfd, deadline.poll_timeout_ms()) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
            // POLLHUP and POLLERR count as readable: the read that follows
            // reports end of stream or the error itself.
            Ok(n) => return Ok(n > 0),
        }
    }
}

/// A connection end given as a file descriptor: the process's stdin or
/// stdout under a super-server, or any descriptor borrowed or owned.
///
/// Reads and writes go straight to the descriptor, unbuffered: the request
/// head is read into one bounded buffer and the response written in one call,
/// so a buffer in between would only copy.
#[derive(Debug)]
pub struct Fd<F> {
    fd: F,
}

impl<F: AsFd> Fd<F> {
    /// Wraps a descriptor.
    pub fn new(fd: F) -> Self {
        Fd { fd }
    }

    /// Whether the descriptor is a socket (not a pipe, file or terminal).
    pub fn is_socket(&self) -> bool {
        is_socket(self.fd.as_fd())
    }
}

impl<F: AsFd> AsFd for Fd<F> {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl<F: AsFd> Read for Fd<F> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        sys::read(self.fd.as_fd(), buf)
    }
}

impl<F: AsFd> Write for Fd<F> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        sys::write(self.fd.as_fd(), buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<F: AsFd> Input for Fd<F> {
    fn wait_readable(&mut self, deadline: Deadline) -> io::Result<bool> {
        poll_fd(self.fd.as_fd(), deadline)
    }
}

impl<F: AsFd> Output for Fd<F> {
    fn send_at_once(&mut self) {
        // A pipe or a file refuses the option: no fstat needed to ask first.
        sys::set_nodelay(self.fd.as_fd());
    }

    fn close_write(&mut self) -> io::Result<()> {
        if !self.is_socket() {
            return Ok(());
        }
        match sys::shutdown_write(self.fd.as_fd()) {
            Err(e) if e.raw_os_error() != Some(libc::ENOTCONN) => Err(e),
            _ => Ok(()),
        }
    }
}

impl Input for &[u8] {
    fn wait_readable(&mut self, _: Deadline) -> io::Result<bool> {
        Ok(true)
    }
}

impl<T: AsRef<[u8]>> Input for io::Cursor<T> {
    fn wait_readable(&mut self, _: Deadline) -> io::Result<bool> {
        Ok(true)
    }
}

impl Output for Vec<u8> {
    fn close_write(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<T: Input + ?Sized> Input for &mut T {
    fn wait_readable(&mut self, deadline: Deadline) -> io::Result<bool> {
        (**self).wait_readable(deadline)
    }
}

impl<T: Output + ?Sized> Output for &mut T {
    fn close_write(&mut self) -> io::Result<()> {
        (**self).close_write()
    }

    fn send_at_once(&mut self) {
        (**self).send_at_once();
    }
}

fn ignore_not_connected(r: io::Result<()>) -> io::Result<()> {
    match r {
        Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(()),
        other => other,
    }
}

macro_rules! stream_edges {
    ($($t:ty),*) => {$(
        impl Input for $t {
            fn wait_readable(&mut self, deadline: Deadline) -> io::Result<bool> {
                poll_fd(self.as_fd(), deadline)
            }
        }
        impl Output for $t {
            fn close_write(&mut self) -> io::Result<()> {
                ignore_not_connected(self.shutdown(Shutdown::Write))
            }

            fn send_at_once(&mut self) {
                sys::set_nodelay(self.as_fd());
            }
        }
    )*};
}
stream_edges!(TcpStream, &TcpStream, UnixStream, &UnixStream);

fn fstat(fd: BorrowedFd<'_>) -> Option<sys::Stat> {
    sys::fstat(fd).ok()
}

/// Whether `fd` is a listening socket (`SO_ACCEPTCONN`): what systemd hands
/// over with `Accept=no`, where `Accept=yes` hands over a connection.
///
/// # Errors
/// `fd` is not a socket, or not open.
pub fn is_listening(fd: BorrowedFd<'_>) -> io::Result<bool> {
    sys::accepts_connections(fd)
}

/// Marks `fd` close-on-exec, so that check programs do not inherit it
/// (systemd's fd 3 is not for them).
///
/// # Errors
/// `fd` is not open.
pub fn set_cloexec(fd: BorrowedFd<'_>) -> io::Result<()> {
    sys::set_cloexec(fd)
}

/// Whether `fd` is a socket.
pub fn is_socket(fd: BorrowedFd<'_>) -> bool {
    fstat(fd).is_some_and(|st| st.is_socket())
}

/// Whether two descriptors are the same socket.
///
/// Under xinetd, stdin, stdout **and** stderr are the client's socket: a log
/// line written to stderr would be sent to the client. This is how a caller
/// tells that case from systemd or tcpserver, where stderr is a log.
pub fn same_socket(a: BorrowedFd<'_>, b: BorrowedFd<'_>) -> bool {
    match (fstat(a), fstat(b)) {
        (Some(x), Some(y)) => x.is_socket() && y.is_socket() && x.dev == y.dev && x.ino == y.ino,
        _ => false,
    }
}

/// Sets the queue length of a listening socket (see `listen(2)`; Linux
/// cuts it to `net.core.somaxconn`). Long-lived servers call it on the
/// sockets they bind: std binds with a queue of 128.
///
/// # Errors
/// What `listen(2)` says.
pub fn set_backlog(fd: BorrowedFd<'_>, backlog: u32) -> io::Result<()> {
    sys::listen(fd, backlog)
}

/// The address of the socket's peer, from `getpeername(2)`.
///
/// `None` for anything but a connected IPv4 or IPv6 socket (a pipe, a unix
/// socket). An IPv4 peer on an IPv6 socket is reported as IPv4.
pub fn peer_address(fd: BorrowedFd<'_>) -> Option<SocketAddr> {
    sys::peer_address(fd)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;
    use std::time::Instant;

    #[test]
    fn read_before_times_out_on_a_silent_socket() {
        let (a, _b) = UnixStream::pair().unwrap();
        let mut input = Fd::new(a.as_fd());
        let start = Instant::now();
        let got = read_before(
            &mut input,
            &mut [0; 8],
            Deadline::after(Duration::from_millis(50)),
        );
        assert!(matches!(got, Ok(None)), "{got:?}");
        assert!(start.elapsed() >= Duration::from_millis(50));
    }

    #[test]
    fn close_write_on_a_socket_sends_end_of_stream_and_drains() {
        let (a, mut b) = UnixStream::pair().unwrap();
        b.write_all(b"unread request bytes").unwrap();
        drop(b.shutdown(Shutdown::Write));
        let mut output = Fd::new(a.as_fd());
        output.write_all(b"response").unwrap();
        let mut input = Fd::new(a.as_fd());
        let drained = close_politely(&mut input, &mut output, Duration::from_secs(1)).unwrap();
        assert_eq!(drained, 20);
        let mut got = Vec::new();
        b.read_to_end(&mut got).unwrap();
        assert_eq!(got, b"response");
    }

    #[test]
    fn close_write_on_a_pipe_is_skipped() {
        let (r, w) = io::pipe().unwrap();
        let mut output = Fd::new(w.as_fd());
        assert!(!output.is_socket());
        output.close_write().unwrap();
        drop(r);
    }

    #[test]
    fn peer_address_of_a_tcp_connection() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        assert_eq!(
            peer_address(server.as_fd()),
            Some(client.local_addr().unwrap())
        );
        let (u, _v) = UnixStream::pair().unwrap();
        assert_eq!(peer_address(u.as_fd()), None);
    }

    #[test]
    fn same_socket_tells_a_shared_socket_from_a_pipe() {
        let (a, _b) = UnixStream::pair().unwrap();
        let dup = a.try_clone().unwrap();
        assert!(same_socket(a.as_fd(), dup.as_fd()));
        let (c, _d) = UnixStream::pair().unwrap();
        assert!(!same_socket(a.as_fd(), c.as_fd()));
        let (r, _w) = io::pipe().unwrap();
        assert!(!same_socket(r.as_fd(), r.as_fd()));
    }
}
