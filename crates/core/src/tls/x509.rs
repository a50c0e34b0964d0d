//! The validity period and the public key of a certificate, read from its
//! DER.
//!
//! Only these are wanted (the expiry for a gauge, a `--check-config` warning
//! and a renewal's validity; the key to compare with a key file's public
//! half), so this walks the few fields in front of them by hand rather than
//! pull in an X.509 crate. It reads and never verifies: rustls has already decided
//! whether the certificate is acceptable, and a misread date must only ever
//! come out as `None`, never as a panic or a wrong number.

use super::der::{bits, tlv};

const SEQUENCE: u8 = 0x30;
const BIT_STRING: u8 = 0x03;
const INTEGER: u8 = 0x02;
const VERSION: u8 = 0xa0; // [0] EXPLICIT, absent from v1 certificates
const UTC_TIME: u8 = 0x17;
const GENERALIZED_TIME: u8 = 0x18;

/// Both ends of `validity` (notBefore, notAfter), in seconds since the
/// Unix epoch; `None` when `der` is not a certificate this parser
/// understands. Read together so that a certificate whose
/// `notAfter` is unreadable does not pass for one with a readable
/// `notBefore`. The input must be exactly one certificate: trailing bytes mean
/// the caller split a chain wrongly, and a date read from it is not trusted.
pub fn validity(der: &[u8]) -> Option<(i64, i64)> {
    let (validity, _) = tlv(from_validity(der)?, SEQUENCE)?;
    let (before, rest) = time(validity)?;
    let (after, rest) = time(rest)?;
    rest.is_empty().then_some((before, after))
}

/// The certificate's `subjectPublicKey`: an EC point, or an RSA key's
/// `RSAPublicKey { modulus, publicExponent }`, as a key file carries its
/// public half.
pub fn public_key(der: &[u8]) -> Option<&[u8]> {
    let mut rest = from_validity(der)?;
    rest = tlv(rest, SEQUENCE)?.1; // validity
    rest = tlv(rest, SEQUENCE)?.1; // subject
    let (info, _) = tlv(rest, SEQUENCE)?;
    let (_, rest) = tlv(info, SEQUENCE)?; // algorithm
    bits(tlv(rest, BIT_STRING)?.0)
}

/// `tbsCertificate`'s fields from `validity` on: `Certificate {
/// tbsCertificate { [0] version, serialNumber, signature, issuer,
/// validity, … } … }`.
fn from_validity(der: &[u8]) -> Option<&[u8]> {
    let (cert, rest) = tlv(der, SEQUENCE)?;
    if !rest.is_empty() {
        return None;
    }
    let (tbs, _) = tlv(cert, SEQUENCE)?;
    let mut rest = tbs;
    if rest.first() == Some(&VERSION) {
        rest = tlv(rest, VERSION)?.1;
    }
    rest = tlv(rest, INTEGER)?.1; // serialNumber
    rest = tlv(rest, SEQUENCE)?.1; // signature
    Some(tlv(rest, SEQUENCE)?.1) // issuer
}

/// One `Time` off the front of `input`, as Unix seconds. RFC 5280 fixes the
/// form (seconds present, no fraction, `Z`), so anything else is refused
/// rather than guessed at.
fn time(input: &[u8]) -> Option<(i64, &[u8])> {
    let tag = *input.first()?;
    let (body, rest) = tlv(input, tag)?;
    let (year, body) = match tag {
        UTC_TIME => {
            let (yy, body) = body.split_at_checked(2)?;
            let yy = number(yy)?;
            (if yy < 50 { 2000 + yy } else { 1900 + yy }, body)
        }
        GENERALIZED_TIME => {
            let (yyyy, body) = body.split_at_checked(4)?;
            (number(yyyy)?, body)
        }
        _ => return None,
    };
    let [m0, m1, d0, d1, h0, h1, i0, i1, s0, s1, b'Z'] = *body else {
        return None;
    };
    let [month, day, hour, minute, second] =
        [[m0, m1], [d0, d1], [h0, h1], [i0, i1], [s0, s1]].map(|pair| number(&pair));
    let (month, day, hour, minute, second) = (month?, day?, hour?, minute?, second?);
    if !(1..=12).contains(&month) {
        return None;
    }
    // The length of the month is the distance to the first of the next one,
    // which settles leap years without a rule of its own.
    let month_days =
        days_from_civil(year + month / 12, month % 12 + 1, 1) - days_from_civil(year, month, 1);
    if !(1..=month_days).contains(&day) || hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let days = days_from_civil(year, month, day);
    Some((days * 86_400 + hour * 3_600 + minute * 60 + second, rest))
}

/// ASCII digits as a number; callers pass at most four, so it cannot overflow.
fn number(digits: &[u8]) -> Option<i64> {
    digits.iter().try_fold(0, |n, &d| {
        d.is_ascii_digit().then(|| n * 10 + i64::from(d - b'0'))
    })
}

/// Days from 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`), so the conversion needs neither libc nor a time crate.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let day_of_year = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    // Made with OpenSSL 3.0.19 at development time:
    //   openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    //     -keyout k.pem -out c.pem -days 30 -subj /CN=t
    // (`-days 20000`, `/CN=g` for GENERALIZED; `-newkey rsa:2048` and a long
    // subject, whose issuer Name needs a 0x81 length, for RSA), then
    //   openssl x509 -in c.pem -outform DER | base64
    // and the dates from `openssl x509 -noout -startdate -enddate` through
    // `date -u -d ... +%s`.
    const EC_UTC: &str = concat!(
        "MIIBbTCCAROgAwIBAgIUWuuzyRNLXnmpEKzGTWWvejkb8y0wCgYIKoZIzj0EAwIwDDEKMAgGA1UEAwwBdDAeFw0yNjEy",
        "MDEyMDAxMDJaFw0yNjEyMzEyMDAxMDJaMAwxCjAIBgNVBAMMAXQwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAATkRISi",
        "6o12ybEfAFDqtix2ZZkv8DK7yazjjuTn0FnJBbH7rXAEN2SBHRRjfTMSB1ZOoRruU0RESaqL3HYiXUOQo1MwUTAdBgNV",
        "HQ4EFgQUwJQVOEl2uKU4rKQaR1H5FgCeGNgwHwYDVR0jBBgwFoAUwJQVOEl2uKU4rKQaR1H5FgCeGNgwDwYDVR0TAQH/",
        "BAUwAwEB/zAKBggqhkjOPQQDAgNIADBFAiEA1kVK2JbtsXCEKEoBqK2ezHB2/rMnofI13hRtouvVKk4CIHt+4lrVW5pL",
        "Tlixv7+3ne0B84T41xWZDoGDnk/+2wX1",
    );
    const GENERALIZED: &str = concat!(
        "MIIBbTCCARWgAwIBAgIUcYXadLWsf/5AuETdX0YHS7lOmsEwCgYIKoZIzj0EAwIwDDEKMAgGA1UEAwwBZzAgFw0yNjEy",
        "MDEyMDAxMDJaGA8yMDgxMDkwMzIwMDEwMlowDDEKMAgGA1UEAwwBZzBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABLf0",
        "SnMBrC9ggG/ESrGWwOgyZs09JJLjIYIr+JcYQjt8oNInHMu5kykj9dZ/5Eers1Qkm3FKA1SCC7LTvBU+z0ujUzBRMB0G",
        "A1UdDgQWBBQvEKznlFE6B6ls46ywmuAp2hEnXjAfBgNVHSMEGDAWgBQvEKznlFE6B6ls46ywmuAp2hEnXjAPBgNVHRMB",
        "Af8EBTADAQH/MAoGCCqGSM49BAMCA0YAMEMCH0uO+SARiVYb5slWz0Unp9tx6PZccDu0ThWgV6uIP6wCICF+wSW2boQU",
        "ipf7MMpnHBKX7+OT4UNR4fDS09R6D6zo",
    );
    const RSA: &str = concat!(
        "MIID/zCCAuegAwIBAgIUZZui/Cks07G6H/kVrFQdnPYhhbIwDQYJKoZIhvcNAQELBQAwgY4xCzAJBgNVBAYTAkRFMQ8w",
        "DQYDVQQIDAZCZXJsaW4xDzANBgNVBAcMBkJlcmxpbjEjMCEGA1UECgwaaW5ldGQtaGVhbHRoIHRlc3QgZml4dHVyZXMx",
        "GjAYBgNVBAsMEWxvbmctZm9ybSBsZW5ndGhzMRwwGgYDVQQDDBNyc2EuZml4dHVyZS5leGFtcGxlMB4XDTI2MTIwMTIw",
        "MDEwMloXDTI4MDEwMjIwMDEwMlowgY4xCzAJBgNVBAYTAkRFMQ8wDQYDVQQIDAZCZXJsaW4xDzANBgNVBAcMBkJlcmxp",
        "bjEjMCEGA1UECgwaaW5ldGQtaGVhbHRoIHRlc3QgZml4dHVyZXMxGjAYBgNVBAsMEWxvbmctZm9ybSBsZW5ndGhzMRww",
        "GgYDVQQDDBNyc2EuZml4dHVyZS5leGFtcGxlMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAtrXrXFv9JHS6",
        "z4oxPf2xI0v1xWEx84q8AesdmkPZAD1nGr4hyc8zWTxBlnOr0NNGF3RB6VyYpamQGU1b2e0OdkyKvqnqWLpqfkLkLHqt",
        "ptHQPJnOmV4x+QNqJk27/aj+qfz79A/aYYX2dXbHC9gdH0qzG+AK6RFBjEHL+Wkkh6ovqyLWYwwdQqfSYOt7YNHJcfCp",
        "J2pYx1exqIkBrwsgTdkQk8WybIG57HcNCtQV2x5KX3lf6yb2Za53bOHk2MPgr4O0VF+5KvInZDKWnoCUm+soClYriccZ",
        "35BJ3+OyXzP3wgu0VAtG58fkWdyXcQ+401XjAjuPekr0D4VW+w1O4QIDAQABo1MwUTAdBgNVHQ4EFgQUmymoUo1KGu0i",
        "+AUbFBK73wYYGXwwHwYDVR0jBBgwFoAUmymoUo1KGu0i+AUbFBK73wYYGXwwDwYDVR0TAQH/BAUwAwEB/zANBgkqhkiG",
        "9w0BAQsFAAOCAQEAhR6LlJOCf96yAo8/HkctlTt5X0Yhtg2/PyERo5b3N0LD1P1Hm1zeU/7EuW3DN6PYHcOMVlgTXq/o",
        "N9rZPyj0rOtcUUNDa/LSLQ69bHtN6V9Kb5OIdErqLL5rdB9uq/zQzQj1rlYwRLnxW1hFhlvsNEh0mgPdn8BYXE2Rmgmo",
        "4Zdgxnopaz96O5hwLzlonbz8OPxhJNkgFzZ3nQFC97rUyN9QS8948tVbm29vJs3do+U6UuZsOWuUTZpqox3tHGtnmAqh",
        "mLuBOxKV5LLFDWfG7oltQDxMPQSrECchw/3mTGAmKdj80FkuBK8w3EzEFLGqVnmaIt+WceoyuD7K+yaCtg==",
    );
    const DEC_01_2026_200102: i64 = 1_796_155_262; // every fixture's notBefore

    fn decode(base64: &str) -> Vec<u8> {
        let (mut out, mut acc, mut bits) = (Vec::new(), 0u32, 0);
        for c in base64.bytes().filter(|&c| c != b'=') {
            let v = match c {
                b'A'..=b'Z' => c - b'A',
                b'a'..=b'z' => c - b'a' + 26,
                b'0'..=b'9' => c - b'0' + 52,
                b'+' => 62,
                b'/' => 63,
                _ => panic!("not base64: {c}"),
            };
            (acc, bits) = ((acc << 6 | u32::from(v)) & 0xfff, bits + 6);
            if bits >= 8 {
                bits -= 8;
                out.push((acc >> bits) as u8);
            }
        }
        out
    }

    /// `der` with the first `from` overwritten by `to` (of the same length).
    fn patched(der: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
        let at = der.windows(from.len()).position(|w| w == from).unwrap();
        let mut out = der.to_vec();
        out[at..at + to.len()].copy_from_slice(to);
        out
    }

    #[test]
    fn reads_what_openssl_wrote() {
        for (fixture, len, after) in [
            (EC_UTC, 369, 1_798_747_262),      // 2026-12-31 20:01:02Z, UTCTime
            (GENERALIZED, 369, 3_524_155_262), // 2081-09-03 20:01:02Z, GeneralizedTime
            (RSA, 1027, 1_830_456_062),        // 2028-01-02 20:01:02Z, 0x81 and 0x82 lengths
        ] {
            let der = decode(fixture);
            assert_eq!(der.len(), len);
            assert_eq!(validity(&der), Some((DEC_01_2026_200102, after)));
        }
    }

    #[test]
    fn refuses_anything_else_without_panicking() {
        let der = decode(RSA);
        for n in 0..der.len() {
            assert_eq!(validity(&der[..n]), None, "prefix of {n} bytes");
        }
        assert_eq!(validity(&[der.as_slice(), &[0]].concat()), None);
        assert_eq!(validity(b"not a certificate"), None);
        // Every byte flipped in turn: whatever comes out, nothing panics.
        for at in 0..der.len() {
            let mut flipped = der.clone();
            flipped[at] ^= 0xff;
            let _ = validity(&flipped);
        }
        let ec = decode(EC_UTC);
        for bad in [&b"261231200102+"[..], b"261331200102Z", b"260231200102Z"] {
            assert_eq!(validity(&patched(&ec, b"261231200102Z", bad)), None);
        }
        assert_eq!(
            validity(&patched(&ec, b"261201200102Z", b"261200200102Z")),
            None
        );
    }

    #[test]
    fn times_follow_rfc_5280() {
        let t = |s: &[u8]| time(&[&[s[0], (s.len() - 1) as u8], &s[1..]].concat()).map(|t| t.0);
        assert_eq!(t(b"\x17491231235959Z"), Some(2_524_607_999)); // 2049
        assert_eq!(t(b"\x17500101000000Z"), Some(-631_152_000)); // 1950
        assert_eq!(t(b"\x17991231235959Z"), Some(946_684_799));
        assert_eq!(t(b"\x1820000229120000Z"), Some(951_825_600));
        assert_eq!(t(b"\x1899991231235959Z"), Some(253_402_300_799));
        for bad in [
            &b"\x1819000229120000Z"[..], // not a leap year
            b"\x1820001301000000Z",      // month 13
            b"\x1820000001000000Z",      // month 0
            b"\x1820000100000000Z",      // day 0
            b"\x1820000101240000Z",      // hour 24
            b"\x1820000101006000Z",      // minute 60
            b"\x1820000101000060Z",      // second 60
            b"\x1820000101000000",       // no Z
            b"\x1820000101000000+0100",  // an offset
            b"\x1820000101000000.5Z",    // a fraction
            b"\x1700010100000Z",         // a digit short
            b"\x17-10101000000Z",        // not a digit
            b"\x1a000101000000Z",        // not a time
        ] {
            assert_eq!(t(bad), None, "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn lengths() {
        let big = [&[0x04, 0x83, 0x01, 0x00, 0x01][..], &[7; 0x1_0001], &[9]].concat();
        let (contents, rest) = tlv(&big, 0x04).unwrap();
        assert_eq!((contents.len(), rest), (0x1_0001, &[9][..]));
        assert_eq!(tlv(&[0x04, 0x82, 0x01], 0x04), None);
        assert_eq!(tlv(&[0x30, 0x80, 0x00, 0x00], 0x30), None); // indefinite
        assert_eq!(tlv(&[0x04, 0x84, 0, 0, 0, 1, 0], 0x04), None);
        assert_eq!(tlv(&[0x04, 0x01, 0xaa], 0x05), None);
    }
}
