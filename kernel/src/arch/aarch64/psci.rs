//! PSCI calls from EL2 to firmware (Arm DEN 0022, Power State Coordination Interface) over SMC.
//!
//! # Invariants
//! - Only the SMC conduit is used: the core runs at EL2, where an HVC would trap to itself.

use core::arch::asm;

/// PSCI_VERSION.
pub const VERSION: u32 = 0x8400_0000;
/// SYSTEM_OFF.
pub const SYSTEM_OFF: u32 = 0x8400_0008;
/// SYSTEM_RESET.
pub const SYSTEM_RESET: u32 = 0x8400_0009;

/// PSCI return codes (DEN 0022 table 5.2.2).
pub fn error_name(code: i64) -> &'static str {
    match code {
        0 => "success",
        -1 => "not supported",
        -2 => "invalid parameters",
        -3 => "denied",
        -4 => "already on",
        -5 => "on pending",
        -6 => "internal failure",
        -7 => "not present",
        -8 => "disabled",
        -9 => "invalid address",
        _ => "unknown error",
    }
}

/// Makes a PSCI call through SMC #0 and returns x0.
pub fn call(function: u32, arg0: u64, arg1: u64, arg2: u64) -> i64 {
    let result: i64;
    // SAFETY: an SMC to PSCI firmware changes no memory of the core; CPU_ON's entry point and
    // context are checked by its caller; SMCCC lets firmware clobber x0-x17, declared here.
    unsafe {
        asm!(
            "smc #0",
            inout("x0") u64::from(function) => result,
            inout("x1") arg0 => _, inout("x2") arg1 => _, inout("x3") arg2 => _,
            out("x4") _, out("x5") _, out("x6") _, out("x7") _, out("x8") _, out("x9") _,
            out("x10") _, out("x11") _, out("x12") _, out("x13") _, out("x14") _, out("x15") _,
            out("x16") _, out("x17") _,
            options(nostack)
        )
    };
    result
}

/// Starts the CPU with affinity `mpidr` at physical `entry`, with `context` in its x0.
pub fn cpu_on(function: u32, mpidr: u64, entry: u64, context: u64) -> Result<(), &'static str> {
    match call(function, mpidr, entry, context) {
        0 => Ok(()),
        code => Err(error_name(code)),
    }
}

/// Turns the machine off (QEMU exits with status 0). Returns only if firmware refuses.
pub fn system_off() {
    call(SYSTEM_OFF, 0, 0, 0);
}

/// Resets the machine. Returns only if firmware refuses.
pub fn system_reset() {
    call(SYSTEM_RESET, 0, 0, 0);
}
