//! The domain control hypercall, `domctl(struct xen_domctl *)` (`xen/include/public/domctl.h`):
//! the toolstack's interface to create, pause, size, schedule and destroy domains.
//!
//! x0 is the guest address of one [`xen_domctl`]: a 16-byte header naming the command and the
//! target domain, then a 128-byte union holding the command's payload ([`DomctlPayload`]). Xen
//! copies the whole structure in, answers `-EACCES` unless `interface_version` is
//! [`XEN_DOMCTL_INTERFACE_VERSION`], and copies it back out for commands with OUT fields.
//!
//! # Invariants
//! - Numbers are Xen 4.17's (`XEN_DOMCTL_INTERFACE_VERSION` 0x15). The command numbers Xen
//!   retired, never assigned, or keeps to itself are listed under "Gaps" and never reused;
//!   Xenolith's own commands live in [`super::private`], far above Xen's.
//! - Every structure's size and field offsets are pinned by the tests in `domctl/tests.rs`
//!   (arm64 layout), and every payload fits the 128-byte union.

// Xen's spelling of its own names (see `hypercall`).
#![allow(non_upper_case_globals, non_camel_case_types)]

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use super::hypercall::{domid_t, xen_domain_handle_t, GuestHandle};

#[cfg(test)]
mod tests;

/// `xen/include/public/domctl.h`: `XEN_DOMCTL_INTERFACE_VERSION` in Xen 4.17.
pub const XEN_DOMCTL_INTERFACE_VERSION: u32 = 0x0000_0015;

// Command numbers: `xen/include/public/domctl.h`, `struct xen_domctl`, field `cmd`.
//
// Gaps:
// - 6 `getmemlist` (removed); 7 `getpageframeinfo` and 8 `getpageframeinfo2` (obsolete, use 61).
// - 23: `soft_reset_cont` exists only inside Xen (`#ifdef __XEN__`, its own continuation of
//   [`XEN_DOMCTL_soft_reset`]); formerly `arch_setup` (IA64).
// - 30-32: never assigned in `domctl.h`.
// - 41 `pin_mem_cacheattr` (removed, use dm_op); 49 `set_cpuid` (obsolete, use set_cpu_policy);
//   51 `set_machine_address_size`, 52 `get_machine_address_size`,
//   53 `suppress_spurious_page_faults`, 58 `disable_migrate` (obsolete).
// - 70 `set_max_evtchn` and 80 `set_gnttab_limits` (moved into createdomain);
//   76 `arm_configure_domain` (folded into createdomain in 2015).
// - 87-999: unassigned; Xen continues from 87. 1004 and up: unassigned.

/// `xen/include/public/domctl.h`: `XEN_DOMCTL_createdomain`. Payload:
/// [`xen_domctl_createdomain`]. `domain` is IN/OUT: 0 or an id from `DOMID_FIRST_RESERVED` up
/// asks the hypervisor to choose one.
pub const XEN_DOMCTL_createdomain: u32 = 1;
/// `xen/include/public/domctl.h`: `XEN_DOMCTL_destroydomain`. No payload; Xen preempts a long
/// teardown and continues the same hypercall.
pub const XEN_DOMCTL_destroydomain: u32 = 2;
/// `xen/include/public/domctl.h`: `XEN_DOMCTL_pausedomain`. No payload.
pub const XEN_DOMCTL_pausedomain: u32 = 3;
/// `xen/include/public/domctl.h`: `XEN_DOMCTL_unpausedomain`. No payload.
pub const XEN_DOMCTL_unpausedomain: u32 = 4;
/// `xen/include/public/domctl.h`: `XEN_DOMCTL_getdomaininfo`. Payload (OUT):
/// [`xen_domctl_getdomaininfo`].
pub const XEN_DOMCTL_getdomaininfo: u32 = 5;
/// `xen/include/public/domctl.h`: `XEN_DOMCTL_setvcpuaffinity`. Payload:
/// [`xen_domctl_vcpuaffinity`].
pub const XEN_DOMCTL_setvcpuaffinity: u32 = 9;
/// `xen/include/public/domctl.h`: `XEN_DOMCTL_shadow_op` (paging modes, log-dirty).
pub const XEN_DOMCTL_shadow_op: u32 = 10;
/// `xen/include/public/domctl.h`: `XEN_DOMCTL_max_mem`. Payload: [`xen_domctl_max_mem`].
pub const XEN_DOMCTL_max_mem: u32 = 11;
/// `xen/include/public/domctl.h`: `XEN_DOMCTL_setvcpucontext`.
pub const XEN_DOMCTL_setvcpucontext: u32 = 12;
/// `xen/include/public/domctl.h`: `XEN_DOMCTL_getvcpucontext`.
pub const XEN_DOMCTL_getvcpucontext: u32 = 13;
/// `xen/include/public/domctl.h`: `XEN_DOMCTL_getvcpuinfo`.
pub const XEN_DOMCTL_getvcpuinfo: u32 = 14;
/// `xen/include/public/domctl.h`: `XEN_DOMCTL_max_vcpus`, allocate the vCPUs; must match
/// createdomain's `max_vcpus`. Payload: [`xen_domctl_max_vcpus`].
pub const XEN_DOMCTL_max_vcpus: u32 = 15;
/// `xen/include/public/domctl.h`: `XEN_DOMCTL_scheduler_op`. Payload:
/// [`xen_domctl_scheduler_op`].
pub const XEN_DOMCTL_scheduler_op: u32 = 16;
/// `xen/include/public/domctl.h`: `XEN_DOMCTL_setdomainhandle`.
pub const XEN_DOMCTL_setdomainhandle: u32 = 17;
/// `xen/include/public/domctl.h`: `XEN_DOMCTL_setdebugging`.
pub const XEN_DOMCTL_setdebugging: u32 = 18;
/// `xen/include/public/domctl.h`: `XEN_DOMCTL_irq_permission` (not implemented on Arm).
pub const XEN_DOMCTL_irq_permission: u32 = 19;
/// `xen/include/public/domctl.h`: `XEN_DOMCTL_iomem_permission`.
pub const XEN_DOMCTL_iomem_permission: u32 = 20;
/// `xen/include/public/domctl.h`: `XEN_DOMCTL_ioport_permission` (x86).
pub const XEN_DOMCTL_ioport_permission: u32 = 21;
/// `xen/include/public/domctl.h`: `XEN_DOMCTL_hypercall_init` (x86).
pub const XEN_DOMCTL_hypercall_init: u32 = 22;
/// `xen/include/public/domctl.h`: `XEN_DOMCTL_settimeoffset`.
pub const XEN_DOMCTL_settimeoffset: u32 = 24;
/// `xen/include/public/domctl.h`: `XEN_DOMCTL_getvcpuaffinity`. Payload:
/// [`xen_domctl_vcpuaffinity`].
pub const XEN_DOMCTL_getvcpuaffinity: u32 = 25;
/// `xen/include/public/domctl.h`: `XEN_DOMCTL_real_mode_area` (obsolete, PowerPC only).
pub const XEN_DOMCTL_real_mode_area: u32 = 26;
/// `xen/include/public/domctl.h`: `XEN_DOMCTL_resumedomain`.
pub const XEN_DOMCTL_resumedomain: u32 = 27;
/// `xen/include/public/domctl.h`: `XEN_DOMCTL_sendtrigger`.
pub const XEN_DOMCTL_sendtrigger: u32 = 28;
/// `xen/include/public/domctl.h`: `XEN_DOMCTL_subscribe`.
pub const XEN_DOMCTL_subscribe: u32 = 29;
/// `xen/include/public/domctl.h`: `XEN_DOMCTL_gethvmcontext`.
pub const XEN_DOMCTL_gethvmcontext: u32 = 33;
/// `xen/include/public/domctl.h`: `XEN_DOMCTL_sethvmcontext`.
pub const XEN_DOMCTL_sethvmcontext: u32 = 34;
/// `xen/include/public/domctl.h`: `XEN_DOMCTL_set_address_size`.
pub const XEN_DOMCTL_set_address_size: u32 = 35;
/// `xen/include/public/domctl.h`: `XEN_DOMCTL_get_address_size`.
pub const XEN_DOMCTL_get_address_size: u32 = 36;
/// `xen/include/public/domctl.h`: `XEN_DOMCTL_assign_device`.
pub const XEN_DOMCTL_assign_device: u32 = 37;
/// `xen/include/public/domctl.h`: `XEN_DOMCTL_bind_pt_irq`.
pub const XEN_DOMCTL_bind_pt_irq: u32 = 38;
/// `xen/include/public/domctl.h`: `XEN_DOMCTL_memory_mapping`.
pub const XEN_DOMCTL_memory_mapping: u32 = 39;
/// `xen/include/public/domctl.h`: `XEN_DOMCTL_ioport_mapping` (x86).
pub const XEN_DOMCTL_ioport_mapping: u32 = 40;
/// `xen/include/public/domctl.h`: `XEN_DOMCTL_set_ext_vcpucontext`.
pub const XEN_DOMCTL_set_ext_vcpucontext: u32 = 42;
/// `xen/include/public/domctl.h`: `XEN_DOMCTL_get_ext_vcpucontext`.
pub const XEN_DOMCTL_get_ext_vcpucontext: u32 = 43;
/// `xen/include/public/domctl.h`: `XEN_DOMCTL_set_opt_feature` (obsolete, IA64 only).
pub const XEN_DOMCTL_set_opt_feature: u32 = 44;
/// `xen/include/public/domctl.h`: `XEN_DOMCTL_test_assign_device`.
pub const XEN_DOMCTL_test_assign_device: u32 = 45;
/// `xen/include/public/domctl.h`: `XEN_DOMCTL_set_target`.
pub const XEN_DOMCTL_set_target: u32 = 46;
/// `xen/include/public/domctl.h`: `XEN_DOMCTL_deassign_device`.
pub const XEN_DOMCTL_deassign_device: u32 = 47;
/// `xen/include/public/domctl.h`: `XEN_DOMCTL_unbind_pt_irq`.
pub const XEN_DOMCTL_unbind_pt_irq: u32 = 48;
/// `xen/include/public/domctl.h`: `XEN_DOMCTL_get_device_group`.
pub const XEN_DOMCTL_get_device_group: u32 = 50;
/// `xen/include/public/domctl.h`: `XEN_DOMCTL_debug_op`.
pub const XEN_DOMCTL_debug_op: u32 = 54;
/// `xen/include/public/domctl.h`: `XEN_DOMCTL_gethvmcontext_partial`.
pub const XEN_DOMCTL_gethvmcontext_partial: u32 = 55;
/// `xen/include/public/domctl.h`: `XEN_DOMCTL_vm_event_op`.
pub const XEN_DOMCTL_vm_event_op: u32 = 56;
/// `xen/include/public/domctl.h`: `XEN_DOMCTL_mem_sharing_op`.
pub const XEN_DOMCTL_mem_sharing_op: u32 = 57;
/// `xen/include/public/domctl.h`: `XEN_DOMCTL_gettscinfo` (x86).
pub const XEN_DOMCTL_gettscinfo: u32 = 59;
/// `xen/include/public/domctl.h`: `XEN_DOMCTL_settscinfo` (x86).
pub const XEN_DOMCTL_settscinfo: u32 = 60;
/// `xen/include/public/domctl.h`: `XEN_DOMCTL_getpageframeinfo3`.
pub const XEN_DOMCTL_getpageframeinfo3: u32 = 61;
/// `xen/include/public/domctl.h`: `XEN_DOMCTL_setvcpuextstate` (x86).
pub const XEN_DOMCTL_setvcpuextstate: u32 = 62;
/// `xen/include/public/domctl.h`: `XEN_DOMCTL_getvcpuextstate` (x86).
pub const XEN_DOMCTL_getvcpuextstate: u32 = 63;
/// `xen/include/public/domctl.h`: `XEN_DOMCTL_set_access_required`.
pub const XEN_DOMCTL_set_access_required: u32 = 64;
/// `xen/include/public/domctl.h`: `XEN_DOMCTL_audit_p2m`.
pub const XEN_DOMCTL_audit_p2m: u32 = 65;
/// `xen/include/public/domctl.h`: `XEN_DOMCTL_set_virq_handler`.
pub const XEN_DOMCTL_set_virq_handler: u32 = 66;
/// `xen/include/public/domctl.h`: `XEN_DOMCTL_set_broken_page_p2m` (x86).
pub const XEN_DOMCTL_set_broken_page_p2m: u32 = 67;
/// `xen/include/public/domctl.h`: `XEN_DOMCTL_setnodeaffinity`.
pub const XEN_DOMCTL_setnodeaffinity: u32 = 68;
/// `xen/include/public/domctl.h`: `XEN_DOMCTL_getnodeaffinity`.
pub const XEN_DOMCTL_getnodeaffinity: u32 = 69;
/// `xen/include/public/domctl.h`: `XEN_DOMCTL_cacheflush`.
pub const XEN_DOMCTL_cacheflush: u32 = 71;
/// `xen/include/public/domctl.h`: `XEN_DOMCTL_get_vcpu_msrs` (x86).
pub const XEN_DOMCTL_get_vcpu_msrs: u32 = 72;
/// `xen/include/public/domctl.h`: `XEN_DOMCTL_set_vcpu_msrs` (x86).
pub const XEN_DOMCTL_set_vcpu_msrs: u32 = 73;
/// `xen/include/public/domctl.h`: `XEN_DOMCTL_setvnumainfo`.
pub const XEN_DOMCTL_setvnumainfo: u32 = 74;
/// `xen/include/public/domctl.h`: `XEN_DOMCTL_psr_cmt_op` (x86).
pub const XEN_DOMCTL_psr_cmt_op: u32 = 75;
/// `xen/include/public/domctl.h`: `XEN_DOMCTL_monitor_op`.
pub const XEN_DOMCTL_monitor_op: u32 = 77;
/// `xen/include/public/domctl.h`: `XEN_DOMCTL_psr_alloc` (x86).
pub const XEN_DOMCTL_psr_alloc: u32 = 78;
/// `xen/include/public/domctl.h`: `XEN_DOMCTL_soft_reset`.
pub const XEN_DOMCTL_soft_reset: u32 = 79;
/// `xen/include/public/domctl.h`: `XEN_DOMCTL_vuart_op`.
pub const XEN_DOMCTL_vuart_op: u32 = 81;
/// `xen/include/public/domctl.h`: `XEN_DOMCTL_get_cpu_policy` (x86).
pub const XEN_DOMCTL_get_cpu_policy: u32 = 82;
/// `xen/include/public/domctl.h`: `XEN_DOMCTL_set_cpu_policy` (x86).
pub const XEN_DOMCTL_set_cpu_policy: u32 = 83;
/// `xen/include/public/domctl.h`: `XEN_DOMCTL_vmtrace_op` (x86).
pub const XEN_DOMCTL_vmtrace_op: u32 = 84;
/// `xen/include/public/domctl.h`: `XEN_DOMCTL_get_paging_mempool_size`.
pub const XEN_DOMCTL_get_paging_mempool_size: u32 = 85;
/// `xen/include/public/domctl.h`: `XEN_DOMCTL_set_paging_mempool_size`.
pub const XEN_DOMCTL_set_paging_mempool_size: u32 = 86;
/// `xen/include/public/domctl.h`: `XEN_DOMCTL_gdbsx_guestmemio` (x86 debugger).
pub const XEN_DOMCTL_gdbsx_guestmemio: u32 = 1000;
/// `xen/include/public/domctl.h`: `XEN_DOMCTL_gdbsx_pausevcpu` (x86 debugger).
pub const XEN_DOMCTL_gdbsx_pausevcpu: u32 = 1001;
/// `xen/include/public/domctl.h`: `XEN_DOMCTL_gdbsx_unpausevcpu` (x86 debugger).
pub const XEN_DOMCTL_gdbsx_unpausevcpu: u32 = 1002;
/// `xen/include/public/domctl.h`: `XEN_DOMCTL_gdbsx_domstatus` (x86 debugger).
pub const XEN_DOMCTL_gdbsx_domstatus: u32 = 1003;

/// `xen/include/public/domctl.h`: `struct xen_domctl`, the argument of every domctl.
#[repr(C)]
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct xen_domctl {
    /// A `XEN_DOMCTL_*` command (or a Xenolith one from [`super::private`]).
    pub cmd: u32,
    /// Must be [`XEN_DOMCTL_INTERFACE_VERSION`].
    pub interface_version: u32,
    /// The target domain (IN/OUT for [`XEN_DOMCTL_createdomain`]).
    pub domain: domid_t,
    /// Padding, explicit in C too.
    pub _pad: [u16; 3],
    /// The command's payload.
    pub u: DomctlPayload,
}

xen_union!(
    /// `xen/include/public/domctl.h`: the anonymous union `u` of [`xen_domctl`]: every payload
    /// structure overlaid on `uint8_t pad[128]`, 8-byte aligned by its `uint64_aligned_t` members.
    /// Members start at byte 0; read and write them with [`DomctlPayload::read`] and
    /// [`DomctlPayload::write`].
    DomctlPayload,
    16
);

/// `xen/include/public/xen.h`: `struct xenctl_bitmap` (tools only), a bitmap of CPUs or nodes.
#[repr(C)]
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct xenctl_bitmap {
    /// Bytes of the bitmap (`uint8_t`), bit `n` in byte `n / 8`, bit `n % 8`.
    pub bitmap: GuestHandle,
    /// Number of bits in `bitmap`.
    pub nr_bits: u32,
    /// Implicit C tail padding (the struct is 8-byte aligned), made explicit; Xen ignores it.
    pub _pad: u32,
}

/// `xen/include/public/arch-arm.h`: `XEN_DOMCTL_CONFIG_GIC_NATIVE`, "the host's version"; Xen
/// replaces it with the actual one in createdomain's OUT copy.
pub const XEN_DOMCTL_CONFIG_GIC_NATIVE: u8 = 0;
/// `xen/include/public/arch-arm.h`: `XEN_DOMCTL_CONFIG_GIC_V2`.
pub const XEN_DOMCTL_CONFIG_GIC_V2: u8 = 1;
/// `xen/include/public/arch-arm.h`: `XEN_DOMCTL_CONFIG_GIC_V3`.
pub const XEN_DOMCTL_CONFIG_GIC_V3: u8 = 2;
/// `xen/include/public/arch-arm.h`: `XEN_DOMCTL_CONFIG_TEE_NONE`.
pub const XEN_DOMCTL_CONFIG_TEE_NONE: u16 = 0;
/// `xen/include/public/arch-arm.h`: `XEN_DOMCTL_CONFIG_TEE_OPTEE`.
pub const XEN_DOMCTL_CONFIG_TEE_OPTEE: u16 = 1;

/// `xen/include/public/arch-arm.h`: `struct xen_arch_domainconfig` (Arm's; its ABI is covered
/// by [`XEN_DOMCTL_INTERFACE_VERSION`]).
#[repr(C)]
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct xen_arch_domainconfig {
    /// IN/OUT: a `XEN_DOMCTL_CONFIG_GIC_*`.
    pub gic_version: u8,
    /// Implicit C padding before `tee_type`, made explicit; Xen ignores it.
    pub _pad: u8,
    /// IN: a `XEN_DOMCTL_CONFIG_TEE_*`.
    pub tee_type: u16,
    /// IN: number of shared peripheral interrupts the virtual GIC provides.
    pub nr_spis: u32,
    /// OUT: the host timer's device-tree `clock-frequency` (Hz), for the guest's device tree
    /// where firmware left CNTFRQ wrong; 0 when the property is absent.
    pub clock_frequency: u32,
}

/// `xen/include/public/domctl.h`: `XEN_DOMCTL_CDF_hvm`, a hardware-virtualised guest (required
/// on Arm).
pub const XEN_DOMCTL_CDF_hvm: u32 = 1 << 0;
/// `xen/include/public/domctl.h`: `XEN_DOMCTL_CDF_hap`, hardware-assisted paging (required on
/// Arm).
pub const XEN_DOMCTL_CDF_hap: u32 = 1 << 1;
/// `xen/include/public/domctl.h`: `XEN_DOMCTL_CDF_s3_integrity` (x86 tboot).
pub const XEN_DOMCTL_CDF_s3_integrity: u32 = 1 << 2;
/// `xen/include/public/domctl.h`: `XEN_DOMCTL_CDF_oos_off` (x86 shadow paging).
pub const XEN_DOMCTL_CDF_oos_off: u32 = 1 << 3;
/// `xen/include/public/domctl.h`: `XEN_DOMCTL_CDF_xs_domain`, the xenstore domain.
pub const XEN_DOMCTL_CDF_xs_domain: u32 = 1 << 4;
/// `xen/include/public/domctl.h`: `XEN_DOMCTL_CDF_iommu`, may use the IOMMU (optional on Arm).
pub const XEN_DOMCTL_CDF_iommu: u32 = 1 << 5;
/// `xen/include/public/domctl.h`: `XEN_DOMCTL_CDF_nested_virt`.
pub const XEN_DOMCTL_CDF_nested_virt: u32 = 1 << 6;
/// `xen/include/public/domctl.h`: `XEN_DOMCTL_CDF_vpmu`, expose the vPMU (optional on Arm).
pub const XEN_DOMCTL_CDF_vpmu: u32 = 1 << 7;
/// `xen/include/public/domctl.h`: `XEN_DOMCTL_CDF_MAX`, the highest flag.
pub const XEN_DOMCTL_CDF_MAX: u32 = XEN_DOMCTL_CDF_vpmu;
/// `xen/include/public/domctl.h`: `XEN_DOMCTL_IOMMU_no_sharept`, do not share stage 2 with the
/// IOMMU (refused on Arm).
pub const XEN_DOMCTL_IOMMU_no_sharept: u32 = 1 << 0;
/// `xen/include/public/domctl.h`: `XEN_DOMCTL_IOMMU_MAX`, the highest IOMMU option.
pub const XEN_DOMCTL_IOMMU_MAX: u32 = XEN_DOMCTL_IOMMU_no_sharept;
/// `xen/include/public/domctl.h`: `XEN_DOMCTL_GRANT_version_mask`, `grant_opts` bits 3:0 hold
/// the highest grant table version the domain may use.
pub const XEN_DOMCTL_GRANT_version_mask: u32 = 0xf;

/// `xen/include/public/domctl.h`: `struct xen_domctl_createdomain`.
#[repr(C)]
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct xen_domctl_createdomain {
    /// IN: XSM security label.
    pub ssidref: u32,
    /// IN: the domain's UUID.
    pub handle: xen_domain_handle_t,
    /// IN: `XEN_DOMCTL_CDF_*`.
    pub flags: u32,
    /// IN: `XEN_DOMCTL_IOMMU_*`.
    pub iommu_opts: u32,
    /// IN: number of vCPUs.
    pub max_vcpus: u32,
    /// IN: highest event channel port.
    pub max_evtchn_port: u32,
    /// IN: grant table frames; negative means the hypervisor's default.
    pub max_grant_frames: i32,
    /// IN: maptrack frames; negative means the hypervisor's default.
    pub max_maptrack_frames: i32,
    /// IN: grant options (version in [`XEN_DOMCTL_GRANT_version_mask`]).
    pub grant_opts: u32,
    /// IN: per-vCPU trace buffer bytes, 0 for none.
    pub vmtrace_size: u32,
    /// IN: CPU pool, 0 for the default.
    pub cpupool_id: u32,
    /// IN/OUT: Arm-specific configuration.
    pub arch: xen_arch_domainconfig,
}

/// `xen/include/public/domctl.h`: `XEN_DOMINF_dying`, being destroyed.
pub const XEN_DOMINF_dying: u32 = 1 << 0;
/// `xen/include/public/domctl.h`: `XEN_DOMINF_hvm_guest`, hardware-virtualised (every Arm
/// guest).
pub const XEN_DOMINF_hvm_guest: u32 = 1 << 1;
/// `xen/include/public/domctl.h`: `XEN_DOMINF_shutdown`, the guest shut down; the reason is in
/// bits 23:16.
pub const XEN_DOMINF_shutdown: u32 = 1 << 2;
/// `xen/include/public/domctl.h`: `XEN_DOMINF_paused`, paused by the toolstack.
pub const XEN_DOMINF_paused: u32 = 1 << 3;
/// `xen/include/public/domctl.h`: `XEN_DOMINF_blocked`, every vCPU waits for an event.
pub const XEN_DOMINF_blocked: u32 = 1 << 4;
/// `xen/include/public/domctl.h`: `XEN_DOMINF_running`, a vCPU is running.
pub const XEN_DOMINF_running: u32 = 1 << 5;
/// `xen/include/public/domctl.h`: `XEN_DOMINF_debugged`, under a debugger.
pub const XEN_DOMINF_debugged: u32 = 1 << 6;
/// `xen/include/public/domctl.h`: `XEN_DOMINF_xs_domain`, the xenstore domain.
pub const XEN_DOMINF_xs_domain: u32 = 1 << 7;
/// `xen/include/public/domctl.h`: `XEN_DOMINF_hap`, uses hardware-assisted paging.
pub const XEN_DOMINF_hap: u32 = 1 << 8;
/// `xen/include/public/domctl.h`: `XEN_DOMINF_shutdownmask`, mask of the shutdown reason after
/// shifting by [`XEN_DOMINF_shutdownshift`].
pub const XEN_DOMINF_shutdownmask: u32 = 255;
/// `xen/include/public/domctl.h`: `XEN_DOMINF_shutdownshift`.
pub const XEN_DOMINF_shutdownshift: u32 = 16;
/// `xen/include/public/domctl.h`: `XEN_INVALID_MAX_VCPU_ID`, `max_vcpu_id` of a domain with no
/// vCPUs.
pub const XEN_INVALID_MAX_VCPU_ID: u32 = !0;

/// `xen/include/public/domctl.h`: `struct xen_domctl_getdomaininfo` (all OUT; also the element
/// of `XEN_SYSCTL_getdomaininfolist`'s buffer).
#[repr(C)]
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct xen_domctl_getdomaininfo {
    /// The domain described (also echoed in [`xen_domctl::domain`]).
    pub domain: domid_t,
    /// Padding, explicit in C too.
    pub pad1: u16,
    /// `XEN_DOMINF_*`, with the shutdown reason in bits 23:16.
    pub flags: u32,
    /// Pages allocated to the domain.
    pub tot_pages: u64,
    /// Page limit.
    pub max_pages: u64,
    /// Pages claimed but not yet allocated.
    pub outstanding_pages: u64,
    /// Shared pages (memory sharing).
    pub shr_pages: u64,
    /// Paged-out pages (memory paging).
    pub paged_pages: u64,
    /// Guest frame of the shared info page.
    pub shared_info_frame: u64,
    /// CPU time used, in nanoseconds.
    pub cpu_time: u64,
    /// vCPUs currently up.
    pub nr_online_vcpus: u32,
    /// Highest vCPU id, or [`XEN_INVALID_MAX_VCPU_ID`].
    pub max_vcpu_id: u32,
    /// XSM security label.
    pub ssidref: u32,
    /// The domain's UUID.
    pub handle: xen_domain_handle_t,
    /// CPU pool.
    pub cpupool: u32,
    /// Size of the guest physical address space, in bits.
    pub gpaddr_bits: u8,
    /// Padding, explicit in C too.
    pub pad2: [u8; 7],
    /// The domain's Arm configuration.
    pub arch_config: xen_arch_domainconfig,
    /// Implicit C tail padding (the struct is 8-byte aligned), made explicit; written as zero.
    pub _pad3: u32,
}

/// `xen/include/public/domctl.h`: `struct xen_domctl_max_mem`.
#[repr(C)]
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct xen_domctl_max_mem {
    /// IN: the memory limit in KiB.
    pub max_memkb: u64,
}

/// `xen/include/public/domctl.h`: `XEN_VCPUAFFINITY_HARD`, the hard affinity (where the vCPU
/// may run).
pub const XEN_VCPUAFFINITY_HARD: u32 = 1 << 0;
/// `xen/include/public/domctl.h`: `XEN_VCPUAFFINITY_SOFT`, the soft affinity (where it
/// prefers to run).
pub const XEN_VCPUAFFINITY_SOFT: u32 = 1 << 1;
/// `xen/include/public/domctl.h`: `XEN_VCPUAFFINITY_FORCE`, undo a `SCHEDOP_pin_override`.
pub const XEN_VCPUAFFINITY_FORCE: u32 = 1 << 2;

/// `xen/include/public/domctl.h`: `struct xen_domctl_vcpuaffinity`.
#[repr(C)]
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct xen_domctl_vcpuaffinity {
    /// IN: the vCPU.
    pub vcpu: u32,
    /// IN: `XEN_VCPUAFFINITY_*`, which maps to set or get.
    pub flags: u32,
    /// IN/OUT: hard affinity. Set writes back the effective map (intersected with the pool's
    /// online CPUs); get returns the map as set.
    pub cpumap_hard: xenctl_bitmap,
    /// IN/OUT: soft affinity. Set writes back the effective map (also intersected with the
    /// hard affinity); get returns the map as set.
    pub cpumap_soft: xenctl_bitmap,
}

/// `xen/include/public/domctl.h`: `struct xen_domctl_getvcpuinfo` (`XEN_DOMCTL_getvcpuinfo`).
#[repr(C)]
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct xen_domctl_getvcpuinfo {
    /// IN: the vCPU.
    pub vcpu: u32,
    /// OUT: up (not brought down).
    pub online: u8,
    /// OUT: waiting for an event.
    pub blocked: u8,
    /// OUT: running on a pCPU now.
    pub running: u8,
    /// Implicit C padding before `cpu_time` (`uint64_aligned_t`), made explicit.
    pub _pad: u8,
    /// OUT: nanoseconds it has run.
    pub cpu_time: u64,
    /// OUT: the pCPU it runs or last ran on (`v->processor`).
    pub cpu: u32,
    /// Implicit C tail padding, made explicit.
    pub _pad2: u32,
}

/// `xen/include/public/domctl.h`: `struct xen_domctl_max_vcpus`.
#[repr(C)]
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct xen_domctl_max_vcpus {
    /// IN: number of vCPUs.
    pub max: u32,
}

// Scheduler ids: `xen/include/public/domctl.h`. Gap: 4, `XEN_SCHEDULER_SEDF`, removed.

/// `xen/include/public/domctl.h`: `XEN_SCHEDULER_CREDIT`.
pub const XEN_SCHEDULER_CREDIT: u32 = 5;
/// `xen/include/public/domctl.h`: `XEN_SCHEDULER_CREDIT2`.
pub const XEN_SCHEDULER_CREDIT2: u32 = 6;
/// `xen/include/public/domctl.h`: `XEN_SCHEDULER_ARINC653`.
pub const XEN_SCHEDULER_ARINC653: u32 = 7;
/// `xen/include/public/domctl.h`: `XEN_SCHEDULER_RTDS`.
pub const XEN_SCHEDULER_RTDS: u32 = 8;
/// `xen/include/public/domctl.h`: `XEN_SCHEDULER_NULL`.
pub const XEN_SCHEDULER_NULL: u32 = 9;

/// `xen/include/public/domctl.h`: `XEN_DOMCTL_SCHEDOP_putinfo`, set the domain's parameters
/// (all its vCPUs).
pub const XEN_DOMCTL_SCHEDOP_putinfo: u32 = 0;
/// `xen/include/public/domctl.h`: `XEN_DOMCTL_SCHEDOP_getinfo`, get the domain's (or default)
/// parameters.
pub const XEN_DOMCTL_SCHEDOP_getinfo: u32 = 1;
/// `xen/include/public/domctl.h`: `XEN_DOMCTL_SCHEDOP_putvcpuinfo`, set per-vCPU parameters
/// (schedulers that have them, e.g. RTDS).
pub const XEN_DOMCTL_SCHEDOP_putvcpuinfo: u32 = 2;
/// `xen/include/public/domctl.h`: `XEN_DOMCTL_SCHEDOP_getvcpuinfo`, get per-vCPU parameters.
pub const XEN_DOMCTL_SCHEDOP_getvcpuinfo: u32 = 3;

/// `xen/include/public/domctl.h`: `struct xen_domctl_sched_credit`.
#[repr(C)]
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct xen_domctl_sched_credit {
    /// Relative share of CPU time.
    pub weight: u16,
    /// Upper bound in percent of one pCPU; 0 is uncapped.
    pub cap: u16,
}

/// `xen/include/public/domctl.h`: `struct xen_domctl_sched_credit2`.
#[repr(C)]
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct xen_domctl_sched_credit2 {
    /// Relative share of CPU time.
    pub weight: u16,
    /// Upper bound in percent of one pCPU (at most 100 per vCPU); 0 is uncapped.
    pub cap: u16,
}

/// `xen/include/public/domctl.h`: `XEN_DOMCTL_SCHEDRT_extra`, an RTDS vCPU may run beyond its
/// budget when CPU time is spare.
pub const XEN_DOMCTL_SCHEDRT_extra: u32 = 1 << 0;

/// `xen/include/public/domctl.h`: `struct xen_domctl_sched_rtds`.
#[repr(C)]
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct xen_domctl_sched_rtds {
    /// Period in microseconds.
    pub period: u32,
    /// Budget per period in microseconds.
    pub budget: u32,
    /// `XEN_DOMCTL_SCHEDRT_*`.
    pub flags: u32,
}

/// `xen/include/public/domctl.h`: the anonymous struct `v` inside
/// [`xen_domctl_scheduler_op`]'s union, for the per-vCPU sub-operations.
#[repr(C)]
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct SchedulerOpVcpus {
    /// Array of `nr_vcpus` `xen_domctl_schedparam_vcpu` entries.
    pub vcpus: GuestHandle,
    /// IN: entries in `vcpus`; OUT: entries processed.
    pub nr_vcpus: u32,
    /// Padding, explicit in C too.
    pub padding: u32,
}

xen_union!(
    /// `xen/include/public/domctl.h`: the anonymous union `u` of [`xen_domctl_scheduler_op`]:
    /// [`xen_domctl_sched_credit`], [`xen_domctl_sched_credit2`], [`xen_domctl_sched_rtds`] or
    /// [`SchedulerOpVcpus`], 16 bytes, 8-byte aligned. Members start at byte 0.
    SchedulerParams,
    2
);

/// `xen/include/public/domctl.h`: `struct xen_domctl_scheduler_op`.
#[repr(C)]
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct xen_domctl_scheduler_op {
    /// A `XEN_SCHEDULER_*`: must be the domain's pool's scheduler.
    pub sched_id: u32,
    /// A `XEN_DOMCTL_SCHEDOP_*`.
    pub cmd: u32,
    /// IN/OUT: the parameters, by scheduler.
    pub u: SchedulerParams,
}
