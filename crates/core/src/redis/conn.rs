//! The connection: connect over a unix socket or TCP, send a pipeline of
//! commands in one write, read their replies; every step bounded by one
//! [`Deadline`].

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::resp::{self, Malformed, Value};
use crate::conn::{ConnectFailure, ServerStream};
use crate::sys::io_reason;
use crate::Deadline;

/// Where the server listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// A unix socket.
    Unix(PathBuf),
    /// A TCP address.
    Tcp {
        /// Host name or IP literal.
        host: String,
        /// Port.
        port: u16,
    },
}

impl Endpoint {
    /// The socket file or `host:port`, for messages.
    pub fn describe(&self) -> String {
        match self {
            Endpoint::Unix(path) => path.display().to_string(),
            Endpoint::Tcp { host, port } if host.contains(':') => format!("[{host}]:{port}"),
            Endpoint::Tcp { host, port } => format!("{host}:{port}"),
        }
    }
}

/// What went wrong talking to the server.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RedisError {
    /// The connection could not be made.
    #[error("connecting to {endpoint}: {}", io_reason(source))]
    Connect {
        /// The socket or address.
        endpoint: String,
        /// Why.
        source: io::Error,
    },
    /// The deadline passed.
    #[error("timed out waiting for {step}")]
    TimedOut {
        /// What we were waiting for.
        step: &'static str,
    },
    /// The server closed the connection before answering.
    #[error("the server closed the connection during {step}")]
    Closed {
        /// What we were doing.
        step: &'static str,
    },
    /// Reading or writing failed.
    #[error("{step}: {}", io_reason(source))]
    Io {
        /// What we were doing.
        step: &'static str,
        /// Why.
        source: io::Error,
    },
    /// The server sent bytes that are not RESP.
    #[error("{step}: {source}")]
    Malformed {
        /// What we were reading.
        step: &'static str,
        /// What is wrong.
        source: Malformed,
    },
}

impl RedisError {
    /// What a body may say: no path, address or account.
    pub fn public_reason(&self) -> String {
        match self {
            RedisError::Connect { source, .. } => format!("cannot connect: {}", io_reason(source)),
            RedisError::TimedOut { step } => format!("timed out waiting for {step}"),
            RedisError::Closed { .. } => "the server closed the connection".into(),
            RedisError::Io { .. } => "connection failed".into(),
            RedisError::Malformed { .. } => "protocol error: not a Redis server?".into(),
        }
    }
}

/// What a step waits for, in messages.
const STEP: &str = "the server's replies";

/// What [`Conn::send`] sent: how many replies to read.
#[derive(Clone, Copy, Debug)]
pub struct Sent {
    count: usize,
    quits: bool,
}

/// One connection to a server.
pub struct Conn {
    stream: ServerStream,
    buf: Vec<u8>,
    deadline: Deadline,
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn").finish_non_exhaustive()
    }
}

impl Conn {
    /// Connects to `endpoint` by `deadline`; `addrs` are the TCP host's
    /// addresses.
    ///
    /// # Errors
    /// [`RedisError::Connect`] or [`RedisError::TimedOut`].
    pub fn connect(
        endpoint: &Endpoint,
        addrs: &[SocketAddr],
        deadline: Deadline,
    ) -> Result<Conn, RedisError> {
        let stream = match endpoint {
            Endpoint::Unix(path) => ServerStream::connect_unix(path, deadline),
            Endpoint::Tcp { .. } => ServerStream::connect_tcp(addrs, deadline),
        }
        .map_err(|e| match e {
            ConnectFailure::QueueFull => RedisError::TimedOut {
                step: "a connection (the server's listen queue is full)",
            },
            ConnectFailure::TimedOut => RedisError::TimedOut {
                step: "a connection",
            },
            ConnectFailure::Failed(source) => RedisError::Connect {
                endpoint: endpoint.describe(),
                source,
            },
        })?;
        Ok(Conn {
            stream,
            buf: Vec::with_capacity(4096),
            deadline,
        })
    }

    /// Sends `commands` in one write and reads one reply for each. The
    /// last command may be `QUIT`: a server that closes instead of
    /// answering it has answered the others, which is all that is asked.
    ///
    /// # Errors
    /// I/O, the deadline, a closed connection, bytes that are not RESP.
    pub fn pipeline(&mut self, commands: &[Vec<u8>]) -> Result<Vec<Value>, RedisError> {
        let sent = self.send(commands)?;
        self.receive(sent)
    }

    /// Sends `commands` in one write, to read their replies later with
    /// [`Conn::receive`] (meanwhile the caller may start other work).
    ///
    /// # Errors
    /// I/O or the deadline.
    pub fn send(&mut self, commands: &[Vec<u8>]) -> Result<Sent, RedisError> {
        let bytes: Vec<u8> = commands.concat();
        self.stream
            .write_all(&bytes)
            .map_err(|source| match source.kind() {
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
                    RedisError::TimedOut { step: STEP }
                }
                _ => RedisError::Io { step: STEP, source },
            })?;
        Ok(Sent {
            count: commands.len(),
            quits: commands
                .last()
                .is_some_and(|c| c.ends_with(b"$4\r\nQUIT\r\n")),
        })
    }

    /// Reads the replies to what [`Conn::send`] sent.
    ///
    /// # Errors
    /// I/O, the deadline, a closed connection, bytes that are not RESP.
    pub fn receive(&mut self, sent: Sent) -> Result<Vec<Value>, RedisError> {
        let mut replies = Vec::with_capacity(sent.count);
        while replies.len() < sent.count {
            match resp::parse(&self.buf) {
                Ok(Some((v, used))) => {
                    self.buf.drain(..used);
                    replies.push(v);
                }
                Ok(None) => {
                    let mut chunk = [0u8; 8192];
                    match self.stream.read_before(&mut chunk, self.deadline) {
                        Ok(None) => return Err(RedisError::TimedOut { step: STEP }),
                        Ok(Some(0)) if sent.quits && replies.len() + 1 == sent.count => break,
                        // An error and a close (a refused AUTH, protected
                        // mode's DENIED, maxclients): the error is the
                        // answer, and says more than the close.
                        Ok(Some(0)) if replies.iter().any(|r| matches!(r, Value::Error(_))) => {
                            break
                        }
                        Ok(Some(0)) => return Err(RedisError::Closed { step: STEP }),
                        Ok(Some(n)) => self.buf.extend_from_slice(&chunk[..n]),
                        Err(source) => return Err(RedisError::Io { step: STEP, source }),
                    }
                }
                Err(source) => return Err(RedisError::Malformed { step: STEP, source }),
            }
        }
        Ok(replies)
    }

    /// Waits briefly for the server to close after `QUIT`, so that our side
    /// does not linger in TIME_WAIT.
    pub fn close(mut self) {
        let wait = Duration::from_millis(50).min(self.deadline.remaining());
        self.stream.await_close(wait);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        assert_eq!(
            Endpoint::Unix("/run/redis/redis.sock".into()).describe(),
            "/run/redis/redis.sock"
        );
        let v6 = Endpoint::Tcp {
            host: "::1".into(),
            port: 6379,
        };
        assert_eq!(v6.describe(), "[::1]:6379");
    }

    #[test]
    fn a_pipeline_over_a_socket_and_a_quit_answered_by_a_close() {
        use std::io::{Read as _, Write as _};
        use std::os::unix::net::UnixListener;
        let dir = std::env::temp_dir().join(format!("ih-redis-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("s");
        let listener = UnixListener::bind(&path).unwrap();
        let server = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut got = Vec::new();
            let mut buf = [0u8; 256];
            while !got.ends_with(b"QUIT\r\n") {
                let n = s.read(&mut buf).unwrap();
                got.extend_from_slice(&buf[..n]);
            }
            // The two replies split across writes; no reply to QUIT.
            s.write_all(b"+PO").unwrap();
            s.write_all(b"NG\r\n$3\r\nx:1\r\n").unwrap();
            got
        });
        let deadline = Deadline::after(Duration::from_secs(5));
        let mut conn = Conn::connect(&Endpoint::Unix(path), &[], deadline).unwrap();
        let commands = [
            resp::command(&[b"PING"]),
            resp::command(&[b"INFO", b"replication"]),
            resp::command(&[b"QUIT"]),
        ];
        let replies = conn.pipeline(&commands).unwrap();
        assert_eq!(replies.len(), 2);
        assert_eq!(replies[0], Value::Simple("PONG".into()));
        assert_eq!(replies[1].text(), Some("x:1"));
        // One write carried every command.
        assert_eq!(server.join().unwrap(), commands.concat());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
