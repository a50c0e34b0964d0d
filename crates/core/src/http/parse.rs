//! The request head, parsed without any I/O.

use std::fmt;

/// The request methods a health check answers, and the rest.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Method {
    /// `GET`: Kubernetes, curl, most monitors.
    Get,
    /// `HEAD`: answered with the headers `GET` would get.
    Head,
    /// `OPTIONS`: HAProxy's default `option httpchk` request.
    Options,
    /// Anything else, answered 405.
    Other(String),
}

impl Method {
    fn from_token(token: &str) -> Method {
        // Methods are case-sensitive (RFC 9110 §9.1): `get` is not `GET`.
        match token {
            "GET" => Method::Get,
            "HEAD" => Method::Head,
            "OPTIONS" => Method::Options,
            other => Method::Other(other.to_owned()),
        }
    }

    /// The method's token as sent.
    pub fn as_str(&self) -> &str {
        match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Options => "OPTIONS",
            Method::Other(s) => s,
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the server keeps of a request head.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestHead {
    /// The request method.
    pub method: Method,
    /// The request target as sent (`/`, `/health?x=1`, `*`).
    pub target: String,
    /// `0` for HTTP/1.0, `1` for HTTP/1.1.
    pub minor_version: u8,
    /// The `Host` header, if any (HTTP/1.0 clients such as keepalived send none).
    pub host: Option<String>,
    /// The `Accept` header, several joined with `, ` as RFC 9110 allows;
    /// `None` when absent (HAProxy, keepalived).
    pub accept: Option<String>,
    /// Size of the head in bytes, final blank line included.
    pub head_len: usize,
}

/// The result of parsing what has arrived so far.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Parsed {
    /// The head is complete.
    Complete(RequestHead),
    /// Valid so far; more bytes are needed.
    Partial,
}

/// Why a request head is not acceptable.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// Not HTTP/1.x syntax.
    #[error("malformed request head: {0}")]
    Malformed(httparse::Error),
    /// More header fields than the limit.
    #[error("more than {limit} header fields")]
    TooManyHeaders {
        /// The limit in force.
        limit: usize,
    },
}

/// Header slots kept on the stack: the default limit.
const STACK_HEADERS: usize = 64;

/// Parses the bytes received so far.
///
/// # Errors
/// [`ParseError::TooManyHeaders`] past `max_headers` fields,
/// [`ParseError::Malformed`] for anything that is not an HTTP/1.0 or 1.1
/// request head.
pub fn parse_head(buf: &[u8], max_headers: usize) -> Result<Parsed, ParseError> {
    if max_headers <= STACK_HEADERS {
        let mut headers = [httparse::EMPTY_HEADER; STACK_HEADERS];
        parse_into(buf, &mut headers[..max_headers], max_headers)
    } else {
        let mut headers = vec![httparse::EMPTY_HEADER; max_headers];
        parse_into(buf, &mut headers, max_headers)
    }
}

fn parse_into<'b>(
    buf: &'b [u8],
    headers: &mut [httparse::Header<'b>],
    limit: usize,
) -> Result<Parsed, ParseError> {
    let mut req = httparse::Request::new(headers);
    let head_len = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(Parsed::Partial),
        Err(httparse::Error::TooManyHeaders) => return Err(ParseError::TooManyHeaders { limit }),
        Err(e) => return Err(ParseError::Malformed(e)),
    };
    // httparse fills all three once the head is complete.
    let (Some(method), Some(target), Some(minor_version)) = (req.method, req.path, req.version)
    else {
        return Err(ParseError::Malformed(httparse::Error::Token));
    };
    let host = req
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("host"))
        .map(|h| String::from_utf8_lossy(h.value).trim().to_owned());
    let mut accept: Option<String> = None;
    for h in req
        .headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case("accept"))
    {
        let value = String::from_utf8_lossy(h.value);
        let value = value.trim();
        match &mut accept {
            Some(all) => {
                all.push_str(", ");
                all.push_str(value);
            }
            None => accept = Some(value.to_owned()),
        }
    }
    Ok(Parsed::Complete(RequestHead {
        method: Method::from_token(method),
        target: target.to_owned(),
        minor_version,
        host,
        accept,
        head_len,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HAPROXY: &[u8] = b"OPTIONS / HTTP/1.0\r\n\r\n";
    const K8S: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: 10.0.0.1:9200\r\nUser-Agent: kube-probe/1.30\r\nAccept: */*\r\nConnection: close\r\n\r\n";

    fn complete(buf: &[u8]) -> RequestHead {
        match parse_head(buf, 64) {
            Ok(Parsed::Complete(h)) => h,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn every_proper_prefix_is_partial() {
        for req in [HAPROXY, K8S, b"HEAD / HTTP/1.1\nHost: x\n\n".as_slice()] {
            for cut in 0..req.len() {
                assert_eq!(
                    parse_head(&req[..cut], 64),
                    Ok(Parsed::Partial),
                    "cut at {cut} of {:?}",
                    String::from_utf8_lossy(req)
                );
            }
            assert!(matches!(parse_head(req, 64), Ok(Parsed::Complete(_))));
        }
    }

    #[test]
    fn haproxy_default_check_has_no_host() {
        let h = complete(HAPROXY);
        assert_eq!(h.method, Method::Options);
        assert_eq!(h.target, "/");
        assert_eq!(h.minor_version, 0);
        assert_eq!(h.host, None);
        assert_eq!(h.head_len, HAPROXY.len());
    }

    #[test]
    fn kubernetes_probe() {
        let h = complete(K8S);
        assert_eq!(h.method, Method::Get);
        assert_eq!(h.target, "/healthz");
        assert_eq!(h.minor_version, 1);
        assert_eq!(h.host.as_deref(), Some("10.0.0.1:9200"));
        assert_eq!(h.accept.as_deref(), Some("*/*"));
        assert_eq!(complete(HAPROXY).accept, None);
        let two =
            complete(b"GET / HTTP/1.1\r\nAccept: text/plain\r\naccept:  application/json \r\n\r\n");
        assert_eq!(two.accept.as_deref(), Some("text/plain, application/json"));
    }

    #[test]
    fn head_len_excludes_what_follows() {
        let mut buf = K8S.to_vec();
        buf.extend_from_slice(b"GET / HTTP/1.1\r\n");
        assert_eq!(complete(&buf).head_len, K8S.len());
    }

    #[test]
    fn methods_are_case_sensitive() {
        assert_eq!(
            complete(b"get / HTTP/1.1\r\n\r\n").method,
            Method::Other("get".into())
        );
        assert_eq!(
            complete(b"DELETE / HTTP/1.1\r\n\r\n").method.as_str(),
            "DELETE"
        );
    }

    #[test]
    fn garbage_is_malformed() {
        for bad in [
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03".as_slice(), // a TLS ClientHello
            b"GET / HTTP/2.0\r\n\r\n",
            b"GET / FOO/1.1\r\n\r\n",
            b"GET\x00/ HTTP/1.1\r\n\r\n",
            b"GET / HTTP/1.1\r\nBad Header\r\n\r\n",
        ] {
            assert!(
                matches!(parse_head(bad, 64), Err(ParseError::Malformed(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn header_limit_is_enforced() {
        let mut req = b"GET / HTTP/1.1\r\n".to_vec();
        for i in 0..5 {
            req.extend_from_slice(format!("X-{i}: y\r\n").as_bytes());
        }
        req.extend_from_slice(b"\r\n");
        assert!(matches!(parse_head(&req, 5), Ok(Parsed::Complete(_))));
        assert_eq!(
            parse_head(&req, 4),
            Err(ParseError::TooManyHeaders { limit: 4 })
        );
        assert!(matches!(parse_head(&req, 200), Ok(Parsed::Complete(_))));
    }
}
