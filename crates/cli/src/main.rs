//! `inetd-health`: one HTTP health check per connection.
//!
//! Thin glue: arguments become library types, then one of three loops runs:
//! one connection on stdin/stdout (xinetd, systemd `Accept=yes`,
//! tcpserver), an accept loop (`--listen`), or the check once for a
//! terminal (`--once`).
//!
//! The entry point is a plain C `main` (`no_main`): std's runtime set-up
//! before `main` (reading `/proc/self/maps` for the stack guard, an
//! alternate signal stack, SIGSEGV/SIGBUS handlers: 16 system calls) is a
//! measurable share of a request that costs under a millisecond, and every
//! poll pays it. What of it matters is done here: SIGPIPE is ignored so that
//! a client that leaves turns a write into an error, not a death. Lost: the
//! "stack overflow" message (the process still dies by SIGSEGV).

#![cfg_attr(not(test), no_main)]

mod args;
mod listen;
mod log;

use std::io;
use std::os::fd::AsFd;
use std::time::Instant;

use anyhow::Context as _;
use clap::Parser as _;
use inetd_health::check::human_duration;
use inetd_health::{exit, run_check, serve, serve_check, Deadline, Fd, Response};

use crate::args::Cli;
use crate::log::Log;

#[cfg(not(test))]
#[no_mangle]
extern "C" fn main(_argc: libc::c_int, _argv: *const *const libc::c_char) -> libc::c_int {
    // SAFETY: setting a signal's disposition before any thread exists.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
    // std::env::args still works: on glibc, std takes argv from the
    // arguments glibc passes to initializers, not from its own main.
    let code = inetd_health_main();
    // Flush what --once printed; exit(3) would not flush Rust's stdout.
    let _ = io::Write::flush(&mut io::stdout());
    code
}

#[cfg_attr(test, allow(dead_code))]
fn inetd_health_main() -> i32 {
    let started = Instant::now();
    let log = Log::for_this_process();
    log.route_panics();
    match Cli::try_parse() {
        Ok(cli) => run(cli, started, log),
        Err(e) => usage_error(e, log),
    }
}

fn run(cli: Cli, started: Instant, log: Log) -> i32 {
    let check = match cli.build() {
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

    // Asked before serving: once the client has closed, getpeername fails.
    let peer = log::peer_from_environment();
    let (stdin, stdout) = (io::stdin(), io::stdout());
    let served = serve_check(
        &mut Fd::new(stdin.as_fd()),
        &mut Fd::new(stdout.as_fd()),
        &options,
        &*check,
        &policy,
    );
    log.connection(peer.as_deref(), &served, started.elapsed());
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
