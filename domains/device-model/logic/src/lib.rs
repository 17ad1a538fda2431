//! The device-model domain's logic (issue 18): one target guest's trapped MMIO accesses, which
//! the core forwards as Xen IOREQ records, emulated by devices that never see the records.
//!
//! - [`ioreq`]: one vCPU's record checked and decoded into an access, the access dispatched
//!   on a bus of non-overlapping device ranges, and the answer the record gets.
//! - [`pl011`]: an SBSA generic UART / Arm PL011 (Xen's `vpl011`, done outside the core), for
//!   Linux guests with no PV console.
//!
//! # Invariants
//! - No record and no register access, whatever its contents, can panic this crate: what it
//!   cannot serve it refuses with a reason the domain logs, and a request that a vCPU waits on
//!   is always answered.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod ioreq;
pub mod pl011;
