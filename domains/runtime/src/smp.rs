//! Bringing up a domain's other vCPUs with PSCI CPU_ON (through `hvc #0`, the conduit Xen's
//! `psci` node names), each on its own stack, in the same address space.
//!
//! # Invariants
//! - A vCPU's boot record is written and cleaned to the point of coherency before CPU_ON: the new
//!   vCPU reads it with its MMU and caches still off.

use alloc::boxed::Box;
use core::arch::{asm, global_asm};

use crate::arch;

/// Most vCPUs a domain can bring up.
pub const MAX_VCPUS: usize = 8;
const STACK_SIZE: usize = 32 * 1024;
const PSCI_CPU_ON_64: u64 = 0xC400_0003;

/// What a starting vCPU reads with its MMU off.
#[repr(C)]
#[derive(Clone, Copy)]
struct BootRecord {
    stack_top: u64,
    entry: u64,
    index: u64,
}

#[no_mangle]
static mut VCPU_BOOT: [BootRecord; MAX_VCPUS] =
    [BootRecord { stack_top: 0, entry: 0, index: 0 }; MAX_VCPUS];

global_asm!(
    r#"
    .section .text, "ax"
    .global vcpu_secondary_start
vcpu_secondary_start:
    // x0: the vCPU index (PSCI context id). MMU off.
    mrs     x1, cpacr_el1
    orr     x1, x1, #(3 << 20)
    msr     cpacr_el1, x1
    isb
    ldr     x1, =VCPU_BOOT
    mov     x2, #24
    madd    x1, x0, x2, x1
    ldr     x2, [x1, #0]
    mov     sp, x2
    ldr     x1, =domain_vectors
    msr     vbar_el1, x1
    isb
    bl      vcpu_secondary_main
1:  wfi
    b       1b
    "#
);

unsafe extern "C" {
    fn vcpu_secondary_start();
}

#[no_mangle]
extern "C" fn vcpu_secondary_main(index: u64) -> ! {
    arch::enable_mmu();
    // Only the address is taken.
    let base = (&raw const VCPU_BOOT).cast::<BootRecord>();
    let slot = base.wrapping_add(index as usize);
    // SAFETY: index < MAX_VCPUS: `start_vcpu` only starts vCPUs with such an index, and wrote this
    // record before starting it; no other code writes it while the vCPU runs.
    let record = unsafe { slot.read_volatile() };
    // SAFETY: `start_vcpu` stored the address of an `fn(usize) -> !` here.
    let entry: fn(usize) -> ! =
        unsafe { core::mem::transmute::<u64, fn(usize) -> !>(record.entry) };
    entry(index as usize)
}

/// Why a vCPU did not start: PSCI's error code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StartError(pub i64);

/// Starts vCPU `index` (1..MAX_VCPUS) running `entry(index)` on a fresh stack.
pub fn start_vcpu(index: usize, entry: fn(usize) -> !) -> Result<(), StartError> {
    if index == 0 || index >= MAX_VCPUS {
        return Err(StartError(-2));
    }
    let stack: &'static mut [u8] = Box::leak(alloc::vec![0u8; STACK_SIZE].into_boxed_slice());
    let stack_top = (stack.as_ptr() as u64 + STACK_SIZE as u64) & !15;
    let record = BootRecord { stack_top, entry: entry as *const () as u64, index: index as u64 };
    // Only the address is taken.
    let slot = (&raw mut VCPU_BOOT).cast::<BootRecord>().wrapping_add(index);
    // SAFETY: index < MAX_VCPUS, so `slot` is inside the static array; the vCPU it belongs to is
    // not running (CPU_ON below starts it), so nothing else accesses it.
    unsafe { slot.write_volatile(record) };
    arch::clean_to_coherency(slot as u64, core::mem::size_of::<BootRecord>() as u64);
    // Xen's vCPU affinity: Aff0 = index & 0xf, Aff1 = index >> 4.
    let mpidr = (index as u64 & 0xf) | ((index as u64 >> 4) << 8);
    let result: i64;
    // SAFETY: PSCI CPU_ON through the hypervisor: it reads only the registers; x0-x3 may change.
    unsafe {
        asm!(
            "hvc #0",
            inout("x0") PSCI_CPU_ON_64 => result,
            inout("x1") mpidr => _,
            inout("x2") vcpu_secondary_start as *const () as u64 => _,
            inout("x3") index as u64 => _,
            options(nostack)
        )
    };
    if result == 0 {
        Ok(())
    } else {
        Err(StartError(result))
    }
}
