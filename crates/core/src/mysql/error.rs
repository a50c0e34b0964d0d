//! What goes wrong: the server's error packet ([`ServerError`]), bytes that
//! are not the protocol ([`ProtocolError`]) and every way a conversation
//! fails ([`MysqlError`]), each with the reason safe for a response body.

use std::fmt;
use std::io;

use super::frame::take;
use crate::sys::io_reason;

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_reasons_never_carry_the_servers_words() {
        let e = |code, msg: &str| {
            MysqlError::Server(ServerError {
                code,
                sql_state: Some("28000".into()),
                message: msg.into(),
            })
        };
        for (err, public) in [
            (
                e(1045, "Access denied for user 'judge'@'localhost' (using password: YES)"),
                "access denied",
            ),
            (e(1044, "Access denied for user 'judge'@'%' to database 'x'"), "access denied"),
            (e(1698, "Access denied for user 'judge'@'localhost'"), "access denied"),
            (e(1040, "Too many connections"), "server error 1040: too many connections"),
            (
                e(1227, "Access denied; you need (at least one of) the PROCESS privilege(s) for user 'judge'"),
                "server error 1227: permission denied for the check's query",
            ),
            (e(4242, "something about 'judge'"), "server error 4242"),
        ] {
            let reason = err.public_reason();
            assert_eq!(reason, public);
            assert!(!reason.contains("judge"));
            assert!(err.to_string().contains("judge") || err.to_string().contains("Too many"));
        }
        let timed_out = MysqlError::TimedOut {
            step: "the server's greeting",
        };
        assert_eq!(timed_out.public_reason(), timed_out.to_string());
    }
}
