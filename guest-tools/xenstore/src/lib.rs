//! Xen's xenstore command-line tools for Linux guests: `xenstore-read`, `-write`, `-ls`,
//! `-rm`, `-watch`, and `-exists`, `-list`, `-chmod`, with the options, output and exit
//! codes of Xen 4.17's `tools/xenstore/xenstore_client.c`, talking to xenstored through the
//! guest kernel's `/dev/xen/xenbus` (or xenstored's socket, where there is one).
//!
//! One multi-call binary, `xenstore` (`src/main.rs`), runs the tool its file name names
//! (`xenstore-read` → read) or its first argument names (`xenstore read`). Everything it does
//! is here, host-tested against a fake xenstored: [`tools::run`] takes the command line, the
//! terminal's width and a function that opens the connection, and returns the exit status.
//!
//! What it refuses to do:
//! - invent behaviour: where Xen's tool prints, exits or retries, this does the same, down to
//!   the message texts (glibc's `err`/`getopt_long` forms); the few differences are named
//!   where they are ([`tools`]' watch loop) and in the crate's README;
//! - hold more than one request in flight or trust a reply: a malformed or unexpected reply
//!   closes the connection and fails the request, never panics.
//!
//! Principles:
//! 1. **Xen's numbers, from one place.** Message types and error names are
//!    `xenolith_abi::xen::xs_wire` (Xen's `xen/include/public/io/xs_wire.h`).
//! 2. **Bytes, not text.** Paths and values are byte strings end to end, as in C; only the
//!    escaping for display makes text.
//! 3. **No unsafe code.** The terminal width comes through `rustix`'s safe `tcgetwinsize`.
#![forbid(unsafe_code)]

pub mod client;
pub mod command_line;
pub mod errno;
pub mod escape;
mod ls;
pub mod tools;
pub mod transport;
pub mod wire;

#[cfg(test)]
mod fake;
#[cfg(test)]
mod tests;

pub use tools::{run, Environment};
