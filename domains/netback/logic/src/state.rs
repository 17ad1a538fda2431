//! What netback keeps in its preserved region so that a new incarnation serves the same vifs
//! without their frontends noticing: per vif its frontend (domain, device id), MAC and
//! features, per queue the ring references and the frontend's ports it connected, and the
//! positions it had reached on each ring; then the switch's learned table (opaque here).
//!
//! Positions are what the last save saw; the rings' own published response producers may be
//! ahead (a kill between publishing and saving). The new incarnation takes the page's
//! `rsp_prod` when it lies within one ring of the saved position, and disconnects the vif
//! otherwise (the frontend broke the ring meanwhile): [`resume_position`].
//!
//! Encoding (little-endian): version `u32` ([`VERSION`]), vif count `u32`, each vif (domain
//! `u16`, devid `u32`, MAC 6 bytes, feature bits `u8`, queue count `u8`, then per queue six
//! `u32`: tx ring ref, rx ring ref, tx port, rx port, tx position, rx position), then the
//! switch's bytes with their length (`u32`) first.
//!
//! # Invariants
//! - [`Saved::decode`] never panics and refuses any input [`Saved::encode`] could not have
//!   written (counts past the limits, trailing bytes, a queue count of 0).

use alloc::vec::Vec;

use crate::frontend::{Features, QueueConfig, MAX_QUEUES};

/// The format this build writes and reads.
pub const VERSION: u32 = 1;
/// Vifs one netback serves at most (each takes two ring pages per queue of its mappings).
pub const MAX_VIFS: usize = 64;

/// A queue as connected: its frontend's rings and ports and how far netback got on each ring.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SavedQueue {
    /// The frontend's rings and ports.
    pub config: QueueConfig,
    /// The transmit ring's consumer (equal to its response producer between rounds).
    pub tx: u32,
    /// The receive ring's consumer (equal to its response producer between rounds).
    pub rx: u32,
}

/// A connected vif.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SavedVif {
    /// The frontend's domain.
    pub domain: u16,
    /// Its device id (`device/vif/<devid>`).
    pub devid: u32,
    /// Its MAC address (the `mac` node the toolstack wrote).
    pub mac: [u8; 6],
    /// Its features.
    pub features: Features,
    /// Its queues, 1 to [`MAX_QUEUES`].
    pub queues: Vec<SavedQueue>,
}

/// Everything saved.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Saved {
    /// The connected vifs, at most [`MAX_VIFS`].
    pub vifs: Vec<SavedVif>,
    /// The switch's table, as its own encoding.
    pub switch: Vec<u8>,
}

/// Why saved bytes do not decode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// Another format version.
    Version(u32),
    /// Ends in the middle of a field.
    Truncated,
    /// A count past its limit.
    Count,
    /// Bytes after the end.
    Trailing,
}

const SG: u8 = 1;
const GSO_TCPV4: u8 = 2;
const CSUM_OFFLOAD: u8 = 4;

impl Saved {
    /// Appends the encoding (module doc) to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&VERSION.to_le_bytes());
        out.extend_from_slice(&(self.vifs.len() as u32).to_le_bytes());
        for vif in &self.vifs {
            out.extend_from_slice(&vif.domain.to_le_bytes());
            out.extend_from_slice(&vif.devid.to_le_bytes());
            out.extend_from_slice(&vif.mac);
            let features = vif.features;
            let bits = [(features.sg, SG), (features.gso_tcpv4, GSO_TCPV4)]
                .into_iter()
                .chain([(features.csum_offload, CSUM_OFFLOAD)])
                .filter(|(on, _)| *on)
                .fold(0, |bits, (_, bit)| bits | bit);
            out.push(bits);
            out.push(vif.queues.len() as u8);
            for queue in &vif.queues {
                let c = queue.config;
                for word in [c.tx_ring_ref, c.rx_ring_ref, c.tx_port, c.rx_port, queue.tx, queue.rx]
                {
                    out.extend_from_slice(&word.to_le_bytes());
                }
            }
        }
        out.extend_from_slice(&(self.switch.len() as u32).to_le_bytes());
        out.extend_from_slice(&self.switch);
    }

    /// Reads what [`encode`](Self::encode) wrote.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut reader = Reader(bytes);
        let version = reader.u32()?;
        if version != VERSION {
            return Err(DecodeError::Version(version));
        }
        let count = reader.u32()? as usize;
        if count > MAX_VIFS {
            return Err(DecodeError::Count);
        }
        let mut vifs = Vec::with_capacity(count);
        for _ in 0..count {
            let domain = u16::from_le_bytes(reader.take()?);
            let devid = reader.u32()?;
            let mac = reader.take()?;
            let [bits] = reader.take()?;
            let [queues] = reader.take()?;
            if queues == 0
                || u32::from(queues) > MAX_QUEUES
                || bits & !(SG | GSO_TCPV4 | CSUM_OFFLOAD) != 0
            {
                return Err(DecodeError::Count);
            }
            let features = Features {
                sg: bits & SG != 0,
                gso_tcpv4: bits & GSO_TCPV4 != 0,
                csum_offload: bits & CSUM_OFFLOAD != 0,
            };
            let mut saved = Vec::with_capacity(queues.into());
            for _ in 0..queues {
                let mut word = [0; 6];
                for value in &mut word {
                    *value = reader.u32()?;
                }
                let [tx_ring_ref, rx_ring_ref, tx_port, rx_port, tx, rx] = word;
                let config = QueueConfig { tx_ring_ref, rx_ring_ref, tx_port, rx_port };
                saved.push(SavedQueue { config, tx, rx });
            }
            vifs.push(SavedVif { domain, devid, mac, features, queues: saved });
        }
        let length = reader.u32()? as usize;
        if length > reader.0.len() {
            return Err(DecodeError::Truncated);
        }
        let switch = reader.0[..length].to_vec();
        reader.0 = &reader.0[length..];
        if !reader.0.is_empty() {
            return Err(DecodeError::Trailing);
        }
        Ok(Self { vifs, switch })
    }
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let (head, rest) = self.0.split_first_chunk::<N>().ok_or(DecodeError::Truncated)?;
        self.0 = rest;
        Ok(*head)
    }

    fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_le_bytes(self.take()?))
    }
}

/// Where a restarted netback resumes a ring whose position was saved as `saved` and whose page
/// shows `published` as its response producer: `published` if it lies within `ring_size` of
/// `saved` (the last incarnation may have published a round it did not save), `None` if not
/// (the frontend wrote the backend's index: disconnect the vif).
pub fn resume_position(saved: u32, published: u32, ring_size: u32) -> Option<u32> {
    (published.wrapping_sub(saved) <= ring_size).then_some(published)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn sample() -> Saved {
        let queue = |base: u32| SavedQueue {
            config: QueueConfig {
                tx_ring_ref: base,
                rx_ring_ref: base + 1,
                tx_port: base + 2,
                rx_port: base + 3,
            },
            tx: base.wrapping_mul(1000),
            rx: u32::MAX - base,
        };
        Saved {
            vifs: vec![
                SavedVif {
                    domain: 3,
                    devid: 0,
                    mac: [0, 0x16, 0x3e, 0, 3, 0],
                    features: Features { sg: true, gso_tcpv4: true, csum_offload: true },
                    queues: vec![queue(8)],
                },
                SavedVif {
                    domain: 7,
                    devid: 2,
                    mac: [0, 0x16, 0x3e, 0, 7, 2],
                    features: Features::default(),
                    queues: vec![queue(20), queue(30)],
                },
            ],
            switch: vec![1, 2, 3],
        }
    }

    #[test]
    fn what_is_encoded_decodes_the_same() {
        let mut bytes = Vec::new();
        sample().encode(&mut bytes);
        assert_eq!(Saved::decode(&bytes), Ok(sample()));
        let mut empty = Vec::new();
        Saved::default().encode(&mut empty);
        assert_eq!(Saved::decode(&empty), Ok(Saved::default()));
    }

    #[test]
    fn every_truncation_and_extension_is_refused() {
        let mut bytes = Vec::new();
        sample().encode(&mut bytes);
        for length in 0..bytes.len() {
            assert!(Saved::decode(&bytes[..length]).is_err(), "{length}");
        }
        bytes.push(0);
        assert_eq!(Saved::decode(&bytes), Err(DecodeError::Trailing));
    }

    #[test]
    fn other_versions_and_impossible_counts_are_refused() {
        let mut bytes = Vec::new();
        sample().encode(&mut bytes);
        let mut other = bytes.clone();
        other[0] = 9;
        assert_eq!(Saved::decode(&other), Err(DecodeError::Version(9)));
        let mut many = bytes.clone();
        many[4..8].copy_from_slice(&(MAX_VIFS as u32 + 1).to_le_bytes());
        assert_eq!(Saved::decode(&many), Err(DecodeError::Count));
        // The first vif's queue count: version, count, domain, devid, mac, bits.
        let at = 4 + 4 + 2 + 4 + 6 + 1;
        let mut none = bytes.clone();
        none[at] = 0;
        assert_eq!(Saved::decode(&none), Err(DecodeError::Count));
        let mut five = bytes;
        five[at] = 5;
        assert_eq!(Saved::decode(&five), Err(DecodeError::Count));
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..5000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let length = (seed % 200) as usize;
            let mut bytes: Vec<u8> = (0..length).map(|i| (seed >> (i % 56)) as u8).collect();
            if length >= 4 {
                bytes[..4].copy_from_slice(&VERSION.to_le_bytes());
            }
            let _ = Saved::decode(&bytes);
        }
    }

    #[test]
    fn a_published_position_within_one_ring_is_taken() {
        assert_eq!(resume_position(100, 100, 256), Some(100));
        assert_eq!(resume_position(100, 356, 256), Some(356));
        assert_eq!(resume_position(u32::MAX - 3, 10, 256), Some(10));
        assert_eq!(resume_position(100, 357, 256), None);
        assert_eq!(resume_position(100, 99, 256), None);
    }
}
