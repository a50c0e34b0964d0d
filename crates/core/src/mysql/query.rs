//! Text-protocol queries (`COM_QUERY`): the reply read from packets handed
//! in by any source, every result set with its columns and rows, the OK
//! packet's status flags and the EOF packets between the parts. Pure;
//! [`Conn::query`](super::Conn::query) reads the packets from its socket.

use super::error::{MysqlError, ProtocolError, ServerError};
use super::frame::{lenenc_int, lenenc_str, take};

/// An EOF packet: 0xFE and shorter than 9 bytes (a longer one starting
/// with 0xFE is a row whose first value is a long string).
fn is_eof(payload: &[u8]) -> bool {
    payload.first() == Some(&0xFE) && payload.len() < 9
}

/// The status flags of an OK packet.
fn ok_status(payload: &[u8]) -> Result<u16, ProtocolError> {
    let (_, rest) = lenenc_int(&payload[1..])?; // affected rows
    let (_, rest) = lenenc_int(rest)?; // last insert id
    Ok(u16::from_le_bytes(take::<2>(rest, 0)?))
}

/// One result set of a text-protocol query: column names and rows of
/// optional strings (`None` is SQL NULL).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ResultSet {
    /// Column names (aliases where given).
    pub columns: Vec<String>,
    /// Rows, one value per column.
    pub rows: Vec<Vec<Option<String>>>,
}

impl ResultSet {
    /// The value in `row` of the column named `name` (case-insensitive).
    pub fn get(&self, row: usize, name: &str) -> Option<&str> {
        let col = self
            .columns
            .iter()
            .position(|c| c.eq_ignore_ascii_case(name))?;
        self.rows.get(row)?.get(col)?.as_deref()
    }
}

/// Server status flag: another result set follows.
const MORE_RESULTS_EXIST: u16 = 0x0008;

/// Rows kept from one query: a check reads a handful; this bounds memory
/// against a query that returns a whole table.
pub const MAX_ROWS: usize = 10_000;

/// The step named in errors while a query's reply is read.
pub(super) const QUERY_STEP: &str = "the query's result";

/// Reads the reply to a `COM_QUERY` (text protocol) from `next_packet`,
/// which returns one packet's payload per call: every result set the
/// statement returns (an empty one for a statement without rows).
///
/// Pure apart from `next_packet`: [`Conn::query`](super::Conn::query) reads
/// packets from its socket; a test or a fuzzer hands them from memory.
///
/// # Errors
/// What `next_packet` returns, the server's error packet, or
/// [`MysqlError::Protocol`] / [`MysqlError::Unexpected`] for a reply that
/// is not a result set.
pub fn parse_query_reply(
    next_packet: &mut dyn FnMut(&'static str) -> Result<Vec<u8>, MysqlError>,
) -> Result<Vec<ResultSet>, MysqlError> {
    let protocol = |source| MysqlError::Protocol {
        step: QUERY_STEP,
        source,
    };
    let mut sets = Vec::new();
    loop {
        let first = next_packet(QUERY_STEP)?;
        let (set, status) = match first.first() {
            Some(0x00) => (ResultSet::default(), ok_status(&first).map_err(protocol)?),
            Some(0xFF) => {
                return Err(MysqlError::Server(
                    ServerError::parse(&first).map_err(protocol)?,
                ))
            }
            Some(0xFB) => {
                return Err(MysqlError::Unexpected {
                    step: QUERY_STEP,
                    kind: 0xFB,
                })
            }
            _ => parse_result_set(&first, next_packet)?,
        };
        sets.push(set);
        if status & MORE_RESULTS_EXIST == 0 {
            return Ok(sets);
        }
    }
}

/// Reads one text-protocol result set whose first packet (the column count)
/// is `first`, the rest from `next_packet`: the set and the status flags of
/// its closing EOF packet.
///
/// # Errors
/// As [`parse_query_reply`].
pub fn parse_result_set(
    first: &[u8],
    next_packet: &mut dyn FnMut(&'static str) -> Result<Vec<u8>, MysqlError>,
) -> Result<(ResultSet, u16), MysqlError> {
    let protocol = |source| MysqlError::Protocol {
        step: QUERY_STEP,
        source,
    };
    let count = match lenenc_int(first).map_err(protocol)? {
        (Some(n), []) if n > 0 && n <= 4096 => n as usize,
        _ => return Err(protocol(ProtocolError("bad column count"))),
    };
    let mut set = ResultSet::default();
    for _ in 0..count {
        let def = next_packet(QUERY_STEP)?;
        // catalog, schema, table, org_table, name, ...
        let mut rest = &def[..];
        let mut name = None;
        for _ in 0..5 {
            let (field, after) = lenenc_str(rest).map_err(protocol)?;
            name = field;
            rest = after;
        }
        set.columns
            .push(String::from_utf8_lossy(name.unwrap_or_default()).into_owned());
    }
    let eof = next_packet(QUERY_STEP)?;
    if !is_eof(&eof) {
        return Err(protocol(ProtocolError(
            "no EOF after the column definitions",
        )));
    }
    loop {
        let row = next_packet(QUERY_STEP)?;
        if is_eof(&row) {
            let status = u16::from_le_bytes(take::<2>(&row, 3).map_err(protocol)?);
            return Ok((set, status));
        }
        if row.first() == Some(&0xFF) {
            return Err(MysqlError::Server(
                ServerError::parse(&row).map_err(protocol)?,
            ));
        }
        let mut rest = &row[..];
        let mut values = Vec::with_capacity(count);
        for _ in 0..count {
            let (value, after) = lenenc_str(rest).map_err(protocol)?;
            values.push(value.map(|v| String::from_utf8_lossy(v).into_owned()));
            rest = after;
        }
        if set.rows.len() < MAX_ROWS {
            set.rows.push(values);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mysql::scripted::*;
    use crate::mysql::{Conn, NATIVE_PASSWORD};
    use std::io::Write;
    use std::os::unix::net::UnixListener;
    use std::thread;

    fn lenenc_bytes(s: &str) -> Vec<u8> {
        let mut out = vec![s.len() as u8];
        out.extend_from_slice(s.as_bytes());
        out
    }

    fn column_def(name: &str) -> Vec<u8> {
        let mut p = Vec::new();
        for field in ["def", "", "", "", name, name] {
            p.extend_from_slice(&lenenc_bytes(field));
        }
        p.extend_from_slice(&[0x0C, 0x21, 0, 0xFF, 0, 0, 0, 0xFD, 0, 0, 0, 0, 0]);
        p
    }

    /// Serves one authenticated connection whose first query gets `reply`
    /// (packets, sequence numbers from 1).
    fn query_server(reply: Vec<Vec<u8>>) -> (tempdir::Dir, thread::JoinHandle<Vec<u8>>) {
        let dir = tempdir::Dir::new();
        let listener = UnixListener::bind(dir.sock()).unwrap();
        let handle = thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            s.write_all(&packet(0, &greeting_bytes(NATIVE_PASSWORD)))
                .unwrap();
            read_packet_from(&mut s);
            s.write_all(&packet(2, &[0, 0, 0, 2, 0, 0, 0])).unwrap();
            let (_, query) = read_packet_from(&mut s);
            for (i, p) in reply.iter().enumerate() {
                s.write_all(&packet(i as u8 + 1, p)).unwrap();
            }
            query
        });
        (dir, handle)
    }

    fn authenticated(dir: &tempdir::Dir) -> Conn {
        let mut conn = connect(dir, 2000).unwrap();
        let g = conn.greeting().unwrap();
        conn.authenticate(&g, "monitor", b"pw").unwrap();
        conn
    }

    #[test]
    fn query_reads_columns_rows_and_nulls() {
        let eof = vec![0xFE, 0, 0, 2, 0];
        let mut row1 = lenenc_bytes("WSREP_LOCAL_STATE");
        row1.extend_from_slice(&lenenc_bytes("4"));
        let mut row2 = lenenc_bytes("read_only");
        row2.push(0xFB);
        let (dir, server) = query_server(vec![
            vec![2],
            column_def("VARIABLE_NAME"),
            column_def("VARIABLE_VALUE"),
            eof.clone(),
            row1,
            row2,
            eof,
        ]);
        let sets = authenticated(&dir).query("SELECT 1").unwrap();
        assert_eq!(server.join().unwrap(), b"\x03SELECT 1");
        assert_eq!(sets.len(), 1);
        let set = &sets[0];
        assert_eq!(set.columns, ["VARIABLE_NAME", "VARIABLE_VALUE"]);
        assert_eq!(
            set.rows[0],
            [Some("WSREP_LOCAL_STATE".into()), Some("4".into())]
        );
        assert_eq!(set.rows[1], [Some("read_only".into()), None]);
        assert_eq!(set.get(0, "variable_value"), Some("4"));
        assert_eq!(set.get(1, "VARIABLE_VALUE"), None);
    }

    #[test]
    fn query_follows_more_results_and_reports_errors() {
        let (dir, server) = query_server(vec![
            vec![0x01],
            column_def("a"),
            vec![0xFE, 0, 0, 0x0A, 0],
            lenenc_bytes("x"),
            vec![0xFE, 0, 0, 0x0A, 0],
            vec![0x00, 0, 0, 2, 0, 0, 0],
        ]);
        let sets = authenticated(&dir).query("SELECT 'x'; DO 1").unwrap();
        server.join().unwrap();
        assert_eq!(sets.len(), 2);
        assert_eq!(sets[0].get(0, "a"), Some("x"));
        assert_eq!(sets[1], ResultSet::default());

        let (dir, server) = query_server(vec![err_packet(
            1193,
            "HY000",
            "Unknown system variable 'wsrep_on'",
        )]);
        let e = authenticated(&dir).query("SELECT @@wsrep_on").unwrap_err();
        server.join().unwrap();
        assert_eq!(
            e.to_string(),
            "server error 1193 (HY000): Unknown system variable 'wsrep_on'"
        );
    }

    #[test]
    fn truncated_rows_are_protocol_errors() {
        let (dir, server) = query_server(vec![
            vec![1],
            column_def("a"),
            vec![0xFE, 0, 0, 2, 0],
            vec![5, b'x'],
        ]);
        let e = authenticated(&dir).query("SELECT 1").unwrap_err();
        server.join().unwrap();
        assert!(matches!(e, MysqlError::Protocol { .. }), "{e}");
    }
}
