//! The machine as the core drives it: its console, and stopping it. The host DTB and the command
//! line are the library's half of this folder (`dtb.rs`, `cmdline.rs`).

pub mod console;
pub mod panic;
pub mod wallclock;
