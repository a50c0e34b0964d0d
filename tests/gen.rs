//! `gen`: every generated file is accepted by its real program's own
//! checker (xinetd started on it, `systemd-analyze verify`, `haproxy -c`,
//! `keepalived -t`, a YAML parser for Kubernetes), and the generated xinetd
//! and systemd set-ups answer when started.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use support::activate::{activate_unit, SERVICE_UNITS};
use support::client::{exchange, free_port};
use support::http::Response;
use support::procs::{output_with_input, require_program, stdout_of};
use support::tmp::TempDir;
use support::xinetd::run_config;

const IO_TIMEOUT: Duration = Duration::from_secs(10);
const GET: &[u8] = b"GET /ready HTTP/1.1\r\nHost: x\r\n\r\n";

/// A world-readable directory with a copy of the binary (the generated
/// xinetd stanza runs it as `nobody`) and a config of two passing checks.
fn setup() -> (TempDir, PathBuf, PathBuf) {
    let dir = TempDir::new("gen");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let bin = dir.join("inetd-health");
    support::procs::copy_executable(Path::new(support::inetd_health_bin()), &bin);
    let config = dir.join("config.toml");
    std::fs::write(
        &config,
        "[checks.a]\nkind = \"exec\"\ncommand = [\"/bin/true\"]\n\
         [checks.b]\nkind = \"exec\"\ncommand = [\"/bin/true\"]\n\
         [routes]\n\"/live\" = [\"a\"]\n\"/ready\" = [\"a\", \"b\"]\n",
    )
    .unwrap();
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o644)).unwrap();
    (dir, bin, config)
}

fn gen(bin: &Path, config: &Path, args: &[&str]) -> String {
    stdout_of(
        Command::new(bin)
            .args(["--config", config.to_str().unwrap(), "gen"])
            .args(args),
    )
}

fn answers(port: u16) -> u16 {
    let ex = exchange(port, GET, IO_TIMEOUT);
    ex.assert_clean_close();
    Response::parse(&ex.bytes)
        .unwrap_or_else(|e| panic!("{e}: {:?}", ex.text()))
        .status
}

#[test]
fn xinetd_stanza_is_sized_for_the_pollers_and_serves() {
    let (dir, bin, config) = setup();
    let port = free_port();
    let stanza = gen(
        &bin,
        &config,
        &[
            "xinetd",
            "--port",
            &port.to_string(),
            "--pollers",
            "20",
            "--interval",
            "1s",
        ],
    );
    // 20 polls a second: cps well above, instances for 4.5 s of them twice.
    assert!(stanza.contains("\tcps             = 80 5\n"), "{stanza}");
    assert!(stanza.contains("\tinstances       = 180\n"), "{stanza}");
    assert!(stanza.contains("\tuser            = nobody\n"), "{stanza}");
    let conf = format!(
        "defaults\n{{\n\tlog_type = FILE {}\n\tlog_on_success = PID EXIT\n}}\n{stanza}",
        dir.join("xinetd.log").display()
    );
    let mut process = run_config(&dir, &conf, port);
    assert_eq!(answers(port), 200);
    process.stop();
}

#[test]
fn systemd_units_verify_and_their_exec_start_lines_serve() {
    let analyze = require_program("systemd-analyze");
    let (dir, bin, config) = setup();
    let units = dir.join("units");
    gen(
        &bin,
        &config,
        &["systemd", "--output-dir", units.to_str().unwrap()],
    );
    for unit in [
        "inetd-health.socket",
        "inetd-health@.service",
        "inetd-health-daemon.socket",
        "inetd-health-daemon.service",
    ] {
        let out = Command::new(&analyze)
            .args(["verify", units.join(unit).to_str().unwrap()])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && err.trim().is_empty(),
            "{unit}: {err}"
        );
    }
    for (unit, flags) in SERVICE_UNITS {
        let text = std::fs::read_to_string(units.join(unit)).unwrap();
        let (mut process, port) = activate_unit(&dir, &text, flags);
        assert_eq!(answers(port), 200, "{unit}");
        process.stop();
    }
}

#[test]
fn haproxy_keepalived_and_k8s_accept_theirs() {
    let (dir, bin, config) = setup();
    let haproxy = gen(&bin, &config, &["haproxy", "--port", "9200"]);
    assert!(
        haproxy.contains("http-check send meth GET uri /ready ver HTTP/1.1"),
        "{haproxy}"
    );
    let with_agent = stdout_of(Command::new(&bin).args([
        "--agent",
        "--config",
        config.to_str().unwrap(),
        "gen",
        "haproxy",
    ]));
    assert!(
        with_agent.contains(" agent-check agent-port 9200 "),
        "{with_agent}"
    );
    let cfg = dir.join("haproxy.cfg");
    std::fs::write(
        &cfg,
        format!(
            "defaults\n    mode http\n    timeout client 5s\nfrontend fe\n    bind 127.0.0.1:{}\n    default_backend inetd_health_checked\n{haproxy}",
            free_port()
        ),
    )
    .unwrap();
    let out = Command::new(require_program("haproxy"))
        .args(["-c", "-f", cfg.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "haproxy -c: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("WARNING"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let keepalived = gen(&bin, &config, &["keepalived"]);
    // The digest of /ready's healthy answer (two checks), as genhash
    // prints it.
    let digest = format!("digest {}", md5_of("healthy: 2 checks passed\n"));
    assert!(keepalived.contains(&digest), "{digest} not in {keepalived}");
    let conf = dir.join("keepalived.conf");
    std::fs::write(&conf, &keepalived).unwrap();
    let out = Command::new(require_program("keepalived"))
        .args(["-t", "-f", conf.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "keepalived -t: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    let k8s = gen(
        &bin,
        &config,
        &["k8s", "--port", "9300", "--interval", "5s"],
    );
    let yaml = dir.join("probes.yaml");
    std::fs::write(&yaml, &k8s).unwrap();
    let check = "import sys, yaml\n\
                 d = yaml.safe_load(open(sys.argv[1]))\n\
                 assert d['readinessProbe']['httpGet'] == {'path': '/ready', 'port': 9300}, d\n\
                 assert d['livenessProbe']['httpGet'] == {'path': '/live', 'port': 9300}, d\n\
                 assert d['readinessProbe']['periodSeconds'] == 5, d\n";
    let out = Command::new("/usr/bin/python3")
        .args(["-c", check, yaml.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{k8s}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let tcpserver = gen(&bin, &config, &["tcpserver"]);
    assert!(
        tcpserver.contains(&format!(
            "tcpserver -RHl0 -c 16 127.0.0.1 9200 {} --config ",
            bin.canonicalize().unwrap().display()
        )),
        "{tcpserver}"
    );
}

/// MD5 through coreutils' md5sum, a reference independent of ours.
fn md5_of(text: &str) -> String {
    let out = output_with_input(&mut Command::new("md5sum"), text.as_bytes());
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned()
}

/// Without a config file: the serving options before `gen`, the check
/// after `--`, as the launcher will run them.
#[test]
fn gen_from_a_check_on_the_command_line() {
    let (_dir, bin, _config) = setup();
    let stanza = stdout_of(Command::new(&bin).args([
        "--timeout",
        "1s",
        "gen",
        "xinetd",
        "--pollers",
        "10",
        "--interval",
        "1s",
        "--",
        "exec",
        "--",
        "/bin/true",
    ]));
    assert!(
        stanza.contains("\tserver_args     = --timeout 1s exec -- /bin/true\n"),
        "{stanza}"
    );
    // 10 polls a second, each at most 2 s + 1 s + 0.5 s: twice 35.
    assert!(stanza.contains("\tinstances       = 70\n"), "{stanza}");
    let none = Command::new(&bin).args(["gen", "xinetd"]).output().unwrap();
    assert_eq!(none.status.code(), Some(64));
}

/// With a config file, every serving option given before `gen` reaches
/// the launcher's command line as written, not only `--config`.
#[test]
fn gen_with_a_config_keeps_the_serving_options_given() {
    let (_dir, bin, config) = setup();
    let stanza = stdout_of(
        Command::new(&bin)
            .args(["--read-timeout", "3s", "--allow", "127.0.0.1", "--config"])
            .arg(&config)
            .args(["gen", "xinetd"]),
    );
    let expected = format!(
        "\tserver_args     = --read-timeout 3s --allow 127.0.0.1 --config {}\n",
        config.display()
    );
    assert!(stanza.contains(&expected), "{expected} not in {stanza}");
    assert!(
        stanza.contains("\tonly_from       = 127.0.0.1/32\n"),
        "{stanza}"
    );
}
