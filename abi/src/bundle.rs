//! The boot bundle: what the host tool packs from a system manifest and the core unpacks at boot.
//!
//! The bundle reaches the core as a boot module (QEMU `-initrd`, found through the DTB's
//! `/chosen/linux,initrd-start|end`). It is Xenolith's own format, not Xen's.
//!
//! ```text
//! offset 0           40                     40 + m      40 + o0          40 + o1      40 + payload_size
//!        | header    | manifest (postcard)  | zeros     | module 0 | zeros | module 1 |
//! ```
//!
//! The manifest ([`BootManifest`], in `bundle/manifest.rs`) lists the domains and the modules:
//! domain images (ELF files or arm64 Linux `Image`s) and ramdisks, the device trees of boot
//! domains, and for each other domain its xl.cfg text (`<name>.cfg`, for the control domain), each
//! at an offset `o` from the payload start that is a multiple of [`MODULE_ALIGN`]. A boot domain
//! carries its prepared image ([`BootImage`]): runs of module bytes ([`LoadChunk`]) to copy to
//! guest-physical addresses, its entry point and first registers. A module is page-aligned in memory exactly when the payload start is: the
//! payload begins [`HEADER_SIZE`] bytes into the boot module, so a bootloader that places the
//! bundle itself page-aligned (QEMU does) leaves every module [`HEADER_SIZE`] bytes past a page
//! boundary. Whoever wants to map a module in place must check `payload.as_ptr()`; copying ELF
//! chunks out of it works wherever it lies.
//!
//! # Invariants
//! - All integers are little-endian; the header is [`HEADER_SIZE`] bytes and aligned to nothing.
//! - `header_crc32` covers the header bytes before it; `payload_crc32` covers every payload byte,
//!   padding and modules included.
//! - The manifest fills exactly the first `manifest_size` payload bytes; modules follow it in
//!   ascending order without overlap, inside the payload; a [`Bundle`] has passed
//!   [`BootManifest::validate`].
//! - A bundle whose version is not [`VERSION`] is refused whole: there is no partial compatibility.
//! - Decoding allocates (the manifest's lists): the core's heap must be up before [`Bundle::parse`].

extern crate alloc;

mod manifest;

use core::fmt;

use zerocopy::little_endian::{U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

pub use self::manifest::{
    is_valid_domain_name, BootImage, BootManifest, Capability, DomainSpec, FrameRange, LoadChunk,
    ManifestProblem, ModuleRef, Passthrough, PassthroughProblem, RestartPolicy, ShutdownAction,
    ShutdownActions, AFFINITY_ALL, AFFINITY_CPUS, CAP_PERCENT_PER_VCPU, DEFAULT_WEIGHT,
    DOMAIN_MEMORY_MAX_MIB, DOMAIN_NAME_MAX_LEN, MAX_LOAD_CHUNKS, MAX_VCPUS, MODULE_ALIGN,
    PASSTHROUGH_INTIDS, PRESERVED_MAX_KIB,
};

/// First eight bytes of every bundle.
pub const MAGIC: [u8; 8] = *b"XNLTHBDL";
/// The only bundle version this build understands (6: passthrough hardware; 5: a shutdown
/// action per reason; 4: boot domains carry prepared images; 3 added preserved regions).
pub const VERSION: u32 = 6;
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
    /// The manifest bytes do not decode, or decode with bytes to spare.
    ManifestDecode,
    /// The manifest decodes but fails the core's checks.
    Manifest(ManifestProblem),
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
            Self::Manifest(problem) => write!(
                f,
                "the bundle's manifest is inconsistent: {problem}; rebuild the image with this \
                 core's host tool"
            ),
        }
    }
}

/// A bundle whose header, checksums and manifest have been checked.
#[derive(Clone, Debug)]
pub struct Bundle<'a> {
    /// The checked header.
    pub header: BundleHeader,
    /// The decoded manifest.
    pub manifest: BootManifest<'a>,
    /// The whole payload (manifest bytes first), for module offsets.
    pub payload: &'a [u8],
}

impl<'a> Bundle<'a> {
    /// Checks `bytes` (the whole boot module), decodes its manifest and validates it
    /// ([`BootManifest::validate`], with modules after the manifest bytes). Nothing is trusted
    /// before it is checked: sizes are bounded by the bytes present before anything is read
    /// through them. Allocates the manifest's lists.
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
        let manifest = match postcard::take_from_bytes::<BootManifest<'a>>(manifest_bytes) {
            Ok((manifest, [])) => manifest,
            Ok(_) | Err(_) => return Err(BundleError::ManifestDecode),
        };
        manifest.check(manifest_bytes.len() as u64, claimed).map_err(BundleError::Manifest)?;
        Ok(Self { header, manifest, payload })
    }

    /// The bytes of module `index` of [`BootManifest::modules`], or `None` past the list.
    pub fn module(&self, index: usize) -> Option<&'a [u8]> {
        let module = self.manifest.modules.get(index)?;
        let start = usize::try_from(module.offset).ok()?;
        let end = start.checked_add(usize::try_from(module.size).ok()?)?;
        self.payload.get(start..end)
    }

    /// The image of `domain`, an entry of [`BootManifest::domains`] (`None` only for a domain
    /// from another manifest).
    pub fn domain_image(&self, domain: &DomainSpec<'_>) -> Option<&'a [u8]> {
        self.module(domain.module as usize)
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
    !crc32_update(!0, bytes)
}

/// [`crc32`] in pieces: start from `!0`, feed each piece, invert the last state.
pub fn crc32_update(state: u32, bytes: &[u8]) -> u32 {
    let mut crc = state;
    for &byte in bytes {
        crc = CRC_TABLE[((crc ^ u32::from(byte)) & 0xff) as usize] ^ (crc >> 8);
    }
    crc
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

    /// Packs like the host tool: manifest, then each module at the next [`MODULE_ALIGN`] offset.
    /// The manifest's module offsets are filled in here.
    fn pack(manifest: &BootManifest<'_>, modules: &[&[u8]]) -> Vec<u8> {
        let mut manifest = manifest.clone();
        let mut encoded = Vec::new();
        // Offsets change the manifest's length (varints), which moves the offsets: repeat until
        // the layout is stable.
        for _ in 0..8 {
            let mut offset = (encoded.len() as u64).next_multiple_of(MODULE_ALIGN);
            for (entry, bytes) in manifest.modules.iter_mut().zip(modules) {
                (entry.offset, entry.size) = (offset, bytes.len() as u64);
                offset = (offset + entry.size).next_multiple_of(MODULE_ALIGN);
            }
            let again = postcard::to_allocvec(&manifest).unwrap();
            if again == encoded {
                break;
            }
            encoded = again;
        }
        let mut payload = encoded.clone();
        for (entry, bytes) in manifest.modules.iter().zip(modules) {
            payload.resize(entry.offset as usize, 0);
            payload.extend_from_slice(bytes);
        }
        let header = header_for(&payload, encoded.len());
        let mut out = header.as_bytes().to_vec();
        out.extend_from_slice(&payload);
        out
    }

    fn domain(name: &'static str, module: u32) -> DomainSpec<'static> {
        DomainSpec {
            name,
            module,
            memory_mib: 16,
            vcpus: 1,
            capabilities: vec![],
            weight: DEFAULT_WEIGHT,
            cap: 0,
            hard_affinity: AFFINITY_ALL,
            soft_affinity: AFFINITY_ALL,
            on_shutdown: RestartPolicy::Never.actions(),
            preserved_kib: 0,
            boot: true,
            cmdline: "",
            prepared: Some(BootImage {
                chunks: vec![LoadChunk {
                    address: crate::xen::arch_arm::GUEST_RAM0_BASE,
                    module,
                    offset: 0,
                    size: 1,
                }],
                entry: crate::xen::arch_arm::GUEST_RAM0_BASE,
                registers: [0; 4],
            }),
            passthrough: Default::default(),
        }
    }

    /// Two domains, two modules; the second domain is the first one's device model.
    fn manifest() -> BootManifest<'static> {
        let mut guest = domain("guest1", 0);
        (guest.vcpus, guest.cap, guest.hard_affinity) = (2, 150, 0b101);
        (guest.on_shutdown, guest.cmdline) = (RestartPolicy::OnCrash.actions(), "console=hvc0");
        let mut dm = domain("dm1", 1);
        dm.capabilities = vec![Capability::DeviceModel { target: "guest1" }, Capability::Xenstore];
        (dm.boot, dm.prepared, dm.weight) = (false, None, 512);
        dm.on_shutdown = RestartPolicy::Always.actions();
        BootManifest {
            name: "test",
            cmdline: "loglvl=all",
            domains: vec![guest, dm],
            modules: vec![
                ModuleRef { name: "guests/guest.elf", offset: 0, size: 0 },
                ModuleRef { name: "device-model", offset: 0, size: 0 },
            ],
        }
    }

    /// A manifest without domains or modules.
    fn bare() -> BootManifest<'static> {
        BootManifest { name: "test", cmdline: "loglvl=all", domains: vec![], modules: vec![] }
    }

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
    fn round_trip_without_domains() {
        let bytes = pack(&bare(), &[]);
        let bundle = Bundle::parse(&bytes).unwrap();
        assert_eq!(bundle.manifest, bare());
        assert_eq!(bundle.payload.len(), bundle.header.manifest_size.get() as usize);
        assert_eq!(bundle.module(0), None);
    }

    #[test]
    fn modules_round_trip_aligned() {
        let guest: Vec<u8> = (0..5000u32).map(|i| i as u8).collect();
        let bytes = pack(&manifest(), &[&guest, b"\x7fELF dm"]);
        let bundle = Bundle::parse(&bytes).unwrap();
        let decoded = &bundle.manifest;
        assert_eq!(decoded.domains, manifest().domains);
        assert_eq!(decoded.modules[0].offset, MODULE_ALIGN);
        assert_eq!(decoded.modules[1].offset, 3 * MODULE_ALIGN);
        assert_eq!(bundle.module(0), Some(guest.as_slice()));
        assert_eq!(bundle.module(1), Some(b"\x7fELF dm".as_slice()));
        assert_eq!(bundle.module(2), None);
        assert_eq!(bundle.domain_image(&decoded.domains[1]), Some(b"\x7fELF dm".as_slice()));
        // Offsets count from the payload start, after the header.
        let start = HEADER_SIZE + decoded.modules[0].offset as usize;
        assert_eq!(&bytes[start..start + guest.len()], guest.as_slice());
    }

    #[test]
    fn trailing_bytes_after_payload_are_ignored() {
        // Bootloaders may round the module up to a page.
        let mut bytes = pack(&manifest(), &[b"a", b"b"]);
        bytes.resize(bytes.len().next_multiple_of(4096) + 4096, 0);
        assert!(Bundle::parse(&bytes).is_ok());
    }

    #[test]
    fn every_single_bit_flip_is_refused() {
        let mut small = manifest();
        small.modules.truncate(1);
        small.domains[1].module = 0;
        let bytes = pack(&small, &[b"xyz"]);
        for index in 0..bytes.len() {
            for bit in 0..8 {
                let mut damaged = bytes.clone();
                damaged[index] ^= 1 << bit;
                assert!(Bundle::parse(&damaged).is_err(), "flip of bit {bit} at {index} accepted");
            }
        }
    }

    /// `bytes` (a packed bundle, perhaps changed) with a new header claiming `manifest_size`
    /// manifest bytes, checksums good.
    fn repacked(bytes: &[u8], manifest_size: usize) -> Vec<u8> {
        let payload = &bytes[HEADER_SIZE..];
        let mut out = header_for(payload, manifest_size).as_bytes().to_vec();
        out.extend_from_slice(payload);
        out
    }

    #[test]
    fn each_error_kind() {
        let good = pack(&manifest(), &[b"xyz", b"abc"]);
        assert_eq!(Bundle::parse(&good[..10]).unwrap_err(), BundleError::Truncated { size: 10 });

        let mut bad = good.clone();
        bad[0] = b'Y';
        assert!(matches!(Bundle::parse(&bad), Err(BundleError::BadMagic { .. })));

        let mut bad = good.clone();
        bad[8] = 1;
        let error = Bundle::parse(&bad).unwrap_err();
        assert_eq!(error, BundleError::UnsupportedVersion { found: 1 });
        assert!(error.to_string().contains("this core reads version 6"));

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

        // A manifest followed by bytes it does not use, inside `manifest_size`.
        let bare = pack(&bare(), &[]);
        let mut bad = bare.clone();
        bad.push(0);
        let bad = repacked(&bad, bad.len() - HEADER_SIZE);
        assert_eq!(Bundle::parse(&bad).unwrap_err(), BundleError::ManifestDecode);

        // A manifest whose modules start inside the manifest bytes: `manifest_size` claims the
        // zero padding and the first module too.
        let first_module_end = HEADER_SIZE + MODULE_ALIGN as usize + 1;
        let bad = repacked(&good, first_module_end - HEADER_SIZE);
        assert_eq!(Bundle::parse(&bad).unwrap_err(), BundleError::ManifestDecode);
    }

    #[test]
    fn inconsistent_manifest_is_refused_with_its_problem() {
        let mut inconsistent = manifest();
        inconsistent.domains[0].name = "dm1";
        let bytes = pack(&inconsistent, &[b"a", b"b"]);
        let error = Bundle::parse(&bytes).unwrap_err();
        let problem = ManifestProblem::DuplicateName { domain: 1, first: 0 };
        assert_eq!(error, BundleError::Manifest(problem));
        assert_eq!(
            error.to_string(),
            "the bundle's manifest is inconsistent: domain 1 has the same name as domain 0; \
             rebuild the image with this core's host tool"
        );
    }

    #[test]
    fn module_overlapping_the_manifest_is_refused() {
        // A module at offset 0 lies on the manifest bytes; validate() alone allows that offset.
        let mut overlapping = manifest();
        overlapping.modules.truncate(1);
        overlapping.domains[1].module = 0;
        let mut payload = postcard::to_allocvec(&overlapping).unwrap();
        let manifest_size = payload.len();
        overlapping.modules[0].size = 1;
        payload = postcard::to_allocvec(&overlapping).unwrap();
        assert_eq!(payload.len(), manifest_size);
        let mut bytes = header_for(&payload, manifest_size).as_bytes().to_vec();
        bytes.extend_from_slice(&payload);
        assert_eq!(overlapping.validate(payload.len() as u64), Ok(()));
        assert_eq!(
            Bundle::parse(&bytes).unwrap_err(),
            BundleError::Manifest(ManifestProblem::ModuleOverlap {
                module: 0,
                offset: 0,
                start: manifest_size as u64
            })
        );
    }
}
