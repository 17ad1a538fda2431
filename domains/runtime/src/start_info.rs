//! What a domain learns at start from the DTB the core gave it: its memory, vCPUs, command line,
//! and whether it runs on a Xen-compatible hypervisor.
//!
//! # Invariants
//! - Parsing never panics: a DTB without what a domain needs is an error the runtime reports
//!   before `main` runs.

use core::fmt;

/// Most RAM banks recorded.
pub const MAX_BANKS: usize = 4;

/// What the DTB says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StartInfo {
    /// RAM banks as (base, size), in the domain's physical (intermediate) address space.
    pub ram: [(u64, u64); MAX_BANKS],
    /// How many entries of `ram` are used.
    pub ram_banks: usize,
    /// vCPUs in the `/cpus` node.
    pub vcpus: u32,
    /// `/chosen/bootargs`, up to 256 bytes.
    bootargs: [u8; 256],
    bootargs_len: usize,
    /// The `/hypervisor` node is compatible with "xen,xen".
    pub xen: bool,
    /// The `hypervisor` node's event-channel interrupt (GIC INTID), if given.
    pub event_channel_intid: Option<u32>,
    /// Where the DTB itself lies.
    pub dtb: (u64, u64),
}

/// Why the DTB could not be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartInfoError {
    /// Not a DTB the parser accepts.
    BadDtb,
    /// No `memory` node with a `reg`.
    NoMemory,
}

impl fmt::Display for StartInfoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadDtb => write!(f, "the DTB the core gave this domain does not parse"),
            Self::NoMemory => write!(f, "the domain's DTB names no memory"),
        }
    }
}

impl StartInfo {
    /// Reads `dtb` (placed at `address`).
    pub fn parse(dtb: &[u8], address: u64) -> Result<Self, StartInfoError> {
        let fdt = fdt::Fdt::new(dtb).map_err(|_| StartInfoError::BadDtb)?;
        let mut info = Self {
            ram: [(0, 0); MAX_BANKS],
            ram_banks: 0,
            vcpus: 0,
            bootargs: [0; 256],
            bootargs_len: 0,
            xen: false,
            event_channel_intid: None,
            dtb: (address, fdt.total_size() as u64),
        };
        for region in fdt.memory().regions() {
            if info.ram_banks < MAX_BANKS {
                let size = region.size.unwrap_or(0) as u64;
                if size > 0 {
                    info.ram[info.ram_banks] = (region.starting_address as u64, size);
                    info.ram_banks += 1;
                }
            }
        }
        if info.ram_banks == 0 {
            return Err(StartInfoError::NoMemory);
        }
        info.vcpus = fdt.cpus().count() as u32;
        if let Some(bootargs) = fdt.chosen().bootargs() {
            let bytes = bootargs.as_bytes();
            let len = bytes.len().min(info.bootargs.len());
            info.bootargs[..len].copy_from_slice(&bytes[..len]);
            info.bootargs_len = len;
        }
        if let Some(node) = fdt.find_node("/hypervisor") {
            info.xen = node.compatible().is_some_and(|list| list.all().any(|c| c == "xen,xen"));
            if let Some(interrupts) = node.property("interrupts") {
                // 3 cells: type (1 = PPI), number, flags.
                let cells = interrupts.value;
                if cells.len() >= 8 {
                    let kind = u32::from_be_bytes([cells[0], cells[1], cells[2], cells[3]]);
                    let number = u32::from_be_bytes([cells[4], cells[5], cells[6], cells[7]]);
                    info.event_channel_intid =
                        Some(if kind == 1 { number + 16 } else { number + 32 });
                }
            }
        }
        Ok(info)
    }

    /// The command line (`/chosen/bootargs`), or "" if it was not UTF-8.
    pub fn bootargs(&self) -> &str {
        core::str::from_utf8(&self.bootargs[..self.bootargs_len]).unwrap_or("")
    }

    /// The value of `name=value` in the command line, if present.
    pub fn bootarg(&self, name: &str) -> Option<&str> {
        self.bootargs().split_ascii_whitespace().find_map(|token| {
            let (key, value) = token.split_once('=')?;
            (key == name).then_some(value)
        })
    }

    /// The first RAM bank.
    pub fn first_bank(&self) -> (u64, u64) {
        self.ram[0]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_qemu_virt_dtb() {
        let dtb = include_bytes!("../../../kernel/tests/data/qemu-virt-gicv3-smp2.dtb");
        let info = StartInfo::parse(dtb, 0x4800_0000).unwrap();
        assert_eq!(info.first_bank(), (0x4000_0000, 0x4000_0000));
        assert_eq!(info.vcpus, 2);
        assert!(!info.xen);
        assert_eq!(info.bootargs(), "");
    }

    #[test]
    fn refuses_garbage() {
        assert_eq!(StartInfo::parse(&[0u8; 64], 0).unwrap_err(), StartInfoError::BadDtb);
    }
}
