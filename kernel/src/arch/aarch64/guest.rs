//! Running domains at EL1: the vCPU context the core saves and restores, stage-2 activation, the
//! trap controls, guest address translation, and decoding why a guest exited.
//!
//! The general registers of a running vCPU live in the trap frame on its pCPU's stack; its EL1
//! system registers, FP/SIMD registers and virtual timer live in the hardware. Only a context
//! switch copies them into a [`VcpuContext`]. The core is built soft-float, so it never touches
//! the FP/SIMD registers itself.
//!
//! # Invariants
//! - HCR_EL2 always holds [`HCR_GUEST`] once [`init_cpu`] ran: stage 2 on, every physical interrupt
//!   to EL2, WFI/WFE/SMC and ID register reads trapped.
//! - The state of the features `xenolith_kernel::trap::id_registers` hides from guests and the
//!   core does not switch stays trapped: SVE, SME (CPTR_EL2.TZ, TSM), AMU (TAM), trace (TTA),
//!   the PMU and statistical profiling (MDCR_EL2.TPM, TPMCR, TPMS, TTRF), pointer
//!   authentication keys and instructions (HCR_EL2.APK and API clear), MTE tags (HCR_EL2.ATA
//!   clear).
//! - VTTBR_EL2 names the stage 2 of the vCPU running (or last run) on this pCPU.

use core::arch::asm;

use super::cpu::{read_sysreg, write_sysreg};
use super::entry::TrapFrame;
use xenolith_kernel::mm::lpae;
use xenolith_kernel::trap::undefined;

/// HCR_EL2 while domains run: VM, SWIO, FMO, IMO, AMO, TWI, TWE, TID3, TSC, RW.
pub const HCR_GUEST: u64 = (1 << 0)
    | (1 << 1)
    | (1 << 3)
    | (1 << 4)
    | (1 << 5)
    | (1 << 13)
    | (1 << 14)
    | (1 << 18)
    | (1 << 19)
    | (1 << 31);

/// PSTATE for a vCPU's first instruction: EL1h with D, A, I and F masked (the arm64 Linux boot
/// protocol's entry state).
pub const SPSR_EL1H_MASKED: u64 = 0x3c5;
/// PSTATE for the idle context: EL2h, interrupts unmasked.
pub const SPSR_EL2H: u64 = 0x9;

/// One table of the EL1 system registers a context switch moves: it declares [`El1State`] and
/// drives both [`save_el1`] and [`restore_el1`], so the three cannot drift apart. Restored in
/// table order: the virtual timer's compare value goes in before its control register enables it.
macro_rules! el1_registers {
    ($($(#[$doc:meta])* $vis:vis $field:ident = $name:literal,)*) => {
        /// EL1 system registers of one vCPU.
        #[repr(C)]
        #[derive(Clone, Copy, Debug, Default)]
        pub struct El1State {
            $($(#[$doc])* $vis $field: u64,)*
        }

        /// Saves the running vCPU's EL1 registers.
        pub fn save_el1(state: &mut El1State) {
            $(state.$field = read_sysreg!($name);)*
            // The guest's virtual timer must not fire for it while it is not running.
            write_sysreg!("cntv_ctl_el0", 0);
        }

        /// Loads a vCPU's EL1 registers (its stage 2 is loaded separately).
        pub fn restore_el1(state: &El1State) {
            $(write_sysreg!($name, state.$field);)*
        }
    };
}

el1_registers! {
    sctlr = "sctlr_el1",
    ttbr0 = "ttbr0_el1",
    ttbr1 = "ttbr1_el1",
    tcr = "tcr_el1",
    mair = "mair_el1",
    amair = "amair_el1",
    vbar = "vbar_el1",
    contextidr = "contextidr_el1",
    tpidr_el0 = "tpidr_el0",
    tpidr_el1 = "tpidr_el1",
    tpidrro_el0 = "tpidrro_el0",
    sp_el0 = "sp_el0",
    sp_el1 = "sp_el1",
    elr_el1 = "elr_el1",
    spsr_el1 = "spsr_el1",
    esr_el1 = "esr_el1",
    far_el1 = "far_el1",
    afsr0 = "afsr0_el1",
    afsr1 = "afsr1_el1",
    par = "par_el1",
    cpacr = "cpacr_el1",
    cntkctl = "cntkctl_el1",
    csselr = "csselr_el1",
    /// CNTV_CVAL_EL0.
    pub cntv_cval = "cntv_cval_el0",
    /// CNTV_CTL_EL0 (ENABLE bit 0, IMASK bit 1, ISTATUS bit 2).
    pub cntv_ctl = "cntv_ctl_el0",
    /// What the vCPU reads as MPIDR_EL1 (VMPIDR_EL2).
    pub vmpidr = "vmpidr_el2",
}

/// FP/SIMD registers of one vCPU.
#[repr(C, align(16))]
#[derive(Clone, Copy, Debug, Default)]
pub struct FpState {
    q: [u128; 32],
    fpcr: u64,
    fpsr: u64,
}

/// The virtual CPU interface of one vCPU (GICv3 ICH_* registers): what it has been given to
/// take, and its own interface state.
#[derive(Clone, Copy, Debug, Default)]
pub struct VirtualInterface {
    /// ICH_LR<n>_EL2.
    pub list: [u64; LIST_REGISTERS],
    /// ICH_VMCR_EL2.
    pub vmcr: u64,
    /// ICH_AP1R0_EL2.
    pub ap1r0: u64,
}

/// List registers the core uses (QEMU and most cores have 4).
pub const LIST_REGISTERS: usize = 4;

/// Everything the core keeps of a vCPU that is not running.
#[derive(Clone, Debug)]
pub struct VcpuContext {
    /// General registers, PC (ELR) and PSTATE (SPSR).
    pub frame: TrapFrame,
    /// EL1 system registers.
    pub el1: El1State,
    /// FP/SIMD.
    pub fp: FpState,
    /// Virtual GIC CPU interface.
    pub gic: VirtualInterface,
}

impl VcpuContext {
    /// A vCPU about to run its first instruction at `entry` with `x0` (the DTB address), as the
    /// `vcpu_index`th vCPU of its domain.
    pub fn new(entry: u64, x0: u64, vcpu_index: u32) -> Self {
        let mut frame =
            TrapFrame { x: [0; 31], elr: entry, spsr: SPSR_EL1H_MASKED, esr: 0, far: 0, sp: 0 };
        frame.x[0] = x0;
        let el1 = El1State {
            // SCTLR_EL1 RES1 bits, MMU and caches off.
            sctlr: 0x30D0_0800,
            // VMPIDR_EL2: bit 31 RES1, Aff0 = vCPU index (Xen's vcpuid_to_vaffinity for < 16).
            vmpidr: (1 << 31) | u64::from(vcpu_index & 0xf) | (u64::from(vcpu_index >> 4) << 8),
            ..El1State::default()
        };
        Self { frame, el1, fp: FpState::default(), gic: VirtualInterface::default() }
    }
}

impl VcpuContext {
    /// Sets the EL1 translation and exception state a builder gives (`vcpu_guest_context`).
    pub fn set_el1(
        &mut self,
        sctlr: u64,
        tcr: u64,
        ttbr0: u64,
        ttbr1: u64,
        sp_el1: u64,
        elr_el1: u64,
    ) {
        // SCTLR_EL1's RES1 bits stay set whatever the builder passes.
        self.el1.sctlr = sctlr | 0x30D0_0800;
        self.el1.tcr = tcr;
        self.el1.ttbr0 = ttbr0;
        self.el1.ttbr1 = ttbr1;
        self.el1.sp_el1 = sp_el1;
        self.el1.elr_el1 = elr_el1;
    }
}

/// Saves the FP/SIMD registers (the core never uses them, so they still hold the vCPU's).
pub fn save_fp(state: &mut FpState) {
    let base = state.q.as_mut_ptr();
    // SAFETY: `base` points at 32 16-byte-aligned u128s owned by `state`; the stores write exactly
    // that array. FPCR/FPSR reads have no side effect.
    unsafe {
        asm!(
            ".arch_extension fp",
            ".arch_extension simd",
            "stp q0, q1, [{b}, #0]", "stp q2, q3, [{b}, #32]", "stp q4, q5, [{b}, #64]",
            "stp q6, q7, [{b}, #96]", "stp q8, q9, [{b}, #128]", "stp q10, q11, [{b}, #160]",
            "stp q12, q13, [{b}, #192]", "stp q14, q15, [{b}, #224]", "stp q16, q17, [{b}, #256]",
            "stp q18, q19, [{b}, #288]", "stp q20, q21, [{b}, #320]", "stp q22, q23, [{b}, #352]",
            "stp q24, q25, [{b}, #384]", "stp q26, q27, [{b}, #416]", "stp q28, q29, [{b}, #448]",
            "stp q30, q31, [{b}, #480]",
            b = in(reg) base,
            options(nostack)
        )
    };
    state.fpcr = read_sysreg!("s3_3_c4_c4_0");
    state.fpsr = read_sysreg!("s3_3_c4_c4_1");
}

/// Loads the FP/SIMD registers.
pub fn restore_fp(state: &FpState) {
    let base = state.q.as_ptr();
    // SAFETY: reads exactly the 32-entry array owned by `state`; only FP/SIMD registers change,
    // which the core never uses.
    unsafe {
        asm!(
            ".arch_extension fp",
            ".arch_extension simd",
            "ldp q0, q1, [{b}, #0]", "ldp q2, q3, [{b}, #32]", "ldp q4, q5, [{b}, #64]",
            "ldp q6, q7, [{b}, #96]", "ldp q8, q9, [{b}, #128]", "ldp q10, q11, [{b}, #160]",
            "ldp q12, q13, [{b}, #192]", "ldp q14, q15, [{b}, #224]", "ldp q16, q17, [{b}, #256]",
            "ldp q18, q19, [{b}, #288]", "ldp q20, q21, [{b}, #320]", "ldp q22, q23, [{b}, #352]",
            "ldp q24, q25, [{b}, #384]", "ldp q26, q27, [{b}, #416]", "ldp q28, q29, [{b}, #448]",
            "ldp q30, q31, [{b}, #480]",
            b = in(reg) base,
            options(nostack, readonly)
        )
    };
    write_sysreg!("s3_3_c4_c4_0", state.fpcr);
    write_sysreg!("s3_3_c4_c4_1", state.fpsr);
}

/// Saves the virtual CPU interface of the vCPU leaving this pCPU.
pub fn save_gic(state: &mut VirtualInterface) {
    state.list[0] = read_sysreg!("ich_lr0_el2");
    state.list[1] = read_sysreg!("ich_lr1_el2");
    state.list[2] = read_sysreg!("ich_lr2_el2");
    state.list[3] = read_sysreg!("ich_lr3_el2");
    state.vmcr = read_sysreg!("ich_vmcr_el2");
    state.ap1r0 = read_sysreg!("ich_ap1r0_el2");
}

/// Loads the virtual CPU interface of the vCPU entering this pCPU.
pub fn restore_gic(state: &VirtualInterface) {
    write_sysreg!("ich_lr0_el2", state.list[0]);
    write_sysreg!("ich_lr1_el2", state.list[1]);
    write_sysreg!("ich_lr2_el2", state.list[2]);
    write_sysreg!("ich_lr3_el2", state.list[3]);
    write_sysreg!("ich_vmcr_el2", state.vmcr);
    write_sysreg!("ich_ap1r0_el2", state.ap1r0);
}

/// Bitmap of the list registers that hold nothing (ICH_ELRSR_EL2).
pub fn empty_list_registers() -> u64 {
    read_sysreg!("ich_elrsr_el2") & ((1 << LIST_REGISTERS) - 1)
}

/// Puts virtual interrupt `intid` (Group 1, `priority`) pending in list register `index`;
/// `hardware`: it is the physical SPI of the same INTID, which the guest's EOI deactivates.
pub fn inject(index: usize, intid: u32, priority: u8, hardware: bool) {
    // ICH_LR<n>_EL2: State = pending (bit 62), HW (bit 61), Group 1 (bit 60), Priority [55:48],
    // pINTID [41:32] (with HW), vINTID.
    let physical = if hardware { (1 << 61) | (u64::from(intid) << 32) } else { 0 };
    let value = (1 << 62) | (1 << 60) | physical | (u64::from(priority) << 48) | u64::from(intid);
    write_list_register(index, value);
}

/// Makes `intid` pending again in the list register that already holds it, if one does: a
/// vINTID in two list registers is UNPREDICTABLE (GICv3 architecture, ICH_LR<n>_EL2), so an
/// interrupt raised again while the guest still handles it (active) becomes pending and active
/// there, and one still pending stays pending once. `false`: no list register holds it.
pub fn merge_into_list_register(intid: u32) -> bool {
    let mut occupied = !empty_list_registers() & ((1 << LIST_REGISTERS) - 1);
    while occupied != 0 {
        let index = occupied.trailing_zeros() as usize;
        occupied &= occupied - 1;
        let value = read_list_register(index);
        if value & 0xffff_ffff == u64::from(intid) {
            write_list_register(index, value | (1 << 62));
            return true;
        }
    }
    false
}

fn read_list_register(index: usize) -> u64 {
    match index {
        0 => read_sysreg!("ich_lr0_el2"),
        1 => read_sysreg!("ich_lr1_el2"),
        2 => read_sysreg!("ich_lr2_el2"),
        _ => read_sysreg!("ich_lr3_el2"),
    }
}

fn write_list_register(index: usize, value: u64) {
    match index {
        0 => write_sysreg!("ich_lr0_el2", value),
        1 => write_sysreg!("ich_lr1_el2", value),
        2 => write_sysreg!("ich_lr2_el2", value),
        _ => write_sysreg!("ich_lr3_el2", value),
    }
}

/// Masks the running vCPU's virtual timer (its interrupt is being delivered virtually; the guest
/// re-arms the timer, which clears the mask, as Xen's vtimer does).
pub fn mask_virtual_timer() {
    write_sysreg!("cntv_ctl_el0", read_sysreg!("cntv_ctl_el0") | 0b10);
}

/// Per-pCPU set-up for running domains: trap controls, stage-2 format, FP/SIMD not trapped.
pub fn init_cpu() {
    let parange = (read_sysreg!("id_aa64mmfr0_el1") & 0xf).min(2);
    let t0sz = 64 - u64::from(lpae::VA_BITS);
    // VTCR_EL2: RES1 bit 31, PS, SH0 inner, ORGN0/IRGN0 write-back, SL0 = 1 (start at level 1).
    let vtcr = (1 << 31) | (parange << 16) | (0b11 << 12) | (1 << 10) | (1 << 8) | (1 << 6) | t0sz;
    write_sysreg!("vtcr_el2", vtcr);
    // CPTR_EL2 (non-VHE): RES1 bits 13:12 and 9:0, which include TZ (8, SVE) and TSM (12, SME);
    // TTA (20, trace registers) and TAM (30, activity monitors); TFP (10) clear: FP/SIMD not
    // trapped.
    write_sysreg!("cptr_el2", 0x33ff | (1 << 20) | (1 << 30));
    // MDCR_EL2: TPMCR (5), TPM (6), TPMS (14, statistical profiling), TTRF (19, trace filter);
    // HPMN (4:0) as it was. E2PB and E2TB 0: the profiling and trace buffers are EL2's.
    let hpmn = read_sysreg!("mdcr_el2") & 0x1f;
    write_sysreg!("mdcr_el2", hpmn | (1 << 5) | (1 << 6) | (1 << 14) | (1 << 19));
    write_sysreg!("hcr_el2", HCR_GUEST);
    // ICH_HCR_EL2.En: the virtual CPU interface is on.
    write_sysreg!("ich_hcr_el2", 1);
}

/// Makes `root` (with `vmid`) the current stage 2.
pub fn activate_stage2(vmid: u16, root: u64) {
    write_sysreg!("vttbr_el2", (u64::from(vmid) << 48) | root);
}

/// Drops the stage-1 and stage-2 TLB entries of the VMID in VTTBR_EL2 on every pCPU: after the
/// running vCPU's own stage 2 changed (a grant map or unmap it asked for), as Xen's
/// `flush_guest_tlb` (`tlbi vmalls12e1is`, `xen/arch/arm/include/asm/arm64/flushtlb.h`); other
/// domains' entries stay.
pub fn flush_current_guest_tlbs() {
    // SAFETY: TLB maintenance only discards cached translations; barriers order it after the
    // table updates that made it necessary.
    unsafe { asm!("dsb ishst", "tlbi vmalls12e1is", "dsb ish", "isb", options(nostack)) };
}

/// Drops every stage-1 and stage-2 TLB entry of every VMID, on every pCPU (after a domain's
/// stage 2 changed or died).
pub fn flush_guest_tlbs() {
    // SAFETY: TLB maintenance only discards cached translations; barriers order it after the
    // table updates that made it necessary.
    unsafe { asm!("dsb ishst", "tlbi alle1is", "dsb ish", "isb", options(nostack)) };
}

/// Translates the running vCPU's virtual address `va` to a physical address, for a read or
/// (`write`) a write: stage 1 by the hardware (AT S1E1R/W, which also walks the guest's tables
/// through stage 2), stage 2 in software through the live VTTBR_EL2, so one walk also gives the
/// page's attributes. `None` if the guest has no such mapping or no permission, or if the page
/// is another domain's (a grant or foreign mapping): hypercalls reach only the caller's own
/// memory, as Xen's `copy_from_guest`.
#[inline(always)]
pub fn translate_guest(va: u64, write: bool) -> Option<u64> {
    if write {
        // SAFETY: AT only writes PAR_EL1, which is saved with the vCPU's context on a switch and
        // which the guest cannot observe meanwhile (this runs while handling its trap).
        unsafe { asm!("at s1e1w, {0}", "isb", in(reg) va, options(nostack)) };
    } else {
        // SAFETY: as above.
        unsafe { asm!("at s1e1r, {0}", "isb", in(reg) va, options(nostack)) };
    }
    let par = read_sysreg!("par_el1");
    if par & 1 != 0 {
        return None;
    }
    let ipa = (par & 0x0000_FFFF_FFFF_F000) | (va & 0xfff);
    let root = read_sysreg!("vttbr_el2") & 0x0000_FFFF_FFFF_FFFE;
    let stage2 =
        xenolith_kernel::mm::lpae::AddressSpace::<xenolith_kernel::mm::lpae::Stage2>::from_root(
            root,
        );
    let (phys, attributes) = stage2.translate(&crate::mm::memory::IdentityTables, ipa)?;
    (!attributes.lent && (attributes.write || !write)).then_some(phys)
}

/// Why a vCPU trapped (a synchronous exception from EL1), decoded from ESR_EL2.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GuestExit {
    /// `hvc #imm`.
    Hvc { immediate: u16 },
    /// `smc` (trapped by HCR_EL2.TSC); the PC still points at it.
    Smc,
    /// WFI (`wfe == false`) or WFE; the PC still points at it.
    Wait { wfe: bool },
    /// A stage-2 data abort at intermediate physical address `ipa`.
    DataAbort { ipa: u64, write: bool, syndrome_valid: bool },
    /// A stage-2 instruction abort.
    InstructionAbort { ipa: u64 },
    /// A trapped system register access.
    SystemRegister { iss: u32 },
    /// An instruction of a feature guests are not shown, trapped: pointer authentication
    /// (EC 0x09), SVE (0x19) or SME (0x1d).
    HiddenFeature { class: u8 },
    /// Anything else.
    Other { class: u8 },
}

/// A data abort's transfer from its syndrome (valid with ISS.ISV): the register (SRT, bits
/// 20:16; 31 is the zero register) and the access size in bytes (SAS, bits 23:22).
pub fn transfer(esr: u64) -> (usize, u64) {
    (((esr >> 16) & 0x1f) as usize, 1 << ((esr >> 22) & 0b11))
}

/// Decodes the exit of the vCPU whose registers are in `frame`.
#[inline(always)]
pub fn decode_exit(frame: &TrapFrame) -> GuestExit {
    // The most frequent exit first, in one compare: `hvc #0xEA1` (Xen's hypercall immediate),
    // ESR_EL2 EC 0x16 (HVC from AArch64), IL set, ISS the immediate (Arm ARM, ESR_EL2).
    if frame.esr == 0x5A00_0EA1 {
        return GuestExit::Hvc { immediate: 0xEA1 };
    }
    let class = (frame.esr >> 26) as u8;
    let iss = (frame.esr & 0x1ff_ffff) as u32;
    let fault_ipa = || {
        let hpfar = read_sysreg!("hpfar_el2");
        ((hpfar & 0x0000_0FFF_FFFF_FFF0) << 8) | (frame.far & 0xfff)
    };
    match class {
        0x16 => GuestExit::Hvc { immediate: iss as u16 },
        0x17 => GuestExit::Smc,
        0x01 => GuestExit::Wait { wfe: iss & 1 != 0 },
        0x24 => GuestExit::DataAbort {
            ipa: fault_ipa(),
            write: iss & (1 << 6) != 0,
            syndrome_valid: iss & (1 << 24) != 0,
        },
        0x20 => GuestExit::InstructionAbort { ipa: fault_ipa() },
        0x18 => GuestExit::SystemRegister { iss },
        0x09 | 0x19 | 0x1d => GuestExit::HiddenFeature { class },
        _ => GuestExit::Other { class },
    }
}

/// Steps the vCPU past the trapped 32-bit instruction at its PC, which ran as far as the guest
/// can tell: PSTATE.BTYPE (SPSR bits 11:10) is 0 after any instruction but a branch.
pub fn skip_instruction(frame: &mut TrapFrame) {
    frame.elr += 4;
    frame.spsr &= !(0b11 << 10);
}

/// Gives the running vCPU an Undefined Instruction exception for the instruction at its PC
/// (`xenolith_kernel::trap::undefined`): its EL1 registers are live in the hardware.
pub fn inject_undefined(frame: &mut TrapFrame) {
    let entry = undefined::undefined_instruction(frame.spsr, read_sysreg!("sctlr_el1"), frame.esr);
    write_sysreg!("elr_el1", frame.elr);
    write_sysreg!("spsr_el1", frame.spsr);
    write_sysreg!("esr_el1", entry.syndrome);
    // VBAR_EL1 bits 10:0 are RES0.
    frame.elr = (read_sysreg!("vbar_el1") & !0x7ff) + entry.vector_offset;
    frame.spsr = entry.pstate;
}

/// The hardware's value of the ID register op0 3, op1 0, CRn 0, `crm`, `op2` (group 3 of
/// HCR_EL2.TID3: CRm 1-7); 0 for any other `crm`. Only called for the registers
/// `xenolith_kernel::trap::id_registers::find` knows.
pub fn read_id_register(crm: u8, op2: u8) -> u64 {
    macro_rules! group_3 {
        ($($crm:literal: $($op2:literal)*;)*) => {
            match (crm, op2) {
                $($(($crm, $op2) => read_sysreg!(concat!("s3_0_c0_c", $crm, "_", $op2)),)*)*
                _ => 0,
            }
        };
    }
    group_3! {
        1: 0 1 2 3 4 5 6 7;
        2: 0 1 2 3 4 5 6 7;
        3: 0 1 2 3 4 5 6 7;
        4: 0 1 2 3 4 5 6 7;
        5: 0 1 2 3 4 5 6 7;
        6: 0 1 2 3 4 5 6 7;
        7: 0 1 2 3 4 5 6 7;
    }
}
