//! The memory hypercall, `memory_op(cmd, arg)` (`xen/include/public/memory.h`): grow and shrink
//! a domain's memory and edit its physical address space (stage 2 on Arm).
//!
//! x0 is a `XENMEM_*` number, x1 the guest address of the argument named in each number's
//! documentation. Xen keeps a preempted operation's progress in the command's upper bits: only
//! bits 5:0 select the operation and bits 63:6 are the extent to resume at (`MEMOP_CMD_MASK`,
//! `MEMOP_EXTENT_SHIFT` in Xen's internal `xen/include/xen/hypercall.h`), so every `XENMEM_*`
//! number is below 64.
//!
//! # Invariants
//! - Numbers are Xen 4.17's: 0..=28, with 8 (`XENMEM_translate_gpfn_list`, removed) a gap;
//!   `memory.h` says the next free number is 29.
//! - `XENMEM_resource_*` (types 0..=2, the ioreq-server frame indices) are 4.17's;
//!   `XENMEM_rsrc_acq_caller_owned`, removed in 4.13, stays a documented retired number.
//! - Every structure's size and field offsets are pinned by the tests below (arm64 layout).

// Xen's spelling of its own names (see `hypercall`).
#![allow(non_upper_case_globals, non_camel_case_types, non_snake_case)]

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use super::hypercall::{domid_t, xen_pfn_t, xen_ulong_t, GuestHandle};

/// `xen/include/public/memory.h`: `XENMEM_increase_reservation`, allocate extents to a domain;
/// returns how many. Argument: [`xen_memory_reservation`].
pub const XENMEM_increase_reservation: u32 = 0;
/// `xen/include/public/memory.h`: `XENMEM_decrease_reservation`, free extents; returns how many.
/// Argument: [`xen_memory_reservation`].
pub const XENMEM_decrease_reservation: u32 = 1;
/// `xen/include/public/memory.h`: `XENMEM_maximum_ram_page`, the highest machine frame of RAM;
/// never fails. Argument: null.
pub const XENMEM_maximum_ram_page: u32 = 2;
/// `xen/include/public/memory.h`: `XENMEM_current_reservation`, a domain's pages. Argument:
/// [`xen_memory_domain`].
pub const XENMEM_current_reservation: u32 = 3;
/// `xen/include/public/memory.h`: `XENMEM_maximum_reservation`, a domain's page limit.
/// Argument: [`xen_memory_domain`].
pub const XENMEM_maximum_reservation: u32 = 4;
/// `xen/include/public/memory.h`: `XENMEM_machphys_mfn_list` (x86 only: no M2P table on Arm).
pub const XENMEM_machphys_mfn_list: u32 = 5;
/// `xen/include/public/memory.h`: `XENMEM_populate_physmap`, back guest frames with new memory;
/// returns how many extents. Argument: [`xen_memory_reservation`].
pub const XENMEM_populate_physmap: u32 = 6;
/// `xen/include/public/memory.h`: `XENMEM_add_to_physmap`, map one page (or a range) of a map
/// space at a guest frame. Argument: [`xen_add_to_physmap`].
pub const XENMEM_add_to_physmap: u32 = 7;
/// `xen/include/public/memory.h`: `XENMEM_memory_map`, the caller's memory map (x86 E820).
pub const XENMEM_memory_map: u32 = 9;
/// `xen/include/public/memory.h`: `XENMEM_machine_memory_map`, the host's memory map (x86).
pub const XENMEM_machine_memory_map: u32 = 10;
/// `xen/include/public/memory.h`: `XENMEM_exchange`, trade extents for others of a different
/// size or placement. Argument: `struct xen_memory_exchange`.
pub const XENMEM_exchange: u32 = 11;
/// `xen/include/public/memory.h`: `XENMEM_machphys_mapping` (x86 only).
pub const XENMEM_machphys_mapping: u32 = 12;
/// `xen/include/public/memory.h`: `XENMEM_set_memory_map`, set a domain's memory map (x86).
pub const XENMEM_set_memory_map: u32 = 13;
/// `xen/include/public/memory.h`: `XENMEM_maximum_gpfn`, the highest guest frame in use.
/// Argument: [`xen_memory_domain`].
pub const XENMEM_maximum_gpfn: u32 = 14;
/// `xen/include/public/memory.h`: `XENMEM_remove_from_physmap`, unmap the page at a guest frame.
/// Argument: [`xen_remove_from_physmap`].
pub const XENMEM_remove_from_physmap: u32 = 15;
/// `xen/include/public/memory.h`: `XENMEM_set_pod_target` (x86 populate-on-demand).
pub const XENMEM_set_pod_target: u32 = 16;
/// `xen/include/public/memory.h`: `XENMEM_get_pod_target` (x86 populate-on-demand).
pub const XENMEM_get_pod_target: u32 = 17;
/// `xen/include/public/memory.h`: `XENMEM_get_sharing_freed_pages` (memory sharing).
pub const XENMEM_get_sharing_freed_pages: u32 = 18;
/// `xen/include/public/memory.h`: `XENMEM_get_sharing_shared_pages` (memory sharing).
pub const XENMEM_get_sharing_shared_pages: u32 = 19;
/// `xen/include/public/memory.h`: `XENMEM_paging_op` (x86 memory paging).
pub const XENMEM_paging_op: u32 = 20;
/// `xen/include/public/memory.h`: `XENMEM_access_op` (memory access monitoring).
pub const XENMEM_access_op: u32 = 21;
/// `xen/include/public/memory.h`: `XENMEM_sharing_op` (memory sharing).
pub const XENMEM_sharing_op: u32 = 22;
/// `xen/include/public/memory.h`: `XENMEM_add_to_physmap_batch`, [`XENMEM_add_to_physmap`] for
/// many pages. Argument: [`xen_add_to_physmap_batch`].
pub const XENMEM_add_to_physmap_batch: u32 = 23;
/// `xen/include/public/memory.h`: `XENMEM_claim_pages`, reserve pages for a domain ahead of
/// allocation (privileged). Argument: [`xen_memory_reservation`] with a null `extent_start`.
pub const XENMEM_claim_pages: u32 = 24;
/// `xen/include/public/memory.h`: `XENMEM_machphys_compat_mfn_list` (x86 only).
pub const XENMEM_machphys_compat_mfn_list: u32 = 25;
/// `xen/include/public/memory.h`: `XENMEM_get_vnumainfo`, the caller's virtual NUMA topology.
pub const XENMEM_get_vnumainfo: u32 = 26;
/// `xen/include/public/memory.h`: `XENMEM_reserved_device_memory_map`, guest-physical ranges
/// devices need kept free.
pub const XENMEM_reserved_device_memory_map: u32 = 27;
/// `xen/include/public/memory.h`: `XENMEM_acquire_resource`, get the frames of a domain's
/// resource (ioreq server, grant table, trace buffer) to map them. Argument:
/// [`xen_mem_acquire_resource`].
pub const XENMEM_acquire_resource: u32 = 28;

/// `xen/include/public/memory.h`: `XENMEMF_address_bits(x)`, limit allocations to addresses
/// below `2^bits` (0: no limit); bits 7:0 of `mem_flags`.
pub const fn XENMEMF_address_bits(bits: u32) -> u32 {
    bits
}
/// `xen/include/public/memory.h`: `XENMEMF_get_address_bits(x)`.
pub const fn XENMEMF_get_address_bits(flags: u32) -> u32 {
    flags & 0xff
}
/// `xen/include/public/memory.h`: `XENMEMF_node(x)`, allocate from NUMA node `node`; bits 15:8
/// of `mem_flags` hold `node + 1` (0: any node).
pub const fn XENMEMF_node(node: u32) -> u32 {
    (node + 1) << 8
}
/// `xen/include/public/memory.h`: `XENMEMF_get_node(x)`.
pub const fn XENMEMF_get_node(flags: u32) -> u32 {
    ((flags >> 8).wrapping_sub(1)) & 0xff
}
/// `xen/include/public/memory.h`: `XENMEMF_populate_on_demand`.
pub const XENMEMF_populate_on_demand: u32 = 1 << 16;
/// `xen/include/public/memory.h`: `XENMEMF_exact_node_request`, fail rather than use another
/// node.
pub const XENMEMF_exact_node_request: u32 = 1 << 17;
/// `xen/include/public/memory.h`: `XENMEMF_exact_node(n)`.
pub const fn XENMEMF_exact_node(node: u32) -> u32 {
    XENMEMF_node(node) | XENMEMF_exact_node_request
}
/// `xen/include/public/memory.h`: `XENMEMF_vnode`, the node is a virtual node of the domain.
pub const XENMEMF_vnode: u32 = 1 << 18;

/// `xen/include/public/memory.h`: `struct xen_memory_reservation` (interface >= 0x00030209,
/// where the fourth field is `mem_flags`).
#[repr(C)]
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct xen_memory_reservation {
    /// Array of `nr_extents` frame numbers (`xen_pfn_t`): OUT machine frames allocated
    /// (increase), IN guest frames to free (decrease), IN guest frames to fill and OUT frames
    /// allocated (populate); null for `XENMEM_claim_pages`.
    pub extent_start: GuestHandle,
    /// Number of extents.
    pub nr_extents: xen_ulong_t,
    /// Each extent is `2^extent_order` pages, aligned to its size.
    pub extent_order: u32,
    /// `XENMEMF_*` flags.
    pub mem_flags: u32,
    /// The domain whose reservation changes; unprivileged callers may only name `DOMID_SELF`.
    pub domid: domid_t,
    /// Implicit C tail padding (the struct is 8-byte aligned), made explicit; Xen ignores it.
    pub _pad: [u8; 6],
}

/// `xen/include/public/memory.h`: `struct xen_memory_domain`.
#[repr(C)]
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct xen_memory_domain {
    /// The domain asked about (may be `DOMID_SELF`).
    pub domid: domid_t,
}

/// `xen/include/public/memory.h`: `XENMAPSPACE_shared_info`, the domain's shared info page.
pub const XENMAPSPACE_shared_info: u32 = 0;
/// `xen/include/public/memory.h`: `XENMAPSPACE_grant_table`, a grant table frame
/// (`idx | XENMAPIDX_grant_table_status` for a status frame).
pub const XENMAPSPACE_grant_table: u32 = 1;
/// `xen/include/public/memory.h`: `XENMAPSPACE_gmfn`, move one of the domain's own frames.
pub const XENMAPSPACE_gmfn: u32 = 2;
/// `xen/include/public/memory.h`: `XENMAPSPACE_gmfn_range`, `size` frames
/// ([`XENMEM_add_to_physmap`] only).
pub const XENMAPSPACE_gmfn_range: u32 = 3;
/// `xen/include/public/memory.h`: `XENMAPSPACE_gmfn_foreign`, frames of another domain
/// ([`XENMEM_add_to_physmap_batch`] only).
pub const XENMAPSPACE_gmfn_foreign: u32 = 4;
/// `xen/include/public/memory.h`: `XENMAPSPACE_dev_mmio`, device MMIO (Arm only; mapped in
/// stage 2 as Normal Inner/Outer Write-Back Cacheable).
pub const XENMAPSPACE_dev_mmio: u32 = 5;
/// `xen/include/public/memory.h`: `XENMAPIDX_grant_table_status`, flag in `idx` selecting a
/// grant status frame.
pub const XENMAPIDX_grant_table_status: u32 = 0x8000_0000;

/// `xen/include/public/memory.h`: `struct xen_add_to_physmap`.
#[repr(C)]
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct xen_add_to_physmap {
    /// The domain whose physical address space changes.
    pub domid: domid_t,
    /// Number of pages for [`XENMAPSPACE_gmfn_range`].
    pub size: u16,
    /// A `XENMAPSPACE_*`.
    pub space: u32,
    /// Index into the map space.
    pub idx: xen_ulong_t,
    /// Guest frame in `domid` to map it at.
    pub gpfn: xen_pfn_t,
}

/// `xen/include/public/memory.h`: `struct xen_add_to_physmap_batch` (interface >= 0x00040700).
#[repr(C)]
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct xen_add_to_physmap_batch {
    /// The domain whose physical address space changes.
    pub domid: domid_t,
    /// A `XENMAPSPACE_*` (16 bits here).
    pub space: u16,
    /// Number of pages in `idxs`, `gpfns` and `errs`.
    pub size: u16,
    /// C: `union xen_add_to_physmap_batch_extra u`, whose members are `foreign_domid` (the
    /// owner, for [`XENMAPSPACE_gmfn_foreign`]) and `res0` (must be 0 for every other space).
    pub u: u16,
    /// IN: array of `size` indices into the map space (`xen_ulong_t`).
    pub idxs: GuestHandle,
    /// IN: array of `size` guest frames to map them at (`xen_pfn_t`).
    pub gpfns: GuestHandle,
    /// OUT: array of `size` per-page results (`int`, 0 or a negated error).
    pub errs: GuestHandle,
}

/// `xen/include/public/memory.h`: `struct xen_remove_from_physmap`.
#[repr(C)]
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct xen_remove_from_physmap {
    /// The domain whose physical address space changes.
    pub domid: domid_t,
    /// Implicit C padding before the 64-bit `gpfn`, made explicit; Xen ignores it.
    pub _pad: [u8; 6],
    /// Guest frame to unmap.
    pub gpfn: xen_pfn_t,
}

/// `xen/include/public/memory.h`: `XENMEM_resource_ioreq_server`, an IOREQ server's pages;
/// `id` is the server's `ioservid_t` ([`super::dm_op::ioservid_t`]), and only the server's
/// emulator may acquire them (`-EPERM`, `xen/common/ioreq.c`, `ioreq_server_get_frame`).
pub const XENMEM_resource_ioreq_server: u16 = 0;
/// `xen/include/public/memory.h`: `XENMEM_resource_grant_table`, a domain's grant-table
/// frames; `id` is an `XENMEM_resource_grant_table_id_*`.
pub const XENMEM_resource_grant_table: u16 = 1;
/// `xen/include/public/memory.h`: `XENMEM_resource_vmtrace_buf`, a vCPU's processor-trace
/// buffer; `id` is the vCPU (x86 only in Xen 4.17: Arm domains have no trace buffer, so its
/// size is 0 and the request `-EINVAL`).
pub const XENMEM_resource_vmtrace_buf: u16 = 2;

/// `xen/include/public/memory.h`: `XENMEM_resource_grant_table_id_shared`, the shared
/// (entry) frames.
pub const XENMEM_resource_grant_table_id_shared: u32 = 0;
/// `xen/include/public/memory.h`: `XENMEM_resource_grant_table_id_status`, the version-2
/// status frames.
pub const XENMEM_resource_grant_table_id_status: u32 = 1;

/// `xen/include/public/memory.h`: `XENMEM_resource_ioreq_server_frame_bufioreq`, frame index
/// of an IOREQ server's buffered page ([`super::ioreq::buffered_iopage`]); `-ENOENT` for a
/// server without buffering, which on Arm is every server.
pub const XENMEM_resource_ioreq_server_frame_bufioreq: u64 = 0;
/// `xen/include/public/memory.h`: `XENMEM_resource_ioreq_server_frame_ioreq(n)`, frame index
/// `1 + n` of an IOREQ server's `n`-th synchronous page ([`super::ioreq::shared_iopage`]).
/// Xen 4.17 serves `n` = 0 only (`-EINVAL` beyond, `xen/common/ioreq.c`,
/// `ioreq_server_get_frame`), though it sizes the resource as `1 + ceil(vcpus * 32 / 4096)`
/// frames (`xen/common/memory.c`, `ioreq_server_max_frames`).
pub const fn XENMEM_resource_ioreq_server_frame_ioreq(n: u64) -> u64 {
    1 + n
}

/// `xen/include/public/memory.h` (before Xen 4.13): `XENMEM_rsrc_acq_caller_owned`, bit 0
/// (`_XENMEM_rsrc_acq_caller_owned`) of the OUT field `flags` of
/// [`xen_mem_acquire_resource`]: "the resource pages have been assigned to the calling
/// domain". Removed by Xen commit 7c7f7e8fba ("remove the XENMEM_rsrc_acq_caller_owned
/// flag", 4.13): `flags` became [`xen_mem_acquire_resource::pad`], which must be 0 on input
/// (`-EINVAL`, `xen/common/memory.c`, `acquire_resource`), and 4.17's header says the bit
/// will not be reused as an output. Kept as a documented retired number; never set it.
pub const XENMEM_rsrc_acq_caller_owned: u32 = 1 << 0;

/// `xen/include/public/memory.h`: `struct xen_mem_acquire_resource`
/// (`xen_mem_acquire_resource_t`), the argument of [`XENMEM_acquire_resource`].
///
/// `xen/common/memory.c`, `acquire_resource`: a nonzero `pad` is `-EINVAL`, as is a `frame`
/// or `frame + nr_frames` of 2^32 or more; a null `frame_list` with `nr_frames` 0 asks for
/// the resource's size in frames (written back to `nr_frames`). The target must be another
/// domain (`-EPERM` for the caller itself) and the caller may act for it (`XSM_DM_PRIV`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct xen_mem_acquire_resource {
    /// IN: the domain whose resource is to be mapped.
    pub domid: domid_t,
    /// IN: an `XENMEM_resource_*`.
    pub r#type: u16,
    /// IN: a type-specific resource identifier, 0 unless the type says otherwise (an ioreq
    /// server's id, an `XENMEM_resource_grant_table_id_*`, a vCPU).
    pub id: u32,
    /// IN: frames to map (0 with a null `frame_list`: a size query); OUT: the resource's size
    /// for a size query. Xen may update it during the operation.
    pub nr_frames: u32,
    /// Must be 0 on input (formerly `flags`, see [`XENMEM_rsrc_acq_caller_owned`]).
    pub pad: u32,
    /// IN: index of the first frame to map (ignored when `nr_frames` is 0); for an ioreq
    /// server [`XENMEM_resource_ioreq_server_frame_bufioreq`] or
    /// [`XENMEM_resource_ioreq_server_frame_ioreq`]`(n)`.
    pub frame: u64,
    /// IN/OUT: `XEN_GUEST_HANDLE(xen_pfn_t)`, `nr_frames` frame numbers. An autotranslated
    /// caller (every Arm domain) fills in its own gfns, at which Xen maps the resource's
    /// frames; a PV caller gets the frames' MFNs back. `-EIO` means the list is partly mapped
    /// and the caller must unmap it. May be null when `nr_frames` is 0.
    pub frame_list: GuestHandle,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xen::hypercall::assert_layout;

    /// `xen/include/public/memory.h`: every `XENMEM_*` number, 8 left out.
    #[test]
    fn numbers() {
        let ops = [
            XENMEM_increase_reservation,
            XENMEM_decrease_reservation,
            XENMEM_maximum_ram_page,
            XENMEM_current_reservation,
            XENMEM_maximum_reservation,
            XENMEM_machphys_mfn_list,
            XENMEM_populate_physmap,
            XENMEM_add_to_physmap,
            XENMEM_memory_map,
            XENMEM_machine_memory_map,
            XENMEM_exchange,
            XENMEM_machphys_mapping,
            XENMEM_set_memory_map,
            XENMEM_maximum_gpfn,
            XENMEM_remove_from_physmap,
            XENMEM_set_pod_target,
            XENMEM_get_pod_target,
            XENMEM_get_sharing_freed_pages,
            XENMEM_get_sharing_shared_pages,
            XENMEM_paging_op,
            XENMEM_access_op,
            XENMEM_sharing_op,
            XENMEM_add_to_physmap_batch,
            XENMEM_claim_pages,
            XENMEM_machphys_compat_mfn_list,
            XENMEM_get_vnumainfo,
            XENMEM_reserved_device_memory_map,
            XENMEM_acquire_resource,
        ];
        let expected: Vec<u32> = (0..=28).filter(|&number| number != 8).collect();
        assert_eq!(ops.to_vec(), expected);
        assert!(ops.iter().all(|&op| op < 64), "the resume extent lives in bits 63:6");
        let spaces = [
            XENMAPSPACE_shared_info,
            XENMAPSPACE_grant_table,
            XENMAPSPACE_gmfn,
            XENMAPSPACE_gmfn_range,
            XENMAPSPACE_gmfn_foreign,
            XENMAPSPACE_dev_mmio,
        ];
        assert_eq!(spaces, [0, 1, 2, 3, 4, 5]);
    }

    /// `xen/include/public/memory.h`: `XENMEM_acquire_resource`'s types, ids and frame indices.
    #[test]
    fn resource_numbers() {
        assert_eq!(
            [
                XENMEM_resource_ioreq_server,
                XENMEM_resource_grant_table,
                XENMEM_resource_vmtrace_buf
            ],
            [0, 1, 2]
        );
        assert_eq!(
            [XENMEM_resource_grant_table_id_shared, XENMEM_resource_grant_table_id_status],
            [0, 1]
        );
        assert_eq!(XENMEM_resource_ioreq_server_frame_bufioreq, 0);
        assert_eq!(XENMEM_resource_ioreq_server_frame_ioreq(0), 1);
        assert_eq!(XENMEM_resource_ioreq_server_frame_ioreq(2), 3);
        assert_eq!(XENMEM_rsrc_acq_caller_owned, 1);
    }

    /// `xen/include/public/memory.h`: the `XENMEMF_*` encodings.
    #[test]
    fn mem_flags() {
        assert_eq!(XENMEMF_address_bits(32), 32);
        assert_eq!(XENMEMF_node(0), 0x100);
        assert_eq!(XENMEMF_get_node(XENMEMF_node(3) | XENMEMF_address_bits(40)), 3);
        assert_eq!(XENMEMF_get_address_bits(XENMEMF_node(3) | 40), 40);
        assert_eq!(XENMEMF_exact_node(1), 0x200 | 0x2_0000);
        assert_eq!([XENMEMF_populate_on_demand, XENMEMF_vnode], [0x1_0000, 0x4_0000]);
    }

    /// `xen/include/public/memory.h`: structure layouts on arm64.
    #[test]
    fn layouts() {
        assert_layout!(xen_memory_reservation, size = 32, align = 8, {
            extent_start @ 0, nr_extents @ 8, extent_order @ 16, mem_flags @ 20, domid @ 24,
            _pad @ 26,
        });
        assert_layout!(xen_memory_domain, size = 2, align = 2, { domid @ 0 });
        assert_layout!(xen_add_to_physmap, size = 24, align = 8, {
            domid @ 0, size @ 2, space @ 4, idx @ 8, gpfn @ 16,
        });
        assert_layout!(xen_add_to_physmap_batch, size = 32, align = 8, {
            domid @ 0, space @ 2, size @ 4, u @ 6, idxs @ 8, gpfns @ 16, errs @ 24,
        });
        assert_layout!(xen_remove_from_physmap, size = 16, align = 8, {
            domid @ 0, _pad @ 2, gpfn @ 8,
        });
        // `domid_t` @0, `uint16_t type` @2, `uint32_t id` @4, `nr_frames` @8, `pad` @12,
        // `uint64_t frame` @16, the handle (8, 8-aligned) @24: 32.
        assert_layout!(xen_mem_acquire_resource, size = 32, align = 8, {
            domid @ 0, r#type @ 2, id @ 4, nr_frames @ 8, pad @ 12, frame @ 16, frame_list @ 24,
        });
    }
}
