//! `memory_op` probes: every sub-operation number with null, unmapped and zeroed arguments,
//! then each sub-operation a domU uses with valid and bad arguments. Frames given away are the
//! prober's scratch frames ([`crate::runner::Scratch`]), never touched by the guest itself, and
//! are populated again in the same probe.

use alloc::format;
use alloc::string::String;

use xenolith_runtime::events::SHARED_INFO_ADDRESS;
use xenolith_runtime::grants::GRANT_TABLE_ADDRESS;

use crate::runner::{hc2, norm, raw, Cx, Page, Runner, UNMAPPED};
use crate::xen;

fn memop(cmd: u64, arg: u64) -> i64 {
    hc2(xen::HC_memory_op, cmd, arg)
}

/// `xen/include/public/memory.h` `xen_memory_reservation` at offset 0 (extent_start @0,
/// nr_extents @8, extent_order @16, mem_flags @20, domid @24), its extent list at 2048.
fn reservation(
    frames: &[u64],
    nr: u64,
    order: u32,
    flags: u32,
    domid: u16,
) -> alloc::boxed::Box<Page> {
    let mut page = Page::new();
    let list = page.addr() + 2048;
    page.w64(0, list);
    page.w64(8, nr);
    page.w32(16, order);
    page.w32(20, flags);
    page.w16(24, domid);
    for (i, frame) in frames.iter().enumerate() {
        page.w64(2048 + 8 * i, *frame);
    }
    page
}

fn reserve(cmd: u64, frames: &[u64], order: u32, domid: u16) -> i64 {
    let mut page = reservation(frames, frames.len() as u64, order, 0, domid);
    memop(cmd, page.addr())
}

/// `decrease_reservation` then `populate_physmap` of the same frames: both results.
fn give_back(frames: &[u64], order: u32) -> alloc::string::String {
    let down = reserve(xen::XENMEM_decrease_reservation, frames, order, xen::DOMID_SELF);
    let up = reserve(xen::XENMEM_populate_physmap, frames, order, xen::DOMID_SELF);
    format!("{down} pop={up}")
}

/// Populates `frames` again (after an operation that may have taken them).
fn repopulate(frames: &[u64]) -> i64 {
    reserve(xen::XENMEM_populate_physmap, frames, 0, xen::DOMID_SELF)
}

const DOMIDS: [&str; 7] = ["self", "selfid", "peer", "nonexistent", "io", "xen", "invalid"];

/// `xen_add_to_physmap`: domid @0, size @2, space @4, idx @8, gpfn @16.
fn add_to_physmap(domid: u16, space: u32, idx: u64, gpfn: u64, size: u16) -> i64 {
    let mut page = Page::new();
    page.w16(0, domid);
    page.w16(2, size);
    page.w32(4, space);
    page.w64(8, idx);
    page.w64(16, gpfn);
    memop(xen::XENMEM_add_to_physmap, page.addr())
}

/// `xen_remove_from_physmap`: domid @0, gpfn @8.
fn remove_from_physmap(domid: u16, gpfn: u64) -> i64 {
    let mut page = Page::new();
    page.w16(0, domid);
    page.w64(8, gpfn);
    memop(xen::XENMEM_remove_from_physmap, page.addr())
}

const SHINFO_GFN: u64 = SHARED_INFO_ADDRESS >> 12;
const GNTTAB_GFN: u64 = GRANT_TABLE_ADDRESS >> 12;
/// A free frame above the runtime's shared-info page, for second mappings.
const SPARE_GFN: u64 = SHINFO_GFN + 8;

/// Maps the shared-info page and grant-table frame 0 back where the runtime keeps them (a
/// no-op on a hypervisor that left them there), so a probe that moved them elsewhere does not
/// take the pages every later probe reads away.
fn restore() {
    add_to_physmap(xen::DOMID_SELF, xen::XENMAPSPACE_shared_info, 0, SHINFO_GFN, 0);
    add_to_physmap(xen::DOMID_SELF, xen::XENMAPSPACE_grant_table, 0, GNTTAB_GFN, 0);
}

/// A probe of the physmap family: [`restore`] after it.
fn p(r: &mut Runner, name: &str, run: impl FnOnce(&mut Cx) -> String) {
    r.probe(name, |cx| {
        let answer = run(cx);
        restore();
        answer
    });
}

pub fn all(r: &mut Runner) {
    generic(r);
    queries(r);
    reservations(r);
    exchange(r);
    physmap(r);
    batch(r);
    others(r);
}

/// Every sub-operation number with a null, an unmapped and a zeroed argument.
fn generic(r: &mut Runner) {
    for cmd in 0..=31u64 {
        r.probe(&format!("memory.{cmd}.null"), |_| norm(memop(cmd, 0)));
        r.probe(&format!("memory.{cmd}.unmapped"), |_| norm(memop(cmd, UNMAPPED)));
        r.probe(&format!("memory.{cmd}.zeroed"), |_| {
            let mut page = Page::new();
            norm(memop(cmd, page.addr()))
        });
    }
    for cmd in [63u64, 0xffff] {
        r.probe(&format!("memory.{cmd:#x}.zeroed"), |_| {
            let mut page = Page::new();
            norm(memop(cmd, page.addr()))
        });
    }
}

fn queries(r: &mut Runner) {
    for (name, cmd) in [
        ("current_reservation", xen::XENMEM_current_reservation),
        ("maximum_reservation", xen::XENMEM_maximum_reservation),
        ("maximum_gpfn", xen::XENMEM_maximum_gpfn),
    ] {
        for which in DOMIDS {
            r.probe(&format!("memory.{name}.{which}"), |cx| {
                let mut page = Page::new();
                page.w16(0, cx.domid(which));
                norm(memop(cmd, page.addr()))
            });
        }
        r.probe(&format!("memory.{name}.unaligned"), |_| {
            let mut page = Page::new();
            page.w16(1, xen::DOMID_SELF);
            norm(memop(cmd, page.addr() + 1))
        });
        r.probe(&format!("memory.{name}.extent_bits"), |_| {
            let mut page = Page::new();
            page.w16(0, xen::DOMID_SELF);
            norm(memop(cmd | (5 << xen::MEMOP_EXTENT_SHIFT), page.addr()))
        });
    }
    r.probe("memory.current_vs_max", |_| {
        let mut page = Page::new();
        page.w16(0, xen::DOMID_SELF);
        let current = memop(xen::XENMEM_current_reservation, page.addr());
        let maximum = memop(xen::XENMEM_maximum_reservation, page.addr());
        let relation = match current.cmp(&maximum) {
            core::cmp::Ordering::Less => "lt",
            core::cmp::Ordering::Equal => "eq",
            core::cmp::Ordering::Greater => "gt",
        };
        format!("cur{relation}max")
    });
    r.probe("memory.maximum_ram_page", |_| norm(memop(xen::XENMEM_maximum_ram_page, 0)));
    r.probe("memory.maximum_gpfn.covers_ram", |_| {
        let mut page = Page::new();
        page.w16(0, xen::DOMID_SELF);
        let gpfn = memop(xen::XENMEM_maximum_gpfn, page.addr());
        let own = page.gfn() as i64;
        String::from(if gpfn >= own { "yes" } else { "no" })
    });
}

fn reservations(r: &mut Runner) {
    for order in [0u32, 1, 9, 10, 18, 20, 31, 63] {
        r.probe(&format!("memory.increase.order{order}"), |_| {
            let mut page = reservation(&[0], 1, order, 0, xen::DOMID_SELF);
            norm(memop(xen::XENMEM_increase_reservation, page.addr()))
        });
    }
    for (name, nr, null) in
        [("nr0", 0u64, false), ("nulllist", 1, true), ("nr_huge_null", 1 << 40, true)]
    {
        for (op, cmd) in [
            ("increase", xen::XENMEM_increase_reservation),
            ("decrease", xen::XENMEM_decrease_reservation),
            ("populate", xen::XENMEM_populate_physmap),
        ] {
            r.probe(&format!("memory.{op}.{name}"), |_| {
                let mut page = reservation(&[], nr, 0, 0, xen::DOMID_SELF);
                if null {
                    page.w64(0, 0);
                }
                norm(memop(cmd, page.addr()))
            });
        }
    }
    for which in DOMIDS {
        for (op, cmd) in [
            ("increase", xen::XENMEM_increase_reservation),
            ("decrease", xen::XENMEM_decrease_reservation),
            ("populate", xen::XENMEM_populate_physmap),
        ] {
            r.probe(&format!("memory.{op}.dom_{which}"), |cx| {
                // No frame: only who may ask is checked.
                let mut page = reservation(&[UNMAPPED >> 12], 1, 0, 0, cx.domid(which));
                norm(memop(cmd, page.addr()))
            });
        }
    }
    for flags in [1u32 << 16, 1 << 17, 1 << 18, 0xff, 20, 1 << 31] {
        r.probe(&format!("memory.populate.flags{flags:#x}"), |cx| {
            let Some(s) = cx.scratch else { return "noscratch".into() };
            let frame = (s.leak >> 12) + 15;
            let mut page = reservation(&[frame], 1, 0, flags, xen::DOMID_SELF);
            norm(memop(xen::XENMEM_populate_physmap, page.addr()))
        });
    }
    r.probe("memory.decrease_populate.order0", |cx| {
        let Some(s) = cx.scratch else { return "noscratch".into() };
        give_back(&[s.small >> 12], 0)
    });
    r.probe("memory.decrease_populate.order1", |cx| {
        let Some(s) = cx.scratch else { return "noscratch".into() };
        give_back(&[(s.small >> 12) + 2], 1)
    });
    r.probe("memory.decrease_populate.order9", |cx| {
        let Some(s) = cx.scratch else { return "noscratch".into() };
        give_back(&[s.order9 >> 12], 9)
    });
    r.probe("memory.decrease_populate.two_extents", |cx| {
        let Some(s) = cx.scratch else { return "noscratch".into() };
        give_back(&[(s.small >> 12) + 4, (s.small >> 12) + 5], 0)
    });
    r.probe("memory.decrease.twice", |cx| {
        let Some(s) = cx.scratch else { return "noscratch".into() };
        let frame = [(s.small >> 12) + 6];
        let first = reserve(xen::XENMEM_decrease_reservation, &frame, 0, xen::DOMID_SELF);
        let second = reserve(xen::XENMEM_decrease_reservation, &frame, 0, xen::DOMID_SELF);
        format!("{first} again={second} pop={}", repopulate(&frame))
    });
    r.probe("memory.decrease.order1_misaligned", |cx| {
        let Some(s) = cx.scratch else { return "noscratch".into() };
        let base = (s.small >> 12) + 7;
        let down = reserve(xen::XENMEM_decrease_reservation, &[base], 1, xen::DOMID_SELF);
        format!("{down} pop={}", repopulate(&[base, base + 1]))
    });
    r.probe("memory.decrease.unpopulated", |_| {
        raw(reserve(xen::XENMEM_decrease_reservation, &[UNMAPPED >> 12], 0, xen::DOMID_SELF))
    });
    r.probe("memory.decrease.order20", |cx| {
        let Some(s) = cx.scratch else { return "noscratch".into() };
        raw(reserve(xen::XENMEM_decrease_reservation, &[s.order9 >> 12], 20, xen::DOMID_SELF))
    });
    r.probe("memory.populate.populated", |cx| {
        let Some(s) = cx.scratch else { return "noscratch".into() };
        raw(repopulate(&[s.small >> 12]))
    });
    r.probe("memory.populate.unmapped_gfn", |_| raw(repopulate(&[UNMAPPED >> 12])));
    r.probe("memory.populate.order9_misaligned", |cx| {
        let Some(s) = cx.scratch else { return "noscratch".into() };
        raw(reserve(xen::XENMEM_populate_physmap, &[(s.order9 >> 12) + 1], 9, xen::DOMID_SELF))
    });
    for (name, frame) in [("gfn_max", u64::MAX >> 12), ("gfn_2pow40", 1u64 << 40), ("gfn_zero", 0)]
    {
        r.probe(&format!("memory.populate.{name}"), |_| raw(repopulate(&[frame])));
    }
    r.probe("memory.claim.self", |_| {
        let mut page = reservation(&[], 1, 0, 0, xen::DOMID_SELF);
        raw(memop(xen::XENMEM_claim_pages, page.addr()))
    });
    r.probe("memory.claim.selfid", |cx| {
        let mut page = reservation(&[], 1, 0, 0, cx.self_id);
        raw(memop(xen::XENMEM_claim_pages, page.addr()))
    });
}

/// `xen_memory_exchange`: in @0 (a reservation), out @32, nr_exchanged @64; the in list at
/// 2048, the out list at 3072.
fn exchange_request(
    frame: u64,
    nr_in: u64,
    order_in: u32,
    nr_out: u64,
    order_out: u32,
    domid: u16,
) -> alloc::boxed::Box<Page> {
    let mut page = Page::new();
    let base = page.addr();
    page.w64(0, base + 2048);
    page.w64(8, nr_in);
    page.w32(16, order_in);
    page.w16(24, domid);
    page.w64(32, base + 3072);
    page.w64(40, nr_out);
    page.w32(48, order_out);
    page.w16(56, domid);
    page.w64(2048, frame);
    page.w64(3072, frame);
    page
}

fn exchange(r: &mut Runner) {
    type Case = (&'static str, u64, u32, u64, u32, bool);
    let cases: [Case; 7] = [
        ("valid", 1, 0, 1, 0, false),
        ("order_mismatch", 1, 1, 1, 0, false),
        ("out_order9", 1, 0, 1, 9, false),
        ("nr0", 0, 0, 0, 0, false),
        ("in_order20", 1, 20, 1, 0, false),
        ("nr_exchanged_set", 1, 0, 1, 0, true),
        ("two_for_one", 2, 0, 1, 1, false),
    ];
    for (name, nr_in, order_in, nr_out, order_out, preset) in cases {
        r.probe(&format!("memory.exchange.{name}"), |cx| {
            let Some(s) = cx.scratch else { return "noscratch".into() };
            let frame = (s.small >> 12) + 10;
            let mut page =
                exchange_request(frame, nr_in, order_in, nr_out, order_out, xen::DOMID_SELF);
            if preset {
                page.w64(64, 1);
            }
            let ret = memop(xen::XENMEM_exchange, page.addr());
            let done = page.r64(64);
            format!("{ret} exchanged={done} pop={}", repopulate(&[frame, frame + 1]))
        });
    }
    for which in ["peer", "nonexistent", "selfid"] {
        r.probe(&format!("memory.exchange.dom_{which}"), |cx| {
            let mut page = exchange_request(UNMAPPED >> 12, 1, 0, 1, 0, cx.domid(which));
            raw(memop(xen::XENMEM_exchange, page.addr()))
        });
    }
}

fn physmap(r: &mut Runner) {
    p(r, "memory.add_to_physmap.shinfo.same_gfn", |_| {
        raw(add_to_physmap(xen::DOMID_SELF, xen::XENMAPSPACE_shared_info, 0, SHINFO_GFN, 0))
    });
    p(r, "memory.add_to_physmap.shinfo.second_gfn", |_| {
        let add = add_to_physmap(xen::DOMID_SELF, xen::XENMAPSPACE_shared_info, 0, SPARE_GFN, 0);
        let remove = remove_from_physmap(xen::DOMID_SELF, SPARE_GFN);
        format!("{add} remove={remove}")
    });
    p(r, "memory.add_to_physmap.shinfo.back", |_| {
        raw(add_to_physmap(xen::DOMID_SELF, xen::XENMAPSPACE_shared_info, 0, SHINFO_GFN, 0))
    });
    for idx in [1u64, 2, 0xffff_ffff, u64::MAX] {
        p(r, &format!("memory.add_to_physmap.shinfo.idx{idx:#x}"), |_| {
            let ret =
                add_to_physmap(xen::DOMID_SELF, xen::XENMAPSPACE_shared_info, idx, SPARE_GFN, 0);
            if ret == 0 {
                remove_from_physmap(xen::DOMID_SELF, SPARE_GFN);
            }
            raw(ret)
        });
    }
    p(r, "memory.add_to_physmap.shinfo.over_ram", |cx| {
        let Some(s) = cx.scratch else { return "noscratch".into() };
        let gfn = s.leak >> 12;
        let add = add_to_physmap(xen::DOMID_SELF, xen::XENMAPSPACE_shared_info, 0, gfn, 0);
        let remove = remove_from_physmap(xen::DOMID_SELF, gfn);
        format!("{add} remove={remove}")
    });
    for (name, gfn) in
        [("gfn_2pow40", 1u64 << 40), ("gfn_max", u64::MAX >> 12), ("gfn_unmapped", UNMAPPED >> 12)]
    {
        p(r, &format!("memory.add_to_physmap.shinfo.{name}"), |_| {
            let ret = add_to_physmap(xen::DOMID_SELF, xen::XENMAPSPACE_shared_info, 0, gfn, 0);
            if ret == 0 {
                remove_from_physmap(xen::DOMID_SELF, gfn);
            }
            raw(ret)
        });
    }
    p(r, "memory.add_to_physmap.gnttab.frame0_same", |_| {
        raw(add_to_physmap(xen::DOMID_SELF, xen::XENMAPSPACE_grant_table, 0, GNTTAB_GFN, 0))
    });
    p(r, "memory.add_to_physmap.gnttab.frame1", |_| {
        raw(add_to_physmap(xen::DOMID_SELF, xen::XENMAPSPACE_grant_table, 1, GNTTAB_GFN + 1, 0))
    });
    p(r, "memory.add_to_physmap.gnttab.frame1_again", |_| {
        raw(add_to_physmap(xen::DOMID_SELF, xen::XENMAPSPACE_grant_table, 1, GNTTAB_GFN + 1, 0))
    });
    for idx in [31u64, 63, 64, 1000, xen::XENMAPIDX_grant_table_status, u64::MAX] {
        p(r, &format!("memory.add_to_physmap.gnttab.idx{idx:#x}"), |_| {
            let gfn = GNTTAB_GFN + 0x40;
            let ret = add_to_physmap(xen::DOMID_SELF, xen::XENMAPSPACE_grant_table, idx, gfn, 0);
            if ret == 0 {
                remove_from_physmap(xen::DOMID_SELF, gfn);
            }
            raw(ret)
        });
    }
    p(r, "memory.remove_from_physmap.gnttab.frame1", |_| {
        let remove = remove_from_physmap(xen::DOMID_SELF, GNTTAB_GFN + 1);
        let again = remove_from_physmap(xen::DOMID_SELF, GNTTAB_GFN + 1);
        let add =
            add_to_physmap(xen::DOMID_SELF, xen::XENMAPSPACE_grant_table, 1, GNTTAB_GFN + 1, 0);
        format!("{remove} again={again} readd={add}")
    });
    p(r, "memory.add_to_physmap.gnttab.frame0_moved", |_| {
        let moved =
            add_to_physmap(xen::DOMID_SELF, xen::XENMAPSPACE_grant_table, 0, GNTTAB_GFN + 0x41, 0);
        let back = add_to_physmap(xen::DOMID_SELF, xen::XENMAPSPACE_grant_table, 0, GNTTAB_GFN, 0);
        let old = remove_from_physmap(xen::DOMID_SELF, GNTTAB_GFN + 0x41);
        format!("{moved} back={back} old={old}")
    });
    for (name, space, size) in [
        ("gmfn", xen::XENMAPSPACE_gmfn, 0u16),
        ("gmfn_range", xen::XENMAPSPACE_gmfn_range, 2),
        ("gmfn_range0", xen::XENMAPSPACE_gmfn_range, 0),
        ("gmfn_foreign", xen::XENMAPSPACE_gmfn_foreign, 0),
        ("dev_mmio", xen::XENMAPSPACE_dev_mmio, 0),
        ("space6", 6, 0),
        ("space_max", u32::MAX, 0),
    ] {
        p(r, &format!("memory.add_to_physmap.{name}"), |cx| {
            let Some(s) = cx.scratch else { return "noscratch".into() };
            let idx = (s.small >> 12) + 12;
            let gpfn = (s.small >> 12) + 13;
            let ret = add_to_physmap(xen::DOMID_SELF, space, idx, gpfn, size);
            format!("{ret} pop={}", repopulate(&[idx, idx + 1, gpfn, gpfn + 1]))
        });
    }
    for which in ["selfid", "peer", "nonexistent", "io", "invalid"] {
        p(r, &format!("memory.add_to_physmap.shinfo.dom_{which}"), |cx| {
            let ret =
                add_to_physmap(cx.domid(which), xen::XENMAPSPACE_shared_info, 0, SPARE_GFN, 0);
            if ret == 0 {
                remove_from_physmap(xen::DOMID_SELF, SPARE_GFN);
            }
            raw(ret)
        });
        p(r, &format!("memory.remove_from_physmap.dom_{which}"), |cx| {
            raw(remove_from_physmap(cx.domid(which), UNMAPPED >> 12))
        });
    }
    p(r, "memory.add_to_physmap.null", |_| raw(memop(xen::XENMEM_add_to_physmap, 0)));
    p(r, "memory.remove_from_physmap.null", |_| raw(memop(xen::XENMEM_remove_from_physmap, 0)));
    p(r, "memory.remove_from_physmap.empty", |_| {
        raw(remove_from_physmap(xen::DOMID_SELF, UNMAPPED >> 12))
    });
    p(r, "memory.remove_from_physmap.gfn_max", |_| {
        raw(remove_from_physmap(xen::DOMID_SELF, u64::MAX))
    });
    p(r, "memory.remove_from_physmap.ram", |cx| {
        let Some(s) = cx.scratch else { return "noscratch".into() };
        let gfn = (s.leak >> 12) + 1;
        let remove = remove_from_physmap(xen::DOMID_SELF, gfn);
        format!("{remove} pop={}", repopulate(&[gfn]))
    });
}

/// `xen_add_to_physmap_batch`: domid @0, space @2, size @4, foreign_domid @6, idxs @8,
/// gpfns @16, errs @24; lists at 1024 (idxs), 2048 (gpfns), 3072 (errs, int each).
fn batch(r: &mut Runner) {
    type Case = (&'static str, u16, &'static [u64], &'static [u64], bool);
    let cases: [Case; 8] = [
        ("shinfo.one", xen::XENMAPSPACE_shared_info as u16, &[0], &[SPARE_GFN], false),
        (
            "shinfo.two_bad_idx",
            xen::XENMAPSPACE_shared_info as u16,
            &[0, 1],
            &[SPARE_GFN, SPARE_GFN + 1],
            false,
        ),
        (
            "gnttab.two",
            xen::XENMAPSPACE_grant_table as u16,
            &[0, 1],
            &[GNTTAB_GFN, GNTTAB_GFN + 1],
            false,
        ),
        ("gnttab.bad_idx", xen::XENMAPSPACE_grant_table as u16, &[1000], &[SPARE_GFN], false),
        ("gmfn_range", xen::XENMAPSPACE_gmfn_range as u16, &[0], &[SPARE_GFN], false),
        ("foreign_peer", xen::XENMAPSPACE_gmfn_foreign as u16, &[0x40000], &[SPARE_GFN], true),
        ("size0", xen::XENMAPSPACE_shared_info as u16, &[], &[], false),
        ("space_bad", 0xff, &[0], &[SPARE_GFN], false),
    ];
    for (name, space, idxs, gpfns, foreign) in cases {
        p(r, &format!("memory.batch.{name}"), |cx| {
            let mut page = Page::new();
            let base = page.addr();
            page.w16(0, xen::DOMID_SELF);
            page.w16(2, space);
            page.w16(4, idxs.len() as u16);
            page.w16(6, if foreign { cx.peer_id } else { 0 });
            page.w64(8, base + 1024);
            page.w64(16, base + 2048);
            page.w64(24, base + 3072);
            for (i, (idx, gpfn)) in idxs.iter().zip(gpfns.iter()).enumerate() {
                page.w64(1024 + 8 * i, *idx);
                page.w64(2048 + 8 * i, *gpfn);
                page.w32(3072 + 4 * i, 0x5a5a);
            }
            let ret = memop(xen::XENMEM_add_to_physmap_batch, page.addr());
            let mut answer = format!("{ret} errs=");
            for i in 0..idxs.len() {
                answer += &format!("{},", page.r32(3072 + 4 * i) as i32);
            }
            for gpfn in gpfns {
                if *gpfn != GNTTAB_GFN && *gpfn != GNTTAB_GFN + 1 {
                    remove_from_physmap(xen::DOMID_SELF, *gpfn);
                }
            }
            answer
        });
    }
    for (name, null) in [("null_idxs", 8usize), ("null_gpfns", 16), ("null_errs", 24)] {
        p(r, &format!("memory.batch.{name}"), |_| {
            let mut page = Page::new();
            let base = page.addr();
            page.w16(0, xen::DOMID_SELF);
            page.w16(4, 1);
            page.w64(8, base + 1024);
            page.w64(16, base + 2048);
            page.w64(24, base + 3072);
            page.w64(2048, SPARE_GFN);
            page.w64(null, 0);
            let ret = memop(xen::XENMEM_add_to_physmap_batch, page.addr());
            remove_from_physmap(xen::DOMID_SELF, SPARE_GFN);
            raw(ret)
        });
    }
}

fn others(r: &mut Runner) {
    r.probe("memory.sharing_freed", |_| norm(memop(xen::XENMEM_get_sharing_freed_pages, 0)));
    r.probe("memory.sharing_shared", |_| norm(memop(xen::XENMEM_get_sharing_shared_pages, 0)));
    // xen/include/public/memory.h `xen_mem_acquire_resource`: domid @0, type @2, id @4,
    // nr_frames @8, flags @12, frame @16, frame_list @24.
    type Case = (&'static str, u16, u32, u32, bool);
    let cases: [Case; 8] = [
        ("gnttab_shared.query", xen::XENMEM_resource_grant_table, 0, 0, false),
        ("gnttab_shared.one", xen::XENMEM_resource_grant_table, 0, 1, true),
        ("gnttab_status.query", xen::XENMEM_resource_grant_table, 1, 0, false),
        ("gnttab_id2.query", xen::XENMEM_resource_grant_table, 2, 0, false),
        ("ioreq.query", xen::XENMEM_resource_ioreq_server, 0, 0, false),
        ("vmtrace.query", xen::XENMEM_resource_vmtrace_buf, 0, 0, false),
        ("type_bad.query", 0xffff, 0, 0, false),
        ("gnttab_shared.null_list", xen::XENMEM_resource_grant_table, 0, 1, false),
    ];
    for which in ["self", "selfid", "peer"] {
        for (name, kind, id, nr, list) in cases {
            p(r, &format!("memory.acquire.{which}.{name}"), |cx| {
                let mut page = Page::new();
                let base = page.addr();
                page.w16(0, cx.domid(which));
                page.w16(2, kind);
                page.w32(4, id);
                page.w32(8, nr);
                if list {
                    page.w64(24, base + 2048);
                    page.w64(2048, SPARE_GFN);
                }
                let ret = memop(xen::XENMEM_acquire_resource, page.addr());
                if ret == 0 && list {
                    remove_from_physmap(xen::DOMID_SELF, SPARE_GFN);
                }
                format!("{ret} nr={}", if page.r32(8) == 0 { "0" } else { "nz" })
            });
        }
    }
    r.probe("memory.vnumainfo.self", |_| {
        // `vnuma_topology_info`: domid @0, nr_vnodes @4, nr_vcpus @8, nr_vmemranges @12,
        // handles @16, @24, @32.
        let mut page = Page::new();
        let base = page.addr();
        page.w16(0, xen::DOMID_SELF);
        page.w32(4, 1);
        page.w32(8, 2);
        page.w32(12, 1);
        page.w64(16, base + 1024);
        page.w64(24, base + 2048);
        page.w64(32, base + 3072);
        raw(memop(xen::XENMEM_get_vnumainfo, page.addr()))
    });
    for (name, cmd) in [("memory_map", 9u64), ("machine_memory_map", 10), ("set_memory_map", 13)] {
        r.probe(&format!("memory.{name}.eight"), |_| {
            // `xen_memory_map`: nr_entries @0, buffer @8.
            let mut page = Page::new();
            let base = page.addr();
            page.w32(0, 8);
            page.w64(8, base + 1024);
            norm(memop(cmd, page.addr()))
        });
    }
    r.probe("memory.reserved_device_memory_map", |_| {
        let mut page = Page::new();
        let base = page.addr();
        page.w32(4, 8);
        page.w64(8, base + 1024);
        norm(memop(27, page.addr()))
    });
}
