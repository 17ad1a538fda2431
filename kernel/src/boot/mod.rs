//! Booting the core on the boot CPU: from the bootloader's hand-over to "ready", then the boot
//! domains. Every step is in the order it must happen, generic over the architecture (the
//! hardware steps are `arch::boot`'s).
//!
//! # Invariants
//! - Nothing from the bootloader (DTB, boot module, command line) is used before it is checked.
//! - The boot CPU sets up everything shared (console, memory, tables, interrupt controller) before
//!   it starts any other CPU; a secondary only sets up its own interrupt controller, timer and
//!   stack (`arch::boot::secondary_main`).
//! - Without a usable DTB there is no console either: the core halts silently
//!   (docs/architecture.md says so).

mod config;

use alloc::vec::Vec;

use xenolith_kernel::mm::frame::Region;
use xenolith_kernel::platform::cmdline::Console;
use xenolith_kernel::platform::Platform;

use crate::arch::{self, cpu, percpu};
use crate::mm::core_space;
use crate::platform::{console, panic};
use config::BootConfig;

/// The boot CPU's Rust entry, called by the arch layer's `_start` with the DTB's physical
/// address.
#[no_mangle]
extern "C" fn primary_main(dtb_address: u64) -> ! {
    arch::boot::init_boot_cpu();
    crate::mm::heap::init();
    // The DTB's header gives its size; nothing else is read before the parser checks it.
    let Some(dtb) = arch::boot::boot_dtb(dtb_address) else { cpu::halt() };
    // As above: without a usable DTB there is no console.
    let Ok(platform) = Platform::parse(dtb, dtb_address) else { cpu::halt() };
    let config = BootConfig::read(&platform);
    let uart = platform.uart(config.params.dtuart).ok();
    if let Some(uart) = uart.filter(|_| config.params.console == Console::Dtuart) {
        console::init(uart.start);
    }
    console::init_log(config.params.loglvl.to_level_filter());
    panic::set_on_panic(config.params.on_panic);
    boot(&platform, &config, uart)
}

/// Checks the boot domains' passed-through hardware against the machine and takes their DMA
/// windows out of the RAM the frame allocator hands out (Xen's `xen,static-mem`): a window must
/// be RAM nothing else uses, an `iomem` range no RAM and none of the core's devices, an SPI not
/// the console's. The manifest check did the rest (`Passthrough::check`, `shares`).
fn reserve_hardware(
    bundle: &xenolith_abi::bundle::Bundle<'_>,
    platform: &Platform<'_>,
    config: &BootConfig<'_>,
    reserved: &mut xenolith_kernel::mm::frame::RegionList,
) {
    let clash = |regions: &[Region], bytes: &core::ops::Range<u64>| {
        regions.iter().any(|region| region.start < bytes.end && bytes.start < region.end)
    };
    let console = platform.uart(config.params.dtuart).ok();
    let ram_and_devices = platform.ram.iter().chain(platform.gic.redist.iter()).copied();
    let core: Vec<Region> = ram_and_devices.chain([platform.gic.dist]).chain(console).collect();
    let console_spi = platform.uart_interrupt(config.params.dtuart);
    for domain in bundle.manifest.domains.iter().filter(|domain| domain.boot) {
        let hardware = &domain.passthrough;
        let window = hardware.direct_map.and_then(|window| window.bytes());
        let mut iomem = hardware.iomem.iter().filter_map(|range| range.bytes());
        let bad_window = window.as_ref().is_some_and(|bytes| {
            let in_ram = |bank: &Region| bank.start <= bytes.start && bytes.end <= bank.end;
            !platform.ram.iter().any(in_ram) || clash(reserved.as_slice(), bytes)
        });
        if bad_window
            || iomem.any(|bytes| clash(&core, &bytes))
            || hardware.irqs.iter().any(|&intid| Some(intid) == console_spi)
        {
            panic!("boot bundle refused: {}'s hardware is RAM in use or the core's", domain.name);
        }
        if let Some(bytes) = window {
            if reserved.push(Region::new(bytes.start, bytes.end)).is_err() {
                panic!("more reserved memory regions than the core can track");
            }
        }
    }
}

/// Boots with the console up (if there is one); `uart` is mapped for the console either way.
fn boot(platform: &Platform<'static>, config: &BootConfig<'static>, uart: Option<Region>) -> ! {
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
    let layout = arch::boot::image_layout();
    for bank in platform.ram.iter() {
        log::info!(
            "RAM      {:#012x}-{:#012x} ({} MiB)",
            bank.start,
            bank.end,
            (bank.end - bank.start) >> 20
        );
    }
    let mut reserved = core_space::reserved_regions(platform, layout.whole());
    if let Some(Ok(bundle)) = &config.bundle {
        reserve_hardware(bundle, platform, config, &mut reserved);
    }
    for region in reserved.iter() {
        log::info!("reserved {:#012x}-{:#012x}", region.start, region.end);
    }
    match crate::mm::memory::init(&platform.ram, reserved) {
        Ok(bitmap) => log::debug!("frame bitmap at {:#x}-{:#x}", bitmap.start, bitmap.end),
        Err(error) => panic!("cannot start the frame allocator: {error:?}"),
    }
    let (total, free) = crate::mm::memory::frame_counts();
    log::info!(
        "memory: {} MiB usable, {} MiB free ({} of {} frames)",
        total >> 8,
        free >> 8,
        free,
        total
    );

    // The core's own address space.
    let gic = [platform.gic.dist].into_iter().chain(platform.gic.redist.iter().copied());
    let rtc = platform.rtc();
    let devices: Vec<Region> = uart.into_iter().chain(gic).chain(rtc).collect();
    // Without the test hooks the command line refuses `test_wx_mapping`; the build says so too.
    let wx_hook = cfg!(feature = "test-hooks") && config.params.test_wx_mapping;
    let space =
        core_space::build_address_space(&layout, platform.ram.as_slice(), &devices, wx_hook)
            .unwrap_or_else(|error| panic!("cannot build the core's page tables: {error:?}"));
    core_space::check_writable_xor_executable(&space);
    // SAFETY: `space` identity-maps the image, all RAM (stacks, per-CPU data, tables, bitmap) and
    // the console and GIC devices; its tables are frames the allocator never hands out again.
    unsafe { arch::mmu::enable(space.root()) };
    log::info!(
        "EL2 MMU on: text RX, rodata R, data and RAM RW+XN, devices nGnRE; SCTLR_EL2.WXN set"
    );

    // Interrupts and time.
    crate::platform::wallclock::init(rtc, crate::sched::now());
    let gic_lines = arch::boot::init_interrupts(platform);
    if config.params.console == Console::Dtuart {
        match platform.uart_interrupt(config.params.dtuart) {
            Some(intid) => arch::boot::enable_console_input(intid),
            None => log::warn!("the console UART has no SPI in the DTB: no console input"),
        }
    }
    crate::trap::set_heartbeat(u64::from(config.params.heartbeat) * 1_000_000_000);
    log::info!(
        "GICv3: distributor at {:#x} with {gic_lines} interrupt lines; timer PPI {}",
        platform.gic.dist.start,
        platform.timer.hyp
    );
    arch::boot::start_this_cpu(0);

    // The other CPUs.
    let cpus = platform.cpus.len();
    let wanted = config.params.maxcpus.map_or(cpus, |max| (max as usize).min(cpus));
    arch::boot::start_other_cpus(platform, wanted, space.root());
    log::info!("{} of {cpus} CPUs online", percpu::online_count());

    arch::boot::self_test_sgis();
    arch::boot::self_test_timers();

    if let Some(fault) = config.params.test_fault {
        arch::boot::trigger_test_fault(fault);
    }
    if let Some(attempts) = config.params.test_guest_atomic_attempts {
        log::warn!("test hook: guest-shared words get {attempts} update attempts");
        xenolith_kernel::mm::guest_atomic::set_attempts(attempts);
    }

    let ready = cpu::counter();
    log::info!(
        "Xenolith ready: {} CPUs, {} MiB free, {} KiB heap used, boot took {} us (counter {ready})",
        percpu::online_count(),
        crate::mm::memory::frame_counts().1 >> 8,
        crate::mm::heap::used() / 1024,
        ready * 1_000_000 / cpu::counter_frequency().max(1)
    );
    {
        // The timer interrupt takes the scheduler, domain and heap locks on this pCPU too:
        // everything that holds them here runs with interrupts masked.
        let _masked = cpu::IrqGuard::new();
        crate::sched::init(config.params.sched, percpu::online_count());
        if let Some(Ok(bundle)) = &config.bundle {
            crate::domain::keep_boot_bundle(bundle.clone());
            crate::lifecycle::build_boot_domains(bundle);
        }
    }
    arch::boot::idle()
}
