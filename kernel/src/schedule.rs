//! Running vCPUs on pCPUs: the glue between traps, the scheduler (`xenolith_kernel::sched`, pure
//! logic) and the domain table. Context switches happen here, in the exception frame: the frame of
//! the vCPU that trapped is saved and the next vCPU's frame takes its place before the `eret`.
//!
//! # Invariants
//! - `percpu::PerCpu::current` names the vCPU slot whose live state is on that pCPU, or
//!   [`IDLE`]; it changes only under [`TABLE`], in [`reschedule`].
//! - A domain that shut down is destroyed by the first reschedule after which no pCPU has one of
//!   its vCPUs current.
//! - Lock order: the domain table, then the scheduler.

use alloc::boxed::Box;
use core::sync::atomic::Ordering;

use spin::Mutex;
use xenolith_abi::xen::event_channel::VIRQ_TIMER;
use xenolith_abi::xen::sched::SHUTDOWN_crash;
use xenolith_kernel::cmdline::Scheduler as SchedulerKind;
use xenolith_kernel::policy::DomainId;
use xenolith_kernel::sched::{credit2::Credit2, null::Null, CpuMask, Scheduler, VcpuParams};

use crate::arch::entry::TrapFrame;
use crate::arch::{cpu, guest};
use crate::domain::{DomainState, Table, VcpuState, TABLE};
use crate::percpu::{self, CPUS};

/// `current` value of a pCPU running no vCPU.
pub const IDLE: usize = usize::MAX;

static SCHEDULER: Mutex<Option<Box<dyn Scheduler + Send>>> = Mutex::new(None);

/// Starts the scheduler `kind` over `cpus` pCPUs.
pub fn init(kind: SchedulerKind, cpus: usize) {
    let scheduler: Box<dyn Scheduler + Send> = match kind {
        SchedulerKind::Null => Box::new(Null::new(cpus)),
        SchedulerKind::Credit2 | SchedulerKind::Rtds => {
            if kind == SchedulerKind::Rtds {
                log::warn!("sched=rtds is not implemented yet; using credit2");
            }
            Box::new(Credit2::new(cpus))
        }
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
fn started() -> bool {
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
    let now = now();
    for slot in slots {
        with_scheduler(|scheduler| scheduler.add_vcpu(slot, params, now))
            .map_err(|_| "scheduler refused the vCPU parameters")?;
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

/// Asks `target` to reschedule: another pCPU by IPI, this one by a flag checked before it
/// returns to its vCPU.
fn kick(target: Option<usize>) {
    if let Some(target) = target {
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
pub fn set_params(
    slot: usize,
    params: VcpuParams,
) -> Result<(), xenolith_kernel::sched::SchedError> {
    let kicks = with_scheduler(|scheduler| scheduler.set_params(slot, params, now()))?;
    for target in kicks.iter() {
        kick(Some(target));
    }
    Ok(())
}

/// Whether one of `id`'s vCPUs is current on some pCPU.
pub fn domain_running(table: &Table, id: DomainId) -> bool {
    table.domain(id).is_some_and(|domain| {
        CPUS.iter().any(|this| {
            let current = this.current.load(Ordering::Acquire);
            current != IDLE && domain.vcpus.contains(&current)
        })
    })
}

/// Hands a domain created at run time (paused, its vCPUs down) to the scheduler.
pub fn add_domain(table: &Table, id: DomainId) -> Result<(), xenolith_kernel::sched::SchedError> {
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
    CPUS.iter()
        .enumerate()
        .any(|(index, this)| index != me && this.current.load(Ordering::Acquire) == slot)
}

/// Makes the pCPU running `slot` look at it again (to deliver a new virtual interrupt).
pub fn kick_vcpu(slot: usize) {
    let target = CPUS.iter().position(|this| this.current.load(Ordering::Acquire) == slot);
    kick(target);
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

/// Shuts domain `id` down with a Xen `SHUTDOWN_*` reason: its vCPUs stop being scheduled and it
/// is destroyed as soon as no pCPU runs one of them.
pub fn shutdown_domain(table: &mut Table, id: DomainId, reason: u32) {
    let Some(domain) = table.domain_mut(id) else { return };
    if matches!(domain.state, DomainState::Shutdown { .. }) {
        return;
    }
    domain.state = DomainState::Shutdown { reason };
    let name = domain.name.clone();
    let slots = domain.vcpus.clone();
    log::info!("domain {id} ({name}) shut down: {}", shutdown_reason_name(reason));
    crate::event::domain_exception(table);
    for &slot in &slots {
        kick(with_scheduler(|scheduler| scheduler.remove_vcpu(slot)));
    }
    for (index, this) in CPUS.iter().enumerate() {
        let current = this.current.load(Ordering::Acquire);
        if current != IDLE && slots.contains(&current) && index != cpu::current_index() {
            crate::arch::smp::kick(index);
        }
    }
}

/// Crashes domain `id` alone, with a log line saying why.
pub fn crash_domain(table: &mut Table, id: DomainId, why: core::fmt::Arguments<'_>) {
    log::error!("domain {id}: {why}; crashing it");
    shutdown_domain(table, id, SHUTDOWN_crash);
}

fn shutdown_reason_name(reason: u32) -> &'static str {
    match reason {
        0 => "poweroff",
        1 => "reboot",
        2 => "suspend",
        3 => "crash",
        4 => "watchdog",
        5 => "soft_reset",
        _ => "unknown reason",
    }
}

/// Destroys every shut-down domain no pCPU is running.
fn reap(table: &mut Table) {
    let dead: alloc::vec::Vec<DomainId> = table
        .domains
        .iter()
        .flatten()
        .filter(|domain| matches!(domain.state, DomainState::Shutdown { .. }))
        .filter(|domain| {
            !CPUS.iter().any(|this| {
                let current = this.current.load(Ordering::Acquire);
                current != IDLE && domain.vcpus.contains(&current)
            })
        })
        .map(|domain| domain.id)
        .collect();
    for id in dead {
        let mib = table.domain(id).map_or(0, |domain| domain.ram_bytes() >> 20);
        let restarted = crate::domain::destroy_or_restart(table, id);
        crate::event::domain_exception(table);
        if !restarted {
            log::info!(
                "domain {id} destroyed; {mib} MiB returned to the frame allocator, {} frames free",
                crate::memory::frame_counts().1
            );
        }
    }
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

/// Lets the scheduler pick what this pCPU runs next and switches `frame` to it.
pub fn reschedule(frame: &mut TrapFrame) {
    if !started() {
        return;
    }
    let this = percpu::this();
    this.need_reschedule.store(false, Ordering::Release);
    let cpu = cpu::current_index();
    let mut table = TABLE.lock();
    let previous = this.current.load(Ordering::Acquire);
    let now = now();
    if previous != IDLE {
        if let Some(vcpu) = table.vcpu_mut(previous) {
            vcpu.runtime_ns += now.saturating_sub(this.switched_at.load(Ordering::Relaxed));
            vcpu.context.frame.clone_from(frame);
            guest::save_el1(&mut vcpu.context.el1);
            guest::save_fp(&mut vcpu.context.fp);
            guest::save_gic(&mut vcpu.context.gic);
        }
    }
    this.switched_at.store(now, Ordering::Relaxed);
    let decision = with_scheduler(|scheduler| scheduler.schedule(cpu, now));
    for target in decision.kick.iter().filter(|&target| target != cpu) {
        kick(Some(target));
    }
    if let Some(run_for) = decision.run_for {
        crate::arch::timer_deadline_in(run_for);
    }
    let next = decision.vcpu.filter(|&slot| {
        table.vcpu(slot).is_some_and(|vcpu| vcpu.state == VcpuState::Runnable)
            && table
                .vcpu(slot)
                .and_then(|vcpu| table.domain(vcpu.domain))
                .is_some_and(|d| d.state == DomainState::Running)
    });
    match next
        .and_then(|slot| Some((slot, table.vcpu(slot)?, table.domain(table.vcpu(slot)?.domain)?)))
    {
        Some((slot, vcpu, domain)) => {
            guest::restore_el1(&vcpu.context.el1);
            guest::restore_fp(&vcpu.context.fp);
            guest::restore_gic(&vcpu.context.gic);
            guest::activate_stage2(domain.vmid, domain.stage2.root());
            frame.clone_from(&vcpu.context.frame);
            this.current.store(slot, Ordering::Release);
            if let Some(vcpu) = table.vcpu_mut(slot) {
                crate::event::running(vcpu);
            }
            crate::virq::deliver(&mut table, slot);
        }
        None => {
            *frame = idle_frame();
            this.current.store(IDLE, Ordering::Release);
        }
    }
    reap(&mut table);
}

/// A synchronous exception from a vCPU: hypercalls, PSCI, WFI/WFE, stage-2 faults.
pub fn guest_trap(frame: &mut TrapFrame) {
    let slot = percpu::this().current.load(Ordering::Acquire);
    let mut table = TABLE.lock();
    let Some((domain, vcpu_index)) = table.vcpu(slot).map(|vcpu| (vcpu.domain, vcpu.index)) else {
        drop(table);
        reschedule(frame);
        return;
    };
    let mut switch = false;
    match guest::decode_exit(frame) {
        guest::GuestExit::Hvc { immediate: 0xEA1 } => {
            let args = [frame.x[0], frame.x[1], frame.x[2], frame.x[3], frame.x[4]];
            let mut caller = crate::hypercall::Caller {
                domain,
                vcpu_slot: slot,
                irqs_masked: frame.spsr & (1 << 7) != 0,
                table: &mut table,
            };
            match crate::hypercall::dispatch(frame.x[16], args, &mut caller) {
                crate::hypercall::Outcome::Return(value) => frame.x[0] = value as u64,
                crate::hypercall::Outcome::Continue(args) => {
                    // Run the HVC again with the rest of the batch (ELR is past it).
                    frame.x[..3].copy_from_slice(&args);
                    frame.elr -= 4;
                }
                crate::hypercall::Outcome::Reschedule(value) => {
                    frame.x[0] = value as u64;
                    switch = true;
                }
            }
        }
        exit @ (guest::GuestExit::Hvc { .. } | guest::GuestExit::Smc) => {
            if exit == guest::GuestExit::Smc {
                guest::skip_instruction(frame);
            }
            switch = crate::arch::psci_guest::handle(frame, &mut table, domain, slot);
        }
        guest::GuestExit::Wait { wfe } => {
            guest::skip_instruction(frame);
            if wfe || crate::virq::has_pending(&table, slot) {
                // WFE, or an interrupt is already waiting: let others run, then come back.
                yield_now(slot);
            } else {
                // WFI with nothing pending: sleep until an interrupt is made pending for it.
                if let Some(vcpu) = table.vcpu_mut(slot) {
                    vcpu.state = VcpuState::Blocked;
                }
                sleep(slot);
            }
            switch = true;
        }
        guest::GuestExit::SystemRegister { iss } if iss & 0x3f_fc1f == ICC_SGI1R_EL1_WRITE => {
            let register = ((iss >> 5) & 0x1f) as usize;
            let value = if register == 31 { 0 } else { frame.x[register] };
            crate::virq::send_sgi(&mut table, domain, slot, value);
            guest::skip_instruction(frame);
        }
        guest::GuestExit::DataAbort { ipa, write, syndrome_valid: true }
            if crate::virq::is_vgic_address(&table, domain, ipa) =>
        {
            let iss = frame.esr & 0x1ff_ffff;
            let register = ((iss >> 16) & 0x1f) as usize;
            let size_bits = 8u32 << ((iss >> 22) & 0b11);
            let mask = if size_bits == 64 { u64::MAX } else { (1u64 << size_bits) - 1 };
            if write {
                let value = if register == 31 { 0 } else { frame.x[register] & mask };
                crate::virq::mmio(&mut table, domain, ipa, Some(value));
            } else if register != 31 {
                frame.x[register] =
                    crate::virq::mmio(&mut table, domain, ipa, None).unwrap_or(0) & mask;
            }
            guest::skip_instruction(frame);
        }
        guest::GuestExit::DataAbort { ipa, write, .. } => {
            let access = if write { "write" } else { "read" };
            // DFSC 0b0011xx: a permission fault (a read-only page, such as a read-only grant
            // mapping); anything else: nothing mapped there.
            let what =
                if frame.esr & 0x3c == 0x0c { "not permitted" } else { "outside its memory" };
            crash_domain(
                &mut table,
                domain,
                format_args!(
                    "vCPU {vcpu_index}: {access} at IPA {ipa:#x} (FAR {:#x}, ESR {:#x}, PC {:#x}) {what}",
                    frame.far, frame.esr, frame.elr
                ),
            );
            switch = true;
        }
        guest::GuestExit::InstructionAbort { ipa } => {
            crash_domain(
                &mut table,
                domain,
                format_args!("vCPU {vcpu_index}: instruction fetch at IPA {ipa:#x} (PC {:#x}) outside its memory", frame.elr),
            );
            switch = true;
        }
        exit @ (guest::GuestExit::SystemRegister { .. } | guest::GuestExit::Other { .. }) => {
            crash_domain(
                &mut table,
                domain,
                format_args!(
                    "vCPU {vcpu_index}: unhandled trap {exit:?} (ESR {:#x}, PC {:#x})",
                    frame.esr, frame.elr
                ),
            );
            switch = true;
        }
    }
    let reschedule_now = switch || percpu::this().need_reschedule.load(Ordering::Acquire);
    if !reschedule_now {
        crate::virq::deliver(&mut table, slot);
    }
    drop(table);
    if reschedule_now {
        reschedule(frame);
    }
}

/// ISS of a trapped write to ICC_SGI1R_EL1 (Op0 3, Op2 5, Op1 0, CRn 12, CRm 11, direction
/// write), with the register field (bits 9:5) masked out: Arm ARM D24.2.40, EC 0x18.
const ICC_SGI1R_EL1_WRITE: u32 = (3 << 20) | (5 << 17) | (12 << 10) | (11 << 1);

/// The per-pCPU tick: expired single-shot timers wake their vCPUs, then the scheduler may switch.
pub fn tick(frame: &mut TrapFrame) {
    let now = now();
    let mut woken = alloc::vec::Vec::new();
    {
        let mut table = TABLE.lock();
        if started() {
            crate::virq::expire_virtual_timers(&mut table, cpu::counter());
        }
        let mut timers = alloc::vec::Vec::new();
        for (slot, vcpu) in table.vcpus.iter_mut().enumerate() {
            let Some(vcpu) = vcpu else { continue };
            if vcpu.singleshot_deadline.is_some_and(|deadline| deadline <= now) {
                vcpu.singleshot_deadline = None;
                timers.push((vcpu.domain, vcpu.index));
                if vcpu.state == VcpuState::Blocked {
                    vcpu.state = VcpuState::Runnable;
                    woken.push(slot);
                }
            }
        }
        // `vcpu_singleshot_timer_fn`: the expiry is also VIRQ_TIMER for that vCPU.
        for (domain, index) in timers {
            crate::event::send_virq(&mut table, domain, VIRQ_TIMER, index);
        }
        crate::event::expire_polls(&mut table, now, &mut woken);
    }
    for slot in woken {
        wake(slot);
    }
    reschedule(frame);
}

/// An exception the domain running here caused and cannot be given back (an SError, or anything
/// from AArch32 state, which domains never run in): the domain is crashed.
pub fn foreign_state_trap(frame: &mut TrapFrame) {
    if let Some(slot) = current_vcpu() {
        let mut table = TABLE.lock();
        if let Some(domain) = table.vcpu(slot).map(|vcpu| vcpu.domain) {
            crash_domain(
                &mut table,
                domain,
                format_args!("SError or AArch32 exception (ESR {:#x})", frame.esr),
            );
        }
    }
    reschedule(frame);
}

/// Logs each domain's share of one pCPU since the previous call `elapsed_ns` ago (the heartbeat):
/// `shares: d0 alpha 66.6%, d1 beta 33.3%`. Run time is charged at context switches, so a vCPU
/// running right now is counted up to its last switch.
pub fn report_shares(elapsed_ns: u64) {
    let mut table = TABLE.lock();
    let mut line = alloc::string::String::new();
    let ids: alloc::vec::Vec<DomainId> =
        table.domains.iter().flatten().map(|domain| domain.id).collect();
    for id in ids {
        let total: u64 = table.domain(id).map_or(0, |domain| {
            domain
                .vcpus
                .iter()
                .filter_map(|&slot| table.vcpu(slot))
                .map(|vcpu| vcpu.runtime_ns)
                .sum()
        });
        let Some(domain) = table.domain_mut(id) else { continue };
        let delta = total - domain.runtime_at_heartbeat.min(total);
        domain.runtime_at_heartbeat = total;
        let tenths = delta * 1000 / elapsed_ns.max(1);
        if !line.is_empty() {
            line.push_str(", ");
        }
        let _ = core::fmt::Write::write_fmt(
            &mut line,
            format_args!("d{id} {} {}.{}%", domain.name, tenths / 10, tenths % 10),
        );
    }
    if !line.is_empty() {
        log::info!("shares: {line}");
    }
}

/// The physical virtual-timer interrupt arrived while a vCPU ran here, or a pCPU was kicked to
/// deliver something: hand pending virtual interrupts to the vCPU running here.
pub fn interrupt_return(virtual_timer: bool) {
    let Some(slot) = current_vcpu() else { return };
    let mut table = TABLE.lock();
    if virtual_timer {
        crate::virq::virtual_timer_fired(&mut table, slot);
    }
    crate::virq::deliver(&mut table, slot);
}

/// Domain id and vCPU index of what this pCPU runs, if anything.
pub fn current_vcpu() -> Option<usize> {
    let current = percpu::this().current.load(Ordering::Acquire);
    (current != IDLE).then_some(current)
}
