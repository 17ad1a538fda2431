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
mod domctl;
mod hvm;
mod memory_op;
mod sysctl;
mod vcpu;
mod version;

use xenolith_abi::xen::errno::XenError;
use xenolith_abi::xen::hypercall as call;

use crate::domain::Caller;
use crate::grant::ops::Done;

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

/// Runs hypercall `number` with `args` for `caller`.
pub fn dispatch(number: u64, args: [u64; 5], caller: &mut Caller<'_>) -> Outcome {
    let result = match number {
        call::__HYPERVISOR_console_io => console::console_io(args, caller),
        call::__HYPERVISOR_xen_version => version::xen_version(args, caller),
        call::__HYPERVISOR_sched_op => vcpu::sched_op(args, caller),
        call::__HYPERVISOR_domctl => domctl::domctl(args[0], caller).map(Outcome::Reschedule),
        call::__HYPERVISOR_memory_op => {
            memory_op::memory_op(args[0], args[1], caller).map(Outcome::Return)
        }
        call::__HYPERVISOR_vcpu_op => vcpu::vcpu_op(args, caller),
        call::__HYPERVISOR_grant_table_op => {
            crate::grant::ops::grant_table_op(args, caller).map(|done| match done {
                Done::Result(value) => Outcome::Return(value),
                Done::Continue(args) => Outcome::Continue(args),
            })
        }
        call::__HYPERVISOR_event_channel_op => {
            crate::event::event_channel_op(args[0], args[1], caller).map(Outcome::Return)
        }
        call::__HYPERVISOR_hvm_op => hvm::hvm_op(args[0], args[1], caller).map(Outcome::Return),
        call::__HYPERVISOR_sysctl => sysctl::sysctl(args[0], caller).map(Outcome::Return),
        _ => Err(XenError::ENOSYS),
    };
    result.unwrap_or_else(|error| Outcome::Return(error.to_return()))
}
