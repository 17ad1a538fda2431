//! What netback keeps in its preserved region so that a new incarnation serves the same vifs
//! without their frontends noticing: per vif its frontend (domain, device id), MAC and
//! features, per queue the ring references and the frontend's ports it connected, and the
//! positions it had reached on each ring; then the switch's learned table (opaque here).
//!
//! # Positions and the responses of a round
//! A response overwrites the request in its slot (`io/ring.h`: one array for both), so a
//! request whose response was written cannot be read again. Each round therefore consumes
//! requests and computes their responses without writing them, saves, and only then writes
//! and publishes them. A ring's saved record ([`SavedRing`]) is its request consumer after the
//! round and the responses of the round, not yet published: they fill the slots just before
//! the consumer. A new incarnation ([`SavedRing::unpublished`]) looks at the page's response
//! producer: at the consumer, everything was published; inside the round's slots, it writes
//! the responses from there on and publishes them (never the ones before: the frontend may
//! have reused those slots); anywhere else the frontend broke the ring and the vif is
//! disconnected. A kill before the save leaves the previous round's record: the requests of
//! the lost round are still intact in their slots and are read again (their packets may go
//! twice; TCP copes).
//!
//! Encoding (little-endian): version `u32` ([`VERSION`]), vif count `u32`, each vif (domain
//! `u16`, devid `u32`, MAC 6 bytes, feature bits `u8`, queue count `u8`, then per queue four
//! `u32`: tx ring ref, rx ring ref, tx port, rx port; then its transmit ring and its receive
//! ring, each a consumer `u32`, a response count `u16` and that many 8-byte responses), then the
//! switch's bytes with their length (`u32`) first.
//!
//! # Invariants
//! - [`Saved::decode`] never panics and refuses any input [`Saved::encode`] could not have
//!   written (counts past the limits, trailing bytes, a queue count of 0).

use alloc::vec::Vec;

use crate::frontend::{Features, QueueConfig, MAX_QUEUES};
use crate::reader::Reader;

/// The format this build writes and reads.
pub const VERSION: u32 = 2;
/// Responses one ring's round may leave unpublished (a ring's slots).
pub const MAX_PENDING: usize = 256;
/// Vifs one netback serves at most (each takes two ring pages per queue of its mappings, and
/// its rounds' responses room in the preserved region).
pub const MAX_VIFS: usize = 16;

/// How far netback got on one ring (module doc).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SavedRing {
    /// The request consumer after the round.
    pub consumer: u32,
    /// The round's responses, for the slots just before `consumer`, each as its slot's first
    /// bytes (a transmit response uses 4 of the 8).
    pub responses: Vec<[u8; 8]>,
}

/// Which of a saved ring's responses a new incarnation must still write and publish.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Unpublished {
    /// Where the first one goes (the page's response producer).
    pub from: u32,
    /// Index of the first one in [`SavedRing::responses`].
    pub skip: usize,
}

impl SavedRing {
    /// Given the page's response producer `published`: the responses still to write from
    /// there on (none when `published` is the consumer), or `None` if `published` lies outside
    /// the round's slots (module doc).
    pub fn unpublished(&self, published: u32) -> Option<Unpublished> {
        let first = self.consumer.wrapping_sub(self.responses.len() as u32);
        let skip = published.wrapping_sub(first) as usize;
        (skip <= self.responses.len()).then_some(Unpublished { from: published, skip })
    }
}

/// A queue as connected: its frontend's rings and ports and how far netback got on each ring.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SavedQueue {
    /// The frontend's rings and ports.
    pub config: QueueConfig,
    /// The transmit ring.
    pub tx: SavedRing,
    /// The receive ring.
    pub rx: SavedRing,
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
                for word in [c.tx_ring_ref, c.rx_ring_ref, c.tx_port, c.rx_port] {
                    out.extend_from_slice(&word.to_le_bytes());
                }
                for ring in [&queue.tx, &queue.rx] {
                    out.extend_from_slice(&ring.consumer.to_le_bytes());
                    out.extend_from_slice(&(ring.responses.len() as u16).to_le_bytes());
                    ring.responses.iter().for_each(|response| out.extend_from_slice(response));
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
            let domain = u16::from_le_bytes(reader.bytes()?);
            let devid = reader.u32()?;
            let mac = reader.bytes()?;
            let [bits] = reader.bytes()?;
            let [queues] = reader.bytes()?;
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
                let mut word = [0; 4];
                for value in &mut word {
                    *value = reader.u32()?;
                }
                let [tx_ring_ref, rx_ring_ref, tx_port, rx_port] = word;
                let config = QueueConfig { tx_ring_ref, rx_ring_ref, tx_port, rx_port };
                let tx = reader.ring()?;
                let rx = reader.ring()?;
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

/// The state's fields, each [`DecodeError::Truncated`] if the bytes end first.
impl Reader<'_> {
    fn bytes<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        self.take().ok_or(DecodeError::Truncated)
    }

    fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_le_bytes(self.bytes()?))
    }

    fn ring(&mut self) -> Result<SavedRing, DecodeError> {
        let consumer = self.u32()?;
        let count = usize::from(u16::from_le_bytes(self.bytes()?));
        if count > MAX_PENDING {
            return Err(DecodeError::Count);
        }
        let mut responses = Vec::with_capacity(count);
        for _ in 0..count {
            responses.push(self.bytes()?);
        }
        Ok(SavedRing { consumer, responses })
    }
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
            tx: SavedRing {
                consumer: base.wrapping_mul(1000),
                responses: vec![[base as u8; 8]; 3],
            },
            rx: SavedRing { consumer: u32::MAX - base, responses: Vec::new() },
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
        // Its first ring's response count: the queue count, four words, the consumer.
        let mut pending = bytes.clone();
        pending[at + 1 + 16 + 4..at + 1 + 16 + 6].copy_from_slice(&257u16.to_le_bytes());
        assert_eq!(Saved::decode(&pending), Err(DecodeError::Count));
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
    fn only_the_unpublished_responses_of_the_round_are_written_again() {
        let ring = SavedRing { consumer: 110, responses: vec![[0; 8]; 10] };
        // Nothing of the round published: all ten, from its first slot.
        assert_eq!(ring.unpublished(100), Some(Unpublished { from: 100, skip: 0 }));
        // All of it published: none.
        assert_eq!(ring.unpublished(110), Some(Unpublished { from: 110, skip: 10 }));
        // Part of it: from there on only (the slots before may hold new requests).
        assert_eq!(ring.unpublished(104), Some(Unpublished { from: 104, skip: 4 }));
        // Outside the round: the frontend wrote the backend's index.
        assert_eq!(ring.unpublished(99), None);
        assert_eq!(ring.unpublished(111), None);
        // Across the index wrap.
        let wrapped = SavedRing { consumer: 3, responses: vec![[0; 8]; 5] };
        assert_eq!(
            wrapped.unpublished(u32::MAX - 1),
            Some(Unpublished { from: u32::MAX - 1, skip: 0 })
        );
        assert_eq!(wrapped.unpublished(1), Some(Unpublished { from: 1, skip: 3 }));
    }
}
