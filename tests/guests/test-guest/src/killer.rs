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

/// `SCHEDOP_remote_shutdown` of `domain` with `reason`: the core's answer.
fn shut_down(domain: u16, reason: u32) -> i64 {
    let request = sched_remote_shutdown { domain_id: domain, _pad: 0, reason };
    hypercall::sched_op(SCHEDOP_remote_shutdown, (&raw const request) as u64)
}

/// `crash-killer` (module doc).
pub fn killer(name: &str, info: &StartInfo) {
    let victim = arg(info, "victim", 1) as u16;
    let kills = arg(info, "kills", 10);
    let (min, max) = (u64::from(arg(info, "min_ms", 100)), u64::from(arg(info, "max_ms", 1000)));
    let mut random = Random(u64::from(arg(info, "seed", 0x5EED)) | 1 << 40);
    sleep(u64::from(arg(info, "delay_ms", 0)) * 1_000_000);
    let (start, done) = (info.bootarg("start"), info.bootarg("done"));
    let mut bus = if start.is_some() || done.is_some() {
        let Some((bus, _)) = crate::xenstore::connect(name) else { return };
        Some(bus)
    } else {
        None
    };
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
        let at = now();
        let result = shut_down(victim, SHUTDOWN_crash);
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

/// `rebuild-under-model` (holds `control`; `model=<domain id> target=<domain id>
/// delay_ms=D`): once the target runs (its model has enabled a server) and `D` ms more have
/// passed, pauses the model, reboots the target (`SCHEDOP_remote_shutdown` with
/// `SHUTDOWN_reboot`), waits until the core has rebuilt it, then crashes the model: its next
/// incarnation finds a snapshot of the target's last incarnation, which it must not restore.
/// Prints `NAME: PASS rebuilt under a paused model` once the model runs again, or
/// `NAME: FAIL ...`.
pub fn rebuild_under_model(name: &str, info: &StartInfo) {
    use xenolith_abi::xen::domctl::{
        xen_domctl, DomctlPayload, XEN_DOMCTL_pausedomain, XEN_DOMCTL_INTERFACE_VERSION,
    };
    use xenolith_abi::xen::private::XENOLITH_STATE_RUNNING;
    use xenolith_abi::xen::sched::SHUTDOWN_reboot;

    let model = arg(info, "model", 1) as u16;
    let target = arg(info, "target", 0) as u16;
    let deadline = now() + RESTART_NS;
    while !hypercall::domain_info(target).is_ok_and(|i| i.state == XENOLITH_STATE_RUNNING) {
        if now() > deadline {
            return println!("{name}: FAIL d{target} did not run within 10 s");
        }
        sleep(1_000_000);
    }
    sleep(u64::from(arg(info, "delay_ms", 0)) * 1_000_000);
    let (Ok(first_model), Ok(first_target)) = (restarted(model, 0), restarted(target, 0)) else {
        return println!("{name}: FAIL no model d{model} or target d{target}");
    };
    let mut pause = xen_domctl {
        cmd: XEN_DOMCTL_pausedomain,
        interface_version: XEN_DOMCTL_INTERFACE_VERSION,
        domain: model,
        _pad: [0; 3],
        u: DomctlPayload::new(&[0u64; 16]),
    };
    let result = hypercall::domctl(&mut pause);
    if result != 0 {
        return println!("{name}: FAIL pausing d{model} returned {result}");
    }
    let result = shut_down(target, SHUTDOWN_reboot);
    if result != 0 {
        return println!("{name}: FAIL SCHEDOP_remote_shutdown of d{target} returned {result}");
    }
    if let Err(why) = restarted(target, first_target + 1) {
        return println!("{name}: FAIL d{target} not rebuilt: {why}");
    }
    let result = shut_down(model, SHUTDOWN_crash);
    if result != 0 {
        return println!("{name}: FAIL SCHEDOP_remote_shutdown of d{model} returned {result}");
    }
    match restarted(model, first_model + 1) {
        Ok(_) => println!("{name}: PASS rebuilt under a paused model"),
        Err(why) => println!("{name}: FAIL d{model} not restarted: {why}"),
    }
}
