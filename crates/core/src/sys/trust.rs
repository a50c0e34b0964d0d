//! When a file may be trusted: the one check for the config file, option
//! files and state files, made on what was opened ([`Stat`], from
//! [`fstat`](super::fstat)) so that nothing can be swapped in between.
//!
//! Each kind of file has its [`Rules`] (`config::TRUST`,
//! `option_file::TRUST`, `state::TRUST`), checked against the user that
//! reads the file: the process's effective user at poll time, or, for
//! `inetd-health gen`, the user a launcher will run the service as. What a
//! refusal says to the operator (why it matters, what to do) is the
//! caller's; [`Untrusted`] is the fact.

use std::fmt;
use std::io::Read as _;
use std::os::fd::AsFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use super::Stat;

/// Who may own a file we trust.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Owners {
    /// The user that reads it, alone: files we create ourselves.
    Us,
    /// The user that reads it, or root: files an operator writes.
    UsOrRoot,
}

impl Owners {
    /// Whether a file owned by `owner` may be trusted by the user `us`.
    pub fn admit(self, owner: u32, us: u32) -> bool {
        owner == us || (self == Owners::UsOrRoot && owner == 0)
    }
}

/// What a file must be to be trusted. A file that is not a regular file,
/// or is too large, is refused for that alone; then come who may read and
/// write it, the owner, and the exact mode, in this order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rules {
    /// The largest size accepted, in bytes (a file read whole).
    pub max_size: Option<u64>,
    /// Refused when others may read it (`o+r`): it holds a secret.
    pub secret: bool,
    /// With `secret`, refused when group or others have any permission
    /// on it (`go+rwx`), as libpq refuses a password file.
    pub secret_from_group: bool,
    /// Refused when group or others may write it (`go+w`): they could
    /// choose what we do.
    pub owner_writes_only: bool,
    /// Who may own it.
    pub owners: Owners,
    /// The permission bits (of `0o777`) it must have, exactly.
    pub mode: Option<u32>,
}

/// Why a file is not trusted: the first of [`Rules::check`], or each of
/// [`Rules::refusals`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Untrusted {
    /// It is not a regular file (a directory, a device, a FIFO…).
    NotRegular,
    /// It is larger than the rules accept.
    TooLarge {
        /// The largest size accepted, in bytes.
        max: u64,
    },
    /// Others may read it, and it holds a secret.
    ReadableByOthers {
        /// Its permission bits (`mode & 0o7777`).
        mode: u32,
    },
    /// Group or others may write it.
    WritableByOthers {
        /// Its permission bits (`mode & 0o7777`).
        mode: u32,
    },
    /// Someone the rules do not admit owns it.
    Owner {
        /// The owner's uid.
        uid: u32,
        /// Who the rules admit.
        owners: Owners,
    },
    /// Its permission bits are not the ones required.
    Mode {
        /// Its permission bits (`mode & 0o777`).
        mode: u32,
        /// The bits required.
        want: u32,
    },
}

impl Rules {
    fn readers(&self) -> u32 {
        // libpq's rule for its password file: no bit at all for group or
        // others (S_IRWXG | S_IRWXO).
        if self.secret_from_group {
            0o077
        } else {
            0o004
        }
    }

    /// Whether the user `us` may trust `file`: the first reason not to, if
    /// any.
    ///
    /// # Errors
    /// The first [`Untrusted`], in the order [`Rules`] gives.
    pub fn check(&self, file: &Stat, us: u32) -> Result<(), Untrusted> {
        match self.refusals(file, us).next() {
            Some(refusal) => Err(refusal),
            None => Ok(()),
        }
    }

    /// Every reason the user `us` may not trust `file`, in the order
    /// [`Rules`] gives: for an operator who wants to fix them all at once.
    /// A file that is not a regular file, or is too large, has that one.
    pub fn refusals(&self, file: &Stat, us: u32) -> impl Iterator<Item = Untrusted> {
        let alone = if !file.is_regular() {
            Some(Untrusted::NotRegular)
        } else {
            self.max_size
                .filter(|&max| file.size > max)
                .map(|max| Untrusted::TooLarge { max })
        };
        let mode = file.permissions();
        let rest = if alone.is_some() {
            [None; 4]
        } else {
            [
                (self.secret && mode & self.readers() != 0)
                    .then_some(Untrusted::ReadableByOthers { mode }),
                (self.owner_writes_only && mode & 0o022 != 0)
                    .then_some(Untrusted::WritableByOthers { mode }),
                (!self.owners.admit(file.uid, us)).then_some(Untrusted::Owner {
                    uid: file.uid,
                    owners: self.owners,
                }),
                self.mode
                    .filter(|&want| mode & 0o777 != want)
                    .map(|want| Untrusted::Mode {
                        mode: mode & 0o777,
                        want,
                    }),
            ]
        };
        alone.into_iter().chain(rest.into_iter().flatten())
    }
}

/// Why [`read`] returned no text.
#[derive(Debug)]
pub enum Unread {
    /// Opening, `fstat` or reading failed.
    Io(std::io::Error),
    /// The opened file breaks `rules`.
    Untrusted(Untrusted),
}

/// Opens `path`, checks what was opened against `rules` for the effective
/// user, and reads it whole (at most `rules.max_size`, else 64 KiB): the
/// one way a file holding a secret is read. The open does not block: a
/// FIFO at the path would block it past any deadline before its type
/// could be refused; a regular file ignores the flag.
///
/// # Errors
/// [`Unread`].
pub fn read(path: &Path, rules: &Rules) -> Result<String, Unread> {
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .map_err(Unread::Io)?;
    let st = super::fstat(file.as_fd()).map_err(Unread::Io)?;
    rules.check(&st, super::euid()).map_err(Unread::Untrusted)?;
    let mut text = String::new();
    file.by_ref()
        .take(rules.max_size.unwrap_or(64 << 10))
        .read_to_string(&mut text)
        .map_err(Unread::Io)?;
    Ok(text)
}

/// The fact, without why it matters or what to do: "not a regular file",
/// "larger than 1 MiB", "writable by group or others (mode 0664)", "owned
/// by uid 1000, not by this user or root".
impl fmt::Display for Untrusted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Untrusted::NotRegular => f.write_str("not a regular file"),
            Untrusted::TooLarge { max } if max >= 1 << 20 && max % (1 << 20) == 0 => {
                write!(f, "larger than {} MiB", max >> 20)
            }
            Untrusted::TooLarge { max } if max >= 1 << 10 && max % (1 << 10) == 0 => {
                write!(f, "larger than {} KiB", max >> 10)
            }
            Untrusted::TooLarge { max } => write!(f, "larger than {max} bytes"),
            Untrusted::ReadableByOthers { mode } if mode & 0o044 == 0 => {
                write!(f, "open to group or others (mode {mode:04o})")
            }
            Untrusted::ReadableByOthers { mode } if mode & 0o004 == 0 => {
                write!(f, "readable by its group (mode {mode:04o})")
            }
            Untrusted::ReadableByOthers { mode } => {
                write!(f, "readable by others (mode {mode:04o})")
            }
            Untrusted::WritableByOthers { mode } => {
                write!(f, "writable by group or others (mode {mode:04o})")
            }
            Untrusted::Owner {
                uid,
                owners: Owners::UsOrRoot,
            } => write!(f, "owned by uid {uid}, not by this user or root"),
            Untrusted::Owner {
                uid,
                owners: Owners::Us,
            } => write!(f, "owned by uid {uid}, not by this user"),
            Untrusted::Mode { mode, want } => write!(f, "mode {mode:04o}, not {want:04o}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REGULAR: u32 = libc::S_IFREG;

    fn file(mode: u32, uid: u32, size: u64) -> Stat {
        Stat {
            mode,
            uid,
            gid: 0,
            size,
            dev: 0,
            ino: 0,
        }
    }

    const SECRET: Rules = Rules {
        max_size: Some(64 << 10),
        secret: true,
        secret_from_group: false,
        owner_writes_only: true,
        owners: Owners::UsOrRoot,
        mode: None,
    };

    const PRIVATE: Rules = Rules {
        max_size: None,
        secret: false,
        secret_from_group: false,
        owner_writes_only: false,
        owners: Owners::Us,
        mode: Some(0o600),
    };

    #[test]
    fn the_first_refusal_in_order_and_every_one() {
        assert_eq!(SECRET.check(&file(REGULAR | 0o640, 1000, 10), 1000), Ok(()));
        assert_eq!(SECRET.check(&file(REGULAR | 0o600, 0, 10), 1000), Ok(()));
        let loose = file(REGULAR | 0o666, 7, 10);
        assert_eq!(
            SECRET.refusals(&loose, 1000).collect::<Vec<_>>(),
            [
                Untrusted::ReadableByOthers { mode: 0o666 },
                Untrusted::WritableByOthers { mode: 0o666 },
                Untrusted::Owner {
                    uid: 7,
                    owners: Owners::UsOrRoot
                },
            ]
        );
        assert_eq!(
            SECRET.check(&loose, 1000),
            Err(Untrusted::ReadableByOthers { mode: 0o666 })
        );
        // Not a regular file, or too large: that alone.
        let dir = file(libc::S_IFDIR | 0o777, 7, 10);
        assert_eq!(
            SECRET.refusals(&dir, 1000).collect::<Vec<_>>(),
            [Untrusted::NotRegular]
        );
        let big = file(REGULAR | 0o666, 7, (64 << 10) + 1);
        assert_eq!(
            SECRET.refusals(&big, 1000).collect::<Vec<_>>(),
            [Untrusted::TooLarge { max: 64 << 10 }]
        );
    }

    #[test]
    fn a_private_file_is_ours_and_0600_owner_first() {
        assert_eq!(PRIVATE.check(&file(REGULAR | 0o600, 5, 1 << 30), 5), Ok(()));
        assert_eq!(
            PRIVATE.check(&file(REGULAR | 0o600, 0, 0), 5),
            Err(Untrusted::Owner {
                uid: 0,
                owners: Owners::Us
            })
        );
        assert_eq!(
            PRIVATE.check(&file(REGULAR | 0o644, 6, 0), 5),
            Err(Untrusted::Owner {
                uid: 6,
                owners: Owners::Us
            })
        );
        assert_eq!(
            PRIVATE.check(&file(REGULAR | 0o4600, 5, 0), 5),
            Ok(()),
            "only the 0o777 bits are compared"
        );
        assert_eq!(
            PRIVATE.check(&file(REGULAR | 0o400, 5, 0), 5),
            Err(Untrusted::Mode {
                mode: 0o400,
                want: 0o600
            })
        );
    }

    #[test]
    fn the_facts_as_text() {
        for (refusal, text) in [
            (Untrusted::NotRegular, "not a regular file"),
            (Untrusted::TooLarge { max: 1 << 20 }, "larger than 1 MiB"),
            (Untrusted::TooLarge { max: 64 << 10 }, "larger than 64 KiB"),
            (Untrusted::TooLarge { max: 1000 }, "larger than 1000 bytes"),
            (
                Untrusted::ReadableByOthers { mode: 0o644 },
                "readable by others (mode 0644)",
            ),
            (
                Untrusted::WritableByOthers { mode: 0o2664 },
                "writable by group or others (mode 2664)",
            ),
            (
                Untrusted::Owner {
                    uid: 1000,
                    owners: Owners::UsOrRoot,
                },
                "owned by uid 1000, not by this user or root",
            ),
            (
                Untrusted::Mode {
                    mode: 0o644,
                    want: 0o600,
                },
                "mode 0644, not 0600",
            ),
        ] {
            assert_eq!(refusal.to_string(), text);
        }
    }

    #[test]
    fn read_checks_what_it_opened_and_never_waits_on_a_fifo() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("ih-trust-read-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("secret");
        std::fs::write(&file, "pw\n").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(read(&file, &SECRET).unwrap(), "pw\n");
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(
            read(&file, &SECRET),
            Err(Unread::Untrusted(Untrusted::ReadableByOthers { .. }))
        ));
        // Nobody writes to it: a blocking open would wait forever.
        let fifo = dir.join("fifo");
        let made = std::process::Command::new("mkfifo")
            .arg("-m600")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        assert!(matches!(
            read(&fifo, &SECRET),
            Err(Unread::Untrusted(Untrusted::NotRegular))
        ));
        assert!(matches!(
            read(&dir.join("none"), &SECRET),
            Err(Unread::Io(_))
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
