//! The single definition of every number and layout that crosses a Xenolith privilege boundary.
//!
//! Two kinds of interface live here:
//! - Xen's public guest interface (from the next issues on), encoded exactly as Xen's public headers
//!   give it, each item citing its header;
//! - Xenolith's own boot bundle: the file the host tool packs and the core unpacks at boot;
//! - Xenolith's own exchange between the host's `cargo xtask xl` and the control domain
//!   ([`host_xl`]).
//!
//! Nothing here is kept in sync by a comment: both sides of every boundary import these definitions,
//! and layout tests pin sizes and offsets.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

pub mod bundle;
pub mod host_xl;
pub mod ring;
pub mod xen;
