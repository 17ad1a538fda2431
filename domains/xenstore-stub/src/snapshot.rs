//! The preserved region's format: two slots (a double buffer), each a versioned, checksummed
//! header followed by one encoded snapshot of the store.
//!
//! A commit writes the slot that does *not* hold the newest valid snapshot: first the payload,
//! then the header that makes it valid, with a sequence number one past the newest. A crash at
//! any instruction of a commit therefore leaves the other slot, the last committed state,
//! untouched; the half-written slot fails its checksum and is ignored. Reading picks the valid
//! slot with the highest sequence number.
//!
//! Header (64 bytes, little-endian): magic `XLXSSNAP`, format version (u32), header size (u32),
//! sequence (u64), payload length (u64), payload checksum (u64), header checksum (u64, over the
//! 40 bytes before it), 16 reserved zero bytes. Checksums are 64-bit FNV-1a, which catches torn
//! and partial writes (the failure this guards against); it is not meant to resist an adversary,
//! and only the xenstore domain itself can write the region.
//!
//! # Invariants
//! - [`Slots::commit`] never writes a byte of the slot [`Slots::latest`] returns.
//! - [`Slots::latest`] returns a payload only if its header and payload checksums match; nothing
//!   in the region can make it panic.

use core::sync::atomic::{compiler_fence, Ordering};

/// First bytes of a valid slot header.
pub const MAGIC: [u8; 8] = *b"XLXSSNAP";
/// The only format this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;
/// Bytes of a slot header.
pub const HEADER_SIZE: usize = 64;
/// The smallest region [`Slots::new`] accepts: two headers and 4 KiB of payload each.
pub const MIN_REGION: usize = 2 * (HEADER_SIZE + 4096);

/// Why a snapshot could not be committed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CommitError {
    /// The payload is larger than one slot holds.
    TooLarge { bytes: usize, capacity: usize },
}

impl core::fmt::Display for CommitError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
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

fn read_u32(bytes: &[u8], at: usize) -> u32 {
    let mut word = [0; 4];
    word.copy_from_slice(&bytes[at..at + 4]);
    u32::from_le_bytes(word)
}

fn read_u64(bytes: &[u8], at: usize) -> u64 {
    let mut word = [0; 8];
    word.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(word)
}

/// The two slots of a preserved region.
pub struct Slots<'a> {
    region: &'a mut [u8],
}

impl<'a> Slots<'a> {
    /// The slots of `region` (each half of it); `None` if it is smaller than [`MIN_REGION`].
    pub fn new(region: &'a mut [u8]) -> Option<Self> {
        (region.len() >= MIN_REGION).then_some(Self { region })
    }

    /// Payload bytes one slot holds.
    pub fn capacity(&self) -> usize {
        self.region.len() / 2 - HEADER_SIZE
    }

    fn slot(&self, index: usize) -> &[u8] {
        let half = self.region.len() / 2;
        &self.region[index * half..(index + 1) * half]
    }

    /// Slot `index`'s sequence number and payload, if it is valid.
    fn valid(&self, index: usize) -> Option<(u64, &[u8])> {
        let slot = self.slot(index);
        let header = &slot[..HEADER_SIZE];
        if header[..8] != MAGIC
            || read_u32(header, 8) != FORMAT_VERSION
            || read_u32(header, 12) as usize != HEADER_SIZE
            || read_u64(header, 40) != fnv1a(&header[..40])
        {
            return None;
        }
        let length = usize::try_from(read_u64(header, 24)).ok()?;
        let payload = slot.get(HEADER_SIZE..HEADER_SIZE.checked_add(length)?)?;
        (read_u64(header, 32) == fnv1a(payload)).then_some((read_u64(header, 16), payload))
    }

    /// The newest valid snapshot: its sequence number and payload.
    pub fn latest(&self) -> Option<(u64, &[u8])> {
        match (self.valid(0), self.valid(1)) {
            (Some(a), Some(b)) => Some(if b.0 > a.0 { b } else { a }),
            (a, b) => a.or(b),
        }
    }

    /// Index of the slot holding the newest valid snapshot.
    fn latest_index(&self) -> Option<usize> {
        match (self.valid(0), self.valid(1)) {
            (Some(a), Some(b)) => Some(usize::from(b.0 > a.0)),
            (Some(_), None) => Some(0),
            (None, Some(_)) => Some(1),
            (None, None) => None,
        }
    }

    /// Writes `payload` as the next snapshot into the slot that does not hold the newest one;
    /// returns its sequence number.
    pub fn commit(&mut self, payload: &[u8]) -> Result<u64, CommitError> {
        let capacity = self.capacity();
        if payload.len() > capacity {
            return Err(CommitError::TooLarge { bytes: payload.len(), capacity });
        }
        let latest = self.latest_index();
        let sequence = latest.map_or(0, |index| self.valid(index).map_or(0, |(seq, _)| seq)) + 1;
        let target = match latest {
            Some(index) => 1 - index,
            None => 0,
        };
        let half = self.region.len() / 2;
        let slot = &mut self.region[target * half..(target + 1) * half];
        // Invalidate the slot first, so no mix of old header and new payload is ever valid.
        slot[..8].fill(0);
        compiler_fence(Ordering::SeqCst);
        slot[HEADER_SIZE..HEADER_SIZE + payload.len()].copy_from_slice(payload);
        let mut header = [0u8; HEADER_SIZE];
        header[..8].copy_from_slice(&MAGIC);
        header[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        header[12..16].copy_from_slice(&(HEADER_SIZE as u32).to_le_bytes());
        header[16..24].copy_from_slice(&sequence.to_le_bytes());
        header[24..32].copy_from_slice(&(payload.len() as u64).to_le_bytes());
        header[32..40].copy_from_slice(&fnv1a(payload).to_le_bytes());
        let check = fnv1a(&header[..40]);
        header[40..48].copy_from_slice(&check.to_le_bytes());
        // The payload is in place before the header that vouches for it.
        compiler_fence(Ordering::SeqCst);
        slot[8..HEADER_SIZE].copy_from_slice(&header[8..]);
        compiler_fence(Ordering::SeqCst);
        slot[..8].copy_from_slice(&header[..8]);
        Ok(sequence)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_region_has_no_snapshot() {
        let mut region = vec![0u8; MIN_REGION];
        assert!(Slots::new(&mut region[..MIN_REGION - 1]).is_none());
        let slots = Slots::new(&mut region).unwrap();
        assert_eq!(slots.latest(), None);
        assert_eq!(slots.capacity(), 4096);
    }

    #[test]
    fn commits_alternate_and_the_newest_wins() {
        let mut region = vec![0u8; MIN_REGION];
        let mut slots = Slots::new(&mut region).unwrap();
        assert_eq!(slots.commit(b"one"), Ok(1));
        assert_eq!(slots.latest(), Some((1, &b"one"[..])));
        assert_eq!(slots.commit(b"two"), Ok(2));
        assert_eq!(slots.latest(), Some((2, &b"two"[..])));
        assert_eq!(slots.commit(b"three"), Ok(3));
        assert_eq!(slots.latest(), Some((3, &b"three"[..])));
        assert_eq!(
            slots.commit(&[0; 4097]),
            Err(CommitError::TooLarge { bytes: 4097, capacity: 4096 })
        );
        assert_eq!(slots.latest(), Some((3, &b"three"[..])));
    }

    /// A commit cut off after any number of its byte writes leaves the last committed snapshot
    /// readable: simulated by replaying a commit's writes into a copy and stopping early.
    #[test]
    fn a_torn_commit_never_loses_the_last_snapshot() {
        let mut region = vec![0u8; MIN_REGION];
        let mut slots = Slots::new(&mut region).unwrap();
        slots.commit(&[7u8; 1000]).unwrap();
        slots.commit(&[8u8; 1200]).unwrap();
        let before = region.clone();
        let mut after = before.clone();
        Slots::new(&mut after).unwrap().commit(&[9u8; 3000]).unwrap();
        let changed: Vec<usize> = (0..before.len()).filter(|&i| before[i] != after[i]).collect();
        // Any subset of the changed bytes, in any order a compiler might pick, must leave a
        // valid snapshot: either the old one or the new one. Check prefixes in both orders and
        // a pseudo-random order.
        let mut orders = vec![changed.clone(), changed.iter().rev().copied().collect::<Vec<_>>()];
        let mut shuffled = changed.clone();
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for i in (1..shuffled.len()).rev() {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            shuffled.swap(i, (seed % (i as u64 + 1)) as usize);
        }
        orders.push(shuffled);
        for order in orders {
            let mut torn = before.clone();
            for (count, &index) in order.iter().enumerate() {
                torn[index] = after[index];
                if count % 97 == 0 || count + 1 == order.len() {
                    let slots = Slots::new(&mut torn).unwrap();
                    let (sequence, payload) = slots.latest().expect("a valid snapshot");
                    match sequence {
                        2 => assert_eq!(payload, &[8u8; 1200][..]),
                        3 => assert_eq!(payload, &[9u8; 3000][..]),
                        other => panic!("sequence {other}"),
                    }
                }
            }
        }
    }

    #[test]
    fn corruption_is_detected() {
        let mut region = vec![0u8; MIN_REGION];
        let mut slots = Slots::new(&mut region).unwrap();
        slots.commit(b"first").unwrap();
        slots.commit(b"second").unwrap();
        // Slot 1 holds "second": flip a payload byte, then a header byte.
        let half = MIN_REGION / 2;
        region[half + HEADER_SIZE] ^= 1;
        assert_eq!(Slots::new(&mut region).unwrap().latest(), Some((1, &b"first"[..])));
        region[half + HEADER_SIZE] ^= 1;
        region[half + 16] ^= 1;
        assert_eq!(Slots::new(&mut region).unwrap().latest(), Some((1, &b"first"[..])));
        // A huge length in an otherwise valid-looking header is refused, not followed.
        region[half + 16] ^= 1;
        region[half + 24..half + 32].copy_from_slice(&u64::MAX.to_le_bytes());
        let check = fnv1a(&region[half..half + 40]);
        region[half + 40..half + 48].copy_from_slice(&check.to_le_bytes());
        assert_eq!(Slots::new(&mut region).unwrap().latest(), Some((1, &b"first"[..])));
        // Random garbage anywhere never panics.
        let mut seed = 1u64;
        for _ in 0..2000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let index = (seed % region.len() as u64) as usize;
            region[index] = (seed >> 32) as u8;
            let _ = Slots::new(&mut region).unwrap().latest();
        }
    }
}
