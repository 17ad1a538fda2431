//! IOREQ servers (`xen/common/ioreq.c`, `xen/arch/arm/ioreq.c`) and the `dm_op` hypercall that
//! manages them (`xen/common/dm.c`, `xen/arch/arm/dm.c`; ABI in `xenolith_abi::xen::dm_op`): a
//! device model holding `dm:<target>` creates a server for its target, maps its ioreq page
//! (`XENMEM_acquire_resource`, `memory_op.rs`), claims MMIO ranges and raises the target's
//! SPIs. A target vCPU's stage-2 data abort inside an enabled server's range becomes an ioreq in
//! its slot of the page ([`forward`]); the vCPU waits (`VcpuState::WaitingIo`) until the
//! emulator answers `STATE_IORESP_READY` and notifies the slot's port ([`notified`]), and the
//! access completes when the vCPU next runs ([`complete`]).
//!
//! # Differences from Xen 4.17 on Arm
//! - The ioreq page is allocated when the server is created (Xen: on first `get_info` with gfns
//!   or first acquire), and at most [`MAX_RANGES`] MMIO ranges per server (Xen: 256 per
//!   rangeset); port and PCI ranges are accepted and never matched (Arm forwards only MMIO).
//! - A guest's `EVTCHNOP_close` of one of its ioreq ports is `-EINVAL`, as Xen's for a port
//!   whose consumer is Xen; the ports stay out of its `shared_info` bitmaps.
//! - A vCPU still waiting when its server is destroyed completes as a read of all ones (a
//!   write is dropped), as an access nobody emulates reads on a server.
//!
//! # Invariants
//! - Only the server's emulator (the domain that created it) operates on it (`-EPERM`), and only
//!   while holding `dm:<target>` (checked on every call). A restarted emulator keeps its id and
//!   so its servers.
//! - The page is freed only after every mapping of it is gone: the emulator's is a foreign
//!   mapping with the target as its source, undone when the target is destroyed or the server
//!   is ([`destroy`]).

use alloc::vec::Vec;
use core::sync::atomic::{fence, Ordering};

use zerocopy::IntoBytes;

use xenolith_abi::xen::dm_op::{self as dm, *};
use xenolith_abi::xen::errno::XenError;
use xenolith_abi::xen::ioreq::{
    ioreq, IOREQ_READ, IOREQ_TYPE_COPY, IOREQ_WRITE, STATE_IOREQ_NONE, STATE_IOREQ_READY,
    STATE_IORESP_READY,
};
use xenolith_kernel::event::evtchn::Port;
use xenolith_kernel::event::vgic::VGIC_SPIS;
use xenolith_kernel::policy::{DomainId, Operation};

use crate::arch::entry::TrapFrame;
use crate::arch::guest::transfer;
use crate::domain::{Caller, Domain, Held, Table, VcpuState};
use crate::mm::guest_access::{read_struct, GuestMemory};
use crate::mm::memory;

/// Xen 4.17's `MAX_NR_IOREQ_SERVERS` (`xen/include/xen/sched.h`): a ninth is `-ENOSPC`.
pub const MAX_SERVERS: usize = 8;
/// MMIO ranges one server may claim (more is `-ENOMEM`, as a full Xen rangeset).
pub const MAX_RANGES: usize = 16;

/// One IOREQ server of a domain (`struct ioreq_server`, synchronous requests only).
#[derive(Debug)]
pub struct Server {
    /// The domain that created it.
    pub emulator: DomainId,
    /// Requests go to it only when enabled.
    pub enabled: bool,
    /// Its ioreq page (`shared_iopage`): one 32-byte record per vCPU.
    pub page: u64,
    /// Per vCPU index: the target's port the emulator binds (`vp_eport`).
    pub ports: Vec<Port>,
    /// Inclusive `(start, end)` MMIO ranges.
    pub ranges: Vec<(u64, u64)>,
}

/// A target vCPU's access waiting for its emulator (`struct ioreq_vcpu`'s `pending`).
#[derive(Clone, Copy, Debug)]
pub struct Waiting {
    /// The server's id.
    pub server: u16,
    /// The data abort's syndrome (transfer register, size, sign and width).
    pub esr: u64,
}

/// `do_dm_op` and Arm's `dm_op`, in Xen's order of checks (see `xenolith_abi::xen::dm_op`).
pub fn dm_op(args: [u64; 5], caller: &mut Caller<'_>) -> Result<i64, XenError> {
    let (domid, count, bufs) = (args[0] as u16, args[1] as u32, args[2]);
    if count == 0 {
        return Err(XenError::ENODATA);
    }
    if count > dm::DM_OP_BUFFERS_MAX {
        return Err(XenError::E2BIG);
    }
    let mut buffers = [0u64; 4];
    GuestMemory.read(bufs, &mut buffers.as_mut_bytes()[..16 * count as usize])?;
    let (address, size) = (buffers[0], buffers[1]);
    let target = caller.table.domain(domid).ok_or(XenError::ESRCH)?.id;
    if target == caller.domain {
        return Err(XenError::EPERM);
    }
    caller.allow(Operation::DeviceModel { target })?;
    if size < 8 {
        return Err(XenError::EFAULT);
    }
    let [op, pad]: [u32; 2] = read_struct(address)?;
    let payload_size = dm::payload_size(op).ok_or(XenError::EOPNOTSUPP)?;
    if size < 8 + payload_size as u64 {
        return Err(XenError::EFAULT);
    }
    let mut payload = DmOpPayload::new(&0u64);
    GuestMemory.read(address + 8, &mut payload.as_mut_bytes()[..payload_size])?;
    if pad != 0 {
        return Err(XenError::EINVAL);
    }
    let emulator = caller.domain;
    let domain = caller.table.domain_mut(target).ok_or(XenError::ESRCH)?;
    let out = operate(domain, emulator, op, &mut payload)?;
    if out {
        GuestMemory.write(address + 8, &payload.as_bytes()[..payload_size])?;
    }
    match op {
        dm::XEN_DMOP_set_irq_level => {
            let data: xen_dm_op_set_irq_level = payload.read();
            // Level 0 does nothing: Xen 4.17's default vGIC ignores a falling edge
            // (`vgic_inject_irq`, `xen/arch/arm/vgic.c`), so an emulator raises each event.
            if data.level == 1 {
                crate::event::virq::forward_to(caller.table, target, data.irq);
            }
        }
        dm::XEN_DMOP_destroy_ioreq_server => {
            destroy(caller.table, target, payload.read::<xen_dm_op_destroy_ioreq_server>().id);
        }
        dm::XEN_DMOP_set_ioreq_server_state if payload.read::<[u8; 4]>()[2] != 0 => {
            let domain = caller.table.domain_mut(target).ok_or(XenError::ESRCH)?;
            if core::mem::take(&mut domain.waits_for_model) {
                crate::lifecycle::set_paused(caller.table, target, false);
            }
        }
        _ => {}
    }
    Ok(0)
}

/// Runs operation `op` on `domain` for `emulator`: whether the payload goes back.
fn operate(
    domain: &mut Domain,
    emulator: DomainId,
    op: u32,
    payload: &mut DmOpPayload,
) -> Result<bool, XenError> {
    match op {
        dm::XEN_DMOP_create_ioreq_server => {
            let mut data: xen_dm_op_create_ioreq_server = payload.read();
            if data.pad != [0; 3] || data.handle_bufioreq != dm::HVM_IOREQSRV_BUFIOREQ_OFF {
                return Err(XenError::EINVAL);
            }
            data.id = create(domain, emulator)?;
            payload.write(&data);
            Ok(true)
        }
        dm::XEN_DMOP_get_ioreq_server_info => {
            let data: xen_dm_op_get_ioreq_server_info = payload.read();
            if data.flags & !dm::XEN_DMOP_no_gfns != 0 {
                return Err(XenError::EINVAL);
            }
            server(domain, data.id, emulator)?;
            // Arm has no legacy gfns (`arch_ioreq_server_map_pages`); no buffered port.
            if data.flags & dm::XEN_DMOP_no_gfns == 0 {
                return Err(XenError::EOPNOTSUPP);
            }
            Ok(true)
        }
        dm::XEN_DMOP_map_io_range_to_ioreq_server
        | dm::XEN_DMOP_unmap_io_range_from_ioreq_server => {
            let data: xen_dm_op_ioreq_server_range = payload.read();
            if data.pad != 0 || data.start > data.end {
                return Err(XenError::EINVAL);
            }
            let server = server(domain, data.id, emulator)?;
            if data.r#type > dm::XEN_DMOP_IO_RANGE_PCI {
                return Err(XenError::EINVAL);
            }
            let ranges = &mut server.ranges;
            let range = (data.start, data.end, data.r#type);
            let found = ranges.iter().position(|&(start, end)| (start, end) == (range.0, range.1));
            if op == dm::XEN_DMOP_unmap_io_range_from_ioreq_server {
                // Xen removes any part of a range that holds all of it; Xenolith whole ranges.
                ranges.swap_remove(found.filter(|_| range.2 == 1).ok_or(XenError::ENOENT)?);
            } else if range.2 != dm::XEN_DMOP_IO_RANGE_MEMORY {
                // Port and PCI ranges: recorded by Xen, never matched on Arm; not kept here.
            } else if ranges.iter().any(|&(start, end)| start <= range.1 && range.0 <= end) {
                return Err(XenError::EEXIST);
            } else if ranges.len() == MAX_RANGES {
                return Err(XenError::ENOMEM);
            } else {
                ranges.push((range.0, range.1));
            }
            Ok(false)
        }
        dm::XEN_DMOP_set_ioreq_server_state => {
            let data: xen_dm_op_set_ioreq_server_state = payload.read();
            if data.pad != 0 {
                return Err(XenError::EINVAL);
            }
            server(domain, data.id, emulator)?.enabled = data.enabled != 0;
            Ok(false)
        }
        dm::XEN_DMOP_destroy_ioreq_server => {
            let data: xen_dm_op_destroy_ioreq_server = payload.read();
            if data.pad != 0 {
                return Err(XenError::EINVAL);
            }
            server(domain, data.id, emulator)?;
            Ok(false)
        }
        dm::XEN_DMOP_set_irq_level => {
            let data: xen_dm_op_set_irq_level = payload.read();
            let spis = 32..32 + VGIC_SPIS as u32;
            let owned = crate::event::virq::owner(data.irq).is_some();
            if !spis.contains(&data.irq) || data.level > 1 || data.pad != [0; 3] || owned {
                return Err(XenError::EINVAL);
            }
            Ok(false)
        }
        dm::XEN_DMOP_nr_vcpus => {
            payload.write(&xen_dm_op_nr_vcpus { vcpus: domain.vcpus.len() as u32 });
            Ok(true)
        }
        _ => Err(XenError::EOPNOTSUPP),
    }
}

/// `ioreq_server_create`: the lowest free id; its page and one port per vCPU
/// (`ioreq_server_add_vcpu`: unbound, offered to the emulator, named in the vCPU's record).
fn create(domain: &mut Domain, emulator: DomainId) -> Result<u16, XenError> {
    let id = (0..MAX_SERVERS).find(|&id| domain.ioreq.get(id).is_none_or(Option::is_none));
    let id = id.ok_or(XenError::ENOSPC)?;
    let page = memory::alloc_zeroed_frame().ok_or(XenError::ENOMEM)?;
    let mut ports = Vec::new();
    for index in 0..domain.vcpus.len() {
        match domain.events.alloc_unbound(emulator) {
            Ok(port) => ports.push(port),
            Err(error) => {
                for port in ports {
                    let _ = domain.events.close(port);
                }
                memory::free_frame(page);
                return Err(error);
            }
        }
        let record = ioreq { vp_eport: ports[index], ..Default::default() };
        memory::write_phys(page + 32 * index as u64, &record);
    }
    let server = Server { emulator, enabled: false, page, ports, ranges: Vec::new() };
    if domain.ioreq.len() <= id {
        domain.ioreq.resize_with(id + 1, || None);
    }
    domain.ioreq[id] = Some(server);
    Ok(id as u16)
}

/// Server `id` of `domain`, if `emulator` made it (`-ENOENT`, `-EPERM`).
fn server(domain: &mut Domain, id: u16, emulator: DomainId) -> Result<&mut Server, XenError> {
    let server = domain.ioreq.get_mut(usize::from(id)).and_then(Option::as_mut);
    let server = server.ok_or(XenError::ENOENT)?;
    if server.emulator != emulator {
        return Err(XenError::EPERM);
    }
    Ok(server)
}

/// `XENMEM_acquire_resource`'s frame `frame` of server `id` of `target` for `emulator`
/// (`ioreq_server_get_frame`): the ioreq page's address.
pub fn frame(
    table: &mut Table,
    target: DomainId,
    id: u32,
    frame: u64,
    emulator: DomainId,
) -> Result<u64, XenError> {
    let domain = table.domain_mut(target).ok_or(XenError::ESRCH)?;
    let id = u16::try_from(id).map_err(|_| XenError::EINVAL)?;
    let server = server(domain, id, emulator)?;
    match frame {
        0 => Err(XenError::ENOENT),
        1 => Ok(server.page),
        _ => Err(XenError::EINVAL),
    }
}

/// `XEN_DMOP_destroy_ioreq_server` (checked by [`operate`]): the emulator's mappings of its page
/// go, its ports close, its waiting vCPUs complete, and the page is freed.
pub fn destroy(table: &mut Table, target: DomainId, id: u16) {
    let Some(domain) = table.domain_mut(target) else { return };
    let Some(server) = domain.ioreq.get_mut(usize::from(id)).and_then(Option::take) else {
        return;
    };
    for &port in &server.ports {
        let _ = crate::event::close(table, target, port);
    }
    release_waiting(table, target, id, &server);
    table.unmap_frame(server.emulator, target, server.page);
    memory::free_frame(server.page);
}

/// Frees the pages of a destroyed domain's servers (its foreign mappings are gone already).
pub fn release(domain: &mut Domain) {
    for server in domain.ioreq.drain(..).flatten() {
        memory::free_frame(server.page);
    }
}

/// Wakes every vCPU of `target` waiting on destroyed server `id`: [`complete`] finds no server
/// and reads all ones.
fn release_waiting(table: &mut Table, target: DomainId, id: u16, server: &Server) {
    let Some(mut held) = table.held(target) else { return };
    for index in 0..server.ports.len() {
        let Some(slot) = held.slot(index as u32) else { continue };
        let Some((_, vcpu)) = held.vcpu(slot) else { continue };
        if vcpu.io.is_some_and(|waiting| waiting.server == id) {
            wake_to_complete(vcpu, slot);
        }
    }
}

/// The enabled server of `domain` whose MMIO range holds `[ipa, ipa + bytes)`, if any
/// (`ioreq_server_select`).
fn select(domain: &Domain, ipa: u64, bytes: u64) -> Option<(u16, &Server)> {
    let last = ipa.checked_add(bytes - 1)?;
    domain.ioreq.iter().enumerate().find_map(|(id, server)| {
        let server = server.as_ref().filter(|server| server.enabled)?;
        let hit = server.ranges.iter().any(|&(start, end)| start <= ipa && last <= end);
        hit.then_some((id as u16, server))
    })
}

/// Whether a data abort of `domain` at `ipa` with syndrome `esr` goes to one of its servers.
pub fn claimed(table: &Table, domain: DomainId, ipa: u64, esr: u64) -> bool {
    let domain = table.domain(domain);
    domain.is_some_and(|domain| {
        !domain.ioreq.is_empty() && select(domain, ipa, transfer(esr).1).is_some()
    })
}

/// `try_fwd_ioserv` and `ioreq_send`: the access the vCPU in `slot` of `domain` made (a data
/// abort at `ipa` that [`claimed`] accepts) becomes a `STATE_IOREQ_READY` record in its slot,
/// its port is notified, and the vCPU waits. Whether it waits (else it runs on: its domain
/// has no such vCPU).
pub fn forward(
    table: &mut Table,
    domain: DomainId,
    slot: usize,
    frame: &TrapFrame,
    ipa: u64,
    write: bool,
) -> bool {
    let esr = frame.esr;
    let (register, bytes) = transfer(esr);
    let Some(mut held) = table.held(domain) else { return false };
    let Some((domain_record, vcpu)) = held.vcpu(slot) else { return false };
    let index = vcpu.index as usize;
    let Some((id, server)) = select(domain_record, ipa, bytes) else { return false };
    let Some(&port) = server.ports.get(index) else { return false };
    let mask = u64::MAX >> (64 - 8 * bytes);
    let data = if write { frame.x.get(register).copied().unwrap_or(0) & mask } else { 0 };
    let dir = if write { IOREQ_WRITE } else { IOREQ_READ };
    let record = ioreq {
        addr: ipa,
        data,
        count: 1,
        size: bytes as u32,
        vp_eport: port,
        bitfield: ioreq::bitfield_of(STATE_IOREQ_NONE, false, dir, false),
        r#type: IOREQ_TYPE_COPY,
        ..Default::default()
    };
    let at = server.page + 32 * index as u64;
    memory::write_phys(at, &record);
    fence(Ordering::Release);
    memory::write_phys(at + 30, &ioreq::bitfield_of(STATE_IOREQ_READY, false, dir, false));
    vcpu.io = Some(Waiting { server: id, esr });
    vcpu.state = VcpuState::WaitingIo;
    crate::sched::sleep(slot);
    if let Ok(xenolith_kernel::event::evtchn::SendTarget::Remote { domain, port }) =
        held.domain.events.send(port)
    {
        crate::event::mark_pending_in(table, domain, port);
    }
    true
}

/// Whether `port` of the held domain is one of its ioreq ports (then its emulator answered:
/// the vCPU waits no more if its record says `STATE_IORESP_READY`). Such a port is never
/// marked pending for the guest.
pub fn notified(held: &mut Held<'_>, port: Port) -> bool {
    let mut servers = held.domain.ioreq.iter().flatten();
    let Some((index, at)) = servers.find_map(|server| {
        let index = server.ports.iter().position(|&p| p == port)?;
        Some((index, server.page + 32 * index as u64))
    }) else {
        return false;
    };
    if memory::read_phys::<ioreq>(at).state() == STATE_IORESP_READY {
        if let Some(slot) = held.slot(index as u32) {
            if let Some((_, vcpu)) = held.vcpu(slot) {
                wake_to_complete(vcpu, slot);
            }
        }
    }
    true
}

/// Makes a vCPU waiting for its emulator runnable; [`complete`] finishes the access.
fn wake_to_complete(vcpu: &mut crate::domain::Vcpu, slot: usize) {
    if vcpu.state == VcpuState::WaitingIo {
        vcpu.state = VcpuState::Runnable;
        crate::sched::wake(slot);
    }
}

/// `ioreq_handle_completion` and Arm's `handle_ioserv`, when the vCPU in `slot` (whose
/// registers are in `frame`) is about to run: a read's data goes to its transfer register
/// (sign-extended with ISS.SSE, cut to 32 bits without ISS.SF), the record returns to
/// `STATE_IOREQ_NONE` and the vCPU goes past the access.
pub fn complete(table: &mut Table, slot: usize, frame: &mut TrapFrame) {
    let Some(vcpu) = table.vcpu_mut(slot) else { return };
    let Some(waiting) = vcpu.io.take() else { return };
    let (domain, index) = (vcpu.domain, vcpu.index as u64);
    let server =
        table.domain(domain).and_then(|d| d.ioreq.get(usize::from(waiting.server))?.as_ref());
    let record: ioreq = match server {
        Some(server) => {
            let record = memory::read_phys(server.page + 32 * index);
            memory::write_phys(server.page + 32 * index + 30, &0u8);
            record
        }
        None => ioreq { data: u64::MAX, ..Default::default() },
    };
    let esr = waiting.esr;
    let (register, bytes) = transfer(esr);
    if esr & (1 << 6) == 0 {
        let bits = 8 * bytes as u32;
        let mut value = record.data & (u64::MAX >> (64 - bits));
        if esr & (1 << 21) != 0 && bits < 64 && value >> (bits - 1) & 1 == 1 {
            value |= u64::MAX << bits;
        }
        if esr & (1 << 15) == 0 {
            value &= 0xffff_ffff;
        }
        if let Some(register) = frame.x.get_mut(register) {
            *register = value;
        }
    }
    crate::arch::guest::skip_instruction(frame);
}
