//! Packing a checked manifest into the boot bundle the core reads (format: `xenolith_abi::bundle`).

use anyhow::{Context, Result};
use xenolith_abi::bundle::{header_for, BootManifest};
use zerocopy::IntoBytes;

use crate::manifest::Manifest;

/// The bundle bytes for `manifest`: header, postcard-encoded manifest, modules.
pub fn pack(manifest: &Manifest) -> Result<Vec<u8>> {
    let boot = BootManifest { name: &manifest.system.name, cmdline: &manifest.hypervisor.cmdline };
    let mut payload = postcard::to_allocvec(&boot).context("encoding the boot manifest")?;
    let manifest_size = payload.len();
    payload.shrink_to_fit();
    let header = header_for(&payload, manifest_size);
    let mut bundle = header.as_bytes().to_vec();
    bundle.extend_from_slice(&payload);
    Ok(bundle)
}
