//! SCRAM-SHA-256 (RFC 5802, RFC 7677) as PostgreSQL speaks it: the
//! client's side of one exchange, pure, with the derived keys handed in or
//! out so that PBKDF2 (4096 iterations by default, most of a login's CPU)
//! is paid once per salt, not on every poll.
//!
//! PostgreSQL takes the user from the startup message and ignores SCRAM's
//! `n=`, and a check asks for no channel binding: the GS2 header is `n,,`.

use crate::hash::{hmac_sha256, pbkdf2_hmac_sha256, sha256};

/// The mechanism's name, as the server offers it.
pub const MECHANISM: &str = "SCRAM-SHA-256";

/// What PBKDF2 derives from a password for one salt and iteration count:
/// all a client needs to prove it knows the password and to check the
/// server's signature. No more secret than the password it comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Keys {
    /// `HMAC(SaltedPassword, "Client Key")`.
    pub client_key: [u8; 32],
    /// `HMAC(SaltedPassword, "Server Key")`.
    pub server_key: [u8; 32],
}

impl Keys {
    /// Derives the keys: the expensive step.
    pub fn derive(password: &str, salt: &[u8], iterations: u32) -> Keys {
        // PostgreSQL's clients apply SASLprep; for the ASCII passwords
        // monitoring accounts use it changes nothing.
        let salted = pbkdf2_hmac_sha256(password.as_bytes(), salt, iterations);
        Keys {
            client_key: hmac_sha256(&salted, b"Client Key"),
            server_key: hmac_sha256(&salted, b"Server Key"),
        }
    }
}

/// Why an exchange cannot go on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ScramError {
    /// The server's first message is not `r=…,s=…,i=…`.
    #[error("malformed SCRAM server-first message")]
    ServerFirst,
    /// The server's nonce does not extend ours.
    #[error("the server's SCRAM nonce does not extend the client's")]
    Nonce,
    /// An iteration count out of bounds (0, or absurdly large).
    #[error("SCRAM iteration count out of bounds")]
    Iterations,
    /// The server's final message is not `v=…`, or is an error `e=…`.
    #[error("malformed or failed SCRAM server-final message")]
    ServerFinal,
    /// The server's signature is wrong: it does not know the password.
    #[error("the server's SCRAM signature does not verify")]
    Signature,
}

/// The client's side of one exchange.
#[derive(Debug)]
pub struct Client {
    client_nonce: String,
    client_first_bare: String,
    auth_message: Option<Vec<u8>>,
    server_key: Option<[u8; 32]>,
}

/// What the server's first message says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Challenge {
    /// The full nonce (ours, then the server's).
    pub nonce: String,
    /// The salt, decoded.
    pub salt: Vec<u8>,
    /// The iteration count.
    pub iterations: u32,
}

impl Client {
    /// Starts an exchange with `nonce` (printable, no comma: base64 of
    /// random bytes).
    pub fn new(nonce: &str) -> Client {
        Client {
            client_nonce: nonce.to_owned(),
            client_first_bare: format!("n=,r={nonce}"),
            auth_message: None,
            server_key: None,
        }
    }

    /// The client's first message (`SASLInitialResponse`'s data).
    pub fn first(&self) -> Vec<u8> {
        format!("n,,{}", self.client_first_bare).into_bytes()
    }

    /// Reads the server's first message: the nonce, salt and iterations,
    /// with which the caller finds (or derives) the [`Keys`].
    ///
    /// # Errors
    /// [`ScramError`] for a message that is not a valid server-first.
    pub fn challenge(&self, server_first: &[u8]) -> Result<Challenge, ScramError> {
        let text = std::str::from_utf8(server_first).map_err(|_| ScramError::ServerFirst)?;
        let (mut nonce, mut salt, mut iterations) = (None, None, None);
        for attr in text.split(',') {
            match attr.split_once('=') {
                Some(("r", v)) => nonce = Some(v),
                Some(("s", v)) => salt = Some(base64_decode(v).ok_or(ScramError::ServerFirst)?),
                Some(("i", v)) => {
                    iterations = Some(v.parse::<u32>().map_err(|_| ScramError::Iterations)?)
                }
                _ => {}
            }
        }
        let (Some(nonce), Some(salt), Some(iterations)) = (nonce, salt, iterations) else {
            return Err(ScramError::ServerFirst);
        };
        if !nonce.starts_with(&self.client_nonce) || nonce.len() <= self.client_nonce.len() {
            return Err(ScramError::Nonce);
        }
        // PostgreSQL's default is 4096; a server asking for millions would
        // make every poll miss its deadline deriving keys.
        if iterations == 0 || iterations > 1_000_000 {
            return Err(ScramError::Iterations);
        }
        Ok(Challenge {
            nonce: nonce.to_owned(),
            salt,
            iterations,
        })
    }

    /// The client's final message (`SASLResponse`'s data) for
    /// `server_first` and its challenge, proved with `keys`.
    pub fn finish(&mut self, server_first: &[u8], challenge: &Challenge, keys: &Keys) -> Vec<u8> {
        let without_proof = format!("c=biws,r={}", challenge.nonce);
        let mut auth_message = Vec::with_capacity(256);
        auth_message.extend_from_slice(self.client_first_bare.as_bytes());
        auth_message.push(b',');
        auth_message.extend_from_slice(server_first);
        auth_message.push(b',');
        auth_message.extend_from_slice(without_proof.as_bytes());
        let stored_key = sha256(&keys.client_key);
        let signature = hmac_sha256(&stored_key, &auth_message);
        let mut proof = keys.client_key;
        for (p, s) in proof.iter_mut().zip(signature) {
            *p ^= s;
        }
        self.auth_message = Some(auth_message);
        self.server_key = Some(keys.server_key);
        format!("{without_proof},p={}", base64_encode(&proof)).into_bytes()
    }

    /// Checks the server's final message: it proves the server knows the
    /// password too.
    ///
    /// # Errors
    /// [`ScramError::ServerFinal`] or [`ScramError::Signature`].
    pub fn verify(&self, server_final: &[u8]) -> Result<(), ScramError> {
        let (Some(auth_message), Some(server_key)) = (&self.auth_message, &self.server_key) else {
            return Err(ScramError::ServerFinal);
        };
        let text = std::str::from_utf8(server_final).map_err(|_| ScramError::ServerFinal)?;
        let v = text
            .split(',')
            .find_map(|a| a.strip_prefix("v="))
            .ok_or(ScramError::ServerFinal)?;
        let got = base64_decode(v).ok_or(ScramError::ServerFinal)?;
        let want = hmac_sha256(server_key, auth_message);
        if got == want {
            Ok(())
        } else {
            Err(ScramError::Signature)
        }
    }
}

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding, as SCRAM writes it.
pub fn base64_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Standard base64, padding required; `None` for anything else.
pub fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let bytes = text.as_bytes();
    if !bytes.len().is_multiple_of(4) {
        return None;
    }
    let value = |c: u8| ALPHABET.iter().position(|&a| a == c).map(|v| v as u32);
    let mut out = Vec::with_capacity(bytes.len() / 4 * 3);
    for (i, chunk) in bytes.chunks(4).enumerate() {
        let last = i == bytes.len() / 4 - 1;
        let pad = chunk.iter().rev().take_while(|&&c| c == b'=').count();
        if pad > 2 || (pad > 0 && !last) {
            return None;
        }
        let mut n = 0u32;
        for &c in &chunk[..4 - pad] {
            n = n << 6 | value(c)?;
        }
        n <<= 6 * pad as u32;
        // Bits past the last byte must be zero: one text per value.
        if n & ((1u32 << (8 * pad)) - 1) != 0 {
            return None;
        }
        let got = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&got[..3 - pad]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips_and_refuses_garbage() {
        for (raw, text) in [
            (&b""[..], ""),
            (b"f", "Zg=="),
            (b"fo", "Zm8="),
            (b"foo", "Zm9v"),
            (b"foob", "Zm9vYg=="),
            (b"n,,", "biws"),
        ] {
            assert_eq!(base64_encode(raw), text);
            assert_eq!(base64_decode(text).as_deref(), Some(raw));
        }
        for bad in [
            "Zg=",
            "Z===",
            "Zg==Zg==",
            "Zm9*",
            "\u{e9}abc",
            "Zh==",
            "Zm9=",
            "Zm8",
        ] {
            assert_eq!(base64_decode(bad), None, "{bad}");
        }
    }

    /// RFC 7677's example (user `user`, password `pencil`). PostgreSQL
    /// leaves `n=` empty, so the exchange is replayed with that client
    /// first message; the keys, which do not depend on it, are RFC 7677's.
    #[test]
    fn rfc_7677_keys_and_a_full_exchange() {
        let salt = base64_decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let keys = Keys::derive("pencil", &salt, 4096);
        // ClientProof and ServerSignature depend on the AuthMessage; the
        // keys are checked through StoredKey, which RFC 7677 implies by its
        // proof: recompute the RFC's own AuthMessage.
        let rfc_auth = "n=user,r=rOprNGfwEbeRWgbNEkqO,\
            r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,\
            c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
        let stored = sha256(&keys.client_key);
        let signature = hmac_sha256(&stored, rfc_auth.as_bytes());
        let mut proof = keys.client_key;
        for (p, s) in proof.iter_mut().zip(signature) {
            *p ^= s;
        }
        assert_eq!(
            base64_encode(&proof),
            "dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
        );
        assert_eq!(
            base64_encode(&hmac_sha256(&keys.server_key, rfc_auth.as_bytes())),
            "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
        );

        // The client's own exchange, with PostgreSQL's empty n=.
        let mut client = Client::new("rOprNGfwEbeRWgbNEkqO");
        assert_eq!(client.first(), b"n,,n=,r=rOprNGfwEbeRWgbNEkqO");
        let server_first =
            b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
        let challenge = client.challenge(server_first).unwrap();
        assert_eq!((challenge.iterations, challenge.salt.len()), (4096, 16));
        let last = client.finish(server_first, &challenge, &keys);
        let last = String::from_utf8(last).unwrap();
        assert!(last.starts_with("c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p="));
        // The server's signature over the same AuthMessage verifies; any
        // other does not.
        let auth = format!(
            "n=,r=rOprNGfwEbeRWgbNEkqO,{},c=biws,r={}",
            std::str::from_utf8(server_first).unwrap(),
            challenge.nonce
        );
        let v = base64_encode(&hmac_sha256(&keys.server_key, auth.as_bytes()));
        assert_eq!(client.verify(format!("v={v}").as_bytes()), Ok(()));
        assert_eq!(
            client.verify(b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="),
            Err(ScramError::Signature)
        );
        assert_eq!(
            client.verify(b"e=invalid-proof"),
            Err(ScramError::ServerFinal)
        );
    }

    #[test]
    fn hostile_server_first_messages() {
        let client = Client::new("abc");
        for bad in [
            &b"r=xyz,s=QQ==,i=4096"[..],
            b"r=abc,s=QQ==,i=4096",
            b"r=abcd,s=Q,i=4096",
            b"r=abcd,s=QQ==,i=0",
            b"r=abcd,s=QQ==,i=99999999",
            b"r=abcd,i=4096",
            b"\xff",
        ] {
            assert!(client.challenge(bad).is_err(), "{bad:?}");
        }
        assert!(client.challenge(b"r=abcd,s=QQ==,i=4096").is_ok());
    }
}
