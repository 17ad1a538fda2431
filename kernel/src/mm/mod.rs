//! Memory: the frame allocator and the core's heap, the core's own page tables, reaching guest
//! memory (Xen's `copy_from_guest`), and the memory of domains (RAM extents, foreign and core
//! pages in their stage 2). Frames and translation tables themselves are the library's half of
//! this folder (`frame.rs`, `lpae.rs`).

pub mod core_space;
pub mod domain_memory;
pub mod guest_access;
pub mod heap;
pub mod memory;
