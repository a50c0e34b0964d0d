//! Child processes: the one place with process control.
//!
//! A check program is a stranger's code run once per poll, so it is boxed in:
//! - stdin is `/dev/null`: the process's own stdin is the client's socket,
//!   and a program that reads stdin would eat the request or hang on it;
//! - stdout and stderr go to one pipe (in the order written, like `2>&1`),
//!   read as it arrives so the program never blocks on a full pipe, and kept
//!   only up to a limit so a program that prints 100 MB costs no memory;
//! - it leads a process group of its own, and when it exits or the deadline
//!   passes the whole group is killed, so a grandchild that keeps the pipe
//!   open (a forked daemon, `sleep &`) neither stalls the answer nor outlives
//!   the check.
//!
//! One thread does all of it with `poll(2)` over the pipe and a pidfd, so
//! there are no helper threads to join or leak. The pipe is
//! [`std::io::pipe`]: since Rust 1.87 it does what the `os_pipe` crate was
//! used for (one pipe behind both stdout and stderr), so that crate is not
//! needed.

use std::ffi::OsString;
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::deadline::Stopwatch;
use crate::sys::{self, PollFd};
use crate::Deadline;

/// How a child process ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// It exited with this status.
    Exited(i32),
    /// A signal killed it (not ours).
    Signaled(i32),
    /// The deadline passed; its process group was killed.
    TimedOut,
}

/// What a finished child left behind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finished {
    /// How it ended.
    pub exit: Exit,
    /// Its stdout and stderr interleaved, up to the capture limit.
    pub output: Vec<u8>,
    /// Whether it wrote more than was kept.
    pub truncated: bool,
    /// Time from start to end.
    pub elapsed: Duration,
}

/// Why a child could not be run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProcessError {
    /// No program was given.
    #[error("no program given")]
    NoProgram,
    /// The program could not be started (not found, not executable…).
    #[error("cannot start {program}: {}", crate::sys::io_reason(source))]
    Spawn {
        /// The program as given.
        program: String,
        /// The error from the spawn.
        source: io::Error,
    },
    /// A system call around the child failed.
    #[error("supervising the child: {0}")]
    Io(#[from] io::Error),
}

/// Runs `argv` (no shell) until it exits or `deadline` passes, keeping at
/// most `capture_limit` bytes of its output.
///
/// # Errors
/// [`ProcessError`] when the program cannot be started or supervised. A
/// program that fails, crashes or hangs is not an error: see [`Exit`].
pub fn run(
    argv: &[OsString],
    deadline: Deadline,
    capture_limit: usize,
) -> Result<Finished, ProcessError> {
    let (program, args) = argv.split_first().ok_or(ProcessError::NoProgram)?;
    let clock = Stopwatch::start();
    let (mut reader, writer) = io::pipe()?;
    let mut cmd = Command::new(program);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(writer.try_clone()?)
        .stderr(writer)
        .process_group(0);
    let spawned = cmd.spawn();
    // The command still holds the pipe's write ends; while they are open
    // here, the reader would never see end of stream.
    drop(cmd);
    let mut child = spawned.map_err(|source| ProcessError::Spawn {
        program: program.to_string_lossy().into_owned(),
        source,
    })?;
    let mut guard = GroupGuard {
        child: &mut child,
        armed: true,
    };
    let pid = guard.child.id();
    let pidfd = sys::pidfd_open(pid);

    let mut capture = Capture::new(capture_limit);
    let mut pipe_open = true;
    let exited = loop {
        // A negative fd is an entry poll skips.
        let mut fds = [
            PollFd::input(if pipe_open { reader.as_raw_fd() } else { -1 }),
            PollFd::input(pidfd.as_ref().map_or(-1, |f| f.as_raw_fd())),
        ];
        // Without a pidfd (kernels before 5.3) the exit is noticed by
        // polling waitid every 10 ms.
        let timeout = match pidfd {
            Some(_) => deadline.poll_timeout_ms(),
            None => deadline.poll_timeout_ms().min(10),
        };
        match sys::poll(&mut fds, timeout) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
            Ok(_) => {}
        }
        if pipe_open && fds[0].ready() {
            pipe_open = capture.read_from(&mut reader)?;
        }
        let exited = match pidfd {
            Some(_) => fds[1].ready(),
            None => sys::has_exited(pid)?,
        };
        if exited {
            break true;
        }
        if deadline.expired() {
            break false;
        }
    };
    // Leftovers in the group go first: the child is a zombie now (or alive at
    // the deadline), so its pid, and with it the group id, cannot have been
    // reused yet.
    sys::kill_group(pid);
    guard.armed = false;
    if exited && pipe_open {
        // What the child wrote before it exited is in the pipe already; with
        // the group dead, nothing more can arrive, so this ends at once.
        sys::set_nonblocking(reader.as_fd())?;
        while capture.read_from(&mut reader).unwrap_or(false) {}
    }
    let status = guard.child.wait()?;
    let exit = if !exited {
        Exit::TimedOut
    } else if let Some(code) = status.code() {
        Exit::Exited(code)
    } else {
        Exit::Signaled(status.signal().unwrap_or(0))
    };
    Ok(Finished {
        exit,
        output: capture.kept,
        truncated: capture.truncated,
        elapsed: clock.elapsed(),
    })
}

/// Kills and reaps the child's group if supervision fails half-way, so an
/// error return never leaves processes behind.
struct GroupGuard<'a> {
    child: &'a mut Child,
    armed: bool,
}

impl Drop for GroupGuard<'_> {
    fn drop(&mut self) {
        if self.armed {
            sys::kill_group(self.child.id());
            let _ = self.child.wait();
        }
    }
}

struct Capture {
    kept: Vec<u8>,
    limit: usize,
    truncated: bool,
}

impl Capture {
    fn new(limit: usize) -> Self {
        Capture {
            kept: Vec::new(),
            limit,
            truncated: false,
        }
    }

    /// Reads once; returns whether the pipe is still open.
    fn read_from(&mut self, reader: &mut impl Read) -> io::Result<bool> {
        let mut chunk = [0u8; 8192];
        match reader.read(&mut chunk) {
            Ok(0) => Ok(false),
            Ok(n) => {
                let room = self.limit.saturating_sub(self.kept.len());
                let take = room.min(n);
                self.kept.extend_from_slice(&chunk[..take]);
                self.truncated |= take < n;
                Ok(true)
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(false),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    fn argv(parts: &[&str]) -> Vec<OsString> {
        parts.iter().map(OsString::from).collect()
    }

    fn sh(script: &str, budget: Duration, limit: usize) -> Finished {
        run(
            &argv(&["/bin/sh", "-c", script]),
            Deadline::after(budget),
            limit,
        )
        .unwrap()
    }

    // The system tests' /proc helpers, so that the unit tests read command
    // lines the same way (arguments are NUL-separated there).
    use inetd_health_testkit::procs;

    fn alive_with_marker(marker: &str) -> bool {
        !procs::processes_matching(marker).is_empty()
    }

    #[test]
    fn the_survivor_search_sees_a_live_process() {
        // The helper below must find what it looks for, or the "nothing
        // survived" tests could never fail.
        let marker = format!("5.{}", procs::unique_digits());
        let mut sleeper = std::process::Command::new("sleep")
            .arg(&marker)
            .spawn()
            .unwrap();
        // Between fork and exec the child still has the test's command
        // line: wait (bounded) for the exec, as a survivor would have had.
        let started = Instant::now();
        while !alive_with_marker(&format!("sleep {marker}"))
            && started.elapsed() < Duration::from_secs(2)
        {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(alive_with_marker(&format!("sleep {marker}")));
        sleeper.kill().unwrap();
        sleeper.wait().unwrap();
        assert!(!alive_with_marker(&format!("sleep {marker}")));
    }

    #[test]
    fn exit_codes_and_output_in_order() {
        let f = sh(
            "echo out; echo err >&2; exit 3",
            Duration::from_secs(5),
            100,
        );
        assert_eq!(f.exit, Exit::Exited(3));
        assert_eq!(f.output, b"out\nerr\n");
        assert!(!f.truncated);
    }

    #[test]
    fn stdin_is_dev_null() {
        let f = sh("cat; echo done", Duration::from_secs(5), 100);
        assert_eq!(f.exit, Exit::Exited(0));
        assert_eq!(f.output, b"done\n");
    }

    #[test]
    fn output_is_bounded_and_the_writer_never_blocks() {
        // 1 MiB through a 64 KiB pipe: the child finishes only if it is read.
        let f = sh("head -c 1048576 /dev/zero", Duration::from_secs(10), 1000);
        assert_eq!(f.exit, Exit::Exited(0));
        assert_eq!(f.output.len(), 1000);
        assert!(f.truncated);
    }

    #[test]
    fn hung_program_is_killed_at_the_deadline_with_its_group() {
        let marker = "7.424242";
        let start = Instant::now();
        let f = sh(
            &format!("sleep 1{marker} & sleep 2{marker}"),
            Duration::from_millis(300),
            100,
        );
        let took = start.elapsed();
        assert_eq!(f.exit, Exit::TimedOut);
        assert!(
            took >= Duration::from_millis(300) && took < Duration::from_secs(2),
            "{took:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
        assert!(
            !alive_with_marker(&format!("sleep 1{marker}")),
            "grandchild survived"
        );
    }

    #[test]
    fn daemon_holding_the_pipe_does_not_stall_the_answer() {
        let marker = "9.135791";
        let start = Instant::now();
        let f = sh(
            &format!("echo hi; sleep {marker} & exit 0"),
            Duration::from_secs(5),
            100,
        );
        assert_eq!(f.exit, Exit::Exited(0));
        assert_eq!(f.output, b"hi\n");
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "{:?}",
            start.elapsed()
        );
        std::thread::sleep(Duration::from_millis(100));
        assert!(
            !alive_with_marker(&format!("sleep {marker}")),
            "daemon survived"
        );
    }

    #[test]
    fn killed_by_a_signal() {
        let f = sh("kill -9 $$", Duration::from_secs(5), 100);
        assert_eq!(f.exit, Exit::Signaled(9));
    }

    #[test]
    fn missing_program_is_an_error() {
        let e = run(
            &argv(&["/nonexistent/check"]),
            Deadline::after(Duration::from_secs(1)),
            10,
        )
        .unwrap_err();
        assert!(matches!(e, ProcessError::Spawn { .. }), "{e}");
        assert!(
            e.to_string()
                .starts_with("cannot start /nonexistent/check: "),
            "{e}"
        );
        assert!(matches!(
            run(&[], Deadline::after(Duration::from_secs(1)), 10),
            Err(ProcessError::NoProgram)
        ));
    }
}
