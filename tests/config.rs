//! Many checks on one port, from a config file: the binary over pipes
//! (stdin and stdout are the connection, as under inetd), then under a real
//! xinetd, HAProxy and Prometheus, and with curl.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use inetd_health_testkit::client::exchange;
use inetd_health_testkit::example::write_example_config;
use inetd_health_testkit::haproxy::{Haproxy, ServerState};
use inetd_health_testkit::http::Response;
use inetd_health_testkit::procs::require_program;
use inetd_health_testkit::prometheus::Prometheus;
use inetd_health_testkit::run::{run_with_input, Run};
use inetd_health_testkit::tmp::TempDir;
use inetd_health_testkit::xinetd::Xinetd;

/// The binary under test, as Cargo built it for this package's tests.
const BIN: &str = env!("CARGO_BIN_EXE_inetd-health");

const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// Writes `text` as `config.toml` in `dir` (mode 0644) and returns its path.
fn config_in(dir: &TempDir, text: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join("config.toml");
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    path
}

fn path_str(p: &Path) -> String {
    p.to_str().unwrap().to_owned()
}

/// A config of exec checks whose outcome each test sets by writing files:
/// `ok` passes, `disk` runs `dir/disk.sh` (pass unless `dir/disk-fails`
/// exists, a Nagios plugin), `slow` sleeps, `warn` is a Nagios WARNING.
fn exec_config(dir: &TempDir, extra: &str) -> PathBuf {
    let disk = dir.script(
        "disk.sh",
        &format!(
            "if [ -e {fails} ]; then echo 'DISK CRITICAL - free space: / 1%|/=99%;80;90'; exit 2; fi\n\
             echo 'DISK OK - free space: / 60%|/=40%;80;90'",
            fails = dir.join("disk-fails").display()
        ),
    );
    let text = format!(
        r#"
[defaults]
timeout = "2s"

[checks.ok]
kind = "exec"
command = ["/bin/true"]

[checks.disk]
kind = "exec"
command = ["{disk}"]
nagios = true

[checks.warn]
kind = "exec"
command = ["/bin/sh", "-c", "echo 'LOAD WARNING - load average: 9.1|load1=9.1;5;10;0'; exit 1"]
nagios = true

{extra}
[routes]
"/" = ["ok"]
"/live" = ["ok"]
"/ready" = ["ok", "disk"]
"/all" = ["ok", "disk", "warn"]
"#,
        disk = disk.display()
    );
    config_in(dir, &text)
}

fn get(config: &Path, target: &str, accept: Option<&str>) -> Run {
    let mut request = format!("GET {target} HTTP/1.1\r\nHost: x\r\n");
    if let Some(a) = accept {
        request.push_str(&format!("Accept: {a}\r\n"));
    }
    request.push_str("\r\n");
    run_with_input(
        BIN,
        &["--config".into(), path_str(config)],
        request.as_bytes(),
    )
}

#[test]
fn routes_one_check_of_a_route_verbose_and_exclude() {
    let dir = TempDir::new("config");
    let config = exec_config(&dir, "");

    let run = get(&config, "/live", None);
    let r = run.response();
    assert_eq!(
        (r.status, r.body_text().as_str()),
        (200, "healthy: exit status 0\n")
    );
    assert_eq!(run.code, Some(0));

    let r = get(&config, "/ready", None).response();
    assert_eq!(
        (r.status, r.body_text().as_str()),
        (200, "healthy: 2 checks passed\n")
    );

    std::fs::write(dir.join("disk-fails"), "").unwrap();
    let run = get(&config, "/ready", None);
    let r = run.response();
    assert_eq!(
        (r.status, r.body_text().as_str()),
        (
            503,
            "unhealthy: 1 of 2 checks failed\n[-]disk failed: DISK CRITICAL - free space: / 1%\n"
        )
    );
    assert!(
        run.stderr
            .contains(" path=/ready status=503 reason=\"unhealthy: 1 of 2 checks failed\" "),
        "{}",
        run.stderr
    );
    // /live does not run the disk check.
    assert_eq!(get(&config, "/live", None).response().status, 200);
    // One check of a route.
    let r = get(&config, "/ready/disk", None).response();
    assert_eq!(
        (r.status, r.body_text().as_str()),
        (503, "unhealthy: DISK CRITICAL - free space: / 1%\n")
    );
    assert_eq!(get(&config, "/ready/ok", None).response().status, 200);
    // Verbose lists every check; exclude leaves one out.
    let r = get(&config, "/all?verbose", None).response();
    assert_eq!(
        r.body_text(),
        "[+]ok ok: exit status 0\n\
         [-]disk failed: DISK CRITICAL - free space: / 1%\n\
         [!]warn warning: LOAD WARNING - load average: 9.1\n\
         unhealthy: 1 of 3 checks failed\n"
    );
    let r = get(&config, "/all?exclude=disk", None).response();
    assert_eq!(
        (r.status, r.body_text().as_str()),
        (
            200,
            "warning: 2 checks passed, 1 with a warning\n[!]warn warning: LOAD WARNING - load average: 9.1\n"
        )
    );
}

#[test]
fn unknown_paths_are_404_and_the_query_never_reaches_a_command() {
    let dir = TempDir::new("config");
    let marker = dir.join("argv");
    // A check that records its arguments and environment.
    let script = dir.script(
        "record.sh",
        &format!("echo \"$@\" > {m}; env >> {m}", m = marker.display()),
    );
    let config = config_in(
        &dir,
        &format!(
            "[checks.rec]\nkind = \"exec\"\ncommand = [\"{}\", \"fixed\"]\n[routes]\n\"/x\" = [\"rec\"]\n",
            script.display()
        ),
    );
    let run = get(&config, "/nope", None);
    let r = run.response();
    assert_eq!(r.status, 404);
    assert_eq!(
        r.body_text(),
        "no such path: /nope\npaths: /x /metrics (and ROUTE/CHECK for one check of a route)\n"
    );
    assert_eq!(run.code, Some(65));
    assert!(!marker.exists(), "a 404 ran a check");

    let hostile = "/x?exclude=zzz&$(touch%20/tmp/pwned)&format=text&;id";
    assert_eq!(get(&config, hostile, None).response().status, 200);
    let seen = std::fs::read_to_string(&marker).unwrap();
    assert_eq!(seen.lines().next(), Some("fixed"));
    assert!(
        !seen.contains("pwned") && !seen.contains("exclude"),
        "{seen}"
    );
    let r = get(&config, "/x?format=xml", None).response();
    assert_eq!(
        (r.status, r.body_text().as_str()),
        (
            400,
            "unknown format \"xml\": use format=text, json or prometheus\n"
        )
    );
}

#[test]
fn formats_by_query_and_accept() {
    let dir = TempDir::new("config");
    let config = exec_config(&dir, "");
    for (target, accept, content_type) in [
        ("/all", None, "text/plain; charset=utf-8"),
        ("/all", Some("*/*"), "text/plain; charset=utf-8"),
        (
            "/all",
            Some("application/health+json"),
            "application/health+json",
        ),
        ("/all", Some("application/json"), "application/json"),
        (
            "/all",
            Some("text/plain; version=0.0.4"),
            "text/plain; version=0.0.4; charset=utf-8",
        ),
        (
            "/all",
            Some("application/openmetrics-text; version=1.0.0"),
            "text/plain; version=0.0.4; charset=utf-8",
        ),
        (
            "/all?format=json",
            Some("text/plain"),
            "application/health+json",
        ),
        ("/metrics", None, "text/plain; version=0.0.4; charset=utf-8"),
        ("/metrics?format=json", None, "application/health+json"),
    ] {
        let r = get(&config, target, accept).response();
        assert_eq!(
            r.header("content-type"),
            Some(content_type),
            "{target} {accept:?}"
        );
    }
    std::fs::write(dir.join("disk-fails"), "").unwrap();
    let r = get(&config, "/all?format=json", None).response();
    assert_eq!(r.status, 503);
    let body = r.body_text();
    for part in [
        "{\"status\":\"fail\",\"output\":\"unhealthy: 1 of 3 checks failed\",\"checks\":{",
        "\"ok\":[{\"status\":\"pass\",\"output\":\"exit status 0\",\"time\":\"",
        "\"disk\":[{\"status\":\"fail\",\"output\":\"DISK CRITICAL - free space: / 1%\",",
        "\"disk:/\":[{\"status\":\"fail\",\"observedValue\":99,\"observedUnit\":\"%\",",
        "\"warn:load1\":[{\"status\":\"warn\",\"observedValue\":9.1,",
    ] {
        assert!(body.contains(part), "{part} not in {body}");
    }
    // Prometheus: 200 whatever the checks say.
    let r = get(&config, "/metrics", None).response();
    assert_eq!(r.status, 200);
    let body = r.body_text();
    for line in [
        "inetd_health_check_success{check=\"ok\"} 1",
        "inetd_health_check_success{check=\"disk\"} 0",
        "inetd_health_check_success{check=\"warn\"} 1",
        "inetd_health_check_status{check=\"warn\"} 1",
        "inetd_health_perfdata_ratio{check=\"disk\",label=\"/\"} 0.99",
        "inetd_health_perfdata{check=\"warn\",label=\"load1\"} 9.1",
    ] {
        assert!(body.lines().any(|l| l == line), "{line} not in\n{body}");
    }
}

#[test]
fn status_codes_for_warnings_and_disabled_checks() {
    let dir = TempDir::new("config");
    let disabled = dir.join("maintenance");
    let config = exec_config(
        &dir,
        &format!(
            "[checks.drained]\nkind = \"exec\"\ncommand = [\"/bin/true\"]\ndisable-file = \"{}\"\n",
            disabled.display()
        ),
    );
    // exec_config's routes do not use it: one check of the root route? No:
    // reach it by its own route through a second config with routes.
    let text = std::fs::read_to_string(&config).unwrap().replace(
        "\"/all\" = [\"ok\", \"disk\", \"warn\"]",
        "\"/all\" = [\"ok\", \"disk\", \"warn\"]\n\"/drain\" = [\"ok\", \"drained\"]",
    );
    std::fs::write(&config, &text).unwrap();
    let args = |extra: &[&str]| {
        let mut a = vec!["--config".to_string(), path_str(&config)];
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    let status = |extra: &[&str], target: &str| {
        run_with_input(
            BIN,
            &args(extra),
            format!("GET {target} HTTP/1.0\r\n\r\n").as_bytes(),
        )
        .response()
        .status
    };
    assert_eq!(status(&[], "/all/warn"), 200);
    assert_eq!(status(&["--warning-status", "429"], "/all/warn"), 429);
    assert_eq!(status(&["--warning-status", "429"], "/ready"), 200);
    assert_eq!(status(&[], "/drain"), 200);
    std::fs::write(&disabled, "").unwrap();
    assert_eq!(status(&[], "/drain"), 503);
    assert_eq!(status(&["--disabled-status", "404"], "/drain"), 404);
    // In the file too.
    std::fs::write(
        &config,
        format!("disabled-status = 404\nwarning-status = 429\n{text}"),
    )
    .unwrap();
    assert_eq!(status(&[], "/drain"), 404);
    assert_eq!(status(&[], "/all/warn"), 429);
    // A failing check beats a disabled one: down is not drained.
    std::fs::write(dir.join("disk-fails"), "").unwrap();
    let text = std::fs::read_to_string(&config).unwrap().replace(
        "\"/drain\" = [\"ok\", \"drained\"]",
        "\"/drain\" = [\"disk\", \"drained\"]",
    );
    std::fs::write(&config, text).unwrap();
    assert_eq!(status(&[], "/drain"), 503);
}

#[test]
fn check_config_says_what_is_wrong_and_where() {
    let dir = TempDir::new("config");
    let good = exec_config(&dir, "");
    let out = Command::new(BIN)
        .args(["--config", &path_str(&good), "--check-config"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("{}: ok: 3 checks, 4 routes\n", good.display())
    );
    let bad_dir = TempDir::new("config-bad");
    let bad = config_in(
        &bad_dir,
        "[checks.a]\nkind = \"tcp\"\ntarget = \"127.0.0.1:1\"\ntimeout = \"soon\"\n",
    );
    let out = Command::new(BIN)
        .args(["--config", &path_str(&bad), "--check-config"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "{}:4:11: \"soon\" is not a duration (try 500ms, 2s, 1m)",
            bad.display()
        )),
        "{err}"
    );
    // A check's option on the command line with --config says where it goes.
    let out = Command::new(BIN)
        .args([
            "--config",
            &path_str(&good),
            "--timeout",
            "1s",
            "--check-config",
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("with --config, set timeout in"));
    // A config file others can write is refused: it names programs to run.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&good, std::fs::Permissions::from_mode(0o666)).unwrap();
    let run = get(&good, "/", None);
    assert_eq!(run.code, Some(64));
    assert!(
        run.stderr.contains("refused: writable by group or others"),
        "{}",
        run.stderr
    );
}

/// A postgres check that would need a login without a user is refused as
/// the file is read, at the setting; `--check-config` reads its password
/// file too, and refuses one its group or others may read, as libpq does.
#[test]
fn check_config_refuses_a_postgres_check_it_could_not_run() {
    use std::os::unix::fs::PermissionsExt;
    let check_config = |config: &Path| {
        Command::new(BIN)
            .args(["--config", &path_str(config), "--check-config"])
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let dir = TempDir::new("config-pg");
    let config = config_in(
        &dir,
        "[checks.pg]\nkind = \"postgres\"\nrole = \"primary\"\n",
    );
    let out = check_config(&config);
    assert_eq!(out.status.code(), Some(64));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "{}:3:8: role needs a login: give user (and passfile if the server asks for a password)",
            config.display()
        )),
        "{err}"
    );

    let passfile = dir.join("pgpass");
    std::fs::write(&passfile, "*:*:*:monitor:secret\n").unwrap();
    std::fs::set_permissions(&passfile, std::fs::Permissions::from_mode(0o644)).unwrap();
    let config = config_in(
        &dir,
        &format!(
            "[checks.pg]\nkind = \"postgres\"\nuser = \"monitor\"\npassfile = \"{}\"\n",
            passfile.display()
        ),
    );
    let out = check_config(&config);
    assert_eq!(out.status.code(), Some(64));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "check pg: postgres: passfile {}: refused: readable by others (mode 0644) (libpq ignores such a file too: chmod 0600 it)",
            passfile.display()
        )),
        "{err}"
    );
    std::fs::set_permissions(&passfile, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = check_config(&config);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("{}: ok: 1 checks, 1 routes\n", config.display()),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(0));
}

/// A redis check's Sentinels are checked as the file is read, at the
/// setting; `--check-config` reads its credentials file too, and refuses
/// one its group or others may read (it holds a password).
#[test]
fn check_config_refuses_a_redis_check_it_could_not_run() {
    use std::os::unix::fs::PermissionsExt;
    let check_config = |config: &Path| {
        Command::new(BIN)
            .args(["--config", &path_str(config), "--check-config"])
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let dir = TempDir::new("config-redis");
    let config = config_in(
        &dir,
        "[checks.r]\nkind = \"redis\"\nrole = \"primary\"\nsentinels = [\"127.0.0.1:26379\"]\n",
    );
    let out = check_config(&config);
    assert_eq!(out.status.code(), Some(64));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "{}:4:13: sentinels need master-name (the group's name in sentinel monitor)",
            config.display()
        )),
        "{err}"
    );

    let credentials = dir.join("redis.toml");
    std::fs::write(&credentials, "user = \"monitor\"\npassword = \"secret\"\n").unwrap();
    let config = config_in(
        &dir,
        &format!(
            "[checks.r]\nkind = \"redis\"\nrole = \"primary\"\ncredentials-file = \"{}\"\n",
            credentials.display()
        ),
    );
    for (mode, why) in [
        (0o644, "readable by others (mode 0644)"),
        (0o640, "readable by its group (mode 0640)"),
    ] {
        std::fs::set_permissions(&credentials, std::fs::Permissions::from_mode(mode)).unwrap();
        let out = check_config(&config);
        assert_eq!(out.status.code(), Some(64));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&format!(
                "check r: redis: credentials-file {}: refused: {why} (it holds a password: chmod 0600 it)",
                credentials.display()
            )),
            "{err}"
        );
        assert!(!err.contains("secret"), "{err}");
    }
    std::fs::set_permissions(&credentials, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = check_config(&config);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("{}: ok: 1 checks, 1 routes\n", config.display()),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn once_prints_every_check_with_the_worst_code() {
    let dir = TempDir::new("config");
    let config = exec_config(&dir, "");
    let out = Command::new(BIN)
        .args(["--config", &path_str(&config), "--once"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some("WARNING: 3 checks passed, 1 with a warning | disk:/=40%;80;90 warn:load1=9.1;5;10;0")
    );
    let rest: Vec<&str> = lines.collect();
    assert_eq!(rest.len(), 3, "{text}");
    assert!(
        rest[0].starts_with("[+]disk ok: DISK OK - free space: / 60% ("),
        "{text}"
    );
    assert!(
        rest[2].starts_with("[!]warn warning: LOAD WARNING"),
        "{text}"
    );
}

// --- Under real xinetd, HAProxy, Prometheus and curl ----------------------------

/// A route of three checks of ~300 ms each answers in about 300 ms, not
/// 900: its checks run at once.
/// The example config the bench measures (six checks, four routes): its
/// `/`, the tcp check alone, answers 200 without building the database
/// checks, whose option file does not exist.
#[test]
fn the_example_config_the_bench_measures_serves_its_tcp_route() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let target = listener.local_addr().unwrap().to_string();
    let dir = TempDir::new("config-example");
    let config = write_example_config(dir.path(), &target);
    let run = get(&config, "/", None);
    assert_eq!(run.response().status, 200, "{}", run.stderr);
}

#[test]
fn a_route_runs_its_checks_concurrently_under_xinetd() {
    let dir = TempDir::new("config-slow");
    let config = config_in(
        &dir,
        "[checks.a]\nkind = \"exec\"\ncommand = [\"sleep\", \"0.3\"]\n\
         [checks.b]\nkind = \"exec\"\ncommand = [\"sleep\", \"0.3\"]\n\
         [checks.c]\nkind = \"exec\"\ncommand = [\"sleep\", \"0.3\"]\n\
         [routes]\n\"/slow\" = [\"a\", \"b\", \"c\"]\n",
    );
    let xinetd = Xinetd::start(BIN, &["--config", &path_str(&config)]);
    for _ in 0..3 {
        let started = Instant::now();
        let ex = exchange(
            xinetd.port(),
            b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n",
            IO_TIMEOUT,
        );
        let took = started.elapsed();
        ex.assert_clean_close();
        let r = Response::parse(&ex.bytes).unwrap();
        assert_eq!(
            (r.status, r.body_text().as_str()),
            (200, "healthy: 3 checks passed\n")
        );
        assert!(
            took >= Duration::from_millis(300) && took < Duration::from_millis(550),
            "three 300 ms checks took {took:?}"
        );
    }
}

/// Every poll parses the file: nothing parsed is kept in the state
/// directory (a kept parse could be forged by any program sharing the
/// service's uid), and an edit that keeps the file's size and modification
/// time is served at the very next poll.
#[test]
fn an_edit_is_served_at_the_next_poll_and_no_parse_is_kept() {
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new("config-edit");
    let state = dir.join("state");
    std::fs::create_dir(&state).unwrap();
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o700)).unwrap();
    // The trailing space keeps the two versions the same length.
    let passing = "[checks.a]\nkind = \"exec\"\ncommand = [\"/bin/true\"] \n";
    let failing = "[checks.a]\nkind = \"exec\"\ncommand = [\"/bin/false\"]\n";
    assert_eq!(passing.len(), failing.len());
    let config = config_in(&dir, passing);
    let xinetd = Xinetd::start(
        BIN,
        &[
            "--state-dir",
            &path_str(&state),
            "--config",
            &path_str(&config),
        ],
    );
    let poll = || {
        let ex = exchange(
            xinetd.port(),
            b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
            IO_TIMEOUT,
        );
        ex.assert_clean_close();
        let r = Response::parse(&ex.bytes).unwrap();
        (r.status, r.body_text())
    };
    let healthy = (200, "healthy: exit status 0\n".to_owned());
    assert_eq!(poll(), healthy);
    // Older builds kept the parse once the file had been still for 2 s.
    std::thread::sleep(Duration::from_millis(2200));
    assert_eq!(poll(), healthy);
    let kept: Vec<String> = std::fs::read_dir(&state)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(kept, Vec::<String>::new(), "files in the state directory");

    let modified = std::fs::metadata(&config).unwrap().modified().unwrap();
    std::fs::write(&config, failing).unwrap();
    std::fs::File::options()
        .write(true)
        .open(&config)
        .unwrap()
        .set_modified(modified)
        .unwrap();
    assert_eq!(poll(), (503, "unhealthy: exit status 1\n".to_owned()));
}

fn is_up(state: &ServerState) -> bool {
    state.status == "UP" && state.check_status == "L7OK"
}

fn is_down_503(state: &ServerState) -> bool {
    state.status == "DOWN" && state.check_status == "L7STS" && state.check_code == "503"
}

/// HAProxy polls `/ready` (two checks): it goes DOWN when only the disk
/// check fails, and UP again when it passes; `/live` never moved.
#[test]
fn haproxy_get_ready_goes_down_when_only_the_disk_check_fails() {
    let dir = TempDir::new("config-haproxy");
    let config = exec_config(&dir, "");
    let xinetd = Xinetd::start(BIN, &["--config", &path_str(&config)]);
    let ready = Haproxy::start(
        xinetd.port(),
        &["http-check send meth GET uri /ready ver HTTP/1.1 hdr Host x"],
    );
    let live = Haproxy::start(
        xinetd.port(),
        &["http-check send meth GET uri /live ver HTTP/1.1 hdr Host x"],
    );
    let wait = |h: &Haproxy, want: fn(&ServerState) -> bool, what: &str| {
        h.wait_for_state(Duration::from_secs(8), want)
            .unwrap_or_else(|e| panic!("{what}: {e}"));
    };
    wait(&ready, is_up, "/ready UP at first");
    std::fs::write(dir.join("disk-fails"), "").unwrap();
    wait(&ready, is_down_503, "/ready DOWN once the disk check fails");
    wait(&live, is_up, "/live stays UP");
    std::fs::remove_file(dir.join("disk-fails")).unwrap();
    wait(&ready, is_up, "/ready UP again");
}

/// curl, as users try it: each Accept header gets its Content-Type.
#[test]
fn curl_gets_the_content_type_it_asks_for() {
    let curl = require_program("curl");
    let dir = TempDir::new("config-curl");
    let config = exec_config(&dir, "");
    let xinetd = Xinetd::start(BIN, &["--config", &path_str(&config)]);
    for (accept, want) in [
        (None, "text/plain; charset=utf-8"),
        (Some("application/health+json"), "application/health+json"),
        (Some("application/json"), "application/json"),
        (
            Some("text/plain; version=0.0.4"),
            "text/plain; version=0.0.4; charset=utf-8",
        ),
        (
            Some("application/openmetrics-text"),
            "text/plain; version=0.0.4; charset=utf-8",
        ),
    ] {
        let mut cmd = Command::new(&curl);
        cmd.args([
            "-sS",
            "--max-time",
            "5",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code} %{content_type}",
        ]);
        if let Some(a) = accept {
            cmd.args(["-H", &format!("Accept: {a}")]);
        }
        let out = cmd
            .arg(format!("http://127.0.0.1:{}/ready", xinetd.port()))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "curl: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            format!("200 {want}"),
            "{accept:?}"
        );
    }
}

/// A real Prometheus scrapes `/metrics` under xinetd: its API reports the
/// target up and the checks' series with the values the checks had.
#[test]
fn prometheus_scrapes_metrics_and_reports_the_checks() {
    let dir = TempDir::new("config-prom");
    let config = exec_config(&dir, "");
    std::fs::write(dir.join("disk-fails"), "").unwrap();
    let xinetd = Xinetd::start(BIN, &["--config", &path_str(&config)]);
    let prometheus = Prometheus::start(xinetd.port(), "/metrics");
    prometheus.wait_scraped(Duration::from_secs(20)).unwrap();
    for (q, value) in [
        ("inetd_health_check_success{check=\"ok\"}", "1"),
        ("inetd_health_check_success{check=\"disk\"}", "0"),
        ("inetd_health_check_status{check=\"warn\"}", "1"),
        (
            "inetd_health_perfdata_ratio{check=\"disk\",label=\"/\"}",
            "0.99",
        ),
    ] {
        let answer = prometheus.query(q);
        assert!(
            answer.contains(&format!("\"{value}\"]")),
            "{q}: want {value}: {answer}"
        );
    }
    let health = prometheus.query("scrape_samples_scraped");
    assert!(!health.contains("\"0\"]"), "{health}");
}
