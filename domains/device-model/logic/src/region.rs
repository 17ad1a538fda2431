//! The device model's preserved region (kept by the core across the model's restarts, at
//! `PRESERVED_REGION_BASE`), laid out as:
//!
//! | offset | bytes | what |
//! |---|---|---|
//! | 0 | [`SNAPSHOT_BYTES`] | two snapshot slots (`xenolith-preserved`, format [`FORMAT`]): the [`Snapshot`] |
//! | [`DISK_HEADER`] | [`DISK_HEADER_BYTES`] | the disk's header ([`disk_header`]) |
//! | [`DISK_OFFSET`] | the rest | the disk's bytes |
//!
//! On its first start the model copies its initial ramdisk (the disk image) to
//! [`DISK_OFFSET`] and only then writes the header, magic last; a model killed during the copy
//! finds no valid header and copies again. A restarted model finds the header and serves the
//! disk as the guest last wrote it. The snapshot is small and fixed in place, so it never
//! moves with the disk's size.
//!
//! Snapshot encoding (little-endian): target domain `u16`, IOREQ server id `u16`, the target's
//! generation `u32`, then `crate::state`'s encoding of the virtio devices. The generation says
//! which incarnation of the target the server and the devices belong to: a target the core
//! rebuilt (a reboot, or a crash its `on_crash` restarts) has neither, and its model starts
//! its devices as at power-on, keeping the disk's bytes.
//!
//! # Invariants
//! - [`Snapshot::decode`] and [`disk_length`] never panic and refuse anything their encoders
//!   could not have written.

use alloc::vec::Vec;

use xenolith_preserved::{fnv1a, Format};

use crate::state::{DecodeError, Saved, VERSION};

/// Bytes of the two snapshot slots.
pub const SNAPSHOT_BYTES: usize = 16 << 10;
/// Where the disk's header is.
pub const DISK_HEADER: usize = SNAPSHOT_BYTES;
/// Bytes reserved for the disk's header (a page, so the disk is page-aligned).
pub const DISK_HEADER_BYTES: usize = 4096;
/// Where the disk's bytes start.
pub const DISK_OFFSET: usize = DISK_HEADER + DISK_HEADER_BYTES;
/// The snapshot format.
pub const FORMAT: Format = Format::new(*b"XLDMSNAP", VERSION);
/// The disk header's magic.
pub const DISK_MAGIC: [u8; 8] = *b"XLDMDISK";
/// The disk header's version.
pub const DISK_VERSION: u32 = 1;
/// The disk header's length.
pub const DISK_HEADER_LENGTH: usize = 32;

/// What the snapshot slots hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    /// The target domain (a snapshot for another target is not this configuration's).
    pub target: u16,
    /// The IOREQ server this model created for the target.
    pub server: u16,
    /// The target's incarnation the server and the devices belong to.
    pub generation: u32,
    /// The virtio devices.
    pub devices: Saved,
}

impl Snapshot {
    /// The encoding (module doc).
    pub fn encode(&self) -> Vec<u8> {
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&self.target.to_le_bytes());
        bytes.extend_from_slice(&self.server.to_le_bytes());
        bytes.extend_from_slice(&self.generation.to_le_bytes());
        self.devices.encode(&mut bytes);
        bytes
    }

    /// Reads what [`encode`](Self::encode) wrote.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let (head, rest) = bytes.split_first_chunk::<8>().ok_or(DecodeError::Truncated)?;
        let [t0, t1, s0, s1, g0, g1, g2, g3] = *head;
        let devices = Saved::decode(rest)?;
        Ok(Self {
            target: u16::from_le_bytes([t0, t1]),
            server: u16::from_le_bytes([s0, s1]),
            generation: u32::from_le_bytes([g0, g1, g2, g3]),
            devices,
        })
    }
}

/// The disk header for a disk of `length` bytes: magic, version `u32`, zero `u32`, length
/// `u64`, FNV-1a of the 24 bytes before it `u64`.
pub fn disk_header(length: u64) -> [u8; DISK_HEADER_LENGTH] {
    let mut header = [0; DISK_HEADER_LENGTH];
    header[..8].copy_from_slice(&DISK_MAGIC);
    header[8..12].copy_from_slice(&DISK_VERSION.to_le_bytes());
    header[16..24].copy_from_slice(&length.to_le_bytes());
    let check = fnv1a(&header[..24]);
    header[24..32].copy_from_slice(&check.to_le_bytes());
    header
}

/// The disk's length from its header, if the header is valid and the disk fits a region of
/// `region_length` bytes.
pub fn disk_length(header: &[u8], region_length: usize) -> Option<u64> {
    let header = header.get(..DISK_HEADER_LENGTH)?;
    let word = |at: usize| u64::from_le_bytes(header[at..at + 8].try_into().unwrap_or([0; 8]));
    let length = word(16);
    let valid = header[..8] == DISK_MAGIC
        && header[8..12] == DISK_VERSION.to_le_bytes()
        && header[12..16] == [0; 4]
        && word(24) == fnv1a(&header[..24]);
    (valid && length <= disk_capacity(region_length) as u64).then_some(length)
}

/// The most disk bytes a region of `region_length` bytes holds.
pub fn disk_capacity(region_length: usize) -> usize {
    region_length.saturating_sub(DISK_OFFSET)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::SavedDevice;
    use crate::virtqueue::Queue;

    fn snapshot() -> Snapshot {
        let queue = Queue { size: 64, ready: true, desc: 0x4000_0000, ..Queue::default() };
        let device = SavedDevice {
            status: 15,
            interrupt_status: 1,
            driver_features: 1 << 32,
            queues: alloc::vec![queue],
        };
        Snapshot {
            target: 7,
            server: 1,
            generation: 3,
            devices: Saved { devices: alloc::vec![device] },
        }
    }

    #[test]
    fn snapshots_round_trip_and_damage_is_refused() {
        let bytes = snapshot().encode();
        assert_eq!(Snapshot::decode(&bytes), Ok(snapshot()));
        for length in 0..bytes.len() {
            assert!(Snapshot::decode(&bytes[..length]).is_err(), "{length}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(Snapshot::decode(&longer), Err(DecodeError::Trailing));
        let mut rng = crate::test_rng::Xorshift(0x1234_5678);
        for _ in 0..2000 {
            let mut damaged = bytes.clone();
            rng.damage(&mut damaged, 6);
            let _ = Snapshot::decode(&damaged);
        }
        // It fits its slots many times over, even with every device and queue.
        let queues = alloc::vec![Queue::default(); crate::state::MAX_QUEUES];
        let device = SavedDevice { queues, ..SavedDevice::default() };
        let devices = Saved { devices: alloc::vec![device; crate::state::MAX_DEVICES] };
        let largest = Snapshot { devices, ..snapshot() }.encode();
        assert!(largest.len() <= xenolith_preserved::capacity(SNAPSHOT_BYTES));
    }

    #[test]
    fn disk_headers() {
        let region = DISK_OFFSET + 0x10_0000;
        let header = disk_header(0x10_0000);
        assert_eq!(disk_length(&header, region), Some(0x10_0000));
        assert_eq!(disk_length(&disk_header(0x10_0001), region), None);
        assert_eq!(disk_length(&header[..31], region), None);
        for byte in 0..DISK_HEADER_LENGTH {
            let mut damaged = header;
            damaged[byte] ^= 0x20;
            assert_eq!(disk_length(&damaged, region), None, "{byte}");
        }
        assert_eq!(disk_capacity(DISK_OFFSET - 1), 0);
        assert_eq!(DISK_OFFSET % 4096, 0);
    }
}
