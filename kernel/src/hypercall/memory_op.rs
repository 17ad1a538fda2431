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
    self as mem, xen_add_to_physmap, xen_add_to_physmap_batch, xen_memory_reservation,
    xen_remove_from_physmap,
};
use xenolith_kernel::policy::{DomainId, Operation};

use crate::domain::{Caller, Table};
use crate::mm::guest_access::{read_element, read_struct, write_element};

/// Most entries one batch call handles (Xen continues longer batches; callers split theirs).
const MAX_BATCH: u64 = 512;

/// Asks the policy, as for a domctl, whether the caller may act on `target` (itself: always).
fn allow_domctl(caller: &Caller<'_>, target: DomainId, read_only: bool) -> Result<(), XenError> {
    if target == caller.domain {
        return Ok(());
    }
    let target_is_control =
        caller.table.domain(target).is_some_and(|domain| domain.capabilities.control);
    caller.allow(Operation::Domctl { target, target_is_control, read_only })
}

/// The physmap operations change the caller's own physical address space only: another
/// `domid` is `-EINVAL`.
fn only_own(caller: &Caller<'_>, domid: u16) -> Result<(), XenError> {
    (caller.resolve(domid) == caller.domain).then_some(()).ok_or(XenError::EINVAL)
}

/// Runs `each` on every extent of a `xen_memory_reservation` at `arg` (for `target`, after the
/// policy allowed it) and returns how many succeeded before the first failure, as Xen does.
fn for_each_extent(
    arg: u64,
    caller: &mut Caller<'_>,
    each: fn(&mut Table, DomainId, u64, u32) -> Result<(), XenError>,
) -> Result<i64, XenError> {
    let request: xen_memory_reservation = read_struct(arg)?;
    let target = caller.resolve(request.domid);
    allow_domctl(caller, target, false)?;
    if request.nr_extents > MAX_BATCH {
        return Err(XenError::EINVAL);
    }
    for index in 0..request.nr_extents as u32 {
        let gfn: u64 = read_element(request.extent_start.address(), index)?;
        if each(caller.table, target, gfn, request.extent_order).is_err() {
            return Ok(i64::from(index));
        }
    }
    Ok(request.nr_extents as i64)
}

/// `__HYPERVISOR_memory_op(cmd, arg)`.
pub fn memory_op(cmd: u64, arg: u64, caller: &mut Caller<'_>) -> Result<i64, XenError> {
    match cmd as u32 {
        mem::XENMEM_current_reservation | mem::XENMEM_maximum_reservation => {
            let target = caller.resolve(read_struct(arg)?);
            allow_domctl(caller, target, true)?;
            let domain = caller.table.domain(target).ok_or(XenError::ESRCH)?;
            let pages = if cmd as u32 == mem::XENMEM_current_reservation {
                domain.ram_bytes() / 4096
            } else {
                domain.max_memkb / 4
            };
            Ok(pages as i64)
        }
        mem::XENMEM_populate_physmap => for_each_extent(arg, caller, Table::populate),
        mem::XENMEM_decrease_reservation => for_each_extent(arg, caller, Table::decrease),
        mem::XENMEM_add_to_physmap_batch => {
            let request: xen_add_to_physmap_batch = read_struct(arg)?;
            only_own(caller, request.domid)?;
            if u32::from(request.space) != mem::XENMAPSPACE_gmfn_foreign {
                return Err(XenError::EOPNOTSUPP);
            }
            if u64::from(request.size) > MAX_BATCH {
                return Err(XenError::EINVAL);
            }
            let source: DomainId = request.u;
            let target_is_control =
                caller.table.domain(source).is_some_and(|domain| domain.capabilities.control);
            caller.allow(Operation::ForeignMap { target: source, target_is_control })?;
            for index in 0..u32::from(request.size) {
                let idx: u64 = read_element(request.idxs.address(), index)?;
                let gpfn: u64 = read_element(request.gpfns.address(), index)?;
                let result = caller.table.map_foreign(caller.domain, gpfn, source, idx);
                let status = result.map_or_else(|error| error.to_return() as i32, |()| 0);
                write_element(request.errs.address(), index, &status)?;
            }
            Ok(0)
        }
        mem::XENMEM_add_to_physmap => {
            let request: xen_add_to_physmap = read_struct(arg)?;
            only_own(caller, request.domid)?;
            match request.space {
                mem::XENMAPSPACE_shared_info if request.idx == 0 => {
                    caller.table.map_shared_info(caller.domain, request.gpfn)
                }
                mem::XENMAPSPACE_shared_info => Err(XenError::EINVAL),
                mem::XENMAPSPACE_grant_table => {
                    caller.table.map_grant_frame(caller.domain, request.idx, request.gpfn)
                }
                _ => Err(XenError::EOPNOTSUPP),
            }
            .map(|()| 0)
        }
        mem::XENMEM_remove_from_physmap => {
            let request: xen_remove_from_physmap = read_struct(arg)?;
            only_own(caller, request.domid)?;
            caller.table.unmap_foreign(caller.domain, request.gpfn).map(|()| 0)
        }
        _ => Err(XenError::ENOSYS),
    }
}
