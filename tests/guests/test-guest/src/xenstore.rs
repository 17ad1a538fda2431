//! xenstore behaviours of the test guest, through the runtime's [`Xenbus`] client:
//!
//! - `xs-chat-a`, `xs-chat-b` (`peer=<id>`, `rounds=<n>`, default 100): each opens a node
//!   `/local/domain/<self>/chat` to the peer (SET_PERMS), watches the peer's, and they
//!   ping-pong `n` rounds (a writes `ping i`, b answers `pong i`), each checking every value it
//!   reads; each also checks GET_DOMAIN_PATH, its `name` node, the nodes the store wrote for it
//!   at boot as Xen's `init-dom0less` does (`memory_kib=<n>`, default 16384: its
//!   `memory/static-max`; one vCPU), that its own `private` node is closed to the peer (EACCES)
//!   and that the peer's chat node takes its write. Ends with `NAME: PASS xs-chat rounds=N`;
//! - `xs-torture` (`keep=<n>`, default 256; `pings=<n>`, default 10): transactions in a loop
//!   while `xs-killer` crashes the store: each moves `torture/count` on by one and writes
//!   `torture/k<count>` (removing `k<count - keep>`, so the domain stays within its node
//!   quota). Every `torture/ping` the killer writes must raise a watch event; the guest answers
//!   each with `torture/pong`. It stops once `torture/done` appears, checks the store against
//!   what it committed, and ends with `NAME: PASS xs-torture commits=N pings=P retries=R`;
//! - `xs-killer` (`xenstore=<stub id>`, `victim=<torture id>`, `kills=<n>`, default 10,
//!   `seed=<n>`; needs the `control` capability): once the victim has committed 5
//!   transactions, `n` times: waits 0-20 ms, crashes the store (`SCHEDOP_remote_shutdown`,
//!   `SHUTDOWN_crash`), times how long until a READ is answered
//!   (`xs-killer: kill K downtime_ns=X`), waits for the victim to commit again, writes
//!   `torture/ping` = K and waits for its `pong`.
//!   Then writes `torture/done` and ends with `xs-killer: PASS kills=N max_downtime_ns=M`
//!   (its lines start with `xs-killer:`, whatever its `name=`);
//! - `xs-hostile` (`peer=<id>` of another domain): misbehaves in every way listed in
//!   `run_hostile`, each answered with Xen's error, the last being a header longer than
//!   `XENSTORE_PAYLOAD_MAX`, which must cost it its connection. Ends with
//!   `NAME: PASS xs-hostile checks=N`;
//! - `xs-bench` (`count=<n>`, default 1000): `NAME: BENCH xs-read-roundtrip instructions=X`,
//!   the virtual time per READ of a small node (instructions under `-icount shift=0`).
//!
//! A failure prints `NAME: FAIL ...` naming what went wrong.

use alloc::format;
use alloc::rc::Rc;
use alloc::string::String;
use alloc::vec::Vec;
use core::cell::Cell;

use xenolith_abi::xen::hypercall::DOMID_SELF;
use xenolith_abi::xen::sched::{sched_remote_shutdown, SCHEDOP_remote_shutdown, SHUTDOWN_crash};
use xenolith_abi::xen::xs_wire::{msg, XENSTORE_ERROR_PROTO, XENSTORE_SERVER_FEATURE_ERROR};
use xenolith_runtime::events;
use xenolith_runtime::xenbus::{Access, Errno, Permission, Xenbus, XsError};
use xenolith_runtime::xenbus_wire::encode;
use xenolith_runtime::{hypercall, println, StartInfo};

pub(crate) fn arg(info: &StartInfo, key: &str, default: u32) -> u32 {
    info.bootarg(key).and_then(|value| value.parse().ok()).unwrap_or(default)
}

/// Virtual time in ns (no overflow for centuries).
pub(crate) fn now() -> u64 {
    let ticks = crate::guest::counter();
    let frequency: u64;
    // SAFETY: reading CNTFRQ_EL0 has no side effect.
    unsafe { core::arch::asm!("mrs {0}, cntfrq_el0", out(reg) frequency, options(nomem, nostack)) };
    (u128::from(ticks) * 1_000_000_000 / u128::from(frequency.max(1))) as u64
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
fn counter_callback(events: &Rc<Cell<u64>>) -> impl FnMut(&xenolith_runtime::xenbus::WatchEvent) {
    let events = events.clone();
    move |_| events.set(events.get() + 1)
}

const WAIT_NS: u64 = 60_000_000_000;

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
        Ok(rounds) => println!("{name}: PASS xs-chat rounds={rounds}"),
        Err(why) => println!("{name}: FAIL {why}"),
    }
    // Stay alive: when a domain dies, xenstore removes the nodes it owns (Xen's
    // `domain_tree_remove`), and the peer may still be reading them.
    loop {
        sleep(1_000_000_000);
    }
}

fn run_chat(name: &str, info: &StartInfo, initiator: bool) -> Result<u32, String> {
    let peer = arg(info, "peer", 0) as u16;
    let rounds = arg(info, "rounds", 100);
    let Some((mut bus, me)) = connect(name) else { return Err("no xenstore".into()) };
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
    Ok(rounds)
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

/// What `k<count>` holds.
fn torture_value(count: u64) -> String {
    format!("v{count}-{:08x}", (count as u32).wrapping_mul(0x9E37_79B1))
}

pub fn torture(name: &str, info: &StartInfo) {
    if let Err(why) = run_torture(name, info) {
        println!("{name}: FAIL {why}");
    }
}

fn run_torture(name: &str, info: &StartInfo) -> Result<(), String> {
    let keep = u64::from(arg(info, "keep", 256).max(1));
    let expected_pings = arg(info, "pings", 10);
    let Some((mut bus, me)) = connect(name) else { return Err("no xenstore".into()) };
    let base = format!("/local/domain/{me}/torture");
    let (count_path, ping_path, done_path) =
        (format!("{base}/count"), format!("{base}/ping"), format!("{base}/done"));
    let pings = Rc::new(Cell::new(0));
    let dones = Rc::new(Cell::new(0));
    bus.watch(&ping_path, "ping", counter_callback(&pings))
        .map_err(|error| format!("watching {ping_path}: {error}"))?;
    bus.watch(&done_path, "done", counter_callback(&dones))
        .map_err(|error| format!("watching {done_path}: {error}"))?;
    let mut committed = match bus.read_string(&count_path) {
        Ok(text) => text.parse().map_err(|_| format!("{count_path} holds {text:?}"))?,
        Err(XsError::Errno(Errno::ENOENT)) => 0u64,
        Err(error) => return Err(format!("reading {count_path}: {error}")),
    };
    let mut commits = 0u64;
    let mut seen = [false; 64];
    let (mut pings_handled, mut dones_handled) = (0, 0);
    loop {
        let result = bus.transaction(|tx| {
            let count = match tx.read_string(&count_path) {
                Ok(text) => text.parse::<u64>().map_err(|_| {
                    XsError::Protocol(xenolith_runtime::xenbus::ProtocolError::Malformed(
                        "the count is not a number",
                    ))
                })?,
                Err(XsError::Errno(Errno::ENOENT)) => 0,
                Err(error) => return Err(error),
            };
            tx.write(&count_path, format!("{}", count + 1).as_bytes())?;
            tx.write(&format!("{base}/k{count}"), torture_value(count).as_bytes())?;
            if count >= keep {
                tx.rm(&format!("{base}/k{}", count - keep))?;
            }
            Ok(count + 1)
        });
        match result {
            Ok(count) if count == committed + 1 => committed = count,
            Ok(count) => {
                return Err(format!("a commit moved the count to {count} from {committed}"))
            }
            Err(error) => return Err(format!("transaction {}: {error}", commits + 1)),
        }
        commits += 1;
        bus.poll_watches().map_err(|error| format!("dispatching watches: {error}"))?;
        if pings.get() != pings_handled {
            pings_handled = pings.get();
            match bus.read_string(&ping_path) {
                Ok(text) => {
                    let value: usize =
                        text.parse().map_err(|_| format!("{ping_path} holds {text:?}"))?;
                    if value == 0 || value >= seen.len() {
                        return Err(format!("{ping_path} holds {value}"));
                    }
                    seen[value] = true;
                    bus.write(&format!("{base}/pong"), text.as_bytes())
                        .map_err(|error| format!("writing pong: {error}"))?;
                }
                // The watch fires once when it is set, before the killer wrote anything.
                Err(XsError::Errno(Errno::ENOENT)) => {}
                Err(error) => return Err(format!("reading {ping_path}: {error}")),
            }
        }
        if dones.get() != dones_handled {
            dones_handled = dones.get();
            match bus.read(&done_path) {
                Ok(_) => break,
                Err(XsError::Errno(Errno::ENOENT)) => {}
                Err(error) => return Err(format!("reading {done_path}: {error}")),
            }
        }
    }
    // The store must hold exactly what was committed.
    match bus.read_string(&count_path) {
        Ok(text) if text == format!("{committed}") => {}
        other => return Err(format!("{count_path} reads {other:?}, committed {committed}")),
    }
    let first = committed.saturating_sub(keep);
    for index in first..committed {
        let path = format!("{base}/k{index}");
        match bus.read_string(&path) {
            Ok(value) if value == torture_value(index) => {}
            other => return Err(format!("{path} reads {other:?} (committed {committed})")),
        }
    }
    let children = bus.directory(&base).map_err(|error| format!("listing {base}: {error}"))?;
    let keys: Vec<&String> = children.iter().filter(|child| child.starts_with('k')).collect();
    if keys.len() as u64 != committed - first {
        return Err(format!("{} k nodes in {base}, expected {}", keys.len(), committed - first));
    }
    let missing: Vec<usize> = (1..=expected_pings as usize)
        .filter(|&ping| !seen.get(ping).copied().unwrap_or(false))
        .collect();
    if !missing.is_empty() {
        return Err(format!("no watch event for pings {missing:?} (commits={commits})"));
    }
    println!(
        "{name}: PASS xs-torture commits={commits} pings={expected_pings} retries={}",
        bus.stats().transaction_retries
    );
    Ok(())
}

/// xorshift64*: the killer's delays, reproducible from `seed=`.
pub(crate) struct Random(pub(crate) u64);

impl Random {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

/// The killer's lines start with this, whatever its `name=`: `cargo xtask bench` reads them.
const KILLER: &str = "xs-killer";

pub fn killer(_name: &str, info: &StartInfo) {
    if let Err(why) = run_killer(KILLER, info) {
        println!("{KILLER}: FAIL {why}");
    }
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

fn run_killer(name: &str, info: &StartInfo) -> Result<(), String> {
    let stub = arg(info, "xenstore", 1) as u16;
    let victim = arg(info, "victim", 2) as u16;
    let kills = arg(info, "kills", 10);
    let mut random = Random(u64::from(arg(info, "seed", 0x5EED)) | 1 << 40);
    let Some((mut bus, _)) = connect(name) else { return Err("no xenstore".into()) };
    let base = format!("/local/domain/{victim}/torture");
    let count_path = format!("{base}/count");
    wait_number(&mut bus, &count_path, "the victim's first 5 commits", |count| count >= 5)?;
    let mut max_downtime = 0;
    for kill in 1..=kills {
        sleep(random.next() % 20_000_001);
        let request = sched_remote_shutdown { domain_id: stub, _pad: 0, reason: SHUTDOWN_crash };
        let start = now();
        let result = hypercall::sched_op(SCHEDOP_remote_shutdown, (&raw const request) as u64);
        if result != 0 {
            return Err(format!("SCHEDOP_remote_shutdown of d{stub} returned {result}"));
        }
        // The client waits through the restart: the first READ answered ends the downtime.
        let mut attempts = 0;
        let count = loop {
            match bus.read_string(&count_path) {
                Ok(text) => break text.parse::<u64>().map_err(|_| format!("count {text:?}"))?,
                Err(error) if attempts < 100 => {
                    println!("{name}: kill {kill}: read failed ({error}), again");
                    attempts += 1;
                }
                Err(error) => return Err(format!("no READ answered after kill {kill}: {error}")),
            }
        };
        let downtime = now() - start;
        max_downtime = max_downtime.max(downtime);
        println!("{name}: kill {kill} downtime_ns={downtime}");
        wait_number(&mut bus, &count_path, "the victim's progress", |value| value > count)?;
        let ping = format!("{kill}");
        bus.write(&format!("{base}/ping"), ping.as_bytes())
            .map_err(|error| format!("writing ping {kill}: {error}"))?;
        // The victim answers each ping before the next is sent, so it reads every value.
        let pong = format!("{base}/pong");
        wait_number(&mut bus, &pong, "the victim's pong", |value| value >= u64::from(kill))?;
    }
    bus.write(&format!("{base}/done"), b"1").map_err(|error| format!("writing done: {error}"))?;
    println!("{name}: PASS kills={kills} max_downtime_ns={max_downtime}");
    Ok(())
}

/// Counts the checks `xs-hostile` passes; the first failure ends the run.
struct Checks<'a> {
    name: &'a str,
    passed: u32,
}

impl Checks<'_> {
    /// `result` must be one of the errors in `accept`: which one.
    fn error<T: core::fmt::Debug>(
        &mut self,
        what: &str,
        result: Result<T, XsError>,
        accept: &[Errno],
    ) -> Result<Errno, String> {
        match result {
            Err(XsError::Errno(errno)) if accept.contains(&errno) => {
                self.passed += 1;
                println!("{}: {what} -> {} as expected", self.name, errno.name);
                Ok(errno)
            }
            other => {
                let names: Vec<&str> = accept.iter().map(|errno| errno.name).collect();
                Err(format!("{what} -> {other:?}, expected {}", names.join(" or ")))
            }
        }
    }

    fn ok<T>(&mut self, what: &str, result: Result<T, XsError>) -> Result<T, String> {
        match result {
            Ok(value) => {
                self.passed += 1;
                println!("{}: {what} -> OK", self.name);
                Ok(value)
            }
            Err(error) => Err(format!("{what} -> {error}")),
        }
    }
}

/// A raw request's reply, as a result (`XS_ERROR` as its error).
fn raw(bus: &mut Xenbus, kind: u32, tx_id: u32, payload: &[u8]) -> Result<Vec<u8>, XsError> {
    bus.raw(kind, tx_id, payload)?.into_result(kind)
}

pub fn hostile(name: &str, info: &StartInfo) {
    let mut checks = Checks { name, passed: 0 };
    match run_hostile(&mut checks, info) {
        Ok(()) => println!("{name}: PASS xs-hostile checks={}", checks.passed),
        Err(why) => println!("{name}: FAIL check {}: {why}", checks.passed + 1),
    }
}

/// In order: unknown types, an oversized value, illegal paths, another domain's node,
/// privileged requests, a watch flood, a transaction flood, an unknown transaction, a request
/// in one-byte writes, and a header longer than `XENSTORE_PAYLOAD_MAX`.
fn run_hostile(checks: &mut Checks<'_>, info: &StartInfo) -> Result<(), String> {
    let name = checks.name;
    let peer = arg(info, "peer", 0) as u16;
    let Some((mut bus, me)) = connect(name) else { return Err("no xenstore".into()) };
    let home = format!("/local/domain/{me}");
    // Xen answers a type it has no handler for with ENOSYS (xenstored_core.c process_message).
    for kind in [20, msg::XS_TYPE_COUNT, msg::XS_INVALID] {
        let what = format!("message type {kind}");
        checks.error(&what, raw(&mut bus, kind, 0, b"\0"), &[Errno::ENOSYS])?;
    }
    // Xen's node-size quota (2048 bytes by default) answers ENOSPC.
    let big = [b'x'; 3000];
    let quota = checks.error(
        "a 3000-byte value",
        bus.write(&format!("{home}/hostile/big"), &big),
        &[Errno::ENOSPC, Errno::E2BIG],
    )?;
    println!("{name}: the node-size quota answers {}", quota.name);
    for path in ["bad*chars", "a//b", "trailing/", "sp ace"] {
        let path = format!("{home}/{path}");
        checks.error(&format!("WRITE {path:?}"), bus.write(&path, b"x"), &[Errno::EINVAL])?;
    }
    checks.error("READ \"/\\x01\"", bus.read("/\x01"), &[Errno::EINVAL])?;
    let theirs = format!("/local/domain/{peer}/name");
    checks.error(&format!("READ {theirs}"), bus.read(&theirs), &[Errno::EACCES])?;
    let privileged: [(&str, u32, String); 4] = [
        ("INTRODUCE", msg::XS_INTRODUCE, format!("{peer}\0{}\0{}\0", 0x39001, 1)),
        ("RELEASE", msg::XS_RELEASE, format!("{peer}\0")),
        ("SET_TARGET", msg::XS_SET_TARGET, format!("{me}\0{peer}\0")),
        ("CONTROL", msg::XS_CONTROL, String::from("print\0hello\0")),
    ];
    for (what, kind, payload) in privileged {
        checks.error(what, raw(&mut bus, kind, 0, payload.as_bytes()), &[Errno::EACCES])?;
    }
    // Watches until the quota stops them, then RESET_WATCHES.
    let mut watches = 0;
    let flood = loop {
        let payload = format!("{home}/hostile/w{watches}\0t{watches}\0");
        match raw(&mut bus, msg::XS_WATCH, 0, payload.as_bytes()) {
            Ok(_) if watches < 10_000 => watches += 1,
            other => break other,
        }
        // The store fires each new watch once: drop those events as they come.
        bus.poll_watches().map_err(|error| format!("draining watch events: {error}"))?;
    };
    println!("{name}: {watches} watches set before the store refused one");
    checks.error("watch flood", flood, &[Errno::E2BIG, Errno::ENOSPC])?;
    checks.ok("RESET_WATCHES", bus.reset_watches())?;
    let again = format!("{home}/hostile/w0\0t0\0");
    checks.ok("a watch after the reset", raw(&mut bus, msg::XS_WATCH, 0, again.as_bytes()))?;
    checks.ok("its UNWATCH", raw(&mut bus, msg::XS_UNWATCH, 0, again.as_bytes()))?;
    // Transactions until the quota stops them, then end them all.
    let mut open = Vec::new();
    let flood = loop {
        match bus.transaction_start() {
            Ok(id) if open.len() < 10_000 => open.push(id),
            other => break other,
        }
    };
    println!("{name}: {} transactions open before the store refused one", open.len());
    checks.error("transaction flood", flood, &[Errno::ENOSPC, Errno::E2BIG])?;
    for &id in &open {
        bus.transaction_end(id, false)
            .map_err(|error| format!("ending transaction {id}: {error}"))?;
    }
    checks.ok("ending the open transactions", Ok::<_, XsError>(open.len()))?;
    let read_name = format!("{home}/name\0");
    checks.error(
        "READ in an unknown transaction",
        raw(&mut bus, msg::XS_READ, 0x7fff_0001, read_name.as_bytes()),
        &[Errno::ENOENT],
    )?;
    // One request, one byte per ring write (and notification).
    let tiny = format!("{home}/hostile/tiny");
    let req_id = bus.next_request_id();
    let message = encode(msg::XS_WRITE, req_id, 0, format!("{tiny}\0split-write").as_bytes());
    for byte in &message {
        bus.send_bytes(core::slice::from_ref(byte), None)
            .map_err(|error| format!("writing one byte: {error}"))?;
    }
    let reply = bus
        .wait_reply(req_id, Some(now() + WAIT_NS))
        .and_then(|reply| reply.into_result(msg::XS_WRITE));
    checks.ok("a WRITE in one-byte pieces", reply)?;
    match bus.read_string(&tiny) {
        Ok(value) if value == "split-write" => {}
        other => return Err(format!("{tiny} reads {other:?} after the split write")),
    }
    // A header announcing 4097 bytes: the store must drop this connection, answering nothing.
    let req_id = bus.next_request_id();
    let mut header = encode(msg::XS_READ, req_id, 0, &[]);
    header[12..16].copy_from_slice(&4097u32.to_le_bytes());
    bus.send_bytes(&header, None).map_err(|error| format!("sending the long header: {error}"))?;
    let deadline = now() + 5_000_000_000;
    while bus.error_field() != XENSTORE_ERROR_PROTO {
        if let Some(reply) =
            bus.try_receive().map_err(|error| format!("after the header: {error}"))?
        {
            return Err(format!("a reply after the long header: {:?}", reply.header));
        }
        if now() > deadline {
            return Err(format!("error field {} 5 s after a 4097-byte header", bus.error_field()));
        }
        sleep(1_000_000);
    }
    sleep(200_000_000);
    match bus.try_receive() {
        Ok(None) => {}
        other => return Err(format!("the store answered a dropped connection: {other:?}")),
    }
    checks.passed += 1;
    println!(
        "{name}: a 4097-byte header -> disconnected with XENSTORE_ERROR_PROTO (error feature {})",
        if bus.server_features() & XENSTORE_SERVER_FEATURE_ERROR != 0 {
            "offered"
        } else {
            "not offered"
        }
    );
    Ok(())
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
/// other clients go on. `NAME: PASS xs-filler stopped after N nodes: ...`.
pub fn filler(name: &str, info: &StartInfo) {
    let size = arg(info, "size", 1900) as usize;
    let Some((mut bus, me)) = connect(name) else { return };
    let value = alloc::vec![b'f'; size];
    for index in 0..5000u32 {
        let path = format!("/local/domain/{me}/fill/n{index}");
        match bus.write(&path, &value) {
            Ok(()) => {}
            Err(XsError::Disconnected(error)) => {
                return println!(
                    "{name}: PASS xs-filler stopped after {index} nodes: disconnected (ring error {error})"
                );
            }
            Err(XsError::Errno(errno)) => {
                return println!(
                    "{name}: PASS xs-filler stopped after {index} nodes: {}",
                    errno.name
                );
            }
            Err(error) => return println!("{name}: FAIL writing {path}: {error}"),
        }
    }
    println!("{name}: FAIL 5000 nodes of {size} bytes written and nothing stopped it");
}
