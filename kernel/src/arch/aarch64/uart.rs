//! The Arm PL011 UART (Arm PrimeCell UART TRM DDI 0183): the core's console, its input taken
//! on the receive and receive-timeout interrupts.
//!
//! # Invariants
//! - `base` is the PL011 the DTB names, mapped as device memory (or the MMU is off) for as long as
//!   the console uses it.

use core::ptr;

const DATA: usize = 0x00;
const FLAGS: usize = 0x18;
const FLAG_TX_FULL: u32 = 1 << 5;
const FLAG_RX_EMPTY: u32 = 1 << 4;
/// UARTIMSC and UARTICR, and their receive (RX) and receive-timeout (RT) bits.
const INTERRUPT_MASK: usize = 0x38;
const INTERRUPT_CLEAR: usize = 0x44;
const RECEIVE_INTERRUPTS: u32 = (1 << 4) | (1 << 6);

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

    /// Raises its interrupt when input arrives (receive, and receive timeout for the FIFO's
    /// last bytes).
    pub fn enable_receive_interrupts(&self) {
        // SAFETY: as in `write_byte`, for IMSC.
        unsafe {
            ptr::write_volatile((self.base + INTERRUPT_MASK) as *mut u32, RECEIVE_INTERRUPTS)
        };
    }

    /// The next received byte, if any (line errors are ignored: the byte is still taken).
    pub fn read_byte(&self) -> Option<u8> {
        // SAFETY: as in `write_byte`, for FR.
        if self.receive_empty() {
            // SAFETY: as in `write_byte`, for ICR: clears a receive timeout with no data left.
            unsafe {
                ptr::write_volatile((self.base + INTERRUPT_CLEAR) as *mut u32, RECEIVE_INTERRUPTS)
            };
            // A byte that came between the check and the clear lost its interrupt with it:
            // look again, or it would wait in the FIFO for one that never comes.
            if self.receive_empty() {
                return None;
            }
        }
        // SAFETY: as in `write_byte`, for DR: reading it takes the byte from the FIFO.
        Some(unsafe { ptr::read_volatile((self.base + DATA) as *const u32) } as u8)
    }

    fn receive_empty(&self) -> bool {
        // SAFETY: as in `write_byte`, for FR.
        unsafe { ptr::read_volatile((self.base + FLAGS) as *const u32) & FLAG_RX_EMPTY != 0 }
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
