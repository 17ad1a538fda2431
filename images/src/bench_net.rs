//! `cargo xtask bench net`: issue 17's figures for netback, under QEMU `-icount shift=0` (a
//! virtual nanosecond is one instruction, of all CPUs together).
//!
//! - Rust netfronts (`tests/manifests/bench-net-sg.toml`, `bench-net.toml`,
//!   `bench-net-small.toml`, one pCPU; `bench net rust` runs these alone): the test guest's
//!   `net-blast` sends frames back to back through netback to `net-sink`, which counts what
//!   arrives and then times a plain memcpy of the same bytes in pieces of the same size in its
//!   own heap (`tests/guests/test-guest/src/net.rs`); in `bench-net-sg.toml` the sender is
//!   zero-copy and its 64,000-byte packets take 16 slots. Bytes (and packets) per million
//!   instructions, and the ratio to the memcpy (issue 17's goal: at least 0.5).
//! - Linux (`tests/manifests/net-linux.toml`, two pCPUs as its `[qemu]` asks): `init.sh`'s
//!   net-send prints the guest's virtual time its `nc` took (`XENOLITH-NET-SEND-TIME`, from
//!   `/proc/uptime`, 10 ms resolution) for the 16 MiB it sends; the median of five boots.
//! - Linux over loopback (`tests/manifests/bench-net-loop.toml`, one pCPU): the same 16 MiB
//!   between two `nc`s of one guest over its loopback device (`init.sh`'s net-loop), with no
//!   netfront or netback: the guests' own share of the Linux figure, so its bound.
//! - Downtime (`tests/manifests/bench-net-kill.toml`, one pCPU): netback killed ten times while
//!   frames flow. Kill to serving is the killer's `kill K at T ns` to netback's `serving N vifs
//!   again (restart K, at T ns)`; kill to forwarding is the kill to the first frame that
//!   reaches the sink after that (the end of the sink's `bench net-gap` that spans the serving
//!   time: frames forwarded by the new incarnation).
#![forbid(unsafe_code)]

use std::path::Path;
use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};
use xenolith_images::runner::Running;
use xenolith_images::workspace::{self, CoreOptions};

use crate::{icount_config, number_after};

/// The goal for network throughput against a memcpy of the same bytes (issue 17).
const RATIO_GOAL: f64 = 0.5;
/// The bytes `net-linux.toml`'s linux2 sends (16 MiB).
const LINUX_BYTES: u64 = 16 << 20;
/// How many times the Linux transfer is measured.
const LINUX_RUNS: usize = 5;

/// Every figure of `bench net`.
pub fn figures(root: &Path, timeout: Duration) -> Result<()> {
    let memcpy = rust_figures(root, timeout)?;
    linux_figure(root, Duration::from_secs(1200), memcpy)?;
    linux_loopback_figure(root, Duration::from_secs(600), memcpy)?;
    downtime_figures(root, timeout)
}

/// A `sink: bench ...` line's `bytes=` and `ns=`.
fn bytes_and_ns(line: &str) -> Result<(u64, u64)> {
    Ok((number_after(line, "bytes=")?, number_after(line, "ns=")?))
}

fn per_million(amount: u64, ns: u64) -> f64 {
    amount as f64 * 1e6 / ns.max(1) as f64
}

/// The Rust netfronts' figures; the memcpy's bytes per million instructions in 1400-byte
/// pieces.
pub fn rust_figures(root: &Path, timeout: Duration) -> Result<f64> {
    let mut memcpy_1400 = 0.0;
    for (manifest, size) in
        [("bench-net-sg.toml", 64000), ("bench-net.toml", 1400), ("bench-net-small.toml", 64)]
    {
        let system = workspace::build_system(
            &root.join("tests/manifests").join(manifest),
            CoreOptions::default(),
        )?;
        let mut running = Running::start(&icount_config(&system, 1))?;
        running.forbid("FAIL");
        let context = || format!("bench net: tests/manifests/{manifest}");
        let sink = running
            .wait_for("sink: bench net-sink ", timeout)
            .map_err(anyhow::Error::msg)
            .with_context(context)?;
        let memcpy = running
            .wait_for("sink: bench memcpy ", timeout)
            .map_err(anyhow::Error::msg)
            .with_context(context)?;
        drop(running);
        let frames = number_after(&sink, "frames=")?;
        let (bytes, ns) = bytes_and_ns(&sink)?;
        let (copied, copy_ns) = bytes_and_ns(&memcpy)?;
        ensure!(frames > 1 && bytes > 0, "bench net: {manifest}: no frames counted ({sink:?})");
        let (rate, copy_rate) = (per_million(bytes, ns), per_million(copied, copy_ns));
        if size == 1400 {
            memcpy_1400 = copy_rate;
        }
        let ratio = rate / copy_rate.max(1e-9);
        let verdict = if ratio >= RATIO_GOAL { "met" } else { "NOT met" };
        println!(
            "figure: Rust netfront to Rust netfront through netback, {size}-byte frames (one pCPU): \
             {rate:.0} bytes per million instructions ({frames} frames arrived, {bytes} bytes in \
             {ns} instructions); memcpy of the same bytes in {size}-byte pieces in one guest: \
             {copy_rate:.0} bytes per million instructions; ratio {ratio:.3} (goal at least \
             {RATIO_GOAL}: {verdict})"
        );
        if size == 64 {
            println!(
                "figure: Rust netfront to Rust netfront through netback, 64-byte frames: {:.1} \
                 packets per million instructions",
                per_million(frames - 1, ns)
            );
        }
    }
    Ok(memcpy_1400)
}

/// Two Linux guests: 16 MiB with nc, the sender's virtual time, over [`LINUX_RUNS`] boots
/// (two vCPUs under `-icount` are not run for run the same: the figure varies by some
/// percent); compared with `memcpy`, the test guest's copy in 1400-byte pieces (bytes per
/// million instructions; TCP's segments on a 1500-byte MTU are about that size).
fn linux_figure(root: &Path, timeout: Duration, memcpy: f64) -> Result<()> {
    let system = workspace::build_system(
        &root.join("tests/manifests/net-linux.toml"),
        CoreOptions::default(),
    )?;
    let cpus = system.manifest.qemu.cpus;
    let mut times = Vec::new();
    for _ in 0..LINUX_RUNS {
        let mut running = Running::start(&icount_config(&system, cpus))?;
        running.forbid("FAIL");
        running.forbid("XENOLITH-NET-SEND fail");
        let markers = ["linux2: XENOLITH-NET-SEND-TIME ", "linux1: XENOLITH-NET-RECV "];
        let lines = running
            .wait_for_all(&markers, timeout)
            .map_err(anyhow::Error::msg)
            .context("bench net: tests/manifests/net-linux.toml")?;
        drop(running);
        let received = number_after(&lines[1], "XENOLITH-NET-RECV ")?;
        ensure!(received == LINUX_BYTES, "bench net: linux1 received {received} bytes, not 16 MiB");
        times.push(number_after(&lines[0], "XENOLITH-NET-SEND-TIME ")?);
    }
    times.sort_unstable();
    let ns = times[times.len() / 2];
    let rate = per_million(LINUX_BYTES, ns);
    let ratio = rate / memcpy.max(1e-9);
    let verdict = if ratio >= RATIO_GOAL { "met" } else { "NOT met" };
    println!(
        "figure: Linux xen-netfront to Linux through netback, 16 MiB with busybox nc (TCP, {cpus} \
         pCPUs, the sender's clock, 10 ms resolution; median of {LINUX_RUNS}): {rate:.0} bytes \
         per million instructions ({ns} instructions; min {}, max {}); ratio to the 1400-byte \
         memcpy above {ratio:.3} (goal at least {RATIO_GOAL}: {verdict})",
        times[0],
        times[times.len() - 1]
    );
    Ok(())
}

/// The same 16 MiB with nc inside one Linux guest over its loopback device: no netfront, no
/// netback, one vCPU. What the guests' own work (two copies through the socket, TCP) costs at
/// the least, next to the same memcpy as [`linux_figure`]: the bound on its ratio.
fn linux_loopback_figure(root: &Path, timeout: Duration, memcpy: f64) -> Result<()> {
    let manifest = "tests/manifests/bench-net-loop.toml";
    let system = workspace::build_system(&root.join(manifest), CoreOptions::default())?;
    let mut running = Running::start(&icount_config(&system, 1))?;
    running.forbid("FAIL");
    let lines = running
        .wait_for_all(&["XENOLITH-NET-LOOP-TIME ", "XENOLITH-NET-LOOP "], timeout)
        .map_err(anyhow::Error::msg)
        .with_context(|| format!("bench net: {manifest}"))?;
    drop(running);
    let ns = number_after(&lines[0], "XENOLITH-NET-LOOP-TIME ")?;
    let fields: Vec<&str> =
        lines[1].split("XENOLITH-NET-LOOP ").nth(1).unwrap_or("").split_whitespace().collect();
    ensure!(
        fields.len() == 3 && fields[0] == LINUX_BYTES.to_string() && fields[1] == fields[2],
        "bench net: {manifest}: the loopback transfer was not whole ({:?})",
        lines[1]
    );
    let rate = per_million(LINUX_BYTES, ns);
    println!(
        "figure: Linux nc to nc inside one guest over loopback (no netfront or netback; one \
         pCPU, the guest's clock, 10 ms resolution): {rate:.0} bytes per million instructions \
         ({ns} instructions); ratio to the 1400-byte memcpy {:.3}: the most the Linux figure \
         above could reach with a backend that cost nothing",
        rate / memcpy.max(1e-9)
    );
    Ok(())
}

/// netback killed ten times while frames flow: kill to serving and kill to forwarding.
fn downtime_figures(root: &Path, timeout: Duration) -> Result<()> {
    let system = workspace::build_system(
        &root.join("tests/manifests/bench-net-kill.toml"),
        CoreOptions::default(),
    )?;
    let mut running = Running::start(&icount_config(&system, 1))?;
    running.forbid("FAIL");
    let (mut kills, mut serving, mut gaps) = (Vec::new(), Vec::new(), Vec::new());
    let mut passed = false;
    loop {
        let Some(line) = running.next_line(timeout).map_err(anyhow::Error::msg)? else {
            bail!(
                "bench net: tests/manifests/bench-net-kill.toml: no serial line within {timeout:?} \
                 (kills seen {}, restarts {}, gaps {}); last lines:\n{}",
                kills.len(),
                serving.len(),
                gaps.len(),
                running.tail().join("\n")
            );
        };
        ensure!(!line.contains("FAIL"), "bench net: bench-net-kill.toml: {line}");
        if line.contains("killer: kill ") {
            kills.push(number_after(&line, " at ")?);
        } else if line.contains("netback: serving ") && line.contains("(restart ") {
            let restart = number_after(&line, "(restart ")?;
            if restart > 0 {
                serving.push((restart, number_after(&line, ", at ")?));
            }
        } else if line.contains("sink: bench net-gap ") {
            gaps.push((number_after(&line, "from=")?, number_after(&line, "to=")?));
        } else if line.contains("killer: PASS") {
            passed = true;
        }
        // Done once the last incarnation serves and a frame arrived after that.
        let last = serving.last().filter(|(restart, _)| *restart == kills.len() as u64);
        if let (true, Some((_, at))) = (passed, last) {
            if gaps.last().is_some_and(|(_, to)| to > at) {
                break;
            }
        }
    }
    drop(running);
    let (mut to_serving, mut to_forwarding) = (Vec::new(), Vec::new());
    for (restart, at) in &serving {
        let Some(killed) = usize::try_from(*restart).ok().and_then(|k| kills.get(k - 1)) else {
            continue;
        };
        to_serving.push(at.saturating_sub(*killed));
        if let Some((_, to)) = gaps.iter().find(|(from, to)| from <= at && at < to) {
            to_forwarding.push(to.saturating_sub(*killed));
        }
    }
    for (what, values) in [
        ("netback kill-to-serving downtime (its `serving N vifs again` line)", &mut to_serving),
        (
            "netback kill to the first frame forwarded after it (arrival at the sink)",
            &mut to_forwarding,
        ),
    ] {
        ensure!(!values.is_empty(), "bench net: no {what} measured");
        values.sort_unstable();
        let (count, median) = (values.len(), values[values.len() / 2]);
        println!(
            "figure: {what}, 1400-byte frames flowing, over {count} of {} kills (instructions): \
             min {}, median {median}, max {}",
            kills.len(),
            values[0],
            values[count - 1]
        );
    }
    Ok(())
}
