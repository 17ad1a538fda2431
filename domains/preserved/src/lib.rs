//! A service domain's preserved region (ARCHITECTURE.md §5) as two snapshot slots, a double
//! buffer: each half of the region is a versioned, checksummed header followed by one payload
//! (the service's state, encoded by the service). The xenstore stub, the console domain and
//! netback keep their state this way, each under its own [`Format`] (magic and version).
//!
//! A save writes the slot that does *not* hold the newest valid snapshot: first it invalidates
//! that slot's magic, then writes the payload, then the header that vouches for it, magic
//! last, with a sequence number one past the newest. A kill at any byte of a save therefore
//! leaves the other slot, the last saved state, untouched; the half-written slot fails its
//! checks and is ignored. Reading picks the valid slot with the higher sequence number.
//!
//! Header ([`HEADER_SIZE`] bytes, little-endian): magic (8 bytes), format version (u32),
//! header size (u32), sequence (u64), payload length (u64), payload checksum (u64), header
//! checksum (u64, over the 40 bytes before it), 16 reserved zero bytes. Checksums are 64-bit
//! FNV-1a ([`fnv1a`]): they catch torn and partial writes, the failure guarded against; they
//! do not resist an adversary, and only the owning domain can write its region.
//!
//! # Invariants
//! - [`Format::save`] never writes a byte of the slot [`Format::latest`] returns, and writes
//!   nothing when it refuses.
//! - [`Format::latest`] returns a payload only if its header (magic and version this format's)
//!   and payload checksums match; nothing in the region, of any length, can make it panic.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

use core::fmt;
use core::sync::atomic::{compiler_fence, Ordering};

/// Bytes of a slot header.
pub const HEADER_SIZE: usize = 64;

/// A service's snapshot format: what a valid header starts with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Format {
    /// First bytes of a valid slot header.
    pub magic: [u8; 8],
    /// The only payload format version this build writes and reads.
    pub version: u32,
}

/// Why a snapshot could not be saved (nothing was written).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SaveError {
    /// The payload is larger than one slot of the region holds.
    TooLarge {
        /// Bytes of the payload.
        bytes: usize,
        /// Payload bytes one slot holds.
        capacity: usize,
    },
}

impl fmt::Display for SaveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooLarge { bytes, capacity } => {
                write!(f, "a {bytes}-byte snapshot does not fit a {capacity}-byte slot")
            }
        }
    }
}

/// 64-bit FNV-1a of `bytes`.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &byte in bytes {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// Payload bytes one slot of a `region_len`-byte region holds.
pub fn capacity(region_len: usize) -> usize {
    (region_len / 2).saturating_sub(HEADER_SIZE)
}

fn word(bytes: &[u8], at: usize, width: usize) -> u64 {
    let mut raw = [0u8; 8];
    if let (Some(dst), Some(src)) = (raw.get_mut(..width), bytes.get(at..at + width)) {
        dst.copy_from_slice(src);
    }
    u64::from_le_bytes(raw)
}

fn slot(region: &[u8], index: usize) -> &[u8] {
    let half = region.len() / 2;
    region.get(index * half..(index + 1) * half).unwrap_or(&[])
}

impl Format {
    /// The format whose headers start with `magic` and carry `version`.
    pub const fn new(magic: [u8; 8], version: u32) -> Self {
        Self { magic, version }
    }

    /// Slot `index`'s sequence number and payload, if it is valid.
    fn valid<'r>(&self, region: &'r [u8], index: usize) -> Option<(u64, &'r [u8])> {
        let slot = slot(region, index);
        let header = slot.get(..HEADER_SIZE)?;
        if header.get(..8) != Some(&self.magic[..])
            || word(header, 8, 4) != u64::from(self.version)
            || word(header, 12, 4) != HEADER_SIZE as u64
            || word(header, 40, 8) != fnv1a(header.get(..40)?)
        {
            return None;
        }
        let length = usize::try_from(word(header, 24, 8)).ok()?;
        let payload = slot.get(HEADER_SIZE..HEADER_SIZE.checked_add(length)?)?;
        (word(header, 32, 8) == fnv1a(payload)).then_some((word(header, 16, 8), payload))
    }

    /// Index of the slot holding the newest valid snapshot, with it.
    fn newest<'r>(&self, region: &'r [u8]) -> Option<(usize, (u64, &'r [u8]))> {
        match (self.valid(region, 0), self.valid(region, 1)) {
            (Some(a), Some(b)) if b.0 > a.0 => Some((1, b)),
            (Some(a), _) => Some((0, a)),
            (None, Some(b)) => Some((1, b)),
            (None, None) => None,
        }
    }

    /// The newest valid snapshot in `region`: its sequence number and payload.
    pub fn latest<'r>(&self, region: &'r [u8]) -> Option<(u64, &'r [u8])> {
        self.newest(region).map(|(_, snapshot)| snapshot)
    }

    /// Writes `payload` as the next snapshot into the slot of `region` that does not hold the
    /// newest one; returns its sequence number.
    pub fn save(&self, region: &mut [u8], payload: &[u8]) -> Result<u64, SaveError> {
        let newest = self.newest_slot(region);
        self.save_after(region, payload, newest).map(|(_, sequence)| sequence)
    }

    /// As [`save`](Self::save), told the newest valid snapshot's slot and sequence number
    /// instead of reading them (their payloads' checksums cost a pass over each): the slot
    /// and sequence this returns, to pass to the next call. `newest` must be what
    /// [`save`](Self::save) would find, as it is when it comes from the last call on the
    /// same region with nothing else writing it.
    pub fn save_after(
        &self,
        region: &mut [u8],
        payload: &[u8],
        newest: Option<(usize, u64)>,
    ) -> Result<(usize, u64), SaveError> {
        let capacity = capacity(region.len());
        let half = region.len() / 2;
        if payload.len() > capacity || half < HEADER_SIZE {
            return Err(SaveError::TooLarge { bytes: payload.len(), capacity });
        }
        let sequence = newest.map_or(0, |(_, sequence)| sequence).wrapping_add(1);
        let target = newest.map_or(0, |(index, _)| 1 - index);
        let mut header = [0u8; HEADER_SIZE];
        header[..8].copy_from_slice(&self.magic);
        header[8..12].copy_from_slice(&self.version.to_le_bytes());
        header[12..16].copy_from_slice(&(HEADER_SIZE as u32).to_le_bytes());
        header[16..24].copy_from_slice(&sequence.to_le_bytes());
        header[24..32].copy_from_slice(&(payload.len() as u64).to_le_bytes());
        header[32..40].copy_from_slice(&fnv1a(payload).to_le_bytes());
        let check = fnv1a(&header[..40]);
        header[40..48].copy_from_slice(&check.to_le_bytes());
        let slot = &mut region[target * half..(target + 1) * half];
        let (head, body) = slot.split_at_mut(HEADER_SIZE);
        // Invalidate the slot first, so no mix of old header and new payload is ever valid.
        head[..8].fill(0);
        compiler_fence(Ordering::SeqCst);
        body[..payload.len()].copy_from_slice(payload);
        // The payload is in place before the header that vouches for it, magic last.
        compiler_fence(Ordering::SeqCst);
        head[8..].copy_from_slice(&header[8..]);
        compiler_fence(Ordering::SeqCst);
        head[..8].copy_from_slice(&header[..8]);
        Ok((target, sequence))
    }

    /// The newest valid snapshot's slot and sequence number, for
    /// [`save_after`](Self::save_after).
    pub fn newest_slot(&self, region: &[u8]) -> Option<(usize, u64)> {
        self.newest(region).map(|(index, (sequence, _))| (index, sequence))
    }
}

#[cfg(test)]
mod tests;
