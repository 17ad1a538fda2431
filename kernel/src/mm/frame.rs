//! The physical frame allocator: which 4 KiB frames of RAM are free.
//!
//! Everything the core maps (page tables, domain memory, grant frames) comes from here, so it must never
//! hand out a frame twice, a frame outside RAM, or a frame that firmware, the core image, the DTB or the
//! boot bundle occupies. It keeps one bit per frame of every RAM bank in a bitmap the caller provides
//! (placed with [`find_free_range`] before the allocator exists), and no heap: region lists have a fixed
//! capacity.
//!
//! # Invariants
//! - Banks are sorted, disjoint and separated by at least one byte that is not RAM (overlapping and
//!   adjacent banks are merged first), and frame-aligned. Bank `i` owns bitmap words
//!   `word_base[i]..word_base[i] + words(i)`; the bits past its last frame are always 0.
//! - A bit is 1 exactly when its frame is RAM, touches no reserved region, and is not allocated, so a
//!   frame touching a reserved region is never handed out.
//! - `free` is the number of 1 bits; `total` is the number at construction and never changes.
//! - Every bitmap word below `hint` is 0.
//! - A call that returns an error or `None` changes nothing.

use core::fmt;

/// The size of a frame, the unit the allocator hands out.
pub const FRAME_SIZE: u64 = 4096;

/// How many regions a [`RegionList`] holds.
pub const MAX_REGIONS: usize = 32;

/// A physical address range `[start, end)`. An end before its start is an empty region.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Region {
    pub start: u64,
    pub end: u64,
}

impl Region {
    /// The region `[start, end)`.
    pub const fn new(start: u64, end: u64) -> Self {
        Self { start, end }
    }

    /// The region of `size` bytes at `base`, or `None` if it would pass the end of the address space.
    pub fn from_base_size(base: u64, size: u64) -> Option<Self> {
        Some(Self { start: base, end: base.checked_add(size)? })
    }

    /// Its size in bytes.
    pub const fn len(&self) -> u64 {
        self.end.saturating_sub(self.start)
    }

    pub const fn is_empty(&self) -> bool {
        self.end <= self.start
    }

    /// Whether `addr` lies inside it.
    pub const fn contains(&self, addr: u64) -> bool {
        self.start <= addr && addr < self.end
    }

    /// Whether the two share at least one byte.
    pub const fn overlaps(&self, other: &Region) -> bool {
        !self.is_empty() && !other.is_empty() && self.start < other.end && other.start < self.end
    }

    /// The largest `align`-aligned region inside it (`align` a power of two); may be empty.
    pub fn align_inward(&self, align: u64) -> Self {
        let mask = align - 1;
        let start = self.start.checked_add(mask).map_or(!mask, |start| start & !mask);
        Self { start, end: self.end & !mask }
    }

    /// The smallest `align`-aligned region around it (`align` a power of two). The end saturates at the
    /// last aligned address: a block ending at 2^64 is not representable, and so never RAM either.
    pub fn align_outward(&self, align: u64) -> Self {
        let mask = align - 1;
        let end = self.end.checked_add(mask).map_or(!mask, |end| end & !mask);
        Self { start: self.start & !mask, end }
    }
}

/// Up to [`MAX_REGIONS`] regions, in the order pushed; it derefs to the slice of them. Slots past
/// `len` stay empty, so the derived equality compares exactly the regions pushed.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub struct RegionList {
    regions: [Region; MAX_REGIONS],
    len: usize,
}

impl RegionList {
    pub const fn new() -> Self {
        Self { regions: [Region::new(0, 0); MAX_REGIONS], len: 0 }
    }

    /// Appends `region`; when the list is full, returns `TooManyRegions` and changes nothing.
    pub fn push(&mut self, region: Region) -> Result<(), FrameError> {
        let slot = self.regions.get_mut(self.len).ok_or(FrameError::TooManyRegions)?;
        *slot = region;
        self.len += 1;
        Ok(())
    }

    #[inline]
    pub fn as_slice(&self) -> &[Region] {
        &self.regions[..self.len]
    }

    fn as_mut_slice(&mut self) -> &mut [Region] {
        &mut self.regions[..self.len]
    }
}

impl core::ops::Deref for RegionList {
    type Target = [Region];

    #[inline]
    fn deref(&self) -> &[Region] {
        self.as_slice()
    }
}

impl fmt::Debug for RegionList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// Why a frame operation was refused. Nothing changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameError {
    /// More RAM banks or reserved regions than a [`RegionList`] holds.
    TooManyRegions,
    /// The bitmap given to [`FrameAllocator::new`] is shorter than the banks need.
    BitmapTooSmall { needed_words: usize },
    /// The address is not in any RAM bank the allocator manages.
    NotRam { addr: u64 },
    /// The frame touches a reserved region, so the allocator never handed it out.
    Reserved { addr: u64 },
    /// The address is not frame-aligned.
    Misaligned { addr: u64 },
    /// The frame is already free.
    DoubleFree { addr: u64 },
    /// No RAM bank holds a whole usable frame.
    NoRam,
}

/// Hands out 4 KiB frames of RAM, lowest address first.
pub struct FrameAllocator<'b> {
    /// One bit per frame of every bank, 1 = free; exactly as long as the banks need.
    bitmap: &'b mut [u64],
    banks: RegionList,
    word_base: [usize; MAX_REGIONS],
    /// Reserved regions, rounded outwards to frames.
    reserved: RegionList,
    total: u64,
    free: u64,
    hint: usize,
    /// A free frame known to be all zero (the last one [`Self::free_zeroed`] took back), until
    /// anything hands it out.
    zeroed: Option<u64>,
}

impl<'b> FrameAllocator<'b> {
    /// How many 64-bit words the bitmap for `ram` needs. For more than [`MAX_REGIONS`] banks (which
    /// [`FrameAllocator::new`] refuses) it returns a bound computed bank by bank.
    pub fn bitmap_words(ram: &[Region]) -> usize {
        match normalise_banks(ram) {
            Ok(banks) => banks.iter().map(bank_words).sum(),
            Err(_) => ram.iter().map(|bank| bank_words(&bank.align_inward(FRAME_SIZE))).sum(),
        }
    }

    /// An allocator over the frames of `ram` that touch no `reserved` region, with `bitmap` (at least
    /// [`FrameAllocator::bitmap_words`] long) as its state. RAM banks are rounded inwards to frames;
    /// every frame touching a reserved region is never handed out.
    pub fn new(
        ram: &[Region],
        reserved: &[Region],
        bitmap: &'b mut [u64],
    ) -> Result<Self, FrameError> {
        let banks = normalise_banks(ram)?;
        if banks.is_empty() {
            return Err(FrameError::NoRam);
        }
        let mut word_base = [0; MAX_REGIONS];
        let mut needed_words = 0;
        for (base, bank) in word_base.iter_mut().zip(banks.iter()) {
            *base = needed_words;
            needed_words += bank_words(bank);
        }
        let mut reserved_frames = RegionList::new();
        for region in reserved.iter().filter(|region| !region.is_empty()) {
            reserved_frames.push(region.align_outward(FRAME_SIZE))?;
        }
        if bitmap.len() < needed_words {
            return Err(FrameError::BitmapTooSmall { needed_words });
        }
        let bitmap = &mut bitmap[..needed_words];
        bitmap.fill(0);
        let mut allocator = Self {
            bitmap,
            banks,
            word_base,
            reserved: reserved_frames,
            total: 0,
            free: 0,
            hint: 0,
            zeroed: None,
        };
        for index in 0..allocator.banks.len() {
            let first = allocator.word_base[index] * 64;
            fill(allocator.bitmap, first, first + frames(&allocator.banks.as_slice()[index]), true);
        }
        for region in reserved_frames.iter() {
            for (index, bank) in allocator.banks.iter().enumerate() {
                if region.overlaps(bank) {
                    let first = allocator.word_base[index] * 64;
                    let from = first + frame_count(region.start.max(bank.start) - bank.start);
                    let to = first + frame_count(region.end.min(bank.end) - bank.start);
                    fill(allocator.bitmap, from, to, false);
                }
            }
        }
        let usable: u64 = allocator.bitmap.iter().map(|word| u64::from(word.count_ones())).sum();
        if usable == 0 {
            return Err(FrameError::NoRam);
        }
        allocator.total = usable;
        allocator.free = usable;
        Ok(allocator)
    }

    /// The lowest free frame, now allocated; `None` when every frame is in use.
    pub fn alloc(&mut self) -> Option<u64> {
        let found = self.bitmap[self.hint..].iter().position(|&word| word != 0);
        let Some(offset) = found else {
            self.hint = self.bitmap.len();
            return None;
        };
        let word = self.hint + offset;
        self.hint = word;
        let bit = word * 64 + self.bitmap[word].trailing_zeros() as usize;
        self.bitmap[word] &= !(1 << (bit % 64));
        self.free -= 1;
        let address = self.address_of(bit);
        if self.zeroed == Some(address) {
            self.zeroed = None;
        }
        Some(address)
    }

    /// The lowest free frame, now allocated, and whether it is known to be all zero (the last
    /// frame given back with [`Self::free_zeroed`], untouched since).
    pub fn alloc_zeroed(&mut self) -> Option<(u64, bool)> {
        let zeroed = self.zeroed;
        let address = self.alloc()?;
        Some((address, zeroed == Some(address)))
    }

    /// Takes back frame `addr`, whose bytes the caller knows are all zero (an emptied page
    /// table): handed out next, [`Self::alloc_zeroed`] says so and it need not be zeroed again.
    pub fn free_zeroed(&mut self, addr: u64) -> Result<(), FrameError> {
        self.free(addr)?;
        self.zeroed = Some(addr);
        Ok(())
    }

    /// The lowest run of `count` free frames whose first frame's address is a multiple of
    /// `align_frames` frames, now allocated. `None` if there is none, or if `count` is 0 or
    /// `align_frames` is not a power of two (pass 1 for no alignment).
    pub fn alloc_contiguous(&mut self, count: usize, align_frames: usize) -> Option<u64> {
        if count == 0 || !align_frames.is_power_of_two() || count as u64 > self.free {
            return None;
        }
        let align = align_frames as u64;
        for (index, bank) in self.banks.iter().enumerate() {
            let first_bit = self.word_base[index] * 64;
            let bank_frames = frames(bank);
            let first_pfn = bank.start / FRAME_SIZE;
            // `local` is the candidate's frame index within the bank.
            let Some(mut local) =
                align_up(first_pfn, align).map(|pfn| frame_count_of(pfn - first_pfn))
            else {
                continue;
            };
            while local.checked_add(count).is_some_and(|end| end <= bank_frames) {
                let from = first_bit + local;
                match find(self.bitmap, from, from + count, false) {
                    None => {
                        fill(self.bitmap, from, from + count, false);
                        self.free -= count as u64;
                        let start = bank.start + local as u64 * FRAME_SIZE;
                        let end = start + count as u64 * FRAME_SIZE;
                        self.zeroed = self.zeroed.filter(|&zeroed| !(start..end).contains(&zeroed));
                        return Some(start);
                    }
                    Some(used) => {
                        // Skip the used frames a word at a time, then realign.
                        let bank_end = first_bit + bank_frames;
                        let Some(next_free) = find(self.bitmap, used + 1, bank_end, true) else {
                            break;
                        };
                        let next_pfn = first_pfn + (next_free - first_bit) as u64;
                        match align_up(next_pfn, align) {
                            Some(pfn) => local = frame_count_of(pfn - first_pfn),
                            None => break,
                        }
                    }
                }
            }
        }
        None
    }

    /// Returns the frame at `addr` to the free pool.
    pub fn free(&mut self, addr: u64) -> Result<(), FrameError> {
        self.free_contiguous(addr, 1)
    }

    /// Returns the `count` frames starting at `addr` to the free pool. Every frame is checked before any
    /// is freed; the error names the first offending address.
    pub fn free_contiguous(&mut self, addr: u64, count: usize) -> Result<(), FrameError> {
        if !addr.is_multiple_of(FRAME_SIZE) {
            return Err(FrameError::Misaligned { addr });
        }
        if count == 0 {
            return Ok(());
        }
        let (index, bank) = self
            .banks
            .iter()
            .enumerate()
            .find(|(_, bank)| bank.contains(addr))
            .ok_or(FrameError::NotRam { addr })?;
        let range = (count as u64)
            .checked_mul(FRAME_SIZE)
            .and_then(|len| Region::from_base_size(addr, len))
            .filter(|range| range.end <= bank.end)
            .ok_or(FrameError::NotRam { addr: bank.end })?;
        let first_reserved = self
            .reserved
            .iter()
            .filter(|region| region.overlaps(&range))
            .map(|region| region.start);
        if let Some(start) = first_reserved.min() {
            return Err(FrameError::Reserved { addr: start.max(addr) });
        }
        let from = self.word_base[index] * 64 + frame_count(addr - bank.start);
        if let Some(free_bit) = find(self.bitmap, from, from + count, true) {
            return Err(FrameError::DoubleFree { addr: self.address_of(free_bit) });
        }
        fill(self.bitmap, from, from + count, true);
        self.free += count as u64;
        self.hint = self.hint.min(from / 64);
        Ok(())
    }

    /// How many frames the allocator manages: RAM minus every frame touching a reserved region.
    pub fn total_frames(&self) -> u64 {
        self.total
    }

    /// How many of them are free now.
    pub fn free_frames(&self) -> u64 {
        self.free
    }

    /// The RAM banks it manages: merged, sorted and rounded inwards to frames.
    pub fn banks(&self) -> &[Region] {
        self.banks.as_slice()
    }

    /// The address of the frame a bitmap bit stands for.
    fn address_of(&self, bit: usize) -> u64 {
        let word = bit / 64;
        let index = self.word_base[..self.banks.len()].partition_point(|&base| base <= word) - 1;
        self.banks.as_slice()[index].start + (bit - self.word_base[index] * 64) as u64 * FRAME_SIZE
    }
}

/// The first `size`-byte range, `align`-aligned (a power of two), inside some RAM bank and overlapping
/// no reserved region; the lowest such address over all banks. Used to place the frame bitmap before
/// the allocator exists. `None` if there is none, `size` is 0 or `align` is not a power of two.
pub fn find_free_range(ram: &[Region], reserved: &[Region], size: u64, align: u64) -> Option<u64> {
    if size == 0 || !align.is_power_of_two() {
        return None;
    }
    let mut lowest: Option<u64> = None;
    for bank in ram {
        let mut candidate = align_up(bank.start, align);
        // Each step moves past the end of a reserved region, so the loop ends.
        while let Some(range) = candidate.and_then(|start| Region::from_base_size(start, size)) {
            if range.end > bank.end {
                break;
            }
            let blocking = reserved.iter().filter(|region| region.overlaps(&range));
            match blocking.map(|region| region.end).max() {
                None => {
                    lowest = Some(lowest.map_or(range.start, |l| l.min(range.start)));
                    break;
                }
                Some(past) => candidate = align_up(past, align),
            }
        }
    }
    lowest
}

/// Sorts the non-empty banks, merges overlapping and adjacent ones, then rounds them inwards to frames.
fn normalise_banks(ram: &[Region]) -> Result<RegionList, FrameError> {
    let mut sorted = RegionList::new();
    for &bank in ram.iter().filter(|bank| !bank.is_empty()) {
        sorted.push(bank)?;
    }
    sorted.as_mut_slice().sort_unstable_by_key(|bank| bank.start);
    let mut merged = RegionList::new();
    let mut current: Option<Region> = None;
    for &bank in sorted.iter() {
        current = match current {
            Some(open) if bank.start <= open.end => {
                Some(Region::new(open.start, open.end.max(bank.end)))
            }
            Some(open) => {
                push_frames(&mut merged, open)?;
                Some(bank)
            }
            None => Some(bank),
        };
    }
    if let Some(open) = current {
        push_frames(&mut merged, open)?;
    }
    Ok(merged)
}

fn push_frames(list: &mut RegionList, bank: Region) -> Result<(), FrameError> {
    let frames = bank.align_inward(FRAME_SIZE);
    if frames.is_empty() {
        return Ok(());
    }
    list.push(frames)
}

/// The number of whole frames in a frame-aligned region.
fn frames(bank: &Region) -> usize {
    frame_count(bank.len())
}

fn bank_words(bank: &Region) -> usize {
    frames(bank).div_ceil(64)
}

fn frame_count(bytes: u64) -> usize {
    frame_count_of(bytes / FRAME_SIZE)
}

/// A frame number or count as an index. The allocator runs on 64-bit machines only.
fn frame_count_of(frames: u64) -> usize {
    frames as usize
}

fn align_up(value: u64, align: u64) -> Option<u64> {
    value.checked_add(align - 1).map(|v| v & !(align - 1))
}

/// The mask of the bits of word `bit / 64` that lie in `bit..to`, and the index just past them.
fn word_span(bit: usize, to: usize) -> (u64, usize) {
    let shift = bit % 64;
    let span = (64 - shift).min(to - bit);
    let mask = if span == 64 { u64::MAX } else { ((1u64 << span) - 1) << shift };
    (mask, bit + span)
}

/// The first bit in `from..to` whose value is `value`.
fn find(bitmap: &[u64], from: usize, to: usize, value: bool) -> Option<usize> {
    let mut bit = from;
    while bit < to {
        let (mask, next) = word_span(bit, to);
        let word = if value { bitmap[bit / 64] } else { !bitmap[bit / 64] };
        let hits = word & mask;
        if hits != 0 {
            return Some(bit / 64 * 64 + hits.trailing_zeros() as usize);
        }
        bit = next;
    }
    None
}

/// Sets every bit in `from..to` to `value`.
fn fill(bitmap: &mut [u64], from: usize, to: usize, value: bool) {
    let mut bit = from;
    while bit < to {
        let (mask, next) = word_span(bit, to);
        if value {
            bitmap[bit / 64] |= mask;
        } else {
            bitmap[bit / 64] &= !mask;
        }
        bit = next;
    }
}

/// The layout of the core's own image, from the linker script.
#[derive(Clone, Copy, Debug)]
pub struct ImageLayout {
    /// Code: mapped read + execute.
    pub text: Region,
    /// Constants: read-only.
    pub rodata: Region,
    /// Data, .bss and the boot stack: read + write.
    pub data: Region,
}

impl ImageLayout {
    /// The whole image.
    pub fn whole(&self) -> Region {
        Region { start: self.text.start, end: self.data.end }
    }
}

#[cfg(test)]
mod tests;
