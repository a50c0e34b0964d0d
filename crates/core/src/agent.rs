//! HAProxy's agent-check on the same port as the HTTP check.
//!
//! An agent check connects and sends nothing (or one line of its
//! `agent-send` string), reads one line and closes. The line sets the
//! server's weight and state: `up ready 100%`, `up ready 50%` for a
//! warning, `drain` while a check is disabled by its disable file, `down
//! #REASON` for a failure. HTTP clients send their request at once, so a
//! connection tells which it is within a short wait ([`sniff`]): a silent
//! one is an agent (a plain TCP check closes instead, and gets nothing), a
//! first line that is not an HTTP request line is an agent's
//! `agent-send`, anything else is HTTP. The line itself is a view of the
//! checks' results, made beside the other formats
//! ([`render::agent_line`](crate::render::agent_line)).

use std::time::Duration;

use crate::conn::{read_before, Input};
use crate::http::{HeadReader, Limits};
use crate::Deadline;

// The line lives with the other views; this is the path it had.

/// How the agent answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentSettings {
    /// The route whose checks the agent reports (`/` by default).
    pub route: String,
    /// How long a connection may stay silent before it is taken for an
    /// agent (default 100 ms).
    pub wait: Duration,
    /// The weight announced while a check warns (default 50%).
    pub warning_weight: u8,
}

impl Default for AgentSettings {
    fn default() -> Self {
        AgentSettings {
            route: "/".into(),
            wait: Duration::from_millis(100),
            warning_weight: 50,
        }
    }
}

/// Checks that `route` names checks to report: a route of `routes` (or
/// one check of one, `/ROUTE/CHECK`), a path without a query. An agent
/// route that selects nothing would answer every agent `down` while the
/// HTTP routes pass, and could never `drain`: it is refused when the
/// service is put together, not found out at 3 a.m.
///
/// # Errors
/// Why the route cannot be the agent's, with the paths there are.
pub fn check_route(
    routes: &crate::route::Routes,
    names: &[String],
    route: &str,
) -> Result<(), String> {
    if !route.starts_with('/') || route.contains(['?', '#']) {
        return Err(format!(
            "agent-route {route:?}: a path like /ready, without a query"
        ));
    }
    match crate::route::select(routes, names, route) {
        Ok(selection) if !selection.metrics && !selection.checks.is_empty() => Ok(()),
        _ => {
            let paths = match routes {
                crate::route::Routes::Any(_) => "any path".to_owned(),
                crate::route::Routes::Table(table) => {
                    let paths: Vec<&str> = table.iter().map(|r| r.path.as_str()).collect();
                    paths.join(", ")
                }
            };
            Err(format!(
                "agent-route {route:?} is not a route (the routes are: {paths}): set agent-route to one"
            ))
        }
    }
}

/// What a new connection turned out to be.
#[derive(Debug)]
pub enum Sniffed {
    /// An HTTP client: its head so far is in the reader.
    Http(HeadReader),
    /// An agent check: answer one line.
    Agent,
    /// Closed without a byte (a plain TCP check): nothing to run or send.
    Silent,
    /// The connection broke.
    Broken,
}

/// Waits at most `settings.wait` for the first bytes, then reads the first
/// line (bounded by `read_deadline` and the head limits) to tell an agent
/// from an HTTP client.
pub fn sniff<I: Input + ?Sized>(
    input: &mut I,
    limits: &Limits,
    settings: &AgentSettings,
    read_deadline: Deadline,
) -> Sniffed {
    let mut head = HeadReader::new(*limits);
    let first_wait = Deadline::after(settings.wait);
    let mut deadline = first_wait;
    loop {
        let Ok(space) = head.space() else {
            // The limit reached without a line end: let HTTP refuse it.
            return Sniffed::Http(head);
        };
        match read_before(input, space, deadline) {
            // Silent through the wait: an agent.
            Ok(None) if head.received() == 0 => return Sniffed::Agent,
            // A line that never ends: HTTP answers it (408).
            Ok(None) => return Sniffed::Http(head),
            Ok(Some(0)) if head.received() == 0 => return Sniffed::Silent,
            Ok(Some(0)) => return Sniffed::Http(head),
            Ok(Some(n)) => {
                head.add(n);
                match classify(head.bytes()) {
                    Some(true) => return Sniffed::Http(head),
                    Some(false) => return Sniffed::Agent,
                    None => deadline = read_deadline,
                }
            }
            Err(_) => return Sniffed::Broken,
        }
    }
}

/// What the bytes so far say: `Some(true)` an HTTP request line (or not
/// enough of a line to be anything else), `Some(false)` a complete line
/// that is not one (an agent's `agent-send`), `None` not enough yet.
pub fn classify(bytes: &[u8]) -> Option<bool> {
    let line_end = bytes.iter().position(|&b| b == b'\n');
    let line = &bytes[..line_end.unwrap_or(bytes.len())];
    // A method is an uppercase token; anything else at the start is not
    // HTTP, but only a whole line makes it an agent's (a TLS handshake
    // or garbage goes on to HTTP, which refuses it with a 400).
    let token_end = line.iter().position(|&b| b == b' ');
    let token = &line[..token_end.unwrap_or(line.len())];
    let plausible_method = token.iter().all(u8::is_ascii_uppercase);
    match line_end {
        None if plausible_method && token_end.is_none() && line.len() < 32 => None,
        None => Some(true),
        Some(_) => {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let http = plausible_method
                && !token.is_empty()
                && token_end.is_some()
                && line.windows(6).any(|w| w == b" HTTP/");
            // An agent sends text; control bytes are a broken HTTP client
            // (or not HTTP at all), which HTTP refuses with a 400.
            let text = line
                .iter()
                .all(|&b| b.is_ascii_graphic() || b == b' ' || b == b'\t');
            Some(http || !text)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agents_and_http_clients_told_apart() {
        for (bytes, want) in [
            (&b"GET / HTTP/1.1\r\n"[..], Some(true)),
            (b"OPTIONS / HTTP/1.0\r\n", Some(true)),
            (b"GET", None),
            (b"GE", None),
            (b"GET /health", Some(true)),
            (b"ping\n", Some(false)),
            (b"hello agent\r\n", Some(false)),
            (b"DELETE\n", Some(false)),
            (b"\x16\x03\x01\x00\xa5\x01", Some(true)),
            (b"\x16\x03\x01\n", Some(true)),
        ] {
            assert_eq!(
                classify(bytes),
                want,
                "{:?}",
                String::from_utf8_lossy(bytes)
            );
        }
    }

    #[test]
    fn sniffing_a_connection() {
        let limits = Limits::default();
        let s = AgentSettings::default();
        let later = || Deadline::after(Duration::from_secs(1));
        let mut http: &[u8] = b"GET / HTTP/1.0\r\n\r\n";
        match sniff(&mut http, &limits, &s, later()) {
            Sniffed::Http(head) => assert_eq!(head.received(), 18),
            other => panic!("{other:?}"),
        }
        let mut agent: &[u8] = b"ping\n";
        assert!(matches!(
            sniff(&mut agent, &limits, &s, later()),
            Sniffed::Agent
        ));
        let mut silent: &[u8] = b"";
        assert!(matches!(
            sniff(&mut silent, &limits, &s, later()),
            Sniffed::Silent
        ));
    }
}
