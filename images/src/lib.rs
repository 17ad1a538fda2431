//! The Xenolith host tool's library: system manifests, boot bundles, building the core, QEMU.
//!
//! `cargo xtask` (src/main.rs) is a thin command-line front end over this library, and the system
//! tests in `tests/` use it to build and boot exactly what a user runs.
#![forbid(unsafe_code)]

pub mod bundle;
pub mod code_lines;
pub mod conformance;
pub mod cpio;
pub mod debian;
pub mod disk_image;
pub mod guest_tools;
pub mod hardware;
pub mod hostile;
pub mod manifest;
pub mod qemu;
pub mod runner;
pub mod toolchain;
pub mod workspace;
pub mod xen;
pub mod xl_client;
