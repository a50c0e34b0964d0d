//! HTTP/1.x, only as much as a health check needs.
//!
//! - [`parse`]: pure, over `&[u8]`, with `httparse`; says "complete",
//!   "partial" or why not.
//! - [`read`]: drives the parser from a bounded read loop (bytes, headers,
//!   time) and names each way a request can fail.
//! - [`response`]: encodes a whole response into one buffer, for one write.

pub mod parse;
pub mod read;
pub mod response;

pub use parse::{parse_head, Method, ParseError, Parsed, RequestHead};
pub use read::{read_head, read_head_with, HeadReader, Limits, ReadError};
pub use response::{http_date, reason_phrase, rfc3339, Response};
