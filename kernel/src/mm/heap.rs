//! The core's heap: small, long-lived objects (the decoded boot manifest, domain records).
//! Guest memory, page tables and other page-sized things come from the frame allocator instead.
//!
//! The heap is a fixed region in .bss, so it exists from the first instruction of Rust: the boot
//! manifest is decoded before the frame allocator is up.
//!
//! # Invariants
//! - [`init`] runs once, on the boot CPU, before anything allocates.
//! - Interrupt handlers allocate, and the lock is not interrupt-safe: after boot, code allocates
//!   only with interrupts masked (exception handlers run masked; boot code masks them).
//! - Allocation failure stops the system with a message (the core does not overcommit: every
//!   object it allocates at run time is bounded by a per-domain limit).

use core::sync::atomic::{AtomicBool, Ordering};

use linked_list_allocator::LockedHeap;

/// Bytes of heap.
pub const HEAP_SIZE: usize = 4 << 20;

#[repr(C, align(4096))]
struct HeapSpace([u8; HEAP_SIZE]);

static mut HEAP_SPACE: HeapSpace = HeapSpace([0; HEAP_SIZE]);
static INITIALISED: AtomicBool = AtomicBool::new(false);

#[global_allocator]
static ALLOCATOR: LockedHeap = LockedHeap::empty();

/// Hands the heap region to the allocator. Later calls do nothing.
pub fn init() {
    if INITIALISED.swap(true, Ordering::AcqRel) {
        return;
    }
    // Only the address is taken; no reference to the static is formed.
    let start = (&raw mut HEAP_SPACE).cast::<u8>();
    // SAFETY: HEAP_SPACE is used by nothing but the allocator, `INITIALISED` makes this the only
    // call that hands it over, and it is HEAP_SIZE bytes of writable .bss for the life of the core.
    unsafe { ALLOCATOR.lock().init(start, HEAP_SIZE) };
}

/// (used, free) bytes.
pub fn usage() -> (usize, usize) {
    let heap = ALLOCATOR.lock();
    (heap.used(), heap.free())
}
