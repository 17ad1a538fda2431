//! The Linux guests' own programs, built from this workspace for the guests' architecture and
//! packed into their initramfs ([`crate::debian::initramfs`]): today Xen's xenstore tools
//! (`guest-tools/xenstore`, one multi-call binary `xenstore` and a link per tool in
//! `/usr/bin`).
//!
//! They are built with cargo for [`TARGET`], static, linked by Rust's own `rust-lld` with the
//! musl start files and libc that rustup ships inside the target (`link-self-contained`), so
//! the host needs no C cross toolchain. The linker and flags are given to that one cargo run
//! for that one target (cargo's `CARGO_TARGET_<TRIPLE>_LINKER` and `_RUSTFLAGS`), not written
//! into a cargo configuration that other builds would see.
//!
//! # Invariants
//! - Build output stays under `target/guest-tools`.
//! - What [`build`] returns is a static aarch64 ELF executable ([`check_static_aarch64`]).
//! - [`GuestTools::entries`] depends on the binary's bytes alone: same bytes, same entries.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{bail, ensure, Context, Result};

use crate::cpio::Entry;
use crate::workspace::{cargo, root};

/// The Rust target of the Linux guests' programs.
pub const TARGET: &str = "aarch64-unknown-linux-musl";
/// The package of the xenstore tools.
pub const XENSTORE_PACKAGE: &str = "xenstore-tools";
/// Its binary, installed as `/usr/bin/xenstore`.
pub const XENSTORE_BINARY: &str = "xenstore";
/// The links to it in `/usr/bin`, one per tool (Xen installs the same names).
pub const XENSTORE_LINKS: [&str; 8] = [
    "xenstore-chmod",
    "xenstore-exists",
    "xenstore-list",
    "xenstore-ls",
    "xenstore-read",
    "xenstore-rm",
    "xenstore-watch",
    "xenstore-write",
];

/// The flags for [`TARGET`]: Rust's bundled musl start files and libc, linked statically.
pub const RUSTFLAGS: &str = "-C link-self-contained=yes -C target-feature=+crt-static";
/// The linker for [`TARGET`]: Rust's own lld, which rustc finds in its sysroot.
pub const LINKER: &str = "rust-lld";

/// The built programs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GuestTools {
    /// The `xenstore` multi-call binary.
    pub xenstore: Vec<u8>,
}

impl GuestTools {
    /// What goes into the initramfs: `usr/bin/xenstore` and the [`XENSTORE_LINKS`] to it
    /// (`usr/bin` is the initramfs's own directory).
    pub fn entries(&self) -> Vec<Entry> {
        let mut entries = vec![Entry::File {
            path: format!("usr/bin/{XENSTORE_BINARY}"),
            mode: 0o755,
            data: self.xenstore.clone(),
        }];
        entries.extend(XENSTORE_LINKS.iter().map(|link| Entry::Symlink {
            path: format!("usr/bin/{link}"),
            target: XENSTORE_BINARY.to_owned(),
        }));
        entries
    }
}

/// The cargo run that builds the xenstore tools for [`TARGET`] into `target/guest-tools`.
pub fn build_command() -> Command {
    let mut command = cargo();
    command.args(["build", "--release", "--package", XENSTORE_PACKAGE, "--bin", XENSTORE_BINARY]);
    command.args(["--target", TARGET]).arg("--target-dir").arg(target_dir());
    let variable = TARGET.to_uppercase().replace('-', "_");
    command
        .env(format!("CARGO_TARGET_{variable}_LINKER"), LINKER)
        .env(format!("CARGO_TARGET_{variable}_RUSTFLAGS"), RUSTFLAGS)
        // Into an initramfs: no debug information, no symbols.
        .env("CARGO_PROFILE_RELEASE_DEBUG", "false")
        .env("CARGO_PROFILE_RELEASE_STRIP", "symbols");
    command
}

fn target_dir() -> PathBuf {
    root().join("target").join("guest-tools")
}

/// Builds the guests' programs and reads them.
pub fn build() -> Result<GuestTools> {
    let status = build_command()
        .status()
        .with_context(|| format!("running cargo to build `{XENSTORE_PACKAGE}` for {TARGET}"))?;
    ensure!(
        status.success(),
        "building `{XENSTORE_PACKAGE}` for {TARGET} failed (cargo exited with {status}); the \
         target's standard library comes with `rustup target add {TARGET}`"
    );
    let path = target_dir().join(TARGET).join("release").join(XENSTORE_BINARY);
    let xenstore = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    check_static_aarch64(&xenstore).with_context(|| format!("checking {}", path.display()))?;
    Ok(GuestTools { xenstore })
}

/// Checks that `elf` is a little-endian ELF64 executable for aarch64 (`EM_AARCH64`, 183)
/// without a program interpreter (`PT_INTERP`): it runs in an initramfs with no libraries.
pub fn check_static_aarch64(elf: &[u8]) -> Result<()> {
    let field = |at: usize, size: usize| -> Result<u64> {
        let bytes = elf.get(at..at + size).context("the ELF file is truncated")?;
        Ok(bytes.iter().rev().fold(0, |value, &byte| value << 8 | u64::from(byte)))
    };
    ensure!(elf.starts_with(b"\x7fELF\x02\x01"), "not a little-endian ELF64 file");
    const ET_EXEC: u64 = 2;
    const ET_DYN: u64 = 3;
    const EM_AARCH64: u64 = 183;
    const PT_INTERP: u64 = 3;
    ensure!(matches!(field(0x10, 2)?, ET_EXEC | ET_DYN), "not an executable");
    let machine = field(0x12, 2)?;
    ensure!(machine == EM_AARCH64, "built for ELF machine {machine}, not aarch64 ({EM_AARCH64})");
    let (phoff, phentsize, phnum) = (field(0x20, 8)?, field(0x36, 2)?, field(0x38, 2)?);
    for index in 0..phnum {
        let at = usize::try_from(phoff + index * phentsize)?;
        if field(at, 4)? == PT_INTERP {
            bail!("dynamically linked (it names a program interpreter): not static");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An ELF64 header for `machine` with one program header of type `kind`.
    fn elf(machine: u16, kind: u32) -> Vec<u8> {
        let mut bytes = vec![0u8; 64 + 56];
        bytes[..6].copy_from_slice(b"\x7fELF\x02\x01");
        bytes[0x10..0x12].copy_from_slice(&2u16.to_le_bytes());
        bytes[0x12..0x14].copy_from_slice(&machine.to_le_bytes());
        bytes[0x20..0x28].copy_from_slice(&64u64.to_le_bytes());
        bytes[0x36..0x38].copy_from_slice(&56u16.to_le_bytes());
        bytes[0x38..0x3a].copy_from_slice(&1u16.to_le_bytes());
        bytes[64..68].copy_from_slice(&kind.to_le_bytes());
        bytes
    }

    #[test]
    fn only_static_aarch64_executables_pass() {
        check_static_aarch64(&elf(183, 1)).unwrap();
        let error = check_static_aarch64(&elf(62, 1)).unwrap_err().to_string();
        assert!(error.contains("machine 62"), "{error}");
        let error = check_static_aarch64(&elf(183, 3)).unwrap_err().to_string();
        assert!(error.contains("not static"), "{error}");
        assert!(check_static_aarch64(b"#!/bin/sh\n").is_err());
        assert!(check_static_aarch64(&elf(183, 1)[..60]).is_err(), "truncated");
    }

    #[test]
    fn the_binary_and_a_link_per_tool_go_to_usr_bin() {
        let tools = GuestTools { xenstore: b"\x7fELF".to_vec() };
        let entries = tools.entries();
        assert_eq!(entries.len(), 1 + XENSTORE_LINKS.len());
        assert_eq!(
            entries[0],
            Entry::File { path: "usr/bin/xenstore".into(), mode: 0o755, data: b"\x7fELF".to_vec() }
        );
        for link in
            ["xenstore-read", "xenstore-write", "xenstore-ls", "xenstore-rm", "xenstore-watch"]
        {
            let link =
                Entry::Symlink { path: format!("usr/bin/{link}"), target: "xenstore".into() };
            assert!(entries.contains(&link), "{link:?}");
        }
        assert_eq!(tools.entries(), entries, "deterministic");
    }

    #[test]
    fn the_build_is_for_the_musl_target_with_rust_lld_alone() {
        let command = build_command();
        let args: Vec<_> =
            command.get_args().map(|arg| arg.to_string_lossy().into_owned()).collect();
        assert!(args.windows(2).any(|pair| pair == ["--target", TARGET]), "{args:?}");
        assert!(args.windows(2).any(|pair| pair == ["--package", XENSTORE_PACKAGE]), "{args:?}");
        let envs: Vec<_> = command
            .get_envs()
            .map(|(key, value)| {
                (
                    key.to_string_lossy().into_owned(),
                    value.map(|v| v.to_string_lossy().into_owned()),
                )
            })
            .collect();
        let linker =
            ("CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_LINKER".to_owned(), Some(LINKER.to_owned()));
        assert!(envs.contains(&linker), "{envs:?}");
        assert!(!envs.iter().any(|(key, _)| key == "RUSTFLAGS"), "no flags for every target");
    }
}
