//! PostgreSQL's password file, as libpq reads `~/.pgpass`: lines of
//! `hostname:port:database:username:password`, `*` matching anything in
//! the first four fields, `\` escaping `:` and `\`, `#` starting a comment.
//! The first line that matches wins.
//!
//! The file is refused when group or others can read it, as libpq ignores
//! it then: a password readable by others is no longer the account's.

/// One line of the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    fields: [String; 4],
    password: String,
}

/// What a connection is for, to find its password.
#[derive(Clone, Copy, Debug)]
pub struct Target<'a> {
    /// The host as given (`localhost` for a unix socket, as libpq says it).
    pub host: &'a str,
    /// The port.
    pub port: u16,
    /// The database.
    pub database: &'a str,
    /// The user.
    pub user: &'a str,
}

/// Parses the file's text; lines that are not five fields are skipped, as
/// libpq skips them.
pub fn parse(text: &str) -> Vec<Entry> {
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#') && !l.trim().is_empty())
        .filter_map(parse_line)
        .collect()
}

fn parse_line(line: &str) -> Option<Entry> {
    let mut fields: Vec<String> = Vec::with_capacity(5);
    let mut current = String::new();
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(next) = chars.next() {
                    current.push(next);
                }
            }
            ':' if fields.len() < 4 => fields.push(std::mem::take(&mut current)),
            c => current.push(c),
        }
    }
    fields.push(current);
    if fields.len() != 5 {
        return None;
    }
    let password = fields.pop()?;
    Some(Entry {
        fields: [
            fields[0].clone(),
            fields[1].clone(),
            fields[2].clone(),
            fields[3].clone(),
        ],
        password,
    })
}

/// The password of the first entry that matches `target`.
pub fn find<'a>(entries: &'a [Entry], target: &Target<'_>) -> Option<&'a str> {
    let port = target.port.to_string();
    let wanted = [target.host, port.as_str(), target.database, target.user];
    entries
        .iter()
        .find(|e| {
            e.fields
                .iter()
                .zip(wanted)
                .all(|(field, want)| field == "*" || field == want)
        })
        .map(|e| e.password.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(host: &'static str, user: &'static str) -> Target<'static> {
        Target {
            host,
            port: 5432,
            database: "postgres",
            user,
        }
    }

    #[test]
    fn first_match_wildcards_and_escapes() {
        let entries = parse(
            "# monitoring\n\
             db1:5432:postgres:monitor:first\n\
             *:5432:*:monitor:any\\:host\n\
             localhost:*:*:ops:p\\\\w\n\
             too:few:fields\n\
             \n\
             h\\:x:5432:postgres:odd:colon-host\n",
        );
        assert_eq!(entries.len(), 4);
        assert_eq!(find(&entries, &target("db1", "monitor")), Some("first"));
        assert_eq!(find(&entries, &target("db2", "monitor")), Some("any:host"));
        assert_eq!(find(&entries, &target("localhost", "ops")), Some("p\\w"));
        assert_eq!(find(&entries, &target("h:x", "odd")), Some("colon-host"));
        assert_eq!(find(&entries, &target("db2", "nobody")), None);
        // The port must match too.
        let other_port = Target {
            port: 5433,
            ..target("db1", "monitor")
        };
        assert_eq!(find(&entries, &other_port), None);
    }

    #[test]
    fn a_password_may_hold_colons_unescaped() {
        // libpq stops splitting after the fourth field.
        let entries = parse("*:*:*:u:a:b:c\n");
        assert_eq!(find(&entries, &target("x", "u")), Some("a:b:c"));
    }
}
