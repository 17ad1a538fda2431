//! The device model hypercall, `dm_op(domid, nr_bufs, bufs)` (`xen/include/public/hvm/dm_op.h`):
//! a device model domain creates IOREQ servers for its target domain, claims the I/O ranges
//! it emulates, and raises the target's interrupt lines. The emulated accesses themselves
//! arrive as [`super::ioreq`] records in pages the model maps with `XENMEM_acquire_resource`
//! ([`super::memory::xen_mem_acquire_resource`]).
//!
//! x0 is the target domain, x1 the number of buffers, x2 the guest address of an array of
//! `nr_bufs` [`xen_dm_op_buf`]. The hypercall number is
//! [`super::hypercall::__HYPERVISOR_dm_op`]. Buffer 0 holds one [`xen_dm_op`]: an 8-byte
//! header (`op`, `pad`) and the operation's payload at byte 8 ([`DmOpPayload`]).
//!
//! # What Xen 4.17 does with it (Arm)
//! - `xen/common/dm.c`, `do_dm_op`: `nr_bufs` 0 is `-ENODATA`, more than
//!   [`DM_OP_BUFFERS_MAX`] is `-E2BIG`.
//! - `xen/arch/arm/dm.c`, `dm_op`, in this order: the target must be another existing domain
//!   (`-ESRCH`; the caller itself `-EPERM`), then the `XSM_DM_PRIV` check; buffer 0 shorter
//!   than the 8-byte header is `-EFAULT`; an `op` from 21 up is `-EOPNOTSUPP`; buffer 0
//!   shorter than 8 + the payload's own size (`op_size[]`: the `size_of` of the structure
//!   named at each number below, 0 for the numbers Arm does not serve) is `-EFAULT`; a
//!   nonzero header `pad` is `-EINVAL`. Xen reads only those bytes and copies back only the
//!   payload, only for operations with OUT fields (create, get_info, nr_vcpus). Every
//!   operation encoded here also answers a nonzero payload `pad` with `-EINVAL`.
//! - Arm serves [`XEN_DMOP_create_ioreq_server`] to [`XEN_DMOP_destroy_ioreq_server`] (1-6,
//!   `xen/common/ioreq.c`, `ioreq_server_dm_op`), [`XEN_DMOP_set_irq_level`] and
//!   [`XEN_DMOP_nr_vcpus`]; 0 and 7-18 pass the header checks and are then `-EOPNOTSUPP`.
//!   Only those eight have their payloads encoded here; the x86 operations have numbers only.
//! - Arm differs from x86 (`xen/common/ioreq.c`): `handle_bufioreq` other than
//!   [`HVM_IOREQSRV_BUFIOREQ_OFF`] is `-EINVAL` (no buffered ioreqs on Arm), and
//!   [`XEN_DMOP_get_ioreq_server_info`] without [`XEN_DMOP_no_gfns`] is `-EOPNOTSUPP` (Arm
//!   has no "legacy" magic gfns, `xen/arch/arm/ioreq.c`, `arch_ioreq_server_map_pages`): the
//!   pages come only through `XENMEM_acquire_resource`.
//!
//! # Invariants
//! - Numbers are Xen 4.17's (`RELEASE-4.17.7`): `XEN_DMOP_*` runs 1..=20 with no gaps; 0 was
//!   never assigned.
//! - Every structure's size and field offsets are pinned by the tests below (arm64 layout:
//!   `uint64_aligned_t` and guest handles 8 bytes, 8-byte aligned, as on arm32), and every
//!   payload fits the 24-byte union.

// Xen's spelling of its own names (see `hypercall`).
#![allow(non_upper_case_globals, non_camel_case_types, non_snake_case)]

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use super::event_channel::evtchn_port_t;
use super::hypercall::{xen_ulong_t, GuestHandle};

/// `xen/include/public/hvm/dm_op.h`: `ioservid_t`, an IOREQ server's id, unique within its
/// target domain (Xen 4.17 hands out 0..=7: `MAX_NR_IOREQ_SERVERS` in Xen's internal
/// `xen/include/xen/sched.h`; a ninth server is `-ENOSPC`).
pub type ioservid_t = u16;

/// `xen/include/xen/dm.h` (Xen-internal): `struct dmop_args` holds `buf[2]`, so `dm_op` takes
/// at most two buffers (`-E2BIG` beyond, `xen/common/dm.c`). Xen leaves the number unnamed.
pub const DM_OP_BUFFERS_MAX: u32 = 2;

// Operation numbers: `xen/include/public/hvm/dm_op.h`, `struct xen_dm_op`, field `op`.
//
// Gaps: 0 was never assigned (Xen 4.17 on Arm answers it `-EOPNOTSUPP`); 21 and up are free.

/// `xen/include/public/hvm/dm_op.h`: `XEN_DMOP_create_ioreq_server`, a new IOREQ server for a
/// secondary emulator. Payload: [`xen_dm_op_create_ioreq_server`] (IN/OUT).
pub const XEN_DMOP_create_ioreq_server: u32 = 1;
/// `xen/include/public/hvm/dm_op.h`: `XEN_DMOP_get_ioreq_server_info`, what a server's emulator
/// needs to reach it. Payload: [`xen_dm_op_get_ioreq_server_info`] (IN/OUT).
pub const XEN_DMOP_get_ioreq_server_info: u32 = 2;
/// `xen/include/public/hvm/dm_op.h`: `XEN_DMOP_map_io_range_to_ioreq_server`, register an
/// inclusive range for a server to emulate. Payload: [`xen_dm_op_ioreq_server_range`].
pub const XEN_DMOP_map_io_range_to_ioreq_server: u32 = 3;
/// `xen/include/public/hvm/dm_op.h`: `XEN_DMOP_unmap_io_range_from_ioreq_server`, deregister a
/// range registered before. Payload: [`xen_dm_op_ioreq_server_range`].
pub const XEN_DMOP_unmap_io_range_from_ioreq_server: u32 = 4;
/// `xen/include/public/hvm/dm_op.h`: `XEN_DMOP_set_ioreq_server_state`, enable or disable a
/// server (a disabled server is passed no requests). Payload:
/// [`xen_dm_op_set_ioreq_server_state`].
pub const XEN_DMOP_set_ioreq_server_state: u32 = 5;
/// `xen/include/public/hvm/dm_op.h`: `XEN_DMOP_destroy_ioreq_server`; its ranges are
/// deregistered with it. Payload: [`xen_dm_op_destroy_ioreq_server`].
pub const XEN_DMOP_destroy_ioreq_server: u32 = 6;
/// `xen/include/public/hvm/dm_op.h`: `XEN_DMOP_track_dirty_vram` (x86 only; payload
/// `xen_dm_op_track_dirty_vram`, 16 bytes, not encoded).
pub const XEN_DMOP_track_dirty_vram: u32 = 7;
/// `xen/include/public/hvm/dm_op.h`: `XEN_DMOP_set_pci_intx_level` (x86 only; payload
/// `xen_dm_op_set_pci_intx_level`, 6 bytes, not encoded).
pub const XEN_DMOP_set_pci_intx_level: u32 = 8;
/// `xen/include/public/hvm/dm_op.h`: `XEN_DMOP_set_isa_irq_level` (x86 only; payload
/// `xen_dm_op_set_isa_irq_level`, 2 bytes, not encoded).
pub const XEN_DMOP_set_isa_irq_level: u32 = 9;
/// `xen/include/public/hvm/dm_op.h`: `XEN_DMOP_set_pci_link_route` (x86 only; payload
/// `xen_dm_op_set_pci_link_route`, 2 bytes, not encoded).
pub const XEN_DMOP_set_pci_link_route: u32 = 10;
/// `xen/include/public/hvm/dm_op.h`: `XEN_DMOP_modified_memory` (x86 only; payload
/// `xen_dm_op_modified_memory`, 8 bytes, extents of 16 bytes in buffer 1; not encoded).
pub const XEN_DMOP_modified_memory: u32 = 11;
/// `xen/include/public/hvm/dm_op.h`: `XEN_DMOP_set_mem_type` (x86 only; payload
/// `xen_dm_op_set_mem_type`, 16 bytes, not encoded).
pub const XEN_DMOP_set_mem_type: u32 = 12;
/// `xen/include/public/hvm/dm_op.h`: `XEN_DMOP_inject_event` (x86 only; payload
/// `xen_dm_op_inject_event`, 24 bytes, not encoded).
pub const XEN_DMOP_inject_event: u32 = 13;
/// `xen/include/public/hvm/dm_op.h`: `XEN_DMOP_inject_msi` (x86 only; payload
/// `xen_dm_op_inject_msi`, 16 bytes, not encoded).
pub const XEN_DMOP_inject_msi: u32 = 14;
/// `xen/include/public/hvm/dm_op.h`: `XEN_DMOP_map_mem_type_to_ioreq_server` (x86 only;
/// payload `xen_dm_op_map_mem_type_to_ioreq_server`, 16 bytes, not encoded).
pub const XEN_DMOP_map_mem_type_to_ioreq_server: u32 = 15;
/// `xen/include/public/hvm/dm_op.h`: `XEN_DMOP_remote_shutdown`, as `SCHEDOP_remote_shutdown`
/// (x86 only in Xen 4.17; payload `xen_dm_op_remote_shutdown`, 4 bytes, not encoded).
pub const XEN_DMOP_remote_shutdown: u32 = 16;
/// `xen/include/public/hvm/dm_op.h`: `XEN_DMOP_relocate_memory` (x86 only; payload
/// `xen_dm_op_relocate_memory`, 24 bytes, not encoded).
pub const XEN_DMOP_relocate_memory: u32 = 17;
/// `xen/include/public/hvm/dm_op.h`: `XEN_DMOP_pin_memory_cacheattr` (x86 only; payload
/// `xen_dm_op_pin_memory_cacheattr`, 24 bytes, not encoded).
pub const XEN_DMOP_pin_memory_cacheattr: u32 = 18;
/// `xen/include/public/hvm/dm_op.h`: `XEN_DMOP_set_irq_level`, set the level of one of the
/// target's interrupt lines ("currently Arm only"; SPIs only). Payload:
/// [`xen_dm_op_set_irq_level`].
pub const XEN_DMOP_set_irq_level: u32 = 19;
/// `xen/include/public/hvm/dm_op.h`: `XEN_DMOP_nr_vcpus`, the target's vCPU count (fixed at
/// creation; bounds the ioreq slots in its IOREQ page). Payload: [`xen_dm_op_nr_vcpus`] (OUT).
pub const XEN_DMOP_nr_vcpus: u32 = 20;

/// `xen/include/public/hvm/hvm_op.h` (tools-only section): `HVM_IOREQSRV_BUFIOREQ_OFF`, the
/// server takes no buffered ioreqs (no buffered page is allocated; every request is
/// synchronous). The only value Xen 4.17 on Arm accepts.
pub const HVM_IOREQSRV_BUFIOREQ_OFF: u8 = 0;
/// `xen/include/public/hvm/hvm_op.h`: `HVM_IOREQSRV_BUFIOREQ_LEGACY`, buffered ioreqs with
/// the pointer pair updated non-atomically (x86 only: `-EINVAL` on Arm).
pub const HVM_IOREQSRV_BUFIOREQ_LEGACY: u8 = 1;
/// `xen/include/public/hvm/hvm_op.h`: `HVM_IOREQSRV_BUFIOREQ_ATOMIC`, buffered ioreqs with
/// `read_pointer` updated atomically and the pointer pair read atomically (x86 only:
/// `-EINVAL` on Arm; anything larger is `-EINVAL` everywhere).
pub const HVM_IOREQSRV_BUFIOREQ_ATOMIC: u8 = 2;

/// `xen/include/public/hvm/dm_op.h`: `_XEN_DMOP_no_gfns`, bit number of [`XEN_DMOP_no_gfns`].
pub const _XEN_DMOP_no_gfns: u32 = 0;
/// `xen/include/public/hvm/dm_op.h`: `XEN_DMOP_no_gfns`, flag of
/// [`xen_dm_op_get_ioreq_server_info::flags`]: do not map the ioreq pages into the target's
/// memory nor return their gfns (the emulator uses `XENMEM_acquire_resource`). The only
/// valid flag (others are `-EINVAL`); required on Arm.
pub const XEN_DMOP_no_gfns: u16 = 1 << _XEN_DMOP_no_gfns;

/// `xen/include/public/hvm/dm_op.h`: `XEN_DMOP_IO_RANGE_PORT`, an I/O port range (never
/// selected on Arm, which forwards only MMIO).
pub const XEN_DMOP_IO_RANGE_PORT: u32 = 0;
/// `xen/include/public/hvm/dm_op.h`: `XEN_DMOP_IO_RANGE_MEMORY`, an MMIO range (guest
/// physical addresses).
pub const XEN_DMOP_IO_RANGE_MEMORY: u32 = 1;
/// `xen/include/public/hvm/dm_op.h`: `XEN_DMOP_IO_RANGE_PCI`, a range of PCI config spaces
/// given as [`XEN_DMOP_PCI_SBDF`] values. A `type` above this is `-EINVAL`.
pub const XEN_DMOP_IO_RANGE_PCI: u32 = 2;

/// `xen/include/public/hvm/dm_op.h`: `XEN_DMOP_PCI_SBDF(s,b,d,f)`, a PCI function as a
/// [`XEN_DMOP_IO_RANGE_PCI`] bound: segment in bits 31:16, bus 15:8, device 7:3, function
/// 2:0 (each argument masked to its width).
pub const fn XEN_DMOP_PCI_SBDF(segment: u32, bus: u32, device: u32, function: u32) -> u32 {
    ((segment & 0xffff) << 16) | ((bus & 0xff) << 8) | ((device & 0x1f) << 3) | (function & 0x07)
}

/// Bytes of operation `op`'s payload that Xen 4.17 on Arm reads and copies back (`op_size[]`
/// in `xen/arch/arm/dm.c`): the size of its structure for the eight operations Arm serves, 0
/// for the other numbers up to [`XEN_DMOP_nr_vcpus`]; `None` (`-EOPNOTSUPP`) beyond.
pub const fn payload_size(op: u32) -> Option<usize> {
    Some(match op {
        XEN_DMOP_create_ioreq_server => size_of::<xen_dm_op_create_ioreq_server>(),
        XEN_DMOP_get_ioreq_server_info => size_of::<xen_dm_op_get_ioreq_server_info>(),
        XEN_DMOP_map_io_range_to_ioreq_server | XEN_DMOP_unmap_io_range_from_ioreq_server => {
            size_of::<xen_dm_op_ioreq_server_range>()
        }
        XEN_DMOP_set_ioreq_server_state => size_of::<xen_dm_op_set_ioreq_server_state>(),
        XEN_DMOP_destroy_ioreq_server => size_of::<xen_dm_op_destroy_ioreq_server>(),
        XEN_DMOP_set_irq_level => size_of::<xen_dm_op_set_irq_level>(),
        XEN_DMOP_nr_vcpus => size_of::<xen_dm_op_nr_vcpus>(),
        0..=XEN_DMOP_pin_memory_cacheattr => 0,
        _ => return None,
    })
}

/// `xen/include/public/hvm/dm_op.h`: `struct xen_dm_op_buf` (`xen_dm_op_buf_t`), one buffer of
/// the `bufs` array.
#[repr(C)]
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct xen_dm_op_buf {
    /// `XEN_GUEST_HANDLE(void) h`: the buffer's guest address (buffer 0: a [`xen_dm_op`]).
    pub h: GuestHandle,
    /// The buffer's size in bytes.
    pub size: xen_ulong_t,
}

/// `xen/include/public/hvm/dm_op.h`: `struct xen_dm_op`, the contents of buffer 0: the 8-byte
/// header (`op`, `pad`) and at byte 8 the anonymous union `u` ([`DmOpPayload`], 24 bytes, the
/// size of its largest members); 32 bytes, 8-byte aligned. Xen reads only
/// `8 + size_of(payload of op)` bytes of it.
#[repr(C)]
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct xen_dm_op {
    /// A `XEN_DMOP_*` operation.
    pub op: u32,
    /// Must be 0 (`-EINVAL` otherwise).
    pub pad: u32,
    /// The operation's payload.
    pub u: DmOpPayload,
}

xen_union!(
    /// `xen/include/public/hvm/dm_op.h`: the anonymous union `u` of [`xen_dm_op`], at byte 8:
    /// every payload structure overlaid at byte 0. Its largest members
    /// (`xen_dm_op_get_ioreq_server_info`, `xen_dm_op_ioreq_server_range`, and the x86-only
    /// `inject_event`, `relocate_memory`, `pin_memory_cacheattr`) are 24 bytes, and its
    /// `uint64_aligned_t` members make it 8-byte aligned: 3 words. Read and write members with
    /// [`DmOpPayload::read`] and [`DmOpPayload::write`].
    DmOpPayload,
    3
);

/// `xen/include/public/hvm/dm_op.h`: `struct xen_dm_op_create_ioreq_server`, payload of
/// [`XEN_DMOP_create_ioreq_server`].
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct xen_dm_op_create_ioreq_server {
    /// IN: an `HVM_IOREQSRV_BUFIOREQ_*` (on Arm only [`HVM_IOREQSRV_BUFIOREQ_OFF`]).
    pub handle_bufioreq: u8,
    /// Must be 0 (`-EINVAL` otherwise).
    pub pad: [u8; 3],
    /// OUT: the new server's id.
    pub id: ioservid_t,
}

/// `xen/include/public/hvm/dm_op.h`: `struct xen_dm_op_get_ioreq_server_info`, payload of
/// [`XEN_DMOP_get_ioreq_server_info`]. Only the server's emulator may ask (`-EPERM`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct xen_dm_op_get_ioreq_server_info {
    /// IN: the server.
    pub id: ioservid_t,
    /// IN: [`XEN_DMOP_no_gfns`] or 0.
    pub flags: u16,
    /// OUT: the port Xen signals buffered requests on, a port of the target domain the
    /// emulator binds (written only if the server takes buffered ioreqs; synchronous requests
    /// name their port in each [`super::ioreq::ioreq`]).
    pub bufioreq_port: evtchn_port_t,
    /// OUT: gfn of the synchronous ioreq page in the target (not with [`XEN_DMOP_no_gfns`]).
    pub ioreq_gfn: u64,
    /// OUT: gfn of the buffered ioreq page (not with [`XEN_DMOP_no_gfns`]; only if buffered).
    pub bufioreq_gfn: u64,
}

/// `xen/include/public/hvm/dm_op.h`: `struct xen_dm_op_ioreq_server_range`, payload of
/// [`XEN_DMOP_map_io_range_to_ioreq_server`] and [`XEN_DMOP_unmap_io_range_from_ioreq_server`].
/// A request goes to a server only if it lies entirely within one of its ranges.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct xen_dm_op_ioreq_server_range {
    /// IN: the server.
    pub id: ioservid_t,
    /// Must be 0 (`-EINVAL` otherwise).
    pub pad: u16,
    /// IN: an `XEN_DMOP_IO_RANGE_*`.
    pub r#type: u32,
    /// IN: first address (port, guest physical address or SBDF) of the range, inclusive.
    pub start: u64,
    /// IN: last address of the range, inclusive (`start > end` is `-EINVAL`).
    pub end: u64,
}

/// `xen/include/public/hvm/dm_op.h`: `struct xen_dm_op_set_ioreq_server_state`, payload of
/// [`XEN_DMOP_set_ioreq_server_state`].
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct xen_dm_op_set_ioreq_server_state {
    /// IN: the server.
    pub id: ioservid_t,
    /// IN: nonzero to enable, 0 to disable.
    pub enabled: u8,
    /// Must be 0 (`-EINVAL` otherwise).
    pub pad: u8,
}

/// `xen/include/public/hvm/dm_op.h`: `struct xen_dm_op_destroy_ioreq_server`, payload of
/// [`XEN_DMOP_destroy_ioreq_server`].
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct xen_dm_op_destroy_ioreq_server {
    /// IN: the server.
    pub id: ioservid_t,
    /// Must be 0 (`-EINVAL` otherwise).
    pub pad: u16,
}

/// `xen/include/public/hvm/dm_op.h`: `struct xen_dm_op_set_irq_level`, payload of
/// [`XEN_DMOP_set_irq_level`].
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct xen_dm_op_set_irq_level {
    /// IN: the interrupt (Xen 4.17 on Arm, `xen/arch/arm/dm.c`: an SPI, 32 up to the target's
    /// vGIC line count, not routed to a physical interrupt; else `-EINVAL`).
    pub irq: u32,
    /// IN: 0 deasserted, 1 asserted (any other value is `-EINVAL`).
    pub level: u8,
    /// Must be 0 (`-EINVAL` otherwise).
    pub pad: [u8; 3],
}

/// `xen/include/public/hvm/dm_op.h`: `struct xen_dm_op_nr_vcpus`, payload of
/// [`XEN_DMOP_nr_vcpus`].
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct xen_dm_op_nr_vcpus {
    /// OUT: the number of vCPUs the target was created with (`max_vcpus`).
    pub vcpus: u32,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xen::hypercall::{__HYPERVISOR_dm_op, assert_layout};

    /// `xen/include/public/xen.h` and `hvm/dm_op.h`: the hypercall and every operation,
    /// 1..=20 without gaps; the flags and range types; `hvm/hvm_op.h`'s buffering modes.
    #[test]
    fn numbers() {
        assert_eq!(__HYPERVISOR_dm_op, 41);
        let ops = [
            XEN_DMOP_create_ioreq_server,
            XEN_DMOP_get_ioreq_server_info,
            XEN_DMOP_map_io_range_to_ioreq_server,
            XEN_DMOP_unmap_io_range_from_ioreq_server,
            XEN_DMOP_set_ioreq_server_state,
            XEN_DMOP_destroy_ioreq_server,
            XEN_DMOP_track_dirty_vram,
            XEN_DMOP_set_pci_intx_level,
            XEN_DMOP_set_isa_irq_level,
            XEN_DMOP_set_pci_link_route,
            XEN_DMOP_modified_memory,
            XEN_DMOP_set_mem_type,
            XEN_DMOP_inject_event,
            XEN_DMOP_inject_msi,
            XEN_DMOP_map_mem_type_to_ioreq_server,
            XEN_DMOP_remote_shutdown,
            XEN_DMOP_relocate_memory,
            XEN_DMOP_pin_memory_cacheattr,
            XEN_DMOP_set_irq_level,
            XEN_DMOP_nr_vcpus,
        ];
        assert_eq!(ops.to_vec(), (1..=20).collect::<Vec<u32>>());
        assert_eq!((XEN_DMOP_set_irq_level, XEN_DMOP_nr_vcpus), (19, 20));
        assert_eq!(
            [HVM_IOREQSRV_BUFIOREQ_OFF, HVM_IOREQSRV_BUFIOREQ_LEGACY, HVM_IOREQSRV_BUFIOREQ_ATOMIC],
            [0, 1, 2]
        );
        assert_eq!(XEN_DMOP_no_gfns, 1);
        assert_eq!(
            [XEN_DMOP_IO_RANGE_PORT, XEN_DMOP_IO_RANGE_MEMORY, XEN_DMOP_IO_RANGE_PCI],
            [0, 1, 2]
        );
        assert_eq!(XEN_DMOP_PCI_SBDF(0x1234, 0x56, 0x1f, 7), 0x1234_56ff);
        assert_eq!(XEN_DMOP_PCI_SBDF(0, 0, 1, 0), 0x8);
        assert_eq!(DM_OP_BUFFERS_MAX, 2);
    }

    /// `xen/include/public/hvm/dm_op.h`, arm64 (AAPCS64: natural alignment, no reordering):
    /// - `xen_dm_op_buf`: handle (8) @0, `xen_ulong_t` @8: 16.
    /// - `xen_dm_op`: `uint32_t op` @0, `pad` @4, the union @8 (its largest members 24 bytes,
    ///   8-aligned): 32.
    /// - `create_ioreq_server`: `uint8_t` @0, `uint8_t[3]` @1, `ioservid_t` (u16) @4: 6,
    ///   2-aligned.
    /// - `get_ioreq_server_info`: u16 @0, u16 @2, `evtchn_port_t` (u32) @4, two
    ///   `uint64_aligned_t` @8, @16: 24.
    /// - `ioreq_server_range`: u16 @0, u16 @2, u32 @4, two `uint64_aligned_t` @8, @16: 24.
    /// - `set_ioreq_server_state`: u16 @0, u8 @2, u8 @3: 4. `destroy_ioreq_server`: u16, u16: 4.
    /// - `set_irq_level`: u32 @0, u8 @4, u8[3] @5: 8, 4-aligned. `nr_vcpus`: u32: 4.
    ///
    /// Cross-checked once with gcc over the 4.17 headers configured for aarch64.
    #[test]
    fn layouts() {
        assert_layout!(xen_dm_op_buf, size = 16, align = 8, { h @ 0, size @ 8 });
        assert_layout!(xen_dm_op, size = 32, align = 8, { op @ 0, pad @ 4, u @ 8 });
        assert_layout!(DmOpPayload, size = 24, align = 8, {});
        assert_eq!(DmOpPayload::SIZE, 24);
        assert_layout!(xen_dm_op_create_ioreq_server, size = 6, align = 2, {
            handle_bufioreq @ 0, pad @ 1, id @ 4,
        });
        assert_layout!(xen_dm_op_get_ioreq_server_info, size = 24, align = 8, {
            id @ 0, flags @ 2, bufioreq_port @ 4, ioreq_gfn @ 8, bufioreq_gfn @ 16,
        });
        assert_layout!(xen_dm_op_ioreq_server_range, size = 24, align = 8, {
            id @ 0, pad @ 2, r#type @ 4, start @ 8, end @ 16,
        });
        assert_layout!(xen_dm_op_set_ioreq_server_state, size = 4, align = 2, {
            id @ 0, enabled @ 2, pad @ 3,
        });
        assert_layout!(xen_dm_op_destroy_ioreq_server, size = 4, align = 2, { id @ 0, pad @ 2 });
        assert_layout!(xen_dm_op_set_irq_level, size = 8, align = 4, {
            irq @ 0, level @ 4, pad @ 5,
        });
        assert_layout!(xen_dm_op_nr_vcpus, size = 4, align = 4, { vcpus @ 0 });
    }

    /// A payload written into the union lands at byte 8 of the whole `xen_dm_op`.
    #[test]
    fn payload_at_byte_8() {
        let range = xen_dm_op_ioreq_server_range {
            id: 3,
            pad: 0,
            r#type: XEN_DMOP_IO_RANGE_MEMORY,
            start: 0x1000_0000,
            end: 0x1000_0fff,
        };
        let op = xen_dm_op {
            op: XEN_DMOP_map_io_range_to_ioreq_server,
            pad: 0,
            u: DmOpPayload::new(&range),
        };
        let bytes = op.as_bytes();
        assert_eq!(bytes[0..4], 3u32.to_le_bytes());
        assert_eq!(bytes[8..10], 3u16.to_le_bytes());
        assert_eq!(bytes[12..16], 1u32.to_le_bytes());
        assert_eq!(bytes[16..24], 0x1000_0000u64.to_le_bytes());
        assert_eq!(op.u.read::<xen_dm_op_ioreq_server_range>().end, 0x1000_0fff);
    }

    #[test]
    fn payload_sizes_are_xens_op_size() {
        let sizes: Vec<Option<usize>> = (0..=21).map(payload_size).collect();
        let mut want = vec![Some(0); 21];
        for (op, size) in [(1, 6), (2, 24), (3, 24), (4, 24), (5, 4), (6, 4), (19, 8), (20, 4)] {
            want[op] = Some(size);
        }
        want.push(None);
        assert_eq!(sizes, want);
        assert_eq!(payload_size(u32::MAX), None);
    }
}
