//! The maintenance switch: a file an operator creates to take a node out.

use std::path::PathBuf;

use super::{Check, CheckError, Verdict};
use crate::Deadline;

/// Wraps a check: while `path` exists, the answer is unhealthy ("disabled by
/// operator") and the check does not run, so nothing touches the server.
///
/// Presence is what counts (an empty file, a dangling symlink). Keep the
/// file in a directory only the operator can write: whoever can create it
/// can take the node out of the load balancer.
///
/// When presence cannot be decided (the service's user may not search the
/// directory, an I/O error: anything but "no such file"), the answer is
/// unknown, a 503 "cannot check disable file PATH: REASON": the operator
/// who created the file believes the node out, so it must not stay in.
#[derive(Clone, Debug)]
pub struct Maintenance<C> {
    path: PathBuf,
    inner: C,
}

impl<C> Maintenance<C> {
    /// Wraps `inner`, disabled while `path` exists.
    pub fn new(path: impl Into<PathBuf>, inner: C) -> Self {
        Maintenance {
            path: path.into(),
            inner,
        }
    }
}

impl<C: Check> Check for Maintenance<C> {
    fn run(&self, deadline: Deadline) -> Result<Verdict, CheckError> {
        match std::fs::symlink_metadata(&self.path) {
            Ok(_) => Ok(Verdict {
                disabled: true,
                ..Verdict::unhealthy(format!(
                    "disabled by operator ({} exists)",
                    self.path.display()
                ))
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => self.inner.run(deadline),
            // Which file, and the system's reason, go to the log's detail.
            Err(e) => Ok(
                Verdict::unknown("cannot check the disable file").with_detail(
                    format!(
                        "cannot check disable file {}: {}",
                        self.path.display(),
                        crate::sys::io_reason(&e)
                    )
                    .into_bytes(),
                ),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::Health;
    use std::cell::Cell;
    use std::time::Duration;

    struct Counting<'a>(&'a Cell<u32>);
    impl Check for Counting<'_> {
        fn run(&self, _: Deadline) -> Result<Verdict, CheckError> {
            self.0.set(self.0.get() + 1);
            Ok(Verdict::healthy("ok"))
        }
    }

    #[test]
    fn the_file_disables_without_running_the_check() {
        let path = std::env::temp_dir().join(format!("ih-disable-{}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let runs = Cell::new(0);
        let check = Maintenance::new(&path, Counting(&runs));
        let deadline = Deadline::after(Duration::from_secs(1));
        assert_eq!(check.run(deadline).unwrap().health, Health::Healthy);
        std::fs::write(&path, "").unwrap();
        let v = check.run(deadline).unwrap();
        assert_eq!(v.health, Health::Unhealthy);
        assert_eq!(
            v.reason,
            format!("disabled by operator ({} exists)", path.display())
        );
        assert!(v.disabled);
        assert_eq!(runs.get(), 1);
        std::fs::remove_file(&path).unwrap();
        assert_eq!(check.run(deadline).unwrap().health, Health::Healthy);
    }

    #[test]
    fn presence_that_cannot_be_decided_fails_closed() {
        // A path through a regular file: ENOTDIR, not "absent".
        let file = std::env::temp_dir().join(format!("ih-disable-file-{}", std::process::id()));
        std::fs::write(&file, "").unwrap();
        let path = file.join("disable");
        let runs = Cell::new(0);
        let v = Maintenance::new(&path, Counting(&runs))
            .run(Deadline::after(Duration::from_secs(1)))
            .unwrap();
        assert_eq!(
            (v.health, v.reason.as_str()),
            (Health::Unknown, "cannot check the disable file")
        );
        // Which file, and why, only in the detail (the log's).
        assert_eq!(
            v.detail.as_deref(),
            Some(
                format!(
                    "cannot check disable file {}: not a directory",
                    path.display()
                )
                .as_bytes()
            )
        );
        assert_eq!(runs.get(), 0);
        std::fs::remove_file(&file).unwrap();
    }
}
