//! The arch seam: selects the one architecture this build is for and re-exports its names, so
//! generic code says `arch::cpu::current_index()` whatever the machine.
//!
//! Each architecture directory provides the same modules: `cpu` (identity, interrupt masking,
//! idling, counter), `uart` (the console device), `power` (off and reset), `smp` (stopping other
//! CPUs), `boot` (bringing CPUs, the interrupt controller and timers up; taking interrupts),
//! `exception` (classifying and dumping exceptions), `guest` (vCPU state, stage 2, guest exits),
//! `mmu`, and `entry` (the assembly entry points and vector table). [`percpu`] and [`lock`] (the
//! core's locks, on `cpu`'s wait and wake) are shared by all.
//!
//! # The way up
//! The arch layer is the bottom of the core: no module of it names a module above it. Its
//! assembly is where the hardware enters the core, and it calls up through exactly three C-ABI
//! symbols, defined at the top of the core: `primary_main(dtb)` (`boot`, the boot CPU),
//! `secondary_main(index)` (this module's `boot`, the other CPUs; it only idles) and
//! `handle_exception(vector, frame)` (`trap`, every exception and interrupt).

pub mod lock;
pub mod percpu;

#[cfg(target_arch = "aarch64")]
mod aarch64;
#[cfg(target_arch = "aarch64")]
pub use aarch64::*;

#[cfg(not(target_arch = "aarch64"))]
compile_error!(
    "Xenolith's core builds for aarch64 only so far (x86_64 is planned: see SUPPORT.md)"
);
