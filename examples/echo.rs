//! `echo`: the classic xinetd echo service, done right.
//!
//! The shell version is `while read i; do echo -e ${i}; done`: where
//! `/bin/sh` is dash it answers `hello` with `-e hello`, it mangles
//! backslashes and runs of spaces, and it drops a last line without a
//! newline. This one sends every line back byte for byte, gives up on a
//! client idle for a minute, and closes politely.
//!
//! Try it from a terminal (type lines, end with Ctrl-D):
//!
//! ```text
//! cargo run --example echo
//! ```
//!
//! Under xinetd (`cargo build --release --examples`, then copy
//! `target/release/examples/echo` to `/usr/local/bin/echo-lines`), in
//! `/etc/xinetd.d/echo-lines`:
//!
//! ```text
//! service echo-lines
//! {
//!         disable         = no
//!         type            = UNLISTED
//!         wait            = no
//!         socket_type     = stream
//!         user            = nobody
//!         server          = /usr/local/bin/echo-lines
//!         port            = 37564
//!         flags           = REUSE
//!         per_source      = UNLIMITED
//! }
//! ```
//!
//! then `nc 127.0.0.1 37564`.

use std::io::{self, Write};
use std::os::fd::AsFd;
use std::time::Duration;

use inetd_health::conn::read_before;
use inetd_health::{close_politely, exit, Deadline, Fd};

/// A client that sends nothing for this long is let go.
const IDLE: Duration = Duration::from_secs(60);
/// A line longer than this is sent back in pieces rather than held.
const MAX_LINE: usize = 64 * 1024;

fn main() {
    let (stdin, stdout) = (io::stdin(), io::stdout());
    let mut input = Fd::new(stdin.as_fd());
    let mut output = Fd::new(stdout.as_fd());
    let code = match echo_lines(&mut input, &mut output) {
        Ok(()) => exit::OK,
        Err(_) => exit::BAD_CLIENT,
    };
    let _ = close_politely(&mut input, &mut output, Duration::from_millis(500));
    std::process::exit(code);
}

fn echo_lines(input: &mut impl inetd_health::Input, output: &mut impl Write) -> io::Result<()> {
    let mut line = Vec::with_capacity(256);
    let mut chunk = [0u8; 4096];
    loop {
        let n = match read_before(input, &mut chunk, Deadline::after(IDLE))? {
            None | Some(0) => break,
            Some(n) => n,
        };
        for &byte in &chunk[..n] {
            line.push(byte);
            if byte == b'\n' || line.len() == MAX_LINE {
                output.write_all(&line)?;
                line.clear();
            }
        }
    }
    // A last line without a newline is still a line.
    output.write_all(&line)
}
