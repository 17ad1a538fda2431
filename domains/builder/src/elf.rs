//! Reading a domain's ELF image: the loadable segments and the entry point, checked before a
//! byte is copied (the ELF-64 object file format, as the System V gABI and the Arm AArch64 ELF
//! supplement give it).
//!
//! # Invariants
//! - Every segment's file bytes lie inside the image and its memory range does not wrap.
//! - `memsz >= filesz` for every segment; the remainder is zero-filled by the loader.
//! - Only little-endian ELF64 executables for AArch64 (`EM_AARCH64` = 183) are accepted.

use core::fmt;

/// Most loadable segments accepted.
pub const MAX_SEGMENTS: usize = 16;

const PT_LOAD: u32 = 1;
const ET_EXEC: u16 = 2;
const EM_AARCH64: u16 = 183;

/// One loadable segment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Segment {
    /// Where it goes in the domain's physical address space (`p_paddr`).
    pub address: u64,
    /// Offset of its bytes in the file.
    pub file_offset: u64,
    /// Bytes taken from the file.
    pub file_size: u64,
    /// Bytes in memory (the rest zeroed).
    pub memory_size: u64,
}

/// A checked ELF image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ElfImage {
    /// `e_entry`.
    pub entry: u64,
    segments: [Segment; MAX_SEGMENTS],
    count: usize,
}

/// Why an image was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ElfError {
    /// Not an ELF file, or not ELF64 little-endian.
    NotElf64,
    /// Not an AArch64 executable.
    WrongKind {
        /// `e_machine`.
        machine: u16,
        /// `e_type`.
        kind: u16,
    },
    /// A header or segment lies outside the file or wraps.
    Truncated,
    /// More than [`MAX_SEGMENTS`] loadable segments.
    TooManySegments,
    /// No loadable segment.
    NoSegments,
    /// A segment's file size exceeds its memory size.
    BadSegment {
        /// Its index in the program header table.
        index: usize,
    },
    /// A segment does not fit the RAM it must go into.
    OutsideRam {
        /// The segment's address (`p_paddr`).
        address: u64,
        /// Its memory size (`p_memsz`).
        size: u64,
    },
    /// The entry point is in no segment.
    EntryOutside {
        /// `e_entry`.
        entry: u64,
    },
}

impl fmt::Display for ElfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::NotElf64 => write!(f, "not a little-endian ELF64 file"),
            Self::WrongKind { machine, kind } => write!(
                f,
                "ELF machine {machine}, type {kind}: expected an AArch64 (183) executable (2)"
            ),
            Self::Truncated => {
                write!(f, "the ELF file is truncated or its headers point outside it")
            }
            Self::TooManySegments => write!(f, "more than {MAX_SEGMENTS} loadable segments"),
            Self::NoSegments => write!(f, "no loadable segment"),
            Self::BadSegment { index } => {
                write!(f, "segment {index} has more file bytes than memory bytes")
            }
            Self::OutsideRam { address, size } => write!(
                f,
                "segment at {address:#x} ({size:#x} bytes) does not fit in the domain's RAM"
            ),
            Self::EntryOutside { entry } => write!(f, "entry point {entry:#x} is in no segment"),
        }
    }
}

impl core::error::Error for ElfError {}

fn read<const N: usize>(bytes: &[u8], offset: u64) -> Result<[u8; N], ElfError> {
    let start = usize::try_from(offset).map_err(|_| ElfError::Truncated)?;
    let end = start.checked_add(N).ok_or(ElfError::Truncated)?;
    let slice = bytes.get(start..end).ok_or(ElfError::Truncated)?;
    let mut out = [0; N];
    out.copy_from_slice(slice);
    Ok(out)
}

fn u16_at(bytes: &[u8], offset: u64) -> Result<u16, ElfError> {
    Ok(u16::from_le_bytes(read(bytes, offset)?))
}

fn u32_at(bytes: &[u8], offset: u64) -> Result<u32, ElfError> {
    Ok(u32::from_le_bytes(read(bytes, offset)?))
}

fn u64_at(bytes: &[u8], offset: u64) -> Result<u64, ElfError> {
    Ok(u64::from_le_bytes(read(bytes, offset)?))
}

impl ElfImage {
    /// Checks `bytes` and lists its loadable segments.
    pub fn parse(bytes: &[u8]) -> Result<Self, ElfError> {
        if bytes.get(..6) != Some(b"\x7fELF\x02\x01".as_slice()) {
            return Err(ElfError::NotElf64);
        }
        let kind = u16_at(bytes, 0x10)?;
        let machine = u16_at(bytes, 0x12)?;
        if kind != ET_EXEC || machine != EM_AARCH64 {
            return Err(ElfError::WrongKind { machine, kind });
        }
        let entry = u64_at(bytes, 0x18)?;
        let phoff = u64_at(bytes, 0x20)?;
        let phentsize = u64::from(u16_at(bytes, 0x36)?);
        let phnum = u64::from(u16_at(bytes, 0x38)?);
        if phentsize < 56 {
            return Err(ElfError::Truncated);
        }
        let mut image = Self { entry, segments: [Segment::default(); MAX_SEGMENTS], count: 0 };
        for index in 0..phnum {
            let header = phoff.checked_add(index * phentsize).ok_or(ElfError::Truncated)?;
            if u32_at(bytes, header)? != PT_LOAD {
                continue;
            }
            let segment = Segment {
                file_offset: u64_at(bytes, header + 8)?,
                address: u64_at(bytes, header + 24)?,
                file_size: u64_at(bytes, header + 32)?,
                memory_size: u64_at(bytes, header + 40)?,
            };
            if segment.memory_size == 0 {
                continue;
            }
            if segment.file_size > segment.memory_size {
                return Err(ElfError::BadSegment { index: index as usize });
            }
            let file_end =
                segment.file_offset.checked_add(segment.file_size).ok_or(ElfError::Truncated)?;
            if file_end > bytes.len() as u64
                || segment.address.checked_add(segment.memory_size).is_none()
            {
                return Err(ElfError::Truncated);
            }
            if image.count == MAX_SEGMENTS {
                return Err(ElfError::TooManySegments);
            }
            image.segments[image.count] = segment;
            image.count += 1;
        }
        if image.count == 0 {
            return Err(ElfError::NoSegments);
        }
        if !image.segments().iter().any(|s| s.address <= entry && entry < s.address + s.memory_size)
        {
            return Err(ElfError::EntryOutside { entry });
        }
        Ok(image)
    }

    /// The loadable segments.
    pub fn segments(&self) -> &[Segment] {
        &self.segments[..self.count]
    }

    /// Checks every segment lies inside `[base, base + size)`.
    pub fn check_fits(&self, base: u64, size: u64) -> Result<(), ElfError> {
        for segment in self.segments() {
            let end = segment.address + segment.memory_size;
            if segment.address < base || end > base.saturating_add(size) {
                return Err(ElfError::OutsideRam {
                    address: segment.address,
                    size: segment.memory_size,
                });
            }
        }
        Ok(())
    }

    /// The highest address any segment reaches.
    pub fn end(&self) -> u64 {
        self.segments().iter().map(|s| s.address + s.memory_size).max().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal AArch64 executable: one PT_LOAD of `code` at `address`, entry at `address`.
    fn elf(address: u64, code: &[u8], memory_size: u64) -> Vec<u8> {
        let mut bytes = vec![0u8; 0x78];
        bytes[..6].copy_from_slice(b"\x7fELF\x02\x01");
        bytes[0x10..0x12].copy_from_slice(&ET_EXEC.to_le_bytes());
        bytes[0x12..0x14].copy_from_slice(&EM_AARCH64.to_le_bytes());
        bytes[0x18..0x20].copy_from_slice(&address.to_le_bytes());
        bytes[0x20..0x28].copy_from_slice(&0x40u64.to_le_bytes());
        bytes[0x36..0x38].copy_from_slice(&56u16.to_le_bytes());
        bytes[0x38..0x3a].copy_from_slice(&1u16.to_le_bytes());
        let header = 0x40;
        bytes[header..header + 4].copy_from_slice(&PT_LOAD.to_le_bytes());
        bytes[header + 8..header + 16].copy_from_slice(&0x78u64.to_le_bytes());
        bytes[header + 16..header + 24].copy_from_slice(&address.to_le_bytes());
        bytes[header + 24..header + 32].copy_from_slice(&address.to_le_bytes());
        bytes[header + 32..header + 40].copy_from_slice(&(code.len() as u64).to_le_bytes());
        bytes[header + 40..header + 48].copy_from_slice(&memory_size.to_le_bytes());
        bytes.extend_from_slice(code);
        bytes
    }

    #[test]
    fn reads_a_minimal_executable() {
        let bytes = elf(0x4000_0000, &[1, 2, 3, 4], 0x2000);
        let image = ElfImage::parse(&bytes).unwrap();
        assert_eq!(image.entry, 0x4000_0000);
        assert_eq!(
            image.segments(),
            &[Segment {
                address: 0x4000_0000,
                file_offset: 0x78,
                file_size: 4,
                memory_size: 0x2000
            }]
        );
        assert_eq!(image.end(), 0x4000_2000);
        assert!(image.check_fits(0x4000_0000, 0x10_0000).is_ok());
        assert_eq!(
            image.check_fits(0x4000_0000, 0x1000),
            Err(ElfError::OutsideRam { address: 0x4000_0000, size: 0x2000 })
        );
    }

    #[test]
    fn refuses_bad_images() {
        assert_eq!(ElfImage::parse(b"not an elf"), Err(ElfError::NotElf64));
        let good = elf(0x4000_0000, &[0; 8], 0x1000);
        let mut bad = good.clone();
        bad[0x12] = 62; // x86-64
        assert!(matches!(ElfImage::parse(&bad), Err(ElfError::WrongKind { machine: 62, .. })));
        assert_eq!(ElfImage::parse(&good[..0x50]), Err(ElfError::Truncated));
        let bad = elf(0x4000_0000, &[0; 8], 4);
        assert_eq!(ElfImage::parse(&bad), Err(ElfError::BadSegment { index: 0 }));
        let mut bad = good.clone();
        bad[0x18..0x20].copy_from_slice(&0x5000_0000u64.to_le_bytes());
        assert_eq!(ElfImage::parse(&bad), Err(ElfError::EntryOutside { entry: 0x5000_0000 }));
        let mut bad = good.clone();
        bad[0x40..0x44].copy_from_slice(&6u32.to_le_bytes()); // PT_PHDR, so nothing loadable
        assert_eq!(ElfImage::parse(&bad), Err(ElfError::NoSegments));
        let mut bad = good.clone();
        bad[0x40 + 8..0x40 + 16].copy_from_slice(&u64::MAX.to_le_bytes());
        assert_eq!(ElfImage::parse(&bad), Err(ElfError::Truncated));
        let mut bad = good;
        bad[0x40 + 24..0x40 + 32].copy_from_slice(&(u64::MAX - 8).to_le_bytes());
        assert_eq!(ElfImage::parse(&bad), Err(ElfError::Truncated));
    }
}
