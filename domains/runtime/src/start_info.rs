//! What a domain learns at start from the DTB the core gave it: its memory, vCPUs, command line,
//! and whether it runs on a Xen-compatible hypervisor.
//!
//! # Invariants
//! - Parsing never panics: a DTB without what a domain needs is an error the runtime reports
//!   before `main` runs.

use core::fmt;

/// Most RAM banks recorded.
pub const MAX_BANKS: usize = 4;
/// Most bytes of `/chosen/bootargs` kept (a device model's configuration lives there).
pub const MAX_BOOTARGS: usize = 512;

/// What the DTB says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StartInfo {
    /// RAM banks as (base, size), in the domain's physical (intermediate) address space.
    pub ram: [(u64, u64); MAX_BANKS],
    /// How many entries of `ram` are used.
    pub ram_banks: usize,
    /// vCPUs in the `/cpus` node.
    pub vcpus: u32,
    /// `/chosen/bootargs`, up to [`MAX_BOOTARGS`] bytes.
    bootargs: [u8; MAX_BOOTARGS],
    bootargs_len: usize,
    /// The `/hypervisor` node is compatible with "xen,xen".
    pub xen: bool,
    /// The `hypervisor` node's event-channel interrupt (GIC INTID), if given.
    pub event_channel_intid: Option<u32>,
    /// Where the DTB itself lies.
    pub dtb: (u64, u64),
    /// The first virtio-mmio device the DTB names, if any.
    pub virtio_mmio: Option<VirtioMmio>,
    /// The initial ramdisk, `[start, end)`: `/chosen/linux,initrd-start` and
    /// `linux,initrd-end` (Linux's `Documentation/devicetree/bindings/chosen.txt`; 32- or
    /// 64-bit cells), if both are there and `start <= end`.
    pub initrd: Option<(u64, u64)>,
}

/// A virtio-mmio device in the DTB (Linux's `Documentation/devicetree/bindings/virtio/mmio.yaml`:
/// `compatible = "virtio,mmio"`, `reg`, `interrupts`), with the DMA pool its `memory-region`
/// names (`reserved-memory/shared-dma-pool.yaml`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VirtioMmio {
    /// Its register window (`reg`): base and size.
    pub registers: (u64, u64),
    /// Its interrupt's GIC INTID (`interrupts`, three cells: SPI n is INTID n + 32).
    pub intid: Option<u32>,
    /// The `shared-dma-pool` node its `memory-region` names: base and size. (Its buffers must
    /// lie there: in Xenolith's passthrough the pool is the one window of the domain's
    /// address space the device reaches, at guest-physical == host-physical.)
    pub dma_pool: Option<(u64, u64)>,
}

/// Why the DTB could not be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartInfoError {
    /// Not a DTB the parser accepts.
    BadDtb,
    /// No `memory` node with a `reg`.
    NoMemory,
}

impl fmt::Display for StartInfoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadDtb => write!(f, "the DTB the core gave this domain does not parse"),
            Self::NoMemory => write!(f, "the domain's DTB names no memory"),
        }
    }
}

impl StartInfo {
    /// Reads `dtb` (placed at `address`).
    pub fn parse(dtb: &[u8], address: u64) -> Result<Self, StartInfoError> {
        let fdt = fdt::Fdt::new(dtb).map_err(|_| StartInfoError::BadDtb)?;
        let mut info = Self {
            ram: [(0, 0); MAX_BANKS],
            ram_banks: 0,
            vcpus: 0,
            bootargs: [0; MAX_BOOTARGS],
            bootargs_len: 0,
            xen: false,
            event_channel_intid: None,
            dtb: (address, fdt.total_size() as u64),
            virtio_mmio: None,
            initrd: None,
        };
        for region in fdt.memory().regions() {
            if info.ram_banks < MAX_BANKS {
                let size = region.size.unwrap_or(0) as u64;
                if size > 0 {
                    info.ram[info.ram_banks] = (region.starting_address as u64, size);
                    info.ram_banks += 1;
                }
            }
        }
        if info.ram_banks == 0 {
            return Err(StartInfoError::NoMemory);
        }
        info.vcpus = fdt.cpus().count() as u32;
        if let Some(bootargs) = fdt.chosen().bootargs() {
            let bytes = bootargs.as_bytes();
            let len = bytes.len().min(info.bootargs.len());
            info.bootargs[..len].copy_from_slice(&bytes[..len]);
            info.bootargs_len = len;
        }
        if let Some(node) = fdt.find_node("/hypervisor") {
            info.xen = node.compatible().is_some_and(|list| list.all().any(|c| c == "xen,xen"));
            info.event_channel_intid = node.property("interrupts").and_then(|p| gic_intid(p.value));
        }
        info.virtio_mmio = virtio_mmio(&fdt);
        info.initrd = initrd(&fdt);
        Ok(info)
    }

    /// The command line (`/chosen/bootargs`), or "" if it was not UTF-8.
    pub fn bootargs(&self) -> &str {
        core::str::from_utf8(&self.bootargs[..self.bootargs_len]).unwrap_or("")
    }

    /// The value of `name=value` in the command line, if present.
    pub fn bootarg(&self, name: &str) -> Option<&str> {
        self.bootargs().split_ascii_whitespace().find_map(|token| {
            let (key, value) = token.split_once('=')?;
            (key == name).then_some(value)
        })
    }

    /// The first RAM bank.
    pub fn first_bank(&self) -> (u64, u64) {
        self.ram[0]
    }
}

/// The GIC INTID of an `interrupts` value of the GICv3 binding's three cells: type (0 SPI,
/// 1 PPI), number, flags.
fn gic_intid(cells: &[u8]) -> Option<u32> {
    let cell = |index: usize| {
        let bytes = cells.get(index * 4..index * 4 + 4)?;
        Some(u32::from_be_bytes(bytes.try_into().ok()?))
    };
    let (kind, number) = (cell(0)?, cell(1)?);
    let base = if kind == 1 { 16 } else { 32 };
    number.checked_add(base)
}

/// `/chosen`'s initrd range, each bound one or two big-endian cells.
fn initrd(fdt: &fdt::Fdt<'_>) -> Option<(u64, u64)> {
    let chosen = fdt.find_node("/chosen")?;
    let cells = |name: &str| {
        let value = chosen.property(name)?.value;
        match value.len() {
            4 => Some(u64::from(u32::from_be_bytes(value.try_into().ok()?))),
            8 => Some(u64::from_be_bytes(value.try_into().ok()?)),
            _ => None,
        }
    };
    let (start, end) = (cells("linux,initrd-start")?, cells("linux,initrd-end")?);
    (start <= end).then_some((start, end))
}

/// The first `virtio,mmio` node, if it has a `reg`.
fn virtio_mmio(fdt: &fdt::Fdt<'_>) -> Option<VirtioMmio> {
    let node = fdt.find_compatible(&["virtio,mmio"])?;
    let first = |node: fdt::node::FdtNode<'_, '_>| {
        let region = node.reg()?.next()?;
        Some((region.starting_address as u64, region.size.unwrap_or(0) as u64))
    };
    let registers = first(node)?;
    let intid = node.property("interrupts").and_then(|p| gic_intid(p.value));
    let dma_pool = node
        .property("memory-region")
        .and_then(|p| Some(u32::from_be_bytes(p.value.get(..4)?.try_into().ok()?)))
        .and_then(|phandle| fdt.find_phandle(phandle))
        .filter(|pool| {
            pool.compatible().is_some_and(|list| list.all().any(|c| c == "shared-dma-pool"))
        })
        .and_then(first);
    Some(VirtioMmio { registers, intid, dma_pool })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_qemu_virt_dtb() {
        let dtb = include_bytes!("../../../kernel/tests/data/qemu-virt-gicv3-smp2.dtb");
        let info = StartInfo::parse(dtb, 0x4800_0000).unwrap();
        assert_eq!(info.first_bank(), (0x4000_0000, 0x4000_0000));
        assert_eq!(info.vcpus, 2);
        assert!(!info.xen);
        assert_eq!(info.bootargs(), "");
    }

    /// A DTB with what the host tool writes for a domain given QEMU's virtio-mmio transport 31
    /// and a DMA window: `/virtio_mmio@a003e00` and `/reserved-memory/dma@7ff00000`.
    fn dtb_with_virtio(memory_region: bool, pool_compatible: &str) -> Vec<u8> {
        let mut fdt = vm_fdt::FdtWriter::new().unwrap();
        let root = fdt.begin_node("").unwrap();
        fdt.property_u32("#address-cells", 2).unwrap();
        fdt.property_u32("#size-cells", 2).unwrap();
        let memory = fdt.begin_node("memory@40000000").unwrap();
        fdt.property_string("device_type", "memory").unwrap();
        fdt.property_array_u64("reg", &[0x4000_0000, 0x200_0000]).unwrap();
        fdt.end_node(memory).unwrap();
        // (The parser needs `/cpus` and `/chosen`, as every guest DTB has them.)
        let chosen = fdt.begin_node("chosen").unwrap();
        fdt.end_node(chosen).unwrap();
        let cpus = fdt.begin_node("cpus").unwrap();
        fdt.property_u32("#address-cells", 1).unwrap();
        fdt.property_u32("#size-cells", 0).unwrap();
        let cpu = fdt.begin_node("cpu@0").unwrap();
        fdt.property_string("device_type", "cpu").unwrap();
        fdt.property_u32("reg", 0).unwrap();
        fdt.end_node(cpu).unwrap();
        fdt.end_node(cpus).unwrap();
        let reserved = fdt.begin_node("reserved-memory").unwrap();
        fdt.property_u32("#address-cells", 2).unwrap();
        fdt.property_u32("#size-cells", 2).unwrap();
        fdt.property_null("ranges").unwrap();
        let dma = fdt.begin_node("dma@7ff00000").unwrap();
        fdt.property_string("compatible", pool_compatible).unwrap();
        fdt.property_array_u64("reg", &[0x7ff0_0000, 0x10_0000]).unwrap();
        fdt.property_null("no-map").unwrap();
        fdt.property_u32("phandle", 0x8010).unwrap();
        fdt.end_node(dma).unwrap();
        fdt.end_node(reserved).unwrap();
        let virtio = fdt.begin_node("virtio_mmio@a003e00").unwrap();
        fdt.property_string("compatible", "virtio,mmio").unwrap();
        fdt.property_array_u64("reg", &[0xa00_3e00, 0x200]).unwrap();
        fdt.property_array_u32("interrupts", &[0, 0x2f, 1]).unwrap();
        fdt.property_null("dma-coherent").unwrap();
        if memory_region {
            fdt.property_u32("memory-region", 0x8010).unwrap();
        }
        fdt.end_node(virtio).unwrap();
        fdt.end_node(root).unwrap();
        fdt.finish().unwrap()
    }

    #[test]
    fn finds_a_virtio_mmio_device_and_its_dma_pool() {
        let info = StartInfo::parse(&dtb_with_virtio(true, "shared-dma-pool"), 0).unwrap();
        let expected = VirtioMmio {
            registers: (0xa00_3e00, 0x200),
            intid: Some(79),
            dma_pool: Some((0x7ff0_0000, 0x10_0000)),
        };
        assert_eq!(info.virtio_mmio, Some(expected));
        // No `memory-region`, or one naming something else: no pool.
        for dtb in [dtb_with_virtio(false, "shared-dma-pool"), dtb_with_virtio(true, "other")] {
            let info = StartInfo::parse(&dtb, 0).unwrap();
            assert_eq!(info.virtio_mmio.unwrap().dma_pool, None);
        }
        // QEMU's own DTB has no virtio device unless one is plugged.
        let dtb = include_bytes!("../../../kernel/tests/data/qemu-virt-gicv3-smp2.dtb");
        let virt = StartInfo::parse(dtb, 0).unwrap();
        assert!(virt.virtio_mmio.is_none_or(|device| device.dma_pool.is_none()));
    }

    /// The tree the builder writes for a domain given QEMU's virtio console and a DMA window
    /// (as the host tool does for `hardware:virtio-console`, images/src/hardware.rs).
    #[test]
    fn reads_the_virtio_console_the_builder_describes() {
        use xenolith_builder::guest_dtb::{build, GuestDtbSpec};
        use xenolith_builder::{GuestDevice, GuestHardware};
        let device = GuestDevice {
            node: "virtio_mmio",
            compatible: "virtio,mmio",
            reg: (0x0a00_3e00, 0x200),
            intid: 79,
            trigger: 1,
        };
        let ram = [(0x4000_0000, 0x200_0000)];
        let spec = GuestDtbSpec {
            vcpus: 1,
            ram: &ram,
            bootargs: "",
            initrd: None,
            clock_frequency: None,
            gic_redistributors: 1,
            console_uart: None,
            virtio_mmio: &[],
            address_bits: 40,
            hardware: GuestHardware {
                devices: &[device],
                dma_pool: Some((0x7ff0_0000, 0x10_0000)),
            },
        };
        let info = StartInfo::parse(&build(&spec).unwrap(), 0x4100_0000).unwrap();
        assert_eq!(info.initrd, None);
        let expected = VirtioMmio {
            registers: (0xa00_3e00, 0x200),
            intid: Some(79),
            dma_pool: Some((0x7ff0_0000, 0x10_0000)),
        };
        assert_eq!(info.virtio_mmio, Some(expected));
        // No DMA window: the device without a pool.
        let spec =
            GuestDtbSpec { hardware: GuestHardware { dma_pool: None, ..spec.hardware }, ..spec };
        let info = StartInfo::parse(&build(&spec).unwrap(), 0x4100_0000).unwrap();
        assert_eq!(info.virtio_mmio.map(|device| device.dma_pool), Some(None));
    }

    /// The initrd and a long command line, as the builder writes them for a device model.
    #[test]
    fn reads_the_initrd_and_long_bootargs() {
        use xenolith_builder::guest_dtb::{build, GuestDtbSpec};
        use xenolith_builder::GuestHardware;
        let ram = [(0x4000_0000, 0x400_0000)];
        let bootargs = "x".repeat(400) + " xenolith.dm.target=3";
        let spec = GuestDtbSpec {
            vcpus: 1,
            ram: &ram,
            bootargs: &bootargs,
            initrd: Some((0x4200_0000, 0x12_3400)),
            clock_frequency: None,
            gic_redistributors: 1,
            console_uart: None,
            virtio_mmio: &[],
            address_bits: 40,
            hardware: GuestHardware { devices: &[], dma_pool: None },
        };
        let info = StartInfo::parse(&build(&spec).unwrap(), 0x4300_0000).unwrap();
        assert_eq!(info.initrd, Some((0x4200_0000, 0x4212_3400)));
        assert_eq!(info.bootargs(), bootargs);
        assert_eq!(info.bootarg("xenolith.dm.target"), Some("3"));
    }

    /// 32-bit cells are read too; an end before the start, or a bound missing, is no initrd.
    #[test]
    fn initrd_cells() {
        let dtb = |start: &[u8], end: Option<&[u8]>| {
            let mut fdt = vm_fdt::FdtWriter::new().unwrap();
            let root = fdt.begin_node("").unwrap();
            fdt.property_u32("#address-cells", 2).unwrap();
            fdt.property_u32("#size-cells", 2).unwrap();
            let memory = fdt.begin_node("memory@40000000").unwrap();
            fdt.property_string("device_type", "memory").unwrap();
            fdt.property_array_u64("reg", &[0x4000_0000, 0x200_0000]).unwrap();
            fdt.end_node(memory).unwrap();
            let chosen = fdt.begin_node("chosen").unwrap();
            fdt.property("linux,initrd-start", start).unwrap();
            if let Some(end) = end {
                fdt.property("linux,initrd-end", end).unwrap();
            }
            fdt.end_node(chosen).unwrap();
            let cpus = fdt.begin_node("cpus").unwrap();
            fdt.end_node(cpus).unwrap();
            fdt.end_node(root).unwrap();
            StartInfo::parse(&fdt.finish().unwrap(), 0).unwrap().initrd
        };
        let start = 0x4100_0000u32.to_be_bytes();
        let end = 0x4100_1000u32.to_be_bytes();
        assert_eq!(dtb(&start, Some(&end)), Some((0x4100_0000, 0x4100_1000)));
        assert_eq!(dtb(&end, Some(&start)), None);
        assert_eq!(dtb(&start, None), None);
        assert_eq!(dtb(&start, Some(&[1, 2, 3])), None);
    }

    #[test]
    fn gic_interrupt_cells() {
        assert_eq!(gic_intid(&[0, 0, 0, 0, 0, 0, 0, 0x2f, 0, 0, 0, 1]), Some(79));
        assert_eq!(gic_intid(&[0, 0, 0, 1, 0, 0, 0, 15, 0, 0, 0, 8]), Some(31));
        assert_eq!(gic_intid(&[0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]), None);
        assert_eq!(gic_intid(&[0, 0, 0]), None);
    }

    #[test]
    fn refuses_garbage() {
        assert_eq!(StartInfo::parse(&[0u8; 64], 0).unwrap_err(), StartInfoError::BadDtb);
    }
}
