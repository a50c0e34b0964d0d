//! HTTPS on the check port: the certificate and key (and the CA that signs
//! client certificates) read into a rustls configuration, session tickets
//! that outlive the process, and the stream a connection is served on once
//! its first byte says it is TLS.
//!
//! One port serves three clients: an HTTPS client (its first byte is
//! 0x16, a TLS handshake record), HAProxy's agent-check (always plaintext:
//! silence or an `agent-send` line), and, where the config allows it,
//! plaintext HTTP. A service without a certificate runs none of this.
//!
//! The provider is ring: it builds with the C compiler alone, where
//! aws-lc-rs (rustls' default) needs cmake. PEM is read by
//! rustls-pki-types, rustls' own crate.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::SystemTime;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ProducesTickets, ServerConfig, ServerConnection, WebPkiClientVerifier};

use crate::state::StateDir;
use crate::sys::trust::{self, Owners, Rules};

mod stream;
pub mod ticket;
pub mod x509;

pub use stream::{halves, Half, TlsStream};

/// A TLS handshake record's first byte: what tells an HTTPS client from
/// plaintext on a shared port.
pub const HANDSHAKE: u8 = 0x16;

/// What a private key file must be: a regular file of at most 64 KiB,
/// owned by the user that reads it or root, not readable by others and
/// writable by no one but its owner. Group read is allowed: Debian's
/// `ssl-cert` group reads `/etc/ssl/private` that way.
pub const KEY_TRUST: Rules = Rules {
    max_size: Some(64 << 10),
    secret: true,
    secret_from_group: false,
    owner_writes_only: true,
    owners: Owners::UsOrRoot,
    mode: None,
};

/// What a certificate (or CA) file must be: public, but a file others may
/// write could swap the identity served, or the CA trusted.
pub const CERT_TRUST: Rules = Rules {
    max_size: Some(1 << 20),
    secret: false,
    secret_from_group: false,
    owner_writes_only: true,
    owners: Owners::UsOrRoot,
    mode: None,
};

/// Whether a client must present a certificate signed by `tls-client-ca`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ClientAuth {
    /// A client without one is refused in the handshake.
    #[default]
    Required,
    /// A client without one is served; one with a certificate the CA did
    /// not sign is refused.
    Optional,
}

/// The TLS settings of a service (`tls-cert`, `tls-key`, …).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsSettings {
    /// The certificate chain, PEM, the server's own first.
    pub cert: PathBuf,
    /// The private key, PEM (PKCS#8, SEC1 or PKCS#1; RSA, ECDSA, Ed25519).
    pub key: PathBuf,
    /// The CA certificates (PEM) client certificates must be signed by:
    /// mutual TLS.
    pub client_ca: Option<PathBuf>,
    /// With a client CA: whether a certificate is required.
    pub client_auth: ClientAuth,
    /// Plaintext HTTP is served on the same port too; by default it gets
    /// a 400 that says to use HTTPS.
    pub plaintext: bool,
}

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
#[error("{}: {why}", path.display())]
pub struct TlsError {
    /// The file at fault.
    pub path: PathBuf,
    /// What is wrong with it.
    pub why: String,
}

/// Where session tickets are sealed.
#[derive(Clone, Debug)]
pub enum Tickets {
    /// With a key of this process (rotated by rustls): the long-lived
    /// forms, which resume from memory.
    Process,
    /// With a key kept in the state directory, so that the next process
    /// resumes a session this one began: one process per connection.
    Kept(StateDir),
}

/// A file's identity and version, to tell when it changed on disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Stamp {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
}

fn stamp(path: &Path) -> Option<Stamp> {
    use std::os::unix::fs::MetadataExt;
    // Following symbolic links: certbot and cert-manager renew by pointing
    // a link at a new file.
    let m = std::fs::metadata(path).ok()?;
    Some(Stamp {
        dev: m.dev(),
        ino: m.ino(),
        size: m.size(),
        mtime: (m.mtime(), m.mtime_nsec()),
    })
}

/// A configuration read from disk, and the versions of the files it was
/// read from.
struct Loaded {
    config: Arc<ServerConfig>,
    stamps: Vec<Option<Stamp>>,
    not_after: Option<i64>,
}

/// The TLS side of a service: its settings and the configuration read
/// from them, renewed when the files change.
pub struct Tls {
    settings: TlsSettings,
    ticketer: Arc<dyn ProducesTickets>,
    current: RwLock<Arc<Loaded>>,
    /// The versions of a set of files that failed to load: said once, not
    /// at every look.
    failed: Mutex<Option<Vec<Option<Stamp>>>>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// What [`Tls::refresh`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Refreshed {
    /// The files are as they were.
    Unchanged,
    /// The files changed and were read: new connections get them.
    Renewed,
    /// The files changed and cannot be served (a certificate half written,
    /// a key that does not match): the last good configuration stays.
    Failed(String),
}

impl Tls {
    /// Reads the certificate, key and client CA.
    ///
    /// # Errors
    /// A file missing, unreadable, not PEM, refused (a key others may
    /// read, a file others may write), or a key that does not match the
    /// certificate.
    pub fn load(settings: TlsSettings, tickets: Tickets) -> Result<Tls, TlsError> {
        let ticketer: Arc<dyn ProducesTickets> = Arc::new(LazyTickets {
            tickets,
            inner: OnceLock::new(),
        });
        let loaded = read(&settings, &ticketer)?;
        Ok(Tls {
            settings,
            ticketer,
            current: RwLock::new(Arc::new(loaded)),
            failed: Mutex::new(None),
        })
    }

    /// The settings this was read from.
    pub fn settings(&self) -> &TlsSettings {
        &self.settings
    }

    /// When the certificate served expires (seconds since the epoch).
    pub fn not_after(&self) -> Option<i64> {
        self.current().not_after
    }

    fn current(&self) -> Arc<Loaded> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// A server side for a new connection, with the current certificate.
    ///
    /// # Errors
    /// rustls refusing to start one (out of memory, in practice).
    pub fn accept(&self) -> Result<ServerConnection, rustls::Error> {
        ServerConnection::new(self.current().config.clone())
    }

    /// Reads the files again if they changed since they were last read.
    /// A set that cannot be served keeps the last good one, and is
    /// reported once (until the files change again).
    pub fn refresh(&self) -> Refreshed {
        let now = stamps(&self.settings);
        if now == self.current().stamps {
            return Refreshed::Unchanged;
        }
        let mut failed = self.failed.lock().unwrap_or_else(|p| p.into_inner());
        if failed.as_ref() == Some(&now) {
            return Refreshed::Unchanged;
        }
        match read(&self.settings, &self.ticketer) {
            Ok(loaded) => {
                *failed = None;
                *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(loaded);
                Refreshed::Renewed
            }
            Err(e) => {
                *failed = Some(now);
                Refreshed::Failed(e.to_string())
            }
        }
    }
}

fn stamps(s: &TlsSettings) -> Vec<Option<Stamp>> {
    let mut paths = vec![s.cert.as_path(), s.key.as_path()];
    paths.extend(s.client_ca.as_deref());
    paths.into_iter().map(stamp).collect()
}

fn read(s: &TlsSettings, ticketer: &Arc<dyn ProducesTickets>) -> Result<Loaded, TlsError> {
    // Stamped before reading: a file replaced while it is read is read
    // again at the next look.
    let stamps = stamps(s);
    let chain = read_certs(&s.cert)?;
    let not_after = chain.first().and_then(|c| x509::not_after(c));
    let key_pem = read_trusted(&s.key, &KEY_TRUST, "key")?;
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).map_err(|e| TlsError {
        path: s.key.clone(),
        why: format!("no private key in it (PEM: PKCS#8, SEC1 or PKCS#1): {e}"),
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError {
            path: s.cert.clone(),
            why: e.to_string(),
        })?;
    let builder = match &s.client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in read_certs(ca)? {
                roots.add(cert).map_err(|e| TlsError {
                    path: ca.clone(),
                    why: format!("not a CA certificate: {e}"),
                })?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let verifier = match s.client_auth {
                ClientAuth::Required => verifier,
                ClientAuth::Optional => verifier.allow_unauthenticated(),
            };
            builder.with_client_cert_verifier(verifier.build().map_err(|e| TlsError {
                path: ca.clone(),
                why: e.to_string(),
            })?)
        }
    };
    let mut config = builder.with_single_cert(chain, key).map_err(|e| TlsError {
        path: s.key.clone(),
        why: match e {
            rustls::Error::InconsistentKeys(_) => {
                format!(
                    "the key does not match the certificate {}",
                    s.cert.display()
                )
            }
            e => e.to_string(),
        },
    })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    config.ticketer = ticketer.clone();
    // One ticket is enough for a poller that reconnects one at a time;
    // each costs a seal and a write on every full handshake.
    config.send_tls13_tickets = 1;
    Ok(Loaded {
        config: Arc::new(config),
        stamps,
        not_after,
    })
}

/// The ticket key, found at the first ticket sealed or opened: a
/// plaintext poll (an agent-check) on a TLS port never reads the key
/// file.
#[derive(Debug)]
struct LazyTickets {
    tickets: Tickets,
    inner: OnceLock<Arc<dyn ProducesTickets>>,
}

impl LazyTickets {
    fn get(&self) -> &Arc<dyn ProducesTickets> {
        self.inner.get_or_init(|| {
            let process = || -> Arc<dyn ProducesTickets> {
                rustls::crypto::ring::Ticketer::new().unwrap_or_else(|_| Arc::new(NoTickets))
            };
            match &self.tickets {
                Tickets::Process => process(),
                // A key that cannot be kept (a state directory refused)
                // costs resumption, not the answer: this process's key
                // still serves.
                Tickets::Kept(dir) => match ticket::KeptTickets::open(dir, SystemTime::now()) {
                    Ok(kept) => Arc::new(kept),
                    Err(_) => process(),
                },
            }
        })
    }
}

impl ProducesTickets for LazyTickets {
    fn enabled(&self) -> bool {
        true
    }
    fn lifetime(&self) -> u32 {
        self.get().lifetime()
    }
    fn encrypt(&self, plain: &[u8]) -> Option<Vec<u8>> {
        self.get().encrypt(plain)
    }
    fn decrypt(&self, cipher: &[u8]) -> Option<Vec<u8>> {
        self.get().decrypt(cipher)
    }
}

/// Tickets turned off: where no key can be had, every handshake is full.
#[derive(Debug)]
struct NoTickets;

impl ProducesTickets for NoTickets {
    fn enabled(&self) -> bool {
        false
    }
    fn lifetime(&self) -> u32 {
        0
    }
    fn encrypt(&self, _: &[u8]) -> Option<Vec<u8>> {
        None
    }
    fn decrypt(&self, _: &[u8]) -> Option<Vec<u8>> {
        None
    }
}

fn read_trusted(path: &Path, rules: &Rules, what: &str) -> Result<String, TlsError> {
    trust::read(path, rules).map_err(|e| TlsError {
        path: path.to_owned(),
        why: match e {
            trust::Unread::Io(e) => crate::sys::io_reason(&e),
            trust::Unread::Untrusted(u @ trust::Untrusted::ReadableByOthers { .. }) => {
                format!("{u}: a private {what} must not be readable by others (chmod o-rwx)")
            }
            trust::Unread::Untrusted(u) => format!("refused: {u}"),
        },
    })
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read_trusted(path, &CERT_TRUST, "certificate")?;
    let certs: Result<Vec<_>, _> = CertificateDer::pem_slice_iter(pem.as_bytes()).collect();
    let certs = certs.map_err(|e| TlsError {
        path: path.to_owned(),
        why: format!("not PEM: {e}"),
    })?;
    if certs.is_empty() {
        return Err(TlsError {
            path: path.to_owned(),
            why: "no certificate in it (PEM, BEGIN CERTIFICATE)".into(),
        });
    }
    Ok(certs)
}
