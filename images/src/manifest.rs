//! System manifests: the static description of one bootable system (`images/*.toml`).
//!
//! A manifest names the system, gives the hypervisor its command line, lists the system's domains
//! and tells `cargo xtask run` how to boot it under QEMU. The host tool checks it here, before
//! anything is built, and reports a problem as `file:line:column: error: <what is wrong and what to
//! do>` (after seL4 Microkit's `sdf.rs`). The core checks what it receives again; this check exists
//! so that a mistake shows up at the desk with a location, not as a warning on a serial console.
//!
//! ```toml
//! [system]
//! name = "default"                       # required; 1..=64 characters of [A-Za-z0-9_-]
//!
//! [hypervisor]
//! cmdline = "loglvl=info heartbeat=10"   # optional, default ""; checked by the core's own parser
//!
//! [qemu]                                 # optional, as is each key
//! cpus = 4                               # 1..=MAX_CPUS, default 2
//! memory = "1G"                          # K/M/G suffix (binary) or a plain number of MiB; 256M..=64G
//!
//! [[domain]]                             # optional, any number; each key optional unless marked
//! name = "guest1"                        # required; unique; 1..=64 characters of [A-Za-z0-9_-]
//! xl = "guests/guest1.cfg"               # or, instead of name and the other keys xl.cfg has a word
//!                                        # for: an xl.cfg(5) file, relative to the manifest (below)
//! program = "test-guest"                 # a bare-metal binary crate of this workspace, or:
//! image = "guests/x.elf"                 # a prebuilt ELF file or arm64 Image, relative to the
//!                                        # manifest, or:
//! kernel = "guests/Image"                # the same as `image` (xl.cfg's name), or Debian's arm64
//!                                        # Linux: "debian:linux-image-arm64"; exactly one of the three
//! ramdisk = "debian:busybox-initramfs"   # optional initial ramdisk (xl.cfg `ramdisk`): a file
//!                                        # relative to the manifest, or the busybox initramfs built
//!                                        # from Debian's packages (see `crate::debian`)
//! memory = 16                            # required without `xl`; MiB, or "16M"/"1G" as [qemu]
//!                                        # memory; 1M..=4096M
//! vcpus = 1                              # 1..=8 (xl.cfg `vcpus`), default 1
//! capabilities = ["dm:guest2"]           # control, xenstore, console, dm:<domain>, hardware:<device>,
//!                                        # introspect:<domain>; default none
//! weight = 256                           # credit2 weight 1..=65535 (xl.cfg `cpu_weight`), default 256
//! cap = 0                                # % of one pCPU: 0 = none, else 1..=100*vcpus (xl.cfg `cap`)
//! cpus = "all"                           # hard affinity: "all" or pCPU numbers [0, 2], each < 64
//! cpus_soft = "all"                      # soft affinity, same form; both default to "all"
//! restart = "never"                      # shorthand for all three below: "never" (destroy on
//!                                        # any shutdown), "on-crash" or "always" (restart)
//! on_poweroff = "destroy"                # xl.cfg's actions per shutdown reason: "destroy",
//! on_reboot = "restart"                  # "restart" or "preserve" (kept, stopped, until
//! on_crash = "destroy"                   # destroyed); these are xl's defaults
//! preserved_kib = 0                      # KiB kept unscrubbed across restarts, at 0x3c00_0000;
//!                                        # a multiple of 4, at most 65536; default 0 (none)
//! boot = true                            # false: only packed, with its xl.cfg text, for the
//!                                        # control domain to create (below)
//! cmdline = ""                           # the domain's /chosen/bootargs (xl.cfg `cmdline`), or:
//! root = "/dev/xvda1"                    # xl.cfg `root`: adds "root=/dev/xvda1", and
//! extra = "console=hvc0"                 # xl.cfg `extra`: adds its text
//! iomem = ["0xa003,1"]                   # passthrough, with a `hardware:` capability, boot domains
//! irqs = [79]                            # only: xl.cfg's MMIO pages (hex, 1:1) and SPIs (1:1), and
//! direct_map = "0x7ff00,256"             # a DMA window of host RAM mapped at guest = host address
//! vif = ["bridge=xenbr0,backend=netback"] # network devices, xl.cfg's `vif` (a `mac` is made up
//!                                        # from the domain and device ids when none is given);
//!                                        # the control domain writes their xenstore records
//! vuart = "sbsa_uart"                    # Xen's vpl011 (xl.cfg `vuart`), emulated by the
//!                                        # domain's device model: 0x22000000, INTID 32, and
//!                                        # /chosen/stdout-path; the only value
//! disk = ["vdev=xvda,specification=virtio,target=xenolith:ext4:32"]
//!                                        # virtio disks (xl-disk-configuration(5)), emulated by
//!                                        # its device model; at most one for now (below)
//! virtio_net = true                      # a looped-back virtio-net, emulated by its device
//!                                        # model in the virtio-mmio slot after the disks (a
//!                                        # Xenolith key: Xen 4.17 has no virtio `vif`)
//!
//! [[domain]]                             # the device model of guest1 (below)
//! name = "dm1"
//! program = "device-model"               # this program makes a domain a device model
//! capabilities = ["dm:guest1"]           # exactly one `dm:`, naming a guest with devices
//! memory = 64
//! restart = "on-crash"
//! preserved_kib = 33792                  # at least its guest's disk in KiB + 1024
//!                                        # no cmdline, root, extra, ramdisk or xl: generated
//! ```
//!
//! The command line follows xl.cfg(5) and `xl`'s `parse_config`: `cmdline` is the whole line;
//! without it, `root = "R"` and `extra = "E"` make `"root=R E"`, either alone `"root=R"` or
//! `"E"`. Where xl ignores `root` and `extra` beside `cmdline` with a warning, this tool refuses
//! the manifest ([`ErrorKind::CmdlineConflict`]).
//!
//! # Emulated devices and device models
//!
//! A boot domain may have Xen's vpl011 (`vuart = "sbsa_uart"`) and virtio disks (`disk`, in
//! xl-disk-configuration(5)'s syntax), emulated for it by a *device-model domain*: one with
//! `program = "device-model"` and a single `dm:<guest>` capability. The guest's device tree
//! gets libxl's nodes: `sbsa-uart@22000000` (INTID 32) named by `/chosen/stdout-path`, and a
//! `virtio@<base>` per disk, `"virtio,mmio"`, 0x200 bytes from 0x02000000 upwards, INTIDs from
//! 33, rising edge, `dma-coherent`, as `tools/libs/light/libxl_arm.c` places and writes them
//! (`xenolith_builder::virtio_mmio_slot`); no `xen,grant-dma`: a device model maps its guest's
//! memory. A disk entry must say `specification=virtio` (xl's default `xen` needs blkback,
//! which Xenolith does not have) and may say `backendtype=standalone`, `transport=mmio`,
//! `access=rw|ro`, `format=raw`; its `target` is a raw image file relative to the manifest
//! (a whole number of 512-byte sectors) or `xenolith:ext4:<MiB>`, a fresh, empty ext4 file
//! system this tool makes with the host's `mkfs.ext4` when it builds the system
//! (`crate::disk_image`; cached under `target/xenolith/disks`). The rules across domains and
//! the device model's generated command line (`xenolith.dm.target=<domid>
//! xenolith.dm.ram=<base>:<size> xenolith.dm.uart=<base>:<intid>
//! xenolith.dm.blk=<base>:<intid>[:ro],...`) and ramdisk (the disk image) are in
//! `manifest/device_model.rs` ([`device_model_bootargs`]):
//! - a guest with devices has exactly one device model ([`ErrorKind::DeviceModelCount`]), is
//!   built at boot ([`ErrorKind::RunTimeSetting`]) and passes none of its emulated interrupts
//!   or windows through ([`ErrorKind::BadPassthrough`]);
//! - a device model names one guest, which has devices ([`ErrorKind::DeviceModelTarget`]: an
//!   error, not a warning, since a model with nothing to serve is a mistake), gives no
//!   `cmdline`, `root`, `extra`, `ramdisk` or `xl` ([`ErrorKind::DeviceModelGenerated`]), and
//!   keeps at least the disk's KiB + 1024 in its preserved region
//!   ([`ErrorKind::DeviceModelPreserved`], whose message gives the number to write);
//! - one disk at most for now: the device model's ramdisk is that disk ([`ErrorKind::BadDisk`],
//!   as is every malformed or unsupported disk entry; [`ErrorKind::BadVuart`] for `vuart`).
//!
//! # Domains the control domain creates (`boot = false`)
//!
//! A domain with `boot = false` is not built at boot: the bundle carries its image, its ramdisk
//! and a module `<name>.cfg`, an xl.cfg(5) text that describes it completely (`xl_write.rs`):
//! `name`, `memory`, `vcpus`, `kernel` and `ramdisk` as the names of their modules in the bundle,
//! `extra` (the whole command line), `cpu_weight`, `cap`, `cpus`/`cpus_soft` (unless every CPU) and
//! the three `on_*` actions. It is for the control domain, which has no file system, to read by
//! name and parse with `xenolith-xlcfg` as `xl create <name>.cfg` would (it does not read it yet:
//! issue 16). A domain whose settings came from an xl.cfg file gets the same complete text; the
//! file itself is not packed.
//! - What xl.cfg has no word for is refused on such a domain ([`ErrorKind::RunTimeSetting`]):
//!   `capabilities` (the control domain creates only plain guests) and a non-zero
//!   `preserved_kib`. `restart` is written as the three actions it stands for.
//! - The control domain looks a module up by a name of at most
//!   [`XENOLITH_BUNDLE_NAME_LEN`](xenolith_abi::xen::private::XENOLITH_BUNDLE_NAME_LEN) (32)
//!   bytes, so such a domain's name is at most 28 characters and its image's and ramdisk's
//!   module names (the program, the path as written, the `debian:` name) at most 32 bytes
//!   ([`ErrorKind::RunTimeModuleName`]).
//!
//! # Domains from xl.cfg files
//!
//! `xl = "<file>"` (relative to the manifest) makes a domain's settings come from Xen's xl.cfg(5)
//! file, read by `xenolith-xlcfg` as `xl create` reads it: `name`, `memory` (MiB), `maxmem`,
//! `vcpus`, `maxvcpus`, `cpus`, `cpus_soft` (xl's CPU lists, `"0-3,^1"`), `kernel`, `ramdisk`,
//! `cmdline`/`root`/`extra`, `on_poweroff`, `on_reboot`, `on_crash`, `cpu_weight` (the
//! manifest's `weight`) and `cap`, with xl's defaults where the file is silent (32 MiB, one vCPU,
//! weight 256). `type` may only be PVH (`pv` is made PVH with a warning, as libxl does on Arm).
//! - Beside `xl` the manifest gives only what xl.cfg has no word for: `capabilities`, `restart`,
//!   `preserved_kib`, `boot`, and `program` for a domain whose kernel is a crate of this
//!   workspace. Every other key is refused there ([`ErrorKind::XlConflict`]; `vuart` and `disk`
//!   too: a domain from an xl.cfg file has no emulated devices yet), and when the file
//!   sets it too the error names both places: each setting has one source, so the file describes
//!   the same domain here as under `xl create`.
//! - `kernel` and `ramdisk` are paths relative to the xl.cfg file (xl takes them relative to its
//!   working directory; the file's own directory is what a manifest has instead), or the
//!   `debian:` names below, as in a manifest. Without `kernel` in the file the manifest must give
//!   `program`; with both, the error names both.
//! - A manifest `restart` sets the three actions first; each `on_*` the file sets then replaces
//!   its own, as in a plain manifest.
//! - Nothing is dropped silently. What the core cannot honour is refused
//!   ([`ErrorKind::XlUnsupported`]): `disk` (no block backend, and virtio disks only in the
//!   manifest) and `vuart` (likewise), `iomem`, `irqs`, `dtdev` (no passthrough); so are values beyond the manifest's limits (8 vCPUs,
//!   4096 MiB, pCPUs 0-63, the actions destroy, restart and preserve), located in the file.
//!   `maxmem` above `memory` and `maxvcpus` above `vcpus` are warnings: a boot domain keeps the
//!   RAM and vCPUs it was built with.
//! - What xl accepts with a remark (a key xl does not read, `type = "pv"`, `root`/`extra` beside
//!   `cmdline`, an unknown `vif` option) is a [`ManifestWarning`] at the file's line and column:
//!   the host tool prints it, and it fails nothing.
//! - A refused file is a [`ManifestError`] at the file's line and column that names the
//!   manifest's `xl` key ([`ManifestError::xl_key`]); what the build finds wrong later with its
//!   kernel or ramdisk points at the `xl` key.
//!
//! A `debian:` value names something `cargo xtask` fetches with apt when it builds the system
//! (`crate::debian`): nothing is fetched while a manifest is only checked, and only these names
//! exist: `kernel = "debian:linux-image-arm64"` and `ramdisk = "debian:busybox-initramfs"`.
//!
//! Whether a `program` is a binary crate of the workspace is checked when the system is built
//! (`workspace::check_programs`), not here: it needs `cargo metadata`. Everything else, including
//! that an `image` file exists, is checked here.
//!
//! Parsing is two steps. serde reads the TOML into the private `Raw*` types, which reject unknown keys
//! (`deny_unknown_fields`) and keep the byte span of every value still to be checked
//! (`toml::Spanned`); then one `check_*` function per value checks it against that span and the public
//! types are built, without spans, except for the [`Position`] of each domain's `program` or `image`,
//! which the build uses to point its own errors into the file. A new table is one more `Raw*` type,
//! one more field of `RawManifest`, its `check_*` functions and one more field of [`Manifest`].
//!
//! # Invariants
//! - A [`Manifest`] has passed every check: the name is 1..=[`NAME_MAX_LEN`] characters of
//!   `[A-Za-z0-9_-]`; the core's command-line parser accepts the command line without a single
//!   diagnostic (the host tool is stricter than the core, which only warns about an unknown
//!   parameter); `cpus` is in 1..=[`MAX_CPUS`]; `memory_mib` is in
//!   [`MEMORY_MIN_MIB`]..=[`MEMORY_MAX_MIB`].
//! - Every [`Domain`] satisfies what the core's `BootManifest::validate` checks
//!   (`xenolith_abi::bundle`), so a packed bundle of a [`Manifest`] is never refused for its
//!   manifest: unique valid names, limits in range, capabilities that parse, are not repeated and
//!   name other domains of this manifest, at most one `xenstore` holder, non-empty affinities; and
//!   each domain has exactly one of a `program` (a valid crate name), an `image` file that exists
//!   or a `kernel` (a file that exists or a known `debian:` name), and a `ramdisk`, if any, is a
//!   file that exists or a known `debian:` name.
//! - A domain with `boot = false` has no capabilities, no preserved region, no emulated devices,
//!   and module names the control domain can look up (see "Domains the control domain creates").
//! - A domain with `vuart`, `disks` or `virtio_net` has exactly one device-model domain, whose `cmdline` and
//!   `ramdisk` this check generated (see "Emulated devices and device models").
//! - Every [`ManifestError`] except [`ErrorKind::Io`] points at a 1-based line and column in the file:
//!   the offending key for an unknown key, the offending value (or the character inside it) otherwise;
//!   for a mistake inside a domain's xl.cfg file, in that file, with the `xl` key's place beside it.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;
use toml::Spanned;
use xenolith_abi::bundle::{
    Capability, RestartPolicy, ShutdownAction, ShutdownActions, AFFINITY_ALL, AFFINITY_CPUS,
    CAP_PERCENT_PER_VCPU, DEFAULT_WEIGHT, DOMAIN_MEMORY_MAX_MIB, DOMAIN_NAME_MAX_LEN, MAX_VCPUS,
    PRESERVED_MAX_KIB,
};
use xenolith_kernel::platform::cmdline::{parameters, Diagnostic, Params};

use crate::debian::DebianArtifact;

mod device_model;
mod domain;
mod error;
mod passthrough;
mod xl;
mod xl_write;

pub use device_model::{
    device_model_bootargs, VirtioDisk, DEVICE_MODEL_PROGRAM, EXT4_PREFIX, MAX_VIRTIO_DISKS,
};
pub use error::{ErrorKind, ManifestError, ManifestWarning};

/// The longest system, domain or program name, in characters: the core's limit on domain names.
pub const NAME_MAX_LEN: usize = DOMAIN_NAME_MAX_LEN;
/// The most CPUs a system may have: the core's [`MAX_CPUS`](xenolith_kernel::platform::MAX_CPUS).
pub const MAX_CPUS: u32 = {
    // Lossless: the assertion holds the core's count to what a u32 can carry.
    assert!(xenolith_kernel::platform::MAX_CPUS <= u32::MAX as usize);
    xenolith_kernel::platform::MAX_CPUS as u32
};
/// `[qemu] cpus` when the manifest does not say.
pub const DEFAULT_CPUS: u32 = 2;
/// The least guest RAM `[qemu] memory` may give, in MiB (256M).
pub const MEMORY_MIN_MIB: u64 = 256;
/// The most guest RAM `[qemu] memory` may give, in MiB (64G), well below the 256 GiB at which QEMU's
/// `virt` machine places its high-memory area.
pub const MEMORY_MAX_MIB: u64 = 64 * 1024;
/// `[qemu] memory` when the manifest does not say, in MiB (1G).
pub const DEFAULT_MEMORY_MIB: u64 = 1024;
/// A domain's `vcpus` when the manifest does not say.
pub const DEFAULT_VCPUS: u32 = 1;

/// One bootable system, checked (see the module's invariants).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// The file it was read from, as given to [`Manifest::load`] or [`Manifest::parse`].
    pub path: PathBuf,
    /// `[system]`.
    pub system: System,
    /// `[hypervisor]`; defaults when the table is absent.
    pub hypervisor: Hypervisor,
    /// `[qemu]`; defaults when the table is absent.
    pub qemu: QemuSettings,
    /// The `[[domain]]` tables, in file order; none is valid.
    pub domains: Vec<Domain>,
    /// What the domains' xl.cfg files gave cause to remark on, in file order; for the host tool
    /// to print.
    pub warnings: Vec<ManifestWarning>,
}

/// `[system]`: what the system is called.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct System {
    /// 1..=[`NAME_MAX_LEN`] characters of `[A-Za-z0-9_-]`.
    pub name: String,
}

/// `[hypervisor]`: how the core is started.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hypervisor {
    /// The core's command line, accepted by `xenolith_kernel::platform::cmdline` without a diagnostic.
    pub cmdline: String,
}

/// `[qemu]`: the machine `cargo xtask run` boots the system on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QemuSettings {
    /// Number of CPUs, 1..=[`MAX_CPUS`].
    pub cpus: u32,
    /// Guest RAM in MiB, [`MEMORY_MIN_MIB`]..=[`MEMORY_MAX_MIB`].
    pub memory_mib: u64,
}

impl Default for QemuSettings {
    fn default() -> Self {
        QemuSettings { cpus: DEFAULT_CPUS, memory_mib: DEFAULT_MEMORY_MIB }
    }
}

/// One `[[domain]]`, checked (see the module's invariants); the fields are those of the core's
/// `DomainSpec` (`xenolith_abi::bundle`), which documents them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Domain {
    /// Unique in the manifest; 1..=[`DOMAIN_NAME_MAX_LEN`] characters of `[A-Za-z0-9_-]`.
    pub name: String,
    /// Where its image comes from.
    pub source: DomainSource,
    /// 1..=[`DOMAIN_MEMORY_MAX_MIB`].
    pub memory_mib: u32,
    /// 1..=[`MAX_VCPUS`].
    pub vcpus: u32,
    /// Each spelled as the manifest wrote it, and each parses ([`Domain::capabilities`]).
    pub capabilities: Vec<String>,
    /// 1..=65535.
    pub weight: u16,
    /// 0, or 1..=[`CAP_PERCENT_PER_VCPU`] × `vcpus`.
    pub cap: u16,
    /// Bit `n` is pCPU `n`; [`AFFINITY_ALL`] for "all"; never 0.
    pub hard_affinity: u64,
    /// As `hard_affinity`.
    pub soft_affinity: u64,
    /// What the core does when it stops, by reason: `restart`, `on_poweroff`, `on_reboot`,
    /// `on_crash`.
    pub on_shutdown: ShutdownActions,
    /// `preserved_kib`: KiB kept across restarts (0: none).
    pub preserved_kib: u32,
    /// `boot`.
    pub boot: bool,
    /// The command line: `cmdline`, or made of `root` and `extra` (see the module doc).
    pub cmdline: String,
    /// `ramdisk`: never a [`DomainSource::Program`].
    pub ramdisk: Option<DomainSource>,
    /// `iomem`, `irqs` and `direct_map`: empty unless it holds a `hardware:` capability.
    pub passthrough: xenolith_abi::bundle::Passthrough,
    /// `vif`: its network devices, each an xl.cfg `NET_SPEC_STRING` that parses
    /// (`xenolith_xlcfg::devices::parse_vif`) with no option xl would skip.
    pub vifs: Vec<String>,
    /// `vuart = "sbsa_uart"`: Xen's vpl011, which its device-model domain emulates.
    pub vuart: bool,
    /// `disk`: its virtio disks, which its device-model domain emulates; at most
    /// [`MAX_VIRTIO_DISKS`].
    pub disks: Vec<VirtioDisk>,
    /// `virtio_net = true`: a virtio-net device, looped back, which its device-model domain
    /// emulates in the virtio-mmio slot after the disks (a Xenolith key: Xen 4.17's libxl has
    /// no virtio `vif`).
    pub virtio_net: bool,
}

impl Domain {
    /// The capabilities, typed.
    pub fn capabilities(&self) -> impl Iterator<Item = Capability<'_>> {
        // Checked when the manifest was read: each one parses.
        self.capabilities.iter().filter_map(|text| Capability::parse(text))
    }
}

/// Where a domain's image comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DomainSource {
    /// `program`: a bare-metal binary crate of this workspace, built by the host tool.
    Program {
        /// The crate (and its binary target).
        name: String,
        /// The `program` value in the manifest file.
        at: Position,
    },
    /// `image`, `kernel` or `ramdisk`, or a virtio disk's `target=`: a file.
    Image {
        /// The key: `image`, `kernel`, `ramdisk` or `disk`.
        key: &'static str,
        /// The value as written, relative to the manifest file.
        written: String,
        /// `written` joined to the manifest file's directory; the file existed when checked.
        path: PathBuf,
        /// The value in the manifest file.
        at: Position,
    },
    /// `kernel` or `ramdisk` as `debian:<name>`: fetched or built when the system is built.
    Debian {
        /// What it names.
        artifact: DebianArtifact,
        /// The value in the manifest file.
        at: Position,
    },
    /// A virtio disk's `target=xenolith:ext4:<MiB>`: a fresh, empty ext4 file system of `mib`
    /// MiB, made when the system is built (`crate::disk_image`).
    Ext4 {
        /// Its size in MiB, at least 1.
        mib: u32,
        /// The `target=` value in the manifest file.
        at: Position,
    },
}

impl DomainSource {
    /// The name of its module in the bundle: the program's name, the file as written, or the
    /// `debian:` value.
    pub fn module_name(&self) -> String {
        match self {
            DomainSource::Program { name, .. } => name.clone(),
            DomainSource::Image { written, .. } => written.clone(),
            DomainSource::Debian { artifact, .. } => {
                format!("{}{}", DebianArtifact::PREFIX, artifact.name())
            }
            DomainSource::Ext4 { mib, .. } => format!("{EXT4_PREFIX}{mib}"),
        }
    }

    /// It in words, for messages: "the binary of program `x`", "kernel file `y`" or
    /// "`debian:linux-image-arm64`".
    pub fn describe(&self) -> String {
        match self {
            DomainSource::Program { name, .. } => format!("the binary of program `{name}`"),
            DomainSource::Image { key, written, .. } => format!("{key} file `{written}`"),
            DomainSource::Debian { .. } => format!("`{}`", self.module_name()),
            DomainSource::Ext4 { .. } => format!("the ext4 image `{}`", self.module_name()),
        }
    }

    /// Where the manifest file gives it.
    pub fn position(&self) -> Position {
        match self {
            DomainSource::Program { at, .. }
            | DomainSource::Image { at, .. }
            | DomainSource::Debian { at, .. }
            | DomainSource::Ext4 { at, .. } => *at,
        }
    }

    /// Whether two sources give the same bytes: the same program, the same file, or the same
    /// `debian:` artifact.
    pub fn same_bytes(&self, other: &DomainSource) -> bool {
        match (self, other) {
            (DomainSource::Program { name: a, .. }, DomainSource::Program { name: b, .. }) => {
                a == b
            }
            (DomainSource::Image { path: a, .. }, DomainSource::Image { path: b, .. }) => a == b,
            (
                DomainSource::Debian { artifact: a, .. },
                DomainSource::Debian { artifact: b, .. },
            ) => a == b,
            (DomainSource::Ext4 { mib: a, .. }, DomainSource::Ext4 { mib: b, .. }) => a == b,
            _ => false,
        }
    }
}

/// A 1-based line and column (in characters) of the manifest file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
}

impl Manifest {
    /// An error found after parsing (by the build), at `at` in this manifest's file.
    pub fn error_at(&self, at: Position, kind: ErrorKind, message: String) -> ManifestError {
        ManifestError {
            path: self.path.clone(),
            line: at.line,
            column: at.column,
            kind,
            message,
            xl_key: None,
            source: None,
        }
    }

    /// Reads and checks the manifest at `path`, returning its first error.
    pub fn load(path: &Path) -> Result<Manifest, ManifestError> {
        let text = std::fs::read_to_string(path).map_err(|source| ManifestError {
            path: path.to_path_buf(),
            line: 0,
            column: 0,
            kind: ErrorKind::Io,
            message: "cannot read the manifest; check that the file exists and is readable UTF-8 \
                      text"
                .to_owned(),
            xl_key: None,
            source: Some(source),
        })?;
        Manifest::parse(path, &text)
    }

    /// Checks the manifest `text`, read from `path` (used only in errors and [`Manifest::path`]),
    /// returning its first error.
    pub fn parse(path: &Path, text: &str) -> Result<Manifest, ManifestError> {
        Manifest::parse_all(path, text).map_err(|mut errors| errors.swap_remove(0))
    }

    /// Like [`Manifest::parse`], but returns every error found, in file order (never an empty list).
    ///
    /// A TOML syntax error, an unknown or missing key or a value of the wrong type stops the parse,
    /// so it comes alone; the checks of individual values all run and each reports its own error.
    pub fn parse_all(path: &Path, text: &str) -> Result<Manifest, Vec<ManifestError>> {
        let source = Source { path, text };
        // TOML syntax first, so that a syntax mistake is reported as one and not as, say, a missing
        // key. Parsing twice costs nothing at this size.
        if let Err(error) = toml::from_str::<toml::Table>(text) {
            return Err(vec![source.syntax_error(&error)]);
        }
        let raw: RawManifest = toml::from_str(text).map_err(|e| vec![source.schema_error(&e)])?;

        let mut errors = Vec::new();
        let mut warnings = Vec::new();
        let name = keep(&mut errors, source.check_name("system name", &raw.system.name));
        let cmdline = keep(&mut errors, source.check_cmdline(raw.hypervisor.cmdline));
        let cpus = keep(&mut errors, source.check_cpus(raw.qemu.cpus));
        let memory_mib = keep(&mut errors, source.check_memory(raw.qemu.memory));
        let domains = source.check_domains(&raw.domains, &mut errors, &mut warnings);
        if let (Some(domains), Some(memory_mib)) = (&domains, memory_mib) {
            source.check_hardware_across(&raw.domains, domains, memory_mib, &mut errors);
        }
        let mut domains = domains;
        if let Some(domains) = &mut domains {
            source.check_device_models(&raw.domains, domains, &mut errors);
        }
        match (name, cmdline, cpus, memory_mib, domains) {
            (Some(name), Some(cmdline), Some(cpus), Some(memory_mib), Some(domains))
                if errors.is_empty() =>
            {
                Ok(Manifest {
                    path: path.to_path_buf(),
                    system: System { name },
                    hypervisor: Hypervisor { cmdline },
                    qemu: QemuSettings { cpus, memory_mib },
                    domains,
                    warnings,
                })
            }
            _ => {
                errors.sort_by_key(|error| {
                    let at = error.manifest_position();
                    (at.line, at.column)
                });
                Err(errors)
            }
        }
    }
}

/// Moves a check's error into `errors`.
fn keep<T>(errors: &mut Vec<ManifestError>, result: Result<T, ManifestError>) -> Option<T> {
    result.map_err(|error| errors.push(error)).ok()
}

// ---------------------------------------------------------------------------------------------------
// The manifest as serde reads it: spans kept, nothing checked yet.

/// The whole file.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManifest {
    system: RawSystem,
    #[serde(default)]
    hypervisor: RawHypervisor,
    #[serde(default)]
    qemu: RawQemu,
    #[serde(default, rename = "domain")]
    domains: Vec<Spanned<RawDomain>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a [system] table")]
struct RawSystem {
    name: Spanned<String>,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a [hypervisor] table")]
struct RawHypervisor {
    cmdline: Option<Spanned<String>>,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a [qemu] table")]
struct RawQemu {
    cpus: Option<Spanned<CpuCount>>,
    memory: Option<Spanned<MemoryValue>>,
}

/// `name` and `memory` are required unless `xl` is given, which [`Source::check_domain`] checks.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a [[domain]] table")]
struct RawDomain {
    name: Option<Spanned<String>>,
    program: Option<Spanned<String>>,
    image: Option<Spanned<String>>,
    kernel: Option<Spanned<String>>,
    ramdisk: Option<Spanned<String>>,
    memory: Option<Spanned<MemoryValue>>,
    vcpus: Option<Spanned<CpuCount>>,
    #[serde(default)]
    capabilities: Vec<Spanned<String>>,
    weight: Option<Spanned<Integer>>,
    cap: Option<Spanned<Integer>>,
    cpus: Option<Spanned<Affinity>>,
    cpus_soft: Option<Spanned<Affinity>>,
    restart: Option<Spanned<String>>,
    on_poweroff: Option<Spanned<String>>,
    on_reboot: Option<Spanned<String>>,
    on_crash: Option<Spanned<String>>,
    preserved_kib: Option<Spanned<Integer>>,
    boot: Option<bool>,
    cmdline: Option<Spanned<String>>,
    root: Option<Spanned<String>>,
    extra: Option<Spanned<String>>,
    xl: Option<Spanned<String>>,
    #[serde(default)]
    iomem: Vec<Spanned<String>>,
    #[serde(default)]
    irqs: Vec<Spanned<Integer>>,
    direct_map: Option<Spanned<String>>,
    #[serde(default)]
    vif: Vec<Spanned<String>>,
    vuart: Option<Spanned<String>>,
    #[serde(default)]
    disk: Vec<Spanned<String>>,
    virtio_net: Option<bool>,
}

/// A whole number before its range check: any TOML integer.
struct Integer(i64);

impl<'de> Deserialize<'de> for Integer {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct IntegerVisitor;
        impl Visitor<'_> for IntegerVisitor {
            type Value = Integer;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a whole number")
            }
            fn visit_i64<E: de::Error>(self, value: i64) -> Result<Integer, E> {
                Ok(Integer(value))
            }
            fn visit_u64<E: de::Error>(self, value: u64) -> Result<Integer, E> {
                Ok(Integer(i64::try_from(value).unwrap_or(i64::MAX)))
            }
        }
        deserializer.deserialize_any(IntegerVisitor)
    }
}

/// A domain's `cpus` or `cpus_soft` before it is checked: a string (only "all" is right) or a list
/// of pCPU numbers, each with its span.
enum Affinity {
    Text(String),
    List(Vec<Spanned<Integer>>),
}

impl<'de> Deserialize<'de> for Affinity {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct AffinityVisitor;
        impl<'de> Visitor<'de> for AffinityVisitor {
            type Value = Affinity;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("\"all\" or a list of CPU numbers (such as [0, 2])")
            }
            fn visit_str<E: de::Error>(self, value: &str) -> Result<Affinity, E> {
                Ok(Affinity::Text(value.to_owned()))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Affinity, A::Error> {
                let mut list = Vec::new();
                while let Some(cpu) = seq.next_element()? {
                    list.push(cpu);
                }
                Ok(Affinity::List(list))
            }
        }
        deserializer.deserialize_any(AffinityVisitor)
    }
}

/// `[qemu] cpus` or a domain's `vcpus` before its range check: any TOML integer.
struct CpuCount(i64);

impl<'de> Deserialize<'de> for CpuCount {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct CpuCountVisitor;
        impl Visitor<'_> for CpuCountVisitor {
            type Value = CpuCount;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a whole number of CPUs (such as 4)")
            }
            fn visit_i64<E: de::Error>(self, value: i64) -> Result<CpuCount, E> {
                Ok(CpuCount(value))
            }
            fn visit_u64<E: de::Error>(self, value: u64) -> Result<CpuCount, E> {
                Ok(CpuCount(i64::try_from(value).unwrap_or(i64::MAX)))
            }
        }
        deserializer.deserialize_any(CpuCountVisitor)
    }
}

/// `[qemu] memory` before it is parsed: a TOML integer (MiB) or a string such as `"1G"`.
enum MemoryValue {
    Mib(i64),
    Text(String),
}

impl fmt::Display for MemoryValue {
    /// As the manifest wrote it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MemoryValue::Mib(mib) => write!(f, "{mib}"),
            MemoryValue::Text(text) => write!(f, "{text:?}"),
        }
    }
}

impl<'de> Deserialize<'de> for MemoryValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MemoryValueVisitor;
        impl Visitor<'_> for MemoryValueVisitor {
            type Value = MemoryValue;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a size (such as \"1G\" or \"512M\") or a number of MiB")
            }
            fn visit_i64<E: de::Error>(self, value: i64) -> Result<MemoryValue, E> {
                Ok(MemoryValue::Mib(value))
            }
            fn visit_u64<E: de::Error>(self, value: u64) -> Result<MemoryValue, E> {
                Ok(MemoryValue::Mib(i64::try_from(value).unwrap_or(i64::MAX)))
            }
            fn visit_str<E: de::Error>(self, value: &str) -> Result<MemoryValue, E> {
                Ok(MemoryValue::Text(value.to_owned()))
            }
        }
        deserializer.deserialize_any(MemoryValueVisitor)
    }
}

// ---------------------------------------------------------------------------------------------------
// The checks.

/// The manifest being checked: where errors point.
struct Source<'a> {
    path: &'a Path,
    text: &'a str,
}

impl Source<'_> {
    /// An error at byte `offset` of the file.
    fn error_at(&self, offset: usize, kind: ErrorKind, message: String) -> ManifestError {
        let (line, column) = line_column(self.text, offset);
        ManifestError {
            path: self.path.to_path_buf(),
            line,
            column,
            kind,
            message,
            xl_key: None,
            source: None,
        }
    }

    /// The file's text at `span`, or `""` if the span is not in it.
    fn text_at(&self, span: Range<usize>) -> &str {
        self.text.get(span).unwrap_or("")
    }

    /// The byte offset in the file of byte `index` of the string `value` found at `span`.
    ///
    /// Exact when the string is written without escapes (`"..."` or `'...'`), so that source and
    /// value agree byte for byte; otherwise the start of the string.
    fn offset_in_string(&self, span: Range<usize>, value: &str, index: usize) -> usize {
        let start = span.start;
        let raw = self.text_at(span);
        let plain = (raw.starts_with('"') || raw.starts_with('\''))
            && raw.len() == value.len() + 2
            && raw.get(1..raw.len() - 1) == Some(value);
        if plain && index <= value.len() {
            start + 1 + index
        } else {
            start
        }
    }

    /// A TOML syntax error.
    fn syntax_error(&self, error: &toml::de::Error) -> ManifestError {
        let offset = error.span().map_or(0, |span| span.start);
        let detail = error.message().trim().lines().collect::<Vec<_>>().join(", ");
        self.error_at(offset, ErrorKind::Syntax, format!("invalid TOML: {detail}"))
    }

    /// An error serde found in well-formed TOML: an unknown or missing key, or a wrong type.
    ///
    /// serde's standard messages (`unknown field`, `missing field`, `invalid type`) are the only way
    /// `toml::de::Error` tells them apart; anything else counts as a wrong type.
    fn schema_error(&self, error: &toml::de::Error) -> ManifestError {
        let span = error.span().unwrap_or(0..0);
        let offset = span.start;
        let message = error.message().trim();
        if let Some(rest) = message.strip_prefix("unknown field ") {
            // "`key`, expected `a` or `b`" or "`key`, there are no fields".
            let (key, expected) = rest.split_once(", ").unwrap_or((rest, ""));
            let expected = match expected.strip_prefix("expected ") {
                Some(expected) => format!("expected {expected}"),
                None => "this table has no keys".to_owned(),
            };
            let message =
                format!("unknown key {key} ({expected}); check its spelling or remove it");
            self.error_at(offset, ErrorKind::UnknownKey, message)
        } else if let Some(key) = message.strip_prefix("missing field ") {
            self.missing_key(span, key)
        } else {
            let detail = message.strip_prefix("invalid type: ").unwrap_or(message);
            if self.text_at(span).starts_with("[domain]") {
                let message = "wrong type: a domain is a table of the array `domain`; write its \
                               header as [[domain]]"
                    .to_owned();
                return self.error_at(offset, ErrorKind::WrongType, message);
            }
            let message = match detail.rsplit_once(", expected ") {
                Some((found, expected)) => {
                    let found = match found {
                        "map" => "a table",
                        "sequence" => "an array",
                        found => found,
                    };
                    let expected = if expected == "a sequence" { "an array" } else { expected };
                    format!("wrong type: expected {expected}, found {found}")
                }
                None => format!("wrong type: {detail}"),
            };
            self.error_at(offset, ErrorKind::WrongType, message)
        }
    }

    /// The error for required key `key` (as serde quotes it, in backticks) missing from the table
    /// at `span`: the table (its header first), an inline table, or nothing for the top level.
    fn missing_key(&self, span: Range<usize>, key: &str) -> ManifestError {
        let table = self.text_at(span.clone()).trim();
        let table = match table.strip_prefix('[') {
            // The header line, without a comment after it.
            Some(_) => table.lines().next().and_then(|line| line.split('#').next()).unwrap_or(""),
            None => table,
        }
        .trim();
        let message = if table.starts_with('[') {
            format!("{table} is missing the required key {key}; add it")
        } else if table.starts_with('{') {
            format!("this table is missing the required key {key}; add it")
        } else {
            format!("the manifest has no [{}] table; add it", key.trim_matches('`'))
        };
        self.error_at(span.start, ErrorKind::MissingKey, message)
    }

    /// A name: 1..=[`NAME_MAX_LEN`] characters of `[A-Za-z0-9_-]`. `what` names it in messages.
    fn check_name(&self, what: &str, name: &Spanned<String>) -> Result<String, ManifestError> {
        let value = name.get_ref();
        match name_problem(what, value) {
            None => Ok(value.clone()),
            Some((index, message)) => {
                let offset = match index {
                    Some(index) => self.offset_in_string(name.span(), value, index),
                    None => name.span().start,
                };
                Err(self.error_at(offset, ErrorKind::BadName, message))
            }
        }
    }

    /// `[hypervisor] cmdline`: every diagnostic of the core's own parser is an error here.
    fn check_cmdline(&self, cmdline: Option<Spanned<String>>) -> Result<String, ManifestError> {
        let Some(cmdline) = cmdline else {
            return Ok(String::new());
        };
        let line = cmdline.get_ref().as_str();
        let mut first = None;
        Params::default().apply(line, &mut |diagnostic| {
            first.get_or_insert(diagnostic);
        });
        let Some(diagnostic) = first else {
            return Ok(cmdline.get_ref().clone());
        };
        // The core's own wording says what the core does next (ignore the token, keep the previous
        // value); here every diagnostic is an error, so the message is this tool's.
        let (token, message) = match diagnostic {
            Diagnostic::UnknownParameter { name } => {
                let known: Vec<&str> = parameters().collect();
                let message = format!(
                    "`{name}` is not a hypervisor parameter; check its spelling or remove it \
                     (known: {}; the core would only warn, this tool refuses)",
                    known.join(", ")
                );
                (name, message)
            }
            Diagnostic::BadValue { name, value, expected } => {
                let message = format!(
                    "hypervisor parameter `{name}` has the value `{value}`, but takes {expected}; \
                     correct the value"
                );
                (value, message)
            }
            Diagnostic::MissingValue { name, expected } => {
                let message = format!(
                    "hypervisor parameter `{name}` needs a value, {expected}; write it as \
                     `{name}=<value>`"
                );
                (name, message)
            }
            Diagnostic::NotBuiltIn { name } => {
                let message = format!(
                    "hypervisor parameter `{name}` is a test hook, and this tool checks against a \
                     core built without test hooks; remove it"
                );
                (name, message)
            }
        };
        // `token` is a slice of `line`: its offset there is the distance between their addresses.
        let index = token.as_ptr().addr().wrapping_sub(line.as_ptr().addr());
        let offset = self.offset_in_string(cmdline.span(), line, index);
        Err(self.error_at(offset, ErrorKind::BadCmdline, message))
    }

    /// `[qemu] cpus`: 1..=[`MAX_CPUS`].
    fn check_cpus(&self, cpus: Option<Spanned<CpuCount>>) -> Result<u32, ManifestError> {
        let Some(cpus) = cpus else {
            return Ok(DEFAULT_CPUS);
        };
        let count = cpus.get_ref().0;
        match u32::try_from(count) {
            Ok(count) if (1..=MAX_CPUS).contains(&count) => Ok(count),
            _ => {
                let message = format!(
                    "`cpus` is {count}, but a system has 1 to {MAX_CPUS} CPUs (the core's \
                     MAX_CPUS); choose a number in that range"
                );
                Err(self.error_at(cpus.span().start, ErrorKind::CpusOutOfRange, message))
            }
        }
    }

    /// `[qemu] memory`: a size in [`MEMORY_MIN_MIB`]..=[`MEMORY_MAX_MIB`] MiB.
    fn check_memory(&self, memory: Option<Spanned<MemoryValue>>) -> Result<u64, ManifestError> {
        let Some(memory) = memory else {
            return Ok(DEFAULT_MEMORY_MIB);
        };
        let out_of_range = || {
            let message = format!(
                "`memory` is {}, outside the supported {MEMORY_MIN_MIB}M to {}G; choose a size in \
                 that range",
                memory.get_ref(),
                MEMORY_MAX_MIB / 1024
            );
            self.error_at(memory.span().start, ErrorKind::MemoryOutOfRange, message)
        };
        let mib = self.memory_size(&memory, out_of_range)?;
        if (MEMORY_MIN_MIB..=MEMORY_MAX_MIB).contains(&mib) {
            Ok(mib)
        } else {
            Err(out_of_range())
        }
    }

    /// A `memory` value in MiB, not yet range-checked; `out_of_range` is the error for a size too
    /// large for a `u64` or negative.
    fn memory_size(
        &self,
        memory: &Spanned<MemoryValue>,
        out_of_range: impl Fn() -> ManifestError,
    ) -> Result<u64, ManifestError> {
        let offset = memory.span().start;
        let value = memory.get_ref();
        match value {
            MemoryValue::Mib(mib) => u64::try_from(*mib).map_err(|_| out_of_range()),
            MemoryValue::Text(text) => match parse_memory_size(text) {
                Ok(mib) => Ok(mib),
                Err(SizeError::Malformed) => {
                    let message = format!(
                        "`memory` is {value}, which is not a size; write a whole number with an \
                         optional suffix K, M or G (binary units), such as \"512M\" or \"2G\"; a \
                         number alone is MiB"
                    );
                    Err(self.error_at(offset, ErrorKind::BadMemorySize, message))
                }
                Err(SizeError::NotWholeMib { kib }) => {
                    let message = format!(
                        "`memory` is {value}, which is not a whole number of MiB; round it, for \
                         example to \"{}M\"",
                        kib.div_ceil(1024)
                    );
                    Err(self.error_at(offset, ErrorKind::MemoryNotWholeMib, message))
                }
                Err(SizeError::TooLarge) => Err(out_of_range()),
            },
        }
    }

    /// The line and column of byte `offset`.
    fn position(&self, offset: usize) -> Position {
        let (line, column) = line_column(self.text, offset);
        Position { line, column }
    }
}

/// What is wrong with `value`, a name (`what` names it in messages), if it is not
/// 1..=[`NAME_MAX_LEN`] characters of `[A-Za-z0-9_-]`: the byte index of the fault in it (`None`:
/// the whole value) and a message.
fn name_problem(what: &str, value: &str) -> Option<(Option<usize>, String)> {
    const ALLOWED: &str = "letters A-Z and a-z, digits, `_` and `-`";
    if value.is_empty() {
        let message =
            format!("the {what} is empty; give it 1 to {NAME_MAX_LEN} characters: {ALLOWED}");
        return Some((None, message));
    }
    let bad = value.char_indices().find(|&(_, c)| !(c.is_ascii_alphanumeric() || "_-".contains(c)));
    if let Some((index, c)) = bad {
        let message =
            format!("the {what} contains {c:?}, which is not allowed; use only {ALLOWED}");
        return Some((Some(index), message));
    }
    // All ASCII from here, so bytes are characters.
    if value.len() > NAME_MAX_LEN {
        let message = format!(
            "the {what} is {} characters long; shorten it to at most {NAME_MAX_LEN}",
            value.len()
        );
        return Some((Some(NAME_MAX_LEN), message));
    }
    None
}

/// Why [`parse_memory_size`] refused.
#[derive(Debug, PartialEq, Eq)]
enum SizeError {
    /// Not digits with an optional K, M or G.
    Malformed,
    /// A size of `kib` KiB, not a multiple of 1024.
    NotWholeMib { kib: u64 },
    /// More than `u64::MAX` KiB.
    TooLarge,
}

/// Parses `"512M"`, `"1G"`, `"1048576K"` (binary units) or `"2048"` (MiB) into MiB.
fn parse_memory_size(text: &str) -> Result<u64, SizeError> {
    let (digits, kib_per_unit) = if let Some(digits) = text.strip_suffix('K') {
        (digits, 1)
    } else if let Some(digits) = text.strip_suffix('M') {
        (digits, 1024)
    } else if let Some(digits) = text.strip_suffix('G') {
        (digits, 1024 * 1024)
    } else {
        (text, 1024)
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(SizeError::Malformed);
    }
    // Only digits: parsing fails only by overflow.
    let number: u64 = digits.parse().map_err(|_| SizeError::TooLarge)?;
    let kib = number.checked_mul(kib_per_unit).ok_or(SizeError::TooLarge)?;
    if !kib.is_multiple_of(1024) {
        return Err(SizeError::NotWholeMib { kib });
    }
    Ok(kib / 1024)
}

/// The 1-based line and column (in characters) of byte `offset` of `text`.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line_start = before.rfind('\n').map_or(0, |newline| newline + 1);
    let line = before.matches('\n').count() + 1;
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_sizes() {
        assert_eq!(parse_memory_size("512M"), Ok(512));
        assert_eq!(parse_memory_size("1G"), Ok(1024));
        assert_eq!(parse_memory_size("2048"), Ok(2048));
        assert_eq!(parse_memory_size("1048576K"), Ok(1024));
        assert_eq!(parse_memory_size("1536K"), Err(SizeError::NotWholeMib { kib: 1536 }));
        assert_eq!(parse_memory_size("99999999999999999999G"), Err(SizeError::TooLarge));
        assert_eq!(parse_memory_size("18446744073709551615G"), Err(SizeError::TooLarge));
        for bad in ["", "G", "1.5G", "1 G", "1g", "1GiB", "-1G", "+1G", "1T", "0x100M"] {
            assert_eq!(parse_memory_size(bad), Err(SizeError::Malformed), "{bad:?}");
        }
    }

    #[test]
    fn line_columns() {
        let text = "ab\ncdé\n\nx";
        assert_eq!(line_column(text, 0), (1, 1));
        assert_eq!(line_column(text, 2), (1, 3));
        assert_eq!(line_column(text, 3), (2, 1));
        assert_eq!(line_column(text, 7), (2, 4)); // after the two-byte é
        assert_eq!(line_column(text, 6), (2, 3)); // inside é: its start
        assert_eq!(line_column(text, 9), (4, 1));
        assert_eq!(line_column(text, 100), (4, 2));
    }
}
