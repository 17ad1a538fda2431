//! Host tests of `frame`.

use super::*;
use std::collections::BTreeSet;

const MIB: u64 = 1 << 20;

fn region(start: u64, end: u64) -> Region {
    Region::new(start, end)
}

/// Builds an allocator over a bitmap of exactly the advertised size.
fn with<R>(
    ram: &[Region],
    reserved: &[Region],
    run: impl FnOnce(&mut FrameAllocator<'_>) -> R,
) -> R {
    let mut bitmap = vec![0u64; FrameAllocator::bitmap_words(ram)];
    let mut allocator = FrameAllocator::new(ram, reserved, &mut bitmap).expect("valid layout");
    run(&mut allocator)
}

fn drain(allocator: &mut FrameAllocator<'_>) -> Vec<u64> {
    std::iter::from_fn(|| allocator.alloc()).collect()
}

#[test]
fn region_basics() {
    let r = region(0x1000, 0x3000);
    assert_eq!(r.len(), 0x2000);
    assert!(!r.is_empty());
    assert!(r.contains(0x1000) && r.contains(0x2fff) && !r.contains(0x3000) && !r.contains(0xfff));
    assert!(r.overlaps(&region(0x2fff, 0x4000)));
    assert!(!r.overlaps(&region(0x3000, 0x4000)));
    assert!(!r.overlaps(&region(0x2000, 0x2000)), "an empty region overlaps nothing");
    assert!(region(5, 3).is_empty());
    assert_eq!(region(5, 3).len(), 0);
    assert_eq!(region(0x1001, 0x3fff).align_inward(FRAME_SIZE), region(0x2000, 0x3000));
    assert_eq!(region(0x1001, 0x3fff).align_outward(FRAME_SIZE), region(0x1000, 0x4000));
    assert_eq!(region(0x1001, 0x1fff).align_inward(FRAME_SIZE).len(), 0);
    assert_eq!(region(0x1000, u64::MAX).align_outward(FRAME_SIZE).end, !0xfff);
    assert_eq!(Region::from_base_size(u64::MAX, 1), None);
    assert_eq!(Region::from_base_size(0x1000, 0x1000), Some(region(0x1000, 0x2000)));
}

#[test]
fn region_list_is_bounded() {
    let mut list = RegionList::new();
    assert!(list.is_empty());
    for i in 0..MAX_REGIONS as u64 {
        list.push(region(i, i + 1)).unwrap();
    }
    assert_eq!(list.len(), MAX_REGIONS);
    assert_eq!(list.push(region(100, 101)), Err(FrameError::TooManyRegions));
    assert_eq!(list.len(), MAX_REGIONS);
    assert_eq!(list.iter().count(), MAX_REGIONS);
    assert_eq!(list.as_slice()[3], region(3, 4));
    assert_eq!(list[3], region(3, 4), "it derefs to the regions pushed");
    let mut one = RegionList::new();
    one.push(region(1, 2)).unwrap();
    assert_eq!(format!("{one:?}"), format!("{:?}", [region(1, 2)]));
    assert_ne!(one, RegionList::new());
}

#[test]
fn one_bank_hands_out_every_frame_lowest_first() {
    let ram = [region(0x4000_0000, 0x4000_0000 + MIB)];
    with(&ram, &[], |a| {
        assert_eq!(a.total_frames(), 256);
        assert_eq!(a.free_frames(), 256);
        let frames = drain(a);
        let expected: Vec<u64> = (0..256).map(|i| 0x4000_0000 + i * FRAME_SIZE).collect();
        assert_eq!(frames, expected);
        assert_eq!(a.free_frames(), 0);
        assert_eq!(a.alloc(), None);
        assert_eq!(a.alloc_contiguous(1, 1), None);
    });
}

#[test]
fn exhausting_and_refilling_returns_to_the_start() {
    let ram = [region(0x8000_0000, 0x8000_0000 + 200 * FRAME_SIZE)];
    with(&ram, &[], |a| {
        let first = drain(a);
        for &frame in first.iter().rev() {
            a.free(frame).unwrap();
        }
        assert_eq!(a.free_frames(), 200);
        assert_eq!(drain(a), first);
        // Free a few in the middle: they come back lowest first.
        for &frame in &[first[150], first[70], first[199]] {
            a.free(frame).unwrap();
        }
        assert_eq!(drain(a), vec![first[70], first[150], first[199]]);
    });
}

#[test]
fn banks_are_sorted_merged_and_rounded_inwards() {
    let ram = [
        region(0x9000_0800, 0x9000_4000), // unaligned start: frames 0x90001000..
        region(0x1000, 0x3000),
        region(0x2000, 0x5800), // overlaps the one above, unaligned end
        region(0x5800, 0x7000), // adjacent: merges, so frame 0x5000 is whole RAM
        region(0x7000_0000, 0x7000_0fff), // less than a frame: dropped
    ];
    assert_eq!(FrameAllocator::bitmap_words(&ram), 2);
    with(&ram, &[], |a| {
        assert_eq!(a.banks(), &[region(0x1000, 0x7000), region(0x9000_1000, 0x9000_4000)]);
        assert_eq!(a.total_frames(), 6 + 3);
        let frames = drain(a);
        assert_eq!(
            frames,
            [0x1000, 0x2000, 0x3000, 0x4000, 0x5000, 0x6000, 0x9000_1000, 0x9000_2000, 0x9000_3000]
        );
    });
}

#[test]
fn reserved_regions_at_edges_overlapping_and_unaligned() {
    let ram =
        [region(0x4000_0000, 0x4000_0000 + 64 * FRAME_SIZE), region(0x8000_0000, 0x8000_4000)];
    let reserved = [
        region(0x3fff_f000, 0x4000_0001), // straddles the start: frame 0 gone
        region(0x4000_5fff, 0x4000_6001), // unaligned, touches frames 5 and 6
        region(0x4000_8000, 0x4000_a000), // frames 8, 9
        region(0x4000_9000, 0x4000_b000), // overlaps: adds frame 10
        region(0x4003_f000, 0x5000_0000), // the last frame and beyond
        region(0x8000_3000, 0x8000_3000), // empty: reserves nothing
        region(0x1_0000_0000, 0x2_0000_0000), // outside RAM: no effect
    ];
    with(&ram, &reserved, |a| {
        assert_eq!(a.total_frames(), 64 - 1 - 2 - 3 - 1 + 4);
        let frames: BTreeSet<u64> = drain(a).into_iter().collect();
        for gone in [0, 5, 6, 8, 9, 10, 63] {
            assert!(!frames.contains(&(0x4000_0000 + gone * FRAME_SIZE)), "frame {gone}");
        }
        assert!(frames.contains(&0x4000_1000) && frames.contains(&0x4000_7000));
        assert!(frames.contains(&0x8000_3000));
        for frame in [0x4000_0000, 0x4000_6000, 0x4003_f000] {
            assert_eq!(a.free(frame), Err(FrameError::Reserved { addr: frame }));
        }
    });
}

#[test]
fn construction_errors() {
    let ram = [region(0x1000, 0x1000 + 65 * FRAME_SIZE)];
    let mut short = [0u64; 1];
    assert_eq!(
        FrameAllocator::new(&ram, &[], &mut short).err(),
        Some(FrameError::BitmapTooSmall { needed_words: 2 })
    );
    let mut bitmap = [u64::MAX; 4];
    assert_eq!(FrameAllocator::new(&[], &[], &mut bitmap).err(), Some(FrameError::NoRam));
    let tiny = [region(0x1001, 0x2fff)];
    assert_eq!(FrameAllocator::new(&tiny, &[], &mut bitmap).err(), Some(FrameError::NoRam));
    let all_reserved = [region(0, u64::MAX)];
    assert_eq!(
        FrameAllocator::new(&ram, &all_reserved, &mut bitmap).err(),
        Some(FrameError::NoRam)
    );
    let many: Vec<Region> =
        (0..33).map(|i| region(i * 0x10_0000, i * 0x10_0000 + 0x1000)).collect();
    assert_eq!(
        FrameAllocator::new(&many, &[], &mut bitmap).err(),
        Some(FrameError::TooManyRegions)
    );
    assert_eq!(
        FrameAllocator::new(&ram, &many, &mut bitmap).err(),
        Some(FrameError::TooManyRegions)
    );
    // A longer bitmap is fine, and stale contents are cleared.
    let allocator = FrameAllocator::new(&ram, &[], &mut bitmap).unwrap();
    assert_eq!(allocator.total_frames(), 65);
}

#[test]
fn free_errors_change_nothing() {
    let ram = [region(0x4000_0000, 0x4000_0000 + 16 * FRAME_SIZE)];
    let reserved = [region(0x4000_f000, 0x4001_0000)];
    with(&ram, &reserved, |a| {
        let frame = a.alloc().unwrap();
        let before = a.free_frames();
        assert_eq!(a.free(frame + 8), Err(FrameError::Misaligned { addr: frame + 8 }));
        assert_eq!(a.free(0x1000), Err(FrameError::NotRam { addr: 0x1000 }));
        assert_eq!(a.free(0x4001_0000), Err(FrameError::NotRam { addr: 0x4001_0000 }));
        assert_eq!(a.free(0x4000_1000), Err(FrameError::DoubleFree { addr: 0x4000_1000 }));
        assert_eq!(a.free(0x4000_f000), Err(FrameError::Reserved { addr: 0x4000_f000 }));
        assert_eq!(a.free_frames(), before);
        a.free(frame).unwrap();
        assert_eq!(a.free(frame), Err(FrameError::DoubleFree { addr: frame }));
        assert_eq!(a.free_frames(), before + 1);
    });
}

#[test]
fn free_contiguous_checks_everything_first() {
    let base = 0x4000_0000;
    let ram = [region(base, base + 32 * FRAME_SIZE)];
    let reserved = [region(base + 20 * FRAME_SIZE, base + 21 * FRAME_SIZE)];
    with(&ram, &reserved, |a| {
        let run = a.alloc_contiguous(10, 1).unwrap();
        assert_eq!(run, base);
        let before = a.free_frames();
        // Frame 10 is still free: nothing in 0..12 may be freed.
        assert_eq!(
            a.free_contiguous(run, 12),
            Err(FrameError::DoubleFree { addr: base + 10 * FRAME_SIZE })
        );
        // Runs off the end of the bank.
        assert_eq!(
            a.free_contiguous(base + 30 * FRAME_SIZE, 3),
            Err(FrameError::NotRam { addr: base + 32 * FRAME_SIZE })
        );
        assert_eq!(
            a.free_contiguous(base, usize::MAX),
            Err(FrameError::NotRam { addr: base + 32 * FRAME_SIZE })
        );
        // Crosses the reserved frame.
        assert_eq!(
            a.free_contiguous(base + 18 * FRAME_SIZE, 4),
            Err(FrameError::Reserved { addr: base + 20 * FRAME_SIZE })
        );
        assert_eq!(a.free_contiguous(base + 1, 2), Err(FrameError::Misaligned { addr: base + 1 }));
        assert_eq!(a.free_frames(), before);
        assert_eq!(a.free_contiguous(base, 0), Ok(()));
        a.free_contiguous(run, 10).unwrap();
        assert_eq!(a.free_frames(), before + 10);
        assert_eq!(a.alloc(), Some(base));
    });
}

#[test]
fn contiguous_with_alignment() {
    // The bank starts one frame past a 16-frame boundary.
    let base = 0x4000_0000 + FRAME_SIZE;
    let ram = [region(base, 0x4000_0000 + 200 * FRAME_SIZE)];
    with(&ram, &[], |a| {
        assert_eq!(a.alloc(), Some(base));
        let aligned = a.alloc_contiguous(16, 16).unwrap();
        assert_eq!(aligned, 0x4001_0000);
        // The frames skipped for alignment are still free, lowest first.
        assert_eq!(a.alloc_contiguous(3, 1), Some(base + FRAME_SIZE));
        assert_eq!(a.alloc_contiguous(1, 8), Some(0x4000_8000));
        // Two 64-frame, 64-aligned runs fit below 0x4000_0000 + 200 frames; a third does not.
        assert_eq!(a.alloc_contiguous(64, 64), Some(0x4004_0000));
        assert_eq!(a.alloc_contiguous(64, 64), Some(0x4008_0000));
        assert_eq!(a.alloc_contiguous(64, 64), None);
        assert_eq!(a.alloc_contiguous(8, 8), Some(0x4002_0000));
        assert_eq!(a.alloc_contiguous(0, 1), None);
        assert_eq!(a.alloc_contiguous(1, 0), None);
        assert_eq!(a.alloc_contiguous(1, 3), None);
        assert_eq!(a.alloc_contiguous(usize::MAX, 1), None);
    });
}

#[test]
fn contiguous_skips_used_frames_and_banks() {
    let ram =
        [region(0x1000, 0x1000 + 8 * FRAME_SIZE), region(0x10_0000, 0x10_0000 + 100 * FRAME_SIZE)];
    let reserved = [region(0x10_0000 + 40 * FRAME_SIZE, 0x10_0000 + 41 * FRAME_SIZE)];
    with(&ram, &reserved, |a| {
        // Too long for the first bank, and crosses the reserved frame at 40 in the second.
        assert_eq!(a.alloc_contiguous(50, 1), Some(0x10_0000 + 41 * FRAME_SIZE));
        assert_eq!(a.alloc_contiguous(8, 1), Some(0x1000));
        assert_eq!(a.alloc_contiguous(41, 1), None);
        assert_eq!(a.alloc_contiguous(40, 1), Some(0x10_0000));
        assert_eq!(a.free_frames(), 9);
    });
}

#[test]
fn find_free_range_places_around_reserved() {
    let ram = [region(0x8000_0000, 0x8010_0000), region(0x4000_0000, 0x4010_0000)];
    let reserved = [region(0x4000_0000, 0x4000_1800), region(0x4000_2000, 0x4000_3000)];
    assert_eq!(find_free_range(&ram, &reserved, 0x800, 0x800), Some(0x4000_1800));
    assert_eq!(find_free_range(&ram, &reserved, 0x1000, 0x1000), Some(0x4000_3000));
    assert_eq!(find_free_range(&ram, &reserved, 0x1000, 8), Some(0x4000_3000));
    assert_eq!(find_free_range(&ram, &reserved, 0x10_0000, 0x1000), Some(0x8000_0000));
    assert_eq!(find_free_range(&ram, &reserved, 0x10_0001, 1), None);
    assert_eq!(find_free_range(&ram, &[], 0x1000, 0x1000), Some(0x4000_0000));
    assert_eq!(find_free_range(&ram, &[], 0x1000, 0x2_0000_0000), None);
    assert_eq!(find_free_range(&ram, &[], 0, 8), None);
    assert_eq!(find_free_range(&ram, &[], 8, 3), None);
    let top = [region(u64::MAX - 0xfff, u64::MAX)];
    assert_eq!(find_free_range(&top, &[], 0x1000, 0x1000), None);
    assert_eq!(find_free_range(&top, &[], 0x800, 0x800), Some(u64::MAX - 0xfff));
}

#[test]
fn the_bitmap_placed_by_find_free_range_is_never_handed_out() {
    let ram = [region(0x4000_0000, 0x4000_0000 + 64 * MIB)];
    let image = region(0x4000_0000, 0x4020_0000);
    let words = FrameAllocator::bitmap_words(&ram);
    let size = words as u64 * 8;
    let at = find_free_range(&ram, &[image], size, FRAME_SIZE).unwrap();
    assert_eq!(at, 0x4020_0000);
    let reserved = [image, Region::from_base_size(at, size).unwrap()];
    with(&ram, &reserved, |a| {
        assert_eq!(a.total_frames(), 64 * 256 - 512 - 1);
        assert_eq!(a.alloc(), Some(0x4020_1000));
    });
}

/// A small xorshift64* generator: deterministic, no dependencies.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// The allocator must agree with a model of sets over random layouts and operations.
#[test]
fn randomized_against_a_model() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for _round in 0..200 {
        // Random banks and reserved regions in a 1 MiB window, at byte granularity.
        let window = MIB;
        let random_region = |rng: &mut Rng, max_len: u64| {
            let start = 0x4000_0000 + rng.below(window);
            let len = if rng.below(4) == 0 { rng.below(0x3000) } else { rng.below(max_len) };
            region(start, start + len)
        };
        let ram: Vec<Region> =
            (0..1 + rng.below(5)).map(|_| random_region(&mut rng, 256 * 1024)).collect();
        let reserved: Vec<Region> =
            (0..rng.below(6)).map(|_| random_region(&mut rng, 32 * 1024)).collect();

        // The model: every frame wholly inside the union of RAM and touching no reserved region.
        let is_ram_byte = |addr: u64| ram.iter().any(|r| r.contains(addr));
        let usable: BTreeSet<u64> = (0x4000_0000 / FRAME_SIZE
            ..(0x4000_0000 + 2 * window) / FRAME_SIZE)
            .map(|pfn| pfn * FRAME_SIZE)
            .filter(|&frame| {
                let whole = region(frame, frame + FRAME_SIZE);
                (frame..frame + FRAME_SIZE).step_by(0x80).all(is_ram_byte)
                    && is_ram_byte(frame + FRAME_SIZE - 1)
                    && !reserved.iter().any(|r| r.overlaps(&whole))
            })
            .collect();
        let mut bitmap = vec![0u64; FrameAllocator::bitmap_words(&ram)];
        let Ok(mut a) = FrameAllocator::new(&ram, &reserved, &mut bitmap) else {
            assert!(usable.is_empty());
            continue;
        };
        assert_eq!(a.total_frames(), usable.len() as u64);
        let mut allocated: BTreeSet<u64> = BTreeSet::new();
        let mut runs: Vec<(u64, usize)> = Vec::new();

        for _step in 0..300 {
            match rng.below(6) {
                0 | 1 => {
                    let expected = usable.iter().copied().find(|f| !allocated.contains(f));
                    assert_eq!(a.alloc(), expected);
                    if let Some(frame) = expected {
                        allocated.insert(frame);
                        runs.push((frame, 1));
                    }
                }
                2 => {
                    let count = 1 + rng.below(12) as usize;
                    let align = 1usize << rng.below(5);
                    let free = |f: &u64| usable.contains(f) && !allocated.contains(f);
                    let expected = usable.iter().copied().find(|&start| {
                        (start / FRAME_SIZE).is_multiple_of(align as u64)
                            && (0..count as u64).all(|i| free(&(start + i * FRAME_SIZE)))
                    });
                    assert_eq!(a.alloc_contiguous(count, align), expected, "{count} x {align}");
                    if let Some(start) = expected {
                        allocated.extend((0..count as u64).map(|i| start + i * FRAME_SIZE));
                        runs.push((start, count));
                    }
                }
                3 | 4 if !runs.is_empty() => {
                    let (start, count) = runs.swap_remove(rng.below(runs.len() as u64) as usize);
                    a.free_contiguous(start, count).unwrap();
                    for i in 0..count as u64 {
                        allocated.remove(&(start + i * FRAME_SIZE));
                    }
                }
                _ => {
                    // A wrong free: a random address must be refused unless it is allocated.
                    let addr = 0x4000_0000 + rng.below(2 * window) / FRAME_SIZE * FRAME_SIZE;
                    if !allocated.contains(&addr) {
                        assert!(a.free(addr).is_err(), "{addr:#x}");
                    }
                }
            }
            assert_eq!(a.free_frames(), (usable.len() - allocated.len()) as u64);
        }
    }
}

/// A frame given back as zeroed is reported zeroed when handed out next, and only then: any
/// other way of handing it out first (a plain allocation, a contiguous run) forgets it.
#[test]
fn a_frame_freed_zeroed_is_known_zero_until_anything_hands_it_out() {
    with(&[region(0x4000_0000, 0x4001_0000)], &[], |allocator| {
        let (a, _) = allocator.alloc_zeroed().unwrap();
        let (b, b_zeroed) = allocator.alloc_zeroed().unwrap();
        assert!(!b_zeroed, "nothing was freed zeroed yet");
        allocator.free_zeroed(a).unwrap();
        assert_eq!(allocator.alloc_zeroed(), Some((a, true)));
        // Freed zeroed, then handed out plainly: no longer known zero.
        allocator.free_zeroed(a).unwrap();
        assert_eq!(allocator.alloc(), Some(a));
        allocator.free(a).unwrap();
        assert_eq!(allocator.alloc_zeroed(), Some((a, false)));
        // Freed zeroed, then inside a contiguous run: forgotten too.
        allocator.free_zeroed(a).unwrap();
        allocator.free(b).unwrap();
        assert_eq!(allocator.alloc_contiguous(2, 1), Some(a));
        allocator.free_contiguous(a, 2).unwrap();
        assert_eq!(allocator.alloc_zeroed(), Some((a, false)));
    });
}
