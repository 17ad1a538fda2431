//! `__HYPERVISOR_console_io` (`xen/include/public/xen.h`): a domain writes lines to the
//! hypervisor console, each shown as `(dN) line`.

use xenolith_abi::xen::console;
use xenolith_abi::xen::errno::XenError;
use xenolith_kernel::policy::Operation;

use super::Outcome;
use crate::domain::Caller;
use crate::mm::guest_access::GuestMemory;

/// The most bytes one `CONSOLEIO_write` prints before it continues itself.
const CONSOLE_WRITE_MAX: usize = 4096;

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
        _ => Err(XenError::ENOSYS),
    }
}
