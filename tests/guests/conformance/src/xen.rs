//! The Xen 4.17 public-interface numbers the probes use that `xenolith_abi` does not name (or
//! that the probes need as plain integers to build bad requests). Each cites its header; the
//! structure layouts the probes build by hand are described where they are built, with the
//! header they come from.
// Xen's spelling of its own names.
#![allow(non_upper_case_globals, dead_code)]

// ---- xen/include/public/xen.h ----

/// `xen/include/public/xen.h`: `__HYPERVISOR_platform_op`.
pub const HC_platform_op: u64 = 7;
/// `xen/include/public/xen.h`: `__HYPERVISOR_memory_op`.
pub const HC_memory_op: u64 = 12;
/// `xen/include/public/xen.h`: `__HYPERVISOR_multicall`.
pub const HC_multicall: u64 = 13;
/// `xen/include/public/xen.h`: `__HYPERVISOR_xen_version`.
pub const HC_xen_version: u64 = 17;
/// `xen/include/public/xen.h`: `__HYPERVISOR_console_io`.
pub const HC_console_io: u64 = 18;
/// `xen/include/public/xen.h`: `__HYPERVISOR_grant_table_op`.
pub const HC_grant_table_op: u64 = 20;
/// `xen/include/public/xen.h`: `__HYPERVISOR_vm_assist`.
pub const HC_vm_assist: u64 = 21;
/// `xen/include/public/xen.h`: `__HYPERVISOR_vcpu_op`.
pub const HC_vcpu_op: u64 = 24;
/// `xen/include/public/xen.h`: `__HYPERVISOR_xsm_op`.
pub const HC_xsm_op: u64 = 27;
/// `xen/include/public/xen.h`: `__HYPERVISOR_sched_op`.
pub const HC_sched_op: u64 = 29;
/// `xen/include/public/xen.h`: `__HYPERVISOR_event_channel_op`.
pub const HC_event_channel_op: u64 = 32;
/// `xen/include/public/xen.h`: `__HYPERVISOR_physdev_op`.
pub const HC_physdev_op: u64 = 33;
/// `xen/include/public/xen.h`: `__HYPERVISOR_hvm_op`.
pub const HC_hvm_op: u64 = 34;
/// `xen/include/public/xen.h`: `__HYPERVISOR_sysctl`.
pub const HC_sysctl: u64 = 35;
/// `xen/include/public/xen.h`: `__HYPERVISOR_domctl`.
pub const HC_domctl: u64 = 36;
/// `xen/include/public/xen.h`: `__HYPERVISOR_argo_op`.
pub const HC_argo_op: u64 = 39;
/// `xen/include/public/xen.h`: `__HYPERVISOR_dm_op`.
pub const HC_dm_op: u64 = 41;
/// `xen/include/public/xen.h`: `__HYPERVISOR_hypfs_op`.
pub const HC_hypfs_op: u64 = 42;

/// `xen/include/public/xen.h`: `DOMID_SELF`.
pub const DOMID_SELF: u16 = 0x7FF0;
/// `xen/include/public/xen.h`: `DOMID_IO`.
pub const DOMID_IO: u16 = 0x7FF1;
/// `xen/include/public/xen.h`: `DOMID_XEN`.
pub const DOMID_XEN: u16 = 0x7FF2;
/// `xen/include/public/xen.h`: `DOMID_INVALID`.
pub const DOMID_INVALID: u16 = 0x7FF4;
/// `xen/include/public/xen.h`: `DOMID_IDLE`.
pub const DOMID_IDLE: u16 = 0x7FFF;

/// `xen/include/public/xen.h`: `CONSOLEIO_write`.
pub const CONSOLEIO_write: u64 = 0;
/// `xen/include/public/xen.h`: `CONSOLEIO_read`.
pub const CONSOLEIO_read: u64 = 1;

/// `xen/include/public/xen.h`: `VMASST_CMD_enable`.
pub const VMASST_CMD_enable: u64 = 0;
/// `xen/include/public/xen.h`: `VMASST_CMD_disable`.
pub const VMASST_CMD_disable: u64 = 1;
/// `xen/include/public/xen.h`: `VMASST_TYPE_runstate_update_flag`.
pub const VMASST_TYPE_runstate_update_flag: u64 = 5;

/// `xen/include/public/xen.h`: `NR_VIRQS`, one past the last VIRQ number.
pub const NR_VIRQS: u32 = 24;

// ---- xen/include/public/version.h ----

/// `xen/include/public/version.h`: `XENVER_version`.
pub const XENVER_version: u64 = 0;
/// `xen/include/public/version.h`: `XENVER_get_features`.
pub const XENVER_get_features: u64 = 6;
/// `xen/include/public/version.h`: `XENVER_pagesize`.
pub const XENVER_pagesize: u64 = 7;
/// `xen/include/public/version.h`: `XENVER_build_id`, the last sub-operation.
pub const XENVER_build_id: u64 = 10;

// ---- xen/include/public/memory.h ----

/// `xen/include/public/memory.h`: `XENMEM_increase_reservation`.
pub const XENMEM_increase_reservation: u64 = 0;
/// `xen/include/public/memory.h`: `XENMEM_decrease_reservation`.
pub const XENMEM_decrease_reservation: u64 = 1;
/// `xen/include/public/memory.h`: `XENMEM_maximum_ram_page`.
pub const XENMEM_maximum_ram_page: u64 = 2;
/// `xen/include/public/memory.h`: `XENMEM_current_reservation`.
pub const XENMEM_current_reservation: u64 = 3;
/// `xen/include/public/memory.h`: `XENMEM_maximum_reservation`.
pub const XENMEM_maximum_reservation: u64 = 4;
/// `xen/include/public/memory.h`: `XENMEM_populate_physmap`.
pub const XENMEM_populate_physmap: u64 = 6;
/// `xen/include/public/memory.h`: `XENMEM_add_to_physmap`.
pub const XENMEM_add_to_physmap: u64 = 7;
/// `xen/include/public/memory.h`: `XENMEM_exchange`.
pub const XENMEM_exchange: u64 = 11;
/// `xen/include/public/memory.h`: `XENMEM_maximum_gpfn`.
pub const XENMEM_maximum_gpfn: u64 = 14;
/// `xen/include/public/memory.h`: `XENMEM_remove_from_physmap`.
pub const XENMEM_remove_from_physmap: u64 = 15;
/// `xen/include/public/memory.h`: `XENMEM_get_sharing_freed_pages`.
pub const XENMEM_get_sharing_freed_pages: u64 = 18;
/// `xen/include/public/memory.h`: `XENMEM_get_sharing_shared_pages`.
pub const XENMEM_get_sharing_shared_pages: u64 = 19;
/// `xen/include/public/memory.h`: `XENMEM_add_to_physmap_batch`.
pub const XENMEM_add_to_physmap_batch: u64 = 23;
/// `xen/include/public/memory.h`: `XENMEM_claim_pages`.
pub const XENMEM_claim_pages: u64 = 24;
/// `xen/include/public/memory.h`: `XENMEM_get_vnumainfo`.
pub const XENMEM_get_vnumainfo: u64 = 26;
/// `xen/include/public/memory.h`: `XENMEM_acquire_resource`.
pub const XENMEM_acquire_resource: u64 = 28;
/// `xen/include/public/memory.h`: `MEMOP_EXTENT_SHIFT`, where a continuation's start extent
/// sits in the command.
pub const MEMOP_EXTENT_SHIFT: u64 = 6;
/// `xen/include/public/memory.h`: `XENMAPSPACE_shared_info`.
pub const XENMAPSPACE_shared_info: u32 = 0;
/// `xen/include/public/memory.h`: `XENMAPSPACE_grant_table`.
pub const XENMAPSPACE_grant_table: u32 = 1;
/// `xen/include/public/memory.h`: `XENMAPSPACE_gmfn`.
pub const XENMAPSPACE_gmfn: u32 = 2;
/// `xen/include/public/memory.h`: `XENMAPSPACE_gmfn_range`.
pub const XENMAPSPACE_gmfn_range: u32 = 3;
/// `xen/include/public/memory.h`: `XENMAPSPACE_gmfn_foreign`.
pub const XENMAPSPACE_gmfn_foreign: u32 = 4;
/// `xen/include/public/memory.h`: `XENMAPSPACE_dev_mmio`.
pub const XENMAPSPACE_dev_mmio: u32 = 5;
/// `xen/include/public/memory.h`: `XENMAPIDX_grant_table_status`, the bit of `idx` that asks
/// for a status frame.
pub const XENMAPIDX_grant_table_status: u64 = 0x8000_0000;
/// `xen/include/public/memory.h`: `XENMEM_resource_ioreq_server`.
pub const XENMEM_resource_ioreq_server: u16 = 0;
/// `xen/include/public/memory.h`: `XENMEM_resource_grant_table`.
pub const XENMEM_resource_grant_table: u16 = 1;
/// `xen/include/public/memory.h`: `XENMEM_resource_vmtrace_buf`.
pub const XENMEM_resource_vmtrace_buf: u16 = 2;

// ---- xen/include/public/grant_table.h ----

/// `xen/include/public/grant_table.h`: `GNTTABOP_map_grant_ref`.
pub const GNTTABOP_map_grant_ref: u32 = 0;
/// `xen/include/public/grant_table.h`: `GNTTABOP_unmap_grant_ref`.
pub const GNTTABOP_unmap_grant_ref: u32 = 1;
/// `xen/include/public/grant_table.h`: `GNTTABOP_setup_table`.
pub const GNTTABOP_setup_table: u32 = 2;
/// `xen/include/public/grant_table.h`: `GNTTABOP_dump_table`.
pub const GNTTABOP_dump_table: u32 = 3;
/// `xen/include/public/grant_table.h`: `GNTTABOP_transfer`.
pub const GNTTABOP_transfer: u32 = 4;
/// `xen/include/public/grant_table.h`: `GNTTABOP_copy`.
pub const GNTTABOP_copy: u32 = 5;
/// `xen/include/public/grant_table.h`: `GNTTABOP_query_size`.
pub const GNTTABOP_query_size: u32 = 6;
/// `xen/include/public/grant_table.h`: `GNTTABOP_unmap_and_replace`.
pub const GNTTABOP_unmap_and_replace: u32 = 7;
/// `xen/include/public/grant_table.h`: `GNTTABOP_set_version`.
pub const GNTTABOP_set_version: u32 = 8;
/// `xen/include/public/grant_table.h`: `GNTTABOP_get_status_frames`.
pub const GNTTABOP_get_status_frames: u32 = 9;
/// `xen/include/public/grant_table.h`: `GNTTABOP_get_version`.
pub const GNTTABOP_get_version: u32 = 10;
/// `xen/include/public/grant_table.h`: `GNTTABOP_swap_grant_ref`.
pub const GNTTABOP_swap_grant_ref: u32 = 11;
/// `xen/include/public/grant_table.h`: `GNTTABOP_cache_flush`, the last operation.
pub const GNTTABOP_cache_flush: u32 = 12;
/// `xen/include/public/grant_table.h`: `GNTMAP_device_map`.
pub const GNTMAP_device_map: u32 = 1 << 0;
/// `xen/include/public/grant_table.h`: `GNTMAP_host_map`.
pub const GNTMAP_host_map: u32 = 1 << 1;
/// `xen/include/public/grant_table.h`: `GNTMAP_readonly`.
pub const GNTMAP_readonly: u32 = 1 << 2;
/// `xen/include/public/grant_table.h`: `GNTMAP_application_map`.
pub const GNTMAP_application_map: u32 = 1 << 3;
/// `xen/include/public/grant_table.h`: `GNTMAP_contains_pte`.
pub const GNTMAP_contains_pte: u32 = 1 << 4;
/// `xen/include/public/grant_table.h`: `GNTCOPY_source_gref`.
pub const GNTCOPY_source_gref: u16 = 1 << 0;
/// `xen/include/public/grant_table.h`: `GNTCOPY_dest_gref`.
pub const GNTCOPY_dest_gref: u16 = 1 << 1;
/// `xen/include/public/grant_table.h`: `GNTTAB_CACHE_CLEAN`.
pub const GNTTAB_CACHE_CLEAN: u32 = 1 << 0;
/// `xen/include/public/grant_table.h`: `GNTTAB_CACHE_INVAL`.
pub const GNTTAB_CACHE_INVAL: u32 = 1 << 1;
/// `xen/include/public/grant_table.h`: `GNTTAB_CACHE_SOURCE_GREF`.
pub const GNTTAB_CACHE_SOURCE_GREF: u32 = 1 << 31;

// ---- xen/include/public/event_channel.h ----

/// `xen/include/public/event_channel.h`: `EVTCHNOP_bind_interdomain`.
pub const EVTCHNOP_bind_interdomain: u32 = 0;
/// `xen/include/public/event_channel.h`: `EVTCHNOP_bind_virq`.
pub const EVTCHNOP_bind_virq: u32 = 1;
/// `xen/include/public/event_channel.h`: `EVTCHNOP_bind_pirq`.
pub const EVTCHNOP_bind_pirq: u32 = 2;
/// `xen/include/public/event_channel.h`: `EVTCHNOP_close`.
pub const EVTCHNOP_close: u32 = 3;
/// `xen/include/public/event_channel.h`: `EVTCHNOP_send`.
pub const EVTCHNOP_send: u32 = 4;
/// `xen/include/public/event_channel.h`: `EVTCHNOP_status`.
pub const EVTCHNOP_status: u32 = 5;
/// `xen/include/public/event_channel.h`: `EVTCHNOP_alloc_unbound`.
pub const EVTCHNOP_alloc_unbound: u32 = 6;
/// `xen/include/public/event_channel.h`: `EVTCHNOP_bind_ipi`.
pub const EVTCHNOP_bind_ipi: u32 = 7;
/// `xen/include/public/event_channel.h`: `EVTCHNOP_bind_vcpu`.
pub const EVTCHNOP_bind_vcpu: u32 = 8;
/// `xen/include/public/event_channel.h`: `EVTCHNOP_unmask`.
pub const EVTCHNOP_unmask: u32 = 9;
/// `xen/include/public/event_channel.h`: `EVTCHNOP_reset`.
pub const EVTCHNOP_reset: u32 = 10;
/// `xen/include/public/event_channel.h`: `EVTCHNOP_init_control`.
pub const EVTCHNOP_init_control: u32 = 11;
/// `xen/include/public/event_channel.h`: `EVTCHNOP_expand_array`.
pub const EVTCHNOP_expand_array: u32 = 12;
/// `xen/include/public/event_channel.h`: `EVTCHNOP_set_priority`.
pub const EVTCHNOP_set_priority: u32 = 13;
/// `xen/include/public/event_channel.h`: `EVTCHNOP_reset_cont`, the last operation.
pub const EVTCHNOP_reset_cont: u32 = 14;

// ---- xen/include/public/sched.h ----

/// `xen/include/public/sched.h`: `SCHEDOP_yield`.
pub const SCHEDOP_yield: u64 = 0;
/// `xen/include/public/sched.h`: `SCHEDOP_block`.
pub const SCHEDOP_block: u64 = 1;
/// `xen/include/public/sched.h`: `SCHEDOP_shutdown`.
pub const SCHEDOP_shutdown: u64 = 2;
/// `xen/include/public/sched.h`: `SCHEDOP_poll`.
pub const SCHEDOP_poll: u64 = 3;
/// `xen/include/public/sched.h`: `SCHEDOP_remote_shutdown`.
pub const SCHEDOP_remote_shutdown: u64 = 4;
/// `xen/include/public/sched.h`: `SCHEDOP_shutdown_code`.
pub const SCHEDOP_shutdown_code: u64 = 5;
/// `xen/include/public/sched.h`: `SCHEDOP_watchdog`.
pub const SCHEDOP_watchdog: u64 = 6;
/// `xen/include/public/sched.h`: `SCHEDOP_pin_override`, the last operation.
pub const SCHEDOP_pin_override: u64 = 7;
/// `xen/include/public/sched.h`: `SHUTDOWN_poweroff`.
pub const SHUTDOWN_poweroff: u32 = 0;

// ---- xen/include/public/vcpu.h ----

/// `xen/include/public/vcpu.h`: `VCPUOP_up`.
pub const VCPUOP_up: u32 = 1;
/// `xen/include/public/vcpu.h`: `VCPUOP_down`.
pub const VCPUOP_down: u32 = 2;
/// `xen/include/public/vcpu.h`: `VCPUOP_is_up`.
pub const VCPUOP_is_up: u32 = 3;
/// `xen/include/public/vcpu.h`: `VCPUOP_get_runstate_info`.
pub const VCPUOP_get_runstate_info: u32 = 4;
/// `xen/include/public/vcpu.h`: `VCPUOP_register_runstate_memory_area`.
pub const VCPUOP_register_runstate_memory_area: u32 = 5;
/// `xen/include/public/vcpu.h`: `VCPUOP_set_periodic_timer`.
pub const VCPUOP_set_periodic_timer: u32 = 6;
/// `xen/include/public/vcpu.h`: `VCPUOP_stop_periodic_timer`.
pub const VCPUOP_stop_periodic_timer: u32 = 7;
/// `xen/include/public/vcpu.h`: `VCPUOP_set_singleshot_timer`.
pub const VCPUOP_set_singleshot_timer: u32 = 8;
/// `xen/include/public/vcpu.h`: `VCPUOP_stop_singleshot_timer`.
pub const VCPUOP_stop_singleshot_timer: u32 = 9;
/// `xen/include/public/vcpu.h`: `VCPUOP_register_vcpu_info`.
pub const VCPUOP_register_vcpu_info: u32 = 10;
/// `xen/include/public/vcpu.h`: `VCPUOP_register_vcpu_time_memory_area`, the last operation.
pub const VCPUOP_register_vcpu_time_memory_area: u32 = 13;
/// `xen/include/public/vcpu.h`: `VCPU_SSHOTTMR_future`.
pub const VCPU_SSHOTTMR_future: u32 = 1;

// ---- xen/include/public/hvm/hvm_op.h, hvm/params.h ----

/// `xen/include/public/hvm/hvm_op.h`: `HVMOP_set_param`.
pub const HVMOP_set_param: u64 = 0;
/// `xen/include/public/hvm/hvm_op.h`: `HVMOP_get_param`.
pub const HVMOP_get_param: u64 = 1;
/// `xen/include/public/hvm/params.h`: `HVM_NR_PARAMS`.
pub const HVM_NR_PARAMS: u32 = 39;
/// `xen/include/public/hvm/params.h`: `HVM_PARAM_CALLBACK_IRQ`.
pub const HVM_PARAM_CALLBACK_IRQ: u32 = 0;

// ---- interface versions ----

/// `xen/include/public/platform.h`: `XENPF_INTERFACE_VERSION`.
pub const XENPF_INTERFACE_VERSION: u32 = 0x0300_0001;
/// `xen/include/public/sysctl.h`: `XEN_SYSCTL_INTERFACE_VERSION`.
pub const XEN_SYSCTL_INTERFACE_VERSION: u32 = 0x15;
/// `xen/include/public/domctl.h`: `XEN_DOMCTL_INTERFACE_VERSION`.
pub const XEN_DOMCTL_INTERFACE_VERSION: u32 = 0x15;
/// `xen/include/public/hypfs.h`: `XEN_HYPFS_OP_get_version`.
pub const XEN_HYPFS_OP_get_version: u64 = 0;
/// `xen/include/public/hypfs.h`: `XEN_HYPFS_OP_write_contents`, the last operation.
pub const XEN_HYPFS_OP_write_contents: u64 = 2;
/// `xen/include/public/argo.h`: `XEN_ARGO_OP_notify`, the last operation.
pub const XEN_ARGO_OP_notify: u64 = 4;
/// `xen/include/public/hvm/dm_op.h`: `XEN_DMOP_nr_vcpus`, the last operation.
pub const XEN_DMOP_nr_vcpus: u32 = 20;

// ---- PSCI (Arm DEN 0022, as Xen's vpsci serves it) ----

/// PSCI `CPU_ON` (SMC64 function id), Arm DEN 0022 table 5.
pub const PSCI_CPU_ON_64: u64 = 0xC400_0003;
