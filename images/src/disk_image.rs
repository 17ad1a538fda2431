//! Disk images this tool makes for virtio disks: `target=xenolith:ext4:<MiB>` in a manifest's
//! `disk` (`crate::manifest`, `manifest/device_model.rs`) is a fresh, empty ext4 file system of
//! that size, made with the host's `mkfs.ext4` (e2fsprogs) on a plain file, without root.
//!
//! It is made once per size into `target/xenolith/disks/` (never inside the sources, never
//! committed) and read from there afterwards; the guest's writes never reach it, since the
//! device model holds the disk in its own memory. Without `mkfs.ext4` it installs e2fsprogs as
//! `crate::qemu::ensure_installed` installs QEMU: with apt-get as root, else it stops with the
//! command to run.
//!
//! # Invariants
//! - An image in the cache is complete: it is made beside and renamed into place.
//! - The same size gives the same bytes from the same e2fsprogs: the UUID, the directory hash
//!   seed and the time stamps are fixed ([`UUID`], `E2FSPROGS_FAKE_TIME`), and the inode tables
//!   and journal are written out at once (no lazy initialisation left to the guest's kernel).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, ensure, Context, Result};

use crate::workspace;

/// The program that makes the file system.
pub const MKFS_EXT4: &str = "mkfs.ext4";
/// The Debian package that provides it.
pub const E2FSPROGS_PACKAGE: &str = "e2fsprogs";
/// The file system's UUID and directory hash seed: fixed, so that an image is reproducible.
pub const UUID: &str = "7a3e0b1c-58d4-4c6e-9f21-0d2b6c4e8a10";
/// The volume label.
pub const LABEL: &str = "xenolith";
/// Bumped whenever the way an image is made changes, so that older cached images are not used.
const FORMAT: u32 = 1;

/// The image for `target=xenolith:ext4:<mib>`: made if the cache has none (see the module doc).
pub fn ext4(mib: u32) -> Result<Vec<u8>> {
    let directory = workspace::root().join("target").join("xenolith").join("disks");
    let path = directory.join(format!("ext4-{mib}M-v{FORMAT}.img"));
    let size = u64::from(mib) << 20;
    let cached = std::fs::metadata(&path).is_ok_and(|meta| meta.is_file() && meta.len() == size);
    if !cached {
        let mkfs = ensure_mkfs()?;
        std::fs::create_dir_all(&directory)
            .with_context(|| format!("creating {}", directory.display()))?;
        let partial = directory.join(format!("ext4-{mib}M-v{FORMAT}.img.partial"));
        make(&mkfs, &partial, size)?;
        std::fs::rename(&partial, &path)
            .with_context(|| format!("renaming {} into place", partial.display()))?;
    }
    std::fs::read(&path).with_context(|| format!("reading {}", path.display()))
}

/// An empty ext4 file system of `size` bytes in the new file `path`, made by `mkfs`.
fn make(mkfs: &Path, path: &Path, size: u64) -> Result<()> {
    let file =
        std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    file.set_len(size).with_context(|| format!("sizing {}", path.display()))?;
    drop(file);
    let output = Command::new(mkfs)
        .args(mkfs_arguments())
        .arg(path)
        .env("E2FSPROGS_FAKE_TIME", "1")
        .output()
        .with_context(|| format!("running {}", mkfs.display()))?;
    ensure!(
        output.status.success(),
        "`{} {} {}` failed ({}): {}",
        mkfs.display(),
        mkfs_arguments().join(" "),
        path.display(),
        output.status,
        String::from_utf8_lossy(&output.stderr).trim()
    );
    Ok(())
}

/// `mkfs.ext4`'s options before the file: quiet, no questions, the fixed label, UUID and hash
/// seed, the root directory owned by root, everything initialised now.
pub fn mkfs_arguments() -> Vec<String> {
    let extended =
        format!("root_owner=0:0,hash_seed={UUID},lazy_itable_init=0,lazy_journal_init=0");
    ["-q", "-F", "-L", LABEL, "-U", UUID, "-E", &extended].into_iter().map(str::to_owned).collect()
}

/// `mkfs.ext4` on `PATH` or in `/sbin`, `/usr/sbin` (not on a non-root user's `PATH` on
/// Debian).
fn find_mkfs() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|directory| directory.join(MKFS_EXT4))
        .find(|candidate| candidate.is_file())
}

/// `mkfs.ext4`, installed with apt-get as root on Debian if it is missing; else an error with the
/// command to run.
fn ensure_mkfs() -> Result<PathBuf> {
    if let Some(mkfs) = find_mkfs() {
        return Ok(mkfs);
    }
    let install = format!("apt-get install -y --no-install-recommends {E2FSPROGS_PACKAGE}");
    let is_root =
        Command::new("id").arg("-u").output().is_ok_and(|out| out.stdout.starts_with(b"0\n"));
    if !is_root || find_on_path("apt-get").is_none() {
        bail!(
            "{MKFS_EXT4} is needed for a `xenolith:ext4:` disk and is not installed; install it \
             with: sudo apt-get update && sudo {install}"
        );
    }
    eprintln!("xtask: {MKFS_EXT4} not found; installing {E2FSPROGS_PACKAGE}");
    for command in ["apt-get update -qq", install.as_str()] {
        let status = Command::new("sh")
            .args(["-c", command])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .with_context(|| format!("running `{command}`"))?;
        ensure!(status.success(), "`{command}` failed ({status}); run it by hand and try again");
    }
    find_mkfs().with_context(|| format!("{MKFS_EXT4} still not found after `{install}`"))
}

/// `program` on `PATH`.
fn find_on_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|directory| directory.join(program)).find(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_image_is_reproducible_and_fixed() {
        let arguments = mkfs_arguments();
        assert_eq!(arguments[..6], ["-q", "-F", "-L", "xenolith", "-U", UUID]);
        assert!(arguments[7].contains(&format!("hash_seed={UUID}")), "{arguments:?}");
        assert!(arguments[7].contains("lazy_itable_init=0"), "{arguments:?}");
    }

    /// With the host's mkfs.ext4 (skipped without it): a superblock of the right size, twice
    /// the same bytes.
    #[test]
    fn makes_an_ext4_superblock() {
        let Some(mkfs) = find_mkfs() else {
            eprintln!("no {MKFS_EXT4} on this host: skipped");
            return;
        };
        let directory = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/xenolith/test-disks");
        std::fs::create_dir_all(&directory).unwrap();
        let [a, b] = ["a.img", "b.img"].map(|name| {
            let path = directory.join(name);
            let _ = std::fs::remove_file(&path);
            make(&mkfs, &path, 4 << 20).unwrap_or_else(|error| panic!("{error:#}"));
            std::fs::read(&path).unwrap()
        });
        assert_eq!(a.len(), 4 << 20);
        // The superblock at 1024: s_magic 0xEF53 at 0x38, the volume label at 0x78.
        assert_eq!(a[1024 + 0x38..1024 + 0x3a], [0x53, 0xef]);
        assert!(a[1024 + 0x78..].starts_with(LABEL.as_bytes()));
        assert!(a == b, "two images of one size differ");
    }
}
