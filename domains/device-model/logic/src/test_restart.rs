//! The restore rule (`state.rs`) under a simulated kill: a model killed after popping chains,
//! after doing some of their writes, between a used entry and its index, and restored from
//! saved bytes, completes every request exactly once as the guest sees it (the simulated
//! driver refuses a used id it has no request for) and leaves the disk right.

use alloc::vec;
use alloc::vec::Vec;

use crate::blk::{Block, VecDisk, S_OK, T_IN, T_OUT};
use crate::mmio::Transport;
use crate::state::Saved;
use crate::test_driver::{model, model_on, Completion, Guest, Model, ID, SECTORS, SIZE, USED};
use crate::test_rng::Xorshift;
use crate::virtqueue::F_INDIRECT_DESC;

fn pattern(seed: u64, length: usize) -> Vec<u8> {
    (0..length)
        .map(|i| (i as u64).wrapping_mul(0x9e37).wrapping_add(seed.wrapping_mul(131)) as u8)
        .collect()
}

fn encode(model: &Model) -> Vec<u8> {
    let mut bytes = Vec::new();
    Saved { devices: vec![model.save()] }.encode(&mut bytes);
    bytes
}

/// A new incarnation over `disk` from `bytes`; the restore must succeed without a fault.
fn restore(bytes: &[u8], disk: VecDisk, guest: &mut Guest) -> Model {
    let saved = Saved::decode(bytes).unwrap();
    let block = Block::new(disk, ID);
    let (model, fault) = Transport::restore(block, &saved.devices[0], &mut guest.memory).unwrap();
    assert_eq!(fault, None);
    assert!(model.interrupt_line());
    model
}

#[test]
fn a_model_killed_mid_request_completes_each_request_once() {
    let mut model = model();
    let mut guest = Guest::new();
    guest.probe(&mut model, u64::MAX);
    // Saved once, at setup: the positions in it lag on purpose.
    let saved = encode(&model);
    let mut expected = vec![0u8; (SECTORS * 512) as usize];
    let mut write = |guest: &mut Guest, sector: u64, seed: u64, length: usize| {
        let data = pattern(seed, length);
        let at = (sector * 512) as usize;
        expected[at..at + length].copy_from_slice(&data);
        guest.submit(T_OUT, sector, &data, 0, false)
    };
    for i in 0..2 {
        write(&mut guest, i, i, 512);
    }
    guest.notify(&mut model);
    assert_eq!(guest.completions().len(), 2);
    let late: Vec<u16> = (0..5).map(|i| write(&mut guest, 10 + 2 * i, 10 + i, 1024)).collect();
    // The notify reached a model that was killed partway through, step by step:
    let mut queue = model.queues[0];
    let mut block = model.into_device();
    let chains: Vec<_> = (0..4).map(|_| queue.pop(&mut guest.memory).unwrap().unwrap()).collect();
    // the first done and published,
    let written = block.handle(&mut guest.memory, &chains[0]).unwrap();
    queue.push(&mut guest.memory, chains[0].head, written).unwrap();
    // the second done and its used entry written, its index not,
    block.handle(&mut guest.memory, &chains[1]).unwrap();
    let slot = USED + 4 + 8 * u64::from(queue.used % SIZE);
    guest.memory.put_u32(slot, chains[1].head.into());
    // the third done, nothing published,
    block.handle(&mut guest.memory, &chains[2]).unwrap();
    // the fourth popped and half its data on disk, the fifth not popped.
    let mut disk = block.into_disk();
    disk.0[16 * 512..17 * 512].copy_from_slice(&pattern(13, 512));
    let mut model = restore(&saved, disk, &mut guest);
    let completions = guest.completions();
    let heads: Vec<u16> = completions.iter().map(|c| c.head).collect();
    assert_eq!(heads, late);
    assert!(completions.iter().all(|c| *c == Completion { head: c.head, length: 1, status: S_OK }));
    assert_eq!(model.device().disk().0, expected);
    // And it goes on: the data reads back through the guest.
    let head = guest.submit(T_IN, 10, &[], 10 * 512, false);
    guest.notify(&mut model);
    assert_eq!(guest.completions(), [Completion { head, length: 10 * 512 + 1, status: S_OK }]);
    assert_eq!(guest.data(head, 10 * 512), &expected[10 * 512..20 * 512]);
}

/// Ten kills at seeded points of a stream of writes (with and without event indices): every
/// request completed once, with `VIRTIO_BLK_S_OK`, and the disk as if nothing happened.
#[test]
fn ten_kills_during_writes_lose_and_repeat_nothing() {
    let without_event_idx = (1 << 32) | F_INDIRECT_DESC;
    for (seed, features) in
        [(0x1234_5678_9abc_def1, u64::MAX), (0x0fed_cba9_8765_4321, without_event_idx)]
    {
        let mut rng = Xorshift(seed);
        let mut model = model_on(VecDisk(vec![0; (SECTORS * 512) as usize]));
        let mut guest = Guest::new();
        guest.probe(&mut model, features);
        let saved = encode(&model);
        let mut expected = vec![0u8; (SECTORS * 512) as usize];
        let (mut submitted, mut completed) = (0usize, 0usize);
        for kill in 0..10 {
            // The guest queues up to five writes (one notify), some overlapping.
            for _ in 0..1 + rng.next() % 5 {
                let sectors = 1 + rng.next() % 4;
                let sector = rng.next() % (SECTORS - sectors);
                let data = pattern(rng.next(), (sectors * 512) as usize);
                let at = (sector * 512) as usize;
                expected[at..at + data.len()].copy_from_slice(&data);
                guest.submit(T_OUT, sector, &data, 0, rng.next().is_multiple_of(2));
                submitted += 1;
            }
            // The model completes some, pops and does some more, and is killed.
            let mut queue = model.queues[0];
            let mut block = model.into_device();
            let mut popped = Vec::new();
            while let Some(chain) = queue.pop(&mut guest.memory).unwrap() {
                popped.push(chain);
            }
            let complete = (rng.next() % (popped.len() as u64 + 1)) as usize;
            let done = complete + (rng.next() % ((popped.len() - complete) as u64 + 1)) as usize;
            for (index, chain) in popped.iter().enumerate().take(done) {
                let written = block.handle(&mut guest.memory, chain).unwrap();
                if index < complete {
                    queue.push(&mut guest.memory, chain.head, written).unwrap();
                }
            }
            if rng.next().is_multiple_of(2) {
                completed += guest.completions().len();
            }
            model = restore(&saved, block.into_disk(), &mut guest);
            let after = guest.completions();
            assert!(after.iter().all(|c| c.status == S_OK), "kill {kill}: {after:?}");
            completed += after.len();
            assert_eq!(completed, submitted, "kill {kill}");
            assert_eq!(model.device().disk().0, expected, "kill {kill}");
        }
    }
}

/// The restored positions come from guest memory, and the ring indices wrap at 2^16: a
/// queue resumed at used index 65533 serves requests across the wrap.
#[test]
fn a_restored_queue_serves_across_the_index_wrap() {
    let mut model = model();
    let mut guest = Guest::new();
    guest.probe(&mut model, u64::MAX);
    let saved = encode(&model);
    (guest.avail, guest.seen) = (65533, 65533);
    guest.memory.put_u16(crate::test_driver::AVAIL + 2, 65533);
    guest.memory.put_u16(USED + 2, 65533);
    let mut model = restore(&saved, model.into_device().into_disk(), &mut guest);
    let mut heads = Vec::new();
    for round in 0..3u64 {
        for i in 0..4 {
            heads.push(guest.submit(T_OUT, 4 * round + i, &pattern(round * 4 + i, 512), 0, false));
        }
        guest.notify(&mut model);
        let done: Vec<u16> = guest.completions().iter().map(|c| c.head).collect();
        assert_eq!(done, heads[heads.len() - 4..], "round {round}");
    }
    assert_eq!(guest.memory.get_u16(USED + 2), 65533u16.wrapping_add(12));
    for i in 0..12u64 {
        let at = (i * 512) as usize;
        assert_eq!(model.device().disk().0[at..at + 512], pattern(i, 512), "{i}");
    }
}
