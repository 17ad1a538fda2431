//! The aarch64 boot flow: from `_start` to "ready" on the boot CPU, and from PSCI CPU_ON to idle
//! on the others; interrupt dispatch; stopping CPUs.
//!
//! # Invariants
//! - The boot CPU sets up everything shared (console, memory, tables, distributor) before it
//!   starts any other CPU; a secondary only sets up its own redistributor, timer and stack.
//! - The stop SGI is taken by every CPU whatever it is doing, as long as IRQs are unmasked.

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use spin::Once;
use xenolith_kernel::cmdline::{Console, TestFault};
use xenolith_kernel::frame::Region;
use xenolith_kernel::platform::{Platform, PsciMethod, MAX_CPUS};

use super::entry::{self, SecondaryBoot};
use super::{cpu, gic, mmu, psci, timer};
use crate::percpu::{self, CPUS};
use crate::setup::{self, BootConfig, ImageLayout};
use crate::{console, memory, panic};

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
/// Heartbeat period in nanoseconds (0: off).
static HEARTBEAT_NS: AtomicU64 = AtomicU64::new(0);
/// When the last heartbeat line was printed.
static LAST_HEARTBEAT_NS: AtomicU64 = AtomicU64::new(0);
/// The interrupt controller is up; interrupt dispatch may run.
static GIC_READY: AtomicBool = AtomicBool::new(false);

struct Shared {
    redist: xenolith_kernel::frame::RegionList,
    redist_stride: Option<u64>,
}
static SHARED: Once<Shared> = Once::new();

fn image_layout() -> ImageLayout {
    // Only the addresses of these linker-script symbols are taken, never their contents.
    let (start, text_end, rodata_end, end) = {
        (
            &raw const entry::__image_start as u64,
            &raw const entry::__text_end as u64,
            &raw const entry::__rodata_end as u64,
            &raw const entry::__image_end as u64,
        )
    };
    ImageLayout {
        text: Region { start, end: text_end },
        rodata: Region { start: text_end, end: rodata_end },
        data: Region { start: rodata_end, end },
    }
}

/// The boot CPU's Rust entry, from `_start`, with the DTB's physical address.
#[no_mangle]
extern "C" fn primary_main(dtb_address: u64) -> ! {
    cpu::set_current_index(0);
    crate::heap::init();
    let boot_stack_top = (&raw const entry::BOOT_STACK) as u64 + entry::BOOT_STACK_SIZE as u64;
    entry::STACK_TOPS[0].store(boot_stack_top, Ordering::Relaxed);
    // HCR_EL2: RW (EL1 is AArch64), and route IRQ/FIQ/SError to EL2 so the core takes its own
    // interrupts while it runs at EL2.
    cpu::write_sysreg!("hcr_el2", (1 << 31) | (1 << 5) | (1 << 4) | (1 << 3));
    timer::init_cpu();

    // The DTB's header gives its size; nothing else is read before the parser checks it.
    // SAFETY: the boot protocol puts a DTB at `dtb_address` in RAM (x0); reading its 8-byte
    // header (magic and big-endian total size) stays within any valid DTB.
    let header = unsafe { core::ptr::read_volatile(dtb_address as *const [u8; 8]) };
    let total = u32::from_be_bytes([header[4], header[5], header[6], header[7]]) as usize;
    if dtb_address == 0 || header[..4] != [0xd0, 0x0d, 0xfe, 0xed] || total > 2 << 20 {
        cpu::halt(); // No DTB: no console either. Documented in docs/architecture.md.
    }
    // SAFETY: checked above: a DTB magic and a total size of at most 2 MiB at a RAM address the
    // bootloader reserved for it; the slice is only read.
    let dtb: &'static [u8] =
        unsafe { core::slice::from_raw_parts(dtb_address as *const u8, total) };
    let platform = match Platform::parse(dtb, dtb_address) {
        Ok(platform) => platform,
        Err(_) => cpu::halt(), // As above: without a usable DTB there is no console.
    };
    let config = BootConfig::read(&platform);
    if config.params.console == Console::Dtuart {
        if let Ok(uart) = platform.uart(config.params.dtuart) {
            console::init(uart.base);
        }
    }
    console::init_log(config.params.loglvl.to_level_filter());
    panic::set_on_panic(config.params.on_panic);
    boot(&platform, &config)
}

fn boot(platform: &Platform<'static>, config: &BootConfig<'static>) -> ! {
    console::print(format_args!(
        "\n Xenolith {} (aarch64) - a Xen-compatible hypervisor with a small trusted core\n\n",
        env!("CARGO_PKG_VERSION")
    ));
    log::info!(
        "booted at EL{} on MPIDR {:#x}; counter at {} Hz",
        cpu::current_el(),
        cpu::mpidr(),
        cpu::counter_frequency()
    );
    config.report_diagnostics();
    log::info!("command line: {:?}", config.params);
    if let Some(error) = config.module_error {
        panic!("boot bundle refused: {error}");
    }
    match &config.bundle {
        None => log::warn!("no boot bundle (initrd): no system manifest, no domains to build"),
        Some(Err(error)) => panic!("boot bundle refused: {error}"),
        Some(Ok(bundle)) => log::info!(
            "boot bundle: system {:?}, {} bytes, checksum {:#010x} ok",
            bundle.manifest.name,
            bundle.payload.len(),
            bundle.header.payload_crc32.get()
        ),
    }

    // Memory.
    let layout = image_layout();
    for bank in platform.ram.iter() {
        log::info!(
            "RAM      {:#012x}-{:#012x} ({} MiB)",
            bank.start,
            bank.end,
            (bank.end - bank.start) >> 20
        );
    }
    let reserved = setup::reserved_regions(platform, layout.whole());
    for region in reserved.iter() {
        log::info!("reserved {:#012x}-{:#012x}", region.start, region.end);
    }
    match memory::init(platform.ram.as_slice(), reserved.as_slice()) {
        Ok(bitmap) => log::debug!("frame bitmap at {:#x}-{:#x}", bitmap.start, bitmap.end),
        Err(error) => panic!("cannot start the frame allocator: {error}"),
    }
    let (total, free) = memory::frame_counts();
    log::info!(
        "memory: {} MiB usable, {} MiB free ({} of {} frames)",
        total >> 8,
        free >> 8,
        free,
        total
    );

    // The core's own address space.
    let mut devices = xenolith_kernel::frame::RegionList::new();
    let uart = platform.uart(config.params.dtuart).ok();
    let mut add_device = |region: Region| {
        if devices.push(region).is_err() {
            panic!("too many device regions");
        }
    };
    if let Some(uart) = uart {
        add_device(Region { start: uart.base, end: uart.base + uart.size });
    }
    add_device(platform.gic.dist);
    for region in platform.gic.redist.iter() {
        add_device(*region);
    }
    let wx_hook = cfg!(feature = "test-hooks") && config.params.test_wx_mapping;
    if config.params.test_wx_mapping && !wx_hook {
        log::warn!("test_wx_mapping ignored: this build has no test hooks");
    }
    let space = match setup::build_address_space(
        &layout,
        platform.ram.as_slice(),
        devices.as_slice(),
        wx_hook,
    ) {
        Ok(space) => space,
        Err(error) => panic!("cannot build the core's page tables: {error}"),
    };
    setup::check_writable_xor_executable(&space);
    // SAFETY: `space` identity-maps the image, all RAM (stacks, per-CPU data, tables, bitmap) and
    // the console and GIC devices; its tables are frames the allocator never hands out again.
    unsafe { mmu::enable(space.root()) };
    log::info!(
        "EL2 MMU on: text RX, rodata R, data and RAM RW+XN, devices nGnRE; SCTLR_EL2.WXN set"
    );

    // Interrupts and time.
    let gic_lines =
        gic::init_distributor(&platform.gic.dist).unwrap_or_else(|error| panic!("{error}"));
    SHARED.call_once(|| Shared {
        redist: platform.gic.redist,
        redist_stride: platform.gic.redist_stride,
    });
    TIMER_INTID.store(u64::from(platform.timer.hyp), Ordering::Relaxed);
    let frequency = cpu::counter_frequency().max(1);
    TICK_INTERVAL.store(frequency / TICK_HZ, Ordering::Relaxed);
    HEARTBEAT_NS.store(u64::from(config.params.heartbeat) * 1_000_000_000, Ordering::Relaxed);
    LAST_HEARTBEAT_NS.store(crate::schedule::now(), Ordering::Relaxed);
    log::info!(
        "GICv3: distributor at {:#x} with {gic_lines} interrupt lines; timer PPI {}",
        platform.gic.dist.start,
        platform.timer.hyp
    );
    start_this_cpu(0);

    // The other CPUs.
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
    let wanted = config
        .params
        .maxcpus
        .map_or(platform.cpu_count(), |max| (max as usize).min(platform.cpu_count()));
    let me = cpu::mpidr();
    let mut next_index = 1;
    for cpu_entry in platform.cpus.iter().filter(|entry| entry.mpidr != me) {
        if next_index >= wanted {
            log::info!("CPU MPIDR {:#x} left offline (maxcpus={wanted})", cpu_entry.mpidr);
            continue;
        }
        start_secondary(next_index, cpu_entry.mpidr, space.root(), psci.cpu_on);
        next_index += 1;
    }
    log::info!("{} of {} CPUs online", percpu::online_count(), platform.cpu_count());

    self_test_sgis();
    self_test_timers();

    if let Some(fault) = config.params.test_fault {
        trigger_test_fault(fault);
    }

    let ready = cpu::counter();
    log::info!(
        "Xenolith ready: {} CPUs, {} MiB free, {} KiB heap used, boot took {} us (counter {ready})",
        percpu::online_count(),
        memory::frame_counts().1 >> 8,
        crate::heap::usage().0 / 1024,
        ready * 1_000_000 / frequency
    );
    {
        // The timer interrupt takes the scheduler, domain and heap locks on this pCPU too:
        // everything that holds them here runs with interrupts masked.
        let _masked = cpu::IrqGuard::new();
        crate::schedule::init(config.params.sched, percpu::online_count());
        if let Some(Ok(bundle)) = &config.bundle {
            crate::domain::keep_boot_bundle(bundle.clone());
            crate::domain::build_boot_domains(bundle);
        }
    }
    idle()
}

/// Brings the calling CPU's interrupt controller and timer up and marks it online.
fn start_this_cpu(index: usize) {
    let shared = SHARED.get().expect("distributor initialised before any CPU starts");
    let mpidr = cpu::mpidr();
    let redistributor =
        gic::find_redistributor(shared.redist.as_slice(), shared.redist_stride, mpidr)
            .unwrap_or_else(|error| panic!("{error}"));
    gic::init_cpu(redistributor).unwrap_or_else(|error| panic!("{error}"));
    gic::enable_private(redistributor, SGI_STOP);
    gic::enable_private(redistributor, SGI_TEST);
    gic::enable_private(redistributor, SGI_RESCHEDULE);
    gic::enable_private(redistributor, VIRTUAL_TIMER_PPI);
    super::guest::init_cpu();
    gic::enable_private(redistributor, TIMER_INTID.load(Ordering::Relaxed) as u32);
    let this = &CPUS[index];
    this.mpidr.store(mpidr, Ordering::Relaxed);
    this.redistributor.store(redistributor, Ordering::Relaxed);
    GIC_READY.store(true, Ordering::Release);
    timer::init_cpu();
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
    let deadline = cpu::counter() + cpu::counter_frequency();
    while !CPUS[index].online.load(Ordering::Acquire) {
        if cpu::counter() > deadline {
            log::error!("CPU{index} (MPIDR {mpidr:#x}) did not come online within a second");
            return;
        }
        core::hint::spin_loop();
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

fn idle() -> ! {
    // SAFETY: idle_loop abandons this stack (it restarts at the stack's top); every caller is a
    // `-> !` entry function that holds no lock or guard at this point.
    unsafe { entry::idle_loop() }
}

/// Waits up to `seconds` for `done`.
/// Waits up to `seconds` for `done`, sleeping in WFI between looks (this CPU's own timer tick,
/// or the interrupt being waited for, wakes it): a spinning boot CPU can starve the others under
/// single-threaded emulation (QEMU `-icount`), and wastes power on hardware.
fn wait_until(seconds: u64, mut done: impl FnMut() -> bool) -> bool {
    let deadline = cpu::counter() + seconds * cpu::counter_frequency();
    while cpu::counter() < deadline {
        if done() {
            return true;
        }
        cpu::wait_for_interrupt();
    }
    done()
}

/// Sends a test SGI to every online CPU, this one included, and checks each arrives.
fn self_test_sgis() {
    for (index, this) in CPUS.iter().enumerate() {
        if !this.online.load(Ordering::Acquire) {
            continue;
        }
        let before = this.test_sgis.load(Ordering::Acquire);
        gic::send_sgi(this.mpidr.load(Ordering::Relaxed), SGI_TEST);
        if !wait_until(1, || this.test_sgis.load(Ordering::Acquire) > before) {
            panic!("SGI self-test failed: CPU{index} did not take SGI {SGI_TEST} within a second");
        }
    }
    log::info!("SGI self-test passed: {} CPUs each took SGI {SGI_TEST}", percpu::online_count());
}

/// Checks every online CPU takes timer interrupts.
fn self_test_timers() {
    for (index, this) in CPUS.iter().enumerate() {
        if !this.online.load(Ordering::Acquire) {
            continue;
        }
        let before = this.ticks.load(Ordering::Acquire);
        if !wait_until(2, || this.ticks.load(Ordering::Acquire) >= before + 2) {
            panic!("timer self-test failed: CPU{index} took no timer interrupts");
        }
    }
    log::info!("timer: every online CPU ticking at {TICK_HZ} Hz on the EL2 physical timer");
}

fn trigger_test_fault(fault: TestFault) {
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

/// IRQ at EL2: acknowledge, dispatch, end.
pub fn handle_interrupt(frame: &mut super::entry::TrapFrame) {
    if !GIC_READY.load(Ordering::Acquire) {
        return;
    }
    let mut ticked = false;
    let mut kicked = false;
    let mut virtual_timer = false;
    loop {
        let intid = gic::acknowledge();
        if intid >= gic::SPURIOUS {
            break;
        }
        let this = percpu::this();
        match intid {
            SGI_STOP => {
                gic::end_of_interrupt(intid);
                if panic::stopping() {
                    console::print(format_args!("(XEN) CPU{} stopped\n", cpu::current_index()));
                    cpu::halt();
                }
                continue;
            }
            SGI_TEST => {
                this.test_sgis.fetch_add(1, Ordering::AcqRel);
            }
            SGI_RESCHEDULE => kicked = true,
            VIRTUAL_TIMER_PPI => virtual_timer = true,
            _ if u64::from(intid) == TIMER_INTID.load(Ordering::Relaxed) => {
                arm_next_tick(this);
                this.ticks.fetch_add(1, Ordering::AcqRel);
                ticked = true;
                let period = HEARTBEAT_NS.load(Ordering::Relaxed);
                let now = crate::schedule::now();
                let last = LAST_HEARTBEAT_NS.load(Ordering::Relaxed);
                if cpu::current_index() == 0 && period != 0 && now >= last + period {
                    LAST_HEARTBEAT_NS.store(now, Ordering::Relaxed);
                    heartbeat_line(now - last);
                }
            }
            _ => log::warn!("unexpected interrupt {intid}"),
        }
        gic::end_of_interrupt(intid);
    }
    if virtual_timer || !(ticked || kicked) {
        crate::schedule::interrupt_return(virtual_timer);
    }
    if ticked {
        crate::schedule::tick(frame);
    } else if kicked {
        crate::schedule::reschedule(frame);
    }
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

fn heartbeat_line(elapsed_ns: u64) {
    let mut counts = [0u64; MAX_CPUS];
    let mut online = 0;
    for this in CPUS.iter().filter(|this| this.online.load(Ordering::Acquire)) {
        counts[online] = this.ticks.load(Ordering::Relaxed);
        online += 1;
    }
    log::info!("heartbeat: timer ticks per CPU {:?}", &counts[..online]);
    crate::schedule::report_shares(elapsed_ns);
}

/// Asks every other online CPU to stop, and waits briefly for them to say so.
pub fn stop_other_cpus() {
    if !GIC_READY.load(Ordering::Acquire) {
        return;
    }
    let me = cpu::current_index();
    for (index, this) in CPUS.iter().enumerate() {
        if index != me && this.online.load(Ordering::Acquire) {
            gic::send_sgi(this.mpidr.load(Ordering::Relaxed), SGI_STOP);
        }
    }
    // Give them time to print; they halt whether or not we wait.
    let deadline = cpu::counter() + cpu::counter_frequency() / 10;
    while cpu::counter() < deadline {
        core::hint::spin_loop();
    }
}
