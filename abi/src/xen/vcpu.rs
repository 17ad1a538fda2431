//! The vCPU hypercall, `vcpu_op(cmd, vcpuid, arg)` (`xen/include/public/vcpu.h`): bring vCPUs
//! up and down, read their run-state, set their timers, place their `vcpu_info`.
//!
//! x0 is a `VCPUOP_*` number, x1 the target vCPU's id within the caller's domain, x2 the guest
//! address of the argument named in each number's documentation (or null).
//!
//! # Invariants
//! - Numbers are Xen 4.17's; `VCPUOP_*` runs 0..=13 with no gaps. Xen 4.17 on Arm serves only
//!   [`VCPUOP_register_vcpu_info`] and [`VCPUOP_register_runstate_memory_area`]
//!   (`xen/arch/arm/domain.c`, `do_arm_vcpu_op`); vCPUs come up through PSCI instead.
//! - Every structure's size and field offsets are pinned by the tests below (arm64 layout).

// Xen's spelling of its own names (see `hypercall`).
#![allow(non_upper_case_globals, non_camel_case_types)]

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use super::hypercall::GuestHandle;

/// `xen/include/public/vcpu.h`: `VCPUOP_initialise`, give a vCPU its first register state
/// (once). Argument: the architecture's `vcpu_guest_context`.
pub const VCPUOP_initialise: u32 = 0;
/// `xen/include/public/vcpu.h`: `VCPUOP_up`, make an initialised vCPU runnable. Argument: null.
pub const VCPUOP_up: u32 = 1;
/// `xen/include/public/vcpu.h`: `VCPUOP_down`, make a vCPU not runnable (asynchronous unless the
/// vCPU downs itself). Argument: null.
pub const VCPUOP_down: u32 = 2;
/// `xen/include/public/vcpu.h`: `VCPUOP_is_up`, returns 1 if the vCPU is up. Argument: null.
pub const VCPUOP_is_up: u32 = 3;
/// `xen/include/public/vcpu.h`: `VCPUOP_get_runstate_info`. Argument: [`vcpu_runstate_info`]
/// (written).
pub const VCPUOP_get_runstate_info: u32 = 4;
/// `xen/include/public/vcpu.h`: `VCPUOP_register_runstate_memory_area`, name a guest area the
/// hypervisor keeps up to date with the vCPU's [`vcpu_runstate_info`] on every schedule.
/// Argument: [`vcpu_register_runstate_memory_area`].
pub const VCPUOP_register_runstate_memory_area: u32 = 5;
/// `xen/include/public/vcpu.h`: `VCPUOP_set_periodic_timer`. Argument:
/// [`vcpu_set_periodic_timer`].
pub const VCPUOP_set_periodic_timer: u32 = 6;
/// `xen/include/public/vcpu.h`: `VCPUOP_stop_periodic_timer`. Argument: null.
pub const VCPUOP_stop_periodic_timer: u32 = 7;
/// `xen/include/public/vcpu.h`: `VCPUOP_set_singleshot_timer`. Argument:
/// [`vcpu_set_singleshot_timer`].
pub const VCPUOP_set_singleshot_timer: u32 = 8;
/// `xen/include/public/vcpu.h`: `VCPUOP_stop_singleshot_timer`. Argument: null.
pub const VCPUOP_stop_singleshot_timer: u32 = 9;
/// `xen/include/public/vcpu.h`: `VCPUOP_register_vcpu_info`, place the vCPU's `vcpu_info` in a
/// guest page (once per vCPU; it must not cross a page). Argument: [`vcpu_register_vcpu_info`].
pub const VCPUOP_register_vcpu_info: u32 = 10;
/// `xen/include/public/vcpu.h`: `VCPUOP_send_nmi` (x86). Argument: null.
pub const VCPUOP_send_nmi: u32 = 11;
/// `xen/include/public/vcpu.h`: `VCPUOP_get_physid`, the physical id of the pCPU a pinned vCPU
/// runs on. Argument: [`vcpu_get_physid`].
pub const VCPUOP_get_physid: u32 = 12;
/// `xen/include/public/vcpu.h`: `VCPUOP_register_vcpu_time_memory_area`, name a guest area for
/// a second copy of the vCPU's time information. Argument:
/// [`vcpu_register_time_memory_area`].
pub const VCPUOP_register_vcpu_time_memory_area: u32 = 13;

/// `xen/include/public/vcpu.h`: `RUNSTATE_running`, on a pCPU now.
pub const RUNSTATE_running: i32 = 0;
/// `xen/include/public/vcpu.h`: `RUNSTATE_runnable`, runnable but not on a pCPU.
pub const RUNSTATE_runnable: i32 = 1;
/// `xen/include/public/vcpu.h`: `RUNSTATE_blocked`, waiting for an event (idle).
pub const RUNSTATE_blocked: i32 = 2;
/// `xen/include/public/vcpu.h`: `RUNSTATE_offline`, neither runnable nor blocked (down, paused,
/// or in a hypervisor critical section).
pub const RUNSTATE_offline: i32 = 3;

/// `xen/include/public/vcpu.h`: `XEN_RUNSTATE_UPDATE`, set in `state_entry_time` while the
/// hypervisor rewrites a registered run-state area (with `VMASST_TYPE_runstate_update_flag`).
pub const XEN_RUNSTATE_UPDATE: u64 = 1 << 63;

/// `xen/include/public/vcpu.h`: `_VCPU_SSHOTTMR_future`, bit number of
/// [`VCPU_SSHOTTMR_future`].
pub const _VCPU_SSHOTTMR_future: u32 = 0;
/// `xen/include/public/vcpu.h`: `VCPU_SSHOTTMR_future`, ask for `-ETIME` if the timeout has
/// already passed; a hypervisor may ignore it.
pub const VCPU_SSHOTTMR_future: u32 = 1 << _VCPU_SSHOTTMR_future;

/// `xen/include/public/vcpu.h`: `struct vcpu_runstate_info`.
#[repr(C)]
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct vcpu_runstate_info {
    /// The current `RUNSTATE_*`.
    pub state: i32,
    /// Implicit C padding before the 64-bit `state_entry_time`, made explicit; written as zero.
    pub _pad: u32,
    /// System time (ns) the current state was entered, possibly with [`XEN_RUNSTATE_UPDATE`].
    pub state_entry_time: u64,
    /// Nanoseconds spent in each `RUNSTATE_*`, indexed by state; they sum to system time.
    pub time: [u64; 4],
}

/// `xen/include/public/vcpu.h`: `struct vcpu_register_runstate_memory_area`. In C `addr` is a
/// union of a guest handle, a pointer and a `uint64_t`, 8 bytes on Arm.
#[repr(C)]
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct vcpu_register_runstate_memory_area {
    /// Where to keep the [`vcpu_runstate_info`]: a guest virtual address on Arm (Xen 4.17
    /// translates it through the guest's stage 1 at each update); null unregisters.
    pub addr: GuestHandle,
}

/// `xen/include/public/vcpu.h`: `struct vcpu_set_periodic_timer`.
#[repr(C)]
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct vcpu_set_periodic_timer {
    /// Period in nanoseconds (periods under 1 ms may be refused).
    pub period_ns: u64,
}

/// `xen/include/public/vcpu.h`: `struct vcpu_set_singleshot_timer`.
#[repr(C)]
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct vcpu_set_singleshot_timer {
    /// Absolute system time (ns) to fire at.
    pub timeout_abs_ns: u64,
    /// `VCPU_SSHOTTMR_*` flags.
    pub flags: u32,
    /// Implicit C tail padding (the struct is 8-byte aligned), made explicit; Xen ignores it.
    pub _pad: u32,
}

/// `xen/include/public/vcpu.h`: `struct vcpu_register_vcpu_info`.
#[repr(C)]
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct vcpu_register_vcpu_info {
    /// The frame to place `vcpu_info` in (a guest frame number on Arm).
    pub mfn: u64,
    /// Byte offset of `vcpu_info` within that frame; `vcpu_info` must fit in the frame and be
    /// aligned to its own alignment.
    pub offset: u32,
    /// Unused.
    pub rsvd: u32,
}

/// `xen/include/public/vcpu.h`: `struct vcpu_get_physid`.
#[repr(C)]
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct vcpu_get_physid {
    /// Architecture-specific physical id (x86: APIC id in bits 31:0, ACPI id in 63:32).
    pub phys_id: u64,
}

/// `xen/include/public/vcpu.h`: `struct vcpu_register_time_memory_area`. In C `addr` is a
/// union of a guest handle, a pointer and a `uint64_t`, 8 bytes on Arm.
#[repr(C)]
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct vcpu_register_time_memory_area {
    /// Where to keep the secondary `vcpu_time_info` copy.
    pub addr: GuestHandle,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xen::hypercall::assert_layout;

    /// `xen/include/public/vcpu.h`: the `VCPUOP_*`, `RUNSTATE_*` and flag numbers.
    #[test]
    fn numbers() {
        let ops = [
            VCPUOP_initialise,
            VCPUOP_up,
            VCPUOP_down,
            VCPUOP_is_up,
            VCPUOP_get_runstate_info,
            VCPUOP_register_runstate_memory_area,
            VCPUOP_set_periodic_timer,
            VCPUOP_stop_periodic_timer,
            VCPUOP_set_singleshot_timer,
            VCPUOP_stop_singleshot_timer,
            VCPUOP_register_vcpu_info,
            VCPUOP_send_nmi,
            VCPUOP_get_physid,
            VCPUOP_register_vcpu_time_memory_area,
        ];
        assert_eq!(ops.to_vec(), (0..=13).collect::<Vec<u32>>());
        assert_eq!(
            [RUNSTATE_running, RUNSTATE_runnable, RUNSTATE_blocked, RUNSTATE_offline],
            [0, 1, 2, 3]
        );
        assert_eq!(VCPU_SSHOTTMR_future, 1);
        assert_eq!(XEN_RUNSTATE_UPDATE, 0x8000_0000_0000_0000);
    }

    /// `xen/include/public/vcpu.h`: structure layouts on arm64.
    #[test]
    fn layouts() {
        assert_layout!(vcpu_runstate_info, size = 48, align = 8, {
            state @ 0, _pad @ 4, state_entry_time @ 8, time @ 16,
        });
        assert_layout!(vcpu_register_runstate_memory_area, size = 8, align = 8, { addr @ 0 });
        assert_layout!(vcpu_set_periodic_timer, size = 8, align = 8, { period_ns @ 0 });
        assert_layout!(vcpu_set_singleshot_timer, size = 16, align = 8, {
            timeout_abs_ns @ 0, flags @ 8, _pad @ 12,
        });
        assert_layout!(vcpu_register_vcpu_info, size = 16, align = 8, {
            mfn @ 0, offset @ 8, rsvd @ 12,
        });
        assert_layout!(vcpu_get_physid, size = 8, align = 8, { phys_id @ 0 });
        assert_layout!(vcpu_register_time_memory_area, size = 8, align = 8, { addr @ 0 });
    }
}
