//! TLS fixtures made with the real `openssl` command, and the real clients
//! (`curl`, `openssl s_client`) that check HTTPS on the check port with them.
//!
//! [`Pki`] is a private CA (ECDSA P-256) in a directory, issuing server
//! certificates for `127.0.0.1`, `::1` and `localhost` and client
//! certificates, with keys of any [`KeyKind`]. Every certificate is signed
//! with `openssl ca` (a throwaway database per call, random serials), which
//! can set both ends of the validity: a certificate already expired is well
//! formed (notBefore < notAfter < now), as one from a real CA would be.
//!
//! What was found with Debian 12's OpenSSL 3.0 and curl 7.88 (checked by the
//! tests below, against `openssl s_server`):
//!
//! - Ed25519 server certificates work with curl (its OpenSSL backend offers
//!   the `ed25519` signature scheme), in TLS 1.3 and in TLS 1.2. Ed25519 has
//!   no "traditional" key form: [`to_traditional`] panics for it.
//! - `s_client -reconnect` resumes TLS 1.2 sessions ("Reused, TLSv1.2" five
//!   times), but never TLS 1.3 ones: 3.0 reconnects before reading the
//!   server's post-handshake NewSessionTicket, so every connection is
//!   "New, TLSv1.3". Test TLS 1.3 resumption with `-sess_out` then
//!   `-sess_in` over [`s_client_once`], sending a request so that the
//!   ticket is read before the connection ends.
//! - A server refusing a client certificate fails curl with exit 56 in
//!   TLS 1.3 (the alert arrives after the client's handshake is over:
//!   "tlsv13 alert certificate required", "tlsv1 alert unknown ca") and
//!   with exit 35 in TLS 1.2.
//! - `openssl s_server -www` prints its own "New, TLSv1.3, …" /
//!   "Reused, …" lines in the page it serves, which [`reused_and_new`]
//!   counts too when the request was sent.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::client::{free_port, is_listening};
use crate::procs::{
    read_or_empty, require_program, run_with_stdin, unique_digits, wait_bounded, wait_until,
    ProcessGuard,
};
use crate::tmp::TempDir;

/// Bound on one `openssl` command of the fixtures (an RSA key takes well
/// under a second).
const OPENSSL_TIMEOUT: Duration = Duration::from_secs(60);
/// curl's own `--max-time`.
pub const CURL_MAX_TIME: Duration = Duration::from_secs(10);
/// Bound on one [`s_client`] run, all its reconnections included; it is
/// killed after that.
pub const S_CLIENT_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a day is, in seconds.
const DAY: i64 = 86_400;

/// The kind of a private key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeyKind {
    /// ECDSA on NIST P-256 (prime256v1).
    EcdsaP256,
    /// RSA, 2048 bits.
    Rsa2048,
    /// Ed25519.
    Ed25519,
}

impl KeyKind {
    /// Every kind, to loop over.
    pub const ALL: [KeyKind; 3] = [KeyKind::EcdsaP256, KeyKind::Rsa2048, KeyKind::Ed25519];

    /// A short lowercase name (`ecdsa-p256`, `rsa2048`, `ed25519`), for
    /// file names and messages.
    pub fn name(self) -> &'static str {
        match self {
            KeyKind::EcdsaP256 => "ecdsa-p256",
            KeyKind::Rsa2048 => "rsa2048",
            KeyKind::Ed25519 => "ed25519",
        }
    }

    /// `openssl genpkey` arguments for a key of this kind.
    fn genpkey_args(self) -> &'static [&'static str] {
        match self {
            KeyKind::EcdsaP256 => &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
            KeyKind::Rsa2048 => &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
            KeyKind::Ed25519 => &["-algorithm", "ed25519"],
        }
    }

    /// The keyUsage of an end-entity certificate with this key: RSA keys
    /// may also encipher (TLS 1.2's RSA key exchange).
    fn leaf_key_usage(self) -> &'static str {
        match self {
            KeyKind::Rsa2048 => "critical, digitalSignature, keyEncipherment",
            KeyKind::EcdsaP256 | KeyKind::Ed25519 => "critical, digitalSignature",
        }
    }
}

/// A private CA and what it signs, in a directory: keys are PKCS#8 PEM
/// (`BEGIN PRIVATE KEY`) of mode 0600, certificates PEM of mode 0644.
///
/// The CA is `<dir>/<name>.pem` with its key `<dir>/<name>.key`; what it
/// issues is `<dir>/<stem>.pem` and `<dir>/<stem>.key`. Issuing a stem
/// again replaces both files, each by a rename (never half written). Nothing
/// is removed on drop: put the directory in a [`TempDir`].
#[derive(Clone, Debug)]
pub struct Pki {
    /// The directory holding every file.
    pub dir: PathBuf,
    /// The CA certificate (`-CAfile`, `--cacert`).
    pub ca_cert: PathBuf,
    ca_key: PathBuf,
    name: String,
}

impl Pki {
    /// A new CA (ECDSA P-256, CN `name`, valid from a day ago for ten
    /// years, `basicConstraints=critical,CA:TRUE`,
    /// `keyUsage=critical,keyCertSign,cRLSign`) in `dir`, created if missing.
    pub fn new(dir: &Path, name: &str) -> Pki {
        check_stem(name);
        std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
        let pki = Pki {
            dir: dir.to_path_buf(),
            ca_cert: dir.join(format!("{name}.pem")),
            ca_key: dir.join(format!("{name}.key")),
            name: name.to_string(),
        };
        let scratch = TempDir::new("tls");
        let key = new_key(KeyKind::EcdsaP256, &pki.ca_key);
        let csr = request(&scratch, &key, name);
        let now = now_unix();
        let tmp = temp_beside(&pki.ca_cert);
        sign(
            &scratch,
            &csr,
            Signer::Itself(&key),
            "basicConstraints = critical, CA:TRUE\n\
             keyUsage = critical, keyCertSign, cRLSign\n\
             subjectKeyIdentifier = hash\n",
            (now - DAY, now + 3650 * DAY),
            &tmp,
        );
        install(&tmp, &pki.ca_cert, 0o644);
        pki
    }

    /// The CA's private key.
    pub fn ca_key(&self) -> &Path {
        &self.ca_key
    }

    /// The CA's name (its CN and the stem of its files).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A server certificate (CN `localhost`;
    /// `subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost`,
    /// `extendedKeyUsage=serverAuth`, `basicConstraints=CA:FALSE`) with a new
    /// key of `kind`, signed by this CA: `(<stem>.pem, <stem>.key)`.
    ///
    /// It is valid for `days` days from now (notBefore a minute ago, to
    /// allow for the second boundary). `days <= 0` gives one that has
    /// already expired: notAfter `-days` days and a minute ago, notBefore
    /// 30 days before that.
    pub fn server(&self, stem: &str, kind: KeyKind, days: i64) -> (PathBuf, PathBuf) {
        self.issue(stem, kind, "localhost", &server_ext(kind), validity(days))
    }

    /// [`Pki::server`] not valid before `not_before` (Unix time) and valid
    /// 30 days after it: a renewal issued ahead of its time.
    pub fn server_from(&self, stem: &str, kind: KeyKind, not_before: i64) -> (PathBuf, PathBuf) {
        let validity = (not_before, not_before + 30 * 86_400);
        self.issue(stem, kind, "localhost", &server_ext(kind), validity)
    }

    /// A client certificate (CN `stem`, `extendedKeyUsage=clientAuth`,
    /// `basicConstraints=CA:FALSE`) with a new key of `kind`, signed by
    /// this CA and valid for a year: `(<stem>.pem, <stem>.key)`.
    pub fn client(&self, stem: &str, kind: KeyKind) -> (PathBuf, PathBuf) {
        self.client_days(stem, kind, 365)
    }

    /// [`Pki::client`] valid for `days` days, as [`Pki::server`] counts
    /// them (`days <= 0`: already expired).
    pub fn client_days(&self, stem: &str, kind: KeyKind, days: i64) -> (PathBuf, PathBuf) {
        let ext = format!(
            "basicConstraints = CA:FALSE\n\
             keyUsage = {}\n\
             extendedKeyUsage = clientAuth\n\
             subjectKeyIdentifier = hash\n\
             authorityKeyIdentifier = keyid\n",
            kind.leaf_key_usage()
        );
        self.issue(stem, kind, stem, &ext, validity(days))
    }

    /// `cert` followed by the CA certificate, as `<cert stem>-fullchain.pem`
    /// beside it (mode 0644): the "full chain" file operators often
    /// configure.
    pub fn fullchain(&self, cert: &Path) -> PathBuf {
        let stem = cert
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_else(|| panic!("no file name in {}", cert.display()));
        let out = cert.with_file_name(format!("{stem}-fullchain.pem"));
        let mut text = read(cert);
        text.push_str(&read(&self.ca_cert));
        let tmp = temp_beside(&out);
        std::fs::write(&tmp, text).unwrap_or_else(|e| panic!("writing {}: {e}", tmp.display()));
        install(&tmp, &out, 0o644);
        out
    }

    fn issue(
        &self,
        stem: &str,
        kind: KeyKind,
        cn: &str,
        ext: &str,
        (not_before, not_after): (i64, i64),
    ) -> (PathBuf, PathBuf) {
        check_stem(stem);
        assert_ne!(stem, self.name, "{stem} would overwrite the CA's files");
        let cert = self.dir.join(format!("{stem}.pem"));
        let key = self.dir.join(format!("{stem}.key"));
        let scratch = TempDir::new("tls");
        let new_key = new_key(kind, &scratch.join("key.pem"));
        let csr = request(&scratch, &new_key, cn);
        let tmp_cert = temp_beside(&cert);
        sign(
            &scratch,
            &csr,
            Signer::Ca(&self.ca_cert, &self.ca_key),
            ext,
            (not_before, not_after),
            &tmp_cert,
        );
        let tmp_key = temp_beside(&key);
        std::fs::copy(&new_key, &tmp_key)
            .unwrap_or_else(|e| panic!("copying the key to {}: {e}", tmp_key.display()));
        install(&tmp_key, &key, 0o600);
        install(&tmp_cert, &cert, 0o644);
        (cert, key)
    }
}

/// Writes the traditional form of the PKCS#8 key `key` (SEC1 `BEGIN EC
/// PRIVATE KEY` for ECDSA, PKCS#1 `BEGIN RSA PRIVATE KEY` for RSA) beside
/// it as `<stem>-traditional.key`, mode 0600, and returns its path.
///
/// # Panics
/// For an Ed25519 key, which has no traditional form (OpenSSL says
/// "unsupported public key type").
pub fn to_traditional(key: &Path) -> PathBuf {
    let stem = key
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or_else(|| panic!("no file name in {}", key.display()));
    let out = key.with_file_name(format!("{stem}-traditional.key"));
    let tmp = temp_beside(&out);
    openssl_ok(
        Command::new(openssl())
            .args(["pkey", "-traditional", "-in"])
            .arg(key)
            .arg("-out")
            .arg(&tmp),
    );
    let text = read(&tmp);
    if !text.starts_with("-----BEGIN EC PRIVATE KEY") && !text.starts_with("-----BEGIN RSA") {
        let _ = std::fs::remove_file(&tmp);
        panic!(
            "{}: no traditional form (openssl pkey -traditional wrote {:?})",
            key.display(),
            text.lines().next().unwrap_or_default()
        );
    }
    install(&tmp, &out, 0o600);
    out
}

/// The `openssl` to run: `/usr/bin/openssl`, or the one on `PATH`.
pub fn openssl() -> PathBuf {
    let system = Path::new("/usr/bin/openssl");
    if system.is_file() {
        system.to_path_buf()
    } else {
        require_program("openssl")
    }
}

/// `cert`'s validity as Unix times: `(notBefore, notAfter)`.
pub fn validity_of(cert: &Path) -> (i64, i64) {
    let text = openssl_ok(
        Command::new(openssl())
            .args(["x509", "-noout", "-dates", "-dateopt", "iso_8601", "-in"])
            .arg(cert),
    );
    let field = |name: &str| {
        let line = text
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .unwrap_or_else(|| panic!("no {name} in {text:?}"));
        parse_iso_8601(line).unwrap_or_else(|| panic!("cannot read the time {line:?}"))
    };
    (field("notBefore="), field("notAfter="))
}

/// `openssl x509 -noout -text` of `cert`, for messages and assertions.
pub fn describe(cert: &Path) -> String {
    openssl_ok(
        Command::new(openssl())
            .args(["x509", "-noout", "-text", "-in"])
            .arg(cert),
    )
}

/// `openssl verify -CAfile ca [ARGS] cert` (e.g. `["-purpose",
/// "sslclient"]`): its exit code and what it printed (stdout then stderr).
pub fn verify(ca: &Path, cert: &Path, args: &[&str]) -> (i32, String) {
    let mut cmd = Command::new(openssl());
    cmd.args(["verify", "-CAfile"]).arg(ca).args(args).arg(cert);
    let (code, stdout, stderr) = run_with_stdin(&mut cmd, "", OPENSSL_TIMEOUT)
        .unwrap_or_else(|e| panic!("openssl verify: {e}"));
    (code.unwrap_or(-1), format!("{stdout}{stderr}"))
}

/// What curl saw.
#[derive(Clone, Debug)]
pub struct Curl {
    /// The HTTP status, `None` if there was no response (curl's `000`).
    pub status: Option<u16>,
    /// The response body (lossily as text).
    pub body: String,
    /// curl's exit code, -1 if it was killed: 60, the server's certificate
    /// did not verify; 35, the handshake failed (e.g. the server refused
    /// the client certificate in TLS 1.2); 56, receiving failed after it
    /// (the server refused the client certificate in TLS 1.3, whose
    /// client handshake ends first); 7, no connection; 28, out of time.
    pub exit: i32,
    /// What curl wrote on stderr (its `-sS` error message).
    pub stderr: String,
}

/// `https://127.0.0.1:<port><path>` (`path` starts with `/`).
pub fn https_url(port: u16, path: &str) -> String {
    format!("https://127.0.0.1:{port}{path}")
}

/// Runs `curl -q -sS --noproxy '*' --max-time 10 [ARGS] URL` (curlrc,
/// proxies and the CA-bundle environment variables ignored), the body to
/// stdout followed by the status (`-w`, so `args` must not use `-o` or
/// `-w`). Typical `args`: `["--cacert", ca]`, `["-k"]`, `["--cert", c,
/// "--key", k]`, `["--resolve", "localhost:PORT:127.0.0.1"]`,
/// `["--tls-max", "1.2"]`. Works for `http://` URLs as well.
///
/// # Panics
/// curl is missing, or outlives its `--max-time` by 10 s.
pub fn curl(url: &str, args: &[&str]) -> Curl {
    let mut cmd = Command::new(require_program("curl"));
    // -q must come first: it stops curl reading ~/.curlrc.
    cmd.args(["-q", "-sS", "--noproxy", "*", "--max-time"])
        .arg(CURL_MAX_TIME.as_secs().to_string())
        .args(["-o", "-", "-w", "\n%{http_code}"])
        .args(args)
        .arg(url);
    for var in [
        "CURL_CA_BUNDLE",
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
        "CURL_HOME",
        "SSLKEYLOGFILE",
    ] {
        cmd.env_remove(var);
    }
    let (code, stdout, stderr) = run_with_stdin(&mut cmd, "", CURL_MAX_TIME * 2)
        .unwrap_or_else(|e| panic!("curl {url}: {e}"));
    let (body, status) = stdout.rsplit_once('\n').unwrap_or(("", stdout.as_str()));
    Curl {
        status: status.trim().parse().ok().filter(|&s| s != 0),
        body: body.to_string(),
        exit: code.unwrap_or(-1),
        stderr,
    }
}

/// [`curl`] for a plain `http://` URL (a check port without TLS, or a TLS
/// port spoken to in plain text).
pub fn curl_http(url: &str, args: &[&str]) -> Curl {
    assert!(url.starts_with("http://"), "not an http:// URL: {url}");
    curl(url, args)
}

/// Runs `openssl s_client -connect 127.0.0.1:PORT -reconnect [ARGS]` (six
/// connections: one, then five reconnections offering its session) with
/// `input` on stdin, bounded by [`S_CLIENT_TIMEOUT`] (then killed): the
/// exit code (-1 if killed) and stdout and stderr together, as written.
///
/// The input (e.g. `b"GET / HTTP/1.0\r\n\r\n"`) is sent on the last
/// connection. With input, `-ign_eof` is added so that s_client reads the
/// answer until the server closes (send a request after which it does);
/// without, s_client ends each connection right after the handshake. Pass
/// e.g. `-CAfile`, `-cert`/`-key`, `-tls1_2`/`-tls1_3`, `-servername`,
/// `-sess_out`/`-sess_in`. Count resumptions with [`reused_and_new`]; in
/// OpenSSL 3.0 `-reconnect` only resumes TLS 1.2 (see the module docs).
pub fn s_client(port: u16, args: &[&str], input: &[u8]) -> (i32, String) {
    run_s_client(port, true, args, input)
}

/// [`s_client`] without `-reconnect`: one connection (for `-sess_out`
/// then `-sess_in`).
pub fn s_client_once(port: u16, args: &[&str], input: &[u8]) -> (i32, String) {
    run_s_client(port, false, args, input)
}

fn run_s_client(port: u16, reconnect: bool, args: &[&str], input: &[u8]) -> (i32, String) {
    let (reader, writer) = std::io::pipe().expect("creating a pipe");
    let mut cmd = Command::new(openssl());
    cmd.arg("s_client")
        .arg("-connect")
        .arg(format!("127.0.0.1:{port}"));
    if reconnect {
        cmd.arg("-reconnect");
    }
    if !input.is_empty() {
        cmd.arg("-ign_eof");
    }
    cmd.args(args)
        .stdin(Stdio::piped())
        .stdout(writer.try_clone().expect("cloning a pipe"))
        .stderr(writer);
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("spawning {cmd:?}: {e}"));
    let described = format!("{cmd:?}");
    // The command keeps its copies of the pipe's write end: drop them, or
    // the reader would never see EOF.
    drop(cmd);
    let output = crate::run::reader(reader);
    if let Some(mut stdin) = child.stdin.take() {
        // Fails (EPIPE) if s_client has already given up: its output says why.
        let _ = stdin.write_all(input);
    }
    let status = wait_bounded(&mut child, S_CLIENT_TIMEOUT);
    let mut text = String::from_utf8_lossy(&output.join().unwrap_or_default()).into_owned();
    match status {
        Some(status) => (status.code().unwrap_or(-1), text),
        None => {
            text.push_str(&format!(
                "\n[{described} killed after {S_CLIENT_TIMEOUT:?}]\n"
            ));
            (-1, text)
        }
    }
}

/// How many connections in `s_client` output were resumed and how many
/// were full handshakes: the lines starting `Reused, TLSv1` and
/// `New, TLSv1`.
pub fn reused_and_new(output: &str) -> (usize, usize) {
    let count = |prefix: &str| output.lines().filter(|l| l.starts_with(prefix)).count();
    (count("Reused, TLSv1"), count("New, TLSv1"))
}

/// A private `openssl s_server` on a free loopback port: a real TLS server
/// to prove the fixtures and clients with. Stopped (SIGTERM, then SIGKILL)
/// on drop.
pub struct SServer {
    process: ProcessGuard,
    port: u16,
    // Dropped after `process`.
    dir: TempDir,
}

impl SServer {
    /// `openssl s_server -accept 127.0.0.1:PORT -cert CERT -key KEY
    /// [ARGS]`, e.g. `["-www"]` (answers `GET /` with a status page and
    /// closes), `["-www", "-Verify", "1", "-verify_return_error", "-CAfile",
    /// ca]` (a client certificate of that CA required: without
    /// `-verify_return_error`, s_server only logs a certificate that does
    /// not verify and lets the client in). Waits (bounded) until it
    /// listens; a port taken meanwhile is tried again, three times.
    pub fn start(cert: &Path, key: &Path, args: &[&str]) -> SServer {
        let openssl = openssl();
        let dir = TempDir::new("s_server");
        let log = dir.join("s_server.out");
        let mut last = String::new();
        for attempt in 1..=3 {
            let port = free_port();
            let out = std::fs::File::create(&log)
                .unwrap_or_else(|e| panic!("creating {}: {e}", log.display()));
            let err = out.try_clone().expect("cloning a file");
            let mut process = ProcessGuard::spawn(
                "openssl s_server",
                Command::new(&openssl)
                    .arg("s_server")
                    .arg("-accept")
                    .arg(format!("127.0.0.1:{port}"))
                    .arg("-cert")
                    .arg(cert)
                    .arg("-key")
                    .arg(key)
                    .args(args)
                    .stdin(Stdio::null())
                    .stdout(out)
                    .stderr(err),
            )
            .unwrap_or_else(|e| panic!("starting {}: {e}", openssl.display()));
            let up = wait_until(Duration::from_secs(5), Duration::from_millis(10), || {
                is_listening(port) || process.try_wait().is_some()
            });
            if up && process.try_wait().is_none() {
                return SServer { process, port, dir };
            }
            let status = process.stop();
            last = format!(
                "attempt {attempt}: s_server on port {port} did not listen (exit {status:?}):\n{}",
                read_or_empty(&log)
            );
        }
        panic!("{last}");
    }

    /// The port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// What s_server has written (stdout and stderr).
    pub fn output(&self) -> String {
        read_or_empty(&self.dir.join("s_server.out"))
    }
}

impl Drop for SServer {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "--- openssl s_server on 127.0.0.1:{}\n{}",
                self.port,
                self.output()
            );
        }
        self.process.stop();
    }
}

/// Who signs a request.
enum Signer<'a> {
    /// The request's own key (a self-signed CA certificate).
    Itself(&'a Path),
    /// A CA: its certificate and key.
    Ca(&'a Path, &'a Path),
}

/// The configuration `openssl req` and `openssl ca` read (instead of the
/// system's `openssl.cnf`): a database in `scratch`, random serials, the
/// request's extensions ignored, only the CN kept.
fn write_config(scratch: &TempDir) -> PathBuf {
    let cnf = scratch.join("openssl.cnf");
    std::fs::write(
        &cnf,
        format!(
            "[req]\n\
             distinguished_name = dn\n\
             prompt = no\n\
             [dn]\n\
             CN = unused\n\
             [ca]\n\
             default_ca = this\n\
             [this]\n\
             database = {dir}/index.txt\n\
             new_certs_dir = {dir}\n\
             default_md = sha256\n\
             policy = any\n\
             unique_subject = no\n\
             rand_serial = yes\n\
             copy_extensions = none\n\
             email_in_dn = no\n\
             [any]\n\
             commonName = supplied\n",
            dir = scratch.path().display()
        ),
    )
    .unwrap_or_else(|e| panic!("writing {}: {e}", cnf.display()));
    let index = scratch.join("index.txt");
    if !index.exists() {
        std::fs::write(&index, "").unwrap_or_else(|e| panic!("writing {}: {e}", index.display()));
    }
    cnf
}

/// A new key of `kind` at `path` (PKCS#8 PEM, mode 0600, replacing any).
fn new_key(kind: KeyKind, path: &Path) -> PathBuf {
    let tmp = temp_beside(path);
    openssl_ok(
        Command::new(openssl())
            .arg("genpkey")
            .args(kind.genpkey_args())
            .arg("-out")
            .arg(&tmp),
    );
    install(&tmp, path, 0o600);
    path.to_path_buf()
}

/// A certificate request for `key` with subject `/CN=cn`, in `scratch`.
fn request(scratch: &TempDir, key: &Path, cn: &str) -> PathBuf {
    let cnf = write_config(scratch);
    let csr = scratch.join("request.csr");
    openssl_ok(
        Command::new(openssl())
            .args(["req", "-new", "-config"])
            .arg(&cnf)
            .arg("-key")
            .arg(key)
            .arg("-subj")
            .arg(format!("/CN={cn}"))
            .arg("-out")
            .arg(&csr),
    );
    csr
}

/// Signs `csr` with `openssl ca`, the extensions `ext` (an extfile's
/// text) and the validity `(notBefore, notAfter)` in Unix times, to `out`.
fn sign(
    scratch: &TempDir,
    csr: &Path,
    signer: Signer<'_>,
    ext: &str,
    (not_before, not_after): (i64, i64),
    out: &Path,
) {
    let cnf = write_config(scratch);
    let extfile = scratch.join("extensions.cnf");
    std::fs::write(&extfile, ext).unwrap_or_else(|e| panic!("writing {}: {e}", extfile.display()));
    let mut cmd = Command::new(openssl());
    cmd.args(["ca", "-batch", "-notext", "-preserveDN", "-config"])
        .arg(&cnf)
        .arg("-in")
        .arg(csr)
        .arg("-out")
        .arg(out)
        .arg("-extfile")
        .arg(&extfile)
        .arg("-startdate")
        .arg(generalized_time(not_before))
        .arg("-enddate")
        .arg(generalized_time(not_after));
    match signer {
        Signer::Itself(key) => cmd.arg("-selfsign").arg("-keyfile").arg(key),
        Signer::Ca(cert, key) => cmd.arg("-cert").arg(cert).arg("-keyfile").arg(key),
    };
    openssl_ok(&mut cmd);
}

/// The extensions of [`Pki::server`]'s certificates.
fn server_ext(kind: KeyKind) -> String {
    format!(
        "basicConstraints = CA:FALSE\n\
         keyUsage = {}\n\
         extendedKeyUsage = serverAuth\n\
         subjectAltName = IP:127.0.0.1, IP:::1, DNS:localhost\n\
         subjectKeyIdentifier = hash\n\
         authorityKeyIdentifier = keyid\n",
        kind.leaf_key_usage()
    )
}

/// `(notBefore, notAfter)` for a certificate valid `days` days from now,
/// as [`Pki::server`] describes.
fn validity(days: i64) -> (i64, i64) {
    let now = now_unix();
    if days > 0 {
        (now - 60, now + days * DAY)
    } else {
        let not_after = now + days * DAY - 60;
        (not_after - 30 * DAY, not_after)
    }
}

/// Runs an openssl command bounded by [`OPENSSL_TIMEOUT`]: its stdout, or a
/// panic with its stderr.
fn openssl_ok(cmd: &mut Command) -> String {
    match run_with_stdin(cmd, "", OPENSSL_TIMEOUT) {
        Ok((Some(0), stdout, _)) => stdout,
        Ok((code, stdout, stderr)) => {
            panic!("{cmd:?} failed (exit {code:?}):\n{stderr}{stdout}")
        }
        Err(e) => panic!("{e}"),
    }
}

fn check_stem(stem: &str) {
    assert!(
        !stem.is_empty()
            && !stem.starts_with('.')
            && stem
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)),
        "{stem:?}: use letters, digits, '-', '_' and '.' (not first) in names"
    );
}

/// A unique temporary name in the directory of `path`, to rename onto it.
fn temp_beside(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .and_then(|s| s.to_str())
        .unwrap_or_else(|| panic!("no file name in {}", path.display()));
    path.with_file_name(format!(".{name}.{}.tmp", unique_digits()))
}

/// Sets `tmp`'s mode and renames it onto `path`.
fn install(tmp: &Path, path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(tmp, std::fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", tmp.display()));
    std::fs::rename(tmp, path)
        .unwrap_or_else(|e| panic!("renaming {} to {}: {e}", tmp.display(), path.display()));
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// `secs` (Unix time) as ASN.1 GeneralizedTime, `YYYYMMDDHHMMSSZ`, which
/// `openssl ca -startdate/-enddate` accept (and write as UTCTime before 2050).
fn generalized_time(secs: i64) -> String {
    let (days, rest) = (secs.div_euclid(DAY), secs.rem_euclid(DAY));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}{m:02}{d:02}{:02}{:02}{:02}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// `YYYY-MM-DD HH:MM:SSZ` (`openssl x509 -dateopt iso_8601`) as Unix time.
fn parse_iso_8601(text: &str) -> Option<i64> {
    let text = text.trim().strip_suffix('Z')?;
    let (date, time) = text.split_once(' ')?;
    let mut date = date.split('-').map(str::parse::<i64>);
    let (y, m, d) = (date.next()?.ok()?, date.next()?.ok()?, date.next()?.ok()?);
    let mut time = time.split(':').map(str::parse::<i64>);
    let (h, min, s) = (time.next()?.ok()?, time.next()?.ok()?, time.next()?.ok()?);
    Some(days_from_civil(y, m, d) * DAY + h * 3600 + min * 60 + s)
}

/// Days since 1970-01-01 to a proleptic Gregorian (year, month, day).
/// (H. Hinnant's `civil_from_days`.)
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// The inverse of [`civil_from_days`].
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    const GET: &[u8] = b"GET / HTTP/1.0\r\n\r\n";

    fn mode(path: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    fn s(path: &Path) -> &str {
        path.to_str().unwrap()
    }

    /// A server certificate of `kind` behind `s_server -www`: curl
    /// verifies it with the CA (by IP, and by name through `--resolve`,
    /// in TLS 1.3 and 1.2), refuses it without (exit 60), accepts it with
    /// `-k`.
    fn serves_https(kind: KeyKind) {
        let tmp = TempDir::new("tls-test");
        let pki = Pki::new(tmp.path(), "ca");
        let (cert, key) = pki.server("server", kind, 30);
        let server = SServer::start(&cert, &key, &["-www"]);
        let port = server.port();
        let url = https_url(port, "/");
        let ca = s(&pki.ca_cert);

        let ok = curl(&url, &["--cacert", ca]);
        assert_eq!(ok.status, Some(200), "{kind:?}: {ok:?}");
        assert_eq!(ok.exit, 0, "{kind:?}: {ok:?}");
        assert!(ok.body.contains("s_server"), "{kind:?}: {ok:?}");

        let tls12 = curl(&url, &["--cacert", ca, "--tls-max", "1.2"]);
        assert_eq!(tls12.status, Some(200), "{kind:?} in TLS 1.2: {tls12:?}");
        let tls13 = curl(&url, &["--cacert", ca, "--tlsv1.3"]);
        assert_eq!(tls13.status, Some(200), "{kind:?} in TLS 1.3: {tls13:?}");

        let resolve = format!("localhost:{port}:127.0.0.1");
        let by_name = curl(
            &format!("https://localhost:{port}/"),
            &["--cacert", ca, "--resolve", &resolve],
        );
        assert_eq!(by_name.status, Some(200), "{kind:?} by name: {by_name:?}");

        let unknown = curl(&url, &[]);
        assert_eq!(unknown.exit, 60, "{kind:?}: {unknown:?}");
        assert_eq!(unknown.status, None, "{kind:?}: {unknown:?}");
        assert!(
            unknown.stderr.contains("SSL certificate problem"),
            "{kind:?}: {unknown:?}"
        );

        let insecure = curl(&url, &["-k"]);
        assert_eq!(insecure.status, Some(200), "{kind:?}: {insecure:?}");
    }

    #[test]
    fn tls_ecdsa_p256_server_certificate_serves_https() {
        serves_https(KeyKind::EcdsaP256);
    }

    #[test]
    fn tls_rsa2048_server_certificate_serves_https() {
        serves_https(KeyKind::Rsa2048);
    }

    /// curl 7.88 with OpenSSL 3.0 verifies Ed25519 server certificates,
    /// in TLS 1.3 and 1.2 alike.
    #[test]
    fn tls_ed25519_server_certificate_serves_https() {
        serves_https(KeyKind::Ed25519);
    }

    #[test]
    fn tls_files_have_the_promised_forms_and_modes() {
        let tmp = TempDir::new("tls-test");
        let pki = Pki::new(&tmp.join("pki"), "ca");
        assert_eq!(mode(&pki.ca_cert), 0o644);
        assert_eq!(mode(pki.ca_key()), 0o600);
        let ca_text = describe(&pki.ca_cert);
        assert!(ca_text.contains("CA:TRUE"), "{ca_text}");
        assert!(ca_text.contains("Certificate Sign"), "{ca_text}");
        for kind in KeyKind::ALL {
            let (cert, key) = pki.server(kind.name(), kind, 30);
            assert_eq!(cert, pki.dir.join(format!("{}.pem", kind.name())));
            assert_eq!(mode(&cert), 0o644, "{kind:?}");
            assert_eq!(mode(&key), 0o600, "{kind:?}");
            assert!(
                read(&key).starts_with("-----BEGIN PRIVATE KEY-----"),
                "{kind:?}"
            );
            assert!(
                read(&cert).starts_with("-----BEGIN CERTIFICATE-----"),
                "{kind:?}"
            );
            let text = describe(&cert);
            for want in [
                "CA:FALSE",
                "TLS Web Server Authentication",
                "IP Address:127.0.0.1",
                "IP Address:0:0:0:0:0:0:0:1",
                "DNS:localhost",
            ] {
                assert!(text.contains(want), "{kind:?}: no {want} in\n{text}");
            }
            for (check, value, matches) in [
                ("-checkip", "127.0.0.1", true),
                ("-checkip", "::1", true),
                ("-checkhost", "localhost", true),
                ("-checkhost", "example.com", false),
            ] {
                let out = openssl_ok(
                    Command::new(openssl())
                        .args(["x509", "-noout", check, value, "-in"])
                        .arg(&cert),
                );
                assert_eq!(!out.contains("NOT"), matches, "{kind:?} {value}: {out}");
            }
            let (code, out) = verify(&pki.ca_cert, &cert, &["-purpose", "sslserver"]);
            assert_eq!(code, 0, "{kind:?}: {out}");
        }
        // Issuing a stem again replaces it, leaving no temporary files.
        let (first, _) = pki.server("again", KeyKind::EcdsaP256, 30);
        let before = read(&first);
        let (second, _) = pki.server("again", KeyKind::EcdsaP256, 30);
        assert_eq!(first, second);
        assert_ne!(before, read(&second));
        let leftovers: Vec<_> = std::fs::read_dir(&pki.dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
        let chain = pki.fullchain(&second);
        assert_eq!(chain, pki.dir.join("again-fullchain.pem"));
        assert_eq!(read(&chain).matches("BEGIN CERTIFICATE").count(), 2);
    }

    /// Operators have keys in both forms: the traditional ones load and
    /// serve as well.
    #[test]
    fn tls_traditional_keys_serve_too() {
        let tmp = TempDir::new("tls-test");
        let pki = Pki::new(tmp.path(), "ca");
        for (kind, header) in [
            (KeyKind::EcdsaP256, "-----BEGIN EC PRIVATE KEY-----"),
            (KeyKind::Rsa2048, "-----BEGIN RSA PRIVATE KEY-----"),
        ] {
            let (cert, key) = pki.server(kind.name(), kind, 30);
            let traditional = to_traditional(&key);
            assert_eq!(
                traditional,
                pki.dir.join(format!("{}-traditional.key", kind.name()))
            );
            assert_eq!(mode(&traditional), 0o600);
            assert!(read(&traditional).starts_with(header), "{kind:?}");
            let server = SServer::start(&cert, &traditional, &["-www"]);
            let got = curl(
                &https_url(server.port(), "/"),
                &["--cacert", s(&pki.ca_cert)],
            );
            assert_eq!(got.status, Some(200), "{kind:?}: {got:?}");
        }
    }

    #[test]
    #[should_panic(expected = "unsupported public key type")]
    fn tls_ed25519_has_no_traditional_form() {
        let tmp = TempDir::new("tls-test");
        let pki = Pki::new(tmp.path(), "ca");
        let (_, key) = pki.client("ed", KeyKind::Ed25519);
        to_traditional(&key);
    }

    #[test]
    fn tls_validity_in_days() {
        let tmp = TempDir::new("tls-test");
        let pki = Pki::new(tmp.path(), "ca");
        let now = now_unix();

        let (soon, soon_key) = pki.server("soon", KeyKind::EcdsaP256, 1);
        let (from, to) = validity_of(&soon);
        assert!(from <= now && from >= now - 120, "{from} vs {now}");
        assert!((to - now - DAY).abs() <= 120, "{to} vs {now}");

        for days in [0, -1, -10] {
            let stem = format!("expired{days}");
            let (cert, _) = pki.server(&stem, KeyKind::EcdsaP256, days);
            let (from, to) = validity_of(&cert);
            assert!(from < to, "{days}: {from} !< {to}");
            assert!(to < now, "{days}: {to} !< {now}");
            assert!(
                (to - (now + days * DAY)).abs() <= 120,
                "{days}: {to} vs {now}"
            );
            let (code, out) = verify(&pki.ca_cert, &cert, &[]);
            assert_ne!(code, 0, "{days}: {out}");
            assert!(out.contains("certificate has expired"), "{days}: {out}");
        }

        // curl tells an expired certificate apart from an unknown one.
        let (expired, expired_key) = pki.server("expired", KeyKind::EcdsaP256, -1);
        let ca = s(&pki.ca_cert);
        let server = SServer::start(&expired, &expired_key, &["-www"]);
        let got = curl(&https_url(server.port(), "/"), &["--cacert", ca]);
        assert_eq!(got.exit, 60, "{got:?}");
        assert!(got.stderr.contains("certificate has expired"), "{got:?}");
        let server = SServer::start(&soon, &soon_key, &["-www"]);
        let got = curl(&https_url(server.port(), "/"), &["--cacert", ca]);
        assert_eq!(got.status, Some(200), "{got:?}");
    }

    #[test]
    fn tls_client_certificates_verify_against_their_ca_only() {
        let tmp = TempDir::new("tls-test");
        let pki = Pki::new(&tmp.join("one"), "ca");
        let other = Pki::new(&tmp.join("other"), "ca");
        for kind in KeyKind::ALL {
            let (cert, key) = pki.client(kind.name(), kind);
            assert_eq!(mode(&key), 0o600);
            let text = describe(&cert);
            assert!(text.contains("TLS Web Client Authentication"), "{text}");
            assert!(text.contains(&format!("CN = {}", kind.name())), "{text}");

            let (code, out) = verify(&pki.ca_cert, &cert, &["-purpose", "sslclient"]);
            assert_eq!(code, 0, "{kind:?}: {out}");
            assert!(out.contains(": OK"), "{kind:?}: {out}");

            let (code, out) = verify(&other.ca_cert, &cert, &[]);
            assert_ne!(code, 0, "{kind:?}: {out}");
            assert!(
                out.contains("unable to get local issuer"),
                "{kind:?}: {out}"
            );

            // A client certificate is no server certificate.
            let (code, out) = verify(&pki.ca_cert, &cert, &["-purpose", "sslserver"]);
            assert_ne!(code, 0, "{kind:?}: {out}");
        }
        let (expired, _) = pki.client_days("old", KeyKind::EcdsaP256, -1);
        let (code, out) = verify(&pki.ca_cert, &expired, &[]);
        assert!(code != 0 && out.contains("expired"), "{out}");
    }

    /// `s_server -Verify 1 -verify_return_error` (a client certificate
    /// required, and verified) lets in curl
    /// with a client certificate of the CA it trusts, of every kind, and
    /// nobody else.
    #[test]
    fn tls_client_certificates_authenticate() {
        let tmp = TempDir::new("tls-test");
        let pki = Pki::new(&tmp.join("one"), "ca");
        let other = Pki::new(&tmp.join("other"), "ca");
        let ca = s(&pki.ca_cert);
        let (cert, key) = pki.server("server", KeyKind::EcdsaP256, 30);
        let server = SServer::start(
            &cert,
            &key,
            &[
                "-www",
                "-Verify",
                "1",
                "-verify_return_error",
                "-CAfile",
                ca,
            ],
        );
        let url = https_url(server.port(), "/");
        for kind in KeyKind::ALL {
            let (c, k) = pki.client(kind.name(), kind);
            let got = curl(&url, &["--cacert", ca, "--cert", s(&c), "--key", s(&k)]);
            assert_eq!(got.status, Some(200), "{kind:?}: {got:?}");
        }
        // In TLS 1.3 the client's handshake is over before the server
        // rejects its certificate: curl fails reading (56), where in
        // TLS 1.2 the handshake itself fails (35).
        let none = curl(&url, &["--cacert", ca]);
        assert_eq!(none.status, None, "{none:?}");
        assert_eq!(none.exit, 56, "{none:?}");
        assert!(none.stderr.contains("certificate required"), "{none:?}");
        let none12 = curl(&url, &["--cacert", ca, "--tls-max", "1.2"]);
        assert_eq!((none12.status, none12.exit), (None, 35), "{none12:?}");
        let (c, k) = other.client("stranger", KeyKind::EcdsaP256);
        let stranger = curl(&url, &["--cacert", ca, "--cert", s(&c), "--key", s(&k)]);
        assert_eq!(stranger.status, None, "{stranger:?}");
        assert_eq!(stranger.exit, 56, "{stranger:?}");
        assert!(stranger.stderr.contains("unknown ca"), "{stranger:?}");
        let (code, out) = s_client_once(
            server.port(),
            &["-CAfile", ca, "-cert", s(&c), "-key", s(&k)],
            GET,
        );
        assert!(!out.contains("HTTP/1.0 200"), "exit {code}: {out}");
    }

    #[test]
    fn tls_s_client_counts_resumptions() {
        let tmp = TempDir::new("tls-test");
        let pki = Pki::new(tmp.path(), "ca");
        let ca = s(&pki.ca_cert);
        let (cert, key) = pki.server("server", KeyKind::EcdsaP256, 30);
        let server = SServer::start(&cert, &key, &["-www"]);
        let port = server.port();

        // TLS 1.2: one full handshake, five resumptions.
        let (code, out) = s_client(port, &["-CAfile", ca, "-tls1_2"], b"");
        assert_eq!(code, 0, "{out}");
        assert_eq!(reused_and_new(&out), (5, 1), "{out}");
        assert!(out.contains("Verify return code: 0 (ok)"), "{out}");

        // With a request: the answer is read to the server's close.
        let (code, out) = s_client(port, &["-CAfile", ca, "-tls1_2"], GET);
        assert_eq!(code, 0, "{out}");
        assert!(out.contains("HTTP/1.0 200 ok"), "{out}");

        // TLS 1.3 (see the module docs): resumed with a saved session.
        let session = tmp.join("session.pem");
        let (code, out) = s_client_once(
            port,
            &["-CAfile", ca, "-tls1_3", "-sess_out", s(&session)],
            GET,
        );
        assert_eq!(code, 0, "{out}");
        let (reused, new) = reused_and_new(&out);
        assert!(reused == 0 && new >= 1, "{out}");
        let (code, out) = s_client_once(
            port,
            &["-CAfile", ca, "-tls1_3", "-sess_in", s(&session)],
            GET,
        );
        assert_eq!(code, 0, "{out}");
        let (reused, new) = reused_and_new(&out);
        assert!(reused >= 1 && new == 0, "{out}");
        let (_, out) = s_client(port, &["-CAfile", ca, "-tls1_3"], b"");
        eprintln!(
            "TLS 1.3 s_client -reconnect (reused, new): {:?}",
            reused_and_new(&out)
        );

        // A server that does not verify: s_client says so, and still ends.
        let (code, out) = s_client_once(port, &[], b"");
        assert_eq!(code, 0, "{out}");
        assert!(!out.contains("Verify return code: 0 (ok)"), "{out}");
    }

    #[test]
    fn tls_reused_and_new_reads_s_client_lines() {
        let out = "CONNECTED(00000003)\n---\nNew, TLSv1.2, Cipher is X\n\
                   drop connection and then reconnect\n\
                   Reused, TLSv1.2, Cipher is X\nReused, TLSv1.3, Cipher is Y\n\
                   Post-Handshake New Session Ticket arrived:\n";
        assert_eq!(reused_and_new(out), (2, 1));
        assert_eq!(reused_and_new(""), (0, 0));
    }

    #[test]
    fn tls_times_convert() {
        assert_eq!(generalized_time(0), "19700101000000Z");
        assert_eq!(generalized_time(1_700_000_000), "20231114221320Z");
        assert_eq!(generalized_time(951_782_400), "20000229000000Z");
        assert_eq!(generalized_time(-1), "19691231235959Z");
        for t in [0, 1_700_000_000, 951_782_400, 4_102_444_800, -86_400] {
            let g = generalized_time(t);
            let iso = format!(
                "{}-{}-{} {}:{}:{}Z",
                &g[0..4],
                &g[4..6],
                &g[6..8],
                &g[8..10],
                &g[10..12],
                &g[12..14]
            );
            assert_eq!(parse_iso_8601(&iso), Some(t), "{iso}");
        }
        assert_eq!(parse_iso_8601("nonsense"), None);
    }

    #[test]
    #[should_panic(expected = "use letters")]
    fn tls_stems_are_plain_names() {
        let tmp = TempDir::new("tls-test");
        let pki = Pki::new(tmp.path(), "ca");
        pki.server("../escape", KeyKind::EcdsaP256, 1);
    }
}
