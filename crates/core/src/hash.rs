//! The one place hashes come from: SHA-1, SHA-256, MD5, HMAC-SHA-256 and
//! PBKDF2-HMAC-SHA-256, as plain functions over byte slices.
//!
//! Who uses what:
//! - [`sha1()`]: MySQL's `mysql_native_password` scramble
//!   ([`native_password`](crate::mysql::native_password));
//! - [`md5()`] (with [`hex`]): keepalived's `HTTP_GET` digest, which `doctor`
//!   prints and `gen` writes as `genhash` would; PostgreSQL's `md5`
//!   authentication (to come);
//! - [`sha256`], [`hmac_sha256`] and [`pbkdf2_hmac_sha256`]: PostgreSQL's
//!   SCRAM-SHA-256 (RFC 5802, RFC 7677; to come).
//!
//! The protocols fix the hashes; nothing here relies on SHA-1 or MD5 being
//! collision resistant. Each function is a thin call into RustCrypto's
//! crates (`sha1`, `sha2`, `md-5`, `hmac`, `pbkdf2`), built without their
//! default features (no `alloc`, no ASN.1 object identifiers) and pure Rust
//! (no asm, no C). They run nothing at start-up: a poll that hashes nothing
//! pays only for their few KiB of code in the binary, and the SHA-1 and
//! SHA-256 code tests the CPU's SHA extensions once, on the first hash.
//! What they cost per poll, measured, is in docs/design.md
//! ("Dependencies, and what each costs per poll").

use hmac::{Hmac, KeyInit, Mac};
use md5::Md5;
use sha1::{Digest, Sha1};
use sha2::Sha256;

/// The SHA-1 digest of `data` (FIPS 180-4).
pub fn sha1(data: &[u8]) -> [u8; 20] {
    Sha1::digest(data).into()
}

/// The SHA-256 digest of `data` (FIPS 180-4).
pub fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// The MD5 digest of `data` (RFC 1321).
pub fn md5(data: &[u8]) -> [u8; 16] {
    Md5::digest(data).into()
}

/// HMAC-SHA-256 of `data` under `key` (RFC 2104); a key of any length.
pub fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes a key of any length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// PBKDF2 with HMAC-SHA-256 (RFC 8018), one 32-byte block: SCRAM-SHA-256's
/// `Hi(password, salt, iterations)`, its `SaltedPassword`.
///
/// The cost grows with `iterations` (PostgreSQL's default is 4096: about
/// 8,200 SHA-256 compressions), which is why SCRAM keeps the derived keys
/// rather than calling this on every poll.
pub fn pbkdf2_hmac_sha256(password: &[u8], salt: &[u8], iterations: u32) -> [u8; 32] {
    let mut out = [0u8; 32];
    pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, iterations, &mut out);
    out
}

/// `bytes` as lowercase hexadecimal, two digits a byte, as `md5sum` and
/// keepalived's `genhash` print a digest.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(2 * bytes.len());
    for &b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_digits() {
        assert_eq!(hex(&[]), "");
        assert_eq!(hex(&[0x00, 0x0f, 0xa5, 0xff]), "000fa5ff");
    }

    #[test]
    fn sha1_fips_vectors() {
        assert_eq!(hex(&sha1(b"")), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
        assert_eq!(
            hex(&sha1(b"abc")),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
        assert_eq!(
            hex(&sha1(
                b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"
            )),
            "84983e441c3bd26ebaae4aa1f95129e5e54670f1"
        );
        assert_eq!(
            hex(&sha1(&vec![b'a'; 1_000_000])),
            "34aa973cd4c4daa4f61eeb2bdbad27316534016f"
        );
    }

    #[test]
    fn sha1_around_the_padding_boundary() {
        // Lengths 55, 56 and 64 take the second padding block or not;
        // digests from Python's hashlib.
        assert_eq!(
            hex(&sha1(&[b'x'; 55])),
            "cef734ba81a024479e09eb5a75b6ddae62e6abf1"
        );
        assert_eq!(
            hex(&sha1(&[b'x'; 56])),
            "901305367c259952f4e7af8323f480d59f81335b"
        );
        assert_eq!(
            hex(&sha1(&[b'x'; 64])),
            "bb2fa3ee7afb9f54c6dfb5d021f14b1ffe40c163"
        );
    }

    #[test]
    fn sha256_fips_vectors() {
        assert_eq!(
            hex(&sha256(b"")),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            hex(&sha256(b"abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            hex(&sha256(
                b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"
            )),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
        );
    }

    #[test]
    fn md5_reference_vectors() {
        // RFC 1321, appendix A.5.
        for (input, digest) in [
            ("", "d41d8cd98f00b204e9800998ecf8427e"),
            ("a", "0cc175b9c0f1b6a831c399e269772661"),
            ("abc", "900150983cd24fb0d6963f7d28e17f72"),
            ("message digest", "f96b697d7cb7938d525a2f31aaf161d0"),
            (
                "abcdefghijklmnopqrstuvwxyz",
                "c3fcd3d76192e4007dfb496cca67e13b",
            ),
            (
                "12345678901234567890123456789012345678901234567890123456789012345678901234567890",
                "57edf4a22be3c955ac49da2e2107b67a",
            ),
        ] {
            assert_eq!(hex(&md5(input.as_bytes())), digest, "{input:?}");
        }
    }

    #[test]
    fn hmac_sha256_rfc4231_vectors() {
        let long_key = [0xaa; 131];
        for (case, key, data, mac) in [
            (
                1,
                &[0x0b; 20][..],
                &b"Hi There"[..],
                "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
            ),
            (
                2,
                b"Jefe",
                b"what do ya want for nothing?",
                "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
            ),
            (
                3,
                &[0xaa; 20],
                &[0xdd; 50],
                "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe",
            ),
            (
                4,
                &(1..=25).collect::<Vec<u8>>(),
                &[0xcd; 50],
                "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b",
            ),
            // A key longer than the block is hashed first.
            (
                6,
                &long_key,
                b"Test Using Larger Than Block-Size Key - Hash Key First",
                "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
            ),
            (
                7,
                &long_key,
                b"This is a test using a larger than block-size key and a larger \
                  than block-size data. The key needs to be hashed before being \
                  used by the HMAC algorithm.",
                "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2",
            ),
        ] {
            assert_eq!(hex(&hmac_sha256(key, data)), mac, "RFC 4231 case {case}");
        }
    }

    #[test]
    fn pbkdf2_hmac_sha256_vectors() {
        // RFC 6070's inputs with SHA-256 (its vectors are for SHA-1), the
        // 32-byte results as published for PBKDF2-HMAC-SHA256 and checked
        // against Python's hashlib.pbkdf2_hmac.
        for (password, salt, iterations, key) in [
            (
                &b"password"[..],
                &b"salt"[..],
                1,
                "120fb6cffcf8b32c43e7225256c4f837a86548c92ccc35480805987cb70be17b",
            ),
            (
                b"password",
                b"salt",
                2,
                "ae4d0c95af6b46d32d0adff928f06dd02a303f8ef3c251dfd6e2d85a95474c43",
            ),
            (
                b"password",
                b"salt",
                4096,
                "c5e478d59288c841aa530db6845c4c8d962893a001ce4e11a4963873aa98134a",
            ),
            (
                b"passwordPASSWORDpassword",
                b"saltSALTsaltSALTsaltSALTsaltSALTsalt",
                4096,
                "348c89dbcbd32b2f32d814b8116e84cf2b17347ebc1800181c4e2a1fb8dd53e1",
            ),
            (
                b"pass\0word",
                b"sa\0lt",
                4096,
                "89b69d0516f829893c696226650a86878c029ac13ee276509d5ae58b6466a724",
            ),
            // RFC 7914 section 11 (dkLen 64): its first block.
            (
                b"passwd",
                b"salt",
                1,
                "55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc",
            ),
        ] {
            assert_eq!(
                hex(&pbkdf2_hmac_sha256(password, salt, iterations)),
                key,
                "{password:?} {salt:?} {iterations}"
            );
        }
    }

    /// Standard base64 with padding, for comparing with RFC 7677's text.
    fn base64(bytes: &[u8]) -> String {
        const ALPHABET: &[u8; 64] =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut out = String::new();
        for chunk in bytes.chunks(3) {
            let n = chunk
                .iter()
                .enumerate()
                .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
            for i in 0..4 {
                if i <= chunk.len() {
                    out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
                } else {
                    out.push('=');
                }
            }
        }
        out
    }

    #[test]
    fn scram_sha256_rfc7677_exchange() {
        // RFC 7677 section 3: user "user", password "pencil".
        let salt = [
            0x5b, 0x6d, 0x99, 0x68, 0x9d, 0x12, 0x35, 0x8e, 0xec, 0xa0, 0x4b, 0x14, 0x12, 0x36,
            0xfa, 0x81,
        ];
        assert_eq!(base64(&salt), "W22ZaJ0SNY7soEsUEjb6gQ==");
        let salted_password = pbkdf2_hmac_sha256(b"pencil", &salt, 4096);
        let client_key = hmac_sha256(&salted_password, b"Client Key");
        let stored_key = sha256(&client_key);
        let server_key = hmac_sha256(&salted_password, b"Server Key");
        // The intermediate keys, from Python's hashlib and hmac.
        assert_eq!(
            hex(&salted_password),
            "c4a49510323ab4f952cac1fa99441939e78ea74d6be81ddf7096e87513dc615d"
        );
        assert_eq!(
            hex(&client_key),
            "a60fc923d67e8644a92d16b96eda5ef4656b0c725c484374be25535576996e8b"
        );
        assert_eq!(
            hex(&stored_key),
            "586e5df283e6dceb5c3e791d8b8528ec191e664045ce971792e2e6b5bb13e2a6"
        );
        assert_eq!(
            hex(&server_key),
            "c1f3cbc1c13a9d35a14c0990eed97629ea225863e566a4314ab99f3f00e5d9d5"
        );
        // The exchange's proof and the server's signature, as the RFC
        // prints them.
        let client_first_bare = "n=user,r=rOprNGfwEbeRWgbNEkqO";
        let server_first = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
                            s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
        let client_final_without_proof =
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
        let auth_message =
            format!("{client_first_bare},{server_first},{client_final_without_proof}");
        let client_signature = hmac_sha256(&stored_key, auth_message.as_bytes());
        let proof: Vec<u8> = client_key
            .iter()
            .zip(client_signature)
            .map(|(k, s)| k ^ s)
            .collect();
        assert_eq!(
            base64(&proof),
            "dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
        );
        assert_eq!(
            base64(&hmac_sha256(&server_key, auth_message.as_bytes())),
            "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
        );
    }
}
