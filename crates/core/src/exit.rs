//! Process exit codes: the one table, repeated in `--help` and the docs.
//!
//! A super-server counts nonzero exits as failures (systemd marks each
//! `Accept=yes` instance failed), so an answered request, a 503 included, is
//! 0; the other codes follow `sysexits.h` so they mean the same thing as in
//! other daemons' logs.

/// A response was sent (200 or 503 alike), or the client left without
/// sending a byte (a plain TCP check).
pub const OK: i32 = 0;
/// Bad usage: unknown option, bad duration, missing program.
pub const USAGE: i32 = 64;
/// Bad client: it sent a malformed, oversize or slow request, or asked for
/// a path no route has (answered 400, 404, 405, 408 or 431), or it left in
/// the middle of the exchange.
pub const BAD_CLIENT: i32 = 65;
/// System failure: no usable stdin/stdout (fd 0 or 1 closed when serving
/// a connection), an address that cannot be bound.
pub const SYSTEM: i32 = 71;

/// The table as text, for `--help`.
pub const TABLE: &str = "\
Exit status (serving):
  0   response sent (200 or 503), or the client sent nothing
  64  bad usage (a bad option, a config file that is refused)
  65  bad client (400, 403, 404, 405, 408, 431 sent, or the client left mid-request)
  71  system failure (no usable stdin/stdout, an address that cannot be bound)
Exit status (doctor): 0 every poller would be satisfied, 1 one would not
Exit status (--once, the Nagios convention):
  0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN (the checker could not decide: the
  check could not run, a disable file or a state file could not be read)";
