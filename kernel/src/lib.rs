//! The Xenolith trusted core: the portable half.
//!
//! The core does only what must be privileged: physical memory and its mappings (frames, stage-1 and
//! stage-2 tables, grant tables), interrupt delivery and time (interrupt controller, event channels,
//! timers), scheduling, and the domain objects. It refuses everything else: device emulation, xenstore,
//! console multiplexing, backends and domain building live in service domains.
//!
//! Principles:
//! 1. **Small enough to audit.** Each module is one concern under ~800 lines; optional parts are cargo
//!    features so a minimal build compiles them out.
//! 2. **Portable logic is host-tested.** This library holds every algorithm that needs no hardware
//!    (command line, frame allocator, page-table edits, platform description) and builds for the host
//!    with `cargo test`. Hardware access lives in the binary under `src/arch/`.
//! 3. **Untrusted input is checked before it is used.** Boot bundle, DTB, command line and (later)
//!    every hypercall argument are validated first; a failure changes nothing.
//! 4. **A guest never brings the core down.** Guest faults end in a Xen error code or that guest's
//!    crash; the core panics only on its own broken invariants.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_op_in_unsafe_fn)]
#![forbid(unsafe_code)]

extern crate alloc;

// Each concept is one folder under `src/`, shared with the binary (`main.rs`): the files named
// here are this library's host-tested halves; the folder's `mod.rs` and other files are the
// binary's glue. docs/architecture.md lists both halves of every folder.

/// Interrupts: event channels and the virtual GIC.
pub mod event {
    pub mod evtchn;
    pub mod vgic;
}
/// Grant tables: entries, pins and the mapping track.
pub mod grant {
    mod table;
    pub use table::*;
}
/// Memory: the frame allocator and translation tables.
pub mod mm {
    pub mod frame;
    pub mod guest_atomic;
    pub mod lpae;
}
/// The machine: the host DTB, the command line and the console ring.
pub mod platform {
    mod dtb;
    pub use dtb::*;
    pub mod cmdline;
    pub mod console_ring;
}
pub mod policy;
/// Scheduling: the scheduler interface and credit2 and null.
pub mod sched {
    mod scheduler;
    pub use scheduler::*;
    pub mod credit2;
    pub mod null;
    #[cfg(test)]
    mod simulation;
    #[cfg(test)]
    mod tests;
}
/// Guest traps: the ID registers a guest reads, the Undefined Instruction exception it is given.
pub mod trap {
    pub mod id_registers;
    pub mod undefined;
}
#[cfg(test)]
mod test_rng;
