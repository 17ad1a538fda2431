//! aarch64 (Armv8-A at EL2, GICv3, generic timer, PSCI): QEMU `virt` first.
//!
//! # What the core handles itself (the forwarding list)
//! - its own timer (EL2 physical timer) and the interrupt controller (GICv3);
//! - exceptions at EL2 (all fatal: the register dump, then a stop);
//! - from issue 3 on: hypercalls, PSCI from guests, stage-2 faults on RAM, the virtual GIC.
//!
//! Everything else a guest touches goes to a device-model domain.

pub mod boot;
pub mod cpu;
pub mod entry;
pub mod exception;
mod gic;
pub mod guest;
pub mod mmu;
mod psci;
mod timer;
pub mod uart;

/// Turning the machine off or resetting it.
pub mod power {
    /// `off` powers the machine off (PSCI SYSTEM_OFF; QEMU exits); `reset` resets it.
    pub use super::psci::{system_off as off, system_reset as reset};
}

/// Other CPUs.
pub mod smp {
    pub use super::boot::{kick, stop_other_cpus};
}

pub use boot::timer_deadline_in;
pub use entry::idle_loop;
pub use timer::arm_by as timer_deadline_by;
