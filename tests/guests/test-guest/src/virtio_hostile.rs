//! `virtio-blk` (`case=<case>`): a virtio-mmio driver of the device model's virtio-blk at
//! [`BASE`] (virtio 1.2 §4.2.3 initialisation, a split queue of [`SIZE`] entries in this domain's
//! RAM, which the device model reaches by foreign mapping). It first reads sector 0 and prints
//! its first bytes; then, unless the case is `good`, it feeds the device one hostile thing, checks
//! the device says `DEVICE_NEEDS_RESET` (virtio 1.2 §2.1.2) without answering it, resets the
//! device and reads sector 0 again, to show the device model still serves. Cases (issue 18's
//! hostile guest):
//! - `loop`: a chain whose second descriptor points back at the first;
//! - `index`: a `next` past the descriptor table;
//! - `outside`: a buffer outside the domain's RAM;
//! - `huge`: a 4 GiB buffer;
//! - `read-only`: a write to the read-only `DeviceFeatures` register.
//!
//! `case=writes rounds=<n>` instead writes and reads back sectors 1 and 2 `n` times (the device
//! model is killed meanwhile in `dm-kill.toml`); `case=read-bench` times sequential 64 KiB
//! reads (`cargo xtask bench dm`).
//!
//! Register offsets and status bits are the device model logic crate's (Linux's
//! `include/uapi/linux/virtio_mmio.h`, virtio 1.2 §4.2.2).

use core::mem::offset_of;
use core::sync::atomic::{fence, Ordering};

use xenolith_device_model_logic::mmio::{
    self, ACKNOWLEDGE, DRIVER, DRIVER_OK, FEATURES_OK, NEEDS_RESET,
};
use xenolith_runtime::{hypercall, println, StartInfo};

/// The device's window (Xen's first virtio-mmio slot, `GUEST_VIRTIO_MMIO_BASE`).
const BASE: u64 = 0x0200_0000;
/// Queue size used.
const SIZE: usize = 8;
/// `VIRTQ_DESC_F_NEXT`, `VIRTQ_DESC_F_WRITE` (virtio 1.2 §2.7.5).
const F_NEXT: u16 = 1;
const F_WRITE: u16 = 2;

/// One split virtqueue's rings and a request's buffers, in this domain's RAM (identity-mapped:
/// virtual addresses are guest-physical).
#[repr(C, align(4096))]
struct Rings {
    desc: [[u64; 2]; SIZE],
    avail: [u16; 3 + SIZE],
    _pad: [u8; 2048],
    used: [u32; 2 + 2 * SIZE],
    header: [u32; 4],
    data: [u8; 512],
    status: u8,
}

static mut RINGS: Rings = Rings {
    desc: [[0; 2]; SIZE],
    avail: [0; 3 + SIZE],
    _pad: [0; 2048],
    used: [0; 2 + 2 * SIZE],
    header: [0; 4],
    data: [0; 512],
    status: 0xff,
};

/// The guest-physical (= virtual) address of `RINGS`' field at `offset` (`offset_of!`).
fn at(offset: usize) -> u64 {
    (&raw mut RINGS) as u64 + offset as u64
}

/// Writes `value` at `address` inside `RINGS`.
fn put<T>(address: u64, value: T) {
    // SAFETY: `address` comes from `at` with a field's offset (and an index inside it): it lies
    // in RINGS, which only this vCPU and the device (through its foreign mapping) touch.
    unsafe { core::ptr::write_volatile(address as *mut T, value) }
}

/// Reads the `T` at `address` inside `RINGS`.
fn get<T>(address: u64) -> T {
    // SAFETY: as for `put`.
    unsafe { core::ptr::read_volatile(address as *const T) }
}

/// A 32-bit register of the virtio-mmio device at [`BASE`] (also the net test's driver).
pub(crate) fn read32(offset: u64) -> u32 {
    // SAFETY: BASE's page is device memory in this domain's identity map with nothing behind it
    // in its stage 2: the access traps and the device model answers it.
    unsafe { core::ptr::read_volatile((BASE + offset) as *const u32) }
}

/// Writes a 32-bit register of the virtio-mmio device at [`BASE`].
pub(crate) fn write32(offset: u64, value: u32) {
    // SAFETY: as for `read32`.
    unsafe { core::ptr::write_volatile((BASE + offset) as *mut u32, value) }
}

/// The device's `Status` register.
pub(crate) fn status() -> u8 {
    read32(mmio::STATUS) as u8
}

/// §3.1.1's initialisation with `VIRTIO_F_VERSION_1` only, queue 0 of [`SIZE`] entries.
fn initialise(name: &str) -> bool {
    if read32(mmio::MAGIC_VALUE) != mmio::MAGIC
        || read32(mmio::VERSION) != 2
        || read32(mmio::DEVICE_ID) != 2
    {
        println!("{name}: FAIL no virtio-blk version 2 at {BASE:#x}");
        return false;
    }
    write32(mmio::STATUS, 0);
    write32(mmio::STATUS, u32::from(ACKNOWLEDGE));
    write32(mmio::STATUS, u32::from(ACKNOWLEDGE | DRIVER));
    write32(mmio::DRIVER_FEATURES_SEL, 1);
    write32(mmio::DRIVER_FEATURES, 1); // VIRTIO_F_VERSION_1 (bit 32)
    write32(mmio::DRIVER_FEATURES_SEL, 0);
    write32(mmio::DRIVER_FEATURES, 0);
    write32(mmio::STATUS, u32::from(ACKNOWLEDGE | DRIVER | FEATURES_OK));
    if status() & FEATURES_OK == 0 {
        println!("{name}: FAIL FEATURES_OK refused");
        return false;
    }
    for word in 0..size_of::<Rings>() as u64 / 8 {
        put::<u64>(at(0) + 8 * word, 0);
    }
    let queue = [
        (mmio::QUEUE_DESC_LOW, at(offset_of!(Rings, desc))),
        (mmio::QUEUE_DRIVER_LOW, at(offset_of!(Rings, avail))),
        (mmio::QUEUE_DEVICE_LOW, at(offset_of!(Rings, used))),
    ];
    write32(mmio::QUEUE_SEL, 0);
    write32(mmio::QUEUE_NUM, SIZE as u32);
    for (offset, address) in queue {
        write32(offset, address as u32);
        write32(offset + 4, (address >> 32) as u32);
    }
    write32(mmio::QUEUE_READY, 1);
    write32(mmio::STATUS, u32::from(ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK));
    status() & NEEDS_RESET == 0
}

/// Puts a chain headed by descriptor 0 in the available ring and notifies the device: whether
/// the device answered it (the used index moved) before it said `NEEDS_RESET` or gave up.
fn submit(descriptors: &[(u64, u32, u16, u16)]) -> bool {
    for (index, &(address, length, flags, next)) in descriptors.iter().enumerate() {
        let descriptor = at(offset_of!(Rings, desc)) + 16 * index as u64;
        put(descriptor, address);
        put(descriptor + 8, u64::from(length) | u64::from(flags) << 32 | u64::from(next) << 48);
    }
    let avail_index = at(offset_of!(Rings, avail)) + 2;
    let used_index = at(offset_of!(Rings, used)) + 2;
    let avail: u16 = get(avail_index);
    put::<u16>(avail_index + 2 + 2 * (u64::from(avail) % SIZE as u64), 0);
    // The ring entry before the index the device reads (virtio 1.2 §2.7.13).
    fence(Ordering::Release);
    put(avail_index, avail.wrapping_add(1));
    let before: u16 = get(used_index);
    write32(mmio::QUEUE_NOTIFY, 0);
    // Up to 30 s: a request may wait for a device model's restart.
    let deadline = crate::guest::nanoseconds(crate::guest::counter()) + 30_000_000_000;
    while crate::guest::nanoseconds(crate::guest::counter()) < deadline {
        if get::<u16>(used_index) != before {
            return true;
        }
        if status() & NEEDS_RESET != 0 {
            return false;
        }
        hypercall::sched_op(xenolith_abi::xen::sched::SCHEDOP_yield, 0);
    }
    false
}

/// Reads sector 0: its first 16 bytes, or `None` if the device did not answer `VIRTIO_BLK_S_OK`.
fn read_sector_zero(name: &str) -> Option<[u8; 16]> {
    transfer(name, 0, false).then(|| get::<[u8; 16]>(at(offset_of!(Rings, data))))
}

/// Reads (`write` false) or writes sector `sector` from or to `RINGS.data`: whether the device
/// answered `VIRTIO_BLK_S_OK`.
fn transfer(name: &str, sector: u64, write: bool) -> bool {
    let header = at(offset_of!(Rings, header));
    let (data, status) = (at(offset_of!(Rings, data)), at(offset_of!(Rings, status)));
    // VIRTIO_BLK_T_IN or _OUT, reserved, the sector (virtio 1.2 §5.2.6).
    put::<[u32; 4]>(header, [u32::from(write), 0, sector as u32, (sector >> 32) as u32]);
    put::<u8>(status, 0xff);
    let data_flags = if write { F_NEXT } else { F_NEXT | F_WRITE };
    let chain = [(header, 16, F_NEXT, 1), (data, 512, data_flags, 2), (status, 1, F_WRITE, 0)];
    if !submit(&chain) {
        println!("{name}: FAIL sector {sector}: no answer (status {:#x})", self::status());
        return false;
    }
    // The device answered (the used index moved): its writes are done.
    fence(Ordering::Acquire);
    let answer = get::<u8>(status);
    if answer != 0 {
        println!("{name}: FAIL sector {sector}: status {answer} (write {write})");
    }
    answer == 0
}

/// `case=read-bench count=<n>`: `n` sequential reads of [`BENCH_BYTES`] each from sector 0 on
/// (wrapping at `sectors=<disk sectors>`), timed: prints `bench blk-read bytes=<B> ns=<T>`
/// (under `-icount shift=0` nanoseconds are instructions).
fn read_bench(name: &str, count: u64, sectors: u64) {
    let header = at(offset_of!(Rings, header));
    let status = at(offset_of!(Rings, status));
    let buffer = (&raw mut BENCH) as u64;
    let per = BENCH_BYTES as u64 / 512;
    let start = crate::guest::counter();
    for request in 0..count {
        let sector = request * per % (sectors / per * per).max(per);
        put::<[u32; 4]>(header, [0, 0, sector as u32, (sector >> 32) as u32]);
        put::<u8>(status, 0xff);
        let chain = [
            (header, 16, F_NEXT, 1),
            (buffer, BENCH_BYTES as u32, F_NEXT | F_WRITE, 2),
            (status, 1, F_WRITE, 0),
        ];
        if !submit(&chain) || get::<u8>(status) != 0 {
            return println!("{name}: FAIL bench read {request} (sector {sector})");
        }
    }
    let ns = crate::guest::nanoseconds(crate::guest::counter() - start);
    println!("bench blk-read bytes={} ns={ns}", count * BENCH_BYTES as u64);
}

/// Bytes of each benchmark read.
const BENCH_BYTES: usize = 64 * 1024;

/// The benchmark's buffer (identity-mapped RAM the device writes through its foreign mapping),
/// aligned to a 64 KiB chunk of the model's mapping cache so that the figure does not move
/// with where the linker puts it.
#[repr(C, align(65536))]
struct Bench([u8; BENCH_BYTES]);

/// See [`Bench`].
static mut BENCH: Bench = Bench([0; BENCH_BYTES]);

/// The pattern word `word` of round `round`.
fn pattern(round: u64, word: u64) -> u64 {
    round.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ word
}

/// `case=writes rounds=<n>`: writes a pattern of the round to sector 1 or 2 and reads it back,
/// `n` times (a killer crashes the device model meanwhile): every request answered OK and every
/// read equal to what was written.
fn writes(name: &str, rounds: u64) {
    let data = at(offset_of!(Rings, data));
    for round in 0..rounds {
        let sector = 1 + round % 2;
        (0..64).for_each(|word| put::<u64>(data + 8 * word, pattern(round, word)));
        if !transfer(name, sector, true) {
            return;
        }
        (0..64).for_each(|word| put::<u64>(data + 8 * word, 0));
        if !transfer(name, sector, false) {
            return;
        }
        if let Some(word) =
            (0..64).find(|&word| get::<u64>(data + 8 * word) != pattern(round, word))
        {
            return println!("{name}: FAIL round {round}: sector {sector} word {word} differs");
        }
        if round % 500 == 0 {
            println!("{name}: round {round} written and read back");
        }
    }
    println!("{name}: PASS {rounds} writes read back equal, no I/O error");
}

pub fn hostile(name: &str, info: &StartInfo) {
    let case = info.bootarg("case").unwrap_or("good");
    if !initialise(name) {
        return;
    }
    let Some(first) = read_sector_zero(name) else { return };
    println!("{name}: sector 0 begins {:?}", core::str::from_utf8(&first).unwrap_or("?"));
    if case == "good" {
        return println!("{name}: PASS read sector 0");
    }
    if case == "read-bench" {
        let arg =
            |key: &str, default| info.bootarg(key).and_then(|v| v.parse().ok()).unwrap_or(default);
        return read_bench(name, arg("count", 256), arg("sectors", 8192));
    }
    if case == "writes" {
        let rounds = info.bootarg("rounds").and_then(|value| value.parse().ok()).unwrap_or(1000);
        return writes(name, rounds);
    }
    let header = at(offset_of!(Rings, header));
    let answered = match case {
        "loop" => submit(&[(header, 16, F_NEXT, 1), (header, 16, F_NEXT, 0)]),
        "index" => submit(&[(header, 16, F_NEXT, 100)]),
        "outside" => submit(&[(header, 16, F_NEXT, 1), (0x1_0000_0000, 512, F_WRITE, 0)]),
        "huge" => submit(&[(header, 16, F_NEXT, 1), (header, u32::MAX, F_WRITE, 0)]),
        "read-only" => {
            write32(mmio::DEVICE_FEATURES, 0xffff_ffff);
            false
        }
        other => return println!("{name}: FAIL unknown case {other:?}"),
    };
    let after = status();
    if answered || after & NEEDS_RESET == 0 {
        return println!("{name}: FAIL case {case}: answered {answered}, status {after:#x}");
    }
    println!(
        "{name}: case {case}: the device needs a reset (status {after:#x}) and answered nothing"
    );
    if !initialise(name) {
        return println!("{name}: FAIL the device did not come back after a reset");
    }
    match read_sector_zero(name) {
        Some(again) if again == first => {
            println!("{name}: PASS case {case}: refused, reset, served again")
        }
        other => println!("{name}: FAIL case {case}: sector 0 after the reset: {other:?}"),
    }
}
