//! The handshake: the server's greeting, the client's
//! `HandshakeResponse41`, the `mysql_native_password` scramble, and the
//! replies during authentication (OK, error, an authentication switch), which
//! are also the replies to a simple command such as `COM_PING`. Pure;
//! [`Conn::authenticate`](super::Conn::authenticate) drives it.

use super::error::{ProtocolError, ServerError};
use super::frame::{nul_terminated, take, MAX_PACKET};
use crate::hash::sha1;

/// Capability flags (the subset this client uses).
pub mod caps {
    /// New, longer password hashes.
    pub const LONG_PASSWORD: u32 = 0x1;
    /// More column flags in column definitions.
    pub const LONG_FLAG: u32 = 0x4;
    /// The 4.1 protocol: SQL states in errors, 4-byte capabilities.
    pub const PROTOCOL_41: u32 = 0x200;
    /// Transaction status in OK packets.
    pub const TRANSACTIONS: u32 = 0x2000;
    /// A length-prefixed authentication response.
    pub const SECURE_CONNECTION: u32 = 0x8000;
    /// Several result sets per query.
    pub const MULTI_RESULTS: u32 = 0x2_0000;
    /// Authentication plugins named in the handshake.
    pub const PLUGIN_AUTH: u32 = 0x8_0000;
}

/// The plugin behind `IDENTIFIED BY 'password'`.
pub const NATIVE_PASSWORD: &str = "mysql_native_password";

/// The server's first packet (protocol 10).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Greeting {
    /// The version string as sent (MariaDB prefixes `5.5.5-`).
    pub server_version: String,
    /// The connection's thread id.
    pub connection_id: u32,
    /// The server's capability flags.
    pub capabilities: u32,
    /// The 20-byte scramble for password authentication.
    pub scramble: Vec<u8>,
    /// The server's default authentication plugin.
    pub auth_plugin: String,
}

/// The first packet: a greeting, or an error (too many connections, host
/// blocked) sent in its place.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FirstPacket {
    /// A protocol-10 greeting.
    Greeting(Greeting),
    /// An error instead of a greeting.
    Error(ServerError),
}

impl Greeting {
    /// Parses the first packet's payload.
    pub fn parse(payload: &[u8]) -> Result<FirstPacket, ProtocolError> {
        match payload.first() {
            Some(0xFF) => return ServerError::parse(payload).map(FirstPacket::Error),
            Some(10) => {}
            Some(_) => return Err(ProtocolError("not protocol version 10")),
            None => return Err(ProtocolError("empty greeting")),
        }
        let (version, rest) = nul_terminated(&payload[1..]);
        let connection_id = u32::from_le_bytes(take::<4>(rest, 0)?);
        let mut scramble = take::<8>(rest, 4)?.to_vec();
        let cap_low = u16::from_le_bytes(take::<2>(rest, 13)?);
        let mut capabilities = u32::from(cap_low);
        let mut auth_plugin = NATIVE_PASSWORD.to_owned();
        let ext = &rest[15.min(rest.len())..];
        if ext.len() >= 16 {
            // charset (1), status (2), capabilities high (2), scramble
            // length (1), reserved (10: MariaDB keeps its own flags there).
            capabilities |= u32::from(u16::from_le_bytes([ext[3], ext[4]])) << 16;
            let scramble_len = usize::from(ext[5]);
            let mut tail = &ext[16..];
            if capabilities & caps::SECURE_CONNECTION != 0 {
                let part2 = scramble_len.saturating_sub(8).max(13).min(tail.len());
                // The second part ends with a NUL that is not scramble.
                let (bytes, _) = nul_terminated(&tail[..part2]);
                scramble.extend_from_slice(bytes);
                tail = &tail[part2..];
            }
            if capabilities & caps::PLUGIN_AUTH != 0 && !tail.is_empty() {
                let (name, _) = nul_terminated(tail);
                auth_plugin = String::from_utf8_lossy(name).into_owned();
            }
        }
        Ok(FirstPacket::Greeting(Greeting {
            server_version: String::from_utf8_lossy(version).into_owned(),
            connection_id,
            capabilities,
            scramble,
            auth_plugin,
        }))
    }

    /// The version without MariaDB's `5.5.5-` compatibility prefix.
    pub fn version(&self) -> &str {
        self.server_version
            .strip_prefix("5.5.5-")
            .unwrap_or(&self.server_version)
    }
}

/// The `mysql_native_password` response:
/// `SHA1(pw) XOR SHA1(scramble + SHA1(SHA1(pw)))`; empty for no password.
pub fn native_password(password: &[u8], scramble: &[u8]) -> Vec<u8> {
    if password.is_empty() {
        return Vec::new();
    }
    let stage1 = sha1(password);
    let stage2 = sha1(&stage1);
    let mut salted = Vec::with_capacity(scramble.len() + 20);
    salted.extend_from_slice(scramble);
    salted.extend_from_slice(&stage2);
    let mask = sha1(&salted);
    stage1.iter().zip(mask).map(|(a, b)| a ^ b).collect()
}

/// The capabilities this client asks for, as far as the server offers them.
pub fn client_capabilities(server: u32) -> u32 {
    (caps::LONG_PASSWORD
        | caps::LONG_FLAG
        | caps::PROTOCOL_41
        | caps::TRANSACTIONS
        | caps::SECURE_CONNECTION
        | caps::MULTI_RESULTS
        | caps::PLUGIN_AUTH)
        & server
}

/// A `HandshakeResponse41` payload.
pub fn handshake_response(capabilities: u32, user: &str, auth: &[u8], plugin: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + user.len() + auth.len() + plugin.len());
    out.extend_from_slice(&capabilities.to_le_bytes());
    out.extend_from_slice(&(MAX_PACKET as u32).to_le_bytes());
    out.push(45); // utf8mb4_general_ci
    out.extend_from_slice(&[0; 23]);
    out.extend_from_slice(user.as_bytes());
    out.push(0);
    out.push(auth.len().min(255) as u8);
    out.extend_from_slice(&auth[..auth.len().min(255)]);
    if capabilities & caps::PLUGIN_AUTH != 0 {
        out.extend_from_slice(plugin.as_bytes());
        out.push(0);
    }
    out
}

/// What a reply packet is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    /// OK (0x00).
    Ok,
    /// An error.
    Err(ServerError),
    /// The server wants another authentication plugin.
    AuthSwitch {
        /// The plugin's name.
        plugin: String,
        /// Its data (a new scramble for `mysql_native_password`).
        data: Vec<u8>,
    },
    /// More authentication data (0x01), used by plugins not supported here.
    AuthMoreData,
    /// Anything else, by its first byte.
    Other(u8),
}

impl Reply {
    /// Classifies a reply during authentication or to a simple command.
    pub fn classify(payload: &[u8]) -> Result<Reply, ProtocolError> {
        Ok(match payload.first() {
            Some(0x00) => Reply::Ok,
            Some(0xFF) => Reply::Err(ServerError::parse(payload)?),
            Some(0xFE) => {
                let (plugin, data) = nul_terminated(&payload[1..]);
                let (data, _) = match data.last() {
                    Some(0) => (&data[..data.len() - 1], ()),
                    _ => (data, ()),
                };
                Reply::AuthSwitch {
                    plugin: String::from_utf8_lossy(plugin).into_owned(),
                    data: data.to_vec(),
                }
            }
            Some(0x01) => Reply::AuthMoreData,
            Some(&b) => Reply::Other(b),
            None => return Err(ProtocolError("empty reply")),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mysql::scripted::*;

    #[test]
    fn greeting_fields() {
        let FirstPacket::Greeting(g) = Greeting::parse(&greeting_bytes(NATIVE_PASSWORD)).unwrap()
        else {
            panic!()
        };
        assert_eq!(g.server_version, VERSION);
        assert_eq!(g.version(), "10.11.6-MariaDB-0+deb12u1");
        assert_eq!(g.connection_id, 42);
        assert_eq!(g.scramble, SCRAMBLE);
        assert_eq!(g.auth_plugin, NATIVE_PASSWORD);
        assert!(g.capabilities & caps::PLUGIN_AUTH != 0);
    }

    #[test]
    fn every_truncated_greeting_is_an_error_not_a_panic() {
        let g = greeting_bytes(NATIVE_PASSWORD);
        for cut in 0..g.len() {
            // Short greetings either fail or parse their prefix; never panic.
            let _ = Greeting::parse(&g[..cut]);
        }
        assert!(Greeting::parse(&g[..10]).is_err());
        assert_eq!(
            Greeting::parse(&[9, 0]),
            Err(ProtocolError("not protocol version 10"))
        );
    }

    #[test]
    fn error_instead_of_greeting() {
        let mut p = vec![0xFF];
        p.extend_from_slice(&1129u16.to_le_bytes());
        p.extend_from_slice(b"Host '10.0.0.5' is blocked because of many connection errors");
        let FirstPacket::Error(e) = Greeting::parse(&p).unwrap() else {
            panic!()
        };
        assert_eq!(e.code, 1129);
        assert_eq!(e.sql_state, None);
        assert_eq!(
            e.to_string(),
            "server error 1129: Host '10.0.0.5' is blocked because of many connection errors"
        );
    }

    #[test]
    fn native_password_matches_the_reference() {
        // From Python: sha1(pw) XOR sha1(seed + sha1(sha1(pw))), seed 1..=20.
        let seed: Vec<u8> = (1..=20).collect();
        let hex: String = native_password(b"monitor-pw", &seed)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(hex, "4e401c8365cf3af95534834f565cea879e69625d");
        assert!(native_password(b"", &seed).is_empty());
    }
}
