//! `doctor` against what it is for: the seed's shell scripts under a real
//! xinetd (the reset, the wrong length), our own service (nothing wrong),
//! an xinetd with `cps = 5 10` (the shutdown), a body with a timestamp (the
//! unstable digest), a service answering 405 to OPTIONS.

mod support;

use std::path::Path;
use std::process::{Command, Output, Stdio};

use support::client::free_port;
use support::mariadb::Mariadb;
use support::tmp::TempDir;
use support::xinetd::{run_config, Xinetd};

fn doctor(port: u16, extra: &[&str]) -> Output {
    Command::new(support::inetd_health_bin())
        .args(["doctor", &format!("127.0.0.1:{port}")])
        .args(extra)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn floor(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../benches/floor")
        .join(name)
}

#[test]
fn the_seeds_hello_script_resets_and_lies_about_its_length() {
    let xinetd = Xinetd::start_server(&floor("hello-healthcheck.sh"), &[]);
    let out = doctor(xinetd.port(), &[]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(t.contains("Content-Length 15 but 16 body bytes"), "{t}");
    assert!(
        t.contains(
            "connection reset after the response: the server exits with unread request bytes"
        ),
        "{t}"
    );
}

#[test]
fn the_seeds_mysqladmin_script_resets() {
    let db = Mariadb::shared();
    let dir = TempDir::new("doctor-db");
    let file = db.write_option_file(
        dir.path(),
        support::mariadb::MONITOR_USER,
        Some(db.monitor_password()),
        0o600,
    );
    let xinetd = Xinetd::start_server(
        &floor("mariadb-healthcheck.sh"),
        &[db.socket().to_str().unwrap(), file.to_str().unwrap()],
    );
    let out = doctor(xinetd.port(), &["--json"]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(t.starts_with("{\"target\":\"127.0.0.1:"), "{t}");
    assert!(t.contains("\"ok\":false"), "{t}");
    assert!(t.contains("connection reset after the response"), "{t}");
}

#[test]
fn our_service_is_clean() {
    let xinetd = Xinetd::start(&["exec", "--", "/bin/true"]);
    let out = doctor(xinetd.port(), &[]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(t.ends_with("every poller would be satisfied\n"), "{t}");
    assert!(!t.contains("FAIL"), "{t}");
}

#[test]
fn a_body_with_a_timestamp_flaps_keepalived_digests() {
    let xinetd = Xinetd::start(&["--show-output", "exec", "--", "date", "+%s%N"]);
    let t = text(&doctor(xinetd.port(), &[]));
    assert!(
        t.contains("body differs between polls: keepalived digest will flap"),
        "{t}"
    );
}

#[test]
fn a_405_for_options_fails_haproxys_default_check() {
    let dir = TempDir::new("doctor-405");
    let script = dir.script(
        "only-get",
        "read line\n\
         case \"$line\" in\n\
         OPTIONS*) printf 'HTTP/1.1 405 Method Not Allowed\\r\\nContent-Length: 0\\r\\nConnection: close\\r\\n\\r\\n';;\n\
         *) printf 'HTTP/1.1 200 OK\\r\\nContent-Length: 3\\r\\nConnection: close\\r\\n\\r\\nok\\n';;\n\
         esac",
    );
    let xinetd = Xinetd::start_with(dir, &script, &[]);
    let out = doctor(xinetd.port(), &[]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(
        t.contains("405 for OPTIONS: HAProxy's default check will fail"),
        "{t}"
    );
}

/// xinetd with `cps = 5 10`: the burst finds the service gone dark.
#[test]
fn a_low_cps_shuts_the_service_down_under_a_burst() {
    let dir = TempDir::new("doctor-cps");
    let port = free_port();
    let conf = format!(
        "defaults\n{{\n\tlog_type = FILE {log}\n}}\n\
         service doctor-cps\n{{\n\ttype = UNLISTED\n\tport = {port}\n\tbind = 127.0.0.1\n\
         \tsocket_type = stream\n\tprotocol = tcp\n\twait = no\n\tuser = root\n\
         \tserver = {bin}\n\tserver_args = exec -- /bin/true\n\tcps = 5 10\n\
         \tinstances = UNLIMITED\n\tper_source = UNLIMITED\n\tflags = REUSE\n\tdisable = no\n}}\n",
        log = dir.join("xinetd.log").display(),
        bin = support::inetd_health_bin(),
    );
    let mut process = run_config(&dir, &conf, port);
    let out = doctor(port, &[]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(
        t.contains("service stopped answering after") && t.contains("xinetd cps"),
        "{t}"
    );
    process.stop();
}
