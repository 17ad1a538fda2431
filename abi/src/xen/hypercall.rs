//! Hypercall numbers, the Arm calling convention, and the basic types the other modules' layouts
//! are built from (`xen/include/public/xen.h`, `xen/include/public/arch-arm.h`).
//!
//! # Calling convention (arm64)
//! A guest issues `hvc #0xEA1` ([`HYPERCALL_IMMEDIATE_ARM`]) with the hypercall number in x16
//! ([`HYPERCALL_NUMBER_REGISTER`]) and up to five arguments in x0-x4
//! ([`HYPERCALL_ARGUMENT_REGISTERS`]); the result comes back in x0 ([`HYPERCALL_RESULT_REGISTER`]):
//! zero or a positive value on success, a negated [`XenError`](super::errno::XenError) code on
//! failure. x16 and every argument register the call uses other than x0 may be clobbered. Xen
//! treats `hvc #0` as an SMCCC call (PSCI) and answers any other immediate with an undefined
//! instruction exception (`xen/arch/arm/traps.c`, `do_trap_hypercall`). Structures a hypercall
//! points at are little-endian and laid out by AAPCS64, even for 32-bit guests.
//!
//! # Names
//! Items Xen names keep Xen's spelling (`__HYPERVISOR_sched_op`, `domid_t`) so a Xen engineer can
//! grep for them; what Xen leaves unnamed, or what Rust adds ([`GuestHandle`]), gets a Rust name.
//!
//! # Invariants
//! - Every number is Xen 4.17's (`RELEASE-4.17.7`). Numbers Xen retired or never assigned are
//!   listed under "Gaps" below and are never given a new meaning here.
//! - Every layout in [`super`] is arm64's, which is also arm32's: guest handles and
//!   `xen_ulong_t` are 64 bits wide and 64-bit aligned on both.

// Xen's spelling of its own names (see "Names" above).
#![allow(non_upper_case_globals, non_camel_case_types)]

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// `xen/include/public/arch-arm.h`: `XEN_HYPERCALL_TAG`, the immediate of the `hvc` instruction
/// that makes a hypercall (`hvc #0xEA1`); it arrives in `ESR_EL2.ISS`.
pub const HYPERCALL_IMMEDIATE_ARM: u16 = 0xEA1;
/// `xen/include/public/arch-arm.h`, "Hypercall Calling Convention": the hypercall number is in
/// x16 on arm64 (r12 on arm32).
pub const HYPERCALL_NUMBER_REGISTER: usize = 16;
/// `xen/include/public/arch-arm.h`, "Hypercall Calling Convention": arguments one to five are in
/// x0-x4 (r0-r4 on arm32).
pub const HYPERCALL_ARGUMENT_REGISTERS: [usize; 5] = [0, 1, 2, 3, 4];
/// `xen/include/public/arch-arm.h`, "Hypercall Calling Convention": the result is in x0.
pub const HYPERCALL_RESULT_REGISTER: usize = 0;

// Hypercall numbers: `xen/include/public/xen.h`, `enum hypercall_num`.
//
// Gaps:
// - 11: `__HYPERVISOR_set_fast_trap` (x86-32 only), removed from `xen.h` in 2005.
// - 43-47: never assigned.
//
// Xen 4.17 on Arm (`xen/include/hypercall-defs.c`) serves platform_op, memory_op, multicall,
// xen_version, console_io, grant_table_op, vm_assist, vcpu_op, xsm_op, sched_op,
// event_channel_op, physdev_op, hvm_op, sysctl and domctl, plus argo_op, dm_op and hypfs_op when
// built with `CONFIG_ARGO`, `CONFIG_IOREQ_SERVER` and `CONFIG_HYPFS`; the three `*_compat` calls
// are deprecated there, and every other number is `-ENOSYS`.

/// `xen/include/public/xen.h`: `__HYPERVISOR_set_trap_table` (x86 PV only).
pub const __HYPERVISOR_set_trap_table: u64 = 0;
/// `xen/include/public/xen.h`: `__HYPERVISOR_mmu_update` (x86 PV only).
pub const __HYPERVISOR_mmu_update: u64 = 1;
/// `xen/include/public/xen.h`: `__HYPERVISOR_set_gdt` (x86 PV only).
pub const __HYPERVISOR_set_gdt: u64 = 2;
/// `xen/include/public/xen.h`: `__HYPERVISOR_stack_switch` (x86 PV only).
pub const __HYPERVISOR_stack_switch: u64 = 3;
/// `xen/include/public/xen.h`: `__HYPERVISOR_set_callbacks` (x86 PV only).
pub const __HYPERVISOR_set_callbacks: u64 = 4;
/// `xen/include/public/xen.h`: `__HYPERVISOR_fpu_taskswitch` (x86 PV only).
pub const __HYPERVISOR_fpu_taskswitch: u64 = 5;
/// `xen/include/public/xen.h`: `__HYPERVISOR_sched_op_compat`, superseded by
/// [`__HYPERVISOR_sched_op`] since interface 0x00030101.
pub const __HYPERVISOR_sched_op_compat: u64 = 6;
/// `xen/include/public/xen.h`: `__HYPERVISOR_platform_op` (was `dom0_op` before 0x00030204).
pub const __HYPERVISOR_platform_op: u64 = 7;
/// `xen/include/public/xen.h`: `__HYPERVISOR_set_debugreg` (x86 PV only).
pub const __HYPERVISOR_set_debugreg: u64 = 8;
/// `xen/include/public/xen.h`: `__HYPERVISOR_get_debugreg` (x86 PV only).
pub const __HYPERVISOR_get_debugreg: u64 = 9;
/// `xen/include/public/xen.h`: `__HYPERVISOR_update_descriptor` (x86 PV only).
pub const __HYPERVISOR_update_descriptor: u64 = 10;
/// `xen/include/public/xen.h`: `__HYPERVISOR_memory_op` (sub-operations in [`super::memory`]).
pub const __HYPERVISOR_memory_op: u64 = 12;
/// `xen/include/public/xen.h`: `__HYPERVISOR_multicall`.
pub const __HYPERVISOR_multicall: u64 = 13;
/// `xen/include/public/xen.h`: `__HYPERVISOR_update_va_mapping` (x86 PV only).
pub const __HYPERVISOR_update_va_mapping: u64 = 14;
/// `xen/include/public/xen.h`: `__HYPERVISOR_set_timer_op` (x86 only).
pub const __HYPERVISOR_set_timer_op: u64 = 15;
/// `xen/include/public/xen.h`: `__HYPERVISOR_event_channel_op_compat`, superseded by
/// [`__HYPERVISOR_event_channel_op`] since interface 0x00030202.
pub const __HYPERVISOR_event_channel_op_compat: u64 = 16;
/// `xen/include/public/xen.h`: `__HYPERVISOR_xen_version` (sub-operations in
/// [`super::version`]).
pub const __HYPERVISOR_xen_version: u64 = 17;
/// `xen/include/public/xen.h`: `__HYPERVISOR_console_io` (sub-operations in
/// [`super::console`]).
pub const __HYPERVISOR_console_io: u64 = 18;
/// `xen/include/public/xen.h`: `__HYPERVISOR_physdev_op_compat`, superseded by
/// [`__HYPERVISOR_physdev_op`] since interface 0x00030202.
pub const __HYPERVISOR_physdev_op_compat: u64 = 19;
/// `xen/include/public/xen.h`: `__HYPERVISOR_grant_table_op`.
pub const __HYPERVISOR_grant_table_op: u64 = 20;
/// `xen/include/public/xen.h`: `__HYPERVISOR_vm_assist`.
pub const __HYPERVISOR_vm_assist: u64 = 21;
/// `xen/include/public/xen.h`: `__HYPERVISOR_update_va_mapping_otherdomain` (x86 PV only).
pub const __HYPERVISOR_update_va_mapping_otherdomain: u64 = 22;
/// `xen/include/public/xen.h`: `__HYPERVISOR_iret` (x86 only).
pub const __HYPERVISOR_iret: u64 = 23;
/// `xen/include/public/xen.h`: `__HYPERVISOR_vcpu_op` (sub-operations in [`super::vcpu`]).
pub const __HYPERVISOR_vcpu_op: u64 = 24;
/// `xen/include/public/xen.h`: `__HYPERVISOR_set_segment_base` (x86-64 only).
pub const __HYPERVISOR_set_segment_base: u64 = 25;
/// `xen/include/public/xen.h`: `__HYPERVISOR_mmuext_op` (x86 only).
pub const __HYPERVISOR_mmuext_op: u64 = 26;
/// `xen/include/public/xen.h`: `__HYPERVISOR_xsm_op`.
pub const __HYPERVISOR_xsm_op: u64 = 27;
/// `xen/include/public/xen.h`: `__HYPERVISOR_nmi_op` (x86 only).
pub const __HYPERVISOR_nmi_op: u64 = 28;
/// `xen/include/public/xen.h`: `__HYPERVISOR_sched_op` (sub-operations in [`super::sched`]).
pub const __HYPERVISOR_sched_op: u64 = 29;
/// `xen/include/public/xen.h`: `__HYPERVISOR_callback_op` (x86 PV only).
pub const __HYPERVISOR_callback_op: u64 = 30;
/// `xen/include/public/xen.h`: `__HYPERVISOR_xenoprof_op` (x86 only).
pub const __HYPERVISOR_xenoprof_op: u64 = 31;
/// `xen/include/public/xen.h`: `__HYPERVISOR_event_channel_op`.
pub const __HYPERVISOR_event_channel_op: u64 = 32;
/// `xen/include/public/xen.h`: `__HYPERVISOR_physdev_op`.
pub const __HYPERVISOR_physdev_op: u64 = 33;
/// `xen/include/public/xen.h`: `__HYPERVISOR_hvm_op`.
pub const __HYPERVISOR_hvm_op: u64 = 34;
/// `xen/include/public/xen.h`: `__HYPERVISOR_sysctl` (sub-operations in [`super::sysctl`]).
pub const __HYPERVISOR_sysctl: u64 = 35;
/// `xen/include/public/xen.h`: `__HYPERVISOR_domctl` (sub-operations in [`super::domctl`]).
pub const __HYPERVISOR_domctl: u64 = 36;
/// `xen/include/public/xen.h`: `__HYPERVISOR_kexec_op` (x86 only).
pub const __HYPERVISOR_kexec_op: u64 = 37;
/// `xen/include/public/xen.h`: `__HYPERVISOR_tmem_op`; still defined, but Xen 4.13 removed
/// tmem and serves it nowhere.
pub const __HYPERVISOR_tmem_op: u64 = 38;
/// `xen/include/public/xen.h`: `__HYPERVISOR_argo_op`.
pub const __HYPERVISOR_argo_op: u64 = 39;
/// `xen/include/public/xen.h`: `__HYPERVISOR_xenpmu_op` (x86 only).
pub const __HYPERVISOR_xenpmu_op: u64 = 40;
/// `xen/include/public/xen.h`: `__HYPERVISOR_dm_op`.
pub const __HYPERVISOR_dm_op: u64 = 41;
/// `xen/include/public/xen.h`: `__HYPERVISOR_hypfs_op`.
pub const __HYPERVISOR_hypfs_op: u64 = 42;
/// `xen/include/public/xen.h`: `__HYPERVISOR_arch_0`, first of eight architecture-specific
/// numbers (x86 uses it for `mca`; Arm uses none).
pub const __HYPERVISOR_arch_0: u64 = 48;
/// `xen/include/public/xen.h`: `__HYPERVISOR_arch_1` (x86: `paging_domctl_cont`).
pub const __HYPERVISOR_arch_1: u64 = 49;
/// `xen/include/public/xen.h`: `__HYPERVISOR_arch_2`.
pub const __HYPERVISOR_arch_2: u64 = 50;
/// `xen/include/public/xen.h`: `__HYPERVISOR_arch_3`.
pub const __HYPERVISOR_arch_3: u64 = 51;
/// `xen/include/public/xen.h`: `__HYPERVISOR_arch_4`.
pub const __HYPERVISOR_arch_4: u64 = 52;
/// `xen/include/public/xen.h`: `__HYPERVISOR_arch_5`.
pub const __HYPERVISOR_arch_5: u64 = 53;
/// `xen/include/public/xen.h`: `__HYPERVISOR_arch_6`.
pub const __HYPERVISOR_arch_6: u64 = 54;
/// `xen/include/public/xen.h`: `__HYPERVISOR_arch_7`, last of the architecture-specific numbers.
pub const __HYPERVISOR_arch_7: u64 = 55;

/// `xen/include/public/xen.h`: `domid_t`, a domain id.
pub type domid_t = u16;
/// `xen/include/public/arch-arm.h`: `xen_pfn_t`, a frame number (64 bits on Arm).
pub type xen_pfn_t = u64;
/// `xen/include/public/arch-arm.h`: `xen_ulong_t` (64 bits on Arm, even for arm32 guests).
pub type xen_ulong_t = u64;
/// `xen/include/public/xen.h`: `xen_domain_handle_t`, a domain's 16-byte UUID.
pub type xen_domain_handle_t = [u8; 16];

/// `xen/include/public/xen.h`: `DOMID_FIRST_RESERVED`; ids from here up never name an ordinary
/// domain.
pub const DOMID_FIRST_RESERVED: domid_t = 0x7FF0;
/// `xen/include/public/xen.h`: `DOMID_SELF`, the calling domain.
pub const DOMID_SELF: domid_t = 0x7FF0;
/// `xen/include/public/xen.h`: `DOMID_IO`, owner of I/O memory in mapping requests.
pub const DOMID_IO: domid_t = 0x7FF1;
/// `xen/include/public/xen.h`: `DOMID_XEN`, owner of the hypervisor's own shareable pages.
pub const DOMID_XEN: domid_t = 0x7FF2;
/// `xen/include/public/xen.h`: `DOMID_COW`, owner of shared copy-on-write pages.
pub const DOMID_COW: domid_t = 0x7FF3;
/// `xen/include/public/xen.h`: `DOMID_INVALID`, "no domain" / unknown owner.
pub const DOMID_INVALID: domid_t = 0x7FF4;
/// `xen/include/public/xen.h`: `DOMID_IDLE`, the idle domain.
pub const DOMID_IDLE: domid_t = 0x7FFF;
/// `xen/include/public/xen.h`: `DOMID_MASK`, the bits a domain id uses.
pub const DOMID_MASK: domid_t = 0x7FFF;

/// `xen/include/public/arch-arm.h`: `XEN_GUEST_HANDLE(type)` as a structure field: a guest
/// address, 8 bytes wide and 8-byte aligned on Arm whatever the guest's word size (a union of a
/// pointer and a `uint64_aligned_t`). The pointee type is in each field's documentation.
///
/// The address is only alleged: the guest wrote it. Nothing may dereference it except through
/// the core's one validating guest-memory accessor. Zero is the null handle.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
pub struct GuestHandle(u64);

impl GuestHandle {
    /// The null handle.
    pub const NULL: Self = Self(0);

    /// A handle to guest address `address`.
    pub const fn new(address: u64) -> Self {
        Self(address)
    }

    /// The guest address, unchecked.
    pub const fn address(self) -> u64 {
        self.0
    }

    /// Whether this is the null handle (Xen's `guest_handle_is_null`).
    pub const fn is_null(self) -> bool {
        self.0 == 0
    }
}

/// Asserts a `#[repr(C)]` type's size, alignment and field offsets (host tests of every module).
#[cfg(test)]
macro_rules! assert_layout {
    ($type:ty, size = $size:expr, align = $align:expr, { $($field:ident @ $offset:expr),* $(,)? }) => {{
        assert_eq!(core::mem::size_of::<$type>(), $size, concat!("size of ", stringify!($type)));
        assert_eq!(core::mem::align_of::<$type>(), $align, concat!("alignment of ", stringify!($type)));
        $(
            assert_eq!(
                core::mem::offset_of!($type, $field),
                $offset,
                concat!("offset of ", stringify!($type), ".", stringify!($field))
            );
        )*
    }};
}
#[cfg(test)]
pub(crate) use assert_layout;

#[cfg(test)]
mod tests {
    use super::*;

    /// `xen/include/public/xen.h`, `enum hypercall_num`: spot checks, and the gaps stay gaps.
    #[test]
    fn hypercall_numbers() {
        assert_eq!(__HYPERVISOR_memory_op, 12);
        assert_eq!(__HYPERVISOR_xen_version, 17);
        assert_eq!(__HYPERVISOR_console_io, 18);
        assert_eq!(__HYPERVISOR_vcpu_op, 24);
        assert_eq!(__HYPERVISOR_sched_op, 29);
        assert_eq!(__HYPERVISOR_event_channel_op, 32);
        assert_eq!(__HYPERVISOR_sysctl, 35);
        assert_eq!(__HYPERVISOR_domctl, 36);
        assert_eq!(__HYPERVISOR_hypfs_op, 42);
        assert_eq!(__HYPERVISOR_arch_0, 48);
        assert_eq!(__HYPERVISOR_arch_7, 55);
        let assigned = [
            __HYPERVISOR_set_trap_table,
            __HYPERVISOR_mmu_update,
            __HYPERVISOR_set_gdt,
            __HYPERVISOR_stack_switch,
            __HYPERVISOR_set_callbacks,
            __HYPERVISOR_fpu_taskswitch,
            __HYPERVISOR_sched_op_compat,
            __HYPERVISOR_platform_op,
            __HYPERVISOR_set_debugreg,
            __HYPERVISOR_get_debugreg,
            __HYPERVISOR_update_descriptor,
            __HYPERVISOR_memory_op,
            __HYPERVISOR_multicall,
            __HYPERVISOR_update_va_mapping,
            __HYPERVISOR_set_timer_op,
            __HYPERVISOR_event_channel_op_compat,
            __HYPERVISOR_xen_version,
            __HYPERVISOR_console_io,
            __HYPERVISOR_physdev_op_compat,
            __HYPERVISOR_grant_table_op,
            __HYPERVISOR_vm_assist,
            __HYPERVISOR_update_va_mapping_otherdomain,
            __HYPERVISOR_iret,
            __HYPERVISOR_vcpu_op,
            __HYPERVISOR_set_segment_base,
            __HYPERVISOR_mmuext_op,
            __HYPERVISOR_xsm_op,
            __HYPERVISOR_nmi_op,
            __HYPERVISOR_sched_op,
            __HYPERVISOR_callback_op,
            __HYPERVISOR_xenoprof_op,
            __HYPERVISOR_event_channel_op,
            __HYPERVISOR_physdev_op,
            __HYPERVISOR_hvm_op,
            __HYPERVISOR_sysctl,
            __HYPERVISOR_domctl,
            __HYPERVISOR_kexec_op,
            __HYPERVISOR_tmem_op,
            __HYPERVISOR_argo_op,
            __HYPERVISOR_xenpmu_op,
            __HYPERVISOR_dm_op,
            __HYPERVISOR_hypfs_op,
        ];
        let expected: Vec<u64> = (0..=42).filter(|&number| number != 11).collect();
        assert_eq!(assigned.to_vec(), expected);
    }

    /// `xen/include/public/arch-arm.h`: `XEN_HYPERCALL_TAG` and the register convention.
    #[test]
    fn calling_convention() {
        assert_eq!(HYPERCALL_IMMEDIATE_ARM, 0xEA1);
        assert_eq!(HYPERCALL_NUMBER_REGISTER, 16);
        assert_eq!(HYPERCALL_ARGUMENT_REGISTERS, [0, 1, 2, 3, 4]);
        assert_eq!(HYPERCALL_RESULT_REGISTER, 0);
    }

    /// `xen/include/public/xen.h`: the reserved domain ids.
    #[test]
    fn reserved_domain_ids() {
        assert_eq!(DOMID_SELF, DOMID_FIRST_RESERVED);
        assert_eq!(
            [DOMID_IO, DOMID_XEN, DOMID_COW, DOMID_INVALID],
            [0x7FF1, 0x7FF2, 0x7FF3, 0x7FF4]
        );
        assert_eq!(DOMID_IDLE & DOMID_MASK, DOMID_IDLE);
    }

    /// `xen/include/public/arch-arm.h`: a guest handle is 8 bytes, 8-byte aligned.
    #[test]
    fn guest_handle_layout() {
        assert_layout!(GuestHandle, size = 8, align = 8, {});
        assert!(GuestHandle::NULL.is_null());
        assert_eq!(GuestHandle::new(0x4000).address(), 0x4000);
    }
}
