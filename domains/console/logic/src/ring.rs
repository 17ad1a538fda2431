//! The PV console ring page, `struct xencons_interface` (`xen/include/public/io/console.h`),
//! read and written as the console backend does it, under the rules a hostile guest forces.
//!
//! Exists so the byte-level ring arithmetic is one small piece tested on the host, apart from
//! lines, focus and restarts. It sees a page through [`RingPage`] (a real domain implements it
//! with volatile accesses and barriers over the granted frame; tests use a `[u8; PAGE_SIZE]`).
//!
//! The guest produces `out` (this side consumes it and advances `out_cons`) and consumes `in`
//! (this side produces into it and advances `in_prod`). Both indexes of a ring are free-running
//! `u32`s (`XENCONS_RING_IDX`), masked with the ring's size minus one (`MASK_XENCONS_IDX`).
//!
//! The layout is `xenolith_abi::xen::console::xencons_interface`'s (the one definition of every
//! layout crossing a privilege boundary), re-exported here under short names.
//!
//! The indexes this side owns (`out_cons`, `in_prod`) are kept privately by the caller and only
//! *written* to the page, never trusted back, except [`place_input`]'s one reading of `in_prod`
//! to learn what an earlier incarnation already published (see there).
//!
//! # Invariants
//! - Nothing here panics or touches a byte outside `xencons_interface`, whatever the page holds.
//! - [`read_output`] hands out at most `min(budget, OUT_SIZE)` bytes, all between the private
//!   consumer index and the guest's producer index; a producer index more than `OUT_SIZE` ahead
//!   of the consumer, or behind one already seen, is [`RingError`], not a read.
//! - [`place_input`] never writes a byte of `in` the guest has not consumed: it writes at most
//!   `IN_SIZE - (in_prod - in_cons)` bytes, and a consumer index ahead of `in_prod` or moving
//!   backwards is [`RingError`].
//! - Data is written before the index that publishes it ([`RingPage::write_barrier`]); indexes
//!   are read before the data they cover ([`RingPage::read_barrier`]).

use core::fmt;

pub use xenolith_abi::xen::console::{
    XENCONS_IN_CONS_OFFSET as IN_CONS_OFFSET, XENCONS_IN_OFFSET as IN_OFFSET,
    XENCONS_IN_PROD_OFFSET as IN_PROD_OFFSET, XENCONS_IN_SIZE as IN_SIZE,
    XENCONS_OUT_CONS_OFFSET as OUT_CONS_OFFSET, XENCONS_OUT_OFFSET as OUT_OFFSET,
    XENCONS_OUT_PROD_OFFSET as OUT_PROD_OFFSET, XENCONS_OUT_SIZE as OUT_SIZE,
};
/// `sizeof(struct xencons_interface)` in Xen 4.17 (later Xen appends a `connection` byte and
/// padding after `out_prod`, which this crate neither reads nor writes).
pub const INTERFACE_SIZE: usize =
    core::mem::size_of::<xenolith_abi::xen::console::xencons_interface>();
/// The ring lives in one 4 KiB guest frame.
pub const PAGE_SIZE: usize = 4096;

/// The bytes and indexes of one console page. Offsets are the `*_OFFSET` constants; indexes
/// are little-endian `u32`s (both architectures Xenolith supports are little-endian).
///
/// The barrier hooks mark where `xenconsoled` places `xen_rmb`/`xen_wmb`/`xen_mb`; their default
/// does nothing, which is right for tests only.
pub trait RingPage {
    /// The byte at `offset` (< [`INTERFACE_SIZE`]).
    fn read_byte(&self, offset: usize) -> u8;
    /// Stores `value` at `offset` (< [`INTERFACE_SIZE`]).
    fn write_byte(&mut self, offset: usize, value: u8);
    /// The `u32` index at `offset` (one of the four index offsets).
    fn read_index(&self, offset: usize) -> u32;
    /// Stores the `u32` index at `offset` (one of the four index offsets).
    fn write_index(&mut self, offset: usize, value: u32);
    /// After reading a producer index, before reading the bytes it covers.
    fn read_barrier(&self) {}
    /// Before publishing an index: the bytes written or read before it are done.
    fn write_barrier(&self) {}
}

impl RingPage for [u8; PAGE_SIZE] {
    fn read_byte(&self, offset: usize) -> u8 {
        self.get(offset).copied().unwrap_or(0)
    }

    fn write_byte(&mut self, offset: usize, value: u8) {
        if let Some(slot) = self.get_mut(offset) {
            *slot = value;
        }
    }

    fn read_index(&self, offset: usize) -> u32 {
        let mut raw = [0u8; 4];
        if let Some(bytes) = self.get(offset..offset + 4) {
            raw.copy_from_slice(bytes);
        }
        u32::from_le_bytes(raw)
    }

    fn write_index(&mut self, offset: usize, value: u32) {
        if let Some(bytes) = self.get_mut(offset..offset + 4) {
            bytes.copy_from_slice(&value.to_le_bytes());
        }
    }
}

/// How a guest broke its ring. The caller disconnects that domain alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RingError {
    /// `out_prod - out_cons` (wrapping) exceeds [`OUT_SIZE`]: the producer claims more bytes
    /// than the ring holds (far ahead, or behind the consumer).
    OutputOverrun {
        /// This side's consumer index.
        consumer: u32,
        /// The guest's producer index.
        producer: u32,
    },
    /// `out_prod` moved backwards past a value already seen.
    OutputBackwards {
        /// The furthest producer index seen before.
        seen: u32,
        /// The producer index now.
        producer: u32,
    },
    /// `in_prod - in_cons` (wrapping) exceeds [`IN_SIZE`]: the guest consumed input that was
    /// never produced.
    InputOverrun {
        /// This side's producer index.
        producer: u32,
        /// The guest's consumer index.
        consumer: u32,
    },
    /// `in_cons` moved backwards past a value already seen.
    InputBackwards {
        /// The furthest consumer index seen before.
        seen: u32,
        /// The consumer index now.
        consumer: u32,
    },
}

impl fmt::Display for RingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::OutputOverrun { consumer, producer } => write!(
                f,
                "out_prod {producer:#x} is more than {OUT_SIZE} bytes past out_cons {consumer:#x}"
            ),
            Self::OutputBackwards { seen, producer } => {
                write!(f, "out_prod went back from {seen:#x} to {producer:#x}")
            }
            Self::InputOverrun { producer, consumer } => {
                write!(f, "in_cons {consumer:#x} is not within {IN_SIZE} bytes before in_prod {producer:#x}")
            }
            Self::InputBackwards { seen, consumer } => {
                write!(f, "in_cons went back from {seen:#x} to {consumer:#x}")
            }
        }
    }
}

/// This side's view of one domain's `out` ring: the consumer index it last published and the
/// furthest producer index it has seen (so a producer going backwards is caught).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutCursor {
    /// `out_cons` as this side last published it.
    pub consumer: u32,
    /// The furthest `out_prod` seen; `seen - consumer` never exceeds [`OUT_SIZE`].
    pub seen: u32,
}

/// This side's view of one domain's `in` ring.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InCursor {
    /// `in_prod` as this side last published it.
    pub producer: u32,
    /// The furthest `in_cons` seen; `producer - seen` never exceeds [`IN_SIZE`].
    pub seen: u32,
}

/// Appends up to `budget` available output bytes to `into` and returns the cursor as it will be
/// once they are consumed (`consumer` = the index they end at). Does not write the page: the
/// caller publishes the new consumer index with [`publish_output`] after the bytes are safe.
pub fn read_output(
    page: &impl RingPage,
    cursor: OutCursor,
    budget: u32,
    into: &mut alloc::vec::Vec<u8>,
) -> Result<OutCursor, RingError> {
    let producer = page.read_index(OUT_PROD_OFFSET);
    page.read_barrier();
    let available = producer.wrapping_sub(cursor.consumer);
    if available > OUT_SIZE {
        return Err(RingError::OutputOverrun { consumer: cursor.consumer, producer });
    }
    if available < cursor.seen.wrapping_sub(cursor.consumer) {
        return Err(RingError::OutputBackwards { seen: cursor.seen, producer });
    }
    let count = available.min(budget);
    into.reserve(count as usize);
    for step in 0..count {
        let index = cursor.consumer.wrapping_add(step) & (OUT_SIZE - 1);
        into.push(page.read_byte(OUT_OFFSET + index as usize));
    }
    Ok(OutCursor { consumer: cursor.consumer.wrapping_add(count), seen: producer })
}

/// Publishes `consumer` as `out_cons`, after the bytes it covers were read.
pub fn publish_output(page: &mut impl RingPage, consumer: u32) {
    page.write_barrier();
    page.write_index(OUT_CONS_OFFSET, consumer);
}

/// Writes a prefix of `queued` into `in` and publishes the new `in_prod`; returns how many
/// bytes of `queued` are now the guest's (to drop from the front of the queue) and the new
/// cursor.
///
/// Restarts: if the page's `in_prod` is ahead of `cursor.producer` by at most [`IN_SIZE`], an
/// earlier incarnation of this side published those bytes and was killed before recording it.
/// They were the front of the queue (or input it accepted after its last snapshot), so the
/// call counts them as placed and adopts the page's index: input is never placed twice. A guest
/// that scribbles `in_prod` within that window only loses its own queued input.
pub fn place_input(
    page: &mut impl RingPage,
    cursor: InCursor,
    queued: &[u8],
) -> Result<(usize, InCursor), RingError> {
    let mut producer = cursor.producer;
    let mut done = 0usize;
    let published = page.read_index(IN_PROD_OFFSET);
    let ahead = published.wrapping_sub(producer);
    if ahead != 0 && ahead <= IN_SIZE {
        done = (ahead as usize).min(queued.len());
        producer = published;
    }
    let consumer = page.read_index(IN_CONS_OFFSET);
    page.read_barrier();
    let used = producer.wrapping_sub(consumer);
    if used > IN_SIZE {
        return Err(RingError::InputOverrun { producer, consumer });
    }
    if used > producer.wrapping_sub(cursor.seen) {
        return Err(RingError::InputBackwards { seen: cursor.seen, consumer });
    }
    let rest = queued.get(done..).unwrap_or(&[]);
    let count = ((IN_SIZE - used) as usize).min(rest.len());
    for (step, &byte) in rest.iter().take(count).enumerate() {
        let index = producer.wrapping_add(step as u32) & (IN_SIZE - 1);
        page.write_byte(IN_OFFSET + index as usize, byte);
    }
    let producer = producer.wrapping_add(count as u32);
    if producer != published {
        page.write_barrier();
        page.write_index(IN_PROD_OFFSET, producer);
    }
    Ok((done + count, InCursor { producer, seen: consumer }))
}
