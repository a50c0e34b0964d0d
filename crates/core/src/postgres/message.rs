//! The messages of PostgreSQL's frontend/backend protocol, version 3:
//! building the few a check sends and reading what the server answers.
//! Pure: bytes in, values out; fuzzed.
//!
//! Every backend message is a type byte, a big-endian length that counts
//! itself and the body but not the type byte, and the body. The startup
//! message is the one frontend message without a type byte.

/// Protocol version 3.0, as the startup message says it.
pub const PROTOCOL_3_0: u32 = 3 << 16;

/// Largest backend message read: a check's replies are a few hundred
/// bytes; a row of the one query is well under this.
pub const MAX_MESSAGE: usize = 1 << 20;

/// Why bytes from the server are not a message we can read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("malformed message from the server: {0}")]
pub struct Malformed(pub &'static str);

/// The startup message: the protocol version, then `name\0value\0` pairs,
/// then a final `\0`.
pub fn startup(params: &[(&str, &str)]) -> Vec<u8> {
    let mut body = Vec::with_capacity(64);
    body.extend_from_slice(&PROTOCOL_3_0.to_be_bytes());
    for (name, value) in params {
        push_cstr(&mut body, name);
        push_cstr(&mut body, value);
    }
    body.push(0);
    let mut out = Vec::with_capacity(body.len() + 4);
    out.extend_from_slice(&(body.len() as u32 + 4).to_be_bytes());
    out.extend_from_slice(&body);
    out
}

/// A typed frontend message: `kind`, the length, `body`.
pub fn frontend(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 5);
    out.push(kind);
    out.extend_from_slice(&(body.len() as u32 + 4).to_be_bytes());
    out.extend_from_slice(body);
    out
}

/// `PasswordMessage` with a password (md5's `md5…` digest, or cleartext).
pub fn password(secret: &str) -> Vec<u8> {
    let mut body = Vec::with_capacity(secret.len() + 1);
    push_cstr(&mut body, secret);
    frontend(b'p', &body)
}

/// `SASLInitialResponse`: the mechanism and the client's first message.
pub fn sasl_initial(mechanism: &str, data: &[u8]) -> Vec<u8> {
    let mut body = Vec::with_capacity(mechanism.len() + data.len() + 5);
    push_cstr(&mut body, mechanism);
    body.extend_from_slice(&(data.len() as u32).to_be_bytes());
    body.extend_from_slice(data);
    frontend(b'p', &body)
}

/// `SASLResponse`: the client's next message.
pub fn sasl_response(data: &[u8]) -> Vec<u8> {
    frontend(b'p', data)
}

/// A simple `Query`.
pub fn query(sql: &str) -> Vec<u8> {
    let mut body = Vec::with_capacity(sql.len() + 1);
    push_cstr(&mut body, sql);
    frontend(b'Q', &body)
}

/// `Terminate`: the polite end of a session.
pub fn terminate() -> Vec<u8> {
    frontend(b'X', &[])
}

fn push_cstr(out: &mut Vec<u8>, s: &str) {
    // A NUL inside would end the field early and shift every field after
    // it: nothing we send has one, and none is let through.
    out.extend(s.bytes().filter(|&b| b != 0));
    out.push(0);
}

/// What the server asks to authenticate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Auth {
    /// Authenticated (`trust`, `peer`, or the end of an exchange).
    Ok,
    /// The password in clear text.
    Cleartext,
    /// `md5(md5(password + user) + salt)`.
    Md5 {
        /// The salt.
        salt: [u8; 4],
    },
    /// SASL, with the mechanisms the server offers (`SCRAM-SHA-256`…).
    Sasl(Vec<String>),
    /// The server's next SASL message.
    SaslContinue(Vec<u8>),
    /// The server's last SASL message (its signature).
    SaslFinal(Vec<u8>),
    /// Anything else (Kerberos, GSSAPI, SSPI): the code.
    Other(u32),
}

/// The fields of an `ErrorResponse` or `NoticeResponse` a check uses.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Fields {
    /// `S`/`V`: `FATAL`, `ERROR`…
    pub severity: String,
    /// `C`: the SQLSTATE (`57P03`, `28P01`…).
    pub code: String,
    /// `M`: the primary message.
    pub message: String,
    /// `D`: the detail, if any.
    pub detail: Option<String>,
}

/// A message from the server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Backend {
    /// `R`: an authentication request (or its success).
    Auth(Auth),
    /// `E`: an error.
    Error(Fields),
    /// `N`: a notice (ignored by a check).
    Notice(Fields),
    /// `S`: a run-time parameter's value (`in_hot_standby`,
    /// `server_version`…).
    ParameterStatus {
        /// The parameter.
        name: String,
        /// Its value.
        value: String,
    },
    /// `K`: the key for cancelling (unused).
    BackendKeyData,
    /// `Z`: ready for a query; the transaction status byte.
    ReadyForQuery(u8),
    /// `T`: the columns of the rows to come.
    RowDescription(Vec<String>),
    /// `D`: one row, each column text or NULL.
    DataRow(Vec<Option<String>>),
    /// `C`: a command is done (its tag).
    CommandComplete(String),
    /// `I`: an empty query.
    EmptyQuery,
    /// Any other message, by type byte.
    Other(u8),
}

/// Reads the first message of `buf`: `Ok(None)` while it is incomplete,
/// else the message and how many bytes it took.
///
/// # Errors
/// [`Malformed`] for a length out of bounds or a body that does not hold
/// what its type says.
pub fn parse(buf: &[u8]) -> Result<Option<(Backend, usize)>, Malformed> {
    if buf.len() < 5 {
        return Ok(None);
    }
    let kind = buf[0];
    let len = u32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]) as usize;
    if len < 4 {
        return Err(Malformed("length below 4"));
    }
    if len > MAX_MESSAGE {
        return Err(Malformed("message larger than 1 MiB"));
    }
    if buf.len() < 1 + len {
        return Ok(None);
    }
    let body = &buf[5..1 + len];
    let message = match kind {
        b'R' => Backend::Auth(auth(body)?),
        b'E' => Backend::Error(fields(body)?),
        b'N' => Backend::Notice(fields(body)?),
        b'S' => {
            let mut r = Reader(body);
            Backend::ParameterStatus {
                name: r.cstr()?,
                value: r.cstr()?,
            }
        }
        b'K' => Backend::BackendKeyData,
        b'Z' => Backend::ReadyForQuery(*body.first().ok_or(Malformed("empty ReadyForQuery"))?),
        b'T' => {
            let mut r = Reader(body);
            let n = r.u16()?;
            let mut names = Vec::with_capacity(usize::from(n).min(64));
            for _ in 0..n {
                names.push(r.cstr()?);
                // Table OID, column number, type OID, size, modifier, format.
                r.take(4 + 2 + 4 + 2 + 4 + 2)?;
            }
            Backend::RowDescription(names)
        }
        b'D' => {
            let mut r = Reader(body);
            let n = r.u16()?;
            let mut values = Vec::with_capacity(usize::from(n).min(64));
            for _ in 0..n {
                let len = r.i32()?;
                if len < 0 {
                    values.push(None);
                } else {
                    let bytes = r.take(len as usize)?;
                    values.push(Some(String::from_utf8_lossy(bytes).into_owned()));
                }
            }
            Backend::DataRow(values)
        }
        b'C' => Backend::CommandComplete(Reader(body).cstr()?),
        b'I' => Backend::EmptyQuery,
        other => Backend::Other(other),
    };
    Ok(Some((message, 1 + len)))
}

fn auth(body: &[u8]) -> Result<Auth, Malformed> {
    let mut r = Reader(body);
    Ok(match r.u32()? {
        0 => Auth::Ok,
        3 => Auth::Cleartext,
        5 => {
            let salt = r.take(4)?;
            Auth::Md5 {
                salt: [salt[0], salt[1], salt[2], salt[3]],
            }
        }
        10 => {
            let mut mechanisms = Vec::new();
            loop {
                let m = r.cstr()?;
                if m.is_empty() {
                    break;
                }
                mechanisms.push(m);
            }
            Auth::Sasl(mechanisms)
        }
        11 => Auth::SaslContinue(r.0.to_vec()),
        12 => Auth::SaslFinal(r.0.to_vec()),
        other => Auth::Other(other),
    })
}

fn fields(body: &[u8]) -> Result<Fields, Malformed> {
    let mut r = Reader(body);
    let mut f = Fields::default();
    loop {
        let code = *r.take(1)?.first().unwrap_or(&0);
        if code == 0 {
            break;
        }
        let value = r.cstr()?;
        match code {
            // `V` is never localized; `S` may be.
            b'V' => f.severity = value,
            b'S' if f.severity.is_empty() => f.severity = value,
            b'C' => f.code = value,
            b'M' => f.message = value,
            b'D' => f.detail = Some(value),
            _ => {}
        }
    }
    Ok(f)
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], Malformed> {
        if self.0.len() < n {
            return Err(Malformed("body shorter than its fields"));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn u16(&mut self) -> Result<u16, Malformed> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, Malformed> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn i32(&mut self) -> Result<i32, Malformed> {
        self.u32().map(|v| v as i32)
    }

    fn cstr(&mut self) -> Result<String, Malformed> {
        let end = self
            .0
            .iter()
            .position(|&b| b == 0)
            .ok_or(Malformed("string without its NUL"))?;
        let s = String::from_utf8_lossy(&self.0[..end]).into_owned();
        self.0 = &self.0[end + 1..];
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backend(kind: u8, body: &[u8]) -> Vec<u8> {
        let mut out = vec![kind];
        out.extend_from_slice(&(body.len() as u32 + 4).to_be_bytes());
        out.extend_from_slice(body);
        out
    }

    #[test]
    fn the_startup_message_as_the_protocol_chapter_draws_it() {
        let m = startup(&[("user", "monitor"), ("database", "postgres")]);
        let mut want = Vec::new();
        want.extend_from_slice(&0x0003_0000u32.to_be_bytes());
        want.extend_from_slice(b"user\0monitor\0database\0postgres\0\0");
        let mut framed = (want.len() as u32 + 4).to_be_bytes().to_vec();
        framed.extend_from_slice(&want);
        assert_eq!(m, framed);
        // A NUL in a value cannot shift the fields after it.
        assert_eq!(startup(&[("user", "a\0b")]), startup(&[("user", "ab")]));
    }

    #[test]
    fn frontend_messages() {
        assert_eq!(terminate(), b"X\0\0\0\x04");
        assert_eq!(query("select 1"), b"Q\0\0\0\x0dselect 1\0");
        assert_eq!(password("md5abc"), b"p\0\0\0\x0bmd5abc\0");
        assert_eq!(
            sasl_initial("SCRAM-SHA-256", b"n,,n=,r=x"),
            b"p\0\0\0\x1fSCRAM-SHA-256\0\0\0\0\x09n,,n=,r=x".to_vec()
        );
    }

    #[test]
    fn backend_messages_and_every_partial_prefix() {
        let mut stream = Vec::new();
        stream.extend(backend(
            b'R',
            &10u32
                .to_be_bytes()
                .iter()
                .copied()
                .chain(*b"SCRAM-SHA-256\0\0")
                .collect::<Vec<_>>(),
        ));
        stream.extend(backend(b'R', &[0, 0, 0, 5, 1, 2, 3, 4]));
        stream.extend(backend(b'S', b"in_hot_standby\0off\0"));
        stream.extend(backend(
            b'E',
            b"SFATAL\0VFATAL\0C57P03\0Mthe database system is not accepting connections\0DHot standby mode is disabled.\0\0",
        ));
        stream.extend(backend(b'T', &{
            let mut b = 1u16.to_be_bytes().to_vec();
            b.extend_from_slice(b"pg_is_in_recovery\0");
            b.extend_from_slice(&[0; 18]);
            b
        }));
        stream.extend(backend(b'D', &{
            let mut b = 2u16.to_be_bytes().to_vec();
            b.extend_from_slice(&1u32.to_be_bytes());
            b.push(b't');
            b.extend_from_slice(&(-1i32).to_be_bytes());
            b
        }));
        stream.extend(backend(b'C', b"SELECT 1\0"));
        stream.extend(backend(b'Z', b"I"));
        let want = [
            Backend::Auth(Auth::Sasl(vec!["SCRAM-SHA-256".into()])),
            Backend::Auth(Auth::Md5 { salt: [1, 2, 3, 4] }),
            Backend::ParameterStatus {
                name: "in_hot_standby".into(),
                value: "off".into(),
            },
            Backend::Error(Fields {
                severity: "FATAL".into(),
                code: "57P03".into(),
                message: "the database system is not accepting connections".into(),
                detail: Some("Hot standby mode is disabled.".into()),
            }),
            Backend::RowDescription(vec!["pg_is_in_recovery".into()]),
            Backend::DataRow(vec![Some("t".into()), None]),
            Backend::CommandComplete("SELECT 1".into()),
            Backend::ReadyForQuery(b'I'),
        ];
        let mut at = 0;
        for w in &want {
            // Every prefix short of the whole message is "not yet".
            let (m, used) = parse(&stream[at..]).unwrap().unwrap();
            for cut in 0..used {
                assert_eq!(parse(&stream[at..at + cut]), Ok(None), "{w:?} cut at {cut}");
            }
            assert_eq!(&m, w);
            at += used;
        }
        assert_eq!(at, stream.len());
    }

    #[test]
    fn malformed_messages_are_errors_not_panics() {
        for bytes in [
            &b"R\0\0\0\x03"[..],
            b"R\0\0\0\x05\0",
            b"E\0\0\0\x06Sx",
            b"D\0\0\0\x0a\0\x01\0\0\0\x09",
            b"Z\0\0\0\x04",
            b"T\0\0\0\x06\0\x01",
            b"R\xff\xff\xff\xff",
        ] {
            assert!(parse(bytes).is_err(), "{bytes:?}");
        }
    }
}
