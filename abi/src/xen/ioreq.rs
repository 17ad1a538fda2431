//! I/O requests from the hypervisor to a device model (`xen/include/public/hvm/ioreq.h`): the
//! record of one trapped access ([`ioreq`]), the page of one record per vCPU an IOREQ server
//! shares with its emulator ([`shared_iopage`]), and the buffered-request ring
//! ([`buffered_iopage`]).
//!
//! # The synchronous protocol
//! Xen fills vCPU `n`'s record (`vcpu_ioreq[n]`, byte `32 * n` of the page), sets its state to
//! [`STATE_IOREQ_READY`] and signals the record's event channel (`vp_eport`); the emulator sets
//! [`STATE_IOREQ_INPROCESS`], performs the access, writes `data` for a read, sets
//! [`STATE_IORESP_READY`] and signals back; Xen completes the access and returns the record to
//! [`STATE_IOREQ_NONE`] (`xen/common/ioreq.c`, `ioreq_send`, `wait_for_io`; a state that
//! goes backwards crashes the target). The emulator maps the page with
//! `XENMEM_acquire_resource` ([`super::memory::XENMEM_resource_ioreq_server`], frame
//! [`super::memory::XENMEM_resource_ioreq_server_frame_ioreq`]`(0)`).
//!
//! # Arm (Xen 4.17)
//! `xen/arch/arm/ioreq.c`, `try_fwd_ioserv`: a trapped MMIO access is sent as
//! [`IOREQ_TYPE_COPY`] with `count` 1, `data_is_ptr` 0, `df` 0, `size` the access size in
//! bytes (1, 2, 4 or 8), `dir` [`IOREQ_WRITE`] or [`IOREQ_READ`], and for a write the register's
//! value in `data`. Besides it Arm sends only [`IOREQ_TYPE_INVALIDATE`] (`xen/common/ioreq.c`,
//! `ioreq_signal_mapcache_invalidate`, after the target's RAM mappings changed). Arm has no
//! port I/O and no buffered ioreqs (creating a server with buffering is `-EINVAL`, see
//! [`super::dm_op::HVM_IOREQSRV_BUFIOREQ_OFF`]); [`buf_ioreq`] and [`buffered_iopage`] are
//! encoded for completeness and Xenolith does not serve them.
//!
//! # Invariants
//! - Numbers and layouts are Xen 4.17's (`RELEASE-4.17.7`); layouts are arm64's (AAPCS64:
//!   C bit-fields are allocated from the least significant bit of their container), pinned by
//!   the tests below together with the bit positions of every bit-field.
//! - C bit-fields are kept as the integer that holds them, with the bit positions as
//!   constants and accessors; nothing here depends on a compiler's bit-field layout.

// Xen's spelling of its own names (see `hypercall`).
#![allow(non_upper_case_globals, non_camel_case_types)]

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use super::event_channel::evtchn_port_t;

/// `xen/include/public/hvm/ioreq.h`: `IOREQ_READ`, the `dir` bit of a read (data flows to the
/// guest).
pub const IOREQ_READ: u8 = 1;
/// `xen/include/public/hvm/ioreq.h`: `IOREQ_WRITE`, the `dir` bit of a write.
pub const IOREQ_WRITE: u8 = 0;

/// `xen/include/public/hvm/ioreq.h`: `STATE_IOREQ_NONE`, the record is free (no request
/// outstanding).
pub const STATE_IOREQ_NONE: u8 = 0;
/// `xen/include/public/hvm/ioreq.h`: `STATE_IOREQ_READY`, Xen has posted a request.
pub const STATE_IOREQ_READY: u8 = 1;
/// `xen/include/public/hvm/ioreq.h`: `STATE_IOREQ_INPROCESS`, the emulator has taken it.
pub const STATE_IOREQ_INPROCESS: u8 = 2;
/// `xen/include/public/hvm/ioreq.h`: `STATE_IORESP_READY`, the emulator has answered it.
pub const STATE_IORESP_READY: u8 = 3;

/// `xen/include/public/hvm/ioreq.h`: `IOREQ_TYPE_PIO`, port I/O (x86 only).
pub const IOREQ_TYPE_PIO: u8 = 0;
/// `xen/include/public/hvm/ioreq.h`: `IOREQ_TYPE_COPY`, MMIO ("mmio ops"); the only access
/// type Arm sends.
pub const IOREQ_TYPE_COPY: u8 = 1;
/// `xen/include/public/hvm/ioreq.h`: `IOREQ_TYPE_PCI_CONFIG`, a PCI config-space access, `addr`
/// holding segment in bits 63:48, bus 47:40, device 39:35, function 34:32 and the register
/// offset in 31:0 (x86 only in 4.17).
pub const IOREQ_TYPE_PCI_CONFIG: u8 = 2;
/// `xen/include/public/hvm/ioreq.h`: `IOREQ_TYPE_TIMEOFFSET`, the guest's RTC offset changed
/// (x86 only, sent buffered).
pub const IOREQ_TYPE_TIMEOFFSET: u8 = 7;
/// `xen/include/public/hvm/ioreq.h`: `IOREQ_TYPE_INVALIDATE`, drop every cached mapping of the
/// target's memory ("mapcache"); sent to every server, `size` 4, `dir` write, `data` all ones.
pub const IOREQ_TYPE_INVALIDATE: u8 = 8;

/// [`ioreq::bitfield`] bits 3:0: C's `uint8_t state:4`, a `STATE_*` value. (Xen names the
/// bit-fields, not their positions; these are the AAPCS64 positions.)
pub const IOREQ_STATE_MASK: u8 = 0x0f;
/// [`ioreq::bitfield`] bit 4: C's `uint8_t data_is_ptr:1`, `data` is the guest physical
/// address of the data rather than the data (x86 `rep` string instructions only).
pub const IOREQ_DATA_IS_PTR: u8 = 1 << 4;
/// [`ioreq::bitfield`] bit 5: C's `uint8_t dir:1`, [`IOREQ_READ`] (1) or [`IOREQ_WRITE`] (0).
pub const IOREQ_DIR: u8 = 1 << 5;
/// [`ioreq::bitfield`] bit 6: C's `uint8_t df:1`, the x86 direction flag of a `rep` access
/// (1: addresses decrease); always 0 on Arm.
pub const IOREQ_DF: u8 = 1 << 6;
/// [`ioreq::bitfield`] bit 7: C's `uint8_t _pad1:1`, unused.
pub const IOREQ_PAD1: u8 = 1 << 7;

/// `xen/include/public/hvm/ioreq.h`: `struct ioreq` ([`ioreq_t`]), one I/O request, 32 bytes.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
pub struct ioreq {
    /// Guest physical address (MMIO), port (PIO) or encoded config address (PCI config).
    pub addr: u64,
    /// The data (up to 8 bytes, zero-extended) or, with [`IOREQ_DATA_IS_PTR`], its guest
    /// physical address; the emulator writes a read's result here.
    pub data: u64,
    /// Repetitions (x86 `rep` prefixes); 1 on Arm.
    pub count: u32,
    /// Size of each access in bytes.
    pub size: u32,
    /// The event channel for this vCPU's requests: a port of the target domain that Xen
    /// allocates unbound, open to the emulator, when the vCPU joins the server
    /// (`xen/common/ioreq.c`, `ioreq_server_add_vcpu`); the emulator binds it as an interdomain
    /// channel and both sides notify through it.
    pub vp_eport: evtchn_port_t,
    /// C's `uint16_t _pad0`.
    pub _pad0: u16,
    /// C's bit-fields `state:4, data_is_ptr:1, dir:1, df:1, _pad1:1`, packed in this one
    /// byte from bit 0: see [`IOREQ_STATE_MASK`], [`IOREQ_DATA_IS_PTR`], [`IOREQ_DIR`],
    /// [`IOREQ_DF`], [`IOREQ_PAD1`] and the accessors. Xen leaves the byte unnamed.
    pub bitfield: u8,
    /// An `IOREQ_TYPE_*`.
    pub r#type: u8,
}

/// `xen/include/public/hvm/ioreq.h`: `ioreq_t`.
pub type ioreq_t = ioreq;

impl ioreq {
    /// C's `state`: a `STATE_*` value.
    pub const fn state(&self) -> u8 {
        self.bitfield & IOREQ_STATE_MASK
    }

    /// Sets C's `state` (only its low 4 bits are kept), leaving the other bit-fields.
    pub const fn set_state(&mut self, state: u8) {
        self.bitfield = (self.bitfield & !IOREQ_STATE_MASK) | (state & IOREQ_STATE_MASK);
    }

    /// C's `data_is_ptr`.
    pub const fn data_is_ptr(&self) -> bool {
        self.bitfield & IOREQ_DATA_IS_PTR != 0
    }

    /// C's `dir`: [`IOREQ_READ`] or [`IOREQ_WRITE`].
    pub const fn dir(&self) -> u8 {
        (self.bitfield & IOREQ_DIR) >> 5
    }

    /// C's `df`.
    pub const fn df(&self) -> bool {
        self.bitfield & IOREQ_DF != 0
    }

    /// The bit-field byte for `state`, `data_is_ptr`, `dir` ([`IOREQ_READ`] or
    /// [`IOREQ_WRITE`]; only bit 0 is kept) and `df`, with `_pad1` 0.
    pub const fn bitfield_of(state: u8, data_is_ptr: bool, dir: u8, df: bool) -> u8 {
        let data_is_ptr = if data_is_ptr { IOREQ_DATA_IS_PTR } else { 0 };
        let df = if df { IOREQ_DF } else { 0 };
        (state & IOREQ_STATE_MASK) | data_is_ptr | ((dir & 1) << 5) | df
    }
}

/// `xen/include/public/hvm/ioreq.h`: `struct shared_iopage` (`shared_iopage_t`) as C declares
/// it, `struct ioreq vcpu_ioreq[1]`: C's idiom for an array that really runs on to the end of
/// the page, vCPU `n`'s record at `vcpu_ioreq[n]` (`xen/common/ioreq.c`, `get_ioreq`). Map the
/// page as `[ioreq; IOREQS_PER_PAGE]`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct shared_iopage {
    /// One record per vCPU, indexed by vCPU id (declared with length 1).
    pub vcpu_ioreq: [ioreq; 1],
}

/// Records in one 4 KiB ioreq page, 4096 / 32: `xen/common/memory.c`,
/// `ioreq_server_max_frames` ("one frame per 128 vcpus"). Xen 4.17 maps only one such page
/// per server (`ioreq_server_get_frame` serves frame `XENMEM_resource_ioreq_server_frame_ioreq(0)`
/// alone), and Arm guests have at most 128 vCPUs (`GUEST_MAX_VCPUS`, `arch-arm.h`). Xen leaves
/// the number unnamed.
pub const IOREQS_PER_PAGE: usize = 128;

/// [`buf_ioreq::head`] bits 7:0: C's `uint8_t type`, an `IOREQ_TYPE_*`.
pub const BUF_IOREQ_TYPE_MASK: u32 = 0xff;
/// [`buf_ioreq::head`] bit 8: C's `uint8_t pad:1`.
pub const BUF_IOREQ_PAD: u32 = 1 << 8;
/// [`buf_ioreq::head`] bit 9: C's `uint8_t dir:1`, [`IOREQ_READ`] or [`IOREQ_WRITE`].
pub const BUF_IOREQ_DIR: u32 = 1 << 9;
/// [`buf_ioreq::head`] bit 10: shift of C's `uint8_t size:2` (bits 11:10): 0, 1, 2, 3 for 1,
/// 2, 4, 8 bytes; an 8-byte access takes two slots.
pub const BUF_IOREQ_SIZE_SHIFT: u32 = 10;
/// [`buf_ioreq::head`] bit 12: shift of C's `uint32_t addr:20` (bits 31:12), the physical
/// address (its low 20 bits).
pub const BUF_IOREQ_ADDR_SHIFT: u32 = 12;

/// `xen/include/public/hvm/ioreq.h`: `struct buf_ioreq` (`buf_ioreq_t`), one buffered request,
/// 8 bytes. Not served by Xen on Arm, nor by Xenolith.
///
/// C declares `uint8_t type; uint8_t pad:1, dir:1, size:2; uint32_t addr:20; uint32_t data;`.
/// Under AAPCS64 `addr:20` continues in the 32-bit container at byte 0 (bits 12..=31 are free
/// after `type` and the three small fields), so the first four bytes are one little-endian
/// word, kept here as [`buf_ioreq::head`].
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
pub struct buf_ioreq {
    /// C's `type`, `pad`, `dir`, `size` and `addr`: see [`BUF_IOREQ_TYPE_MASK`],
    /// [`BUF_IOREQ_PAD`], [`BUF_IOREQ_DIR`], [`BUF_IOREQ_SIZE_SHIFT`],
    /// [`BUF_IOREQ_ADDR_SHIFT`]. Xen leaves the word unnamed.
    pub head: u32,
    /// C's `uint32_t data`: the data (for an 8-byte access, the low half; the next slot's
    /// `data` holds the high half).
    pub data: u32,
}

impl buf_ioreq {
    /// C's `type`.
    pub const fn r#type(&self) -> u8 {
        (self.head & BUF_IOREQ_TYPE_MASK) as u8
    }

    /// C's `dir`.
    pub const fn dir(&self) -> u8 {
        ((self.head & BUF_IOREQ_DIR) >> 9) as u8
    }

    /// The access size in bytes, from C's `size` (log2 of it).
    pub const fn size_bytes(&self) -> u32 {
        1 << ((self.head >> BUF_IOREQ_SIZE_SHIFT) & 3)
    }

    /// C's `addr` (20 bits).
    pub const fn addr(&self) -> u32 {
        self.head >> BUF_IOREQ_ADDR_SHIFT
    }
}

/// `xen/include/public/hvm/ioreq.h`: `IOREQ_BUFFER_SLOT_NUM`, the slots of the buffered ring
/// ("8 bytes each, plus 2 4-byte indexes": 8 + 511 * 8 = 4096, one page).
pub const IOREQ_BUFFER_SLOT_NUM: usize = 511;

/// `xen/include/public/hvm/ioreq.h`: `struct buffered_iopage` (`buffered_iopage_t`), the
/// buffered ring, one 4 KiB page. Not served by Xen on Arm, nor by Xenolith.
///
/// This is the layout outside Xen; inside (`__XEN__`) the two pointers are a union with a
/// `uint64_t full` so that they can be read together
/// ([`super::dm_op::HVM_IOREQSRV_BUFIOREQ_ATOMIC`]), which makes the structure 8-byte aligned
/// but moves nothing.
#[repr(C)]
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct buffered_iopage {
    /// Index of the next slot the emulator reads (free-running, modulo
    /// [`IOREQ_BUFFER_SLOT_NUM`]).
    pub read_pointer: u32,
    /// Index of the next slot Xen writes (free-running, modulo [`IOREQ_BUFFER_SLOT_NUM`]).
    pub write_pointer: u32,
    /// The slots.
    pub buf_ioreq: [buf_ioreq; IOREQ_BUFFER_SLOT_NUM],
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xen::hypercall::assert_layout;

    /// `xen/include/public/hvm/ioreq.h`: every number.
    #[test]
    fn numbers() {
        assert_eq!((IOREQ_READ, IOREQ_WRITE), (1, 0));
        assert_eq!(
            [STATE_IOREQ_NONE, STATE_IOREQ_READY, STATE_IOREQ_INPROCESS, STATE_IORESP_READY],
            [0, 1, 2, 3]
        );
        assert_eq!(
            [
                IOREQ_TYPE_PIO,
                IOREQ_TYPE_COPY,
                IOREQ_TYPE_PCI_CONFIG,
                IOREQ_TYPE_TIMEOFFSET,
                IOREQ_TYPE_INVALIDATE
            ],
            [0, 1, 2, 7, 8]
        );
        assert_eq!(IOREQ_BUFFER_SLOT_NUM, 511);
        assert_eq!(IOREQS_PER_PAGE * size_of::<ioreq>(), 4096);
    }

    /// `xen/include/public/hvm/ioreq.h`, arm64:
    /// - `ioreq`: `uint64_t addr` @0, `data` @8, `uint32_t count` @16, `size` @20, `vp_eport`
    ///   @24, `uint16_t _pad0` @28, the four `uint8_t` bit-fields (8 bits) in the byte @30,
    ///   `uint8_t type` @31: 32, 8-aligned.
    /// - `shared_iopage`: `ioreq[1]`: 32.
    /// - `buf_ioreq`: `type` @0 and the bit-fields in the `uint32_t` container @0 (8 + 1 + 1 +
    ///   2 + 20 = 32 bits), `uint32_t data` @4: 8, 4-aligned.
    /// - `buffered_iopage`: two `uint32_t` @0, @4, `buf_ioreq[511]` @8: 8 + 4088 = 4096.
    ///
    /// Cross-checked once with gcc over the 4.17 headers configured for aarch64.
    #[test]
    fn layouts() {
        assert_layout!(ioreq, size = 32, align = 8, {
            addr @ 0, data @ 8, count @ 16, size @ 20, vp_eport @ 24, _pad0 @ 28, bitfield @ 30,
            r#type @ 31,
        });
        assert_layout!(shared_iopage, size = 32, align = 8, { vcpu_ioreq @ 0 });
        assert_layout!(buf_ioreq, size = 8, align = 4, { head @ 0, data @ 4 });
        assert_layout!(buffered_iopage, size = 4096, align = 4, {
            read_pointer @ 0, write_pointer @ 4, buf_ioreq @ 8,
        });
    }

    /// The bit-field positions (AAPCS64: from the least significant bit, in declaration order),
    /// as gcc places them: `state` 0x0f, `data_is_ptr` 0x10, `dir` 0x20, `df` 0x40, `_pad1` 0x80
    /// of byte 30; `type` 0xff, `pad` 0x100, `dir` 0x200, `size` 0xc00, `addr` 0xfffff000 of a
    /// `buf_ioreq`'s first word.
    #[test]
    fn bitfields() {
        assert_eq!(
            [IOREQ_STATE_MASK, IOREQ_DATA_IS_PTR, IOREQ_DIR, IOREQ_DF, IOREQ_PAD1],
            [0x0f, 0x10, 0x20, 0x40, 0x80]
        );
        let mut request = ioreq {
            bitfield: ioreq::bitfield_of(STATE_IOREQ_READY, false, IOREQ_READ, false),
            ..ioreq::default()
        };
        assert_eq!(request.bitfield, 0x21);
        assert_eq!((request.state(), request.dir(), request.data_is_ptr()), (1, IOREQ_READ, false));
        request.set_state(STATE_IORESP_READY);
        assert_eq!((request.bitfield, request.state(), request.df()), (0x23, 3, false));
        assert_eq!(ioreq::bitfield_of(0xff, true, 3, true), 0x7f);
        assert_eq!(request.as_bytes()[30], 0x23);

        assert_eq!(
            [BUF_IOREQ_TYPE_MASK, BUF_IOREQ_PAD, BUF_IOREQ_DIR, 3 << BUF_IOREQ_SIZE_SHIFT],
            [0xff, 0x100, 0x200, 0xc00]
        );
        assert_eq!(0xf_ffff << BUF_IOREQ_ADDR_SHIFT, 0xffff_f000u32);
        let slot = buf_ioreq { head: 0xabcd_e000 | (2 << 10) | 0x200 | 1, data: 7 };
        assert_eq!((slot.r#type(), slot.dir(), slot.size_bytes(), slot.addr()), (1, 1, 4, 0xabcde));
    }
}
