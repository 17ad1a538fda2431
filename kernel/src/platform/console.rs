//! The core's console: the UART the DTB names, shared by every CPU, and the `log` back end;
//! everything printed is also kept in the console ring (`console_ring.rs`, Xen's `conring`).
//!
//! Lines look like `[    1.234567] (cpu1) INFO  message`: seconds since reset from the generic
//! counter, the CPU, the level.
//!
//! # Invariants
//! - One CPU writes at a time; IRQs are masked while the lock is held, so an interrupt handler
//!   that logs cannot deadlock against the code it interrupted.
//! - The lock is re-entrant on the CPU that holds it, so a panic while printing still prints; a
//!   CPU waiting for it sleeps in WFE (`arch::lock`). A panic while the ring is being read
//!   prints without recording into it.
//! - Before [`init`] output reaches only the ring: there is no device to write to.

use core::cell::{RefCell, RefMut};
use core::fmt::{self, Write};

use spin::Once;
use xenolith_kernel::platform::console_ring::ConsoleRing;

use crate::arch::cpu::{self, IrqGuard};
use crate::arch::lock::{Mutex, ReentrantMutex};
use crate::arch::uart::Pl011;

/// The PL011's base address, once the console is up.
static UART_BASE: Once<u64> = Once::new();
/// Held while a piece of output is written; it holds the console ring.
static OUTPUT: ReentrantMutex<RefCell<ConsoleRing>> =
    ReentrantMutex::new(RefCell::new(ConsoleRing::EMPTY));

/// Bytes of console input kept until the console domain reads them; more are dropped, as Xen's
/// `serial_rx_ring` (SERIAL_RX_SIZE) does.
const INPUT_SIZE: usize = 1024;

/// Console input not yet read (`CONSOLEIO_read`): a ring of [`INPUT_SIZE`] bytes.
static INPUT: Mutex<([u8; INPUT_SIZE], usize, usize)> = Mutex::new(([0; INPUT_SIZE], 0, 0));

/// Takes every byte the UART has received into the input ring (from its interrupt); returns
/// whether any came.
pub fn receive() -> bool {
    let Some(&base) = UART_BASE.get() else { return false };
    let uart = Pl011::new(base);
    let mut input = INPUT.lock();
    let mut any = false;
    while let Some(byte) = uart.read_byte() {
        let (bytes, start, length) = &mut *input;
        if *length < INPUT_SIZE {
            bytes[(*start + *length) % INPUT_SIZE] = byte;
            *length += 1;
        }
        any = true;
    }
    any
}

/// Moves up to `out.len()` bytes of input into `out`, oldest first; returns how many.
pub fn read_input(out: &mut [u8]) -> usize {
    let mut input = INPUT.lock();
    let (bytes, start, length) = &mut *input;
    let count = out.len().min(*length);
    for (index, slot) in out[..count].iter_mut().enumerate() {
        *slot = bytes[(*start + index) % INPUT_SIZE];
    }
    *start = (*start + count) % INPUT_SIZE;
    *length -= count;
    count
}

/// Starts taking input from the console's UART on its interrupt.
pub fn enable_input() {
    if let Some(&base) = UART_BASE.get() {
        Pl011::new(base).enable_receive_interrupts();
    }
}

/// Starts the console on the PL011 at `base`.
pub fn init(base: u64) {
    UART_BASE.call_once(|| base);
}

struct Writer<'a>(Option<Pl011>, Option<RefMut<'a, ConsoleRing>>);

impl Write for Writer<'_> {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        if let Some(ring) = &mut self.1 {
            ring.put(text.as_bytes());
        }
        let Some(uart) = &self.0 else { return Ok(()) };
        for byte in text.bytes() {
            if byte == b'\n' {
                uart.write_byte(b'\r');
            }
            uart.write_byte(byte);
        }
        Ok(())
    }
}

/// Writes formatted text as one piece (no other CPU's output interleaves).
pub fn print(args: fmt::Arguments<'_>) {
    // Dropped in reverse: the lock is released before IRQs are unmasked again.
    let _irq = IrqGuard::new();
    let output = OUTPUT.lock();
    let uart = UART_BASE.get().map(|&base| Pl011::new(base));
    let _ = Writer(uart, output.try_borrow_mut().ok()).write_fmt(args);
}

/// Runs `f` on the console ring (`XEN_SYSCTL_readconsole`), no output meanwhile.
pub fn with_ring<T>(f: impl FnOnce(&mut ConsoleRing) -> T) -> T {
    let _irq = IrqGuard::new();
    let output = OUTPUT.lock();
    let result = f(&mut output.borrow_mut());
    result
}

/// The console as a [`Write`] target (each piece printed as it comes).
pub struct Console;

impl Write for Console {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        print(format_args!("{text}"));
        Ok(())
    }
}

/// Seconds and microseconds since reset, from the generic counter.
pub fn uptime() -> (u64, u64) {
    let frequency = cpu::counter_frequency().max(1);
    let ticks = cpu::counter();
    (ticks / frequency, (ticks % frequency) * 1_000_000 / frequency)
}

struct Logger;

impl log::Log for Logger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let (seconds, micros) = uptime();
        // The level's upper-case name (`ERROR`, `WARN`, ...), padded to five characters.
        print(format_args!(
            "[{seconds:5}.{micros:06}] (cpu{}) {:<5} {}\n",
            cpu::current_index(),
            record.level(),
            record.args()
        ));
    }

    fn flush(&self) {}
}

static LOGGER: Logger = Logger;

/// Makes the console the `log` back end at `level`.
pub fn init_log(level: log::LevelFilter) {
    // A second call (there is none) would keep the first logger; nothing to report.
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(level);
}
