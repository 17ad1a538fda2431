//! The device model's virtio logic (issue 18): what the device model domain does with a target
//! guest's virtio-mmio accesses (delivered as ioreqs) and with the virtqueues in the target's
//! RAM, checked so that a hostile or broken driver gets its device marked
//! `VIRTIO_CONFIG_S_NEEDS_RESET` and a reason to log, and never crashes the model.
//!
//! - [`memory`]: the target's RAM as the model reaches it (foreign mapping or grants): reads
//!   and writes at guest-physical addresses that fail, never panic, outside RAM.
//! - [`virtqueue`]: split virtqueues (virtio 1.2 §2.7): a descriptor chain walked with every
//!   hostile shape an error, available chains popped, used entries pushed, the interrupt
//!   decision (with or without `VIRTIO_F_EVENT_IDX`).
//! - [`mmio`]: the virtio-mmio version 2 register file (§4.2.2) and the device status state
//!   machine (§2.1, §3.1), driving a [`mmio::Device`].
//! - [`blk`]: virtio-blk (§5.2) over a [`blk::Disk`] the domain keeps where it survives a
//!   restart.
//! - [`state`]: what the preserved region holds per device and how a restarted model resumes
//!   (it redoes every chain the guest has not seen completed).
//!
//! The bare-metal domain (ioreq pages, foreign mappings, `XEN_DMOP_set_irq_level`, the
//! preserved region) calls these; they touch no memory but through [`memory::GuestMemory`].
//!
//! # Invariants
//! - No value a guest controls (register writes, ring indices, descriptor contents, request
//!   headers) can panic this crate; each refused one is a [`mmio::Fault`] that sets
//!   `NEEDS_RESET` on its device alone.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod blk;
pub mod memory;
pub mod mmio;
pub mod state;
pub mod virtqueue;

#[cfg(test)]
mod test_driver;
#[cfg(test)]
mod test_hostile;
#[cfg(test)]
mod test_restart;
#[cfg(test)]
mod test_rng;
