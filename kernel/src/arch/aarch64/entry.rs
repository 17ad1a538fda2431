//! Entry points in assembly: the arm64 `Image` header, the boot CPU's entry, secondary CPUs' entry
//! from PSCI CPU_ON, and the EL2 exception vector table.
//!
//! # Invariants
//! - The image runs at the address it is linked at (0x40200000); `_start` checks that and that it
//!   was entered at EL2, and otherwise parks the CPU: nothing can be printed yet.
//! - Every exception vector saves the full [`TrapFrame`] before calling Rust and restores
//!   ELR/SPSR from it afterwards, so a handler may redirect the return.
//! - The boot CPU runs on `BOOT_STACK` until it reaches Rust; secondaries get their stack from their
//!   [`SecondaryBoot`] record before anything else.

use core::arch::global_asm;

/// Registers saved on exception entry, in the order the vector code stores them.
#[repr(C)]
#[derive(Clone, Debug)]
pub struct TrapFrame {
    /// x0..x30.
    pub x: [u64; 31],
    /// ELR_EL2: where the exception returns to.
    pub elr: u64,
    /// SPSR_EL2: the interrupted PSTATE.
    pub spsr: u64,
    /// ESR_EL2: the syndrome.
    pub esr: u64,
    /// FAR_EL2: the faulting address, where the syndrome says it is valid.
    pub far: u64,
    /// The stack pointer before the exception.
    pub sp: u64,
}

/// Size of [`TrapFrame`]; the assembly below reserves exactly this.
const _: () = assert!(core::mem::size_of::<TrapFrame>() == 288);

/// What a secondary CPU needs before it can run Rust with the MMU on. The boot CPU fills it,
/// cleans it to the point of coherency (the secondary reads it with caches off), and passes its
/// physical address as the PSCI CPU_ON context id.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct SecondaryBoot {
    /// Initial stack pointer (top of this CPU's stack).
    pub stack_top: u64,
    /// MAIR_EL2.
    pub mair: u64,
    /// TCR_EL2.
    pub tcr: u64,
    /// TTBR0_EL2.
    pub ttbr0: u64,
    /// SCTLR_EL2 with the MMU on.
    pub sctlr: u64,
    /// The CPU's logical index, passed to `secondary_main`.
    pub cpu_index: u64,
}

global_asm!(
    r#"
    .section .text.head, "ax"
    .global _start
_start:
    // arm64 Image header (Linux Documentation/arch/arm64/booting.rst).
    b       primary_entry           // code0
    .long   0                       // code1
    .quad   0x200000                // text_offset: load at RAM base + 2 MiB
    .quad   __image_size            // image_size, including .bss
    .quad   0x2                     // flags: little-endian, 4 KiB pages, placed near RAM base
    .quad   0                       // res2
    .quad   0                       // res3
    .quad   0                       // res4
    .long   0x644d5241              // magic "ARM\x64"
    .long   0                       // res5

primary_entry:
    mov     x19, x0                 // DTB physical address
    mrs     x1, CurrentEL
    cmp     x1, #(2 << 2)
    b.ne    park
    adr     x1, _start
    ldr     x2, =_start
    cmp     x1, x2
    b.ne    park
    ldr     x1, =BOOT_STACK
    add     x1, x1, #{boot_stack_size}
    mov     sp, x1
    ldr     x1, =__bss_start
    ldr     x2, =__bss_end
1:  cmp     x1, x2
    b.hs    2f
    stp     xzr, xzr, [x1], #16
    b       1b
2:  ldr     x1, =exception_vectors
    msr     vbar_el2, x1
    isb
    mov     x0, x19
    bl      primary_main
park:
    wfe
    b       park

    .global secondary_entry
secondary_entry:
    // x0: physical address of this CPU's SecondaryBoot record. MMU and caches are off.
    ldr     x1, [x0, #0]
    mov     sp, x1
    ldr     x1, =exception_vectors
    msr     vbar_el2, x1
    ldr     x1, [x0, #8]
    msr     mair_el2, x1
    ldr     x1, [x0, #16]
    msr     tcr_el2, x1
    ldr     x1, [x0, #24]
    msr     ttbr0_el2, x1
    isb
    tlbi    alle2
    dsb     nsh
    isb
    ldr     x1, [x0, #32]
    msr     sctlr_el2, x1
    isb
    ldr     x0, [x0, #40]
    bl      secondary_main
    b       park

    // What an idle pCPU runs: back at the top of its own stack (so nothing accumulates there
    // across switches), interrupts on, waiting.
    .global idle_loop
idle_loop:
    mrs     x0, tpidr_el2
    ldr     x1, =STACK_TOPS
    ldr     x1, [x1, x0, lsl #3]
    mov     sp, x1
    msr     daifclr, #2
4:  wfi
    b       4b

    .macro VECTOR kind
    .balign 0x80
    sub     sp, sp, #288
    stp     x0, x1, [sp, #0]
    mov     x0, #\kind
    b       exception_common
    .endm

    .section .text.vectors, "ax"
    .balign 0x800
    .global exception_vectors
exception_vectors:
    // Sixteen slots: sync, IRQ, FIQ, SError from EL2t, EL2h, lower EL AArch64, lower EL AArch32.
    .irp kind, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15
    VECTOR \kind
    .endr

exception_common:
    stp     x2, x3, [sp, #16]
    stp     x4, x5, [sp, #32]
    stp     x6, x7, [sp, #48]
    stp     x8, x9, [sp, #64]
    stp     x10, x11, [sp, #80]
    stp     x12, x13, [sp, #96]
    stp     x14, x15, [sp, #112]
    stp     x16, x17, [sp, #128]
    stp     x18, x19, [sp, #144]
    stp     x20, x21, [sp, #160]
    stp     x22, x23, [sp, #176]
    stp     x24, x25, [sp, #192]
    stp     x26, x27, [sp, #208]
    stp     x28, x29, [sp, #224]
    mrs     x2, elr_el2
    stp     x30, x2, [sp, #240]
    mrs     x2, spsr_el2
    mrs     x3, esr_el2
    stp     x2, x3, [sp, #256]
    mrs     x2, far_el2
    add     x3, sp, #288
    stp     x2, x3, [sp, #272]
    mov     x1, sp
    bl      handle_exception
    ldp     x30, x2, [sp, #240]
    msr     elr_el2, x2
    ldr     x2, [sp, #256]
    msr     spsr_el2, x2
    ldp     x0, x1, [sp, #0]
    ldp     x2, x3, [sp, #16]
    ldp     x4, x5, [sp, #32]
    ldp     x6, x7, [sp, #48]
    ldp     x8, x9, [sp, #64]
    ldp     x10, x11, [sp, #80]
    ldp     x12, x13, [sp, #96]
    ldp     x14, x15, [sp, #112]
    ldp     x16, x17, [sp, #128]
    ldp     x18, x19, [sp, #144]
    ldp     x20, x21, [sp, #160]
    ldp     x22, x23, [sp, #176]
    ldp     x24, x25, [sp, #192]
    ldp     x26, x27, [sp, #208]
    ldp     x28, x29, [sp, #224]
    add     sp, sp, #288
    eret
    "#,
    boot_stack_size = const BOOT_STACK_SIZE,
);

/// Bytes of the boot CPU's stack.
pub const BOOT_STACK_SIZE: usize = 64 * 1024;

/// The boot CPU's stack, until and after it reaches Rust (it keeps it).
#[repr(C, align(16))]
pub struct Stack(pub [u8; BOOT_STACK_SIZE]);

/// Referenced by name from `_start`.
#[no_mangle]
pub static mut BOOT_STACK: Stack = Stack([0; BOOT_STACK_SIZE]);

/// The top of each pCPU's stack, by CPU index (read by `idle_loop`).
#[no_mangle]
pub static STACK_TOPS: [core::sync::atomic::AtomicU64; xenolith_kernel::platform::MAX_CPUS] =
    [const { core::sync::atomic::AtomicU64::new(0) }; xenolith_kernel::platform::MAX_CPUS];

unsafe extern "C" {
    /// The idle context: never returns; resets the stack to this pCPU's [`STACK_TOPS`] entry.
    pub fn idle_loop() -> !;
    /// Where PSCI CPU_ON starts a secondary CPU.
    pub fn secondary_entry();
    /// First byte of the loaded image (linker script).
    pub static __image_start: u8;
    /// End of code.
    pub static __text_end: u8;
    /// End of read-only data.
    pub static __rodata_end: u8;
    /// End of the image including .bss, page-aligned.
    pub static __image_end: u8;
}
