//! `__HYPERVISOR_sched_op` and `__HYPERVISOR_vcpu_op` (`xen/include/public/sched.h`,
//! `vcpu.h`): a vCPU yielding, blocking, polling, shutting its domain (or, when allowed, another)
//! down, and bringing its domain's vCPUs up and down, with their single-shot timers and
//! `vcpu_info` placement.

use xenolith_abi::xen::errno::XenError;
use xenolith_abi::xen::sched;
use xenolith_abi::xen::vcpu::{self as v, vcpu_set_singleshot_timer};
use xenolith_kernel::policy::Operation;

use super::Outcome;
use crate::domain::{Caller, VcpuState};
use crate::mm::guest_access::{read_struct, write_struct};

pub fn sched_op(args: [u64; 5], caller: &mut Caller<'_>) -> Result<Outcome, XenError> {
    let slot = caller.vcpu_slot;
    // Whether the caller stopped running (it yielded, blocked, or its domain shut down).
    let stopped = match args[0] as u32 {
        sched::SCHEDOP_yield => {
            crate::sched::yield_now(slot);
            true
        }
        sched::SCHEDOP_block => {
            if let Some(vcpu) = caller.table.vcpu_mut(slot) {
                vcpu.state = VcpuState::Blocked;
            }
            crate::sched::sleep(slot);
            true
        }
        sched::SCHEDOP_poll => crate::event::poll(args[1], caller)?,
        sched::SCHEDOP_shutdown => {
            let reason: u32 = read_struct(args[1])?;
            if reason > sched::SHUTDOWN_MAX {
                return Err(XenError::EINVAL);
            }
            crate::lifecycle::shutdown_domain(caller.table, caller.domain, reason);
            true
        }
        sched::SCHEDOP_remote_shutdown => remote_shutdown(args[1], caller)?,
        _ => return Err(XenError::ENOSYS),
    };
    Ok(if stopped { Outcome::Reschedule(0) } else { Outcome::Return(0) })
}

/// `SCHEDOP_remote_shutdown`: shuts another domain down with a `SHUTDOWN_*` reason, as Xen's
/// `do_sched_op` does (`-ESRCH`, then the policy's `-EPERM`, then the reason's `-EINVAL`). Its
/// restart policy then applies as for a shutdown from inside. `Ok(true)`: the caller shut
/// itself down and must be rescheduled.
fn remote_shutdown(arg: u64, caller: &mut Caller<'_>) -> Result<bool, XenError> {
    let request: sched::sched_remote_shutdown = read_struct(arg)?;
    let target = caller.resolve(request.domain_id);
    let domain = caller.table.domain(target).ok_or(XenError::ESRCH)?;
    let target_is_control = domain.capabilities.control;
    if target != caller.domain {
        caller.allow(Operation::RemoteShutdown { target, target_is_control })?;
    }
    if request.reason > sched::SHUTDOWN_MAX {
        return Err(XenError::EINVAL);
    }
    log::info!("domain {target}: shut down by domain {} (SCHEDOP_remote_shutdown)", caller.domain);
    crate::lifecycle::shutdown_domain(caller.table, target, request.reason);
    Ok(target == caller.domain)
}

/// `vcpu_op(cmd, vcpuid, arg)` on the caller's own vCPUs (`xen/include/public/vcpu.h`). Xen on
/// Arm leaves most of these to PSCI and the architected timer; Xenolith offers them too.
pub fn vcpu_op(args: [u64; 5], caller: &mut Caller<'_>) -> Result<Outcome, XenError> {
    let domain = caller.table.domain(caller.domain).ok_or(XenError::ESRCH)?;
    let slot = *domain.vcpus.get(args[1] as usize).ok_or(XenError::ENOENT)?;
    let this = slot == caller.vcpu_slot;
    let vcpu = caller.table.vcpu_mut(slot).ok_or(XenError::ENOENT)?;
    match args[0] as u32 {
        v::VCPUOP_is_up => return Ok(Outcome::Return(i64::from(vcpu.state != VcpuState::Down))),
        v::VCPUOP_up if !vcpu.initialised => return Err(XenError::EINVAL),
        v::VCPUOP_up if vcpu.state == VcpuState::Down => {
            vcpu.state = VcpuState::Runnable;
            crate::sched::wake(slot);
        }
        v::VCPUOP_up => {}
        v::VCPUOP_down if vcpu.state == VcpuState::Down => {}
        v::VCPUOP_down => {
            vcpu.state = VcpuState::Down;
            crate::sched::sleep(slot);
            if this {
                return Ok(Outcome::Reschedule(0));
            }
        }
        v::VCPUOP_set_singleshot_timer | v::VCPUOP_stop_singleshot_timer if !this => {
            return Err(XenError::EINVAL)
        }
        v::VCPUOP_set_singleshot_timer => {
            let request: vcpu_set_singleshot_timer = read_struct(args[2])?;
            let timeout = request.timeout_abs_ns;
            if request.flags & v::VCPU_SSHOTTMR_future != 0 && timeout < crate::sched::now() {
                return Err(XenError::ETIME);
            }
            vcpu.singleshot_deadline = Some(timeout);
        }
        v::VCPUOP_stop_singleshot_timer => vcpu.singleshot_deadline = None,
        v::VCPUOP_register_runstate_memory_area => {
            // Xen 4.17 `common/domain.c`: the handle is kept and the area written at once,
            // through the caller's translation, even for another vCPU of its domain.
            let request: v::vcpu_register_runstate_memory_area = read_struct(args[2])?;
            let area = request.addr.address();
            vcpu.runstate_area = (area != 0).then_some(area);
            if this {
                // Running now: bring its times up to date before they are copied.
                vcpu.enter_runstate(v::RUNSTATE_running, crate::sched::now());
            }
            if area != 0 {
                write_struct(area, &vcpu.runstate)?;
            }
        }
        v::VCPUOP_register_vcpu_info => {
            let (gfn, offset) = crate::event::read_register_vcpu_info(args[2])?;
            let (table, domain) = (&mut *caller.table, caller.domain);
            crate::event::register_vcpu_info(table, domain, slot, this, gfn, offset)?;
        }
        _ => return Err(XenError::ENOSYS),
    }
    Ok(Outcome::Return(0))
}
