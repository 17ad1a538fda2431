//! Hypercall dispatch: Xen's hypercall numbers (`xen/include/public/xen.h`), each family's
//! sub-operations, each argument checked before anything changes, each failure a Xen error code.
//! The families that span concepts live here (`domctl.rs`, `sysctl.rs`, `memory_op.rs`, and the
//! small ones: `console.rs`, `version.rs`, `vcpu.rs` with `sched_op`, `hvm.rs`); event channels
//! and grant tables keep theirs beside their tables (`event`, `grant::ops`).
//!
//! # Invariants
//! - Every guest address goes through `mm::guest_access`, which translates it through both
//!   stages of the caller's own translation; a bad address is `-EFAULT`, never a core fault.
//! - Every privileged operation asks the policy first (default deny, `-EPERM`).
//! - An unknown hypercall or sub-operation is `-ENOSYS` and changes nothing.

mod console;
pub mod dm_op;
mod domctl;
mod hvm;
mod memory_op;
mod sysctl;
mod vcpu;
mod version;

use xenolith_abi::xen::errno::XenError;
use xenolith_abi::xen::hypercall as call;

use crate::domain::{Caller, Local};
use crate::grant::ops::Done;
use crate::mm::guest_access::{read_struct, write_struct};

/// What the trap handler does after a hypercall.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Put this value in x0 and return to the caller.
    Return(i64),
    /// Put this value in x0, then let the scheduler choose (yield, block, shutdown).
    Reschedule(i64),
    /// A continuation: put these arguments in x0-x2 and run the HVC again (the rest of a batch).
    Continue([u64; 3]),
    /// A continuation, run when the vCPU next runs: the scheduler chooses first (the rest of a
    /// multicall after a call that blocked or shut down).
    ContinueLater([u64; 3]),
}

/// Runs hypercall `number` with `args` for `caller`.
#[inline(always)]
pub fn dispatch(number: u64, args: [u64; 5], caller: &mut Caller<'_>) -> Outcome {
    let result = match number {
        call::__HYPERVISOR_multicall => multicall(args[0], args[1] as u32, caller),
        call::__HYPERVISOR_vm_assist => vm_assist(args[0] as u32, args[1] as u32, caller),
        call::__HYPERVISOR_platform_op => platform_op(args[0]),
        _ => call(number, args, caller),
    };
    result.unwrap_or_else(|error| Outcome::Return(error.to_return()))
}

/// Every hypercall but multicall and the small ones [`dispatch`] answers itself (inlined there:
/// one jump on the number for the common calls).
#[inline(always)]
fn call(number: u64, args: [u64; 5], caller: &mut Caller<'_>) -> Result<Outcome, XenError> {
    match number {
        call::__HYPERVISOR_console_io => console::console_io(args, caller),
        call::__HYPERVISOR_xen_version => version::xen_version(args, || {
            caller.table.domain(caller.domain).is_some_and(|d| d.capabilities.control)
        })
        .map(Outcome::Return),
        call::__HYPERVISOR_sched_op => vcpu::sched_op(args, caller),
        call::__HYPERVISOR_domctl => domctl::domctl(args[0], caller).map(Outcome::Reschedule),
        call::__HYPERVISOR_memory_op => {
            memory_op::memory_op(args[0], args[1], caller).map(Outcome::Return)
        }
        call::__HYPERVISOR_vcpu_op => vcpu::vcpu_op(args, caller),
        call::__HYPERVISOR_grant_table_op => {
            crate::grant::ops::grant_table_op(args, caller).map(Outcome::from)
        }
        call::__HYPERVISOR_event_channel_op => {
            crate::event::event_channel_op(args[0], args[1], caller).map(Outcome::Return)
        }
        call::__HYPERVISOR_hvm_op => hvm::hvm_op(args[0], args[1], caller).map(Outcome::Return),
        call::__HYPERVISOR_sysctl => sysctl::sysctl(args[0], caller).map(Outcome::Return),
        call::__HYPERVISOR_dm_op => dm_op::dm_op(args, caller).map(Outcome::Return),
        // Xen's hypervisor file system is for privileged domains (`XSM_PRIV`); Xenolith
        // offers it to none.
        call::__HYPERVISOR_hypfs_op => Err(XenError::EPERM),
        _ => Err(XenError::ENOSYS),
    }
}

/// The hypercalls a domain makes on itself alone (and an event sent to a peer), run by one of the
/// domain table's readers, holding only its domain's records ([`Local`]): other domains'
/// hypercalls on other pCPUs run meanwhile. `None`: a hypercall the whole table's holder runs
/// ([`dispatch`]); nothing changed.
#[inline(always)]
pub fn local(number: u64, args: [u64; 5], local: &mut Local<'_>) -> Option<Outcome> {
    let result = match number {
        call::__HYPERVISOR_xen_version => {
            let held = local.held();
            version::xen_version(args, || held.domain.capabilities.control)
        }
        call::__HYPERVISOR_event_channel_op => crate::event::local_op(args[0], args[1], local)?,
        call::__HYPERVISOR_grant_table_op => {
            return match crate::grant::ops::local_op(args, local) {
                Ok(Done::Whole) => None,
                Ok(done) => Some(done.into()),
                Err(error) => Some(Outcome::Return(error.to_return())),
            };
        }
        _ => return None,
    };
    Some(Outcome::Return(result.unwrap_or_else(XenError::to_return)))
}

/// Whether [`local`] runs hypercall `number` with `args` (asked before any lock is taken).
#[inline(always)]
pub fn is_local(number: u64, args: &[u64; 5]) -> bool {
    match number {
        call::__HYPERVISOR_xen_version => true,
        call::__HYPERVISOR_event_channel_op => crate::event::is_local_op(args[0]),
        call::__HYPERVISOR_grant_table_op => crate::grant::ops::is_local_op(args[0], args[2]),
        _ => false,
    }
}

impl From<Done> for Outcome {
    fn from(done: Done) -> Self {
        match done {
            Done::Result(value) => Outcome::Return(value),
            Done::Continue(args) => Outcome::Continue(args),
            // Never from the whole table's holder, which reaches every domain.
            Done::Whole => Outcome::Return(XenError::EAGAIN.to_return()),
        }
    }
}

/// Entries one multicall runs before it continues itself (the rest after a fresh trap).
const MULTICALL_BATCH: u32 = 32;

/// `multicall(call_list, nr_calls)` (xen/common/multicall.c, `arch_do_multicall_call` in
/// xen/arch/arm/traps.c): runs each `multicall_entry` (`op`, `result`, `args[6]`, 64-bit words
/// on Arm) and writes its result back; a multicall inside one is `-EINVAL`, as Xen's reentry
/// check, and an unreadable entry ends it with `-EFAULT`. A call that stops the vCPU (block,
/// shutdown) ends this run of the list: the rest runs when the vCPU runs again (Xen runs it
/// first). A call's own continuation is written into its entry and the multicall continues from
/// there, as Xen's.
fn multicall(list: u64, count: u32, caller: &mut Caller<'_>) -> Result<Outcome, XenError> {
    const ENTRY: u64 = 64;
    for index in 0..count {
        // A guest's address: wrapping (a bad one faults in the read below), never a core panic.
        let entry = list.wrapping_add(u64::from(index) * ENTRY);
        if index == MULTICALL_BATCH {
            return Ok(Outcome::Continue([entry, u64::from(count - index), 0]));
        }
        let words: [u64; 8] = read_struct(entry)?;
        let args = [words[2], words[3], words[4], words[5], words[6]];
        let outcome = match words[0] {
            call::__HYPERVISOR_multicall => Outcome::Return(XenError::EINVAL.to_return()),
            number => call(number, args, caller)
                .unwrap_or_else(|error| Outcome::Return(error.to_return())),
        };
        match outcome {
            Outcome::Return(value) => write_struct(entry.wrapping_add(8), &value)?,
            Outcome::Reschedule(value) => {
                write_struct(entry.wrapping_add(8), &value)?;
                let rest = [entry.wrapping_add(ENTRY), u64::from(count - index - 1), 0];
                return Ok(if rest[1] == 0 {
                    Outcome::Reschedule(0)
                } else {
                    Outcome::ContinueLater(rest)
                });
            }
            Outcome::Continue(rest) | Outcome::ContinueLater(rest) => {
                write_struct(entry.wrapping_add(16), &rest)?;
                return Ok(Outcome::Continue([entry, u64::from(count - index), 0]));
            }
        }
    }
    Ok(Outcome::Return(0))
}

/// `vm_assist(cmd, type)` (xen/common/domain.c): Arm offers one type,
/// `VMASST_TYPE_runstate_update_flag` (5); `VMASST_CMD_enable` (0) and `_disable` (1).
fn vm_assist(command: u32, kind: u32, caller: &mut Caller<'_>) -> Result<Outcome, XenError> {
    if kind != 5 {
        return Err(XenError::EINVAL);
    }
    let domain = caller.table.domain_mut(caller.domain).ok_or(XenError::ESRCH)?;
    match command {
        0 => domain.vm_assist |= crate::sched::RUNSTATE_UPDATE_FLAG,
        1 => domain.vm_assist &= !crate::sched::RUNSTATE_UPDATE_FLAG,
        _ => return Err(XenError::ENOSYS),
    }
    Ok(Outcome::Return(0))
}

/// `platform_op` (xen/arch/arm/platform_hypercall.c) checks, in Xen's order: the 136-byte
/// `xen_platform_op` must be readable (`-EFAULT`), its `interface_version` must be
/// `XENPF_INTERFACE_VERSION` (0x03000001, `-EACCES`), and only a privileged domain may go on
/// (`-EPERM`). Xenolith keeps platform control (the clock) to itself: nobody goes on.
fn platform_op(arg: u64) -> Result<Outcome, XenError> {
    let op: [u32; 34] = read_struct(arg)?;
    if op[1] != 0x0300_0001 {
        return Err(XenError::EACCES);
    }
    Err(XenError::EPERM)
}
