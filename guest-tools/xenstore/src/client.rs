//! A xenstore client over any byte stream: the requests Xen's tools make, one at a time, as
//! libxenstore makes them (`tools/libs/store/xs.c`, Xen 4.17).
//!
//! The transport is anything that reads and writes ([`Transport`]): the Linux guest's
//! `/dev/xen/xenbus`, xenstored's Unix socket, or a test's fake. Linux's
//! `xenbus_dev_frontend` reassembles a request from any number of `write` calls (up to 4096
//! bytes including the header), so each request goes out in one `write_all`; replies and watch
//! events come back through `read`, in pieces of any size.
//!
//! # Invariants
//! - One request is outstanding at a time. A message read while waiting for a reply is either
//!   an `XS_WATCH_EVENT` (kept, in order, for [`Client::read_watch`]) or the reply.
//! - A reply of another type than the request's, a transport error or a malformed message
//!   close the connection (libxenstore closes its fd): every later request fails with `EBADF`.
//!   An `XS_ERROR` reply does not: it is the request's answer.

use std::collections::VecDeque;
use std::io::{Read, Write};

use xenolith_abi::xen::xs_wire::msg;

use crate::errno::Errno;
use crate::wire::{self, c_string};

/// A byte stream to xenstored.
pub trait Transport: Read + Write {}

impl<T: Read + Write> Transport for T {}

/// `XBT_NULL`: no transaction.
pub const XBT_NULL: u32 = 0;

/// One entry of a node's permissions (`XS_GET_PERMS`, `XS_SET_PERMS`): `n`, `r`, `w` or `b`
/// and a domain id. The first entry names the owner and what everyone else may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Permission {
    /// `b'n'` none, `b'r'` read, `b'w'` write, `b'b'` both.
    pub access: u8,
    /// The domain, as libxenstore keeps it (`unsigned int`).
    pub domain: u32,
}

impl Permission {
    /// Xen's text for it (`xs_perm_to_string`: the letter, then the id as a C `int`).
    pub fn to_text(self) -> String {
        format!("{}{}", char::from(self.access), self.domain as i32)
    }

    /// A permission string of a reply (`xs_strings_to_perms`): a letter, then a number in C's
    /// `strtol(…, 0)` syntax that fills the rest of the string.
    pub fn parse(text: &[u8]) -> Option<Permission> {
        let (&access, number) = text.split_first()?;
        if !matches!(access, b'n' | b'r' | b'w' | b'b') || number.is_empty() {
            return None;
        }
        let domain = parse_c_long(number)?;
        Some(Permission { access, domain: domain as u32 })
    }
}

/// A whole string in the syntax of C's `strtol(text, &end, 0)` with `*end == 0` required.
fn parse_c_long(text: &[u8]) -> Option<i64> {
    match strtol(text) {
        Some((value, used)) if used == text.len() => Some(value),
        _ => None,
    }
}

/// C's `strtol(text, &end, 0)`: leading blanks, a sign, then `0x` hexadecimal, `0` octal or
/// decimal digits, as many as there are; the value (saturated, as `strtol` does) and the bytes
/// taken, `None` without a digit.
fn strtol(text: &[u8]) -> Option<(i64, usize)> {
    let blanks = text.len() - text.trim_ascii_start().len();
    let mut at = blanks;
    let negative = match text.get(at) {
        Some(b'-') => {
            at += 1;
            true
        }
        Some(b'+') => {
            at += 1;
            false
        }
        _ => false,
    };
    let hex_digit = |index: usize| text.get(index).is_some_and(u8::is_ascii_hexdigit);
    let radix = if text.get(at) == Some(&b'0')
        && matches!(text.get(at + 1), Some(b'x' | b'X'))
        && hex_digit(at + 2)
    {
        at += 2;
        16
    } else if text.get(at) == Some(&b'0') {
        8
    } else {
        10
    };
    let start = at;
    let mut value: i64 = 0;
    while let Some(digit) = text.get(at).and_then(|&byte| char::from(byte).to_digit(radix)) {
        value = value.saturating_mul(i64::from(radix)).saturating_add(i64::from(digit));
        at += 1;
    }
    (at > start).then_some((if negative { value.saturating_neg() } else { value }, at))
}

/// A connection to xenstored and the watch events that came in between replies.
pub struct Client<T> {
    /// `None` once closed (see the module's invariants).
    transport: Option<T>,
    /// Watch event payloads not yet handed out, oldest first.
    events: VecDeque<Vec<u8>>,
}

impl<T: Transport> Client<T> {
    /// A client over an open transport.
    pub fn new(transport: T) -> Client<T> {
        Client { transport: Some(transport), events: VecDeque::new() }
    }

    /// Sends a request of `type_` with payload `parts` and returns its reply's payload.
    fn talk(&mut self, tx_id: u32, type_: u32, parts: &[&[u8]]) -> Result<Vec<u8>, Errno> {
        let request = wire::encode(type_, tx_id, parts)?;
        let transport = self.transport.as_mut().ok_or(Errno::EBADF)?;
        let sent = transport.write_all(&request).and_then(|()| transport.flush());
        let reply = match sent {
            Ok(()) => self.read_reply(),
            Err(error) => Err(Errno::from_io(&error)),
        };
        let reply = match reply {
            Ok(reply) => reply,
            Err(error) => {
                self.transport = None;
                return Err(error);
            }
        };
        if reply.header.type_ == msg::XS_ERROR {
            return Err(Errno::from_error_reply(&reply.payload));
        }
        if reply.header.type_ != type_ {
            self.transport = None;
            return Err(Errno::EBADF);
        }
        Ok(reply.payload)
    }

    /// The next message that is not a watch event; the events before it are queued.
    fn read_reply(&mut self) -> Result<wire::Message, Errno> {
        let transport = self.transport.as_mut().ok_or(Errno::EBADF)?;
        loop {
            let message = wire::read_message(transport)?;
            if message.header.type_ != msg::XS_WATCH_EVENT {
                return Ok(message);
            }
            self.events.push_back(message.payload);
        }
    }

    /// `xs_read`: the value of `path`.
    pub fn read(&mut self, tx_id: u32, path: &[u8]) -> Result<Vec<u8>, Errno> {
        self.talk(tx_id, msg::XS_READ, &[&c_string(path)])
    }

    /// `xs_write`: sets `path` to `value` (creating it and missing parents).
    pub fn write(&mut self, tx_id: u32, path: &[u8], value: &[u8]) -> Result<(), Errno> {
        self.talk(tx_id, msg::XS_WRITE, &[&c_string(path), value]).map(drop)
    }

    /// `xs_rm`: removes `path` and everything below it.
    pub fn rm(&mut self, tx_id: u32, path: &[u8]) -> Result<(), Errno> {
        self.talk(tx_id, msg::XS_RM, &[&c_string(path)]).map(drop)
    }

    /// `xs_directory`: the names of `path`'s children, in the server's order. A directory too
    /// large for one reply (`E2BIG`) is read in parts with `XS_DIRECTORY_PART`.
    pub fn directory(&mut self, tx_id: u32, path: &[u8]) -> Result<Vec<Vec<u8>>, Errno> {
        match self.talk(tx_id, msg::XS_DIRECTORY, &[&c_string(path)]) {
            Ok(reply) => Ok(wire::strings(&reply).into_iter().map(<[u8]>::to_vec).collect()),
            Err(Errno::E2BIG) => self.directory_part(tx_id, path),
            Err(error) => Err(error),
        }
    }

    /// `xs_directory_part`: each reply is a generation count, then a slice of the NUL-separated
    /// names from an offset; the last slice ends in an empty name. A generation that changes
    /// between slices starts the listing again.
    fn directory_part(&mut self, tx_id: u32, path: &[u8]) -> Result<Vec<Vec<u8>>, Errno> {
        let path = c_string(path);
        let mut names: Vec<u8> = Vec::new();
        let mut generation: Vec<u8> = Vec::new();
        loop {
            let offset = c_string(names.len().to_string().as_bytes());
            let reply = match self.talk(tx_id, msg::XS_DIRECTORY_PART, &[&path, &offset]) {
                Err(Errno::ENOSYS) => return Err(Errno::E2BIG),
                other => other?,
            };
            let end = reply.iter().position(|&byte| byte == 0).ok_or(Errno::EINVAL)?;
            let this_generation = &reply[..end];
            if names.is_empty() {
                generation = this_generation.to_vec();
            } else if this_generation != generation.as_slice() {
                names.clear();
                continue;
            }
            names.extend_from_slice(&reply[end + 1..]);
            if names.len() <= 1 || names[names.len() - 2] == 0 {
                break;
            }
        }
        if names.len() > 1 {
            names.pop();
        }
        Ok(wire::strings(&names).into_iter().map(<[u8]>::to_vec).collect())
    }

    /// `xs_get_permissions`: `path`'s permissions, owner first. A string that is not a
    /// permission makes the whole reply `EINVAL`.
    pub fn get_permissions(&mut self, tx_id: u32, path: &[u8]) -> Result<Vec<Permission>, Errno> {
        let reply = self.talk(tx_id, msg::XS_GET_PERMS, &[&c_string(path)])?;
        wire::terminated_strings(&reply)
            .into_iter()
            .map(|text| Permission::parse(text).ok_or(Errno::EINVAL))
            .collect()
    }

    /// `xs_set_permissions`: sets `path`'s permissions, owner first.
    pub fn set_permissions(
        &mut self,
        tx_id: u32,
        path: &[u8],
        permissions: &[Permission],
    ) -> Result<(), Errno> {
        let mut parts = vec![c_string(path)];
        parts
            .extend(permissions.iter().map(|permission| c_string(permission.to_text().as_bytes())));
        let parts: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
        self.talk(tx_id, msg::XS_SET_PERMS, &parts).map(drop)
    }

    /// `xs_watch`: asks for an event whenever `path` or anything below it changes (and one
    /// at once), carrying `token`.
    pub fn watch(&mut self, path: &[u8], token: &[u8]) -> Result<(), Errno> {
        self.talk(XBT_NULL, msg::XS_WATCH, &[&c_string(path), &c_string(token)]).map(drop)
    }

    /// `xs_read_watch`: the next watch event's strings (path, token), waiting for one if none
    /// is queued. A reply that nobody waits for is dropped.
    pub fn read_watch(&mut self) -> Result<Vec<Vec<u8>>, Errno> {
        loop {
            if let Some(event) = self.events.pop_front() {
                return Ok(wire::strings(&event).into_iter().map(<[u8]>::to_vec).collect());
            }
            let transport = self.transport.as_mut().ok_or(Errno::EBADF)?;
            match wire::read_message(transport) {
                Ok(message) if message.header.type_ == msg::XS_WATCH_EVENT => {
                    self.events.push_back(message.payload);
                }
                Ok(_) => {}
                Err(error) => {
                    self.transport = None;
                    return Err(error);
                }
            }
        }
    }

    /// `xs_transaction_start`: a new transaction's id. An id of 0 (`XBT_NULL`), which the
    /// reply cannot mean, fails as libxenstore's caller sees it: with `EINVAL`.
    pub fn transaction_start(&mut self) -> Result<u32, Errno> {
        let reply = self.talk(XBT_NULL, msg::XS_TRANSACTION_START, &[b"\0"])?;
        // strtoul(…, 0) of the reply, as libxenstore reads it: what follows the number is
        // ignored, no number reads as 0.
        let id = strtol(&reply).map_or(0, |(id, _)| id as u32);
        if id == XBT_NULL {
            return Err(Errno::EINVAL);
        }
        Ok(id)
    }

    /// `xs_transaction_end`: commits (`abort` false) or abandons the transaction. A commit
    /// that lost a race fails with `EAGAIN`.
    pub fn transaction_end(&mut self, tx_id: u32, abort: bool) -> Result<(), Errno> {
        let payload: &[u8] = if abort { b"F\0" } else { b"T\0" };
        self.talk(tx_id, msg::XS_TRANSACTION_END, &[payload]).map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permissions_read_and_print_as_xen_does() {
        let parse = |text: &[u8]| Permission::parse(text);
        assert_eq!(parse(b"b0"), Some(Permission { access: b'b', domain: 0 }));
        assert_eq!(parse(b"r0x10"), Some(Permission { access: b'r', domain: 16 }));
        assert_eq!(parse(b"w010"), Some(Permission { access: b'w', domain: 8 }));
        assert_eq!(parse(b"n-1").map(Permission::to_text).as_deref(), Some("n-1"));
        assert_eq!(parse(b"n4294967295").map(Permission::to_text).as_deref(), Some("n-1"));
        assert_eq!(parse(b"x1"), None);
        assert_eq!(parse(b"r"), None);
        assert_eq!(parse(b"r1z"), None);
        assert_eq!(parse(b""), None);
    }

    #[test]
    fn numbers_parse_as_strtol_with_base_0() {
        assert_eq!(parse_c_long(b"42"), Some(42));
        assert_eq!(parse_c_long(b" +7"), Some(7));
        assert_eq!(parse_c_long(b"0"), Some(0));
        assert_eq!(parse_c_long(b"0x1f"), Some(31));
        assert_eq!(parse_c_long(b"017"), Some(15));
        assert_eq!(parse_c_long(b"08"), None);
        assert_eq!(parse_c_long(b"-"), None);
        assert_eq!(parse_c_long(b"99999999999999999999999"), Some(i64::MAX));
        assert_eq!(parse_c_long(b"0x"), None);
        assert_eq!(strtol(b"12\0"), Some((12, 2)));
        assert_eq!(strtol(b"0x"), Some((0, 1)), "the 0 is a number, the x what follows");
        assert_eq!(strtol(b"x1"), None);
    }
}
