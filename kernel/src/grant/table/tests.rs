//! Host tests for grant tables: each error path and flag rule against what Xen 4.17's
//! `grant_table.c` (and Arm's `mm.c`) answer, and a randomized sequence of guest and hypervisor
//! operations against a model; `concurrent_tests` runs such operations on real threads, checked
//! against the same model.

mod concurrent_tests;

use std::collections::BTreeMap;

use xenolith_abi::xen::grant_table::{
    gnttab_copy, GNTMAP_guest_avail_mask, GTF_accept_transfer, GTF_invalid, GTF_transitive, GTF_PWT,
};

use super::*;

const GRANTER: DomainId = 0;
const DOM_A: DomainId = 1;
const DOM_B: DomainId = 2;
const FRAME: u32 = 0x4_0123;

/// A granter's shared entries over plain atomics: two words per entry.
struct Table(Vec<AtomicU32>);

impl Table {
    fn new(len: u32) -> Self {
        Self((0..len * 2).map(|_| AtomicU32::new(0)).collect())
    }

    /// Fills entry `gref` the way a guest must: `domid` and `frame`, then `flags`.
    fn grant(&self, gref: grant_ref_t, domid: DomainId, frame: u32, flags: u16) {
        let (header, frame_word) = self.words(gref).unwrap();
        frame_word.store(frame, Ordering::Relaxed);
        header.store(u32::from(domid) << 16 | u32::from(flags), Ordering::Release);
    }

    fn header(&self, gref: grant_ref_t) -> u32 {
        self.words(gref).unwrap().0.load(Ordering::Acquire)
    }

    fn flags(&self, gref: grant_ref_t) -> u16 {
        self.header(gref) as u16
    }

    /// Linux's `gnttab_end_foreign_access_ref` (v1): clears the flags only if neither
    /// `GTF_reading` nor `GTF_writing` is set; whether it did.
    fn revoke(&self, gref: grant_ref_t) -> bool {
        let header = self.words(gref).unwrap().0;
        let mut seen = header.load(Ordering::Acquire);
        loop {
            if seen as u16 & (GTF_reading | GTF_writing) != 0 {
                return false;
            }
            match header.compare_exchange(seen, seen & !0xFFFF, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return true,
                Err(now) => seen = now,
            }
        }
    }
}

impl Entries for Table {
    fn len(&self) -> u32 {
        (self.0.len() / 2) as u32
    }

    fn words(&self, gref: grant_ref_t) -> Option<(&AtomicU32, &AtomicU32)> {
        let index = gref as usize * 2;
        Some((self.0.get(index)?, self.0.get(index + 1)?))
    }

    fn owner(&self) -> DomainId {
        GRANTER
    }
}

/// A table of 8 entries with entry 1 granted to `DOM_A` with `flags`, and its active table.
fn granted(flags: u16) -> (Table, ActiveTable) {
    let table = Table::new(8);
    table.grant(1, DOM_A, FRAME, flags);
    (table, ActiveTable::new(1))
}

/// [`pin`] and [`unpin`] for each [`Usage`], as the core calls them.
fn pin_for_map(
    active: &mut ActiveTable,
    entries: &impl Entries,
    mapper: DomainId,
    gref: grant_ref_t,
    readonly: bool,
) -> Result<u32, i16> {
    pin(active, entries, mapper, gref, readonly, Usage::Map)
}

fn pin_for_copy(
    active: &mut ActiveTable,
    entries: &impl Entries,
    requester: DomainId,
    gref: grant_ref_t,
    readonly: bool,
) -> Result<u32, i16> {
    pin(active, entries, requester, gref, readonly, Usage::Copy)
}

fn unpin_map(
    active: &mut ActiveTable,
    entries: &impl Entries,
    gref: grant_ref_t,
    readonly: bool,
) -> Result<(), i16> {
    unpin(active, entries, gref, readonly, Usage::Map)
}

fn unpin_copy(
    active: &mut ActiveTable,
    entries: &impl Entries,
    gref: grant_ref_t,
    readonly: bool,
) -> Result<(), i16> {
    unpin(active, entries, gref, readonly, Usage::Copy)
}

const RW: u16 = GTF_permit_access;
const RO: u16 = GTF_permit_access | GTF_readonly;

#[test]
fn map_sets_reading_and_writing_and_returns_the_frame() {
    let (table, mut active) = granted(RW);
    assert_eq!(pin_for_map(&mut active, &table, DOM_A, 1, true), Ok(FRAME));
    assert_eq!(table.flags(1), RW | GTF_reading);
    assert_eq!(pin_for_map(&mut active, &table, DOM_A, 1, false), Ok(FRAME));
    assert_eq!(table.flags(1), RW | GTF_reading | GTF_writing);
    assert_eq!(table.header(1) >> 16, u32::from(DOM_A), "domid untouched");
    let pins = active.pinned.get(&1).unwrap();
    assert_eq!((pins.domid, pins.frame), (DOM_A, FRAME));
    assert_eq!((pins.map_read, pins.map_write), (1, 1));
    assert_eq!((pins.copy_read, pins.copy_write), (0, 0));
    assert_eq!(active.pinned.len(), 1);
}

#[test]
fn gref_out_of_range_is_bad_gntref() {
    let (table, mut active) = granted(RW);
    for gref in [8, 9, u32::MAX] {
        assert_eq!(pin_for_map(&mut active, &table, DOM_A, gref, true), Err(GNTST_bad_gntref));
        assert_eq!(pin_for_copy(&mut active, &table, DOM_A, gref, true), Err(GNTST_bad_gntref));
    }
    // The table's own bound wins over a longer shared table.
    let long = Table::new(ENTRIES_PER_FRAME + 1);
    long.grant(ENTRIES_PER_FRAME, DOM_A, FRAME, RW);
    let result = pin_for_map(&mut active, &long, DOM_A, ENTRIES_PER_FRAME, true);
    assert_eq!(result, Err(GNTST_bad_gntref));
    assert_eq!(active.max_entries, ENTRIES_PER_FRAME);
    assert!(active.pinned.is_empty());
}

/// Each entry a first pin must refuse, for a map and for a copy, leaving the entry as it was.
#[test]
fn entries_that_do_not_permit_are_general_error() {
    let refused: [(u16, DomainId, &str); 5] = [
        (GTF_invalid, DOM_A, "GTF_invalid"),
        (GTF_accept_transfer, DOM_A, "GTF_accept_transfer"),
        (GTF_transitive, DOM_A, "GTF_transitive"),
        (RW, DOM_B, "granted to another domain"),
        (GTF_invalid | GTF_readonly, DOM_A, "GTF_invalid with subflags"),
    ];
    for (flags, domid, what) in refused {
        let table = Table::new(8);
        table.grant(1, domid, FRAME, flags);
        let mut active = ActiveTable::new(1);
        let before = table.header(1);
        for readonly in [true, false] {
            let map = pin_for_map(&mut active, &table, DOM_A, 1, readonly);
            assert_eq!(map, Err(GNTST_general_error), "map, {what}");
            let copy = pin_for_copy(&mut active, &table, DOM_A, 1, readonly);
            assert_eq!(copy, Err(GNTST_general_error), "copy, {what}");
        }
        assert_eq!(table.header(1), before, "{what}");
        assert!(active.pinned.is_empty());
    }
}

#[test]
fn sub_page_refuses_maps_but_not_copies() {
    let (table, mut active) = granted(RW | GTF_sub_page);
    assert_eq!(pin_for_map(&mut active, &table, DOM_A, 1, true), Err(GNTST_general_error));
    assert_eq!(table.flags(1), RW | GTF_sub_page);
    assert_eq!(pin_for_copy(&mut active, &table, DOM_A, 1, true), Ok(FRAME));
    assert_eq!(table.flags(1), RW | GTF_sub_page | GTF_reading);
}

#[test]
fn readonly_grant_refuses_writable_use() {
    let (table, mut active) = granted(RO);
    assert_eq!(pin_for_map(&mut active, &table, DOM_A, 1, false), Err(GNTST_general_error));
    assert_eq!(pin_for_copy(&mut active, &table, DOM_A, 1, false), Err(GNTST_general_error));
    assert_eq!(table.flags(1), RO);
    assert_eq!(pin_for_map(&mut active, &table, DOM_A, 1, true), Ok(FRAME));
    // A first write pin on a read-pinned grant still checks GTF_readonly, and keeps the read.
    assert_eq!(pin_for_map(&mut active, &table, DOM_A, 1, false), Err(GNTST_general_error));
    assert_eq!(table.flags(1), RO | GTF_reading);
    assert_eq!(active.pinned.get(&1).unwrap().map_write, 0);
}

#[test]
fn pinned_for_one_domain_refuses_another() {
    let (table, mut active) = granted(RW);
    pin_for_map(&mut active, &table, DOM_A, 1, true).unwrap();
    // Even if the granter rewrites the entry for DOM_B: the pin is DOM_A's (:1068).
    table.grant(1, DOM_B, FRAME + 1, RW | GTF_reading);
    for readonly in [true, false] {
        let map = pin_for_map(&mut active, &table, DOM_B, 1, readonly);
        assert_eq!(map, Err(GNTST_general_error));
        let copy = pin_for_copy(&mut active, &table, DOM_B, 1, readonly);
        assert_eq!(copy, Err(GNTST_general_error));
    }
    assert_eq!(table.flags(1), RW | GTF_reading);
}

/// Later pins do not look at the entry, except a first write pin at `GTF_readonly`.
#[test]
fn later_pins_keep_the_first_pins_frame_and_domain() {
    let (table, mut active) = granted(RW);
    pin_for_map(&mut active, &table, DOM_A, 1, true).unwrap();
    table.grant(1, DOM_B, FRAME + 1, GTF_invalid);
    assert_eq!(pin_for_map(&mut active, &table, DOM_A, 1, true), Ok(FRAME));
    assert_eq!(pin_for_map(&mut active, &table, DOM_A, 1, false), Ok(FRAME));
    assert_eq!(table.flags(1), GTF_reading | GTF_writing);
    assert_eq!(table.header(1) >> 16, u32::from(DOM_B));
}

#[test]
fn unpin_clears_writing_then_reading() {
    let (table, mut active) = granted(RW);
    for readonly in [false, false, true] {
        pin_for_map(&mut active, &table, DOM_A, 1, readonly).unwrap();
    }
    let both = RW | GTF_reading | GTF_writing;
    unpin_map(&mut active, &table, 1, false).unwrap();
    assert_eq!(table.flags(1), both, "one write pin left");
    unpin_map(&mut active, &table, 1, true).unwrap();
    assert_eq!(table.flags(1), both, "a read-only unmap never clears GTF_writing");
    unpin_map(&mut active, &table, 1, false).unwrap();
    assert_eq!(table.flags(1), RW, "last pin");
    assert!(!active.pinned.contains_key(&1));
    assert!(table.revoke(1));

    let (table, mut active) = granted(RW);
    pin_for_map(&mut active, &table, DOM_A, 1, false).unwrap();
    pin_for_map(&mut active, &table, DOM_A, 1, true).unwrap();
    unpin_map(&mut active, &table, 1, false).unwrap();
    assert_eq!(table.flags(1), RW | GTF_reading, "last write pin");
    assert!(!table.revoke(1));
    unpin_map(&mut active, &table, 1, true).unwrap();
    assert_eq!(table.flags(1), RW);
    // A pin after the last one went reads the entry afresh.
    table.grant(1, DOM_B, FRAME + 1, RW);
    assert_eq!(pin_for_map(&mut active, &table, DOM_B, 1, true), Ok(FRAME + 1));
}

#[test]
fn unpin_without_that_pin_changes_nothing() {
    let (table, mut active) = granted(RW);
    assert_eq!(unpin_map(&mut active, &table, 1, true), Err(GNTST_general_error));
    pin_for_map(&mut active, &table, DOM_A, 1, true).unwrap();
    let before = *active.pinned.get(&1).unwrap();
    assert_eq!(unpin_map(&mut active, &table, 1, false), Err(GNTST_general_error));
    assert_eq!(unpin_copy(&mut active, &table, 1, true), Err(GNTST_general_error));
    assert_eq!(unpin_map(&mut active, &table, 2, true), Err(GNTST_general_error));
    assert_eq!(active.pinned.get(&1), Some(&before));
    assert_eq!(table.flags(1), RW | GTF_reading);
}

#[test]
fn pin_counts_stop_at_the_limit_for_maps_and_copies_together() {
    let (table, mut active) = granted(RW);
    for _ in 0..PIN_LIMIT - 1 {
        pin_for_map(&mut active, &table, DOM_A, 1, true).unwrap();
    }
    pin_for_copy(&mut active, &table, DOM_A, 1, true).unwrap();
    assert_eq!(pin_for_map(&mut active, &table, DOM_A, 1, true), Err(GNTST_general_error));
    assert_eq!(pin_for_copy(&mut active, &table, DOM_A, 1, true), Err(GNTST_general_error));
    assert_eq!(pin_for_map(&mut active, &table, DOM_A, 1, false), Ok(FRAME), "writes count apart");
    unpin_copy(&mut active, &table, 1, true).unwrap();
    assert_eq!(pin_for_map(&mut active, &table, DOM_A, 1, true), Ok(FRAME));
    assert_eq!(active.pinned.get(&1).unwrap().map_read, PIN_LIMIT);
}

#[test]
fn copy_pins_follow_the_same_flag_rules() {
    let (table, mut active) = granted(RW);
    // Source (read-only) and destination (writable) on one grant, as a copy within it.
    assert_eq!(pin_for_copy(&mut active, &table, DOM_A, 1, true), Ok(FRAME));
    assert_eq!(pin_for_copy(&mut active, &table, DOM_A, 1, false), Ok(FRAME));
    assert_eq!(table.flags(1), RW | GTF_reading | GTF_writing);
    let pins = active.pinned.get(&1).unwrap();
    assert_eq!((pins.copy_read, pins.copy_write, pins.map_read), (1, 1, 0));
    unpin_copy(&mut active, &table, 1, false).unwrap();
    assert_eq!(table.flags(1), RW | GTF_reading);
    unpin_copy(&mut active, &table, 1, true).unwrap();
    assert_eq!(table.flags(1), RW);
    assert!(active.pinned.is_empty());
}

/// A first write pin for a copy re-reads the frame and refuses a changed one (:2801); a map
/// does not (:1087).
#[test]
fn copy_write_pin_refuses_a_changed_frame() {
    let (table, mut active) = granted(RW);
    pin_for_copy(&mut active, &table, DOM_A, 1, true).unwrap();
    table.words(1).unwrap().1.store(FRAME + 1, Ordering::Relaxed);
    assert_eq!(pin_for_copy(&mut active, &table, DOM_A, 1, false), Err(GNTST_general_error));
    assert_eq!(table.flags(1), RW | GTF_reading, "GTF_writing it set is cleared again");
    assert_eq!(active.pinned.get(&1).unwrap().copy_write, 0);
    assert_eq!(pin_for_map(&mut active, &table, DOM_A, 1, false), Ok(FRAME));
}

#[test]
fn unstable_entry_fails_after_five_attempts() {
    let table = Table::new(2);
    table.grant(0, DOM_A, FRAME, RW);
    let header = table.words(0).unwrap().0;
    // The guest toggles GTF_PWT before every attempt: each compare-exchange fails.
    let toggle = || {
        header.fetch_xor(u32::from(GTF_PWT), Ordering::Relaxed);
    };
    let mut attempts = 0;
    let result = set_status_v1(header, false, DOM_A, false, Usage::Map, || {
        attempts += 1;
        toggle();
    });
    assert_eq!((result, attempts), (Err(GNTST_general_error), SET_STATUS_ATTEMPTS));
    assert_eq!(table.flags(0) & (GTF_reading | GTF_writing), 0);
    // Four changes, then quiet: the fifth attempt succeeds.
    let mut attempts = 0;
    let result = set_status_v1(header, false, DOM_A, false, Usage::Map, || {
        attempts += 1;
        if attempts < SET_STATUS_ATTEMPTS {
            toggle();
        }
    });
    assert_eq!((result, attempts), (Ok(()), SET_STATUS_ATTEMPTS));
    assert_eq!(table.flags(0) & (GTF_reading | GTF_writing), GTF_reading | GTF_writing);
}

#[test]
fn every_retry_checks_the_entry_again() {
    let table = Table::new(2);
    table.grant(0, DOM_A, FRAME, RW);
    let header = table.words(0).unwrap().0;
    // The granter makes the grant read-only under our first attempt.
    let mut first = true;
    let result = set_status_v1(header, false, DOM_A, false, Usage::Map, || {
        if core::mem::take(&mut first) {
            header.fetch_or(u32::from(GTF_readonly), Ordering::Relaxed);
        }
    });
    assert_eq!(result, Err(GNTST_general_error));
    assert_eq!(table.flags(0), RO);
}

#[test]
fn map_flags_in_xens_order() {
    assert_eq!(check_map_flags(0), Err(GNTST_bad_gntref));
    assert_eq!(check_map_flags(GNTMAP_readonly), Err(GNTST_bad_gntref));
    assert_eq!(check_map_flags(GNTMAP_contains_pte), Err(GNTST_bad_gntref), "no pin asked for");
    for flags in [
        GNTMAP_device_map,
        GNTMAP_host_map | GNTMAP_device_map,
        GNTMAP_host_map | GNTMAP_application_map,
        GNTMAP_host_map | GNTMAP_contains_pte | GNTMAP_readonly,
    ] {
        assert_eq!(check_map_flags(flags), Err(GNTST_general_error), "{flags:#x}");
    }
    assert_eq!(check_map_flags(GNTMAP_host_map), Ok(false));
    assert_eq!(check_map_flags(GNTMAP_host_map | GNTMAP_readonly), Ok(true));
    // Unknown bits pass the first checks and fail at the host mapping, after the pin.
    let avail = GNTMAP_host_map | GNTMAP_guest_avail_mask;
    assert_eq!(check_map_flags(avail), Ok(false));
    assert_eq!(check_host_mapping(avail), Err(GNTST_general_error));
    assert_eq!(check_host_mapping(GNTMAP_host_map | 1 << 5), Err(GNTST_general_error));
    assert_eq!(check_host_mapping(GNTMAP_host_map), Ok(()));
    assert_eq!(check_host_mapping(GNTMAP_host_map | GNTMAP_readonly), Ok(()));
}

#[test]
fn host_addresses_and_unmap_addresses() {
    assert_eq!(host_page(0x8000_1234), 0x8000_1000);
    assert_eq!(host_page(0x8000_1000), 0x8000_1000);
    let mapping = mapping_at(1, false, 0x8000_1000, 1);
    assert_eq!(check_unmap(&mapping, 0), Ok(false), "0: nothing to unmap, okay");
    assert_eq!(check_unmap(&mapping, 0x8000_1000), Ok(true));
    assert_eq!(check_unmap(&mapping, 0x8000_1FFF), Ok(true));
    assert_eq!(check_unmap(&mapping, 0x8000_2000), Err(GNTST_general_error));
}

#[test]
fn copy_ends_and_bounds() {
    assert_eq!(check_copy_end(DOMID_SELF, false), Ok(()));
    assert_eq!(check_copy_end(DOMID_SELF, true), Ok(()));
    assert_eq!(check_copy_end(DOM_A, true), Ok(()));
    assert_eq!(check_copy_end(DOM_A, false), Err(GNTST_permission_denied));
    let mut op = gnttab_copy { len: 4096, ..Default::default() };
    assert_eq!(check_copy_bounds(&op), Ok(()));
    op.len = 1;
    op.source.offset = 4095;
    assert_eq!(check_copy_bounds(&op), Ok(()));
    op.len = 2;
    assert_eq!(check_copy_bounds(&op), Err(GNTST_bad_copy_arg));
    op.source.offset = 0;
    op.dest.offset = 4095;
    assert_eq!(check_copy_bounds(&op), Err(GNTST_bad_copy_arg));
    op = gnttab_copy { len: 0, ..Default::default() };
    op.dest.offset = 4096;
    assert_eq!(check_copy_bounds(&op), Ok(()), "an empty copy at the page's end");
    op.len = u16::MAX;
    op.dest.offset = u16::MAX;
    assert_eq!(check_copy_bounds(&op), Err(GNTST_bad_copy_arg), "no overflow");
}

/// A mapping of `gref` of [`GRANTER`] at `host_addr`, of its frame `frame`.
fn mapping_at(gref: grant_ref_t, readonly: bool, host_addr: u64, frame: u32) -> Mapping {
    Mapping { granter: GRANTER, gref, readonly, host_addr, frame, phys: 0, generation: 0 }
}

fn mapping(gref: grant_ref_t) -> Mapping {
    mapping_at(gref, true, 0x9000_0000, FRAME)
}

#[test]
fn maptrack_takes_the_lowest_free_handle() {
    let mut track = MapTrack::default();
    assert!(track.slots.is_empty());
    assert_eq!(track.free_handle(), Ok(0));
    for gref in 0..4 {
        assert_eq!(track.insert(mapping(gref)), Ok(gref));
    }
    assert_eq!(track.remove(1).map(|m| m.gref), Ok(1));
    assert_eq!(track.free_handle(), Ok(1));
    assert_eq!(track.insert(mapping(9)), Ok(1));
    assert_eq!(track.find(1).map(|m| m.gref), Ok(9));
    let handles: Vec<_> = track.iter().map(|(handle, m)| (handle, m.gref)).collect();
    assert_eq!(handles, [(0, 0), (1, 9), (2, 2), (3, 3)]);
    assert_eq!(track.iter().count(), 4);
    let unaligned = Mapping { host_addr: 0x9000_0ABC, ..mapping(5) };
    let handle = track.insert(unaligned).unwrap();
    assert_eq!(track.find(handle).unwrap().host_addr, 0x9000_0000);
    for handle in 0..5 {
        track.remove(handle).unwrap();
    }
    assert!(track.slots.is_empty());
}

#[test]
fn maptrack_bad_handles() {
    let mut track = MapTrack::default();
    assert_eq!(track.find(0), Err(GNTST_bad_handle));
    assert_eq!(track.remove(0), Err(GNTST_bad_handle));
    track.insert(mapping(0)).unwrap();
    track.insert(mapping(1)).unwrap();
    track.remove(0).unwrap();
    assert_eq!(track.remove(0), Err(GNTST_bad_handle), "twice");
    assert_eq!(track.find(0), Err(GNTST_bad_handle));
    assert_eq!(track.find(u32::MAX), Err(GNTST_bad_handle));
    assert_eq!(track.find(1).map(|m| m.gref), Ok(1));
}

#[test]
fn maptrack_full_is_no_space() {
    let mut track = MapTrack::default();
    for handle in 0..MAX_MAPTRACK_HANDLES {
        assert_eq!(track.insert(mapping(handle)), Ok(handle));
    }
    assert_eq!(track.free_handle(), Err(GNTST_no_space));
    assert_eq!(track.insert(mapping(0)), Err(GNTST_no_space));
    assert_eq!(track.iter().count(), MAX_MAPTRACK_HANDLES as usize);
    track.remove(7).unwrap();
    assert_eq!(track.insert(mapping(0)), Ok(7));
}

use crate::test_rng::Rng;

/// One outstanding pin in the model: grant, domain, read-only, for a mapping.
type ModelPin = (grant_ref_t, DomainId, bool, bool);

/// The model: the shared words as plain numbers, the outstanding pins as a list, the frame and
/// domain of each pinned grant, and each mapper's mappings.
#[derive(Clone, Default)]
struct Model {
    headers: Vec<u32>,
    frames: Vec<u32>,
    pins: Vec<ModelPin>,
    first: BTreeMap<grant_ref_t, (DomainId, u32)>,
    tracks: [BTreeMap<grant_handle_t, Mapping>; 2],
    /// Grants the guest scribbled over, for which the flag invariants need not hold.
    scribbled: Vec<bool>,
}

impl Model {
    fn pins_of(&self, gref: grant_ref_t) -> impl Iterator<Item = &ModelPin> {
        self.pins.iter().filter(move |pin| pin.0 == gref)
    }

    /// What `pin_for_map`/`pin_for_copy` must answer, applying the change on success.
    fn pin(
        &mut self,
        gref: grant_ref_t,
        domid: DomainId,
        readonly: bool,
        map: bool,
    ) -> Result<u32, i16> {
        if gref as usize >= self.headers.len() {
            return Err(GNTST_bad_gntref);
        }
        let pinned = self.first.get(&gref).copied();
        if let Some((owner, _)) = pinned {
            let same_kind = self.pins_of(gref).filter(|pin| pin.2 == readonly).count();
            if owner != domid || same_kind >= PIN_LIMIT as usize {
                return Err(GNTST_general_error);
            }
        }
        let write_pinned = self.pins_of(gref).any(|pin| !pin.2);
        if pinned.is_none() || (!readonly && !write_pinned) {
            let header = self.headers[gref as usize];
            let (flags, entry_domid) = (header as u16, (header >> 16) as DomainId);
            if pinned.is_none() {
                let sub_page = map && flags & GTF_sub_page != 0;
                if flags & GTF_type_mask != GTF_permit_access || sub_page || entry_domid != domid {
                    return Err(GNTST_general_error);
                }
            }
            if !readonly && flags & GTF_readonly != 0 {
                return Err(GNTST_general_error);
            }
            let frame = self.frames[gref as usize];
            if let Some((_, first_frame)) = pinned {
                if !map && frame != first_frame {
                    return Err(GNTST_general_error);
                }
            }
            let set = if readonly { GTF_reading } else { GTF_reading | GTF_writing };
            self.headers[gref as usize] |= u32::from(set);
            self.first.entry(gref).or_insert((domid, frame));
        }
        self.pins.push((gref, domid, readonly, map));
        Ok(self.first[&gref].1)
    }

    fn unpin(&mut self, gref: grant_ref_t, readonly: bool, map: bool) {
        let index = self.pins.iter().position(|pin| (pin.0, pin.2, pin.3) == (gref, readonly, map));
        self.pins.remove(index.expect("model pin"));
        let mut clear = 0;
        if self.pins_of(gref).next().is_none() {
            clear |= GTF_reading;
            self.first.remove(&gref);
        }
        if !readonly && !self.pins_of(gref).any(|pin| !pin.2) {
            clear |= GTF_writing;
        }
        self.headers[gref as usize] &= !u32::from(clear);
    }

    /// Compares everything with the real tables and checks the flag invariants.
    fn check(&self, table: &Table, active: &ActiveTable, tracks: &[MapTrack; 2]) {
        for gref in 0..table.len() {
            let index = gref as usize;
            assert_eq!(table.header(gref), self.headers[index], "gref {gref} header");
            let real = active.pinned.get(&gref);
            let count = |readonly, map| {
                self.pins_of(gref).filter(|pin| (pin.2, pin.3) == (readonly, map)).count() as u32
            };
            match self.first.get(&gref) {
                None => assert!(real.is_none(), "gref {gref} pinned"),
                Some(&(domid, frame)) => {
                    let real = real.expect("model pinned");
                    assert_eq!((real.domid, real.frame), (domid, frame));
                    assert_eq!(real.map_read, count(true, true));
                    assert_eq!(real.map_write, count(false, true));
                    assert_eq!(real.copy_read, count(true, false));
                    assert_eq!(real.copy_write, count(false, false));
                }
            }
            if !self.scribbled[index] {
                let flags = table.flags(gref);
                assert_eq!(flags & GTF_reading != 0, real.is_some(), "gref {gref} reading");
                let writers = self.pins_of(gref).any(|pin| !pin.2);
                assert_eq!(flags & GTF_writing != 0, writers, "gref {gref} writing");
            }
        }
        for (model, real) in self.tracks.iter().zip(tracks) {
            let real: BTreeMap<_, _> = real.iter().map(|(handle, m)| (handle, *m)).collect();
            assert_eq!(&real, model);
        }
        // Every live mapping holds one map pin of its kind, and nothing else does.
        let mut mapped: Vec<_> = self
            .tracks
            .iter()
            .enumerate()
            .flat_map(|(i, track)| {
                track.values().map(move |m| (m.gref, i as DomainId + 1, m.readonly, true))
            })
            .collect();
        let mut map_pins: Vec<_> = self.pins.iter().copied().filter(|pin| pin.3).collect();
        mapped.sort_unstable();
        map_pins.sort_unstable();
        assert_eq!(mapped, map_pins);
    }
}

#[test]
fn randomized_sequence_matches_the_model() {
    const LEN: u32 = 12;
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let table = Table::new(LEN);
    let mut active = ActiveTable::new(1);
    let mut tracks = [MapTrack::default(), MapTrack::default()];
    let mut model = Model {
        headers: vec![0; LEN as usize],
        frames: vec![0; LEN as usize],
        scribbled: vec![false; LEN as usize],
        ..Model::default()
    };
    let mut copies: Vec<(grant_ref_t, bool)> = Vec::new();
    // Successful maps, refused maps, successful revokes, refused revokes.
    let mut seen = [0usize; 4];
    for _ in 0..20_000 {
        let gref = rng.below(u64::from(LEN) + 2);
        let mapper = rng.below(2) as usize;
        let domid = mapper as DomainId + 1;
        let readonly = rng.coin();
        match rng.below(12) {
            // The granter: grant an unused entry, to one of the mappers or a third domain.
            0 | 1
                if gref < LEN
                    && table.flags(gref) & (GTF_type_mask | GTF_reading | GTF_writing) == 0 =>
            {
                let to = rng.below(3) as DomainId + 1;
                let mut flags = if readonly { RO } else { RW };
                if rng.below(8) == 0 {
                    flags = [GTF_accept_transfer, RW | GTF_sub_page][rng.below(2) as usize];
                }
                let frame = rng.below(1 << 20);
                table.grant(gref, to, frame, flags);
                model.headers[gref as usize] = u32::from(to) << 16 | u32::from(flags);
                model.frames[gref as usize] = frame;
            }
            // The granter: revoke as Linux does; never while a mapping is live.
            2 if gref < LEN => {
                let revoked = table.revoke(gref);
                let header = &mut model.headers[gref as usize];
                assert_eq!(revoked, *header as u16 & (GTF_reading | GTF_writing) == 0);
                if revoked {
                    *header &= !0xFFFF;
                    if !model.scribbled[gref as usize] {
                        assert!(model.pins_of(gref).next().is_none(), "revoked while in use");
                    }
                }
                seen[2 + usize::from(!revoked)] += 1;
            }
            // A misbehaving granter changes the frame of an entry in use, or (rarely) rewrites
            // the entry at random, flags included.
            3 if gref < LEN => {
                let frame = rng.below(1 << 20);
                table.words(gref).unwrap().1.store(frame, Ordering::Relaxed);
                model.frames[gref as usize] = frame;
                if rng.below(20) == 0 {
                    let (domid, flags) = (rng.below(3) as DomainId + 1, rng.below(0x200) as u16);
                    table.grant(gref, domid, frame, flags);
                    model.headers[gref as usize] = table.header(gref);
                    model.scribbled[gref as usize] = true;
                }
            }
            // A mapper maps, the way the core will; sometimes the frame fails to translate.
            4..=6 => {
                let expected = match model.tracks[mapper].len() < MAX_MAPTRACK_HANDLES as usize {
                    true => model.pin(gref, domid, readonly, true),
                    false => Err(GNTST_no_space),
                };
                let got = tracks[mapper]
                    .free_handle()
                    .and_then(|_| pin_for_map(&mut active, &table, domid, gref, readonly));
                assert_eq!(got, expected, "map gref {gref} by {domid} readonly {readonly}");
                seen[usize::from(got.is_err())] += 1;
                if let Ok(frame) = got {
                    if rng.below(10) == 0 {
                        unpin_map(&mut active, &table, gref, readonly).unwrap();
                        model.unpin(gref, readonly, true);
                    } else {
                        let host_addr = 0x1_0000_0000 + u64::from(rng.below(1 << 16)) * 4096;
                        let mapping = mapping_at(gref, readonly, host_addr, frame);
                        let handle = tracks[mapper].insert(mapping).unwrap();
                        let lowest = (0..).find(|h| !model.tracks[mapper].contains_key(h));
                        assert_eq!(Some(handle), lowest);
                        model.tracks[mapper].insert(handle, mapping);
                    }
                }
            }
            // A mapper unmaps a handle, live or not.
            7 | 8 => {
                let handle = rng.below(8);
                let got = tracks[mapper].remove(handle);
                let expected = model.tracks[mapper].remove(&handle).ok_or(GNTST_bad_handle);
                assert_eq!(got, expected);
                if let Ok(mapping) = got {
                    unpin_map(&mut active, &table, mapping.gref, mapping.readonly).unwrap();
                    model.unpin(mapping.gref, mapping.readonly, true);
                }
            }
            // A copy pins a grant, often one the copier has mapped; it is released a few
            // steps later.
            9 => {
                let mapped: Vec<_> = model.tracks[mapper].values().map(|m| m.gref).collect();
                let gref = match mapped.is_empty() || rng.coin() {
                    true => gref,
                    false => mapped[rng.below(mapped.len() as u64) as usize],
                };
                let expected = model.pin(gref, domid, readonly, false);
                assert_eq!(pin_for_copy(&mut active, &table, domid, gref, readonly), expected);
                if expected.is_ok() {
                    copies.push((gref, readonly));
                }
            }
            10 if !copies.is_empty() => {
                let (gref, readonly) = copies.swap_remove(rng.below(copies.len() as u64) as usize);
                unpin_copy(&mut active, &table, gref, readonly).unwrap();
                model.unpin(gref, readonly, false);
            }
            // A mapper dies: everything it mapped is unmapped.
            11 if rng.below(20) == 0 => {
                let handles: Vec<_> = tracks[mapper].iter().map(|(handle, _)| handle).collect();
                for handle in handles {
                    let mapping = tracks[mapper].remove(handle).unwrap();
                    unpin_map(&mut active, &table, mapping.gref, mapping.readonly).unwrap();
                    model.unpin(mapping.gref, mapping.readonly, true);
                }
                model.tracks[mapper].clear();
                assert!(tracks[mapper].slots.is_empty());
            }
            _ => {}
        }
        model.check(&table, &active, &tracks);
    }
    assert!(seen.iter().all(|&count| count > 200), "coverage: {seen:?}");
}

/// The pinned-grant map answers as a B-tree map would over a long random run of inserts,
/// updates and removals (clustered and spread references, through several growths).
#[test]
fn pin_map_matches_a_btree_map() {
    let mut map = PinMap::default();
    let mut model = BTreeMap::new();
    let mut seed = 0x2545_F491_4F6C_DD1Du64;
    for step in 0..20_000u32 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let gref = if seed.is_multiple_of(3) {
            (seed >> 8) as u32 % 16_384
        } else {
            (seed >> 8) as u32 % 96
        };
        let active = Active { frame: step, ..Active::default() };
        if (seed >> 40) % 5 < 3 {
            map.insert(gref, active);
            model.insert(gref, active);
        } else {
            map.remove(&gref);
            model.remove(&gref);
        }
        assert_eq!(map.get(&gref), model.get(&gref), "step {step}, ref {gref}");
        assert_eq!(map.len(), model.len());
    }
    for gref in 0..16_384 {
        assert_eq!(map.get(&gref), model.get(&gref), "ref {gref}");
    }
}
