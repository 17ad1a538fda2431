//! The EL2 physical timer (CNTHP_*_EL2, Arm ARM D11 "The Generic Timer"): the core's own tick.
//!
//! Its interrupt is the PPI the DTB's timer node names as the hypervisor timer (INTID 26 on QEMU
//! virt). Guests get the virtual timer (issue 3); this one is never exposed.
//!
//! # Invariants
//! - Only the CPU that owns a timer programs it: every function acts on the calling CPU.

use super::cpu::{read_sysreg, write_sysreg};

const CTL_ENABLE: u64 = 1 << 0;

/// Arms the timer to fire when the physical counter reaches `deadline` (an absolute value,
/// `CNTHP_CVAL_EL2`), and enables it unmasked. A deadline already passed fires at once.
pub fn arm_at(deadline: u64) {
    write_sysreg!("cnthp_cval_el2", deadline);
    write_sysreg!("cnthp_ctl_el2", CTL_ENABLE);
}

/// Makes the timer fire by counter value `deadline` too, if it is armed for later (it always is
/// armed, for the next tick at the latest).
pub fn arm_by(deadline: u64) {
    if deadline < read_sysreg!("cnthp_cval_el2") {
        arm_at(deadline);
    }
}

/// Per-CPU timer set-up: EL1 may read the physical counter and timer (for guests later), the
/// event stream is on, the virtual offset is zero, and the EL2 timer is off until armed.
///
/// The event stream wakes this CPU from WFE each time bit 11 of the counter goes from 0 to 1
/// (every 4,096 ticks: 66 us at QEMU virt's 62.5 MHz), so every wait in WFE (`cpu::wait_for_event`)
/// is bounded even if nothing else wakes it (Linux's arch timer keeps one too).
pub fn init_cpu() {
    // CNTHCTL_EL2 (E2H = 0): EL1PCTEN (bit 0), EL1PCEN (bit 1), EVNTEN (bit 2), EVNTDIR (bit 3)
    // 0 for 0-to-1 transitions, EVNTI (bits 7:4) = 11.
    write_sysreg!("cnthctl_el2", 11 << 4 | 0b111);
    write_sysreg!("cntvoff_el2", 0);
    // Stopped, which also drops its interrupt line.
    write_sysreg!("cnthp_ctl_el2", 0);
}
