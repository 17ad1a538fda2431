//! The portable half of the virtio console driver ([`crate::virtio`] is the bare-metal half):
//! the virtio-mmio device's reset, feature negotiation and queue set-up over its registers, the
//! split virtqueue ([`SplitQueue`]), and the console's two queues ([`Console`]), written against
//! two traits ([`Registers`], [`DmaMemory`]) so the host tests drive them with a simulated
//! device.
//!
//! The interface is OASIS virtio 1.2's: 4.2.2 (the MMIO register layout, version 2: "modern";
//! QEMU gives it with `-global virtio-mmio.force-legacy=false`), 3.1.1 (driver initialisation),
//! 2.7 (split virtqueues) and 5.3 (the console device). Linux's `include/uapi/linux/
//! virtio_mmio.h`, `virtio_ring.h`, `virtio_config.h` and `virtio_console.h` hold the same
//! numbers. The console is used without `VIRTIO_CONSOLE_F_MULTIPORT`: port 0 only, its data on
//! receiveq 0 and transmitq 1 (5.3.2), as QEMU's `virtconsole` (port 0) gives it.
//!
//! # The DMA pool
//! Queues and buffers live in one pool the device reaches (the DTB's `shared-dma-pool`, where
//! guest-physical == host-physical): [`Layout`] places the receive queue in its first page, the
//! transmit queue in its second, then [`RX_BUFFER`]-byte receive buffers and [`TX_BUFFER`]-byte
//! transmit buffers, one per descriptor.
//!
//! # Invariants
//! - The driver trusts only its own records of what it gave the device (which descriptor
//!   chains are out, their descriptors and writable lengths). What the device writes (the used
//!   ring's index, ids and lengths) is checked against them: a device that breaks the rules
//!   gets an [`Error`], never a panic, an access outside the pool, or a descriptor handed out
//!   twice.
//! - Every address the driver gives the device lies in the pool; every memory access goes
//!   through [`DmaMemory`] at a pool offset, inside the pool.
//! - Descriptors and ring entries are written before the index that publishes them
//!   ([`DmaMemory::write_barrier`]); used entries are read only after the used index that covers
//!   them ([`DmaMemory::read_barrier`]); the device's `flags` are read for the notification
//!   decision only after the avail index is published ([`DmaMemory::full_barrier`]).
#![forbid(unsafe_code)]

use alloc::vec::Vec;
use core::fmt;

/// The registers of a virtio-mmio device, version 2 (virtio 1.2, 4.2.2), as byte offsets.
pub mod register {
    /// "virt" ([`MAGIC`](super::MAGIC)).
    pub const MAGIC_VALUE: usize = 0x000;
    /// 2 for the modern interface, 1 for the legacy one.
    pub const VERSION: usize = 0x004;
    /// The device type; 0: no device behind this transport.
    pub const DEVICE_ID: usize = 0x008;
    /// The device's features, 32 bits at a time ([`DEVICE_FEATURES_SEL`]).
    pub const DEVICE_FEATURES: usize = 0x010;
    /// Which 32 bits [`DEVICE_FEATURES`] shows.
    pub const DEVICE_FEATURES_SEL: usize = 0x014;
    /// The features the driver accepts, 32 bits at a time.
    pub const DRIVER_FEATURES: usize = 0x020;
    /// Which 32 bits [`DRIVER_FEATURES`] takes.
    pub const DRIVER_FEATURES_SEL: usize = 0x024;
    /// The queue the queue registers below address.
    pub const QUEUE_SEL: usize = 0x030;
    /// The largest size the selected queue may have; 0: no such queue.
    pub const QUEUE_NUM_MAX: usize = 0x034;
    /// The selected queue's size.
    pub const QUEUE_NUM: usize = 0x038;
    /// The selected queue is set up (1) or not (0).
    pub const QUEUE_READY: usize = 0x044;
    /// Written with a queue's index: the driver has made buffers available there.
    pub const QUEUE_NOTIFY: usize = 0x050;
    /// Why the device interrupted: bit 0 used buffers, bit 1 configuration change.
    pub const INTERRUPT_STATUS: usize = 0x060;
    /// Written with the bits of [`INTERRUPT_STATUS`] handled.
    pub const INTERRUPT_ACK: usize = 0x064;
    /// The device status (`STATUS_*`); writing 0 resets the device.
    pub const STATUS: usize = 0x070;
    /// The selected queue's descriptor table, low and high 32 bits of its address.
    pub const QUEUE_DESC_LOW: usize = 0x080;
    /// See [`QUEUE_DESC_LOW`].
    pub const QUEUE_DESC_HIGH: usize = 0x084;
    /// The selected queue's available ring ("driver area").
    pub const QUEUE_DRIVER_LOW: usize = 0x090;
    /// See [`QUEUE_DRIVER_LOW`].
    pub const QUEUE_DRIVER_HIGH: usize = 0x094;
    /// The selected queue's used ring ("device area").
    pub const QUEUE_DEVICE_LOW: usize = 0x0a0;
    /// See [`QUEUE_DEVICE_LOW`].
    pub const QUEUE_DEVICE_HIGH: usize = 0x0a4;
}

/// `MagicValue`: "virt" in little-endian.
pub const MAGIC: u32 = 0x7472_6976;
/// `Version` of the modern interface.
pub const VERSION_MODERN: u32 = 2;
/// The console's device ID (virtio 1.2, 5: "Device Types").
pub const DEVICE_ID_CONSOLE: u32 = 3;

/// Status: the driver has noticed the device.
pub const STATUS_ACKNOWLEDGE: u32 = 1;
/// Status: the driver knows how to drive it.
pub const STATUS_DRIVER: u32 = 2;
/// Status: the driver is ready.
pub const STATUS_DRIVER_OK: u32 = 4;
/// Status: feature negotiation is complete.
pub const STATUS_FEATURES_OK: u32 = 8;
/// Status: the device needs a reset.
pub const STATUS_DEVICE_NEEDS_RESET: u32 = 0x40;
/// Status: the driver gave up on the device.
pub const STATUS_FAILED: u32 = 0x80;

/// `VIRTIO_F_VERSION_1` (feature bit 32): the device follows virtio 1.x. The only feature this
/// driver accepts.
pub const VIRTIO_F_VERSION_1: u32 = 32;

/// Descriptor flag: the chain goes on at `next`.
pub const VIRTQ_DESC_F_NEXT: u16 = 1;
/// Descriptor flag: the device writes the buffer (else it reads it).
pub const VIRTQ_DESC_F_WRITE: u16 = 2;
/// Avail ring flag: the driver wants no interrupt for this queue.
pub const VIRTQ_AVAIL_F_NO_INTERRUPT: u16 = 1;
/// Used ring flag: the device wants no notification for this queue.
pub const VIRTQ_USED_F_NO_NOTIFY: u16 = 1;

/// The console's port-0 receive queue (device to driver).
pub const RECEIVE_QUEUE: u16 = 0;
/// The console's port-0 transmit queue (driver to device).
pub const TRANSMIT_QUEUE: u16 = 1;
/// The most descriptors a queue is given (fewer if the device allows fewer).
pub const MAX_QUEUE_SIZE: u16 = 64;
/// Bytes of each receive buffer.
pub const RX_BUFFER: u32 = 512;
/// Bytes of each transmit buffer.
pub const TX_BUFFER: u32 = 4096;
/// How many times a reset's status is read back before the device is given up.
const RESET_READS: u32 = 1_000_000;

/// A virtio-mmio device's registers.
pub trait Registers {
    /// Reads the 32-bit register at byte offset `offset`.
    fn read(&mut self, offset: usize) -> u32;
    /// Writes the 32-bit register at byte offset `offset`.
    fn write(&mut self, offset: usize, value: u32);
}

/// The DMA pool: memory the device reads and writes while the driver does, addressed by offset
/// from the pool's start. Offsets passed are always inside the pool (module invariants).
pub trait DmaMemory {
    /// The pool's bus address (guest-physical == host-physical): what the device is told.
    fn bus_address(&self) -> u64;
    /// The pool's size in bytes.
    fn size(&self) -> u64;
    /// Reads the little-endian `u16` at `offset` (one access: the device may be writing it).
    fn read_u16(&self, offset: u64) -> u16;
    /// Reads the little-endian `u32` at `offset`.
    fn read_u32(&self, offset: u64) -> u32;
    /// Writes the little-endian `u16` at `offset` (one access: the device may be reading it).
    fn write_u16(&mut self, offset: u64, value: u16);
    /// Writes the little-endian `u32` at `offset`.
    fn write_u32(&mut self, offset: u64, value: u32);
    /// Writes the little-endian `u64` at `offset`.
    fn write_u64(&mut self, offset: u64, value: u64);
    /// Copies `into.len()` bytes from `offset`.
    fn read_bytes(&self, offset: u64, into: &mut [u8]);
    /// Copies `bytes` to `offset`.
    fn write_bytes(&mut self, offset: u64, bytes: &[u8]);
    /// Orders earlier reads of the pool before later ones (virtio's `virtio_rmb`).
    fn read_barrier(&self);
    /// Orders earlier writes to the pool before later ones (`virtio_wmb`).
    fn write_barrier(&self);
    /// Orders all earlier accesses before all later ones (`virtio_mb`).
    fn full_barrier(&self);
}

/// What went wrong with the device (or the pool it was given).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// The registers do not start with "virt".
    NotVirtio {
        /// What `MagicValue` read.
        magic: u32,
    },
    /// Not the modern interface (1 is legacy: QEMU needs
    /// `-global virtio-mmio.force-legacy=false`).
    Version {
        /// What `Version` read.
        version: u32,
    },
    /// No device behind this transport (`DeviceID` 0).
    NoDevice,
    /// A device of another type.
    WrongDevice {
        /// What `DeviceID` read.
        id: u32,
    },
    /// The status never read 0 after the reset.
    ResetStuck,
    /// The device does not offer `VIRTIO_F_VERSION_1`.
    NoVersion1,
    /// The device cleared `FEATURES_OK`: it refuses the features accepted.
    FeaturesRefused,
    /// The device has no such queue (`QueueNumMax` 0).
    QueueMissing {
        /// The queue.
        queue: u16,
    },
    /// The queue is still ready after the reset.
    QueueStillReady {
        /// The queue.
        queue: u16,
    },
    /// The pool cannot hold the queues and buffers.
    PoolTooSmall {
        /// Bytes needed.
        needed: u64,
        /// Bytes there are.
        size: u64,
    },
    /// The device set `DEVICE_NEEDS_RESET`.
    NeedsReset,
    /// The used index ran ahead of the chains the device holds.
    UsedIndex {
        /// The queue.
        queue: u16,
        /// The used entries consumed so far (free-running).
        consumed: u16,
        /// The used index the device wrote.
        index: u16,
    },
    /// A used entry names no chain the device holds.
    UsedId {
        /// The queue.
        queue: u16,
        /// The id the device wrote.
        id: u32,
    },
    /// A used entry says the device wrote more than the chain's writable bytes.
    UsedLength {
        /// The queue.
        queue: u16,
        /// The chain's head.
        id: u32,
        /// The length the device wrote.
        length: u32,
        /// The chain's writable bytes.
        capacity: u32,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::NotVirtio { magic } => write!(f, "not a virtio-mmio device (magic {magic:#x})"),
            Self::Version { version } => write!(
                f,
                "virtio-mmio version {version}, not 2 (QEMU: -global virtio-mmio.force-legacy=false)"
            ),
            Self::NoDevice => write!(f, "no device behind the virtio-mmio transport"),
            Self::WrongDevice { id } => write!(f, "virtio device type {id}, not a console (3)"),
            Self::ResetStuck => write!(f, "the device's status never read 0 after a reset"),
            Self::NoVersion1 => write!(f, "the device does not offer VIRTIO_F_VERSION_1"),
            Self::FeaturesRefused => write!(f, "the device refused the features (FEATURES_OK)"),
            Self::QueueMissing { queue } => write!(f, "the device has no queue {queue}"),
            Self::QueueStillReady { queue } => {
                write!(f, "queue {queue} is still ready after the reset")
            }
            Self::PoolTooSmall { needed, size } => {
                write!(f, "the DMA pool has {size} bytes; the console needs {needed}")
            }
            Self::NeedsReset => write!(f, "the device needs a reset (DEVICE_NEEDS_RESET)"),
            Self::UsedIndex { queue, consumed, index } => write!(
                f,
                "queue {queue}: used index {index} runs ahead of the buffers out ({consumed} consumed)"
            ),
            Self::UsedId { queue, id } => {
                write!(f, "queue {queue}: used entry names descriptor {id}, which is not out")
            }
            Self::UsedLength { queue, id, length, capacity } => write!(
                f,
                "queue {queue}: used entry {id} says {length} bytes written, of {capacity} writable"
            ),
        }
    }
}

/// One buffer of a descriptor chain: `length` bytes at pool offset `offset`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Buffer {
    /// Offset in the pool.
    pub offset: u64,
    /// Bytes.
    pub length: u32,
    /// The device writes it (else it reads it).
    pub device_writes: bool,
}

/// Why a chain was not made available (nothing the device did).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AddError {
    /// Not enough free descriptors now.
    Full,
    /// An empty chain, or one longer than the queue.
    BadChain,
    /// A buffer outside the pool.
    OutsidePool,
}

/// A chain the device holds: its descriptors (in order, by our own record) and what the
/// caller asked to get back with it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Chain {
    descriptors: Vec<u16>,
    writable: u32,
    token: u32,
}

/// A chain the device gave back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Used {
    /// The token it was made available with.
    pub token: u32,
    /// The bytes the device wrote into it.
    pub length: u32,
}

/// Where a queue of `size` descriptors lies, relative to its start (virtio 1.2, 2.7:
/// descriptor table 16-byte aligned, available ring 2, used ring 4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueueLayout {
    /// Descriptors.
    pub size: u16,
    /// The descriptor table (16 bytes each).
    pub descriptors: u64,
    /// The available ring: flags, idx, ring[size], used_event.
    pub avail: u64,
    /// The used ring: flags, idx, ring[size] of (id, len), avail_event.
    pub used: u64,
    /// Bytes in all.
    pub bytes: u64,
}

impl QueueLayout {
    /// The layout of a queue of `size` descriptors starting at pool offset `start` (16-byte
    /// aligned).
    pub fn new(start: u64, size: u16) -> Self {
        let size64 = u64::from(size);
        let descriptors = start;
        let avail = descriptors + 16 * size64;
        let used = (avail + 6 + 2 * size64).next_multiple_of(4);
        let end = used + 6 + 8 * size64;
        Self { size, descriptors, avail, used, bytes: end - start }
    }
}

/// A split virtqueue, the driver's side (virtio 1.2, 2.7).
#[derive(Clone, Debug)]
pub struct SplitQueue {
    /// Its index at the device (for notifications and errors).
    index: u16,
    layout: QueueLayout,
    /// Free descriptors (a stack).
    free: Vec<u16>,
    /// The chain out at the device whose head is the index, if any.
    out: Vec<Option<Chain>>,
    /// The next avail index to publish (free-running).
    avail_index: u16,
    /// Used entries consumed (free-running).
    used_consumed: u16,
}

impl SplitQueue {
    /// A queue on `layout` (its memory zeroed by the caller), device queue `index`.
    pub fn new(index: u16, layout: QueueLayout) -> Self {
        let size = layout.size;
        Self {
            index,
            layout,
            free: (0..size).rev().collect(),
            out: (0..size).map(|_| None).collect(),
            avail_index: 0,
            used_consumed: 0,
        }
    }

    /// Its layout.
    pub fn layout(&self) -> QueueLayout {
        self.layout
    }

    /// Free descriptors.
    pub fn free_descriptors(&self) -> usize {
        self.free.len()
    }

    /// Chains the device holds.
    pub fn chains_out(&self) -> usize {
        self.out.iter().filter(|chain| chain.is_some()).count()
    }

    /// Sets the avail ring's flags (e.g. [`VIRTQ_AVAIL_F_NO_INTERRUPT`]).
    pub fn set_avail_flags(&self, memory: &mut impl DmaMemory, flags: u16) {
        memory.write_u16(self.layout.avail, flags);
    }

    /// Writes `buffers` as one chain and puts its head in the avail ring (not yet published:
    /// see [`SplitQueue::publish`]); `token` comes back with it from [`SplitQueue::pop_used`].
    pub fn add(
        &mut self,
        memory: &mut impl DmaMemory,
        buffers: &[Buffer],
        token: u32,
    ) -> Result<(), AddError> {
        if buffers.is_empty() || buffers.len() > usize::from(self.layout.size) {
            return Err(AddError::BadChain);
        }
        if buffers.len() > self.free.len() {
            return Err(AddError::Full);
        }
        let outside = |buffer: &Buffer| {
            buffer
                .offset
                .checked_add(u64::from(buffer.length))
                .is_none_or(|end| end > memory.size())
        };
        if buffers.iter().any(outside) {
            return Err(AddError::OutsidePool);
        }
        let descriptors: Vec<u16> = (0..buffers.len()).filter_map(|_| self.free.pop()).collect();
        let mut writable = 0u32;
        for (position, (buffer, &descriptor)) in buffers.iter().zip(&descriptors).enumerate() {
            let next = descriptors.get(position + 1).copied();
            let mut flags = if next.is_some() { VIRTQ_DESC_F_NEXT } else { 0 };
            if buffer.device_writes {
                flags |= VIRTQ_DESC_F_WRITE;
                writable = writable.saturating_add(buffer.length);
            }
            let at = self.layout.descriptors + 16 * u64::from(descriptor);
            memory.write_u64(at, memory.bus_address() + buffer.offset);
            memory.write_u32(at + 8, buffer.length);
            memory.write_u16(at + 12, flags);
            memory.write_u16(at + 14, next.unwrap_or(0));
        }
        let Some(&head) = descriptors.first() else { return Err(AddError::BadChain) };
        let slot = u64::from(self.avail_index % self.layout.size);
        memory.write_u16(self.layout.avail + 4 + 2 * slot, head);
        self.avail_index = self.avail_index.wrapping_add(1);
        self.out[usize::from(head)] = Some(Chain { descriptors, writable, token });
        Ok(())
    }

    /// Publishes the chains added since the last call (the avail index) and says whether the
    /// device wants a notification ([`VIRTQ_USED_F_NO_NOTIFY`] clear).
    pub fn publish(&mut self, memory: &mut impl DmaMemory) -> bool {
        memory.write_barrier();
        memory.write_u16(self.layout.avail + 2, self.avail_index);
        memory.full_barrier();
        memory.read_u16(self.layout.used) & VIRTQ_USED_F_NO_NOTIFY == 0
    }

    /// The next chain the device gave back, checked against what it holds; its descriptors
    /// are free again.
    pub fn pop_used(&mut self, memory: &mut impl DmaMemory) -> Result<Option<Used>, Error> {
        let index = memory.read_u16(self.layout.used + 2);
        let ready = index.wrapping_sub(self.used_consumed);
        if ready == 0 {
            return Ok(None);
        }
        if usize::from(ready) > self.chains_out() {
            return Err(Error::UsedIndex {
                queue: self.index,
                consumed: self.used_consumed,
                index,
            });
        }
        memory.read_barrier();
        let slot = u64::from(self.used_consumed % self.layout.size);
        let element = self.layout.used + 4 + 8 * slot;
        let (id, length) = (memory.read_u32(element), memory.read_u32(element + 4));
        let Some(slot) = usize::try_from(id).ok().and_then(|head| self.out.get_mut(head)) else {
            return Err(Error::UsedId { queue: self.index, id });
        };
        let Some(capacity) = slot.as_ref().map(|chain| chain.writable) else {
            return Err(Error::UsedId { queue: self.index, id });
        };
        if length > capacity {
            return Err(Error::UsedLength { queue: self.index, id, length, capacity });
        }
        let Some(chain) = slot.take() else { return Err(Error::UsedId { queue: self.index, id }) };
        self.free.extend(chain.descriptors.iter().rev());
        self.used_consumed = self.used_consumed.wrapping_add(1);
        Ok(Some(Used { token: chain.token, length }))
    }
}

/// Where the console puts its queues and buffers in the pool (module doc).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    /// The receive queue.
    pub receive: QueueLayout,
    /// The transmit queue.
    pub transmit: QueueLayout,
    /// The first receive buffer (the others follow, [`RX_BUFFER`] bytes apart).
    pub rx_buffers: u64,
    /// The first transmit buffer ([`TX_BUFFER`] bytes apart).
    pub tx_buffers: u64,
    /// Bytes of the pool used.
    pub bytes: u64,
}

impl Layout {
    /// The layout for queues of `size` descriptors.
    pub fn new(size: u16) -> Self {
        const PAGE: u64 = 4096;
        let receive = QueueLayout::new(0, size);
        let transmit = QueueLayout::new(receive.bytes.next_multiple_of(PAGE), size);
        let rx_buffers = (transmit.descriptors + transmit.bytes).next_multiple_of(PAGE);
        let tx_buffers = rx_buffers + u64::from(size) * u64::from(RX_BUFFER);
        let bytes = tx_buffers + u64::from(size) * u64::from(TX_BUFFER);
        Self { receive, transmit, rx_buffers, tx_buffers, bytes }
    }
}

/// Resets the device (writes 0 to its status) and waits until its status reads 0.
pub fn reset(registers: &mut impl Registers) -> Result<(), Error> {
    registers.write(register::STATUS, 0);
    for _ in 0..RESET_READS {
        if registers.read(register::STATUS) == 0 {
            return Ok(());
        }
    }
    Err(Error::ResetStuck)
}

/// Acknowledges what the device interrupted for (reads `InterruptStatus`, writes it to
/// `InterruptACK`), so its interrupt line drops; returns the bits. For the interrupt handler.
pub fn acknowledge_interrupt(registers: &mut impl Registers) -> u32 {
    let status = registers.read(register::INTERRUPT_STATUS);
    if status != 0 {
        registers.write(register::INTERRUPT_ACK, status);
    }
    status
}

/// The console device's driver: port 0 of a virtio console, without multiport.
pub struct Console<R, M> {
    registers: R,
    memory: M,
    receive: SplitQueue,
    transmit: SplitQueue,
    layout: Layout,
    /// Transmit buffers not out at the device.
    tx_free: Vec<u32>,
}

impl<R: Registers, M: DmaMemory> Console<R, M> {
    /// Resets the device and sets it up (virtio 1.2, 3.1.1): acknowledge, negotiate
    /// `VIRTIO_F_VERSION_1` alone, both queues in the pool, every receive buffer made
    /// available, `DRIVER_OK`. Whatever state a previous driver left it in, nothing of it is
    /// used. On an error after the reset the device is marked `FAILED`.
    pub fn start(mut registers: R, mut memory: M) -> Result<Self, Error> {
        let magic = registers.read(register::MAGIC_VALUE);
        if magic != MAGIC {
            return Err(Error::NotVirtio { magic });
        }
        let version = registers.read(register::VERSION);
        if version != VERSION_MODERN {
            return Err(Error::Version { version });
        }
        match registers.read(register::DEVICE_ID) {
            0 => return Err(Error::NoDevice),
            DEVICE_ID_CONSOLE => {}
            id => return Err(Error::WrongDevice { id }),
        }
        reset(&mut registers)?;
        let started = Self::set_up(&mut registers, &mut memory);
        match started {
            Ok((receive, transmit, layout)) => {
                let size = layout.transmit.size;
                let mut console = Self {
                    registers,
                    memory,
                    receive,
                    transmit,
                    layout,
                    tx_free: (0..u32::from(size)).rev().collect(),
                };
                console.registers.write(register::STATUS, Self::ALL_BUT_OK | STATUS_DRIVER_OK);
                console.notify(RECEIVE_QUEUE);
                Ok(console)
            }
            Err(error) => {
                let status = registers.read(register::STATUS);
                registers.write(register::STATUS, status | STATUS_FAILED);
                Err(error)
            }
        }
    }

    const ALL_BUT_OK: u32 = STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK;

    fn set_up(
        registers: &mut R,
        memory: &mut M,
    ) -> Result<(SplitQueue, SplitQueue, Layout), Error> {
        registers.write(register::STATUS, STATUS_ACKNOWLEDGE);
        registers.write(register::STATUS, STATUS_ACKNOWLEDGE | STATUS_DRIVER);
        registers.write(register::DEVICE_FEATURES_SEL, VIRTIO_F_VERSION_1 / 32);
        if registers.read(register::DEVICE_FEATURES) & (1 << (VIRTIO_F_VERSION_1 % 32)) == 0 {
            return Err(Error::NoVersion1);
        }
        registers.write(register::DRIVER_FEATURES_SEL, 0);
        registers.write(register::DRIVER_FEATURES, 0);
        registers.write(register::DRIVER_FEATURES_SEL, VIRTIO_F_VERSION_1 / 32);
        registers.write(register::DRIVER_FEATURES, 1 << (VIRTIO_F_VERSION_1 % 32));
        registers.write(register::STATUS, Self::ALL_BUT_OK);
        if registers.read(register::STATUS) & STATUS_FEATURES_OK == 0 {
            return Err(Error::FeaturesRefused);
        }
        let mut size = MAX_QUEUE_SIZE;
        for queue in [RECEIVE_QUEUE, TRANSMIT_QUEUE] {
            registers.write(register::QUEUE_SEL, u32::from(queue));
            if registers.read(register::QUEUE_READY) != 0 {
                return Err(Error::QueueStillReady { queue });
            }
            let most = registers.read(register::QUEUE_NUM_MAX);
            if most == 0 {
                return Err(Error::QueueMissing { queue });
            }
            // Split queues have a power-of-two size (virtio 1.2, 2.7).
            let fits = 1u16 << (u32::from(size).min(most).ilog2());
            size = size.min(fits);
        }
        let layout = Layout::new(size);
        if layout.bytes > memory.size() {
            return Err(Error::PoolTooSmall { needed: layout.bytes, size: memory.size() });
        }
        let zeros = [0u8; 256];
        let mut at = 0;
        while at < layout.rx_buffers {
            let length = (layout.rx_buffers - at).min(zeros.len() as u64);
            memory.write_bytes(at, &zeros[..length as usize]);
            at += length;
        }
        let mut receive = SplitQueue::new(RECEIVE_QUEUE, layout.receive);
        let transmit = SplitQueue::new(TRANSMIT_QUEUE, layout.transmit);
        // Transmitted buffers are reclaimed when more room is needed: no interrupt for them.
        transmit.set_avail_flags(memory, VIRTQ_AVAIL_F_NO_INTERRUPT);
        for (queue, layout) in [(RECEIVE_QUEUE, layout.receive), (TRANSMIT_QUEUE, layout.transmit)]
        {
            let address = |offset: u64| memory.bus_address() + offset;
            let halves = |value: u64| (value as u32, (value >> 32) as u32);
            registers.write(register::QUEUE_SEL, u32::from(queue));
            registers.write(register::QUEUE_NUM, u32::from(size));
            for (low, value) in [
                (register::QUEUE_DESC_LOW, address(layout.descriptors)),
                (register::QUEUE_DRIVER_LOW, address(layout.avail)),
                (register::QUEUE_DEVICE_LOW, address(layout.used)),
            ] {
                let (low_half, high_half) = halves(value);
                registers.write(low, low_half);
                registers.write(low + 4, high_half);
            }
            registers.write(register::QUEUE_READY, 1);
        }
        for buffer in 0..u32::from(size) {
            let offset = layout.rx_buffers + u64::from(buffer) * u64::from(RX_BUFFER);
            let chain = [Buffer { offset, length: RX_BUFFER, device_writes: true }];
            // Every descriptor is free and every buffer inside the pool (checked above).
            if receive.add(memory, &chain, buffer).is_err() {
                return Err(Error::PoolTooSmall { needed: layout.bytes, size: memory.size() });
            }
        }
        receive.publish(memory);
        Ok((receive, transmit, layout))
    }

    /// Its layout in the pool.
    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// Its registers (for the interrupt acknowledgement, or a test's look).
    pub fn registers(&mut self) -> &mut R {
        &mut self.registers
    }

    fn notify(&mut self, queue: u16) {
        self.registers.write(register::QUEUE_NOTIFY, u32::from(queue));
    }

    /// Appends what the device received (the host's bytes) to `into`, and gives the buffers
    /// back to the device. Returns how many bytes were appended.
    pub fn receive(&mut self, into: &mut Vec<u8>) -> Result<usize, Error> {
        if self.registers.read(register::STATUS) & STATUS_DEVICE_NEEDS_RESET != 0 {
            return Err(Error::NeedsReset);
        }
        let mut received = 0;
        let mut returned = false;
        while let Some(used) = self.receive.pop_used(&mut self.memory)? {
            let offset = self.layout.rx_buffers + u64::from(used.token) * u64::from(RX_BUFFER);
            let start = into.len();
            into.resize(start + used.length as usize, 0);
            self.memory.read_bytes(offset, &mut into[start..]);
            received += used.length as usize;
            let chain = [Buffer { offset, length: RX_BUFFER, device_writes: true }];
            // The chain just came back: its descriptor is free.
            if self.receive.add(&mut self.memory, &chain, used.token).is_ok() {
                returned = true;
            }
        }
        if returned && self.receive.publish(&mut self.memory) {
            self.notify(RECEIVE_QUEUE);
        }
        Ok(received)
    }

    /// Takes back the transmit buffers the device is done with.
    fn reclaim(&mut self) -> Result<(), Error> {
        while let Some(used) = self.transmit.pop_used(&mut self.memory)? {
            self.tx_free.push(used.token);
        }
        Ok(())
    }

    /// Queues as much of `bytes` for the host as there are free transmit buffers for, and
    /// notifies the device. Returns how many bytes were queued (0: all buffers are out; call
    /// again when the device has taken some).
    pub fn send(&mut self, bytes: &[u8]) -> Result<usize, Error> {
        self.reclaim()?;
        let mut sent = 0;
        for chunk in bytes.chunks(TX_BUFFER as usize) {
            let Some(buffer) = self.tx_free.pop() else { break };
            let offset = self.layout.tx_buffers + u64::from(buffer) * u64::from(TX_BUFFER);
            self.memory.write_bytes(offset, chunk);
            let chain = [Buffer { offset, length: chunk.len() as u32, device_writes: false }];
            if self.transmit.add(&mut self.memory, &chain, buffer).is_err() {
                self.tx_free.push(buffer);
                break;
            }
            sent += chunk.len();
        }
        if sent > 0 && self.transmit.publish(&mut self.memory) {
            self.notify(TRANSMIT_QUEUE);
        }
        Ok(sent)
    }

    /// Whether the device still holds transmit buffers (after taking back those it is done
    /// with).
    pub fn transmitting(&mut self) -> Result<bool, Error> {
        self.reclaim()?;
        Ok(self.transmit.chains_out() > 0)
    }
}

#[cfg(test)]
mod tests;
