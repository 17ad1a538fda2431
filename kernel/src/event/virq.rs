//! Virtual interrupts: the glue between the vGIC model (`xenolith_kernel::event::vgic`), the domain table
//! and the hardware's virtual CPU interface. Guest accesses to the distributor and
//! redistributors arrive here as stage-2 data aborts, guest SGIs as trapped ICC_SGI1R_EL1
//! writes, the virtual timer as its physical PPI; everything leaves through the list registers
//! just before a vCPU runs.
//!
//! # Invariants
//! - Called with interrupts masked, holding the whole domain table or the records of the domain
//!   it acts on (`domain::Held`).
//! - A vCPU that blocked waiting for an interrupt is woken by any interrupt made pending for it.

use core::sync::atomic::{AtomicU16, Ordering};
use xenolith_abi::xen::arch_arm::{
    GUEST_GICV3_GICD_BASE, GUEST_GICV3_GICD_SIZE, GUEST_GICV3_GICR0_BASE, GUEST_GICV3_RDIST_STRIDE,
    GUEST_TIMER_VIRT_PPI,
};

use xenolith_kernel::event::vgic::VGIC_SPIS;
use xenolith_kernel::policy::DomainId;

use crate::arch::guest;
use crate::domain::{Held, Table, Vcpu, VcpuState};

/// Where `ipa` falls in `domain`'s vGIC, and the offset there: `None` for the distributor,
/// `Some(index)` for the redistributor of its vCPU `index`.
fn locate(table: &Table, domain: DomainId, ipa: u64) -> Option<(Option<usize>, u64)> {
    let vcpus = table.domain(domain)?.vcpus.len();
    if (GUEST_GICV3_GICD_BASE..GUEST_GICV3_GICD_BASE + GUEST_GICV3_GICD_SIZE).contains(&ipa) {
        return Some((None, ipa - GUEST_GICV3_GICD_BASE));
    }
    let relative = ipa.checked_sub(GUEST_GICV3_GICR0_BASE)?;
    let index = usize::try_from(relative / GUEST_GICV3_RDIST_STRIDE).ok()?;
    (index < vcpus).then_some((Some(index), relative % GUEST_GICV3_RDIST_STRIDE))
}

/// Whether [`mmio`] emulates `ipa` for `domain`: the distributor, or the redistributor of one of
/// its vCPUs. Checked without touching any state.
pub fn is_vgic_address(table: &Table, domain: DomainId, ipa: u64) -> bool {
    locate(table, domain, ipa).is_some()
}

/// Emulates a guest access to its vGIC at `ipa`. `None`: not a vGIC address. For a read, the
/// value read; for a write, `Some(0)`.
pub fn mmio(table: &mut Table, domain: DomainId, ipa: u64, write: Option<u64>) -> Option<u64> {
    let (index, offset) = locate(table, domain, ipa)?;
    let Some(index) = index else {
        let distributor = &mut table.domain_mut(domain)?.vgic;
        return Some(match write {
            Some(value) => {
                distributor.write(offset, value);
                0
            }
            None => distributor.read(offset),
        });
    };
    let vcpus = &table.domain(domain)?.vcpus;
    let (slot, last) = (*vcpus.get(index)?, index + 1 == vcpus.len());
    let vcpu = table.vcpu_mut(slot)?;
    let mpidr = vcpu.context.el1.vmpidr & 0xff_00ff_ffff;
    Some(match write {
        Some(value) => {
            vcpu.vgic.write(offset, value);
            0
        }
        None => vcpu.vgic.read(offset, mpidr, index as u32, last),
    })
}

/// Makes private interrupt `intid` of `vcpu` (in `slot`) pending, waking it if it waits.
pub fn raise(vcpu: &mut Vcpu, slot: usize, intid: u32) {
    vcpu.vgic.set_pending(intid);
    wake(vcpu, slot);
}

/// Wakes `vcpu` (in `slot`) for an interrupt made pending for it: runnable if it waits, else
/// its pCPU kicked if it runs on another.
fn wake(vcpu: &mut Vcpu, slot: usize) {
    if vcpu.state == VcpuState::Blocked {
        vcpu.state = VcpuState::Runnable;
        crate::sched::wake(slot);
    } else if crate::sched::running_elsewhere(slot) {
        crate::sched::kick_vcpu(slot);
    }
}

/// The owner of each passed-through SPI (index INTID - 32): 0 for none, else its domain id + 1.
/// Read without a lock when the interrupt is taken; written by [`claim`] and [`release`].
static OWNERS: [AtomicU16; VGIC_SPIS] = [const { AtomicU16::new(0) }; VGIC_SPIS];

/// The domain SPI `intid` is passed through to, if any.
pub fn owner(intid: u32) -> Option<DomainId> {
    let index = usize::try_from(intid.checked_sub(32)?).ok()?;
    OWNERS.get(index)?.load(Ordering::Acquire).checked_sub(1)
}

/// Passes SPI `intid` (validated by the manifest: in `PASSTHROUGH_INTIDS`, no other domain's,
/// not the core's) through to `id` and enables it. The guest deactivates it (Xen's way: a list
/// register with the hardware bit, `guest::inject`), so a level-triggered line is not taken again
/// before the guest has served it.
pub fn claim(intid: u32, id: DomainId) {
    if let Some(owner) = intid.checked_sub(32).and_then(|index| OWNERS.get(index as usize)) {
        owner.store(id + 1, Ordering::Release);
        crate::arch::boot::passthrough_line(intid, true);
    }
}

/// Takes `id`'s passed-through SPIs back when it is destroyed (a restart claims them again):
/// disabled and deactivated, since a guest that died inside its handler leaves its line active.
pub fn release(id: DomainId) {
    for (index, owner) in OWNERS.iter().enumerate() {
        if owner.compare_exchange(id + 1, 0, Ordering::AcqRel, Ordering::Acquire).is_ok() {
            crate::arch::boot::passthrough_line(32 + index as u32, false);
        }
    }
}

/// Passed-through SPIs arrived (bit n: INTID 32 + n; the arch layer dropped their priority and
/// left them active): each becomes pending in its owner's distributor, and the vCPU it is
/// routed to is woken. A line whose owner is gone is deactivated.
pub fn forward(table: &mut Table, mut spis: u64) {
    while spis != 0 {
        let intid = 32 + spis.trailing_zeros();
        spis &= spis - 1;
        match owner(intid).filter(|&id| table.domain(id).is_some()) {
            Some(id) => forward_to(table, id, intid),
            None => crate::arch::boot::passthrough_line(intid, false),
        }
    }
}

/// Makes SPI `intid` pending in domain `id`'s distributor and wakes the vCPU it is routed to
/// (a passed-through line, or a device model's `XEN_DMOP_set_irq_level`).
pub fn forward_to(table: &mut Table, id: DomainId, intid: u32) {
    let Some(mut held) = table.held(id) else { return };
    let Some(index) = held.domain.vgic.set_pending(intid) else { return };
    let Some(&slot) = held.domain.vcpus.get(index as usize) else { return };
    if let Some((_, vcpu)) = held.vcpu(slot) {
        wake(vcpu, slot);
    }
}

/// A guest's ICC_SGI1R_EL1 write from vCPU `sender` of `domain`.
pub fn send_sgi(table: &mut Table, domain: DomainId, sender: usize, value: u64) {
    let (intid, targets, all_but_self) = xenolith_kernel::event::vgic::decode_sgi1r(value);
    let Some(mut held) = table.held(domain) else { return };
    for index in 0..held.domain.vcpus.len() {
        let slot = held.domain.vcpus[index];
        let chosen =
            if all_but_self { slot != sender } else { index < 64 && targets & (1 << index) != 0 };
        if let Some((_, vcpu)) = held.vcpu(slot).filter(|_| chosen) {
            raise(vcpu, slot, intid);
        }
    }
}

/// The virtual timer of the vCPU running here fired (the arch layer masked it when it took the
/// interrupt): deliver its PPI.
pub fn virtual_timer_fired(table: &mut Table, slot: usize) {
    if let Some(vcpu) = table.vcpu_mut(slot) {
        raise(vcpu, slot, GUEST_TIMER_VIRT_PPI);
    }
}

/// Virtual timers of vCPUs not running anywhere that have expired: deliver them (waking their
/// vCPUs). `counter` is the current counter value.
pub fn expire_virtual_timers(table: &mut Table, counter: u64) {
    for (slot, vcpu) in table.vcpus_mut() {
        if armed_deadline(slot, vcpu).is_some_and(|deadline| deadline <= counter) {
            vcpu.context.el1.cntv_ctl |= 0b10;
            raise(vcpu, slot, GUEST_TIMER_VIRT_PPI);
        }
    }
}

/// The earliest deadline (a counter value) of an armed virtual timer of a vCPU no pCPU runs,
/// which [`expire_virtual_timers`] delivers: the time some pCPU's tick must come by.
pub fn next_virtual_timer(table: &mut Table) -> Option<u64> {
    table.vcpus_mut().filter_map(|(slot, vcpu)| armed_deadline(slot, vcpu)).min()
}

/// The deadline of `vcpu`'s virtual timer if it is enabled and unmasked (CNTV_CTL ENABLE set,
/// IMASK clear) and no pCPU runs the vCPU (one that does takes the timer's own interrupt).
fn armed_deadline(slot: usize, vcpu: &Vcpu) -> Option<u64> {
    let el1 = &vcpu.context.el1;
    (el1.cntv_ctl & 0b11 == 0b01 && !crate::sched::is_current(slot)).then_some(el1.cntv_cval)
}

/// Whether vCPU `slot` (running here) has an interrupt to take: a reason not to block in WFI.
pub fn has_pending(table: &Table, slot: usize) -> bool {
    let Some(vcpu) = table.vcpu(slot) else { return false };
    let Some(domain) = table.domain(vcpu.domain) else { return false };
    vcpu.vgic.has_deliverable(&domain.vgic)
        || guest::empty_list_registers() != (1 << guest::LIST_REGISTERS) - 1
}

/// Fills the free list registers of the vCPU about to run here with its pending interrupts.
/// Runs on every return to a guest, so the common case (nothing pending) touches no register.
#[inline(always)]
pub fn deliver(held: &mut Held<'_>, slot: usize) {
    let Some((domain, vcpu)) = held.vcpu(slot) else { return };
    let distributor = &mut domain.vgic;
    if !distributor.has_pending() && !vcpu.vgic.has_deliverable(distributor) {
        return;
    }
    distributor.collect_spis(vcpu.index, &mut vcpu.vgic);
    let mut empty = guest::empty_list_registers();
    while empty != 0 {
        let Some((intid, priority)) = vcpu.vgic.next_deliverable(distributor) else { break };
        if guest::merge_into_list_register(intid) {
            continue;
        }
        let register = empty.trailing_zeros() as usize;
        // The guest's EOI deactivates a passed-through SPI of its own (hardware bit).
        let hardware = intid >= 32 && owner(intid) == Some(domain.id);
        guest::inject(register, intid, priority, hardware);
        empty &= !(1 << register);
    }
}

/// [`deliver`], for a holder of the whole table.
pub fn deliver_to(table: &mut Table, slot: usize) {
    let Some(mut held) = table.vcpu(slot).map(|vcpu| vcpu.domain).and_then(|id| table.held(id))
    else {
        return;
    };
    deliver(&mut held, slot);
}
