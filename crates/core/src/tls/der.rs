//! DER read by hand, the few shapes TLS here needs of certificates and key
//! files: a misread element comes out as `None`, never as a panic.

/// One element off the front of `input`: its tag, its contents, and what
/// follows. Up to three length bytes: a certificate or a key needs no
/// more, and the indefinite form (0x80) is BER, never DER.
pub(super) fn element(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, input) = input.split_first()?;
    let (&first, input) = input.split_first()?;
    let (len, input) = match first {
        0..=0x7f => (usize::from(first), input),
        0x81..=0x83 => {
            let (bytes, input) = input.split_at_checked(usize::from(first & 0x7f))?;
            let len = bytes.iter().fold(0, |len, &b| len << 8 | usize::from(b));
            (len, input)
        }
        _ => return None,
    };
    let (contents, rest) = input.split_at_checked(len)?;
    Some((tag, contents, rest))
}

/// One element tagged `tag` off the front of `input`: its contents and
/// what follows.
pub(super) fn tlv(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    match element(input)? {
        (found, contents, rest) if found == tag => Some((contents, rest)),
        _ => None,
    }
}

/// The bits of a BIT STRING's contents whose unused-bits count is 0 (a key
/// or a point; anything else is not one).
pub(super) fn bits(contents: &[u8]) -> Option<&[u8]> {
    match contents.split_first()? {
        (0, bits) => Some(bits),
        _ => None,
    }
}
