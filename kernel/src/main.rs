//! The Xenolith core as a bare-metal binary: boot flow, console, memory, CPUs, traps.
//!
//! Portable logic lives in the `xenolith_kernel` library (host-tested); this binary wires it to the
//! hardware through the one arch seam, `arch`. On the host the binary is an empty stub so that
//! `cargo build`/`clippy` of the whole workspace work; the real thing is built by `cargo xtask`.
#![cfg_attr(target_os = "none", no_std)]
#![cfg_attr(target_os = "none", no_main)]
#![forbid(unsafe_op_in_unsafe_fn)]

#[cfg(target_os = "none")]
extern crate alloc;

// The layers, bottom to top; a module names only modules listed before it (docs/architecture.md
// draws them). Each folder also holds the library's host-tested half of its concept (lib.rs).
#[cfg(target_os = "none")]
mod arch;
#[cfg(target_os = "none")]
mod boot;
#[cfg(target_os = "none")]
mod domain;
#[cfg(target_os = "none")]
mod event;
#[cfg(target_os = "none")]
mod grant;
#[cfg(target_os = "none")]
mod hypercall;
#[cfg(target_os = "none")]
mod lifecycle;
#[cfg(target_os = "none")]
mod mm;
#[cfg(target_os = "none")]
mod platform;
#[cfg(target_os = "none")]
mod sched;
#[cfg(target_os = "none")]
mod trap;

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!("the Xenolith core runs on bare metal: build and boot it with `cargo xtask run`");
    std::process::exit(2);
}
