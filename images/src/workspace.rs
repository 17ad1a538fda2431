//! Building a system: the core (turned into a bootable arm64 `Image`), the domains' programs, and
//! the boot bundle that carries the domains' images.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, ensure, Context, Result};

use crate::debian::{self, DebianArtifact};
use crate::guest_tools;
use crate::manifest::{DomainSource, ErrorKind, Manifest};

/// The bare-metal target the core is built for.
pub const CORE_TARGET: &str = "aarch64-unknown-none-softfloat";
/// The bare-metal target domain programs are built for.
pub const DOMAIN_TARGET: &str = "aarch64-unknown-none";

/// The repository root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("images/ has a parent").to_path_buf()
}

/// The cargo that runs us (cargo sets `CARGO` for what it runs), else `cargo` from PATH.
pub fn cargo() -> Command {
    let mut command = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    command.current_dir(root());
    command
}

/// How to build the core.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CoreOptions {
    /// Compile in the test-only command-line hooks (system tests only).
    pub test_hooks: bool,
}

impl CoreOptions {
    fn target_dir(self) -> PathBuf {
        root().join("target").join(if self.test_hooks { "core-test-hooks" } else { "core" })
    }
}

/// Builds the core (release, with debug info) and returns the ELF's path.
pub fn build_core(options: CoreOptions) -> Result<PathBuf> {
    let target_dir = options.target_dir();
    let mut command = cargo();
    command.args(["build", "--release", "--package", "xenolith-kernel", "--bin", "xenolith"]);
    command.args(["--target", CORE_TARGET]).arg("--target-dir").arg(&target_dir);
    if options.test_hooks {
        command.args(["--features", "test-hooks"]);
    }
    let status = command.status().context("running cargo to build the core")?;
    ensure!(status.success(), "building the core failed (cargo exited with {status})");
    Ok(target_dir.join(CORE_TARGET).join("release").join("xenolith"))
}

fn u16_at(bytes: &[u8], offset: usize) -> Result<u16> {
    let slice = bytes.get(offset..offset + 2).context("ELF truncated")?;
    Ok(u16::from_le_bytes(slice.try_into()?))
}

fn u32_at(bytes: &[u8], offset: usize) -> Result<u32> {
    let slice = bytes.get(offset..offset + 4).context("ELF truncated")?;
    Ok(u32::from_le_bytes(slice.try_into()?))
}

fn u64_at(bytes: &[u8], offset: usize) -> Result<u64> {
    let slice = bytes.get(offset..offset + 8).context("ELF truncated")?;
    Ok(u64::from_le_bytes(slice.try_into()?))
}

/// The flat binary of a little-endian ELF64's loadable segments, from the lowest physical
/// address: what QEMU and bootloaders load as an arm64 `Image` (its header is the first bytes
/// of the core's text). `.bss` is not included; the Image header's size field covers it.
pub fn elf_to_image(elf: &[u8]) -> Result<Vec<u8>> {
    ensure!(elf.get(..4) == Some(b"\x7fELF".as_slice()), "not an ELF file");
    ensure!(elf.get(4) == Some(&2) && elf.get(5) == Some(&1), "not a little-endian ELF64 file");
    let phoff = u64_at(elf, 0x20)? as usize;
    let phentsize = u16_at(elf, 0x36)? as usize;
    let phnum = u16_at(elf, 0x38)? as usize;
    let mut segments = Vec::new();
    for index in 0..phnum {
        let header = phoff + index * phentsize;
        const PT_LOAD: u32 = 1;
        if u32_at(elf, header)? != PT_LOAD {
            continue;
        }
        let offset = u64_at(elf, header + 8)? as usize;
        let paddr = u64_at(elf, header + 24)?;
        let filesz = u64_at(elf, header + 32)? as usize;
        if filesz == 0 {
            continue;
        }
        let data = elf.get(offset..offset + filesz).context("segment outside the ELF file")?;
        segments.push((paddr, data));
    }
    let base =
        segments.iter().map(|(paddr, _)| *paddr).min().context("ELF has no loadable data")?;
    let end = segments.iter().map(|(paddr, data)| paddr + data.len() as u64).max().unwrap_or(base);
    ensure!(end - base < 64 << 20, "loadable segments span {} bytes: not a core image", end - base);
    let mut image = vec![0u8; (end - base) as usize];
    for (paddr, data) in segments {
        let start = (paddr - base) as usize;
        image[start..start + data.len()].copy_from_slice(data);
    }
    if image.get(0x38..0x3c) != Some(b"ARM\x64".as_slice()) {
        bail!("the image does not start with an arm64 Image header");
    }
    Ok(image)
}

/// Everything needed to boot one system.
#[derive(Debug)]
pub struct SystemImage {
    /// The checked manifest.
    pub manifest: Manifest,
    /// The core as an arm64 `Image`.
    pub kernel: PathBuf,
    /// The boot bundle (QEMU `-initrd`).
    pub bundle: PathBuf,
    /// The core's ELF (symbols, for debugging).
    pub elf: PathBuf,
}

/// Validates `manifest_path`, builds the domains' programs and the core, and writes `Image` and
/// `bundle.bin` under `target/images/<system name>[-test-hooks]/`.
pub fn build_system(manifest_path: &Path, options: CoreOptions) -> Result<SystemImage> {
    let manifest = Manifest::load(manifest_path)?;
    for warning in &manifest.warnings {
        eprintln!("{warning}");
    }
    let bundle = build_bundle(&manifest)?;
    let elf = build_core(options)?;
    let elf_bytes = std::fs::read(&elf).with_context(|| format!("reading {}", elf.display()))?;
    let image =
        elf_to_image(&elf_bytes).with_context(|| format!("converting {}", elf.display()))?;
    let suffix = if options.test_hooks { "-test-hooks" } else { "" };
    let dir =
        root().join("target").join("images").join(format!("{}{suffix}", manifest.system.name));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let kernel = dir.join("Image");
    let bundle_path = dir.join("bundle.bin");
    std::fs::write(&kernel, image).with_context(|| format!("writing {}", kernel.display()))?;
    std::fs::write(&bundle_path, bundle)
        .with_context(|| format!("writing {}", bundle_path.display()))?;
    Ok(SystemImage { manifest, kernel, bundle: bundle_path, elf })
}

/// The boot bundle of `manifest`: checks its programs ([`check_programs`]), builds each once
/// ([`build_program`]), reads its image and ramdisk files, fetches Debian's packages if a
/// `debian:` value needs them ([`crate::debian`]), and packs every image and ramdisk as a module.
pub fn build_bundle(manifest: &Manifest) -> Result<Vec<u8>> {
    check_programs(manifest)?;
    let mut debian: Option<debian::Packages> = None;
    crate::bundle::pack(manifest, |source| load_image(source, &mut debian))
}

/// Checks that every domain's `program` is a binary crate of this workspace, asking
/// `cargo metadata`; an error is a [`ManifestError`](crate::manifest::ManifestError) of kind
/// [`ErrorKind::UnknownProgram`] pointing at the `program` value.
pub fn check_programs(manifest: &Manifest) -> Result<()> {
    let programs: Vec<_> = manifest
        .domains
        .iter()
        .filter_map(|domain| match &domain.source {
            DomainSource::Program { name, at } => Some((name.as_str(), *at)),
            DomainSource::Image { .. }
            | DomainSource::Debian { .. }
            | DomainSource::Ext4 { .. } => None,
        })
        .collect();
    if programs.is_empty() {
        return Ok(());
    }
    let packages = workspace_packages()?;
    for (name, at) in programs {
        let message = match packages.iter().find(|package| package.name == name) {
            Some(package) if package.binaries.iter().any(|binary| binary == name) => continue,
            Some(_) => format!(
                "package `{name}` of this workspace has no binary target `{name}`; a program is a \
                 bare-metal binary crate whose binary has the crate's name"
            ),
            None => {
                let binaries: Vec<&str> = packages
                    .iter()
                    .filter(|package| package.binaries.contains(&package.name))
                    .map(|package| package.name.as_str())
                    .collect();
                format!(
                    "`{name}` is not a package of this workspace (binary crates: {}); correct the \
                     name, or add the crate to the workspace members in Cargo.toml",
                    binaries.join(", ")
                )
            }
        };
        return Err(manifest.error_at(at, ErrorKind::UnknownProgram, message).into());
    }
    Ok(())
}

/// A package of this workspace, as `cargo metadata` lists it.
struct Package {
    name: String,
    /// Names of its binary targets.
    binaries: Vec<String>,
}

/// The workspace's packages (`cargo metadata --no-deps`).
fn workspace_packages() -> Result<Vec<Package>> {
    let output = cargo()
        .args(["metadata", "--no-deps", "--format-version", "1"])
        .output()
        .context("running cargo metadata to look up the domains' programs")?;
    ensure!(
        output.status.success(),
        "cargo metadata failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr).trim()
    );
    let metadata: serde_json::Value =
        serde_json::from_slice(&output.stdout).context("reading cargo metadata's output")?;
    let packages = metadata["packages"].as_array().context("cargo metadata lists no packages")?;
    let packages = packages
        .iter()
        .filter_map(|package| {
            let name = package["name"].as_str()?.to_owned();
            let targets = package["targets"].as_array().map(Vec::as_slice).unwrap_or_default();
            let binaries = targets
                .iter()
                .filter(|target| {
                    let kinds = target["kind"].as_array().map(Vec::as_slice).unwrap_or_default();
                    kinds.iter().any(|kind| kind == "bin")
                })
                .filter_map(|target| Some(target["name"].as_str()?.to_owned()))
                .collect();
            Some(Package { name, binaries })
        })
        .collect();
    Ok(packages)
}

/// Builds domain program `name` (release, for [`DOMAIN_TARGET`], under `target/domains`) and
/// returns its ELF's path.
pub fn build_program(name: &str) -> Result<PathBuf> {
    let target_dir = root().join("target").join("domains");
    let mut command = cargo();
    command.args(["build", "--release", "--package", name, "--target", DOMAIN_TARGET]);
    command.arg("--target-dir").arg(&target_dir);
    // The bundle carries the image: without debug information it is a tenth of the size.
    command
        .env("CARGO_PROFILE_RELEASE_DEBUG", "false")
        .env("CARGO_PROFILE_RELEASE_STRIP", "debuginfo");
    let status = command.status().with_context(|| format!("running cargo to build `{name}`"))?;
    ensure!(status.success(), "building program `{name}` failed (cargo exited with {status})");
    Ok(target_dir.join(DOMAIN_TARGET).join("release").join(name))
}

/// The bytes of a domain's image or ramdisk: its program's ELF, built, its file, or a `debian:`
/// artifact (the packages fetched once, into `debian`). Whether it can boot is the bundle's
/// business (`xenolith_builder::plan`, in `bundle::pack`).
fn load_image(source: &DomainSource, debian: &mut Option<debian::Packages>) -> Result<Vec<u8>> {
    let path = match source {
        DomainSource::Program { name, .. } => build_program(name)?,
        DomainSource::Image { path, .. } => path.clone(),
        DomainSource::Ext4 { mib, .. } => {
            return crate::disk_image::ext4(*mib)
                .with_context(|| format!("preparing {}", source.describe()));
        }
        DomainSource::Debian { artifact, .. } => {
            let packages = match debian {
                Some(packages) => packages,
                None => debian.insert(debian::fetch()?),
            };
            return match artifact {
                DebianArtifact::Kernel => debian::kernel_image(packages),
                DebianArtifact::BusyboxInitramfs => {
                    guest_tools::build().and_then(|tools| debian::initramfs(packages, &tools))
                }
            }
            .with_context(|| format!("preparing {}", source.describe()));
        }
    };
    std::fs::read(&path).with_context(|| format!("reading {}", path.display()))
}
