//! The Undefined Instruction exception the core gives a guest for a trapped instruction it does
//! not emulate (Xen's `inject_undef64_exception`): what the hardware would have done had the
//! instruction been UNDEFINED at the guest's own exception level, so the guest's kernel handles
//! it as on a CPU without the feature.
//!
//! The exception is taken to EL1 as the Arm ARM's `AArch64.TakeException` takes it (DDI 0487,
//! D1.3.2 "Taking an exception to AArch64 state"): ELR_EL1 gets the instruction's address,
//! SPSR_EL1 the interrupted PSTATE, ESR_EL1 the syndrome EC 0x00 (unknown reason) with IL; FAR_EL1
//! is UNKNOWN for this exception class and is left as it is. The new PSTATE is EL1h with D, A, I
//! and F masked, and execution goes on at VBAR_EL1 plus the offset of the synchronous vector
//! for where it came from.
//!
//! # Invariants
//! - Only state the guest's own EL1 would change is changed: the result is a PSTATE at EL1h and
//!   an address in the guest's vector table.

/// ESR_ELx.IL, bit 25: the trapped instruction was 32 bits long.
const IL: u64 = 1 << 25;

// PSTATE bits as SPSR_EL1 holds them (Arm ARM C5.2.19, SPSR_EL1).
/// N, Z, C, V [31:28]: kept.
const NZCV: u64 = 0xf << 28;
/// DIT [24]: kept.
const DIT: u64 = 1 << 24;
/// PAN [22]: set on entry unless SCTLR_EL1.SPAN is 1, then kept.
const PAN: u64 = 1 << 22;
/// SSBS [12]: set to SCTLR_EL1.DSSBS on entry.
const SSBS: u64 = 1 << 12;
/// D, A, I, F [9:6]: all set on entry.
const DAIF: u64 = 0xf << 6;
/// M [4:0] for EL1 using SP_EL1.
const EL1H: u64 = 0b0101;

/// SCTLR_EL1.SPAN [23]: 0 sets PSTATE.PAN on an exception to EL1.
const SCTLR_SPAN: u64 = 1 << 23;
/// SCTLR_EL1.DSSBS [44]: PSTATE.SSBS on an exception to EL1.
const SCTLR_DSSBS: u64 = 1 << 44;

/// Where the exception enters the guest and how.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Offset of the synchronous vector from VBAR_EL1: 0x000 from EL1 using SP_EL0, 0x200 from
    /// EL1 using SP_EL1, 0x400 from EL0 (AArch64).
    pub vector_offset: u64,
    /// The PSTATE the guest's handler runs with.
    pub pstate: u64,
    /// ESR_EL1.
    pub syndrome: u64,
}

/// The Undefined Instruction exception for a guest interrupted with `pstate` (its SPSR_EL2),
/// whose SCTLR_EL1 is `sctlr`, trapped with syndrome `trapped` (its ESR_EL2).
pub fn undefined_instruction(pstate: u64, sctlr: u64, trapped: u64) -> Entry {
    let vector_offset = match pstate & 0b1111 {
        0b0100 => 0x000,
        0b0101 => 0x200,
        _ => 0x400,
    };
    let pan = if sctlr & SCTLR_SPAN == 0 { PAN } else { pstate & PAN };
    let ssbs = if sctlr & SCTLR_DSSBS != 0 { SSBS } else { 0 };
    Entry {
        vector_offset,
        pstate: (pstate & (NZCV | DIT)) | pan | ssbs | DAIF | EL1H,
        syndrome: trapped & IL,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// ESR_EL2 of a trapped MRS (EC 0x18, IL).
    const TRAPPED: u64 = (0x18 << 26) | IL | 0x30_0001;

    #[test]
    fn vector_depends_on_where_the_guest_was() {
        let offset = |pstate| undefined_instruction(pstate, 0, TRAPPED).vector_offset;
        assert_eq!(offset(0x3c5), 0x200, "EL1h");
        assert_eq!(offset(0x3c4), 0x000, "EL1t");
        assert_eq!(offset(0x000), 0x400, "EL0");
    }

    #[test]
    fn enters_el1h_masked_with_the_syndrome_of_an_unknown_instruction() {
        let entry = undefined_instruction(0x0000_0000, SCTLR_SPAN, TRAPPED);
        assert_eq!(entry.pstate, DAIF | EL1H);
        assert_eq!(entry.syndrome, 0x0200_0000, "EC 0, IL 1, ISS 0");
        assert_eq!(undefined_instruction(0, 0, 0x6000_0000).syndrome, 0, "16-bit: IL 0");
    }

    #[test]
    fn keeps_flags_and_dit_and_clears_step_illegal_and_branch_type() {
        // N, Z, DIT, UAO (23), SS (21), IL (20), BTYPE (11:10), EL1h unmasked.
        let before = 0xc000_0000 | DIT | (1 << 23) | (1 << 21) | (1 << 20) | (0b11 << 10) | 0x5;
        let entry = undefined_instruction(before, SCTLR_SPAN, TRAPPED);
        assert_eq!(entry.pstate, 0xc000_0000 | DIT | DAIF | EL1H);
    }

    #[test]
    fn pan_and_ssbs_follow_sctlr() {
        assert_ne!(undefined_instruction(0, 0, TRAPPED).pstate & PAN, 0, "SPAN 0 sets PAN");
        assert_eq!(undefined_instruction(0, SCTLR_SPAN, TRAPPED).pstate & PAN, 0);
        assert_ne!(undefined_instruction(PAN, SCTLR_SPAN, TRAPPED).pstate & PAN, 0, "kept");
        assert_ne!(undefined_instruction(0, SCTLR_DSSBS, TRAPPED).pstate & SSBS, 0);
        assert_eq!(undefined_instruction(SSBS, 0, TRAPPED).pstate & SSBS, 0);
    }
}
