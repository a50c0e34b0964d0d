//! `inetd-health`: one HTTP health check per connection.
//!
//! Thin glue: arguments (and the config file) become a library `Service`,
//! then one of four things runs: one connection on stdin/stdout (xinetd,
//! systemd `Accept=yes`, tcpserver), an accept loop (`--listen`), every
//! check once for a terminal (`--once`), or a check of the config
//! (`--check-config`).
//!
//! The entry point is a plain C `main` (`no_main`): std's runtime set-up
//! before `main` (reading `/proc/self/maps` for the stack guard, an
//! alternate signal stack, SIGSEGV/SIGBUS handlers: 16 system calls) is a
//! measurable share of a request that costs under a millisecond, and every
//! poll pays it. What of it matters is done here: SIGPIPE is ignored so that
//! a client that leaves turns a write into an error, not a death. Lost: the
//! "stack overflow" message (the process still dies by SIGSEGV).

#![cfg_attr(not(test), no_main)]

mod activation;
mod args;
mod doctor;
mod gen;
mod listen;
mod log;
mod notify;

use std::time::Instant;

use anyhow::Context as _;
use inetd_health::route::Routes;
use inetd_health::sys::{self, std_fd};
use inetd_health::{exit, render, serve_head, serve_service, Fd, Response};

use crate::activation::Launch;
use crate::args::Cli;
use crate::log::Log;
use clap::Parser as _;

#[cfg(not(test))]
#[no_mangle]
extern "C" fn main(_argc: libc::c_int, _argv: *const *const libc::c_char) -> libc::c_int {
    // A client that leaves turns a write into an error, not a death.
    sys::ignore_sigpipe();
    // A route's checks run on threads, and glibc gives each thread that
    // allocates an arena of its own (a 64 MiB mapping, its first pages
    // faulted in): for a process that lives a few milliseconds, one shared
    // arena is cheaper than any contention it could see.
    sys::one_malloc_arena();
    // What std's own main does and no_main skips: fds 0-2 reopened on
    // /dev/null when the launcher left them closed, so that a file opened
    // later cannot take their numbers (std_fd relies on it).
    let closed = sys::reopen_closed_std_fds();
    // std::env::args still works: on glibc, std takes argv from the
    // arguments glibc passes to initializers, not from its own main.
    let code = inetd_health_main(closed);
    // Flush what --once printed; exit(3) would not flush Rust's stdout.
    let _ = std::io::Write::flush(&mut std::io::stdout());
    code
}

#[cfg_attr(test, allow(dead_code))]
fn inetd_health_main(closed_std_fds: u32) -> i32 {
    let started = Instant::now();
    // Before any thread: these read and remove environment variables.
    let launch = activation::detect();
    let notifier = notify::Notifier::from_environment();
    let log = Log::for_this_process();
    let launch = match launch {
        Ok(launch) => launch,
        Err(activation::BadActivation(why)) => {
            log.error(&format!("socket activation: {why}"));
            return exit::SYSTEM;
        }
    };
    match Cli::parse_args() {
        Ok(mut cli) => {
            cli.long_lived = matches!(launch, Launch::Listeners(_));
            let log = log.with_syslog_socket(cli.syslog_socket());
            log.route_panics();
            run(cli, started, log, closed_std_fds, launch, notifier)
        }
        Err(e) => usage_error(e, log, launch, notifier),
    }
}

fn run(
    cli: Cli,
    started: Instant,
    log: Log,
    closed_std_fds: u32,
    launch: Launch,
    notifier: Option<notify::Notifier>,
) -> i32 {
    if let Some(args::CheckCommand::Doctor(d)) = &cli.check {
        return doctor::run(d);
    }
    if let Some(args::CheckCommand::Gen(g)) = &cli.check {
        return run_gen(&cli, g, log);
    }
    let plan = match cli.plan() {
        Ok(plan) => plan,
        Err(e) => return misconfigured(&format!("{e:#}"), log, launch, notifier),
    };
    if plan.eager {
        if let Err(what) = build_all(&cli, &plan.service) {
            return misconfigured(&what, log, launch, notifier);
        }
    }
    let (service, options) = (plan.service, plan.options);
    if let Some(warning) = shared_state_warning(&service) {
        if cli.check_config {
            eprintln!("inetd-health: {warning}");
        } else {
            log.warning(&warning);
        }
    }

    if cli.check_config {
        // One process per connection parses the key at its first full
        // handshake; the check does it now.
        if let Some(Err(e)) = service.tls().map(|t| t.validate()) {
            return misconfigured(&e.to_string(), log, launch, notifier);
        }
        if let Some(warning) = certificate_warning(&service, std::time::SystemTime::now()) {
            eprintln!("inetd-health: warning: {warning}");
        }
        let routes = match service.routes() {
            Routes::Table(table) => table.len(),
            Routes::Any(_) => 1,
        };
        println!(
            "{}: ok: {} checks, {routes} routes",
            cli.config
                .as_deref()
                .unwrap_or(std::path::Path::new("-"))
                .display(),
            service.names().len()
        );
        return exit::OK;
    }

    if cli.once {
        let all: Vec<usize> = (0..service.names().len()).collect();
        let results = service.run(&all);
        let (text, code) = render::nagios(&results);
        print!("{text}");
        // The detail is asked for per check; print it after the plugin
        // lines. Where the checker could not decide (unknown), the detail
        // is the operator's diagnosis (which file, which program, the
        // system's error), and this is the operator's terminal or monitor:
        // print it too.
        let unknown = |r: &&inetd_health::outcome::CheckResult| {
            r.outcome.health() == inetd_health::check::Health::Unknown
        };
        for r in results.iter().filter(|r| r.show_output || unknown(r)) {
            if let Some(detail) = &r.outcome.verdict.detail {
                let text = String::from_utf8_lossy(detail);
                print!("{text}");
                if !text.is_empty() && !text.ends_with('\n') {
                    println!();
                }
            }
        }
        return code;
    }

    // SIGHUP in the long-lived forms: the config read again by its path,
    // every check built (as --check-config does), swapped in if it serves.
    let reload = || -> Result<inetd_health::service::Service<'static>, String> {
        let plan = cli.plan().map_err(|e| format!("{e:#}"))?;
        build_all(&cli, &plan.service)?;
        Ok(plan.service)
    };
    // The long-lived forms show their last reload on /metrics; a process
    // per connection has none to show.
    let facts = cli.serves_many().then(listen::ReloadFacts::new);
    let service = match &facts {
        Some(facts) => service.with_process_facts(facts.clone()),
        None => service,
    };
    let reloading = facts.map(|facts| listen::Reloading {
        reload: &reload,
        facts,
    });
    let served = match (launch, cli.listen) {
        (Launch::Listeners(listeners), _) => Some(
            listen::run(
                listeners,
                cli.max_connections(),
                listen::Serving::Service(&service),
                &options,
                &log,
                notifier,
                reloading,
            )
            .context("serving the sockets systemd passed"),
        ),
        (_, Some(addr)) => Some(
            listen::bind_and_run(
                addr,
                cli.backlog,
                cli.max_connections(),
                &service,
                &options,
                &log,
                reloading,
            )
            .with_context(|| format!("serving on {addr}")),
        ),
        (Launch::Connection(fd), None) => {
            // systemd Accept=yes with the connection on fd 3.
            let stream = std::net::TcpStream::from(fd);
            let kernel_peer = stream.peer_addr().ok().map(|a| a.ip());
            return serve_one(
                &mut &stream,
                &mut &stream,
                kernel_peer,
                &options,
                &service,
                log,
                started,
            );
        }
        (Launch::Stdio, None) => None,
    };
    if let Some(result) = served {
        return match result {
            Ok(code) => code,
            Err(e) => {
                log.error(&format!("{e:#}"));
                exit::SYSTEM
            }
        };
    }

    // The connection is stdin and stdout: without them there is no one
    // to answer (started by hand with them closed, or a broken launcher).
    if closed_std_fds & 0b11 != 0 {
        log.error("no usable stdin/stdout: start inetd-health from a super-server (xinetd, systemd Accept=yes, tcpserver), or use --listen or --once");
        return exit::SYSTEM;
    }

    // Asked before serving: once the client has closed, getpeername fails.
    let kernel_peer = inetd_health::conn::peer_address(std_fd(0)).map(|a| a.ip());
    serve_one(
        &mut Fd::new(std_fd(0)),
        &mut Fd::new(std_fd(1)),
        kernel_peer,
        &options,
        &service,
        log,
        started,
    )
}

/// How long before a certificate expires `--check-config` says so.
const CERT_WARNING: std::time::Duration = std::time::Duration::from_secs(14 * 24 * 3600);

/// A certificate that expires within [`CERT_WARNING`] of `now`, or has.
fn certificate_warning(
    service: &inetd_health::Service,
    now: std::time::SystemTime,
) -> Option<String> {
    let tls = service.tls()?;
    let not_after = tls.not_after()?;
    let now = now
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let left = not_after - now;
    let cert = tls.settings().cert.display();
    if left <= 0 {
        return Some(format!(
            "{cert}: the certificate expired {} days ago: HTTPS clients that verify it refuse it",
            -left / 86_400
        ));
    }
    (left < CERT_WARNING.as_secs() as i64).then(|| {
        format!(
            "{cert}: the certificate expires in {} days ({} hours): renew it (a long-lived server picks up the new files within a second)",
            left / 86_400,
            left / 3600
        )
    })
}

/// Serves the one connection a launcher handed over, logs it, and returns
/// the exit code. The kernel's address (`kernel_peer`) decides access and
/// is the log's `peer=`; the launcher's variable is logged beside it only
/// where it says otherwise.
fn serve_one<I, O>(
    input: &mut I,
    output: &mut O,
    kernel_peer: Option<std::net::IpAddr>,
    options: &inetd_health::Options,
    service: &inetd_health::Service,
    log: Log,
    started: Instant,
) -> i32
where
    I: inetd_health::Input + ?Sized,
    O: inetd_health::Output + ?Sized,
{
    let served = serve_service(input, output, options, service, kernel_peer);
    let peer = log::Peer::new(kernel_peer, log::peer_from_environment());
    log.connection(&peer, &served, started.elapsed());
    served.exit_code()
}

/// `gen`: the glue for the service that `--config FILE` (with the serving
/// options) or the check after `--` describes.
fn run_gen(cli: &Cli, g: &gen::GenArgs, log: Log) -> i32 {
    // What the launcher will run: the serving options, which are what came
    // before `gen` (`--config FILE` among them), and the check after `--`
    // when there is no config.
    let raw: Vec<String> = std::env::args().skip(1).collect();
    let before_gen = raw.iter().position(|a| a == "gen").unwrap_or(raw.len());
    // `--backlog N` sizes the socket units' Backlog=: the launcher owns the
    // listening socket, so the service is not given it.
    let mut serving: Vec<String> = Vec::with_capacity(before_gen + g.check.len());
    let mut given = raw[..before_gen].iter();
    while let Some(arg) = given.next() {
        if arg == "--backlog" {
            given.next();
        } else if !arg.starts_with("--backlog=") {
            serving.push(arg.clone());
        }
    }
    serving.extend(g.check.iter().cloned());
    let parsed;
    let serving_cli = match (&cli.config, g.check.is_empty()) {
        (Some(_), true) => cli,
        (None, false) => {
            let args = std::iter::once("inetd-health".to_owned()).chain(serving.iter().cloned());
            match Cli::try_parse_from(args) {
                Ok(check_cli) => {
                    parsed = check_cli;
                    &parsed
                }
                Err(e) => {
                    let why = e.render().to_string();
                    return bad_configuration(&format!("gen: the check after --: {}", why.trim()), log);
                }
            }
        }
        _ => {
            return bad_configuration(
                "gen writes the glue for a service: give --config FILE, or the check after -- (gen xinetd -- tcp 127.0.0.1:3306)",
                log,
            )
        }
    };
    // The config as the service will find it, run as the launcher's user,
    // before gen reads it itself: gen's own refusals are its user's (root's),
    // not the service's.
    if let Some(config) = &serving_cli.config {
        if let Err(why) = gen::check_config(g, config) {
            eprintln!("inetd-health: gen: {why}");
            return exit::USAGE;
        }
    }
    let plan = match serving_cli.plan() {
        Ok(plan) => plan,
        Err(e) => return bad_configuration(&format!("{e:#}"), log),
    };
    let program = std::env::current_exe()
        .and_then(|p| p.canonicalize())
        .unwrap_or_else(|_| std::path::PathBuf::from("/usr/bin/inetd-health"));
    let allow: Vec<String> = serving_cli
        .allow
        .iter()
        .flat_map(|a| a.0.iter().map(ToString::to_string))
        .collect();
    // The checks, for what they read at poll time: the config's, or the
    // one of the command line.
    let checks = match (&serving_cli.config, &serving_cli.check) {
        (Some(path), _) => match inetd_health::config::load(path) {
            Ok(config) => config.checks,
            Err(e) => return bad_configuration(&e.to_string(), log),
        },
        (None, Some(command)) => {
            gen::check_of(command, &g.check, serving_cli.disable_file.as_deref())
                .into_iter()
                .collect()
        }
        (None, None) => Vec::new(),
    };
    let facts = gen::Facts {
        program,
        args: serving,
        read_timeout: plan.options.limits.read_timeout,
        check_timeout: plan.service.longest_timeout(),
        service: &plan.service,
        allow,
        agent: serving_cli.agent || plan.service.agent().is_some(),
        backlog: cli.backlog.unwrap_or_else(listen::system_backlog),
        config: serving_cli.config.clone(),
        checks,
    };
    match gen::generate(g, &facts).and_then(|files| gen::write(&files, g.output_dir.as_deref())) {
        Ok(()) => exit::OK,
        Err(why) => {
            eprintln!("inetd-health: gen: {why}");
            exit::USAGE
        }
    }
}

/// Arguments clap rejected. Under xinetd stderr is the client's socket, so
/// the message goes to syslog, and the client still gets a proper answer (a
/// 500) instead of a usage text or a reset: the operator sees "500" in
/// HAProxy and the reason in the system log.
fn usage_error(
    e: clap::Error,
    log: Log,
    launch: Launch,
    notifier: Option<notify::Notifier>,
) -> i32 {
    use clap::error::ErrorKind::{DisplayHelp, DisplayVersion};
    match e.kind() {
        DisplayHelp | DisplayVersion => {
            let _ = e.print();
            exit::OK
        }
        _ if has_client(&log, &launch) => {
            misconfigured(e.render().to_string().trim(), log, launch, notifier)
        }
        _ => {
            let _ = e.print();
            exit::USAGE
        }
    }
}

/// Whether a client waits for an answer: a connection handed over
/// (stdin a socket, as under xinetd and tcpserver, or systemd's fd 3), or
/// listening sockets from systemd. A terminal or a pipe gets the message
/// alone.
fn has_client(log: &Log, launch: &Launch) -> bool {
    match launch {
        Launch::Stdio => log.is_syslog() || inetd_health::conn::is_socket(std_fd(0)),
        Launch::Connection(_) | Launch::Listeners(_) => true,
    }
}

/// The body every client of a service that cannot be set up gets.
const MISCONFIGURED: &str = "inetd-health is misconfigured: see the system log\n";

/// Builds every check of `service`, as a plan that is built eagerly and
/// every reload are: the refusal names the check when there is a config
/// file to find it in.
fn build_all(cli: &Cli, service: &inetd_health::service::Service<'_>) -> Result<(), String> {
    service.build_all().map_err(|(name, why)| {
        if cli.config.is_some() {
            format!("check {name}: {why}")
        } else {
            why
        }
    })
}

/// Usage or a config that cannot be served: the reason goes to the log,
/// and every client the launcher hands us gets a 500 (its request read
/// first, the connection closed politely), never a reset or a silence.
/// With systemd's listening sockets (`Accept=no`) that is every client
/// until the service is stopped: a process that exited would be started
/// again by the next connection, and fail again. Exits 64.
fn misconfigured(
    message: &str,
    log: Log,
    launch: Launch,
    notifier: Option<notify::Notifier>,
) -> i32 {
    log.error(&format!("bad usage: {message}"));
    if !has_client(&log, &launch) {
        return exit::USAGE;
    }
    match launch {
        Launch::Stdio => {
            answer_misconfigured(&mut Fd::new(std_fd(0)), &mut Fd::new(std_fd(1)));
        }
        Launch::Connection(fd) => {
            let stream = std::net::TcpStream::from(fd);
            answer_misconfigured(&mut &stream, &mut &stream);
        }
        Launch::Listeners(listeners) => {
            if let Some(n) = &notifier {
                // `systemctl status` says so, beside the log's reason.
                n.send("STATUS=misconfigured: every request answered 500; see the log");
            }
            if let Err(e) = listen::run(
                listeners,
                1,
                listen::Serving::Misconfigured(MISCONFIGURED),
                &Default::default(),
                &log,
                notifier,
                None,
            ) {
                log.error(&format!("serving the sockets systemd passed: {e}"));
                return exit::SYSTEM;
            }
        }
    }
    exit::USAGE
}

/// One connection of a service that could not be set up: an HTTP request
/// gets the 500; a connection silent for the agent's wait (HAProxy's
/// agent-check, which cannot read an HTTP answer and would keep its last
/// state) gets `down`; a plain TCP check that closes gets nothing.
fn answer_misconfigured<I, O>(input: &mut I, output: &mut O)
where
    I: inetd_health::Input + ?Sized,
    O: inetd_health::Output + ?Sized,
{
    use inetd_health::agent::{sniff, AgentSettings, Sniffed};
    let options = inetd_health::Options::default();
    let deadline = inetd_health::Deadline::after(options.limits.read_timeout);
    match sniff(input, &options.limits, &AgentSettings::default(), deadline) {
        Sniffed::Http(head) => {
            let head = inetd_health::http::read_head_with(input, head, deadline);
            serve_head(input, output, &options, head, |_| {
                Response::text(500, MISCONFIGURED)
            });
        }
        Sniffed::Agent => {
            inetd_health::serve_agent_line(input, output, &options, listen::MISCONFIGURED_AGENT);
        }
        Sniffed::Silent | Sniffed::Broken => {}
    }
}

/// Run outside of `gen`'s and `doctor`'s reach of a launcher: the
/// message, and a 500 if stdin is a client.
fn bad_configuration(message: &str, log: Log) -> i32 {
    misconfigured(message, log, Launch::Stdio, None)
}

/// The uid of `nobody` on Debian and most Linux systems (the kernel's
/// overflow uid): compared, not looked up, as a static binary has no NSS.
const NOBODY: u32 = 65534;

/// A warning when a service whose checks share state (a cache, a cap)
/// runs as `nobody`: every daemon running as nobody could forge its cached
/// verdicts or hold its slots (docs/resilience.md).
fn shared_state_warning(service: &inetd_health::Service) -> Option<String> {
    let euid = sys::euid();
    (euid == NOBODY && service.shares_state()).then(|| {
        "warning: running as nobody with a cache or cap: any program running as nobody can forge this service's cached verdicts; run it as a user of its own (inetd-health)".to_owned()
    })
}
