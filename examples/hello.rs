//! `hello`: the classic xinetd "HTTP hello" service, done right.
//!
//! The shell version prints a status line and a hand-counted
//! `Content-Length` (off by one), never reads the request, and so ends every
//! connection with a TCP reset. This one reads the request head, answers
//! `200 OK` / `Hello, World` with exact headers in one write, and closes
//! politely.
//!
//! Try it without a super-server (stdin/stdout stand in for the socket):
//!
//! ```text
//! printf 'GET / HTTP/1.0\r\n\r\n' | cargo run --example hello
//! ```
//!
//! Under xinetd (`cargo build --release --examples`, then copy
//! `target/release/examples/hello` to `/usr/local/bin/hello-http`), in
//! `/etc/xinetd.d/hello-http`:
//!
//! ```text
//! service hello-http
//! {
//!         disable         = no
//!         type            = UNLISTED
//!         wait            = no
//!         socket_type     = stream
//!         user            = nobody
//!         server          = /usr/local/bin/hello-http
//!         port            = 8080
//!         flags           = REUSE
//!         per_source      = UNLIMITED
//! }
//! ```
//!
//! then `curl -i http://127.0.0.1:8080/`.

use std::io;
use std::os::fd::AsFd;

use inetd_health::{serve, Fd, Options, Response};

fn main() {
    let (stdin, stdout) = (io::stdin(), io::stdout());
    let served = serve(
        &mut Fd::new(stdin.as_fd()),
        &mut Fd::new(stdout.as_fd()),
        &Options::default(),
        |_request| Response::text(200, "Hello, World\n"),
    );
    std::process::exit(served.exit_code());
}
