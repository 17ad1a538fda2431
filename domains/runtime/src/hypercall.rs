//! Hypercalls, Xen on Arm's way: `hvc #0xEA1`, the number in x16, arguments in x0-x4, the result
//! in x0 (`xen/include/public/arch-arm.h`, "Hypercall calling convention"). Pointer arguments are
//! the domain's own addresses (identity-mapped here).

use core::arch::asm;

use xenolith_abi::xen::hypercall as number;

/// A raw hypercall. x1-x4 and x16 may be clobbered, as Xen allows.
pub fn raw(call: u64, args: [u64; 5]) -> i64 {
    let result: i64;
    // SAFETY: HVC #0xEA1 enters the hypervisor, which reads only the arguments and memory they
    // point at, as each wrapper documents; every register it may change is declared clobbered.
    unsafe {
        asm!(
            "hvc #0xEA1",
            in("x16") call,
            inout("x0") args[0] => result,
            inout("x1") args[1] => _,
            inout("x2") args[2] => _,
            inout("x3") args[3] => _,
            inout("x4") args[4] => _,
            options(nostack)
        )
    };
    result
}

/// `console_io(CONSOLEIO_write, len, buffer)`.
pub fn console_write(bytes: &[u8]) -> i64 {
    raw(
        number::__HYPERVISOR_console_io,
        [
            xenolith_abi::xen::console::CONSOLEIO_write as u64,
            bytes.len() as u64,
            bytes.as_ptr() as u64,
            0,
            0,
        ],
    )
}

/// `sched_op(cmd, arg)`.
pub fn sched_op(cmd: u32, arg: u64) -> i64 {
    raw(number::__HYPERVISOR_sched_op, [u64::from(cmd), arg, 0, 0, 0])
}

/// `xen_version(cmd, arg)`.
pub fn xen_version(cmd: u32, arg: u64) -> i64 {
    raw(number::__HYPERVISOR_xen_version, [u64::from(cmd), arg, 0, 0, 0])
}

/// `domctl(op)`: fills in the interface version, returns Xen's result (the answer is in `op`).
pub fn domctl(op: &mut xenolith_abi::xen::domctl::xen_domctl) -> i64 {
    op.interface_version = xenolith_abi::xen::domctl::XEN_DOMCTL_INTERFACE_VERSION;
    raw(number::__HYPERVISOR_domctl, [(op as *mut _) as u64, 0, 0, 0, 0])
}

/// `sysctl(op)`: fills in the interface version, returns Xen's result (the answer is in `op`).
pub fn sysctl(op: &mut xenolith_abi::xen::sysctl::xen_sysctl) -> i64 {
    op.interface_version = xenolith_abi::xen::sysctl::XEN_SYSCTL_INTERFACE_VERSION;
    raw(number::__HYPERVISOR_sysctl, [(op as *mut _) as u64, 0, 0, 0, 0])
}

/// `memory_op(cmd, arg)` with `arg` the address of the command's structure.
pub fn memory_op(cmd: u32, arg: u64) -> i64 {
    raw(number::__HYPERVISOR_memory_op, [u64::from(cmd), arg, 0, 0, 0])
}

/// `vcpu_op(cmd, vcpuid, arg)`.
pub fn vcpu_op(cmd: u32, vcpu: u32, arg: u64) -> i64 {
    raw(number::__HYPERVISOR_vcpu_op, [u64::from(cmd), u64::from(vcpu), arg, 0, 0])
}
