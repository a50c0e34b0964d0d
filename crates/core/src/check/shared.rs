//! Checks shared between the per-connection processes of one service.
//!
//! Under a super-server every poll is a new process, so nothing is shared
//! unless it is put in a file. [`Cached`] keeps the last outcome in one
//! (a storm of polls becomes one check per TTL, single-flight), [`Capped`]
//! keeps a host-wide count of checks in flight (a hung server gets at most
//! N connections from us, however many polls arrive). Both are wrappers
//! around any [`Check`]; the files are handled by [`crate::state`].

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::{human_duration, Check, CheckError, Health, Verdict};
use crate::state::{lock_before, open_private, try_lock, unlock, Lock, StateDir, StateError};
use crate::Deadline;

/// Largest state file read: a verdict and at most a few KiB of detail.
const MAX_RECORD: u64 = 1 << 20;
const MAGIC: &str = "inetd-health-state 2";

/// The verdict for our own state failing: the checker, not the backend,
/// is broken, and it cannot tell whether the backend is up.
fn checker_failure(e: &StateError) -> Verdict {
    // The path, uids and system error go to the log's detail only.
    let public = match e {
        StateError::Directory { .. } => "checker failure: state directory unusable",
        _ => "checker failure: state file unusable",
    };
    Verdict::unknown(public).with_detail(e.to_string().into_bytes())
}

/// `verdict`, run without the cache because its state file was refused,
/// with the refusal at the end of its detail (the log's).
fn uncached(mut verdict: Verdict, refused: &StateError) -> Verdict {
    let mut detail = verdict.detail.take().unwrap_or_default();
    if !detail.is_empty() && !detail.ends_with(b"\n") {
        detail.push(b'\n');
    }
    detail.extend_from_slice(format!("[{refused}: ignored, the check ran uncached]").as_bytes());
    verdict.with_detail(detail)
}

/// Serves a recent outcome from a state file instead of running the check.
#[derive(Debug)]
pub struct Cached<C> {
    inner: C,
    dir: StateDir,
    path: PathBuf,
    ttl: Duration,
    max_stale: Duration,
    clock: fn() -> SystemTime,
}

impl<C> Cached<C> {
    /// Caches `inner`'s outcome in the file `name` of `dir` for `ttl`;
    /// never serves one older than `max_stale` (which is at least `ttl`).
    pub fn new(inner: C, dir: StateDir, name: &str, ttl: Duration, max_stale: Duration) -> Self {
        Cached {
            inner,
            path: dir.file(name),
            dir,
            ttl,
            max_stale: max_stale.max(ttl),
            clock: SystemTime::now,
        }
    }

    /// Replaces the wall clock (tests).
    pub fn with_clock(mut self, clock: fn() -> SystemTime) -> Self {
        self.clock = clock;
        self
    }

    fn age(&self, record: &Record) -> Duration {
        // A record from the future (the clock went back) is treated as old.
        (self.clock)()
            .duration_since(record.at)
            .unwrap_or(Duration::MAX)
    }

    fn served(&self, record: &Record) -> Verdict {
        let mut v = record.verdict.clone();
        let age = self.age(record);
        v.reason = format!("{} (cached, {} old)", v.reason, human_duration(age));
        v.cached_age = Some(age);
        v
    }
}

impl<C: Check> Check for Cached<C> {
    fn run(&self, deadline: Deadline) -> Result<Verdict, CheckError> {
        let state_error = |e: StateError| Ok(checker_failure(&e));
        let io_error = |source| {
            state_error(StateError::Io {
                path: self.path.clone(),
                source,
            })
        };
        if let Err(e) = self.dir.prepare() {
            return state_error(e);
        }
        let file = match open_private(&self.path) {
            Ok(f) => f,
            // A file we would not have written (another user's, a link, a
            // loose mode) is never read: whoever could write it could
            // forge a healthy record. It is ignored, and the check runs,
            // uncached; the log's detail says why. The poll is answered
            // with what the backend really is, not a checker failure.
            Err(e @ StateError::Refused { .. }) => {
                return self.inner.run(deadline).map(|v| uncached(v, &e));
            }
            Err(e) => return state_error(e),
        };
        // Fresh enough: served under the shared lock, the common case.
        let mut last: Option<Record> = None;
        match try_lock(&file, Lock::Shared) {
            Ok(true) => {
                last = read(&file);
                unlock(&file);
                if let Some(r) = last.as_ref().filter(|r| self.age(r) < self.ttl) {
                    return Ok(self.served(r));
                }
            }
            // A refresh is under way.
            Ok(false) => {}
            Err(e) => return io_error(e),
        }
        // Refresh, or wait for the refresh under way: the exclusive lock
        // goes to one poll at a time, and whoever gets it after a refresh
        // finds the record fresh. Waiting for it (rather than trying it
        // once and waiting on the shared lock) means a poll never gives
        // up while nobody refreshes, whatever other readers do meanwhile;
        // a refresher that could not write leaves the next one to refresh.
        match lock_before(&file, Lock::Exclusive, deadline) {
            Ok(true) => {
                if let Some(r) = read(&file).filter(|r| self.age(r) < self.ttl) {
                    unlock(&file);
                    return Ok(self.served(&r));
                }
                let result = self.inner.run(deadline);
                if let Ok(verdict) = &result {
                    let record = Record {
                        at: (self.clock)(),
                        verdict: verdict.clone(),
                    };
                    // A failed write costs only the next poll a check.
                    let _ = write(&file, &record);
                }
                unlock(&file);
                return result;
            }
            Ok(false) => {}
            Err(e) => return io_error(e),
        }
        Ok(
            match last.as_ref().filter(|r| self.age(r) < self.max_stale) {
                Some(r) => self.served(r),
                None => Verdict::unhealthy("no fresh result: another check is still running"),
            },
        )
    }
}

/// Lets at most N checks of a service run at once, host-wide.
#[derive(Debug)]
pub struct Capped<C> {
    inner: C,
    dir: StateDir,
    slots: Vec<PathBuf>,
}

impl<C> Capped<C> {
    /// Runs `inner` only while holding one of `n` slot files, named
    /// `NAME.slot0`… in `dir`.
    pub fn new(inner: C, dir: StateDir, name: &str, n: u32) -> Self {
        let slots = (0..n)
            .map(|i| dir.file(&format!("{name}.slot{i}")))
            .collect();
        Capped { inner, dir, slots }
    }
}

impl<C: Check> Check for Capped<C> {
    fn run(&self, deadline: Deadline) -> Result<Verdict, CheckError> {
        if let Err(e) = self.dir.prepare() {
            return Ok(checker_failure(&e));
        }
        for path in &self.slots {
            let slot = match open_private(path) {
                Ok(f) => f,
                Err(e) => return Ok(checker_failure(&e)),
            };
            match try_lock(&slot, Lock::Exclusive) {
                // The slot is held until `slot` is dropped, after the check.
                Ok(true) => return self.inner.run(deadline),
                Ok(false) => {}
                Err(source) => {
                    let e = StateError::Io {
                        path: path.clone(),
                        source,
                    };
                    return Ok(checker_failure(&e));
                }
            }
        }
        let n = self.slots.len();
        let checks = if n == 1 { "check" } else { "checks" };
        Ok(Verdict::unhealthy(format!(
            "checker saturated: {n} {checks} already running"
        )))
    }
}

#[derive(Clone, Debug, PartialEq)]
struct Record {
    at: SystemTime,
    verdict: Verdict,
}

fn encode(record: &Record) -> Vec<u8> {
    let at = record.at.duration_since(UNIX_EPOCH).unwrap_or_default();
    let one_line = |s: &str| s.replace(['\n', '\r'], " ");
    let perfdata: Vec<String> = record
        .verdict
        .perfdata
        .iter()
        .map(|p| one_line(&p.to_string()))
        .collect();
    let facts: Vec<String> = record.verdict.facts.iter().map(|f| f.encode()).collect();
    let mut out = format!(
        "{MAGIC}\n{}.{:09}\n{}\n{}\n{}\n{}\n",
        at.as_secs(),
        at.subsec_nanos(),
        record.verdict.health,
        one_line(&record.verdict.reason),
        perfdata.join(" "),
        facts.join(" "),
    )
    .into_bytes();
    match &record.verdict.detail {
        Some(d) => {
            out.extend_from_slice(format!("{}\n", d.len()).as_bytes());
            out.extend_from_slice(d);
        }
        None => out.extend_from_slice(b"-\n"),
    }
    out
}

/// Parses a record; `None` for an empty, torn or foreign file (a writer
/// that died mid-write), which then counts as no result.
fn decode(bytes: &[u8]) -> Option<Record> {
    let mut lines = bytes.splitn(7, |&b| b == b'\n');
    let mut line = || std::str::from_utf8(lines.next()?).ok();
    if line()? != MAGIC {
        return None;
    }
    let (secs, nanos) = line()?.split_once('.')?;
    let at = UNIX_EPOCH + Duration::new(secs.parse().ok()?, nanos.parse().ok()?);
    let health = Health::from_word(line()?)?;
    let reason = line()?.to_owned();
    let perfdata = super::PluginOutput::parse(format!("|{}", line()?).as_bytes()).perfdata;
    let facts = line()?
        .split_whitespace()
        .map(super::Fact::decode)
        .collect::<Option<Vec<_>>>()?;
    let rest = lines.next()?;
    let detail = if rest == b"-\n" {
        None
    } else {
        let newline = rest.iter().position(|&b| b == b'\n')?;
        let len: usize = std::str::from_utf8(&rest[..newline]).ok()?.parse().ok()?;
        let d = &rest[newline + 1..];
        (d.len() == len).then(|| d.to_vec())?.into()
    };
    Some(Record {
        at,
        verdict: Verdict {
            detail,
            perfdata,
            facts,
            ..Verdict::new(health, reason)
        },
    })
}

fn read(mut file: &File) -> Option<Record> {
    file.seek(SeekFrom::Start(0)).ok()?;
    let mut bytes = Vec::new();
    file.take(MAX_RECORD).read_to_end(&mut bytes).ok()?;
    decode(&bytes)
}

fn write(mut file: &File, record: &Record) -> std::io::Result<()> {
    file.set_len(0)?;
    file.seek(SeekFrom::Start(0))?;
    file.write_all(&encode(record))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
    use std::sync::Arc;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("ih-shared-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn cached<C>(check: C, d: &std::path::Path, ttl: Duration, max_stale: Duration) -> Cached<C> {
        Cached::new(check, StateDir::given(d), "s.state", ttl, max_stale)
    }

    struct Counting {
        runs: Arc<AtomicU32>,
        verdict: Verdict,
        takes: Duration,
    }
    impl Check for Counting {
        fn run(&self, _: Deadline) -> Result<Verdict, CheckError> {
            self.runs.fetch_add(1, Ordering::SeqCst);
            std::thread::sleep(self.takes);
            Ok(self.verdict.clone())
        }
    }

    fn counting(verdict: Verdict, takes_ms: u64) -> (Counting, Arc<AtomicU32>) {
        let runs = Arc::new(AtomicU32::new(0));
        let c = Counting {
            runs: runs.clone(),
            verdict,
            takes: Duration::from_millis(takes_ms),
        };
        (c, runs)
    }

    #[test]
    fn records_round_trip_and_torn_ones_are_ignored() {
        let r = Record {
            at: UNIX_EPOCH + Duration::new(1_795_478_399, 123_456_789),
            verdict: Verdict {
                perfdata: crate::check::PluginOutput::parse(b"|a=1;2;3;0;9 'b c'=2.5MB x=U")
                    .perfdata,
                facts: vec![
                    crate::check::Fact::ReplicaLagSeconds(7),
                    crate::check::Fact::GaleraLocalState(4),
                ],
                ..Verdict::warning("exit status 1\nforged").with_detail(b"a\nb\x00c".to_vec())
            },
        };
        let bytes = encode(&r);
        let back = decode(&bytes).unwrap();
        assert_eq!(back.at, r.at);
        assert_eq!(back.verdict.reason, "exit status 1 forged");
        assert_eq!(back.verdict.detail, r.verdict.detail);
        assert_eq!(back.verdict.perfdata, r.verdict.perfdata);
        assert_eq!(back.verdict.perfdata.len(), 3);
        assert_eq!(back.verdict.facts, r.verdict.facts);
        for cut in 0..bytes.len() {
            assert!(decode(&bytes[..cut]).is_none(), "cut {cut}");
        }
        for verdict in [
            Verdict::unhealthy("down"),
            Verdict::unknown("checker failure"),
        ] {
            let plain = Record { at: r.at, verdict };
            assert_eq!(decode(&encode(&plain)), Some(plain));
        }
        // A record of the previous format is no result, not a misread one.
        let old = b"inetd-health-state 1\n1.000000000\nhealthy\nok\n-\n";
        assert!(decode(old).is_none());
    }

    #[test]
    fn within_the_ttl_the_check_runs_once_and_failures_stay_failures() {
        let d = dir("ttl");
        let (check, runs) = counting(Verdict::unhealthy("exit status 2"), 0);
        let cached = cached(check, &d, Duration::from_secs(60), Duration::from_secs(60));
        let deadline = Deadline::after(Duration::from_secs(2));
        let first = cached.run(deadline).unwrap();
        assert_eq!(first.reason, "exit status 2");
        for _ in 0..5 {
            let v = cached.run(deadline).unwrap();
            assert_eq!(v.health, Health::Unhealthy);
            assert!(
                v.reason.starts_with("exit status 2 (cached, "),
                "{}",
                v.reason
            );
        }
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn past_the_ttl_it_runs_again() {
        let d = dir("stale");
        let (check, runs) = counting(Verdict::healthy("ok"), 0);
        let cached = cached(
            check,
            &d,
            Duration::from_millis(50),
            Duration::from_millis(50),
        );
        let deadline = Deadline::after(Duration::from_secs(2));
        cached.run(deadline).unwrap();
        std::thread::sleep(Duration::from_millis(80));
        assert_eq!(cached.run(deadline).unwrap().reason, "ok");
        assert_eq!(runs.load(Ordering::SeqCst), 2);
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn single_flight_across_concurrent_callers() {
        let d = dir("flight");
        let runs = Arc::new(AtomicU32::new(0));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (d, runs) = (d.clone(), runs.clone());
                std::thread::spawn(move || {
                    let check = Counting {
                        runs,
                        verdict: Verdict::healthy("ok"),
                        takes: Duration::from_millis(200),
                    };
                    // Each thread opens the file itself, as separate processes do.
                    cached(check, &d, Duration::from_secs(10), Duration::from_secs(10))
                        .run(Deadline::after(Duration::from_secs(2)))
                        .unwrap()
                })
            })
            .collect();
        for t in threads {
            assert_eq!(t.join().unwrap().health, Health::Healthy);
        }
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        std::fs::remove_dir_all(&d).unwrap();
    }

    /// Another poll holding the shared lock for a moment (reading, or
    /// descheduled while it reads) when this one wants to refresh: this
    /// one waits for the lock, then runs the check. Polls used to give up
    /// after three tries of the lock and answer "no fresh result", which a
    /// crowd of pollers on a cold cache could make all of them do.
    #[test]
    fn a_reader_holding_the_lock_a_moment_does_not_make_a_poll_give_up() {
        let d = dir("reader");
        let (check, runs) = counting(Verdict::healthy("ok"), 0);
        let cached = cached(check, &d, Duration::from_secs(10), Duration::from_secs(10));
        let reader = open_private(&d.join("s.state")).unwrap();
        assert!(try_lock(&reader, Lock::Shared).unwrap());
        let release = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            unlock(&reader);
        });
        let start = std::time::Instant::now();
        let v = cached.run(Deadline::after(Duration::from_secs(2))).unwrap();
        assert_eq!((v.health, v.reason.as_str()), (Health::Healthy, "ok"));
        assert!(
            start.elapsed() >= Duration::from_millis(90),
            "{:?}",
            start.elapsed()
        );
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        release.join().unwrap();
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_waiter_with_nothing_read_by_its_deadline_gets_no_result() {
        let d = dir("deadline");
        let refresher = {
            let d = d.clone();
            std::thread::spawn(move || {
                let (check, _) = counting(Verdict::healthy("slow"), 500);
                cached(check, &d, Duration::from_secs(10), Duration::from_secs(10))
                    .run(Deadline::after(Duration::from_secs(5)))
                    .unwrap()
            })
        };
        std::thread::sleep(Duration::from_millis(50));
        let (check, runs) = counting(Verdict::healthy("never"), 0);
        let start = std::time::Instant::now();
        let v = cached(check, &d, Duration::from_secs(10), Duration::from_secs(10))
            .run(Deadline::after(Duration::from_millis(150)))
            .unwrap();
        assert_eq!(v.reason, "no fresh result: another check is still running");
        assert!(start.elapsed() < Duration::from_millis(400));
        assert_eq!(runs.load(Ordering::SeqCst), 0);
        assert_eq!(refresher.join().unwrap().reason, "slow");
        std::fs::remove_dir_all(&d).unwrap();
    }

    /// The clock of [`a_waiter_never_gets_a_record_older_than_max_stale`],
    /// in seconds since the epoch.
    static NOW: AtomicU64 = AtomicU64::new(1_000);
    fn test_clock() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(NOW.load(Ordering::SeqCst))
    }

    #[test]
    fn a_waiter_never_gets_a_record_older_than_max_stale() {
        let d = dir("max-stale");
        let (ttl, max_stale) = (Duration::from_secs(10), Duration::from_secs(30));
        let (check, runs) = counting(Verdict::healthy("fresh"), 0);
        let cache = cached(check, &d, ttl, max_stale).with_clock(test_clock);
        let quick = || Deadline::after(Duration::from_millis(100));
        NOW.store(1_000, Ordering::SeqCst);
        assert_eq!(cache.run(quick()).unwrap().reason, "fresh");

        // Another process reads the record and holds its shared lock: this
        // caller finds the record stale and cannot take the lock to refresh
        // it, so it falls back on what it read.
        let other = open_private(&d.join("s.state")).unwrap();
        assert!(try_lock(&other, Lock::Shared).unwrap());
        NOW.store(1_020, Ordering::SeqCst);
        assert_eq!(
            cache.run(quick()).unwrap().reason,
            "fresh (cached, 20.00s old)"
        );
        NOW.store(1_029, Ordering::SeqCst);
        assert_eq!(
            cache.run(quick()).unwrap().reason,
            "fresh (cached, 29.00s old)"
        );
        for past in [1_030, 1_040, 100_000] {
            NOW.store(past, Ordering::SeqCst);
            let v = cache.run(quick()).unwrap();
            assert_eq!(
                (v.health, v.reason.as_str()),
                (
                    Health::Unhealthy,
                    "no fresh result: another check is still running"
                ),
                "at +{}s",
                past - 1_000
            );
        }
        // A record from the future (the clock went back) is never served.
        NOW.store(900, Ordering::SeqCst);
        assert_eq!(
            cache.run(quick()).unwrap().reason,
            "no fresh result: another check is still running"
        );
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        drop(other);
        NOW.store(1_050, Ordering::SeqCst);
        assert_eq!(cache.run(quick()).unwrap().reason, "fresh");
        assert_eq!(runs.load(Ordering::SeqCst), 2);
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn our_own_state_failing_is_the_checkers_failure_not_the_backends() {
        let d = dir("broken");
        let loose = d.join("s.state");
        std::fs::write(&loose, "").unwrap();
        std::fs::set_permissions(&loose, std::os::unix::fs::PermissionsExt::from_mode(0o644))
            .unwrap();
        // A state file we would not have written is ignored: the check
        // runs uncached, and the log's detail says why.
        let (check, runs) = counting(Verdict::unhealthy("down"), 0);
        let v = cached(check, &d, Duration::from_secs(1), Duration::from_secs(1))
            .run(Deadline::after(Duration::from_secs(1)))
            .unwrap();
        assert_eq!((v.health, v.reason.as_str()), (Health::Unhealthy, "down"));
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert_eq!(
            v.detail.as_deref(),
            Some(
                format!(
                    "[state file {}: refused: not mode 0600: ignored, the check ran uncached]",
                    loose.display()
                )
                .as_bytes()
            )
        );
        // The cache's directory unusable: the checker's failure.
        let (check, _) = counting(Verdict::healthy("ok"), 0);
        let v = cached(
            check,
            &d.join("missing/dir"),
            Duration::from_secs(1),
            Duration::from_secs(1),
        )
        .run(Deadline::after(Duration::from_secs(1)))
        .unwrap();
        assert_eq!(v.health, Health::Unknown, "{}", v.reason);
        let (check, _) = counting(Verdict::healthy("ok"), 0);
        std::fs::create_dir(d.join("c.slot0")).unwrap();
        let v = Capped::new(check, StateDir::given(&d), "c", 1)
            .run(Deadline::after(Duration::from_secs(1)))
            .unwrap();
        assert_eq!(v.health, Health::Unknown);
        assert_eq!(v.reason, "checker failure: state file unusable");
        let (check, _) = counting(Verdict::healthy("ok"), 0);
        let v = Capped::new(check, StateDir::private(d.join("missing/dir")), "c", 1)
            .run(Deadline::after(Duration::from_secs(1)))
            .unwrap();
        assert_eq!(v.health, Health::Unknown);
        assert_eq!(v.reason, "checker failure: state directory unusable");
        // Only the uncached run above: none where the checker failed.
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        std::fs::remove_dir_all(&d).unwrap();
    }

    fn require_root() {
        let root = crate::sys::euid() == 0;
        // Only root can hand a file to someone else; CI runs as root. A
        // test that cannot make its case fails, it never passes silently.
        assert!(
            root,
            "run as root: the test makes a file owned by another user"
        );
    }

    /// The clock of [`a_healthy_record_planted_by_another_user_is_never_served`].
    fn planted_clock() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(2_000)
    }

    /// A fresh, healthy record at the very path the cache uses, mode 0600:
    /// served while it is ours (so it is a record the cache would take),
    /// ignored once another user owns it, and the check really runs.
    /// Whoever owns the file could write any verdict into it; a down
    /// backend must not be answered "healthy" because of it.
    #[test]
    fn a_healthy_record_planted_by_another_user_is_never_served() {
        require_root();
        let d = dir("planted");
        let path = d.join("s.state");
        let planted = Record {
            at: planted_clock() - Duration::from_secs(1),
            verdict: Verdict::healthy("planted"),
        };
        std::fs::write(&path, encode(&planted)).unwrap();
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .unwrap();
        let (check, runs) = counting(Verdict::unhealthy("the real check: down"), 0);
        let cache = cached(check, &d, Duration::from_secs(60), Duration::from_secs(60))
            .with_clock(planted_clock);
        let deadline = || Deadline::after(Duration::from_secs(2));

        // Ours: a valid, fresh record, served without running the check.
        let v = cache.run(deadline()).unwrap();
        assert_eq!(
            (v.health, v.reason.as_str()),
            (Health::Healthy, "planted (cached, 1.00s old)")
        );
        assert_eq!(runs.load(Ordering::SeqCst), 0);

        // The same bytes owned by another user: never served; the check
        // runs, every poll (nothing can be kept in that file).
        std::os::unix::fs::chown(&path, Some(65534), Some(65534)).unwrap();
        for n in 1..=2 {
            let v = cache.run(deadline()).unwrap();
            assert_eq!(
                (v.health, v.reason.as_str()),
                (Health::Unhealthy, "the real check: down")
            );
            assert_eq!(
                v.detail.as_deref(),
                Some(
                    format!(
                        "[state file {}: refused: owned by another user: ignored, the check ran uncached]",
                        path.display()
                    )
                    .as_bytes()
                )
            );
            assert_eq!(runs.load(Ordering::SeqCst), n);
        }
        // Ignored, not repaired: nothing was written over it.
        assert_eq!(std::fs::read(&path).unwrap(), encode(&planted));
        std::fs::remove_dir_all(&d).unwrap();
    }

    /// A slot file of another user's is refused too: its owner could hold
    /// its lock, or leave it free, whatever our own checks do.
    #[test]
    fn a_slot_file_of_another_user_is_refused() {
        require_root();
        let d = dir("slot-owner");
        let slot = d.join("c.slot0");
        drop(open_private(&slot).unwrap());
        std::os::unix::fs::chown(&slot, Some(65534), Some(65534)).unwrap();
        let (check, runs) = counting(Verdict::healthy("ok"), 0);
        let v = Capped::new(check, StateDir::given(&d), "c", 2)
            .run(Deadline::after(Duration::from_secs(1)))
            .unwrap();
        assert_eq!(
            (v.health, v.reason.as_str()),
            (Health::Unknown, "checker failure: state file unusable")
        );
        assert_eq!(
            v.detail.as_deref(),
            Some(
                format!(
                    "state file {}: refused: owned by another user",
                    slot.display()
                )
                .as_bytes()
            )
        );
        assert_eq!(runs.load(Ordering::SeqCst), 0);
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn the_cap_refuses_the_n_plus_first() {
        let d = dir("cap");
        let runs = Arc::new(AtomicU32::new(0));
        let busy: Vec<_> = (0..2)
            .map(|_| {
                let (d, runs) = (d.clone(), runs.clone());
                std::thread::spawn(move || {
                    let c = Counting {
                        runs,
                        verdict: Verdict::healthy("ok"),
                        takes: Duration::from_millis(300),
                    };
                    Capped::new(c, StateDir::given(&d), "c", 2)
                        .run(Deadline::after(Duration::from_secs(2)))
                        .unwrap()
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(100));
        let (c, third) = counting(Verdict::healthy("ok"), 0);
        let v = Capped::new(c, StateDir::given(&d), "c", 2)
            .run(Deadline::after(Duration::from_secs(2)))
            .unwrap();
        assert_eq!(v.reason, "checker saturated: 2 checks already running");
        assert_eq!(third.load(Ordering::SeqCst), 0);
        for b in busy {
            assert_eq!(b.join().unwrap().reason, "ok");
        }
        let (c, _) = counting(Verdict::healthy("free again"), 0);
        assert_eq!(
            Capped::new(c, StateDir::given(&d), "c", 2)
                .run(Deadline::after(Duration::from_secs(2)))
                .unwrap()
                .reason,
            "free again"
        );
        std::fs::remove_dir_all(&d).unwrap();
    }
}
