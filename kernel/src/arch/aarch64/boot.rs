//! The aarch64 boot flow: from `_start` to "ready" on the boot CPU, and from PSCI CPU_ON to idle
//! on the others; interrupt dispatch; stopping CPUs.
//!
//! # Invariants
//! - The boot CPU sets up everything shared (console, memory, tables, distributor) before it
//!   starts any other CPU; a secondary only sets up its own redistributor, timer and stack.
//! - The stop SGI is taken by every CPU whatever it is doing, as long as IRQs are unmasked.

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use spin::Once;
use xenolith_kernel::mm::frame::{ImageLayout, Region};
use xenolith_kernel::platform::cmdline::TestFault;
use xenolith_kernel::platform::{Gic, Platform, PsciMethod, MAX_CPUS};

use super::entry::{self, SecondaryBoot};
use super::{cpu, gic, mmu, psci, timer};
use crate::arch::percpu::{self, CPUS};

/// SGI asking a CPU to stop for good.
const SGI_STOP: u32 = 0;
/// SGI used by the boot self-test.
const SGI_TEST: u32 = 1;
/// SGI asking a CPU to run its scheduler.
const SGI_RESCHEDULE: u32 = 2;
/// The virtual timer's PPI (fires while a vCPU's timer expires as it runs).
const VIRTUAL_TIMER_PPI: u32 = 27;
/// Timer interrupts per second.
const TICK_HZ: u64 = 100;
/// Bytes of each secondary CPU's stack.
const SECONDARY_STACK_SIZE: usize = 32 * 1024;

#[repr(C, align(16))]
struct SecondaryStack([u8; SECONDARY_STACK_SIZE]);

/// Secondary stacks and boot records, one per possible CPU (index 0, the boot CPU, unused).
static mut SECONDARY_STACKS: [SecondaryStack; MAX_CPUS] =
    [const { SecondaryStack([0; SECONDARY_STACK_SIZE]) }; MAX_CPUS];
static mut SECONDARY_RECORDS: [SecondaryBoot; MAX_CPUS] =
    [SecondaryBoot { stack_top: 0, mair: 0, tcr: 0, ttbr0: 0, sctlr: 0, cpu_index: 0 }; MAX_CPUS];

/// The timer's INTID (from the DTB), shared with secondaries.
static TIMER_INTID: AtomicU64 = AtomicU64::new(26);
/// Counter ticks per timer interrupt.
static TICK_INTERVAL: AtomicU64 = AtomicU64::new(0);
/// The interrupt controller is up; interrupt dispatch may run.
static GIC_READY: AtomicBool = AtomicBool::new(false);
/// The console UART's interrupt (an SPI), once input is taken; 0 before.
static UART_INTID: AtomicU64 = AtomicU64::new(0);

/// The interrupt controller the DTB describes, shared with secondaries.
static GIC: Once<Gic> = Once::new();

/// First steps of the boot CPU, before anything else runs: its index, its stack top, HCR_EL2
/// (EL1 is AArch64; IRQ, FIQ and SError route to EL2 so the core takes its own interrupts while
/// it runs at EL2) and its timer.
pub fn init_boot_cpu() {
    cpu::set_current_index(0);
    let boot_stack_top = (&raw const entry::BOOT_STACK) as u64 + entry::BOOT_STACK_SIZE as u64;
    entry::STACK_TOPS[0].store(boot_stack_top, Ordering::Relaxed);
    cpu::write_sysreg!("hcr_el2", (1 << 31) | (1 << 5) | (1 << 4) | (1 << 3));
    timer::init_cpu();
}

/// The DTB the bootloader passed at `dtb_address` (x0), if its header is sane: a DTB magic and a
/// total size of at most 2 MiB. Nothing past the 8-byte header is read before that check.
pub fn boot_dtb(dtb_address: u64) -> Option<&'static [u8]> {
    if dtb_address == 0 {
        return None;
    }
    // SAFETY: the boot protocol puts a DTB at `dtb_address` in RAM (x0); reading its 8-byte
    // header (magic and big-endian total size) stays within any valid DTB.
    let header = unsafe { core::ptr::read_volatile(dtb_address as *const [u8; 8]) };
    let total = u32::from_be_bytes([header[4], header[5], header[6], header[7]]) as usize;
    if header[..4] != [0xd0, 0x0d, 0xfe, 0xed] || total > 2 << 20 {
        return None;
    }
    // SAFETY: checked above: a DTB magic and a total size of at most 2 MiB at a RAM address the
    // bootloader reserved for it; the slice is only read.
    Some(unsafe { core::slice::from_raw_parts(dtb_address as *const u8, total) })
}

/// Where the core's image lies, from the linker script.
pub fn image_layout() -> ImageLayout {
    // Only the addresses of these linker-script symbols are taken, never their contents.
    let start = &raw const entry::__image_start as u64;
    let text_end = &raw const entry::__text_end as u64;
    let rodata_end = &raw const entry::__rodata_end as u64;
    let end = &raw const entry::__image_end as u64;
    ImageLayout {
        text: Region { start, end: text_end },
        rodata: Region { start: text_end, end: rodata_end },
        data: Region { start: rodata_end, end },
    }
}

/// Brings the interrupt controller's distributor up and sets the periodic tick (`TICK_HZ`) on
/// the platform's EL2 timer. Returns the distributor's interrupt lines.
pub fn init_interrupts(platform: &Platform<'_>) -> u32 {
    let gic_lines = gic::init_distributor(&platform.gic.dist).expect("GICv3 distributor");
    GIC.call_once(|| platform.gic);
    TIMER_INTID.store(u64::from(platform.timer.hyp), Ordering::Relaxed);
    TICK_INTERVAL.store(cpu::counter_frequency().max(1) / TICK_HZ, Ordering::Relaxed);
    gic_lines
}

/// Starts every other CPU of `platform` (at most `wanted` in all) through PSCI, each on the
/// core's page tables at `root`.
pub fn start_other_cpus(platform: &Platform<'_>, wanted: usize, root: u64) {
    let psci = platform
        .psci
        .unwrap_or_else(|| panic!("the DTB has no /psci node: cannot start other CPUs"));
    if psci.method == PsciMethod::Hvc {
        panic!("PSCI method is hvc: the core runs at EL2 and needs firmware reached by smc");
    }
    let version = psci::call(psci::VERSION, 0, 0, 0);
    log::info!(
        "PSCI {}.{} through SMC; CPU_ON is {:#x}",
        (version >> 16) & 0xffff,
        version & 0xffff,
        psci.cpu_on
    );
    let me = cpu::mpidr();
    let mut next_index = 1;
    for cpu_entry in platform.cpus.iter().filter(|entry| entry.mpidr != me) {
        if next_index >= wanted {
            log::info!("CPU MPIDR {:#x} left offline (maxcpus={wanted})", cpu_entry.mpidr);
            continue;
        }
        start_secondary(next_index, cpu_entry.mpidr, root, psci.cpu_on);
        next_index += 1;
    }
}

/// Brings the calling CPU's interrupt controller and timer up and marks it online.
pub fn start_this_cpu(index: usize) {
    let platform_gic = GIC.get().expect("distributor initialised before any CPU starts");
    let mpidr = cpu::mpidr();
    let redistributor =
        gic::find_redistributor(platform_gic.redist.as_slice(), platform_gic.redist_stride, mpidr)
            .expect("GICv3 redistributor: is the DTB's GIC node right?");
    // First: the event stream bounds the redistributor's waits (`cpu::wait_until`).
    timer::init_cpu();
    gic::init_cpu(redistributor).expect("GICv3 redistributor");
    super::guest::init_cpu();
    let timer_intid = TIMER_INTID.load(Ordering::Relaxed) as u32;
    for intid in [SGI_STOP, SGI_TEST, SGI_RESCHEDULE, VIRTUAL_TIMER_PPI, timer_intid] {
        gic::enable_private(redistributor, intid);
    }
    let this = &CPUS[index];
    this.mpidr.store(mpidr, Ordering::Relaxed);
    this.redistributor.store(redistributor, Ordering::Relaxed);
    GIC_READY.store(true, Ordering::Release);
    arm_next_tick(this);
    cpu::enable_interrupts();
    // Logged before the flag goes up, so the boot CPU's summary follows every CPU's own line.
    log::info!("CPU{index} online (MPIDR {mpidr:#x}, redistributor {redistributor:#x})");
    this.online.store(true, Ordering::Release);
}

fn start_secondary(index: usize, mpidr: u64, root: u64, cpu_on: u32) {
    // SAFETY: only the address is taken (no reference); index < MAX_CPUS because the platform's
    // CPU list holds at most MAX_CPUS entries, so the indexing is in bounds.
    let stack_top =
        unsafe { &raw const SECONDARY_STACKS[index] } as u64 + SECONDARY_STACK_SIZE as u64;
    entry::STACK_TOPS[index].store(stack_top, Ordering::Relaxed);
    // SAFETY: as above, only the address is taken.
    let record = unsafe { &raw mut SECONDARY_RECORDS[index] };
    // SAFETY: `record` points at this CPU's own boot record, which only the boot CPU writes, here,
    // before CPU_ON starts the CPU that reads it; no reference to it exists.
    unsafe { record.write(mmu::secondary_record(root, stack_top, index)) };
    let record_address = record as u64;
    cpu::clean_dcache_range(record_address, core::mem::size_of::<SecondaryBoot>() as u64);
    let entry_point = entry::secondary_entry as *const () as u64;
    if let Err(reason) = psci::cpu_on(cpu_on, mpidr, entry_point, record_address) {
        log::error!("PSCI CPU_ON for MPIDR {mpidr:#x} failed: {reason}");
        return;
    }
    if !cpu::wait_until(1000, || CPUS[index].online.load(Ordering::Acquire)) {
        log::error!("CPU{index} (MPIDR {mpidr:#x}) did not come online within a second");
    }
}

/// A secondary CPU's Rust entry, from `secondary_entry`, with the MMU on.
#[no_mangle]
extern "C" fn secondary_main(index: u64) -> ! {
    cpu::set_current_index(index as usize);
    cpu::write_sysreg!("hcr_el2", (1 << 31) | (1 << 5) | (1 << 4) | (1 << 3));
    start_this_cpu(index as usize);
    idle()
}

/// Runs the idle loop on this CPU for good.
pub fn idle() -> ! {
    // SAFETY: idle_loop abandons this stack (it restarts at the stack's top); every caller is a
    // `-> !` entry function that holds no lock or guard at this point.
    unsafe { entry::idle_loop() }
}

/// Sends a test SGI to every online CPU, this one included, and checks each arrives.
pub fn self_test_sgis() {
    for (index, this) in percpu::online() {
        let before = this.test_sgis.load(Ordering::Acquire);
        gic::send_sgi(this.mpidr.load(Ordering::Relaxed), SGI_TEST);
        if !cpu::wait_until(1000, || this.test_sgis.load(Ordering::Acquire) > before) {
            panic!("SGI self-test failed: CPU{index} did not take SGI {SGI_TEST} within a second");
        }
    }
    log::info!("SGI self-test passed: {} CPUs each took SGI {SGI_TEST}", percpu::online_count());
}

/// Checks every online CPU takes timer interrupts: each one tick, all at once (a tick is 10 ms
/// of the boot's time, so not one CPU after another, nor two each).
pub fn self_test_timers() {
    let ticked = |(_, this): (usize, &percpu::PerCpu)| this.ticks.load(Ordering::Acquire) > 0;
    if !cpu::wait_until(2000, || percpu::online().all(ticked)) {
        let (index, _) = percpu::online().find(|&cpu| !ticked(cpu)).unwrap_or((0, percpu::this()));
        panic!("timer self-test failed: CPU{index} took no timer interrupts");
    }
    log::info!("timer: every online CPU ticking at {TICK_HZ} Hz on the EL2 physical timer");
}

pub fn trigger_test_fault(fault: TestFault) {
    if !cfg!(feature = "test-hooks") {
        log::warn!("test_fault ignored: this build has no test hooks");
        return;
    }
    log::warn!("test hook test_fault={fault:?}: faulting at EL2 on purpose");
    match fault {
        TestFault::El2DataAbort => {
            // An address inside the 39-bit space that the core never maps.
            let address = 0x7f_dead_0000usize as *const u64;
            // SAFETY: deliberately unsound read of unmapped memory: the test hook exists to prove
            // the EL2 data abort is caught and dumped; the handler never returns here.
            let value = unsafe { core::ptr::read_volatile(address) };
            log::error!("read of unmapped {address:p} returned {value:#x}");
        }
        // SAFETY: UDF is permanently undefined; the exception handler stops the system.
        TestFault::El2Undefined => unsafe { core::arch::asm!("udf #0xdead", options(nostack)) },
    }
}

/// What one interrupt exception brought, after every pending interrupt was acknowledged and
/// ended.
#[derive(Clone, Copy, Debug, Default)]
pub struct Taken {
    /// The stop SGI: the system is stopping (or a stale request).
    pub stop: bool,
    /// This pCPU's periodic tick (the next one is already armed).
    pub tick: bool,
    /// Another pCPU asked this one to run its scheduler.
    pub reschedule: bool,
    /// The virtual timer of the vCPU running here fired.
    pub virtual_timer: bool,
    /// Console input arrived (and is in the console's input ring).
    pub console_input: bool,
    /// Passed-through SPIs that fired (bit n: INTID 32 + n), left active for their guests.
    pub passthrough: u64,
}

/// Enables passed-through SPI `intid`, routed to this CPU, or disables and deactivates it.
pub fn passthrough_line(intid: u32, enable: bool) {
    let Some(gic) = GIC.get() else { return };
    if enable {
        gic::enable_spi(&gic.dist, intid, cpu::mpidr());
    } else {
        gic::disable_spi(&gic.dist, intid);
    }
}

/// Takes console input on the UART's interrupt `intid` (an SPI), routed to this CPU.
pub fn enable_console_input(intid: u32) {
    let Some(gic) = GIC.get() else { return };
    UART_INTID.store(u64::from(intid), Ordering::Relaxed);
    gic::enable_spi(&gic.dist, intid, cpu::mpidr());
    crate::platform::console::enable_input();
}

/// IRQ at EL2: acknowledges and ends every pending interrupt, counting ticks and test SGIs, and
/// says what the rest of the core must do about them. Nothing before the GIC is up.
pub fn take_interrupts() -> Taken {
    let mut taken = Taken::default();
    if !GIC_READY.load(Ordering::Acquire) {
        return taken;
    }
    loop {
        let intid = gic::acknowledge();
        if intid >= gic::SPURIOUS {
            break;
        }
        let this = percpu::this();
        match intid {
            SGI_STOP => taken.stop = true,
            SGI_TEST => {
                this.test_sgis.fetch_add(1, Ordering::AcqRel);
            }
            SGI_RESCHEDULE => taken.reschedule = true,
            VIRTUAL_TIMER_PPI => {
                // The line is level-triggered: masked before its end, or it is taken again at
                // once and this loop never ends. The guest unmasks it when it next programs it.
                super::guest::mask_virtual_timer();
                taken.virtual_timer = true;
            }
            _ if u64::from(intid) == UART_INTID.load(Ordering::Relaxed) => {
                // Level-triggered until the FIFO is drained: drained before its end.
                taken.console_input |= crate::platform::console::receive();
            }
            _ if u64::from(intid) == TIMER_INTID.load(Ordering::Relaxed) => {
                arm_next_tick(this);
                this.ticks.fetch_add(1, Ordering::AcqRel);
                taken.tick = true;
            }
            _ if crate::event::virq::owner(intid).is_some() => {
                gic::priority_drop(intid);
                taken.passthrough |= 1 << (intid - 32);
                continue;
            }
            _ => log::warn!("unexpected interrupt {intid}"),
        }
        gic::end_of_interrupt(intid);
    }
    taken
}

/// Schedules this pCPU's next periodic tick one interval from now and arms the timer for it.
fn arm_next_tick(this: &percpu::PerCpu) {
    let next = cpu::counter().saturating_add(TICK_INTERVAL.load(Ordering::Relaxed));
    this.next_tick.store(next, Ordering::Relaxed);
    timer::arm_at(next);
}

/// Makes this pCPU's timer fire within `nanoseconds` (never sooner than 100 us), or at its next
/// periodic tick if that comes first: a deadline never moves the tick later.
pub fn timer_deadline_in(nanoseconds: u64) {
    let frequency = cpu::counter_frequency().max(1);
    let ticks =
        (u128::from(nanoseconds.max(100_000)) * u128::from(frequency) / 1_000_000_000) as u64;
    let next_tick = percpu::this().next_tick.load(Ordering::Relaxed);
    timer::arm_at(cpu::counter().saturating_add(ticks).min(next_tick));
}

/// Asks pCPU `index` to run its scheduler now.
pub fn kick(index: usize) {
    if let Some(this) = CPUS.get(index) {
        if this.online.load(Ordering::Acquire) {
            gic::send_sgi(this.mpidr.load(Ordering::Relaxed), SGI_RESCHEDULE);
        }
    }
}

/// Logs how many timer interrupts each online CPU has taken (the heartbeat).
pub fn log_tick_counts() {
    let mut counts = [0u64; MAX_CPUS];
    let mut online = 0;
    for (_, this) in percpu::online() {
        counts[online] = this.ticks.load(Ordering::Relaxed);
        online += 1;
    }
    log::info!("heartbeat: timer ticks per CPU {:?}", &counts[..online]);
}

/// Asks every other online CPU to stop, and waits briefly for them to say so.
pub fn stop_other_cpus() {
    if !GIC_READY.load(Ordering::Acquire) {
        return;
    }
    let me = cpu::current_index();
    for (_, this) in percpu::online().filter(|&(index, _)| index != me) {
        gic::send_sgi(this.mpidr.load(Ordering::Relaxed), SGI_STOP);
    }
    // Give them a tenth of a second to print; they halt whether or not we wait.
    cpu::wait_until(100, || false);
}
