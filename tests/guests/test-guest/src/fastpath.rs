//! `fastpath` (`rounds=<n>`, default 10,000; `only=<row>` runs the other rows once, for a
//! profile of one): the guest-visible fast paths of issue 15's table,
//! each run `rounds` times in a tight loop on one vCPU, with the same loop run empty subtracted.
//! Only Xen's ABI is used, so the same program measures any Xen-compatible hypervisor. Under
//! `-icount shift=0` a nanosecond of virtual time is one instruction; each row prints
//! `NAME: bench fastpath ROW INSTRUCTIONS` and the run ends `NAME: PASS fastpath`.
//!
//! The rows:
//! - `null`: `xen_version(XENVER_version)`;
//! - `send`: `EVTCHNOP_send` on one end of a loopback channel (`alloc_unbound` to ourselves,
//!   `bind_interdomain` to it), with IRQs masked, so the event stays pending after the first;
//! - `send-upcall`: the same with IRQs unmasked: every send is followed by the upcall, which
//!   acknowledges, clears the port and the selector, and EOIs (the runtime's handler, Linux's
//!   order);
//! - `copy`: `GNTTABOP_copy` of 4 KiB from a grant this domain gave itself into one of its frames;
//! - `map-unmap`: `GNTTABOP_map_grant_ref` of that self-grant and `GNTTABOP_unmap_grant_ref`.

use core::sync::atomic::{AtomicU32, Ordering};

use xenolith_abi::xen::grant_table::{self as gt, gnttab_copy, gnttab_copy_ptr};
use xenolith_abi::xen::hypercall::DOMID_SELF;
use xenolith_abi::xen::version::XENVER_version;
use xenolith_runtime::events::{self, Port};
use xenolith_runtime::grants::{self, SharedPage, MAP_AREA, PAGE_SIZE};
use xenolith_runtime::{hypercall, irq, println, StartInfo};

use crate::guest::{counter, nanoseconds};

static UPCALLS: AtomicU32 = AtomicU32::new(0);

fn on_interrupt(intid: u32) {
    if intid == events::UPCALL_PPI {
        events::upcall(0, |_| {
            UPCALLS.fetch_add(1, Ordering::AcqRel);
        });
    }
}

/// Virtual nanoseconds (instructions, under `-icount shift=0`) of `rounds` calls of `body`.
#[inline(never)]
fn timed(rounds: u64, mut body: impl FnMut()) -> u64 {
    let start = counter();
    for _ in 0..rounds {
        body();
    }
    nanoseconds(counter() - start)
}

pub fn fastpath(name: &str, info: &StartInfo) {
    let all: u64 = info.bootarg("rounds").and_then(|value| value.parse().ok()).unwrap_or(10_000);
    let only = info.bootarg("only");
    let rounds_of = |row: &str| if only.is_none_or(|only| only == row) { all } else { 1 };
    let empty = timed(all, || core::hint::black_box(()));
    let row = |row: &str, total: u64| {
        let (rounds, empty) = (rounds_of(row), if rounds_of(row) == all { empty } else { 0 });
        println!("{name}: bench fastpath {row} {}", total.saturating_sub(empty) / rounds.max(1));
    };

    row(
        "null",
        timed(rounds_of("null"), || {
            core::hint::black_box(hypercall::xen_version(XENVER_version, 0));
        }),
    );

    // A loopback channel: `bound`'s sends raise `offered`.
    let ports = events::init().and_then(|()| {
        let offered = events::alloc_unbound(DOMID_SELF, DOMID_SELF)?;
        Ok((offered, events::bind_interdomain(DOMID_SELF, offered.0)?))
    });
    let (offered, bound): (Port, Port) = match ports {
        Ok(ports) => ports,
        Err(error) => return println!("{name}: FAIL a loopback channel: {error}"),
    };
    let mut failed = false;
    row(
        "send",
        timed(rounds_of("send"), || {
            failed |= bound.send().is_err();
        }),
    );
    if failed || !offered.take_pending() {
        return println!("{name}: FAIL loopback sends (failed: {failed})");
    }

    irq::set_handler(on_interrupt);
    irq::init_distributor();
    irq::init_cpu(0, 1 << events::UPCALL_PPI);
    irq::enable();
    let before = UPCALLS.load(Ordering::Acquire);
    row(
        "send-upcall",
        timed(rounds_of("send-upcall"), || {
            failed |= bound.send().is_err();
        }),
    );
    let upcalls = UPCALLS.load(Ordering::Acquire) - before;
    let sends = rounds_of("send-upcall");
    if failed || u64::from(upcalls) != sends {
        return println!("{name}: FAIL {upcalls} upcalls for {sends} sends (failed: {failed})");
    }

    // A page granted to ourselves, and a frame to copy it into.
    let own = crate::grants::own_domid();
    let pages = grants::init(1)
        .ok()
        .and_then(|()| Some((SharedPage::allocate()?, SharedPage::allocate()?)));
    let Some((granted, target)) = pages else {
        return println!("{name}: FAIL grant table or pages");
    };
    const GREF: u32 = 8;
    if let Err(error) = grants::grant_access(GREF, own, granted.gfn(), false) {
        return println!("{name}: FAIL self-grant: {error}");
    }
    granted.write_u64(0, 0x5eed_f00d);
    let mut segment = [gnttab_copy {
        source: gnttab_copy_ptr { domid: DOMID_SELF, ..Default::default() },
        dest: gnttab_copy_ptr { domid: DOMID_SELF, ..Default::default() },
        len: PAGE_SIZE as u16,
        flags: gt::GNTCOPY_source_gref,
        ..Default::default()
    }];
    segment[0].source.set_gref(GREF);
    segment[0].dest.set_gmfn(u64::from(target.gfn()));
    row(
        "copy",
        timed(rounds_of("copy"), || {
            failed |= grants::copy(&mut segment) != 0 || segment[0].status != gt::GNTST_okay;
        }),
    );
    if failed || target.read_u64(0) != 0x5eed_f00d {
        return println!("{name}: FAIL self-grant copies (status {})", segment[0].status);
    }

    let at = MAP_AREA;
    row(
        "map-unmap",
        timed(rounds_of("map-unmap"), || {
            let done =
                grants::map(own, GREF, at, false).and_then(|handle| grants::unmap(at, handle));
            failed |= done.is_err();
        }),
    );
    if failed {
        return println!("{name}: FAIL self-grant map/unmap");
    }
    println!("{name}: PASS fastpath ({all} rounds, {empty} ns for the empty loop)");
}

/// Ends the wait for the start time: masks the virtual timer (it stays expired).
fn stop_timer(intid: u32) {
    if intid == 27 {
        // SAFETY: masks this vCPU's own virtual timer (CNTV_CTL_EL0.IMASK); nothing else changes.
        unsafe {
            core::arch::asm!("msr cntv_ctl_el0, {0}", "isb", in(reg) 0b11u64, options(nostack))
        };
    }
}

/// `smp-bench` (`start_ms=<t>`, `rounds=<n>`, default 20,000): sleeps until virtual time `t`
/// (so every guest of the benchmark starts together), then makes `n` rounds of a null hypercall
/// and a loopback `EVTCHNOP_send`, and prints `NAME: bench smp ops=<2n> from=<ns> to=<ns>`
/// (virtual nanoseconds: instructions of all pCPUs together, under `-icount shift=0`).
pub fn smp_bench(name: &str, info: &StartInfo) {
    let arg = |key: &str, default: u64| {
        info.bootarg(key).and_then(|value| value.parse().ok()).unwrap_or(default)
    };
    let (start, rounds) = (arg("start_ms", 500) * 1_000_000, arg("rounds", 20_000));
    let ports = events::init().and_then(|()| {
        let offered = events::alloc_unbound(DOMID_SELF, DOMID_SELF)?;
        events::bind_interdomain(DOMID_SELF, offered.0)
    });
    let bound = match ports {
        Ok(port) => port,
        Err(error) => return println!("{name}: FAIL a loopback channel: {error}"),
    };
    irq::set_handler(stop_timer);
    irq::init_distributor();
    irq::init_cpu(0, 1 << 27);
    let frequency: u64;
    // SAFETY: reading CNTFRQ_EL0 has no side effect.
    unsafe { core::arch::asm!("mrs {0}, cntfrq_el0", out(reg) frequency, options(nomem, nostack)) };
    // The first counter value at or after the start time: the timer never fires before it.
    let compare = (u128::from(start) * u128::from(frequency)).div_ceil(1_000_000_000) as u64;
    crate::guest::arm_virtual_timer_at(compare);
    irq::enable();
    while !irq::wait_unless(|| nanoseconds(counter()) >= start) {}
    let from = nanoseconds(counter());
    let mut failed = false;
    for _ in 0..rounds {
        core::hint::black_box(hypercall::xen_version(XENVER_version, 0));
        failed |= bound.send().is_err();
    }
    let to = nanoseconds(counter());
    if failed {
        return println!("{name}: FAIL a loopback send failed");
    }
    println!("{name}: bench smp ops={} from={from} to={to}", 2 * rounds);
}
