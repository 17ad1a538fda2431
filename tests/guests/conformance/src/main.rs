//! The conformance guest (`docs/conformance.md`): one image, three roles, chosen by `xc.role=`
//! on its command line.
//!
//! - `prober` (domain 1, 2 vCPUs): finds its own id, waits for the peer, brings up its vCPU 1,
//!   then runs the probe list from `xc.from=N` (default 0), printing `XC-START`, one
//!   `XC <index> <name> <answer>` line per probe and `XC-DONE`, and powers off.
//! - `peer` (domain 2): offers the prober an unbound event channel (port 1) that it echoes
//!   every event on, a port bound to no one the prober may use (port 2), and grants of three of
//!   its pages (refs 8: read-write, 9: read-only, 10: read-write, for copies); then serves
//!   events for ever.
//! - `idle` (Xenolith's domain 0): blocks for ever, so the other two get ids 1 and 2.
//!
//! On Xen 4.17 the two run as dom0less domUs (`xen,enhanced = "no-xenstore"`, the prober with
//! `cpus = <2>`, both `memory = <0 65536>`), and Xen must be booted with `xsm=dummy`: on Arm
//! its default XSM module is SILO, which refuses every event channel and grant between two
//! unprivileged domains, so every inter-domain probe would answer `-EPERM`.
//!
//! Design: every probe is a closure in an ordered list ([`runner::Runner`]); the list is the
//! same in every run, so indices are stable; each probe undoes what it did (closes its ports,
//! unmaps what it mapped, ends its grants) unless the next probes of its family need the
//! state, and prints only what two correct Xen-compatible hypervisors must agree on. Probes
//! that may end the domain on a wrong hypervisor come last.
#![cfg_attr(target_os = "none", no_std)]
#![cfg_attr(target_os = "none", no_main)]

#[cfg(target_os = "none")]
extern crate alloc;

#[cfg(target_os = "none")]
mod evtchn_probes;
#[cfg(target_os = "none")]
mod grant_probes;
#[cfg(target_os = "none")]
mod memory_probes;
#[cfg(target_os = "none")]
mod misc_probes;
#[cfg(target_os = "none")]
mod runner;
#[cfg(target_os = "none")]
mod sched_probes;
#[cfg(target_os = "none")]
mod xen;

#[cfg(target_os = "none")]
mod guest {
    use alloc::boxed::Box;
    use alloc::format;
    use alloc::string::String;
    use core::sync::atomic::{AtomicBool, Ordering};

    use xenolith_runtime::{events, grants, StartInfo};

    use crate::runner::{emit, hc2, yield_times, Cx, Page, Runner, Scratch};
    use crate::xen;

    /// The peer's port the prober binds (its first after finding its own id).
    pub const PEER_PORT: u32 = 1;
    /// The peer's port whose remote is the peer itself.
    pub const PEER_PORT_OTHER: u32 = 2;
    /// The peer's read-write grant.
    pub const PEER_REF_RW: u32 = 8;
    /// The peer's read-only grant.
    pub const PEER_REF_RO: u32 = 9;
    /// The peer's second read-write grant (copy target).
    pub const PEER_REF_COPY: u32 = 10;
    /// The first word of the peer's read-write page.
    pub const PEER_PATTERN_RW: u64 = 0x5045_4552_5257_0001;
    /// The first word of the peer's read-only page.
    pub const PEER_PATTERN_RO: u64 = 0x5045_4552_524f_0002;

    fn main(info: &StartInfo) {
        match info.bootarg("xc.role").unwrap_or("prober") {
            "peer" => peer(),
            "idle" => loop {
                hc2(xen::HC_sched_op, xen::SCHEDOP_block, 0);
            },
            _ => prober(info),
        }
    }

    /// This domain's id: the remote of an unbound port allocated for `DOMID_SELF`, which the
    /// hypervisor resolves (`EVTCHNOP_status` reports it). The port is closed again.
    fn own_id() -> u16 {
        let mut page = Page::new();
        page.w16(0, xen::DOMID_SELF);
        page.w16(2, xen::DOMID_SELF);
        if crate::runner::evtchn(xen::EVTCHNOP_alloc_unbound, &mut page) != 0 {
            return 0;
        }
        let port = page.r32(4);
        let mut status = Page::new();
        status.w16(0, xen::DOMID_SELF);
        status.w32(4, port);
        crate::runner::evtchn(xen::EVTCHNOP_status, &mut status);
        let mut close = Page::new();
        close.w32(0, port);
        crate::runner::evtchn(xen::EVTCHNOP_close, &mut close);
        status.r16(16)
    }

    fn peer() {
        let _ = events::init();
        let _ = grants::init(1);
        let self_id = own_id();
        let prober = self_id.wrapping_sub(1);
        let rw = Box::leak(Page::new());
        let ro = Box::leak(Page::new());
        let copy = Box::leak(Page::new());
        rw.w64(0, PEER_PATTERN_RW);
        ro.w64(0, PEER_PATTERN_RO);
        for (gref, page, readonly) in [
            (PEER_REF_RW, &mut *rw, false),
            (PEER_REF_RO, &mut *ro, true),
            (PEER_REF_COPY, copy, false),
        ] {
            let _ = grants::grant_access(gref, prober, page.gfn() as u32, readonly);
        }
        let main = events::alloc_unbound(xen::DOMID_SELF, prober);
        let other = events::alloc_unbound(xen::DOMID_SELF, xen::DOMID_SELF);
        emit(&format!("XC-PEER ready self={self_id} main={main:?} other={other:?}"));
        let Ok(port) = main else {
            loop {
                hc2(xen::HC_sched_op, xen::SCHEDOP_block, 0);
            }
        };
        loop {
            let _ = events::poll(&[port], 0);
            if port.take_pending() {
                let _ = port.send();
            }
        }
    }

    static VCPU1_UP: AtomicBool = AtomicBool::new(false);

    fn secondary(_index: usize) -> ! {
        VCPU1_UP.store(true, Ordering::Release);
        loop {
            // Xen on Arm unmasks IRQs (PSTATE.I) in SCHEDOP_block; with them unmasked a
            // pending upcall would end every block at once.
            // SAFETY: masking IRQs only defers this vCPU's interrupts, which it never takes.
            unsafe { core::arch::asm!("msr daifset, #2", options(nomem, nostack)) };
            hc2(xen::HC_sched_op, xen::SCHEDOP_block, 0);
        }
    }

    fn scratch() -> Option<Scratch> {
        const MIB2: u64 = 2 << 20;
        let (start, end) = xenolith_runtime::free_memory();
        let order9 = start.next_multiple_of(MIB2) + MIB2;
        let small = order9 + MIB2;
        let leak = small + (64 << 10);
        (leak + (64 << 10) <= end).then_some(Scratch { order9, small, leak })
    }

    fn prober(info: &StartInfo) {
        let from: u32 = info.bootarg("xc.from").and_then(|v| v.parse().ok()).unwrap_or(0);
        let _ = events::init();
        let _ = grants::init(1);
        let self_id = own_id();
        let peer_id = self_id + 1;
        // Wait for the peer: its port for us exists once it is ready.
        let mut peer_ready = false;
        for _ in 0..4000 {
            if let Ok(port) = events::bind_interdomain(peer_id, PEER_PORT) {
                let _ = port.close();
                peer_ready = true;
                break;
            }
            yield_times(20);
        }
        // vCPU 1: is it up before CPU_ON, CPU_ON, CPU_ON again.
        let before = crate::runner::hc3(xen::HC_vcpu_op, u64::from(xen::VCPUOP_is_up), 1, 0);
        let on = match xenolith_runtime::smp::start_vcpu(1, secondary) {
            Ok(()) => 0,
            Err(error) => error.0,
        };
        for _ in 0..100_000 {
            if VCPU1_UP.load(Ordering::Acquire) {
                break;
            }
            yield_times(1);
        }
        let again = match xenolith_runtime::smp::start_vcpu(1, secondary) {
            Ok(()) => 0,
            Err(error) => error.0,
        };
        let cx =
            Cx { self_id, peer_id, peer_ready, scratch: scratch(), vcpu1: [before, on, again] };
        let mut counter = Runner::counter(cx);
        list(&mut counter);
        let total = counter.count();
        emit(&format!("XC-START role=prober from={from} total={total}"));
        let mut runner = Runner::new(counter.cx, from);
        list(&mut runner);
        emit("XC-DONE");
    }

    /// The probe list, in order. Families that may end the domain on a wrong hypervisor last.
    fn list(r: &mut Runner) {
        r.probe("setup.peer.ready", |cx| String::from(if cx.peer_ready { "yes" } else { "no" }));
        r.probe("setup.vcpu1.cpu_on", |cx| {
            format!(
                "{} is_up_before={} again={} up={}",
                cx.vcpu1[1],
                cx.vcpu1[0],
                cx.vcpu1[2],
                VCPU1_UP.load(Ordering::Acquire)
            )
        });
        crate::misc_probes::hypercall_numbers(r);
        crate::misc_probes::console(r);
        crate::misc_probes::version(r);
        crate::misc_probes::vm_assist(r);
        crate::misc_probes::privileged(r);
        crate::misc_probes::hvm(r);
        crate::memory_probes::all(r);
        crate::grant_probes::all(r);
        crate::evtchn_probes::all(r);
        crate::misc_probes::multicall(r);
        crate::sched_probes::all(r);
        crate::sched_probes::vcpu(r);
        crate::sched_probes::ending(r);
    }

    xenolith_runtime::entry!(main);
}

#[cfg(not(target_os = "none"))]
fn main() {}
