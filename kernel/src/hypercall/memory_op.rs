//! `memory_op` (`xen/include/public/memory.h`) as Xen 4.17 on Arm answers it
//! (`do_memory_op`, xen/common/memory.c; `arch_memory_op`, xen/arch/arm/mm.c), check for check
//! and in Xen's order: the reservation operations, the queries, the physmap operations, and the
//! privileged or absent ones (claims, resources, vNUMA, sharing).
//!
//! # Invariants
//! - `cmd` carries a continuation's start extent above `MEMOP_EXTENT_SHIFT`; operations that
//!   never continue refuse one (`-EINVAL`), as Xen does.
//! - The reservation operations never fail: they return how many extents they did (counting from
//!   the start extent), stopping at the first refusal, as Xen does.
//! - Operating on another domain needs the policy's consent (Xen's `XSM_TARGET`: the control
//!   domain or the target's device model); the domain must exist first (`-ESRCH`).
//! - Batches report progress as Xen does: the add-to-physmap batch writes one result per entry
//!   and returns 0.

use xenolith_abi::xen::errno::XenError;
use xenolith_abi::xen::hypercall::DOMID_SELF;
use xenolith_abi::xen::memory::{
    self as mem, xen_add_to_physmap, xen_add_to_physmap_batch, xen_memory_reservation,
    xen_remove_from_physmap,
};
use xenolith_kernel::policy::{DomainId, Operation};

use crate::domain::Caller;
use crate::mm::guest_access::{read_element, read_struct, write_element, write_struct};

/// `MEMOP_EXTENT_SHIFT` and `MEMOP_CMD_MASK` (`xen/include/public/memory.h`).
const EXTENT_SHIFT: u32 = 6;
const CMD_MASK: u64 = (1 << EXTENT_SHIFT) - 1;

/// Most extents one reservation call does; the rest is a continuation (Xen preempts instead).
const MAX_BATCH: u64 = 512;

/// Xen's `rcu_lock_domain_by_any_id`: `DOMID_SELF` or an existing domain (`-ESRCH`).
fn any_id(caller: &Caller<'_>, domid: u16) -> Result<DomainId, XenError> {
    let id = if domid == DOMID_SELF { caller.domain } else { domid };
    caller.table.domain(id).map(|_| id).ok_or(XenError::ESRCH)
}

/// Xen's `XSM_TARGET` default: itself, or with the policy's consent as for a domctl.
fn allow_target(caller: &Caller<'_>, target: DomainId, read_only: bool) -> Result<(), XenError> {
    if target == caller.domain {
        return Ok(());
    }
    let target_is_control =
        caller.table.domain(target).is_some_and(|domain| domain.capabilities.control);
    caller.allow(Operation::Domctl { target, target_is_control, read_only })
}

/// Xen's `max_order`: the largest extent a domain may ask for (`CONFIG_DOMU_MAX_ORDER` 9 on Arm,
/// `CONFIG_CTLDOM_MAX_ORDER` 18 for the control domain).
fn max_order(caller: &Caller<'_>) -> u32 {
    let control = caller.table.domain(caller.domain).is_some_and(|d| d.capabilities.control);
    if control {
        18
    } else {
        9
    }
}

/// Refuses a start extent where the operation never continues.
fn no_continuation(start: u64) -> Result<(), XenError> {
    if start == 0 {
        Ok(())
    } else {
        Err(XenError::EINVAL)
    }
}

/// `__HYPERVISOR_memory_op(cmd, arg)`.
pub fn memory_op(cmd: u64, arg: u64, caller: &mut Caller<'_>) -> Result<i64, XenError> {
    let start = cmd >> EXTENT_SHIFT;
    match (cmd & CMD_MASK) as u32 {
        op @ (mem::XENMEM_increase_reservation
        | mem::XENMEM_decrease_reservation
        | mem::XENMEM_populate_physmap) => Ok(reservation(op, start, arg, caller)),
        mem::XENMEM_exchange => {
            no_continuation(start)?;
            exchange(arg, caller)
        }
        mem::XENMEM_maximum_ram_page => {
            no_continuation(start)?;
            Ok(crate::mm::memory::max_frame_number() as i64 + 1)
        }
        op @ (mem::XENMEM_current_reservation
        | mem::XENMEM_maximum_reservation
        | mem::XENMEM_maximum_gpfn) => {
            no_continuation(start)?;
            let target = any_id(caller, read_struct(arg)?)?;
            allow_target(caller, target, true)?;
            let domain = caller.table.domain(target).ok_or(XenError::ESRCH)?;
            Ok(match op {
                mem::XENMEM_current_reservation => domain.ram_pages + domain.unmapped_pages,
                mem::XENMEM_maximum_reservation => domain.max_memkb / 4,
                _ => domain.maximum_gfn(),
            } as i64)
        }
        mem::XENMEM_add_to_physmap => {
            if start > u64::from(u16::MAX) {
                return Err(XenError::EDOM);
            }
            let request: xen_add_to_physmap = read_struct(arg)?;
            if request.space == mem::XENMAPSPACE_gmfn_foreign {
                return Err(XenError::ENOSYS);
            }
            let target = any_id(caller, request.domid)?;
            physmap_permission(caller, target, request.space)?;
            if request.gpfn == u64::MAX {
                return Err(XenError::EINVAL);
            }
            if request.space == mem::XENMAPSPACE_gmfn_range {
                // Moving RAM frames (`XENMAPSPACE_gmfn`) is not done on Arm: a range of none is
                // done, any other fails at its first frame, as Xen's.
                let size = u64::from(request.size);
                if size < start {
                    return Err(XenError::EILSEQ);
                }
                if request.gpfn.checked_add(size).is_none()
                    || request.idx.checked_add(size).is_none()
                {
                    return Err(XenError::EOVERFLOW);
                }
                return if size == start { Ok(0) } else { Err(XenError::ENOSYS) };
            }
            add_one(caller, target, request.space, 0, request.idx, request.gpfn).map(|()| 0)
        }
        mem::XENMEM_add_to_physmap_batch => {
            if start > u64::from(u16::MAX) {
                return Err(XenError::EDOM);
            }
            let request: xen_add_to_physmap_batch = read_struct(arg)?;
            if u32::from(request.space) == mem::XENMAPSPACE_gmfn_range {
                return Err(XenError::EOPNOTSUPP);
            }
            let target = any_id(caller, request.domid)?;
            physmap_permission(caller, target, u32::from(request.space))?;
            add_batch(caller, target, &request, start)
        }
        mem::XENMEM_remove_from_physmap => {
            no_continuation(start)?;
            let request: xen_remove_from_physmap = read_struct(arg)?;
            let target = any_id(caller, request.domid)?;
            allow_target(caller, target, false)?;
            caller.table.remove_from_physmap(target, request.gpfn).map(|()| 0)
        }
        mem::XENMEM_claim_pages => {
            no_continuation(start)?;
            let request: xen_memory_reservation = read_struct(arg)?;
            if request.extent_start.address() != 0
                || request.extent_order != 0
                || request.mem_flags != 0
            {
                return Err(XenError::EINVAL);
            }
            // By its id only (`DOMID_SELF` names none), then Xen's `XSM_PRIV`: claims are the
            // toolstack's, and Xenolith's builder needs none.
            caller.table.domain(request.domid).ok_or(XenError::EINVAL)?;
            Err(XenError::EPERM)
        }
        mem::XENMEM_get_vnumainfo => {
            no_continuation(start)?;
            // `struct xen_vnuma_topology_info`: domid, pad, nr_vnodes, nr_vcpus, ...
            let head: [u16; 2] = read_struct(arg)?;
            if head[1] != 0 {
                return Err(XenError::EINVAL);
            }
            let target = any_id(caller, head[0])?;
            allow_target(caller, target, true)?;
            // No domain has a virtual NUMA topology.
            Err(XenError::EOPNOTSUPP)
        }
        mem::XENMEM_acquire_resource => acquire_resource(arg, start, caller),
        mem::XENMEM_reserved_device_memory_map => {
            no_continuation(start)?;
            // `struct xen_reserved_device_memory_map`: flags, nr_entries, buffer, dev. No device
            // needs guest-physical memory kept free (no passthrough): none, written back.
            let head: [u32; 2] = read_struct(arg)?;
            if head[0] & !1 != 0 {
                return Err(XenError::EINVAL);
            }
            crate::mm::guest_access::write_struct(arg + 4, &0u32)?;
            Ok(0)
        }
        // Arm's `arch_memory_op`: page sharing does not work there, so nothing is shared.
        mem::XENMEM_get_sharing_freed_pages | mem::XENMEM_get_sharing_shared_pages => Ok(0),
        _ => Err(XenError::ENOSYS),
    }
}

/// `increase_reservation`, `decrease_reservation` and `populate_physmap`: every early refusal
/// returns the start extent; otherwise how many extents were done.
fn reservation(op: u32, start: u64, arg: u64, caller: &mut Caller<'_>) -> i64 {
    let done = start as i64;
    let Ok(request) = read_struct::<xen_memory_reservation>(arg) else { return done };
    if request.nr_extents > u64::from(u32::MAX >> EXTENT_SHIFT) || start >= request.nr_extents {
        return done;
    }
    let Ok(target) = any_id(caller, request.domid) else { return done };
    // `construct_memop_from_reservation`: an address limit of a page or less fits no frame.
    let address_bits = request.mem_flags & 0xff;
    if address_bits != 0 && address_bits <= 12 {
        return done;
    }
    if allow_target(caller, target, false).is_err() {
        return done;
    }
    let populate_on_demand = request.mem_flags & mem::XENMEMF_populate_on_demand != 0;
    if request.extent_order > max_order(caller)
        || (op == mem::XENMEM_populate_physmap && populate_on_demand)
    {
        // Populate-on-demand needs Xen's PoD, which Arm lacks: nothing done, as there.
        return done;
    }
    let end = request.nr_extents.min(start + MAX_BATCH);
    for index in start..end {
        let result = if op == mem::XENMEM_increase_reservation {
            caller.table.reserve_unmapped(target, request.extent_order)
        } else {
            read_element::<u64>(request.extent_start.address(), index as u32).and_then(|gfn| {
                if op == mem::XENMEM_populate_physmap {
                    caller.table.populate(target, gfn, request.extent_order)
                } else {
                    caller.table.decrease(target, gfn, request.extent_order)
                }
            })
        };
        if result.is_err() {
            return index as i64;
        }
    }
    end as i64
}

/// `xatp_permission_check`: device MMIO only for a hardware domain into itself (Xenolith has
/// none: `-EACCES`), then `XSM_TARGET`.
fn physmap_permission(caller: &Caller<'_>, target: DomainId, space: u32) -> Result<(), XenError> {
    if space == mem::XENMAPSPACE_dev_mmio {
        return Err(XenError::EACCES);
    }
    allow_target(caller, target, false)
}

/// Arm's `xenmem_add_to_physmap_one` for `target`'s frame `gfn`: its shared-info page or one of
/// its grant-table frames (each mapped at one place at a time: `-EBUSY` until removed), or
/// `foreign`'s frame `idx` (a builder loading a domain). Every other space is `-ENOSYS`
/// (`XENMAPSPACE_gmfn` and `_gmfn_range` move RAM, which Arm does not do).
fn add_one(
    caller: &mut Caller<'_>,
    target: DomainId,
    space: u32,
    foreign: DomainId,
    idx: u64,
    gfn: u64,
) -> Result<(), XenError> {
    if target != caller.domain && space != mem::XENMAPSPACE_gmfn_foreign {
        // Xenolith maps these only into the caller's own address space.
        return Err(XenError::EINVAL);
    }
    match space {
        mem::XENMAPSPACE_shared_info if idx != 0 => Err(XenError::EINVAL),
        mem::XENMAPSPACE_shared_info => caller.table.map_shared_info(target, gfn),
        mem::XENMAPSPACE_grant_table => caller.table.map_grant_frame(target, idx, gfn),
        mem::XENMAPSPACE_gmfn_foreign => {
            let source = caller.table.domain(foreign).ok_or(XenError::ESRCH)?;
            if foreign == target {
                return Err(XenError::EINVAL);
            }
            let target_is_control = source.capabilities.control;
            caller.allow(Operation::ForeignMap { target: foreign, target_is_control })?;
            caller.table.map_foreign(target, gfn, foreign, idx)
        }
        _ => Err(XenError::ENOSYS),
    }
}

/// `xenmem_add_to_physmap_batch` from entry `start`: one result per entry in `errs`, 0 when all
/// are done, or the next entry to continue from (at most [`MAX_BATCH`] per call).
fn add_batch(
    caller: &mut Caller<'_>,
    target: DomainId,
    request: &xen_add_to_physmap_batch,
    start: u64,
) -> Result<i64, XenError> {
    let size = u64::from(request.size);
    if size < start || (size == start && start != 0) {
        return Err(XenError::EILSEQ);
    }
    let space = u32::from(request.space);
    if space == mem::XENMAPSPACE_dev_mmio && request.u != 0 {
        return Err(XenError::EOPNOTSUPP);
    }
    let foreign = if space == mem::XENMAPSPACE_gmfn_foreign { request.u } else { DOMID_SELF };
    for index in start..size {
        if index == start + MAX_BATCH {
            return Ok(index as i64);
        }
        let idx: u64 = read_element(request.idxs.address(), index as u32)?;
        let gfn: u64 = read_element(request.gpfns.address(), index as u32)?;
        if gfn == u64::MAX {
            return Err(XenError::EINVAL);
        }
        let result = add_one(caller, target, space, foreign, idx, gfn);
        let status = result.map_or_else(|error| error.to_return() as i32, |()| 0);
        write_element(request.errs.address(), index as u32, &status)?;
    }
    Ok(0)
}

/// `memory_exchange`'s checks, in Xen's order, through the domain's and the policy's. Exchanging frames for others with different
/// machine addresses means nothing to a guest that never sees machine addresses, and Xenolith
/// does not do it: a well-formed request is `-EOPNOTSUPP` (Xen would exchange).
fn exchange(arg: u64, caller: &Caller<'_>) -> Result<i64, XenError> {
    // `struct xen_memory_exchange`: `in` and `out` reservations (40 bytes each), then
    // `nr_exchanged`.
    let exchange: [xen_memory_reservation; 2] = read_struct(arg)?;
    let nr_exchanged: u64 =
        read_struct(arg + 2 * core::mem::size_of::<xen_memory_reservation>() as u64)?;
    let [input, output] = exchange;
    if input.extent_order.max(output.extent_order) > max_order(caller) {
        return Err(XenError::EPERM);
    }
    let fits = |r: &xen_memory_reservation| {
        r.nr_extents
            .checked_shl(r.extent_order)
            .is_some_and(|n| n >> r.extent_order == r.nr_extents)
    };
    if nr_exchanged > input.nr_extents
        || input.domid != output.domid
        || !fits(&input)
        || !fits(&output)
        || input.nr_extents << input.extent_order != output.nr_extents << output.extent_order
    {
        return Err(XenError::EINVAL);
    }
    if nr_exchanged == input.nr_extents {
        return Ok(0);
    }
    let target = any_id(caller, input.domid)?;
    allow_target(caller, target, false)?;
    Err(XenError::EOPNOTSUPP)
}

/// `acquire_resource` in Xen's order: the request (`xen_mem_acquire_resource`: domid, type, id,
/// nr_frames, pad, frame, frame_list), then the domain (another one only, `-EPERM` for itself),
/// then Xen's `XSM_DM_PRIV`, then the resource. Only an IOREQ server's frames are offered (2:
/// Xen's `ioreq_server_max_frames` with up to 128 vCPUs); a grant table's are `-EINVAL`, as
/// for a resource a domain lacks. A null `frame_list` asks for the size; else each frame
/// (`dm_op::frame`) is mapped at the caller's gfn in `frame_list` (Arm callers are
/// translated); a mapping that fails after the first is `-EIO`.
fn acquire_resource(arg: u64, start: u64, caller: &mut Caller<'_>) -> Result<i64, XenError> {
    let [head, id, nr_frames, pad]: [u32; 4] = read_struct(arg)?;
    let [frame, list]: [u64; 2] = read_struct(arg + 16)?;
    if pad != 0 || frame >> 32 != 0 || (frame + u64::from(nr_frames)) >> 32 != 0 {
        return Err(XenError::EINVAL);
    }
    let target = caller.table.domain(head as u16).ok_or(XenError::ESRCH)?.id;
    if target == caller.domain {
        return Err(XenError::EPERM);
    }
    caller.allow(Operation::DeviceModel { target })?;
    if head >> 16 != u32::from(mem::XENMEM_resource_ioreq_server) {
        return Err(XenError::EINVAL);
    }
    if list == 0 {
        if nr_frames != 0 || start != 0 {
            return Err(XenError::EINVAL);
        }
        write_struct(arg + 8, &2u32)?;
        return Ok(0);
    }
    if start >= u64::from(nr_frames) || nr_frames > u32::MAX >> EXTENT_SHIFT {
        return Err(XenError::EINVAL);
    }
    for index in start..u64::from(nr_frames) {
        let phys = super::dm_op::frame(caller.table, target, id, frame + index, caller.domain)?;
        let gfn: u64 = read_element(list, index as u32)?;
        let mapped = caller.table.map_lent(caller.domain, gfn, phys, target);
        mapped.map_err(|error| if index > start { XenError::EIO } else { error })?;
    }
    Ok(0)
}
