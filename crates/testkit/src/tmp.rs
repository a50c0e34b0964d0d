//! Temporary directories, removed (with their contents) on drop.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A fresh directory under the system temp dir, unique to this process and call.
#[derive(Debug)]
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    /// Creates `<tmp>/inetd-health-<label>-<pid>-<n>-<nanos>`.
    ///
    /// The path is kept short: HAProxy's stats socket lives inside it and
    /// Unix socket paths are limited to about 100 bytes.
    pub fn new(label: &str) -> TempDir {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let path = std::env::temp_dir().join(format!(
            "inetd-health-{label}-{}-{n}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(&path)
            .unwrap_or_else(|e| panic!("creating temp dir {}: {e}", path.display()));
        TempDir { path }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A path inside the directory.
    pub fn join(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// Writes an executable `#!/bin/sh` script inside the directory and returns its path.
    pub fn script(&self, name: &str, body: &str) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let path = self.join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n"))
            .unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
            .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
        path
    }

    /// A Nagios-style check, the script `check`, whose verdict the test sets
    /// by writing to the file `state`: `ok` (exit 0, `OK - fine`), `warn`
    /// (exit 1, `WARN - slow`), anything else (exit 2, `CRIT - broken`).
    /// Returns `(state, check)`, the state `ok`.
    pub fn switchable_check(&self, state: &str) -> (PathBuf, PathBuf) {
        let state = self.join(state);
        std::fs::write(&state, "ok").unwrap_or_else(|e| panic!("writing {}: {e}", state.display()));
        let check = self.script(
            "check",
            &format!(
                "case $(cat {}) in ok) echo 'OK - fine'; exit 0;; warn) echo 'WARN - slow'; exit 1;; *) echo 'CRIT - broken'; exit 2;; esac",
                state.display()
            ),
        );
        (state, check)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}
