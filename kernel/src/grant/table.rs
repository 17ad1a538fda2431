//! Grant tables, version 1: the checks and bookkeeping by which one domain (the granter) lets
//! another (the mapper) map or copy one of its frames, with Xen 4.17's semantics
//! (`xen/common/grant_table.c`, `xen/include/public/grant_table.h`, and for Arm
//! `xen/arch/arm/mm.c`). Line numbers below are grant_table.c's at `RELEASE-4.17.7`.
//!
//! This is the pure half. The granter's shared entries lie in frames it may write at any time;
//! [`Entries`] hands us their words as atomics, and every change the hypervisor makes to a flags
//! word is a compare-exchange that re-checks the entry (setting `GTF_reading`/`GTF_writing`,
//! `_set_status_v1`, :750) or an atomic and (clearing them, `gnttab_clear_flags`). Our own state
//! is an [`ActiveTable`] per granter (Xen's `struct active_grant_entry` array: who has each grant
//! pinned, how often, and which frame) and a [`MapTrack`] per mapper (handle → mapping). The
//! core calls in under its domain lock, which replaces Xen's grant-table and active-entry locks;
//! functions take exactly the pieces they touch, so the caller can lock the two domains.
//!
//! `GNTTABOP_map_grant_ref` (`map_grant_ref`, :987), in Xen's order:
//! 1. [`check_map_flags`] (:1013, :1020);
//! 2. the caller looks up `dom` (`GNTST_bad_domain`) and asks its policy
//!    (`GNTST_permission_denied`, the XSM hook);
//! 3. [`MapTrack::free_handle`] (`GNTST_no_space`, :1045-1051);
//! 4. [`pin`] for a [`Usage::Map`] (:1057-1110);
//! 5. the caller translates the frame (`get_paged_frame`, :505: `GNTST_bad_page`, or
//!    `GNTST_eagain`), calls [`check_host_mapping`] and maps it into its stage-2 tables
//!    (`GNTST_general_error` on failure, mm.c:1586); on any failure it calls [`unpin`], as
//!    Xen's `undo_out` does (:1313-1345);
//! 6. [`MapTrack::insert`].
//!
//! `GNTTABOP_unmap_grant_ref` (`unmap_common`, :1385): [`MapTrack::find`] (`GNTST_bad_handle`),
//! [`check_unmap`], unmap and flush the stage-2 entry, [`MapTrack::remove`], then [`unpin`]
//! (`unmap_common_complete`, :1578). A dying mapper's mappings are all undone the same way
//! (`gnttab_release_mappings`, :3819), [`MapTrack::iter`] lists them.
//!
//! `GNTTABOP_copy` (`gnttab_copy_one`, :3063): [`check_copy_end`] and the domain lookup for the
//! source, then the same for the destination (`gnttab_copy_lock_domains`, :2909); then
//! [`pin`] ([`Usage::Copy`]) of a source grant (read-only) and a destination grant (writable), each
//! followed by the caller's translation (`gnttab_copy_claim_buf`, :2961); then
//! [`check_copy_bounds`] (`gnttab_copy_buf`, :3028); the copy; and [`unpin`] of each pinned
//! end (`release_grant_for_copy`, :2502), also when a later step failed.
//!
//! Differences from Xen: no version 2, no transitive or sub-page grants, no device (IOMMU)
//! mappings, which every Arm guest is refused anyway (`paging_mode_external` is 1 on Arm).
//! Handles are the lowest free number rather than taken from per-vCPU free lists. Copy pins are
//! counted apart from mapping pins (Xen adds both to `GNTPIN_hst*`), but limited and tested
//! together as Xen does. [`check_unmap`] wants the mapping's own address where Xen accepts any
//! address that does not hold another RAM frame (`p2m_remove_mapping`, p2m.c:1479).
//!
//! # Invariants
//! - An [`Active`] exists for a grant exactly while it has a pin; all pins of one grant are for
//!   one domain, and each of its read and write counts stays at most [`PIN_LIMIT`].
//! - The first pin of a grant saw its entry say `GTF_permit_access` for that domain (without
//!   `GTF_sub_page` for a mapping), and every write pin that found no other write pin saw
//!   `GTF_readonly` clear; both were seen by the compare-exchange that set `GTF_reading` (and
//!   `GTF_writing`). So unless the granter writes those bits itself, `GTF_reading` is set while
//!   the grant has a pin and `GTF_writing` while it has a write pin: a granter that revokes only
//!   when both are clear (as the header tells it to) never revokes a grant in use.
//! - The frame of an [`Active`] is read once, at the first pin, and never changes while pinned.
//! - A [`MapTrack`] holds at most [`MAX_MAPTRACK_HANDLES`] mappings, each at a page-aligned
//!   address.
//! - A failing operation changes nothing, neither our tables nor the shared entry.

#[cfg(test)]
mod tests;

use alloc::vec;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU32, Ordering};

use xenolith_abi::xen::grant_table::{
    gnttab_copy, GNTMAP_application_map, GNTMAP_contains_pte, GNTMAP_device_map, GNTMAP_host_map,
    GNTMAP_readonly, GNTST_bad_copy_arg, GNTST_bad_gntref, GNTST_bad_handle, GNTST_general_error,
    GNTST_no_space, GNTST_permission_denied, GTF_permit_access, GTF_reading, GTF_readonly,
    GTF_sub_page, GTF_type_mask, GTF_writing,
};
pub use xenolith_abi::xen::grant_table::{grant_handle_t, grant_ref_t};
use xenolith_abi::xen::hypercall::{domid_t, DOMID_SELF};

use crate::mm::guest_atomic;
use crate::mm::lpae::PAGE_SIZE;
use crate::policy::DomainId;

/// Version-1 entries per 4 KiB grant frame: 4096 / `sizeof(grant_entry_v1_t)` (8), Xen's
/// `SHGNT_PER_PAGE_V1` (:321).
pub const ENTRIES_PER_FRAME: u32 = 512;

/// Mappings one domain may hold at once. Xen allows `gnttab_max_maptrack_frames` (default 1024,
/// :109) pages of 256 handles; 1024 handles cover a few split drivers' rings and buffers and
/// keep a [`MapTrack`] within 24 KiB.
pub const MAX_MAPTRACK_HANDLES: u32 = 1024;

/// Compare-exchange attempts on a shared flags word before giving up with
/// `GNTST_general_error`, so a guest rewriting its entry cannot livelock us: `_set_status_v1`
/// fails when `retries++ == 4` (:811), after its fifth failed `cmpxchg`.
pub const SET_STATUS_ATTEMPTS: u32 = 5;

/// Pins one grant may hold of one kind (read or write). Xen's counters are 8 bits wide
/// (`GNTPIN_cntr_width`, :361) and a pin is refused once the counter's top bit is set
/// (`GNTPIN_incr2oflow_mask`, :381), that is at 128.
pub const PIN_LIMIT: u32 = 128;

/// A granter's shared version-1 entries (`grant_entry_v1_t`), which the granter writes
/// concurrently with us.
pub trait Entries {
    /// Number of v1 entries the table has now ([`ENTRIES_PER_FRAME`] per frame).
    fn len(&self) -> u32;

    /// Whether the table has no entries.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Entry `gref`'s first word (`flags` in bits 0..16, `domid` in bits 16..32: the
    /// little-endian layout of `grant_entry_v1`) and its `frame` word; `None` beyond
    /// [`Self::len`].
    fn words(&self, gref: grant_ref_t) -> Option<(&AtomicU32, &AtomicU32)>;

    /// The granter: the domain that writes these words.
    fn owner(&self) -> DomainId;
}

/// One pinned grant (`struct active_grant_entry`, :353): the domain it is pinned for, the
/// frame read at the first pin, and the pins by kind (Xen's `GNTPIN_hstr`/`GNTPIN_hstw`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Active {
    domid: DomainId,
    frame: u32,
    map_read: u32,
    map_write: u32,
    copy_read: u32,
    copy_write: u32,
}

impl Active {
    fn read_pins(&self) -> u32 {
        self.map_read + self.copy_read
    }

    fn write_pins(&self) -> u32 {
        self.map_write + self.copy_write
    }

    fn counter(&mut self, usage: Usage, readonly: bool) -> &mut u32 {
        match (usage, readonly) {
            (Usage::Map, true) => &mut self.map_read,
            (Usage::Map, false) => &mut self.map_write,
            (Usage::Copy, true) => &mut self.copy_read,
            (Usage::Copy, false) => &mut self.copy_write,
        }
    }
}

/// What a pin is for: Xen checks a mapping's entry a little more strictly than a copy's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Usage {
    /// A host mapping (`map_grant_ref`).
    Map,
    /// One end of a `GNTTABOP_copy` (`acquire_grant_for_copy`).
    Copy,
}

/// A granter's pinned grants (Xen's `gt->active`). Only pinned grants take memory, so the
/// table is bounded by the granter's entries, at most `max_frames *` [`ENTRIES_PER_FRAME`].
#[derive(Clone, Debug)]
pub struct ActiveTable {
    max_entries: u32,
    pinned: PinMap,
}

/// Pinned grants by reference: open addressing with linear probing and backward-shift deletion
/// (at most half full), so a pin and its unpin touch a slot or two instead of splitting and
/// merging B-tree nodes.
#[derive(Clone, Debug, Default)]
struct PinMap {
    slots: Vec<Option<(grant_ref_t, Active)>>,
    len: usize,
}

impl PinMap {
    fn mask(&self) -> usize {
        self.slots.len().wrapping_sub(1)
    }

    /// Where `gref`'s probe starts (Fibonacci hashing into the power-of-two slots).
    fn home(&self, gref: grant_ref_t) -> usize {
        gref.wrapping_mul(0x9E37_79B1).rotate_left(16) as usize & self.mask()
    }

    fn find(&self, gref: grant_ref_t) -> Option<usize> {
        let mut index = self.home(gref);
        loop {
            match self.slots.get(index)? {
                Some((key, _)) if *key == gref => return Some(index),
                Some(_) => index = (index + 1) & self.mask(),
                None => return None,
            }
        }
    }

    fn get(&self, gref: &grant_ref_t) -> Option<&Active> {
        let index = self.find(*gref)?;
        self.slots[index].as_ref().map(|(_, active)| active)
    }

    fn get_mut(&mut self, gref: &grant_ref_t) -> Option<&mut Active> {
        let index = self.find(*gref)?;
        self.slots[index].as_mut().map(|(_, active)| active)
    }

    fn contains_key(&self, gref: &grant_ref_t) -> bool {
        self.find(*gref).is_some()
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.len
    }

    #[cfg(test)]
    fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn insert(&mut self, gref: grant_ref_t, active: Active) {
        if let Some(index) = self.find(gref) {
            self.slots[index] = Some((gref, active));
            return;
        }
        if (self.len + 1) * 2 > self.slots.len() {
            let grown = vec![None; (self.slots.len() * 2).max(8)];
            let old = core::mem::replace(&mut self.slots, grown);
            self.len = 0;
            for (key, value) in old.into_iter().flatten() {
                self.insert(key, value);
            }
        }
        let mut index = self.home(gref);
        while self.slots[index].is_some() {
            index = (index + 1) & self.mask();
        }
        self.slots[index] = Some((gref, active));
        self.len += 1;
    }

    fn remove(&mut self, gref: &grant_ref_t) {
        let Some(mut hole) = self.find(*gref) else { return };
        self.slots[hole] = None;
        self.len -= 1;
        // Pull back each later entry of the run that may live in the hole (its home is not
        // between the hole and where it sits).
        let mut index = (hole + 1) & self.mask();
        while let Some((key, _)) = self.slots[index] {
            let mask = self.mask();
            if index.wrapping_sub(self.home(key)) & mask >= index.wrapping_sub(hole) & mask {
                self.slots[hole] = self.slots[index].take();
                hole = index;
            }
            index = (index + 1) & mask;
        }
    }
}

impl ActiveTable {
    /// An empty table for a granter with at most `max_frames` grant frames
    /// (`max_grant_frames`). Grants at or beyond `max_frames * 512` are refused even if
    /// [`Entries::len`] says more.
    pub fn new(max_frames: u32) -> Self {
        let max_entries = max_frames.saturating_mul(ENTRIES_PER_FRAME);
        Self { max_entries, pinned: PinMap::default() }
    }

    /// Whether `gref` is pinned (mapped or being copied) by anyone.
    pub fn is_pinned(&self, gref: grant_ref_t) -> bool {
        self.pinned.contains_key(&gref)
    }
}

impl Default for ActiveTable {
    /// An empty table for a granter with [`MAX_GRANT_FRAMES`] frames.
    fn default() -> Self {
        Self::new(MAX_GRANT_FRAMES)
    }
}

/// `_set_status_v1` (:750): atomically sets `GTF_reading`, and `GTF_writing` unless
/// `readonly`, in the entry's first word, having checked in the same compare-exchange that an
/// unpinned entry says `GTF_permit_access` (no `GTF_sub_page` for a mapping, :775) for
/// `requester`, and that a writable use does not meet `GTF_readonly`. Every refusal is
/// `GNTST_general_error` (:792, :803), as is an entry that changed under each of
/// [`SET_STATUS_ATTEMPTS`] attempts (:811). `before_attempt` runs before each
/// compare-exchange (a test hook; the kernel passes a no-op).
fn set_status_v1(
    header: &AtomicU32,
    pinned: bool,
    requester: DomainId,
    readonly: bool,
    usage: Usage,
    mut before_attempt: impl FnMut(),
) -> Result<(), i16> {
    let mask = GTF_type_mask | if usage == Usage::Map { GTF_sub_page } else { 0 };
    let mut seen = header.load(Ordering::Acquire);
    for _ in 0..SET_STATUS_ATTEMPTS {
        let (flags, domid) = (seen as u16, (seen >> 16) as u16);
        if !pinned && (flags & mask != GTF_permit_access || domid != requester) {
            return Err(GNTST_general_error);
        }
        let mut new = flags | GTF_reading;
        if !readonly {
            if flags & GTF_readonly != 0 {
                return Err(GNTST_general_error);
            }
            new |= GTF_writing;
        }
        before_attempt();
        // Acquire on success: the frame word the granter wrote before its flags is visible.
        // Weak: one exclusive-monitor try per attempt without LSE, so a guest hammering the
        // word cannot hold us inside one compare-exchange; a spurious failure is an attempt.
        let new = (seen & !0xFFFF) | u32::from(new);
        match header.compare_exchange_weak(seen, new, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => return Ok(()),
            Err(now) => seen = now,
        }
    }
    Err(GNTST_general_error)
}

/// `reduce_status_for_pin` (:919) after a pin of kind `readonly` went: clears `GTF_reading` if
/// no pin is left, and `GTF_writing` if this was a write pin and no write pin is left, in one
/// update (`gnttab_clear_flags`). Release: our accesses to the frame come before the granter
/// sees the bit clear. Bounded as Xen's `guest_clear_mask16` (XSA-295, [`guest_atomic`]): a
/// granter that keeps the word changing keeps its flags set and is crashed.
fn reduce_status(owner: DomainId, header: &AtomicU32, left: Option<&Active>, readonly: bool) {
    let mut clear = if left.is_some() { 0 } else { GTF_reading };
    if !readonly && left.is_none_or(|active| active.write_pins() == 0) {
        clear |= GTF_writing;
    }
    if clear != 0 {
        guest_atomic::update(owner, header, |v| v & !u32::from(clear));
    }
}

/// Takes one pin of kind `usage`/`readonly` on `gref` of `entries` for `requester` and returns
/// the granter's frame (gfn): for [`Usage::Map`] the pin half of `map_grant_ref` (:1057-1110),
/// for [`Usage::Copy`] the grant half of `acquire_grant_for_copy` (:2569), from the frame
/// (`readonly`, the source) or into it. In order: `GNTST_bad_gntref` for `gref` at or beyond
/// the table's length (:1059); `GNTST_general_error` if the grant is pinned for another domain
/// or this kind of pin is at [`PIN_LIMIT`] (:1068, :2594, :2603); then, for the first pin or
/// the first write pin, `GNTST_general_error` if the entry does not permit `requester` (wrong
/// type, other `domid`, and for a mapping `GTF_sub_page`; only checked for the first pin), if a
/// writable use meets `GTF_readonly`, or if the entry keeps changing (`_set_status_v1`). Later
/// map pins use the frame read at the first one; a copy's first write pin of an already pinned
/// grant re-reads the frame and refuses (`GNTST_general_error`) one that changed (:2801-2812),
/// clearing the `GTF_writing` it set, as Xen does (even one the granter had set itself).
#[inline]
pub fn pin(
    active: &mut ActiveTable,
    entries: &impl Entries,
    requester: DomainId,
    gref: grant_ref_t,
    readonly: bool,
    usage: Usage,
) -> Result<u32, i16> {
    if gref >= entries.len().min(active.max_entries) {
        return Err(GNTST_bad_gntref);
    }
    let (header, frame_word) = entries.words(gref).ok_or(GNTST_bad_gntref)?;
    let current = active.pinned.get(&gref).copied();
    if let Some(pinned) = current {
        let count = if readonly { pinned.read_pins() } else { pinned.write_pins() };
        if pinned.domid != requester || count >= PIN_LIMIT {
            return Err(GNTST_general_error);
        }
    }
    let mut next = current.unwrap_or(Active { domid: requester, ..Active::default() });
    // Only the first pin, or the first write pin, looks at the entry (:1080-1082, :2744-2746).
    if current.is_none_or(|pinned| !readonly && pinned.write_pins() == 0) {
        set_status_v1(header, current.is_some(), requester, readonly, usage, || {})?;
        let frame = frame_word.load(Ordering::Relaxed);
        match current {
            None => next.frame = frame,
            // A copy re-reads the frame and refuses a changed one (:2801-2812); a mapping keeps
            // the frame of the first pin (:1087-1099).
            Some(pinned) if usage == Usage::Copy && pinned.frame != frame => {
                reduce_status(entries.owner(), header, current.as_ref(), readonly);
                return Err(GNTST_general_error);
            }
            Some(_) => {}
        }
    }
    *next.counter(usage, readonly) += 1;
    active.pinned.insert(gref, next);
    Ok(next.frame)
}

/// Drops one pin of kind `usage`/`readonly` from `gref`: after an unmap, a dying mapper's
/// cleanup, a failed step after a map's [`pin`], or a copy (`release_grant_for_copy`, :2502).
/// `GTF_writing` is cleared when the last write pin goes and `GTF_reading` when the last pin
/// goes (`unmap_common_complete`, :1630-1642, and `reduce_status_for_pin`, :919).
/// `GNTST_general_error`, changing nothing, if `gref` holds no such pin: a caller's bug, which
/// Xen `ASSERT`s (:1635).
#[inline]
pub fn unpin(
    active: &mut ActiveTable,
    entries: &impl Entries,
    gref: grant_ref_t,
    readonly: bool,
    usage: Usage,
) -> Result<(), i16> {
    let pinned = active.pinned.get_mut(&gref).ok_or(GNTST_general_error)?;
    let counter = pinned.counter(usage, readonly);
    *counter = counter.checked_sub(1).ok_or(GNTST_general_error)?;
    let left = (pinned.read_pins() + pinned.write_pins() != 0).then_some(*pinned);
    if left.is_none() {
        active.pinned.remove(&gref);
    }
    if let Some((header, _)) = entries.words(gref) {
        reduce_status(entries.owner(), header, left.as_ref(), readonly);
    }
    Ok(())
}

/// The first checks of `map_grant_ref` on its `GNTMAP_*` flags, before the granter is looked
/// up: `GNTST_bad_gntref` if neither `GNTMAP_host_map` nor `GNTMAP_device_map` is asked for
/// (:1013-1018), then `GNTST_general_error` for `GNTMAP_device_map`, `GNTMAP_application_map`
/// or `GNTMAP_contains_pte`, which no Arm guest may use (:1020-1027). Whether the mapping is
/// read-only (`GNTMAP_readonly`).
pub fn check_map_flags(flags: u32) -> Result<bool, i16> {
    if flags & (GNTMAP_host_map | GNTMAP_device_map) == 0 {
        return Err(GNTST_bad_gntref);
    }
    if flags & (GNTMAP_device_map | GNTMAP_application_map | GNTMAP_contains_pte) != 0 {
        return Err(GNTST_general_error);
    }
    Ok(flags & GNTMAP_readonly != 0)
}

/// Arm's `create_grant_host_mapping` (mm.c:1577), checked after the pin: `GNTST_general_error`
/// unless the flags are exactly `GNTMAP_host_map`, optionally with `GNTMAP_readonly` (so any
/// other bit, `GNTMAP_guest_avail_mask` included, fails here, after the grant checks).
pub fn check_host_mapping(flags: u32) -> Result<(), i16> {
    if flags & !GNTMAP_readonly == GNTMAP_host_map {
        Ok(())
    } else {
        Err(GNTST_general_error)
    }
}

/// The page holding guest-physical `host_addr`: Xen on Arm does not check a map's `host_addr`
/// for alignment but maps the page it falls in (`gaddr_to_gfn`, mm.c:1583).
pub fn host_page(host_addr: u64) -> u64 {
    host_addr & !(PAGE_SIZE - 1)
}

/// `unmap_common`'s use of the unmap's `host_addr` (:1495-1505, Arm's
/// `replace_grant_host_mapping`, mm.c:1592): `Ok(false)` for 0, which unmaps nothing, keeps the
/// handle and succeeds; `Ok(true)` for an address in the mapping's page;
/// `GNTST_general_error` for any other.
pub fn check_unmap(mapping: &Mapping, host_addr: u64) -> Result<bool, i16> {
    match host_addr {
        0 => Ok(false),
        address if host_page(address) == mapping.host_addr => Ok(true),
        _ => Err(GNTST_general_error),
    }
}

/// `gnttab_copy_lock_domain` (:2877) for one end of a copy, before its domain is looked up:
/// `GNTST_permission_denied` for a frame (not a grant, `is_gref` false) of a domain other than
/// `DOMID_SELF`.
pub fn check_copy_end(domid: domid_t, is_gref: bool) -> Result<(), i16> {
    if is_gref || domid == DOMID_SELF {
        Ok(())
    } else {
        Err(GNTST_permission_denied)
    }
}

/// `gnttab_copy_buf` (:3034): `GNTST_bad_copy_arg` if either end's `offset + len` passes the end
/// of its page. Xen checks this after both ends are claimed. (Its next checks, against a
/// sub-page grant's window, cannot fail for the whole-page grants of version 1.)
pub fn check_copy_bounds(op: &gnttab_copy) -> Result<(), i16> {
    let len = u64::from(op.len);
    if u64::from(op.source.offset) + len > PAGE_SIZE || u64::from(op.dest.offset) + len > PAGE_SIZE
    {
        return Err(GNTST_bad_copy_arg);
    }
    Ok(())
}

/// One mapping of a grant into the mapper (`struct grant_mapping`, :288, plus what the core
/// needs to undo it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mapping {
    /// The granting domain (`domid`).
    pub granter: DomainId,
    /// The grant in the granter's table (`ref`).
    pub gref: grant_ref_t,
    /// Mapped read-only (`GNTMAP_readonly`).
    pub readonly: bool,
    /// The page-aligned guest-physical address it is mapped at in the mapper.
    pub host_addr: u64,
    /// The granter's frame (gfn) mapped there.
    pub frame: u32,
    /// That frame's physical address.
    pub phys: u64,
    /// The granter's incarnation when it was mapped.
    pub generation: u32,
}

/// A mapper's mappings by handle (Xen's maptrack, :544-719), at most
/// [`MAX_MAPTRACK_HANDLES`]. Starts empty and grows on the heap.
#[derive(Clone, Debug, Default)]
pub struct MapTrack {
    slots: Vec<Option<Mapping>>,
}

impl MapTrack {
    /// The handle the next [`Self::insert`] takes: the lowest free one, or `GNTST_no_space`
    /// when all [`MAX_MAPTRACK_HANDLES`] are taken (`get_maptrack_handle` failing, :1045-1051).
    /// Xen takes the handle before it looks at the grant, so a full maptrack answers first.
    pub fn free_handle(&self) -> Result<grant_handle_t, i16> {
        let index = self.slots.iter().position(Option::is_none).unwrap_or(self.slots.len());
        if index < MAX_MAPTRACK_HANDLES as usize {
            Ok(index as grant_handle_t)
        } else {
            Err(GNTST_no_space)
        }
    }

    /// Records `mapping` (its address rounded down to its page, [`host_page`]) under the
    /// lowest free handle; `GNTST_no_space` if there is none.
    pub fn insert(&mut self, mapping: Mapping) -> Result<grant_handle_t, i16> {
        let handle = self.free_handle()?;
        let mapping = Some(Mapping { host_addr: host_page(mapping.host_addr), ..mapping });
        match self.slots.get_mut(handle as usize) {
            Some(slot) => *slot = mapping,
            None => self.slots.push(mapping),
        }
        Ok(handle)
    }

    /// The mapping under `handle`; `GNTST_bad_handle` for a handle not in use (:1401-1418).
    pub fn find(&self, handle: grant_handle_t) -> Result<&Mapping, i16> {
        self.slots.get(handle as usize).and_then(Option::as_ref).ok_or(GNTST_bad_handle)
    }

    /// Frees `handle`, returning its mapping; `GNTST_bad_handle` for a handle not in use.
    pub fn remove(&mut self, handle: grant_handle_t) -> Result<Mapping, i16> {
        let mapping =
            self.slots.get_mut(handle as usize).and_then(Option::take).ok_or(GNTST_bad_handle)?;
        while let Some(None) = self.slots.last() {
            self.slots.pop();
        }
        Ok(mapping)
    }

    /// Every live mapping with its handle, in handle order.
    pub fn iter(&self) -> impl Iterator<Item = (grant_handle_t, &Mapping)> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(handle, slot)| Some((handle as grant_handle_t, slot.as_ref()?)))
    }
}

/// Grant-table frames one domain may have: Xen's default `max_grant_frames`, which dom0less
/// domUs get (xen/common/grant_table.c). 64 frames are 32,768 version-1 entries.
pub const MAX_GRANT_FRAMES: u32 = 64;

/// One domain's grant-table state; starts empty (frames come with `GNTTABOP_setup_table` or
/// `XENMAPSPACE_grant_table`).
#[derive(Default)]
pub struct GrantState {
    /// Its table's frames (physical addresses, core-owned).
    pub frames: Vec<u64>,
    /// Where the domain mapped each frame (`XENMAPSPACE_grant_table`).
    pub gfns: Vec<Option<u64>>,
    /// Its grants other domains have pinned.
    pub active: ActiveTable,
    /// Other domains' grants it has mapped.
    pub maptrack: MapTrack,
}
