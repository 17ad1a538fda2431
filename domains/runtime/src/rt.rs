//! From `_start` to the domain's `main`, and the ways out: power-off, crash, panic.

use xenolith_abi::xen::sched::{SCHEDOP_shutdown, SHUTDOWN_crash, SHUTDOWN_poweroff};

use crate::{arch, console, hypercall, StartInfo};

#[global_allocator]
static HEAP: crate::heap::Heap = crate::heap::Heap::empty();

/// The least heap a domain gets; it gets half of the RAM between its image and its DTB if that is
/// more (the other half stays untouched, see [`free_memory`]).
const MIN_HEAP_SIZE: u64 = 1 << 20;

/// Where free RAM starts and ends: after the heap, before the DTB (or the initial ramdisk).
static FREE_MEMORY: spin_free::Range = spin_free::Range::new();

mod spin_free {
    use core::sync::atomic::{AtomicU64, Ordering};

    pub struct Range(AtomicU64, AtomicU64);

    impl Range {
        pub const fn new() -> Self {
            Self(AtomicU64::new(0), AtomicU64::new(0))
        }
        pub fn set(&self, start: u64, end: u64) {
            self.0.store(start, Ordering::Relaxed);
            self.1.store(end, Ordering::Relaxed);
        }
        pub fn get(&self) -> (u64, u64) {
            (self.0.load(Ordering::Relaxed), self.1.load(Ordering::Relaxed))
        }
    }
}

/// The domain's RAM nobody has used yet: from the end of the heap to the DTB.
pub fn free_memory() -> (u64, u64) {
    FREE_MEMORY.get()
}

unsafe extern "Rust" {
    /// Defined by `entry!` in the domain binary.
    fn __xenolith_domain_main(info: &StartInfo);
}

/// The virtual counter when the runtime's first Rust code ran (a few instructions after entry).
static STARTED_AT: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);

/// The virtual counter value at the domain's start.
pub fn started_at() -> u64 {
    STARTED_AT.load(core::sync::atomic::Ordering::Relaxed)
}

#[no_mangle]
extern "C" fn runtime_start(dtb_address: u64) -> ! {
    let now: u64;
    // SAFETY: reading the virtual counter has no side effect.
    unsafe { core::arch::asm!("mrs {0}, cntvct_el0", out(reg) now, options(nomem, nostack)) };
    STARTED_AT.store(now, core::sync::atomic::Ordering::Relaxed);
    arch::enable_mmu();
    console::init_log(log::LevelFilter::Info);
    // SAFETY: the core passes the address of the domain's DTB in x0; its header's total size
    // (checked by the parser) bounds what is read. Read-only, and nothing writes the DTB.
    let header = unsafe { core::ptr::read_volatile(dtb_address as *const [u8; 8]) };
    let size = u32::from_be_bytes([header[4], header[5], header[6], header[7]]).min(1 << 20);
    // SAFETY: as above; `size` is capped at 1 MiB and the core places the DTB inside this
    // domain's RAM, which is identity-mapped.
    let dtb = unsafe { core::slice::from_raw_parts(dtb_address as *const u8, size as usize) };
    let info = match StartInfo::parse(dtb, dtb_address) {
        Ok(info) => info,
        Err(error) => {
            log::error!("{error}");
            crash();
        }
    };
    let heap_start = arch::image_end().next_multiple_of(4096);
    let (bank_start, bank_size) = info.first_bank();
    // Free RAM ends at the DTB, or at the initial ramdisk if that comes first after the image
    // (Xen may place a domU's ramdisk below its image).
    let initrd = info.initrd.map(|(start, _)| start).filter(|&start| start >= heap_start);
    let limit = dtb_address.min(initrd.unwrap_or(u64::MAX));
    let room = limit.min(bank_start + bank_size).saturating_sub(heap_start);
    let heap_size = (room / 2 / 4096 * 4096).max(MIN_HEAP_SIZE);
    if heap_start + heap_size > bank_start + bank_size || heap_start + heap_size > limit {
        log::error!("no room for a {heap_size}-byte heap between the image and the DTB or ramdisk");
        crash();
    }
    // SAFETY: [heap_start, +heap_size) is RAM of this domain above its image and below its DTB
    // and ramdisk (checked above), used by nothing else, identity-mapped as normal memory.
    unsafe { HEAP.init(heap_start as *mut u8, heap_size as usize) };
    FREE_MEMORY.set(heap_start + heap_size, limit);
    // SAFETY: `entry!` defines this symbol with exactly this signature.
    unsafe { __xenolith_domain_main(&info) };
    power_off()
}

/// Shuts this domain down with `reason`.
fn shutdown(reason: u32) -> ! {
    let reason_block = reason;
    loop {
        hypercall::sched_op(SCHEDOP_shutdown, (&raw const reason_block) as u64);
    }
}

/// Powers this domain off (`SCHEDOP_shutdown`, `SHUTDOWN_poweroff`).
pub fn power_off() -> ! {
    shutdown(SHUTDOWN_poweroff)
}

/// Crashes this domain (`SCHEDOP_shutdown`, `SHUTDOWN_crash`).
pub fn crash() -> ! {
    shutdown(SHUTDOWN_crash)
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    match info.location() {
        Some(location) => console::print(format_args!(
            "domain panic: {} at {}:{}\n",
            info.message(),
            location.file(),
            location.line()
        )),
        None => console::print(format_args!("domain panic: {}\n", info.message())),
    }
    crash()
}
