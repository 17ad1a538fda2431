//! Xen's public guest interface, encoded exactly as Xen 4.17's public headers give it
//! (`xen/include/public/`). Each module names the header it follows; every `#[repr(C)]` struct has
//! a layout test pinning its size and field offsets for arm64 (where Xen's layouts are the same on
//! arm32 and arm64: guest handles and `xen_ulong_t` are 64-bit).
//!
//! Operations Xen lacks get numbers in documented private ranges (see [`private`]).

pub mod arch_arm;
pub mod console;
pub mod domctl;
pub mod errno;
pub mod event_channel;
pub mod grant_table;
pub mod hypercall;
pub mod memory;
pub mod private;
pub mod sched;
pub mod sysctl;
pub mod vcpu;
pub mod version;
