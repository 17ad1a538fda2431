//! `crash-killer` (holds `control`; `victim=<domain id> kills=K delay_ms=D min_ms=A max_ms=B
//! seed=S start=<xenstore path> done=<xenstore path>`): waits `D` ms (and, with `start`, until
//! that node exists, polled every 10 ms for up to 10 minutes: something it must act during),
//! then `K` times crashes the victim (`SCHEDOP_remote_shutdown` with `SHUTDOWN_crash`, as a
//! fault in it would), each kill once the core has restarted the victim
//! after the last one and a random `A`..`B` ms more have passed. Prints `NAME: kill N at T ns`
//! for each and `NAME: PASS kills=K` once the victim runs again after the last, then, with
//! `done`, writes `1` to that node (a sender's `until=`); a kill the core refuses, or a victim
//! not restarted within 10 s, is `NAME: FAIL ...`.

use xenolith_abi::xen::sched::{sched_remote_shutdown, SCHEDOP_remote_shutdown, SHUTDOWN_crash};
use xenolith_runtime::{hypercall, println, StartInfo};

use crate::xenstore::{arg, now, sleep, Random};

/// How long `start=`'s node may take to appear.
const START_NS: u64 = 600_000_000_000;
/// How long a restart may take.
const RESTART_NS: u64 = 10_000_000_000;

/// The victim's restart count, once it is at least `at_least` (polled every millisecond for
/// up to [`RESTART_NS`]).
fn restarted(victim: u16, at_least: u32) -> Result<u32, &'static str> {
    let deadline = now() + RESTART_NS;
    loop {
        if let Ok(info) = hypercall::domain_info(victim) {
            if info.restarts >= at_least {
                return Ok(info.restarts);
            }
        }
        if now() > deadline {
            return Err("the victim was not restarted within 10 s");
        }
        sleep(1_000_000);
    }
}

/// `crash-killer` (module doc).
pub fn killer(name: &str, info: &StartInfo) {
    let victim = arg(info, "victim", 1) as u16;
    let kills = arg(info, "kills", 10);
    let (min, max) = (u64::from(arg(info, "min_ms", 100)), u64::from(arg(info, "max_ms", 1000)));
    let mut random = Random(u64::from(arg(info, "seed", 0x5EED)) | 1 << 40);
    sleep(u64::from(arg(info, "delay_ms", 0)) * 1_000_000);
    let (start, done) = (info.bootarg("start"), info.bootarg("done"));
    let mut bus = None;
    if start.is_some() || done.is_some() {
        let Some((connected, _)) = crate::xenstore::connect(name) else { return };
        bus = Some(connected);
    }
    if let (Some(path), Some(bus)) = (start, bus.as_mut()) {
        let deadline = now() + START_NS;
        while bus.read(path).is_err() {
            if now() > deadline {
                return println!("{name}: FAIL {path} did not appear");
            }
            sleep(10_000_000);
        }
        println!("{name}: {path} is there; killing");
    }
    let first = match restarted(victim, 0) {
        Ok(count) => count,
        Err(why) => return println!("{name}: FAIL {why}"),
    };
    for kill in 1..=kills {
        if let Err(why) = restarted(victim, first + kill - 1) {
            return println!("{name}: FAIL before kill {kill}: {why}");
        }
        let gap = min + random.next() % (max.saturating_sub(min) + 1);
        sleep(gap * 1_000_000);
        let request = sched_remote_shutdown { domain_id: victim, _pad: 0, reason: SHUTDOWN_crash };
        let at = now();
        let result = hypercall::sched_op(SCHEDOP_remote_shutdown, (&raw const request) as u64);
        if result != 0 {
            return println!("{name}: FAIL SCHEDOP_remote_shutdown of d{victim} returned {result}");
        }
        println!("{name}: kill {kill} at {at} ns");
    }
    if let Err(why) = restarted(victim, first + kills) {
        return println!("{name}: FAIL after the last kill: {why}");
    }
    println!("{name}: PASS kills={kills}");
    if let (Some(path), Some(bus)) = (done, bus.as_mut()) {
        if let Err(error) = bus.write(path, b"1") {
            println!("{name}: FAIL writing {path}: {error}");
        }
    }
}
