//! `inetd-health`: one HTTP health check per connection.
//!
//! Thin glue: arguments become library types, then one of three loops runs:
//! one connection on stdin/stdout (xinetd, systemd `Accept=yes`,
//! tcpserver), an accept loop (`--listen`), or the check once for a
//! terminal (`--once`).

mod args;
mod listen;
mod log;

use std::io;
use std::os::fd::AsFd;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context as _;
use clap::Parser as _;
use inetd_health::check::human_duration;
use inetd_health::{exit, run_check, serve, serve_check, Deadline, Fd, Response};

use crate::args::Cli;
use crate::log::Log;

fn main() -> ExitCode {
    let started = Instant::now();
    let log = Log::for_this_process();
    log.route_panics();
    let code = match Cli::try_parse() {
        Ok(cli) => run(cli, started, log),
        Err(e) => usage_error(e, log),
    };
    ExitCode::from(code as u8)
}

fn run(cli: Cli, started: Instant, log: Log) -> i32 {
    let check = match cli.check.build() {
        Ok(check) => check,
        Err(e) => return bad_configuration(&format!("{e:#}"), log),
    };
    let options = cli.options();
    let policy = cli.policy();

    if cli.once {
        let outcome = run_check(&*check, Deadline::after(options.check_timeout));
        let word = ["OK", "WARNING", "CRITICAL", "UNKNOWN"][outcome.nagios_code() as usize];
        println!(
            "{word}: {} ({})",
            outcome.reason(),
            human_duration(outcome.elapsed)
        );
        if policy.show_detail {
            if let Some(detail) = &outcome.verdict.detail {
                print!("{}", String::from_utf8_lossy(detail));
            }
        }
        return outcome.nagios_code();
    }

    if let Some(addr) = cli.listen {
        let result = listen::run(addr, cli.max_connections, &*check, &options, &policy, &log)
            .with_context(|| format!("serving on {addr}"));
        if let Err(e) = result {
            log.error(&format!("{e:#}"));
        }
        return exit::SYSTEM;
    }

    let (stdin, stdout) = (io::stdin(), io::stdout());
    let served = serve_check(
        &mut Fd::new(stdin.as_fd()),
        &mut Fd::new(stdout.as_fd()),
        &options,
        &*check,
        &policy,
    );
    log.connection(
        log::peer_from_environment().as_deref(),
        &served,
        started.elapsed(),
    );
    served.exit_code()
}

/// Arguments clap rejected. Under xinetd stderr is the client's socket, so
/// the message goes to syslog, and the client still gets a proper answer (a
/// 500) instead of a usage text or a reset: the operator sees "500" in
/// HAProxy and the reason in the system log.
fn usage_error(e: clap::Error, log: Log) -> i32 {
    use clap::error::ErrorKind::{DisplayHelp, DisplayVersion};
    match e.kind() {
        DisplayHelp | DisplayVersion => {
            let _ = e.print();
            exit::OK
        }
        _ if log.is_syslog() => bad_configuration(e.render().to_string().trim(), log),
        _ => {
            let _ = e.print();
            exit::USAGE
        }
    }
}

fn bad_configuration(message: &str, log: Log) -> i32 {
    log.error(&format!("bad usage: {message}"));
    if log.is_syslog() {
        let (stdin, stdout) = (io::stdin(), io::stdout());
        serve(
            &mut Fd::new(stdin.as_fd()),
            &mut Fd::new(stdout.as_fd()),
            &Default::default(),
            |_| Response::text(500, "inetd-health is misconfigured: see the system log\n"),
        );
    }
    exit::USAGE
}
