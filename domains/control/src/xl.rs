//! The `xl`-like part: listing domains, destroying one, reading the free memory.

use xenolith_abi::xen::domctl::*;
use xenolith_abi::xen::sysctl::{
    xen_sysctl, xen_sysctl_physinfo, SysctlPayload, XEN_SYSCTL_physinfo,
};
use xenolith_runtime::hypercall;

/// A domctl on `domain` with `payload`; Xen's result and the answered structure.
pub fn domctl(cmd: u32, domain: u16, payload: DomctlPayload) -> (i64, xen_domctl) {
    let mut op = xen_domctl { cmd, interface_version: 0, domain, _pad: [0; 3], u: payload };
    let result = hypercall::domctl(&mut op);
    (result, op)
}

/// An all-zero domctl payload.
pub fn empty() -> DomctlPayload {
    DomctlPayload::new(&[0u64; 16])
}

/// Free frames, from `XEN_SYSCTL_physinfo`.
pub fn free_pages() -> u64 {
    let mut op = xen_sysctl {
        cmd: XEN_SYSCTL_physinfo,
        interface_version: 0,
        u: SysctlPayload::new(&[0u64; 16]),
    };
    if hypercall::sysctl(&mut op) != 0 {
        return 0;
    }
    op.u.read::<xen_sysctl_physinfo>().free_pages
}

/// `xl list`: every domain with its memory, vCPUs, state and CPU time.
pub fn list() {
    hypercall::print_domain_list("control: ");
}

/// Whether domain `id` still exists (dying domains included).
pub fn exists(id: u16) -> bool {
    let (result, op) = domctl(XEN_DOMCTL_getdomaininfo, id, empty());
    result == 0 && op.u.read::<xen_domctl_getdomaininfo>().domain == id
}

/// `xl destroy`: asks for the destruction, then waits until the domain is gone (the core
/// finishes once no pCPU runs it any more). Gives up, with `Err(0)`, after `polls` looks.
pub fn destroy(id: u16, polls: u64) -> Result<(), i64> {
    match domctl(XEN_DOMCTL_destroydomain, id, empty()).0 {
        0 => {}
        error => return Err(error),
    }
    for _ in 0..polls {
        if !exists(id) {
            return Ok(());
        }
        hypercall::sched_op(xenolith_abi::xen::sched::SCHEDOP_yield, 0);
    }
    Err(0)
}
