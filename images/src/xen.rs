//! Debian's Xen 4.17 on the same QEMU as Xenolith: the oracle of the differential conformance
//! suite (`docs/conformance.md`). Xen boots dom0less, without a dom0: its domUs are described in
//! the DTB's `/chosen` node, as Xen's `docs/misc/arm/device-tree/booting.txt` and
//! `docs/features/dom0less.pandoc` say.
//!
//! The steps ([`XenSystem::command`]):
//! 1. [`fetch`]: `apt-get download` [`XEN_PACKAGE`] (arm64) into the Debian cache
//!    ([`debian::cache_dir`]) and unpack it; its `boot/xen-4.17-arm64` is an arm64 `Image`;
//! 2. QEMU dumps the DTB it would give that machine (`-machine dumpdtb=`);
//! 3. [`add_to_chosen`] puts Xen's command line and one `xen,domain` node per domU, each with its
//!    kernel as a `multiboot,kernel` module at a fixed address, into `/chosen`;
//! 4. QEMU boots Xen with that DTB, each domU's image loaded at its module's address
//!    (`-device loader`).
//!
//! Xen prints each domU's `console_io` lines as `(dN) line` (with `guest_loglvl=all`), as the
//! core does, so [`crate::runner::Running`] reads both alike. Domain ids count from 1 in the
//! order of [`XenSystem::domus`].
//!
//! # Invariants
//! - Nothing is written outside the cache and the caller's work directory.
//! - [`add_to_chosen`] either returns a well-formed DTB with everything else unchanged, or an
//!   error; it never writes a half-edited tree.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, ensure, Context, Result};
use xenolith_kernel::platform::fdt_format::{
    FDT_BEGIN_NODE, FDT_END, FDT_END_NODE, FDT_MAGIC, FDT_NOP, FDT_PROP, HEADER_SIZE,
};

use crate::debian;
use crate::qemu::QEMU_AARCH64;

/// Debian's package of Xen 4.17 for arm64 hosts.
pub const XEN_PACKAGE: &str = "xen-hypervisor-4.17-arm64";
/// The hypervisor binary inside the package.
const XEN_BINARY: &str = "boot/xen-4.17-arm64";
/// Where the first domU's kernel module is loaded; the next ones follow at [`MODULE_STRIDE`].
/// Inside QEMU `virt`'s RAM (from 0x4000_0000), clear of Xen itself and of the DTB QEMU places.
const FIRST_MODULE: u64 = 0x4c00_0000;
/// The space each module gets: its largest image.
const MODULE_STRIDE: u64 = 0x100_0000;
/// Xen's console on QEMU `virt`'s PL011, every domU's `console_io` lines printed, and Xen's
/// classic permission model (`xsm=dummy`: Debian builds Xen with XSM SILO as the default, which
/// forbids domUs to talk to each other; Xenolith's policy is the dummy one's).
const XEN_BOOTARGS: &str = "console=dtuart dtuart=/pl011@9000000 guest_loglvl=all xsm=dummy";

/// Makes sure Xen is unpacked in the cache (downloading it as root the first time) and returns
/// the path of its binary.
pub fn fetch() -> Result<PathBuf> {
    let cache = debian::cache_dir()?;
    let debs = cache.join("debs");
    std::fs::create_dir_all(&debs).with_context(|| format!("creating {}", debs.display()))?;
    let deb = match debian::find_deb(&debs, XEN_PACKAGE)? {
        Some(deb) => deb,
        None => {
            debian::ensure_arm64_architecture()?;
            debian::download(&debs, XEN_PACKAGE)?
        }
    };
    let binary = debian::unpack(&cache, &deb)?.join(XEN_BINARY);
    ensure!(binary.is_file(), "{} has no {XEN_BINARY}", deb.display());
    Ok(binary)
}

/// One dom0less domU.
#[derive(Clone, Debug)]
pub struct DomU {
    /// Its node's name under `/chosen` (`domU1`, ...).
    pub name: String,
    /// Its kernel: an arm64 `Image`.
    pub image: PathBuf,
    /// RAM in KiB.
    pub memory_kib: u64,
    /// vCPUs.
    pub vcpus: u32,
    /// Its `/chosen/bootargs`.
    pub bootargs: String,
}

/// Xen with its domUs on QEMU `virt`.
#[derive(Clone, Debug)]
pub struct XenSystem {
    /// The hypervisor binary ([`fetch`]).
    pub xen: PathBuf,
    /// The QEMU CPU model.
    pub cpu: &'static str,
    /// Physical CPUs (`-smp`).
    pub cpus: u32,
    /// Machine RAM in MiB.
    pub memory_mib: u64,
    /// The domUs, d1 first.
    pub domus: Vec<DomU>,
}

impl XenSystem {
    /// The QEMU arguments naming the machine, shared by the DTB dump and the boot, so the DTB
    /// describes the machine that boots.
    fn machine(&self, command: &mut Command) {
        command.args(["-M", "virt,gic-version=3,virtualization=on", "-cpu", self.cpu]);
        command.arg("-smp").arg(self.cpus.to_string());
        command.arg("-m").arg(format!("{}M", self.memory_mib));
        command.args(["-display", "none", "-monitor", "none", "-no-reboot"]);
    }

    /// Steps 2-3 of the module doc: writes `xen.dtb` into `work` and returns the QEMU command
    /// that boots the system (serial on stdout).
    pub fn command(&self, work: &Path) -> Result<Command> {
        std::fs::create_dir_all(work).with_context(|| format!("creating {}", work.display()))?;
        let machine_dtb = work.join("virt.dtb");
        let mut dump = Command::new(QEMU_AARCH64);
        self.machine(&mut dump);
        dump.arg("-machine").arg(format!("dumpdtb={}", machine_dtb.display()));
        let output = dump.output().with_context(|| format!("running {QEMU_AARCH64}"))?;
        ensure!(
            output.status.success(),
            "QEMU could not dump its DTB ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
        let base = std::fs::read(&machine_dtb)
            .with_context(|| format!("reading {}", machine_dtb.display()))?;

        let mut nodes = Vec::new();
        let mut loaders = Vec::new();
        for (index, domu) in self.domus.iter().enumerate() {
            let size = std::fs::metadata(&domu.image)
                .with_context(|| format!("reading {}", domu.image.display()))?
                .len();
            ensure!(
                size <= MODULE_STRIDE,
                "{} is {size} bytes; a domU image here may have at most {MODULE_STRIDE}",
                domu.image.display()
            );
            let address = FIRST_MODULE + index as u64 * MODULE_STRIDE;
            nodes.push(domu.node(address, size));
            loaders.push(format!("loader,file={},addr={address:#x}", domu.image.display()));
        }
        let properties = vec![
            ("xen,xen-bootargs".to_string(), string(XEN_BOOTARGS)),
            ("#address-cells".to_string(), cells(&[2])),
            ("#size-cells".to_string(), cells(&[2])),
        ];
        let dtb = add_to_chosen(&base, &properties, &nodes)?;
        let xen_dtb = work.join("xen.dtb");
        std::fs::write(&xen_dtb, dtb).with_context(|| format!("writing {}", xen_dtb.display()))?;

        let mut command = Command::new(QEMU_AARCH64);
        self.machine(&mut command);
        command.arg("-kernel").arg(&self.xen).arg("-dtb").arg(&xen_dtb);
        for loader in loaders {
            command.arg("-device").arg(loader);
        }
        command.args(["-serial", "stdio"]);
        Ok(command)
    }
}

impl DomU {
    /// Its `xen,domain` node, its kernel module at `address`. `xen,enhanced = "no-xenstore"`
    /// gives it the `hypervisor` DT node (grant table region, event channel interrupt) without a
    /// xenstore.
    fn node(&self, address: u64, size: u64) -> Node {
        let module = Node {
            name: format!("module@{address:x}"),
            properties: vec![
                ("compatible".into(), strings(&["multiboot,kernel", "multiboot,module"])),
                (
                    "reg".into(),
                    cells(&split(address).into_iter().chain(split(size)).collect::<Vec<_>>()),
                ),
                ("bootargs".into(), string(&self.bootargs)),
            ],
            children: Vec::new(),
        };
        Node {
            name: self.name.clone(),
            properties: vec![
                ("compatible".into(), string("xen,domain")),
                ("#address-cells".into(), cells(&[2])),
                ("#size-cells".into(), cells(&[2])),
                ("memory".into(), cells(&split(self.memory_kib))),
                ("cpus".into(), cells(&[self.vcpus])),
                ("xen,enhanced".into(), string("no-xenstore")),
            ],
            children: vec![module],
        }
    }
}

/// A DTB node to add.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    /// Its name (with the unit address, if any).
    pub name: String,
    /// Its properties, in order.
    pub properties: Vec<(String, Vec<u8>)>,
    /// Its subnodes, in order.
    pub children: Vec<Node>,
}

/// A DTB string property's value.
pub fn string(value: &str) -> Vec<u8> {
    let mut bytes = value.as_bytes().to_vec();
    bytes.push(0);
    bytes
}

/// A DTB string-list property's value.
pub fn strings(values: &[&str]) -> Vec<u8> {
    values.iter().flat_map(|value| string(value)).collect()
}

/// A DTB cells property's value (big-endian 32-bit cells).
pub fn cells(values: &[u32]) -> Vec<u8> {
    values.iter().flat_map(|value| value.to_be_bytes()).collect()
}

/// A 64-bit number as two cells, high first.
fn split(value: u64) -> [u32; 2] {
    [(value >> 32) as u32, value as u32]
}

fn be32(bytes: &[u8], offset: usize) -> Result<u32> {
    let slice = bytes.get(offset..offset + 4).context("the DTB is truncated")?;
    Ok(u32::from_be_bytes(slice.try_into()?))
}

/// `dtb` with `properties` and then `nodes` added at the end of its `/chosen` node (which must
/// exist and have no subnodes, since properties must precede subnodes). Property names are added
/// to the strings block; everything else is copied unchanged.
pub fn add_to_chosen(
    dtb: &[u8],
    properties: &[(String, Vec<u8>)],
    nodes: &[Node],
) -> Result<Vec<u8>> {
    ensure!(be32(dtb, 0)? == FDT_MAGIC, "not a DTB (no magic)");
    let total = be32(dtb, 4)? as usize;
    let struct_offset = be32(dtb, 8)? as usize;
    let strings_offset = be32(dtb, 12)? as usize;
    let rsvmap_offset = be32(dtb, 16)? as usize;
    let version = be32(dtb, 20)?;
    let strings_size = be32(dtb, 32)? as usize;
    let struct_size = be32(dtb, 36)? as usize;
    ensure!(version >= 17, "DTB version {version}; 17 is needed");
    ensure!(total <= dtb.len(), "the DTB says {total} bytes but has {}", dtb.len());
    let structure = dtb
        .get(struct_offset..struct_offset + struct_size)
        .context("the structure block is outside the DTB")?;
    let strings_block = dtb
        .get(strings_offset..strings_offset + strings_size)
        .context("the strings block is outside the DTB")?;
    ensure!(rsvmap_offset >= HEADER_SIZE && rsvmap_offset <= struct_offset, "odd DTB layout");
    let rsvmap = &dtb[rsvmap_offset..struct_offset];

    let insert_at = chosen_end(structure)?;
    let mut strings_out = strings_block.to_vec();
    let mut added = Vec::new();
    for (name, value) in properties {
        property(&mut added, &mut strings_out, name, value);
    }
    for node in nodes {
        emit(&mut added, &mut strings_out, node);
    }
    let mut structure_out = structure[..insert_at].to_vec();
    structure_out.extend_from_slice(&added);
    structure_out.extend_from_slice(&structure[insert_at..]);

    let struct_offset_out = HEADER_SIZE + rsvmap.len();
    let strings_offset_out = struct_offset_out + structure_out.len();
    let total_out = strings_offset_out + strings_out.len();
    let mut out = Vec::with_capacity(total_out);
    for field in [
        FDT_MAGIC,
        total_out as u32,
        struct_offset_out as u32,
        strings_offset_out as u32,
        HEADER_SIZE as u32,
        version,
        be32(dtb, 24)?, // last_comp_version
        be32(dtb, 28)?, // boot_cpuid_phys
        strings_out.len() as u32,
        structure_out.len() as u32,
    ] {
        out.extend_from_slice(&field.to_be_bytes());
    }
    out.extend_from_slice(rsvmap);
    out.extend_from_slice(&structure_out);
    out.extend_from_slice(&strings_out);
    Ok(out)
}

/// The offset in the structure block of `/chosen`'s `FDT_END_NODE`.
fn chosen_end(structure: &[u8]) -> Result<usize> {
    let mut offset = 0;
    let mut depth = 0usize;
    let mut in_chosen = false;
    loop {
        let token = be32(structure, offset)?;
        offset += 4;
        match token {
            FDT_BEGIN_NODE => {
                let name_end = structure[offset..]
                    .iter()
                    .position(|&byte| byte == 0)
                    .context("a node name runs off the DTB")?;
                let name = &structure[offset..offset + name_end];
                if in_chosen {
                    bail!("/chosen already has subnodes; cannot add properties after them");
                }
                depth += 1;
                in_chosen = depth == 2 && name == b"chosen";
                offset = (offset + name_end + 1 + 3) & !3;
            }
            FDT_END_NODE => {
                if in_chosen {
                    return Ok(offset - 4);
                }
                depth = depth.checked_sub(1).context("unbalanced DTB nodes")?;
            }
            FDT_PROP => {
                let length = be32(structure, offset)? as usize;
                offset = (offset + 8 + length + 3) & !3;
            }
            FDT_NOP => {}
            FDT_END => bail!("the DTB has no /chosen node"),
            other => bail!("unknown DTB token {other:#x}"),
        }
    }
}

/// Appends `node` (properties, then subnodes) to `structure`.
fn emit(structure: &mut Vec<u8>, strings: &mut Vec<u8>, node: &Node) {
    structure.extend_from_slice(&FDT_BEGIN_NODE.to_be_bytes());
    structure.extend_from_slice(node.name.as_bytes());
    structure.push(0);
    pad(structure);
    for (name, value) in &node.properties {
        property(structure, strings, name, value);
    }
    for child in &node.children {
        emit(structure, strings, child);
    }
    structure.extend_from_slice(&FDT_END_NODE.to_be_bytes());
}

/// Appends one property, its name added to `strings` unless already there.
fn property(structure: &mut Vec<u8>, strings: &mut Vec<u8>, name: &str, value: &[u8]) {
    let name_offset = find_string(strings, name).unwrap_or_else(|| {
        let offset = strings.len();
        strings.extend_from_slice(name.as_bytes());
        strings.push(0);
        offset
    });
    structure.extend_from_slice(&FDT_PROP.to_be_bytes());
    structure.extend_from_slice(&(value.len() as u32).to_be_bytes());
    structure.extend_from_slice(&(name_offset as u32).to_be_bytes());
    structure.extend_from_slice(value);
    pad(structure);
}

/// The offset of `name` as a whole string in the strings block.
fn find_string(strings: &[u8], name: &str) -> Option<usize> {
    let mut offset = 0;
    for entry in strings.split(|&byte| byte == 0) {
        if entry == name.as_bytes() {
            return Some(offset);
        }
        offset += entry.len() + 1;
    }
    None
}

fn pad(bytes: &mut Vec<u8>) {
    while !bytes.len().is_multiple_of(4) {
        bytes.push(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A DTB: `/` with `a = <1>` and `chosen { b = "x"; }`, and a `/memory` after it.
    fn sample() -> Vec<u8> {
        let root = Node {
            name: String::new(),
            properties: vec![("a".into(), cells(&[1]))],
            children: vec![
                Node {
                    name: "chosen".into(),
                    properties: vec![("b".into(), string("x"))],
                    children: vec![],
                },
                Node {
                    name: "memory@40000000".into(),
                    properties: vec![("a".into(), cells(&[2]))],
                    children: vec![],
                },
            ],
        };
        let mut structure = Vec::new();
        let mut strings = Vec::new();
        emit(&mut structure, &mut strings, &root);
        structure.extend_from_slice(&FDT_END.to_be_bytes());
        let rsvmap = [0u8; 16];
        let mut out = Vec::new();
        let struct_offset = HEADER_SIZE + rsvmap.len();
        let strings_offset = struct_offset + structure.len();
        for field in [
            FDT_MAGIC,
            (strings_offset + strings.len()) as u32,
            struct_offset as u32,
            strings_offset as u32,
            HEADER_SIZE as u32,
            17,
            16,
            0,
            strings.len() as u32,
            structure.len() as u32,
        ] {
            out.extend_from_slice(&field.to_be_bytes());
        }
        out.extend_from_slice(&rsvmap);
        out.extend_from_slice(&structure);
        out.extend_from_slice(&strings);
        out
    }

    /// Every (path, property, value) in a DTB, walked independently of [`add_to_chosen`].
    fn flatten(dtb: &[u8]) -> Vec<(String, String, Vec<u8>)> {
        let structure = &dtb[be32(dtb, 8).unwrap() as usize..];
        let strings = &dtb[be32(dtb, 12).unwrap() as usize..];
        let mut path: Vec<String> = Vec::new();
        let mut found = Vec::new();
        let mut offset = 0;
        loop {
            let token = be32(structure, offset).unwrap();
            offset += 4;
            match token {
                FDT_BEGIN_NODE => {
                    let end = structure[offset..].iter().position(|&b| b == 0).unwrap();
                    path.push(String::from_utf8(structure[offset..offset + end].to_vec()).unwrap());
                    offset = (offset + end + 1 + 3) & !3;
                }
                FDT_END_NODE => {
                    path.pop();
                }
                FDT_PROP => {
                    let length = be32(structure, offset).unwrap() as usize;
                    let name_offset = be32(structure, offset + 4).unwrap() as usize;
                    let end = strings[name_offset..].iter().position(|&b| b == 0).unwrap();
                    let name = String::from_utf8(strings[name_offset..name_offset + end].to_vec());
                    let value = structure[offset + 8..offset + 8 + length].to_vec();
                    found.push((path.join("/"), name.unwrap(), value));
                    offset = (offset + 8 + length + 3) & !3;
                }
                FDT_END => return found,
                _ => panic!("bad token"),
            }
        }
    }

    #[test]
    fn nodes_land_at_the_end_of_chosen_and_nothing_else_moves() {
        let before = sample();
        let domu = DomU {
            name: "domU1".into(),
            image: PathBuf::from("guest.img"),
            memory_kib: 65536,
            vcpus: 2,
            bootargs: "xc.role=prober".into(),
        };
        let properties = vec![("xen,xen-bootargs".to_string(), string("console=dtuart"))];
        let after = add_to_chosen(&before, &properties, &[domu.node(0x4c00_0000, 0x1234)]).unwrap();
        let mut expected = flatten(&before);
        let at = expected.iter().position(|(path, ..)| path == "/memory@40000000").unwrap();
        let added = vec![
            ("/chosen".into(), "xen,xen-bootargs".into(), string("console=dtuart")),
            ("/chosen/domU1".into(), "compatible".into(), string("xen,domain")),
            ("/chosen/domU1".into(), "#address-cells".into(), cells(&[2])),
            ("/chosen/domU1".into(), "#size-cells".into(), cells(&[2])),
            ("/chosen/domU1".into(), "memory".into(), cells(&[0, 65536])),
            ("/chosen/domU1".into(), "cpus".into(), cells(&[2])),
            ("/chosen/domU1".into(), "xen,enhanced".into(), string("no-xenstore")),
            (
                "/chosen/domU1/module@4c000000".into(),
                "compatible".into(),
                strings(&["multiboot,kernel", "multiboot,module"]),
            ),
            (
                "/chosen/domU1/module@4c000000".into(),
                "reg".into(),
                cells(&[0, 0x4c00_0000, 0, 0x1234]),
            ),
            ("/chosen/domU1/module@4c000000".into(), "bootargs".into(), string("xc.role=prober")),
        ];
        expected.splice(at..at, added);
        assert_eq!(flatten(&after), expected);
        assert_eq!(be32(&after, 4).unwrap() as usize, after.len());
    }

    #[test]
    fn a_dtb_without_chosen_or_with_a_bad_magic_is_refused() {
        let mut bad = sample();
        bad[0] = 0;
        assert!(add_to_chosen(&bad, &[], &[]).is_err());
        let without = {
            let mut dtb = sample();
            // Rename `chosen` to `chosex`.
            let at = dtb.windows(6).position(|window| window == b"chosen").unwrap();
            dtb[at + 5] = b'x';
            dtb
        };
        let error = add_to_chosen(&without, &[], &[]).unwrap_err();
        assert!(error.to_string().contains("no /chosen"), "{error}");
    }
}
