//! The Arm PL011 UART (Arm PrimeCell UART TRM DDI 0183), transmit only: the core's console.
//!
//! # Invariants
//! - `base` is the PL011 the DTB names, mapped as device memory (or the MMU is off) for as long as
//!   the console uses it.

use core::ptr;

const DATA: usize = 0x00;
const FLAGS: usize = 0x18;
const FLAG_TX_FULL: u32 = 1 << 5;

/// A PL011 the console writes to.
#[derive(Clone, Copy, Debug)]
pub struct Pl011 {
    base: usize,
}

impl Pl011 {
    /// A PL011 at physical (and virtual: the core maps devices 1:1) address `base`.
    pub const fn new(base: u64) -> Self {
        Self { base: base as usize }
    }

    /// Writes one byte, waiting while the transmit FIFO is full.
    pub fn write_byte(&self, byte: u8) {
        // SAFETY: `base` is a PL011 register block, device-mapped (module invariant); FR is a
        // 32-bit register within it, and volatile access is how device registers are used.
        while unsafe { ptr::read_volatile((self.base + FLAGS) as *const u32) } & FLAG_TX_FULL != 0 {
        }
        // SAFETY: as above, for DR.
        unsafe { ptr::write_volatile((self.base + DATA) as *mut u32, u32::from(byte)) };
    }
}
