//! The core's heap: small, long-lived objects (the decoded boot manifest, domain records).
//! Guest memory, page tables and other page-sized things come from the frame allocator instead.
//!
//! The heap is a fixed region in .bss, so it exists from the first instruction of Rust: the boot
//! manifest is decoded before the frame allocator is up.
//!
//! # Invariants
//! - [`init`] runs once, on the boot CPU, before anything allocates.
//! - Interrupt handlers allocate, and the lock is not interrupt-safe: after boot, code allocates
//!   only with interrupts masked (exception handlers run masked; boot code masks them). A CPU
//!   waiting for the lock sleeps in WFE (`arch::lock`).
//! - Allocation failure stops the system with a message (the core does not overcommit: every
//!   object it allocates at run time is bounded by a per-domain limit).

use core::alloc::{GlobalAlloc, Layout};
use core::ptr::{null_mut, NonNull};
use core::sync::atomic::{AtomicBool, Ordering};

use linked_list_allocator::Heap;

use crate::arch::lock::Mutex;

/// Bytes of heap.
pub const HEAP_SIZE: usize = 4 << 20;

#[repr(C, align(4096))]
struct HeapSpace([u8; HEAP_SIZE]);

static mut HEAP_SPACE: HeapSpace = HeapSpace([0; HEAP_SIZE]);
static INITIALISED: AtomicBool = AtomicBool::new(false);

/// `linked_list_allocator`'s heap behind the core's lock (its own `LockedHeap` spins).
struct Allocator(Mutex<Heap>);

// SAFETY: every block comes from `Heap::allocate_first_fit`, which hands a block out once until
// it is given back, with the size and alignment asked; the lock serialises its bookkeeping.
unsafe impl GlobalAlloc for Allocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        self.0.lock().allocate_first_fit(layout).map_or(null_mut(), NonNull::as_ptr)
    }

    unsafe fn dealloc(&self, block: *mut u8, layout: Layout) {
        // SAFETY: GlobalAlloc's contract: `block` is a block `alloc` returned, so not null.
        let block = unsafe { NonNull::new_unchecked(block) };
        // SAFETY: GlobalAlloc's contract: `block` is live, was allocated for this `layout`, and
        // is given back once.
        unsafe { self.0.lock().deallocate(block, layout) };
    }
}

#[global_allocator]
static ALLOCATOR: Allocator = Allocator(Mutex::new(Heap::empty()));

/// Hands the heap region to the allocator. Later calls do nothing.
pub fn init() {
    if INITIALISED.swap(true, Ordering::AcqRel) {
        return;
    }
    // Only the address is taken; no reference to the static is formed.
    let start = (&raw mut HEAP_SPACE).cast::<u8>();
    // SAFETY: HEAP_SPACE is used by nothing but the allocator, `INITIALISED` makes this the only
    // call that hands it over, and it is HEAP_SIZE bytes of writable .bss for the life of the core.
    unsafe { ALLOCATOR.0.lock().init(start, HEAP_SIZE) };
}

/// Bytes in use.
pub fn used() -> usize {
    ALLOCATOR.0.lock().used()
}
