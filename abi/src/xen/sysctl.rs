//! The system control hypercall, `sysctl(struct xen_sysctl *)` (`xen/include/public/sysctl.h`):
//! the toolstack's host-wide queries and settings.
//!
//! x0 is the guest address of one [`xen_sysctl`]: an 8-byte header naming the command, then a
//! 128-byte union holding its payload ([`SysctlPayload`]). Xen answers `-EACCES` unless
//! `interface_version` is [`XEN_SYSCTL_INTERFACE_VERSION`].
//!
//! # Invariants
//! - Numbers are Xen 4.17's (`XEN_SYSCTL_INTERFACE_VERSION` 0x15): 1..=29 with gaps at 13
//!   (never assigned), 24 (`tmem_op`, removed with tmem) and 28 (`set_parameter`, removed in
//!   2020).
//! - Every structure's size and field offsets are pinned by the tests below (arm64 layout), and
//!   every payload fits the 128-byte union.

// Xen's spelling of its own names (see `hypercall`).
#![allow(non_upper_case_globals, non_camel_case_types)]

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use super::hypercall::{domid_t, GuestHandle};

/// `xen/include/public/sysctl.h`: `XEN_SYSCTL_INTERFACE_VERSION` in Xen 4.17.
pub const XEN_SYSCTL_INTERFACE_VERSION: u32 = 0x0000_0015;

/// `xen/include/public/sysctl.h`: `XEN_SYSCTL_readconsole`, read the hypervisor's console ring.
/// Payload: [`xen_sysctl_readconsole`].
pub const XEN_SYSCTL_readconsole: u32 = 1;
/// `xen/include/public/sysctl.h`: `XEN_SYSCTL_tbuf_op`, trace buffer control.
pub const XEN_SYSCTL_tbuf_op: u32 = 2;
/// `xen/include/public/sysctl.h`: `XEN_SYSCTL_physinfo`. Payload (OUT):
/// [`xen_sysctl_physinfo`].
pub const XEN_SYSCTL_physinfo: u32 = 3;
/// `xen/include/public/sysctl.h`: `XEN_SYSCTL_sched_id`. Payload (OUT): [`xen_sysctl_sched_id`].
pub const XEN_SYSCTL_sched_id: u32 = 4;
/// `xen/include/public/sysctl.h`: `XEN_SYSCTL_perfc_op`, software performance counters.
pub const XEN_SYSCTL_perfc_op: u32 = 5;
/// `xen/include/public/sysctl.h`: `XEN_SYSCTL_getdomaininfolist`. Payload:
/// [`xen_sysctl_getdomaininfolist`].
pub const XEN_SYSCTL_getdomaininfolist: u32 = 6;
/// `xen/include/public/sysctl.h`: `XEN_SYSCTL_debug_keys`, inject debug keys.
pub const XEN_SYSCTL_debug_keys: u32 = 7;
/// `xen/include/public/sysctl.h`: `XEN_SYSCTL_getcpuinfo`, per-pCPU idle time.
pub const XEN_SYSCTL_getcpuinfo: u32 = 8;
/// `xen/include/public/sysctl.h`: `XEN_SYSCTL_availheap`, free heap memory.
pub const XEN_SYSCTL_availheap: u32 = 9;
/// `xen/include/public/sysctl.h`: `XEN_SYSCTL_get_pmstat` (not on Arm).
pub const XEN_SYSCTL_get_pmstat: u32 = 10;
/// `xen/include/public/sysctl.h`: `XEN_SYSCTL_cpu_hotplug`.
pub const XEN_SYSCTL_cpu_hotplug: u32 = 11;
/// `xen/include/public/sysctl.h`: `XEN_SYSCTL_pm_op` (not on Arm).
pub const XEN_SYSCTL_pm_op: u32 = 12;
/// `xen/include/public/sysctl.h`: `XEN_SYSCTL_page_offline_op` (not on Arm).
pub const XEN_SYSCTL_page_offline_op: u32 = 14;
/// `xen/include/public/sysctl.h`: `XEN_SYSCTL_lockprof_op`.
pub const XEN_SYSCTL_lockprof_op: u32 = 15;
/// `xen/include/public/sysctl.h`: `XEN_SYSCTL_cputopoinfo`, CPU topology.
pub const XEN_SYSCTL_cputopoinfo: u32 = 16;
/// `xen/include/public/sysctl.h`: `XEN_SYSCTL_numainfo`, NUMA topology.
pub const XEN_SYSCTL_numainfo: u32 = 17;
/// `xen/include/public/sysctl.h`: `XEN_SYSCTL_cpupool_op`.
pub const XEN_SYSCTL_cpupool_op: u32 = 18;
/// `xen/include/public/sysctl.h`: `XEN_SYSCTL_scheduler_op`, a CPU pool's scheduler parameters.
pub const XEN_SYSCTL_scheduler_op: u32 = 19;
/// `xen/include/public/sysctl.h`: `XEN_SYSCTL_coverage_op`.
pub const XEN_SYSCTL_coverage_op: u32 = 20;
/// `xen/include/public/sysctl.h`: `XEN_SYSCTL_psr_cmt_op` (x86).
pub const XEN_SYSCTL_psr_cmt_op: u32 = 21;
/// `xen/include/public/sysctl.h`: `XEN_SYSCTL_pcitopoinfo`.
pub const XEN_SYSCTL_pcitopoinfo: u32 = 22;
/// `xen/include/public/sysctl.h`: `XEN_SYSCTL_psr_alloc` (x86).
pub const XEN_SYSCTL_psr_alloc: u32 = 23;
/// `xen/include/public/sysctl.h`: `XEN_SYSCTL_get_cpu_levelling_caps` (x86).
pub const XEN_SYSCTL_get_cpu_levelling_caps: u32 = 25;
/// `xen/include/public/sysctl.h`: `XEN_SYSCTL_get_cpu_featureset` (x86).
pub const XEN_SYSCTL_get_cpu_featureset: u32 = 26;
/// `xen/include/public/sysctl.h`: `XEN_SYSCTL_livepatch_op`.
pub const XEN_SYSCTL_livepatch_op: u32 = 27;
/// `xen/include/public/sysctl.h`: `XEN_SYSCTL_get_cpu_policy` (x86).
pub const XEN_SYSCTL_get_cpu_policy: u32 = 29;

/// `xen/include/public/sysctl.h`: `struct xen_sysctl`, the argument of every sysctl.
#[repr(C)]
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct xen_sysctl {
    /// A `XEN_SYSCTL_*` command.
    pub cmd: u32,
    /// Must be [`XEN_SYSCTL_INTERFACE_VERSION`].
    pub interface_version: u32,
    /// The command's payload.
    pub u: SysctlPayload,
}

xen_union!(
    /// `xen/include/public/sysctl.h`: the anonymous union `u` of [`xen_sysctl`]: every payload
    /// structure overlaid on `uint8_t pad[128]`, 8-byte aligned by its `uint64_aligned_t` members.
    /// Members start at byte 0; read and write them with [`SysctlPayload::read`] and
    /// [`SysctlPayload::write`].
    SysctlPayload,
    16
);

/// `xen/include/public/sysctl.h`: `struct xen_sysctl_readconsole`. Xen 4.17's
/// `read_console_ring` (`xen/drivers/char/console.c`) copies from the oldest byte kept, or from
/// `index` if `incremental` and it lies after the oldest and at most at the newest, until the
/// newest or `count` bytes; `clear` then drops everything before where it stopped.
#[repr(C)]
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct xen_sysctl_readconsole {
    /// IN: non-zero: clear the ring up to where this read ended.
    pub clear: u8,
    /// IN: non-zero: start at `index`.
    pub incremental: u8,
    /// Padding (`pad0`).
    pub pad0: u8,
    /// Padding (`pad1`).
    pub pad1: u8,
    /// IN: where an incremental read starts; OUT: where this read ended (a byte count since
    /// boot, wrapping at 2^32).
    pub index: u32,
    /// IN: where to write the bytes (`XEN_GUEST_HANDLE_64(char)`).
    pub buffer: GuestHandle,
    /// IN: room in `buffer`, bytes; OUT: bytes written.
    pub count: u32,
    /// Implicit C tail padding (the struct is 8-byte aligned), made explicit; written back as
    /// it came.
    pub _pad: u32,
}

/// `xen/include/public/sysctl.h`: `struct xen_sysctl_getdomaininfolist`.
#[repr(C)]
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct xen_sysctl_getdomaininfolist {
    /// IN: lowest domain id to report.
    pub first_domain: domid_t,
    /// Implicit C padding before `max_domains`, made explicit; Xen ignores it.
    pub _pad0: u16,
    /// IN: entries `buffer` has room for.
    pub max_domains: u32,
    /// OUT: array of `xen_domctl_getdomaininfo` ([`super::domctl::xen_domctl_getdomaininfo`]),
    /// in ascending domain id order.
    pub buffer: GuestHandle,
    /// OUT: entries written.
    pub num_domains: u32,
    /// Implicit C tail padding (the struct is 8-byte aligned), made explicit; written as zero.
    pub _pad1: u32,
}

/// `xen/include/public/sysctl.h`: `XEN_SYSCTL_PHYSCAP_hvm`, hardware-virtualised guests.
pub const XEN_SYSCTL_PHYSCAP_hvm: u32 = 1 << 0;
/// `xen/include/public/sysctl.h`: `XEN_SYSCTL_PHYSCAP_pv`, paravirtualised guests (x86).
pub const XEN_SYSCTL_PHYSCAP_pv: u32 = 1 << 1;
/// `xen/include/public/sysctl.h`: `XEN_SYSCTL_PHYSCAP_directio`, device pass-through with an
/// IOMMU.
pub const XEN_SYSCTL_PHYSCAP_directio: u32 = 1 << 2;
/// `xen/include/public/sysctl.h`: `XEN_SYSCTL_PHYSCAP_hap`, hardware-assisted paging.
pub const XEN_SYSCTL_PHYSCAP_hap: u32 = 1 << 3;
/// `xen/include/public/sysctl.h`: `XEN_SYSCTL_PHYSCAP_shadow`, shadow paging (x86).
pub const XEN_SYSCTL_PHYSCAP_shadow: u32 = 1 << 4;
/// `xen/include/public/sysctl.h`: `XEN_SYSCTL_PHYSCAP_iommu_hap_pt_share`, the IOMMU can share
/// the stage-2 tables.
pub const XEN_SYSCTL_PHYSCAP_iommu_hap_pt_share: u32 = 1 << 5;
/// `xen/include/public/sysctl.h`: `XEN_SYSCTL_PHYSCAP_vmtrace`, processor tracing.
pub const XEN_SYSCTL_PHYSCAP_vmtrace: u32 = 1 << 6;
/// `xen/include/public/sysctl.h`: `XEN_SYSCTL_PHYSCAP_vpmu`, virtual PMU.
pub const XEN_SYSCTL_PHYSCAP_vpmu: u32 = 1 << 7;
/// `xen/include/public/sysctl.h`: `XEN_SYSCTL_PHYSCAP_gnttab_v1`, grant table version 1.
pub const XEN_SYSCTL_PHYSCAP_gnttab_v1: u32 = 1 << 8;
/// `xen/include/public/sysctl.h`: `XEN_SYSCTL_PHYSCAP_gnttab_v2`, grant table version 2.
pub const XEN_SYSCTL_PHYSCAP_gnttab_v2: u32 = 1 << 9;
/// `xen/include/public/sysctl.h`: `XEN_SYSCTL_PHYSCAP_MAX`, the highest capability bit.
pub const XEN_SYSCTL_PHYSCAP_MAX: u32 = XEN_SYSCTL_PHYSCAP_gnttab_v2;

/// `xen/include/public/sysctl.h`: `struct xen_sysctl_physinfo` (all OUT).
#[repr(C)]
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct xen_sysctl_physinfo {
    /// Hardware threads per core.
    pub threads_per_core: u32,
    /// Cores per socket.
    pub cores_per_socket: u32,
    /// pCPUs online.
    pub nr_cpus: u32,
    /// Highest possible pCPU id.
    pub max_cpu_id: u32,
    /// NUMA nodes online.
    pub nr_nodes: u32,
    /// Highest possible node id.
    pub max_node_id: u32,
    /// CPU frequency in kHz.
    pub cpu_khz: u32,
    /// `XEN_SYSCTL_PHYSCAP_*`.
    pub capabilities: u32,
    /// Architecture-specific capabilities (none defined for Arm in 4.17).
    pub arch_capabilities: u32,
    /// Padding, explicit in C too.
    pub pad: u32,
    /// Pages of RAM.
    pub total_pages: u64,
    /// Free pages.
    pub free_pages: u64,
    /// Pages waiting to be scrubbed.
    pub scrub_pages: u64,
    /// Pages claimed by domains but not yet allocated.
    pub outstanding_pages: u64,
    /// Highest possible machine frame.
    pub max_mfn: u64,
    /// Hardware capability words (x86 CPUID; unused on Arm).
    pub hw_cap: [u32; 8],
}

/// `xen/include/public/sysctl.h`: `struct xen_sysctl_sched_id`.
#[repr(C)]
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct xen_sysctl_sched_id {
    /// OUT: the default CPU pool's scheduler, a `XEN_SCHEDULER_*`
    /// ([`super::domctl::XEN_SCHEDULER_CREDIT2`], ...).
    pub sched_id: u32,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xen::hypercall::assert_layout;

    /// `xen/include/public/sysctl.h`: every command number `struct xen_sysctl` defines.
    #[test]
    fn command_numbers() {
        let table = [
            (XEN_SYSCTL_readconsole, 1),
            (XEN_SYSCTL_tbuf_op, 2),
            (XEN_SYSCTL_physinfo, 3),
            (XEN_SYSCTL_sched_id, 4),
            (XEN_SYSCTL_perfc_op, 5),
            (XEN_SYSCTL_getdomaininfolist, 6),
            (XEN_SYSCTL_debug_keys, 7),
            (XEN_SYSCTL_getcpuinfo, 8),
            (XEN_SYSCTL_availheap, 9),
            (XEN_SYSCTL_get_pmstat, 10),
            (XEN_SYSCTL_cpu_hotplug, 11),
            (XEN_SYSCTL_pm_op, 12),
            (XEN_SYSCTL_page_offline_op, 14),
            (XEN_SYSCTL_lockprof_op, 15),
            (XEN_SYSCTL_cputopoinfo, 16),
            (XEN_SYSCTL_numainfo, 17),
            (XEN_SYSCTL_cpupool_op, 18),
            (XEN_SYSCTL_scheduler_op, 19),
            (XEN_SYSCTL_coverage_op, 20),
            (XEN_SYSCTL_psr_cmt_op, 21),
            (XEN_SYSCTL_pcitopoinfo, 22),
            (XEN_SYSCTL_psr_alloc, 23),
            (XEN_SYSCTL_get_cpu_levelling_caps, 25),
            (XEN_SYSCTL_get_cpu_featureset, 26),
            (XEN_SYSCTL_livepatch_op, 27),
            (XEN_SYSCTL_get_cpu_policy, 29),
        ];
        for (constant, value) in table {
            assert_eq!(constant, value);
        }
        let numbers: Vec<u32> = table.iter().map(|&(number, _)| number).collect();
        let expected: Vec<u32> = (1..=29).filter(|number| ![13, 24, 28].contains(number)).collect();
        assert_eq!(numbers, expected);
        assert_eq!(XEN_SYSCTL_INTERFACE_VERSION, 0x15);
        assert_eq!(XEN_SYSCTL_PHYSCAP_MAX, 0x200);
    }

    /// `xen/include/public/sysctl.h`: structure layouts on arm64.
    #[test]
    fn layouts() {
        assert_layout!(xen_sysctl, size = 136, align = 8, { cmd @ 0, interface_version @ 4, u @ 8 });
        assert_layout!(SysctlPayload, size = SysctlPayload::SIZE, align = 8, {});
        assert_layout!(xen_sysctl_readconsole, size = 24, align = 8, {
            clear @ 0, incremental @ 1, pad0 @ 2, pad1 @ 3, index @ 4, buffer @ 8, count @ 16,
            _pad @ 20,
        });
        assert_layout!(xen_sysctl_getdomaininfolist, size = 24, align = 8, {
            first_domain @ 0, _pad0 @ 2, max_domains @ 4, buffer @ 8, num_domains @ 16,
            _pad1 @ 20,
        });
        assert_layout!(xen_sysctl_physinfo, size = 112, align = 8, {
            threads_per_core @ 0, cores_per_socket @ 4, nr_cpus @ 8, max_cpu_id @ 12,
            nr_nodes @ 16, max_node_id @ 20, cpu_khz @ 24, capabilities @ 28,
            arch_capabilities @ 32, pad @ 36, total_pages @ 40, free_pages @ 48,
            scrub_pages @ 56, outstanding_pages @ 64, max_mfn @ 72, hw_cap @ 80,
        });
        assert_layout!(xen_sysctl_sched_id, size = 4, align = 4, { sched_id @ 0 });
    }

    /// A payload written is read back unchanged, in place after the 8-byte header.
    #[test]
    fn payload_round_trip() {
        let sysctl = xen_sysctl {
            cmd: XEN_SYSCTL_sched_id,
            interface_version: XEN_SYSCTL_INTERFACE_VERSION,
            u: SysctlPayload::new(&xen_sysctl_sched_id { sched_id: 6 }),
        };
        assert_eq!(&sysctl.as_bytes()[8..12], &6u32.to_le_bytes());
        let physinfo = xen_sysctl_physinfo::read_from_bytes(&[0u8; 112]).unwrap();
        let mut payload = SysctlPayload::new(&physinfo);
        payload.write(&xen_sysctl_sched_id { sched_id: 9 });
        assert_eq!(payload.read::<xen_sysctl_sched_id>().sched_id, 9);
    }
}
