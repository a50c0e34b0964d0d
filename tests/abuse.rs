//! Abuse tests: the built binary under a real xinetd, fed clients and check
//! programs that misbehave on purpose, each test asserting what a client
//! sees and what is left afterwards (processes, open connections on the
//! server, xinetd's log lines).
//!
//! Timing bounds are meant for a loaded 2-core machine: generous, but each
//! far below what the failure it guards against would take (a hang lasts
//! until the test's own bound; a handler that waits for a deadline it should
//! not need waits seconds). The tests here run one at a time (a lock), so
//! that one's load does not stretch another's timings.
//!
//! Handlers are tracked as the live children of xinetd, sampled from
//! `/proc` by a [`Watcher`] thread, which also records each one's peak
//! resident set (`VmHWM`).

use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use inetd_health_testkit::client::{
    abort, accept_queue_len, exchange, loopback, open_connections_on, read_until_closed, Exchange,
};
use inetd_health_testkit::http::Response;
use inetd_health_testkit::mariadb::{Mariadb, MONITOR_USER};
use inetd_health_testkit::procs::{
    child_pids, cmdline_of, is_zombie, processes_matching, signal, socket_inodes_of, status_kib,
    unique_digits, unix_stream_sockets, wait_until,
};
use inetd_health_testkit::tmp::TempDir;
use inetd_health_testkit::xinetd::Xinetd;

/// The binary under test, as Cargo built it for this package's tests.
const BIN: &str = env!("CARGO_BIN_EXE_inetd-health");

/// Bound on any one exchange that is expected to finish promptly.
const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// Bound on waiting for xinetd to reap servers or for processes to go.
const REAP_TIMEOUT: Duration = Duration::from_secs(10);
/// Scheduling slack on top of a deadline the binary promises.
const MARGIN: Duration = Duration::from_millis(600);
/// How long a handler keeps draining after its response (the binary's
/// built-in bound, see `serve::Options::drain`).
const DRAIN: Duration = Duration::from_millis(500);
/// Peak resident set a handler may reach whatever the client or the check
/// sends (a debug build starts at about 3 MB).
const MAX_HANDLER_RSS_KIB: u64 = 20 * 1024;
/// A watcher stops sampling after this long, whatever happens.
const WATCH_LIMIT: Duration = Duration::from_secs(90);

const GET: &[u8] = b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n";

/// The tests of this file, one at a time (see the module docs).
fn one_at_a_time() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

fn bin() -> &'static Path {
    Path::new(BIN)
}

fn is_handler(cmdline: &str) -> bool {
    cmdline.contains("inetd-health")
}

/// Starts xinetd serving `inetd-health OPTIONS... exec -- /bin/sh <script>`,
/// the script being `body` (xinetd cannot quote `server_args`).
fn xinetd_with_script(options: &[&str], body: &str) -> Xinetd {
    let dir = TempDir::new("abuse");
    let script = dir.script("check.sh", body);
    let script = script.to_str().expect("utf-8 temp path").to_string();
    let mut args = options.to_vec();
    args.extend(["exec", "--", "/bin/sh", script.as_str()]);
    Xinetd::start_with(dir, bin(), &args)
}

/// Parses exactly one response from a connection that closed cleanly.
fn one_response(ex: &Exchange) -> Response {
    ex.assert_clean_close();
    Response::parse(&ex.bytes).unwrap_or_else(|e| panic!("{e}"))
}

fn assert_status(response: &Response, status_line: &str) {
    assert_eq!(response.status_line, status_line, "{response:?}");
    response.assert_standard_headers();
}

/// Waits until xinetd has no live children and no server-side connection
/// on its port is still open; asserts both.
fn assert_nothing_left(xinetd: &Xinetd) {
    let left = xinetd.wait_for_no_children(REAP_TIMEOUT);
    assert!(left.is_empty(), "processes left under xinetd: {left:?}");
    wait_until(REAP_TIMEOUT, Duration::from_millis(20), || {
        open_connections_on(xinetd.port()).is_empty()
    });
    let open = open_connections_on(xinetd.port());
    assert!(
        open.is_empty(),
        "server-side connections still open on port {} (state, peer port): {open:?}",
        xinetd.port()
    );
}

/// Waits for `n` exits in xinetd's log and returns their statuses.
fn exits(xinetd: &Xinetd, n: usize) -> Vec<i32> {
    let got = xinetd.wait_for_exits(n, REAP_TIMEOUT);
    assert_eq!(got.len(), n, "EXIT lines in xinetd's log: {got:?}");
    got
}

// --- Watching handlers through /proc ------------------------------------------

/// One child of xinetd, as sampled.
#[derive(Clone, Debug)]
struct Seen {
    first: Instant,
    last: Instant,
    /// Largest `VmHWM` read while it ran inetd-health (0 if never read).
    hwm_kib: u64,
    cmdline: String,
}

impl Seen {
    fn life(&self) -> Duration {
        self.last - self.first
    }
}

/// One sample.
#[derive(Clone, Copy, Debug)]
struct Sample {
    /// Live children of xinetd.
    live: usize,
    /// Of those, how many hold a unix stream socket (a connection to a
    /// server's unix socket: nothing else in a handler is one).
    connected: usize,
}

#[derive(Debug, Default)]
struct Watched {
    seen: HashMap<u32, Seen>,
    samples: Vec<Sample>,
}

impl Watched {
    fn max_live(&self) -> usize {
        self.samples.iter().map(|s| s.live).max().unwrap_or(0)
    }

    fn max_connected(&self) -> usize {
        self.samples.iter().map(|s| s.connected).max().unwrap_or(0)
    }

    /// The handler with the largest peak resident set.
    fn max_hwm(&self) -> Option<(u32, &Seen)> {
        self.seen
            .iter()
            .max_by_key(|(_, s)| s.hwm_kib)
            .map(|(&pid, s)| (pid, s))
    }

    /// The handler that lived longest (first to last sample).
    fn longest(&self) -> Option<(u32, &Seen)> {
        self.seen
            .iter()
            .max_by_key(|(_, s)| s.life())
            .map(|(&pid, s)| (pid, s))
    }

    /// When a child was last seen alive.
    fn last_alive(&self) -> Option<Instant> {
        self.seen.values().map(|s| s.last).max()
    }

    /// Asserts every handler seen reached at most [`MAX_HANDLER_RSS_KIB`],
    /// and that at least one was measured.
    fn assert_memory_bounded(&self) {
        let (pid, seen) = self.max_hwm().expect("no handler was seen");
        assert!(
            seen.hwm_kib > 0,
            "no handler's VmHWM could be read: {:?}",
            self.seen
        );
        assert!(
            seen.hwm_kib <= MAX_HANDLER_RSS_KIB,
            "handler {pid} ({}) peaked at {} KiB resident (VmHWM), over {} KiB",
            seen.cmdline,
            seen.hwm_kib,
            MAX_HANDLER_RSS_KIB
        );
    }
}

/// Samples the children of a process every `every` on a thread of its own,
/// until [`Watcher::finish`] (or drop, or [`WATCH_LIMIT`]).
struct Watcher {
    stop: Arc<AtomicBool>,
    /// Samples so far in which some handler's `VmHWM` was read.
    measured: Arc<AtomicUsize>,
    handle: Option<JoinHandle<Watched>>,
}

impl Watcher {
    fn start(parent: u32, every: Duration) -> Watcher {
        let stop = Arc::new(AtomicBool::new(false));
        let measured = Arc::new(AtomicUsize::new(0));
        let (flag, count) = (Arc::clone(&stop), Arc::clone(&measured));
        let handle = std::thread::spawn(move || {
            let mut watched = Watched::default();
            let started = Instant::now();
            while !flag.load(Ordering::SeqCst) && started.elapsed() < WATCH_LIMIT {
                if sample(parent, &mut watched) {
                    count.fetch_add(1, Ordering::SeqCst);
                }
                std::thread::sleep(every);
            }
            sample(parent, &mut watched);
            watched
        });
        Watcher {
            stop,
            measured,
            handle: Some(handle),
        }
    }

    /// Waits (at most `bound`) for a sample, taken from now on, that reads
    /// a handler's `VmHWM`: for a client that keeps its connection (and so
    /// the handler) open until the handler's peak has been read.
    fn wait_for_a_measure(&self, bound: Duration) -> bool {
        let before = self.measured.load(Ordering::SeqCst);
        wait_until(bound, Duration::from_millis(1), || {
            self.measured.load(Ordering::SeqCst) > before + 1
        })
    }

    fn finish(mut self) -> Watched {
        self.stop.store(true, Ordering::SeqCst);
        let handle = self.handle.take().expect("watcher already finished");
        handle.join().expect("watcher thread panicked")
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(handle) = self.handle.take() {
            let _ = handle.join();
        }
    }
}

/// Takes one sample; returns whether some handler's `VmHWM` was read.
fn sample(parent: u32, watched: &mut Watched) -> bool {
    let children: Vec<(u32, String)> = child_pids(parent)
        .into_iter()
        .filter(|&pid| !is_zombie(pid))
        .filter_map(|pid| Some((pid, cmdline_of(pid)?)))
        .collect();
    let at = Instant::now();
    let client_ends: Vec<u64> = if children.is_empty() {
        Vec::new()
    } else {
        unix_stream_sockets()
            .into_iter()
            .filter(|(_, state, path)| path.is_empty() && (state == "02" || state == "03"))
            .map(|(inode, _, _)| inode)
            .collect()
    };
    let mut connected = 0;
    let mut measured = false;
    for (pid, cmdline) in &children {
        let handler = is_handler(cmdline);
        let hwm = if handler {
            status_kib(*pid, "VmHWM").unwrap_or(0)
        } else {
            0
        };
        measured |= hwm > 0;
        if handler
            && socket_inodes_of(*pid)
                .iter()
                .any(|inode| client_ends.contains(inode))
        {
            connected += 1;
        }
        let seen = watched.seen.entry(*pid).or_insert_with(|| Seen {
            first: at,
            last: at,
            hwm_kib: 0,
            cmdline: String::new(),
        });
        seen.last = at;
        seen.hwm_kib = seen.hwm_kib.max(hwm);
        if handler {
            seen.cmdline = cmdline.clone();
        }
    }
    watched.samples.push(Sample {
        live: children.len(),
        connected,
    });
    measured
}

// --- 1. Silent and slow clients ------------------------------------------------

/// How a connection of the idle-clients test ended.
#[derive(Debug)]
enum Ended {
    Eof,
    Reset,
    // Shown in failure messages (through Debug) only.
    #[allow(dead_code)]
    Error(std::io::Error),
}

struct Idle {
    stream: Option<TcpStream>,
    slow: bool,
    opened: Instant,
    sent: usize,
    next_send: Instant,
    bytes: Vec<u8>,
    ended: Option<(Instant, Ended)>,
}

impl Idle {
    fn end(&mut self, how: Ended) {
        self.ended = Some((Instant::now(), how));
        // Close at once, as a client does once it has its answer.
        self.stream = None;
    }

    /// Reads what is there without blocking.
    fn read_available(&mut self) {
        let mut buf = [0u8; 4096];
        // Bounded: each pass reads, ends, or stops at WouldBlock; a response
        // is a few hundred bytes.
        for _ in 0..64 {
            let Some(stream) = self.stream.as_mut() else {
                return;
            };
            match stream.read(&mut buf) {
                Ok(0) => return self.end(Ended::Eof),
                Ok(n) => self.bytes.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if e.kind() == ErrorKind::ConnectionReset => return self.end(Ended::Reset),
                Err(e) => return self.end(Ended::Error(e)),
            }
        }
    }

    /// A slow client sends its next byte when it is due.
    fn send_if_due(&mut self, now: Instant) {
        if !self.slow || now < self.next_send || self.sent >= GET.len() {
            return;
        }
        let Some(stream) = self.stream.as_mut() else {
            return;
        };
        match stream.write(&GET[self.sent..self.sent + 1]) {
            Ok(1) => self.sent += 1,
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return self.end(Ended::Reset),
            Err(e) => return self.end(Ended::Error(e)),
        }
        self.next_send += Duration::from_secs(1);
    }
}

/// One round over the open connections: slow clients send a byte when
/// due, then a poll (up to `timeout_ms`) and reads of what arrived.
fn drive(conns: &mut [Idle], timeout_ms: libc::c_int) {
    let now = Instant::now();
    for c in conns.iter_mut().filter(|c| c.ended.is_none()) {
        c.send_if_due(now);
    }
    let (mut fds, owners): (Vec<libc::pollfd>, Vec<usize>) = conns
        .iter()
        .enumerate()
        .filter_map(|(i, c)| {
            let fd = c.stream.as_ref()?.as_raw_fd();
            Some((
                libc::pollfd {
                    fd,
                    events: libc::POLLIN,
                    revents: 0,
                },
                i,
            ))
        })
        .unzip();
    if fds.is_empty() {
        return;
    }
    // SAFETY: a valid array of fds.len() pollfd entries.
    let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout_ms) };
    if n <= 0 {
        return;
    }
    for (pfd, &i) in fds.iter().zip(&owners) {
        if pfd.revents != 0 {
            conns[i].read_available();
        }
    }
}

/// 200 clients that connect and send nothing, mixed with 200 that send one
/// byte of a request per second, all at once, with `--read-timeout 1s`.
/// Every client gets a 408 (none a bare close, none a reset); every handler
/// has exited by the read deadline plus one second; nothing is left.
#[test]
fn idle_clients_get_408_and_every_handler_exits_by_the_read_deadline() {
    const CLIENTS: usize = 400;
    /// Connections waiting in xinetd's accept queue (its backlog is 64):
    /// more, and the kernel drops handshakes, which the client retries a
    /// second later, and the test would measure TCP's retry instead.
    const MAX_QUEUED: usize = 32;
    /// Connections opened between two looks at the accept queue.
    const BATCH: usize = 16;
    let read_timeout = Duration::from_secs(1);
    let _serial = one_at_a_time();
    let xinetd = Xinetd::start(BIN, &["--read-timeout", "1s", "exec", "--", "/bin/true"]);
    let port = xinetd.port();
    let watcher = Watcher::start(xinetd.pid(), Duration::from_millis(50));

    let first_open = Instant::now();
    let mut conns: Vec<Idle> = Vec::with_capacity(CLIENTS);
    for i in 0..CLIENTS {
        if i % BATCH == 0 {
            // Reading /proc/net/tcp costs milliseconds (it walks the whole
            // table), so the queue is checked once per batch; meanwhile the
            // connections already open are served.
            wait_until(Duration::from_secs(5), Duration::from_millis(2), || {
                drive(&mut conns, 0);
                accept_queue_len(port).is_some_and(|n| n < MAX_QUEUED)
            });
        }
        let mut stream = TcpStream::connect_timeout(&loopback(port), Duration::from_secs(2))
            .unwrap_or_else(|e| panic!("connection {i}: {e}"));
        let opened = Instant::now();
        let _ = stream.set_nodelay(true);
        stream.set_nonblocking(true).expect("set_nonblocking");
        let slow = i % 2 == 1;
        let mut sent = 0;
        if slow {
            stream.write_all(&GET[..1]).expect("first byte");
            sent = 1;
        }
        conns.push(Idle {
            stream: Some(stream),
            slow,
            opened,
            sent,
            next_send: opened + Duration::from_secs(1),
            bytes: Vec::new(),
            ended: None,
        });
    }
    let last_open = Instant::now();
    eprintln!(
        "opened {CLIENTS} connections in {:?}",
        last_open - first_open
    );

    // Drive them all from this thread: poll, read, send slow bytes when due.
    let give_up = last_open + Duration::from_secs(8);
    while Instant::now() < give_up && conns.iter().any(|c| c.ended.is_none()) {
        drive(&mut conns, 20);
    }
    let driven = Instant::now();
    // Anything still open is closed here, before the assertions.
    let unfinished = conns.iter().filter(|c| c.ended.is_none()).count();
    for c in &mut conns {
        c.stream = None;
    }
    let left = xinetd.wait_for_no_children(REAP_TIMEOUT);
    let watched = watcher.finish();

    // What the clients saw.
    assert_eq!(
        unfinished,
        0,
        "connections with no end by {:?} after the last was opened",
        driven - last_open
    );
    for (i, c) in conns.iter().enumerate() {
        let (at, how) = c.ended.as_ref().expect("ended");
        let kind = if c.slow { "slow" } else { "silent" };
        assert!(
            matches!(how, Ended::Eof),
            "{kind} client {i}: connection ended by {how:?}, not a clean close; received {:?}",
            String::from_utf8_lossy(&c.bytes)
        );
        let response = Response::parse(&c.bytes)
            .unwrap_or_else(|e| panic!("{kind} client {i} (sent {} bytes): {e}", c.sent));
        assert_status(&response, "HTTP/1.1 408 Request Timeout");
        let took = *at - c.opened;
        assert!(
            took >= read_timeout - Duration::from_millis(50),
            "{kind} client {i}: 408 after {took:?}, before the 1 s read deadline"
        );
        assert!(
            *at <= last_open + read_timeout + Duration::from_secs(1) + MARGIN,
            "{kind} client {i}: 408 {:?} after the last connection was opened",
            *at - last_open
        );
    }

    // What was left on the server.
    assert!(left.is_empty(), "processes left under xinetd: {left:?}");
    assert_eq!(
        watched.seen.len(),
        CLIENTS,
        "handlers seen (one per connection; max live at once {})",
        watched.max_live()
    );
    let (pid, longest) = watched.longest().expect("handlers seen");
    eprintln!(
        "longest-lived handler {pid}: {:?}; last handler seen {:?} after the last connection \
         was opened; at most {} alive at once",
        longest.life(),
        watched
            .last_alive()
            .map(|t| t.saturating_duration_since(last_open)),
        watched.max_live()
    );
    assert!(
        longest.life() <= read_timeout + Duration::from_secs(1),
        "handler {pid} ({}) lived {:?}, past the read deadline plus one second",
        longest.cmdline,
        longest.life()
    );
    let gone_by = last_open + read_timeout + Duration::from_secs(1) + MARGIN;
    let last_alive = watched.last_alive().expect("handlers seen");
    assert!(
        last_alive <= gone_by,
        "a handler was still alive {:?} after the last connection was opened",
        last_alive - last_open
    );
    assert_eq!(
        exits(&xinetd, CLIENTS),
        vec![65; CLIENTS],
        "every handler answered 408: exit 65 (bad client)"
    );
    assert_nothing_left(&xinetd);
}

// --- 2. Load -----------------------------------------------------------------------

/// 2000 requests, 32 at a time: every answer a correct 200 (exact
/// Content-Length, nothing after it), no reset, no handler left.
#[test]
fn two_thousand_requests_at_concurrency_32_all_200_without_reset() {
    const REQUESTS: usize = 2000;
    const CONCURRENCY: usize = 32;
    let _serial = one_at_a_time();
    let xinetd = Xinetd::start(BIN, &["exec", "--", "/bin/true"]);
    let port = xinetd.port();
    let started = Instant::now();
    let workers: Vec<_> = (0..CONCURRENCY)
        .map(|t| {
            std::thread::spawn(move || {
                let mut failures = Vec::new();
                let mut resets = 0;
                let mut done = 0;
                for i in (t..REQUESTS).step_by(CONCURRENCY) {
                    let ex = exchange(port, GET, IO_TIMEOUT);
                    done += 1;
                    if ex.reset {
                        resets += 1;
                    }
                    let verdict = if ex.reset || ex.timed_out || ex.read_error.is_some() {
                        Err(format!("{ex:?}"))
                    } else {
                        Response::parse(&ex.bytes).and_then(|r| {
                            if r.status_line == "HTTP/1.1 200 OK"
                                && r.content_length() == Some(r.body.len())
                                && r.body_text().starts_with("healthy: ")
                            {
                                Ok(())
                            } else {
                                Err(format!("{r:?}"))
                            }
                        })
                    };
                    if let Err(e) = verdict {
                        failures.push(format!("request {i}: {e}"));
                    }
                }
                (done, resets, failures)
            })
        })
        .collect();
    let mut done = 0;
    let mut resets = 0;
    let mut failures = Vec::new();
    for worker in workers {
        let (d, r, f) = worker.join().expect("client thread panicked");
        done += d;
        resets += r;
        failures.extend(f);
    }
    let took = started.elapsed();
    eprintln!(
        "{REQUESTS} requests at concurrency {CONCURRENCY} in {took:?} ({:.0}/s)",
        REQUESTS as f64 / took.as_secs_f64()
    );
    assert_eq!(done, REQUESTS);
    assert_eq!(resets, 0, "connections reset out of {REQUESTS}");
    assert!(
        failures.is_empty(),
        "{} bad answers out of {REQUESTS}, e.g. {:?}",
        failures.len(),
        &failures[..failures.len().min(3)]
    );
    let statuses = exits(&xinetd, REQUESTS);
    assert!(
        statuses.iter().all(|&s| s == 0),
        "exit statuses other than 0: {:?}",
        statuses.iter().filter(|&&s| s != 0).collect::<Vec<_>>()
    );
    assert_nothing_left(&xinetd);
}

// --- 3. Clients that reset, clients that send too much ---------------------------

/// Waits (bounded) until xinetd has reaped `n` servers in all and returns
/// the last one's exit status.
fn next_exit(xinetd: &Xinetd, n: usize) -> i32 {
    *exits(xinetd, n).last().expect("an exit")
}

/// Clients that reset the connection: while the check runs (before the
/// response), after reading the first bytes of the response, and in the
/// middle of the request head. Each handler exits promptly (not at a
/// deadline), xinetd keeps serving, nothing is left.
#[test]
fn client_resets_end_the_handler_promptly_and_xinetd_keeps_serving() {
    let _serial = one_at_a_time();
    // 4000 bytes of output (shown in the body) and 0.3 s of work; deadlines
    // far away, so a handler that waits for one shows.
    let xinetd = xinetd_with_script(
        &["--read-timeout", "5s", "--timeout", "5s", "--show-output"],
        "head -c 4000 /dev/zero | tr '\\0' x\nsleep 0.3",
    );
    let port = xinetd.port();
    let check_time = Duration::from_millis(300);
    let watcher = Watcher::start(xinetd.pid(), Duration::from_millis(10));
    let mut exits_seen = 0;
    let mut lives = Vec::new();
    let mut timed = |what: &str, xinetd: &Xinetd, want_status: i32, started: Instant| {
        exits_seen += 1;
        let status = next_exit(xinetd, exits_seen);
        let took = started.elapsed();
        assert_eq!(status, want_status, "{what}: handler's exit status");
        lives.push((what.to_string(), took));
    };
    let connect = || {
        let s =
            TcpStream::connect_timeout(&loopback(port), Duration::from_secs(2)).expect("connect");
        let _ = s.set_nodelay(true);
        s
    };

    for round in 0..5 {
        // Reset right after the request: the RST arrives while the check
        // runs, so writing the response fails (exit 65: broken).
        let started = Instant::now();
        let mut s = connect();
        s.write_all(GET).expect("request");
        abort(s);
        timed(
            &format!("reset during the check #{round}"),
            &xinetd,
            65,
            started,
        );

        // Reset after the first bytes of the response: the response is out,
        // the handler is draining (exit 0: answered).
        let started = Instant::now();
        let mut s = connect();
        s.write_all(GET).expect("request");
        s.set_read_timeout(Some(IO_TIMEOUT)).expect("timeout");
        let mut first = [0u8; 12];
        s.read_exact(&mut first)
            .expect("first bytes of the response");
        assert_eq!(&first, b"HTTP/1.1 200");
        abort(s);
        timed(&format!("reset mid-response #{round}"), &xinetd, 0, started);

        // Reset in the middle of the head (exit 65: broken).
        let started = Instant::now();
        let mut s = connect();
        s.write_all(b"GET / HT").expect("partial request");
        std::thread::sleep(Duration::from_millis(50));
        abort(s);
        timed(&format!("reset mid-head #{round}"), &xinetd, 65, started);
    }
    // xinetd still serves, and well.
    let ex = exchange(port, GET, IO_TIMEOUT);
    let response = one_response(&ex);
    assert_status(&response, "HTTP/1.1 200 OK");
    let body = response.body_text();
    assert!(
        body.starts_with("healthy: ") && body.contains(&"x".repeat(4000)),
        "body of {} bytes: {:?}...",
        body.len(),
        &body[..body.len().min(80)]
    );
    assert_eq!(next_exit(&xinetd, 16), 0);
    let watched = watcher.finish();
    for (what, took) in &lives {
        assert!(
            *took <= check_time + MARGIN,
            "{what}: handler exited {took:?} after the connection was opened"
        );
    }
    let (pid, longest) = watched.longest().expect("handlers seen");
    assert!(
        longest.life() <= check_time + MARGIN,
        "handler {pid} lived {:?}",
        longest.life()
    );
    eprintln!("handler lives (connect to exit in xinetd's log): {lives:?}");
    assert_nothing_left(&xinetd);
}

/// How a client sends its 10 MB.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Pace {
    /// Writes all of it, whatever comes back, then half-closes.
    Blind,
    /// Stops sending (and closes) as soon as it has read the response.
    Polite,
}

/// What [`send_10_mb`] observed.
#[derive(Debug)]
struct Flood {
    reader: Exchange,
    /// Bytes the writer got into the socket, and the error that stopped it.
    written: usize,
    write_error: Option<std::io::Error>,
}

/// Sends `payload` (about 10 MB) from one thread while reading the response
/// on this one; closes once `watcher` has read the handler's peak memory.
fn send_10_mb(port: u16, payload: Arc<Vec<u8>>, pace: Pace, watcher: &Watcher) -> Flood {
    let mut stream =
        TcpStream::connect_timeout(&loopback(port), Duration::from_secs(2)).expect("connect");
    let _ = stream.set_nodelay(true);
    let mut writer = stream.try_clone().expect("clone");
    writer
        .set_write_timeout(Some(Duration::from_millis(200)))
        .expect("write timeout");
    let answered = Arc::new(AtomicBool::new(false));
    let seen = Arc::clone(&answered);
    let sender = std::thread::spawn(move || {
        let started = Instant::now();
        let mut written = 0;
        let mut error = None;
        // Bounded by the payload's size and by IO_TIMEOUT.
        for chunk in payload.chunks(64 * 1024) {
            if pace == Pace::Polite && seen.load(Ordering::SeqCst) {
                break;
            }
            if started.elapsed() > IO_TIMEOUT {
                error = Some(std::io::Error::new(ErrorKind::TimedOut, "gave up"));
                break;
            }
            let mut rest = chunk;
            while !rest.is_empty() && started.elapsed() <= IO_TIMEOUT {
                if pace == Pace::Polite && seen.load(Ordering::SeqCst) {
                    break;
                }
                match writer.write(rest) {
                    Ok(n) => {
                        written += n;
                        rest = &rest[n..];
                    }
                    Err(e)
                        if matches!(
                            e.kind(),
                            ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                        ) => {}
                    Err(e) => {
                        error = Some(e);
                        break;
                    }
                }
            }
            if error.is_some() {
                break;
            }
        }
        (written, error)
    });
    let reader = read_until_closed(&mut stream, IO_TIMEOUT);
    answered.store(true, Ordering::SeqCst);
    let (written, write_error) = sender.join().expect("writer thread panicked");
    // The handler drains until this side closes: it stays alive (bounded
    // by its drain) until its peak memory has been read, then the client
    // closes, cleanly (everything sent to it was read).
    watcher.wait_for_a_measure(Duration::from_millis(300));
    let _ = stream.shutdown(Shutdown::Write);
    drop(stream);
    Flood {
        reader,
        written,
        write_error,
    }
}

/// What a client that speaks TLS to a plaintext port gets instead of a
/// status line.
const TLS_ALERT: &str = "a TLS handshake_failure alert";

/// 10 MB from a client: a valid head with a 10 MB body, a header line that
/// never ends, binary garbage, and garbage after a TLS record header; each
/// blind (all 10 MB, whatever the answer) and polite (stops once answered).
/// The answer is the code's: 200 (a body is ignored), 431 (head over 8
/// KiB), 400 (malformed at the first byte), a TLS alert (an HTTPS client).
/// The handler stays small, exits within the read deadline plus the drain,
/// and the reading side never sees a reset; nothing is left.
#[test]
fn ten_megabytes_from_a_client_get_a_clear_answer_in_bounded_memory_and_time() {
    const MB10: usize = 10 * 1024 * 1024;
    let _serial = one_at_a_time();
    let read_timeout = Duration::from_secs(1);
    let xinetd = Xinetd::start(BIN, &["--read-timeout", "1s", "exec", "--", "/bin/true"]);
    let port = xinetd.port();

    let with_body = {
        let mut p = format!("GET / HTTP/1.1\r\nHost: localhost\r\nContent-Length: {MB10}\r\n\r\n")
            .into_bytes();
        p.resize(p.len() + MB10, b'b');
        Arc::new(p)
    };
    let endless_header = {
        let mut p = b"GET / HTTP/1.1\r\nHost: localhost\r\nX-Padding: ".to_vec();
        p.resize(MB10, b'a');
        Arc::new(p)
    };
    let garbage_after = |first: &[u8]| {
        // Deterministic bytes that are no HTTP.
        let mut p = first.to_vec();
        let mut x: u32 = 0x9e37_79b9;
        p.extend((0..MB10).map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 24) as u8
        }));
        Arc::new(p)
    };
    let garbage = garbage_after(&[0x01, 0x03, 0x01, 0x02, 0x00]);
    // A TLS record header first: an HTTPS client on this plaintext port,
    // answered with a TLS alert, not HTTP.
    let tls_garbage = garbage_after(&[0x16, 0x03, 0x01, 0x02, 0x00]);
    let cases = [
        ("head + 10 MB body", &with_body, "HTTP/1.1 200 OK", 0),
        (
            "10 MB header line",
            &endless_header,
            "HTTP/1.1 431 Request Header Fields Too Large",
            65,
        ),
        (
            "10 MB of binary garbage",
            &garbage,
            "HTTP/1.1 400 Bad Request",
            65,
        ),
        (
            "10 MB after a TLS record header",
            &tls_garbage,
            TLS_ALERT,
            65,
        ),
    ];
    let mut n = 0;
    for (what, payload, status_line, exit_status) in cases {
        for pace in [Pace::Polite, Pace::Blind] {
            let watcher = Watcher::start(xinetd.pid(), Duration::from_millis(2));
            let started = Instant::now();
            let flood = send_10_mb(port, Arc::clone(payload), pace, &watcher);
            n += 1;
            let status = next_exit(&xinetd, n);
            let handler_done = started.elapsed();
            let watched = watcher.finish();
            eprintln!(
                "{what}, {pace:?}: wrote {} bytes ({:?}); reader done after {:?}; \
                 handler gone after {handler_done:?}; peak RSS {:?} KiB",
                flood.written,
                flood.write_error,
                flood.reader.elapsed,
                watched.max_hwm().map(|(_, s)| s.hwm_kib)
            );
            let context = format!("{what}, {pace:?} client");
            // The reader: one response, then a clean end, never a reset.
            assert!(
                !flood.reader.reset,
                "{context}: the reading side saw a reset; received {:?}",
                flood.reader.text()
            );
            assert!(
                !flood.reader.timed_out && flood.reader.read_error.is_none(),
                "{context}: {:?}",
                flood.reader
            );
            if status_line == TLS_ALERT {
                // handshake_failure, a fatal alert record.
                assert_eq!(
                    flood.reader.bytes,
                    [0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28],
                    "{context}"
                );
            } else {
                let response = Response::parse(&flood.reader.bytes)
                    .unwrap_or_else(|e| panic!("{context}: {e}"));
                assert_status(&response, status_line);
            }
            assert_eq!(status, exit_status, "{context}: exit status");
            if pace == Pace::Polite {
                assert!(
                    flood.write_error.is_none(),
                    "{context}: a client that stopped once answered got {:?} after {} bytes",
                    flood.write_error,
                    flood.written
                );
            }
            // The handler: prompt, small.
            assert!(
                handler_done <= read_timeout + DRAIN + MARGIN,
                "{context}: handler exited {handler_done:?} after the connection was opened"
            );
            watched.assert_memory_bounded();
        }
    }
    assert_nothing_left(&xinetd);
}

// --- 4. Check programs that misbehave --------------------------------------------

/// Kills (SIGKILL, by pid) every process whose command line holds a marker
/// when dropped, so that a failing test leaves no `sleep 60` behind.
struct KillOnDrop(String);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        for (pid, _) in processes_matching(&self.0) {
            signal(pid, libc::SIGKILL);
        }
    }
}

/// A check that prints 100 MB: answered by its exit status, as soon as it
/// exits, with the output cut to a few KiB and the handler small.
#[test]
fn check_printing_100_mb_is_answered_promptly_in_bounded_memory() {
    let _serial = one_at_a_time();
    let print = "yes 0123456789abcdef | head -c 100000000";
    for (exit, status_line, word) in [
        (0, "HTTP/1.1 200 OK", "healthy: "),
        (2, "HTTP/1.1 503 Service Unavailable", "unhealthy: "),
    ] {
        // Time the program alone, to tell its own cost from the handler's.
        let alone = Instant::now();
        let status = std::process::Command::new("/bin/sh")
            .args(["-c", &format!("{print} > /dev/null")])
            .status()
            .expect("running the printer alone");
        assert!(status.success());
        let alone = alone.elapsed();
        let xinetd = xinetd_with_script(
            &["--timeout", "20s", "--show-output"],
            &format!("{print}\nexit {exit}"),
        );
        let watcher = Watcher::start(xinetd.pid(), Duration::from_millis(5));
        let ex = exchange(xinetd.port(), GET, Duration::from_secs(30));
        let watched = watcher.finish();
        let response = one_response(&ex);
        eprintln!(
            "100 MB printer exiting {exit}: answered after {:?} (the program alone, into \
             /dev/null: {alone:?}); handler peak RSS {:?} KiB; body {} bytes",
            ex.elapsed,
            watched.max_hwm().map(|(_, s)| s.hwm_kib),
            response.body.len()
        );
        assert_status(&response, status_line);
        let body = response.body_text();
        assert!(body.starts_with(word), "{response:?}");
        assert!(
            body.contains("0123456789abcdef"),
            "--show-output should show the start of the output: {response:?}"
        );
        assert!(
            response.body.len() <= 8 * 1024,
            "body of {} bytes: the output is not bounded",
            response.body.len()
        );
        // Promptly: not at the 20 s deadline, and within a few times what
        // the program takes alone.
        assert!(
            ex.elapsed <= alone * 4 + Duration::from_secs(2),
            "answered after {:?}; the program alone takes {alone:?}",
            ex.elapsed
        );
        watched.assert_memory_bounded();
        assert_eq!(exits(&xinetd, 1), vec![0]);
        assert_nothing_left(&xinetd);
    }
}

/// A check that starts a daemon keeping the check's stdout and stderr open,
/// then exits 0: answered at the check's exit, not at the deadline (the
/// open pipe does not stall the answer), and the daemon, in the check's
/// process group, is gone afterwards.
#[test]
fn check_leaving_a_daemon_on_its_output_is_answered_at_its_exit() {
    let _serial = one_at_a_time();
    let marker = unique_digits();
    let _cleanup = KillOnDrop(marker.clone());
    let xinetd = xinetd_with_script(
        &["--timeout", "5s"],
        &format!("sleep 30.{marker} &\necho started a daemon\nexit 0"),
    );
    let ex = exchange(xinetd.port(), GET, IO_TIMEOUT);
    let response = one_response(&ex);
    assert_status(&response, "HTTP/1.1 200 OK");
    assert!(
        ex.elapsed < Duration::from_secs(2),
        "answered after {:?}: waited for the daemon's copy of the output pipe (deadline 5 s)",
        ex.elapsed
    );
    let gone = wait_until(REAP_TIMEOUT, Duration::from_millis(20), || {
        processes_matching(&marker).is_empty()
    });
    assert!(
        gone,
        "the daemon outlived the check: {:?}",
        processes_matching(&marker)
    );
    assert_eq!(exits(&xinetd, 1), vec![0]);
    assert_nothing_left(&xinetd);
}

/// The same with a daemon that leaves the check's session (`setsid`), as a
/// real daemon does: the answer still comes at the check's exit. A process
/// outside the check's process group is out of the binary's reach by design
/// (it kills the group), so this test kills it itself, by pid.
#[test]
fn check_leaving_a_setsid_daemon_on_its_output_is_answered_at_its_exit() {
    let _serial = one_at_a_time();
    let marker = unique_digits();
    let _cleanup = KillOnDrop(marker.clone());
    let xinetd = xinetd_with_script(
        &["--timeout", "5s"],
        &format!("setsid sleep 30.{marker} &\nsleep 0.1\nexit 0"),
    );
    let ex = exchange(xinetd.port(), GET, IO_TIMEOUT);
    let survivors = processes_matching(&marker);
    for (pid, _) in &survivors {
        signal(*pid, libc::SIGKILL);
    }
    let response = one_response(&ex);
    assert_status(&response, "HTTP/1.1 200 OK");
    assert!(
        ex.elapsed < Duration::from_secs(2),
        "answered after {:?}: waited for the daemon's copy of the output pipe (deadline 5 s)",
        ex.elapsed
    );
    eprintln!("setsid daemon after the answer: {survivors:?} (killed by the test)");
    assert_eq!(exits(&xinetd, 1), vec![0]);
    assert_nothing_left(&xinetd);
    let gone = wait_until(REAP_TIMEOUT, Duration::from_millis(20), || {
        processes_matching(&marker).is_empty()
    });
    assert!(gone, "{:?}", processes_matching(&marker));
}

/// A check that ignores SIGTERM (and a child of it that does too): 503 at
/// the `--timeout` deadline, and nothing of it left running.
#[test]
fn check_ignoring_sigterm_is_503_at_the_deadline_and_leaves_nothing() {
    let _serial = one_at_a_time();
    let marker = unique_digits();
    let _cleanup = KillOnDrop(marker.clone());
    let xinetd = xinetd_with_script(
        &["--timeout", "1s"],
        &format!("trap '' TERM HUP INT\nsleep 61.{marker} &\nsleep 60.{marker}"),
    );
    let ex = exchange(xinetd.port(), GET, IO_TIMEOUT);
    let response = one_response(&ex);
    assert_status(&response, "HTTP/1.1 503 Service Unavailable");
    assert!(
        response.body_text().starts_with("unhealthy: ")
            && response.body_text().contains("timed out"),
        "{response:?}"
    );
    assert!(
        ex.elapsed >= Duration::from_millis(950) && ex.elapsed <= Duration::from_secs(1) + MARGIN,
        "503 after {:?}; want at the 1 s deadline",
        ex.elapsed
    );
    let gone = wait_until(REAP_TIMEOUT, Duration::from_millis(20), || {
        processes_matching(&marker).is_empty()
    });
    assert!(
        gone,
        "check processes outlived the deadline: {:?}",
        processes_matching(&marker)
    );
    assert_eq!(exits(&xinetd, 1), vec![0]);
    assert_nothing_left(&xinetd);
}

// --- 5. A shared cache and a cap in front of a real MariaDB ---------------------------

/// One poll of [`poll_at_rate`].
struct Poll {
    /// When it was due, from the start of the run.
    due: Duration,
    /// When it was sent, from the start of the run.
    sent: Duration,
    ex: Exchange,
}

/// Polls 127.0.0.1:`port` with GET `per_second` times a second for `span`,
/// from `threads` threads taking the next due poll as they come free (so a
/// slow answer delays no other poll while a thread is free), each poll at
/// its due time or at once when late. Bounded: `per_second * span` polls,
/// and none started later than `span` plus 15 s.
fn poll_at_rate(port: u16, per_second: u32, span: Duration, threads: usize) -> Vec<Poll> {
    let total = (f64::from(per_second) * span.as_secs_f64()).round() as usize;
    let interval = Duration::from_secs(1) / per_second;
    let start = Instant::now();
    let give_up = span + Duration::from_secs(15);
    let next = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let next = Arc::clone(&next);
            std::thread::spawn(move || {
                let mut polls = Vec::new();
                loop {
                    let k = next.fetch_add(1, Ordering::SeqCst);
                    if k >= total || start.elapsed() > give_up {
                        break;
                    }
                    let due = interval * k as u32;
                    let now = start.elapsed();
                    if due > now {
                        std::thread::sleep(due - now);
                    }
                    let sent = start.elapsed();
                    let ex = exchange(port, GET, IO_TIMEOUT);
                    polls.push(Poll { due, sent, ex });
                }
                polls
            })
        })
        .collect();
    let mut polls: Vec<Poll> = workers
        .into_iter()
        .flat_map(|w| w.join().expect("polling thread panicked"))
        .collect();
    polls.sort_by_key(|p| p.due);
    assert_eq!(
        polls.len(),
        total,
        "polls made within {give_up:?} (the last sent at {:?})",
        polls.last().map(|p| p.sent)
    );
    polls
}

fn socket_arg(db: &Mariadb) -> String {
    db.socket().to_str().expect("utf-8 socket path").to_string()
}

/// `--cache-ttl 1s`, polled 200 times a second for 5 s under xinetd: every
/// poll is a 200, and the server sees at most one check connection per TTL.
#[test]
fn cache_ttl_keeps_200_polls_per_second_to_one_server_connection_per_ttl() {
    const RATE: u32 = 200;
    let span = Duration::from_secs(5);
    let ttl = Duration::from_secs(1);
    let _serial = one_at_a_time();
    let db = Mariadb::start();
    let state = TempDir::new("abuse-state");
    let conf = TempDir::new("abuse-cnf");
    let file = db.write_option_file(
        conf.path(),
        MONITOR_USER,
        Some(db.monitor_password()),
        0o600,
    );
    let (socket, file, state_dir) = (
        socket_arg(&db),
        file.to_str().expect("utf-8").to_string(),
        state.path().to_str().expect("utf-8").to_string(),
    );
    let xinetd = Xinetd::start(
        BIN,
        &[
            "--cache-ttl",
            "1s",
            "--state-dir",
            &state_dir,
            "mariadb",
            "--socket",
            &socket,
            "--defaults-extra-file",
            &file,
        ],
    );
    let healthy = format!(
        "healthy: MariaDB {} is alive (login and ping)",
        db.version()
    );
    // Each reading is a connection of its own, counted in what it reads.
    let before = db.global_status("Connections");
    let started = Instant::now();
    let polls = poll_at_rate(xinetd.port(), RATE, span, 8);
    let took = started.elapsed();
    let after = db.global_status("Connections");
    let checks = after - before - 1;

    let mut cached = 0;
    for (i, poll) in polls.iter().enumerate() {
        let response = one_response(&poll.ex);
        assert_status(&response, "HTTP/1.1 200 OK");
        let body = response.body_text();
        assert!(
            body.starts_with(&healthy),
            "poll {i} (sent at {:?}): {body:?}",
            poll.sent
        );
        if body.contains(" (cached, ") {
            cached += 1;
        }
    }
    let late = polls
        .iter()
        .map(|p| p.sent.saturating_sub(p.due))
        .max()
        .unwrap_or_default();
    eprintln!(
        "{} polls in {took:?} (latest {late:?} behind schedule), {cached} answered from the \
         cache; {checks} check connections reached the server",
        polls.len()
    );
    let most = (took.as_secs_f64() / ttl.as_secs_f64()).ceil() as u64 + 2;
    assert!(
        checks <= most,
        "{checks} check connections in {took:?} with a {ttl:?} TTL (at most {most})"
    );
    assert!(
        checks >= 3,
        "only {checks} check connections in {took:?}: the cache is never refreshed?"
    );
    assert!(
        cached as u64 + checks >= polls.len() as u64,
        "{cached} cached answers and {checks} checks for {} polls",
        polls.len()
    );
    let statuses = exits(&xinetd, polls.len());
    assert!(statuses.iter().all(|&s| s == 0), "{statuses:?}");
    assert_nothing_left(&xinetd);
}

/// `--max-concurrent 2` (no cache) in front of a server that hangs
/// (SIGSTOP), polled 50 times a second: at most two checks hold a
/// connection to the server at any time, the polls over the cap are
/// answered 503 "checker saturated" at once, the others 503 at the 2 s
/// deadline, the number of live handlers stays small; after SIGCONT
/// everything is 200 again and nothing is left.
#[test]
fn max_concurrent_bounds_checks_and_connections_to_a_hung_server() {
    const RATE: u32 = 50;
    const CAP: usize = 2;
    let span = Duration::from_secs(4);
    let deadline = Duration::from_secs(2);
    let _serial = one_at_a_time();
    let db = Mariadb::start();
    let state = TempDir::new("abuse-state");
    let conf = TempDir::new("abuse-cnf");
    let file = db.write_option_file(
        conf.path(),
        MONITOR_USER,
        Some(db.monitor_password()),
        0o600,
    );
    let (socket, file, state_dir) = (
        socket_arg(&db),
        file.to_str().expect("utf-8").to_string(),
        state.path().to_str().expect("utf-8").to_string(),
    );
    let xinetd = Xinetd::start(
        BIN,
        &[
            "--timeout",
            "2s",
            "--max-concurrent",
            "2",
            "--state-dir",
            &state_dir,
            "mariadb",
            "--socket",
            &socket,
            "--defaults-extra-file",
            &file,
        ],
    );
    let port = xinetd.port();
    assert_status(
        &one_response(&exchange(port, GET, IO_TIMEOUT)),
        "HTTP/1.1 200 OK",
    );
    let before = db.global_status("Connections");

    db.sigstop();
    let watcher = Watcher::start(xinetd.pid(), Duration::from_millis(50));
    let polls = poll_at_rate(port, RATE, span, 12);
    let watched = watcher.finish();
    db.sigcont();

    // What the pollers saw while the server hung.
    let saturated = format!("unhealthy: checker saturated: {CAP} checks already running\n");
    let timed_out = "unhealthy: timed out waiting for the server's greeting\n";
    let (mut fast, mut slow) = (Vec::new(), Vec::new());
    for (i, poll) in polls.iter().enumerate() {
        let response = one_response(&poll.ex);
        assert_status(&response, "HTTP/1.1 503 Service Unavailable");
        let body = response.body_text();
        if body == saturated {
            assert!(
                poll.ex.elapsed < Duration::from_millis(500),
                "poll {i}: \"checker saturated\" after {:?}, not at once",
                poll.ex.elapsed
            );
            fast.push(poll.ex.elapsed);
        } else {
            assert_eq!(body, timed_out, "poll {i} (sent at {:?})", poll.sent);
            assert!(
                poll.ex.elapsed >= deadline - Duration::from_millis(50)
                    && poll.ex.elapsed <= deadline + MARGIN,
                "poll {i}: timed out after {:?}, not at the {deadline:?} deadline",
                poll.ex.elapsed
            );
            slow.push(poll.ex.elapsed);
        }
    }
    let over = watched.samples.iter().filter(|s| s.connected > CAP).count();
    eprintln!(
        "{} polls while the server hung: {} saturated (slowest {:?}), {} at the deadline; \
         handlers alive at once: at most {}; holding a connection to the server: at most {} \
         ({over} of {} samples over {CAP})",
        polls.len(),
        fast.len(),
        fast.iter().max(),
        slow.len(),
        watched.max_live(),
        watched.max_connected(),
        watched.samples.len()
    );
    // Each slot serves one check per deadline at most, the first from the start.
    let most_slow = CAP * (span.as_secs_f64() / deadline.as_secs_f64()).ceil() as usize + CAP;
    assert!(
        !slow.is_empty() && slow.len() <= most_slow,
        "{} polls reached the hung server (at most {most_slow} with {CAP} slots)",
        slow.len()
    );
    assert!(
        watched.max_connected() <= CAP + 1 && over <= 2,
        "checks holding a connection to the server: at most {} at once, {over} samples over \
         {CAP}: {:?}",
        watched.max_connected(),
        watched
            .samples
            .iter()
            .filter(|s| s.connected > CAP)
            .collect::<Vec<_>>()
    );
    assert!(
        watched.max_connected() >= 1,
        "no handler was ever seen holding a connection to the server: is the count blind?"
    );
    assert!(
        watched.max_live() <= 10,
        "{} handlers alive at once (without the cap, every poll of the last 2 s: ~{})",
        watched.max_live(),
        RATE * 2
    );

    // After SIGCONT: 200 again, at once; nothing left.
    let mut recovered = None;
    let mut attempts = 0;
    let recovery = Instant::now();
    wait_until(Duration::from_secs(10), Duration::from_millis(100), || {
        attempts += 1;
        let ex = exchange(port, GET, IO_TIMEOUT);
        let ok = !ex.reset
            && Response::parse(&ex.bytes).is_ok_and(|r| r.status_line == "HTTP/1.1 200 OK");
        if ok {
            recovered = Some(recovery.elapsed());
        }
        ok
    });
    let recovered = recovered.expect("no 200 within 10 s of SIGCONT");
    for _ in 0..5 {
        assert_status(
            &one_response(&exchange(port, GET, IO_TIMEOUT)),
            "HTTP/1.1 200 OK",
        );
    }
    let after = db.global_status("Connections");
    eprintln!(
        "200 again {recovered:?} after SIGCONT; the server counted {} connections since the stall",
        after - before
    );
    assert!(
        recovered < Duration::from_secs(3),
        "first 200 {recovered:?} after SIGCONT"
    );
    // The server accepted the timed-out checks' connections once resumed
    // (before the later ones: its accept queue is in order), and those of
    // the polls since, and this reading's own; no saturated poll connected.
    assert_eq!(
        after - before,
        (slow.len() + attempts + 5 + 1) as u64,
        "connections the server counted since the stall: {} timed-out checks, {attempts} \
         polls until 200, 5 more, and this reading; none for the {} saturated polls",
        slow.len(),
        fast.len()
    );
    assert_nothing_left(&xinetd);
    let statuses = xinetd.exit_statuses();
    assert!(statuses.iter().all(|&s| s == 0), "{statuses:?}");
}
