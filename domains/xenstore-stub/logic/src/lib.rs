//! xenstored's logic (placeholder while it is written).
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;
