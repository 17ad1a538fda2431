//! `memory_op` (`xen/include/public/memory.h`): the reservation queries, `populate_physmap` (how a
//! builder gives a domain its RAM), and the foreign mappings a builder loads a domain through.
//!
//! # Invariants
//! - Operating on another domain needs the policy's consent first (`-EPERM`): populating it is a
//!   domctl-class change, mapping its memory a foreign map.
//! - Batches report progress as Xen does: `populate_physmap` returns how many extents it did; the
//!   add-to-physmap batch writes one error per entry and returns 0.

use xenolith_abi::xen::errno::XenError;
use xenolith_abi::xen::memory::{
    self as mem, xen_add_to_physmap_batch, xen_memory_reservation, xen_remove_from_physmap,
};
use xenolith_kernel::policy::{DomainId, Operation};

use crate::domain::Caller;
use crate::mm::guest_access::read_struct;
use crate::mm::guest_access::GuestMemory;

/// Most entries one batch call handles (Xen continues longer batches; callers split theirs).
const MAX_BATCH: u64 = 512;

fn is_control(caller: &Caller<'_>, id: DomainId) -> bool {
    caller.table.domain(id).is_some_and(|domain| domain.capabilities.control)
}

/// Runs `each` on every extent of a `xen_memory_reservation` at `arg` (for `target`, after the
/// policy allowed it) and returns how many succeeded before the first failure, as Xen does.
fn for_each_extent(
    arg: u64,
    caller: &mut Caller<'_>,
    each: fn(&mut crate::domain::Table, DomainId, u64, u32) -> Result<(), XenError>,
) -> Result<i64, XenError> {
    let request: xen_memory_reservation = read_struct(arg)?;
    let target = caller.resolve(request.domid);
    if target != caller.domain {
        let target_is_control = is_control(caller, target);
        caller.allow(Operation::Domctl { target, target_is_control, read_only: false })?;
    }
    if request.nr_extents > MAX_BATCH {
        return Err(XenError::EINVAL);
    }
    let mut done = 0;
    for index in 0..request.nr_extents {
        let mut raw = [0u8; 8];
        GuestMemory.read(request.extent_start.address() + index * 8, &mut raw)?;
        if each(caller.table, target, u64::from_le_bytes(raw), request.extent_order).is_err() {
            break;
        }
        done += 1;
    }
    Ok(done)
}

/// `__HYPERVISOR_memory_op(cmd, arg)`.
pub fn memory_op(cmd: u64, arg: u64, caller: &mut Caller<'_>) -> Result<i64, XenError> {
    match cmd as u32 {
        mem::XENMEM_current_reservation | mem::XENMEM_maximum_reservation => {
            let mut raw = [0u8; 2];
            GuestMemory.read(arg, &mut raw)?;
            let target = caller.resolve(u16::from_le_bytes(raw));
            if target != caller.domain {
                let target_is_control = is_control(caller, target);
                caller.allow(Operation::Domctl { target, target_is_control, read_only: true })?;
            }
            let domain = caller.table.domain(target).ok_or(XenError::ESRCH)?;
            let pages = if cmd as u32 == mem::XENMEM_current_reservation {
                domain.ram_bytes() / 4096
            } else {
                domain.max_memkb / 4
            };
            Ok(pages as i64)
        }
        mem::XENMEM_populate_physmap => {
            for_each_extent(arg, caller, |table, target, gfn, order| {
                table.populate(target, gfn, order)
            })
        }
        mem::XENMEM_decrease_reservation => {
            for_each_extent(arg, caller, |table, target, gfn, order| {
                table.decrease(target, gfn, order)
            })
        }
        mem::XENMEM_add_to_physmap_batch => {
            let request: xen_add_to_physmap_batch = read_struct(arg)?;
            if caller.resolve(request.domid) != caller.domain {
                return Err(XenError::EINVAL);
            }
            if u32::from(request.space) != mem::XENMAPSPACE_gmfn_foreign {
                return Err(XenError::EOPNOTSUPP);
            }
            if u64::from(request.size) > MAX_BATCH {
                return Err(XenError::EINVAL);
            }
            let source: DomainId = request.u;
            let target_is_control = is_control(caller, source);
            caller.allow(Operation::ForeignMap { target: source, target_is_control })?;
            for index in 0..u64::from(request.size) {
                let mut idx = [0u8; 8];
                let mut gpfn = [0u8; 8];
                GuestMemory.read(request.idxs.address() + index * 8, &mut idx)?;
                GuestMemory.read(request.gpfns.address() + index * 8, &mut gpfn)?;
                let result = caller.table.map_foreign(
                    caller.domain,
                    u64::from_le_bytes(gpfn),
                    source,
                    u64::from_le_bytes(idx),
                );
                let status: i32 = match result {
                    Ok(()) => 0,
                    Err(error) => error.to_return() as i32,
                };
                GuestMemory.write(request.errs.address() + index * 4, &status.to_le_bytes())?;
            }
            Ok(0)
        }
        mem::XENMEM_add_to_physmap => {
            let request: xenolith_abi::xen::memory::xen_add_to_physmap = read_struct(arg)?;
            if caller.resolve(request.domid) != caller.domain {
                return Err(XenError::EINVAL);
            }
            match request.space {
                mem::XENMAPSPACE_shared_info if request.idx == 0 => {
                    caller.table.map_shared_info(caller.domain, request.gpfn)?;
                    Ok(0)
                }
                mem::XENMAPSPACE_shared_info => Err(XenError::EINVAL),
                mem::XENMAPSPACE_grant_table => {
                    caller.table.map_grant_frame(caller.domain, request.idx, request.gpfn)?;
                    Ok(0)
                }
                _ => Err(XenError::EOPNOTSUPP),
            }
        }
        mem::XENMEM_remove_from_physmap => {
            let request: xen_remove_from_physmap = read_struct(arg)?;
            if caller.resolve(request.domid) != caller.domain {
                return Err(XenError::EINVAL);
            }
            caller.table.unmap_foreign(caller.domain, request.gpfn)?;
            Ok(0)
        }
        _ => Err(XenError::ENOSYS),
    }
}
