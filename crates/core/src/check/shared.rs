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
use crate::state::{lock_before, open_private, try_lock, unlock, Lock, StateError};
use crate::Deadline;

/// Largest state file read: a verdict and at most a few KiB of detail.
const MAX_RECORD: u64 = 1 << 20;
const MAGIC: &str = "inetd-health-state 1";

/// Serves a recent outcome from a state file instead of running the check.
#[derive(Debug)]
pub struct Cached<C> {
    inner: C,
    path: PathBuf,
    ttl: Duration,
    max_stale: Duration,
    clock: fn() -> SystemTime,
}

impl<C> Cached<C> {
    /// Caches `inner`'s outcome in `path` for `ttl`; never serves one older
    /// than `max_stale` (which is at least `ttl`).
    pub fn new(inner: C, path: impl Into<PathBuf>, ttl: Duration, max_stale: Duration) -> Self {
        Cached {
            inner,
            path: path.into(),
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
        v.reason = format!(
            "{} (cached, {} old)",
            v.reason,
            human_duration(self.age(record))
        );
        v
    }
}

impl<C: Check> Check for Cached<C> {
    fn run(&self, deadline: Deadline) -> Result<Verdict, CheckError> {
        let state_error = |e: StateError| Ok(Verdict::unhealthy(e.to_string()));
        let io_error = |source| {
            state_error(StateError::Io {
                path: self.path.clone(),
                source,
            })
        };
        let file = match open_private(&self.path) {
            Ok(f) => f,
            Err(e) => return state_error(e),
        };
        let mut last: Option<Record> = None;
        // Three rounds at most: a refresher that fails to write leaves the
        // record stale, and the next round lets one waiter refresh.
        for _ in 0..3 {
            match try_lock(&file, Lock::Shared) {
                Ok(true) => {
                    last = read(&file).or(last);
                    unlock(&file);
                    if let Some(r) = last.as_ref().filter(|r| self.age(r) < self.ttl) {
                        return Ok(self.served(r));
                    }
                }
                Ok(false) => {}
                Err(e) => return io_error(e),
            }
            match try_lock(&file, Lock::Exclusive) {
                Ok(true) => {
                    // Someone may have refreshed between our two locks.
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
            // A refresh is under way: wait for it, within our deadline.
            match lock_before(&file, Lock::Shared, deadline) {
                Ok(true) => {
                    last = read(&file).or(last);
                    unlock(&file);
                    if let Some(r) = last.as_ref().filter(|r| self.age(r) < self.ttl) {
                        return Ok(self.served(r));
                    }
                }
                Ok(false) => break,
                Err(e) => return io_error(e),
            }
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
    slots: Vec<PathBuf>,
}

impl<C> Capped<C> {
    /// Runs `inner` only while holding one of the slot files `slots`.
    pub fn new(inner: C, slots: Vec<PathBuf>) -> Self {
        Capped { inner, slots }
    }
}

impl<C: Check> Check for Capped<C> {
    fn run(&self, deadline: Deadline) -> Result<Verdict, CheckError> {
        for path in &self.slots {
            let slot = match open_private(path) {
                Ok(f) => f,
                Err(e) => return Ok(Verdict::unhealthy(e.to_string())),
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
                    return Ok(Verdict::unhealthy(e.to_string()));
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

#[derive(Clone, Debug, PartialEq, Eq)]
struct Record {
    at: SystemTime,
    verdict: Verdict,
}

fn encode(record: &Record) -> Vec<u8> {
    let at = record.at.duration_since(UNIX_EPOCH).unwrap_or_default();
    let reason = record.verdict.reason.replace(['\n', '\r'], " ");
    let mut out = format!(
        "{MAGIC}\n{}.{:09}\n{}\n{reason}\n",
        at.as_secs(),
        at.subsec_nanos(),
        record.verdict.health
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
    let mut lines = bytes.splitn(5, |&b| b == b'\n');
    let mut line = || std::str::from_utf8(lines.next()?).ok();
    if line()? != MAGIC {
        return None;
    }
    let (secs, nanos) = line()?.split_once('.')?;
    let at = UNIX_EPOCH + Duration::new(secs.parse().ok()?, nanos.parse().ok()?);
    let health = match line()? {
        "healthy" => Health::Healthy,
        "warning" => Health::Warning,
        "unhealthy" => Health::Unhealthy,
        _ => return None,
    };
    let reason = line()?.to_owned();
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
            health,
            reason,
            detail,
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
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Arc;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("ih-shared-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
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
            verdict: Verdict::warning("exit status 1\nforged").with_detail(b"a\nb\x00c".to_vec()),
        };
        let bytes = encode(&r);
        let back = decode(&bytes).unwrap();
        assert_eq!(back.at, r.at);
        assert_eq!(back.verdict.reason, "exit status 1 forged");
        assert_eq!(back.verdict.detail, r.verdict.detail);
        for cut in 0..bytes.len() {
            assert!(decode(&bytes[..cut]).is_none(), "cut {cut}");
        }
        let plain = Record {
            at: r.at,
            verdict: Verdict::unhealthy("down"),
        };
        assert_eq!(decode(&encode(&plain)), Some(plain));
    }

    #[test]
    fn within_the_ttl_the_check_runs_once_and_failures_stay_failures() {
        let d = dir("ttl");
        let (check, runs) = counting(Verdict::unhealthy("exit status 2"), 0);
        let cached = Cached::new(
            check,
            d.join("s.state"),
            Duration::from_secs(60),
            Duration::from_secs(60),
        );
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
        let cached = Cached::new(
            check,
            d.join("s.state"),
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
        let path = d.join("s.state");
        let runs = Arc::new(AtomicU32::new(0));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (path, runs) = (path.clone(), runs.clone());
                std::thread::spawn(move || {
                    let check = Counting {
                        runs,
                        verdict: Verdict::healthy("ok"),
                        takes: Duration::from_millis(200),
                    };
                    // Each thread opens the file itself, as separate processes do.
                    Cached::new(
                        check,
                        path,
                        Duration::from_secs(10),
                        Duration::from_secs(10),
                    )
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

    #[test]
    fn a_waiter_past_its_deadline_never_gets_a_result_older_than_max_stale() {
        let d = dir("deadline");
        let path = d.join("s.state");
        let refresher = {
            let path = path.clone();
            std::thread::spawn(move || {
                let (check, _) = counting(Verdict::healthy("slow"), 500);
                Cached::new(
                    check,
                    path,
                    Duration::from_secs(10),
                    Duration::from_secs(10),
                )
                .run(Deadline::after(Duration::from_secs(5)))
                .unwrap()
            })
        };
        std::thread::sleep(Duration::from_millis(50));
        let (check, runs) = counting(Verdict::healthy("never"), 0);
        let start = std::time::Instant::now();
        let v = Cached::new(
            check,
            &path,
            Duration::from_secs(10),
            Duration::from_secs(10),
        )
        .run(Deadline::after(Duration::from_millis(150)))
        .unwrap();
        assert_eq!(v.reason, "no fresh result: another check is still running");
        assert!(start.elapsed() < Duration::from_millis(400));
        assert_eq!(runs.load(Ordering::SeqCst), 0);
        assert_eq!(refresher.join().unwrap().reason, "slow");
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn the_cap_refuses_the_n_plus_first() {
        let d = dir("cap");
        let slots: Vec<PathBuf> = (0..2).map(|i| d.join(format!("slot{i}"))).collect();
        let runs = Arc::new(AtomicU32::new(0));
        let busy: Vec<_> = (0..2)
            .map(|_| {
                let (slots, runs) = (slots.clone(), runs.clone());
                std::thread::spawn(move || {
                    let c = Counting {
                        runs,
                        verdict: Verdict::healthy("ok"),
                        takes: Duration::from_millis(300),
                    };
                    Capped::new(c, slots)
                        .run(Deadline::after(Duration::from_secs(2)))
                        .unwrap()
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(100));
        let (c, third) = counting(Verdict::healthy("ok"), 0);
        let v = Capped::new(c, slots.clone())
            .run(Deadline::after(Duration::from_secs(2)))
            .unwrap();
        assert_eq!(v.reason, "checker saturated: 2 checks already running");
        assert_eq!(third.load(Ordering::SeqCst), 0);
        for b in busy {
            assert_eq!(b.join().unwrap().reason, "ok");
        }
        let (c, _) = counting(Verdict::healthy("free again"), 0);
        assert_eq!(
            Capped::new(c, slots)
                .run(Deadline::after(Duration::from_secs(2)))
                .unwrap()
                .reason,
            "free again"
        );
        std::fs::remove_dir_all(&d).unwrap();
    }
}
