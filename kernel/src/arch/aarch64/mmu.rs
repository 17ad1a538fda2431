//! The core's EL2 stage-1 translation: register values and turning the MMU on.
//!
//! The tables themselves are built by the portable `xenolith_kernel::mm::lpae`; this module only
//! points TTBR0_EL2 at them.
//!
//! # Invariants
//! - The map is an identity map (VA = PA), so turning the MMU on does not move the running code.
//! - SCTLR_EL2.WXN is set: hardware also treats every writable mapping as execute-never.

use core::arch::asm;

use super::cpu::read_sysreg;
use super::entry::SecondaryBoot;
use xenolith_kernel::mm::lpae;

/// SCTLR_EL2 RES1 bits for the non-VHE layout (bits 4, 5, 11, 16, 18, 22, 23, 28, 29).
const SCTLR_RES1: u64 = 0x30C5_0830;
const SCTLR_M: u64 = 1 << 0;
const SCTLR_C: u64 = 1 << 2;
const SCTLR_SA: u64 = 1 << 3;
const SCTLR_I: u64 = 1 << 12;
const SCTLR_WXN: u64 = 1 << 19;

/// SCTLR_EL2 with the MMU, caches, stack alignment check and WXN on.
pub const SCTLR_VALUE: u64 = SCTLR_RES1 | SCTLR_M | SCTLR_C | SCTLR_SA | SCTLR_I | SCTLR_WXN;

/// TCR_EL2 for a [`lpae::VA_BITS`] space with 4 KiB granule and write-back shareable walks;
/// PS from the CPU's physical address range (ID_AA64MMFR0_EL1.PARange, at most 48 bits).
pub fn tcr_value() -> u64 {
    let parange = (read_sysreg!("id_aa64mmfr0_el1") & 0xf).min(5);
    let t0sz = 64 - u64::from(lpae::VA_BITS);
    (1 << 31) | (1 << 23) | (parange << 16) | (0b11 << 12) | (0b01 << 10) | (0b01 << 8) | t0sz
}

/// The register values another CPU needs to join this address space.
pub fn secondary_record(root: u64, stack_top: u64, cpu_index: usize) -> SecondaryBoot {
    SecondaryBoot {
        stack_top,
        mair: lpae::MAIR_VALUE,
        tcr: tcr_value(),
        ttbr0: root,
        sctlr: SCTLR_VALUE,
        cpu_index: cpu_index as u64,
    }
}

/// Turns the MMU on for this CPU with the tables rooted at `root`.
///
/// # Safety
/// `root` must be a complete identity map of everything this CPU touches from now on (image,
/// stack, per-CPU data, devices), with the tables themselves in memory that stays allocated.
pub unsafe fn enable(root: u64) {
    let tcr = tcr_value();
    // SAFETY: the caller guarantees `root` identity-maps everything in use, so the instruction
    // stream and stack stay valid across the switch; the TLB is invalidated before enabling.
    unsafe {
        asm!(
            "msr mair_el2, {mair}",
            "msr tcr_el2, {tcr}",
            "msr ttbr0_el2, {root}",
            "isb",
            "tlbi alle2",
            "dsb nsh",
            "isb",
            "msr sctlr_el2, {sctlr}",
            "isb",
            mair = in(reg) lpae::MAIR_VALUE,
            tcr = in(reg) tcr,
            root = in(reg) root,
            sctlr = in(reg) SCTLR_VALUE,
            options(nostack)
        )
    };
}
