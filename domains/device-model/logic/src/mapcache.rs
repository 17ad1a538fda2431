//! Which part of the target's RAM is mapped where in the device model's own address space:
//! QEMU's "mapcache" for a Xen device model, reduced to fixed slots.
//!
//! The model reaches the target's RAM by foreign mapping (`XENMEM_add_to_physmap_batch`,
//! `XENMAPSPACE_gmfn_foreign`) into a window of its own address space. The core bounds the
//! foreign pages one domain holds at once (512, `MAX_FOREIGN` in `kernel/src/mm/domain_memory.rs`),
//! so the RAM is mapped lazily in chunks of `chunk` bytes (aligned from the RAM's base; the
//! last one may be shorter), each in one of `slots` fixed slots of the window, kept until the
//! slot is needed for another chunk (the least recently used one goes) or the target's memory
//! map changes (`IOREQ_TYPE_INVALIDATE`: [`MapCache::clear`]). A restarted model starts empty:
//! its mappings died with the old incarnation.
//!
//! The domain asks [`MapCache::step`] where the next piece of an access lies; the answer says
//! what to map first (and what to unmap from the slot), and the domain copies the piece.
//!
//! # Invariants
//! - A chunk is in at most one slot; a slot holds at most one chunk.
//! - [`MapCache::step`] answers only for addresses inside the RAM, and a piece never runs past
//!   its chunk (so never past the RAM, nor its slot).

use alloc::vec::Vec;

use crate::memory::OutsideRam;

/// A page (the mapping granule).
pub const PAGE: u64 = 4096;

/// A mapping to make before a piece can be copied: `pages` frames of the target from
/// `first_gfn` on, at `local` on in the model's space, after unmapping the `unmap` pages the
/// slot held there (0: the slot was empty).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Remap {
    /// The slot's first address in the model's space.
    pub local: u64,
    /// Pages mapped there before, to unmap first.
    pub unmap: u64,
    /// The target's first frame to map.
    pub first_gfn: u64,
    /// Frames to map.
    pub pages: u64,
    /// The slot (to [`MapCache::forget`] if the mapping fails).
    pub slot: usize,
}

/// Where the next piece of an access lies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Step {
    /// Its address in the model's space.
    pub local: u64,
    /// Its length: the rest of the access, or up to its chunk's end.
    pub length: u64,
    /// A mapping to make first, if its chunk was not mapped.
    pub remap: Option<Remap>,
}

/// A mapping the [`Mapper`] could not make (it logs why).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MapFailed;

/// Makes the mappings a [`MapCache`] asks for (the domain: foreign-mapping hypercalls).
pub trait Mapper {
    /// Unmaps the `remap.unmap` pages at `remap.local`, then maps `remap.pages` frames of the
    /// target from `remap.first_gfn` there. On failure nothing of the slot may stay mapped.
    fn map(&mut self, remap: &Remap) -> Result<(), MapFailed>;
}

/// The slots and what they hold.
#[derive(Clone, Debug)]
pub struct MapCache {
    ram: (u64, u64),
    window: u64,
    chunk: u64,
    /// Per slot: its chunk index and when it was last used.
    slots: Vec<Option<(u64, u64)>>,
    clock: u64,
}

impl MapCache {
    /// A cache for RAM `ram` (base, size; page-aligned) in `slots` slots of `chunk` bytes (a
    /// multiple of [`PAGE`]) from `window` on. Panics on a shape no caller should pass (a
    /// chunk not of pages, no slots): these are the domain's constants.
    pub fn new(ram: (u64, u64), window: u64, chunk: u64, slots: usize) -> Self {
        assert!(chunk > 0 && chunk.is_multiple_of(PAGE) && slots > 0);
        Self { ram, window, chunk, slots: alloc::vec![None; slots], clock: 0 }
    }

    /// Whether all `length` bytes from `address` are RAM (false if the range wraps).
    pub fn contains(&self, address: u64, length: u64) -> bool {
        let (base, size) = self.ram;
        address >= base && address.checked_add(length).is_some_and(|end| end <= base + size)
    }

    /// The next piece of an access at `address` with `remaining` bytes to go (at least 1), or
    /// `None` if `address` is not RAM.
    pub fn step(&mut self, address: u64, remaining: u64) -> Option<Step> {
        if !self.contains(address, 1) {
            return None;
        }
        let (base, size) = self.ram;
        let offset = address - base;
        let chunk = offset / self.chunk;
        let within = offset % self.chunk;
        let chunk_bytes = self.chunk.min(size - chunk * self.chunk);
        let length = remaining.min(chunk_bytes - within);
        self.clock += 1;
        let now = self.clock;
        if let Some(slot) = self.slots.iter().position(|s| s.is_some_and(|(c, _)| c == chunk)) {
            self.slots[slot] = Some((chunk, now));
            return Some(Step { local: self.local(slot) + within, length, remap: None });
        }
        // An empty slot, else the least recently used.
        let slot = self.slots.iter().position(Option::is_none).unwrap_or_else(|| {
            let oldest = self.slots.iter().enumerate().min_by_key(|(_, s)| s.map_or(0, |s| s.1));
            oldest.map_or(0, |(index, _)| index)
        });
        let unmap = self.slots[slot].map_or(0, |(old, _)| self.pages_of(old));
        self.slots[slot] = Some((chunk, now));
        let remap = Remap {
            local: self.local(slot),
            unmap,
            first_gfn: (base + chunk * self.chunk) / PAGE,
            pages: chunk_bytes.div_ceil(PAGE),
            slot,
        };
        Some(Step { local: self.local(slot) + within, length, remap: Some(remap) })
    }

    /// Calls `each(local address, offset in the access, length)` for every piece of the
    /// `length` bytes at `address`, each inside one page of the window, mapping chunks with
    /// `mapper` as needed. Every chunk is mapped before the first piece is passed on, so a
    /// failed mapping (or an access not wholly in RAM) passes on nothing, unless the access
    /// spans more chunks than there are slots.
    pub fn pieces(
        &mut self,
        mapper: &mut impl Mapper,
        address: u64,
        length: u64,
        mut each: impl FnMut(u64, usize, usize),
    ) -> Result<(), OutsideRam> {
        let outside = OutsideRam { address, length };
        if !self.contains(address, length) {
            return Err(outside);
        }
        for pass in 0..2 {
            let (mut at, mut left) = (address, length);
            while left > 0 {
                let step = self.step(at, left).ok_or(outside)?;
                if let Some(remap) = step.remap {
                    if mapper.map(&remap).is_err() {
                        self.forget(remap.slot);
                        return Err(outside);
                    }
                }
                if pass == 1 {
                    let mut done = 0;
                    while done < step.length {
                        let local = step.local + done;
                        let in_page = (PAGE - local % PAGE).min(step.length - done);
                        each(local, (at - address + done) as usize, in_page as usize);
                        done += in_page;
                    }
                }
                at += step.length;
                left -= step.length;
            }
        }
        Ok(())
    }

    /// Frees `slot` without unmapping (its mapping failed, or the domain unmapped it).
    pub fn forget(&mut self, slot: usize) {
        if let Some(entry) = self.slots.get_mut(slot) {
            *entry = None;
        }
    }

    /// Empties every slot; returns each mapped slot's (address, pages) for the domain to unmap.
    pub fn clear(&mut self) -> Vec<(u64, u64)> {
        let mut mapped = Vec::new();
        for slot in 0..self.slots.len() {
            if let Some((chunk, _)) = self.slots[slot].take() {
                mapped.push((self.local(slot), self.pages_of(chunk)));
            }
        }
        mapped
    }

    /// Pages the window spans (every slot).
    pub fn window_pages(&self) -> u64 {
        self.slots.len() as u64 * self.chunk / PAGE
    }

    fn local(&self, slot: usize) -> u64 {
        self.window + slot as u64 * self.chunk
    }

    fn pages_of(&self, chunk: u64) -> u64 {
        self.chunk.min(self.ram.1 - chunk * self.chunk).div_ceil(PAGE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RAM: (u64, u64) = (0x4000_0000, 0x3_0000 + 0x2000);
    const WINDOW: u64 = 0xe010_0000;
    const CHUNK: u64 = 0x1_0000;

    #[test]
    fn pieces_stop_at_chunk_ends_and_map_once() {
        let mut cache = MapCache::new(RAM, WINDOW, CHUNK, 2);
        let first = cache.step(0x4000_fff0, 0x40).unwrap();
        let remap = Remap { local: WINDOW, unmap: 0, first_gfn: 0x4_0000, pages: 16, slot: 0 };
        assert_eq!(first, Step { local: WINDOW + 0xfff0, length: 0x10, remap: Some(remap) });
        let second = cache.step(0x4001_0000, 0x30).unwrap();
        assert_eq!(second.local, WINDOW + CHUNK);
        assert_eq!(second.remap.map(|r| (r.first_gfn, r.slot, r.unmap)), Some((0x4_0010, 1, 0)));
        // Both mapped now: no remap.
        assert_eq!(cache.step(0x4000_0008, 8).unwrap().remap, None);
        assert_eq!(
            cache.step(0x4001_0008, 8).unwrap(),
            Step { local: WINDOW + CHUNK + 8, length: 8, remap: None }
        );
    }

    #[test]
    fn the_least_recently_used_slot_goes_and_the_short_last_chunk_maps_its_pages() {
        let mut cache = MapCache::new(RAM, WINDOW, CHUNK, 2);
        cache.step(0x4000_0000, 1);
        cache.step(0x4001_0000, 1);
        cache.step(0x4000_0000, 1);
        // Chunk 3 (two pages, the RAM's end) evicts chunk 1, the older.
        let step = cache.step(0x4003_1ff8, 0x100).unwrap();
        let remap =
            Remap { local: WINDOW + CHUNK, unmap: 16, first_gfn: 0x4_0030, pages: 2, slot: 1 };
        assert_eq!(step, Step { local: WINDOW + CHUNK + 0x1ff8, length: 8, remap: Some(remap) });
        // Then chunk 1 again evicts chunk 0 (16 pages).
        let step = cache.step(0x4001_0000, 1).unwrap();
        assert_eq!(step.remap.map(|r| (r.slot, r.unmap)), Some((0, 16)));
        // Chunk 3 is still where it was; chunk 1 evicts nothing now.
        assert_eq!(cache.step(0x4003_0000, 1).unwrap().remap, None);
        assert_eq!(cache.clear(), [(WINDOW, 16), (WINDOW + CHUNK, 2)]);
        assert!(cache.step(0x4003_0000, 1).unwrap().remap.is_some());
    }

    #[test]
    fn outside_ram_is_refused_and_forget_empties_a_slot() {
        let mut cache = MapCache::new(RAM, WINDOW, CHUNK, 1);
        assert_eq!(cache.step(0x3fff_ffff, 2), None);
        assert_eq!(cache.step(0x4003_2000, 1), None);
        assert!(!cache.contains(0x4003_1fff, 2));
        assert!(!cache.contains(u64::MAX, 2));
        assert!(cache.contains(0x4000_0000, 0x3_2000));
        let step = cache.step(0x4000_0000, 1).unwrap();
        cache.forget(step.remap.unwrap().slot);
        assert_eq!(cache.step(0x4000_0000, 1).unwrap().remap.map(|r| r.unmap), Some(0));
        assert_eq!(cache.window_pages(), 16);
    }

    /// A window of slots over a RAM `Vec`, as foreign mappings make one: each mapped window
    /// page stands for a target frame. `fail_at` makes the mapping of that gfn fail.
    struct FakeWindow {
        ram: Vec<u8>,
        pages: alloc::collections::BTreeMap<u64, u64>,
        fail_at: Option<u64>,
        maps: usize,
    }

    impl Mapper for FakeWindow {
        fn map(&mut self, remap: &Remap) -> Result<(), MapFailed> {
            for page in 0..remap.unmap {
                assert!(self.pages.remove(&(remap.local / PAGE + page)).is_some(), "not mapped");
            }
            let gfns = remap.first_gfn..remap.first_gfn + remap.pages;
            if self.fail_at.is_some_and(|gfn| gfns.contains(&gfn)) {
                return Err(MapFailed);
            }
            for (index, gfn) in gfns.enumerate() {
                let local = remap.local / PAGE + index as u64;
                assert!(self.pages.insert(local, gfn).is_none(), "mapped twice");
            }
            self.maps += 1;
            Ok(())
        }
    }

    impl FakeWindow {
        /// The RAM offset a window address reaches.
        fn reach(&self, local: u64) -> usize {
            let gfn = self.pages[&(local / PAGE)];
            (gfn * PAGE + local % PAGE - RAM.0) as usize
        }
    }

    /// Reads and writes through the window equal the same accesses on the RAM directly;
    /// chunks are mapped once while they stay in their slots.
    #[test]
    fn accesses_through_the_window_reach_the_right_bytes() {
        let mut rng = crate::test_rng::Xorshift(0x5151_7777_0000_1111);
        let ram: Vec<u8> = (0..RAM.1).map(|_| rng.next() as u8).collect();
        let mut window =
            FakeWindow { ram: ram.clone(), pages: Default::default(), fail_at: None, maps: 0 };
        let mut expected = ram;
        let mut cache = MapCache::new(RAM, WINDOW, CHUNK, 2);
        for _ in 0..5000 {
            let address = RAM.0 + rng.next() % RAM.1;
            let length = (1 + rng.next() % 0x3000).min(RAM.0 + RAM.1 - address);
            let at = (address - RAM.0) as usize;
            let span = at..at + length as usize;
            if rng.next().is_multiple_of(2) {
                let data: Vec<u8> = (0..length).map(|_| rng.next() as u8).collect();
                expected[span].copy_from_slice(&data);
                let mut writes = Vec::new();
                cache
                    .pieces(&mut window, address, length, |local, offset, len| {
                        writes.push((local, offset, len));
                    })
                    .unwrap();
                for (local, offset, len) in writes {
                    assert!(local % PAGE + len as u64 <= PAGE, "a piece crosses a page");
                    let reach = window.reach(local);
                    window.ram[reach..reach + len].copy_from_slice(&data[offset..offset + len]);
                }
            } else {
                let mut buffer = alloc::vec![0u8; length as usize];
                let mut reads = Vec::new();
                cache
                    .pieces(&mut window, address, length, |l, o, n| reads.push((l, o, n)))
                    .unwrap();
                for (local, offset, len) in reads {
                    let reach = window.reach(local);
                    buffer[offset..offset + len].copy_from_slice(&window.ram[reach..reach + len]);
                }
                assert_eq!(buffer, expected[span]);
            }
        }
        assert_eq!(window.ram, expected);
        assert!(window.maps < 5000, "{} mappings for 5000 accesses", window.maps);
        // Outside RAM: nothing passed on.
        let mut called = false;
        let result = cache.pieces(&mut window, RAM.0 + RAM.1 - 4, 8, |_, _, _| called = true);
        assert_eq!(result, Err(OutsideRam { address: RAM.0 + RAM.1 - 4, length: 8 }));
        assert!(!called);
    }

    /// A mapping that fails passes nothing on, even for the access's first chunk, and leaves
    /// its slot empty for the next try.
    #[test]
    fn a_failed_mapping_passes_nothing_on() {
        let mut window = FakeWindow {
            ram: alloc::vec![0; RAM.1 as usize],
            pages: Default::default(),
            fail_at: Some(0x4_0010),
            maps: 0,
        };
        let mut cache = MapCache::new(RAM, WINDOW, CHUNK, 4);
        let mut called = false;
        let result = cache.pieces(&mut window, 0x4000_fff0, 0x20, |_, _, _| called = true);
        assert_eq!(result, Err(OutsideRam { address: 0x4000_fff0, length: 0x20 }));
        assert!(!called, "a piece was passed on before the second chunk mapped");
        window.fail_at = None;
        let mut pieces = Vec::new();
        cache.pieces(&mut window, 0x4000_fff0, 0x20, |l, o, n| pieces.push((l, o, n))).unwrap();
        assert_eq!(pieces.len(), 2);
        assert_eq!((pieces[0].1, pieces[0].2, pieces[1].1, pieces[1].2), (0, 0x10, 0x10, 0x10));
    }

    /// Random accesses: each piece lies in its chunk's slot at the right offset, the pieces
    /// cover the access, and no chunk is ever in two slots.
    #[test]
    fn random_accesses_are_covered_exactly() {
        let mut rng = crate::test_rng::Xorshift(0xdead_beef_0123_4567);
        let mut cache = MapCache::new(RAM, WINDOW, CHUNK, 3);
        let mut held: Vec<Option<u64>> = alloc::vec![None; 3];
        for _ in 0..20_000 {
            let address = RAM.0 + rng.next() % RAM.1;
            let length = 1 + rng.next() % 0x2_0000;
            let length = length.min(RAM.0 + RAM.1 - address);
            let (mut at, mut left) = (address, length);
            while left > 0 {
                let step = cache.step(at, left).unwrap();
                assert!(step.length > 0 && step.length <= left);
                let chunk = (at - RAM.0) / CHUNK;
                if let Some(remap) = step.remap {
                    assert_eq!(remap.first_gfn, (RAM.0 + chunk * CHUNK) / PAGE);
                    held[remap.slot] = Some(chunk);
                }
                let slot = held.iter().position(|c| *c == Some(chunk)).unwrap();
                assert_eq!(step.local, WINDOW + slot as u64 * CHUNK + (at - RAM.0) % CHUNK);
                assert_eq!(held.iter().filter(|c| **c == Some(chunk)).count(), 1);
                at += step.length;
                left -= step.length;
            }
        }
    }
}
