//! `mariadb_ping`: the classic xinetd MariaDB health check, done right.
//!
//! The shell version runs `mysqladmin ping` (about 15 ms of CPU per poll),
//! never reads the request (so every connection ends in a TCP reset, and
//! HAProxy marks a live server DOWN), and writes the response by hand. This
//! one reads the server's greeting natively, answers `200 MariaDB is alive`
//! or `503 MariaDB is dead` with exact headers, and closes politely.
//!
//! ```text
//! mariadb_ping [SOCKET_PATH | HOST:PORT]     (default /run/mysqld/mysqld.sock)
//! ```
//!
//! Try it without a super-server:
//!
//! ```text
//! printf 'GET / HTTP/1.0\r\n\r\n' | cargo run --example mariadb_ping -- /run/mysqld/mysqld.sock
//! ```
//!
//! Under xinetd (`cargo build --release --examples`, then copy
//! `target/release/examples/mariadb_ping` to `/usr/local/bin/`), in
//! `/etc/xinetd.d/mariadb-healthcheck`:
//!
//! ```text
//! service mariadb-healthcheck
//! {
//!         disable         = no
//!         type            = UNLISTED
//!         wait            = no
//!         socket_type     = stream
//!         user            = mysql
//!         server          = /usr/local/bin/mariadb_ping
//!         server_args     = /run/mysqld/mysqld.sock
//!         port            = 33060
//!         flags           = REUSE
//!         per_source      = UNLIMITED
//!         cps             = 200 5
//! }
//! ```
//!
//! It checks without credentials: the greeting proves the server alive, and
//! the server logs each poll as an aborted connection. `inetd-health mariadb
//! --defaults-extra-file FILE` logs in, pings and quits instead, which leaves
//! no trace in the server's log.

use std::io;
use std::os::fd::AsFd;
use std::time::Duration;

use inetd_health::mysql::Endpoint;
use inetd_health::{run_check, serve, Deadline, Fd, Health, MariadbCheck, Options, Response};

fn main() {
    let check = MariadbCheck::new(endpoint(std::env::args().nth(1)));
    let (stdin, stdout) = (io::stdin(), io::stdout());
    let served = serve(
        &mut Fd::new(stdin.as_fd()),
        &mut Fd::new(stdout.as_fd()),
        &Options::default(),
        |_request| match run_check(&check, Deadline::after(Duration::from_secs(2))).health() {
            Health::Healthy => Response::text(200, "MariaDB is alive\n"),
            _ => Response::text(503, "MariaDB is dead\n"),
        },
    );
    std::process::exit(served.exit_code());
}

/// `HOST:PORT` (`[::1]:3306` for IPv6) is TCP; anything else a socket path.
fn endpoint(arg: Option<String>) -> Endpoint {
    let Some(arg) = arg else {
        return Endpoint::default_socket();
    };
    match arg.rsplit_once(':').map(|(h, p)| (h, p.parse::<u16>())) {
        Some((host, Ok(port))) if !arg.starts_with('/') => Endpoint::Tcp {
            host: host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned(),
            port,
        },
        _ => Endpoint::Unix(arg.into()),
    }
}
