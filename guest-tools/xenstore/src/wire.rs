//! The xenstore wire protocol as a client speaks it through `/dev/xen/xenbus` or xenstored's
//! socket (`xen/include/public/io/xs_wire.h`, Xen 4.17).
//!
//! A message is `struct xsd_sockmsg` (`type`, `req_id`, `tx_id`, `len`: four little-endian
//! `u32`s on every architecture Xen's guests use) and then `len` payload bytes, at most
//! `XENSTORE_PAYLOAD_MAX` (4096). Strings in a payload are NUL-terminated, except a value
//! (`XS_READ`'s reply, `XS_WRITE`'s last part), which is raw bytes.
//!
//! # Invariants
//! - [`encode`] never makes a message whose payload exceeds `XENSTORE_PAYLOAD_MAX`
//!   (libxenstore refuses those with `E2BIG` before writing anything).
//! - [`read_message`] reads exactly one message: the header, then exactly `len` bytes, so the
//!   bytes of the next message stay in the transport. A header announcing more than
//!   `XENSTORE_PAYLOAD_MAX` is refused before any payload is read.

use std::io::Read;

use xenolith_abi::xen::xs_wire::{xsd_sockmsg, XENSTORE_PAYLOAD_MAX, XSD_SOCKMSG_SIZE};

use crate::errno::Errno;

/// One message: its header and payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// The header as received.
    pub header: xsd_sockmsg,
    /// `header.len` bytes.
    pub payload: Vec<u8>,
}

/// The bytes of a request of `type_` in transaction `tx_id` (0: none) whose payload is
/// `parts` one after the other. `req_id` is 0, as libxenstore sends it (one request at a time).
pub fn encode(type_: u32, tx_id: u32, parts: &[&[u8]]) -> Result<Vec<u8>, Errno> {
    let len: usize = parts.iter().map(|part| part.len()).sum();
    if len > XENSTORE_PAYLOAD_MAX {
        return Err(Errno::E2BIG);
    }
    let header = xsd_sockmsg { type_, req_id: 0, tx_id, len: len as u32 };
    let mut bytes = Vec::with_capacity(XSD_SOCKMSG_SIZE + len);
    bytes.extend_from_slice(&encode_header(&header));
    for part in parts {
        bytes.extend_from_slice(part);
    }
    Ok(bytes)
}

/// `header` as it goes on the wire.
pub fn encode_header(header: &xsd_sockmsg) -> [u8; XSD_SOCKMSG_SIZE] {
    let mut bytes = [0; XSD_SOCKMSG_SIZE];
    for (field, value) in [header.type_, header.req_id, header.tx_id, header.len].iter().enumerate()
    {
        bytes[field * 4..field * 4 + 4].copy_from_slice(&value.to_le_bytes());
    }
    bytes
}

/// The header in `bytes`.
pub fn decode_header(bytes: &[u8; XSD_SOCKMSG_SIZE]) -> xsd_sockmsg {
    let field = |index: usize| {
        let mut word = [0; 4];
        word.copy_from_slice(&bytes[index * 4..index * 4 + 4]);
        u32::from_le_bytes(word)
    };
    xsd_sockmsg { type_: field(0), req_id: field(1), tx_id: field(2), len: field(3) }
}

/// Reads one whole message from `reader`, however the bytes are split over `read` calls.
/// Errors: the transport's ([`Errno::from_io`]; the other end closing is `EBADF`), `E2BIG` for
/// a header announcing a payload over `XENSTORE_PAYLOAD_MAX`.
pub fn read_message(reader: &mut dyn Read) -> Result<Message, Errno> {
    let mut header = [0; XSD_SOCKMSG_SIZE];
    reader.read_exact(&mut header).map_err(|error| Errno::from_io(&error))?;
    let header = decode_header(&header);
    if header.len as usize > XENSTORE_PAYLOAD_MAX {
        return Err(Errno::E2BIG);
    }
    let mut payload = vec![0; header.len as usize];
    reader.read_exact(&mut payload).map_err(|error| Errno::from_io(&error))?;
    Ok(Message { header, payload })
}

/// `text` and its terminating NUL, as a path or token goes into a payload.
pub fn c_string(text: &[u8]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(text.len() + 1);
    bytes.extend_from_slice(text);
    bytes.push(0);
    bytes
}

/// The strings of a payload of NUL-terminated strings (`XS_DIRECTORY`'s reply, a watch event),
/// as libxenstore splits them: a last string without its NUL counts too.
pub fn strings(payload: &[u8]) -> Vec<&[u8]> {
    let mut list = Vec::new();
    let mut rest = payload;
    while !rest.is_empty() {
        let end = rest.iter().position(|&byte| byte == 0).unwrap_or(rest.len());
        list.push(&rest[..end]);
        rest = rest.get(end + 1..).unwrap_or_default();
    }
    list
}

/// The NUL-terminated strings of a payload only (`XS_GET_PERMS`'s reply: libxenstore counts
/// the NULs), without a trailing unterminated part.
pub fn terminated_strings(payload: &[u8]) -> Vec<&[u8]> {
    let mut list = strings(payload);
    if payload.last().is_some_and(|&byte| byte != 0) {
        list.pop();
    }
    list
}

#[cfg(test)]
mod tests {
    use super::*;
    use xenolith_abi::xen::xs_wire::msg;

    #[test]
    fn a_request_is_the_little_endian_header_then_the_parts() {
        let bytes = encode(msg::XS_WRITE, 7, &[b"a/b\0", b"v"]).unwrap();
        assert_eq!(&bytes[..4], &11u32.to_le_bytes());
        assert_eq!(&bytes[4..8], &0u32.to_le_bytes(), "req_id");
        assert_eq!(&bytes[8..12], &7u32.to_le_bytes(), "tx_id");
        assert_eq!(&bytes[12..16], &5u32.to_le_bytes(), "len");
        assert_eq!(&bytes[16..], b"a/b\0v");
        let header: [u8; 16] = bytes[..16].try_into().unwrap();
        assert_eq!(encode_header(&decode_header(&header)), header);
    }

    #[test]
    fn payloads_over_the_maximum_are_refused() {
        let big = vec![b'x'; XENSTORE_PAYLOAD_MAX];
        assert_eq!(encode(msg::XS_WRITE, 0, &[&big]).unwrap().len(), 16 + XENSTORE_PAYLOAD_MAX);
        assert_eq!(encode(msg::XS_WRITE, 0, &[&big, b"y"]), Err(Errno::E2BIG));
    }

    /// A reader that hands out at most one byte per call.
    struct Trickle<'a>(&'a [u8]);

    impl Read for Trickle<'_> {
        fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
            let Some((&first, rest)) = self.0.split_first() else { return Ok(0) };
            if buffer.is_empty() {
                return Ok(0);
            }
            buffer[0] = first;
            self.0 = rest;
            Ok(1)
        }
    }

    #[test]
    fn messages_are_read_whole_from_short_reads_and_one_at_a_time() {
        let mut bytes = encode(msg::XS_READ, 3, &[b"value"]).unwrap();
        bytes.extend(encode(msg::XS_WATCH_EVENT, 0, &[b"p\0t\0"]).unwrap());
        let mut reader = Trickle(&bytes);
        let first = read_message(&mut reader).unwrap();
        assert_eq!((first.header.type_, first.header.tx_id), (msg::XS_READ, 3));
        assert_eq!(first.payload, b"value");
        let second = read_message(&mut reader).unwrap();
        assert_eq!(strings(&second.payload), [b"p".as_slice(), b"t"]);
        assert_eq!(read_message(&mut reader), Err(Errno::EBADF), "end of file");
    }

    #[test]
    fn truncated_and_oversized_messages_are_errors() {
        let bytes = encode(msg::XS_READ, 0, &[b"value"]).unwrap();
        assert_eq!(read_message(&mut &bytes[..10]), Err(Errno::EBADF), "half a header");
        assert_eq!(read_message(&mut &bytes[..18]), Err(Errno::EBADF), "half a payload");
        let mut header = encode_header(&xsd_sockmsg {
            type_: msg::XS_READ,
            req_id: 0,
            tx_id: 0,
            len: XENSTORE_PAYLOAD_MAX as u32 + 1,
        })
        .to_vec();
        header.extend(vec![0; XENSTORE_PAYLOAD_MAX + 1]);
        assert_eq!(read_message(&mut header.as_slice()), Err(Errno::E2BIG));
    }

    #[test]
    fn strings_split_as_libxenstore_splits_them() {
        assert!(strings(b"").is_empty());
        assert_eq!(strings(b"a\0bc\0"), [b"a".as_slice(), b"bc"]);
        assert_eq!(strings(b"a\0bc"), [b"a".as_slice(), b"bc"]);
        assert_eq!(strings(b"\0"), [b"".as_slice()]);
        assert_eq!(terminated_strings(b"b0\0r1"), [b"b0".as_slice()]);
        assert_eq!(terminated_strings(b"b0\0r1\0"), [b"b0".as_slice(), b"r1"]);
        assert_eq!(c_string(b"name"), b"name\0");
    }
}
