//! `sched_op` and `vcpu_op` probes, and the ending probes (those that may stop the prober or
//! the peer on a wrong hypervisor), last in the list.
//!
//! `SCHEDOP_block` is probed with the EL1 virtual timer armed as a safety net: a correct
//! hypervisor returns at once when an event is pending and otherwise when the timer fires; the
//! answer says which (`woke=event` if the timer had not fired yet). Xen on Arm unmasks the
//! vCPU's IRQs (PSTATE.I) when it blocks, so each probe masks them again afterwards.

use alloc::boxed::Box;
use alloc::format;

use xenolith_runtime::events::{self, Port};

use crate::evtchn_probes::port_op;
use crate::runner::{hc2, hc3, raw, vtimer_arm, vtimer_fired_and_stop, Page, Runner, UNMAPPED};
use crate::xen;

fn sched(cmd: u64, arg: u64) -> i64 {
    hc2(xen::HC_sched_op, cmd, arg)
}

fn mask_irqs() {
    // SAFETY: masking IRQs at EL1 only defers this vCPU's interrupts (the guest runs with them
    // masked throughout).
    unsafe { core::arch::asm!("msr daifset, #2", options(nomem, nostack)) };
}

/// `evtchn_bind_ipi` to vCPU 0: the port.
fn ipi_port() -> u32 {
    let mut page = Page::new();
    crate::runner::evtchn(xen::EVTCHNOP_bind_ipi, &mut page);
    page.r32(4)
}

fn close(port: u32) {
    port_op(xen::EVTCHNOP_close, port);
}

/// Clears vCPU 0's upcall flag and every pending unmasked port.
fn clear_events() {
    events::upcall(0, |_| {});
}

/// Blocks with the virtual timer `ms` ahead: (result, "timer" or "event").
fn block_with_timer(ms: u64) -> (i64, &'static str) {
    mask_irqs();
    vtimer_arm(ms);
    let ret = sched(xen::SCHEDOP_block, 0);
    let fired = vtimer_fired_and_stop();
    mask_irqs();
    (ret, if fired { "timer" } else { "event" })
}

/// `sched_poll`: ports @0, nr_ports @8, timeout @16; the port list at 1024.
fn poll(ports: &[u32], nr: u32, timeout: u64, null_list: bool) -> i64 {
    let mut page = Page::new();
    let base = page.addr();
    page.w64(0, if null_list { 0 } else { base + 1024 });
    page.w32(8, nr);
    page.w64(16, timeout);
    for (i, port) in ports.iter().enumerate() {
        page.w32(1024 + 4 * i, *port);
    }
    let ret = sched(xen::SCHEDOP_poll, page.addr());
    mask_irqs();
    ret
}

pub fn all(r: &mut Runner) {
    r.probe("sched.yield", |_| raw(sched(xen::SCHEDOP_yield, 0)));
    r.probe("sched.yield.garbage_arg", |_| raw(sched(xen::SCHEDOP_yield, UNMAPPED)));
    r.probe("sched.block.no_event", |_| {
        clear_events();
        let (ret, woke) = block_with_timer(30);
        format!("{ret} woke={woke}")
    });
    r.probe("sched.block.event_pending", |_| {
        clear_events();
        let port = ipi_port();
        let send = port_op(xen::EVTCHNOP_send, port);
        let (ret, woke) = block_with_timer(300);
        close(port);
        clear_events();
        format!("{ret} send={send} woke={woke}")
    });
    r.probe("sched.block.masked_port_pending", |_| {
        clear_events();
        let port = ipi_port();
        Port(port).mask();
        let send = port_op(xen::EVTCHNOP_send, port);
        let (ret, woke) = block_with_timer(30);
        Port(port).take_pending();
        close(port);
        port_op(xen::EVTCHNOP_unmask, port);
        clear_events();
        format!("{ret} send={send} woke={woke}")
    });
    r.probe("sched.block.upcall_flag_only", |_| {
        clear_events();
        let port = ipi_port();
        let send = port_op(xen::EVTCHNOP_send, port);
        // The port's pending bit cleared, vCPU 0's upcall flag left set.
        Port(port).take_pending();
        let (ret, woke) = block_with_timer(300);
        close(port);
        clear_events();
        format!("{ret} send={send} woke={woke}")
    });
    r.probe("sched.poll.pending", |_| {
        let port = ipi_port();
        port_op(xen::EVTCHNOP_send, port);
        let ret = poll(&[port], 1, 0, false);
        let still = Port(port).take_pending();
        close(port);
        clear_events();
        format!("{ret} still_pending={still}")
    });
    r.probe("sched.poll.not_pending_past_timeout", |_| {
        clear_events();
        let port = ipi_port();
        let ret = poll(&[port], 1, 1, false);
        close(port);
        clear_events();
        raw(ret)
    });
    r.probe("sched.poll.two_ports_one_pending", |_| {
        clear_events();
        let a = ipi_port();
        let b = ipi_port();
        port_op(xen::EVTCHNOP_send, b);
        let ret = poll(&[a, b], 2, 0, false);
        close(a);
        close(b);
        clear_events();
        raw(ret)
    });
    type PollCase = (&'static str, u32, u32, bool);
    let cases: [PollCase; 9] = [
        ("nr0", 0, 0, false),
        ("port0", 1, 0, false),
        ("port4095_closed", 1, 4095, false),
        ("port4096", 1, 4096, false),
        ("portmax", 1, u32::MAX, false),
        ("nr128", 128, 0, false),
        ("nr129", 129, 0, false),
        ("nrmax", u32::MAX, 0, false),
        ("nulllist", 1, 0, true),
    ];
    for (name, nr, port, null_list) in cases {
        r.probe(&format!("sched.poll.{name}"), |_| {
            clear_events();
            let ret = poll(&[port], nr, 1, null_list);
            clear_events();
            raw(ret)
        });
    }
    r.probe("sched.poll.null", |_| raw(sched(xen::SCHEDOP_poll, 0)));
    r.probe("sched.poll.unmapped", |_| raw(sched(xen::SCHEDOP_poll, UNMAPPED)));
    r.probe("sched.shutdown.null", |_| raw(sched(xen::SCHEDOP_shutdown, 0)));
    r.probe("sched.shutdown.unmapped", |_| raw(sched(xen::SCHEDOP_shutdown, UNMAPPED)));
    r.probe("sched.shutdown_code.null", |_| raw(sched(xen::SCHEDOP_shutdown_code, 0)));
    r.probe("sched.shutdown_code.poweroff", |_| {
        let mut page = Page::new();
        page.w32(0, xen::SHUTDOWN_poweroff);
        raw(sched(xen::SCHEDOP_shutdown_code, page.addr()))
    });
    // sched_watchdog: id @0, timeout @4 (seconds). Timeouts of an hour: a watchdog left
    // behind by a wrong answer never fires during a run. Never id 0 with timeout 0: that
    // creates a watchdog that fires at once (Xen's `domain_watchdog`).
    let watchdog = |id: u32, timeout: u32| {
        let mut page = Page::new();
        page.w32(0, id);
        page.w32(4, timeout);
        sched(xen::SCHEDOP_watchdog, page.addr())
    };
    r.probe("sched.watchdog.create_destroy", move |_| {
        let id = watchdog(0, 3600);
        let refresh = if id > 0 { watchdog(id as u32, 3600) } else { 99 };
        let destroy = if id > 0 { watchdog(id as u32, 0) } else { 99 };
        let again = if id > 0 { watchdog(id as u32, 0) } else { 99 };
        format!("{id} refresh={refresh} destroy={destroy} again={again}")
    });
    r.probe("sched.watchdog.until_full", move |_| {
        let ids: alloc::vec::Vec<i64> = (0..4).map(|_| watchdog(0, 3600)).collect();
        for id in &ids {
            if *id > 0 {
                watchdog(*id as u32, 0);
            }
        }
        format!("{ids:?}").replace(' ', "")
    });
    for (name, id, timeout) in
        [("destroy_id5", 5u32, 0u32), ("refresh_id2_unused", 2, 10), ("destroy_idmax", u32::MAX, 0)]
    {
        r.probe(&format!("sched.watchdog.{name}"), move |_| raw(watchdog(id, timeout)));
    }
    r.probe("sched.watchdog.null", |_| raw(sched(xen::SCHEDOP_watchdog, 0)));
    for (name, pcpu) in [("p0", 0i32), ("p1", 1), ("none", -1)] {
        r.probe(&format!("sched.pin_override.{name}"), move |_| {
            let mut page = Page::new();
            page.w32(0, pcpu as u32);
            raw(sched(xen::SCHEDOP_pin_override, page.addr()))
        });
    }
    // sched_remote_shutdown: domain_id @0, reason @4.
    for (name, domain) in
        [("nonexistent", 1000u16), ("invalid", xen::DOMID_INVALID), ("io", xen::DOMID_IO)]
    {
        r.probe(&format!("sched.remote_shutdown.{name}"), move |_| {
            let mut page = Page::new();
            page.w16(0, domain);
            page.w32(4, xen::SHUTDOWN_poweroff);
            raw(sched(xen::SCHEDOP_remote_shutdown, page.addr()))
        });
    }
    r.probe("sched.remote_shutdown.null", |_| raw(sched(xen::SCHEDOP_remote_shutdown, 0)));
    for cmd in [xen::SCHEDOP_pin_override + 1, 9, 0xffff, 0xffff_ffff] {
        r.probe(&format!("sched.cmd.{cmd:#x}"), move |_| raw(sched(cmd, 0)));
    }
    // As Linux does: the upcall PPI enabled at the virtual GIC (the vCPU still masks IRQs; the
    // runtime's handler acknowledges an upcall taken when SCHEDOP_block unmasks them). From
    // here on an event pending for vCPU 0 is deliverable, so blocking must return at once.
    r.probe("sched.block.event_pending_upcall_enabled", |_| {
        xenolith_runtime::irq::init_distributor();
        xenolith_runtime::irq::init_cpu(0, 1 << events::UPCALL_PPI);
        clear_events();
        let port = ipi_port();
        let send = port_op(xen::EVTCHNOP_send, port);
        let (ret, woke) = block_with_timer(300);
        close(port);
        clear_events();
        format!("{ret} send={send} woke={woke}")
    });
    r.probe("sched.block.no_event_upcall_enabled", |_| {
        clear_events();
        let (ret, woke) = block_with_timer(30);
        format!("{ret} woke={woke}")
    });
}

fn vcpu_op(cmd: u32, vcpu: u32, arg: u64) -> i64 {
    hc3(xen::HC_vcpu_op, u64::from(cmd), u64::from(vcpu), arg)
}

const VCPUS: [(&str, u32); 4] = [("v0", 0), ("v1", 1), ("v2", 2), ("vmax", u32::MAX)];

pub fn vcpu(r: &mut Runner) {
    for cmd in 0..=14u32 {
        for (vname, vcpu) in VCPUS {
            // VCPUOP_down of vCPU 0 or 1 is an ending probe.
            if cmd == xen::VCPUOP_down && vcpu <= 1 {
                continue;
            }
            r.probe(&format!("vcpu.{cmd}.{vname}.null"), move |_| raw(vcpu_op(cmd, vcpu, 0)));
            r.probe(&format!("vcpu.{cmd}.{vname}.zeroed"), move |_| {
                let page = Box::leak(Page::new());
                raw(vcpu_op(cmd, vcpu, page.addr()))
            });
        }
    }
    for (vname, vcpu) in VCPUS {
        r.probe(&format!("vcpu.cmd_ffff.{vname}"), move |_| raw(vcpu_op(0xffff, vcpu, 0)));
    }
    // vcpu_register_runstate_memory_area: the area's address @0.
    let runstate = |vcpu: u32, address: u64| {
        let mut page = Page::new();
        page.w64(0, address);
        vcpu_op(xen::VCPUOP_register_runstate_memory_area, vcpu, page.addr())
    };
    r.probe("vcpu.runstate_area.v0.valid", move |_| {
        let area = Box::leak(Page::new());
        area.w32(0, 0x5a5a);
        let ret = runstate(0, area.addr());
        let state = area.r32(0) as i32;
        let off = runstate(0, 0);
        format!("{ret} state={state} unregister={off}")
    });
    r.probe("vcpu.runstate_area.v1.valid", move |_| {
        let area = Box::leak(Page::new());
        let ret = runstate(1, area.addr());
        let off = runstate(1, 0);
        format!("{ret} unregister={off}")
    });
    for (name, vcpu, which) in [
        ("v0.unaligned", 0u32, 1u8),
        ("v0.unmapped", 0, 2),
        ("v0.page_end", 0, 3),
        ("v2.valid", 2, 0),
        ("vmax.valid", u32::MAX, 0),
    ] {
        r.probe(&format!("vcpu.runstate_area.{name}"), move |_| {
            let area = Box::leak(Page::new());
            let address = match which {
                0 => area.addr(),
                1 => area.addr() + 1,
                2 => UNMAPPED,
                _ => area.addr() + 4090,
            };
            let ret = runstate(vcpu, address);
            let off = runstate(vcpu, 0);
            format!("{ret} unregister={off}")
        });
    }
    // vcpu_register_vcpu_info: mfn @0, offset @8, rsvd @12.
    let vcpu_info = |vcpu: u32, mfn: u64, offset: u32, rsvd: u32| {
        let mut page = Page::new();
        page.w64(0, mfn);
        page.w32(8, offset);
        page.w32(12, rsvd);
        vcpu_op(xen::VCPUOP_register_vcpu_info, vcpu, page.addr())
    };
    for (name, vcpu, which, offset, rsvd) in [
        ("v0.offset_crosses", 0u32, 0u8, 4090u32, 0u32),
        ("v0.offset4096", 0, 0, 4096, 0),
        ("v0.unmapped", 0, 1, 0, 0),
        ("v0.rsvd", 0, 0, 0, 1),
        ("v0.unaligned_offset", 0, 0, 1, 0),
        ("v2.valid", 2, 0, 0, 0),
        ("v0.valid", 0, 0, 64, 0),
        ("v0.again", 0, 0, 128, 0),
        ("v1.valid", 1, 0, 64, 0),
        ("v1.again", 1, 0, 128, 0),
    ] {
        r.probe(&format!("vcpu.register_vcpu_info.{name}"), move |_| {
            let area = Box::leak(Page::new());
            let mfn = if which == 1 { UNMAPPED >> 12 } else { area.gfn() };
            raw(vcpu_info(vcpu, mfn, offset, rsvd))
        });
    }
    // vcpu_set_periodic_timer: period_ns @0; vcpu_set_singleshot_timer: timeout_abs_ns @0,
    // flags @8.
    for (name, period) in [("1ms", 1_000_000u64), ("zero", 0), ("1us", 1000), ("huge", u64::MAX)] {
        r.probe(&format!("vcpu.periodic.{name}"), move |_| {
            let mut page = Page::new();
            page.w64(0, period);
            let ret = vcpu_op(xen::VCPUOP_set_periodic_timer, 0, page.addr());
            let stop = vcpu_op(xen::VCPUOP_stop_periodic_timer, 0, 0);
            format!("{ret} stop={stop}")
        });
    }
    for (name, deadline, flags) in [
        ("past_future_flag", 1u64, xen::VCPU_SSHOTTMR_future),
        ("past_no_flag", 1, 0),
        ("far", u64::MAX >> 1, 0),
        ("bad_flags", 1, 0xffff_fffe),
    ] {
        r.probe(&format!("vcpu.singleshot.{name}"), move |_| {
            let mut page = Page::new();
            page.w64(0, deadline);
            page.w32(8, flags);
            let ret = vcpu_op(xen::VCPUOP_set_singleshot_timer, 0, page.addr());
            let stop = vcpu_op(xen::VCPUOP_stop_singleshot_timer, 0, 0);
            format!("{ret} stop={stop}")
        });
    }
}

/// Probes that end the prober (or the peer) on a wrong hypervisor: last.
pub fn ending(r: &mut Runner) {
    let remote = |domain: u16| {
        let mut page = Page::new();
        page.w16(0, domain);
        page.w32(4, xen::SHUTDOWN_poweroff);
        sched(xen::SCHEDOP_remote_shutdown, page.addr())
    };
    r.probe("end.remote_shutdown.peer", move |cx| raw(remote(cx.peer_id)));
    r.probe("end.remote_shutdown.domid_self", move |_| raw(remote(xen::DOMID_SELF)));
    r.probe("end.remote_shutdown.selfid", move |cx| raw(remote(cx.self_id)));
    r.probe("end.vcpu.down.v1", |_| raw(vcpu_op(xen::VCPUOP_down, 1, 0)));
    r.probe("end.vcpu.down.v0", |_| raw(vcpu_op(xen::VCPUOP_down, 0, 0)));
}
