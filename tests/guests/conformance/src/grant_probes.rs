//! `grant_table_op` probes: every operation number with bad counts and pointers, the
//! operations on the prober's own table, then maps and copies of the peer's grants (refs
//! [`PEER_REF_RW`], [`PEER_REF_RO`], [`PEER_REF_COPY`]) with every bad combination. Every
//! successful map is unmapped in the same probe; self-grants are ended.

use alloc::format;
use alloc::string::String;

use xenolith_runtime::grants::{self, SharedPage, MAP_AREA};

use crate::guest::{PEER_PATTERN_RO, PEER_PATTERN_RW, PEER_REF_COPY, PEER_REF_RO, PEER_REF_RW};
use crate::runner::{gnttab, hc3, raw, Page, Runner, UNMAPPED};
use crate::xen;

/// The prober's own ref it grants to itself.
const SELF_REF: u32 = 20;

/// `gnttab_map_grant_ref` (host_addr @0, flags @8, ref @12, dom @16, status @18, handle @20,
/// dev_bus_addr @24; 32 bytes) at slot `slot`.
fn map_entry(page: &mut Page, slot: usize, dom: u16, gref: u32, flags: u32, host_addr: u64) {
    let base = slot * 32;
    page.w64(base, host_addr);
    page.w32(base + 8, flags);
    page.w32(base + 12, gref);
    page.w16(base + 16, dom);
    page.w16(base + 18, 0x5a5a);
}

/// Maps one grant: (hypercall result, status, handle).
fn map(dom: u16, gref: u32, flags: u32, host_addr: u64) -> (i64, i16, u32) {
    let mut page = Page::new();
    map_entry(&mut page, 0, dom, gref, flags, host_addr);
    let ret = gnttab(xen::GNTTABOP_map_grant_ref, &mut page, 1);
    (ret, page.st(18), page.r32(20))
}

/// `gnttab_unmap_grant_ref` (host_addr @0, dev_bus_addr @8, handle @16, status @20): status.
fn unmap(host_addr: u64, handle: u32) -> i16 {
    let mut page = Page::new();
    page.w64(0, host_addr);
    page.w32(16, handle);
    page.w16(20, 0x5a5a);
    let ret = gnttab(xen::GNTTABOP_unmap_grant_ref, &mut page, 1);
    if ret != 0 {
        ret as i16
    } else {
        page.st(20)
    }
}

/// The first word at `address`, where the hypervisor just reported a grant mapped.
fn read_mapped(address: u64) -> u64 {
    // SAFETY: called only after the hypervisor answered GNTST_okay for a map at `address`
    // (page-aligned, in the runtime's normal-memory window above RAM); it stays mapped until
    // the unmap that follows; nothing else references it.
    unsafe { SharedPage::at(address) }.read_u64(0)
}

/// Map, check the first word against `pattern`, unmap: the normalised answer.
fn map_check_unmap(dom: u16, gref: u32, flags: u32, host_addr: u64, pattern: u64) -> String {
    let (ret, status, handle) = map(dom, gref, flags, host_addr);
    if ret != 0 || status != 0 {
        return format!("{ret} st={status}");
    }
    let data = if host_addr == MAP_AREA && flags & xen::GNTMAP_host_map != 0 {
        if read_mapped(host_addr) == pattern {
            "ok"
        } else {
            "bad"
        }
    } else {
        "-"
    };
    format!("0 st=0 data={data} unmap={}", unmap(host_addr, handle))
}

/// One `gnttab_copy` side: `u` (ref or gmfn) @0, domid @8, offset @10.
fn copy_side(page: &mut Page, base: usize, u: u64, domid: u16, offset: u16) {
    page.w64(base, u);
    page.w16(base + 8, domid);
    page.w16(base + 10, offset);
}

/// A copy segment: source @0, dest @16, len @32, flags @34, status @36 (40 bytes).
#[derive(Clone, Copy)]
struct Seg {
    src: (u64, u16, u16),
    dst: (u64, u16, u16),
    len: u16,
    flags: u16,
}

fn copy(seg: Seg) -> (i64, i16) {
    let mut page = Page::new();
    copy_side(&mut page, 0, seg.src.0, seg.src.1, seg.src.2);
    copy_side(&mut page, 16, seg.dst.0, seg.dst.1, seg.dst.2);
    page.w16(32, seg.len);
    page.w16(34, seg.flags);
    page.w16(36, 0x5a5a);
    let ret = gnttab(xen::GNTTABOP_copy, &mut page, 1);
    (ret, page.st(36))
}

pub fn all(r: &mut Runner) {
    numbers(r);
    own_table(r);
    peer_maps(r);
    peer_copies(r);
}

fn numbers(r: &mut Runner) {
    for cmd in 0..=15u32 {
        r.probe(&format!("gnttab.{cmd}.count0"), |_| {
            let mut page = Page::new();
            raw(gnttab(cmd, &mut page, 0))
        });
        r.probe(&format!("gnttab.{cmd}.null1"), |_| {
            raw(hc3(xen::HC_grant_table_op, u64::from(cmd), 0, 1))
        });
        r.probe(&format!("gnttab.{cmd}.unmapped1"), |_| {
            raw(hc3(xen::HC_grant_table_op, u64::from(cmd), UNMAPPED, 1))
        });
        r.probe(&format!("gnttab.{cmd}.null_huge"), |_| {
            raw(hc3(xen::HC_grant_table_op, u64::from(cmd), 0, 0x8000_0000))
        });
        r.probe(&format!("gnttab.{cmd}.null_u32max"), |_| {
            raw(hc3(xen::HC_grant_table_op, u64::from(cmd), 0, u64::from(u32::MAX)))
        });
    }
    for cmd in [0x7fu32, 0x80, 0xffff, 0x8000_0000] {
        r.probe(&format!("gnttab.cmd{cmd:#x}.count0"), |_| {
            let mut page = Page::new();
            raw(gnttab(cmd, &mut page, 0))
        });
    }
}

fn own_table(r: &mut Runner) {
    // gnttab_setup_table: dom @0, nr_frames @4, status @8, frame_list @16.
    for (name, which, nr, list) in [
        ("self.one", "self", 1u32, true),
        ("self.zero", "self", 0, true),
        ("self.two", "self", 2, true),
        ("self.64", "self", 64, true),
        ("self.65", "self", 65, true),
        ("self.1000", "self", 1000, true),
        ("self.nulllist", "self", 1, false),
        ("selfid.one", "selfid", 1, true),
        ("peer.one", "peer", 1, true),
        ("nonexistent.one", "nonexistent", 1, true),
        ("invalid.one", "invalid", 1, true),
    ] {
        r.probe(&format!("gnttab.setup_table.{name}"), |cx| {
            let mut page = Page::new();
            let base = page.addr();
            page.w16(0, cx.domid(which));
            page.w32(4, nr);
            page.w16(8, 0x5a5a);
            if list {
                page.w64(16, base + 2048);
            }
            let ret = gnttab(xen::GNTTABOP_setup_table, &mut page, 1);
            format!("{ret} st={}", page.st(8))
        });
    }
    // gnttab_query_size: dom @0, nr_frames @4, max_nr_frames @8, status @12.
    for which in ["self", "selfid", "peer", "nonexistent", "io", "invalid"] {
        r.probe(&format!("gnttab.query_size.{which}"), |cx| {
            let mut page = Page::new();
            page.w16(0, cx.domid(which));
            page.w16(12, 0x5a5a);
            let ret = gnttab(xen::GNTTABOP_query_size, &mut page, 1);
            let status = page.st(12);
            if status == 0 {
                format!(
                    "{ret} st=0 nr={} max={}",
                    page.r32(4),
                    if page.r32(8) > 0 { "nz" } else { "0" }
                )
            } else {
                format!("{ret} st={status}")
            }
        });
    }
    r.probe("gnttab.query_size.count2", |_| {
        let mut page = Page::new();
        page.w16(0, xen::DOMID_SELF);
        page.w16(16, 1000);
        let ret = gnttab(xen::GNTTABOP_query_size, &mut page, 2);
        format!("{ret} st0={} st1={}", page.st(12), page.st(28))
    });
    // gnttab_get_version: dom @0, version @4.
    for which in ["self", "selfid", "peer", "nonexistent", "invalid"] {
        r.probe(&format!("gnttab.get_version.{which}"), |cx| {
            let mut page = Page::new();
            page.w16(0, cx.domid(which));
            let ret = gnttab(xen::GNTTABOP_get_version, &mut page, 1);
            format!("{ret} v={}", page.r32(4))
        });
    }
    r.probe("gnttab.get_version.count2", |_| {
        let mut page = Page::new();
        page.w16(0, xen::DOMID_SELF);
        raw(gnttab(xen::GNTTABOP_get_version, &mut page, 2))
    });
    // gnttab_set_version: version @0 (answered with the version in force).
    for version in [0u32, 1, 2, 3, 0xffff_ffff] {
        r.probe(&format!("gnttab.set_version.{version:#x}"), |_| {
            let mut page = Page::new();
            page.w32(0, version);
            let ret = gnttab(xen::GNTTABOP_set_version, &mut page, 1);
            let now = page.r32(0);
            let mut back = Page::new();
            back.w32(0, 1);
            let restore = gnttab(xen::GNTTABOP_set_version, &mut back, 1);
            format!("{ret} v={now} back={restore}")
        });
    }
    r.probe("gnttab.set_version.count2", |_| {
        let mut page = Page::new();
        page.w32(0, 1);
        page.w32(4, 1);
        raw(gnttab(xen::GNTTABOP_set_version, &mut page, 2))
    });
    // gnttab_get_status_frames: nr_frames @0, dom @4, status @6, frame_list @8.
    for (name, which, nr) in
        [("self.one", "self", 1u32), ("self.zero", "self", 0), ("peer.one", "peer", 1)]
    {
        r.probe(&format!("gnttab.get_status_frames.{name}"), |cx| {
            let mut page = Page::new();
            let base = page.addr();
            page.w32(0, nr);
            page.w16(4, cx.domid(which));
            page.w16(6, 0x5a5a);
            page.w64(8, base + 2048);
            let ret = gnttab(xen::GNTTABOP_get_status_frames, &mut page, 1);
            format!("{ret} st={}", page.st(6))
        });
    }
    // gnttab_swap_grant_ref: ref_a @0, ref_b @4, status @8.
    for (a, b) in [(21u32, 22u32), (0, 1), (21, 21), (21, 1 << 20), (u32::MAX, 0), (511, 512)] {
        r.probe(&format!("gnttab.swap.{a:#x}_{b:#x}"), |_| {
            let mut page = Page::new();
            page.w32(0, a);
            page.w32(4, b);
            page.w16(8, 0x5a5a);
            let ret = gnttab(xen::GNTTABOP_swap_grant_ref, &mut page, 1);
            format!("{ret} st={}", page.st(8))
        });
    }
    // gnttab_dump_table: dom @0, status @2.
    for which in ["self", "peer", "nonexistent"] {
        r.probe(&format!("gnttab.dump_table.{which}"), |cx| {
            let mut page = Page::new();
            page.w16(0, cx.domid(which));
            page.w16(2, 0x5a5a);
            let ret = gnttab(xen::GNTTABOP_dump_table, &mut page, 1);
            format!("{ret} st={}", page.st(2))
        });
    }
    // gnttab_transfer: mfn @0, domid @8, ref @12, status @16.
    for (name, which, gref) in [
        ("peer.ref8", "peer", PEER_REF_RW),
        ("self.ref21", "self", 21),
        ("nonexistent", "nonexistent", 8),
    ] {
        r.probe(&format!("gnttab.transfer.{name}"), |cx| {
            let Some(s) = cx.scratch else { return "noscratch".into() };
            let frame = (s.leak >> 12) + 2;
            let mut page = Page::new();
            page.w64(0, frame);
            page.w16(8, cx.domid(which));
            page.w32(12, gref);
            page.w16(16, 0x5a5a);
            let ret = gnttab(xen::GNTTABOP_transfer, &mut page, 1);
            format!("{ret} st={}", page.st(16))
        });
    }
    // gnttab_unmap_and_replace: host_addr @0, new_addr @8, handle @16, status @20.
    for (name, new_addr, handle) in
        [("zero", 0u64, 0u32), ("new_addr", MAP_AREA + 0x1000, 0), ("bad_handle", 0, u32::MAX)]
    {
        r.probe(&format!("gnttab.unmap_and_replace.{name}"), |_| {
            let mut page = Page::new();
            page.w64(0, MAP_AREA);
            page.w64(8, new_addr);
            page.w32(16, handle);
            page.w16(20, 0x5a5a);
            let ret = gnttab(xen::GNTTABOP_unmap_and_replace, &mut page, 1);
            format!("{ret} st={}", page.st(20))
        });
    }
    // gnttab_cache_flush: a (dev_bus_addr or ref) @0, offset @8, length @10, op @12.
    type Flush = (&'static str, u8, u16, u16, u32);
    let flushes: [Flush; 11] = [
        ("clean", 0, 0, 64, xen::GNTTAB_CACHE_CLEAN),
        ("inval", 0, 0, 64, xen::GNTTAB_CACHE_INVAL),
        ("clean_inval", 0, 0, 64, xen::GNTTAB_CACHE_CLEAN | xen::GNTTAB_CACHE_INVAL),
        ("op0", 0, 0, 64, 0),
        ("op4", 0, 0, 64, 4),
        ("cross_page", 0, 4000, 200, xen::GNTTAB_CACHE_CLEAN),
        ("len0", 0, 0, 0, xen::GNTTAB_CACHE_CLEAN),
        ("full_page", 0, 0, 4096, xen::GNTTAB_CACHE_CLEAN),
        ("unmapped", 1, 0, 64, xen::GNTTAB_CACHE_CLEAN),
        ("gref_ungranted", 2, 0, 64, xen::GNTTAB_CACHE_CLEAN | xen::GNTTAB_CACHE_SOURCE_GREF),
        ("gref_self_granted", 3, 0, 64, xen::GNTTAB_CACHE_CLEAN | xen::GNTTAB_CACHE_SOURCE_GREF),
    ];
    for (name, target, offset, length, op) in flushes {
        r.probe(&format!("gnttab.cache_flush.{name}"), |cx| {
            let mut data = Page::new();
            let mut page = Page::new();
            let a = match target {
                0 => data.addr(),
                1 => UNMAPPED,
                2 => 23,
                _ => u64::from(SELF_REF),
            };
            if target == 3 {
                let _ = grants::grant_access(SELF_REF, cx.self_id, data.gfn() as u32, false);
            }
            page.w64(0, a);
            page.w16(8, offset);
            page.w16(10, length);
            page.w32(12, op);
            let ret = gnttab(xen::GNTTABOP_cache_flush, &mut page, 1);
            if target == 3 {
                grants::end_access(SELF_REF);
            }
            raw(ret)
        });
    }
    r.probe("gnttab.map.self_grant", |cx| {
        let mut data = Page::new();
        data.w64(0, 0x5345_4c46);
        let _ = grants::grant_access(SELF_REF, cx.self_id, data.gfn() as u32, false);
        let answer =
            map_check_unmap(cx.self_id, SELF_REF, xen::GNTMAP_host_map, MAP_AREA, 0x5345_4c46);
        let ended = grants::end_access(SELF_REF);
        format!("{answer} ended={ended}")
    });
    r.probe("gnttab.map.self_grant_domid_self", |cx| {
        let mut data = Page::new();
        data.w64(0, 0x5345_4c46);
        let _ = grants::grant_access(SELF_REF, cx.self_id, data.gfn() as u32, false);
        let answer =
            map_check_unmap(xen::DOMID_SELF, SELF_REF, xen::GNTMAP_host_map, MAP_AREA, 0x5345_4c46);
        let ended = grants::end_access(SELF_REF);
        format!("{answer} ended={ended}")
    });
    r.probe("gnttab.copy.self_grant", |cx| {
        let mut data = Page::new();
        let mut target = Page::new();
        data.w64(0, 0x5345_4c46);
        let _ = grants::grant_access(SELF_REF, cx.self_id, data.gfn() as u32, true);
        let (ret, status) = copy(Seg {
            src: (u64::from(SELF_REF), xen::DOMID_SELF, 0),
            dst: (target.gfn(), xen::DOMID_SELF, 0),
            len: 8,
            flags: xen::GNTCOPY_source_gref,
        });
        let ended = grants::end_access(SELF_REF);
        format!("{ret} st={status} data={} ended={ended}", target.r64(0) == 0x5345_4c46)
    });
    r.probe("gnttab.copy.local_to_local", |_| {
        let mut data = Page::new();
        let mut target = Page::new();
        data.w64(8, 0x004c_4f43_414c);
        let (ret, status) = copy(Seg {
            src: (data.gfn(), xen::DOMID_SELF, 8),
            dst: (target.gfn(), xen::DOMID_SELF, 16),
            len: 8,
            flags: 0,
        });
        format!("{ret} st={status} data={}", target.r64(16) == 0x004c_4f43_414c)
    });
}

fn peer_maps(r: &mut Runner) {
    type MapCase = (&'static str, u32, u32, u64, u64);
    let cases: [MapCase; 8] = [
        ("rw", PEER_REF_RW, xen::GNTMAP_host_map, MAP_AREA, PEER_PATTERN_RW),
        (
            "rw_as_readonly",
            PEER_REF_RW,
            xen::GNTMAP_host_map | xen::GNTMAP_readonly,
            MAP_AREA,
            PEER_PATTERN_RW,
        ),
        (
            "ro_as_readonly",
            PEER_REF_RO,
            xen::GNTMAP_host_map | xen::GNTMAP_readonly,
            MAP_AREA,
            PEER_PATTERN_RO,
        ),
        ("ro_as_writable", PEER_REF_RO, xen::GNTMAP_host_map, MAP_AREA, PEER_PATTERN_RO),
        ("copy_ref", PEER_REF_COPY, xen::GNTMAP_host_map, MAP_AREA, 0),
        ("ungranted_ref5", 5, xen::GNTMAP_host_map, MAP_AREA, 0),
        ("ref0", 0, xen::GNTMAP_host_map, MAP_AREA, 0),
        ("ref511", 511, xen::GNTMAP_host_map, MAP_AREA, 0),
    ];
    for (name, gref, flags, host_addr, pattern) in cases {
        r.probe(&format!("gnttab.map.peer.{name}"), |cx| {
            map_check_unmap(cx.peer_id, gref, flags, host_addr, pattern)
        });
    }
    for gref in [512u32, 4096, 32768, 1 << 20, u32::MAX] {
        r.probe(&format!("gnttab.map.peer.ref{gref:#x}"), |cx| {
            map_check_unmap(cx.peer_id, gref, xen::GNTMAP_host_map, MAP_AREA, 0)
        });
    }
    for which in ["self", "selfid", "nonexistent", "io", "xen", "idle", "invalid"] {
        r.probe(&format!("gnttab.map.dom_{which}.ref8"), |cx| {
            map_check_unmap(cx.domid(which), PEER_REF_RW, xen::GNTMAP_host_map, MAP_AREA, 0)
        });
    }
    for (name, flags) in [
        ("flags0", 0u32),
        ("device_map", xen::GNTMAP_device_map),
        ("host_device", xen::GNTMAP_host_map | xen::GNTMAP_device_map),
        ("application_map", xen::GNTMAP_host_map | xen::GNTMAP_application_map),
        ("contains_pte", xen::GNTMAP_host_map | xen::GNTMAP_contains_pte),
        ("avail_bits", xen::GNTMAP_host_map | (1 << 16)),
        ("readonly_only", xen::GNTMAP_readonly),
    ] {
        r.probe(&format!("gnttab.map.peer.{name}"), |cx| {
            map_check_unmap(cx.peer_id, PEER_REF_RW, flags, MAP_AREA, PEER_PATTERN_RW)
        });
    }
    for (name, host_addr) in [
        ("addr0", 0u64),
        ("addr_unaligned", MAP_AREA + 1),
        ("addr_2pow40", 1 << 40),
        ("addr_unmapped", UNMAPPED),
        ("addr_max", !0xfff),
    ] {
        r.probe(&format!("gnttab.map.peer.{name}"), |cx| {
            map_check_unmap(
                cx.peer_id,
                PEER_REF_RW,
                xen::GNTMAP_host_map,
                host_addr,
                PEER_PATTERN_RW,
            )
        });
    }
    r.probe("gnttab.map.peer.twice_two_addrs", |cx| {
        let (r1, s1, h1) = map(cx.peer_id, PEER_REF_RW, xen::GNTMAP_host_map, MAP_AREA);
        let (r2, s2, h2) = map(cx.peer_id, PEER_REF_RW, xen::GNTMAP_host_map, MAP_AREA + 0x1000);
        let u2 = if s2 == 0 { unmap(MAP_AREA + 0x1000, h2) } else { 99 };
        let u1 = if s1 == 0 { unmap(MAP_AREA, h1) } else { 99 };
        format!(
            "{r1} st={s1} {r2} st={s2} unmap={u1},{u2} handles={}",
            if h1 == h2 { "eq" } else { "ne" }
        )
    });
    r.probe("gnttab.map.peer.twice_same_addr", |cx| {
        let (r1, s1, h1) = map(cx.peer_id, PEER_REF_RW, xen::GNTMAP_host_map, MAP_AREA);
        let (r2, s2, h2) =
            map(cx.peer_id, PEER_REF_RO, xen::GNTMAP_host_map | xen::GNTMAP_readonly, MAP_AREA);
        let u2 = if s2 == 0 { unmap(MAP_AREA, h2) } else { 99 };
        let u1 = if s1 == 0 { unmap(MAP_AREA, h1) } else { 99 };
        format!("{r1} st={s1} {r2} st={s2} unmap={u2},{u1}")
    });
    r.probe("gnttab.map.peer.batch2", |cx| {
        let mut page = Page::new();
        map_entry(&mut page, 0, cx.peer_id, PEER_REF_RW, xen::GNTMAP_host_map, MAP_AREA);
        map_entry(
            &mut page,
            1,
            cx.peer_id,
            PEER_REF_RO,
            xen::GNTMAP_host_map | xen::GNTMAP_readonly,
            MAP_AREA + 0x1000,
        );
        let ret = gnttab(xen::GNTTABOP_map_grant_ref, &mut page, 2);
        let (s0, s1) = (page.st(18), page.st(32 + 18));
        let (h0, h1) = (page.r32(20), page.r32(32 + 20));
        // Both unmapped with one batch: gnttab_unmap_grant_ref (24 bytes) x 2.
        let mut un = Page::new();
        un.w64(0, MAP_AREA);
        un.w32(16, if s0 == 0 { h0 } else { u32::MAX });
        un.w64(24, MAP_AREA + 0x1000);
        un.w32(24 + 16, if s1 == 0 { h1 } else { u32::MAX });
        let uret = gnttab(xen::GNTTABOP_unmap_grant_ref, &mut un, 2);
        format!("{ret} st={s0},{s1} unmap={uret} ust={},{}", un.st(20), un.st(44))
    });
    r.probe("gnttab.map.peer.batch_one_bad", |cx| {
        let mut page = Page::new();
        map_entry(&mut page, 0, cx.peer_id, 5, xen::GNTMAP_host_map, MAP_AREA + 0x2000);
        map_entry(&mut page, 1, cx.peer_id, PEER_REF_RW, xen::GNTMAP_host_map, MAP_AREA);
        let ret = gnttab(xen::GNTTABOP_map_grant_ref, &mut page, 2);
        let (s0, s1) = (page.st(18), page.st(32 + 18));
        let u1 = if s1 == 0 { unmap(MAP_AREA, page.r32(32 + 20)) } else { 99 };
        let u0 = if s0 == 0 { unmap(MAP_AREA + 0x2000, page.r32(20)) } else { 99 };
        format!("{ret} st={s0},{s1} unmap={u0},{u1}")
    });
    for (name, handle) in [
        ("h0", 0u32),
        ("h1", 1),
        ("hffff", 0xffff),
        ("hmax", u32::MAX),
        ("h1023", 1023),
        ("h1024", 1024),
    ] {
        r.probe(&format!("gnttab.unmap.bad_handle.{name}"), |_| {
            format!("st={}", unmap(MAP_AREA, handle))
        });
    }
    r.probe("gnttab.unmap.twice", |cx| {
        let (ret, status, handle) = map(cx.peer_id, PEER_REF_RW, xen::GNTMAP_host_map, MAP_AREA);
        if ret != 0 || status != 0 {
            return format!("{ret} st={status}");
        }
        let first = unmap(MAP_AREA, handle);
        let second = unmap(MAP_AREA, handle);
        format!("0 first={first} second={second}")
    });
    r.probe("gnttab.unmap.wrong_addr", |cx| {
        let (ret, status, handle) = map(cx.peer_id, PEER_REF_RW, xen::GNTMAP_host_map, MAP_AREA);
        if ret != 0 || status != 0 {
            return format!("{ret} st={status}");
        }
        let wrong = unmap(MAP_AREA + 0x3000, handle);
        let right = if wrong == 0 { 99 } else { unmap(MAP_AREA, handle) };
        format!("0 wrong={wrong} right={right}")
    });
    r.probe("gnttab.unmap.addr0_handle", |cx| {
        let (ret, status, handle) = map(cx.peer_id, PEER_REF_RW, xen::GNTMAP_host_map, MAP_AREA);
        if ret != 0 || status != 0 {
            return format!("{ret} st={status}");
        }
        let zero = unmap(0, handle);
        let right = if zero == 0 { 99 } else { unmap(MAP_AREA, handle) };
        format!("0 addr0={zero} right={right}")
    });
    r.probe("gnttab.map.peer.after_all_unmapped", |cx| {
        map_check_unmap(cx.peer_id, PEER_REF_RW, xen::GNTMAP_host_map, MAP_AREA, PEER_PATTERN_RW)
    });
}

fn peer_copies(r: &mut Runner) {
    const GREF: u16 = xen::GNTCOPY_source_gref;
    const DREF: u16 = xen::GNTCOPY_dest_gref;
    type CopyCase = (&'static str, u8, u64, u16, u8, u64, u16, u16, u16);
    // (name, src who, src ref/gmfn, src offset, dst who, dst ref/gmfn, dst offset, len, flags);
    // who: 0 peer, 1 self (DOMID_SELF), 2 nonexistent, 3 selfid; a gmfn of 0 means "the
    // probe's own page".
    let cases: [CopyCase; 24] = [
        ("from_rw", 0, PEER_REF_RW as u64, 0, 1, 0, 0, 8, GREF),
        ("from_ro", 0, PEER_REF_RO as u64, 0, 1, 0, 0, 8, GREF),
        ("to_copy_ref", 1, 0, 0, 0, PEER_REF_COPY as u64, 0, 16, DREF),
        ("to_ro_ref", 1, 0, 0, 0, PEER_REF_RO as u64, 0, 16, DREF),
        ("ref_to_ref", 0, PEER_REF_RW as u64, 0, 0, PEER_REF_COPY as u64, 64, 8, GREF | DREF),
        ("from_bad_ref5", 0, 5, 0, 1, 0, 0, 8, GREF),
        ("from_ref_2pow20", 0, 1 << 20, 0, 1, 0, 0, 8, GREF),
        ("from_ref_u32max", 0, u32::MAX as u64, 0, 1, 0, 0, 8, GREF),
        ("to_bad_ref5", 1, 0, 0, 0, 5, 0, 8, DREF),
        ("from_nonexistent", 2, PEER_REF_RW as u64, 0, 1, 0, 0, 8, GREF),
        ("from_selfid_ref8", 3, PEER_REF_RW as u64, 0, 1, 0, 0, 8, GREF),
        ("from_peer_gmfn", 0, 0x40000, 0, 1, 0, 0, 8, 0),
        ("to_peer_gmfn", 1, 0, 0, 0, 0x40000, 0, 8, 0),
        ("src_cross_page", 0, PEER_REF_RW as u64, 4000, 1, 0, 0, 200, GREF),
        ("dst_cross_page", 0, PEER_REF_RW as u64, 0, 1, 0, 4095, 2, GREF),
        ("len0", 0, PEER_REF_RW as u64, 0, 1, 0, 0, 0, GREF),
        ("len4096", 0, PEER_REF_RW as u64, 0, 1, 0, 0, 4096, GREF),
        ("len4097", 0, PEER_REF_RW as u64, 0, 1, 0, 0, 4097, GREF),
        ("offset4096_len0", 0, PEER_REF_RW as u64, 4096, 1, 0, 0, 0, GREF),
        ("offset4095_len1", 0, PEER_REF_RW as u64, 4095, 1, 0, 0, 1, GREF),
        ("len_max", 0, PEER_REF_RW as u64, 0, 1, 0, 0, u16::MAX, GREF),
        ("to_unmapped_gmfn", 0, PEER_REF_RW as u64, 0, 1, UNMAPPED >> 12, 0, 8, GREF),
        ("from_unmapped_gmfn", 1, UNMAPPED >> 12, 0, 1, 0, 0, 8, 0),
        ("bad_flags", 0, PEER_REF_RW as u64, 0, 1, 0, 0, 8, GREF | 0x100),
    ];
    for (name, swho, su, soff, dwho, du, doff, len, flags) in cases {
        r.probe(&format!("gnttab.copy.{name}"), |cx| {
            let mut own = Page::new();
            own.w64(0, 0x4f57_4e00);
            let who = |which: u8| match which {
                0 => cx.peer_id,
                1 => xen::DOMID_SELF,
                2 => 1000,
                _ => cx.self_id,
            };
            let own_gfn = own.gfn();
            let src = (if swho == 1 && su == 0 { own_gfn } else { su }, who(swho), soff);
            let dst = (if dwho == 1 && du == 0 { own_gfn } else { du }, who(dwho), doff);
            let (ret, status) = copy(Seg { src, dst, len, flags });
            let mut answer = format!("{ret} st={status}");
            if status == 0 && name.starts_with("from_r") {
                let expect =
                    if su == u64::from(PEER_REF_RO) { PEER_PATTERN_RO } else { PEER_PATTERN_RW };
                answer += &format!(" data={}", own.r64(0) == expect);
            }
            answer
        });
    }
    r.probe("gnttab.copy.batch_mixed", |cx| {
        let mut page = Page::new();
        let mut own = Page::new();
        let gfn = own.gfn();
        copy_side(&mut page, 0, u64::from(PEER_REF_RW), cx.peer_id, 0);
        copy_side(&mut page, 16, gfn, xen::DOMID_SELF, 0);
        page.w16(32, 8);
        page.w16(34, GREF);
        copy_side(&mut page, 40, 5, cx.peer_id, 0);
        copy_side(&mut page, 56, gfn, xen::DOMID_SELF, 8);
        page.w16(72, 8);
        page.w16(74, GREF);
        copy_side(&mut page, 80, u64::from(PEER_REF_RO), cx.peer_id, 0);
        copy_side(&mut page, 96, gfn, xen::DOMID_SELF, 16);
        page.w16(112, 8);
        page.w16(114, GREF);
        let ret = gnttab(xen::GNTTABOP_copy, &mut page, 3);
        format!(
            "{ret} st={},{},{} data={}",
            page.st(36),
            page.st(76),
            page.st(116),
            own.r64(16) == PEER_PATTERN_RO
        )
    });
}
