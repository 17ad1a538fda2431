//! IOREQ servers through the core, from both ends (issue 18):
//!
//! - `ioreq-emulator` (`me=<id>`, `target=<id>`, `other=<id>`, `checks=0` to skip the error
//!   paths; holds `dm:<target>` and nothing else): walks
//!   `dm_op`'s and `XENMEM_acquire_resource`'s error paths in Xen's order, shows that every
//!   privileged hypercall family and every DMOP on another domain is `-EPERM` (dm_restrict),
//!   then creates a server, maps its ioreq page, claims [`BASE`]'s page, binds the target's
//!   ports and emulates a register file there: a write stores, a read returns what was stored
//!   (all ones where nothing was), a write to [`RAISE`] raises [`SPI`]. It raises [`SPI`] once
//!   when it is ready, and reports when the target writes [`DONE`].
//! - `ioreq-target` (`count=<n>`): waits for that first SPI, then reads and writes the window with
//!   every access size (a sign-extending load among them), reads a register nothing wrote,
//!   asks for an interrupt and waits for it, times `count` register reads (one round trip each)
//!   and writes [`DONE`].

use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use xenolith_abi::xen::dm_op::*;
use xenolith_abi::xen::errno::XenError;
use xenolith_abi::xen::hypercall::{self as call, GuestHandle, DOMID_SELF};
use xenolith_abi::xen::ioreq::{ioreq, IOREQ_READ, STATE_IOREQ_READY, STATE_IORESP_READY};
use xenolith_abi::xen::memory as mem;
use xenolith_runtime::events::{self, Port};
use xenolith_runtime::{hypercall, irq, println, StartInfo};

/// The emulated window: Xen's first virtio-mmio slot (`GUEST_VIRTIO_MMIO_BASE`).
pub const BASE: u64 = 0x0200_0000;
/// Writing here raises [`SPI`].
const RAISE: u64 = BASE + 0x100;
/// Writing here ends the run.
const DONE: u64 = BASE + 0x1f8;
/// The interrupt the emulator raises (Xen's first virtio-mmio SPI, `GUEST_VIRTIO_MMIO_SPI_FIRST`).
const SPI: u32 = 33;
/// Where the emulator maps the ioreq page: above its RAM, in its normal-memory window.
const IOREQ_PAGE: u64 = 0x7000_0000;

fn arg(info: &StartInfo, key: &str, default: u64) -> u64 {
    info.bootarg(key).and_then(|value| value.parse().ok()).unwrap_or(default)
}

/// Interrupts of [`SPI`] taken, and events seen (emulator).
static SPIS: AtomicU32 = AtomicU32::new(0);
static EVENTS: AtomicU64 = AtomicU64::new(0);

fn on_interrupt(intid: u32) {
    if intid == SPI {
        SPIS.fetch_add(1, Ordering::AcqRel);
    } else if intid == events::UPCALL_PPI {
        events::upcall(0, |_| {
            EVENTS.fetch_add(1, Ordering::AcqRel);
        });
    }
}

/// `dm_op(domid, 1, [{op, size}])` with `op` as given and a buffer of `size` bytes: Xen's result.
fn dm_op_sized(domid: u16, op: &mut xen_dm_op, size: u64) -> i64 {
    let buffer = xen_dm_op_buf { h: GuestHandle::new((op as *mut xen_dm_op) as u64), size };
    let args = [u64::from(domid), 1, (&raw const buffer) as u64, 0, 0];
    hypercall::raw(call::__HYPERVISOR_dm_op, args)
}

/// `dm_op` operation `number` with `payload` on `domid`: the result and the payload as written back.
fn dm<T: zerocopy::IntoBytes + zerocopy::FromBytes + zerocopy::Immutable>(
    domid: u16,
    number: u32,
    payload: &T,
) -> (Result<(), XenError>, T) {
    let mut op = xen_dm_op { op: number, pad: 0, u: DmOpPayload::new(payload) };
    let result = dm_op_sized(domid, &mut op, size_of::<xen_dm_op>() as u64);
    (check(result), op.u.read())
}

/// Xen's return value as a result.
fn check(value: i64) -> Result<(), XenError> {
    if value >= 0 {
        Ok(())
    } else {
        Err(XenError::from_return(value).unwrap_or(XenError::EINVAL))
    }
}

/// Checks `got` is `want`, printing the case; false on a mismatch.
fn expect(name: &str, case: &str, got: Result<(), XenError>, want: Result<(), XenError>) -> bool {
    if got == want {
        println!("{name}: {case} -> {got:?} as expected");
        true
    } else {
        println!("{name}: FAIL {case} -> {got:?}, expected {want:?}");
        false
    }
}

fn acquire(
    target: u16,
    id: u32,
    frame: u64,
    nr_frames: u32,
    list: u64,
) -> (Result<(), XenError>, u32) {
    let mut request = mem::xen_mem_acquire_resource {
        domid: target,
        r#type: mem::XENMEM_resource_ioreq_server,
        id,
        nr_frames,
        pad: 0,
        frame,
        frame_list: GuestHandle::new(list),
    };
    let result = hypercall::memory_op(mem::XENMEM_acquire_resource, (&raw mut request) as u64);
    (check(result), request.nr_frames)
}

pub fn emulator(name: &str, info: &StartInfo) {
    let target = arg(info, "target", 1) as u16;
    let other = arg(info, "other", 2) as u16;
    let me = arg(info, "me", 0) as u16;
    if let Err(error) = events::init() {
        return println!("{name}: FAIL mapping shared info: {error}");
    }
    irq::set_handler(on_interrupt);
    irq::init_distributor();
    irq::init_cpu(0, 1 << events::UPCALL_PPI);
    irq::enable();
    let checks = arg(info, "checks", 1) == 1;
    if checks && (!errors(name, target, me) || !restricted(name, target, other)) {
        return;
    }
    let gfn = IOREQ_PAGE / 4096;
    let list = (&raw const gfn) as u64;
    // A second server and its destruction, then the one that serves.
    let create = xen_dm_op_create_ioreq_server::default();
    let (first, created) = dm(target, XEN_DMOP_create_ioreq_server, &create);
    let (second, spare) = dm(target, XEN_DMOP_create_ioreq_server, &create);
    if first.is_err() || second.is_err() || created.id != 0 || spare.id != 1 {
        return println!(
            "{name}: FAIL creating servers: {first:?} {second:?} ids {} {}",
            created.id, spare.id
        );
    }
    let legacy = xen_dm_op_get_ioreq_server_info { id: 0, flags: 0, ..Default::default() };
    let info = xen_dm_op_get_ioreq_server_info { flags: XEN_DMOP_no_gfns, ..legacy };
    let ok = expect(
        name,
        "info with gfns",
        dm(target, XEN_DMOP_get_ioreq_server_info, &legacy).0,
        Err(XenError::EOPNOTSUPP),
    ) && expect(
        name,
        "info without gfns",
        dm(target, XEN_DMOP_get_ioreq_server_info, &info).0,
        Ok(()),
    );
    if !ok {
        return;
    }
    let destroy = xen_dm_op_destroy_ioreq_server { id: 1, pad: 0 };
    let ok = expect(
        name,
        "destroy server 1",
        dm(target, XEN_DMOP_destroy_ioreq_server, &destroy).0,
        Ok(()),
    ) && expect(
        name,
        "destroy it again",
        dm(target, XEN_DMOP_destroy_ioreq_server, &destroy).0,
        Err(XenError::ENOENT),
    ) && expect(name, "resource size", acquire(target, 0, 0, 0, 0).0, Ok(()))
        && acquire(target, 0, 0, 0, 0).1 == 2
        && expect(
            name,
            "frame 0 (buffered)",
            acquire(target, 0, 0, 1, list).0,
            Err(XenError::ENOENT),
        )
        && expect(name, "frame 2", acquire(target, 0, 2, 1, list).0, Err(XenError::EINVAL))
        && expect(
            name,
            "server 1's frame",
            acquire(target, 1, 1, 1, list).0,
            Err(XenError::ENOENT),
        );
    if !ok {
        return;
    }
    if let (Err(error), _) = acquire(target, 0, 1, 1, list) {
        return println!("{name}: FAIL acquiring the ioreq page: {error}");
    }
    let range = xen_dm_op_ioreq_server_range {
        id: 0,
        pad: 0,
        r#type: XEN_DMOP_IO_RANGE_MEMORY,
        start: BASE,
        end: BASE + 0xfff,
    };
    let overlapping =
        xen_dm_op_ioreq_server_range { start: BASE + 0xff8, end: BASE + 0x1fff, ..range };
    let state = xen_dm_op_set_ioreq_server_state { id: 0, enabled: 1, pad: 0 };
    let ok =
        expect(
            name,
            "map the window",
            dm(target, XEN_DMOP_map_io_range_to_ioreq_server, &range).0,
            Ok(()),
        ) && expect(
            name,
            "map an overlapping range",
            dm(target, XEN_DMOP_map_io_range_to_ioreq_server, &overlapping).0,
            Err(XenError::EEXIST),
        ) && expect(name, "enable", dm(target, XEN_DMOP_set_ioreq_server_state, &state).0, Ok(()));
    if !ok {
        return;
    }
    let (result, vcpus) = dm(target, XEN_DMOP_nr_vcpus, &xen_dm_op_nr_vcpus::default());
    if result.is_err() || vcpus.vcpus != 1 {
        return println!("{name}: FAIL nr_vcpus: {result:?} {}", vcpus.vcpus);
    }
    let record = IOREQ_PAGE as *mut ioreq;
    // SAFETY: the core mapped the server's ioreq page at IOREQ_PAGE (normal memory in this
    // domain's identity map); its first record is vCPU 0's, shared with the core.
    let vp_eport = unsafe { core::ptr::read_volatile(record) }.vp_eport;
    let port = match events::bind_interdomain(target, vp_eport) {
        Ok(port) => port,
        Err(error) => {
            return println!("{name}: FAIL binding the target's port {vp_eport}: {error}")
        }
    };
    println!(
        "{name}: server 0 ready: page at {IOREQ_PAGE:#x}, target port {vp_eport} bound as {}",
        port.0
    );
    serve(name, target, port, record);
}

/// The register file's loop: answers every request until the target writes [`DONE`].
fn serve(name: &str, target: u16, port: Port, record: *mut ioreq) {
    let mut registers = [None::<u64>; 512];
    let (mut served, mut seen) = (0u64, 0);
    raise(target);
    loop {
        if !irq::wait_unless(|| EVENTS.load(Ordering::Acquire) > seen) {
            continue;
        }
        seen = EVENTS.load(Ordering::Acquire);
        // SAFETY: as above; the record is read and written whole with volatile accesses.
        let mut request = unsafe { core::ptr::read_volatile(record) };
        if request.state() != STATE_IOREQ_READY {
            continue;
        }
        served += 1;
        let slot = ((request.addr - BASE) / 8) as usize % registers.len();
        let mask = u64::MAX >> (64 - 8 * u64::from(request.size.clamp(1, 8)));
        if request.dir() == IOREQ_READ {
            request.data = registers[slot].unwrap_or(u64::MAX) & mask;
        } else {
            registers[slot] = Some(request.data);
        }
        request.set_state(STATE_IORESP_READY);
        // SAFETY: as above. The data is written before the state (a release store of the record
        // after a fence), as Xen's emulators do.
        unsafe {
            core::sync::atomic::fence(Ordering::Release);
            core::ptr::write_volatile(record, request);
        }
        if let Err(error) = port.send() {
            return println!("{name}: FAIL notifying the target: {error}");
        }
        if request.dir() != IOREQ_READ && request.addr == RAISE {
            raise(target);
        }
        if request.dir() != IOREQ_READ && request.addr == DONE {
            return println!(
                "{name}: PASS served {served} requests; the target reports {:#x}",
                request.data
            );
        }
    }
}

fn raise(target: u16) {
    let level = xen_dm_op_set_irq_level { irq: SPI, level: 1, pad: [0; 3] };
    let (result, _) = dm(target, XEN_DMOP_set_irq_level, &level);
    if let Err(error) = result {
        println!("FAIL raising SPI {SPI}: {error}");
    }
}

/// `dm_op`'s and `acquire_resource`'s refusals, in Xen's order of checks.
fn errors(name: &str, target: u16, me: u16) -> bool {
    let nothing = xen_dm_op_nr_vcpus::default();
    let mut op = xen_dm_op { op: XEN_DMOP_nr_vcpus, pad: 0, u: DmOpPayload::new(&nothing) };
    let buffer = xen_dm_op_buf { h: GuestHandle::new((&raw mut op) as u64), size: 32 };
    let raw = |domid: u16, count: u64| {
        let args = [u64::from(domid), count, (&raw const buffer) as u64, 0, 0];
        check(hypercall::raw(call::__HYPERVISOR_dm_op, args))
    };
    let with = |number: u32, pad: u32, size: u64| {
        let mut op = xen_dm_op { op: number, pad, u: DmOpPayload::new(&nothing) };
        check(dm_op_sized(target, &mut op, size))
    };
    let bad_create = xen_dm_op_create_ioreq_server {
        handle_bufioreq: HVM_IOREQSRV_BUFIOREQ_ATOMIC,
        ..Default::default()
    };
    let legacy = xen_dm_op_get_ioreq_server_info { id: 0, flags: 0, ..Default::default() };
    let reversed = xen_dm_op_ioreq_server_range {
        id: 0,
        pad: 0,
        r#type: XEN_DMOP_IO_RANGE_MEMORY,
        start: 2,
        end: 1,
    };
    let ppi = xen_dm_op_set_irq_level { irq: 31, level: 1, pad: [0; 3] };
    let level2 = xen_dm_op_set_irq_level { irq: SPI, level: 2, pad: [0; 3] };
    let state = xen_dm_op_set_ioreq_server_state { id: 0, enabled: 1, pad: 0 };
    let cases: [(&str, Result<(), XenError>, XenError); 14] = [
        ("no buffers", raw(target, 0), XenError::ENODATA),
        ("three buffers", raw(target, 3), XenError::E2BIG),
        ("on itself", raw(me, 1), XenError::EPERM),
        ("on DOMID_SELF", raw(DOMID_SELF, 1), XenError::ESRCH),
        ("on no domain", raw(60, 1), XenError::ESRCH),
        ("a 4-byte buffer", with(XEN_DMOP_nr_vcpus, 0, 4), XenError::EFAULT),
        ("op 21", with(21, 0, 32), XenError::EOPNOTSUPP),
        ("header pad", with(XEN_DMOP_nr_vcpus, 1, 32), XenError::EINVAL),
        ("an x86 op", with(XEN_DMOP_inject_msi, 0, 32), XenError::EOPNOTSUPP),
        (
            "buffered ioreqs",
            dm(target, XEN_DMOP_create_ioreq_server, &bad_create).0,
            XenError::EINVAL,
        ),
        (
            "info without no_gfns",
            dm(target, XEN_DMOP_get_ioreq_server_info, &legacy).0,
            XenError::ENOENT,
        ),
        (
            "a reversed range",
            dm(target, XEN_DMOP_map_io_range_to_ioreq_server, &reversed).0,
            XenError::EINVAL,
        ),
        ("a PPI's level", dm(target, XEN_DMOP_set_irq_level, &ppi).0, XenError::EINVAL),
        ("level 2", dm(target, XEN_DMOP_set_irq_level, &level2).0, XenError::EINVAL),
    ];
    let mut ok = true;
    for (case, got, want) in cases {
        ok &= expect(name, case, got, Err(want));
    }
    ok &= expect(
        name,
        "enable server 0 before it exists",
        dm(target, XEN_DMOP_set_ioreq_server_state, &state).0,
        Err(XenError::ENOENT),
    );
    ok
}

/// dm_restrict: holding only `dm:<target>`, every privileged family is `-EPERM`, and so is every
/// `dm_op` (each number, and one past them) and resource on `other`.
fn restricted(name: &str, target: u16, other: u16) -> bool {
    use xenolith_abi::xen::domctl::{self, xen_domctl, DomctlPayload};
    // Boot domains are built one after another: wait for `other` to exist.
    for _ in 0..100_000 {
        let mut op = xen_dm_op { op: XEN_DMOP_nr_vcpus, pad: 0, u: DmOpPayload::new(&0u64) };
        if check(dm_op_sized(other, &mut op, size_of::<xen_dm_op>() as u64)) != Err(XenError::ESRCH)
        {
            break;
        }
        hypercall::sched_op(xenolith_abi::xen::sched::SCHEDOP_yield, 0);
    }
    let mut ok = true;
    for number in 0..=21 {
        let mut op = xen_dm_op { op: number, pad: 0, u: DmOpPayload::new(&0u64) };
        let got = check(dm_op_sized(other, &mut op, size_of::<xen_dm_op>() as u64));
        ok &= got == Err(XenError::EPERM);
        if got != Err(XenError::EPERM) {
            println!("{name}: FAIL dm_op {number} on d{other} -> {got:?}, expected EPERM");
        }
    }
    println!("{name}: every dm_op on d{other} -> EPERM: {ok}");
    let gfn = IOREQ_PAGE / 4096;
    ok &= expect(
        name,
        "acquire_resource on another domain",
        acquire(other, 0, 1, 1, (&raw const gfn) as u64).0,
        Err(XenError::EPERM),
    );
    let domctl_on = |cmd: u32, domain: u16| {
        let mut op = xen_domctl {
            cmd,
            interface_version: 0,
            domain,
            _pad: [0; 3],
            u: DomctlPayload::new(&[0u64; 16]),
        };
        check(hypercall::domctl(&mut op))
    };
    for (cmd, what) in [
        (domctl::XEN_DOMCTL_pausedomain, "pausedomain"),
        (domctl::XEN_DOMCTL_destroydomain, "destroydomain"),
        (domctl::XEN_DOMCTL_max_mem, "max_mem"),
    ] {
        for domain in [target, other] {
            ok &= expect(
                name,
                &alloc::format!("domctl {what} on d{domain}"),
                domctl_on(cmd, domain),
                Err(XenError::EPERM),
            );
        }
    }
    ok &= expect(
        name,
        "domctl createdomain",
        domctl_on(domctl::XEN_DOMCTL_createdomain, 0),
        Err(XenError::EPERM),
    );
    ok &= expect(
        name,
        "domctl getdomaininfo on another domain",
        domctl_on(domctl::XEN_DOMCTL_getdomaininfo, other),
        Err(XenError::EPERM),
    );
    ok &= expect(
        name,
        "Xenolith's bundle domctl",
        domctl_on(xenolith_abi::xen::private::XENOLITH_DOMCTL_BUNDLE_INFO, DOMID_SELF),
        Err(XenError::EPERM),
    );
    let mut sysctl = [0u64; 16];
    sysctl[0] = u64::from(xenolith_abi::xen::sysctl::XEN_SYSCTL_physinfo)
        | u64::from(xenolith_abi::xen::sysctl::XEN_SYSCTL_INTERFACE_VERSION) << 32;
    let raw = |number: u64, args: [u64; 5]| check(hypercall::raw(number, args));
    ok &= expect(
        name,
        "sysctl physinfo",
        raw(call::__HYPERVISOR_sysctl, [(&raw mut sysctl) as u64, 0, 0, 0, 0]),
        Err(XenError::EPERM),
    );
    let mut text = [0u8; 16];
    let read = xenolith_abi::xen::console::CONSOLEIO_read as u64;
    ok &= expect(
        name,
        "console read",
        raw(call::__HYPERVISOR_console_io, [read, 16, (&raw mut text) as u64, 0, 0]),
        Err(XenError::EPERM),
    );
    ok &= expect(
        name,
        "hypfs",
        raw(call::__HYPERVISOR_hypfs_op, [0, 0, 0, 0, 0]),
        Err(XenError::EPERM),
    );
    let shutdown = [u32::from(other), 0];
    let remote = u64::from(xenolith_abi::xen::sched::SCHEDOP_remote_shutdown);
    ok &= expect(
        name,
        "remote shutdown of another domain",
        raw(call::__HYPERVISOR_sched_op, [remote, (&raw const shutdown) as u64, 0, 0, 0]),
        Err(XenError::EPERM),
    );
    ok &= expect(
        name,
        "an event channel of another domain",
        events::alloc_unbound(other, DOMID_SELF).map(|_| ()),
        Err(XenError::EPERM),
    );
    // A foreign mapping of another domain's first page: the batch succeeds, the page's own
    // result is -EPERM.
    let (idx, gpfn, mut status) = (0x40000u64, IOREQ_PAGE / 4096 + 1, 0i32);
    let batch = mem::xen_add_to_physmap_batch {
        domid: DOMID_SELF,
        space: mem::XENMAPSPACE_gmfn_foreign as u16,
        size: 1,
        u: other,
        idxs: GuestHandle::new((&raw const idx) as u64),
        gpfns: GuestHandle::new((&raw const gpfn) as u64),
        errs: GuestHandle::new((&raw mut status) as u64),
    };
    let mapped =
        check(hypercall::memory_op(mem::XENMEM_add_to_physmap_batch, (&raw const batch) as u64));
    ok &= expect(
        name,
        "a foreign mapping of another domain",
        mapped.and(check(i64::from(status))),
        Err(XenError::EPERM),
    );
    if ok {
        println!("{name}: PASS dm_restrict: nothing beyond its target");
    }
    ok
}

pub fn target(name: &str, info: &StartInfo) {
    let count = arg(info, "count", 1000);
    irq::set_handler(on_interrupt);
    irq::init_distributor();
    irq::enable_spi(SPI);
    irq::init_cpu(0, 0);
    irq::enable();
    // The emulator's first interrupt: its server is ready.
    while !irq::wait_unless(|| SPIS.load(Ordering::Acquire) > 0) {}
    println!("{name}: the device model is ready");
    let mut ok = true;
    let mut check = |case: &str, got: u64, want: u64| {
        if got != want {
            println!("{name}: FAIL {case}: read {got:#x}, expected {want:#x}");
            ok = false;
        }
    };
    let (word, half, byte) = (BASE + 0x10, BASE + 0x20, BASE + 0x30);
    write::<u64>(BASE, 0x0123_4567_89ab_cdef);
    check("a 64-bit read", read::<u64>(BASE), 0x0123_4567_89ab_cdef);
    write::<u32>(word, 0xdead_beef);
    check("a 32-bit read", read::<u32>(word).into(), 0xdead_beef);
    write::<u16>(half, 0xbeef);
    check("a 16-bit read", read::<u16>(half).into(), 0xbeef);
    write::<u8>(byte, 0x80);
    let signed: i64;
    // SAFETY: as for `read`: a byte load from the emulated window, sign-extended to 64 bits.
    unsafe {
        core::arch::asm!("ldrsb {0}, [{1}]", out(reg) signed, in(reg) byte, options(nostack))
    };
    check("a sign-extending byte load", signed as u64, 0xffff_ffff_ffff_ff80);
    check("a register nothing wrote", read::<u64>(BASE + 0x40), u64::MAX);
    let before = SPIS.load(Ordering::Acquire);
    write::<u32>(RAISE, 1);
    while !irq::wait_unless(|| SPIS.load(Ordering::Acquire) > before) {}
    let start = crate::guest::counter();
    let mut sum = 0u64;
    for _ in 0..count {
        sum = sum.wrapping_add(read::<u32>(word).into());
    }
    let elapsed = crate::guest::nanoseconds(crate::guest::counter() - start);
    check("the reads' sum", sum, count.wrapping_mul(0xdead_beef));
    println!(
        "{name}: {count} MMIO reads through the device model: {} ns each",
        elapsed / count.max(1)
    );
    println!("bench ioreq-round-trip {}", elapsed / count.max(1));
    write::<u64>(DONE, count);
    if ok {
        println!("{name}: PASS every access answered by the device model; interrupt taken");
    }
}

/// A load from the emulated window at `address`.
fn read<T>(address: u64) -> T {
    // SAFETY: `address` is in BASE's page, device memory in this domain's identity map with
    // nothing behind it in its stage 2: the access traps to the core, which forwards it to the
    // device model, which answers it; nothing in this domain's memory is touched.
    unsafe { core::ptr::read_volatile(address as *const T) }
}

/// A store to the emulated window at `address` (as [`read`]).
fn write<T>(address: u64, value: T) {
    // SAFETY: as for `read`.
    unsafe { core::ptr::write_volatile(address as *mut T, value) }
}
