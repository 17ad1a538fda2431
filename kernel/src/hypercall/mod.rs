//! Hypercall dispatch: Xen's hypercall numbers and sub-operations, each argument checked before
//! anything changes, each failure a Xen error code.
//!
//! # Invariants
//! - Every guest address goes through [`GuestMemory`], which translates it through both stages
//!   of the caller's own translation; a bad address is `-EFAULT`, never a core fault.
//! - Every privileged operation asks [`policy::check`] first (default deny, `-EPERM`).
//! - An unknown hypercall or sub-operation is `-ENOSYS` and changes nothing.

use xenolith_abi::xen::errno::XenError;
use xenolith_abi::xen::hypercall as call;
use xenolith_abi::xen::{console, sched, version};
use xenolith_kernel::policy::{self, Operation};

mod domctl;
mod memory_op;

use crate::domain::{Caller, VcpuState};
use crate::mm::guest_access::GuestMemory;

/// What the trap handler does after a hypercall.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Put this value in x0 and return to the caller.
    Return(i64),
    /// Put this value in x0, then let the scheduler choose (yield, block, shutdown).
    Reschedule(i64),
    /// A continuation: put these arguments in x0-x2 and run the HVC again (the rest of a batch).
    Continue([u64; 3]),
}

fn error(error: XenError) -> Outcome {
    Outcome::Return(error.to_return())
}

/// The most bytes one `CONSOLEIO_write` prints.
const CONSOLE_WRITE_MAX: usize = 4096;

/// Runs hypercall `number` with `args` for `caller`.
pub fn dispatch(number: u64, args: [u64; 5], caller: &mut Caller<'_>) -> Outcome {
    match number {
        call::__HYPERVISOR_console_io => console_io(args, caller),
        call::__HYPERVISOR_xen_version => xen_version(args, caller),
        call::__HYPERVISOR_sched_op => sched_op(args, caller),
        call::__HYPERVISOR_domctl => match domctl::domctl(args[0], caller) {
            Ok(value) => Outcome::Reschedule(value),
            Err(fault) => error(fault),
        },
        call::__HYPERVISOR_memory_op => match memory_op::memory_op(args[0], args[1], caller) {
            Ok(value) => Outcome::Return(value),
            Err(fault) => error(fault),
        },
        call::__HYPERVISOR_vcpu_op => vcpu_op(args, caller),
        call::__HYPERVISOR_grant_table_op => {
            match crate::grant::ops::grant_table_op(args, caller) {
                Ok(crate::grant::ops::Done::Result(value)) => Outcome::Return(value),
                Ok(crate::grant::ops::Done::Continue(args)) => Outcome::Continue(args),
                Err(fault) => error(fault),
            }
        }
        call::__HYPERVISOR_event_channel_op => {
            match crate::event::event_channel_op(args[0], args[1], caller) {
                Ok(value) => Outcome::Return(value),
                Err(fault) => error(fault),
            }
        }
        call::__HYPERVISOR_hvm_op => match hvm_op(args[0], args[1], caller) {
            Ok(value) => Outcome::Return(value),
            Err(fault) => error(fault),
        },
        call::__HYPERVISOR_sysctl => match domctl::sysctl(args[0], caller) {
            Ok(value) => Outcome::Return(value),
            Err(fault) => error(fault),
        },
        _ => error(XenError::ENOSYS),
    }
}

fn console_io(args: [u64; 5], caller: &mut Caller<'_>) -> Outcome {
    match args[0] as u32 {
        console::CONSOLEIO_write => {
            let count = (args[1] as usize).min(CONSOLE_WRITE_MAX);
            let mut buffer = [0u8; CONSOLE_WRITE_MAX];
            if let Err(fault) = GuestMemory.read(args[2], &mut buffer[..count]) {
                return error(fault);
            }
            let text = &buffer[..count];
            for line in text.split(|&byte| byte == b'\n').filter(|line| !line.is_empty()) {
                let line = core::str::from_utf8(line).unwrap_or("<non-UTF-8 output>");
                crate::platform::console::print(format_args!(
                    "(d{}) {}\n",
                    caller.domain,
                    line.trim_end_matches('\r')
                ));
            }
            Outcome::Return(0)
        }
        console::CONSOLEIO_read => {
            let Some(domain) = caller.table.domain(caller.domain) else {
                return error(XenError::ESRCH);
            };
            if policy::check(caller.domain, &domain.capabilities, Operation::ConsoleRead).is_err() {
                return error(XenError::EPERM);
            }
            // The core keeps no console history yet: nothing to read.
            Outcome::Return(0)
        }
        _ => error(XenError::ENOSYS),
    }
}

/// Xen 4.17 is the interface version this core implements.
const XEN_MAJOR: i64 = 4;
const XEN_MINOR: i64 = 17;

fn xen_version(args: [u64; 5], caller: &Caller<'_>) -> Outcome {
    let copy_string = |text: &str, size: usize| {
        let mut bytes = [0u8; 1024];
        bytes[..text.len()].copy_from_slice(text.as_bytes());
        match GuestMemory.write(args[1], &bytes[..size]) {
            Ok(()) => Outcome::Return(0),
            Err(fault) => error(fault),
        }
    };
    match args[0] as u32 {
        version::XENVER_version => Outcome::Return((XEN_MAJOR << 16) | XEN_MINOR),
        version::XENVER_extraversion => copy_string(".0-xenolith", 16),
        version::XENVER_capabilities => copy_string("xen-3.0-aarch64 xen-3.0-armv7l ", 1024),
        version::XENVER_pagesize => Outcome::Return(4096),
        version::XENVER_changeset => {
            copy_string(concat!("xenolith ", env!("CARGO_PKG_VERSION")), 64)
        }
        // No fixed hypervisor virtual area is visible to an Arm guest.
        version::XENVER_platform_parameters => copy_string("", 8),
        // The domain handle (a UUID in Xen); Xenolith does not assign one yet: all zero.
        version::XENVER_guest_handle => copy_string("", 16),
        version::XENVER_compile_info => {
            // compiler[64], compile_by[16], compile_domain[32], compile_date[32]: reproducible,
            // so no date or host.
            let mut info = [0u8; 144];
            let compiler = b"rustc (stable, pinned by rust-toolchain.toml)";
            info[..compiler.len()].copy_from_slice(compiler);
            info[64..72].copy_from_slice(b"xenolith");
            match GuestMemory.write(args[1], &info) {
                Ok(()) => Outcome::Return(0),
                Err(fault) => error(fault),
            }
        }
        version::XENVER_get_features => {
            let mut request = [0u8; 8];
            if let Err(fault) = GuestMemory.read(args[1], &mut request) {
                return error(fault);
            }
            if request[..4] != [0; 4] {
                return error(XenError::EINVAL);
            }
            // As Xen 4.17 on Arm answers submap 0 (`xen/common/kernel.c`).
            let control =
                caller.table.domain(caller.domain).is_some_and(|d| d.capabilities.control);
            let mut submap = (1u32 << version::XENFEAT_memory_op_vnode_supported)
                | (1 << version::XENFEAT_writable_page_tables)
                | (1 << version::XENFEAT_auto_translated_physmap)
                | (1 << version::XENFEAT_ARM_SMCCC_supported)
                | (1 << version::XENFEAT_not_direct_mapped);
            if control {
                submap |= 1 << version::XENFEAT_dom0;
            }
            request[4..].copy_from_slice(&submap.to_le_bytes());
            match GuestMemory.write(args[1], &request) {
                Ok(()) => Outcome::Return(0),
                Err(fault) => error(fault),
            }
        }
        version::XENVER_commandline => {
            // Privileged, as Xen's XSM default: the boot bundle's hypervisor command line.
            let control =
                caller.table.domain(caller.domain).is_some_and(|d| d.capabilities.control);
            if !control {
                return error(XenError::EPERM);
            }
            let line = crate::domain::boot_bundle().map_or("", |bundle| bundle.manifest.cmdline);
            copy_string(&line[..line.len().min(1023)], 1024)
        }
        _ => error(XenError::ENOSYS),
    }
}

/// `hvm_op(HVMOP_{set,get}_param, struct xen_hvm_param *)`, as Xen on Arm
/// (`xen/arch/arm/hvm.c`): the parameters a guest may read or the toolstack set; the other
/// sub-operations are x86's (`-ENOSYS`).
fn hvm_op(op: u64, arg: u64, caller: &mut Caller<'_>) -> Result<i64, XenError> {
    use xenolith_abi::xen::hvm::{self, xen_hvm_param};
    if op != hvm::HVMOP_set_param && op != hvm::HVMOP_get_param {
        return Err(XenError::ENOSYS);
    }
    let mut param: xen_hvm_param = crate::mm::guest_access::read_struct(arg)?;
    let target = caller.resolve(param.domid);
    caller.table.domain(target).ok_or(XenError::ESRCH)?;
    if target != caller.domain {
        caller.allow(Operation::Target { target })?;
    }
    let own = target == caller.domain;
    let index = param.index;
    let guest_visible = matches!(
        index,
        hvm::HVM_PARAM_CALLBACK_IRQ
            | hvm::HVM_PARAM_STORE_PFN
            | hvm::HVM_PARAM_STORE_EVTCHN
            | hvm::HVM_PARAM_CONSOLE_PFN
            | hvm::HVM_PARAM_CONSOLE_EVTCHN
    );
    if !guest_visible {
        return Err(XenError::EINVAL);
    }
    let domain = caller.table.domain_mut(target).ok_or(XenError::ESRCH)?;
    if op == hvm::HVMOP_set_param {
        // For the toolstack only: the domain itself may not set them (`hvm_allow_set_param`).
        if own {
            return Err(XenError::EPERM);
        }
        domain.hvm_params[index as usize] = param.value;
        return Ok(0);
    }
    param.value = domain.hvm_params[index as usize];
    GuestMemory.write(arg, zerocopy::IntoBytes::as_bytes(&param))?;
    Ok(0)
}

fn sched_op(args: [u64; 5], caller: &mut Caller<'_>) -> Outcome {
    match args[0] as u32 {
        sched::SCHEDOP_yield => {
            crate::sched::yield_now(caller.vcpu_slot);
            Outcome::Reschedule(0)
        }
        sched::SCHEDOP_block => {
            if let Some(vcpu) = caller.table.vcpu_mut(caller.vcpu_slot) {
                vcpu.state = VcpuState::Blocked;
            }
            crate::sched::sleep(caller.vcpu_slot);
            Outcome::Reschedule(0)
        }
        sched::SCHEDOP_poll => match crate::event::poll(args[1], caller) {
            Ok(true) => Outcome::Reschedule(0),
            Ok(false) => Outcome::Return(0),
            Err(fault) => error(fault),
        },
        sched::SCHEDOP_shutdown => {
            let reason = match crate::mm::guest_access::read_struct::<u32>(args[1]) {
                Ok(reason) => reason,
                Err(fault) => return error(fault),
            };
            if reason > sched::SHUTDOWN_MAX {
                return error(XenError::EINVAL);
            }
            crate::lifecycle::shutdown_domain(caller.table, caller.domain, reason);
            Outcome::Reschedule(0)
        }
        sched::SCHEDOP_remote_shutdown => match remote_shutdown(args[1], caller) {
            Ok(true) => Outcome::Reschedule(0),
            Ok(false) => Outcome::Return(0),
            Err(fault) => error(fault),
        },
        _ => error(XenError::ENOSYS),
    }
}

/// `SCHEDOP_remote_shutdown`: shuts another domain down with a `SHUTDOWN_*` reason, as Xen's
/// `do_sched_op` does (`-ESRCH`, then the policy's `-EPERM`, then the reason's `-EINVAL`). Its
/// restart policy then applies as for a shutdown from inside. `Ok(true)`: the caller shut
/// itself down and must be rescheduled.
fn remote_shutdown(arg: u64, caller: &mut Caller<'_>) -> Result<bool, XenError> {
    let request: sched::sched_remote_shutdown = crate::mm::guest_access::read_struct(arg)?;
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
fn vcpu_op(args: [u64; 5], caller: &mut Caller<'_>) -> Outcome {
    use xenolith_abi::xen::vcpu::{self as v, vcpu_set_singleshot_timer};
    let Some(domain) = caller.table.domain(caller.domain) else { return error(XenError::ESRCH) };
    let Some(&slot) = domain.vcpus.get(args[1] as usize) else { return error(XenError::ENOENT) };
    let this = slot == caller.vcpu_slot;
    let Some(vcpu) = caller.table.vcpu_mut(slot) else { return error(XenError::ENOENT) };
    match args[0] as u32 {
        v::VCPUOP_is_up => Outcome::Return(i64::from(vcpu.state != VcpuState::Down)),
        v::VCPUOP_up => {
            if !vcpu.initialised {
                return error(XenError::EINVAL);
            }
            if vcpu.state == VcpuState::Down {
                vcpu.state = VcpuState::Runnable;
                crate::sched::wake(slot);
            }
            Outcome::Return(0)
        }
        v::VCPUOP_down => {
            if vcpu.state == VcpuState::Down {
                return Outcome::Return(0);
            }
            vcpu.state = VcpuState::Down;
            crate::sched::sleep(slot);
            if this {
                Outcome::Reschedule(0)
            } else {
                Outcome::Return(0)
            }
        }
        v::VCPUOP_set_singleshot_timer => {
            if !this {
                return error(XenError::EINVAL);
            }
            let mut request = [0u8; core::mem::size_of::<vcpu_set_singleshot_timer>()];
            if let Err(fault) = GuestMemory.read(args[2], &mut request) {
                return error(fault);
            }
            let timeout = u64::from_le_bytes(request[..8].try_into().unwrap_or([0; 8]));
            let flags = u32::from_le_bytes(request[8..12].try_into().unwrap_or([0; 4]));
            if flags & v::VCPU_SSHOTTMR_future != 0 && timeout < crate::sched::now() {
                return error(XenError::ETIME);
            }
            if let Some(vcpu) = caller.table.vcpu_mut(slot) {
                vcpu.singleshot_deadline = Some(timeout);
            }
            Outcome::Return(0)
        }
        v::VCPUOP_register_vcpu_info => {
            let (gfn, offset) = match crate::event::read_register_vcpu_info(args[2]) {
                Ok(request) => request,
                Err(fault) => return error(fault),
            };
            match crate::event::register_vcpu_info(
                caller.table,
                caller.domain,
                slot,
                this,
                gfn,
                offset,
            ) {
                Ok(()) => Outcome::Return(0),
                Err(fault) => error(fault),
            }
        }
        v::VCPUOP_stop_singleshot_timer => {
            if !this {
                return error(XenError::EINVAL);
            }
            vcpu.singleshot_deadline = None;
            Outcome::Return(0)
        }
        _ => error(XenError::ENOSYS),
    }
}
