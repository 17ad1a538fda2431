//! What a device model domain asks of the hypervisor, Xen's way: `dm_op` on its target
//! (`xen/include/public/hvm/dm_op.h`: IOREQ servers, I/O ranges, interrupt levels),
//! `XENMEM_acquire_resource` for a server's ioreq page, and foreign mappings of the target's
//! RAM (`XENMEM_add_to_physmap_batch` with `XENMAPSPACE_gmfn_foreign`, undone with
//! `XENMEM_remove_from_physmap`), as QEMU does through libxendevicemodel and libxenforeignmemory.
//! Each call needs the `dm:<target>` capability (Xen: `XSM_DM_PRIV`).
//!
//! Every wrapper passes structures on its own stack and returns Xen's error as a [`XenError`].

use xenolith_abi::xen::dm_op::*;
use xenolith_abi::xen::errno::XenError;
use xenolith_abi::xen::hypercall::{self as number, domid_t, GuestHandle, DOMID_SELF};
use xenolith_abi::xen::memory::{
    xen_add_to_physmap_batch, xen_mem_acquire_resource, xen_remove_from_physmap,
    XENMAPSPACE_gmfn_foreign, XENMEM_acquire_resource, XENMEM_add_to_physmap_batch,
    XENMEM_remove_from_physmap, XENMEM_resource_ioreq_server,
    XENMEM_resource_ioreq_server_frame_ioreq,
};
use zerocopy::{FromBytes, Immutable, IntoBytes};

use crate::hypercall;

fn result(value: i64) -> Result<(), XenError> {
    if value == 0 {
        Ok(())
    } else {
        Err(XenError::from_return(value).unwrap_or(XenError::EINVAL))
    }
}

/// `dm_op(target, 1, [buffer])` with buffer 0 a `xen_dm_op` of `op` and `payload`: Xen's
/// result and the payload as Xen left it (`xen/arch/arm/dm.c` copies OUT fields back into
/// the buffer).
fn dm_op<T: IntoBytes + FromBytes + Immutable>(
    target: domid_t,
    op: u32,
    payload: &T,
) -> Result<T, XenError> {
    let mut request = xen_dm_op { op, pad: 0, u: DmOpPayload::new(payload) };
    let buffers = [xen_dm_op_buf {
        h: GuestHandle::new((&raw mut request) as u64),
        size: size_of::<xen_dm_op>() as u64,
    }];
    // The hypervisor reads `buffers` and the request it points at, both on this stack for the
    // whole call, and writes OUT fields into the request (`raw`'s assembly may write memory,
    // so the compiler reads `request` again below).
    let value = hypercall::raw(
        number::__HYPERVISOR_dm_op,
        [u64::from(target), 1, buffers.as_ptr() as u64, 0, 0],
    );
    result(value)?;
    Ok(request.u.read())
}

/// `XEN_DMOP_create_ioreq_server` without buffered ioreqs (the only kind Arm has): the new
/// server's id.
pub fn create_ioreq_server(target: domid_t) -> Result<ioservid_t, XenError> {
    let payload = xen_dm_op_create_ioreq_server {
        handle_bufioreq: HVM_IOREQSRV_BUFIOREQ_OFF,
        pad: [0; 3],
        id: 0,
    };
    Ok(dm_op(target, XEN_DMOP_create_ioreq_server, &payload)?.id)
}

/// `XEN_DMOP_get_ioreq_server_info` with `XEN_DMOP_no_gfns` (required on Arm): whether
/// server `id` of `target` exists and is this domain's (`-ENOENT`, `-EPERM` otherwise).
pub fn ioreq_server_exists(target: domid_t, id: ioservid_t) -> Result<(), XenError> {
    let payload =
        xen_dm_op_get_ioreq_server_info { id, flags: XEN_DMOP_no_gfns, ..Default::default() };
    dm_op(target, XEN_DMOP_get_ioreq_server_info, &payload).map(|_| ())
}

/// `XEN_DMOP_map_io_range_to_ioreq_server`: MMIO `start..=end` of `target` goes to server `id`.
pub fn map_mmio_range(
    target: domid_t,
    id: ioservid_t,
    start: u64,
    end: u64,
) -> Result<(), XenError> {
    let payload =
        xen_dm_op_ioreq_server_range { id, pad: 0, r#type: XEN_DMOP_IO_RANGE_MEMORY, start, end };
    dm_op(target, XEN_DMOP_map_io_range_to_ioreq_server, &payload).map(|_| ())
}

/// `XEN_DMOP_set_ioreq_server_state`: server `id` enabled or not.
pub fn set_ioreq_server_state(
    target: domid_t,
    id: ioservid_t,
    enabled: bool,
) -> Result<(), XenError> {
    let payload = xen_dm_op_set_ioreq_server_state { id, enabled: enabled.into(), pad: 0 };
    dm_op(target, XEN_DMOP_set_ioreq_server_state, &payload).map(|_| ())
}

/// `XEN_DMOP_set_irq_level`: the level of `target`'s SPI `intid`.
pub fn set_irq_level(target: domid_t, intid: u32, level: bool) -> Result<(), XenError> {
    let payload = xen_dm_op_set_irq_level { irq: intid, level: level.into(), pad: [0; 3] };
    dm_op(target, XEN_DMOP_set_irq_level, &payload).map(|_| ())
}

/// `XEN_DMOP_nr_vcpus`: how many vCPUs `target` was created with.
pub fn nr_vcpus(target: domid_t) -> Result<u32, XenError> {
    Ok(dm_op(target, XEN_DMOP_nr_vcpus, &xen_dm_op_nr_vcpus::default())?.vcpus)
}

/// `XENMEM_acquire_resource` of server `id`'s synchronous ioreq page
/// (`XENMEM_resource_ioreq_server_frame_ioreq(0)`), mapped at this domain's frame `gfn`: an
/// Arm caller is translated, so `frame_list` names where to map (`xen/common/memory.c`,
/// `acquire_resource`).
pub fn acquire_ioreq_page(target: domid_t, id: ioservid_t, gfn: u64) -> Result<(), XenError> {
    let frames = [gfn];
    let request = xen_mem_acquire_resource {
        domid: target,
        r#type: XENMEM_resource_ioreq_server,
        id: u32::from(id),
        nr_frames: 1,
        pad: 0,
        frame: XENMEM_resource_ioreq_server_frame_ioreq(0),
        frame_list: GuestHandle::new(frames.as_ptr() as u64),
    };
    result(hypercall::memory_op(XENMEM_acquire_resource, (&raw const request) as u64))
}

/// Maps `target`'s frames `first_gfn..first_gfn + pages` at this domain's frames from
/// `local_gfn` on (`XENMEM_add_to_physmap_batch`, `XENMAPSPACE_gmfn_foreign`), at most 64 at
/// a time. On a failure, the pages mapped so far stay mapped: the caller unmaps them all
/// ([`unmap`] of a frame not mapped fails harmlessly).
pub fn map_foreign(
    target: domid_t,
    first_gfn: u64,
    local_gfn: u64,
    pages: u64,
) -> Result<(), XenError> {
    const BATCH: usize = 64;
    let mut done = 0;
    while done < pages {
        let count = (pages - done).min(BATCH as u64) as usize;
        let mut idxs = [0u64; BATCH];
        let mut gpfns = [0u64; BATCH];
        for index in 0..count {
            idxs[index] = first_gfn + done + index as u64;
            gpfns[index] = local_gfn + done + index as u64;
        }
        let mut errors = [0i32; BATCH];
        let batch = xen_add_to_physmap_batch {
            domid: DOMID_SELF,
            space: XENMAPSPACE_gmfn_foreign as u16,
            size: count as u16,
            u: target,
            idxs: GuestHandle::new(idxs.as_ptr() as u64),
            gpfns: GuestHandle::new(gpfns.as_ptr() as u64),
            errs: GuestHandle::new(errors.as_mut_ptr() as u64),
        };
        result(hypercall::memory_op(XENMEM_add_to_physmap_batch, (&raw const batch) as u64))?;
        if let Some(&error) = errors[..count].iter().find(|&&error| error != 0) {
            return Err(XenError::from_return(error.into()).unwrap_or(XenError::EINVAL));
        }
        done += count as u64;
    }
    Ok(())
}

/// Removes whatever is mapped at this domain's frame `gfn` (`XENMEM_remove_from_physmap`).
pub fn unmap(gfn: u64) -> Result<(), XenError> {
    let request = xen_remove_from_physmap { domid: DOMID_SELF, _pad: [0; 6], gpfn: gfn };
    result(hypercall::memory_op(XENMEM_remove_from_physmap, (&raw const request) as u64))
}
