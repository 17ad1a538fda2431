//! virtio-net looped back, driven as Linux's `virtio_net` would (receive buffers posted,
//! frames sent behind a header of zeroes), over flat guest RAM; then dropped frames, hostile
//! chains and a restart between the two pushes of a loopback.

use alloc::vec::Vec;

use crate::memory::{GuestMemory, VecMemory};
use crate::mmio::*;
use crate::net::*;
use crate::state::Saved;
use crate::test_driver::{negotiate, read_register, write_register};
use crate::virtqueue::{ChainError, DESC_F_NEXT, DESC_F_WRITE};

const RAM: u64 = 0x4000_0000;
const RAM_SIZE: usize = 1 << 20;
const SIZE: u16 = 16;
/// Per queue `q` its rings at `RAM + 0x4000 * q`: descriptors, then available ring at
/// 0x1000, used ring at 0x2000.
fn ring(queue: u16) -> (u64, u64, u64) {
    let base = RAM + 0x4000 * u64::from(queue);
    (base, base + 0x1000, base + 0x2000)
}
/// Per queue and head a 2 KiB buffer area.
fn area(queue: u16, head: u16) -> u64 {
    RAM + 0x10000 + 0x10000 * u64::from(queue) + 0x800 * u64::from(head)
}

type Model = Transport<Net>;

struct Guest {
    memory: VecMemory,
    avail: [u16; 2],
    seen: [u16; 2],
}

impl Guest {
    fn new() -> Self {
        Self { memory: VecMemory::new(RAM, RAM_SIZE), avail: [0; 2], seen: [0; 2] }
    }

    fn write(&mut self, model: &mut Model, offset: u64, value: u32) {
        write_register(model, &mut self.memory, offset, value);
    }

    fn read(&mut self, model: &mut Model, offset: u64) -> u32 {
        read_register(model, offset)
    }

    /// Linux's probe of a virtio-net device: `wanted` features, both queues set up.
    fn probe(&mut self, model: &mut Model, wanted: u64) -> u64 {
        assert_eq!(self.read(model, crate::mmio::DEVICE_ID), crate::net::DEVICE_ID);
        self.write(model, STATUS, 0);
        self.write(model, STATUS, (ACKNOWLEDGE | DRIVER).into());
        let features = negotiate(model, &mut self.memory, wanted);
        self.write(model, STATUS, (ACKNOWLEDGE | DRIVER | FEATURES_OK).into());
        assert_ne!(self.read(model, STATUS) as u8 & FEATURES_OK, 0);
        for queue in [RECEIVEQ, TRANSMITQ] {
            self.write(model, QUEUE_SEL, queue.into());
            assert!(self.read(model, QUEUE_NUM_MAX) >= SIZE.into());
            self.write(model, QUEUE_NUM, SIZE.into());
            let (desc, driver, device) = ring(queue);
            for (low, address) in
                [(QUEUE_DESC_LOW, desc), (QUEUE_DRIVER_LOW, driver), (QUEUE_DEVICE_LOW, device)]
            {
                self.write(model, low, address as u32);
                self.write(model, low + 4, (address >> 32) as u32);
            }
            self.write(model, QUEUE_READY, 1);
        }
        self.write(model, QUEUE_SEL, 2);
        assert_eq!(self.read(model, QUEUE_NUM_MAX), 0);
        self.write(model, STATUS, (ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK).into());
        features
    }

    fn descriptor(
        &mut self,
        queue: u16,
        index: u16,
        address: u64,
        length: u32,
        flags: u16,
        next: u16,
    ) {
        let at = ring(queue).0 + 16 * u64::from(index);
        self.memory.put_u64(at, address);
        self.memory.put_u32(at + 8, length);
        self.memory.put_u16(at + 12, flags);
        self.memory.put_u16(at + 14, next);
    }

    fn make_available(&mut self, queue: u16, head: u16) {
        let q = usize::from(queue);
        let driver = ring(queue).1;
        self.memory.put_u16(driver + 4 + 2 * u64::from(self.avail[q] % SIZE), head);
        self.avail[q] = self.avail[q].wrapping_add(1);
        self.memory.put_u16(driver + 2, self.avail[q]);
    }

    /// Posts receive buffer `head` (< 8) of `length` bytes, in one descriptor or split after
    /// the header (the second descriptor `head + 8`); its area (2 KiB) set to 0xee.
    fn post(&mut self, head: u16, length: u32, split: bool) {
        let at = area(RECEIVEQ, head);
        self.memory.write(at, &alloc::vec![0xee; 0x800]).unwrap();
        if split {
            self.descriptor(
                RECEIVEQ,
                head,
                at,
                HEADER as u32,
                DESC_F_WRITE | DESC_F_NEXT,
                head + 8,
            );
            self.descriptor(
                RECEIVEQ,
                head + 8,
                at + HEADER as u64,
                length - HEADER as u32,
                DESC_F_WRITE,
                0,
            );
        } else {
            self.descriptor(RECEIVEQ, head, at, length, DESC_F_WRITE, 0);
        }
        self.make_available(RECEIVEQ, head);
    }

    /// Sends `frame` on transmit chain `head` (< 8): a header of zeroes, then the frame, in one
    /// descriptor or two (`head + 8` the frame's).
    fn send(&mut self, head: u16, frame: &[u8], split: bool) {
        let at = area(TRANSMITQ, head);
        self.memory.write(at, &[0; HEADER]).unwrap();
        self.memory.write(at + HEADER as u64, frame).unwrap();
        let total = (HEADER + frame.len()) as u32;
        if split {
            self.descriptor(TRANSMITQ, head, at, HEADER as u32, DESC_F_NEXT, head + 8);
            self.descriptor(TRANSMITQ, head + 8, at + HEADER as u64, frame.len() as u32, 0, 0);
        } else {
            self.descriptor(TRANSMITQ, head, at, total, 0, 0);
        }
        self.make_available(TRANSMITQ, head);
    }

    fn notify(&mut self, model: &mut Model, queue: u16) -> Option<Fault> {
        model.write(&mut self.memory, QUEUE_NOTIFY, 4, queue.into())
    }

    /// The used entries of `queue` since the last call: (head, length).
    fn used(&mut self, queue: u16) -> Vec<(u16, u32)> {
        let device = ring(queue).2;
        let q = usize::from(queue);
        let used = self.memory.get_u16(device + 2);
        let mut done = Vec::new();
        while self.seen[q] != used {
            let at = device + 4 + 8 * u64::from(self.seen[q] % SIZE);
            done.push((self.memory.get_u32(at) as u16, self.memory.get_u32(at + 4)));
            self.seen[q] = self.seen[q].wrapping_add(1);
        }
        done
    }

    /// The `length` bytes received in buffer `head`.
    fn received(&self, head: u16, length: usize) -> Vec<u8> {
        let mut bytes = alloc::vec![0; length];
        self.memory.read(area(RECEIVEQ, head), &mut bytes).unwrap();
        bytes
    }
}

/// A frame: broadcast destination, our source, a length, then a pattern from `seed`.
fn frame(seed: u8, length: usize) -> Vec<u8> {
    let mut bytes: Vec<u8> =
        (0..length).map(|i| (i as u8).wrapping_mul(37).wrapping_add(seed)).collect();
    bytes[..6].fill(0xff);
    bytes[6..12].copy_from_slice(&DEFAULT_MAC);
    bytes
}

fn the_header() -> [u8; HEADER] {
    let mut header = [0; HEADER];
    header[10] = 1;
    header
}

fn probed(features: u64) -> (Model, Guest) {
    let mut model = Transport::new(Net::new(DEFAULT_MAC));
    let mut guest = Guest::new();
    guest.probe(&mut model, features);
    (model, guest)
}

fn loops_back(features: u64, split: bool) {
    let (mut model, mut guest) = probed(features);
    // The configuration space: the MAC, and the link up.
    let mac: Vec<u64> = (0..6).map(|i| model.read(CONFIG + i, 1).0).collect();
    assert_eq!(mac, DEFAULT_MAC.map(u64::from));
    assert_eq!(model.read(CONFIG + 6, 2), (u64::from(S_LINK_UP), None));
    let sizes = [ETH_HLEN, 60, 61, 1514, MAX_FRAME, 333];
    for head in 0..sizes.len() as u16 {
        guest.post(head, (HEADER + MAX_FRAME) as u32, split);
    }
    assert_eq!(guest.notify(&mut model, RECEIVEQ), None);
    assert!(guest.used(RECEIVEQ).is_empty() && !model.interrupt_line());
    for (head, &size) in sizes.iter().enumerate() {
        guest.send(head as u16, &frame(head as u8, size), split);
    }
    assert_eq!(guest.notify(&mut model, TRANSMITQ), None);
    let expected: Vec<(u16, u32)> =
        sizes.iter().enumerate().map(|(h, &s)| (h as u16, (HEADER + s) as u32)).collect();
    assert_eq!(guest.used(RECEIVEQ), expected);
    let sent: Vec<(u16, u32)> = (0..sizes.len() as u16).map(|h| (h, 0)).collect();
    assert_eq!(guest.used(TRANSMITQ), sent);
    for (head, &size) in sizes.iter().enumerate() {
        let bytes = guest.received(head as u16, HEADER + size + 1);
        assert_eq!(bytes[..HEADER], the_header(), "frame {head}");
        assert_eq!(bytes[HEADER..HEADER + size], frame(head as u8, size), "frame {head}");
        assert_eq!(bytes[HEADER + size], 0xee, "frame {head}: nothing past its end");
    }
    assert!(model.interrupt_line());
    assert_eq!(model.device().looped(), sizes.len() as u64);
    assert_eq!(model.device().dropped(), Dropped::default());
    assert_eq!(model.status() & (DRIVER_OK | NEEDS_RESET), DRIVER_OK);
}

#[test]
fn frames_come_back_byte_for_byte() {
    loops_back(u64::MAX, false);
    loops_back(u64::MAX, true);
    loops_back(F_VERSION_1, true);
}

#[test]
fn a_frame_with_no_receive_buffer_is_dropped() {
    let (mut model, mut guest) = probed(u64::MAX);
    guest.send(0, &frame(1, 100), false);
    assert_eq!(guest.notify(&mut model, TRANSMITQ), None);
    assert_eq!(guest.used(TRANSMITQ), [(0, 0)]);
    assert!(guest.used(RECEIVEQ).is_empty());
    assert_eq!(model.device().dropped(), Dropped { no_buffer: 1, ..Dropped::default() });
    // A buffer posted later receives the next frame, not the dropped one.
    guest.post(0, 2048, false);
    guest.send(1, &frame(2, 100), true);
    assert_eq!(guest.notify(&mut model, TRANSMITQ), None);
    assert_eq!(guest.used(RECEIVEQ), [(0, 112)]);
    assert_eq!(guest.received(0, 112)[HEADER..], frame(2, 100));
}

#[test]
fn frames_of_bad_size_or_too_big_for_their_buffer_are_dropped() {
    let (mut model, mut guest) = probed(u64::MAX);
    guest.post(0, (HEADER + 50) as u32, false);
    guest.post(1, (HEADER + 100) as u32, true);
    guest.send(0, &frame(1, ETH_HLEN - 1), false);
    guest.send(1, &frame(2, MAX_FRAME + 1), false);
    guest.send(2, &frame(3, 51), false);
    guest.send(3, &frame(4, 100), true);
    assert_eq!(guest.notify(&mut model, TRANSMITQ), None);
    assert_eq!(guest.used(TRANSMITQ), [(0, 0), (1, 0), (2, 0), (3, 0)]);
    // Buffer 0 was too small for frame 2: used, nothing written; buffer 1 got frame 3.
    assert_eq!(guest.used(RECEIVEQ), [(0, 0), (1, 112)]);
    assert_eq!(guest.received(0, HEADER + 50), alloc::vec![0xee; HEADER + 50]);
    assert_eq!(guest.received(1, 112)[HEADER..], frame(4, 100));
    let dropped = Dropped { size: 2, no_buffer: 0, did_not_fit: 1 };
    assert_eq!(model.device().dropped(), dropped);
    assert_eq!(model.status() & NEEDS_RESET, 0);
}

/// Notifies the transmit queue and expects `fault` on it, the device needing a reset and
/// serving nothing until reset.
fn expect_fault(model: &mut Model, guest: &mut Guest, fault: DeviceFault) {
    let expected = Fault::Queue { queue: TRANSMITQ, fault };
    assert_eq!(guest.notify(model, TRANSMITQ), Some(expected));
    assert_ne!(model.status() & NEEDS_RESET, 0);
    assert_ne!(model.read(INTERRUPT_STATUS, 4).0 & u64::from(INT_CONFIG), 0);
    let used = guest.memory.get_u16(ring(TRANSMITQ).2 + 2);
    guest.send(5, &frame(0, 60), false);
    assert_eq!(guest.notify(model, TRANSMITQ), None);
    assert_eq!(guest.memory.get_u16(ring(TRANSMITQ).2 + 2), used);
}

#[test]
fn a_transmit_chain_without_header_or_with_writable_buffers_needs_a_reset() {
    let (mut model, mut guest) = probed(u64::MAX);
    guest.descriptor(TRANSMITQ, 0, area(TRANSMITQ, 0), HEADER as u32 - 1, 0, 0);
    guest.make_available(TRANSMITQ, 0);
    let reason = "no room for the 12-byte virtio_net_hdr";
    expect_fault(&mut model, &mut guest, DeviceFault::Malformed { head: 0, reason });

    let (mut model, mut guest) = probed(u64::MAX);
    let at = area(TRANSMITQ, 0);
    guest.descriptor(TRANSMITQ, 0, at, 100, DESC_F_NEXT, 1);
    guest.descriptor(TRANSMITQ, 1, at + 100, 1, DESC_F_WRITE, 0);
    guest.make_available(TRANSMITQ, 0);
    let reason = "a writable buffer in a transmit chain";
    expect_fault(&mut model, &mut guest, DeviceFault::Malformed { head: 0, reason });
}

#[test]
fn a_hostile_receive_chain_needs_a_reset() {
    // Readable.
    let (mut model, mut guest) = probed(u64::MAX);
    guest.descriptor(RECEIVEQ, 2, area(RECEIVEQ, 2), 2048, 0, 0);
    guest.make_available(RECEIVEQ, 2);
    guest.send(0, &frame(0, 60), false);
    let reason = "a readable buffer in a receive chain";
    expect_fault(&mut model, &mut guest, DeviceFault::Malformed { head: 2, reason });
    // A loop.
    let (mut model, mut guest) = probed(u64::MAX);
    guest.descriptor(RECEIVEQ, 0, area(RECEIVEQ, 0), 16, DESC_F_WRITE | DESC_F_NEXT, 1);
    guest.descriptor(RECEIVEQ, 1, area(RECEIVEQ, 1), 16, DESC_F_WRITE | DESC_F_NEXT, 0);
    guest.make_available(RECEIVEQ, 0);
    guest.send(0, &frame(0, 60), false);
    expect_fault(&mut model, &mut guest, DeviceFault::Chain(ChainError::Loop));
    // Outside RAM.
    let (mut model, mut guest) = probed(u64::MAX);
    guest.descriptor(RECEIVEQ, 0, RAM + RAM_SIZE as u64 - 8, 16, DESC_F_WRITE, 0);
    guest.make_available(RECEIVEQ, 0);
    guest.send(0, &frame(0, 60), false);
    let outside = crate::memory::OutsideRam { address: RAM + RAM_SIZE as u64 - 8, length: 16 };
    expect_fault(&mut model, &mut guest, DeviceFault::Chain(ChainError::OutsideRam(outside)));
    // An available index far ahead.
    let (mut model, mut guest) = probed(u64::MAX);
    guest.memory.put_u16(ring(RECEIVEQ).1 + 2, SIZE + 1);
    guest.send(0, &frame(0, 60), false);
    let error = ChainError::AvailIndex { avail: SIZE + 1, position: 0 };
    expect_fault(&mut model, &mut guest, DeviceFault::Chain(error));
}

/// Seeded random descriptor tables and rings: nothing panics, and whatever is looped back is
/// byte for byte what was sent.
#[test]
fn random_rings_never_panic() {
    let mut rng = crate::test_rng::Xorshift(0x0005_eed0_f00d_beef);
    for _ in 0..500 {
        let (mut model, mut guest) = probed(u64::MAX);
        for queue in [RECEIVEQ, TRANSMITQ] {
            for index in 0..SIZE {
                let address = area(queue, (rng.next() % 16) as u16) + rng.next() % 64;
                let length = (rng.next() % 2200) as u32;
                let flags = (rng.next() % 8) as u16;
                let next = (rng.next() % 20) as u16;
                guest.descriptor(queue, index, address, length, flags, next);
            }
            for _ in 0..(rng.next() % 6) {
                guest.make_available(queue, (rng.next() % 18) as u16);
            }
        }
        let _ = guest.notify(&mut model, TRANSMITQ);
        let _ = guest.notify(&mut model, RECEIVEQ);
        let _ = model.read(STATUS, 4);
    }
}

fn saved(model: &Model) -> Saved {
    let mut bytes = Vec::new();
    Saved { devices: alloc::vec![model.save()] }.encode(&mut bytes);
    Saved::decode(&bytes).unwrap()
}

/// The model killed after the receive chain was used but before the transmit chain was: the
/// new model loops the frame back again (a duplicate, never a loss); killed before the
/// notify was served: the new model loops it back once.
#[test]
fn a_restart_redoes_the_transmit_chains_not_yet_used() {
    let (mut model, mut guest) = probed(u64::MAX);
    for head in 0..4 {
        guest.post(head, 2048, false);
    }
    guest.send(0, &frame(9, 200), false);
    let before = saved(&model);
    let tx_used = ring(TRANSMITQ).2 + 2;
    assert_eq!(guest.notify(&mut model, TRANSMITQ), None);
    // Undo the transmit chain's used index: the kill came between the pushes.
    guest.memory.put_u16(tx_used, 0);
    let (model, fault) =
        Transport::restore(Net::new(DEFAULT_MAC), &before.devices[0], &mut guest.memory).unwrap();
    assert_eq!(fault, None);
    assert_eq!(guest.used(RECEIVEQ), [(0, 212), (1, 212)]);
    assert_eq!(guest.used(TRANSMITQ), [(0, 0)]);
    assert_eq!(guest.received(1, 212)[HEADER..], frame(9, 200));
    assert!(model.interrupt_line());
    // Killed with a frame available and not yet served: done once by the new model.
    guest.send(1, &frame(10, 300), true);
    let before = saved(&model);
    let (model, fault) =
        Transport::restore(Net::new(DEFAULT_MAC), &before.devices[0], &mut guest.memory).unwrap();
    assert_eq!(fault, None);
    assert_eq!(guest.used(RECEIVEQ), [(2, 312)]);
    assert_eq!(guest.used(TRANSMITQ), [(1, 0)]);
    assert_eq!(guest.received(2, 312)[HEADER..], frame(10, 300));
    assert_eq!(model.device().looped(), 1);
}
