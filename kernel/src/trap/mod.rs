//! Where the hardware enters the core after boot: every exception and interrupt taken to EL2
//! arrives at [`handle_exception`] (called by the arch layer's vector code), and leaves through
//! [`reschedule`] when the pCPU must run something else. Guest exits are decoded here into the
//! hypercall, virtual-interrupt, PSCI (`psci.rs`), system-register and fault paths; the periodic
//! tick expires timers and polls. The library's half of this folder is `id_registers.rs` (what a
//! guest reads from the ID registers) and `undefined.rs` (the exception it takes for a trapped
//! instruction the core does not emulate, as Xen gives it).
//!
//! # Invariants
//! - Runs on the interrupted context's stack with the frame the vector code saved; returning
//!   restores that frame, which [`reschedule`] may have switched to another vCPU's.
//! - A guest's exit can only end in a return to it (possibly into its own exception vector), a
//!   reschedule, or its domain's crash; an unexpected exception of the core itself stops the
//!   system with a register dump.
//! - Lock order: the domain table (whole, or as a reader with one domain, then a peer of higher
//!   id), then the scheduler.

mod psci;

use core::sync::atomic::{AtomicU64, Ordering};

use xenolith_abi::xen::event_channel::VIRQ_CONSOLE;
use xenolith_abi::xen::sched::SHUTDOWN_watchdog;
use xenolith_kernel::trap::id_registers::{self, Access, Encoding};

use crate::arch::entry::TrapFrame;
use crate::arch::exception::{self, Exception};
use crate::arch::{cpu, guest, percpu};
use crate::domain::{VcpuState, TABLE};
use crate::hypercall::Outcome;
use crate::lifecycle::crash_domain;
use crate::platform::{console, panic};
use crate::sched::{self, current_vcpu, now};
use xenolith_kernel::policy::DomainId;

/// Heartbeat period in nanoseconds (0: off).
static HEARTBEAT_NS: AtomicU64 = AtomicU64::new(0);
/// When the last heartbeat line was printed.
static LAST_HEARTBEAT_NS: AtomicU64 = AtomicU64::new(0);

/// Prints a heartbeat line every `period_ns` from now on (0: never).
pub fn set_heartbeat(period_ns: u64) {
    HEARTBEAT_NS.store(period_ns, Ordering::Relaxed);
    LAST_HEARTBEAT_NS.store(now(), Ordering::Relaxed);
}

/// Called by the vector code with the vector number (0..16) and the saved registers.
#[no_mangle]
extern "C" fn handle_exception(vector: u64, frame: &mut TrapFrame) {
    match exception::classify(vector) {
        Exception::Interrupt => interrupt(frame),
        Exception::Guest => guest_trap(frame),
        Exception::Foreign => foreign_state_trap(frame),
        Exception::Unexpected => {
            let _ = exception::dump(&mut console::Console, vector, frame);
            let (kind, source) = exception::describe(vector);
            panic::stop_system(format_args!("unexpected {kind} exception from {source}"));
        }
    }
}

/// IRQ at EL2: what the arch layer took, then the tick, a reschedule, or what is pending for the
/// vCPU running here.
fn interrupt(frame: &mut TrapFrame) {
    let taken = crate::arch::boot::take_interrupts();
    if taken.stop && panic::stopping() {
        console::print(format_args!("(XEN) CPU{} stopped\n", cpu::current_index()));
        cpu::halt();
    }
    if taken.console_input {
        // `send_global_virq(VIRQ_CONSOLE)`: to the domain holding `console`.
        let mut table = TABLE.lock();
        if let Some(console) = table.console_domain() {
            crate::event::send_virq(&mut table, console, VIRQ_CONSOLE, 0);
        }
    }
    if taken.passthrough != 0 {
        crate::event::virq::forward(&mut TABLE.lock(), taken.passthrough);
    }
    // Waking the console domain may have asked this pCPU to choose again.
    let woken = percpu::this().need_reschedule.load(Ordering::Acquire);
    if taken.virtual_timer || !(taken.tick || taken.reschedule || woken) {
        interrupt_return(taken.virtual_timer);
    }
    if taken.tick {
        tick(frame);
    } else if taken.reschedule || woken {
        reschedule(frame);
    }
}

/// The heartbeat line, on CPU 0, when its period has passed.
fn heartbeat() {
    let period = HEARTBEAT_NS.load(Ordering::Relaxed);
    let now = now();
    let last = LAST_HEARTBEAT_NS.load(Ordering::Relaxed);
    if cpu::current_index() == 0 && period != 0 && now >= last + period {
        LAST_HEARTBEAT_NS.store(now, Ordering::Relaxed);
        crate::arch::boot::log_tick_counts();
        log::info!("heartbeat: domain table readers side by side {}", TABLE.side_by_side());
        sched::report_shares(now - last);
    }
}

/// Lets the scheduler pick what this pCPU runs next and switches `frame` to it; the vCPU that
/// runs gets what is pending for it, and shut-down domains no pCPU runs any more are reaped
/// (those to restart are rebuilt after the table is unlocked: see `lifecycle::restart`).
pub fn reschedule(frame: &mut TrapFrame) {
    if !sched::started() {
        return;
    }
    let mut table = TABLE.lock();
    if let Some(slot) = sched::switch(frame, &mut table) {
        // A vCPU that runs is not polling any more (woken by an upcall or another interrupt).
        if let Some(vcpu) = table.vcpu_mut(slot).filter(|vcpu| vcpu.poll.is_some()) {
            crate::event::stop_polling(vcpu);
        }
        crate::hypercall::dm_op::complete(&mut table, slot, frame);
        crate::event::virq::deliver_to(&mut table, slot);
    }
    // A vCPU that waits for its virtual timer wakes at its deadline, not at the next tick (as
    // Xen's per-vCPU `virt_timer`): this pCPU's tick comes by then (and expires it).
    if let Some(deadline) = crate::event::virq::next_virtual_timer(&mut table) {
        crate::arch::timer_deadline_by(deadline);
    }
    let restarts = crate::lifecycle::reap(&mut table);
    drop(table);
    for (id, manifest_index) in restarts {
        crate::lifecycle::restart(id, manifest_index);
        // Its vCPU may be the one this pCPU should run (else it waits for a tick or a trap).
        reschedule(frame);
    }
}

/// Whether `ipa` of `domain` is now mapped for the access that faulted there (a `write`, a read,
/// or with `None` an instruction fetch): the fault raced with a change of the mapping and the
/// access can be retried.
fn mapped_now(
    table: &crate::domain::Table,
    domain: DomainId,
    ipa: u64,
    write: Option<bool>,
) -> bool {
    let tables = crate::mm::memory::IdentityTables;
    let Some(domain) = table.domain(domain) else { return false };
    domain.stage2.translate(&tables, ipa).is_some_and(|(_, granted)| match write {
        Some(write) => granted.write || !write,
        None => granted.execute,
    })
}

/// A synchronous exception from a vCPU: hypercalls, PSCI, WFI/WFE, system registers (SGIs, the
/// ID registers; any other trapped one, and any trapped instruction of a hidden feature, is
/// UNDEFINED for the guest), stage-2 faults.
fn guest_trap(frame: &mut TrapFrame) {
    let this = percpu::this();
    let slot = this.current.load(Ordering::Acquire);
    let exit = guest::decode_exit(frame);
    if exit == (guest::GuestExit::Hvc { immediate: 0xEA1 }) && local_hypercall(frame, this, slot) {
        return;
    }
    let mut table = TABLE.lock();
    let Some((domain, vcpu_index)) = table.vcpu(slot).map(|vcpu| (vcpu.domain, vcpu.index)) else {
        drop(table);
        reschedule(frame);
        return;
    };
    // Crashes the domain with a reason (the vCPU stops running here).
    macro_rules! crash {
        ($($why:tt)*) => {{
            let why = format_args!($($why)*);
            crash_domain(&mut table, domain, format_args!("vCPU {vcpu_index}: {why}"));
            true
        }};
    }
    // Whether the vCPU stops running here (it yielded, slept or went down, or its domain ended).
    let switch = match exit {
        guest::GuestExit::Hvc { immediate: 0xEA1 } => {
            let args = [frame.x[0], frame.x[1], frame.x[2], frame.x[3], frame.x[4]];
            let mut caller = crate::domain::Caller {
                domain,
                vcpu_slot: slot,
                irqs_masked: frame.spsr & (1 << 7) != 0,
                table: &mut table,
            };
            let outcome = crate::hypercall::dispatch(frame.x[16], args, &mut caller);
            if !caller.irqs_masked {
                // The hypercall unmasked the caller's interrupts (SCHEDOP_block does, as on Xen).
                frame.spsr &= !(1 << 7);
            }
            finish(frame, outcome)
        }
        exit @ (guest::GuestExit::Hvc { .. } | guest::GuestExit::Smc) => {
            if exit == guest::GuestExit::Smc {
                guest::skip_instruction(frame);
            }
            psci::handle(frame, &mut table, domain, slot)
        }
        guest::GuestExit::Wait { wfe } => {
            guest::skip_instruction(frame);
            if wfe || crate::event::virq::has_pending(&table, slot) {
                // WFE, or an interrupt is already waiting: let others run, then come back.
                sched::yield_now(slot);
            } else {
                // WFI with nothing pending: sleep until an interrupt is made pending for it.
                if let Some(vcpu) = table.vcpu_mut(slot) {
                    vcpu.state = VcpuState::Blocked;
                }
                sched::sleep(slot);
            }
            true
        }
        guest::GuestExit::SystemRegister { iss } => {
            let access = Access::decode(iss);
            if access.encoding == ICC_SGI1R_EL1 && !access.read {
                let value = register(frame, access.register);
                crate::event::virq::send_sgi(&mut table, domain, slot, value);
                guest::skip_instruction(frame);
            } else if let Some(value) = id_registers::read(&access, guest::read_id_register) {
                if let Some(target) = frame.x.get_mut(access.register) {
                    *target = value;
                }
                guest::skip_instruction(frame);
            } else {
                undefined(frame, format_args!("domain {domain}: vCPU {vcpu_index}: {access}"));
            }
            false
        }
        guest::GuestExit::HiddenFeature { class } => {
            undefined(frame, format_args!("domain {domain}: vCPU {vcpu_index}: class {class:#x}"));
            false
        }
        guest::GuestExit::DataAbort { ipa, write, syndrome_valid: true }
            if crate::event::virq::is_vgic_address(&table, domain, ipa) =>
        {
            let (target, bytes) = guest::transfer(frame.esr);
            let mask = u64::MAX >> (64 - 8 * bytes);
            if write {
                let value = register(frame, target) & mask;
                crate::event::virq::mmio(&mut table, domain, ipa, Some(value));
            } else if let Some(target) = frame.x.get_mut(target) {
                *target =
                    crate::event::virq::mmio(&mut table, domain, ipa, None).unwrap_or(0) & mask;
            }
            guest::skip_instruction(frame);
            false
        }
        guest::GuestExit::DataAbort { ipa, write, syndrome_valid: true }
            if crate::hypercall::dm_op::claimed(&table, domain, ipa, frame.esr) =>
        {
            crate::hypercall::dm_op::forward(&mut table, domain, slot, frame, ipa, write)
        }
        // Another pCPU was splitting the block here (break-before-make): run it again.
        guest::GuestExit::DataAbort { ipa, write, .. }
            if mapped_now(&table, domain, ipa, Some(write)) =>
        {
            false
        }
        guest::GuestExit::InstructionAbort { ipa } if mapped_now(&table, domain, ipa, None) => {
            false
        }
        guest::GuestExit::DataAbort { ipa, write, .. } => {
            let access = if write { "write" } else { "read" };
            // DFSC 0b0011xx: a permission fault (a read-only page, such as a read-only grant
            // mapping); anything else: nothing mapped there.
            let what =
                if frame.esr & 0x3c == 0x0c { "not permitted" } else { "outside its memory" };
            let (far, esr, pc) = (frame.far, frame.esr, frame.elr);
            crash!("{access} at IPA {ipa:#x} (FAR {far:#x}, ESR {esr:#x}, PC {pc:#x}) {what}")
        }
        guest::GuestExit::InstructionAbort { ipa } => {
            crash!("instruction fetch at IPA {ipa:#x} (PC {:#x}) outside its memory", frame.elr)
        }
        exit => crash!("unhandled trap {exit:?} (ESR {:#x}, PC {:#x})", frame.esr, frame.elr),
    };
    if switch || this.need_reschedule.load(Ordering::Acquire) {
        drop(table);
        reschedule(frame);
    } else {
        crate::event::virq::deliver_to(&mut table, slot);
    }
}

/// Puts a hypercall's `outcome` in `frame`: whether the vCPU stops running here.
#[inline(always)]
fn finish(frame: &mut TrapFrame, outcome: Outcome) -> bool {
    match outcome {
        Outcome::Continue(args) | Outcome::ContinueLater(args) => {
            // Run the HVC again with the rest of the batch (ELR is past it).
            frame.x[..3].copy_from_slice(&args);
            frame.elr -= 4;
            matches!(outcome, Outcome::ContinueLater(_))
        }
        outcome @ (Outcome::Return(value) | Outcome::Reschedule(value)) => {
            frame.x[0] = value as u64;
            matches!(outcome, Outcome::Reschedule(_))
        }
    }
}

/// Runs the hypercall in `frame` as one of the domain table's readers, holding only the caller's
/// domain (and a peer's), if it is one of those (`hypercall::local`): whether it ran.
#[inline(always)]
fn local_hypercall(frame: &mut TrapFrame, this: &percpu::PerCpu, slot: usize) -> bool {
    let args = [frame.x[0], frame.x[1], frame.x[2], frame.x[3], frame.x[4]];
    if !crate::hypercall::is_local(frame.x[16], &args) {
        return false;
    }
    let Some(mut local) = TABLE.local(slot) else { return false };
    let Some(outcome) = crate::hypercall::local(frame.x[16], args, &mut local) else {
        return false;
    };
    // Only `Return` and `Continue` come from these calls.
    if finish(frame, outcome) || this.need_reschedule.load(Ordering::Acquire) {
        drop(local);
        reschedule(frame);
    } else {
        crate::event::virq::deliver(&mut local.held(), slot);
    }
    true
}

/// Gives the vCPU an Undefined Instruction exception for the trapped instruction at its PC
/// (`what`), which the core does not emulate, as Xen does (`inject_undef_exception`).
fn undefined(frame: &mut TrapFrame, what: core::fmt::Arguments<'_>) {
    log::debug!("{what} at PC {:#x} not emulated: undefined instruction injected", frame.elr);
    guest::inject_undefined(frame);
}

/// General-purpose register `index` (0-31) of the trapped vCPU; 31 is the zero register here.
fn register(frame: &TrapFrame, index: usize) -> u64 {
    frame.x.get(index).copied().unwrap_or(0)
}

/// ICC_SGI1R_EL1, whose writes the core emulates (trapped by HCR_EL2.IMO).
const ICC_SGI1R_EL1: Encoding = Encoding::new(3, 0, 12, 11, 5);

/// The per-pCPU tick: the heartbeat, expired watchdogs shut their domains down, expired virtual
/// timers and polls wake their vCPUs, then the scheduler may switch.
fn tick(frame: &mut TrapFrame) {
    heartbeat();
    let now = now();
    let mut table = TABLE.lock();
    if sched::started() {
        crate::event::virq::expire_virtual_timers(&mut table, cpu::counter());
    }
    // `domain_watchdog_timeout`: an expired SCHEDOP_watchdog timer shuts its domain down.
    let mut fired = alloc::vec::Vec::new();
    for domain in table.domains_mut() {
        if domain.watchdogs.iter().flatten().any(|&deadline| deadline <= now) {
            domain.watchdogs = [None; 2];
            fired.push(domain.id);
        }
    }
    for id in fired {
        log::info!("domain {id}: watchdog timer fired");
        crate::lifecycle::shutdown_domain(&mut table, id, SHUTDOWN_watchdog);
    }
    let mut woken = alloc::vec::Vec::new();
    for (slot, vcpu) in table.vcpus_mut() {
        // A poll whose deadline passed ends.
        if vcpu.poll_deadline.is_some_and(|deadline| deadline <= now)
            && crate::event::stop_polling(vcpu)
        {
            woken.push(slot);
        }
    }
    drop(table);
    for slot in woken {
        sched::wake(slot);
    }
    reschedule(frame);
}

/// An exception the domain running here caused and cannot be given back (an SError, or anything
/// from AArch32 state, which domains never run in): the domain is crashed.
fn foreign_state_trap(frame: &mut TrapFrame) {
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

/// The physical virtual-timer interrupt arrived while a vCPU ran here, or a pCPU was kicked to
/// deliver something: hand pending virtual interrupts to the vCPU running here.
fn interrupt_return(virtual_timer: bool) {
    let Some(slot) = current_vcpu() else { return };
    let mut table = TABLE.lock();
    if virtual_timer {
        crate::event::virq::virtual_timer_fired(&mut table, slot);
    }
    crate::event::virq::deliver_to(&mut table, slot);
}
