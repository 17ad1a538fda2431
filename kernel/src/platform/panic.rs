//! Stopping the system: the panic handler and the path every fatal error takes.
//!
//! The CPU that stops the system prints why, asks every other CPU to stop (they print that they did
//! and halt), then does what `on_panic=` says: halt (the default), power off, or reset.
//!
//! # Invariants
//! - Only the first CPU to stop the system sends the stop request; a CPU that panics while the
//!   system is stopping only halts.

use core::fmt;
use core::sync::atomic::{AtomicBool, Ordering};

use spin::Once;

use xenolith_kernel::platform::cmdline::OnPanic;

use crate::arch;
use crate::platform::console;

static STOPPING: AtomicBool = AtomicBool::new(false);
/// Set once at boot; read without waiting (`Once::get`), so a panic anywhere can read it.
static ON_PANIC: Once<OnPanic> = Once::new();

/// Records what a stop ends in (from `on_panic=`); until then a stop halts.
pub fn set_on_panic(action: OnPanic) {
    ON_PANIC.call_once(|| action);
}

/// Whether the system is stopping (other CPUs check this when asked to stop).
pub fn stopping() -> bool {
    STOPPING.load(Ordering::Acquire)
}

/// Prints `reason`, stops every CPU and ends as `on_panic=` says. Never returns.
pub fn stop_system(reason: fmt::Arguments<'_>) -> ! {
    let first = !STOPPING.swap(true, Ordering::AcqRel);
    let cpu = arch::cpu::current_index();
    console::print(format_args!("\n(XEN) ****************************************\n"));
    console::print(format_args!("(XEN) PANIC on CPU{cpu}: {reason}\n"));
    console::print(format_args!("(XEN) ****************************************\n"));
    if !first {
        arch::cpu::halt();
    }
    arch::smp::stop_other_cpus();
    match ON_PANIC.get() {
        Some(OnPanic::Poweroff) => {
            console::print(format_args!("(XEN) powering off (on_panic=poweroff)\n"));
            arch::power::off();
        }
        Some(OnPanic::Reboot) => {
            console::print(format_args!("(XEN) resetting (on_panic=reboot)\n"));
            arch::power::reset();
        }
        Some(OnPanic::Halt) | None => {
            console::print(format_args!("(XEN) system halted (on_panic=halt)\n"))
        }
    }
    arch::cpu::halt()
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    match info.location() {
        Some(location) => stop_system(format_args!(
            "{}\n(XEN) at {}:{}:{}",
            info.message(),
            location.file(),
            location.line(),
            location.column()
        )),
        None => stop_system(format_args!("{}", info.message())),
    }
}
