//! xenstore behaviours of the test guest, through the runtime's [`Xenbus`] client (the store
//! killed under a transaction loop is in `xenstore_torture.rs`, the hostile guest in
//! `xenstore_hostile.rs`):
//!
//! - `xs-chat-a`, `xs-chat-b` (`peer=<id>`, `rounds=<n>`, default 100): each opens a node
//!   `/local/domain/<self>/chat` to the peer (SET_PERMS), watches the peer's, and they
//!   ping-pong `n` rounds (a writes `ping i`, b answers `pong i`), each checking every value it
//!   reads; each also checks GET_DOMAIN_PATH, its `name` node, the nodes the store wrote for it
//!   at boot as Xen's `init-dom0less` does (`memory_kib=<n>`, default 16384: its
//!   `memory/static-max`; one vCPU), that its own `private` node is closed to the peer (EACCES)
//!   and that the peer's chat node takes its write. Ends with `NAME: PASS xs-chat rounds=N`.
//!   With `hostile=<id>` they then go on talking through `~/talk` ([`talk_on`]) until the store
//!   has disconnected that domain and `after=<n>` (default 20) more rounds have passed: chat-a
//!   binds the signal the hostile domain raises once it is disconnected (see Signals below),
//!   marks each ping it writes after that (`ping i gone k`) and ends the talk with `end i`;
//!   each prints a line when it learns of the disconnection and ends with
//!   `NAME: PASS xs-chat rounds=N, then K after the hostile guest's disconnection (...)`;
//! - `xs-bench` (`count=<n>`, default 1000): `NAME: BENCH xs-read-roundtrip instructions=X`,
//!   the virtual time per READ of a small node (instructions under `-icount shift=0`);
//! - `xs-filler`: see [`filler`].
//!
//! Signals ([`offer_signal`], [`bind_signal`], [`raise_signal`]): one domain tells another that
//! something happened through an event channel whose port it published in xenstore, so the
//! signal still arrives once the sender's xenstore connection is gone.
//!
//! A failure prints `NAME: FAIL ...` naming what went wrong.

use alloc::format;
use alloc::rc::Rc;
use alloc::string::String;
use core::cell::Cell;

use xenolith_abi::xen::event_channel::{EVTCHNSTAT_interdomain, EVTCHNSTAT_unbound};
use xenolith_abi::xen::hypercall::DOMID_SELF;
use xenolith_runtime::events::{self, Port};
use xenolith_runtime::xenbus::{Access, Errno, Permission, Xenbus, XsError};
use xenolith_runtime::{println, StartInfo};

pub(crate) fn arg(info: &StartInfo, key: &str, default: u32) -> u32 {
    info.bootarg(key).and_then(|value| value.parse().ok()).unwrap_or(default)
}

/// A 64-bit `key=` (a seed), decimal.
pub(crate) fn arg64(info: &StartInfo, key: &str, default: u64) -> u64 {
    info.bootarg(key).and_then(|value| value.parse().ok()).unwrap_or(default)
}

/// Virtual time in ns (the core's system time).
pub(crate) fn now() -> u64 {
    xenolith_runtime::now_ns()
}

/// Sleeps `ns` of virtual time (`SCHEDOP_poll` on no port, until the deadline).
pub(crate) fn sleep(ns: u64) {
    let deadline = now() + ns;
    while now() < deadline {
        let _ = events::poll(&[], deadline);
    }
}

/// This domain's id: the remote end of an unbound port offered to itself.
pub(crate) fn own_domid() -> Option<u16> {
    let port = events::alloc_unbound(DOMID_SELF, DOMID_SELF).ok()?;
    let dom = events::status(DOMID_SELF, port.0).ok().map(|status| status.unbound());
    port.close().ok();
    dom
}

pub(crate) fn connect(name: &str) -> Option<(Xenbus, u16)> {
    let Some(me) = own_domid() else {
        println!("{name}: FAIL cannot learn this domain's id");
        return None;
    };
    match Xenbus::connect() {
        Ok(bus) => {
            let ring = bus.transport();
            println!(
                "{name}: connected to xenstore (page {:#x}, port {}, features {:#x})",
                ring.address(),
                ring.port().0,
                bus.server_features()
            );
            Some((bus, me))
        }
        Err(error) => {
            println!("{name}: FAIL connecting to xenstore: {error}");
            None
        }
    }
}

/// A counter a watch callback bumps.
pub(crate) fn counter_callback(
    events: &Rc<Cell<u64>>,
) -> impl FnMut(&xenolith_runtime::xenbus::WatchEvent) {
    let events = events.clone();
    move |_| events.set(events.get() + 1)
}

pub(crate) const WAIT_NS: u64 = 60_000_000_000;

/// Waits until `path` reads `expected`, reading it again at every watch event. While the peer
/// is still setting up (`previous` is `None`) the node may be missing, closed or `ready`;
/// later it may only still hold `previous`. Anything else is an error.
fn wait_value(
    bus: &mut Xenbus,
    path: &str,
    expected: &str,
    previous: Option<&str>,
) -> Result<(), String> {
    let deadline = now() + WAIT_NS;
    loop {
        match bus.read_string(path) {
            Ok(value) if value == expected => return Ok(()),
            Ok(value) if Some(value.as_str()) == previous => {}
            Ok(value) if previous.is_none() && value == "ready" => {}
            Err(XsError::Errno(Errno::ENOENT | Errno::EACCES)) if previous.is_none() => {}
            Ok(value) => return Err(format!("{path} holds {value:?}, expected {expected:?}")),
            Err(error) => return Err(format!("reading {path}: {error}")),
        }
        match bus.wait_watches(Some(deadline)) {
            Ok(0) => return Err(format!("no watch event on {path} for 60 s (want {expected:?})")),
            Ok(_) => {}
            Err(error) => return Err(format!("waiting for a watch on {path}: {error}")),
        }
    }
}

pub fn chat(name: &str, info: &StartInfo, initiator: bool) {
    match run_chat(name, info, initiator) {
        Ok(summary) => println!("{name}: PASS xs-chat {summary}"),
        Err(why) => println!("{name}: FAIL {why}"),
    }
    // Stay alive: when a domain dies, xenstore removes the nodes it owns (Xen's
    // `domain_tree_remove`), and the peer may still be reading them.
    loop {
        sleep(1_000_000_000);
    }
}

/// Says what it did: `rounds=N`, and with `hostile=`, what came after.
fn run_chat(name: &str, info: &StartInfo, initiator: bool) -> Result<String, String> {
    let peer = arg(info, "peer", 0) as u16;
    let rounds = arg(info, "rounds", 100);
    let hostile = info.bootarg("hostile").and_then(|id| id.parse::<u16>().ok());
    let Some((mut bus, me)) = connect(name) else { return Err("no xenstore".into()) };
    // Bound early: the hostile domain raises its signal only once it is bound.
    let signal = match hostile {
        Some(hostile) if initiator => Some(bind_signal(&mut bus, me, hostile)?),
        _ => None,
    };
    let home = format!("/local/domain/{me}");
    let failed = |what: &str, error: XsError| format!("{what}: {error}");
    match bus.get_domain_path(me) {
        Ok(path) if path == home => {}
        other => return Err(format!("GET_DOMAIN_PATH {me} gave {other:?}, expected {home}")),
    }
    match bus.read_string(&format!("{home}/name")) {
        Ok(value) if value == name => {}
        other => return Err(format!("{home}/name reads {other:?}, expected {name:?}")),
    }
    let memory = check_populated(&mut bus, &home, me, arg(info, "memory_kib", 16384))?;
    println!("{name}: boot nodes as init-dom0less writes them: {memory}");
    // A node closed to everyone else, and one open to the peer.
    let private = format!("{home}/private");
    let closed = [Permission { domid: me, access: Access::None }];
    bus.write(&private, b"secret").map_err(|error| failed("writing private", error))?;
    bus.set_perms(&private, &closed).map_err(|error| failed("closing private", error))?;
    let mine = format!("{home}/chat");
    let open = [
        Permission { domid: me, access: Access::None },
        Permission { domid: peer, access: Access::Both },
    ];
    bus.write(&mine, b"ready").map_err(|error| failed("creating chat", error))?;
    bus.set_perms(&mine, &open).map_err(|error| failed("opening chat to the peer", error))?;
    match bus.get_perms(&mine) {
        Ok(perms) if perms == open => {}
        other => return Err(format!("GET_PERMS of {mine} gave {other:?}")),
    }
    let theirs = format!("/local/domain/{peer}/chat");
    let events = Rc::new(Cell::new(0));
    bus.watch(&theirs, "peer-chat", counter_callback(&events))
        .map_err(|error| failed("watching the peer", error))?;
    for round in 1..=rounds {
        let previous = |word: &str| (round > 1).then(|| format!("{word} {}", round - 1));
        if initiator {
            bus.write(&mine, format!("ping {round}").as_bytes())
                .map_err(|error| failed("writing ping", error))?;
            let before = previous("pong");
            wait_value(&mut bus, &theirs, &format!("pong {round}"), before.as_deref())?;
        } else {
            let before = previous("ping");
            wait_value(&mut bus, &theirs, &format!("ping {round}"), before.as_deref())?;
            bus.write(&mine, format!("pong {round}").as_bytes())
                .map_err(|error| failed("writing pong", error))?;
        }
    }
    println!("{name}: {rounds} rounds done, {} watch events", events.get());
    // The peer set its private node up before it first wrote its chat node.
    match bus.read(&format!("/local/domain/{peer}/private")) {
        Err(XsError::Errno(Errno::EACCES)) => {}
        other => return Err(format!("reading the peer's private node gave {other:?}, not EACCES")),
    }
    // The peer's chat node is open to us: write it (the peer no longer writes it).
    let ack = format!("ack from {me}");
    bus.write(&theirs, ack.as_bytes()).map_err(|error| failed("writing the peer's node", error))?;
    match bus.read_string(&theirs) {
        Ok(value) if value == ack => {}
        other => return Err(format!("the peer's node reads {other:?} after our write")),
    }
    bus.unwatch(&theirs, "peer-chat").map_err(|error| failed("unwatch", error))?;
    if hostile.is_none() {
        return Ok(format!("rounds={rounds}"));
    }
    let after = arg(info, "after", 20);
    let talk = talk_on(&mut bus, name, me, peer, signal, after)?;
    Ok(format!("rounds={rounds}, then {after} after the hostile guest's disconnection ({talk})"))
}

/// Waits until `path` holds a value other than `last` (while `last` is `None`, a missing,
/// closed or `ready` node holds none yet), reading it again at every watch event.
fn wait_change(bus: &mut Xenbus, path: &str, last: Option<&str>) -> Result<String, String> {
    let deadline = now() + WAIT_NS;
    loop {
        match bus.read_string(path) {
            Ok(value) if Some(value.as_str()) == last => {}
            Ok(value) if last.is_none() && value == "ready" => {}
            Ok(value) => return Ok(value),
            Err(XsError::Errno(Errno::ENOENT | Errno::EACCES)) if last.is_none() => {}
            Err(error) => return Err(format!("reading {path}: {error}")),
        }
        match bus.wait_watches(Some(deadline)) {
            Ok(0) => return Err(format!("no watch event on {path} for 60 s (it holds {last:?})")),
            Ok(_) => {}
            Err(error) => return Err(format!("waiting for a watch on {path}: {error}")),
        }
    }
}

/// The chat after the first rounds, while a hostile domain misbehaves: both talk through
/// `~/talk` (opened to the peer, the peer's watched) until `after` rounds have passed since
/// the hostile domain's signal that the store disconnected it. `signal` is chat-a's bound
/// port: chat-a checks it before each round, marks every ping after it (`ping i gone k`, k
/// from 1) and ends with `end i`; chat-b (`None`) answers each ping with `pong i` and learns
/// of the disconnection from the marks. Each side's marked rounds are writes it made, and
/// watch events it saw, after the disconnection. Says how many rounds and events there were.
fn talk_on(
    bus: &mut Xenbus,
    name: &str,
    me: u16,
    peer: u16,
    signal: Option<Port>,
    after: u32,
) -> Result<String, String> {
    let failed = |what: &str, error: XsError| format!("{what}: {error}");
    let mine = format!("/local/domain/{me}/talk");
    let theirs = format!("/local/domain/{peer}/talk");
    let open = [
        Permission { domid: me, access: Access::None },
        Permission { domid: peer, access: Access::Both },
    ];
    bus.write(&mine, b"ready").map_err(|error| failed("creating talk", error))?;
    bus.set_perms(&mine, &open).map_err(|error| failed("opening talk to the peer", error))?;
    let events = Rc::new(Cell::new(0));
    bus.watch(&theirs, "peer-talk", counter_callback(&events))
        .map_err(|error| failed("watching the peer's talk", error))?;
    let deadline = now() + 3 * WAIT_NS;
    // Marked rounds so far; `None` until the disconnection is known.
    let mut gone: Option<u32> = None;
    let mut last: Option<String> = None;
    let mut round = 1u32;
    loop {
        if now() > deadline {
            let marked = gone.unwrap_or(0);
            return Err(format!("talk round {round}: {marked} of {after} marked rounds in 180 s"));
        }
        if let Some(port) = signal {
            if gone.is_none() && port.take_pending() {
                println!(
                    "{name}: the hostile guest's signal: the store disconnected it; talk round \
                     {round} is next"
                );
                gone = Some(0);
            }
            if gone == Some(after) {
                bus.write(&mine, format!("end {round}").as_bytes())
                    .map_err(|error| failed("writing end", error))?;
                break;
            }
            let ping = match gone {
                Some(marked) => format!("ping {round} gone {}", marked + 1),
                None => format!("ping {round}"),
            };
            bus.write(&mine, ping.as_bytes()).map_err(|error| failed("writing ping", error))?;
            let before = (round > 1).then(|| format!("pong {}", round - 1));
            wait_value(bus, &theirs, &format!("pong {round}"), before.as_deref())?;
            match gone.as_mut() {
                Some(marked) => *marked += 1,
                // Paced until then, leaving the store to the others.
                None => sleep(5_000_000),
            }
        } else {
            let value = wait_change(bus, &theirs, last.as_deref())?;
            let words: alloc::vec::Vec<&str> = value.split(' ').collect();
            let is = |text: &str, number: u32| text.parse::<u32>().ok() == Some(number);
            let marked = gone.unwrap_or(0);
            match words[..] {
                ["end", i] if is(i, round) && marked == after => break,
                ["ping", i] if is(i, round) && gone.is_none() => {}
                ["ping", i, "gone", k] if is(i, round) && is(k, marked + 1) => {
                    if gone.is_none() {
                        println!(
                            "{name}: the peer's first ping after the hostile guest's \
                             disconnection: talk round {round}"
                        );
                    }
                    gone = Some(marked + 1);
                }
                _ => {
                    return Err(format!(
                        "{theirs} holds {value:?} in talk round {round} ({marked} marked)"
                    ))
                }
            }
            bus.write(&mine, format!("pong {round}").as_bytes())
                .map_err(|error| failed("writing pong", error))?;
            last = Some(value);
        }
        round += 1;
    }
    bus.unwatch(&theirs, "peer-talk").map_err(|error| failed("unwatch talk", error))?;
    Ok(format!("{} talk rounds, {} watch events", round - 1, events.get()))
}

/// The nodes the store writes for a domain at boot (Xen's `init-dom0less`), as a guest with one
/// vCPU and `memory_kib` KiB reads them: Linux reads `cpu/<n>/availability` and watches
/// `memory/target`; `/vm/<uuid>` is closed to the guest.
/// Says what it found.
fn check_populated(
    bus: &mut Xenbus,
    home: &str,
    me: u16,
    memory_kib: u32,
) -> Result<String, String> {
    let expect = |bus: &mut Xenbus, relative: &str, want: &str| match bus
        .read_string(&format!("{home}/{relative}"))
    {
        Ok(value) if value == want => Ok(()),
        other => Err(format!("{home}/{relative} reads {other:?}, expected {want:?}")),
    };
    expect(bus, "cpu/0/availability", "online")?;
    match bus.directory(&format!("{home}/cpu")) {
        Ok(cpus) if cpus == ["0"] => {}
        other => return Err(format!("{home}/cpu lists {other:?}, expected one vCPU")),
    }
    expect(bus, "memory/static-max", &format!("{memory_kib}"))?;
    // What the domain had when the store added it: a page may have gone to shared info.
    let target = match bus.read_string(&format!("{home}/memory/target")).map(|t| t.parse::<u32>()) {
        Ok(Ok(target)) if target > 0 && target <= memory_kib => target,
        other => return Err(format!("{home}/memory/target reads {other:?}")),
    };
    expect(bus, "memory/videoram", "-1")?;
    expect(bus, "domid", &format!("{me}"))?;
    expect(bus, "control/platform-feature-xs_reset_watches", "1")?;
    expect(bus, "control/shutdown", "")?;
    // The domain owns them (`n<me> r<root owner>`).
    match bus.get_perms(&format!("{home}/memory/target")) {
        Ok(perms) if perms.first().is_some_and(|owner| owner.domid == me) => {}
        other => return Err(format!("GET_PERMS of {home}/memory/target gave {other:?}")),
    }
    let vm = bus.read_string(&format!("{home}/vm")).map_err(|e| format!("reading vm: {e}"))?;
    if !vm.starts_with("/vm/") || vm.len() != 40 {
        return Err(format!("{home}/vm reads {vm:?}, not /vm/<uuid>"));
    }
    match bus.read(&format!("{vm}/name")) {
        Err(XsError::Errno(Errno::EACCES)) => {}
        other => return Err(format!("reading {vm}/name gave {other:?}, not EACCES")),
    }
    Ok(format!("cpu/0 online, memory target {target} of {memory_kib} KiB, vm {vm}"))
}

/// xorshift64*: delays and hostile bytes, reproducible from a `seed=`. The state must not be 0.
pub(crate) struct Random(pub(crate) u64);

impl Random {
    /// A generator for `seed` (any value; `stream` tells apart generators of one seed).
    pub(crate) fn new(seed: u64, stream: u64) -> Self {
        // splitmix64's finalizer spreads a small seed over all the bits.
        let mut z = seed ^ stream.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        Random((z ^ (z >> 31)) | 1)
    }

    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number below `bound` (0 if `bound` is 0).
    pub(crate) fn below(&mut self, bound: u64) -> u64 {
        self.next().checked_rem(bound).unwrap_or(0)
    }
}

/// Where domain `from` publishes the port of its signal to domain `to`.
fn signal_path(from: u16, to: u16) -> String {
    format!("/local/domain/{from}/signal/{to}")
}

/// Offers domain `to` a signal: an unbound port for it (`EVTCHNOP_alloc_unbound`), its number
/// published at `~/signal/<to>`, readable by `to` only, written in one transaction so that `to`
/// never finds it closed.
pub(crate) fn offer_signal(bus: &mut Xenbus, me: u16, to: u16) -> Result<Port, String> {
    let port = events::alloc_unbound(DOMID_SELF, to)
        .map_err(|error| format!("an unbound port for d{to}: {error:?}"))?;
    let path = signal_path(me, to);
    let perms = [
        Permission { domid: me, access: Access::None },
        Permission { domid: to, access: Access::Read },
    ];
    let number = format!("{}", port.0);
    bus.transaction(|tx| {
        tx.write(&path, number.as_bytes())?;
        tx.set_perms(&path, &perms)
    })
    .map_err(|error| format!("publishing {path}: {error}"))?;
    Ok(port)
}

/// Waits (at most [`WAIT_NS`]) until `to` has bound a port [`offer_signal`] made: an event
/// sent on an unbound port is dropped (Xen's `evtchn_send()` on `ECS_UNBOUND`).
pub(crate) fn wait_bound(port: Port, to: u16) -> Result<(), String> {
    let deadline = now() + WAIT_NS;
    loop {
        match events::status(DOMID_SELF, port.0) {
            Ok(status) if status.status == EVTCHNSTAT_interdomain => return Ok(()),
            Ok(status) if status.status == EVTCHNSTAT_unbound => {}
            other => return Err(format!("port {} offered to d{to}: {other:?}", port.0)),
        }
        if now() > deadline {
            return Err(format!("d{to} did not bind port {} in 60 s", port.0));
        }
        sleep(1_000_000);
    }
}

/// Raises a signal [`offer_signal`] made, once `to` has bound it.
pub(crate) fn raise_signal(port: Port, to: u16) -> Result<(), String> {
    wait_bound(port, to)?;
    port.send().map_err(|error| format!("sending on port {} to d{to}: {error:?}", port.0))
}

/// Binds the signal domain `from` offers this one, once its node is there; masked, so that it
/// is looked at with [`Port::take_pending`] or `SCHEDOP_poll` only, and not pending.
pub(crate) fn bind_signal(bus: &mut Xenbus, me: u16, from: u16) -> Result<Port, String> {
    let path = signal_path(from, me);
    let deadline = now() + WAIT_NS;
    // Until it is written, its parent is `from`'s and closed: EACCES, as Xen answers for a
    // missing node under a node the reader may not read (`errno_from_parents()`).
    let remote = loop {
        match bus.read_string(&path) {
            Ok(text) => break text.parse::<u32>().map_err(|_| format!("{path} holds {text:?}"))?,
            Err(XsError::Errno(Errno::ENOENT | Errno::EACCES)) if now() < deadline => {}
            Err(error) => return Err(format!("reading {path}: {error}")),
        }
        sleep(5_000_000);
    };
    let port = events::bind_interdomain(from, remote)
        .map_err(|error| format!("binding d{from}'s port {remote}: {error:?}"))?;
    port.mask();
    // Binding sets the new port pending, in case the other end sent before
    // (`evtchn_bind_interdomain()` in Xen's `xen/common/event_channel.c`). Not the signal: its
    // sender waits until the port is bound, and the senders here raise it seconds later.
    port.take_pending();
    Ok(port)
}

/// Waits (at most [`WAIT_NS`]) for a bound signal.
pub(crate) fn wait_signal(port: Port, what: &str) -> Result<(), String> {
    let deadline = now() + WAIT_NS;
    while !port.take_pending() {
        if now() > deadline {
            return Err(format!("no signal that {what} in 60 s"));
        }
        let _ = events::poll(&[port], deadline);
    }
    Ok(())
}

/// Reads `path` as a number every 5 ms until `done` says so (at most [`WAIT_NS`]).
pub(crate) fn wait_number(
    bus: &mut Xenbus,
    path: &str,
    what: &str,
    done: impl Fn(u64) -> bool,
) -> Result<u64, String> {
    let deadline = now() + WAIT_NS;
    loop {
        match bus.read_string(path) {
            Ok(text) => match text.parse() {
                Ok(value) if done(value) => return Ok(value),
                Ok(_) => {}
                Err(_) => return Err(format!("{path} holds {text:?}")),
            },
            Err(XsError::Errno(Errno::ENOENT)) => {}
            Err(error) => return Err(format!("reading {path}: {error}")),
        }
        if now() > deadline {
            return Err(format!("{what}: {path} did not move for 60 s"));
        }
        sleep(5_000_000);
    }
}
pub fn bench(name: &str, info: &StartInfo) {
    let count = u64::from(arg(info, "count", 1000).max(1));
    let Some((mut bus, me)) = connect(name) else { return };
    let path = format!("/local/domain/{me}/name");
    for _ in 0..10 {
        if let Err(error) = bus.read(&path) {
            return println!("{name}: FAIL reading {path}: {error}");
        }
    }
    let start = crate::guest::counter();
    for _ in 0..count {
        if let Err(error) = bus.read(&path) {
            return println!("{name}: FAIL reading {path}: {error}");
        }
    }
    let ticks = crate::guest::counter() - start;
    let frequency: u64;
    // SAFETY: reading CNTFRQ_EL0 has no side effect.
    unsafe { core::arch::asm!("mrs {0}, cntfrq_el0", out(reg) frequency, options(nomem, nostack)) };
    let per_read =
        (u128::from(ticks) * 1_000_000_000 / u128::from(frequency.max(1))) as u64 / count;
    println!("{name}: BENCH xs-read-roundtrip instructions={per_read}");
    println!("{name}: PASS xs-bench ({count} reads)");
}

/// `xs-filler` (`size=<bytes per value>`, default 1900): writes ever more nodes under its home
/// until the store stops it. The store's snapshot must always fit the xenstore domain's preserved
/// region, so the write that would overflow it costs this domain its connection (ring `error`
/// becomes `XENSTORE_ERROR_COMM`), unless a quota error comes first. Either way the store's
/// other clients go on. With `notify=<id>` it first offers that domain a signal and waits for
/// it to be bound, and raises it once stopped. `NAME: PASS xs-filler stopped after N nodes: ...`.
pub fn filler(name: &str, info: &StartInfo) {
    match run_filler(name, info) {
        Ok(summary) => println!("{name}: PASS xs-filler {summary}"),
        Err(why) => println!("{name}: FAIL {why}"),
    }
}

fn run_filler(name: &str, info: &StartInfo) -> Result<String, String> {
    let size = arg(info, "size", 1900) as usize;
    let Some((mut bus, me)) = connect(name) else { return Err("no xenstore".into()) };
    let notify = match info.bootarg("notify").and_then(|id| id.parse::<u16>().ok()) {
        Some(to) => {
            let port = offer_signal(&mut bus, me, to)?;
            wait_bound(port, to)?;
            Some((port, to))
        }
        None => None,
    };
    let value = alloc::vec![b'f'; size];
    let mut stopped = None;
    for index in 0..5000u32 {
        let path = format!("/local/domain/{me}/fill/n{index}");
        match bus.write(&path, &value) {
            Ok(()) => {}
            Err(XsError::Disconnected(error)) => {
                stopped =
                    Some(format!("stopped after {index} nodes: disconnected (ring error {error})"));
                break;
            }
            Err(XsError::Errno(errno)) => {
                stopped = Some(format!("stopped after {index} nodes: {}", errno.name));
                break;
            }
            Err(error) => return Err(format!("writing {path}: {error}")),
        }
    }
    let stopped = stopped
        .ok_or_else(|| format!("5000 nodes of {size} bytes written and nothing stopped it"))?;
    if let Some((port, to)) = notify {
        raise_signal(port, to)?;
    }
    Ok(stopped)
}
