//! `restart-counter`: the core's restart policy and preserved region, seen from inside.
//!
//! Each incarnation reads the counter at the start of its preserved region, checks it equals the
//! restart count the core reports, that its domain id is the one it was first built with (`self=`)
//! and that its generation grew; then it increments the counter and crashes, until it has been
//! restarted `restarts=` times (default 3). Then it prints `NAME: PASS restarted N times ...`.

use core::sync::atomic::{AtomicU64, Ordering};

use xenolith_abi::xen::arch_arm::PRESERVED_REGION_BASE;
use xenolith_abi::xen::domctl::{xen_domctl, DomctlPayload};
use xenolith_abi::xen::hypercall::DOMID_SELF;
use xenolith_abi::xen::private::{XenolithDomainInfo, XENOLITH_DOMCTL_DOMAIN_INFO};
use xenolith_runtime::{hypercall, println, StartInfo};

/// `XENOLITH_DOMCTL_DOMAIN_INFO` for `id`, or the error code.
pub(crate) fn domain_info(id: u16) -> Result<XenolithDomainInfo, i64> {
    let mut op = xen_domctl {
        cmd: XENOLITH_DOMCTL_DOMAIN_INFO,
        interface_version: 0,
        domain: id,
        _pad: [0; 3],
        u: DomctlPayload::new(&[0u64; 16]),
    };
    match hypercall::domctl(&mut op) {
        0 => Ok(op.u.read()),
        code => Err(code),
    }
}

/// The preserved counter: the first 8 bytes of the preserved region.
fn counter() -> &'static AtomicU64 {
    // SAFETY: the core maps this domain's preserved region (the manifest gives it one; checked
    // by the caller through `preserved_size`) at PRESERVED_REGION_BASE for the domain's whole
    // life; the address is 8-byte aligned and nothing else in this domain uses it.
    unsafe { &*(PRESERVED_REGION_BASE as *const AtomicU64) }
}

pub fn restart_counter(name: &str, info: &StartInfo) {
    let wanted: u32 = info.bootarg("restarts").and_then(|v| v.parse().ok()).unwrap_or(3);
    let first_id: u16 = info.bootarg("self").and_then(|v| v.parse().ok()).unwrap_or(0);
    let me = match domain_info(DOMID_SELF) {
        Ok(me) => me,
        Err(code) => return println!("{name}: FAIL domain info: {code}"),
    };
    if me.preserved_size < 4096 {
        return println!("{name}: FAIL no preserved region ({} bytes)", me.preserved_size);
    }
    match domain_info(first_id) {
        Ok(by_id) if by_id.generation == me.generation => {}
        Ok(by_id) => {
            return println!(
                "{name}: FAIL domain {first_id} is generation {}, this one is {}: the id changed",
                by_id.generation, me.generation
            )
        }
        Err(code) => return println!("{name}: FAIL domain {first_id}: {code}"),
    }
    let count = counter().load(Ordering::Acquire);
    println!(
        "{name}: incarnation after {} restarts: generation {}, preserved counter {count}",
        me.restarts, me.generation
    );
    if count != u64::from(me.restarts) {
        return println!(
            "{name}: FAIL the preserved counter is {count} after {} restarts",
            me.restarts
        );
    }
    if me.restarts >= wanted {
        println!(
            "{name}: PASS restarted {wanted} times, id {first_id} kept, generation {}, preserved region kept",
            me.generation
        );
        return;
    }
    counter().store(count + 1, Ordering::Release);
    xenolith_runtime::crash();
}
