//! Event channels in the core: `__HYPERVISOR_event_channel_op` with the 2-level ABI, delivery
//! into the guest's `shared_info` and `vcpu_info`, the upcall through the vGIC, VIRQs and
//! `SCHEDOP_poll` (`xen/common/event_channel.c`, `xen/common/event_2l.c`,
//! `xen/arch/arm/domain.c` `vcpu_mark_events_pending`, `xen/common/sched/core.c` `do_poll`).
//!
//! The table logic (ports, bindings, Xen's error values) is `xenolith_kernel::event::evtchn`; this
//! module looks the domains up, checks who may act on whom, and delivers.
//!
//! Delivery, as Xen on Arm: marking port `p` pending sets its bit in `shared_info`; unless the
//! port is masked, the notify vCPU's `evtchn_pending_sel` bit `p / 64` is set, and if that was
//! clear, its `evtchn_upcall_pending`; if that was clear too, the upcall PPI
//! ([`GUEST_EVTCHN_PPI`], named in the domain's DTB `hypervisor` node) is made pending for the
//! vCPU. Arm has no `evtchn_upcall_mask`: the guest masks upcalls by masking the PPI or IRQs.
//!
//! # Invariants
//! - Called with interrupts masked, holding the whole domain table, or ([`local_op`]) the
//!   records of the caller's domain and of the peer it sends to.
//! - A domain's event table refers to its shared-info page, which is freed only after the table
//!   is dropped (`Table::destroy`).
//! - A vCPU's `vcpu_info` is in its domain's shared-info page (vCPU 0, until it registers one) or
//!   in a RAM page of its own domain (`VCPUOP_register_vcpu_info`); vCPUs 1.. without one get no
//!   upcalls, as Xen's `dummy_vcpu_info`.

pub mod virq;

use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, AtomicU8, Ordering};

use xenolith_abi::xen::arch_arm::GUEST_EVTCHN_PPI;
use xenolith_abi::xen::errno::XenError;
use xenolith_abi::xen::event_channel::{self as ec, VIRQ_DOM_EXC};
use xenolith_abi::xen::hypercall::DOMID_SELF;
use xenolith_kernel::event::evtchn::{
    Bitmaps, Close, EventTable, Port, SendTarget, BITMAP_WORDS, MAX_PORTS,
};
use xenolith_kernel::mm::guest_atomic;
use xenolith_kernel::policy::{DomainId, Operation};
use zerocopy::{FromBytes, Immutable, IntoBytes};

use crate::domain::Caller;
use crate::domain::{DomainState, Held, Local, Table, Vcpu, VcpuState};
use crate::mm::guest_access::{read_element, read_struct, write_struct};

/// Offsets in `struct shared_info` (Arm; pinned by `xenolith_abi::xen::shared_info`'s tests).
const PENDING_OFFSET: u64 = 48;
const MASK_OFFSET: u64 = PENDING_OFFSET + 8 * BITMAP_WORDS as u64;
/// Offset of `evtchn_pending_sel` in `struct vcpu_info`.
const PENDING_SEL_OFFSET: u64 = 8;
/// Most ports one `SCHEDOP_poll` may name (Xen's "fairly arbitrary limit", sched/core.c:1444).
pub const MAX_POLL_PORTS: u32 = 128;

/// The 2-level bitmaps of the shared-info page at physical address `shared_info`.
fn bitmaps(id: DomainId, shared_info: u64) -> Bitmaps<'static> {
    // SAFETY: `shared_info` is a page-aligned frame the core allocated for one domain and frees
    // only after the domain's event table (which holds these) is dropped; both arrays (at 48 and
    // 560, 512 bytes each) are 8-byte aligned and inside it.
    let pending = unsafe { crate::mm::memory::shared(shared_info + PENDING_OFFSET) };
    // SAFETY: as above.
    let mask = unsafe { crate::mm::memory::shared(shared_info + MASK_OFFSET) };
    Bitmaps::new(id, pending, mask)
}

/// A new domain's event table (`evtchn_init`), over its shared-info page.
pub fn new_table(
    id: DomainId,
    shared_info: u64,
    vcpus: u32,
) -> Result<EventTable<'static>, XenError> {
    EventTable::new(id, bitmaps(id, shared_info), MAX_PORTS as Port - 1, vcpus)
}

/// `vcpu_mark_events_pending` after setting selector bit `word` of the `vcpu_info` at physical
/// address `info`: raises the upcall PPI for `vcpu` (in `slot`) if this made the upcall pending.
fn mark_events_pending(vcpu: &mut Vcpu, slot: usize, info: u64, word: Option<u32>) {
    // SAFETY: `info` is a `vcpu_info` in the domain's shared-info page or its own RAM, which
    // stays allocated while the vCPU exists (module invariants); it is 8-byte aligned (checked
    // at registration) and the selector at offset 8 lies inside its 48 bytes.
    let selector: &AtomicU64 = unsafe { crate::mm::memory::shared(info + PENDING_SEL_OFFSET) };
    // SAFETY: as above; the pending byte is at offset 0.
    let upcall: &AtomicU8 = unsafe { crate::mm::memory::shared(info) };
    // Bounded (`guest_atomic`): a guest that keeps these words changing gets no upcall and is
    // crashed.
    let owner = vcpu.domain;
    match word {
        Some(word) => {
            let bit = 1 << word;
            if guest_atomic::update(owner, selector, |v| v | bit).is_none_or(|v| v & bit != 0) {
                return;
            }
        }
        None => selector.store(u64::MAX, Ordering::Release),
    }
    if guest_atomic::update(owner, upcall, |_| 1) == Some(0) {
        crate::event::virq::raise(vcpu, slot, GUEST_EVTCHN_PPI);
    }
}

/// Whether `vcpu`'s `vcpu_info` has `evtchn_upcall_pending` set.
fn upcall_pending(vcpu: &Vcpu) -> bool {
    let Some(info) = vcpu.vcpu_info else { return false };
    // SAFETY: as in `mark_events_pending`.
    let upcall: &AtomicU8 = unsafe { crate::mm::memory::shared(info) };
    upcall.load(Ordering::Acquire) != 0
}

/// Upcalls vCPU `vcpu` of the held domain for `port` (the rest of `evtchn_2l_set_pending`).
fn upcall(held: &mut Held<'_>, vcpu: u32, port: Port) {
    let Some(slot) = held.slot(vcpu) else { return };
    let Some((_, vcpu)) = held.vcpu(slot) else { return };
    if let Some(info) = vcpu.vcpu_info {
        mark_events_pending(vcpu, slot, info, Some(port / 64));
    }
}

/// Marks `port` of the held domain pending, delivering the upcall and waking pollers.
pub fn mark_pending(held: &mut Held<'_>, port: Port) {
    if !held.domain.ioreq.is_empty() && crate::hypercall::dm_op::notified(held, port) {
        return;
    }
    if let Some(vcpu) = held.domain.events.mark_pending(port) {
        upcall(held, vcpu, port);
    }
    // `evtchn_check_pollers`: wakes every vCPU of the domain polling `port`.
    for index in 0..held.domain.vcpus.len() {
        let slot = held.domain.vcpus[index];
        let Some((_, vcpu)) = held.vcpu(slot) else { continue };
        if vcpu.poll.as_ref().is_some_and(|ports| ports.contains(&port)) && stop_polling(vcpu) {
            crate::sched::wake(slot);
        }
    }
}

/// [`mark_pending`] for domain `id`, if it exists.
pub fn mark_pending_in(table: &mut Table, id: DomainId, port: Port) {
    if let Some(mut held) = table.held(id) {
        mark_pending(&mut held, port);
    }
}

/// Ends `vcpu`'s poll, if any (woken by an event, its deadline, an upcall or an unrelated
/// interrupt): whether it was blocked in it, and is runnable now.
pub fn stop_polling(vcpu: &mut crate::domain::Vcpu) -> bool {
    vcpu.poll = None;
    vcpu.poll_deadline = None;
    let blocked = vcpu.state == VcpuState::Blocked;
    if blocked {
        vcpu.state = VcpuState::Runnable;
    }
    blocked
}

/// `send_guest_vcpu_virq` / `send_guest_global_virq`: VIRQ `virq` for vCPU `vcpu` of `id`.
pub fn send_virq(table: &mut Table, id: DomainId, virq: u32, vcpu: u32) {
    let Some(mut held) = table.held(id) else { return };
    let Some(port) = held.domain.events.virq_port(virq, vcpu) else { return };
    mark_pending(&mut held, port);
}

/// `send_global_virq(VIRQ_DOM_EXC)`: a domain shut down or was destroyed. Xen sends it to the
/// hardware domain (or the handler `XEN_DOMCTL_set_virq_handler` named); here every domain
/// holding the `control`, `xenstore` or `console` capability gets it. It is also sent when a
/// domain is created, which is how the console domain learns of new domains (xenconsoled's
/// `@introduceDomain` watch).
pub fn domain_exception(table: &mut Table) {
    let handlers: Vec<DomainId> = table
        .domains()
        .filter(|domain| {
            let capabilities = &domain.capabilities;
            capabilities.control || capabilities.xenstore || capabilities.console
        })
        .map(|domain| domain.id)
        .collect();
    for id in handlers {
        send_virq(table, id, VIRQ_DOM_EXC, 0);
    }
}

/// Closes every port of domain `id` whose peer is another domain, leaving each peer's end
/// unbound, as `evtchn_destroy` does before the domain goes.
pub fn close_all(table: &mut Table, id: DomainId) {
    loop {
        let Some(domain) = table.domain_mut(id) else { return };
        let Close::NeedsPeer { port, peer } = domain.events.reset() else { return };
        if with_peer(table, id, peer, |local, remote| local.close_with_peer(remote, port)).is_err()
        {
            log::error!("d{id}: port {port} could not be closed against d{peer}");
            return;
        }
    }
}

/// Runs `f` on the event table of domain `a` and that of `b`, or `None` if `b` is `a`.
fn with_peer<R>(
    table: &mut Table,
    a: DomainId,
    b: DomainId,
    f: impl FnOnce(&mut EventTable<'static>, Option<&mut EventTable<'static>>) -> Result<R, XenError>,
) -> Result<R, XenError> {
    if a == b {
        return f(events(table, a)?, None);
    }
    let (first, second) = table.pair_mut(a, b).ok_or(XenError::ESRCH)?;
    f(&mut first.events, Some(&mut second.events))
}

/// The event table of domain `id`; `-ESRCH` if there is none.
fn events(table: &mut Table, id: DomainId) -> Result<&mut EventTable<'static>, XenError> {
    table.domain_mut(id).map(|domain| &mut domain.events).ok_or(XenError::ESRCH)
}

/// Reads the argument `T` at `arg`, lets `f` act on it and, unless `f` failed, writes it back.
fn update<T: FromBytes + IntoBytes + Immutable>(
    arg: u64,
    f: impl FnOnce(&mut T) -> Result<(), XenError>,
) -> Result<(), XenError> {
    let mut op = read_struct(arg)?;
    f(&mut op)?;
    write_struct(arg, &op)
}

/// The domain a `dom` field names: the caller for `DOMID_SELF`, else another domain the caller
/// may act for (Xen's `XSM_TARGET`: `-ESRCH` if it does not exist, `-EPERM` if not allowed).
fn target_domain(caller: &Caller<'_>, dom: u16) -> Result<DomainId, XenError> {
    let id = caller.resolve(dom);
    if id != caller.domain {
        caller.table.domain(id).ok_or(XenError::ESRCH)?;
        caller.allow(Operation::Target { target: id })?;
    }
    Ok(id)
}

/// `__HYPERVISOR_event_channel_op(cmd, arg)`.
#[inline(always)]
pub fn event_channel_op(cmd: u64, arg: u64, caller: &mut Caller<'_>) -> Result<i64, XenError> {
    let me = caller.domain;
    // Xen takes `cmd` as an int.
    match cmd as u32 {
        // Xen leaves the port allocated when the copy back fails; so do we.
        ec::EVTCHNOP_alloc_unbound => update(arg, |op: &mut ec::evtchn_alloc_unbound| {
            let id = target_domain(caller, op.dom)?;
            // DOMID_SELF as the remote is the caller, whichever table the port is in (Xen).
            let remote = if op.remote_dom == DOMID_SELF { me } else { op.remote_dom };
            op.port = events(caller.table, id)?.alloc_unbound(remote)?;
            Ok(())
        }),
        ec::EVTCHNOP_bind_interdomain => update(arg, |op: &mut ec::evtchn_bind_interdomain| {
            let remote = caller.resolve(op.remote_dom);
            let bound = with_peer(caller.table, me, remote, |local, remote| {
                local.bind_interdomain(remote, op.remote_port)
            })?;
            if let (Some(vcpu), Some(mut held)) = (bound.upcall, caller.table.held(me)) {
                upcall(&mut held, vcpu, bound.port);
            }
            op.local_port = bound.port;
            Ok(())
        }),
        ec::EVTCHNOP_bind_virq => update(arg, |op: &mut ec::evtchn_bind_virq| {
            op.port = events(caller.table, me)?.bind_virq(op.virq, op.vcpu)?;
            Ok(())
        }),
        ec::EVTCHNOP_bind_ipi => update(arg, |op: &mut ec::evtchn_bind_ipi| {
            op.port = events(caller.table, me)?.bind_ipi(op.vcpu)?;
            Ok(())
        }),
        ec::EVTCHNOP_close => {
            let op: ec::evtchn_close = read_struct(arg)?;
            // A port of an IOREQ server is Xen's to close (`consumer_is_xen`).
            let domain = caller.table.domain(me).ok_or(XenError::ESRCH)?;
            if domain.ioreq.iter().flatten().any(|server| server.ports.contains(&op.port)) {
                return Err(XenError::EINVAL);
            }
            close(caller.table, me, op.port)
        }
        ec::EVTCHNOP_send => {
            let op: ec::evtchn_send = read_struct(arg)?;
            match events(caller.table, me)?.send(op.port)? {
                SendTarget::Dropped => {}
                SendTarget::Local { port } => mark_pending_in(caller.table, me, port),
                SendTarget::Remote { domain, port } => mark_pending_in(caller.table, domain, port),
            }
            Ok(())
        }
        ec::EVTCHNOP_status => update(arg, |op: &mut ec::evtchn_status| {
            let id = target_domain(caller, op.dom)?;
            events(caller.table, id)?.status(op)
        }),
        ec::EVTCHNOP_bind_vcpu => {
            let op: ec::evtchn_bind_vcpu = read_struct(arg)?;
            events(caller.table, me)?.bind_vcpu(op.port, op.vcpu)
        }
        ec::EVTCHNOP_unmask => {
            let op: ec::evtchn_unmask = read_struct(arg)?;
            if let Some(vcpu) = events(caller.table, me)?.unmask(op.port)? {
                upcall(&mut caller.table.held(me).ok_or(XenError::ESRCH)?, vcpu, op.port);
            }
            Ok(())
        }
        command @ (ec::EVTCHNOP_reset | ec::EVTCHNOP_reset_cont) => {
            let op: ec::evtchn_reset = read_struct(arg)?;
            let id = target_domain(caller, op.dom)?;
            // Xen's `evtchn_reset`: another domain's table only while it is paused.
            let paused = caller.table.domain(id).is_some_and(|d| d.state == DomainState::Paused);
            if id != me && !paused {
                return Err(XenError::EINVAL);
            }
            // A reset here is never left half done, so there is none to resume (Xen: -EBUSY).
            if command == ec::EVTCHNOP_reset_cont {
                return Err(XenError::EBUSY);
            }
            close_all(caller.table, id);
            Ok(())
        }
        ec::EVTCHNOP_bind_pirq => {
            let op: ec::evtchn_bind_pirq = read_struct(arg)?;
            // Arm has no physical IRQs for domains: below Xen's `nr_pirqs` (1024 static and 32
            // extra) `pirq_get_info` finds none (-ENOMEM); at or past it, -EINVAL.
            Err(if op.pirq >= 1056 { XenError::EINVAL } else { XenError::ENOMEM })
        }
        // The FIFO ABI (xen/common/event_fifo.c) is not offered: its argument checks answer as
        // Xen's, a well-formed request is -ENOSYS, and guests keep the 2-level ABI (Linux falls
        // back to it). Without FIFO, expand_array is -EOPNOTSUPP and a valid port's priority
        // -ENOSYS, as on Xen for a 2-level domain.
        ec::EVTCHNOP_init_control => {
            let op: ec::evtchn_init_control = read_struct(arg)?;
            let domain = caller.table.domain(me).ok_or(XenError::ESRCH)?;
            domain.vcpus.get(op.vcpu as usize).ok_or(XenError::ENOENT)?;
            // A control block is 64 bytes, 8-byte aligned, within the page.
            if op.offset > 4096 - 64 || !op.offset.is_multiple_of(8) {
                return Err(XenError::EINVAL);
            }
            Err(XenError::ENOSYS)
        }
        ec::EVTCHNOP_expand_array => {
            let _: ec::evtchn_expand_array = read_struct(arg)?;
            Err(XenError::EOPNOTSUPP)
        }
        ec::EVTCHNOP_set_priority => {
            let op: ec::evtchn_set_priority = read_struct(arg)?;
            events(caller.table, me)?.channel(op.port).ok_or(XenError::EINVAL)?;
            Err(XenError::ENOSYS)
        }
        _ => Err(XenError::ENOSYS),
    }
    .map(|()| 0)
}

/// The event-channel operations a domain does on its own table (and a send to its peer), run by
/// one of the domain table's readers (`domain::Local`); `None`: any other, which the whole
/// table's holder runs ([`event_channel_op`]).
#[inline(always)]
pub fn local_op(cmd: u64, arg: u64, local: &mut Local<'_>) -> Option<Result<i64, XenError>> {
    let result = match cmd as u32 {
        ec::EVTCHNOP_send => send(arg, local)?,
        ec::EVTCHNOP_unmask => read_struct(arg).and_then(|op: ec::evtchn_unmask| {
            let mut held = local.held();
            if let Some(vcpu) = held.domain.events.unmask(op.port)? {
                upcall(&mut held, vcpu, op.port);
            }
            Ok(())
        }),
        _ => return None,
    };
    Some(result.map(|()| 0))
}

/// Whether [`local_op`] runs command `cmd`.
#[inline(always)]
pub fn is_local_op(cmd: u64) -> bool {
    matches!(cmd as u32, ec::EVTCHNOP_send | ec::EVTCHNOP_unmask)
}

/// `EVTCHNOP_send` by a reader: `None` if the port changed while its lock was let go to take
/// the peer's in order (the whole table's holder sends then).
#[inline(always)]
fn send(arg: u64, local: &mut Local<'_>) -> Option<Result<(), XenError>> {
    let port = match read_struct::<ec::evtchn_send>(arg) {
        Ok(op) => op.port,
        Err(error) => return Some(Err(error)),
    };
    let target = local.held().domain.events.send(port);
    match target {
        Err(error) => return Some(Err(error)),
        Ok(SendTarget::Dropped) => {}
        Ok(SendTarget::Local { port }) => mark_pending(&mut local.held(), port),
        Ok(SendTarget::Remote { domain, port: remote }) => {
            if !local.lock_other(domain) && local.held().domain.events.send(port) != target {
                return None;
            }
            if let Some(mut peer) = local.other() {
                mark_pending(&mut peer, remote);
            }
        }
    }
    Some(Ok(()))
}

/// `EVTCHNOP_close` of `port` of domain `id`.
pub fn close(table: &mut Table, id: DomainId, port: Port) -> Result<(), XenError> {
    match events(table, id)?.close(port)? {
        Close::Done => Ok(()),
        Close::NeedsPeer { port, peer } => {
            with_peer(table, id, peer, |local, remote| local.close_with_peer(remote, port))
        }
    }
}

/// Xen on Arm's `local_events_need_delivery_nomask`: vCPU `slot` (the caller) has a deliverable
/// interrupt, or a pending upcall whose interrupt is not already pending in its vGIC (raised
/// while disabled, it waits there until enabled).
pub fn need_delivery(table: &Table, slot: usize) -> bool {
    let upcall_waiting = table
        .vcpu(slot)
        .is_some_and(|vcpu| upcall_pending(vcpu) && !vcpu.vgic.is_pending(GUEST_EVTCHN_PPI));
    virq::has_pending(table, slot) || upcall_waiting
}

/// `SCHEDOP_poll`: blocks vCPU `caller.vcpu_slot` until one of the ports is pending or the
/// absolute `timeout` (core nanoseconds; 0: none) passes. `Ok(true)`: it blocked (the caller
/// reschedules); `Ok(false)`: it returns at once. The hypercall's result is 0 either way.
pub fn poll(arg: u64, caller: &mut Caller<'_>) -> Result<bool, XenError> {
    let request: xenolith_abi::xen::sched::sched_poll = read_struct(arg)?;
    if request.nr_ports > MAX_POLL_PORTS {
        return Err(XenError::EINVAL);
    }
    let ports = (0..request.nr_ports)
        .map(|index| read_element(request.ports.address(), index))
        .collect::<Result<Vec<u32>, XenError>>()?;
    let slot = caller.vcpu_slot;
    // `local_events_need_delivery`: with IRQs unmasked, a deliverable interrupt or a pending
    // upcall ends the poll at once.
    // (The saved context is stale while the caller runs: its IRQ mask comes from the trap.)
    if !caller.irqs_masked && need_delivery(caller.table, slot) {
        return Ok(false);
    }
    let domain = caller.table.domain(caller.domain).ok_or(XenError::ESRCH)?;
    for &port in &ports {
        // Port 0 is reserved: never usable (Xen's `evtchn_port_poll`).
        if port == 0 || domain.events.channel(port).is_none() {
            return Err(XenError::EINVAL);
        }
        if domain.events.pending(port) {
            return Ok(false);
        }
    }
    let vcpu = caller.table.vcpu_mut(slot).ok_or(XenError::ESRCH)?;
    vcpu.poll = Some(ports);
    vcpu.poll_deadline = (request.timeout != 0).then_some(request.timeout);
    vcpu.state = VcpuState::Blocked;
    crate::sched::sleep(slot);
    Ok(true)
}

/// `VCPUOP_register_vcpu_info` (`map_vcpu_info`, common/domain.c:1486) for vCPU `slot`, the
/// caller or a vCPU of its domain that is down: moves the `vcpu_info` to `offset` in the
/// caller's guest frame `gfn`, copying the current one, and marks everything pending so nothing
/// is lost.
pub fn register_vcpu_info(
    table: &mut Table,
    id: DomainId,
    slot: usize,
    this: bool,
    gfn: u64,
    offset: u32,
) -> Result<(), XenError> {
    const SIZE: u64 = core::mem::size_of::<xenolith_abi::xen::shared_info::vcpu_info>() as u64;
    let offset = u64::from(offset);
    if offset > 4096 - SIZE || offset % 8 != 0 {
        return Err(XenError::ENXIO);
    }
    let vcpu = table.vcpu(slot).ok_or(XenError::ENOENT)?;
    if vcpu.vcpu_info_registered || (!this && vcpu.state != VcpuState::Down) {
        return Err(XenError::EINVAL);
    }
    let domain = table.domain(id).ok_or(XenError::ESRCH)?;
    let phys = domain.ram_frame(gfn).ok_or(XenError::EINVAL)?;
    let new = phys + offset;
    match vcpu.vcpu_info {
        Some(old) => crate::mm::memory::copy_phys(old, new, SIZE as usize),
        None => crate::mm::memory::copy_to_phys(new, &[0; SIZE as usize]),
    }
    let vcpu = table.vcpu_mut(slot).ok_or(XenError::ENOENT)?;
    vcpu.vcpu_info = Some(new);
    vcpu.vcpu_info_registered = true;
    mark_events_pending(vcpu, slot, new, None);
    Ok(())
}

/// Reads the `vcpu_register_vcpu_info` argument at `va`: `(gfn, offset)`.
pub fn read_register_vcpu_info(va: u64) -> Result<(u64, u32), XenError> {
    let info: xenolith_abi::xen::vcpu::vcpu_register_vcpu_info = read_struct(va)?;
    Ok((info.mfn, info.offset))
}
