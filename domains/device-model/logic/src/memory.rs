//! The target's RAM as the device model sees it. The domain implements [`GuestMemory`] over
//! its foreign mappings of the target (or granted pages); the tests over a `Vec`.
//!
//! Every field of a virtqueue is little-endian (virtio 1.2 §2.4 and §2.7: `le16`, `le32`,
//! `le64`), so the helpers here read and write little-endian only.
//!
//! # Invariants
//! - An access that reaches outside RAM fails with [`OutsideRam`] and never panics; a failed
//!   write changes nothing.

/// An access that does not lie wholly in the target's RAM.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutsideRam {
    /// Its first guest-physical address.
    pub address: u64,
    /// Its length in bytes.
    pub length: u64,
}

/// The target's RAM, addressed guest-physically.
pub trait GuestMemory {
    /// Fills `buffer` from `address` on, or fails if any of those bytes is not RAM.
    fn read(&self, address: u64, buffer: &mut [u8]) -> Result<(), OutsideRam>;
    /// Writes `bytes` from `address` on, or fails (writing nothing) if any of those bytes is
    /// not RAM.
    fn write(&mut self, address: u64, bytes: &[u8]) -> Result<(), OutsideRam>;
    /// Whether all of `length` bytes from `address` are RAM (false if the range wraps).
    fn contains(&self, address: u64, length: u64) -> bool;
}

/// A little-endian `u16` at `address`.
pub(crate) fn read_u16<M: GuestMemory + ?Sized>(
    memory: &M,
    address: u64,
) -> Result<u16, OutsideRam> {
    let mut bytes = [0; 2];
    memory.read(address, &mut bytes)?;
    Ok(u16::from_le_bytes(bytes))
}

/// A little-endian `u32` at `address`.
pub(crate) fn read_u32<M: GuestMemory + ?Sized>(
    memory: &M,
    address: u64,
) -> Result<u32, OutsideRam> {
    let mut bytes = [0; 4];
    memory.read(address, &mut bytes)?;
    Ok(u32::from_le_bytes(bytes))
}

/// A little-endian `u64` at `address`.
pub(crate) fn read_u64<M: GuestMemory + ?Sized>(
    memory: &M,
    address: u64,
) -> Result<u64, OutsideRam> {
    let mut bytes = [0; 8];
    memory.read(address, &mut bytes)?;
    Ok(u64::from_le_bytes(bytes))
}

/// RAM in a `Vec` from `base` on, for the host tests and the fuzz target.
#[derive(Clone, Debug)]
pub struct VecMemory {
    /// The guest-physical address of `bytes[0]`.
    pub base: u64,
    /// The RAM.
    pub bytes: alloc::vec::Vec<u8>,
}

impl VecMemory {
    /// `length` zero bytes from `base` on.
    pub fn new(base: u64, length: usize) -> Self {
        Self { base, bytes: alloc::vec![0; length] }
    }

    fn range(&self, address: u64, length: u64) -> Option<core::ops::Range<usize>> {
        let start = address.checked_sub(self.base)?;
        let end = start.checked_add(length)?;
        (end <= self.bytes.len() as u64).then_some(start as usize..end as usize)
    }
}

#[cfg(test)]
impl VecMemory {
    /// Test helpers: little-endian stores and loads that must succeed.
    pub fn put_u16(&mut self, address: u64, value: u16) {
        self.write(address, &value.to_le_bytes()).unwrap();
    }
    pub fn put_u32(&mut self, address: u64, value: u32) {
        self.write(address, &value.to_le_bytes()).unwrap();
    }
    pub fn put_u64(&mut self, address: u64, value: u64) {
        self.write(address, &value.to_le_bytes()).unwrap();
    }
    pub fn get_u16(&self, address: u64) -> u16 {
        read_u16(self, address).unwrap()
    }
    pub fn get_u32(&self, address: u64) -> u32 {
        read_u32(self, address).unwrap()
    }
}

impl GuestMemory for VecMemory {
    fn read(&self, address: u64, buffer: &mut [u8]) -> Result<(), OutsideRam> {
        let length = buffer.len() as u64;
        let range = self.range(address, length).ok_or(OutsideRam { address, length })?;
        buffer.copy_from_slice(&self.bytes[range]);
        Ok(())
    }

    fn write(&mut self, address: u64, bytes: &[u8]) -> Result<(), OutsideRam> {
        let length = bytes.len() as u64;
        let range = self.range(address, length).ok_or(OutsideRam { address, length })?;
        self.bytes[range].copy_from_slice(bytes);
        Ok(())
    }

    fn contains(&self, address: u64, length: u64) -> bool {
        self.range(address, length).is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accesses_outside_ram_fail_and_change_nothing() {
        let mut memory = VecMemory::new(0x1000, 16);
        assert!(memory.write(0x1000, &[1; 16]).is_ok());
        assert_eq!(memory.write(0x100f, &[2; 2]), Err(OutsideRam { address: 0x100f, length: 2 }));
        assert_eq!(memory.bytes, [1; 16]);
        let mut buffer = [0; 4];
        assert!(memory.read(0xfff, &mut buffer).is_err());
        assert!(memory.read(u64::MAX - 1, &mut buffer).is_err());
        assert!(!memory.contains(0x1008, u64::MAX));
        assert!(memory.contains(0x1000, 16));
        assert!(!memory.contains(0x1000, 17));
        assert_eq!(read_u64(&memory, 0x1008), Ok(0x0101_0101_0101_0101));
    }
}
