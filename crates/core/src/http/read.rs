//! Reading the request head: a loop bounded in bytes, header count and time.

use std::io;
use std::time::Duration;

use super::parse::{parse_head, ParseError, Parsed, RequestHead};
use crate::conn::{read_before, Input};
use crate::Deadline;

/// Bounds on what a client may send before it is answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest request head accepted, in bytes (431 past it).
    pub max_head_bytes: usize,
    /// Most header fields accepted (431 past it).
    pub max_headers: usize,
    /// Time allowed for the whole head to arrive (408 past it).
    pub read_timeout: Duration,
}

impl Default for Limits {
    /// 8 KiB, 64 headers, 2 s: far above any load balancer's check and far
    /// below what would let a slow client hold a process for long.
    fn default() -> Self {
        Limits {
            max_head_bytes: 8 * 1024,
            max_headers: 64,
            read_timeout: Duration::from_secs(2),
        }
    }
}

/// Why no usable request head was read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    /// The client closed without sending a byte: a plain TCP check.
    #[error("client closed the connection without sending a request")]
    Silent,
    /// The client closed part-way through the head.
    #[error("client closed the connection in the middle of the request head")]
    Truncated,
    /// The head was not complete by the deadline.
    #[error("request head not received in time ({received} bytes arrived)")]
    TimedOut {
        /// Bytes that did arrive.
        received: usize,
    },
    /// The head is larger than the limit.
    #[error("request head larger than {limit} bytes")]
    TooLarge {
        /// The limit in force.
        limit: usize,
    },
    /// The head is not an acceptable HTTP/1.x request.
    #[error(transparent)]
    Parse(#[from] ParseError),
    /// Reading failed (most often a reset from the client).
    #[error("reading the request: {0}")]
    Io(#[from] io::Error),
    /// A TLS handshake (an `https://` client) on a port that serves
    /// plaintext only.
    #[error(
        "TLS handshake on a plaintext port (an https:// client; this service has no tls-cert)"
    )]
    TlsOnPlaintext,
}

impl ReadError {
    /// The status code that answers this failure, or `None` where nobody is
    /// left to answer.
    pub fn status(&self) -> Option<u16> {
        match self {
            // No HTTP answer: an HTTPS client cannot read one.
            ReadError::Silent | ReadError::Io(_) | ReadError::TlsOnPlaintext => None,
            ReadError::Truncated => Some(400),
            ReadError::TimedOut { .. } => Some(408),
            ReadError::TooLarge { .. } => Some(431),
            ReadError::Parse(ParseError::TooManyHeaders { .. }) => Some(431),
            ReadError::Parse(_) => Some(400),
        }
    }
}

/// Reads one request head from `input`, within `limits`, by `deadline`.
///
/// Bytes after the head (a body, a pipelined request) may have been read and
/// are dropped: a health check ignores request bodies, and the caller drains
/// the rest when it closes.
///
/// # Errors
/// Every way the head can fail to arrive or to parse; see [`ReadError`].
pub fn read_head<I: Input + ?Sized>(
    input: &mut I,
    limits: &Limits,
    deadline: Deadline,
) -> Result<RequestHead, ReadError> {
    read_head_with(input, HeadReader::new(*limits), deadline)
}

/// [`read_head`] going on from what `head` holds already (bytes read to
/// tell an agent from an HTTP client).
///
/// # Errors
/// As [`read_head`].
pub fn read_head_with<I: Input + ?Sized>(
    input: &mut I,
    mut head: HeadReader,
    deadline: Deadline,
) -> Result<RequestHead, ReadError> {
    if head.received() > 0 {
        if let Some(done) = head.parse() {
            return done;
        }
    }
    loop {
        let n = match read_before(input, head.space()?, deadline)? {
            None => return Err(head.timed_out()),
            Some(n) => n,
        };
        if let Some(done) = head.filled(n) {
            return done;
        }
    }
}

/// A request head arriving in pieces, for a loop that reads many
/// connections at once (`--listen`, systemd `Accept=no`): read into
/// [`HeadReader::space`], report with [`HeadReader::filled`], which says
/// when the head is complete or can never be. [`read_head`] is the same
/// for one blocking connection.
#[derive(Debug)]
pub struct HeadReader {
    buf: Vec<u8>,
    len: usize,
    limits: Limits,
}

impl HeadReader {
    /// An empty head, bounded by `limits` (all but the time, which the
    /// caller keeps).
    pub fn new(limits: Limits) -> Self {
        // Heads are small (HAProxy's is 20 bytes, a kube-probe's 150):
        // start with 1 KiB and grow to the limit only for a client that
        // needs it, rather than zero 8 KiB on every poll.
        let max = limits.max_head_bytes.max(1);
        HeadReader {
            buf: vec![0u8; max.min(1024)],
            len: 0,
            limits,
        }
    }

    /// Where the next bytes go.
    ///
    /// # Errors
    /// [`ReadError::TooLarge`] once the head has reached the limit without
    /// ending.
    pub fn space(&mut self) -> Result<&mut [u8], ReadError> {
        let max = self.limits.max_head_bytes.max(1);
        if self.len == self.buf.len() {
            if self.len == max {
                return Err(ReadError::TooLarge {
                    limit: self.limits.max_head_bytes,
                });
            }
            self.buf.resize(max.min(self.len * 2), 0);
        }
        Ok(&mut self.buf[self.len..])
    }

    /// Takes `n` bytes just read into [`HeadReader::space`] (0: the client
    /// closed). `None` while the head is incomplete and may still come.
    pub fn filled(&mut self, n: usize) -> Option<Result<RequestHead, ReadError>> {
        if n == 0 {
            return Some(Err(if self.len == 0 {
                ReadError::Silent
            } else {
                ReadError::Truncated
            }));
        }
        self.add(n);
        self.parse()
    }

    /// Takes `n` bytes just read into [`HeadReader::space`] without
    /// parsing them yet.
    pub fn add(&mut self, n: usize) {
        self.len = (self.len + n).min(self.buf.len());
    }

    /// Parses what has arrived: `None` while it is a valid beginning.
    pub fn parse(&self) -> Option<Result<RequestHead, ReadError>> {
        // httparse is stateless, so each round parses from the start; the
        // head is at most a few KiB and this keeps garbage answered at once
        // rather than at the deadline.
        match parse_head(&self.buf[..self.len], self.limits.max_headers) {
            Ok(Parsed::Complete(head)) => Some(Ok(head)),
            Ok(Parsed::Partial) => None,
            // 0x16 is a TLS handshake record: say so, rather than call an
            // HTTPS client a bad request.
            Err(_) if self.buf.first() == Some(&0x16) => Some(Err(ReadError::TlsOnPlaintext)),
            Err(e) => Some(Err(e.into())),
        }
    }

    /// The bytes received so far.
    pub fn bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    /// The error for a head that did not arrive in time.
    pub fn timed_out(&self) -> ReadError {
        ReadError::TimedOut { received: self.len }
    }

    /// The limits it was made with.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Bytes received so far.
    pub fn received(&self) -> usize {
        self.len
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::parse::Method;
    use std::collections::VecDeque;
    use std::io::Read;

    /// Delivers the bytes in the given pieces, then end of stream or a
    /// timeout, the way a socket delivers segments.
    struct Pieces {
        pieces: VecDeque<Vec<u8>>,
        then_silent: bool,
    }

    impl Pieces {
        fn new(pieces: &[&[u8]], then_silent: bool) -> Self {
            Pieces {
                pieces: pieces
                    .iter()
                    .filter(|p| !p.is_empty())
                    .map(|p| p.to_vec())
                    .collect(),
                then_silent,
            }
        }
    }

    impl Read for Pieces {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let Some(mut piece) = self.pieces.pop_front() else {
                return Ok(0);
            };
            let n = piece.len().min(buf.len());
            buf[..n].copy_from_slice(&piece[..n]);
            if n < piece.len() {
                piece.drain(..n);
                self.pieces.push_front(piece);
            }
            Ok(n)
        }
    }

    impl Input for Pieces {
        fn wait_readable(&mut self, _: Deadline) -> io::Result<bool> {
            Ok(!(self.pieces.is_empty() && self.then_silent))
        }
    }

    fn read(pieces: &[&[u8]], then_silent: bool, limits: Limits) -> Result<RequestHead, ReadError> {
        let mut input = Pieces::new(pieces, then_silent);
        read_head(&mut input, &limits, Deadline::after(Duration::from_secs(5)))
    }

    const REQ: &[u8] = b"GET /health HTTP/1.1\r\nHost: lb\r\nUser-Agent: check\r\n\r\n";

    #[test]
    fn every_split_point_reads_the_same_head() {
        let whole = read(&[REQ], false, Limits::default()).unwrap();
        for cut in 1..REQ.len() {
            let split = read(&[&REQ[..cut], &REQ[cut..]], false, Limits::default()).unwrap();
            assert_eq!(split, whole, "split at {cut}");
        }
        let bytewise: Vec<&[u8]> = REQ.chunks(1).collect();
        assert_eq!(read(&bytewise, false, Limits::default()).unwrap(), whole);
        assert_eq!(whole.method, Method::Get);
    }

    #[test]
    fn every_prefix_then_close_is_truncated() {
        for cut in 1..REQ.len() {
            let err = read(&[&REQ[..cut]], false, Limits::default()).unwrap_err();
            assert!(matches!(err, ReadError::Truncated), "cut {cut}: {err:?}");
            assert_eq!(err.status(), Some(400));
        }
    }

    #[test]
    fn every_prefix_then_silence_times_out() {
        for cut in 0..REQ.len() {
            let err = read(&[&REQ[..cut]], true, Limits::default()).unwrap_err();
            assert!(
                matches!(err, ReadError::TimedOut { received } if received == cut),
                "cut {cut}: {err:?}"
            );
            assert_eq!(err.status(), Some(408));
        }
    }

    #[test]
    fn no_bytes_then_close_is_silent_and_unanswered() {
        let err = read(&[], false, Limits::default()).unwrap_err();
        assert!(matches!(err, ReadError::Silent));
        assert_eq!(err.status(), None);
    }

    #[test]
    fn oversize_head_is_431_even_when_valid_so_far() {
        let limits = Limits {
            max_head_bytes: 64,
            ..Limits::default()
        };
        let long = format!("GET / HTTP/1.1\r\nX-Pad: {}\r\n\r\n", "a".repeat(100));
        let err = read(&[long.as_bytes()], false, limits).unwrap_err();
        assert!(matches!(err, ReadError::TooLarge { limit: 64 }), "{err:?}");
        assert_eq!(err.status(), Some(431));
        // Exactly at the limit is fine.
        let exact = format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(64 - 23));
        assert_eq!(exact.len(), 64);
        assert!(read(&[exact.as_bytes()], false, limits).is_ok());
    }

    #[test]
    fn too_many_headers_is_431() {
        let mut req = b"GET / HTTP/1.1\r\n".to_vec();
        for i in 0..65 {
            req.extend_from_slice(format!("X-{i}: 1\r\n").as_bytes());
        }
        req.extend_from_slice(b"\r\n");
        let err = read(&[&req], false, Limits::default()).unwrap_err();
        assert_eq!(err.status(), Some(431), "{err:?}");
    }

    #[test]
    fn garbage_is_400_before_the_deadline() {
        let err = read(&[b"\x01\x03\x01\x00"], true, Limits::default()).unwrap_err();
        assert!(
            matches!(err, ReadError::Parse(ParseError::Malformed(_))),
            "{err:?}"
        );
        assert_eq!(err.status(), Some(400));
        // A TLS handshake is named as one, and gets no HTTP answer.
        let err = read(&[b"\x16\x03\x01\x00"], true, Limits::default()).unwrap_err();
        assert!(matches!(err, ReadError::TlsOnPlaintext), "{err:?}");
        assert_eq!(err.status(), None);
    }

    #[test]
    fn reset_is_unanswered() {
        struct Reset;
        impl Read for Reset {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                Err(io::ErrorKind::ConnectionReset.into())
            }
        }
        impl Input for Reset {
            fn wait_readable(&mut self, _: Deadline) -> io::Result<bool> {
                Ok(true)
            }
        }
        let err = read_head(
            &mut Reset,
            &Limits::default(),
            Deadline::after(Duration::from_secs(1)),
        )
        .unwrap_err();
        assert!(matches!(err, ReadError::Io(_)));
        assert_eq!(err.status(), None);
    }

    #[test]
    fn body_and_pipelined_bytes_are_left_behind() {
        let mut buf = b"GET / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello".to_vec();
        buf.extend_from_slice(REQ);
        let head = read(&[&buf], false, Limits::default()).unwrap();
        assert_eq!(head.target, "/");
    }
}
