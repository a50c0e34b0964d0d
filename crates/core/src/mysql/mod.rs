//! The MariaDB/MySQL client/server protocol, as much as a health check needs:
//! the greeting, the handshake (`mysql_native_password`, `unix_socket`, an
//! authentication switch), `COM_PING`, `COM_QUIT` and text-protocol queries.
//!
//! Parsing is pure ([`Greeting::parse`], [`ServerError::parse`],
//! [`Reply::classify`], [`parse_query_reply`] over packets from any source);
//! [`Conn`] adds the I/O, every read and connect bounded by one
//! [`Deadline`](crate::Deadline).
//!
//! - [`frame`](mod@frame): packets on the wire: the frame around a payload
//!   ([`frame()`], split at 16 MiB) and the encodings of the fields inside.
//! - [`handshake`]: the greeting, the handshake response, the
//!   `mysql_native_password` scramble (SHA-1 from [`hash`](crate::hash))
//!   and the replies during authentication.
//! - [`query`]: the reply to a text-protocol query, as [`ResultSet`]s.
//! - [`error`]: the server's error packet, malformed packets, and
//!   [`MysqlError`] with its reason safe for a response body.
//! - [`conn`]: the [`Conn`]: connect over a unix socket or TCP by the
//!   deadline, log in, ping, query, quit.
//!
//! Written here rather than taken from a client crate: what a check needs is
//! small, and a full client (connection pools, TLS stacks, async runtimes)
//! would multiply the binary that every poll has to start.

pub mod conn;
pub mod error;
pub mod frame;
pub mod handshake;
pub mod query;

#[cfg(test)]
mod scripted;

pub use conn::{Conn, Endpoint};
pub use error::{MysqlError, ProtocolError, ServerError};
pub use frame::{frame, lenenc_int, lenenc_str, MAX_PACKET};
pub use handshake::{
    caps, client_capabilities, handshake_response, native_password, FirstPacket, Greeting, Reply,
    NATIVE_PASSWORD,
};
pub use query::{parse_query_reply, parse_result_set, ResultSet, MAX_ROWS};
