//! `gen TARGET`: the glue for every launcher and poller, written from the
//! same command line that serves (`--config FILE` and the service's
//! options), so that the stanza and the service cannot disagree.
//!
//! Sizes come from the pollers: `--pollers N --interval D` is N polls every
//! D, and each connection lives at most the read timeout plus the longest
//! check timeout plus half a second of drain.

use std::ffi::{CStr, CString};
use std::fmt::Write as _;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use inetd_health::check::postgres::{Role, DEFAULT_PORT as PG_DEFAULT_PORT, PASSFILE_TRUST};
use inetd_health::check::redis::{Role as RedisRole, CREDENTIALS_TRUST};
use inetd_health::route::Routes;
use inetd_health::spec::{split_host_port, Kind, RedisServer, Spec, REDIS_PORT};
use inetd_health::sys::trust::{Rules, Untrusted};
use inetd_health::sys::{self, Stat};
use inetd_health::{config, option_file, Service};

use crate::args::CheckCommand;

/// The user the launchers run the service as unless `--user` says
/// otherwise: the Debian package creates it as a system user.
pub const DEFAULT_USER: &str = "inetd-health";

/// What to write.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Target {
    /// An xinetd service stanza.
    Xinetd,
    /// systemd socket and service units, for Accept=yes and Accept=no
    /// (needs --output-dir).
    Systemd,
    /// A tcpserver command line.
    Tcpserver,
    /// An /etc/inetd.conf line (openbsd-inetd, Debian's inetd).
    Inetd,
    /// An HAProxy backend polling the service.
    Haproxy,
    /// A keepalived virtual_server with an HTTP_GET check.
    Keepalived,
    /// Kubernetes liveness and readiness probes.
    K8s,
}

// How the generated glue is sized and placed. (A plain comment: a doc comment would become
// the subcommand's about text, set after the variant's since the
// subcommands are deferred.)
#[derive(Debug, clap::Args)]
pub struct GenArgs {
    /// What to write
    #[arg(value_enum)]
    pub target: Target,
    /// The port the service listens on
    #[arg(long, default_value_t = 9200)]
    pub port: u16,
    /// The address it listens on
    #[arg(long, default_value = "127.0.0.1")]
    pub bind: String,
    /// How many pollers (load balancers, probes) poll it
    #[arg(long, value_name = "N", default_value_t = 3)]
    pub pollers: u32,
    /// How often each polls
    #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = inetd_health::config::parse_duration)]
    pub interval: Duration,
    /// Write the files here (systemd writes several) instead of stdout
    #[arg(long, value_name = "DIR")]
    pub output_dir: Option<PathBuf>,
    /// The user the service runs as (xinetd's user, systemd's User=,
    /// tcpserver's -u); it must be able to read the config and every file
    /// the checks read
    #[arg(long, value_name = "NAME", default_value = DEFAULT_USER)]
    pub user: String,
    /// The path the pollers poll (haproxy, keepalived, the k8s readiness
    /// probe): a route of the service; by default /ready, else /, else the
    /// only route
    #[arg(long, value_name = "PATH")]
    pub path: Option<String>,
    /// With haproxy: Patroni's pair of backends for PostgreSQL instead,
    /// pg_primary polling /primary and pg_replicas /replica, routes of the
    /// config that run a postgres check of that role
    #[arg(long, conflicts_with = "path")]
    pub postgres: bool,
    /// With haproxy: a backend for Redis's primary instead, redis_primary,
    /// polling the route (/primary, or --path) that runs a redis check
    /// with role primary
    #[arg(long, conflicts_with = "postgres")]
    pub redis: bool,
    /// With systemd: the version of the systemd the units are for
    /// [default: this machine's, from `systemctl --version`]. 253 and later
    /// get `Type=notify-reload` (systemctl reload waits for the reload);
    /// older ones `Type=notify` with `ExecReload=/bin/kill -HUP $MAINPID`
    #[arg(long, value_name = "N")]
    pub systemd_version: Option<u32>,
    /// Instead of --config: the check the service runs, after `--`
    /// (`gen xinetd -- tcp 127.0.0.1:3306`)
    #[arg(last = true, value_name = "CHECK")]
    pub check: Vec<String>,
}

/// The version of this machine's systemd (`systemctl --version`'s first
/// line, `systemd 252 (252.39-1~deb12u1)`), if it can be told.
fn systemd_version() -> Option<u32> {
    let out = std::process::Command::new("systemctl")
        .arg("--version")
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    parse_systemd_version(&String::from_utf8_lossy(&out.stdout))
}

fn parse_systemd_version(text: &str) -> Option<u32> {
    text.lines()
        .next()?
        .strip_prefix("systemd ")?
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

/// What the generators need of the service.
pub struct Facts<'a> {
    /// The binary pollers' launchers start.
    pub program: PathBuf,
    /// Its arguments, as the service runs now.
    pub args: Vec<String>,
    /// The read timeout.
    pub read_timeout: Duration,
    /// The longest check timeout.
    pub check_timeout: Duration,
    /// The service.
    pub service: &'a Service<'static>,
    /// The allowlist as given, if any.
    pub allow: Vec<String>,
    /// The agent answers on the port.
    pub agent: bool,
    /// The listen queue's length (`--backlog`, else the system's maximum):
    /// what socket units write as `Backlog=`.
    pub backlog: u32,
    /// The config file, if the service reads one.
    pub config: Option<PathBuf>,
    /// The checks by name, as the config file or the command line gives
    /// them: what they read at poll time is checked against the user.
    pub checks: Vec<(String, Spec)>,
}

/// The files to write: (name, contents).
pub fn generate(g: &GenArgs, f: &Facts<'_>) -> Result<Vec<(String, String)>, String> {
    let rate = f64::from(g.pollers.max(1)) / g.interval.as_secs_f64().max(0.001);
    let life = f.read_timeout + f.check_timeout + Duration::from_millis(500);
    // Twice what the pollers need, at least 16: a poller retrying, a human
    // with curl.
    let instances = ((rate * life.as_secs_f64() * 2.0).ceil() as u32).max(16);
    let cps = ((rate * 4.0).ceil() as u32).max(50);
    let argv: Vec<String> = std::iter::once(f.program.display().to_string())
        .chain(f.args.iter().cloned())
        .collect();
    if matches!(g.target, Target::Xinetd | Target::Inetd) {
        // Before the files: what xinetd or inetd cannot carry is refused
        // whatever the files say.
        let (launcher, field) = if g.target == Target::Inetd {
            ("inetd", "inetd.conf's line")
        } else {
            ("xinetd", "server_args")
        };
        can_pass_split(&argv, launcher, field)?;
    }
    // HAProxy and keepalived write --bind as the address they reach the
    // node at: a wildcard there is no address at all.
    let wildcard = g
        .bind
        .trim_matches(|c| c == '[' || c == ']')
        .parse::<std::net::IpAddr>()
        .is_ok_and(|ip| ip.is_unspecified());
    if wildcard && matches!(g.target, Target::Haproxy | Target::Keepalived) {
        return Err(format!(
            "--bind {} is where the service listens on every address; {} needs the node's own address to reach it: give --bind that address",
            g.bind,
            target_name(g.target)
        ));
    }
    if g.postgres && g.target != Target::Haproxy {
        return Err(format!(
            "--postgres writes HAProxy's pair of backends: give it to gen haproxy, not {}",
            target_name(g.target)
        ));
    }
    if g.redis && g.target != Target::Haproxy {
        return Err(format!(
            "--redis writes HAProxy's backend for the Redis primary: give it to gen haproxy, not {}",
            target_name(g.target)
        ));
    }
    // What the pollers poll: a route the service has.
    let path = match g.target {
        // Its own two routes, checked as it is written.
        Target::Haproxy if g.postgres => String::new(),
        // Chosen, and checked, with the Redis port as it is written.
        Target::Haproxy if g.redis => String::new(),
        Target::Haproxy | Target::Keepalived | Target::K8s => {
            poll_path(g.target, g.path.as_deref(), f.service)?
        }
        Target::Xinetd | Target::Systemd | Target::Tcpserver | Target::Inetd => {
            no_path_for_launchers(g)?;
            String::new()
        }
    };
    // The launchers start the service as a user of its own: it must reach
    // everything the service reads, with the groups the launcher gives it,
    // and the service must trust what it reads as that user.
    let account = launcher_account(g)?;
    if let Some(account) = &account {
        for need in needs(f) {
            account.may(&need)?;
        }
    }
    let interval_ms = g.interval.as_millis().max(100);
    let timeout_s = (life.as_secs_f64().ceil() as u64).max(1);
    Ok(match g.target {
        Target::Xinetd => {
            let account = account.as_ref().expect("looked up for xinetd");
            let mut s = format!(
                "# Generated by inetd-health gen xinetd for {} pollers every {:?}.\n\
                 service inetd-health\n{{\n\
                 \tdisable         = no\n\
                 \ttype            = UNLISTED\n\
                 \twait            = no\n\
                 \tsocket_type     = stream\n\
                 \tprotocol        = tcp\n\
                 \tuser            = {user}\n\
                 \tgroup           = {group}\n\
                 \tgroups          = yes\n\
                 \tserver          = {}\n\
                 \tserver_args     = {}\n\
                 \tport            = {}\n\
                 \tbind            = {}\n\
                 \tflags           = REUSE\n\
                 \tinstances       = {instances}\n\
                 \tcps             = {cps} 5\n\
                 \tper_source      = UNLIMITED\n",
                g.pollers,
                g.interval,
                f.program.display(),
                f.args.join(" "),
                g.port,
                g.bind,
                user = account.name,
                group = account.group,
            );
            if !f.allow.is_empty() {
                let _ = writeln!(s, "\tonly_from       = {}", f.allow.join(" "));
            }
            s.push_str("}\n");
            vec![("inetd-health".into(), s)]
        }
        Target::Systemd => {
            let account = account.as_ref().expect("looked up for systemd");
            let command = argv
                .iter()
                .map(|a| systemd_word(a))
                .collect::<Vec<_>>()
                .join(" ");
            // The daemon's own option goes first, with the serving options:
            // after the check it would be the check's (exec's trailing
            // arguments).
            let daemon = std::iter::once(systemd_word(&argv[0]))
                .chain([format!("--max-connections {instances}")])
                .chain(argv[1..].iter().map(|a| systemd_word(a)))
                .collect::<Vec<_>>()
                .join(" ");
            // Names need no quoting (and User= takes none): a name that
            // exists has no white space; `%` is the one specifier character.
            let user = format!(
                "User={}\nGroup={}\n",
                account.name.replace('%', "%%"),
                account.group.replace('%', "%%")
            );
            let backlog = f.backlog;
            let listen = listen_stream(&g.bind, g.port);
            // systemd 253 sends SIGHUP itself for Type=notify-reload, and
            // `systemctl reload` waits for our READY=1; an older one
            // refuses the type, and reloads by ExecReload= (which returns
            // once the signal is sent). Unknown: the form every version
            // takes.
            let reload = match g.systemd_version.or_else(systemd_version) {
                Some(v) if v >= 253 => "Type=notify-reload\n# systemctl reload: SIGHUP, and systemd waits for the reload to end\n# (RELOADING=1, then READY=1). The config is read again and\n# swapped in, the polls in flight finished on the old one; a config\n# that cannot be served is logged and the old one kept.\n",
                _ => "Type=notify\n# systemctl reload: the config read again and swapped in, the polls in\n# flight finished on the old one; a config that cannot be served is\n# logged and the old one kept. (systemd 253 and later: Type=notify-reload\n# instead, and no ExecReload=; gen systemd --systemd-version 253.)\nExecReload=/bin/kill -HUP $MAINPID\n",
            };
            let hardening = "NoNewPrivileges=yes\nProtectSystem=strict\nProtectHome=yes\nPrivateTmp=yes\nPrivateDevices=yes\nRestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX\n";
            vec![
                (
                    "inetd-health.socket".into(),
                    format!(
                        "# Accept=yes: one process per connection. Enable this or\n# inetd-health-daemon.socket.\n[Unit]\nDescription=inetd-health (one process per connection)\n\n[Socket]\nListenStream={listen}\nAccept=yes\nBacklog={backlog}\nMaxConnections={instances}\nMaxConnectionsPerSource={instances}\nTriggerLimitIntervalSec=1s\nTriggerLimitBurst={cps}\n\n[Install]\nWantedBy=sockets.target\n"
                    ),
                ),
                (
                    "inetd-health@.service".into(),
                    format!(
                        "[Unit]\nDescription=inetd-health (one connection)\nCollectMode=inactive-or-failed\n\n[Service]\nExecStart=-{command}\nStandardInput=socket\nStandardOutput=socket\nStandardError=journal\n{user}RuntimeDirectory=inetd-health\nRuntimeDirectoryPreserve=yes\n{hardening}"
                    ),
                ),
                (
                    "inetd-health-daemon.socket".into(),
                    format!(
                        "# Accept=no: one long-lived process. Enable this or\n# inetd-health.socket.\n[Unit]\nDescription=inetd-health (one long-lived process)\n\n[Socket]\nListenStream={listen}\nAccept=no\nBacklog={backlog}\n\n[Install]\nWantedBy=sockets.target\n"
                    ),
                ),
                (
                    "inetd-health-daemon.service".into(),
                    format!(
                        "[Unit]\nDescription=inetd-health (one long-lived process)\nRequires=inetd-health-daemon.socket\n\n[Service]\n{reload}ExecStart={daemon}\nWatchdogSec=30s\n# A crash (a panic aborts the process), a missed watchdog ping or an\n# unexpected exit status: start it again; the socket holds connections\n# meanwhile. A clean stop is not restarted.\nRestart=on-failure\nRestartSec=1s\n{user}RuntimeDirectory=inetd-health\n{hardening}"
                    ),
                ),
            ]
        }
        Target::Tcpserver => {
            let account = account.as_ref().expect("looked up for tcpserver");
            let command = argv
                .iter()
                .map(|a| shell_word(a))
                .collect::<Vec<_>>()
                .join(" ");
            vec![(
                "inetd-health.tcpserver".into(),
                format!(
                    "# Run as root under a supervisor: tcpserver binds, then runs as {name}\n\
                     # (-u {uid} -g {gid}; tcpserver keeps no supplementary groups).\n\
                     # -RHl0: no ident or reverse DNS per poll. -b: the listen queue\n\
                     # (--backlog, else the system's maximum; tcpserver's own is 20).\n\
                     tcpserver -RHl0 -u {uid} -g {gid} -c {instances} -b {backlog} {} {} {command}\n",
                    g.bind,
                    g.port,
                    name = account.name,
                    uid = account.uid,
                    gid = account.gid,
                    backlog = f.backlog,
                ),
            )]
        }
        Target::Inetd => {
            let account = account.as_ref().expect("looked up for inetd");
            // openbsd-inetd runs a service at most 256 times a minute unless
            // its line says otherwise (nowait.MAX), then stops it for ten
            // minutes: sized for the pollers, twice over, never below its
            // default.
            let per_minute = ((rate * 60.0 * 2.0).ceil() as u32).max(256);
            vec![(
                "inetd.conf".into(),
                format!(
                    "# Generated by inetd-health gen inetd for {} pollers every {:?}: one line of\n\
                     # /etc/inetd.conf (openbsd-inetd). nowait.{per_minute}: at most {per_minute} runs a\n\
                     # minute; past that inetd stops the service for ten minutes (its own default\n\
                     # is 256, and -R in /etc/default/openbsd-inetd raises it for every service).\n\
                     # inetd.conf splits on white space, with no quoting: no argument has any.\n\
                     {}:{} stream tcp nowait.{per_minute} {}:{} {} {}\n",
                    g.pollers,
                    g.interval,
                    g.bind,
                    g.port,
                    account.name,
                    account.group,
                    f.program.display(),
                    argv.join(" "),
                ),
            )]
        }
        Target::Haproxy if g.postgres => {
            let pg_port = postgres_pair(f)?;
            vec![(
                "haproxy.cfg".into(),
                postgres_backends(g, f, pg_port, timeout_s),
            )]
        }
        Target::Haproxy if g.redis => {
            let (path, redis_port) = redis_primary(g, f)?;
            vec![(
                "haproxy.cfg".into(),
                redis_backend(g, f, &path, redis_port, timeout_s),
            )]
        }
        Target::Haproxy => {
            let agent = if f.agent {
                format!(
                    " agent-check agent-port {} agent-inter {interval_ms}ms",
                    g.port
                )
            } else {
                String::new()
            };
            vec![(
                "haproxy.cfg".into(),
                format!(
                    "# Generated by inetd-health gen haproxy: the checks of {path} on port {port}.\n\
                     backend inetd_health_checked\n\
                     \x20   mode http\n\
                     \x20   timeout connect 2s\n\
                     \x20   timeout server 30s\n\
                     \x20   timeout check {timeout_s}s\n\
                     \x20   option httpchk\n\
                     \x20   http-check send meth GET uri {path} ver HTTP/1.1 hdr Host {bind}\n\
                     \x20   http-check expect status 200\n\
                     \x20   default-server inter {interval_ms}ms fall 2 rise 2\n\
                     \x20   server s1 {bind}:{port} check port {port} weight 100{agent}\n",
                    port = g.port,
                    bind = g.bind,
                )
            )]
        }
        Target::Keepalived => {
            // The digest of the healthy answer, where it is known without
            // running anything: a route of several checks answers
            // "healthy: N checks passed". One check's answer names what it
            // found (a version, an age), so only the status is checked.
            let (digest, why) = match healthy_body(f.service, &path) {
                Some(body) => (
                    format!(
                        "\x20               digest {}\n",
                        inetd_health::hash::hex(&inetd_health::hash::md5(body.as_bytes()))
                    ),
                    format!(
                        "# digest: MD5 of {:?}, the healthy answer; a warning changes the\n\
                         # answer (and so takes the node out): drop the digest line to keep\n\
                         # warned nodes in.\n",
                        body
                    ),
                ),
                None => (
                    String::new(),
                    "# No digest: the answer names what the check found, which changes;\n\
                     # the status code says it all.\n"
                        .to_owned(),
                ),
            };
            vec![(
                "keepalived.conf".into(),
                format!(
                    "# Generated by inetd-health gen keepalived: HTTP_GET of {path} on port {port}.\n\
                     {why}\
                     virtual_server {bind} {port} {{\n\
                     \x20   delay_loop {delay}\n\
                     \x20   lb_algo rr\n\
                     \x20   lb_kind NAT\n\
                     \x20   protocol TCP\n\
                     \x20   real_server {bind} {port} {{\n\
                     \x20       weight 1\n\
                     \x20       HTTP_GET {{\n\
                     \x20           url {{\n\
                     \x20               path {path}\n\
                     {digest}\
                     \x20               status_code 200\n\
                     \x20           }}\n\
                     \x20           connect_port {port}\n\
                     \x20           connect_timeout {timeout_s}\n\
                     \x20       }}\n\
                     \x20   }}\n\
                     }}\n",
                    port = g.port,
                    bind = g.bind,
                    delay = g.interval.as_secs().max(1),
                ),
            )]
        }
        Target::K8s => {
            let period = g.interval.as_secs().max(1);
            // Readiness is what the pollers poll (/ready when the config
            // has it, or --path); liveness /live when the config has it.
            let live = route_or(f.service, "/live", &path);
            let ready = &path;
            vec![(
                "probes.yaml".into(),
                format!(
                    "# Generated by inetd-health gen k8s: add to the container.\n\
                     livenessProbe:\n  httpGet:\n    path: {live}\n    port: {port}\n  periodSeconds: {period}\n  timeoutSeconds: {timeout_s}\n  failureThreshold: 3\n\
                     readinessProbe:\n  httpGet:\n    path: {ready}\n    port: {port}\n  periodSeconds: {period}\n  timeoutSeconds: {timeout_s}\n  failureThreshold: 2\n",
                    port = g.port,
                ),
            )]
        }
    })
}

/// The routes Patroni's HAProxy config polls, and the roles a postgres
/// check on each must ask for: a node must be a primary (or read-write)
/// for writes to go to it, a standby (or read-only) for reads.
const PG_PAIR: [(&str, &str, [Role; 2]); 2] = [
    ("/primary", "primary", [Role::Primary, Role::ReadWrite]),
    ("/replica", "replica", [Role::Replica, Role::ReadOnly]),
];

/// Whether the service answers Patroni's `/primary` and `/replica` as
/// their names say: each a route running a postgres check of that role.
/// The PostgreSQL port HAProxy forwards to: the `/primary` check's.
fn postgres_pair(f: &Facts<'_>) -> Result<u16, String> {
    let Routes::Table(table) = f.service.routes() else {
        return Err(
            "gen haproxy --postgres polls /primary and /replica, and with one check on the command \
             line every path runs that check: give a config (--config FILE) with a route for each"
                .into(),
        );
    };
    let names = f.service.names();
    let mut port = None;
    for (path, role, roles) in PG_PAIR {
        let Some(route) = table.iter().find(|r| r.path == path) else {
            let listed: Vec<&str> = table.iter().map(|r| r.path.as_str()).collect();
            return Err(format!(
                "gen haproxy --postgres polls {path}, which is not a route of the config (its \
                 routes: {}): add \"{path}\" = [\"CHECK\"], CHECK a postgres check with role = \"{role}\"",
                listed.join(", ")
            ));
        };
        let found = route.checks.iter().find_map(|&i| {
            let (_, spec) = f.checks.iter().find(|(n, _)| *n == names[i])?;
            match &spec.kind {
                Kind::Postgres(server) if roles.contains(&server.role) => Some(server.port),
                _ => None,
            }
        });
        match found {
            Some(p) => {
                port.get_or_insert(p.unwrap_or(PG_DEFAULT_PORT));
            }
            None => {
                return Err(format!(
                    "route {path} runs no postgres check with role = \"{role}\" (or \"{}\"): \
                     HAProxy would send {} to any node it answers 200 for; give {path} such a check",
                    roles[1].as_str(),
                    if role == "primary" { "writes" } else { "reads" },
                ))
            }
        }
    }
    Ok(port.unwrap_or(PG_DEFAULT_PORT))
}

/// Patroni's two backends (its docs' haproxy.cfg), polling this node's
/// service: clients reach the primary through pg_primary and the standbys
/// through pg_replicas.
fn postgres_backends(g: &GenArgs, f: &Facts<'_>, pg_port: u16, timeout_s: u64) -> String {
    let interval_ms = g.interval.as_millis().max(100);
    let mut text = format!(
        "# Generated by inetd-health gen haproxy --postgres: the checks of /primary and\n\
         # /replica on port {port}, as Patroni's REST API is polled. One server line\n\
         # per node, each polled on its own inetd-health; a frontend (mode tcp) per\n\
         # backend.\n",
        port = g.port,
    );
    if f.agent {
        // One route's answer would decide both backends.
        text.push_str(
            "# No agent-check: the agent reports one route, and each backend polls its own.\n",
        );
    }
    for (name, path, cut) in [
        (
            "pg_primary",
            "/primary",
            "no write goes on to a demoted primary",
        ),
        (
            "pg_replicas",
            "/replica",
            "no read goes on from a standby left behind",
        ),
    ] {
        let _ = write!(
            text,
            "\nbackend {name}\n\
             \x20   mode tcp\n\
             \x20   timeout connect 2s\n\
             \x20   # A pooled session may idle for long.\n\
             \x20   timeout server 30m\n\
             \x20   timeout check {timeout_s}s\n\
             \x20   option httpchk OPTIONS {path}\n\
             \x20   http-check expect status 200\n\
             \x20   # A node marked down loses its sessions: {cut}.\n\
             \x20   default-server inter {interval_ms}ms fall 3 rise 2 on-marked-down shutdown-sessions\n\
             \x20   server pg1 {bind}:{pg_port} check port {port}\n",
            bind = g.bind,
            port = g.port,
        );
    }
    text
}

/// The route HAProxy's `redis_primary` backend polls, and the Redis port
/// it forwards to: `--path`, else `/primary`, else the one route, that
/// runs a redis check with role primary (with one check on the command
/// line, `/`, every path running it). Without such a check HAProxy would
/// send writes to any node that answers, a replica's included.
fn redis_primary(g: &GenArgs, f: &Facts<'_>) -> Result<(String, u16), String> {
    let names = f.service.names();
    let routes = f.service.routes();
    // The port of the first redis primary check among `checks`.
    let primary_of = |checks: &[usize]| {
        checks.iter().find_map(|&i| {
            let (_, spec) = f.checks.iter().find(|(n, _)| *n == names[i])?;
            match &spec.kind {
                Kind::Redis(server) if server.role == RedisRole::Primary => {
                    Some(redis_port(server))
                }
                _ => None,
            }
        })
    };
    let none = |what: &str| {
        format!(
            "{what} runs no redis check with role = \"primary\": HAProxy would send writes to any \
             node it answers 200 for, a replica's included; give it one (role = \"primary\" in the \
             config, --role primary on the command line)"
        )
    };
    let (path, checks) = match (&g.path, routes) {
        (Some(given), _) => {
            let path = poll_path(g.target, Some(given), f.service)?;
            let selected = inetd_health::route::select(routes, &names, &path)
                .map_err(|_| format!("--path {path:?} is not a route of the service"))?;
            (path, selected.checks)
        }
        (None, Routes::Any(checks)) => ("/".to_owned(), checks.clone()),
        (None, Routes::Table(table)) => {
            let running: Vec<&str> = table
                .iter()
                .filter(|r| primary_of(&r.checks).is_some())
                .map(|r| r.path.as_str())
                .collect();
            let chosen = match running.as_slice() {
                _ if running.contains(&"/primary") => "/primary",
                [only] => only,
                [] => {
                    let listed: Vec<&str> = table.iter().map(|r| r.path.as_str()).collect();
                    return Err(format!(
                        "gen haproxy --redis polls a route that runs a redis check with role = \"primary\", \
                         and no route of the config does (its routes: {}): add \"/primary\" = [\"CHECK\"], \
                         CHECK a redis check with role = \"primary\"",
                        listed.join(", ")
                    ));
                }
                several => {
                    return Err(format!(
                        "which route does redis_primary poll? several run a redis check with role = \"primary\" \
                         ({}) and none is /primary: choose one with --path (gen haproxy --redis --path {})",
                        several.join(", "),
                        several[0]
                    ))
                }
            };
            let route = table.iter().find(|r| r.path == chosen).expect("listed");
            (chosen.to_owned(), route.checks.clone())
        }
    };
    let what = match routes {
        Routes::Any(_) if g.path.is_none() => "the command line's check".to_owned(),
        _ => format!("route {path}"),
    };
    let port = primary_of(&checks).ok_or_else(|| none(&what))?;
    Ok((path, port))
}

/// The port HAProxy forwards a Redis client to: the check's, or, over a
/// socket, that of the address the Sentinels name; else Redis's own.
fn redis_port(server: &RedisServer) -> u16 {
    server
        .port
        .or_else(|| {
            server
                .address
                .as_deref()
                .and_then(split_host_port)
                .map(|(_, port)| port)
        })
        .unwrap_or(REDIS_PORT)
}

/// A backend for the Redis primary that polls this node's HTTP check, where
/// a `tcp-check` script would send PING and INFO replication itself.
fn redis_backend(
    g: &GenArgs,
    f: &Facts<'_>,
    path: &str,
    redis_port: u16,
    timeout_s: u64,
) -> String {
    let interval_ms = g.interval.as_millis().max(100);
    let mut text = format!(
        "# Generated by inetd-health gen haproxy --redis: the checks of {path} on port\n\
         # {port}, polled over HTTP instead of a tcp-check script. One server line per\n\
         # node, each polled on its own inetd-health; a frontend (mode tcp) sends to\n\
         # the backend.\n",
        port = g.port,
    );
    if f.agent {
        text.push_str(&format!(
            "# No agent-check: the agent reports its own route, this backend polls {path}.\n"
        ));
    }
    let _ = write!(
        text,
        "\nbackend redis_primary\n\
         \x20   mode tcp\n\
         \x20   timeout connect 2s\n\
         \x20   # A blocked (BLPOP) or subscribed client may idle for long.\n\
         \x20   timeout server 30m\n\
         \x20   timeout check {timeout_s}s\n\
         \x20   option httpchk GET {path}\n\
         \x20   http-check expect status 200\n\
         \x20   # A node marked down loses its sessions: no write goes on to a demoted primary.\n\
         \x20   default-server inter {interval_ms}ms fall 3 rise 2 on-marked-down shutdown-sessions\n\
         \x20   server redis1 {bind}:{redis_port} check port {port}\n",
        bind = g.bind,
        port = g.port,
    );
    text
}

/// The healthy body of `path`, when it does not depend on what the checks
/// find: a route of several checks.
fn healthy_body(service: &Service, path: &str) -> Option<String> {
    match service.routes() {
        Routes::Table(table) => {
            let route = table.iter().find(|r| r.path == path)?;
            (route.checks.len() > 1)
                .then(|| format!("healthy: {} checks passed\n", route.checks.len()))
        }
        Routes::Any(_) => None,
    }
}

/// `ListenStream=` for an address and port (IPv6 in brackets).
fn listen_stream(bind: &str, port: u16) -> String {
    if bind.contains(':') && !bind.starts_with('[') {
        format!("[{bind}]:{port}")
    } else {
        format!("{bind}:{port}")
    }
}

/// The path the pollers poll, one the service answers with its checks
/// (never a 404): `--path` if given, when it is a route (or one check of a
/// route; `/metrics` is always 200 and so no health check); else `/ready`
/// if the service has it, else `/`, else its only route. Several routes
/// with neither are refused: which one is the operator's choice.
fn poll_path(target: Target, given: Option<&str>, service: &Service) -> Result<String, String> {
    let routes = service.routes();
    let listed = || match routes {
        Routes::Table(table) => table
            .iter()
            .map(|r| r.path.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        Routes::Any(_) => "any path".to_owned(),
    };
    if let Some(path) = given {
        // A route's spelling (config.rs `check_route_path`), so that it
        // goes into each poller's file as it is.
        let well_formed = path.starts_with('/')
            && path
                .chars()
                .all(|c| c.is_ascii_graphic() && !matches!(c, '?' | '#' | '%'));
        let selects = well_formed
            && matches!(
                inetd_health::route::select(routes, &service.names(), path),
                Ok(s) if !s.metrics && !s.checks.is_empty()
            );
        return if selects {
            Ok(path.to_owned())
        } else {
            Err(format!(
                "--path {path:?} is not a route of the service (its routes: {}): give one of them",
                listed()
            ))
        };
    }
    match routes {
        Routes::Any(_) => Ok("/".to_owned()),
        Routes::Table(table) => {
            if let Some(found) = ["/ready", "/"]
                .into_iter()
                .find(|want| table.iter().any(|r| r.path == *want))
            {
                return Ok(found.to_owned());
            }
            match table.as_slice() {
                [only] => Ok(only.path.clone()),
                _ => Err(format!(
                    "which route do the pollers poll? the config has no /ready or / route but several others ({}), \
                     and any other path is a 404: choose one with --path (gen {} --path {})",
                    listed(),
                    target_name(target),
                    table.first().map_or("/ROUTE", |r| r.path.as_str()),
                )),
            }
        }
    }
}

/// `--path` is the pollers': a launcher has no use for it.
fn no_path_for_launchers(g: &GenArgs) -> Result<(), String> {
    match (&g.path, g.target) {
        (Some(path), Target::Xinetd | Target::Systemd | Target::Tcpserver | Target::Inetd) => Err(format!(
            "--path {path} chooses what the pollers poll: give it to gen haproxy, keepalived or k8s, not {}",
            target_name(g.target)
        )),
        _ => Ok(()),
    }
}

/// The target as it is written on the command line.
fn target_name(target: Target) -> &'static str {
    match target {
        Target::Xinetd => "xinetd",
        Target::Systemd => "systemd",
        Target::Tcpserver => "tcpserver",
        Target::Inetd => "inetd",
        Target::Haproxy => "haproxy",
        Target::Keepalived => "keepalived",
        Target::K8s => "k8s",
    }
}

fn route_or(service: &Service, want: &str, otherwise: &str) -> String {
    match service.routes() {
        Routes::Table(table) if table.iter().any(|r| r.path == want) => want.to_owned(),
        _ => otherwise.to_owned(),
    }
}

/// `gen`'s view of the command line's check: what it reads at poll time
/// (the program of `exec`, the `--defaults-extra-file` of a MariaDB
/// check, the `--passfile` of a postgres one, the `--credentials-file` of
/// a redis one, `--disable-file`). `words` is the check as given after
/// `--`.
pub fn check_of(
    command: &CheckCommand,
    words: &[String],
    disable_file: Option<&Path>,
) -> Option<(String, Spec)> {
    use inetd_health::spec::Server;
    // The database checks' flags are clap's own; the option file is the
    // value of --defaults-extra-file, as clap took it.
    let server = || Server {
        defaults_extra_file: words.iter().enumerate().find_map(|(i, w)| {
            match w.strip_prefix("--defaults-extra-file") {
                Some("") => words.get(i + 1).map(PathBuf::from),
                Some(rest) => rest.strip_prefix('=').map(PathBuf::from),
                None => None,
            }
        }),
        ..Server::default()
    };
    let kind = match command {
        CheckCommand::Exec { nagios, argv } => Kind::Exec {
            command: argv.clone(),
            nagios: *nagios,
        },
        CheckCommand::Tcp { target } => Kind::Tcp {
            target: target.clone(),
        },
        CheckCommand::Mariadb { .. } => Kind::Mariadb(server()),
        CheckCommand::Galera { .. } => Kind::Galera {
            server: server(),
            available_when_donor: false,
            read_only_is_down: false,
        },
        CheckCommand::Replica { .. } => Kind::Replica {
            server: server(),
            max_lag: 0,
            connection_name: None,
        },
        CheckCommand::Postgres(pg) => Kind::Postgres(Box::new(pg.server())),
        CheckCommand::Redis(redis) => Kind::Redis(Box::new(redis.server())),
        CheckCommand::Gen(_) | CheckCommand::Doctor(_) => return None,
    };
    let spec = Spec {
        disable_file: disable_file.map(Path::to_path_buf),
        ..Spec::new(kind)
    };
    Some((spec.kind.name().to_owned(), spec))
}

/// Which groups the launcher gives the service besides the user's primary
/// group: xinetd (`groups = yes`) and systemd (`User=`) give the user's
/// supplementary groups too, tcpserver's `-g` only the one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Groups {
    All,
    PrimaryOnly,
}

/// The user the launcher runs the service as, as the system knows it.
#[derive(Debug)]
struct Account {
    name: String,
    uid: u32,
    gid: u32,
    /// The primary group's name (its number if it has none).
    group: String,
    /// Every group the service runs with, the primary one included.
    groups: Vec<u32>,
}

/// How the service uses a file at poll time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Access {
    /// It opens the file for reading.
    Read,
    /// It runs the file (and reads it, if it is a script).
    Execute,
    /// It looks the file up (a disable file): every directory on the way
    /// that exists must be searchable; the file need not exist.
    Look,
}

/// Which of the service's own refusals a file is subject to, besides the
/// kernel's permission check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Trust {
    /// None: the kernel's permission check alone.
    Any,
    /// The config file's rules (`config::TRUST`): a regular file of at
    /// most 1 MiB, not writable by group or others, owned by the service's
    /// user or root.
    Config,
    /// A database check's option file's rules (`option_file::TRUST`): a
    /// regular file of at most 64 KiB, not readable by others, not
    /// writable by group or others, owned by the service's user or root.
    OptionFile,
    /// A postgres check's password file's rules
    /// (`check::postgres::PASSFILE_TRUST`, libpq's): as an option file's,
    /// and not readable by the group either, so that only its owner (the
    /// service's user) or root reads it.
    Passfile,
    /// A redis check's credentials file's rules
    /// (`check::redis::CREDENTIALS_TRUST`): a password file's.
    Credentials,
}

impl Trust {
    /// The rules the service checks the file against, as it opens it.
    fn rules(self) -> Option<&'static Rules> {
        match self {
            Trust::Any => None,
            Trust::Config => Some(&config::TRUST),
            Trust::OptionFile => Some(&option_file::TRUST),
            Trust::Passfile => Some(&PASSFILE_TRUST),
            Trust::Credentials => Some(&CREDENTIALS_TRUST),
        }
    }

    /// Whether only the file's owner may read it (its group may not): the
    /// service's user must then own it.
    fn owner_only(self) -> bool {
        matches!(self, Trust::Passfile | Trust::Credentials)
    }
}

/// A file the service uses at poll time.
#[derive(Debug)]
struct Need {
    path: PathBuf,
    access: Access,
    /// What the file is, in the operator's words.
    what: String,
    /// What the service itself refuses of it.
    trust: Trust,
}

/// The files the service uses at poll time: the program, the config file,
/// and what each check names (an option file, a program, a disable file).
fn needs(f: &Facts<'_>) -> Vec<Need> {
    let mut needs = vec![Need {
        path: f.program.clone(),
        access: Access::Execute,
        what: "the program the launcher starts".into(),
        trust: Trust::Any,
    }];
    if let Some(config) = &f.config {
        needs.push(config_need(config));
    }
    for (name, spec) in &f.checks {
        let server = match &spec.kind {
            Kind::Mariadb(server) => Some(server),
            Kind::Galera { server, .. } | Kind::Replica { server, .. } => Some(server),
            _ => None,
        };
        if let Some(file) = server.and_then(|s| s.defaults_extra_file.as_ref()) {
            needs.push(Need {
                path: file.clone(),
                access: Access::Read,
                what: format!("check {name}'s defaults-extra-file"),
                trust: Trust::OptionFile,
            });
        }
        if let Kind::Postgres(server) = &spec.kind {
            if let Some(file) = &server.passfile {
                needs.push(Need {
                    path: file.clone(),
                    access: Access::Read,
                    what: format!("check {name}'s passfile"),
                    trust: Trust::Passfile,
                });
            }
        }
        if let Kind::Redis(server) = &spec.kind {
            if let Some(file) = &server.credentials_file {
                needs.push(Need {
                    path: file.clone(),
                    access: Access::Read,
                    what: format!("check {name}'s credentials-file"),
                    trust: Trust::Credentials,
                });
            }
        }
        if let Kind::Exec { command, .. } = &spec.kind {
            if let Some(program) = command.first().and_then(|p| find_program(Path::new(p))) {
                needs.push(Need {
                    path: program,
                    access: Access::Execute,
                    what: format!("check {name}'s program"),
                    trust: Trust::Any,
                });
            }
        }
        if let Some(file) = &spec.disable_file {
            needs.push(Need {
                path: file.clone(),
                access: Access::Look,
                what: format!("check {name}'s disable-file"),
                trust: Trust::Any,
            });
        }
    }
    needs
}

fn config_need(config: &Path) -> Need {
    Need {
        path: config.to_path_buf(),
        access: Access::Read,
        what: "the config file".into(),
        trust: Trust::Config,
    }
}

/// The user a launcher target runs the service as, with the groups that
/// launcher gives it; `None` for the pollers, which start nothing.
fn launcher_account(g: &GenArgs) -> Result<Option<Account>, String> {
    let groups = match g.target {
        // openbsd-inetd calls initgroups for the user it runs a service as.
        Target::Xinetd | Target::Systemd | Target::Inetd => Groups::All,
        Target::Tcpserver => Groups::PrimaryOnly,
        Target::Haproxy | Target::Keepalived | Target::K8s => return Ok(None),
    };
    Account::lookup(&g.user, groups).map(Some)
}

/// The config file, before gen reads it itself: for a launcher target,
/// whether the service, run as the target's user, can read it and will
/// trust it (owner and mode against that user's uid, not gen's); then
/// whether gen, reading it as its own user with the same rule, will.
pub fn check_config(g: &GenArgs, config: &Path) -> Result<(), String> {
    no_path_for_launchers(g)?;
    let Some(account) = launcher_account(g)? else {
        return Ok(());
    };
    account.may(&config_need(config))?;
    // The service's rule holds; gen's own reading of the file (its parse,
    // with the library's check against gen's euid) must accept it too: a
    // config owned by the service's user, read by gen as root, is not.
    let owner = std::fs::metadata(config)
        .map_err(|e| format!("{}: {e}", config.display()))?
        .uid();
    let euid = sys::euid();
    if !config::TRUST.owners.admit(owner, euid) {
        return Err(format!(
            "gen reads {} itself, as {}, and trusts a config only when root or its own user owns it \
             (the rule the service applies as {}): chown root {0}, or run gen as {2}",
            config.display(),
            user_name(euid),
            account.name,
        ));
    }
    Ok(())
}

/// A program as the service will run it: a path as given, a bare name
/// through `PATH` as gen sees it (the launcher's may differ: a name found
/// nowhere here is left to the poll to report).
fn find_program(program: &Path) -> Option<PathBuf> {
    if program.as_os_str().is_empty() {
        return None;
    }
    if program.components().count() > 1 || program.is_absolute() {
        return Some(program.to_path_buf());
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(program))
        .find(|candidate| {
            std::fs::metadata(candidate).is_ok_and(|m| m.is_file() && m.mode() & 0o111 != 0)
        })
}

impl Account {
    /// The user `name`, with the groups the launcher will give it.
    fn lookup(name: &str, groups: Groups) -> Result<Account, String> {
        let missing = || {
            if name == DEFAULT_USER {
                format!(
                    "user {name} does not exist: install the inetd-health package (it creates the user), \
                     or create it with `adduser --system --group {name}`, or give gen --user NAME"
                )
            } else {
                format!(
                    "user {name} does not exist: create it (`adduser --system --group {name}`) or give another --user"
                )
            }
        };
        let c_name = CString::new(name).map_err(|_| missing())?;
        let (uid, gid) = passwd_by_name(&c_name)?.ok_or_else(missing)?;
        let groups = match groups {
            Groups::All => group_list(&c_name, gid)?,
            Groups::PrimaryOnly => vec![gid],
        };
        Ok(Account {
            name: name.to_owned(),
            uid,
            gid,
            group: group_name(gid),
            groups,
        })
    }

    /// Whether the service, run as this account, can use `need` as it
    /// will at poll time; if not, why and what to do.
    fn may(&self, need: &Need) -> Result<(), String> {
        let path = if need.path.is_absolute() {
            need.path.clone()
        } else {
            std::env::current_dir()
                .map(|cwd| cwd.join(&need.path))
                .unwrap_or_else(|_| need.path.clone())
        };
        let fix_user = "or give gen --user NAME";
        let user = &self.name;
        let what = &need.what;
        // The file itself, for reading or running.
        let file = match need.access {
            Access::Look => None,
            Access::Read | Access::Execute => Some(match std::fs::metadata(&path) {
                Ok(meta) => meta,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    let verb = if need.access == Access::Read {
                        "read"
                    } else {
                        "run"
                    };
                    return Err(format!(
                        "user {user} cannot {verb} {}, {what}: it does not exist",
                        path.display()
                    ));
                }
                Err(e) => {
                    return Err(format!(
                        "cannot tell whether user {user} can use {}, {what}: {e}",
                        path.display()
                    ))
                }
            }),
        };
        // Every directory on the way, as written and with links resolved.
        let mut dirs: Vec<PathBuf> = path.ancestors().skip(1).map(Path::to_path_buf).collect();
        if let Ok(real) = path.canonicalize() {
            dirs.extend(real.ancestors().skip(1).map(Path::to_path_buf));
        }
        dirs.reverse();
        dirs.dedup();
        for dir in dirs {
            let meta = match std::fs::metadata(&dir) {
                Ok(meta) => meta,
                // A disable file's directory may not exist yet: the lookup
                // then finds no file, as it should.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => break,
                Err(e) => {
                    return Err(format!(
                        "cannot tell whether user {user} can reach {}, {what}: {}: {e}",
                        path.display(),
                        dir.display()
                    ))
                }
            };
            if meta.is_dir() && !self.permits(&meta, 0o1) {
                return Err(format!(
                    "user {user} cannot reach {}, {what}: no search (x) permission on {} ({}): {}, {fix_user}",
                    path.display(),
                    dir.display(),
                    self.describe(&meta),
                    self.fix(&meta, "x", &dir),
                ));
            }
        }
        let Some(meta) = file else { return Ok(()) };
        self.trusts(need, &path, &meta)?;
        let (want, verb, bits) = match need.access {
            Access::Execute if is_script(&path) => (0o5, "run", "rx"),
            Access::Execute => (0o1, "run", "x"),
            _ => (0o4, "read", "r"),
        };
        if need.access == Access::Execute && !meta.is_file() {
            return Err(format!(
                "user {user} cannot run {}, {what}: not a regular file",
                path.display()
            ));
        }
        if !self.permits(&meta, want) {
            let fix = if need.trust.owner_only() && meta.uid() != self.uid {
                // Its group may not read it: the service's user must own it.
                format!("chown {user} {}", path.display())
            } else {
                self.fix(&meta, bits, &path)
            };
            return Err(format!(
                "user {user} cannot {verb} {}, {what} ({}): {fix}, {fix_user}",
                path.display(),
                self.describe(&meta),
            ));
        }
        Ok(())
    }

    /// Whether the service, run as this account, accepts the file `need`
    /// by owner, mode, type and size, as it checks them when it opens it;
    /// if not, every reason and what to do, so that the account can still
    /// read it afterwards.
    ///
    /// The service's own rules for the file (`config::TRUST`,
    /// `option_file::TRUST`, `check::postgres::PASSFILE_TRUST`,
    /// `check::redis::CREDENTIALS_TRUST`), checked against this account's
    /// uid, not gen's: the service compares the owner with its own euid,
    /// the user the launcher gives it.
    fn trusts(&self, need: &Need, path: &Path, meta: &std::fs::Metadata) -> Result<(), String> {
        let Some(rules) = need.trust.rules() else {
            return Ok(());
        };
        let user = &self.name;
        let shown = path.display();
        let refuses = |why: &str, fix: &str| {
            format!(
                "the service, run as {user}, refuses {shown}, {} ({}): {why}{fix}",
                need.what,
                self.describe(meta)
            )
        };
        let mut why: Vec<String> = Vec::new();
        let mut chmod: Vec<&str> = Vec::new();
        let mut fixed_mode = meta.mode() & 0o7777;
        let mut fixed_owner = meta.uid();
        // Every reason at once, so that one round of fixes does.
        for refusal in rules.refusals(&Stat::from(meta), self.uid) {
            match refusal {
                // Either is the file's one reason.
                Untrusted::NotRegular | Untrusted::TooLarge { .. } => {
                    return Err(refuses(&refusal.to_string(), ""));
                }
                Untrusted::ReadableByOthers { mode } if need.trust.owner_only() => {
                    let who = if mode & 0o004 != 0 {
                        "others"
                    } else {
                        "its group"
                    };
                    why.push(if need.trust == Trust::Passfile {
                        format!(
                            "readable by {who}, and it holds passwords (libpq refuses such a file too)"
                        )
                    } else {
                        format!("readable by {who}, and it holds a password")
                    });
                    chmod.push("go-rwx");
                    fixed_mode &= !0o077;
                }
                Untrusted::ReadableByOthers { .. } => {
                    why.push("readable by others, and it holds a password".into());
                    chmod.push("o-r");
                    fixed_mode &= !0o004;
                }
                Untrusted::WritableByOthers { .. } => {
                    why.push(
                        match need.trust {
                            Trust::Config => {
                                "writable by group or others, and it names programs to run"
                            }
                            _ => "writable by group or others, who could choose the credentials",
                        }
                        .into(),
                    );
                    // go-rwx, for a password file readable too, says it.
                    if fixed_mode & 0o022 != 0 {
                        chmod.push("go-w");
                        fixed_mode &= !0o022;
                    }
                }
                Untrusted::Owner { uid, .. } => {
                    why.push(format!(
                        "owned by {}, neither root nor {user}",
                        user_name(uid)
                    ));
                    // Root's would do, but only its owner reads a password
                    // file: the user's then.
                    fixed_owner = if need.trust.owner_only() { self.uid } else { 0 };
                }
                other => why.push(other.to_string()),
            }
        }
        if why.is_empty() {
            return Ok(());
        }
        let mut fix = Vec::new();
        if fixed_owner != meta.uid() {
            fix.push(format!("chown {} {shown}", user_name(fixed_owner)));
        }
        if !chmod.is_empty() {
            fix.push(format!("chmod {} {shown}", chmod.join(",")));
        }
        // Fixed, it must still be readable by the account: a password
        // file's group may not read it, so the account must own it.
        let fixed = (meta.mode() & libc::S_IFMT) | fixed_mode;
        if !permits(self.uid, &self.groups, fixed, fixed_owner, meta.gid(), 0o4) {
            if need.trust.owner_only() && fixed_owner != self.uid {
                fix.push(format!("chown {user} {shown}"));
                if !permits(self.uid, &self.groups, fixed, self.uid, meta.gid(), 0o4) {
                    fix.push(format!("chmod u+r {shown}"));
                }
            } else {
                fix.push(self.fix_for(fixed_owner, meta.gid(), false, "r", path));
            }
        }
        Err(refuses(
            &why.join("; "),
            &format!(": {}", fix.join(", then ")),
        ))
    }

    /// Whether the kernel lets this account have `want` (bits of r=4, w=2,
    /// x=1) on a file of `meta`'s mode, owner and group: the owner's bits
    /// if it owns the file, else the group's if it is in the file's group,
    /// else the others'. POSIX ACLs are not consulted.
    fn permits(&self, meta: &std::fs::Metadata, want: u32) -> bool {
        permits(
            self.uid,
            &self.groups,
            meta.mode(),
            meta.uid(),
            meta.gid(),
            want,
        )
    }

    fn describe(&self, meta: &std::fs::Metadata) -> String {
        format!(
            "mode {:04o}, owner {}, group {}",
            meta.mode() & 0o7777,
            user_name(meta.uid()),
            group_name(meta.gid())
        )
    }

    /// What to do so that this account gets `bits` on `path`.
    fn fix(&self, meta: &std::fs::Metadata, bits: &str, path: &Path) -> String {
        self.fix_for(meta.uid(), meta.gid(), meta.is_dir(), bits, path)
    }

    /// What to do so that this account gets `bits` on `path`, of `owner`
    /// and `group`.
    fn fix_for(&self, owner: u32, group: u32, is_dir: bool, bits: &str, path: &Path) -> String {
        let path = path.display();
        if owner == self.uid {
            format!("chmod u+{bits} {path}")
        } else if self.groups.contains(&group) {
            format!("chmod g+{bits} {path}")
        } else if is_dir {
            format!(
                "chmod o+x {path}, or chgrp {} {path} and chmod g+x {path}",
                self.group
            )
        } else {
            format!("chgrp {} {path} and chmod g+{bits} {path}", self.group)
        }
    }
}

/// The permission check of the kernel for mode bits: root may read and
/// search anything, and run what has any x bit; others get the owner's,
/// the group's or the others' bits, the first class that matches.
fn permits(uid: u32, groups: &[u32], mode: u32, owner: u32, group: u32, want: u32) -> bool {
    if uid == 0 {
        let is_dir = mode & libc::S_IFMT == libc::S_IFDIR;
        return want & 0o1 == 0 || is_dir || mode & 0o111 != 0;
    }
    let bits = if owner == uid {
        mode >> 6
    } else if groups.contains(&group) {
        mode >> 3
    } else {
        mode
    } & 0o7;
    bits & want == want
}

/// A file that starts with `#!`: its interpreter opens it, so running it
/// needs read permission too.
fn is_script(path: &Path) -> bool {
    use std::io::Read as _;
    let mut head = [0u8; 2];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .is_ok_and(|()| &head == b"#!")
}

/// The uid and primary gid of the user `name`, or `None` if there is no
/// such user.
fn passwd_by_name(name: &CStr) -> Result<Option<(u32, u32)>, String> {
    sys::user_ids(name).map_err(|e| format!("looking up user {}: {e}", name.to_string_lossy()))
}

/// The groups `name` runs with (primary `gid` first), as `initgroups`
/// would set them.
fn group_list(name: &CStr, gid: u32) -> Result<Vec<u32>, String> {
    sys::group_list(name, gid).ok_or_else(|| {
        format!(
            "looking up the groups of user {}: getgrouplist failed",
            name.to_string_lossy()
        )
    })
}

/// A user's name by uid, or the number.
fn user_name(uid: u32) -> String {
    sys::user_name(uid).unwrap_or_else(|| uid.to_string())
}

/// A group's name by gid, or the number.
fn group_name(gid: u32) -> String {
    sys::group_name(gid).unwrap_or_else(|| gid.to_string())
}

/// xinetd splits `server =` and `server_args =` on white space and knows
/// no quoting, as inetd splits its inetd.conf line: an argument with white
/// space (or any control character, which would end or corrupt the line)
/// or an empty one cannot reach the service as it is. `launcher` and
/// `field` name them in the refusal.
fn can_pass_split(argv: &[String], launcher: &str, field: &str) -> Result<(), String> {
    for arg in argv {
        if arg.is_empty() || arg.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(format!(
                "{launcher} cannot pass the argument {arg:?}: {field} is split on white space, \
                 with no quoting, and an empty argument is lost; put the check in a config file \
                 (--config FILE) and gen from that"
            ));
        }
    }
    Ok(())
}

/// One argument of `ExecStart=`, as systemd.service(5) and
/// systemd.syntax(7) read it back: `%` (a specifier) is written `%%` and
/// `$` (an environment variable) `$$`, both expanded quoted or not; an
/// argument with white space, a quote, a backslash or a control
/// character, an empty one, and a lone `;` (a command separator) are
/// double-quoted, with `\` and `"` escaped and control characters written
/// as C escapes.
fn systemd_word(arg: &str) -> String {
    let quote = arg.is_empty()
        || arg == ";"
        || arg
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '"' | '\'' | '\\'));
    let mut word = String::with_capacity(arg.len() + 2);
    for c in arg.chars() {
        match c {
            '%' => word.push_str("%%"),
            '$' => word.push_str("$$"),
            '\\' => word.push_str("\\\\"),
            '"' => word.push_str("\\\""),
            '\n' => word.push_str("\\n"),
            '\t' => word.push_str("\\t"),
            c if c.is_ascii_control() => {
                let _ = write!(word, "\\x{:02x}", u32::from(c));
            }
            c if c.is_control() => {
                let _ = write!(word, "\\u{:04x}", u32::from(c));
            }
            c => word.push(c),
        }
    }
    if quote {
        format!("\"{word}\"")
    } else {
        word
    }
}

/// One word of a POSIX shell command line: as it is when it has nothing
/// the shell would read, else in single quotes (a `'` as `'\''`).
fn shell_word(arg: &str) -> String {
    let plain = !arg.is_empty()
        && arg
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-+=:,@%^".contains(&b));
    if plain {
        arg.to_owned()
    } else {
        format!("'{}'", arg.replace('\'', "'\\''"))
    }
}

/// Writes the files into `dir`, or prints them (one only) to stdout.
pub fn write(files: &[(String, String)], dir: Option<&Path>) -> Result<(), String> {
    match dir {
        Some(dir) => {
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            for (name, text) in files {
                let path = dir.join(name);
                std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
                println!("{}", path.display());
            }
            Ok(())
        }
        None if files.len() == 1 => {
            print!("{}", files[0].1);
            Ok(())
        }
        None => Err("this target writes several files: give --output-dir DIR".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: u32 = 0o100_000;
    const DIR: u32 = 0o040_000;

    #[test]
    fn permission_is_the_first_class_that_matches() {
        // (uid, groups, mode, owner, group, want, allowed)
        let cases = [
            // Others' bits.
            (1000, vec![1000], FILE | 0o644, 0, 0, 0o4, true),
            (1000, vec![1000], FILE | 0o640, 0, 0, 0o4, false),
            (1000, vec![1000], FILE | 0o600, 0, 0, 0o4, false),
            // The group's, by the primary group or a supplementary one.
            (1000, vec![1000], FILE | 0o640, 0, 1000, 0o4, true),
            (1000, vec![1000, 4], FILE | 0o640, 0, 4, 0o4, true),
            (1000, vec![1000], FILE | 0o640, 0, 4, 0o4, false),
            // The owner's bits alone for the owner, even when the group's
            // or the others' would allow.
            (1000, vec![1000], FILE | 0o044, 1000, 1000, 0o4, false),
            (1000, vec![1000], FILE | 0o400, 1000, 0, 0o4, true),
            // The group's alone for a member.
            (1000, vec![1000], FILE | 0o404, 0, 1000, 0o4, false),
            // Execute and read-and-execute.
            (1000, vec![1000], FILE | 0o711, 0, 0, 0o1, true),
            (1000, vec![1000], FILE | 0o711, 0, 0, 0o5, false),
            (1000, vec![1000], FILE | 0o755, 0, 0, 0o5, true),
            // Directories: search is x.
            (1000, vec![1000], DIR | 0o750, 0, 0, 0o1, false),
            (1000, vec![1000], DIR | 0o751, 0, 0, 0o1, true),
            (1000, vec![1000], DIR | 0o750, 0, 1000, 0o1, true),
            // Root reads and searches anything (mode 0000 here), runs what
            // has an x bit.
            (0, vec![0], FILE, 5, 5, 0o4, true),
            (0, vec![0], DIR, 5, 5, 0o1, true),
            (0, vec![0], FILE | 0o600, 5, 5, 0o1, false),
            (0, vec![0], FILE | 0o010, 5, 5, 0o1, true),
        ];
        for (uid, groups, mode, owner, group, want, allowed) in cases {
            assert_eq!(
                permits(uid, &groups, mode, owner, group, want),
                allowed,
                "uid {uid} groups {groups:?} mode {mode:o} {owner}:{group} want {want:o}"
            );
        }
    }

    #[test]
    fn systemd_versions_are_read_from_systemctl() {
        assert_eq!(
            parse_systemd_version("systemd 252 (252.39-1~deb12u1)\n+PAM +AUDIT\n"),
            Some(252)
        );
        assert_eq!(parse_systemd_version("systemd 256 (256.7)\n"), Some(256));
        assert_eq!(parse_systemd_version("not systemd\n"), None);
        assert_eq!(parse_systemd_version(""), None);
    }

    #[test]
    fn systemd_words_are_escaped_and_quoted() {
        for (arg, word) in [
            ("--config", "--config"),
            (
                "/etc/inetd-health/config.toml",
                "/etc/inetd-health/config.toml",
            ),
            ("50%", "50%%"),
            ("$HOME", "$$HOME"),
            ("a%b$c", "a%%b$$c"),
            ("exit 0", "\"exit 0\""),
            ("", "\"\""),
            (";", "\";\""),
            ("a;b", "a;b"),
            ("say \"hi\"", "\"say \\\"hi\\\"\""),
            ("it's", "\"it's\""),
            ("back\\slash", "\"back\\\\slash\""),
            ("tab\there", "\"tab\\there\""),
            ("line\nbreak", "\"line\\nbreak\""),
            ("bell\x07", "\"bell\\x07\""),
            ("é", "é"),
        ] {
            assert_eq!(systemd_word(arg), word, "{arg:?}");
        }
    }

    #[test]
    fn shell_words_are_single_quoted_when_needed() {
        for (arg, word) in [
            ("--config", "--config"),
            ("/usr/bin/inetd-health", "/usr/bin/inetd-health"),
            ("10%", "10%"),
            ("exit 0", "'exit 0'"),
            ("$HOME", "'$HOME'"),
            ("it's", "'it'\\''s'"),
            ("", "''"),
        ] {
            assert_eq!(shell_word(arg), word, "{arg:?}");
        }
    }

    #[test]
    fn xinetd_refuses_what_server_args_cannot_carry() {
        let argv = |args: &[&str]| args.iter().map(|a| a.to_string()).collect::<Vec<_>>();
        assert!(can_pass_split(
            &argv(&["/usr/bin/inetd-health", "--config", "a%b$c#d"]),
            "xinetd",
            "server_args"
        )
        .is_ok());
        for bad in ["a b", "a\tb", "", "a\nb"] {
            let why = can_pass_split(
                &argv(&["/usr/bin/inetd-health", "exec", "--", bad]),
                "xinetd",
                "server_args",
            )
            .unwrap_err();
            assert!(
                why.starts_with(&format!("xinetd cannot pass the argument {bad:?}")),
                "{why}"
            );
        }
    }
}
