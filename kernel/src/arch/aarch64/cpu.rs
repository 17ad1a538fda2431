//! This CPU: its identity, interrupt mask, idling, and the per-CPU data pointer (TPIDR_EL2).
//!
//! # Invariants
//! - TPIDR_EL2 holds this CPU's logical index from the moment it enters Rust; nothing else writes it.
//! - Interrupts are masked (DAIF.I) while a [`IrqGuard`] lives.

use core::arch::asm;

/// Reads a system register by name.
macro_rules! read_sysreg {
    ($name:expr) => {{
        let value: u64;
        // SAFETY: reading this system register has no side effect; the callers name only
        // registers that are readable at EL2.
        unsafe { core::arch::asm!(concat!("mrs {0}, ", $name), out(reg) value, options(nomem, nostack)) };
        value
    }};
}

/// Writes a system register by name and synchronises the context.
///
/// Only for registers whose write cannot break memory safety by itself (see each call site).
macro_rules! write_sysreg {
    ($name:literal, $value:expr) => {{
        let value: u64 = $value;
        // SAFETY: every use names a control register of the EL1&0 regime, the GIC CPU interface,
        // the timers (incl. CNTHCTL/CNTVOFF_EL2), FPCR/FPSR, TPIDR_EL2,
        // HCR/VTCR/VTTBR/CPTR/MDCR/VMPIDR_EL2 or ICH_*: none changes the EL2 stage-1
        // translation or memory the compiler knows about (the MMU itself is switched only in
        // `mmu::enable`), and the ISB makes the write take effect before the next instruction.
        unsafe {
            core::arch::asm!(concat!("msr ", $name, ", {0}"), "isb", in(reg) value, options(nostack))
        };
    }};
}

pub(crate) use read_sysreg;
pub(crate) use write_sysreg;

/// This CPU's MPIDR affinity bits (Aff3 in 39:32, Aff2..Aff0 in 23:0), as the DTB's `reg` gives them.
pub fn mpidr() -> u64 {
    read_sysreg!("mpidr_el1") & 0xff_00ff_ffff
}

/// This CPU's logical index.
pub fn current_index() -> usize {
    read_sysreg!("tpidr_el2") as usize
}

/// Records this CPU's logical index; called once per CPU on entry.
pub fn set_current_index(index: usize) {
    write_sysreg!("tpidr_el2", index as u64);
}

/// The current exception level (2 for the core).
pub fn current_el() -> u64 {
    (read_sysreg!("CurrentEL") >> 2) & 3
}

/// Unmasks IRQs on this CPU.
pub fn enable_interrupts() {
    // SAFETY: unmasking IRQs lets the vector table run `handle_exception`, which is set up
    // (VBAR_EL2) before any CPU reaches Rust.
    unsafe { asm!("msr daifclr, #2", options(nomem, nostack)) };
}

/// Masks IRQs on this CPU until the guard is dropped, then restores the previous mask.
pub struct IrqGuard {
    daif: u64,
}

impl IrqGuard {
    /// Masks IRQs.
    pub fn new() -> Self {
        let daif = read_sysreg!("daif");
        // SAFETY: masking IRQs is always sound; the guard restores the previous state.
        unsafe { asm!("msr daifset, #2", options(nomem, nostack)) };
        Self { daif }
    }
}

impl Drop for IrqGuard {
    fn drop(&mut self) {
        // SAFETY: restores exactly the DAIF value read when the guard was made.
        unsafe { asm!("msr daif, {0}", in(reg) self.daif, options(nomem, nostack)) };
    }
}

/// Sleeps until an event (WFE): an SEV, an unmasked interrupt, the clearing of this CPU's
/// exclusive monitor ([`wait_while_equal`]), or the generic timer's event stream (on since
/// `timer::init_cpu`), so no wait outlasts its period. Under QEMU's TCG a WFE gives this CPU's
/// turn to the others: a CPU that waits with it never starves the one it waits for when one
/// host thread runs them all (`-icount`).
pub fn wait_for_event() {
    // SAFETY: WFE only idles the CPU until an event; it touches no memory or register.
    unsafe { asm!("wfe", options(nomem, nostack)) };
}

/// Returns at once if `word` no longer holds `seen`, else sleeps in WFE until it may have
/// changed: the load-exclusive marks the word in this CPU's exclusive monitor, and any other
/// CPU's store to it (a lock's release) clears the monitor, which is a wake-up event (Linux's
/// `__cmpwait`). The releaser needs no SEV; the caller looks again (wake-ups may be spurious).
pub fn wait_while_equal(word: &core::sync::atomic::AtomicU32, seen: u32) {
    let word = word.as_ptr();
    // SAFETY: LDXR reads the four bytes of a live AtomicU32 (an atomic access, as any other CPU's
    // to it) and arms the exclusive monitor, which changes no memory; WFE only idles the CPU.
    unsafe {
        asm!("ldxr {0:w}, [{1}]; cmp {0:w}, {2:w}; b.ne 2f; wfe; 2:",
            out(reg) _, in(reg) word, in(reg) seen, options(nostack))
    };
}

/// Masks every interrupt and idles this CPU (WFI) for good.
pub fn halt() -> ! {
    loop {
        // SAFETY: masking all of DAIF is always sound, and WFI only idles the CPU; this CPU does
        // nothing more.
        unsafe { asm!("msr daifset, #0xf", "wfi", options(nomem, nostack)) };
    }
}

/// Waits up to `milliseconds` for `done`, sleeping in WFE between looks (an interrupt or the
/// timer's event stream wakes it): a spinning CPU can starve the others under single-threaded
/// emulation (QEMU `-icount`), and wastes power on hardware. WFI would sleep to the next tick
/// even when what it waits for is there (10 ms at each look).
pub fn wait_until(milliseconds: u64, mut done: impl FnMut() -> bool) -> bool {
    let deadline = counter() + milliseconds * counter_frequency() / 1000;
    while counter() < deadline {
        if done() {
            return true;
        }
        wait_for_event();
    }
    done()
}

/// The generic timer's counter value.
pub fn counter() -> u64 {
    // SAFETY: an ISB orders the counter read after earlier instructions; reading CNTPCT_EL0 at EL2
    // has no side effect.
    unsafe { asm!("isb", options(nomem, nostack)) };
    read_sysreg!("cntpct_el0")
}

/// The generic timer's frequency in Hz.
pub fn counter_frequency() -> u64 {
    read_sysreg!("cntfrq_el0")
}

/// Zeroes `[start, start + len)` with `DC ZVA`, one instruction per block (`DCZID_EL0`: 64
/// bytes on QEMU and most cores), as Linux's `clear_page` does; with plain stores where
/// `DCZID_EL0.DZP` prohibits it or the range is not made of whole blocks.
///
/// # Safety
/// The range is identity-mapped normal memory (the MMU is on) that no Rust reference aliases.
pub unsafe fn zero(start: u64, len: u64) {
    let dczid = read_sysreg!("dczid_el0");
    let block = 4 << (dczid & 0xf);
    if dczid & 0x10 != 0 || !(start | len).is_multiple_of(block) {
        // SAFETY: the caller's contract.
        return unsafe { core::ptr::write_bytes(start as *mut u8, 0, len as usize) };
    }
    for address in (start..start + len).step_by(block as usize) {
        // SAFETY: DC ZVA zeroes the block at `address`, inside the caller's range.
        unsafe { asm!("dc zva, {0}", in(reg) address, options(nostack)) };
    }
}

/// Cleans and invalidates the data cache lines covering `[start, start + len)` to the point of
/// coherency, so a CPU running with caches off sees what this one wrote.
pub fn clean_dcache_range(start: u64, len: u64) {
    const LINE: u64 = 64;
    let mut address = start & !(LINE - 1);
    while address < start + len {
        // SAFETY: DC CIVAC writes back and invalidates a line; it changes no memory contents.
        unsafe { asm!("dc civac, {0}", in(reg) address, options(nostack)) };
        address += LINE;
    }
    // SAFETY: a barrier only orders memory accesses.
    unsafe { asm!("dsb sy", options(nostack)) };
}

/// Copies `len` bytes from `from` to `to` 128 at a time with 16-byte loads and stores: both
/// 16-byte aligned, `len` a non-zero multiple of 128, the ranges apart.
///
/// # Safety
/// Both ranges are identity-mapped normal memory the caller may read and write, and no Rust
/// reference aliases the destination.
pub unsafe fn copy_blocks(from: u64, to: u64, len: u64) {
    debug_assert!(
        from.is_multiple_of(16) && to.is_multiple_of(16) && len.is_multiple_of(128) && len != 0
    );
    // SAFETY: the caller's contract; the loop reads `[from, from + len)` and writes
    // `[to, to + len)` only, and clobbers only the registers named.
    unsafe {
        asm!(
            // The first load and store move their base on by 128 (post-index), so the loop
            // needs no separate additions: 18 instructions a 128 bytes.
            "1: ldp {a}, {b}, [{from}], #128",
            "ldp {c}, {d}, [{from}, #-112]",
            "ldp {e}, {f}, [{from}, #-96]",
            "ldp {g}, {h}, [{from}, #-80]",
            "stp {a}, {b}, [{to}], #128",
            "stp {c}, {d}, [{to}, #-112]",
            "stp {e}, {f}, [{to}, #-96]",
            "stp {g}, {h}, [{to}, #-80]",
            "ldp {a}, {b}, [{from}, #-64]",
            "ldp {c}, {d}, [{from}, #-48]",
            "ldp {e}, {f}, [{from}, #-32]",
            "ldp {g}, {h}, [{from}, #-16]",
            "stp {a}, {b}, [{to}, #-64]",
            "stp {c}, {d}, [{to}, #-48]",
            "stp {e}, {f}, [{to}, #-32]",
            "stp {g}, {h}, [{to}, #-16]",
            "subs {len}, {len}, #128",
            "b.ne 1b",
            from = inout(reg) from => _,
            to = inout(reg) to => _,
            len = inout(reg) len => _,
            a = out(reg) _, b = out(reg) _, c = out(reg) _, d = out(reg) _,
            e = out(reg) _, f = out(reg) _, g = out(reg) _, h = out(reg) _,
            options(nostack)
        )
    };
}
