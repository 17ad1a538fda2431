//! `__HYPERVISOR_hvm_op`'s parameter operations (`xen/include/public/hvm/hvm_op.h`,
//! `hvm/params.h`), which on Arm carry where a domain finds its xenstore ring and event channel.
//!
//! # Invariants
//! - Numbers and the [`xen_hvm_param`] layout are Xen 4.17's.

// Xen's spelling of its own names.
#![allow(non_camel_case_types, non_upper_case_globals)]

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// `hvm/hvm_op.h`: `HVMOP_set_param` (payload [`xen_hvm_param`]).
pub const HVMOP_set_param: u64 = 0;
/// `hvm/hvm_op.h`: `HVMOP_get_param` (payload [`xen_hvm_param`]).
pub const HVMOP_get_param: u64 = 1;

/// `hvm/params.h`: `HVM_PARAM_CALLBACK_IRQ`.
pub const HVM_PARAM_CALLBACK_IRQ: u32 = 0;
/// `hvm/params.h`: `HVM_PARAM_STORE_PFN`, the guest frame of the xenstore ring page.
pub const HVM_PARAM_STORE_PFN: u32 = 1;
/// `hvm/params.h`: `HVM_PARAM_STORE_EVTCHN`, the guest's port to xenstored.
pub const HVM_PARAM_STORE_EVTCHN: u32 = 2;
/// `hvm/params.h`: `HVM_PARAM_CONSOLE_PFN`.
pub const HVM_PARAM_CONSOLE_PFN: u32 = 17;
/// `hvm/params.h`: `HVM_PARAM_CONSOLE_EVTCHN`.
pub const HVM_PARAM_CONSOLE_EVTCHN: u32 = 18;
/// `hvm/params.h`: `HVM_NR_PARAMS`, one past the last parameter.
pub const HVM_NR_PARAMS: u32 = 39;
/// `xen/include/public/hvm/params.h`: `HVM_PARAM_MONITOR_RING_PFN`, the vm_event monitor
/// ring's frame (the toolstack's only).
pub const HVM_PARAM_MONITOR_RING_PFN: u32 = 28;
/// `xen/include/public/hvm/hvm_op.h`: `HVMOP_guest_request_vm_event`, a guest asks its monitor
/// for attention; the argument must be null.
pub const HVMOP_guest_request_vm_event: u64 = 24;

/// `hvm/hvm_op.h`: `struct xen_hvm_param`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct xen_hvm_param {
    /// IN: the domain (`DOMID_SELF` for the caller).
    pub domid: u16,
    /// Padding (the C struct's implicit hole).
    pub pad: u16,
    /// IN: `HVM_PARAM_*`.
    pub index: u32,
    /// IN (set) / OUT (get).
    pub value: u64,
}

#[cfg(test)]
mod tests {
    use core::mem::{offset_of, size_of};

    use super::*;

    #[test]
    fn layout_and_numbers() {
        assert_eq!(size_of::<xen_hvm_param>(), 16);
        assert_eq!(offset_of!(xen_hvm_param, index), 4);
        assert_eq!(offset_of!(xen_hvm_param, value), 8);
        assert_eq!((HVMOP_set_param, HVMOP_get_param), (0, 1));
        assert_eq!((HVM_PARAM_STORE_PFN, HVM_PARAM_STORE_EVTCHN), (1, 2));
    }
}
