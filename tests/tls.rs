//! HTTPS on the check port, with real programs only: certificates from a
//! private CA made by the `openssl` command, inetd-health per connection
//! (tcpserver, xinetd) and long-lived (`--listen`), and the clients that
//! poll it: curl, `openssl s_client`, HAProxy's `check-ssl` and its
//! plaintext agent-check on the same port. The tests of HAProxy's
//! `check-ssl` run docs/tls.md's config and backend as written (its fenced
//! blocks, read by their info strings), only their files, port and checks
//! the tests'.
//!
//! Every server listens on loopback, every wait is bounded, and everything
//! started is stopped by pid when its guard drops. The per-connection forms
//! are given a `--state-dir` of their own: the session-ticket key lives
//! there, and a test must not share one with another.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use inetd_health_testkit::haproxy::{Haproxy, ServerState};
use inetd_health_testkit::procs::{read_or_empty, run_with_stdin, wait_until, ProcessGuard};
use inetd_health_testkit::run::listening;
use inetd_health_testkit::tcpserver;
use inetd_health_testkit::tls::{
    curl, curl_http, https_url, reused_and_new, s_client, s_client_once, to_traditional,
    validity_of, KeyKind, Pki,
};
use inetd_health_testkit::tmp::TempDir;
use inetd_health_testkit::xinetd::Xinetd;

/// The binary under test, as Cargo built it for this package's tests.
const BIN: &str = env!("CARGO_BIN_EXE_inetd-health");

const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// What `exec -- /bin/true` answers.
const HEALTHY: &str = "healthy: exit status 0\n";
/// The body of the 400 for plaintext HTTP on a port that serves HTTPS only.
const HINT: &str = "this port speaks HTTPS: use https:// (plaintext HTTP is not served here)\n";
/// A request for s_client, after which the server closes.
const GET: &[u8] = b"GET / HTTP/1.0\r\n\r\n";
/// The expiry gauge's name.
const EXPIRY: &str = "inetd_health_tls_cert_expiry_timestamp_seconds";

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// A new empty directory `name` in `dir`.
fn subdir(dir: &TempDir, name: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::create_dir_all(&path).unwrap();
    path
}

/// The connection lines of a log (stderr or syslog), in order.
fn connections(log: &str) -> Vec<&str> {
    log.lines().filter(|l| l.contains("peer=")).collect()
}

// --- The servers under test ---------------------------------------------------------

/// inetd-health serving a loopback port, in one of its two forms: a
/// process per connection under tcpserver, or one long-lived process with
/// `--listen`. Its stderr (the connection log, in both) goes to a file.
/// Stopped by pid on drop, its log printed first if the test is failing.
struct Server {
    form: &'static str,
    port: u16,
    log: PathBuf,
    _process: ProcessGuard,
}

impl Server {
    /// `tcpserver -RHl0 127.0.0.1 PORT inetd-health ARGS…`, its files in
    /// `dir/<name>/`.
    fn per_connection(dir: &TempDir, name: &str, args: &[&str]) -> Server {
        let home = subdir(dir, name);
        let argv: Vec<&str> = std::iter::once(BIN).chain(args.iter().copied()).collect();
        let (process, port) = tcpserver::start(&home, &argv);
        Server {
            form: "tcpserver",
            port,
            log: home.join("stderr"),
            _process: process,
        }
    }

    /// `inetd-health --listen 127.0.0.1:0 ARGS…`, once it says where it
    /// listens, its stderr in `dir/<name>.stderr`.
    fn long_lived(dir: &TempDir, name: &str, args: &[&str]) -> Server {
        let log = dir.join(&format!("{name}.stderr"));
        let (process, addr) = listening(BIN, args, &log, IO_TIMEOUT);
        Server {
            form: "--listen",
            port: addr.port(),
            log,
            _process: process,
        }
    }

    /// The same service in both forms, `dir/<name>-per-connection/` and
    /// `dir/<name>-listen.stderr`.
    fn both(dir: &TempDir, name: &str, args: &[&str]) -> [Server; 2] {
        [
            Server::per_connection(dir, &format!("{name}-per-connection"), args),
            Server::long_lived(dir, &format!("{name}-listen"), args),
        ]
    }

    fn log(&self) -> String {
        read_or_empty(&self.log)
    }

    /// Waits (bounded) until the log satisfies `want` (it is written after
    /// the answer); panics with the log if it never does.
    fn wait_log(&self, what: &str, want: impl Fn(&str) -> bool) -> String {
        let mut text = String::new();
        let ok = wait_until(IO_TIMEOUT, Duration::from_millis(10), || {
            text = self.log();
            want(&text)
        });
        assert!(
            ok,
            "{} ({}): {what}; the log:\n{text}",
            self.form, self.port
        );
        text
    }

    fn url(&self, path: &str) -> String {
        https_url(self.port, path)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "--- inetd-health {} on 127.0.0.1:{}, its log:\n{}",
                self.form,
                self.port,
                self.log()
            );
        }
    }
}

/// A syslog socket of the test's own (`--syslog-socket`): where the
/// connection lines go under xinetd, whose fds 0-2 are the socket.
struct Syslog {
    socket: UnixDatagram,
    path: PathBuf,
    seen: Mutex<Vec<String>>,
}

impl Syslog {
    fn bind(dir: &TempDir) -> Syslog {
        let path = dir.join("log");
        let socket = UnixDatagram::bind(&path).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        Syslog {
            socket,
            path,
            seen: Mutex::new(Vec::new()),
        }
    }

    fn path(&self) -> &str {
        s(&self.path)
    }

    /// Receives lines until `done` holds for all of them so far, or
    /// `timeout` passes: every line received, in order.
    fn until(&self, timeout: Duration, done: impl Fn(&[String]) -> bool) -> Vec<String> {
        let deadline = Instant::now() + timeout;
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        while !done(&seen) && Instant::now() < deadline {
            let mut buf = [0u8; 4096];
            if let Ok(n) = self.socket.recv(&mut buf) {
                seen.push(String::from_utf8_lossy(&buf[..n]).into_owned());
            }
        }
        seen.clone()
    }
}

/// The connection lines over TLS among `lines` (HAProxy's agent line is
/// plaintext, and has no `tls=`).
fn tls_lines(lines: &[String]) -> Vec<&String> {
    lines.iter().filter(|l| l.contains(" tls=")).collect()
}

/// The pid in a syslog line, `<30>inetd-health[PID]: …`.
fn pid_of(line: &str) -> u32 {
    let start = line.find("inetd-health[").unwrap() + "inetd-health[".len();
    let end = start + line[start..].find(']').unwrap();
    line[start..end].parse().unwrap()
}

/// A PKI in `dir/pki` and a server certificate of `kind` valid 30 days.
fn pki_and_server(dir: &TempDir, kind: KeyKind) -> (Pki, PathBuf, PathBuf) {
    let pki = Pki::new(&dir.join("pki"), "ca");
    let (cert, key) = pki.server("server", kind, 30);
    (pki, cert, key)
}

// --- docs/tls.md, as written ---------------------------------------------------------

/// Where docs/tls.md keeps the certificate, the key and the CA: the files
/// of [`pki_and_server`]'s PKI have the same names (`server.pem`,
/// `server.key`, `ca.pem`).
const DOC_TLS_DIR: &str = "/etc/inetd-health/tls/";

/// The block of docs/tls.md fenced as ```` ```INFO ````, with its
/// certificate, key and CA those of `pki` (made by [`pki_and_server`]).
fn doc_block(info: &str, pki: &Pki) -> String {
    let text = inetd_health_testkit::docs::block("tls.md", info);
    assert!(text.contains(DOC_TLS_DIR), "docs/tls.md ```{info}:\n{text}");
    text.replace(DOC_TLS_DIR, &format!("{}/", pki.dir.display()))
}

/// `text` with `from` replaced by `to`, which it must contain: a doc
/// block changed under its test fails here, not in what it tested.
fn replaced(text: &str, from: &str, to: &str) -> String {
    assert!(text.contains(from), "no {from:?} in:\n{text}");
    text.replace(from, to)
}

/// docs/tls.md's config (```` ```toml tls-config ````), its files the
/// test's (`cert`, `key`): its top-level lines as written (the
/// certificate, the key, `agent = true`), then `rest` in place of the
/// doc's example check (more top-level lines, then the test's checks).
/// The doc's block as a whole, `[checks.db]` and all, passes
/// `--check-config` first.
fn doc_config(dir: &TempDir, pki: &Pki, cert: &Path, key: &Path, rest: &str) -> String {
    let block = doc_block("toml tls-config", pki);
    for file in [cert, key] {
        assert!(
            block.contains(&format!("\"{}\"", file.display())),
            "{block}"
        );
    }
    let whole = dir.join("doc-config.toml");
    std::fs::write(&whole, &block).unwrap();
    let (code, err) = run(&["--config", s(&whole), "--check-config"]);
    assert_eq!(code, 0, "docs/tls.md's config:\n{block}\n{err}");
    let tables = block
        .find("\n[")
        .unwrap_or_else(|| panic!("no check in docs/tls.md's config:\n{block}"));
    format!("{}\n{rest}", &block[..=tables])
}

/// docs/tls.md's HAProxy backend (```` ```haproxy tls-backend ````),
/// checking the server on 127.0.0.1:`port` with `pki`'s CA: its text,
/// and the backend's and the server's names (for [`Haproxy::state_of`]).
fn doc_backend(pki: &Pki, port: u16) -> (String, String, String) {
    let block = doc_block("haproxy tls-backend", pki);
    let block = replaced(&block, "127.0.0.1:9200 ", &format!("127.0.0.1:{port} "));
    let block = replaced(&block, "agent-port 9200 ", &format!("agent-port {port} "));
    let ca_file = format!("ca-file {} ", pki.ca_cert.display());
    assert!(block.contains(&ca_file), "no {ca_file:?} in:\n{block}");
    let name = |keyword: &str| {
        block
            .lines()
            .find_map(|l| l.trim().strip_prefix(keyword)?.split_whitespace().next())
            .unwrap_or_else(|| panic!("no {keyword:?} in:\n{block}"))
            .to_owned()
    };
    let (backend, server) = (name("backend "), name("server "));
    (block, backend, server)
}

/// HAProxy's sections for a `backend` (its `text`): `before` (e.g. a
/// `global` section), then a frontend on 127.0.0.1:`front` sending to it,
/// then the backend.
fn in_front(before: &str, front: u16, backend: &str, text: &str) -> String {
    format!(
        "{before}frontend front\n    bind 127.0.0.1:{front}\n    default_backend {backend}\n\n{text}"
    )
}

/// Waits (bounded) until `want` holds for `proxy`/`server` in HAProxy's
/// stats: the state that satisfied it, or the last one seen.
fn wait_for_state_of(
    haproxy: &Haproxy,
    (proxy, server): (&str, &str),
    timeout: Duration,
    want: impl Fn(&ServerState) -> bool,
) -> Result<ServerState, String> {
    let mut last = Err("never read".to_string());
    let ok = wait_until(timeout, Duration::from_millis(50), || {
        last = haproxy.state_of(proxy, server);
        matches!(&last, Ok(state) if want(state))
    });
    match last {
        Ok(state) if ok => Ok(state),
        Ok(state) => Err(format!("after {timeout:?} the state is still {state:?}")),
        Err(e) => Err(e),
    }
}

// --- 1. Every key kind, every client ------------------------------------------------

/// A certificate with a key of `kind`, in both forms: curl with the CA
/// gets the healthy answer over TLS 1.3 (ALPN http/1.1) and 1.2; without
/// the CA it refuses the certificate (60) and the server logs the client's
/// alert; `-k` (a Kubernetes probe, which does not verify) is answered.
fn every_client_of(kind: KeyKind) {
    let dir = TempDir::new("tls-kind");
    let (pki, cert, key) = pki_and_server(&dir, kind);
    let ca = s(&pki.ca_cert);
    let state = subdir(&dir, "state");
    let servers = Server::both(
        &dir,
        kind.name(),
        &[
            "--state-dir",
            s(&state),
            "--tls-cert",
            s(&cert),
            "--tls-key",
            s(&key),
            "exec",
            "--",
            "/bin/true",
        ],
    );
    for server in &servers {
        let form = server.form;
        let url = server.url("/");
        let ok = curl(&url, &["--cacert", ca, "-v"]);
        assert_eq!(
            (ok.exit, ok.status, ok.body.as_str()),
            (0, Some(200), HEALTHY),
            "{form} {kind:?}: {ok:?}"
        );
        assert!(
            ok.stderr.contains("ALPN: server accepted http/1.1"),
            "{form} {kind:?}: {}",
            ok.stderr
        );
        assert!(
            ok.stderr.contains("TLSv1.3"),
            "{form} {kind:?}: {}",
            ok.stderr
        );

        let tls12 = curl(&url, &["--cacert", ca, "--tls-max", "1.2", "-v"]);
        assert_eq!(
            (tls12.status, tls12.body.as_str()),
            (Some(200), HEALTHY),
            "{form} {kind:?} in TLS 1.2: {tls12:?}"
        );
        assert!(
            tls12.stderr.contains("TLSv1.2"),
            "{form} {kind:?}: {}",
            tls12.stderr
        );

        let unknown = curl(&url, &[]);
        assert_eq!(
            (unknown.exit, unknown.status),
            (60, None),
            "{form} {kind:?}: {unknown:?}"
        );
        assert!(
            unknown.stderr.contains("SSL certificate problem"),
            "{form} {kind:?}: {unknown:?}"
        );

        let insecure = curl(&url, &["-k"]);
        assert_eq!(
            (insecure.status, insecure.body.as_str()),
            (Some(200), HEALTHY),
            "{form} {kind:?}: {insecure:?}"
        );

        let log = server.wait_log("three answers over TLS and a refused certificate", |t| {
            let lines = connections(t);
            lines
                .iter()
                .filter(|l| l.contains(" status=200 ") && l.ends_with(" tls=full"))
                .count()
                == 3
                && lines
                    .iter()
                    .any(|l| l.contains("reason=\"TLS: received fatal alert: UnknownCA\""))
        });
        // The refused handshake is logged with no HTTP status.
        let refused = connections(&log)
            .into_iter()
            .find(|l| l.contains("UnknownCA"))
            .unwrap();
        assert!(refused.contains(" status=- "), "{form}: {refused}");
    }
}

#[test]
fn ecdsa_p256_certificate_serves_every_client() {
    every_client_of(KeyKind::EcdsaP256);
}

#[test]
fn rsa2048_certificate_serves_every_client() {
    every_client_of(KeyKind::Rsa2048);
}

#[test]
fn ed25519_certificate_serves_every_client() {
    every_client_of(KeyKind::Ed25519);
}

/// Keys in their traditional forms (SEC1 `BEGIN EC PRIVATE KEY`, PKCS#1
/// `BEGIN RSA PRIVATE KEY`) load and serve as PKCS#8 ones do.
#[test]
fn traditional_ec_and_rsa_keys_serve() {
    let dir = TempDir::new("tls-traditional");
    let pki = Pki::new(&dir.join("pki"), "ca");
    let state = subdir(&dir, "state");
    for (kind, header) in [
        (KeyKind::EcdsaP256, "-----BEGIN EC PRIVATE KEY-----"),
        (KeyKind::Rsa2048, "-----BEGIN RSA PRIVATE KEY-----"),
    ] {
        let (cert, key) = pki.server(kind.name(), kind, 30);
        let traditional = to_traditional(&key);
        assert!(
            std::fs::read_to_string(&traditional)
                .unwrap()
                .starts_with(header),
            "{kind:?}"
        );
        let server = Server::per_connection(
            &dir,
            kind.name(),
            &[
                "--state-dir",
                s(&state),
                "--tls-cert",
                s(&cert),
                "--tls-key",
                s(&traditional),
                "exec",
                "--",
                "/bin/true",
            ],
        );
        let got = curl(&server.url("/"), &["--cacert", s(&pki.ca_cert)]);
        assert_eq!(
            (got.status, got.body.as_str()),
            (Some(200), HEALTHY),
            "{kind:?}: {got:?}"
        );
    }
}

// --- 2. HAProxy: check-ssl and the agent on the same port, under xinetd -------------

/// A real HAProxy checks `option httpchk` over TLS (`check-ssl verify
/// required ca-file`) and polls the plaintext agent-check on the same
/// port, served by xinetd: UP with L7OK and the 200; the agent sets the
/// weight for a warning, drains while the disable file exists, takes the
/// server down on a failure, and back (as the plaintext agent test in
/// tests/launchers.rs). The config and the backend are docs/tls.md's, as
/// written: its files, port and check are the test's.
#[test]
fn haproxy_check_ssl_and_the_agent_on_one_port_under_xinetd() {
    let dir = TempDir::new("tls-haproxy");
    let (pki, cert, key) = pki_and_server(&dir, KeyKind::EcdsaP256);
    let state_dir = subdir(&dir, "state");
    let (state, check) = dir.switchable_check("app-state");
    let disable = dir.join("disable");
    let config = dir.join("config.toml");
    std::fs::write(
        &config,
        doc_config(
            &dir,
            &pki,
            &cert,
            &key,
            &format!(
                "agent-route = \"/agent\"\nstate-dir = \"{state_dir}\"\n\
                 [checks.app]\nkind = \"exec\"\nnagios = true\ncommand = [\"{check}\"]\n\
                 [checks.drain]\nkind = \"exec\"\ncommand = [\"/bin/true\"]\ndisable-file = \"{disable}\"\n\
                 [routes]\n\"/\" = [\"app\"]\n\"/agent\" = [\"app\", \"drain\"]\n",
                state_dir = state_dir.display(),
                check = check.display(),
                disable = disable.display()
            ),
        ),
    )
    .unwrap();
    let xinetd = Xinetd::start(BIN, &["--config", s(&config)]);

    // By hand first: the agent line in plaintext, whether the agent says
    // nothing or sends a line, on the port that serves HTTPS.
    let agent_line = |send: &[u8]| {
        let mut stream = TcpStream::connect(("127.0.0.1", xinetd.port())).unwrap();
        stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        stream.write_all(send).unwrap();
        let mut got = String::new();
        stream.read_to_string(&mut got).unwrap();
        got
    };
    assert_eq!(agent_line(b""), "up ready 100%\n");
    assert_eq!(agent_line(b"hello agent\n"), "up ready 100%\n");

    let (backend_text, backend, server) = doc_backend(&pki, xinetd.port());
    let haproxy = Haproxy::start_sections(|front| in_front("", front, &backend, &backend_text));
    let wait = |what: &str, want: &dyn Fn(&ServerState) -> bool| {
        wait_for_state_of(
            &haproxy,
            (&backend, &server),
            Duration::from_secs(10),
            |s| want(s),
        )
        .unwrap_or_else(|e| panic!("{what}: {e}"))
    };
    // (While a check runs HAProxy shows its code as 0: wait for one done.)
    let https_ok = |s: &ServerState| s.check_status == "L7OK" && s.check_code == "200";
    wait(
        "UP at full weight, the HTTPS check and the agent heard",
        &|s| s.status == "UP" && s.weight == "100" && https_ok(s) && s.agent_status == "L7OK",
    );

    std::fs::write(&state, "warn").unwrap();
    let warned = wait("weight 50 on a warning", &|s| s.weight == "50");
    assert_eq!(warned.status, "UP", "{warned:?}");

    std::fs::write(&state, "ok").unwrap();
    wait("weight back to 100", &|s| {
        s.weight == "100" && s.status == "UP"
    });

    std::fs::write(&disable, "").unwrap();
    // Draining is the agent's doing: the HTTPS check still passes.
    wait("DRAIN while disabled", &|s| {
        s.status.starts_with("DRAIN") && https_ok(s)
    });
    std::fs::remove_file(&disable).unwrap();
    wait("UP again", &|s| s.status == "UP");

    std::fs::write(&state, "crit").unwrap();
    let down = wait("DOWN on a failure", &|s| s.status.starts_with("DOWN"));
    eprintln!("down: {down:?}");
    assert_eq!(agent_line(b""), "down #app: CRIT - broken\n");
    std::fs::write(&state, "ok").unwrap();
    // The HTTPS check works again on the same port.
    wait("UP after the failure", &|s| {
        s.status == "UP" && s.weight == "100" && https_ok(s)
    });
}

// --- 3. Session resumption, one process per connection -----------------------------

/// HAProxy reuses its check's TLS session: under xinetd every check is a
/// new process, and still only the first one or two handshakes are full,
/// the rest resumed with the ticket key kept in the state directory
/// (`tls-ticket-keys`, mode 0600). The config and the backend are
/// docs/tls.md's, as written: its files, port and check are the test's.
#[test]
fn haproxy_checks_resume_across_processes_under_xinetd() {
    let dir = TempDir::new("tls-resume-haproxy");
    let (pki, cert, key) = pki_and_server(&dir, KeyKind::EcdsaP256);
    let state = subdir(&dir, "state");
    let syslog = Syslog::bind(&dir);
    let config = dir.join("config.toml");
    std::fs::write(
        &config,
        doc_config(
            &dir,
            &pki,
            &cert,
            &key,
            "[checks.ok]\nkind = \"exec\"\ncommand = [\"/bin/true\"]\n",
        ),
    )
    .unwrap();
    let xinetd = Xinetd::start(
        BIN,
        &[
            "--syslog-socket",
            syslog.path(),
            "--state-dir",
            s(&state),
            "--config",
            s(&config),
        ],
    );
    // HAProxy keeps the session to reuse per thread: each of its threads
    // begins with a full handshake. One thread, for a count that does not
    // depend on the machine's CPUs.
    let (backend_text, backend, server) = doc_backend(&pki, xinetd.port());
    let haproxy = Haproxy::start_sections(|front| {
        in_front("global\n    nbthread 1\n\n", front, &backend, &backend_text)
    });
    wait_for_state_of(&haproxy, (&backend, &server), IO_TIMEOUT, |s| {
        s.status == "UP" && s.check_status == "L7OK"
    })
    .unwrap();
    // A check every `inter` (500 ms in the doc): ten of them.
    let lines = syslog.until(IO_TIMEOUT, |lines| tls_lines(lines).len() >= 10);
    let polls = tls_lines(&lines);
    assert!(polls.len() >= 10, "{lines:#?}");
    let polls = &polls[..10];
    for line in polls {
        assert!(line.contains(" status=200 "), "{line}");
    }
    let full: Vec<usize> = (0..polls.len())
        .filter(|&i| polls[i].ends_with(" tls=full"))
        .collect();
    let resumed = polls.iter().filter(|l| l.ends_with(" tls=resumed")).count();
    assert_eq!(full.len() + resumed, 10, "{polls:#?}");
    eprintln!("HAProxy's first 10 checks: full handshakes at {full:?}, {resumed} resumed");
    assert!(
        !full.is_empty() && full.iter().all(|&i| i < 2),
        "full handshakes at {full:?} of {polls:#?}"
    );
    // Each a process of its own.
    let mut pids: Vec<u32> = polls.iter().map(|l| pid_of(l)).collect();
    pids.sort_unstable();
    pids.dedup();
    assert_eq!(pids.len(), 10, "{polls:#?}");
    let keys = state.join("tls-ticket-keys");
    assert_eq!(mode(&keys), 0o600, "{}", keys.display());
}

/// By hand under xinetd: a TLS 1.3 session saved by one s_client
/// (`-sess_out`) resumes in a new process (`-sess_in`): s_client says
/// "Reused" and the log `tls=resumed`. TLS 1.2's `-reconnect` resumes five
/// times out of six, each connection a process of its own.
#[test]
fn s_client_resumes_across_processes_under_xinetd() {
    let dir = TempDir::new("tls-resume-xinetd");
    let (pki, cert, key) = pki_and_server(&dir, KeyKind::EcdsaP256);
    let ca = s(&pki.ca_cert);
    let state = subdir(&dir, "state");
    let syslog = Syslog::bind(&dir);
    let xinetd = Xinetd::start(
        BIN,
        &[
            "--syslog-socket",
            syslog.path(),
            "--state-dir",
            s(&state),
            "--tls-cert",
            s(&cert),
            "--tls-key",
            s(&key),
            "exec",
            "--",
            "/bin/true",
        ],
    );
    let port = xinetd.port();
    let session = dir.join("session.pem");
    let (code, out) = s_client_once(
        port,
        &["-CAfile", ca, "-tls1_3", "-sess_out", s(&session)],
        GET,
    );
    assert_eq!(code, 0, "{out}");
    assert_eq!(reused_and_new(&out), (0, 1), "{out}");
    assert!(out.contains("HTTP/1.1 200 OK"), "{out}");
    assert!(out.contains("Verify return code: 0 (ok)"), "{out}");
    let (code, out) = s_client_once(
        port,
        &["-CAfile", ca, "-tls1_3", "-sess_in", s(&session)],
        GET,
    );
    assert_eq!(code, 0, "{out}");
    assert_eq!(reused_and_new(&out), (1, 0), "{out}");
    assert!(out.contains("HTTP/1.1 200 OK"), "{out}");

    let lines = syslog.until(IO_TIMEOUT, |lines| lines.len() >= 2);
    assert_eq!(lines.len(), 2, "{lines:#?}");
    assert!(
        lines[0].contains(" status=200 ") && lines[0].ends_with(" tls=full"),
        "{lines:#?}"
    );
    assert!(
        lines[1].contains(" status=200 ") && lines[1].ends_with(" tls=resumed"),
        "{lines:#?}"
    );
    assert_ne!(pid_of(&lines[0]), pid_of(&lines[1]), "{lines:#?}");
    assert_eq!(mode(&state.join("tls-ticket-keys")), 0o600);

    // TLS 1.2: one full handshake and five resumed, six new processes.
    assert_eq!(xinetd.wait_for_exits(2, IO_TIMEOUT).len(), 2);
    let (code, out) = s_client(port, &["-CAfile", ca, "-tls1_2"], b"");
    assert_eq!(code, 0, "{out}");
    assert_eq!(reused_and_new(&out), (5, 1), "{out}");
    assert_eq!(xinetd.wait_for_exits(8, IO_TIMEOUT).len(), 8);
}

/// `--listen` resumes from memory: TLS 1.3 with a saved session, TLS 1.2
/// with `-reconnect`.
#[test]
fn long_lived_resumes_from_memory() {
    let dir = TempDir::new("tls-resume-listen");
    let (pki, cert, key) = pki_and_server(&dir, KeyKind::EcdsaP256);
    let ca = s(&pki.ca_cert);
    let server = Server::long_lived(
        &dir,
        "listen",
        &[
            "--tls-cert",
            s(&cert),
            "--tls-key",
            s(&key),
            "exec",
            "--",
            "/bin/true",
        ],
    );
    let session = dir.join("session.pem");
    let (code, out) = s_client_once(
        server.port,
        &["-CAfile", ca, "-tls1_3", "-sess_out", s(&session)],
        GET,
    );
    assert_eq!((code, reused_and_new(&out)), (0, (0, 1)), "{out}");
    let (code, out) = s_client_once(
        server.port,
        &["-CAfile", ca, "-tls1_3", "-sess_in", s(&session)],
        GET,
    );
    assert_eq!((code, reused_and_new(&out)), (0, (1, 0)), "{out}");
    assert!(out.contains("HTTP/1.1 200 OK"), "{out}");
    let log = server.wait_log("a full handshake, then a resumed one", |t| {
        connections(t).len() >= 2
    });
    let lines = connections(&log);
    assert!(lines[0].ends_with(" tls=full"), "{log}");
    assert!(lines[1].ends_with(" tls=resumed"), "{log}");

    let (code, out) = s_client(server.port, &["-CAfile", ca, "-tls1_2"], b"");
    assert_eq!((code, reused_and_new(&out)), (0, (5, 1)), "{out}");
}

// --- 4. Client certificates ---------------------------------------------------------

/// Whether curl's exit code says the server refused its client
/// certificate (or the lack of one) in the handshake: 35, the handshake
/// failed (TLS 1.2); 56, receiving failed after the client's handshake
/// was over (TLS 1.3); 98, "SSL client certificate required", rustls'
/// `certificate_required` alert, which it sends in TLS 1.2 too.
fn refused(exit: i32) -> bool {
    [35, 56, 98].contains(&exit)
}

/// `--tls-client-ca` (required): a client certificate of that CA is let
/// in, in both forms; one of another CA, or none, is refused in the
/// handshake (no HTTP answer), and the refusal is logged.
#[test]
fn client_certificates_required() {
    let dir = TempDir::new("tls-mtls");
    let (pki, cert, key) = pki_and_server(&dir, KeyKind::EcdsaP256);
    let other = Pki::new(&dir.join("other"), "other");
    let ca = s(&pki.ca_cert);
    let (client, client_key) = pki.client("client", KeyKind::EcdsaP256);
    let (stranger, stranger_key) = other.client("stranger", KeyKind::EcdsaP256);
    let state = subdir(&dir, "state");
    let servers = Server::both(
        &dir,
        "required",
        &[
            "--state-dir",
            s(&state),
            "--tls-cert",
            s(&cert),
            "--tls-key",
            s(&key),
            "--tls-client-ca",
            ca,
            "exec",
            "--",
            "/bin/true",
        ],
    );
    for server in &servers {
        let form = server.form;
        let url = server.url("/");
        let with = |c: &Path, k: &Path, extra: &[&str]| {
            let mut args = vec!["--cacert", ca, "--cert", s(c), "--key", s(k)];
            args.extend(extra);
            curl(&url, &args)
        };
        let ok = with(&client, &client_key, &[]);
        assert_eq!(
            (ok.status, ok.body.as_str()),
            (Some(200), HEALTHY),
            "{form}: {ok:?}"
        );
        let ok12 = with(&client, &client_key, &["--tls-max", "1.2"]);
        assert_eq!(ok12.status, Some(200), "{form}: {ok12:?}");

        for (what, got) in [
            (
                "another CA's certificate",
                with(&stranger, &stranger_key, &[]),
            ),
            (
                "another CA's certificate, TLS 1.2",
                with(&stranger, &stranger_key, &["--tls-max", "1.2"]),
            ),
            ("no certificate", curl(&url, &["--cacert", ca])),
            (
                "no certificate, TLS 1.2",
                curl(&url, &["--cacert", ca, "--tls-max", "1.2"]),
            ),
        ] {
            assert_eq!(got.status, None, "{form}, {what}: {got:?}");
            assert!(refused(got.exit), "{form}, {what}: {got:?}");
            assert!(!got.body.contains("healthy"), "{form}, {what}: {got:?}");
        }
        // s_client with another CA's certificate gets no HTTP either.
        let (code, out) = s_client_once(
            server.port,
            &[
                "-CAfile",
                ca,
                "-cert",
                s(&stranger),
                "-key",
                s(&stranger_key),
            ],
            GET,
        );
        assert!(!out.contains("HTTP/1.1"), "{form}: exit {code}: {out}");
        let (code, out) = s_client_once(
            server.port,
            &["-CAfile", ca, "-cert", s(&client), "-key", s(&client_key)],
            GET,
        );
        assert!(
            out.contains("HTTP/1.1 200 OK"),
            "{form}: exit {code}: {out}"
        );

        // The refusals are logged with rustls' reason and no HTTP status.
        server.wait_log("3 answers and 5 refusals", |t| {
            let lines = connections(t);
            let refused = |why: &str| {
                lines
                    .iter()
                    .filter(|l| l.contains(" status=- ") && l.contains(why))
                    .count()
            };
            lines.iter().filter(|l| l.contains(" status=200 ")).count() == 3
                && refused("reason=\"TLS: invalid peer certificate: UnknownIssuer\"") == 3
                && refused("reason=\"TLS: peer sent no certificates\"") == 2
        });
    }
}

/// `--tls-client-auth optional`: a client without a certificate is
/// served; one with a certificate of another CA is still refused.
#[test]
fn client_certificates_optional() {
    let dir = TempDir::new("tls-mtls-optional");
    let (pki, cert, key) = pki_and_server(&dir, KeyKind::EcdsaP256);
    let other = Pki::new(&dir.join("other"), "other");
    let ca = s(&pki.ca_cert);
    let (client, client_key) = pki.client("client", KeyKind::Ed25519);
    let (stranger, stranger_key) = other.client("stranger", KeyKind::Rsa2048);
    let state = subdir(&dir, "state");
    let servers = Server::both(
        &dir,
        "optional",
        &[
            "--state-dir",
            s(&state),
            "--tls-cert",
            s(&cert),
            "--tls-key",
            s(&key),
            "--tls-client-ca",
            ca,
            "--tls-client-auth",
            "optional",
            "exec",
            "--",
            "/bin/true",
        ],
    );
    for server in &servers {
        let form = server.form;
        let url = server.url("/");
        let none = curl(&url, &["--cacert", ca]);
        assert_eq!(
            (none.status, none.body.as_str()),
            (Some(200), HEALTHY),
            "{form}: {none:?}"
        );
        let ok = curl(
            &url,
            &[
                "--cacert",
                ca,
                "--cert",
                s(&client),
                "--key",
                s(&client_key),
            ],
        );
        assert_eq!(ok.status, Some(200), "{form}: {ok:?}");
        let stranger = curl(
            &url,
            &[
                "--cacert",
                ca,
                "--cert",
                s(&stranger),
                "--key",
                s(&stranger_key),
            ],
        );
        assert_eq!(stranger.status, None, "{form}: {stranger:?}");
        assert!(refused(stranger.exit), "{form}: {stranger:?}");
        server.wait_log("2 answers and a refusal", |t| {
            let lines = connections(t);
            lines.iter().filter(|l| l.contains(" status=200 ")).count() == 2
                && lines.iter().any(|l| l.contains(" status=- "))
        });
    }
}

// --- 5. Plaintext on a TLS port, TLS on a plaintext port ----------------------------

/// Plaintext HTTP on a port that serves HTTPS only gets a 400 that says to
/// use https://, and no check runs; with `--tls-plaintext` both are served.
#[test]
fn plaintext_http_on_a_tls_port() {
    let dir = TempDir::new("tls-plaintext");
    let (pki, cert, key) = pki_and_server(&dir, KeyKind::EcdsaP256);
    let ca = s(&pki.ca_cert);
    let state = subdir(&dir, "state");
    let runs = dir.join("runs");
    std::fs::write(&runs, "").unwrap();
    let count = dir.script("count", &format!("echo run >> {}", runs.display()));
    let ran = || std::fs::read_to_string(&runs).unwrap().lines().count();
    let tls = [
        "--state-dir",
        s(&state),
        "--tls-cert",
        s(&cert),
        "--tls-key",
        s(&key),
    ];
    let check = ["exec", "--", s(&count)];
    let only = Server::both(&dir, "only", &[&tls[..], &check[..]].concat());
    for server in &only {
        let form = server.form;
        let before = ran();
        let plain = curl_http(&format!("http://127.0.0.1:{}/", server.port), &[]);
        assert_eq!(
            (plain.exit, plain.status, plain.body.as_str()),
            (0, Some(400), HINT),
            "{form}: {plain:?}"
        );
        server.wait_log("the 400", |t| {
            t.contains(" status=400 reason=\"plaintext HTTP on a TLS port\"")
        });
        assert_eq!(ran(), before, "{form}: plaintext ran the check");
        let https = curl(&server.url("/"), &["--cacert", ca]);
        assert_eq!(https.status, Some(200), "{form}: {https:?}");
        assert_eq!(ran(), before + 1, "{form}");
    }

    let both = Server::both(
        &dir,
        "both",
        &[&tls[..], &["--tls-plaintext"], &check[..]].concat(),
    );
    for server in &both {
        let form = server.form;
        let plain = curl_http(&format!("http://127.0.0.1:{}/", server.port), &[]);
        assert_eq!(
            (plain.status, plain.body.as_str()),
            (Some(200), HEALTHY),
            "{form}: {plain:?}"
        );
        let https = curl(&server.url("/"), &["--cacert", ca]);
        assert_eq!(
            (https.status, https.body.as_str()),
            (Some(200), HEALTHY),
            "{form}: {https:?}"
        );
        server.wait_log("one answer in plaintext, one over TLS", |t| {
            let lines = connections(t);
            lines.len() == 2
                && !lines[0].contains(" tls=")
                && lines[1].ends_with(" tls=full")
                && lines.iter().all(|l| l.contains(" status=200 "))
        });
    }
}

/// The same from the config file: `tls-plaintext = true`.
#[test]
fn tls_plaintext_in_the_config_file() {
    let dir = TempDir::new("tls-plaintext-config");
    let (pki, cert, key) = pki_and_server(&dir, KeyKind::EcdsaP256);
    let state = subdir(&dir, "state");
    let config = |name: &str, extra: &str| {
        let path = dir.join(name);
        std::fs::write(
            &path,
            format!(
                "tls-cert = \"{}\"\ntls-key = \"{}\"\nstate-dir = \"{}\"\n{extra}\
                 [checks.ok]\nkind = \"exec\"\ncommand = [\"/bin/true\"]\n",
                cert.display(),
                key.display(),
                state.display()
            ),
        )
        .unwrap();
        path
    };
    let only = config("only.toml", "");
    let both = config("both.toml", "tls-plaintext = true\n");
    let only = Server::per_connection(&dir, "only", &["--config", s(&only)]);
    let both = Server::per_connection(&dir, "both", &["--config", s(&both)]);
    let plain = |server: &Server| curl_http(&format!("http://127.0.0.1:{}/", server.port), &[]);
    let got = plain(&only);
    assert_eq!(
        (got.status, got.body.as_str()),
        (Some(400), HINT),
        "{got:?}"
    );
    let got = plain(&both);
    assert_eq!(got.status, Some(200), "{got:?}");
    for server in [&only, &both] {
        let got = curl(&server.url("/"), &["--cacert", s(&pki.ca_cert)]);
        assert_eq!(got.status, Some(200), "{got:?}");
    }
}

/// HAProxy's plain `check` (no `check-ssl`) against a TLS-only port sees
/// the 400: the server is DOWN with L7STS, and the operator sees why.
#[test]
fn haproxy_without_check_ssl_sees_the_400() {
    let dir = TempDir::new("tls-haproxy-plain");
    let (_pki, cert, key) = pki_and_server(&dir, KeyKind::EcdsaP256);
    let state = subdir(&dir, "state");
    let server = Server::per_connection(
        &dir,
        "server",
        &[
            "--state-dir",
            s(&state),
            "--tls-cert",
            s(&cert),
            "--tls-key",
            s(&key),
            "exec",
            "--",
            "/bin/true",
        ],
    );
    let haproxy = Haproxy::start(server.port, &[]);
    let down = haproxy
        .wait_for_state(IO_TIMEOUT, |s| {
            s.status.starts_with("DOWN") && s.check_code == "400"
        })
        .unwrap();
    assert_eq!(down.check_status, "L7STS", "{down:?}");
}

/// A ClientHello on a port without a certificate is answered with a TLS
/// alert (handshake_failure), not an HTTP 400 curl would choke on: curl
/// says "alert handshake failure" (35), the log names it, and plaintext
/// HTTP on that port is served as ever.
#[test]
fn a_client_hello_on_a_plaintext_port() {
    let dir = TempDir::new("tls-on-plaintext");
    let servers = Server::both(&dir, "plain", &["exec", "--", "/bin/true"]);
    for server in &servers {
        let form = server.form;
        let got = curl(&server.url("/"), &["-k"]);
        assert_eq!((got.exit, got.status), (35, None), "{form}: {got:?}");
        assert!(
            got.stderr.contains("alert handshake failure"),
            "{form}: {got:?}"
        );
        let log = server.wait_log("the handshake logged", |t| {
            t.contains("TLS handshake on a plaintext port")
        });
        let line = connections(&log)
            .into_iter()
            .find(|l| l.contains("TLS handshake on a plaintext port"))
            .unwrap();
        assert!(
            line.contains(
                "reason=\"TLS handshake on a plaintext port (an https:// client; this service has no tls-cert)\""
            ),
            "{form}: {line}"
        );
        assert!(!line.contains("status=400"), "{form}: {line}");
        assert!(!line.contains(" tls="), "{form}: {line}");

        let plain = curl_http(&format!("http://127.0.0.1:{}/", server.port), &[]);
        assert_eq!(
            (plain.status, plain.body.as_str()),
            (Some(200), HEALTHY),
            "{form}: {plain:?}"
        );
    }
}

// --- 6. What --check-config refuses ---------------------------------------------------

/// `--check-config` on `config.toml` in `dir` with `tls` (top-level lines)
/// and one exec check: its exit code and stderr.
fn check_config(dir: &TempDir, tls: &str) -> (i32, String) {
    let path = dir.join("config.toml");
    std::fs::write(
        &path,
        format!("{tls}\n[checks.ok]\nkind = \"exec\"\ncommand = [\"/bin/true\"]\n"),
    )
    .unwrap();
    run(&["--config", s(&path), "--check-config"])
}

/// The binary with `args`, bounded: its exit code and stderr.
fn run(args: &[&str]) -> (i32, String) {
    let (code, _, stderr) = run_with_stdin(Command::new(BIN).args(args), "", IO_TIMEOUT).unwrap();
    (code.unwrap_or(-1), stderr)
}

fn cert_and_key(cert: &Path, key: &Path) -> String {
    format!(
        "tls-cert = \"{}\"\ntls-key = \"{}\"",
        cert.display(),
        key.display()
    )
}

/// A private key others may read is refused; one only its group may read
/// (Debian's ssl-cert group) is accepted.
#[test]
fn check_config_refuses_a_key_others_may_read() {
    let dir = TempDir::new("tls-key-mode");
    let (_pki, cert, key) = pki_and_server(&dir, KeyKind::EcdsaP256);
    let tls = cert_and_key(&cert, &key);

    let (code, err) = check_config(&dir, &tls);
    assert_eq!(code, 0, "mode 0600: {err}");

    chmod(&key, 0o644);
    let (code, err) = check_config(&dir, &tls);
    assert_ne!(code, 0, "mode 0644 accepted: {err}");
    assert!(err.contains("must not be readable by others"), "{err}");
    assert!(err.contains(s(&key)), "{err}");
    // And on the command line, the same.
    let (code, err) = run(&[
        "--tls-cert",
        s(&cert),
        "--tls-key",
        s(&key),
        "--config",
        s(&dir.join("config.toml")),
        "--check-config",
    ]);
    assert_ne!(code, 0, "{err}");
    assert!(err.contains("must not be readable by others"), "{err}");

    chmod(&key, 0o640);
    let (code, err) = check_config(&dir, &tls);
    assert_eq!(code, 0, "mode 0640: {err}");
}

/// The certificate and key are loaded by `--check-config`: missing, not
/// PEM, or a key that is not the certificate's, and it fails naming the
/// file.
#[test]
fn check_config_loads_the_certificate_and_key() {
    let dir = TempDir::new("tls-check-config");
    let pki = Pki::new(&dir.join("pki"), "ca");
    let (cert, key) = pki.server("server", KeyKind::EcdsaP256, 30);
    let (_, other_key) = pki.server("other", KeyKind::EcdsaP256, 30);
    let missing = dir.join("missing.pem");
    let not_pem = dir.join("not-pem.pem");
    std::fs::write(&not_pem, "this is no certificate\n").unwrap();

    let (code, err) = check_config(&dir, &cert_and_key(&cert, &key));
    assert_eq!(code, 0, "{err}");

    for (what, tls, file, why) in [
        (
            "a missing certificate",
            cert_and_key(&missing, &key),
            &missing,
            "no such file",
        ),
        (
            "a missing key",
            cert_and_key(&cert, &missing),
            &missing,
            "no such file",
        ),
        (
            "a certificate that is not PEM",
            cert_and_key(&not_pem, &key),
            &not_pem,
            "no certificate",
        ),
        (
            "a key of another certificate",
            cert_and_key(&cert, &other_key),
            &other_key,
            "the key does not match the certificate",
        ),
        (
            "a client CA that is not PEM",
            format!(
                "{}\ntls-client-ca = \"{}\"",
                cert_and_key(&cert, &key),
                not_pem.display()
            ),
            &not_pem,
            "no certificate",
        ),
    ] {
        let (code, err) = check_config(&dir, &tls);
        assert_ne!(code, 0, "{what} accepted: {err}");
        assert!(err.contains(s(file)), "{what}: {err}");
        assert!(err.contains(why), "{what}: {err}");
    }
}

/// TLS keys that do not go together are refused where they are written
/// (file:line:col), and on the command line.
#[test]
fn check_config_refuses_tls_keys_that_do_not_go_together() {
    let dir = TempDir::new("tls-config-keys");
    let (pki, cert, key) = pki_and_server(&dir, KeyKind::EcdsaP256);
    let ca = pki.ca_cert.display();
    let config = s(&dir.join("config.toml")).to_owned();
    for (what, tls, at, why) in [
        (
            "tls-cert alone",
            format!("tls-cert = \"{}\"", cert.display()),
            "1:12",
            "tls-cert and tls-key go together",
        ),
        (
            "tls-key alone",
            format!("tls-key = \"{}\"", key.display()),
            "1:11",
            "tls-cert and tls-key go together",
        ),
        (
            "tls-client-auth without tls-client-ca",
            format!(
                "{}\ntls-client-auth = \"optional\"",
                cert_and_key(&cert, &key)
            ),
            "3:19",
            "tls-client-auth without tls-client-ca",
        ),
        (
            "a bad tls-client-auth",
            format!(
                "{}\ntls-client-ca = \"{ca}\"\ntls-client-auth = \"sometimes\"",
                cert_and_key(&cert, &key)
            ),
            "4:19",
            "tls-client-auth is \"required\" or \"optional\"",
        ),
        (
            "tls-plaintext without a certificate",
            "tls-plaintext = true".to_owned(),
            "1:17",
            "TLS settings without tls-cert and tls-key",
        ),
        (
            "tls-client-ca without a certificate",
            format!("tls-client-ca = \"{ca}\""),
            "1:17",
            "TLS settings without tls-cert and tls-key",
        ),
        (
            "plaintext beside required client certificates",
            format!(
                "{}\ntls-client-ca = \"{ca}\"\ntls-plaintext = true",
                cert_and_key(&cert, &key)
            ),
            "4:17",
            "tls-plaintext with tls-client-ca",
        ),
    ] {
        let (code, err) = check_config(&dir, &tls);
        assert_ne!(code, 0, "{what} accepted: {err}");
        assert!(
            err.contains(&format!("{config}:{at}: {why}")),
            "{what}: {err}"
        );
    }
    // The settings that do go together pass.
    for tls in [
        format!(
            "{}\ntls-client-ca = \"{ca}\"\ntls-client-auth = \"optional\"",
            cert_and_key(&cert, &key)
        ),
        format!("{}\ntls-plaintext = true", cert_and_key(&cert, &key)),
    ] {
        let (code, err) = check_config(&dir, &tls);
        assert_eq!(code, 0, "{tls}: {err}");
    }

    // The command line: each flag needs its partner.
    let (cert, key, ca) = (s(&cert), s(&key), s(&pki.ca_cert));
    for (what, args, names) in [
        ("--tls-cert alone", vec!["--tls-cert", cert], "--tls-key"),
        ("--tls-key alone", vec!["--tls-key", key], "--tls-cert"),
        (
            "--tls-client-auth without --tls-client-ca",
            vec![
                "--tls-cert",
                cert,
                "--tls-key",
                key,
                "--tls-client-auth",
                "optional",
            ],
            "--tls-client-ca",
        ),
        (
            "a bad --tls-client-auth",
            vec![
                "--tls-cert",
                cert,
                "--tls-key",
                key,
                "--tls-client-ca",
                ca,
                "--tls-client-auth",
                "sometimes",
            ],
            "sometimes",
        ),
        (
            "--tls-plaintext without a certificate",
            vec!["--tls-plaintext"],
            "--tls-cert",
        ),
    ] {
        let mut argv = args.clone();
        argv.extend(["exec", "--", "/bin/true"]);
        let (code, err) = run(&argv);
        assert_ne!(code, 0, "{what} accepted: {err}");
        assert!(err.contains(names), "{what}: {err}");
    }
}

// --- 7. The certificate's expiry as a metric ------------------------------------------

/// `/metrics` (and `?format=prometheus`) says when the certificate served
/// expires, its notAfter to the second, in both forms; a port without TLS
/// has no such gauge.
#[test]
fn expiry_metric_is_the_certificates_not_after() {
    let dir = TempDir::new("tls-metric");
    let (pki, cert, key) = pki_and_server(&dir, KeyKind::EcdsaP256);
    let ca = s(&pki.ca_cert);
    let (_, not_after) = validity_of(&cert);
    let state = subdir(&dir, "state");
    let servers = Server::both(
        &dir,
        "metric",
        &[
            "--state-dir",
            s(&state),
            "--tls-cert",
            s(&cert),
            "--tls-key",
            s(&key),
            "exec",
            "--",
            "/bin/true",
        ],
    );
    for server in &servers {
        for path in ["/metrics", "/?format=prometheus"] {
            let got = curl(&server.url(path), &["--cacert", ca]);
            assert_eq!(got.status, Some(200), "{} {path}: {got:?}", server.form);
            assert_eq!(
                expiry_in(&got.body),
                Some(not_after),
                "{} {path}: {}",
                server.form,
                got.body
            );
        }
    }
    let plain = Server::per_connection(&dir, "plain", &["exec", "--", "/bin/true"]);
    let got = curl_http(&format!("http://127.0.0.1:{}/metrics", plain.port), &[]);
    assert_eq!(got.status, Some(200), "{got:?}");
    assert!(got.body.contains("inetd_health_check_success"), "{got:?}");
    assert!(!got.body.contains(EXPIRY), "{got:?}");
}

/// The expiry gauge's value in a Prometheus exposition.
fn expiry_in(body: &str) -> Option<i64> {
    body.lines()
        .find_map(|l| l.strip_prefix(EXPIRY)?.strip_prefix(' '))
        .map(|v| v.trim().parse().unwrap())
}

// --- 8. Renewal on disk, and an expiry coming --------------------------------------------

/// The leaf certificate s_client was served (the PEM block after "Server
/// certificate").
fn served_certificate(port: u16, ca: &Path) -> Result<String, String> {
    let (code, out) = s_client_once(port, &["-CAfile", s(ca)], b"");
    let start = out
        .find("-----BEGIN CERTIFICATE-----")
        .ok_or_else(|| format!("no certificate (exit {code}): {out}"))?;
    let end = out[start..]
        .find("-----END CERTIFICATE-----")
        .ok_or_else(|| format!("a certificate cut short: {out}"))?;
    Ok(format!(
        "{}-----END CERTIFICATE-----\n",
        &out[start..start + end]
    ))
}

/// Copies `from` onto `to` as a renewal does: written beside it, then
/// renamed over it (the mode kept: a key stays 0600).
fn replace(from: &Path, to: &Path) {
    let tmp = to.with_extension("new");
    std::fs::copy(from, &tmp).unwrap();
    std::fs::rename(&tmp, to).unwrap();
}

/// `--listen` serves a certificate renewed on disk (certificate and key
/// replaced by rename) to new connections within 2 s, with no signal; a
/// corrupt renewal is not served (the last good one stays) and the log
/// says it cannot be.
#[test]
fn long_lived_serves_a_renewed_certificate() {
    let dir = TempDir::new("tls-renewal");
    let pki = Pki::new(&dir.join("pki"), "ca");
    let (old_cert, old_key) = pki.server("old", KeyKind::EcdsaP256, 30);
    let (new_cert, new_key) = pki.server("new", KeyKind::EcdsaP256, 90);
    let cert = dir.join("served.pem");
    let key = dir.join("served.key");
    std::fs::copy(&old_cert, &cert).unwrap();
    std::fs::copy(&old_key, &key).unwrap();
    assert_eq!(mode(&key), 0o600);
    let server = Server::long_lived(
        &dir,
        "listen",
        &[
            "--tls-cert",
            s(&cert),
            "--tls-key",
            s(&key),
            "exec",
            "--",
            "/bin/true",
        ],
    );
    let read = |p: &Path| std::fs::read_to_string(p).unwrap();
    let served = || served_certificate(server.port, &pki.ca_cert);
    let expiry = || {
        let got = curl(&server.url("/metrics"), &["--cacert", s(&pki.ca_cert)]);
        expiry_in(&got.body)
    };
    assert_eq!(served().unwrap(), read(&old_cert));
    assert_eq!(expiry(), Some(validity_of(&old_cert).1));

    // Renewed: the key first, then the certificate, each by a rename.
    replace(&new_key, &key);
    replace(&new_cert, &cert);
    let renewed = Instant::now();
    let mut last = Ok(String::new());
    let switched = wait_until(Duration::from_secs(5), Duration::from_millis(50), || {
        last = served();
        last.as_deref() == Ok(read(&new_cert).as_str())
    });
    let took = renewed.elapsed();
    assert!(switched, "still served after 5 s: {last:?}");
    assert!(
        took <= Duration::from_millis(2500),
        "the renewal took {took:?} to be served"
    );
    eprintln!("renewal served after {took:?}");
    assert_eq!(expiry(), Some(validity_of(&new_cert).1));
    let ok = curl(&server.url("/"), &["--cacert", s(&pki.ca_cert)]);
    assert_eq!(
        (ok.status, ok.body.as_str()),
        (Some(200), HEALTHY),
        "{ok:?}"
    );

    // A corrupt renewal: the certificate cut in half.
    let refusals = |t: &str| t.matches("cannot be served").count();
    let before = refusals(&server.log());
    let text = read(&new_cert);
    let broken = dir.join("broken.pem");
    std::fs::write(&broken, &text[..text.len() / 2]).unwrap();
    replace(&broken, &cert);
    server.wait_log("the corrupt certificate refused", |t| refusals(t) > before);
    assert_eq!(served().unwrap(), text, "the last good certificate");
    let ok = curl(&server.url("/"), &["--cacert", s(&pki.ca_cert)]);
    assert_eq!(ok.status, Some(200), "{ok:?}");
    assert_eq!(expiry(), Some(validity_of(&new_cert).1));

    // An expired "renewal" (with its own key, so the pair matches): not
    // served while the current one is valid.
    let (expired_cert, expired_key) = pki.server("expired", KeyKind::EcdsaP256, -1);
    replace(&expired_key, &key);
    replace(&expired_cert, &cert);
    server.wait_log("the expired certificate refused", |t| {
        t.contains("the new certificate is not valid now")
    });
    assert_eq!(served().unwrap(), text, "the last good certificate");
    assert_eq!(expiry(), Some(validity_of(&new_cert).1));
}

/// A renewal issued ahead of its time (notBefore 70 s from now) is not
/// served while it is not valid, said once, and served once it is, with no
/// signal and no change to the files.
#[test]
fn long_lived_serves_a_renewal_once_it_becomes_valid() {
    let dir = TempDir::new("tls-renewal-ahead");
    let pki = Pki::new(&dir.join("pki"), "ca");
    let (old_cert, old_key) = pki.server("old", KeyKind::EcdsaP256, 30);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let (ahead_cert, ahead_key) = pki.server_from("ahead", KeyKind::EcdsaP256, now + 70);
    let cert = dir.join("served.pem");
    let key = dir.join("served.key");
    std::fs::copy(&old_cert, &cert).unwrap();
    std::fs::copy(&old_key, &key).unwrap();
    let server = Server::long_lived(
        &dir,
        "listen",
        &[
            "--tls-cert",
            s(&cert),
            "--tls-key",
            s(&key),
            "exec",
            "--",
            "/bin/true",
        ],
    );
    let read = |p: &Path| std::fs::read_to_string(p).unwrap();
    let served = || served_certificate(server.port, &pki.ca_cert);
    assert_eq!(served().unwrap(), read(&old_cert));
    replace(&ahead_key, &key);
    replace(&ahead_cert, &cert);
    server.wait_log("the early renewal refused", |t| t.contains("not valid now"));
    assert_eq!(served().unwrap(), read(&old_cert), "served before its time");
    // Valid 70 s after it was issued, taken within the 60 s allowed for
    // clocks: from about 10 s from now.
    let switched = wait_until(Duration::from_secs(40), Duration::from_millis(200), || {
        served().is_ok_and(|c| c == read(&ahead_cert))
    });
    assert!(switched, "never served: {}", server.log());
    let log = server.log();
    assert_eq!(log.matches("not valid now").count(), 1, "said once: {log}");
}

/// `--check-config` warns when the certificate expires within 14 days, and
/// still passes; a certificate with longer to live gets no warning.
#[test]
fn check_config_warns_of_an_expiry_coming() {
    let dir = TempDir::new("tls-expiry-warning");
    let pki = Pki::new(&dir.join("pki"), "ca");
    let (soon, soon_key) = pki.server("soon", KeyKind::EcdsaP256, 3);
    let (later, later_key) = pki.server("later", KeyKind::EcdsaP256, 60);

    let (code, err) = check_config(&dir, &cert_and_key(&soon, &soon_key));
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("expires in"), "no warning: {err:?}");

    let (code, err) = check_config(&dir, &cert_and_key(&later, &later_key));
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains("expires in"), "{err}");
}

/// A session begun on a port without client certificates, sealed with the
/// same kept ticket key (one state directory), is not resumed on a port
/// that requires them: the client without a certificate gets a full
/// handshake and is refused in it, and no check answers it. The same for
/// a session begun under `optional` taken to `required`.
#[test]
fn a_session_from_laxer_rules_does_not_pass_client_certificates() {
    let dir = TempDir::new("tls-mtls-resume");
    let (pki, cert, key) = pki_and_server(&dir, KeyKind::EcdsaP256);
    let ca = s(&pki.ca_cert);
    let state = subdir(&dir, "state");
    let tls = [
        "--state-dir",
        s(&state),
        "--tls-cert",
        s(&cert),
        "--tls-key",
        s(&key),
    ];
    let with = |extra: &[&str]| -> Vec<String> {
        let mut args: Vec<String> = tls.iter().map(|a| a.to_string()).collect();
        args.extend(extra.iter().map(|a| a.to_string()));
        args.extend(["exec", "--", "/bin/true"].map(String::from));
        args
    };
    fn strs(v: &[String]) -> Vec<&str> {
        v.iter().map(String::as_str).collect()
    }
    let plain = Server::per_connection(&dir, "plain", &strs(&with(&[])));
    let optional = Server::per_connection(
        &dir,
        "optional",
        &strs(&with(&[
            "--tls-client-ca",
            ca,
            "--tls-client-auth",
            "optional",
        ])),
    );
    let required = Server::per_connection(&dir, "required", &strs(&with(&["--tls-client-ca", ca])));
    for (from, name) in [(&plain, "plain"), (&optional, "optional")] {
        let session = dir.join(&format!("{name}.session"));
        let (code, out) = s_client_once(
            from.port,
            &["-CAfile", ca, "-tls1_3", "-sess_out", s(&session)],
            GET,
        );
        assert_eq!(code, 0, "{out}");
        assert!(out.contains("HTTP/1.1 200 OK"), "{name}: {out}");
        // The session works where it began.
        let (_, out) = s_client_once(
            from.port,
            &["-CAfile", ca, "-tls1_3", "-sess_in", s(&session)],
            GET,
        );
        assert_eq!(reused_and_new(&out), (1, 0), "{name}: {out}");
        // Not where a certificate is required.
        let (_, out) = s_client_once(
            required.port,
            &["-CAfile", ca, "-tls1_3", "-sess_in", s(&session)],
            GET,
        );
        assert!(
            !out.contains("HTTP/1.1 200"),
            "{name} session on required: {out}"
        );
        assert!(
            !out.contains("Reused,"),
            "{name} session resumed on required: {out}"
        );
    }
    let log = required.wait_log("two refusals", |t| {
        t.matches("reason=\"TLS: peer sent no certificates\"")
            .count()
            == 2
    });
    assert!(!log.contains("status=200"), "{log}");
    assert!(!log.contains("tls=resumed"), "{log}");
}

/// One process per connection parses the key only at a full handshake;
/// the public half a key file carries is still compared with the
/// certificate at every poll. A key replaced by one that does not match is
/// refused even for a client that would resume (and sign nothing): no 200
/// for the poller that keeps its session, and the log says why.
#[test]
fn a_key_that_no_longer_matches_is_refused_even_to_a_resumed_session() {
    let dir = TempDir::new("tls-key-replaced");
    let (pki, cert, key) = pki_and_server(&dir, KeyKind::EcdsaP256);
    let (_, other_key) = pki.server("other", KeyKind::EcdsaP256, 30);
    let ca = s(&pki.ca_cert);
    let state = subdir(&dir, "state");
    let server = Server::per_connection(
        &dir,
        "replaced",
        &[
            "--state-dir",
            s(&state),
            "--tls-cert",
            s(&cert),
            "--tls-key",
            s(&key),
            "exec",
            "--",
            "/bin/true",
        ],
    );
    let session = dir.join("session.pem");
    let (_, out) = s_client_once(
        server.port,
        &["-CAfile", ca, "-tls1_3", "-sess_out", s(&session)],
        GET,
    );
    assert!(out.contains("HTTP/1.1 200 OK"), "{out}");
    let (_, out) = s_client_once(
        server.port,
        &["-CAfile", ca, "-tls1_3", "-sess_in", s(&session)],
        GET,
    );
    assert_eq!(reused_and_new(&out), (1, 0), "{out}");
    assert!(out.contains("HTTP/1.1 200 OK"), "{out}");

    replace(&other_key, &key);
    let (_, out) = s_client_once(
        server.port,
        &["-CAfile", ca, "-tls1_3", "-sess_in", s(&session)],
        GET,
    );
    assert!(
        !out.contains("HTTP/1.1 200"),
        "a mismatched key served: {out}"
    );
    server.wait_log("the mismatch named", |t| {
        t.contains("the key does not match the certificate")
    });
}
