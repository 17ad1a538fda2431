//! `virtio-net` (`frames=<n>`): a virtio-mmio driver of the device model's looped-back
//! virtio-net at [`BASE`] (virtio 1.2 §4.2.3 initialisation with `VIRTIO_F_VERSION_1`,
//! `VIRTIO_NET_F_MAC` and `VIRTIO_NET_F_STATUS`; queue 0 receive, queue 1 transmit, each of
//! [`SIZE`] entries in this domain's RAM, which the device model reaches by foreign mapping).
//! It posts [`SIZE`] receive buffers, then transmits `n` frames (default 200) in batches of
//! [`BATCH`] per notify: frame `s` is [`frame_length`]`(s)` bytes (60 to 1514), broadcast, from
//! the device's MAC, EtherType 0x88b5 (IEEE local experimental), the sequence number `s`, then
//! a pattern of `s`. Each must come back in the next receive buffer, in order, behind a 12-byte
//! header of zeroes with `num_buffers` 1, byte for byte; the buffer is posted again. It prints
//! `PASS <n> frames looped back`, or a `FAIL` line naming the first frame that differs.
//!
//! Register offsets and status bits are the device model logic crate's (Linux's
//! `include/uapi/linux/virtio_mmio.h` and `virtio_net.h`, virtio 1.2 §4.2.2, §5.1).

use core::mem::offset_of;
use core::sync::atomic::{fence, Ordering};

use xenolith_device_model_logic::mmio::{
    self, ACKNOWLEDGE, DRIVER, DRIVER_OK, FEATURES_OK, NEEDS_RESET,
};
use xenolith_device_model_logic::net::{self, HEADER, RECEIVEQ, TRANSMITQ};
use xenolith_runtime::{hypercall, println, StartInfo};

use crate::virtio_hostile::{read32, status, write32};

/// The device's window: the manifest tool puts the virtio-net device in the virtio-mmio slot
/// after the guest's disks, here the first (`GUEST_VIRTIO_MMIO_BASE`), as `dm-net.toml` gives
/// the guest no disk.
const BASE: u64 = 0x0200_0000;
/// Entries in each queue, and receive buffers posted.
const SIZE: usize = 16;
/// Frames sent per notify (each takes two transmit descriptors).
const BATCH: usize = SIZE / 2;
/// Each buffer's bytes (a header and the longest frame, 1518, fit).
const BUFFER: usize = 2048;
/// `VIRTQ_DESC_F_NEXT`, `VIRTQ_DESC_F_WRITE` (virtio 1.2 §2.7.5).
const F_NEXT: u16 = 1;
const F_WRITE: u16 = 2;

/// A split virtqueue's rings (virtio 1.2 §2.7), in one page.
#[repr(C, align(4096))]
#[derive(Clone, Copy)]
struct Ring {
    desc: [[u64; 2]; SIZE],
    avail: [u16; 3 + SIZE],
    _pad: [u8; 1024],
    used: [u32; 2 + 2 * SIZE],
}

/// Both queues and their buffers, in this domain's RAM (identity-mapped: virtual addresses are
/// guest-physical).
#[repr(C, align(4096))]
struct Queues {
    rings: [Ring; 2],
    receive: [[u8; BUFFER]; SIZE],
    transmit: [[u8; BUFFER]; BATCH],
}

const EMPTY: Ring =
    Ring { desc: [[0; 2]; SIZE], avail: [0; 3 + SIZE], _pad: [0; 1024], used: [0; 2 + 2 * SIZE] };

static mut QUEUES: Queues =
    Queues { rings: [EMPTY; 2], receive: [[0; BUFFER]; SIZE], transmit: [[0; BUFFER]; BATCH] };

/// The guest-physical (= virtual) address of `QUEUES`' byte `offset`.
fn at(offset: usize) -> u64 {
    (&raw mut QUEUES) as u64 + offset as u64
}

/// Queue `queue`'s descriptor table, available ring and used ring.
fn ring(queue: u16) -> (u64, u64, u64) {
    let base = at(offset_of!(Queues, rings)) + u64::from(queue) * size_of::<Ring>() as u64;
    (base, base + offset_of!(Ring, avail) as u64, base + offset_of!(Ring, used) as u64)
}

fn receive_buffer(index: usize) -> u64 {
    at(offset_of!(Queues, receive) + BUFFER * index)
}

fn transmit_buffer(index: usize) -> u64 {
    at(offset_of!(Queues, transmit) + BUFFER * index)
}

/// Writes `value` at `address` inside `QUEUES`.
fn put<T>(address: u64, value: T) {
    // SAFETY: `address` comes from `at` (through `ring` or a buffer): it lies in QUEUES, which
    // only this vCPU and the device (through its foreign mapping) touch.
    unsafe { core::ptr::write_volatile(address as *mut T, value) }
}

/// Reads the `T` at `address` inside `QUEUES`.
fn get<T>(address: u64) -> T {
    // SAFETY: as for `put`.
    unsafe { core::ptr::read_volatile(address as *const T) }
}

fn read8(offset: u64) -> u8 {
    // SAFETY: as for `virtio_hostile::read32` (the configuration space may be read a byte at
    // a time).
    unsafe { core::ptr::read_volatile((BASE + offset) as *const u8) }
}

/// §3.1.1's initialisation; the MAC address, or `None` (a FAIL line printed).
fn initialise(name: &str) -> Option<[u8; 6]> {
    if read32(mmio::MAGIC_VALUE) != mmio::MAGIC
        || read32(mmio::VERSION) != 2
        || read32(mmio::DEVICE_ID) != net::DEVICE_ID
    {
        println!("{name}: FAIL no virtio-net version 2 at {BASE:#x}");
        return None;
    }
    write32(mmio::STATUS, 0);
    write32(mmio::STATUS, u32::from(ACKNOWLEDGE));
    write32(mmio::STATUS, u32::from(ACKNOWLEDGE | DRIVER));
    write32(mmio::DEVICE_FEATURES_SEL, 0);
    let offered = read32(mmio::DEVICE_FEATURES);
    let wanted = (net::F_MAC | net::F_STATUS) as u32;
    if offered & wanted != wanted {
        println!("{name}: FAIL features {offered:#x} lack MAC or STATUS");
        return None;
    }
    write32(mmio::DRIVER_FEATURES_SEL, 1);
    write32(mmio::DRIVER_FEATURES, 1); // VIRTIO_F_VERSION_1 (bit 32)
    write32(mmio::DRIVER_FEATURES_SEL, 0);
    write32(mmio::DRIVER_FEATURES, wanted);
    write32(mmio::STATUS, u32::from(ACKNOWLEDGE | DRIVER | FEATURES_OK));
    if status() & FEATURES_OK == 0 {
        println!("{name}: FAIL FEATURES_OK refused");
        return None;
    }
    let mac: [u8; 6] = core::array::from_fn(|i| read8(mmio::CONFIG + i as u64));
    let link = u16::from(read8(mmio::CONFIG + 6)) | u16::from(read8(mmio::CONFIG + 7)) << 8;
    if link & net::S_LINK_UP == 0 {
        println!("{name}: FAIL link down (status {link:#x})");
        return None;
    }
    for word in 0..size_of::<Queues>() as u64 / 8 {
        put::<u64>(at(0) + 8 * word, 0);
    }
    for queue in [RECEIVEQ, TRANSMITQ] {
        let (desc, avail, used) = ring(queue);
        write32(mmio::QUEUE_SEL, queue.into());
        if read32(mmio::QUEUE_NUM_MAX) < SIZE as u32 {
            println!("{name}: FAIL queue {queue} too small");
            return None;
        }
        write32(mmio::QUEUE_NUM, SIZE as u32);
        for (offset, address) in [
            (mmio::QUEUE_DESC_LOW, desc),
            (mmio::QUEUE_DRIVER_LOW, avail),
            (mmio::QUEUE_DEVICE_LOW, used),
        ] {
            write32(offset, address as u32);
            write32(offset + 4, (address >> 32) as u32);
        }
        write32(mmio::QUEUE_READY, 1);
    }
    write32(mmio::STATUS, u32::from(ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK));
    (status() & NEEDS_RESET == 0).then_some(mac)
}

/// Sets descriptor `index` of `queue`.
fn descriptor(queue: u16, index: usize, address: u64, length: u32, flags: u16, next: u16) {
    let at = ring(queue).0 + 16 * index as u64;
    put(at, address);
    put(at + 8, u64::from(length) | u64::from(flags) << 32 | u64::from(next) << 48);
}

/// Puts chain `head` in `queue`'s available ring (the index not yet published).
fn offer(queue: u16, avail: &mut u16, head: u16) {
    let ring = ring(queue).1;
    put::<u16>(ring + 4 + 2 * (u64::from(*avail) % SIZE as u64), head);
    *avail = avail.wrapping_add(1);
}

/// Publishes `queue`'s available index (after its entries, virtio 1.2 §2.7.13).
fn publish(queue: u16, avail: u16) {
    fence(Ordering::Release);
    put(ring(queue).1 + 2, avail);
}

/// Frame `sequence`'s length: 60 to 1514 bytes, 1514 every 50th.
fn frame_length(sequence: u32) -> usize {
    if sequence % 50 == 49 {
        1514
    } else {
        60 + (sequence as usize * 97) % 1455
    }
}

/// Byte `index` of frame `sequence`.
fn frame_byte(mac: &[u8; 6], sequence: u32, index: usize) -> u8 {
    match index {
        0..6 => 0xff,
        6..12 => mac[index - 6],
        12 => 0x88,
        13 => 0xb5,
        14..18 => sequence.to_le_bytes()[index - 14],
        _ => (index as u32).wrapping_mul(7).wrapping_add(sequence) as u8,
    }
}

/// Waits up to 10 s for `queue`'s used index to reach `until`.
fn wait_used(queue: u16, until: u16) -> bool {
    let used = ring(queue).2 + 2;
    let deadline = crate::guest::nanoseconds(crate::guest::counter()) + 10_000_000_000;
    while crate::guest::nanoseconds(crate::guest::counter()) < deadline {
        if get::<u16>(used) == until {
            fence(Ordering::Acquire);
            return true;
        }
        if status() & NEEDS_RESET != 0 {
            return false;
        }
        hypercall::sched_op(xenolith_abi::xen::sched::SCHEDOP_yield, 0);
    }
    false
}

pub fn loopback(name: &str, info: &StartInfo) {
    let frames: u32 = info.bootarg("frames").and_then(|v| v.parse().ok()).unwrap_or(200);
    let Some(mac) = initialise(name) else { return };
    println!("{name}: virtio-net up, MAC {mac:02x?}");
    let (mut rx_avail, mut tx_avail) = (0u16, 0u16);
    let (mut rx_seen, mut tx_used) = (0u16, 0u16);
    // Every receive buffer posted, one writable descriptor each.
    for index in 0..SIZE {
        descriptor(RECEIVEQ, index, receive_buffer(index), BUFFER as u32, F_WRITE, 0);
        offer(RECEIVEQ, &mut rx_avail, index as u16);
    }
    publish(RECEIVEQ, rx_avail);
    write32(mmio::QUEUE_NOTIFY, RECEIVEQ.into());
    let mut sequence = 0u32;
    while sequence < frames {
        let batch = (frames - sequence).min(BATCH as u32);
        // Frame `sequence + k` in transmit buffer k: its header (zeroes) and the frame, in two
        // descriptors, 2k and 2k + 1.
        for k in 0..batch as usize {
            let s = sequence + k as u32;
            let (buffer, length) = (transmit_buffer(k), frame_length(s));
            (0..HEADER).for_each(|i| put::<u8>(buffer + i as u64, 0));
            let frame = buffer + HEADER as u64;
            (0..length).for_each(|i| put::<u8>(frame + i as u64, frame_byte(&mac, s, i)));
            descriptor(TRANSMITQ, 2 * k, buffer, HEADER as u32, F_NEXT, 2 * k as u16 + 1);
            descriptor(TRANSMITQ, 2 * k + 1, frame, length as u32, 0, 0);
            offer(TRANSMITQ, &mut tx_avail, 2 * k as u16);
        }
        publish(TRANSMITQ, tx_avail);
        write32(mmio::QUEUE_NOTIFY, TRANSMITQ.into());
        tx_used = tx_used.wrapping_add(batch as u16);
        if !wait_used(TRANSMITQ, tx_used) {
            return println!("{name}: FAIL frames {sequence}.. not sent (status {:#x})", status());
        }
        if !wait_used(RECEIVEQ, rx_seen.wrapping_add(batch as u16)) {
            let used = get::<u16>(ring(RECEIVEQ).2 + 2);
            return println!(
                "{name}: FAIL frames {sequence}..: {} of {batch} received (status {:#x})",
                used.wrapping_sub(rx_seen),
                status()
            );
        }
        for k in 0..batch {
            let s = sequence + k;
            let entry = ring(RECEIVEQ).2 + 4 + 8 * (u64::from(rx_seen) % SIZE as u64);
            let (head, written) = (get::<u32>(entry) as usize, get::<u32>(entry + 4) as usize);
            rx_seen = rx_seen.wrapping_add(1);
            let length = frame_length(s);
            if head >= SIZE || written != HEADER + length {
                return println!(
                    "{name}: FAIL frame {s}: buffer {head} holds {written} bytes, not {}",
                    HEADER + length
                );
            }
            let buffer = receive_buffer(head);
            let header: [u8; HEADER] = get(buffer);
            if header != [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0] {
                return println!("{name}: FAIL frame {s}: header {header:02x?}");
            }
            let frame = buffer + HEADER as u64;
            if let Some(i) =
                (0..length).find(|&i| get::<u8>(frame + i as u64) != frame_byte(&mac, s, i))
            {
                return println!(
                    "{name}: FAIL frame {s} ({length} bytes) differs at byte {i}: {:#x}, not {:#x}",
                    get::<u8>(frame + i as u64),
                    frame_byte(&mac, s, i)
                );
            }
            // Checked: post it again.
            offer(RECEIVEQ, &mut rx_avail, head as u16);
        }
        publish(RECEIVEQ, rx_avail);
        write32(mmio::QUEUE_NOTIFY, RECEIVEQ.into());
        sequence += batch;
    }
    if status() & NEEDS_RESET != 0 {
        return println!("{name}: FAIL the device needs a reset (status {:#x})", status());
    }
    println!("{name}: PASS {frames} frames looped back");
}
