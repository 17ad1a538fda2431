//! Fuzz target `records_and_rings`: a hostile guest against one device model's devices (a
//! PL011, a virtio-blk over a small disk, a virtio-net looped back), with the model restarted
//! from its saved state and the guest rebuilt along the way.
//!
//! The input is a sequence of operations, each a control byte and its operands:
//! - an ioreq record to a register of a device (or anywhere), of any size, direction, state
//!   and type, with a value (a small number, a RAM address or 8 input bytes);
//! - bytes written into the guest's RAM (how the fuzzer shapes descriptor tables and rings);
//! - a driver's set-up of the blk or net device (status steps, features, each queue's size and
//!   ring addresses at fixed places in RAM, `DRIVER_OK`), so the fuzzer starts at the rings;
//! - the model restarted: its state encoded, decoded and the devices rebuilt from it over the
//!   same RAM and disk (the restore rule redoes every chain the guest has not seen completed);
//! - the target rebuilt (`Devices::power_on`); the UART's output taken (the console may
//!   refuse some), the lines' levels taken.
//!
//! After every operation: a well-formed `READY` record was answered, and the devices' state
//! encodes, decodes and encodes to the same bytes. The whole input is also given to the
//! snapshot and state decoders, which must refuse or accept it without panicking.
#![no_main]

use std::cell::RefCell;
use std::rc::Rc;

use libfuzzer_sys::fuzz_target;
use xenolith_abi::xen::ioreq::{ioreq, IOREQ_TYPE_COPY, STATE_IOREQ_READY};
use xenolith_device_model_logic::blk::{Disk, DiskError};
use xenolith_device_model_logic::config::Config;
use xenolith_device_model_logic::devices::Devices;
use xenolith_device_model_logic::memory::VecMemory;
use xenolith_device_model_logic::mmio::{
    ACKNOWLEDGE, DRIVER, DRIVER_FEATURES, DRIVER_FEATURES_SEL, DRIVER_OK, FEATURES_OK,
    QUEUE_DESC_LOW, QUEUE_DEVICE_LOW, QUEUE_DRIVER_LOW, QUEUE_NUM, QUEUE_READY, QUEUE_SEL, STATUS,
};
use xenolith_device_model_logic::region::Snapshot;
use xenolith_device_model_logic::state::Saved;

const RAM: u64 = 0x4000_0000;
const RAM_SIZE: usize = 0x1_0000;
const UART: u64 = 0x2200_0000;
const BLK: u64 = 0x0200_0000;
const NET: u64 = 0x0200_0200;
const DISK_SIZE: usize = 16 * 512;

/// The disk's bytes, shared by every incarnation of the devices (as the preserved region
/// outlives the model's restarts).
#[derive(Clone)]
struct SharedDisk(Rc<RefCell<Vec<u8>>>);

impl Disk for SharedDisk {
    fn size(&self) -> u64 {
        self.0.borrow().len() as u64
    }

    fn read(&mut self, offset: u64, buffer: &mut [u8]) -> Result<(), DiskError> {
        let start = usize::try_from(offset).map_err(|_| DiskError)?;
        let end = start.checked_add(buffer.len()).ok_or(DiskError)?;
        buffer.copy_from_slice(self.0.borrow().get(start..end).ok_or(DiskError)?);
        Ok(())
    }

    fn write(&mut self, offset: u64, data: &[u8]) -> Result<(), DiskError> {
        let start = usize::try_from(offset).map_err(|_| DiskError)?;
        let end = start.checked_add(data.len()).ok_or(DiskError)?;
        self.0.borrow_mut().get_mut(start..end).ok_or(DiskError)?.copy_from_slice(data);
        Ok(())
    }

    fn flush(&mut self) -> Result<(), DiskError> {
        Ok(())
    }
}

/// The operands still to read.
struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn byte(&mut self) -> u8 {
        let Some((&first, rest)) = self.0.split_first() else { return 0 };
        self.0 = rest;
        first
    }

    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.byte(), self.byte()])
    }

    fn u64(&mut self) -> u64 {
        (0..8).fold(0, |value, shift| value | u64::from(self.byte()) << (shift * 8))
    }

    fn bytes(&mut self, length: usize) -> &[u8] {
        let (head, rest) = self.0.split_at(length.min(self.0.len()));
        self.0 = rest;
        head
    }
}

fn record(addr: u64, size: u32, write: bool, data: u64) -> ioreq {
    ioreq {
        addr,
        data,
        count: 1,
        size,
        bitfield: ioreq::bitfield_of(STATE_IOREQ_READY, false, u8::from(!write), false),
        r#type: IOREQ_TYPE_COPY,
        ..ioreq::default()
    }
}

/// Serves `record`: a well-formed `READY` record is always answered.
fn serve(devices: &mut Devices<SharedDisk>, ram: &mut VecMemory, record: &ioreq) {
    let (served, _) = devices.serve(ram, record);
    let wellformed = record.state() == STATE_IOREQ_READY
        && record.r#type == IOREQ_TYPE_COPY
        && record.count == 1
        && !record.data_is_ptr()
        && matches!(record.size, 1 | 2 | 4 | 8);
    assert!(!wellformed || served.completion.is_some(), "{record:?} not answered");
}

fn write(devices: &mut Devices<SharedDisk>, ram: &mut VecMemory, addr: u64, value: u64) {
    serve(devices, ram, &record(addr, 4, true, value));
}

/// A driver's set-up of the virtio device at `base` with `queues` queues, their rings at
/// fixed places in RAM (0x1000 bytes a queue), `features` accepted.
fn set_up(
    devices: &mut Devices<SharedDisk>,
    ram: &mut VecMemory,
    base: u64,
    queues: u8,
    features: u64,
) {
    write(devices, ram, base + STATUS, 0);
    write(devices, ram, base + STATUS, u64::from(ACKNOWLEDGE | DRIVER));
    for (select, half) in [(0, features as u32), (1, (features >> 32) as u32)] {
        write(devices, ram, base + DRIVER_FEATURES_SEL, select);
        write(devices, ram, base + DRIVER_FEATURES, u64::from(half));
    }
    write(devices, ram, base + STATUS, u64::from(ACKNOWLEDGE | DRIVER | FEATURES_OK));
    for queue in 0..u64::from(queues) {
        let area = RAM + 0x1000 * queue;
        write(devices, ram, base + QUEUE_SEL, queue);
        write(devices, ram, base + QUEUE_NUM, 8);
        for (register, address) in [
            (QUEUE_DESC_LOW, area),
            (QUEUE_DRIVER_LOW, area + 0x200),
            (QUEUE_DEVICE_LOW, area + 0x400),
        ] {
            write(devices, ram, base + register, address & 0xffff_ffff);
            write(devices, ram, base + register + 4, address >> 32);
        }
        write(devices, ram, base + QUEUE_READY, 1);
    }
    let status = ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK;
    write(devices, ram, base + STATUS, u64::from(status));
}

fn config() -> Config {
    let text = format!(
        "xenolith.dm.target=2 xenolith.dm.ram={RAM:#x}:{RAM_SIZE:#x} \
         xenolith.dm.uart={UART:#x}:37 xenolith.dm.blk={BLK:#x}:40 xenolith.dm.net={NET:#x}:41"
    );
    Config::parse(&text).expect("the fixture's configuration parses")
}

/// The devices' state; its encoding decodes to a state that encodes the same (the fields a
/// restore derives, like a queue's `signalled`, are not encoded).
fn check_state(devices: &Devices<SharedDisk>) -> Saved {
    let saved = devices.save();
    let mut bytes = Vec::new();
    saved.encode(&mut bytes);
    let decoded = Saved::decode(&bytes).expect("an encoded state decodes");
    let mut again = Vec::new();
    decoded.encode(&mut again);
    assert_eq!(bytes, again, "the state does not round-trip");
    saved
}

fuzz_target!(|data: &[u8]| {
    let _ = Snapshot::decode(data);
    let _ = Saved::decode(data);

    let config = config();
    let mut ram = VecMemory::new(RAM, RAM_SIZE);
    let disk = SharedDisk(Rc::new(RefCell::new(vec![0; DISK_SIZE])));
    let (mut devices, _) = Devices::new(&config, Some(disk.clone()), None, &mut ram)
        .expect("the fixture's devices build");
    let mut input = Input(data);
    while !input.0.is_empty() {
        match input.byte() % 12 {
            // Records (most often), at a device's registers or anywhere.
            0..=4 => {
                let base = [UART, BLK, NET, RAM][usize::from(input.byte() % 4)];
                let addr = base.wrapping_add(u64::from(input.u16() % 0x1100));
                let control = input.byte();
                let size = [1, 2, 4, 8, 4, 4, 3, 16][usize::from(control & 7)];
                let value = match control >> 6 {
                    0 => u64::from(input.byte() % 16),
                    1 => RAM + u64::from(input.u16()),
                    _ => input.u64(),
                };
                let mut record = record(addr, size, control & 8 != 0, value);
                if control & 0x30 == 0x30 {
                    // A malformed record now and then: any bit-field, type or count.
                    record.bitfield = input.byte();
                    record.r#type = input.byte();
                    record.count = u32::from(input.byte());
                }
                serve(&mut devices, &mut ram, &record);
            }
            // RAM written: descriptor tables, rings, request headers.
            5..=7 => {
                let at = usize::from(input.u16()) % RAM_SIZE;
                let length = usize::from(input.byte());
                let bytes = input.bytes(length.min(RAM_SIZE - at)).to_vec();
                ram.bytes[at..at + bytes.len()].copy_from_slice(&bytes);
            }
            8 => {
                let features = input.u64() | 1 << 32;
                if input.byte() % 2 == 0 {
                    set_up(&mut devices, &mut ram, BLK, 1, features);
                } else {
                    set_up(&mut devices, &mut ram, NET, 2, features);
                }
            }
            // The model restarted from its saved state, over the same RAM and disk.
            9 => {
                let saved = check_state(&devices);
                let rebuilt = Devices::new(&config, Some(disk.clone()), Some(&saved), &mut ram);
                (devices, _) = rebuilt.expect("a saved state restores");
            }
            10 => devices.power_on(),
            _ => {
                let refuse_after = input.byte();
                let mut taken = 0u8;
                devices.uart_output(|_| {
                    taken = taken.wrapping_add(1);
                    taken < refuse_after
                });
                devices.line_changes(|_, _| {});
            }
        }
        check_state(&devices);
    }
});
