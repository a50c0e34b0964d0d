//! `doctor HOST:PORT [PATH]`: polls any health endpoint (ours or not) the
//! way each real poller does, and says, per poller, what it saw and what is
//! wrong, in the operator's words. Exit 0 only when every poller would be
//! satisfied.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

/// `doctor`'s arguments.
#[derive(Debug, clap::Args)]
pub struct DoctorArgs {
    /// The endpoint, e.g. 127.0.0.1:9200
    #[arg(value_name = "HOST:PORT")]
    pub target: String,
    /// The path the pollers ask for
    #[arg(default_value = "/")]
    pub path: String,
    /// Say it in JSON, for machines
    #[arg(long)]
    pub json: bool,
    /// Connections in the one-second burst
    #[arg(long, value_name = "N", default_value_t = 60)]
    pub burst: u32,
}

/// One poller's verdict.
struct Verdict {
    poller: &'static str,
    ok: bool,
    status: Option<u16>,
    findings: Vec<String>,
    note: String,
}

/// What one connection brought back.
struct Exchanged {
    bytes: Vec<u8>,
    reset: bool,
    timed_out: bool,
    refused: bool,
    elapsed: Duration,
}

fn exchange(addr: SocketAddr, request: &[u8], timeout: Duration, reset_after: bool) -> Exchanged {
    let start = Instant::now();
    let mut out = Exchanged {
        bytes: Vec::new(),
        reset: false,
        timed_out: false,
        refused: false,
        elapsed: Duration::ZERO,
    };
    let mut stream = match TcpStream::connect_timeout(&addr, timeout) {
        Ok(s) => s,
        Err(e) => {
            out.refused = e.kind() == std::io::ErrorKind::ConnectionRefused;
            out.timed_out = !out.refused;
            out.elapsed = start.elapsed();
            return out;
        }
    };
    let _ = stream.set_read_timeout(Some(timeout));
    if !request.is_empty() && stream.write_all(request).is_err() {
        out.reset = true;
    }
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.bytes.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                out.reset = true;
                break;
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                out.timed_out = true;
                break;
            }
            Err(_) => {
                out.reset = true;
                break;
            }
        }
        if out.bytes.len() > 1 << 20 {
            break;
        }
    }
    if reset_after {
        // HAProxy closes its checks with a reset (SO_LINGER 0).
        let linger = libc::linger {
            l_onoff: 1,
            l_linger: 0,
        };
        // SAFETY: setsockopt on our socket with a valid linger struct.
        unsafe {
            libc::setsockopt(
                std::os::fd::AsRawFd::as_raw_fd(&stream),
                libc::SOL_SOCKET,
                libc::SO_LINGER,
                (&linger as *const libc::linger).cast(),
                std::mem::size_of::<libc::linger>() as libc::socklen_t,
            );
        }
    }
    out.elapsed = start.elapsed();
    out
}

/// A response's status, and what is wrong with its framing.
fn examine(ex: &Exchanged, http10_client: bool) -> (Option<u16>, Vec<u8>, Vec<String>) {
    let mut findings = Vec::new();
    if ex.refused {
        findings.push("connection refused".into());
        return (None, Vec::new(), findings);
    }
    if ex.bytes.is_empty() {
        findings.push(if ex.reset {
            "connection reset before any response".into()
        } else if ex.timed_out {
            format!("no response within {:.1}s", ex.elapsed.as_secs_f64())
        } else {
            "connection closed without a response".into()
        });
        return (None, Vec::new(), findings);
    }
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut response = httparse::Response::new(&mut headers);
    let head_len = match response.parse(&ex.bytes) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => {
            findings.push("the response head never ended".into());
            return (response.code, Vec::new(), findings);
        }
        Err(e) => {
            findings.push(format!("not an HTTP response ({e})"));
            return (None, Vec::new(), findings);
        }
    };
    let status = response.code;
    let header = |name: &str| {
        response
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| String::from_utf8_lossy(h.value).trim().to_owned())
    };
    let body = ex.bytes[head_len..].to_vec();
    match header("content-length").map(|v| v.parse::<usize>()) {
        Some(Ok(length)) if length != body.len() && !ex.timed_out => findings.push(format!(
            "Content-Length {length} but {} body bytes",
            body.len()
        )),
        Some(Err(_)) => findings.push("a Content-Length that is not a number".into()),
        None if !http10_client
            && !header("connection").is_some_and(|c| c.eq_ignore_ascii_case("close")) =>
        {
            findings.push("no Content-Length and no close".into())
        }
        _ => {}
    }
    if ex.reset {
        findings.push(
            "connection reset after the response: the server exits with unread request bytes"
                .into(),
        );
    }
    if ex.timed_out {
        findings.push(format!(
            "the connection stayed open for {:.1}s after the response",
            ex.elapsed.as_secs_f64()
        ));
    }
    (status, body, findings)
}

fn good(status: Option<u16>) -> bool {
    status.is_some_and(|s| (200..400).contains(&s))
}

fn poll(
    addr: SocketAddr,
    poller: &'static str,
    request: &str,
    timeout: Duration,
    reset_after: bool,
) -> (Verdict, Vec<u8>) {
    let ex = exchange(addr, request.as_bytes(), timeout, reset_after);
    let http10 = request.contains(" HTTP/1.0\r\n");
    let (status, body, mut findings) = examine(&ex, http10);
    if !good(status) {
        if let Some(s) = status {
            findings.insert(0, format!("status {s}"));
        }
    }
    let ok = good(status) && findings.is_empty();
    let note = format!(
        "{} in {} ms",
        status.map_or_else(|| "no status".to_owned(), |s| s.to_string()),
        ex.elapsed.as_millis()
    );
    (
        Verdict {
            poller,
            ok,
            status,
            findings,
            note,
        },
        body,
    )
}

/// Runs every poller against `args.target`; returns the exit code.
pub fn run(args: &DoctorArgs) -> i32 {
    let addr = match args
        .target
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
    {
        Some(a) => a,
        None => {
            eprintln!("inetd-health: doctor: {:?} is not HOST:PORT", args.target);
            return inetd_health::exit::USAGE;
        }
    };
    let host = args.target.clone();
    let path = &args.path;
    let slow = Duration::from_secs(5);
    let mut verdicts = Vec::new();

    // HAProxy's default check: OPTIONS / HTTP/1.0, then a reset.
    let (mut v, _) = poll(
        addr,
        "haproxy default (OPTIONS / HTTP/1.0)",
        "OPTIONS / HTTP/1.0\r\n\r\n",
        slow,
        true,
    );
    if v.status == Some(405) {
        v.findings = vec!["405 for OPTIONS: HAProxy's default check will fail".into()];
    }
    verdicts.push(v);
    // HAProxy's http-check with GET and a Host.
    let (v, _) = poll(
        addr,
        "haproxy http-check (GET, HTTP/1.1)",
        &format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n"),
        slow,
        true,
    );
    verdicts.push(v);
    // keepalived HTTP_GET: HTTP/1.0, no Host, read to the end, MD5 of the
    // body as genhash prints it, three times.
    let keepalived = format!("GET {path} HTTP/1.0\r\nUser-Agent: KeepAliveClient\r\n\r\n");
    let mut digests = Vec::new();
    let mut kv: Option<Verdict> = None;
    for _ in 0..3 {
        let (v, body) = poll(addr, "keepalived HTTP_GET", &keepalived, slow, false);
        digests.push(md5_hex(&body));
        if kv.as_ref().is_none_or(|k| k.ok && !v.ok) {
            kv = Some(v);
        }
        std::thread::sleep(Duration::from_millis(1100));
    }
    if let Some(mut v) = kv {
        if digests.windows(2).any(|w| w[0] != w[1]) {
            v.ok = false;
            v.findings
                .push("body differs between polls: keepalived digest will flap".into());
        }
        v.note = format!("{}, digest {}", v.note, digests[0]);
        verdicts.push(v);
    }
    // Kubernetes (or curl) with a 1 s timeout.
    let (v, _) = poll(
        addr,
        "kubernetes httpGet (1 s timeout)",
        &format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: kube-probe/1.30\r\nAccept: */*\r\nConnection: close\r\n\r\n"),
        Duration::from_secs(1),
        false,
    );
    verdicts.push(v);
    // HAProxy agent-check: connect, send nothing, read a line.
    let ex = exchange(addr, b"", Duration::from_secs(3), false);
    let line = String::from_utf8_lossy(&ex.bytes)
        .lines()
        .next()
        .unwrap_or("")
        .to_owned();
    let agent_words = ["up", "down", "ready", "drain", "maint", "stopped", "fail"];
    let is_agent = line
        .split([' ', ',', '\t'])
        .any(|w| agent_words.contains(&w.to_ascii_lowercase().as_str()) || w.ends_with('%'));
    verdicts.push(Verdict {
        poller: "haproxy agent-check (nothing sent)",
        // Informational: an endpoint need not answer agents.
        ok: true,
        status: None,
        findings: Vec::new(),
        note: if is_agent {
            format!("agent says {line:?}")
        } else {
            "no agent answer (fine unless HAProxy has agent-check on this port)".into()
        },
    });
    // A burst: N connections within a second.
    let n = args.burst.max(1);
    let gap = Duration::from_secs(1) / n;
    let started = Instant::now();
    let mut failed_at = None;
    let mut failures = 0;
    for i in 0..n {
        let ex = exchange(
            addr,
            format!("GET {path} HTTP/1.0\r\n\r\n").as_bytes(),
            Duration::from_secs(3),
            false,
        );
        if ex.bytes.is_empty() || ex.refused {
            failures += 1;
            failed_at.get_or_insert(i);
        }
        let due = gap * (i + 1);
        if let Some(wait) = due.checked_sub(started.elapsed()) {
            std::thread::sleep(wait);
        }
    }
    let mut burst = Verdict {
        poller: "burst",
        ok: failures == 0,
        status: None,
        findings: Vec::new(),
        note: format!(
            "{n} connections in {:.1}s, {failures} unanswered",
            started.elapsed().as_secs_f64()
        ),
    };
    if let Some(at) = failed_at {
        burst.findings.push(format!(
            "service stopped answering after {at} connections in 1 s: xinetd cps (or instances, per_source)"
        ));
    }
    verdicts.push(burst);

    let ok = verdicts.iter().all(|v| v.ok);
    if args.json {
        print!("{}", json(&args.target, path, ok, &verdicts));
    } else {
        for v in &verdicts {
            println!(
                "{} {}: {}",
                if v.ok { "ok  " } else { "FAIL" },
                v.poller,
                v.note
            );
            for f in &v.findings {
                println!("       {f}");
            }
        }
        println!(
            "{}",
            if ok {
                "every poller would be satisfied"
            } else {
                "some pollers would not be satisfied"
            }
        );
    }
    if ok {
        0
    } else {
        1
    }
}

fn json(target: &str, path: &str, ok: bool, verdicts: &[Verdict]) -> String {
    let s = |t: &str| {
        let mut out = String::from("\"");
        for c in t.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                c if c < ' ' => out.push_str(&format!("\\u{:04x}", u32::from(c))),
                c => out.push(c),
            }
        }
        out.push('"');
        out
    };
    let pollers: Vec<String> = verdicts
        .iter()
        .map(|v| {
            let findings: Vec<String> = v.findings.iter().map(|f| s(f)).collect();
            format!(
                "{{\"poller\":{},\"ok\":{},\"status\":{},\"note\":{},\"findings\":[{}]}}",
                s(v.poller),
                v.ok,
                v.status.map_or("null".to_owned(), |c| c.to_string()),
                s(&v.note),
                findings.join(",")
            )
        })
        .collect();
    format!(
        "{{\"target\":{},\"path\":{},\"ok\":{ok},\"pollers\":[{}]}}\n",
        s(target),
        s(path),
        pollers.join(",")
    )
}

/// MD5 (RFC 1321), as keepalived's genhash prints it: 32 hex digits.
pub fn md5_hex(data: &[u8]) -> String {
    const S: [u32; 64] = [
        7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 5, 9, 14, 20, 5, 9, 14, 20, 5,
        9, 14, 20, 5, 9, 14, 20, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 6, 10,
        15, 21, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21,
    ];
    let k: Vec<u32> = (0..64)
        .map(|i: i32| ((f64::from(i + 1)).sin().abs() * 4_294_967_296.0) as u32)
        .collect();
    let mut msg = data.to_vec();
    let bits = (data.len() as u64).wrapping_mul(8);
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&bits.to_le_bytes());
    let (mut a0, mut b0, mut c0, mut d0) = (
        0x6745_2301u32,
        0xefcd_ab89u32,
        0x98ba_dcfeu32,
        0x1032_5476u32,
    );
    for chunk in msg.chunks(64) {
        let m: Vec<u32> = chunk
            .chunks(4)
            .map(|w| u32::from_le_bytes([w[0], w[1], w[2], w[3]]))
            .collect();
        let (mut a, mut b, mut c, mut d) = (a0, b0, c0, d0);
        for i in 0..64 {
            let (f, g) = match i / 16 {
                0 => ((b & c) | (!b & d), i),
                1 => ((d & b) | (!d & c), (5 * i + 1) % 16),
                2 => (b ^ c ^ d, (3 * i + 5) % 16),
                _ => (c ^ (b | !d), (7 * i) % 16),
            };
            let f = f.wrapping_add(a).wrapping_add(k[i]).wrapping_add(m[g]);
            a = d;
            d = c;
            c = b;
            b = b.wrapping_add(f.rotate_left(S[i]));
        }
        a0 = a0.wrapping_add(a);
        b0 = b0.wrapping_add(b);
        c0 = c0.wrapping_add(c);
        d0 = d0.wrapping_add(d);
    }
    [a0, b0, c0, d0]
        .iter()
        .flat_map(|w| w.to_le_bytes())
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn md5_reference_vectors() {
        // RFC 1321, appendix A.5.
        for (input, digest) in [
            ("", "d41d8cd98f00b204e9800998ecf8427e"),
            ("a", "0cc175b9c0f1b6a831c399e269772661"),
            ("abc", "900150983cd24fb0d6963f7d28e17f72"),
            ("message digest", "f96b697d7cb7938d525a2f31aaf161d0"),
            (
                "12345678901234567890123456789012345678901234567890123456789012345678901234567890",
                "57edf4a22be3c955ac49da2e2107b67a",
            ),
        ] {
            assert_eq!(md5_hex(input.as_bytes()), digest, "{input:?}");
        }
    }

    #[test]
    fn framing_findings() {
        let ex = |bytes: &[u8], reset: bool| Exchanged {
            bytes: bytes.to_vec(),
            reset,
            timed_out: false,
            refused: false,
            elapsed: Duration::from_millis(1),
        };
        let (status, _, f) = examine(
            &ex(
                b"HTTP/1.1 200 OK\r\nContent-Length: 15\r\n\r\nHello, World\r\n\r\n",
                true,
            ),
            false,
        );
        assert_eq!(status, Some(200));
        assert_eq!(
            f,
            [
                "Content-Length 15 but 16 body bytes",
                "connection reset after the response: the server exits with unread request bytes"
            ]
        );
        let (_, _, f) = examine(&ex(b"HTTP/1.1 200 OK\r\n\r\nok", false), false);
        assert_eq!(f, ["no Content-Length and no close"]);
        let (_, _, f) = examine(
            &ex(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", false),
            false,
        );
        assert!(f.is_empty());
    }
}
