//! Event channels for domains, the 2-level ABI as a Linux guest uses it
//! (`xen/include/public/event_channel.h`, `xen/include/public/xen.h`): the shared-info page,
//! ports, and the upcall.
//!
//! [`init`] maps the shared-info page (at [`SHARED_INFO_ADDRESS`], normal memory in the
//! runtime's identity map, so the bitmaps take atomics). A domain that wants upcalls enables
//! [`UPCALL_PPI`] with `irq::init_cpu` and calls [`upcall`] from its interrupt handler for it;
//! [`upcall`] clears and reports every pending, unmasked port as Linux's
//! `xen_evtchn_do_upcall` does. A domain that only polls needs neither.
//!
//! # Invariants
//! - The shared-info page and each registered `vcpu_info` are touched only with atomics: the
//!   hypervisor changes them concurrently.
//! - [`init`] runs once, before any other function here.

use core::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};

use xenolith_abi::xen::arch_arm::GUEST_EVTCHN_PPI;
use xenolith_abi::xen::errno::XenError;
use xenolith_abi::xen::event_channel::{self as ec, evtchn_port_t};
use xenolith_abi::xen::hypercall::{self as number, DOMID_SELF};
use xenolith_abi::xen::memory::{
    xen_add_to_physmap, XENMAPSPACE_shared_info, XENMEM_add_to_physmap,
};
use xenolith_abi::xen::sched::{sched_poll, SCHEDOP_poll};
use zerocopy::{Immutable, IntoBytes};

use crate::hypercall;

/// Where [`init`] maps the shared-info page: a guest frame in RAM bank 0's window above any
/// domain's RAM, so the runtime maps it as normal memory.
pub const SHARED_INFO_ADDRESS: u64 = 0xF000_0000;
const PENDING: u64 = SHARED_INFO_ADDRESS + 48;
const MASK: u64 = PENDING + 512;

/// Most vCPUs whose `vcpu_info` the runtime registers.
const MAX_VCPUS: usize = 8;

/// Per-vCPU `vcpu_info` areas registered with `VCPUOP_register_vcpu_info` (64-byte slots).
#[repr(C, align(4096))]
struct VcpuInfoPage([[AtomicU64; 8]; MAX_VCPUS]);

static VCPU_INFOS: VcpuInfoPage =
    VcpuInfoPage([const { [const { AtomicU64::new(0) }; 8] }; MAX_VCPUS]);
static REGISTERED: [AtomicBool; MAX_VCPUS] = [const { AtomicBool::new(false) }; MAX_VCPUS];

/// An event-channel port of this domain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Port(pub evtchn_port_t);

fn result(value: i64) -> Result<(), XenError> {
    if value == 0 {
        Ok(())
    } else {
        Err(XenError::from_return(value).unwrap_or(XenError::EINVAL))
    }
}

/// `event_channel_op(cmd, op)`: Xen's answer, with `op` updated in place.
pub fn op<T: IntoBytes + Immutable>(cmd: u32, op: &mut T) -> Result<(), XenError> {
    result(hypercall::raw(
        number::__HYPERVISOR_event_channel_op,
        [u64::from(cmd), (op as *mut T) as u64, 0, 0, 0],
    ))
}

fn word(address: u64, index: u32) -> &'static AtomicU64 {
    let at = address + 8 * u64::from(index / 64 % 64);
    // SAFETY: `address` is PENDING or MASK, inside the shared-info page mapped by `init`
    // (module invariant) as normal memory; the word index is below 64, so `at` is an aligned
    // word of that 512-byte array.
    unsafe { &*(at as *const AtomicU64) }
}

/// Maps the shared-info page (`XENMEM_add_to_physmap`, `XENMAPSPACE_shared_info`).
pub fn init() -> Result<(), XenError> {
    let request = xen_add_to_physmap {
        domid: DOMID_SELF,
        size: 0,
        space: XENMAPSPACE_shared_info,
        idx: 0,
        gpfn: SHARED_INFO_ADDRESS / 4096,
    };
    result(hypercall::memory_op(XENMEM_add_to_physmap, (&raw const request) as u64))
}

/// Moves vCPU `vcpu`'s `vcpu_info` into this runtime's page (`VCPUOP_register_vcpu_info`), as
/// Linux does for every vCPU; vCPUs other than 0 get upcalls only after this.
pub fn register_vcpu_info(vcpu: u32) -> Result<(), XenError> {
    let slot = VCPU_INFOS.0.get(vcpu as usize).ok_or(XenError::EINVAL)?;
    let address = slot.as_ptr() as u64;
    let request = xenolith_abi::xen::vcpu::vcpu_register_vcpu_info {
        mfn: address / 4096,
        offset: (address % 4096) as u32,
        rsvd: 0,
    };
    // Switch the upcall handler over first: the hypervisor marks everything pending in the new
    // area as it registers it, and raises the upcall only if that was not pending already.
    let before = REGISTERED[vcpu as usize].swap(true, Ordering::AcqRel);
    let registered = result(hypercall::vcpu_op(
        xenolith_abi::xen::vcpu::VCPUOP_register_vcpu_info,
        vcpu,
        (&raw const request) as u64,
    ));
    if registered.is_err() {
        REGISTERED[vcpu as usize].store(before, Ordering::Release);
    }
    registered
}

/// The `vcpu_info` of `vcpu`: `(evtchn_upcall_pending, evtchn_pending_sel)`.
fn vcpu_info(vcpu: u32) -> Option<(&'static AtomicU8, &'static AtomicU64)> {
    let index = vcpu as usize;
    let base = if REGISTERED.get(index)?.load(Ordering::Acquire) {
        VCPU_INFOS.0[index].as_ptr() as u64
    } else if vcpu == 0 {
        SHARED_INFO_ADDRESS
    } else {
        return None;
    };
    // SAFETY: `base` is a 48-byte `vcpu_info` (in the mapped shared-info page or this runtime's
    // registered page), 8-byte aligned; byte 0 is the pending flag.
    let flag = unsafe { &*(base as *const AtomicU8) };
    // SAFETY: as above; bytes 8..16 are the selector.
    let selector = unsafe { &*((base + 8) as *const AtomicU64) };
    Some((flag, selector))
}

/// Handles the upcall on vCPU `vcpu` (call for [`GUEST_EVTCHN_PPI`]): clears the upcall flag,
/// then clears and passes to `each` every pending, unmasked port, until no upcall is pending.
pub fn upcall(vcpu: u32, mut each: impl FnMut(Port)) {
    let Some((pending_flag, selector)) = vcpu_info(vcpu) else { return };
    while pending_flag.swap(0, Ordering::AcqRel) != 0 {
        let mut words = selector.swap(0, Ordering::AcqRel);
        while words != 0 {
            let index = words.trailing_zeros();
            words &= words - 1;
            let first = index * 64;
            let mut ports = word(PENDING, first).load(Ordering::Acquire)
                & !word(MASK, first).load(Ordering::Acquire);
            while ports != 0 {
                let bit = ports.trailing_zeros();
                ports &= ports - 1;
                word(PENDING, first).fetch_and(!(1 << bit), Ordering::AcqRel);
                each(Port(first + bit));
            }
        }
    }
}

/// The PPI the upcall arrives on (Xen's `GUEST_EVTCHN_PPI`, named in the DTB).
pub const UPCALL_PPI: u32 = GUEST_EVTCHN_PPI;

/// `EVTCHNOP_alloc_unbound`: a port of `dom` (usually [`DOMID_SELF`]) that `remote` may bind.
pub fn alloc_unbound(dom: u16, remote: u16) -> Result<Port, XenError> {
    let mut request = ec::evtchn_alloc_unbound { dom, remote_dom: remote, port: 0 };
    op(ec::EVTCHNOP_alloc_unbound, &mut request)?;
    Ok(Port(request.port))
}

/// `EVTCHNOP_bind_interdomain`: connects a new local port to `remote_port` of `remote`.
pub fn bind_interdomain(remote: u16, remote_port: evtchn_port_t) -> Result<Port, XenError> {
    let mut request =
        ec::evtchn_bind_interdomain { remote_dom: remote, _pad: 0, remote_port, local_port: 0 };
    op(ec::EVTCHNOP_bind_interdomain, &mut request)?;
    Ok(Port(request.local_port))
}

/// `EVTCHNOP_bind_virq`: a port for VIRQ `virq` on vCPU `vcpu`.
pub fn bind_virq(virq: u32, vcpu: u32) -> Result<Port, XenError> {
    let mut request = ec::evtchn_bind_virq { virq, vcpu, port: 0 };
    op(ec::EVTCHNOP_bind_virq, &mut request)?;
    Ok(Port(request.port))
}

/// `EVTCHNOP_bind_ipi`: a port that signals vCPU `vcpu` of this domain.
pub fn bind_ipi(vcpu: u32) -> Result<Port, XenError> {
    let mut request = ec::evtchn_bind_ipi { vcpu, port: 0 };
    op(ec::EVTCHNOP_bind_ipi, &mut request)?;
    Ok(Port(request.port))
}

/// `EVTCHNOP_reset` of domain `dom`.
pub fn reset(dom: u16) -> Result<(), XenError> {
    op(ec::EVTCHNOP_reset, &mut ec::evtchn_reset { dom })
}

/// `EVTCHNOP_status` of `port` of domain `dom`.
pub fn status(dom: u16, port: evtchn_port_t) -> Result<ec::evtchn_status, XenError> {
    let mut request = ec::evtchn_status { dom, _pad: 0, port, status: 0, vcpu: 0, u: [0; 8] };
    op(ec::EVTCHNOP_status, &mut request)?;
    Ok(request)
}

/// `SCHEDOP_poll`: blocks until one of `ports` is pending or the absolute system time
/// `timeout` (ns; 0: none) passes. Returns at once if one is pending already.
pub fn poll(ports: &[Port], timeout: u64) -> Result<(), XenError> {
    let request = sched_poll {
        ports: xenolith_abi::xen::hypercall::GuestHandle::new(ports.as_ptr() as u64),
        nr_ports: ports.len() as u32,
        _pad: 0,
        timeout,
    };
    result(hypercall::sched_op(SCHEDOP_poll, (&raw const request) as u64))
}

impl Port {
    /// `EVTCHNOP_send`.
    pub fn send(self) -> Result<(), XenError> {
        op(ec::EVTCHNOP_send, &mut ec::evtchn_send { port: self.0 })
    }

    /// `EVTCHNOP_close`.
    pub fn close(self) -> Result<(), XenError> {
        op(ec::EVTCHNOP_close, &mut ec::evtchn_close { port: self.0 })
    }

    /// `EVTCHNOP_unmask`: clears the mask bit (and delivers what is pending).
    pub fn unmask(self) -> Result<(), XenError> {
        op(ec::EVTCHNOP_unmask, &mut ec::evtchn_unmask { port: self.0 })
    }

    /// `EVTCHNOP_bind_vcpu`: delivers this port's events to `vcpu`.
    pub fn bind_vcpu(self, vcpu: u32) -> Result<(), XenError> {
        op(ec::EVTCHNOP_bind_vcpu, &mut ec::evtchn_bind_vcpu { port: self.0, vcpu })
    }

    /// Sets the mask bit (no hypercall in the 2-level ABI).
    pub fn mask(self) {
        word(MASK, self.0).fetch_or(1 << (self.0 % 64), Ordering::AcqRel);
    }

    /// Whether the port is pending.
    pub fn is_pending(self) -> bool {
        word(PENDING, self.0).load(Ordering::Acquire) & (1 << (self.0 % 64)) != 0
    }

    /// Clears the pending bit; whether it was set.
    pub fn take_pending(self) -> bool {
        let bit = 1 << (self.0 % 64);
        word(PENDING, self.0).fetch_and(!bit, Ordering::AcqRel) & bit != 0
    }
}
