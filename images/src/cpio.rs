//! A deterministic writer (and, for its tests and for checking what it wrote, a reader) of the
//! "new ASCII" cpio format, `newc`: what Linux unpacks as an initramfs (Linux
//! `Documentation/driver-api/early-userspace/buffer-format.rst`, `init/initramfs.c`).
//!
//! Each entry is a 110-byte header of ASCII hex fields, the path with its NUL, padding to a
//! multiple of 4 bytes, the data, padding to 4 again; the archive ends with an entry named
//! `TRAILER!!!`:
//!
//! ```text
//! "070701" ino mode uid gid nlink mtime filesize devmajor devminor rdevmajor rdevminor namesize check
//!          (thirteen fields of eight hex digits each; namesize counts the NUL; check is 0 for newc)
//! ```
//!
//! Written here rather than with a crate: the format is this page, and what an initramfs needs
//! from a writer is what crates leave to the caller: the same bytes on every build (no time
//! stamps, owners or inode numbers from the build machine), and device nodes (`/dev/console`)
//! without root or `mknod`. The `cpio` crate would write the entries; it would not choose those
//! fields or check the paths.
//!
//! # Invariants
//! - [`write`] output depends on the entries alone: inode `n` for the `n`-th entry (from 1),
//!   owner root (0:0), mtime 0, one link, `check` 0.
//! - Every path [`write`] accepts is relative, non-empty, has no NUL, no empty, `.` or `..`
//!   component, appears once, and its parent directory is an earlier [`Entry::Directory`] (the
//!   kernel's unpacker creates no directories of its own).
//! - [`parse`] reads back exactly the entries [`write`] was given.

use std::collections::HashSet;

/// The magic of a `newc` header (no checksum).
pub const NEWC_MAGIC: &[u8; 6] = b"070701";
/// The name of the last entry.
pub const TRAILER: &str = "TRAILER!!!";
/// Bytes in a header: the magic and thirteen 8-digit fields.
const HEADER_SIZE: usize = 6 + 13 * 8;

/// File-type bits of `mode` (`S_IFDIR`, `S_IFREG`, `S_IFLNK`, `S_IFCHR` of `<sys/stat.h>`).
const S_IFMT: u32 = 0o170_000;
const S_IFDIR: u32 = 0o040_000;
const S_IFREG: u32 = 0o100_000;
const S_IFLNK: u32 = 0o120_000;
const S_IFCHR: u32 = 0o020_000;

/// One member of an archive. Paths are relative to the archive's root (`bin/busybox`); `mode`
/// holds the permission bits only (0o7777), the type comes from the variant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Entry {
    /// A directory.
    Directory { path: String, mode: u32 },
    /// A regular file and its bytes.
    File { path: String, mode: u32, data: Vec<u8> },
    /// A symbolic link to `target` (stored as the link's data, as cpio does).
    Symlink { path: String, target: String },
    /// A character device node.
    CharDevice { path: String, mode: u32, major: u32, minor: u32 },
}

impl Entry {
    /// Its path.
    pub fn path(&self) -> &str {
        match self {
            Entry::Directory { path, .. }
            | Entry::File { path, .. }
            | Entry::Symlink { path, .. }
            | Entry::CharDevice { path, .. } => path,
        }
    }
}

/// Why an archive was not written or not read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CpioError {
    /// A path breaks the rules in the module's invariants.
    #[error("cpio entry `{path}`: {problem}")]
    BadPath { path: String, problem: &'static str },
    /// A field does not fit its eight hex digits (a file of 4 GiB or more).
    #[error("cpio entry `{path}`: its {field} does not fit the format's 32 bits")]
    TooLarge { path: String, field: &'static str },
    /// The bytes are not a `newc` archive this module can read.
    #[error("not a newc cpio archive at byte {offset}: {problem}")]
    Malformed { offset: usize, problem: &'static str },
}

/// The archive of `entries`, in their order, with its trailer.
pub fn write(entries: &[Entry]) -> Result<Vec<u8>, CpioError> {
    let mut seen: HashSet<&str> = HashSet::new();
    let mut directories: HashSet<&str> = HashSet::new();
    let mut out = Vec::new();
    for (index, entry) in entries.iter().enumerate() {
        let path = entry.path();
        check_path(path)?;
        let bad = |problem| CpioError::BadPath { path: path.to_owned(), problem };
        if !seen.insert(path) {
            return Err(bad("listed twice"));
        }
        if let Some((parent, _)) = path.rsplit_once('/') {
            if !directories.contains(parent) {
                return Err(bad("its parent directory is not an earlier entry"));
            }
        }
        let (mode, data, rdev) = match entry {
            Entry::Directory { mode, .. } => {
                directories.insert(path);
                (S_IFDIR | mode, &[][..], (0, 0))
            }
            Entry::File { mode, data, .. } => (S_IFREG | mode, data.as_slice(), (0, 0)),
            Entry::Symlink { target, .. } => {
                if target.is_empty() || target.contains('\0') {
                    return Err(bad("its link target is empty or has a NUL"));
                }
                (S_IFLNK | 0o777, target.as_bytes(), (0, 0))
            }
            Entry::CharDevice { mode, major, minor, .. } => {
                (S_IFCHR | mode, &[][..], (*major, *minor))
            }
        };
        let mode_bits = match entry {
            Entry::Directory { mode, .. }
            | Entry::File { mode, .. }
            | Entry::CharDevice { mode, .. } => *mode,
            Entry::Symlink { .. } => 0o777,
        };
        if mode_bits & !0o7777 != 0 {
            return Err(bad("its mode has bits beyond the permissions (0o7777)"));
        }
        let inode = u32::try_from(index + 1)
            .map_err(|_| CpioError::TooLarge { path: path.to_owned(), field: "inode" })?;
        let size = u32::try_from(data.len())
            .map_err(|_| CpioError::TooLarge { path: path.to_owned(), field: "size" })?;
        push_entry(&mut out, inode, mode, size, rdev, path, data);
    }
    push_entry(&mut out, 0, 0, 0, (0, 0), TRAILER, &[]);
    Ok(out)
}

/// Checks one path against the module's rules (all but uniqueness and parents).
fn check_path(path: &str) -> Result<(), CpioError> {
    let bad = |problem| Err(CpioError::BadPath { path: path.to_owned(), problem });
    if path.is_empty() {
        return bad("the path is empty");
    }
    if path.starts_with('/') {
        return bad("the path is absolute; write it relative to the archive's root");
    }
    if path.contains('\0') {
        return bad("the path contains a NUL");
    }
    if path == TRAILER {
        return bad("the path is the trailer's name");
    }
    if path.split('/').any(|part| part.is_empty() || part == "." || part == "..") {
        return bad("the path has an empty, `.` or `..` component");
    }
    Ok(())
}

/// Appends one header, name and data, each padded to 4 bytes.
fn push_entry(
    out: &mut Vec<u8>,
    inode: u32,
    mode: u32,
    size: u32,
    (rdev_major, rdev_minor): (u32, u32),
    name: &str,
    data: &[u8],
) {
    // One link each (the trailer too, as GNU cpio writes it); namesize counts the NUL; a name is short (a path), so it fits.
    let name_size = name.len() as u32 + 1;
    let fields = [inode, mode, 0, 0, 1, 0, size, 0, 0, rdev_major, rdev_minor, name_size, 0];
    out.extend_from_slice(NEWC_MAGIC);
    for field in fields {
        out.extend_from_slice(format!("{field:08x}").as_bytes());
    }
    out.extend_from_slice(name.as_bytes());
    out.push(0);
    pad4(out);
    out.extend_from_slice(data);
    pad4(out);
}

fn pad4(out: &mut Vec<u8>) {
    out.resize(out.len().next_multiple_of(4), 0);
}

/// Reads back an archive as [`write`] writes it: `newc` entries of the four kinds [`Entry`] has,
/// up to the trailer. Owners, times and inode numbers are not returned.
pub fn parse(bytes: &[u8]) -> Result<Vec<Entry>, CpioError> {
    let mut entries = Vec::new();
    let mut offset = 0;
    loop {
        let malformed = |problem| CpioError::Malformed { offset, problem };
        let header =
            bytes.get(offset..offset + HEADER_SIZE).ok_or(malformed("truncated header"))?;
        if &header[..6] != NEWC_MAGIC {
            return Err(malformed("bad magic (not 070701)"));
        }
        let mut fields = [0u32; 13];
        for (index, field) in fields.iter_mut().enumerate() {
            let digits = &header[6 + index * 8..6 + (index + 1) * 8];
            let text =
                std::str::from_utf8(digits).map_err(|_| malformed("a field is not ASCII"))?;
            *field = u32::from_str_radix(text, 16).map_err(|_| malformed("a field is not hex"))?;
        }
        let [_, mode, _, _, _, _, size, _, _, rdev_major, rdev_minor, name_size, _] = fields;
        let name_start = offset + HEADER_SIZE;
        let name_end = name_start + name_size as usize;
        let name = bytes.get(name_start..name_end).ok_or(malformed("truncated name"))?;
        let name = name.strip_suffix(&[0]).ok_or(malformed("the name does not end with NUL"))?;
        let name = std::str::from_utf8(name).map_err(|_| malformed("the name is not UTF-8"))?;
        let data_start = name_end.next_multiple_of(4);
        let data_end = data_start + size as usize;
        let data = bytes.get(data_start..data_end).ok_or(malformed("truncated data"))?;
        if name == TRAILER {
            return Ok(entries);
        }
        let path = name.to_owned();
        let permissions = mode & 0o7777;
        let entry = match mode & S_IFMT {
            S_IFDIR => Entry::Directory { path, mode: permissions },
            S_IFREG => Entry::File { path, mode: permissions, data: data.to_vec() },
            S_IFLNK => {
                let target = std::str::from_utf8(data).map_err(|_| malformed("link not UTF-8"))?;
                Entry::Symlink { path, target: target.to_owned() }
            }
            S_IFCHR => {
                Entry::CharDevice { path, mode: permissions, major: rdev_major, minor: rdev_minor }
            }
            _ => return Err(malformed("an entry of a type this reader does not know")),
        };
        entries.push(entry);
        offset = data_end.next_multiple_of(4);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<Entry> {
        vec![
            Entry::Directory { path: "bin".into(), mode: 0o755 },
            Entry::File { path: "bin/busybox".into(), mode: 0o755, data: b"\x7fELF12345".to_vec() },
            Entry::Symlink { path: "bin/sh".into(), target: "busybox".into() },
            Entry::Directory { path: "dev".into(), mode: 0o755 },
            Entry::CharDevice { path: "dev/console".into(), mode: 0o600, major: 5, minor: 1 },
            Entry::File { path: "init".into(), mode: 0o755, data: b"#!/bin/sh\n".to_vec() },
            Entry::File { path: "empty".into(), mode: 0o644, data: Vec::new() },
        ]
    }

    #[test]
    fn what_is_written_reads_back() {
        let entries = sample();
        let bytes = write(&entries).unwrap();
        assert_eq!(bytes.len() % 4, 0);
        assert_eq!(parse(&bytes).unwrap(), entries);
        assert_eq!(write(&entries).unwrap(), bytes, "deterministic");
        assert_eq!(parse(&write(&[]).unwrap()).unwrap(), []);
    }

    #[test]
    fn the_header_is_newc() {
        let bytes = write(&sample()[..1]).unwrap();
        // ino 1, mode 040755, uid 0, gid 0, nlink 1, mtime 0, size 0, dev 0:0, rdev 0:0,
        // namesize 4 ("bin" and NUL), check 0; then the name padded to 4 bytes (110 + 4 = 114,
        // padded to 116).
        let header = "070701\
                      00000001000041ed00000000000000000000000100000000000000000000000000000000\
                      00000000000000000000000400000000";
        assert_eq!(&bytes[..110], header.as_bytes());
        assert_eq!(&bytes[110..116], b"bin\0\0\0");
        assert_eq!(&bytes[116..122], b"070701");
        let trailer = &bytes[116..];
        assert_eq!(&trailer[110..121], b"TRAILER!!!\0");
        assert_eq!(trailer.len(), 124, "110 + 11, padded to 4");
    }

    #[test]
    fn bad_paths_are_refused() {
        let file = |path: &str| Entry::File { path: path.into(), mode: 0o644, data: vec![1] };
        let refused = |entries: &[Entry], problem: &str| {
            let error = write(entries).unwrap_err();
            assert!(error.to_string().contains(problem), "{error}");
        };
        refused(&[file("")], "empty");
        refused(&[file("/init")], "absolute");
        refused(&[file("a\0b")], "NUL");
        refused(&[file("x/../init")], "`..`");
        refused(&[file("a//b")], "empty, `.` or `..`");
        refused(&[file("TRAILER!!!")], "trailer");
        refused(&[file("init"), file("init")], "twice");
        refused(&[file("bin/sh")], "parent directory");
        refused(&[file("bin"), file("bin/sh")], "parent directory");
        refused(&[Entry::File { path: "x".into(), mode: 0o100_644, data: vec![] }], "mode");
        refused(&[Entry::Symlink { path: "x".into(), target: String::new() }], "link target");
    }

    #[test]
    fn damaged_archives_are_refused() {
        let bytes = write(&sample()).unwrap();
        assert!(matches!(parse(&bytes[..50]), Err(CpioError::Malformed { offset: 0, .. })));
        let mut bad_magic = bytes.clone();
        bad_magic[5] = b'7';
        assert!(parse(&bad_magic).unwrap_err().to_string().contains("magic"));
        let mut bad_digit = bytes.clone();
        bad_digit[8] = b'g';
        assert!(parse(&bad_digit).unwrap_err().to_string().contains("hex"));
        assert!(parse(&bytes[..bytes.len() - 20]).is_err(), "no trailer");
    }

    /// The system's `cpio -t` (GNU cpio), when installed, lists what was written.
    #[test]
    fn system_cpio_lists_the_archive() {
        use std::io::Write;
        use std::process::{Command, Stdio};
        if Command::new("cpio").arg("--version").output().is_err() {
            eprintln!("note: cpio not installed; skipping the cross-check with cpio -t");
            return;
        }
        let entries = sample();
        let mut child = Command::new("cpio")
            .args(["-t", "--quiet"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(&write(&entries).unwrap()).unwrap();
        let output = child.wait_with_output().unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        let listed: Vec<String> =
            String::from_utf8(output.stdout).unwrap().lines().map(str::to_owned).collect();
        let paths: Vec<&str> = entries.iter().map(Entry::path).collect();
        assert_eq!(listed, paths);
    }
}
