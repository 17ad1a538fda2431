//! The portable half of the xenstore domain, host-tested: the preserved-region snapshot format
//! ([`snapshot`]) and moving bytes through a xenstore ring page ([`ring`]). The bare-metal
//! binary (`main.rs`) adds hypercalls and the pages themselves; the protocol and the database are
//! `xenolith-xenstore`'s.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod ring;
pub mod snapshot;
