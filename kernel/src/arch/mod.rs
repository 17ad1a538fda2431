//! The arch seam: selects the one architecture this build is for and re-exports its names, so
//! generic code says `arch::cpu::current_index()` whatever the machine.
//!
//! Each architecture directory provides the same modules: `cpu` (identity, interrupt masking,
//! idling, counter), `uart` (the console device), `power` (off and reset), `smp` (stopping other
//! CPUs), and the boot flow that calls `setup`.

#[cfg(target_arch = "aarch64")]
mod aarch64;
#[cfg(target_arch = "aarch64")]
pub use aarch64::*;

#[cfg(not(target_arch = "aarch64"))]
compile_error!(
    "Xenolith's core builds for aarch64 only so far (x86_64 is planned: see SUPPORT.md)"
);
