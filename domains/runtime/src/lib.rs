//! The runtime for Rust domains on Xenolith: what a service domain or a test guest needs to run at
//! EL1 as a Xen guest.
//!
//! A domain binary depends on this crate, names its entry with [`entry!`], and links with
//! `xenolith-domain.ld` (its build script adds `-Txenolith-domain.ld`). The core enters it the way
//! Xen enters an Arm domU (the arm64 Linux boot protocol): EL1h, MMU off, interrupts masked, x0 =
//! the physical address of the domain's DTB.
//!
//! What the runtime does before `main`: a stack, a zeroed .bss, FP/SIMD enabled, exception vectors
//! (any exception is a crash), an EL1 identity map with RAM cacheable, a heap over the rest of the
//! domain's first RAM bank, the console as the `log` back end, and [`StartInfo`] from the DTB.
//! After `main` returns the domain shuts down with `SHUTDOWN_poweroff`; a panic shuts it down with
//! `SHUTDOWN_crash` after printing the message.
//!
//! The portable parts ([`start_info`], [`xenbus_wire`], [`virtio_wire`], [`netfront_wire`])
//! build on the host and are tested there.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_op_in_unsafe_fn)]

extern crate alloc;

pub mod heap;
pub mod netfront_wire;
pub mod start_info;
pub mod virtio_wire;
pub mod xenbus_wire;

#[cfg(target_os = "none")]
mod arch;
#[cfg(target_os = "none")]
pub mod console;
#[cfg(target_os = "none")]
pub mod dm;
#[cfg(target_os = "none")]
pub mod events;
#[cfg(target_os = "none")]
pub mod grants;
#[cfg(target_os = "none")]
pub mod hypercall;
#[cfg(target_os = "none")]
pub mod irq;
#[cfg(target_os = "none")]
pub mod netfront;
#[cfg(target_os = "none")]
pub mod pvconsole;
#[cfg(target_os = "none")]
mod rt;
pub mod shared_page;
#[cfg(target_os = "none")]
pub mod smp;
#[cfg(target_os = "none")]
pub mod virtio;
#[cfg(target_os = "none")]
pub mod xenbus;

#[cfg(target_os = "none")]
pub use arch::now_ns;
#[cfg(target_os = "none")]
pub use rt::{crash, free_memory, power_off, started_at};
pub use start_info::StartInfo;

/// Names the domain's `main`: `fn main(info: &StartInfo)`.
#[macro_export]
macro_rules! entry {
    ($main:path) => {
        #[no_mangle]
        fn __xenolith_domain_main(info: &$crate::StartInfo) {
            let main: fn(&$crate::StartInfo) = $main;
            main(info)
        }
    };
}
