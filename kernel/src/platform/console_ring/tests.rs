//! The console ring against Xen's `read_console_ring` rules and a model that counts bytes
//! without wrapping.

use xenolith_abi::xen::hypercall::GuestHandle;
use xenolith_abi::xen::sysctl::xen_sysctl_readconsole;

use super::{ConsoleRing, RING_SIZE};
use crate::test_rng::Rng;

fn request(clear: bool, incremental: bool, index: u32, count: u32) -> xen_sysctl_readconsole {
    xen_sysctl_readconsole {
        clear: clear.into(),
        incremental: incremental.into(),
        pad0: 0,
        pad1: 0,
        index,
        buffer: GuestHandle::NULL,
        count,
        _pad: 0,
    }
}

/// Reads as `XEN_SYSCTL_readconsole` does: the bytes (each piece checked to follow the one
/// before), and the request's `count` and `index` afterwards.
fn read(
    ring: &mut ConsoleRing,
    clear: bool,
    incremental: bool,
    index: u32,
    count: u32,
) -> (Vec<u8>, u32, u32) {
    let mut op = request(clear, incremental, index, count);
    let mut out = Vec::new();
    ring.read(&mut op, |offset, bytes| {
        assert_eq!(offset as usize, out.len(), "pieces come in order, without gaps");
        assert!(!bytes.is_empty(), "no empty piece");
        out.extend_from_slice(bytes);
        Ok::<(), ()>(())
    })
    .unwrap();
    assert_eq!(op.count as usize, out.len());
    (out, op.count, op.index)
}

fn all(ring: &mut ConsoleRing) -> Vec<u8> {
    read(ring, false, false, 0, u32::MAX).0
}

#[test]
fn an_empty_ring_reads_nothing_at_index_zero() {
    let mut ring = ConsoleRing::EMPTY;
    assert_eq!(read(&mut ring, false, false, 0, 100), (vec![], 0, 0));
    assert_eq!(read(&mut ring, true, true, 7, 100), (vec![], 0, 0));
}

#[test]
fn what_was_put_reads_back_oldest_first_with_the_index_after_it() {
    let mut ring = ConsoleRing::EMPTY;
    ring.put(b"(XEN) one\n");
    ring.put(b"(d1) two\n");
    assert_eq!(read(&mut ring, false, false, 0, 4096), (b"(XEN) one\n(d1) two\n".to_vec(), 19, 19));
    // Without `clear` nothing is consumed.
    assert_eq!(all(&mut ring), b"(XEN) one\n(d1) two\n");
}

#[test]
fn count_bounds_a_read_and_an_incremental_read_goes_on_from_its_index() {
    let mut ring = ConsoleRing::EMPTY;
    ring.put(b"0123456789abcdef");
    assert_eq!(read(&mut ring, false, true, 0, 10), (b"0123456789".to_vec(), 10, 10));
    assert_eq!(read(&mut ring, false, true, 10, 10), (b"abcdef".to_vec(), 6, 16));
    assert_eq!(read(&mut ring, false, true, 16, 10), (vec![], 0, 16), "at the newest: nothing");
    assert_eq!(read(&mut ring, false, false, 10, 4), (b"0123".to_vec(), 4, 4), "not incremental");
    assert_eq!(read(&mut ring, false, true, 3, 0), (vec![], 0, 3), "count 0 copies nothing");
}

#[test]
fn an_index_outside_the_kept_bytes_reads_from_the_oldest() {
    let mut ring = ConsoleRing::EMPTY;
    ring.put(&[b'x'; RING_SIZE + 100]);
    ring.put(b"end");
    let oldest = 103;
    for index in [0, oldest, RING_SIZE as u32 + 200, u32::MAX] {
        let (bytes, count, at) = read(&mut ring, false, true, index, u32::MAX);
        assert_eq!((count as usize, at), (RING_SIZE, RING_SIZE as u32 + 103), "index {index}");
        assert!(bytes.ends_with(b"xend"));
    }
    let (bytes, _, _) = read(&mut ring, false, true, oldest + 1, u32::MAX);
    assert_eq!(bytes.len(), RING_SIZE - 1, "just after the oldest: from there");
}

#[test]
fn a_full_ring_drops_the_oldest_bytes_and_reads_across_its_end_in_two_pieces() {
    let mut ring = ConsoleRing::EMPTY;
    let text: Vec<u8> = (0..RING_SIZE + 1000).map(|i| (i % 251) as u8).collect();
    for piece in text.chunks(333) {
        ring.put(piece);
    }
    let mut pieces = 0;
    let mut op = request(false, false, 0, u32::MAX);
    let mut out = Vec::new();
    ring.read(&mut op, |_, bytes| {
        pieces += 1;
        out.extend_from_slice(bytes);
        Ok::<(), ()>(())
    })
    .unwrap();
    assert_eq!(pieces, 2);
    assert_eq!(out, &text[1000..], "the last RING_SIZE bytes");
    assert_eq!((op.count as usize, op.index as usize), (RING_SIZE, RING_SIZE + 1000));
}

#[test]
fn clear_drops_what_was_read_and_keeps_what_was_not() {
    let mut ring = ConsoleRing::EMPTY;
    ring.put(b"boot banner\nlater\n");
    assert_eq!(read(&mut ring, true, true, 0, 12).0, b"boot banner\n");
    assert_eq!(all(&mut ring), b"later\n", "a partial read clears only what it read");
    assert_eq!(read(&mut ring, true, false, 0, 100).0, b"later\n");
    assert_eq!(all(&mut ring), b"");
    ring.put(b"after the clear\n");
    assert_eq!(read(&mut ring, false, false, 0, 100), (b"after the clear\n".to_vec(), 16, 34));
    // An incremental clear from a later index drops what it skipped too (as Xen's does).
    ring.put(b"more");
    assert_eq!(read(&mut ring, true, true, 28, 100).0, b"clear\nmore");
    assert_eq!(all(&mut ring), b"");
}

#[test]
fn a_failing_copy_changes_neither_the_ring_nor_the_request() {
    let mut ring = ConsoleRing::EMPTY;
    ring.put(b"kept");
    let mut op = request(true, false, 5, 100);
    assert_eq!(ring.read(&mut op, |_, _| Err("EFAULT")), Err("EFAULT"));
    assert_eq!((op.count, op.index), (100, 5));
    assert_eq!(all(&mut ring), b"kept", "not cleared");
}

#[test]
fn no_read_copies_more_than_the_ring_whatever_count_says() {
    let mut ring = ConsoleRing::EMPTY;
    ring.put(&[7; 3 * RING_SIZE]);
    let (bytes, count, _) = read(&mut ring, false, false, 0, u32::MAX);
    assert_eq!((bytes.len(), count as usize), (RING_SIZE, RING_SIZE));
}

/// The counters wrap at 2^32 (Xen's are `uint32_t`): a ring near the wrap behaves as a model
/// that counts in `u64` and never wraps, under random puts and reads.
#[test]
fn counters_that_wrap_behave_as_a_model_that_never_wraps() {
    let mut rng = Rng(0x5eed_c0de);
    for round in 0..20 {
        let base = u64::from(u32::MAX) - u64::from(rng.below(40_000));
        let mut ring = ConsoleRing::EMPTY;
        (ring.consumer, ring.producer) = (base as u32, base as u32);
        // The model: every byte ever put, and the absolute position of the oldest kept.
        let (mut written, mut oldest) = (Vec::<u8>::new(), base);
        let mut last_index = base as u32;
        for step in 0..400 {
            let newest = base + written.len() as u64;
            if rng.coin() {
                let text: Vec<u8> = (0..rng.below(3000)).map(|_| rng.below(256) as u8).collect();
                ring.put(&text);
                written.extend_from_slice(&text);
                let newest = base + written.len() as u64;
                oldest = oldest.max(newest.saturating_sub(RING_SIZE as u64));
                continue;
            }
            let (clear, incremental) = (rng.coin(), rng.coin());
            let index = match rng.below(3) {
                0 => last_index,
                1 => (newest as u32).wrapping_sub(rng.below(2 * RING_SIZE as u64)),
                _ => rng.next() as u32,
            };
            let count = [0, 1, rng.below(RING_SIZE as u64 + 10), u32::MAX][rng.below(4) as usize];
            // The model's answer, in absolute positions.
            let candidate = oldest + u64::from(index.wrapping_sub(oldest as u32));
            let start = if incremental && candidate > oldest && candidate <= newest {
                candidate
            } else {
                oldest
            };
            let end = newest.min(start + u64::from(count));
            let expected = &written[(start - base) as usize..(end - base) as usize];
            let (bytes, got_count, got_index) = read(&mut ring, clear, incremental, index, count);
            assert_eq!(bytes, expected, "round {round} step {step}");
            assert_eq!((got_count as usize, got_index), (expected.len(), end as u32));
            if clear {
                oldest = end;
            }
            last_index = got_index;
        }
    }
}
