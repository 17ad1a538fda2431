//! The preserved region's format: two slots (a double buffer), each a versioned, checksummed
//! header followed by one encoded [`crate::Console`] (the xenstore stub's scheme,
//! `domains/xenstore-stub/src/snapshot.rs`, with this service's magic).
//!
//! A save writes the slot that does *not* hold the newest valid snapshot: first it invalidates
//! that slot's magic, then writes the payload, then the header that vouches for it, magic last,
//! with a sequence number one past the newest. A kill at any byte of a save therefore leaves
//! the other slot, the last saved state, untouched; the half-written slot fails its checks and
//! is ignored. Reading picks the valid slot with the higher sequence number.
//!
//! Header ([`HEADER_SIZE`] bytes, little-endian): magic `XLCNSNAP`, format version (u32),
//! header size (u32), sequence (u64), payload length (u64), payload checksum (u64), header
//! checksum (u64, over the 40 bytes before it), 16 reserved zero bytes. Checksums are 64-bit
//! FNV-1a: they catch torn and partial writes, the failure guarded against; only this domain
//! writes its region.
//!
//! # Invariants
//! - [`save`] never writes a byte of the slot [`latest`] returns.
//! - [`latest`] returns a payload only if its header and payload checksums match; nothing in
//!   the region can make it panic.

use core::fmt;
use core::sync::atomic::{compiler_fence, Ordering};

/// First bytes of a valid slot header.
pub const MAGIC: [u8; 8] = *b"XLCNSNAP";
/// The only slot format this build writes and reads.
pub const FORMAT_VERSION: u32 = 3;
/// Bytes of a slot header.
pub const HEADER_SIZE: usize = 64;

/// Why a snapshot could not be saved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SaveError {
    /// The encoded state is larger than one slot of the region holds.
    TooLarge {
        /// Bytes of the encoded state.
        bytes: usize,
        /// Payload bytes one slot holds.
        capacity: usize,
    },
}

impl fmt::Display for SaveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooLarge { bytes, capacity } => {
                write!(f, "a {bytes}-byte console snapshot does not fit a {capacity}-byte slot")
            }
        }
    }
}

/// 64-bit FNV-1a of `bytes`.
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &byte in bytes {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

fn word(bytes: &[u8], at: usize, width: usize) -> u64 {
    let mut raw = [0u8; 8];
    if let (Some(dst), Some(src)) = (raw.get_mut(..width), bytes.get(at..at + width)) {
        dst.copy_from_slice(src);
    }
    u64::from_le_bytes(raw)
}

/// Payload bytes one slot of `region` holds.
pub fn capacity(region_len: usize) -> usize {
    (region_len / 2).saturating_sub(HEADER_SIZE)
}

fn slot(region: &[u8], index: usize) -> &[u8] {
    let half = region.len() / 2;
    region.get(index * half..(index + 1) * half).unwrap_or(&[])
}

/// Slot `index`'s sequence number and payload, if it is valid.
fn valid(region: &[u8], index: usize) -> Option<(u64, &[u8])> {
    let slot = slot(region, index);
    let header = slot.get(..HEADER_SIZE)?;
    if header.get(..8) != Some(&MAGIC[..])
        || word(header, 8, 4) != u64::from(FORMAT_VERSION)
        || word(header, 12, 4) != HEADER_SIZE as u64
        || word(header, 40, 8) != fnv1a(header.get(..40)?)
    {
        return None;
    }
    let length = usize::try_from(word(header, 24, 8)).ok()?;
    let payload = slot.get(HEADER_SIZE..HEADER_SIZE.checked_add(length)?)?;
    (word(header, 32, 8) == fnv1a(payload)).then_some((word(header, 16, 8), payload))
}

/// Index of the slot holding the newest valid snapshot.
fn latest_index(region: &[u8]) -> Option<usize> {
    match (valid(region, 0), valid(region, 1)) {
        (Some(a), Some(b)) => Some(usize::from(b.0 > a.0)),
        (Some(_), None) => Some(0),
        (None, Some(_)) => Some(1),
        (None, None) => None,
    }
}

/// The newest valid snapshot in `region`: its sequence number and payload.
pub fn latest(region: &[u8]) -> Option<(u64, &[u8])> {
    latest_index(region).and_then(|index| valid(region, index))
}

/// Writes `payload` as the next snapshot into the slot of `region` that does not hold the
/// newest one; returns its sequence number.
pub fn save(region: &mut [u8], payload: &[u8]) -> Result<u64, SaveError> {
    let capacity = capacity(region.len());
    if payload.len() > capacity {
        return Err(SaveError::TooLarge { bytes: payload.len(), capacity });
    }
    let latest = latest_index(region);
    let sequence = latest.and_then(|index| valid(region, index)).map_or(0, |(seq, _)| seq) + 1;
    let target = latest.map_or(0, |index| 1 - index);
    let half = region.len() / 2;
    let Some(slot) = region.get_mut(target * half..(target + 1) * half) else {
        return Err(SaveError::TooLarge { bytes: payload.len(), capacity });
    };
    let mut header = [0u8; HEADER_SIZE];
    header[..8].copy_from_slice(&MAGIC);
    header[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    header[12..16].copy_from_slice(&(HEADER_SIZE as u32).to_le_bytes());
    header[16..24].copy_from_slice(&sequence.to_le_bytes());
    header[24..32].copy_from_slice(&(payload.len() as u64).to_le_bytes());
    header[32..40].copy_from_slice(&fnv1a(payload).to_le_bytes());
    let check = fnv1a(&header[..40]);
    header[40..48].copy_from_slice(&check.to_le_bytes());
    let (head, body) = slot.split_at_mut(HEADER_SIZE);
    // Invalidate the slot first, so no mix of old header and new payload is ever valid.
    head[..8].fill(0);
    compiler_fence(Ordering::SeqCst);
    if let Some(dst) = body.get_mut(..payload.len()) {
        dst.copy_from_slice(payload);
    }
    // The payload is in place before the header that vouches for it, magic last.
    compiler_fence(Ordering::SeqCst);
    head[8..].copy_from_slice(&header[8..]);
    compiler_fence(Ordering::SeqCst);
    head[..8].copy_from_slice(&header[..8]);
    Ok(sequence)
}
