//! RESP2: a reply is a simple string (`+OK`), an error (`-ERR …`), an
//! integer (`:1`), a bulk string (`$5\r\nhello`, `$-1` for nil) or an array
//! of replies (`*2`, `*-1` for nil). Commands go as arrays of bulk strings.
//!
//! Parsing is pure and bounded: a reply's length fields are checked
//! against what a check ever reads before anything is allocated.

/// The largest bulk string accepted: `INFO` of one section is a few KiB.
pub const MAX_BULK: usize = 1 << 20;
/// The most elements an array may have, and how deep arrays may nest.
pub const MAX_ELEMENTS: usize = 1024;
const MAX_DEPTH: usize = 4;

/// A reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    /// `+text`.
    Simple(String),
    /// `-text`: the server's error, its first word the code (`ERR`,
    /// `WRONGPASS`, `NOAUTH`, `LOADING`).
    Error(String),
    /// `:n`.
    Int(i64),
    /// `$n` bytes, or nil (`$-1`).
    Bulk(Option<Vec<u8>>),
    /// `*n` replies, or nil (`*-1`).
    Array(Option<Vec<Value>>),
}

impl Value {
    /// The text of a simple or bulk string.
    pub fn text(&self) -> Option<&str> {
        match self {
            Value::Simple(s) => Some(s),
            Value::Bulk(Some(b)) => std::str::from_utf8(b).ok(),
            _ => None,
        }
    }

    /// The error's code (its first word), for an error.
    pub fn error_code(&self) -> Option<&str> {
        match self {
            Value::Error(e) => e.split_whitespace().next(),
            _ => None,
        }
    }
}

/// Why bytes are not a reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Malformed {
    /// A type byte RESP2 does not have.
    #[error("unknown reply type {0:#04x}")]
    Type(u8),
    /// A length or integer that is not a number, or out of bounds.
    #[error("bad length or integer")]
    Number,
    /// A line that is not text, or a bulk string not ended by CRLF.
    #[error("bad line")]
    Line,
    /// Arrays nested deeper than a check's replies ever are.
    #[error("arrays nested too deep")]
    Depth,
}

/// Parses one reply from the start of `buf`: the reply and the bytes it
/// took, or `None` when more bytes are needed.
///
/// # Errors
/// [`Malformed`] for bytes that are not a reply.
pub fn parse(buf: &[u8]) -> Result<Option<(Value, usize)>, Malformed> {
    parse_at(buf, 0)
}

fn parse_at(buf: &[u8], depth: usize) -> Result<Option<(Value, usize)>, Malformed> {
    if depth > MAX_DEPTH {
        return Err(Malformed::Depth);
    }
    let Some((line, used)) = line(buf)? else {
        return Ok(None);
    };
    let (kind, rest) = match line.split_first() {
        Some((k, r)) => (*k, r),
        None => return Err(Malformed::Line),
    };
    let text = || {
        std::str::from_utf8(rest)
            .map(str::to_owned)
            .map_err(|_| Malformed::Line)
    };
    match kind {
        b'+' => Ok(Some((Value::Simple(text()?), used))),
        b'-' => Ok(Some((Value::Error(text()?), used))),
        b':' => Ok(Some((Value::Int(number(rest)?), used))),
        b'$' => {
            let n = number(rest)?;
            if n == -1 {
                return Ok(Some((Value::Bulk(None), used)));
            }
            let n = usize::try_from(n).map_err(|_| Malformed::Number)?;
            if n > MAX_BULK {
                return Err(Malformed::Number);
            }
            let Some(body) = buf.get(used..used + n + 2) else {
                return Ok(None);
            };
            if &body[n..] != b"\r\n" {
                return Err(Malformed::Line);
            }
            Ok(Some((Value::Bulk(Some(body[..n].to_vec())), used + n + 2)))
        }
        b'*' => {
            let n = number(rest)?;
            if n == -1 {
                return Ok(Some((Value::Array(None), used)));
            }
            let n = usize::try_from(n).map_err(|_| Malformed::Number)?;
            if n > MAX_ELEMENTS {
                return Err(Malformed::Number);
            }
            let mut items = Vec::with_capacity(n);
            let mut at = used;
            for _ in 0..n {
                match parse_at(&buf[at..], depth + 1)? {
                    Some((v, took)) => {
                        items.push(v);
                        at += took;
                    }
                    None => return Ok(None),
                }
            }
            Ok(Some((Value::Array(Some(items)), at)))
        }
        other => Err(Malformed::Type(other)),
    }
}

/// One CRLF-ended line: its bytes without CRLF and the bytes taken. A line
/// longer than any reply's header is malformed, not awaited.
fn line(buf: &[u8]) -> Result<Option<(&[u8], usize)>, Malformed> {
    const MAX_LINE: usize = 64 << 10;
    match buf.windows(2).position(|w| w == b"\r\n") {
        Some(end) if end <= MAX_LINE => Ok(Some((&buf[..end], end + 2))),
        Some(_) => Err(Malformed::Line),
        None if buf.len() > MAX_LINE => Err(Malformed::Line),
        None => Ok(None),
    }
}

fn number(text: &[u8]) -> Result<i64, Malformed> {
    let s = std::str::from_utf8(text).map_err(|_| Malformed::Number)?;
    let digits = s.strip_prefix('-').unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Malformed::Number);
    }
    s.parse().map_err(|_| Malformed::Number)
}

/// A command as RESP2 sends it: an array of bulk strings.
pub fn command(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(bytes: &[u8]) -> Value {
        let (v, used) = parse(bytes).unwrap().unwrap();
        assert_eq!(used, bytes.len());
        v
    }

    #[test]
    fn replies() {
        assert_eq!(one(b"+PONG\r\n"), Value::Simple("PONG".into()));
        assert_eq!(
            one(b"-WRONGPASS invalid username-password pair\r\n").error_code(),
            Some("WRONGPASS")
        );
        assert_eq!(one(b":-12\r\n"), Value::Int(-12));
        assert_eq!(
            one(b"$5\r\nhe\r\no\r\n"),
            Value::Bulk(Some(b"he\r\no".to_vec()))
        );
        assert_eq!(one(b"$-1\r\n"), Value::Bulk(None));
        assert_eq!(one(b"*-1\r\n"), Value::Array(None));
        assert_eq!(
            one(b"*2\r\n$9\r\n127.0.0.1\r\n$4\r\n6379\r\n"),
            Value::Array(Some(vec![
                Value::Bulk(Some(b"127.0.0.1".to_vec())),
                Value::Bulk(Some(b"6379".to_vec()))
            ]))
        );
        assert_eq!(one(b"$0\r\n\r\n").text(), Some(""));
    }

    #[test]
    fn partial_replies_wait_for_more() {
        for cut in [
            &b"+PON"[..],
            b"$5\r\nhel",
            b"$5\r\nhello\r",
            b"*2\r\n:1\r\n",
            b"",
        ] {
            assert_eq!(parse(cut), Ok(None), "{cut:?}");
        }
    }

    #[test]
    fn malformed_replies() {
        assert_eq!(parse(b"!x\r\n"), Err(Malformed::Type(b'!')));
        assert_eq!(parse(b":1x\r\n"), Err(Malformed::Number));
        assert_eq!(parse(b":\r\n"), Err(Malformed::Number));
        assert_eq!(parse(b"$-2\r\n"), Err(Malformed::Number));
        assert_eq!(parse(b"$99999999999\r\n"), Err(Malformed::Number));
        assert_eq!(parse(b"*99999999\r\n"), Err(Malformed::Number));
        assert_eq!(parse(b"$2\r\nabcd\r\n"), Err(Malformed::Line));
        assert_eq!(parse(b"\r\n"), Err(Malformed::Line));
        assert_eq!(
            parse(b"*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n:1\r\n"),
            Err(Malformed::Depth)
        );
        assert_eq!(parse(&[b'+'; 70_000]), Err(Malformed::Line));
    }

    #[test]
    fn commands() {
        assert_eq!(
            command(&[b"AUTH", b"mon itor", b"p#w"]),
            b"*3\r\n$4\r\nAUTH\r\n$8\r\nmon itor\r\n$3\r\np#w\r\n".to_vec()
        );
        // What we send parses as what we meant.
        let sent = command(&[b"PING"]);
        assert_eq!(sent, b"*1\r\n$4\r\nPING\r\n");
    }
}
