//! `sysctl`: the control domain's questions about the system (Xen's
//! `xen/include/public/sysctl.h`, interface version of Xen 4.17): the scheduler, the machine, and
//! the domain list. Checked in Xen's order, as `domctl` is.

use xenolith_abi::xen::domctl::xen_domctl_getdomaininfo;
use xenolith_abi::xen::errno::XenError;
use xenolith_abi::xen::sysctl::{self as sc, xen_sysctl};
use xenolith_kernel::policy::{DomainId, Operation};
use zerocopy::{FromZeros, IntoBytes};

use super::domctl::domain_info;
use crate::domain::Caller;
use crate::mm::guest_access::{read_struct, GuestMemory};

/// `__HYPERVISOR_sysctl(struct xen_sysctl *)`.
pub fn sysctl(va: u64, caller: &mut Caller<'_>) -> Result<i64, XenError> {
    let mut op: xen_sysctl = read_struct(va)?;
    if op.interface_version != sc::XEN_SYSCTL_INTERFACE_VERSION {
        return Err(XenError::EACCES);
    }
    caller.allow(Operation::Sysctl)?;
    match op.cmd {
        sc::XEN_SYSCTL_sched_id => {
            op.u.write(&sc::xen_sysctl_sched_id { sched_id: crate::sched::scheduler_id() });
        }
        sc::XEN_SYSCTL_physinfo => {
            let mut info = sc::xen_sysctl_physinfo::new_zeroed();
            let cpus = crate::arch::percpu::online_count() as u32;
            let (total, free) = crate::mm::memory::frame_counts();
            info.threads_per_core = 1;
            info.cores_per_socket = cpus;
            info.nr_cpus = cpus;
            info.max_cpu_id = cpus.saturating_sub(1);
            info.nr_nodes = 1;
            info.cpu_khz = (crate::arch::cpu::counter_frequency() / 1000) as u32;
            info.total_pages = total;
            info.free_pages = free;
            info.max_mfn = crate::mm::memory::max_frame_number();
            op.u.write(&info);
        }
        sc::XEN_SYSCTL_getdomaininfolist => {
            let mut request: sc::xen_sysctl_getdomaininfolist = op.u.read();
            let ids: alloc::vec::Vec<DomainId> = caller
                .table
                .domains
                .iter()
                .flatten()
                .map(|domain| domain.id)
                .filter(|&id| id >= request.first_domain)
                .take(request.max_domains as usize)
                .collect();
            let size = core::mem::size_of::<xen_domctl_getdomaininfo>() as u64;
            for (index, &id) in ids.iter().enumerate() {
                let info = domain_info(caller.table, id);
                GuestMemory
                    .write(request.buffer.address() + index as u64 * size, info.as_bytes())?;
            }
            request.num_domains = ids.len() as u32;
            op.u.write(&request);
        }
        _ => return Err(XenError::ENOSYS),
    }
    GuestMemory.write(va, op.as_bytes())?;
    Ok(0)
}
