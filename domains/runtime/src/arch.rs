//! aarch64 EL1 start-up: entry, exception vectors, the identity map.
//!
//! # Invariants
//! - `_start` runs with the MMU off; it enables FP/SIMD before any Rust code (which may use it).
//! - The identity map covers the first 4 GiB. 1-4 GiB (guest RAM0 and the windows above a
//!   domain's RAM) is normal cacheable memory, in 1 GiB blocks. The first GiB is mapped in 2 MiB
//!   blocks: device memory (the GIC, the PL011 and every other emulated device live there),
//!   except [`NORMAL_IN_FIRST_GIB`], which holds memory, not devices: Xen's magic pages (the
//!   xenstore ring page, which the xenstore server reads and writes with ordinary cached
//!   accesses, as Linux maps it) and Xenolith's preserved region.
//! - [`is_normal`] answers from the same table [`enable_mmu`] builds.

use core::arch::{asm, global_asm};

use xenolith_abi::xen::arch_arm;

global_asm!(
    r#"
    // The arm64 Linux image header (Documentation/arch/arm64/booting.rst, which Xen on Arm
    // follows: xen/arch/arm/kernel.c), so the binary flattened from this ELF (`objcopy -O
    // binary`, `xenolith_images::arm64_image`) boots as an `Image` where only those load: on Xen.
    // text_offset 0 puts it at the start of RAM, where the ELF is linked.
    .section .text.head, "ax"
    b       _start                      // code0
    .word   0                           // code1
    .quad   0                           // text_offset
    .quad   __image_size                // image_size, .bss included (xenolith-domain.ld)
    .quad   0x2                         // flags: little-endian, 4 KiB pages, 2 MiB aligned base
    .quad   0, 0, 0                     // res2-res4
    .word   0x644d5241                  // magic "ARM\x64"
    .word   0                           // res5 (no PE header)

    .section .text.entry, "ax"
    .global _start
_start:
    mov     x19, x0                     // DTB address
    mrs     x1, cpacr_el1
    orr     x1, x1, #(3 << 20)          // FPEN: no FP/SIMD traps at EL1/EL0
    msr     cpacr_el1, x1
    isb
    ldr     x1, =__bss_start
    ldr     x2, =__bss_end
1:  cmp     x1, x2
    b.hs    2f
    stp     xzr, xzr, [x1], #16
    b       1b
2:  ldr     x1, =DOMAIN_BOOT_STACK
    add     x1, x1, #{stack_size}
    mov     sp, x1
    ldr     x1, =domain_vectors
    msr     vbar_el1, x1
    isb
    mov     x0, x19
    bl      runtime_start
3:  wfi
    b       3b

    .macro DVECTOR kind
    .balign 0x80
    mov     x0, #\kind
    mrs     x1, esr_el1
    mrs     x2, elr_el1
    mrs     x3, far_el1
    b       domain_exception
    .endm

    .macro IRQVECTOR
    .balign 0x80
    b       domain_irq_entry
    .endm

    .section .text.vectors, "ax"
    .balign 0x800
    .global domain_vectors              // smp.rs's secondary entry uses it too
domain_vectors:
    DVECTOR 0
    DVECTOR 1
    DVECTOR 2
    DVECTOR 3
    DVECTOR 4
    IRQVECTOR
    DVECTOR 6
    DVECTOR 7
    DVECTOR 8
    DVECTOR 9
    DVECTOR 10
    DVECTOR 11
    DVECTOR 12
    DVECTOR 13
    DVECTOR 14
    DVECTOR 15

    // An IRQ at EL1h: save what a call may clobber (and ELR/SPSR, for nesting safety), let Rust
    // take the interrupt, restore, return.
domain_irq_entry:
    sub     sp, sp, #192
    stp     x0, x1, [sp, #0]
    stp     x2, x3, [sp, #16]
    stp     x4, x5, [sp, #32]
    stp     x6, x7, [sp, #48]
    stp     x8, x9, [sp, #64]
    stp     x10, x11, [sp, #80]
    stp     x12, x13, [sp, #96]
    stp     x14, x15, [sp, #112]
    stp     x16, x17, [sp, #128]
    stp     x18, x30, [sp, #144]
    mrs     x0, elr_el1
    mrs     x1, spsr_el1
    stp     x0, x1, [sp, #160]
    bl      domain_irq
    ldp     x0, x1, [sp, #160]
    msr     elr_el1, x0
    msr     spsr_el1, x1
    ldp     x0, x1, [sp, #0]
    ldp     x2, x3, [sp, #16]
    ldp     x4, x5, [sp, #32]
    ldp     x6, x7, [sp, #48]
    ldp     x8, x9, [sp, #64]
    ldp     x10, x11, [sp, #80]
    ldp     x12, x13, [sp, #96]
    ldp     x14, x15, [sp, #112]
    ldp     x16, x17, [sp, #128]
    ldp     x18, x30, [sp, #144]
    add     sp, sp, #192
    eret
    "#,
    stack_size = const STACK_SIZE,
);

const STACK_SIZE: usize = 64 * 1024;

#[repr(C, align(16))]
struct Stack([u8; STACK_SIZE]);

/// The boot vCPU's stack (named by `_start`).
#[no_mangle]
static mut DOMAIN_BOOT_STACK: Stack = Stack([0; STACK_SIZE]);

/// Any exception the domain takes is a crash: it has no interrupt handling yet.
#[no_mangle]
extern "C" fn domain_exception(kind: u64, esr: u64, elr: u64, far: u64) -> ! {
    log::error!("unexpected exception {kind} at EL1: ESR {esr:#x} ELR {elr:#x} FAR {far:#x}");
    crate::rt::crash()
}

#[repr(C, align(4096))]
struct Table([u64; 512]);

static mut LEVEL1: Table = Table([0; 512]);
/// The first GiB in 2 MiB blocks (level 2, entry `i` maps `i << 21`).
static mut LEVEL2_FIRST_GIB: Table = Table([0; 512]);

/// Block, AF, AttrIndx 0 (Device-nGnRE), PXN, UXN.
const DEVICE_BLOCK: u64 = 0b01 | (1 << 10) | (1 << 53) | (1 << 54);
/// Block, AF, AttrIndx 1 (Normal write-back), inner shareable, UXN.
const NORMAL_BLOCK: u64 = 0b01 | (1 << 10) | (1 << 2) | (0b11 << 8) | (1 << 54);
/// Table descriptor (the next-level table's address is ORed in).
const TABLE: u64 = 0b11;

const GIB: u64 = 1 << 30;
const LEVEL2_BLOCK: u64 = 1 << 21;

/// The ranges of the first GiB mapped as normal memory (2 MiB aligned): Xen's magic pages
/// (`xen/include/public/arch-arm.h` `GUEST_MAGIC_BASE`, 16 MiB: console, xenstore ring, ...) and
/// Xenolith's preserved region (`xenolith_abi::xen::arch_arm::PRESERVED_REGION_BASE`).
pub const NORMAL_IN_FIRST_GIB: [(u64, u64); 2] = [
    (arch_arm::GUEST_MAGIC_BASE, arch_arm::GUEST_MAGIC_SIZE),
    (arch_arm::PRESERVED_REGION_BASE, arch_arm::PRESERVED_REGION_SIZE),
];

const _: () = {
    let mut index = 0;
    while index < NORMAL_IN_FIRST_GIB.len() {
        let (base, size) = NORMAL_IN_FIRST_GIB[index];
        assert!(base % LEVEL2_BLOCK == 0 && size % LEVEL2_BLOCK == 0 && base + size <= GIB);
        index += 1;
    }
};

/// Whether `address` lies in normal (cacheable) memory of the identity map: 1-4 GiB, or one of
/// [`NORMAL_IN_FIRST_GIB`].
pub fn is_normal(address: u64) -> bool {
    (GIB..4 * GIB).contains(&address)
        || NORMAL_IN_FIRST_GIB.iter().any(|&(base, size)| (base..base + size).contains(&address))
}

/// Turns the EL1 MMU on with the identity map (see the module invariants).
pub fn enable_mmu() {
    // Only the addresses are taken; the tables are written through them before the MMU uses
    // them.
    let table = (&raw mut LEVEL1).cast::<u64>();
    let first_gib = (&raw mut LEVEL2_FIRST_GIB).cast::<u64>();
    for index in 0..512u64 {
        let address = index * LEVEL2_BLOCK;
        let block = if is_normal(address) { NORMAL_BLOCK } else { DEVICE_BLOCK };
        // SAFETY: index < 512 entries of the static table, which only this function writes. It
        // runs with this vCPU's MMU off, first on the boot vCPU, then on each secondary vCPU as
        // it starts (smp.rs); every run writes the same values, so a vCPU already translating
        // through the table never sees an entry change.
        unsafe { first_gib.wrapping_add(index as usize).write_volatile(address | block) };
    }
    // SAFETY: entry 0 of the static level-1 table, written as above. With the MMU off the
    // level-2 table's address is its physical address, which a table descriptor holds.
    unsafe { table.write_volatile(first_gib as u64 | TABLE) };
    for index in 1..4 {
        // SAFETY: index < 512 entries of the static table, as above.
        unsafe { table.wrapping_add(index).write_volatile(((index as u64) << 30) | NORMAL_BLOCK) };
    }
    let parange: u64;
    // SAFETY: reading an ID register has no side effect.
    unsafe { asm!("mrs {0}, id_aa64mmfr0_el1", out(reg) parange, options(nomem, nostack)) };
    let ips = (parange & 0xf).min(2);
    // TCR_EL1: T0SZ 25 (39 bits), IRGN0/ORGN0 write-back, SH0 inner, TG0 4 KiB, EPD1, IPS.
    let tcr = 25 | (1 << 8) | (1 << 10) | (0b11 << 12) | (1 << 23) | (ips << 32);
    let mair: u64 = 0x04 | (0xff << 8);
    // SCTLR_EL1: RES1 bits, M, C, SA, I.
    let sctlr: u64 = 0x30D0_0800 | 1 | (1 << 2) | (1 << 3) | (1 << 12);
    // SAFETY: the tables identity-map all code, data and stack of this domain (RAM, normal
    // memory: module invariant), so enabling translation does not move anything the CPU is
    // using.
    unsafe {
        asm!(
            "dsb sy",
            "msr mair_el1, {mair}",
            "msr tcr_el1, {tcr}",
            "msr ttbr0_el1, {table}",
            "isb",
            "tlbi vmalle1",
            "dsb nsh",
            "isb",
            "msr sctlr_el1, {sctlr}",
            "isb",
            mair = in(reg) mair,
            tcr = in(reg) tcr,
            table = in(reg) table as u64,
            sctlr = in(reg) sctlr,
            options(nostack)
        )
    };
}

/// Linker-script symbol: the end of the image (start of free RAM).
pub fn image_end() -> u64 {
    unsafe extern "C" {
        static __domain_end: u8;
    }
    // Only the address is taken.
    (&raw const __domain_end) as u64
}

/// Cleans and invalidates `[start, start + len)` to the point of coherency, for a vCPU that reads
/// it with caches off.
pub fn clean_to_coherency(start: u64, len: u64) {
    let mut line = start & !63;
    while line < start + len {
        // SAFETY: a cache maintenance operation changes no memory contents.
        unsafe { asm!("dc civac, {0}", in(reg) line, options(nostack)) };
        line += 64;
    }
    // SAFETY: a barrier only orders memory accesses.
    unsafe { asm!("dsb sy", options(nostack)) };
}

/// The virtual counter (CNTVCT_EL0, after an ISB so it is not read early), in nanoseconds: the
/// core's system time, which `SCHEDOP_poll` and timer deadlines use (the core sets no virtual
/// offset).
pub fn now_ns() -> u64 {
    let ticks: u64;
    // SAFETY: reading the virtual counter has no side effect; the ISB only orders it.
    unsafe { asm!("isb", "mrs {0}, cntvct_el0", out(reg) ticks, options(nomem, nostack)) };
    let frequency: u64;
    // SAFETY: reading CNTFRQ_EL0 has no side effect.
    unsafe { asm!("mrs {0}, cntfrq_el0", out(reg) frequency, options(nomem, nostack)) };
    (u128::from(ticks) * 1_000_000_000 / u128::from(frequency.max(1))) as u64
}
