//! Probes of the small families: every hypercall number, console_io, xen_version, vm_assist,
//! the privileged families (platform_op, sysctl, domctl, physdev_op, hypfs_op, xsm_op,
//! argo_op, dm_op), hvm_op and multicall.

use alloc::format;

use crate::runner::{hc, hc2, hc3, norm, raw, Page, Runner, UNMAPPED};
use crate::xen;

/// Every hypercall number 0..=63 (and a few beyond) with all-zero arguments and with an
/// invalid sub-operation (`0xffff`) and null pointers. Zero arguments are harmless for every
/// number: the sub-operation 0 of each family either needs a structure (null: `EFAULT`) or is
/// benign (`SCHEDOP_yield`, a zero-length console write, an empty multicall or grant batch).
pub fn hypercall_numbers(r: &mut Runner) {
    for number in 0..=63u64 {
        r.probe(&format!("hc.{number}.zero"), |_| norm(hc(number, [0; 5])));
        r.probe(&format!("hc.{number}.inval"), |_| norm(hc(number, [0xffff, 0, 0, 0, 0])));
    }
    for (name, number) in
        [("64", 64u64), ("100", 100), ("u32max", 0xffff_ffff), ("u64max", u64::MAX)]
    {
        r.probe(&format!("hc.{name}.zero"), |_| norm(hc(number, [0; 5])));
    }
}

/// `console_io`: writes of 0, 1, 64, 4096, 4097 bytes (text that carries no `XC ` marker),
/// bad buffers and lengths, reads, unknown commands.
pub fn console(r: &mut Runner) {
    fn dots(len: usize) -> alloc::vec::Vec<u8> {
        (0..len).map(|i| if i % 64 == 63 || i + 1 == len { b'\n' } else { b'.' }).collect()
    }
    for len in [0usize, 1, 64, 4096, 4097] {
        r.probe(&format!("console.write.len{len}"), |_| {
            let text = dots(len.max(1));
            raw(hc3(xen::HC_console_io, xen::CONSOLEIO_write, len as u64, text.as_ptr() as u64))
        });
    }
    for (name, len, address) in [
        ("null.len1", 1u64, 0u64),
        ("unmapped.len1", 1, UNMAPPED),
        ("null.len0", 0, 0),
        ("null.huge", 1 << 40, 0),
        ("null.u32max", 0xffff_ffff, 0),
        ("null.u64max", u64::MAX, 0),
        ("unmapped.len4096", 4096, UNMAPPED),
    ] {
        r.probe(&format!("console.write.{name}"), |_| {
            raw(hc3(xen::HC_console_io, xen::CONSOLEIO_write, len, address))
        });
    }
    for (name, len, null) in [("len0", 0u64, false), ("len16", 16, false), ("null", 16, true)] {
        r.probe(&format!("console.read.{name}"), |_| {
            let mut page = Page::new();
            let address = if null { 0 } else { page.addr() };
            norm(hc3(xen::HC_console_io, xen::CONSOLEIO_read, len, address))
        });
    }
    for cmd in [2u64, 3, 0xffff, 0xffff_ffff] {
        r.probe(&format!("console.cmd.{cmd:#x}"), |_| {
            let mut page = Page::new();
            raw(hc3(xen::HC_console_io, cmd, 1, page.addr()))
        });
    }
}

/// `xen_version`: every sub-operation 0..=20 with a null, a valid (zeroed) and an unmapped
/// argument; values only where the ABI fixes them (the version, the page size, the feature
/// bitmaps).
pub fn version(r: &mut Runner) {
    for cmd in 0..=20u64 {
        for arg in ["null", "page", "unmapped"] {
            r.probe(&format!("xenver.{cmd}.{arg}"), |_| {
                let mut page = Page::new();
                let address = match arg {
                    "null" => 0,
                    "page" => page.addr(),
                    _ => UNMAPPED,
                };
                let ret = hc2(xen::HC_xen_version, cmd, address);
                match cmd {
                    xen::XENVER_version => format!("{}.{}", ret >> 16, ret & 0xffff),
                    xen::XENVER_pagesize => raw(ret),
                    xen::XENVER_get_features if arg == "page" => {
                        format!("{} submap={:#x}", raw(ret), page.r32(4))
                    }
                    _ => norm(ret),
                }
            });
        }
    }
    for index in [1u32, 2, 31, 0xffff_ffff] {
        r.probe(&format!("xenver.get_features.submap{index}"), |_| {
            let mut page = Page::new();
            page.w32(0, index);
            let ret = hc2(xen::HC_xen_version, xen::XENVER_get_features, page.addr());
            format!("{} submap={:#x}", raw(ret), page.r32(4))
        });
    }
    r.probe("xenver.get_features.unaligned", |_| {
        let mut page = Page::new();
        let ret = hc2(xen::HC_xen_version, xen::XENVER_get_features, page.addr() + 1);
        format!("{} submap={:#x}", raw(ret), page.r32(5))
    });
    r.probe("xenver.build_id.len0", |_| {
        let mut page = Page::new();
        norm(hc3(xen::HC_xen_version, xen::XENVER_build_id, page.addr(), 0))
    });
    r.probe("xenver.build_id.len4000", |_| {
        let mut page = Page::new();
        page.w32(0, 4000);
        norm(hc3(xen::HC_xen_version, xen::XENVER_build_id, page.addr(), 0))
    });
}

/// `vm_assist`: enable and disable of each type (an enabled one is disabled again).
pub fn vm_assist(r: &mut Runner) {
    for kind in [0u64, 1, 2, 3, 4, 5, 6, 7, 31, 32, 33, 63, 64] {
        r.probe(&format!("vm_assist.enable.{kind}"), |_| {
            let ret = hc2(xen::HC_vm_assist, xen::VMASST_CMD_enable, kind);
            if ret == 0 {
                let undo = hc2(xen::HC_vm_assist, xen::VMASST_CMD_disable, kind);
                format!("0 disable={undo}")
            } else {
                raw(ret)
            }
        });
        r.probe(&format!("vm_assist.disable.{kind}"), |_| {
            raw(hc2(xen::HC_vm_assist, xen::VMASST_CMD_disable, kind))
        });
    }
    for cmd in [2u64, 3, 0xffff] {
        r.probe(&format!("vm_assist.cmd.{cmd:#x}"), |_| {
            raw(hc2(xen::HC_vm_assist, cmd, xen::VMASST_TYPE_runstate_update_flag))
        });
    }
}

/// A `{cmd, interface_version, ...}` request (platform_op, sysctl, domctl share the head:
/// `xen/include/public/platform.h`, `sysctl.h`, `domctl.h`), domain id at offset 8 for domctl.
fn versioned(cmd: u32, version: u32, domain: Option<u16>) -> alloc::boxed::Box<Page> {
    let mut page = Page::new();
    page.w32(0, cmd);
    page.w32(4, version);
    if let Some(domain) = domain {
        page.w16(8, domain);
    }
    page
}

/// The families a domU has no right to: every command must be refused, and bad versions and
/// pointers first.
pub fn privileged(r: &mut Runner) {
    for (family, call) in
        [("platform", xen::HC_platform_op), ("sysctl", xen::HC_sysctl), ("domctl", xen::HC_domctl)]
    {
        r.probe(&format!("{family}.null"), |_| raw(hc2(call, 0, 0)));
        r.probe(&format!("{family}.unmapped"), |_| raw(hc2(call, UNMAPPED, 0)));
        r.probe(&format!("{family}.unaligned"), |cx| {
            let mut page = Page::new();
            page.w32(1, 1);
            page.w16(9, cx.self_id);
            raw(hc2(call, page.addr() + 1, 0))
        });
    }
    for version in [0u32, 1, 0x0300_0000, xen::XENPF_INTERFACE_VERSION + 1, u32::MAX] {
        r.probe(&format!("platform.version.{version:#x}"), |_| {
            let mut page = versioned(1, version, None);
            raw(hc2(xen::HC_platform_op, page.addr(), 0))
        });
    }
    for cmd in 0..=64u32 {
        r.probe(&format!("platform.cmd.{cmd}"), |_| {
            let mut page = versioned(cmd, xen::XENPF_INTERFACE_VERSION, None);
            raw(hc2(xen::HC_platform_op, page.addr(), 0))
        });
    }
    for version in [0u32, 0x14, 0x16, u32::MAX] {
        r.probe(&format!("sysctl.version.{version:#x}"), |_| {
            let mut page = versioned(3, version, None);
            raw(hc2(xen::HC_sysctl, page.addr(), 0))
        });
    }
    for cmd in 0..=32u32 {
        r.probe(&format!("sysctl.cmd.{cmd}"), |_| {
            let mut page = versioned(cmd, xen::XEN_SYSCTL_INTERFACE_VERSION, None);
            raw(hc2(xen::HC_sysctl, page.addr(), 0))
        });
    }
    // `XEN_SYSCTL_readconsole` (`struct xen_sysctl_readconsole` in `sysctl.h`: clear @8,
    // incremental @9, index @12, buffer @16, count @24) with a real buffer: a domU may neither
    // read nor clear the console ring (`xsm_sysctl` refuses before `xsm_readconsole`), and
    // neither the buffer nor `count` is written.
    for (name, clear) in [("read", 0u8), ("clear", 1)] {
        r.probe(&format!("sysctl.readconsole.{name}"), |_| {
            let mut page =
                versioned(xen::XEN_SYSCTL_readconsole, xen::XEN_SYSCTL_INTERFACE_VERSION, None);
            page.w8(8, clear);
            page.w8(9, 1);
            let buffer = page.addr() + 2048;
            page.w64(16, buffer);
            page.w32(24, 1024);
            let result = hc2(xen::HC_sysctl, page.addr(), 0);
            format!("{result} count={} buffer={:#x}", page.r32(24), page.r32(2048))
        });
    }
    for version in [0u32, 0x14, 0x16, u32::MAX] {
        r.probe(&format!("domctl.version.{version:#x}"), |cx| {
            let mut page = versioned(5, version, Some(cx.self_id));
            raw(hc2(xen::HC_domctl, page.addr(), 0))
        });
    }
    for cmd in (0..=90u32).chain([1001, 1002, 1003, 0xffff]) {
        r.probe(&format!("domctl.cmd.{cmd}"), |cx| {
            let mut page = versioned(cmd, xen::XEN_DOMCTL_INTERFACE_VERSION, Some(cx.self_id));
            raw(hc2(xen::HC_domctl, page.addr(), 0))
        });
    }
    for (name, which) in
        [("peer", 0u8), ("selfid", 1), ("domid_self", 2), ("nonexistent", 3), ("invalid", 4)]
    {
        r.probe(&format!("domctl.getdomaininfo.{name}"), |cx| {
            let domain = match which {
                0 => cx.peer_id,
                1 => cx.self_id,
                2 => xen::DOMID_SELF,
                3 => 1000,
                _ => xen::DOMID_INVALID,
            };
            let mut page = versioned(5, xen::XEN_DOMCTL_INTERFACE_VERSION, Some(domain));
            raw(hc2(xen::HC_domctl, page.addr(), 0))
        });
    }
    for cmd in 0..=31u64 {
        r.probe(&format!("physdev.{cmd}.null"), |_| raw(hc2(xen::HC_physdev_op, cmd, 0)));
        r.probe(&format!("physdev.{cmd}.page"), |_| {
            let mut page = Page::new();
            raw(hc2(xen::HC_physdev_op, cmd, page.addr()))
        });
    }
    for cmd in 0..=xen::XEN_HYPFS_OP_write_contents + 1 {
        r.probe(&format!("hypfs.{cmd}.zero"), |_| raw(hc(xen::HC_hypfs_op, [cmd, 0, 0, 0, 0])));
        r.probe(&format!("hypfs.{cmd}.root"), |_| {
            let mut page = Page::new();
            page.w8(0, b'/');
            let address = page.addr();
            raw(hc(xen::HC_hypfs_op, [cmd, address, 2, address + 2048, 1024]))
        });
    }
    r.probe("hypfs.inval", |_| raw(hc(xen::HC_hypfs_op, [0xffff, 0, 0, 0, 0])));
    r.probe("xsm.null", |_| raw(hc2(xen::HC_xsm_op, 0, 0)));
    for cmd in [0u32, 1, 2, 3, 10, 0xffff] {
        r.probe(&format!("xsm.cmd.{cmd}"), |_| {
            let mut page = Page::new();
            page.w32(0, cmd);
            raw(hc2(xen::HC_xsm_op, page.addr(), 0))
        });
    }
    for cmd in 0..=xen::XEN_ARGO_OP_notify + 1 {
        r.probe(&format!("argo.{cmd}.zero"), |_| raw(hc(xen::HC_argo_op, [cmd, 0, 0, 0, 0])));
    }
    r.probe("dm.self.nobufs", |cx| raw(hc3(xen::HC_dm_op, u64::from(cx.self_id), 0, 0)));
    r.probe("dm.domid_self.nobufs", |_| raw(hc3(xen::HC_dm_op, u64::from(xen::DOMID_SELF), 0, 0)));
    r.probe("dm.peer.nobufs", |cx| raw(hc3(xen::HC_dm_op, u64::from(cx.peer_id), 0, 0)));
    r.probe("dm.nonexistent.nobufs", |_| raw(hc3(xen::HC_dm_op, 1000, 0, 0)));
    r.probe("dm.self.nullbuf", |cx| raw(hc3(xen::HC_dm_op, u64::from(cx.self_id), 1, 0)));
    for cmd in 0..=xen::XEN_DMOP_nr_vcpus + 1 {
        r.probe(&format!("dm.self.cmd{cmd}"), |cx| {
            // xen/include/public/hvm/dm_op.h: a buffer list of `xen_dm_op_buf {handle, size}`;
            // the first buffer holds `xen_dm_op {op, pad, u}`.
            let mut page = Page::new();
            let op = page.addr() + 1024;
            page.w64(0, op);
            page.w64(8, 256);
            page.w32(1024, cmd);
            raw(hc3(xen::HC_dm_op, u64::from(cx.self_id), 1, page.addr()))
        });
    }
}

/// `xen/include/public/hvm/hvm_op.h` `xen_hvm_param`: domid @0, index @4, value @8.
fn hvm_param(op: u64, domid: u16, index: u32, value: u64) -> (i64, u64) {
    let mut page = Page::new();
    page.w16(0, domid);
    page.w32(4, index);
    page.w64(8, value);
    let ret = hc2(xen::HC_hvm_op, op, page.addr());
    (ret, page.r64(8))
}

/// `hvm_op`: get and set (to the value read) of every parameter, bad domains and pointers,
/// unknown operations.
pub fn hvm(r: &mut Runner) {
    let indices = (0..=xen::HVM_NR_PARAMS + 2).chain([0xffff, u32::MAX]);
    for index in indices.clone() {
        r.probe(&format!("hvm.get.{index}"), |_| {
            let (ret, value) = hvm_param(xen::HVMOP_get_param, xen::DOMID_SELF, index, 0);
            if ret != 0 {
                raw(ret)
            } else if index == xen::HVM_PARAM_CALLBACK_IRQ {
                format!("0 val={value:#x}")
            } else {
                format!("0 val={}", if value == 0 { "0" } else { "nz" })
            }
        });
    }
    for index in indices {
        r.probe(&format!("hvm.set_same.{index}"), |_| {
            let (_, value) = hvm_param(xen::HVMOP_get_param, xen::DOMID_SELF, index, 0);
            raw(hvm_param(xen::HVMOP_set_param, xen::DOMID_SELF, index, value).0)
        });
    }
    for (name, which) in
        [("selfid", 0u8), ("peer", 1), ("nonexistent", 2), ("io", 3), ("idle", 4), ("invalid", 5)]
    {
        for op in [xen::HVMOP_get_param, xen::HVMOP_set_param] {
            r.probe(&format!("hvm.op{op}.dom_{name}"), |cx| {
                let domid = match which {
                    0 => cx.self_id,
                    1 => cx.peer_id,
                    2 => 1000,
                    3 => xen::DOMID_IO,
                    4 => xen::DOMID_IDLE,
                    _ => xen::DOMID_INVALID,
                };
                let (_, value) = hvm_param(xen::HVMOP_get_param, xen::DOMID_SELF, 1, 0);
                raw(hvm_param(op, domid, 1, value).0)
            });
        }
    }
    for op in [xen::HVMOP_set_param, xen::HVMOP_get_param] {
        r.probe(&format!("hvm.op{op}.null"), |_| raw(hc2(xen::HC_hvm_op, op, 0)));
        r.probe(&format!("hvm.op{op}.unmapped"), |_| raw(hc2(xen::HC_hvm_op, op, UNMAPPED)));
    }
    for op in (2..=30u64).chain([0xffff]) {
        r.probe(&format!("hvm.op{op}.page"), |_| {
            let mut page = Page::new();
            page.w16(0, xen::DOMID_SELF);
            raw(hc2(xen::HC_hvm_op, op, page.addr()))
        });
    }
}

/// One `multicall_entry` (`xen/include/public/xen.h`: op @0, result @8, args[6] @16; 64
/// bytes) at slot `slot` of `page`.
fn entry(page: &mut Page, slot: usize, op: u64, args: &[u64]) {
    let base = slot * 64;
    page.w64(base, op);
    page.w64(base + 8, 0x5a5a);
    for (i, arg) in args.iter().enumerate() {
        page.w64(base + 16 + 8 * i, *arg);
    }
}

fn result(page: &Page, slot: usize) -> i64 {
    page.r64(slot * 64 + 8) as i64
}

/// `multicall`: empty, one, several entries, failing entries, a nested multicall, bad lists.
pub fn multicall(r: &mut Runner) {
    r.probe("multicall.empty", |_| {
        let mut page = Page::new();
        raw(hc2(xen::HC_multicall, page.addr(), 0))
    });
    r.probe("multicall.null.count0", |_| raw(hc2(xen::HC_multicall, 0, 0)));
    r.probe("multicall.null.count1", |_| raw(hc2(xen::HC_multicall, 0, 1)));
    r.probe("multicall.unmapped.count1", |_| raw(hc2(xen::HC_multicall, UNMAPPED, 1)));
    r.probe("multicall.one.version", |_| {
        let mut page = Page::new();
        entry(&mut page, 0, xen::HC_xen_version, &[xen::XENVER_version, 0]);
        let ret = hc2(xen::HC_multicall, page.addr(), 1);
        let v = result(&page, 0);
        format!("{ret} r0={}.{}", v >> 16, v & 0xffff)
    });
    r.probe("multicall.two.version_pagesize", |_| {
        let mut page = Page::new();
        entry(&mut page, 0, xen::HC_xen_version, &[xen::XENVER_version, 0]);
        entry(&mut page, 1, xen::HC_xen_version, &[xen::XENVER_pagesize, 0]);
        let ret = hc2(xen::HC_multicall, page.addr(), 2);
        format!("{ret} r1={}", result(&page, 1))
    });
    for (name, op) in [("op63", 63u64), ("op64", 64), ("op1000", 1000), ("op_x86", 1)] {
        r.probe(&format!("multicall.bad.{name}"), |_| {
            let mut page = Page::new();
            entry(&mut page, 0, xen::HC_xen_version, &[xen::XENVER_pagesize, 0]);
            entry(&mut page, 1, op, &[0, 0]);
            entry(&mut page, 2, xen::HC_xen_version, &[xen::XENVER_pagesize, 0]);
            let ret = hc2(xen::HC_multicall, page.addr(), 3);
            format!("{ret} r0={} r1={} r2={}", result(&page, 0), result(&page, 1), result(&page, 2))
        });
    }
    r.probe("multicall.nested", |_| {
        let mut page = Page::new();
        let inner = page.addr() + 2048;
        entry(&mut page, 32, xen::HC_xen_version, &[xen::XENVER_pagesize, 0]);
        entry(&mut page, 0, xen::HC_multicall, &[inner, 1]);
        let ret = hc2(xen::HC_multicall, page.addr(), 1);
        format!("{ret} r0={} inner={}", result(&page, 0), result(&page, 32))
    });
    r.probe("multicall.yield", |_| {
        let mut page = Page::new();
        entry(&mut page, 0, xen::HC_sched_op, &[xen::SCHEDOP_yield, 0]);
        let ret = hc2(xen::HC_multicall, page.addr(), 1);
        format!("{ret} r0={}", result(&page, 0))
    });
    r.probe("multicall.efault_entry", |_| {
        let mut page = Page::new();
        entry(&mut page, 0, xen::HC_event_channel_op, &[u64::from(xen::EVTCHNOP_send), 0]);
        let ret = hc2(xen::HC_multicall, page.addr(), 1);
        format!("{ret} r0={}", result(&page, 0))
    });
    r.probe("multicall.eight", |_| {
        let mut page = Page::new();
        for slot in 0..8 {
            entry(&mut page, slot, xen::HC_xen_version, &[xen::XENVER_pagesize, 0]);
        }
        let ret = hc2(xen::HC_multicall, page.addr(), 8);
        let sum: i64 = (0..8).map(|slot| result(&page, slot)).sum();
        format!("{ret} sum={sum}")
    });
    r.probe("multicall.last_slot_of_page", |_| {
        let mut page = Page::new();
        entry(&mut page, 63, xen::HC_xen_version, &[xen::XENVER_pagesize, 0]);
        let ret = hc2(xen::HC_multicall, page.addr() + 63 * 64, 1);
        format!("{ret} r0={}", result(&page, 63))
    });
    r.probe("multicall.grant_query", |_| {
        let mut page = Page::new();
        page.w16(1024, xen::DOMID_SELF);
        let q = page.addr() + 1024;
        entry(&mut page, 0, xen::HC_grant_table_op, &[u64::from(xen::GNTTABOP_query_size), q, 1]);
        let ret = hc2(xen::HC_multicall, page.addr(), 1);
        format!("{ret} r0={} st={}", result(&page, 0), page.st(1024 + 12))
    });
}
