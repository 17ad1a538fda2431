//! The xenstore domain killed under a transaction loop:
//!
//! - `xs-torture` (`seed=<n>`; `pings=<n>`, default 10; `hold_ms=<n>`, default 8): transactions
//!   in a loop while `xs-killer` crashes the store. Each reads `torture/count` (c) and the log
//!   node `torture/b<c / 32>`, checks that the log holds exactly the values of the commits
//!   before c since its first, appends commit c's value and writes c + 1 to the count; then it
//!   holds the transaction open for 1 to `hold_ms` ms (drawn from the seed) before committing,
//!   so that most kills land inside one. No other domain writes a node a transaction reads
//!   (the killer's `ping`, `pong` and `done` are under `~/signals/`), so `EAGAIN` can only mean
//!   that the store restarted while the transaction was open: it dooms every transaction of its
//!   last snapshot, which then answers `EAGAIN` to every request, its `TRANSACTION_END`
//!   included (`Store::abort_transactions`), the answer Xen gives a commit that lost a race
//!   (`docs/misc/xenstore.txt`, `TRANSACTION_END`). Each `EAGAIN` counts as a kill that
//!   interrupted an open transaction; the transaction is run again. Every `ping` the killer
//!   writes must raise a watch event, answered with `pong`. Once `done` appears, every log node
//!   is read back: each value ever committed must be there, in order, and nothing else. Ends
//!   with `NAME: PASS xs-torture commits=N checked=V pings=P interrupted=I (R in a request,
//!   C at commit) seed=S`;
//! - `xs-killer` (`xenstore=<stub id>`, `victim=<torture id>`, `kills=<n>`, default 10,
//!   `seed=<n>`, `between=<n>`, default 0; needs the `control` capability): once the victim has
//!   committed 5 transactions, `n` times: waits until the victim has committed `between`
//!   transactions since the last kill, waits 0-20 ms more (drawn from the seed), crashes the store
//!   (`SCHEDOP_remote_shutdown`, `SHUTDOWN_crash`), times how long until a READ is answered
//!   (`xs-killer: kill K downtime_ns=X`), waits for the victim to commit again, writes
//!   `signals/ping` = K and waits for its `pong`. Then writes `signals/done` and ends with
//!   `xs-killer: PASS kills=N max_downtime_ns=M` (its lines start with `xs-killer:`, whatever
//!   its `name=`).

use alloc::format;
use alloc::rc::Rc;
use alloc::string::String;
use alloc::vec::Vec;
use core::cell::{Cell, RefCell};

use xenolith_abi::xen::sched::{sched_remote_shutdown, SCHEDOP_remote_shutdown, SHUTDOWN_crash};
use xenolith_runtime::xenbus::{Errno, XsError};
use xenolith_runtime::{hypercall, println, StartInfo};

use crate::xenstore::{arg, arg64, connect, counter_callback, now, sleep, wait_number, Random};

/// Commits per log node: 32 values of at most 16 bytes each stay well under Xen's 2048-byte
/// node-size quota (`quota_max_entry_size`).
const PER_LOG: u64 = 32;

/// The value commit `count` logs.
fn torture_value(count: u64) -> String {
    format!("v{count}-{:08x}", (count as u32).wrapping_mul(0x9E37_79B1))
}

/// What log node `b<log>` holds once the commits before `end` are in.
fn log_value(log: u64, end: u64) -> String {
    let mut text = String::new();
    for index in log * PER_LOG..end.min((log + 1) * PER_LOG) {
        text.push_str(&torture_value(index));
        text.push(' ');
    }
    text
}

pub fn torture(name: &str, info: &StartInfo) {
    if let Err(why) = run_torture(name, info) {
        println!("{name}: FAIL {why}");
    }
}

fn run_torture(name: &str, info: &StartInfo) -> Result<(), String> {
    let expected_pings = arg(info, "pings", 10);
    let hold_ns = u64::from(arg(info, "hold_ms", 8).max(1)) * 1_000_000;
    let seed = arg64(info, "seed", 0x5EED);
    let mut random = Random::new(seed, 2);
    let Some((mut bus, me)) = connect(name) else { return Err("no xenstore".into()) };
    println!("{name}: seed {seed}, transactions held open 1 to {} ms", hold_ns / 1_000_000);
    let base = format!("/local/domain/{me}/torture");
    let signals = format!("/local/domain/{me}/signals");
    let count_path = format!("{base}/count");
    let (ping_path, done_path) = (format!("{signals}/ping"), format!("{signals}/done"));
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
    // EAGAIN answered to a request inside a transaction (the commit's are the other retries).
    let in_request = Cell::new(0u64);
    // Why a transaction body gave up, if not for an error of the store's.
    let problem: RefCell<Option<String>> = RefCell::new(None);
    let mut seen = [false; 64];
    let (mut pings_handled, mut dones_handled) = (0, 0);
    loop {
        let result = bus.transaction(|tx| {
            let counted = |error: XsError| {
                if error == XsError::EAGAIN {
                    in_request.set(in_request.get() + 1);
                }
                error
            };
            let count = match tx.read_string(&count_path) {
                Ok(text) => match text.parse::<u64>() {
                    Ok(count) => count,
                    Err(_) => {
                        *problem.borrow_mut() = Some(format!("{count_path} holds {text:?}"));
                        return Err(XsError::InvalidArgument);
                    }
                },
                Err(XsError::Errno(Errno::ENOENT)) => 0,
                Err(error) => return Err(counted(error)),
            };
            let log_path = format!("{base}/b{}", count / PER_LOG);
            let log = match tx.read_string(&log_path) {
                Ok(text) => text,
                Err(XsError::Errno(Errno::ENOENT)) => String::new(),
                Err(error) => return Err(counted(error)),
            };
            if log != log_value(count / PER_LOG, count) {
                *problem.borrow_mut() = Some(format!("{log_path} holds {log:?} at count {count}"));
                return Err(XsError::InvalidArgument);
            }
            let logged = format!("{log}{} ", torture_value(count));
            tx.write(&log_path, logged.as_bytes()).map_err(counted)?;
            tx.write(&count_path, format!("{}", count + 1).as_bytes()).map_err(counted)?;
            sleep(1_000_000 + random.below(hold_ns));
            Ok(count + 1)
        });
        if let Some(why) = problem.borrow_mut().take() {
            return Err(why);
        }
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
                    bus.write(&format!("{signals}/pong"), text.as_bytes())
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
    // The store must hold exactly what was committed: the count, and every value ever logged.
    match bus.read_string(&count_path) {
        Ok(text) if text == format!("{committed}") => {}
        other => return Err(format!("{count_path} reads {other:?}, committed {committed}")),
    }
    let logs = committed.div_ceil(PER_LOG);
    let mut checked = 0u64;
    for log in 0..logs {
        let path = format!("{base}/b{log}");
        let expected = log_value(log, committed);
        match bus.read_string(&path) {
            Ok(value) if value == expected => {}
            other => return Err(format!("{path} reads {other:?} (committed {committed})")),
        }
        checked += expected.split(' ').filter(|value| !value.is_empty()).count() as u64;
    }
    if checked != committed {
        return Err(format!("{checked} values in the logs, {committed} committed"));
    }
    let children = bus.directory(&base).map_err(|error| format!("listing {base}: {error}"))?;
    let expected_child = |child: &String| {
        let log = child.strip_prefix('b').and_then(|index| index.parse::<u64>().ok());
        child == "count" || log.is_some_and(|log| log < logs && *child == format!("b{log}"))
    };
    if children.len() as u64 != logs + 1 || !children.iter().all(expected_child) {
        return Err(format!("{base} lists {children:?}: expected count and {logs} log nodes"));
    }
    let missing: Vec<usize> = (1..=expected_pings as usize)
        .filter(|&ping| !seen.get(ping).copied().unwrap_or(false))
        .collect();
    if !missing.is_empty() {
        return Err(format!("no watch event for pings {missing:?} (commits={commits})"));
    }
    let interrupted = bus.stats().transaction_retries;
    println!(
        "{name}: PASS xs-torture commits={commits} checked={checked} pings={expected_pings} \
         interrupted={interrupted} ({} in a request, {} at commit) seed={seed}",
        in_request.get(),
        interrupted.saturating_sub(in_request.get())
    );
    Ok(())
}

/// The killer's lines start with this, whatever its `name=`: `cargo xtask bench` reads them.
const KILLER: &str = "xs-killer";

pub fn killer(_name: &str, info: &StartInfo) {
    if let Err(why) = run_killer(KILLER, info) {
        println!("{KILLER}: FAIL {why}");
    }
}

fn run_killer(name: &str, info: &StartInfo) -> Result<(), String> {
    let stub = arg(info, "xenstore", 1) as u16;
    let victim = arg(info, "victim", 2) as u16;
    let kills = arg(info, "kills", 10);
    let between = u64::from(arg(info, "between", 0));
    let seed = arg64(info, "seed", 0x5EED);
    let mut random = Random::new(seed, 1);
    let Some((mut bus, _)) = connect(name) else { return Err("no xenstore".into()) };
    println!("{name}: seed {seed}");
    let count_path = format!("/local/domain/{victim}/torture/count");
    let signals = format!("/local/domain/{victim}/signals");
    let mut last =
        wait_number(&mut bus, &count_path, "the victim's first 5 commits", |count| count >= 5)?;
    let mut max_downtime = 0;
    for kill in 1..=kills {
        wait_number(&mut bus, &count_path, "the victim's commits", |count| {
            count >= last + between
        })?;
        sleep(random.below(20_000_001));
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
        last = count;
        let downtime = now() - start;
        max_downtime = max_downtime.max(downtime);
        println!("{name}: kill {kill} downtime_ns={downtime}");
        wait_number(&mut bus, &count_path, "the victim's progress", |value| value > count)?;
        let ping = format!("{kill}");
        bus.write(&format!("{signals}/ping"), ping.as_bytes())
            .map_err(|error| format!("writing ping {kill}: {error}"))?;
        // The victim answers each ping before the next is sent, so it reads every value.
        let pong = format!("{signals}/pong");
        wait_number(&mut bus, &pong, "the victim's pong", |value| value >= u64::from(kill))?;
    }
    bus.write(&format!("{signals}/done"), b"1")
        .map_err(|error| format!("writing done: {error}"))?;
    println!("{name}: PASS kills={kills} max_downtime_ns={max_downtime}");
    Ok(())
}
