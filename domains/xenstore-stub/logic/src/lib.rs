//! xenstored's logic: Xen's xenstore wire protocol, the tree, permissions, quotas, transactions,
//! watches and domain management, as one host-testable state machine with a restartable snapshot.
//!
//! The semantics are Xen 4.17's (`docs/misc/xenstore.txt`; where the document is silent, the C
//! daemon `tools/xenstore/xenstored_*.c`, which is what guests were tested against). A thin
//! bare-metal binary (`domains/xenstore-stub/src`) moves bytes between each domain's ring page and
//! a [`Store`]: [`Store::receive`] takes request bytes, [`Store::output`] and
//! [`Store::consume_output`] hand back replies and watch events, [`Store::take_effects`] says what
//! the binary must do outside (map a ring, bind a port), and [`Store::encode`] /
//! [`Store::decode`] keep the whole state in a preserved region across restarts.
//!
//! What it refuses to do:
//! - touch memory, rings or event channels: it sees bytes and domain ids, never addresses;
//! - trust a connection: nothing a connection sends can panic the crate, grow its memory without a
//!   bound, or stall another connection;
//! - keep time: Xen's timeouts (watch-event expiry, write rate limiting) become count limits.
//!
//! Principles:
//! 1. **Xen's semantics, Xen's errors.** Every rule and constant taken from Xen cites where Xen
//!    states it; the deliberate deviations are listed in [`store`]'s module documentation.
//! 2. **Validate, then change.** A request that fails changes nothing (except where Xen itself
//!    dooms a transaction, which is encoded as Xen does it).
//! 3. **One owner of every byte.** Connections are keyed by domain id; their input, output,
//!    watches and transactions live in the connection and go with it.
//! 4. **The snapshot is the state.** [`Store::encode`] writes everything (including half-received
//!    requests and half-sent replies); [`Store::decode`] checks the result before trusting it.
//!
//! # Invariants
//! - The tree always holds `/`; every other node's parent exists and lists it exactly once as a
//!   child, and every listed child exists (checked again by [`Store::decode`]).
//! - A connection's queued output is a sequence of whole, well-framed messages of at most
//!   `XENSTORE_PAYLOAD_MAX` payload bytes each; the binary may have written a prefix of the first.
//! - Per-connection memory is bounded: one partial request (header + at most
//!   `XENSTORE_PAYLOAD_MAX` bytes), at most `outstanding` (+1) queued replies, at most
//!   `watch_events` queued watch events, and the quotas on watches and transactions.
#![no_std]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

extern crate alloc;

mod connection;
mod control;
mod db;
mod domain;
mod errno;
mod ops;
mod path;
mod perms;
mod populate;
mod quota;
mod snapshot;
pub mod store;
mod transaction;
mod tree;
mod watch;
pub mod wire;

pub use populate::{NewDomain, Uuid};
pub use quota::Quotas;
pub use snapshot::{DecodeError, SNAPSHOT_MAGIC, SNAPSHOT_VERSION};
pub use store::{AddDomainError, Effect, ProtocolError, Ring, Stats, Store, Transport};

/// A Xen domain id (`domid_t`, `xen/include/public/xen.h`).
pub type DomId = u16;
