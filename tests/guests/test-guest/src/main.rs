//! The system tests' guest: one behaviour per `test=` value on its command line, each ending in
//! a `PASS` or `FAIL` marker (or, for `spin`, progress lines forever). `name=` names it in output.
//!
//! - `hello`: prints its start-up information and Xen version, then powers off;
//! - `spin`: counts forever, printing `progress N` every 2^24 iterations;
//! - `fault`: reads memory outside its RAM (it must be crashed alone);
//! - `privilege`: domctl and sysctl must fail with -EPERM;
//! - `unknown`: unknown hypercalls and sub-operations must fail with -ENOSYS.
#![cfg_attr(target_os = "none", no_std)]
#![cfg_attr(target_os = "none", no_main)]

#[cfg(target_os = "none")]
mod guest {
    use xenolith_abi::xen::errno::XenError;
    use xenolith_abi::xen::hypercall as call;
    use xenolith_abi::xen::version::XENVER_version;
    use xenolith_runtime::{hypercall, println, StartInfo};

    fn main(info: &StartInfo) {
        let name = info.bootarg("name").unwrap_or("guest");
        let version = hypercall::xen_version(XENVER_version, 0);
        println!(
            "{name}: hello from a Xenolith domain ({} vCPUs, {} MiB at {:#x}, Xen {}.{}, hypervisor node: {})",
            info.vcpus,
            info.first_bank().1 >> 20,
            info.first_bank().0,
            version >> 16,
            version & 0xffff,
            info.xen
        );
        match info.bootarg("test").unwrap_or("hello") {
            "hello" => println!("{name}: PASS hello"),
            "spin" => spin(name),
            "fault" => fault(name),
            "privilege" => privilege(name),
            "unknown" => unknown(name),
            other => println!("{name}: FAIL unknown test {other:?}"),
        }
    }

    fn spin(name: &str) -> ! {
        let mut count: u64 = 0;
        loop {
            count = count.wrapping_add(1);
            if count.is_multiple_of(1 << 24) {
                println!("{name}: progress {}", count >> 24);
            }
            core::hint::black_box(&mut count);
        }
    }

    fn fault(name: &str) {
        println!("{name}: reading 0x10000000, outside my RAM");
        // SAFETY: deliberately reads an address this domain has no memory at: the test checks the
        // hypervisor crashes this domain alone. The read never completes.
        let value = unsafe { core::ptr::read_volatile(0x1000_0000 as *const u64) };
        println!("{name}: FAIL the read returned {value:#x}");
    }

    fn expect(name: &str, what: &str, result: i64, expected: XenError) -> bool {
        if result == expected.to_return() {
            println!("{name}: {what} -> {result} ({expected}) as expected");
            true
        } else {
            println!(
                "{name}: FAIL {what} -> {result}, expected {} ({expected})",
                expected.to_return()
            );
            false
        }
    }

    fn privilege(name: &str) {
        // A well-formed getdomaininfo and physinfo: only the capability is missing.
        let mut buffer = [0u8; 256];
        let domctl =
            hypercall::raw(call::__HYPERVISOR_domctl, [buffer.as_mut_ptr() as u64, 0, 0, 0, 0]);
        let sysctl =
            hypercall::raw(call::__HYPERVISOR_sysctl, [buffer.as_mut_ptr() as u64, 0, 0, 0, 0]);
        if expect(name, "domctl", domctl, XenError::EPERM)
            & expect(name, "sysctl", sysctl, XenError::EPERM)
        {
            println!("{name}: PASS unprivileged domctl and sysctl denied");
        }
    }

    fn unknown(name: &str) {
        let bad_call = hypercall::raw(63, [0; 5]);
        let bad_sched = hypercall::sched_op(0xdead, 0);
        let bad_version = hypercall::xen_version(0xdead, 0);
        if expect(name, "hypercall 63", bad_call, XenError::ENOSYS)
            & expect(name, "sched_op 0xdead", bad_sched, XenError::ENOSYS)
            & expect(name, "xen_version 0xdead", bad_version, XenError::ENOSYS)
        {
            println!("{name}: PASS unknown operations refused");
        }
    }

    xenolith_runtime::entry!(main);
}

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!("test-guest is a Xenolith domain: it runs only in a system image");
}
