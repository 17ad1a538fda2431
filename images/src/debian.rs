//! Debian's arm64 Linux as a guest: fetching the kernel and busybox packages with apt into a
//! cache outside the repository, and packing the busybox initramfs the Linux test guests boot
//! with. A manifest names these with `kernel = "debian:linux-image-arm64"` and
//! `ramdisk = "debian:busybox-initramfs"` ([`DebianArtifact`]).
//!
//! The steps (as root on Debian, in [`fetch`]):
//! 1. `dpkg --print-foreign-architectures` must list `arm64`; else `dpkg --add-architecture arm64`
//!    and `apt-get update`;
//! 2. the kernel package is whatever the metapackage [`KERNEL_METAPACKAGE`] depends on now
//!    (`apt-cache depends linux-image-arm64:arm64` → `linux-image-6.1.0-NN-arm64`; NN moves every
//!    few weeks, so it is never written down here);
//! 3. `apt-get download` that package and [`BUSYBOX_PACKAGE`] into [`cache_dir`]`/debs`, unless a
//!    `.deb` of that package is already there;
//! 4. `dpkg-deb -x` each into `cache_dir/unpacked/<deb name>` (once; a half-unpacked tree is never
//!    used: it is unpacked beside and renamed into place).
//!
//! If apt fails (offline, say) but an earlier run left an unpacked kernel and busybox, those are
//! used with a warning. Not root and no arm64 architecture configured: it stops with the exact
//! commands to run. Nothing is written inside the repository.
//!
//! The initramfs ([`initramfs`]) is a `newc` cpio archive written by [`crate::cpio`]: busybox,
//! `/init` ([`INIT_SCRIPT`], `images/initramfs/init.sh`, which documents its output), the
//! [`INITRAMFS_MODULES`] of the same kernel package with their dependencies (read from each
//! module's `.modinfo` `depends=`: the package ships no `modules.dep`, which `depmod` writes when
//! the package is installed), the list of those modules in load order (`/etc/xenolith-modules`),
//! `/dev/console`, the directories `/init` mounts on, and this workspace's guest programs
//! ([`GuestTools`]: `/usr/bin/xenstore` and its `xenstore-*` links, built for arm64 Linux by
//! [`crate::guest_tools`]).
//!
//! # Invariants
//! - Nothing here writes outside [`cache_dir`]; a `.deb` or an unpacked tree in the cache is
//!   complete (downloads go through apt's own temporary files; unpacking is renamed into place).
//! - [`initramfs`] is deterministic: the same packages and guest programs give the same bytes.
//! - The modules in the initramfs come from the same package as the kernel, and each comes after
//!   every module it depends on.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, ensure, Context, Result};

use crate::cpio::{self, Entry};
use crate::guest_tools::GuestTools;

/// The metapackage whose dependency is the current arm64 kernel package.
pub const KERNEL_METAPACKAGE: &str = "linux-image-arm64";
/// The package whose `bin/busybox` the initramfs runs (statically linked, arm64).
pub const BUSYBOX_PACKAGE: &str = "busybox-static";
/// The kernel modules `/init` loads, by module name, in this order; their dependencies
/// (`.modinfo` `depends=`) are added before each. `xen-netfront` is Linux's network frontend:
/// `eth0` for a `vif=` (it appears once the backend is connected; loading it with no vif or no
/// backend changes nothing). `virtio_mmio`, `virtio_blk` and `ext4` are for a virtio disk a
/// device model emulates (issue 18; in Debian's 6.1 arm64 kernel `CONFIG_VIRTIO=y`,
/// `CONFIG_VIRTIO_MMIO=m`, `CONFIG_VIRTIO_BLK=m`, `CONFIG_EXT4_FS=m`, with `jbd2`, `mbcache`
/// and `crc16` as `ext4`'s dependencies); like xen-netfront they change nothing without such
/// a device. `crc32c_generic` comes before `ext4`: ext4 and jbd2 ask for the `crc32c` hash
/// only by a soft dependency (`softdep=pre: crypto-crc32c`), which busybox `insmod` does not
/// follow and `depends=` does not list, and mounting a file system with metadata checksums
/// (mkfs.ext4's default) fails without it. `virtio_net` (`CONFIG_VIRTIO_NET=m`, with
/// `net_failover` and `failover`) is for a device model's virtio-net (`virtio_net = true`).
pub const INITRAMFS_MODULES: &[&str] = &[
    "xenfs",
    "xen-evtchn",
    "xen-netfront",
    "virtio_mmio",
    "virtio_blk",
    "crc32c_generic",
    "ext4",
    "virtio_net",
];
/// The initramfs's `/init`.
pub const INIT_SCRIPT: &str = include_str!("../initramfs/init.sh");
/// The Debian architecture of the guests' packages.
const ARCH: &str = "arm64";

/// What a manifest can name with `debian:<name>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DebianArtifact {
    /// `debian:linux-image-arm64`: the kernel (`boot/vmlinuz-*`, as a plain arm64 `Image`) of the
    /// package [`KERNEL_METAPACKAGE`] depends on. A `kernel`.
    Kernel,
    /// `debian:busybox-initramfs`: the initramfs packed here from busybox and that kernel's
    /// modules. A `ramdisk`.
    BusyboxInitramfs,
}

impl DebianArtifact {
    /// Every artifact.
    pub const ALL: [DebianArtifact; 2] = [DebianArtifact::Kernel, DebianArtifact::BusyboxInitramfs];
    /// The prefix of a manifest value that names one.
    pub const PREFIX: &'static str = "debian:";

    /// Its name after `debian:`.
    pub fn name(self) -> &'static str {
        match self {
            DebianArtifact::Kernel => KERNEL_METAPACKAGE,
            DebianArtifact::BusyboxInitramfs => "busybox-initramfs",
        }
    }

    /// The manifest key it belongs to.
    pub fn key(self) -> &'static str {
        match self {
            DebianArtifact::Kernel => "kernel",
            DebianArtifact::BusyboxInitramfs => "ramdisk",
        }
    }

    /// The artifact `name` (the part after `debian:`) names, if any.
    pub fn parse(name: &str) -> Option<DebianArtifact> {
        DebianArtifact::ALL.into_iter().find(|artifact| artifact.name() == name)
    }
}

/// The unpacked packages, as [`fetch`] leaves them.
#[derive(Clone, Debug)]
pub struct Packages {
    /// The kernel package's name, such as `linux-image-6.1.0-57-arm64`.
    pub kernel_package: String,
    /// Its unpacked tree (`boot/`, `lib/modules/`).
    pub kernel_root: PathBuf,
    /// [`BUSYBOX_PACKAGE`]'s unpacked tree (`bin/busybox`).
    pub busybox_root: PathBuf,
}

/// The cache: `$XDG_CACHE_HOME/xenolith/debian`, else `$HOME/.cache/xenolith/debian`.
pub fn cache_dir() -> Result<PathBuf> {
    let base = match std::env::var_os("XDG_CACHE_HOME").filter(|value| !value.is_empty()) {
        Some(cache) => PathBuf::from(cache),
        None => {
            let home = std::env::var_os("HOME").filter(|value| !value.is_empty()).context(
                "neither XDG_CACHE_HOME nor HOME is set, so there is no cache directory for \
                 Debian's packages; set one of them",
            )?;
            PathBuf::from(home).join(".cache")
        }
    };
    Ok(base.join("xenolith").join("debian"))
}

/// Makes sure the kernel and busybox packages are unpacked in the cache (see the module doc)
/// and returns where.
pub fn fetch() -> Result<Packages> {
    let cache = cache_dir()?;
    match fetch_with_apt(&cache) {
        Ok(packages) => Ok(packages),
        Err(error) => match cached(&cache) {
            Some(packages) => {
                eprintln!(
                    "xtask: warning: fetching Debian's packages failed ({error:#}); using {} \
                     unpacked earlier in {}",
                    packages.kernel_package,
                    cache.display()
                );
                Ok(packages)
            }
            None => Err(error),
        },
    }
}

/// Step 1 of the module doc: dpkg knows the arm64 architecture (added as root when missing).
pub(crate) fn ensure_arm64_architecture() -> Result<()> {
    let foreign = output("dpkg", &["--print-foreign-architectures"])?;
    if !foreign.split_whitespace().any(|arch| arch == ARCH) {
        if !is_root()? {
            bail!(
                "Debian's arm64 packages are needed (a `debian:` guest or the Xen oracle), but \
                 dpkg has no arm64 architecture and this is not root; run as root:\n    dpkg \
                 --add-architecture arm64 && apt-get update\nthen run this command again"
            );
        }
        eprintln!("xtask: adding the arm64 architecture to dpkg (dpkg --add-architecture arm64)");
        run("dpkg", &["--add-architecture", ARCH])?;
        run("apt-get", &["update"])?;
    }
    Ok(())
}

/// Steps 1-4 of the module doc.
fn fetch_with_apt(cache: &Path) -> Result<Packages> {
    ensure_arm64_architecture()?;
    let kernel_package = match kernel_package() {
        Ok(package) => package,
        Err(_) if is_root()? => {
            // The package lists may predate the architecture: update once and ask again.
            run("apt-get", &["update"])?;
            kernel_package()?
        }
        Err(error) => return Err(error),
    };
    let debs = cache.join("debs");
    std::fs::create_dir_all(&debs).with_context(|| format!("creating {}", debs.display()))?;
    let kernel_deb = download(&debs, &kernel_package)?;
    let busybox_deb = download(&debs, BUSYBOX_PACKAGE)?;
    let packages = Packages {
        kernel_root: unpack(cache, &kernel_deb)?,
        busybox_root: unpack(cache, &busybox_deb)?,
        kernel_package,
    };
    // What an offline run falls back to.
    let stamp = format!(
        "{}\n{}\n{}\n",
        packages.kernel_package,
        packages.kernel_root.display(),
        packages.busybox_root.display()
    );
    let path = cache.join("current");
    std::fs::write(&path, stamp).with_context(|| format!("writing {}", path.display()))?;
    Ok(packages)
}

/// The packages the last successful [`fetch_with_apt`] unpacked, if they are still there.
fn cached(cache: &Path) -> Option<Packages> {
    let stamp = std::fs::read_to_string(cache.join("current")).ok()?;
    let mut lines = stamp.lines();
    let packages = Packages {
        kernel_package: lines.next()?.to_owned(),
        kernel_root: PathBuf::from(lines.next()?),
        busybox_root: PathBuf::from(lines.next()?),
    };
    (packages.kernel_root.is_dir() && packages.busybox_root.is_dir()).then_some(packages)
}

/// The package [`KERNEL_METAPACKAGE`] depends on now, from `apt-cache depends`.
fn kernel_package() -> Result<String> {
    let metapackage = format!("{KERNEL_METAPACKAGE}:{ARCH}");
    let text = output("apt-cache", &["depends", &metapackage])?;
    parse_kernel_dependency(&text).with_context(|| {
        format!(
            "`apt-cache depends {metapackage}` names no linux-image package (did `apt-get update` \
             run since arm64 was added?): {}",
            text.trim()
        )
    })
}

/// The first `Depends: linux-image-…` of `apt-cache depends` output, without its `:arm64`.
pub fn parse_kernel_dependency(text: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let package = line.trim().strip_prefix("Depends:")?.trim();
        let package = package.strip_suffix(&format!(":{ARCH}")).unwrap_or(package);
        let is_kernel = package.starts_with("linux-image-") && package != KERNEL_METAPACKAGE;
        (is_kernel && !package.contains(['<', ' '])).then(|| package.to_owned())
    })
}

/// The `.deb` of `package` in `debs`: one already there, else `apt-get download`ed.
pub(crate) fn download(debs: &Path, package: &str) -> Result<PathBuf> {
    if let Some(deb) = find_deb(debs, package)? {
        return Ok(deb);
    }
    eprintln!("xtask: downloading {package}:{ARCH} into {}", debs.display());
    let status = Command::new("apt-get")
        .args(["download", &format!("{package}:{ARCH}")])
        .current_dir(debs)
        .status()
        .context("running apt-get download; is this Debian with apt?")?;
    ensure!(status.success(), "`apt-get download {package}:{ARCH}` failed ({status})");
    find_deb(debs, package)?.with_context(|| {
        format!("apt-get download left no {package}_*_{ARCH}.deb in {}", debs.display())
    })
}

/// A `<package>_<version>_arm64.deb` in `debs`; the last by name if there are several.
pub(crate) fn find_deb(debs: &Path, package: &str) -> Result<Option<PathBuf>> {
    let prefix = format!("{package}_");
    let suffix = format!("_{ARCH}.deb");
    let mut found = Vec::new();
    for entry in std::fs::read_dir(debs).with_context(|| format!("listing {}", debs.display()))? {
        let name = entry?.file_name();
        let name = name.to_string_lossy();
        if name.starts_with(&prefix) && name.ends_with(&suffix) {
            found.push(debs.join(&*name));
        }
    }
    found.sort();
    Ok(found.pop())
}

/// `deb` unpacked under `cache/unpacked/<its name without .deb>` (done once).
pub(crate) fn unpack(cache: &Path, deb: &Path) -> Result<PathBuf> {
    let stem = deb.file_stem().context("a .deb without a name")?;
    let unpacked = cache.join("unpacked");
    let target = unpacked.join(stem);
    if target.is_dir() {
        return Ok(target);
    }
    let partial = unpacked.join(format!("{}.partial", stem.to_string_lossy()));
    if partial.exists() {
        std::fs::remove_dir_all(&partial)
            .with_context(|| format!("removing the half-unpacked {}", partial.display()))?;
    }
    std::fs::create_dir_all(&partial).with_context(|| format!("creating {}", partial.display()))?;
    let status = Command::new("dpkg-deb")
        .arg("-x")
        .arg(deb)
        .arg(&partial)
        .status()
        .context("running dpkg-deb; is this Debian?")?;
    ensure!(status.success(), "`dpkg-deb -x {}` failed ({status})", deb.display());
    std::fs::rename(&partial, &target)
        .with_context(|| format!("renaming {} into place", partial.display()))?;
    Ok(target)
}

/// Whether this process runs as root (the owner of `/proc/self`).
fn is_root() -> Result<bool> {
    use std::os::unix::fs::MetadataExt;
    Ok(std::fs::metadata("/proc/self").context("reading /proc/self")?.uid() == 0)
}

/// Runs `program` with `args`, its output passed through; fails unless it succeeds.
fn run(program: &str, args: &[&str]) -> Result<()> {
    let status = Command::new(program)
        .args(args)
        .status()
        .with_context(|| format!("running {program}; is this Debian?"))?;
    ensure!(status.success(), "`{program} {}` failed ({status})", args.join(" "));
    Ok(())
}

/// Runs `program` with `args` and returns its standard output; fails unless it succeeds.
fn output(program: &str, args: &[&str]) -> Result<String> {
    let output = Command::new(program)
        .args(args)
        .output()
        .with_context(|| format!("running {program}; is this Debian?"))?;
    ensure!(
        output.status.success(),
        "`{program} {}` failed ({}): {}",
        args.join(" "),
        output.status,
        String::from_utf8_lossy(&output.stderr).trim()
    );
    String::from_utf8(output.stdout).with_context(|| format!("{program} printed non-UTF-8 text"))
}

// ---------------------------------------------------------------------------------------------------
// What the packages give.

/// The kernel of `packages` as a plain arm64 `Image` (`boot/vmlinuz-*`, decompressed if it is
/// gzip-compressed).
pub fn kernel_image(packages: &Packages) -> Result<Vec<u8>> {
    let path = vmlinuz(&packages.kernel_root)?;
    let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut image = Vec::new();
        flate2::read::GzDecoder::new(bytes.as_slice())
            .read_to_end(&mut image)
            .with_context(|| format!("decompressing {} (gzip)", path.display()))?;
        return Ok(image);
    }
    Ok(bytes)
}

/// The one `boot/vmlinuz-*` of an unpacked kernel package.
fn vmlinuz(root: &Path) -> Result<PathBuf> {
    let boot = root.join("boot");
    let mut found = Vec::new();
    for entry in std::fs::read_dir(&boot).with_context(|| format!("listing {}", boot.display()))? {
        let path = entry?.path();
        if path.file_name().is_some_and(|name| name.to_string_lossy().starts_with("vmlinuz-")) {
            found.push(path);
        }
    }
    match found.as_slice() {
        [one] => Ok(one.clone()),
        [] => bail!("{} has no vmlinuz-*: not an unpacked kernel package", boot.display()),
        _ => bail!("{} has several vmlinuz-* files; remove the cache entry", boot.display()),
    }
}

/// The initramfs for `packages` with the guest programs `tools` (see the module doc).
pub fn initramfs(packages: &Packages, tools: &GuestTools) -> Result<Vec<u8>> {
    let busybox_path = packages.busybox_root.join("bin").join("busybox");
    let busybox = std::fs::read(&busybox_path)
        .with_context(|| format!("reading {}", busybox_path.display()))?;
    let modules_root = modules_dir(&packages.kernel_root)?;
    let modules = module_closure(&modules_root, INITRAMFS_MODULES)?;

    let mut files: BTreeMap<String, Entry> = BTreeMap::new();
    let mut directories: BTreeSet<String> = ["bin", "dev", "etc", "proc", "sbin", "sys", "usr"]
        .into_iter()
        .chain(["usr/bin", "usr/sbin"])
        .map(str::to_owned)
        .collect();
    let file = |path: &str, mode, data| Entry::File { path: path.to_owned(), mode, data };
    files.insert("bin/busybox".into(), file("bin/busybox", 0o755, busybox));
    let sh = Entry::Symlink { path: "bin/sh".into(), target: "busybox".into() };
    files.insert("bin/sh".into(), sh);
    let console = Entry::CharDevice { path: "dev/console".into(), mode: 0o600, major: 5, minor: 1 };
    files.insert("dev/console".into(), console);
    files.insert("init".into(), file("init", 0o755, INIT_SCRIPT.as_bytes().to_vec()));
    for entry in tools.entries() {
        files.insert(entry.path().to_owned(), entry);
    }
    let mut list = String::new();
    for module in &modules {
        let relative = module.strip_prefix(&packages.kernel_root).with_context(|| {
            format!("module {} is outside {}", module.display(), packages.kernel_root.display())
        })?;
        let path = relative.to_str().context("a module path that is not UTF-8")?.to_owned();
        let mut parent = Path::new(&path).parent();
        while let Some(directory) = parent.filter(|directory| !directory.as_os_str().is_empty()) {
            directories.insert(directory.to_string_lossy().into_owned());
            parent = directory.parent();
        }
        let data =
            std::fs::read(module).with_context(|| format!("reading {}", module.display()))?;
        list.push_str(&format!("/{path}\n"));
        files.insert(path.clone(), file(&path, 0o644, data));
    }
    files.insert("etc/xenolith-modules".into(), file("etc/xenolith-modules", 0o644, list.into()));

    let mut entries: BTreeMap<String, Entry> = files;
    for directory in directories {
        let entry = Entry::Directory { path: directory.clone(), mode: 0o755 };
        entries.insert(directory, entry);
    }
    entries.insert("tmp".into(), Entry::Directory { path: "tmp".into(), mode: 0o1777 });
    // In path order every directory comes before what it holds.
    let entries: Vec<Entry> = entries.into_values().collect();
    Ok(cpio::write(&entries)?)
}

/// The one `lib/modules/<release>` of an unpacked kernel package.
fn modules_dir(root: &Path) -> Result<PathBuf> {
    let modules = root.join("lib").join("modules");
    let mut found = Vec::new();
    for entry in
        std::fs::read_dir(&modules).with_context(|| format!("listing {}", modules.display()))?
    {
        let path = entry?.path();
        if path.is_dir() {
            found.push(path);
        }
    }
    match found.as_slice() {
        [one] => Ok(one.clone()),
        _ => bail!("{} holds {} kernel releases, not one", modules.display(), found.len()),
    }
}

/// The `.ko` files of `names` and of every module they depend on, dependencies first, from the
/// modules under `modules_root` (`lib/modules/<release>`). Names compare with `-` and `_` alike,
/// as the kernel's do.
pub fn module_closure(modules_root: &Path, names: &[&str]) -> Result<Vec<PathBuf>> {
    let mut index: BTreeMap<String, PathBuf> = BTreeMap::new();
    let mut pending = vec![modules_root.to_path_buf()];
    while let Some(directory) = pending.pop() {
        for entry in std::fs::read_dir(&directory)
            .with_context(|| format!("listing {}", directory.display()))?
        {
            let path = entry?.path();
            if path.is_dir() {
                pending.push(path);
            } else if let Some(name) = path.file_name().and_then(|name| name.to_str()) {
                if let Some(module) = name.strip_suffix(".ko") {
                    index.insert(normalize(module), path.clone());
                } else if name.contains(".ko.") {
                    bail!(
                        "{} is a compressed kernel module; only plain .ko files are supported",
                        path.display()
                    );
                }
            }
        }
    }
    let mut ordered = Vec::new();
    let mut visiting = Vec::new();
    for name in names {
        visit(&index, &normalize(name), &mut visiting, &mut ordered)?;
    }
    Ok(ordered)
}

/// Depth first: `name`'s dependencies, then `name`, each once.
fn visit(
    index: &BTreeMap<String, PathBuf>,
    name: &str,
    visiting: &mut Vec<String>,
    ordered: &mut Vec<PathBuf>,
) -> Result<()> {
    let path = index.get(name).with_context(|| {
        format!(
            "kernel module `{name}` is not in the kernel package (built in, or not built?); \
             remove it from INITRAMFS_MODULES in images/src/debian.rs"
        )
    })?;
    if ordered.contains(path) {
        return Ok(());
    }
    ensure!(
        !visiting.iter().any(|other| other == name),
        "kernel modules depend on each other in a circle through `{name}`"
    );
    visiting.push(name.to_owned());
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let depends = modinfo_depends(&bytes)
        .with_context(|| format!("reading the .modinfo of {}", path.display()))?;
    for dependency in depends {
        visit(index, &normalize(&dependency), visiting, ordered)?;
    }
    visiting.pop();
    ordered.push(path.clone());
    Ok(())
}

/// `xen-evtchn` and `xen_evtchn` are one module.
fn normalize(name: &str) -> String {
    name.replace('-', "_")
}

/// The module names in `depends=` of a kernel module's `.modinfo` section (NUL-separated
/// `key=value` strings), read from the ELF64 little-endian section headers.
pub fn modinfo_depends(elf: &[u8]) -> Result<Vec<String>> {
    let u16_at = |at: usize| -> Result<u16> {
        Ok(u16::from_le_bytes(elf.get(at..at + 2).context("truncated ELF")?.try_into()?))
    };
    let u64_at = |at: usize| -> Result<u64> {
        Ok(u64::from_le_bytes(elf.get(at..at + 8).context("truncated ELF")?.try_into()?))
    };
    ensure!(elf.starts_with(b"\x7fELF\x02\x01"), "not a little-endian ELF64 file");
    let section_headers = usize::try_from(u64_at(0x28)?)?;
    let entry_size = usize::from(u16_at(0x3a)?);
    let count = usize::from(u16_at(0x3c)?);
    let names_index = usize::from(u16_at(0x3e)?);
    let section = |index: usize| -> Result<(u32, &[u8])> {
        let header = section_headers + index * entry_size;
        let name =
            u32::from_le_bytes(elf.get(header..header + 4).context("truncated ELF")?.try_into()?);
        let offset = usize::try_from(u64_at(header + 0x18)?)?;
        let size = usize::try_from(u64_at(header + 0x20)?)?;
        let bytes = elf.get(offset..offset + size).context("a section outside the file")?;
        Ok((name, bytes))
    };
    let (_, names) = section(names_index)?;
    for index in 0..count {
        let (name_offset, bytes) = section(index)?;
        let name = names.get(name_offset as usize..).unwrap_or_default();
        if !name.starts_with(b".modinfo\0") {
            continue;
        }
        for field in bytes.split(|&byte| byte == 0) {
            if let Some(list) = field.strip_prefix(b"depends=") {
                let list = std::str::from_utf8(list).context("depends= is not UTF-8")?;
                return Ok(list
                    .split(',')
                    .filter(|name| !name.is_empty())
                    .map(str::to_owned)
                    .collect());
            }
        }
        return Ok(Vec::new());
    }
    bail!("no .modinfo section: not a kernel module")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kernel_package_comes_from_the_metapackage() {
        let text = "linux-image-arm64:arm64\n  Depends: linux-image-6.1.0-57-arm64:arm64\n";
        assert_eq!(parse_kernel_dependency(text).as_deref(), Some("linux-image-6.1.0-57-arm64"));
        let text = "linux-image-arm64\n  Depends: <linux-image-6.1.0-9-arm64>\n  Depends: linux-image-6.1.0-9-arm64\n";
        assert_eq!(parse_kernel_dependency(text).as_deref(), Some("linux-image-6.1.0-9-arm64"));
        assert_eq!(parse_kernel_dependency("linux-image-arm64:arm64\n"), None);
        assert_eq!(parse_kernel_dependency("  Depends: linux-base\n"), None);
    }

    #[test]
    fn an_offline_run_falls_back_to_what_the_last_fetch_unpacked() {
        let cache = std::env::temp_dir().join(format!("xenolith-cache-{}", std::process::id()));
        let kernel = cache.join("unpacked/linux-image-6.1.0-57-arm64_6.1.192-3_arm64");
        let busybox = cache.join("unpacked/busybox-static_1%3a1.35.0-4_arm64");
        std::fs::create_dir_all(&kernel).unwrap();
        assert!(cached(&cache).is_none(), "no stamp yet");
        let stamp =
            format!("linux-image-6.1.0-57-arm64\n{}\n{}\n", kernel.display(), busybox.display());
        std::fs::write(cache.join("current"), stamp).unwrap();
        assert!(cached(&cache).is_none(), "busybox is not unpacked");
        std::fs::create_dir_all(&busybox).unwrap();
        let packages = cached(&cache).expect("both unpacked");
        assert_eq!(packages.kernel_package, "linux-image-6.1.0-57-arm64");
        assert_eq!((packages.kernel_root, packages.busybox_root), (kernel, busybox));
        std::fs::remove_dir_all(&cache).unwrap();
    }

    #[test]
    fn artifacts_have_names_and_keys() {
        assert_eq!(DebianArtifact::parse("linux-image-arm64"), Some(DebianArtifact::Kernel));
        assert_eq!(
            DebianArtifact::parse("busybox-initramfs"),
            Some(DebianArtifact::BusyboxInitramfs)
        );
        assert_eq!(DebianArtifact::parse("linux-image-6.1.0-57-arm64"), None);
        assert_eq!(DebianArtifact::Kernel.key(), "kernel");
        assert_eq!(DebianArtifact::BusyboxInitramfs.key(), "ramdisk");
    }

    /// A minimal ELF64 with a section-name table and a `.modinfo` holding `modinfo`.
    fn module(modinfo: &[u8]) -> Vec<u8> {
        let names = b"\0.shstrtab\0.modinfo\0";
        let mut elf = vec![0u8; 64];
        elf[..6].copy_from_slice(b"\x7fELF\x02\x01");
        let names_at = elf.len();
        elf.extend_from_slice(names);
        let modinfo_at = elf.len();
        elf.extend_from_slice(modinfo);
        let headers_at = elf.len().next_multiple_of(8);
        elf.resize(headers_at, 0);
        for (name, offset, size) in
            [(0u32, 0, 0), (1, names_at, names.len()), (11, modinfo_at, modinfo.len())]
        {
            let mut header = [0u8; 64];
            header[..4].copy_from_slice(&name.to_le_bytes());
            header[0x18..0x20].copy_from_slice(&(offset as u64).to_le_bytes());
            header[0x20..0x28].copy_from_slice(&(size as u64).to_le_bytes());
            elf.extend_from_slice(&header);
        }
        elf[0x28..0x30].copy_from_slice(&(headers_at as u64).to_le_bytes());
        elf[0x3a..0x3c].copy_from_slice(&64u16.to_le_bytes());
        elf[0x3c..0x3e].copy_from_slice(&3u16.to_le_bytes());
        elf[0x3e..0x40].copy_from_slice(&1u16.to_le_bytes());
        elf
    }

    #[test]
    fn modinfo_names_the_dependencies() {
        let elf = module(b"license=GPL\0depends=xen-privcmd,foo_bar\0name=xenfs\0");
        assert_eq!(modinfo_depends(&elf).unwrap(), ["xen-privcmd", "foo_bar"]);
        assert!(modinfo_depends(&module(b"depends=\0name=x\0")).unwrap().is_empty());
        assert!(modinfo_depends(&module(b"name=x\0")).unwrap().is_empty());
        assert!(modinfo_depends(b"#!/bin/sh").is_err());
    }

    #[test]
    fn the_initramfs_holds_busybox_init_and_the_modules_in_load_order() {
        let root = std::env::temp_dir().join(format!("xenolith-packages-{}", std::process::id()));
        let kernel_root = root.join("kernel");
        let busybox_root = root.join("busybox");
        let xen = kernel_root.join("lib/modules/6.1.0-57-arm64/kernel/drivers/xen");
        std::fs::create_dir_all(xen.join("xenfs")).unwrap();
        std::fs::create_dir_all(busybox_root.join("bin")).unwrap();
        std::fs::write(busybox_root.join("bin/busybox"), b"\x7fELF busybox").unwrap();
        std::fs::write(xen.join("xenfs/xenfs.ko"), module(b"depends=xen-privcmd\0")).unwrap();
        std::fs::write(xen.join("xen-privcmd.ko"), module(b"depends=\0")).unwrap();
        std::fs::write(xen.join("xen-evtchn.ko"), module(b"depends=\0")).unwrap();
        let net = kernel_root.join("lib/modules/6.1.0-57-arm64/kernel/drivers/net");
        std::fs::create_dir_all(&net).unwrap();
        std::fs::write(net.join("xen-netfront.ko"), module(b"depends=\0")).unwrap();
        let release = kernel_root.join("lib/modules/6.1.0-57-arm64/kernel");
        for (path, depends) in [
            ("drivers/virtio/virtio_mmio.ko", &b"depends=\0"[..]),
            ("drivers/block/virtio_blk.ko", b"depends=\0"),
            ("crypto/crc32c_generic.ko", b"depends=\0"),
            ("fs/ext4/ext4.ko", b"depends=jbd2,mbcache,crc16\0"),
            ("fs/jbd2/jbd2.ko", b"depends=\0"),
            ("fs/mbcache.ko", b"depends=\0"),
            ("lib/crc16.ko", b"depends=\0"),
            ("drivers/net/virtio_net.ko", b"depends=net_failover\0"),
            ("drivers/net/net_failover.ko", b"depends=failover\0"),
            ("net/core/failover.ko", b"depends=\0"),
        ] {
            let path = release.join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, module(depends)).unwrap();
        }
        let packages = Packages {
            kernel_package: "linux-image-6.1.0-57-arm64".into(),
            kernel_root,
            busybox_root,
        };
        let tools = GuestTools { xenstore: b"\x7fELF xenstore".to_vec() };
        let archive = initramfs(&packages, &tools).unwrap();
        assert_eq!(initramfs(&packages, &tools).unwrap(), archive, "deterministic");
        let entries = cpio::parse(&archive).unwrap();
        let find = |path: &str| entries.iter().find(|entry| entry.path() == path).cloned();
        let file = |path: &str| match find(path) {
            Some(Entry::File { data, mode, .. }) => (data, mode),
            other => panic!("{path}: {other:?}"),
        };
        assert_eq!(file("init"), (INIT_SCRIPT.as_bytes().to_vec(), 0o755));
        assert_eq!(file("bin/busybox"), (b"\x7fELF busybox".to_vec(), 0o755));
        assert_eq!(file("usr/bin/xenstore"), (b"\x7fELF xenstore".to_vec(), 0o755));
        assert_eq!(
            find("usr/bin/xenstore-read"),
            Some(Entry::Symlink {
                path: "usr/bin/xenstore-read".into(),
                target: "xenstore".into()
            })
        );
        let list = String::from_utf8(file("etc/xenolith-modules").0).unwrap();
        let base = "/lib/modules/6.1.0-57-arm64/kernel/drivers/xen";
        let net = "/lib/modules/6.1.0-57-arm64/kernel/drivers/net";
        let kernel = "/lib/modules/6.1.0-57-arm64/kernel";
        assert_eq!(
            list,
            format!(
                "{base}/xen-privcmd.ko\n{base}/xenfs/xenfs.ko\n{base}/xen-evtchn.ko\n\
                 {net}/xen-netfront.ko\n{kernel}/drivers/virtio/virtio_mmio.ko\n\
                 {kernel}/drivers/block/virtio_blk.ko\n{kernel}/crypto/crc32c_generic.ko\n\
                 {kernel}/fs/jbd2/jbd2.ko\n{kernel}/fs/mbcache.ko\n{kernel}/lib/crc16.ko\n\
                 {kernel}/fs/ext4/ext4.ko\n{kernel}/net/core/failover.ko\n\
                 {net}/net_failover.ko\n{net}/virtio_net.ko\n"
            )
        );
        for line in list.lines() {
            assert!(find(&line[1..]).is_some(), "{line} is packed");
        }
        let console =
            Entry::CharDevice { path: "dev/console".into(), mode: 0o600, major: 5, minor: 1 };
        assert_eq!(find("dev/console"), Some(console));
        assert_eq!(
            find("bin/sh"),
            Some(Entry::Symlink { path: "bin/sh".into(), target: "busybox".into() })
        );
        for directory in ["proc", "sys", "dev", "tmp", "sbin", "usr/bin", "usr/sbin"] {
            assert!(matches!(find(directory), Some(Entry::Directory { .. })), "{directory}");
        }
        std::fs::remove_dir_all(&root).unwrap();
    }

    /// With the kernel package a fetch left in the cache (skipped without one): every module of
    /// [`INITRAMFS_MODULES`] is in it, in an order `insmod` can load, and the kernel is built
    /// with what `/init`'s disk modes and a device model's guest need.
    #[test]
    fn the_cached_kernel_has_the_modules_and_options() {
        let Some(packages) = cache_dir().ok().and_then(|cache| cached(&cache)) else {
            eprintln!("no unpacked kernel package in the cache: skipped");
            return;
        };
        let root = modules_dir(&packages.kernel_root).unwrap();
        let modules = module_closure(&root, INITRAMFS_MODULES).unwrap_or_else(|e| panic!("{e:#}"));
        let names: Vec<String> = modules
            .iter()
            .map(|path| path.file_stem().unwrap().to_string_lossy().into_owned())
            .collect();
        let at = |name: &str| names.iter().position(|other| other == name).expect(name);
        for dependency in ["jbd2", "mbcache", "crc16", "crc32c_generic"] {
            assert!(at(dependency) < at("ext4"), "{names:?}");
        }
        assert!(at("virtio_mmio") < at("virtio_blk"), "{names:?}");
        assert!(at("failover") < at("net_failover") && at("net_failover") < at("virtio_net"));
        let boot = packages.kernel_root.join("boot");
        let config = std::fs::read_dir(&boot)
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .find(|path| path.file_name().unwrap().to_string_lossy().starts_with("config-"))
            .expect("boot/config-*");
        let config = std::fs::read_to_string(config).unwrap();
        for line in [
            "CONFIG_VIRTIO=y",
            "CONFIG_VIRTIO_MMIO=m",
            "CONFIG_VIRTIO_BLK=m",
            "CONFIG_VIRTIO_NET=m",
            "CONFIG_EXT4_FS=m",
            "CONFIG_SERIAL_AMBA_PL011=y",
            "CONFIG_SERIAL_AMBA_PL011_CONSOLE=y",
            // No grant-based virtio: a device model maps its guest's memory.
            "# CONFIG_XEN_VIRTIO is not set",
        ] {
            assert!(config.lines().any(|have| have == line), "{line} not in the kernel's config");
        }
        assert!(!config.contains("CONFIG_XEN_VIRTIO_FORCE_GRANT=y"));
    }

    #[test]
    fn the_kernel_is_read_plain_or_gunzipped() {
        use std::io::Write;
        let root = std::env::temp_dir().join(format!("xenolith-vmlinuz-{}", std::process::id()));
        std::fs::create_dir_all(root.join("boot")).unwrap();
        let image = b"\0\0\0\0 an arm64 Image".repeat(100);
        let packages = Packages {
            kernel_package: "linux-image-x".into(),
            kernel_root: root.clone(),
            busybox_root: root.clone(),
        };
        std::fs::write(root.join("boot/vmlinuz-x"), &image).unwrap();
        assert_eq!(kernel_image(&packages).unwrap(), image);
        let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gzip.write_all(&image).unwrap();
        std::fs::write(root.join("boot/vmlinuz-x"), gzip.finish().unwrap()).unwrap();
        assert_eq!(kernel_image(&packages).unwrap(), image);
        std::fs::write(root.join("boot/vmlinuz-y"), b"").unwrap();
        let error = kernel_image(&packages).unwrap_err().to_string();
        assert!(error.contains("several vmlinuz-*"), "{error}");
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn the_closure_puts_dependencies_first() {
        let root = std::env::temp_dir().join(format!("xenolith-modules-{}", std::process::id()));
        let xen = root.join("kernel/drivers/xen");
        std::fs::create_dir_all(xen.join("xenfs")).unwrap();
        std::fs::write(xen.join("xenfs/xenfs.ko"), module(b"depends=xen-privcmd\0")).unwrap();
        std::fs::write(xen.join("xen-privcmd.ko"), module(b"depends=\0")).unwrap();
        std::fs::write(xen.join("xen-evtchn.ko"), module(b"depends=\0")).unwrap();
        std::fs::write(xen.join("loop-a.ko"), module(b"depends=loop_b\0")).unwrap();
        std::fs::write(xen.join("loop-b.ko"), module(b"depends=loop-a\0")).unwrap();
        let closure = module_closure(&root, &["xenfs", "xen_evtchn", "xen-privcmd"]).unwrap();
        let names: Vec<_> = closure.iter().map(|path| path.file_name().unwrap()).collect();
        assert_eq!(names, ["xen-privcmd.ko", "xenfs.ko", "xen-evtchn.ko"]);
        let error = module_closure(&root, &["nope"]).unwrap_err().to_string();
        assert!(error.contains("`nope` is not in the kernel package"), "{error}");
        let error = module_closure(&root, &["loop-a"]).unwrap_err().to_string();
        assert!(error.contains("circle"), "{error}");
        std::fs::remove_dir_all(&root).unwrap();
    }
}
