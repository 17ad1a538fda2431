//! Event-channel behaviours of the test guest:
//!
//! - `evtchn-server` (`peer=<id>`, optionally `witness=<id>`): offers port 1 to the peer, then a
//!   decoy port to the peer that nobody binds, then a port to the witness, answers every event
//!   on port 1 with one, then closes its end after `rounds=<n>` round trips;
//! - `evtchn-client` (`peer=<id>`, `port=<p>`): binds to the server's port, runs `rounds=<n>`
//!   round trips with upcalls through the vGIC, prints the time per round trip, then checks its
//!   end is left unbound once the server closed its own;
//! - `evtchn-errors` (`peer=<id>`, the server; `decoy=<p>` and `witness=<p>`, its decoy and
//!   witness ports): binds to the witness port (which tells it the decoy exists, offered to the
//!   client), then walks every error path named by the acceptance tests, binding to a port
//!   offered to another domain among them, VIRQ_TIMER, IPIs, loopback channels, polls and
//!   `VCPUOP_register_vcpu_info`.

use core::sync::atomic::{AtomicU32, Ordering};

use xenolith_abi::xen::errno::XenError;
use xenolith_abi::xen::event_channel as ec;
use xenolith_abi::xen::hypercall::DOMID_SELF;
use xenolith_runtime::events::{self, Port};
use xenolith_runtime::{hypercall, irq, println, StartInfo};

/// Events the upcall handler has seen, by the port that last fired.
static EVENTS: AtomicU32 = AtomicU32::new(0);
static LAST_PORT: AtomicU32 = AtomicU32::new(0);

fn on_interrupt(intid: u32) {
    if intid == events::UPCALL_PPI {
        events::upcall(0, |port| {
            LAST_PORT.store(port.0, Ordering::Release);
            EVENTS.fetch_add(1, Ordering::AcqRel);
        });
    }
}

/// Maps shared info and takes upcalls on vCPU 0.
fn setup(name: &str) -> bool {
    if let Err(error) = events::init() {
        println!("{name}: FAIL mapping shared info: {error}");
        return false;
    }
    irq::set_handler(on_interrupt);
    irq::init_distributor();
    irq::init_cpu(0, 1 << events::UPCALL_PPI);
    irq::enable();
    true
}

/// Waits (in WFI) until the upcall handler has counted more than `seen` events, at most `limit`
/// interrupts; the count, or `None` on giving up.
fn wait_event(seen: u32, limit: u32) -> Option<u32> {
    for _ in 0..limit {
        if irq::wait_unless(|| EVENTS.load(Ordering::Acquire) > seen) {
            return Some(EVENTS.load(Ordering::Acquire));
        }
    }
    None
}

fn arg(info: &StartInfo, key: &str, default: u32) -> u32 {
    info.bootarg(key).and_then(|value| value.parse().ok()).unwrap_or(default)
}

pub fn server(name: &str, info: &StartInfo) {
    let peer = arg(info, "peer", 1) as u16;
    let rounds = arg(info, "rounds", 10_000);
    if !setup(name) {
        return;
    }
    let port = match events::alloc_unbound(DOMID_SELF, peer) {
        Ok(port) => port,
        Err(error) => return println!("{name}: FAIL alloc_unbound: {error}"),
    };
    println!("{name}: offered port {} to d{peer}", port.0);
    // A decoy offered to the peer, which never binds it, and after it a port for the witness:
    // once the witness is bound, the decoy is sure to be unbound and offered to the peer.
    let witness = match info.bootarg("witness").and_then(|value| value.parse::<u16>().ok()) {
        Some(witness) => match decoy_and_witness(name, peer, witness, port) {
            Some(ports) => Some(ports),
            None => return,
        },
        None => None,
    };
    let mut seen = 0;
    for _ in 0..rounds {
        match wait_event(seen, 1_000_000) {
            Some(count) => seen = count,
            None => return println!("{name}: FAIL no event after {seen}"),
        }
        if let Err(error) = port.send() {
            return println!("{name}: FAIL send: {error}");
        }
    }
    match port.close() {
        Ok(()) => println!("{name}: PASS answered {rounds} events, closed port {}", port.0),
        Err(error) => return println!("{name}: FAIL close: {error}"),
    }
    let Some((decoy, witness_port)) = witness else { return };
    // The witness's event: it is done binding to our ports (and needs us no more).
    let deadline = crate::guest::nanoseconds(crate::guest::counter()) + 60_000_000_000;
    while !witness_port.take_pending() {
        if crate::guest::nanoseconds(crate::guest::counter()) >= deadline {
            return println!("{name}: FAIL no event on the witness port");
        }
        let _ = events::poll(&[witness_port], deadline);
    }
    // Its refused bind to the decoy changed nothing (Xen's failing bind leaves both ends).
    match events::status(DOMID_SELF, decoy.0) {
        Ok(status) if status.status == ec::EVTCHNSTAT_unbound && status.unbound() == peer => {
            println!(
                "{name}: PASS decoy port {} still unbound, offered to d{peer}, after the witness's binds",
                decoy.0
            );
        }
        other => println!("{name}: FAIL the decoy port after the witness's binds: {other:?}"),
    }
}

/// Offers a decoy port to `peer` and then a port to `witness`, both masked so that the upcall
/// handler, which counts the peer's events on `port`, never sees theirs (a port's mask bit is
/// the guest's and survives its allocation, as in Xen; they are the next free ports, Xen's
/// lowest free, `get_free_port`). The two ports, or `None` after printing why not.
fn decoy_and_witness(name: &str, peer: u16, witness: u16, port: Port) -> Option<(Port, Port)> {
    let (decoy, witness_port) = (Port(port.0 + 1), Port(port.0 + 2));
    decoy.mask();
    witness_port.mask();
    let offered = events::alloc_unbound(DOMID_SELF, peer)
        .and_then(|decoy| Ok((decoy, events::alloc_unbound(DOMID_SELF, witness)?)));
    if offered != Ok((decoy, witness_port)) {
        println!("{name}: FAIL offering ports {} and {}: {offered:?}", decoy.0, witness_port.0);
        return None;
    }
    println!(
        "{name}: offered decoy port {} to d{peer}, port {} to witness d{witness}",
        decoy.0, witness_port.0
    );
    Some((decoy, witness_port))
}

pub fn client(name: &str, info: &StartInfo) {
    let peer = arg(info, "peer", 0) as u16;
    let remote_port = arg(info, "port", 1);
    let rounds = arg(info, "rounds", 10_000);
    if !setup(name) {
        return;
    }
    let Some(port) = bind_when_offered(name, peer, remote_port) else { return };
    // Binding leaves the new port pending (Xen's conservative choice): take that event first.
    let Some(mut seen) = wait_event(0, 1_000) else {
        return println!("{name}: FAIL the new port was not left pending");
    };
    println!("{name}: bound port {} to d{peer} port {remote_port}", port.0);
    let start = crate::guest::counter();
    for round in 0..rounds {
        if let Err(error) = port.send() {
            return println!("{name}: FAIL send in round {round}: {error}");
        }
        match wait_event(seen, 1_000_000) {
            Some(count) => seen = count,
            None => return println!("{name}: FAIL no answer in round {round}"),
        }
    }
    let per_round =
        crate::guest::nanoseconds(crate::guest::counter() - start) / u64::from(rounds.max(1));
    println!("{name}: bench event-round-trip {per_round} ns ({rounds} round trips)");
    if LAST_PORT.load(Ordering::Acquire) != port.0 {
        return println!(
            "{name}: FAIL events arrived on port {}",
            LAST_PORT.load(Ordering::Acquire)
        );
    }
    // The server closes its end next: ours must become unbound, offered back to the server.
    for _ in 0..100_000 {
        match events::status(DOMID_SELF, port.0) {
            Ok(status) if status.status == ec::EVTCHNSTAT_unbound && status.unbound() == peer => {
                let dropped = port.send();
                return if dropped.is_ok() {
                    println!(
                        "{name}: PASS {rounds} event round trips; peer closed, port left unbound"
                    );
                } else {
                    println!("{name}: FAIL send on an unbound port: {dropped:?}");
                };
            }
            Ok(status) if status.status == ec::EVTCHNSTAT_interdomain => {
                hypercall::sched_op(xenolith_abi::xen::sched::SCHEDOP_yield, 0);
            }
            other => return println!("{name}: FAIL status after the peer closed: {other:?}"),
        }
    }
    println!("{name}: FAIL the peer never closed");
}

/// Binds to `remote_port` of `peer`, retrying for up to 60 s while the peer has not offered it
/// yet (`-EINVAL`); `None` after printing why not.
fn bind_when_offered(name: &str, peer: u16, remote_port: u32) -> Option<Port> {
    let deadline = crate::guest::nanoseconds(crate::guest::counter()) + 60_000_000_000;
    loop {
        match events::bind_interdomain(peer, remote_port) {
            Ok(port) => return Some(port),
            Err(XenError::EINVAL)
                if crate::guest::nanoseconds(crate::guest::counter()) < deadline =>
            {
                hypercall::sched_op(xenolith_abi::xen::sched::SCHEDOP_yield, 0);
            }
            Err(error) => {
                println!("{name}: FAIL bind_interdomain to d{peer} port {remote_port}: {error}");
                return None;
            }
        }
    }
}

/// A raw hypercall result as `Result`.
fn xen_result(value: i64) -> Result<(), XenError> {
    if value == 0 {
        Ok(())
    } else {
        Err(XenError::from_return(value).unwrap_or(XenError::EINVAL))
    }
}

/// Checks `result` is `expected`; prints and counts a failure otherwise.
fn check<T: core::fmt::Debug>(
    name: &str,
    failures: &mut u32,
    what: &str,
    result: Result<T, XenError>,
    expected: Result<(), XenError>,
) {
    let ok = match (&result, expected) {
        (Ok(_), Ok(())) => true,
        (Err(got), Err(want)) => *got == want,
        _ => false,
    };
    if ok {
        println!("{name}: {what} -> {result:?} as expected");
    } else {
        *failures += 1;
        println!("{name}: FAIL {what} -> {result:?}, expected {expected:?}");
    }
}

pub fn errors(name: &str, info: &StartInfo) {
    let peer = arg(info, "peer", 0) as u16;
    let decoy = arg(info, "decoy", 2);
    if !setup(name) {
        return;
    }
    // The server offers its decoy (to the client), then our witness port: bound to the
    // witness, we know the decoy is unbound and offered to another domain (the client never
    // binds it). The server stays until our event on the witness port, so every check that
    // needs it alive comes before that.
    let witness_port = arg(info, "witness", 3);
    let Some(witness) = bind_when_offered(name, peer, witness_port) else { return };
    // Binding leaves our end pending: take that upcall before counting any.
    if wait_event(0, 1_000).is_none() {
        return println!("{name}: FAIL the witness port was not left pending");
    }
    let mut failures = 0;
    let f = &mut failures;
    // Binding to what the other domain did not offer us, or to nobody. Xen's
    // `evtchn_bind_interdomain` (event_channel.c:389) answers -ESRCH for no such domain (:399)
    // and -EINVAL for everything else: a port beyond the valid ones (:422-423), and one not
    // ECS_UNBOUND or offered to another domain (:424-426).
    check(
        name,
        f,
        "bind to the peer's decoy port (unbound, offered to another domain)",
        events::bind_interdomain(peer, decoy),
        Err(XenError::EINVAL),
    );
    check(
        name,
        f,
        "bind to the peer's witness port (bound to us already)",
        events::bind_interdomain(peer, witness_port),
        Err(XenError::EINVAL),
    );
    check(
        name,
        f,
        "bind to the peer's port 10 (free)",
        events::bind_interdomain(peer, 10),
        Err(XenError::EINVAL),
    );
    check(
        name,
        f,
        "bind to the peer's port 1000 (beyond its valid ports)",
        events::bind_interdomain(peer, 1000),
        Err(XenError::EINVAL),
    );
    check(
        name,
        f,
        "bind to port 0 of the peer",
        events::bind_interdomain(peer, 0),
        Err(XenError::EINVAL),
    );
    check(
        name,
        f,
        "bind to a missing domain",
        events::bind_interdomain(0x7000, 1),
        Err(XenError::ESRCH),
    );
    check(
        name,
        f,
        "alloc_unbound for another domain",
        events::alloc_unbound(peer, DOMID_SELF),
        Err(XenError::EPERM),
    );
    check(name, f, "status of another domain", events::status(peer, 1), Err(XenError::EPERM));
    check(name, f, "reset of another domain", events::reset(peer), Err(XenError::EPERM));
    // Done with the server: it may go (it waits for this before it powers off).
    check(name, f, "send on the witness port", witness.send(), Ok(()));
    // Send on a closed port, and on an unbound one (Xen drops the event and answers 0).
    check(name, f, "send on never-opened port 7", Port(7).send(), Err(XenError::EINVAL));
    check(name, f, "send on port 0", Port(0).send(), Err(XenError::EINVAL));
    check(name, f, "send beyond the table", Port(5000).send(), Err(XenError::EINVAL));
    let unbound = events::alloc_unbound(DOMID_SELF, peer).unwrap_or(Port(0));
    check(name, f, "send on an unbound port", unbound.send(), Ok(()));
    check(name, f, "close it", unbound.close(), Ok(()));
    check(name, f, "send on the closed port", unbound.send(), Err(XenError::EINVAL));
    check(name, f, "close it again", unbound.close(), Err(XenError::EINVAL));
    // VIRQs.
    check(name, f, "bind VIRQ 24", events::bind_virq(ec::NR_VIRQS, 0), Err(XenError::EINVAL));
    check(
        name,
        f,
        "bind global VIRQ_DOM_EXC on vCPU 1",
        events::bind_virq(ec::VIRQ_DOM_EXC, 1),
        Err(XenError::EINVAL),
    );
    check(
        name,
        f,
        "bind VIRQ_TIMER on vCPU 5",
        events::bind_virq(ec::VIRQ_TIMER, 5),
        Err(XenError::ENOENT),
    );
    let timer = events::bind_virq(ec::VIRQ_TIMER, 0);
    check(name, f, "bind VIRQ_TIMER", timer, Ok(()));
    check(
        name,
        f,
        "bind VIRQ_TIMER again",
        events::bind_virq(ec::VIRQ_TIMER, 0),
        Err(XenError::EEXIST),
    );
    check(name, f, "bind VIRQ_CONSOLE", events::bind_virq(ec::VIRQ_CONSOLE, 0), Ok(()));
    check(name, f, "bind VIRQ_DOM_EXC", events::bind_virq(ec::VIRQ_DOM_EXC, 0), Ok(()));
    check(
        name,
        f,
        "send on a VIRQ port",
        timer.map(|port| port.send()).unwrap_or(Ok(())),
        Err(XenError::EINVAL),
    );
    check(
        name,
        f,
        "bind_vcpu of a per-vCPU VIRQ",
        timer.and_then(|port| port.bind_vcpu(0)),
        Err(XenError::EINVAL),
    );
    // Xen on Arm has no single-shot timer (-EINVAL), so nothing raises VIRQ_TIMER: a poll on
    // it ends at its timeout with the port still idle.
    if let Ok(timer) = timer {
        timer.mask();
        let deadline = crate::guest::nanoseconds(crate::guest::counter()) + 2_000_000;
        let request = xenolith_abi::xen::vcpu::vcpu_set_singleshot_timer {
            timeout_abs_ns: deadline,
            flags: 0,
            _pad: 0,
        };
        let singleshot = hypercall::vcpu_op(
            xenolith_abi::xen::vcpu::VCPUOP_set_singleshot_timer,
            0,
            (&raw const request) as u64,
        );
        check(name, f, "a single-shot timer", xen_result(singleshot), Err(XenError::EINVAL));
        let polled = events::poll(&[timer], deadline);
        let late = crate::guest::nanoseconds(crate::guest::counter()) >= deadline;
        check(name, f, "poll VIRQ_TIMER until a timeout", polled, Ok(()));
        if timer.take_pending() || !late {
            *f += 1;
            println!("{name}: FAIL VIRQ_TIMER pending, or the poll ended early (late: {late})");
        }
        check(name, f, "unmask it", timer.unmask(), Ok(()));
    }
    // A poll that times out, one with too many ports, one with a bad port.
    let ipi = events::bind_ipi(0).unwrap_or(Port(0));
    let deadline = crate::guest::nanoseconds(crate::guest::counter()) + 1_000_000;
    check(name, f, "poll an idle port with a timeout", events::poll(&[ipi], deadline), Ok(()));
    if crate::guest::nanoseconds(crate::guest::counter()) < deadline {
        *f += 1;
        println!("{name}: FAIL the poll returned before its timeout");
    }
    check(name, f, "poll 129 ports", events::poll(&[ipi; 129], 0), Err(XenError::EINVAL));
    check(name, f, "poll port 4096", events::poll(&[Port(4096)], 0), Err(XenError::EINVAL));
    check(name, f, "bind_ipi on vCPU 3", events::bind_ipi(3), Err(XenError::ENOENT));
    check(name, f, "bind_vcpu of an IPI port", ipi.bind_vcpu(0), Err(XenError::EINVAL));
    // An IPI to ourselves arrives as an upcall on its port.
    let before = EVENTS.load(Ordering::Acquire);
    check(name, f, "send an IPI to vCPU 0", ipi.send(), Ok(()));
    if wait_event(before, 1_000).is_none() || LAST_PORT.load(Ordering::Acquire) != ipi.0 {
        *f += 1;
        println!("{name}: FAIL no upcall for the IPI");
    }
    // A masked port is delivered on unmask.
    ipi.mask();
    let before = EVENTS.load(Ordering::Acquire);
    check(name, f, "send to a masked port", ipi.send(), Ok(()));
    if EVENTS.load(Ordering::Acquire) != before || !ipi.is_pending() {
        *f += 1;
        println!("{name}: FAIL a masked port was delivered or not left pending");
    }
    check(name, f, "unmask it", ipi.unmask(), Ok(()));
    if wait_event(before, 1_000).is_none() {
        *f += 1;
        println!("{name}: FAIL unmask did not deliver the pending event");
    }
    check(name, f, "unmask port 4096", Port(4096).unmask(), Err(XenError::EINVAL));
    // A loopback channel, its status, and closing one end.
    let offered = events::alloc_unbound(DOMID_SELF, DOMID_SELF).unwrap_or(Port(0));
    let local = events::bind_interdomain(DOMID_SELF, offered.0);
    check(name, f, "loopback bind", local, Ok(()));
    let local = local.unwrap_or(Port(0));
    match events::status(DOMID_SELF, offered.0) {
        Ok(status)
            if status.status == ec::EVTCHNSTAT_interdomain
                && status.interdomain() == (info_domid(), local.0) => {}
        other => {
            *f += 1;
            println!("{name}: FAIL loopback status {other:?}");
        }
    }
    check(name, f, "close one end", local.close(), Ok(()));
    match events::status(DOMID_SELF, offered.0) {
        Ok(status) if status.status == ec::EVTCHNSTAT_unbound => {}
        other => {
            *f += 1;
            println!("{name}: FAIL the other end is not unbound: {other:?}");
        }
    }
    // vcpu_info moved into our own page: events still arrive, and a second move is refused.
    check(name, f, "register vcpu_info", events::register_vcpu_info(0), Ok(()));
    check(name, f, "register it again", events::register_vcpu_info(0), Err(XenError::EINVAL));
    let before = EVENTS.load(Ordering::Acquire);
    ipi.send().ok();
    if wait_event(before, 1_000).is_none() {
        *f += 1;
        println!("{name}: FAIL no upcall through the registered vcpu_info");
    }
    check(name, f, "reset", events::reset(DOMID_SELF), Ok(()));
    check(name, f, "send after reset", ipi.send(), Err(XenError::EINVAL));
    check(
        name,
        f,
        "unknown event_channel_op",
        events::op(99, &mut [0u8; 8]),
        Err(XenError::ENOSYS),
    );
    if failures == 0 {
        println!("{name}: PASS event channel errors and delivery");
    } else {
        println!("{name}: FAIL {failures} event channel check(s)");
    }
}

/// This domain's id, from `EVTCHNOP_status` of an unbound port offered to ourselves.
fn info_domid() -> u16 {
    let Ok(port) = events::alloc_unbound(DOMID_SELF, DOMID_SELF) else { return u16::MAX };
    let dom = events::status(DOMID_SELF, port.0).map_or(u16::MAX, |status| status.unbound());
    port.close().ok();
    dom
}
