//! Why a PostgreSQL check could not get its answer, and what of it may be
//! said in a body.

use super::message::{Fields, Malformed};
use super::scram::ScramError;
use crate::sys::io_reason;

/// What went wrong talking to the server.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PgError {
    /// The connection could not be made.
    #[error("connecting to {endpoint}: {}", io_reason(source))]
    Connect {
        /// The socket or address.
        endpoint: String,
        /// Why.
        source: std::io::Error,
    },
    /// The deadline passed.
    #[error("timed out waiting for {step}")]
    TimedOut {
        /// What we were waiting for.
        step: &'static str,
    },
    /// The server closed the connection.
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
        source: std::io::Error,
    },
    /// The server sent bytes that are not a message.
    #[error("{step}: {source}")]
    Malformed {
        /// What we were reading.
        step: &'static str,
        /// What is wrong.
        source: Malformed,
    },
    /// A message the protocol does not allow there.
    #[error("unexpected message during {step}")]
    Unexpected {
        /// What we were doing.
        step: &'static str,
    },
    /// The server's error.
    #[error("server error {}: {}{}", .0.code, .0.message, .0.detail.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    Server(Fields),
    /// The server asks for a password and none was found.
    #[error("the server asks for a password and the password file has none for this connection")]
    NoPassword,
    /// The server asks for the password in clear text, over a connection
    /// that is not encrypted.
    #[error("the server asks for a cleartext password: refused without TLS")]
    Cleartext,
    /// SCRAM failed.
    #[error("SCRAM: {0}")]
    Scram(ScramError),
    /// The server's answer to a query is not of the shape asked for (a
    /// NULL where a value must be, another row).
    #[error("unexpected answer to {what}")]
    BadAnswer {
        /// The query.
        what: &'static str,
    },
    /// The server asks for what a check does not speak.
    #[error("unsupported: {0}")]
    Unsupported(&'static str),
}

impl PgError {
    /// What a body may say: no account, path or server text that names
    /// one (those go to the log's detail).
    pub fn public_reason(&self) -> String {
        match self {
            PgError::Connect { source, .. } => format!("cannot connect: {}", io_reason(source)),
            PgError::TimedOut { step } => format!("timed out waiting for {step}"),
            PgError::Closed { .. } => "the server closed the connection".into(),
            PgError::Io { .. } => "connection failed".into(),
            PgError::Malformed { .. } | PgError::Unexpected { .. } => {
                "protocol error: not a PostgreSQL server?".into()
            }
            PgError::Server(f) => public_server_reason(f),
            PgError::BadAnswer { what } => format!("unexpected answer to {what}"),
            PgError::NoPassword => "access denied: no password for this connection".into(),
            PgError::Cleartext => "access denied: cleartext password refused".into(),
            PgError::Scram(ScramError::Signature) => {
                "access denied: the server did not prove it knows the password".into()
            }
            PgError::Scram(_) => "access denied: SCRAM exchange failed".into(),
            PgError::Unsupported(_) => "unsupported authentication method".into(),
        }
    }
}

/// The public reason for a server's error, by SQLSTATE: what an operator
/// acts on, never the role or database its message names.
pub fn public_server_reason(f: &Fields) -> String {
    match f.code.as_str() {
        // invalid_password, invalid_authorization_specification.
        "28P01" | "28000" => "access denied".into(),
        "57P03" => cannot_connect_now(f).into(),
        "53300" => "server error 53300: too many connections".into(),
        "3D000" => "server error 3D000: database does not exist".into(),
        // insufficient_privilege: a function revoked from PUBLIC.
        "42501" => "server error 42501: permission denied".into(),
        code => format!("server error {code}"),
    }
}

/// What SQLSTATE 57P03 ("cannot connect now") means, from the message
/// the server sends with it (PostgreSQL 15's wording).
pub fn cannot_connect_now(f: &Fields) -> &'static str {
    let text = format!("{} {}", f.message, f.detail.as_deref().unwrap_or_default());
    if text.contains("Hot standby mode is disabled") {
        "not accepting connections: hot standby is off"
    } else if text.contains("starting up") {
        "not accepting connections: starting up"
    } else if text.contains("shutting down") {
        "not accepting connections: shutting down"
    } else if text.contains("not yet accepting connections")
        || text.contains("Consistent recovery state has not been yet reached")
    {
        "not accepting connections: recovery not yet consistent"
    } else {
        "not accepting connections"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(code: &str, message: &str, detail: Option<&str>) -> Fields {
        Fields {
            severity: "FATAL".into(),
            code: code.into(),
            message: message.into(),
            detail: detail.map(Into::into),
        }
    }

    #[test]
    fn public_reasons_name_no_account() {
        let wrong = fields(
            "28P01",
            "password authentication failed for user \"monitor\"",
            None,
        );
        assert_eq!(
            PgError::Server(wrong.clone()).public_reason(),
            "access denied"
        );
        assert!(PgError::Server(wrong).to_string().contains("monitor"));
        for (message, detail, want) in [
            ("the database system is starting up", None, "starting up"),
            (
                "the database system is shutting down",
                None,
                "shutting down",
            ),
            (
                "the database system is not yet accepting connections",
                Some("Consistent recovery state has not been yet reached."),
                "recovery not yet consistent",
            ),
            (
                "the database system is not accepting connections",
                Some("Hot standby mode is disabled."),
                "hot standby is off",
            ),
        ] {
            let reason = public_server_reason(&fields("57P03", message, detail));
            assert_eq!(reason, format!("not accepting connections: {want}"));
        }
    }
}
