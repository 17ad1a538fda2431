//! Xen's `xl` commands for Xenolith's control domain: everything about them that needs no
//! hypercall.
//!
//! What it does: a line typed by a person (`xl list -l`, `destroy 3`,
//! `sched-credit2 -d guest -w 512`) becomes a typed [`Command`] ([`parse`]), with xl's usage
//! errors; [`run`] executes it through a [`Toolstack`] the control domain provides (one method
//! per libxl call xl makes) and prints what xl 4.17 prints, byte for byte where the data allow;
//! [`format`] holds each output format as a function of plain data.
//!
//! Commands: `create`, `list [-l]`, `destroy`, `shutdown`/`reboot [-a] [-w]`, `pause`,
//! `unpause`, `console`, `vcpu-list`, `vcpu-pin`, `sched-credit2`, `info`, `dmesg [-c]`,
//! `uptime [-s]`, `mem-set`, `network-attach`, `network-detach`, `help`. Any other command of
//! xl's is "command not implemented".
//!
//! What it refuses to do: talk to Xen (the [`Toolstack`] does), or guess: where xl's behaviour
//! rests on something Xenolith lacks (xenstore records, NUMA, ACPI, an xl daemon), the module
//! that meets it says what it does instead under `# Departures`.
//!
//! Principles:
//! 1. xl's facts, not its code: every message, width and rule is taken from Xen 4.17's
//!    `tools/xl/` and `tools/libs/light/` (named where used) and re-expressed.
//! 2. Text out is exact: outputs and errors are the bytes xl prints, so scripts and people
//!    used to xl read them unchanged; host tests compare against literal text.
//! 3. Numbers are read the C way xl reads them (`strtol` and friends in [`cnum`]), so the same
//!    input is accepted or refused.
//! 4. `no_std` with `alloc` and no unsafe code: the same crate runs in the control domain and
//!    in host tests.
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod cnum;
pub mod commands;
pub mod cpumap;
pub mod death;
pub mod devices;
pub mod error;
pub mod format;
mod getopt;
pub mod json;
pub mod parse;
pub mod run;
pub mod toolstack;

pub use cpumap::{parse_cpurange, print_bitmap, CpuMap};
pub use error::XlError;
pub use getopt::split_words;
pub use parse::{
    parse, parse_words, Command, Create, Power, SchedCredit2, Target, VcpuSelect, Wait,
};
pub use run::{resolve, run, POOL_NAME};
pub use toolstack::{
    ConsoleType, DomainInfo, LibxlError, NicRef, NodeInfo, PhysInfo, SchedParams, Scheduler,
    ShutdownKind, ToolError, Toolstack, VcpuInfo, VersionInfo,
};
/// The typed configuration [`Toolstack::create`] receives, and a network device's options.
pub use xenolith_xlcfg::{devices::Vif, DomainConfig};
