//! `INFO`'s answer: `# Section` headers and `field:value` lines. Parsed
//! into a map; the values a check compares are read as numbers strictly.

use std::collections::BTreeMap;

/// The `field:value` pairs of one or more `INFO` answers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Info(BTreeMap<String, String>);

impl Info {
    /// Parses `INFO` text; lines that are not `field:value` are skipped.
    pub fn parse(text: &str) -> Info {
        let mut info = Info::default();
        info.extend_only(text, &|_| true);
        info
    }

    /// Adds another answer's fields, only those `keep` wants: `INFO`'s
    /// hundred fields, each a key and a value allocated, cost more than a
    /// poll's whole conversation, for the dozen a check reads.
    pub fn extend_only(&mut self, text: &str, keep: &dyn Fn(&str) -> bool) {
        for line in text.lines() {
            let line = line.trim_end_matches('\r');
            if let Some((k, v)) = line.split_once(':') {
                if !k.starts_with('#') && keep(k) {
                    self.0.insert(k.to_owned(), v.to_owned());
                }
            }
        }
    }

    /// A field's text.
    pub fn get(&self, field: &str) -> Option<&str> {
        self.0.get(field).map(String::as_str)
    }

    /// A field as an integer (`-1` included): `None` when it is missing
    /// or not a number.
    pub fn int(&self, field: &str) -> Option<i64> {
        let v = self.get(field)?;
        let digits = v.strip_prefix('-').unwrap_or(v);
        (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
            .then(|| v.parse().ok())
            .flatten()
    }

    /// The replicas a primary lists (`slaveN:ip=…,port=…,state=…,offset=…,lag=…`).
    pub fn replicas(&self) -> Vec<Replica> {
        let mut out = Vec::new();
        for i in 0.. {
            let Some(line) = self.get(&format!("slave{i}")) else {
                break;
            };
            let field = |name: &str| {
                line.split(',')
                    .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
            };
            out.push(Replica {
                online: field("state") == Some("online"),
                offset: field("offset").and_then(|o| o.parse().ok()),
                lag: field("lag").and_then(|o| o.parse().ok()),
            });
        }
        out
    }
}

/// One replica as its primary lists it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Replica {
    /// `state=online`.
    pub online: bool,
    /// Its acknowledged replication offset.
    pub offset: Option<i64>,
    /// Seconds since its last acknowledgement.
    pub lag: Option<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_numbers_and_replicas() {
        let mut info = Info::parse(
            "# Replication\r\nrole:master\r\nconnected_slaves:2\r\n\
             slave0:ip=127.0.0.1,port=7001,state=online,offset=420,lag=0\r\n\
             slave1:ip=127.0.0.1,port=7002,state=wait_bgsave,offset=0,lag=0\r\n\
             master_repl_offset:420\r\nmaster_last_io_seconds_ago:-1\r\n",
        );
        info.extend_only(
            "# Persistence\r\nloading:0\r\nrdb_changes_since_last_save:7\r\n",
            &|k| k == "loading",
        );
        assert_eq!(info.get("rdb_changes_since_last_save"), None);
        assert_eq!(info.get("role"), Some("master"));
        assert_eq!(info.int("connected_slaves"), Some(2));
        assert_eq!(info.int("master_last_io_seconds_ago"), Some(-1));
        assert_eq!(info.int("loading"), Some(0));
        assert_eq!(info.int("role"), None);
        assert_eq!(
            info.replicas(),
            vec![
                Replica {
                    online: true,
                    offset: Some(420),
                    lag: Some(0)
                },
                Replica {
                    online: false,
                    offset: Some(0),
                    lag: Some(0)
                }
            ]
        );
        assert_eq!(Info::parse("x:+1\r\n").int("x"), None);
    }
}
