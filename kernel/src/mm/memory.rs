//! Physical memory for the core: the global frame allocator and the table memory that the EL2
//! page tables are built in.
//!
//! # Invariants
//! - The allocator's bitmap lies in RAM that is reserved from the allocator itself, and lives for
//!   the life of the system.
//! - Physical memory is identity-mapped (before the MMU is on, trivially), so a frame's physical
//!   address is also a pointer to it.
//! - Every frame is zeroed when it is handed out (as a page table, a core page, a domain's RAM or
//!   preserved region), never when it is given back: frees stay cheap under the domain table's
//!   lock, and RAM that was never used is zeroed as well.

use crate::arch::lock::Mutex;
use xenolith_kernel::mm::frame::{
    find_free_range, FrameAllocator, FrameError, Region, RegionList, FRAME_SIZE,
};
use xenolith_kernel::mm::lpae::{TableMemory, ENTRIES};

/// The one frame allocator.
pub static FRAMES: Mutex<Option<FrameAllocator<'static>>> = Mutex::new(None);
/// The allocator's RAM banks, fixed at [`init`]: read without its lock on every guest access.
static RAM_BANKS: spin::Once<RegionList> = spin::Once::new();

/// Places the allocator's bitmap in free RAM and starts the allocator over `ram` minus `reserved`.
/// Returns where the bitmap went.
pub fn init(ram: &[Region], mut reserved: RegionList) -> Result<Region, FrameError> {
    let words = FrameAllocator::bitmap_words(ram);
    let bytes = (words as u64 * 8).div_ceil(FRAME_SIZE) * FRAME_SIZE;
    let start = find_free_range(ram, &reserved, bytes, FRAME_SIZE).ok_or(FrameError::NoRam)?;
    let bitmap_region = Region { start, end: start + bytes };
    // SAFETY: `find_free_range` returned `bytes` of RAM, frame-aligned, that overlaps nothing
    // reserved (image, DTB, boot modules); it is identity-mapped (module invariant) and from here
    // on reserved for the bitmap alone, so this is the only reference to it.
    let bitmap = unsafe { core::slice::from_raw_parts_mut(start as *mut u64, words) };
    reserved.push(bitmap_region)?;
    let allocator = FrameAllocator::new(ram, &reserved, bitmap)?;
    let mut banks = RegionList::default();
    for &bank in allocator.banks() {
        banks.push(bank)?;
    }
    RAM_BANKS.call_once(|| banks);
    *FRAMES.lock() = Some(allocator);
    Ok(bitmap_region)
}

/// A zeroed frame, or `None` when memory is exhausted.
pub fn alloc_zeroed_frame() -> Option<u64> {
    let (frame, zeroed) = FRAMES.lock().as_mut()?.alloc_zeroed()?;
    if !zeroed {
        // SAFETY: the allocator just handed this frame out, so nothing else refers to it; it is
        // RAM, identity-mapped (module invariant), and FRAME_SIZE bytes long.
        unsafe { core::ptr::write_bytes(frame as *mut u8, 0, FRAME_SIZE as usize) };
    }
    Some(frame)
}

/// `frames` contiguous frames aligned to `align` frames, scrubbed (for a domain's RAM or
/// preserved region), or `None` when memory is short. The allocator's lock is held only to
/// allocate: callers scrub large ranges this way with no other lock held where they can.
pub fn alloc_scrubbed(frames: usize, align: usize) -> Option<u64> {
    let phys = FRAMES.lock().as_mut()?.alloc_contiguous(frames, align)?;
    scrub(phys, frames as u64 * FRAME_SIZE);
    Some(phys)
}

/// Returns a frame to the allocator. A frame the allocator did not hand out is a bug in the core.
pub fn free_frame(frame: u64) {
    if let Some(Err(error)) = FRAMES.lock().as_mut().map(|frames| frames.free(frame)) {
        panic!("freeing frame {frame:#x}: {error:?}");
    }
}

/// The highest frame number of RAM.
pub fn max_frame_number() -> u64 {
    FRAMES.lock().as_ref().map_or(0, |frames| {
        frames.banks().iter().map(|bank| bank.end / FRAME_SIZE).max().unwrap_or(1) - 1
    })
}

/// Whether `phys` lies in a RAM bank.
pub fn is_ram(phys: u64) -> bool {
    RAM_BANKS.get().is_some_and(|banks| banks.iter().any(|bank| bank.contains(phys)))
}

/// (total, free) usable frames.
pub fn frame_counts() -> (u64, u64) {
    FRAMES.lock().as_ref().map_or((0, 0), |frames| (frames.total_frames(), frames.free_frames()))
}

/// Page-table memory over identity-mapped frames from [`FRAMES`].
pub struct IdentityTables;

impl TableMemory for IdentityTables {
    fn alloc_table(&mut self) -> Option<u64> {
        alloc_zeroed_frame()
    }

    fn read(&self, table: u64, index: usize) -> u64 {
        assert!(index < ENTRIES);
        // SAFETY: `table` is a frame from `alloc_table` (the lpae walker only follows addresses it
        // wrote), identity-mapped and ENTRIES * 8 bytes long; `index` is in bounds.
        unsafe { core::ptr::read_volatile((table as *const u64).wrapping_add(index)) }
    }

    fn write(&mut self, table: u64, index: usize, value: u64) {
        assert!(index < ENTRIES);
        // SAFETY: as for `read`; volatile so the table walker sees every store in order.
        unsafe { core::ptr::write_volatile((table as *mut u64).wrapping_add(index), value) }
    }

    fn free_table(&mut self, table: u64) {
        free_frame(table);
    }

    fn free_zeroed_table(&mut self, table: u64) {
        if let Some(Err(error)) = FRAMES.lock().as_mut().map(|frames| frames.free_zeroed(table)) {
            panic!("freeing table {table:#x}: {error:?}");
        }
    }

    fn invalidate(&mut self) {
        crate::arch::guest::flush_guest_tlbs();
    }
}

/// Zeroes `[phys, phys + len)`: frames are scrubbed before a domain gets them.
pub fn scrub(phys: u64, len: u64) {
    assert_owned_ram(phys, len);
    // SAFETY: the range is RAM held by the caller (a domain's block, checked to lie inside one
    // allocator bank), identity-mapped as normal memory (scrubs happen once the MMU is on) and
    // not aliased by any Rust reference.
    unsafe { crate::arch::cpu::zero(phys, len) };
}

/// Gives `frames` frames at `phys` back to the allocator, unscrubbed (they are scrubbed when
/// handed out again). Refusal (the frames were not allocated) is a core bug: it stops the system.
pub fn release(phys: u64, frames: usize) {
    let freed = FRAMES.lock().as_mut().map(|allocator| allocator.free_contiguous(phys, frames));
    if let Some(Err(error)) = freed {
        panic!("releasing {frames} frames at {phys:#x}: {error:?}");
    }
}

/// The atomic object at physical address `address`, shared with a guest.
///
/// # Safety
/// `address` is identity-mapped RAM the core keeps allocated while the reference is used (the
/// caller's module invariants say which), aligned for `T`, with all of `T` inside one page.
/// Only atomics may be used on it: the guest's concurrent accesses are to shared memory, as with
/// any atomic shared with another agent.
pub unsafe fn shared<T>(address: u64) -> &'static T {
    // SAFETY: the caller's contract above.
    unsafe { &*(address as *const T) }
}

/// Copies `len` bytes between two physical ranges of domain RAM (they may overlap: a copy
/// within one page).
pub fn copy_phys(from: u64, to: u64, len: usize) {
    [from, to].iter().for_each(|&at| assert_owned_ram(at, len as u64));
    // Apart and 16-byte aligned: whole 128-byte blocks by `copy_blocks`, the rest by `copy`.
    let apart = from.abs_diff(to) >= len as u64 && (from | to).is_multiple_of(16);
    let blocks = if apart { len & !127 } else { 0 };
    let rest = (from + blocks as u64, to + blocks as u64, len - blocks);
    if blocks != 0 {
        // SAFETY: as below; the blocks are a prefix of both ranges, apart, 16-byte aligned and
        // whole, as `copy_blocks` needs.
        unsafe { crate::arch::cpu::copy_blocks(from, to, blocks as u64) };
    }
    // SAFETY: both ranges are RAM (checked), identity-mapped, held by domains whose frames the
    // caller has pinned; no Rust reference aliases them, and `copy` allows overlap.
    unsafe { core::ptr::copy(rest.0 as *const u8, rest.1 as *mut u8, rest.2) };
}

/// Copies `bytes` to physical address `phys`.
pub fn copy_to_phys(phys: u64, bytes: &[u8]) {
    assert_owned_ram(phys, bytes.len() as u64);
    // SAFETY: as for `scrub`; `bytes` is core memory, which never overlaps a domain's frames.
    unsafe { core::ptr::copy_nonoverlapping(bytes.as_ptr(), phys as *mut u8, bytes.len()) };
}

/// Copies `size` bytes from `from` to `to` in the widest of 8- or 4-byte words that both
/// addresses and `size` are aligned to (the core is built for strict alignment: the compiler would
/// make any other fixed-size copy a byte-wise `memcpy`), else byte by byte.
///
/// # Safety
/// Both ranges are valid for the access and do not overlap.
#[inline(always)]
unsafe fn copy_fixed(from: *const u8, to: *mut u8, size: usize) {
    /// # Safety
    /// As for `copy_fixed`, with `from`, `to` and `size` aligned to `W`.
    #[inline(always)]
    unsafe fn words<W: Copy>(from: *const u8, to: *mut u8, size: usize) {
        for word in 0..size / core::mem::size_of::<W>() {
            let (source, target) =
                (from.cast::<W>().wrapping_add(word), to.cast::<W>().wrapping_add(word));
            // SAFETY: the caller's contract; both words are aligned and inside the ranges.
            let value = unsafe { core::ptr::read_volatile(source) };
            // SAFETY: as above.
            unsafe { core::ptr::write_volatile(target, value) };
        }
    }
    let alignment = from as usize | to as usize | size;
    if alignment.is_multiple_of(8) {
        // SAFETY: the caller's contract, all three 8-byte aligned.
        unsafe { words::<u64>(from, to, size) }
    } else if alignment.is_multiple_of(4) {
        // SAFETY: the caller's contract, all three 4-byte aligned.
        unsafe { words::<u32>(from, to, size) }
    } else {
        // SAFETY: the caller's contract.
        unsafe { core::ptr::copy_nonoverlapping(from, to, size) }
    }
}

/// The `T` at physical address `phys` (any bytes are a `T`), read with one fixed-size copy.
pub fn read_phys<T: zerocopy::FromBytes + zerocopy::IntoBytes>(phys: u64) -> T {
    let mut value = T::new_zeroed();
    let bytes = value.as_mut_bytes();
    assert_owned_ram(phys, bytes.len() as u64);
    // SAFETY: as for `copy_from_phys`; `value` is core memory, which never overlaps a domain's
    // frames, and `T: FromBytes` makes any bytes a valid `T`.
    unsafe { copy_fixed(phys as *const u8, bytes.as_mut_ptr(), bytes.len()) };
    value
}

/// Writes `value` at physical address `phys` with one fixed-size copy.
pub fn write_phys<T: zerocopy::IntoBytes + zerocopy::Immutable>(phys: u64, value: &T) {
    let bytes = value.as_bytes();
    assert_owned_ram(phys, bytes.len() as u64);
    // SAFETY: as for `copy_to_phys`; `T: IntoBytes` has no padding, so every byte is initialised.
    unsafe { copy_fixed(bytes.as_ptr(), phys as *mut u8, bytes.len()) };
}

/// Copies from physical address `phys` into `out`.
pub fn copy_from_phys(phys: u64, out: &mut [u8]) {
    assert_owned_ram(phys, out.len() as u64);
    // SAFETY: as for `copy_to_phys`, reading.
    unsafe { core::ptr::copy_nonoverlapping(phys as *const u8, out.as_mut_ptr(), out.len()) };
}

/// Stops the system if `[phys, phys + len)` is not inside one RAM bank: a core bug, never a
/// guest's doing (guest addresses are translated and checked before they get here).
fn assert_owned_ram(phys: u64, len: u64) {
    let inside = RAM_BANKS.get().is_some_and(|banks| {
        banks.iter().any(|bank| bank.start <= phys && phys.saturating_add(len) <= bank.end)
    });
    if !inside {
        panic!("physical access {phys:#x}+{len:#x} outside RAM");
    }
}
