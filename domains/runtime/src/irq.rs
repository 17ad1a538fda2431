//! Interrupts for domains: the GICv3 a domain sees (Xen's guest layout: distributor at
//! `GUEST_GICV3_GICD_BASE`, one redistributor per vCPU from `GUEST_GICV3_GICR0_BASE`), the
//! system-register CPU interface, and one handler the domain registers.
//!
//! # Invariants
//! - The handler runs with interrupts masked, on the interrupted stack; it must be short.

use core::arch::asm;
use core::sync::atomic::{AtomicUsize, Ordering};

use xenolith_abi::xen::arch_arm::{
    GUEST_GICV3_GICD_BASE, GUEST_GICV3_GICR0_BASE, GUEST_GICV3_RDIST_STRIDE,
};

static HANDLER: AtomicUsize = AtomicUsize::new(0);

fn write32(address: u64, value: u32) {
    // SAFETY: callers pass registers of the domain's virtual GIC, device-mapped by the runtime's
    // identity map (the first GiB); the hypervisor emulates the access.
    unsafe { core::ptr::write_volatile(address as *mut u32, value) };
}

fn read32(address: u64) -> u32 {
    // SAFETY: as for `write32`.
    unsafe { core::ptr::read_volatile(address as *const u32) }
}

/// Sets the interrupt handler (`intid` in, called once per interrupt, with the interrupt
/// acknowledged and ended around it).
pub fn set_handler(handler: fn(u32)) {
    HANDLER.store(handler as usize, Ordering::Release);
}

/// Enables the distributor (once, from vCPU 0).
pub fn init_distributor() {
    // GICD_CTLR: EnableGrp1 (ARE is fixed on).
    write32(GUEST_GICV3_GICD_BASE, 0b10);
}

/// Enables shared peripheral interrupt `intid` (32-1019) in the distributor: Group 1, priority
/// 0xA0, routed to vCPU 0 (`GICD_IROUTER` affinity 0.0.0.0, IRM 0). Call after
/// [`init_distributor`].
pub fn enable_spi(intid: u32) {
    if !(32..1020).contains(&intid) {
        return;
    }
    let word = u64::from(intid / 32) * 4;
    let bit = 1 << (intid % 32);
    let group = GUEST_GICV3_GICD_BASE + 0x80 + word; // GICD_IGROUPR<n>
    write32(group, read32(group) | bit);
    let priority = GUEST_GICV3_GICD_BASE + 0x400 + u64::from(intid & !3); // GICD_IPRIORITYR<n>
    let shift = (intid % 4) * 8;
    write32(priority, (read32(priority) & !(0xff << shift)) | (0xA0 << shift));
    // GICD_IROUTER<n>
    let route = GUEST_GICV3_GICD_BASE + 0x6000 + 8 * u64::from(intid);
    // SAFETY: as for `write32`: GICD_IROUTER<n> is a 64-bit register of the virtual
    // distributor, written whole as Linux does (`gic_write_irouter`).
    unsafe { core::ptr::write_volatile(route as *mut u64, 0) };
    write32(GUEST_GICV3_GICD_BASE + 0x100 + word, bit); // GICD_ISENABLER<n>
}

/// Wakes vCPU `index`'s redistributor, enables the SGIs and PPIs in `private` (bit n = INTID n)
/// at priority 0xA0, and turns the CPU interface on. Call on that vCPU.
pub fn init_cpu(index: u64, private: u32) {
    let redistributor = GUEST_GICV3_GICR0_BASE + index * GUEST_GICV3_RDIST_STRIDE;
    write32(redistributor + 0x14, 0); // GICR_WAKER: awake
    while read32(redistributor + 0x14) & 0b100 != 0 {}
    let sgi = redistributor + 0x1_0000;
    write32(sgi + 0x80, !0); // Group 1
    for register in 0..8 {
        write32(sgi + 0x400 + register * 4, 0xA0A0_A0A0);
    }
    write32(sgi + 0x100, private); // ISENABLER0
                                   // SAFETY: GICv3 CPU interface system registers at EL1: SRE on, every priority unmasked,
                                   // Group 1 enabled. They configure this vCPU's (virtual) interface only.
    unsafe {
        asm!(
            "msr icc_sre_el1, {sre}",
            "isb",
            "msr icc_pmr_el1, {pmr}",
            "msr icc_igrpen1_el1, {enable}",
            "isb",
            sre = in(reg) 1u64,
            pmr = in(reg) 0xffu64,
            enable = in(reg) 1u64,
            options(nostack)
        )
    };
}

/// Unmasks IRQs on this vCPU.
pub fn enable() {
    // SAFETY: the vector table has an IRQ entry (`domain_irq`) from `_start` on.
    unsafe { asm!("msr daifclr, #2", options(nomem, nostack)) };
}

/// Sends SGI `intid` to the vCPUs in `targets` (bit n = vCPU n < 16).
pub fn send_sgi(intid: u32, targets: u16) {
    let value = (u64::from(intid & 0xf) << 24) | u64::from(targets);
    // SAFETY: writing ICC_SGI1R_EL1 only generates an SGI (the hypervisor emulates it).
    unsafe { asm!("msr icc_sgi1r_el1, {0}", "isb", in(reg) value, options(nostack)) };
}

/// Waits for an interrupt (WFI).
///
/// Only for a wait that needs no condition: between checking a condition that an interrupt
/// handler sets and this WFI, the interrupt may be taken, and nothing then ends the WFI. Use
/// [`wait_unless`] for that.
pub fn wait() {
    // SAFETY: WFI idles until an interrupt; the hypervisor blocks this vCPU meanwhile.
    unsafe { asm!("wfi", options(nomem, nostack)) };
}

/// Checks `ready` with IRQs masked and waits in WFI unless it holds; then unmasks IRQs, so a
/// pending interrupt's handler runs. An interrupt that comes after the check still ends the WFI
/// (WFI wakes on a pending interrupt even while IRQs are masked), so no wake-up is lost. Returns
/// what `ready` returned. Call with IRQs unmasked.
pub fn wait_unless(ready: impl FnOnce() -> bool) -> bool {
    // SAFETY: masking IRQs (PSTATE.I) only defers this vCPU's interrupts; they are unmasked below.
    unsafe { asm!("msr daifset, #2", options(nomem, nostack)) };
    let ready = ready();
    if !ready {
        wait();
    }
    // SAFETY: unmasks IRQs again, as the caller had them; the vector table handles them.
    unsafe { asm!("msr daifclr, #2", options(nomem, nostack)) };
    ready
}

#[no_mangle]
extern "C" fn domain_irq() {
    loop {
        let intid: u64;
        // SAFETY: acknowledging reads ICC_IAR1_EL1, which only changes interrupt state.
        unsafe { asm!("mrs {0}, icc_iar1_el1", out(reg) intid, options(nomem, nostack)) };
        let intid = (intid & 0xff_ffff) as u32;
        if intid >= 1020 {
            return;
        }
        let handler = HANDLER.load(Ordering::Acquire);
        if handler != 0 {
            // SAFETY: only `set_handler` stores here, always a `fn(u32)`.
            let handler: fn(u32) = unsafe { core::mem::transmute::<usize, fn(u32)>(handler) };
            handler(intid);
        }
        // SAFETY: ends the interrupt just acknowledged (EOImode 0: drop and deactivate).
        unsafe {
            asm!("msr icc_eoir1_el1, {0}", "isb", in(reg) u64::from(intid), options(nostack))
        };
    }
}
