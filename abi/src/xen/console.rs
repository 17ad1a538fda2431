//! The hypervisor console hypercall, `console_io` (`xen/include/public/xen.h`), and a domain's
//! PV console ring page (`xen/include/public/io/console.h`).
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

/// `xen/include/public/io/console.h`: `struct xencons_interface`, a domain's PV console ring
/// page (Xen 4.17's layout; later Xen appends a `connection` byte after `out_prod`). The domain
/// produces `out` and consumes `in`; the console backend the reverse. Indexes are free-running
/// (`XENCONS_RING_IDX`, a `uint32_t`), masked with their half's size (`MASK_XENCONS_IDX`).
#[repr(C)]
#[derive(
    Clone,
    Copy,
    Debug,
    zerocopy::FromBytes,
    zerocopy::IntoBytes,
    zerocopy::KnownLayout,
    zerocopy::Immutable,
)]
pub struct xencons_interface {
    /// Input to the domain.
    pub r#in: [u8; 1024],
    /// Output from the domain.
    pub out: [u8; 2048],
    /// The domain's consumer index into `in`.
    pub in_cons: u32,
    /// The backend's producer index into `in`.
    pub in_prod: u32,
    /// The backend's consumer index into `out`.
    pub out_cons: u32,
    /// The domain's producer index into `out`.
    pub out_prod: u32,
}

/// Bytes of [`xencons_interface::in`](xencons_interface).
pub const XENCONS_IN_SIZE: u32 = 1024;
/// Bytes of [`xencons_interface::out`].
pub const XENCONS_OUT_SIZE: u32 = 2048;
/// Offset of `in` in [`xencons_interface`].
pub const XENCONS_IN_OFFSET: usize = core::mem::offset_of!(xencons_interface, r#in);
/// Offset of `out`.
pub const XENCONS_OUT_OFFSET: usize = core::mem::offset_of!(xencons_interface, out);
/// Offset of `in_cons`.
pub const XENCONS_IN_CONS_OFFSET: usize = core::mem::offset_of!(xencons_interface, in_cons);
/// Offset of `in_prod`.
pub const XENCONS_IN_PROD_OFFSET: usize = core::mem::offset_of!(xencons_interface, in_prod);
/// Offset of `out_cons`.
pub const XENCONS_OUT_CONS_OFFSET: usize = core::mem::offset_of!(xencons_interface, out_cons);
/// Offset of `out_prod`.
pub const XENCONS_OUT_PROD_OFFSET: usize = core::mem::offset_of!(xencons_interface, out_prod);

#[cfg(test)]
mod tests {
    use super::*;

    /// `xen/include/public/io/console.h`: the ring page's layout.
    #[test]
    fn xencons_interface_layout() {
        assert_eq!(core::mem::size_of::<xencons_interface>(), 3088);
        assert_eq!(
            [XENCONS_IN_OFFSET, XENCONS_OUT_OFFSET, XENCONS_IN_CONS_OFFSET, XENCONS_IN_PROD_OFFSET],
            [0, 1024, 3072, 3076]
        );
        assert_eq!([XENCONS_OUT_CONS_OFFSET, XENCONS_OUT_PROD_OFFSET], [3080, 3084]);
        assert_eq!(XENCONS_IN_SIZE as usize, core::mem::size_of_val(&[0u8; 1024]));
        assert_eq!(XENCONS_OUT_SIZE, 2048);
    }

    /// `xen/include/public/xen.h`: the `CONSOLEIO_*` numbers.
    #[test]
    fn numbers() {
        assert_eq!(CONSOLEIO_write, 0);
        assert_eq!(CONSOLEIO_read, 1);
    }
}
