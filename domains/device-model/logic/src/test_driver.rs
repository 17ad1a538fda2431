//! A simulated guest for the tests: RAM, and a driver that does what Linux's `virtio_mmio` and
//! `virtio_blk` do (probe, status sequence, feature negotiation, queue setup, requests of a
//! header, data and status descriptor, notify, reading the used ring).

use alloc::vec::Vec;

use crate::blk::{Block, VecDisk, SECTOR_SIZE, T_OUT};
use crate::memory::{GuestMemory, VecMemory};
use crate::mmio::*;
use crate::virtqueue::{DESC_F_INDIRECT, DESC_F_NEXT, DESC_F_WRITE};

/// Where the guest's RAM starts.
pub const RAM: u64 = 0x4000_0000;
/// Its size.
pub const RAM_SIZE: usize = 4 << 20;
/// The descriptor table.
pub const DESC: u64 = RAM;
/// The available ring.
pub const AVAIL: u64 = RAM + 0x1000;
/// The used ring.
pub const USED: u64 = RAM + 0x2000;
/// The queue size the driver picks.
pub const SIZE: u16 = 16;
/// Per head a request area of 0x4000 bytes: header at 0, status at 0x10, indirect table at
/// 0x100, data at 0x1000.
pub const REQUESTS: u64 = RAM + 0x10000;
/// The disk's sectors.
pub const SECTORS: u64 = 64;
/// The id string.
pub const ID: [u8; 20] = *b"xenolith-test-disk-0";

/// The model under test.
pub type Model = Transport<Block<VecDisk>>;

/// A register write to any virtio device that must be accepted.
pub fn write_register<D: Device>(
    model: &mut Transport<D>,
    memory: &mut VecMemory,
    offset: u64,
    value: u32,
) {
    assert_eq!(model.write(memory, offset, 4, value.into()), None, "{offset:#x}");
}

/// A register read from any virtio device that must be accepted.
pub fn read_register<D: Device>(model: &mut Transport<D>, offset: u64) -> u32 {
    let (value, fault) = model.read(offset, 4);
    assert_eq!(fault, None, "{offset:#x}");
    value as u32
}

/// A driver's feature negotiation (virtio 1.2 §3.1.1, steps 4 and 5 before `FEATURES_OK`):
/// the device's features read from both halves, those of `wanted` written back; returns them.
pub fn negotiate<D: Device>(model: &mut Transport<D>, memory: &mut VecMemory, wanted: u64) -> u64 {
    write_register(model, memory, DEVICE_FEATURES_SEL, 1);
    let high = read_register(model, DEVICE_FEATURES);
    write_register(model, memory, DEVICE_FEATURES_SEL, 0);
    let offered = (u64::from(high) << 32) | u64::from(read_register(model, DEVICE_FEATURES));
    let features = offered & wanted;
    write_register(model, memory, DRIVER_FEATURES_SEL, 1);
    write_register(model, memory, DRIVER_FEATURES, (features >> 32) as u32);
    write_register(model, memory, DRIVER_FEATURES_SEL, 0);
    write_register(model, memory, DRIVER_FEATURES, features as u32);
    features
}

/// A fresh virtio-blk model over a zeroed disk.
pub fn model() -> Model {
    model_on(VecDisk(alloc::vec![0; (SECTORS * SECTOR_SIZE) as usize]))
}

/// A model over `disk`.
pub fn model_on(disk: VecDisk) -> Model {
    Transport::new(Block::new(disk, ID))
}

/// A completed request as the guest sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Completion {
    pub head: u16,
    pub length: u32,
    pub status: u8,
}

/// The guest.
pub struct Guest {
    pub memory: VecMemory,
    free: Vec<u16>,
    chains: Vec<Vec<u16>>,
    /// The driver's available index.
    pub avail: u16,
    /// The used entries it has read.
    pub seen: u16,
}

impl Default for Guest {
    fn default() -> Self {
        Self::new()
    }
}

impl Guest {
    pub fn new() -> Self {
        Self {
            memory: VecMemory::new(RAM, RAM_SIZE),
            free: (0..SIZE).rev().collect(),
            chains: alloc::vec![Vec::new(); SIZE.into()],
            avail: 0,
            seen: 0,
        }
    }

    /// A register write that must be accepted.
    pub fn write(&mut self, model: &mut Model, offset: u64, value: u32) {
        write_register(model, &mut self.memory, offset, value);
    }

    /// A register read that must be accepted.
    pub fn read(&mut self, model: &mut Model, offset: u64) -> u32 {
        read_register(model, offset)
    }

    /// Linux's probe: the features it wants out of `wanted`, queue 0 set up; the features
    /// agreed, or `None` if the device refused them (FEATURES_OK stayed clear).
    pub fn probe(&mut self, model: &mut Model, wanted: u64) -> Option<u64> {
        assert_eq!(self.read(model, MAGIC_VALUE), MAGIC);
        assert_eq!(self.read(model, VERSION), 2);
        assert_eq!(self.read(model, DEVICE_ID), 2);
        self.write(model, STATUS, 0);
        self.write(model, STATUS, ACKNOWLEDGE.into());
        self.write(model, STATUS, (ACKNOWLEDGE | DRIVER).into());
        let features = negotiate(model, &mut self.memory, wanted);
        let status = self.read(model, STATUS) as u8;
        self.write(model, STATUS, (status | FEATURES_OK).into());
        if self.read(model, STATUS) as u8 & FEATURES_OK == 0 {
            let status = self.read(model, STATUS) as u8;
            self.write(model, STATUS, (status | FAILED).into());
            return None;
        }
        self.write(model, QUEUE_SEL, 0);
        assert_eq!(self.read(model, QUEUE_READY), 0);
        assert!(self.read(model, QUEUE_NUM_MAX) >= SIZE.into());
        self.write(model, QUEUE_NUM, SIZE.into());
        for (low, address) in
            [(QUEUE_DESC_LOW, DESC), (QUEUE_DRIVER_LOW, AVAIL), (QUEUE_DEVICE_LOW, USED)]
        {
            self.write(model, low, address as u32);
            self.write(model, low + 4, (address >> 32) as u32);
        }
        self.write(model, QUEUE_READY, 1);
        // Linux's virtio_mmio asks whether queue 1 exists: QueueNumMax 0 says no.
        self.write(model, QUEUE_SEL, 1);
        assert_eq!(self.read(model, QUEUE_READY), 0);
        assert_eq!(self.read(model, QUEUE_NUM_MAX), 0);
        let status = self.read(model, STATUS) as u8;
        self.write(model, STATUS, (status | DRIVER_OK).into());
        Some(features)
    }

    /// Descriptor `index` of the table at `table`.
    pub fn descriptor(
        &mut self,
        table: u64,
        index: u16,
        address: u64,
        length: u32,
        flags: u16,
        next: u16,
    ) {
        let at = table + 16 * u64::from(index);
        self.memory.put_u64(at, address);
        self.memory.put_u32(at + 8, length);
        self.memory.put_u16(at + 12, flags);
        self.memory.put_u16(at + 14, next);
    }

    /// Makes chain `head` available.
    pub fn make_available(&mut self, head: u16) {
        self.memory.put_u16(AVAIL + 4 + 2 * u64::from(self.avail % SIZE), head);
        self.avail = self.avail.wrapping_add(1);
        self.memory.put_u16(AVAIL + 2, self.avail);
    }

    /// The request area of chain `head`.
    pub fn area(head: u16) -> u64 {
        REQUESTS + 0x4000 * u64::from(head)
    }

    /// Puts a request on the ring as virtio_blk does (header, data if any, status), without
    /// notifying: `out` is written for `T_OUT`, `in_length` bytes are read otherwise. With
    /// `indirect`, one descriptor names a table holding the three. Returns its head.
    pub fn submit(
        &mut self,
        kind: u32,
        sector: u64,
        out: &[u8],
        in_length: u32,
        indirect: bool,
    ) -> u16 {
        let parts = if kind == T_OUT { out.len() } else { in_length as usize };
        let needed = if indirect {
            1
        } else if parts == 0 {
            2
        } else {
            3
        };
        let descriptors: Vec<u16> =
            (0..needed).map(|_| self.free.pop().expect("ring full")).collect();
        let head = descriptors[0];
        let area = Self::area(head);
        self.memory.put_u32(area, kind);
        self.memory.put_u32(area + 4, 0);
        self.memory.put_u64(area + 8, sector);
        self.memory.write(area + 0x10, &[0xff]).unwrap();
        let mut pieces = alloc::vec![(area, 16u32, 0u16)];
        if kind == T_OUT && !out.is_empty() {
            self.memory.write(area + 0x1000, out).unwrap();
            pieces.push((area + 0x1000, out.len() as u32, 0));
        } else if in_length > 0 {
            self.memory.write(area + 0x1000, &alloc::vec![0xee; in_length as usize]).unwrap();
            pieces.push((area + 0x1000, in_length, DESC_F_WRITE));
        }
        pieces.push((area + 0x10, 1, DESC_F_WRITE));
        if indirect {
            let table = area + 0x100;
            let count = pieces.len() as u16;
            for (index, &(address, length, flags)) in pieces.iter().enumerate() {
                let index = index as u16;
                let next = if index + 1 < count { DESC_F_NEXT } else { 0 };
                self.descriptor(table, index, address, length, flags | next, index + 1);
            }
            self.descriptor(DESC, head, table, 16 * u32::from(count), DESC_F_INDIRECT, 0);
        } else {
            for (i, &(address, length, flags)) in pieces.iter().enumerate() {
                let next = descriptors.get(i + 1).copied();
                let flags = flags | if next.is_some() { DESC_F_NEXT } else { 0 };
                self.descriptor(DESC, descriptors[i], address, length, flags, next.unwrap_or(0));
            }
        }
        self.chains[usize::from(head)] = descriptors;
        self.make_available(head);
        head
    }

    /// `QueueNotify` for queue 0 (must be accepted).
    pub fn notify(&mut self, model: &mut Model) {
        self.write(model, QUEUE_NOTIFY, 0);
    }

    /// The used entries published since the last call, their descriptors freed.
    pub fn completions(&mut self) -> Vec<Completion> {
        let used = self.memory.get_u16(USED + 2);
        let mut done = Vec::new();
        while self.seen != used {
            let at = USED + 4 + 8 * u64::from(self.seen % SIZE);
            let head = self.memory.get_u32(at) as u16;
            let length = self.memory.get_u32(at + 4);
            let mut status = [0];
            self.memory.read(Self::area(head) + 0x10, &mut status).unwrap();
            done.push(Completion { head, length, status: status[0] });
            let chain = core::mem::take(&mut self.chains[usize::from(head)]);
            assert!(!chain.is_empty(), "head {head} used but not outstanding");
            self.free.extend(chain);
            self.seen = self.seen.wrapping_add(1);
        }
        done
    }

    /// `length` bytes of chain `head`'s data area.
    pub fn data(&self, head: u16, length: usize) -> Vec<u8> {
        let mut bytes = alloc::vec![0; length];
        self.memory.read(Self::area(head) + 0x1000, &mut bytes).unwrap();
        bytes
    }
}
