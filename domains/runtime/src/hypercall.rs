//! Hypercalls, Xen on Arm's way: `hvc #0xEA1`, the number in x16, arguments in x0-x4, the result
//! in x0 (`xen/include/public/arch-arm.h`, "Hypercall calling convention"). Pointer arguments are
//! the domain's own addresses (identity-mapped here).

use core::arch::asm;

use xenolith_abi::xen::hypercall as number;

/// A raw hypercall. x1-x4 and x16 may be clobbered, as Xen allows.
pub fn raw(call: u64, args: [u64; 5]) -> i64 {
    #[cfg(feature = "fault-injection")]
    fault_injection::before_call();
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

/// `XEN_SYSCTL_readconsole` as libxc's `xc_readconsolering` with an index: reads the
/// hypervisor's console ring into `buffer`, incrementally from `*index` (0 at first: the oldest
/// byte kept), clearing what it read if `clear`, and moves `*index` past what it read. Returns
/// how many bytes it read (0: none left). Needs `control`.
pub fn readconsole(
    buffer: &mut [u8],
    clear: bool,
    index: &mut u32,
) -> Result<usize, xenolith_abi::xen::errno::XenError> {
    use xenolith_abi::xen::sysctl::{xen_sysctl, xen_sysctl_readconsole, SysctlPayload};
    let request = xen_sysctl_readconsole {
        clear: clear.into(),
        incremental: 1,
        pad0: 0,
        pad1: 0,
        index: *index,
        buffer: xenolith_abi::xen::hypercall::GuestHandle::new(buffer.as_mut_ptr() as u64),
        count: u32::try_from(buffer.len()).unwrap_or(u32::MAX),
        _pad: 0,
    };
    let mut op = xen_sysctl {
        cmd: xenolith_abi::xen::sysctl::XEN_SYSCTL_readconsole,
        interface_version: 0,
        u: SysctlPayload::new(&request),
    };
    match sysctl(&mut op) {
        0 => {
            let answer: xen_sysctl_readconsole = op.u.read();
            *index = answer.index;
            Ok((answer.count as usize).min(buffer.len()))
        }
        code => Err(xenolith_abi::xen::errno::XenError::from_return(code)
            .unwrap_or(xenolith_abi::xen::errno::XenError::EINVAL)),
    }
}

/// `memory_op(cmd, arg)` with `arg` the address of the command's structure.
pub fn memory_op(cmd: u32, arg: u64) -> i64 {
    raw(number::__HYPERVISOR_memory_op, [u64::from(cmd), arg, 0, 0, 0])
}

/// `hvm_op(op, arg)` with `arg` the address of the operation's structure.
pub fn hvm_op(op: u64, arg: u64) -> i64 {
    raw(number::__HYPERVISOR_hvm_op, [op, arg, 0, 0, 0])
}

/// `HVMOP_get_param` of parameter `index` (`HVM_PARAM_*`) of domain `domid` (`DOMID_SELF`
/// for this one): its value, or Xen's error.
pub fn hvm_get_param(
    domid: xenolith_abi::xen::hypercall::domid_t,
    index: u32,
) -> Result<u64, xenolith_abi::xen::errno::XenError> {
    use xenolith_abi::xen::hvm::{xen_hvm_param, HVMOP_get_param};
    let mut param = xen_hvm_param { domid, pad: 0, index, value: 0 };
    match hvm_op(HVMOP_get_param, (&raw mut param) as u64) {
        0 => Ok(param.value),
        error => Err(xenolith_abi::xen::errno::XenError::from_return(error)
            .unwrap_or(xenolith_abi::xen::errno::XenError::EINVAL)),
    }
}

/// `vcpu_op(cmd, vcpuid, arg)`.
pub fn vcpu_op(cmd: u32, vcpu: u32, arg: u64) -> i64 {
    raw(number::__HYPERVISOR_vcpu_op, [u64::from(cmd), u64::from(vcpu), arg, 0, 0])
}

/// Calls `each` with every domain's `XEN_DOMCTL_getdomaininfo`, in id order (needs the `control`
/// capability; without it nothing is listed).
pub fn for_each_domain(mut each: impl FnMut(&xenolith_abi::xen::domctl::xen_domctl_getdomaininfo)) {
    let mut next = 0u16;
    while let Ok(info) = first_domain_from(next) {
        each(&info);
        next = info.domain + 1;
    }
}

/// `XEN_DOMCTL_getdomaininfo` of domain `id` (needs `control` or `xenstore` for another
/// domain). Xen answers with the first domain whose id is at least `id`; another domain's answer
/// is `ESRCH` here, as is there being none.
pub fn getdomaininfo(
    id: u16,
) -> Result<xenolith_abi::xen::domctl::xen_domctl_getdomaininfo, xenolith_abi::xen::errno::XenError>
{
    let info = first_domain_from(id)?;
    if info.domain == id {
        Ok(info)
    } else {
        Err(xenolith_abi::xen::errno::XenError::ESRCH)
    }
}

/// `XEN_DOMCTL_getdomaininfo` as Xen answers it: the first domain whose id is at least `id`.
fn first_domain_from(
    id: u16,
) -> Result<xenolith_abi::xen::domctl::xen_domctl_getdomaininfo, xenolith_abi::xen::errno::XenError>
{
    domctl_query(xenolith_abi::xen::domctl::XEN_DOMCTL_getdomaininfo, id)
}

/// `XENOLITH_DOMCTL_DOMAIN_INFO` for domain `id` (`DOMID_SELF` for this one): what the core
/// knows of it. Another domain needs `control` or `xenstore`.
pub fn domain_info(
    id: u16,
) -> Result<xenolith_abi::xen::private::XenolithDomainInfo, xenolith_abi::xen::errno::XenError> {
    domctl_query(xenolith_abi::xen::private::XENOLITH_DOMCTL_DOMAIN_INFO, id)
}

/// Domctl `cmd` on domain `id` with an empty payload, answered by a `T` in the payload.
fn domctl_query<T: zerocopy::FromBytes>(
    cmd: u32,
    id: u16,
) -> Result<T, xenolith_abi::xen::errno::XenError> {
    use xenolith_abi::xen::domctl::{xen_domctl, DomctlPayload};
    use xenolith_abi::xen::errno::XenError;
    let mut op = xen_domctl {
        cmd,
        interface_version: 0,
        domain: id,
        _pad: [0; 3],
        u: DomctlPayload::new(&[0u64; 16]),
    };
    match domctl(&mut op) {
        0 => Ok(op.u.read()),
        code => Err(XenError::from_return(code).unwrap_or(XenError::EINVAL)),
    }
}

/// `xl list`'s state column for `XEN_DOMINF_*` flags: running, blocked, paused, shutdown, dying.
pub fn state_letters(flags: u32) -> [char; 5] {
    use xenolith_abi::xen::domctl::*;
    [
        (XEN_DOMINF_running, 'r'),
        (XEN_DOMINF_blocked, 'b'),
        (XEN_DOMINF_paused, 'p'),
        (XEN_DOMINF_shutdown, 's'),
        (XEN_DOMINF_dying, 'd'),
    ]
    .map(|(flag, letter)| if flags & flag != 0 { letter } else { '-' })
}

/// Prints every domain like `xl list`, each line starting with `prefix`.
pub fn print_domain_list(prefix: &str) {
    crate::println!("{prefix}ID   Mem VCPUs State  Time(s)");
    for_each_domain(|info| {
        let state = state_letters(info.flags);
        crate::println!(
            "{prefix}{:<4} {:>4} {:>5} {}{}{}{}{}  {}.{:03}",
            info.domain,
            info.tot_pages / 256,
            info.nr_online_vcpus,
            state[0],
            state[1],
            state[2],
            state[3],
            state[4],
            info.cpu_time / 1_000_000_000,
            info.cpu_time / 1_000_000 % 1000
        );
    });
}

#[cfg(feature = "fault-injection")]
pub use fault_injection::{calls, crash_after};

/// Fault injection for restart tests (the `fault-injection` feature: the control domain's).
#[cfg(feature = "fault-injection")]
mod fault_injection {
    use core::arch::asm;
    use core::sync::atomic::{AtomicU64, Ordering};

    /// Counts a hypercall, and crashes the domain instead if it is the one [`crash_after`] named.
    pub(super) fn before_call() {
        CALLS.fetch_add(1, Ordering::Relaxed);
        if CRASH_AFTER.load(Ordering::Relaxed) != 0
            && CRASH_AFTER.fetch_sub(1, Ordering::Relaxed) == 1
        {
            crash_now();
        }
    }

    /// Hypercalls made so far ([`calls`]).
    static CALLS: AtomicU64 = AtomicU64::new(0);

    /// How many hypercalls this domain has made.
    pub fn calls() -> u64 {
        CALLS.load(Ordering::Relaxed)
    }

    /// Hypercalls left before [`crash_after`]'s crash (0: none asked for).
    static CRASH_AFTER: AtomicU64 = AtomicU64::new(0);

    /// Fault injection for restart tests: the `calls`-th hypercall from now (1: the next one) is
    /// not made; the domain crashes itself there instead (`SCHEDOP_shutdown`, `SHUTDOWN_crash`), as
    /// if it had been killed between its hypercalls at that point. 0 cancels.
    pub fn crash_after(calls: u64) {
        CRASH_AFTER.store(calls, Ordering::Relaxed);
    }

    /// Crashes this domain (`SCHEDOP_shutdown` with `SHUTDOWN_crash`); never returns.
    fn crash_now() -> ! {
        let now: u64;
        // SAFETY: reading the virtual counter has no side effect; the ISB only orders it.
        unsafe { asm!("isb", "mrs {0}, cntvct_el0", out(reg) now, options(nomem, nostack)) };
        crate::println!("runtime: crash injected at counter {now}");
        let reason = xenolith_abi::xen::sched::sched_shutdown {
            reason: xenolith_abi::xen::sched::SHUTDOWN_crash,
        };
        loop {
            // SAFETY: as in `raw`: the hypervisor reads the one-word argument it points at.
            unsafe {
                asm!(
                    "hvc #0xEA1",
                    in("x16") xenolith_abi::xen::hypercall::__HYPERVISOR_sched_op,
                    inout("x0") u64::from(xenolith_abi::xen::sched::SCHEDOP_shutdown) => _,
                    inout("x1") (&raw const reason) as u64 => _,
                    out("x2") _,
                    out("x3") _,
                    out("x4") _,
                    options(nostack)
                )
            };
        }
    }
}
