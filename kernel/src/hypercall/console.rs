//! `__HYPERVISOR_console_io` (`xen/include/public/xen.h`): a domain writes lines to the
//! hypervisor console, each shown as `(dN) line`.

use core::sync::atomic::{AtomicU64, Ordering};

use xenolith_abi::xen::console;
use xenolith_abi::xen::errno::XenError;
use xenolith_abi::xen::private::{self, XENOLITH_CONSOLE_LINE_MAX};
use xenolith_kernel::policy::Operation;

use super::Outcome;
use crate::domain::Caller;
use crate::mm::guest_access::GuestMemory;

/// The most bytes one `CONSOLEIO_write` prints before it continues itself.
const CONSOLE_WRITE_MAX: usize = 4096;

/// The highest sequence number `XENOLITH_CONSOLEIO_WRITE_LINE` wrote; kept here, not in the
/// console domain, so that it survives that domain's restarts.
static LAST_LINE: AtomicU64 = AtomicU64::new(0);

pub fn console_io(args: [u64; 5], caller: &mut Caller<'_>) -> Result<Outcome, XenError> {
    match args[0] as u32 {
        console::CONSOLEIO_write => {
            // Xen's `guest_console_write` takes `count` as an unsigned int and writes all of
            // it, continuing itself; a fault anywhere is -EFAULT (what came before is printed).
            let total = args[1] as u32 as usize;
            let count = total.min(CONSOLE_WRITE_MAX);
            let mut buffer = [0u8; CONSOLE_WRITE_MAX];
            GuestMemory.read(args[2], &mut buffer[..count])?;
            for line in buffer[..count].split(|&byte| byte == b'\n').filter(|l| !l.is_empty()) {
                let line = core::str::from_utf8(line).unwrap_or("<non-UTF-8 output>");
                crate::platform::console::print(format_args!(
                    "(d{}) {}\n",
                    caller.domain,
                    line.trim_end_matches('\r')
                ));
            }
            if count < total {
                let rest = (total - count) as u64;
                return Ok(Outcome::Continue([args[0], rest, args[2] + count as u64]));
            }
            Ok(Outcome::Return(0))
        }
        console::CONSOLEIO_read => {
            // A count that would not fit the (int) result is -E2BIG (Xen checks it first).
            if args[1] as u32 > i32::MAX as u32 {
                return Err(XenError::E2BIG);
            }
            caller.allow(Operation::ConsoleRead)?;
            // Xen's `serial_rx_ring`: what the UART received, oldest first.
            let mut buffer = [0u8; 1024];
            let count = (args[1] as u32 as usize).min(buffer.len());
            let taken = crate::platform::console::read_input(&mut buffer[..count]);
            GuestMemory.write(args[2], &buffer[..taken])?;
            Ok(Outcome::Return(taken as i64))
        }
        private::XENOLITH_CONSOLEIO_WRITE_LINE | private::XENOLITH_CONSOLEIO_KEYS => {
            caller.allow(Operation::ConsoleRead)?;
            let count = args[1] as u32 as usize;
            if count > XENOLITH_CONSOLE_LINE_MAX {
                return Err(XenError::EINVAL);
            }
            let mut buffer = [0u8; XENOLITH_CONSOLE_LINE_MAX];
            GuestMemory.read(args[2], &mut buffer[..count])?;
            let text = core::str::from_utf8(&buffer[..count]).unwrap_or("<non-UTF-8 line>\n");
            if args[0] as u32 == private::XENOLITH_CONSOLEIO_KEYS {
                text.chars().for_each(|pressed| key(caller.table, pressed));
                return Ok(Outcome::Return(0));
            }
            // One console domain writes at a time, so check-then-store does not race a writer.
            if args[3] > LAST_LINE.load(Ordering::Acquire) {
                crate::platform::console::print(format_args!("{text}"));
                LAST_LINE.store(args[3], Ordering::Release);
            }
            Ok(Outcome::Return(LAST_LINE.load(Ordering::Acquire) as i64))
        }
        _ => Err(XenError::ENOSYS),
    }
}

/// The core's key handlers (Xen's `keyhandler.c`), for input typed while it has the focus.
fn key(table: &crate::domain::Table, key: char) {
    match key {
        'q' => table.domains().for_each(|d| {
            let (id, name, state, pages) = (d.id, &d.name, &d.state, d.ram_pages);
            log::info!("d{id} {name}: {state:?}, {} vCPUs, {pages} pages", d.vcpus.len());
        }),
        'h' => log::info!("keys: 'h' this list, 'q' the domains"),
        '\r' | '\n' => {}
        other => log::info!("key {other:?} has no handler; 'h' lists them"),
    }
}
