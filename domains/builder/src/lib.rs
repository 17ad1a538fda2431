//! Prepares a domain's boot image: which bytes go where in its RAM, the device tree it boots
//! with, and the registers its first vCPU starts with.
//!
//! Two callers share it, so the hypervisor core never parses an ELF file or writes a DTB: the
//! host tool, which prepares every boot domain of the boot bundle, and the control domain's
//! run-time builder. Each hands [`plan`] an image and a [`DomainConfig`] and gets back a
//! [`Plan`]: zero the domain's RAM, copy each [`Chunk`] and the DTB, set the entry point and
//! registers. The crate only computes; copying is the caller's.
//!
//! The guest layout is Xen 4.17's for an Arm domU (`xen/include/public/arch-arm.h`): RAM from
//! `GUEST_RAM0_BASE`, the device tree in the top [`DTB_SPACE`] bytes of RAM (as the core has
//! done until now), an initial ramdisk where Xen's toolstack puts one (see [`place_initrd`]), and
//! Linux's arm64 boot protocol (Linux `Documentation/arch/arm64/booting.rst`: `x0` holds the DTB's
//! address, `x1`..`x3` are zero).
//!
//! What it refuses to do:
//! - guess a format: an image is an AArch64 ELF executable or an uncompressed arm64 Linux
//!   `Image`; a gzip-compressed `Image.gz` is refused with a request to decompress it first, and
//!   anything else is refused naming the bytes it starts with;
//! - place anything outside the domain's RAM or over its device tree;
//! - use a RAM bank other than the first (`GUEST_RAM0`, 3 GiB) or a console UART in the tree: no
//!   caller needs them yet.
//!
//! Principles:
//! 1. **Check, then describe.** Every input (configuration, image header, segment table) is
//!    validated before a plan exists; a plan's every chunk lies inside the image and, at its
//!    guest address, inside RAM below the DTB.
//! 2. **Xen's layout, Linux's protocol, cited.** Each constant names the Xen or Linux source
//!    that fixes it; nothing here is copied from either, only written from the facts.
//! 3. **Deterministic.** The plan depends on the image and the configuration alone: the host
//!    tool and the control domain produce byte-identical DTBs for the same domain.
//! 4. **Host-tested, no unsafe.** `no_std` with `alloc` so the control domain can link it; every
//!    path is tested on the host.
//!
//! # Invariants
//! - For a returned [`Plan`]: every chunk's `offset + size` is within the image; every chunk's
//!   `[address, address + size)` and the kernel's whole footprint lie in
//!   `[GUEST_RAM0_BASE, dtb_address)`; `dtb.len() <= DTB_SPACE`; `dtb_address` is
//!   `GUEST_RAM0_BASE + RAM - DTB_SPACE` (so 8-byte aligned, as booting.rst requires of a DTB);
//!   `entry` lies inside the loaded kernel; `registers == [dtb_address, 0, 0, 0]`.
//! - With an initrd of `size` bytes: `initrd_address` is 4 KiB aligned and
//!   `[initrd_address, initrd_address + size)` lies in RAM below the DTB and overlaps neither the
//!   kernel's footprint (for an `Image` its whole `image_size`, for an ELF file every segment with
//!   its zero-filled rest) nor any chunk; the DTB's `/chosen/linux,initrd-start|end` say the same.
//!   Without one, `initrd_address` is `None` and the tree has no initrd properties.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

extern crate alloc;

pub mod elf;
pub mod guest_dtb;
pub mod linux_image;

use alloc::vec::Vec;
use core::fmt;
use elf::{ElfError, ElfImage};
pub use guest_dtb::{virtio_mmio_slot, GuestDevice, GuestHardware};
use guest_dtb::{DtbError, GuestDtbSpec};
use linux_image::{ImageError, LinuxImage};
use xenolith_abi::bundle::MAX_VCPUS;
use xenolith_abi::xen::arch_arm::{
    GUEST_GPADDR_BITS, GUEST_PL011_BASE, GUEST_RAM0_BASE, GUEST_RAM0_SIZE, GUEST_VPL011_SPI,
};

/// Bytes kept at the top of a domain's RAM for its device tree, 64 KiB. The kernel and its
/// zeroed data must end below them. A Xenolith choice (Xen's domU builder places the DTB
/// elsewhere), kept equal to what the core's builder has always used.
pub const DTB_SPACE: u64 = 64 * 1024;
/// An initrd starts on a page and its size is counted in whole pages, as libxl's `meminit`
/// (`tools/libs/guest/xg_dom_arm.c`) rounds `ramdisk_size` to `XC_PAGE_SHIFT`.
pub const INITRD_ALIGN: u64 = 4096;
/// Where Xen's toolstack puts boot modules when there is room: 128 MiB above the RAM base
/// (`ram128mb` in `xg_dom_arm.c` `meminit` and `xen/arch/arm/kernel.c` `place_modules`).
pub const INITRD_PREFERRED_OFFSET: u64 = 128 << 20;

/// What the domain is: from a manifest entry (host tool) or the control domain's request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DomainConfig<'a> {
    /// RAM in MiB: at least 1, at most `GUEST_RAM0_SIZE` (3 GiB), all in `GUEST_RAM0`.
    pub memory_mib: u32,
    /// vCPUs, 1..=[`MAX_VCPUS`].
    pub vcpus: u32,
    /// The kernel command line (`/chosen/bootargs`); empty for none; no NUL byte.
    pub cmdline: &'a str,
    /// The initial ramdisk's size in bytes, if the domain has one (at least 1); the caller copies
    /// its bytes to [`Plan::initrd_address`].
    pub initrd_size: Option<u64>,
    /// Passed-through hardware its tree describes (a boot domain's; default: none).
    pub hardware: GuestHardware<'a>,
    /// Devices a device-model domain emulates for it, which its tree describes (default: none).
    pub emulated: Emulated,
}

/// The devices a domain's device model emulates, as its tree describes them: where libxl
/// places each for an xl.cfg `vuart = "sbsa_uart"` and virtio `disk`s
/// (`libxl__arch_domain_prepare_config` in `tools/libs/light/libxl_arm.c`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Emulated {
    /// Xen's vpl011, an SBSA UART at `GUEST_PL011_BASE` with SPI `GUEST_VPL011_SPI`, which
    /// `/chosen/stdout-path` names.
    pub uart: bool,
    /// How many virtio-mmio devices, at [`virtio_mmio_slot`]`(0)`, `(1)`, ...
    pub virtio_mmio: u32,
}

/// One contiguous run of image bytes to copy to guest-physical `address`:
/// `image[offset..offset + size]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Chunk {
    /// Guest-physical address of the first byte.
    pub address: u64,
    /// Offset of the first byte in the image.
    pub offset: u64,
    /// Bytes to copy, non-zero.
    pub size: u64,
}

/// Everything a builder copies and sets: RAM is `[GUEST_RAM0_BASE, GUEST_RAM0_BASE + memory)`,
/// zeroed before the copy (so the zero-filled tail of an ELF segment needs no chunk).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    /// The image's bytes to copy, in image order.
    pub chunks: Vec<Chunk>,
    /// The device tree blob, at most [`DTB_SPACE`] bytes.
    pub dtb: Vec<u8>,
    /// Guest-physical address to copy [`Plan::dtb`] to: the top [`DTB_SPACE`] bytes of RAM.
    pub dtb_address: u64,
    /// Where vCPU 0 starts (PC), at EL1 with the MMU off, as booting.rst requires.
    pub entry: u64,
    /// vCPU 0's `x0`..`x3`: the DTB's address, then zeros (booting.rst: "x0 = physical address
    /// of device tree blob", `x1`..`x3` reserved, 0).
    pub registers: [u64; 4],
    /// Guest-physical address to copy the initrd to, when [`DomainConfig::initrd_size`] is given.
    pub initrd_address: Option<u64>,
}

/// Why no plan was made.
#[derive(Debug, PartialEq, Eq)]
pub enum PlanError {
    /// The vCPU count is not in 1..=[`MAX_VCPUS`].
    VcpuCount {
        /// The count asked for.
        vcpus: u32,
    },
    /// The memory is 0 MiB or more than `GUEST_RAM0` holds.
    MemorySize {
        /// The size asked for, in MiB.
        memory_mib: u32,
    },
    /// The image is neither an ELF file nor an arm64 Linux Image (compressed or not).
    UnknownFormat {
        /// Its first bytes (fewer than four if it is shorter; the rest zero).
        start: [u8; 4],
        /// Its length in bytes.
        length: usize,
    },
    /// The ELF file was refused.
    Elf(ElfError),
    /// The arm64 Linux Image was refused.
    Image(ImageError),
    /// The kernel, or one of its segments, does not lie in RAM below the device tree.
    DoesNotFit {
        /// Where it starts.
        address: u64,
        /// Bytes it needs (for an ELF segment its memory size, for an Image its `image_size`).
        size: u64,
        /// The device tree's address: the first byte it may not reach.
        limit: u64,
    },
    /// The device tree was refused (in practice: a NUL byte in the command line).
    Dtb(DtbError),
    /// The device tree is larger than [`DTB_SPACE`] (in practice: a very long command line).
    DtbTooLarge {
        /// Its size in bytes.
        size: usize,
    },
    /// The initrd is empty.
    InitrdEmpty,
    /// The initrd fits neither above nor below the kernel in RAM below the device tree.
    InitrdDoesNotFit {
        /// Its size, rounded up to [`INITRD_ALIGN`].
        size: u64,
        /// Where the kernel's footprint starts.
        kernel_start: u64,
        /// Where it ends (exclusive).
        kernel_end: u64,
        /// The device tree's address: the first byte it may not reach.
        limit: u64,
    },
}

impl fmt::Display for PlanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::VcpuCount { vcpus } => {
                write!(f, "a domain has 1 to {MAX_VCPUS} vCPUs, not {vcpus}")
            }
            Self::MemorySize { memory_mib } => write!(
                f,
                "a domain has 1 to {} MiB of memory, not {memory_mib}",
                GUEST_RAM0_SIZE >> 20
            ),
            Self::UnknownFormat { length: 0, .. } => write!(
                f,
                "the image is empty; give an AArch64 ELF executable or an arm64 Linux Image"
            ),
            Self::UnknownFormat { start, length } => {
                write!(f, "the image is neither an AArch64 ELF file nor an arm64 Linux Image: ")?;
                write!(f, "it is {length} bytes long and starts with")?;
                for byte in &start[..(*length).min(start.len())] {
                    write!(f, " {byte:02x}")?;
                }
                Ok(())
            }
            Self::Elf(error) => write!(f, "the ELF image was refused: {error}"),
            Self::Image(error) => write!(f, "the arm64 Linux Image was refused: {error}"),
            Self::DoesNotFit { address, size, limit } => write!(
                f,
                "the kernel needs {size:#x} bytes at {address:#x}, which do not fit in the \
                 domain's RAM below its device tree ({GUEST_RAM0_BASE:#x}..{limit:#x}); give the \
                 domain more memory"
            ),
            Self::Dtb(error) => write!(f, "the domain's device tree was refused: {error}"),
            Self::DtbTooLarge { size } => write!(
                f,
                "the domain's device tree is {size} bytes, more than the {DTB_SPACE} kept for it \
                 at the top of RAM; shorten the command line"
            ),
            Self::InitrdEmpty => write!(f, "the initrd (ramdisk) is empty; give a non-empty file"),
            Self::InitrdDoesNotFit { size, kernel_start, kernel_end, limit } => write!(
                f,
                "the initrd needs {size:#x} bytes, which fit neither between the kernel \
                 ({kernel_start:#x}..{kernel_end:#x}) and the device tree at {limit:#x} nor below \
                 the kernel; give the domain more memory or use a smaller initrd"
            ),
        }
    }
}

impl core::error::Error for PlanError {}

/// Plans the boot of a domain running `image` (an AArch64 ELF executable or an arm64 Linux
/// Image, recognised by their magic numbers) with `config`. See the crate's invariants for what
/// a returned plan guarantees.
pub fn plan(image: &[u8], config: &DomainConfig<'_>) -> Result<Plan, PlanError> {
    if config.vcpus == 0 || config.vcpus > MAX_VCPUS {
        return Err(PlanError::VcpuCount { vcpus: config.vcpus });
    }
    let ram = u64::from(config.memory_mib) << 20;
    if config.memory_mib == 0 || ram > GUEST_RAM0_SIZE {
        return Err(PlanError::MemorySize { memory_mib: config.memory_mib });
    }
    // ram >= 1 MiB > DTB_SPACE, and GUEST_RAM0_BASE + GUEST_RAM0_SIZE does not wrap.
    let dtb_address = GUEST_RAM0_BASE + ram - DTB_SPACE;

    let (chunks, entry, kernel) = if image.starts_with(b"\x7fELF") {
        place_elf(image, dtb_address)?
    } else if linux_image::looks_like_image(image) {
        place_linux_image(image, dtb_address)?
    } else {
        let mut start = [0u8; 4];
        let known = image.len().min(start.len());
        start[..known].copy_from_slice(&image[..known]);
        return Err(PlanError::UnknownFormat { start, length: image.len() });
    };

    let initrd_address = match config.initrd_size {
        None => None,
        Some(0) => return Err(PlanError::InitrdEmpty),
        Some(size) => Some(place_initrd(size, kernel, dtb_address)?),
    };
    let initrd = initrd_address.zip(config.initrd_size);
    let virtio_mmio = (0..config.emulated.virtio_mmio)
        .map(virtio_mmio_slot)
        .collect::<Option<Vec<_>>>()
        .ok_or(PlanError::Dtb(DtbError::VirtioMmio))?;

    let dtb = guest_dtb::build(&GuestDtbSpec {
        vcpus: config.vcpus,
        ram: &[(GUEST_RAM0_BASE, ram)],
        bootargs: config.cmdline,
        initrd,
        clock_frequency: None,
        gic_redistributors: config.vcpus,
        console_uart: config.emulated.uart.then_some((GUEST_PL011_BASE, GUEST_VPL011_SPI)),
        virtio_mmio: &virtio_mmio,
        address_bits: GUEST_GPADDR_BITS,
        hardware: config.hardware,
    })
    .map_err(PlanError::Dtb)?;
    if dtb.len() as u64 > DTB_SPACE {
        return Err(PlanError::DtbTooLarge { size: dtb.len() });
    }
    Ok(Plan { chunks, dtb, dtb_address, entry, registers: [dtb_address, 0, 0, 0], initrd_address })
}

/// Where an initrd of `size` bytes goes, given the kernel's footprint `[start, end)` and the
/// device tree at `limit` (the top of the RAM the initrd may use): libxl's rule for a domU's boot
/// modules (`meminit` in `tools/libs/guest/xg_dom_arm.c`, the same as Xen's dom0less
/// `place_modules` in `xen/arch/arm/kernel.c`), in order:
/// 1. 128 MiB above the RAM base, if the kernel ends below that and the initrd fits above it;
/// 2. else at the top of RAM (just below the device tree), if that is above the kernel's end;
/// 3. else just below the kernel, if there is room above the RAM base.
///
/// Xen places the DTB right after the initrd; Xenolith keeps the DTB at the top of RAM, so the
/// initrd alone is placed and "the end of RAM" is the DTB's address. booting.rst asks only that
/// the initrd lie in a 1 GiB aligned window of up to 32 GiB that also covers the kernel, which all
/// of `GUEST_RAM0` (1 GiB to 4 GiB) is.
fn place_initrd(size: u64, (start, end): (u64, u64), limit: u64) -> Result<u64, PlanError> {
    let rounded = size.checked_next_multiple_of(INITRD_ALIGN).unwrap_or(u64::MAX);
    let preferred = GUEST_RAM0_BASE + INITRD_PREFERRED_OFFSET;
    if preferred.checked_add(rounded).is_some_and(|initrd_end| initrd_end <= limit)
        && end < preferred
    {
        return Ok(preferred);
    }
    // `limit` is page aligned (RAM is whole MiB, DTB_SPACE a multiple of a page).
    if let Some(top) = limit.checked_sub(rounded).filter(|&top| top > end) {
        return Ok(top);
    }
    let below = start.checked_sub(rounded).map(|below| below / INITRD_ALIGN * INITRD_ALIGN);
    if let Some(below) = below.filter(|&below| below >= GUEST_RAM0_BASE) {
        return Ok(below);
    }
    Err(PlanError::InitrdDoesNotFit { size: rounded, kernel_start: start, kernel_end: end, limit })
}

/// The chunks to copy, the entry point and the kernel's footprint `[start, end)`.
type Placed = (Vec<Chunk>, u64, (u64, u64));

/// An ELF executable: one chunk per loadable segment with file bytes, each segment (with its
/// zero-filled rest) below `limit`; the entry point is `e_entry`; the footprint runs from the
/// lowest segment to the end of the highest.
fn place_elf(image: &[u8], limit: u64) -> Result<Placed, PlanError> {
    let elf = ElfImage::parse(image).map_err(PlanError::Elf)?;
    elf.check_fits(GUEST_RAM0_BASE, limit - GUEST_RAM0_BASE).map_err(|error| match error {
        ElfError::OutsideRam { address, size } => PlanError::DoesNotFit { address, size, limit },
        other => PlanError::Elf(other),
    })?;
    let chunks = elf
        .segments()
        .iter()
        .filter(|segment| segment.file_size > 0)
        .map(|segment| Chunk {
            address: segment.address,
            offset: segment.file_offset,
            size: segment.file_size,
        })
        .collect();
    let start = elf.segments().iter().map(|segment| segment.address).min().unwrap_or(limit);
    Ok((chunks, elf.entry, (start, elf.end())))
}

/// An arm64 Linux Image: the whole file at `GUEST_RAM0_BASE + text_offset` (booting.rst: placed
/// `text_offset` bytes above a 2 MiB aligned base, which `GUEST_RAM0_BASE` is, and entered at
/// its first byte), with its whole footprint below `limit`.
fn place_linux_image(image: &[u8], limit: u64) -> Result<Placed, PlanError> {
    let header = LinuxImage::parse(image).map_err(PlanError::Image)?;
    let address = GUEST_RAM0_BASE.saturating_add(header.text_offset);
    let size = header.footprint();
    let fits = address.checked_add(size).is_some_and(|end| end <= limit);
    if !fits {
        return Err(PlanError::DoesNotFit { address, size, limit });
    }
    let chunk = Chunk { address, offset: 0, size: header.file_size };
    // Fits: address + size <= limit.
    Ok((alloc::vec![chunk], address, (address, address + size)))
}

#[cfg(test)]
mod tests;
