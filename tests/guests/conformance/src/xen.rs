//! The Xen 4.17 public-interface numbers the probes use: `xenolith_abi`'s where it names them
//! (re-exported under the probes' short names), the rest defined here, each citing its header.
//! The structure layouts the probes build by hand are described where they are built, with the
//! header they come from.
// Xen's spelling of its own names.
#![allow(non_upper_case_globals, dead_code)]

// ---- xen/include/public/xen.h ----

pub use xenolith_abi::xen::hypercall::__HYPERVISOR_argo_op as HC_argo_op;
pub use xenolith_abi::xen::hypercall::__HYPERVISOR_console_io as HC_console_io;
pub use xenolith_abi::xen::hypercall::__HYPERVISOR_dm_op as HC_dm_op;
pub use xenolith_abi::xen::hypercall::__HYPERVISOR_domctl as HC_domctl;
pub use xenolith_abi::xen::hypercall::__HYPERVISOR_event_channel_op as HC_event_channel_op;
pub use xenolith_abi::xen::hypercall::__HYPERVISOR_grant_table_op as HC_grant_table_op;
pub use xenolith_abi::xen::hypercall::__HYPERVISOR_hvm_op as HC_hvm_op;
pub use xenolith_abi::xen::hypercall::__HYPERVISOR_hypfs_op as HC_hypfs_op;
pub use xenolith_abi::xen::hypercall::__HYPERVISOR_memory_op as HC_memory_op;
pub use xenolith_abi::xen::hypercall::__HYPERVISOR_multicall as HC_multicall;
pub use xenolith_abi::xen::hypercall::__HYPERVISOR_physdev_op as HC_physdev_op;
pub use xenolith_abi::xen::hypercall::__HYPERVISOR_platform_op as HC_platform_op;
pub use xenolith_abi::xen::hypercall::__HYPERVISOR_sched_op as HC_sched_op;
pub use xenolith_abi::xen::hypercall::__HYPERVISOR_sysctl as HC_sysctl;
pub use xenolith_abi::xen::hypercall::__HYPERVISOR_vcpu_op as HC_vcpu_op;
pub use xenolith_abi::xen::hypercall::__HYPERVISOR_vm_assist as HC_vm_assist;
pub use xenolith_abi::xen::hypercall::__HYPERVISOR_xen_version as HC_xen_version;
pub use xenolith_abi::xen::hypercall::__HYPERVISOR_xsm_op as HC_xsm_op;

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

pub use xenolith_abi::xen::event_channel::NR_VIRQS;

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
pub use xenolith_abi::xen::memory::XENMAPSPACE_dev_mmio;
pub use xenolith_abi::xen::memory::XENMAPSPACE_gmfn;
pub use xenolith_abi::xen::memory::XENMAPSPACE_gmfn_foreign;
pub use xenolith_abi::xen::memory::XENMAPSPACE_gmfn_range;
pub use xenolith_abi::xen::memory::XENMAPSPACE_grant_table;
pub use xenolith_abi::xen::memory::XENMAPSPACE_shared_info;
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

pub use xenolith_abi::xen::grant_table::GNTTABOP_cache_flush;
pub use xenolith_abi::xen::grant_table::GNTTABOP_copy;
pub use xenolith_abi::xen::grant_table::GNTTABOP_dump_table;
pub use xenolith_abi::xen::grant_table::GNTTABOP_get_status_frames;
pub use xenolith_abi::xen::grant_table::GNTTABOP_get_version;
pub use xenolith_abi::xen::grant_table::GNTTABOP_map_grant_ref;
pub use xenolith_abi::xen::grant_table::GNTTABOP_query_size;
pub use xenolith_abi::xen::grant_table::GNTTABOP_set_version;
pub use xenolith_abi::xen::grant_table::GNTTABOP_setup_table;
pub use xenolith_abi::xen::grant_table::GNTTABOP_swap_grant_ref;
pub use xenolith_abi::xen::grant_table::GNTTABOP_transfer;
pub use xenolith_abi::xen::grant_table::GNTTABOP_unmap_and_replace;
pub use xenolith_abi::xen::grant_table::GNTTABOP_unmap_grant_ref;
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
pub use xenolith_abi::xen::grant_table::GNTTAB_CACHE_CLEAN;
pub use xenolith_abi::xen::grant_table::GNTTAB_CACHE_INVAL;
pub use xenolith_abi::xen::grant_table::GNTTAB_CACHE_SOURCE_GREF;

// ---- xen/include/public/event_channel.h ----

pub use xenolith_abi::xen::event_channel::EVTCHNOP_alloc_unbound;
pub use xenolith_abi::xen::event_channel::EVTCHNOP_bind_interdomain;
pub use xenolith_abi::xen::event_channel::EVTCHNOP_bind_ipi;
pub use xenolith_abi::xen::event_channel::EVTCHNOP_bind_pirq;
pub use xenolith_abi::xen::event_channel::EVTCHNOP_bind_vcpu;
pub use xenolith_abi::xen::event_channel::EVTCHNOP_bind_virq;
pub use xenolith_abi::xen::event_channel::EVTCHNOP_close;
pub use xenolith_abi::xen::event_channel::EVTCHNOP_expand_array;
pub use xenolith_abi::xen::event_channel::EVTCHNOP_init_control;
pub use xenolith_abi::xen::event_channel::EVTCHNOP_reset;
pub use xenolith_abi::xen::event_channel::EVTCHNOP_reset_cont;
pub use xenolith_abi::xen::event_channel::EVTCHNOP_send;
pub use xenolith_abi::xen::event_channel::EVTCHNOP_set_priority;
pub use xenolith_abi::xen::event_channel::EVTCHNOP_status;
pub use xenolith_abi::xen::event_channel::EVTCHNOP_unmask;

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
pub use xenolith_abi::xen::sched::SHUTDOWN_poweroff;

// ---- xen/include/public/vcpu.h ----

pub use xenolith_abi::xen::vcpu::VCPUOP_down;
pub use xenolith_abi::xen::vcpu::VCPUOP_is_up;
pub use xenolith_abi::xen::vcpu::VCPUOP_register_runstate_memory_area;
pub use xenolith_abi::xen::vcpu::VCPUOP_register_vcpu_info;
pub use xenolith_abi::xen::vcpu::VCPUOP_set_periodic_timer;
pub use xenolith_abi::xen::vcpu::VCPUOP_set_singleshot_timer;
pub use xenolith_abi::xen::vcpu::VCPUOP_stop_periodic_timer;
pub use xenolith_abi::xen::vcpu::VCPUOP_stop_singleshot_timer;
/// `xen/include/public/vcpu.h`: `VCPU_SSHOTTMR_future`.
pub const VCPU_SSHOTTMR_future: u32 = 1;

// ---- xen/include/public/hvm/hvm_op.h, hvm/params.h ----

pub use xenolith_abi::xen::hvm::HVMOP_get_param;
pub use xenolith_abi::xen::hvm::HVMOP_set_param;
pub use xenolith_abi::xen::hvm::HVM_NR_PARAMS;
pub use xenolith_abi::xen::hvm::HVM_PARAM_CALLBACK_IRQ;

// ---- interface versions ----

/// `xen/include/public/platform.h`: `XENPF_INTERFACE_VERSION`.
pub const XENPF_INTERFACE_VERSION: u32 = 0x0300_0001;
pub use xenolith_abi::xen::domctl::XEN_DOMCTL_INTERFACE_VERSION;
pub use xenolith_abi::xen::sysctl::XEN_SYSCTL_readconsole;
pub use xenolith_abi::xen::sysctl::XEN_SYSCTL_INTERFACE_VERSION;
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
