//! `mariadb`: is the server alive, natively, without a client program?
//!
//! Without credentials the server's greeting is the proof of life, as for
//! `mysqladmin ping`. With credentials (from an option file) the check logs
//! in, pings and quits cleanly, which the server does not log as an aborted
//! connection.

use std::net::SocketAddr;
use std::path::Path;

use super::tcp::resolve;
use super::{Check, CheckError, Verdict};
use crate::mysql::{Conn, Endpoint, Greeting, MysqlError};
use crate::option_file::{ClientOptions, Password};
use crate::Deadline;

/// The user named when finishing a handshake without credentials over TCP
/// (see [`MariadbCheck::run`]). It should not exist; if it does, without a
/// password, the check logs in and quits, which is fine too.
pub const PROBE_USER: &str = "inetd-health-probe";

/// Error codes that prove a server alive: it read our handshake and
/// refused it (access denied, for a user, a database, or a socket login).
const ACCESS_DENIED: [u16; 3] = [1044, 1045, 1698];

/// "Host … is not allowed to connect to this MariaDB server".
const HOST_NOT_ALLOWED: u16 = 1130;

/// A monitoring account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credentials {
    /// The user.
    pub user: String,
    /// The password; empty for `unix_socket` authentication.
    pub password: Password,
}

/// Checks a MariaDB (or MySQL) server over its unix socket or TCP.
#[derive(Clone, Debug)]
pub struct MariadbCheck {
    endpoint: Endpoint,
    credentials: Option<Credentials>,
}

impl MariadbCheck {
    /// A check of the server at `endpoint`, without credentials.
    pub fn new(endpoint: Endpoint) -> Self {
        MariadbCheck {
            endpoint,
            credentials: None,
        }
    }

    /// Logs in as this account, pings, and quits.
    pub fn with_credentials(mut self, credentials: Credentials) -> Self {
        self.credentials = Some(credentials);
        self
    }

    /// Where it connects.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    fn converse(&self, addrs: &[SocketAddr], deadline: Deadline) -> Result<Verdict, MysqlError> {
        if let Some(c) = &self.credentials {
            let (conn, greeting) = login(&self.endpoint, addrs, c, deadline)?;
            conn.ping_and_quit()?;
            let version = greeting.version();
            // The account stays out of the reason (bodies are public).
            return Ok(Verdict::healthy(format!(
                "MariaDB {version} is alive (login and ping)"
            )));
        }
        let mut conn = Conn::connect(&self.endpoint, addrs, deadline)?;
        let greeting = match conn.greeting() {
            // Sent instead of the greeting when no account may connect from
            // this host: the server read our connection and answered, which
            // is all a check without credentials asks.
            Err(MysqlError::Server(e)) if e.code == HOST_NOT_ALLOWED => {
                return Ok(
                    Verdict::healthy(format!("MariaDB is alive ({})", e.public_reason()))
                        .with_detail(e.to_string().into_bytes()),
                );
            }
            other => other?,
        };
        if !self.endpoint.is_unix() {
            // Over TCP, leaving after the greeting is a handshake error,
            // which counts toward max_connect_errors and gets the host
            // blocked. An authentication failure does not, so the handshake
            // is finished as a user that should not exist.
            match conn.authenticate(&greeting, PROBE_USER, b"") {
                Ok(()) => conn.quit(),
                Err(MysqlError::Server(e)) if ACCESS_DENIED.contains(&e.code) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(Verdict::healthy(format!(
            "MariaDB {} is alive (greeting)",
            greeting.version()
        )))
    }
}

impl Check for MariadbCheck {
    /// Connects, reads the greeting, and with credentials logs in, pings
    /// and quits; all by `deadline`. A server that is down, hung, full or
    /// refusing is an unhealthy verdict whose reason says which.
    fn run(&self, deadline: Deadline) -> Result<Verdict, CheckError> {
        let addrs = addresses(&self.endpoint, deadline)?;
        Ok(self
            .converse(&addrs, deadline)
            .unwrap_or_else(|e| Verdict::down(e.public_reason(), &e)))
    }
}

/// The addresses to try for `endpoint` (none for a unix socket).
pub(crate) fn addresses(
    endpoint: &Endpoint,
    deadline: Deadline,
) -> Result<Vec<SocketAddr>, CheckError> {
    match endpoint {
        Endpoint::Tcp { host, port } => resolve(host, *port, deadline),
        Endpoint::Unix(_) => Ok(Vec::new()),
    }
}

/// Connects and logs in as `credentials`.
fn login(
    endpoint: &Endpoint,
    addrs: &[SocketAddr],
    credentials: &Credentials,
    deadline: Deadline,
) -> Result<(Conn, Greeting), MysqlError> {
    let mut conn = Conn::connect(endpoint, addrs, deadline)?;
    let greeting = conn.greeting()?;
    conn.authenticate(&greeting, &credentials.user, credentials.password.expose())?;
    Ok((conn, greeting))
}

/// Connects, logs in as `credentials`, runs `work`, and quits cleanly;
/// returns what `work` returned and the server's version.
pub(crate) fn session<T>(
    endpoint: &Endpoint,
    addrs: &[SocketAddr],
    credentials: &Credentials,
    deadline: Deadline,
    work: impl FnOnce(&mut Conn) -> Result<T, MysqlError>,
) -> Result<(T, String), MysqlError> {
    let (mut conn, greeting) = login(endpoint, addrs, credentials, deadline)?;
    let result = work(&mut conn)?;
    conn.quit();
    Ok((result, greeting.version().to_owned()))
}

/// Where to connect, as the `mysql` client decides it: an explicit socket
/// wins; then an explicit host (always TCP here, `localhost` included) or an
/// explicit port (TCP to 127.0.0.1); then the option file's `host` (TCP
/// unless it is `localhost`), its `socket`; else the default socket.
pub fn choose_endpoint(
    socket: Option<&Path>,
    host: Option<&str>,
    port: Option<u16>,
    file: &ClientOptions,
) -> Endpoint {
    if let Some(path) = socket {
        return Endpoint::Unix(path.to_owned());
    }
    let tcp = |host: &str| Endpoint::Tcp {
        host: host.to_owned(),
        port: port.or(file.port).unwrap_or(3306),
    };
    match (host, port, file.host.as_deref()) {
        (Some(h), _, _) => tcp(h),
        (None, Some(_), _) => tcp("127.0.0.1"),
        (None, None, Some(h)) if h != "localhost" => tcp(h),
        _ => file
            .socket
            .clone()
            .map_or_else(Endpoint::default_socket, Endpoint::Unix),
    }
}

/// The account an option file names, if any.
///
/// # Errors
/// A password without a user: almost certainly a mistake, and guessing the
/// user would try the password on the wrong account.
pub fn credentials_from(file: &ClientOptions) -> Result<Option<Credentials>, &'static str> {
    match (&file.user, &file.password) {
        (Some(user), password) => Ok(Some(Credentials {
            user: user.clone(),
            password: password.clone().unwrap_or_default(),
        })),
        (None, Some(_)) => Err("the option file gives a password but no user"),
        (None, None) => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn file(text: &str) -> ClientOptions {
        crate::option_file::parse(text, crate::option_file::CLIENT_GROUPS).unwrap()
    }

    #[test]
    fn endpoint_precedence() {
        let none = ClientOptions::default();
        assert_eq!(
            choose_endpoint(None, None, None, &none),
            Endpoint::default_socket()
        );
        let sock = Path::new("/tmp/m.sock");
        assert_eq!(
            choose_endpoint(Some(sock), Some("db"), None, &none),
            Endpoint::Unix(sock.into())
        );
        assert_eq!(
            choose_endpoint(None, Some("localhost"), None, &none),
            Endpoint::Tcp {
                host: "localhost".into(),
                port: 3306
            }
        );
        assert_eq!(
            choose_endpoint(None, None, Some(3307), &none),
            Endpoint::Tcp {
                host: "127.0.0.1".into(),
                port: 3307
            }
        );
        let f = file("[client]\nhost=db1\nport=3310\nsocket=/x.sock\n");
        assert_eq!(
            choose_endpoint(None, None, None, &f),
            Endpoint::Tcp {
                host: "db1".into(),
                port: 3310
            }
        );
        assert_eq!(
            choose_endpoint(None, Some("db2"), None, &f),
            Endpoint::Tcp {
                host: "db2".into(),
                port: 3310
            }
        );
        let f = file("[client]\nhost=localhost\nsocket=/x.sock\n");
        assert_eq!(
            choose_endpoint(None, None, None, &f),
            Endpoint::Unix(PathBuf::from("/x.sock"))
        );
    }

    #[test]
    fn credentials() {
        assert_eq!(credentials_from(&file("[client]\n")), Ok(None));
        let c = credentials_from(&file("[client]\nuser=root\n"))
            .unwrap()
            .unwrap();
        assert!(c.password.is_empty());
        assert!(credentials_from(&file("[client]\npassword=x\n")).is_err());
    }

    #[test]
    fn host_not_allowed_is_alive_without_credentials_only() {
        use std::io::Write;
        use std::os::unix::net::UnixListener;
        let dir = std::env::temp_dir().join(format!("ih-1130-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let sock = dir.join("s");
        let listener = UnixListener::bind(&sock).unwrap();
        let server = std::thread::spawn(move || {
            for _ in 0..2 {
                let (mut s, _) = listener.accept().unwrap();
                let mut p = vec![0xFF];
                p.extend_from_slice(&1130u16.to_le_bytes());
                p.extend_from_slice(
                    b"Host '10.0.0.5' is not allowed to connect to this MariaDB server",
                );
                let mut packet = (p.len() as u32).to_le_bytes()[..3].to_vec();
                packet.push(0);
                packet.extend_from_slice(&p);
                s.write_all(&packet).unwrap();
            }
        });
        let deadline = Deadline::after(std::time::Duration::from_secs(2));
        let v = MariadbCheck::new(Endpoint::Unix(sock.clone()))
            .run(deadline)
            .unwrap();
        assert_eq!(v.health, super::super::Health::Healthy);
        assert_eq!(
            v.reason,
            "MariaDB is alive (server error 1130: host not allowed to connect)"
        );
        assert_eq!(
            v.detail.as_deref(),
            Some(
                b"server error 1130: Host '10.0.0.5' is not allowed to connect to this MariaDB server"
                    .as_slice()
            )
        );
        let creds = Credentials {
            user: "monitor".into(),
            password: Password::new("pw"),
        };
        let v = MariadbCheck::new(Endpoint::Unix(sock))
            .with_credentials(creds)
            .run(deadline)
            .unwrap();
        assert_eq!(v.health, super::super::Health::Unhealthy);
        server.join().unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn server_down_is_a_verdict_with_the_cause() {
        let check = MariadbCheck::new(Endpoint::Unix(PathBuf::from("/nonexistent/mysqld.sock")));
        let v = check
            .run(Deadline::after(std::time::Duration::from_secs(1)))
            .unwrap();
        assert_eq!(v.health, super::super::Health::Unhealthy);
        assert_eq!(
            v.reason,
            "/nonexistent/mysqld.sock: no such file or directory"
        );
    }
}
