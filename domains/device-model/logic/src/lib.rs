//! The device model domain's logic (issue 18): one target guest's trapped MMIO accesses, which
//! the core forwards as Xen IOREQ records, emulated by virtio-mmio devices and a UART; the
//! virtqueues in the target's RAM checked so that a hostile or broken driver gets its device
//! marked `VIRTIO_CONFIG_S_NEEDS_RESET` and a reason to log, and never crashes the model.
//!
//! - [`ioreq`]: one vCPU's record checked and decoded into an access, the access dispatched
//!   on a bus of non-overlapping device ranges, and the answer the record gets.
//! - [`memory`]: the target's RAM as the model reaches it (foreign mapping or grants): reads
//!   and writes at guest-physical addresses that fail, never panic, outside RAM.
//! - [`virtqueue`]: split virtqueues (virtio 1.2 §2.7): a descriptor chain walked with every
//!   hostile shape an error, available chains popped, used entries pushed, the interrupt
//!   decision (with or without `VIRTIO_F_EVENT_IDX`).
//! - [`mmio`]: the virtio-mmio version 2 register file (§4.2.2) and the device status state
//!   machine (§2.1, §3.1), driving a [`mmio::Device`].
//! - [`blk`]: virtio-blk (§5.2) over a [`blk::Disk`] the domain keeps where it survives a
//!   restart.
//! - [`net`]: virtio-net (§5.1) looped back: every frame transmitted is received.
//! - [`pl011`]: an SBSA generic UART / Arm PL011 (Xen's `vpl011`, done outside the core), for
//!   Linux guests with no PV console.
//! - [`state`]: what the preserved region holds per device and how a restarted model resumes
//!   (it redoes every chain the guest has not seen completed).
//! - [`config`]: what the model serves, from its command line.
//! - [`devices`]: a configuration's devices on one bus, records served with the target's
//!   memory, interrupt line changes, the UART's output, the state to save.
//! - [`mapcache`]: which chunk of the target's RAM is foreign-mapped in which slot of the
//!   model's window.
//! - [`region`]: the preserved region's layout: the snapshot, the disk's header and bytes.
//!
//! The bare-metal domain (ioreq pages, foreign mappings, `XEN_DMOP_set_irq_level`, the
//! preserved region) calls these; they touch no memory but through [`memory::GuestMemory`].
//!
//! # Invariants
//! - No value a guest controls (ioreq records, register writes, ring indices, descriptor
//!   contents, request headers) can panic this crate; each refused one is a reason the domain
//!   logs (a virtio device's [`mmio::Fault`] sets `NEEDS_RESET` on that device alone), and a
//!   request that a vCPU waits on is always answered.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod blk;
pub mod config;
pub mod devices;
pub mod ioreq;
pub mod mapcache;
pub mod memory;
pub mod mmio;
pub mod net;
pub mod pl011;
pub mod region;
pub mod state;
pub mod virtqueue;

#[cfg(test)]
mod test_driver;
#[cfg(test)]
mod test_hostile;
#[cfg(test)]
mod test_net;
#[cfg(test)]
mod test_restart;
#[cfg(test)]
mod test_rng;
