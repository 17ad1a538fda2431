//! The boot manifest: the postcard-encoded description of the system at the start of a bundle's
//! payload, and the checks the core repeats on it at boot.
//!
//! The host tool checks the TOML manifest with file:line:column errors before it packs this; the
//! core checks it again here ([`BootManifest::validate`]), because a bundle is input from outside
//! the core and the two checks must not drift: the limits below are the only definition of both.
//!
//! # Invariants
//! - A manifest that passed [`BootManifest::validate`] for a payload of `payload_len` bytes has:
//!   unique domain names of 1..=[`DOMAIN_NAME_MAX_LEN`] characters of `[A-Za-z0-9_-]`; every
//!   domain's module index in range; every module inside the payload, [`MODULE_ALIGN`]-aligned, in
//!   ascending order and not overlapping the one before; vCPUs in 1..=[`MAX_VCPUS`], memory in
//!   1..=[`DOMAIN_MEMORY_MAX_MIB`] MiB, a non-zero weight, a cap of 0 or at most
//!   [`CAP_PERCENT_PER_VCPU`] × vCPUs, non-empty hard and soft affinity; capabilities without
//!   duplicates, each `dm:`/`introspect:` naming another domain of the manifest and each
//!   `hardware:` naming a non-empty device; at most one domain holding [`Capability::Xenstore`].

use core::fmt;

use serde::{Deserialize, Serialize};

use super::alloc::vec::Vec;
use crate::xen::arch_arm::{
    GUEST_GICV3_GICD_BASE, GUEST_GICV3_GICR0_BASE, GUEST_GICV3_GICR0_SIZE, GUEST_GNTTAB_BASE,
    GUEST_GNTTAB_SIZE, GUEST_GPADDR_BITS, GUEST_MAGIC_BASE, GUEST_MAGIC_SIZE, GUEST_PL011_BASE,
    GUEST_PL011_SIZE, GUEST_RAM0_BASE, GUEST_RAM0_SIZE, PRESERVED_REGION_BASE,
    PRESERVED_REGION_SIZE,
};

/// The longest domain name, in characters (ASCII, so also bytes).
pub const DOMAIN_NAME_MAX_LEN: usize = 64;
/// The most vCPUs a domain may have (xl.cfg `vcpus`).
pub const MAX_VCPUS: u32 = 8;
/// The most memory a domain may have, in MiB (xl.cfg `memory`); the least is 1 MiB.
pub const DOMAIN_MEMORY_MAX_MIB: u32 = 4096;
/// credit2's weight when the manifest does not give one (Xen's default).
pub const DEFAULT_WEIGHT: u16 = 256;
/// A cap is at most this many percent of one physical CPU per vCPU (xl.cfg `cap`).
pub const CAP_PERCENT_PER_VCPU: u32 = 100;
/// Affinity masks have one bit per physical CPU `0..AFFINITY_CPUS`.
pub const AFFINITY_CPUS: u32 = 64;
/// The affinity mask that allows every physical CPU ("all").
pub const AFFINITY_ALL: u64 = u64::MAX;
/// Module offsets are multiples of this, counted from the payload start (not the bundle start; see
/// the `bundle` module).
pub const MODULE_ALIGN: u64 = 4096;
/// The largest preserved region, in KiB (64 MiB: what
/// [`PRESERVED_REGION_SIZE`](crate::xen::arch_arm::PRESERVED_REGION_SIZE) leaves room for).
pub const PRESERVED_MAX_KIB: u32 = 64 * 1024;

/// The most load chunks one prepared boot image may have (an ELF file's loadable segments and
/// the device tree).
pub const MAX_LOAD_CHUNKS: usize = 32;

/// What the core is asked to boot. Strings borrow from the bundle; the lists need the core's heap.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BootManifest<'a> {
    /// The system's name (the manifest file's `[system] name`).
    pub name: &'a str,
    /// The hypervisor command line; `/chosen/bootargs` from the bootloader is applied after it.
    pub cmdline: &'a str,
    /// Every domain of the system, in manifest order: those with [`DomainSpec::boot`] are built at
    /// boot, the others are there for the control domain to create at run time.
    #[serde(borrow)]
    pub domains: Vec<DomainSpec<'a>>,
    /// The modules, in payload order: domain images and ramdisks (several domains may share
    /// one), boot domains' device trees (`<name>.dtb`) and the xl.cfg texts of domains not built
    /// at boot (`<name>.cfg`). The host tool gives each its own name.
    #[serde(borrow)]
    pub modules: Vec<ModuleRef<'a>>,
}

/// A domain image in the payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModuleRef<'a> {
    /// Where it came from: the program's name, the image file as the manifest wrote it, the
    /// `debian:` name, or `<domain>.dtb`/`<domain>.cfg`.
    pub name: &'a str,
    /// Byte offset from the payload start; a multiple of [`MODULE_ALIGN`].
    pub offset: u64,
    /// Length in bytes (an ELF file).
    pub size: u64,
}

/// One `[[domain]]` of the manifest, checked by the host tool and again by [`BootManifest::validate`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DomainSpec<'a> {
    /// Unique; 1..=[`DOMAIN_NAME_MAX_LEN`] characters of `[A-Za-z0-9_-]`.
    pub name: &'a str,
    /// Index into [`BootManifest::modules`] of the domain's ELF image.
    pub module: u32,
    /// RAM in MiB, 1..=[`DOMAIN_MEMORY_MAX_MIB`].
    pub memory_mib: u32,
    /// Number of vCPUs, 1..=[`MAX_VCPUS`].
    pub vcpus: u32,
    /// What the domain may do beyond its own business (see ARCHITECTURE.md, "Privilege").
    #[serde(borrow)]
    pub capabilities: Vec<Capability<'a>>,
    /// credit2 weight, 1..=65535 (`xen_domctl_sched_credit2.weight`).
    pub weight: u16,
    /// credit2 cap in percent of one physical CPU; 0 means no cap, else at most
    /// [`CAP_PERCENT_PER_VCPU`] × `vcpus` (`xen_domctl_sched_credit2.cap`).
    pub cap: u16,
    /// Physical CPUs the vCPUs may run on: bit `n` is pCPU `n`; [`AFFINITY_ALL`] is all. Non-zero.
    pub hard_affinity: u64,
    /// Physical CPUs the scheduler prefers, same form. Non-zero.
    pub soft_affinity: u64,
    /// What the core does when the domain stops, by why it stopped.
    pub on_shutdown: ShutdownActions,
    /// KiB of preserved region: memory the core keeps, unscrubbed and at
    /// [`PRESERVED_REGION_BASE`](crate::xen::arch_arm::PRESERVED_REGION_BASE), across the
    /// domain's restarts. 0: none; else a multiple of 4 up to [`PRESERVED_MAX_KIB`].
    pub preserved_kib: u32,
    /// Built and started at boot (`true`), or only carried for the control domain (`false`).
    pub boot: bool,
    /// The domain's `/chosen/bootargs`.
    pub cmdline: &'a str,
    /// What the core copies to build the domain, prepared by the host tool: present exactly for
    /// domains with [`DomainSpec::boot`] (the control domain prepares the others itself).
    pub prepared: Option<BootImage>,
    /// Hardware the domain drives itself: empty unless it holds a `hardware:` capability and is
    /// a boot domain.
    pub passthrough: Passthrough,
}

/// A boot domain's passed-through hardware: xl.cfg's `iomem` and `irqs` (Xen
/// `docs/man/xl.cfg.5.pod.in`, both 1:1 here: guest frame = host frame, virtual INTID = physical
/// INTID, as Xen on Arm maps them) and a direct-mapped DMA window (dom0less `xen,static-mem` with
/// `direct-map`, Xen `docs/misc/arm/device-tree/booting.txt`): RAM the core never hands out,
/// mapped at guest-physical = host-physical so a device without an IOMMU can reach it.
///
/// [`Passthrough::check`] holds what every domain's must satisfy, [`Passthrough::shares`] what
/// two domains' must not; the core adds what only the platform knows (the frames are device
/// frames, the window is free RAM, the interrupts are not the core's).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Passthrough {
    /// MMIO frame ranges, mapped as device memory at the same guest frames.
    pub iomem: Vec<FrameRange>,
    /// SPIs (physical INTIDs in [`PASSTHROUGH_INTIDS`]) delivered as the same virtual INTIDs.
    pub irqs: Vec<u32>,
    /// The DMA window, mapped as normal memory at the same guest frames.
    pub direct_map: Option<FrameRange>,
}

/// `count` frames from frame number `first` (4 KiB frames).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FrameRange {
    /// The first frame number (its address shifted right by 12).
    pub first: u64,
    /// How many frames, at least 1.
    pub count: u64,
}

impl FrameRange {
    /// The byte addresses it covers; `None` if it is empty or overflows.
    pub fn bytes(&self) -> Option<core::ops::Range<u64>> {
        let end = self.first.checked_add(self.count)?.checked_mul(4096)?;
        (self.count > 0).then_some(self.first * 4096..end)
    }
}

/// The INTIDs a domain may be given: the SPIs of the virtual distributor (INTID 32 is the
/// guest's vPL011, `GUEST_VPL011_SPI` in Xen's `arch-arm.h`, so the first is 33).
pub const PASSTHROUGH_INTIDS: core::ops::Range<u32> = 33..96;

/// The guest-physical ranges of a domain's own layout that passed-through hardware may not
/// cover (Xen's `arch-arm.h` guest layout: vGIC, vPL011, grant table, magic pages; Xenolith's
/// preserved region; the domain's RAM is added by [`Passthrough::check`]).
const GUEST_LAYOUT: [(u64, u64); 5] = [
    (GUEST_GICV3_GICD_BASE, GUEST_GICV3_GICR0_BASE + GUEST_GICV3_GICR0_SIZE),
    (GUEST_PL011_BASE, GUEST_PL011_BASE + GUEST_PL011_SIZE),
    (GUEST_GNTTAB_BASE, GUEST_GNTTAB_BASE + GUEST_GNTTAB_SIZE),
    (GUEST_MAGIC_BASE, GUEST_MAGIC_BASE + GUEST_MAGIC_SIZE),
    (PRESERVED_REGION_BASE, PRESERVED_REGION_BASE + PRESERVED_REGION_SIZE),
];

/// Why a domain's [`Passthrough`] is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PassthroughProblem {
    /// Hardware given to a domain without a `hardware:` capability.
    NoCapability,
    /// Hardware given to a domain the control domain builds (not at boot).
    NotBootDomain,
    /// An `iomem` range (index) or the window (`None`) is empty or beyond 40-bit addresses.
    BadRange { iomem: Option<usize> },
    /// An `iomem` range (index) or the window (`None`) covers part of the domain's own layout
    /// (its RAM, vGIC, grant table, magic pages or preserved region) or another of its ranges.
    Clash { iomem: Option<usize> },
    /// An interrupt (index) outside [`PASSTHROUGH_INTIDS`] or given twice.
    BadIrq { irq: usize },
}

impl fmt::Display for PassthroughProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = |f: &mut fmt::Formatter<'_>, iomem: Option<usize>| match iomem {
            Some(index) => write!(f, "iomem range {index}"),
            None => f.write_str("the direct_map window"),
        };
        match *self {
            Self::NoCapability => f.write_str("passthrough needs a `hardware:` capability"),
            Self::NotBootDomain => f.write_str("only boot domains get passthrough hardware"),
            Self::BadRange { iomem } => {
                what(f, iomem)?;
                f.write_str(" is empty or beyond 40-bit addresses")
            }
            Self::Clash { iomem } => {
                what(f, iomem)?;
                f.write_str(
                    " overlaps the domain's RAM, vGIC, grant table, magic pages, preserved \
                     region or another of its ranges",
                )
            }
            Self::BadIrq { irq } => write!(
                f,
                "interrupt {irq} is given twice or is not an SPI in {}..{}",
                PASSTHROUGH_INTIDS.start, PASSTHROUGH_INTIDS.end
            ),
        }
    }
}

impl Passthrough {
    /// Whether there is nothing to pass through.
    pub fn is_empty(&self) -> bool {
        self.iomem.is_empty() && self.irqs.is_empty() && self.direct_map.is_none()
    }

    /// The ranges, `iomem` first (index `Some(i)`), then the window (`None`).
    fn ranges(&self) -> impl Iterator<Item = (Option<usize>, &FrameRange)> {
        let iomem = self.iomem.iter().enumerate().map(|(index, range)| (Some(index), range));
        iomem.chain(self.direct_map.iter().map(|range| (None, range)))
    }

    /// The checks of a domain's passthrough on its own: a `hardware:` capability, a boot
    /// domain, ranges inside 40-bit addresses that miss the domain's layout (`memory_mib` of RAM
    /// at `GUEST_RAM0_BASE`) and each other, distinct SPIs.
    pub fn check(
        &self,
        hardware: bool,
        boot: bool,
        memory_mib: u32,
    ) -> Result<(), PassthroughProblem> {
        if self.is_empty() {
            return Ok(());
        }
        if !hardware {
            return Err(PassthroughProblem::NoCapability);
        }
        if !boot {
            return Err(PassthroughProblem::NotBootDomain);
        }
        let ram = (GUEST_RAM0_BASE, GUEST_RAM0_BASE + (u64::from(memory_mib) << 20));
        let mut seen: Vec<(u64, u64)> = GUEST_LAYOUT.into_iter().chain([ram]).collect();
        for (iomem, range) in self.ranges() {
            let bytes = range.bytes().filter(|bytes| bytes.end <= 1 << GUEST_GPADDR_BITS);
            let bytes = bytes.ok_or(PassthroughProblem::BadRange { iomem })?;
            if seen.iter().any(|&(start, end)| bytes.start < end && start < bytes.end) {
                return Err(PassthroughProblem::Clash { iomem });
            }
            seen.push((bytes.start, bytes.end));
        }
        for (irq, intid) in self.irqs.iter().enumerate() {
            if !PASSTHROUGH_INTIDS.contains(intid) || self.irqs[..irq].contains(intid) {
                return Err(PassthroughProblem::BadIrq { irq });
            }
        }
        Ok(())
    }

    /// Whether this and `other` (two domains') share a frame or an interrupt.
    pub fn shares(&self, other: &Passthrough) -> bool {
        let overlap = |a: &FrameRange, b: &FrameRange| match (a.bytes(), b.bytes()) {
            (Some(a), Some(b)) => a.start < b.end && b.start < a.end,
            _ => false,
        };
        self.ranges().any(|(_, a)| other.ranges().any(|(_, b)| overlap(a, b)))
            || self.irqs.iter().any(|irq| other.irqs.contains(irq))
    }
}

/// A boot domain's image as the host tool prepared it (with the `xenolith-builder` crate the
/// control domain also uses): the byte runs the core copies into the domain's RAM, which it
/// zeroes first, and where vCPU 0 starts. The core parses no image and writes no device tree.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BootImage {
    /// What to copy, 1..=[`MAX_LOAD_CHUNKS`] runs that do not overlap in the domain's RAM; the
    /// domain's device tree is one of them.
    pub chunks: Vec<LoadChunk>,
    /// vCPU 0's first PC, in the domain's RAM and 4-byte aligned; it starts at EL1 with the MMU
    /// off and interrupts masked.
    pub entry: u64,
    /// vCPU 0's `x0`..`x3` (Linux's arm64 boot protocol: the device tree's address, then 0).
    pub registers: [u64; 4],
}

/// One run of bytes of a module, copied to the domain's guest-physical `address`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoadChunk {
    /// Guest-physical address of its first byte; the whole run lies in the domain's RAM
    /// (`GUEST_RAM0_BASE` up, as much as it has).
    pub address: u64,
    /// Index into [`BootManifest::modules`] of the module holding its bytes.
    pub module: u32,
    /// Offset of its first byte in that module.
    pub offset: u64,
    /// Bytes, at least 1; `offset + size` is inside the module.
    pub size: u64,
}

/// A privilege a domain holds, as ARCHITECTURE.md section 4 lists them.
///
/// The manifest spells them `control`, `xenstore`, `console`, `dm:<domain>`, `hardware:<device>`
/// and `introspect:<domain>` ([`Capability::parse`] and `Display` convert).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Capability<'a> {
    /// domctl and sysctl over other, non-control domains (dom0's toolstack role).
    Control,
    /// The xenstore domain.
    Xenstore,
    /// Reads the hypervisor console.
    Console,
    /// dm_op on `target`, and foreign mapping of its memory (dm_restrict).
    DeviceModel {
        /// The name of another domain of the manifest.
        target: &'a str,
    },
    /// MMIO and interrupt passthrough of `device`.
    Hardware {
        /// The device, as the platform names it; not empty.
        device: &'a str,
    },
    /// Introspection (VMI) of `target`.
    Introspect {
        /// The name of another domain of the manifest.
        target: &'a str,
    },
}

impl<'a> Capability<'a> {
    /// Reads the manifest spelling; `None` if `text` is no capability or names an empty target.
    pub fn parse(text: &'a str) -> Option<Self> {
        let capability = match text {
            "control" => Self::Control,
            "xenstore" => Self::Xenstore,
            "console" => Self::Console,
            _ => {
                let (kind, name) = text.split_once(':')?;
                if name.is_empty() {
                    return None;
                }
                match kind {
                    "dm" => Self::DeviceModel { target: name },
                    "hardware" => Self::Hardware { device: name },
                    "introspect" => Self::Introspect { target: name },
                    _ => return None,
                }
            }
        };
        Some(capability)
    }

    /// The domain a `dm:` or `introspect:` capability names.
    pub fn target(&self) -> Option<&'a str> {
        match *self {
            Self::DeviceModel { target } | Self::Introspect { target } => Some(target),
            _ => None,
        }
    }
}

impl fmt::Display for Capability<'_> {
    /// The manifest spelling.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Control => f.write_str("control"),
            Self::Xenstore => f.write_str("xenstore"),
            Self::Console => f.write_str("console"),
            Self::DeviceModel { target } => write!(f, "dm:{target}"),
            Self::Hardware { device } => write!(f, "hardware:{device}"),
            Self::Introspect { target } => write!(f, "introspect:{target}"),
        }
    }
}

/// What the core does when a domain stops (ARCHITECTURE.md section 5).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RestartPolicy {
    /// Leave it stopped.
    #[default]
    Never,
    /// Rebuild it from its pristine image after a crash, not after a clean shutdown.
    OnCrash,
    /// Rebuild it whenever it stops.
    Always,
}

impl RestartPolicy {
    /// The actions this shorthand stands for: `never` destroys whatever the reason, `on-crash`
    /// restarts after a crash only, `always` restarts whatever the reason.
    pub fn actions(self) -> ShutdownActions {
        let (poweroff, reboot, crash) = match self {
            Self::Never => (Destroy, Destroy, Destroy),
            Self::OnCrash => (Destroy, Destroy, Restart),
            Self::Always => (Restart, Restart, Restart),
        };
        ShutdownActions { poweroff, reboot, crash }
    }

    /// Every policy, in the order the manifest documents them.
    pub const ALL: [RestartPolicy; 3] = [Self::Never, Self::OnCrash, Self::Always];

    /// The manifest spelling: `never`, `on-crash`, `always`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Never => "never",
            Self::OnCrash => "on-crash",
            Self::Always => "always",
        }
    }

    /// Reads the manifest spelling.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|policy| policy.as_str() == text)
    }
}

impl fmt::Display for RestartPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the core does with a domain that shut down, xl.cfg's `on_poweroff`, `on_reboot` and
/// `on_crash` actions (Xen `docs/man/xl.cfg.5.pod.in`) that need no toolstack; `rename-restart`,
/// `coredump-*` and `soft-reset` are not offered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ShutdownAction {
    /// Destroy it: every frame goes back to the core.
    Destroy,
    /// Destroy it and build it again from its image, under the same domain id.
    Restart,
    /// Keep it, shut down and not running, until it is destroyed (`XEN_DOMCTL_destroydomain`).
    Preserve,
}

use ShutdownAction::{Destroy, Restart};

impl ShutdownAction {
    /// Every action, in the manifest's order.
    pub const ALL: [ShutdownAction; 3] = [Destroy, Restart, Self::Preserve];

    /// The xl.cfg spelling: `destroy`, `restart`, `preserve`.
    pub fn as_str(self) -> &'static str {
        match self {
            Destroy => "destroy",
            Restart => "restart",
            Self::Preserve => "preserve",
        }
    }

    /// Reads the xl.cfg spelling.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|action| action.as_str() == text)
    }
}

/// A domain's [`ShutdownAction`] for each reason it can stop with (`SHUTDOWN_*`,
/// `xen/include/public/sched.h`); `SHUTDOWN_watchdog` counts as a crash and `SHUTDOWN_suspend`
/// and `SHUTDOWN_soft_reset` as a reboot, as xl treats them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ShutdownActions {
    /// `on_poweroff` (xl's default: destroy).
    pub poweroff: ShutdownAction,
    /// `on_reboot` (xl's default: restart).
    pub reboot: ShutdownAction,
    /// `on_crash` (xl's default: destroy).
    pub crash: ShutdownAction,
}

impl ShutdownActions {
    /// xl's defaults: destroy on power-off and crash, restart on reboot.
    pub const XL_DEFAULT: Self = Self { poweroff: Destroy, reboot: Restart, crash: Destroy };
    /// A domain the control domain created: kept, shut down, whatever the reason, for the
    /// toolstack to act on as its xl.cfg says (Xen's hypervisor leaves that to xl too).
    pub const TOOLSTACK: Self = Self {
        poweroff: ShutdownAction::Preserve,
        reboot: ShutdownAction::Preserve,
        crash: ShutdownAction::Preserve,
    };

    /// The action for `SHUTDOWN_*` reason `reason`.
    pub fn for_reason(self, reason: u32) -> ShutdownAction {
        match reason {
            crate::xen::sched::SHUTDOWN_poweroff => self.poweroff,
            crate::xen::sched::SHUTDOWN_crash | crate::xen::sched::SHUTDOWN_watchdog => self.crash,
            crate::xen::sched::SHUTDOWN_reboot
            | crate::xen::sched::SHUTDOWN_suspend
            | crate::xen::sched::SHUTDOWN_soft_reset => self.reboot,
            // xl destroys a domain that shut down with a code it does not know.
            _ => ShutdownAction::Destroy,
        }
    }
}

/// Whether `name` is a valid domain name: 1..=[`DOMAIN_NAME_MAX_LEN`] of `[A-Za-z0-9_-]`.
pub fn is_valid_domain_name(name: &str) -> bool {
    (1..=DOMAIN_NAME_MAX_LEN).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Why the core refuses a decoded manifest. Domains, modules and capabilities are named by their
/// index in their list, counting from 0 (the problem borrows nothing, so it outlives the bundle).
///
/// The host tool checks all of this with better messages before it packs a bundle, so each of
/// these means a bundle packed by a different host tool, or a bug.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ManifestProblem {
    /// A domain name is empty, too long, or has a character outside `[A-Za-z0-9_-]`.
    BadName { domain: usize },
    /// Two domains share a name.
    DuplicateName { domain: usize, first: usize },
    /// A domain's module index is past the module list.
    ModuleIndex { domain: usize, module: u32, modules: usize },
    /// A module reaches past the payload.
    ModuleOutOfBounds { module: usize, offset: u64, size: u64, payload: u64 },
    /// A module's offset is not a multiple of [`MODULE_ALIGN`].
    ModuleMisaligned { module: usize, offset: u64 },
    /// A module starts before the end of the manifest bytes or of the module before it.
    ModuleOverlap { module: usize, offset: u64, start: u64 },
    /// A domain's vCPU count is outside 1..=[`MAX_VCPUS`].
    VcpusOutOfRange { domain: usize, vcpus: u32 },
    /// A domain's memory is outside 1..=[`DOMAIN_MEMORY_MAX_MIB`] MiB.
    MemoryOutOfRange { domain: usize, memory_mib: u32 },
    /// A domain's weight is 0.
    WeightOutOfRange { domain: usize },
    /// A domain's cap is above [`CAP_PERCENT_PER_VCPU`] × its vCPUs.
    CapOutOfRange { domain: usize, cap: u16, vcpus: u32 },
    /// A domain's hard (`soft: false`) or soft affinity allows no CPU.
    EmptyAffinity { domain: usize, soft: bool },
    /// A `hardware:` capability names an empty device.
    EmptyDevice { domain: usize, capability: usize },
    /// A `dm:` or `introspect:` capability names no domain of the manifest, or its own domain.
    CapabilityTarget { domain: usize, capability: usize },
    /// A domain lists the same capability twice.
    DuplicateCapability { domain: usize, capability: usize },
    /// Two domains hold `xenstore`.
    DuplicateXenstore { domain: usize, first: usize },
    /// A domain's preserved region is not a multiple of 4 KiB or is above [`PRESERVED_MAX_KIB`].
    PreservedOutOfRange { domain: usize, kib: u32 },
    /// A boot domain without a prepared image, or another domain with one.
    BootImagePresence { domain: usize, boot: bool },
    /// A prepared image with no chunk or more than [`MAX_LOAD_CHUNKS`].
    ChunkCount { domain: usize, chunks: usize },
    /// A chunk names no module, is empty, or reaches past its module's end.
    ChunkBytes { domain: usize, chunk: usize },
    /// A chunk does not lie in the domain's RAM.
    ChunkOutsideRam { domain: usize, chunk: usize },
    /// Two chunks overlap in the domain's RAM.
    ChunkOverlap { domain: usize, chunk: usize, other: usize },
    /// The entry point is not a 4-byte-aligned address in the domain's RAM.
    BadEntry { domain: usize, entry: u64 },
    /// A domain's passthrough is refused on its own.
    Passthrough { domain: usize, problem: PassthroughProblem },
    /// Two domains are given the same frame or interrupt.
    SharedHardware { domain: usize, first: usize },
}

impl fmt::Display for ManifestProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::BadName { domain } => write!(
                f,
                "domain {domain}'s name is not 1 to {DOMAIN_NAME_MAX_LEN} characters of \
                 [A-Za-z0-9_-]"
            ),
            Self::DuplicateName { domain, first } => {
                write!(f, "domain {domain} has the same name as domain {first}")
            }
            Self::ModuleIndex { domain, module, modules } => write!(
                f,
                "domain {domain} uses module {module}, but the bundle has only {modules} modules"
            ),
            Self::ModuleOutOfBounds { module, offset, size, payload } => write!(
                f,
                "module {module} ({size} bytes at offset {offset}) reaches past the \
                 {payload}-byte payload"
            ),
            Self::ModuleMisaligned { module, offset } => write!(
                f,
                "module {module} starts at offset {offset}, not a multiple of {MODULE_ALIGN}"
            ),
            Self::ModuleOverlap { module, offset, start } => write!(
                f,
                "module {module} starts at offset {offset}, before offset {start} where the \
                 manifest or the module before it ends"
            ),
            Self::VcpusOutOfRange { domain, vcpus } => {
                write!(f, "domain {domain} has {vcpus} vCPUs, outside 1 to {MAX_VCPUS}")
            }
            Self::MemoryOutOfRange { domain, memory_mib } => write!(
                f,
                "domain {domain} has {memory_mib} MiB of memory, outside 1 to \
                 {DOMAIN_MEMORY_MAX_MIB} MiB"
            ),
            Self::PreservedOutOfRange { domain, kib } => write!(
                f,
                "domain {domain} asks for a {kib} KiB preserved region; it must be a multiple \
                 of 4 KiB, at most {PRESERVED_MAX_KIB} KiB"
            ),
            Self::WeightOutOfRange { domain } => {
                write!(f, "domain {domain} has a scheduler weight of 0; weights start at 1")
            }
            Self::CapOutOfRange { domain, cap, vcpus } => write!(
                f,
                "domain {domain} has a cap of {cap}%, above {}% for its {vcpus} vCPUs",
                CAP_PERCENT_PER_VCPU * vcpus
            ),
            Self::EmptyAffinity { domain, soft } => write!(
                f,
                "domain {domain}'s {} affinity allows no CPU",
                if soft { "soft" } else { "hard" }
            ),
            Self::EmptyDevice { domain, capability } => write!(
                f,
                "domain {domain}'s capability {capability} passes through a device with an \
                 empty name"
            ),
            Self::CapabilityTarget { domain, capability } => write!(
                f,
                "domain {domain}'s capability {capability} names a domain that is not in the \
                 manifest, or domain {domain} itself"
            ),
            Self::DuplicateCapability { domain, capability } => write!(
                f,
                "domain {domain}'s capability {capability} repeats an earlier one of its \
                 capabilities"
            ),
            Self::BootImagePresence { domain, boot: true } => {
                write!(f, "domain {domain} is built at boot but has no prepared image")
            }
            Self::BootImagePresence { domain, boot: false } => {
                write!(f, "domain {domain} is not built at boot but has a prepared image")
            }
            Self::ChunkCount { domain, chunks } => write!(
                f,
                "domain {domain}'s prepared image has {chunks} chunks, not 1 to {MAX_LOAD_CHUNKS}"
            ),
            Self::ChunkBytes { domain, chunk } => write!(
                f,
                "chunk {chunk} of domain {domain}'s prepared image is empty or not inside its \
                 module"
            ),
            Self::ChunkOutsideRam { domain, chunk } => write!(
                f,
                "chunk {chunk} of domain {domain}'s prepared image lies outside the domain's RAM"
            ),
            Self::ChunkOverlap { domain, chunk, other } => {
                write!(f, "chunks {other} and {chunk} of domain {domain}'s prepared image overlap")
            }
            Self::BadEntry { domain, entry } => write!(
                f,
                "domain {domain}'s entry point {entry:#x} is not a 4-byte-aligned address in its \
                 RAM"
            ),
            Self::Passthrough { domain, problem } => write!(f, "domain {domain}: {problem}"),
            Self::SharedHardware { domain, first } => write!(
                f,
                "domain {domain} is given a frame or interrupt domain {first} is given too"
            ),
            Self::DuplicateXenstore { domain, first } => write!(
                f,
                "domains {first} and {domain} both hold `xenstore`; a system has at most one \
                 xenstore domain"
            ),
        }
    }
}

impl BootManifest<'_> {
    /// The checks the core repeats at boot (see the module's invariants), for a payload of
    /// `payload_len` bytes; the first problem found, in manifest order.
    ///
    /// [`Bundle::parse`](super::Bundle::parse) calls this and also requires the first module to
    /// start after the manifest bytes.
    pub fn validate(&self, payload_len: u64) -> Result<(), ManifestProblem> {
        self.check(0, payload_len)
    }

    /// [`validate`](Self::validate), with modules required to start at `modules_start` or later.
    pub(super) fn check(
        &self,
        modules_start: u64,
        payload_len: u64,
    ) -> Result<(), ManifestProblem> {
        let mut start = modules_start;
        for (module, entry) in self.modules.iter().enumerate() {
            let ModuleRef { offset, size, .. } = *entry;
            if !offset.is_multiple_of(MODULE_ALIGN) {
                return Err(ManifestProblem::ModuleMisaligned { module, offset });
            }
            if offset < start {
                return Err(ManifestProblem::ModuleOverlap { module, offset, start });
            }
            match offset.checked_add(size) {
                Some(end) if end <= payload_len => start = end,
                _ => {
                    return Err(ManifestProblem::ModuleOutOfBounds {
                        module,
                        offset,
                        size,
                        payload: payload_len,
                    })
                }
            }
        }
        let mut xenstore = None;
        for (domain, spec) in self.domains.iter().enumerate() {
            self.check_domain(domain, spec)?;
            if spec.capabilities.contains(&Capability::Xenstore) {
                if let Some(first) = xenstore {
                    return Err(ManifestProblem::DuplicateXenstore { domain, first });
                }
                xenstore = Some(domain);
            }
        }
        Ok(())
    }

    /// The checks of one domain, `domains[domain]`.
    fn check_domain(&self, domain: usize, spec: &DomainSpec<'_>) -> Result<(), ManifestProblem> {
        if !is_valid_domain_name(spec.name) {
            return Err(ManifestProblem::BadName { domain });
        }
        if let Some(first) = self.domains[..domain].iter().position(|d| d.name == spec.name) {
            return Err(ManifestProblem::DuplicateName { domain, first });
        }
        if spec.module as usize >= self.modules.len() {
            let modules = self.modules.len();
            return Err(ManifestProblem::ModuleIndex { domain, module: spec.module, modules });
        }
        if !(1..=MAX_VCPUS).contains(&spec.vcpus) {
            return Err(ManifestProblem::VcpusOutOfRange { domain, vcpus: spec.vcpus });
        }
        if !(1..=DOMAIN_MEMORY_MAX_MIB).contains(&spec.memory_mib) {
            let memory_mib = spec.memory_mib;
            return Err(ManifestProblem::MemoryOutOfRange { domain, memory_mib });
        }
        if !spec.preserved_kib.is_multiple_of(4) || spec.preserved_kib > PRESERVED_MAX_KIB {
            return Err(ManifestProblem::PreservedOutOfRange { domain, kib: spec.preserved_kib });
        }
        if spec.weight == 0 {
            return Err(ManifestProblem::WeightOutOfRange { domain });
        }
        if u32::from(spec.cap) > CAP_PERCENT_PER_VCPU * spec.vcpus {
            let (cap, vcpus) = (spec.cap, spec.vcpus);
            return Err(ManifestProblem::CapOutOfRange { domain, cap, vcpus });
        }
        if spec.hard_affinity == 0 {
            return Err(ManifestProblem::EmptyAffinity { domain, soft: false });
        }
        if spec.soft_affinity == 0 {
            return Err(ManifestProblem::EmptyAffinity { domain, soft: true });
        }
        self.check_boot_image(domain, spec)?;
        let hardware = spec.capabilities.iter().any(|c| matches!(c, Capability::Hardware { .. }));
        if let Err(problem) = spec.passthrough.check(hardware, spec.boot, spec.memory_mib) {
            return Err(ManifestProblem::Passthrough { domain, problem });
        }
        if let Some(first) =
            self.domains[..domain].iter().position(|d| d.passthrough.shares(&spec.passthrough))
        {
            return Err(ManifestProblem::SharedHardware { domain, first });
        }
        for (capability, held) in spec.capabilities.iter().enumerate() {
            if let Capability::Hardware { device: "" } = held {
                return Err(ManifestProblem::EmptyDevice { domain, capability });
            }
            if let Some(target) = held.target() {
                if target == spec.name || !self.domains.iter().any(|d| d.name == target) {
                    return Err(ManifestProblem::CapabilityTarget { domain, capability });
                }
            }
            if spec.capabilities[..capability].contains(held) {
                return Err(ManifestProblem::DuplicateCapability { domain, capability });
            }
        }
        Ok(())
    }
}

impl BootManifest<'_> {
    /// The checks of a domain's prepared image: present exactly for boot domains, every chunk's
    /// bytes inside its module and its place inside the domain's RAM, no two chunks overlapping,
    /// the entry point in RAM.
    fn check_boot_image(
        &self,
        domain: usize,
        spec: &DomainSpec<'_>,
    ) -> Result<(), ManifestProblem> {
        let image = match (&spec.prepared, spec.boot) {
            (Some(image), true) => image,
            (None, false) => return Ok(()),
            (_, boot) => return Err(ManifestProblem::BootImagePresence { domain, boot }),
        };
        let chunks = image.chunks.len();
        if !(1..=MAX_LOAD_CHUNKS).contains(&chunks) {
            return Err(ManifestProblem::ChunkCount { domain, chunks });
        }
        let ram = (u64::from(spec.memory_mib) << 20).min(GUEST_RAM0_SIZE);
        let in_ram = |address: u64, size: u64| {
            address >= GUEST_RAM0_BASE
                && address.checked_add(size).is_some_and(|end| end <= GUEST_RAM0_BASE + ram)
        };
        for (chunk, load) in image.chunks.iter().enumerate() {
            let module = self.modules.get(load.module as usize);
            let inside = module.is_some_and(|module| {
                load.offset.checked_add(load.size).is_some_and(|end| end <= module.size)
            });
            if load.size == 0 || !inside {
                return Err(ManifestProblem::ChunkBytes { domain, chunk });
            }
            if !in_ram(load.address, load.size) {
                return Err(ManifestProblem::ChunkOutsideRam { domain, chunk });
            }
            let end = load.address + load.size;
            let overlapping = image.chunks[..chunk]
                .iter()
                .position(|other| other.address < end && load.address < other.address + other.size);
            if let Some(other) = overlapping {
                return Err(ManifestProblem::ChunkOverlap { domain, chunk, other });
            }
        }
        if !image.entry.is_multiple_of(4) || !in_ram(image.entry, 4) {
            return Err(ManifestProblem::BadEntry { domain, entry: image.entry });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
