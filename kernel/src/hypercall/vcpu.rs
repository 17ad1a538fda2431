//! `__HYPERVISOR_sched_op` and `__HYPERVISOR_vcpu_op` (`xen/include/public/sched.h`,
//! `vcpu.h`): a vCPU yielding, blocking, polling, shutting its domain (or, when allowed, another)
//! down, and placing its `vcpu_info` and run-state area.

use xenolith_abi::xen::errno::XenError;
use xenolith_abi::xen::sched;
use xenolith_abi::xen::vcpu as v;
use xenolith_kernel::policy::Operation;

use super::Outcome;
use crate::domain::{Caller, VcpuState};
use crate::mm::guest_access::read_struct;

pub fn sched_op(args: [u64; 5], caller: &mut Caller<'_>) -> Result<Outcome, XenError> {
    let slot = caller.vcpu_slot;
    // Whether the caller stopped running (it yielded, blocked, or its domain shut down).
    let stopped = match args[0] as u32 {
        sched::SCHEDOP_yield => {
            crate::sched::yield_now(slot);
            true
        }
        sched::SCHEDOP_block => {
            // Xen on Arm (`vcpu_block_enable_events`): the caller's interrupts are unmasked, and
            // it returns at once when one is already deliverable.
            caller.irqs_masked = false;
            let pending = crate::event::need_delivery(caller.table, slot);
            if let Some(vcpu) = caller.table.vcpu_mut(slot).filter(|_| !pending) {
                vcpu.state = VcpuState::Blocked;
                crate::sched::sleep(slot);
            }
            !pending
        }
        sched::SCHEDOP_poll => crate::event::poll(args[1], caller)?,
        sched::SCHEDOP_shutdown => {
            // Xen takes any reason, as a byte (`domain_shutdown(d, (u8)reason)`).
            let reason: u32 = read_struct(args[1])?;
            shutdown(caller, caller.domain, reason);
            true
        }
        sched::SCHEDOP_shutdown_code => {
            let reason: u32 = read_struct(args[1])?;
            let domain = caller.table.domain_mut(caller.domain).ok_or(XenError::ESRCH)?;
            domain.shutdown_code.get_or_insert(reason as u8);
            false
        }
        sched::SCHEDOP_remote_shutdown => remote_shutdown(args[1], caller)?,
        sched::SCHEDOP_watchdog => {
            let request: sched::sched_watchdog = read_struct(args[1])?;
            return watchdog(request, caller).map(|id| Outcome::Return(i64::from(id)));
        }
        // Only Xen's hardware domain may; Xenolith has none.
        sched::SCHEDOP_pin_override => return Err(XenError::EPERM),
        _ => return Err(XenError::ENOSYS),
    };
    Ok(if stopped { Outcome::Reschedule(0) } else { Outcome::Return(0) })
}

/// `SCHEDOP_remote_shutdown`: shuts a domain down with a `SHUTDOWN_*` reason, as Xen's
/// `do_sched_op` does: the domain must exist by its own id (`DOMID_SELF` names none, `-ESRCH`),
/// then the policy decides (`-EPERM`; Xen's `XSM_DM_PRIV` lets no domain name itself); any
/// reason is taken, as [`shutdown`] says. Its restart policy then applies as for a shutdown from
/// inside. `Ok(true)`: the caller shut itself down and must be rescheduled.
fn remote_shutdown(arg: u64, caller: &mut Caller<'_>) -> Result<bool, XenError> {
    let request: sched::sched_remote_shutdown = read_struct(arg)?;
    let target = request.domain_id;
    let domain = caller.table.domain(target).ok_or(XenError::ESRCH)?;
    let target_is_control = domain.capabilities.control;
    caller.allow(Operation::RemoteShutdown { target, target_is_control })?;
    log::info!("domain {target}: shut down by domain {} (SCHEDOP_remote_shutdown)", caller.domain);
    shutdown(caller, target, request.reason);
    Ok(target == caller.domain)
}

/// Xen's `domain_shutdown`: the reason is a byte, and a `SCHEDOP_shutdown_code` given earlier
/// wins over it.
fn shutdown(caller: &mut Caller<'_>, target: u16, reason: u32) {
    let code = caller.table.domain(target).and_then(|domain| domain.shutdown_code);
    let reason = u32::from(code.unwrap_or(reason as u8));
    crate::lifecycle::shutdown_domain(caller.table, target, reason);
}

/// `SCHEDOP_watchdog` (Xen's `domain_watchdog`): id 0 starts one of two timers and returns its
/// id (`-ENOSPC` when both run); otherwise it feeds timer `id`, or stops it with timeout 0
/// (`-EINVAL` for one not running). An expired timer shuts the domain down (`watchdog`).
fn watchdog(request: sched::sched_watchdog, caller: &mut Caller<'_>) -> Result<u32, XenError> {
    let deadline = crate::sched::now() + u64::from(request.timeout) * 1_000_000_000;
    let domain = caller.table.domain_mut(caller.domain).ok_or(XenError::ESRCH)?;
    if request.id == 0 {
        let free = domain.watchdogs.iter().position(Option::is_none).ok_or(XenError::ENOSPC)?;
        domain.watchdogs[free] = Some(deadline);
        return Ok(free as u32 + 1);
    }
    let timer = domain.watchdogs.get_mut(request.id as usize - 1).ok_or(XenError::EINVAL)?;
    if timer.is_none() {
        return Err(XenError::EINVAL);
    }
    *timer = (request.timeout != 0).then_some(deadline);
    Ok(0)
}

/// `vcpu_op(cmd, vcpuid, arg)` on the caller's own vCPUs (`xen/include/public/vcpu.h`), as Xen
/// on Arm answers it (`do_vcpu_op`, xen/arch/arm/domain.c): `-ENOENT` for a vCPU the domain
/// lacks, whatever the command; then only `register_vcpu_info` and
/// `register_runstate_memory_area` exist, and every other command is `-EINVAL` (vCPUs come up
/// and down through PSCI, and time comes from the architected timer).
pub fn vcpu_op(args: [u64; 5], caller: &mut Caller<'_>) -> Result<Outcome, XenError> {
    let command = args[0] as u32;
    let domain = caller.table.domain(caller.domain).ok_or(XenError::ESRCH)?;
    // Xen takes `vcpuid` as an unsigned int.
    let slot = *domain.vcpus.get(args[1] as u32 as usize).ok_or(XenError::ENOENT)?;
    if command != v::VCPUOP_register_vcpu_info && command != v::VCPUOP_register_runstate_memory_area
    {
        return Err(XenError::EINVAL);
    }
    let this = slot == caller.vcpu_slot;
    if command == v::VCPUOP_register_vcpu_info {
        let (gfn, offset) = crate::event::read_register_vcpu_info(args[2])?;
        let (table, domain) = (&mut *caller.table, caller.domain);
        crate::event::register_vcpu_info(table, domain, slot, this, gfn, offset)?;
        return Ok(Outcome::Return(0));
    }
    // Xen 4.17 `common/domain.c`: the handle is kept and the area written at once, through the
    // caller's translation, even for another vCPU of its domain.
    let request: v::vcpu_register_runstate_memory_area = read_struct(args[2])?;
    let area = request.addr.address();
    let flag = domain.vm_assist & crate::sched::RUNSTATE_UPDATE_FLAG != 0;
    let vcpu = caller.table.vcpu_mut(slot).ok_or(XenError::ENOENT)?;
    vcpu.runstate_area = (area != 0).then_some(area);
    if this {
        // Running now: bring its times up to date before they are copied.
        vcpu.enter_runstate(v::RUNSTATE_running, crate::sched::now());
    }
    if area != 0 {
        // Xen keeps the area even when this first copy fails: it is the guest's loss.
        let _ = crate::sched::write_runstate(area, &vcpu.runstate, flag);
    }
    Ok(Outcome::Return(0))
}
