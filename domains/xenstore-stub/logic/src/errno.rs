//! The errors a request can fail with, as Xen names them on the wire.
//!
//! Exists so that every handler returns one closed enum whose wire form cannot drift from Xen's
//! table: each variant's discriminant is its index in `xsd_errors[]` (`io/xs_wire.h`, encoded as
//! [`XSD_ERRORS`]), and an `XS_ERROR` reply carries that entry's name, NUL-terminated.
//!
//! # Invariants
//! - `Errno as usize` is a valid index into [`XSD_ERRORS`] (pinned by a unit test), so
//!   [`Errno::name`] cannot fail.

use xenolith_abi::xen::xs_wire::XSD_ERRORS;

/// An error reply (only the errors this crate returns; the others stay in Xen's table).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(usize)]
pub(crate) enum Errno {
    /// `EINVAL`: malformed request.
    Inval = 0,
    /// `EACCES`: permission denied (or existence hidden).
    Acces = 1,
    /// `EEXIST`: the watch exists already.
    Exist = 2,
    /// `ENOENT`: no such node, watch, transaction or domain.
    Noent = 4,
    /// `ENOMEM`: Xen's answer for committing a transaction that an earlier failure doomed.
    Nomem = 5,
    /// `ENOSPC`: a quota (nodes, node size, transactions, permissions) is exhausted.
    Nospc = 6,
    /// `EIO`: the store found itself inconsistent.
    Io = 7,
    /// `ENOSYS`: unknown message type.
    Nosys = 9,
    /// `EBUSY`: `TRANSACTION_START` inside a transaction.
    Busy = 11,
    /// `EAGAIN`: transaction conflict, or a transaction doomed by a restart.
    Again = 12,
    /// `E2BIG`: reply too long, or the watch quota is exhausted.
    TooBig = 14,
    /// `EPERM`: an unprivileged domain tried to change a node's owner.
    Perm = 15,
}

impl Errno {
    /// Xen's name of the error, as an `XS_ERROR` payload carries it (without the NUL).
    pub(crate) fn name(self) -> &'static str {
        XSD_ERRORS[self as usize].1
    }
}

#[cfg(test)]
mod tests {
    use super::Errno;

    #[test]
    fn names_match_xens_table() {
        let expect = [
            (Errno::Inval, "EINVAL"),
            (Errno::Acces, "EACCES"),
            (Errno::Exist, "EEXIST"),
            (Errno::Noent, "ENOENT"),
            (Errno::Nomem, "ENOMEM"),
            (Errno::Nospc, "ENOSPC"),
            (Errno::Io, "EIO"),
            (Errno::Nosys, "ENOSYS"),
            (Errno::Busy, "EBUSY"),
            (Errno::Again, "EAGAIN"),
            (Errno::TooBig, "E2BIG"),
            (Errno::Perm, "EPERM"),
        ];
        for (errno, name) in expect {
            assert_eq!(errno.name(), name);
        }
    }
}
