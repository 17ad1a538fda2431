//! Exceptions taken to EL2: interrupts are dispatched; everything else the core did not expect is
//! fatal and produces a full register dump before the system stops.
//!
//! # Invariants
//! - Runs on the interrupted context's stack with the frame the vector code saved; returning
//!   restores that frame.

use core::fmt::{self, Write};

use super::entry::TrapFrame;

/// Vector table offsets / 0x80: (source, kind).
const SOURCES: [&str; 4] = ["EL2t", "EL2h", "lower EL (AArch64)", "lower EL (AArch32)"];
const KINDS: [&str; 4] = ["synchronous", "IRQ", "FIQ", "SError"];

/// Exception classes (ESR_ELx.EC, Arm ARM D24.2.40) worth naming in a dump.
fn class_name(class: u64) -> &'static str {
    match class {
        0x00 => "unknown reason",
        0x01 => "WFI/WFE",
        0x0e => "illegal execution state",
        0x15 => "SVC (AArch64)",
        0x16 => "HVC (AArch64)",
        0x17 => "SMC (AArch64)",
        0x18 => "system register access",
        0x20 => "instruction abort from a lower EL",
        0x21 => "instruction abort at the current EL",
        0x22 => "PC alignment fault",
        0x24 => "data abort from a lower EL",
        0x25 => "data abort at the current EL",
        0x26 => "SP alignment fault",
        0x2f => "SError",
        0x3c => "BRK instruction",
        _ => "other",
    }
}

/// What an exception taken to EL2 is, from its vector number (0..16, the vector table's slot).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exception {
    /// IRQ or FIQ, at EL2 (idle) or from a domain.
    Interrupt,
    /// A synchronous exception from a domain (AArch64 EL1/EL0): hypercalls, faults, traps.
    Guest,
    /// An SError from a domain (an external abort it caused), or anything from AArch32 state
    /// (domains are AArch64 only): the domain is at fault, never the core.
    Foreign,
    /// Anything else: the core itself faulted.
    Unexpected,
}

/// Classifies vector `vector` of the vector table.
pub fn classify(vector: u64) -> Exception {
    match vector {
        5 | 6 | 9 | 10 => Exception::Interrupt,
        8 => Exception::Guest,
        11..=15 => Exception::Foreign,
        _ => Exception::Unexpected,
    }
}

/// What an unexpected exception was, in words: "synchronous exception from EL2h".
pub fn describe(vector: u64) -> (&'static str, &'static str) {
    (KINDS[vector as usize % 4], SOURCES[(vector as usize / 4) % 4])
}

/// Writes the register dump of an unexpected exception to `out`.
pub fn dump(out: &mut dyn Write, vector: u64, frame: &TrapFrame) -> fmt::Result {
    let class = frame.esr >> 26;
    let (kind, source) = describe(vector);
    write!(
        out,
        "(XEN) ----[ unexpected exception, vector {vector} ({kind} {source}) on CPU{} ]----\n\
         (XEN) ESR_EL2={:#018x}  EC={class:#04x} ({})  ISS={:#x}\n\
         (XEN) ELR_EL2={:#018x}  FAR_EL2={:#018x}\n\
         (XEN) SPSR_EL2={:#018x}  SP={:#018x}\n",
        super::cpu::current_index(),
        frame.esr,
        class_name(class),
        frame.esr & 0x1ff_ffff,
        frame.elr,
        frame.far,
        frame.spsr,
        frame.sp,
    )?;
    for (row, registers) in frame.x.chunks(3).enumerate() {
        out.write_str("(XEN)")?;
        for (column, value) in registers.iter().enumerate() {
            write!(out, " x{:<2}={value:#018x}", row * 3 + column)?;
        }
        out.write_str("\n")?;
    }
    Ok(())
}
