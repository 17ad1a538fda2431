//! Message framing shared by the store, its tests and guest-side clients.
//!
//! A message is an [`xsd_sockmsg`] header (four little-endian `u32`: type, request id,
//! transaction id, payload length; `xen/include/public/io/xs_wire.h`) followed by the payload,
//! at most [`XENSTORE_PAYLOAD_MAX`] bytes (`docs/misc/xenstore.txt`). Payloads are sequences of
//! NUL-terminated strings, except that a `WRITE`'s value after the path is raw bytes.
//!
//! # Invariants
//! - [`encode_message`] and [`parse_header`] are inverses on the header.
//! - Nothing here panics on any input.

use alloc::vec::Vec;

pub use xenolith_abi::xen::xs_wire::{msg, xsd_sockmsg, XENSTORE_PAYLOAD_MAX, XSD_SOCKMSG_SIZE};

/// Bytes of a header.
pub const HEADER_SIZE: usize = XSD_SOCKMSG_SIZE;

/// Frames one message: header (with `len = payload.len()`) then payload.
///
/// A payload longer than `u32::MAX` bytes gets a length field of `u32::MAX`; no valid message
/// comes near that (see [`XENSTORE_PAYLOAD_MAX`]).
pub fn encode_message(type_: u32, req_id: u32, tx_id: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_SIZE + payload.len());
    push_message(&mut out, type_, req_id, tx_id, payload);
    out
}

/// Appends one framed message to `out`.
pub fn push_message(out: &mut Vec<u8>, type_: u32, req_id: u32, tx_id: u32, payload: &[u8]) {
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    for field in [type_, req_id, tx_id, len] {
        out.extend_from_slice(&field.to_le_bytes());
    }
    out.extend_from_slice(payload);
}

/// Reads a header from the first [`HEADER_SIZE`] bytes (`None` if there are fewer).
pub fn parse_header(bytes: &[u8]) -> Option<xsd_sockmsg> {
    let field = |index: usize| -> Option<u32> {
        let raw = bytes.get(index * 4..index * 4 + 4)?;
        Some(u32::from_le_bytes(raw.try_into().ok()?))
    };
    Some(xsd_sockmsg { type_: field(0)?, req_id: field(1)?, tx_id: field(2)?, len: field(3)? })
}

/// One whole message found at the start of a byte stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Message<'a> {
    /// The header.
    pub header: xsd_sockmsg,
    /// Its payload.
    pub payload: &'a [u8],
}

/// Splits the first whole message off `bytes`: `Ok(Some((message, rest)))`, `Ok(None)` if more
/// bytes are needed, `Err(len)` if the header announces more than [`XENSTORE_PAYLOAD_MAX`].
pub fn split_message(bytes: &[u8]) -> Result<Option<(Message<'_>, &[u8])>, u32> {
    let Some(header) = parse_header(bytes) else { return Ok(None) };
    let len = header.len as usize;
    if len > XENSTORE_PAYLOAD_MAX {
        return Err(header.len);
    }
    let Some(body) = bytes.get(HEADER_SIZE..) else { return Ok(None) };
    if body.len() < len {
        return Ok(None);
    }
    let (payload, rest) = body.split_at(len);
    Ok(Some((Message { header, payload }, rest)))
}

/// The NUL-terminated strings of a payload (bytes after the last NUL are not a string and are
/// not returned, as Xen's `get_strings()` ignores them).
pub fn strings(payload: &[u8]) -> impl Iterator<Item = &[u8]> {
    let terminated = match payload.iter().rposition(|&byte| byte == 0) {
        Some(last) => payload.get(..last).unwrap_or(&[]),
        None => &[],
    };
    let any = payload.contains(&0);
    terminated.split(|&byte| byte == 0).filter(move |_| any)
}

/// Builds a payload of NUL-terminated strings.
pub fn join(parts: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for part in parts {
        out.extend_from_slice(part);
        out.push(0);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn framing_round_trip() {
        let bytes = encode_message(2, 7, 9, b"/a\0");
        let (message, rest) = split_message(&bytes).unwrap().unwrap();
        assert_eq!(message.header, xsd_sockmsg { type_: 2, req_id: 7, tx_id: 9, len: 3 });
        assert_eq!(message.payload, b"/a\0");
        assert!(rest.is_empty());
        assert_eq!(split_message(&bytes[..5]), Ok(None));
        assert_eq!(split_message(&bytes[..18]), Ok(None));
        let huge = encode_message(2, 0, 0, &alloc::vec![0; XENSTORE_PAYLOAD_MAX + 1]);
        assert_eq!(split_message(&huge), Err(4097));
    }

    #[test]
    fn string_splitting() {
        let all: Vec<&[u8]> = strings(b"a\0\0bc\0junk").collect();
        assert_eq!(all, [&b"a"[..], b"", b"bc"]);
        assert_eq!(strings(b"").count(), 0);
        assert_eq!(strings(b"abc").count(), 0);
        assert_eq!(strings(b"\0").count(), 1);
        assert_eq!(join(&[b"x", b"y"]), b"x\0y\0");
    }
}
