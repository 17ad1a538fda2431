//! `xen/include/public/xen.h`: the shared-info page and the per-vCPU info in it, arm64 layout
//! (`XEN_LEGACY_MAX_VCPUS` is 1 on Arm, `xen_ulong_t` is 64-bit, `arch_vcpu_info` and
//! `arch_shared_info` are empty, and Arm has no `evtchn_upcall_mask`: that byte is padding).
#![allow(non_camel_case_types)]

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// `xen/include/public/arch-arm.h`: `XEN_LEGACY_MAX_VCPUS`.
pub const XEN_LEGACY_MAX_VCPUS: usize = 1;

/// `xen/include/public/xen.h`: `struct vcpu_time_info` (32 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct vcpu_time_info {
    /// Odd while Xen updates the fields.
    pub version: u32,
    /// Padding.
    pub pad0: u32,
    /// TSC at the last update (unused on Arm).
    pub tsc_timestamp: u64,
    /// Nanoseconds since boot at the last update.
    pub system_time: u64,
    /// TSC to nanoseconds multiplier.
    pub tsc_to_system_mul: u32,
    /// TSC shift.
    pub tsc_shift: i8,
    /// `XEN_PVCLOCK_*` flags.
    pub flags: u8,
    /// Padding.
    pub pad1: [u8; 2],
}

/// `xen/include/public/xen.h`: `struct vcpu_info` on Arm (48 bytes: no upcall mask, empty arch
/// part).
#[repr(C)]
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct vcpu_info {
    /// Set by Xen when an event is pending for this vCPU.
    pub evtchn_upcall_pending: u8,
    /// `pad0` on Arm (x86 PV keeps its upcall mask here).
    pub pad0: u8,
    /// Padding before the 64-bit selector.
    pub _pad: [u8; 6],
    /// Which words of `evtchn_pending` to look at (2-level ABI).
    pub evtchn_pending_sel: u64,
    /// Time information.
    pub time: vcpu_time_info,
}

/// `xen/include/public/xen.h`: `struct shared_info` on Arm (1088 bytes, in a page of its own).
#[repr(C)]
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct shared_info {
    /// The legacy per-vCPU areas (vCPU 0 only on Arm).
    pub vcpu_info: [vcpu_info; XEN_LEGACY_MAX_VCPUS],
    /// 2-level event channels: one pending bit per port.
    pub evtchn_pending: [u64; 64],
    /// 2-level event channels: one mask bit per port.
    pub evtchn_mask: [u64; 64],
    /// Odd while the wallclock is updated.
    pub wc_version: u32,
    /// Wallclock at boot: seconds (low 32 bits).
    pub wc_sec: u32,
    /// Wallclock at boot: nanoseconds.
    pub wc_nsec: u32,
    /// Wallclock at boot: seconds (high 32 bits).
    pub wc_sec_hi: u32,
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::mem::{offset_of, size_of};

    /// Sizes and offsets from `xen.h` / `arch-arm.h` (Xen 4.17) for arm64.
    #[test]
    fn layouts() {
        assert_eq!(size_of::<vcpu_time_info>(), 32);
        assert_eq!(offset_of!(vcpu_time_info, system_time), 16);
        assert_eq!(offset_of!(vcpu_time_info, tsc_to_system_mul), 24);
        assert_eq!(size_of::<vcpu_info>(), 48);
        assert_eq!(offset_of!(vcpu_info, evtchn_pending_sel), 8);
        assert_eq!(offset_of!(vcpu_info, time), 16);
        assert_eq!(offset_of!(shared_info, evtchn_pending), 48);
        assert_eq!(offset_of!(shared_info, evtchn_mask), 48 + 512);
        assert_eq!(offset_of!(shared_info, wc_version), 48 + 1024);
        assert_eq!(offset_of!(shared_info, wc_sec_hi), 48 + 1024 + 12);
        assert_eq!(size_of::<shared_info>(), 1088);
    }
}
