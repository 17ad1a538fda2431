//! GICv3 driver for the core's own interrupts: distributor, one redistributor per CPU, and the
//! system-register CPU interface (Arm IHI 0069, GICv3/v4 architecture specification).
//!
//! Every interrupt the core takes is Group 1 non-secure and delivered to EL2 (HCR_EL2.IMO set).
//! Register offsets below are from IHI 0069 chapter 12.
//!
//! # Invariants
//! - The distributor and redistributor frames are device-mapped before [`init_distributor`] and
//!   stay mapped.
//! - Each CPU touches only its own redistributor, found by matching GICR_TYPER affinity to MPIDR.
//! - Affinity routing (ARE) is on; SGIs are sent with ICC_SGI1R_EL1.

use core::ptr;

use super::cpu::{read_sysreg, write_sysreg};
use xenolith_kernel::mm::frame::Region;

const GICD_CTLR: usize = 0x0000;
const GICD_TYPER: usize = 0x0004;
const GICD_IGROUPR: usize = 0x0080;
const GICD_ISENABLER: usize = 0x0100;
const GICD_ICENABLER: usize = 0x0180;
const GICD_ICACTIVER: usize = 0x0380;
const GICD_IROUTER: usize = 0x6000;
const GICD_IPRIORITYR: usize = 0x0400;
const GICD_CTLR_RWP: u32 = 1 << 31;
const GICD_CTLR_ARE: u32 = 1 << 4;
const GICD_CTLR_ENABLE_GROUP1: u32 = 1 << 1;

const GICR_TYPER: usize = 0x0008;
const GICR_WAKER: usize = 0x0014;
const GICR_TYPER_LAST: u64 = 1 << 4;
const GICR_TYPER_VLPIS: u64 = 1 << 1;
const GICR_WAKER_PROCESSOR_SLEEP: u32 = 1 << 1;
const GICR_WAKER_CHILDREN_ASLEEP: u32 = 1 << 2;
const SGI_BASE: usize = 0x1_0000;
const GICR_IGROUPR0: usize = SGI_BASE + 0x0080;
const GICR_ISENABLER0: usize = SGI_BASE + 0x0100;
const GICR_ICENABLER0: usize = SGI_BASE + 0x0180;
const GICR_IPRIORITYR: usize = SGI_BASE + 0x0400;

/// Priority given to every interrupt the core enables (lower is more urgent).
const DEFAULT_PRIORITY: u8 = 0xA0;
/// INTIDs 1020-1023 are special: "no pending interrupt" and friends.
pub const SPURIOUS: u32 = 1020;

fn read32(address: usize) -> u32 {
    // SAFETY: callers pass addresses inside the GIC frames, device-mapped (module invariant).
    unsafe { ptr::read_volatile(address as *const u32) }
}

fn write32(address: usize, value: u32) {
    // SAFETY: as for `read32`.
    unsafe { ptr::write_volatile(address as *mut u32, value) }
}

fn write64(address: usize, value: u64) {
    // SAFETY: as for `read32`; GICD_IROUTER<n> is a 64-bit register.
    unsafe { ptr::write_volatile(address as *mut u64, value) }
}

/// Routes SPI `intid` to the CPU whose MPIDR is `mpidr` and enables it (it is in Group 1 at the
/// default priority since [`init_distributor`]).
pub fn enable_spi(dist: &Region, intid: u32, mpidr: u64) {
    let base = dist.start as usize;
    // Aff3 (bits 39:32) and Aff2..Aff0 (bits 23:0), Interrupt_Routing_Mode 0: that CPU only.
    write64(base + GICD_IROUTER + intid as usize * 8, mpidr & 0xff_00ff_ffff);
    write32(base + GICD_ISENABLER + (intid as usize / 32) * 4, 1 << (intid % 32));
}

fn read64(address: usize) -> u64 {
    // SAFETY: as for `read32`; GICR_TYPER is a 64-bit register.
    unsafe { ptr::read_volatile(address as *const u64) }
}

/// Waits up to a second for `done` (sleeping in WFE, which the event stream bounds).
fn wait_for(what: &'static str, done: impl FnMut() -> bool) -> Result<(), GicError> {
    super::cpu::wait_until(1000, done).then_some(()).ok_or(GicError::Timeout(what))
}

/// What went wrong bringing the GIC up.
#[derive(Debug)]
#[allow(dead_code, reason = "a broken machine or DTB: boot stops, printing it with Debug")]
pub enum GicError {
    /// A register never reached the state waited for.
    Timeout(&'static str),
    /// No redistributor frame carries this CPU's affinity.
    NoRedistributor { mpidr: u64 },
}

/// Initialises the distributor: affinity routing on, every SPI disabled and in Group 1.
pub fn init_distributor(dist: &Region) -> Result<u32, GicError> {
    let base = dist.start as usize;
    write32(base + GICD_CTLR, 0);
    wait_for("distributor disable", || read32(base + GICD_CTLR) & GICD_CTLR_RWP == 0)?;
    let lines = ((read32(base + GICD_TYPER) & 0x1f) + 1) * 32;
    for register in 1..lines as usize / 32 {
        write32(base + GICD_ICENABLER + register * 4, !0);
        write32(base + GICD_IGROUPR + register * 4, !0);
    }
    for register in 8..lines as usize / 4 {
        let priority = u32::from(DEFAULT_PRIORITY) * 0x0101_0101;
        write32(base + GICD_IPRIORITYR + register * 4, priority);
    }
    write32(base + GICD_CTLR, GICD_CTLR_ARE | GICD_CTLR_ENABLE_GROUP1);
    wait_for("distributor enable", || read32(base + GICD_CTLR) & GICD_CTLR_RWP == 0)?;
    Ok(lines)
}

/// Finds this CPU's redistributor among `regions` (stride from the DTB, else from GICR_TYPER).
pub fn find_redistributor(
    regions: &[Region],
    stride: Option<u64>,
    mpidr: u64,
) -> Result<usize, GicError> {
    let affinity = ((mpidr >> 32) & 0xff) << 24 | (mpidr & 0xff_ffff);
    for region in regions {
        let mut frame = region.start as usize;
        while (frame as u64) < region.end {
            let typer = read64(frame + GICR_TYPER);
            if typer >> 32 == affinity {
                return Ok(frame);
            }
            if typer & GICR_TYPER_LAST != 0 {
                break;
            }
            let default_stride = if typer & GICR_TYPER_VLPIS != 0 { 0x4_0000 } else { 0x2_0000 };
            frame += stride.unwrap_or(default_stride) as usize;
        }
    }
    Err(GicError::NoRedistributor { mpidr })
}

/// Wakes this CPU's redistributor, puts SGIs and PPIs in Group 1 (all disabled), and turns the
/// system-register CPU interface on.
pub fn init_cpu(redistributor: usize) -> Result<(), GicError> {
    let waker = read32(redistributor + GICR_WAKER);
    write32(redistributor + GICR_WAKER, waker & !GICR_WAKER_PROCESSOR_SLEEP);
    wait_for("redistributor wake", || {
        read32(redistributor + GICR_WAKER) & GICR_WAKER_CHILDREN_ASLEEP == 0
    })?;
    write32(redistributor + GICR_ICENABLER0, !0);
    write32(redistributor + GICR_IGROUPR0, !0);
    for register in 0..8 {
        let priority = u32::from(DEFAULT_PRIORITY) * 0x0101_0101;
        write32(redistributor + GICR_IPRIORITYR + register * 4, priority);
    }
    // ICC_SRE_EL2: SRE (system registers), DFB, DIB, and Enable (lets EL1 use SRE later).
    write_sysreg!("icc_sre_el2", 0xf);
    write_sysreg!("icc_pmr_el1", 0xff);
    write_sysreg!("icc_bpr1_el1", 0);
    // EOImode 1: an EOI only drops the priority; deactivation is separate (ICC_DIR_EL1), so a
    // passed-through SPI stays active until its guest deactivates it (as Xen runs the GIC).
    write_sysreg!("icc_ctlr_el1", 0b10);
    write_sysreg!("icc_igrpen1_el1", 1);
    Ok(())
}

/// Enables SGI or PPI `intid` (0..32) on the redistributor of the calling CPU.
pub fn enable_private(redistributor: usize, intid: u32) {
    debug_assert!(intid < 32);
    write32(redistributor + GICR_ISENABLER0, 1 << intid);
}

/// Acknowledges the highest-priority pending Group 1 interrupt; [`SPURIOUS`] or above if none.
pub fn acknowledge() -> u32 {
    (read_sysreg!("icc_iar1_el1") & 0xff_ffff) as u32
}

/// Signals the end of handling `intid`: priority drop, then deactivation (EOImode 1).
pub fn end_of_interrupt(intid: u32) {
    priority_drop(intid);
    write_sysreg!("icc_dir_el1", u64::from(intid));
}

/// Drops the running priority for `intid` and leaves it active (a passed-through SPI, which its
/// guest deactivates).
pub fn priority_drop(intid: u32) {
    write_sysreg!("icc_eoir1_el1", u64::from(intid));
}

/// Disables SPI `intid` and deactivates it, whichever CPU took it.
pub fn disable_spi(dist: &Region, intid: u32) {
    let (base, register, bit) = (dist.start as usize, (intid as usize / 32) * 4, 1 << (intid % 32));
    write32(base + GICD_ICENABLER + register, bit);
    write32(base + GICD_ICACTIVER + register, bit);
}

/// Sends SGI `intid` (0..16) to the CPU with affinity `mpidr`.
pub fn send_sgi(mpidr: u64, intid: u32) {
    let aff0 = mpidr & 0xff;
    let aff1 = (mpidr >> 8) & 0xff;
    let aff2 = (mpidr >> 16) & 0xff;
    let aff3 = (mpidr >> 32) & 0xff;
    // ICC_SGI1R_EL1: TargetList as a bit of Aff0 within its group of 16 (RS selects the group).
    let value = (aff3 << 48)
        | ((aff0 >> 4) << 44)
        | (aff2 << 32)
        | (u64::from(intid & 0xf) << 24)
        | (aff1 << 16)
        | (1 << (aff0 & 0xf));
    // SAFETY: the barrier makes earlier stores visible to the target before the SGI arrives.
    unsafe { core::arch::asm!("dsb ishst", options(nostack)) };
    write_sysreg!("icc_sgi1r_el1", value);
}
