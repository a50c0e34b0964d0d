//! Files shared by the per-connection processes of one service: the cached
//! outcome and the concurrency slots. The only place that takes `flock`
//! locks.
//!
//! A service runs as one user, often `nobody`, in a directory that may be
//! shared (`/run`, even `/tmp`), so a state file is opened with
//! `O_NOFOLLOW` (a planted symlink cannot redirect our writes), created mode
//! 0600, and checked on the opened descriptor: a regular file, owned by the
//! effective user, mode 0600. Anything else is refused, not repaired.
//!
//! Locks are `flock(2)` locks: the kernel drops them when the holder exits,
//! however it exits (SIGKILL included), so a crashed check never leaves a
//! slot taken or the cache locked.

use std::ffi::OsStr;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsFd;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::sys::trust::{Owners, Rules, Untrusted};
use crate::sys::{self, Flock};
use crate::Deadline;

/// What a state file must be ([`open_private`]): a regular file, owned by
/// the effective user, mode 0600.
pub const TRUST: Rules = Rules {
    max_size: None,
    secret: false,
    secret_from_group: false,
    owner_writes_only: false,
    owners: Owners::Us,
    mode: Some(0o600),
};

/// Why a state file was not used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StateError {
    /// Opening or locking failed.
    #[error("state file {}: {}", path.display(), sys::io_reason(source))]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The file is not one we would have created.
    #[error("state file {}: refused: {why}", path.display())]
    Refused {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        why: &'static str,
    },
    /// The state directory could not be created or is not ours alone.
    #[error("state directory {}: {why}", path.display())]
    Directory {
        /// The directory.
        path: PathBuf,
        /// What is wrong with it.
        why: String,
    },
}

/// Where a service's state files live.
///
/// A directory the operator names (`--state-dir`, systemd's
/// `RuntimeDirectory=`) is used as it is: its files are still private. A
/// directory we pick ourselves in a shared place ([`default_dir`]) is
/// created mode 0700 when missing, and refused when it is a symbolic link,
/// not a directory, owned by another user, or open to group or others:
/// whoever owns it could feed us results (the tmux rule for
/// `/tmp/tmux-UID`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StateDir {
    path: PathBuf,
    ours: bool,
}

impl StateDir {
    /// A directory the operator chose, used as it is.
    pub fn given(path: impl Into<PathBuf>) -> Self {
        StateDir {
            path: path.into(),
            ours: false,
        }
    }

    /// A directory of our own, created private and checked on every use.
    pub fn private(path: impl Into<PathBuf>) -> Self {
        StateDir {
            path: path.into(),
            ours: true,
        }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The path of the file `name` in it.
    pub fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// Makes the directory ready, before each use: a temp cleaner or an
    /// operator may have removed it since the last poll. Costs one `mkdir`
    /// and one `lstat` for a directory of our own, nothing for a given one.
    ///
    /// # Errors
    /// [`StateError::Directory`] when it cannot be created or is refused.
    pub fn prepare(&self) -> Result<(), StateError> {
        if !self.ours {
            return Ok(());
        }
        let refuse = |why: String| StateError::Directory {
            path: self.path.clone(),
            why,
        };
        match std::fs::DirBuilder::new().mode(0o700).create(&self.path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(refuse(format!("cannot create it: {}", sys::io_reason(&e)))),
        }
        let meta = std::fs::symlink_metadata(&self.path).map_err(|e| refuse(sys::io_reason(&e)))?;
        if meta.file_type().is_symlink() {
            return Err(refuse("refused: it is a symbolic link".into()));
        }
        if !meta.is_dir() {
            return Err(refuse("refused: not a directory".into()));
        }
        if meta.uid() != sys::euid() {
            return Err(refuse(format!(
                "refused: owned by uid {}, not by us",
                meta.uid()
            )));
        }
        if meta.mode() & 0o077 != 0 {
            return Err(refuse(format!(
                "refused: mode {:04o} lets others in (want 0700)",
                meta.mode() & 0o7777
            )));
        }
        Ok(())
    }
}

/// The state directory used when none is given: `/run/inetd-health` for
/// root, else `$XDG_RUNTIME_DIR/inetd-health`, else
/// `/tmp/inetd-health-UID`. The caller reads the environment (the library
/// does not) and passes the effective uid and `XDG_RUNTIME_DIR`.
pub fn default_dir(euid: u32, xdg_runtime_dir: Option<&OsStr>) -> StateDir {
    let path = match xdg_runtime_dir {
        _ if euid == 0 => PathBuf::from("/run/inetd-health"),
        // Only an absolute path, as the XDG specification requires: a
        // relative one would depend on the working directory.
        Some(dir) if Path::new(dir).is_absolute() => Path::new(dir).join("inetd-health"),
        _ => PathBuf::from(format!("/tmp/inetd-health-{euid}")),
    };
    StateDir::private(path)
}

/// Opens (creating if needed) a private state file.
///
/// # Errors
/// [`StateError::Refused`] for a symlink, a non-regular file, a file owned
/// by another user or not mode 0600; [`StateError::Io`] otherwise.
pub fn open_private(path: &Path) -> Result<File, StateError> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .map_err(|source| match source.raw_os_error() {
            Some(libc::ELOOP) => StateError::Refused {
                path: path.to_owned(),
                why: "it is a symbolic link",
            },
            // Not root, another user's file cannot even be opened: the
            // same refusal as the owner check's, found earlier.
            Some(libc::EACCES | libc::EPERM) => StateError::Refused {
                path: path.to_owned(),
                why: "permission denied (not a file of ours)",
            },
            _ => StateError::Io {
                path: path.to_owned(),
                source,
            },
        })?;
    let st = sys::fstat(file.as_fd()).map_err(|source| StateError::Io {
        path: path.to_owned(),
        source,
    })?;
    TRUST
        .check(&st, sys::euid())
        .map_err(|refusal| StateError::Refused {
            path: path.to_owned(),
            why: match refusal {
                Untrusted::NotRegular => "not a regular file",
                Untrusted::Owner { .. } => "owned by another user",
                // The one other rule of TRUST.
                _ => "not mode 0600",
            },
        })?;
    Ok(file)
}

/// A lock's kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lock {
    /// Readers.
    Shared,
    /// One writer.
    Exclusive,
}

/// Takes `lock` if it is free now.
///
/// # Errors
/// A `flock` failure other than "held by someone else".
pub fn try_lock(file: &File, lock: Lock) -> io::Result<bool> {
    let op = match lock {
        Lock::Shared => Flock::TryShared,
        Lock::Exclusive => Flock::TryExclusive,
    };
    loop {
        let Err(e) = sys::flock(file.as_fd(), op) else {
            return Ok(true);
        };
        match e.raw_os_error() {
            Some(libc::EWOULDBLOCK) => return Ok(false),
            Some(libc::EINTR) => continue,
            _ => return Err(e),
        }
    }
}

/// Takes `lock`, waiting at most until `deadline`. `flock` has no timeout,
/// so this retries, every 2 ms at first and at most every 20 ms.
///
/// # Errors
/// As [`try_lock`].
pub fn lock_before(file: &File, lock: Lock, deadline: Deadline) -> io::Result<bool> {
    let mut pause = Duration::from_millis(2);
    loop {
        if try_lock(file, lock)? {
            return Ok(true);
        }
        let left = deadline.remaining();
        if left.is_zero() {
            return Ok(false);
        }
        std::thread::sleep(pause.min(left));
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}

/// Releases the lock (closing the file does too).
pub fn unlock(file: &File) {
    let _ = sys::flock(file.as_fd(), Flock::Unlock);
}

/// A short, stable name for a service's files: FNV-1a 64 of its
/// configuration, as 16 hex digits.
pub fn key(config: &[u8]) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in config {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{hash:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("ih-state-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn created_private_and_reopened() {
        let d = dir("create");
        let p = d.join("x.state");
        drop(open_private(&p).unwrap());
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        open_private(&p).unwrap();
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn symlinks_and_loose_modes_are_refused() {
        let d = dir("refuse");
        let target = d.join("elsewhere");
        std::fs::write(&target, "x").unwrap();
        let link = d.join("link.state");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let e = open_private(&link).unwrap_err().to_string();
        assert_eq!(
            e,
            format!(
                "state file {}: refused: it is a symbolic link",
                link.display()
            )
        );
        assert_eq!(std::fs::read(&target).unwrap(), b"x");
        let loose = d.join("loose.state");
        std::fs::write(&loose, "").unwrap();
        std::fs::set_permissions(&loose, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(open_private(&loose)
            .unwrap_err()
            .to_string()
            .ends_with("refused: not mode 0600"));
        assert!(open_private(&d).is_err());
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn exclusive_excludes_until_released() {
        let d = dir("lock");
        let p = d.join("l.state");
        let a = open_private(&p).unwrap();
        let b = open_private(&p).unwrap();
        assert!(try_lock(&a, Lock::Exclusive).unwrap());
        assert!(!try_lock(&b, Lock::Shared).unwrap());
        let start = std::time::Instant::now();
        assert!(!lock_before(
            &b,
            Lock::Exclusive,
            Deadline::after(Duration::from_millis(60))
        )
        .unwrap());
        assert!(start.elapsed() >= Duration::from_millis(60));
        drop(a);
        assert!(try_lock(&b, Lock::Shared).unwrap());
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn default_dirs() {
        let dir =
            |euid, xdg: Option<&str>| default_dir(euid, xdg.map(OsStr::new)).path().to_owned();
        assert_eq!(dir(0, Some("/run/user/0")), Path::new("/run/inetd-health"));
        assert_eq!(
            dir(1000, Some("/run/user/1000")),
            Path::new("/run/user/1000/inetd-health")
        );
        assert_eq!(dir(65534, None), Path::new("/tmp/inetd-health-65534"));
        assert_eq!(
            dir(65534, Some("relative")),
            Path::new("/tmp/inetd-health-65534")
        );
    }

    #[test]
    fn a_private_dir_is_created_0700_and_refused_when_loose_or_a_link() {
        let d = dir("private");
        let ours = StateDir::private(d.join("ours"));
        ours.prepare().unwrap();
        let mode = std::fs::metadata(ours.path()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        ours.prepare().unwrap();

        std::fs::set_permissions(ours.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(
            ours.prepare().unwrap_err().to_string(),
            format!(
                "state directory {}: refused: mode 0755 lets others in (want 0700)",
                ours.path().display()
            )
        );

        let link = StateDir::private(d.join("link"));
        std::os::unix::fs::symlink(ours.path(), link.path()).unwrap();
        assert!(link
            .prepare()
            .unwrap_err()
            .to_string()
            .ends_with("refused: it is a symbolic link"));

        let file = StateDir::private(d.join("file"));
        std::fs::write(file.path(), "").unwrap();
        assert!(file
            .prepare()
            .unwrap_err()
            .to_string()
            .ends_with("refused: not a directory"));

        let unreachable = StateDir::private(d.join("missing/parent"));
        assert!(unreachable
            .prepare()
            .unwrap_err()
            .to_string()
            .ends_with("cannot create it: no such file or directory"));

        // A directory the operator gave is taken as it is.
        StateDir::given(ours.path()).prepare().unwrap();
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_private_dir_owned_by_another_user_is_refused() {
        if sys::euid() != 0 {
            // Only root can hand a directory to someone else; CI runs as root.
            eprintln!("not root: cannot make a directory owned by another user; not tested");
            return;
        }
        let d = dir("owner");
        let theirs = StateDir::private(d.join("theirs"));
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(theirs.path())
            .unwrap();
        std::os::unix::fs::chown(theirs.path(), Some(65534), Some(65534)).unwrap();
        assert!(theirs
            .prepare()
            .unwrap_err()
            .to_string()
            .ends_with("refused: owned by uid 65534, not by us"));
        std::fs::remove_dir_all(&d).unwrap();
    }

    /// A 0600 regular file that another user owns is not ours: whoever owns
    /// it could write a verdict into it (or hold its lock), so it is refused,
    /// named, and left as it is. The same file owned by us is accepted.
    #[test]
    fn a_private_file_owned_by_another_user_is_refused() {
        // Only root can hand a file to someone else; CI runs as root. A
        // test that cannot make its case fails, it never passes silently.
        assert_eq!(sys::euid(), 0, "run as root");
        let d = dir("file-owner");
        let p = d.join("theirs.state");
        drop(open_private(&p).unwrap());
        std::fs::write(&p, "their record").unwrap();
        let meta = std::fs::symlink_metadata(&p).unwrap();
        assert!(meta.is_file());
        assert_eq!((meta.mode() & 0o7777, meta.uid()), (0o600, 0));
        // Ours: accepted.
        open_private(&p).unwrap();

        std::os::unix::fs::chown(&p, Some(65534), Some(65534)).unwrap();
        let meta = std::fs::symlink_metadata(&p).unwrap();
        assert_eq!((meta.mode() & 0o7777, meta.uid()), (0o600, 65534));
        let e = open_private(&p).unwrap_err();
        assert!(matches!(e, StateError::Refused { .. }), "{e:?}");
        assert_eq!(
            e.to_string(),
            format!("state file {}: refused: owned by another user", p.display())
        );
        // Refused, not repaired: neither taken over nor truncated.
        let meta = std::fs::symlink_metadata(&p).unwrap();
        assert_eq!((meta.mode() & 0o7777, meta.uid()), (0o600, 65534));
        assert_eq!(std::fs::read(&p).unwrap(), b"their record");
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn keys_are_stable_and_distinct() {
        assert_eq!(key(b""), "cbf29ce484222325");
        assert_ne!(key(b"mariadb --socket a"), key(b"mariadb --socket b"));
        assert_eq!(key(b"x").len(), 16);
    }
}
