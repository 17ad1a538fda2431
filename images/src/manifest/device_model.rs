//! Emulated devices and the domains that emulate them (split from `manifest.rs`; the types and
//! helpers are the parent's): a guest's `vuart` and virtio `disk`, checked on their own, and
//! across domains the device-model domain that serves the guest, whose command line and ramdisk
//! this tool generates.
//!
//! # Sources (Xen 4.17)
//! - `vuart = "sbsa_uart"`: xl.cfg(5), "Currently, only the "sbsa_uart" model is supported for
//!   ARM"; libxl gives the guest Xen's vpl011 at `GUEST_PL011_BASE` with SPI `GUEST_VPL011_SPI`
//!   (`libxl__arch_domain_prepare_config`, `make_vpl011_uart_node` in
//!   `tools/libs/light/libxl_arm.c`).
//! - `disk`: xl-disk-configuration(5), parsed by `xenolith_xlcfg::devices::parse_disk`.
//!   `specification` is `xen` (blkback, the default) or `virtio`; `backendtype=standalone` is
//!   the backend that serves `virtio` ("standalone does not support specifications other than
//!   virtio"); `transport` is `mmio` for virtio (`libxl__device_disk_setdefault` in
//!   `tools/libs/light/libxl_disk.c`); `vdev` "is not passed to the guest" for virtio, "but it
//!   still must be specified". libxl places the virtio disks in disk order
//!   (`xenolith_builder::virtio_mmio_slot`).
//!
//! # The device model
//! A *device-model domain* is a domain with `program = "device-model"` (see
//! [`DEVICE_MODEL_PROGRAM`]). It holds exactly one `dm:<guest>` capability, and `<guest>` must
//! have a `vuart` or a virtio `disk`: a device model with nothing to emulate is refused (an
//! error, not a warning: it would only use memory, and most likely names the wrong guest). A
//! guest with a `vuart` or a `disk` must have exactly one device-model domain. Other domains
//! may still hold `dm:` capabilities (the core grants `dm_op` by capability, not by program).
//!
//! The manifest gives a device-model domain no `cmdline`, `root`, `extra` or `ramdisk`, and no
//! `xl`: this tool generates them. The command line ([`device_model_bootargs`]) is, separated by
//! spaces:
//! - `xenolith.dm.target=<domid>`: the guest's domain id, its place among the manifest's boot
//!   domains counted from 0 (the core gives boot domains their ids in manifest order,
//!   `build_boot_domains` and `boot_id` in `kernel/src/lifecycle/restart.rs`);
//! - `xenolith.dm.ram=<base>:<size>`: the guest's one RAM bank as the builder places it
//!   (`GUEST_RAM0_BASE`, its memory), bytes, `0x` hexadecimal;
//! - `xenolith.dm.uart=<base>:<intid>` with `vuart`: `0x22000000:32`;
//! - `xenolith.dm.blk=<base>:<intid>[:ro]` with a disk, comma-separated in disk order, `:ro`
//!   for `access=ro`: `0x2000000:33` for the first;
//! - `xenolith.dm.net=<base>:<intid>` with `virtio_net = true`: the virtio-mmio slot after the
//!   disks' (`0x2000000:33` with no disk, `0x2000200:34` after one).
//!
//! Its ramdisk is the guest's disk image: the `target=` file, or for
//! `target=xenolith:ext4:<MiB>` a fresh, empty ext4 file system made when the system is built
//! (`crate::disk_image`). At most [`MAX_VIRTIO_DISKS`] disk for now, since the ramdisk is the
//! one disk. Its `preserved_kib` must be at least the disk's size in KiB plus
//! [`DEVICE_MODEL_STATE_KIB`] (with no disk, that alone): the model keeps the disk and its
//! devices' state there across its restarts.
//!
//! # Invariants
//! - A guest [`Domain`] with `vuart` or `disks` is a boot domain with exactly one device-model
//!   domain serving it, and its emulated SPIs and windows are none of its passed-through ones.
//! - A device-model [`Domain`]'s `cmdline` is [`device_model_bootargs`] of its guest and its
//!   `ramdisk` is its guest's disk image (none without a disk); its preserved region holds them.

use xenolith_abi::xen::arch_arm::{
    GUEST_PL011_BASE, GUEST_PL011_SIZE, GUEST_RAM0_BASE, GUEST_VIRTIO_MMIO_SPI_LAST,
    GUEST_VPL011_SPI, VIRTIO_MMIO_DEV_SIZE,
};
use xenolith_builder::virtio_mmio_slot;
use xenolith_xlcfg::devices::{parse_disk, Access};

use super::*;

/// The program a device-model domain runs: the workspace crate `domains/device-model`.
pub const DEVICE_MODEL_PROGRAM: &str = "device-model";
/// The `target=` prefix of a disk image this tool makes: `xenolith:ext4:<MiB>`.
pub const EXT4_PREFIX: &str = "xenolith:ext4:";
/// Virtio disks a domain may have for now: the device model's ramdisk is the one disk.
pub const MAX_VIRTIO_DISKS: usize = 1;
/// KiB a device-model domain's preserved region holds beside its guest's disk, for its devices'
/// state.
pub const DEVICE_MODEL_STATE_KIB: u32 = 1024;
/// The largest `xenolith:ext4:<MiB>`: what a preserved region holds beside that state.
pub const EXT4_MAX_MIB: u32 = (PRESERVED_MAX_KIB - DEVICE_MODEL_STATE_KIB) / 1024;
/// A disk is a whole number of 512-byte sectors (virtio-blk's `capacity` unit).
const SECTOR: u64 = 512;

// Every SPI libxl gives an emulated device is one the core's virtual distributor implements
// (INTIDs 32 up to 32 + VGIC_SPIS), so the guest can enable and take it.
const _: () = assert!(
    GUEST_VIRTIO_MMIO_SPI_LAST < 32 + xenolith_kernel::event::vgic::VGIC_SPIS as u32
        && GUEST_VPL011_SPI >= 32
);

/// One virtio disk (`specification=virtio`) of a domain, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VirtioDisk {
    /// The `disk` entry as written.
    pub spec: String,
    /// `vdev`, which the guest does not see (xl-disk-configuration(5)).
    pub vdev: String,
    /// `access=ro`.
    pub read_only: bool,
    /// What it holds at boot: a file ([`DomainSource::Image`] with key `disk`, relative to the
    /// manifest) or [`DomainSource::Ext4`].
    pub image: DomainSource,
    /// Its size in bytes: non-zero, a multiple of 512.
    pub size: u64,
}

/// The command line of the device-model domain serving `guest`, boot domain `domid` (see the
/// module doc).
pub fn device_model_bootargs(domid: u16, guest: &Domain) -> String {
    let ram = u64::from(guest.memory_mib) << 20;
    let mut args = vec![
        format!("xenolith.dm.target={domid}"),
        format!("xenolith.dm.ram={GUEST_RAM0_BASE:#x}:{ram:#x}"),
    ];
    if guest.vuart {
        args.push(format!("xenolith.dm.uart={GUEST_PL011_BASE:#x}:{GUEST_VPL011_SPI}"));
    }
    let disks: Vec<String> = guest
        .disks
        .iter()
        .zip(0..)
        .filter_map(|(disk, index)| {
            let (base, intid) = virtio_mmio_slot(index)?;
            Some(format!("{base:#x}:{intid}{}", if disk.read_only { ":ro" } else { "" }))
        })
        .collect();
    if !disks.is_empty() {
        args.push(format!("xenolith.dm.blk={}", disks.join(",")));
    }
    if let Some((base, intid)) = net_slot(guest) {
        args.push(format!("xenolith.dm.net={base:#x}:{intid}"));
    }
    args.join(" ")
}

/// The virtio-mmio slot of `guest`'s virtio-net device, if it has one: the one after its disks.
fn net_slot(guest: &Domain) -> Option<(u64, u32)> {
    guest.virtio_net.then(|| virtio_mmio_slot(u32::try_from(guest.disks.len()).ok()?)).flatten()
}

/// Whether `guest` has devices a device model emulates.
fn has_emulated(guest: &Domain) -> bool {
    guest.vuart || !guest.disks.is_empty() || guest.virtio_net
}

/// Whether `domain` is a device-model domain.
fn is_device_model(domain: &Domain) -> bool {
    matches!(&domain.source, DomainSource::Program { name, .. } if name == DEVICE_MODEL_PROGRAM)
}

/// The INTIDs and guest-physical windows `guest`'s device model emulates.
fn emulated(guest: &Domain) -> (Vec<u32>, Vec<Range<u64>>) {
    let mut intids = Vec::new();
    let mut windows = Vec::new();
    if guest.vuart {
        intids.push(GUEST_VPL011_SPI);
        windows.push(GUEST_PL011_BASE..GUEST_PL011_BASE + GUEST_PL011_SIZE);
    }
    for index in (0..).take(guest.disks.len()) {
        if let Some((base, intid)) = virtio_mmio_slot(index) {
            intids.push(intid);
            windows.push(base..base + VIRTIO_MMIO_DEV_SIZE);
        }
    }
    if let Some((base, intid)) = net_slot(guest) {
        intids.push(intid);
        windows.push(base..base + VIRTIO_MMIO_DEV_SIZE);
    }
    (intids, windows)
}

impl Source<'_> {
    /// A domain's `vuart`: only `"sbsa_uart"`.
    pub(super) fn check_vuart(
        &self,
        vuart: Option<&Spanned<String>>,
    ) -> Result<bool, ManifestError> {
        let Some(vuart) = vuart else { return Ok(false) };
        if vuart.get_ref() == "sbsa_uart" {
            return Ok(true);
        }
        let message = format!(
            "`vuart` is {:?}; the only emulated UART is \"sbsa_uart\" (Xen's vpl011, as in \
             xl.cfg(5)), or leave `vuart` out",
            vuart.get_ref()
        );
        Err(self.error_at(vuart.span().start, ErrorKind::BadVuart, message))
    }

    /// A domain's `disk` entries: at most [`MAX_VIRTIO_DISKS`], each a virtio disk.
    pub(super) fn check_disks(
        &self,
        raw: &[Spanned<String>],
    ) -> Result<Vec<VirtioDisk>, ManifestError> {
        if let Some(extra) = raw.get(MAX_VIRTIO_DISKS) {
            let message = format!(
                "a domain has at most {MAX_VIRTIO_DISKS} virtio disk for now (its device model's \
                 ramdisk is the one disk); remove this entry"
            );
            return Err(self.error_at(extra.span().start, ErrorKind::BadDisk, message));
        }
        raw.iter().map(|spec| self.check_disk(spec)).collect()
    }

    /// One `disk` entry: xl-disk-configuration(5), `specification=virtio`, a raw image.
    fn check_disk(&self, spec: &Spanned<String>) -> Result<VirtioDisk, ManifestError> {
        let written = spec.get_ref();
        // An error at byte `index` of the entry (`None`: the entry).
        let bad = |index: Option<usize>, why: &str| {
            let message = format!("`disk` entry {written:?}: {why}");
            self.error_at(at_offset(self, spec, written, index), ErrorKind::BadDisk, message)
        };
        let parameter = |key: &str| written.find(&format!("{key}="));
        let disk =
            parse_disk(written).map_err(|why| bad(None, &format!("{why} (xl would refuse it)")))?;
        let mut specification = None;
        for (key, value) in &disk.other {
            let why = match (key.as_str(), value.as_str()) {
                ("specification", value) => {
                    specification = Some((value, parameter(key)));
                    continue;
                }
                ("backendtype", "standalone") | ("transport", "mmio") => continue,
                ("backendtype", _) => {
                    "a virtio disk's backend is its device model, `backendtype=standalone` (the \
                     only backend type for `specification=virtio`); write that or leave it out"
                }
                ("transport", _) => {
                    "a virtio disk's transport is `mmio`, as on Xen; write that or leave it out"
                }
                _ => {
                    "this parameter is not offered: a virtio disk takes `vdev`, `access`, \
                     `format=raw`, `specification=virtio`, `backendtype=standalone`, \
                     `transport=mmio` and `target`"
                }
            };
            return Err(bad(parameter(key), why));
        }
        let why = match specification {
            Some(("virtio", _)) => None,
            // An empty value is the default (xl-disk-configuration(5)).
            Some(("xen" | "", at)) => Some((
                at,
                "a `xen` disk needs a block backend (blkback), which Xenolith does not have; \
                 write `specification=virtio` for a virtio disk its device model emulates",
            )),
            None => Some((
                None,
                "a disk is `specification=xen` unless it says otherwise, and that needs a block \
                 backend (blkback), which Xenolith does not have; add `specification=virtio` for \
                 a virtio disk its device model emulates",
            )),
            Some((_, at)) => Some((at, "`specification` is `xen` or `virtio`; write `virtio`")),
        };
        if let Some((at, why)) = why {
            return Err(bad(at, why));
        }
        if disk.cdrom {
            return Err(bad(None, "a CD-ROM is not offered: remove `cdrom` or `devtype=cdrom`"));
        }
        if disk.format != "raw" {
            let message = format!(
                "format `{}`: the device model serves raw images; write `format=raw` or leave it out",
                disk.format
            );
            return Err(bad(parameter("format").or_else(|| written.find(&disk.format)), &message));
        }
        // parse_disk gives a target to every disk but a CD-ROM.
        let target = disk.target.unwrap_or_default();
        let target_index = written.rfind(&target);
        let at = self.position(at_offset(self, spec, written, target_index));
        let (image, size) = if let Some(mib) = target.strip_prefix(EXT4_PREFIX) {
            let digits = !mib.is_empty() && mib.bytes().all(|byte| byte.is_ascii_digit());
            let mib = mib
                .parse::<u32>()
                .ok()
                .filter(|mib| digits && (1..=EXT4_MAX_MIB).contains(mib))
                .ok_or_else(|| {
                    let message = format!(
                        "`{target}`: an ext4 image made here is `{EXT4_PREFIX}<MiB>`, 1 to \
                         {EXT4_MAX_MIB} MiB (its device model keeps it in a preserved region of \
                         at most {PRESERVED_MAX_KIB} KiB, with {DEVICE_MODEL_STATE_KIB} KiB of its \
                         own)"
                    );
                    bad(target_index.map(|index| index + EXT4_PREFIX.len()), &message)
                })?;
            (DomainSource::Ext4 { mib, at }, u64::from(mib) << 20)
        } else if target.starts_with("xenolith:") {
            let message = format!(
                "`{target}` names no image this tool makes; the one it makes is \
                 `{EXT4_PREFIX}<MiB>` (or give a file, relative to the manifest)"
            );
            return Err(bad(target_index, &message));
        } else {
            let path = self.path.parent().unwrap_or(Path::new("")).join(&target);
            let size =
                std::fs::metadata(&path).ok().filter(|meta| meta.is_file()).map(|meta| meta.len());
            let Some(size) = size else {
                let message = format!(
                    "disk image `{target}` not found (looked for {}); a disk's `target` is a file \
                     relative to the manifest, or `{EXT4_PREFIX}<MiB>`",
                    path.display()
                );
                return Err(self.error_at(
                    at_offset(self, spec, written, target_index),
                    ErrorKind::ImageNotFound,
                    message,
                ));
            };
            if size == 0 || !size.is_multiple_of(SECTOR) {
                let message = format!(
                    "disk image `{target}` is {size} bytes, not a non-zero whole number of \
                     {SECTOR}-byte sectors; pad it"
                );
                return Err(bad(target_index, &message));
            }
            (DomainSource::Image { key: "disk", written: target.clone(), path, at }, size)
        };
        Ok(VirtioDisk {
            spec: written.clone(),
            vdev: disk.vdev,
            read_only: disk.access == Access::ReadOnly,
            image,
            size,
        })
    }

    /// Across domains: each device-model domain serves one guest with devices, each guest with
    /// devices has one, their emulated interrupts and windows are not passed through; then each
    /// device-model domain gets its command line and ramdisk (see the module doc).
    pub(super) fn check_device_models(
        &self,
        raws: &[Spanned<RawDomain>],
        domains: &mut [Domain],
        errors: &mut Vec<ManifestError>,
    ) {
        let before = errors.len();
        // For each domain, the guest it serves as a device model.
        let mut serves: Vec<Option<usize>> = vec![None; domains.len()];
        for (index, (raw, domain)) in raws.iter().zip(domains.iter()).enumerate() {
            let raw = raw.get_ref();
            if !is_device_model(domain) {
                continue;
            }
            let name = &domain.name;
            if let Some(xl) = &raw.xl {
                let message = format!(
                    "domain `{name}` runs the device model, whose command line and ramdisk this \
                     tool generates from the guest it serves; describe it in the manifest \
                     without `xl`"
                );
                errors.push(self.error_at(
                    xl.span().start,
                    ErrorKind::DeviceModelGenerated,
                    message,
                ));
                continue;
            }
            let given = [
                ("cmdline", &raw.cmdline),
                ("root", &raw.root),
                ("extra", &raw.extra),
                ("ramdisk", &raw.ramdisk),
            ];
            for (key, value) in given {
                let Some(value) = value else { continue };
                let message = format!(
                    "domain `{name}` runs the device model: this tool generates its command line \
                     and its ramdisk (its guest's disk) from the guest it serves; remove `{key}`"
                );
                errors.push(self.error_at(
                    value.span().start,
                    ErrorKind::DeviceModelGenerated,
                    message,
                ));
            }
            let targets: Vec<(&str, &Spanned<String>)> = raw
                .capabilities
                .iter()
                .filter_map(|text| Some((text.get_ref().strip_prefix("dm:")?, text)))
                .collect();
            let program_at = raw.program.as_ref().map_or(0, |program| program.span().start);
            match targets.as_slice() {
                [] => {
                    let message = format!(
                        "domain `{name}` runs the device model but holds no `dm:<domain>` \
                         capability naming the guest it serves; add one, such as \
                         `capabilities = [\"dm:<guest>\"]`"
                    );
                    errors.push(self.error_at(program_at, ErrorKind::DeviceModelTarget, message));
                }
                [(target, text)] => {
                    // Capability targets name domains of the manifest (checked before).
                    let Some(guest) = domains.iter().position(|other| other.name == *target) else {
                        continue;
                    };
                    let guest_domain = &domains[guest];
                    if has_emulated(guest_domain) {
                        serves[index] = Some(guest);
                    } else {
                        let message = format!(
                            "`dm:{target}` names the guest this device model serves, but \
                             `{target}` has neither `vuart` nor a virtio `disk`, so there is \
                             nothing to emulate; give `{target}` `vuart = \"sbsa_uart\"` or a \
                             `disk`, or remove domain `{name}`"
                        );
                        errors.push(self.error_at(
                            text.span().start,
                            ErrorKind::DeviceModelTarget,
                            message,
                        ));
                    }
                }
                [_, (_, second), ..] => {
                    let message = format!(
                        "domain `{name}` runs the device model, which serves one guest, and this \
                         is a second `dm:` capability; run one device-model domain per guest"
                    );
                    errors.push(self.error_at(
                        second.span().start,
                        ErrorKind::DeviceModelTarget,
                        message,
                    ));
                }
            }
        }
        for (raw, guest) in raws.iter().zip(domains.iter()) {
            let raw = raw.get_ref();
            if !has_emulated(guest) {
                continue;
            }
            let at = [raw.vuart.as_ref(), raw.disk.first()]
                .into_iter()
                .flatten()
                .map(|value| value.span().start)
                .min()
                .unwrap_or(0);
            let target = Capability::DeviceModel { target: &guest.name };
            let models: Vec<&str> = domains
                .iter()
                .filter(|domain| {
                    is_device_model(domain) && domain.capabilities().any(|c| c == target)
                })
                .map(|domain| domain.name.as_str())
                .collect();
            let name = &guest.name;
            let message = match models.as_slice() {
                [_] => None,
                [] => Some(format!(
                    "domain `{name}` has emulated devices (`vuart` or a virtio `disk`), but no \
                     device-model domain serves it; add a domain with `program = \
                     \"{DEVICE_MODEL_PROGRAM}\"` and `capabilities = [\"dm:{name}\"]`"
                )),
                more => Some(format!(
                    "domain `{name}` is served by {} device-model domains ({}); keep one",
                    more.len(),
                    more.join(", ")
                )),
            };
            if let Some(message) = message {
                errors.push(self.error_at(at, ErrorKind::DeviceModelCount, message));
            }
            let (intids, windows) = emulated(guest);
            for (irq, value) in guest.passthrough.irqs.iter().zip(&raw.irqs) {
                if intids.contains(irq) {
                    let message = format!(
                        "`irqs` entry {irq} is the interrupt of an emulated device of this domain \
                         (libxl refuses it too: \"conflicting with\" the vpl011 or virtio-mmio \
                         SPIs); remove it"
                    );
                    errors.push(self.error_at(
                        value.span().start,
                        ErrorKind::BadPassthrough,
                        message,
                    ));
                }
            }
            for (range, value) in guest.passthrough.iomem.iter().zip(&raw.iomem) {
                let Some(bytes) = range.bytes() else { continue };
                if windows.iter().any(|window| window.start < bytes.end && bytes.start < window.end)
                {
                    let message = format!(
                        "`iomem` entry {:?} covers the registers of an emulated device of this \
                         domain (the vpl011 at {GUEST_PL011_BASE:#x}, virtio-mmio from \
                         0x2000000); remove it",
                        value.get_ref()
                    );
                    errors.push(self.error_at(
                        value.span().start,
                        ErrorKind::BadPassthrough,
                        message,
                    ));
                }
            }
        }
        if errors.len() > before {
            return;
        }
        // Boot domains get their ids in manifest order.
        let mut boot_ids = Vec::with_capacity(domains.len());
        let mut next = 0u16;
        for domain in domains.iter() {
            boot_ids.push(domain.boot.then_some(next));
            next += u16::from(domain.boot);
        }
        for (index, guest) in serves.iter().enumerate() {
            let Some(guest) = *guest else { continue };
            let Some(domid) = boot_ids[guest] else {
                // A domain with devices is a boot domain (`run_time_problems`).
                continue;
            };
            let disk_kib: u64 =
                domains[guest].disks.iter().map(|disk| disk.size.div_ceil(1024)).sum();
            let needed = disk_kib + u64::from(DEVICE_MODEL_STATE_KIB);
            let cmdline = device_model_bootargs(domid, &domains[guest]);
            let ramdisk = domains[guest].disks.first().map(|disk| disk.image.clone());
            let guest_name = domains[guest].name.clone();
            let model = &mut domains[index];
            if u64::from(model.preserved_kib) < needed {
                let raw = raws[index].get_ref();
                let at = raw
                    .preserved_kib
                    .as_ref()
                    .map(|value| value.span().start)
                    .or_else(|| raw.program.as_ref().map(|program| program.span().start))
                    .unwrap_or(0);
                let message = format!(
                    "domain `{}` runs the device model of `{}`, and its preserved region holds \
                     the disk ({disk_kib} KiB) and {DEVICE_MODEL_STATE_KIB} KiB of state: write \
                     `preserved_kib = {needed}` (it is {})",
                    model.name, guest_name, model.preserved_kib
                );
                errors.push(self.error_at(at, ErrorKind::DeviceModelPreserved, message));
                continue;
            }
            model.cmdline = cmdline;
            model.ramdisk = ramdisk;
        }
    }
}

/// The offset of the disk entry's target (`index` in `written`), or of the entry.
fn at_offset(
    source: &Source<'_>,
    spec: &Spanned<String>,
    written: &str,
    index: Option<usize>,
) -> usize {
    match index {
        Some(index) => source.offset_in_string(spec.span(), written, index),
        None => spec.span().start,
    }
}
