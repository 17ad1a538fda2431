//! The virtual GICv3 a domain sees: its distributor and one redistributor per vCPU, as register
//! models (Arm IHI 0069). The CPU interface is the hardware's virtual interface (ICH_* list
//! registers); the core moves pending interrupts between this model and the list registers.
//!
//! Pure state and register semantics, host-tested; the trap decoding and list registers are in
//! `arch/aarch64`.
//!
//! # Invariants
//! - Register accesses outside the modelled registers read as zero and ignore writes (RAZ/WI),
//!   as the architecture allows for reserved offsets; a guest can never make the model panic.
//! - An interrupt is delivered (taken by [`VgicCpu::next_deliverable`]) only if it is enabled and
//!   pending, and only once until it is pending again.

use core::ops::Range;

/// SPIs the virtual distributor implements (INTIDs 32..32 + VGIC_SPIS): enough for the
/// passed-through SPIs `xenolith_abi::bundle::PASSTHROUGH_INTIDS` allows (QEMU virt's
/// virtio-mmio transports end at INTID 79).
pub const VGIC_SPIS: usize = 64;
const _: () = assert!(xenolith_abi::bundle::PASSTHROUGH_INTIDS.end as usize <= 32 + VGIC_SPIS);

const GICD_CTLR: u64 = 0x0000;
const GICD_TYPER: u64 = 0x0004;
const GICD_IIDR: u64 = 0x0008;
const GICD_IGROUPR: u64 = 0x0080;
const GICD_ISENABLER: u64 = 0x0100;
const GICD_ICENABLER: u64 = 0x0180;
const GICD_ISPENDR: u64 = 0x0200;
const GICD_ICPENDR: u64 = 0x0280;
const GICD_IPRIORITYR: u64 = 0x0400;
const GICD_ICFGR: u64 = 0x0C00;
const GICD_IROUTER: u64 = 0x6000;
const GICD_PIDR2: u64 = 0xFFE8;
/// The SPIs' bytes of GICD_IPRIORITYR, words of GICD_ICFGR and registers of GICD_IROUTER (the
/// SGIs' and PPIs' are the redistributors', RAZ/WI here).
const SPI_PRIORITIES: Range<u64> = GICD_IPRIORITYR + 32..GICD_IPRIORITYR + 32 + VGIC_SPIS as u64;
const SPI_CONFIGS: Range<u64> = GICD_ICFGR + 8..GICD_ICFGR + 8 + 4 * (VGIC_SPIS as u64 / 16);
const SPI_ROUTES: Range<u64> = GICD_IROUTER + 0x100..GICD_IROUTER + 0x100 + 8 * VGIC_SPIS as u64;

const GICR_CTLR: u64 = 0x0000;
const GICR_IIDR: u64 = 0x0004;
const GICR_TYPER: u64 = 0x0008;
const GICR_WAKER: u64 = 0x0014;
const GICR_PIDR2: u64 = 0xFFE8;
const SGI_BASE: u64 = 0x1_0000;

/// PIDR2.ArchRev = 3 (GICv3).
const PIDR2_GICV3: u64 = 0x3 << 4;
/// Implementer code the model reports (GICD_IIDR / GICR_IIDR): Arm's JEP106 code 0x43B.
const IIDR: u64 = 0x43B;

/// A vCPU's private interrupts (SGIs 0-15, PPIs 16-31) and redistributor state.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VgicCpu {
    enabled: u32,
    pending: u32,
    group: u32,
    priority: [u8; 32],
    config: [u32; 2],
    sleeping: bool,
    /// SPIs routed to this vCPU that are pending delivery (bit n = INTID 32 + n).
    spi_pending: u64,
}

/// The virtual distributor of a domain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VgicDist {
    control: u32,
    enabled: u64,
    pending: u64,
    group: u64,
    priority: [u8; VGIC_SPIS],
    config: [u32; VGIC_SPIS / 16],
    route: [u64; VGIC_SPIS],
}

impl Default for VgicDist {
    fn default() -> Self {
        let (control, enabled, pending, group, config) = (0, 0, 0, 0, [0; VGIC_SPIS / 16]);
        let (priority, route) = ([0; VGIC_SPIS], [0; VGIC_SPIS]);
        Self { control, enabled, pending, group, priority, config, route }
    }
}

impl VgicCpu {
    /// A redistributor as reset leaves it: everything disabled, processor asleep.
    pub fn new() -> Self {
        Self { sleeping: true, ..Self::default() }
    }

    /// Marks SGI/PPI `intid` (0..32) pending.
    pub fn set_pending(&mut self, intid: u32) {
        if intid < 32 {
            self.pending |= 1 << intid;
        }
    }

    /// Whether SGI/PPI `intid` is pending, enabled or not.
    pub fn is_pending(&self, intid: u32) -> bool {
        intid < 32 && self.pending & (1 << intid) != 0
    }

    /// Whether anything is pending and enabled (the vCPU has a reason to wake up).
    pub fn has_deliverable(&self, distributor: &VgicDist) -> bool {
        self.pending & self.enabled != 0
            || (self.spi_pending & distributor.enabled != 0 && distributor.control & 2 != 0)
    }

    /// Takes the next pending and enabled interrupt for delivery: `(intid, priority)`.
    pub fn next_deliverable(&mut self, distributor: &VgicDist) -> Option<(u32, u8)> {
        let private = self.pending & self.enabled;
        if private != 0 {
            let intid = private.trailing_zeros();
            self.pending &= !(1 << intid);
            return Some((intid, self.priority[intid as usize]));
        }
        if distributor.control & 2 == 0 {
            return None;
        }
        let shared = self.spi_pending & distributor.enabled;
        if shared != 0 {
            let index = shared.trailing_zeros();
            self.spi_pending &= !(1 << index);
            return Some((32 + index, distributor.priority[index as usize]));
        }
        None
    }

    /// A read of the redistributor of vCPU `index` (affinity `mpidr`, `last`: the highest vCPU).
    pub fn read(&self, offset: u64, mpidr: u64, index: u32, last: bool) -> u64 {
        match offset {
            GICR_CTLR => 0,
            GICR_IIDR => IIDR,
            GICR_TYPER => {
                let affinity = ((mpidr >> 32) & 0xff) << 24 | (mpidr & 0xff_ffff);
                (affinity << 32) | (u64::from(index) << 8) | if last { 1 << 4 } else { 0 }
            }
            GICR_WAKER => {
                if self.sleeping {
                    0b110
                } else {
                    0
                }
            }
            GICR_PIDR2 => PIDR2_GICV3,
            _ => self.read_sgi_frame(offset.wrapping_sub(SGI_BASE)),
        }
    }

    fn read_sgi_frame(&self, offset: u64) -> u64 {
        match offset {
            0x0080 => u64::from(self.group),
            0x0100 | 0x0180 => u64::from(self.enabled),
            0x0200 | 0x0280 => u64::from(self.pending),
            0x0400..=0x041F => read_bytes(&self.priority, (offset - 0x400) as usize),
            0x0C00 => u64::from(self.config[0]),
            0x0C04 => u64::from(self.config[1]),
            _ => 0,
        }
    }

    /// A write to the redistributor (32-bit registers; other widths are treated alike).
    pub fn write(&mut self, offset: u64, value: u64) {
        let value32 = value as u32;
        match offset {
            GICR_WAKER => self.sleeping = value32 & 0b10 != 0,
            _ if offset >= SGI_BASE => match offset - SGI_BASE {
                0x0080 => self.group = value32,
                0x0100 => self.enabled |= value32,
                0x0180 => self.enabled &= !value32,
                0x0200 => self.pending |= value32,
                0x0280 => self.pending &= !value32,
                register @ 0x0400..=0x041F => {
                    write_bytes(&mut self.priority, (register - 0x400) as usize, value);
                }
                // SGIs are always edge-triggered: ICFGR0 is read-only.
                0x0C04 => self.config[1] = value32,
                _ => {}
            },
            _ => {}
        }
    }
}

impl VgicDist {
    /// Marks SPI `intid` pending (its passed-through line fired) and returns the index of the
    /// vCPU it is routed to; `None` for an INTID that is no SPI of this distributor.
    pub fn set_pending(&mut self, intid: u32) -> Option<u32> {
        let spi = intid.checked_sub(32).filter(|&spi| (spi as usize) < VGIC_SPIS)?;
        self.pending |= 1 << spi;
        Some((self.route[spi as usize] & 0xf) as u32)
    }

    /// Whether any SPI waits to be collected by a vCPU.
    pub fn has_pending(&self) -> bool {
        self.pending != 0
    }

    /// Moves pending SPIs routed to vCPU `index` into its state (called before delivery).
    pub fn collect_spis(&mut self, index: u32, cpu: &mut VgicCpu) {
        let mut pending = self.pending;
        while pending != 0 {
            let spi = pending.trailing_zeros() as usize;
            pending &= pending - 1;
            if (self.route[spi] & 0xf) as u32 == index {
                self.pending &= !(1 << spi);
                cpu.spi_pending |= 1 << spi;
            }
        }
    }

    /// A read of the distributor.
    pub fn read(&self, offset: u64) -> u64 {
        if let Some((array, shift)) = spi_array(offset) {
            let bits = match array {
                GICD_IGROUPR => self.group,
                GICD_ISENABLER | GICD_ICENABLER => self.enabled,
                _ => self.pending,
            };
            return (bits >> shift) & 0xffff_ffff;
        }
        match offset {
            // ARE_NS (bit 4) is always set: affinity routing only. DS (bit 6): one security state.
            GICD_CTLR => u64::from(self.control) | (1 << 4) | (1 << 6),
            // ITLinesNumber = SPIs/32, IDbits = 9 (10 bits of INTID), no LPIs, no MBIS.
            GICD_TYPER => (VGIC_SPIS as u64 / 32) | (9 << 19),
            GICD_IIDR => IIDR,
            GICD_PIDR2 => PIDR2_GICV3,
            o if SPI_PRIORITIES.contains(&o) => {
                read_bytes(&self.priority, (o - SPI_PRIORITIES.start) as usize)
            }
            o if SPI_CONFIGS.contains(&o) => {
                u64::from(self.config[((o - SPI_CONFIGS.start) / 4) as usize])
            }
            o if SPI_ROUTES.contains(&o) => self.route[((o - SPI_ROUTES.start) / 8) as usize],
            _ => 0,
        }
    }

    /// A write to the distributor.
    pub fn write(&mut self, offset: u64, value: u64) {
        let value32 = value as u32;
        if let Some((array, shift)) = spi_array(offset) {
            let bits = u64::from(value32) << shift;
            match array {
                GICD_IGROUPR => self.group = self.group & !(0xffff_ffff << shift) | bits,
                GICD_ISENABLER => self.enabled |= bits,
                GICD_ICENABLER => self.enabled &= !bits,
                GICD_ISPENDR => self.pending |= bits,
                _ => self.pending &= !bits,
            }
            return;
        }
        match offset {
            // EnableGrp1NS (bit 1) and EnableGrp0 (bit 0) are the guest's; ARE stays on.
            GICD_CTLR => self.control = value32 & 0b11,
            o if SPI_PRIORITIES.contains(&o) => {
                write_bytes(&mut self.priority, (o - SPI_PRIORITIES.start) as usize, value);
            }
            o if SPI_CONFIGS.contains(&o) => {
                self.config[((o - SPI_CONFIGS.start) / 4) as usize] = value32;
            }
            // Aff0 only (vCPU index); IRM (bit 31, "any") is not offered: RAZ.
            o if SPI_ROUTES.contains(&o) => {
                self.route[((o - SPI_ROUTES.start) / 8) as usize] = value & 0xff;
            }
            _ => {}
        }
    }
}

/// The SPIs' bitmap registers: which array `offset` is in (its base) and the shift of the SPIs
/// its 32 bits hold (register 1 of each array: INTIDs 32-63, register 2: 64-95). `None` for any
/// other offset; register 0 of each array is the redistributors' (RAZ/WI here).
fn spi_array(offset: u64) -> Option<(u64, u64)> {
    let arrays = [GICD_IGROUPR, GICD_ISENABLER, GICD_ICENABLER, GICD_ISPENDR, GICD_ICPENDR];
    arrays.into_iter().find_map(|base| {
        let word = offset.checked_sub(base + 4)? / 4;
        (word < VGIC_SPIS as u64 / 32 && offset.is_multiple_of(4)).then(|| (base, 32 * word))
    })
}

/// The (up to) four bytes of `bytes` from `start`, little-endian, as a byte-array register
/// (IPRIORITYR) reads; bytes past the end read as zero.
fn read_bytes(bytes: &[u8], start: usize) -> u64 {
    let bytes = bytes.iter().skip(start).take(4).enumerate();
    bytes.fold(0, |value, (index, &byte)| value | u64::from(byte) << (8 * index))
}

/// Writes the (up to) four bytes of `bytes` from `start` with `value`, little-endian; bytes
/// past the end are ignored.
fn write_bytes(bytes: &mut [u8], start: usize, value: u64) {
    for (index, byte) in bytes.iter_mut().skip(start).take(4).enumerate() {
        *byte = (value >> (8 * index)) as u8;
    }
}

/// Decodes a guest's ICC_SGI1R_EL1 write: the SGI INTID and the target vCPU indices as a bitmask
/// (`all_but_self`: IRM set, every vCPU but the sender). Targets are in Aff1/Aff0 form; Xen's
/// vCPU affinity puts vCPU n at Aff1 = n / 16, Aff0 = n % 16.
pub fn decode_sgi1r(value: u64) -> (u32, u64, bool) {
    let intid = ((value >> 24) & 0xf) as u32;
    let all_but_self = value & (1 << 40) != 0;
    let target_list = value & 0xffff;
    let aff1 = (value >> 16) & 0xff;
    let range = (value >> 44) & 0xf;
    let mut targets = 0u64;
    if range == 0 && aff1 < 4 {
        for bit in 0..16 {
            if target_list & (1 << bit) != 0 {
                targets |= 1 << (aff1 * 16 + bit);
            }
        }
    }
    (intid, targets, all_but_self)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redistributor_identity_and_wake() {
        let mut cpu = VgicCpu::new();
        assert_eq!(cpu.read(GICR_TYPER, 0x1, 1, true), (1 << 32) | (1 << 8) | (1 << 4));
        assert_eq!(cpu.read(GICR_PIDR2, 0, 0, false), 0x30);
        assert_eq!(cpu.read(GICR_WAKER, 0, 0, false), 0b110);
        cpu.write(GICR_WAKER, 0);
        assert_eq!(cpu.read(GICR_WAKER, 0, 0, false), 0);
    }

    #[test]
    fn ppi_delivery_needs_enable_and_pending_once() {
        let distributor = VgicDist::default();
        let mut cpu = VgicCpu::new();
        cpu.set_pending(27);
        assert_eq!(cpu.next_deliverable(&distributor), None, "not enabled");
        cpu.write(SGI_BASE + 0x100, 1 << 27);
        cpu.write(SGI_BASE + 0x41B - 3, 0xA0 << 24);
        assert!(cpu.has_deliverable(&distributor));
        assert_eq!(cpu.next_deliverable(&distributor), Some((27, 0xA0)));
        assert_eq!(cpu.next_deliverable(&distributor), None, "delivered once");
        cpu.set_pending(27);
        assert_eq!(cpu.next_deliverable(&distributor), Some((27, 0xA0)), "pending again");
        cpu.write(SGI_BASE + 0x180, 1 << 27);
        assert_eq!(cpu.read(SGI_BASE + 0x100, 0, 0, false), 0);
    }

    #[test]
    fn spis_follow_enable_route_and_distributor_enable() {
        let mut distributor = VgicDist::default();
        let mut cpu = VgicCpu::new();
        distributor.write(GICD_ISENABLER + 4, 1 << 3);
        distributor.write(GICD_IROUTER + 0x100 + 8 * 3, 0);
        distributor.write(GICD_ISPENDR + 4, 1 << 3);
        distributor.collect_spis(0, &mut cpu);
        assert_eq!(cpu.next_deliverable(&distributor), None, "distributor disabled");
        distributor.write(GICD_CTLR, 2);
        assert_eq!(cpu.next_deliverable(&distributor), Some((35, 0)));
        assert_eq!(distributor.read(GICD_CTLR), 2 | (1 << 4) | (1 << 6));
        // INTID 79 is bit 15 of the second SPI word: its own register of each array.
        distributor.write(GICD_ISENABLER + 8, 1 << 15);
        distributor.write(GICD_IROUTER + 8 * 79, 0);
        distributor.write(GICD_ISPENDR + 8, 1 << 15);
        assert_eq!(distributor.read(GICD_ISENABLER + 8), 1 << 15);
        assert_eq!(distributor.read(GICD_ISENABLER + 4), 1 << 3, "the first word is untouched");
        assert_eq!(distributor.read(GICD_ISPENDR + 12), 0, "past the last SPI: RAZ");
        distributor.collect_spis(0, &mut cpu);
        assert_eq!(cpu.next_deliverable(&distributor), Some((79, 0)));
        distributor.write(GICD_ICENABLER + 8, 1 << 15);
        assert_eq!(distributor.read(GICD_ISENABLER + 8), 0);
        assert_eq!(distributor.read(GICD_TYPER) & 0x1f, 2, "ITLinesNumber: INTIDs up to 95");
    }

    #[test]
    fn reserved_offsets_are_raz_wi() {
        let mut distributor = VgicDist::default();
        for offset in [0x10, 0x80, 0x100, 0x6000, 0xF000, u64::MAX - 7] {
            distributor.write(offset, u64::MAX);
            let _ = distributor.read(offset);
        }
        let mut cpu = VgicCpu::new();
        for offset in [0x20, 0x1_0000 + 0xC00, 0x1_0000 + 0x41F, 0x1_F000, u64::MAX] {
            cpu.write(offset, u64::MAX);
            let _ = cpu.read(offset, 0, 0, false);
        }
    }

    #[test]
    fn sgi1r_decoding() {
        // SGI 3 to Aff1 0, targets 1 and 2.
        assert_eq!(decode_sgi1r((3 << 24) | 0b110), (3, 0b110, false));
        // Aff1 = 1: vCPUs 16 and 17.
        assert_eq!(decode_sgi1r((1 << 16) | 0b11), (0, 0b11 << 16, false));
        // IRM: everyone else.
        assert_eq!(decode_sgi1r((5 << 24) | (1 << 40)), (5, 0, true));
    }
}
