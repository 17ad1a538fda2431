//! The boot bundle: what the host tool packs from a system manifest and the core unpacks at boot.
//!
//! The bundle reaches the core as a boot module (QEMU `-initrd`, found through the DTB's
//! `/chosen/linux,initrd-start|end`). It is Xenolith's own format, not Xen's.
//!
//! ```text
//! offset 0                 40                      40 + manifest_size          40 + payload_size
//!        | BundleHeader    | manifest (postcard)   | modules (domain images)   |
//! ```
//!
//! # Invariants
//! - All integers are little-endian; the header is [`HEADER_SIZE`] bytes and aligned to nothing.
//! - `header_crc32` covers the header bytes before it; `payload_crc32` covers every payload byte.
//! - The manifest fills the first `manifest_size` payload bytes; module offsets in the manifest are
//!   relative to the payload start and lie within the payload.
//! - A bundle whose version is not [`VERSION`] is refused whole: there is no partial compatibility.

use core::fmt;

use serde::{Deserialize, Serialize};
use zerocopy::little_endian::{U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// First eight bytes of every bundle.
pub const MAGIC: [u8; 8] = *b"XNLTHBDL";
/// The only bundle version this build understands.
pub const VERSION: u32 = 1;
/// Size in bytes of [`BundleHeader`].
pub const HEADER_SIZE: usize = core::mem::size_of::<BundleHeader>();
/// Largest bundle the core accepts (1 GiB): a bound on what a corrupt header can make it read.
pub const MAX_BUNDLE_SIZE: u64 = 1 << 30;

/// The fixed header at the start of a bundle.
#[repr(C)]
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct BundleHeader {
    /// [`MAGIC`].
    pub magic: [u8; 8],
    /// [`VERSION`].
    pub version: U32,
    /// [`HEADER_SIZE`]; lets a reader tell a truncated header from a newer one.
    pub header_size: U32,
    /// Bytes of postcard-encoded [`BootManifest`] at the start of the payload.
    pub manifest_size: U32,
    /// Zero.
    pub reserved: U32,
    /// Bytes after the header.
    pub payload_size: U64,
    /// CRC-32 (IEEE) of the payload.
    pub payload_crc32: U32,
    /// CRC-32 (IEEE) of the 36 header bytes before this field.
    pub header_crc32: U32,
}

/// What the core is asked to boot. Strings borrow from the bundle, so decoding needs no heap.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BootManifest<'a> {
    /// The system's name (the manifest file's `[system] name`).
    pub name: &'a str,
    /// The hypervisor command line; `/chosen/bootargs` from the bootloader is applied after it.
    pub cmdline: &'a str,
}

/// Why a bundle was refused. Each says what is wrong in words an operator can act on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BundleError {
    /// Fewer bytes than a header.
    Truncated { size: usize },
    /// The first eight bytes are not [`MAGIC`].
    BadMagic { found: [u8; 8] },
    /// A version this build does not read.
    UnsupportedVersion { found: u32 },
    /// The header's own size field is wrong.
    BadHeaderSize { found: u32 },
    /// The header checksum does not match.
    HeaderChecksum { expected: u32, found: u32 },
    /// The header claims more payload than the boot module holds, or more than [`MAX_BUNDLE_SIZE`].
    PayloadSize { claimed: u64, available: u64 },
    /// The manifest does not fit in the payload.
    ManifestSize { claimed: u32, payload: u64 },
    /// The payload checksum does not match: the bundle was damaged after packing.
    PayloadChecksum { expected: u32, found: u32 },
    /// The manifest bytes do not decode.
    ManifestDecode,
}

impl fmt::Display for BundleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Truncated { size } => {
                write!(f, "boot module of {size} bytes is shorter than a bundle header ({HEADER_SIZE})")
            }
            Self::BadMagic { found } => write!(f, "bad magic {found:02x?}: not a Xenolith boot bundle"),
            Self::UnsupportedVersion { found } => {
                write!(f, "bundle version {found}, this core reads version {VERSION}; rebuild the image")
            }
            Self::BadHeaderSize { found } => {
                write!(f, "bundle header size {found}, expected {HEADER_SIZE}")
            }
            Self::HeaderChecksum { expected, found } => write!(
                f,
                "bundle header checksum mismatch (header says {expected:#010x}, computed {found:#010x})"
            ),
            Self::PayloadSize { claimed, available } => write!(
                f,
                "bundle claims {claimed} payload bytes but only {available} are present"
            ),
            Self::ManifestSize { claimed, payload } => {
                write!(f, "manifest of {claimed} bytes does not fit a {payload}-byte payload")
            }
            Self::PayloadChecksum { expected, found } => write!(
                f,
                "bundle payload checksum mismatch (header says {expected:#010x}, computed \
                 {found:#010x}): the image is corrupt"
            ),
            Self::ManifestDecode => write!(f, "the bundle's manifest does not decode"),
        }
    }
}

/// A bundle whose header and checksums have been checked.
#[derive(Clone, Copy, Debug)]
pub struct Bundle<'a> {
    /// The checked header.
    pub header: BundleHeader,
    /// The decoded manifest.
    pub manifest: BootManifest<'a>,
    /// The whole payload (manifest bytes first), for module offsets.
    pub payload: &'a [u8],
}

impl<'a> Bundle<'a> {
    /// Checks `bytes` (the whole boot module) and decodes its manifest. Nothing is trusted before
    /// it is checked: sizes are bounded by the bytes present before anything is read through them.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, BundleError> {
        let (header, rest) = BundleHeader::read_from_prefix(bytes)
            .map_err(|_| BundleError::Truncated { size: bytes.len() })?;
        if header.magic != MAGIC {
            return Err(BundleError::BadMagic { found: header.magic });
        }
        if header.version.get() != VERSION {
            return Err(BundleError::UnsupportedVersion { found: header.version.get() });
        }
        if header.header_size.get() as usize != HEADER_SIZE {
            return Err(BundleError::BadHeaderSize { found: header.header_size.get() });
        }
        let computed = crc32(&header.as_bytes()[..HEADER_SIZE - 4]);
        if computed != header.header_crc32.get() {
            return Err(BundleError::HeaderChecksum {
                expected: header.header_crc32.get(),
                found: computed,
            });
        }
        let claimed = header.payload_size.get();
        let available = rest.len() as u64;
        if claimed > available || claimed > MAX_BUNDLE_SIZE {
            return Err(BundleError::PayloadSize { claimed, available });
        }
        let payload = &rest[..claimed as usize];
        if u64::from(header.manifest_size.get()) > claimed {
            return Err(BundleError::ManifestSize {
                claimed: header.manifest_size.get(),
                payload: claimed,
            });
        }
        let computed = crc32(payload);
        if computed != header.payload_crc32.get() {
            return Err(BundleError::PayloadChecksum {
                expected: header.payload_crc32.get(),
                found: computed,
            });
        }
        let manifest_bytes = &payload[..header.manifest_size.get() as usize];
        let manifest = match postcard::from_bytes::<BootManifest<'a>>(manifest_bytes) {
            Ok(manifest) => manifest,
            Err(_) => return Err(BundleError::ManifestDecode),
        };
        Ok(Self { header, manifest, payload })
    }
}

/// Builds the header for a payload whose first `manifest_size` bytes are the encoded manifest.
///
/// # Panics
/// If the manifest does not fit the payload or is larger than 4 GiB: packers call this with what
/// they just built.
pub fn header_for(payload: &[u8], manifest_size: usize) -> BundleHeader {
    assert!(manifest_size <= payload.len(), "manifest larger than payload");
    let mut header = BundleHeader {
        magic: MAGIC,
        version: U32::new(VERSION),
        header_size: U32::new(HEADER_SIZE as u32),
        manifest_size: U32::new(u32::try_from(manifest_size).expect("manifest over 4 GiB")),
        reserved: U32::new(0),
        payload_size: U64::new(payload.len() as u64),
        payload_crc32: U32::new(crc32(payload)),
        header_crc32: U32::new(0),
    };
    header.header_crc32 = U32::new(crc32(&header.as_bytes()[..HEADER_SIZE - 4]));
    header
}

/// CRC-32/ISO-HDLC (the IEEE 802.3 CRC of zlib and PNG), table-driven.
pub fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in bytes {
        crc = CRC_TABLE[((crc ^ u32::from(byte)) & 0xff) as usize] ^ (crc >> 8);
    }
    !crc
}

const CRC_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut index = 0;
    while index < 256 {
        let mut value = index as u32;
        let mut bit = 0;
        while bit < 8 {
            value = if value & 1 != 0 { 0xEDB8_8320 ^ (value >> 1) } else { value >> 1 };
            bit += 1;
        }
        table[index] = value;
        index += 1;
    }
    table
};

#[cfg(test)]
mod tests {
    use super::*;

    fn pack(manifest: &BootManifest<'_>, modules: &[u8]) -> Vec<u8> {
        let mut payload = postcard::to_allocvec(manifest).unwrap();
        let manifest_size = payload.len();
        payload.extend_from_slice(modules);
        let header = header_for(&payload, manifest_size);
        let mut out = header.as_bytes().to_vec();
        out.extend_from_slice(&payload);
        out
    }

    const MANIFEST: BootManifest<'static> = BootManifest { name: "test", cmdline: "loglvl=all" };

    #[test]
    fn header_layout() {
        assert_eq!(HEADER_SIZE, 40);
        assert_eq!(core::mem::offset_of!(BundleHeader, version), 8);
        assert_eq!(core::mem::offset_of!(BundleHeader, manifest_size), 16);
        assert_eq!(core::mem::offset_of!(BundleHeader, payload_size), 24);
        assert_eq!(core::mem::offset_of!(BundleHeader, payload_crc32), 32);
        assert_eq!(core::mem::offset_of!(BundleHeader, header_crc32), 36);
    }

    #[test]
    fn crc32_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
    }

    #[test]
    fn round_trip() {
        let bytes = pack(&MANIFEST, b"module bytes");
        let bundle = Bundle::parse(&bytes).unwrap();
        assert_eq!(bundle.manifest, MANIFEST);
        assert_eq!(&bundle.payload[bundle.header.manifest_size.get() as usize..], b"module bytes");
    }

    #[test]
    fn trailing_bytes_after_payload_are_ignored() {
        // Bootloaders may round the module up to a page.
        let mut bytes = pack(&MANIFEST, b"");
        bytes.resize(4096, 0);
        assert!(Bundle::parse(&bytes).is_ok());
    }

    #[test]
    fn every_single_bit_flip_is_refused() {
        let bytes = pack(&MANIFEST, b"xyz");
        for index in 0..bytes.len() {
            for bit in 0..8 {
                let mut damaged = bytes.clone();
                damaged[index] ^= 1 << bit;
                assert!(Bundle::parse(&damaged).is_err(), "flip of bit {bit} at {index} accepted");
            }
        }
    }

    #[test]
    fn each_error_kind() {
        let good = pack(&MANIFEST, b"xyz");
        assert_eq!(Bundle::parse(&good[..10]).unwrap_err(), BundleError::Truncated { size: 10 });

        let mut bad = good.clone();
        bad[0] = b'Y';
        assert!(matches!(Bundle::parse(&bad), Err(BundleError::BadMagic { .. })));

        let mut bad = good.clone();
        bad[8] = 2;
        assert_eq!(Bundle::parse(&bad).unwrap_err(), BundleError::UnsupportedVersion { found: 2 });

        let mut bad = good.clone();
        bad[12] = 41;
        assert_eq!(Bundle::parse(&bad).unwrap_err(), BundleError::BadHeaderSize { found: 41 });

        let mut bad = good.clone();
        bad[20] = 1;
        assert!(matches!(Bundle::parse(&bad), Err(BundleError::HeaderChecksum { .. })));

        let truncated = &good[..good.len() - 1];
        assert!(matches!(Bundle::parse(truncated), Err(BundleError::PayloadSize { .. })));

        let mut bad = good.clone();
        let last = bad.len() - 1;
        bad[last] ^= 0x80;
        let error = Bundle::parse(&bad).unwrap_err();
        assert!(matches!(error, BundleError::PayloadChecksum { .. }));
        assert!(error.to_string().contains("corrupt"));

        // A manifest size past the payload, with checksums made consistent.
        let payload = good[HEADER_SIZE..].to_vec();
        let mut header = header_for(&payload, payload.len());
        header.manifest_size = U32::new(payload.len() as u32 + 1);
        header.header_crc32 = U32::new(crc32(&header.as_bytes()[..HEADER_SIZE - 4]));
        let mut bad = header.as_bytes().to_vec();
        bad.extend_from_slice(&payload);
        assert!(matches!(Bundle::parse(&bad), Err(BundleError::ManifestSize { .. })));

        // Bytes that are no manifest, with good checksums.
        let payload = vec![0xff; 8];
        let header = header_for(&payload, payload.len());
        let mut bad = header.as_bytes().to_vec();
        bad.extend_from_slice(&payload);
        assert_eq!(Bundle::parse(&bad).unwrap_err(), BundleError::ManifestDecode);
    }
}
