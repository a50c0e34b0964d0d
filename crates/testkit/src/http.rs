//! A strict parser for exactly one HTTP/1.x response, as the binary writes it.

use std::fmt;

/// One parsed response. Parsing fails unless the bytes are exactly one
/// response: a status line, headers, a blank line, and a body of exactly
/// `Content-Length` bytes (none for a response to HEAD), nothing after.
#[derive(Clone, PartialEq, Eq)]
pub struct Response {
    /// The status line without CRLF, e.g. `HTTP/1.1 200 OK`.
    pub status_line: String,
    /// The status code.
    pub status: u16,
    /// Headers in order, names as sent.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl fmt::Debug for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Response")
            .field("status_line", &self.status_line)
            .field("headers", &self.headers)
            .field("body", &String::from_utf8_lossy(&self.body))
            .finish()
    }
}

impl Response {
    /// Parses a response to a request other than HEAD.
    pub fn parse(bytes: &[u8]) -> Result<Response, String> {
        parse(bytes, false)
    }

    /// Parses a response to HEAD: `Content-Length` describes a body that is not sent.
    pub fn parse_head(bytes: &[u8]) -> Result<Response, String> {
        parse(bytes, true)
    }

    /// The value of the first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// How many headers are named `name` (case-insensitive).
    pub fn header_count(&self, name: &str) -> usize {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .count()
    }

    /// `Content-Length` as a number.
    pub fn content_length(&self) -> Option<usize> {
        self.header("Content-Length")?.parse().ok()
    }

    /// The body as text.
    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Panics unless the headers every response carries are present, once,
    /// with the contract's values.
    pub fn assert_standard_headers(&self) {
        for (name, want) in [
            ("Content-Type", Some("text/plain; charset=utf-8")),
            ("Content-Length", None),
            ("Connection", Some("close")),
            ("Cache-Control", Some("no-store")),
            ("Date", None),
        ] {
            assert_eq!(
                self.header_count(name),
                1,
                "expected exactly one {name} header in {self:?}"
            );
            if let Some(want) = want {
                assert_eq!(self.header(name), Some(want), "{name} in {self:?}");
            }
        }
        let date = self.header("Date").unwrap_or_default();
        assert!(
            is_imf_fixdate(date),
            "Date {date:?} is not an IMF-fixdate in {self:?}"
        );
    }
}

fn parse(bytes: &[u8], head_request: bool) -> Result<Response, String> {
    let shown = || String::from_utf8_lossy(bytes).into_owned();
    let end = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| format!("no end of head (CRLFCRLF) in {:?}", shown()))?;
    let head = std::str::from_utf8(&bytes[..end])
        .map_err(|_| format!("head is not UTF-8: {:?}", shown()))?;
    let rest = &bytes[end + 4..];
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default().to_string();
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    if version != "HTTP/1.1" && version != "HTTP/1.0" {
        return Err(format!(
            "response does not start with an HTTP status line: {:?}",
            shown()
        ));
    }
    let status: u16 = parts
        .next()
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| format!("bad status code in {status_line:?}"))?;
    let mut headers = Vec::new();
    for line in lines {
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| format!("header line without a colon {line:?} in {:?}", shown()))?;
        if name.is_empty() || name.contains(' ') {
            return Err(format!("bad header name {name:?} in {:?}", shown()));
        }
        headers.push((name.to_string(), value.trim().to_string()));
    }
    let response = Response {
        status_line,
        status,
        headers,
        body: Vec::new(),
    };
    let length = response
        .content_length()
        .ok_or_else(|| format!("no numeric Content-Length in {:?}", shown()))?;
    let body_len = if head_request { 0 } else { length };
    if rest.len() != body_len {
        return Err(format!(
            "expected exactly {body_len} body bytes (Content-Length {length}{}), \
             got {}: {:?}",
            if head_request { ", HEAD" } else { "" },
            rest.len(),
            shown()
        ));
    }
    Ok(Response {
        body: rest.to_vec(),
        ..response
    })
}

/// Whether `s` looks like `Sun, 06 Nov 1994 08:49:37 GMT`.
pub fn is_imf_fixdate(s: &str) -> bool {
    let b = s.as_bytes();
    let digits = |range: std::ops::Range<usize>| b[range].iter().all(u8::is_ascii_digit);
    s.is_ascii()
        && b.len() == 29
        && ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"].contains(&&s[0..3])
        && &s[3..5] == ", "
        && digits(5..7)
        && b[7] == b' '
        && [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
        ]
        .contains(&&s[8..11])
        && b[11] == b' '
        && digits(12..16)
        && b[16] == b' '
        && digits(17..19)
        && b[19] == b':'
        && digits(20..22)
        && b[22] == b':'
        && digits(23..25)
        && &s[25..] == " GMT"
}
