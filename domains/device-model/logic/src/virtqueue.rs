//! Split virtqueues (virtio 1.2 §2.7; the layouts are Linux's `include/uapi/linux/virtio_ring.h`
//! `struct vring_desc`, `vring_avail`, `vring_used`): a driver's descriptor chains walked
//! under hostile-driver rules, available chains popped in order, used entries pushed, and
//! whether the driver wants an interrupt for them.
//!
//! Layouts (all little-endian):
//! - descriptor table (16-byte aligned): `size` descriptors of 16 bytes, `addr: u64` at 0,
//!   `len: u32` at 8, `flags: u16` at 12, `next: u16` at 14 (§2.7.5);
//! - available ring (2-byte aligned): `flags: u16` at 0, `idx: u16` at 2, `ring[size]: u16`
//!   at 4, `used_event: u16` at `4 + 2 * size` (§2.7.6);
//! - used ring (4-byte aligned): `flags: u16` at 0, `idx: u16` at 2, `ring[size]` of
//!   `{id: u32, len: u32}` at 4, `avail_event: u16` at `4 + 8 * size` (§2.7.8).
//!
//! `VIRTIO_F_EVENT_IDX` is supported: with it the model writes `avail_event` as it consumes
//! and interrupts by `used_event` (Linux's `vring_need_event`); without it, it honours
//! `VIRTQ_AVAIL_F_NO_INTERRUPT`. The model never asks the driver to suppress notifications
//! (`used.flags` stays 0). `VIRTIO_F_INDIRECT_DESC` is supported: a chain of zero or more
//! direct descriptors may end in one that names a table (§2.7.5.3.2); the table's descriptors
//! may not name another, and its `VIRTQ_DESC_F_WRITE` flag is ignored.
//!
//! Used entries are pushed in the order their chains were popped, so the used index says how
//! many of the popped chains are done: a restarted model redoes the ones after it
//! ([`crate::state`]).
//!
//! # Invariants
//! - [`Queue::pop`] returns a chain only if every descriptor index was inside its table, the
//!   chain had at most as many descriptors as its table has entries (no loop), its lengths add
//!   up to at most [`MAX_CHAIN_BYTES`], every buffer lies in RAM, and no readable buffer
//!   follows a writable one; otherwise a [`ChainError`] and the position does not move.
//! - The writes to guest memory are the used entry, then the used index (the order the driver
//!   needs; the domain's [`GuestMemory`] must make its writes visible in program order).

use alloc::vec::Vec;

use crate::memory::{read_u16, read_u32, read_u64, GuestMemory, OutsideRam};

/// This descriptor continues through `next` (`VRING_DESC_F_NEXT`, §2.7.5).
pub const DESC_F_NEXT: u16 = 1;
/// The device writes this buffer (`VRING_DESC_F_WRITE`, §2.7.5).
pub const DESC_F_WRITE: u16 = 2;
/// The buffer is a table of descriptors (`VRING_DESC_F_INDIRECT`, §2.7.5.3).
pub const DESC_F_INDIRECT: u16 = 4;
/// The driver asks for no interrupts (`VRING_AVAIL_F_NO_INTERRUPT`, §2.7.7).
pub const AVAIL_F_NO_INTERRUPT: u16 = 1;
/// Indirect descriptors (`VIRTIO_RING_F_INDIRECT_DESC`, bit 28, §6 and `virtio_ring.h`).
pub const F_INDIRECT_DESC: u64 = 1 << 28;
/// `used_event`/`avail_event` (`VIRTIO_RING_F_EVENT_IDX`, bit 29, §6 and `virtio_ring.h`).
pub const F_EVENT_IDX: u64 = 1 << 29;
/// The largest queue the model offers (`QueueNumMax`); a split queue's size is a power of two
/// of at most 32768 (§2.7).
pub const MAX_QUEUE_SIZE: u16 = 256;
/// The most bytes one chain may describe, readable and writable together (§2.7.5.2 allows a
/// driver 2^32; a device may limit it, §2.7.4.1): 8 MiB, above the
/// largest virtio-blk request the model allows (`seg_max` 126 segments of `size_max` 64 KiB,
/// plus header and status; see [`crate::blk`]).
pub const MAX_CHAIN_BYTES: u64 = 8 << 20;
/// A descriptor's size in bytes (§2.7.5).
const DESC_SIZE: u64 = 16;

/// Why a queue's rings or a chain are refused (the device then needs a reset).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChainError {
    /// The available ring names a head past the descriptor table.
    HeadOutOfRange { head: u16 },
    /// A `next` past its (direct or indirect) table.
    IndexOutOfRange { index: u16 },
    /// More descriptors than the table holds: the chain loops (§2.7.5.2 forbids loops;
    /// §2.7.5.3.1: a chain is at most the queue size long).
    Loop,
    /// The lengths overflow or add up to more than [`MAX_CHAIN_BYTES`].
    TooLong,
    /// A buffer (or an indirect table) outside RAM.
    OutsideRam(OutsideRam),
    /// `VIRTQ_DESC_F_INDIRECT` without `VIRTIO_F_INDIRECT_DESC` negotiated (§2.7.5.3.1).
    IndirectNotNegotiated,
    /// An indirect table whose length is 0, not a multiple of 16 or more entries than the queue.
    IndirectSize { length: u32 },
    /// An indirect descriptor inside an indirect table, or with `VIRTQ_DESC_F_NEXT` too
    /// (§2.7.5.3.1).
    IndirectPlacement,
    /// A device-readable buffer after a device-writable one (§2.7.4.2, Message Framing).
    ReadableAfterWritable,
    /// The available index is more than a queue ahead of the model's position.
    AvailIndex { avail: u16, position: u16 },
    /// A ring field outside RAM.
    Ring(OutsideRam),
}

/// Why a queue cannot be made ready.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LayoutError {
    /// `QueueNum` is 0, not a power of two, or above `QueueNumMax`.
    Size(u16),
    /// A ring address misaligned (§2.7: 16, 2 and 4 bytes).
    Alignment,
    /// A ring not wholly in RAM.
    OutsideRam,
}

/// One buffer of a chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Buffer {
    /// Its guest-physical address.
    pub address: u64,
    /// Its length.
    pub length: u32,
    /// Whether the device writes it (else reads it).
    pub writable: bool,
}

/// A checked chain: its head (the id its used entry carries) and its buffers, the readable
/// ones first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chain {
    /// The head descriptor's index.
    pub head: u16,
    /// Its buffers in order.
    pub buffers: Vec<Buffer>,
}

impl Chain {
    /// The readable (`writable == false`) or writable bytes in all.
    pub fn length(&self, writable: bool) -> u64 {
        self.buffers.iter().filter(|b| b.writable == writable).map(|b| u64::from(b.length)).sum()
    }

    /// Copies the readable bytes from `offset` on into `out`; how many there were.
    pub fn read_at<M: GuestMemory + ?Sized>(
        &self,
        memory: &M,
        offset: u64,
        out: &mut [u8],
    ) -> Result<usize, OutsideRam> {
        let mut done = 0;
        for (address, start, length) in self.pieces(false, offset, out.len()) {
            memory.read(address, &mut out[start..start + length])?;
            done = start + length;
        }
        Ok(done)
    }

    /// Copies `data` into the writable bytes from `offset` on; how many fitted.
    pub fn write_at<M: GuestMemory + ?Sized>(
        &self,
        memory: &mut M,
        offset: u64,
        data: &[u8],
    ) -> Result<usize, OutsideRam> {
        let mut done = 0;
        for (address, start, length) in self.pieces(true, offset, data.len()) {
            memory.write(address, &data[start..start + length])?;
            done = start + length;
        }
        Ok(done)
    }

    /// Where `wanted` bytes from `offset` of the readable or writable stream lie: (guest
    /// address, offset in the caller's slice, length) per buffer touched.
    fn pieces(
        &self,
        writable: bool,
        mut offset: u64,
        wanted: usize,
    ) -> impl Iterator<Item = (u64, usize, usize)> + '_ {
        let mut done = 0usize;
        self.buffers.iter().filter(move |b| b.writable == writable).filter_map(move |buffer| {
            let length = u64::from(buffer.length);
            if offset >= length {
                offset -= length;
                return None;
            }
            let take = (length - offset).min((wanted - done) as u64) as usize;
            if take == 0 {
                return None;
            }
            let piece = (buffer.address.wrapping_add(offset), done, take);
            offset = 0;
            done += take;
            Some(piece)
        })
    }
}

/// A descriptor as read (§2.7.5).
struct Descriptor {
    address: u64,
    length: u32,
    flags: u16,
    next: u16,
}

/// One split virtqueue as the device sees it: the driver's setup and the model's positions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Queue {
    /// `QueueNum`: entries in each ring.
    pub size: u16,
    /// `QueueReady`.
    pub ready: bool,
    /// The descriptor table (`QueueDesc`).
    pub desc: u64,
    /// The available ring (`QueueDriver`).
    pub driver: u64,
    /// The used ring (`QueueDevice`).
    pub device: u64,
    /// The next available entry the model will pop (its position).
    pub last_avail: u16,
    /// The used index the model has published.
    pub used: u16,
    /// The used index when the model last decided whether to interrupt.
    pub signalled: u16,
    /// `VIRTIO_F_INDIRECT_DESC` negotiated.
    pub indirect: bool,
    /// `VIRTIO_F_EVENT_IDX` negotiated.
    pub event_idx: bool,
}

impl Queue {
    /// Checks the driver's setup before the queue goes ready: the size a power of two up to
    /// `max`, the rings aligned (§2.7: descriptor table 16, available ring 2, used ring 4) and
    /// in RAM.
    pub fn check_layout<M: GuestMemory + ?Sized>(
        &self,
        memory: &M,
        max: u16,
    ) -> Result<(), LayoutError> {
        if self.size == 0 || !self.size.is_power_of_two() || self.size > max {
            return Err(LayoutError::Size(self.size));
        }
        if !self.desc.is_multiple_of(16)
            || !self.driver.is_multiple_of(2)
            || !self.device.is_multiple_of(4)
        {
            return Err(LayoutError::Alignment);
        }
        let size = u64::from(self.size);
        let rings = [
            (self.desc, DESC_SIZE * size),
            (self.driver, 6 + 2 * size),
            (self.device, 6 + 8 * size),
        ];
        if rings.iter().all(|&(address, length)| memory.contains(address, length)) {
            Ok(())
        } else {
            Err(LayoutError::OutsideRam)
        }
    }

    /// The next available chain, checked, or `None` if the driver has made none available.
    /// With `VIRTIO_F_EVENT_IDX` it then writes `avail_event` (the next entry it will read).
    pub fn pop<M: GuestMemory + ?Sized>(
        &mut self,
        memory: &mut M,
    ) -> Result<Option<Chain>, ChainError> {
        if self.size == 0 {
            return Ok(None);
        }
        let avail = read_u16(memory, self.driver.wrapping_add(2)).map_err(ChainError::Ring)?;
        let pending = avail.wrapping_sub(self.last_avail);
        if pending > self.size {
            return Err(ChainError::AvailIndex { avail, position: self.last_avail });
        }
        if pending == 0 {
            self.publish_avail_event(memory)?;
            return Ok(None);
        }
        let slot = u64::from(self.last_avail % self.size);
        let head =
            read_u16(memory, self.driver.wrapping_add(4 + 2 * slot)).map_err(ChainError::Ring)?;
        let chain = self.walk(memory, head)?;
        self.last_avail = self.last_avail.wrapping_add(1);
        self.publish_avail_event(memory)?;
        Ok(Some(chain))
    }

    /// With `VIRTIO_F_EVENT_IDX`: tells the driver which available entry the model reads next
    /// (`avail_event`, §2.7.10).
    fn publish_avail_event<M: GuestMemory + ?Sized>(
        &self,
        memory: &mut M,
    ) -> Result<(), ChainError> {
        if !self.event_idx {
            return Ok(());
        }
        let at = self.device.wrapping_add(4 + 8 * u64::from(self.size));
        memory.write(at, &self.last_avail.to_le_bytes()).map_err(ChainError::Ring)
    }

    /// Walks the chain from `head` (module invariants).
    pub fn walk<M: GuestMemory + ?Sized>(
        &self,
        memory: &M,
        head: u16,
    ) -> Result<Chain, ChainError> {
        if head >= self.size {
            return Err(ChainError::HeadOutOfRange { head });
        }
        let mut buffers = Vec::new();
        let (mut table, mut entries) = (self.desc, self.size);
        let (mut index, mut walked, mut total) = (head, 0u32, 0u64);
        let mut indirect = false;
        loop {
            if index >= entries {
                return Err(ChainError::IndexOutOfRange { index });
            }
            walked += 1;
            if walked > u32::from(entries) {
                return Err(ChainError::Loop);
            }
            let descriptor =
                read_descriptor(memory, table.wrapping_add(DESC_SIZE * u64::from(index)))?;
            if descriptor.flags & DESC_F_INDIRECT != 0 {
                if indirect || descriptor.flags & DESC_F_NEXT != 0 {
                    return Err(ChainError::IndirectPlacement);
                }
                if !self.indirect {
                    return Err(ChainError::IndirectNotNegotiated);
                }
                let length = descriptor.length;
                let count = u64::from(length) / DESC_SIZE;
                if length == 0 || u64::from(length) % DESC_SIZE != 0 || count > u64::from(self.size)
                {
                    return Err(ChainError::IndirectSize { length });
                }
                if !memory.contains(descriptor.address, u64::from(length)) {
                    let outside = OutsideRam { address: descriptor.address, length: length.into() };
                    return Err(ChainError::OutsideRam(outside));
                }
                (table, entries, index, walked, indirect) =
                    (descriptor.address, count as u16, 0, 0, true);
                continue;
            }
            let writable = descriptor.flags & DESC_F_WRITE != 0;
            if !writable && buffers.last().is_some_and(|b: &Buffer| b.writable) {
                return Err(ChainError::ReadableAfterWritable);
            }
            total += u64::from(descriptor.length);
            if total > MAX_CHAIN_BYTES {
                return Err(ChainError::TooLong);
            }
            if !memory.contains(descriptor.address, descriptor.length.into()) {
                let outside =
                    OutsideRam { address: descriptor.address, length: descriptor.length.into() };
                return Err(ChainError::OutsideRam(outside));
            }
            buffers.push(Buffer {
                address: descriptor.address,
                length: descriptor.length,
                writable,
            });
            if descriptor.flags & DESC_F_NEXT == 0 {
                return Ok(Chain { head, buffers });
            }
            index = descriptor.next;
        }
    }

    /// Publishes chain `head` as done with `written` bytes written into its writable buffers:
    /// the used entry, then the used index (§2.7.8).
    pub fn push<M: GuestMemory + ?Sized>(
        &mut self,
        memory: &mut M,
        head: u16,
        written: u32,
    ) -> Result<(), ChainError> {
        if self.size == 0 {
            return Ok(());
        }
        let at = self.device.wrapping_add(4 + 8 * u64::from(self.used % self.size));
        let mut entry = [0; 8];
        entry[..4].copy_from_slice(&u32::from(head).to_le_bytes());
        entry[4..].copy_from_slice(&written.to_le_bytes());
        memory.write(at, &entry).map_err(ChainError::Ring)?;
        let used = self.used.wrapping_add(1);
        memory.write(self.device.wrapping_add(2), &used.to_le_bytes()).map_err(ChainError::Ring)?;
        self.used = used;
        Ok(())
    }

    /// Whether the driver wants an interrupt for the entries pushed since the last call
    /// (none: false): by `used_event` with `VIRTIO_F_EVENT_IDX` (Linux's `vring_need_event`,
    /// §2.7.10), else unless `VIRTQ_AVAIL_F_NO_INTERRUPT` (§2.7.7).
    pub fn interrupt_needed<M: GuestMemory + ?Sized>(
        &mut self,
        memory: &M,
    ) -> Result<bool, ChainError> {
        let (old, new) = (self.signalled, self.used);
        if old == new || self.size == 0 {
            return Ok(false);
        }
        self.signalled = new;
        if self.event_idx {
            let at = self.driver.wrapping_add(4 + 2 * u64::from(self.size));
            let event = read_u16(memory, at).map_err(ChainError::Ring)?;
            Ok(new.wrapping_sub(event).wrapping_sub(1) < new.wrapping_sub(old))
        } else {
            let flags = read_u16(memory, self.driver).map_err(ChainError::Ring)?;
            Ok(flags & AVAIL_F_NO_INTERRUPT == 0)
        }
    }
}

fn read_descriptor<M: GuestMemory + ?Sized>(memory: &M, at: u64) -> Result<Descriptor, ChainError> {
    let ring = ChainError::Ring;
    Ok(Descriptor {
        address: read_u64(memory, at).map_err(ring)?,
        length: read_u32(memory, at.wrapping_add(8)).map_err(ring)?,
        flags: read_u16(memory, at.wrapping_add(12)).map_err(ring)?,
        next: read_u16(memory, at.wrapping_add(14)).map_err(ring)?,
    })
}
