//! The identification registers a guest reads, and the trapped system-register accesses they
//! arrive as.
//!
//! HCR_EL2.TID3 traps a guest's reads of the ID registers of group 3: op0 3, op1 0, CRn 0,
//! CRm 1-7 (Arm ARM DDI 0487, D19.2 "Identification registers"). The core answers them the way
//! Xen 4.17 does (`xen/arch/arm/arm64/vsysreg.c`, `create_guest_cpuinfo` in `cpufeature.c`): the
//! hardware's value with the fields hidden whose state the core does not switch per vCPU or whose
//! controls it keeps trapped, so the guest never uses them. Xen hides SVE, MTE, RAS, MPAM and
//! AMU; the core also hides SME, pointer authentication, the PMU, statistical profiling and
//! trace (Xen traps and emulates the PMU and debug registers instead). Every other encoding of
//! the space reads as 0: the reserved ones, as the architecture defines them, and the registers
//! that only describe hidden features (ID_AA64ZFR0_EL1, ID_AA64SMFR0_EL1, ...), so that a
//! register newer than this table describes nothing the guest may use.
//!
//! # Invariants
//! - Every read in the group-3 space gets an answer; a guest never takes an Undefined
//!   Instruction exception there.
//! - A hidden field reads as 0, which for each of them means "not implemented"; the fields for
//!   which 0 means something else (ID_AA64PFR0_EL1.FP, ID_AA64MMFR0_EL1.TGran4, ..., and
//!   ID_AA64DFR0_EL1.DoubleLock) are never hidden. A capped field never reads above its cap.

use core::fmt;

/// The encoding of a system register (its operands in `MRS Xt, S<op0>_<op1>_C<n>_C<m>_<op2>`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Encoding {
    pub op0: u8,
    pub op1: u8,
    pub crn: u8,
    pub crm: u8,
    pub op2: u8,
}

impl Encoding {
    /// The register `S<op0>_<op1>_C<crn>_C<crm>_<op2>`.
    pub const fn new(op0: u8, op1: u8, crn: u8, crm: u8, op2: u8) -> Self {
        Self { op0, op1, crn, crm, op2 }
    }
}

impl fmt::Display for Encoding {
    fn fmt(&self, out: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Self { op0, op1, crn, crm, op2 } = self;
        write!(out, "S{op0}_{op1}_C{crn}_C{crm}_{op2}")
    }
}

/// A trapped MRS or MSR (ESR_EL2.EC 0x18).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Access {
    /// The register accessed.
    pub encoding: Encoding,
    /// Rt, the general register read or written (31: the zero register).
    pub register: usize,
    /// MRS (a read of the system register) rather than MSR.
    pub read: bool,
}

impl fmt::Display for Access {
    fn fmt(&self, out: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (instruction, encoding) = (if self.read { "mrs" } else { "msr" }, self.encoding);
        write!(out, "{instruction} {encoding} (x{})", self.register)
    }
}

impl Access {
    /// Decodes the ISS of ESR_EL2 for EC 0x18 (Arm ARM D19.2, ESR_EL2, "ISS encoding for an
    /// exception from MSR, MRS, or System instruction execution in AArch64 state"): Op0 [21:20],
    /// Op2 [19:17], Op1 [16:14], CRn [13:10], Rt [9:5], CRm [4:1], Direction [0] (1: read).
    pub fn decode(iss: u32) -> Self {
        let bits = |shift: u32, width: u32| ((iss >> shift) & ((1 << width) - 1)) as u8;
        Self {
            encoding: Encoding::new(bits(20, 2), bits(14, 3), bits(10, 4), bits(1, 4), bits(17, 3)),
            register: usize::from(bits(5, 5)),
            read: iss & 1 != 0,
        }
    }
}

/// What the guest reads for `access` if it is a read in the group-3 ID space: the sanitized
/// hardware value (`hardware(crm, op2)` reads it) of a register [`find`] knows, 0 for every
/// other encoding. `None` if `access` is anything else (a write there is UNDEFINED: the ID
/// registers are read-only).
pub fn read(access: &Access, hardware: impl FnOnce(u8, u8) -> u64) -> Option<u64> {
    let Encoding { op0: 3, op1: 0, crn: 0, crm: crm @ 1..=7, op2 } = access.encoding else {
        return None;
    };
    if !access.read {
        return None;
    }
    Some(find(crm, op2).map_or(0, |register| register.sanitize(hardware(crm, op2))))
}

/// An ID register the guest reads as the hardware's value with some fields hidden or capped.
#[derive(Clone, Copy, Debug)]
pub struct IdRegister {
    /// CRm of its encoding (op0 3, op1 0, CRn 0).
    pub crm: u8,
    /// op2 of its encoding.
    pub op2: u8,
    /// The bits of the hidden fields: they read as 0.
    hidden: u64,
    /// Fields shown at most at a value: (lowest bit, highest value).
    caps: &'static [(u32, u64)],
}

impl IdRegister {
    /// A register shown as the hardware has it.
    const fn new(crm: u8, op2: u8) -> Self {
        Self { crm, op2, hidden: 0, caps: &[] }
    }

    /// The same with the fields at `fields` hidden.
    const fn hide(self, fields: &[u32]) -> Self {
        Self { hidden: self.hidden | nibbles(fields), ..self }
    }

    /// The same with every field hidden but those at `fields`.
    const fn show_only(self, fields: &[u32]) -> Self {
        Self { hidden: !nibbles(fields), ..self }
    }

    /// The same with fields capped: (lowest bit, highest value).
    const fn cap(self, caps: &'static [(u32, u64)]) -> Self {
        Self { caps, ..self }
    }

    /// What the guest reads when the hardware holds `value`.
    pub fn sanitize(&self, value: u64) -> u64 {
        self.caps.iter().fold(value & !self.hidden, |value, &(shift, cap)| {
            if (value >> shift) & 0xf > cap {
                (value & !(0xf << shift)) | (cap << shift)
            } else {
                value
            }
        })
    }
}

/// The bits of the four-bit fields starting at `fields`.
const fn nibbles(fields: &[u32]) -> u64 {
    let (mut mask, mut index) = (0, 0);
    while index < fields.len() {
        mask |= 0xf << fields[index];
        index += 1;
    }
    mask
}

/// The field positions this module names: the lowest bit of each four-bit field, by the names
/// of the Arm ARM's register descriptions (D19.2). A field is hidden because its feature has
/// state the core does not switch per vCPU, or controls the core keeps trapped.
pub mod field {
    /// ID_PFR0_EL1.CSV2 [19:16]: branch-target speculation restricted (2: also SCXTNUM, which
    /// the core does not switch).
    pub const PFR0_CSV2: u32 = 16;
    /// ID_PFR0_EL1.AMU [23:20]: the Activity Monitors Extension (its counters are not switched).
    pub const PFR0_AMU: u32 = 20;
    /// ID_PFR0_EL1.RAS [31:28]: the RAS Extension (error records and DISR, not virtualized).
    pub const PFR0_RAS: u32 = 28;
    /// ID_DFR0_EL1.CopTrc [15:12]: trace registers in the coprocessor space.
    pub const DFR0_COP_TRC: u32 = 12;
    /// ID_DFR0_EL1.MMapTrc [19:16]: memory-mapped trace.
    pub const DFR0_MMAP_TRC: u32 = 16;
    /// ID_DFR0_EL1.PerfMon [27:24]: the Performance Monitors (not switched; MDCR_EL2.TPM).
    pub const DFR0_PERF_MON: u32 = 24;
    /// ID_DFR0_EL1.TraceFilt [31:28]: the trace filter controls.
    pub const DFR0_TRACE_FILT: u32 = 28;
    /// ID_PFR2_EL1.RAS_frac [11:8].
    pub const PFR2_RAS_FRAC: u32 = 8;
    /// ID_AA64PFR0_EL1.EL0 [3:0]: 1, AArch64 only; 2, AArch32 too (the core crashes a domain
    /// that takes an exception from AArch32 state).
    pub const AA64PFR0_EL0: u32 = 0;
    /// ID_AA64PFR0_EL1.EL1 [7:4]: as EL0 (HCR_EL2.RW keeps a domain's EL1 AArch64).
    pub const AA64PFR0_EL1: u32 = 4;
    /// ID_AA64PFR0_EL1.RAS [31:28]: the RAS Extension.
    pub const AA64PFR0_RAS: u32 = 28;
    /// ID_AA64PFR0_EL1.SVE [35:32]: the Scalable Vector Extension (Z, P, FFR and ZCR_EL1 are
    /// not switched; CPTR_EL2.TZ traps them).
    pub const AA64PFR0_SVE: u32 = 32;
    /// ID_AA64PFR0_EL1.MPAM [43:40]: Memory Partitioning and Monitoring.
    pub const AA64PFR0_MPAM: u32 = 40;
    /// ID_AA64PFR0_EL1.AMU [47:44]: the Activity Monitors Extension (CPTR_EL2.TAM traps it).
    pub const AA64PFR0_AMU: u32 = 44;
    /// ID_AA64PFR0_EL1.CSV2 [59:56]: as ID_PFR0_EL1.CSV2.
    pub const AA64PFR0_CSV2: u32 = 56;
    /// ID_AA64PFR1_EL1.BT [3:0]: Branch Target Identification (SCTLR_EL1, PSTATE: switched).
    /// The other fields of ID_AA64PFR1_EL1 but SSBS are hidden: MTE, RAS_frac, MPAM_frac, SME,
    /// RNDR_trap, CSV2_frac, NMI, MTE_frac, GCS, THE, MTEX, DF2, PFAR.
    pub const AA64PFR1_BT: u32 = 0;
    /// ID_AA64PFR1_EL1.SSBS [7:4]: Speculative Store Bypass Safe (PSTATE: switched).
    pub const AA64PFR1_SSBS: u32 = 4;
    /// ID_AA64DFR0_EL1.DebugVer [3:0]: the debug architecture (0 is not a valid value). The
    /// fields of ID_AA64DFR0_EL1 not named here are hidden: TraceVer, PMUVer, PMSS, SEBEP,
    /// PMSVer (SPE), TraceFilt, TraceBuffer (TRBE), MTPMU, BRBE, ExtTrcBuff, HPMN0.
    pub const AA64DFR0_DEBUG_VER: u32 = 0;
    /// ID_AA64DFR0_EL1.BRPs [15:12]: breakpoints, minus one.
    pub const AA64DFR0_BRPS: u32 = 12;
    /// ID_AA64DFR0_EL1.WRPs [23:20]: watchpoints, minus one.
    pub const AA64DFR0_WRPS: u32 = 20;
    /// ID_AA64DFR0_EL1.CTX_CMPs [31:28]: context-aware breakpoints, minus one.
    pub const AA64DFR0_CTX_CMPS: u32 = 28;
    /// ID_AA64DFR0_EL1.DoubleLock [39:36]: 0 means implemented.
    pub const AA64DFR0_DOUBLE_LOCK: u32 = 36;
    /// ID_AA64ISAR0_EL1.TME [27:24]: Transactional Memory (UNDEFINED while HCR_EL2.TME is 0).
    pub const AA64ISAR0_TME: u32 = 24;
    /// ID_AA64ISAR1_EL1.APA [7:4]: address authentication, QARMA5 (keys not switched).
    pub const AA64ISAR1_APA: u32 = 4;
    /// ID_AA64ISAR1_EL1.API [11:8]: address authentication, IMPLEMENTATION DEFINED algorithm.
    pub const AA64ISAR1_API: u32 = 8;
    /// ID_AA64ISAR1_EL1.GPA [27:24]: generic authentication (PACGA), QARMA5.
    pub const AA64ISAR1_GPA: u32 = 24;
    /// ID_AA64ISAR1_EL1.GPI [31:28]: generic authentication, IMPLEMENTATION DEFINED algorithm.
    pub const AA64ISAR1_GPI: u32 = 28;
    /// ID_AA64ISAR1_EL1.LS64 [63:60]: 64-byte loads and stores (need HCRX_EL2 enables).
    pub const AA64ISAR1_LS64: u32 = 60;
    /// ID_AA64ISAR2_EL1.RPRES [7:4]: 12-bit reciprocal estimates when FPCR.AH is 1. The fields
    /// of ID_AA64ISAR2_EL1 not named here are hidden (Xen 4.17 hides the whole register):
    /// WFxT (the core would let WFIT sleep past its timeout), GPA3 and APA3 (pointer
    /// authentication, QARMA3), MOPS (needs HCRX_EL2.MSCEn), PAC_frac, SYSREG_128, ...
    pub const AA64ISAR2_RPRES: u32 = 4;
    /// ID_AA64ISAR2_EL1.BC [23:20]: BC.cond.
    pub const AA64ISAR2_BC: u32 = 20;
    /// ID_AA64ISAR2_EL1.CLRBHB [31:28]: the CLRBHB instruction.
    pub const AA64ISAR2_CLRBHB: u32 = 28;
}

use field::*;

/// ID_PFR0_EL1.
pub const ID_PFR0_EL1: IdRegister =
    IdRegister::new(1, 0).hide(&[PFR0_AMU, PFR0_RAS]).cap(&[(PFR0_CSV2, 1)]);
/// ID_DFR0_EL1.
pub const ID_DFR0_EL1: IdRegister =
    IdRegister::new(1, 2).hide(&[DFR0_COP_TRC, DFR0_MMAP_TRC, DFR0_PERF_MON, DFR0_TRACE_FILT]);
/// ID_PFR2_EL1.
pub const ID_PFR2_EL1: IdRegister = IdRegister::new(3, 4).hide(&[PFR2_RAS_FRAC]);
/// ID_AA64PFR0_EL1.
pub const ID_AA64PFR0_EL1: IdRegister = IdRegister::new(4, 0)
    .hide(&[AA64PFR0_RAS, AA64PFR0_SVE, AA64PFR0_MPAM, AA64PFR0_AMU])
    .cap(&[(AA64PFR0_EL0, 1), (AA64PFR0_EL1, 1), (AA64PFR0_CSV2, 1)]);
/// ID_AA64PFR1_EL1.
pub const ID_AA64PFR1_EL1: IdRegister =
    IdRegister::new(4, 1).show_only(&[AA64PFR1_BT, AA64PFR1_SSBS]);
/// ID_AA64DFR0_EL1.
pub const ID_AA64DFR0_EL1: IdRegister = IdRegister::new(5, 0).show_only(&[
    AA64DFR0_DEBUG_VER,
    AA64DFR0_BRPS,
    AA64DFR0_WRPS,
    AA64DFR0_CTX_CMPS,
    AA64DFR0_DOUBLE_LOCK,
]);
/// ID_AA64ISAR0_EL1.
pub const ID_AA64ISAR0_EL1: IdRegister = IdRegister::new(6, 0).hide(&[AA64ISAR0_TME]);
/// ID_AA64ISAR1_EL1.
pub const ID_AA64ISAR1_EL1: IdRegister = IdRegister::new(6, 1).hide(&[
    AA64ISAR1_APA,
    AA64ISAR1_API,
    AA64ISAR1_GPA,
    AA64ISAR1_GPI,
    AA64ISAR1_LS64,
]);
/// ID_AA64ISAR2_EL1.
pub const ID_AA64ISAR2_EL1: IdRegister =
    IdRegister::new(6, 2).show_only(&[AA64ISAR2_RPRES, AA64ISAR2_BC, AA64ISAR2_CLRBHB]);

/// The registers of the group-3 space with fields hidden or capped.
pub const SANITIZED: [IdRegister; 9] = [
    ID_PFR0_EL1,
    ID_DFR0_EL1,
    ID_PFR2_EL1,
    ID_AA64PFR0_EL1,
    ID_AA64PFR1_EL1,
    ID_AA64DFR0_EL1,
    ID_AA64ISAR0_EL1,
    ID_AA64ISAR1_EL1,
    ID_AA64ISAR2_EL1,
];

/// The registers of the group-3 space shown as the hardware has them: bit `op2` of entry `crm`.
/// ID_PFR1, ID_AFR0, ID_MMFR0-3 (CRm 1); ID_ISAR0-5, ID_MMFR4, ID_ISAR6 (CRm 2); MVFR0-2,
/// ID_MMFR5 (CRm 3); ID_AA64AFR0/AFR1 (CRm 5); ID_AA64MMFR0-2 (CRm 7), all `_EL1`.
///
/// Every other encoding of the space reads as 0: the reserved ones, and ID_DFR1_EL1 (its fields
/// are the PMU's), ID_AA64PFR2_EL1 (MTE), ID_AA64ZFR0_EL1 (SVE), ID_AA64SMFR0_EL1 (SME),
/// ID_AA64FPFR0_EL1 (FP8, with FPMR), ID_AA64DFR1/DFR2_EL1 (PMU, trace and debug extensions),
/// ID_AA64ISAR3_EL1, ID_AA64MMFR3/MMFR4_EL1 (TCR2_EL1, permission indirection and overlays,
/// ...: EL1 state the core does not switch).
const SHOWN: [u8; 8] = [0, 0b1111_1010, 0b1111_1111, 0b0100_0111, 0, 0b0011_0000, 0, 0b0000_0111];

/// The register at CRm `crm`, op2 `op2` of the group-3 space, if the guest sees the hardware's
/// value there.
pub fn find(crm: u8, op2: u8) -> Option<IdRegister> {
    let sanitized = SANITIZED.iter().find(|register| (register.crm, register.op2) == (crm, op2));
    let shown = SHOWN.get(usize::from(crm)).is_some_and(|row| op2 < 8 && row >> op2 & 1 != 0);
    sanitized.copied().or_else(|| shown.then(|| IdRegister::new(crm, op2)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The ISS of a trapped `mrs`/`msr` of `encoding` with Rt `register`.
    fn iss(encoding: Encoding, register: u32, read: bool) -> u32 {
        let Encoding { op0, op1, crn, crm, op2 } = encoding;
        (u32::from(op0) << 20)
            | (u32::from(op2) << 17)
            | (u32::from(op1) << 14)
            | (u32::from(crn) << 10)
            | (register << 5)
            | (u32::from(crm) << 1)
            | u32::from(read)
    }

    /// A guest's `mrs` of `encoding` on hardware whose every ID register holds `value`.
    fn guest_reads(encoding: Encoding, value: u64) -> Option<u64> {
        let access = Access::decode(iss(encoding, 3, true));
        read(&access, |_, _| value)
    }

    #[test]
    fn decodes_the_iss_of_a_trapped_access() {
        // msr ICC_SGI1R_EL1, x7 (S3_0_C12_C11_5).
        let access = Access::decode(0x003a_30f6);
        assert_eq!(access.encoding, Encoding::new(3, 0, 12, 11, 5));
        assert_eq!((access.register, access.read), (7, false));
        assert_eq!(access.to_string(), "msr S3_0_C12_C11_5 (x7)");
        // mrs x30, ID_AA64PFR0_EL1.
        let access = Access::decode(iss(Encoding::new(3, 0, 0, 4, 0), 30, true));
        assert_eq!(
            (access.encoding, access.register, access.read),
            (Encoding::new(3, 0, 0, 4, 0), 30, true)
        );
    }

    #[test]
    fn hides_sve_sme_mte_and_pointer_authentication() {
        // What QEMU's `-cpu max` shows, in the fields a guest must not see.
        // EL0, EL1 2 (AArch32 too); EL2, EL3, FP, AdvSIMD, GIC, RAS, SVE, MPAM, AMU 1; CSV2 2.
        let pfr0 = ID_AA64PFR0_EL1.sanitize(0x1200_1101_1111_1122);
        assert_eq!(pfr0, 0x1100_0000_0111_1111, "no RAS, SVE, MPAM, AMU; AArch64 only; CSV2 1");
        let pfr1 = ID_AA64PFR1_EL1.sanitize(0x0000_0000_0100_0321);
        assert_eq!(pfr1, 0x21, "only BT and SSBS: no MTE (11:8), no SME (27:24)");
        let isar1 = ID_AA64ISAR1_EL1.sanitize(0x0011_1101_1021_1111);
        assert_eq!(isar1, 0x0011_1101_0021_1001, "no APA/API (11:4), GPA/GPI (31:24)");
        let isar2 = ID_AA64ISAR2_EL1.sanitize(0x1111_1111_1111_1111);
        assert_eq!(isar2, 0x1010_0010, "RPRES, BC, CLRBHB only: no WFxT, GPA3, APA3, MOPS");
        assert_eq!(ID_AA64ISAR0_EL1.sanitize(0x0221_1000_1112_1120) >> 24 & 0xf, 0, "TME");
    }

    #[test]
    fn hides_the_pmu_profiling_and_trace_but_keeps_debug() {
        // PMUVer 6, TraceVer 1, PMSVer 1, TraceFilt 1, TraceBuffer 1, BRBE 1; 6 breakpoints,
        // 4 watchpoints, 2 context comparators, DebugVer 9, DoubleLock 0 (implemented).
        let dfr0 = ID_AA64DFR0_EL1.sanitize(0x0011_1101_1035_5619);
        assert_eq!(dfr0, 0x1030_5009);
        let dfr0 = ID_AA64DFR0_EL1.sanitize(0x0000_00f0_0000_0006);
        assert_eq!(dfr0, 0x0000_00f0_0000_0006, "DoubleLock not implemented stays 0xf");
        assert_eq!(ID_DFR0_EL1.sanitize(0x1717_7777), 0x0010_0777, "PerfMon, traces hidden");
        assert_eq!(ID_PFR0_EL1.sanitize(0x1121_0131), 0x0101_0131, "RAS, AMU hidden");
        assert_eq!(ID_PFR0_EL1.sanitize(0x0002_0000), 0x0001_0000, "CSV2 capped at 1");
        assert_eq!(ID_PFR2_EL1.sanitize(0x111), 0x011, "RAS_frac hidden");
    }

    #[test]
    fn caps_never_raise_a_field() {
        assert_eq!(ID_AA64PFR0_EL1.sanitize(0x11), 0x11);
        assert_eq!(ID_AA64PFR0_EL1.sanitize(0x22) & 0xff, 0x11);
        assert_eq!(ID_AA64PFR0_EL1.sanitize(0) >> 56, 0, "CSV2 0 stays 0");
        assert_eq!(ID_AA64PFR0_EL1.sanitize(1 << 56) >> 56, 1);
        assert_eq!(ID_AA64PFR0_EL1.sanitize(3 << 56) >> 56, 1);
    }

    #[test]
    fn the_other_registers_are_shown_as_the_hardware_has_them() {
        let all = u64::MAX;
        for register in [(7, 0), (7, 1), (7, 2), (1, 4), (2, 0), (3, 0), (5, 4)] {
            let encoding = Encoding::new(3, 0, 0, register.0, register.1);
            assert_eq!(guest_reads(encoding, all), Some(all), "{encoding}");
        }
    }

    #[test]
    fn every_group_3_read_is_answered_and_only_listed_registers_reach_the_hardware() {
        for crm in 1..=7 {
            for op2 in 0..=7 {
                let encoding = Encoding::new(3, 0, 0, crm, op2);
                let listed = find(crm, op2).is_some();
                let access = Access::decode(iss(encoding, 0, true));
                let mut asked = false;
                let value = read(&access, |c, o| {
                    asked = true;
                    assert_eq!((c, o), (crm, op2));
                    0x1111_1111_1111_1111
                });
                assert_eq!(asked, listed, "{encoding}");
                assert!(value.is_some(), "{encoding} must be answered");
                if !listed {
                    assert_eq!(value, Some(0), "{encoding} reads as zero");
                }
            }
        }
        // Reserved ones and registers of hidden features, as Xen 4.17 answers them.
        for (crm, op2) in [(3, 3), (3, 7), (4, 2), (4, 4), (4, 5), (5, 1), (6, 3), (7, 3)] {
            assert_eq!(guest_reads(Encoding::new(3, 0, 0, crm, op2), u64::MAX), Some(0));
        }
    }

    #[test]
    fn writes_and_other_registers_are_not_id_reads() {
        let pfr0 = Encoding::new(3, 0, 0, 4, 0);
        assert_eq!(read(&Access::decode(iss(pfr0, 0, false)), |_, _| 1), None, "msr");
        for other in [
            Encoding::new(3, 0, 0, 0, 0), // MIDR_EL1 (CRm 0: not group 3)
            Encoding::new(3, 0, 0, 8, 0),
            Encoding::new(3, 1, 0, 4, 0),
            Encoding::new(3, 0, 1, 4, 0),
            Encoding::new(2, 0, 0, 4, 0),
            Encoding::new(3, 3, 9, 12, 0), // PMCR_EL0
        ] {
            assert_eq!(guest_reads(other, 1), None, "{other}");
        }
    }

    #[test]
    fn the_tables_name_32_registers_once_each() {
        let shown: u32 = SHOWN.iter().map(|row| row.count_ones()).sum();
        assert_eq!(shown + SANITIZED.len() as u32, 32);
        for register in SANITIZED {
            assert!((1..=7).contains(&register.crm) && register.op2 <= 7);
            assert_eq!(SHOWN[usize::from(register.crm)] >> register.op2 & 1, 0, "{register:?}");
        }
        assert_eq!(find(8, 0).map(|register| register.crm), None);
        assert_eq!(find(1, 8).map(|register| register.crm), None);
    }
}
