//! A learning Ethernet switch over the backend's vifs: which vif a frame goes to, from the
//! source addresses seen on each (IEEE 802.1D's transparent bridge: learn the source, forward
//! a known unicast destination to its port, flood the rest; Linux's bridge,
//! `net/bridge/br_fdb.c` and `br_forward.c`, and Xen's usual `vif-bridge` setup do the same).
//!
//! Rules:
//! - Sources learned: individual (unicast) addresses only. A group address (the I/G bit, bit 0
//!   of the first octet, set: multicast and broadcast) or the all-zero address is never a
//!   station's, so it is ignored (Linux: `br_fdb_update` is only reached for
//!   `is_valid_ether_addr` sources).
//! - A source seen on another vif moves there (a guest migrated or was rebuilt); seeing it
//!   again refreshes its age.
//! - Routes: a group destination, or one not learned, floods to every vif but the sender; a
//!   learned destination goes to its vif; a destination learned on the sender itself is
//!   dropped (Linux's bridge does not send a frame back out of the port it came in on). A
//!   destination learned on a vif that is no longer among the live vifs floods, as unknown.
//! - The table is bounded: at [`Switch::capacity`] entries, learning a new address evicts the
//!   least recently learned or refreshed one (no timers: the table never grows and a guest
//!   flooding random sources only costs other guests flooding until they are seen again).
//!
//! The table is part of the preserved state ([`Switch::encode`] / [`Switch::decode`]), so a
//! restarted netback forwards at once instead of flooding. Format, version 1, little-endian:
//! `version u8 | capacity u32 | count u32 | clock u64 | count × (mac [6] | domain u16 |
//! devid u32 | stamp u64)`, entries in address order.
//!
//! # Invariants
//! - At most `capacity` entries; no entry holds a group or all-zero address.
//! - Every entry's stamp is unique and below `clock`, so "oldest" is well defined.
//! - [`Switch::decode`] never panics and accepts only tables [`Switch::encode`] could write.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;

/// A backend vif: the frontend's domain and its `vif` device id (`device/vif/<devid>`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct VifId {
    /// The frontend's domain.
    pub domain: u16,
    /// The device id.
    pub devid: u32,
}

/// Where a frame goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    /// To this vif alone.
    Unicast(VifId),
    /// To each of these vifs (every live vif but the sender).
    Flood(Vec<VifId>),
    /// Nowhere: the destination is on the sender's own vif.
    Drop,
}

/// Why preserved bytes are not a switch table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// The bytes end before the table does.
    Truncated,
    /// A format version this build does not read.
    Version(u8),
    /// Well-formed bytes describing a table [`Switch`] cannot hold.
    Invalid(&'static str),
}

/// The format version [`Switch::encode`] writes.
pub const FORMAT_VERSION: u8 = 1;
/// Bytes of the encoding's fixed part.
pub const FIXED: usize = 1 + 4 + 4 + 8;
/// Bytes of one encoded entry.
pub const ENTRY: usize = 6 + 2 + 4 + 8;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Entry {
    vif: VifId,
    stamp: u64,
}

/// The learning table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Switch {
    capacity: usize,
    by_mac: BTreeMap<[u8; 6], Entry>,
    by_age: BTreeMap<u64, [u8; 6]>,
    clock: u64,
}

/// A group (multicast or broadcast) address: bit 0 of the first octet.
pub fn is_group(mac: [u8; 6]) -> bool {
    mac[0] & 1 != 0
}

impl Switch {
    /// An empty table of at most `capacity` addresses.
    pub fn new(capacity: usize) -> Self {
        Self { capacity, by_mac: BTreeMap::new(), by_age: BTreeMap::new(), clock: 0 }
    }

    /// The most addresses it holds.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Addresses learned.
    pub fn len(&self) -> usize {
        self.by_mac.len()
    }

    /// Whether nothing is learned.
    pub fn is_empty(&self) -> bool {
        self.by_mac.is_empty()
    }

    /// The vif `mac` was learned on.
    pub fn lookup(&self, mac: [u8; 6]) -> Option<VifId> {
        self.by_mac.get(&mac).map(|entry| entry.vif)
    }

    /// Learns that `src` is on `from` (a frame's source address).
    pub fn learn(&mut self, src: [u8; 6], from: VifId) {
        if is_group(src) || src == [0; 6] || self.capacity == 0 {
            return;
        }
        if self.clock == u64::MAX {
            self.renumber();
        }
        let stamp = self.clock;
        self.clock += 1;
        if let Some(old) = self.by_mac.insert(src, Entry { vif: from, stamp }) {
            self.by_age.remove(&old.stamp);
        } else if self.by_mac.len() > self.capacity {
            if let Some((_, oldest)) = self.by_age.pop_first() {
                self.by_mac.remove(&oldest);
            }
        }
        self.by_age.insert(stamp, src);
    }

    /// Gives the entries the stamps 0.. in age order (only when the clock would overflow, as a
    /// decoded table's clock may be near it).
    fn renumber(&mut self) {
        let ages = core::mem::take(&mut self.by_age);
        for (stamp, (_, mac)) in ages.into_iter().enumerate() {
            let stamp = stamp as u64;
            if let Some(entry) = self.by_mac.get_mut(&mac) {
                entry.stamp = stamp;
            }
            self.by_age.insert(stamp, mac);
        }
        self.clock = self.by_age.len() as u64;
    }

    /// Where a frame to `dst` that came in on `from` goes, among the live `vifs`.
    pub fn route(&self, dst: [u8; 6], from: VifId, vifs: impl Iterator<Item = VifId>) -> Route {
        let known = if is_group(dst) { None } else { self.lookup(dst) };
        if known == Some(from) {
            return Route::Drop;
        }
        let others: Vec<VifId> = vifs.filter(|&vif| vif != from).collect();
        match known {
            Some(vif) if others.contains(&vif) => Route::Unicast(vif),
            _ => Route::Flood(others),
        }
    }

    /// Forgets every address learned on `vif` (it went away).
    pub fn forget(&mut self, vif: VifId) {
        let by_age = &mut self.by_age;
        self.by_mac.retain(|_, entry| {
            let keep = entry.vif != vif;
            if !keep {
                by_age.remove(&entry.stamp);
            }
            keep
        });
    }

    /// Appends the table's encoding (the module doc's format) to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.push(FORMAT_VERSION);
        out.extend_from_slice(&(self.capacity as u32).to_le_bytes());
        out.extend_from_slice(&(self.by_mac.len() as u32).to_le_bytes());
        out.extend_from_slice(&self.clock.to_le_bytes());
        for (mac, entry) in &self.by_mac {
            out.extend_from_slice(mac);
            out.extend_from_slice(&entry.vif.domain.to_le_bytes());
            out.extend_from_slice(&entry.vif.devid.to_le_bytes());
            out.extend_from_slice(&entry.stamp.to_le_bytes());
        }
    }

    /// The table `bytes` encode, all of them; checked as the module's invariants say.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut reader = crate::reader::Reader(bytes);
        let version = reader.take::<1>().ok_or(DecodeError::Truncated)?[0];
        if version != FORMAT_VERSION {
            return Err(DecodeError::Version(version));
        }
        let capacity = u32::from_le_bytes(reader.take().ok_or(DecodeError::Truncated)?) as usize;
        let count = u32::from_le_bytes(reader.take().ok_or(DecodeError::Truncated)?) as usize;
        let clock = u64::from_le_bytes(reader.take().ok_or(DecodeError::Truncated)?);
        if count > capacity {
            return Err(DecodeError::Invalid("more entries than the capacity"));
        }
        if reader.0.len() / ENTRY < count {
            return Err(DecodeError::Truncated);
        }
        let mut switch = Self { capacity, by_mac: BTreeMap::new(), by_age: BTreeMap::new(), clock };
        let mut previous: Option<[u8; 6]> = None;
        for _ in 0..count {
            let mac = reader.take::<6>().ok_or(DecodeError::Truncated)?;
            let domain = u16::from_le_bytes(reader.take().ok_or(DecodeError::Truncated)?);
            let devid = u32::from_le_bytes(reader.take().ok_or(DecodeError::Truncated)?);
            let stamp = u64::from_le_bytes(reader.take().ok_or(DecodeError::Truncated)?);
            if is_group(mac) || mac == [0; 6] {
                return Err(DecodeError::Invalid("a group or all-zero address learned"));
            }
            if previous.is_some_and(|p| p >= mac) {
                return Err(DecodeError::Invalid("addresses not in ascending order"));
            }
            if stamp >= clock || switch.by_age.insert(stamp, mac).is_some() {
                return Err(DecodeError::Invalid("an entry's age is repeated or in the future"));
            }
            switch.by_mac.insert(mac, Entry { vif: VifId { domain, devid }, stamp });
            previous = Some(mac);
        }
        if !reader.0.is_empty() {
            return Err(DecodeError::Invalid("bytes after the table"));
        }
        Ok(switch)
    }
}

#[cfg(test)]
mod tests;
