//! The hypervisor console hypercall, `console_io` (`xen/include/public/xen.h`).
//!
//! `console_io(cmd, count, buffer)`: x0 is the sub-operation below, x1 the byte count, x2 the
//! guest address of the buffer (`XEN_GUEST_HANDLE_PARAM(char)`).
//!
//! # Invariants
//! - Numbers are Xen 4.17's; there are no gaps.

// Xen's spelling of its own names (see `hypercall`).
#![allow(non_upper_case_globals)]

/// `xen/include/public/xen.h`: `CONSOLEIO_write`, write `count` bytes from the buffer to the
/// hypervisor console. Xen prints every byte for the hardware domain and only printable ones,
/// possibly held until a newline, for others. Returns 0.
pub const CONSOLEIO_write: u32 = 0;
/// `xen/include/public/xen.h`: `CONSOLEIO_read`, read up to `count` bytes (at most 2 GiB) of
/// console input into the buffer. Returns the number of bytes read.
pub const CONSOLEIO_read: u32 = 1;

#[cfg(test)]
mod tests {
    use super::*;

    /// `xen/include/public/xen.h`: the `CONSOLEIO_*` numbers.
    #[test]
    fn numbers() {
        assert_eq!(CONSOLEIO_write, 0);
        assert_eq!(CONSOLEIO_read, 1);
    }
}
