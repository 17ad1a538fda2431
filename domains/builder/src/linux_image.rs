//! Reading an arm64 Linux `Image`: the 64-byte header at the start of the decompressed kernel,
//! checked before a byte is placed (Linux `Documentation/arch/arm64/booting.rst`, section 4,
//! "Call the kernel image", and its header notes).
//!
//! The header, every field little-endian:
//!
//! | offset | size | field                                                             |
//! |--------|------|-------------------------------------------------------------------|
//! | 0x00   | 4    | `code0`, executable code (or the start of an EFI "MZ" header)     |
//! | 0x04   | 4    | `code1`, executable code                                          |
//! | 0x08   | 8    | `text_offset`, where the image goes above a 2 MiB aligned base    |
//! | 0x10   | 8    | `image_size`, bytes from the image's start the kernel needs       |
//! | 0x18   | 8    | `flags`                                                           |
//! | 0x20   | 24   | `res2`..`res4`, reserved                                          |
//! | 0x38   | 4    | `magic`, 0x644d5241 (`"ARM\x64"`)                                 |
//! | 0x3c   | 4    | `res5`, the offset of the PE/COFF header when the image is EFI's  |
//!
//! booting.rst, on loading: the image is placed `text_offset` bytes above a 2 MiB aligned base
//! and entered at its first byte; at least `image_size` bytes from its start must be free for
//! the kernel (the file holds less: `image_size` also covers the kernel's zeroed data). A header
//! whose `image_size` is zero comes from a kernel older than v3.17, whose `text_offset` is of
//! unknown endianness: it is then taken to be 0x80000. The kernel has no decompressor of its own:
//! a compressed `Image.gz` must be decompressed by whoever loads it.
//!
//! # Invariants
//! - An accepted image is little-endian, at least a header long, carries the magic, has a
//!   4 KiB aligned `text_offset`, and an `image_size` (when given) no smaller than the file.
//! - [`LinuxImage::footprint`] is never smaller than the file.

use core::fmt;

/// Size of the header (booting.rst: "The decompressed kernel image contains a 64-byte header").
pub const HEADER_SIZE: usize = 64;
/// `magic` at [`MAGIC_OFFSET`]: `"ARM\x64"` read as a little-endian `u32` (booting.rst).
pub const MAGIC: u32 = 0x644d_5241;
/// Where `magic` sits in the header (booting.rst).
pub const MAGIC_OFFSET: usize = 0x38;
/// The `text_offset` of a pre-v3.17 kernel, whose header has `image_size` zero (booting.rst:
/// where `image_size` is zero, `text_offset` can be assumed to be 0x80000).
pub const LEGACY_TEXT_OFFSET: u64 = 0x8_0000;
/// Alignment `text_offset` must have: one 4 KiB page. booting.rst places the image at
/// `text_offset` from a 2 MiB aligned base; a kernel needs at least its smallest page
/// alignment there.
pub const TEXT_OFFSET_ALIGN: u64 = 0x1000;
/// The first two bytes of every gzip stream (RFC 1952, section 2.3.1, `ID1` and `ID2`).
pub const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

const TEXT_OFFSET_AT: usize = 0x08;
const IMAGE_SIZE_AT: usize = 0x10;
const FLAGS_AT: usize = 0x18;
/// `flags` bit 0 (booting.rst): kernel endianness, 1 big-endian, 0 little-endian.
const FLAG_BIG_ENDIAN: u64 = 1 << 0;
/// `flags` bits 1-2 (booting.rst): kernel page size.
const FLAG_PAGE_SIZE_SHIFT: u64 = 1;
/// `flags` bit 3 (booting.rst): 1 if the 2 MiB aligned base may be anywhere in physical memory,
/// 0 if it should be as close as possible to the start of RAM.
const FLAG_PLACEMENT_ANYWHERE: u64 = 1 << 3;

/// The page size a kernel was built with (`flags` bits 1-2, booting.rst).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PageSize {
    /// 0: not stated.
    Unspecified,
    /// 1: 4 KiB.
    Kib4,
    /// 2: 16 KiB.
    Kib16,
    /// 3: 64 KiB.
    Kib64,
}

/// A checked arm64 Linux `Image`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinuxImage {
    /// Where the image goes above a 2 MiB aligned base: the header's, or
    /// [`LEGACY_TEXT_OFFSET`] for a pre-v3.17 header.
    pub text_offset: u64,
    /// The header's `image_size`; zero for a pre-v3.17 kernel.
    pub image_size: u64,
    /// Bytes in the file.
    pub file_size: u64,
    /// The kernel's page size.
    pub page_size: PageSize,
    /// `flags` bit 3: the 2 MiB aligned base may be anywhere in RAM, not only near its start.
    pub placement_anywhere: bool,
}

/// Why an image was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImageError {
    /// The file is a gzip stream (an `Image.gz`).
    Gzip,
    /// The file is shorter than the header.
    Truncated {
        /// Bytes in the file.
        length: usize,
    },
    /// The magic at offset 0x38 is not [`MAGIC`].
    BadMagic {
        /// What is there, read little-endian.
        magic: u32,
    },
    /// `flags` bit 0 says the kernel is big-endian.
    BigEndian,
    /// `text_offset` is not a multiple of [`TEXT_OFFSET_ALIGN`].
    TextOffsetMisaligned {
        /// The header's `text_offset`.
        text_offset: u64,
    },
    /// `image_size` is non-zero but smaller than the file.
    SizeBelowFile {
        /// The header's `image_size`.
        image_size: u64,
        /// Bytes in the file.
        file_size: u64,
    },
}

impl fmt::Display for ImageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Gzip => write!(
                f,
                "the kernel is gzip-compressed (an Image.gz); arm64 Linux does not decompress \
                 itself, so decompress it first (gunzip) and give the plain Image"
            ),
            Self::Truncated { length } => write!(
                f,
                "the file is {length} bytes long, shorter than the {HEADER_SIZE}-byte arm64 Image \
                 header"
            ),
            Self::BadMagic { magic } => write!(
                f,
                "the arm64 Image magic at offset {MAGIC_OFFSET:#x} is {magic:#010x}, not \
                 {MAGIC:#010x} (\"ARM\\x64\"): this is not an arm64 Linux Image"
            ),
            Self::BigEndian => write!(
                f,
                "the kernel was built big-endian (Image flags bit 0); only little-endian kernels \
                 are supported"
            ),
            Self::TextOffsetMisaligned { text_offset } => write!(
                f,
                "the Image's text_offset {text_offset:#x} is not a multiple of \
                 {TEXT_OFFSET_ALIGN:#x} (4 KiB)"
            ),
            Self::SizeBelowFile { image_size, file_size } => write!(
                f,
                "the Image header's image_size {image_size:#x} is smaller than the file \
                 ({file_size:#x} bytes): the header is wrong or the file has something appended"
            ),
        }
    }
}

impl core::error::Error for ImageError {}

/// Whether `bytes` look like an arm64 Image, compressed (gzip) or not: what [`LinuxImage::parse`]
/// should judge, so that a compressed or damaged one gets its own error rather than "unknown
/// format".
pub fn looks_like_image(bytes: &[u8]) -> bool {
    bytes.starts_with(&GZIP_MAGIC) || u32_at(bytes, MAGIC_OFFSET) == Some(MAGIC)
}

fn u32_at(bytes: &[u8], offset: usize) -> Option<u32> {
    let field = bytes.get(offset..offset.checked_add(4)?)?;
    Some(u32::from_le_bytes(field.try_into().ok()?))
}

fn u64_at(bytes: &[u8], offset: usize) -> Option<u64> {
    let field = bytes.get(offset..offset.checked_add(8)?)?;
    Some(u64::from_le_bytes(field.try_into().ok()?))
}

impl LinuxImage {
    /// Checks `bytes` (the whole file) and reads its header.
    pub fn parse(bytes: &[u8]) -> Result<Self, ImageError> {
        if bytes.starts_with(&GZIP_MAGIC) {
            return Err(ImageError::Gzip);
        }
        let truncated = ImageError::Truncated { length: bytes.len() };
        if bytes.len() < HEADER_SIZE {
            return Err(truncated);
        }
        let magic = u32_at(bytes, MAGIC_OFFSET).ok_or(truncated)?;
        if magic != MAGIC {
            return Err(ImageError::BadMagic { magic });
        }
        let flags = u64_at(bytes, FLAGS_AT).ok_or(truncated)?;
        if flags & FLAG_BIG_ENDIAN != 0 {
            return Err(ImageError::BigEndian);
        }
        let image_size = u64_at(bytes, IMAGE_SIZE_AT).ok_or(truncated)?;
        let file_size = bytes.len() as u64;
        let text_offset = if image_size == 0 {
            LEGACY_TEXT_OFFSET
        } else {
            u64_at(bytes, TEXT_OFFSET_AT).ok_or(truncated)?
        };
        if text_offset % TEXT_OFFSET_ALIGN != 0 {
            return Err(ImageError::TextOffsetMisaligned { text_offset });
        }
        if image_size != 0 && image_size < file_size {
            return Err(ImageError::SizeBelowFile { image_size, file_size });
        }
        let page_size = match (flags >> FLAG_PAGE_SIZE_SHIFT) & 0b11 {
            1 => PageSize::Kib4,
            2 => PageSize::Kib16,
            3 => PageSize::Kib64,
            _ => PageSize::Unspecified,
        };
        Ok(Self {
            text_offset,
            image_size,
            file_size,
            page_size,
            placement_anywhere: flags & FLAG_PLACEMENT_ANYWHERE != 0,
        })
    }

    /// Bytes from the image's start the kernel needs free: `image_size`, or for a pre-v3.17
    /// kernel, which does not say, the file's size.
    pub fn footprint(&self) -> u64 {
        if self.image_size == 0 {
            self.file_size
        } else {
            self.image_size
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A header with the given fields, then `body` bytes of 0xaa.
    fn image(text_offset: u64, image_size: u64, flags: u64, body: usize) -> Vec<u8> {
        let mut bytes = vec![0u8; HEADER_SIZE];
        bytes[..4].copy_from_slice(&0x1400_0010u32.to_le_bytes()); // any code0
        bytes[8..16].copy_from_slice(&text_offset.to_le_bytes());
        bytes[16..24].copy_from_slice(&image_size.to_le_bytes());
        bytes[24..32].copy_from_slice(&flags.to_le_bytes());
        bytes[0x38..0x3c].copy_from_slice(b"ARM\x64");
        bytes.resize(HEADER_SIZE + body, 0xaa);
        bytes
    }

    #[test]
    fn the_magic_is_arm_x64() {
        assert_eq!(MAGIC.to_le_bytes(), *b"ARM\x64");
    }

    #[test]
    fn reads_a_valid_header() {
        // Little-endian, 4 KiB pages, placement anywhere: what a current defconfig kernel says.
        let bytes = image(0, 0x20_0000, 0b1010, 0x1000);
        assert!(looks_like_image(&bytes));
        let image = LinuxImage::parse(&bytes).unwrap();
        assert_eq!(
            image,
            LinuxImage {
                text_offset: 0,
                image_size: 0x20_0000,
                file_size: 0x1040,
                page_size: PageSize::Kib4,
                placement_anywhere: true,
            }
        );
        assert_eq!(image.footprint(), 0x20_0000);

        let image = LinuxImage::parse(&self::image(0x8_0000, 0x1040, 0b0110, 0x1000)).unwrap();
        assert_eq!(image.text_offset, 0x8_0000);
        assert_eq!(image.page_size, PageSize::Kib64);
        assert!(!image.placement_anywhere);
        assert_eq!(image.footprint(), 0x1040, "image_size may equal the file's size");
        let image = LinuxImage::parse(&self::image(0, 0x40, 0b0100, 0)).unwrap();
        assert_eq!(image.page_size, PageSize::Kib16);
        assert_eq!(image.footprint(), HEADER_SIZE as u64, "a header alone is an image");
    }

    #[test]
    fn a_zero_image_size_is_an_old_kernel_at_0x80000() {
        // text_offset of a pre-v3.17 header is of unknown endianness and is ignored.
        let bytes = image(0x0000_0800_0000_0000, 0, 0, 0x100);
        let image = LinuxImage::parse(&bytes).unwrap();
        assert_eq!(image.text_offset, LEGACY_TEXT_OFFSET);
        assert_eq!(image.image_size, 0);
        assert_eq!(image.footprint(), 0x140);
        assert_eq!(image.page_size, PageSize::Unspecified);
    }

    #[test]
    fn refuses_gzip() {
        let gzip = [0x1f, 0x8b, 0x08, 0x00, 0, 0, 0, 0, 0, 3];
        assert!(looks_like_image(&gzip));
        assert_eq!(LinuxImage::parse(&gzip), Err(ImageError::Gzip));
        let message = ImageError::Gzip.to_string();
        assert!(message.contains("decompress it first"), "{message}");
    }

    #[test]
    fn refuses_a_truncated_header() {
        let bytes = image(0, 0x1000, 0, 0);
        for length in [0, 1, 0x38, 0x3c, HEADER_SIZE - 1] {
            assert_eq!(
                LinuxImage::parse(&bytes[..length]),
                Err(ImageError::Truncated { length }),
                "{length} bytes"
            );
        }
        assert!(!looks_like_image(&bytes[..0x3b]));
        assert!(looks_like_image(&bytes[..0x3c]));
    }

    #[test]
    fn refuses_a_bad_magic() {
        let mut bytes = image(0, 0x1000, 0, 0x100);
        bytes[0x3b] = 0x65;
        assert!(!looks_like_image(&bytes));
        assert_eq!(LinuxImage::parse(&bytes), Err(ImageError::BadMagic { magic: 0x654d_5241 }));
        // No magic at all.
        assert!(matches!(LinuxImage::parse(&[0u8; 64]), Err(ImageError::BadMagic { magic: 0 })));
    }

    #[test]
    fn refuses_a_big_endian_kernel() {
        assert_eq!(LinuxImage::parse(&image(0, 0x1000, 0b1011, 0x100)), Err(ImageError::BigEndian));
    }

    #[test]
    fn refuses_a_misaligned_text_offset() {
        for text_offset in [0x80, 0x8_0800, u64::MAX] {
            assert_eq!(
                LinuxImage::parse(&image(text_offset, 0x1000, 0, 0x100)),
                Err(ImageError::TextOffsetMisaligned { text_offset })
            );
        }
    }

    #[test]
    fn refuses_an_image_size_below_the_file() {
        assert_eq!(
            LinuxImage::parse(&image(0, 0x100, 0, 0x100)),
            Err(ImageError::SizeBelowFile { image_size: 0x100, file_size: 0x140 })
        );
    }

    #[test]
    fn every_error_has_a_sentence() {
        for error in [
            ImageError::Gzip,
            ImageError::Truncated { length: 3 },
            ImageError::BadMagic { magic: 0 },
            ImageError::BigEndian,
            ImageError::TextOffsetMisaligned { text_offset: 0x80 },
            ImageError::SizeBelowFile { image_size: 1, file_size: 2 },
        ] {
            let message = error.to_string();
            assert!(message.len() > 20 && !message.ends_with('.'), "{message}");
        }
    }
}
