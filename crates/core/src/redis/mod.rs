//! The Redis serialization protocol (RESP2), as much as a check needs,
//! written here rather than linked (a Rust client brings an async runtime
//! or a connection pool for what is one write and one read per poll):
//! split like [`crate::mysql`] and [`crate::postgres`].
//!
//! - [`resp`]: replies parsed and commands built (pure, fuzzed).
//! - [`info`]: `INFO`'s `field:value` lines (pure).
//! - [`conn`]: connect, send a pipeline in one write, read its replies,
//!   every step bounded by one [`crate::Deadline`].

pub mod conn;
pub mod info;
pub mod resp;

pub use conn::{Conn, Endpoint, RedisError};
pub use resp::Value;
