//! Responses, encoded whole into one buffer so they leave in one write.
//!
//! One write means one segment for a small response, and no window in which
//! a client sees a status line without its body.

use std::io::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

/// The content type of every text body this crate writes.
pub const TEXT_PLAIN: &str = "text/plain; charset=utf-8";

/// An HTTP response: status, a few headers, a body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    status: u16,
    content_type: &'static str,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
}

impl Response {
    /// A `text/plain` response.
    pub fn text(status: u16, body: impl Into<String>) -> Self {
        Response {
            status,
            content_type: TEXT_PLAIN,
            headers: Vec::new(),
            body: body.into().into_bytes(),
        }
    }

    /// A response with the given content type and body.
    pub fn with_body(status: u16, content_type: &'static str, body: Vec<u8>) -> Self {
        Response {
            status,
            content_type,
            headers: Vec::new(),
            body,
        }
    }

    /// Adds a header. Control characters in the value become spaces, so no
    /// value can split the head (header injection).
    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        let value: String = value
            .into()
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        self.headers.push((name, value));
        self
    }

    /// Whether a header of this name was added.
    pub fn has_header(&self, name: &str) -> bool {
        self.headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case(name))
    }

    /// The status code.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The same response with another status code.
    pub fn with_status(mut self, status: u16) -> Self {
        self.status = status;
        self
    }

    /// The body.
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// The same response with `more` after its body.
    pub fn extended(mut self, more: &[u8]) -> Self {
        self.body.extend_from_slice(more);
        self
    }

    /// Encodes the response: status line with its reason phrase, the headers
    /// every response of ours carries, the body unless `head_only`.
    ///
    /// `Content-Length` is the body's length even for `HEAD`, as RFC 9110
    /// §9.3.2 asks. `date` is the time for the `Date` header (RFC 9110
    /// §6.6.1), or `None` for none.
    pub fn encode(&self, head_only: bool, date: Option<SystemTime>) -> Vec<u8> {
        let mut out = Vec::with_capacity(192 + self.body.len());
        // Writes into a Vec cannot fail.
        let _ = write!(
            out,
            "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\nCache-Control: no-store\r\n",
            self.status,
            reason_phrase(self.status),
            self.content_type,
            self.body.len()
        );
        if let Some(t) = date {
            out.extend_from_slice(b"Date: ");
            out.extend_from_slice(http_date(t).as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        for (name, value) in &self.headers {
            let _ = write!(out, "{name}: {value}\r\n");
        }
        out.extend_from_slice(b"\r\n");
        if !head_only {
            out.extend_from_slice(&self.body);
        }
        out
    }
}

/// The reason phrase for a status code; never empty, since some clients and
/// monitors print it and an empty one reads as a broken server.
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        200 => "OK",
        204 => "No Content",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Content Too Large",
        414 => "URI Too Long",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => match status / 100 {
            1 => "Informational",
            2 => "Success",
            3 => "Redirection",
            4 => "Client Error",
            _ => "Server Error",
        },
    }
}

/// Formats a time as an HTTP date (IMF-fixdate, RFC 9110 §5.6.7):
/// `Sun, 06 Nov 1994 08:49:37 GMT`.
pub fn http_date(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{}, {:02} {} {:04} {:02}:{:02}:{:02} GMT",
        WEEKDAYS[(days % 7) as usize],
        day,
        MONTHS[(month - 1) as usize],
        year,
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// Formats a time as RFC 3339 in UTC with milliseconds, as JSON bodies
/// carry it: `1994-11-06T08:49:37.000Z`.
pub fn rfc3339(t: SystemTime) -> String {
    let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (year, month, day) = civil_from_days((secs / 86_400) as i64);
    let rem = secs % 86_400;
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        since.subsec_millis()
    )
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian
/// calendar (Howard Hinnant's `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn rfc3339_dates() {
        assert_eq!(rfc3339(at(784_111_777)), "1994-11-06T08:49:37.000Z");
        assert_eq!(
            rfc3339(at(1_795_478_399) + Duration::from_millis(42)),
            "2026-11-23T23:59:59.042Z"
        );
        assert_eq!(rfc3339(at(951_782_400)), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn exact_bytes_of_a_503() {
        let r = Response::text(503, "unhealthy: exit status 2\n");
        assert_eq!(
            String::from_utf8(r.encode(false, Some(at(784_111_777)))).unwrap(),
            "HTTP/1.1 503 Service Unavailable\r\n\
             Content-Type: text/plain; charset=utf-8\r\n\
             Content-Length: 25\r\n\
             Connection: close\r\n\
             Cache-Control: no-store\r\n\
             Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n\
             \r\n\
             unhealthy: exit status 2\n"
        );
    }

    #[test]
    fn head_keeps_the_length_and_drops_the_body() {
        let r = Response::text(200, "Hello, World\n").header("Allow", "GET, HEAD, OPTIONS");
        let bytes = String::from_utf8(r.encode(true, None)).unwrap();
        assert_eq!(
            bytes,
            "HTTP/1.1 200 OK\r\n\
             Content-Type: text/plain; charset=utf-8\r\n\
             Content-Length: 13\r\n\
             Connection: close\r\n\
             Cache-Control: no-store\r\n\
             Allow: GET, HEAD, OPTIONS\r\n\
             \r\n"
        );
    }

    #[test]
    fn content_length_counts_bytes_not_chars() {
        let r = Response::text(200, "héllo\n");
        let bytes = r.encode(false, None);
        let text = String::from_utf8(bytes).unwrap();
        assert!(text.contains("Content-Length: 7\r\n"), "{text}");
        assert!(text.ends_with("\r\n\r\nhéllo\n"));
    }

    #[test]
    fn header_values_cannot_inject_lines() {
        let r = Response::text(200, "").header("X-Reason", "a\r\nSet-Cookie: x");
        let text = String::from_utf8(r.encode(true, None)).unwrap();
        assert!(text.contains("X-Reason: a  Set-Cookie: x\r\n"), "{text}");
        assert_eq!(text.matches("\r\n").count(), 7);
    }

    #[test]
    fn every_status_has_a_reason_phrase() {
        for s in 100..=599 {
            assert!(!reason_phrase(s).is_empty());
        }
        assert_eq!(reason_phrase(431), "Request Header Fields Too Large");
    }

    #[test]
    fn http_dates() {
        assert_eq!(http_date(at(0)), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(http_date(at(951_782_400)), "Tue, 29 Feb 2000 00:00:00 GMT");
        assert_eq!(
            http_date(at(1_795_478_399)),
            "Mon, 23 Nov 2026 23:59:59 GMT"
        );
        assert_eq!(
            http_date(at(4_102_444_800)),
            "Fri, 01 Jan 2100 00:00:00 GMT"
        );
    }
}
