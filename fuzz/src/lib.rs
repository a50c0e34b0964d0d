//! What each fuzz target runs, and the invariants it checks.
//!
//! One function per target, `fn(&[u8])`, panicking when an invariant fails.
//! The fuzz targets (fuzz/fuzz_targets/*.rs) are one line each over these;
//! crates/core/tests/fuzz_corpus.rs includes this file as a module and runs
//! every file of fuzz/corpus/<target>/ and fuzz/regressions/<target>/
//! through the same function, so `cargo test` replays them without
//! libFuzzer. Only `std` and `inetd_health` are used here, for that reason.

use std::collections::VecDeque;
use std::io::{self, Read};
use std::time::Duration;

use inetd_health::http::{parse_head, read_head, Limits, Method, ParseError, Parsed, ReadError};
use inetd_health::mysql::{
    lenenc_int, lenenc_str, parse_query_reply, FirstPacket, Greeting, MysqlError, Reply, ResultSet,
    ServerError, MAX_ROWS,
};
use inetd_health::option_file::{self, Password, CLIENT_GROUPS};
use inetd_health::{Deadline, Input};

/// What a target runs on one input; panics when an invariant fails.
pub type Check = fn(&[u8]);

/// Every target by name, as its directories under fuzz/corpus and
/// fuzz/regressions are named.
pub const TARGETS: &[(&str, Check)] = &[
    ("request_head", request_head),
    ("server_packets", server_packets),
    ("option_file", option_file),
    ("pg_messages", pg_messages),
    ("redis_replies", redis_replies),
];

// ---------------------------------------------------------------------------
// request_head
// ---------------------------------------------------------------------------

/// How a `request_head` input is laid out: a 3-byte header, the chunk sizes,
/// then the bytes the client sends.
///
/// - byte 0: bit 7 set: the default 8 KiB head limit; else a small limit,
///   `64 + 4 * (b & 0x7f)` (64..=572 bytes);
/// - byte 1: bit 7 set: the default 64 headers; else `1 + (b & 0x7f)`
///   (1..=128, so both the stack and the heap header arrays are used);
/// - byte 2: bit 7 set: after the last chunk the client goes silent (the
///   deadline passes) instead of closing; bits 0..=3: `n`, the number of
///   chunk sizes that follow;
/// - `n` bytes: chunk sizes, each `1 + b` bytes; the rest of the payload is
///   one last chunk;
/// - the rest: the payload.
pub struct HeadCase<'a> {
    /// The limits `read_head` runs with.
    pub limits: Limits,
    /// Whether the deadline passes (rather than end of stream) after the
    /// last chunk.
    pub then_silent: bool,
    /// The payload in the pieces each `read` returns (a read into a smaller
    /// buffer takes part of a piece and leaves the rest).
    pub chunks: Vec<&'a [u8]>,
    /// All the bytes.
    pub payload: &'a [u8],
}

impl<'a> HeadCase<'a> {
    /// Decodes an input; `None` when it is shorter than the header.
    pub fn decode(data: &'a [u8]) -> Option<HeadCase<'a>> {
        let (&[limit, headers, mode], rest) = data.split_first_chunk::<3>()?;
        let max_head_bytes = if limit & 0x80 != 0 {
            Limits::default().max_head_bytes
        } else {
            64 + 4 * usize::from(limit & 0x7f)
        };
        let max_headers = if headers & 0x80 != 0 {
            Limits::default().max_headers
        } else {
            1 + usize::from(headers & 0x7f)
        };
        let n = usize::from(mode & 0x0f).min(rest.len());
        let (sizes, payload) = rest.split_at(n);
        let mut chunks = Vec::new();
        let mut left = payload;
        for &s in sizes {
            if left.is_empty() {
                break;
            }
            let (chunk, after) = left.split_at((usize::from(s) + 1).min(left.len()));
            chunks.push(chunk);
            left = after;
        }
        if !left.is_empty() {
            chunks.push(left);
        }
        Some(HeadCase {
            limits: Limits {
                max_head_bytes,
                max_headers,
                read_timeout: Duration::from_secs(2),
            },
            then_silent: mode & 0x80 != 0,
            chunks,
            payload,
        })
    }
}

/// A client that sends its chunks, one per `read`, then closes or goes
/// silent.
struct Chunks<'a> {
    chunks: VecDeque<&'a [u8]>,
    then_silent: bool,
}

impl Read for Chunks<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Some(chunk) = self.chunks.pop_front() else {
            return Ok(0);
        };
        let n = chunk.len().min(buf.len());
        buf[..n].copy_from_slice(&chunk[..n]);
        if n < chunk.len() {
            self.chunks.push_front(&chunk[n..]);
        }
        Ok(n)
    }
}

impl Input for Chunks<'_> {
    fn wait_readable(&mut self, _: Deadline) -> io::Result<bool> {
        Ok(!(self.chunks.is_empty() && self.then_silent))
    }
}

/// `read_head` over arbitrary bytes in arbitrary pieces agrees with
/// `parse_head` over the bytes it could see (the first `max_head_bytes`):
///
/// - a complete head there ⇔ `Ok` with the same `RequestHead`;
/// - a parse error there ⇔ the same parse error;
/// - valid so far: `TooLarge` when the client sent at least the limit,
///   else `Truncated` (close after some bytes), `Silent` (close before any)
///   or `TimedOut` with the count of bytes that did arrive;
///
/// so where the reads split the bytes never changes the outcome. A head
/// read is at most the limit, ends with `\n`, parses to itself alone, and
/// every error maps to a status `read_head`'s callers know.
pub fn request_head(data: &[u8]) {
    let Some(case) = HeadCase::decode(data) else {
        return;
    };
    let limits = case.limits;
    let mut input = Chunks {
        chunks: case.chunks.iter().copied().collect(),
        then_silent: case.then_silent,
    };
    // The input is in memory, so the deadline is never waited for: only a
    // silent `wait_readable` ends the read by "time".
    let got = read_head(
        &mut input,
        &limits,
        Deadline::after(Duration::from_secs(60)),
    );

    let payload = case.payload;
    let limit = limits.max_head_bytes;
    let seen = &payload[..payload.len().min(limit)];
    let whole = parse_head(seen, limits.max_headers);

    match (&whole, &got) {
        (Ok(Parsed::Complete(want)), Ok(head)) => assert_eq!(want, head),
        (Err(want), Err(ReadError::Parse(e))) => assert_eq!(want, e),
        // A head that cannot parse and begins as a TLS handshake record is
        // named as one.
        (Err(_), Err(ReadError::TlsOnPlaintext)) if payload.first() == Some(&0x16) => {}
        (Ok(Parsed::Partial), Err(ReadError::TooLarge { limit: l })) if payload.len() >= limit => {
            assert_eq!(*l, limit)
        }
        (Ok(Parsed::Partial), Err(ReadError::Truncated))
            if !case.then_silent && !payload.is_empty() && payload.len() < limit => {}
        (Ok(Parsed::Partial), Err(ReadError::Silent))
            if !case.then_silent && payload.is_empty() => {}
        (Ok(Parsed::Partial), Err(ReadError::TimedOut { received }))
            if case.then_silent && payload.len() < limit =>
        {
            assert_eq!(*received, payload.len())
        }
        _ => panic!(
            "read_head and parse_head disagree\n  parse_head: {whole:?}\n  read_head:  {got:?}\n  \
             payload {} bytes, limit {limit}, max_headers {}, silent {}, chunks {:?}",
            payload.len(),
            limits.max_headers,
            case.then_silent,
            case.chunks.iter().map(|c| c.len()).collect::<Vec<_>>(),
        ),
    }

    match &got {
        Ok(head) => {
            assert!(
                head.head_len <= limit,
                "head_len {} > limit {limit}",
                head.head_len
            );
            assert!(head.head_len <= payload.len());
            assert_eq!(
                payload[head.head_len - 1],
                b'\n',
                "a head ends with its blank line"
            );
            assert!(head.minor_version <= 1);
            if let Method::Other(m) = &head.method {
                assert!(!["GET", "HEAD", "OPTIONS"].contains(&m.as_str()), "{m}");
            }
            assert!(!head.method.as_str().is_empty());
            assert!(!head.target.is_empty());
            if let Some(host) = &head.host {
                assert_eq!(host, host.trim());
            }
            // The head alone is the same head: nothing after it counted.
            assert_eq!(
                parse_head(&payload[..head.head_len], limits.max_headers),
                Ok(Parsed::Complete(head.clone()))
            );
        }
        Err(e) => {
            let want = match e {
                // An HTTPS client gets a TLS alert, no HTTP status.
                ReadError::Silent | ReadError::Io(_) | ReadError::TlsOnPlaintext => None,
                ReadError::Truncated => Some(400),
                ReadError::TimedOut { .. } => Some(408),
                ReadError::TooLarge { .. } => Some(431),
                ReadError::Parse(ParseError::TooManyHeaders { .. }) => Some(431),
                ReadError::Parse(_) => Some(400),
                _ => panic!("a new ReadError: {e:?}"),
            };
            assert_eq!(e.status(), want, "{e:?}");
            assert!(!matches!(e, ReadError::Io(_)), "{e:?}");
            assert!(!e.to_string().is_empty());
        }
    }
}

// ---------------------------------------------------------------------------
// server_packets
// ---------------------------------------------------------------------------

/// Most packets taken from one input.
const MAX_PACKETS: usize = 256;

/// Splits bytes as the server's stream is split: a 3-byte little-endian
/// length, a sequence number, the payload. A length past the end takes what
/// is left; fewer than 4 bytes at the end are dropped. So a capture of a
/// real server's replies is an input as it stands.
pub fn split_packets(mut data: &[u8]) -> Vec<&[u8]> {
    let mut packets = Vec::new();
    while data.len() >= 4 && packets.len() < MAX_PACKETS {
        let len = usize::from(data[0]) | usize::from(data[1]) << 8 | usize::from(data[2]) << 16;
        let rest = &data[4..];
        let (payload, after) = rest.split_at(len.min(rest.len()));
        packets.push(payload);
        data = after;
    }
    packets
}

/// Where `inner` lies in `outer`, or a panic if it is not inside it.
fn offset_in(outer: &[u8], inner: &[u8]) -> usize {
    let start = outer.as_ptr() as usize;
    let at = inner.as_ptr() as usize;
    assert!(
        at >= start && at + inner.len() <= start + outer.len(),
        "a slice outside its input"
    );
    at - start
}

fn check_lenenc(p: &[u8]) {
    match lenenc_int(p) {
        Ok((value, rest)) => {
            let used = offset_in(p, rest);
            assert_eq!(used + rest.len(), p.len(), "the rest is a suffix");
            match (p[0], value) {
                (0xFB, None) => assert_eq!(used, 1),
                (0xFC, Some(v)) => assert!(used == 3 && v < 1 << 16),
                (0xFD, Some(v)) => assert!(used == 4 && v < 1 << 24),
                (0xFE, Some(_)) => assert_eq!(used, 9),
                (b, Some(v)) if b < 0xFB => assert!(used == 1 && v == u64::from(b)),
                other => panic!("lenenc_int {other:?}"),
            }
        }
        Err(_) => assert!(
            match p.first() {
                None | Some(0xFF) => true,
                Some(0xFC) => p.len() < 3,
                Some(0xFD) => p.len() < 4,
                Some(0xFE) => p.len() < 9,
                Some(_) => false,
            },
            "lenenc_int failed on {p:?}"
        ),
    }
    // A packet as a row: values one after another until one fails.
    let mut rest = p;
    while !rest.is_empty() {
        let Ok((value, after)) = lenenc_str(rest) else {
            break;
        };
        let end = offset_in(rest, after);
        assert_eq!(end + after.len(), rest.len(), "the rest is a suffix");
        if let Some(s) = value {
            let at = offset_in(rest, s);
            assert_eq!(at + s.len(), end, "the string ends where the rest starts");
            let (len, _) = lenenc_int(rest).expect("a string has a length");
            assert_eq!(Some(s.len() as u64), len);
        }
        assert!(after.len() < rest.len(), "a value takes at least a byte");
        rest = after;
    }
}

fn check_server_error(p: &[u8], e: &ServerError) {
    assert!(p.len() >= 3 && p[0] == 0xFF);
    assert_eq!(e.code, u16::from_le_bytes([p[1], p[2]]));
    match &e.sql_state {
        Some(state) => {
            assert!(p.len() >= 9 && p[3] == b'#');
            assert!(state.chars().count() <= 5);
        }
        None => assert!(p.len() < 9 || p[3] != b'#'),
    }
    // Lossy UTF-8 makes at most three bytes of one.
    assert!(e.message.len() <= 3 * p.len());
    assert!(!e.to_string().is_empty());
}

fn check_packet(p: &[u8]) {
    check_lenenc(p);

    let error = ServerError::parse(p);
    match &error {
        Ok(e) => check_server_error(p, e),
        Err(_) => assert!(p.len() < 3 || p[0] != 0xFF),
    }

    match Greeting::parse(p) {
        Ok(FirstPacket::Greeting(g)) => {
            assert_eq!(p[0], 10);
            assert!(!g.server_version.contains('\0'));
            assert!(!g.auth_plugin.contains('\0'));
            // 8 bytes in the fixed part, then at most the announced length
            // less 8 (13 at least), never more than was sent.
            assert!(g.scramble.len() >= 8);
            assert!(
                g.scramble.len() < p.len(),
                "scramble {} of {}",
                g.scramble.len(),
                p.len()
            );
            assert!(g.scramble.len() <= 8 + 247);
            let version_end = 1 + p[1..].iter().position(|&b| b == 0).unwrap_or(p.len() - 1);
            assert_eq!(g.scramble[..8], p[version_end + 5..version_end + 13]);
            assert!(g.version().len() <= g.server_version.len());
        }
        Ok(FirstPacket::Error(e)) => assert_eq!(Ok(e), error),
        Err(_) => assert!(p.first() != Some(&0xFF) || error.is_err()),
    }

    match Reply::classify(p) {
        Ok(Reply::Ok) => assert_eq!(p[0], 0x00),
        Ok(Reply::Err(e)) => assert_eq!(Ok(e), error),
        Ok(Reply::AuthSwitch { plugin, data }) => {
            assert_eq!(p[0], 0xFE);
            assert!(!plugin.contains('\0'));
            assert!(plugin.len() <= 3 * p.len() && data.len() < p.len());
        }
        Ok(Reply::AuthMoreData) => assert_eq!(p[0], 0x01),
        Ok(Reply::Other(b)) => {
            assert_eq!(p[0], b);
            assert!(![0x00, 0x01, 0xFE, 0xFF].contains(&b));
        }
        Err(_) => assert!(p.is_empty() || error.is_err()),
    }
}

/// Packets a result set takes: the column count, the definitions, an EOF,
/// the rows, an EOF; an OK packet alone for a statement without rows.
fn packets_of(set: &ResultSet) -> usize {
    if set.columns.is_empty() {
        1
    } else {
        set.columns.len() + set.rows.len() + 3
    }
}

fn check_query_reply(packets: &[&[u8]]) {
    let mut next = 0;
    let got = parse_query_reply(&mut |step| {
        let p = packets.get(next).ok_or(MysqlError::Closed { step })?;
        next += 1;
        Ok(p.to_vec())
    });
    match got {
        Ok(sets) => {
            assert!(!sets.is_empty());
            for set in &sets {
                assert!(set.columns.len() <= 4096);
                assert!(set.rows.len() <= MAX_ROWS);
                for row in &set.rows {
                    assert_eq!(row.len(), set.columns.len(), "a row per column");
                }
                if set.columns.is_empty() {
                    assert!(set.rows.is_empty());
                }
            }
            if sets.iter().all(|s| s.rows.len() < MAX_ROWS) {
                let used: usize = sets.iter().map(packets_of).sum();
                assert_eq!(used, next, "packets used by {sets:?}");
            }
        }
        Err(MysqlError::Closed { .. }) => assert_eq!(next, packets.len(), "closed only at the end"),
        Err(e @ (MysqlError::Protocol { .. } | MysqlError::Server(_))) => {
            assert!(next <= packets.len());
            assert!(!e.to_string().is_empty());
        }
        Err(MysqlError::Unexpected { kind, .. }) => {
            assert_eq!(kind, 0xFB);
            assert!(next <= packets.len());
        }
        Err(e) => panic!("an error no in-memory reply can cause: {e:?}"),
    }
}

/// The server's packets: every packet through `lenenc_int`, `lenenc_str`
/// (as a row), `ServerError::parse`, `Greeting::parse` and
/// `Reply::classify`, and the packets from each of the first four as a
/// query's reply through `parse_query_reply`. Nothing panics, no slice
/// lies outside its packet, the parsers agree with the bytes and with each
/// other, and a reply read as result sets accounts for exactly the packets
/// it took.
pub fn server_packets(data: &[u8]) {
    let packets = split_packets(data);
    for p in &packets {
        check_packet(p);
    }
    for start in 0..packets.len().clamp(1, 4) {
        check_query_reply(packets.get(start..).unwrap_or_default());
    }
}

// ---------------------------------------------------------------------------
// option_file
// ---------------------------------------------------------------------------

fn line_mentions(text: &str, key: &str) -> bool {
    text.lines().any(|l| {
        let l = l.to_ascii_lowercase();
        l.contains(key) && l.contains('=')
    })
}

/// `option_file::parse` over the input as UTF-8 (lossily where it is not),
/// with the client groups. Nothing panics; an error names a line that
/// exists and is not blank; a value found comes from a line that names its
/// key; a port is never 0; the result does not change with CRLF line ends,
/// with the group names' case, or with a non-client group appended; and
/// `Debug` never shows the password.
pub fn option_file(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let got = option_file::parse(&text, CLIENT_GROUPS);
    match &got {
        Err((line, what)) => {
            assert!(*line >= 1 && *line <= text.lines().count(), "line {line}");
            let l = text.lines().nth(line - 1).unwrap_or_default();
            assert!(!l.trim().is_empty(), "error on blank line {line}: {what}");
            assert!(!what.is_empty());
        }
        Ok(o) => {
            if o.password.is_some() {
                assert!(line_mentions(&text, "password"));
            }
            if o.user.is_some() {
                assert!(line_mentions(&text, "user"));
            }
            if o.socket.is_some() {
                assert!(line_mentions(&text, "socket"));
            }
            if o.host.is_some() {
                assert!(line_mentions(&text, "host"));
            }
            if let Some(port) = o.port {
                assert!(line_mentions(&text, "port"));
                assert_ne!(port, 0);
            }
            if let Some(pw) = &o.password {
                let mut other = o.clone();
                other.password = Some(Password::new(if pw.expose() == b"x" { "y" } else { "x" }));
                assert_eq!(
                    format!("{o:?}"),
                    format!("{other:?}"),
                    "Debug shows the password"
                );
            }
        }
    }

    let crlf = text.replace('\n', "\r\n");
    assert_eq!(
        option_file::parse(&crlf, CLIENT_GROUPS),
        got,
        "CRLF line ends"
    );

    let upper = ["CLIENT", "Client-Server", "CLIENT-mariadb"];
    assert_eq!(option_file::parse(&text, &upper), got, "group names' case");

    let appended = format!("{text}\n[mysqld]\nuser=mysql\npassword=other\nport=x\nsocket\n");
    assert_eq!(
        option_file::parse(&appended, CLIENT_GROUPS),
        got,
        "a server group appended"
    );
}

// ---------------------------------------------------------------------------
// pg_messages
// ---------------------------------------------------------------------------

/// `postgres::message::parse` over the input as a stream of backend
/// messages, and the SCRAM and password-file readers over it as text.
/// Nothing panics; a message is complete only with all its bytes (every
/// shorter prefix is "not yet", never a different message); what is used
/// is at least the 5-byte header and at most the input; a stream is read
/// message by message to its end or its first error.
pub fn pg_messages(data: &[u8]) {
    use inetd_health::postgres::{message, passfile, scram};
    let mut rest = data;
    while let Ok(Some((m, used))) = message::parse(rest) {
        assert!(used >= 5 && used <= rest.len(), "{used} of {}", rest.len());
        for cut in [0, 1, 4, used - 1] {
            assert_eq!(message::parse(&rest[..cut]), Ok(None), "{m:?} cut at {cut}");
        }
        rest = &rest[used..];
    }
    let client = scram::Client::new("fuzz");
    if let Ok(challenge) = client.challenge(data) {
        assert!(challenge.nonce.starts_with("fuzz") && challenge.nonce.len() > 4);
        assert!(challenge.iterations > 0);
    }
    let _ = client.verify(data);
    let text = String::from_utf8_lossy(data);
    let entries = passfile::parse(&text);
    let _ = passfile::find(
        &entries,
        &passfile::Target {
            host: "h",
            port: 5432,
            database: "d",
            user: "u",
        },
    );
    if let Some(decoded) = scram::base64_decode(&text) {
        assert_eq!(scram::base64_encode(&decoded), text);
    }
}

// ---------------------------------------------------------------------------
// redis_replies
// ---------------------------------------------------------------------------

/// A stream of RESP2 replies as a server (or something pretending to be
/// one) sends them, and `INFO` text. Invariants: parsing never panics and
/// never allocates beyond its bounds; a reply's length is within the
/// input, and a strict prefix of it is "not yet", never another reply;
/// `INFO` reads a number only from a sign and digits.
pub fn redis_replies(data: &[u8]) {
    use inetd_health::redis::info::Info;
    use inetd_health::redis::resp;
    let mut rest = data;
    while let Ok(Some((v, used))) = resp::parse(rest) {
        assert!(used >= 3 && used <= rest.len(), "{used} of {}", rest.len());
        for cut in [0, 1, used - 1] {
            assert_eq!(resp::parse(&rest[..cut]), Ok(None), "{v:?} cut at {cut}");
        }
        rest = &rest[used..];
    }
    let info = Info::parse(&String::from_utf8_lossy(data));
    for field in [
        "role",
        "connected_slaves",
        "master_last_io_seconds_ago",
        "slave_repl_offset",
    ] {
        if info.int(field).is_some() {
            // A number only from an optional sign and digits: no "+1",
            // " 1" or "1e3".
            let text = info.get(field).unwrap();
            let digits = text.strip_prefix('-').unwrap_or(text);
            assert!(
                !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()),
                "{text:?}"
            );
        }
    }
    let _ = info.replicas();
}
