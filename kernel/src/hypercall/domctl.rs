//! `domctl`: the control domain's operations on other domains (Xen's
//! `xen/include/public/domctl.h`, interface version 0x15 of Xen 4.17).
//!
//! Every call is checked in Xen's order: the structure is copied in (`-EFAULT`), the interface
//! version compared (`-EACCES`), the policy asked (`-EPERM`), the target looked up (`-ESRCH`),
//! the arguments checked (`-EINVAL`); only then does anything change.
//!
//! # Invariants
//! - An unprivileged caller learns nothing: the policy answers before the target is looked up.
//! - A domain cannot pause or destroy itself: the policy refuses any change to a control domain
//!   (`-EPERM`), and the check for `-EINVAL` (Xen's answer) stays behind it as a second line.

use xenolith_abi::xen::arch_arm::{vcpu_guest_context, xen_domctl_vcpucontext};
use xenolith_abi::xen::domctl::{self as dc, xen_domctl, xen_domctl_getdomaininfo};
use xenolith_abi::xen::errno::XenError;
use xenolith_abi::xen::private;
use xenolith_kernel::policy::{DomainId, Operation};
use xenolith_kernel::sched::CpuMask;
use zerocopy::{FromZeros, IntoBytes};

use crate::domain::Caller;
use crate::domain::{DomainState, Table, VcpuState};
use crate::mm::guest_access::{read_struct, GuestMemory};

/// `__HYPERVISOR_domctl(struct xen_domctl *)`.
pub fn domctl(va: u64, caller: &mut Caller<'_>) -> Result<i64, XenError> {
    let mut op: xen_domctl = read_struct(va)?;
    if op.interface_version != dc::XEN_DOMCTL_INTERFACE_VERSION {
        return Err(XenError::EACCES);
    }
    let mut target = op.domain;
    // Xen's `do_domctl`: the domain exists before privilege is asked (`-ESRCH`), but for
    // createdomain and Xenolith's own bundle queries; getdomaininfo takes the next domain at or
    // after the id, and a reserved id there is `-EINVAL`.
    match op.cmd {
        dc::XEN_DOMCTL_createdomain
        | private::XENOLITH_DOMCTL_BUNDLE_INFO
        | private::XENOLITH_DOMCTL_BUNDLE_MODULE
        | private::XENOLITH_DOMCTL_DOMAIN_INFO => {}
        dc::XEN_DOMCTL_getdomaininfo => {
            if target >= xenolith_abi::xen::hypercall::DOMID_FIRST_RESERVED {
                return Err(XenError::EINVAL);
            }
            target = domain_ids(caller.table, target).next().ok_or(XenError::ESRCH)?;
        }
        _ => {
            caller.table.domain(target).ok_or(XenError::ESRCH)?;
        }
    }
    // (The two domain-info queries are read-only too, but have an operation of their own.)
    let read_only = matches!(
        op.cmd,
        dc::XEN_DOMCTL_getvcpuaffinity
            | dc::XEN_DOMCTL_getvcpuinfo
            | private::XENOLITH_DOMCTL_BUNDLE_INFO
            | private::XENOLITH_DOMCTL_BUNDLE_MODULE
    ) || (op.cmd == dc::XEN_DOMCTL_scheduler_op
        && op.u.read::<dc::xen_domctl_scheduler_op>().cmd == dc::XEN_DOMCTL_SCHEDOP_getinfo);
    // A domain being created holds no capability yet, whatever id it asks for.
    let target_is_control = op.cmd != dc::XEN_DOMCTL_createdomain
        && caller.table.domain(target).is_some_and(|domain| domain.capabilities.control);
    let operation = match op.cmd {
        dc::XEN_DOMCTL_getdomaininfo | private::XENOLITH_DOMCTL_DOMAIN_INFO => {
            Operation::DomainInfo { target: caller.resolve(target) }
        }
        _ => Operation::Domctl { target, target_is_control, read_only },
    };
    // Xenolith's own domain-info query answers a domain about itself (its generation and
    // preserved region); Xen's getdomaininfo does not.
    let own_info =
        op.cmd == private::XENOLITH_DOMCTL_DOMAIN_INFO && caller.resolve(target) == caller.domain;
    if !own_info {
        caller.allow(operation)?;
    }
    let write_back = match op.cmd {
        dc::XEN_DOMCTL_getdomaininfo => {
            // Xen's semantics: the first domain whose id is at least `domain` (found above).
            op.domain = target;
            op.u.write(&domain_info(caller.table, target));
            true
        }
        dc::XEN_DOMCTL_pausedomain
        | dc::XEN_DOMCTL_unpausedomain
        | dc::XEN_DOMCTL_destroydomain => {
            if target == caller.domain {
                return Err(XenError::EINVAL);
            }
            let domain = caller.table.domain_mut(target).ok_or(XenError::ESRCH)?;
            if op.cmd == dc::XEN_DOMCTL_destroydomain {
                // Destroyed on request: no restart policy brings it back.
                domain.destroy_requested = true;
                crate::lifecycle::shutdown_domain(caller.table, target, 0);
                return Ok(0);
            }
            if matches!(domain.state, DomainState::Shutdown { .. }) {
                return Err(XenError::EINVAL);
            }
            crate::lifecycle::set_paused(
                caller.table,
                target,
                op.cmd == dc::XEN_DOMCTL_pausedomain,
            );
            false
        }
        dc::XEN_DOMCTL_max_mem => {
            let limit: dc::xen_domctl_max_mem = op.u.read();
            let domain = caller.table.domain_mut(target).ok_or(XenError::ESRCH)?;
            if limit.max_memkb < domain.ram_bytes() / 1024 {
                // RAM is fixed when the domain is built; a limit below it cannot be honoured.
                return Err(XenError::EINVAL);
            }
            domain.max_memkb = limit.max_memkb;
            false
        }
        dc::XEN_DOMCTL_max_vcpus => {
            let max: dc::xen_domctl_max_vcpus = op.u.read();
            let domain = caller.table.domain(target).ok_or(XenError::ESRCH)?;
            // vCPUs are created with the domain; only the count it has is accepted.
            if max.max as usize != domain.vcpus.len() {
                return Err(XenError::EINVAL);
            }
            false
        }
        dc::XEN_DOMCTL_setvcpuaffinity | dc::XEN_DOMCTL_getvcpuaffinity => {
            let mut affinity: dc::xen_domctl_vcpuaffinity = op.u.read();
            vcpu_affinity(caller, target, op.cmd == dc::XEN_DOMCTL_setvcpuaffinity, &mut affinity)?;
            op.u.write(&affinity);
            true
        }
        dc::XEN_DOMCTL_getvcpuinfo => {
            // Xen's `XEN_DOMCTL_getvcpuinfo`: a vCPU past the domain's count is -EINVAL.
            let mut info: dc::xen_domctl_getvcpuinfo = op.u.read();
            let domain = caller.table.domain(target).ok_or(XenError::ESRCH)?;
            let slot = *domain.vcpus.get(info.vcpu as usize).ok_or(XenError::EINVAL)?;
            let vcpu = caller.table.vcpu(slot).ok_or(XenError::ESRCH)?;
            info.online = u8::from(vcpu.state != VcpuState::Down);
            info.blocked =
                u8::from(matches!(vcpu.state, VcpuState::Blocked | VcpuState::WaitingIo));
            info.running = u8::from(crate::sched::is_current(slot));
            (info.cpu_time, info.cpu) = (vcpu.runtime_ns, vcpu.processor);
            op.u.write(&info);
            true
        }
        dc::XEN_DOMCTL_scheduler_op => {
            let mut request: dc::xen_domctl_scheduler_op = op.u.read();
            scheduler_op(caller, target, &mut request)?;
            op.u.write(&request);
            true
        }
        dc::XEN_DOMCTL_createdomain => {
            let config: dc::xen_domctl_createdomain = op.u.read();
            let id =
                caller.table.create_empty((target != 0).then_some(target), config.max_vcpus)?;
            if let Err(error) = crate::sched::add_domain(caller.table, id) {
                log::error!("domain {id}: the scheduler refused its vCPUs: {error}");
                caller.table.destroy(id);
                return Err(XenError::EINVAL);
            }
            log::info!(
                "domain {id} created by domain {}: {} vCPU(s), paused",
                caller.domain,
                config.max_vcpus
            );
            op.domain = id;
            true
        }
        dc::XEN_DOMCTL_setvcpucontext => {
            let request: xen_domctl_vcpucontext = op.u.read();
            let context: vcpu_guest_context = read_struct(request.ctxt.address())?;
            caller.table.set_vcpu_context(target, request.vcpu, &context)?;
            false
        }
        private::XENOLITH_DOMCTL_DOMAIN_INFO => {
            op.u.write(&xenolith_domain_info(caller.table, caller.resolve(target))?);
            true
        }
        private::XENOLITH_DOMCTL_BUNDLE_INFO => {
            let mut info: private::XenolithBundleInfo = op.u.read();
            let bundle = crate::domain::boot_bundle().ok_or(XenError::ENOENT)?;
            let modules = &bundle.manifest.modules;
            info.count = modules.len() as u32;
            let module = modules.get(info.index as usize).ok_or(XenError::ENOENT)?;
            info.size = module.size;
            copy_name(&mut info.name, module.name);
            op.u.write(&info);
            true
        }
        private::XENOLITH_DOMCTL_BUNDLE_MODULE => {
            let request: private::XenolithBundleModule = op.u.read();
            if request.pad != 0 {
                return Err(XenError::EINVAL);
            }
            let bundle = crate::domain::boot_bundle().ok_or(XenError::ENOENT)?;
            let module = bundle.module(request.index as usize).ok_or(XenError::ENOENT)?;
            let start = usize::try_from(request.offset).map_err(|_| XenError::EINVAL)?;
            let length = usize::try_from(request.length).map_err(|_| XenError::EINVAL)?;
            let end = start.checked_add(length).ok_or(XenError::EINVAL)?;
            let bytes = module.get(start..end).ok_or(XenError::EINVAL)?;
            GuestMemory.write(request.buffer.address(), bytes)?;
            false
        }
        _ => return Err(XenError::ENOSYS),
    };
    if write_back {
        GuestMemory.write(va, op.as_bytes())?;
    }
    Ok(0)
}

/// Puts `name` in the fixed-size array `into`, zero-padded, cut short if it does not fit.
fn copy_name(into: &mut [u8], name: &str) {
    into.fill(0);
    into.iter_mut().zip(name.bytes()).for_each(|(to, byte)| *to = byte);
}

/// The ids of the domains that exist, from `first` up, in order.
pub(super) fn domain_ids(table: &Table, first: DomainId) -> impl Iterator<Item = DomainId> + '_ {
    table.domains().map(|domain| domain.id).filter(move |&id| id >= first)
}

/// `XENOLITH_DOMCTL_DOMAIN_INFO`'s answer for `id`.
fn xenolith_domain_info(
    table: &Table,
    id: DomainId,
) -> Result<private::XenolithDomainInfo, XenError> {
    use xenolith_abi::xen::hvm::HVM_PARAM_STORE_PFN;
    use xenolith_abi::xen::hvm::{HVM_PARAM_CONSOLE_EVTCHN, HVM_PARAM_STORE_EVTCHN};
    let domain = table.domain(id).ok_or(XenError::ESRCH)?;
    let mut info = private::XenolithDomainInfo::new_zeroed();
    copy_name(&mut info.name, &domain.name);
    info.generation = domain.generation;
    let capabilities = &domain.capabilities;
    info.capabilities = (u32::from(capabilities.control) * private::XENOLITH_CAP_CONTROL)
        | (u32::from(capabilities.xenstore) * private::XENOLITH_CAP_XENSTORE)
        | (u32::from(capabilities.console) * private::XENOLITH_CAP_CONSOLE);
    (info.state, info.shutdown_reason) = match domain.state {
        DomainState::Running => (private::XENOLITH_STATE_RUNNING, 0),
        DomainState::Paused => (private::XENOLITH_STATE_PAUSED, 0),
        DomainState::Shutdown { reason } => (private::XENOLITH_STATE_SHUTDOWN, reason),
    };
    info.store_gfn = domain.hvm_params[HVM_PARAM_STORE_PFN as usize];
    info.store_port = domain.hvm_params[HVM_PARAM_STORE_EVTCHN as usize] as u32;
    info.console_port = domain.hvm_params[HVM_PARAM_CONSOLE_EVTCHN as usize] as u32;
    info.restarts = domain.restarts;
    info.preserved_size = domain.preserved.map_or(0, |extent| extent.size);
    Ok(info)
}

/// `XEN_DOMCTL_getdomaininfo`'s answer for `id` (which exists).
pub(super) fn domain_info(table: &Table, id: DomainId) -> xen_domctl_getdomaininfo {
    let mut info = xen_domctl_getdomaininfo::new_zeroed();
    let Some(domain) = table.domain(id) else { return info };
    let vcpus: alloc::vec::Vec<_> =
        domain.vcpus.iter().filter_map(|&slot| table.vcpu(slot)).collect();
    let state = match domain.state {
        DomainState::Shutdown { reason } => {
            dc::XEN_DOMINF_shutdown
                | dc::XEN_DOMINF_dying
                | (reason << dc::XEN_DOMINF_shutdownshift)
        }
        DomainState::Paused => dc::XEN_DOMINF_paused,
        DomainState::Running if crate::sched::domain_running(table, id) => dc::XEN_DOMINF_running,
        DomainState::Running if vcpus.iter().all(|vcpu| vcpu.state != VcpuState::Runnable) => {
            dc::XEN_DOMINF_blocked
        }
        DomainState::Running => 0,
    };
    info.domain = id;
    info.flags = dc::XEN_DOMINF_hvm_guest | state;
    info.tot_pages = domain.ram_bytes() / 4096;
    info.max_pages = domain.max_memkb / 4;
    info.cpu_time = vcpus.iter().map(|vcpu| vcpu.runtime_ns).sum();
    info.nr_online_vcpus = vcpus.iter().filter(|vcpu| vcpu.state != VcpuState::Down).count() as u32;
    info.max_vcpu_id = vcpus.len().saturating_sub(1) as u32;
    info.gpaddr_bits = 40;
    info
}

fn read_bitmap(bitmap: &dc::xenctl_bitmap) -> Result<u64, XenError> {
    let bytes = (bitmap.nr_bits as usize).div_ceil(8).min(8);
    let mut raw = [0u8; 8];
    GuestMemory.read(bitmap.bitmap.address(), &mut raw[..bytes])?;
    let valid = if bitmap.nr_bits < 64 { (1u64 << bitmap.nr_bits) - 1 } else { u64::MAX };
    Ok(u64::from_le_bytes(raw) & valid)
}

fn write_bitmap(bitmap: &dc::xenctl_bitmap, mask: u64) -> Result<(), XenError> {
    let bytes = (bitmap.nr_bits as usize).div_ceil(8);
    let mut raw = [0u8; 64];
    raw[..8].copy_from_slice(&mask.to_le_bytes());
    GuestMemory.write(bitmap.bitmap.address(), &raw[..bytes.min(64)])
}

fn vcpu_affinity(
    caller: &mut Caller<'_>,
    target: DomainId,
    set: bool,
    affinity: &mut dc::xen_domctl_vcpuaffinity,
) -> Result<(), XenError> {
    let domain = caller.table.domain(target).ok_or(XenError::ESRCH)?;
    let slot = *domain.vcpus.get(affinity.vcpu as usize).ok_or(XenError::EINVAL)?;
    let mut params = domain.sched;
    let hard_flag = affinity.flags & dc::XEN_VCPUAFFINITY_HARD != 0;
    let soft_flag = affinity.flags & dc::XEN_VCPUAFFINITY_SOFT != 0;
    if !hard_flag && !soft_flag {
        return Err(XenError::EINVAL);
    }
    if set {
        if hard_flag {
            params.hard_affinity = CpuMask::from_bits(read_bitmap(&affinity.cpumap_hard)?);
        }
        if soft_flag {
            params.soft_affinity = CpuMask::from_bits(read_bitmap(&affinity.cpumap_soft)?);
        }
        crate::sched::set_params(slot, params).map_err(|_| XenError::EINVAL)?;
        if let Some(domain) = caller.table.domain_mut(target) {
            domain.sched = params;
        }
    }
    if hard_flag {
        write_bitmap(&affinity.cpumap_hard, params.hard_affinity.bits())?;
    }
    if soft_flag {
        write_bitmap(&affinity.cpumap_soft, params.soft_affinity.bits())?;
    }
    Ok(())
}

fn scheduler_op(
    caller: &mut Caller<'_>,
    target: DomainId,
    request: &mut dc::xen_domctl_scheduler_op,
) -> Result<(), XenError> {
    if request.sched_id != crate::sched::scheduler_id() {
        return Err(XenError::EINVAL);
    }
    let domain = caller.table.domain(target).ok_or(XenError::ESRCH)?;
    let slots = domain.vcpus.clone();
    let mut params = domain.sched;
    match request.cmd {
        dc::XEN_DOMCTL_SCHEDOP_getinfo => {
            request
                .u
                .write(&dc::xen_domctl_sched_credit2 { weight: params.weight, cap: params.cap });
        }
        dc::XEN_DOMCTL_SCHEDOP_putinfo => {
            let new: dc::xen_domctl_sched_credit2 = request.u.read();
            // Xen: a zero weight leaves the weight as it is.
            if new.weight != 0 {
                params.weight = new.weight;
            }
            params.cap = new.cap;
            for slot in slots {
                crate::sched::set_params(slot, params).map_err(|_| XenError::EINVAL)?;
            }
            if let Some(domain) = caller.table.domain_mut(target) {
                domain.sched = params;
            }
        }
        _ => return Err(XenError::EINVAL),
    }
    Ok(())
}
