//! What the bootloader handed over, checked: the boot bundle (through `/chosen`) and the
//! command line (the bundle's, then `/chosen/bootargs`).

use xenolith_abi::bundle::{Bundle, BundleError};
use xenolith_kernel::platform::cmdline::{Diagnostic, Params};
use xenolith_kernel::platform::Platform;

/// Up to this many command-line diagnostics are kept for printing once the console is up.
const MAX_DIAGNOSTICS: usize = 16;

/// What the bootloader handed over, checked.
pub struct BootConfig<'a> {
    /// The command line: bundle first, then `/chosen/bootargs`.
    pub params: Params<'a>,
    /// The boot bundle: absent, refused, or checked.
    pub bundle: Option<Result<Bundle<'a>, BundleError>>,
    /// Why the boot module could not even be looked at (outside RAM).
    pub module_error: Option<&'static str>,
    diagnostics: [Option<Diagnostic<'a>>; MAX_DIAGNOSTICS],
    dropped_diagnostics: usize,
}

impl<'a> BootConfig<'a> {
    /// Reads the boot bundle (through `/chosen`) and the command line.
    pub fn read(platform: &Platform<'a>) -> Self {
        let mut config = Self {
            params: Params::default(),
            bundle: None,
            module_error: None,
            diagnostics: [None; MAX_DIAGNOSTICS],
            dropped_diagnostics: 0,
        };
        if let Some(initrd) = platform.initrd {
            let in_ram = platform
                .ram
                .iter()
                .any(|bank| bank.start <= initrd.start && initrd.end <= bank.end);
            if !in_ram || initrd.end < initrd.start {
                config.module_error = Some("the boot module (initrd) does not lie within RAM");
            } else {
                // SAFETY: the DTB says the bootloader placed the module at `initrd`, which we just
                // checked lies inside a RAM bank; the MMU is off or RAM is identity-mapped, and
                // the module's memory is reserved from the frame allocator, so nothing writes it.
                let bytes: &'a [u8] = unsafe {
                    core::slice::from_raw_parts(
                        initrd.start as *const u8,
                        (initrd.end - initrd.start) as usize,
                    )
                };
                config.bundle = Some(Bundle::parse(bytes));
            }
        }
        let mut diagnostics = [None; MAX_DIAGNOSTICS];
        let mut count = 0;
        let mut dropped = 0;
        let mut report = |diagnostic| {
            if count < MAX_DIAGNOSTICS {
                diagnostics[count] = Some(diagnostic);
                count += 1;
            } else {
                dropped += 1;
            }
        };
        if let Some(Ok(bundle)) = &config.bundle {
            config.params.apply(bundle.manifest.cmdline, &mut report);
        }
        if let Some(bootargs) = platform.bootargs {
            config.params.apply(bootargs, &mut report);
        }
        config.diagnostics = diagnostics;
        config.dropped_diagnostics = dropped;
        config
    }

    /// Logs what the command line refused.
    pub fn report_diagnostics(&self) {
        for diagnostic in self.diagnostics.iter().flatten() {
            log::warn!("command line: {diagnostic}");
        }
        if self.dropped_diagnostics > 0 {
            log::warn!("command line: {} more problems not shown", self.dropped_diagnostics);
        }
    }
}
