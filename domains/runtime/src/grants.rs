//! Grant tables for domains, version 1 as a Linux guest on Arm uses them
//! (`xen/include/public/grant_table.h`, Linux's `drivers/xen/grant-table.c`): the granter writes
//! entries in its own table; the mapper maps, unmaps and copies through `GNTTABOP_*`; and
//! [`SharedRing`] puts an `io/ring.h` ring on a page the two share.
//!
//! [`init`] maps the table's frames at [`GRANT_TABLE_ADDRESS`] with `XENMEM_add_to_physmap`
//! (`XENMAPSPACE_grant_table`), as Linux's `gnttab_map` does on Arm. [`grant_access`] and
//! [`end_access`] are Linux's `gnttab_grant_foreign_access_ref` and
//! `gnttab_end_foreign_access_ref` for version 1. A mapper chooses the guest-physical address of
//! each mapping; [`MAP_AREA`] is a window above every domain's RAM for that, a page per mapping.
//! A domain's own page's frame number is its address / 4096: the runtime identity-maps RAM.
//!
//! # Invariants
//! - Table entries are touched only with atomics: the hypervisor sets and clears `GTF_reading`
//!   and `GTF_writing` in an entry's flags while the domain runs. An entry's first word (flags
//!   and domid) is written with one store, after its frame and a release fence, so the
//!   hypervisor never sees `GTF_permit_access` with a stale frame or domid.
//! - Only entries below [`table_entries`] are touched: they lie in frames [`init`] mapped.
//! - A [`SharedPage`] is read and written only with volatile or atomic accesses: the peer may
//!   change it at any time, so no Rust reference to its bytes is ever made.

use core::fmt;
use core::sync::atomic::{fence, AtomicU32, Ordering};

use xenolith_abi::ring::{ring_size, shared_ring_init, SharedIndices, RING_IDX, SRING_HEADER_SIZE};
use xenolith_abi::xen::errno::XenError;
use xenolith_abi::xen::grant_table::{
    self as gt, gnttab_copy, gnttab_map_grant_ref, gnttab_unmap_grant_ref, grant_handle_t,
    grant_ref_t,
};
use xenolith_abi::xen::hypercall::{self as number, domid_t, GuestHandle, DOMID_SELF};
use xenolith_abi::xen::memory::{
    xen_add_to_physmap, XENMAPSPACE_grant_table, XENMEM_add_to_physmap,
};
use zerocopy::{FromBytes, Immutable, IntoBytes};

use crate::hypercall;

/// Where [`init`] maps the grant table: guest frames in the 1-4 GiB window above any domain's
/// RAM, which the runtime maps as normal memory, after the shared-info page
/// (`events::SHARED_INFO_ADDRESS`).
pub const GRANT_TABLE_ADDRESS: u64 = 0xF010_0000;
/// Most table frames [`init`] maps: 2,048 entries.
pub const MAX_FRAMES: u32 = 4;
/// Version-1 entries per 4 KiB frame (4096 / `sizeof(grant_entry_v1_t)`).
pub const ENTRIES_PER_FRAME: u32 = 512;
/// A window for mapping other domains' grants (a page each), in the normal-memory part of the
/// runtime's identity map, clear of [`GRANT_TABLE_ADDRESS`] and every domain's RAM.
pub const MAP_AREA: u64 = 0xF100_0000;
/// The page size grants come in.
pub const PAGE_SIZE: u64 = 4096;

/// Table frames [`init`] has mapped.
static FRAMES: AtomicU32 = AtomicU32::new(0);

/// Why a grant operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GrantError {
    /// The hypercall itself failed (bad count, bad address, unknown operation).
    Hypercall(XenError),
    /// The hypercall ran, and the operation's status is this `GNTST_*` code.
    Status(i16),
}

impl fmt::Display for GrantError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Hypercall(error) => write!(f, "{error}"),
            Self::Status(status) => write!(f, "{} ({status})", status_name(*status)),
        }
    }
}

/// The name of a `GNTST_*` code.
pub fn status_name(status: i16) -> &'static str {
    const NAMES: [&str; 14] = [
        "GNTST_okay",
        "GNTST_general_error",
        "GNTST_bad_domain",
        "GNTST_bad_gntref",
        "GNTST_bad_handle",
        "GNTST_bad_virt_addr",
        "GNTST_bad_dev_addr",
        "GNTST_no_device_space",
        "GNTST_permission_denied",
        "GNTST_bad_page",
        "GNTST_bad_copy_arg",
        "GNTST_address_too_big",
        "GNTST_eagain",
        "GNTST_no_space",
    ];
    usize::try_from(-i32::from(status))
        .ok()
        .and_then(|index| NAMES.get(index))
        .copied()
        .unwrap_or("unknown GNTST")
}

fn result(value: i64) -> Result<(), XenError> {
    if value == 0 {
        Ok(())
    } else {
        Err(XenError::from_return(value).unwrap_or(XenError::EINVAL))
    }
}

/// `grant_table_op(cmd, uop, count)`, raw: Xen's result. The hypervisor reads `count`
/// structures at `uop` and writes their answers back there; pass a buffer this domain owns
/// (prefer the typed wrappers, which do).
pub fn op(cmd: u32, uop: u64, count: u32) -> i64 {
    hypercall::raw(
        number::__HYPERVISOR_grant_table_op,
        [u64::from(cmd), uop, u64::from(count), 0, 0],
    )
}

/// `grant_table_op(cmd, ops, ops.len())`: Xen's result; each operation's answer is in `ops`
/// (any bytes the hypervisor writes there are valid `T`s).
fn batch<T: FromBytes + IntoBytes>(cmd: u32, ops: &mut [T]) -> i64 {
    match u32::try_from(ops.len()) {
        Ok(count) => op(cmd, ops.as_mut_ptr() as u64, count),
        Err(_) => XenError::EINVAL.to_return(),
    }
}

/// A single-structure operation: the hypercall's error, or `ok` of the answer.
fn single<T: FromBytes + IntoBytes>(cmd: u32, request: &mut T) -> Result<(), GrantError> {
    result(batch(cmd, core::slice::from_mut(request))).map_err(GrantError::Hypercall)
}

fn status(status: i16) -> Result<(), GrantError> {
    if status == gt::GNTST_okay {
        Ok(())
    } else {
        Err(GrantError::Status(status))
    }
}

/// Maps grant-table frames `0..frames` at [`GRANT_TABLE_ADDRESS`] (frame `i` at
/// `GRANT_TABLE_ADDRESS + i * 4096`), growing the table to `frames` frames. Again with more
/// frames, maps only the new ones (a mapped frame must be removed before it is added again).
pub fn init(frames: u32) -> Result<(), XenError> {
    if frames == 0 || frames > MAX_FRAMES {
        return Err(XenError::EINVAL);
    }
    for index in FRAMES.load(Ordering::Acquire)..frames {
        let request = xen_add_to_physmap {
            domid: DOMID_SELF,
            size: 0,
            space: XENMAPSPACE_grant_table,
            idx: u64::from(index),
            gpfn: GRANT_TABLE_ADDRESS / PAGE_SIZE + u64::from(index),
        };
        result(hypercall::memory_op(XENMEM_add_to_physmap, (&raw const request) as u64))?;
        FRAMES.fetch_max(index + 1, Ordering::AcqRel);
    }
    Ok(())
}

/// Entries this domain's mapped table holds (0 before [`init`]).
pub fn table_entries() -> u32 {
    FRAMES.load(Ordering::Acquire) * ENTRIES_PER_FRAME
}

/// Entry `gref`'s two words, `(flags | domid << 16, frame)`, if [`init`] mapped it.
fn entry(gref: grant_ref_t) -> Option<(&'static AtomicU32, &'static AtomicU32)> {
    if gref >= table_entries() {
        return None;
    }
    let address = GRANT_TABLE_ADDRESS + u64::from(gref) * 8;
    // SAFETY: `gref` is below the entries of the frames `init` mapped (checked above), so
    // `address` is an 8-byte-aligned `grant_entry_v1` in them, normal memory in the identity map
    // for the rest of the domain's life; its first word is `flags` and `domid`, only ever
    // accessed atomically (module invariant).
    let header = unsafe { &*(address as *const AtomicU32) };
    // SAFETY: as above; the entry's second word, `frame`.
    let frame = unsafe { &*((address + 4) as *const AtomicU32) };
    Some((header, frame))
}

/// Grants domain `domid` access to this domain's frame `gfn` through entry `gref`, read-only if
/// `readonly` (Linux's `gnttab_grant_foreign_access_ref`). `EINVAL` for an entry beyond the
/// mapped table.
pub fn grant_access(
    gref: grant_ref_t,
    domid: domid_t,
    gfn: u32,
    readonly: bool,
) -> Result<(), XenError> {
    let (header, frame) = entry(gref).ok_or(XenError::EINVAL)?;
    frame.store(gfn, Ordering::Relaxed);
    // The frame must be visible before the flags that make the entry valid.
    fence(Ordering::Release);
    let flags = gt::GTF_permit_access | if readonly { gt::GTF_readonly } else { 0 };
    header.store(u32::from(flags) | (u32::from(domid) << 16), Ordering::Relaxed);
    Ok(())
}

/// Entry `gref`'s `(flags, domid)` as they stand, with the `GTF_reading`/`GTF_writing` the
/// hypervisor keeps in them while the grant is mapped or copied; `None` beyond the mapped
/// table. A never-written entry reads `(0, 0)`: Xen hands out zeroed table frames.
pub fn entry_header(gref: grant_ref_t) -> Option<(u16, domid_t)> {
    let word = entry(gref)?.0.load(Ordering::Acquire);
    Some((word as u16, (word >> 16) as domid_t))
}

/// Ends the grant in entry `gref` unless it is in use (Linux's `gnttab_end_foreign_access_ref`
/// for version 1): clears its flags only if neither `GTF_reading` nor `GTF_writing` is set.
/// False if the grant is mapped or being copied (or `gref` is beyond the mapped table); then the
/// entry is unchanged.
pub fn end_access(gref: grant_ref_t) -> bool {
    let Some((header, _)) = entry(gref) else { return false };
    let busy = u32::from(gt::GTF_reading | gt::GTF_writing);
    let mut current = header.load(Ordering::Acquire);
    loop {
        if current & busy != 0 {
            return false;
        }
        // Flags to 0, the domid kept (the hypervisor only ever sets or clears flag bits).
        match header.compare_exchange_weak(
            current,
            current & 0xFFFF_0000,
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            Ok(_) => return true,
            Err(now) => current = now,
        }
    }
}

/// `GNTTABOP_query_size` of domain `dom`: `(nr_frames, max_nr_frames)`.
pub fn query_size(dom: domid_t) -> Result<(u32, u32), GrantError> {
    let mut request = gt::gnttab_query_size { dom, ..Default::default() };
    single(gt::GNTTABOP_query_size, &mut request)?;
    status(request.status)?;
    Ok((request.nr_frames, request.max_nr_frames))
}

/// `GNTTABOP_setup_table` of domain `dom`: grows its table to `nr_frames` frames and writes
/// their frame numbers (on Arm, where they are mapped, or `INVALID_GFN`) into `frames`.
pub fn setup_table(dom: domid_t, nr_frames: u32, frames: &mut [u64]) -> Result<(), GrantError> {
    if frames.len() < nr_frames as usize {
        return Err(GrantError::Hypercall(XenError::EINVAL));
    }
    let mut request = gt::gnttab_setup_table {
        dom,
        nr_frames,
        frame_list: GuestHandle::new(frames.as_mut_ptr() as u64),
        ..Default::default()
    };
    single(gt::GNTTABOP_setup_table, &mut request)?;
    status(request.status)
}

/// `GNTTABOP_set_version`: Xen's answer, and the version in effect, which Xen reports either
/// way.
pub fn set_version(version: u32) -> (Result<(), XenError>, u32) {
    let mut request = gt::gnttab_set_version { version };
    let answer = result(batch(gt::GNTTABOP_set_version, core::slice::from_mut(&mut request)));
    (answer, request.version)
}

/// `GNTTABOP_get_version` of domain `dom`.
pub fn get_version(dom: domid_t) -> Result<u32, XenError> {
    let mut request = gt::gnttab_get_version { dom, ..Default::default() };
    result(batch(gt::GNTTABOP_get_version, core::slice::from_mut(&mut request)))?;
    Ok(request.version)
}

/// `GNTTABOP_map_grant_ref` of grant `gref` of domain `dom` at guest-physical `host_addr`
/// (`GNTMAP_host_map`, with `GNTMAP_readonly` if `readonly`): the handle to unmap it with.
pub fn map(
    dom: domid_t,
    gref: grant_ref_t,
    host_addr: u64,
    readonly: bool,
) -> Result<grant_handle_t, GrantError> {
    let flags = gt::GNTMAP_host_map | if readonly { gt::GNTMAP_readonly } else { 0 };
    let mut request =
        gnttab_map_grant_ref { host_addr, flags, r#ref: gref, dom, ..Default::default() };
    result(map_batch(core::slice::from_mut(&mut request))).map_err(GrantError::Hypercall)?;
    status(request.status)?;
    Ok(request.handle)
}

/// `GNTTABOP_map_grant_ref` of every request in `requests`: Xen's result (each request's
/// `status` and `handle` are its own answer).
pub fn map_batch(requests: &mut [gnttab_map_grant_ref]) -> i64 {
    batch(gt::GNTTABOP_map_grant_ref, requests)
}

/// `GNTTABOP_unmap_grant_ref` of mapping `handle` at `host_addr`.
pub fn unmap(host_addr: u64, handle: grant_handle_t) -> Result<(), GrantError> {
    let mut request = gnttab_unmap_grant_ref { host_addr, handle, ..Default::default() };
    single(gt::GNTTABOP_unmap_grant_ref, &mut request)?;
    status(request.status)
}

/// `GNTTABOP_copy` of every segment in `segments`: Xen's result (each segment's `status` is its
/// own answer).
pub fn copy(segments: &mut [gnttab_copy]) -> i64 {
    batch(gt::GNTTABOP_copy, segments)
}

pub use crate::shared_page::SharedPage;

/// A ring of `xen/include/public/io/ring.h` on a [`SharedPage`]: the 64-byte header (its four
/// indices as atomics), then [`size`](Self::size) entries of `entry_size` bytes. Drive it with
/// `xenolith_abi::ring::FrontRing` or `BackRing`, which call the barriers here where `ring.h`
/// has them.
#[derive(Debug)]
pub struct SharedRing {
    page: SharedPage,
    entry_size: usize,
    /// Its entries ([`ring_size`]), worked out once: every entry's offset checks against it.
    slots: u32,
}

impl SharedRing {
    /// The ring on `page` whose entries (the larger of a request and a response) are
    /// `entry_size` bytes. Panics if no entry fits.
    pub fn new(page: SharedPage, entry_size: usize) -> Self {
        let slots = ring_size(PAGE_SIZE as usize, SRING_HEADER_SIZE, entry_size) as u32;
        assert!(slots > 0, "a ring entry of {entry_size} bytes does not fit in a page");
        Self { page, entry_size, slots }
    }

    /// `RING_SIZE`: the entries the page holds (a power of two).
    pub fn size(&self) -> u32 {
        self.slots
    }

    /// `SHARED_RING_INIT`, done by the front end before it shares the page: the header zeroed,
    /// nothing produced, each side asking for the first notification.
    pub fn init(&mut self) {
        for offset in (0..SRING_HEADER_SIZE).step_by(8) {
            self.page.write_u64(offset, 0);
        }
        shared_ring_init(self);
    }

    #[inline]
    fn slot_offset(&self, slot: usize, size: usize) -> usize {
        assert!(
            slot < self.size() as usize && size <= self.entry_size,
            "ring slot {slot} of {size} bytes is outside a ring of {} {}-byte entries",
            self.size(),
            self.entry_size
        );
        SRING_HEADER_SIZE + slot * self.entry_size
    }

    /// Copies entry `slot` out (a slot `next_request`/`next_response` returned). Panics if
    /// `slot` or `T` does not fit the ring.
    pub fn read<T: FromBytes + IntoBytes>(&self, slot: usize) -> T {
        let start = self.slot_offset(slot, core::mem::size_of::<T>());
        let mut value = T::new_zeroed();
        let bytes = value.as_mut_bytes();
        if start.is_multiple_of(4) && bytes.len().is_multiple_of(4) {
            // Every netif, blkif and console entry: 32-bit words.
            for (index, word) in bytes.chunks_exact_mut(4).enumerate() {
                word.copy_from_slice(&self.page.read_u32(start + 4 * index).to_ne_bytes());
            }
        } else {
            for (index, byte) in bytes.iter_mut().enumerate() {
                *byte = self.page.read_u8(start + index);
            }
        }
        value
    }

    /// Copies `entry` into slot `slot` (a slot `next_request`/`next_response` returned). Panics
    /// if `slot` or `T` does not fit the ring.
    pub fn write<T: IntoBytes + Immutable>(&mut self, slot: usize, entry: &T) {
        let start = self.slot_offset(slot, core::mem::size_of::<T>());
        let bytes = entry.as_bytes();
        if start.is_multiple_of(4) && bytes.len().is_multiple_of(4) {
            for (index, word) in bytes.chunks_exact(4).enumerate() {
                let word = u32::from_ne_bytes([word[0], word[1], word[2], word[3]]);
                self.page.write_u32(start + 4 * index, word);
            }
        } else {
            for (index, &byte) in bytes.iter().enumerate() {
                self.page.write_u8(start + index, byte);
            }
        }
    }

    fn index(&self, offset: usize) -> &AtomicU32 {
        self.page.atomic_u32(offset)
    }
}

/// Offsets of `req_prod`, `req_event`, `rsp_prod`, `rsp_event` in the header.
const REQ_PROD: usize = 0;
const REQ_EVENT: usize = 4;
const RSP_PROD: usize = 8;
const RSP_EVENT: usize = 12;

impl SharedIndices for SharedRing {
    fn req_prod(&self) -> RING_IDX {
        self.index(REQ_PROD).load(Ordering::Relaxed)
    }
    fn set_req_prod(&mut self, v: RING_IDX) {
        self.index(REQ_PROD).store(v, Ordering::Relaxed);
    }
    fn req_event(&self) -> RING_IDX {
        self.index(REQ_EVENT).load(Ordering::Relaxed)
    }
    fn set_req_event(&mut self, v: RING_IDX) {
        self.index(REQ_EVENT).store(v, Ordering::Relaxed);
    }
    fn rsp_prod(&self) -> RING_IDX {
        self.index(RSP_PROD).load(Ordering::Relaxed)
    }
    fn set_rsp_prod(&mut self, v: RING_IDX) {
        self.index(RSP_PROD).store(v, Ordering::Relaxed);
    }
    fn rsp_event(&self) -> RING_IDX {
        self.index(RSP_EVENT).load(Ordering::Relaxed)
    }
    fn set_rsp_event(&mut self, v: RING_IDX) {
        self.index(RSP_EVENT).store(v, Ordering::Relaxed);
    }
    /// `virt_wmb()`: `dmb ish` (the peer runs in the inner-shareable domain).
    fn write_barrier(&self) {
        fence(Ordering::Release);
    }
    /// `virt_rmb()`: `dmb ishld`.
    fn read_barrier(&self) {
        fence(Ordering::Acquire);
    }
    /// `virt_mb()`: `dmb ish`.
    fn full_barrier(&self) {
        fence(Ordering::SeqCst);
    }
}
