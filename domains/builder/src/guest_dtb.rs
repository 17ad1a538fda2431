//! The device tree each Arm domain boots with, as Xen 4.17 gives a domU.
//!
//! A Linux arm64 kernel finds out it runs on Xen from this tree alone (`xen_early_init` and
//! `xen_dt_guest_init` in Linux `arch/arm/xen/enlighten.c`): a top-level node named exactly
//! `hypervisor`, compatible `"xen,xen-<version>", "xen,xen"`, whose `reg[0]` is the grant-table
//! region and whose first interrupt is the event-channel upcall. The rest describes the virtual
//! platform of `xen/include/public/arch-arm.h`: vCPUs started through PSCI over `hvc`, RAM, a
//! GICv3, the architected timer and, optionally, the vpl011 console.
//!
//! Nodes and properties follow the toolstack's `tools/libs/light/libxl_arm.c` (`make_*_node`) and
//! Xen's own domU builder `xen/arch/arm/domain_build.c` (`prepare_dtb_domU`), in that order:
//! `chosen`, `cpus`, `psci`, `memory@…`, the GIC, `timer`, the UART, `hypervisor`, then libxl's
//! `virtio@…` nodes for virtio-mmio devices a device model emulates (`make_virtio_mmio_node`,
//! placed by [`virtio_mmio_slot`] as libxl's `alloc_virtio_mmio_base`/`_irq` place them; without
//! libxl's `iommus`/`xen,grant-dma`: Xenolith's device models map their guest's memory, so
//! there is no grant-based virtio, and Debian's kernel has no `CONFIG_XEN_VIRTIO`). Differences
//! from libxl: no `rng-seed` (the builder has no entropy to give), and the GIC states
//! `#redistributor-regions` and a redistributor region sized for
//! [`GuestDtbSpec::gic_redistributors`] rather than the whole 16 MiB window.
//!
//! # Extended regions
//!
//! Xen 4.17 gives `hypervisor` more `reg` entries after the grant table: *extended regions*,
//! guest-physical space no RAM or device uses, where Linux may map foreign and granted pages
//! (`arch_xen_unpopulated_init` in Linux `arch/arm/xen/enlighten.c`, with
//! `CONFIG_XEN_UNPOPULATED_ALLOC`; without them it balloons RAM pages out to make room). The rule
//! is libxl's for a domU (`finalise_ext_region` in `tools/libs/light/libxl_arm.c`), which
//! [`extended_regions`] computes: for each of Xen's guest RAM banks (`GUEST_RAM0`, `GUEST_RAM1`),
//! the part above the domain's RAM in it, its start rounded up to 2 MiB, its end the bank's or the
//! domain's guest-physical address limit (`gpaddr_bits`), whichever is lower; a region smaller
//! than 64 MiB (`EXT_REGION_MIN_SIZE`) is left out. Xen's own builder for a direct-mapped dom0
//! (`find_unallocated_memory` in `xen/arch/arm/domain_build.c`) uses the same 2 MiB alignment
//! and 64 MiB minimum.
//!
//! The blob is written with rust-vmm's `vm-fdt` (DTB version 17, last compatible version 16, an
//! empty memory reservation block, `boot_cpuid_phys` 0, each property name stored once). Where it
//! falls short of the hand-written writer the core used to carry:
//! - it needs a heap and returns a `Vec`; it cannot write in place into a bounded buffer, so a
//!   tree too big for the space a builder keeps is caught after writing (see `plan` in the crate
//!   root), not by the writer;
//! - its `Error` is neither `Clone` nor `Copy` and, without its `std` feature, not an
//!   `Error` either, so [`DtbError`] is neither `Clone` nor `Copy`;
//! - `property_string_list` takes owned `String`s, hence the `strings` helper.
//!
//! # Invariants
//! - The spec is validated before anything is written: every RAM bank lies inside one of Xen's
//!   guest RAM windows and no two overlap; the initrd lies inside one bank; every vCPU has a
//!   redistributor; the address limit is 32..=64 bits and every RAM bank lies below it.
//! - Extended regions are 2 MiB aligned, at least 64 MiB, inside one guest RAM window each, below
//!   the address limit, and overlap no RAM bank.
//! - The output is a complete DTB or an error; nothing panics.
//! - The output depends on the spec alone: the same spec gives the same bytes.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use vm_fdt::FdtWriter;
use xenolith_abi::xen::arch_arm::{
    vcpuid_to_vaffinity, DT_IRQ_TYPE_EDGE_RISING, DT_IRQ_TYPE_LEVEL_HIGH, DT_IRQ_TYPE_LEVEL_LOW,
    GUEST_EVTCHN_PPI, GUEST_GICV3_GICD_BASE, GUEST_GICV3_GICD_SIZE, GUEST_GICV3_GICR0_BASE,
    GUEST_GICV3_GICR0_SIZE, GUEST_GICV3_RDIST_REGIONS, GUEST_GICV3_RDIST_STRIDE, GUEST_GNTTAB_BASE,
    GUEST_GNTTAB_SIZE, GUEST_MAX_VCPUS, GUEST_PHANDLE_GIC, GUEST_PL011_SIZE, GUEST_RAM_BANKS,
    GUEST_RAM_BANK_BASES, GUEST_RAM_BANK_SIZES, GUEST_ROOT_ADDRESS_CELLS, GUEST_ROOT_SIZE_CELLS,
    GUEST_TIMER_PHYS_NS_PPI, GUEST_TIMER_PHYS_S_PPI, GUEST_TIMER_VIRT_PPI, GUEST_VIRTIO_MMIO_BASE,
    GUEST_VIRTIO_MMIO_SIZE, GUEST_VIRTIO_MMIO_SPI_FIRST, GUEST_VIRTIO_MMIO_SPI_LAST, PSCI_CPU_OFF,
    PSCI_CPU_ON, VIRTIO_MMIO_DEV_SIZE,
};

/// The Xen version the tree claims, in `model` and both `compatible`s (`make_root_properties`,
/// `make_hypervisor_node` in `libxl_arm.c`). Linux reads the part after `"xen,xen-"` as Xen's
/// version and needs it to be present.
const XEN_VERSION: &str = "4.17";
/// The cell after an interrupt's number: all CPUs (bits 15:8, as Xen writes it even for SPIs)
/// and the trigger type (`set_interrupt` in `libxl_arm.c`).
const ALL_CPUS: u32 = 0xf << 8;
/// First SPI and first PPI interrupt ids (the GIC binding numbers each kind from 0).
const SPI_BASE: u32 = 32;
const PPI_BASE: u32 = 16;
/// Largest SPI id a GICv3 has (1019; 1020..1023 are special).
const SPI_LAST: u32 = 1019;
/// The baud rate Xen states for the vpl011 (`make_vpl011_uart_node`).
const UART_SPEED: u32 = 115_200;
/// Alignment the console UART's base must have: one 4 KiB frame.
const UART_ALIGN: u64 = 0x1000;
/// Alignment of an extended region's start and end, 2 MiB (libxl `ALIGN_UP_TO_2MB`; Xen
/// `add_ext_regions` rounds to `SZ_2M`).
pub const EXTENDED_REGION_ALIGN: u64 = 2 << 20;
/// The smallest extended region, 64 MiB (`EXT_REGION_MIN_SIZE` in `libxl_arm.c`; Xen's
/// `add_ext_regions` drops anything below `MB(64)`).
pub const EXTENDED_REGION_MIN_SIZE: u64 = 64 << 20;

/// What one domain's tree describes.
#[derive(Clone, Copy, Debug)]
pub struct GuestDtbSpec<'a> {
    /// Number of vCPUs, 1..=[`GUEST_MAX_VCPUS`]; vCPU `n` gets `cpu@<affinity>` with Xen's
    /// affinity for `n` ([`vcpuid_to_vaffinity`]).
    pub vcpus: u32,
    /// RAM banks as `(base, size)`, each inside one of Xen's guest RAM windows
    /// (`GUEST_RAM0`/`GUEST_RAM1`), non-empty and not overlapping; one `memory@base` node each.
    pub ram: &'a [(u64, u64)],
    /// The kernel command line (`/chosen/bootargs`, left out when empty, as Xen does).
    pub bootargs: &'a str,
    /// The initial ramdisk as `(start, size)`, inside one RAM bank:
    /// `linux,initrd-start = start`, `linux,initrd-end = start + size` (exclusive), 64-bit each.
    pub initrd: Option<(u64, u64)>,
    /// The timer's `clock-frequency`, written only when given and non-zero (libxl's rule); the
    /// guest otherwise reads `CNTFRQ_EL0`.
    pub clock_frequency: Option<u32>,
    /// Redistributors in the GIC's one region: at least `vcpus`, at most the 128 Xen's region
    /// holds. The region stated is `gic_redistributors * GUEST_GICV3_RDIST_STRIDE` bytes.
    pub gic_redistributors: u32,
    /// A vpl011 console as `(base, spi)`: an `arm,sbsa-uart` node and `/chosen/stdout-path`.
    /// Xen's is `(GUEST_PL011_BASE, GUEST_VPL011_SPI)`.
    pub console_uart: Option<(u64, u32)>,
    /// Virtio-mmio devices as `(base, spi)`, each a [`VIRTIO_MMIO_DEV_SIZE`] window inside
    /// Xen's `GUEST_VIRTIO_MMIO` window with an SPI in `GUEST_VIRTIO_MMIO_SPI_FIRST..=_LAST`, none
    /// sharing a window or an SPI; one `virtio@<base>` node each, in order. libxl's are
    /// [`virtio_mmio_slot`]`(0)`, `(1)`, ...
    pub virtio_mmio: &'a [(u64, u32)],
    /// How many guest-physical address bits the domain's stage 2 translates (Xen's
    /// `gpaddr_bits`), 32..=64: extended regions end below `1 << address_bits`.
    pub address_bits: u32,
    /// Passed-through devices and a DMA window (boot domains only; none for the others).
    pub hardware: GuestHardware<'a>,
}

/// What a domain is given of the host's hardware, described in its tree as Xen's dom0less
/// partial device trees describe it (`docs/misc/arm/passthrough.txt`): each device's node, at
/// its host address and interrupt (mapped 1:1), and the DMA window as a `/reserved-memory`
/// `shared-dma-pool` the devices name with `memory-region` (Linux's
/// `Documentation/devicetree/bindings/reserved-memory/shared-dma-pool.yaml`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GuestHardware<'a> {
    /// The devices, each with its own node.
    pub devices: &'a [GuestDevice<'a>],
    /// The DMA window as `(base, size)`: guest-physical = host-physical.
    pub dma_pool: Option<(u64, u64)>,
}

/// One passed-through MMIO device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GuestDevice<'a> {
    /// The node's name before `@`, as the host's tree names it (`virtio_mmio`).
    pub node: &'a str,
    /// Its `compatible` string.
    pub compatible: &'a str,
    /// Its registers: `(base, size)`, non-empty.
    pub reg: (u64, u64),
    /// Its interrupt: an SPI's INTID.
    pub intid: u32,
    /// The interrupt's trigger flags as the host's tree gives them (`DT_IRQ_TYPE_*`).
    pub trigger: u32,
}

/// The DMA pool's phandle (the GIC's is [`GUEST_PHANDLE_GIC`]).
const PHANDLE_DMA_POOL: u32 = GUEST_PHANDLE_GIC + 1;

/// Why no tree was built. All but [`DtbError::Fdt`] blame the spec.
#[derive(Debug, PartialEq, Eq)]
pub enum DtbError {
    /// `vcpus` is 0 or above [`GUEST_MAX_VCPUS`].
    VcpuCount,
    /// `gic_redistributors` is below `vcpus` or above what Xen's redistributor region holds.
    RedistributorCount,
    /// No RAM bank, or a bank that is empty, wraps, leaves Xen's RAM windows or overlaps another.
    Ram,
    /// The initrd is empty, wraps or is not inside a single RAM bank.
    Initrd,
    /// The command line contains a NUL byte.
    Bootargs,
    /// The console UART's base is not frame aligned or its frame overlaps RAM or another device,
    /// or its interrupt is not an SPI.
    ConsoleUart,
    /// The address limit is outside 32..=64 bits, or a RAM bank reaches past it.
    AddressBits,
    /// A virtio-mmio device's window is not one of libxl's slots in Xen's virtio-mmio window,
    /// or its SPI is outside Xen's virtio-mmio SPIs, or two devices share either.
    VirtioMmio,
    /// A passed-through device has empty or wrapping registers or an interrupt that is not an
    /// SPI, or the DMA window is empty or wraps.
    Hardware,
    /// `vm-fdt` refused to write the tree. The spec's validation leaves no known way to get here;
    /// it would be a bug in this module.
    Fdt(vm_fdt::Error),
}

impl From<vm_fdt::Error> for DtbError {
    fn from(error: vm_fdt::Error) -> Self {
        DtbError::Fdt(error)
    }
}

impl fmt::Display for DtbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::VcpuCount => write!(f, "the vCPU count is not in 1..={GUEST_MAX_VCPUS}"),
            Self::RedistributorCount => write!(
                f,
                "the GIC redistributor count is below the vCPU count or above the \
                 {GUEST_MAX_VCPUS} Xen's redistributor region holds"
            ),
            Self::Ram => write!(
                f,
                "a RAM bank is empty, wraps, leaves Xen's guest RAM windows or overlaps another \
                 (or there is none)"
            ),
            Self::Initrd => write!(f, "the initrd is empty, wraps or is not inside one RAM bank"),
            Self::Bootargs => write!(f, "the command line contains a NUL byte"),
            Self::ConsoleUart => write!(
                f,
                "the console UART is not frame aligned, overlaps RAM or another device, or its \
                 interrupt is not an SPI"
            ),
            Self::AddressBits => write!(
                f,
                "the guest-physical address limit is not 32 to 64 bits, or RAM reaches past it"
            ),
            Self::VirtioMmio => write!(
                f,
                "a virtio-mmio device lies outside Xen's virtio-mmio window or SPIs ({} devices \
                 at most), or shares its window or SPI with another",
                GUEST_VIRTIO_MMIO_SPI_LAST - GUEST_VIRTIO_MMIO_SPI_FIRST + 1
            ),
            Self::Hardware => write!(
                f,
                "a passed-through device has empty registers or no SPI, or the DMA window is empty"
            ),
            Self::Fdt(error) => write!(f, "the device-tree writer failed (a builder bug): {error}"),
        }
    }
}

impl core::error::Error for DtbError {}

/// Writes the tree for `spec` and returns the finished blob.
pub fn build(spec: &GuestDtbSpec<'_>) -> Result<Vec<u8>, DtbError> {
    validate(spec)?;
    let mut fdt = FdtWriter::new()?;
    let root = fdt.begin_node("")?;
    fdt.property_string("model", &format!("XENVM-{XEN_VERSION}"))?;
    let compatible = format!("xen,xenvm-{XEN_VERSION}");
    fdt.property_string_list("compatible", strings(&[&compatible, "xen,xenvm"]))?;
    fdt.property_u32("interrupt-parent", GUEST_PHANDLE_GIC)?;
    fdt.property_u32("#address-cells", GUEST_ROOT_ADDRESS_CELLS)?;
    fdt.property_u32("#size-cells", GUEST_ROOT_SIZE_CELLS)?;

    chosen(&mut fdt, spec)?;
    cpus(&mut fdt, spec.vcpus)?;
    psci(&mut fdt)?;
    for &(base, size) in spec.ram {
        let memory = fdt.begin_node(&format!("memory@{base:x}"))?;
        fdt.property_string("device_type", "memory")?;
        fdt.property_array_u32("reg", &range(base, size))?;
        fdt.end_node(memory)?;
    }
    gic(&mut fdt, spec.gic_redistributors)?;
    timer(&mut fdt, spec.clock_frequency)?;
    if let Some((base, spi)) = spec.console_uart {
        let uart = fdt.begin_node(&format!("sbsa-uart@{base:x}"))?;
        fdt.property_string("compatible", "arm,sbsa-uart")?;
        fdt.property_array_u32("reg", &range(base, GUEST_PL011_SIZE))?;
        fdt.property_array_u32("interrupts", &spi_interrupt(spi, DT_IRQ_TYPE_LEVEL_HIGH))?;
        fdt.property_u32("interrupt-parent", GUEST_PHANDLE_GIC)?;
        fdt.property_u32("current-speed", UART_SPEED)?;
        fdt.end_node(uart)?;
    }
    hypervisor(&mut fdt, &extended_regions(spec.ram, spec.address_bits))?;
    for &(base, spi) in spec.virtio_mmio {
        virtio_mmio(&mut fdt, base, spi)?;
    }
    hardware(&mut fdt, &spec.hardware)?;
    fdt.end_node(root)?;
    Ok(fdt.finish()?)
}

/// Where libxl places the `index`th (from 0) virtio-mmio device of a domain, in disk order:
/// `(base, spi)`, the registers [`VIRTIO_MMIO_DEV_SIZE`] bytes each from
/// `GUEST_VIRTIO_MMIO_BASE` upwards and the SPIs from `GUEST_VIRTIO_MMIO_SPI_FIRST`
/// (`alloc_virtio_mmio_base` and `alloc_virtio_mmio_irq` in `tools/libs/light/libxl_arm.c`).
/// `None` past the last SPI, where libxl fails with "Ran out of reserved range".
pub fn virtio_mmio_slot(index: u32) -> Option<(u64, u32)> {
    let spi = GUEST_VIRTIO_MMIO_SPI_FIRST.checked_add(index)?;
    let base = GUEST_VIRTIO_MMIO_BASE + u64::from(index) * VIRTIO_MMIO_DEV_SIZE;
    let fits = base + VIRTIO_MMIO_DEV_SIZE <= GUEST_VIRTIO_MMIO_BASE + GUEST_VIRTIO_MMIO_SIZE;
    (spi <= GUEST_VIRTIO_MMIO_SPI_LAST && fits).then_some((base, spi))
}

/// One `virtio@<base>` node, as libxl's `make_virtio_mmio_node` writes it: `compatible`
/// `"virtio,mmio"`, `reg` the device's [`VIRTIO_MMIO_DEV_SIZE`] bytes, `interrupts` its SPI for
/// all CPUs, rising edge (libxl's `DT_IRQ_TYPE_EDGE_RISING`, from 4.17 to 4.20), and an empty
/// `dma-coherent`; the root's `interrupt-parent` applies. No `iommus` (see the module doc).
fn virtio_mmio(fdt: &mut FdtWriter, base: u64, spi: u32) -> Result<(), DtbError> {
    let node = fdt.begin_node(&format!("virtio@{base:x}"))?;
    fdt.property_string("compatible", "virtio,mmio")?;
    fdt.property_array_u32("reg", &range(base, VIRTIO_MMIO_DEV_SIZE))?;
    fdt.property_array_u32("interrupts", &spi_interrupt(spi, DT_IRQ_TYPE_EDGE_RISING))?;
    fdt.property_null("dma-coherent")?;
    fdt.end_node(node)?;
    Ok(())
}

/// The passed-through devices' nodes and the DMA window's `/reserved-memory` node.
fn hardware(fdt: &mut FdtWriter, hardware: &GuestHardware<'_>) -> Result<(), DtbError> {
    if let Some((base, size)) = hardware.dma_pool {
        let reserved = fdt.begin_node("reserved-memory")?;
        fdt.property_u32("#address-cells", GUEST_ROOT_ADDRESS_CELLS)?;
        fdt.property_u32("#size-cells", GUEST_ROOT_SIZE_CELLS)?;
        fdt.property_null("ranges")?;
        let pool = fdt.begin_node(&format!("dma@{base:x}"))?;
        fdt.property_string("compatible", "shared-dma-pool")?;
        fdt.property_array_u32("reg", &range(base, size))?;
        fdt.property_null("no-map")?;
        fdt.property_phandle(PHANDLE_DMA_POOL)?;
        fdt.end_node(pool)?;
        fdt.end_node(reserved)?;
    }
    for device in hardware.devices {
        let (base, size) = device.reg;
        let node = fdt.begin_node(&format!("{}@{base:x}", device.node))?;
        fdt.property_string("compatible", device.compatible)?;
        fdt.property_array_u32("reg", &range(base, size))?;
        fdt.property_array_u32("interrupts", &spi_interrupt(device.intid, device.trigger))?;
        fdt.property_u32("interrupt-parent", GUEST_PHANDLE_GIC)?;
        fdt.property_null("dma-coherent")?;
        if hardware.dma_pool.is_some() {
            fdt.property_u32("memory-region", PHANDLE_DMA_POOL)?;
        }
        fdt.end_node(node)?;
    }
    Ok(())
}

/// Checks the spec against Xen's virtual platform (see the module's invariants).
fn validate(spec: &GuestDtbSpec<'_>) -> Result<(), DtbError> {
    let bad_device = |device: &GuestDevice<'_>| {
        device.reg.1 == 0
            || end(device.reg).is_none()
            || !(SPI_BASE..=SPI_LAST).contains(&device.intid)
    };
    let bad_pool = |pool: (u64, u64)| pool.1 == 0 || end(pool).is_none();
    if spec.hardware.devices.iter().any(bad_device) || spec.hardware.dma_pool.is_some_and(bad_pool)
    {
        return Err(DtbError::Hardware);
    }
    if spec.vcpus == 0 || spec.vcpus > GUEST_MAX_VCPUS {
        return Err(DtbError::VcpuCount);
    }
    let redistributor_capacity = GUEST_GICV3_GICR0_SIZE / GUEST_GICV3_RDIST_STRIDE;
    if spec.gic_redistributors < spec.vcpus
        || u64::from(spec.gic_redistributors) > redistributor_capacity
    {
        return Err(DtbError::RedistributorCount);
    }
    if spec.ram.is_empty() {
        return Err(DtbError::Ram);
    }
    if !(32..=64).contains(&spec.address_bits) {
        return Err(DtbError::AddressBits);
    }
    for (index, &bank) in spec.ram.iter().enumerate() {
        let inside_window = GUEST_RAM_BANK_BASES
            .iter()
            .zip(GUEST_RAM_BANK_SIZES)
            .any(|(&base, size)| contains((base, size), bank));
        let overlaps_other = spec.ram[..index].iter().any(|&other| overlaps(other, bank));
        if bank.1 == 0 || end(bank).is_none() || !inside_window || overlaps_other {
            return Err(DtbError::Ram);
        }
        if bank.0 + (bank.1 - 1) > address_limit(spec.address_bits) {
            return Err(DtbError::AddressBits);
        }
    }
    if let Some(initrd) = spec.initrd {
        if initrd.1 == 0 || !spec.ram.iter().any(|&bank| contains(bank, initrd)) {
            return Err(DtbError::Initrd);
        }
    }
    if spec.bootargs.contains('\0') {
        return Err(DtbError::Bootargs);
    }
    for (index, &(base, spi)) in spec.virtio_mmio.iter().enumerate() {
        let slot = (base, VIRTIO_MMIO_DEV_SIZE);
        let shared = spec.virtio_mmio[..index]
            .iter()
            .any(|&(other, other_spi)| other == base || other_spi == spi);
        if !base.is_multiple_of(VIRTIO_MMIO_DEV_SIZE)
            || !contains((GUEST_VIRTIO_MMIO_BASE, GUEST_VIRTIO_MMIO_SIZE), slot)
            || !(GUEST_VIRTIO_MMIO_SPI_FIRST..=GUEST_VIRTIO_MMIO_SPI_LAST).contains(&spi)
            || shared
        {
            return Err(DtbError::VirtioMmio);
        }
    }
    if let Some((base, spi)) = spec.console_uart {
        let frame = (base, GUEST_PL011_SIZE);
        let devices = [
            (GUEST_GICV3_GICD_BASE, GUEST_GICV3_GICD_SIZE),
            (GUEST_GICV3_GICR0_BASE, GUEST_GICV3_GICR0_SIZE),
            (GUEST_GNTTAB_BASE, GUEST_GNTTAB_SIZE),
        ];
        if base % UART_ALIGN != 0
            || end(frame).is_none()
            || spec.ram.iter().chain(&devices).any(|&region| overlaps(region, frame))
            || !(SPI_BASE..=SPI_LAST).contains(&spi)
        {
            return Err(DtbError::ConsoleUart);
        }
    }
    Ok(())
}

/// `/chosen`: command line, initrd, console (`make_chosen_node`).
fn chosen(fdt: &mut FdtWriter, spec: &GuestDtbSpec<'_>) -> Result<(), DtbError> {
    let chosen = fdt.begin_node("chosen")?;
    if !spec.bootargs.is_empty() {
        fdt.property_string("bootargs", spec.bootargs)?;
    }
    if let Some((start, size)) = spec.initrd {
        // Validated: start + size does not wrap.
        fdt.property_u64("linux,initrd-start", start)?;
        fdt.property_u64("linux,initrd-end", start.saturating_add(size))?;
    }
    if let Some((base, _)) = spec.console_uart {
        fdt.property_string("stdout-path", &format!("/sbsa-uart@{base:x}"))?;
    }
    fdt.end_node(chosen)?;
    Ok(())
}

/// `/cpus` with one `cpu@<affinity>` per vCPU (`make_cpus_node`).
fn cpus(fdt: &mut FdtWriter, vcpus: u32) -> Result<(), DtbError> {
    let cpus = fdt.begin_node("cpus")?;
    fdt.property_u32("#address-cells", 1)?;
    fdt.property_u32("#size-cells", 0)?;
    for vcpu in 0..vcpus {
        let affinity = vcpuid_to_vaffinity(vcpu);
        let cpu = fdt.begin_node(&format!("cpu@{affinity:x}"))?;
        fdt.property_string("device_type", "cpu")?;
        fdt.property_string("compatible", "arm,armv8")?;
        fdt.property_string("enable-method", "psci")?;
        // Affinity fits Aff0 and Aff1 (vcpus <= 128), so one cell holds it.
        fdt.property_u32("reg", affinity as u32)?;
        fdt.end_node(cpu)?;
    }
    fdt.end_node(cpus)?;
    Ok(())
}

/// `/psci`: PSCI 1.0/0.2 through `hvc`, plus the PSCI 0.1 ids (`make_psci_node`).
fn psci(fdt: &mut FdtWriter) -> Result<(), DtbError> {
    let psci = fdt.begin_node("psci")?;
    let compatible = strings(&["arm,psci-1.0", "arm,psci-0.2", "arm,psci"]);
    fdt.property_string_list("compatible", compatible)?;
    fdt.property_string("method", "hvc")?;
    fdt.property_u32("cpu_off", PSCI_CPU_OFF)?;
    fdt.property_u32("cpu_on", PSCI_CPU_ON)?;
    fdt.end_node(psci)?;
    Ok(())
}

/// The GICv3: distributor and one redistributor region (`make_gicv3_node`).
fn gic(fdt: &mut FdtWriter, redistributors: u32) -> Result<(), DtbError> {
    let gic = fdt.begin_node(&format!("interrupt-controller@{GUEST_GICV3_GICD_BASE:x}"))?;
    fdt.property_string("compatible", "arm,gic-v3")?;
    fdt.property_u32("#interrupt-cells", 3)?;
    fdt.property_u32("#address-cells", 0)?;
    fdt.property_null("interrupt-controller")?;
    let distributor = range(GUEST_GICV3_GICD_BASE, GUEST_GICV3_GICD_SIZE);
    let redistributor_size = u64::from(redistributors) * GUEST_GICV3_RDIST_STRIDE;
    let redistributor = range(GUEST_GICV3_GICR0_BASE, redistributor_size);
    let mut reg = [0u32; 8];
    reg[..4].copy_from_slice(&distributor);
    reg[4..].copy_from_slice(&redistributor);
    fdt.property_array_u32("reg", &reg)?;
    fdt.property_u32("#redistributor-regions", GUEST_GICV3_RDIST_REGIONS)?;
    fdt.property_u32("linux,phandle", GUEST_PHANDLE_GIC)?;
    fdt.property_phandle(GUEST_PHANDLE_GIC)?;
    fdt.end_node(gic)?;
    Ok(())
}

/// The architected timer: secure physical, non-secure physical and virtual PPIs, active-low
/// level, all CPUs (`make_timer_node`; Xen gives a guest no hypervisor timer).
fn timer(fdt: &mut FdtWriter, clock_frequency: Option<u32>) -> Result<(), DtbError> {
    let timer = fdt.begin_node("timer")?;
    fdt.property_string("compatible", "arm,armv8-timer")?;
    let mut interrupts = [0u32; 9];
    for (slot, ppi) in interrupts.chunks_exact_mut(3).zip([
        GUEST_TIMER_PHYS_S_PPI,
        GUEST_TIMER_PHYS_NS_PPI,
        GUEST_TIMER_VIRT_PPI,
    ]) {
        slot.copy_from_slice(&ppi_interrupt(ppi, DT_IRQ_TYPE_LEVEL_LOW));
    }
    fdt.property_array_u32("interrupts", &interrupts)?;
    fdt.property_u32("interrupt-parent", GUEST_PHANDLE_GIC)?;
    if let Some(frequency) = clock_frequency.filter(|&frequency| frequency != 0) {
        fdt.property_u32("clock-frequency", frequency)?;
    }
    fdt.end_node(timer)?;
    Ok(())
}

/// `/hypervisor`: Xen's version, the grant-table region then the extended regions, and the
/// event-channel PPI, active-low level, all CPUs (`make_hypervisor_node`, `finalise_ext_region`).
fn hypervisor(fdt: &mut FdtWriter, extended: &[(u64, u64)]) -> Result<(), DtbError> {
    let hypervisor = fdt.begin_node("hypervisor")?;
    let versioned = format!("xen,xen-{XEN_VERSION}");
    fdt.property_string_list("compatible", strings(&[&versioned, "xen,xen"]))?;
    let mut reg = Vec::with_capacity(4 * (1 + extended.len()));
    reg.extend_from_slice(&range(GUEST_GNTTAB_BASE, GUEST_GNTTAB_SIZE));
    for &(base, size) in extended {
        reg.extend_from_slice(&range(base, size));
    }
    fdt.property_array_u32("reg", &reg)?;
    let interrupt = ppi_interrupt(GUEST_EVTCHN_PPI, DT_IRQ_TYPE_LEVEL_LOW);
    fdt.property_array_u32("interrupts", &interrupt)?;
    fdt.property_u32("interrupt-parent", GUEST_PHANDLE_GIC)?;
    fdt.end_node(hypervisor)?;
    Ok(())
}

/// The extended regions of a domain with RAM banks `ram` and an `address_bits` guest-physical
/// address limit, as `(base, size)` in window order (see the module doc for the rule): at most
/// one per guest RAM window. Meant for a validated `ram` ([`build`] checks it first): a bank
/// outside every window is ignored.
pub fn extended_regions(ram: &[(u64, u64)], address_bits: u32) -> Vec<(u64, u64)> {
    let limit = address_limit(address_bits);
    let mut regions = Vec::with_capacity(GUEST_RAM_BANKS);
    for (&window_base, window_size) in GUEST_RAM_BANK_BASES.iter().zip(GUEST_RAM_BANK_SIZES) {
        // libxl: `bankbase + ALIGN_UP_TO_2MB(rambank_size)`, the domain's RAM starting at the
        // window's base. Here: the end of the highest bank inside the window, the same for RAM
        // laid out from the base, and never overlapping RAM laid out otherwise.
        let used_end = ram
            .iter()
            .filter(|&&bank| contains((window_base, window_size), bank))
            .filter_map(|&bank| end(bank))
            .max()
            .unwrap_or(window_base);
        let Some(start) = used_end.checked_next_multiple_of(EXTENDED_REGION_ALIGN) else {
            continue;
        };
        // libxl: the last byte is `min(~0 >> (64 - gpaddr_bits), bankbase + banksize - 1)`. A
        // window ends below 2^64, so `last + 1` does not wrap; Xen's dom0 rule also rounds the end
        // down to 2 MiB, which libxl's aligned windows never need.
        let last = limit.min(window_base + (window_size - 1));
        let end = (last + 1) / EXTENDED_REGION_ALIGN * EXTENDED_REGION_ALIGN;
        if end > start && end - start >= EXTENDED_REGION_MIN_SIZE {
            regions.push((start, end - start));
        }
    }
    regions
}

/// The highest guest-physical address below an `address_bits` limit (taken as 1..=64).
fn address_limit(address_bits: u32) -> u64 {
    u64::MAX >> (64 - address_bits.clamp(1, 64))
}

/// A string list as `vm-fdt`'s `property_string_list` takes it (owned strings).
fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|&item| String::from(item)).collect()
}

/// A GIC interrupt specifier for PPI `id` (16..=31).
fn ppi_interrupt(id: u32, trigger: u32) -> [u32; 3] {
    [1, id.saturating_sub(PPI_BASE), ALL_CPUS | trigger]
}

/// A GIC interrupt specifier for SPI `id` (validated to be 32..=1019).
fn spi_interrupt(id: u32, trigger: u32) -> [u32; 3] {
    [0, id.saturating_sub(SPI_BASE), ALL_CPUS | trigger]
}

/// `(base, size)` as `reg` cells with two address and two size cells, high words first.
fn range(base: u64, size: u64) -> [u32; 4] {
    [(base >> 32) as u32, base as u32, (size >> 32) as u32, size as u32]
}

/// The exclusive end of `(base, size)`, if it does not wrap.
fn end((base, size): (u64, u64)) -> Option<u64> {
    base.checked_add(size)
}

/// Whether `outer` holds all of `inner` (neither wrapping).
fn contains(outer: (u64, u64), inner: (u64, u64)) -> bool {
    match (end(outer), end(inner)) {
        (Some(outer_end), Some(inner_end)) => inner.0 >= outer.0 && inner_end <= outer_end,
        _ => false,
    }
}

/// Whether two ranges share a byte (a wrapping range overlaps everything).
fn overlaps(a: (u64, u64), b: (u64, u64)) -> bool {
    let a_end = end(a).unwrap_or(u64::MAX);
    let b_end = end(b).unwrap_or(u64::MAX);
    a.0 < b_end && b.0 < a_end
}

#[cfg(test)]
mod tests;
