//! The MariaDB/MySQL client/server protocol, as much as a health check needs:
//! the greeting, the handshake (`mysql_native_password`, `unix_socket`, an
//! authentication switch), `COM_PING`, `COM_QUIT` and text-protocol queries.
//!
//! Parsing is pure ([`Greeting::parse`], [`ServerError::parse`],
//! [`Reply::classify`], [`parse_query_reply`] over packets from any source);
//! [`Conn`] adds the I/O, every read and connect bounded by one
//! [`Deadline`].
//!
//! Written here rather than taken from a client crate: what a check needs is
//! small, and a full client (connection pools, TLS stacks, async runtimes)
//! would multiply the binary that every poll has to start.

pub mod sha1;

use std::fmt;
use std::io::{self, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::{AsFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::conn::{connect_any, read_before};
use crate::{io_reason, Deadline};

/// Capability flags (the subset this client uses).
pub mod caps {
    /// New, longer password hashes.
    pub const LONG_PASSWORD: u32 = 0x1;
    /// More column flags in column definitions.
    pub const LONG_FLAG: u32 = 0x4;
    /// The 4.1 protocol: SQL states in errors, 4-byte capabilities.
    pub const PROTOCOL_41: u32 = 0x200;
    /// Transaction status in OK packets.
    pub const TRANSACTIONS: u32 = 0x2000;
    /// A length-prefixed authentication response.
    pub const SECURE_CONNECTION: u32 = 0x8000;
    /// Several result sets per query.
    pub const MULTI_RESULTS: u32 = 0x2_0000;
    /// Authentication plugins named in the handshake.
    pub const PLUGIN_AUTH: u32 = 0x8_0000;
}

/// The plugin behind `IDENTIFIED BY 'password'`.
pub const NATIVE_PASSWORD: &str = "mysql_native_password";

/// Largest packet accepted: far above any greeting, status row or error, and
/// a bound on what a broken or hostile server can make us allocate.
pub const MAX_PACKET: usize = 1 << 20;

/// The largest payload one packet header can carry (a 3-byte length).
const MAX_CHUNK: usize = 0xFF_FFFF;

/// Frames `payload` as packets starting at sequence number `seq`; returns
/// them and the next sequence number. A payload of 16 MiB - 1 bytes or
/// more is split into chunks of that size, each with its own header and
/// number, ended by a shorter (possibly empty) one, as the protocol says.
pub fn frame(payload: &[u8], mut seq: u8) -> (Vec<u8>, u8) {
    let mut out = Vec::with_capacity(payload.len() + 4 * (1 + payload.len() / MAX_CHUNK));
    let mut rest = payload;
    loop {
        let chunk = &rest[..rest.len().min(MAX_CHUNK)];
        out.extend_from_slice(&(chunk.len() as u32).to_le_bytes()[..3]);
        out.push(seq);
        out.extend_from_slice(chunk);
        seq = seq.wrapping_add(1);
        rest = &rest[chunk.len()..];
        if chunk.len() < MAX_CHUNK {
            return (out, seq);
        }
    }
}

/// An error packet from the server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerError {
    /// The error number (1045 access denied, 1040 too many connections,
    /// 1129 host blocked…).
    pub code: u16,
    /// The SQL state, when the server sent one.
    pub sql_state: Option<String>,
    /// The server's message.
    pub message: String,
}

impl ServerError {
    /// Parses an error packet (first byte 0xFF).
    pub fn parse(payload: &[u8]) -> Result<ServerError, ProtocolError> {
        let rest = payload
            .strip_prefix(&[0xFF])
            .ok_or(ProtocolError("not an error packet"))?;
        let code = u16::from_le_bytes(take::<2>(rest, 0)?);
        let rest = &rest[2..];
        // With PROTOCOL_41 a '#' and a five-character SQL state follow; an
        // error sent instead of the greeting has neither.
        let (sql_state, message) = match rest {
            [b'#', state @ ..] if state.len() >= 5 => (
                Some(String::from_utf8_lossy(&state[..5]).into_owned()),
                &state[5..],
            ),
            _ => (None, rest),
        };
        Ok(ServerError {
            code,
            sql_state,
            message: String::from_utf8_lossy(message).into_owned(),
        })
    }
}

impl std::error::Error for ServerError {}

impl fmt::Display for ServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.sql_state {
            Some(state) => write!(f, "server error {} ({state}): {}", self.code, self.message),
            None => write!(f, "server error {}: {}", self.code, self.message),
        }
    }
}

/// A packet that does not follow the protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("malformed packet: {0}")]
pub struct ProtocolError(pub &'static str);

fn take<const N: usize>(buf: &[u8], at: usize) -> Result<[u8; N], ProtocolError> {
    buf.get(at..at + N)
        .and_then(|s| s.try_into().ok())
        .ok_or(ProtocolError("packet too short"))
}

fn nul_terminated(buf: &[u8]) -> (&[u8], &[u8]) {
    match buf.iter().position(|&b| b == 0) {
        Some(i) => (&buf[..i], &buf[i + 1..]),
        None => (buf, &[]),
    }
}

/// The server's first packet (protocol 10).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Greeting {
    /// The version string as sent (MariaDB prefixes `5.5.5-`).
    pub server_version: String,
    /// The connection's thread id.
    pub connection_id: u32,
    /// The server's capability flags.
    pub capabilities: u32,
    /// The 20-byte scramble for password authentication.
    pub scramble: Vec<u8>,
    /// The server's default authentication plugin.
    pub auth_plugin: String,
}

/// The first packet: a greeting, or an error (too many connections, host
/// blocked) sent in its place.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FirstPacket {
    /// A protocol-10 greeting.
    Greeting(Greeting),
    /// An error instead of a greeting.
    Error(ServerError),
}

impl Greeting {
    /// Parses the first packet's payload.
    pub fn parse(payload: &[u8]) -> Result<FirstPacket, ProtocolError> {
        match payload.first() {
            Some(0xFF) => return ServerError::parse(payload).map(FirstPacket::Error),
            Some(10) => {}
            Some(_) => return Err(ProtocolError("not protocol version 10")),
            None => return Err(ProtocolError("empty greeting")),
        }
        let (version, rest) = nul_terminated(&payload[1..]);
        let connection_id = u32::from_le_bytes(take::<4>(rest, 0)?);
        let mut scramble = take::<8>(rest, 4)?.to_vec();
        let cap_low = u16::from_le_bytes(take::<2>(rest, 13)?);
        let mut capabilities = u32::from(cap_low);
        let mut auth_plugin = NATIVE_PASSWORD.to_owned();
        let ext = &rest[15.min(rest.len())..];
        if ext.len() >= 16 {
            // charset (1), status (2), capabilities high (2), scramble
            // length (1), reserved (10: MariaDB keeps its own flags there).
            capabilities |= u32::from(u16::from_le_bytes([ext[3], ext[4]])) << 16;
            let scramble_len = usize::from(ext[5]);
            let mut tail = &ext[16..];
            if capabilities & caps::SECURE_CONNECTION != 0 {
                let part2 = scramble_len.saturating_sub(8).max(13).min(tail.len());
                // The second part ends with a NUL that is not scramble.
                let (bytes, _) = nul_terminated(&tail[..part2]);
                scramble.extend_from_slice(bytes);
                tail = &tail[part2..];
            }
            if capabilities & caps::PLUGIN_AUTH != 0 && !tail.is_empty() {
                let (name, _) = nul_terminated(tail);
                auth_plugin = String::from_utf8_lossy(name).into_owned();
            }
        }
        Ok(FirstPacket::Greeting(Greeting {
            server_version: String::from_utf8_lossy(version).into_owned(),
            connection_id,
            capabilities,
            scramble,
            auth_plugin,
        }))
    }

    /// The version without MariaDB's `5.5.5-` compatibility prefix.
    pub fn version(&self) -> &str {
        self.server_version
            .strip_prefix("5.5.5-")
            .unwrap_or(&self.server_version)
    }
}

/// The `mysql_native_password` response:
/// `SHA1(pw) XOR SHA1(scramble + SHA1(SHA1(pw)))`; empty for no password.
pub fn native_password(password: &[u8], scramble: &[u8]) -> Vec<u8> {
    if password.is_empty() {
        return Vec::new();
    }
    let stage1 = sha1::sha1(password);
    let stage2 = sha1::sha1(&stage1);
    let mut salted = Vec::with_capacity(scramble.len() + 20);
    salted.extend_from_slice(scramble);
    salted.extend_from_slice(&stage2);
    let mask = sha1::sha1(&salted);
    stage1.iter().zip(mask).map(|(a, b)| a ^ b).collect()
}

/// The capabilities this client asks for, as far as the server offers them.
pub fn client_capabilities(server: u32) -> u32 {
    (caps::LONG_PASSWORD
        | caps::LONG_FLAG
        | caps::PROTOCOL_41
        | caps::TRANSACTIONS
        | caps::SECURE_CONNECTION
        | caps::MULTI_RESULTS
        | caps::PLUGIN_AUTH)
        & server
}

/// A `HandshakeResponse41` payload.
pub fn handshake_response(capabilities: u32, user: &str, auth: &[u8], plugin: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + user.len() + auth.len() + plugin.len());
    out.extend_from_slice(&capabilities.to_le_bytes());
    out.extend_from_slice(&(MAX_PACKET as u32).to_le_bytes());
    out.push(45); // utf8mb4_general_ci
    out.extend_from_slice(&[0; 23]);
    out.extend_from_slice(user.as_bytes());
    out.push(0);
    out.push(auth.len().min(255) as u8);
    out.extend_from_slice(&auth[..auth.len().min(255)]);
    if capabilities & caps::PLUGIN_AUTH != 0 {
        out.extend_from_slice(plugin.as_bytes());
        out.push(0);
    }
    out
}

/// What a reply packet is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    /// OK (0x00).
    Ok,
    /// An error.
    Err(ServerError),
    /// The server wants another authentication plugin.
    AuthSwitch {
        /// The plugin's name.
        plugin: String,
        /// Its data (a new scramble for `mysql_native_password`).
        data: Vec<u8>,
    },
    /// More authentication data (0x01), used by plugins not supported here.
    AuthMoreData,
    /// Anything else, by its first byte.
    Other(u8),
}

impl Reply {
    /// Classifies a reply during authentication or to a simple command.
    pub fn classify(payload: &[u8]) -> Result<Reply, ProtocolError> {
        Ok(match payload.first() {
            Some(0x00) => Reply::Ok,
            Some(0xFF) => Reply::Err(ServerError::parse(payload)?),
            Some(0xFE) => {
                let (plugin, data) = nul_terminated(&payload[1..]);
                let (data, _) = match data.last() {
                    Some(0) => (&data[..data.len() - 1], ()),
                    _ => (data, ()),
                };
                Reply::AuthSwitch {
                    plugin: String::from_utf8_lossy(plugin).into_owned(),
                    data: data.to_vec(),
                }
            }
            Some(0x01) => Reply::AuthMoreData,
            Some(&b) => Reply::Other(b),
            None => return Err(ProtocolError("empty reply")),
        })
    }
}

/// An EOF packet: 0xFE and shorter than 9 bytes (a longer one starting
/// with 0xFE is a row whose first value is a long string).
fn is_eof(payload: &[u8]) -> bool {
    payload.first() == Some(&0xFE) && payload.len() < 9
}

/// The status flags of an OK packet.
fn ok_status(payload: &[u8]) -> Result<u16, ProtocolError> {
    let (_, rest) = lenenc_int(&payload[1..])?; // affected rows
    let (_, rest) = lenenc_int(rest)?; // last insert id
    Ok(u16::from_le_bytes(take::<2>(rest, 0)?))
}

/// Reads a length-encoded integer; returns it and the bytes after it.
/// `None` for the NULL marker (0xFB).
pub fn lenenc_int(buf: &[u8]) -> Result<(Option<u64>, &[u8]), ProtocolError> {
    let short = ProtocolError("truncated length-encoded integer");
    let (&first, rest) = buf.split_first().ok_or(short)?;
    let (n, width) = match first {
        0xFB => return Ok((None, rest)),
        0xFC => (2, 2),
        0xFD => (3, 3),
        0xFE => (8, 8),
        0xFF => return Err(ProtocolError("0xFF is not a length")),
        b => return Ok((Some(u64::from(b)), rest)),
    };
    let bytes = rest.get(..width).ok_or(short)?;
    let mut le = [0u8; 8];
    le[..n].copy_from_slice(bytes);
    Ok((Some(u64::from_le_bytes(le)), &rest[width..]))
}

/// Reads a length-encoded string (`None` for SQL NULL).
pub fn lenenc_str(buf: &[u8]) -> Result<(Option<&[u8]>, &[u8]), ProtocolError> {
    match lenenc_int(buf)? {
        (None, rest) => Ok((None, rest)),
        (Some(len), rest) => {
            let len = usize::try_from(len).map_err(|_| ProtocolError("string too long"))?;
            let s = rest.get(..len).ok_or(ProtocolError("truncated string"))?;
            Ok((Some(s), &rest[len..]))
        }
    }
}

/// One result set of a text-protocol query: column names and rows of
/// optional strings (`None` is SQL NULL).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ResultSet {
    /// Column names (aliases where given).
    pub columns: Vec<String>,
    /// Rows, one value per column.
    pub rows: Vec<Vec<Option<String>>>,
}

impl ResultSet {
    /// The value in `row` of the column named `name` (case-insensitive).
    pub fn get(&self, row: usize, name: &str) -> Option<&str> {
        let col = self
            .columns
            .iter()
            .position(|c| c.eq_ignore_ascii_case(name))?;
        self.rows.get(row)?.get(col)?.as_deref()
    }
}

/// Server status flag: another result set follows.
const MORE_RESULTS_EXIST: u16 = 0x0008;

/// Rows kept from one query: a check reads a handful; this bounds memory
/// against a query that returns a whole table.
pub const MAX_ROWS: usize = 10_000;

/// The step named in errors while a query's reply is read.
const QUERY_STEP: &str = "the query's result";

/// Reads the reply to a `COM_QUERY` (text protocol) from `next_packet`,
/// which returns one packet's payload per call: every result set the
/// statement returns (an empty one for a statement without rows).
///
/// Pure apart from `next_packet`: [`Conn::query`] reads packets from its
/// socket; a test or a fuzzer hands them from memory.
///
/// # Errors
/// What `next_packet` returns, the server's error packet, or
/// [`MysqlError::Protocol`] / [`MysqlError::Unexpected`] for a reply that
/// is not a result set.
pub fn parse_query_reply(
    next_packet: &mut dyn FnMut(&'static str) -> Result<Vec<u8>, MysqlError>,
) -> Result<Vec<ResultSet>, MysqlError> {
    let protocol = |source| MysqlError::Protocol {
        step: QUERY_STEP,
        source,
    };
    let mut sets = Vec::new();
    loop {
        let first = next_packet(QUERY_STEP)?;
        let (set, status) = match first.first() {
            Some(0x00) => (ResultSet::default(), ok_status(&first).map_err(protocol)?),
            Some(0xFF) => {
                return Err(MysqlError::Server(
                    ServerError::parse(&first).map_err(protocol)?,
                ))
            }
            Some(0xFB) => {
                return Err(MysqlError::Unexpected {
                    step: QUERY_STEP,
                    kind: 0xFB,
                })
            }
            _ => parse_result_set(&first, next_packet)?,
        };
        sets.push(set);
        if status & MORE_RESULTS_EXIST == 0 {
            return Ok(sets);
        }
    }
}

/// Reads one text-protocol result set whose first packet (the column count)
/// is `first`, the rest from `next_packet`: the set and the status flags of
/// its closing EOF packet.
///
/// # Errors
/// As [`parse_query_reply`].
pub fn parse_result_set(
    first: &[u8],
    next_packet: &mut dyn FnMut(&'static str) -> Result<Vec<u8>, MysqlError>,
) -> Result<(ResultSet, u16), MysqlError> {
    let protocol = |source| MysqlError::Protocol {
        step: QUERY_STEP,
        source,
    };
    let count = match lenenc_int(first).map_err(protocol)? {
        (Some(n), []) if n > 0 && n <= 4096 => n as usize,
        _ => return Err(protocol(ProtocolError("bad column count"))),
    };
    let mut set = ResultSet::default();
    for _ in 0..count {
        let def = next_packet(QUERY_STEP)?;
        // catalog, schema, table, org_table, name, ...
        let mut rest = &def[..];
        let mut name = None;
        for _ in 0..5 {
            let (field, after) = lenenc_str(rest).map_err(protocol)?;
            name = field;
            rest = after;
        }
        set.columns
            .push(String::from_utf8_lossy(name.unwrap_or_default()).into_owned());
    }
    let eof = next_packet(QUERY_STEP)?;
    if !is_eof(&eof) {
        return Err(protocol(ProtocolError(
            "no EOF after the column definitions",
        )));
    }
    loop {
        let row = next_packet(QUERY_STEP)?;
        if is_eof(&row) {
            let status = u16::from_le_bytes(take::<2>(&row, 3).map_err(protocol)?);
            return Ok((set, status));
        }
        if row.first() == Some(&0xFF) {
            return Err(MysqlError::Server(
                ServerError::parse(&row).map_err(protocol)?,
            ));
        }
        let mut rest = &row[..];
        let mut values = Vec::with_capacity(count);
        for _ in 0..count {
            let (value, after) = lenenc_str(rest).map_err(protocol)?;
            values.push(value.map(|v| String::from_utf8_lossy(v).into_owned()));
            rest = after;
        }
        if set.rows.len() < MAX_ROWS {
            set.rows.push(values);
        }
    }
}

/// Why talking to the server failed. The messages are one line and hold no
/// password, but a server's message may name the account
/// (`Access denied for user 'monitor'@'localhost'`): what goes into a
/// response body is [`MysqlError::public_reason`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MysqlError {
    /// The connection could not be made.
    #[error("{endpoint}: {}", io_reason(source))]
    Connect {
        /// Where.
        endpoint: String,
        /// Why.
        source: io::Error,
    },
    /// A step did not finish by the deadline.
    #[error("timed out waiting for {step}")]
    TimedOut {
        /// What was awaited.
        step: &'static str,
    },
    /// The server closed the connection.
    #[error("server closed the connection while we waited for {step}")]
    Closed {
        /// What was awaited.
        step: &'static str,
    },
    /// Reading or writing failed.
    #[error("{step}: {}", io_reason(source))]
    Io {
        /// What was going on.
        step: &'static str,
        /// Why it failed.
        source: io::Error,
    },
    /// The server answered with an error packet.
    #[error(transparent)]
    Server(ServerError),
    /// The server's bytes are not the protocol.
    #[error("{step}: {source}")]
    Protocol {
        /// What was going on.
        step: &'static str,
        /// What was wrong.
        source: ProtocolError,
    },
    /// The server sent something valid but unexpected.
    #[error("unexpected reply to {step} (packet type 0x{kind:02x})")]
    Unexpected {
        /// What was going on.
        step: &'static str,
        /// The packet's first byte.
        kind: u8,
    },
    /// The account uses an authentication plugin not implemented here.
    #[error("the server asks for authentication plugin {plugin:?}, which inetd-health does not support (use mysql_native_password or unix_socket)")]
    UnsupportedAuth {
        /// The plugin's name.
        plugin: String,
    },
}

impl MysqlError {
    /// The reason for a response body: this error without what the server
    /// said in words (which may name the account, a database or a host),
    /// keeping its error number and what a load-balancer operator needs
    /// ("access denied", "server error 1040: too many connections").
    pub fn public_reason(&self) -> String {
        match self {
            MysqlError::Server(e) => e.public_reason(),
            other => other.to_string(),
        }
    }
}

impl ServerError {
    /// The error in words safe for anyone to read: the number and a fixed
    /// description for the errors a check meets, the number alone for the
    /// others; never the server's own message.
    pub fn public_reason(&self) -> String {
        let what = match self.code {
            1044 | 1045 | 1698 => return "access denied".to_owned(),
            1040 => "too many connections",
            1203 => "too many connections for the account (max_user_connections)",
            1226 => "the account exceeded a resource limit",
            1129 => "host blocked after too many connection errors (mariadb-admin flush-hosts)",
            1130 => "host not allowed to connect",
            1142 | 1143 | 1227 => "permission denied for the check's query",
            1053 => "server shutdown in progress",
            1047 => "unknown command (node not ready)",
            1193 => "unknown system variable",
            1617 => "no such replication connection",
            1461 | 1135 => "server out of resources",
            _ => return format!("server error {}", self.code),
        };
        format!("server error {}: {what}", self.code)
    }
}

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

enum Stream {
    Unix(UnixStream),
    Tcp(TcpStream),
}

/// One connection to the server, every wait bounded by the deadline.
pub struct Conn {
    stream: Stream,
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
        let connect_error = |source| MysqlError::Connect {
            endpoint: endpoint.to_string(),
            source,
        };
        let stream = match endpoint {
            Endpoint::Unix(path) => {
                Stream::Unix(connect_unix(path, deadline).map_err(|e| match e {
                    UnixConnect::Full => MysqlError::TimedOut {
                        step: "a connection (the server's listen queue is full)",
                    },
                    UnixConnect::Io(e) => connect_error(e),
                })?)
            }
            Endpoint::Tcp { .. } => {
                let stream = match connect_any(addrs, deadline) {
                    Ok((stream, _)) => stream,
                    Err(Some((_, e))) if e.kind() != io::ErrorKind::TimedOut => {
                        return Err(connect_error(e))
                    }
                    Err(_) => {
                        return Err(MysqlError::TimedOut {
                            step: "a connection",
                        })
                    }
                };
                // Nagle would hold our small packets back for the server's ACK.
                let _ = stream.set_nodelay(true);
                Stream::Tcp(stream)
            }
        };
        let conn = Conn {
            stream,
            buf: Vec::with_capacity(1024),
            seq: 0,
            deadline,
        };
        // Our packets are a few hundred bytes into an empty socket buffer, so
        // writes do not block; the timeout is a backstop.
        let left = deadline.remaining().max(Duration::from_millis(1));
        let _ = match &conn.stream {
            Stream::Unix(s) => s.set_write_timeout(Some(left)),
            Stream::Tcp(s) => s.set_write_timeout(Some(left)),
        };
        Ok(conn)
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
            let got = match &mut self.stream {
                Stream::Unix(s) => read_before(s, &mut chunk, self.deadline),
                Stream::Tcp(s) => read_before(s, &mut chunk, self.deadline),
            };
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
        let r = match &mut self.stream {
            Stream::Unix(s) => s.write_all(bytes),
            Stream::Tcp(s) => s.write_all(bytes),
        };
        r.map_err(|source| match source.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => MysqlError::TimedOut { step },
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
        match &self.stream {
            Stream::Unix(s) => s.as_fd(),
            Stream::Tcp(s) => s.as_fd(),
        }
    }
}

enum UnixConnect {
    /// The listen queue stayed full until the deadline.
    Full,
    Io(io::Error),
}

/// Connects to a unix socket without blocking: a stopped server's full
/// listen queue makes a blocking `connect(2)` on a unix socket wait forever,
/// which is how hung checks pile up.
fn connect_unix(path: &Path, deadline: Deadline) -> Result<UnixStream, UnixConnect> {
    use std::os::unix::ffi::OsStrExt;
    let bytes = path.as_os_str().as_bytes();
    // SAFETY: an all-zero sockaddr_un is valid.
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    if bytes.len() >= addr.sun_path.len() {
        return Err(UnixConnect::Io(io::Error::new(
            io::ErrorKind::InvalidInput,
            "socket path too long",
        )));
    }
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    for (dst, &src) in addr.sun_path.iter_mut().zip(bytes) {
        *dst = src as libc::c_char;
    }
    // SAFETY: plain socket creation.
    let fd = unsafe {
        libc::socket(
            libc::AF_UNIX,
            libc::SOCK_STREAM | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
            0,
        )
    };
    if fd < 0 {
        return Err(UnixConnect::Io(io::Error::last_os_error()));
    }
    // SAFETY: fd is new and ours.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    loop {
        // SAFETY: addr is a valid sockaddr_un of the given size.
        let r = unsafe {
            libc::connect(
                std::os::fd::AsRawFd::as_raw_fd(&fd),
                (&addr as *const libc::sockaddr_un).cast(),
                std::mem::size_of::<libc::sockaddr_un>() as libc::socklen_t,
            )
        };
        if r == 0 {
            break;
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EINTR) => continue,
            // The listen queue is full: nothing to poll for, so retry.
            Some(libc::EAGAIN) if !deadline.expired() => {
                std::thread::sleep(deadline.remaining().min(Duration::from_millis(5)));
            }
            Some(libc::EAGAIN) => return Err(UnixConnect::Full),
            _ => return Err(UnixConnect::Io(e)),
        }
    }
    let stream = UnixStream::from(fd);
    stream.set_nonblocking(false).map_err(UnixConnect::Io)?;
    Ok(stream)
}

#[cfg(test)]
mod tests;
