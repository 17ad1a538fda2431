//! What the bootloader handed over, checked: the boot bundle (through `/chosen`) and the
//! command line (the bundle's, then `/chosen/bootargs`).

use xenolith_abi::bundle::{Bundle, BundleError};
use xenolith_kernel::platform::cmdline::Params;
use xenolith_kernel::platform::Platform;

/// Up to this many command-line diagnostics are printed; the rest are only counted.
const MAX_DIAGNOSTICS: usize = 16;

/// What the bootloader handed over, checked.
pub struct BootConfig<'a> {
    /// The command line: bundle first, then `/chosen/bootargs`.
    pub params: Params<'a>,
    /// The boot bundle: absent, refused, or checked.
    pub bundle: Option<Result<Bundle<'a>, BundleError>>,
    /// Why the boot module could not even be looked at (outside RAM).
    pub module_error: Option<&'static str>,
    /// The command lines in the order they apply: the bundle's, then `/chosen/bootargs`.
    command_lines: [Option<&'a str>; 2],
}

impl<'a> BootConfig<'a> {
    /// Reads the boot bundle (through `/chosen`) and the command line.
    pub fn read(platform: &Platform<'a>) -> Self {
        let mut config = Self {
            params: Params::default(),
            bundle: None,
            module_error: None,
            command_lines: [None, platform.bootargs],
        };
        if let Some(initrd) = platform.initrd {
            let in_ram = platform
                .ram
                .iter()
                .any(|bank| bank.start <= initrd.start && initrd.end <= bank.end);
            if !in_ram || initrd.end < initrd.start {
                config.module_error = Some("the boot module (initrd) does not lie within RAM");
            } else {
                let (start, length) = (initrd.start as *const u8, initrd.len() as usize);
                // SAFETY: the DTB says the bootloader placed the module at `initrd`, which we just
                // checked lies inside a RAM bank; the MMU is off or RAM is identity-mapped, and
                // the module's memory is reserved from the frame allocator, so nothing writes it.
                let bytes: &'a [u8] = unsafe { core::slice::from_raw_parts(start, length) };
                config.bundle = Some(Bundle::parse(bytes));
            }
        }
        if let Some(Ok(bundle)) = &config.bundle {
            config.command_lines[0] = Some(bundle.manifest.cmdline);
        }
        for line in config.command_lines.into_iter().flatten() {
            // What it refuses is reported once the console is up (`report_diagnostics`).
            config.params.apply(line, &mut |_| {});
        }
        config
    }

    /// Logs what the command line refused, applying it again: when it was read, there was no
    /// console yet.
    pub fn report_diagnostics(&self) {
        let mut count = 0;
        for line in self.command_lines.into_iter().flatten() {
            Params::default().apply(line, &mut |diagnostic| {
                if count < MAX_DIAGNOSTICS {
                    log::warn!("command line: {diagnostic}");
                }
                count += 1;
            });
        }
        if count > MAX_DIAGNOSTICS {
            log::warn!("command line: {} more problems not shown", count - MAX_DIAGNOSTICS);
        }
    }
}
