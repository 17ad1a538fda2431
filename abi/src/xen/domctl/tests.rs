//! Layout and number tests for `domctl`, each against `xen/include/public/domctl.h` (and
//! `arch-arm.h` / `xen.h` where named) of Xen 4.17, arm64.

use super::*;
use crate::xen::hypercall::assert_layout;

/// `xen/include/public/domctl.h`: every command number `struct xen_domctl` defines for tools.
#[test]
fn command_numbers() {
    let table = [
        (XEN_DOMCTL_createdomain, 1),
        (XEN_DOMCTL_destroydomain, 2),
        (XEN_DOMCTL_pausedomain, 3),
        (XEN_DOMCTL_unpausedomain, 4),
        (XEN_DOMCTL_getdomaininfo, 5),
        (XEN_DOMCTL_setvcpuaffinity, 9),
        (XEN_DOMCTL_shadow_op, 10),
        (XEN_DOMCTL_max_mem, 11),
        (XEN_DOMCTL_setvcpucontext, 12),
        (XEN_DOMCTL_getvcpucontext, 13),
        (XEN_DOMCTL_getvcpuinfo, 14),
        (XEN_DOMCTL_max_vcpus, 15),
        (XEN_DOMCTL_scheduler_op, 16),
        (XEN_DOMCTL_setdomainhandle, 17),
        (XEN_DOMCTL_setdebugging, 18),
        (XEN_DOMCTL_irq_permission, 19),
        (XEN_DOMCTL_iomem_permission, 20),
        (XEN_DOMCTL_ioport_permission, 21),
        (XEN_DOMCTL_hypercall_init, 22),
        (XEN_DOMCTL_settimeoffset, 24),
        (XEN_DOMCTL_getvcpuaffinity, 25),
        (XEN_DOMCTL_real_mode_area, 26),
        (XEN_DOMCTL_resumedomain, 27),
        (XEN_DOMCTL_sendtrigger, 28),
        (XEN_DOMCTL_subscribe, 29),
        (XEN_DOMCTL_gethvmcontext, 33),
        (XEN_DOMCTL_sethvmcontext, 34),
        (XEN_DOMCTL_set_address_size, 35),
        (XEN_DOMCTL_get_address_size, 36),
        (XEN_DOMCTL_assign_device, 37),
        (XEN_DOMCTL_bind_pt_irq, 38),
        (XEN_DOMCTL_memory_mapping, 39),
        (XEN_DOMCTL_ioport_mapping, 40),
        (XEN_DOMCTL_set_ext_vcpucontext, 42),
        (XEN_DOMCTL_get_ext_vcpucontext, 43),
        (XEN_DOMCTL_set_opt_feature, 44),
        (XEN_DOMCTL_test_assign_device, 45),
        (XEN_DOMCTL_set_target, 46),
        (XEN_DOMCTL_deassign_device, 47),
        (XEN_DOMCTL_unbind_pt_irq, 48),
        (XEN_DOMCTL_get_device_group, 50),
        (XEN_DOMCTL_debug_op, 54),
        (XEN_DOMCTL_gethvmcontext_partial, 55),
        (XEN_DOMCTL_vm_event_op, 56),
        (XEN_DOMCTL_mem_sharing_op, 57),
        (XEN_DOMCTL_gettscinfo, 59),
        (XEN_DOMCTL_settscinfo, 60),
        (XEN_DOMCTL_getpageframeinfo3, 61),
        (XEN_DOMCTL_setvcpuextstate, 62),
        (XEN_DOMCTL_getvcpuextstate, 63),
        (XEN_DOMCTL_set_access_required, 64),
        (XEN_DOMCTL_audit_p2m, 65),
        (XEN_DOMCTL_set_virq_handler, 66),
        (XEN_DOMCTL_set_broken_page_p2m, 67),
        (XEN_DOMCTL_setnodeaffinity, 68),
        (XEN_DOMCTL_getnodeaffinity, 69),
        (XEN_DOMCTL_cacheflush, 71),
        (XEN_DOMCTL_get_vcpu_msrs, 72),
        (XEN_DOMCTL_set_vcpu_msrs, 73),
        (XEN_DOMCTL_setvnumainfo, 74),
        (XEN_DOMCTL_psr_cmt_op, 75),
        (XEN_DOMCTL_monitor_op, 77),
        (XEN_DOMCTL_psr_alloc, 78),
        (XEN_DOMCTL_soft_reset, 79),
        (XEN_DOMCTL_vuart_op, 81),
        (XEN_DOMCTL_get_cpu_policy, 82),
        (XEN_DOMCTL_set_cpu_policy, 83),
        (XEN_DOMCTL_vmtrace_op, 84),
        (XEN_DOMCTL_get_paging_mempool_size, 85),
        (XEN_DOMCTL_set_paging_mempool_size, 86),
        (XEN_DOMCTL_gdbsx_guestmemio, 1000),
        (XEN_DOMCTL_gdbsx_pausevcpu, 1001),
        (XEN_DOMCTL_gdbsx_unpausevcpu, 1002),
        (XEN_DOMCTL_gdbsx_domstatus, 1003),
    ];
    assert_eq!(table.len(), 74);
    for pair in table.windows(2) {
        assert!(pair[0].0 < pair[1].0, "{} before {}", pair[0].1, pair[1].1);
    }
    for (constant, value) in table {
        assert_eq!(constant, value);
    }
    let gaps = [6, 7, 8, 23, 30, 31, 32, 41, 49, 51, 52, 53, 58, 70, 76, 80];
    assert!(table.iter().all(|(number, _)| !gaps.contains(number)));
    assert_eq!(table.iter().filter(|(number, _)| *number <= 86).count() + gaps.len(), 86);
}

/// `xen/include/public/domctl.h`: spot checks and the interface version.
#[test]
fn spot_checks() {
    assert_eq!(XEN_DOMCTL_INTERFACE_VERSION, 0x15);
    assert_eq!(XEN_DOMCTL_createdomain, 1);
    assert_eq!(XEN_DOMCTL_getdomaininfo, 5);
    assert_eq!(XEN_DOMCTL_scheduler_op, 16);
    assert_eq!(
        [
            XEN_SCHEDULER_CREDIT,
            XEN_SCHEDULER_CREDIT2,
            XEN_SCHEDULER_ARINC653,
            XEN_SCHEDULER_RTDS,
            XEN_SCHEDULER_NULL
        ],
        [5, 6, 7, 8, 9]
    );
    assert_eq!(
        [
            XEN_DOMCTL_SCHEDOP_putinfo,
            XEN_DOMCTL_SCHEDOP_getinfo,
            XEN_DOMCTL_SCHEDOP_putvcpuinfo,
            XEN_DOMCTL_SCHEDOP_getvcpuinfo,
        ],
        [0, 1, 2, 3]
    );
    assert_eq!([XEN_VCPUAFFINITY_HARD, XEN_VCPUAFFINITY_SOFT, XEN_VCPUAFFINITY_FORCE], [1, 2, 4]);
    assert_eq!(XEN_DOMCTL_CDF_MAX, 0x80);
    assert_eq!(XEN_DOMINF_hap, 0x100);
    assert_eq!(XEN_DOMINF_shutdownmask << XEN_DOMINF_shutdownshift, 0x00ff_0000);
    assert_eq!(XEN_INVALID_MAX_VCPU_ID, 0xffff_ffff);
    assert_eq!(
        [XEN_DOMCTL_CONFIG_GIC_NATIVE, XEN_DOMCTL_CONFIG_GIC_V2, XEN_DOMCTL_CONFIG_GIC_V3],
        [0, 1, 2]
    );
    assert_eq!([XEN_DOMCTL_CONFIG_TEE_NONE, XEN_DOMCTL_CONFIG_TEE_OPTEE], [0, 1]);
}

/// `xen/include/public/domctl.h`: `struct xen_domctl` and its 128-byte, 8-byte-aligned union.
#[test]
fn header_layout() {
    assert_layout!(xen_domctl, size = 144, align = 8, {
        cmd @ 0, interface_version @ 4, domain @ 8, _pad @ 10, u @ 16,
    });
    assert_layout!(DomctlPayload, size = DomctlPayload::SIZE, align = 8, {});
}

/// `xen/include/public/arch-arm.h`: `struct xen_arch_domainconfig`.
#[test]
fn arch_domainconfig_layout() {
    assert_layout!(xen_arch_domainconfig, size = 12, align = 4, {
        gic_version @ 0, _pad @ 1, tee_type @ 2, nr_spis @ 4, clock_frequency @ 8,
    });
}

/// `xen/include/public/domctl.h`: `struct xen_domctl_createdomain`.
#[test]
fn createdomain_layout() {
    assert_layout!(xen_domctl_createdomain, size = 68, align = 4, {
        ssidref @ 0, handle @ 4, flags @ 20, iommu_opts @ 24, max_vcpus @ 28,
        max_evtchn_port @ 32, max_grant_frames @ 36, max_maptrack_frames @ 40, grant_opts @ 44,
        vmtrace_size @ 48, cpupool_id @ 52, arch @ 56,
    });
}

/// `xen/include/public/domctl.h`: `struct xen_domctl_getdomaininfo`.
#[test]
fn getdomaininfo_layout() {
    assert_layout!(xen_domctl_getdomaininfo, size = 120, align = 8, {
        domain @ 0, pad1 @ 2, flags @ 4, tot_pages @ 8, max_pages @ 16, outstanding_pages @ 24,
        shr_pages @ 32, paged_pages @ 40, shared_info_frame @ 48, cpu_time @ 56,
        nr_online_vcpus @ 64, max_vcpu_id @ 68, ssidref @ 72, handle @ 76, cpupool @ 92,
        gpaddr_bits @ 96, pad2 @ 97, arch_config @ 104, _pad3 @ 116,
    });
}

/// `xen/include/public/domctl.h`: `max_mem`, `max_vcpus`.
#[test]
fn small_payload_layouts() {
    assert_layout!(xen_domctl_max_mem, size = 8, align = 8, { max_memkb @ 0 });
    assert_layout!(xen_domctl_max_vcpus, size = 4, align = 4, { max @ 0 });
}

/// `xen/include/public/xen.h` (`struct xenctl_bitmap`) and `domctl.h`
/// (`struct xen_domctl_vcpuaffinity`).
#[test]
fn vcpuaffinity_layout() {
    assert_layout!(xenctl_bitmap, size = 16, align = 8, { bitmap @ 0, nr_bits @ 8, _pad @ 12 });
    assert_layout!(xen_domctl_vcpuaffinity, size = 40, align = 8, {
        vcpu @ 0, flags @ 4, cpumap_hard @ 8, cpumap_soft @ 24,
    });
}

/// `xen/include/public/domctl.h`: `struct xen_domctl_getvcpuinfo`.
#[test]
fn getvcpuinfo_layout() {
    assert_layout!(xen_domctl_getvcpuinfo, size = 24, align = 8, {
        vcpu @ 0, online @ 4, blocked @ 5, running @ 6, cpu_time @ 8, cpu @ 16,
    });
}

/// `xen/include/public/domctl.h`: `struct xen_domctl_scheduler_op` and its union's members.
#[test]
fn scheduler_op_layout() {
    assert_layout!(xen_domctl_sched_credit, size = 4, align = 2, { weight @ 0, cap @ 2 });
    assert_layout!(xen_domctl_sched_credit2, size = 4, align = 2, { weight @ 0, cap @ 2 });
    assert_layout!(xen_domctl_sched_rtds, size = 12, align = 4, {
        period @ 0, budget @ 4, flags @ 8,
    });
    assert_layout!(SchedulerOpVcpus, size = 16, align = 8, {
        vcpus @ 0, nr_vcpus @ 8, padding @ 12,
    });
    assert_layout!(SchedulerParams, size = SchedulerParams::SIZE, align = 8, {});
    assert_layout!(xen_domctl_scheduler_op, size = 24, align = 8, { sched_id @ 0, cmd @ 4, u @ 8 });
}

/// Every payload encoded here fits the union; a member written is read back unchanged.
#[test]
fn payload_round_trip() {
    let credit2 = xen_domctl_sched_credit2 { weight: 256, cap: 50 };
    let op = xen_domctl_scheduler_op {
        sched_id: XEN_SCHEDULER_CREDIT2,
        cmd: XEN_DOMCTL_SCHEDOP_putinfo,
        u: SchedulerParams::new(&credit2),
    };
    let domctl = xen_domctl {
        cmd: XEN_DOMCTL_scheduler_op,
        interface_version: XEN_DOMCTL_INTERFACE_VERSION,
        domain: 3,
        _pad: [0; 3],
        u: DomctlPayload::new(&op),
    };
    let bytes = domctl.as_bytes();
    assert_eq!(&bytes[..4], &16u32.to_le_bytes());
    assert_eq!(&bytes[4..8], &0x15u32.to_le_bytes());
    assert_eq!(&bytes[16..20], &XEN_SCHEDULER_CREDIT2.to_le_bytes());
    assert_eq!(&bytes[24..28], &[0x00, 0x01, 50, 0]);
    assert!(bytes[28..].iter().all(|&byte| byte == 0));
    let back: xen_domctl_scheduler_op = domctl.u.read();
    let back: xen_domctl_sched_credit2 = back.u.read();
    assert_eq!((back.weight, back.cap), (256, 50));
    assert_eq!(domctl.u.as_bytes()[..8], bytes[16..24]);
    let info: xen_domctl_getdomaininfo = DomctlPayload::new(&[0xffu8; 120]).read();
    assert_eq!(info.flags, u32::MAX);
}
