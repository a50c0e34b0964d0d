//! `gen`: every generated file is accepted by its real program's own
//! checker (xinetd started on it, `systemd-analyze verify`, `haproxy -c`,
//! `keepalived -t`, a YAML parser for Kubernetes), and the generated xinetd
//! and systemd set-ups answer when started.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use inetd_health_testkit::activate::{activate_unit, exec_start, exec_start_parsed, SERVICE_UNITS};
use inetd_health_testkit::client::{exchange, free_port};
use inetd_health_testkit::http::Response;
use inetd_health_testkit::procs::{copy_executable, output_with_input, require_program, stdout_of};
use inetd_health_testkit::tcpserver;
use inetd_health_testkit::tmp::TempDir;
use inetd_health_testkit::xinetd::run_config;

/// The binary under test, as Cargo built it for this package's tests.
const BIN: &str = env!("CARGO_BIN_EXE_inetd-health");

const IO_TIMEOUT: Duration = Duration::from_secs(10);
const GET: &[u8] = b"GET /ready HTTP/1.1\r\nHost: x\r\n\r\n";

/// The user `gen` writes by default.
const USER: &str = "inetd-health";

/// The system user `inetd-health`, created as the Debian package's
/// postinst would when it is missing (the package test may have purged
/// it). gen refuses a user that does not exist, and the default one is
/// what these tests serve as: the glue users get is the glue tested.
/// Left in place: creating it again is a no-op, for the package too.
fn ensure_user() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if id_of(USER, "-u").is_some() {
            return;
        }
        let out = Command::new(require_program("adduser"))
            .args(["--system", "--group", "--no-create-home", USER])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "adduser: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    });
}

/// `id FLAG USER` (`-u`, `-g`), or `None` if there is no such user.
fn id_of(user: &str, flag: &str) -> Option<u32> {
    let out = Command::new("id").args([flag, user]).output().unwrap();
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().parse().unwrap())
}

/// A world-readable directory with a copy of the binary (the generated
/// launchers run it as the `inetd-health` user) and a config of two
/// passing checks, mode 0644.
fn setup() -> (TempDir, PathBuf, PathBuf) {
    ensure_user();
    let dir = TempDir::new("gen");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let bin = dir.join("inetd-health");
    copy_executable(Path::new(BIN), &bin);
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

/// `bin ARGS`, expected to fail: its output.
fn refused(bin: &Path, args: &[&str]) -> Output {
    let out = Command::new(bin).args(args).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(64),
        "{args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout.is_empty(), "{args:?} wrote {:?}", out.stdout);
    out
}

/// A private xinetd on a generated stanza (written for `port`), logging
/// into `dir`: the status of a GET of /ready.
fn serve_stanza(dir: &TempDir, stanza: &str, port: u16) -> u16 {
    let conf = format!(
        "defaults\n{{\n\tlog_type = FILE {}\n\tlog_on_success = PID EXIT\n}}\n{stanza}",
        dir.join("xinetd.log").display()
    );
    let mut process = run_config(dir, &conf, port);
    let status = answers(port);
    process.stop();
    status
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
    assert!(
        stanza.contains("\tuser            = inetd-health\n"),
        "{stanza}"
    );
    assert!(stanza.contains("\tgroups          = yes\n"), "{stanza}");
    // The config is 0644 root: the user reads it, and the service answers.
    assert_eq!(serve_stanza(&dir, &stanza, port), 200);
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

/// `systemctl reload` on the systemd found: Debian 12's 252 has no
/// `Type=notify-reload`, so the daemon unit sends SIGHUP by
/// `ExecReload=`; a unit for 253 and later lets systemd send it and wait.
#[test]
fn the_daemon_unit_reloads_as_the_systemd_it_is_for_can() {
    let (dir, bin, config) = setup();
    let here = std::process::Command::new("systemctl")
        .arg("--version")
        .output()
        .unwrap();
    let here = String::from_utf8_lossy(&here.stdout);
    let version: u32 = here
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("systemctl --version: {here}"));
    for (flags, new_enough) in [
        (vec![], version >= 253),
        (vec!["--systemd-version", "252"], false),
        (vec!["--systemd-version", "254"], true),
    ] {
        let units = dir.join(&format!("units-{}", flags.join("-")));
        let mut args = vec!["systemd", "--output-dir", units.to_str().unwrap()];
        args.extend(flags.iter().copied());
        gen(&bin, &config, &args);
        let text = std::fs::read_to_string(units.join("inetd-health-daemon.service")).unwrap();
        let lines: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
        if new_enough {
            assert!(lines.contains(&"Type=notify-reload"), "{flags:?}: {text}");
            assert!(
                !lines.iter().any(|l| l.starts_with("ExecReload=")),
                "{text}"
            );
        } else {
            assert!(lines.contains(&"Type=notify"), "{flags:?}: {text}");
            assert!(
                lines.contains(&"ExecReload=/bin/kill -HUP $MAINPID"),
                "{flags:?}: {text}"
            );
        }
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
        "--agent-route",
        "/ready",
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
            "tcpserver -RHl0 -u {} -g {} -c 16 -b {} 127.0.0.1 9200 {} --config ",
            id_of(USER, "-u").unwrap(),
            id_of(USER, "-g").unwrap(),
            somaxconn(),
            bin.canonicalize().unwrap().display()
        )),
        "{tcpserver}"
    );
}

/// The system's maximum listen queue, `--backlog`'s default.
fn somaxconn() -> u32 {
    std::fs::read_to_string("/proc/sys/net/core/somaxconn")
        .unwrap()
        .trim()
        .parse()
        .unwrap()
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

// --- The user, and what it must reach --------------------------------------

/// The written glue runs the service as `inetd-health`, with its group,
/// never as `nobody` and never as a dynamic user; `--user` chooses another.
#[test]
fn the_default_user_is_ours_never_nobody() {
    let (dir, bin, config) = setup();
    let stanza = gen(&bin, &config, &["xinetd"]);
    assert!(
        stanza.contains("\tuser            = inetd-health\n"),
        "{stanza}"
    );
    assert!(
        stanza.contains("\tgroup           = inetd-health\n"),
        "{stanza}"
    );
    assert!(!stanza.contains("nobody"), "{stanza}");

    let units = dir.join("units");
    gen(
        &bin,
        &config,
        &["systemd", "--output-dir", units.to_str().unwrap()],
    );
    for (unit, _) in SERVICE_UNITS {
        let text = std::fs::read_to_string(units.join(unit)).unwrap();
        assert!(
            text.contains("\nUser=inetd-health\nGroup=inetd-health\n"),
            "{unit}: {text}"
        );
        assert!(
            !text.contains("DynamicUser") && !text.contains("nobody"),
            "{unit}: {text}"
        );
    }

    let tcpserver = gen(&bin, &config, &["tcpserver"]);
    let ids = format!(
        " -u {} -g {} ",
        id_of(USER, "-u").unwrap(),
        id_of(USER, "-g").unwrap()
    );
    assert!(tcpserver.contains(&ids), "{ids} not in {tcpserver}");

    // Another user, asked for.
    let stanza = gen(&bin, &config, &["xinetd", "--user", "nobody"]);
    assert!(stanza.contains("\tuser            = nobody\n"), "{stanza}");
    let other = dir.join("other");
    gen(
        &bin,
        &config,
        &[
            "systemd",
            "--user",
            "nobody",
            "--output-dir",
            other.to_str().unwrap(),
        ],
    );
    let text = std::fs::read_to_string(other.join("inetd-health@.service")).unwrap();
    assert!(text.contains("\nUser=nobody\nGroup=nogroup\n"), "{text}");

    // A user that does not exist: how to make it, or choose another.
    let out = refused(
        &bin,
        &[
            "--config",
            config.to_str().unwrap(),
            "gen",
            "xinetd",
            "--user",
            "no-such-user-here",
        ],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("inetd-health: gen: user no-such-user-here does not exist")
            && err.contains("adduser --system --group no-such-user-here")
            && err.contains("--user"),
        "{err}"
    );
}

/// A config only root can read is refused for every launcher, naming the
/// file, the user and what to do; nothing is written.
#[test]
fn a_config_the_user_cannot_read_is_refused() {
    let (dir, bin, config) = setup();
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o600)).unwrap();
    let units = dir.join("units");
    for args in [
        vec!["xinetd"],
        vec!["systemd", "--output-dir", units.to_str().unwrap()],
        vec!["tcpserver"],
    ] {
        let mut all = vec!["--config", config.to_str().unwrap(), "gen"];
        all.extend(&args);
        let out = refused(&bin, &all);
        let err = String::from_utf8_lossy(&out.stderr);
        let expected = format!(
            "inetd-health: gen: user inetd-health cannot read {}, the config file (mode 0600, owner root, group root): chgrp inetd-health {0} and chmod g+r {0}, or give gen --user NAME\n",
            config.display()
        );
        assert_eq!(err, expected, "{args:?}");
    }
    assert!(!units.exists(), "units written for a refused gen");

    // A directory on the way that the user cannot search.
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o750)).unwrap();
    let out = refused(
        &bin,
        &["--config", config.to_str().unwrap(), "gen", "xinetd"],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("user inetd-health cannot reach ")
            && err.contains(&format!(
                "no search (x) permission on {}",
                dir.path().display()
            )),
        "{err}"
    );
}

/// Readable through the group (0640 root:inetd-health): accepted, and the
/// real xinetd on the stanza answers 200 as the user.
#[test]
fn a_config_readable_through_the_group_serves() {
    let (dir, bin, config) = setup();
    let gid = id_of(USER, "-g").unwrap();
    std::os::unix::fs::chown(&config, Some(0), Some(gid)).unwrap();
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o640)).unwrap();
    let port = free_port();
    let stanza = gen(&bin, &config, &["xinetd", "--port", &port.to_string()]);
    assert_eq!(serve_stanza(&dir, &stanza, port), 200, "{stanza}");
}

/// What the checks use at poll time is checked too: a database check's
/// option file, an exec check's program, a disable file's directory; from
/// a config and from the check after `--`.
#[test]
fn what_the_checks_use_is_checked_too() {
    let (dir, bin, _config) = setup();
    let private = dir.join("private");
    std::fs::create_dir(&private).unwrap();
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o700)).unwrap();
    let option_file = dir.join("monitor.cnf");
    std::fs::write(&option_file, "[client]\nuser = monitor\n").unwrap();
    std::fs::set_permissions(&option_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let program = dir.script("check", "exit 0");
    std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o700)).unwrap();

    let option = option_file.to_str().unwrap();
    let cases: Vec<(Vec<String>, String)> = vec![
        (
            words(&["gen", "xinetd", "--", "mariadb", "--defaults-extra-file", option]),
            format!("user inetd-health cannot read {option}, check mariadb's defaults-extra-file (mode 0600"),
        ),
        (
            words(&["gen", "systemd", "--output-dir", dir.join("u").to_str().unwrap(), "--", "galera", &format!("--defaults-extra-file={option}")]),
            format!("user inetd-health cannot read {option}, check galera's defaults-extra-file"),
        ),
        (
            words(&["gen", "xinetd", "--", "exec", "--", program.to_str().unwrap()]),
            format!("user inetd-health cannot run {}, check exec's program (mode 0700", program.display()),
        ),
        (
            words(&["--disable-file", private.join("off").to_str().unwrap(), "gen", "xinetd", "--", "tcp", "127.0.0.1:1"]),
            format!("no search (x) permission on {}", private.display()),
        ),
    ];
    for (args, expected) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = refused(&bin, &args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(&expected), "{args:?}: {expected} not in {err}");
    }

    // The same in a config file, named after its check.
    let config = db_config(dir.path(), &option);
    let out = refused(
        &bin,
        &["--config", config.to_str().unwrap(), "gen", "xinetd"],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "cannot read {option}, check db's defaults-extra-file"
        )),
        "{err}"
    );
    // Readable through the group, as the option file's own rules want it.
    std::os::unix::fs::chown(&option_file, Some(0), Some(id_of(USER, "-g").unwrap())).unwrap();
    std::fs::set_permissions(&option_file, std::fs::Permissions::from_mode(0o640)).unwrap();
    gen(&bin, &config, &["xinetd"]);
}

/// `dir/db.toml`, mode 0644: one mariadb check, `db`, with `option` as its
/// defaults-extra-file.
fn db_config(dir: &Path, option: &dyn std::fmt::Display) -> PathBuf {
    let config = dir.join("db.toml");
    std::fs::write(
        &config,
        format!("[checks.db]\nkind = \"mariadb\"\ndefaults-extra-file = \"{option}\"\n"),
    )
    .unwrap();
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o644)).unwrap();
    config
}

fn words(args: &[&str]) -> Vec<String> {
    args.iter().map(|a| a.to_string()).collect()
}

// --- Arguments each launcher can carry --------------------------------------

/// An argument with a space: xinetd cannot carry it (refused, with the
/// reason), systemd quotes it and the check receives it whole.
#[test]
fn an_argument_with_a_space_is_refused_for_xinetd_and_inetd_and_quoted_for_systemd() {
    let (dir, bin, _config) = setup();
    let check = ["--", "exec", "--", "/bin/sh", "-c", "exit 0"];
    let mut args = vec!["gen", "xinetd"];
    args.extend(check);
    let out = refused(&bin, &args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("inetd-health: gen: xinetd cannot pass the argument \"exit 0\": server_args is split on white space")
            && err.contains("config file"),
        "{err}"
    );

    // inetd.conf splits its lines the same way.
    let mut args = vec!["gen", "inetd"];
    args.extend(check);
    let out = refused(&bin, &args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("inetd-health: gen: inetd cannot pass the argument \"exit 0\": inetd.conf's line is split on white space"),
        "{err}"
    );

    let units = dir.join("units");
    let mut args = vec!["gen", "systemd", "--output-dir", units.to_str().unwrap()];
    args.extend(check);
    stdout_of(Command::new(&bin).args(&args));
    for (unit, flags) in SERVICE_UNITS {
        let text = std::fs::read_to_string(units.join(unit)).unwrap();
        assert!(text.contains(" -c \"exit 0\""), "{text}");
        let (mut process, port) = activate_unit(&dir, &text, flags);
        assert_eq!(answers(port), 200, "{unit}");
        process.stop();
    }
}

/// What systemd would expand or split (`%` specifiers, `$` variables,
/// quotes, backslashes, a lone `;`, an empty argument, a tab) reaches the
/// check unchanged: its program compares its arguments with a copy the
/// test wrote into a file, out of systemd's reach, and passes only when
/// they are equal.
#[test]
fn percent_dollar_and_quotes_reach_the_check_unchanged() {
    let (dir, bin, _config) = setup();
    let tricky = [
        "50%",
        "%n",
        "a%%b",
        "$HOME",
        "${PATH}",
        "x$$y",
        "say \"hi\"",
        "it's",
        "back\\slash",
        ";",
        "",
        "tab\there",
    ];
    let expected: String = tricky.iter().map(|a| format!("[{a}]")).collect();
    std::fs::write(dir.join("expected"), &expected).unwrap();
    let compare = dir.script(
        "compare",
        &format!(
            "printf '[%s]' \"$@\" | cmp -s - {}",
            dir.join("expected").display()
        ),
    );
    let units = dir.join("units");
    let mut args = vec![
        "gen",
        "systemd",
        "--output-dir",
        units.to_str().unwrap(),
        "--",
        "exec",
        "--",
        compare.to_str().unwrap(),
    ];
    args.extend(tricky);
    stdout_of(Command::new(&bin).args(&args));
    let analyze = require_program("systemd-analyze");
    for (unit, flags) in SERVICE_UNITS {
        let out = Command::new(&analyze)
            .arg("verify")
            .arg(units.join(unit))
            .output()
            .unwrap();
        assert!(
            out.status.success() && out.stderr.is_empty(),
            "{unit}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = std::fs::read_to_string(units.join(unit)).unwrap();
        let argv = exec_start(&text);
        let at = argv
            .iter()
            .position(|a| a == compare.to_str().unwrap())
            .unwrap();
        assert_eq!(argv[at + 1..at + 1 + tricky.len()], tricky, "{text}");
        let (mut process, port) = activate_unit(&dir, &text, flags);
        assert_eq!(answers(port), 200, "{unit}: {text}");
        process.stop();
    }

    // The comparison can fail: one argument off is a 503.
    let mut args = vec![
        "gen",
        "systemd",
        "--output-dir",
        units.to_str().unwrap(),
        "--",
        "exec",
        "--",
        compare.to_str().unwrap(),
    ];
    args.extend(&tricky[1..]);
    stdout_of(Command::new(&bin).args(&args));
    let text = std::fs::read_to_string(units.join("inetd-health@.service")).unwrap();
    let (mut process, port) = activate_unit(&dir, &text, &["--accept", "--inetd"]);
    assert_eq!(answers(port), 503, "{text}");
    process.stop();
}

/// The ExecStart= reader of the testkit (`activate`) reads a generated unit as
/// systemd itself does: systemd's test mode (`systemd --user --test`,
/// which must run as a user other than root) loads the units and dumps
/// each command as it stored it. The one step it does not show,
/// `$$` becoming `$` when the command starts, is systemd.service(5)'s
/// "To pass a literal dollar sign, use $$".
#[test]
fn the_exec_start_reader_reads_as_systemd_does() {
    let (dir, bin, _config) = setup();
    let units = dir.join("units");
    let tricky = [
        "50%",
        "%n",
        "$HOME",
        "${PATH}",
        "say \"hi\"",
        "it's",
        "back\\slash",
        ";",
        "",
        "tab\there",
        "bell\x07",
        "a;b",
        "é",
    ];
    let mut args = vec![
        "gen",
        "systemd",
        "--output-dir",
        units.to_str().unwrap(),
        "--",
        "exec",
        "--",
        "/bin/true",
    ];
    args.extend(tricky);
    stdout_of(Command::new(&bin).args(&args));
    for unit in std::fs::read_dir(&units).unwrap() {
        let unit = unit.unwrap().path();
        std::fs::set_permissions(&unit, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    std::fs::set_permissions(&units, std::fs::Permissions::from_mode(0o755)).unwrap();
    for (unit, instance) in [
        ("inetd-health@.service", "inetd-health@x.service"),
        ("inetd-health-daemon.service", "inetd-health-daemon.service"),
    ] {
        let text = std::fs::read_to_string(units.join(unit)).unwrap();
        let ours = exec_start_parsed(&text);
        let systemds = systemd_command_line(&dir, &units, instance);
        assert_eq!(ours, systemds, "{text}");
        // And the stored words hold the arguments once expanded.
        let argv = exec_start(&text);
        let at = argv.iter().position(|a| a == "/bin/true").unwrap();
        assert_eq!(argv[at + 1..at + 1 + tricky.len()], tricky, "{text}");
    }
}

/// The command of `unit` as systemd 252 stores it: the "Command Line:" of
/// `systemd --user --test --unit=UNIT`'s dump, run as `nobody`, with
/// `units` first on its unit path.
fn systemd_command_line(dir: &TempDir, units: &Path, unit: &str) -> Vec<String> {
    let home = dir.join("systemd-home");
    std::fs::create_dir_all(&home).unwrap();
    std::os::unix::fs::chown(&home, id_of("nobody", "-u"), None).unwrap();
    std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o700)).unwrap();
    let out = Command::new(require_program("setpriv"))
        .args([
            "--reuid=nobody",
            "--regid=nogroup",
            "--clear-groups",
            "/lib/systemd/systemd",
        ])
        .args([
            "--user",
            "--test",
            "--no-pager",
            "--log-level=warning",
            "--log-target=console",
        ])
        .arg(format!("--unit={unit}"))
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", &home)
        .env("XDG_RUNTIME_DIR", &home)
        // The trailing ':' keeps the default directories (the targets the
        // unit's default dependencies name).
        .env("SYSTEMD_UNIT_PATH", format!("{}:", units.display()))
        .output()
        .unwrap();
    let dump = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "systemd --test: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let section = dump
        .split("-> Unit ")
        .find(|s| s.starts_with(&format!("{unit}:")))
        .unwrap_or_else(|| panic!("{unit} not in the dump:\n{dump}"));
    let line = section
        .lines()
        .find_map(|l| l.trim_start().strip_prefix("Command Line: "))
        .unwrap_or_else(|| panic!("no command line for {unit}:\n{section}"));
    shell_words(line)
}

/// Words as systemd's `quote_command_line` writes them: bare, or in
/// double quotes with `\` before `"`, `\`, `` ` ``, `$` and C escapes
/// (`\n`, `\t`, octal `\NNN`) for control characters.
fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut bytes = line.bytes().peekable();
    while let Some(b) = bytes.next() {
        if b == b' ' {
            continue;
        }
        let mut word = Vec::new();
        if b != b'"' {
            word.push(b);
            while let Some(&c) = bytes.peek().filter(|&&c| c != b' ') {
                word.push(c);
                bytes.next();
            }
        } else {
            loop {
                match bytes.next().expect("unterminated quote") {
                    b'"' => break,
                    b'\\' => match bytes.next().expect("trailing backslash") {
                        b'a' => word.push(7),
                        b'b' => word.push(8),
                        b'f' => word.push(12),
                        b'n' => word.push(b'\n'),
                        b'r' => word.push(b'\r'),
                        b't' => word.push(b'\t'),
                        b'v' => word.push(11),
                        d @ b'0'..=b'7' => {
                            let rest: Vec<u8> = (0..2).map(|_| bytes.next().unwrap()).collect();
                            let text = format!("{}{}", d as char, String::from_utf8(rest).unwrap());
                            word.push(u8::from_str_radix(&text, 8).unwrap());
                        }
                        c => word.push(c),
                    },
                    c => word.push(c),
                }
            }
        }
        words.push(String::from_utf8(word).unwrap());
    }
    words
}

// --- Socket units -----------------------------------------------------------

/// Both socket units' listen queue is --backlog, by default the system's
/// maximum; the service is not given --backlog (systemd owns the socket).
#[test]
fn socket_units_carry_the_backlog() {
    let (dir, bin, config) = setup();
    let given = dir.join("given");
    stdout_of(
        Command::new(&bin)
            .args(["--backlog", "77", "--config"])
            .arg(&config)
            .args(["gen", "systemd", "--output-dir", given.to_str().unwrap()]),
    );
    let somaxconn = std::fs::read_to_string("/proc/sys/net/core/somaxconn").unwrap();
    let default = dir.join("default");
    gen(
        &bin,
        &config,
        &["systemd", "--output-dir", default.to_str().unwrap()],
    );
    for (units, backlog) in [(&given, "77"), (&default, somaxconn.trim())] {
        for socket in ["inetd-health.socket", "inetd-health-daemon.socket"] {
            let text = std::fs::read_to_string(units.join(socket)).unwrap();
            assert!(
                text.contains(&format!("\nBacklog={backlog}\n")),
                "{socket}: Backlog={backlog} not in {text}"
            );
        }
        for (unit, _) in SERVICE_UNITS {
            let text = std::fs::read_to_string(units.join(unit)).unwrap();
            assert!(!text.contains("--backlog"), "{unit}: {text}");
        }
    }
    // The units stay valid with it.
    let analyze = require_program("systemd-analyze");
    let out = Command::new(&analyze)
        .arg("verify")
        .arg(given.join("inetd-health.socket"))
        .arg(given.join("inetd-health-daemon.socket"))
        .output()
        .unwrap();
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

// --- What the service itself refuses ---------------------------------------

/// A user's name by uid as gen writes it: the name, or the number.
fn name_of(uid: u32) -> String {
    let out = Command::new("id")
        .args(["-nu", &uid.to_string()])
        .output()
        .unwrap();
    if out.status.success() {
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    } else {
        uid.to_string()
    }
}

/// `bin ARGS` run as `uid` and `gid` (no other groups), as a non-root
/// operator runs gen.
fn as_user(uid: u32, gid: u32, bin: &Path, args: &[&str]) -> Output {
    Command::new(require_program("setpriv"))
        .arg(format!("--reuid={uid}"))
        .arg(format!("--regid={gid}"))
        .arg("--clear-groups")
        .arg(bin)
        .args(args)
        .output()
        .unwrap()
}

/// The service refuses a config that neither root nor its own user owns,
/// or that group or others may write, however readable: gen applies the
/// same rule against the service's user (not its own), refuses (64) and
/// says what to do. A config of the service's own user is the service's to
/// trust; gen, reading it too, trusts it only when run as that user.
#[test]
fn a_config_the_service_would_refuse_is_refused() {
    let (_dir, bin, config) = setup();
    let shown = config.to_str().unwrap();
    let root = name_of(0);
    let other = name_of(1000);

    // Owned by uid 1000, mode 0644: every user reads it, the service trusts
    // it as neither inetd-health nor nobody.
    std::os::unix::fs::chown(&config, Some(1000), Some(0)).unwrap();
    for user in [USER, "nobody"] {
        let out = refused(&bin, &["--config", shown, "gen", "xinetd", "--user", user]);
        assert_eq!(
            String::from_utf8_lossy(&out.stderr),
            format!(
                "inetd-health: gen: the service, run as {user}, refuses {shown}, the config file \
                 (mode 0644, owner {other}, group {root}): owned by {other}, neither root nor {user}: \
                 chown root {shown}\n"
            )
        );
    }
    // The same from gen run by the owner itself, which trusts the file for
    // its own reading.
    let out = as_user(
        1000,
        1000,
        &bin,
        &["--config", shown, "gen", "xinetd", "--user", "nobody"],
    );
    assert_eq!(out.status.code(), Some(64), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&format!(
            "the service, run as nobody, refuses {shown}, the config file"
        )),
        "{out:?}"
    );

    // Writable by the group, and another's: every reason, one fix.
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o664)).unwrap();
    let out = refused(
        &bin,
        &[
            "--config",
            shown,
            "gen",
            "systemd",
            "--output-dir",
            "/nonexistent/units",
        ],
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!(
            "inetd-health: gen: the service, run as {USER}, refuses {shown}, the config file \
             (mode 0664, owner {other}, group {root}): writable by group or others, and it names \
             programs to run; owned by {other}, neither root nor {USER}: chown root {shown}, then \
             chmod go-w {shown}\n"
        )
    );

    // Fixed as said: accepted.
    std::os::unix::fs::chown(&config, Some(0), None).unwrap();
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o644)).unwrap();
    gen(&bin, &config, &["tcpserver"]);

    // The service's own user owns it: the service trusts it, gen run as
    // that user too; gen run as root does not, and says so.
    std::os::unix::fs::chown(&config, id_of("nobody", "-u"), None).unwrap();
    let out = as_user(
        id_of("nobody", "-u").unwrap(),
        id_of("nobody", "-g").unwrap(),
        &bin,
        &["--config", shown, "gen", "xinetd", "--user", "nobody"],
    );
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let out = refused(
        &bin,
        &["--config", shown, "gen", "xinetd", "--user", "nobody"],
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!(
            "inetd-health: gen: gen reads {shown} itself, as {root}, and trusts a config only when \
             root or its own user owns it (the rule the service applies as nobody): chown root \
             {shown}, or run gen as nobody\n"
        )
    );
}

/// A database check's option file is refused by the service when others
/// may read it (its password would be no secret), group or others may
/// write it, or neither root nor the service's user owns it: gen refuses
/// it too, with a fix that leaves it readable by the user.
#[test]
fn an_option_file_the_service_would_refuse_is_refused() {
    let (dir, bin, _config) = setup();
    let option_file = dir.join("monitor.cnf");
    std::fs::write(&option_file, "[client]\nuser = monitor\n").unwrap();
    let option = option_file.to_str().unwrap();
    let gid = id_of(USER, "-g").unwrap();
    let root = name_of(0);
    let check = [
        "gen",
        "xinetd",
        "--",
        "mariadb",
        "--defaults-extra-file",
        option,
    ];
    let set = |uid: u32, group: u32, mode: u32| {
        std::os::unix::fs::chown(&option_file, Some(uid), Some(group)).unwrap();
        std::fs::set_permissions(&option_file, std::fs::Permissions::from_mode(mode)).unwrap();
    };
    let refusal = |describe: &str, why_and_fix: &str| {
        format!(
            "inetd-health: gen: the service, run as {USER}, refuses {option}, check mariadb's \
             defaults-extra-file ({describe}): {why_and_fix}\n"
        )
    };

    // 0644 root:root: the user reads it, the service refuses it.
    set(0, 0, 0o644);
    let out = refused(&bin, &check);
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        refusal(
            &format!("mode 0644, owner {root}, group {root}"),
            &format!(
                "readable by others, and it holds a password: chmod o-r {option}, then \
                 chgrp {USER} {option} and chmod g+r {option}"
            )
        )
    );
    // Writable by the group.
    set(0, gid, 0o660);
    let out = refused(&bin, &check);
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        refusal(
            &format!("mode 0660, owner {root}, group {USER}"),
            &format!(
                "writable by group or others, who could choose the credentials: chmod go-w {option}"
            )
        )
    );
    // Another user's, 0600.
    set(1000, 0, 0o600);
    let other = name_of(1000);
    let out = refused(&bin, &check);
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        refusal(
            &format!("mode 0600, owner {other}, group {root}"),
            &format!(
                "owned by {other}, neither root nor {USER}: chown root {option}, then \
                 chgrp {USER} {option} and chmod g+r {option}"
            )
        )
    );
    // What the fixes lead to, and the service's user's own 0600 file: accepted.
    set(0, gid, 0o640);
    stdout_of(Command::new(&bin).args(check));
    set(id_of(USER, "-u").unwrap(), 0, 0o600);
    stdout_of(Command::new(&bin).args(check));

    // From a config file, named after its check.
    set(0, 0, 0o644);
    let config = db_config(dir.path(), &option);
    let out = refused(
        &bin,
        &["--config", config.to_str().unwrap(), "gen", "tcpserver"],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "refuses {option}, check db's defaults-extra-file (mode 0644"
        )) && err.contains("readable by others"),
        "{err}"
    );
}

/// A postgres check's password file: the service refuses one its group
/// or others may read, as libpq does, so only its owner reads it: gen
/// refuses what the service would, and what its user cannot read, with
/// the fix that makes it the user's, from the command line and a config.
#[test]
fn a_passfile_the_service_would_refuse_is_refused() {
    let (dir, bin, _config) = setup();
    let passfile = dir.join("pgpass");
    std::fs::write(&passfile, "*:*:*:monitor:secret\n").unwrap();
    let shown = passfile.to_str().unwrap();
    let gid = id_of(USER, "-g").unwrap();
    let uid = id_of(USER, "-u").unwrap();
    let root = name_of(0);
    let check = [
        "gen",
        "xinetd",
        "--",
        "postgres",
        "--user",
        "monitor",
        "--passfile",
        shown,
    ];
    let set = |uid: u32, group: u32, mode: u32| {
        std::os::unix::fs::chown(&passfile, Some(uid), Some(group)).unwrap();
        std::fs::set_permissions(&passfile, std::fs::Permissions::from_mode(mode)).unwrap();
    };
    let stderr = |out: Output| String::from_utf8_lossy(&out.stderr).into_owned();
    let refusal = |describe: &str, why_and_fix: &str| {
        format!(
            "inetd-health: gen: the service, run as {USER}, refuses {shown}, check postgres's \
             passfile ({describe}): {why_and_fix}\n"
        )
    };

    // 0644 root:root: the user reads it, the service refuses it.
    set(0, 0, 0o644);
    assert_eq!(
        stderr(refused(&bin, &check)),
        refusal(
            &format!("mode 0644, owner {root}, group {root}"),
            &format!(
                "readable by others, and it holds passwords (libpq refuses such a file too): \
                 chmod go-rwx {shown}, then chown {USER} {shown}"
            )
        )
    );
    // Readable through the group, which would do for an option file.
    set(0, gid, 0o640);
    assert_eq!(
        stderr(refused(&bin, &check)),
        refusal(
            &format!("mode 0640, owner {root}, group {USER}"),
            &format!(
                "readable by its group, and it holds passwords (libpq refuses such a file too): \
                 chmod go-rwx {shown}, then chown {USER} {shown}"
            )
        )
    );
    // Another user's, 0600: the user's, not root's, as only the owner reads it.
    set(1000, 0, 0o600);
    let other = name_of(1000);
    assert_eq!(
        stderr(refused(&bin, &check)),
        refusal(
            &format!("mode 0600, owner {other}, group {root}"),
            &format!("owned by {other}, neither root nor {USER}: chown {USER} {shown}")
        )
    );
    // Root's 0600: trusted, and the user cannot read it.
    set(0, 0, 0o600);
    assert_eq!(
        stderr(refused(&bin, &check)),
        format!(
            "inetd-health: gen: user {USER} cannot read {shown}, check postgres's passfile \
             (mode 0600, owner {root}, group {root}): chown {USER} {shown}, or give gen --user NAME\n"
        )
    );
    // What the fixes lead to: accepted.
    set(uid, 0, 0o600);
    let stanza = stdout_of(Command::new(&bin).args(check));
    assert!(
        stanza.contains(&format!("postgres --user monitor --passfile {shown}\n")),
        "{stanza}"
    );

    // From a config file, named after its check.
    set(0, 0, 0o644);
    let config = dir.join("pg.toml");
    std::fs::write(
        &config,
        format!("[checks.pg]\nkind = \"postgres\"\nuser = \"monitor\"\npassfile = \"{shown}\"\n"),
    )
    .unwrap();
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o644)).unwrap();
    let err = stderr(refused(
        &bin,
        &["--config", config.to_str().unwrap(), "gen", "tcpserver"],
    ));
    assert!(
        err.contains(&format!("refuses {shown}, check pg's passfile (mode 0644"))
            && err.contains("readable by others"),
        "{err}"
    );
}

/// A redis check's credentials file: the service refuses one its group or
/// others may read (it holds a password), so only its owner reads it: gen
/// refuses what the service would, and what its user cannot read, with
/// the fix that makes it the user's, from the command line and a config.
#[test]
fn a_credentials_file_the_service_would_refuse_is_refused() {
    let (dir, bin, _config) = setup();
    let credentials = dir.join("redis.toml");
    std::fs::write(&credentials, "user = \"monitor\"\npassword = \"secret\"\n").unwrap();
    let shown = credentials.to_str().unwrap();
    let gid = id_of(USER, "-g").unwrap();
    let uid = id_of(USER, "-u").unwrap();
    let root = name_of(0);
    let check = [
        "gen",
        "xinetd",
        "--",
        "redis",
        "--role",
        "primary",
        "--credentials-file",
        shown,
    ];
    let set = |uid: u32, group: u32, mode: u32| {
        std::os::unix::fs::chown(&credentials, Some(uid), Some(group)).unwrap();
        std::fs::set_permissions(&credentials, std::fs::Permissions::from_mode(mode)).unwrap();
    };
    let stderr = |out: Output| String::from_utf8_lossy(&out.stderr).into_owned();
    let refusal = |describe: &str, why_and_fix: &str| {
        format!(
            "inetd-health: gen: the service, run as {USER}, refuses {shown}, check redis's \
             credentials-file ({describe}): {why_and_fix}\n"
        )
    };

    // 0644 root:root: the user reads it, the service refuses it.
    set(0, 0, 0o644);
    assert_eq!(
        stderr(refused(&bin, &check)),
        refusal(
            &format!("mode 0644, owner {root}, group {root}"),
            &format!(
                "readable by others, and it holds a password: chmod go-rwx {shown}, then chown {USER} {shown}"
            )
        )
    );
    // Readable through the group, which would do for an option file.
    set(0, gid, 0o640);
    assert_eq!(
        stderr(refused(&bin, &check)),
        refusal(
            &format!("mode 0640, owner {root}, group {USER}"),
            &format!(
                "readable by its group, and it holds a password: chmod go-rwx {shown}, then chown {USER} {shown}"
            )
        )
    );
    // Another user's, 0600: the user's, not root's, as only the owner reads it.
    set(1000, 0, 0o600);
    let other = name_of(1000);
    assert_eq!(
        stderr(refused(&bin, &check)),
        refusal(
            &format!("mode 0600, owner {other}, group {root}"),
            &format!("owned by {other}, neither root nor {USER}: chown {USER} {shown}")
        )
    );
    // Root's 0600: trusted, and the user cannot read it.
    set(0, 0, 0o600);
    assert_eq!(
        stderr(refused(&bin, &check)),
        format!(
            "inetd-health: gen: user {USER} cannot read {shown}, check redis's credentials-file \
             (mode 0600, owner {root}, group {root}): chown {USER} {shown}, or give gen --user NAME\n"
        )
    );
    // What the fixes lead to: accepted, the check read back as given.
    set(uid, 0, 0o600);
    let stanza = stdout_of(Command::new(&bin).args(check));
    assert!(
        stanza.contains(&format!(
            "redis --role primary --credentials-file {shown}\n"
        )),
        "{stanza}"
    );

    // From a config file, named after its check.
    set(0, 0, 0o644);
    let config = dir.join("redis-check.toml");
    std::fs::write(
        &config,
        format!("[checks.cache]\nkind = \"redis\"\ncredentials-file = \"{shown}\"\n"),
    )
    .unwrap();
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o644)).unwrap();
    let err = stderr(refused(
        &bin,
        &["--config", config.to_str().unwrap(), "gen", "systemd"],
    ));
    assert!(
        err.contains(&format!(
            "refuses {shown}, check cache's credentials-file (mode 0644"
        )) && err.contains("readable by others, and it holds a password"),
        "{err}"
    );
}

// --- What the pollers poll ---------------------------------------------------

/// A config whose routes are `routes` (each running one passing check).
fn routes_config(dir: &TempDir, name: &str, routes: &[&str]) -> PathBuf {
    let mut text =
        String::from("[checks.a]\nkind = \"exec\"\ncommand = [\"/bin/true\"]\n[routes]\n");
    for route in routes {
        text.push_str(&format!("\"{route}\" = [\"a\"]\n"));
    }
    let config = dir.join(name);
    std::fs::write(&config, text).unwrap();
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o644)).unwrap();
    config
}

/// The status the service, on pipes, answers a GET of `path` with.
fn status_of(bin: &Path, config: &Path, path: &str) -> u16 {
    let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n");
    let out = output_with_input(
        Command::new(bin).arg("--config").arg(config),
        request.as_bytes(),
    );
    Response::parse(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {:?}", String::from_utf8_lossy(&out.stdout)))
        .status
}

/// The paths HAProxy, keepalived and Kubernetes are given to poll.
fn polled(bin: &Path, config: &Path, extra: &[&str]) -> Vec<String> {
    let with = |target: &str| {
        let mut args = vec![target];
        args.extend(extra);
        gen(bin, config, &args)
    };
    let haproxy = with("haproxy");
    let uri = haproxy
        .lines()
        .find_map(|l| l.trim().strip_prefix("http-check send meth GET uri "))
        .unwrap_or_else(|| panic!("{haproxy}"));
    let keepalived = with("keepalived");
    let path = keepalived
        .lines()
        .find_map(|l| l.trim().strip_prefix("path "))
        .unwrap_or_else(|| panic!("{keepalived}"));
    let k8s = with("k8s");
    let mut paths = vec![uri.split(' ').next().unwrap().to_owned(), path.to_owned()];
    paths.extend(
        k8s.lines()
            .filter_map(|l| l.trim().strip_prefix("path: "))
            .map(str::to_owned),
    );
    paths
}

/// The pollers poll a route the config has: `/ready`, else `/`, else the
/// only route, else the one `--path` names; a config that leaves the
/// choice open, or a `--path` that is no route, is refused with the routes.
#[test]
fn pollers_poll_a_route_the_config_has() {
    let (dir, bin, _config) = setup();

    // One route, /health: every poller polls it, and it answers 200 where
    // / is a 404.
    let health = routes_config(&dir, "health.toml", &["/health"]);
    assert_eq!(polled(&bin, &health, &[]), ["/health"; 4]);
    assert_eq!(status_of(&bin, &health, "/health"), 200);
    assert_eq!(status_of(&bin, &health, "/"), 404);

    // /ready is preferred, then /.
    let both = routes_config(&dir, "both.toml", &["/", "/ready", "/x"]);
    assert_eq!(polled(&bin, &both, &[]), ["/ready"; 4]);
    let root = routes_config(&dir, "root.toml", &["/x", "/"]);
    assert_eq!(polled(&bin, &root, &[]), ["/"; 4]);

    // Two routes, neither: the operator chooses.
    let two = routes_config(&dir, "two.toml", &["/health", "/status"]);
    let shown = two.to_str().unwrap();
    for target in ["haproxy", "keepalived", "k8s"] {
        let out = refused(&bin, &["--config", shown, "gen", target]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("no /ready or / route but several others (/health, /status)")
                && err.contains(&format!(
                    "choose one with --path (gen {target} --path /health)"
                )),
            "{target}: {err}"
        );
    }
    assert_eq!(polled(&bin, &two, &["--path", "/status"]), ["/status"; 4]);
    // One check of a route is a path the service answers too.
    assert_eq!(
        polled(&bin, &two, &["--path", "/status/a"]),
        ["/status/a"; 4]
    );
    assert_eq!(status_of(&bin, &two, "/status/a"), 200);

    // What is no route, /metrics (always 200) included, is refused.
    for path in ["/nope", "/metrics", "status", "/status?verbose"] {
        let out = refused(&bin, &["--config", shown, "gen", "haproxy", "--path", path]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&format!(
                "--path {path:?} is not a route of the service (its routes: /health, /status)"
            )),
            "{path}: {err}"
        );
    }
    // The launchers poll nothing.
    let out = refused(
        &bin,
        &["--config", shown, "gen", "xinetd", "--path", "/status"],
    );
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("--path /status chooses what the pollers poll"),
        "{out:?}"
    );

    // Liveness stays /live when the config has it.
    let live = routes_config(&dir, "live.toml", &["/live", "/health"]);
    let k8s = gen(&bin, &live, &["k8s", "--path", "/health"]);
    assert!(
        k8s.contains("livenessProbe:\n  httpGet:\n    path: /live\n")
            && k8s.contains("readinessProbe:\n  httpGet:\n    path: /health\n"),
        "{k8s}"
    );
}

// --- tcpserver's listen queue -------------------------------------------------

/// The tcpserver line listens with `-b`, `--backlog` or the system's
/// maximum, where tcpserver's own default is 20: the real tcpserver, run
/// from the line, has that queue (`ss`'s Send-Q of a listener) and serves.
#[test]
fn tcpserver_listens_with_the_backlog() {
    let tcpserver = require_program("tcpserver");
    let ss = require_program("ss");
    let (dir, bin, config) = setup();
    for (given, backlog) in [(Some("77"), 77), (None, somaxconn())] {
        let port = free_port();
        let mut args = Vec::new();
        if let Some(n) = given {
            args.extend(["--backlog", n]);
        }
        args.extend(["--config", config.to_str().unwrap(), "gen", "tcpserver"]);
        let port_arg = port.to_string();
        args.extend(["--port", &port_arg]);
        let text = stdout_of(Command::new(&bin).args(&args));
        let line = text
            .lines()
            .find(|l| l.starts_with("tcpserver "))
            .unwrap_or_else(|| panic!("{text}"));
        assert!(line.contains(&format!(" -b {backlog} ")), "{line}");
        let words: Vec<&str> = line.split_whitespace().collect();
        let mut cmd = Command::new(&tcpserver);
        cmd.args(&words[1..]);
        let mut process = tcpserver::spawn(&mut cmd, port, &dir.join("tcpserver.err"))
            .unwrap_or_else(|stderr| panic!("tcpserver did not start: {stderr}"));
        let listing = stdout_of(Command::new(&ss).args(["-ltnH", &format!("sport = :{port}")]));
        let queue: Vec<u32> = listing
            .lines()
            .filter_map(|l| l.split_whitespace().nth(2)?.parse().ok())
            .collect();
        assert_eq!(queue, [backlog], "{listing}");
        assert_eq!(answers(port), 200, "{line}");
        process.stop();
    }
}

// --- The long-lived service ---------------------------------------------------

/// The `Accept=no` service is restarted when it fails (a panic aborts the
/// release build; a missed watchdog ping), one second later, as the
/// packaged unit is; the per-connection one is not (its connection is
/// over). The units still verify.
#[test]
fn the_daemon_unit_restarts_on_failure() {
    let analyze = require_program("systemd-analyze");
    let (dir, bin, config) = setup();
    let units = dir.join("units");
    gen(
        &bin,
        &config,
        &["systemd", "--output-dir", units.to_str().unwrap()],
    );
    let daemon = std::fs::read_to_string(units.join("inetd-health-daemon.service")).unwrap();
    let setting = |text: &str, key: &str| -> Vec<String> {
        text.lines()
            .filter_map(|l| l.strip_prefix(&format!("{key}=")))
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(setting(&daemon, "Restart"), ["on-failure"], "{daemon}");
    assert_eq!(setting(&daemon, "RestartSec"), ["1s"], "{daemon}");
    let packaged = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../packaging/systemd/inetd-health-daemon.service"
    ))
    .unwrap();
    for key in ["Restart", "RestartSec"] {
        assert_eq!(setting(&daemon, key), setting(&packaged, key), "{key}");
    }
    let per_connection = std::fs::read_to_string(units.join("inetd-health@.service")).unwrap();
    assert!(
        setting(&per_connection, "Restart").is_empty(),
        "{per_connection}"
    );

    let out = Command::new(&analyze)
        .arg("verify")
        .arg(units.join("inetd-health-daemon.socket"))
        .arg(units.join("inetd-health-daemon.service"))
        .output()
        .unwrap();
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // And it serves, as systemd would start it.
    let (mut process, port) = activate_unit(&dir, &daemon, &[]);
    assert_eq!(answers(port), 200);
    process.stop();
}

// --- PostgreSQL: Patroni's pair of backends -----------------------------------

/// `dir/NAME`, mode 0644: a primary check and a replica check on port 5433,
/// and `routes` (`"/PATH" = ["CHECK"]` lines).
fn pg_config(dir: &TempDir, name: &str, routes: &str) -> PathBuf {
    let config = dir.join(name);
    std::fs::write(
        &config,
        format!(
            "[defaults]\nuser = \"monitor\"\nport = 5433\n\
             [checks.primary]\nkind = \"postgres\"\nrole = \"primary\"\n\
             [checks.replica]\nkind = \"postgres\"\nrole = \"replica\"\nmax-lag-bytes = \"16MB\"\n\
             [routes]\n{routes}"
        ),
    )
    .unwrap();
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o644)).unwrap();
    config
}

/// `gen haproxy --postgres` writes Patroni's pg_primary and pg_replicas
/// backends, which HAProxy accepts without a warning, polling routes
/// that run a postgres check of the role each backend needs; a config
/// without such routes, or a single check, is refused.
#[test]
fn haproxy_gets_patronis_pair_for_postgres() {
    let (dir, bin, _config) = setup();
    let config = pg_config(
        &dir,
        "pg.toml",
        "\"/primary\" = [\"primary\"]\n\"/replica\" = [\"replica\"]\n",
    );
    let haproxy = gen(&bin, &config, &["haproxy", "--postgres", "--port", "9201"]);
    for want in [
        "backend pg_primary\n    mode tcp\n",
        "    option httpchk OPTIONS /primary\n    http-check expect status 200\n",
        "backend pg_replicas\n",
        "    option httpchk OPTIONS /replica\n",
        "    default-server inter 2000ms fall 3 rise 2 on-marked-down shutdown-sessions\n",
        "    server pg1 127.0.0.1:5433 check port 9201\n",
    ] {
        assert!(haproxy.contains(want), "{want:?} not in {haproxy}");
    }
    // The service answers both paths (OPTIONS as GET): a route, not a 404.
    for path in ["/primary", "/replica"] {
        assert_eq!(status_of(&bin, &config, path), 503, "{path}");
    }
    let cfg = dir.join("haproxy-pg.cfg");
    std::fs::write(
        &cfg,
        format!(
            "defaults\n    timeout client 30m\n\
             frontend pg_write\n    mode tcp\n    bind 127.0.0.1:{}\n    default_backend pg_primary\n\
             frontend pg_read\n    mode tcp\n    bind 127.0.0.1:{}\n    default_backend pg_replicas\n{haproxy}",
            free_port(),
            free_port()
        ),
    )
    .unwrap();
    let out = Command::new(require_program("haproxy"))
        .args(["-c", "-f", cfg.to_str().unwrap()])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "haproxy -c: {said}");
    assert!(!said.contains("WARNING"), "{said}");

    let shown = |p: &Path| p.to_str().unwrap().to_owned();
    let wrong_role = pg_config(
        &dir,
        "swapped.toml",
        "\"/primary\" = [\"replica\"]\n\"/replica\" = [\"primary\"]\n",
    );
    let no_replica = pg_config(&dir, "half.toml", "\"/primary\" = [\"primary\"]\n");
    for (args, says) in [
        (
            vec!["--config".into(), shown(&wrong_role), "gen".into(), "haproxy".into(), "--postgres".into()],
            "route /primary runs no postgres check with role = \"primary\" (or \"read-write\"): \
             HAProxy would send writes to any node it answers 200 for",
        ),
        (
            vec!["--config".into(), shown(&no_replica), "gen".into(), "haproxy".into(), "--postgres".into()],
            "gen haproxy --postgres polls /replica, which is not a route of the config (its routes: /primary): \
             add \"/replica\" = [\"CHECK\"], CHECK a postgres check with role = \"replica\"",
        ),
        (
            words(&["gen", "haproxy", "--postgres", "--", "postgres", "--user", "m", "--role", "primary"]),
            "with one check on the command line every path runs that check",
        ),
        (
            vec!["--config".into(), shown(&config), "gen".into(), "keepalived".into(), "--postgres".into()],
            "--postgres writes HAProxy's pair of backends: give it to gen haproxy, not keepalived",
        ),
        (
            vec!["--config".into(), shown(&config), "gen".into(), "haproxy".into(), "--postgres".into(), "--path".into(), "/primary".into()],
            "cannot be used with",
        ),
    ] {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let err = String::from_utf8_lossy(&refused(&bin, &args).stderr).into_owned();
        assert!(err.contains(says), "{args:?}: {says:?} not in {err}");
    }
}

// --- Redis: a backend that polls the HTTP check ------------------------------

/// `dir/NAME`, mode 0644: a primary and a replica redis check on `port`,
/// and `routes` (`"/PATH" = ["CHECK"]` lines).
fn redis_config(dir: &TempDir, name: &str, port: u16, routes: &str) -> PathBuf {
    let config = dir.join(name);
    std::fs::write(
        &config,
        format!(
            "[defaults]\nport = {port}\n\
             [checks.primary]\nkind = \"redis\"\nrole = \"primary\"\nmin-replicas = 1\n\
             [checks.replica]\nkind = \"redis\"\nrole = \"replica\"\nmax-link-age = \"10s\"\n\
             [routes]\n{routes}"
        ),
    )
    .unwrap();
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o644)).unwrap();
    config
}

/// `gen haproxy --redis` writes a redis_primary backend that polls the
/// route running a redis check with role primary over HTTP (where a
/// tcp-check script would PING and match role:master), which HAProxy
/// accepts without a warning; a config or check without such a route is
/// refused.
#[test]
fn haproxy_gets_a_redis_primary_backend_polling_the_check() {
    let (dir, bin, _config) = setup();
    let redis_port = free_port();
    let config = redis_config(
        &dir,
        "redis.toml",
        redis_port,
        "\"/primary\" = [\"primary\"]\n\"/replica\" = [\"replica\"]\n",
    );
    let haproxy = gen(&bin, &config, &["haproxy", "--redis", "--port", "9201"]);
    for want in [
        "backend redis_primary\n    mode tcp\n",
        "    option httpchk GET /primary\n    http-check expect status 200\n",
        "    default-server inter 2000ms fall 3 rise 2 on-marked-down shutdown-sessions\n",
        &format!("    server redis1 127.0.0.1:{redis_port} check port 9201\n"),
    ] {
        assert!(haproxy.contains(want), "{want:?} not in {haproxy}");
    }
    assert!(!haproxy.contains("\n    tcp-check"), "{haproxy}");
    // The service answers the path: a route (nothing listens: 503), not a 404.
    assert_eq!(status_of(&bin, &config, "/primary"), 503);
    let cfg = dir.join("haproxy-redis.cfg");
    std::fs::write(
        &cfg,
        format!(
            "defaults\n    timeout client 30m\n\
             frontend redis_write\n    mode tcp\n    bind 127.0.0.1:{}\n    default_backend redis_primary\n{haproxy}",
            free_port()
        ),
    )
    .unwrap();
    let out = Command::new(require_program("haproxy"))
        .args(["-c", "-f", cfg.to_str().unwrap()])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "haproxy -c: {said}");
    assert!(!said.contains("WARNING"), "{said}");

    // The one route running a primary check, whatever its name; --path
    // chooses among several.
    let writes = redis_config(
        &dir,
        "writes.toml",
        6380,
        "\"/writes\" = [\"primary\"]\n\"/reads\" = [\"replica\"]\n",
    );
    let haproxy = gen(&bin, &writes, &["haproxy", "--redis"]);
    assert!(
        haproxy.contains("    option httpchk GET /writes\n")
            && haproxy.contains("    server redis1 127.0.0.1:6380 check port 9200\n"),
        "{haproxy}"
    );
    let two = redis_config(
        &dir,
        "two.toml",
        6380,
        "\"/a\" = [\"primary\"]\n\"/b\" = [\"primary\", \"replica\"]\n",
    );
    let haproxy = gen(&bin, &two, &["haproxy", "--redis", "--path", "/a"]);
    assert!(haproxy.contains("    option httpchk GET /a\n"), "{haproxy}");
    // One check on the command line, every path running it: /.
    let haproxy = stdout_of(Command::new(&bin).args([
        "gen",
        "haproxy",
        "--redis",
        "--",
        "redis",
        "--socket",
        "/run/redis.sock",
        "--role",
        "primary",
    ]));
    assert!(
        haproxy.contains("    option httpchk GET /\n")
            && haproxy.contains("    server redis1 127.0.0.1:6379 check port 9200\n"),
        "{haproxy}"
    );

    let shown = |p: &Path| p.to_str().unwrap().to_owned();
    let replicas_only = redis_config(&dir, "reads.toml", 6380, "\"/replica\" = [\"replica\"]\n");
    let with_config = |config: &Path, extra: &[&str]| {
        let mut args = vec![
            "--config".to_owned(),
            shown(config),
            "gen".into(),
            "haproxy".into(),
            "--redis".into(),
        ];
        args.extend(extra.iter().map(|a| a.to_string()));
        args
    };
    for (args, says) in [
        (
            with_config(&replicas_only, &[]),
            "gen haproxy --redis polls a route that runs a redis check with role = \"primary\", and no \
             route of the config does (its routes: /replica): add \"/primary\" = [\"CHECK\"], CHECK a \
             redis check with role = \"primary\"",
        ),
        (
            with_config(&config, &["--path", "/replica"]),
            "route /replica runs no redis check with role = \"primary\": HAProxy would send writes to any \
             node it answers 200 for, a replica's included",
        ),
        (
            with_config(&two, &[]),
            "which route does redis_primary poll? several run a redis check with role = \"primary\" (/a, /b) \
             and none is /primary: choose one with --path (gen haproxy --redis --path /a)",
        ),
        (
            with_config(&config, &["--path", "/nowhere"]),
            "--path \"/nowhere\" is not a route of the service (its routes: /primary, /replica)",
        ),
        (
            words(&["gen", "haproxy", "--redis", "--", "redis", "--role", "any"]),
            "the command line's check runs no redis check with role = \"primary\"",
        ),
        (
            words(&["gen", "haproxy", "--redis", "--", "tcp", "127.0.0.1:6379"]),
            "the command line's check runs no redis check with role = \"primary\"",
        ),
        (
            vec!["--config".into(), shown(&config), "gen".into(), "k8s".into(), "--redis".into()],
            "--redis writes HAProxy's backend for the Redis primary: give it to gen haproxy, not k8s",
        ),
        (with_config(&config, &["--postgres"]), "cannot be used with"),
    ] {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let err = String::from_utf8_lossy(&refused(&bin, &args).stderr).into_owned();
        assert!(err.contains(says), "{args:?}: {says:?} not in {err}");
    }
}

/// HAProxy and keepalived reach the node at --bind: a wildcard address is
/// refused with the reason, where it would have been written as the
/// server's address.
#[test]
fn a_wildcard_bind_is_no_address_for_haproxy_or_keepalived() {
    let (_dir, bin, config) = setup();
    for target in ["haproxy", "keepalived"] {
        for bind in ["0.0.0.0", "::", "[::]"] {
            let out = refused(
                &bin,
                &[
                    "--config",
                    config.to_str().unwrap(),
                    "gen",
                    target,
                    "--bind",
                    bind,
                ],
            );
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(
                err.contains(&format!(
                    "--bind {bind} is where the service listens on every address"
                )) && err.contains("give --bind that address"),
                "{target} {bind}: {err}"
            );
        }
    }
    // Where the service listens, it is what the launchers want.
    let out = Command::new(&bin)
        .args([
            "--config",
            config.to_str().unwrap(),
            "gen",
            "tcpserver",
            "--bind",
            "0.0.0.0",
            "--user",
            "root",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
