//! The time of day domains start with: read once at boot from the machine's PL031 real-time
//! clock, then carried forward by the architected counter. Each new domain finds it in its
//! shared-info page (`wc_sec`/`wc_nsec`/`wc_sec_hi`, `xen/include/public/xen.h`) as the wallclock
//! at its creation, which Linux on Arm adds its own uptime to (`xen_read_wallclock` in
//! `arch/arm/xen/enlighten.c`). Xen on Arm takes it from the same place (its `wallclock` is the
//! time of its boot, set by dom0's `XENPF_settime` later); domains here never set it.
//!
//! # Invariants
//! - Read once, on CPU 0, before any domain exists; without a PL031 domains see 1970, as Xen's
//!   domains do until dom0 sets the time.

use core::sync::atomic::{AtomicU64, Ordering};

use xenolith_kernel::mm::frame::Region;

/// Wallclock (ns since 1970) when the counter read zero; 0: unknown.
static AT_COUNTER_ZERO_NS: AtomicU64 = AtomicU64::new(0);

/// PL031 data register: the current time in seconds (Arm PrimeCell RTC (PL031) TRM, `RTCDR`).
const RTCDR: u64 = 0x000;

/// Reads the PL031 at `rtc` (identity-mapped as a device), `now_ns` being the counter's time.
pub fn init(rtc: Option<Region>, now_ns: u64) {
    let Some(rtc) = rtc else {
        log::warn!("no PL031 real-time clock: domains start with their clock in 1970");
        return;
    };
    // SAFETY: the core's address space identity-maps `rtc` as Device-nGnRE (boot adds it to the
    // device regions before the MMU is enabled); RTCDR is a read-only 32-bit register whose read
    // has no side effect.
    let seconds = unsafe { core::ptr::read_volatile((rtc.start + RTCDR) as *const u32) };
    let base = (u64::from(seconds) * 1_000_000_000).saturating_sub(now_ns);
    AT_COUNTER_ZERO_NS.store(base, Ordering::Relaxed);
    log::info!("wallclock: PL031 at {:#x} reads {seconds} s since 1970", rtc.start);
}

/// The wallclock at `now_ns` (counter time) as Xen's shared-info fields: `(seconds, nanoseconds)`;
/// zero if unknown.
pub fn at(now_ns: u64) -> (u64, u32) {
    let base = AT_COUNTER_ZERO_NS.load(Ordering::Relaxed);
    if base == 0 {
        return (0, 0);
    }
    let wall = base + now_ns;
    (wall / 1_000_000_000, (wall % 1_000_000_000) as u32)
}
