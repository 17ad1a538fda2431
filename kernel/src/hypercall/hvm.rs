//! `__HYPERVISOR_hvm_op` as Xen on Arm has it (`xen/include/public/hvm/hvm_op.h`,
//! `hvm/params.h`): the parameters a guest reads (its xenstore and console ring and port) and
//! its toolstack sets.

use xenolith_abi::xen::errno::XenError;
use xenolith_kernel::policy::Operation;

use crate::domain::Caller;
use crate::mm::guest_access::{read_struct, write_struct};

/// `hvm_op(HVMOP_{set,get}_param, struct xen_hvm_param *)`, as Xen on Arm
/// (`xen/arch/arm/hvm.c`): the parameters a guest may read or the toolstack set; the other
/// sub-operations are x86's (`-ENOSYS`).
pub fn hvm_op(op: u64, arg: u64, caller: &mut Caller<'_>) -> Result<i64, XenError> {
    use xenolith_abi::xen::hvm::{self, xen_hvm_param};
    if op == hvm::HVMOP_guest_request_vm_event {
        // No domain has a monitor: a null argument is a request nobody hears, as on Xen.
        return if arg == 0 { Ok(0) } else { Err(XenError::EINVAL) };
    }
    if op != hvm::HVMOP_set_param && op != hvm::HVMOP_get_param {
        return Err(XenError::ENOSYS);
    }
    let mut param: xen_hvm_param = read_struct(arg)?;
    let target = caller.resolve(param.domid);
    caller.table.domain(target).ok_or(XenError::ESRCH)?;
    let own = target == caller.domain;
    if !own {
        caller.allow(Operation::Target { target })?;
    }
    let index = param.index;
    let monitor = index == hvm::HVM_PARAM_MONITOR_RING_PFN;
    if !monitor
        && !matches!(
            index,
            hvm::HVM_PARAM_CALLBACK_IRQ
                | hvm::HVM_PARAM_STORE_PFN
                | hvm::HVM_PARAM_STORE_EVTCHN
                | hvm::HVM_PARAM_CONSOLE_PFN
                | hvm::HVM_PARAM_CONSOLE_EVTCHN
        )
    {
        return Err(XenError::EINVAL);
    }
    let domain = caller.table.domain_mut(target).ok_or(XenError::ESRCH)?;
    if op == hvm::HVMOP_set_param || monitor {
        // For the toolstack only: the domain itself may not set them, nor read the monitor
        // ring (`hvm_allow_set_param`, `hvm_allow_get_param`).
        if own {
            return Err(XenError::EPERM);
        }
    }
    if op == hvm::HVMOP_set_param {
        domain.hvm_params[index as usize] = param.value;
        return Ok(0);
    }
    param.value = domain.hvm_params[index as usize];
    write_struct(arg, &param).map(|()| 0)
}
