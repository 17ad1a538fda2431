//! The console ring every domain gets when the system has a console domain, as Xen's toolstack
//! sets it up (issue 13's first deliverable): its page at `GUEST_MAGIC_BASE` +
//! `CONSOLE_PFN_OFFSET`, `HVM_PARAM_CONSOLE_PFN` and `_EVTCHN`, and grant entry
//! `GNTTAB_RESERVED_CONSOLE` for the console domain.
//!
//! - `console-client`: checks its parameters, writes a line into its ring's `out` half and
//!   waits for a line in the `in` half.
//! - `console-server` (holds `console`; `client=<id>`): maps the client's ring through grant
//!   entry 0, reads the client's line, and answers with one.
//! - `console-reader` (holds `console`): binds `VIRQ_CONSOLE` and reads what is typed on the
//!   UART with `CONSOLEIO_read`, line by line.
//! - `console-lines`, `console-killer`, `console-hostile`, `console-bench`, `console-commands`:
//!   see each function.
//!
//! The ring is `struct xencons_interface` (`xen/include/public/io/console.h`): `in[1024]`,
//! `out[2048]`, then the free-running `uint32_t` indexes `in_cons`, `in_prod`, `out_cons`,
//! `out_prod`, each masked with its half's size.

use core::sync::atomic::Ordering;

use xenolith_abi::xen::arch_arm::{GUEST_MAGIC_BASE, GUEST_MAGIC_CONSOLE_PFN_OFFSET};
use xenolith_abi::xen::grant_table::GNTTAB_RESERVED_CONSOLE;
use xenolith_abi::xen::hvm::{HVM_PARAM_CONSOLE_EVTCHN, HVM_PARAM_CONSOLE_PFN};
use xenolith_abi::xen::hypercall::DOMID_SELF;
use xenolith_runtime::grants::{self, SharedPage, MAP_AREA};
use xenolith_runtime::{hypercall, println, StartInfo};

use xenolith_abi::xen::console::{
    XENCONS_IN_CONS_OFFSET as IN_CONS, XENCONS_IN_OFFSET as IN, XENCONS_IN_PROD_OFFSET as IN_PROD,
    XENCONS_IN_SIZE as IN_SIZE, XENCONS_OUT_CONS_OFFSET as OUT_CONS, XENCONS_OUT_OFFSET as OUT,
    XENCONS_OUT_PROD_OFFSET as OUT_PROD, XENCONS_OUT_SIZE as OUT_SIZE,
};

/// Appends `bytes` to the half at `base` (`size` bytes) whose producer index is at `prod`.
fn produce(page: SharedPage, base: usize, size: u32, prod: usize, bytes: &[u8]) {
    let start = page.atomic_u32(prod).load(Ordering::Acquire);
    for (index, &byte) in bytes.iter().enumerate() {
        let at = start.wrapping_add(index as u32) & (size - 1);
        page.write_u8(base + at as usize, byte);
    }
    page.atomic_u32(prod).store(start.wrapping_add(bytes.len() as u32), Ordering::Release);
}

/// Takes a whole line (up to `\n`) from the half at `base`, if one is there; `None` otherwise.
fn consume_line(
    page: SharedPage,
    base: usize,
    size: u32,
    [cons, prod]: [usize; 2],
    line: &mut [u8; 128],
) -> Option<usize> {
    let (start, end) = (
        page.atomic_u32(cons).load(Ordering::Acquire),
        page.atomic_u32(prod).load(Ordering::Acquire),
    );
    let available = end.wrapping_sub(start).min(size) as usize;
    for index in 0..available.min(line.len()) {
        let byte = page.read_u8(base + (start.wrapping_add(index as u32) & (size - 1)) as usize);
        if byte == b'\n' {
            page.atomic_u32(cons).store(start.wrapping_add(index as u32 + 1), Ordering::Release);
            return Some(index);
        }
        line[index] = byte;
    }
    None
}

/// Yields until `ready` holds, at most `rounds` times.
fn wait_for(rounds: u32, mut ready: impl FnMut() -> bool) -> bool {
    for _ in 0..rounds {
        if ready() {
            return true;
        }
        hypercall::sched_op(xenolith_abi::xen::sched::SCHEDOP_yield, 0);
    }
    false
}

pub fn client(name: &str) {
    let pfn = hypercall::hvm_get_param(DOMID_SELF, HVM_PARAM_CONSOLE_PFN);
    let port = hypercall::hvm_get_param(DOMID_SELF, HVM_PARAM_CONSOLE_EVTCHN);
    let address = GUEST_MAGIC_BASE + GUEST_MAGIC_CONSOLE_PFN_OFFSET * 4096;
    if pfn != Ok(address / 4096) || !matches!(port, Ok(port) if port != 0) {
        return println!("{name}: FAIL console pfn {pfn:?}, port {port:?}");
    }
    // SAFETY: the page lies in Xen's magic region, which the runtime maps as normal memory and
    // nothing of this domain uses; the core keeps the console ring page mapped there for the
    // domain's life (the contract of `HVM_PARAM_CONSOLE_PFN`). Only volatile and atomic
    // accessors touch it.
    let page = unsafe { SharedPage::at(address) };
    produce(page, OUT, OUT_SIZE, OUT_PROD, b"hello through the console ring\n");
    println!("{name}: PASS console ring at {address:#x}, port offered to the console domain");
    let mut line = [0u8; 128];
    let mut length = 0;
    let got = wait_for(200_000, || {
        consume_line(page, IN, IN_SIZE, [IN_CONS, IN_PROD], &mut line).map(|n| length = n).is_some()
    });
    match core::str::from_utf8(&line[..length]) {
        Ok(text) if got => println!("{name}: PASS input from the console domain: {text}"),
        _ => println!("{name}: FAIL no input line in the console ring"),
    }
}

pub fn server(name: &str, info: &StartInfo) {
    let client: u16 = info.bootarg("client").and_then(|v| v.parse().ok()).unwrap_or(1);
    let mut handle = None;
    let mapped = wait_for(200_000, || {
        handle = grants::map(client, GNTTAB_RESERVED_CONSOLE, MAP_AREA, false).ok();
        handle.is_some()
    });
    if !mapped {
        return println!("{name}: FAIL could not map d{client}'s console ring (grant entry 0)");
    }
    // SAFETY: the grant was just mapped at MAP_AREA (page-aligned, in the runtime's
    // normal-memory window) and stays mapped for the rest of this domain's life; only volatile
    // and atomic accessors touch it.
    let page = unsafe { SharedPage::at(MAP_AREA) };
    let mut line = [0u8; 128];
    let mut length = 0;
    let got = wait_for(200_000, || {
        consume_line(page, OUT, OUT_SIZE, [OUT_CONS, OUT_PROD], &mut line)
            .map(|n| length = n)
            .is_some()
    });
    match core::str::from_utf8(&line[..length]) {
        Ok(text) if got => println!("{name}: PASS read from d{client}'s console ring: {text}"),
        _ => return println!("{name}: FAIL no line in d{client}'s console ring"),
    }
    produce(page, IN, IN_SIZE, IN_PROD, b"typed into the ring\n");
}

pub fn reader(name: &str) {
    use xenolith_abi::xen::console::CONSOLEIO_read;
    use xenolith_abi::xen::event_channel::VIRQ_CONSOLE;
    use xenolith_abi::xen::hypercall::__HYPERVISOR_console_io;
    use xenolith_runtime::events;
    if let Err(error) = events::init() {
        return println!("{name}: FAIL shared info: {error:?}");
    }
    let port = match events::bind_virq(VIRQ_CONSOLE, 0) {
        Ok(port) => port,
        Err(error) => return println!("{name}: FAIL bind VIRQ_CONSOLE: {error:?}"),
    };
    port.mask();
    println!("{name}: ready for input");
    let mut line = [0u8; 128];
    let mut length = 0;
    let mut virqs = 0;
    for _ in 0..10_000 {
        if events::poll(&[port], 0).is_err() {
            return println!("{name}: FAIL poll");
        }
        virqs += u32::from(port.take_pending());
        let mut chunk = [0u8; 64];
        let read = hypercall::raw(
            __HYPERVISOR_console_io,
            [u64::from(CONSOLEIO_read), chunk.len() as u64, chunk.as_mut_ptr() as u64, 0, 0],
        );
        if read < 0 {
            return println!("{name}: FAIL CONSOLEIO_read -> {read}");
        }
        for &byte in &chunk[..read as usize] {
            if byte == b'\r' || byte == b'\n' {
                let text = core::str::from_utf8(&line[..length]).unwrap_or("?");
                return println!("{name}: PASS read input ({virqs} VIRQ_CONSOLE): {text}");
            }
            if length < line.len() {
                line[length] = byte;
                length += 1;
            }
        }
    }
    println!("{name}: FAIL no input line");
}

/// This domain's own console ring page (where `HVM_PARAM_CONSOLE_PFN` puts it) and port.
fn own_ring(name: &str) -> Option<(SharedPage, xenolith_runtime::events::Port)> {
    let address = GUEST_MAGIC_BASE + GUEST_MAGIC_CONSOLE_PFN_OFFSET * 4096;
    let Ok(port) = hypercall::hvm_get_param(DOMID_SELF, HVM_PARAM_CONSOLE_EVTCHN) else {
        println!("{name}: FAIL no console port");
        return None;
    };
    // SAFETY: as in `client`: the core keeps the ring page mapped at Xen's magic address for
    // the domain's life; only volatile and atomic accessors touch it.
    Some((unsafe { SharedPage::at(address) }, xenolith_runtime::events::Port(port as u32)))
}

/// Writes `line` into the ring's `out` half once there is room for all of it (a line is never
/// split across two producer updates), then notifies the console domain.
fn write_line(page: SharedPage, port: xenolith_runtime::events::Port, line: &[u8]) {
    loop {
        let prod = page.atomic_u32(OUT_PROD).load(Ordering::Acquire);
        let cons = page.atomic_u32(OUT_CONS).load(Ordering::Acquire);
        if OUT_SIZE - prod.wrapping_sub(cons).min(OUT_SIZE) >= line.len() as u32 {
            break;
        }
        let _ = port.send();
        crate::xenstore::sleep(1_000_000);
    }
    produce(page, OUT, OUT_SIZE, OUT_PROD, line);
    // Before the console domain binds it, the port is unbound: sending fails, harmlessly.
    let _ = port.send();
}

/// `console-lines` (`count=N`, `pings=P`, `gap_us=G`, `stay=S`): writes `seq <n>` lines 0..N
/// through its console ring, one every G µs; answers each `ping <k>` line typed into its ring
/// with `got ping <k>` and, with `pings` above 0, records k in xenstore at `<home>/pings` (for
/// `console-killer`); goes on writing until it has both written N lines and got P pings, then
/// writes `done total=<lines>`. With pings, or with `stay=1`, it then stays up (so the console
/// domain reads its ring however late it comes).
pub fn lines(name: &str, info: &StartInfo) {
    use crate::xenstore::arg;
    use alloc::format;
    let (count, pings, gap_us) =
        (arg(info, "count", 100), arg(info, "pings", 0), arg(info, "gap_us", 1000));
    let stay = arg(info, "stay", 0) != 0;
    // Connecting to xenstore sets up event channels too (a second set-up is EBUSY).
    if pings == 0 {
        if let Err(error) = xenolith_runtime::events::init() {
            return println!("{name}: FAIL events: {error:?}");
        }
    }
    let Some((page, port)) = own_ring(name) else { return };
    let mut store = None;
    if pings > 0 {
        let mut bus = None;
        for _ in 0..1000 {
            match xenolith_runtime::xenbus::Xenbus::connect() {
                Ok(connected) => {
                    bus = Some(connected);
                    break;
                }
                Err(error) => println!("{name}: xenstore not there yet ({error}); again"),
            }
            crate::xenstore::sleep(10_000_000);
        }
        let (Some(bus), Some(me)) = (bus, crate::xenstore::own_domid()) else {
            return println!("{name}: FAIL no xenstore connection within 10 s");
        };
        store = Some((bus, format!("/local/domain/{me}/pings")));
    }
    let (mut written, mut got) = (0u32, 0u32);
    let mut line = [0u8; 128];
    while written < count || got < pings {
        write_line(page, port, format!("seq {written}\n").as_bytes());
        written += 1;
        while let Some(length) = consume_line(page, IN, IN_SIZE, [IN_CONS, IN_PROD], &mut line) {
            let text = core::str::from_utf8(&line[..length]).unwrap_or("?").trim_end_matches('\r');
            let Some(k) = text.strip_prefix("ping ").and_then(|k| k.parse::<u32>().ok()) else {
                continue;
            };
            write_line(page, port, format!("got ping {k}\n").as_bytes());
            got = got.max(k);
            if let Some((bus, path)) = store.as_mut() {
                if let Err(error) = bus.write(path, format!("{k}").as_bytes()) {
                    return println!("{name}: FAIL recording ping {k}: {error}");
                }
            }
        }
        crate::xenstore::sleep(u64::from(gap_us) * 1000);
    }
    write_line(page, port, format!("done total={written}\n").as_bytes());
    println!("{name}: PASS wrote {written} lines, got {got} pings");
    // Up with its xenstore nodes, where the killer reads the last ping.
    while store.is_some() || stay {
        crate::xenstore::sleep(1_000_000_000);
    }
}

/// `console-killer` (holds `control`; `victim=<console domain>`, `lines=<console-lines
/// domain>`, `kills=K`): K times, once the lines domain has got the ping typed after the last
/// restart, waits a random 0-20 ms and crashes the console domain (`SCHEDOP_remote_shutdown`).
pub fn killer(name: &str, info: &StartInfo) {
    use crate::xenstore::{arg, wait_number, Random};
    use alloc::format;
    use xenolith_abi::xen::sched::{
        sched_remote_shutdown, SCHEDOP_remote_shutdown, SHUTDOWN_crash,
    };
    let (victim, lines, kills) =
        (arg(info, "victim", 1), arg(info, "lines", 2), arg(info, "kills", 10));
    let mut random = Random(u64::from(arg(info, "seed", 0xC0FFEE)) | 1 << 40);
    let Some((mut bus, _)) = crate::xenstore::connect(name) else { return };
    let path = format!("/local/domain/{lines}/pings");
    for kill in 1..=u64::from(kills) {
        if kill > 1 {
            if let Err(why) = wait_number(&mut bus, &path, "the lines domain", |k| k + 1 >= kill) {
                return println!("{name}: FAIL {why}");
            }
        }
        crate::xenstore::sleep(random.next() % 20_000_001);
        let request =
            sched_remote_shutdown { domain_id: victim as u16, _pad: 0, reason: SHUTDOWN_crash };
        // The kill's time is taken before it: the new incarnation may run before this call
        // returns here.
        let at = crate::xenstore::now();
        let result = hypercall::sched_op(SCHEDOP_remote_shutdown, (&raw const request) as u64);
        if result != 0 {
            return println!("{name}: FAIL SCHEDOP_remote_shutdown of d{victim} returned {result}");
        }
        println!("{name}: kill {kill} at {at} ns");
    }
    match wait_number(&mut bus, &path, "the last ping", |k| k >= u64::from(kills)) {
        Ok(_) => println!("{name}: PASS kills={kills}"),
        Err(why) => println!("{name}: FAIL {why}"),
    }
}

/// `console-hostile` (`mode=ahead|backwards|flood`): breaks its own console ring. `ahead`
/// moves `out_prod` 100000 bytes past `out_cons`; `backwards` writes a line, waits until it
/// was taken, then moves `out_prod` back 16 bytes, then stays up; `flood` writes 80-byte lines
/// as fast as the ring takes them, forever.
pub fn hostile(name: &str, info: &StartInfo) {
    let Some((page, port)) = own_ring(name) else { return };
    let prod = page.atomic_u32(OUT_PROD);
    match info.bootarg("mode").unwrap_or("") {
        "ahead" => {
            write_line(page, port, b"about to jump ahead\n");
            prod.fetch_add(100_000, Ordering::AcqRel);
            let _ = port.send();
            println!("{name}: out_prod moved 100000 bytes ahead");
        }
        "backwards" => {
            write_line(page, port, b"about to go backwards\n");
            let taken = wait_for(2_000_000, || {
                page.atomic_u32(OUT_CONS).load(Ordering::Acquire) == prod.load(Ordering::Acquire)
            });
            if !taken {
                return println!("{name}: FAIL its first line was never taken");
            }
            prod.fetch_sub(16, Ordering::AcqRel);
            let _ = port.send();
            println!("{name}: out_prod moved 16 bytes back");
        }
        "flood" => {
            println!("{name}: flooding");
            let mut line = [b'x'; 80];
            line[79] = b'\n';
            loop {
                write_line(page, port, &line);
            }
        }
        other => return println!("{name}: FAIL unknown mode {other:?}"),
    }
    // Alive, so that only the broken ring, not its death, can end its service.
    loop {
        crate::xenstore::sleep(1_000_000_000);
    }
}

/// `console-bench` (`count=N`): once the console domain serves its ring, writes N 80-byte lines
/// through it as fast as the ring takes them (yielding when full) and prints the virtual time
/// per line from the first write until the console domain has consumed the last (under QEMU's
/// `-icount shift=0` a nanosecond is an instruction).
pub fn bench(name: &str, info: &StartInfo) {
    use crate::xenstore::{arg, now};
    use xenolith_abi::xen::sched::SCHEDOP_yield;
    let count = arg(info, "count", 200).max(1);
    if let Err(error) = xenolith_runtime::events::init() {
        return println!("{name}: FAIL events: {error:?}");
    }
    let Some((page, port)) = own_ring(name) else { return };
    // The console domain sends on the port once it has bound it.
    let deadline = now() + 10_000_000_000;
    while !port.take_pending() {
        if now() > deadline {
            return println!("{name}: FAIL the console domain never bound the port");
        }
        let _ = xenolith_runtime::events::poll(&[port], deadline);
    }
    let mut line = [b'b'; 80];
    line[79] = b'\n';
    let (prod, cons) = (page.atomic_u32(OUT_PROD), page.atomic_u32(OUT_CONS));
    let start = now();
    let mut written = 0;
    while written < count || cons.load(Ordering::Acquire) != prod.load(Ordering::Acquire) {
        let used = prod.load(Ordering::Acquire).wrapping_sub(cons.load(Ordering::Acquire));
        if written < count && OUT_SIZE - used.min(OUT_SIZE) >= line.len() as u32 {
            produce(page, OUT, OUT_SIZE, OUT_PROD, &line);
            let _ = port.send();
            written += 1;
        } else {
            hypercall::sched_op(SCHEDOP_yield, 0);
        }
    }
    let per_line = (now() - start) / u64::from(count);
    println!("{name}: bench console-line {per_line} per line ({count} lines of 80 bytes)");
}

/// `console-commands`: runs each command typed into its console ring and answers through the
/// ring (`<name>: <answer>` on the console), for tests that reach a guest with `xl console`:
/// - `crash <domid>`: crashes that domain (`SCHEDOP_remote_shutdown`, `SHUTDOWN_crash`; the
///   domain needs `control`), answers `crashed d<domid>`;
/// - `write <path> <value>`: a xenstore `WRITE`, answers `write <path>: OK` or `write <path>:
///   refused (<error>)`;
/// - `read <path>`: a xenstore `READ`, answers `read <path>: "<value>"` or `read <path>:
///   refused (<error>)`.
pub fn commands(name: &str) {
    use alloc::format;
    use xenolith_abi::xen::sched::{
        sched_remote_shutdown, SCHEDOP_remote_shutdown, SHUTDOWN_crash,
    };
    let Some((mut bus, _)) = crate::xenstore::connect(name) else { return };
    let Some((page, port)) = own_ring(name) else { return };
    write_line(page, port, b"ready for commands\n");
    let mut line = [0u8; 128];
    loop {
        while let Some(length) = consume_line(page, IN, IN_SIZE, [IN_CONS, IN_PROD], &mut line) {
            let text = core::str::from_utf8(&line[..length]).unwrap_or("?").trim_end_matches('\r');
            let mut words = text.splitn(3, ' ');
            let answer = match (words.next(), words.next(), words.next()) {
                (Some("crash"), Some(id), None) => {
                    let Ok(id) = id.parse::<u16>() else {
                        return println!("{name}: FAIL `crash {id}`: not a domain id");
                    };
                    let request =
                        sched_remote_shutdown { domain_id: id, _pad: 0, reason: SHUTDOWN_crash };
                    let result =
                        hypercall::sched_op(SCHEDOP_remote_shutdown, (&raw const request) as u64);
                    if result != 0 {
                        return println!("{name}: FAIL SCHEDOP_remote_shutdown of d{id}: {result}");
                    }
                    format!("crashed d{id}\n")
                }
                (Some("write"), Some(path), value) => {
                    match bus.write(path, value.unwrap_or("").as_bytes()) {
                        Ok(()) => format!("write {path}: OK\n"),
                        Err(error) => format!("write {path}: refused ({error})\n"),
                    }
                }
                (Some("read"), Some(path), None) => match bus.read(path) {
                    Ok(value) => {
                        format!(
                            "read {path}: {:?}\n",
                            alloc::string::String::from_utf8_lossy(&value)
                        )
                    }
                    Err(error) => format!("read {path}: refused ({error})\n"),
                },
                _ => format!("unknown command {text:?}\n"),
            };
            write_line(page, port, answer.as_bytes());
        }
        crate::xenstore::sleep(10_000_000);
    }
}
