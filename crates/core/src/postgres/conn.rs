//! The connection: connect over a unix socket or TCP, ping as `pg_isready`
//! does, log in (trust, peer, md5, SCRAM-SHA-256), run one query, say
//! goodbye; every connect, read and write bounded by one [`Deadline`].

use std::collections::BTreeMap;
use std::io::{self, Read as _};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::error::PgError;
use super::message::{self, Auth, Backend, Fields};
use super::scram::{self, Challenge, Keys};
use crate::conn::{ConnectFailure, ServerStream};
use crate::Deadline;

/// Where the server listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// A unix socket: the directory libpq's `host` names, and the port
    /// that names the socket in it (`DIR/.s.PGSQL.PORT`).
    Unix {
        /// The socket directory (`/run/postgresql` on Debian).
        dir: PathBuf,
        /// The port.
        port: u16,
    },
    /// A TCP address.
    Tcp {
        /// Host name or IP literal.
        host: String,
        /// Port.
        port: u16,
    },
}

impl Endpoint {
    /// The socket file or `host:port`, for messages.
    pub fn describe(&self) -> String {
        match self {
            Endpoint::Unix { dir, port } => {
                dir.join(format!(".s.PGSQL.{port}")).display().to_string()
            }
            Endpoint::Tcp { host, port } if host.contains(':') => format!("[{host}]:{port}"),
            Endpoint::Tcp { host, port } => format!("{host}:{port}"),
        }
    }

    /// The host as libpq matches it against the password file: the
    /// socket directory's default `localhost`, else the host.
    pub fn passfile_host(&self) -> &str {
        match self {
            Endpoint::Unix { .. } => "localhost",
            Endpoint::Tcp { host, .. } => host,
        }
    }

    /// The port.
    pub fn port(&self) -> u16 {
        match self {
            Endpoint::Unix { port, .. } | Endpoint::Tcp { port, .. } => *port,
        }
    }
}

/// What a ping found (libpq's `PQping`, as `pg_isready` reports it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ping {
    /// The server accepts connections: it asked us to authenticate, let us
    /// in, or refused us for a reason other than its state.
    Accepting,
    /// The server answered 57P03 (starting up, shutting down, not yet
    /// consistent, hot standby off): its message.
    Rejecting(Fields),
}

/// Where to find the keys SCRAM derives from a password: a cache kept
/// between polls (PBKDF2 is most of a login's CPU), or nothing.
pub trait KeySource {
    /// The keys for `password` with this challenge's salt and iterations.
    fn keys(&self, password: &str, challenge: &Challenge) -> Keys;
}

/// Derives the keys every time.
#[derive(Clone, Copy, Debug, Default)]
pub struct Derive;

impl KeySource for Derive {
    fn keys(&self, password: &str, challenge: &Challenge) -> Keys {
        Keys::derive(password, &challenge.salt, challenge.iterations)
    }
}

/// How to log in.
#[derive(Clone, Debug, Default)]
pub struct Login<'a> {
    /// The role.
    pub user: &'a str,
    /// The database.
    pub database: &'a str,
    /// `application_name`, as the server's views show it.
    pub application_name: &'a str,
    /// The password, if the server asks for one.
    pub password: Option<&'a str>,
}

/// One connection to the server.
pub struct Conn {
    stream: ServerStream,
    buf: Vec<u8>,
    deadline: Deadline,
    endpoint: String,
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn")
            .field("endpoint", &self.endpoint)
            .finish()
    }
}

/// A session, logged in: the parameters the server reported.
#[derive(Debug)]
pub struct Session {
    conn: Conn,
    /// `ParameterStatus` values (`in_hot_standby`,
    /// `default_transaction_read_only`, `server_version`…).
    pub parameters: BTreeMap<String, String>,
}

impl Conn {
    /// Connects to `endpoint` by `deadline`; `addrs` are the TCP host's
    /// addresses (IP literals need no resolving).
    ///
    /// # Errors
    /// [`PgError::Connect`] or [`PgError::TimedOut`].
    pub fn connect(
        endpoint: &Endpoint,
        addrs: &[SocketAddr],
        deadline: Deadline,
    ) -> Result<Conn, PgError> {
        let name = endpoint.describe();
        let stream = match endpoint {
            Endpoint::Unix { dir, port } => {
                ServerStream::connect_unix(&dir.join(format!(".s.PGSQL.{port}")), deadline)
            }
            Endpoint::Tcp { .. } => ServerStream::connect_tcp(addrs, deadline),
        }
        .map_err(|e| match e {
            ConnectFailure::QueueFull => PgError::TimedOut {
                step: "a connection (the server's listen queue is full)",
            },
            ConnectFailure::TimedOut => PgError::TimedOut {
                step: "a connection",
            },
            ConnectFailure::Failed(source) => PgError::Connect {
                endpoint: name.clone(),
                source,
            },
        })?;
        Ok(Conn {
            stream,
            buf: Vec::with_capacity(1024),
            deadline,
            endpoint: name,
        })
    }

    fn write(&mut self, bytes: &[u8], step: &'static str) -> Result<(), PgError> {
        self.stream
            .write_all(bytes)
            .map_err(|source| match source.kind() {
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => PgError::TimedOut { step },
                _ => PgError::Io { step, source },
            })
    }

    /// Reads the next message, notices skipped.
    fn next(&mut self, step: &'static str) -> Result<Backend, PgError> {
        loop {
            match message::parse(&self.buf) {
                Ok(Some((Backend::Notice(_), used))) => {
                    self.buf.drain(..used);
                }
                Ok(Some((m, used))) => {
                    self.buf.drain(..used);
                    return Ok(m);
                }
                Ok(None) => self.fill(step)?,
                Err(source) => return Err(PgError::Malformed { step, source }),
            }
        }
    }

    fn fill(&mut self, step: &'static str) -> Result<(), PgError> {
        let mut chunk = [0u8; 2048];
        let got = self.stream.read_before(&mut chunk, self.deadline);
        match got {
            Ok(None) => Err(PgError::TimedOut { step }),
            Ok(Some(0)) => Err(PgError::Closed { step }),
            Ok(Some(n)) => {
                self.buf.extend_from_slice(&chunk[..n]);
                Ok(())
            }
            Err(source) => Err(PgError::Io { step, source }),
        }
    }

    /// Pings as libpq does: a startup message, one reply. An
    /// authentication request, or an error other than 57P03, means the
    /// server accepts connections. The connection is then closed without a
    /// word: a server that asked for a password logs nothing of a client
    /// that leaves then.
    ///
    /// # Errors
    /// No answer by the deadline, a closed connection, a malformed reply.
    pub fn ping(mut self, login: &Login<'_>) -> Result<Ping, PgError> {
        const STEP: &str = "the server's answer to a startup message";
        self.write(&startup(login), STEP)?;
        match self.next(STEP)? {
            Backend::Error(f) if f.code == "57P03" => Ok(Ping::Rejecting(f)),
            Backend::Auth(_) | Backend::Error(_) => Ok(Ping::Accepting),
            _ => Err(PgError::Unexpected { step: STEP }),
        }
    }

    /// Logs in: startup, authentication as the server asks, then the
    /// parameters up to `ReadyForQuery`. Cleartext passwords are refused
    /// (no TLS to the server yet).
    ///
    /// # Errors
    /// [`PgError::Server`] for the server's refusal (a wrong password
    /// is SQLSTATE 28P01), [`PgError::NoPassword`], [`PgError::Cleartext`],
    /// SCRAM failures, and I/O.
    pub fn login(mut self, login: &Login<'_>, keys: &dyn KeySource) -> Result<Session, PgError> {
        const STEP: &str = "authentication";
        self.write(&startup(login), STEP)?;
        // The exchange, and whether the server has proved it knows the password.
        let mut scram: Option<(scram::Client, bool)> = None;
        loop {
            match self.next(STEP)? {
                // After SCRAM, only once the server has proved it knows
                // the password: an impostor must not skip the proof.
                Backend::Auth(Auth::Ok) if scram.as_ref().is_some_and(|(_, proved)| !proved) => {
                    return Err(PgError::Scram(scram::ScramError::ServerFinal))
                }
                Backend::Auth(Auth::Ok) => break,
                Backend::Auth(Auth::Md5 { salt }) => {
                    let password = login.password.ok_or(PgError::NoPassword)?;
                    let inner = hex(&crate::hash::md5(
                        format!("{password}{}", login.user).as_bytes(),
                    ));
                    let mut salted = inner.into_bytes();
                    salted.extend_from_slice(&salt);
                    let answer = format!("md5{}", hex(&crate::hash::md5(&salted)));
                    self.write(&message::password(&answer), STEP)?;
                }
                Backend::Auth(Auth::Sasl(mechanisms)) => {
                    if !mechanisms.iter().any(|m| m == scram::MECHANISM) {
                        return Err(PgError::Unsupported(
                            "a SASL mechanism other than SCRAM-SHA-256",
                        ));
                    }
                    login.password.ok_or(PgError::NoPassword)?;
                    let client = scram::Client::new(&nonce()?);
                    self.write(
                        &message::sasl_initial(scram::MECHANISM, &client.first()),
                        STEP,
                    )?;
                    scram = Some((client, false));
                }
                Backend::Auth(Auth::SaslContinue(server_first)) => {
                    let (client, _) = scram.as_mut().ok_or(PgError::Unexpected { step: STEP })?;
                    let password = login.password.ok_or(PgError::NoPassword)?;
                    let challenge = client.challenge(&server_first).map_err(PgError::Scram)?;
                    let derived = keys.keys(password, &challenge);
                    let last = client.finish(&server_first, &challenge, &derived);
                    self.write(&message::sasl_response(&last), STEP)?;
                }
                Backend::Auth(Auth::SaslFinal(server_final)) => {
                    let (client, proved) =
                        scram.as_mut().ok_or(PgError::Unexpected { step: STEP })?;
                    client.verify(&server_final).map_err(PgError::Scram)?;
                    *proved = true;
                }
                Backend::Auth(Auth::Cleartext) => return Err(PgError::Cleartext),
                Backend::Auth(Auth::Other(_)) => {
                    return Err(PgError::Unsupported(
                        "an authentication method other than trust, peer, md5 and SCRAM-SHA-256",
                    ))
                }
                Backend::Error(f) => return Err(PgError::Server(f)),
                _ => return Err(PgError::Unexpected { step: STEP }),
            }
        }
        let mut parameters = BTreeMap::new();
        loop {
            match self.next("the session's parameters")? {
                Backend::ParameterStatus { name, value } => {
                    parameters.insert(name, value);
                }
                Backend::BackendKeyData => {}
                Backend::ReadyForQuery(_) => break,
                Backend::Error(f) => return Err(PgError::Server(f)),
                _ => {
                    return Err(PgError::Unexpected {
                        step: "the session's parameters",
                    })
                }
            }
        }
        Ok(Session {
            conn: self,
            parameters,
        })
    }
}

impl Session {
    /// Runs one simple query and returns its rows (text, or NULL).
    ///
    /// # Errors
    /// The server's error, or I/O.
    pub fn query(&mut self, sql: &str) -> Result<Vec<Vec<Option<String>>>, PgError> {
        const STEP: &str = "a query";
        self.conn.write(&message::query(sql), STEP)?;
        let mut rows = Vec::new();
        let mut error = None;
        loop {
            match self.conn.next(STEP)? {
                // One query's rows are few; a flood is not a check's.
                Backend::DataRow(row) if rows.len() < 1000 => rows.push(row),
                Backend::Error(f) => error = Some(f),
                Backend::ReadyForQuery(_) => break,
                _ => {}
            }
        }
        match error {
            Some(f) => Err(PgError::Server(f)),
            None => Ok(rows),
        }
    }

    /// Says goodbye (`Terminate`) and closes: the server logs a clean end.
    pub fn terminate(mut self) {
        let _ = self.conn.write(&message::terminate(), "goodbye");
        // Wait briefly for the server to close first, so the connection
        // ends without our side lingering in TIME_WAIT.
        let wait = Duration::from_millis(50).min(self.conn.deadline.remaining());
        self.conn.stream.await_close(wait);
    }
}

fn startup(login: &Login<'_>) -> Vec<u8> {
    let mut params = vec![("user", login.user), ("database", login.database)];
    if !login.application_name.is_empty() {
        params.push(("application_name", login.application_name));
    }
    message::startup(&params)
}

/// A nonce for SCRAM: 18 random bytes, base64.
fn nonce() -> Result<String, PgError> {
    let mut bytes = [0u8; 18];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(|source| PgError::Io {
            step: "a random nonce",
            source,
        })?;
    Ok(scram::base64_encode(&bytes))
}

use crate::hash::hex;

#[cfg(test)]
mod tests {
    use super::*;

    /// An `R` (authentication) message with `code` and `payload`.
    fn auth(code: i32, payload: &[u8]) -> Vec<u8> {
        let mut m = vec![b'R'];
        m.extend_from_slice(&(8 + payload.len() as i32).to_be_bytes());
        m.extend_from_slice(&code.to_be_bytes());
        m.extend_from_slice(payload);
        m
    }

    /// A server that asks for SCRAM, answers the client's first message
    /// with a valid challenge, then says AuthenticationOk without its
    /// final proof: an impostor that does not know the password.
    #[test]
    fn scram_ok_without_the_servers_proof_is_refused() {
        use std::io::Write as _;
        use std::os::unix::net::UnixListener;
        let dir = std::env::temp_dir().join(format!("ih-pg-impostor-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let listener = UnixListener::bind(dir.join(".s.PGSQL.5432")).unwrap();
        let server = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf).unwrap();
            s.write_all(&auth(10, b"SCRAM-SHA-256\0\0")).unwrap();
            let n = s.read(&mut buf).unwrap();
            // SASLInitialResponse: 'p', len, mechanism\0, int32 len, data.
            let text = String::from_utf8_lossy(&buf[..n]).into_owned();
            let nonce = text.split("r=").nth(1).unwrap().to_owned();
            let first = format!("r={nonce}server,s=c2FsdA==,i=4096");
            s.write_all(&auth(11, first.as_bytes())).unwrap();
            let _ = s.read(&mut buf).unwrap();
            s.write_all(&auth(0, b"")).unwrap();
        });
        let endpoint = Endpoint::Unix {
            dir: dir.clone(),
            port: 5432,
        };
        let deadline = Deadline::after(Duration::from_secs(5));
        let conn = Conn::connect(&endpoint, &[], deadline).unwrap();
        let login = Login {
            user: "monitor",
            database: "postgres",
            application_name: "t",
            password: Some("pw"),
        };
        let e = conn.login(&login, &Derive).unwrap_err();
        assert!(
            matches!(e, PgError::Scram(scram::ScramError::ServerFinal)),
            "{e}"
        );
        server.join().unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn md5_as_postgres_stores_it() {
        // pg_authid's md5 form for role postgres, password postgres:
        // "md5" + md5(password + user).
        assert_eq!(
            hex(&crate::hash::md5(b"postgrespostgres")),
            "3175bce1d3201d16594cebf9d7eb3f9d"
        );
    }

    #[test]
    fn endpoints() {
        let unix = Endpoint::Unix {
            dir: "/run/postgresql".into(),
            port: 5432,
        };
        assert_eq!(unix.describe(), "/run/postgresql/.s.PGSQL.5432");
        assert_eq!(unix.passfile_host(), "localhost");
        let v6 = Endpoint::Tcp {
            host: "::1".into(),
            port: 5433,
        };
        assert_eq!(v6.describe(), "[::1]:5433");
        assert_eq!(v6.port(), 5433);
    }
}
