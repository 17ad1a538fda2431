//! The domains' heap: free lists of a few block sizes in front of a first-fit heap.
//!
//! `linked_list_allocator`'s first fit walks its list of holes on every allocation and every
//! free; in a domain that allocates and frees small buffers on each round of its work (netback
//! builds its copy batches, responses and records anew each round) that walk was a sixth of
//! its instructions. Here a request of at most [`LARGEST_CLASS`] bytes and an alignment of at
//! most [`CLASS_ALIGN`] takes a block of its size class: 16-byte steps up to 256 bytes, then
//! 512, 1024, 2048 and 4096. A freed block goes onto its class's free list, where the next
//! request of that class finds it; the first fit is asked only when the list is empty. Larger
//! or more strictly aligned requests go to the first fit directly.
//!
//! # Invariants
//! - A block on a class's free list was allocated from the first fit with that class's size and
//!   [`CLASS_ALIGN`], is owned by the list alone, and holds the address of the next block (0
//!   ends the list) in its first word.
//! - A pointer is freed with the layout it was allocated with (`GlobalAlloc`'s contract), so
//!   [`class_of`] gives the same class at both ends.
//! - A list keeps at most [`CACHED_BYTES`] bytes of free blocks; past that a freed block goes
//!   back to the first fit, so at most `CLASSES * CACHED_BYTES` of the heap is held in lists
//!   that a request of another size could have used.

use core::alloc::{GlobalAlloc, Layout};
use core::ptr::{self, NonNull};

use spinning_top::Spinlock;

/// The largest size served from a free list.
pub const LARGEST_CLASS: usize = 4096;
/// Every class block's alignment (and the largest alignment a class serves).
pub const CLASS_ALIGN: usize = 16;
/// The most bytes of free blocks one class keeps.
pub const CACHED_BYTES: usize = 64 * 1024;
/// 16 classes of 16-byte steps up to 256, then 512, 1024, 2048, 4096.
const CLASSES: usize = 20;

/// The class of a request, if one serves it.
fn class_of(layout: Layout) -> Option<usize> {
    let size = layout.size().max(1);
    if layout.align() > CLASS_ALIGN || size > LARGEST_CLASS {
        return None;
    }
    Some(if size <= 256 {
        size.div_ceil(16) - 1
    } else {
        // 257..=512 is class 16, up to 4096 class 19.
        16 + (size.next_power_of_two().trailing_zeros() as usize - 9)
    })
}

/// The block size of `class`.
fn class_size(class: usize) -> usize {
    if class < 16 {
        (class + 1) * 16
    } else {
        512 << (class - 16)
    }
}

/// The heap: a first fit behind a free list per class, under one lock.
pub struct Heap {
    inner: Spinlock<Inner>,
}

struct Inner {
    first_fit: linked_list_allocator::Heap,
    /// Each class's first free block's address, 0 for none.
    heads: [usize; CLASSES],
    /// The bytes each class's list holds.
    cached: [usize; CLASSES],
}

impl Heap {
    /// A heap with no memory yet: every allocation fails until [`Heap::init`].
    pub const fn empty() -> Self {
        Self {
            inner: Spinlock::new(Inner {
                first_fit: linked_list_allocator::Heap::empty(),
                heads: [0; CLASSES],
                cached: [0; CLASSES],
            }),
        }
    }

    /// Gives the heap `size` bytes at `start`.
    ///
    /// # Safety
    /// `[start, start + size)` is writable memory used by nothing else for as long as the heap
    /// lives, and `init` is called once.
    pub unsafe fn init(&self, start: *mut u8, size: usize) {
        // SAFETY: the caller's contract is the first fit's.
        unsafe { self.inner.lock().first_fit.init(start, size) };
    }

    /// Bytes the first fit has free (free-list blocks count as used).
    pub fn first_fit_free(&self) -> usize {
        self.inner.lock().first_fit.free()
    }
}

impl Inner {
    fn allocate(&mut self, layout: Layout) -> *mut u8 {
        let Some(class) = class_of(layout) else { return self.first_fit_allocate(layout) };
        let head = self.heads[class];
        if head == 0 {
            return self.first_fit_allocate(class_layout(class));
        }
        // SAFETY: `head` is a block on this class's list (the invariants): ours, at least 16
        // bytes, aligned to 16, its first word the next block's address.
        let next = unsafe { (head as *const usize).read() };
        self.heads[class] = next;
        self.cached[class] -= class_size(class);
        head as *mut u8
    }

    fn free(&mut self, pointer: *mut u8, layout: Layout) {
        let Some(class) = class_of(layout) else {
            self.first_fit_free(pointer, layout);
            return;
        };
        if self.cached[class] + class_size(class) > CACHED_BYTES {
            self.first_fit_free(pointer, class_layout(class));
            return;
        }
        // SAFETY: `pointer` is a block of this class (`GlobalAlloc`'s contract and the
        // invariants) that its owner gave up: at least 16 bytes, aligned to 16, now the list's.
        unsafe { (pointer as *mut usize).write(self.heads[class]) };
        self.heads[class] = pointer as usize;
        self.cached[class] += class_size(class);
    }

    fn first_fit_allocate(&mut self, layout: Layout) -> *mut u8 {
        self.first_fit.allocate_first_fit(layout).map_or(ptr::null_mut(), NonNull::as_ptr)
    }

    fn first_fit_free(&mut self, pointer: *mut u8, layout: Layout) {
        if let Some(pointer) = NonNull::new(pointer) {
            // SAFETY: `pointer` came from the first fit with `layout` (the invariants).
            unsafe { self.first_fit.deallocate(pointer, layout) };
        }
    }
}

/// The layout a class's blocks have in the first fit.
fn class_layout(class: usize) -> Layout {
    // Sizes up to 4096 with alignment 16 are always valid layouts.
    Layout::from_size_align(class_size(class), CLASS_ALIGN).unwrap_or(Layout::new::<u8>())
}

// SAFETY: every block handed out is either a first-fit allocation of at least `layout` (the
// first fit's own guarantee) or a class block of the class's size, which `class_of` makes at
// least `layout.size()` and whose alignment of 16 is at least `layout.align()`; a block is on a
// list only while nobody holds it (the invariants), and the lock serialises every change.
unsafe impl GlobalAlloc for Heap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        self.inner.lock().allocate(layout)
    }

    unsafe fn dealloc(&self, pointer: *mut u8, layout: Layout) {
        self.inner.lock().free(pointer, layout);
    }

    unsafe fn realloc(&self, pointer: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let Ok(new_layout) = Layout::from_size_align(new_size, layout.align()) else {
            return ptr::null_mut();
        };
        if class_of(layout).is_some() && class_of(layout) == class_of(new_layout) {
            return pointer;
        }
        let mut inner = self.inner.lock();
        let new = inner.allocate(new_layout);
        if !new.is_null() {
            // SAFETY: both blocks hold at least the smaller size, and a fresh block is not the
            // old one (the old one is still held), so they do not overlap.
            unsafe { ptr::copy_nonoverlapping(pointer, new, layout.size().min(new_size)) };
            inner.free(pointer, layout);
        }
        new
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A heap over a leaked, 16-aligned buffer of `size` bytes.
    fn heap(size: usize) -> &'static Heap {
        let memory: &'static mut [u128] = Vec::leak(vec![0u128; size / 16]);
        let heap = Box::leak(Box::new(Heap::empty()));
        // SAFETY: the buffer is leaked, so it lives as long as the heap, and nothing else has it.
        unsafe { heap.init(memory.as_mut_ptr().cast(), size) };
        heap
    }

    fn layout(size: usize, align: usize) -> Layout {
        Layout::from_size_align(size, align).unwrap()
    }

    fn alloc(heap: &Heap, size: usize, align: usize) -> *mut u8 {
        // SAFETY: no layout here has size 0.
        unsafe { heap.alloc(layout(size, align)) }
    }

    /// Frees `block`, which the tests pass once, with the size and alignment it came with.
    fn free(heap: &Heap, block: *mut u8, size: usize, align: usize) {
        // SAFETY: see above.
        unsafe { heap.dealloc(block, layout(size, align)) }
    }

    fn realloc(heap: &Heap, block: *mut u8, size: usize, align: usize, new: usize) -> *mut u8 {
        // SAFETY: `block` is live with this layout; the tests use the result from then on.
        unsafe { heap.realloc(block, layout(size, align), new) }
    }

    /// The `size` bytes at `block`, which holds at least that many.
    fn bytes<'a>(block: *mut u8, size: usize) -> &'a mut [u8] {
        // SAFETY: the tests pass live blocks of at least `size` bytes, one at a time.
        unsafe { core::slice::from_raw_parts_mut(block, size) }
    }

    #[test]
    fn classes_cover_their_sizes() {
        for size in 1..=LARGEST_CLASS {
            let class = class_of(layout(size, 1)).unwrap();
            assert!(class_size(class) >= size, "size {size}: class {class}");
            if class > 0 {
                assert!(class_size(class - 1) < size, "size {size} fits a smaller class");
            }
        }
        assert_eq!(class_of(layout(0, 1)), Some(0));
        assert_eq!(class_of(layout(LARGEST_CLASS + 1, 1)), None);
        assert_eq!(class_of(layout(64, 32)), None);
        assert_eq!(class_size(CLASSES - 1), LARGEST_CLASS);
    }

    #[test]
    fn a_freed_block_is_taken_again_by_its_class_only() {
        let heap = heap(1 << 20);
        let a = alloc(heap, 40, 8);
        assert!(!a.is_null() && (a as usize).is_multiple_of(CLASS_ALIGN));
        free(heap, a, 40, 8);
        let other = alloc(heap, 100, 8);
        assert_ne!(other, a, "a 100-byte request took a 48-byte block");
        let again = alloc(heap, 33, 4);
        assert_eq!(again, a, "a request of the same class did not reuse the freed block");
        free(heap, again, 33, 4);
        free(heap, other, 100, 8);
    }

    #[test]
    fn blocks_do_not_overlap_and_keep_their_bytes() {
        let heap = heap(1 << 20);
        let sizes = [1, 15, 16, 17, 200, 256, 257, 700, 2048, 4000, 4096, 5000, 20000];
        let mut held = Vec::new();
        for round in 0..3u8 {
            for (index, &size) in sizes.iter().enumerate() {
                let block = alloc(heap, size, 8);
                assert!(!block.is_null());
                let fill = round.wrapping_mul(31).wrapping_add(index as u8);
                bytes(block, size).fill(fill);
                held.push((block, size, fill));
            }
            // Every other block freed, so that the next round reuses them.
            let mut index = 0;
            held.retain(|&(block, size, _)| {
                index += 1;
                let keep = index % 2 == 0;
                if !keep {
                    free(heap, block, size, 8);
                }
                keep
            });
        }
        for &(block, size, fill) in &held {
            assert!(bytes(block, size).iter().all(|&b| b == fill), "a {size}-byte block changed");
        }
        held.sort_by_key(|&(block, _, _)| block as usize);
        for pair in held.windows(2) {
            assert!(pair[0].0 as usize + pair[0].1 <= pair[1].0 as usize, "blocks overlap");
        }
    }

    #[test]
    fn realloc_keeps_the_block_within_its_class_and_moves_the_bytes_out_of_it() {
        let heap = heap(1 << 20);
        let block = alloc(heap, 20, 4);
        bytes(block, 20).fill(7);
        let same = realloc(heap, block, 20, 4, 30);
        assert_eq!(same, block, "20 to 30 bytes stays in the 32-byte class");
        let moved = realloc(heap, same, 30, 4, 3000);
        assert_ne!(moved, block);
        assert!(bytes(moved, 20).iter().all(|&b| b == 7));
        free(heap, moved, 3000, 4);
    }

    #[test]
    fn a_class_keeps_at_most_its_cap_and_large_requests_use_the_first_fit() {
        let heap = heap(1 << 20);
        let start = heap.first_fit_free();
        let blocks: Vec<_> = (0..64).map(|_| alloc(heap, 4096, 16)).collect();
        assert_eq!(start - heap.first_fit_free(), 64 * 4096);
        for &block in &blocks {
            free(heap, block, 4096, 16);
        }
        // 16 blocks of 4096 stay listed (64 KiB); the other 48 went back.
        assert_eq!(start - heap.first_fit_free(), CACHED_BYTES);
        let large = alloc(heap, 8192, 16);
        assert_eq!(start - heap.first_fit_free(), CACHED_BYTES + 8192);
        free(heap, large, 8192, 16);
        assert_eq!(start - heap.first_fit_free(), CACHED_BYTES);
        let aligned = alloc(heap, 64, 64);
        assert!(
            (aligned as usize).is_multiple_of(64),
            "a 64-aligned request came back less aligned"
        );
        free(heap, aligned, 64, 64);
    }

    #[test]
    fn an_exhausted_heap_answers_null() {
        let heap = heap(64 * 1024);
        assert!(alloc(heap, 1 << 20, 16).is_null());
        let mut held = Vec::new();
        loop {
            let block = alloc(heap, 4096, 16);
            if block.is_null() {
                break;
            }
            held.push(block);
        }
        assert!(!held.is_empty() && held.len() <= 16);
    }
}
