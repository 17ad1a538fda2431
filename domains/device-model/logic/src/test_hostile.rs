//! A hostile guest, one test per kind: each gets its device marked `NEEDS_RESET` with the
//! reason, a configuration-change interrupt, nothing served until the reset, and no panic;
//! then arbitrary memory and arbitrary register accesses, seeded.

use crate::blk::{T_FLUSH, T_OUT};
use crate::memory::GuestMemory;
use crate::mmio::*;
use crate::test_driver::{Guest, Model, AVAIL, DESC, RAM, RAM_SIZE, SIZE};
use crate::test_rng::Xorshift;
use crate::virtqueue::{
    ChainError, LayoutError, DESC_F_INDIRECT, DESC_F_NEXT, DESC_F_WRITE, F_INDIRECT_DESC,
};

/// A model and a guest past Linux's probe with `features`.
fn probed(features: u64) -> (Model, Guest) {
    let mut model = crate::test_driver::model();
    let mut guest = Guest::new();
    guest.probe(&mut model, features).unwrap();
    (model, guest)
}

/// Checks the device needs a reset, told the driver, and serves nothing until reset; then
/// resets it and checks it works again.
fn assert_needs_reset(model: &mut Model, guest: &mut Guest) {
    assert_ne!(model.status() & NEEDS_RESET, 0);
    if model.status() & DRIVER_OK != 0 {
        assert_ne!(model.read(INTERRUPT_STATUS, 4).0 & u64::from(INT_CONFIG), 0);
        assert!(model.interrupt_line());
    }
    let used = guest.memory.get_u16(crate::test_driver::USED + 2);
    assert_eq!(model.write(&mut guest.memory, QUEUE_NOTIFY, 4, 0), None);
    assert_eq!(guest.memory.get_u16(crate::test_driver::USED + 2), used);
    // Linux writes back what it read; NEEDS_RESET stays until the reset.
    let status = model.read(STATUS, 4).0;
    assert_eq!(model.write(&mut guest.memory, STATUS, 4, status), None);
    assert_ne!(model.status() & NEEDS_RESET, 0);
    let mut fresh = Guest::new();
    fresh.memory = guest.memory.clone();
    fresh.memory.put_u16(AVAIL + 2, 0);
    fresh.memory.put_u16(crate::test_driver::USED + 2, 0);
    fresh.probe(model, u64::MAX).unwrap();
    let head = fresh.submit(T_FLUSH, 0, &[], 0, false);
    fresh.notify(model);
    assert_eq!(fresh.completions()[0].head, head);
}

/// Makes `head` available, notifies, and expects `error` from the chain walk.
fn expect_chain_error(mut model: Model, mut guest: Guest, head: u16, error: ChainError) {
    guest.make_available(head);
    let fault = model.write(&mut guest.memory, QUEUE_NOTIFY, 4, 0);
    let expected = Fault::Queue { queue: 0, fault: DeviceFault::Chain(error) };
    assert_eq!(fault, Some(expected));
    assert_needs_reset(&mut model, &mut guest);
}

#[test]
fn a_looping_chain_needs_a_reset() {
    let (model, mut guest) = probed(u64::MAX);
    let area = Guest::area(0);
    guest.descriptor(DESC, 0, area, 16, DESC_F_NEXT, 1);
    guest.descriptor(DESC, 1, area + 0x1000, 0x1000, DESC_F_NEXT, 2);
    guest.descriptor(DESC, 2, area + 0x1000, 0x1000, DESC_F_NEXT, 1);
    expect_chain_error(model, guest, 0, ChainError::Loop);
}

#[test]
fn a_looping_indirect_table_needs_a_reset() {
    let (model, mut guest) = probed(u64::MAX);
    let table = Guest::area(0) + 0x100;
    guest.descriptor(table, 0, Guest::area(0), 16, DESC_F_NEXT, 1);
    guest.descriptor(table, 1, Guest::area(0), 16, DESC_F_NEXT, 0);
    guest.descriptor(DESC, 0, table, 32, DESC_F_INDIRECT, 0);
    expect_chain_error(model, guest, 0, ChainError::Loop);
}

#[test]
fn an_index_past_the_table_needs_a_reset() {
    let (model, mut guest) = probed(u64::MAX);
    guest.descriptor(DESC, 0, Guest::area(0), 16, DESC_F_NEXT, SIZE);
    expect_chain_error(model, guest, 0, ChainError::IndexOutOfRange { index: SIZE });
    let (model, guest) = probed(u64::MAX);
    expect_chain_error(model, guest, 0xffff, ChainError::HeadOutOfRange { head: 0xffff });
}

#[test]
fn a_buffer_outside_ram_needs_a_reset() {
    let (model, mut guest) = probed(u64::MAX);
    guest.descriptor(DESC, 0, Guest::area(0), 16, DESC_F_NEXT, 1);
    guest.descriptor(DESC, 1, RAM + RAM_SIZE as u64 - 8, 16, DESC_F_WRITE, 0);
    let outside = crate::memory::OutsideRam { address: RAM + RAM_SIZE as u64 - 8, length: 16 };
    expect_chain_error(model, guest, 0, ChainError::OutsideRam(outside));
    // One that wraps the address space.
    let (model, mut guest) = probed(u64::MAX);
    guest.descriptor(DESC, 0, u64::MAX - 3, 16, 0, 0);
    let outside = crate::memory::OutsideRam { address: u64::MAX - 3, length: 16 };
    expect_chain_error(model, guest, 0, ChainError::OutsideRam(outside));
}

#[test]
fn huge_lengths_need_a_reset() {
    let (model, mut guest) = probed(u64::MAX);
    guest.descriptor(DESC, 0, Guest::area(0), u32::MAX, 0, 0);
    expect_chain_error(model, guest, 0, ChainError::TooLong);
    // Three 3 MiB buffers, each in RAM, 9 MiB together.
    let (model, mut guest) = probed(u64::MAX);
    for index in 0..3 {
        let flags = if index < 2 { DESC_F_NEXT } else { DESC_F_WRITE };
        guest.descriptor(DESC, index, RAM, 3 << 20, flags, index + 1);
    }
    expect_chain_error(model, guest, 0, ChainError::TooLong);
}

#[test]
fn bad_indirect_tables_need_a_reset() {
    let table = Guest::area(0) + 0x100;
    // A length not a multiple of 16, 0, or more entries than the queue.
    for length in [24, 0, 16 * (u32::from(SIZE) + 1)] {
        let (model, mut guest) = probed(u64::MAX);
        guest.descriptor(DESC, 0, table, length, DESC_F_INDIRECT, 0);
        expect_chain_error(model, guest, 0, ChainError::IndirectSize { length });
    }
    // Nested.
    let (model, mut guest) = probed(u64::MAX);
    guest.descriptor(table, 0, Guest::area(0), 16, DESC_F_NEXT, 1);
    guest.descriptor(table, 1, table, 32, DESC_F_INDIRECT, 0);
    guest.descriptor(DESC, 0, table, 32, DESC_F_INDIRECT, 0);
    expect_chain_error(model, guest, 0, ChainError::IndirectPlacement);
    // With NEXT as well.
    let (model, mut guest) = probed(u64::MAX);
    guest.descriptor(table, 0, Guest::area(0), 16, 0, 0);
    guest.descriptor(DESC, 0, table, 16, DESC_F_INDIRECT | DESC_F_NEXT, 1);
    expect_chain_error(model, guest, 0, ChainError::IndirectPlacement);
    // Without the feature.
    let (model, mut guest) = probed(!F_INDIRECT_DESC);
    guest.descriptor(table, 0, Guest::area(0), 16, 0, 0);
    guest.descriptor(DESC, 0, table, 16, DESC_F_INDIRECT, 0);
    expect_chain_error(model, guest, 0, ChainError::IndirectNotNegotiated);
    // Outside RAM.
    let (model, mut guest) = probed(u64::MAX);
    guest.descriptor(DESC, 0, 0x1000, 32, DESC_F_INDIRECT, 0);
    let outside = crate::memory::OutsideRam { address: 0x1000, length: 32 };
    expect_chain_error(model, guest, 0, ChainError::OutsideRam(outside));
}

#[test]
fn a_chain_may_end_in_an_indirect_table() {
    // Header direct, data and status in a table (§2.7.5.3.2): served.
    let (mut model, mut guest) = probed(u64::MAX);
    let area = Guest::area(0);
    let table = area + 0x100;
    guest.memory.put_u32(area, T_OUT);
    guest.memory.put_u64(area + 8, 2);
    guest.memory.write(area + 0x1000, &[0x77; 512]).unwrap();
    guest.descriptor(table, 0, area + 0x1000, 512, DESC_F_NEXT, 1);
    guest.descriptor(table, 1, area + 0x10, 1, DESC_F_WRITE, 0);
    guest.descriptor(DESC, 0, area, 16, DESC_F_NEXT, 1);
    guest.descriptor(DESC, 1, table, 32, DESC_F_INDIRECT | DESC_F_WRITE, 0);
    guest.make_available(0);
    assert_eq!(model.write(&mut guest.memory, QUEUE_NOTIFY, 4, 0), None);
    assert_eq!(guest.memory.get_u16(crate::test_driver::USED + 2), 1);
    assert_eq!(model.device().disk().0[1024..1536], [0x77; 512]);
}

#[test]
fn a_readable_buffer_after_a_writable_one_needs_a_reset() {
    let (model, mut guest) = probed(u64::MAX);
    guest.descriptor(DESC, 0, Guest::area(0), 16, DESC_F_WRITE | DESC_F_NEXT, 1);
    guest.descriptor(DESC, 1, Guest::area(0), 16, 0, 0);
    expect_chain_error(model, guest, 0, ChainError::ReadableAfterWritable);
}

#[test]
fn an_available_index_more_than_a_queue_ahead_needs_a_reset() {
    let (mut model, mut guest) = probed(u64::MAX);
    guest.memory.put_u16(AVAIL + 2, SIZE + 1);
    let fault = model.write(&mut guest.memory, QUEUE_NOTIFY, 4, 0);
    let error = ChainError::AvailIndex { avail: SIZE + 1, position: 0 };
    assert_eq!(fault, Some(Fault::Queue { queue: 0, fault: DeviceFault::Chain(error) }));
    assert_needs_reset(&mut model, &mut guest);
}

#[test]
fn writes_to_read_only_registers_need_a_reset() {
    let read_only = [MAGIC_VALUE, VERSION, DEVICE_ID, VENDOR_ID, DEVICE_FEATURES, QUEUE_NUM_MAX]
        .into_iter()
        .chain([INTERRUPT_STATUS, CONFIG_GENERATION, CONFIG, CONFIG + 8]);
    for offset in read_only {
        let (mut model, mut guest) = probed(u64::MAX);
        let fault = model.write(&mut guest.memory, offset, 4, 5);
        assert_eq!(fault, Some(Fault::ReadOnly { offset, value: 5 }));
        assert_needs_reset(&mut model, &mut guest);
    }
    // Reading a write-only register.
    for offset in [QUEUE_SEL, QUEUE_NUM, QUEUE_NOTIFY, INTERRUPT_ACK, DRIVER_FEATURES, 0x0a4] {
        let (mut model, mut guest) = probed(u64::MAX);
        assert_eq!(model.read(offset, 4), (0, Some(Fault::WriteOnly { offset })));
        assert_needs_reset(&mut model, &mut guest);
    }
}

#[test]
fn bad_widths_and_offsets_need_a_reset() {
    for (offset, width) in
        [(STATUS, 2), (STATUS, 1), (STATUS, 8), (STATUS + 2, 4), (QUEUE_NOTIFY, 0)]
    {
        let (mut model, mut guest) = probed(u64::MAX);
        let fault = model.write(&mut guest.memory, offset, width, 0);
        assert_eq!(fault, Some(Fault::Width { offset, width }));
        assert_needs_reset(&mut model, &mut guest);
        let (mut model, mut guest) = probed(u64::MAX);
        assert_eq!(model.read(offset, width), (0, Some(Fault::Width { offset, width })));
        assert_needs_reset(&mut model, &mut guest);
    }
    // No register there (the legacy GuestPageSize and QueuePFN, a gap), past the config.
    for offset in [0x028, 0x040, 0x0f0] {
        let (mut model, mut guest) = probed(u64::MAX);
        assert_eq!(
            model.write(&mut guest.memory, offset, 4, 1),
            Some(Fault::Offset { offset, width: 4 })
        );
        assert_needs_reset(&mut model, &mut guest);
    }
    let (mut model, mut guest) = probed(u64::MAX);
    let offset = CONFIG + crate::blk::CONFIG_LENGTH as u64 - 2;
    assert_eq!(model.read(offset, 4), (0, Some(Fault::Offset { offset, width: 4 })));
    assert_needs_reset(&mut model, &mut guest);
    let (mut model, mut guest) = probed(u64::MAX);
    assert_eq!(model.read(u64::MAX, 1), (0, Some(Fault::Offset { offset: u64::MAX, width: 1 })));
    assert_eq!(model.read(CONFIG, 3), (0, Some(Fault::Width { offset: CONFIG, width: 3 })));
    assert_needs_reset(&mut model, &mut guest);
}

#[test]
fn status_and_queue_setup_out_of_order_need_a_reset() {
    // Clearing a bit, setting NEEDS_RESET, DRIVER_OK without FEATURES_OK, an unknown bit.
    let cases: [(u8, u32); 4] = [
        (ACKNOWLEDGE | DRIVER, ACKNOWLEDGE.into()),
        (ACKNOWLEDGE, (ACKNOWLEDGE | NEEDS_RESET).into()),
        (ACKNOWLEDGE | DRIVER, (ACKNOWLEDGE | DRIVER | DRIVER_OK).into()),
        (ACKNOWLEDGE, (ACKNOWLEDGE | 0x10).into()),
    ];
    for (from, to) in cases {
        let mut model = crate::test_driver::model();
        let mut guest = Guest::new();
        guest.write(&mut model, STATUS, from.into());
        assert_eq!(
            model.write(&mut guest.memory, STATUS, 4, to.into()),
            Some(Fault::Status { from, to })
        );
        assert_ne!(model.status() & NEEDS_RESET, 0);
    }
    // Features after FEATURES_OK.
    let (mut model, mut guest) = probed(u64::MAX);
    let status = model.status();
    assert_eq!(
        model.write(&mut guest.memory, DRIVER_FEATURES, 4, 0),
        Some(Fault::Features { status })
    );
    assert_needs_reset(&mut model, &mut guest);
    // A ready queue's setup.
    let (mut model, mut guest) = probed(u64::MAX);
    guest.write(&mut model, QUEUE_SEL, 0);
    let fault = model.write(&mut guest.memory, QUEUE_NUM, 4, 8);
    assert_eq!(fault, Some(Fault::QueueLive { queue: 0, offset: QUEUE_NUM }));
    assert_needs_reset(&mut model, &mut guest);
    // A queue that does not exist, and its notify.
    let (mut model, mut guest) = probed(u64::MAX);
    guest.write(&mut model, QUEUE_SEL, 5);
    assert_eq!(model.write(&mut guest.memory, QUEUE_NUM, 4, 8), Some(Fault::NoQueue { queue: 5 }));
    assert_needs_reset(&mut model, &mut guest);
    let (mut model, mut guest) = probed(u64::MAX);
    assert_eq!(
        model.write(&mut guest.memory, QUEUE_NOTIFY, 4, 1),
        Some(Fault::NoQueue { queue: 1 })
    );
    assert_needs_reset(&mut model, &mut guest);
    // A queue size not a power of two, rings outside RAM or misaligned.
    for (num, desc, error) in [
        (12, DESC, LayoutError::Size(12)),
        (16, 0x1000, LayoutError::OutsideRam),
        (16, DESC + 8, LayoutError::Alignment),
        (512, DESC, LayoutError::Size(512)),
    ] {
        let mut model = crate::test_driver::model();
        let mut guest = Guest::new();
        for status in [ACKNOWLEDGE, ACKNOWLEDGE | DRIVER] {
            guest.write(&mut model, STATUS, status.into());
        }
        guest.write(&mut model, DRIVER_FEATURES_SEL, 1);
        guest.write(&mut model, DRIVER_FEATURES, 1);
        guest.write(&mut model, STATUS, (ACKNOWLEDGE | DRIVER | FEATURES_OK).into());
        guest.write(&mut model, QUEUE_NUM, num);
        guest.write(&mut model, QUEUE_DESC_LOW, desc as u32);
        guest.write(&mut model, QUEUE_DRIVER_LOW, AVAIL as u32);
        guest.write(&mut model, QUEUE_DEVICE_LOW, crate::test_driver::USED as u32);
        let fault = model.write(&mut guest.memory, QUEUE_READY, 4, 1);
        assert_eq!(fault, Some(Fault::QueueLayout { queue: 0, error }));
        assert_ne!(model.status() & NEEDS_RESET, 0);
    }
}

/// Seeded: arbitrary register accesses, then arbitrary ring and descriptor contents under a
/// probed device, never panic; every fault leaves NEEDS_RESET set.
#[test]
fn arbitrary_accesses_and_memory_never_panic() {
    let mut rng = Xorshift(0x2545_f491_4f6c_dd1d);
    let offsets =
        [0x000, 0x010, 0x014, 0x020, 0x024, 0x030, 0x034, 0x038, 0x044, 0x050, 0x060, 0x064]
            .into_iter()
            .chain([0x070, 0x080, 0x084, 0x090, 0x094, 0x0a0, 0x0a4, 0x0fc, 0x100, 0x108, 0x13a]);
    let offsets: alloc::vec::Vec<u64> = offsets.collect();
    for round in 0..300 {
        let (mut model, mut guest) = probed(if round % 2 == 0 { u64::MAX } else { 1 << 32 });
        // Random descriptors, available ring and request bytes (the first 64 KiB of RAM and the
        // request areas).
        for byte in guest.memory.bytes[..0x3000].iter_mut() {
            *byte = rng.next() as u8;
        }
        for _ in 0..64 {
            let at = 0x10000 + (rng.next() % 0x40000) as usize;
            guest.memory.bytes[at] = rng.next() as u8;
        }
        // Keep some descriptors pointing into RAM so that requests get served.
        for index in 0..SIZE {
            if rng.next().is_multiple_of(2) {
                let address = RAM + 0x10000 + rng.next() % 0x40000;
                guest.memory.put_u64(DESC + 16 * u64::from(index), address);
                guest
                    .memory
                    .put_u32(DESC + 16 * u64::from(index) + 8, (rng.next() % 0x2000) as u32);
            }
        }
        guest.memory.put_u16(AVAIL + 2, (rng.next() % (u64::from(SIZE) + 2)) as u16);
        let fault = model.write(&mut guest.memory, QUEUE_NOTIFY, 4, 0);
        assert_eq!(fault.is_some(), model.status() & NEEDS_RESET != 0, "{fault:?}");
        for _ in 0..40 {
            let offset = if rng.next().is_multiple_of(4) {
                rng.next() % 0x200
            } else {
                offsets[(rng.next() % offsets.len() as u64) as usize]
            };
            let width = [1, 2, 4, 4, 4, 8][(rng.next() % 6) as usize];
            let value = if rng.next().is_multiple_of(2) { rng.next() % 0x100 } else { rng.next() };
            let before = model.status();
            let fault = if rng.next().is_multiple_of(3) {
                model.read(offset, width).1
            } else {
                model.write(&mut guest.memory, offset, width, value)
            };
            if fault.is_some() {
                assert_ne!(model.status() & NEEDS_RESET, 0, "{fault:?} from {before:#x}");
            }
        }
        let _ = model.write(&mut guest.memory, STATUS, 4, 0);
        assert_eq!(model.status(), 0);
    }
    // A whole write of a request, for the sake of T_OUT with random contents.
    let (mut model, mut guest) = probed(u64::MAX);
    let head = guest.submit(T_OUT, 0, &[0x5a; 512], 0, true);
    guest.notify(&mut model);
    assert_eq!(guest.completions()[0].head, head);
}
