//! Processes: a guard that stops what a test started, `/proc` scans, bounded waits.

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

/// How long a guard waits after SIGTERM before sending SIGKILL.
pub const TERM_GRACE: Duration = Duration::from_secs(3);

/// A spawned process that is stopped by pid when dropped:
/// SIGTERM, a bounded wait, then SIGKILL, and always reaped.
#[derive(Debug)]
pub struct ProcessGuard {
    name: String,
    child: Option<Child>,
    status: Option<ExitStatus>,
}

impl ProcessGuard {
    /// Spawns `cmd`, naming it `name` in messages.
    pub fn spawn(name: &str, cmd: &mut Command) -> std::io::Result<ProcessGuard> {
        let child = cmd.spawn()?;
        Ok(ProcessGuard {
            name: name.to_string(),
            child: Some(child),
            status: None,
        })
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).unwrap_or(0)
    }

    /// The exit status if the process has ended (reaping it), without blocking.
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    self.status = Some(status);
                }
            }
        }
        self.status
    }

    /// Waits up to `timeout` for the process to exit by itself (after a
    /// signal the test sent): how it ended, or `None` if it still runs.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        wait_until(timeout, Duration::from_millis(20), || {
            self.try_wait().is_some()
        });
        self.try_wait()
    }

    /// Stops the process: SIGTERM, up to [`TERM_GRACE`] for it to exit, then
    /// SIGKILL; waits for it either way. Returns how it ended.
    pub fn stop(&mut self) -> Option<ExitStatus> {
        if let Some(status) = self.try_wait() {
            return Some(status);
        }
        let mut child = self.child.take()?;
        signal(child.id(), libc::SIGTERM);
        let deadline = Instant::now() + TERM_GRACE;
        while Instant::now() < deadline {
            match child.try_wait() {
                Ok(Some(status)) => {
                    self.status = Some(status);
                    return self.status;
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(10)),
                Err(_) => break,
            }
        }
        eprintln!(
            "{} (pid {}) ignored SIGTERM for {TERM_GRACE:?}; sending SIGKILL",
            self.name,
            child.id()
        );
        let _ = child.kill();
        self.status = child.wait().ok();
        self.status
    }

    /// Stops the process as [`ProcessGuard::stop`] does, reaping it with
    /// wait4(2) to read what it used: itself and every child it reaped
    /// (xinetd reaps its servers, so this is the whole service's cost).
    /// `None` if the process was already reaped (by [`ProcessGuard::try_wait`]
    /// or a stop), which loses its usage.
    pub fn stop_with_usage(&mut self) -> Option<Usage> {
        if self.try_wait().is_some() {
            return None;
        }
        let child = self.child.take()?;
        let pid = libc::pid_t::try_from(child.id()).ok()?;
        signal(child.id(), libc::SIGTERM);
        let deadline = Instant::now() + TERM_GRACE;
        let mut status = 0;
        // SAFETY: rusage is plain data, filled in by wait4.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        let mut wait = |options| {
            loop {
                // SAFETY: valid out-pointers; pid is our own unreaped child,
                // which std's Child (dropped below) will not wait for again.
                let r = unsafe { libc::wait4(pid, &mut status, options, &mut usage) };
                if r >= 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
                    return r;
                }
            }
        };
        let mut reaped = false;
        while Instant::now() < deadline {
            match wait(libc::WNOHANG) {
                0 => std::thread::sleep(Duration::from_millis(5)),
                r => {
                    reaped = r == pid;
                    break;
                }
            }
        }
        if !reaped {
            eprintln!(
                "{} (pid {pid}) ignored SIGTERM for {TERM_GRACE:?}; sending SIGKILL",
                self.name
            );
            signal(child.id(), libc::SIGKILL);
            if wait(0) != pid {
                return None;
            }
        }
        self.status = Some(ExitStatus::from_raw(status));
        let time = |tv: libc::timeval| {
            Duration::from_secs(tv.tv_sec as u64) + Duration::from_micros(tv.tv_usec as u64)
        };
        Some(Usage {
            cpu: time(usage.ru_utime) + time(usage.ru_stime),
            max_rss_kib: usage.ru_maxrss,
            minor_faults: usage.ru_minflt,
        })
    }
}

/// What a process and the children it reaped used, from wait4(2)'s rusage.
#[derive(Clone, Copy, Debug)]
pub struct Usage {
    /// User plus system CPU time.
    pub cpu: Duration,
    /// The largest resident set among them, in KiB.
    pub max_rss_kib: i64,
    /// Minor page faults, all of them together.
    pub minor_faults: i64,
}

impl Drop for ProcessGuard {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Sends `sig` to `pid`; errors (e.g. already gone) are ignored.
pub fn signal(pid: u32, sig: libc::c_int) {
    if let Ok(pid) = libc::pid_t::try_from(pid) {
        if pid > 0 {
            // SAFETY: kill(2) has no memory-safety preconditions.
            unsafe {
                libc::kill(pid, sig);
            }
        }
    }
}

/// Polls `done` every `every` until it returns true or `timeout` passes.
/// Returns whether it became true.
pub fn wait_until(timeout: Duration, every: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if done() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(every);
    }
}

/// All pids currently listed in `/proc`.
pub fn all_pids() -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect()
}

/// The parent pid of `pid`, from `/proc/<pid>/stat`.
pub fn parent_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may contain anything; fields
    // after the last ')' are: state, ppid, ...
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// The command line of `pid`, arguments joined with spaces.
pub fn cmdline_of(pid: u32) -> Option<String> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let text = String::from_utf8_lossy(&raw).replace('\0', " ");
    Some(text.trim_end().to_string())
}

/// Whether `pid` is a zombie (exited, not yet reaped).
pub fn is_zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            let rest = &stat[stat.rfind(')')? + 1..];
            rest.split_whitespace().next().map(|s| s == "Z")
        })
        .unwrap_or(false)
}

/// Live (non-zombie) children of `parent`, with their command lines.
pub fn children_of(parent: u32) -> Vec<(u32, String)> {
    all_pids()
        .into_iter()
        .filter(|&pid| parent_of(pid) == Some(parent) && !is_zombie(pid))
        .map(|pid| (pid, cmdline_of(pid).unwrap_or_default()))
        .collect()
}

/// Live processes (other than this one) whose command line contains `marker`.
pub fn processes_matching(marker: &str) -> Vec<(u32, String)> {
    let me = std::process::id();
    all_pids()
        .into_iter()
        .filter(|&pid| pid != me && !is_zombie(pid))
        .filter_map(|pid| {
            let cmdline = cmdline_of(pid)?;
            cmdline.contains(marker).then_some((pid, cmdline))
        })
        .collect()
}

/// Finds a program on `PATH` or in the system directories where daemons live
/// (`/usr/sbin`, `/sbin`), which a non-root `PATH` often lacks.
pub fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/local/sbin", "/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

/// What `cmd` printed on stdout, once it has exited successfully; its
/// stderr in the failure otherwise.
pub fn stdout_of(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Runs `cmd` with `input` on its stdin (then closed) and returns what it
/// wrote and how it exited, stdout and stderr captured.
pub fn output_with_input(cmd: &mut Command, input: &[u8]) -> Output {
    use std::io::Write;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

/// Like [`find_program`], but a missing program fails the test with a
/// message saying how to get it. System tests never skip.
pub fn require_program(name: &str) -> PathBuf {
    find_program(name)
        .unwrap_or_else(|| panic!("{name} not found: run scripts/test, which installs it"))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// A marker unique to this call, safe inside a decimal number
/// (`sleep 61.<marker>` stays a valid duration).
pub fn unique_digits() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{}{:03}{:09}", std::process::id(), n % 1000, nanos)
}

/// CPU time from `/proc/<pid>/stat`: the process's own (every thread,
/// live or exited) and its reaped children's, in clock ticks (10 ms here)
/// converted to durations.
#[derive(Clone, Copy, Debug, Default)]
pub struct CpuTimes {
    /// utime + stime.
    pub own: Duration,
    /// cutime + cstime: the children it has waited for.
    pub children: Duration,
}

/// `pid`'s [`CpuTimes`]; `None` once the process is gone.
pub fn cpu_times(pid: u32) -> Option<CpuTimes> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after "(comm)": state is field 3, utime 14, stime 15,
    // cutime 16, cstime 17.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11);
    let mut next = || -> Option<u64> { fields.next()?.parse().ok() };
    let (utime, stime, cutime, cstime) = (next()?, next()?, next()?, next()?);
    // SAFETY: sysconf has no preconditions.
    let hz = u64::try_from(unsafe { libc::sysconf(libc::_SC_CLK_TCK) })
        .ok()
        .filter(|&hz| hz > 0)?;
    let ticks = |n: u64| Duration::from_nanos(n * 1_000_000_000 / hz);
    Some(CpuTimes {
        own: ticks(utime + stime),
        children: ticks(cutime + cstime),
    })
}

/// A `kB` field of `/proc/<pid>/status` (e.g. `VmHWM`, the peak resident
/// set size), in KiB; `None` once the process is gone.
pub fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|line| {
        let rest = line.strip_prefix(field)?.strip_prefix(':')?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

/// The inodes of the sockets `pid` has open (from its `/proc/<pid>/fd` links).
pub fn socket_inodes_of(pid: u32) -> Vec<u64> {
    let Ok(entries) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return Vec::new();
    };
    entries
        .filter_map(|e| {
            let target = std::fs::read_link(e.ok()?.path()).ok()?;
            let target = target.to_str()?;
            target
                .strip_prefix("socket:[")?
                .strip_suffix(']')?
                .parse()
                .ok()
        })
        .collect()
}

/// Every unix stream socket on the host, from `/proc/net/unix`, as
/// `(inode, state, path)`: the state as the kernel's code (`01` unconnected,
/// `02` connecting, `03` connected...), the path empty for an unnamed socket
/// (such as a client's end of a connection).
pub fn unix_stream_sockets() -> Vec<(u64, String, String)> {
    let table = std::fs::read_to_string("/proc/net/unix").unwrap_or_default();
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            // Num RefCount Protocol Flags Type St Inode [Path]
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.len() < 7 || fields[4] != "0001" {
                return None;
            }
            let inode = fields[6].parse().ok()?;
            let path = fields.get(7).unwrap_or(&"").to_string();
            Some((inode, fields[5].to_string(), path))
        })
        .collect()
}

/// The pids of `parent`'s children (zombies included), from
/// `/proc/<parent>/task/*/children`: one small read per thread of the
/// parent, where [`children_of`] walks all of `/proc`. Falls back to that
/// walk on kernels without `CONFIG_PROC_CHILDREN`.
pub fn child_pids(parent: u32) -> Vec<u32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{parent}/task")) else {
        return Vec::new();
    };
    let mut pids = Vec::new();
    for task in tasks.flatten() {
        match std::fs::read_to_string(task.path().join("children")) {
            Ok(list) => pids.extend(
                list.split_whitespace()
                    .filter_map(|p| p.parse::<u32>().ok()),
            ),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return all_pids()
                    .into_iter()
                    .filter(|&pid| parent_of(pid) == Some(parent))
                    .collect();
            }
            Err(_) => {}
        }
    }
    pids
}

/// Copies an executable to `to`, mode 0755, and returns once it can be
/// run. Another test thread that forks while the copy is open for writing
/// hands the child a descriptor of it, and `exec` fails with ETXTBSY until
/// that child has exec'd in turn: a few milliseconds at most.
pub fn copy_executable(from: &Path, to: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::copy(from, to).unwrap_or_else(|e| panic!("copying {}: {e}", from.display()));
    std::fs::set_permissions(to, std::fs::Permissions::from_mode(0o755)).unwrap();
    let runs = wait_until(Duration::from_secs(5), Duration::from_millis(5), || {
        !matches!(
            Command::new(to).arg("--version").output(),
            Err(e) if e.raw_os_error() == Some(libc::ETXTBSY)
        )
    });
    assert!(runs, "{} stayed busy", to.display());
}

/// Waits up to `timeout` for `child`, then kills it: how it ended, or
/// `None` if it ran out of time.
pub fn wait_bounded(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
        }
    }
}

/// Runs `cmd` with stdout and stderr to `log`, bounded by `timeout` (then
/// SIGKILL). Returns the exit code (`None`: killed, by us or a signal).
pub fn run_to_file(cmd: &mut Command, log: &Path, timeout: Duration) -> Option<i32> {
    let out =
        std::fs::File::create(log).unwrap_or_else(|e| panic!("creating {}: {e}", log.display()));
    let err = out.try_clone().ok()?;
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .unwrap_or_else(|e| panic!("spawning {cmd:?}: {e}"));
    wait_bounded(&mut child, timeout).and_then(|status| status.code())
}

/// Runs `cmd` with `input` on stdin, bounded by `timeout` (then SIGKILL):
/// its exit code, stdout and stderr.
///
/// # Errors
/// It could not be started, or did not finish in time.
pub fn run_with_stdin(
    cmd: &mut Command,
    input: &str,
    timeout: Duration,
) -> Result<(Option<i32>, String, String), String> {
    use std::io::Write as _;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("spawning {cmd:?}: {e}"))?;
    let readers = [
        child.stdout.take().map(crate::run::reader),
        child.stderr.take().map(crate::run::reader),
    ];
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(input.as_bytes());
    }
    let status = wait_bounded(&mut child, timeout);
    let [stdout, stderr] = readers.map(|r| {
        let bytes = r.and_then(|h| h.join().ok()).unwrap_or_default();
        String::from_utf8_lossy(&bytes).into_owned()
    });
    match status {
        Some(status) => Ok((status.code(), stdout, stderr)),
        None => Err(format!(
            "{cmd:?} did not finish within {timeout:?}: {stderr}"
        )),
    }
}

/// A file's text, or nothing (for messages about a log that may not exist).
pub fn read_or_empty(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// The last `n` lines of `text`.
pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
