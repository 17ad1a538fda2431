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

pub mod cmdline;
pub mod elf;
pub mod evtchn;
pub mod fdt_writer;
pub mod frame;
pub mod grant;
pub mod guest_dtb;
pub mod lpae;
pub mod platform;
pub mod policy;
pub mod sched;
#[cfg(test)]
mod test_rng;
pub mod vgic;
