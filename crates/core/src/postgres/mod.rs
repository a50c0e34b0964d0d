//! The PostgreSQL frontend/backend protocol (version 3), as much as a check
//! needs, written here rather than linked (libpq is a dynamic library and
//! every poll would pay its loading; a Rust client pulls in an async
//! runtime): split like [`crate::mysql`].
//!
//! - [`message`]: the messages, built and parsed (pure, fuzzed).
//! - [`scram`]: SCRAM-SHA-256's client side, pure, with the derived keys
//!   handed in so that PBKDF2 is paid once per salt.
//! - [`passfile`]: the password file, as libpq reads `~/.pgpass`.
//! - [`error`]: what went wrong, and what of it may be said in a body.
//! - [`conn`]: connect, ping as `pg_isready` does, log in, query, goodbye.

pub mod conn;
pub mod error;
pub mod message;
pub mod passfile;
pub mod scram;

pub use conn::{Conn, Endpoint, Login, Ping, Session};
pub use error::PgError;
