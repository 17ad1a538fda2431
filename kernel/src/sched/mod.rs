//! Running vCPUs on pCPUs: the glue between traps, the scheduler (`xenolith_kernel::sched`, pure
//! logic) and the domain table. Context switches happen here, in the exception frame: the frame of
//! the vCPU that trapped is saved and the next vCPU's frame takes its place before the `eret`.
//!
//! # Invariants
//! - `percpu::PerCpu::current` names the vCPU slot whose live state is on that pCPU, or
//!   [`IDLE`]; it changes only under [`TABLE`], in [`switch`].
//! - A domain that shut down is destroyed by the first reschedule after which no pCPU has one of
//!   its vCPUs current.
//! - Lock order: the domain table, then the scheduler.

use alloc::boxed::Box;
use core::sync::atomic::Ordering;

use crate::arch::lock::Mutex;
use xenolith_kernel::platform::cmdline::Scheduler as SchedulerKind;
use xenolith_kernel::policy::DomainId;
use xenolith_kernel::sched::{
    credit2::Credit2, null::Null, CpuMask, SchedError, Scheduler, VcpuParams,
};

use crate::arch::entry::TrapFrame;
use crate::arch::percpu::{self, CPUS};
use crate::arch::{cpu, guest};
use crate::domain::{DomainState, Table, VcpuState, TABLE};
use xenolith_abi::xen::errno::XenError;
use xenolith_abi::xen::vcpu::{
    vcpu_runstate_info, RUNSTATE_blocked, RUNSTATE_offline, RUNSTATE_runnable, RUNSTATE_running,
    XEN_RUNSTATE_UPDATE,
};

pub use crate::arch::percpu::IDLE;

static SCHEDULER: Mutex<Option<Box<dyn Scheduler + Send>>> = Mutex::new(None);

/// Starts the scheduler `kind` over `cpus` pCPUs.
pub fn init(kind: SchedulerKind, cpus: usize) {
    if kind == SchedulerKind::Rtds {
        log::warn!("sched=rtds is not implemented yet; using credit2");
    }
    let scheduler: Box<dyn Scheduler + Send> = match kind {
        SchedulerKind::Null => Box::new(Null::new(cpus)),
        SchedulerKind::Credit2 | SchedulerKind::Rtds => Box::new(Credit2::new(cpus)),
    };
    log::info!("scheduler: {} over {cpus} pCPUs", scheduler.name());
    *SCHEDULER.lock() = Some(scheduler);
}

/// Nanoseconds since reset, from the generic counter.
pub fn now() -> u64 {
    let frequency = cpu::counter_frequency().max(1);
    let ticks = u128::from(cpu::counter());
    (ticks * 1_000_000_000 / u128::from(frequency)) as u64
}

fn with_scheduler<R>(body: impl FnOnce(&mut dyn Scheduler) -> R) -> R {
    let mut guard = SCHEDULER.lock();
    let scheduler = guard.as_mut().expect("the scheduler starts before any domain");
    body(scheduler.as_mut())
}

/// Whether domains can run yet (the scheduler exists).
pub fn started() -> bool {
    SCHEDULER.lock().is_some()
}

/// Hands a built (paused) domain's vCPUs to the scheduler and lets the runnable ones run.
pub fn start_domain(
    table: &mut Table,
    id: DomainId,
    params: VcpuParams,
) -> Result<(), &'static str> {
    let domain = table.domain_mut(id).ok_or("no such domain")?;
    domain.state = DomainState::Running;
    domain.sched = params;
    let slots = domain.vcpus.clone();
    add_domain(table, id).map_err(|_| "scheduler refused the vCPU parameters")?;
    for slot in slots {
        if table.vcpu(slot).is_some_and(|vcpu| vcpu.state == VcpuState::Runnable) {
            wake(slot);
        }
    }
    Ok(())
}

/// The scheduler parameters a manifest entry or domctl gives (affinity masks with bit n = pCPU n).
pub fn params_for(weight: u16, cap: u16, hard: u64, soft: u64, domain: DomainId) -> VcpuParams {
    VcpuParams {
        weight,
        cap,
        hard_affinity: CpuMask::from_bits(hard),
        soft_affinity: CpuMask::from_bits(soft),
        domain,
    }
}

/// Asks each of `targets` (an `Option` or a [`CpuMask`]'s pCPUs) to reschedule: another pCPU by
/// IPI, this one by a flag checked before it returns to its vCPU.
fn kick(targets: impl IntoIterator<Item = usize>) {
    for target in targets {
        if target == cpu::current_index() {
            percpu::this().need_reschedule.store(true, Ordering::Release);
        } else {
            crate::arch::smp::kick(target);
        }
    }
}

/// The scheduler's Xen id (`XEN_SCHEDULER_*`).
pub fn scheduler_id() -> u32 {
    with_scheduler(|scheduler| scheduler.id())
}

/// Changes `slot`'s weight, cap and affinity.
pub fn set_params(slot: usize, params: VcpuParams) -> Result<(), SchedError> {
    kick(with_scheduler(|scheduler| scheduler.set_params(slot, params, now()))?.iter());
    Ok(())
}

/// Whether one of `id`'s vCPUs is current on some pCPU.
pub fn domain_running(table: &Table, id: DomainId) -> bool {
    table.domain(id).is_some_and(|domain| domain.vcpus.iter().any(|&slot| is_current(slot)))
}

/// Hands a domain created at run time (paused, its vCPUs down) to the scheduler.
pub fn add_domain(table: &Table, id: DomainId) -> Result<(), SchedError> {
    let Some(domain) = table.domain(id) else { return Ok(()) };
    let now = now();
    for &slot in &domain.vcpus {
        with_scheduler(|scheduler| scheduler.add_vcpu(slot, domain.sched, now))?;
    }
    Ok(())
}

/// Whether vCPU `slot` is current on some pCPU.
pub fn is_current(slot: usize) -> bool {
    CPUS.iter().any(|this| this.current.load(Ordering::Acquire) == slot)
}

/// Whether vCPU `slot` is current on a pCPU other than this one.
pub fn running_elsewhere(slot: usize) -> bool {
    let me = cpu::current_index();
    // A vCPU runs on one pCPU at most: the one it is current on here (a send to itself) is not
    // elsewhere.
    if CPUS[me].current.load(Ordering::Acquire) == slot {
        return false;
    }
    CPUS.iter()
        .enumerate()
        .any(|(index, this)| index != me && this.current.load(Ordering::Acquire) == slot)
}

/// Makes the pCPU running `slot` look at it again (to deliver a new virtual interrupt).
pub fn kick_vcpu(slot: usize) {
    kick(CPUS.iter().position(|this| this.current.load(Ordering::Acquire) == slot));
}

/// Makes `slot` runnable, kicking a pCPU if the scheduler wants one to look again.
pub fn wake(slot: usize) {
    kick(with_scheduler(|scheduler| scheduler.wake(slot, now())));
}

/// Takes `slot` off the run queues (it blocked or went down).
pub fn sleep(slot: usize) {
    kick(with_scheduler(|scheduler| scheduler.sleep(slot, now())));
}

/// The running `slot` offers its pCPU to others; the caller reschedules next.
pub fn yield_now(slot: usize) {
    with_scheduler(|scheduler| scheduler.yield_now(slot, now()));
}

/// Takes vCPU `slot` out of the scheduler for good (its domain shut down), kicking the pCPU
/// that must choose again.
pub fn remove_vcpu(slot: usize) {
    kick(with_scheduler(|scheduler| scheduler.remove_vcpu(slot)));
}

/// The context an idle pCPU runs: a WFI loop at EL2 with interrupts on.
fn idle_frame() -> TrapFrame {
    TrapFrame {
        x: [0; 31],
        elr: crate::arch::idle_loop as *const () as u64,
        spsr: guest::SPSR_EL2H,
        esr: 0,
        far: 0,
        sp: 0,
    }
}

/// Lets the scheduler pick what this pCPU runs next and switches `frame` to it: saves the state
/// of the vCPU that ran, loads the next one's (or the idle loop's) and returns the new vCPU's
/// slot. Called with the table locked, by `trap` (which then delivers what is pending to it).
pub fn switch(frame: &mut TrapFrame, table: &mut Table) -> Option<usize> {
    let this = percpu::this();
    this.need_reschedule.store(false, Ordering::Release);
    let cpu = cpu::current_index();
    let now = now();
    // `IDLE` names no slot.
    if let Some(vcpu) = table.vcpu_mut(this.current.load(Ordering::Acquire)) {
        vcpu.runtime_ns += now.saturating_sub(this.switched_at.load(Ordering::Relaxed));
        let state = match vcpu.state {
            VcpuState::Runnable => RUNSTATE_runnable,
            VcpuState::Blocked | VcpuState::WaitingIo => RUNSTATE_blocked,
            VcpuState::Down => RUNSTATE_offline,
        };
        vcpu.enter_runstate(state, now);
        vcpu.context.frame.clone_from(frame);
        guest::save_el1(&mut vcpu.context.el1);
        guest::save_fp(&mut vcpu.context.fp);
        guest::save_gic(&mut vcpu.context.gic);
    }
    this.switched_at.store(now, Ordering::Relaxed);
    let decision = with_scheduler(|scheduler| scheduler.schedule(cpu, now));
    kick(decision.kick.iter().filter(|&target| target != cpu));
    if let Some(run_for) = decision.run_for {
        crate::arch::timer_deadline_in(run_for);
    }
    // Only a runnable vCPU of a running domain; else idle.
    let next = decision.vcpu.and_then(|slot| {
        let vcpu = table.vcpu(slot).filter(|vcpu| vcpu.state == VcpuState::Runnable)?;
        let domain = table.domain(vcpu.domain).filter(|d| d.state == DomainState::Running)?;
        Some((slot, vcpu, domain))
    });
    match next {
        Some((_, vcpu, domain)) => {
            guest::restore_el1(&vcpu.context.el1);
            guest::restore_fp(&vcpu.context.fp);
            guest::restore_gic(&vcpu.context.gic);
            guest::activate_stage2(domain.vmid, domain.stage2.root());
            frame.clone_from(&vcpu.context.frame);
        }
        None => *frame = idle_frame(),
    }
    let slot = next.map(|(slot, ..)| slot);
    this.current.store(slot.unwrap_or(IDLE), Ordering::Release);
    let flag = next.is_some_and(|(_, _, domain)| domain.vm_assist & RUNSTATE_UPDATE_FLAG != 0);
    if let Some(vcpu) = slot.and_then(|slot| table.vcpu_mut(slot)) {
        vcpu.processor = cpu as u32;
        vcpu.enter_runstate(RUNSTATE_running, now);
        if let Some(area) = vcpu.runstate_area {
            // Its translation is live now; a bad address is the guest's loss, as in Xen.
            let _ = write_runstate(area, &vcpu.runstate, flag);
        }
    }
    slot
}

/// `vm_assist` bit of `VMASST_TYPE_runstate_update_flag` (`xen/include/public/xen.h`).
pub const RUNSTATE_UPDATE_FLAG: u64 = 1 << 5;

/// Writes a run-state area, as Xen's `update_runstate_area`: with `flag` (the domain enabled
/// `VMASST_TYPE_runstate_update_flag`), `XEN_RUNSTATE_UPDATE` is set in `state_entry_time`'s top
/// byte before the copy and cleared after it, so a reader can tell a torn copy.
pub fn write_runstate(area: u64, info: &vcpu_runstate_info, flag: bool) -> Result<(), XenError> {
    use crate::mm::guest_access::{write_struct, GuestMemory};
    // The byte of `state_entry_time` holding bit 63 (little-endian; the field is at offset 8).
    let top = area + 15;
    let byte = (info.state_entry_time >> 56) as u8;
    if flag {
        GuestMemory.write(top, &[byte | 0x80])?;
        let mut copy = *info;
        copy.state_entry_time |= XEN_RUNSTATE_UPDATE;
        write_struct(area, &copy)?;
        GuestMemory.write(top, &[byte])
    } else {
        write_struct(area, info)
    }
}

/// Logs each domain's share of one pCPU since the previous call `elapsed_ns` ago (the heartbeat):
/// `shares: d0 alpha 66.6%, d1 beta 33.3%`. Run time is charged at context switches, so a vCPU
/// running right now is counted up to its last switch. Then the frames: `memory: 1234 frames
/// free; d0 4096, d1 65536 pages` (what a balloon test follows).
pub fn report_shares(elapsed_ns: u64) {
    let mut table = TABLE.lock();
    let mut shares = alloc::vec::Vec::new();
    let mut pages = alloc::vec::Vec::new();
    let ids: alloc::vec::Vec<DomainId> = table.domains().map(|domain| domain.id).collect();
    for id in ids {
        let Some(mut held) = table.held(id) else { continue };
        let slots = held.domain.vcpus.clone();
        let runtimes = slots.iter().filter_map(|&slot| Some(held.vcpu(slot)?.1.runtime_ns));
        let total: u64 = runtimes.sum();
        let domain = held.domain;
        let delta = total - domain.runtime_at_heartbeat.min(total);
        domain.runtime_at_heartbeat = total;
        let tenths = delta * 1000 / elapsed_ns.max(1);
        let (id, name) = (domain.id, &domain.name);
        shares.push(alloc::format!("d{id} {name} {}.{}%", tenths / 10, tenths % 10));
        pages.push(alloc::format!("d{id} {}", domain.ram_pages));
    }
    if !shares.is_empty() {
        log::info!("shares: {}", shares.join(", "));
    }
    let free = crate::mm::memory::frame_counts().1;
    log::info!("memory: {free} frames free; {} pages", pages.join(", "));
}

/// The vCPU slot this pCPU runs, if any.
pub fn current_vcpu() -> Option<usize> {
    let current = percpu::this().current.load(Ordering::Acquire);
    (current != IDLE).then_some(current)
}
