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

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ProducesTickets, ServerConfig, ServerConnection, WebPkiClientVerifier};
use rustls::sign::{CertifiedKey, SigningKey, SingleCertAndKey};
use rustls::{SignatureAlgorithm, SignatureScheme};

use crate::state::StateDir;
use crate::sys::trust::{self, Owners, Rules};

mod der;
mod stream;
pub mod ticket;
pub mod x509;

pub use stream::{halves, Half, TlsStream};

/// A TLS handshake record's first byte: what tells an HTTPS client from
/// plaintext on a shared port.
pub const HANDSHAKE: u8 = 0x16;

/// What a private key file must be: what a credentials file must be
/// ([`crate::option_file::TRUST`]: a regular file of at most 64 KiB, owned
/// by the user that reads it or root, not readable by others and writable
/// by no one but its owner). Group read is allowed: Debian's `ssl-cert`
/// group reads `/etc/ssl/private` that way.
pub const KEY_TRUST: Rules = crate::option_file::TRUST;

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

impl ClientAuth {
    /// `required` or `optional`, as the config file and the command line
    /// spell them.
    pub fn parse(text: &str) -> Option<ClientAuth> {
        match text {
            "required" => Some(ClientAuth::Required),
            "optional" => Some(ClientAuth::Optional),
            _ => None,
        }
    }
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
    key: Arc<LazyKey>,
    stamps: Vec<Option<Stamp>>,
    not_after: Option<i64>,
    not_before: Option<i64>,
}

/// The TLS side of a service: its settings and the configuration read
/// from them, renewed when the files change.
pub struct Tls {
    settings: TlsSettings,
    /// Whether the key is made ready when read (the long-lived forms, and
    /// `--check-config`), or at the first full handshake (one process per
    /// connection: a resumed one never signs).
    eager: bool,
    ticketer: Arc<dyn ProducesTickets>,
    current: RwLock<Arc<Loaded>>,
    /// The versions of a set of files that failed to load: said once, not
    /// at every look.
    failed: Mutex<Option<Vec<Option<Stamp>>>>,
    /// The versions of a set that loads but is not valid now: said once,
    /// and still looked at.
    not_valid: Mutex<Option<Vec<Option<Stamp>>>>,
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
        let eager = matches!(tickets, Tickets::Process);
        let ticketer: Arc<dyn ProducesTickets> = Arc::new(LazyTickets {
            tickets,
            inner: OnceLock::new(),
        });
        // Only the long-lived forms look at the files again (`refresh`);
        // one process per connection does not stat them for nothing.
        let stamped = if eager { stamps(&settings) } else { Vec::new() };
        let loaded = read(&settings, &ticketer, eager, stamped)?;
        Ok(Tls {
            settings,
            eager,
            ticketer,
            current: RwLock::new(Arc::new(loaded)),
            failed: Mutex::new(None),
            not_valid: Mutex::new(None),
        })
    }

    /// The settings this was read from.
    pub fn settings(&self) -> &TlsSettings {
        &self.settings
    }

    /// Makes the key ready now, as a full handshake would: a key that does
    /// not parse, or does not match the certificate, is refused here
    /// rather than at the first client (`--check-config`).
    ///
    /// # Errors
    /// What is wrong with the key.
    pub fn validate(&self) -> Result<(), TlsError> {
        self.current()
            .key
            .load()
            .as_ref()
            .map(drop)
            .map_err(|why| TlsError {
                path: self.settings.key.clone(),
                why: why.clone(),
            })
    }

    /// Why the key could not be used, once a handshake tried it: a
    /// handshake that failed for it says so in the log.
    pub fn key_error(&self) -> Option<String> {
        match self.current().key.loaded.get() {
            Some(Err(why)) => Some(format!("{}: {why}", self.settings.key.display())),
            _ => None,
        }
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
        let loaded = match read(&self.settings, &self.ticketer, self.eager, now.clone()) {
            Ok(loaded) => loaded,
            Err(e) => {
                // Files that cannot be served stay so until they change:
                // not read again at every look.
                *failed = Some(now);
                return Refreshed::Failed(e.to_string());
            }
        };
        // A renewal that would serve a certificate out of its validity
        // while the one served is in it is no renewal: kept out, as a
        // broken one is, but read again at every look (a certificate not
        // valid yet becomes valid; the one served expires), and said once.
        let seconds = SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let valid = |l: &Loaded| {
            l.not_after.is_none_or(|end| end > seconds)
                && l.not_before.is_none_or(|b| b <= seconds + 60)
        };
        if valid(&self.current()) && !valid(&loaded) {
            let mut said = self.not_valid.lock().unwrap_or_else(|p| p.into_inner());
            if said.as_ref() == Some(&now) {
                return Refreshed::Unchanged;
            }
            *said = Some(now);
            return Refreshed::Failed(format!(
                "{}: the new certificate is not valid now (expired, or not yet valid)",
                self.settings.cert.display()
            ));
        }
        *failed = None;
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(loaded);
        Refreshed::Renewed
    }
}

fn stamps(s: &TlsSettings) -> Vec<Option<Stamp>> {
    let mut paths = vec![s.cert.as_path(), s.key.as_path()];
    paths.extend(s.client_ca.as_deref());
    paths.into_iter().map(stamp).collect()
}

/// Reads the files of `s`; `stamps` are their versions, taken before (a
/// file replaced while it is read is read again at the next look).
fn read(
    s: &TlsSettings,
    ticketer: &Arc<dyn ProducesTickets>,
    eager: bool,
    stamps: Vec<Option<Stamp>>,
) -> Result<Loaded, TlsError> {
    let chain = read_certs(&s.cert)?;
    let (not_before, not_after) = x509::validity(&chain[0]).unzip();
    let key_pem = read_trusted(&s.key, &KEY_TRUST, "key")?;
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).map_err(|e| TlsError {
        path: s.key.clone(),
        why: format!("no private key in it (PEM: PKCS#8, SEC1 or PKCS#1): {e}"),
    })?;
    // Parsed lazily, the key is compared with the certificate only by a
    // full handshake: a resumed one would go on with a key that no longer
    // matches. The public half a key file carries (SEC1's, PKCS#8 v2's,
    // RSA's modulus and exponent) is compared now, at no cost to speak of.
    let (algorithm, public) = key_shape(&key);
    if public.and_then(|p| p.matches(&chain[0])) == Some(false) {
        return Err(TlsError {
            path: s.key.clone(),
            why: mismatch(&s.cert),
        });
    }
    let provider = provider();
    let key = LazyKey::new(key, algorithm, chain[0].clone(), provider.clone(), &s.cert);
    let key = Arc::new(key.map_err(|why| TlsError {
        path: s.key.clone(),
        why,
    })?);
    if eager {
        if let Err(why) = key.load() {
            return Err(TlsError {
                path: s.key.clone(),
                why: why.clone(),
            });
        }
    }
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError {
            path: s.cert.clone(),
            why: e.to_string(),
        })?;
    // What a session's client was verified against: a ticket carries it,
    // and resumes only where it is the same (see BoundTickets).
    let mut context = Vec::from(&b"inetd-health ticket context 1"[..]);
    let builder = match &s.client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            context.push(match s.client_auth {
                ClientAuth::Required => b'R',
                ClientAuth::Optional => b'O',
            });
            for cert in read_certs(ca)? {
                context.extend_from_slice(&(cert.len() as u64).to_be_bytes());
                context.extend_from_slice(&cert);
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
    let certified = CertifiedKey::new(chain, key.clone());
    let mut config = builder.with_cert_resolver(Arc::new(SingleCertAndKey::from(certified)));
    // The server's order: AES-128-GCM with SHA-256 first. OpenSSL's
    // clients (HAProxy, curl) put AES-256-GCM with SHA-384 first, whose
    // key schedule costs a poll twice the hashing of SHA-256 (which the
    // CPU's SHA extensions run); both are TLS 1.3's and equally safe here.
    config.ignore_client_order = true;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    config.ticketer = Arc::new(BoundTickets {
        inner: ticketer.clone(),
        context: crate::hash::sha256(&context),
    });
    // One ticket is enough for a poller that reconnects one at a time;
    // each costs a seal and a write on every full handshake.
    config.send_tls13_tickets = 1;
    Ok(Loaded {
        config: Arc::new(config),
        key,
        stamps,
        not_after,
        not_before,
    })
}

/// The ring provider with the cipher suites in the server's order of
/// preference: AES-128-GCM first, then the rest as rustls orders them.
fn provider() -> Arc<CryptoProvider> {
    let mut provider = rustls::crypto::ring::default_provider();
    // A stable sort: within each rank, rustls' own order.
    provider.cipher_suites.sort_by_key(|suite| {
        use rustls::CipherSuite::*;
        let aes_128_gcm = matches!(
            suite.suite(),
            TLS13_AES_128_GCM_SHA256
                | TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
                | TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256
        );
        u8::from(!aes_128_gcm)
    });
    Arc::new(provider)
}

/// The private key, parsed into a signing key at the first signature (or
/// when asked): parsing an ECDSA key computes its public key, a point
/// multiplication a resumed handshake has no use for.
#[derive(Debug)]
struct LazyKey {
    der: PrivateKeyDer<'static>,
    algorithm: SignatureAlgorithm,
    cert: CertificateDer<'static>,
    cert_path: PathBuf,
    provider: Arc<CryptoProvider>,
    loaded: OnceLock<Result<Arc<dyn SigningKey>, String>>,
}

impl LazyKey {
    /// A key whose `algorithm` its encoding told ([`key_shape`]); any
    /// other is parsed now.
    fn new(
        der: PrivateKeyDer<'static>,
        algorithm: Option<SignatureAlgorithm>,
        cert: CertificateDer<'static>,
        provider: Arc<CryptoProvider>,
        cert_path: &Path,
    ) -> Result<LazyKey, String> {
        let mut key = LazyKey {
            der,
            algorithm: algorithm.unwrap_or(SignatureAlgorithm::Unknown(0)),
            cert,
            cert_path: cert_path.to_owned(),
            provider,
            loaded: OnceLock::new(),
        };
        if algorithm.is_none() {
            // Not one of the three: the provider says what it is, or why not.
            let loaded = key.load().clone()?;
            key.algorithm = loaded.algorithm();
        }
        Ok(key)
    }

    fn load(&self) -> &Result<Arc<dyn SigningKey>, String> {
        self.loaded.get_or_init(|| {
            let key = self
                .provider
                .key_provider
                .load_private_key(self.der.clone_key())
                .map_err(|e| format!("not a usable private key: {e}"))?;
            let certified = CertifiedKey::new(vec![self.cert.clone()], key.clone());
            match certified.keys_match() {
                Ok(())
                | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {
                    Ok(key)
                }
                Err(rustls::Error::InconsistentKeys(_)) => Err(mismatch(&self.cert_path)),
                Err(e) => Err(e.to_string()),
            }
        })
    }
}

impl SigningKey for LazyKey {
    fn choose_scheme(&self, offered: &[SignatureScheme]) -> Option<Box<dyn rustls::sign::Signer>> {
        self.load().as_ref().ok()?.choose_scheme(offered)
    }

    fn algorithm(&self) -> SignatureAlgorithm {
        self.algorithm
    }
}

/// Why a key is refused for `cert`.
fn mismatch(cert: &Path) -> String {
    format!("the key does not match the certificate {}", cert.display())
}

/// The public half a key file carries beside its private key.
enum PublicHalf<'a> {
    /// An EC or Ed25519 key's point.
    Point(&'a [u8]),
    /// An RSA key's modulus and exponent.
    Rsa(&'a [u8], &'a [u8]),
}

impl PublicHalf<'_> {
    /// Whether it is the public key of `cert`; `None` when the
    /// certificate cannot be read so.
    fn matches(&self, cert: &CertificateDer<'_>) -> Option<bool> {
        let in_cert = x509::public_key(cert)?;
        match *self {
            PublicHalf::Point(point) => Some(point == in_cert),
            // The certificate's `RSAPublicKey { modulus, publicExponent }`.
            PublicHalf::Rsa(n, e) => {
                let (public, _) = der::tlv(in_cert, 0x30)?;
                let (cert_n, rest) = der::tlv(public, 0x02)?;
                let (cert_e, _) = der::tlv(rest, 0x02)?;
                Some(n == cert_n && e == cert_e)
            }
        }
    }
}

/// What a key file says of itself without the key being parsed: its
/// algorithm, and its public half where it carries one (SEC1's
/// `publicKey`, an RSA key's modulus and exponent, PKCS#8 v2's
/// `publicKey`; OpenSSL's Ed25519 files are PKCS#8 v1, without).
fn key_shape<'a>(
    key: &'a PrivateKeyDer<'_>,
) -> (Option<SignatureAlgorithm>, Option<PublicHalf<'a>>) {
    match key {
        PrivateKeyDer::Sec1(k) => (
            Some(SignatureAlgorithm::ECDSA),
            ec_point(k.secret_sec1_der()),
        ),
        PrivateKeyDer::Pkcs1(k) => (
            Some(SignatureAlgorithm::RSA),
            rsa_half(k.secret_pkcs1_der()),
        ),
        PrivateKeyDer::Pkcs8(k) => pkcs8_shape(k.secret_pkcs8_der()).unwrap_or((None, None)),
        _ => (None, None),
    }
}

/// A PKCS#8 `PrivateKeyInfo { version, AlgorithmIdentifier { OID, … },
/// OCTET STRING privateKey, [0] attributes, [1] publicKey }`, as
/// [`key_shape`] tells it.
fn pkcs8_shape(der: &[u8]) -> Option<(Option<SignatureAlgorithm>, Option<PublicHalf<'_>>)> {
    const EC: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
    const RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
    const ED25519: &[u8] = &[0x2b, 0x65, 0x70];
    let (info, _) = der::tlv(der, 0x30)?;
    let (_, rest) = der::tlv(info, 0x02)?;
    let (identifier, rest) = der::tlv(rest, 0x30)?;
    let (oid, _) = der::tlv(identifier, 0x06)?;
    let (private, mut rest) = der::tlv(rest, 0x04)?;
    Some(match oid {
        EC => (Some(SignatureAlgorithm::ECDSA), ec_point(private)),
        RSA => (Some(SignatureAlgorithm::RSA), rsa_half(private)),
        ED25519 => {
            // v2's `[1] publicKey`, after the optional `[0]` attributes.
            let mut public = None;
            while let Some((tag, contents, after)) = der::element(rest) {
                if tag == 0x81 {
                    public = der::bits(contents).map(PublicHalf::Point);
                }
                rest = after;
            }
            (Some(SignatureAlgorithm::ED25519), public)
        }
        _ => (None, None),
    })
}

/// The point in a SEC1 `ECPrivateKey { version, privateKey, [0]
/// parameters, [1] publicKey }`, if written.
fn ec_point(sec1: &[u8]) -> Option<PublicHalf<'_>> {
    let (mut rest, _) = der::tlv(sec1, 0x30)?;
    while let Some((tag, contents, after)) = der::element(rest) {
        if tag == 0xa1 {
            return der::bits(der::tlv(contents, 0x03)?.0).map(PublicHalf::Point);
        }
        rest = after;
    }
    None
}

/// The modulus and exponent of a PKCS#1 `RSAPrivateKey { version,
/// modulus, publicExponent, … }`.
fn rsa_half(pkcs1: &[u8]) -> Option<PublicHalf<'_>> {
    let (private, _) = der::tlv(pkcs1, 0x30)?;
    let (_, rest) = der::tlv(private, 0x02)?;
    let (n, rest) = der::tlv(rest, 0x02)?;
    let (e, _) = der::tlv(rest, 0x02)?;
    Some(PublicHalf::Rsa(n, e))
}

/// Tickets bound to the client-certificate rules they were issued under.
/// rustls resumes any ticket it can open, with the client certificate
/// (or none) it holds, verified no more: a ticket from a port without
/// client certificates, sealed with the same kept key (one state
/// directory, one key), would let a client without one past
/// `tls-client-ca`; so would one issued before the CA file changed, or
/// under `optional`. The rules' digest goes in with the session, and a
/// ticket whose digest differs is not opened.
#[derive(Debug)]
struct BoundTickets {
    inner: Arc<dyn ProducesTickets>,
    context: [u8; 32],
}

impl ProducesTickets for BoundTickets {
    fn enabled(&self) -> bool {
        self.inner.enabled()
    }
    fn lifetime(&self) -> u32 {
        self.inner.lifetime()
    }
    fn encrypt(&self, plain: &[u8]) -> Option<Vec<u8>> {
        let mut bound = Vec::with_capacity(self.context.len() + plain.len());
        bound.extend_from_slice(&self.context);
        bound.extend_from_slice(plain);
        self.inner.encrypt(&bound)
    }
    fn decrypt(&self, cipher: &[u8]) -> Option<Vec<u8>> {
        let plain = self.inner.decrypt(cipher)?;
        plain.strip_prefix(&self.context[..]).map(<[u8]>::to_vec)
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    // Throwaway keys made by `openssl genpkey` for these tests (PKCS#8).
    const EC: &str = "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg7M81FbGSVACGGxyO\nI+TIdTVo4T9G7uKd5rgw2M93U2+hRANCAATqucMPlCnuqVx8b+BAlZnV/X5mRxki\nyfcUhylm/iLD05ct8hbaNjt3+7gdrhd7bH3kRugXMI+Gr2Lyf2Y+XDPv\n-----END PRIVATE KEY-----\n";
    const ED25519: &str = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIMNW7tysDnv8M2frfqg3KEVGuphjzX17JbG5OkozWmdl\n-----END PRIVATE KEY-----\n";
    const RSA: &str = "-----BEGIN PRIVATE KEY-----\nMIICdgIBADANBgkqhkiG9w0BAQEFAASCAmAwggJcAgEAAoGBAMeHeBTmL2aHLZhT\nKLwQX1ybXGy4kNI0BbT3RST0SAiqb3LIXA4e//O4lnDuDlG3paXoSUIerH2qMRc1\nbdnzxxohQrlPMOPgV9iIWrjH/g7bV4exlbIXEAkXKniwE9v5uvnHBdmFiov5EwPZ\nahNf6+FF8bJkWWkNQ6eEHIMY3fwtAgMBAAECgYB3rWS0PGDgAWKyw+Zh7vwT4sfs\nGkQbIMLviYT6pl7ye6//S/gTLDrfZ68sq00BbMK5oXsXYqiZc1SglBaArTyU+2I/\n0ulgEgIuMogWqZv98tjTclam8jVS41WjUx0S358hGwyBwHz4Ta2fsuyGLvF8EeF0\n7+4rHjuCUgmgEUC2QQJBAOpypQ8I2MgAk8zFFlsF3yegX/HUHfsvMg9LSBC4gKoT\nFpEvUFe8Cxxr2vgw/SO6F9mbxQCW32PnWXbUXrBwdTECQQDZ3xHNBURFuZLJd6FO\ntvJrn53+2UGTrIzqBzLOSIrKDuxzTI6Glj/tlFYKWRauc7Z51tLu8cd0wvHiJLGo\njSe9AkEAtbM0iXppyFfqNIFq2hCq6qM4uMuUkN/7BC9sIslbrnQswUjSE60BT32n\nr0MIbXAEm/pFrDdB2sOqapYc7NG7gQI/DZ3jfuzVV4ZBplXTvxewDwnq1gK+Fnyy\nUe4hPsNJ6VcFcC9YuRCq7i5XMk5fHIge336NsGFsFeAZPgkNEXvBAkEA4RzdF+ea\nM45fEKSDyLQQmPSW08hnAVEZ6J1IAn7lQdL3k1Ecsx/FAZ3++FjLQMYSxFamixpX\n1zedfMOy3MsmSg==\n-----END PRIVATE KEY-----\n";

    /// The algorithm [`key_shape`] tells of a PKCS#8 key.
    fn pkcs8_algorithm(der: &[u8]) -> Option<SignatureAlgorithm> {
        pkcs8_shape(der)?.0
    }

    /// Whether the key's public half is the certificate's, as `read`
    /// decides it.
    fn public_half_matches(key: &PrivateKeyDer<'_>, cert: &CertificateDer<'_>) -> Option<bool> {
        key_shape(key).1?.matches(cert)
    }

    fn der(pem: &str) -> Vec<u8> {
        match PrivateKeyDer::from_pem_slice(pem.as_bytes()).unwrap() {
            PrivateKeyDer::Pkcs8(p) => p.secret_pkcs8_der().to_vec(),
            other => panic!("not PKCS#8: {other:?}"),
        }
    }

    #[test]
    fn the_algorithm_is_read_from_a_pkcs8_key_without_parsing_it() {
        assert_eq!(pkcs8_algorithm(&der(EC)), Some(SignatureAlgorithm::ECDSA));
        assert_eq!(
            pkcs8_algorithm(&der(ED25519)),
            Some(SignatureAlgorithm::ED25519)
        );
        // A 0x82 (two-byte) length.
        assert_eq!(pkcs8_algorithm(&der(RSA)), Some(SignatureAlgorithm::RSA));
        let ec = der(EC);
        for cut in 0..ec.len() {
            // Every prefix: no panic, and nothing before the OID is whole.
            let _ = pkcs8_algorithm(&ec[..cut]);
        }
        assert_eq!(pkcs8_algorithm(&ec[..10]), None);
        assert_eq!(pkcs8_algorithm(b""), None);
        assert_eq!(pkcs8_algorithm(&[0x30, 0x80, 0, 0]), None);
    }

    fn pem_key(path: &std::path::Path) -> PrivateKeyDer<'static> {
        PrivateKeyDer::from_pem_file(path).unwrap()
    }

    fn pem_cert(path: &std::path::Path) -> CertificateDer<'static> {
        CertificateDer::from_pem_file(path).unwrap()
    }

    /// Keys and certificates as openssl writes them (the real openssl, as
    /// the system tests use it).
    #[test]
    fn the_public_half_of_a_key_file_is_compared_with_the_certificate() {
        use inetd_health_testkit::tls::{to_traditional, KeyKind, Pki};
        let dir = inetd_health_testkit::tmp::TempDir::new("tls-public-half");
        let pki = Pki::new(dir.path(), "ca");
        for (kind, known) in [
            (KeyKind::EcdsaP256, true),
            (KeyKind::Rsa2048, true),
            // OpenSSL writes PKCS#8 v1 for Ed25519: no public half.
            (KeyKind::Ed25519, false),
        ] {
            let (cert, key) = pki.server(&format!("a-{}", kind.name()), kind, 30);
            let (_, other) = pki.server(&format!("b-{}", kind.name()), kind, 30);
            let (cert, key, other) = (pem_cert(&cert), pem_key(&key), pem_key(&other));
            let want = |matching: bool| known.then_some(matching);
            assert_eq!(public_half_matches(&key, &cert), want(true), "{kind:?}");
            assert_eq!(public_half_matches(&other, &cert), want(false), "{kind:?}");
        }
        // SEC1 and PKCS#1, as operators have them too.
        for kind in [KeyKind::EcdsaP256, KeyKind::Rsa2048] {
            let (cert, key) = pki.server(&format!("t-{}", kind.name()), kind, 30);
            let (_, other) = pki.server(&format!("u-{}", kind.name()), kind, 30);
            let cert = pem_cert(&cert);
            let key = pem_key(&to_traditional(&key));
            let other = pem_key(&to_traditional(&other));
            assert!(!matches!(key, PrivateKeyDer::Pkcs8(_)), "{kind:?}");
            assert_eq!(public_half_matches(&key, &cert), Some(true), "{kind:?}");
            assert_eq!(public_half_matches(&other, &cert), Some(false), "{kind:?}");
        }
        // Another kind of key than the certificate's.
        let (rsa_cert, _) = pki.server("rsa", KeyKind::Rsa2048, 30);
        let (_, ec_key) = pki.server("ec", KeyKind::EcdsaP256, 30);
        assert_eq!(
            public_half_matches(&pem_key(&ec_key), &pem_cert(&rsa_cert)),
            Some(false)
        );
        // Not a certificate: nothing to say.
        let garbage = CertificateDer::from(vec![0x30, 0x03, 0x02, 0x01, 0x00]);
        assert_eq!(public_half_matches(&pem_key(&ec_key), &garbage), None);
    }

    #[test]
    fn a_ticket_opens_only_under_the_rules_it_was_sealed_with() {
        let inner = rustls::crypto::ring::Ticketer::new().unwrap();
        let bound = |context: &[u8]| BoundTickets {
            inner: inner.clone(),
            context: crate::hash::sha256(context),
        };
        let (plain, required) = (bound(b"no client CA"), bound(b"CA x, required"));
        let ticket = plain.encrypt(b"session").unwrap();
        assert_eq!(plain.decrypt(&ticket).as_deref(), Some(&b"session"[..]));
        assert_eq!(required.decrypt(&ticket), None);
        let ticket = required.encrypt(b"session").unwrap();
        assert_eq!(plain.decrypt(&ticket), None);
        assert_eq!(required.decrypt(&ticket).as_deref(), Some(&b"session"[..]));
    }
}
