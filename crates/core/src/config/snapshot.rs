//! The parsed config, kept between polls.
//!
//! Every poll is a new process, and parsing a config of six checks with
//! `toml` costs more than the rest of the poll's own work (110,000
//! instructions and a few fresh pages: about 80 µs here, against a C tcp
//! check's whole poll of 1.1 ms). So the first poll that parses a file
//! keeps the result, encoded with `postcard`, in the state directory; the
//! next polls read it back for about 20 µs of system calls and decoding.
//!
//! A snapshot is used only when it was made from this very file as it is
//! now, by this very binary: its header holds the file's device, inode,
//! size, owner, mode, modification and change times, and the binary's GNU
//! build ID (read from memory; without one, what `stat` says of
//! `/proc/self/exe`); any difference, and the file is parsed again. The
//! change time (ctime) cannot be set back by anyone, so an edit is always
//! seen, but it ticks coarsely: two edits of the same size within one tick
//! would look alike. A file changed less than two seconds ago is therefore
//! parsed on every poll and not kept until it has been still for longer.
//!
//! The snapshot names the programs we run, so it is trusted as the state
//! files are: opened without following a symlink, and used only when it is
//! a regular file of ours, mode 0600, starting with the header this file
//! and binary give. It is written only into a directory that passed
//! [`StateDir::prepare`], as a new file renamed into place. Whatever goes
//! wrong with it (no directory, a refused or unreadable file, a header or
//! body that does not match or decode) falls back to parsing: a snapshot
//! can make a poll faster, never change its answer.

use std::fs::{File, OpenOptions};
use std::io::{Read as _, Write as _};
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt as _;
use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::{Config, MAX_SIZE};
use crate::state::{self, StateDir};

/// What the file starts with; the number changes when the header does.
const MAGIC: &[u8; 8] = b"ihcfg\x00\x00\x02";

/// How long a file must have been still before it is kept: more than the
/// coarsest tick of a file system's timestamps.
const SETTLED: Duration = Duration::from_secs(2);

/// What identifies this binary: its build ID (no system call), else what
/// `stat` says of `/proc/self/exe` (4 µs here: the kernel resolves the
/// link).
fn binary_identity() -> Option<Vec<u8>> {
    if let Some(id) = crate::sys::build_id() {
        return Some(id.iter().copied().take(64).collect());
    }
    let exe = std::fs::metadata("/proc/self/exe").ok()?;
    let mut bytes = Vec::with_capacity(5 * 8);
    for n in [
        exe.dev(),
        exe.ino(),
        exe.size(),
        exe.mtime() as u64,
        exe.mtime_nsec() as u64,
    ] {
        bytes.extend_from_slice(&n.to_le_bytes());
    }
    Some(bytes)
}

/// Where a config's snapshot is, and the header it must start with.
pub(super) struct Snapshot {
    file: PathBuf,
    dir: StateDir,
    header: Vec<u8>,
    changed: SystemTime,
}

impl Snapshot {
    /// The snapshot of the config at `path`, opened and `fstat`ed as `st`,
    /// in `dir`; `None` when there can be none (this binary cannot be
    /// identified).
    pub(super) fn new(path: &Path, st: &libc::stat, dir: &StateDir) -> Option<Self> {
        let binary = binary_identity()?;
        let mut header = Vec::with_capacity(MAGIC.len() + 1 + binary.len() + 9 * 8);
        header.extend_from_slice(MAGIC);
        header.push(binary.len() as u8);
        header.extend_from_slice(&binary);
        let binary_end = header.len();
        for n in [
            st.st_dev,
            st.st_ino,
            st.st_size as u64,
            u64::from(st.st_uid),
            u64::from(st.st_mode),
            st.st_mtime as u64,
            st.st_mtime_nsec as u64,
            st.st_ctime as u64,
            st.st_ctime_nsec as u64,
        ] {
            header.extend_from_slice(&n.to_le_bytes());
        }
        // Named after the file and the binary: two builds serving the same
        // file (an upgrade, a test's build beside the installed one) keep
        // a snapshot each instead of replacing each other's on every poll.
        let mut named = path.as_os_str().as_bytes().to_vec();
        named.extend_from_slice(&header[MAGIC.len()..binary_end]);
        let name = format!("inetd-health-config-{}.snapshot", state::key(&named));
        let changed = UNIX_EPOCH
            + Duration::new(
                u64::try_from(st.st_ctime).unwrap_or(0),
                u32::try_from(st.st_ctime_nsec).unwrap_or(0),
            );
        Some(Snapshot {
            file: dir.file(&name),
            dir: dir.clone(),
            header,
            changed,
        })
    }

    /// The kept config, if there is one for the file as it is now.
    pub(super) fn read(&self) -> Option<Config> {
        let file = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&self.file)
            .ok()?;
        let st = crate::sys::fstat(file.as_fd()).ok()?;
        if state::refusal(&st).is_some() || st.st_size as u64 > 2 * MAX_SIZE {
            return None;
        }
        // Through `take`, which has no size hint: File's read_to_end would
        // ask the kernel for the size and position again.
        let mut bytes = Vec::with_capacity(st.st_size as usize + 1);
        file.take(st.st_size as u64 + 1)
            .read_to_end(&mut bytes)
            .ok()?;
        let body = bytes.strip_prefix(self.header.as_slice())?;
        postcard::from_bytes(body).ok()
    }

    /// Keeps `config` for the next polls, if the file has been still long
    /// enough. Written whole to a new file, then renamed over the old one:
    /// a poll reading at the same time sees one or the other, never half.
    pub(super) fn write(&self, config: &Config, now: SystemTime) {
        let settled = now
            .duration_since(self.changed)
            .is_ok_and(|age| age >= SETTLED);
        if !settled {
            return;
        }
        // Made ready (created, or checked ours and private) only here: a
        // read needs no such check, as only a private file of ours whose
        // header matches is used.
        if self.dir.prepare().is_err() {
            return;
        }
        let Ok(body) = postcard::to_stdvec(config) else {
            return;
        };
        let mut temporary = self.file.clone().into_os_string();
        temporary.push(format!(".{}", std::process::id()));
        let temporary = PathBuf::from(temporary);
        let written = create_private(&temporary).and_then(|mut file| {
            file.write_all(&self.header)?;
            file.write_all(&body)?;
            std::fs::rename(&temporary, &self.file)
        });
        if written.is_err() {
            let _ = std::fs::remove_file(&temporary);
        }
    }
}

/// A new file, mode 0600, that was not there (no symlink followed, no
/// file of someone else's reused).
fn create_private(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{load, open_trusted, parse};
    use std::os::unix::fs::PermissionsExt as _;

    struct Dir(PathBuf);
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// A config file and a private state directory, in a fresh directory.
    fn setup(name: &str, text: &str) -> (Dir, PathBuf, StateDir) {
        let dir = std::env::temp_dir().join(format!("ih-snapshot-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("config.toml");
        std::fs::write(&file, text).unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let state = StateDir::private(dir.join("state"));
        (Dir(dir), file, state)
    }

    fn snapshot(file: &Path, state: &StateDir) -> Snapshot {
        let (_, st) = open_trusted(file).unwrap();
        Snapshot::new(file, &st, state).unwrap()
    }

    fn later() -> SystemTime {
        SystemTime::now() + SETTLED + Duration::from_secs(1)
    }

    const ONE: &str = "[checks.a]\nkind = \"tcp\"\ntarget = \"127.0.0.1:1\"\n";
    const TWO: &str = "[checks.b]\nkind = \"tcp\"\ntarget = \"127.0.0.1:2\"\n";

    #[test]
    fn a_kept_config_is_read_back_whole() {
        let (_d, file, state) = setup("whole", super::super::tests::EXAMPLE);
        let parsed = load(&file).unwrap();
        let s = snapshot(&file, &state);
        assert_eq!(s.read(), None, "nothing kept yet");
        s.write(&parsed, later());
        let kept = state
            .path()
            .read_dir()
            .unwrap()
            .flatten()
            .collect::<Vec<_>>();
        assert_eq!(kept.len(), 1, "one file, no temporary left: {kept:?}");
        let meta = kept[0].metadata().unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        assert_eq!(snapshot(&file, &state).read(), Some(parsed));
    }

    /// What is kept is used: a snapshot made for this file's header with
    /// other contents is what comes back (so the parse was skipped).
    #[test]
    fn load_kept_uses_the_snapshot() {
        let (_d, file, state) = setup("used", ONE);
        let other = parse(TWO, &file).unwrap();
        snapshot(&file, &state).write(&other, later());
        assert_eq!(super::super::load_kept(&file, &state).unwrap(), other);
        assert_eq!(load(&file).unwrap(), parse(ONE, &file).unwrap());
    }

    /// An edit of the same size that puts the modification time back is
    /// still seen: the change time moved.
    #[test]
    fn an_edit_that_keeps_size_and_mtime_is_seen() {
        let (_d, file, state) = setup("edit", ONE);
        let before = std::fs::metadata(&file).unwrap();
        snapshot(&file, &state).write(&load(&file).unwrap(), later());
        // ctime ticks coarsely: make sure this change lands on a later tick.
        std::thread::sleep(Duration::from_millis(20));
        std::fs::write(&file, TWO).unwrap();
        let f = File::options().write(true).open(&file).unwrap();
        f.set_modified(before.modified().unwrap()).unwrap();
        assert_eq!(std::fs::metadata(&file).unwrap().len(), before.len());
        assert_eq!(snapshot(&file, &state).read(), None);
        assert_eq!(
            super::super::load_kept(&file, &state).unwrap(),
            parse(TWO, &file).unwrap()
        );
    }

    /// A file changed within the last two seconds is not kept: a second
    /// edit on the same tick of the clock would look the same.
    #[test]
    fn a_file_just_changed_is_not_kept() {
        let (_d, file, state) = setup("recent", ONE);
        let config = super::super::load_kept(&file, &state).unwrap();
        assert_eq!(config, parse(ONE, &file).unwrap());
        let s = snapshot(&file, &state);
        assert_eq!(s.read(), None);
        s.write(&config, SystemTime::now());
        assert_eq!(s.read(), None);
    }

    /// A snapshot that is not a private file of ours, or does not decode,
    /// is passed over, and the file is parsed.
    #[test]
    fn a_snapshot_not_ours_or_broken_is_ignored() {
        let (_d, file, state) = setup("refused", ONE);
        let other = parse(TWO, &file).unwrap();
        let s = snapshot(&file, &state);
        s.write(&other, later());
        std::fs::set_permissions(&s.file, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(s.read(), None, "mode 0644");
        assert_eq!(
            super::super::load_kept(&file, &state).unwrap(),
            parse(ONE, &file).unwrap()
        );
        std::fs::remove_file(&s.file).unwrap();
        std::os::unix::fs::symlink(&file, &s.file).unwrap();
        assert_eq!(s.read(), None, "a symlink");
        std::fs::remove_file(&s.file).unwrap();
        let mut bytes = s.header.clone();
        bytes.extend_from_slice(b"\xff\xff\xff");
        std::fs::write(&s.file, &bytes).unwrap();
        std::fs::set_permissions(&s.file, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(s.read(), None, "a body that does not decode");
    }
}
