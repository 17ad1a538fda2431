//! Xen's error codes (`xen/include/public/errno.h`), as one closed enum.
//!
//! A failing hypercall returns the negated code in x0 ([`XenError::to_return`]). The values follow
//! x86 Linux's, but only the names Xen lists exist here.
//!
//! # Invariants
//! - [`XenError`] has exactly the guest-visible codes of Xen 4.17's `errno.h`. `EINTR` (4) and
//!   `ERESTART` (85) are Xen-internal (`#ifdef __XEN__`, never shown to a guest) and are
//!   deliberately absent: the core's continuation machinery has its own types.
//! - `EWOULDBLOCK` and `EDEADLOCK` are aliases in Xen, so they are associated constants naming
//!   [`XenError::EAGAIN`] and [`XenError::EDEADLK`], not variants.

use core::fmt;

/// `xen/include/public/errno.h`: `enum xen_errno`, the positive codes. A hypercall returns
/// `-code` ([`XenError::to_return`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(i32)]
pub enum XenError {
    /// `xen/include/public/errno.h`: `EPERM`, operation not permitted.
    EPERM = 1,
    /// `xen/include/public/errno.h`: `ENOENT`, no such entry.
    ENOENT = 2,
    /// `xen/include/public/errno.h`: `ESRCH`, no such domain or process.
    ESRCH = 3,
    /// `xen/include/public/errno.h`: `EIO`, I/O error.
    EIO = 5,
    /// `xen/include/public/errno.h`: `ENXIO`, no such device or address.
    ENXIO = 6,
    /// `xen/include/public/errno.h`: `E2BIG`, argument list too long.
    E2BIG = 7,
    /// `xen/include/public/errno.h`: `ENOEXEC`, bad executable format.
    ENOEXEC = 8,
    /// `xen/include/public/errno.h`: `EBADF`, bad descriptor.
    EBADF = 9,
    /// `xen/include/public/errno.h`: `ECHILD`, no child processes.
    ECHILD = 10,
    /// `xen/include/public/errno.h`: `EAGAIN` (also `EWOULDBLOCK`), try again.
    EAGAIN = 11,
    /// `xen/include/public/errno.h`: `ENOMEM`, out of memory.
    ENOMEM = 12,
    /// `xen/include/public/errno.h`: `EACCES`, permission denied.
    EACCES = 13,
    /// `xen/include/public/errno.h`: `EFAULT`, bad address.
    EFAULT = 14,
    /// `xen/include/public/errno.h`: `EBUSY`, device or resource busy.
    EBUSY = 16,
    /// `xen/include/public/errno.h`: `EEXIST`, already exists.
    EEXIST = 17,
    /// `xen/include/public/errno.h`: `EXDEV`, cross-device link.
    EXDEV = 18,
    /// `xen/include/public/errno.h`: `ENODEV`, no such device.
    ENODEV = 19,
    /// `xen/include/public/errno.h`: `ENOTDIR`, not a directory.
    ENOTDIR = 20,
    /// `xen/include/public/errno.h`: `EISDIR`, is a directory.
    EISDIR = 21,
    /// `xen/include/public/errno.h`: `EINVAL`, invalid argument.
    EINVAL = 22,
    /// `xen/include/public/errno.h`: `ENFILE`, file table overflow.
    ENFILE = 23,
    /// `xen/include/public/errno.h`: `EMFILE`, too many open files.
    EMFILE = 24,
    /// `xen/include/public/errno.h`: `ENOSPC`, no space left.
    ENOSPC = 28,
    /// `xen/include/public/errno.h`: `EROFS`, read-only.
    EROFS = 30,
    /// `xen/include/public/errno.h`: `EMLINK`, too many links.
    EMLINK = 31,
    /// `xen/include/public/errno.h`: `EDOM`, argument out of domain.
    EDOM = 33,
    /// `xen/include/public/errno.h`: `ERANGE`, result out of range.
    ERANGE = 34,
    /// `xen/include/public/errno.h`: `EDEADLK` (also `EDEADLOCK`), deadlock would occur.
    EDEADLK = 35,
    /// `xen/include/public/errno.h`: `ENAMETOOLONG`, name too long.
    ENAMETOOLONG = 36,
    /// `xen/include/public/errno.h`: `ENOLCK`, no locks available.
    ENOLCK = 37,
    /// `xen/include/public/errno.h`: `ENOSYS`, operation not implemented.
    ENOSYS = 38,
    /// `xen/include/public/errno.h`: `ENOTEMPTY`, not empty.
    ENOTEMPTY = 39,
    /// `xen/include/public/errno.h`: `ENODATA`, no data available.
    ENODATA = 61,
    /// `xen/include/public/errno.h`: `ETIME`, timer expired.
    ETIME = 62,
    /// `xen/include/public/errno.h`: `EBADMSG`, not a data message.
    EBADMSG = 74,
    /// `xen/include/public/errno.h`: `EOVERFLOW`, value too large for its type.
    EOVERFLOW = 75,
    /// `xen/include/public/errno.h`: `EILSEQ`, illegal byte sequence.
    EILSEQ = 84,
    /// `xen/include/public/errno.h`: `ENOTSOCK`, not a socket.
    ENOTSOCK = 88,
    /// `xen/include/public/errno.h`: `EMSGSIZE`, message too large.
    EMSGSIZE = 90,
    /// `xen/include/public/errno.h`: `EOPNOTSUPP`, operation not supported.
    EOPNOTSUPP = 95,
    /// `xen/include/public/errno.h`: `EADDRINUSE`, address in use.
    EADDRINUSE = 98,
    /// `xen/include/public/errno.h`: `EADDRNOTAVAIL`, address not available.
    EADDRNOTAVAIL = 99,
    /// `xen/include/public/errno.h`: `ENOBUFS`, no buffer space.
    ENOBUFS = 105,
    /// `xen/include/public/errno.h`: `EISCONN`, already connected.
    EISCONN = 106,
    /// `xen/include/public/errno.h`: `ENOTCONN`, not connected.
    ENOTCONN = 107,
    /// `xen/include/public/errno.h`: `ETIMEDOUT`, timed out.
    ETIMEDOUT = 110,
    /// `xen/include/public/errno.h`: `ECONNREFUSED`, connection refused.
    ECONNREFUSED = 111,
}

impl XenError {
    /// `xen/include/public/errno.h`: `EWOULDBLOCK`, an alias of [`XenError::EAGAIN`].
    pub const EWOULDBLOCK: Self = Self::EAGAIN;
    /// `xen/include/public/errno.h`: `EDEADLOCK`, an alias of [`XenError::EDEADLK`].
    pub const EDEADLOCK: Self = Self::EDEADLK;

    /// Every code, in ascending order.
    pub const ALL: [Self; 47] = [
        Self::EPERM,
        Self::ENOENT,
        Self::ESRCH,
        Self::EIO,
        Self::ENXIO,
        Self::E2BIG,
        Self::ENOEXEC,
        Self::EBADF,
        Self::ECHILD,
        Self::EAGAIN,
        Self::ENOMEM,
        Self::EACCES,
        Self::EFAULT,
        Self::EBUSY,
        Self::EEXIST,
        Self::EXDEV,
        Self::ENODEV,
        Self::ENOTDIR,
        Self::EISDIR,
        Self::EINVAL,
        Self::ENFILE,
        Self::EMFILE,
        Self::ENOSPC,
        Self::EROFS,
        Self::EMLINK,
        Self::EDOM,
        Self::ERANGE,
        Self::EDEADLK,
        Self::ENAMETOOLONG,
        Self::ENOLCK,
        Self::ENOSYS,
        Self::ENOTEMPTY,
        Self::ENODATA,
        Self::ETIME,
        Self::EBADMSG,
        Self::EOVERFLOW,
        Self::EILSEQ,
        Self::ENOTSOCK,
        Self::EMSGSIZE,
        Self::EOPNOTSUPP,
        Self::EADDRINUSE,
        Self::EADDRNOTAVAIL,
        Self::ENOBUFS,
        Self::EISCONN,
        Self::ENOTCONN,
        Self::ETIMEDOUT,
        Self::ECONNREFUSED,
    ];

    /// The positive code (`EPERM` is 1).
    pub const fn code(self) -> i32 {
        self as i32
    }

    /// What a failing hypercall puts in x0: the negated code (`EPERM` is -1).
    pub const fn to_return(self) -> i64 {
        -(self as i64)
    }

    /// The error with positive code `code`, if Xen has one.
    pub const fn from_code(code: i32) -> Option<Self> {
        let mut index = 0;
        while index < Self::ALL.len() {
            if Self::ALL[index] as i32 == code {
                return Some(Self::ALL[index]);
            }
            index += 1;
        }
        None
    }

    /// The error a hypercall's return value `value` reports, if it is a negated Xen code.
    pub const fn from_return(value: i64) -> Option<Self> {
        if value < 0 && value >= -(i32::MAX as i64) {
            Self::from_code(-value as i32)
        } else {
            None
        }
    }

    /// Xen's name for the code, such as `"EPERM"`.
    pub const fn name(self) -> &'static str {
        match self {
            Self::EPERM => "EPERM",
            Self::ENOENT => "ENOENT",
            Self::ESRCH => "ESRCH",
            Self::EIO => "EIO",
            Self::ENXIO => "ENXIO",
            Self::E2BIG => "E2BIG",
            Self::ENOEXEC => "ENOEXEC",
            Self::EBADF => "EBADF",
            Self::ECHILD => "ECHILD",
            Self::EAGAIN => "EAGAIN",
            Self::ENOMEM => "ENOMEM",
            Self::EACCES => "EACCES",
            Self::EFAULT => "EFAULT",
            Self::EBUSY => "EBUSY",
            Self::EEXIST => "EEXIST",
            Self::EXDEV => "EXDEV",
            Self::ENODEV => "ENODEV",
            Self::ENOTDIR => "ENOTDIR",
            Self::EISDIR => "EISDIR",
            Self::EINVAL => "EINVAL",
            Self::ENFILE => "ENFILE",
            Self::EMFILE => "EMFILE",
            Self::ENOSPC => "ENOSPC",
            Self::EROFS => "EROFS",
            Self::EMLINK => "EMLINK",
            Self::EDOM => "EDOM",
            Self::ERANGE => "ERANGE",
            Self::EDEADLK => "EDEADLK",
            Self::ENAMETOOLONG => "ENAMETOOLONG",
            Self::ENOLCK => "ENOLCK",
            Self::ENOSYS => "ENOSYS",
            Self::ENOTEMPTY => "ENOTEMPTY",
            Self::ENODATA => "ENODATA",
            Self::ETIME => "ETIME",
            Self::EBADMSG => "EBADMSG",
            Self::EOVERFLOW => "EOVERFLOW",
            Self::EILSEQ => "EILSEQ",
            Self::ENOTSOCK => "ENOTSOCK",
            Self::EMSGSIZE => "EMSGSIZE",
            Self::EOPNOTSUPP => "EOPNOTSUPP",
            Self::EADDRINUSE => "EADDRINUSE",
            Self::EADDRNOTAVAIL => "EADDRNOTAVAIL",
            Self::ENOBUFS => "ENOBUFS",
            Self::EISCONN => "EISCONN",
            Self::ENOTCONN => "ENOTCONN",
            Self::ETIMEDOUT => "ETIMEDOUT",
            Self::ECONNREFUSED => "ECONNREFUSED",
        }
    }
}

impl fmt::Display for XenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl core::error::Error for XenError {}

#[cfg(test)]
mod tests {
    use super::*;

    /// `xen/include/public/errno.h`: every guest-visible code and its value.
    #[test]
    fn values() {
        let table = [
            (XenError::EPERM, 1),
            (XenError::ENOENT, 2),
            (XenError::ESRCH, 3),
            (XenError::EIO, 5),
            (XenError::ENXIO, 6),
            (XenError::E2BIG, 7),
            (XenError::ENOEXEC, 8),
            (XenError::EBADF, 9),
            (XenError::ECHILD, 10),
            (XenError::EAGAIN, 11),
            (XenError::ENOMEM, 12),
            (XenError::EACCES, 13),
            (XenError::EFAULT, 14),
            (XenError::EBUSY, 16),
            (XenError::EEXIST, 17),
            (XenError::EXDEV, 18),
            (XenError::ENODEV, 19),
            (XenError::ENOTDIR, 20),
            (XenError::EISDIR, 21),
            (XenError::EINVAL, 22),
            (XenError::ENFILE, 23),
            (XenError::EMFILE, 24),
            (XenError::ENOSPC, 28),
            (XenError::EROFS, 30),
            (XenError::EMLINK, 31),
            (XenError::EDOM, 33),
            (XenError::ERANGE, 34),
            (XenError::EDEADLK, 35),
            (XenError::ENAMETOOLONG, 36),
            (XenError::ENOLCK, 37),
            (XenError::ENOSYS, 38),
            (XenError::ENOTEMPTY, 39),
            (XenError::ENODATA, 61),
            (XenError::ETIME, 62),
            (XenError::EBADMSG, 74),
            (XenError::EOVERFLOW, 75),
            (XenError::EILSEQ, 84),
            (XenError::ENOTSOCK, 88),
            (XenError::EMSGSIZE, 90),
            (XenError::EOPNOTSUPP, 95),
            (XenError::EADDRINUSE, 98),
            (XenError::EADDRNOTAVAIL, 99),
            (XenError::ENOBUFS, 105),
            (XenError::EISCONN, 106),
            (XenError::ENOTCONN, 107),
            (XenError::ETIMEDOUT, 110),
            (XenError::ECONNREFUSED, 111),
        ];
        assert_eq!(table.len(), XenError::ALL.len());
        for (error, code) in table {
            assert_eq!(error.code(), code, "{error}");
        }
        assert_eq!(XenError::EWOULDBLOCK.code(), 11);
        assert_eq!(XenError::EDEADLOCK.code(), 35);
    }

    /// `xen/include/public/errno.h`: the two Xen-internal codes are not guest-visible.
    #[test]
    fn internal_codes_absent() {
        assert_eq!(XenError::from_code(4), None); // EINTR
        assert_eq!(XenError::from_code(85), None); // ERESTART
        assert_eq!(XenError::from_code(0), None);
        assert_eq!(XenError::from_code(-1), None);
    }

    #[test]
    fn round_trips() {
        let mut previous = 0;
        for error in XenError::ALL {
            assert!(error.code() > previous, "{error} out of order");
            previous = error.code();
            assert_eq!(XenError::from_code(error.code()), Some(error));
            assert_eq!(XenError::from_return(error.to_return()), Some(error));
            assert_eq!(error.to_return(), -i64::from(error.code()));
        }
        assert_eq!(XenError::from_return(0), None);
        assert_eq!(XenError::from_return(1), None);
        assert_eq!(XenError::from_return(i64::MIN), None);
    }

    #[test]
    fn display_is_the_name() {
        assert_eq!(XenError::EPERM.to_string(), "EPERM");
        assert_eq!(XenError::E2BIG.to_string(), "E2BIG");
        assert_eq!(XenError::EWOULDBLOCK.to_string(), "EAGAIN");
        for error in XenError::ALL {
            assert_eq!(format!("{error:?}"), error.name());
        }
    }
}
