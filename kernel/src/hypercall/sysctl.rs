//! `sysctl`: the control domain's questions about the system (Xen's
//! `xen/include/public/sysctl.h`, interface version of Xen 4.17): the scheduler, the machine, the
//! domain list and the console ring. Checked in Xen's order, as `domctl` is; every command needs
//! `control` (Xen's `xsm_sysctl`; its `xsm_readconsole` then allows what that allowed).

use xenolith_abi::xen::errno::XenError;
use xenolith_abi::xen::sysctl::{self as sc, xen_sysctl};
use xenolith_kernel::policy::Operation;
use zerocopy::FromZeros;

use super::domctl::{domain_ids, domain_info};
use crate::domain::Caller;
use crate::mm::guest_access::{read_struct, write_element, write_struct, GuestMemory};

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
            let ids = domain_ids(caller.table, request.first_domain);
            let mut count = 0;
            for id in ids.take(request.max_domains as usize) {
                write_element(request.buffer.address(), count, &domain_info(caller.table, id))?;
                count += 1;
            }
            request.num_domains = count;
            op.u.write(&request);
        }
        sc::XEN_SYSCTL_readconsole => {
            let mut request: sc::xen_sysctl_readconsole = op.u.read();
            let buffer = request.buffer.address();
            let copy =
                |at: u32, bytes: &[u8]| GuestMemory.write(buffer.wrapping_add(at.into()), bytes);
            crate::platform::console::with_ring(|ring| ring.read(&mut request, copy))?;
            op.u.write(&request);
        }
        _ => return Err(XenError::ENOSYS),
    }
    write_struct(va, &op).map(|()| 0)
}
