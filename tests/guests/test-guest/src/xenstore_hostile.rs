//! `xs-hostile` (`peer=<id>` of another domain; `notify=<id>`, `filler=<id>`, `seed=<n>`,
//! `random=<n>`, default 500): a guest that misbehaves towards the store in every way
//! [`run_hostile`] lists, each answered with Xen's error, then sends `n` random requests (drawn
//! from the seed) and finally random bytes, which must cost it its connection. With
//! `notify=<id>` it offers that domain a signal at start and raises it once disconnected; with
//! `filler=<id>` it waits for that domain's signal (the filler has stopped) before its random
//! requests, so that it never races the filler for the store's last bytes of preserved region.
//! Ends with `NAME: PASS xs-hostile checks=N`.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use xenolith_abi::xen::xs_wire::{
    msg, XENSTORE_ERROR_PROTO, XENSTORE_PAYLOAD_MAX, XENSTORE_SERVER_FEATURE_ERROR,
    XSD_SOCKMSG_SIZE,
};
use xenolith_runtime::xenbus::{Errno, Xenbus, XsError};
use xenolith_runtime::xenbus_wire::encode;
use xenolith_runtime::{println, StartInfo};

use crate::xenstore::{
    arg, arg64, bind_signal, connect, now, offer_signal, raise_signal, sleep, wait_bound,
    wait_signal, Random, WAIT_NS,
};

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
/// in one-byte writes, random requests ([`random_requests`]) and random bytes
/// ([`random_bytes`]), which end the connection.
fn run_hostile(checks: &mut Checks<'_>, info: &StartInfo) -> Result<(), String> {
    let name = checks.name;
    let peer = arg(info, "peer", 0) as u16;
    let seed = arg64(info, "seed", 0x5EED);
    let Some((mut bus, me)) = connect(name) else { return Err("no xenstore".into()) };
    let home = format!("/local/domain/{me}");
    let notify = match info.bootarg("notify").and_then(|id| id.parse::<u16>().ok()) {
        Some(to) => Some((offer_signal(&mut bus, me, to)?, to)),
        None => None,
    };
    let filler = match info.bootarg("filler").and_then(|id| id.parse::<u16>().ok()) {
        Some(from) => Some(bind_signal(&mut bus, me, from)?),
        None => None,
    };
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
    if let Some(port) = filler {
        wait_signal(port, "the filler stopped")?;
        println!("{name}: the filler has stopped; random requests next");
    }
    // The random requests may change this domain's own nodes, the signal's among them.
    if let Some((port, to)) = notify {
        wait_bound(port, to)?;
    }
    let mut random = Random::new(seed, 3);
    random_requests(checks, &mut bus, &mut random, &home, arg(info, "random", 500))?;
    // The random requests changed nothing the store keeps from this domain.
    checks.error(&format!("READ {theirs} again"), bus.read(&theirs), &[Errno::EACCES])?;
    match bus.get_domain_path(me) {
        Ok(path) if path == home => {}
        other => return Err(format!("GET_DOMAIN_PATH {me} gives {other:?} after them")),
    }
    random_bytes(checks, &mut bus, &mut random, seed)?;
    println!(
        "{name}: random bytes -> disconnected with XENSTORE_ERROR_PROTO (error feature {})",
        if bus.server_features() & XENSTORE_SERVER_FEATURE_ERROR != 0 {
            "offered"
        } else {
            "not offered"
        }
    );
    if let Some((port, to)) = notify {
        raise_signal(port, to)?;
        println!("{name}: signal raised to d{to}");
    }
    Ok(())
}

/// Paths a random request names: this domain's own (relative and absolute), another's, the
/// special watch paths, the root and nodes of the store's own.
const PATHS: [&str; 10] = [
    "r0",
    "r1/x",
    "/local/domain/1/chat",
    "/local/domain/1/name",
    "/local/domain/0",
    "@releaseDomain",
    "@introduceDomain",
    "/",
    "/vm",
    "/tool/xenstored",
];

/// A random request: its type (mostly one of Xen's, sometimes any number), its transaction id
/// (mostly none, sometimes a small or any number) and up to 5 fields, each random bytes, a
/// path (under `home` or of [`PATHS`]), a number or a permission, most of them NUL-terminated.
fn random_request(random: &mut Random, home: &str) -> (u32, u32, Vec<u8>) {
    let kind = match random.below(16) {
        0 => random.next() as u32,
        _ => random.below(u64::from(msg::XS_TYPE_COUNT) + 2) as u32,
    };
    let tx_id = match random.below(10) {
        0..=5 => 0,
        6..=8 => 1 + random.below(16) as u32,
        _ => random.next() as u32,
    };
    let mut payload = Vec::new();
    for _ in 0..random.below(6) {
        match random.below(6) {
            0 => {
                for _ in 0..random.below(64) {
                    payload.push(random.next() as u8);
                }
            }
            1 => payload.extend_from_slice(format!("r{}", random.below(8)).as_bytes()),
            2 => payload.extend_from_slice(format!("{home}/r{}", random.below(8)).as_bytes()),
            3 => payload
                .extend_from_slice(PATHS[random.below(PATHS.len() as u64) as usize].as_bytes()),
            4 => payload.extend_from_slice(format!("{}", random.below(1 << 20)).as_bytes()),
            _ => {
                let access = [b'n', b'r', b'w', b'b', b'x'][random.below(5) as usize];
                payload.push(access);
                payload.extend_from_slice(format!("{}", random.below(6)).as_bytes());
            }
        }
        if random.below(8) != 0 {
            payload.push(0);
        }
    }
    payload.truncate(XENSTORE_PAYLOAD_MAX);
    (kind, tx_id, payload)
}

/// `count` random requests ([`random_request`]), each of which must be answered, with its own
/// type or an `XS_ERROR` naming one of Xen's errors; the connection must stay up.
fn random_requests(
    checks: &mut Checks<'_>,
    bus: &mut Xenbus,
    random: &mut Random,
    home: &str,
    count: u32,
) -> Result<(), String> {
    let name = checks.name;
    println!("{name}: {count} random requests from the seed");
    let (mut answered, mut refused) = (0u32, 0u32);
    for index in 0..count {
        let (kind, tx_id, payload) = random_request(random, home);
        let what = || format!("random request {index} (type {kind}, tx {tx_id}, {payload:?})");
        let reply = bus
            .raw_until(kind, tx_id, &payload, Some(now() + WAIT_NS))
            .map_err(|error| format!("{}: {error}", what()))?;
        match reply.into_result(kind) {
            Ok(_) => answered += 1,
            Err(XsError::Errno(_)) => refused += 1,
            Err(error) => return Err(format!("{}: {error}", what())),
        }
        // Watch events its watches raise are dropped as they come.
        bus.poll_watches().map_err(|error| format!("draining watch events: {error}"))?;
    }
    checks.passed += 1;
    println!("{name}: {count} random requests -> {answered} done, {refused} refused");
    Ok(())
}

/// How the store must frame `stream` (Xen's `read_message()`): each message is a header and
/// as many payload bytes as it announces, and a header announcing more than
/// `XENSTORE_PAYLOAD_MAX` ends the connection. `Ok(offset)` of the first such header, or
/// `Err(bytes)` still needed to end the message the stream stops in (0 at a boundary).
fn framing(stream: &[u8]) -> Result<usize, usize> {
    let mut at = 0;
    loop {
        let rest = stream.len() - at;
        if rest < XSD_SOCKMSG_SIZE {
            return Err(if rest == 0 { 0 } else { XSD_SOCKMSG_SIZE - rest });
        }
        let field = &stream[at + 12..at + 16];
        let len = u32::from_le_bytes([field[0], field[1], field[2], field[3]]) as usize;
        if len > XENSTORE_PAYLOAD_MAX {
            return Ok(at);
        }
        if rest < XSD_SOCKMSG_SIZE + len {
            return Err(XSD_SOCKMSG_SIZE + len - rest);
        }
        at += XSD_SOCKMSG_SIZE + len;
    }
}

/// 16 to 2048 random bytes in random pieces, completed (in the rare case they frame only
/// whole messages) with zeros and a header announcing 4097 bytes: the store must drop the
/// connection at the first header announcing more than `XENSTORE_PAYLOAD_MAX`, setting the
/// page's `error` to `XENSTORE_ERROR_PROTO` and answering nothing, not even whole messages
/// before it (Xen's `ignore_connection()` drops the queued output).
fn random_bytes(
    checks: &mut Checks<'_>,
    bus: &mut Xenbus,
    random: &mut Random,
    seed: u64,
) -> Result<(), String> {
    let name = checks.name;
    let mut stream: Vec<u8> = (0..16 + random.below(2033)).map(|_| random.next() as u8).collect();
    let random_len = stream.len();
    let violation = loop {
        match framing(&stream) {
            Ok(at) => break at,
            Err(0) => {
                let mut header = encode(msg::XS_READ, 0, 0, &[]);
                header[12..16].copy_from_slice(&4097u32.to_le_bytes());
                stream.extend_from_slice(&header);
            }
            Err(missing) => stream.resize(stream.len() + missing, 0),
        }
    };
    println!(
        "{name}: {random_len} random bytes (seed {seed}), {} sent; the header at byte \
         {violation} announces {} bytes",
        stream.len(),
        u32::from_le_bytes([
            stream[violation + 12],
            stream[violation + 13],
            stream[violation + 14],
            stream[violation + 15]
        ])
    );
    let mut sent = 0;
    while sent < stream.len() {
        let piece = (1 + random.below(64) as usize).min(stream.len() - sent);
        match bus.send_bytes(&stream[sent..sent + piece], Some(now() + WAIT_NS)) {
            Ok(()) => sent += piece,
            // The store may drop the connection before the rest is sent.
            Err(XsError::Disconnected(_)) if sent + piece >= violation + XSD_SOCKMSG_SIZE => break,
            Err(error) => return Err(format!("sending random byte {sent}: {error}")),
        }
    }
    let deadline = now() + 5_000_000_000;
    while bus.error_field() != XENSTORE_ERROR_PROTO {
        if let Some(reply) =
            bus.try_receive().map_err(|error| format!("after the random bytes: {error}"))?
        {
            return Err(format!("a reply after the random bytes: {:?}", reply.header));
        }
        if now() > deadline {
            return Err(format!("error field {} 5 s after the random bytes", bus.error_field()));
        }
        sleep(1_000_000);
    }
    sleep(200_000_000);
    match bus.try_receive() {
        Ok(None) => {}
        other => return Err(format!("the store answered a dropped connection: {other:?}")),
    }
    checks.passed += 1;
    Ok(())
}
