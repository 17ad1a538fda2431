//! Error numbers as Xen's tools see them: Linux `errno` values, printed with glibc's
//! `strerror` text, because Xen's tools print failures with `err(3)` (`"<tool>: <message>:
//! <strerror>"`).
//!
//! A failed request yields an [`Errno`] the way libxenstore sets `errno`
//! (`tools/libs/store/xs.c`, Xen 4.17): an `XS_ERROR` reply's name through Xen's table
//! (`xsd_errors[]` in `xen/include/public/io/xs_wire.h`, unknown names are `EINVAL`), a failed
//! `read`/`write` through its OS error, and the connection closing under a read as `EBADF`.
//!
//! # Invariants
//! - Every name of `xsd_errors[]` has its number and glibc's text here.

use std::fmt;
use std::io;

use xenolith_abi::xen::xs_wire;

/// A Linux `errno` value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Errno(pub i32);

impl Errno {
    /// `EPERM`.
    pub const EPERM: Errno = Errno(1);
    /// `ENOENT`.
    pub const ENOENT: Errno = Errno(2);
    /// `EIO`.
    pub const EIO: Errno = Errno(5);
    /// `E2BIG`: a payload over `XENSTORE_PAYLOAD_MAX`, or a directory too large for one reply.
    pub const E2BIG: Errno = Errno(7);
    /// `EBADF`: the connection is gone (libxenstore's word for it).
    pub const EBADF: Errno = Errno(9);
    /// `EAGAIN`: a transaction lost a race and must be run again.
    pub const EAGAIN: Errno = Errno(11);
    /// `EACCES`.
    pub const EACCES: Errno = Errno(13);
    /// `EINVAL`.
    pub const EINVAL: Errno = Errno(22);
    /// `ENOSYS`: the server does not know the request type.
    pub const ENOSYS: Errno = Errno(38);

    /// The errno an `XS_ERROR` reply's payload names (its text up to the first NUL), `EINVAL`
    /// for a name outside Xen's table, as libxenstore's `get_error` does.
    pub fn from_error_reply(payload: &[u8]) -> Errno {
        let name = payload.split(|&byte| byte == 0).next().unwrap_or_default();
        std::str::from_utf8(name).ok().and_then(xs_wire::error_number).map_or(Errno::EINVAL, Errno)
    }

    /// The errno of a failed read or write: its OS error, else `EBADF` for an end of file
    /// (libxenstore's `read_all`), else `EIO`.
    pub fn from_io(error: &io::Error) -> Errno {
        match error.raw_os_error() {
            Some(number) => Errno(number),
            None if error.kind() == io::ErrorKind::UnexpectedEof => Errno::EBADF,
            None => Errno::EIO,
        }
    }

    /// glibc's `strerror` text.
    pub fn description(self) -> String {
        let text = match self.0 {
            1 => "Operation not permitted",
            2 => "No such file or directory",
            3 => "No such process",
            4 => "Interrupted system call",
            5 => "Input/output error",
            6 => "No such device or address",
            7 => "Argument list too long",
            9 => "Bad file descriptor",
            11 => "Resource temporarily unavailable",
            12 => "Cannot allocate memory",
            13 => "Permission denied",
            14 => "Bad address",
            16 => "Device or resource busy",
            17 => "File exists",
            19 => "No such device",
            20 => "Not a directory",
            21 => "Is a directory",
            22 => "Invalid argument",
            28 => "No space left on device",
            30 => "Read-only file system",
            32 => "Broken pipe",
            38 => "Function not implemented",
            39 => "Directory not empty",
            106 => "Transport endpoint is already connected",
            111 => "Connection refused",
            other => return format!("Unknown error {other}"),
        };
        text.to_owned()
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.description())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_xenstore_error_has_its_number_and_text() {
        for (number, name) in xs_wire::XSD_ERRORS {
            let mut payload = name.as_bytes().to_vec();
            payload.push(0);
            assert_eq!(Errno::from_error_reply(&payload), Errno(number), "{name}");
            assert!(!Errno(number).description().starts_with("Unknown"), "{name}");
        }
        assert_eq!(Errno::from_error_reply(b"ENOENT"), Errno::ENOENT, "no NUL");
        assert_eq!(Errno::from_error_reply(b"EWHATEVER\0"), Errno::EINVAL);
        assert_eq!(Errno::from_error_reply(b"\xff\0"), Errno::EINVAL);
        assert_eq!(Errno::ENOENT.to_string(), "No such file or directory");
        assert_eq!(Errno(4095).to_string(), "Unknown error 4095");
    }

    #[test]
    fn io_errors_keep_their_number_and_an_end_of_file_is_ebadf() {
        assert_eq!(Errno::from_io(&io::Error::from_raw_os_error(13)), Errno::EACCES);
        assert_eq!(Errno::from_io(&io::ErrorKind::UnexpectedEof.into()), Errno::EBADF);
        assert_eq!(Errno::from_io(&io::ErrorKind::Other.into()), Errno::EIO);
    }
}
