//! Packets on the wire: the frame around each payload (a 3-byte length and
//! a sequence number, split at 16 MiB) and the encodings of the fields
//! inside one (fixed-width integers, NUL-terminated and length-encoded
//! strings). Pure, over `&[u8]`.

use super::error::ProtocolError;

/// Largest packet accepted: far above any greeting, status row or error, and
/// a bound on what a broken or hostile server can make us allocate.
pub const MAX_PACKET: usize = 1 << 20;

/// The largest payload one packet header can carry (a 3-byte length).
const MAX_CHUNK: usize = 0xFF_FFFF;

/// Frames `payload` as packets starting at sequence number `seq`; returns
/// them and the next sequence number. A payload of 16 MiB - 1 bytes or
/// more is split into chunks of that size, each with its own header and
/// number, ended by a shorter (possibly empty) one, as the protocol says.
pub fn frame(payload: &[u8], mut seq: u8) -> (Vec<u8>, u8) {
    let mut out = Vec::with_capacity(payload.len() + 4 * (1 + payload.len() / MAX_CHUNK));
    let mut rest = payload;
    loop {
        let chunk = &rest[..rest.len().min(MAX_CHUNK)];
        out.extend_from_slice(&(chunk.len() as u32).to_le_bytes()[..3]);
        out.push(seq);
        out.extend_from_slice(chunk);
        seq = seq.wrapping_add(1);
        rest = &rest[chunk.len()..];
        if chunk.len() < MAX_CHUNK {
            return (out, seq);
        }
    }
}

/// The `N` bytes at `at`, or "packet too short".
pub(super) fn take<const N: usize>(buf: &[u8], at: usize) -> Result<[u8; N], ProtocolError> {
    buf.get(at..at + N)
        .and_then(|s| s.try_into().ok())
        .ok_or(ProtocolError("packet too short"))
}

/// The bytes before the first NUL and those after it (all of `buf` and
/// nothing when there is no NUL).
pub(super) fn nul_terminated(buf: &[u8]) -> (&[u8], &[u8]) {
    match buf.iter().position(|&b| b == 0) {
        Some(i) => (&buf[..i], &buf[i + 1..]),
        None => (buf, &[]),
    }
}

/// Reads a length-encoded integer; returns it and the bytes after it.
/// `None` for the NULL marker (0xFB).
pub fn lenenc_int(buf: &[u8]) -> Result<(Option<u64>, &[u8]), ProtocolError> {
    let short = ProtocolError("truncated length-encoded integer");
    let (&first, rest) = buf.split_first().ok_or(short)?;
    let (n, width) = match first {
        0xFB => return Ok((None, rest)),
        0xFC => (2, 2),
        0xFD => (3, 3),
        0xFE => (8, 8),
        0xFF => return Err(ProtocolError("0xFF is not a length")),
        b => return Ok((Some(u64::from(b)), rest)),
    };
    let bytes = rest.get(..width).ok_or(short)?;
    let mut le = [0u8; 8];
    le[..n].copy_from_slice(bytes);
    Ok((Some(u64::from_le_bytes(le)), &rest[width..]))
}

/// Reads a length-encoded string (`None` for SQL NULL).
pub fn lenenc_str(buf: &[u8]) -> Result<(Option<&[u8]>, &[u8]), ProtocolError> {
    match lenenc_int(buf)? {
        (None, rest) => Ok((None, rest)),
        (Some(len), rest) => {
            let len = usize::try_from(len).map_err(|_| ProtocolError("string too long"))?;
            let s = rest.get(..len).ok_or(ProtocolError("truncated string"))?;
            Ok((Some(s), &rest[len..]))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lenenc() {
        assert_eq!(lenenc_int(&[5, 9]).unwrap(), (Some(5), &[9][..]));
        assert_eq!(
            lenenc_int(&[0xFC, 0x34, 0x12]).unwrap(),
            (Some(0x1234), &[][..])
        );
        assert_eq!(lenenc_int(&[0xFD, 1, 2, 3]).unwrap().0, Some(0x030201));
        assert_eq!(
            lenenc_int(&[0xFE, 1, 0, 0, 0, 0, 0, 0, 1]).unwrap().0,
            Some(0x0100_0000_0000_0001)
        );
        assert_eq!(lenenc_int(&[0xFB]).unwrap().0, None);
        assert!(lenenc_int(&[0xFC, 1]).is_err());
        assert!(lenenc_int(&[]).is_err());
        assert_eq!(
            lenenc_str(&[3, b'a', b'b', b'c', 7]).unwrap(),
            (Some(&b"abc"[..]), &[7][..])
        );
        assert!(lenenc_str(&[4, b'a']).is_err());
    }

    #[test]
    fn payloads_of_16_mib_or_more_are_split_as_the_protocol_says() {
        // Small: one packet.
        assert_eq!(frame(b"\x0e", 0), (vec![1, 0, 0, 0, 0x0e], 1));
        assert_eq!(frame(b"", 255), (vec![0, 0, 0, 255], 0));
        // One byte over a chunk: a full chunk, then the byte, numbered on.
        let big = vec![0xAB; 0xFF_FFFF + 1];
        let (out, next) = frame(&big, 7);
        assert_eq!(out.len(), big.len() + 8);
        assert_eq!(&out[..4], &[0xFF, 0xFF, 0xFF, 7]);
        assert_eq!(&out[4 + 0xFF_FFFF..][..5], &[1, 0, 0, 8, 0xAB]);
        assert_eq!(next, 9);
        // Exactly one chunk: ended by an empty packet, or the server waits.
        let (out, next) = frame(&big[..0xFF_FFFF], 0);
        assert_eq!(out.len(), 0xFF_FFFF + 8);
        assert_eq!(&out[out.len() - 4..], &[0, 0, 0, 1]);
        assert_eq!(next, 2);
        // Above the old 1 MiB cap, the header says the real length.
        let (out, _) = frame(&vec![0; (1 << 20) + 3], 0);
        assert_eq!(&out[..3], &((1u32 << 20) + 3).to_le_bytes()[..3]);
    }
}
