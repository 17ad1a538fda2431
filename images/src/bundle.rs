//! Packing a checked manifest and its domain images into the boot bundle the core reads (format:
//! `xenolith_abi::bundle`), with every boot domain prepared: its chunks, device tree, entry point
//! and registers planned by `xenolith_builder` (the control domain plans run-time domains with
//! the same code), so the core only copies.
//!
//! # Invariants
//! - Each distinct image or ramdisk (one `program`, one file, one `debian:` artifact) is packed
//!   once, however many domains use it; modules are in order of first use (a domain's image, then
//!   its ramdisk), then, for each domain in manifest order, the xl.cfg text of a domain not
//!   built at boot or of a boot domain with `vif`s (`<name>.cfg`, `manifest/xl_write.rs`: the
//!   control domain creates the first from it and writes the second's device records), then a
//!   boot domain's device tree (`<name>.dtb`). No two modules have the same name (the control
//!   domain finds modules by name).
//! - A boot domain with a ramdisk carries it as one chunk of the ramdisk's module, at the address
//!   `xenolith_builder` chose; the device tree is always its last chunk. A domain that is not
//!   built at boot still has its ramdisk packed, for the control domain (`ramdisk=<module>`).
//! - Every domain's image is planned, boot domain or not: an image that cannot boot as its domain
//!   is refused here, at the domain's `program` or `image` in the manifest file.
//! - Every bundle [`pack`] returns parses with the core's own `Bundle::parse`: packing checks its
//!   result with it, so a disagreement between the host tool and the core shows up here.

use anyhow::{anyhow, bail, ensure, Context, Result};
use xenolith_abi::bundle::{
    header_for, BootImage, BootManifest, Bundle, Capability, DomainSpec, LoadChunk, ModuleRef,
    MAX_BUNDLE_SIZE, MODULE_ALIGN,
};
use xenolith_builder::{DomainConfig, Emulated, GuestDevice, GuestHardware, Plan, PlanError};
use zerocopy::IntoBytes;

use crate::manifest::{DomainSource, ErrorKind, Manifest};

/// The bundle bytes for `manifest`: header, postcard-encoded manifest, modules.
///
/// `load` returns the bytes of an image (an ELF file or an arm64 `Image`) or of a ramdisk; it is
/// called once per distinct one, in manifest order, and its error is returned as it is.
pub fn pack(
    manifest: &Manifest,
    mut load: impl FnMut(&DomainSource) -> Result<Vec<u8>>,
) -> Result<Vec<u8>> {
    let mut sources: Vec<&DomainSource> = Vec::new();
    // Each domain's image module and ramdisk module.
    let mut domain_modules: Vec<(u32, Option<u32>)> = Vec::new();
    for domain in &manifest.domains {
        let image = module_of(&mut sources, &domain.source)?;
        let ramdisk = match &domain.ramdisk {
            Some(ramdisk) => Some(module_of(&mut sources, ramdisk)?),
            None => None,
        };
        domain_modules.push((image, ramdisk));
    }
    let images = sources.iter().map(|source| load(source)).collect::<Result<Vec<_>>>()?;
    let plans = manifest
        .domains
        .iter()
        .zip(&domain_modules)
        .map(|(domain, &(image, ramdisk))| {
            let ramdisk = ramdisk.map(|module| images[module as usize].as_slice());
            plan(manifest, domain, &images[image as usize], ramdisk)
        })
        .collect::<Result<Vec<_>>>()?;
    // The xl.cfg text of each domain not built at boot, and of each boot domain with network
    // devices (whose records the control domain writes), for the control domain.
    let xl_cfgs: Vec<Option<String>> = manifest
        .domains
        .iter()
        .map(|domain| (!domain.boot || !domain.vifs.is_empty()).then(|| domain.xl_cfg()))
        .collect();
    // The modules: each distinct image, then each domain's device tree or xl.cfg text.
    let mut contents: Vec<(String, &[u8])> = sources
        .iter()
        .zip(&images)
        .map(|(source, image)| (source.module_name(), image.as_slice()))
        .collect();
    let mut domains = Vec::with_capacity(manifest.domains.len());
    for (((domain, (module, ramdisk)), plan), xl_cfg) in
        manifest.domains.iter().zip(domain_modules).zip(&plans).zip(&xl_cfgs)
    {
        if let Some(xl_cfg) = xl_cfg {
            contents.push((domain.xl_cfg_module_name(), xl_cfg.as_bytes()));
        }
        let prepared = if !domain.boot {
            None
        } else {
            let dtb = u32::try_from(contents.len()).context("more than 2^32 modules")?;
            contents.push((format!("{}.dtb", domain.name), &plan.dtb));
            let ramdisk = ramdisk.map(|index| (index, images[index as usize].len() as u64));
            Some(prepared_image(plan, module, ramdisk, dtb))
        };
        domains.push(DomainSpec {
            name: &domain.name,
            module,
            memory_mib: domain.memory_mib,
            vcpus: domain.vcpus,
            capabilities: domain.capabilities().collect(),
            weight: domain.weight,
            cap: domain.cap,
            hard_affinity: domain.hard_affinity,
            soft_affinity: domain.soft_affinity,
            on_shutdown: domain.on_shutdown,
            preserved_kib: domain.preserved_kib,
            boot: domain.boot,
            cmdline: &domain.cmdline,
            prepared,
            passthrough: domain.passthrough.clone(),
        });
    }
    for (index, (name, _)) in contents.iter().enumerate() {
        ensure!(
            !contents[..index].iter().any(|(earlier, _)| earlier == name),
            "two modules of the bundle would be named `{name}`, and the control domain finds \
             modules by name; rename an image file (or program) or a domain so that each module \
             has its own name (domains' modules are `<name>.dtb` and `<name>.cfg`)"
        );
    }
    let modules = contents
        .iter()
        .map(|(name, bytes)| ModuleRef { name, offset: 0, size: bytes.len() as u64 })
        .collect();
    let mut boot = BootManifest {
        name: &manifest.system.name,
        cmdline: &manifest.hypervisor.cmdline,
        domains,
        modules,
    };
    let encoded = lay_out(&mut boot)?;

    let end = boot.modules.last().map_or(encoded.len() as u64, |last| last.offset + last.size);
    ensure!(
        end <= MAX_BUNDLE_SIZE,
        "the bundle would hold {end} bytes, more than the {MAX_BUNDLE_SIZE} the core accepts; \
         make the domain images smaller"
    );
    let mut payload = Vec::with_capacity(end as usize);
    payload.extend_from_slice(&encoded);
    for (module, (_, bytes)) in boot.modules.iter().zip(&contents) {
        payload.resize(module.offset as usize, 0);
        payload.extend_from_slice(bytes);
    }
    let header = header_for(&payload, encoded.len());
    let mut bundle = Vec::with_capacity(header.as_bytes().len() + payload.len());
    bundle.extend_from_slice(header.as_bytes());
    bundle.extend_from_slice(&payload);

    Bundle::parse(&bundle).map_err(|error| {
        anyhow!("internal error: the core would refuse the bundle this tool packed: {error}")
    })?;
    Ok(bundle)
}

/// The module index of `source`: that of an earlier source with the same bytes, else the next.
fn module_of<'a>(sources: &mut Vec<&'a DomainSource>, source: &'a DomainSource) -> Result<u32> {
    let index = match sources.iter().position(|known| known.same_bytes(source)) {
        Some(index) => index,
        None => {
            sources.push(source);
            sources.len() - 1
        }
    };
    u32::try_from(index).context("more than 2^32 modules")
}

/// The boot plan of `domain` with `image` and `ramdisk`, or a manifest error at its `program`,
/// `image` or `kernel` (at its `ramdisk` for a ramdisk that does not fit).
fn plan(
    manifest: &Manifest,
    domain: &crate::manifest::Domain,
    image: &[u8],
    ramdisk: Option<&[u8]>,
) -> Result<Plan> {
    let devices: Vec<GuestDevice<'static>> = domain
        .capabilities()
        .filter_map(|capability| match capability {
            Capability::Hardware { device } => crate::hardware::find(device),
            _ => None,
        })
        .map(|device| device.node)
        .collect();
    let window = domain.passthrough.direct_map.and_then(|window| window.bytes());
    let config = DomainConfig {
        memory_mib: domain.memory_mib,
        vcpus: domain.vcpus,
        cmdline: &domain.cmdline,
        initrd_size: ramdisk.map(|bytes| bytes.len() as u64),
        hardware: GuestHardware {
            devices: &devices,
            dma_pool: window.map(|bytes| (bytes.start, bytes.end - bytes.start)),
        },
        emulated: Emulated {
            uart: domain.vuart,
            // At most MAX_VIRTIO_DISKS (checked with the manifest).
            virtio_mmio: u32::try_from(domain.disks.len() + usize::from(domain.virtio_net))
                .unwrap_or(u32::MAX),
        },
    };
    xenolith_builder::plan(image, &config).map_err(|error| {
        let ramdisk_error =
            matches!(error, PlanError::InitrdEmpty | PlanError::InitrdDoesNotFit { .. });
        let source = match &domain.ramdisk {
            Some(ramdisk) if ramdisk_error => ramdisk,
            _ => &domain.source,
        };
        let message =
            format!("{} cannot boot as domain `{}`: {error}", source.describe(), domain.name);
        manifest.error_at(source.position(), ErrorKind::BadImage, message).into()
    })
}

/// What the bundle carries of `plan`: its chunks (bytes of module `image`), the ramdisk (module
/// and size) as one chunk, the device tree as a chunk of module `dtb`, the entry point and
/// registers.
fn prepared_image(plan: &Plan, image: u32, ramdisk: Option<(u32, u64)>, dtb: u32) -> BootImage {
    let mut chunks: Vec<LoadChunk> = plan
        .chunks
        .iter()
        .map(|chunk| LoadChunk {
            address: chunk.address,
            module: image,
            offset: chunk.offset,
            size: chunk.size,
        })
        .collect();
    if let (Some((module, size)), Some(address)) = (ramdisk, plan.initrd_address) {
        chunks.push(LoadChunk { address, module, offset: 0, size });
    }
    chunks.push(LoadChunk {
        address: plan.dtb_address,
        module: dtb,
        offset: 0,
        size: plan.dtb.len() as u64,
    });
    BootImage { chunks, entry: plan.entry, registers: plan.registers }
}

/// Sets the module offsets of `boot` (each at the next [`MODULE_ALIGN`] boundary after the
/// manifest or the module before) and returns the encoded manifest.
///
/// The offsets are part of the manifest, so its length depends on them (postcard writes varints)
/// and they on its length: this repeats until the two agree. Offsets only grow, so it settles in a
/// step or two.
fn lay_out(boot: &mut BootManifest<'_>) -> Result<Vec<u8>> {
    let mut encoded = Vec::new();
    for _ in 0..16 {
        let mut offset = (encoded.len() as u64).next_multiple_of(MODULE_ALIGN);
        for module in &mut boot.modules {
            module.offset = offset;
            offset = (offset + module.size).next_multiple_of(MODULE_ALIGN);
        }
        let again = postcard::to_allocvec(&*boot).context("encoding the boot manifest")?;
        if again == encoded {
            return Ok(encoded);
        }
        encoded = again;
    }
    bail!("internal error: the boot manifest's module offsets do not settle")
}
