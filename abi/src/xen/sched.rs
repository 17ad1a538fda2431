//! The scheduler hypercall, `sched_op(cmd, arg)` (`xen/include/public/sched.h`): a vCPU yields,
//! blocks, polls event channels or shuts its domain down.
//!
//! x0 is a `SCHEDOP_*` number, x1 the guest address of the argument structure named in each
//! number's documentation.
//!
//! # Invariants
//! - Numbers are Xen 4.17's; `SCHEDOP_*` runs 0..=7 and `SHUTDOWN_*` 0..=[`SHUTDOWN_MAX`] with no
//!   gaps.
//! - Every structure's size and field offsets are pinned by the tests below (arm64 layout).

// Xen's spelling of its own names (see `hypercall`).
#![allow(non_upper_case_globals, non_camel_case_types)]

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use super::hypercall::{domid_t, GuestHandle};

/// `xen/include/public/sched.h`: `SCHEDOP_yield`, give up the pCPU but stay runnable.
/// Argument: none.
pub const SCHEDOP_yield: u32 = 0;
/// `xen/include/public/sched.h`: `SCHEDOP_block`, sleep until an event is pending. Argument:
/// none. Xen on Arm discourages it in favour of `wfi` (`xen/include/public/arch-arm.h`).
pub const SCHEDOP_block: u32 = 1;
/// `xen/include/public/sched.h`: `SCHEDOP_shutdown`, shut the caller's domain down. Argument:
/// [`sched_shutdown`].
pub const SCHEDOP_shutdown: u32 = 2;
/// `xen/include/public/sched.h`: `SCHEDOP_poll`, block until one of a set of event channels is
/// pending or a timeout passes. Argument: [`sched_poll`].
pub const SCHEDOP_poll: u32 = 3;
/// `xen/include/public/sched.h`: `SCHEDOP_remote_shutdown`, shut another domain down
/// (privileged). Argument: [`sched_remote_shutdown`].
pub const SCHEDOP_remote_shutdown: u32 = 4;
/// `xen/include/public/sched.h`: `SCHEDOP_shutdown_code`, record the reason a later shutdown
/// reports, without shutting down. Argument: [`sched_shutdown`].
pub const SCHEDOP_shutdown_code: u32 = 5;
/// `xen/include/public/sched.h`: `SCHEDOP_watchdog`, create, feed or destroy a domain watchdog.
/// Argument: [`sched_watchdog`].
pub const SCHEDOP_watchdog: u32 = 6;
/// `xen/include/public/sched.h`: `SCHEDOP_pin_override`, temporarily pin the vCPU to one pCPU
/// (hardware domain only). Argument: [`sched_pin_override`].
pub const SCHEDOP_pin_override: u32 = 7;

/// `xen/include/public/sched.h`: `SHUTDOWN_poweroff`, the domain exited normally.
pub const SHUTDOWN_poweroff: u32 = 0;
/// `xen/include/public/sched.h`: `SHUTDOWN_reboot`, clean up and restart the domain.
pub const SHUTDOWN_reboot: u32 = 1;
/// `xen/include/public/sched.h`: `SHUTDOWN_suspend`, save the domain's state for resumption.
pub const SHUTDOWN_suspend: u32 = 2;
/// `xen/include/public/sched.h`: `SHUTDOWN_crash`, the domain crashed.
pub const SHUTDOWN_crash: u32 = 3;
/// `xen/include/public/sched.h`: `SHUTDOWN_watchdog`, a domain watchdog expired.
pub const SHUTDOWN_watchdog: u32 = 4;
/// `xen/include/public/sched.h`: `SHUTDOWN_soft_reset`, restart the domain in place, keeping its
/// memory (e.g. for kexec).
pub const SHUTDOWN_soft_reset: u32 = 5;
/// `xen/include/public/sched.h`: `SHUTDOWN_MAX`, the largest valid reason.
pub const SHUTDOWN_MAX: u32 = 5;

/// `xen/include/public/sched.h`: `struct sched_shutdown`, the argument of [`SCHEDOP_shutdown`]
/// and [`SCHEDOP_shutdown_code`].
#[repr(C)]
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct sched_shutdown {
    /// A `SHUTDOWN_*` reason.
    pub reason: u32,
}

/// `xen/include/public/sched.h`: `struct sched_poll`, the argument of [`SCHEDOP_poll`].
#[repr(C)]
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct sched_poll {
    /// Array of `nr_ports` event channel ports (`evtchn_port_t`, u32).
    pub ports: GuestHandle,
    /// Number of ports in `ports`.
    pub nr_ports: u32,
    /// Implicit C padding before the 64-bit `timeout`, made explicit; Xen ignores it.
    pub _pad: u32,
    /// Absolute system time (ns) to give up at; 0 waits without a timeout.
    pub timeout: u64,
}

/// `xen/include/public/sched.h`: `struct sched_remote_shutdown`, the argument of
/// [`SCHEDOP_remote_shutdown`].
#[repr(C)]
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct sched_remote_shutdown {
    /// The domain to shut down.
    pub domain_id: domid_t,
    /// Implicit C padding before `reason`, made explicit; Xen ignores it.
    pub _pad: u16,
    /// A `SHUTDOWN_*` reason.
    pub reason: u32,
}

/// `xen/include/public/sched.h`: `struct sched_watchdog`, the argument of [`SCHEDOP_watchdog`].
#[repr(C)]
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct sched_watchdog {
    /// 0 creates a watchdog (its id is returned); otherwise the watchdog to feed or destroy.
    pub id: u32,
    /// Seconds until expiry; 0 destroys the watchdog `id`.
    pub timeout: u32,
}

/// `xen/include/public/sched.h`: `struct sched_pin_override`, the argument of
/// [`SCHEDOP_pin_override`].
#[repr(C)]
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct sched_pin_override {
    /// The pCPU to pin to; negative ends the override.
    pub pcpu: i32,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xen::hypercall::assert_layout;

    /// `xen/include/public/sched.h`: the `SCHEDOP_*` and `SHUTDOWN_*` numbers.
    #[test]
    fn numbers() {
        let ops = [
            SCHEDOP_yield,
            SCHEDOP_block,
            SCHEDOP_shutdown,
            SCHEDOP_poll,
            SCHEDOP_remote_shutdown,
            SCHEDOP_shutdown_code,
            SCHEDOP_watchdog,
            SCHEDOP_pin_override,
        ];
        assert_eq!(ops, [0, 1, 2, 3, 4, 5, 6, 7]);
        let reasons = [
            SHUTDOWN_poweroff,
            SHUTDOWN_reboot,
            SHUTDOWN_suspend,
            SHUTDOWN_crash,
            SHUTDOWN_watchdog,
            SHUTDOWN_soft_reset,
        ];
        assert_eq!(reasons, [0, 1, 2, 3, 4, 5]);
        assert_eq!(SHUTDOWN_MAX, SHUTDOWN_soft_reset);
    }

    /// `xen/include/public/sched.h`: structure layouts on arm64.
    #[test]
    fn layouts() {
        assert_layout!(sched_shutdown, size = 4, align = 4, { reason @ 0 });
        assert_layout!(sched_poll, size = 24, align = 8, {
            ports @ 0, nr_ports @ 8, _pad @ 12, timeout @ 16,
        });
        assert_layout!(sched_remote_shutdown, size = 8, align = 4, {
            domain_id @ 0, _pad @ 2, reason @ 4,
        });
        assert_layout!(sched_watchdog, size = 8, align = 4, { id @ 0, timeout @ 4 });
        assert_layout!(sched_pin_override, size = 4, align = 4, { pcpu @ 0 });
    }
}
