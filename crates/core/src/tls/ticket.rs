//! Session tickets sealed with a key kept in the state directory.
//!
//! Under xinetd every poll is a new process, so rustls' own ticketer (a key
//! per process) never resumes a session: each poll pays a full handshake.
//! [`KeptTickets`] keeps its AEAD keys in a private file of the service's
//! state directory instead, so the next process, and the session HAProxy
//! cached, resume.
//!
//! # The file
//! `tls-ticket-keys`, mode 0600, written whole (temp file + rename):
//!
//! ```text
//! "IHTK" 0x01 | count (1 or 2) | count x (made: u64 BE unix seconds | key: 32 bytes)
//! ```
//!
//! The current key comes first, the previous one (if any) second. Anything
//! else (another length, a count, a current key made more than a minute in
//! the future) is not a file we wrote, and is replaced by fresh keys.
//!
//! # Tickets
//! `id (8) | nonce (12) | AES-256-GCM ciphertext + tag`, the id (a hash of the
//! key) picking the key and bound in as associated data.

use std::fmt;
use std::fs::{OpenOptions, Permissions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};

use crate::state::{self, Lock, StateDir, StateError};
use crate::Deadline;

/// How long a key issues tickets before the next one replaces it.
pub const ROTATE: Duration = Duration::from_secs(LIFETIME as u64);

const LIFETIME: u32 = 12 * 60 * 60;
const FILE: &str = "tls-ticket-keys";
const LOCK_FILE: &str = "tls-ticket-keys.lock";
const TEMP: &str = "tls-ticket-keys.tmp";
/// A poll never waits longer than this for another process's rotation.
const LOCK_WAIT: Duration = Duration::from_millis(200);
const SKEW: u64 = 60;
const MAGIC: &[u8] = b"IHTK\x01";
const RECORD: usize = 8 + 32;
const FILE_MAX: usize = MAGIC.len() + 1 + 2 * RECORD;
const ID_LEN: usize = 8;
const TAG_LEN: usize = 16;

/// A key as the file holds it.
#[derive(Clone, Copy)]
struct Secret {
    made: u64,
    bytes: [u8; 32],
}

struct Keys {
    current: Secret,
    previous: Option<Secret>,
}

/// A key ready to seal and open, with what tickets call it.
struct Sealer {
    id: [u8; ID_LEN],
    made: u64,
    key: LessSafeKey,
}

impl fmt::Debug for Sealer {
    // The id and age only: a Debug line may end up in a log.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sealer")
            .field("id", &self.id)
            .field("made", &self.made)
            .finish_non_exhaustive()
    }
}

/// Ticket keys kept in `dir` (file name "tls-ticket-keys").
#[derive(Debug)]
pub struct KeptTickets {
    current: Sealer,
    previous: Option<Sealer>,
}

impl KeptTickets {
    /// Reads the keys (creating or rotating them as needed) at `now`.
    ///
    /// A valid file whose current key is younger than [`ROTATE`] is read
    /// without a lock (it is only ever replaced by rename). Otherwise an
    /// exclusive lock on `tls-ticket-keys.lock` is taken for at most 200 ms,
    /// the file read again (another process may just have rotated), and new
    /// keys written. When the lock cannot be had in time, this process
    /// seals with a fresh key of its own, kept in memory only, and still
    /// opens tickets with the file's current key: its own tickets will not
    /// resume elsewhere, those of the others do.
    ///
    /// # Errors
    /// Whatever [`StateDir::prepare`] and [`state::open_private`] refuse (a
    /// key file that is not ours or not 0600 among them), a lock or read
    /// failure, a failure to write new keys, and a failing random source.
    pub fn open(dir: &StateDir, now: SystemTime) -> Result<KeptTickets, StateError> {
        dir.prepare()?;
        let now = unix(now);
        let path = dir.file(FILE);
        if let Some(keys) = read(&path, now)?.filter(|k| fresh(k.current.made, now)) {
            return build(&keys, now, &path);
        }
        let lock_path = dir.file(LOCK_FILE);
        let lock = state::open_private(&lock_path)?;
        let locked = state::lock_before(&lock, Lock::Exclusive, Deadline::after(LOCK_WAIT))
            .map_err(|source| StateError::Io {
                path: lock_path,
                source,
            })?;
        let found = read(&path, now)?;
        if let Some(keys) = found.as_ref().filter(|k| fresh(k.current.made, now)) {
            return build(keys, now, &path);
        }
        let next = rotate(found, now, &path)?;
        if locked {
            write(dir, &next).map_err(|source| StateError::Io {
                path: path.clone(),
                source,
            })?;
        }
        // Dropping `lock` closes it, which releases the flock.
        build(&next, now, &path)
    }
}

impl rustls::server::ProducesTickets for KeptTickets {
    fn enabled(&self) -> bool {
        true
    }

    fn lifetime(&self) -> u32 {
        LIFETIME
    }

    fn encrypt(&self, plain: &[u8]) -> Option<Vec<u8>> {
        let k = &self.current;
        // rustls passes no time in, and a long-lived listener keeps one
        // KeptTickets: past ROTATE it must open again, and until it does it
        // issues no tickets rather than stretch one key's life.
        if !fresh(k.made, unix(SystemTime::now())) {
            return None;
        }
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new().fill(&mut nonce).ok()?;
        let mut out = Vec::with_capacity(ID_LEN + NONCE_LEN + plain.len() + TAG_LEN);
        out.extend_from_slice(&k.id);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(plain);
        let tag = k
            .key
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(k.id),
                out.get_mut(ID_LEN + NONCE_LEN..)?,
            )
            .ok()?;
        out.extend_from_slice(tag.as_ref());
        Some(out)
    }

    fn decrypt(&self, cipher: &[u8]) -> Option<Vec<u8>> {
        let id = cipher.get(..ID_LEN)?;
        let nonce =
            Nonce::try_assume_unique_for_key(cipher.get(ID_LEN..ID_LEN + NONCE_LEN)?).ok()?;
        let k = [Some(&self.current), self.previous.as_ref()]
            .into_iter()
            .flatten()
            .find(|k| k.id == id)?;
        if !still_opens(k.made, unix(SystemTime::now())) {
            return None;
        }
        let mut buf = cipher.get(ID_LEN + NONCE_LEN..)?.to_vec();
        let len = k
            .key
            .open_in_place(nonce, Aad::from(k.id), &mut buf)
            .ok()?
            .len();
        buf.truncate(len);
        Some(buf)
    }
}

fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// A key made at `made` issues tickets for ROTATE.
fn fresh(made: u64, now: u64) -> bool {
    now.saturating_sub(made) < ROTATE.as_secs()
}

/// A previous key opens tickets while the current one issues them: the
/// last ticket it sealed lives ROTATE after it stopped.
fn still_opens(made: u64, now: u64) -> bool {
    now.saturating_sub(made) < 2 * ROTATE.as_secs()
}

fn failed(path: &Path, why: &'static str) -> StateError {
    StateError::Io {
        path: path.to_owned(),
        source: io::Error::other(why),
    }
}

/// A new current key; the old current becomes previous while it still opens.
fn rotate(found: Option<Keys>, now: u64, path: &Path) -> Result<Keys, StateError> {
    let mut bytes = [0u8; 32];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| failed(path, "the system random source failed"))?;
    Ok(Keys {
        current: Secret { made: now, bytes },
        previous: found
            .map(|k| k.current)
            .filter(|k| still_opens(k.made, now)),
    })
}

fn build(keys: &Keys, now: u64, path: &Path) -> Result<KeptTickets, StateError> {
    let sealer = |s: &Secret| -> Result<Sealer, StateError> {
        let key = UnboundKey::new(&AES_256_GCM, &s.bytes)
            .map_err(|_| failed(path, "the AEAD refused the key"))?;
        let digest =
            crate::hash::sha256(&[&b"inetd-health ticket key id\0"[..], &s.bytes].concat());
        let mut id = [0u8; ID_LEN];
        id.copy_from_slice(&digest[..ID_LEN]);
        Ok(Sealer {
            id,
            made: s.made,
            key: LessSafeKey::new(key),
        })
    };
    let previous = keys.previous.filter(|p| still_opens(p.made, now));
    Ok(KeptTickets {
        current: sealer(&keys.current)?,
        previous: previous.as_ref().map(sealer).transpose()?,
    })
}

/// The keys in the file, `None` when it holds none we would have written.
/// `open_private` creates a missing file empty, which reads as none.
fn read(path: &Path, now: u64) -> Result<Option<Keys>, StateError> {
    let file = state::open_private(path)?;
    let mut bytes = Vec::with_capacity(FILE_MAX + 1);
    // One byte past the longest file, so a longer one is seen as too long.
    file.take(FILE_MAX as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|source| StateError::Io {
            path: path.to_owned(),
            source,
        })?;
    Ok(parse(&bytes, now))
}

fn parse(bytes: &[u8], now: u64) -> Option<Keys> {
    let (&count, rest) = bytes.strip_prefix(MAGIC)?.split_first()?;
    if !(1..=2).contains(&count) || rest.len() != usize::from(count) * RECORD {
        return None;
    }
    let record = |r: &[u8]| -> Option<Secret> {
        Some(Secret {
            made: u64::from_be_bytes(r.get(..8)?.try_into().ok()?),
            bytes: r.get(8..RECORD)?.try_into().ok()?,
        })
    };
    let current = record(rest)?;
    let previous = match count {
        2 => Some(record(rest.get(RECORD..)?)?),
        _ => None,
    };
    if current.made > now.saturating_add(SKEW) || previous.is_some_and(|p| p.made > current.made) {
        return None;
    }
    Some(Keys { current, previous })
}

fn encode(keys: &Keys) -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    out.push(if keys.previous.is_some() { 2 } else { 1 });
    for s in std::iter::once(&keys.current).chain(keys.previous.as_ref()) {
        out.extend_from_slice(&s.made.to_be_bytes());
        out.extend_from_slice(&s.bytes);
    }
    out
}

/// Writes the keys whole, so a reader without the lock sees the old file
/// or the new one. No fsync: a file torn by a crash does not parse and is
/// replaced, which costs one round of full handshakes.
fn write(dir: &StateDir, keys: &Keys) -> io::Result<()> {
    let tmp = dir.file(TEMP);
    // Only the lock holder writes, so a temp file here is one a killed
    // writer left: remove it (a planted symlink is removed, not followed).
    match std::fs::remove_file(&tmp) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&tmp)?;
        // The umask may have taken the owner's bits too; open_private
        // would then refuse the file on every later poll.
        file.set_permissions(Permissions::from_mode(0o600))?;
        file.write_all(&encode(keys))?;
        std::fs::rename(&tmp, dir.file(FILE))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::server::ProducesTickets;
    use std::os::unix::fs::MetadataExt;

    const PLAIN: &[u8] = b"a session's secrets";

    fn dir(name: &str) -> StateDir {
        let d = std::env::temp_dir().join(format!("ih-ticket-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        StateDir::private(d)
    }

    fn after(secs: u64) -> SystemTime {
        SystemTime::now() + Duration::from_secs(secs)
    }

    #[test]
    fn round_trip_in_one_process_and_the_next() {
        let d = dir("round");
        let t = KeptTickets::open(&d, SystemTime::now()).unwrap();
        assert!(t.enabled());
        assert_eq!(t.lifetime(), 43_200);
        let ticket = t.encrypt(PLAIN).unwrap();
        assert_eq!(ticket.len(), ID_LEN + NONCE_LEN + PLAIN.len() + TAG_LEN);
        assert_eq!(t.decrypt(&ticket).unwrap(), PLAIN);
        assert_ne!(t.encrypt(PLAIN).unwrap(), ticket, "a fresh nonce each time");
        // The next process (the next poll) resumes it.
        let next = KeptTickets::open(&d, after(1)).unwrap();
        assert_eq!(next.decrypt(&ticket).unwrap(), PLAIN);
        std::fs::remove_dir_all(d.path()).unwrap();
    }

    #[test]
    fn many_processes_at_once_agree_on_one_key() {
        let d = dir("race");
        let now = SystemTime::now();
        let tickets: Vec<Vec<u8>> = std::thread::scope(|s| {
            let all: Vec<_> = (0..8)
                .map(|_| s.spawn(|| KeptTickets::open(&d, now).unwrap().encrypt(PLAIN)))
                .collect();
            all.into_iter()
                .map(|h| h.join().unwrap().unwrap())
                .collect()
        });
        let last = KeptTickets::open(&d, now).unwrap();
        assert!(last.previous.is_none());
        for t in &tickets {
            assert_eq!(last.decrypt(t).unwrap(), PLAIN);
        }
        std::fs::remove_dir_all(d.path()).unwrap();
    }

    #[test]
    fn rotation_keeps_the_previous_key_for_one_more_period() {
        let d = dir("rotate");
        let r = ROTATE.as_secs();
        let first = KeptTickets::open(&d, SystemTime::now()).unwrap();
        let old = first.encrypt(PLAIN).unwrap();

        let second = KeptTickets::open(&d, after(r + 1)).unwrap();
        assert_eq!(second.decrypt(&old).unwrap(), PLAIN, "via the previous key");
        let newer = second.encrypt(PLAIN).unwrap();
        assert_ne!(newer[..ID_LEN], old[..ID_LEN], "sealed with a new key");

        let third = KeptTickets::open(&d, after(2 * r + 1)).unwrap();
        assert_eq!(third.decrypt(&old), None);
        assert_eq!(third.decrypt(&newer).unwrap(), PLAIN);
        std::fs::remove_dir_all(d.path()).unwrap();
    }

    #[test]
    fn a_file_we_did_not_write_is_replaced() {
        let d = dir("corrupt");
        let path = d.file(FILE);
        let now = SystemTime::now();
        let ticket = KeptTickets::open(&d, now).unwrap().encrypt(PLAIN).unwrap();
        let good = std::fs::read(&path).unwrap();
        let future = encode(&Keys {
            current: Secret {
                made: unix(now) + 3600,
                bytes: [7; 32],
            },
            previous: None,
        });
        let spoiled = [
            b"garbage".to_vec(),
            Vec::new(),
            good[..good.len() - 1].to_vec(),
            [&good[..], &[0]].concat(),
            [&b"IHTK\x02"[..], &good[MAGIC.len()..]].concat(),
            future,
        ];
        for bad in spoiled {
            // std::fs::write keeps the file and its 0600 mode.
            std::fs::write(&path, &bad).unwrap();
            let t = KeptTickets::open(&d, now).unwrap();
            assert_eq!(t.decrypt(&ticket), None, "{bad:?}");
            let fresh = parse(&std::fs::read(&path).unwrap(), unix(now)).unwrap();
            assert!(fresh.current.made <= unix(now) && fresh.previous.is_none());
        }
        std::fs::remove_dir_all(d.path()).unwrap();
    }

    #[test]
    fn a_tampered_ticket_opens_to_nothing() {
        let d = dir("tamper");
        let t = KeptTickets::open(&d, SystemTime::now()).unwrap();
        let ticket = t.encrypt(PLAIN).unwrap();
        for i in 0..ticket.len() {
            let mut bad = ticket.clone();
            bad[i] ^= 0x01;
            assert_eq!(t.decrypt(&bad), None, "byte {i}");
        }
        for len in 0..ticket.len() {
            assert_eq!(t.decrypt(&ticket[..len]), None, "cut to {len}");
        }
        std::fs::remove_dir_all(d.path()).unwrap();
    }

    #[test]
    fn the_key_file_is_0600_and_a_group_readable_one_is_refused() {
        let d = dir("mode");
        KeptTickets::open(&d, SystemTime::now()).unwrap();
        let path = d.file(FILE);
        let meta = std::fs::symlink_metadata(&path).unwrap();
        assert!(meta.is_file());
        assert_eq!(meta.mode() & 0o7777, 0o600);
        assert!(!d.file(TEMP).exists(), "no temp file left behind");

        std::fs::set_permissions(&path, Permissions::from_mode(0o640)).unwrap();
        let before = std::fs::read(&path).unwrap();
        let e = KeptTickets::open(&d, SystemTime::now()).unwrap_err();
        assert!(matches!(e, StateError::Refused { .. }), "{e:?}");
        assert!(e.to_string().ends_with("refused: not mode 0600"), "{e}");
        // Refused, not repaired.
        assert_eq!(std::fs::read(&path).unwrap(), before);
        std::fs::remove_dir_all(d.path()).unwrap();
    }
}
