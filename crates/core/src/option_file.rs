//! MySQL option files (`my.cnf` syntax): where DBAs already keep the
//! monitoring user's credentials, so no password ever goes on a command line.
//!
//! Only what a client check needs is read: `user`, `password`, `socket`,
//! `host` and `port` from the `[client]`, `[client-server]` and
//! `[client-mariadb]` groups, later values overriding earlier ones as the
//! `mysql` client does. [`parse`] is pure; [`load`] opens the file and
//! refuses one that others could read or change.

use std::fmt;
use std::io::{self, Read};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use crate::sys::trust::{Owners, Rules, Untrusted};
use crate::sys::{self, io_reason};

/// Groups a client reads, as MariaDB's own clients do.
pub const CLIENT_GROUPS: &[&str] = &["client", "client-server", "client-mariadb"];

/// Largest option file read: a credentials file is a few lines.
const MAX_SIZE: u64 = 64 * 1024;

/// What an option file must be ([`load`]): a regular file, at most 64 KiB,
/// not readable by others, not writable by group or others, owned by the
/// user that reads it or root.
pub const TRUST: Rules = Rules {
    max_size: Some(MAX_SIZE),
    secret: true,
    secret_from_group: false,
    owner_writes_only: true,
    owners: Owners::UsOrRoot,
    mode: None,
};

/// A password, kept out of `Debug` output and logs.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Password(String);

impl Password {
    /// Wraps a password.
    pub fn new(password: impl Into<String>) -> Self {
        Password(password.into())
    }

    /// The password's bytes, for the authentication exchange only.
    pub fn expose(&self) -> &[u8] {
        self.0.as_bytes()
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(***)")
    }
}

/// What an option file says about connecting.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientOptions {
    /// `user`.
    pub user: Option<String>,
    /// `password`.
    pub password: Option<Password>,
    /// `socket`.
    pub socket: Option<PathBuf>,
    /// `host`.
    pub host: Option<String>,
    /// `port`.
    pub port: Option<u16>,
}

/// Why an option file was not used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OptionFileError {
    /// It could not be opened or read.
    #[error("{}: {}", path.display(), io_reason(source))]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// It is readable by others: its password is not a secret.
    #[error("{}: refused: readable by others (mode {mode:04o}); chmod o-r it", path.display())]
    ReadableByOthers {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// Group or others can change it, and so choose our credentials.
    #[error("{}: refused: writable by group or others (mode {mode:04o}); chmod go-w it", path.display())]
    WritableByOthers {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// Another (non-root) user owns it.
    #[error("{}: refused: owned by uid {owner}, not by this user or root", path.display())]
    WrongOwner {
        /// The file.
        path: PathBuf,
        /// Its owner.
        owner: u32,
    },
    /// It is not a regular file, or larger than any option file should be.
    #[error("{}: refused: {what}", path.display())]
    NotAnOptionFile {
        /// The file.
        path: PathBuf,
        /// What it is instead.
        what: &'static str,
    },
    /// A line that is not option-file syntax.
    #[error("{}: line {line}: {what}", path.display())]
    Syntax {
        /// The file.
        path: PathBuf,
        /// The line number, from 1.
        line: usize,
        /// What is wrong.
        what: &'static str,
    },
}

/// Parses option-file text, keeping what `groups` say (group names compare
/// case-insensitively). Errors carry line numbers; [`load`] adds the path.
///
/// # Errors
/// A line that is neither a comment, a group header nor an option, an
/// option before any group, `!include` (not supported: the included file's
/// permissions would go unchecked), or a `port` that is not a port.
pub fn parse(text: &str, groups: &[&str]) -> Result<ClientOptions, (usize, &'static str)> {
    let mut out = ClientOptions::default();
    let mut in_group: Option<bool> = None;
    for (index, raw) in text.lines().enumerate() {
        let line_no = index + 1;
        let line = strip_comment(raw.trim());
        let line = line.trim();
        if line.is_empty() || line.starts_with(';') {
            continue;
        }
        if line.starts_with('!') {
            return Err((line_no, "!include and !includedir are not supported here"));
        }
        if let Some(rest) = line.strip_prefix('[') {
            let name = rest
                .strip_suffix(']')
                .ok_or((line_no, "group header without ']'"))?
                .trim();
            in_group = Some(groups.iter().any(|g| g.eq_ignore_ascii_case(name)));
            continue;
        }
        let wanted = in_group.ok_or((line_no, "option before any [group]"))?;
        if !wanted {
            continue;
        }
        let (name, value) = match line.split_once('=') {
            Some((n, v)) => (n.trim(), Some(unquote(v.trim()))),
            None => (line, None),
        };
        let name = name.to_ascii_lowercase().replace('_', "-");
        let name = name.strip_prefix("loose-").unwrap_or(&name);
        match (name, value) {
            ("user", Some(v)) => out.user = Some(v),
            ("password", Some(v)) => out.password = Some(Password(v)),
            ("socket", Some(v)) => out.socket = Some(PathBuf::from(v)),
            ("host", Some(v)) => out.host = Some(v),
            ("port", Some(v)) => {
                out.port = Some(
                    v.parse::<u16>()
                        .ok()
                        .filter(|&p| p != 0)
                        .ok_or((line_no, "port is not a number from 1 to 65535"))?,
                )
            }
            _ => {}
        }
    }
    Ok(out)
}

/// Cuts a `#` comment, which may start mid-line outside quotes (MariaDB's
/// rule; quote a password that contains `#`).
fn strip_comment(line: &str) -> &str {
    let mut quote = None;
    let mut escaped = false;
    for (i, c) in line.char_indices() {
        match (c, quote) {
            ('\'' | '"', None) if !escaped => quote = Some(c),
            (q, Some(open)) if q == open && !escaped => quote = None,
            ('#', None) => return &line[..i],
            _ => {}
        }
        escaped = quote.is_some() && c == '\\' && !escaped;
    }
    line
}

/// Removes surrounding quotes and applies the option-file escapes
/// (`\n \t \r \b \s \\ \" \'`).
fn unquote(value: &str) -> String {
    let inner = match value.as_bytes() {
        [q @ (b'\'' | b'"'), .., last] if last == q && value.len() >= 2 => {
            &value[1..value.len() - 1]
        }
        _ => value,
    };
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some('b') => out.push('\u{8}'),
            Some('s') => out.push(' '),
            Some(c @ ('\\' | '"' | '\'')) => out.push(c),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out
}

/// Opens, checks and parses an option file.
///
/// The checks ([`TRUST`]) are made on the opened file (no window between
/// check and read): a regular file, at most 64 KiB, not readable by others,
/// not writable by group or others, owned by the effective user or root.
///
/// # Errors
/// [`OptionFileError`]; its message names the file and says what to fix.
pub fn load(path: &Path) -> Result<ClientOptions, OptionFileError> {
    let io_error = |source| OptionFileError::Io {
        path: path.to_owned(),
        source,
    };
    let mut file = std::fs::File::open(path).map_err(io_error)?;
    let st = sys::fstat(file.as_fd()).map_err(io_error)?;
    TRUST.check(&st, sys::euid()).map_err(|refusal| {
        let path = path.to_owned();
        match refusal {
            Untrusted::ReadableByOthers { mode } => {
                OptionFileError::ReadableByOthers { path, mode }
            }
            Untrusted::WritableByOthers { mode } => {
                OptionFileError::WritableByOthers { path, mode }
            }
            Untrusted::Owner { uid, .. } => OptionFileError::WrongOwner { path, owner: uid },
            Untrusted::TooLarge { .. } => OptionFileError::NotAnOptionFile {
                path,
                what: "larger than 64 KiB",
            },
            // Not a regular file (TRUST asks for no exact mode).
            _ => OptionFileError::NotAnOptionFile {
                path,
                what: "not a regular file",
            },
        }
    })?;
    let mut text = String::new();
    file.by_ref()
        .take(MAX_SIZE)
        .read_to_string(&mut text)
        .map_err(io_error)?;
    parse(&text, CLIENT_GROUPS).map_err(|(line, what)| OptionFileError::Syntax {
        path: path.to_owned(),
        line,
        what,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn client(text: &str) -> ClientOptions {
        parse(text, CLIENT_GROUPS).unwrap()
    }

    #[test]
    fn a_typical_credentials_file() {
        let o = client(
            "# monitoring user\n[client]\nuser = monitor\npassword = \"s3cr#t pw\"  # quoted: # is a comment otherwise\n\
             socket=/run/mysqld/mysqld.sock\n\n[mysqld]\nuser = mysql\nport = 9999\n",
        );
        assert_eq!(o.user.as_deref(), Some("monitor"));
        assert_eq!(o.password, Some(Password::new("s3cr#t pw")));
        assert_eq!(o.socket, Some(PathBuf::from("/run/mysqld/mysqld.sock")));
        assert_eq!(o.port, None, "[mysqld] is not a client group");
    }

    #[test]
    fn later_groups_override_and_names_are_loose() {
        let o = client("[CLIENT]\nuser=a\nport=3306\n[client-mariadb]\nuser=b\nloose_port = 3307\nhost='db1'\n");
        assert_eq!(o.user.as_deref(), Some("b"));
        assert_eq!(o.port, Some(3307));
        assert_eq!(o.host.as_deref(), Some("db1"));
    }

    #[test]
    fn escapes_and_quotes() {
        let o = client("[client]\npassword='a\\sb\\\\c\\'d'\n");
        assert_eq!(o.password, Some(Password::new("a b\\c'd")));
        let o = client("[client]\npassword=plain#comment\n");
        assert_eq!(o.password, Some(Password::new("plain")));
        let o = client("[client]\npassword=\n");
        assert_eq!(o.password, Some(Password::new("")));
    }

    #[test]
    fn syntax_errors_name_the_line() {
        assert_eq!(
            parse("user=x\n", CLIENT_GROUPS),
            Err((1, "option before any [group]"))
        );
        assert_eq!(
            parse("[client\n", CLIENT_GROUPS),
            Err((1, "group header without ']'"))
        );
        assert_eq!(
            parse("[client]\n!include /etc/mysql/other.cnf\n", CLIENT_GROUPS),
            Err((2, "!include and !includedir are not supported here"))
        );
        assert_eq!(
            parse("[client]\n\nport=http\n", CLIENT_GROUPS),
            Err((3, "port is not a number from 1 to 65535"))
        );
    }

    #[test]
    fn password_is_not_in_debug_output() {
        let o = client("[client]\npassword=hunter2\n");
        assert!(!format!("{o:?}").contains("hunter2"));
    }

    #[test]
    fn permissions_are_checked_on_the_file() {
        let dir = std::env::temp_dir().join(format!("ih-optfile-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("monitor.cnf");
        std::fs::write(&path, "[client]\nuser=monitor\npassword=pw\n").unwrap();
        for (mode, ok) in [
            (0o600, true),
            (0o640, true),
            (0o400, true),
            (0o644, false),
            (0o604, false),
            (0o620, false),
            (0o602, false),
        ] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            let got = load(&path);
            assert_eq!(got.is_ok(), ok, "mode {mode:o}: {got:?}");
        }
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = load(&path).unwrap_err().to_string();
        assert_eq!(
            e,
            format!(
                "{}: refused: readable by others (mode 0644); chmod o-r it",
                path.display()
            )
        );
        let e = load(&dir.join("absent.cnf")).unwrap_err().to_string();
        assert!(e.ends_with("absent.cnf: no such file or directory"), "{e}");
        let e = load(&dir).unwrap_err().to_string();
        assert!(
            e.ends_with("refused: not a regular file") || e.contains("is a directory"),
            "{e}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
