//! The grant-table hypercall, `grant_table_op(cmd, args, count)`
//! (`xen/include/public/grant_table.h`): a domain grants other domains access to its page
//! frames through entries in its grant table; grantees map, unmap and copy through them.
//!
//! x0 is a `GNTTABOP_*` number, x1 the guest address of an array of `count` (x2) argument
//! structures of the type named in each number's documentation. The hypercall number is
//! [`super::hypercall::__HYPERVISOR_grant_table_op`].
//!
//! # Invariants
//! - Numbers are Xen 4.17's (`__XEN_INTERFACE_VERSION__` at least 0x0003020a, so the
//!   version-2 operations 8..=12 exist); `GNTTABOP_*` runs 0..=12 with no gaps.
//! - `GNTST_*` runs 0 down to -13 ([`GNTST_no_space`]) with no gaps.
//! - Only version-1 grant entries ([`grant_entry_v1`]) are encoded here.
//! - Every structure's size and field offsets are pinned by the tests below (arm64 layout, where
//!   `xen_pfn_t` and guest handles are 8 bytes and 8-byte aligned, also for arm32 guests).
//! - C unions become one field as wide and as aligned as the union, with typed accessors
//!   ([`gnttab_copy_ptr`], [`gnttab_cache_flush`]), read and written in native byte order.

// Xen's spelling of its own names (see `hypercall`).
#![allow(non_upper_case_globals, non_camel_case_types)]

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use super::hypercall::{domid_t, xen_pfn_t, GuestHandle};

/// `xen/include/public/grant_table.h`: `grant_ref_t`, an index into a domain's grant table.
pub type grant_ref_t = u32;
/// `xen/include/public/grant_table.h`: `grant_handle_t`, tracks one mapping made through a
/// grant.
pub type grant_handle_t = u32;
/// `xen/include/public/grant_table.h`: `grant_status_t`, a version-2 status-frame entry.
pub type grant_status_t = u16;

/// `xen/include/public/grant_table.h`: `GNTTABOP_map_grant_ref`. Arguments:
/// [`gnttab_map_grant_ref`].
pub const GNTTABOP_map_grant_ref: u32 = 0;
/// `xen/include/public/grant_table.h`: `GNTTABOP_unmap_grant_ref`. Arguments:
/// [`gnttab_unmap_grant_ref`].
pub const GNTTABOP_unmap_grant_ref: u32 = 1;
/// `xen/include/public/grant_table.h`: `GNTTABOP_setup_table`. Arguments:
/// [`gnttab_setup_table`].
pub const GNTTABOP_setup_table: u32 = 2;
/// `xen/include/public/grant_table.h`: `GNTTABOP_dump_table` (debugging). Arguments:
/// [`gnttab_dump_table`].
pub const GNTTABOP_dump_table: u32 = 3;
/// `xen/include/public/grant_table.h`: `GNTTABOP_transfer` (PV guests only). Arguments:
/// [`gnttab_transfer`].
pub const GNTTABOP_transfer: u32 = 4;
/// `xen/include/public/grant_table.h`: `GNTTABOP_copy`. Arguments: [`gnttab_copy`].
pub const GNTTABOP_copy: u32 = 5;
/// `xen/include/public/grant_table.h`: `GNTTABOP_query_size`. Arguments:
/// [`gnttab_query_size`].
pub const GNTTABOP_query_size: u32 = 6;
/// `xen/include/public/grant_table.h`: `GNTTABOP_unmap_and_replace`. Arguments:
/// [`gnttab_unmap_and_replace`].
pub const GNTTABOP_unmap_and_replace: u32 = 7;
/// `xen/include/public/grant_table.h`: `GNTTABOP_set_version`. Arguments:
/// [`gnttab_set_version`].
pub const GNTTABOP_set_version: u32 = 8;
/// `xen/include/public/grant_table.h`: `GNTTABOP_get_status_frames`. Arguments:
/// [`gnttab_get_status_frames`].
pub const GNTTABOP_get_status_frames: u32 = 9;
/// `xen/include/public/grant_table.h`: `GNTTABOP_get_version`. Arguments:
/// [`gnttab_get_version`].
pub const GNTTABOP_get_version: u32 = 10;
/// `xen/include/public/grant_table.h`: `GNTTABOP_swap_grant_ref`. Arguments:
/// [`gnttab_swap_grant_ref`].
pub const GNTTABOP_swap_grant_ref: u32 = 11;
/// `xen/include/public/grant_table.h`: `GNTTABOP_cache_flush`. Arguments:
/// [`gnttab_cache_flush`].
pub const GNTTABOP_cache_flush: u32 = 12;

/// `xen/include/public/grant_table.h`: `GNTTAB_NR_RESERVED_ENTRIES`, entries kept across
/// version changes and possibly filled in by the toolstack at domain creation.
pub const GNTTAB_NR_RESERVED_ENTRIES: u32 = 8;
/// `xen/include/public/grant_table.h`: `GNTTAB_RESERVED_CONSOLE`, the console ring's grant.
pub const GNTTAB_RESERVED_CONSOLE: grant_ref_t = 0;
/// `xen/include/public/grant_table.h`: `GNTTAB_RESERVED_XENSTORE`, the xenstore ring's grant.
pub const GNTTAB_RESERVED_XENSTORE: grant_ref_t = 1;

/// `xen/include/public/grant_table.h`: `GTF_invalid`, the entry grants nothing.
pub const GTF_invalid: u16 = 0;
/// `xen/include/public/grant_table.h`: `GTF_permit_access`, `domid` may map/access `frame`.
pub const GTF_permit_access: u16 = 1;
/// `xen/include/public/grant_table.h`: `GTF_accept_transfer`, `domid` may transfer a frame to
/// the granter.
pub const GTF_accept_transfer: u16 = 2;
/// `xen/include/public/grant_table.h`: `GTF_transitive`, access through another grant (v2).
pub const GTF_transitive: u16 = 3;
/// `xen/include/public/grant_table.h`: `GTF_type_mask`, the entry-type bits.
pub const GTF_type_mask: u16 = 3;
/// `xen/include/public/grant_table.h`: `_GTF_readonly`, bit number of [`GTF_readonly`].
pub const _GTF_readonly: u32 = 2;
/// `xen/include/public/grant_table.h`: `GTF_readonly`, read-only access only (guest-written).
pub const GTF_readonly: u16 = 1 << _GTF_readonly;
/// `xen/include/public/grant_table.h`: `_GTF_reading`, bit number of [`GTF_reading`].
pub const _GTF_reading: u32 = 3;
/// `xen/include/public/grant_table.h`: `GTF_reading`, mapped for reading now (Xen-written).
pub const GTF_reading: u16 = 1 << _GTF_reading;
/// `xen/include/public/grant_table.h`: `_GTF_writing`, bit number of [`GTF_writing`].
pub const _GTF_writing: u32 = 4;
/// `xen/include/public/grant_table.h`: `GTF_writing`, mapped for writing now (Xen-written).
pub const GTF_writing: u16 = 1 << _GTF_writing;
/// `xen/include/public/grant_table.h`: `_GTF_PWT`, bit number of [`GTF_PWT`].
pub const _GTF_PWT: u32 = 5;
/// `xen/include/public/grant_table.h`: `GTF_PWT`, x86 cache attribute for mappings.
pub const GTF_PWT: u16 = 1 << _GTF_PWT;
/// `xen/include/public/grant_table.h`: `_GTF_PCD`, bit number of [`GTF_PCD`].
pub const _GTF_PCD: u32 = 6;
/// `xen/include/public/grant_table.h`: `GTF_PCD`, x86 cache attribute for mappings.
pub const GTF_PCD: u16 = 1 << _GTF_PCD;
/// `xen/include/public/grant_table.h`: `_GTF_PAT`, bit number of [`GTF_PAT`].
pub const _GTF_PAT: u32 = 7;
/// `xen/include/public/grant_table.h`: `GTF_PAT`, x86 cache attribute for mappings.
pub const GTF_PAT: u16 = 1 << _GTF_PAT;
/// `xen/include/public/grant_table.h`: `_GTF_sub_page`, bit number of [`GTF_sub_page`].
pub const _GTF_sub_page: u32 = 8;
/// `xen/include/public/grant_table.h`: `GTF_sub_page`, copy-only access to part of the page
/// (v2 entries).
pub const GTF_sub_page: u16 = 1 << _GTF_sub_page;
/// `xen/include/public/grant_table.h`: `_GTF_transfer_committed`, bit number of
/// [`GTF_transfer_committed`].
pub const _GTF_transfer_committed: u32 = 2;
/// `xen/include/public/grant_table.h`: `GTF_transfer_committed` (with
/// [`GTF_accept_transfer`]): Xen will transfer; the guest must not touch the entry until
/// [`GTF_transfer_completed`].
pub const GTF_transfer_committed: u16 = 1 << _GTF_transfer_committed;
/// `xen/include/public/grant_table.h`: `_GTF_transfer_completed`, bit number of
/// [`GTF_transfer_completed`].
pub const _GTF_transfer_completed: u32 = 3;
/// `xen/include/public/grant_table.h`: `GTF_transfer_completed`, the frame number is written.
pub const GTF_transfer_completed: u16 = 1 << _GTF_transfer_completed;

/// `xen/include/public/grant_table.h`: `_GNTMAP_device_map`, bit number of
/// [`GNTMAP_device_map`].
pub const _GNTMAP_device_map: u32 = 0;
/// `xen/include/public/grant_table.h`: `GNTMAP_device_map`, map for I/O devices.
pub const GNTMAP_device_map: u32 = 1 << _GNTMAP_device_map;
/// `xen/include/public/grant_table.h`: `_GNTMAP_host_map`, bit number of [`GNTMAP_host_map`].
pub const _GNTMAP_host_map: u32 = 1;
/// `xen/include/public/grant_table.h`: `GNTMAP_host_map`, map for the host CPUs at `host_addr`.
pub const GNTMAP_host_map: u32 = 1 << _GNTMAP_host_map;
/// `xen/include/public/grant_table.h`: `_GNTMAP_readonly`, bit number of [`GNTMAP_readonly`].
pub const _GNTMAP_readonly: u32 = 2;
/// `xen/include/public/grant_table.h`: `GNTMAP_readonly`, read-only mapping.
pub const GNTMAP_readonly: u32 = 1 << _GNTMAP_readonly;
/// `xen/include/public/grant_table.h`: `_GNTMAP_application_map`, bit number of
/// [`GNTMAP_application_map`].
pub const _GNTMAP_application_map: u32 = 3;
/// `xen/include/public/grant_table.h`: `GNTMAP_application_map`, host mapping usable by the
/// current application too, not only the guest OS.
pub const GNTMAP_application_map: u32 = 1 << _GNTMAP_application_map;
/// `xen/include/public/grant_table.h`: `_GNTMAP_contains_pte`, bit number of
/// [`GNTMAP_contains_pte`].
pub const _GNTMAP_contains_pte: u32 = 4;
/// `xen/include/public/grant_table.h`: `GNTMAP_contains_pte`, `host_addr` is the machine
/// address of a PTE to update, not a virtual address.
pub const GNTMAP_contains_pte: u32 = 1 << _GNTMAP_contains_pte;
/// `xen/include/public/grant_table.h`: `_GNTMAP_guest_avail0`, first of the bits copied into
/// guest-available PTE bits (with `XENFEAT_gnttab_map_avail_bits`).
pub const _GNTMAP_guest_avail0: u32 = 16;
/// `xen/include/public/grant_table.h`: `GNTMAP_guest_avail_mask`.
pub const GNTMAP_guest_avail_mask: u32 = u32::MAX << _GNTMAP_guest_avail0;

/// `xen/include/public/grant_table.h`: `_GNTCOPY_source_gref`, bit number of
/// [`GNTCOPY_source_gref`].
pub const _GNTCOPY_source_gref: u32 = 0;
/// `xen/include/public/grant_table.h`: `GNTCOPY_source_gref`, `source.u` is a grant reference
/// (else a frame number of the caller).
pub const GNTCOPY_source_gref: u16 = 1 << _GNTCOPY_source_gref;
/// `xen/include/public/grant_table.h`: `_GNTCOPY_dest_gref`, bit number of
/// [`GNTCOPY_dest_gref`].
pub const _GNTCOPY_dest_gref: u32 = 1;
/// `xen/include/public/grant_table.h`: `GNTCOPY_dest_gref`, `dest.u` is a grant reference.
pub const GNTCOPY_dest_gref: u16 = 1 << _GNTCOPY_dest_gref;

/// `xen/include/public/grant_table.h`: `GNTTAB_CACHE_CLEAN`, [`gnttab_cache_flush`] op bit.
pub const GNTTAB_CACHE_CLEAN: u32 = 1 << 0;
/// `xen/include/public/grant_table.h`: `GNTTAB_CACHE_INVAL`, [`gnttab_cache_flush`] op bit.
pub const GNTTAB_CACHE_INVAL: u32 = 1 << 1;
/// `xen/include/public/grant_table.h`: `GNTTAB_CACHE_SOURCE_GREF`, `a` is a grant reference
/// (else a device bus address).
pub const GNTTAB_CACHE_SOURCE_GREF: u32 = 1 << 31;

// `enum grant_status`: `xen/include/public/grant_table.h`. The `status` fields are `int16_t`.

/// `xen/include/public/grant_table.h`: `GNTST_okay`.
pub const GNTST_okay: i16 = 0;
/// `xen/include/public/grant_table.h`: `GNTST_general_error`, undefined error.
pub const GNTST_general_error: i16 = -1;
/// `xen/include/public/grant_table.h`: `GNTST_bad_domain`, unknown domain id.
pub const GNTST_bad_domain: i16 = -2;
/// `xen/include/public/grant_table.h`: `GNTST_bad_gntref`, bad grant reference.
pub const GNTST_bad_gntref: i16 = -3;
/// `xen/include/public/grant_table.h`: `GNTST_bad_handle`, bad mapping handle.
pub const GNTST_bad_handle: i16 = -4;
/// `xen/include/public/grant_table.h`: `GNTST_bad_virt_addr`, bad virtual address to map.
pub const GNTST_bad_virt_addr: i16 = -5;
/// `xen/include/public/grant_table.h`: `GNTST_bad_dev_addr`, bad device address to unmap.
pub const GNTST_bad_dev_addr: i16 = -6;
/// `xen/include/public/grant_table.h`: `GNTST_no_device_space`, I/O MMU out of space.
pub const GNTST_no_device_space: i16 = -7;
/// `xen/include/public/grant_table.h`: `GNTST_permission_denied`.
pub const GNTST_permission_denied: i16 = -8;
/// `xen/include/public/grant_table.h`: `GNTST_bad_page`, page invalid for the operation.
pub const GNTST_bad_page: i16 = -9;
/// `xen/include/public/grant_table.h`: `GNTST_bad_copy_arg`, copy crosses a page boundary.
pub const GNTST_bad_copy_arg: i16 = -10;
/// `xen/include/public/grant_table.h`: `GNTST_address_too_big`, transfer address too large.
pub const GNTST_address_too_big: i16 = -11;
/// `xen/include/public/grant_table.h`: `GNTST_eagain`, not done, try again.
pub const GNTST_eagain: i16 = -12;
/// `xen/include/public/grant_table.h`: `GNTST_no_space`, out of space (handles etc.).
pub const GNTST_no_space: i16 = -13;

/// `xen/include/public/grant_table.h`: `struct grant_entry_v1`, one entry of a version-1
/// grant table (an array of these fills the table's frames). Write `domid` and `frame`, then a
/// write barrier, then `flags`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct grant_entry_v1 {
    /// `GTF_*` type and flags (written by both guest and Xen).
    pub flags: u16,
    /// The domain granted access.
    pub domid: domid_t,
    /// The frame (a guest frame number on Arm) granted or to transfer into.
    pub frame: u32,
}

/// `xen/include/public/grant_table.h`: `struct gnttab_map_grant_ref`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct gnttab_map_grant_ref {
    /// IN: where to map (a guest physical address on Arm), or a PTE's address.
    pub host_addr: u64,
    /// IN: `GNTMAP_*` flags.
    pub flags: u32,
    /// IN: the grant in `dom`'s table.
    pub r#ref: grant_ref_t,
    /// IN: the granting domain.
    pub dom: domid_t,
    /// OUT: a `GNTST_*` code.
    pub status: i16,
    /// OUT: the handle to unmap with.
    pub handle: grant_handle_t,
    /// OUT: the device-visible address ([`GNTMAP_device_map`]).
    pub dev_bus_addr: u64,
}

/// `xen/include/public/grant_table.h`: `struct gnttab_unmap_grant_ref`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct gnttab_unmap_grant_ref {
    /// IN: the host mapping to destroy, or 0 to ignore.
    pub host_addr: u64,
    /// IN: the device mapping to destroy, or 0 to ignore.
    pub dev_bus_addr: u64,
    /// IN: the handle from the map.
    pub handle: grant_handle_t,
    /// OUT: a `GNTST_*` code.
    pub status: i16,
    /// Implicit C tail padding, made explicit; ignored.
    pub _pad: u16,
}

/// `xen/include/public/grant_table.h`: `struct gnttab_setup_table`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct gnttab_setup_table {
    /// IN: the domain (`DOMID_SELF` unless privileged).
    pub dom: domid_t,
    /// Implicit C padding before `nr_frames`, made explicit; ignored.
    pub _pad0: u16,
    /// IN: frames wanted (at least), and the capacity of `frame_list`.
    pub nr_frames: u32,
    /// OUT: a `GNTST_*` code.
    pub status: i16,
    /// Implicit C padding before the 8-byte-aligned handle, made explicit; ignored.
    pub _pad1: [u16; 3],
    /// IN: guest array of `xen_pfn_t`; OUT: the table's frame numbers written there.
    pub frame_list: GuestHandle,
}

/// `xen/include/public/grant_table.h`: `struct gnttab_dump_table`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct gnttab_dump_table {
    /// IN: the domain.
    pub dom: domid_t,
    /// OUT: a `GNTST_*` code.
    pub status: i16,
}

/// `xen/include/public/grant_table.h`: `struct gnttab_transfer`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct gnttab_transfer {
    /// IN: the frame to give away.
    pub mfn: xen_pfn_t,
    /// IN: the receiving domain.
    pub domid: domid_t,
    /// Implicit C padding before `ref`, made explicit; ignored.
    pub _pad0: u16,
    /// IN: the receiver's [`GTF_accept_transfer`] grant.
    pub r#ref: grant_ref_t,
    /// OUT: a `GNTST_*` code.
    pub status: i16,
    /// Implicit C tail padding, made explicit; ignored.
    pub _pad1: [u16; 3],
}

/// `xen/include/public/grant_table.h`: `struct gnttab_copy_ptr`, one end of a
/// [`gnttab_copy`]. The C union `u { grant_ref_t ref; xen_pfn_t gmfn; }` is the 8-byte,
/// 8-aligned field `u`; which member applies is chosen by `GNTCOPY_*` in the copy's `flags`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct gnttab_copy_ptr {
    /// The union: a grant reference in its first 4 bytes, or a frame number of the caller.
    pub u: u64,
    /// The domain owning the frame or grant.
    pub domid: domid_t,
    /// Byte offset within the frame.
    pub offset: u16,
    /// Implicit C tail padding, made explicit; ignored.
    pub _pad: u32,
}

impl gnttab_copy_ptr {
    /// `u.ref`: the first 4 bytes of the union, in native byte order.
    pub fn gref(&self) -> grant_ref_t {
        let b = self.u.to_ne_bytes();
        u32::from_ne_bytes([b[0], b[1], b[2], b[3]])
    }

    /// Writes `u.ref`, zeroing the union's other 4 bytes.
    pub fn set_gref(&mut self, r: grant_ref_t) {
        let mut b = [0u8; 8];
        b[..4].copy_from_slice(&r.to_ne_bytes());
        self.u = u64::from_ne_bytes(b);
    }

    /// `u.gmfn`.
    pub fn gmfn(&self) -> xen_pfn_t {
        self.u
    }

    /// Writes `u.gmfn`.
    pub fn set_gmfn(&mut self, gmfn: xen_pfn_t) {
        self.u = gmfn;
    }
}

/// `xen/include/public/grant_table.h`: `struct gnttab_copy`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct gnttab_copy {
    /// IN: where to copy from.
    pub source: gnttab_copy_ptr,
    /// IN: where to copy to.
    pub dest: gnttab_copy_ptr,
    /// IN: bytes to copy (neither end may cross its page).
    pub len: u16,
    /// IN: `GNTCOPY_*` flags.
    pub flags: u16,
    /// OUT: a `GNTST_*` code.
    pub status: i16,
    /// Implicit C tail padding, made explicit; ignored.
    pub _pad: u16,
}

/// `xen/include/public/grant_table.h`: `struct gnttab_query_size`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct gnttab_query_size {
    /// IN: the domain (`DOMID_SELF` unless privileged).
    pub dom: domid_t,
    /// Implicit C padding before `nr_frames`, made explicit; ignored.
    pub _pad0: u16,
    /// OUT: current table size in frames.
    pub nr_frames: u32,
    /// OUT: maximum table size in frames.
    pub max_nr_frames: u32,
    /// OUT: a `GNTST_*` code.
    pub status: i16,
    /// Implicit C tail padding, made explicit; ignored.
    pub _pad1: u16,
}

/// `xen/include/public/grant_table.h`: `struct gnttab_unmap_and_replace`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct gnttab_unmap_and_replace {
    /// IN: the host mapping to destroy.
    pub host_addr: u64,
    /// IN: the address whose mapping replaces it.
    pub new_addr: u64,
    /// IN: the handle from the map.
    pub handle: grant_handle_t,
    /// OUT: a `GNTST_*` code.
    pub status: i16,
    /// Implicit C tail padding, made explicit; ignored.
    pub _pad: u16,
}

/// `xen/include/public/grant_table.h`: `struct gnttab_set_version`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct gnttab_set_version {
    /// IN: the version wanted (1 or 2); OUT: the version in effect.
    pub version: u32,
}

/// `xen/include/public/grant_table.h`: `struct gnttab_get_status_frames`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct gnttab_get_status_frames {
    /// IN: capacity of `frame_list`.
    pub nr_frames: u32,
    /// IN: the domain.
    pub dom: domid_t,
    /// OUT: a `GNTST_*` code.
    pub status: i16,
    /// IN: guest array of `uint64_t`; OUT: the status frames written there.
    pub frame_list: GuestHandle,
}

/// `xen/include/public/grant_table.h`: `struct gnttab_get_version`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct gnttab_get_version {
    /// IN: the domain.
    pub dom: domid_t,
    /// Xen's explicit padding.
    pub pad: u16,
    /// OUT: the version in effect.
    pub version: u32,
}

/// `xen/include/public/grant_table.h`: `struct gnttab_swap_grant_ref`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct gnttab_swap_grant_ref {
    /// IN: one entry.
    pub ref_a: grant_ref_t,
    /// IN: the other entry.
    pub ref_b: grant_ref_t,
    /// OUT: a `GNTST_*` code.
    pub status: i16,
    /// Implicit C tail padding, made explicit; ignored.
    pub _pad: u16,
}

/// `xen/include/public/grant_table.h`: `struct gnttab_cache_flush`. The C union
/// `a { uint64_t dev_bus_addr; grant_ref_t ref; }` is the 8-byte field `a`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct gnttab_cache_flush {
    /// The union: a device bus address, or (with [`GNTTAB_CACHE_SOURCE_GREF`]) a grant
    /// reference in its first 4 bytes.
    pub a: u64,
    /// Offset from the start of the grant.
    pub offset: u16,
    /// Length within the grant.
    pub length: u16,
    /// `GNTTAB_CACHE_*` bits.
    pub op: u32,
}

impl gnttab_cache_flush {
    /// `a.ref`: the first 4 bytes of the union, in native byte order.
    pub fn gref(&self) -> grant_ref_t {
        let b = self.a.to_ne_bytes();
        u32::from_ne_bytes([b[0], b[1], b[2], b[3]])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xen::hypercall::{__HYPERVISOR_grant_table_op, assert_layout};

    /// `xen/include/public/grant_table.h`: every number.
    #[test]
    fn numbers() {
        assert_eq!(__HYPERVISOR_grant_table_op, 20);
        let ops = [
            GNTTABOP_map_grant_ref,
            GNTTABOP_unmap_grant_ref,
            GNTTABOP_setup_table,
            GNTTABOP_dump_table,
            GNTTABOP_transfer,
            GNTTABOP_copy,
            GNTTABOP_query_size,
            GNTTABOP_unmap_and_replace,
            GNTTABOP_set_version,
            GNTTABOP_get_status_frames,
            GNTTABOP_get_version,
            GNTTABOP_swap_grant_ref,
            GNTTABOP_cache_flush,
        ];
        assert_eq!(ops.to_vec(), (0..=12).collect::<Vec<u32>>());
        let st = [
            GNTST_okay,
            GNTST_general_error,
            GNTST_bad_domain,
            GNTST_bad_gntref,
            GNTST_bad_handle,
            GNTST_bad_virt_addr,
            GNTST_bad_dev_addr,
            GNTST_no_device_space,
            GNTST_permission_denied,
            GNTST_bad_page,
            GNTST_bad_copy_arg,
            GNTST_address_too_big,
            GNTST_eagain,
            GNTST_no_space,
        ];
        assert_eq!(st.to_vec(), (-13..=0).rev().collect::<Vec<i16>>());
        assert_eq!(
            [GTF_invalid, GTF_permit_access, GTF_accept_transfer, GTF_transitive, GTF_type_mask],
            [0, 1, 2, 3, 3]
        );
        assert_eq!(
            [GTF_readonly, GTF_reading, GTF_writing, GTF_PWT, GTF_PCD, GTF_PAT, GTF_sub_page],
            [0x4, 0x8, 0x10, 0x20, 0x40, 0x80, 0x100]
        );
        assert_eq!([GTF_transfer_committed, GTF_transfer_completed], [0x4, 0x8]);
        assert_eq!(
            [
                GNTMAP_device_map,
                GNTMAP_host_map,
                GNTMAP_readonly,
                GNTMAP_application_map,
                GNTMAP_contains_pte
            ],
            [1, 2, 4, 8, 16]
        );
        assert_eq!(GNTMAP_guest_avail_mask, 0xFFFF_0000);
        assert_eq!([GNTCOPY_source_gref, GNTCOPY_dest_gref], [1, 2]);
        assert_eq!(
            [GNTTAB_CACHE_CLEAN, GNTTAB_CACHE_INVAL, GNTTAB_CACHE_SOURCE_GREF],
            [1, 2, 0x8000_0000]
        );
        assert_eq!(
            [GNTTAB_NR_RESERVED_ENTRIES, GNTTAB_RESERVED_CONSOLE, GNTTAB_RESERVED_XENSTORE],
            [8, 0, 1]
        );
    }

    /// `xen/include/public/grant_table.h`: structure layouts on arm64.
    #[test]
    fn layouts() {
        assert_layout!(grant_entry_v1, size = 8, align = 4, { flags @ 0, domid @ 2, frame @ 4 });
        assert_layout!(gnttab_map_grant_ref, size = 32, align = 8, {
            host_addr @ 0, flags @ 8, r#ref @ 12, dom @ 16, status @ 18, handle @ 20,
            dev_bus_addr @ 24,
        });
        assert_layout!(gnttab_unmap_grant_ref, size = 24, align = 8, {
            host_addr @ 0, dev_bus_addr @ 8, handle @ 16, status @ 20, _pad @ 22,
        });
        assert_layout!(gnttab_setup_table, size = 24, align = 8, {
            dom @ 0, _pad0 @ 2, nr_frames @ 4, status @ 8, _pad1 @ 10, frame_list @ 16,
        });
        assert_layout!(gnttab_dump_table, size = 4, align = 2, { dom @ 0, status @ 2 });
        assert_layout!(gnttab_transfer, size = 24, align = 8, {
            mfn @ 0, domid @ 8, _pad0 @ 10, r#ref @ 12, status @ 16, _pad1 @ 18,
        });
        assert_layout!(gnttab_copy_ptr, size = 16, align = 8, {
            u @ 0, domid @ 8, offset @ 10, _pad @ 12,
        });
        assert_layout!(gnttab_copy, size = 40, align = 8, {
            source @ 0, dest @ 16, len @ 32, flags @ 34, status @ 36, _pad @ 38,
        });
        assert_layout!(gnttab_query_size, size = 16, align = 4, {
            dom @ 0, _pad0 @ 2, nr_frames @ 4, max_nr_frames @ 8, status @ 12, _pad1 @ 14,
        });
        assert_layout!(gnttab_unmap_and_replace, size = 24, align = 8, {
            host_addr @ 0, new_addr @ 8, handle @ 16, status @ 20, _pad @ 22,
        });
        assert_layout!(gnttab_set_version, size = 4, align = 4, { version @ 0 });
        assert_layout!(gnttab_get_status_frames, size = 16, align = 8, {
            nr_frames @ 0, dom @ 4, status @ 6, frame_list @ 8,
        });
        assert_layout!(gnttab_get_version, size = 8, align = 4, { dom @ 0, pad @ 2, version @ 4 });
        assert_layout!(gnttab_swap_grant_ref, size = 12, align = 4, {
            ref_a @ 0, ref_b @ 4, status @ 8, _pad @ 10,
        });
        assert_layout!(gnttab_cache_flush, size = 16, align = 8, {
            a @ 0, offset @ 8, length @ 10, op @ 12,
        });
    }

    /// The union accessors place `ref` in the union's first 4 bytes, as C does.
    #[test]
    fn unions() {
        let mut p = gnttab_copy_ptr::default();
        p.set_gref(0xABCD_1234);
        assert_eq!(p.gref(), 0xABCD_1234);
        assert_eq!(&p.as_bytes()[..4], &0xABCD_1234u32.to_ne_bytes());
        assert_eq!(&p.as_bytes()[4..8], &[0; 4]);
        p.set_gmfn(0x1_2345_6789);
        assert_eq!(p.gmfn(), 0x1_2345_6789);
        let f = gnttab_cache_flush {
            a: u64::from_ne_bytes([7, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF]),
            ..Default::default()
        };
        assert_eq!(f.gref(), 7);
    }
}
