//! The xenstore wire protocol and ring page (`xen/include/public/io/xs_wire.h`, Xen 4.17;
//! semantics in `docs/misc/xenstore.txt` and `docs/misc/xenstore-ring.txt`).
//!
//! A message is a [`xsd_sockmsg`] header (16 bytes, little-endian on every Xen architecture
//! Xenolith supports) followed by `len` payload bytes, at most [`XENSTORE_PAYLOAD_MAX`]. A domain
//! talks to xenstored through one page laid out as [`xenstore_domain_interface`]: a 1 KiB request
//! ring, a 1 KiB reply ring, free-running 32-bit indexes masked with [`mask_xenstore_idx`].
//!
//! # Invariants
//! - Type numbers are Xen's, with the gap Xen left where `XS_RESTRICT` was (value 20).
//! - The error table is Xen's `xsd_errors[]`, in Xen's order; an error reply carries the name,
//!   not the number.

// Xen's spelling of its own names.
#![allow(non_camel_case_types, non_upper_case_globals)]

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// `xs_wire.h`: `enum xsd_sockmsg_type`, the `type` of a message.
pub mod msg {
    /// `XS_CONTROL` (also `XS_DEBUG`).
    pub const XS_CONTROL: u32 = 0;
    /// `XS_DIRECTORY`.
    pub const XS_DIRECTORY: u32 = 1;
    /// `XS_READ`.
    pub const XS_READ: u32 = 2;
    /// `XS_GET_PERMS`.
    pub const XS_GET_PERMS: u32 = 3;
    /// `XS_WATCH`.
    pub const XS_WATCH: u32 = 4;
    /// `XS_UNWATCH`.
    pub const XS_UNWATCH: u32 = 5;
    /// `XS_TRANSACTION_START`.
    pub const XS_TRANSACTION_START: u32 = 6;
    /// `XS_TRANSACTION_END`.
    pub const XS_TRANSACTION_END: u32 = 7;
    /// `XS_INTRODUCE`.
    pub const XS_INTRODUCE: u32 = 8;
    /// `XS_RELEASE`.
    pub const XS_RELEASE: u32 = 9;
    /// `XS_GET_DOMAIN_PATH`.
    pub const XS_GET_DOMAIN_PATH: u32 = 10;
    /// `XS_WRITE`.
    pub const XS_WRITE: u32 = 11;
    /// `XS_MKDIR`.
    pub const XS_MKDIR: u32 = 12;
    /// `XS_RM`.
    pub const XS_RM: u32 = 13;
    /// `XS_SET_PERMS`.
    pub const XS_SET_PERMS: u32 = 14;
    /// `XS_WATCH_EVENT`.
    pub const XS_WATCH_EVENT: u32 = 15;
    /// `XS_ERROR`.
    pub const XS_ERROR: u32 = 16;
    /// `XS_IS_DOMAIN_INTRODUCED`.
    pub const XS_IS_DOMAIN_INTRODUCED: u32 = 17;
    /// `XS_RESUME`.
    pub const XS_RESUME: u32 = 18;
    /// `XS_SET_TARGET`.
    pub const XS_SET_TARGET: u32 = 19;
    /// `XS_RESET_WATCHES` (`XS_SET_TARGET + 2`: 20 was `XS_RESTRICT`, removed).
    pub const XS_RESET_WATCHES: u32 = 21;
    /// `XS_DIRECTORY_PART`.
    pub const XS_DIRECTORY_PART: u32 = 22;
    /// `XS_TYPE_COUNT`: number of valid types (one past the last).
    pub const XS_TYPE_COUNT: u32 = 23;
    /// `XS_INVALID`: guaranteed never to be a valid type.
    pub const XS_INVALID: u32 = 0xffff;
}

/// `xs_wire.h`: `XS_WRITE_NONE`, a write flag of the old protocol.
pub const XS_WRITE_NONE: &str = "NONE";
/// `xs_wire.h`: `XS_WRITE_CREATE`.
pub const XS_WRITE_CREATE: &str = "CREATE";
/// `xs_wire.h`: `XS_WRITE_CREATE_EXCL`.
pub const XS_WRITE_CREATE_EXCL: &str = "CREATE|EXCL";

/// `xs_wire.h`: `xsd_errors[]`, the errors an `XS_ERROR` reply may name, as (Linux errno value,
/// name), in Xen's order. The reply's payload is the name, NUL-terminated.
pub const XSD_ERRORS: [(i32, &str); 16] = [
    (22, "EINVAL"),
    (13, "EACCES"),
    (17, "EEXIST"),
    (21, "EISDIR"),
    (2, "ENOENT"),
    (12, "ENOMEM"),
    (28, "ENOSPC"),
    (5, "EIO"),
    (39, "ENOTEMPTY"),
    (38, "ENOSYS"),
    (30, "EROFS"),
    (16, "EBUSY"),
    (11, "EAGAIN"),
    (106, "EISCONN"),
    (7, "E2BIG"),
    (1, "EPERM"),
];

/// The errno value of an `XS_ERROR` payload name, if Xen's table has it.
pub fn error_number(name: &str) -> Option<i32> {
    XSD_ERRORS.iter().find(|(_, known)| *known == name).map(|(number, _)| *number)
}

/// `xs_wire.h`: `struct xsd_sockmsg`, the header of every message.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
pub struct xsd_sockmsg {
    /// `XS_*` ([`msg`]).
    pub type_: u32,
    /// Request identifier, echoed in the reply.
    pub req_id: u32,
    /// Transaction id (0: not in a transaction).
    pub tx_id: u32,
    /// Length of the payload that follows.
    pub len: u32,
}

/// Bytes of [`xsd_sockmsg`].
pub const XSD_SOCKMSG_SIZE: usize = 16;

/// `xs_wire.h`: `enum xs_watch_type`, index of the path in a `XS_WATCH_EVENT` payload.
pub const XS_WATCH_PATH: usize = 0;
/// `xs_wire.h`: index of the token in a `XS_WATCH_EVENT` payload.
pub const XS_WATCH_TOKEN: usize = 1;

/// `xs_wire.h`: `XENSTORE_RING_SIZE`, bytes of each ring (a power of two).
pub const XENSTORE_RING_SIZE: usize = 1024;

/// `xs_wire.h`: `MASK_XENSTORE_IDX`, a free-running index's offset in a ring.
pub const fn mask_xenstore_idx(index: u32) -> usize {
    index as usize & (XENSTORE_RING_SIZE - 1)
}

/// `xs_wire.h`: `struct xenstore_domain_interface`, the ring page shared by a domain and
/// xenstored. The guest produces `req` and consumes `rsp`; xenstored the reverse.
#[repr(C)]
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct xenstore_domain_interface {
    /// Requests to xenstored.
    pub req: [u8; XENSTORE_RING_SIZE],
    /// Replies and watch events.
    pub rsp: [u8; XENSTORE_RING_SIZE],
    /// Request ring consumer index (written by xenstored).
    pub req_cons: u32,
    /// Request ring producer index (written by the guest).
    pub req_prod: u32,
    /// Reply ring consumer index (written by the guest).
    pub rsp_cons: u32,
    /// Reply ring producer index (written by xenstored).
    pub rsp_prod: u32,
    /// `XENSTORE_SERVER_FEATURE_*` bits the server supports.
    pub server_features: u32,
    /// `XENSTORE_CONNECTED` or `XENSTORE_RECONNECT`.
    pub connection: u32,
    /// `XENSTORE_ERROR_*`.
    pub error: u32,
}

/// Byte offset of `req_cons` in the ring page.
pub const XS_REQ_CONS: usize = 2048;
/// Byte offset of `req_prod`.
pub const XS_REQ_PROD: usize = 2052;
/// Byte offset of `rsp_cons`.
pub const XS_RSP_CONS: usize = 2056;
/// Byte offset of `rsp_prod`.
pub const XS_RSP_PROD: usize = 2060;
/// Byte offset of `server_features`.
pub const XS_SERVER_FEATURES: usize = 2064;
/// Byte offset of `connection`.
pub const XS_CONNECTION: usize = 2068;
/// Byte offset of `error`.
pub const XS_ERROR_FIELD: usize = 2072;

/// `xs_wire.h`: `XENSTORE_PAYLOAD_MAX`, the largest payload of one message.
pub const XENSTORE_PAYLOAD_MAX: usize = 4096;
/// `xs_wire.h`: `XENSTORE_ABS_PATH_MAX`, the longest absolute path.
pub const XENSTORE_ABS_PATH_MAX: usize = 3072;
/// `xs_wire.h`: `XENSTORE_REL_PATH_MAX`, the longest relative path.
pub const XENSTORE_REL_PATH_MAX: usize = 2048;

/// `xs_wire.h`: `XENSTORE_SERVER_FEATURE_RECONNECTION`, the `connection` field is supported.
pub const XENSTORE_SERVER_FEATURE_RECONNECTION: u32 = 1;
/// `xs_wire.h`: `XENSTORE_SERVER_FEATURE_ERROR`, the `error` field is supported.
pub const XENSTORE_SERVER_FEATURE_ERROR: u32 = 2;

/// `xs_wire.h`: `XENSTORE_CONNECTED`, the steady state.
pub const XENSTORE_CONNECTED: u32 = 0;
/// `xs_wire.h`: `XENSTORE_RECONNECT`, a reconnection is in progress.
pub const XENSTORE_RECONNECT: u32 = 1;

/// `xs_wire.h`: `XENSTORE_ERROR_NONE`.
pub const XENSTORE_ERROR_NONE: u32 = 0;
/// `xs_wire.h`: `XENSTORE_ERROR_COMM`, a communication problem.
pub const XENSTORE_ERROR_COMM: u32 = 1;
/// `xs_wire.h`: `XENSTORE_ERROR_RINGIDX`, an invalid ring index.
pub const XENSTORE_ERROR_RINGIDX: u32 = 2;
/// `xs_wire.h`: `XENSTORE_ERROR_PROTO`, a protocol violation (payload too long).
pub const XENSTORE_ERROR_PROTO: u32 = 3;

#[cfg(test)]
mod tests {
    use core::mem::{offset_of, size_of};

    use super::*;

    #[test]
    fn layouts() {
        assert_eq!(size_of::<xsd_sockmsg>(), XSD_SOCKMSG_SIZE);
        assert_eq!(offset_of!(xsd_sockmsg, req_id), 4);
        assert_eq!(offset_of!(xsd_sockmsg, tx_id), 8);
        assert_eq!(offset_of!(xsd_sockmsg, len), 12);
        assert_eq!(offset_of!(xenstore_domain_interface, rsp), 1024);
        assert_eq!(offset_of!(xenstore_domain_interface, req_cons), XS_REQ_CONS);
        assert_eq!(offset_of!(xenstore_domain_interface, req_prod), XS_REQ_PROD);
        assert_eq!(offset_of!(xenstore_domain_interface, rsp_cons), XS_RSP_CONS);
        assert_eq!(offset_of!(xenstore_domain_interface, rsp_prod), XS_RSP_PROD);
        assert_eq!(offset_of!(xenstore_domain_interface, server_features), XS_SERVER_FEATURES);
        assert_eq!(offset_of!(xenstore_domain_interface, connection), XS_CONNECTION);
        assert_eq!(offset_of!(xenstore_domain_interface, error), XS_ERROR_FIELD);
        assert_eq!(size_of::<xenstore_domain_interface>(), 2076);
    }

    #[test]
    fn numbers_and_errors() {
        assert_eq!(msg::XS_DIRECTORY_PART, 22);
        assert_eq!(msg::XS_RESET_WATCHES, msg::XS_SET_TARGET + 2);
        assert_eq!(XSD_ERRORS[0], (22, "EINVAL"));
        assert_eq!(XSD_ERRORS[15], (1, "EPERM"));
        assert_eq!(error_number("EAGAIN"), Some(11));
        assert_eq!(error_number("EWHATEVER"), None);
        assert_eq!(mask_xenstore_idx(1025), 1);
    }
}
