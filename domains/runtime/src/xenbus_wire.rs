//! The portable half of the xenstore client ([`crate::xenbus`] is the bare-metal half): message
//! encoding and parsing, the two byte rings of the shared page, and the request/reply, watch and
//! transaction logic of [`Client`], written against two traits so the host tests can drive it
//! with a plain array and a simulated store.
//!
//! The protocol is Xen's (`xen/include/public/io/xs_wire.h`; `docs/misc/xenstore.txt` for the
//! messages, `docs/misc/xenstore-ring.txt` for the page). Linux's `drivers/xen/xenbus/
//! xenbus_comms.c` and `xenbus_xs.c` are the client it behaves like.
//!
//! # The client's model
//! - One request in flight at a time: every call sends its request, then waits for the reply
//!   with the same `req_id`. A reply with another `req_id` (to a raw request whose bounded wait
//!   gave up) is dropped and counted in [`Stats::stray_replies`].
//! - It never gives up waiting for a reply (unless the caller gave a deadline, as the raw calls
//!   for hostile tests do): the store may be restarted at any moment and resumes on the same
//!   ring. [`Transport::wait`] returns at least every few milliseconds so the rings are
//!   re-checked even when an event was lost, and while a request is outstanding each wait that
//!   saw no event re-sends the notification (a restarted store may have missed it).
//! - A caller that must never wait on the store (the console domain) uses the non-blocking
//!   calls instead: [`Client::send_request`] (refused, nothing sent, when the ring lacks room
//!   for the whole message), [`Client::try_receive`], [`Client::next_event`] and
//!   [`Client::nudge`]; it keeps track of its own `req_id`s.
//! - Watch events read while waiting for a reply are queued; callbacks run only from
//!   [`Client::poll_watches`] and [`Client::wait_watches`], never in the middle of another call
//!   and never from an interrupt. A callback gets the event, not the client: it records what it
//!   needs (for example in an `Rc<Cell<_>>`) and the caller acts on it after the dispatch.
//!
//! # Invariants
//! - The client trusts only its own copies of the indexes it produces (`req_prod`) and
//!   consumes (`rsp_cons`); it reads the store's and checks them: a producer more than a ring
//!   ahead of the consumer is [`RingError::BadIndex`], never a reason to touch bytes outside a
//!   ring.
//! - Ring data is written only after the consumer index that frees it was read (full barrier),
//!   and an index is published only after the data it covers (write barrier); data is read only
//!   after the producer index that covers it (read barrier), as xenstore-ring.txt requires.
//! - No request longer than [`XENSTORE_PAYLOAD_MAX`] is sent except through
//!   [`Client::send_bytes`]: the store drops a connection that does that.
#![forbid(unsafe_code)]

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use xenolith_abi::xen::errno::XenError;
use xenolith_abi::xen::xs_wire::{
    mask_xenstore_idx, msg, xsd_sockmsg, XENSTORE_PAYLOAD_MAX, XENSTORE_RING_SIZE, XSD_ERRORS,
    XSD_SOCKMSG_SIZE, XS_REQ_CONS, XS_REQ_PROD, XS_RSP_CONS, XS_RSP_PROD,
};
use zerocopy::{FromBytes, IntoBytes};

/// An errno an `XS_ERROR` reply names: an entry of Xen's `xsd_errors[]` (the number is Linux's
/// value for the name, as in that table).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Errno {
    /// The errno value.
    pub number: i32,
    /// Its name, as sent on the wire.
    pub name: &'static str,
}

impl Errno {
    /// `EINVAL`.
    pub const EINVAL: Self = Self::known(0);
    /// `EACCES`.
    pub const EACCES: Self = Self::known(1);
    /// `EEXIST`.
    pub const EEXIST: Self = Self::known(2);
    /// `EISDIR`.
    pub const EISDIR: Self = Self::known(3);
    /// `ENOENT`.
    pub const ENOENT: Self = Self::known(4);
    /// `ENOMEM`.
    pub const ENOMEM: Self = Self::known(5);
    /// `ENOSPC`.
    pub const ENOSPC: Self = Self::known(6);
    /// `EIO`.
    pub const EIO: Self = Self::known(7);
    /// `ENOTEMPTY`.
    pub const ENOTEMPTY: Self = Self::known(8);
    /// `ENOSYS`.
    pub const ENOSYS: Self = Self::known(9);
    /// `EROFS`.
    pub const EROFS: Self = Self::known(10);
    /// `EBUSY`.
    pub const EBUSY: Self = Self::known(11);
    /// `EAGAIN`.
    pub const EAGAIN: Self = Self::known(12);
    /// `EISCONN`.
    pub const EISCONN: Self = Self::known(13);
    /// `E2BIG`.
    pub const E2BIG: Self = Self::known(14);
    /// `EPERM`.
    pub const EPERM: Self = Self::known(15);

    const fn known(index: usize) -> Self {
        Self { number: XSD_ERRORS[index].0, name: XSD_ERRORS[index].1 }
    }

    /// The entry of Xen's table named `name`.
    pub fn from_name(name: &[u8]) -> Option<Self> {
        XSD_ERRORS
            .iter()
            .find(|(_, known)| known.as_bytes() == name)
            .map(|&(number, name)| Self { number, name })
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name, self.number)
    }
}

/// Why a xenstore call failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum XsError {
    /// The store refused the request: an `XS_ERROR` reply naming this errno.
    Errno(Errno),
    /// An `XS_ERROR` reply whose name is not in Xen's table.
    UnknownErrno,
    /// The store's reply makes no sense for the request.
    Protocol(ProtocolError),
    /// The shared page is inconsistent.
    Ring(RingError),
    /// The store set the page's `error` field (`XENSTORE_ERROR_*`, the value here) and serves
    /// this domain no more.
    Disconnected(u32),
    /// `HVMOP_get_param` for the store's page or port failed.
    Hypercall(XenError),
    /// The store's page (this guest-physical address) is missing (0) or outside the normal
    /// memory of the runtime's identity map.
    BadPage(u64),
    /// The domain has no port to the store (`HVM_PARAM_STORE_EVTCHN` is 0).
    NoPort,
    /// This domain is connected already: one client per ring.
    AlreadyConnected,
    /// A request payload of this many bytes, over [`XENSTORE_PAYLOAD_MAX`]: not sent (the store
    /// would drop the connection).
    TooLarge(usize),
    /// A path or token with a NUL byte in it, which the message format cannot carry.
    InvalidArgument,
    /// A bounded wait reached its deadline.
    TimedOut,
    /// The request ring has no room for the whole request now; nothing was sent
    /// ([`Client::send_request`], which never waits).
    RingFull,
    /// Another watch of this client uses the token.
    TokenInUse,
}

impl XsError {
    /// `EAGAIN`: what a transaction that lost a race ends with.
    pub const EAGAIN: Self = Self::Errno(Errno::EAGAIN);
    /// `ENOENT`.
    pub const ENOENT: Self = Self::Errno(Errno::ENOENT);
    /// `EACCES`.
    pub const EACCES: Self = Self::Errno(Errno::EACCES);
    /// `EINVAL`.
    pub const EINVAL: Self = Self::Errno(Errno::EINVAL);

    /// The errno an `XS_ERROR` reply named, if this is one.
    pub fn errno(&self) -> Option<Errno> {
        match self {
            Self::Errno(errno) => Some(*errno),
            _ => None,
        }
    }
}

impl fmt::Display for XsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Errno(errno) => write!(f, "xenstore error {errno}"),
            Self::UnknownErrno => write!(f, "xenstore error not in Xen's table"),
            Self::Protocol(error) => write!(f, "xenstore protocol error: {error}"),
            Self::Ring(error) => write!(f, "xenstore ring broken: {error}"),
            Self::Disconnected(code) => {
                write!(f, "xenstore stopped serving this domain (error {code})")
            }
            Self::Hypercall(error) => write!(f, "HVMOP_get_param for xenstore failed: {error}"),
            Self::BadPage(address) => write!(f, "xenstore page at {address:#x} is unusable"),
            Self::NoPort => write!(f, "no event channel to xenstore"),
            Self::AlreadyConnected => write!(f, "this domain is connected to xenstore already"),
            Self::TooLarge(len) => {
                write!(f, "a {len}-byte request payload exceeds {XENSTORE_PAYLOAD_MAX}")
            }
            Self::InvalidArgument => write!(f, "a path or token holds a NUL byte"),
            Self::TimedOut => write!(f, "no reply before the deadline"),
            Self::RingFull => write!(f, "no room in the request ring now"),
            Self::TokenInUse => write!(f, "the watch token is in use"),
        }
    }
}

/// The store answered something the request does not allow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProtocolError {
    /// A reply of type `got` to a request of type `expected`.
    UnexpectedType {
        /// The request's type.
        expected: u32,
        /// The reply's.
        got: u32,
    },
    /// A payload that does not parse as the reply to the request: what is wrong with it.
    Malformed(&'static str),
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnexpectedType { expected, got } => {
                write!(f, "reply of type {got} to a request of type {expected}")
            }
            Self::Malformed(what) => f.write_str(what),
        }
    }
}

/// The shared page is inconsistent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RingError {
    /// A producer index more than a ring ahead of its consumer index.
    BadIndex {
        /// The producer index.
        producer: u32,
        /// The consumer index.
        consumer: u32,
    },
    /// The store announced a message with a payload of this many bytes, over
    /// [`XENSTORE_PAYLOAD_MAX`].
    PayloadTooLong(u32),
}

impl fmt::Display for RingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadIndex { producer, consumer } => {
                write!(f, "producer {producer} is more than a ring ahead of consumer {consumer}")
            }
            Self::PayloadTooLong(len) => write!(f, "a {len}-byte payload"),
        }
    }
}

/// A whole message: header and payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// Its header.
    pub header: xsd_sockmsg,
    /// Its `header.len` payload bytes.
    pub payload: Vec<u8>,
}

impl Message {
    /// Its type (`XS_*`).
    pub fn kind(&self) -> u32 {
        self.header.type_
    }

    /// The payload of a reply of type `expected`, or the error the reply names.
    pub fn into_result(self, expected: u32) -> Result<Vec<u8>, XsError> {
        match self.header.type_ {
            kind if kind == expected => Ok(self.payload),
            msg::XS_ERROR => Err(error_from_payload(&self.payload)),
            got => Err(XsError::Protocol(ProtocolError::UnexpectedType { expected, got })),
        }
    }
}

/// The error an `XS_ERROR` payload (`"EACCES\0"`) names.
pub fn error_from_payload(payload: &[u8]) -> XsError {
    let name = payload.split(|&byte| byte == 0).next().unwrap_or_default();
    Errno::from_name(name).map_or(XsError::UnknownErrno, XsError::Errno)
}

/// The bytes of a message: header (`type`, `req_id`, `tx_id`, the payload's length) and payload.
/// No limit is checked here.
pub fn encode(kind: u32, req_id: u32, tx_id: u32, payload: &[u8]) -> Vec<u8> {
    let header = xsd_sockmsg { type_: kind, req_id, tx_id, len: payload.len() as u32 };
    let mut bytes = Vec::with_capacity(XSD_SOCKMSG_SIZE + payload.len());
    bytes.extend_from_slice(header.as_bytes());
    bytes.extend_from_slice(payload);
    bytes
}

/// A payload of NUL-terminated strings (`<path>|<token>|`); `InvalidArgument` if one holds a
/// NUL.
pub fn strings(parts: &[&[u8]]) -> Result<Vec<u8>, XsError> {
    let mut payload = Vec::new();
    for part in parts {
        if part.contains(&0) {
            return Err(XsError::InvalidArgument);
        }
        payload.extend_from_slice(part);
        payload.push(0);
    }
    Ok(payload)
}

/// The payload of a `WRITE`: `<path>|<value|>` (the value is not NUL-terminated).
pub fn write_payload(path: &str, value: &[u8]) -> Result<Vec<u8>, XsError> {
    let mut payload = strings(&[path.as_bytes()])?;
    payload.extend_from_slice(value);
    Ok(payload)
}

/// Splits a payload of NUL-terminated strings; a last string without its NUL counts too (an
/// empty payload is no strings).
pub fn split_strings(payload: &[u8]) -> Result<Vec<String>, XsError> {
    let body = payload.strip_suffix(&[0]).unwrap_or(payload);
    if payload.is_empty() {
        return Ok(Vec::new());
    }
    body.split(|&byte| byte == 0).map(utf8).collect()
}

fn utf8(bytes: &[u8]) -> Result<String, XsError> {
    core::str::from_utf8(bytes)
        .map(String::from)
        .map_err(|_| XsError::Protocol(ProtocolError::Malformed("a string is not UTF-8")))
}

/// The one string of a reply like `GET_DOMAIN_PATH`'s or `TRANSACTION_START`'s (`<value>|`).
pub fn single_string(payload: &[u8]) -> Result<String, XsError> {
    let body = payload.strip_suffix(&[0]).unwrap_or(payload);
    if body.contains(&0) {
        return Err(XsError::Protocol(ProtocolError::Malformed("more than one string")));
    }
    utf8(body)
}

/// Checks an acknowledgement's payload is `OK|`.
pub fn expect_ok(payload: &[u8]) -> Result<(), XsError> {
    if payload == b"OK\0" {
        Ok(())
    } else {
        Err(XsError::Protocol(ProtocolError::Malformed("an acknowledgement is not \"OK\"")))
    }
}

/// The transaction id in a `TRANSACTION_START` reply (`<transid>|`, unsigned decimal).
pub fn parse_transaction_id(payload: &[u8]) -> Result<u32, XsError> {
    single_string(payload)?
        .parse()
        .map_err(|_| XsError::Protocol(ProtocolError::Malformed("a transaction id is not a u32")))
}

/// A watch event: the path that changed and the token of the watch that matched.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WatchEvent {
    /// The changed path (relative if the watch's path was).
    pub path: String,
    /// The token the watch was set with.
    pub token: String,
}

/// Parses a `WATCH_EVENT` payload, `<epath>|<token>|`.
pub fn parse_watch_event(payload: &[u8]) -> Result<WatchEvent, XsError> {
    let mut parts = split_strings(payload)?.into_iter();
    match (parts.next(), parts.next()) {
        (Some(path), Some(token)) => Ok(WatchEvent { path, token }),
        _ => Err(XsError::Protocol(ProtocolError::Malformed("a watch event lacks a token"))),
    }
}

/// What one domain may do with a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// `n`: nothing.
    None,
    /// `r`: read.
    Read,
    /// `w`: write.
    Write,
    /// `b`: read and write.
    Both,
}

/// One entry of a node's permissions: the first names the owner (and what every domain not
/// listed may do), the others what the domain named may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Permission {
    /// The domain.
    pub domid: u16,
    /// What it may do.
    pub access: Access,
}

impl Permission {
    /// `<letter><domid>`, as on the wire (`b5`).
    pub fn to_wire(self) -> String {
        let letter = match self.access {
            Access::None => 'n',
            Access::Read => 'r',
            Access::Write => 'w',
            Access::Both => 'b',
        };
        alloc::format!("{letter}{}", self.domid)
    }

    /// Parses `<letter><domid>`.
    pub fn from_wire(text: &str) -> Result<Self, XsError> {
        let malformed = XsError::Protocol(ProtocolError::Malformed("a permission does not parse"));
        let mut chars = text.chars();
        let access = match chars.next() {
            Some('n') => Access::None,
            Some('r') => Access::Read,
            Some('w') => Access::Write,
            Some('b') => Access::Both,
            _ => return Err(malformed),
        };
        let domid = chars.as_str().parse().map_err(|_| malformed)?;
        Ok(Self { domid, access })
    }
}

/// Parses a `GET_PERMS` reply, `<perm-as-string>|+`.
pub fn parse_permissions(payload: &[u8]) -> Result<Vec<Permission>, XsError> {
    let permissions = split_strings(payload)?
        .iter()
        .map(|text| Permission::from_wire(text))
        .collect::<Result<Vec<_>, _>>()?;
    if permissions.is_empty() {
        return Err(XsError::Protocol(ProtocolError::Malformed("a node without permissions")));
    }
    Ok(permissions)
}

/// The payload of a `SET_PERMS`: `<path>|<perm-as-string>|+`.
pub fn set_permissions_payload(path: &str, permissions: &[Permission]) -> Result<Vec<u8>, XsError> {
    let texts: Vec<String> = permissions.iter().map(|permission| permission.to_wire()).collect();
    let mut parts: Vec<&[u8]> = Vec::with_capacity(permissions.len() + 1);
    parts.push(path.as_bytes());
    parts.extend(texts.iter().map(|text| text.as_bytes()));
    strings(&parts)
}

/// One part of a `DIRECTORY_PART` reply: `<gencnt>|<child-leaf-name>|*`, the list ending with an
/// empty name once the last child is in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirectoryPart {
    /// The node's generation count (equal across parts: the node did not change).
    pub generation: String,
    /// The children in this part.
    pub children: Vec<String>,
    /// Bytes of the children list this part covers (the next part's offset grows by this).
    pub length: usize,
    /// Whether this part holds the last child.
    pub last: bool,
}

/// Parses a `DIRECTORY_PART` reply.
pub fn parse_directory_part(payload: &[u8]) -> Result<DirectoryPart, XsError> {
    let malformed = |what| XsError::Protocol(ProtocolError::Malformed(what));
    let split = payload.iter().position(|&byte| byte == 0).ok_or(malformed("no generation"))?;
    let generation = utf8(&payload[..split])?;
    let list = &payload[split + 1..];
    // The last part ends with an empty name: two NULs (or one, for an empty list).
    let (names, last) = match list {
        [0] => (&list[..0], true),
        [.., 0, 0] => (&list[..list.len() - 1], true),
        [.., 0] => (list, false),
        _ => return Err(malformed("a directory part is not NUL-terminated")),
    };
    if !last && names.is_empty() {
        return Err(malformed("an empty directory part that is not the last"));
    }
    Ok(DirectoryPart { generation, children: split_strings(names)?, length: names.len(), last })
}

/// Access to the shared page: 32-bit fields and ring bytes at byte offsets, and the barriers
/// xenstore-ring.txt needs between them. The page may change under the client at any time, so
/// implementations use volatile or atomic accesses and never hand out a reference to it.
pub trait RingPage {
    /// Reads the 32-bit field at `offset` (single-copy atomic, unordered).
    fn load(&self, offset: usize) -> u32;
    /// Writes the 32-bit field at `offset` (single-copy atomic, unordered).
    fn store(&mut self, offset: usize, value: u32);
    /// Copies `out.len()` bytes at `offset` out of the page.
    fn read(&self, offset: usize, out: &mut [u8]);
    /// Copies `bytes` into the page at `offset`.
    fn write(&mut self, offset: usize, bytes: &[u8]);
    /// Orders earlier loads before later loads (`virt_rmb`).
    fn read_barrier(&self);
    /// Orders earlier stores before later stores (`virt_wmb`).
    fn write_barrier(&self);
    /// Orders every earlier access before every later one (`virt_mb`).
    fn full_barrier(&self);
}

/// One of the page's two byte rings: where its data and its two indexes are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ring {
    data: usize,
    consumer: usize,
    producer: usize,
}

/// The request ring (the client produces, the store consumes).
pub const REQUESTS: Ring = Ring { data: 0, consumer: XS_REQ_CONS, producer: XS_REQ_PROD };
/// The reply ring (the store produces, the client consumes).
pub const REPLIES: Ring =
    Ring { data: XENSTORE_RING_SIZE, consumer: XS_RSP_CONS, producer: XS_RSP_PROD };

impl Ring {
    /// As its producer, whose own producer index is `producer`: copies as many of `bytes` as
    /// there is room for and publishes the new producer index. How many were written.
    pub fn produce<P: RingPage + ?Sized>(
        self,
        page: &mut P,
        producer: u32,
        bytes: &[u8],
    ) -> Result<usize, RingError> {
        let consumer = page.load(self.consumer);
        let used = producer.wrapping_sub(consumer) as usize;
        if used > XENSTORE_RING_SIZE {
            return Err(RingError::BadIndex { producer, consumer });
        }
        let total = (XENSTORE_RING_SIZE - used).min(bytes.len());
        if total == 0 {
            return Ok(0);
        }
        // The space is free only once the consumer index said so: write after reading it.
        page.full_barrier();
        let mut done = 0;
        while done < total {
            let start = mask_xenstore_idx(producer.wrapping_add(done as u32));
            let chunk = (XENSTORE_RING_SIZE - start).min(total - done);
            page.write(self.data + start, &bytes[done..done + chunk]);
            done += chunk;
        }
        // The consumer must see the data before the index that covers it.
        page.write_barrier();
        page.store(self.producer, producer.wrapping_add(total as u32));
        Ok(total)
    }

    /// As its consumer, whose own consumer index is `consumer`: copies as many bytes as are
    /// there (at most `out.len()`) and publishes the new consumer index. How many were read.
    pub fn consume<P: RingPage + ?Sized>(
        self,
        page: &mut P,
        consumer: u32,
        out: &mut [u8],
    ) -> Result<usize, RingError> {
        let producer = page.load(self.producer);
        let available = producer.wrapping_sub(consumer) as usize;
        if available > XENSTORE_RING_SIZE {
            return Err(RingError::BadIndex { producer, consumer });
        }
        let total = available.min(out.len());
        if total == 0 {
            return Ok(0);
        }
        // Read the data only after the producer index that covers it.
        page.read_barrier();
        let mut done = 0;
        while done < total {
            let start = mask_xenstore_idx(consumer.wrapping_add(done as u32));
            let chunk = (XENSTORE_RING_SIZE - start).min(total - done);
            page.read(self.data + start, &mut out[done..done + chunk]);
            done += chunk;
        }
        // The producer must not reuse the space before the data is copied out.
        page.full_barrier();
        page.store(self.consumer, consumer.wrapping_add(total as u32));
        Ok(total)
    }
}

/// Reassembles messages from the bytes of a ring, however they are split.
#[derive(Debug, Default)]
pub struct Receiver {
    header: [u8; XSD_SOCKMSG_SIZE],
    header_length: usize,
    /// The header once complete, and the payload bytes read so far.
    body: Option<(xsd_sockmsg, Vec<u8>, usize)>,
}

impl Receiver {
    /// Reads from `ring` (as consumer, its index at `*consumer`, advanced) until a message is
    /// complete or the ring is empty: the message, or `None` (part of one may be kept).
    pub fn receive<P: RingPage + ?Sized>(
        &mut self,
        page: &mut P,
        ring: Ring,
        consumer: &mut u32,
    ) -> Result<Option<Message>, RingError> {
        if self.body.is_none() {
            let read = ring.consume(page, *consumer, &mut self.header[self.header_length..])?;
            *consumer = consumer.wrapping_add(read as u32);
            self.header_length += read;
            if self.header_length < XSD_SOCKMSG_SIZE {
                return Ok(None);
            }
            let header = xsd_sockmsg::read_from_bytes(&self.header).unwrap_or_default();
            if header.len as usize > XENSTORE_PAYLOAD_MAX {
                return Err(RingError::PayloadTooLong(header.len));
            }
            self.body = Some((header, alloc::vec![0; header.len as usize], 0));
        }
        let Some((header, payload, filled)) = &mut self.body else { return Ok(None) };
        let read = ring.consume(page, *consumer, &mut payload[*filled..])?;
        *consumer = consumer.wrapping_add(read as u32);
        *filled += read;
        if *filled < payload.len() {
            return Ok(None);
        }
        let header = *header;
        let payload = core::mem::take(payload);
        self.body = None;
        self.header_length = 0;
        Ok(Some(Message { header, payload }))
    }

    /// Whether part of a message has been read.
    pub fn is_partial(&self) -> bool {
        self.header_length > 0
    }
}

mod client;

pub use client::{Client, Stats, Transaction, Transport, MAX_TRANSACTION_ATTEMPTS};

#[cfg(test)]
mod tests;
