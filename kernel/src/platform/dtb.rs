//! What the device tree says about the machine.
//!
//! The core learns everything about the board from the flattened device tree (DTB) the boot loader
//! hands it: where RAM is and which parts are reserved, the CPUs and how to start them, the GICv3, the
//! generic timer's interrupts, the console UART and the `/chosen` boot arguments and initrd. This module
//! turns the DTB into a typed [`Platform`] once, at boot, so that the rest of the core never walks the
//! tree and never sees a malformed one.
//!
//! The DTB is input the core did not build, so it is checked before it is used: [`Platform::parse`]
//! first walks the whole blob ([`validate`]) and refuses anything the `fdt` crate (0.1.5) would panic
//! on: offsets outside the blob, unterminated strings, badly nested tokens, properties after child nodes,
//! FDT_NOP tokens, `#…-cells` properties that are not one cell.
//!
//! # Invariants
//! - A [`Platform`] exists only for a blob that passed [`validate`], so the `fdt` crate's panicking
//!   paths are unreachable from here; and this module resolves aliases itself and looks up only absolute
//!   paths, so the crate's recursive alias fallback cannot loop.
//! - Every address is a `u64` decoded from one or two cells, whatever the host's pointer width; a `reg`
//!   entry whose end would pass 2^64, or with cells of another size, is refused, never truncated.
//! - `ram` and `cpus` are never empty; `cpus` holds at most [`MAX_CPUS`], and `cpus_skipped` counts the
//!   rest; every region in `ram`, `reserved` and `gic` is non-empty.

use alloc::vec::Vec;

use fdt::node::FdtNode;

use crate::mm::frame::{Region, RegionList};

/// The most CPUs the core brings up; the DTB may list more, which are skipped with a warning.
pub const MAX_CPUS: usize = 16;

/// The PSCI 0.2+ function id of CPU_ON (SMC64), fixed by the PSCI specification.
pub const PSCI_0_2_CPU_ON: u32 = 0xC400_0003;

/// The flattened device tree's numbers (devicetree-specification v0.4, chapter 5), shared with
/// the host tool's DTB editor.
pub mod fdt_format {
    /// The header's magic.
    pub const FDT_MAGIC: u32 = 0xd00d_feed;
    /// Structure-block tokens.
    pub const FDT_BEGIN_NODE: u32 = 1;
    /// See [`FDT_BEGIN_NODE`].
    pub const FDT_END_NODE: u32 = 2;
    /// See [`FDT_BEGIN_NODE`].
    pub const FDT_PROP: u32 = 3;
    /// See [`FDT_BEGIN_NODE`].
    pub const FDT_NOP: u32 = 4;
    /// See [`FDT_BEGIN_NODE`].
    pub const FDT_END: u32 = 9;
    /// The size of a version-17 header, the only version the `fdt` crate reads.
    pub const HEADER_SIZE: usize = 40;
}
use fdt_format::*;
/// How deep nodes may nest; the `fdt` crate keeps 64 levels of parents.
const MAX_DEPTH: usize = 32;

/// How the firmware's PSCI interface is called.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PsciMethod {
    Smc,
    Hvc,
}

/// The firmware's PSCI interface (`compatible = "arm,psci*"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Psci {
    pub method: PsciMethod,
    /// The CPU_ON function id: [`PSCI_0_2_CPU_ON`] for PSCI 0.2 and later, else the `cpu_on` property.
    pub cpu_on: u32,
}

/// How a secondary CPU is started.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EnableMethod {
    Psci,
    /// Write the entry point to `release_addr` and send an event.
    SpinTable {
        release_addr: u64,
    },
    /// The DTB names no method this core knows (usual for the boot CPU).
    None,
}

/// One CPU from `/cpus`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cpu {
    /// The MPIDR affinity fields, from `reg`.
    pub mpidr: u64,
    pub enable_method: EnableMethod,
}

/// The GICv3 (`compatible = "arm,gic-v3"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Gic {
    /// The distributor (GICD), the first `reg` entry.
    pub dist: Region,
    /// The redistributor regions (GICR): the `#redistributor-regions` entries after the distributor.
    pub redist: RegionList,
    /// `redistributor-stride`, when the redistributors are not packed at the architectural 128 KiB.
    pub redist_stride: Option<u64>,
}

/// The generic timer's interrupts, as GIC INTIDs (PPI number + 16).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timer {
    pub secure_phys: u32,
    pub nonsecure_phys: u32,
    pub virt: u32,
    pub hyp: u32,
}

/// The machine as the DTB describes it.
#[derive(Clone, Debug)]
pub struct Platform<'a> {
    /// The checked tree, for anything not described here.
    pub fdt: fdt::Fdt<'a>,
    /// Where the DTB itself lies: the address it was given at, and its `totalsize`.
    pub dtb: Region,
    /// Every `device_type = "memory"` node's `reg` entries, in DTB order.
    pub ram: RegionList,
    /// The `/memreserve/` entries, then every `/reserved-memory` child's `reg` entries. The DTB, the
    /// initrd and the core's own image are not in it: add them before building the frame allocator.
    pub reserved: RegionList,
    /// Up to [`MAX_CPUS`] CPUs, in DTB order.
    pub cpus: Vec<Cpu>,
    /// How many CPUs the DTB lists beyond [`MAX_CPUS`].
    pub cpus_skipped: usize,
    pub gic: Gic,
    pub timer: Timer,
    pub psci: Option<Psci>,
    /// `/chosen/bootargs`.
    pub bootargs: Option<&'a str>,
    /// `/chosen/linux,initrd-start` to `linux,initrd-end`; `None` when absent or empty.
    pub initrd: Option<Region>,
    /// `/chosen/stdout-path` without its `:options` suffix: a path or an alias.
    pub stdout_path: Option<&'a str>,
}

/// Why the DTB cannot describe a machine the core can run on.
///
/// The core never prints one: without a usable DTB it has no console and halts
/// (`boot::primary_main`), and a UART it cannot use only leaves it without a console. The variants
/// say what is wrong, for the host tests and for a debugger.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlatformError {
    /// The blob is not a well-formed version-17 FDT; the core takes its memory map, CPUs and
    /// interrupt controller from it and cannot start without one.
    BadDtb { reason: &'static str },
    /// No `device_type = "memory"` node with a non-empty `reg`: no RAM for the frame allocator.
    NoMemory,
    /// No CPU under `/cpus`: not even the boot CPU's MPIDR.
    NoCpus,
    /// No `"arm,gic-v3"` node: the core takes every interrupt through a GICv3 (on QEMU,
    /// `-machine virt,gic-version=3`).
    NoGicV3,
    /// The GICv3 node lacks usable distributor or redistributor addresses.
    BadGic { reason: &'static str },
    /// No `"arm,armv8-timer"` node: no generic timer interrupts to schedule with.
    NoTimer,
    /// The timer node does not give the generic timer's four PPIs.
    BadTimer { reason: &'static str },
    /// More regions of one kind than a [`RegionList`] holds (`frame::MAX_REGIONS`): merge
    /// neighbouring regions in the DTB or raise the limit.
    TooManyRegions { what: &'static str },
    /// The `/chosen` initrd properties are malformed: the core cannot tell where the initrd lies.
    BadInitrd { reason: &'static str },
    /// A property the core needs is missing or has the wrong size.
    BadProperty { node: &'static str, property: &'static str },
    /// No enabled `arm,pl011` node, and none was named.
    NoUart,
    /// `dtuart=` or `stdout-path` names no node.
    UartNotFound,
    /// `dtuart=` or `stdout-path` names a node that is not an `arm,pl011`, the only UART the core
    /// drives.
    NotPl011,
}

impl<'a> Platform<'a> {
    /// Checks the DTB at `dtb` (given at physical address `dtb_addr`; the slice may run past its
    /// `totalsize`) and reads the machine description from it.
    pub fn parse(dtb: &'a [u8], dtb_addr: u64) -> Result<Self, PlatformError> {
        let blob = validate(dtb)?;
        let bad = |reason| PlatformError::BadDtb { reason };
        let fdt = fdt::Fdt::new(blob).map_err(|_| bad("the fdt crate refused its header"))?;
        let dtb = Region::from_base_size(dtb_addr, blob.len() as u64);
        let dtb = dtb.ok_or(bad("it would end past the top of the address space"))?;
        let (cpus, cpus_skipped) = parse_cpus(&fdt)?;
        let chosen = fdt.find_node("/chosen");
        let bootargs = chosen.and_then(|chosen| {
            let text = string_property(chosen, "bootargs");
            if text.is_none() && chosen.property("bootargs").is_some() {
                log::warn!("/chosen/bootargs is not UTF-8 text; ignoring it");
            }
            text
        });
        let stdout_path = chosen
            .and_then(|chosen| string_property(chosen, "stdout-path"))
            .and_then(|path| path.split(':').next())
            .filter(|path| !path.is_empty());
        Ok(Self {
            dtb,
            ram: parse_ram(&fdt)?,
            reserved: parse_reserved(&fdt, blob)?,
            cpus,
            cpus_skipped,
            gic: parse_gic(&fdt)?,
            timer: parse_timer(&fdt)?,
            psci: parse_psci(&fdt)?,
            bootargs,
            initrd: chosen.map(parse_initrd).transpose()?.flatten(),
            stdout_path,
            fdt,
        })
    }

    /// The PL011 to use: `dtuart` (a DT path like "/pl011@9000000" or an alias name like "serial0",
    /// with any `:options` suffix ignored) if given, else `stdout-path`, else the first enabled
    /// "arm,pl011" node. Its registers are the region returned.
    pub fn uart(&self, dtuart: Option<&str>) -> Result<Region, PlatformError> {
        let node = match dtuart.or(self.stdout_path) {
            Some(spec) => {
                let name = spec.split(':').next().unwrap_or(spec);
                self.resolve(name).ok_or(PlatformError::UartNotFound)?
            }
            None => self
                .fdt
                .all_nodes()
                .find(|&node| is_compatible(node, &["arm,pl011"]) && is_enabled(node))
                .ok_or(PlatformError::NoUart)?,
        };
        if !is_compatible(node, &["arm,pl011"]) {
            return Err(PlatformError::NotPl011);
        }
        let bad = PlatformError::BadProperty { node: "arm,pl011", property: "reg" };
        reg(node).next().flatten().filter(|reg| !reg.is_empty()).ok_or(bad)
    }

    /// The GIC INTID of that PL011's interrupt (`interrupts`: an SPI `<0 n flags>` is INTID
    /// 32 + n); `None` without a usable one, and the core then takes no console input.
    pub fn uart_interrupt(&self, dtuart: Option<&str>) -> Option<u32> {
        let node = match dtuart.or(self.stdout_path) {
            Some(path) => self.resolve(path.split(':').next().unwrap_or(path))?,
            None => self
                .fdt
                .all_nodes()
                .find(|&node| is_compatible(node, &["arm,pl011"]) && is_enabled(node))?,
        };
        let interrupts = node.property("interrupts")?.value;
        let (kind, number) = (be32(interrupts, 0)?, be32(interrupts, 4)?);
        (kind == 0 && number < 988).then_some(number + 32)
    }

    /// The registers of the first enabled PL031 real-time clock (`"arm,pl031"`), where the
    /// domains' wallclock comes from; `None` without one.
    pub fn rtc(&self) -> Option<Region> {
        let node = self
            .fdt
            .all_nodes()
            .find(|&node| is_compatible(node, &["arm,pl031"]) && is_enabled(node))?;
        reg(node).next().flatten().filter(|reg| !reg.is_empty())
    }

    /// The node at an absolute path, or at the path an alias names.
    fn resolve(&self, name: &str) -> Option<FdtNode<'_, 'a>> {
        let path = if name.starts_with('/') { name } else { self.fdt.aliases()?.resolve(name)? };
        // Only absolute paths: the crate's own alias fallback then finds nothing and cannot recurse.
        path.starts_with('/').then(|| self.fdt.find_node(path)).flatten()
    }
}

/// Checks that `dtb` is a well-formed version-17 FDT the `fdt` crate can walk without panicking, and
/// returns it cut to its `totalsize`.
pub fn validate(dtb: &[u8]) -> Result<&[u8], PlatformError> {
    let bad = |reason| PlatformError::BadDtb { reason };
    let field = |index: usize| be32(dtb, index * 4).ok_or(bad("it is shorter than an FDT header"));
    if field(0)? != FDT_MAGIC {
        return Err(bad("it does not start with the FDT magic number"));
    }
    let total = field(1)? as usize;
    if total < HEADER_SIZE || total > dtb.len() {
        return Err(bad("its totalsize is smaller than the header or larger than the buffer"));
    }
    let dtb = &dtb[..total];
    if field(5)? < 17 || field(6)? > 17 {
        return Err(bad("it is not a version-17 compatible FDT"));
    }
    let block = |offset: u32, size: u32| {
        let (offset, size) = (offset as usize, size as usize);
        let end = offset.checked_add(size).filter(|&end| end <= dtb.len());
        end.map(|end| &dtb[offset..end]).ok_or(bad("a block lies outside totalsize"))
    };
    let structure = block(field(2)?, field(9)?)?;
    let strings = block(field(3)?, field(8)?)?;
    if memory_reservations(dtb).any(|entry| entry.is_none()) {
        return Err(bad("the memory reservation block runs past totalsize"));
    }
    check_structure(structure, strings).map_err(bad)?;
    Ok(dtb)
}

/// Walks the structure block token by token.
fn check_structure(structure: &[u8], strings: &[u8]) -> Result<(), &'static str> {
    let mut offset = 0;
    let mut depth = 0;
    let mut in_properties = false;
    let mut seen_root = false;
    loop {
        let token =
            be32(structure, offset).ok_or("the structure block ends before its END token")?;
        offset += 4;
        match token {
            FDT_BEGIN_NODE => {
                let name =
                    c_string(structure, offset).ok_or("a node name is not terminated UTF-8")?;
                if depth == 0 && (seen_root || !name.is_empty()) {
                    return Err("the tree does not have exactly one root node");
                }
                seen_root = true;
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err("nodes nest more than 32 deep");
                }
                offset = align4(offset + name.len() + 1);
                in_properties = true;
            }
            FDT_END_NODE => {
                if depth == 0 {
                    return Err("an END_NODE token closes no node");
                }
                depth -= 1;
                in_properties = false;
            }
            FDT_PROP => {
                if !in_properties {
                    return Err("a property follows a child node or lies outside every node");
                }
                let length = be32(structure, offset).ok_or("a property header is cut short")?;
                let name_offset =
                    be32(structure, offset + 4).ok_or("a property header is cut short")?;
                offset += 8;
                let end = offset.checked_add(length as usize).filter(|&end| end <= structure.len());
                let end = end.ok_or("a property value runs past the structure block")?;
                let name = c_string(strings, name_offset as usize)
                    .ok_or("a property name is not terminated UTF-8 in the strings block")?;
                if name.contains('/') {
                    return Err("a property name contains '/'");
                }
                let is_cells =
                    matches!(name, "#address-cells" | "#size-cells" | "#interrupt-cells");
                if is_cells && length != 4 {
                    return Err(
                        "a #address-cells, #size-cells or #interrupt-cells is not one cell",
                    );
                }
                offset = align4(end);
            }
            FDT_END if depth == 0 && seen_root => return Ok(()),
            FDT_END => return Err("the END token comes before the root node is closed"),
            FDT_NOP => {
                return Err("it holds NOP tokens, which this parser refuses (repack it with dtc)")
            }
            _ => return Err("the structure block holds an unknown token"),
        }
    }
}

fn parse_ram(fdt: &fdt::Fdt<'_>) -> Result<RegionList, PlatformError> {
    let mut ram = RegionList::new();
    let memory_nodes = fdt
        .all_nodes()
        .filter(|&node| string_property(node, "device_type") == Some("memory") && is_enabled(node));
    push_reg(&mut ram, memory_nodes, "memory", "RAM banks")?;
    if ram.is_empty() {
        return Err(PlatformError::NoMemory);
    }
    Ok(ram)
}

fn parse_reserved(fdt: &fdt::Fdt<'_>, blob: &[u8]) -> Result<RegionList, PlatformError> {
    let mut reserved = RegionList::new();
    // `validate` checked that the block is terminated inside the blob.
    for (address, size) in memory_reservations(blob).map_while(|entry| entry) {
        let bad = PlatformError::BadDtb { reason: "a /memreserve/ entry ends past 2^64" };
        push(&mut reserved, Region::from_base_size(address, size).ok_or(bad)?, "reserved regions")?;
    }
    let children = fdt.find_node("/reserved-memory").into_iter().flat_map(|node| node.children());
    push_reg(&mut reserved, children, "/reserved-memory child", "reserved regions")?;
    Ok(reserved)
}

fn parse_cpus(fdt: &fdt::Fdt<'_>) -> Result<(Vec<Cpu>, usize), PlatformError> {
    let mut cpus = Vec::new();
    let mut skipped = 0;
    let cpu_nodes = fdt.find_node("/cpus").into_iter().flat_map(|cpus| cpus.children());
    for node in cpu_nodes.filter(|&node| string_property(node, "device_type") == Some("cpu")) {
        let bad_reg = PlatformError::BadProperty { node: "/cpus/cpu", property: "reg" };
        let mpidr = reg(node).next().flatten().ok_or(bad_reg)?.start;
        let enable_method = match string_property(node, "enable-method") {
            Some("psci") => EnableMethod::Psci,
            Some("spin-table") => {
                let bad =
                    PlatformError::BadProperty { node: "/cpus/cpu", property: "cpu-release-addr" };
                let release = cells_property(node, "cpu-release-addr").flatten();
                EnableMethod::SpinTable { release_addr: release.ok_or(bad)? }
            }
            Some(other) => {
                log::warn!("CPU {mpidr:#x}: enable-method {other:?} is not one the core knows");
                EnableMethod::None
            }
            None => EnableMethod::None,
        };
        if cpus.len() < MAX_CPUS {
            cpus.push(Cpu { mpidr, enable_method });
        } else {
            skipped += 1;
        }
    }
    if skipped > 0 {
        log::warn!(
            "the DTB lists {skipped} CPUs beyond the {MAX_CPUS} the core supports; skipping them"
        );
    }
    if cpus.is_empty() {
        return Err(PlatformError::NoCpus);
    }
    Ok((cpus, skipped))
}

fn parse_gic(fdt: &fdt::Fdt<'_>) -> Result<Gic, PlatformError> {
    let node = fdt.find_compatible(&["arm,gic-v3"]).ok_or(PlatformError::NoGicV3)?;
    let bad = |reason| PlatformError::BadGic { reason };
    let regions = cells_property(node, "#redistributor-regions").unwrap_or(Some(1));
    let regions = regions.ok_or(bad("#redistributor-regions is not a cell"))?;
    if regions == 0 {
        return Err(bad("#redistributor-regions is 0"));
    }
    let mut entries = reg(node).map(|entry| {
        entry.filter(|region| !region.is_empty()).ok_or(bad("a reg entry is malformed or empty"))
    });
    let dist = entries.next().ok_or(bad("reg has no distributor entry"))??;
    let mut redist = RegionList::new();
    for _ in 0..regions {
        let region =
            entries.next().ok_or(bad("reg has fewer entries than #redistributor-regions"))??;
        push(&mut redist, region, "GIC redistributor regions")?;
    }
    let redist_stride = match cells_property(node, "redistributor-stride") {
        None => None,
        Some(stride) => Some(
            stride
                .filter(|&stride| stride != 0)
                .ok_or(bad("redistributor-stride is 0 or not one or two cells"))?,
        ),
    };
    Ok(Gic { dist, redist, redist_stride })
}

fn parse_timer(fdt: &fdt::Fdt<'_>) -> Result<Timer, PlatformError> {
    let node = fdt
        .find_compatible(&["arm,armv8-timer", "arm,armv7-timer"])
        .ok_or(PlatformError::NoTimer)?;
    let bad = |reason| PlatformError::BadTimer { reason };
    let interrupts = node.property("interrupts").ok_or(bad("it has no interrupts property"))?.value;
    // The GIC binding: three cells per interrupt (type, number, flags); type 1 is a PPI.
    if interrupts.len() < 4 * 12 || !interrupts.len().is_multiple_of(12) {
        return Err(bad("interrupts is not four or more 3-cell GIC interrupts"));
    }
    let intid = |index: usize| {
        let kind = be32(interrupts, index * 12);
        let number = be32(interrupts, index * 12 + 4).filter(|&number| number < 16);
        match (kind, number) {
            (Some(1), Some(number)) => Ok(number + 16),
            _ => Err(bad("a timer interrupt is not a PPI")),
        }
    };
    Ok(Timer { secure_phys: intid(0)?, nonsecure_phys: intid(1)?, virt: intid(2)?, hyp: intid(3)? })
}

fn parse_psci(fdt: &fdt::Fdt<'_>) -> Result<Option<Psci>, PlatformError> {
    let psci_0_2 = ["arm,psci-1.0", "arm,psci-0.2"];
    let Some(node) = fdt.find_compatible(&["arm,psci-1.0", "arm,psci-0.2", "arm,psci"]) else {
        return Ok(None);
    };
    let method = match string_property(node, "method") {
        Some("smc") => PsciMethod::Smc,
        Some("hvc") => PsciMethod::Hvc,
        _ => return Err(PlatformError::BadProperty { node: "psci", property: "method" }),
    };
    let cpu_on = if is_compatible(node, &psci_0_2) {
        PSCI_0_2_CPU_ON
    } else {
        let value = node.property("cpu_on").filter(|p| p.value.len() == 4);
        let bad = PlatformError::BadProperty { node: "psci", property: "cpu_on" };
        value.and_then(|p| be32(p.value, 0)).ok_or(bad)?
    };
    Ok(Some(Psci { method, cpu_on }))
}

fn parse_initrd(chosen: FdtNode<'_, '_>) -> Result<Option<Region>, PlatformError> {
    let bad = |reason| PlatformError::BadInitrd { reason };
    let cell = |name| cells_property(chosen, name);
    match (cell("linux,initrd-start"), cell("linux,initrd-end")) {
        (None, None) => Ok(None),
        (Some(Some(start)), Some(Some(end))) if start <= end => {
            Ok(Some(Region::new(start, end)).filter(|initrd| !initrd.is_empty()))
        }
        (Some(Some(_)), Some(Some(_))) => {
            Err(bad("linux,initrd-end lies before linux,initrd-start"))
        }
        (Some(_), Some(_)) => Err(bad("an initrd property is not one or two cells")),
        _ => Err(bad("only one of linux,initrd-start and linux,initrd-end is present")),
    }
}

/// The `/memreserve/` entries as (address, size), up to the (0, 0) that ends the block; `None` for an
/// entry that runs past the end of `dtb` (after it, the iterator is not used further).
fn memory_reservations(dtb: &[u8]) -> impl Iterator<Item = Option<(u64, u64)>> + '_ {
    let start = be32(dtb, 16).unwrap_or_default() as usize;
    (start..)
        .step_by(16)
        .map(|offset| Some((be64(dtb, offset)?, be64(dtb, offset.checked_add(8)?)?)))
        .take_while(|&entry| entry != Some((0, 0)))
}

/// Adds the `reg` entries of every node in `nodes` to `list`.
fn push_reg<'a>(
    list: &mut RegionList,
    nodes: impl Iterator<Item = FdtNode<'a, 'a>>,
    node: &'static str,
    what: &'static str,
) -> Result<(), PlatformError> {
    for entry in nodes.flat_map(reg) {
        push(list, entry.ok_or(PlatformError::BadProperty { node, property: "reg" })?, what)?;
    }
    Ok(())
}

fn push(list: &mut RegionList, region: Region, what: &'static str) -> Result<(), PlatformError> {
    if region.is_empty() {
        return Ok(());
    }
    list.push(region).map_err(|_| PlatformError::TooManyRegions { what })
}

/// The entries of `node`'s `reg`, decoded with its parent's `#address-cells` and `#size-cells`;
/// `None` for an entry that is malformed (cells other than one or two, an end past 2^64, a trailing
/// partial entry).
fn reg<'a>(node: FdtNode<'_, 'a>) -> impl Iterator<Item = Option<Region>> + 'a {
    let length = node.property("reg").map_or(0, |property| property.value.len());
    let first = node.raw_reg().and_then(|mut entries| entries.next());
    let entry = first.map_or(0, |raw| raw.address.len() + raw.size.len());
    // A zero-cell entry would make the crate's iterator endless: bound it by the property's length.
    let count = length.checked_div(entry).unwrap_or(0);
    let malformed = count * entry != length;
    let entries = node.raw_reg().into_iter().flatten().take(count).map(|raw| {
        let size = if raw.size.is_empty() { Some(0) } else { cells(raw.size) };
        Region::from_base_size(cells(raw.address)?, size?)
    });
    entries.chain(malformed.then_some(None))
}

/// A one- or two-cell big-endian number.
fn cells(bytes: &[u8]) -> Option<u64> {
    match bytes.len() {
        4 => be32(bytes, 0).map(u64::from),
        8 => be64(bytes, 0),
        _ => None,
    }
}

/// `node`'s property `name` as a one- or two-cell number: `None` when absent, `Some(None)` when
/// malformed.
fn cells_property(node: FdtNode<'_, '_>, name: &str) -> Option<Option<u64>> {
    node.property(name).map(|property| cells(property.value))
}

/// The first string of a string property, if it is UTF-8.
fn string_property<'a>(node: FdtNode<'_, 'a>, name: &str) -> Option<&'a str> {
    let value = node.property(name)?.value;
    core::str::from_utf8(value.split(|&byte| byte == 0).next()?).ok()
}

fn is_compatible(node: FdtNode<'_, '_>, with: &[&str]) -> bool {
    node.compatible().is_some_and(|compatible| compatible.all().any(|c| with.contains(&c)))
}

/// Whether `status` is absent, "okay" or "ok".
fn is_enabled(node: FdtNode<'_, '_>) -> bool {
    matches!(string_property(node, "status"), None | Some("okay" | "ok"))
}

fn be32(bytes: &[u8], offset: usize) -> Option<u32> {
    let bytes = bytes.get(offset..offset.checked_add(4)?)?;
    Some(u32::from_be_bytes(bytes.try_into().ok()?))
}

fn be64(bytes: &[u8], offset: usize) -> Option<u64> {
    let bytes = bytes.get(offset..offset.checked_add(8)?)?;
    Some(u64::from_be_bytes(bytes.try_into().ok()?))
}

/// The NUL-terminated UTF-8 string at `offset`.
fn c_string(bytes: &[u8], offset: usize) -> Option<&str> {
    let tail = bytes.get(offset..)?;
    let length = tail.iter().position(|&byte| byte == 0)?;
    core::str::from_utf8(&tail[..length]).ok()
}

fn align4(offset: usize) -> usize {
    offset.next_multiple_of(4)
}

#[cfg(test)]
mod tests;
