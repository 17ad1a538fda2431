//! `__HYPERVISOR_console_io` (`xen/include/public/xen.h`): a domain writes lines to the
//! hypervisor console, each shown as `(dN) line`.

use xenolith_abi::xen::console;
use xenolith_abi::xen::errno::XenError;
use xenolith_kernel::policy::Operation;

use super::Outcome;
use crate::domain::Caller;
use crate::mm::guest_access::GuestMemory;

/// The most bytes one `CONSOLEIO_write` prints.
const CONSOLE_WRITE_MAX: usize = 4096;

pub fn console_io(args: [u64; 5], caller: &mut Caller<'_>) -> Result<Outcome, XenError> {
    match args[0] as u32 {
        console::CONSOLEIO_write => {
            let count = (args[1] as usize).min(CONSOLE_WRITE_MAX);
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
            Ok(Outcome::Return(0))
        }
        console::CONSOLEIO_read => {
            caller.allow(Operation::ConsoleRead)?;
            // The core keeps no console history yet: nothing to read.
            Ok(Outcome::Return(0))
        }
        _ => Err(XenError::ENOSYS),
    }
}
