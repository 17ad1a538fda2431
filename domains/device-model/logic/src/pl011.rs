//! An SBSA generic UART / Arm PL011 for one guest: the job of Xen's `vpl011`
//! (`xen/arch/arm/vpl011.c`, `xen/arch/arm/include/asm/vpl011.h`), done in the device-model
//! domain for Linux guests without a PV console (Linux's `amba-pl011` driver, as `arm,pl011`
//! or `arm,sbsa-uart`, and `earlycon=pl011`).
//!
//! The guest's register accesses come through [`MmioDevice`]; the domain feeds the console's
//! input with [`Pl011::receive`], hands the guest's output to the console with
//! [`Pl011::transmit`], and drives the interrupt line (a level-triggered SPI, Xen's
//! `GUEST_VPL011_SPI`) with `XEN_DMOP_set_irq_level` whenever [`Pl011::level_change`] reports
//! a new level. The domain drains the transmit FIFO after every access it serves, so the
//! guest sees its bytes leave at once unless the console is backed up, when `TXFF` and `BUSY`
//! hold it back as a slow line would.
//!
//! # The registers
//! Offsets and bits are the PL011 TRM's (Arm DDI 0183, r1p5, "Summary of registers"), also in
//! Xen's `xen/arch/arm/include/asm/pl011-uart.h`. The SBSA generic UART (Arm SBSA, "Generic
//! UART") is the subset DR, RSR/ECR, FR, IMSC, RIS, MIS and ICR, the line's format and speed
//! fixed by the platform: exactly what Xen's vpl011 serves. This model serves the PL011's
//! other registers too, so that the `arm,pl011` flavour of Linux's driver can probe and set up
//! the port: ILPR, IBRD, FBRD, LCR_H, CR, IFLS and DMACR hold what is written (masked to their
//! TRM widths) and change nothing else, and the identification registers read as an r1p5
//! PL011 (which Linux's AMBA bus matches as `0x00041011`, revision 3, a 32-entry FIFO).
//!
//! # Accesses (Xen's rules, and where this model must differ)
//! - Xen (`vpl011_reg32_check_access`): every register takes 8-, 16- and 32-bit accesses at
//!   its offset, not 64-bit ones. A narrow read returns the register's low bytes
//!   (`vreg_reg32_extract` at offset 0), a narrow write replaces its low bytes
//!   (`vreg_reg32_update`; for ICR, clears the bits given, `vreg_reg32_clearbits`). This
//!   model does the same (Linux's `arm,pl011` driver uses 16-bit accesses, `earlycon` byte
//!   writes to DR).
//! - Xen refuses a 64-bit access and any offset it does not serve (a reserved offset, or one
//!   inside a register) by injecting a data abort. An IOREQ server cannot (see
//!   [`crate::ioreq`]): here a refused read answers all ones, a refused write is ignored, and
//!   both carry a [`Note`] ([`Note::BadWidth`], [`Note::NoRegister`]).
//! - FR, RIS and MIS are read-only: Xen ignores writes to them (`write_ignore`), as this model
//!   does, reporting [`Note::ReadOnly`] (also for the identification registers). ICR is
//!   write-only: Xen aborts a read; here it answers all ones with [`Note::WriteOnly`].
//! - Writing DR with the transmit FIFO full drops the byte (Xen: "silently dropped", logged):
//!   [`Note::TransmitFull`]. Reading DR with the receive FIFO empty returns 0 (Xen: 0,
//!   logged): [`Note::ReceiveEmpty`].
//!
//! # FIFOs and interrupts
//! Both FIFOs hold [`FIFO_SIZE`] bytes (TRM r1p5; Xen's `SBSA_UART_FIFO_SIZE`), always enabled
//! (`LCR_H.FEN` is kept but not obeyed, as Xen, which ignores LCR_H). `CR`'s enables are kept
//! but not obeyed either: Xen's vpl011 ignores CR, and `earlycon=pl011` writes before anyone
//! sets `UARTEN`. Flag bits follow the FIFOs (TRM, UARTFR): `RXFE` empty receive FIFO, `RXFF`
//! full, `TXFE` empty transmit FIFO, `TXFF` full, `BUSY` while the transmit FIFO holds a byte;
//! modem inputs read 0. The raw interrupt bits (TRM, "Interrupts"; Xen's
//! `vpl011_read_data`, `vpl011_data_avail`, `vpl011_update_tx_fifo_status`):
//! - RX (bit 4) is set when input brings the receive FIFO to its trigger level (IFLS
//!   RXIFLSEL: 1/8, 1/4, 1/2, 3/4 or 7/8 of the FIFO; reset 1/2, the level Xen fixes), and
//!   cleared when reading DR takes the FIFO below it, or by ICR.
//! - RT (bit 6), the receive timeout, is set whenever input arrives (no line timing is
//!   emulated, as in Xen) and cleared when the receive FIFO empties, or by ICR. Linux clears
//!   neither RX nor RT through ICR: it reads until `RXFE`.
//! - TX (bit 5) is set when a write to DR leaves the transmit FIFO at or below its trigger
//!   level (IFLS TXIFLSEL) or draining brings it there, cleared when a write leaves it above,
//!   or by ICR.
//! - The error and modem bits are never raised (no line errors, no modem lines).
//!
//! MIS is RIS & IMSC, and the interrupt line's level is MIS ≠ 0: the PL011's `UARTINTR`, a
//! level the domain sets through `XEN_DMOP_set_irq_level`, rather than the edge Xen's old
//! vGIC injects when a new MIS bit appears.
//!
//! # Invariants
//! - No register access, input or output, in any order, panics; a value read fits in 32
//!   bits, except a refused read's all ones.
//! - FR always describes the FIFOs; [`Pl011::level`] is always RIS & IMSC ≠ 0.
//! - Input is never lost: [`Pl011::receive`] takes what fits and leaves the rest to the
//!   caller. Output is lost only when the guest writes to a full FIFO ([`Note::TransmitFull`]).

use crate::ioreq::{MmioDevice, Note, Reply, Width};

/// Depth of each FIFO: 32 entries (PL011 TRM r1p5, "UART operation"; Xen's
/// `SBSA_UART_FIFO_SIZE`).
pub const FIFO_SIZE: usize = 32;

/// Size of the UART's MMIO frame (`GUEST_PL011_SIZE`, `xen/include/public/arch-arm.h`).
pub const FRAME_SIZE: u64 = xenolith_abi::xen::arch_arm::GUEST_PL011_SIZE;

/// UARTDR, data (TRM; Xen `DR`): a read takes a byte from the receive FIFO (bits 11:8 are its
/// error flags, always 0 here), a write puts bits 7:0 in the transmit FIFO.
pub const DR: u64 = 0x000;
/// UARTRSR/UARTECR, receive status / error clear (TRM; Xen `RSR`): reads 0 (no errors), a
/// write clears them (nothing to clear).
pub const RSR: u64 = 0x004;
/// UARTFR, flags (TRM; Xen `FR`), read-only.
pub const FR: u64 = 0x018;
/// UARTILPR, IrDA low-power counter (TRM), 8 bits, kept.
pub const ILPR: u64 = 0x020;
/// UARTIBRD, integer baud-rate divisor (TRM), 16 bits, kept.
pub const IBRD: u64 = 0x024;
/// UARTFBRD, fractional baud-rate divisor (TRM), 6 bits, kept.
pub const FBRD: u64 = 0x028;
/// UARTLCR_H, line control (TRM), 8 bits, kept.
pub const LCR_H: u64 = 0x02c;
/// UARTCR, control (TRM), 16 bits, kept; reset 0x300 (TXE, RXE).
pub const CR: u64 = 0x030;
/// UARTIFLS, FIFO interrupt levels (TRM), 6 bits: TXIFLSEL 2:0, RXIFLSEL 5:3; reset 0x12.
pub const IFLS: u64 = 0x034;
/// UARTIMSC, interrupt mask set/clear (TRM; Xen `IMSC`), 11 bits: a 1 enables the interrupt.
pub const IMSC: u64 = 0x038;
/// UARTRIS, raw interrupt status (TRM; Xen `RIS`), read-only.
pub const RIS: u64 = 0x03c;
/// UARTMIS, masked interrupt status, RIS & IMSC (TRM; Xen `MIS`), read-only.
pub const MIS: u64 = 0x040;
/// UARTICR, interrupt clear (TRM; Xen `ICR`), write-only: a 1 clears the RIS bit.
pub const ICR: u64 = 0x044;
/// UARTDMACR, DMA control (TRM), 3 bits, kept (no DMA is emulated).
pub const DMACR: u64 = 0x048;
/// UARTPeriphID0, the first of the identification registers, 0xfe0..=0xffc (TRM): four
/// PeriphID then four PCellID registers, each one byte in bits 7:0.
pub const PERIPH_ID0: u64 = 0xfe0;

/// The identification bytes at 0xfe0, 0xfe4, ..., 0xffc (PL011 TRM r1p5): PeriphID0-3
/// `0x11 0x10 0x34 0x00` (part 0x011, designer 0x41 Arm, revision 3), PCellID0-3
/// `0x0d 0xf0 0x05 0xb1` (the PrimeCell id `0xb105f00d`).
pub const ID_BYTES: [u8; 8] = [0x11, 0x10, 0x34, 0x00, 0x0d, 0xf0, 0x05, 0xb1];

/// UARTFR `TXFE`, transmit FIFO empty (Xen `TXFE`).
pub const FR_TXFE: u32 = 1 << 7;
/// UARTFR `RXFF`, receive FIFO full (Xen `RXFF`).
pub const FR_RXFF: u32 = 1 << 6;
/// UARTFR `TXFF`, transmit FIFO full (Xen `TXFF`).
pub const FR_TXFF: u32 = 1 << 5;
/// UARTFR `RXFE`, receive FIFO empty (Xen `RXFE`).
pub const FR_RXFE: u32 = 1 << 4;
/// UARTFR `BUSY`, transmitting (Xen `BUSY`).
pub const FR_BUSY: u32 = 1 << 3;

/// Interrupt bit 4, receive (`RXIM`/`RXRIS`/`RXMIS`/`RXIC`; Xen `RXI`).
pub const INT_RX: u32 = 1 << 4;
/// Interrupt bit 5, transmit (Xen `TXI`).
pub const INT_TX: u32 = 1 << 5;
/// Interrupt bit 6, receive timeout (Xen `RTI`).
pub const INT_RT: u32 = 1 << 6;
/// The 11 interrupt bits, 10:0 (overrun, break, parity, framing, timeout, TX, RX and the four
/// modem interrupts; Xen `ALLI`).
pub const INT_ALL: u32 = 0x7ff;

/// CR at reset: `TXE` and `RXE` set, `UARTEN` clear (TRM, UARTCR).
const CR_RESET: u32 = 0x300;
/// IFLS at reset: both FIFOs at 1/2 (TRM, UARTIFLS).
const IFLS_RESET: u32 = 0x12;

/// A FIFO of [`FIFO_SIZE`] bytes.
#[derive(Clone, Debug, Default)]
struct Fifo {
    bytes: [u8; FIFO_SIZE],
    head: usize,
    len: usize,
}

impl Fifo {
    fn is_full(&self) -> bool {
        self.len == FIFO_SIZE
    }

    /// Appends `byte`; false if the FIFO is full.
    fn push(&mut self, byte: u8) -> bool {
        if self.is_full() {
            return false;
        }
        self.bytes[(self.head + self.len) % FIFO_SIZE] = byte;
        self.len += 1;
        true
    }

    fn front(&self) -> Option<u8> {
        (self.len > 0).then(|| self.bytes[self.head])
    }

    fn pop(&mut self) -> Option<u8> {
        let byte = self.front()?;
        self.head = (self.head + 1) % FIFO_SIZE;
        self.len -= 1;
        Some(byte)
    }
}

/// The FIFO level an IFLS field (3 bits) selects: 1/8, 1/4, 1/2, 3/4 or 7/8 of the FIFO
/// (TRM, UARTIFLS); the reserved values 5-7 are taken as 1/2.
fn trigger_level(field: u32) -> usize {
    match field & 7 {
        0 => FIFO_SIZE / 8,
        1 => FIFO_SIZE / 4,
        3 => FIFO_SIZE * 3 / 4,
        4 => FIFO_SIZE * 7 / 8,
        _ => FIFO_SIZE / 2,
    }
}

/// `old` with its low `width` bytes replaced by `value`'s (Xen's `vreg_reg32_update` at
/// offset 0), cut to `mask`.
fn update(old: u32, width: Width, value: u64, mask: u32) -> u32 {
    let low = width.mask() as u32;
    ((old & !low) | (value as u32 & low)) & mask
}

/// One emulated UART: its registers and FIFOs, at reset as the TRM gives it.
#[derive(Clone, Debug)]
pub struct Pl011 {
    rx: Fifo,
    tx: Fifo,
    ris: u32,
    imsc: u32,
    ilpr: u32,
    ibrd: u32,
    fbrd: u32,
    lcr_h: u32,
    cr: u32,
    ifls: u32,
    dmacr: u32,
    /// The level last returned by [`Pl011::level_change`].
    reported_level: bool,
}

impl Default for Pl011 {
    fn default() -> Self {
        Self::new()
    }
}

impl Pl011 {
    /// A UART at reset: FIFOs empty, no interrupt raised or enabled, CR 0x300, IFLS 0x12.
    pub fn new() -> Self {
        Self {
            rx: Fifo::default(),
            tx: Fifo::default(),
            ris: 0,
            imsc: 0,
            ilpr: 0,
            ibrd: 0,
            fbrd: 0,
            lcr_h: 0,
            cr: CR_RESET,
            ifls: IFLS_RESET,
            dmacr: 0,
            reported_level: false,
        }
    }

    /// UARTFR, from the FIFOs.
    pub fn flags(&self) -> u32 {
        let mut flags = 0;
        if self.rx.len == 0 {
            flags |= FR_RXFE;
        }
        if self.rx.is_full() {
            flags |= FR_RXFF;
        }
        if self.tx.len == 0 {
            flags |= FR_TXFE;
        } else {
            flags |= FR_BUSY;
        }
        if self.tx.is_full() {
            flags |= FR_TXFF;
        }
        flags
    }

    /// UARTRIS.
    pub fn raw_interrupts(&self) -> u32 {
        self.ris
    }

    /// UARTMIS: RIS & IMSC.
    pub fn masked_interrupts(&self) -> u32 {
        self.ris & self.imsc
    }

    /// The interrupt line: high while any enabled interrupt is raised (`UARTINTR`).
    pub fn level(&self) -> bool {
        self.masked_interrupts() != 0
    }

    /// The line's level if it changed since the last call (the first call compares with
    /// low): the domain then calls `XEN_DMOP_set_irq_level` with it.
    pub fn level_change(&mut self) -> Option<bool> {
        let level = self.level();
        (level != self.reported_level).then(|| {
            self.reported_level = level;
            level
        })
    }

    /// Bytes waiting in the transmit FIFO.
    pub fn pending_output(&self) -> usize {
        self.tx.len
    }

    /// Room in the receive FIFO.
    pub fn input_room(&self) -> usize {
        FIFO_SIZE - self.rx.len
    }

    /// Puts the console's input in the receive FIFO: as many bytes of `bytes` as fit, in
    /// order; returns how many (the caller keeps the rest for later). Raises RT if any byte
    /// arrived, and RX if the FIFO reached its trigger level.
    pub fn receive(&mut self, bytes: &[u8]) -> usize {
        let taken = bytes.iter().take_while(|&&byte| self.rx.push(byte)).count();
        if taken > 0 {
            self.ris |= INT_RT;
            if self.rx.len >= trigger_level(self.ifls >> 3) {
                self.ris |= INT_RX;
            }
        }
        taken
    }

    /// Hands the transmit FIFO's bytes, oldest first, to `sink`, until it refuses one
    /// (returns false: the console is full; the byte stays); returns how many it took. Raises
    /// TX if the FIFO drained to its trigger level.
    pub fn transmit(&mut self, mut sink: impl FnMut(u8) -> bool) -> usize {
        let mut sent = 0;
        while let Some(byte) = self.tx.front() {
            if !sink(byte) {
                break;
            }
            self.tx.pop();
            sent += 1;
        }
        if sent > 0 && self.tx.len <= trigger_level(self.ifls) {
            self.ris |= INT_TX;
        }
        sent
    }

    /// A read of DR: the oldest received byte, lowering RT when the FIFO empties and RX when
    /// it falls below its trigger level (Xen's `vpl011_read_data`).
    fn read_data(&mut self) -> Reply {
        let Some(byte) = self.rx.pop() else {
            return Reply { data: 0, note: Some(Note::ReceiveEmpty) };
        };
        if self.rx.len == 0 {
            self.ris &= !INT_RT;
        }
        if self.rx.len < trigger_level(self.ifls >> 3) {
            self.ris &= !INT_RX;
        }
        Reply::value(u64::from(byte))
    }

    /// A write of DR: the byte to the transmit FIFO; TX follows the FIFO's level (Xen's
    /// `vpl011_write_data`, `vpl011_update_tx_fifo_status`).
    fn write_data(&mut self, byte: u8) -> Option<Note> {
        if !self.tx.push(byte) {
            return Some(Note::TransmitFull);
        }
        if self.tx.len <= trigger_level(self.ifls) {
            self.ris |= INT_TX;
        } else {
            self.ris &= !INT_TX;
        }
        None
    }

    /// The read-write register at `offset` other than IMSC, and its TRM width.
    fn plain_register(&mut self, offset: u64) -> Option<(&mut u32, u32)> {
        Some(match offset {
            ILPR => (&mut self.ilpr, 0xff),
            IBRD => (&mut self.ibrd, 0xffff),
            FBRD => (&mut self.fbrd, 0x3f),
            LCR_H => (&mut self.lcr_h, 0xff),
            CR => (&mut self.cr, 0xffff),
            IFLS => (&mut self.ifls, 0x3f),
            DMACR => (&mut self.dmacr, 0x7),
            _ => return None,
        })
    }
}

/// Whether `offset` is one of the identification registers; which one.
fn id_index(offset: u64) -> Option<usize> {
    let index = offset.checked_sub(PERIPH_ID0)? / 4;
    (offset.is_multiple_of(4) && index < 8).then_some(index as usize)
}

impl MmioDevice for Pl011 {
    fn read(&mut self, offset: u64, width: Width) -> Reply {
        let known = matches!(offset, DR | RSR | FR | IMSC | RIS | MIS | ICR)
            || self.plain_register(offset).is_some()
            || id_index(offset).is_some();
        if !known {
            return Reply::refused(Note::NoRegister);
        }
        if width == Width::Double {
            return Reply::refused(Note::BadWidth);
        }
        let value = match offset {
            DR => return self.read_data(),
            RSR => 0,
            FR => self.flags(),
            IMSC => self.imsc,
            RIS => self.ris,
            MIS => self.masked_interrupts(),
            ICR => return Reply::refused(Note::WriteOnly),
            _ => match (id_index(offset), self.plain_register(offset)) {
                (Some(index), _) => u32::from(ID_BYTES[index]),
                (None, Some((register, _))) => *register,
                (None, None) => return Reply::refused(Note::NoRegister),
            },
        };
        Reply::value(u64::from(value))
    }

    fn write(&mut self, offset: u64, width: Width, value: u64) -> Option<Note> {
        if matches!(offset, FR | RIS | MIS) || id_index(offset).is_some() {
            return Some(Note::ReadOnly);
        }
        let known =
            matches!(offset, DR | RSR | IMSC | ICR) || self.plain_register(offset).is_some();
        if !known {
            return Some(Note::NoRegister);
        }
        if width == Width::Double {
            return Some(Note::BadWidth);
        }
        match offset {
            DR => return self.write_data(value as u8),
            RSR => {}
            IMSC => self.imsc = update(self.imsc, width, value, INT_ALL),
            ICR => self.ris &= !(value as u32 & width.mask() as u32 & INT_ALL),
            _ => {
                if let Some((register, mask)) = self.plain_register(offset) {
                    *register = update(*register, width, value, mask);
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Linux's `UART011_*` interrupt names for the bits the driver writes.
    const OEIS: u32 = 1 << 10;
    const BEIS: u32 = 1 << 9;
    const PEIS: u32 = 1 << 8;
    const FEIS: u32 = 1 << 7;

    fn read32(uart: &mut Pl011, offset: u64) -> u32 {
        let reply = uart.read(offset, Width::Word);
        assert_eq!(reply.note, None, "read of {offset:#x}");
        reply.data as u32
    }

    fn read16(uart: &mut Pl011, offset: u64) -> u32 {
        let reply = uart.read(offset, Width::Half);
        assert_eq!(reply.note, None, "read of {offset:#x}");
        (reply.data & 0xffff) as u32
    }

    fn write16(uart: &mut Pl011, offset: u64, value: u32) {
        assert_eq!(uart.write(offset, Width::Half, u64::from(value & 0xffff)), None);
    }

    /// A console that takes everything.
    fn drain(uart: &mut Pl011) -> Vec<u8> {
        let mut out = Vec::new();
        uart.transmit(|byte| {
            out.push(byte);
            true
        });
        out
    }

    /// Linux's AMBA bus (`amba_read_periphid`-style probing): one byte from each of the
    /// eight registers at 0xfe0..=0xffc, assembled into the peripheral and cell ids; the
    /// `amba-pl011` driver matches `0x00041011` under mask `0x000fffff` and sizes its FIFO
    /// from the revision (bits 23:20; 3 and up: 32 entries).
    #[test]
    fn linux_probes_the_identification_registers() {
        let mut uart = Pl011::new();
        let mut pid = 0u32;
        let mut cid = 0u32;
        for i in 0..4 {
            pid |= (read32(&mut uart, 0xfe0 + 4 * i) & 0xff) << (8 * i);
            cid |= (read32(&mut uart, 0xff0 + 4 * i) & 0xff) << (8 * i);
        }
        assert_eq!(cid, 0xb105_f00d);
        assert_eq!(pid & 0x000f_ffff, 0x0004_1011);
        assert_eq!((pid >> 20) & 0xf, 3);
        assert_eq!(uart.write(0xfe8, Width::Word, 0), Some(Note::ReadOnly));
        assert_eq!(read32(&mut uart, 0xfe8), 0x34);
    }

    /// `pl011_hwinit` and `pl011_startup` with 16-bit accesses (the `arm,pl011` flavour):
    /// clear the error and receive interrupts, save IMSC, set IFLS and CR, drain the receive
    /// FIFO until `RXFE`, then enable RX and RT. A byte typed before the driver started is
    /// drained, not delivered twice; one typed after raises the line.
    #[test]
    fn linux_starts_the_port() {
        let mut uart = Pl011::new();
        assert_eq!(read32(&mut uart, FR), FR_TXFE | FR_RXFE);
        assert_eq!((read32(&mut uart, CR), read32(&mut uart, IFLS)), (0x300, 0x12));
        uart.receive(b"x");
        write16(&mut uart, ICR, OEIS | BEIS | PEIS | FEIS | INT_RT | INT_RX);
        assert_eq!(read16(&mut uart, IMSC), 0);
        write16(&mut uart, IBRD, 13);
        write16(&mut uart, FBRD, 1);
        write16(&mut uart, LCR_H, 0x70);
        write16(&mut uart, IFLS, 0x12);
        write16(&mut uart, CR, 0x301);
        let mut drained = Vec::new();
        for _ in 0..2 * FIFO_SIZE {
            if read16(&mut uart, FR) & FR_RXFE != 0 {
                break;
            }
            drained.push(read16(&mut uart, DR) as u8);
        }
        assert_eq!(drained, b"x");
        write16(&mut uart, IMSC, INT_RT | INT_RX);
        assert!(!uart.level());
        assert_eq!(uart.level_change(), None);
        assert_eq!(
            [IBRD, FBRD, LCR_H, CR].map(|offset| read32(&mut uart, offset)),
            [13, 1, 0x70, 0x301]
        );
        uart.receive(b"y");
        assert_eq!(uart.level_change(), Some(true));
    }

    /// `earlycon=pl011` and the console's `pl011_console_putchar`: wait while `TXFF`, write the
    /// byte (a byte store; the register's other bits in the store are not data), wait while
    /// `BUSY`. With the domain draining after each access the bytes come out in order; with
    /// the console backed up, `TXFF` holds the guest after 32 bytes, and a byte written
    /// anyway is dropped and reported.
    #[test]
    fn earlycon_writes_with_flag_polling() {
        let mut uart = Pl011::new();
        let mut out = Vec::new();
        for &byte in b"Booting Linux on physical CPU 0x0\n" {
            assert_eq!(read32(&mut uart, FR) & FR_TXFF, 0);
            assert_eq!(uart.write(DR, Width::Byte, u64::from(byte)), None);
            assert_ne!(read32(&mut uart, FR) & FR_BUSY, 0);
            out.extend(drain(&mut uart));
            assert_eq!(read32(&mut uart, FR) & (FR_BUSY | FR_TXFE), FR_TXFE);
        }
        assert_eq!(out, b"Booting Linux on physical CPU 0x0\n");

        for byte in 0..FIFO_SIZE as u64 {
            assert_eq!(read32(&mut uart, FR) & FR_TXFF, 0);
            assert_eq!(uart.write(DR, Width::Word, 0x100 | byte), None);
            assert_eq!(uart.transmit(|_| false), 0);
        }
        assert_eq!(read32(&mut uart, FR), FR_TXFF | FR_BUSY | FR_RXFE);
        assert_eq!(uart.write(DR, Width::Byte, 0xff), Some(Note::TransmitFull));
        assert_eq!(uart.pending_output(), FIFO_SIZE);
        let mut room = 5u32;
        let console_with_room = |_: u8| {
            let take = room > 0;
            room = room.saturating_sub(1);
            take
        };
        assert_eq!(uart.transmit(console_with_room), 5);
        assert_eq!(read32(&mut uart, FR) & (FR_TXFF | FR_BUSY), FR_BUSY);
        assert_eq!(drain(&mut uart), (5..FIFO_SIZE as u8).collect::<Vec<_>>());
        assert_eq!(read32(&mut uart, FR), FR_TXFE | FR_RXFE);
    }

    /// Interrupt-driven transmit as `pl011_start_tx_pio` does it: fill while not `TXFF`, enable
    /// TX; when the FIFO drains to its level, TX raises the line; the handler writes the rest,
    /// then masks TX (`pl011_stop_tx`), which lowers the line.
    #[test]
    fn transmit_interrupt() {
        let mut uart = Pl011::new();
        for byte in 0..20u64 {
            uart.write(DR, Width::Half, byte);
        }
        assert_eq!(uart.raw_interrupts() & INT_TX, 0, "20 bytes are above the 1/2 level");
        write16(&mut uart, IMSC, INT_TX);
        assert_eq!(uart.level_change(), None);
        drain(&mut uart);
        assert_eq!(read32(&mut uart, MIS), INT_TX);
        assert_eq!(uart.level_change(), Some(true));
        uart.write(DR, Width::Half, u64::from(b'z'));
        assert!(uart.level(), "one byte is at or below the level: TX stays raised");
        write16(&mut uart, IMSC, 0);
        assert_eq!(uart.level_change(), Some(false));
        assert_eq!(read32(&mut uart, RIS), INT_TX);
        write16(&mut uart, ICR, INT_TX);
        assert_eq!(read32(&mut uart, RIS), 0);
    }

    /// Interrupt-driven receive as `pl011_int` and `pl011_fifo_to_tty` do it: RT raises the
    /// line for any input, RX once the FIFO reaches its level; the handler reads `RIS & im`,
    /// acknowledges what is not RX/RT through ICR, reads DR until `RXFE`, and the line falls
    /// with the last byte. Input beyond the FIFO stays with the caller, `RXFF` set meanwhile.
    #[test]
    fn receive_with_interrupts() {
        let mut uart = Pl011::new();
        write16(&mut uart, IMSC, INT_RT | INT_RX);
        assert_eq!(uart.receive(b"ls\r"), 3);
        assert_eq!(read32(&mut uart, RIS), INT_RT);
        assert_eq!(uart.level_change(), Some(true));

        let input: Vec<u8> = (0..40).collect();
        let mut typed = b"ls\r".to_vec();
        typed.extend(&input[..FIFO_SIZE - 3]);
        assert_eq!(uart.receive(&input), FIFO_SIZE - 3);
        assert_eq!(read32(&mut uart, FR), FR_RXFF | FR_TXFE);
        assert_eq!(read32(&mut uart, MIS), INT_RT | INT_RX);

        let mut got = Vec::new();
        while uart.level() {
            let status = read32(&mut uart, RIS) & read32(&mut uart, IMSC);
            write16(&mut uart, ICR, status & !(INT_TX | INT_RT | INT_RX));
            while read16(&mut uart, FR) & FR_RXFE == 0 {
                got.push(read16(&mut uart, DR) as u8);
                let below_level = uart.rx.len < FIFO_SIZE / 2;
                assert_eq!(read32(&mut uart, RIS) & INT_RX == 0, below_level, "{}", got.len());
                assert_eq!(read32(&mut uart, RIS) & INT_RT == 0, uart.rx.len == 0);
            }
        }
        assert_eq!(got, typed);
        assert_eq!(uart.level_change(), Some(false));
        assert_eq!(uart.read(DR, Width::Word), Reply { data: 0, note: Some(Note::ReceiveEmpty) });
    }

    /// The receive level follows IFLS: at 1/8 (4 bytes) the fourth byte raises RX.
    #[test]
    fn receive_level_follows_ifls() {
        let mut uart = Pl011::new();
        write16(&mut uart, IFLS, 0);
        uart.receive(b"abc");
        assert_eq!(read32(&mut uart, RIS), INT_RT);
        uart.receive(b"d");
        assert_eq!(read32(&mut uart, RIS), INT_RT | INT_RX);
        read32(&mut uart, DR);
        assert_eq!(read32(&mut uart, RIS), INT_RT);
    }

    /// The line is RIS & IMSC: masking lowers it with RIS unchanged, unmasking raises it
    /// again, ICR lowers it for good; `level_change` reports each change once.
    #[test]
    fn level_follows_ris_and_imsc() {
        let mut uart = Pl011::new();
        uart.receive(b"q");
        assert_eq!((read32(&mut uart, RIS), read32(&mut uart, MIS)), (INT_RT, 0));
        assert!(!uart.level());
        assert_eq!(uart.level_change(), None);
        write16(&mut uart, IMSC, INT_RT);
        assert_eq!(read32(&mut uart, MIS), INT_RT);
        assert_eq!(uart.level_change(), Some(true));
        assert_eq!(uart.level_change(), None);
        write16(&mut uart, IMSC, INT_TX);
        assert_eq!((read32(&mut uart, RIS), read32(&mut uart, MIS)), (INT_RT, 0));
        assert_eq!(uart.level_change(), Some(false));
        write16(&mut uart, IMSC, INT_RT | INT_TX);
        assert_eq!(uart.level_change(), Some(true));
        write16(&mut uart, ICR, INT_RT);
        assert_eq!((read32(&mut uart, RIS), uart.level()), (0, false));
        assert_eq!(uart.level_change(), Some(false));
    }

    /// Narrow accesses act on the register's low bytes (Xen's `vreg_reg32_*`): a byte write
    /// of IMSC keeps bits 10:8, a byte write of ICR clears only low bits, a byte read of CR
    /// gives its low byte (the ioreq side cuts it).
    #[test]
    fn narrow_accesses_touch_the_low_bytes() {
        let mut uart = Pl011::new();
        uart.write(IMSC, Width::Word, 0xffff_ffff);
        assert_eq!(read32(&mut uart, IMSC), INT_ALL);
        uart.write(IMSC, Width::Byte, 0x10);
        assert_eq!(read32(&mut uart, IMSC), 0x710);
        uart.write(CR, Width::Word, 0x1_0301);
        assert_eq!(read32(&mut uart, CR), 0x301);
        assert_eq!(uart.read(CR, Width::Byte).data & 0xff, 0x01);
        uart.receive(b"1");
        uart.write(DR, Width::Byte, 0);
        assert_eq!(read32(&mut uart, RIS), INT_RT | INT_TX);
        uart.write(ICR, Width::Byte, u64::from(INT_TX));
        assert_eq!(read32(&mut uart, RIS), INT_RT);
    }

    /// What Xen would abort is refused with a note and changes nothing: 64-bit accesses,
    /// reserved offsets and offsets inside a register, reads of ICR, writes to FR, RIS, MIS
    /// and the identification registers.
    #[test]
    fn refusals_are_reported_and_change_nothing() {
        let mut uart = Pl011::new();
        uart.receive(b"r");
        write16(&mut uart, IMSC, INT_RT);
        let before = (uart.flags(), uart.raw_interrupts(), uart.imsc, uart.rx.len);
        for offset in [DR, RSR, FR, IBRD, CR, IMSC, RIS, ICR, DMACR, 0xfe0, 0xffc] {
            let expected = if matches!(offset, FR | RIS) || offset >= 0xfe0 {
                Note::ReadOnly
            } else {
                Note::BadWidth
            };
            assert_eq!(uart.read(offset, Width::Double), Reply::refused(Note::BadWidth));
            assert_eq!(uart.write(offset, Width::Double, 0), Some(expected), "{offset:#x}");
        }
        for offset in [0x001, 0x008, 0x01c, 0x04c, 0x100, 0xfdc, 0xfe1, 0x1000, u64::MAX] {
            for width in [Width::Byte, Width::Word] {
                assert_eq!(uart.read(offset, width), Reply::refused(Note::NoRegister));
                assert_eq!(uart.write(offset, width, 0x7ff), Some(Note::NoRegister));
            }
        }
        assert_eq!(uart.read(ICR, Width::Word), Reply::refused(Note::WriteOnly));
        for offset in [FR, RIS, MIS] {
            assert_eq!(uart.write(offset, Width::Word, 0x7ff), Some(Note::ReadOnly));
        }
        assert_eq!(before, (uart.flags(), uart.raw_interrupts(), uart.imsc, uart.rx.len));
        assert_eq!(read32(&mut uart, RSR), 0);
        assert_eq!(uart.write(RSR, Width::Word, 0xf), None);
    }
}
