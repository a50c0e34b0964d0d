//! The connection: connect over a unix socket or TCP, log in, ping, query,
//! quit, every connect, read and write bounded by one [`Deadline`].

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::PathBuf;

use super::error::{MysqlError, ProtocolError};
use super::frame::{frame, MAX_PACKET};
use super::handshake::{
    client_capabilities, handshake_response, native_password, FirstPacket, Greeting, Reply,
    NATIVE_PASSWORD,
};
use super::query::{parse_query_reply, ResultSet, QUERY_STEP};
use crate::conn::{ConnectFailure, ServerStream};
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
    /// Debian's and most distributions' default socket.
    pub fn default_socket() -> Endpoint {
        Endpoint::Unix(PathBuf::from("/run/mysqld/mysqld.sock"))
    }

    /// Whether this is a unix socket.
    pub fn is_unix(&self) -> bool {
        matches!(self, Endpoint::Unix(_))
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Unix(path) => write!(f, "{}", path.display()),
            Endpoint::Tcp { host, port } if host.contains(':') => write!(f, "[{host}]:{port}"),
            Endpoint::Tcp { host, port } => write!(f, "{host}:{port}"),
        }
    }
}

/// One connection to the server, every wait bounded by the deadline.
pub struct Conn {
    stream: ServerStream,
    buf: Vec<u8>,
    seq: u8,
    deadline: Deadline,
}

impl Conn {
    /// Connects to `endpoint` by `deadline`. Host names are resolved with
    /// `addrs` (IP literals need none).
    pub fn connect(
        endpoint: &Endpoint,
        addrs: &[SocketAddr],
        deadline: Deadline,
    ) -> Result<Conn, MysqlError> {
        let stream = match endpoint {
            Endpoint::Unix(path) => ServerStream::connect_unix(path, deadline),
            Endpoint::Tcp { .. } => ServerStream::connect_tcp(addrs, deadline),
        }
        .map_err(|e| match e {
            ConnectFailure::QueueFull => MysqlError::TimedOut {
                step: "a connection (the server's listen queue is full)",
            },
            ConnectFailure::TimedOut => MysqlError::TimedOut {
                step: "a connection",
            },
            ConnectFailure::Failed(source) => MysqlError::Connect {
                endpoint: endpoint.to_string(),
                source,
            },
        })?;
        Ok(Conn {
            stream,
            buf: Vec::with_capacity(1024),
            seq: 0,
            deadline,
        })
    }

    /// Reads one packet's payload, waiting at most until the deadline.
    pub fn read_packet(&mut self, step: &'static str) -> Result<Vec<u8>, MysqlError> {
        self.fill(4, step)?;
        let len = usize::from(self.buf[0])
            | usize::from(self.buf[1]) << 8
            | usize::from(self.buf[2]) << 16;
        if len > MAX_PACKET {
            return Err(MysqlError::Protocol {
                step,
                source: ProtocolError("packet larger than 1 MiB"),
            });
        }
        self.seq = self.buf[3].wrapping_add(1);
        self.fill(4 + len, step)?;
        let payload = self.buf[4..4 + len].to_vec();
        self.buf.drain(..4 + len);
        Ok(payload)
    }

    fn fill(&mut self, need: usize, step: &'static str) -> Result<(), MysqlError> {
        // Replies to a check are a few hundred bytes; a small buffer keeps
        // the per-read cost (it is zeroed each time) to nothing.
        let mut chunk = [0u8; 2048];
        while self.buf.len() < need {
            let got = self.stream.read_before(&mut chunk, self.deadline);
            match got {
                Ok(None) => return Err(MysqlError::TimedOut { step }),
                Ok(Some(0)) => return Err(MysqlError::Closed { step }),
                Ok(Some(n)) => self.buf.extend_from_slice(&chunk[..n]),
                Err(source) => return Err(MysqlError::Io { step, source }),
            }
        }
        Ok(())
    }

    /// Writes one packet with the next sequence number (several, as the
    /// protocol splits a payload of 16 MiB or more).
    pub fn write_packet(&mut self, payload: &[u8], step: &'static str) -> Result<(), MysqlError> {
        let (packets, next) = frame(payload, self.seq);
        self.seq = next;
        self.write_raw(&packets, step)
    }

    /// Writes bytes that are already packets.
    fn write_raw(&mut self, bytes: &[u8], step: &'static str) -> Result<(), MysqlError> {
        self.stream
            .write_all(bytes)
            .map_err(|source| match source.kind() {
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
                    MysqlError::TimedOut { step }
                }
                _ => MysqlError::Io { step, source },
            })
    }

    /// Sends a command: a new sequence starting at 0.
    pub fn command(&mut self, payload: &[u8], step: &'static str) -> Result<(), MysqlError> {
        self.seq = 0;
        self.write_packet(payload, step)
    }

    /// Reads the greeting.
    pub fn greeting(&mut self) -> Result<Greeting, MysqlError> {
        const STEP: &str = "the server's greeting";
        let payload = self.read_packet(STEP)?;
        match Greeting::parse(&payload) {
            Ok(FirstPacket::Greeting(g)) => Ok(g),
            Ok(FirstPacket::Error(e)) => Err(MysqlError::Server(e)),
            Err(source) => Err(MysqlError::Protocol { step: STEP, source }),
        }
    }

    /// Authenticates as `user` after `greeting`; `Ok(())` once the server
    /// says OK. An authentication switch to `mysql_native_password` is
    /// followed; other plugins are [`MysqlError::UnsupportedAuth`].
    pub fn authenticate(
        &mut self,
        greeting: &Greeting,
        user: &str,
        password: &[u8],
    ) -> Result<(), MysqlError> {
        const STEP: &str = "the authentication reply";
        let capabilities = client_capabilities(greeting.capabilities);
        let auth = native_password(password, &greeting.scramble);
        self.write_packet(
            &handshake_response(capabilities, user, &auth, NATIVE_PASSWORD),
            STEP,
        )?;
        // A server may switch plugins once; more rounds would be a loop.
        for _ in 0..2 {
            let payload = self.read_packet(STEP)?;
            match Reply::classify(&payload)
                .map_err(|source| MysqlError::Protocol { step: STEP, source })?
            {
                Reply::Ok => return Ok(()),
                Reply::Err(e) => return Err(MysqlError::Server(e)),
                Reply::AuthSwitch { plugin, data } if plugin == NATIVE_PASSWORD => {
                    self.write_packet(&native_password(password, &data), STEP)?;
                }
                // unix_socket needs no data from the client: the server
                // reads our uid from the socket.
                Reply::AuthSwitch { plugin, .. } if plugin == "unix_socket" => {
                    self.write_packet(&[], STEP)?;
                }
                Reply::AuthSwitch { plugin, .. } => {
                    return Err(MysqlError::UnsupportedAuth { plugin })
                }
                Reply::AuthMoreData => {
                    return Err(MysqlError::UnsupportedAuth {
                        plugin: greeting.auth_plugin.clone(),
                    })
                }
                Reply::Other(kind) => return Err(MysqlError::Unexpected { step: STEP, kind }),
            }
        }
        Err(MysqlError::Unexpected {
            step: STEP,
            kind: 0xFE,
        })
    }

    /// `COM_PING`.
    pub fn ping(&mut self) -> Result<(), MysqlError> {
        const STEP: &str = "the ping reply";
        self.command(&[0x0E], STEP)?;
        self.expect_ok(STEP)
    }

    /// Reads a reply that must be OK; an error packet is the server's error.
    fn expect_ok(&mut self, step: &'static str) -> Result<(), MysqlError> {
        let payload = self.read_packet(step)?;
        match Reply::classify(&payload).map_err(|source| MysqlError::Protocol { step, source })? {
            Reply::Ok => Ok(()),
            Reply::Err(e) => Err(MysqlError::Server(e)),
            _ => Err(MysqlError::Unexpected {
                step,
                kind: payload[0],
            }),
        }
    }

    /// `COM_QUERY` with the text protocol: every result set the statement
    /// returns (an empty one for a statement without rows).
    pub fn query(&mut self, sql: &str) -> Result<Vec<ResultSet>, MysqlError> {
        let mut command = Vec::with_capacity(1 + sql.len());
        command.push(0x03);
        command.extend_from_slice(sql.as_bytes());
        self.command(&command, QUERY_STEP)?;
        parse_query_reply(&mut |step| self.read_packet(step))
    }

    /// `COM_PING` and `COM_QUIT` in one write, then the ping's answer: one
    /// round trip and one wake-up of the server fewer than ping, then quit.
    /// The server answers the ping, reads the QUIT, and closes.
    pub fn ping_and_quit(mut self) -> Result<(), MysqlError> {
        const STEP: &str = "the ping reply";
        // Each command is its own packet with sequence number 0.
        self.write_raw(&[1, 0, 0, 0, 0x0E, 1, 0, 0, 0, 0x01], STEP)?;
        self.expect_ok(STEP)
    }

    /// `COM_QUIT`, then the end of the connection. The server reads the
    /// QUIT before our close (same stream, in order), closes without an
    /// answer and logs nothing; a connection dropped without it is logged
    /// as aborted.
    pub fn quit(mut self) {
        let _ = self.command(&[0x01], "quit");
    }
}

impl AsFd for Conn {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.stream.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mysql::caps;
    use crate::mysql::scripted::*;
    use crate::sys;
    use std::io::{Read, Write};
    use std::os::unix::net::{UnixListener, UnixStream};
    use std::thread;
    use std::time::Duration;

    #[test]
    fn handshake_ping_quit_exact_bytes() {
        let (dir, server) = server(|mut s| {
            s.write_all(&packet(0, &greeting_bytes(NATIVE_PASSWORD)))
                .unwrap();
            let (seq, resp) = read_packet_from(&mut s);
            assert_eq!(seq, 1);
            let caps = u32::from_le_bytes(resp[..4].try_into().unwrap());
            assert_eq!(caps & caps::PROTOCOL_41, caps::PROTOCOL_41);
            assert_eq!(resp[8], 45);
            assert_eq!(&resp[9..32], &[0; 23]);
            let rest = &resp[32..];
            assert_eq!(&rest[..8], b"monitor\0");
            assert_eq!(rest[8], 20);
            assert_eq!(&rest[9..29], &native_password(b"pw", SCRAMBLE)[..]);
            assert_eq!(&rest[29..], b"mysql_native_password\0");
            s.write_all(&packet(2, &[0, 0, 0, 2, 0, 0, 0])).unwrap();
            assert_eq!(read_packet_from(&mut s), (0, vec![0x0E]));
            s.write_all(&packet(1, &[0, 0, 0, 2, 0, 0, 0])).unwrap();
            assert_eq!(read_packet_from(&mut s), (0, vec![0x01]));
        });
        let mut conn = connect(&dir, 2000).unwrap();
        let g = conn.greeting().unwrap();
        conn.authenticate(&g, "monitor", b"pw").unwrap();
        conn.ping().unwrap();
        conn.quit();
        server.join().unwrap();
    }

    #[test]
    fn ping_and_quit_is_one_write() {
        let (dir, server) = server(|mut s| {
            s.write_all(&packet(0, &greeting_bytes(NATIVE_PASSWORD)))
                .unwrap();
            read_packet_from(&mut s);
            s.write_all(&packet(2, &[0, 0, 0, 2, 0, 0, 0])).unwrap();
            // Both commands are there before the server answers either.
            let mut both = [0u8; 10];
            s.read_exact(&mut both).unwrap();
            assert_eq!(both, [1, 0, 0, 0, 0x0E, 1, 0, 0, 0, 0x01]);
            s.write_all(&packet(1, &[0, 0, 0, 2, 0, 0, 0])).unwrap();
        });
        let mut conn = connect(&dir, 2000).unwrap();
        let g = conn.greeting().unwrap();
        conn.authenticate(&g, "monitor", b"pw").unwrap();
        conn.ping_and_quit().unwrap();
        server.join().unwrap();
    }

    #[test]
    fn auth_switch_to_native_password_uses_the_new_scramble() {
        let (dir, server) = server(|mut s| {
            s.write_all(&packet(0, &greeting_bytes("caching_sha2_password")))
                .unwrap();
            read_packet_from(&mut s);
            let mut switch = vec![0xFE];
            switch.extend_from_slice(b"mysql_native_password\0");
            switch.extend_from_slice(b"ZYXWVUTSRQPONMLKJIHG\0");
            s.write_all(&packet(2, &switch)).unwrap();
            let (seq, resp) = read_packet_from(&mut s);
            assert_eq!(seq, 3);
            assert_eq!(resp, native_password(b"pw", b"ZYXWVUTSRQPONMLKJIHG"));
            s.write_all(&packet(4, &[0, 0, 0, 2, 0, 0, 0])).unwrap();
        });
        let mut conn = connect(&dir, 2000).unwrap();
        let g = conn.greeting().unwrap();
        conn.authenticate(&g, "monitor", b"pw").unwrap();
        server.join().unwrap();
    }

    #[test]
    fn unsupported_plugin_is_named() {
        let (dir, server) = server(|mut s| {
            s.write_all(&packet(0, &greeting_bytes(NATIVE_PASSWORD)))
                .unwrap();
            read_packet_from(&mut s);
            s.write_all(&packet(2, b"\xFEclient_ed25519\0xyz\0"))
                .unwrap();
        });
        let mut conn = connect(&dir, 2000).unwrap();
        let g = conn.greeting().unwrap();
        let e = conn.authenticate(&g, "monitor", b"pw").unwrap_err();
        assert!(
            matches!(&e, MysqlError::UnsupportedAuth { plugin } if plugin == "client_ed25519"),
            "{e}"
        );
        server.join().unwrap();
    }

    #[test]
    fn access_denied_is_the_servers_words() {
        let (dir, server) = server(|mut s| {
            s.write_all(&packet(0, &greeting_bytes(NATIVE_PASSWORD)))
                .unwrap();
            read_packet_from(&mut s);
            let msg = "Access denied for user 'monitor'@'localhost' (using password: YES)";
            s.write_all(&packet(2, &err_packet(1045, "28000", msg)))
                .unwrap();
        });
        let mut conn = connect(&dir, 2000).unwrap();
        let g = conn.greeting().unwrap();
        let e = conn.authenticate(&g, "monitor", b"secret-pw").unwrap_err();
        assert_eq!(
        e.to_string(),
        "server error 1045 (28000): Access denied for user 'monitor'@'localhost' (using password: YES)"
    );
        server.join().unwrap();
    }

    #[test]
    fn silent_server_times_out_at_the_deadline() {
        let (dir, server) = server(|s| {
            thread::sleep(Duration::from_millis(600));
            drop(s);
        });
        let start = std::time::Instant::now();
        let mut conn = connect(&dir, 200).unwrap();
        let e = conn.greeting().unwrap_err();
        assert_eq!(e.to_string(), "timed out waiting for the server's greeting");
        let took = start.elapsed();
        assert!(
            took >= Duration::from_millis(200) && took < Duration::from_millis(500),
            "{took:?}"
        );
        server.join().unwrap();
    }

    #[test]
    fn closed_and_garbage_and_oversize() {
        let (dir, handle) = server(drop);
        let e = connect(&dir, 2000).unwrap().greeting().unwrap_err();
        assert_eq!(
            e.to_string(),
            "server closed the connection while we waited for the server's greeting"
        );
        handle.join().unwrap();

        let (dir, handle) = server(|mut s: UnixStream| {
            s.write_all(&packet(0, b"SSH-2.0-OpenSSH_9.2\r\n")).unwrap();
        });
        let e = connect(&dir, 2000).unwrap().greeting().unwrap_err();
        assert!(matches!(e, MysqlError::Protocol { .. }), "{e}");
        handle.join().unwrap();

        let (dir, handle) =
            server(|mut s: UnixStream| s.write_all(&[0xFF, 0xFF, 0xFF, 0]).unwrap());
        let e = connect(&dir, 2000).unwrap().greeting().unwrap_err();
        assert_eq!(
            e.to_string(),
            "the server's greeting: malformed packet: packet larger than 1 MiB"
        );
        handle.join().unwrap();
    }

    #[test]
    fn missing_socket_and_refused() {
        let dir = tempdir::Dir::new();
        let e = connect(&dir, 1000).err().unwrap();
        assert_eq!(
            e.to_string(),
            format!("{}: no such file or directory", dir.sock().display())
        );
        drop(UnixListener::bind(dir.sock()).unwrap());
        let e = connect(&dir, 1000).err().unwrap();
        assert_eq!(
            e.to_string(),
            format!("{}: connection refused", dir.sock().display())
        );
    }

    #[test]
    fn full_listen_queue_times_out_instead_of_blocking() {
        // A listener with a backlog of 1 that nobody accepts on: a stopped
        // server. A blocking connect would hang here forever.
        let dir = tempdir::Dir::new();
        let listener = UnixListener::bind(dir.sock()).unwrap();
        // std listens with a queue of 128; on a socket that listens
        // already, listen(2) sets the new length.
        sys::listen(listener.as_fd(), 1).unwrap();
        let mut held = Vec::new();
        let start = std::time::Instant::now();
        let outcome = loop {
            match connect(&dir, 100) {
                Ok(c) if held.len() < 10 => held.push(c),
                Ok(_) => break "the queue never filled".to_owned(),
                Err(e) => break e.to_string(),
            }
        };
        assert_eq!(
            outcome,
            "timed out waiting for a connection (the server's listen queue is full)"
        );
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "{:?}",
            start.elapsed()
        );
        drop(listener);
    }

    #[test]
    fn endpoints_display() {
        assert_eq!(
            Endpoint::default_socket().to_string(),
            "/run/mysqld/mysqld.sock"
        );
        let v6 = Endpoint::Tcp {
            host: "::1".into(),
            port: 3306,
        };
        assert_eq!(v6.to_string(), "[::1]:3306");
    }
}
