//! The control domain: dom0's toolstack role, outside the core. It holds the `control`
//! capability and uses only Xen's interfaces (domctl, sysctl, memory_op) plus the two private
//! bundle domctls to read images the system was booted with.
//!
//! Its command line says what to do, in order:
//! - `after=<domid>:<MiB>`: first waits until that domain (of that much RAM) writes its mailbox
//!   page, so that its setting-up is over before the free pages are counted;
//! - `dirty=<module>`: first builds a guest from that module (`test-guest`'s `test=dirty`) with
//!   all free memory but [`DIRTY_MARGIN_MIB`], waits until it reports through its mailbox how
//!   many frames it filled with a non-zero pattern, destroys it and checks every frame came
//!   back; the domain built next then gets mostly frames it filled, and says how many at least;
//! - `build=<module>` with `memory=<MiB>`, `args=<guest command line, commas for spaces>` and
//!   optionally `ramdisk=<module>`, `vcpus=<count>` (1) and `polls=<count>` (how many times to
//!   look at the mailbox, 10 ms apart; 50,000,000): builds a domain from a
//!   boot-bundle module (ELF or arm64 `Image`, with that module as its initial ramdisk), like
//!   `xl create`;
//! - then it waits for the guest to write its mailbox page (the page below its DTB), lists
//!   domains like `xl list`, destroys the guest (`destroy=1`), and checks every frame came back.
#![cfg_attr(target_os = "none", no_std)]
#![cfg_attr(target_os = "none", no_main)]

#[cfg(target_os = "none")]
extern crate alloc;

#[cfg(target_os = "none")]
mod builder;
#[cfg(target_os = "none")]
mod service;
#[cfg(target_os = "none")]
mod toolstack;
#[cfg(target_os = "none")]
mod xl;

#[cfg(target_os = "none")]
mod control {
    use xenolith_runtime::{println, StartInfo};

    use crate::{builder, xl};

    /// Free memory a dirtying guest leaves to the core: its own stage 2, shared info and ring
    /// pages and this domain's mapping window take frames too, and not every free frame lies in
    /// a free 2 MiB extent.
    const DIRTY_MARGIN_MIB: u64 = 4;

    /// Builds a guest from `module` with all the `free` frames but [`DIRTY_MARGIN_MIB`], which
    /// fills all the RAM it can with a non-zero pattern and reports the frames it filled;
    /// destroys it and checks every frame came back. Returns how many frames it filled (`None`
    /// after printing a FAIL).
    fn dirty(module: &str, free: u64) -> Option<u64> {
        let memory_mib = ((free >> 8).saturating_sub(DIRTY_MARGIN_MIB)) & !1;
        let id = match builder::build(module, None, memory_mib, 1, "name=dirtier test=dirty") {
            Ok(id) => id,
            Err(error) => {
                println!("control: FAIL building a {memory_mib} MiB {module} to dirty: {error}");
                return None;
            }
        };
        println!(
            "control: built domain {id} from {module} ({memory_mib} of {} MiB free) to dirty its memory",
            free >> 8
        );
        let filled = match builder::wait_for_mailbox(
            id,
            builder::mailbox_gfn(memory_mib),
            50_000_000,
        ) {
            Ok(0) => {
                println!("control: FAIL domain {id} never reported filling its memory");
                return None;
            }
            Ok(frames) if frames <= free => frames,
            Ok(frames) => {
                println!("control: FAIL domain {id} reported filling {frames} frames, more than were free");
                return None;
            }
            Err(error) => {
                println!("control: FAIL reading domain {id}'s mailbox: {error}");
                return None;
            }
        };
        if let Err(error) = xl::destroy(id, 50_000_000) {
            println!("control: FAIL destroying domain {id}: {error}");
            return None;
        }
        let free_after = xl::free_pages();
        if free_after != free {
            println!("control: FAIL {free} pages were free before the dirtier, {free_after} after");
            return None;
        }
        println!("control: domain {id} filled {filled} frames and is destroyed; {free} pages free, as before");
        Some(filled)
    }

    fn main(info: &StartInfo) {
        println!("control: first instruction at counter {}", xenolith_runtime::started_at());
        println!("control: the control domain is up");
        let batch = ["after", "dirty", "build"].iter().any(|key| info.bootarg(key).is_some());
        if !batch {
            // The service: xl at its console, for good.
            let mut service = match crate::service::Service::start(info) {
                Ok(service) => service,
                Err(error) => return println!("control: FAIL starting the service: {error}"),
            };
            service.recover();
            let (domains, now) = (service.control.ids().len(), crate::service::counter());
            println!("control: xl ready; {domains} domains, at counter {now}");
            if let Some(cfg) = info.bootarg("loop") {
                service.create_destroy_loop(cfg, info);
            }
            service.serve();
        }
        if let Some((after, mib)) = info.bootarg("after").and_then(|value| value.split_once(':')) {
            // Another domain still setting itself up would change the free pages counted below.
            let (Ok(after), Ok(mib)) = (after.parse::<u16>(), mib.parse::<u64>()) else {
                println!("control: FAIL after={after}:{mib} is not <domid>:<MiB>");
                return;
            };
            match builder::wait_for_mailbox(after, builder::mailbox_gfn(mib), 100_000) {
                Ok(0) | Err(_) => {
                    println!("control: FAIL domain {after} never said it was ready");
                    return;
                }
                Ok(_) => println!("control: domain {after} is ready"),
            }
        }
        let free_before = xl::free_pages();
        xl::list();
        let filled = match info.bootarg("dirty") {
            Some(module) => match dirty(module, free_before) {
                Some(frames) => frames,
                None => return,
            },
            None => 0,
        };
        let Some(module) = info.bootarg("build") else { return };
        let memory_mib: u64 =
            info.bootarg("memory").and_then(|value| value.parse().ok()).unwrap_or(16);
        let mut args = [0u8; 256];
        let raw_args = info.bootarg("args").unwrap_or("");
        let length = raw_args.len().min(args.len());
        for (slot, byte) in args.iter_mut().zip(raw_args.bytes()) {
            *slot = if byte == b',' { b' ' } else { byte };
        }
        let guest_args = core::str::from_utf8(&args[..length]).unwrap_or("");
        let now: u64;
        // SAFETY: reading the virtual counter has no side effect.
        unsafe {
            core::arch::asm!("isb", "mrs {0}, cntvct_el0", out(reg) now, options(nomem, nostack))
        };
        println!("control: building {module} at counter {now}");
        let vcpus: u32 = info.bootarg("vcpus").and_then(|value| value.parse().ok()).unwrap_or(1);
        let polls: u64 =
            info.bootarg("polls").and_then(|value| value.parse().ok()).unwrap_or(50_000_000);
        let built = builder::build(module, info.bootarg("ramdisk"), memory_mib, vcpus, guest_args);
        let id = match built {
            Ok(id) => id,
            Err(error) => {
                println!("control: FAIL building {module}: {error}");
                return;
            }
        };
        println!("control: built domain {id} from {module} ({memory_mib} MiB) and unpaused it");
        if filled > 0 {
            // Every frame of its RAM was among the `free_before` free ones (the dirtier gave
            // every frame back and nothing else has run since), of which only
            // `free_before - filled` were not filled: the rest of its frames are filled ones,
            // whatever order the core hands frames out in.
            let frames = memory_mib << 8;
            let at_least = frames.saturating_sub(free_before - filled);
            println!("control: at least {at_least} of domain {id}'s {frames} RAM frames were filled by the dirtier");
        }
        // The guest reports through its mailbox page; wait for it (bounded), never for a time.
        match builder::wait_for_mailbox(id, builder::mailbox_gfn(memory_mib), polls) {
            Ok(0) => {
                println!("control: FAIL domain {id} never wrote its mailbox");
                return;
            }
            Ok(value) => println!("control: domain {id} reported {value:#x} through its mailbox"),
            Err(error) => {
                println!("control: FAIL reading domain {id}'s mailbox: {error}");
                return;
            }
        }
        match builder::shrink(id, memory_mib) {
            Ok(()) => println!("control: took the last 2 MiB of domain {id} back"),
            Err(error) => println!("control: FAIL shrinking domain {id}: {error}"),
        }
        xl::list();
        if info.bootarg("destroy") != Some("1") {
            return;
        }
        if let Err(error) = xl::destroy(id, 50_000_000) {
            println!("control: FAIL destroying domain {id}: {error}");
            return;
        }
        // The domain is gone: every one of its frames must be back.
        let free_after = xl::free_pages();
        xl::list();
        if free_after == free_before {
            println!("control: PASS built, listed and destroyed domain {id}; {free_after} pages free, as before");
        } else {
            println!("control: FAIL {free_before} pages were free before building, {free_after} after destroying");
        }
    }

    xenolith_runtime::entry!(main);
}

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!("control is a Xenolith domain: it runs only in a system image");
}
